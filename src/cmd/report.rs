//! `portmatrix report`: events files -> one HTML file; problems on stderr.
//! `analyze --report` goes through the same steps ([`Draft`]).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use portmatrix::matrix::{PortMatrix, Product};
use portmatrix::output::create::{create_hidden, AtomicFile};
use portmatrix::output::kafka::consume::TopicReader;
use portmatrix::output::kafka::KafkaTarget;
use portmatrix::report::drift::Drift;
use portmatrix::report::{render, Model, ModelBuilder, Page};

use super::{Exit, OutputError};
use crate::cli::ReportArgs;

/// Malformed lines named one by one on stderr; the rest are only counted
/// (the report lists more), so a damaged file cannot flood the terminal.
const LINES_ON_STDERR: usize = 20;

pub fn run(args: ReportArgs) -> Result<Exit> {
    let matrix = PortMatrix::load(&args.matrix.sources())?;
    if let (Some(since), Some(until)) = (args.since, args.until) {
        if since >= until {
            portmatrix::diag!("portmatrix: error: --since {since} is not before --until {until}");
            return Ok(Exit::Usage);
        }
    }
    let mut builder = ModelBuilder::new()
        .dedup_window(args.dedup_window)
        .time_window(args.since, args.until);
    let mut failed_inputs = read_inputs(&mut builder, &args.events);
    let topic = match args.kafka.target() {
        Ok(Some(target)) => read_topic(&mut builder, &target, args.group.as_deref()),
        Ok(None) => None,
        Err(e) => {
            portmatrix::diag!("portmatrix: error: {e}");
            return Ok(Exit::Usage);
        }
    };
    let inputs = args.events.len() + usize::from(args.kafka.kafka.is_some());
    if args.kafka.kafka.is_some() && topic.is_none() {
        failed_inputs += 1;
    }
    if failed_inputs == inputs {
        // Nothing to report on: an empty page would read as a quiet network.
        return Ok(Exit::Incomplete);
    }
    let model = builder.finish();
    report_bad_lines(&model);
    let (drift, baseline_failed) = baseline(&args.baseline, &model, args.dedup_window);
    let page = Page {
        title: &args.title,
        model: &model,
        matrix: &matrix,
        product: args.matrix.profile,
        drift: drift.as_ref(),
    };
    write_page(&args.output, &page, true)?;
    // Only now: a report that could not be written leaves the events for the next.
    if let Some(Err(e)) = topic.as_ref().map(TopicReader::commit) {
        portmatrix::diag!(
            "portmatrix: error: {e}; the report is written, but the next report with this \
group reads these events again"
        );
        failed_inputs += 1;
    }
    Ok(
        if failed_inputs > 0 || model.bad_lines > 0 || baseline_failed {
            Exit::Incomplete
        } else {
            Exit::Success
        },
    )
}

/// How long reading a topic waits for the broker: to answer at the start,
/// then for each message.
const KAFKA_WAIT: Duration = Duration::from_secs(30);

/// Read a Kafka topic into `builder`, as one more events file: the reader,
/// to commit once the report is written, or `None` after saying why the
/// topic could not be read at all.
fn read_topic(
    builder: &mut ModelBuilder,
    target: &KafkaTarget,
    group: Option<&str>,
) -> Option<TopicReader> {
    let mut reader = match TopicReader::open(target, group, KAFKA_WAIT) {
        Ok(r) => r,
        Err(e) => {
            portmatrix::diag!("portmatrix: error: {e}");
            return None;
        }
    };
    let name = format!("kafka:{}", target.topic);
    if let Err(e) = builder.read(&name, &mut reader) {
        // What was read counts, but the group must not skip what was not.
        portmatrix::diag!("portmatrix: {e}");
        return None;
    }
    Some(reader)
}

/// `--baseline FILE…`: the changes from those events to `model`, and
/// whether a baseline file could not be read whole.
fn baseline(paths: &[PathBuf], model: &Model, window: Duration) -> (Option<Drift>, bool) {
    if paths.is_empty() {
        return (None, false);
    }
    let mut builder = ModelBuilder::new().dedup_window(window);
    let failed = read_inputs(&mut builder, paths);
    let base = builder.finish();
    report_bad_lines(&base);
    let drift = Drift::between(&base, model);
    (Some(drift), failed > 0 || base.bad_lines > 0)
}

/// Read each events file (`-`: stdin) into `builder`; a file that cannot be
/// opened or read is named on stderr. Returns how many failed.
pub fn read_inputs(builder: &mut ModelBuilder, paths: &[PathBuf]) -> usize {
    let mut failed_inputs = 0usize;
    for path in paths {
        let result = if path == Path::new("-") {
            builder.read("stdin", io::stdin().lock())
        } else {
            let name = path.display().to_string();
            if portmatrix::capture::is_capture(path) {
                portmatrix::diag!(
                    "portmatrix: error: {name} is a capture, not an events file; for its report run \
`portmatrix analyze --report report.html {name}`"
                );
                failed_inputs += 1;
                continue;
            }
            match File::open(path) {
                Ok(file) => builder.read(&name, BufReader::with_capacity(1 << 16, file)),
                Err(e) => {
                    portmatrix::diag!("portmatrix: error: cannot open events file {name}: {e}");
                    failed_inputs += 1;
                    continue;
                }
            }
        };
        if let Err(e) = result {
            portmatrix::diag!("portmatrix: {e}");
            failed_inputs += 1;
        }
    }
    failed_inputs
}

/// The malformed lines of the events, on stderr (the first few by name).
pub fn report_bad_lines(model: &Model) {
    for e in model.line_errors.iter().take(LINES_ON_STDERR) {
        portmatrix::diag!("portmatrix: {e} (line skipped)");
    }
    if model.bad_lines > 0 {
        portmatrix::diag!(
            "portmatrix: {} malformed event line(s) skipped{}; the report counts them",
            model.bad_lines,
            if model.bad_lines > LINES_ON_STDERR as u64 {
                format!(" (the first {LINES_ON_STDERR} are named above)")
            } else {
                String::new()
            }
        );
    }
}

/// Render `page` and write it to `output` (`-`: stdout); `announce` says
/// so on stderr.
fn write_page(output: &Path, page: &Page<'_>, announce: bool) -> Result<()> {
    let html = render(page)?;
    let model = page.model;
    if output == Path::new("-") {
        let mut out = io::stdout().lock();
        out.write_all(html.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| OutputError::stdout("the report", e))?;
    } else {
        // Replaced whole or not at all: a full disk keeps the report that was there.
        AtomicFile::create(output)
            .and_then(|mut f| f.write_all(html.as_bytes()).and_then(|()| f.commit()))
            .map_err(|e| OutputError::new("the report", output, e))?;
        if !announce {
            return Ok(());
        }
        portmatrix::diag!(
            "portmatrix: wrote {}: {} flows, {} flagged, from {} event line(s)",
            output.display(),
            model.flows,
            model.flagged_total,
            model.inputs.iter().map(|i| i.lines).sum::<u64>()
        );
    }
    Ok(())
}

/// `analyze --report FILE`: the run's events, as JSON lines whatever the
/// output format, kept in a hidden file beside FILE (so memory does not grow
/// with the number of flows, and FILE's folder is known to be writable
/// before the run starts), then read back exactly as `portmatrix report`
/// reads an events file. Its name is unpredictable and it is created new,
/// never through a planted link. The draft is removed when dropped.
pub struct Draft {
    events: PathBuf,
    output: PathBuf,
}

impl Draft {
    /// Create the events file; returns it as the writer's tee.
    pub fn create(output: &Path) -> Result<(Draft, BufWriter<File>)> {
        let (events, file) = create_hidden(output, "events.jsonl").with_context(|| {
            format!(
                "cannot write beside the report {}; check the folder exists and is writable",
                output.display()
            )
        })?;
        let draft = Draft {
            events,
            output: output.to_path_buf(),
        };
        Ok((draft, BufWriter::with_capacity(1 << 16, file)))
    }

    /// Build the page from the events written and write it (`announce`: say so on stderr).
    pub fn finish(
        self,
        title: &str,
        matrix: &PortMatrix,
        product: Product,
        announce: bool,
    ) -> Result<()> {
        let file = File::open(&self.events)
            .with_context(|| format!("cannot read back {}", self.events.display()))?;
        let mut builder = ModelBuilder::new();
        builder.read("analyze", BufReader::with_capacity(1 << 16, file))?;
        let model = builder.finish();
        report_bad_lines(&model);
        let page = Page {
            title,
            model: &model,
            matrix,
            product,
            drift: None,
        };
        write_page(&self.output, &page, announce)
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.events);
    }
}
