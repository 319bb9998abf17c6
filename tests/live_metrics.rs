//! `live --metrics` and `--metrics-file` with the real tools: promtool (from
//! Debian's prometheus package) checks the exposition, and a real Prometheus,
//! started by the test in its lab's network namespace with its own
//! configuration and data folder on the namespace's loopback, scrapes the
//! run; its HTTP API must then give the packets the final stats event gives.
//! Prometheus is stopped by its PID.
//!
//! Needs root, tcpreplay and prometheus (scripts/setup --test installs them);
//! without, SKIPPED (a failure with `PORTMATRIX_LIVE_TESTS=require`).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::lab::*;

/// Ports inside the lab's own namespace: no other test shares them.
const METRICS: &str = "127.0.0.1:19911";
const PROMETHEUS: &str = "127.0.0.1:19090";

/// `promtool check metrics` on `text`: its complaints, if any.
fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The value of the sample `name{labels}` in exposition `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// One instant query to Prometheus's HTTP API: the value of its single result.
fn query(lab: &Lab, expr: &str) -> Option<f64> {
    let encoded: String = expr
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("http://{PROMETHEUS}/api/v1/query?query={encoded}");
    let body = lab.http_get(&url)?;
    let v: Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    (result.len() == 1).then_some(())?;
    result[0]["value"][1].as_str()?.parse().ok()
}

fn prometheus(lab: &Lab, dir: &Path) -> Daemon {
    let conf = dir.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: portmatrix\n    \
static_configs:\n      - targets: ['{METRICS}']\n"
        ),
    )
    .expect("prometheus.yml");
    let daemon = lab.daemon(
        "prometheus",
        &[
            "prometheus",
            &format!("--config.file={}", conf.display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            &format!("--web.listen-address={PROMETHEUS}"),
        ],
        &dir.join("prometheus.out"),
    );
    let ready = wait_for(Duration::from_secs(30), || {
        lab.http_get(&format!("http://{PROMETHEUS}/-/ready"))
    });
    assert!(
        ready.is_some(),
        "prometheus did not start: {}",
        std::fs::read_to_string(dir.join("prometheus.out")).unwrap_or_default()
    );
    daemon
}

#[test]
fn prometheus_scrapes_the_packets_the_final_stats_give() {
    let test = "prometheus_scrapes_the_packets";
    if !have_tool(test, "prometheus") || !have_tool(test, "promtool") {
        return;
    }
    let Some(lab) = Lab::new(test) else {
        return;
    };
    lab.loopback_up();
    let dir = temp_dir(&format!("metrics-{}", lab.ns));
    let file = fixture("sample-contact-center.pcapng");
    let (_, packets) = offline_flows(&file);
    // As the service runs: the port is bound as root, served as another user.
    let live = lab.live(&["--json", "--metrics", METRICS, "--user", "nobody"]);
    let _prometheus = prometheus(&lab, &dir);
    lab.replay(&file, &["--multiplier", "20"]);
    // Prometheus has scraped the whole replay once its count stops at the file's.
    let scraped = wait_for(Duration::from_secs(20), || {
        query(&lab, "portmatrix_packets_total{interface=\"pm1\"}").filter(|&n| n == packets as f64)
    });
    let exposition = lab
        .http_get(&format!("http://{METRICS}/metrics"))
        .expect("/metrics answers");
    let alerts = query(&lab, "sum(portmatrix_alerts_total)");
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let stats = run.final_stats();
    assert_nothing_dropped(stats);
    assert_eq!(
        scraped.map(|n| n as u64),
        stats["packets"].as_u64(),
        "Prometheus's packets (exposition: {exposition})"
    );
    assert_eq!(alerts, Some(run.of_type("alert").len() as f64));
    promtool_check(&exposition).unwrap_or_else(|e| panic!("promtool: {e}\n{exposition}"));
    for family in [
        "portmatrix_bytes_total",
        "portmatrix_kernel_dropped_total",
        "portmatrix_queue_dropped_total",
        "portmatrix_flows_total",
        "portmatrix_alerts_folded_total",
        "portmatrix_evictions_total",
        "portmatrix_output_errors_total",
        "portmatrix_alert_latency_seconds",
    ] {
        assert!(
            exposition.contains(&format!("# TYPE {family} ")),
            "{family}"
        );
    }
    let latency = sample(&exposition, "portmatrix_alert_latency_seconds_count");
    assert_eq!(latency, Some(15.0), "{exposition}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_metrics_file_is_replaced_whole_and_ends_with_the_final_counts() {
    let test = "the_metrics_file_is_replaced_whole";
    if !have_tool(test, "promtool") {
        return;
    }
    let Some(lab) = Lab::new(test) else {
        return;
    };
    let dir = temp_dir(&format!("metrics-file-{}", lab.ns));
    let prom = dir.join("portmatrix.prom");
    let file = fixture("sample-contact-center.pcapng");
    let (_, packets) = offline_flows(&file);
    let path = prom.to_str().expect("utf-8");
    let live = lab.live(&["--json", "--metrics-file", path, "--metrics-interval", "1s"]);
    // Written at the start, before any counter.
    assert!(prom.exists(), "{}", live.stderr());
    lab.replay(&file, &["--multiplier", "20"]);
    let series = "portmatrix_packets_total{interface=\"pm1\"}";
    let during = wait_for(Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&prom).ok()?;
        (sample(&text, series) == Some(packets as f64)).then_some(text)
    })
    .expect("the file gets the replay's packets while capture runs");
    promtool_check(&during).unwrap_or_else(|e| panic!("promtool: {e}\n{during}"));
    let run = live.stop();
    assert!(run.status.success(), "{}", run.stderr);
    let last = std::fs::read_to_string(&prom).expect("the file stays");
    let stats = run.final_stats();
    assert_eq!(sample(&last, series), stats["packets"].as_f64());
    assert_eq!(
        sample(&last, "portmatrix_flows_total{verdict=\"documented\"}"),
        stats["flows_per_verdict"]["documented"].as_f64(),
        "the final file has the flows closed at the stop: {last}"
    );
    // Only the file: every temporary version was renamed or removed.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["portmatrix.prom"]);
    let _ = std::fs::remove_dir_all(dir);
}
