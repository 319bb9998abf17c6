//! `portmatrix rules list | explain | check`.

use std::io::{self, Write};
use std::net::IpAddr;

use anyhow::Result;
use serde::Serialize;

use portmatrix::classify::{rule_fits, rule_status, FlowQuery};
use portmatrix::config_file::{ConfigError, FileKind};
use portmatrix::matrix::{
    parse_rules, read_rules_file, DefaultState, Listener, PortMatrix, Product, Profile, Rule,
    RuleIdx, RulesFile, SystemSet, BUILTIN_ORIGIN, BUILTIN_RULES,
};
use portmatrix::output::role_names;
use portmatrix::printable::Printable;
use portmatrix::transport::Transport;
use portmatrix::verdict::Verdict;

use super::{write_stdout, Exit};
use crate::cli::{CheckArgs, ExplainArgs, ListArgs, RulesCommand};

pub fn run(cmd: RulesCommand) -> Result<Exit> {
    match cmd {
        RulesCommand::List(args) => list(args),
        RulesCommand::Explain(args) => explain(args),
        RulesCommand::Check(args) => check(args),
    }
}

fn list(args: ListArgs) -> Result<Exit> {
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
                    Printable(&r.id),
                    r.transports_text(),
                    r.ports_text(),
                    r.app_protocol,
                    flags_text(r),
                    Printable(or_dash(client_of(r))),
                    Printable(or_dash(listener_of(r))),
                )?;
            }
            writeln!(out, "{} rules", rules.len())?;
        }
        Ok(())
    })?;
    Ok(Exit::Success)
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
    /// With `--site`: the systems of each end, `["unknown"]` outside the inventory.
    #[serde(skip_serializing_if = "Option::is_none")]
    src_roles: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_roles: Option<Vec<&'static str>>,
    profile: Product,
    multicast: bool,
    same_host: bool,
    verdict: Verdict,
    severity: portmatrix::verdict::Severity,
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

fn explain(args: ExplainArgs) -> Result<Exit> {
    let classifier = super::site::classifier(&args.matrix, &args.site, true)?;
    let matrix = classifier.matrix();
    let product = args.matrix.profile;
    let (transport, port) = args.target;
    let query = FlowQuery {
        transport,
        port,
        multicast: args.dst.is_multicast(),
        same_host: args.src == args.dst,
        client: args.src,
        server: args.dst,
        vlan: args.vlan,
    };
    let c = classifier.classify(query);
    let (listed, deciding) = classifier.event_rules(c.decision, query.same_host);
    let roles = classifier.roles_of(c.decision);
    let ids = |list: &[RuleIdx]| -> Vec<&str> {
        list.iter().map(|&i| matrix.rule(i).id.as_str()).collect()
    };
    let rules: Vec<MatchedRule<'_>> = listed
        .iter()
        .enumerate()
        .map(|(n, &i)| MatchedRule {
            status: match c.verdict {
                Verdict::WrongTransport | Verdict::RoleMismatch => c.verdict,
                _ => rule_status(matrix.rule(i), product, query.same_host),
            },
            deciding: n < deciding,
            rule: matrix.rule(i),
        })
        .collect();
    let not_applied: Vec<NotApplied<'_>> = matrix
        .rules()
        .iter()
        .enumerate()
        .filter(|(i, r)| r.covers_port(port) && !listed.contains(&(*i as RuleIdx)))
        .map(|(_, r)| NotApplied {
            id: &r.id,
            reason: why_not(r, transport, query.multicast, roles, &args),
        })
        .collect();
    let e = Explanation {
        transport,
        port,
        src_ip: args.src,
        dest_ip: args.dst,
        src_roles: roles.map(|(c, _)| role_names(c)),
        dest_roles: roles.map(|(_, s)| role_names(s)),
        profile: product,
        multicast: query.multicast,
        same_host: query.same_host,
        verdict: c.verdict,
        severity: c.severity,
        rule_ids: ids(&listed),
        deciding_rule_ids: ids(&listed[..deciding]),
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
    Ok(Exit::Success)
}

/// Why a rule on the flow's port is not among its rules.
fn why_not(
    r: &Rule,
    transport: Transport,
    multicast: bool,
    roles: Option<(SystemSet, SystemSet)>,
    args: &ExplainArgs,
) -> String {
    let named = |ip: &IpAddr, roles: SystemSet| {
        if roles.is_empty() {
            format!("{ip} is not in the site inventory")
        } else {
            format!("{ip} is {}", roles.text())
        }
    };
    if !r.has_transport(transport) {
        format!("documented for {} only", r.transports_text())
    } else if !r.cast.admits(multicast) {
        if multicast {
            "documented for unicast destinations only".into()
        } else {
            "documented for multicast destinations only".into()
        }
    } else if let Some((client, server)) = roles.filter(|&(c, s)| !rule_fits(r, c, s)) {
        if rule_fits(r, SystemSet::EMPTY, server) {
            format!(
                "the client must be {}; {}",
                r.client_systems.text(),
                named(&args.src, client)
            )
        } else {
            format!(
                "the listener must be {}; {}",
                r.listener_systems.text(),
                named(&args.dst, server)
            )
        }
    } else if r.needs_roles {
        "applies only when a site inventory gives the hosts' roles (--site)".into()
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
    if let (Some(src), Some(dst)) = (&e.src_roles, &e.dest_roles) {
        writeln!(out, "roles:    {} -> {}", src.join(", "), dst.join(", "))?;
    }
    writeln!(out, "verdict:  {} (severity {})", e.verdict, e.severity)?;
    if e.rules.is_empty() {
        writeln!(out, "no rule documents this port on tcp or udp")?;
    }
    let deciding_title = if e.verdict == Verdict::RoleMismatch {
        "rules that would allow it between the right systems"
    } else {
        "deciding rules"
    };
    for (title, deciding) in [
        (deciding_title, true),
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
                Printable(&r.id),
                r.transports_text(),
                r.ports_text(),
                Printable(or_dash(client_of(r))),
                Printable(or_dash(listener_of(r))),
                flags_text(r),
                m.status
            )?;
            writeln!(
                out,
                "             systems: {} -> {}",
                r.client_systems.text(),
                r.listener_systems.text()
            )?;
            if !r.description.is_empty() {
                writeln!(out, "             \"{}\"", Printable(&r.description))?;
            }
            if let Some(replaced) = &r.replaced_by {
                writeln!(out, "             replaced by: {}", Printable(replaced))?;
            }
            if let Some(note) = &r.note {
                writeln!(out, "             note: {}", Printable(note))?;
            }
        }
    }
    if !e.not_applied.is_empty() {
        writeln!(out, "on this port, not applied:")?;
        for n in &e.not_applied {
            writeln!(out, "  {:<10} {}", Printable(n.id), n.reason)?;
        }
    }
    Ok(())
}

fn check(args: CheckArgs) -> Result<Exit> {
    let mut failed = false;
    let mut parsed: Vec<RulesFile> = Vec::new();
    if !args.no_default_rules {
        parsed.push(
            parse_rules(BUILTIN_ORIGIN, BUILTIN_RULES).map_err(|problems| {
                ConfigError::Invalid {
                    kind: FileKind::Rules,
                    problems,
                }
            })?,
        );
    }
    write_stdout("the check results", |out| {
        for path in &args.files {
            match read_rules_file(path) {
                Ok(file) => {
                    writeln!(out, "{}: ok, {} rules", path.display(), file.rules.len())?;
                    parsed.push(file);
                }
                Err(ConfigError::Invalid {
                    problems: errors, ..
                }) => {
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
        if let Err(ConfigError::Invalid {
            problems: errors, ..
        }) = PortMatrix::from_files(std::mem::take(&mut parsed))
        {
            failed = true;
            for e in &errors {
                writeln!(out, "{e}")?;
            }
        }
        Ok(())
    })?;
    Ok(if failed {
        Exit::Incomplete
    } else {
        Exit::Success
    })
}
