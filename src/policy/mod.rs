//! `portmatrix policy`: the least-privilege firewall rules for a site, from
//! the matrix, the site inventory and (optionally) the flows that were seen.
//!
//! ```text
//! matrix + site (+ events, each flow classified again with the site)
//!   -> Policy: lines to allow, rules to close, rules kept closed, with why
//!   -> nft | windows | csv
//! ```
//!
//! A *line* is one rule, one transport, one client side and one listener
//! side: "agent_desktop -> aacc_server, tcp/443, by 2.2.2#28". Sides are the
//! site's systems (their addresses come from the inventory, longest prefix
//! applied), `any` where the document names no system, or the multicast
//! groups. The three renderers write the same lines, so a change ticket
//! (csv), a Linux host or router (nft) and the Windows servers get one policy.

mod addresses;
mod csv;
mod nft;
mod observed;
mod windows;

use std::collections::BTreeMap;

pub use addresses::{Addresses, Family};
pub use csv::{write_csv, CSV_POLICY_HEADER};
pub use nft::{write_nft, Hook};
pub use observed::{LineKey, Observed, Tally, Usage, MAX_GROUPS};
pub use windows::{rule_name, windows_sections, write_windows, WINDOWS_SYSTEMS};

use crate::classify::rule_status;
use crate::matrix::{PortMatrix, Product, Rule, RuleIdx, System, SystemSet};
use crate::site::Site;
use crate::verdict::Verdict;
use observed::{possible_sides, system_of};

/// One side of an allowed flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The document names no system: any address.
    Any,
    /// The addresses the site gives this system.
    System(System),
    /// A multicast group (the listener side of RSM and RTD statistics).
    Multicast,
}

impl Side {
    /// `any`, `aacc_server`, `multicast`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Any => "any",
            Side::System(s) => s.as_str(),
            Side::Multicast => "multicast",
        }
    }
}

/// One allowed line of the policy.
#[derive(Debug, Clone)]
pub struct Line<'m> {
    pub idx: RuleIdx,
    pub rule: &'m Rule,
    pub transport: crate::transport::Transport,
    pub client: Side,
    pub listener: Side,
    /// With events: how the line was used (every line kept then was used).
    pub seen: Option<Usage>,
    /// The rule is closed by default: opened only because flows used it.
    pub closed_by_default: bool,
}

/// Why a rule of the site's systems is not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// INTERNAL ONLY: the document keeps it on the host (loopback).
    InternalOnly,
    /// Removed, changed or to be closed by the document.
    Deprecated,
    /// A rule of the other product (`--profile`).
    OutOfProfile,
    /// Closed on a fresh installation, and no flow used it.
    ClosedByDefault,
    /// Its only pairs are one host talking to itself.
    OneHost,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InternalOnly => "internal_only",
            Reason::Deprecated => "deprecated",
            Reason::OutOfProfile => "out_of_profile",
            Reason::ClosedByDefault => "closed_by_default",
            Reason::OneHost => "one_host",
        }
    }

    /// For people, in the renderers' comments.
    pub fn text(self) -> &'static str {
        match self {
            Reason::InternalOnly => {
                "INTERNAL ONLY: stays on the host itself, never opened between hosts"
            }
            Reason::Deprecated => "deprecated by the document: close it",
            Reason::OutOfProfile => "a rule of the other product (see --profile)",
            Reason::ClosedByDefault => "closed by default, and no flow used it",
            Reason::OneHost => "the site has one host of this system: its flows stay on that host",
        }
    }
}

/// A rule of the site's systems that the policy does not open.
#[derive(Debug, Clone)]
pub struct Shut<'m> {
    pub rule: &'m Rule,
    pub reason: Reason,
    /// With events: the flows that used it anyway.
    pub seen: Option<Usage>,
}

/// The policy for one site.
#[derive(Debug)]
pub struct Policy<'m> {
    pub matrix: &'m PortMatrix,
    pub product: Product,
    /// The site file, for the header.
    pub site: String,
    /// The systems the site gives addresses to.
    pub present: SystemSet,
    /// The addresses of every system a line names.
    pub addresses: BTreeMap<System, Addresses>,
    pub allow: Vec<Line<'m>>,
    /// With events: open, current rules of the site's systems that no flow
    /// used. Their ids go to the change ticket as "to close".
    pub to_close: Vec<&'m Rule>,
    pub shut: Vec<Shut<'m>>,
    /// Rules none of whose systems the site has (on one side at least).
    pub not_in_site: usize,
    /// With events: what they held.
    pub tally: Option<Tally>,
}

/// A policy that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the site {site} names no system that a rule of the matrix allows on both sides \
         (its systems: {systems}): there is nothing to allow; list the servers under [systems] \
         (`portmatrix site suggest CAPTURE` drafts them) and check the file with `portmatrix site check`"
    )]
    NoSystems { site: String, systems: String },
}

impl<'m> Policy<'m> {
    /// The policy of `matrix` for `site`; with `observed`, only the lines the
    /// flows used (`observed` must come from a classifier with this site).
    pub fn build(
        matrix: &'m PortMatrix,
        product: Product,
        site: &Site,
        observed: Option<&Observed>,
    ) -> Result<Policy<'m>, PolicyError> {
        let ranges: BTreeMap<System, Addresses> = System::all()
            .map(|s| (s, Addresses::from_ranges(site.ranges_of(s))))
            .filter(|(_, a)| !a.is_empty())
            .collect();
        let present = SystemSet::of(ranges.keys().copied());
        let mut p = Policy {
            matrix,
            product,
            site: site.origin.clone(),
            present,
            addresses: BTreeMap::new(),
            allow: Vec::new(),
            to_close: Vec::new(),
            shut: Vec::new(),
            not_in_site: 0,
            tally: observed.map(|o| o.tally.clone()),
        };
        for (i, rule) in matrix.rules().iter().enumerate() {
            // At most MAX_RULES (10,000) rules: the index fits.
            let idx = i as RuleIdx;
            let (clients, listeners) = possible_sides(rule, present);
            if clients.is_empty() || listeners.is_empty() {
                p.not_in_site += 1;
                continue;
            }
            let mut lines = Vec::new();
            for &transport in &rule.transports {
                for &client in &clients {
                    for &listener in &listeners {
                        let one_host = client == listener
                            && system_of(client)
                                .and_then(|s| ranges.get(&s))
                                .is_some_and(Addresses::is_one_host);
                        if one_host {
                            continue;
                        }
                        let seen = observed
                            .and_then(|o| o.usage(&(idx, transport, client, listener)))
                            .cloned();
                        lines.push(Line {
                            idx,
                            rule,
                            transport,
                            client,
                            listener,
                            seen,
                            closed_by_default: false,
                        });
                    }
                }
            }
            let reason = match rule_status(rule, product, false) {
                Verdict::Documented => None,
                Verdict::InternalOnly => Some(Reason::InternalOnly),
                Verdict::Deprecated => Some(Reason::Deprecated),
                Verdict::OutOfProfile => Some(Reason::OutOfProfile),
                _ => Some(Reason::ClosedByDefault),
            };
            let total = total_use(&lines);
            if lines.is_empty() {
                p.shut.push(Shut {
                    rule,
                    reason: reason.unwrap_or(Reason::OneHost),
                    seen: None,
                });
                continue;
            }
            match (reason, observed.is_some()) {
                (None, false) => p.allow.extend(lines),
                (None, true) if total.is_none() => p.to_close.push(rule),
                (None, true) => p
                    .allow
                    .extend(lines.into_iter().filter(|l| l.seen.is_some())),
                (Some(Reason::ClosedByDefault), true) if total.is_some() => p.allow.extend(
                    lines
                        .into_iter()
                        .filter(|l| l.seen.is_some())
                        .map(|l| Line {
                            closed_by_default: true,
                            ..l
                        }),
                ),
                (Some(reason), _) => p.shut.push(Shut {
                    rule,
                    reason,
                    seen: total,
                }),
            }
        }
        if p.allow.is_empty() && p.to_close.is_empty() && p.shut.is_empty() {
            return Err(PolicyError::NoSystems {
                site: site.origin.clone(),
                systems: if present.is_empty() {
                    "none".into()
                } else {
                    present.text()
                },
            });
        }
        for line in &p.allow {
            for side in [line.client, line.listener] {
                if let Some(s) = system_of(side) {
                    if let Some(a) = ranges.get(&s) {
                        p.addresses.entry(s).or_insert_with(|| a.clone());
                    }
                }
            }
        }
        Ok(p)
    }

    /// The addresses of a side in one family: `None` for `any` (no match on
    /// addresses), the groups seen or the whole block for multicast.
    pub fn side_cidrs(&self, line: &Line<'_>, side: Side, f: Family) -> Option<Vec<String>> {
        match side {
            Side::Any => None,
            Side::System(s) => Some(
                self.addresses
                    .get(&s)
                    .map(|a| a.cidrs(f))
                    .unwrap_or_default(),
            ),
            Side::Multicast => Some(match &line.seen {
                Some(u) if !u.groups.is_empty() && !u.groups_overflow => {
                    Addresses::from_hosts(u.groups.iter().copied()).cidrs(f)
                }
                _ => vec![f.multicast().to_string()],
            }),
        }
    }

    /// The families a line can be written for: both sides have addresses in it.
    pub fn families(&self, line: &Line<'_>) -> Vec<Family> {
        Family::BOTH
            .into_iter()
            .filter(|&f| {
                [line.client, line.listener]
                    .into_iter()
                    .all(|side| self.side_cidrs(line, side, f).is_none_or(|c| !c.is_empty()))
            })
            .collect()
    }

    /// Lines no family can carry (a client with only IPv4 addresses and a
    /// listener with only IPv6): named in the renderers' comments.
    pub fn unreachable(&self) -> impl Iterator<Item = &Line<'m>> {
        self.allow.iter().filter(|l| self.families(l).is_empty())
    }

    /// Header lines every renderer writes as comments.
    pub fn header(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "portmatrix {} policy for the site {}",
                env!("CARGO_PKG_VERSION"),
                self.site
            ),
            format!(
                "from the port matrix ({} rules, profile {}){}",
                self.matrix.rules().len(),
                self.product.as_str(),
                match &self.tally {
                    Some(_) => ", only what the flows of the events used",
                    None => ": every open, current rule between the site's systems",
                }
            ),
        ];
        if let Some(t) = &self.tally {
            let span = t
                .span
                .map(|(a, b)| format!(" from {a} to {b}"))
                .unwrap_or_default();
            out.push(format!(
                "events: {} flows{span}; {} let through by these rules, {} between hosts outside \
                 the inventory, {} on one host, {} with other verdicts{}",
                t.flows,
                t.opened,
                t.outside_inventory,
                t.same_host,
                t.not_opened.values().sum::<u64>(),
                verdict_list(&t.not_opened)
            ));
        }
        out.push(format!(
            "{} lines allowed, {} rules to close, {} rules kept closed, {} rules name no system of the site",
            self.allow.len(),
            self.to_close.len(),
            self.shut.len(),
            self.not_in_site
        ));
        out
    }

    /// `seen 12 flows, last 2021-08-02T09:00:14.000000Z` or nothing.
    pub fn seen_text(seen: Option<&Usage>) -> String {
        match seen {
            Some(u) => format!(
                "seen {} flow{}, last {}",
                u.flows,
                if u.flows == 1 { "" } else { "s" },
                u.last
            ),
            None => String::new(),
        }
    }
}

/// ` (undocumented 9, role_mismatch 2)`, or nothing.
fn verdict_list(counts: &BTreeMap<Verdict, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    format!(" ({})", parts.join(", "))
}

/// The use of all the lines of a rule together.
fn total_use(lines: &[Line<'_>]) -> Option<Usage> {
    let mut total: Option<Usage> = None;
    for u in lines.iter().filter_map(|l| l.seen.as_ref()) {
        match &mut total {
            Some(t) => t.merge(u),
            None => total = Some(u.clone()),
        }
    }
    total
}

/// The document's words for a rule, on one line: its source and destination
/// cells and its description. Control characters become spaces (a rules file
/// may hold anything), so a comment cannot end early.
pub fn document_text(rule: &Rule) -> String {
    let text = format!(
        "{} -> {}: {}",
        cell(&rule.source),
        cell(&rule.destination),
        rule.description
    );
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn cell(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// `tcp/80`, `udp/6020,6030`, `udp/6000-32599`: a line's port as people write it.
pub fn port_text(line: &Line<'_>) -> String {
    let ports: Vec<String> = line
        .rule
        .listen_ports
        .iter()
        .map(|r| r.to_string())
        .collect();
    format!("{}/{}", line.transport, ports.join(","))
}

/// The rules not opened, as `#` comments (nft and PowerShell alike).
fn write_closed(out: &mut dyn std::io::Write, p: &Policy<'_>) -> std::io::Result<()> {
    if !p.to_close.is_empty() {
        writeln!(
            out,
            "\n# To close: open, current rules of the site's systems that no flow used:"
        )?;
        for rule in &p.to_close {
            writeln!(
                out,
                "#   {} {}/{}: {}",
                rule.id,
                rule.transports_text(),
                rule.ports_text(),
                document_text(rule)
            )?;
        }
    }
    if !p.shut.is_empty() {
        writeln!(out, "\n# Kept closed (rules of the site's systems):")?;
        for s in &p.shut {
            let seen = Policy::seen_text(s.seen.as_ref());
            writeln!(
                out,
                "#   {} {}/{}: {}{}",
                s.rule.id,
                s.rule.transports_text(),
                s.rule.ports_text(),
                s.reason.text(),
                if seen.is_empty() {
                    String::new()
                } else {
                    format!("; {seen}")
                }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
