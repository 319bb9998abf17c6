//! Sweep of the shared capture corpus (`../shared/corpus`, read-only): every
//! capture listed in MANIFEST.tsv is opened, read to the end and every packet
//! decoded through a `Defragmenter`. Nothing may panic; well-formed files must
//! read without error and yield tshark's frame count (EXPECTED.tsv); read
//! errors must name the file and a byte offset. A few known properties of
//! particular files are checked by hand at the end.
//!
//! If the corpus is absent the test prints a notice and passes.

mod common;
use common::read_tsv;

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use portmatrix::capture::{CaptureError, CaptureFile, CaptureFormat};
use portmatrix::decode::{
    decode_frame, DecodeError, Decoded, Defragmenter, Encap, EncapKind, OtherProto,
};
use portmatrix::timestamp::Timestamp;
use portmatrix::transport::Transport;

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.join("MANIFEST.tsv").is_file().then_some(dir)
}

#[derive(Debug, Default)]
struct Sweep {
    format: Option<CaptureFormat>,
    packets: u64,
    tcp: u64,
    udp: u64,
    other: u64,
    malformed: u64,
    first_ts: Option<Timestamp>,
    /// (interface, link type) of packets that decoded to TCP/UDP.
    decoded_on: Vec<(u32, u16)>,
    vlans: Vec<u16>,
    other_kinds: Vec<OtherProto>,
    malformed_kinds: Vec<DecodeError>,
    /// Packets found inside a tunnel, and the distinct tunnel stacks.
    encapsulated: u64,
    encaps: Vec<Encap>,
    error: Option<CaptureError>,
}

fn sweep(path: &Path) -> Sweep {
    let mut s = Sweep::default();
    let mut cap = match CaptureFile::open(path) {
        Ok(c) => c,
        Err(e) => {
            s.error = Some(e);
            return s;
        }
    };
    s.format = Some(cap.format());
    let mut defrag = Defragmenter::new();
    loop {
        let pkt = match cap.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                s.error = Some(e);
                break;
            }
        };
        s.packets += 1;
        s.first_ts.get_or_insert(pkt.ts);
        let (decoded, encap) = decode_frame(pkt.link_type, pkt.data);
        if !encap.is_empty() {
            s.encapsulated += 1;
            if !s.encaps.contains(&encap) {
                s.encaps.push(encap);
            }
        }
        match defrag.resolve(decoded) {
            Decoded::Packet(m) => {
                match m.transport {
                    Transport::Tcp => s.tcp += 1,
                    Transport::Udp => s.udp += 1,
                }
                if !s.decoded_on.contains(&(pkt.interface, pkt.link_type)) {
                    s.decoded_on.push((pkt.interface, pkt.link_type));
                }
                if let Some(v) = m.vlan {
                    s.vlans.push(v);
                }
            }
            // The defragmenter resolves every fragment.
            Decoded::Fragment(f) => panic!("unresolved fragment {f:?}"),
            Decoded::Other(o) => {
                s.other += 1;
                if !s.other_kinds.contains(&o) {
                    s.other_kinds.push(o);
                }
            }
            Decoded::Malformed(e) => {
                s.malformed += 1;
                if !s.malformed_kinds.contains(&e) {
                    s.malformed_kinds.push(e);
                }
            }
        }
    }
    // After the end or an error, the reader stays finished.
    assert!(matches!(cap.next_packet(), Ok(None)), "{}", path.display());
    s
}

/// Files tshark reads without error but whose frame count differs from ours
/// for a reason that is not a bug, and the count we expect instead.
fn known_count_exception(file: &str) -> Option<u64> {
    match file {
        // "Empty - only SHB and CB/DCB": tshark shows each Custom Block as a
        // frame; they hold no packet, so we read none.
        "formats/pcapngtg__test017-le.pcapng" => Some(0),
        // "All block types, intermixed": 5 packet blocks (4 EPB, 1 SPB) plus
        // 3 Custom Blocks that tshark lists as frames 1, 3 and 8.
        "formats/pcapngtg__test102-be.pcapng" => Some(5),
        _ => None,
    }
}

#[test]
fn corpus_sweep() {
    let Some(dir) = corpus_dir() else {
        eprintln!("notice: ../shared/corpus not found next to the crate; corpus sweep skipped");
        return;
    };
    let manifest = read_tsv(&dir.join("MANIFEST.tsv"));
    let expected: HashMap<String, HashMap<String, String>> = read_tsv(&dir.join("EXPECTED.tsv"))
        .into_iter()
        .map(|row| (row["file"].clone(), row))
        .collect();

    let mut results: Vec<(String, Sweep)> = Vec::new();
    let mut panics = Vec::new();
    for row in manifest.iter().filter(|r| r["kind"] == "capture") {
        let file = row["file"].clone();
        let path = dir.join(&file);
        match panic::catch_unwind(AssertUnwindSafe(|| sweep(&path))) {
            Ok(s) => results.push((file, s)),
            Err(_) => panics.push(file),
        }
    }
    assert!(panics.is_empty(), "panicked on: {panics:?}");
    assert!(results.len() > 300, "only {} captures swept", results.len());

    let mut failures = Vec::new();
    let mut table = String::new();
    for (file, s) in &results {
        table += &format!(
            "{file}\tpackets={} tcp={} udp={} other={} malformed={} {:?} error={}\n",
            s.packets,
            s.tcp,
            s.udp,
            s.other,
            s.malformed,
            s.malformed_kinds,
            s.error
                .as_ref()
                .map_or("-".to_string(), |e| e.kind().to_string())
        );
        let Some(exp) = expected.get(file) else {
            failures.push(format!("{file}: not in EXPECTED.tsv"));
            continue;
        };
        if let Some(e) = &s.error {
            let msg = e.to_string();
            let name = Path::new(file)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or(file);
            if !msg.contains(name) || e.offset().is_none() || !msg.contains("offset") {
                failures.push(format!(
                    "{file}: error does not name the file and an offset: {msg}"
                ));
            }
        }
        if exp["tshark_read_error"] != "no" {
            continue;
        }
        if let Some(e) = &s.error {
            failures.push(format!("{file}: tshark reads it, we failed: {e}"));
        }
        let want = known_count_exception(file)
            .unwrap_or_else(|| exp["frames"].parse().unwrap_or(u64::MAX));
        if s.packets != want {
            failures.push(format!("{file}: {} packets, expected {want}", s.packets));
        }
    }
    eprintln!("{table}");
    assert!(
        failures.is_empty(),
        "corpus failures:\n{}",
        failures.join("\n")
    );

    let get = |f: &str| -> &Sweep {
        &results
            .iter()
            .find(|(n, _)| n == f)
            .unwrap_or_else(|| panic!("{f} not swept"))
            .1
    };

    // Nanosecond pcap (big-endian magic bytes 4d 3c b2 a1 read little-endian): the
    // full nanoseconds survive.
    let nano = get("formats/tcpdump__tcp-handshake-nano.pcap");
    let ts = nano.first_ts.expect("a packet");
    assert_eq!(ts.as_nanos(), 1_418_145_369_924_505_488);
    assert_eq!(ts.to_string(), "2014-12-09T17:16:09.924505Z");
    assert_eq!(nano.tcp, 3, "SLL handshake decodes");

    // Past the signed 32-bit second counter.
    let y2038 = get("formats/tcpdump__time_2038.pcap");
    assert_eq!(
        y2038.first_ts.expect("a packet").to_string(),
        "2038-01-01T00:00:00.000000Z"
    );

    // Big-endian pcap of SCTP: every packet read, counted as SCTP.
    let be = get("formats/tcpdump__isup-bigendian.pcap");
    assert_eq!((be.packets, be.other), (6, 6));
    assert!(be.other_kinds.contains(&OtherProto::IpProto(132)));

    // Big-endian pcapng with an Ethernet and a NULL interface: packets decode on both.
    let multi = get("formats/pcapngtg__test006-be.pcapng");
    assert_eq!(multi.format, Some(CaptureFormat::PcapNg));
    let links: Vec<u16> = multi.decoded_on.iter().map(|&(_, lt)| lt).collect();
    assert!(
        links.contains(&1) && links.contains(&0),
        "{:?}",
        multi.decoded_on
    );

    // pcapng named .pcap: the magic decides.
    assert_eq!(
        get("voip/ndpi__stun.pcap").format,
        Some(CaptureFormat::PcapNg)
    );

    // Four interfaces in one pcapng section.
    let steam = get("formats/ndpi__steam-4idb.pcapng");
    assert!(steam.decoded_on.len() >= 2, "{:?}", steam.decoded_on);

    // Linux SLL2.
    let sll2 = get("encap/suricata__decode-sll2-01.pcap");
    assert!(sll2.tcp + sll2.udp > 0 && sll2.malformed == 0, "{sll2:?}");

    // QinQ (outer 13, inner 10) UDP: the outer VLAN id is kept.
    let qinq = get("encap/zeek__q-in-q.pcap");
    assert_eq!(qinq.udp, 4);
    assert!(qinq.vlans.iter().all(|&v| v == 13), "{:?}", qinq.vlans);
    // Triple-tagged ICMP (200, 300, 400) is counted as ICMP, not malformed.
    let triple = get("encap/suricata__detect-vlan-id.pcap");
    assert_eq!((triple.other, triple.malformed), (2, 0));

    // Tunnels whose inner packets are not TCP/UDP, so that no flow shows
    // them: every packet is entered, all in one stack of layers, and what is
    // inside is known (the VNIs are tshark's).
    use EncapKind::{Erspan1, Erspan2, Erspan3, Geneve, Gre, Vxlan};
    let icmp = OtherProto::Icmp;
    for (file, layers, vni, inside) in [
        ("encap/zeek__erspanI.pcap", &[Gre, Erspan1][..], None, icmp),
        (
            "encap/tcpdump__erspan-type-i-1.pcap",
            &[Gre, Erspan1],
            None,
            icmp,
        ),
        (
            "encap/suricata__decode-erspan-typeI-02.pcap",
            &[Gre, Erspan1],
            None,
            icmp,
        ),
        ("encap/zeek__erspanII.pcap", &[Gre, Erspan2], None, icmp),
        (
            "encap/tcpdump__erspan-type-ii-1.pcap",
            &[Gre, Erspan2],
            None,
            OtherProto::IpProto(103),
        ),
        ("encap/zeek__erspanIII.pcap", &[Gre, Erspan3], None, icmp),
        (
            "encap/tcpdump__erspan-type-iii-ft-0.pcap",
            &[Gre, Erspan3],
            None,
            icmp,
        ),
        (
            "encap/zeek__gre-erspan3-dot1q.pcap",
            &[Gre, Erspan3],
            None,
            icmp,
        ),
        (
            "encap/zeek__vxlan-encapsulated-igmp-v2.pcap",
            &[Vxlan],
            Some(4242),
            OtherProto::Igmp,
        ),
    ] {
        let s = get(file);
        assert_eq!((s.encapsulated, s.other), (s.packets, s.packets), "{file}");
        assert_eq!(s.other_kinds, [inside], "{file}");
        let stacks: Vec<(&[EncapKind], Option<u32>)> =
            s.encaps.iter().map(|e| (e.layers(), e.vni())).collect();
        assert_eq!(stacks, [(layers, vni)], "{file}");
    }
    // TCP inside Geneve, VNIs 10 and 11 (tshark's); a cut Geneve header.
    let geneve = get("encap/tcpdump__geneve.pcap");
    assert_eq!((geneve.encapsulated, geneve.tcp), (39, 33));
    assert!(geneve.encaps.iter().all(|e| e.layers() == [Geneve]));
    let vnis: Vec<Option<u32>> = geneve.encaps.iter().map(Encap::vni).collect();
    assert!(
        vnis.contains(&Some(10)) && vnis.contains(&Some(11)),
        "{vnis:?}"
    );
    let cut = get("malformed/zeek__geneve-truncated.pcapng");
    assert_eq!(cut.malformed_kinds, [DecodeError::GeneveTruncated]);
    // MPLS in a VLAN: the tag outside the label stack is kept.
    let mpls = get("encap/zeek__mpls-in-vlan.pcap");
    assert_eq!((mpls.tcp, mpls.encapsulated, mpls.malformed), (3, 2, 0));
    assert!(!mpls.vlans.is_empty(), "{mpls:?}");

    // A record claiming 4 MB after six good packets: corrupt, at that record.
    let der = get("malformed/suricata__tls_DER-incomplete-header.pcap");
    assert_eq!(der.packets, 6);
    assert!(
        matches!(der.error, Some(CaptureError::Corrupt { .. })),
        "{:?}",
        der.error
    );

    // Invalid versions are refused at the header, naming where.
    for f in [
        "malformed/libpcap__pcap-invalid-version-1.pcap",
        "malformed/libpcap__pcapng-invalid-vers-1.pcapng",
        "malformed/libpcap__pcapng-invalid-vers-2.pcapng",
        "formats/gopacket__test901-le.pcapng",
    ] {
        assert!(
            matches!(get(f).error, Some(CaptureError::Unsupported { .. })),
            "{f}: {:?}",
            get(f).error
        );
    }
}
