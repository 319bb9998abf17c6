//! Text from hostile rules and site files, where people read it: on a
//! terminal (`rules list`, `rules explain`, `rules check`, `site check`,
//! text alerts, the summary and warnings on stderr) control characters and
//! bidi overrides are shown as escapes, never sent raw; in a spreadsheet
//! (`--format csv`) no cell starts a formula. The events (`--json`) keep the
//! text exactly, JSON-escaped.

mod common;
use common::{portmatrix, stderr, work_dir};

use std::path::{Path, PathBuf};

/// Ids and texts made to take over a terminal or a spreadsheet. The first
/// rule matches the sample capture's flows to 8100; the second sees nothing
/// (so the summary names it), the third and fourth start like formulas.
const EVIL_RULES: &str = r#"schema = 1

[[rule]]
id = "=HYPERLINK(\"http://x\")\u001b]0;pwned\u0007"
description = "clears the screen \u001b[2J\u009b2J"
source = "agent\u202egnp.exe"
destination = "AACC\u001b[31m"
listen_ports = [8100]
transports = ["tcp"]
internal_only = true
note = "bell\u0007"

[[rule]]
id = "\u001b[31mred"
listen_ports = [7]
transports = ["udp"]

[[rule]]
id = "-1+1"
listen_ports = [1972]
transports = ["tcp"]
internal_only = true

[[rule]]
id = "@SUM(1)"
listen_ports = [1972]
transports = ["tcp"]
internal_only = true
"#;

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sample-contact-center.pcapng")
        .display()
        .to_string()
}

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Characters a terminal acts on rather than shows (line ends aside).
fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect()
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn terminals_get_escapes_not_control_characters() {
    let dir = work_dir("hostile-text", "terminal");
    let rules = file(&dir, "evil.toml", EVIL_RULES);
    let rules = rules.to_str().expect("UTF-8 path");
    let with = ["--no-default-rules", "--rules", rules];

    let list = portmatrix(&[&["rules", "list"][..], &with].concat());
    assert!(list.status.success(), "{}", stderr(&list));
    let text = out(&list);
    assert_eq!(raw_controls(&text), [], "{text}");
    assert!(
        text.contains(r#"=HYPERLINK("http://x")\u{1b}]0;pwned\u{7} tcp"#),
        "{text}"
    );
    assert!(
        text.contains(r"agent\u{202e}gnp.exe -> AACC\u{1b}[31m"),
        "{text}"
    );

    let explain = portmatrix(&[&["rules", "explain", "tcp/8100"][..], &with].concat());
    let text = out(&explain);
    assert_eq!(raw_controls(&text), [], "{text}");
    assert!(
        text.contains(r#""clears the screen \u{1b}[2J\u{9b}2J""#),
        "{text}"
    );
    assert!(text.contains(r"note: bell\u{7}"), "{text}");

    let analyze = portmatrix(&[&["analyze", "--format", "text"][..], &with, &[&sample()]].concat());
    let (text, summary) = (out(&analyze), stderr(&analyze));
    assert_eq!(raw_controls(&text), [], "{text}");
    assert_eq!(raw_controls(&summary), [], "{summary}");
    assert!(
        text.contains(
            r#"-> 10.10.1.10:8100 rules =HYPERLINK("http://x")\u{1b}]0;pwned\u{7} (handshake)"#
        ),
        "{text}"
    );
    assert!(summary.contains(r"never seen: \u{1b}[31mred"), "{summary}");

    // Errors quote the file: a key made of escape sequences.
    let bad = file(&dir, "bad.toml", "schema = 1\n\"\\u001b[2J\" = 1\n");
    let bad = bad.to_str().expect("UTF-8 path");
    let check = portmatrix(&["rules", "check", "--no-default-rules", bad]);
    let text = out(&check);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(raw_controls(&text), [], "{text}");
    assert!(
        text.contains(r"unknown top-level key `\u{1b}[2J`"),
        "{text}"
    );
    let check = portmatrix(&["site", "check", bad]);
    let text = out(&check);
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(raw_controls(&text), [], "{text}");
    assert!(
        text.contains(r"unknown top-level key `\u{1b}[2J`"),
        "{text}"
    );

    // A site exception that expired is named on stderr when a run starts.
    let site = file(
        &dir,
        "site.toml",
        "schema = 1\n[[exception]]\nid = \"\\u001b]0;x\\u0007\"\nports = [1]\nuntil = 2000-01-01\nwhy = \"\\u001b[2J\"\n",
    );
    let analyze = portmatrix(&[
        "analyze",
        "--site",
        site.to_str().expect("UTF-8 path"),
        &sample(),
    ]);
    let summary = stderr(&analyze);
    assert_eq!(raw_controls(&summary), [], "{summary}");
    assert!(
        summary.contains(r"exception `\u{1b}]0;x\u{7}` (\u{1b}[2J) expired on 2000-01-01"),
        "{summary}"
    );
}

/// The cells of one CSV row (RFC 4180: quoted cells, quotes doubled).
fn cells(row: &str) -> Vec<String> {
    let (mut cells, mut cell, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, row.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

#[test]
fn spreadsheets_get_no_formulas_and_the_events_the_exact_ids() {
    let dir = work_dir("hostile-text", "csv");
    let rules = file(&dir, "evil.toml", EVIL_RULES);
    let rules = rules.to_str().expect("UTF-8 path");
    let with = ["--no-default-rules", "--rules", rules];
    let csv = portmatrix(&[&["analyze", "--format", "csv"][..], &with, &[&sample()]].concat());
    let text = out(&csv);
    let mut rows = text.split("\r\n");
    let header = cells(rows.next().expect("header"));
    let col = header
        .iter()
        .position(|h| h == "rule_ids")
        .expect("rule_ids column");
    let ids: Vec<String> = rows
        .filter(|r| !r.is_empty())
        .map(|r| cells(r)[col].clone())
        .collect();
    assert!(
        ids.contains(&"'=HYPERLINK(\"http://x\")\u{1b}]0;pwned\u{7}".to_string()),
        "{ids:?}"
    );
    // A value that starts with '-' or '@' is marked the same way.
    assert!(ids.contains(&"'-1+1 @SUM(1)".to_string()), "{ids:?}");
    for id in &ids {
        assert!(
            !id.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "a cell a spreadsheet would run: {id:?}"
        );
    }

    // The events keep the ids as the rules file has them.
    let json = portmatrix(&[&["analyze", "--json"][..], &with, &[&sample()]].concat());
    let ids: Vec<String> = out(&json)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["rule_ids"].as_array().cloned())
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert!(
        ids.contains(&"=HYPERLINK(\"http://x\")\u{1b}]0;pwned\u{7}".to_string()),
        "{ids:?}"
    );
    assert!(ids.contains(&"-1+1".to_string()), "{ids:?}");
}
