//! Site inventories (`--site`): roles on events, `role_mismatch`, role-bound
//! ranges, unknown hosts falling back to port-only matching, exceptions with
//! expiry, storm control, and `site suggest` drafts that parse back.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

#[path = "common/contract.rs"]
mod contract;
use contract::FlowEvent;
#[path = "common/pcap.rs"]
mod pcap;
#[path = "common/temp.rs"]
mod temp;
use pcap::{Pcap, ACK, PSH};
use temp::TempDir;

use portmatrix::classify::{Classifier, FlowQuery};
use portmatrix::matrix::{PortMatrix, Product};
use portmatrix::site::parse_site;
use portmatrix::transport::Transport;
use portmatrix::verdict::Verdict;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn sample() -> String {
    fixture("sample-contact-center.pcapng")
        .to_str()
        .expect("path")
        .to_string()
}

fn portmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(args)
        .output()
        .expect("portmatrix runs")
}

/// The sample's address plan (see fixtures/README.md), without the stranger
/// 10.10.99.5 and the media gateway 10.10.1.60: they stay unknown.
const SITE: &str = r#"schema = 1
[systems]
aacc_server = ["10.10.1.10"]
ccma = ["10.10.1.11", "fd00:10:10:1::11"]
ccmm = ["10.10.1.12"]
aams = ["10.10.1.20"]
session_manager = ["10.10.1.30"]
ip_office = ["10.10.1.40"]
workspaces = ["10.10.1.50"]
snmp_manager = ["10.10.1.70"]
communication_manager = ["10.10.1.80"]
agent_desktop = ["10.10.20.0/24", "fd00:10:10:20::/64"]

[[system]]
name = "web_browser"
addresses = ["10.10.120.0/24"]
vlans = [120]
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AlertSummary {
    timestamp: String,
    event_type: String,
    src_ip: IpAddr,
    severity: String,
    count: u64,
    window_start: String,
    window_end: String,
    last_alert: String,
    verdicts: BTreeMap<String, u64>,
    ports: Vec<PortCount>,
    targets: Vec<TargetCount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PortCount {
    proto: String,
    port: u16,
    count: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TargetCount {
    ip: IpAddr,
    count: u64,
}

struct Run {
    events: Vec<Value>,
    stderr: String,
    code: Option<i32>,
}

impl Run {
    fn of(args: &[&str]) -> Run {
        let o = portmatrix(args);
        Run {
            events: String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}")))
                .collect(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code(),
        }
    }

    /// The events of type `t`, strictly; with a site every one names the roles.
    fn typed(&self, t: &str) -> Vec<FlowEvent> {
        self.events
            .iter()
            .filter(|e| e["event_type"] == t)
            .map(|e| {
                let f: FlowEvent =
                    serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{err}: {e}"));
                assert!(
                    f.src_roles.is_some() && f.dest_roles.is_some(),
                    "roles: {e}"
                );
                f
            })
            .collect()
    }

    /// The one TCP flow from `src` to `dst`:`port`.
    fn flow(&self, src: &str, dst: &str, port: u16) -> FlowEvent {
        self.flow_on("TCP", src, dst, port)
    }

    fn flow_on(&self, proto: &str, src: &str, dst: &str, port: u16) -> FlowEvent {
        let mut found = self.typed("flow").into_iter().filter(|f| {
            f.proto == proto && f.src_ip == src && f.dest_ip == dst && f.dest_port == port
        });
        let f = found
            .next()
            .unwrap_or_else(|| panic!("no flow {src} -> {dst}:{port}"));
        assert!(found.next().is_none(), "one flow {src} -> {dst}:{port}");
        f
    }

    fn stats(&self) -> &Value {
        let stats: Vec<&Value> = self
            .events
            .iter()
            .filter(|e| e["event_type"] == "stats")
            .collect();
        assert_eq!(stats.len(), 1);
        &stats[0]["stats"]
    }
}

fn analyze_with_site(site: &str, extra: &[&str]) -> Run {
    let sample = sample();
    let mut args = vec!["analyze", "--json", "--flows", "--site", site];
    args.extend_from_slice(extra);
    args.push(&sample);
    Run::of(&args)
}

#[test]
fn events_name_the_roles_and_role_mismatch_the_rules_that_would_allow_it() {
    let dir = TempDir::new("site", "roles");
    let site = dir.file("site.toml", SITE);
    let run = analyze_with_site(&site, &["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // CCMA reaching the SGM's JMX port: the port is documented, for the AACC
    // server's own management client only.
    let jmx = run.flow("10.10.1.11", "10.10.1.10", 8100);
    assert_eq!(jmx.verdict, "role_mismatch");
    assert_eq!(jmx.severity, "high");
    assert_eq!(jmx.rule_ids, ["2.2.2#19"]);
    assert_eq!(
        (jmx.src_roles(), jmx.dest_roles()),
        (&["ccma".to_string()][..], &["aacc_server".to_string()][..])
    );
    let alerts = run.typed("alert");
    assert!(alerts
        .iter()
        .any(|a| a.flow_id == jmx.flow_id && a.verdict == "role_mismatch"));

    // A scanner on the AACC server's port 80: only CCMA, CCMM and (formerly)
    // AAMS listen there, so every port-80 rule is named.
    let http = run.flow("10.10.99.5", "10.10.1.10", 80);
    assert_eq!(http.verdict, "role_mismatch");
    assert_eq!(http.rule_ids, ["2.2.2#1", "2.2.3#6", "2.2.4#1", "2.3.1#1"]);
    assert_eq!(http.src_roles(), ["unknown"]);
    // On 443 one rule fits the AACC server (the CCT Integration Portal): only it is named.
    let https = run.flow("10.10.99.5", "10.10.1.10", 443);
    assert_eq!(
        (https.verdict.as_str(), https.rule_ids.as_slice()),
        ("documented", &["2.2.2#28".to_string()][..])
    );

    // Documented traffic between the right systems stays documented.
    let cache = run.flow("10.10.1.10", "10.10.1.12", 1972);
    assert_eq!(
        (cache.verdict.as_str(), cache.rule_ids.as_slice()),
        ("documented", &["2.2.3#1".to_string()][..])
    );
    let sip = run.flow("10.10.1.10", "10.10.1.30", 5060);
    assert_eq!(sip.verdict, "documented");
    assert_eq!(sip.dest_roles(), ["session_manager"]);
    // VLAN-bound entries apply on their VLAN; IPv6 entries to IPv6 hosts.
    let tagged = run.flow("10.10.120.15", "10.10.1.11", 80);
    assert_eq!(
        (tagged.vlan, tagged.src_roles()),
        (Some(120), &["web_browser".to_string()][..])
    );
    let v6 = run.flow("fd00:10:10:20::51", "fd00:10:10:1::11", 443);
    assert_eq!(
        (v6.src_roles()[0].as_str(), v6.dest_roles()[0].as_str()),
        ("agent_desktop", "ccma")
    );
    // Multicast statistics from the AACC server: the group is no inventory host.
    let rsm = run.flow_on("UDP", "10.10.1.10", "239.255.1.1", 6020);
    assert_eq!(
        (rsm.verdict.as_str(), rsm.dest_roles()),
        ("documented", &["unknown".to_string()][..])
    );

    // Every flow and alert carries both role lists; the counters name the new verdict.
    assert_eq!(run.typed("flow").len(), 42);
    let per_verdict = &run.stats()["flows_per_verdict"];
    assert_eq!(per_verdict["role_mismatch"], 6, "{per_verdict}");
    assert_eq!(per_verdict["documented"], 22);
}

#[test]
fn unknown_hosts_fall_back_to_port_only_matching() {
    // An inventory that lists none of the sample's hosts but the AAMS: every
    // flow not touching it gets the verdict and rules it gets without a site.
    let dir = TempDir::new("site", "unknown");
    let site = dir.file(
        "site.toml",
        "schema = 1\n[systems]\naams = [\"10.10.1.20\"]\n",
    );
    let with = analyze_with_site(&site, &["-q"]);
    let sample = sample();
    let without = Run::of(&["analyze", "--json", "--flows", "-q", &sample]);
    let key = |e: &Value| {
        (
            e["src_ip"].to_string(),
            e["src_port"].to_string(),
            e["dest_ip"].to_string(),
            e["dest_port"].to_string(),
            e["proto"].to_string(),
        )
    };
    let plain: BTreeMap<_, (Value, Value)> = without
        .events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(|e| (key(e), (e["verdict"].clone(), e["rule_ids"].clone())))
        .collect();
    let mut compared = 0;
    for e in with.events.iter().filter(|e| e["event_type"] == "flow") {
        if e["dest_ip"] == "10.10.1.20" {
            assert_eq!(e["dest_roles"], serde_json::json!(["aams"]));
            continue;
        }
        assert_eq!(e["src_roles"], serde_json::json!(["unknown"]), "{e}");
        assert_eq!(
            Some(&(e["verdict"].clone(), e["rule_ids"].clone())),
            plain.get(&key(e)),
            "{e}"
        );
        compared += 1;
    }
    assert_eq!(compared, 38);
    // Without a site, nothing of the site's contract appears.
    assert!(without.events.iter().all(|e| e.get("src_roles").is_none()));
    assert!(without.stats()["flows_per_verdict"]
        .get("role_mismatch")
        .is_none());
    assert!(without.stats().get("suppressed").is_none());
}

fn classifier(site: &str) -> Classifier {
    let site = parse_site("site.toml", site).expect("valid site");
    Classifier::with_site(
        Arc::new(PortMatrix::builtin().expect("matrix")),
        Product::Aacc,
        Some(Arc::new(site)),
    )
}

/// (verdict, rule ids) of a flow from `src` to `dst` on `t`/`port`.
fn judge(c: &Classifier, t: Transport, port: u16, src: &str, dst: &str) -> (Verdict, Vec<String>) {
    let (client, server): (IpAddr, IpAddr) = (src.parse().expect("ip"), dst.parse().expect("ip"));
    let q = FlowQuery {
        transport: t,
        port,
        multicast: server.is_multicast(),
        same_host: client == server,
        client,
        server,
        vlan: None,
    };
    let r = c.classify(q);
    let (rules, _) = c.event_rules(r.decision, q.same_host);
    let ids = rules
        .iter()
        .map(|&i| c.matrix().rule(i).id.clone())
        .collect();
    (r.verdict, ids)
}

/// (why, transport, port, client, server, verdict, the rules the event names
/// when they are checked).
type RoleCase = (
    &'static str,
    Transport,
    u16,
    &'static str,
    &'static str,
    Verdict,
    Option<&'static [&'static str]>,
);

#[test]
fn wide_ranges_are_bound_to_their_systems() {
    use Transport::{Tcp, Udp};
    use Verdict::{Documented, RoleMismatch, Undocumented, WrongTransport};
    let c = classifier(SITE);
    #[rustfmt::skip]
    let cases: &[RoleCase] = &[
        ("RTP towards AAMS",         Udp, 20000, "10.10.20.21", "10.10.1.20",  Documented,     Some(&["2.2.5#17", "2.2.5#18"])),
        ("RTP towards CCMA",         Udp, 20000, "10.10.20.21", "10.10.1.11",  RoleMismatch,   Some(&["2.2.5#17", "2.2.5#18"])),
        ("RTP, unknown hosts",       Udp, 20000, "192.0.2.1",   "192.0.2.2",   Documented,     None),
        ("H.323 towards CM",         Tcp, 40001, "10.10.20.21", "10.10.1.80",  Documented,     Some(&["2.2.4#6"])),
        ("H.323 over UDP",           Udp, 50000, "10.10.20.21", "10.10.1.80",  Documented,     Some(&["2.2.4#6"])),
        ("H.323 range elsewhere",    Tcp, 40001, "10.10.20.21", "10.10.1.11",  Undocumented,   Some(&[])),
        ("H.323 range, unknown",     Tcp, 40001, "192.0.2.1",   "192.0.2.2",   Undocumented,   Some(&[])),
        ("Caché over UDP",           Udp, 1972,  "10.10.20.21", "10.10.1.12",  WrongTransport, None),
        ("RSM from the AACC server", Udp, 6020,  "10.10.1.10",  "239.255.1.1", Documented,     None),
        ("RTD from CCMA",            Udp, 7020,  "10.10.1.11",  "239.255.1.1", Documented,     None),
        ("RSM from CCMM",            Udp, 6020,  "10.10.1.12",  "239.255.1.1", RoleMismatch,   Some(&["2.2.2#3"])),
        ("RTD from an agent",        Udp, 7020,  "10.10.20.21", "239.255.1.1", RoleMismatch,   None),
        ("RSM from an unknown host", Udp, 6020,  "192.0.2.1",   "239.255.1.1", Documented,     None),
        // The issue's example: an agent desktop reaching Caché.
        ("agent to Caché",           Tcp, 1972,  "10.10.20.21", "10.10.1.10",  RoleMismatch,   None),
        // Internal-only rules still need the same host, of the right system.
        ("internal only",            Tcp, 8100,  "10.10.1.10",  "10.10.1.10",  Documented,     None),
    ];
    for &(why, t, port, client, server, verdict, rules) in cases {
        let (got, ids) = judge(&c, t, port, client, server);
        assert_eq!(got, verdict, "{why}");
        if let Some(rules) = rules {
            assert_eq!(ids, rules, "{why}");
        }
    }
}

#[test]
fn site_severities_override_the_defaults() {
    let dir = TempDir::new("site", "severity");
    let site = dir.file(
        "site.toml",
        &format!("{SITE}\n[severity]\nrole_mismatch = \"medium\"\n"),
    );
    let run = analyze_with_site(&site, &["-q"]);
    let jmx = run.flow("10.10.1.11", "10.10.1.10", 8100);
    assert_eq!(
        (jmx.verdict.as_str(), jmx.severity.as_str()),
        ("role_mismatch", "medium")
    );
}

#[test]
fn exceptions_suppress_until_they_expire_and_are_reported() {
    let dir = TempDir::new("site", "exceptions");
    let text = format!(
        r#"{SITE}
# Active: the CCMA -> SGM JMX flow (role_mismatch on 2.2.2#19).
[[exception]]
id = "jmx"
src = ["10.10.1.11"]
rule = "2.2.2#19"
until = 2099-12-31
why = "CHG-2: monitoring"

# Expires mid-capture: the flow to IP Office at 09:00:14 is covered, the one
# at 09:00:20 is not.
[[exception]]
id = "ipo"
dst = ["10.10.1.40"]
until = "2021-08-02T09:00:17Z"
why = "CHG-1: IP Office migration"

# Expired before the scan (09:00:41).
[[exception]]
id = "scan"
src = ["10.10.99.5"]
verdict = "undocumented"
until = "2021-08-02T09:00:30Z"
why = "CHG-3: old scan window"
"#
    );
    let site = dir.file("site.toml", &text);
    let run = analyze_with_site(&site, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let alerts = run.typed("alert");
    let alerted = |id: u64| alerts.iter().any(|a| a.flow_id == id);

    let jmx = run.flow("10.10.1.11", "10.10.1.10", 8100);
    assert_eq!(
        (jmx.suppressed, jmx.exception.as_deref()),
        (Some(true), Some("jmx"))
    );
    assert_eq!(jmx.verdict, "role_mismatch", "the verdict is kept");
    assert!(!alerted(jmx.flow_id));
    let early = run.flow("10.10.20.60", "10.10.1.40", 47810);
    assert_eq!(
        (early.suppressed, early.exception.as_deref()),
        (Some(true), Some("ipo"))
    );
    assert!(!alerted(early.flow_id));
    let late = run.flow("10.10.1.10", "10.10.1.40", 50796);
    assert_eq!(
        (late.suppressed, late.verdict.as_str()),
        (None, "out_of_profile")
    );
    assert!(alerted(late.flow_id));
    let scan = run.flow("10.10.99.5", "10.10.1.10", 8080);
    assert_eq!(scan.suppressed, None);
    assert!(alerted(scan.flow_id));

    let suppressed = &run.stats()["suppressed"];
    assert_eq!(suppressed["jmx"]["flows"], 1);
    assert_eq!(suppressed["jmx"]["why"], "CHG-2: monitoring");
    assert_eq!(
        (
            &suppressed["ipo"]["flows"],
            &suppressed["ipo"]["expired_flows"]
        ),
        (&1.into(), &1.into())
    );
    assert_eq!(
        (
            &suppressed["scan"]["flows"],
            &suppressed["scan"]["expired_flows"]
        ),
        (&0.into(), &8.into())
    );
    assert_eq!(suppressed["scan"]["until"], "2021-08-02T09:00:30Z");
    // Flagged flows are still counted per verdict.
    assert_eq!(run.stats()["flows_per_verdict"]["role_mismatch"], 6);

    // Expired by the wall clock: named at start; in the summary, with the flows they missed.
    let start = run
        .stderr
        .lines()
        .take_while(|l| !l.starts_with("portmatrix: 1 file"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        start.contains("exception `ipo`") && start.contains("exception `scan`"),
        "{start}"
    );
    assert!(!start.contains("exception `jmx`"), "{start}");
    assert!(run.stderr.contains("exception scan (CHG-3: old scan window, expired 2021-08-02T09:00:30Z): 0 flows suppressed; 8 flows after it expired were alerted"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("exception jmx (CHG-2: monitoring, until 2099-12-31): 1 flows suppressed\n"),
        "{}",
        run.stderr
    );
}

/// A verdict that comes after a flow's first packet (its payload contradicts
/// its rules, or shows its ends were taken the wrong way round) is judged
/// against the exceptions again: the exception of the verdict the flow has
/// when its alert is due is the one that applies, to its alert, its flow
/// event and the counts.
#[test]
fn exceptions_follow_a_verdict_the_payload_changed() {
    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];
    const C: [u8; 4] = [10, 0, 0, 3];
    let dir = TempDir::new("site", "later-verdicts");
    let site = dir.file(
        "site.toml",
        r#"schema = 1
[[exception]]
id = "first-reading"
dst = ["10.0.0.1"]
ports = [8443]
why = "names the turned flow as first read, when it was documented"

[[exception]]
id = "mismatch"
src = ["10.0.0.1"]
verdict = "protocol_mismatch"
why = "CHG-7: the HTTP probe on the SIP port"

[[exception]]
id = "turned"
dst = ["10.0.0.2"]
ports = [45000]
why = "CHG-8: the listener on 45000"
"#,
    );
    let mut p = Pcap::new();
    // HTTP on the SIP port: documented at the handshake, protocol_mismatch
    // at the request. From A the exception accepts it; from C nothing does.
    let http = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n";
    let not_found = b"HTTP/1.1 404 Not Found\r\n";
    p.conversation((A, 50004), (B, 5060), http, not_found);
    p.conversation((C, 50005), (B, 5060), http, not_found);
    // Picked up on an empty ACK, A's documented port 8443 looks like the
    // listener; the reply from 45000 shows who serves: turned round, undocumented.
    p.tcp((A, 8443), (B, 45000), ACK, b"");
    p.tcp(
        (B, 45000),
        (A, 8443),
        PSH | ACK,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    );
    let capture = p.write("site-later-verdicts", "later.pcap");
    let capture = capture.to_str().expect("path");
    let run = Run::of(&[
        "analyze", "-q", "--json", "--flows", "--site", &site, capture,
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let alerts = run.typed("alert");
    let alerted = |f: &FlowEvent| alerts.iter().any(|a| a.flow_id == f.flow_id);

    let accepted = run.flow("10.0.0.1", "10.0.0.2", 5060);
    assert_eq!(
        (
            accepted.verdict.as_str(),
            accepted.suppressed,
            accepted.exception.as_deref()
        ),
        ("protocol_mismatch", Some(true), Some("mismatch"))
    );
    assert!(!alerted(&accepted));
    let other = run.flow("10.0.0.3", "10.0.0.2", 5060);
    assert_eq!(
        (other.verdict.as_str(), other.suppressed),
        ("protocol_mismatch", None)
    );
    assert!(alerted(&other));
    let turned = run.flow("10.0.0.1", "10.0.0.2", 45000);
    assert_eq!(
        (
            turned.verdict.as_str(),
            turned.direction.as_str(),
            turned.suppressed,
            turned.exception.as_deref()
        ),
        ("undocumented", "payload", Some(true), Some("turned"))
    );
    assert!(!alerted(&turned));

    let suppressed = &run.stats()["suppressed"];
    let flows = |id: &str| {
        (
            suppressed[id]["flows"].as_u64(),
            suppressed[id]["expired_flows"].as_u64(),
        )
    };
    assert_eq!(flows("mismatch"), (Some(1), Some(0)));
    assert_eq!(flows("turned"), (Some(1), Some(0)));
    assert_eq!(flows("first-reading"), (Some(0), Some(0)));
}

#[test]
fn bad_site_files_are_refused_with_their_places() {
    let dir = TempDir::new("site", "bad");
    let site = dir.file(
        "bad.toml",
        "schema = 1\n[systems]\nccms = [\"10.0.0.1\"]\n\n[[exception]]\nrule = \"9.9.9#1\"\nwhy = \"x\"\n",
    );
    let sample = sample();
    let o = portmatrix(&["analyze", "--site", &site, &sample]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:3:1: systems.ccms: unknown system `ccms`"),
        "{err}"
    );
    // The rule ids are checked against the matrix once the file parses.
    let site = dir.file(
        "rule.toml",
        "schema = 1\n[[exception]]\nrule = \"9.9.9#1\"\nwhy = \"x\"\n",
    );
    let o = portmatrix(&["site", "check", &site]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("rule.toml:3:8: exception \"exception#1\": field `rule`: no rule `9.9.9#1`"),
        "{out}"
    );
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/site-example.toml");
    let o = portmatrix(&["site", "check", example.to_str().expect("path")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn rules_explain_shows_the_roles() {
    let dir = TempDir::new("site", "explain");
    let site = dir.file("site.toml", SITE);
    let o = portmatrix(&[
        "rules",
        "explain",
        "tcp/1972",
        "--src",
        "10.10.20.21",
        "--dst",
        "10.10.1.10",
        "--site",
        &site,
    ]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("roles:    agent_desktop -> aacc_server"),
        "{text}"
    );
    assert!(
        text.contains("verdict:  role_mismatch (severity high)"),
        "{text}"
    );
    let o = portmatrix(&[
        "rules",
        "explain",
        "udp/20000",
        "--src",
        "10.10.20.21",
        "--dst",
        "10.10.1.20",
        "--site",
        &site,
        "--json",
    ]);
    let e: Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(e["verdict"], "documented");
    assert_eq!(e["dest_roles"], serde_json::json!(["aams"]));
    let not_applied = e["not_applied"].as_array().expect("list");
    assert!(
        not_applied.iter().any(|n| n["id"] == "2.2.4#6"
            && n["reason"]
                .as_str()
                .is_some_and(|r| r.contains("communication_manager"))),
        "{not_applied:?}"
    );
}

#[test]
fn site_suggest_drafts_a_site_file_that_parses_back() {
    let dir = TempDir::new("site", "suggest");
    let draft = dir.0.join("draft.toml");
    let sample = sample();
    let o = portmatrix(&[
        "site",
        "suggest",
        &sample,
        "-o",
        draft.to_str().expect("path"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&draft).expect("draft");
    assert!(text.contains("# 10.10.1.10: aacc_server"), "{text}");
    assert!(
        text.contains("[[system]]\nname = \"aacc_server\"\naddresses = [\"10.10.1.10\"]"),
        "{text}"
    );
    assert!(
        text.contains("#   tcp/29373"),
        "evidence as comments: {text}"
    );
    // Clients (the stranger, agents) are not servers.
    assert!(
        !text.contains("\"10.10.99.5\"") && !text.contains("\"10.10.20.52\""),
        "{text}"
    );
    // The flows are analyze's: the AAMS's media port is its own even though
    // the AAMS sent the stream's first packet, and a port's first flow is
    // given by the start analyze reports for it (the SYN, not the SYN-ACK).
    assert!(
        text.contains("#   udp/31002     1 flow  first 2021-08-02T09:00:22.000000Z"),
        "{text}"
    );
    assert!(
        text.contains("#   tcp/1972      1 flow  first 2021-08-02T09:00:41.150000Z"),
        "{text}"
    );
    let site = parse_site("draft.toml", &text).expect("the draft parses");
    let roles = |ip: &str| site.roles_of(ip.parse().expect("ip"), None).names();
    assert_eq!(roles("10.10.1.10"), ["aacc_server"]);
    assert_eq!(roles("10.10.1.20"), ["aams"]);
    assert_eq!(roles("10.10.1.30"), ["session_manager"]);
    // The CCMM server answered only on 1972, which the AACC server and CCT
    // share: it is not labelled aacc_server, and the draft and stderr say a
    // tie was broken.
    assert_eq!(roles("10.10.1.12"), ["ccmm"]);
    assert!(
        text.contains(
            "# 10.10.1.12: ccmm (score 0.3; next: aacc_server 0.3, cct 0.3)\n\
#   a tie with aacc_server, cct: the ports cannot tell them apart, and ccmm is\n"
        ),
        "{text}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(
            "portmatrix: 10.10.1.12: ccmm ties with aacc_server, cct: the draft names ccmm"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("10.10.1.10:"),
        "no tie for the AACC server: {stderr}"
    );
    // And it works with --site as written.
    let run = analyze_with_site(draft.to_str().expect("path"), &["-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.flow("10.10.1.10", "10.10.1.30", 5060).verdict,
        "documented"
    );
}

/// Writes a capture with a SYN scan from 10.20.250.99 (scripts/gen-traffic).
fn scan_capture(dir: &TempDir) -> Option<String> {
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: python3 is needed to generate the scan capture");
        return None;
    }
    let out = dir.0.join("scan.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
    let o = Command::new("python3")
        .arg(script)
        .arg("-o")
        .arg(&out)
        .args(["--packets", "20000", "--scan", "400", "--seed", "3"])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(out.to_str().expect("path").to_string())
}

#[test]
fn storm_control_folds_a_scan_into_summaries_and_loses_no_flow() {
    const SCANNER: &str = "10.20.250.99";
    let dir = TempDir::new("site", "storm");
    let Some(capture) = scan_capture(&dir) else {
        return;
    };
    let run = |extra: &[&str]| {
        let mut args = vec!["analyze", "--json", "--flows", "-q"];
        args.extend_from_slice(extra);
        args.push(&capture);
        Run::of(&args)
    };
    let one = run(&["--workers", "1"]);
    let from_scanner = |r: &Run, t: &str| {
        r.events
            .iter()
            .filter(|e| e["event_type"] == t && e["src_ip"] == SCANNER)
            .count() as u64
    };
    let flagged = one
        .events
        .iter()
        .filter(|e| {
            e["event_type"] == "flow" && e["src_ip"] == SCANNER && e["verdict"] != "documented"
        })
        .count() as u64;
    assert!(flagged > 300, "{flagged} flagged scan flows");
    // The first 100 alerts of the minute are written, the rest folded.
    assert_eq!(from_scanner(&one, "alert"), 100);
    let summaries: Vec<AlertSummary> = one
        .events
        .iter()
        .filter(|e| e["event_type"] == "alert_summary")
        .map(|e| serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{err}: {e}")))
        .collect();
    assert_eq!(summaries.len(), 1, "the scan lasts under a minute");
    let s = &summaries[0];
    assert_eq!(s.src_ip.to_string(), SCANNER);
    assert_eq!(s.count, flagged - 100);
    assert_eq!(s.verdicts.values().sum::<u64>(), s.count);
    assert_eq!(
        (s.ports.len(), s.targets[0].ip.to_string().as_str()),
        (10, "10.10.1.10")
    );
    assert!(s.window_start < s.window_end && s.last_alert < s.window_end);
    let storms = &one.stats()["alert_storms"];
    assert_eq!(storms["alerts_folded"], flagged - 100);
    assert_eq!(storms["summaries"], 1);
    // Nothing lost: every scan flow still has its flow event and verdict.
    assert_eq!(from_scanner(&one, "flow") as usize, 400);

    // The same alerts are folded whatever the number of workers.
    let sorted = |r: &Run| {
        let mut lines: Vec<String> = r.events.iter().map(|e| e.to_string()).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&one), sorted(&run(&["--workers", "4"])));
    // --alert-burst 0 turns it off.
    let off = run(&["--alert-burst", "0"]);
    assert_eq!(from_scanner(&off, "alert"), flagged);
    assert!(off.stats().get("alert_storms").is_none());
}
