//! `portmatrix analyze`: capture files -> events on stdout, summary on stderr.

use std::io::{self, BufWriter};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use portmatrix::classify::Classifier;
use portmatrix::matrix::PortMatrix;
use portmatrix::output::write_summary;
use portmatrix::pipeline::{run_offline, AnalyzeConfig};

use super::OutputError;
use crate::cli::AnalyzeArgs;

pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    let matrix = Arc::new(PortMatrix::load(&args.matrix.sources())?);
    let classifier = Arc::new(Classifier::new(matrix, args.matrix.profile));
    let config = AnalyzeConfig {
        inputs: args.captures,
        flow: args.flow.settings(),
        format: args.events.format(),
        flows: args.events.flows,
        progress: !args.quiet,
    };
    let stdout = BufWriter::with_capacity(1 << 16, io::stdout());
    let (outcome, mut writer) = run_offline(&config, Arc::clone(&classifier), stdout)?;
    let written = match writer.take_error() {
        Some(e) => Err(e),
        None => writer
            .stats(outcome.last_ts, &outcome.stats)
            .and_then(|()| writer.flush()),
    };
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(OutputError::stdout("the events", e).into());
    }
    if !args.quiet {
        // Diagnostics: when stderr cannot take them, the events and the exit
        // code still tell the outcome.
        let _ = write_summary(
            &mut io::stderr().lock(),
            &outcome.stats,
            writer.summary(),
            &classifier,
            outcome.elapsed,
        );
    }
    Ok(if outcome.input_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
