//! `portmatrix live`: network interfaces -> events as they happen, until a signal.

use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use anyhow::Result;
use clap::ArgMatches;

use portmatrix::capture::{LiveCapture, LiveError, LiveOptions};
use portmatrix::evidence::Extraction;
use portmatrix::output::kafka::LIVE_DRAIN;
use portmatrix::output::{write_summary, EventFile, EventWriter, Sensor};
use portmatrix::pipeline::{run_live, LiveConfig, LiveControl, RING_TIMEOUT_MS};

use super::kafka_out::{KafkaOutput, Producing};
use super::live_config::{self, Resolved};
use super::live_sensor::SensorOutputs;
use super::OutputError;
use super::{gate, signals, Exit};
use crate::cli::LiveArgs;

/// `typed`: the options as typed, which win over `--config`'s.
pub fn run(args: LiveArgs, typed: &ArgMatches) -> Result<Exit> {
    let args = match live_config::resolve(args, typed)? {
        Resolved::Run(args) => *args,
        Resolved::Done(exit) => return Ok(exit),
    };
    let classifier = super::site::classifier(&args.run.matrix, &args.run.site, args.quiet)?;
    let focus = args.run.select.focus();
    let verdicts = args.run.select.verdicts();
    let control = LiveControl::default();

    let options = LiveOptions {
        promiscuous: !args.no_promisc,
        snaplen: args.snaplen,
        buffer_bytes: args.buffer_mb.saturating_mul(1 << 20),
        filter: args.bpf.clone(),
        timeout_ms: RING_TIMEOUT_MS,
    };
    let mut captures = Vec::with_capacity(args.interfaces.len());
    for name in &args.interfaces {
        match LiveCapture::open(name, &options) {
            Ok(c) => captures.push(c),
            Err(e) => {
                portmatrix::diag!("portmatrix: error: {e}");
                let usage = matches!(e, LiveError::Filter { .. });
                return Ok(if usage { Exit::Usage } else { Exit::Incomplete });
            }
        }
    }
    let format = args.run.events.format();
    let host = super::sensor_name(args.run.events.sensor_name.as_deref());
    // Before the privileges go, as the files are.
    let kafka = match KafkaOutput::start(&args.run, args.output.is_some(), &host, Producing::Live) {
        Ok(k) => k,
        Err(exit) => return Ok(exit),
    };
    // Opened before the privileges go, so the files may live where only root writes.
    let (kafka, out): (_, Box<dyn Write + Send>) = match (kafka, &args.output) {
        (Some((kafka, lines)), _) => (Some(kafka), Box::new(lines)),
        (None, Some(path)) => {
            // Every file the rotation starts gets its own header. As any
            // output that cannot be written: exit 4.
            let file = EventFile::for_format(path, Arc::clone(&control.reopen), format)
                .map_err(|e| OutputError::new("the events", path, e))?;
            (None, Box::new(file))
        }
        (None, None) => (
            None,
            Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
        ),
    };
    // Before the privileges go: a port below 1024, a folder only root writes.
    let mut outputs = match SensorOutputs::prepare(&args.sensor) {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    let extraction = match args.run.extract.config(verdicts, args.snaplen) {
        Some(config) => Some(Extraction::new(config)?),
        None => None,
    };
    if let Some(user) = &args.user {
        if let Err(e) = super::privileges::drop_to(user) {
            portmatrix::diag!("portmatrix: error: {}", super::Chain(&e));
            return Ok(Exit::Usage);
        }
        let warning = args
            .output
            .as_deref()
            .and_then(|path| super::privileges::reopen_warning(path, user));
        if let Some(warning) = warning {
            portmatrix::diag!("portmatrix: warning: {warning}");
        }
    }
    // After the privileges go: dropping them needs this thread to be the only
    // one (each thread holds its own capabilities). A stop signal before this
    // ends the process as usual: nothing was captured yet.
    let _signals = signals::install(signals::Wiring {
        stop: &control.stop,
        hangup: Some(&control.hangup),
        stop_timeout: args.run.stop.timeout,
        quiet: args.quiet,
    })?;
    if !args.quiet {
        portmatrix::diag!(
            "portmatrix: capturing on {} (snaplen {}, buffer {} MiB{}{}); Ctrl-C to stop",
            args.interfaces.join(", "),
            args.snaplen,
            args.buffer_mb,
            if args.no_promisc { "" } else { ", promiscuous" },
            args.bpf
                .as_deref()
                .map(|f| format!(", filter `{f}`"))
                .unwrap_or_default(),
        );
    }

    let config = LiveConfig {
        flow: args.run.flow.settings(),
        format,
        stats_interval: args.stats_interval,
        focus,
        verdicts,
        retry: args.retry,
        options,
        alert_burst: args.run.events.alert_burst as usize,
        metrics: outputs.wants_counters(),
    };
    // EVE's in_iface is one interface: with several, a flow is not tied to one.
    let sensor = Sensor {
        host,
        host_in_json: args.run.events.host_in_json(),
        in_iface: match args.interfaces.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        },
        pcap_filename: None,
    };
    let mut writer = EventWriter::new(
        out,
        format,
        args.run.events.flows(),
        Arc::clone(&classifier),
    )
    .select(verdicts)
    .sensor(sensor);
    if args.output.is_some() {
        writer = writer.without_csv_header();
    }
    if let Some(kafka) = &kafka {
        writer.kafka(kafka.counters());
    }
    let writer = match outputs.start(&args.sensor, writer) {
        Ok(w) => w,
        Err(exit) => return Ok(exit),
    };
    let (outcome, mut writer) = run_live(
        &config,
        captures,
        Arc::clone(&classifier),
        writer,
        extraction,
        &control,
    );
    // The final stats, unless a forced exit (SIGQUIT, --stop-timeout) is under way.
    let output_gate = control.stop.gate();
    if !output_gate.enter() {
        signals::await_forced_exit();
    }
    let written = match writer.take_error() {
        Some(e) => Err(e),
        None => writer
            .stats(outcome.stopped_at, &outcome.stats)
            .and_then(|()| writer.flush()),
    };
    output_gate.flushed();
    outputs.finish(&mut writer, &outcome.stats, args.quiet);
    if let Some(kafka) = kafka {
        let within = args.run.events.kafka.kafka_timeout.min(LIVE_DRAIN);
        kafka.finish(within, args.quiet);
    }
    // A closed pipe is a normal end, as a signal is; anything else is an
    // error, but after the summary: what was seen is still reported.
    let output_error = written
        .err()
        .filter(|e| e.kind() != io::ErrorKind::BrokenPipe)
        .map(|e| match &args.output {
            Some(path) => OutputError::new("the events", path, e),
            None => OutputError::stdout("the events", e),
        });
    if !args.quiet {
        write_summary(
            &mut io::stderr().lock(),
            &writer.complete_stats(&outcome.stats),
            writer.summary(),
            &classifier,
            outcome.elapsed,
        )?;
        if let Some(l) = writer.latency().filter(|l| l.count > 0) {
            portmatrix::diag!(
                "  alert latency (capture to output): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} alerts",
                l.p50_ms, l.p99_ms, l.max_ms, l.count
            );
        }
    }
    if let Some(e) = output_error {
        return Err(e.into());
    }
    let evidence_failed = outcome.stats.extract.is_some_and(|x| x.errors > 0);
    Ok(gate(&outcome.stats, args.run.select.fail_on())
        .or_incomplete(outcome.failed > 0 || evidence_failed))
}
