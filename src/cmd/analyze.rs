//! `portmatrix analyze`: capture files -> events on stdout, summary on
//! stderr; evidence files and the HTML report when asked.

use std::io::{self, BufWriter};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use portmatrix::output::{write_summary, EventWriter};
use portmatrix::pipeline::extract::Extraction;
use portmatrix::pipeline::{run_offline, AnalyzeConfig, Stop};

use super::report::Draft;
use super::OutputError;
use super::{gate, signals, USAGE};
use crate::cli::AnalyzeArgs;

pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    // From the start, so that a stop during the setup is one too (nothing read).
    let stop = Stop::default();
    // Dropped when this returns: until then a stop is watched (--stop-timeout).
    let _signals = signals::install(signals::Wiring {
        stop: &stop,
        hangup: None,
        stop_timeout: args.stop.timeout,
        quiet: args.quiet,
    })?;
    let focus = args.focus();
    if let Err(e) = focus.check() {
        portmatrix::diag!("portmatrix: error: {e}");
        return Ok(ExitCode::from(USAGE));
    }
    if args.report.as_deref() == Some(Path::new("-")) {
        portmatrix::diag!(
            "portmatrix: error: --report needs a file (stdout carries the events); \
to pipe a report, run `portmatrix analyze --json --flows … | portmatrix report - -o -`"
        );
        return Ok(ExitCode::from(USAGE));
    }
    let classifier = super::site::classifier(&args.matrix, &args.site, args.quiet)?;
    let verdicts = args.select.verdicts();
    let extraction = match args.extract.config(verdicts, 0) {
        Some(config) => Some(Extraction::new(config)?),
        None => None,
    };
    let stdout = BufWriter::with_capacity(1 << 16, io::stdout());
    let format = args.events.format();
    let mut writer = EventWriter::new(stdout, format, args.events.flows(), Arc::clone(&classifier))
        .select(verdicts);
    let draft = match &args.report {
        Some(path) => {
            let (draft, events) = Draft::create(path)?;
            writer = writer.tee(Box::new(events));
            Some(draft)
        }
        None => None,
    };
    let config = AnalyzeConfig {
        inputs: args.captures,
        flow: args.flow.settings(),
        progress: !args.quiet,
        focus,
        verdicts,
        alert_burst: args.events.alert_burst as usize,
        stop: stop.clone(),
    };
    let (outcome, mut writer) = run_offline(&config, Arc::clone(&classifier), writer, extraction)?;
    // The final stats, unless a forced exit (SIGQUIT, --stop-timeout) is under way.
    if !stop.gate().enter() {
        signals::await_forced_exit();
    }
    let written = match writer.take_error() {
        Some(e) => Err(e),
        None => writer
            .stats(outcome.last_ts, &outcome.stats)
            .and_then(|()| writer.flush()),
    };
    stop.gate().flushed();
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
            &writer.complete_stats(&outcome.stats),
            writer.summary(),
            &classifier,
            outcome.elapsed,
        );
    }
    let mut failed = outcome.input_errors > 0;
    failed |= outcome.stats.extract.is_some_and(|x| x.errors > 0);
    if let Some(draft) = draft {
        let tee = writer.take_tee();
        let written = match tee {
            Some(Ok(events)) => {
                drop(events);
                let (matrix, profile) = (classifier.matrix(), args.matrix.profile);
                draft.finish("portmatrix report", matrix, profile, !args.quiet)
            }
            Some(Err(e)) => {
                Err(anyhow::Error::new(e)).context("cannot keep the events for --report")
            }
            None => Ok(()),
        };
        if let Err(e) = written {
            portmatrix::diag!("portmatrix: error: {e:#}");
            failed = true;
        }
    }
    // Interrupted wins over 1 and 3: the input was not all read (4, above, wins over it).
    Ok(if let Some(signal) = outcome.stats.interrupted {
        ExitCode::from(signals::interrupted_code(signal))
    } else if failed {
        ExitCode::from(1)
    } else {
        gate(&outcome.stats, args.select.fail_on())
    })
}
