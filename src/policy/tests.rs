use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::classify::Classifier;
use crate::matrix::{PortMatrix, Product};
use crate::report::FlowRecord;
use crate::site::parse_site;
use crate::timestamp::Timestamp;
use crate::transport::Transport;

const SITE: &str = r#"schema = 1
[systems]
aacc_server = ["10.10.1.10", "fd00::10"]
ccma = ["10.10.1.11"]
ip_office = ["10.10.1.40"]
aams = ["10.10.1.20", "10.10.1.21"]
agent_desktop = ["10.10.0.0/16"]
"#;

fn site(text: &str) -> Site {
    parse_site("test-site.toml", text).expect("valid site")
}

fn line_ids(p: &Policy<'_>) -> Vec<String> {
    p.allow
        .iter()
        .map(|l| {
            format!(
                "{} {} {}->{}",
                l.rule.id,
                l.transport,
                l.client.name(),
                l.listener.name()
            )
        })
        .collect()
}

#[test]
fn without_events_every_open_current_rule_between_the_site_s_systems_is_allowed() {
    let matrix = PortMatrix::builtin().expect("matrix");
    let site = site(SITE);
    let p = Policy::build(&matrix, Product::Aacc, &site, None).expect("policy");
    let ids = line_ids(&p);
    assert!(ids.contains(&"2.2.2#28 tcp agent_desktop->aacc_server".to_string()));
    assert!(ids.contains(&"2.2.5#17 udp any->aams".to_string()));
    assert!(ids.contains(&"2.2.2#3 udp aacc_server->multicast".to_string()));
    // AAMS talks to AAMS: two hosts, so the pair is a line.
    assert!(ids.contains(&"2.2.5#8 tcp aams->aams".to_string()));
    for l in &p.allow {
        assert_eq!(
            rule_status(l.rule, Product::Aacc, false),
            Verdict::Documented,
            "{}",
            l.rule.id
        );
        assert!(!l.rule.internal_only && !l.rule.deprecated, "{}", l.rule.id);
    }
    let shut = |id: &str| p.shut.iter().find(|s| s.rule.id == id).map(|s| s.reason);
    assert_eq!(shut("2.2.2#19"), Some(Reason::InternalOnly));
    assert_eq!(shut("2.2.2#15"), Some(Reason::Deprecated));
    assert_eq!(shut("2.2.2#22"), Some(Reason::OutOfProfile));
    // One AACC server (its IPv4 and IPv6 address): SMB between AACC servers stays on it.
    assert_eq!(shut("2.2.2#9"), Some(Reason::OneHost));
    assert!(p.to_close.is_empty());
}

#[test]
fn a_system_s_addresses_leave_out_the_servers_inside_its_networks() {
    let matrix = PortMatrix::builtin().expect("matrix");
    let site = site(SITE);
    let p = Policy::build(&matrix, Product::Aacc, &site, None).expect("policy");
    let agents = p.addresses[&System::parse("agent_desktop").expect("system")].cidrs(Family::V4);
    assert!(!agents.iter().any(|c| c == "10.10.0.0/16"), "{agents:?}");
    assert!(agents.contains(&"10.10.0.0/24".to_string()), "{agents:?}");
    assert!(agents.contains(&"10.10.1.8/31".to_string()), "{agents:?}");
    assert!(agents.contains(&"10.10.1.12/30".to_string()), "{agents:?}");
    assert!(agents.contains(&"10.10.128.0/17".to_string()), "{agents:?}");
}

#[test]
fn a_site_without_a_system_of_the_matrix_is_an_error() {
    let matrix = PortMatrix::builtin().expect("matrix");
    let site = site("schema = 1\n[systems]\naes = [\"10.0.0.1\"]\n");
    let e = Policy::build(&matrix, Product::Aacc, &site, None).expect_err("nothing to allow");
    let text = e.to_string();
    assert!(text.contains("test-site.toml"), "{text}");
    assert!(text.contains("aes"), "{text}");
}

fn flow(proto: Transport, client: &str, server: &str, port: u16, secs: i64) -> FlowRecord {
    let ip = |s: &str| s.parse::<IpAddr>().expect("address");
    FlowRecord {
        flow_id: 1,
        transport: proto,
        client: (ip(client), 50_000),
        server: (ip(server), port),
        verdict: Verdict::Documented,
        severity: crate::verdict::Severity::Info,
        rule_ids: Vec::new(),
        vlan: None,
        first: Timestamp::from_secs_nanos(secs, 0),
        last: Timestamp::from_secs_nanos(secs + 1, 0),
        packets: Some(4),
        bytes: Some(400),
        evidence: None,
        sensor: None,
        also_seen_by: Vec::new(),
        community_id: None,
        copies: None,
    }
}

#[test]
fn with_events_only_what_was_used_is_allowed_and_the_rest_is_to_close() {
    let matrix = Arc::new(PortMatrix::builtin().expect("matrix"));
    let site = Arc::new(site(SITE));
    let c = Classifier::with_site(Arc::clone(&matrix), Product::Aacc, Some(Arc::clone(&site)));
    let mut seen = Observed::default();
    for (i, f) in [
        flow(Transport::Tcp, "10.10.5.5", "10.10.1.10", 443, 100),
        flow(Transport::Tcp, "10.10.5.6", "10.10.1.10", 443, 200),
        flow(Transport::Udp, "10.10.1.10", "239.1.1.1", 6020, 50),
        // Undocumented, internal only, one host, and a client of no system.
        flow(Transport::Tcp, "10.10.5.5", "10.10.1.10", 23, 10),
        flow(Transport::Tcp, "10.10.1.20", "10.10.1.21", 4001, 10),
        flow(Transport::Tcp, "10.10.1.10", "10.10.1.10", 445, 10),
        flow(Transport::Tcp, "192.0.2.9", "10.10.1.10", 9086, 10),
    ]
    .iter()
    .enumerate()
    {
        let mut f = f.clone();
        f.flow_id = i as u64;
        seen.add(&c, &f);
    }
    let p = Policy::build(&matrix, Product::Aacc, &site, Some(&seen)).expect("policy");
    assert_eq!(
        line_ids(&p),
        [
            "2.2.2#3 udp aacc_server->multicast",
            "2.2.2#28 tcp agent_desktop->aacc_server"
        ]
    );
    let https = &p.allow[1];
    let used = https.seen.as_ref().expect("seen");
    assert_eq!(used.flows, 2);
    assert_eq!(used.last, Timestamp::from_secs_nanos(201, 0));
    let groups = p.side_cidrs(&p.allow[0], Side::Multicast, Family::V4);
    assert_eq!(groups, Some(vec!["239.1.1.1".to_string()]));
    assert!(p.to_close.iter().any(|r| r.id == "2.2.5#17"));
    let t = p.tally.as_ref().expect("tally");
    assert_eq!((t.flows, t.opened, t.same_host), (7, 3, 1));
    assert_eq!(t.outside_inventory, 1);
    assert_eq!(t.not_opened.get(&Verdict::Undocumented), Some(&1));
    assert_eq!(t.not_opened.get(&Verdict::InternalOnly), Some(&1));
    let internal = p
        .shut
        .iter()
        .find(|s| s.rule.id == "2.2.5#19")
        .expect("shut");
    assert_eq!(internal.seen.as_ref().map(|u| u.flows), Some(1));
}
