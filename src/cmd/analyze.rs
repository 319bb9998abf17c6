//! `portmatrix analyze`: capture files -> events on stdout, summary on stderr.

use std::io::{self, BufWriter};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;

use portmatrix::output::write_summary;
use portmatrix::pipeline::{run_offline, AnalyzeConfig};

use crate::cli::AnalyzeArgs;

pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    let classifier = super::site::classifier(&args.matrix, &args.site, args.quiet)?;
    let config = AnalyzeConfig {
        inputs: args.captures,
        flow: args.flow.settings(),
        format: args.events.format(),
        flows: args.events.flows,
        progress: !args.quiet,
        alert_burst: args.events.alert_burst as usize,
    };
    let stdout = BufWriter::with_capacity(1 << 16, io::stdout());
    let (outcome, mut writer) = run_offline(&config, Arc::clone(&classifier), stdout)?;
    if outcome.output_closed {
        return Ok(ExitCode::SUCCESS);
    }
    let written = writer
        .stats(outcome.last_ts, &outcome.stats)
        .and_then(|()| writer.flush());
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            return Ok(ExitCode::SUCCESS);
        }
        return Err(anyhow::Error::new(e).context("cannot write the events to stdout"));
    }
    if !args.quiet {
        write_summary(
            &mut io::stderr().lock(),
            &writer.complete_stats(&outcome.stats),
            writer.summary(),
            &classifier,
            outcome.elapsed,
        )?;
    }
    Ok(if outcome.input_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
