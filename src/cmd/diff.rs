//! `portmatrix diff BASE NEW`: what changed between two runs' events, as
//! text or JSON, and `--fail-on` for scheduled drift checks.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use portmatrix::printable::Printable;
use portmatrix::report::drift::{Change, ChangeKind, Drift, FailOn};
use portmatrix::report::ModelBuilder;

use super::exit::{self, Exit};
use super::{report, write_stdout};

#[derive(Debug, Args)]
#[command(
    long_about = "Compare the events of two runs of `portmatrix analyze --json --flows` (last \
month's and today's, say) and list, most severe first: new hosts, new listening ports, new flows \
with their verdicts (and the verdict they had before, when it changed), the flows that \
disappeared and the rules no flow uses any more. A flow here is a client, a listener, a \
transport, a listening port and a verdict: the client's ephemeral port is left out.",
    after_help = exit::ending(&[
        ("two runs: the capture's first 20 seconds, then all of it",
         "portmatrix analyze -q --json --flows --until +20s fixtures/sample-contact-center.pcapng \\\n      \
> before.jsonl"),
        ("", "portmatrix analyze -q --json --flows fixtures/sample-contact-center.pcapng > after.jsonl"),
        ("what changed, most severe first", "portmatrix diff before.jsonl after.jsonl"),
        ("a scheduled drift check: fails on new undocumented flows or roles",
         "portmatrix diff before.jsonl after.jsonl --fail-on new-undocumented,new-role-mismatch"),
    ], &[
        (&[Exit::Success], "both inputs were read whole and no change given to --fail-on was found"),
        (&[Exit::Incomplete], "an events file could not be read or had malformed lines (they are \
skipped and named on stderr; the comparison is of what was read)"),
        (&[Exit::Usage], "wrong usage"),
        (&[Exit::GateFailed], "a change given to --fail-on was found"),
        (&[Exit::OutputFailed], "the comparison could not be written"),
    ])
)]
pub struct DiffArgs {
    /// The earlier run's events (JSON Lines of `analyze --json --flows`); `-` reads stdin.
    #[arg(value_name = "BASE")]
    pub base: PathBuf,
    /// The later run's events.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,
    /// Write one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    #[arg(long = "fail-on", value_name = "KIND[,KIND…]", value_delimiter = ',', value_parser = FailOn::parse,
          help = format!("Exit with code {} when a change of these kinds is found \
(comma-separated or repeated): new-host, new-port, new-flow, gone-flow, gone-rule, or \
new-VERDICT (new-undocumented, new-role-mismatch, new-wrong-transport…)", Exit::GateFailed.code()))]
    pub fail_on: Vec<FailOn>,
}

pub fn run(args: DiffArgs) -> Result<Exit> {
    if args.base == std::path::Path::new("-") && args.new == std::path::Path::new("-") {
        anyhow::bail!("only one of BASE and NEW can be read from stdin (`-`)");
    }
    let mut incomplete = false;
    let mut read = |path: &PathBuf| {
        let mut builder = ModelBuilder::new();
        let failed = report::read_inputs(&mut builder, std::slice::from_ref(path));
        let model = builder.finish();
        report::report_bad_lines(&model);
        incomplete |= failed > 0 || model.bad_lines > 0;
        model
    };
    let base = read(&args.base);
    let new = read(&args.new);
    let drift = Drift::between(&base, &new);
    write_stdout("the comparison", |out| {
        if args.json {
            serde_json::to_writer(&mut *out, &drift)?;
            writeln!(out)
        } else {
            write_text(out, &drift)
        }
    })?;
    let failed = drift
        .changes
        .iter()
        .any(|c| args.fail_on.iter().any(|f| f.matches(c)));
    let exit = if failed {
        Exit::GateFailed
    } else {
        Exit::Success
    };
    Ok(exit.or_incomplete(incomplete))
}

fn write_text(out: &mut dyn Write, d: &Drift) -> std::io::Result<()> {
    let side = |s: &portmatrix::report::drift::Side| {
        let span = match (s.first, s.last) {
            (Some(a), Some(b)) => format!(", {a} to {b}"),
            _ => String::new(),
        };
        format!("{} ({} flows{span})", s.inputs.join(", "), s.flows)
    };
    writeln!(
        out,
        "portmatrix diff: {} -> {}",
        Printable(&side(&d.base)),
        Printable(&side(&d.new))
    )?;
    for c in &d.changes {
        writeln!(out, "{}", line(c))?;
    }
    writeln!(out, "summary: {}", d.summary())
}

/// `new undocumented   high   TCP 10.20.1.5 -> 10.10.1.99:4444   3 flows, first …`.
fn line(c: &Change) -> String {
    let what = match (c.kind, c.verdict) {
        (ChangeKind::NewFlow, Some(v)) if !c.was.is_empty() => {
            let was: Vec<&str> = c.was.iter().map(|w| w.as_str()).collect();
            format!("now {v} (was {})", was.join(", "))
        }
        (ChangeKind::NewFlow, Some(v)) => format!("new {v}"),
        (ChangeKind::NewPort, _) => "new listening port".into(),
        (ChangeKind::NewHost, _) => "new host".into(),
        (ChangeKind::GoneFlow, _) => "flow gone".into(),
        (ChangeKind::GoneRule, _) => "rule no longer used".into(),
        (ChangeKind::NewFlow, None) => "new flow".into(),
    };
    let other = || "other hosts".to_string();
    let at = |ip: Option<std::net::IpAddr>| ip.map_or_else(other, |ip| ip.to_string());
    let subject = match c.kind {
        ChangeKind::NewFlow | ChangeKind::GoneFlow => format!(
            "{} {} -> {}:{}",
            c.proto.map(|p| p.eve_name()).unwrap_or_default(),
            at(c.src_ip),
            at(c.dest_ip),
            c.dest_port.unwrap_or_default()
        ),
        ChangeKind::NewPort => format!(
            "{} {}:{}",
            c.proto.map(|p| p.eve_name()).unwrap_or_default(),
            at(c.dest_ip),
            c.dest_port.unwrap_or_default()
        ),
        ChangeKind::NewHost => at(c.dest_ip),
        ChangeKind::GoneRule => Printable(c.rule_id.as_deref().unwrap_or_default()).to_string(),
    };
    let verdict = match (c.kind, c.verdict) {
        (ChangeKind::GoneFlow | ChangeKind::NewPort | ChangeKind::NewHost, Some(v)) => {
            format!(" {v}")
        }
        _ => String::new(),
    };
    let when = match c.kind {
        ChangeKind::GoneFlow | ChangeKind::GoneRule => c
            .last
            .map(|t| format!(" in the base, last {t}"))
            .unwrap_or_default(),
        _ => c.first.map(|t| format!(", first {t}")).unwrap_or_default(),
    };
    format!(
        "{what:<26} {:<6} {subject}{verdict}  {} flow{}{when}",
        c.severity.as_str(),
        c.flows,
        if c.flows == 1 { "" } else { "s" }
    )
}
