//! The archive recipe of docs/fleet.md on one machine: a folder of captures
//! split into three contiguous runs of files, one `analyze --kafka` process
//! each (a sensor name each), all at once into one topic; the topic then
//! holds the events of one `analyze` over the whole folder, and its report
//! counts what that run's report counts.
//!
//! The captures are the corpus's (`../shared/corpus`: services and voip)
//! whose flows no other chosen capture has: a flow that two files share is
//! one flow in one run and two when the files go to different processes,
//! which the recipe documents. What differs by design is left out of the
//! comparison: `host` (each process names itself) and a flow's `reason`
//! (a flow open at the end of a process's last file ends there, where one
//! run times it out later).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::broker::{consume, Broker};
use common::lab::BIN;
use common::{finish_bounded, portmatrix_within, shared, work_dir, Finished};

const RUN: Duration = Duration::from_secs(120);
const PROCESSES: usize = 3;

fn portmatrix(args: &[String]) -> Finished {
    portmatrix_within(args, RUN)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The lines of `analyze -q --json --flows FILES`, which must succeed.
fn analyze_json(files: &[PathBuf]) -> String {
    let mut args = strings(&["analyze", "-q", "--json", "--flows"]);
    args.extend(files.iter().map(|f| f.display().to_string()));
    let run = portmatrix(&args);
    assert_eq!(run.code, Some(0), "{}", run.describe());
    run.stdout
}

/// The corpus captures, in name order, whose flows (Community IDs) no
/// capture chosen before them has.
fn independent_captures(corpus: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for category in ["services", "voip"] {
        let mut these: Vec<PathBuf> = std::fs::read_dir(corpus.join(category))
            .expect("a corpus category")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        these.sort();
        files.extend(these);
    }
    let mut chosen = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for file in files {
        let args = strings(&[
            "analyze",
            "-q",
            "--json",
            "--flows",
            &file.display().to_string(),
        ]);
        let run = portmatrix(&args);
        if run.code != Some(0) {
            continue;
        }
        let ids: Vec<String> = run
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|e| e["community_id"].as_str().map(str::to_owned))
            .collect();
        if ids.is_empty() || ids.iter().any(|id| seen.contains(id)) {
            continue;
        }
        seen.extend(ids);
        chosen.push(file);
    }
    chosen
}

/// What the runs must agree on: every alert and flow event but for `host`
/// and `reason`, counted; and the stats' packets, bytes and flows added up.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    events: BTreeMap<String, u64>,
    packets: u64,
    bytes: u64,
    flows: u64,
}

impl Outcome {
    fn add(&mut self, line: &str) {
        let mut event: Value = serde_json::from_str(line).expect("a JSON event");
        let Some(fields) = event.as_object_mut() else {
            panic!("an event is an object: {line}");
        };
        fields.remove("host");
        fields.remove("reason");
        if fields["event_type"] == "stats" {
            let count = |name: &str| fields["stats"][name].as_u64().expect("a counter");
            self.packets += count("packets");
            self.bytes += count("bytes");
            self.flows += count("flows");
            return;
        }
        *self.events.entry(event.to_string()).or_default() += 1;
    }
}

/// `report … -o FILE`'s "N flows, M flagged".
fn report_counts(args: &[String]) -> String {
    let run = portmatrix(args);
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.describe());
    let at = run
        .stderr
        .find("wrote ")
        .expect("report says what it wrote");
    let line = run.stderr[at..].lines().next().unwrap_or_default();
    line.split(": ")
        .nth(1)
        .and_then(|counts| counts.split(", from").next())
        .expect("N flows, M flagged")
        .to_string()
}

#[test]
fn an_archive_split_over_three_processes_is_one_analyze_of_it() {
    let test = "kafka_archive";
    let corpus = shared("corpus");
    if !corpus.is_dir() {
        eprintln!("SKIPPED {test}: ../shared/corpus is absent");
        return;
    }
    let dir = work_dir("kafka", "archive");
    let Some(mut broker) = Broker::start(test, &dir) else {
        return;
    };
    broker.create_topic("archive", 3);
    let files = independent_captures(&corpus);
    assert!(
        files.len() >= 20,
        "only {} independent captures",
        files.len()
    );

    let whole = analyze_json(&files);
    let mut one_run = Outcome::default();
    whole.lines().for_each(|l| one_run.add(l));
    let whole_events = dir.join("whole.jsonl");
    std::fs::write(&whole_events, &whole).expect("write the events");

    // Three contiguous runs of files, three processes at once.
    let address = broker.address();
    let started = Instant::now();
    let part = files.len().div_ceil(PROCESSES);
    let children: Vec<_> = files
        .chunks(part)
        .enumerate()
        .map(|(i, chunk)| {
            let mut cmd = Command::new(BIN);
            cmd.args(["analyze", "-q", "--flows", "--kafka", &address])
                .args([
                    "--kafka-topic",
                    "archive",
                    "--sensor-name",
                    &format!("archive-{i}"),
                ])
                .args(chunk)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().expect("analyze starts")
        })
        .collect();
    for child in children {
        let run = finish_bounded(child, started, RUN);
        assert_eq!(run.code, Some(0), "{}", run.describe());
    }

    let mut topic = Outcome::default();
    for message in consume(&address, "archive") {
        topic.add(&message.payload);
    }
    assert!(!one_run.events.is_empty());
    assert_eq!(topic, one_run, "the topic holds the events of one run");

    let page = dir.join("page.html").display().to_string();
    let from_topic = report_counts(&strings(&[
        "report",
        "--kafka",
        &address,
        "--kafka-topic",
        "archive",
        "-o",
        &page,
    ]));
    let from_file = report_counts(&strings(&[
        "report",
        &whole_events.display().to_string(),
        "-o",
        &page,
    ]));
    assert_eq!(from_topic, from_file);
}
