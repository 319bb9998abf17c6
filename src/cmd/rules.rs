//! `portmatrix rules list | explain | check`.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use portmatrix::classify::{rule_status, Classifier, FlowQuery, Verdict};
use portmatrix::matrix::{
    parse_rules, read_rules_file, DefaultState, Listener, MatrixError, PortMatrix, Product,
    Profile, Rule, RuleIdx, RulesFile, BUILTIN_ORIGIN, BUILTIN_RULES,
};
use portmatrix::transport::Transport;

use super::write_stdout;
use crate::cli::{CheckArgs, ExplainArgs, ListArgs, RulesCommand};

pub fn run(cmd: RulesCommand) -> Result<ExitCode> {
    match cmd {
        RulesCommand::List(args) => list(args),
        RulesCommand::Explain(args) => explain(args),
        RulesCommand::Check(args) => check(args),
    }
}

fn list(args: ListArgs) -> Result<ExitCode> {
    let matrix = PortMatrix::load(&args.matrix.sources())?;
    let needle = args.search.as_deref().map(str::to_lowercase);
    let rules: Vec<&Rule> = matrix
        .rules()
        .iter()
        .filter(|r| args.port.is_none_or(|p| r.covers_port(p)))
        .filter(|r| needle.as_deref().is_none_or(|n| mentions(r, n)))
        .collect();
    write_stdout("the rules", |out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &rules)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{:<10} {:<8} {:<32} {:<12} {:<28} CLIENT -> LISTENER",
                "ID", "TRANSP", "PORTS", "APP", "FLAGS"
            )?;
            for r in &rules {
                writeln!(
                    out,
                    "{:<10} {:<8} {:<32} {:<12} {:<28} {} -> {}",
                    r.id,
                    r.transports_text(),
                    r.ports_text(),
                    r.app_protocol,
                    flags_text(r),
                    or_dash(client_of(r)),
                    or_dash(listener_of(r)),
                )?;
            }
            writeln!(out, "{} rules", rules.len())?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn mentions(r: &Rule, needle: &str) -> bool {
    [
        r.id.as_str(),
        &r.component,
        &r.source,
        &r.destination,
        &r.description,
        &r.app_protocol,
        r.note.as_deref().unwrap_or(""),
    ]
    .iter()
    .any(|s| s.to_lowercase().contains(needle))
}

/// The flags of a rule, short enough for one table column.
fn flags_text(r: &Rule) -> String {
    let mut flags: Vec<&str> = Vec::new();
    if r.optional == Some(true) {
        flags.push("optional");
    }
    match r.default_state {
        DefaultState::Closed => flags.push("closed"),
        DefaultState::OpenIfHa => flags.push("open-if-ha"),
        _ => {}
    }
    for (on, name) in [
        (r.internal_only, "internal"),
        (r.ha_only, "ha"),
        (r.windows_only, "windows"),
        (r.multicast, "multicast"),
        (r.deprecated, "deprecated"),
        (r.needs_roles, "needs-roles"),
    ] {
        if on {
            flags.push(name);
        }
    }
    match r.profile {
        Profile::Accs => flags.push("accs-only"),
        Profile::Aacc => flags.push("aacc-only"),
        Profile::Both => {}
    }
    if flags.is_empty() {
        "-".into()
    } else {
        flags.join(",")
    }
}

/// Rows written backwards keep the listener in the source column.
fn client_of(r: &Rule) -> &str {
    match r.listener {
        Listener::Destination => &r.source,
        Listener::Source => &r.destination,
    }
}

fn listener_of(r: &Rule) -> &str {
    match r.listener {
        Listener::Destination => &r.destination,
        Listener::Source => &r.source,
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The `rules explain --json` object.
#[derive(Serialize)]
struct Explanation<'a> {
    transport: Transport,
    port: u16,
    src_ip: IpAddr,
    dest_ip: IpAddr,
    profile: Product,
    multicast: bool,
    same_host: bool,
    verdict: Verdict,
    severity: portmatrix::classify::Severity,
    rule_ids: Vec<&'a str>,
    deciding_rule_ids: Vec<&'a str>,
    rules: Vec<MatchedRule<'a>>,
    not_applied: Vec<NotApplied<'a>>,
}

#[derive(Serialize)]
struct MatchedRule<'a> {
    /// What this rule alone would make of the flow.
    status: Verdict,
    deciding: bool,
    #[serde(flatten)]
    rule: &'a Rule,
}

/// A rule on the same port that did not match, and why.
#[derive(Serialize)]
struct NotApplied<'a> {
    id: &'a str,
    reason: String,
}

fn explain(args: ExplainArgs) -> Result<ExitCode> {
    let matrix = Arc::new(PortMatrix::load(&args.matrix.sources())?);
    let product = args.matrix.profile;
    let classifier = Classifier::new(Arc::clone(&matrix), product);
    let (transport, port) = args.target;
    let query = FlowQuery {
        transport,
        port,
        multicast: args.dst.is_multicast(),
        same_host: args.src == args.dst,
    };
    let c = classifier.classify(query);
    let deciding: Vec<RuleIdx> = c.deciding().to_vec();
    let ids = |list: &[RuleIdx]| -> Vec<&str> {
        list.iter().map(|&i| matrix.rule(i).id.as_str()).collect()
    };
    let rules: Vec<MatchedRule<'_>> = c
        .rule_ids
        .iter()
        .map(|&i| MatchedRule {
            status: if c.verdict == Verdict::WrongTransport {
                Verdict::WrongTransport
            } else {
                rule_status(matrix.rule(i), product, query.same_host)
            },
            deciding: deciding.contains(&i),
            rule: matrix.rule(i),
        })
        .collect();
    let not_applied: Vec<NotApplied<'_>> = matrix
        .rules()
        .iter()
        .enumerate()
        .filter(|(i, r)| r.covers_port(port) && !c.rule_ids.contains(&(*i as RuleIdx)))
        .map(|(_, r)| NotApplied {
            id: &r.id,
            reason: why_not(r, transport, query.multicast),
        })
        .collect();
    let e = Explanation {
        transport,
        port,
        src_ip: args.src,
        dest_ip: args.dst,
        profile: product,
        multicast: query.multicast,
        same_host: query.same_host,
        verdict: c.verdict,
        severity: c.severity,
        rule_ids: ids(c.rule_ids),
        deciding_rule_ids: ids(&deciding),
        rules,
        not_applied,
    };
    write_stdout("the explanation", |out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &e)?;
            writeln!(out)
        } else {
            write_explanation(out, &e)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn why_not(r: &Rule, transport: Transport, multicast: bool) -> String {
    if r.needs_roles {
        "applies only when a site inventory gives the hosts' roles".into()
    } else if !r.has_transport(transport) {
        format!("documented for {} only", r.transports_text())
    } else if !r.cast.admits(multicast) {
        if multicast {
            "documented for unicast destinations only".into()
        } else {
            "documented for multicast destinations only".into()
        }
    } else {
        "less specific than the deciding rules".into()
    }
}

fn write_explanation(out: &mut dyn Write, e: &Explanation<'_>) -> io::Result<()> {
    writeln!(
        out,
        "{}/{} from {} to {}{} (profile {})",
        e.transport,
        e.port,
        e.src_ip,
        e.dest_ip,
        if e.multicast { ", multicast" } else { "" },
        e.profile.as_str()
    )?;
    writeln!(out, "verdict:  {} (severity {})", e.verdict, e.severity)?;
    if e.rules.is_empty() {
        writeln!(out, "no rule documents this port on tcp or udp")?;
    }
    for (title, deciding) in [
        ("deciding rules", true),
        ("also matched (less specific)", false),
    ] {
        let group: Vec<&MatchedRule<'_>> =
            e.rules.iter().filter(|m| m.deciding == deciding).collect();
        if group.is_empty() {
            continue;
        }
        writeln!(out, "{title}:")?;
        for m in group {
            let r = m.rule;
            writeln!(
                out,
                "  {:<10} {} {}  {} -> {}  [{}]  => {}",
                r.id,
                r.transports_text(),
                r.ports_text(),
                or_dash(client_of(r)),
                or_dash(listener_of(r)),
                flags_text(r),
                m.status
            )?;
            if !r.description.is_empty() {
                writeln!(out, "             \"{}\"", r.description)?;
            }
            if let Some(replaced) = &r.replaced_by {
                writeln!(out, "             replaced by: {replaced}")?;
            }
            if let Some(note) = &r.note {
                writeln!(out, "             note: {note}")?;
            }
        }
    }
    if !e.not_applied.is_empty() {
        writeln!(out, "on this port, not applied:")?;
        for n in &e.not_applied {
            writeln!(out, "  {:<10} {}", n.id, n.reason)?;
        }
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result<ExitCode> {
    let mut failed = false;
    let mut parsed: Vec<RulesFile> = Vec::new();
    if !args.no_default_rules {
        parsed.push(parse_rules(BUILTIN_ORIGIN, BUILTIN_RULES).map_err(MatrixError::Invalid)?);
    }
    write_stdout("the check results", |out| {
        for path in &args.files {
            match read_rules_file(path) {
                Ok(Ok(file)) => {
                    writeln!(out, "{}: ok, {} rules", path.display(), file.rules.len())?;
                    parsed.push(file);
                }
                Ok(Err(errors)) => {
                    failed = true;
                    for e in &errors {
                        writeln!(out, "{e}")?;
                    }
                    writeln!(out, "{}: {} error(s)", path.display(), errors.len())?;
                }
                Err(e) => {
                    failed = true;
                    writeln!(out, "{e}")?;
                }
            }
        }
        // Ids must also be unique across the files (and the built-in matrix).
        if let Err(MatrixError::Invalid(errors)) =
            PortMatrix::from_files(std::mem::take(&mut parsed))
        {
            failed = true;
            for e in &errors {
                writeln!(out, "{e}")?;
            }
        }
        Ok(())
    })?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
