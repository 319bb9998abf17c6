//! Helpers shared by the integration tests (each test crate uses a part).
#![allow(dead_code)]

pub mod broker;
pub mod eve;
pub mod generated;
pub mod lab;
pub mod signals;
pub mod temp;

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A tab-separated file with a header row (the corpus's MANIFEST and EXPECTED),
/// as one map per row; blank lines and `#` comments are skipped.
pub fn read_tsv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// `rel` in the shared folder beside the repository (`../shared`: the
/// capture corpus, the schemas), read-only.
pub fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(rel)
}

/// How a command run by [`run_bounded`] ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code; `None` when it was killed (by us after the timeout, or
    /// by a signal: see `signal`).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    /// A one-line account for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}, signal {:?}, timed out {}, after {:?}; stderr: {}",
            self.code,
            self.signal,
            self.timed_out,
            self.elapsed,
            self.stderr.trim()
        )
    }
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        // A read error leaves what was read so far; the checks then fail on it.
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// `portmatrix ARGS` (the binary under test), stdout and stderr captured,
/// as [`run_bounded`] runs it.
pub fn portmatrix_within<S: AsRef<std::ffi::OsStr>>(args: &[S], timeout: Duration) -> Finished {
    run_bounded(
        Command::new(env!("CARGO_BIN_EXE_portmatrix"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        timeout,
    )
}

/// Runs `cmd` with stdin closed, killing it after `timeout`; what it
/// writes to a piped stdout or stderr is collected.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Finished {
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    finish_bounded(child, started, timeout)
}

/// Waits for `child`, started at `started`, as [`run_bounded`] does: killed
/// once `timeout` has passed since it started, its piped output collected.
pub fn finish_bounded(mut child: Child, started: Instant, timeout: Duration) -> Finished {
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let deadline = started + timeout;
    let (status, timed_out) = loop {
        match child.try_wait().expect("wait for the child") {
            Some(status) => break (status, false),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                break (child.wait().expect("wait for the killed child"), true);
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    let text = |h: Option<thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| String::from_utf8_lossy(&h.join().expect("pipe reader")).into_owned())
            .unwrap_or_default()
    };
    Finished {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout: text(out),
        stderr: text(err),
        elapsed: started.elapsed(),
    }
}

/// Run the built `portmatrix` with `args`, whatever its exit status.
pub fn portmatrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(args)
        .output()
        .expect("portmatrix runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh folder for one test's files: `<tmp>/<prefix>-<name>`.
pub fn work_dir(prefix: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{prefix}-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test folder");
    dir
}

/// Writes `bytes` as `name` in this test run's folder for hostile files.
pub fn hostile_file(name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portmatrix-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the hostile file");
    path
}

/// `portmatrix ARGS` with at most `kib` KiB of address space (`ulimit -v`:
/// an allocation beyond it kills the run) and a deadline. Fails the test if
/// it crashed, panicked or ran out of time.
pub fn portmatrix_bounded(args: &[&str], kib: u32, timeout: Duration) -> Finished {
    let script = format!("ulimit -v {kib} && exec \"$0\" \"$@\"");
    let r = run_bounded(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_portmatrix"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        timeout,
    );
    assert!(
        r.signal.is_none() && !r.timed_out && !r.stderr.contains("panicked"),
        "{args:?}: {}",
        r.describe()
    );
    r
}
