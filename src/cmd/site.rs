//! `portmatrix site suggest | check`, and `--site` for the other commands.

use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Result;

use portmatrix::capture::list_inputs;
use portmatrix::classify::Classifier;
use portmatrix::config_file::ConfigError;
use portmatrix::matrix::PortMatrix;
use portmatrix::output::suggest::Evidence;
use portmatrix::output::{EventWriter, Format};
use portmatrix::pipeline::{run_offline, AnalyzeConfig, FlowSettings};
use portmatrix::printable::Printable;
use portmatrix::site::{read_site_file, Site};
use portmatrix::timestamp::Timestamp;

use portmatrix::output::create::AtomicFile;

use super::{write_stdout, Exit, OutputError};
use crate::cli::{MatrixArgs, SiteArgs, SiteCheckArgs, SiteCommand, SuggestArgs};

pub fn run(cmd: SiteCommand) -> Result<Exit> {
    match cmd {
        SiteCommand::Suggest(args) => suggest(args),
        SiteCommand::Check(args) => check(args),
    }
}

/// The classifier the flags ask for: the matrix, and the site inventory if
/// `--site` is given. Exceptions already expired by the wall clock are
/// reported on stderr unless `quiet` (they still cover flows of a capture
/// made before they expired).
pub fn classifier(matrix: &MatrixArgs, site: &SiteArgs, quiet: bool) -> Result<Arc<Classifier>> {
    let rules = Arc::new(PortMatrix::load(&matrix.sources())?);
    let site = match &site.site {
        None => None,
        Some(path) => Some(Arc::new(load_site(path, &rules)?)),
    };
    if let (Some(site), false) = (&site, quiet) {
        for e in site.expired_at(Timestamp::now()) {
            portmatrix::diag!(
                "portmatrix: exception `{}` ({}) expired on {}: it covers only flows that started before",
                Printable(&e.id),
                Printable(&e.why),
                Printable(e.until_text.as_deref().unwrap_or("?"))
            );
        }
    }
    Ok(Arc::new(Classifier::with_site(rules, matrix.profile, site)))
}

/// Read a site file and tie its exceptions to the matrix's rule ids.
fn load_site(path: &Path, matrix: &PortMatrix) -> Result<Site, ConfigError> {
    let mut site = read_site_file(path)?;
    site.resolve_rules(matrix)?;
    Ok(site)
}

fn check(args: SiteCheckArgs) -> Result<Exit> {
    let matrix = PortMatrix::load(&args.matrix.sources())?;
    let mut failed = false;
    let mut out = io::stdout().lock();
    for path in &args.files {
        match load_site(path, &matrix) {
            Ok(site) => writeln!(
                out,
                "{}: ok, {} exception(s)",
                path.display(),
                site.exceptions.len()
            )?,
            Err(e) => {
                failed = true;
                writeln!(out, "{e}")?;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        Exit::Incomplete
    } else {
        Exit::Success
    })
}

/// Run the pipeline `analyze` runs over every capture, keep the flows whose
/// server answered on documented ports, and write the draft.
fn suggest(args: SuggestArgs) -> Result<Exit> {
    let classifier = Arc::new(Classifier::new(
        Arc::new(PortMatrix::load(&args.matrix.sources())?),
        args.matrix.profile,
    ));
    let files = list_inputs(&args.captures)?.files;
    let evidence = Arc::new(Mutex::new(Evidence::new(Arc::clone(&classifier))));
    let watch = Arc::clone(&evidence);
    // Nothing is written: the flows are all the draft needs.
    let writer = EventWriter::new(io::sink(), Format::Json, false, Arc::clone(&classifier))
        .watch_flows(Box::new(move |flow| {
            watch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .flow(flow);
        }));
    let workers = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let config = AnalyzeConfig::new(
        files.clone(),
        FlowSettings {
            workers,
            ..FlowSettings::default()
        },
    );
    let (outcome, writer) = run_offline(&config, classifier, writer, None)?;
    drop(writer);
    let mut evidence = evidence.lock().unwrap_or_else(PoisonError::into_inner);
    evidence.set_packets(outcome.stats.tcp_udp_packets);
    let failed = outcome.input_errors > 0;
    let draft = evidence.render(&files);
    for (ip, named, tied) in evidence.ties() {
        portmatrix::diag!(
            "portmatrix: {ip}: {named} ties with {}: the draft names {named} (the one an AACC \
site more often has); check that host",
            tied.join(", ")
        );
    }
    match &args.output {
        Some(path) => AtomicFile::create(path)
            .and_then(|mut f| f.write_all(draft.as_bytes()).and_then(|()| f.commit()))
            .map_err(|e| OutputError::new("the draft", path, e))?,
        None => write_stdout("the draft", |out| out.write_all(draft.as_bytes()))?,
    }
    Ok(if failed {
        Exit::Incomplete
    } else {
        Exit::Success
    })
}
