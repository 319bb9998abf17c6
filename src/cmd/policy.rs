//! `portmatrix policy`: the site's least-privilege firewall rules, from the
//! matrix and the site, and with events only what their flows used.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

use portmatrix::output::create::AtomicFile;
use portmatrix::policy::{
    windows_sections, write_csv, write_nft, write_windows, Hook, Observed, Policy, WINDOWS_SYSTEMS,
};
use portmatrix::report::ModelBuilder;

use super::exit::{self, Exit};
use super::{report, OutputError};
use crate::cli::{MatrixArgs, SiteArgs};

#[derive(Debug, Args)]
#[command(
    long_about = "Write the least-privilege firewall rules for a site: for each rule of the matrix \
whose systems the site has, allow the listening port and transport from the client systems' \
addresses to the listener's. With events (`portmatrix analyze --json --flows`), only what their \
flows used: each flow is classified again with this site, and the open rules no flow used are \
listed to close. Every rule written carries the matrix rule id and the document's text.\n\n\
INTERNAL ONLY ports are never opened between hosts; deprecated and other-product rules stay \
closed; multicast (RSM, RTD) is allowed from the senders to the groups. docs/policy.md says how \
each format renders them.",
    after_help = "Kafka input (--kafka) is not built yet: give events files, or `-` for stdin.\n\n".to_owned()
        + &exit::ending(&[
        ("every open rule between the site's systems, as an nftables ruleset",
         "portmatrix policy --site rules/site-example.toml > portmatrix.nft"),
        ("only what the flows of a capture used, and the rules to close",
         "portmatrix analyze -q --json --flows --site rules/site-example.toml \\\n      \
fixtures/sample-contact-center.pcapng > events.jsonl"),
        ("", "portmatrix policy --site rules/site-example.toml events.jsonl > portmatrix.nft"),
        ("the same for the Windows servers (PowerShell) and as CSV for a change ticket",
         "portmatrix policy --site rules/site-example.toml --format windows events.jsonl -o policy.ps1"),
        ("", "portmatrix policy --site rules/site-example.toml --format csv events.jsonl -o policy.csv"),
    ], &[
        (&[Exit::Success], "the policy was written from every input"),
        (&[Exit::Incomplete], "the rules, the site or an events file could not be used (for \
malformed event lines the policy is still written, from the lines read, and they are named on \
stderr), or the site has no system a rule allows"),
        (&[Exit::Usage], "wrong usage"),
        (&[Exit::OutputFailed], "the policy could not be written (the file that was there is kept)"),
    ])
)]
pub struct PolicyArgs {
    /// Events files (JSON Lines) of `portmatrix analyze --json --flows`; `-` reads stdin.
    /// Without any, every open, current rule between the site's systems is allowed.
    #[arg(value_name = "EVENTS")]
    pub events: Vec<PathBuf>,
    /// The site file: which addresses are which systems (see rules/site-example.toml).
    #[arg(long = "site", value_name = "FILE", required = true)]
    pub site: PathBuf,
    /// nft (an nftables ruleset), windows (PowerShell New-NetFirewallRule per Windows
    /// server) or csv (one row per rule, for a change ticket).
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "nft")]
    pub format: PolicyFormat,
    /// With --format nft: forward (a router between zones) or input (a Linux host such as AAMS).
    #[arg(
        long = "nft-hook",
        value_enum,
        value_name = "HOOK",
        default_value = "forward"
    )]
    pub hook: HookArg,
    /// Write the policy to FILE (replaced whole, or not at all) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub matrix: MatrixArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyFormat {
    Nft,
    Windows,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HookArg {
    Forward,
    Input,
}

pub fn run(args: PolicyArgs) -> Result<Exit> {
    let site_args = SiteArgs {
        site: Some(args.site.clone()),
    };
    let classifier = super::site::classifier(&args.matrix, &site_args, true)?;
    let Some(site) = classifier.site() else {
        bail!("no site loaded from {}", args.site.display());
    };
    let mut exit = Exit::Success;
    let observed = if args.events.is_empty() {
        None
    } else {
        let observed = Rc::new(RefCell::new(Observed::default()));
        let (o, c) = (Rc::clone(&observed), Arc::clone(&classifier));
        let mut builder = ModelBuilder::new().on_flow(move |r| o.borrow_mut().add(&c, r));
        let failed = report::read_inputs(&mut builder, &args.events);
        let model = builder.finish();
        report::report_bad_lines(&model);
        exit = exit.or_incomplete(failed > 0 || model.bad_lines > 0);
        if model.flow_events == 0 && model.alert_events > 0 {
            bail!(
                "the events hold alerts only, not the documented flows a policy is made of: \
                 run `portmatrix analyze --json --flows` and give its events"
            );
        }
        if model.flows == 0 && failed == args.events.len() {
            bail!("no events file could be read: there is nothing to make a policy of");
        }
        if model.flows == 0 {
            bail!("the events hold no flow: nothing to make a policy of (were they written by `portmatrix analyze --json --flows`?)");
        }
        let observed = Rc::try_unwrap(observed)
            .map(RefCell::into_inner)
            .unwrap_or_default();
        Some(observed)
    };
    let policy = Policy::build(
        classifier.matrix(),
        args.matrix.profile,
        site,
        observed.as_ref(),
    )?;
    if args.format == PolicyFormat::Windows && windows_sections(&policy).is_empty() {
        bail!(
            "the site {} has no Windows server ({}) that the policy lets traffic to; \
             --format nft or csv writes the rules of the other systems",
            args.site.display(),
            WINDOWS_SYSTEMS.join(", ")
        );
    }
    let hook = match args.hook {
        HookArg::Forward => Hook::Forward,
        HookArg::Input => Hook::Input,
    };
    let write = |out: &mut dyn Write| match args.format {
        PolicyFormat::Nft => write_nft(out, &policy, hook),
        PolicyFormat::Windows => write_windows(out, &policy),
        PolicyFormat::Csv => write_csv(out, &policy),
    };
    match &args.output {
        None => super::write_stdout("the policy", |out| write(out))?,
        Some(path) => {
            AtomicFile::create(path)
                .and_then(|mut f| {
                    let mut buf = io::BufWriter::new(&mut f);
                    write(&mut buf)?;
                    buf.flush()?;
                    drop(buf);
                    f.commit()
                })
                .map_err(|e| OutputError::new("the policy", path, e))?;
        }
    }
    let target = args
        .output
        .as_ref()
        .map_or("stdout".to_string(), |p| p.display().to_string());
    portmatrix::diag!(
        "portmatrix: policy for {} written to {target}: {} lines allowed, {} rules to close, {} kept closed",
        args.site.display(),
        policy.allow.len(),
        policy.to_close.len(),
        policy.shut.len()
    );
    Ok(exit)
}
