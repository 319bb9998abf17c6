//! Live capture under load and without it: a capture whose kernel ring is
//! too small for a burst says exactly how many packets the kernel dropped;
//! at the generator's top speed live still finds what `analyze` finds in
//! the same capture; and an idle capture sleeps. Same lab as
//! tests/live_netns.rs (a namespace of its own, removed after).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::thread;
use std::time::Duration;

use common::lab::*;

#[test]
fn at_top_speed_live_finds_the_flows_and_verdicts_analyze_finds() {
    let Some(lab) = Lab::new("at_top_speed_live_finds_the_flows") else {
        return;
    };
    // A generated contact-center capture: 30,000 packets in 1.7 s of
    // packet time (no flow times out either way), replayed as fast as
    // tcpreplay goes, so batches fill and the ring runs dry block by block.
    let dir = temp_dir("live-top-speed");
    let file = dir.join("cc-30k.pcap");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/gen-traffic");
    ok(Command::new("python3")
        .args([script, "--packets", "30000", "-o"])
        .arg(&file));
    let (expected, packets) = offline_flows(&file);
    // Its HTTP frames are longer than 1,514 bytes.
    for dev in ["pm0", "pm1"] {
        lab.ip(&["link", "set", dev, "mtu", "9000"]);
    }
    let live = lab.live(&["--json", "--flows"]);
    lab.replay(&file, &["--preload-pcap", "--topspeed"]);
    thread::sleep(Duration::from_millis(500));
    let run = live.stop();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(run.status.success(), "{}", run.stderr);
    let stats = run.final_stats();
    assert_nothing_dropped(stats);
    assert_eq!(stats["packets"], packets, "{stats}");
    let got: BTreeSet<String> = run.of_type("flow").into_iter().map(flow_identity).collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&expected).take(5).collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "missing {missing:#?}, extra {extra:#?}"
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}, extra {extra:#?}"
    );
}

#[test]
fn an_idle_capture_sleeps() {
    let Some(lab) = Lab::new("an_idle_capture_sleeps") else {
        return;
    };
    let live = lab.live(&["--json"]);
    thread::sleep(Duration::from_secs(1));
    // Wakeups are counted, not timed: the kernel counts every time a thread
    // gave up the CPU. A capture that polled its ring every 10 ms and woke
    // every worker each time did about 420 a second; now about 25.
    let switches = || -> u64 {
        let tasks = format!("/proc/{}/task", live.pid());
        std::fs::read_dir(&tasks)
            .expect("the process's threads")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
            .flat_map(|status| {
                status
                    .lines()
                    .filter(|l| l.starts_with("voluntary_ctxt_switches"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    };
    let before = switches();
    thread::sleep(Duration::from_secs(4));
    let woke = switches() - before;
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert!(woke < 4 * 60, "an idle capture woke {woke} times in 4 s");
}

#[test]
fn a_burst_into_a_tiny_ring_is_counted_packet_for_packet() {
    let Some(lab) = Lab::new("a_burst_into_a_tiny_ring") else {
        return;
    };
    let file = fixture("sample-contact-center.pcapng");
    let (_, per_replay) = offline_flows(&file);
    let loops = 40;
    let live = lab.live(&["--json", "--flows", "--buffer-mb", "1"]);
    let before = lab.rx_packets("pm1");
    // Stopped, it reads nothing: the burst overflows the 1 MiB ring (a few
    // thousand packets of 256 bytes) and the kernel drops the rest.
    live.signal("STOP");
    let looped = loops.to_string();
    lab.replay(&file, &["--topspeed", "--loop", &looped]);
    let delivered = lab.rx_packets("pm1") - before;
    live.signal("CONT");
    thread::sleep(Duration::from_millis(500));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        delivered,
        per_replay * loops,
        "the veth delivered every packet sent"
    );

    let stats = run.final_stats();
    let iface = &stats["interfaces"][0];
    let received = iface["kernel_received"].as_u64().expect("kernel_received");
    let dropped = iface["kernel_dropped"].as_u64().expect("kernel_dropped");
    assert_eq!(
        received, delivered,
        "every delivered packet reached the ring or its drop count: {stats}"
    );
    assert!(
        dropped > delivered / 2,
        "the burst overflowed the ring: {stats}"
    );
    assert_eq!(
        stats["packets"],
        received - dropped,
        "read = received - dropped: {stats}"
    );
    assert_eq!(iface["packets"], stats["packets"], "{stats}");

    // What was read and not dropped from a worker's queue is in the flows.
    let queue = stats["queue_drops"]["worker_queue_full"]
        .as_u64()
        .expect("queue drops");
    let in_flows: u64 = run
        .of_type("flow")
        .iter()
        .map(|f| {
            f["pkts_toserver"].as_u64().unwrap_or(0) + f["pkts_toclient"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(
        in_flows + queue,
        stats["tcp_udp_packets"].as_u64().expect("tcp_udp_packets"),
        "{stats}"
    );
    // The summary says so too (and a warning each stats interval with drops).
    let summary = format!("kernel received {received}, dropped {dropped}");
    assert!(run.stderr.contains(&summary), "{}", run.stderr);
}
