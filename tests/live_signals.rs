//! What each signal does to `live`, sentence by sentence as `live --help` and
//! docs/guide.md say it (`live_help_and_readme_say_what_each_signal_does` checks
//! the sentences are there; the other tests check what they say; for
//! `analyze`, see tests/analyze_signals.rs):
//!
//! | sentence | test |
//! |---|---|
//! | live: SIGTERM stops cleanly, however many times it comes | `timeout_…`, `two_sigterms_…`, `sigterm_to_the_process_group_…` |
//! | live: SIGINT does the same; a copy within half a second is the same request | `sigint_and_a_copy_…` |
//! | live: a second SIGINT exits at once with 130 | `a_second_sigint_…` |
//! | live: SIGQUIT exits at once with 131; whole lines kept | `sigquit_…` |
//! | live: --stop-timeout ends a stuck stop with 4 | `a_stop_that_outlasts_…` |
//! | live: SIGHUP reopens -o FILE | `sighup_reopens_…` in tests/live_netns.rs |
//!
//! The live tests run in a network namespace of their own (tests/common/lab.rs)
//! and need root; without it they say SKIPPED (or fail with
//! `PORTMATRIX_LIVE_TESTS=require`, as in CI).

mod common;

use std::collections::BTreeSet;
use std::io::PipeReader;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use common::lab::*;
use common::signals::{assert_documented, send, stuck_pipe, whole_lines};

/// 780 packets, 42 flows (10 still open at the end), 15 alerts.
const SAMPLE: &str = "sample-contact-center.pcapng";
/// A light rate: the sample takes about 0.4 s, so that on a loaded machine
/// it is still all sent well within `timeout`'s 5 seconds.
const RATE: [&str; 2] = ["--pps", "2000"];
/// Runs in a row of each way of stopping.
const RUNS: usize = 20;

/// What `analyze` finds in the sample: its flows and packets.
fn sample_flows() -> &'static (BTreeSet<String>, u64) {
    static FLOWS: OnceLock<(BTreeSet<String>, u64)> = OnceLock::new();
    FLOWS.get_or_init(|| offline_flows(&fixture(SAMPLE)))
}

/// Every event of the sample is there: each flow (the open ones closed with
/// `shutdown`), each alert, and the final stats with every packet, last.
fn assert_complete(events: &[Value], what: &str) {
    let (expected, packets) = sample_flows();
    let flows: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .collect();
    let got: BTreeSet<String> = flows.iter().map(|e| flow_identity(e)).collect();
    assert_eq!(flows.len(), expected.len(), "{what}: one event per flow");
    assert_eq!(&got, expected, "{what}: the flows differ from analyze's");
    let open = flows.iter().filter(|e| e["reason"] == "shutdown").count();
    assert_eq!(
        open, 10,
        "{what}: the flows still open close with `shutdown`"
    );
    let alerts = events.iter().filter(|e| e["event_type"] == "alert").count();
    assert_eq!(alerts, 15, "{what}: one alert per flagged flow");
    let last = events.last().expect("events");
    assert_eq!(
        last["event_type"], "stats",
        "{what}: the final stats come last"
    );
    assert_eq!(last["stats"]["packets"], *packets, "{what}: {last}");
    assert_nothing_dropped(&last["stats"]);
}

#[test]
fn timeout_stops_live_cleanly_20_times_in_a_row() {
    let Some(lab) = Lab::new("timeout_stops_live_cleanly") else {
        return;
    };
    let dir = temp_dir("signals-timeout");
    for run in 0..RUNS {
        let out = dir.join(format!("run-{run}.jsonl"));
        let _ = std::fs::remove_file(&out);
        // What cron would run: `timeout` sends SIGTERM to portmatrix and to its
        // process group, so portmatrix gets it twice.
        let child = lab
            .command(&[
                "timeout",
                "--preserve-status",
                "-s",
                "TERM",
                "5",
                BIN,
                "live",
                "-i",
                "pm1",
                "--json",
                "--flows",
                "-o",
                out.to_str().expect("utf-8"),
            ])
            .spawn()
            .expect("start timeout");
        let live = Live::watch(child);
        lab.replay(&fixture(SAMPLE), &RATE);
        let ended = live.finish();
        let what = format!("run {run}");
        assert_eq!(ended.status.code(), Some(0), "{what}: {}", ended.stderr);
        assert!(
            ended.stderr.contains("TCP/UDP flows in"),
            "{what}: the summary"
        );
        assert_complete(&read_events(&out), &what);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_sigterms_1_ms_apart_stop_live_cleanly() {
    let Some(lab) = Lab::new("two_sigterms_1_ms_apart") else {
        return;
    };
    for run in 0..RUNS {
        let live = lab.live(&["--json", "--flows"]);
        lab.replay(&fixture(SAMPLE), &RATE);
        let pid = live.pid().parse().expect("pid");
        send(pid, Signal::SIGTERM);
        thread::sleep(Duration::from_millis(1));
        send(pid, Signal::SIGTERM);
        let ended = live.finish();
        let what = format!("run {run}");
        assert_eq!(ended.status.code(), Some(0), "{what}: {}", ended.stderr);
        let events: Vec<Value> = ended.events.into_iter().map(|(_, e)| e).collect();
        assert_complete(&events, &what);
    }
}

#[test]
fn sigterm_to_the_process_group_stops_live_cleanly() {
    let Some(lab) = Lab::new("sigterm_to_the_process_group") else {
        return;
    };
    for run in 0..RUNS {
        let mut cmd = lab.command(&[BIN, "live", "-i", "pm1", "--json", "--flows"]);
        // Its own group (`ip netns exec` becomes portmatrix), as a supervisor starts it.
        cmd.process_group(0);
        let live = Live::watch(cmd.spawn().expect("start portmatrix live"));
        lab.replay(&fixture(SAMPLE), &RATE);
        let pid: i32 = live.pid().parse().expect("pid");
        // As `timeout` does: to the process, then to its group.
        if run % 2 == 0 {
            kill(Pid::from_raw(pid), Signal::SIGTERM).expect("kill");
        }
        kill(Pid::from_raw(-pid), Signal::SIGTERM).expect("kill the group");
        let ended = live.finish();
        let what = format!("run {run}");
        assert_eq!(ended.status.code(), Some(0), "{what}: {}", ended.stderr);
        let events: Vec<Value> = ended.events.into_iter().map(|(_, e)| e).collect();
        assert_complete(&events, &what);
    }
}

#[test]
fn sigterm_sent_to_timeout_itself_reaches_live_and_is_a_clean_stop() {
    let Some(lab) = Lab::new("sigterm_sent_to_timeout_itself") else {
        return;
    };
    // The user stops `timeout` (not its timer): it passes the signal on and
    // exits with portmatrix's code, without --preserve-status too.
    let child = lab
        .command(&[
            "timeout", "60", BIN, "live", "-i", "pm1", "--json", "--flows",
        ])
        .spawn()
        .expect("start timeout");
    let live = Live::watch(child);
    lab.replay(&fixture(SAMPLE), &RATE);
    let ended = live.stop();
    assert_eq!(ended.status.code(), Some(0), "{}", ended.stderr);
    let events: Vec<Value> = ended.events.into_iter().map(|(_, e)| e).collect();
    assert_complete(&events, "SIGTERM to timeout");
}

#[test]
fn sigint_and_a_copy_of_it_1_ms_later_stop_live_cleanly() {
    let Some(lab) = Lab::new("sigint_and_a_copy") else {
        return;
    };
    let live = lab.live(&["--json", "--flows"]);
    lab.replay(&fixture(SAMPLE), &RATE);
    let pid = live.pid().parse().expect("pid");
    send(pid, Signal::SIGINT);
    thread::sleep(Duration::from_millis(1));
    send(pid, Signal::SIGINT);
    let ended = live.finish();
    assert_eq!(ended.status.code(), Some(0), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("SIGINT: stopping"),
        "{}",
        ended.stderr
    );
    let events: Vec<Value> = ended.events.into_iter().map(|(_, e)| e).collect();
    assert_complete(&events, "SIGINT twice at once");
}

/// `portmatrix live ARGS` in the lab with its events going into a pipe nobody
/// reads yet, once the sample's alerts filled it.
fn live_with_stuck_output(lab: &Lab, args: &[&str]) -> (Live, PipeReader) {
    let (reader, writer) = stuck_pipe();
    let mut argv = vec![BIN, "live", "-i", "pm1", "--json", "--flows"];
    argv.extend_from_slice(args);
    let child = {
        let mut cmd = lab.command(&argv);
        cmd.stdout(Stdio::from(writer));
        cmd.spawn().expect("start portmatrix live")
        // The command, and with it this process's write end, goes here.
    };
    let live = Live::watch(child);
    lab.replay(&fixture(SAMPLE), &RATE);
    (live, reader)
}

#[test]
fn a_second_sigint_while_stopping_exits_at_once_with_130() {
    let Some(lab) = Lab::new("a_second_sigint_while_stopping") else {
        return;
    };
    let (live, reader) = live_with_stuck_output(&lab, &[]);
    live.signal("INT");
    live.wait_for_stderr("SIGINT: stopping");
    // The stop cannot finish (the output is stuck); a person insists.
    thread::sleep(Duration::from_millis(700));
    let asked = Instant::now();
    live.signal("INT");
    let ended = live.finish();
    let took = asked.elapsed();
    assert_eq!(ended.status.code(), Some(130), "{}", ended.stderr);
    assert!(took < Duration::from_secs(3), "took {took:?} to exit");
    assert!(
        ended
            .stderr
            .contains("a second SIGINT: exiting at once with code 130"),
        "{}",
        ended.stderr
    );
    let events = whole_lines(reader);
    assert!(
        events.iter().all(|e| e["event_type"] != "stats"),
        "no final stats"
    );
}

#[test]
fn a_stop_that_outlasts_stop_timeout_ends_with_4_whatever_more_sigterms_come() {
    let Some(lab) = Lab::new("a_stop_that_outlasts_stop_timeout") else {
        return;
    };
    let (live, reader) = live_with_stuck_output(&lab, &["--stop-timeout", "2s"]);
    let asked = Instant::now();
    live.signal("TERM");
    live.wait_for_stderr("SIGTERM: stopping");
    // More SIGTERMs, as a supervisor repeats them: they change nothing.
    for _ in 0..3 {
        thread::sleep(Duration::from_millis(200));
        live.signal("TERM");
    }
    let ended = live.finish();
    let took = asked.elapsed();
    assert_eq!(ended.status.code(), Some(4), "{}", ended.stderr);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    assert!(
        ended.stderr.contains(
            "the stop took longer than 2 s (--stop-timeout): exiting at once with code 4"
        ),
        "{}",
        ended.stderr
    );
    let events = whole_lines(reader);
    assert!(
        events.iter().all(|e| e["event_type"] != "stats"),
        "no final stats"
    );
}

#[test]
fn sigquit_exits_live_at_once_with_131_keeping_whole_lines() {
    let Some(lab) = Lab::new("sigquit_exits_live_at_once") else {
        return;
    };
    let dir = temp_dir("signals-sigquit");
    let out = dir.join("events.jsonl");
    let _ = std::fs::remove_file(&out);
    let live = lab.live(&["--json", "--flows", "-o", out.to_str().expect("utf-8")]);
    lab.replay(&fixture(SAMPLE), &RATE);
    thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    live.signal("QUIT");
    let ended = live.finish();
    assert_eq!(ended.status.code(), Some(131), "{}", ended.stderr);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert!(ended
        .stderr
        .contains("SIGQUIT: exiting at once with code 131"));
    // Every line written is whole: the alerts and the flows that ended, no
    // flow closed by the stop and no final stats.
    let text = std::fs::read_to_string(&out).expect("events file");
    assert!(text.ends_with('\n'), "a line cut short: {text}");
    let events = read_events(&out);
    let count = |t: &str| events.iter().filter(|e| e["event_type"] == t).count();
    assert_eq!(count("alert"), 15);
    assert_eq!(count("stats"), 0);
    assert!(events.iter().all(|e| e["reason"] != "shutdown"));
    assert!(!ended.stderr.contains("TCP/UDP flows in"), "no summary");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn live_help_and_readme_say_what_each_signal_does() {
    let live = [
        "SIGTERM stops the capture cleanly, however many times it comes: every open flow is \
closed (reason \"shutdown\"), the final stats and the summary are written, and the exit code \
is 0, or 1, 3 or 4 as listed under Exit codes.",
        "SIGINT does the same; a second SIGINT, half a second or more after the first stop \
signal, exits at once with code 130 (a copy that comes sooner, as from timeout -s INT, is the \
same request).",
        "SIGQUIT exits at once with code 131.",
        "A stop that takes longer than --stop-timeout (default 10s) ends the same way, with code 4.",
        "Exiting at once flushes the events already written, as whole lines unless the output \
itself is stuck; the flows still open and the final stats are not written.",
        "SIGHUP reopens -o FILE",
    ];
    assert_documented("live", &live);
}
