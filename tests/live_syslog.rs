//! `live --syslog` against a real rsyslogd (Debian's), which each test starts
//! in its lab's network namespace with its own configuration: a TCP input on
//! the namespace's loopback and a unix socket in a temporary folder, each
//! writing what it receives to a file. rsyslogd is stopped by its PID.
//!
//! Needs root, tcpreplay and rsyslog (scripts/setup --test installs them);
//! without, SKIPPED (a failure with `PORTMATRIX_LIVE_TESTS=require`).

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use common::lab::*;

const TCP_PORT: &str = "16514";

/// rsyslogd's configuration: the three inputs (UDP on the TCP port's
/// number), each into its own file as
/// `APP-NAME TAB PROCID TAB HOSTNAME TAB MSG`.
fn rsyslog_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"global(workDirectory="{d}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
module(load="imtcp")
module(load="imudp")
template(name="fields" type="string" string="%app-name%\t%procid%\t%hostname%\t%msg%\n")
ruleset(name="tcp") {{ action(type="omfile" file="{d}/tcp.log" template="fields") }}
ruleset(name="unix") {{ action(type="omfile" file="{d}/unix.log" template="fields") }}
ruleset(name="udp") {{ action(type="omfile" file="{d}/udp.log" template="fields") }}
input(type="imudp" address="127.0.0.1" port="{TCP_PORT}" ruleset="udp")
input(type="imtcp" address="127.0.0.1" port="{TCP_PORT}" ruleset="tcp")
input(type="imuxsock" Socket="{d}/log.sock" useSpecialParser="off" parseHostname="on" ruleset="unix")
"#
    )
}

/// Start rsyslogd in `lab` and wait until both inputs are open.
fn rsyslogd(lab: &Lab, dir: &Path) -> Daemon {
    let conf = dir.join("rsyslog.conf");
    std::fs::write(&conf, rsyslog_conf(dir)).expect("rsyslog.conf");
    let pid = dir.join("rsyslogd.pid");
    let _ = std::fs::remove_file(&pid);
    let daemon = lab.daemon(
        "rsyslogd",
        &[
            "/usr/sbin/rsyslogd",
            "-n",
            "-f",
            conf.to_str().expect("utf-8"),
            "-i",
            pid.to_str().expect("utf-8"),
        ],
        &dir.join("rsyslogd.out"),
    );
    let listening = wait_for(Duration::from_secs(10), || {
        let ss = lab.exec_status(&["ss", "-Hltn", &format!("sport = :{TCP_PORT}")]);
        let tcp = !String::from_utf8_lossy(&ss.stdout).trim().is_empty();
        (tcp && dir.join("log.sock").exists()).then_some(())
    });
    assert!(
        listening.is_some(),
        "rsyslogd did not open its inputs: {}",
        std::fs::read_to_string(dir.join("rsyslogd.out")).unwrap_or_default()
    );
    daemon
}

/// The messages rsyslog wrote to `file`: (app-name, procid, the event).
fn received(file: &Path) -> Vec<(String, String, Value)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(4, '\t').collect();
            assert_eq!(f.len(), 4, "{l}");
            let event = serde_json::from_str(f[3].trim_start())
                .unwrap_or_else(|e| panic!("the message is not the event's JSON ({e}): {l}"));
            (f[0].to_string(), f[1].to_string(), event)
        })
        .collect()
}

fn setup(test: &str) -> Option<(Lab, PathBuf)> {
    if !have_tool(test, "rsyslogd") {
        return None;
    }
    let lab = Lab::new(test)?;
    lab.loopback_up();
    let dir = temp_dir(&format!("syslog-{}", lab.ns));
    // rsyslogd runs as root here; the folder is the test's own.
    Some((lab, dir))
}

#[test]
fn every_alert_reaches_rsyslog_in_order_and_once_over_tcp_udp_and_a_unix_socket() {
    let Some((lab, dir)) = setup("every_alert_reaches_rsyslog") else {
        return;
    };
    let _rsyslogd = rsyslogd(&lab, &dir);
    let sock = format!("unix:{}", dir.join("log.sock").display());
    let tcp = format!("tcp://127.0.0.1:{TCP_PORT}");
    let udp = format!("udp://127.0.0.1:{TCP_PORT}");
    for (target, file) in [
        (tcp.as_str(), "tcp.log"),
        (sock.as_str(), "unix.log"),
        (udp.as_str(), "udp.log"),
    ] {
        let live = lab.live(&["--json", "--syslog", target]);
        lab.replay(
            &fixture("sample-contact-center.pcapng"),
            &["--multiplier", "20"],
        );
        thread::sleep(Duration::from_millis(300));
        let run = live.stop();
        assert!(run.status.success(), "{target}: {}", run.stderr);
        let written: Vec<&Value> = run.events.iter().map(|(_, e)| e).collect();
        assert_eq!(
            run.of_type("alert").len(),
            15,
            "the sample has 15 flagged flows"
        );
        // Everything stdout got, the final stats included, in the same order.
        let path = dir.join(file);
        let got = wait_for(Duration::from_secs(10), || {
            let got = received(&path);
            (got.len() >= written.len()).then_some(got)
        })
        .unwrap_or_else(|| panic!("{target}: rsyslog got {:?}", received(&path)));
        assert_eq!(got.len(), written.len(), "{target}: nothing doubled");
        for ((app, procid, event), want) in got.iter().zip(&written) {
            assert_eq!(app, "portmatrix");
            assert!(procid.parse::<u32>().is_ok(), "{procid}");
            // The final stats event goes out before its own message is counted.
            if event["event_type"] != "stats" {
                assert_eq!(event, *want, "{target}");
            }
        }
        let last = &run.final_stats()["syslog"];
        assert_eq!(last["dropped"], 0, "{target}: {last}");
        assert!(
            run.stderr.contains(&format!(
                "syslog: {} messages sent, 0 dropped",
                written.len()
            )),
            "{}",
            run.stderr
        );
        std::fs::remove_file(&path).expect("start the next target afresh");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_tcp_receiver_that_goes_away_is_counted_and_capture_goes_on() {
    receiver_goes_away("a_tcp_receiver_that_goes_away", |_| {
        (format!("tcp://127.0.0.1:{TCP_PORT}"), "tcp.log")
    });
}

#[test]
fn a_unix_socket_receiver_that_goes_away_is_counted_and_capture_goes_on() {
    receiver_goes_away("a_unix_socket_receiver_that_goes_away", |dir| {
        (
            format!("unix:{}", dir.join("log.sock").display()),
            "unix.log",
        )
    });
}

/// rsyslogd killed mid-run, capture goes on, rsyslogd started again: the
/// messages lost are counted and portmatrix connects again by itself.
fn receiver_goes_away(test: &str, target: impl Fn(&Path) -> (String, &'static str)) {
    let Some((lab, dir)) = setup(test) else {
        return;
    };
    let mut rsyslogd = rsyslogd(&lab, &dir);
    let file = fixture("sample-contact-center.pcapng");
    let (_, packets) = offline_flows(&file);
    let (target, log) = target(&dir);
    // Stats every 200 ms: messages keep coming after the receiver is gone.
    let live = lab.live(&["--json", "--syslog", &target, "--stats-interval", "200ms"]);
    lab.replay(&file, &["--multiplier", "20"]);
    let log = dir.join(log);
    let first = wait_for(Duration::from_secs(10), || {
        let n = received(&log)
            .iter()
            .filter(|(_, _, e)| e["event_type"] == "alert")
            .count();
        (n == 15).then_some(())
    });
    assert!(first.is_some(), "the alerts never reached rsyslog");
    rsyslogd.kill();
    // Capture goes on without the receiver: a second replay is counted whole.
    thread::sleep(Duration::from_millis(500));
    lab.replay(&file, &["--multiplier", "20"]);
    thread::sleep(Duration::from_millis(1000));
    // The receiver comes back: portmatrix connects again by itself.
    let _again = rsyslogd_again(&lab, &dir);
    // Attempts come at growing pauses (up to 5 s): the periodic stats
    // arrive again once one succeeded.
    let back = wait_for(Duration::from_secs(20), || {
        received(&log)
            .iter()
            .any(|(_, _, e)| e["event_type"] == "stats" && e["stats"]["packets"] == 2 * packets)
            .then_some(())
    });
    assert!(
        back.is_some(),
        "no message after the receiver came back: {}",
        live.stderr()
    );
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let stats = run.final_stats();
    assert_eq!(stats["packets"], 2 * packets, "{stats}");
    assert_nothing_dropped(stats);
    let syslog = &stats["syslog"];
    assert!(
        syslog["dropped"].as_u64().expect("dropped") >= 1,
        "{syslog}"
    );
    assert!(
        syslog["reconnects"].as_u64().expect("reconnects") >= 1,
        "{syslog}"
    );
    assert!(
        run.stderr
            .contains(&format!("syslog: sending to {target} failed")),
        "{}",
        run.stderr
    );
    // What was sent after the reconnection arrived.
    let after = wait_for(Duration::from_secs(10), || {
        let got = received(&log);
        got.last()
            .is_some_and(|(_, _, e)| {
                e["event_type"] == "stats" && e["stats"]["packets"] == 2 * packets
            })
            .then_some(())
    });
    assert!(after.is_some(), "nothing arrived after the reconnection");
    let _ = std::fs::remove_dir_all(dir);
}

/// rsyslogd started again on the same configuration (appending to the same files).
fn rsyslogd_again(lab: &Lab, dir: &Path) -> Daemon {
    let _ = std::fs::remove_file(dir.join("log.sock"));
    rsyslogd(lab, dir)
}
