//! The built-in matrix against the vendor document, and the verdicts it gives.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use portmatrix::classify::{Classifier, FlowQuery};
use portmatrix::matrix::{
    parse_rules, DefaultState, Listener, PortMatrix, Product, Profile, RulesFile, BUILTIN_RULES,
};
use portmatrix::transport::Transport::{self, Tcp, Udp};
use portmatrix::verdict::Severity;
use portmatrix::verdict::Verdict;

fn builtin() -> Arc<PortMatrix> {
    Arc::new(PortMatrix::builtin().expect("the built-in matrix is valid"))
}

fn classifier(product: Product) -> Classifier {
    Classifier::new(builtin(), product)
}

/// (verdict, severity, every rule id, deciding rule ids) for a flow from `src` to `dst`.
fn judge(
    c: &Classifier,
    t: Transport,
    port: u16,
    src: &str,
    dst: &str,
) -> (Verdict, Severity, Vec<String>, Vec<String>) {
    let src: IpAddr = src.parse().expect("test address");
    let dst: IpAddr = dst.parse().expect("test address");
    let r = c.classify(FlowQuery {
        transport: t,
        port,
        multicast: dst.is_multicast(),
        same_host: src == dst,
        client: src,
        server: dst,
        vlan: None,
    });
    let ids = |list: &[u16]| {
        list.iter()
            .map(|&i| c.matrix().rule(i).id.clone())
            .collect::<Vec<_>>()
    };
    (r.verdict, r.severity, ids(r.rule_ids), ids(r.deciding()))
}

const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";

fn verdict(c: &Classifier, t: Transport, port: u16) -> Verdict {
    judge(c, t, port, A, B).0
}

#[test]
fn every_document_row_is_a_rule_with_a_stable_id() {
    let m = builtin();
    let mut per_section: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for r in m.rules() {
        let (section, row) = r.id.split_once('#').expect("id has a #");
        per_section
            .entry(section)
            .or_default()
            .push(row.parse().expect("row number"));
    }
    let counts: Vec<(&str, usize)> = per_section.iter().map(|(s, v)| (*s, v.len())).collect();
    assert_eq!(
        counts,
        vec![
            ("2.2.2", 65),
            ("2.2.3", 15),
            ("2.2.4", 12),
            ("2.2.5", 31),
            ("2.2.6", 9),
            ("2.3.1", 8),
            ("3-notes", 5)
        ]
    );
    assert_eq!(m.rules().len(), 145);
    for (section, rows) in per_section {
        let expected: Vec<usize> = (1..=rows.len()).collect();
        assert_eq!(
            rows, expected,
            "rows of {section} are numbered 1..n in order"
        );
    }
}

#[test]
fn verbatim_cells_come_from_the_document() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/seed/avaya-aacc-7.1.2-port-matrix.txt"),
    );
    let Ok(doc) = doc else {
        eprintln!("note: ../shared/seed is not here; skipping the verbatim check");
        return;
    };
    for r in builtin().rules() {
        for cell in [
            &r.description,
            &r.source,
            &r.destination,
            &r.document.destination_port,
        ] {
            assert!(
                doc.contains(cell.as_str()),
                "{}: `{cell}` is not in the document",
                r.id
            );
        }
        assert!(!r.component.is_empty(), "{} has a component", r.id);
    }
}

#[test]
fn defects_the_issue_names_are_resolved_and_noted() {
    let m = builtin();
    let rule = |id: &str| m.find(id).unwrap_or_else(|| panic!("{id} exists"));
    // Typos resolved: "7030,," and "715 0" / "715 5".
    assert!(rule("2.2.2#5").covers_port(7030) && rule("2.2.2#5").covers_port(7150));
    assert!(rule("2.2.2#6").covers_port(7155));
    // Listening ports written in the source column: the port is taken from
    // there; the listening system is the destination's, except in 2.2.2#42,
    // the one row written backwards (the LM clients listen).
    for id in ["2.2.2#5", "2.2.2#6", "2.2.2#42", "2.2.2#54", "2.2.2#55"] {
        let r = rule(id);
        let expected = if id == "2.2.2#42" {
            Listener::Source
        } else {
            Listener::Destination
        };
        assert_eq!(r.listener, expected, "{id}");
        assert!(!r.listen_ports.is_empty(), "{id} has its ports");
        assert!(
            r.note
                .as_deref()
                .is_some_and(|n| n.contains("source column")),
            "{id} explains where its port was written"
        );
    }
    // H.323 invalid range: clamped and bound to roles.
    let h323 = rule("2.2.4#6");
    assert!(h323.needs_roles);
    assert_eq!(h323.listen_ports[0].hi, 65535);
    // 1150 vs 1550.
    assert!(rule("2.2.2#44").covers_port(1150) && rule("2.2.2#44").covers_port(1550));
    // Duplicates are kept, and say so.
    for id in ["2.2.2#46", "2.2.2#47", "2.2.4#5", "2.2.4#10"] {
        assert!(
            rule(id)
                .note
                .as_deref()
                .is_some_and(|n| n.contains("duplicate")),
            "{id}"
        );
    }
    // Every rule that needed interpretation carries a note.
    for r in m.rules() {
        let needs_note = r.listener == Listener::Source
            || r.needs_roles
            || r.default_state == DefaultState::Unspecified
            || r.document.source_port.contains("Ephermeral");
        assert!(!needs_note || r.note.is_some(), "{} needs a note", r.id);
        if r.deprecated && r.document.change.as_deref() != Some("Removed") {
            assert!(r.replaced_by.is_some(), "{} says what replaced it", r.id);
        }
    }
}

#[test]
fn every_flag_occurs_in_the_builtin_matrix() {
    let m = builtin();
    let rules = m.rules();
    assert!(rules.iter().any(|r| r.optional == Some(true)));
    assert!(rules.iter().any(|r| r.optional == Some(false)));
    assert!(rules
        .iter()
        .any(|r| r.default_state == DefaultState::Closed));
    assert!(rules
        .iter()
        .any(|r| r.default_state == DefaultState::OpenIfHa));
    assert!(rules.iter().any(|r| r.internal_only));
    assert!(rules.iter().any(|r| r.ha_only));
    assert!(rules.iter().any(|r| r.windows_only));
    assert!(rules.iter().any(|r| r.multicast));
    assert!(rules.iter().any(|r| r.deprecated));
    assert!(rules.iter().any(|r| r.profile == Profile::Accs));
    assert_eq!(rules.iter().filter(|r| r.internal_only).count(), 23);
}

#[test]
fn documented_and_undocumented() {
    let c = classifier(Product::Aacc);
    assert_eq!(verdict(&c, Tcp, 443), Verdict::Documented);
    assert_eq!(verdict(&c, Udp, 123), Verdict::Documented);
    assert_eq!(verdict(&c, Tcp, 29373), Verdict::Documented);
    assert_eq!(verdict(&c, Tcp, 9999), Verdict::Undocumented);
    assert_eq!(verdict(&c, Udp, 46000), Verdict::Undocumented);
    assert_eq!(verdict(&c, Tcp, 0), Verdict::Undocumented);
    let (_, sev, ids, _) = judge(&c, Tcp, 9999, A, B);
    assert_eq!(sev, Severity::High);
    assert!(ids.is_empty());
}

#[test]
fn wrong_transport_names_the_other_transports_rules() {
    let c = classifier(Product::Aacc);
    let (v, sev, ids, _) = judge(&c, Udp, 1972, A, B);
    assert_eq!((v, sev), (Verdict::WrongTransport, Severity::High));
    assert!(ids.contains(&"2.2.3#1".to_string()), "{ids:?}");
    assert_eq!(verdict(&c, Tcp, 123), Verdict::WrongTransport);
    assert_eq!(verdict(&c, Udp, 1000), Verdict::WrongTransport);
    assert_eq!(verdict(&c, Udp, 50000), Verdict::WrongTransport);
    // A TCP port inside the UDP media range is not a listening port of UDP.
    assert_eq!(verdict(&c, Tcp, 30000), Verdict::Undocumented);
}

#[test]
fn internal_only_depends_on_crossing_the_wire() {
    let c = classifier(Product::Aacc);
    // SGM JMX 8100: INTERNAL ONLY, open.
    assert_eq!(judge(&c, Tcp, 8100, A, B).0, Verdict::InternalOnly);
    assert_eq!(judge(&c, Tcp, 8100, A, A).0, Verdict::Documented);
    // ConfMP MSLink 7080: INTERNAL ONLY and closed by default.
    assert_eq!(judge(&c, Tcp, 7080, A, B).0, Verdict::InternalOnly);
    assert_eq!(judge(&c, Tcp, 7080, A, A).0, Verdict::ClosedByDefault);
    assert_eq!(judge(&c, Tcp, 7080, A, B).1, Severity::High);
}

#[test]
fn closed_by_default_and_deprecated() {
    let c = classifier(Product::Aacc);
    let (v, sev, ids, _) = judge(&c, Tcp, 31390, A, B);
    assert_eq!((v, sev), (Verdict::ClosedByDefault, Severity::Low));
    assert_eq!(ids, vec!["2.2.6#4"]);
    for (t, port) in [
        (Tcp, 52005),
        (Tcp, 5070),
        (Udp, 5070),
        (Tcp, 5071),
        (Tcp, 8009),
        (Tcp, 51080),
    ] {
        assert_eq!(verdict(&c, t, port), Verdict::Deprecated, "{t}/{port}");
    }
    // Windows AAMS media range (deprecated) beyond the Linux range.
    assert_eq!(verdict(&c, Udp, 40000), Verdict::Deprecated);
    assert_eq!(judge(&c, Udp, 40000, A, B).1, Severity::Medium);
    // Where the ranges overlap, the Linux range documents it.
    assert_eq!(verdict(&c, Udp, 25000), Verdict::Documented);
    // Port 80 was changed for AAMS SOAP but is still IIS's port.
    let (v, _, ids, _) = judge(&c, Tcp, 80, A, B);
    assert_eq!(v, Verdict::Documented);
    assert!(ids.contains(&"2.3.1#1".to_string()) && ids.contains(&"2.2.2#1".to_string()));
    // 2.3.1's added ports are current.
    assert_eq!(verdict(&c, Tcp, 7150), Verdict::Documented);
}

#[test]
fn profiles() {
    let aacc = classifier(Product::Aacc);
    let accs = classifier(Product::Accs);
    let (v, sev, ids, _) = judge(&aacc, Tcp, 50796, A, B);
    assert_eq!((v, sev), (Verdict::OutOfProfile, Severity::Medium));
    assert_eq!(ids, vec!["2.2.2#22"]);
    assert_eq!(verdict(&accs, Tcp, 50796), Verdict::Documented);
    // 8443 is ACCS's IP Office port and also AAMS Element Manager for both.
    assert_eq!(verdict(&aacc, Tcp, 8443), Verdict::Documented);
    assert_eq!(verdict(&accs, Tcp, 8443), Verdict::Documented);
    assert_eq!(judge(&aacc, Tcp, 8443, A, B).2.len(), 2);
}

#[test]
fn multicast_rules_match_only_multicast_destinations() {
    let c = classifier(Product::Aacc);
    let (v, _, ids, _) = judge(&c, Udp, 6020, A, "239.1.2.3");
    assert_eq!(v, Verdict::Documented);
    assert_eq!(ids, vec!["2.2.2#3"]);
    // Unicast to 6020: the RSM multicast rule does not apply; the RTP range does.
    let (v, _, ids, _) = judge(&c, Udp, 6020, A, B);
    assert_eq!(v, Verdict::Documented);
    assert_eq!(ids, vec!["2.2.5#17"]);
    // RTD: 7020 is the multicast stream, 7025 the unicast one.
    assert_eq!(judge(&c, Udp, 7020, A, "ff05::1:3").0, Verdict::Documented);
    assert_eq!(
        judge(&c, Udp, 7025, A, "239.1.2.3").0,
        Verdict::Undocumented
    );
    let (_, _, ids, deciding) = judge(&c, Udp, 7025, A, B);
    assert_eq!(deciding, vec!["2.2.2#6"]);
    assert_eq!(ids, vec!["2.2.2#6", "2.2.5#17"]);
    // A multicast flow matches only multicast rules.
    assert_eq!(
        judge(&c, Udp, 5060, A, "239.1.2.3").0,
        Verdict::Undocumented
    );
    assert_eq!(
        judge(&c, Udp, 6021, A, "239.1.2.3").0,
        Verdict::Undocumented
    );
    // Emergency Help is ambiguous in the document: both match.
    assert_eq!(judge(&c, Udp, 8200, A, "239.1.2.3").0, Verdict::Documented);
    assert_eq!(judge(&c, Udp, 8200, A, B).0, Verdict::Documented);
}

#[test]
fn reversed_rows_document_their_listening_ports() {
    let c = classifier(Product::Aacc);
    assert_eq!(verdict(&c, Tcp, 3389), Verdict::Documented);
    assert_eq!(verdict(&c, Tcp, 9071), Verdict::Documented);
    assert_eq!(verdict(&c, Udp, 4036), Verdict::Documented);
    assert_eq!(verdict(&c, Udp, 7155), Verdict::Documented);
    assert_eq!(verdict(&c, Tcp, 25), Verdict::Documented);
}

#[test]
fn single_ports_are_more_specific_than_ranges() {
    let c = classifier(Product::Aacc);
    let (v, _, ids, deciding) = judge(&c, Tcp, 10039, A, B);
    assert_eq!(v, Verdict::Documented);
    assert_eq!(deciding, vec!["2.2.2#49"]);
    assert_eq!(ids, vec!["2.2.2#49", "2.2.2#48"]);
    // Overlapping meanings of one port: one open rule documents it.
    for port in [4001, 4005, 7081, 8081, 8445, 1972] {
        let (v, _, ids, _) = judge(&c, Tcp, port, A, B);
        assert_eq!(v, Verdict::Documented, "tcp/{port}");
        assert!(ids.len() >= 2, "tcp/{port}: {ids:?}");
    }
}

#[test]
fn the_h323_range_does_not_swallow_the_port_space() {
    let c = classifier(Product::Aacc);
    for port in [6225, 30000, 40001, 65535] {
        let (v, _, ids, _) = judge(&c, Tcp, port, A, B);
        assert_eq!(v, Verdict::Undocumented, "tcp/{port}");
        assert!(!ids.contains(&"2.2.4#6".to_string()));
    }
}

fn site(text: &str) -> RulesFile {
    parse_rules("site.toml", text).expect("valid site file")
}

#[test]
fn site_rules_add_to_or_replace_the_builtin_matrix() {
    let builtin_file = parse_rules(
        portmatrix::matrix::BUILTIN_ORIGIN,
        portmatrix::matrix::BUILTIN_RULES,
    )
    .expect("valid");
    let extra = r#"schema = 1
[severity]
closed_by_default = "high"

[[rule]]
id = "site#1"
description = "Our backup agent"
listen_ports = [9999]
transports = ["tcp"]
"#;
    let m = Arc::new(PortMatrix::from_files(vec![builtin_file, site(extra)]).expect("merges"));
    let c = Classifier::new(m, Product::Aacc);
    assert_eq!(verdict(&c, Tcp, 9999), Verdict::Documented);
    assert_eq!(judge(&c, Tcp, 31390, A, B).1, Severity::High);

    let alone = Arc::new(PortMatrix::from_files(vec![site(extra)]).expect("alone"));
    let c = Classifier::new(alone, Product::Aacc);
    assert_eq!(verdict(&c, Tcp, 443), Verdict::Undocumented);
    assert_eq!(verdict(&c, Tcp, 9999), Verdict::Documented);
}

#[test]
fn ids_must_be_unique_across_files() {
    let clash =
        "schema = 1\n[[rule]]\nid = \"2.2.2#1\"\nlisten_ports = [1]\ntransports = [\"tcp\"]\n";
    let builtin_file = parse_rules(
        portmatrix::matrix::BUILTIN_ORIGIN,
        portmatrix::matrix::BUILTIN_RULES,
    )
    .expect("valid");
    let err = PortMatrix::from_files(vec![builtin_file, site(clash)]).expect_err("clash");
    assert!(err.to_string().contains("duplicate id"), "{err}");
}

#[test]
fn every_rule_names_its_client_and_listening_systems() {
    // Written out in the file, not left to the defaults.
    let table: toml::Table = toml::from_str(BUILTIN_RULES).expect("TOML");
    let rows = table["rule"].as_array().expect("rules");
    assert_eq!(rows.len(), 145);
    for row in rows {
        for field in ["client_systems", "listener_systems"] {
            let list = row.get(field).and_then(|v| v.as_array());
            assert!(
                list.is_some_and(|l| !l.is_empty()),
                "{}: {field}",
                row["id"]
            );
        }
    }
    let m = builtin();
    let systems = |id: &str| {
        let r = m.find(id).expect("rule");
        (r.client_systems.names(), r.listener_systems.names())
    };
    assert_eq!(systems("2.2.5#17"), (vec!["any"], vec!["aams"]));
    assert_eq!(
        systems("2.2.4#6"),
        (vec!["agent_desktop"], vec!["communication_manager"])
    );
    // Multicast rows name the senders as clients.
    assert_eq!(systems("2.2.2#3"), (vec!["aacc_server"], vec!["any"]));
    assert_eq!(systems("2.2.2#5").0, vec!["ccma"]);
    // Reversed rows: whoever listens, whatever column names it.
    assert_eq!(
        systems("2.2.2#42"),
        (
            vec!["aacc_server"],
            vec!["aacc_server", "cct", "ccma", "ccmm"]
        )
    );
    assert_eq!(
        systems("2.2.2#54"),
        (vec!["any"], vec!["aacc_server", "aams"])
    );
    assert_eq!(systems("2.2.2#55"), (vec!["any"], vec!["aacc_server"]));
    // A generic client cell becomes `any`, and the note says so.
    for r in m.rules() {
        if r.client_systems.is_any() && !r.source.is_empty() {
            let note = r.note.as_deref().unwrap_or("");
            assert!(note.contains("Systems:"), "{}: {note}", r.id);
        }
    }
}
