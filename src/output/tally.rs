//! What the run counts from its flows as they end, after storm control and
//! before any printer: the matrix's coverage (flows per rule), the top
//! undocumented ports and hosts, one-sided flows, and what each site
//! exception did. The summary on stderr and the stats event report it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use crate::classify::Classifier;
use crate::flow::Flow;
use crate::matrix::RuleIdx;
use crate::site::{ExceptionMatch, Site};
use crate::transport::Transport;
use crate::verdict::Verdict;

use super::event::SuppressedStats;

/// The most hosts of one side counted per undocumented port: beyond it
/// a port ranks as used by this many (a bound on memory, far past a tie).
pub const DISTINCT_CAP: usize = 10_000;

/// Who used one undocumented destination port: a service many hosts use
/// ranks above a scan's one probe of many ports (as in the HTML report), so
/// the summary ranks by distinct clients, then servers, then flows.
#[derive(Debug, Default)]
pub struct PortUse {
    pub clients: HashSet<IpAddr>,
    pub servers: HashSet<IpAddr>,
    pub flows: u64,
}

impl PortUse {
    fn add(&mut self, client: IpAddr, server: IpAddr) {
        self.flows += 1;
        if self.clients.len() < DISTINCT_CAP {
            self.clients.insert(client);
        }
        if self.servers.len() < DISTINCT_CAP {
            self.servers.insert(server);
        }
    }

    /// Higher ranks first: distinct clients, then servers, then flows.
    pub fn rank(&self) -> (usize, usize, u64) {
        (self.clients.len(), self.servers.len(), self.flows)
    }
}

/// What the end-of-run summary reports, gathered from ended flows.
#[derive(Debug, Default)]
pub struct Summary {
    pub undocumented_ports: HashMap<(Transport, u16), PortUse>,
    pub undocumented_hosts: HashMap<IpAddr, u64>,
    /// Flows per rule (every rule that matched a flow).
    pub flows_per_rule: Vec<u64>,
    /// TCP flows seen in one direction only (see `Flow::one_sided`).
    pub one_sided: u64,
    /// Per site exception: (flows accepted, flows named after it expired).
    exceptions: Vec<(u64, u64)>,
}

impl Summary {
    pub(super) fn new(classifier: &Classifier) -> Summary {
        Summary {
            flows_per_rule: vec![0; classifier.matrix().rules().len()],
            exceptions: vec![(0, 0); classifier.site().map_or(0, |s| s.exceptions.len())],
            ..Summary::default()
        }
    }

    /// Count a flow that ended; `rules` are those its events name.
    pub(super) fn flow_ended(&mut self, flow: &Flow, rules: &[RuleIdx]) {
        for &i in rules {
            if let Some(n) = self.flows_per_rule.get_mut(usize::from(i)) {
                *n += 1;
            }
        }
        if flow.one_sided() {
            self.one_sided += 1;
        }
        if flow.verdict == Verdict::Undocumented {
            self.undocumented_ports
                .entry((flow.transport, flow.server.port))
                .or_default()
                .add(flow.client.ip, flow.server.ip);
            *self.undocumented_hosts.entry(flow.server.ip).or_default() += 1;
        }
        let counts = match flow.exception {
            ExceptionMatch::Suppressed(i) => {
                self.exceptions.get_mut(usize::from(i)).map(|c| &mut c.0)
            }
            ExceptionMatch::Expired(i) => self.exceptions.get_mut(usize::from(i)).map(|c| &mut c.1),
            ExceptionMatch::None => None,
        };
        if let Some(n) = counts {
            *n += 1;
        }
    }

    /// Per exception of `site` (the one the flows were judged with): the
    /// flows it accepted and those it named after it expired; `None` when
    /// the site lists no exception.
    pub(super) fn suppressed(&self, site: &Site) -> Option<BTreeMap<String, SuppressedStats>> {
        if site.exceptions.is_empty() {
            return None;
        }
        let per = site
            .exceptions
            .iter()
            .zip(&self.exceptions)
            .map(|(e, &(flows, expired_flows))| {
                (
                    e.id.clone(),
                    SuppressedStats {
                        flows,
                        expired_flows,
                        why: e.why.clone(),
                        until: e.until_text.clone(),
                    },
                )
            })
            .collect();
        Some(per)
    }
}
