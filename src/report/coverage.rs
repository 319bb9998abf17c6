//! The matrix against the traffic: every rule with the flows it saw, and the
//! flows per verdict the overview shows.

use std::collections::BTreeMap;

use crate::classify::rule_status;
use crate::matrix::{PortMatrix, Product, Rule};
use crate::verdict::Verdict;

use super::model::{Model, Usage};

/// One rule of the matrix and the traffic it saw.
#[derive(Debug)]
pub struct CoverageRow<'m> {
    pub rule: &'m Rule,
    /// What the rule alone makes of a flow between two hosts.
    pub status: Verdict,
    pub usage: Usage,
    /// A documented opening that no flow used: a candidate to close.
    pub candidate: bool,
}

/// Every rule of the matrix against the traffic, plus rule ids that the events
/// name but this matrix does not have (events written with other rules files).
#[derive(Debug)]
pub struct Coverage<'m> {
    pub rows: Vec<CoverageRow<'m>>,
    pub unknown: Vec<(&'m str, &'m Usage)>,
}

impl Model {
    pub fn coverage<'m>(&'m self, matrix: &'m PortMatrix, product: Product) -> Coverage<'m> {
        let rows = matrix
            .rules()
            .iter()
            .map(|rule| {
                let usage = self.rules.get(&rule.id).cloned().unwrap_or_default();
                let status = rule_status(rule, product, false);
                let candidate =
                    usage.flows == 0 && status == Verdict::Documented && !rule.needs_roles;
                CoverageRow {
                    rule,
                    status,
                    usage,
                    candidate,
                }
            })
            .collect();
        let unknown = self
            .rules
            .iter()
            .filter(|(id, _)| matrix.find(id).is_none())
            .map(|(id, u)| (id.as_str(), u))
            .collect();
        Coverage { rows, unknown }
    }

    /// Flows per verdict: the stats event's count when there is one (it counts
    /// every flow, with or without `--flows`), else, or with several sensors
    /// (whose counts would add a flow seen twice twice), what the events show.
    pub fn flows_per_verdict(&self) -> BTreeMap<Verdict, u64> {
        let from_stats: BTreeMap<Verdict, u64> = self
            .stats
            .iter()
            .flat_map(|s| s.group("flows_per_verdict"))
            .filter_map(|(name, n)| Verdict::parse(name).map(|v| (v, n)))
            .collect();
        // Sensors that saw the same traffic would count its flows twice.
        if from_stats.is_empty() || self.sensors.len() > 1 {
            self.verdicts.clone()
        } else {
            from_stats
        }
    }
}
