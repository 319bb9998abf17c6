//! The report's flagged-flows table in a real browser, used as a person uses
//! it: Debian's headless chromium, driven over the DevTools protocol on a
//! pipe (`--remote-debugging-pipe`, two FIFOs; no port, no extra crate), types
//! a port into the filter with key events, picks a verdict, pages, and
//! downloads the CSV of what the filters keep.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{portmatrix, stderr, work_dir};

const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser session's deadline: a hung browser fails the test.
const DEADLINE: Duration = Duration::from_secs(120);

/// A headless chromium and its DevTools pipe, attached to one page.
struct Browser {
    child: Child,
    to: File,
    from: BufReader<File>,
    next_id: u64,
    session: Option<String>,
    done: Arc<AtomicBool>,
}

impl Browser {
    fn start(dir: &Path) -> Browser {
        let (to_path, from_path) = (dir.join("cdp-in"), dir.join("cdp-out"));
        for p in [&to_path, &from_path] {
            let _ = std::fs::remove_file(p);
            let ok = Command::new("mkfifo").arg(p).status().expect("mkfifo runs");
            assert!(ok.success(), "mkfifo {}", p.display());
        }
        // The shell opens fd 3 (commands in) and 4 (answers out) on the FIFOs,
        // then becomes chromium.
        let child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<\"$IN\" 4>\"$OUT\"")
            .arg(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .env("IN", &to_path)
            .env("OUT", &from_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // A watchdog: past the deadline the browser is killed, which ends
        // any read below with an error instead of hanging the test.
        let done = Arc::new(AtomicBool::new(false));
        let (pid, flag) = (child.id(), done.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < DEADLINE {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = Command::new("kill").arg(pid.to_string()).status();
        });
        let to = File::options()
            .write(true)
            .open(&to_path)
            .expect("open the command pipe");
        let from = BufReader::new(File::open(&from_path).expect("open the answer pipe"));
        Browser {
            child,
            to,
            from,
            next_id: 0,
            session: None,
            done,
        }
    }

    /// Send one command and wait for its answer (events on the way are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self.from.read_until(0, &mut buf).expect("read chromium");
            assert!(n > 0, "chromium closed its pipe (killed at the deadline?)");
            buf.pop();
            let answer: Value = serde_json::from_slice(&buf).expect("a JSON message");
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Open `url` in a new page and attach to it.
    fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": url }));
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        self.session = attached["sessionId"].as_str().map(str::to_string);
        let start = Instant::now();
        // The new page starts as about:blank: wait for the report itself.
        let loaded = format!(
            "location.href === {} && document.readyState === 'complete'",
            json!(url)
        );
        while self.eval(&loaded) != json!(true) {
            assert!(start.elapsed() < DEADLINE, "the page never loaded");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Focus an input and type `text` key by key, as a keyboard does.
    fn type_into(&mut self, id: &str, text: &str) {
        self.eval(&format!("document.getElementById('{id}').focus()"));
        for c in text.chars() {
            let key = c.to_string();
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": "keyDown", "key": key, "text": key }),
            );
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": "keyUp", "key": key }),
            );
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask the browser to close (its helpers with it), then make sure.
        let close = json!({ "id": 0, "method": "Browser.close" }).to_string();
        let _ = self.to.write_all(format!("{close}\0").as_bytes());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.done.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows of the flagged table a person sees: (server port, verdict).
const VISIBLE: &str =
    "Array.prototype.filter.call(document.querySelectorAll('#flagged-table tbody tr'), \
function (r) { return getComputedStyle(r).display !== 'none'; }).map(function (r) { \
return [r.getAttribute('data-port'), r.getAttribute('data-verdict')]; })";

fn visible(b: &mut Browser) -> Vec<(String, String)> {
    let rows = b.eval(VISIBLE);
    rows.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn chromium_missing(test: &str) -> bool {
    let missing = !Path::new(CHROMIUM).exists();
    if missing {
        eprintln!("SKIPPED {test}: {CHROMIUM} is not installed (scripts/setup installs it)");
    }
    missing
}

/// The report of `events`, written in `dir`.
fn report_of(dir: &Path, events: &[u8]) -> PathBuf {
    let (e, page) = (dir.join("events.jsonl"), dir.join("report.html"));
    std::fs::write(&e, events).expect("write the events");
    let o = portmatrix(&[
        "report",
        &e.display().to_string(),
        "-o",
        &page.display().to_string(),
    ]);
    assert!(o.status.success(), "report failed: {}", stderr(&o));
    page
}

#[test]
fn typing_a_port_shows_only_its_rows_and_the_csv_has_them() {
    if chromium_missing("typing_a_port_shows_only_its_rows_and_the_csv_has_them") {
        return;
    }
    let dir = work_dir("report-filters", "port");
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-contact-center.pcapng");
    let o = portmatrix(&[
        "analyze",
        "--json",
        "--flows",
        "--quiet",
        &capture.display().to_string(),
    ]);
    assert!(o.status.success(), "analyze failed: {}", stderr(&o));
    let page = report_of(&dir, &o.stdout);

    let mut b = Browser::start(&dir);
    b.open(&format!("file://{}", page.display()));
    assert_eq!(visible(&mut b).len(), 15, "every flagged flow at first");

    b.type_into("flagged-port", "8100");
    let rows = visible(&mut b);
    assert_eq!(rows.len(), 2, "the two flows to port 8100: {rows:?}");
    assert!(rows.iter().all(|(p, _)| p == "8100"), "{rows:?}");
    let info = b.eval("document.getElementById('flagged-info').textContent");
    assert_eq!(
        info,
        json!("rows 1\u{2013}2 of 2 (filtered from 15) \u{b7} page 1 of 1")
    );

    // The CSV holds what the filters keep: the header and the two rows.
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads folder");
    let session = b.session.take();
    b.call(
        "Browser.setDownloadBehavior",
        json!({ "behavior": "allow", "downloadPath": downloads.display().to_string() }),
    );
    b.session = session;
    b.eval("document.getElementById('flagged-csv').click()");
    let csv_path = downloads.join("flagged-flows.csv");
    let start = Instant::now();
    while !csv_path.exists() {
        assert!(start.elapsed() < DEADLINE, "no CSV downloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let csv = std::fs::read_to_string(&csv_path).expect("read the CSV");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("First seen,Last seen,Verdict"),
        "{csv}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(":8100,") && l.contains("internal_only")),
        "{csv}"
    );

    // Clear, then a verdict, then a port on top of it.
    b.eval("document.getElementById('flagged-clear').click()");
    assert_eq!(visible(&mut b).len(), 15);
    b.eval(
        "var s = document.getElementById('flagged-verdict'); s.value = 'undocumented'; \
         s.dispatchEvent(new Event('change'))",
    );
    let rows = visible(&mut b);
    assert_eq!(rows.len(), 9, "{rows:?}");
    assert!(rows.iter().all(|(_, v)| v == "undocumented"), "{rows:?}");
    b.type_into("flagged-port", "23");
    assert_eq!(
        visible(&mut b),
        [("23".to_string(), "undocumented".to_string())]
    );

    // Drill-down: a host of the diagram, clicked, filters the table on it.
    b.eval("document.getElementById('flagged-clear').click()");
    b.eval(
        "document.querySelector('#diagram-svg [data-host=\"10.10.1.10\"]')\
         .dispatchEvent(new MouseEvent('click', { bubbles: true }))",
    );
    assert_eq!(
        b.eval("document.getElementById('flagged-host').value"),
        json!("10.10.1.10")
    );
    let hosts = b.eval(
        "Array.prototype.filter.call(document.querySelectorAll('#flagged-table tbody tr'), \
         function (r) { return getComputedStyle(r).display !== 'none'; }).map(function (r) { \
         return r.getAttribute('data-client') + ' ' + r.getAttribute('data-server'); })",
    );
    let hosts = hosts.as_array().expect("an array");
    assert!(!hosts.is_empty() && hosts.len() < 15, "{hosts:?}");
    assert!(
        hosts
            .iter()
            .all(|h| h.as_str().unwrap_or("").contains("10.10.1.10")),
        "{hosts:?}"
    );
}

#[test]
fn a_long_table_is_paged_and_filters_search_every_page() {
    if chromium_missing("a_long_table_is_paged_and_filters_search_every_page") {
        return;
    }
    let dir = work_dir("report-filters", "pages");
    // 250 flagged flows: ports 20000-20249, one a second.
    let mut events = String::new();
    for i in 0..250u32 {
        let t = |ms: u32| format!("2021-08-02T09:{:02}:{:02}.{ms:03}000Z", i / 60, i % 60);
        events.push_str(&format!(
            r#"{{"timestamp":"{}","event_type":"flow","flow_id":{i},"proto":"TCP","src_ip":"10.1.0.{}","src_port":40000,"dest_ip":"10.2.0.1","dest_port":{},"verdict":"undocumented","severity":"medium","rule_ids":[],"start":"{}","end":"{}","pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":60,"bytes_toclient":60}}"#,
            t(10),
            i % 200 + 1,
            20_000 + i,
            t(0),
            t(10)
        ));
        events.push('\n');
    }
    let page = report_of(&dir, events.as_bytes());
    let mut b = Browser::start(&dir);
    b.open(&format!("file://{}", page.display()));
    assert_eq!(visible(&mut b).len(), 100, "the first page");
    b.eval("document.getElementById('flagged-next').click()");
    b.eval("document.getElementById('flagged-next').click()");
    let last = visible(&mut b);
    assert_eq!(last.len(), 50, "the last page");
    assert_eq!(
        b.eval("document.getElementById('flagged-next').disabled"),
        json!(true)
    );
    // Printed, every page of rows is there and the controls are not.
    b.call("Emulation.setEmulatedMedia", json!({ "media": "print" }));
    assert_eq!(visible(&mut b).len(), 250, "print shows every row");
    let tools = "getComputedStyle(document.getElementById('flagged-tools')).display";
    assert_eq!(b.eval(tools), json!("none"));
    b.call("Emulation.setEmulatedMedia", json!({ "media": "" }));
    assert_eq!(visible(&mut b).len(), 50);
    // The port of a row on the last page is found from any page.
    b.eval("document.getElementById('flagged-prev').click()");
    b.type_into("flagged-port", "20249");
    assert_eq!(
        visible(&mut b),
        [("20249".to_string(), "undocumented".to_string())]
    );
    // A host: exactly it (10.1.0.19 is i = 18 and 218, not 10.1.0.190-199) …
    b.eval("document.getElementById('flagged-clear').click()");
    b.type_into("flagged-host", "10.1.0.19");
    let rows = visible(&mut b);
    assert_eq!(rows.len(), 2, "{rows:?}");
    // … or a prefix ending with a dot: the server's subnet, every row.
    b.eval("document.getElementById('flagged-clear').click()");
    b.type_into("flagged-host", "10.2.0.");
    assert_eq!(visible(&mut b).len(), 100);
    let info = b.eval("document.getElementById('flagged-info').textContent");
    assert_eq!(info, json!("rows 1\u{2013}100 of 250 \u{b7} page 1 of 3"));
}
