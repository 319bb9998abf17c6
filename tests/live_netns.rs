//! Live capture on a real interface, no mocks: each test creates its own
//! network namespace holding a veth pair, runs `portmatrix live` on one end,
//! replays fixture captures into the other end with tcpreplay, and stops it
//! with a signal. The namespace is removed when the test ends, even on failure.
//!
//! Needs root, `ip` (iproute2) and `tcpreplay`. Without them the tests say
//! SKIPPED on stderr; with `PORTMATRIX_LIVE_TESTS=require` (scripts/test sets
//! it when run as root, as in CI) a missing prerequisite is a failure.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use common::lab::*;

#[test]
fn live_capture_gives_the_same_flows_and_verdicts_as_the_file() {
    // Fixtures whose every frame was captured whole (a replay can only send
    // the captured bytes), on Ethernet, with VLAN, QinQ and IPv6.
    for name in ["sample-contact-center.pcapng", "vlan-qinq-ipv6ext.pcap"] {
        let Some(lab) = Lab::new("live_capture_gives_the_same_flows") else {
            return;
        };
        let file = fixture(name);
        let (expected, packets) = offline_flows(&file);
        let live = lab.live(&["--json", "--flows"]);
        lab.replay(&file, &["--multiplier", "20"]);
        thread::sleep(Duration::from_millis(300));
        let run = live.stop();
        assert!(run.status.success(), "{name}: {}", run.stderr);
        let got: BTreeSet<String> = run.of_type("flow").into_iter().map(flow_identity).collect();
        assert_eq!(got, expected, "{name}: live flows differ from analyze's");
        let stats = run.final_stats();
        assert_eq!(stats["packets"], packets, "{name}: {stats}");
        assert_nothing_dropped(stats);
        let flagged = expected
            .iter()
            .filter(|f| !f.contains("\"documented\""))
            .count();
        assert_eq!(
            run.of_type("alert").len(),
            flagged,
            "{name}: one alert per flagged flow"
        );
        assert!(run.stderr.contains("1 interface(s)"), "{}", run.stderr);
    }
}

#[test]
fn the_two_ports_of_a_tap_merge_into_one_flow_table() {
    let Some(lab) = Lab::new("the_two_ports_of_a_tap_merge") else {
        return;
    };
    // A second pair: pm2 carries one direction, pm0 the other, as a TAP does.
    lab.ip(&["link", "add", "pm2", "type", "veth", "peer", "name", "pm3"]);
    lab.ip(&["link", "set", "pm2", "up"]);
    lab.ip(&["link", "set", "pm3", "up"]);
    let file = fixture("sample-contact-center.pcapng");
    let dir = temp_dir("tap");
    let cache = dir.join("sides.cache");
    let cache = cache.to_str().expect("utf-8");
    // tcpprep decides which side of each packet is the client.
    lab.exec(&[
        "tcpprep",
        "--auto=client",
        "--pcap",
        file.to_str().expect("utf-8"),
        "--cachefile",
        cache,
    ]);
    let (expected, packets) = offline_flows(&file);
    let live = lab.live(&["-i", "pm3", "--json", "--flows"]);
    let path = file.to_str().expect("utf-8");
    lab.exec(&[
        "tcpreplay",
        "-q",
        "-c",
        cache,
        "-i",
        "pm0",
        "-I",
        "pm2",
        "--multiplier",
        "20",
        path,
    ]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let stats = run.final_stats();
    let per_interface: Vec<u64> = stats["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .map(|i| i["packets"].as_u64().expect("packets"))
        .collect();
    assert_eq!(per_interface.len(), 2);
    assert!(per_interface.iter().all(|&n| n > 0), "{per_interface:?}");
    assert_eq!(per_interface.iter().sum::<u64>(), packets);
    assert_nothing_dropped(stats);
    let got: BTreeSet<String> = run.of_type("flow").into_iter().map(flow_identity).collect();
    assert_eq!(
        got, expected,
        "one flow per connection, both directions counted"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn alerts_reach_the_output_within_100_ms_at_a_light_rate() {
    let Some(lab) = Lab::new("alerts_reach_the_output_within_100_ms") else {
        return;
    };
    let live = lab.live(&["--json"]);
    lab.replay(&fixture("sample-contact-center.pcapng"), &["--pps", "300"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let mut latencies: Vec<Duration> = run
        .events
        .iter()
        .filter(|(_, e)| e["event_type"] == "alert")
        .map(|(arrived, e)| {
            let captured = parse_rfc3339(e["timestamp"].as_str().expect("timestamp"));
            arrived.duration_since(captured).unwrap_or_default()
        })
        .collect();
    assert_eq!(latencies.len(), 15, "the sample has 15 flagged flows");
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    eprintln!(
        "alert latency over {} alerts: p50 {p50:?}, max {max:?}",
        latencies.len()
    );
    assert!(
        max < Duration::from_millis(100),
        "an alert took {max:?} from capture to output"
    );
    // portmatrix measures the same thing itself, from the writer's side.
    let own = &run.final_stats()["alert_latency"];
    assert_eq!(own["count"], 15, "{own}");
    assert!(own["max_ms"].as_f64().expect("max_ms") < 100.0, "{own}");
}

#[test]
fn runs_unprivileged_with_file_capabilities_and_says_what_is_missing_without() {
    let Some(lab) = Lab::new("runs_unprivileged_with_file_capabilities") else {
        return;
    };
    // A copy of the binary that only root may change, with the two capabilities.
    let dir = temp_dir("setcap");
    let bin = dir.join("portmatrix");
    // `cp`, not `fs::copy`: a write descriptor held open in this process could
    // leak into a child another test thread forks meanwhile, and exec'ing the
    // copy would then fail with "text file busy".
    ok(Command::new("cp").arg(BIN).arg(&bin));
    let bin = bin.to_str().expect("utf-8");
    ok(Command::new("chmod").args(["755", dir.to_str().expect("utf-8"), bin]));
    let as_nobody = |args: &[&str]| {
        let mut all = vec![
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ];
        all.extend_from_slice(args);
        lab.exec_status(&all)
    };

    let denied = as_nobody(&[bin, "live", "-i", "pm1"]);
    let text = String::from_utf8_lossy(&denied.stderr);
    assert_eq!(denied.status.code(), Some(1), "{text}");
    assert!(
        text.contains("not allowed to capture on `pm1`")
            && text.contains("setcap cap_net_raw,cap_net_admin=eip"),
        "{text}"
    );

    ok(Command::new("setcap").args(["cap_net_raw,cap_net_admin=eip", bin]));
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.ns])
        .args([
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ])
        .args([bin, "live", "-i", "pm1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let live = Live::watch(child);
    lab.replay(&fixture("vlan-qinq-ipv6ext.pcap"), &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.final_stats()["packets"], 36);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sighup_reopens_the_output_file_for_logrotate() {
    let Some(lab) = Lab::new("sighup_reopens_the_output_file") else {
        return;
    };
    let dir = temp_dir("sighup");
    let path = dir.join("events.json");
    let rotated = dir.join("events.json.1");
    let live = lab.live(&["--json", "--flows", "-o", path.to_str().expect("utf-8")]);
    lab.replay(
        &fixture("sample-contact-center.pcapng"),
        &["--multiplier", "20"],
    );
    thread::sleep(Duration::from_millis(300));
    std::fs::rename(&path, &rotated).expect("rotate");
    live.signal("HUP");
    // The file reappears at once, before any new event.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(Instant::now() < deadline, "SIGHUP did not reopen the file");
        thread::sleep(Duration::from_millis(20));
    }
    lab.replay(&fixture("vlan-qinq-ipv6ext.pcap"), &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.events.is_empty(), "events went to stdout despite -o");

    let before = read_events(&rotated);
    let after = read_events(&path);
    let count = |events: &[Value], t: &str| events.iter().filter(|e| e["event_type"] == t).count();
    // The sample's alerts went to the first file, before the rotation.
    assert_eq!(count(&before, "alert"), 15);
    assert_eq!(count(&after, "alert"), 0);
    assert_eq!(count(&before, "stats"), 0);
    // Its closed flows ended there too; the second replay's flows, still open
    // at shutdown, and the final stats are in the new file.
    let (both, _) = offline_flows_of(&[
        fixture("sample-contact-center.pcapng"),
        fixture("vlan-qinq-ipv6ext.pcap"),
    ]);
    assert_eq!(count(&before, "flow") + count(&after, "flow"), both.len());
    assert!(after
        .iter()
        .any(|e| e["event_type"] == "flow" && e["vlan"].is_number()));
    let last = after.last().expect("events after the reopen");
    assert_eq!(last["event_type"], "stats");
    assert_eq!(last["stats"]["packets"], 780 + 36);
    let _ = std::fs::remove_dir_all(dir);
}

/// `nobody`'s uid and gid, as `/proc/PID/status` writes them.
fn nobody() -> (String, String) {
    let user = nix::unistd::User::from_name("nobody")
        .expect("lookup")
        .expect("nobody exists");
    (user.uid.to_string(), user.gid.to_string())
}

#[test]
fn root_drops_to_the_user_given_once_the_capture_is_open() {
    let Some(lab) = Lab::new("root_drops_to_the_user_given") else {
        return;
    };
    let live = lab.live(&["--json", "--user", "nobody"]);
    // Every thread: these are per-thread settings.
    let tasks: Vec<std::path::PathBuf> = std::fs::read_dir(format!("/proc/{}/task", live.pid()))
        .expect("tasks")
        .filter_map(|t| t.ok().map(|t| t.path().join("status")))
        .collect();
    assert!(
        tasks.len() > 1,
        "the capture and worker threads run: {tasks:?}"
    );
    let (uid, gid) = nobody();
    for task in &tasks {
        let status = std::fs::read_to_string(task).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("no {name} in {status}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(field("Uid"), [&uid; 4], "real, effective, saved and fs uid");
        assert_eq!(field("Gid"), [&gid; 4], "real, effective, saved and fs gid");
        assert_eq!(field("Groups"), [&gid], "no other groups");
        // No capability left, none that could come back, no way to gain any.
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(
                field(set),
                ["0000000000000000"],
                "{set} of {}",
                task.display()
            );
        }
        assert_eq!(field("NoNewPrivs"), ["1"], "{}", task.display());
    }
    // The capture still works with the privileges gone.
    lab.replay(&fixture("vlan-qinq-ipv6ext.pcap"), &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.final_stats()["packets"], 36);

    let no_user = lab.exec_status(&[BIN, "live", "-i", "pm1", "--user", "no-such-user-here"]);
    assert_eq!(no_user.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_user.stderr).contains("no user `no-such-user-here`"));
    let root = lab.exec_status(&[BIN, "live", "-i", "pm1", "--user", "root"]);
    assert_eq!(root.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&root.stderr).contains("--user root: that user is root (uid 0)"),
        "{}",
        String::from_utf8_lossy(&root.stderr)
    );
}

#[test]
fn after_the_drop_sighup_reopens_in_a_folder_the_user_may_write() {
    let Some(lab) = Lab::new("after_the_drop_sighup_reopens") else {
        return;
    };
    let (uid, gid) = nobody();
    // A folder only root writes: the run says at once that a reopen will fail.
    let root_only = temp_dir("drop-root-only");
    let path = root_only.join("events.json");
    let live = lab.live(&[
        "--json",
        "-o",
        path.to_str().expect("utf-8"),
        "--user",
        "nobody",
    ]);
    let warned = format!(
        "portmatrix: warning: running as `nobody`, which may not create files in {}: on SIGHUP",
        root_only.display()
    );
    assert!(live.stderr().contains(&warned), "{}", live.stderr());
    assert!(live.stop().status.success());

    // A folder that belongs to the user: no warning, and the reopen works.
    let owned = temp_dir("drop-owned");
    ok(Command::new("chown").args([&format!("{uid}:{gid}"), owned.to_str().expect("utf-8")]));
    let path = owned.join("events.json");
    let rotated = owned.join("events.json.1");
    let live = lab.live(&[
        "--json",
        "--flows",
        "-o",
        path.to_str().expect("utf-8"),
        "--user",
        "nobody",
    ]);
    assert!(!live.stderr().contains("warning"), "{}", live.stderr());
    lab.replay(
        &fixture("sample-contact-center.pcapng"),
        &["--multiplier", "20"],
    );
    thread::sleep(Duration::from_millis(300));
    std::fs::rename(&path, &rotated).expect("rotate");
    live.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reopen the file: {}",
            live.stderr()
        );
        thread::sleep(Duration::from_millis(20));
    }
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&path).expect("the new file").uid();
    assert_eq!(owner.to_string(), uid, "created by the user dropped to");
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(!run.stderr.contains("cannot reopen"), "{}", run.stderr);
    let after = read_events(&path);
    assert_eq!(
        after.last().expect("events after the reopen")["event_type"],
        "stats"
    );
    let _ = std::fs::remove_dir_all(root_only);
    let _ = std::fs::remove_dir_all(owned);
}

#[test]
fn bad_interfaces_and_filters_are_clear_errors() {
    let Some(lab) = Lab::new("bad_interfaces_and_filters") else {
        return;
    };
    let missing = lab.exec_status(&[BIN, "live", "-i", "nosuch0"]);
    assert_eq!(missing.status.code(), Some(1));
    let text = String::from_utf8_lossy(&missing.stderr);
    assert!(
        text.contains("no interface named `nosuch0`") && text.contains("pm1"),
        "{text}"
    );

    let filter = lab.exec_status(&[BIN, "live", "-i", "pm1", "--bpf", "tcp port nonsense"]);
    assert_eq!(filter.status.code(), Some(2));
    let text = String::from_utf8_lossy(&filter.stderr);
    assert!(
        text.contains("bad capture filter `tcp port nonsense`"),
        "{text}"
    );
}

#[test]
fn an_interface_going_down_ends_the_run_with_its_data_unless_retry() {
    let Some(lab) = Lab::new("an_interface_going_down") else {
        return;
    };
    let live = lab.live(&["--json", "--flows"]);
    lab.replay(&fixture("vlan-qinq-ipv6ext.pcap"), &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    lab.ip(&["link", "set", "pm1", "down"]);
    let run = live.finish();
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("capture on `pm1` failed"),
        "{}",
        run.stderr
    );
    // What was captured before is all there.
    assert_eq!(run.final_stats()["packets"], 36);
    assert_eq!(run.of_type("flow").len(), 6);

    lab.ip(&["link", "set", "pm1", "up"]);
    let live = lab.live(&["--json", "--retry"]);
    lab.ip(&["link", "set", "pm1", "down"]);
    live.wait_for_stderr("waiting for `pm1` to come back");
    lab.ip(&["link", "set", "pm1", "up"]);
    live.wait_for_stderr("capturing on `pm1` again");
    lab.replay(&fixture("vlan-qinq-ipv6ext.pcap"), &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(run.final_stats()["packets"], 36);
    // Recovered: the final stats no longer carry the old error.
    let interface = &run.final_stats()["interfaces"][0];
    assert_eq!(interface["name"], "pm1", "{interface}");
    assert!(interface.get("error").is_none(), "{interface}");
}

#[test]
fn live_extraction_writes_each_flagged_flows_packets_and_the_gate_fails() {
    let Some(lab) = Lab::new("live_extraction_writes_each_flagged_flows_packets") else {
        return;
    };
    let dir = temp_dir("extract");
    let evidence = dir.join("evidence");
    let _ = std::fs::remove_dir_all(&evidence);
    let live = lab.live(&[
        "--json",
        "--flows",
        "--extract",
        evidence.to_str().expect("utf-8"),
        "--fail-on",
        "undocumented",
    ]);
    lab.replay(
        &fixture("sample-contact-center.pcapng"),
        &["--multiplier", "20"],
    );
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    // Stopped by a signal, and an undocumented flow was seen: the gate's code.
    assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
    let stats = run.final_stats();
    assert_nothing_dropped(stats);
    let tshark = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tshark {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "tshark is not installed (scripts/setup --test installs it)"
        );
        eprintln!("SKIPPED the tshark checks of live extraction: tshark is not installed");
    }
    let mut files = 0;
    let mut packets = 0;
    for f in run.of_type("flow") {
        let Some(path) = f["evidence"].as_str() else {
            assert_eq!(f["verdict"], "documented", "{f}");
            continue;
        };
        files += 1;
        let n = f["pkts_toserver"].as_u64().expect("n") + f["pkts_toclient"].as_u64().expect("n");
        packets += n;
        let mut cap = portmatrix::capture::CaptureFile::open(Path::new(path)).expect("open");
        let mut read = 0;
        while cap.next_packet().expect("read").is_some() {
            read += 1;
        }
        assert_eq!(read, n, "{path}");
        if tshark {
            let out = ok(Command::new("tshark").args([
                "-n",
                "-r",
                path,
                "-T",
                "fields",
                "-e",
                "frame.number",
            ]));
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).lines().count() as u64,
                n,
                "{path}"
            );
        }
    }
    assert_eq!(files, 15, "one file per flagged flow of the sample");
    assert_eq!(stats["extract"]["files"], 15);
    assert_eq!(stats["extract"]["packets"], packets);
    assert_eq!(stats["extract"]["capped_packets"], 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn live_focus_keeps_the_same_flows_as_the_file_and_counts_the_rest() {
    let Some(lab) = Lab::new("live_focus_keeps_the_same_flows_as_the_file") else {
        return;
    };
    let file = fixture("sample-contact-center.pcapng");
    let focus = ["--host", "10.10.99.5", "--port", "8100", "--port", "139"];
    let out = Command::new(BIN)
        .args(["analyze", "-q", "--json", "--flows"])
        .args(focus)
        .arg(&file)
        .output()
        .expect("run analyze");
    assert!(out.status.success());
    let expected: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json"))
        .filter(|e| e["event_type"] == "flow")
        .map(|e| flow_identity(&e))
        .collect();
    assert_eq!(expected.len(), 2);
    let mut args = vec!["--json", "--flows"];
    args.extend_from_slice(&focus);
    let live = lab.live(&args);
    lab.replay(&file, &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(300));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let got: BTreeSet<String> = run.of_type("flow").into_iter().map(flow_identity).collect();
    assert_eq!(got, expected);
    let stats = run.final_stats();
    assert_eq!(stats["filters"]["host"], serde_json::json!(["10.10.99.5"]));
    assert_eq!(stats["filters"]["port"], serde_json::json!([8100, 139]));
    assert_eq!(
        stats["filtered"].as_u64().expect("filtered")
            + stats["tcp_udp_packets"].as_u64().expect("n"),
        780
    );
}

/// `2026-11-26T06:41:11.499013Z` as a time (UTC, microseconds).
fn parse_rfc3339(s: &str) -> SystemTime {
    let num = |r: std::ops::Range<usize>| -> i64 { s[r].parse().expect("digits") };
    let (y, mo, d) = (num(0..4), num(5..7), num(8..10));
    let (h, mi, sec, micros) = (num(11..13), num(14..16), num(17..19), num(20..26));
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
        + Duration::from_micros(u64::try_from(micros).expect("micros"))
}
