//! Helpers of the signal tests (tests/live_signals.rs, tests/analyze_signals.rs).

use std::io::{PipeReader, PipeWriter, Read};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Send `signal` to process `pid` (no `kill` process in between: two
/// signals can go 1 ms apart).
pub fn send(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).expect("pid"));
    kill(pid, signal).expect("send the signal");
}

/// A pipe of one page: a few events fill it, and while nobody reads it the
/// writer is stuck, as on a hung output.
pub fn stuck_pipe() -> (PipeReader, PipeWriter) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    fcntl(&writer, FcntlArg::F_SETPIPE_SZ(4096)).expect("shrink the pipe");
    (reader, writer)
}

/// What came out of `reader`, once the process has ended: its whole lines.
pub fn whole_lines(mut reader: PipeReader) -> Vec<Value> {
    let mut text = String::new();
    reader.read_to_string(&mut text).expect("read the pipe");
    text.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// Whitespace collapsed and backticks dropped: the help wraps, the guide quotes.
pub fn plain(text: &str) -> String {
    text.replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `COMMAND --help` and the guide (docs/guide.md) both say every one of
/// `sentences` (whitespace and backticks aside).
pub fn assert_documented(command: &str, sentences: &[&str]) {
    let readme = plain(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md"))
            .expect("docs/guide.md"),
    );
    let help = super::portmatrix(&[command, "--help"]);
    let help = plain(&String::from_utf8_lossy(&help.stdout));
    for sentence in sentences {
        assert!(
            help.contains(sentence),
            "`{command} --help` lacks: {sentence}"
        );
        assert!(readme.contains(sentence), "docs/guide.md lacks: {sentence}");
    }
}
