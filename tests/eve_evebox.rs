//! `--format eve` taken by a real Suricata event manager: EveBox (crates.io,
//! built by scripts/setup --test into ~/.cargo/bin) runs in its SQLite mode
//! on loopback, with a data folder of its own, reading the events of the
//! sample capture as it reads Suricata's `eve.json` (`--input`); its HTTP API
//! (`/api/alerts`, the alert inbox) must then list every alert with its
//! signature and severity, the storm control summary among them, grouped as
//! EveBox groups (signature id, source, destination). EveBox is stopped by
//! its PID.
//!
//! Without evebox the test says SKIPPED, or fails with
//! `PORTMATRIX_LIVE_TESTS=require` (scripts/test as root, CI).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");
/// EveBox starts, reads the file and indexes it within this.
const PATIENCE: Duration = Duration::from_secs(60);

/// EveBox: ~/.cargo/bin/evebox (scripts/setup), else on the PATH.
fn evebox() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let cached = home.map(|h| h.join("bin/evebox"));
    cached
        .into_iter()
        .chain([PathBuf::from("evebox")])
        .find(|bin| {
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// EveBox as the test started it; stopped (SIGTERM, then SIGKILL) by its PID when dropped.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How EveBox groups alerts: signature id, source, destination.
type Group = (u64, String, String);

fn group(e: &Value) -> Group {
    (
        e["alert"]["signature_id"].as_u64().expect("signature_id"),
        e["src_ip"].as_str().expect("src_ip").to_string(),
        e["dest_ip"].as_str().expect("dest_ip").to_string(),
    )
}

/// What the inbox shows of an alert: its signature and severity.
fn shown_alert(e: &Value) -> (String, u64) {
    (
        e["alert"]["signature"]
            .as_str()
            .expect("signature")
            .to_string(),
        e["alert"]["severity"].as_u64().expect("severity"),
    )
}

/// A free loopback port (taken from the kernel, then released for EveBox).
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    l.local_addr().expect("its address").port()
}

/// `GET path` over HTTP/1.0 (so the body ends with the connection): the
/// status code and the body, or `None` while nothing listens.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

#[test]
fn evebox_lists_the_alerts_with_their_signature_and_severity() {
    let Some(evebox) = evebox() else {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "evebox is needed (scripts/setup --test builds it into ~/.cargo/bin)"
        );
        eprintln!("SKIPPED: evebox is needed (scripts/setup --test)");
        return;
    };
    let dir = common::work_dir("eve", "evebox");
    let eve = dir.join("eve.json");
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-contact-center.pcapng");
    let out = Command::new(BIN)
        .args(["analyze", "--format", "eve", "--flows", "-q"])
        .args(["--alert-burst", "2", "--sensor-name", "portmatrix-test"])
        .arg(&sample)
        .output()
        .expect("portmatrix runs");
    assert!(out.status.success(), "{}", common::stderr(&out));
    fs::write(&eve, &out.stdout).expect("write eve.json");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("an EVE line"))
        .collect();
    // What EveBox should show: per (signature id, source, destination),
    // how many alerts, with the signature and severity of one of them (it
    // shows the latest's; the signature names the port, which may differ).
    let mut expected: BTreeMap<Group, (BTreeSet<(String, u64)>, u64)> = BTreeMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "alert") {
        let entry = expected.entry(group(e)).or_default();
        entry.0.insert(shown_alert(e));
        entry.1 += 1;
    }
    assert!(expected.len() > 3, "the sample has alerts to show");
    assert!(expected.keys().any(|k| k.0 == 8_900_000), "and a summary");

    let port = free_port();
    let data = dir.join("data");
    fs::create_dir_all(&data).expect("EveBox's data folder");
    let log = dir.join("evebox.log");
    let child = Command::new(&evebox)
        .args(["server", "--sqlite", "--no-auth", "--no-tls"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--data-directory")
        .arg(&data)
        .arg("--config-directory")
        .arg(&data)
        .args(["--disable-geoip", "--disable-retention"])
        .arg("--input")
        .arg(&eve)
        .env("HOME", &dir)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).expect("the log"))
        .stderr(fs::File::create(dir.join("evebox.err")).expect("the log"))
        .spawn()
        .expect("evebox starts");
    let server = Server { child, log };

    // The inbox, once EveBox has read every alert.
    let deadline = Instant::now() + PATIENCE;
    let listed = loop {
        let alerts: usize = expected.values().map(|v| v.1 as usize).sum();
        if let Some((200, body)) = get(port, "/api/alerts") {
            let v: Value = serde_json::from_str(&body).expect("the inbox is JSON");
            let groups = v["events"].as_array().cloned().unwrap_or_default();
            let seen: u64 = groups
                .iter()
                .map(|g| g["_metadata"]["count"].as_u64().unwrap_or(0))
                .sum();
            if seen as usize == alerts {
                break groups;
            }
        }
        assert!(
            Instant::now() < deadline,
            "EveBox did not list {alerts} alerts within {PATIENCE:?}; its log:\n{}{}",
            server.log(),
            fs::read_to_string(dir.join("evebox.err")).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(250));
    };

    let shown: BTreeMap<Group, ((String, u64), u64)> = listed
        .iter()
        .map(|g| {
            let count = g["_metadata"]["count"].as_u64().expect("count");
            (group(&g["_source"]), (shown_alert(&g["_source"]), count))
        })
        .collect();
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "EveBox's inbox groups"
    );
    for (key, (alert, count)) in &shown {
        let (alerts, n) = &expected[key];
        assert!(
            alerts.contains(alert),
            "{key:?}: {alert:?} is none of {alerts:?}"
        );
        assert_eq!(count, n, "{key:?}: alerts in the group");
    }
    // The sensor is known by the name given.
    if let Some((200, body)) = get(port, "/api/sensors") {
        assert!(body.contains("portmatrix-test"), "sensors: {body}");
    }
    drop(server);
    eprintln!(
        "EveBox listed {} alerts in {} groups, as written",
        expected.values().map(|v| v.1).sum::<u64>(),
        shown.len()
    );
}
