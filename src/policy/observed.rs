//! What the events show each rule was used for: every flow classified again
//! with the site (as `analyze --site` would) and counted on the rules that
//! decide it, per transport and per pair of systems.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use super::Side;
use crate::classify::{rule_status, Classifier, FlowQuery};
use crate::matrix::{Rule, RuleIdx, System, SystemSet};
use crate::report::FlowRecord;
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Verdict;

/// Multicast groups kept per line; beyond them the line opens the whole
/// multicast block, so spoofed group traffic cannot grow memory or the policy.
pub const MAX_GROUPS: usize = 256;

/// The key of one allowed line: rule, transport, client side, listener side.
pub type LineKey = (RuleIdx, Transport, Side, Side);

/// How much one line was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub flows: u64,
    pub first: Timestamp,
    pub last: Timestamp,
    /// The multicast groups its flows went to (multicast lines only).
    pub groups: BTreeSet<IpAddr>,
    /// More than [`MAX_GROUPS`] groups: the line keeps the whole block.
    pub groups_overflow: bool,
}

impl Usage {
    fn new(r: &FlowRecord) -> Usage {
        Usage {
            flows: 0,
            first: r.first,
            last: r.last,
            groups: BTreeSet::new(),
            groups_overflow: false,
        }
    }

    fn add(&mut self, r: &FlowRecord, group: Option<IpAddr>) {
        self.flows += 1;
        self.first = self.first.min(r.first);
        self.last = self.last.max(r.last);
        if let Some(g) = group {
            if self.groups.len() < MAX_GROUPS || self.groups.contains(&g) {
                self.groups.insert(g);
            } else {
                self.groups_overflow = true;
            }
        }
    }

    /// Two lines' use together (for a rule's total).
    pub fn merge(&mut self, other: &Usage) {
        self.flows += other.flows;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

/// How the flows of the events were used, in counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub flows: u64,
    /// Flows that a line of the policy lets through.
    pub opened: u64,
    /// Both ends the same address: they never cross a firewall.
    pub same_host: u64,
    /// Documented flows with an end the inventory does not name, on a rule
    /// that names its systems: the policy opens nothing for them.
    pub outside_inventory: u64,
    /// The other flows, by the verdict they get with this site (a flow the
    /// events call `protocol_mismatch` keeps that verdict).
    pub not_opened: BTreeMap<Verdict, u64>,
    pub span: Option<(Timestamp, Timestamp)>,
}

/// The use of every line, built flow by flow.
#[derive(Debug, Default)]
pub struct Observed {
    lines: HashMap<LineKey, Usage>,
    pub tally: Tally,
}

impl Observed {
    pub fn usage(&self, key: &LineKey) -> Option<&Usage> {
        self.lines.get(key)
    }

    /// Count one flow. `classifier` must hold the site the policy is for.
    pub fn add(&mut self, classifier: &Classifier, r: &FlowRecord) {
        let t = &mut self.tally;
        t.flows += 1;
        t.span = Some(match t.span {
            None => (r.first, r.last),
            Some((a, b)) => (a.min(r.first), b.max(r.last)),
        });
        let (client, server) = (r.client.0, r.server.0);
        if client == server {
            t.same_host += 1;
            return;
        }
        if r.verdict == Verdict::ProtocolMismatch {
            *t.not_opened.entry(Verdict::ProtocolMismatch).or_default() += 1;
            return;
        }
        let multicast = server.is_multicast();
        let c = classifier.classify(FlowQuery {
            transport: r.transport,
            port: r.server.1,
            multicast,
            same_host: false,
            client,
            server,
            vlan: r.vlan,
        });
        let verdict = c.verdict;
        let Some((client_roles, server_roles)) = classifier.roles_of(c.decision) else {
            return;
        };
        let matrix = classifier.matrix();
        let product = classifier.product();
        let mut attributed = false;
        let lines = &mut self.lines;
        classifier.visit_rules(c.decision, false, |i, decides| {
            let rule = matrix.rule(i);
            if !decides || rule_status(rule, product, false) != verdict {
                return;
            }
            let clients = client_sides(rule, client_roles);
            let listeners = listener_sides(rule, server_roles, multicast);
            for &cs in &clients {
                for &ls in &listeners {
                    attributed = true;
                    lines
                        .entry((i, r.transport, cs, ls))
                        .or_insert_with(|| Usage::new(r))
                        .add(r, multicast.then_some(server));
                }
            }
        });
        let opens = matches!(verdict, Verdict::Documented | Verdict::ClosedByDefault);
        match (opens, attributed) {
            (true, true) => t.opened += 1,
            (true, false) => t.outside_inventory += 1,
            (false, _) => *t.not_opened.entry(verdict).or_default() += 1,
        }
    }
}

/// The client sides of `rule` a host with `roles` takes: `any`, or each of
/// the rule's client systems the host has.
fn client_sides(rule: &Rule, roles: SystemSet) -> Vec<Side> {
    if rule.client_systems.is_any() {
        return vec![Side::Any];
    }
    systems_in(rule.client_systems, roles)
}

fn listener_sides(rule: &Rule, roles: SystemSet, multicast: bool) -> Vec<Side> {
    if multicast {
        vec![Side::Multicast]
    } else if rule.listener_systems.is_any() {
        vec![Side::Any]
    } else {
        systems_in(rule.listener_systems, roles)
    }
}

fn systems_in(wanted: SystemSet, roles: SystemSet) -> Vec<Side> {
    wanted
        .iter()
        .filter(|s| roles.contains(*s))
        .map(Side::System)
        .collect()
}

/// Every side a rule can have in a site with the systems `present`.
pub(super) fn possible_sides(rule: &Rule, present: SystemSet) -> (Vec<Side>, Vec<Side>) {
    let clients = if rule.client_systems.is_any() {
        vec![Side::Any]
    } else {
        systems_in(rule.client_systems, present)
    };
    let mut listeners = Vec::new();
    if rule.cast.admits(false) {
        if rule.listener_systems.is_any() {
            listeners.push(Side::Any);
        } else {
            listeners.extend(systems_in(rule.listener_systems, present));
        }
    }
    // A group's receivers must be systems of the site too (any for RSM).
    let receivers = rule.listener_systems.is_any() || rule.listener_systems.intersects(present);
    if rule.cast.admits(true) && receivers {
        listeners.push(Side::Multicast);
    }
    (clients, listeners)
}

/// The system of a side, if it names one.
pub(super) fn system_of(side: Side) -> Option<System> {
    match side {
        Side::System(s) => Some(s),
        Side::Any | Side::Multicast => None,
    }
}
