//! `portmatrix analyze`: capture files -> events on stdout, summary on
//! stderr; evidence files and the HTML report when asked.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};

use portmatrix::evidence::Extraction;
use portmatrix::filter::Focus;
use portmatrix::output::{write_summary, EventFile, EventWriter, Sensor};
use portmatrix::pipeline::{run_offline, AnalyzeConfig, ProgressLink, Stop, ThroughProgress};
use portmatrix::timestamp::Timestamp;

use super::kafka_out::{KafkaOutput, Producing};
use super::report::Draft;
use super::OutputError;
use super::{gate, signals, Exit};
use crate::cli::AnalyzeArgs;

pub fn run(args: AnalyzeArgs) -> Result<Exit> {
    // From the start, so that a stop during the setup is one too (nothing read).
    let stop = Stop::default();
    // Dropped when this returns: until then a stop is watched (--stop-timeout).
    let _signals = signals::install(signals::Wiring {
        stop: &stop,
        hangup: None,
        stop_timeout: args.run.stop.timeout,
        quiet: args.quiet,
    })?;
    let focus = args.focus();
    if let Err(e) = focus.check() {
        portmatrix::diag!("portmatrix: error: {e}");
        return Ok(Exit::Usage);
    }
    if args.report.as_deref() == Some(Path::new("-")) {
        portmatrix::diag!(
            "portmatrix: error: --report needs a file (stdout carries the events); \
to pipe a report, run `portmatrix analyze --json --flows … | portmatrix report - -o -`"
        );
        return Ok(Exit::Usage);
    }
    let classifier = super::site::classifier(&args.run.matrix, &args.run.site, args.quiet)?;
    let verdicts = args.run.select.verdicts();
    let extraction = match args.run.extract.config(verdicts, 0) {
        Some(config) => Some(Extraction::new(config)?),
        None => None,
    };
    let progress = !args.quiet && !args.no_progress;
    let progress_link = ProgressLink::default();
    // Events printed on the terminal the bar is drawn on go past the bar,
    // or bits of it would stay between them.
    let past_bar = if progress && args.output.is_none() && io::stdout().is_terminal() {
        progress_link.clone()
    } else {
        ProgressLink::default()
    };
    let format = args.run.events.format();
    let host = super::sensor_name(args.run.events.sensor_name.as_deref());
    let kafka =
        match KafkaOutput::start(&args.run, args.output.is_some(), &host, Producing::Analyze) {
            Ok(k) => k,
            Err(exit) => return Ok(exit),
        };
    let (kafka, out): (_, Box<dyn Write + Send>) = match (kafka, &args.output) {
        (Some((kafka, lines)), _) => (Some(kafka), Box::new(lines)),
        (None, Some(path)) => {
            // As live's: appended to, links refused (output::create); no SIGHUP here.
            let file = EventFile::for_format(path, Arc::new(AtomicBool::new(false)), format)
                .map_err(|e| OutputError::new("the events", path, e))?;
            (None, Box::new(file))
        }
        (None, None) => (
            None,
            Box::new(BufWriter::with_capacity(
                1 << 16,
                ThroughProgress::new(io::stdout(), past_bar),
            )),
        ),
    };
    let stdout = KeepGoing {
        out,
        // With --report the run must see every packet, whoever reads stdout.
        on_closed_pipe: args.report.is_some(),
        closed: false,
    };
    // EVE names the capture file when there is one (a flow of several files
    // is not tied to one of them).
    let sensor = Sensor {
        host,
        host_in_json: args.run.events.host_in_json(),
        in_iface: None,
        pcap_filename: match args.captures.as_slice() {
            [one] if one.is_file() => Some(one.display().to_string()),
            _ => None,
        },
    };
    let mut writer = EventWriter::new(
        stdout,
        format,
        args.run.events.flows(),
        Arc::clone(&classifier),
    )
    .select(verdicts)
    .sensor(sensor);
    if let Some(kafka) = &kafka {
        writer.kafka(kafka.counters());
    }
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
        flow: args.run.flow.settings(),
        progress,
        progress_link,
        focus,
        verdicts,
        alert_burst: args.run.events.alert_burst as usize,
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
            return Ok(Exit::Success);
        }
        return Err(match &args.output {
            Some(path) => OutputError::new("the events", path, e),
            None => OutputError::stdout("the events", e),
        }
        .into());
    }
    // Before the summary, which then has the final counters.
    let undelivered = kafka.map_or(0, |k| {
        k.finish(args.run.events.kafka.kafka_timeout, args.quiet)
            .undelivered()
    });
    if let Some(note) = window_outside(&config.focus, outcome.first_ts, outcome.last_ts) {
        portmatrix::diag!("portmatrix: note: {note}");
    }
    // A run that could read none of its inputs has nothing to summarise:
    // its errors, printed as they happened, say it all (an empty summary
    // would read as "nothing documented was used").
    let nothing_read = outcome
        .stats
        .files
        .iter()
        .all(|f| f.error.is_some() && f.packets == 0);
    if !args.quiet && !nothing_read {
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
                let (matrix, profile) = (classifier.matrix(), args.run.matrix.profile);
                draft.finish("portmatrix report", matrix, profile, !args.quiet)
            }
            Some(Err(e)) => {
                Err(anyhow::Error::new(e)).context("cannot keep the events for --report")
            }
            None => Ok(()),
        };
        if let Err(e) = written {
            portmatrix::diag!("portmatrix: error: {}", super::Chain(&e));
            failed = true;
        }
    }
    let mut exit = gate(&outcome.stats, args.run.select.fail_on()).or_incomplete(failed);
    if undelivered > 0 {
        // Events that never reached the topic: the results are incomplete.
        exit = exit.and(Exit::OutputFailed);
    }
    // A stop signal wins over 1 and 3: the input was not all read (4 wins
    // over it, above).
    Ok(match outcome.stats.interrupted {
        Some(signal) => exit.and(signals::interrupted(signal)),
        None => exit,
    })
}

/// When `--since`/`--until` leave out the whole capture (which runs from
/// `first` to `last`), why nothing was analysed: a window in the wrong
/// day or zone otherwise reads as a quiet network.
fn window_outside(focus: &Focus, first: Option<Timestamp>, last: Timestamp) -> Option<String> {
    let first = first?;
    let since = focus.since.map(|b| b.resolve(first));
    let until = focus.until.map(|b| b.resolve(first));
    let after = since.is_some_and(|s| s > last);
    let before = until.is_some_and(|u| u <= first);
    if !after && !before {
        return None;
    }
    let window = match (since, until) {
        (Some(s), Some(u)) => format!("from {s} to {u}"),
        (Some(s), None) => format!("from {s} on"),
        (None, Some(u)) => format!("before {u}"),
        (None, None) => return None,
    };
    Some(format!(
        "the time window ({window}) lies outside the capture, which runs from {first} to \
{last}: no packet is in it"
    ))
}

/// Standard output that, when asked, outlives a closed pipe: `analyze
/// --report r.html … | head -1` must still read every capture and write the
/// report, so once the reader has gone the events are dropped, not an error.
struct KeepGoing<W> {
    out: W,
    on_closed_pipe: bool,
    closed: bool,
}

impl<W: Write> KeepGoing<W> {
    fn absorb<T>(&mut self, result: io::Result<T>, done: T) -> io::Result<T> {
        match result {
            Err(e) if self.on_closed_pipe && e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(done)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for KeepGoing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.out.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.out.flush();
        self.absorb(result, ())
    }
}
