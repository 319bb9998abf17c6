//! Site files from strangers (garbage, floods of errors, nesting, huge lists,
//! invalid UTF-8, oversized files), and endless inputs (`/dev/zero`, a FIFO
//! fed forever) given as a rules or a site file: both go through one reader
//! (`src/config_file/`), so the endless cases run for both. Each is an error
//! naming the file and line, never a crash, a hang or an unbounded
//! allocation: every run has a deadline and a bound on its address space
//! (`ulimit -v`), so an allocation beyond the bound kills the run and fails
//! the test.

mod common;
use common::{hostile_file as hostile, portmatrix_bounded, Finished};

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Generous for a debug build on a busy machine; a hang takes forever. The
/// release build takes at most 0.2 s on each of these files.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Address space for the runs that list thousands of problems, in KiB.
const ADDRESS_SPACE_KIB: u32 = 1 << 20;

/// Address space for endless and garbage inputs, in KiB: 50 MiB, binary and
/// libraries included (the debug build needs about 30 MiB on them).
const SMALL_KIB: u32 = 50 << 10;

/// The two kinds of file, as `check` commands.
const CHECKS: [(&str, &[&str]); 2] = [
    ("rules", &["rules", "check", "--no-default-rules"]),
    ("site", &["site", "check"]),
];

/// `CHECK… path` with at most `kib` KiB of address space.
fn check(cmd: &[&str], path: &Path, kib: u32) -> Finished {
    let mut args = cmd.to_vec();
    args.push(path.to_str().expect("UTF-8 path"));
    portmatrix_bounded(&args, kib, TIMEOUT)
}

/// The run refused `path` (exit 1) with a problem at `path:line:` saying `says`.
fn says(r: &Finished, path: &Path, line: usize, says: &str) {
    let at = format!("{}:{line}:", path.display());
    assert_eq!(r.code, Some(1), "{at}: {}", r.describe());
    assert!(
        r.stdout
            .lines()
            .chain(r.stderr.lines())
            .any(|l| l.trim_start().starts_with(&at) && l.contains(says)),
        "expected `{at} … {says}` in:\n{}{}",
        r.stdout.chars().take(2000).collect::<String>(),
        r.stderr
    );
}

/// `site check` refuses the file with a problem at `file:line:` saying `says`.
fn refused(path: &Path, line: usize, text: &str) -> Finished {
    let r = check(&["site", "check"], path, ADDRESS_SPACE_KIB);
    says(&r, path, line, text);
    r
}

/// A FIFO at `name` with a writer that feeds it `=` lines until the reader
/// goes away (the write then fails with a broken pipe and the writer ends).
fn endless_fifo(name: &str) -> PathBuf {
    let path = hostile(name, "");
    std::fs::remove_file(&path).expect("remove the placeholder");
    let made = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {}", path.display());
    let writer = path.clone();
    std::thread::spawn(move || {
        let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&writer) else {
            return;
        };
        let chunk = "=\n".repeat(32 << 10);
        while fifo.write_all(chunk.as_bytes()).is_ok() {}
    });
    path
}

#[test]
fn endless_inputs_stop_at_the_size_limit() {
    for (kind, cmd) in CHECKS {
        let limited =
            format!("file is more than 4194304 bytes; {kind} files are limited to 4194304 bytes");
        let zero = Path::new("/dev/zero");
        says(&check(cmd, zero, SMALL_KIB), zero, 1, &limited);
        let fifo = endless_fifo(&format!("endless-{kind}.fifo"));
        says(&check(cmd, &fifo, SMALL_KIB), &fifo, 1, &limited);
    }
    // The same for the other commands that read them.
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample-contact-center.pcapng");
    let sample = sample.to_str().expect("UTF-8 path");
    for (flag, kind) in [("--rules", "rules"), ("--site", "site")] {
        let r = portmatrix_bounded(
            &["analyze", "-q", flag, "/dev/zero", sample],
            SMALL_KIB,
            TIMEOUT,
        );
        assert_eq!(r.code, Some(1), "{}", r.describe());
        assert!(
            r.stderr.contains(&format!(
                "/dev/zero:1:1: file is more than 4194304 bytes; {kind} files are limited"
            )),
            "{}",
            r.describe()
        );
    }
}

#[test]
fn garbage_ends_promptly_with_its_syntax_errors() {
    // 128 KiB of `=` lines: the first syntax error, at once, for both kinds.
    let garbage = hostile("garbage-128k.toml", "=\n".repeat(64 << 10));
    for (_, cmd) in CHECKS {
        let r = check(cmd, &garbage, SMALL_KIB);
        says(&r, &garbage, 1, "invalid TOML");
        assert!(
            !r.stdout.contains(&format!("{}:2:", garbage.display())),
            "only the first syntax error of a file over 64 KiB:\n{}",
            r.stdout
        );
    }
    // Under 64 KiB every syntax error is found; 100 are listed.
    let garbage = hostile(
        "garbage-60k.toml",
        format!("schema = 1\n{}", "=\n".repeat(30_000)),
    );
    let r = refused(&garbage, 2, "invalid TOML");
    assert!(
        r.stdout.starts_with("101 errors in the site file:"),
        "{}",
        r.stdout
    );
    // Each `=` line holds three (an empty key, no value, the key again).
    assert!(
        r.stdout.contains(":35:1: 89899 more errors not listed"),
        "{}",
        r.stdout
    );
}

#[test]
fn floods_of_problems_are_counted_not_listed() {
    let mut text = String::from("schema = 1\n");
    for i in 0..20_000 {
        let _ = writeln!(text, "[[exception]]\nverdict = \"bogus{i}\"\nwhy = \"x\"");
    }
    let path = hostile("many-exceptions.toml", text);
    let r = refused(&path, 3, "unknown verdict `bogus0`");
    // The 100th problem is at its own line: each is placed, none is shifted.
    says(&r, &path, 3 + 3 * 99, "unknown verdict `bogus99`");
    assert!(
        r.stdout.contains("19900 more errors not listed"),
        "{}",
        r.stdout
    );
    // Unknown keys: one per table.
    let mut text = String::from("schema = 1\n");
    for i in 0..200_000 {
        let _ = writeln!(text, "[t{i}]");
    }
    let path = hostile("many-tables-site.toml", text);
    let r = refused(
        &path,
        2,
        "unknown top-level key `t0`; allowed: schema, systems, system, severity, exception",
    );
    assert!(
        r.stdout.contains("199900 more errors not listed"),
        "{}",
        r.stdout
    );
}

#[test]
fn nesting_huge_lists_and_too_many_addresses_stop_at_the_limits() {
    let depth = 1_000_000;
    let nested = format!(
        "schema = 1\n[systems]\nccma = {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    refused(&hostile("nested-site.toml", nested), 3, "invalid TOML");

    let list: Vec<String> = (0..5000)
        .map(|i| format!("\"10.1.{}.{}\"", i / 250, i % 250))
        .collect();
    let text = format!("schema = 1\n[systems]\nccma = [{}]\n", list.join(","));
    refused(
        &hostile("huge-list.toml", text),
        3,
        "at most 4096 entries per list",
    );

    // 30 systems of 4,000 addresses each: beyond 100,000 in all.
    let mut text = String::from("schema = 1\n");
    for s in 0..30 {
        let list: Vec<String> = (0..4000)
            .map(|i| format!("\"10.{s}.{}.{}\"", i / 250, i % 250))
            .collect();
        let _ = writeln!(
            text,
            "[[system]]\nname = \"agent_desktop\"\naddresses = [{}]",
            list.join(",")
        );
    }
    refused(
        &hostile("many-addresses.toml", text),
        2,
        "at most 100000 addresses and 10000 exceptions per site file",
    );
}

#[test]
fn invalid_utf8_and_oversized_site_files_are_refused_before_parsing() {
    let bytes = b"schema = 1\n[systems]\nccma = [\"\xff\"]\n".to_vec();
    refused(
        &hostile("latin1-site.toml", bytes),
        3,
        "not UTF-8 text (bad byte at offset 30); save the file as UTF-8",
    );
    let big = format!("schema = 1\n{}", "# padding\n".repeat(524_300));
    refused(
        &hostile("five-mib-site.toml", big),
        1,
        "file is 5243011 bytes; site files are limited to 4194304 bytes",
    );
}
