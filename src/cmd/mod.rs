//! One module per subcommand: wiring library pieces to the terminal.

pub mod analyze;
pub mod live;
mod privileges;
pub mod report;
pub mod rules;
pub mod site;

use std::process::ExitCode;

use portmatrix::filter::VerdictSet;
use portmatrix::output::Stats;

/// Exit code for wrong usage (as clap's own).
pub const USAGE: u8 = 2;
/// Exit code when a flow had a `--fail-on` verdict (and nothing failed).
pub const GATE_FAILED: u8 = 3;

use std::io::{self, Write};
use std::path::Path;

/// Exit code when the output (stdout, `-o FILE`) could not be written: the
/// results are incomplete, unlike exit 1, where everything that could be
/// read was reported.
pub const EXIT_OUTPUT_FAILED: u8 = 4;

/// The events, the report or a listing could not be written where the user
/// asked; `main` exits with [`EXIT_OUTPUT_FAILED`]. A closed pipe is not one
/// (see [`is_broken_pipe`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {what} to {target}: {source}{}", hint(source.kind()))]
pub struct OutputError {
    what: &'static str,
    target: String,
    #[source]
    source: io::Error,
}

impl OutputError {
    pub fn new(what: &'static str, target: &Path, source: io::Error) -> OutputError {
        OutputError {
            what,
            target: target.display().to_string(),
            source,
        }
    }

    /// Writing `what` to standard output failed.
    pub fn stdout(what: &'static str, source: io::Error) -> OutputError {
        OutputError {
            what,
            target: stdout_name(),
            source,
        }
    }
}

/// What the user can do about a failed write.
fn hint(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; free some space, or write elsewhere, and run again"
        }
        io::ErrorKind::NotFound => "; check that the folder exists",
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "; check that the place is writable"
        }
        _ => "",
    }
}

/// `stdout`, with the file it goes to when it is one: `stdout (/dev/full)`.
fn stdout_name() -> String {
    match std::fs::read_link("/proc/self/fd/1") {
        Ok(target) if target.is_absolute() => format!("stdout ({})", target.display()),
        _ => "stdout".into(),
    }
}

/// Runs `body` on a buffered standard output and flushes it: a failure is an
/// [`OutputError`] about `what`.
pub fn write_stdout(
    what: &'static str,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), OutputError> {
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    body(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| OutputError::stdout(what, e))
}

/// `portmatrix … | head` closes our stdout early: that is a normal end, not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The compliance gate: [`GATE_FAILED`] when any flow counted has a verdict
/// of `fail_on` (all flows count, whatever `--verdict` reports), else success.
pub fn gate(stats: &Stats, fail_on: VerdictSet) -> ExitCode {
    let hit = fail_on.iter().any(|v| {
        stats
            .flows_per_verdict
            .get(v.as_str())
            .is_some_and(|&n| n > 0)
    });
    if hit {
        ExitCode::from(GATE_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
