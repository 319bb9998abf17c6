//! `portmatrix report` on the events of several sensors (issue 16): each
//! event names its sensor (`"host"`, as `--sensor-name` writes it). The
//! page must be the same whether the sensors' files are given one by one or
//! come as one stream in any order that keeps each flow's own events in
//! order (a Kafka topic keyed by Community ID); and a flow two sensors saw is
//! counted once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{stderr, work_dir};

/// `analyze --json --flows` of a fixture, every line named as sensor `host`
/// (inserted first: serde does not care where the field is).
fn sensor_events(fixture: &str, host: &str) -> Vec<String> {
    let capture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let o = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "--json", "--flows", "--quiet"])
        .arg(&capture)
        .output()
        .expect("analyze runs");
    assert!(o.status.success(), "analyze failed: {}", stderr(&o));
    let text = String::from_utf8(o.stdout).expect("utf-8 events");
    text.lines()
        .map(|l| {
            let rest = l.strip_prefix('{').expect("an object");
            format!("{{\"host\":\"{host}\",{rest}")
        })
        .collect()
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write events");
    path
}

/// `portmatrix report FILES -o OUT` (`stdin`: fed to `-`); the page.
fn report(files: &[&Path], stdin: Option<&[String]>, out: &Path) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portmatrix"));
    cmd.arg("report").args(files);
    if stdin.is_some() {
        cmd.arg("-");
    }
    cmd.arg("-o")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("report runs");
    let mut pipe = child.stdin.take().expect("stdin");
    for line in stdin.unwrap_or_default() {
        writeln!(pipe, "{line}").expect("feed the report");
    }
    drop(pipe);
    let o = child.wait_with_output().expect("report ends");
    assert!(o.status.success(), "report failed: {}", stderr(&o));
    std::fs::read_to_string(out).expect("read the page")
}

/// The page without the two parts that name where the events came from
/// (see `portmatrix::report::render`'s comment).
fn without_inputs(page: &str) -> String {
    let mut page = page.to_string();
    for (open, close) in [
        ("<code id=\"input-names\">", "</code>"),
        ("<section id=\"inputs\">", "</section>"),
    ] {
        let start = page.find(open).unwrap_or_else(|| panic!("no {open}"));
        let end = start + page[start..].find(close).expect("closed") + close.len();
        page.replace_range(start..end, "");
    }
    page
}

/// The lines interleaved at random (a seeded xorshift) keeping the order of
/// each Kafka key's lines: a flow's Community ID, a stats event's sensor.
fn shuffled(lines: &[String], seed: u64) -> Vec<String> {
    let mut queues: BTreeMap<String, Vec<&String>> = BTreeMap::new();
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        let key = v
            .get("community_id")
            .or_else(|| v.get("host"))
            .and_then(|k| k.as_str())
            .expect("a key")
            .to_string();
        queues.entry(key).or_default().push(l);
    }
    let mut queues: Vec<std::collections::VecDeque<&String>> = queues
        .into_values()
        .map(|q| q.into_iter().collect())
        .collect();
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(lines.len());
    while !queues.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let i = (state % queues.len() as u64) as usize;
        out.extend(queues[i].pop_front().cloned());
        if queues[i].is_empty() {
            queues.swap_remove(i);
        }
    }
    out
}

/// Text of the first element that starts with `open`, to its `close`.
fn part<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
    let start = page.find(open).unwrap_or_else(|| panic!("no {open}"));
    let end = start + page[start..].find(close).expect("closed");
    &page[start..end]
}

/// Sensor `c`'s copy of the events: one packet more per flow, an evidence
/// file per flagged flow, and after its stats event an older one.
fn other_copy(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            if v["event_type"] == "flow" {
                let n = v["pkts_toserver"].as_u64().expect("packets");
                v["pkts_toserver"] = (n + 1).into();
                if v["verdict"] != "documented" {
                    v["evidence"] = format!("c/{}.pcapng", v["flow_id"]).into();
                }
            }
            v.to_string()
        })
        .collect();
    let stats = lines
        .iter()
        .find(|l| l.contains("\"event_type\":\"stats\""))
        .expect("a stats event");
    let mut older: serde_json::Value = serde_json::from_str(stats).expect("json");
    older["timestamp"] = "2021-08-02T08:00:00.000000Z".into();
    older["stats"]["packets"] = 1.into();
    out.push(older.to_string());
    out
}

#[test]
fn the_page_is_the_same_from_files_and_from_one_shuffled_stream() {
    let dir = work_dir("report-fleet", "shuffled");
    let a = sensor_events("sample-contact-center.pcapng", "a");
    let b = sensor_events("tunnels.pcap", "b");
    // A third sensor on the same links as `a`: its flows are `a`'s again,
    // with a packet more each (what is kept must not depend on which copy
    // comes first), its evidence files, and an older stats event read last.
    let c = other_copy(&sensor_events("sample-contact-center.pcapng", "c"));
    let files = [
        write_lines(&dir, "a.jsonl", &a),
        write_lines(&dir, "b.jsonl", &b),
        write_lines(&dir, "c.jsonl", &c),
    ];
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let from_files = report(&refs, None, &dir.join("files.html"));
    assert!(from_files.contains("<h2 id=\"sensors\">Sensors</h2>"));
    // `c`'s latest stats event counts, not the last read.
    let sensors = part(&from_files, "<h2 id=\"sensors\">", "</table>");
    let row_c = part(sensors, "<tr><td class=\"mono\">c</td>", "</tr>");
    assert!(row_c.contains("data-sort=\"780\""), "{row_c}");
    assert!(
        from_files.contains("c/"),
        "the evidence of c's copies is kept"
    );
    let reversed: Vec<&Path> = refs.iter().rev().copied().collect();
    let page = report(&reversed, None, &dir.join("reversed.html"));
    assert_eq!(without_inputs(&page), without_inputs(&from_files));
    let all: Vec<String> = [a, b, c].concat();
    for seed in [1, 7, 42, 2026, 0x5eed] {
        let stream = shuffled(&all, seed);
        assert_ne!(stream, all);
        let page = report(&[], Some(&stream), &dir.join(format!("stream-{seed}.html")));
        assert!(page.contains("<code id=\"input-names\">stdin</code>"));
        assert_eq!(
            without_inputs(&page),
            without_inputs(&from_files),
            "seed {seed}: the page depends on the order of the events"
        );
    }
}

#[test]
fn a_flow_two_sensors_saw_is_counted_once() {
    let dir = work_dir("report-fleet", "same-capture");
    let a = sensor_events("sample-contact-center.pcapng", "a");
    let b = sensor_events("sample-contact-center.pcapng", "b<i>");
    let fa = write_lines(&dir, "a.jsonl", &a);
    let fb = write_lines(&dir, "b.jsonl", &b);
    let one = report(&[&fa], None, &dir.join("one.html"));
    let both = report(&[&fa, &fb], None, &dir.join("both.html"));
    // Every flow once: the same verdict bar, flagged table rows and coverage.
    for (open, close) in [
        ("<div class=\"bar\">", "</div>"),
        ("<h2 id=\"coverage\">", "</table>"),
        ("<h2 id=\"diagram\">", "</svg>"),
        ("<h2 id=\"top-ports\">", "</table>"),
    ] {
        assert_eq!(part(&both, open, close), part(&one, open, close), "{open}");
    }
    let rows = |page: &str| {
        part(page, "id=\"flagged-table\"", "</tbody>")
            .matches("<tr ")
            .count()
    };
    assert_eq!(rows(&both), rows(&one));
    assert!(rows(&one) > 0);
    // Both sensors listed, the hostile name escaped, every flow seen twice.
    let sensors = part(&both, "<h2 id=\"sensors\">", "</table>");
    assert!(sensors.contains("<td class=\"mono\">a</td>"), "{sensors}");
    assert!(sensors.contains("b&lt;i&gt;"), "{sensors}");
    assert!(!both.contains("b<i>"));
    let flows = a
        .iter()
        .filter(|l| l.contains("\"event_type\":\"flow\""))
        .count();
    assert!(
        sensors.contains(&format!(
            "<b>{flows}</b> flow(s) were seen by more than one sensor"
        )),
        "{sensors}"
    );
    let flagged = part(&both, "id=\"flagged-table\"", "</tbody>");
    assert!(flagged.contains("<td class=\"mono\">a b&lt;i&gt;</td>"));
}

#[test]
fn events_without_host_make_no_sensors_section() {
    let dir = work_dir("report-fleet", "no-host");
    let lines: Vec<String> = sensor_events("tunnels.pcap", "x")
        .iter()
        .map(|l| l.replacen("\"host\":\"x\",", "", 1))
        .collect();
    let f = write_lines(&dir, "events.jsonl", &lines);
    let page = report(&[&f], None, &dir.join("page.html"));
    assert!(!page.contains("id=\"sensors\""));
    assert!(!page.contains("<th>Sensors</th>"));
}
