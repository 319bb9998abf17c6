//! Drops are counted exactly: a capture whose kernel ring is too small for a
//! burst must say how many packets the kernel dropped, and the numbers must
//! add up with what the kernel delivered to the interface. Same lab as
//! tests/live_netns.rs (a namespace of its own, removed after).

mod common;

use std::thread;
use std::time::Duration;

use common::lab::*;

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
