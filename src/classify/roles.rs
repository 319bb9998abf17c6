//! The site step: which of a port's rules fit the roles of a flow's two ends.
//!
//! A rule fits when its listening systems include one of the listener's
//! roles and its client systems one of the client's. A side the rule leaves
//! open (`any`), or a host that is not in the inventory, is not checked: a
//! flow between two unknown hosts is judged by port alone. Rules that
//! document nothing by port alone (`needs_roles`, the H.323 range) are the
//! exception: they fit only a listener the inventory positively names.

use std::sync::Arc;

use super::{DecisionId, FlowQuery};
use crate::matrix::{PortMatrix, Rule, RuleIdx, SystemSet};
use crate::site::{RoleClass, Site};
use crate::transport::Transport;

/// Whether `rule` allows a flow from a host with roles `client` to one with
/// roles `server` (empty sets: not in the inventory).
pub fn rule_fits(rule: &Rule, client: SystemSet, server: SystemSet) -> bool {
    let side = |wanted: SystemSet, host: SystemSet| host.is_empty() || wanted.intersects(host);
    let listener = if rule.needs_roles {
        rule.listener_systems.intersects(server)
    } else {
        side(rule.listener_systems, server)
    };
    listener && side(rule.client_systems, client)
}

/// Rules matching a run of ports, the single-port matches first.
#[derive(Debug, Default)]
struct RuleSet {
    rules: Box<[RuleIdx]>,
    singles: usize,
}

/// The inventory, and the `needs_roles` rules indexed by port: the port
/// table leaves them out because by port alone they decide nothing.
#[derive(Debug)]
pub(super) struct SiteIndex {
    site: Arc<Site>,
    /// Per `[transport][multicast]`: segment starts, in order, covering
    /// 0..=65535, each with an index into `sets`.
    role_only: [Vec<(u16, u16)>; 4],
    /// Index 0 is the empty set.
    sets: Vec<RuleSet>,
}

impl SiteIndex {
    pub(super) fn new(site: Arc<Site>, matrix: &PortMatrix) -> SiteIndex {
        let mut sets = vec![RuleSet::default()];
        let mut role_only: [Vec<(u16, u16)>; 4] = Default::default();
        for t in Transport::ALL {
            for multicast in [false, true] {
                let list = &mut role_only[t.index() * 2 + usize::from(multicast)];
                let segments = matrix.segments_where(|r| {
                    r.needs_roles && r.has_transport(t) && r.cast.admits(multicast)
                });
                for seg in segments {
                    let set = if seg.rules.is_empty() {
                        0
                    } else {
                        let (mut single, mut ranged): (Vec<RuleIdx>, Vec<RuleIdx>) = seg
                            .rules
                            .iter()
                            .partition(|&&i| matrix.rule(i).is_single_port_match(seg.lo));
                        let singles = single.len();
                        single.append(&mut ranged);
                        sets.push(RuleSet {
                            rules: single.into_boxed_slice(),
                            singles,
                        });
                        // At most a few segments per rule, and rules are
                        // bounded by MAX_RULES: far below u16::MAX.
                        (sets.len() - 1) as u16
                    };
                    list.push((seg.lo, set));
                }
            }
        }
        SiteIndex {
            site,
            role_only,
            sets,
        }
    }

    pub(super) fn site(&self) -> &Site {
        &self.site
    }

    pub(super) fn roles(&self, class: RoleClass) -> SystemSet {
        self.site.roles(class)
    }

    /// The decision for a flow whose port decision is `port`: the rules
    /// needing roles there, and the roles of both ends. A multicast group is
    /// never a host of the inventory.
    pub(super) fn decision(&self, port: u32, q: &FlowQuery) -> DecisionId {
        let list = &self.role_only[q.transport.index() * 2 + usize::from(q.multicast)];
        let at = list.partition_point(|&(lo, _)| lo <= q.port);
        let role_only = at.checked_sub(1).map_or(0, |i| list[i].1);
        DecisionId {
            port,
            role_only,
            client: self.site.class_of(q.client, q.vlan),
            server: if q.multicast {
                RoleClass::UNKNOWN
            } else {
                self.site.class_of(q.server, q.vlan)
            },
        }
    }

    /// The rules of `own` (a port decision's, `own_singles` of them by a
    /// single port) and of the port's `needs_roles` rules that fit the roles.
    pub(super) fn fitting<'a>(
        &'a self,
        matrix: &'a PortMatrix,
        d: DecisionId,
        own: &'a [RuleIdx],
        own_singles: usize,
    ) -> Fit<'a> {
        let extra = self
            .sets
            .get(usize::from(d.role_only))
            .unwrap_or(&self.sets[0]);
        let own_singles = own_singles.min(own.len());
        Fit {
            matrix,
            specific: [&own[..own_singles], &extra.rules[..extra.singles]],
            general: [&own[own_singles..], &extra.rules[extra.singles..]],
            client: self.roles(d.client),
            server: self.roles(d.server),
        }
    }
}

/// The candidate rules of one flow, split by specificity, and its roles.
pub(super) struct Fit<'a> {
    matrix: &'a PortMatrix,
    specific: [&'a [RuleIdx]; 2],
    general: [&'a [RuleIdx]; 2],
    client: SystemSet,
    server: SystemSet,
}

impl Fit<'_> {
    fn fitting<'s>(&'s self, lists: [&'s [RuleIdx]; 2]) -> impl Iterator<Item = RuleIdx> + 's {
        lists
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&i| rule_fits(self.matrix.rule(i), self.client, self.server))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.fitting(self.specific).next().is_none() && self.fitting(self.general).next().is_none()
    }

    /// Each fitting rule and whether it decides: single-port matches are more
    /// specific than ranges, so ranges decide only when no single port fits.
    pub(super) fn for_each(&self, mut f: impl FnMut(RuleIdx, bool)) {
        let has_specific = self.fitting(self.specific).next().is_some();
        for i in self.fitting(self.specific) {
            f(i, true);
        }
        for i in self.fitting(self.general) {
            f(i, !has_specific);
        }
    }
}
