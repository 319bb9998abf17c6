//! One module per subcommand: wiring library pieces to the terminal.

pub mod analyze;
pub mod live;
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
