//! What each signal does to `analyze`, sentence by sentence as `analyze
//! --help` and docs/guide.md say it (`analyze_help_and_readme_say_what_each_signal_does`
//! checks the sentences are there; the other tests check what they say):
//!
//! | sentence | test |
//! |---|---|
//! | SIGTERM / SIGINT stop the reading, 143 / 130, "interrupted"; more SIGTERMs change nothing | `analyze_stopped_by_…` |
//! | a second SIGINT 130, SIGQUIT 131, --stop-timeout 4 | `analyze_forced_…` |
//!
//! The runs are made deterministic by a stuck output: the events go into a
//! one-page pipe nobody reads, so the reading stalls part way through a
//! capture from scripts/gen-traffic (python3), and the signal comes then.

mod common;

use std::io::{PipeReader, Read};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use common::generated::{read_offset, Generated};
use common::lab::BIN;
use common::signals::{assert_documented, send, stuck_pipe, whole_lines};

/// Packets of the analyze capture: big enough (about 120 MiB, 110 chunks)
/// that a stuck output stalls the reading long before its end.
const BIG_PACKETS: u64 = 300_000;

/// A child process, killed if the test fails while it runs.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `portmatrix analyze --json --flows CAPTURE ARGS`, its events
/// going into a pipe nobody reads, once its reading has stalled behind it
/// (part of the capture read, the offset still for half a second).
fn analyze_stalled(capture: &Generated, args: &[&str]) -> (Running, PipeReader) {
    let (reader, writer) = stuck_pipe();
    let capture = &capture.0;
    let child = Running(
        Command::new(BIN)
            .args(["analyze", "--json", "--flows", "--alert-burst", "0"])
            .arg(capture)
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portmatrix analyze"),
    );
    let size = std::fs::metadata(capture).expect("capture").len();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut still_since) = (0, Instant::now());
    loop {
        assert!(Instant::now() < deadline, "analyze never stalled");
        thread::sleep(Duration::from_millis(50));
        let Some(at) = read_offset(child.0.id(), capture) else {
            continue;
        };
        if at != last {
            (last, still_since) = (at, Instant::now());
        } else if at > 0 && still_since.elapsed() >= Duration::from_millis(500) {
            assert!(at < size, "analyze read the whole capture: make it bigger");
            return (child, reader);
        }
    }
}

/// Wait for `child` (at most a minute), with its stderr and how long it took.
fn wait(mut running: Running) -> (Option<i32>, String, Duration) {
    let child = &mut running.0;
    let started = Instant::now();
    let mut stderr = child.stderr.take().expect("stderr");
    let text = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (
                status.code(),
                text.join().expect("stderr"),
                started.elapsed(),
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "portmatrix analyze did not end"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn analyze_stopped_by_sigterm_or_sigint_reports_what_was_read() {
    let capture = Generated::new("stopped", BIG_PACKETS);
    // Its first packet comes a moment after the big one's: it is read after it.
    let after = Generated::new("after", 1000);
    for (signal, name, code, workers) in [
        (Signal::SIGTERM, "SIGTERM", 143, "1"),
        (Signal::SIGINT, "SIGINT", 130, "2"),
    ] {
        let after = after.0.to_str().expect("utf-8");
        let (child, reader) = analyze_stalled(&capture, &["--workers", workers, after]);
        let pid = child.0.id();
        send(pid, signal);
        if signal == Signal::SIGTERM {
            // Further SIGTERMs change nothing.
            thread::sleep(Duration::from_millis(1));
            send(pid, signal);
            send(pid, signal);
        }
        // The output moves again: the reading stops at the next chunk.
        let events = thread::spawn(move || whole_lines(reader));
        let (status, stderr, _) = wait(child);
        let events = events.join().expect("events");
        assert_eq!(status, Some(code), "{name}: {stderr}");
        let stats = &events.last().expect("events")["stats"];
        assert_eq!(stats["interrupted"], name, "{stats}");
        let files = stats["files"].as_array().expect("files");
        assert_eq!(
            files.len(),
            1,
            "{name}: the file after is not read: {stats}"
        );
        let file = &files[0];
        let read = file["packets"].as_u64().expect("packets");
        assert!(
            read > 0 && read < BIG_PACKETS,
            "{name}: {read} packets read"
        );
        assert_eq!(
            stats["packets"], read,
            "{name}: the stats count what was read"
        );
        let size = capture.size();
        let bytes = file["bytes_read"].as_u64().expect("bytes_read");
        assert!(bytes > 0 && bytes < size, "{name}: {bytes} of {size} bytes");
        let flows: Vec<&Value> = events
            .iter()
            .filter(|e| e["event_type"] == "flow")
            .collect();
        assert_eq!(flows.len() as u64, stats["flows"].as_u64().expect("flows"));
        assert!(flows.iter().any(|e| e["reason"] == "shutdown"), "{name}");
        assert!(
            flows.iter().all(|e| e["reason"] != "end_of_input"),
            "{name}"
        );
        assert!(
            stderr.contains(&format!(
                "interrupted by {name}: the input was read no further"
            )),
            "{name}: the summary says so: {stderr}"
        );
    }
}

#[test]
fn analyze_forced_exits_second_sigint_sigquit_and_stop_timeout() {
    // (signals, gap between them, --stop-timeout, exit code, what stderr says)
    let cases: [(&[Signal], u64, &str, i32, &str); 3] = [
        (
            &[Signal::SIGINT, Signal::SIGINT],
            700,
            "10s",
            130,
            "a second SIGINT: exiting at once with code 130",
        ),
        (
            &[Signal::SIGQUIT],
            0,
            "10s",
            131,
            "SIGQUIT: exiting at once with code 131",
        ),
        (
            &[Signal::SIGTERM],
            0,
            "1s",
            4,
            "the stop took longer than 1 s (--stop-timeout): exiting at once with code 4",
        ),
    ];
    let capture = Generated::new("forced", BIG_PACKETS);
    for (signals, gap, timeout, code, says) in cases {
        let (child, reader) =
            analyze_stalled(&capture, &["--workers", "2", "--stop-timeout", timeout]);
        let pid = child.0.id();
        for (i, &signal) in signals.iter().enumerate() {
            if i > 0 {
                thread::sleep(Duration::from_millis(gap));
            }
            send(pid, signal);
        }
        // The output stays stuck: only a forced exit ends the run, within seconds.
        let (status, stderr, took) = wait(child);
        assert_eq!(status, Some(code), "{says}: {stderr}");
        assert!(took < Duration::from_secs(5), "{says}: took {took:?}");
        assert!(stderr.contains(says), "{stderr}");
        let events = whole_lines(reader);
        assert!(events.iter().all(|e| e["event_type"] != "stats"), "{says}");
    }
}

#[test]
fn analyze_help_and_readme_say_what_each_signal_does() {
    let analyze = [
        "SIGTERM or SIGINT stops the reading between chunks: every open flow is closed (reason \
\"shutdown\"), the final stats (with \"interrupted\": \"SIGTERM\" or \"SIGINT\") and the \
summary report what was read, and the exit code is 143 (SIGTERM) or 130 (SIGINT).",
        "Further SIGTERMs change nothing.",
        "A second SIGINT (half a second or more after the first stop signal) exits at once with \
code 130, SIGQUIT with 131, and a stop that takes longer than --stop-timeout (default 10s) \
with code 4; the events already written are kept, as for live.",
    ];
    assert_documented("analyze", &analyze);
    let top = common::portmatrix(&["--help"]);
    assert!(
        common::signals::plain(&String::from_utf8_lossy(&top.stdout))
            .contains("130/131/143 stopped by SIGINT/SIGQUIT/SIGTERM")
    );
}
