//! The progress bar and the alerts on one terminal: under a pseudo-terminal
//! (`script` from util-linux), what the screen shows at the end has every
//! alert on a line of its own, with no piece of a bar in it, then the
//! summary; `--no-progress` draws no bar and keeps the summary.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::lab::have_tool;

/// A capture long enough (about 40 MB) for the bar to be drawn many times
/// while alerts are printed.
fn capture(dir: &Path) -> PathBuf {
    let out = dir.join("traffic.pcap");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
    let o = Command::new("python3")
        .arg(script)
        .arg("-o")
        .arg(&out)
        .args(["--packets", "100000", "--seed", "7"])
        .output()
        .expect("python3 runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// What a terminal shows for `bytes`: `\r` returns to the line's start,
/// `ESC[2K` clears the line, other escape sequences change nothing here,
/// `\n` ends the line; text overwrites what is under the cursor.
fn screen(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    let mut line: Vec<char> = Vec::new();
    let mut col = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                lines.push(line.iter().collect::<String>().trim_end().to_owned());
                line.clear();
                col = 0;
            }
            '\r' => col = 0,
            '\x1b' => {
                let mut seq = String::new();
                if chars.peek() == Some(&'[') {
                    chars.next();
                    while let Some(&n) = chars.peek() {
                        chars.next();
                        seq.push(n);
                        if n.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                if seq == "2K" {
                    line.clear();
                }
            }
            _ => {
                if col < line.len() {
                    line[col] = c;
                } else {
                    line.resize(col, ' ');
                    line.push(c);
                }
                col += 1;
            }
        }
    }
    lines.push(line.iter().collect::<String>().trim_end().to_owned());
    lines
}

/// Runs `portmatrix analyze ARGS CAPTURE` on a pseudo-terminal (stdout and
/// stderr both on it) and returns the screen.
fn on_a_terminal(dir: &Path, args: &str, capture: &Path) -> Vec<String> {
    let typescript = dir.join("typescript");
    let command = format!(
        "{} analyze --workers 2 {args} {}",
        env!("CARGO_BIN_EXE_portmatrix"),
        capture.display()
    );
    let o = Command::new("script")
        .args(["-qfec", &command])
        .arg(&typescript)
        .env("COLUMNS", "200")
        .output()
        .expect("script runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&typescript).expect("typescript");
    // Leave out script's own first line ("Script started on …").
    screen(&bytes).into_iter().skip(1).collect()
}

#[test]
fn alerts_and_the_bar_share_a_terminal_without_mixing() {
    const TEST: &str = "alerts_and_the_bar_share_a_terminal_without_mixing";
    if !have_tool(TEST, "script") || !have_tool(TEST, "python3") {
        return;
    }
    // Outside the repository, as gen-traffic asks of large captures.
    let dir = std::env::temp_dir().join(format!("portmatrix-progress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let capture = capture(&dir);

    let shown = on_a_terminal(&dir, "", &capture);
    let raw = std::fs::read_to_string(dir.join("typescript")).unwrap_or_default();
    assert!(raw.contains("MiB ["), "the bar was drawn at all");
    let alerts: Vec<&String> = shown.iter().filter(|l| l.contains(" alert ")).collect();
    assert!(alerts.len() > 100, "{} alerts", alerts.len());
    for line in &shown {
        if line.starts_with("portmatrix:")
            || line.starts_with("  ")
            || line.starts_with("Script done")
            || line.is_empty()
        {
            continue;
        }
        assert!(
            line.starts_with("20") && line.contains(" alert") && !line.contains("MiB"),
            "a line of the screen is not a whole alert: {line:?}"
        );
    }
    assert!(
        shown.iter().any(|l| l.contains("TCP/UDP flows in")),
        "the summary: {shown:?}"
    );

    let shown = on_a_terminal(&dir, "--no-progress", &capture);
    let raw = std::fs::read_to_string(dir.join("typescript")).unwrap_or_default();
    assert!(!raw.contains("MiB ["), "no bar with --no-progress");
    assert!(
        shown.iter().any(|l| l.contains("TCP/UDP flows in"))
            && shown.iter().any(|l| l.contains("flows per verdict:")),
        "--no-progress keeps the summary: {shown:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
