//! `portmatrix report` as a user runs it: analyze the sample capture, write the
//! report, and check the HTML's structure, its self-containment, its escaping
//! of hostile events, and (with Debian's chromium) that a real browser draws
//! it, runs its script and sorts its tables.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use portmatrix::matrix::PortMatrix;
use sha2::{Digest, Sha256};

mod common;
use common::{portmatrix, stderr, work_dir};
use serde::Deserialize;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Where artifacts a person may want to look at are kept: `<target>/test-artifacts`.
fn artifact_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create the artifacts folder");
    dir
}

/// `analyze --json --flows` on the sample capture, written to `dir/events.jsonl`.
fn sample_events(dir: &Path) -> PathBuf {
    let capture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-contact-center.pcapng");
    let o = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "--json", "--flows", "--quiet"])
        .arg(&capture)
        .output()
        .expect("analyze runs");
    assert!(o.status.success(), "analyze failed: {}", stderr(&o));
    let path = dir.join("events.jsonl");
    std::fs::write(&path, &o.stdout).expect("write the events");
    path
}

/// The event fields these tests count on.
#[derive(Deserialize)]
struct EventHead {
    event_type: String,
    verdict: Option<String>,
}

fn non_documented_flow_events(events: &Path) -> usize {
    let text = std::fs::read_to_string(events).expect("read the events");
    text.lines()
        .map(|l| serde_json::from_str::<EventHead>(l).expect("an event"))
        .filter(|e| e.event_type == "flow" && e.verdict.as_deref() != Some("documented"))
        .count()
}

fn report(events: &[&Path], out: &Path) -> Output {
    let mut args: Vec<String> = vec!["report".into()];
    args.extend(events.iter().map(|p| p.display().to_string()));
    args.extend(["-o".into(), out.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    portmatrix(&args)
}

/// The `<tr>` rows of the body of the table with this id.
fn table_rows(html: &str, id: &str) -> usize {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table #{id}"));
    let body = &html[start..];
    let body = &body[body.find("<tbody>").expect("tbody")..];
    let body = &body[..body.find("</tbody>").expect("end of tbody")];
    body.matches("<tr>").count() + body.matches("<tr ").count()
}

/// Every value of a `src=` or `href=` attribute.
fn link_targets(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            let value = &rest[i + attr.len()..];
            let end = value.find('"').unwrap_or(value.len());
            out.push(&value[..end]);
            rest = &value[end..];
        }
    }
    out
}

/// A CSP hash source for `text`, computed here rather than by the crate.
fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The text between `<tag>` and `</tag>`; the page has exactly one.
fn inline<'a>(html: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    assert_eq!(html.matches(&open).count(), 1, "one {open}");
    let start = html.find(&open).map_or(0, |i| i + open.len());
    let end = html[start..]
        .find(&format!("</{tag}>"))
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// The page's Content-Security-Policy.
fn policy(html: &str) -> &str {
    let key = "http-equiv=\"Content-Security-Policy\" content=\"";
    let start = html.find(key).expect("a CSP meta tag") + key.len();
    let end = html[start..].find('"').map_or(html.len(), |e| start + e);
    &html[start..end]
}

/// The policy allows the one inline style and script of the page, by their
/// hashes, and nothing else: no `unsafe-inline`, and nothing in the page that
/// it would block (`style=` and `on…=` attributes).
fn policy_allows_only_the_pages_own_inline_code(html: &str) {
    let csp = policy(html);
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {csp}"))
            .trim()
            .to_string()
    };
    assert_eq!(directive("default-src"), "'none'");
    assert_eq!(directive("style-src"), sha256_source(inline(html, "style")));
    assert_eq!(
        directive("script-src"),
        sha256_source(inline(html, "script"))
    );
    assert_eq!(directive("base-uri"), "'none'");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(
        !html.contains(" style=\""),
        "a style attribute the policy blocks"
    );
    let handler = html.split(" on").skip(1).find(|rest| {
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    });
    assert_eq!(
        handler.map(|h| &h[..20.min(h.len())]),
        None,
        "an event handler attribute"
    );
}

#[test]
fn report_of_the_sample_capture_has_every_part() {
    let dir = work_dir("report", "sample");
    let events = sample_events(&dir);
    let out = dir.join("report.html");
    let o = report(&[&events], &out);
    assert!(o.status.success(), "report failed: {}", stderr(&o));
    let html = std::fs::read_to_string(&out).expect("the report is written");

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg id=\"diagram-svg\""), "the diagram");
    assert!(html.contains("<svg id=\"timeline-svg\""), "the timeline");
    assert!(html.matches("<path class=\"edge\"").count() > 10);

    let rules = PortMatrix::builtin()
        .expect("built-in matrix")
        .rules()
        .len();
    assert_eq!(
        table_rows(&html, "coverage-table"),
        rules,
        "one row per rule"
    );
    let flagged = non_documented_flow_events(&events);
    assert_eq!(flagged, 15, "the sample's flagged flows");
    assert_eq!(table_rows(&html, "flagged-table"), flagged);
    assert_eq!(html.matches("<rect class=\"mark\"").count(), flagged);

    // Self-contained: nothing to fetch, from anywhere.
    for target in link_targets(&html) {
        assert!(
            !target.starts_with("http:")
                && !target.starts_with("https:")
                && !target.starts_with("//"),
            "fetches {target}"
        );
    }
    for tag in ["<link", "<img", "<iframe", "@import", "url("] {
        assert!(!html.contains(tag), "has {tag}");
    }
    policy_allows_only_the_pages_own_inline_code(&html);
    assert!(html.contains("The data is complete"));
    assert!(html.contains("780"), "the packet count");
}

#[test]
fn hostile_and_malformed_events_are_escaped_counted_and_exit_1() {
    let dir = work_dir("report", "hostile");
    let events = sample_events(&dir);
    let text = std::fs::read_to_string(&events).expect("read the events");
    let flagged_line = text
        .lines()
        .find(|l| l.contains("\"event_type\":\"flow\"") && l.contains("\"internal_only\""))
        .expect("a flagged flow event");
    let evil = flagged_line
        .replace("\"2.2.2#19\"", "\"<script>alert(1)</script>\"")
        .replace(
            "\"flow_id\":",
            "\"evidence\":\"javascript:alert(2)\",\"flow_id\":",
        )
        .replace("10.10.1.11", "10.10.1.111");
    let hostile = dir.join("hostile.jsonl");
    std::fs::write(
        &hostile,
        format!("{evil}\n{{\"event_type\":\"<img src=x onerror=alert(3)>\"\nnot json at all\n"),
    )
    .expect("write");
    let out = dir.join("report.html");
    let o = report(&[&events, &hostile], &out);
    assert_eq!(o.status.code(), Some(1), "bad lines make exit code 1");
    let err = stderr(&o);
    let name = hostile.display().to_string();
    assert!(err.contains(&format!("{name}:2: ")), "{err}");
    assert!(err.contains(&format!("{name}:3: ")), "{err}");
    assert!(err.contains("2 malformed event line(s) skipped"), "{err}");

    let html = std::fs::read_to_string(&out).expect("the report is still written");
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img src=x"));
    assert!(!html.contains("href=\"javascript:"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    assert!(html.contains("2 event line(s) were malformed and skipped"));
    assert_eq!(
        table_rows(&html, "flagged-table"),
        non_documented_flow_events(&events) + 1,
        "the good hostile line is a flow too"
    );
}

#[test]
fn stdin_in_and_stdout_out() {
    let dir = work_dir("report", "stdio");
    let events = sample_events(&dir);
    let input = std::fs::File::open(&events).expect("open the events");
    let o = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["report", "-", "-o", "-", "--title", "Site <A>"])
        .stdin(Stdio::from(input))
        .output()
        .expect("report runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let html = String::from_utf8(o.stdout).expect("UTF-8");
    assert!(html.contains("<h1>Site &lt;A&gt;</h1>"));
    assert!(html.contains("<code>stdin</code>"));
}

#[test]
fn a_missing_events_file_is_named_and_exits_1() {
    let dir = work_dir("report", "missing");
    let out = dir.join("report.html");
    let o = report(&[&dir.join("nope.jsonl")], &out);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope.jsonl"), "{}", stderr(&o));
    // Issue 17: an empty page read as a quiet network; with no events read, none is written.
    assert!(!out.exists(), "no empty report");
}

/// Run chromium with a deadline; a hung browser fails the test instead of CI.
fn chromium(args: &[String], profile: &Path) -> Output {
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let deadline = Duration::from_secs(120);
    let started = Instant::now();
    match rx.recv_timeout(deadline) {
        Ok(out) => out.expect("chromium ran"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("chromium did not finish in {:?}", started.elapsed());
        }
    }
}

/// What the check script, added to a copy of the page, found in the browser.
fn check_attr<'a>(dom: &'a str, name: &str) -> &'a str {
    let key = format!("data-check-{name}=\"");
    let start = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in the dumped DOM (did the script run?)"))
        + key.len();
    let end = dom[start..].find('"').map_or(dom.len(), |e| start + e);
    &dom[start..end]
}

/// Records script errors and the Content-Security-Policy's refusals from the
/// start of the page.
const ERROR_TRAP: &str = "window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message));});window.__csp=[];document.addEventListener('securitypolicyviolation',function(e){window.__csp.push(e.effectiveDirective);});";

/// What an escaping bug would let into the page: an inline script, an event
/// handler and a style attribute. The policy must refuse all three.
const INJECTED: &str = "<script>document.documentElement.setAttribute('data-injected-script','ran');</script>\
<div id=\"injected-handler\" onclick=\"document.documentElement.setAttribute('data-injected-handler','ran')\">x</div>\
<div id=\"injected-style\" style=\"display:none\">x</div>";

/// Runs after the page's own script: counts what was drawn, sorts the flagged
/// table by bytes (two clicks: descending) through the page's handlers, and
/// writes the results as attributes of <body>, which --dump-dom prints.
const CHECK: &str = r#"
(function () {
  var b = document.body;
  function rows(id) { var t = document.getElementById(id); return t ? t.tBodies[0].rows.length : -1; }
  b.setAttribute('data-check-svgs', document.querySelectorAll('svg').length);
  b.setAttribute('data-check-edges', document.querySelectorAll('#diagram-svg path.edge').length);
  b.setAttribute('data-check-marks', document.querySelectorAll('#timeline-svg rect.mark').length);
  b.setAttribute('data-check-flagged', rows('flagged-table'));
  b.setAttribute('data-check-coverage', rows('coverage-table'));
  var box = document.getElementById('diagram-svg').getBoundingClientRect();
  b.setAttribute('data-check-diagram', Math.round(box.width) + 'x' + Math.round(box.height));
  var t = document.getElementById('flagged-table');
  var heads = t.tHead.rows[0].cells, col = -1;
  for (var i = 0; i < heads.length; i++) { if (heads[i].textContent.trim() === 'Bytes') { col = i; } }
  heads[col].click(); heads[col].click();
  var v = Array.prototype.map.call(t.tBodies[0].rows, function (r) { return parseFloat(r.cells[col].getAttribute('data-sort')); });
  var sorted = v.length > 1 && v[0] > v[v.length - 1];
  for (var j = 1; j < v.length; j++) { if (v[j - 1] < v[j]) { sorted = false; } }
  b.setAttribute('data-check-sorted', sorted ? 'descending' : 'no:' + v.join(','));
  b.setAttribute('data-check-aria', heads[col].getAttribute('aria-sort'));
  b.setAttribute('data-check-errors', window.__errors.length ? window.__errors.join(' | ') : 'none');
  document.getElementById('injected-handler').click();
  var root = document.documentElement;
  b.setAttribute('data-check-injected', [
    'script:' + (root.getAttribute('data-injected-script') || 'blocked'),
    'handler:' + (root.getAttribute('data-injected-handler') || 'blocked'),
    'style:' + (getComputedStyle(document.getElementById('injected-style')).display === 'none' ? 'applied' : 'blocked')
  ].join(' '));
  // Refusals are reported as events after the script that caused them.
  setTimeout(function () {
    b.setAttribute('data-check-refused', window.__csp.slice().sort().join(' ') || 'none');
  }, 0);
}());
"#;

#[test]
fn a_real_browser_draws_the_report_and_sorts_its_tables() {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "SKIPPED a_real_browser_draws_the_report_and_sorts_its_tables: {CHROMIUM} is not \
             installed (scripts/setup installs Debian's chromium)"
        );
        return;
    }
    let dir = work_dir("report", "browser");
    let artifacts = artifact_dir();
    let events = sample_events(&dir);
    let page = artifacts.join("report.html");
    let o = report(&[&events], &page);
    assert!(o.status.success(), "report failed: {}", stderr(&o));
    let html = std::fs::read_to_string(&page).expect("read the report");

    // The checks are inline scripts too: the copy's policy allows them by
    // their hashes, as the page's own, and nothing else.
    let csp = policy(&html);
    let allowed = csp.replacen(
        "script-src ",
        &format!(
            "script-src {} {} ",
            sha256_source(ERROR_TRAP),
            sha256_source(CHECK)
        ),
        1,
    );
    let checked = dir.join("report-check.html");
    let with_checks = html
        .replacen(csp, &allowed, 1)
        .replacen(
            "</head>",
            &format!("<script>{ERROR_TRAP}</script></head>"),
            1,
        )
        .replacen(
            "</body>",
            &format!("{INJECTED}<script>{CHECK}</script></body>"),
            1,
        );
    std::fs::write(&checked, with_checks).expect("write the checked copy");
    let dom = chromium(
        &["--dump-dom".into(), format!("file://{}", checked.display())],
        &dir.join("profile-dom"),
    );
    assert!(
        dom.status.success(),
        "chromium --dump-dom failed: {}",
        stderr(&dom)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(check_attr(&dom, "errors"), "none", "script errors");
    assert_eq!(
        check_attr(&dom, "injected"),
        "script:blocked handler:blocked style:blocked",
        "the policy refuses injected script and style"
    );
    // The page itself asks for nothing the policy refuses.
    assert_eq!(
        check_attr(&dom, "refused"),
        "script-src-attr script-src-elem style-src-attr",
        "only the injected three are refused"
    );
    assert_eq!(
        check_attr(&dom, "svgs"),
        "3",
        "the verdict bar, the diagram and the timeline"
    );
    assert_ne!(check_attr(&dom, "edges"), "0");
    assert_eq!(check_attr(&dom, "marks"), "15");
    assert_eq!(check_attr(&dom, "flagged"), "15");
    let rules = PortMatrix::builtin()
        .expect("built-in matrix")
        .rules()
        .len();
    assert_eq!(check_attr(&dom, "coverage"), rules.to_string());
    assert_eq!(check_attr(&dom, "sorted"), "descending");
    assert_eq!(check_attr(&dom, "aria"), "descending");
    let size = check_attr(&dom, "diagram");
    let (w, h) = size.split_once('x').expect("WxH");
    assert!(
        w.parse::<u32>().unwrap_or(0) >= 1000 && h.parse::<u32>().unwrap_or(0) >= 300,
        "the diagram is drawn at {size}"
    );

    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let o = chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000".into(),
            format!("file://{}", page.display()),
        ],
        &dir.join("profile-shot"),
    );
    assert!(
        o.status.success(),
        "chromium --screenshot failed: {}",
        stderr(&o)
    );
    let png = std::fs::read(&shot).expect("the screenshot is written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    assert_eq!((width, height), (1400, 2000));
    assert!(
        png.len() > 50_000,
        "a screenshot with content, not a blank page"
    );
    eprintln!("report screenshot: {}", shot.display());
}
