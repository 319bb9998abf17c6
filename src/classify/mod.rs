//! (flow, port matrix) -> verdict, with the rules that explain it.
//!
//! [`Classifier::new`] resolves every (transport, unicast/multicast, port) once,
//! from the matrix's interval index, into a dense table of shared decisions.
//! A lookup is then two array reads: no allocation, and its cost does not
//! depend on how many rules there are. `rules explain` and flow classification
//! both call [`Classifier::classify`], so they cannot disagree.
//!
//! With a site inventory ([`Classifier::with_site`]) a second step follows the
//! port lookup: both ends are looked up in the inventory (a binary search
//! each) and only the rules whose client and listening systems fit the hosts'
//! roles count (see [`roles`]). The flow keeps the hosts' role classes in its
//! [`DecisionId`], so its events show the same rules and roles later.

mod app;
mod roles;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

pub use app::{AppCheck, AppExpectation};

use crate::matrix::{DefaultState, PortMatrix, Product, Rule, RuleIdx, Segment, SystemSet};
use crate::site::{DeviationQuery, ExceptionMatch, RoleClass, Site};
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::{Severities, Severity, Verdict};
pub use roles::rule_fits;
use roles::SiteIndex;

/// What the classifier needs to know about a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowQuery {
    pub transport: Transport,
    /// The listening side's port (the flow's `dest_port`).
    pub port: u16,
    /// The listening side's address is multicast (224.0.0.0/4, ff00::/8).
    pub multicast: bool,
    /// Both ends are the same host: the traffic never crossed the wire.
    pub same_host: bool,
    /// The client's address: the site inventory's key for its roles.
    pub client: IpAddr,
    /// The listening side's address.
    pub server: IpAddr,
    /// The flow's VLAN (the first packet's outer tag): site entries may be
    /// bound to VLANs.
    pub vlan: Option<u16>,
}

/// The verdict for a flow and the rules behind it, borrowed from the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'a> {
    pub verdict: Verdict,
    pub severity: Severity,
    /// Every rule that matched; the deciding ones first (see [`Self::deciding`]).
    pub rule_ids: &'a [RuleIdx],
    /// A handle to get `rule_ids` back later from [`Classifier::rule_ids`]:
    /// flows keep this instead of a borrow.
    pub decision: DecisionId,
    deciding: usize,
}

/// A copyable handle to a classifier's decision: the rules that matched the
/// port, and with a site the rules needing roles there and the two hosts'
/// role classes. Eight bytes; flows keep it instead of a borrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DecisionId {
    /// Index of the port's decision; `u32`: a large rules file may give
    /// every port of every kind a rule set of its own.
    port: u32,
    role_only: u16,
    client: RoleClass,
    server: RoleClass,
}

impl<'a> Classification<'a> {
    /// The most specific matching rules: the ones the verdict was decided on.
    pub fn deciding(&self) -> &'a [RuleIdx] {
        &self.rule_ids[..self.deciding]
    }
}

/// One resolved outcome, shared by every port on which the same rules match.
#[derive(Debug)]
struct Decision {
    cross_host: Verdict,
    same_host: Verdict,
    rules: Box<[RuleIdx]>,
    deciding: usize,
    /// `rules[..singles]` match by a single port, the rest by a range: the
    /// site step needs the split even where the verdict does not.
    singles: usize,
}

/// The compiled matrix for one product: immutable, cheap to share across threads.
#[derive(Debug)]
pub struct Classifier {
    matrix: Arc<PortMatrix>,
    product: Product,
    severities: Severities,
    /// `[transport][multicast][port]` -> index into `decisions`. `u32`: every
    /// port of every kind may have a rule set of its own (262,144 and the
    /// wrong-transport ones), more than `u16` can number.
    table: Box<[u32]>,
    decisions: Vec<Decision>,
    /// Per decision: which payload protocols its deciding rules allow.
    apps: Vec<AppExpectation>,
    /// The inventory and what the role step needs; `None` without `--site`.
    site: Option<SiteIndex>,
    /// `[transport][port]`: what the port says of a unicast listener, for
    /// telling client from server (see [`PortClaim`]).
    claims: Box<[PortClaim]>,
}

/// What a port alone says about whether the host using it listens; the
/// stronger claim of a flow's two ports names the listener, when only one
/// side has it (see `flow::orient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortClaim {
    None,
    /// Only inside ranges wider than [`crate::matrix::WIDE_RANGE`] ports (the
    /// RTP media ranges): clients' ephemeral ports fall there by chance too.
    WideRange,
    /// A system port (below 1024) that no rule documents.
    SystemPort,
    /// A rule documents a listener on this port alone or in a narrow range.
    Documented,
}

impl PortClaim {
    /// A claim that outweighs a wide range or no claim at all.
    pub fn is_strong(self) -> bool {
        self >= PortClaim::SystemPort
    }
}

const PORTS: usize = 1 << 16;

fn claim_slot(transport: Transport, port: u16) -> usize {
    (transport.index() * PORTS) | usize::from(port)
}

fn slot(transport: Transport, multicast: bool, port: u16) -> usize {
    ((transport.index() * 2 + usize::from(multicast)) * PORTS) | usize::from(port)
}

impl Classifier {
    /// Classification by port alone.
    pub fn new(matrix: Arc<PortMatrix>, product: Product) -> Classifier {
        Classifier::with_site(matrix, product, None)
    }

    /// With a site inventory, flows are also checked against the systems of
    /// their two ends, and the site's severities apply on top of the rules'.
    pub fn with_site(
        matrix: Arc<PortMatrix>,
        product: Product,
        site: Option<Arc<Site>>,
    ) -> Classifier {
        let mut table = vec![0u32; 4 * PORTS].into_boxed_slice();
        let mut claims = vec![PortClaim::None; 2 * PORTS].into_boxed_slice();
        let mut decisions = vec![Decision {
            cross_host: Verdict::Undocumented,
            same_host: Verdict::Undocumented,
            rules: Box::new([]),
            deciding: 0,
            singles: 0,
        }];
        type Key = (Verdict, Verdict, Vec<RuleIdx>, usize, usize);
        let mut interned: HashMap<Key, u32> = HashMap::new();
        let mut intern = |d: Decision, decisions: &mut Vec<Decision>| -> u32 {
            let key = (
                d.cross_host,
                d.same_host,
                d.rules.to_vec(),
                d.deciding,
                d.singles,
            );
            *interned.entry(key).or_insert_with(|| {
                decisions.push(d);
                // At most one decision per segment, and segments are ports:
                // 6 x 65,536 at the very most.
                (decisions.len() - 1) as u32
            })
        };

        // Pass 1: ports some rule covers on this very transport.
        for transport in Transport::ALL {
            for multicast in [false, true] {
                for seg in matrix.segments(transport, multicast) {
                    if seg.rules.is_empty() {
                        continue;
                    }
                    let idx = intern(decide(&matrix, product, &seg), &mut decisions);
                    for port in seg.lo..=seg.hi {
                        table[slot(transport, multicast, port)] = idx;
                    }
                    if !multicast {
                        // Ranges do not split inside a segment: its first port speaks for all.
                        let narrow = seg
                            .rules
                            .iter()
                            .any(|&i| !matrix.rule(i).is_wide_at(seg.lo));
                        let claim = if narrow {
                            PortClaim::Documented
                        } else {
                            PortClaim::WideRange
                        };
                        for port in seg.lo..=seg.hi {
                            claims[claim_slot(transport, port)] = claim;
                        }
                    }
                }
            }
        }
        // Pass 2: uncovered ports that the other transport documents. Wide ranges
        // (the RTP media ranges) do not count: they would make every TCP port in
        // 6000-32599 `wrong_transport` instead of `undocumented`.
        for transport in Transport::ALL {
            let listeners = matrix.narrow_segments(transport.other());
            for multicast in [false, true] {
                for seg in listeners.iter().filter(|s| !s.rules.is_empty()) {
                    let mut idx = None;
                    for port in seg.lo..=seg.hi {
                        if table[slot(transport, multicast, port)] != 0 {
                            continue;
                        }
                        // Documented on this transport for the other kind of
                        // destination: a multicast flow to a unicast port (or the
                        // reverse) is undocumented, not the wrong transport.
                        let same_transport =
                            &decisions[table[slot(transport, !multicast, port)] as usize];
                        if !same_transport.rules.is_empty()
                            && same_transport.cross_host != Verdict::WrongTransport
                        {
                            continue;
                        }
                        let idx = *idx.get_or_insert_with(|| {
                            let mut rules = seg.rules.clone();
                            rules.sort_unstable();
                            let deciding = rules.len();
                            let d = Decision {
                                cross_host: Verdict::WrongTransport,
                                same_host: Verdict::WrongTransport,
                                rules: rules.into_boxed_slice(),
                                deciding,
                                singles: 0,
                            };
                            intern(d, &mut decisions)
                        });
                        table[slot(transport, multicast, port)] = idx;
                    }
                }
            }
        }
        let apps = decisions
            .iter()
            .map(|d| {
                let deciding = d.rules.get(..d.deciding).unwrap_or_default();
                AppExpectation::of(
                    deciding
                        .iter()
                        .map(|&i| matrix.rule(i).app_protocol.as_str()),
                )
            })
            .collect();
        let mut severities = matrix.severities();
        for &(verdict, severity) in site.iter().flat_map(|s| &s.severities) {
            severities.set(verdict, severity);
        }
        for transport in Transport::ALL {
            for port in 0..1024 {
                let claim = &mut claims[claim_slot(transport, port)];
                *claim = (*claim).max(PortClaim::SystemPort);
            }
        }
        let site = site.map(|s| SiteIndex::new(s, &matrix));
        Classifier {
            matrix,
            product,
            severities,
            table,
            decisions,
            apps,
            site,
            claims,
        }
    }

    /// The verdict a flow gets. No allocation; by port alone it is two array
    /// reads, with a site two binary searches more and a pass over the few
    /// rules of the port.
    pub fn classify(&self, q: FlowQuery) -> Classification<'_> {
        let id = self.table[slot(q.transport, q.multicast, q.port)];
        let d = &self.decisions[id as usize];
        let (decision, verdict) = match &self.site {
            None => {
                let verdict = if q.same_host {
                    d.same_host
                } else {
                    d.cross_host
                };
                (
                    DecisionId {
                        port: id,
                        ..DecisionId::default()
                    },
                    verdict,
                )
            }
            Some(site) => {
                let decision = site.decision(id, &q);
                (decision, self.visit_rules(decision, q.same_host, |_, _| {}))
            }
        };
        Classification {
            verdict,
            severity: self.severities.of(verdict),
            rule_ids: &d.rules,
            decision,
            deciding: d.deciding,
        }
    }

    /// The payload protocols a flow with this decision may carry.
    pub fn app_expectation(&self, decision: DecisionId) -> AppExpectation {
        self.apps
            .get(decision.port as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The severity of a verdict (with the rules files' overrides).
    pub fn severity(&self, verdict: Verdict) -> Severity {
        self.severities.of(verdict)
    }

    /// The rules the port alone matched for a decision taken earlier (every
    /// matching rule, the deciding ones first). With a site, events show
    /// [`Classifier::event_rules`] instead.
    pub fn rule_ids(&self, decision: DecisionId) -> &[RuleIdx] {
        self.decisions
            .get(decision.port as usize)
            .map_or(&[], |d| &d.rules)
    }

    /// The rules an event names for a decision, the deciding ones first, and
    /// how many decide: by port alone, the port's rules; with a site, the
    /// rules whose systems fit the two hosts, or, for `role_mismatch`, every
    /// rule of the port (the rules that would allow the flow between the
    /// right systems).
    pub fn event_rules(&self, decision: DecisionId, same_host: bool) -> (Vec<RuleIdx>, usize) {
        let mut rules = Vec::new();
        let mut deciding = 0;
        self.visit_rules(decision, same_host, |i, decides| {
            rules.push(i);
            deciding += usize::from(decides);
        });
        (rules, deciding)
    }

    /// Call `visit` with each rule [`Classifier::event_rules`] lists (and
    /// whether it decides), without allocating; returns the verdict. The one
    /// place the site step is decided, for flows and their events alike.
    pub fn visit_rules(
        &self,
        decision: DecisionId,
        same_host: bool,
        mut visit: impl FnMut(RuleIdx, bool),
    ) -> Verdict {
        let Some(d) = self.decisions.get(decision.port as usize) else {
            return Verdict::Undocumented;
        };
        let by_port = |visit: &mut dyn FnMut(RuleIdx, bool)| {
            for (n, &i) in d.rules.iter().enumerate() {
                visit(i, n < d.deciding);
            }
            if same_host {
                d.same_host
            } else {
                d.cross_host
            }
        };
        let Some(site) = &self.site else {
            return by_port(&mut visit);
        };
        // Rules of the other transport (`wrong_transport`) never fit roles.
        let own: &[RuleIdx] = if d.cross_host == Verdict::WrongTransport {
            &[]
        } else {
            &d.rules
        };
        let fit = site.fitting(&self.matrix, decision, own, d.singles);
        if fit.is_empty() {
            if own.is_empty() {
                return by_port(&mut visit);
            }
            for &i in own {
                visit(i, true);
            }
            return Verdict::RoleMismatch;
        }
        let mut documented = false;
        let mut worst = Verdict::Documented;
        fit.for_each(|i, decides| {
            visit(i, decides);
            if decides {
                let s = rule_status(self.matrix.rule(i), self.product, same_host);
                documented |= s == Verdict::Documented;
                if s.precedence() > worst.precedence() {
                    worst = s;
                }
            }
        });
        if documented {
            Verdict::Documented
        } else {
            worst
        }
    }

    /// How the site's exceptions apply to a flow given `verdict` on
    /// `decision`, which started at `start`: decided with the verdict, so
    /// that output only reads it. Without a site, or for a documented flow,
    /// nothing to do; the flow's rules are visited (no allocation) only for
    /// an exception that names a rule and fits otherwise.
    pub fn exception(
        &self,
        q: &FlowQuery,
        verdict: Verdict,
        decision: DecisionId,
        start: Timestamp,
    ) -> ExceptionMatch {
        let Some(site) = self.site() else {
            return ExceptionMatch::None;
        };
        if site.exceptions.is_empty() || verdict == Verdict::Documented {
            return ExceptionMatch::None;
        }
        let has_rule = |rule| {
            let mut found = false;
            self.visit_rules(decision, q.same_host, |i, _| found |= i == rule);
            found
        };
        site.exception_for(&DeviationQuery {
            transport: q.transport,
            client: q.client,
            server: q.server,
            port: q.port,
            verdict,
            start,
            has_rule: &has_rule,
        })
    }

    /// The roles of a flow's two ends (client, listener), when a site is
    /// loaded: empty sets for hosts not in the inventory.
    pub fn roles_of(&self, decision: DecisionId) -> Option<(SystemSet, SystemSet)> {
        self.site
            .as_ref()
            .map(|s| (s.roles(decision.client), s.roles(decision.server)))
    }

    /// The site inventory, if one is loaded.
    pub fn site(&self) -> Option<&Site> {
        self.site.as_ref().map(SiteIndex::site)
    }

    /// What a unicast port says about its host listening: used to tell
    /// client from server where no handshake or payload did.
    pub fn port_claim(&self, transport: Transport, port: u16) -> PortClaim {
        self.claims[claim_slot(transport, port)]
    }

    pub fn matrix(&self) -> &PortMatrix {
        &self.matrix
    }

    pub fn product(&self) -> Product {
        self.product
    }

    pub fn severities(&self) -> Severities {
        self.severities
    }
}

/// Resolve the rules that all match one segment: single-port rules are more
/// specific than ranges; among the most specific, one documenting rule makes
/// the flow `documented`, otherwise the most severe reading wins.
fn decide(matrix: &PortMatrix, product: Product, seg: &Segment) -> Decision {
    // The segment lists the single-port matches first.
    let deciding = if seg.singles == 0 {
        seg.rules.len()
    } else {
        seg.singles
    };
    let decisive = &seg.rules[..deciding];
    let resolve = |same_host: bool| {
        let statuses = decisive
            .iter()
            .map(|&i| rule_status(matrix.rule(i), product, same_host));
        let mut worst = Verdict::Documented;
        for s in statuses {
            if s == Verdict::Documented {
                return Verdict::Documented;
            }
            if s.precedence() > worst.precedence() {
                worst = s;
            }
        }
        worst
    };
    Decision {
        cross_host: resolve(false),
        same_host: resolve(true),
        rules: seg.rules.clone().into_boxed_slice(),
        deciding,
        singles: seg.singles,
    }
}

/// What one matching rule alone would make of a flow.
pub fn rule_status(rule: &Rule, product: Product, same_host: bool) -> Verdict {
    if rule.internal_only && !same_host {
        Verdict::InternalOnly
    } else if rule.deprecated {
        Verdict::Deprecated
    } else if !rule.profile.applies_to(product) {
        Verdict::OutOfProfile
    } else if rule.default_state == DefaultState::Closed {
        Verdict::ClosedByDefault
    } else {
        Verdict::Documented
    }
}

#[cfg(test)]
mod tests;
