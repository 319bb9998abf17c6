//! (flow, port matrix) -> verdict, with the rules that explain it.
//!
//! [`Classifier::new`] resolves every (transport, unicast/multicast, port) once,
//! from the matrix's interval index, into a dense table of shared decisions.
//! A lookup is then two array reads: no allocation, and its cost does not
//! depend on how many rules there are. `rules explain` and flow classification
//! both call [`Classifier::classify`], so they cannot disagree.

mod verdict;

use std::collections::HashMap;
use std::sync::Arc;

pub use verdict::{Severities, Severity, Verdict};

use crate::matrix::{DefaultState, PortMatrix, Product, Rule, RuleIdx};
use crate::transport::Transport;

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

/// A copyable handle to a classifier's decision (the rules that matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DecisionId(u16);

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
}

/// The compiled matrix for one product: immutable, cheap to share across threads.
#[derive(Debug)]
pub struct Classifier {
    matrix: Arc<PortMatrix>,
    product: Product,
    severities: Severities,
    /// `[transport][multicast][port]` -> index into `decisions`.
    table: Box<[u16]>,
    decisions: Vec<Decision>,
}

const PORTS: usize = 1 << 16;

fn slot(transport: Transport, multicast: bool, port: u16) -> usize {
    ((transport.index() * 2 + usize::from(multicast)) * PORTS) | usize::from(port)
}

impl Classifier {
    pub fn new(matrix: Arc<PortMatrix>, product: Product) -> Classifier {
        let mut table = vec![0u16; 4 * PORTS].into_boxed_slice();
        let mut decisions = vec![Decision {
            cross_host: Verdict::Undocumented,
            same_host: Verdict::Undocumented,
            rules: Box::new([]),
            deciding: 0,
        }];
        let mut interned: HashMap<(Verdict, Verdict, Vec<RuleIdx>, usize), u16> = HashMap::new();
        let mut intern = |d: Decision, decisions: &mut Vec<Decision>| -> u16 {
            let key = (d.cross_host, d.same_host, d.rules.to_vec(), d.deciding);
            *interned.entry(key).or_insert_with(|| {
                decisions.push(d);
                // Distinct rule sets are bounded by the number of segments (a few
                // per rule), far below u16::MAX for MAX_RULES rules.
                (decisions.len() - 1) as u16
            })
        };

        // Pass 1: ports some rule covers on this very transport.
        for transport in Transport::ALL {
            for multicast in [false, true] {
                for seg in matrix.segments(transport, multicast) {
                    if seg.rules.is_empty() {
                        continue;
                    }
                    let d = decide(&matrix, product, &seg.rules, seg.lo);
                    let idx = intern(d, &mut decisions);
                    for port in seg.lo..=seg.hi {
                        table[slot(transport, multicast, port)] = idx;
                    }
                }
            }
        }
        // Pass 2: uncovered ports that the other transport documents. Wide ranges
        // (the RTP media ranges) do not count: they would make every TCP port in
        // 6000-32599 `wrong_transport` instead of `undocumented`.
        for transport in Transport::ALL {
            let other = transport.other();
            for multicast in [false, true] {
                for port in 0..=u16::MAX {
                    if table[slot(transport, multicast, port)] != 0 {
                        continue;
                    }
                    // Documented on this transport for the other kind of
                    // destination: a multicast flow to a unicast port (or the
                    // reverse) is undocumented, not the wrong transport.
                    let same_transport =
                        &decisions[usize::from(table[slot(transport, !multicast, port)])];
                    if !same_transport.rules.is_empty()
                        && same_transport.cross_host != Verdict::WrongTransport
                    {
                        continue;
                    }
                    // Nothing documented on the other transport either (most
                    // ports): nothing to collect.
                    if table[slot(other, false, port)] == 0 && table[slot(other, true, port)] == 0 {
                        continue;
                    }
                    // Only rules of the other transport itself: its own pass-2
                    // entries point back at this transport's rules.
                    let mut rules: Vec<RuleIdx> = [false, true]
                        .iter()
                        .map(|&m| &decisions[usize::from(table[slot(other, m, port)])])
                        .filter(|d| d.cross_host != Verdict::WrongTransport)
                        .flat_map(|d| d.rules.iter())
                        .copied()
                        .filter(|&i| !matrix.rule(i).is_wide_at(port))
                        .collect();
                    if rules.is_empty() {
                        continue;
                    }
                    rules.sort_unstable();
                    rules.dedup();
                    let deciding = rules.len();
                    let d = Decision {
                        cross_host: Verdict::WrongTransport,
                        same_host: Verdict::WrongTransport,
                        rules: rules.into_boxed_slice(),
                        deciding,
                    };
                    table[slot(transport, multicast, port)] = intern(d, &mut decisions);
                }
            }
        }
        let severities = matrix.severities();
        Classifier {
            matrix,
            product,
            severities,
            table,
            decisions,
        }
    }

    /// The verdict a flow gets. Constant time, no allocation.
    pub fn classify(&self, q: FlowQuery) -> Classification<'_> {
        let id = self.table[slot(q.transport, q.multicast, q.port)];
        let d = &self.decisions[usize::from(id)];
        let verdict = if q.same_host {
            d.same_host
        } else {
            d.cross_host
        };
        Classification {
            verdict,
            severity: self.severities.of(verdict),
            rule_ids: &d.rules,
            decision: DecisionId(id),
            deciding: d.deciding,
        }
    }

    /// The rules of a decision taken earlier, every matching rule first-deciding.
    pub fn rule_ids(&self, decision: DecisionId) -> &[RuleIdx] {
        self.decisions
            .get(usize::from(decision.0))
            .map_or(&[], |d| &d.rules)
    }

    /// Whether the matrix documents a listener on this transport and port: used
    /// to tell client from server in flows picked up mid-stream.
    pub fn is_listening_port(&self, transport: Transport, port: u16, multicast: bool) -> bool {
        let d = &self.decisions[usize::from(self.table[slot(transport, multicast, port)])];
        !d.rules.is_empty() && d.cross_host != Verdict::WrongTransport
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

/// Resolve the rules that all match one port: single-port rules are more specific
/// than ranges; among the most specific, one documenting rule makes the flow
/// `documented`, otherwise the most severe reading wins.
fn decide(matrix: &PortMatrix, product: Product, matched: &[RuleIdx], port: u16) -> Decision {
    let (mut single, mut ranged): (Vec<RuleIdx>, Vec<RuleIdx>) = matched
        .iter()
        .partition(|&&i| matrix.rule(i).is_single_port_match(port));
    let deciding = if single.is_empty() {
        ranged.len()
    } else {
        single.len()
    };
    single.append(&mut ranged);
    let decisive = &single[..deciding];
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
        rules: single.into_boxed_slice(),
        deciding,
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
