//! Reader tests on small files written byte by byte.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::timestamp::Timestamp;

/// A fresh file in the temporary directory with these bytes.
fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portmatrix-capture-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).expect("create temp dir");
    let path = dir.join(name);
    fs::write(&path, bytes).expect("write temp file");
    path
}

fn pcap_header(magic: u32, big: bool, snaplen: u32, network: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    w32(&mut v, magic);
    let (maj, min) = (2u16, 4u16);
    v.extend_from_slice(&if big {
        maj.to_be_bytes()
    } else {
        maj.to_le_bytes()
    });
    v.extend_from_slice(&if big {
        min.to_be_bytes()
    } else {
        min.to_le_bytes()
    });
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, snaplen);
    w32(&mut v, network);
    v
}

fn pcap_record(big: bool, secs: u32, frac: u32, data: &[u8], orig: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [secs, frac, data.len() as u32, orig] {
        v.extend_from_slice(&if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        });
    }
    v.extend_from_slice(data);
    v
}

/// A pcapng block (little- or big-endian) with `body` padded to 4 bytes.
fn block(big: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let e = |x: u32| {
        if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let mut v = Vec::new();
    v.extend_from_slice(&e(btype));
    v.extend_from_slice(&e(len));
    v.extend_from_slice(body);
    v.extend(std::iter::repeat_n(0u8, pad));
    v.extend_from_slice(&e(len));
    v
}

fn shb(big: bool) -> Vec<u8> {
    let mut body = Vec::new();
    let e16 = |x: u16| {
        if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    body.extend_from_slice(&if big {
        0x1a2b_3c4du32.to_be_bytes()
    } else {
        0x1a2b_3c4du32.to_le_bytes()
    });
    body.extend_from_slice(&e16(1));
    body.extend_from_slice(&e16(0));
    body.extend_from_slice(&(-1i64).to_le_bytes());
    block(big, 0x0a0d_0d0a, &body)
}

/// IDB with optional if_tsresol and if_tsoffset options.
fn idb(
    big: bool,
    link_type: u16,
    snaplen: u32,
    tsresol: Option<u8>,
    tsoffset: Option<i64>,
) -> Vec<u8> {
    let e16 = |x: u16| {
        if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let mut body = Vec::new();
    body.extend_from_slice(&e16(link_type));
    body.extend_from_slice(&e16(0));
    body.extend_from_slice(&if big {
        snaplen.to_be_bytes()
    } else {
        snaplen.to_le_bytes()
    });
    if let Some(r) = tsresol {
        body.extend_from_slice(&e16(9));
        body.extend_from_slice(&e16(1));
        body.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        body.extend_from_slice(&e16(14));
        body.extend_from_slice(&e16(8));
        body.extend_from_slice(&if big {
            o.to_be_bytes()
        } else {
            o.to_le_bytes()
        });
    }
    if tsresol.is_some() || tsoffset.is_some() {
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(big, 1, &body)
}

fn epb(big: bool, if_id: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let e = |x: u32| {
        if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let mut body = Vec::new();
    for x in [
        if_id,
        (ts >> 32) as u32,
        ts as u32,
        data.len() as u32,
        data.len() as u32,
    ] {
        body.extend_from_slice(&e(x));
    }
    body.extend_from_slice(data);
    block(big, 6, &body)
}

/// (timestamp, link type, data, interface, offset) of each packet read.
type Read = Vec<(Timestamp, u16, Vec<u8>, u32, u64)>;

/// Reads `path` one packet at a time, and checks that reading it in chunks
/// gives the same packets and the same error.
fn collect(path: &std::path::Path) -> (Read, Option<CaptureError>) {
    let (out, err) = collect_from(CaptureFile::open(path).expect("open"));
    let (chunked, chunk_err) = collect_chunks(path);
    let plain: Vec<_> = out
        .iter()
        .map(|(ts, lt, data, _, _)| (*ts, *lt, data))
        .collect();
    let chunked: Vec<_> = chunked
        .iter()
        .map(|(ts, lt, data, _)| (*ts, *lt, data))
        .collect();
    assert_eq!(plain, chunked, "{}: chunks differ", path.display());
    assert_eq!(
        err.as_ref().map(ToString::to_string),
        chunk_err.map(|e| e.to_string())
    );
    (out, err)
}

fn collect_from(mut cap: CaptureFile) -> (Read, Option<CaptureError>) {
    let mut out = Vec::new();
    let err = loop {
        match cap.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.link_type, p.data.to_vec(), p.interface, p.offset)),
            Ok(None) => break None,
            Err(e) => {
                // After an error the reader stays finished.
                assert!(matches!(cap.next_packet(), Ok(None)));
                break Some(e);
            }
        }
    };
    (out, err)
}

/// (timestamp, link type, data, length on the wire) of each packet read with `next_chunk`.
type ReadChunks = Vec<(Timestamp, u16, Vec<u8>, u32)>;

fn collect_chunks(path: &std::path::Path) -> (ReadChunks, Option<CaptureError>) {
    let mut cap = CaptureFile::open(path).expect("open");
    let mut chunk = Chunk::new();
    let mut out = Vec::new();
    loop {
        match cap.next_chunk(&mut chunk) {
            Ok(true) => {
                assert!(!chunk.is_empty());
                out.extend(
                    chunk
                        .iter()
                        .map(|(p, data)| (p.ts, p.link_type, data.to_vec(), p.orig_len)),
                );
            }
            Ok(false) => return (out, None),
            Err(e) => {
                // After an error the reader stays finished.
                assert!(matches!(cap.next_chunk(&mut chunk), Ok(false)));
                return (out, Some(e));
            }
        }
    }
}

#[test]
fn pcap_little_endian_microseconds() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    f.extend(pcap_record(false, 1_627_819_200, 123_456, b"abcd", 60));
    f.extend(pcap_record(false, 1_627_819_201, 0, b"efgh", 4));
    let path = temp_file("le.pcap", &f);
    let mut cap = CaptureFile::open(&path).expect("open");
    assert_eq!(cap.format(), CaptureFormat::Pcap);
    assert_eq!(cap.total_bytes(), f.len() as u64);
    let p = cap.next_packet().expect("read").expect("a packet");
    assert_eq!(p.ts.to_string(), "2021-08-01T12:00:00.123456Z");
    assert_eq!(
        (p.link_type, p.data, p.orig_len, p.offset),
        (1, &b"abcd"[..], 60, 24)
    );
    let p = cap.next_packet().expect("read").expect("a packet");
    assert_eq!(p.offset, 24 + 20);
    assert!(cap.next_packet().expect("clean end").is_none());
    assert_eq!(cap.bytes_read(), f.len() as u64);
    assert!(cap.next_packet().expect("still the end").is_none());
}

#[test]
fn pcap_big_endian_nanoseconds_and_fcs_bits() {
    // Link type 1 with FCS-length bits set, as some tcpdump test files have.
    let mut f = pcap_header(0xa1b2_3c4d, true, 65535, 0x3000_0001);
    f.extend(pcap_record(true, 1_627_819_200, 999_999_999, b"xyz", 3));
    let path = temp_file("be.pcap", &f);
    let (pkts, err) = collect(&path);
    assert!(err.is_none());
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].0.subsec_nanos(), 999_999_999);
    assert_eq!(pkts[0].1, 1);
}

#[test]
fn pcap_truncated_record_names_offset() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    f.extend(pcap_record(false, 1, 0, b"abcd", 4));
    let cut = pcap_record(false, 2, 0, &[0u8; 100], 100);
    f.extend_from_slice(&cut[..50]);
    let path = temp_file("cut.pcap", &f);
    let (pkts, err) = collect(&path);
    assert_eq!(pkts.len(), 1);
    let err = err.expect("an error");
    assert!(
        matches!(err, CaptureError::Truncated { offset: 44, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("cut.pcap") && msg.contains("offset 44"),
        "{msg}"
    );
}

#[test]
fn pcap_header_cut_inside_record_header() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    f.extend_from_slice(&[1, 2, 3]);
    let (pkts, err) = collect(&temp_file("hdr.pcap", &f));
    assert!(pkts.is_empty());
    assert!(matches!(
        err,
        Some(CaptureError::Truncated { offset: 24, .. })
    ));
}

#[test]
fn pcap_insane_caplen_is_corrupt() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    let mut rec = pcap_record(false, 1, 0, b"abcd", 4);
    rec[8..12].copy_from_slice(&4_325_376u32.to_le_bytes());
    f.extend(rec);
    let (_, err) = collect(&temp_file("huge.pcap", &f));
    let err = err.expect("an error");
    assert!(
        matches!(err, CaptureError::Corrupt { offset: 24, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("4325376"));
}

#[test]
fn not_a_capture_and_empty_and_bad_version() {
    let path = temp_file("notes.txt", b"hello world");
    let err = CaptureFile::open(&path).expect_err("not a capture");
    assert!(matches!(err, CaptureError::NotACapture { .. }));
    assert!(err.to_string().contains("68 65 6c 6c"), "{err}");

    let err = CaptureFile::open(&temp_file("empty.pcap", b"")).expect_err("empty");
    assert!(matches!(err, CaptureError::Empty { .. }), "{err}");

    let mut f = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    f[4] = 1;
    let err = CaptureFile::open(&temp_file("v1.pcap", &f)).expect_err("version 1");
    assert!(matches!(err, CaptureError::Unsupported { offset: 4, .. }));

    let err = CaptureFile::open(std::path::Path::new("/nonexistent/x.pcap")).expect_err("io");
    assert!(matches!(err, CaptureError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/x.pcap"));
}

#[test]
fn pcapng_interfaces_resolutions_and_offsets() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 65535, None, None)); // microseconds
    f.extend(idb(false, 113, 0, Some(9), Some(100))); // nanoseconds, +100 s
    f.extend(block(false, 4, &[0, 0, 0, 0])); // name resolution: skipped
    f.extend(epb(false, 0, 1_000_000 * 5 + 7, b"eth"));
    f.extend(epb(false, 1, 1_000_000_000 * 5 + 7, b"sll!"));
    // Simple Packet Block: interface 0, no timestamp.
    let mut spb_body = 9u32.to_le_bytes().to_vec();
    spb_body.extend_from_slice(b"simple!!!");
    f.extend(block(false, 3, &spb_body));
    // Obsolete Packet Block on interface 1.
    let mut pb = Vec::new();
    pb.extend_from_slice(&1u16.to_le_bytes());
    pb.extend_from_slice(&0u16.to_le_bytes());
    for x in [0u32, 42, 2, 2] {
        pb.extend_from_slice(&x.to_le_bytes());
    }
    pb.extend_from_slice(b"pb");
    f.extend(block(false, 2, &pb));
    let path = temp_file("multi.pcapng", &f);
    let mut cap = CaptureFile::open(&path).expect("open");
    assert_eq!(cap.format(), CaptureFormat::PcapNg);
    let (pkts, err) = collect(&path);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 4);
    assert_eq!((pkts[0].1, &pkts[0].2[..], pkts[0].3), (1, &b"eth"[..], 0));
    assert_eq!(pkts[0].0, Timestamp::from_secs_nanos(5, 7_000));
    assert_eq!(
        (pkts[1].1, &pkts[1].2[..], pkts[1].3),
        (113, &b"sll!"[..], 1)
    );
    assert_eq!(pkts[1].0, Timestamp::from_secs_nanos(105, 7));
    assert_eq!((&pkts[2].2[..], pkts[2].3), (&b"simple!!!"[..], 0));
    assert_eq!(
        pkts[2].0, pkts[0].0,
        "a simple packet takes the last timestamp of its interface, 0, not interface 1's"
    );
    assert_eq!((&pkts[3].2[..], pkts[3].1), (&b"pb"[..], 113));
    // Offsets point at the blocks.
    let first_epb = shb(false).len()
        + idb(false, 1, 65535, None, None).len()
        + idb(false, 113, 0, Some(9), Some(100)).len()
        + 16;
    assert_eq!(pkts[0].4, first_epb as u64);
    assert!(cap.next_packet().expect("read").is_some());
}

fn spb(data: &[u8]) -> Vec<u8> {
    let mut body = (data.len() as u32).to_le_bytes().to_vec();
    body.extend_from_slice(data);
    block(false, 3, &body)
}

#[test]
fn simple_packets_before_any_timed_packet_take_the_next_timed_time() {
    // Interface 0 in microseconds, interface 1 in nanoseconds: the time is
    // that of the first timed packet, whichever interface it is on.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(idb(false, 1, 0, Some(9), None));
    f.extend(spb(b"first"));
    f.extend(spb(b"second"));
    f.extend(epb(false, 1, 1_600_000_000_000_000_123, b"timed"));
    f.extend(spb(b"third"));
    let path = temp_file("spb-first.pcapng", &f);
    let (pkts, err) = collect(&path);
    assert!(err.is_none(), "{err:?}");
    let t = Timestamp::from_secs_nanos(1_600_000_000, 123);
    let times: Vec<Timestamp> = pkts.iter().map(|p| p.0).collect();
    assert_eq!(times, [t, t, t, t]);
    // Bytes in memory look ahead the same way.
    let (mem, _) = collect_from(CaptureFile::from_bytes("m", f).expect("open in memory"));
    assert_eq!(mem.iter().map(|p| p.0).collect::<Vec<_>>(), times);
}

#[test]
fn a_file_of_simple_packets_only_takes_its_modification_time() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(spb(b"one"));
    f.extend(spb(b"two"));
    let path = temp_file("spb-only.pcapng", &f);
    let written = std::time::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 5_000);
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(written))
        .expect("set the modification time");
    let (pkts, err) = collect(&path);
    assert!(err.is_none(), "{err:?}");
    let t = Timestamp::from_secs_nanos(1_700_000_000, 5_000);
    assert_eq!(pkts.iter().map(|p| p.0).collect::<Vec<_>>(), [t, t]);
    // In memory there is no such time: the epoch.
    let (mem, _) = collect_from(CaptureFile::from_bytes("m", f).expect("open in memory"));
    assert!(mem.iter().all(|p| p.0 == Timestamp::EPOCH));
}

#[test]
fn pcapng_sections_of_both_byte_orders() {
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 1, b"one"));
    f.extend(shb(true));
    f.extend(idb(true, 101, 0, None, None));
    f.extend(epb(true, 0, 2, b"two"));
    let (pkts, err) = collect(&temp_file("sections.pcapng", &f));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 2);
    // Interface numbers run on through sections; link types are per section.
    assert_eq!((pkts[0].1, pkts[0].3), (1, 0));
    assert_eq!(
        (pkts[1].1, pkts[1].3, &pkts[1].2[..]),
        (101, 1, &b"two"[..])
    );
}

#[test]
fn pcapng_errors() {
    // Packet for an interface never described.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 3, 1, b"x"));
    let (_, err) = collect(&temp_file("noif.pcapng", &f));
    let at = (shb(false).len() + idb(false, 1, 0, None, None).len()) as u64;
    match err {
        Some(CaptureError::Corrupt {
            offset, ref detail, ..
        }) => {
            assert_eq!(offset, at);
            assert!(detail.contains("interface 3"), "{detail}");
        }
        other => panic!("expected corrupt, got {other:?}"),
    }

    // Leading and trailing lengths disagree.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let mut b = epb(false, 0, 1, b"abcd");
    let n = b.len();
    b[n - 4] ^= 0x40;
    f.extend(b);
    let (_, err) = collect(&temp_file("trail.pcapng", &f));
    assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "{err:?}");

    // Cut in the middle of a block.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let b = epb(false, 0, 1, &[7u8; 64]);
    f.extend_from_slice(&b[..40]);
    let (_, err) = collect(&temp_file("cut.pcapng", &f));
    assert!(
        matches!(err, Some(CaptureError::Truncated { offset, .. }) if offset == at),
        "{err:?}"
    );

    // Unsupported section version.
    let mut f = shb(false);
    f[12] = 2;
    let err = CaptureFile::open(&temp_file("v2.pcapng", &f)).expect_err("version 2.0");
    assert!(
        matches!(err, CaptureError::Unsupported { offset: 12, .. }),
        "{err:?}"
    );

    // A block length that is not a multiple of 4.
    let mut f = shb(false);
    f.extend_from_slice(&6u32.to_le_bytes());
    f.extend_from_slice(&13u32.to_le_bytes());
    f.extend_from_slice(&[0u8; 8]);
    let (_, err) = collect(&temp_file("len.pcapng", &f));
    assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "{err:?}");
}

#[test]
fn large_blocks_grow_the_buffer_once() {
    let big = vec![0x5au8; 600_000];
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    f.extend(epb(false, 0, 1, &big));
    f.extend(epb(false, 0, 2, b"small"));
    let (pkts, err) = collect(&temp_file("big.pcapng", &f));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts[0].2.len(), 600_000);
    assert_eq!(pkts[1].2, b"small");
}

#[test]
fn many_packets_cross_buffer_boundaries() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    for i in 0..20_000u32 {
        let data = vec![(i % 251) as u8; (i % 97) as usize];
        f.extend(pcap_record(false, i, 0, &data, data.len() as u32));
    }
    let (pkts, err) = collect(&temp_file("many.pcap", &f));
    assert!(err.is_none());
    assert_eq!(pkts.len(), 20_000);
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(p.2.len(), i % 97);
        assert!(p.2.iter().all(|&b| b == (i % 251) as u8));
        assert_eq!(p.0.secs(), i as i64);
    }
}

#[test]
fn pcap_modified_format_has_longer_record_headers() {
    // Kuznetzov's patched libpcap: 8 more bytes per record header (ifindex,
    // protocol, packet type, padding).
    let mut f = pcap_header(0xa1b2_cd34, false, 65535, 1);
    for (i, data) in [&b"first"[..], b"second!", b""].iter().enumerate() {
        let mut rec = pcap_record(false, 100 + i as u32, 7, data, 60);
        rec.splice(16..16, [0u8, 0, 0, 3, 8, 0, 0, 0]);
        f.extend(rec);
    }
    let (pkts, err) = collect(&temp_file("modified.pcap", &f));
    assert!(err.is_none(), "{err:?}");
    let got: Vec<(i64, &[u8])> = pkts.iter().map(|p| (p.0.secs(), &p.2[..])).collect();
    assert_eq!(got, [(100, &b"first"[..]), (101, b"second!"), (102, b"")]);
}

#[test]
fn chunks_cross_reads_sections_and_huge_records() {
    // Several chunks' worth of packets of every size, a record larger than a
    // chunk, and sections of both byte orders in between.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, None, None));
    let mut sizes = Vec::new();
    let mut big = false;
    for i in 0..12_000u32 {
        let len = (i as usize * 37) % 1500;
        f.extend(epb(big, 0, u64::from(i), &vec![(i % 253) as u8; len]));
        sizes.push(len);
        if i == 5_000 {
            f.extend(epb(big, 0, u64::from(i), &vec![7u8; CHUNK_BYTES + 12_345]));
            sizes.push(CHUNK_BYTES + 12_345);
            big = true;
            f.extend(shb(big));
            f.extend(idb(big, 101, 0, Some(9), None));
        }
    }
    let (pkts, err) = collect(&temp_file("chunks.pcapng", &f));
    assert!(err.is_none(), "{err:?}");
    let got: Vec<usize> = pkts.iter().map(|p| p.2.len()).collect();
    assert_eq!(got, sizes);
    assert_eq!(pkts.last().map(|p| p.1), Some(101));

    // A file cut in the middle of a record far into it: every packet
    // before the cut, then the error.
    let cut = &f[..f.len() - 700];
    let (pkts, err) = collect(&temp_file("cut.pcapng", cut));
    assert!(
        matches!(err, Some(CaptureError::Truncated { .. })),
        "{err:?}"
    );
    assert!(pkts.len() > 11_000);
}

#[test]
fn list_inputs_expands_and_orders_by_first_packet() {
    let mut late = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    late.extend(pcap_record(false, 2_000, 0, b"a", 1));
    let mut early = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    early.extend(pcap_record(false, 1_000, 0, b"a", 1));
    let late = temp_file("a-late.pcap", &late);
    let dir = late.parent().expect("temp dir").to_path_buf();
    fs::write(dir.join("b-early.pcap"), &early).expect("write");
    fs::write(dir.join("c-junk.txt"), b"junk").expect("write");
    fs::write(dir.join(".hidden"), b"junk").expect("write");
    fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let missing = dir.join("missing.pcap");
    let junk = dir.join("c-junk.txt");
    // In a directory, only files with capture magic count; a file named on
    // the command line is kept whatever it is, so its error gets reported.
    let list = list_inputs(&[missing.clone(), dir.clone(), junk.clone()]).expect("list");
    assert!(list.without_capture.is_empty());
    let skipped: Vec<_> = list
        .skipped
        .iter()
        .map(|s| (s.path.clone(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        vec![
            (dir.join(".hidden"), SkipReason::Hidden),
            (dir.join("c-junk.txt"), SkipReason::NotACapture(*b"junk")),
            (dir.join("sub"), SkipReason::Folder),
        ]
    );
    assert_eq!(
        list.files,
        vec![
            dir.join("b-early.pcap"),
            dir.join("a-late.pcap"),
            missing,
            junk,
        ]
    );
}

#[test]
fn power_of_two_and_decimal_resolutions() {
    // if_tsresol 0x88: 2^8 = 256 units per second.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, Some(0x88), None));
    f.extend(epb(false, 0, 256 * 10 + 128, b"x"));
    f.extend(idb(false, 1, 0, Some(3), None));
    f.extend(epb(false, 1, 10_500, b"y"));
    let (pkts, err) = collect(&temp_file("res.pcapng", &f));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts[0].0, Timestamp::from_secs_nanos(10, 500_000_000));
    assert_eq!(pkts[1].0, Timestamp::from_secs_nanos(10, 500_000_000));
    // 10^20 does not fit: corrupt.
    let mut f = shb(false);
    f.extend(idb(false, 1, 0, Some(20), None));
    let (_, err) = collect(&temp_file("res20.pcapng", &f));
    assert!(matches!(err, Some(CaptureError::Corrupt { .. })), "{err:?}");
}

#[test]
fn bytes_in_memory_read_exactly_as_the_same_file() {
    let mut ng = shb(false);
    ng.extend(idb(false, 1, 0, None, None));
    ng.extend(epb(false, 0, 1, &vec![0x5au8; 600_000]));
    ng.extend(epb(false, 0, 2, b"small"));
    let mut pcap = pcap_header(0xa1b2_c3d4, false, 65535, 1);
    for i in 0..3000u32 {
        pcap.extend(pcap_record(false, i, 0, &[i as u8; 61], 61));
    }
    // A record cut short: the error must carry the same name and offset.
    let cut = pcap.len() - 30;
    for (name, bytes) in [
        ("m.pcapng", ng),
        ("m.pcap", pcap.clone()),
        ("cut.pcap", pcap[..cut].to_vec()),
    ] {
        let path = temp_file(name, &bytes);
        let (want, want_err) = collect(&path);
        let cap = CaptureFile::from_bytes(&path, bytes.clone()).expect("open in memory");
        assert_eq!(cap.total_bytes(), bytes.len() as u64);
        let (got, got_err) = collect_from(cap);
        assert_eq!(got, want, "{name}");
        assert_eq!(
            got_err.map(|e| e.to_string()),
            want_err.map(|e| e.to_string()),
            "{name}"
        );
    }
    let err = CaptureFile::from_bytes("empty", Vec::new()).expect_err("empty");
    assert_eq!((err.path(), err.offset()), (Path::new("empty"), Some(0)));
}

#[test]
fn an_oversized_record_is_refused_with_the_limit_it_broke() {
    // The snaplen allows it, the reader's own limit does not: the message
    // must name that limit, not claim the snaplen forbids it.
    let mut bytes = pcap_header(0xa1b2_c3d4, false, u32::MAX, 1);
    for x in [0u32, 0, 4_294_967_280, 4_294_967_280] {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let path = temp_file("oversized.pcap", &bytes);
    let mut cap = CaptureFile::open(&path).expect("open");
    let Err(e) = cap.next_packet() else {
        panic!("an oversized record is an error");
    };
    let text = e.to_string();
    assert!(
        text.contains("claims 4294967280 captured bytes, more than the 67108864 allowed"),
        "{text}"
    );
    assert!(!text.contains("snaplen 4294967295 allows"), "{text}");
}

/// A framer's view of `bytes` at file offset `offset`, the file having
/// `remaining` bytes from there.
fn view(bytes: &[u8], offset: u64, remaining: usize, complete: bool) -> frame::View<'_> {
    frame::View {
        bytes,
        offset,
        remaining: remaining as u64,
        complete,
    }
}

#[test]
fn the_pcap_framer_asks_for_bytes_while_the_file_goes_on_and_calls_them_cut_at_its_end() {
    let st = pcap::PcapState::from_magic(0xa1b2_c3d4).expect("a pcap magic");
    let header = pcap_header(0xa1b2_c3d4, false, 65_535, 1);
    assert!(matches!(
        st.file_header(view(&header[..10], 0, 24, false)),
        Ok(None)
    ));
    let st = st
        .file_header(view(&header, 0, 24, false))
        .expect("a valid header")
        .expect("all 24 bytes");
    let rec = pcap_record(false, 10, 5, &[1, 2, 3, 4], 60);
    let n = rec.len();
    let step = |bytes, complete| st.next(view(bytes, 24, n, complete));
    assert!(matches!(step(&rec[..10], false), Ok(frame::Step::Need(16))));
    assert!(matches!(step(&rec[..18], false), Ok(frame::Step::Need(20))));
    match step(&rec, false) {
        Ok(frame::Step::Packet(f)) => {
            assert_eq!((f.data_at, f.data_len, f.orig_len), (16, 4, 60));
            assert_eq!((f.offset, f.record_len), (24, 20));
            assert_eq!(f.ts, Timestamp::from_secs_micros(10, 5));
        }
        other => panic!("not a packet: {other:?}"),
    }
    let cut = step(&rec[..18], true).expect_err("cut by the end of the file");
    let err = cut.in_file(Path::new("x.pcap"));
    assert!(
        matches!(err, CaptureError::Truncated { offset: 24, .. }),
        "{err}"
    );
    assert!(matches!(step(&[], true), Ok(frame::Step::End)));
}

#[test]
fn the_pcapng_framer_skips_blocks_without_packets_and_leaves_untimed_ones_to_the_reader() {
    let mut ng = pcapng::NgState::default();
    let shb = shb(false);
    let step = ng.section_header(view(&shb, 0, shb.len(), true));
    assert!(matches!(step, Ok(frame::Step::Skip(n)) if n == shb.len()));
    let idb = idb(false, 1, 0, Some(9), None);
    let step = ng.next(view(&idb, 28, idb.len(), true));
    assert!(matches!(step, Ok(frame::Step::Skip(n)) if n == idb.len()));
    let other = block(false, 0x0000_0bad, &[0; 8]);
    assert!(matches!(
        ng.next(view(&other[..6], 60, 100, false)),
        Ok(frame::Step::Need(8))
    ));
    assert!(matches!(
        ng.next(view(&other, 60, other.len(), true)),
        Ok(frame::Step::Skip(20))
    ));
    // No packet has a time yet: the reader must look ahead for one.
    let simple = spb(&[1, 2, 3]);
    assert!(matches!(
        ng.next(view(&simple, 80, simple.len(), true)),
        Ok(frame::Step::Untimed)
    ));
    let enhanced = epb(false, 0, 1_500_000_000, &[7; 5]);
    match ng.next(view(&enhanced, 100, enhanced.len(), true)) {
        Ok(frame::Step::Packet(f)) => {
            assert_eq!((f.data_at, f.data_len, f.interface), (28, 5, 0));
            assert_eq!(f.ts, Timestamp::from_secs_nanos(1, 500_000_000));
        }
        other => panic!("not a packet: {other:?}"),
    }
    // Now it has: the simple packet takes that time.
    assert!(matches!(
        ng.next(view(&simple, 80, simple.len(), true)),
        Ok(frame::Step::Packet(f)) if f.ts == Timestamp::from_secs_nanos(1, 500_000_000)
    ));
}
