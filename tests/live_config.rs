//! `portmatrix live --config FILE` and `--print-config` as a user runs them:
//! the file's options, the command line winning over them, the printed
//! configuration read back to itself, a bad file refused with its line
//! before anything starts, and a capture configured by the file alone.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use common::lab::{fixture, flow_identity, offline_flows, read_events, Lab, Live, BIN};

fn live(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("live")
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

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the configuration");
    path
}

fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `live ARGS --print-config`, which must succeed: the printed lines.
fn printed(args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("--print-config");
    let out = live(&all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    stdout(&out).lines().map(str::to_string).collect()
}

fn assert_lines(lines: &[String], expected: &[&str]) {
    for e in expected {
        assert!(
            lines.iter().any(|l| l == e),
            "no line `{e}` in:\n{}",
            lines.join("\n")
        );
    }
}

#[test]
fn the_sensor_outputs_are_keys_of_the_file_checked_as_options() {
    let dir = common::work_dir("live-config", "sensor");
    let cfg = file(
        &dir,
        "live.toml",
        "schema = 1\ninterface = [\"eth1\"]\nsyslog = \"unix:/dev/log\"\nmetrics = \"9911\"\n\
metrics-file = \"/var/lib/node_exporter/portmatrix.prom\"\nmetrics-interval = \"30s\"\n",
    );
    assert_lines(
        &printed(&["--config", text(&cfg)]),
        &[
            "syslog = \"unix:/dev/log\"",
            // As written: a port alone is loopback's (see live_metrics.rs).
            "metrics = \"9911\"",
            "metrics-file = \"/var/lib/node_exporter/portmatrix.prom\"",
            "metrics-interval = \"30s\"",
        ],
    );
    let bad = file(
        &dir,
        "bad.toml",
        "schema = 1\ninterface = [\"eth1\"]\nsyslog = \"/dev/log\"\nmetrics = \"localhost\"\n",
    );
    let out = live(&["--config", text(&bad), "--print-config"]);
    assert_eq!(out.status.code(), Some(2));
    let e = stderr(&out);
    assert!(
        e.contains("bad.toml:3:10: field `syslog`") && e.contains("bad.toml:4:11: field `metrics`"),
        "{e}"
    );
}

#[test]
fn the_command_line_wins_over_the_file() {
    let dir = common::work_dir("live-config", "precedence");
    let cfg = file(
        &dir,
        "live.toml",
        "schema = 1\ninterface = [\"eth1\", \"eth2\"]\nsnaplen = 128\nformat = \"csv\"\n\
host = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\nno-promisc = true\nstats-interval = \"5m\"\n\
verdict = [\"undocumented\", \"wrong_transport\"]\ndedup = true\n",
    );
    let from_file = printed(&["--config", text(&cfg)]);
    assert_lines(
        &from_file,
        &[
            "schema = 1",
            "interface = [\"eth1\", \"eth2\"]",
            "snaplen = 128",
            "format = \"csv\"",
            "host = [\"10.0.0.0/8\", \"192.168.0.0/16\"]",
            "no-promisc = true",
            "stats-interval = \"5m\"",
            "verdict = [\"undocumented\", \"wrong_transport\"]",
            "dedup = \"10ms\"",
            "buffer-mb = 64  # default",
            "json = false  # default",
            "# output = \"FILE\"",
        ],
    );
    // A value typed replaces the file's, a list replaces the file's list,
    // and an option that cannot go with a typed one (--json, format) gives way.
    let both = printed(&[
        "--config",
        text(&cfg),
        "-i",
        "lo",
        "--snaplen",
        "512",
        "--host",
        "192.0.2.1",
        "--json",
        "--verdict",
        "role_mismatch",
    ]);
    assert_lines(
        &both,
        &[
            "interface = [\"lo\"]",
            "snaplen = 512",
            "host = [\"192.0.2.1\"]",
            "json = true",
            "# format = \"text|json|csv|eve\"",
            "verdict = [\"role_mismatch\"]",
            // What was not typed still comes from the file.
            "no-promisc = true",
            "stats-interval = \"5m\"",
            "dedup = \"10ms\"",
        ],
    );
}

#[test]
fn the_printed_configuration_reads_back_to_itself() {
    let dir = common::work_dir("live-config", "round-trip");
    let cfg = file(
        &dir,
        "live.toml",
        "schema = 1\ninterface = [\"eth1\"]\noutput = \"/var/log/portmatrix/events \\\"a\\\".json\"\n\
bpf = 'not port 22'\nport = [5060, 1972]\nworkers = 2\nsnaplen = 256\nflows = true\n",
    );
    let first = printed(&["--config", text(&cfg), "--udp-timeout", "90"]);
    assert_lines(
        &first,
        &[
            "output = '/var/log/portmatrix/events \"a\".json'",
            "bpf = \"not port 22\"",
            "port = [5060, 1972]",
            "workers = 2",
            // Equal to the default, whoever set it.
            "snaplen = 256  # default",
            "udp-timeout = 90",
        ],
    );
    let again = file(&dir, "printed.toml", &(first.join("\n") + "\n"));
    assert_eq!(printed(&["--config", text(&again)]), first);
    // Defaults alone, and with no interface yet: a template that reads back.
    let template = printed(&[]);
    assert_lines(&template, &["# interface = [\"IFACE\"]", "# workers = N"]);
    let template_file = file(&dir, "template.toml", &(template.join("\n") + "\n"));
    assert_eq!(printed(&["--config", text(&template_file)]), template);
}

#[test]
fn a_bad_file_is_a_usage_error_placed_at_its_line() {
    let dir = common::work_dir("live-config", "errors");
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown.toml",
            "schema = 1\ninterface = [\"lo\"]\nsnaplenn = 128\n",
            &[
                "1 error in the configuration file:",
                "unknown.toml:3:1: unknown top-level key `snaplenn`; allowed: schema, interface, ",
                "see docs/deployment.md",
            ],
        ),
        (
            "value.toml",
            "schema = 1\ninterface = [\"lo\"]\nsnaplen = 10\nformat = \"xml\"\n",
            &[
                "2 errors in the configuration file:",
                "value.toml:3:11: field `snaplen`: invalid value `10`: 10 is not in 64..=262144",
                "value.toml:4:10: field `format`: invalid value `xml`: expected one of: text, json, csv",
            ],
        ),
        (
            "syntax.toml",
            "schema = 1\ninterface = [\"lo\"\n",
            &["syntax.toml:2:", "invalid TOML"],
        ),
        (
            "schema.toml",
            "interface = [\"lo\"]\n",
            &["schema.toml:1:1: field `schema`: missing `schema = 1`"],
        ),
        (
            "no-interface.toml",
            "schema = 1\nsnaplen = 128\n",
            &["no interface to capture on: give -i IFACE, or `interface = [\"eth0\"]`"],
        ),
        (
            "conflict.toml",
            "schema = 1\ninterface = [\"lo\"]\njson = true\nformat = \"csv\"\n",
            &["cannot be used with", "(the options came from the command line and from "],
        ),
    ];
    for (name, body, expected) in cases {
        let cfg = file(&dir, name, body);
        let out = live(&["--config", text(&cfg)]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        for e in *expected {
            assert!(err.contains(e), "{name}: no `{e}` in:\n{err}");
        }
        assert!(!err.contains("capturing on"), "{name}: {err}");
        // --print-config refuses the same file the same way.
        let out = live(&["--config", text(&cfg), "--print-config"]);
        if *name != "no-interface.toml" {
            assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
            assert!(stdout(&out).is_empty(), "{name}");
        }
    }
    let out = live(&["--config", text(&dir.join("missing.toml"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read configuration file ")
            && stderr(&out).contains("missing.toml: No such file"),
        "{}",
        stderr(&out)
    );
    // The reader's limits hold here too.
    let out = live(&["--config", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("configuration files are limited to 4194304 bytes"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_capture_configured_by_the_file_alone() {
    let Some(lab) = Lab::new("a_capture_configured_by_the_file_alone") else {
        return;
    };
    let dir = common::work_dir("live-config", "capture");
    let events = dir.join("events.json");
    let cfg = file(
        &dir,
        "live.toml",
        &format!(
            "schema = 1\ninterface = [\"pm1\"]\nformat = \"json\"\nflows = true\noutput = \"{}\"\n",
            text(&events)
        ),
    );
    let sample = fixture("sample-contact-center.pcapng");
    let (expected, packets) = offline_flows(&sample);
    let live = Live::watch(
        lab.command(&[BIN, "live", "--config", text(&cfg)])
            .spawn()
            .expect("start portmatrix live"),
    );
    lab.replay(&sample, &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stderr.contains("capturing on pm1"), "{}", run.stderr);
    assert!(run.events.is_empty(), "events went to the file, not stdout");
    let written = read_events(&events);
    let flows: BTreeSet<String> = written
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(flow_identity)
        .collect();
    assert_eq!(flows, expected);
    let stats = written.last().expect("events");
    assert_eq!(stats["event_type"], "stats");
    assert_eq!(stats["stats"]["packets"], packets);
}
