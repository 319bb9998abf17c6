//! `portmatrix rules …` as a user runs it: exit codes, JSON forms, error messages.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde::Deserialize;

fn portmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(args)
        .output()
        .expect("portmatrix runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portmatrix-cli-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write temp file");
    path
}

/// The fields `rules list --json` promises; unknown extra fields are allowed.
#[derive(Deserialize)]
struct ListedRule {
    id: String,
    listen_ports: Vec<[u16; 2]>,
    transports: Vec<String>,
    app_protocol: String,
    optional: Option<bool>,
    default_state: String,
    internal_only: bool,
    ha_only: bool,
    windows_only: bool,
    multicast: bool,
    deprecated: bool,
    profile: String,
    description: String,
    note: Option<String>,
}

#[test]
fn list_json_has_every_rule_with_its_fields() {
    let o = portmatrix(&["rules", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rules: Vec<ListedRule> = serde_json::from_slice(&o.stdout).expect("a JSON array of rules");
    assert_eq!(rules.len(), 145);
    let rtp = rules.iter().find(|r| r.id == "2.2.5#17").expect("2.2.5#17");
    assert_eq!(rtp.listen_ports, vec![[6000, 32599]]);
    assert_eq!(rtp.transports, vec!["udp"]);
    assert_eq!(rtp.app_protocol, "rtp");
    assert_eq!(rtp.default_state, "open");
    assert_eq!(rtp.optional, Some(false));
    assert!(!rtp.deprecated && !rtp.multicast && !rtp.internal_only);
    assert!(!rtp.ha_only && !rtp.windows_only);
    assert_eq!(rtp.profile, "both");
    assert_eq!(rtp.description, "Default media port ranges for Linux AAMS");
    let sip = rules.iter().find(|r| r.id == "2.2.2#13").expect("2.2.2#13");
    assert_eq!(sip.transports, vec!["tcp", "udp"]);
    assert!(rules.iter().filter(|r| r.note.is_some()).count() > 50);
}

#[test]
fn list_text_shows_every_rule_and_filters() {
    let o = portmatrix(&["rules", "list"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.contains("2.2.2#17") && text.contains("3-notes#5"));
    assert!(text.trim_end().ends_with("145 rules"), "{text}");
    let o = portmatrix(&["rules", "list", "--port", "1972"]);
    assert!(stdout(&o).trim_end().ends_with("3 rules"), "{}", stdout(&o));
    let o = portmatrix(&["rules", "list", "--search", "kafka"]);
    assert!(stdout(&o).contains("2.2.6#2"));
}

#[derive(Deserialize)]
struct Explained {
    verdict: String,
    severity: String,
    rule_ids: Vec<String>,
    deciding_rule_ids: Vec<String>,
    rules: Vec<ExplainedRule>,
}

#[derive(Deserialize)]
struct ExplainedRule {
    id: String,
    status: String,
    description: String,
}

fn explain(args: &[&str]) -> Explained {
    let mut all = vec!["rules", "explain", "--json"];
    all.extend_from_slice(args);
    let o = portmatrix(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

#[test]
fn explain_json_gives_verdict_severity_and_rules() {
    let e = explain(&["tcp/1972"]);
    assert_eq!(e.verdict, "documented");
    assert_eq!(e.severity, "info");
    assert_eq!(e.rule_ids.len(), 3);
    assert_eq!(e.rules.len(), 3);
    let dal = e
        .rules
        .iter()
        .find(|r| r.id == "2.2.2#35")
        .expect("CCT DAL rule");
    assert_eq!(dal.status, "internal_only");
    assert!(dal.description.contains("INTERNAL ONLY"));

    let e = explain(&["udp/1972"]);
    assert_eq!(e.verdict, "wrong_transport");
    assert_eq!(e.severity, "high");

    let e = explain(&["tcp/50796", "--profile", "accs"]);
    assert_eq!(e.verdict, "documented");
    let e = explain(&["tcp/50796"]);
    assert_eq!(e.verdict, "out_of_profile");

    let e = explain(&["udp/6020", "--dst", "239.0.0.5"]);
    assert_eq!(e.rule_ids, vec!["2.2.2#3"]);
    let e = explain(&["tcp/7080", "--src", "10.1.1.1", "--dst", "10.1.1.1"]);
    assert_eq!(e.verdict, "closed_by_default");
    let e = explain(&["tcp/10039"]);
    assert_eq!(e.deciding_rule_ids, vec!["2.2.2#49"]);
}

#[test]
fn explain_text_names_rules_notes_and_what_did_not_apply() {
    let o = portmatrix(&["rules", "explain", "tcp/30000"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("verdict:  undocumented (severity high)"),
        "{text}"
    );
    assert!(
        text.contains("2.2.4#6") && text.contains("site inventory"),
        "{text}"
    );
}

#[test]
fn explain_rejects_bad_targets_with_usage_errors() {
    for bad in ["tls/443", "tcp/70000", "1972"] {
        let o = portmatrix(&["rules", "explain", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&o).contains(bad.split('/').next_back().unwrap_or(bad)),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn site_rules_file_changes_the_verdict() {
    let site = temp_file(
        "site-ok.toml",
        "schema = 1\n\n[[rule]]\nid = \"site#backup\"\ndescription = \"backup agent\"\nlisten_ports = [9999]\ntransports = [\"tcp\"]\n",
    );
    let site = site.to_str().expect("utf-8 path");
    assert_eq!(explain(&["tcp/9999"]).verdict, "undocumented");
    let e = explain(&["tcp/9999", "--rules", site]);
    assert_eq!(e.verdict, "documented");
    assert_eq!(e.rule_ids, vec!["site#backup"]);
    assert_eq!(
        explain(&["tcp/443", "--rules", site, "--no-default-rules"]).verdict,
        "undocumented"
    );
}

#[test]
fn check_reports_every_error_with_file_line_and_field() {
    let good = temp_file(
        "good.toml",
        "schema = 1\n[[rule]]\nid = \"site#1\"\nlisten_ports = [9999]\ntransports = [\"tcp\"]\n",
    );
    let bad = temp_file(
        "bad.toml",
        "schema = 1\n[[rule]]\nid = \"site#2\"\nlisten_ports = [99999]\ntransports = [\"tcp\"]\n\n[[rule]]\nid = \"2.2.2#1\"\nlisten_ports = [1]\ntransports = [\"sctp\"]\n",
    );
    let o = portmatrix(&["rules", "check", good.to_str().expect("path")]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("ok, 1 rules"));

    let o = portmatrix(&["rules", "check", bad.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    let bad_name = bad.display().to_string();
    assert!(text.contains(&format!("{bad_name}:4:")), "{text}");
    assert!(
        text.contains("field `listen_ports`") && text.contains("99999"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{bad_name}:10:")) && text.contains("sctp"),
        "{text}"
    );

    // Loading a bad file anywhere else fails with the same precise message.
    let o = portmatrix(&[
        "rules",
        "explain",
        "tcp/1",
        "--rules",
        bad.to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("{bad_name}:4:")),
        "{}",
        stderr(&o)
    );

    let o = portmatrix(&["rules", "check", "/nonexistent/rules.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("/nonexistent/rules.toml"));
}

#[test]
fn check_finds_id_clashes_with_the_builtin_matrix() {
    let clash = temp_file(
        "clash.toml",
        "schema = 1\n[[rule]]\nid = \"2.2.2#1\"\nlisten_ports = [1]\ntransports = [\"tcp\"]\n",
    );
    let o = portmatrix(&["rules", "check", clash.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("duplicate id"), "{}", stdout(&o));
    let o = portmatrix(&[
        "rules",
        "check",
        "--no-default-rules",
        clash.to_str().expect("path"),
    ]);
    assert!(o.status.success());
}
