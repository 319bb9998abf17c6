//! `portmatrix report`: events files -> one HTML file; problems on stderr.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use portmatrix::matrix::PortMatrix;
use portmatrix::report::{render, ModelBuilder, Page};

use super::OutputError;
use crate::cli::ReportArgs;

/// Malformed lines named one by one on stderr; the rest are only counted
/// (the report lists more), so a damaged file cannot flood the terminal.
const LINES_ON_STDERR: usize = 20;

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let matrix = PortMatrix::load(&args.matrix.sources())?;
    let mut builder = ModelBuilder::new();
    let mut failed_inputs = 0usize;
    for path in &args.events {
        let result = if path == Path::new("-") {
            builder.read("stdin", io::stdin().lock())
        } else {
            let name = path.display().to_string();
            match File::open(path) {
                Ok(file) => builder.read(&name, BufReader::with_capacity(1 << 16, file)),
                Err(e) => {
                    eprintln!("portmatrix: cannot open events file {name}: {e}");
                    failed_inputs += 1;
                    continue;
                }
            }
        };
        if let Err(e) = result {
            eprintln!("portmatrix: {e}");
            failed_inputs += 1;
        }
    }
    let model = builder.finish();
    for e in model.line_errors.iter().take(LINES_ON_STDERR) {
        eprintln!("portmatrix: {e} (line skipped)");
    }
    if model.bad_lines > 0 {
        eprintln!(
            "portmatrix: {} malformed event line(s) skipped{}; the report counts them",
            model.bad_lines,
            if model.bad_lines > LINES_ON_STDERR as u64 {
                format!(" (the first {LINES_ON_STDERR} are named above)")
            } else {
                String::new()
            }
        );
    }
    let html = render(&Page {
        title: &args.title,
        model: &model,
        matrix: &matrix,
        product: args.matrix.profile,
    })?;
    if args.output == Path::new("-") {
        let mut out = io::stdout().lock();
        out.write_all(html.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| OutputError::stdout("the report", e))?;
    } else {
        std::fs::write(&args.output, html)
            .map_err(|e| OutputError::new("the report", &args.output, e))?;
        eprintln!(
            "portmatrix: wrote {}: {} flows, {} flagged, from {} event line(s)",
            args.output.display(),
            model.flows,
            model.flagged_total,
            model.inputs.iter().map(|i| i.lines).sum::<u64>()
        );
    }
    Ok(if failed_inputs > 0 || model.bad_lines > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
