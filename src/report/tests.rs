//! The report from events to page: merging alerts with flow events, counting
//! malformed lines, coverage, and escaping hostile strings everywhere.

use std::io::Cursor;

use crate::matrix::{PortMatrix, Product};
use crate::verdict::Verdict;

use super::{render, Model, ModelBuilder, Page};

const ALERT: &str = r#"{"timestamp":"2021-08-02T09:00:18.000000Z","event_type":"alert","flow_id":7,"community_id":"1:x","proto":"TCP","src_ip":"10.10.1.11","src_port":51234,"dest_ip":"10.10.1.10","dest_port":8100,"verdict":"internal_only","severity":"high","rule_ids":["2.2.2#19"],"direction":"handshake"}"#;
const FLAGGED_FLOW: &str = r#"{"timestamp":"2021-08-02T09:00:18.010000Z","event_type":"flow","flow_id":7,"community_id":"1:x","proto":"TCP","src_ip":"10.10.1.11","src_port":51234,"dest_ip":"10.10.1.10","dest_port":8100,"verdict":"internal_only","severity":"high","rule_ids":["2.2.2#19"],"direction":"handshake","start":"2021-08-02T09:00:18.000000Z","end":"2021-08-02T09:00:18.010000Z","pkts_toserver":6,"pkts_toclient":4,"bytes_toserver":367,"bytes_toclient":257,"tcp_state":"closed","reason":"closed"}"#;
const DOCUMENTED_FLOW: &str = r#"{"timestamp":"2021-08-02T09:00:08.058000Z","event_type":"flow","flow_id":9,"community_id":"1:y","proto":"TCP","src_ip":"10.10.20.51","src_port":49732,"dest_ip":"10.10.1.11","dest_port":443,"verdict":"documented","severity":"info","rule_ids":["2.2.2#2"],"direction":"handshake","start":"2021-08-02T09:00:08.000000Z","end":"2021-08-02T09:00:08.058000Z","pkts_toserver":8,"pkts_toclient":6,"bytes_toserver":1416,"bytes_toclient":2964,"tcp_state":"closed","reason":"closed"}"#;
const STATS: &str = r#"{"timestamp":"2021-08-02T09:00:55.800000Z","event_type":"stats","stats":{"packets":780,"bytes":150783,"tcp_udp_packets":763,"flows":2,"flows_per_verdict":{"documented":1,"internal_only":1},"other_protocols":{"arp":8},"decode_failures":{"truncated":3},"evictions":0,"timeouts":0,"drops":{"kernel":5},"files":[{"path":"a.pcapng","format":"pcapng","packets":780,"bytes_read":177116}]}}"#;

fn model(text: &str) -> Model {
    let mut b = ModelBuilder::new();
    b.read("events.jsonl", Cursor::new(text.as_bytes()))
        .expect("reading from memory cannot fail");
    b.finish()
}

fn page(m: &Model) -> String {
    let matrix = PortMatrix::builtin().expect("built-in matrix");
    render(&Page {
        title: "t",
        model: m,
        matrix: &matrix,
        product: Product::Aacc,
        drift: None,
    })
    .expect("render")
}

#[test]
fn an_alert_and_its_flow_event_are_one_flow() {
    let m = model(&[ALERT, DOCUMENTED_FLOW, FLAGGED_FLOW, STATS].join("\n"));
    assert_eq!((m.alert_events, m.flow_events, m.stats_events), (1, 2, 1));
    assert_eq!(m.flows, 2);
    assert_eq!(m.flagged.len(), 1);
    assert_eq!(m.flagged[0].packets, Some(10));
    assert_eq!(m.alerts_without_flow, 0);
    assert_eq!(m.verdicts.get(&Verdict::InternalOnly), Some(&1));
    let rule = m.rules.get("2.2.2#19").expect("rule used");
    assert_eq!((rule.flows, rule.flagged, rule.bytes), (1, 1, 624));
}

#[test]
fn an_alert_without_a_flow_event_is_a_flagged_flow_without_counts() {
    let m = model(ALERT);
    assert_eq!(m.flows, 1);
    assert_eq!(m.alerts_without_flow, 1);
    assert_eq!(m.flagged[0].packets, None);
    assert!(page(&m).contains("alerts but no <code>flow</code> events"));
}

#[test]
fn stats_counters_are_read_generically() {
    let m = model(STATS);
    let s = m.stats.as_ref().expect("stats");
    assert_eq!(s.get("packets"), Some(780));
    assert_eq!(s.get("decode_failures.truncated"), Some(3));
    assert_eq!(s.get("drops.kernel"), Some(5));
    assert_eq!(s.files.len(), 1);
    assert_eq!(
        m.flows_per_verdict().get(&Verdict::Documented),
        Some(&1),
        "from the stats event"
    );
    let html = page(&m);
    assert!(html.contains("drops.kernel"), "unknown counters are shown");
    assert!(html.contains("The data is incomplete"));
}

#[test]
fn chosen_limits_and_evidence_counters_are_not_losses() {
    let stats = r#"{"timestamp":"2021-08-02T09:00:55.800000Z","event_type":"stats","stats":{"packets":780,"bytes":1,"tcp_udp_packets":1,"flows":1,"flows_per_verdict":{"documented":1},"other_protocols":{},"decode_failures":{},"encapsulated":{"gre":4},"evictions":0,"timeouts":2,"filtered":7,"active_flows":0,"extract":{"files":15,"packets":68,"bytes":18900,"capped_packets":3,"capped_flows":1,"errors":0},"files":[]}}"#;
    let html = page(&model(stats));
    assert!(
        html.contains("The data is complete"),
        "focus, caps and evidence are choices"
    );
    let failed = stats.replace("\"errors\":0", "\"errors\":2");
    assert!(page(&model(&failed)).contains("The data is incomplete"));
}

#[test]
fn folded_alerts_and_one_sided_flows_are_notes_not_losses() {
    let stats = r#"{"timestamp":"2021-08-02T09:00:55.800000Z","event_type":"stats","stats":{"packets":780,"bytes":1,"tcp_udp_packets":1,"flows":1,"flows_per_verdict":{"documented":1},"other_protocols":{},"decode_failures":{},"encapsulated":{},"evictions":0,"timeouts":0,"one_sided_flows":4,"resumed_flows":2,"duplicates":9,"alert_storms":{"alerts_folded":1395,"summaries":1},"alert_latency":{"count":3,"p99_us":1200},"files":[]}}"#;
    let html = page(&model(stats));
    assert!(html.contains("The data is complete"), "nothing was lost");
    assert!(!html.contains("The data is incomplete"));
    assert!(
        html.contains("<div class=\"note\">alert_storms.alerts_folded: 1,395 alerts"),
        "the folding is a note"
    );
    assert!(html.contains("every flow kept its verdict"));
    assert!(html.contains("<div class=\"note\">one_sided_flows: 4 TCP flows"));
    assert!(!html.contains("warnv\">1,395"), "not shown as a warning");
}

#[test]
fn what_an_output_delivered_is_not_a_loss_what_it_lost_is() {
    let stats = r#"{"timestamp":"2021-08-02T09:00:55.800000Z","event_type":"stats","stats":{"packets":780,"bytes":1,"tcp_udp_packets":1,"flows":1,"flows_per_verdict":{"documented":1},"other_protocols":{},"decode_failures":{},"encapsulated":{},"evictions":0,"timeouts":0,"kafka":{"delivered":40,"failed":0,"dropped":0,"queued":17},"syslog":{"sent":57,"dropped":0,"reconnects":1},"files":[]}}"#;
    assert!(
        page(&model(stats)).contains("The data is complete"),
        "delivered, queued when the stats were written, sent, reconnected"
    );
    for lost in [
        stats.replace("\"failed\":0", "\"failed\":2"),
        stats.replace("\"dropped\":0,\"queued\"", "\"dropped\":2,\"queued\""),
        stats.replace(
            "\"dropped\":0,\"reconnects\"",
            "\"dropped\":2,\"reconnects\"",
        ),
    ] {
        assert_ne!(lost, stats);
        assert!(
            page(&model(&lost)).contains("The data is incomplete"),
            "{lost}"
        );
    }
}

#[test]
fn the_alarm_names_each_loss() {
    let stats = r#"{"timestamp":"2021-08-02T09:00:55.800000Z","event_type":"stats","stats":{"packets":780,"bytes":1,"tcp_udp_packets":1,"flows":1,"flows_per_verdict":{"documented":1},"other_protocols":{},"decode_failures":{"truncated":2},"encapsulated":{},"evictions":3,"timeouts":0,"queue_drops":{"worker_queue_full":7},"alert_storms":{"alerts_folded":10,"summaries":1},"interfaces":[{"name":"eth0","packets":5,"kernel_received":9,"kernel_dropped":4,"interface_dropped":1,"error":"the interface went down"}],"files":[]}}"#;
    let html = page(&model(stats));
    let start = html.find("The data is incomplete:").expect("the alarm");
    let alarm = &html[start..start + html[start..].find("</div>").expect("its end")];
    for loss in [
        "2 packets could not be decoded",
        "3 flows were evicted (the flow table was full)",
        "7 packets dropped inside portmatrix (worker_queue_full)",
        "4 packets dropped by the kernel",
        "1 packets dropped by the interface",
        "1 capture interface(s) stopped with an error",
    ] {
        assert!(alarm.contains(loss), "{loss} in {alarm}");
    }
    assert!(!alarm.contains("alert"), "folding is not a loss: {alarm}");
}

#[test]
fn only_the_last_stats_event_of_an_input_counts() {
    let later = STATS.replace("\"packets\":780", "\"packets\":900");
    let m = model(&[STATS, later.as_str()].join("\n"));
    assert_eq!(m.stats.as_ref().and_then(|s| s.get("packets")), Some(900));
    let mut b = ModelBuilder::new();
    for name in ["a", "b"] {
        b.read(name, Cursor::new(STATS.as_bytes())).expect("read");
    }
    let two = b.finish();
    assert_eq!(
        two.stats.as_ref().and_then(|s| s.get("packets")),
        Some(1560)
    );
}

#[test]
fn malformed_lines_are_counted_with_file_and_line_and_skipped() {
    let text = [
        DOCUMENTED_FLOW,
        "{ not json",
        "",
        r#"{"event_type":"flow","flow_id":1}"#,
        "\u{0}\u{1}",
        r#"{"event_type":"something_new","x":1}"#,
        FLAGGED_FLOW,
    ]
    .join("\r\n");
    let m = model(&text);
    assert_eq!(m.bad_lines, 3);
    assert_eq!(m.flows, 2, "the good lines around the bad ones count");
    assert_eq!(m.other_events, 1);
    let lines: Vec<u64> = m.line_errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 4, 5]);
    assert!(m.line_errors[0]
        .to_string()
        .starts_with("events.jsonl:2: column"));
    assert_eq!(m.inputs[0].lines, 7);
    assert_eq!(m.inputs[0].bad_lines, 3);
}

#[test]
fn not_utf8_and_overlong_lines_are_skipped() {
    let mut bytes = b"\xff\xfe\n".to_vec();
    bytes.extend(vec![b' '; super::MAX_LINE_BYTES + 10]);
    bytes.push(b'\n');
    bytes.extend(DOCUMENTED_FLOW.as_bytes());
    let mut b = ModelBuilder::new();
    b.read("x", Cursor::new(bytes)).expect("read");
    let m = b.finish();
    assert_eq!(m.bad_lines, 2);
    assert!(m.line_errors[0].message.contains("UTF-8"));
    assert!(m.line_errors[1].message.contains("longer than"));
    assert_eq!(m.flows, 1);
}

#[test]
fn coverage_has_every_rule_and_marks_unused_open_ones() {
    let matrix = PortMatrix::builtin().expect("built-in matrix");
    let m = model(&[DOCUMENTED_FLOW, FLAGGED_FLOW].join("\n"));
    let cov = m.coverage(&matrix, Product::Aacc);
    assert_eq!(cov.rows.len(), matrix.rules().len());
    let row = |id: &str| {
        cov.rows
            .iter()
            .find(|r| r.rule.id == id)
            .expect("rule in coverage")
    };
    assert_eq!(row("2.2.2#2").usage.flows, 1);
    assert!(!row("2.2.2#2").candidate);
    // Internal-only: not an opening between hosts, so not a candidate.
    assert!(!row("2.2.2#19").candidate);
    // 2.2.2#1 (tcp/80, open) saw nothing here.
    assert!(row("2.2.2#1").candidate);
    assert!(cov.unknown.is_empty());
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let evil = "<script>alert(1)</script>";
    let flow = FLAGGED_FLOW
        .replace(
            "\"2.2.2#19\"",
            &format!("\"{}\"", evil.replace('"', "\\\"")),
        )
        .replace(
            "\"reason\":\"closed\"",
            "\"reason\":\"closed\",\"evidence\":\"javascript:alert(1)\"",
        );
    let stats = STATS
        .replace("\"truncated\"", "\"<img src=x onerror=alert(2)>\"")
        .replace("a.pcapng", "<b>a</b>.pcapng");
    let bad = format!("{{\"event_type\":\"{evil}\"");
    let m = model(&[flow.as_str(), stats.as_str(), bad.as_str()].join("\n"));
    assert_eq!(m.bad_lines, 1);
    let html = page(&m);
    for raw in [evil, "<img src=x", "<b>a</b>", "href=\"javascript:"] {
        assert!(!html.contains(raw), "{raw} is not escaped");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("javascript:alert(1)"), "shown as text");
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
}

#[test]
fn an_empty_input_still_makes_a_page() {
    let html = page(&model(""));
    assert!(html.contains("No flows in the events"));
    assert!(html.contains("no stats event"));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn line_errors_are_short_and_free_of_control_characters() {
    let long = "x".repeat(10_000);
    // A JSON escape, so the value holds a real ESC that serde's message quotes.
    let line = FLAGGED_FLOW.replace("internal_only", &format!("\\u001b[31m{long}"));
    let m = model(&line);
    assert_eq!(m.bad_lines, 1);
    let message = &m.line_errors[0].message;
    assert!(message.chars().count() <= 241, "{} chars", message.len());
    assert!(
        message.contains("unknown variant `\u{fffd}[31mxxx"),
        "{message}"
    );
    assert!(message.ends_with('…'));
    assert!(!message.chars().any(char::is_control), "{message}");
}

#[test]
fn a_plain_evidence_path_is_a_relative_link() {
    let flow = FLAGGED_FLOW.replace(
        "\"reason\":\"closed\"",
        "\"reason\":\"closed\",\"evidence\":\"evidence/flow 7.pcapng\"",
    );
    let html = page(&model(&flow));
    assert!(
        html.contains(
            r#"<a href="evidence/flow%207.pcapng" title="evidence/flow 7.pcapng">flow 7.pcapng</a>"#
        ),
        "{html}"
    );
}

#[test]
fn the_same_events_give_the_same_page() {
    let text = [ALERT, DOCUMENTED_FLOW, FLAGGED_FLOW, STATS].join("\n");
    assert_eq!(page(&model(&text)), page(&model(&text)));
}

#[test]
fn rule_ids_the_matrix_does_not_have_are_named() {
    let flow = FLAGGED_FLOW.replace("\"2.2.2#19\"", "\"site#9\"");
    let m = model(&flow);
    let matrix = PortMatrix::builtin().expect("built-in matrix");
    let cov = m.coverage(&matrix, Product::Aacc);
    assert_eq!(cov.unknown.len(), 1);
    assert_eq!(cov.unknown[0].0, "site#9");
    let html = page(&m);
    assert!(html.contains("site#9 (1 flow)"));
    assert!(html.contains("not in this matrix"));
}

#[test]
fn a_flood_of_spoofed_sources_is_folded_keeping_the_busiest_hosts_exact() {
    use super::model::MAX_EDGES;
    let line = |i: u32, src: std::net::Ipv4Addr| {
        DOCUMENTED_FLOW
            .replace("\"flow_id\":9", &format!("\"flow_id\":{i}"))
            .replace("10.10.20.51", &src.to_string())
    };
    let mut text = String::new();
    // Five busy hosts among 120,000 spoofed ones (each seen once).
    for i in 0..(MAX_EDGES as u32 + 20_000) {
        text.push_str(&line(i, std::net::Ipv4Addr::from(0x0a40_0000 + i)));
        text.push('\n');
        if i % 100 == 0 {
            let busy = std::net::Ipv4Addr::new(10, 10, 9, (i / 100 % 5) as u8);
            text.push_str(&line(i + (1 << 24), busy));
            text.push('\n');
        }
    }
    let m = model(&text);
    assert!(m.edges.len() <= MAX_EDGES, "{}", m.edges.len());
    // Totals stay exact.
    assert_eq!(m.edges.values().map(|u| u.flows).sum::<u64>(), m.flows);
    assert_eq!(m.flows, MAX_EDGES as u64 + 20_000 + 1_200);
    // The busy hosts are kept with their exact counts; the rest are "other hosts".
    for d in 0..5u8 {
        let busy = Some(std::net::IpAddr::from([10, 10, 9, d]));
        let flows: u64 = m
            .edges
            .iter()
            .filter(|(k, _)| k.client == busy)
            .map(|(_, u)| u.flows)
            .sum();
        assert_eq!(flows, 240, "10.10.9.{d}");
    }
    assert!(m.edges.keys().any(|k| k.client.is_none()));
    let html = page(&m);
    assert!(
        html.contains("other hosts (folded)"),
        "the diagram names the folded hosts"
    );
    assert!(
        html.contains("busiest per side are counted together as other hosts"),
        "the page says hosts were folded"
    );
}

#[test]
fn top_undocumented_ports_rank_by_distinct_clients_then_servers() {
    use super::graph::tests::{key, usage};
    let mut m = Model::default();
    // A scanner probes ports 1-30 once each (earlier and more flows in all
    // than any one service); three clients use 4444 on one server, two use
    // 8080 on two servers.
    for port in 1..=30 {
        m.edges.insert(
            key("10.9.9.9", "10.0.0.1", port, Verdict::Undocumented),
            usage(2),
        );
    }
    for c in ["10.1.0.1", "10.1.0.2", "10.1.0.3"] {
        m.edges
            .insert(key(c, "10.0.0.1", 4444, Verdict::Undocumented), usage(1));
    }
    for (c, s) in [("10.1.0.1", "10.0.0.1"), ("10.1.0.2", "10.0.0.2")] {
        m.edges
            .insert(key(c, s, 8080, Verdict::Undocumented), usage(1));
    }
    m.edges.insert(
        key("10.1.0.9", "10.0.0.1", 443, Verdict::Documented),
        usage(50),
    );
    let html = page(&m);
    let start = html.find("id=\"top-ports-table\"").expect("the table");
    let table = &html[start..start + html[start..].find("</table>").expect("end")];
    let order: Vec<&str> = table
        .split("<td class=\"mono\">")
        .skip(1)
        .map(|r| &r[..r.find('<').expect("cell end")])
        .collect();
    assert_eq!(order.len(), 20, "the top 20");
    assert_eq!(&order[..3], ["tcp/4444", "tcp/8080", "tcp/1"]);
    assert!(
        !order.contains(&"tcp/443"),
        "documented ports are not listed"
    );
    assert!(html.contains("32 undocumented ports"));
}

#[test]
fn a_time_window_keeps_the_flows_that_overlap_it() {
    let at = |s: &str| s.parse::<crate::timestamp::Timestamp>().expect("time");
    let text = [ALERT, DOCUMENTED_FLOW, FLAGGED_FLOW, STATS].join("\n");
    let window = |since: &str, until: &str| {
        let mut b = ModelBuilder::new().time_window(Some(at(since)), Some(at(until)));
        b.read("events.jsonl", Cursor::new(text.as_bytes()))
            .expect("reading from memory cannot fail");
        b.finish()
    };
    // The flagged flow runs 09:00:18.000 to 18.010: a window ending inside it keeps it.
    let m = window("2021-08-02T09:00:10Z", "2021-08-02T09:00:18.005Z");
    assert_eq!((m.flows, m.outside_window), (1, 1));
    assert_eq!(m.flagged.len(), 1);
    // The until bound is not in the window; the stats still count.
    let m = window("2021-08-02T09:00:00Z", "2021-08-02T09:00:08Z");
    assert_eq!((m.flows, m.outside_window), (0, 2));
    assert!(m.stats.is_some());
    assert!(page(&m).contains("2 left out"));
}
