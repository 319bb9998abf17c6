//! rules/infrastructure-example.toml: DNS, NTP, Kerberos, LDAP and DHCP
//! flows, undocumented (or documented only by the vendor's rows) without it,
//! are documented by its own rule ids with it; it loads with `rules check`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[path = "common/pcap.rs"]
mod pcap;
use pcap::Pcap;

const CLIENT: [u8; 4] = [10, 10, 20, 51];
const DNS: [u8; 4] = [10, 10, 0, 53];
const DC: [u8; 4] = [10, 10, 0, 10];
const TIME: [u8; 4] = [10, 10, 0, 123];

fn rules_file() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("rules/infrastructure-example.toml")
        .display()
        .to_string()
}

/// A workstation's morning: a DNS lookup, NTP, Kerberos, LDAP, a DHCP request.
fn capture() -> PathBuf {
    let mut p = Pcap::new();
    let query =
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04aacc\x04site\x00\x00\x01\x00\x01";
    p.udp((CLIENT, 53001), (DNS, 53), query);
    p.wait(1_000);
    p.udp((DNS, 53), (CLIENT, 53001), query);
    p.wait(1_000);
    let mut ntp = [0u8; 48];
    ntp[0] = 0x23;
    p.udp((CLIENT, 123), (TIME, 123), &ntp);
    p.wait(1_000);
    ntp[0] = 0x24;
    p.udp((TIME, 123), (CLIENT, 123), &ntp);
    p.wait(1_000);
    p.conversation((CLIENT, 50100), (DC, 88), b"", b"");
    p.wait(1_000);
    p.conversation((CLIENT, 50101), (DC, 389), b"", b"");
    p.wait(1_000);
    p.conversation((CLIENT, 50102), (DC, 636), b"", b"");
    p.wait(1_000);
    p.broadcast = true;
    p.udp(([0, 0, 0, 0], 68), ([255, 255, 255, 255], 67), &[1u8; 240]);
    p.write("infrastructure", "morning.pcap")
}

/// Per listening port: (verdict, rule ids) of its flow.
fn verdicts(args: &[&str]) -> BTreeMap<u64, (String, Vec<String>)> {
    pcap::analyze_events(&capture(), args)
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e: &Value| {
            let rules = e["rule_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (
                e["dest_port"].as_u64().expect("dest_port"),
                (e["verdict"].as_str().expect("verdict").to_owned(), rules),
            )
        })
        .collect()
}

#[test]
fn infrastructure_flows_are_documented_by_the_sites_own_rules() {
    let without = verdicts(&[]);
    assert_eq!(without[&53].0, "undocumented", "{without:?}");
    assert_eq!(without[&88].0, "undocumented", "{without:?}");
    assert_eq!(without[&67].0, "undocumented", "{without:?}");
    let file = rules_file();
    let with = verdicts(&["--rules", &file]);
    for (port, rule) in [
        (53, "infra#dns"),
        (123, "infra#ntp"),
        (88, "infra#kerberos"),
        (389, "infra#ldap"),
        (636, "infra#ldaps"),
        (67, "infra#dhcp"),
    ] {
        let (verdict, rules) = &with[&port];
        assert_eq!(verdict, "documented", "port {port}: {with:?}");
        assert!(rules.iter().any(|r| r == rule), "port {port}: {rules:?}");
    }
}

#[test]
fn the_infrastructure_rules_load_merged_and_alone() {
    let file = rules_file();
    for args in [
        vec!["rules", "check", &file],
        vec!["rules", "check", "--no-default-rules", &file],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
            .args(&args)
            .output()
            .expect("runs");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{args:?}: {out}");
        assert!(out.contains("ok, 8 rules"), "{out}");
    }
}
