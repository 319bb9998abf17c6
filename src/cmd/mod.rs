//! One module per subcommand: wiring library pieces to the terminal.

pub mod analyze;
pub mod diff;
pub mod exit;
pub mod generate;
mod kafka_out;
pub mod live;
pub mod live_config;
mod live_sensor;
pub mod policy;
mod privileges;
pub mod report;
pub mod rules;
pub mod signals;
pub mod site;

use std::io::{self, Write};
use std::path::Path;

use portmatrix::filter::VerdictSet;
use portmatrix::output::Stats;

pub use exit::Exit;

/// The events, the report or a listing could not be written where the user
/// asked; `main` exits with [`Exit::OutputFailed`]. A closed pipe is not one
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

/// An error and its causes as one line, `what: why: deeper cause`, where a
/// cause the text before already quotes is left out: many messages name
/// their source themselves ("cannot read rules file x: No such file or
/// directory (os error 2)"), and printing the chain after them said it twice.
pub struct Chain<'a>(pub &'a anyhow::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        for cause in self.0.chain() {
            let message = cause.to_string();
            if text.contains(&message) {
                continue;
            }
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        f.write_str(&text)
    }
}

/// `portmatrix … | head` closes our stdout early: that is a normal end, not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The compliance gate: [`Exit::GateFailed`] when any flow counted has a
/// verdict of `fail_on` (all flows count, whatever `--verdict` reports), else success.
pub fn gate(stats: &Stats, fail_on: VerdictSet) -> Exit {
    let hit = fail_on.iter().any(|v| {
        stats
            .flows_per_verdict
            .get(v.as_str())
            .is_some_and(|&n| n > 0)
    });
    if hit {
        Exit::GateFailed
    } else {
        Exit::Success
    }
}

/// The sensor's name in EVE events: `--sensor-name`, else the host name
/// (as Suricata's `host` defaults to it), else `portmatrix`.
pub fn sensor_name(given: Option<&str>) -> String {
    given.map(str::to_owned).unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "portmatrix".to_owned())
    })
}
