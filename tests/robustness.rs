//! Output that cannot be written. A full disk (`/dev/full`) is an error that
//! names the output and exits 4, since the results are incomplete; a closed
//! pipe (`| head`) is a normal end, quiet, exit 0. Neither may hang or panic,
//! whichever command writes: analyze, rules list / explain / check, report,
//! live.

mod common;
use common::temp::TempDir;
use common::{run_bounded, Finished};

use std::fs::File;
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use portmatrix::classify::Classifier;
use portmatrix::matrix::{PortMatrix, Product};
use portmatrix::output::{EventWriter, Format};
use portmatrix::pipeline::{run_offline, AnalyzeConfig, FlowSettings};

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");

/// No run here needs more than a few seconds; beyond this it hangs.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The exit code for output that could not be written (docs/guarantees.md, "Exit codes").
const EXIT_OUTPUT_FAILED: i32 = 4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn dev_full() -> Stdio {
    File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

/// A pipe whose reading end is already closed: every write gets EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = io::pipe().expect("pipe");
    drop(reader);
    writer.into()
}

fn portmatrix(args: &[&str], stdout: Stdio) -> Finished {
    run_bounded(
        Command::new(BIN)
            .args(args)
            .stdout(stdout)
            .stderr(Stdio::piped()),
        TIMEOUT,
    )
}

/// An events file of the sample capture, for `report`, in the test's own
/// folder: tests run in parallel and each removes its own when it ends.
fn events_file(dir: &TempDir) -> PathBuf {
    let path = dir.0.join("events.jsonl");
    let sample = fixture("sample-contact-center.pcapng");
    let out = File::create(&path).expect("events file");
    let r = portmatrix(
        &["analyze", "--json", "--flows", "-q", path_str(&sample)],
        out.into(),
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    path
}

/// Every command that writes its result to stdout, with arguments that make it write.
fn stdout_commands(events: &Path) -> Vec<Vec<String>> {
    let sample = fixture("sample-contact-center.pcapng");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/avaya-aacc-7.1.2.toml");
    let lists: &[&[&str]] = &[
        &["analyze", "--json", "--flows", "-q", path_str(&sample)],
        &["analyze", "--flows", "-q", path_str(&sample)],
        &["rules", "list"],
        &["rules", "list", "--json"],
        &["rules", "explain", "tcp/1972"],
        &["rules", "explain", "--json", "udp/5060"],
        &["rules", "check", "--no-default-rules", path_str(&rules)],
        &["report", path_str(events), "-o", "-"],
    ];
    lists
        .iter()
        .map(|l| l.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn no_panic(r: &Finished, what: &str) {
    assert!(
        r.signal.is_none() && !r.timed_out && !r.stderr.contains("panicked"),
        "{what}: {}",
        r.describe()
    );
}

#[test]
fn a_full_disk_on_stdout_is_an_error_naming_it() {
    let dir = TempDir::new("robust", "full-disk");
    let events = events_file(&dir);
    for args in stdout_commands(&events) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = args.join(" ");
        let r = portmatrix(&args, dev_full());
        no_panic(&r, &what);
        assert_eq!(r.code, Some(EXIT_OUTPUT_FAILED), "{what}: {}", r.describe());
        assert!(
            r.stderr
                .contains("to stdout (/dev/full): No space left on device"),
            "{what}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_closed_pipe_is_a_quiet_end() {
    let dir = TempDir::new("robust", "closed-pipe");
    let events = events_file(&dir);
    for args in stdout_commands(&events) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = args.join(" ");
        let r = portmatrix(&args, closed_pipe());
        no_panic(&r, &what);
        assert_eq!(r.code, Some(0), "{what}: {}", r.describe());
        assert!(!r.stderr.contains("Broken pipe"), "{what}: {}", r.stderr);
    }
}

#[test]
fn a_report_file_that_cannot_be_written_is_an_error_naming_it() {
    let dir = TempDir::new("robust", "report-file");
    let events = events_file(&dir);
    for (target, says) in [
        (
            "/dev/full",
            "cannot write the report to /dev/full: No space left on device",
        ),
        (
            "/nonexistent/report.html",
            "cannot write the report to /nonexistent/report.html: No such file or directory",
        ),
    ] {
        let r = portmatrix(&["report", path_str(&events), "-o", target], Stdio::null());
        no_panic(&r, target);
        assert_eq!(
            r.code,
            Some(EXIT_OUTPUT_FAILED),
            "{target}: {}",
            r.describe()
        );
        assert!(r.stderr.contains(says), "{target}: {}", r.stderr);
    }
}

/// Accepts `fail_after` bytes, then fails every write and flush with `kind`.
struct Failing {
    fail_after: usize,
    written: usize,
    kind: io::ErrorKind,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written >= self.fail_after {
            return Err(self.kind.into());
        }
        let n = buf.len().min(self.fail_after - self.written);
        self.written += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.written >= self.fail_after {
            return Err(self.kind.into());
        }
        Ok(())
    }
}

/// The writer thread that `analyze` and `live` share keeps the first write
/// error for the command to judge, and stops the run instead of hanging.
#[test]
fn the_writer_keeps_the_first_error_and_stops_the_run() {
    let matrix = Arc::new(PortMatrix::builtin().expect("built-in matrix"));
    let classifier = Arc::new(Classifier::new(matrix, Product::Aacc));
    for kind in [io::ErrorKind::StorageFull, io::ErrorKind::BrokenPipe] {
        for fail_after in [0, 700, 5000] {
            let config = AnalyzeConfig::new(
                vec![
                    fixture("sample-contact-center.pcapng"),
                    fixture("tunnels.pcap"),
                ],
                FlowSettings {
                    workers: NonZeroUsize::new(2).expect("two"),
                    max_flows: 1000,
                    ..FlowSettings::default()
                },
            );
            let out = Failing {
                fail_after,
                written: 0,
                kind,
            };
            let writer = EventWriter::new(out, Format::Json, true, Arc::clone(&classifier));
            let (outcome, mut writer) =
                run_offline(&config, Arc::clone(&classifier), writer, None).expect("inputs listed");
            assert!(outcome.output_closed, "{kind:?} after {fail_after}");
            let error = writer.take_error().expect("the error is kept");
            assert_eq!(error.kind(), kind);
            assert!(writer.take_error().is_none(), "taken once");
        }
    }
}

/// `live` shares that writer; what the command makes of its error needs a
/// real capture. On the loopback interface, stats events every 100 ms are
/// enough to fill /dev/full: no traffic, no namespace, just root.
#[test]
fn live_events_to_a_full_disk_end_the_capture_with_an_error() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "live capture needs root"
        );
        eprintln!("SKIPPED live_events_to_a_full_disk_end_the_capture_with_an_error: needs root");
        return;
    }
    let live = [
        "live",
        "-i",
        "lo",
        "--json",
        "--stats-interval",
        "100ms",
        "-q",
    ];
    let to_file = [&live[..], &["-o", "/dev/full"]].concat();
    for (args, stdout, says) in [
        (
            &to_file[..],
            Stdio::null(),
            "cannot write the events to /dev/full",
        ),
        (
            &live[..],
            dev_full(),
            "cannot write the events to stdout (/dev/full)",
        ),
    ] {
        let r = portmatrix(args, stdout);
        no_panic(&r, says);
        assert_eq!(r.code, Some(EXIT_OUTPUT_FAILED), "{says}: {}", r.describe());
        assert!(r.stderr.contains(says), "{}", r.stderr);
    }
    let r = portmatrix(&live, closed_pipe());
    no_panic(&r, "closed pipe");
    assert_eq!(r.code, Some(0), "closed pipe: {}", r.describe());
}

/// Diagnostics that cannot be written (`2>/dev/full`) are lost, never a
/// panic (exit code 101): the exit code still says what happened.
#[test]
fn a_full_stderr_loses_diagnostics_and_keeps_the_exit_code() {
    let missing = "/nonexistent/portmatrix-events.jsonl";
    let cases: &[(&[&str], i32)] = &[
        (&["report", missing, "-o", "-"], 1),
        (&["analyze", "--json", "-q", missing], 1),
        (&["site", "suggest", missing], 1),
        (&["rules", "check", "--no-default-rules", missing], 1),
    ];
    for (args, code) in cases {
        let r = run_bounded(
            Command::new(BIN)
                .args(*args)
                .stdout(Stdio::null())
                .stderr(dev_full()),
            TIMEOUT,
        );
        assert!(
            r.signal.is_none() && !r.timed_out,
            "{args:?}: {}",
            r.describe()
        );
        assert_eq!(r.code, Some(*code), "{args:?}: {}", r.describe());
    }
}
