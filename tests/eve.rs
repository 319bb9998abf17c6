//! `--format eve` is Suricata's EVE: every event that `analyze --format eve
//! --flows` writes for the fixtures (made by scripts/gen-fixtures) and for
//! every capture of the shared corpus (`../shared/corpus`, read-only)
//! validates against Suricata's own schema
//! (`../shared/schemas/suricata-eve.schema.json`), checked with the Python
//! `jsonschema` package (scripts/setup --test installs it); and its alerts
//! are the flows the native `--json` alerts, its flow events the native flow
//! events, its alert summaries as many as the native ones. Live (in a
//! network namespace, as tests/live_netns.rs), every event is valid too and
//! names the interface and the sensor.
//!
//! Storm control is set low (`--alert-burst 2`) so that alert summaries are
//! written, and checked, too. Without `jsonschema` the schema test says
//! SKIPPED, or fails with `PORTMATRIX_LIVE_TESTS=require` (scripts/test as root, CI).

mod common;
use common::eve::validate;
use common::lab::{fixture, Lab};
use common::{read_tsv, run_bounded, shared};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);
const PARALLEL: usize = 4;
/// Low, so that the fixtures and the corpus fold some alerts.
const BURST: &str = "2";

/// The fixtures' captures and, when the corpus is there, all of its captures.
fn captures() -> Vec<PathBuf> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all: Vec<PathBuf> = fs::read_dir(&fixtures)
        .expect("fixtures/")
        .map(|e| e.expect("fixtures/ entry").path())
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .collect();
    all.sort();
    let corpus = shared("corpus");
    let manifest = corpus.join("MANIFEST.tsv");
    if manifest.is_file() {
        all.extend(
            read_tsv(&manifest)
                .iter()
                .filter(|row| row["kind"] == "capture")
                .map(|row| corpus.join(&row["file"])),
        );
    } else {
        eprintln!("eve: ../shared/corpus is absent; the fixtures alone are checked");
    }
    all
}

/// One capture's events in both formats.
struct Run {
    capture: PathBuf,
    /// The EVE lines, kept in a file for the validator.
    eve_file: PathBuf,
    eve: Vec<Value>,
    native: Vec<Value>,
}

fn analyze(capture: &Path, format: &str) -> Vec<Value> {
    let mut cmd = Command::new(common::lab::BIN);
    cmd.args([
        "analyze",
        "--format",
        format,
        "--flows",
        "-q",
        "--alert-burst",
        BURST,
    ])
    .arg(capture)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let run = run_bounded(&mut cmd, TIMEOUT);
    assert!(
        matches!(run.code, Some(0 | 1)),
        "{} --format {format}: {}",
        capture.display(),
        run.describe()
    );
    run.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "{} --format {format}: not JSON ({e}): {l}",
                    capture.display()
                )
            })
        })
        .collect()
}

/// Every capture run once in each format, a few at a time, shared by the tests.
fn runs() -> &'static [Run] {
    static RUNS: OnceLock<Vec<Run>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eve");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("the test's folder");
        let all = captures();
        let chunk = all.len().div_ceil(PARALLEL).max(1);
        thread::scope(|s| {
            let workers: Vec<_> = all
                .chunks(chunk)
                .enumerate()
                .map(|(w, part)| {
                    let dir = &dir;
                    s.spawn(move || {
                        part.iter()
                            .enumerate()
                            .map(|(i, capture)| {
                                let eve = analyze(capture, "eve");
                                let eve_file = dir.join(format!("{w}-{i}.jsonl"));
                                let lines: String = eve.iter().map(|e| format!("{e}\n")).collect();
                                fs::write(&eve_file, lines).expect("write the EVE lines");
                                Run {
                                    capture: capture.clone(),
                                    eve_file,
                                    eve,
                                    native: analyze(capture, "json"),
                                }
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a worker of the test"))
                .collect()
        })
    })
}

#[test]
fn every_event_is_valid_against_suricatas_schema() {
    let runs = runs();
    let files: Vec<&Path> = runs.iter().map(|r| r.eve_file.as_path()).collect();
    let Some(report) = validate(&files) else {
        return;
    };
    let events: usize = runs.iter().map(|r| r.eve.len()).sum();
    assert!(
        report.contains(&format!("checked {events} events, 0 invalid")),
        "{report}"
    );
    // Every kind of event was among them.
    let all = || runs.iter().flat_map(|r| &r.eve);
    for kind in ["alert", "flow", "stats"] {
        assert!(
            all().any(|e| e["event_type"] == kind),
            "no {kind} event was checked"
        );
    }
    assert!(
        all().any(|e| e["alert"]["category"] == "alert_summary"),
        "no alert summary was checked"
    );
    eprintln!("{events} EVE events of {} captures valid", runs.len());
}

/// What a run's events say about its flows: alerted flow ids, flow event
/// ids, and how many alert summaries.
#[derive(Debug, PartialEq, Eq)]
struct Flows {
    alerts: BTreeMap<u64, String>,
    flows: BTreeMap<u64, String>,
    summaries: usize,
}

fn flows(events: &[Value], verdict: impl Fn(&Value) -> String) -> Flows {
    let mut f = Flows {
        alerts: BTreeMap::new(),
        flows: BTreeMap::new(),
        summaries: 0,
    };
    for e in events {
        let id = e["flow_id"].as_u64();
        match (e["event_type"].as_str(), id) {
            (Some("alert"), Some(id)) => {
                f.alerts.insert(id, verdict(e));
            }
            (Some("alert" | "alert_summary"), None) => f.summaries += 1,
            (Some("flow"), Some(id)) => {
                f.flows.insert(id, verdict(e));
            }
            _ => {}
        }
    }
    f
}

#[test]
fn its_alerts_are_the_native_alerts() {
    let mut alerts = 0;
    for run in runs() {
        let native = flows(&run.native, |e| e["verdict"].as_str().unwrap_or("").into());
        let eve = flows(&run.eve, |e| match e["alert"]["category"].as_str() {
            Some(v) => v.into(),
            None => e["metadata"]["flowvars"]
                .as_array()
                .and_then(|vars| vars.iter().find(|v| v["key"] == "verdict"))
                .and_then(|v| v["value"].as_str())
                .unwrap_or("")
                .into(),
        });
        assert_eq!(eve, native, "{}", run.capture.display());
        alerts += eve.alerts.len();
    }
    assert!(alerts > 0, "no alert was compared");
}

/// Live: every event valid too, each naming the interface and the sensor,
/// and the final stats with the kernel's counters. Needs root, ip and
/// tcpreplay (common::lab); SKIPPED without them.
#[test]
fn live_events_are_valid_and_name_the_interface() {
    let Some(lab) = Lab::new("live_events_are_valid_eve") else {
        return;
    };
    let live = lab.live(&["--format", "eve", "--flows", "--sensor-name", "lab-sensor"]);
    lab.replay(
        &fixture("sample-contact-center.pcapng"),
        &["--multiplier", "20"],
    );
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let events: Vec<&Value> = run.events.iter().map(|(_, e)| e).collect();
    assert!(events.iter().any(|e| e["event_type"] == "alert"), "alerts");
    assert!(events.iter().any(|e| e["event_type"] == "flow"), "flows");
    for e in &events {
        assert_eq!(e["in_iface"], "pm1", "{e}");
        assert_eq!(e["host"], "lab-sensor", "{e}");
        assert!(e.get("pcap_filename").is_none(), "{e}");
    }
    let stats = events.last().expect("events");
    assert_eq!(stats["event_type"], "stats", "the last event");
    let capture = &stats["stats"]["capture"];
    assert!(capture["kernel_packets"].as_u64() > Some(0), "{stats}");
    assert_eq!(capture["kernel_drops"], 0, "{stats}");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eve-live");
    fs::create_dir_all(&dir).expect("the test's folder");
    let file = dir.join("live.jsonl");
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    fs::write(&file, lines).expect("write the events");
    if let Some(report) = validate(&[&file]) {
        let n = events.len();
        assert!(
            report.contains(&format!("checked {n} events, 0 invalid")),
            "{report}"
        );
    }
}
