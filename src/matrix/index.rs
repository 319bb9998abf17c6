//! The interval index: the port space cut into segments on which the same
//! rules match, found by one sweep over the ends of the rules' ranges.
//!
//! The sweep costs the number of ranges (sorted once) plus the rules listed
//! per segment, not their product: a rules file of 700 rules with 1,024
//! ports each (4 MiB) must not take minutes to compile. What it lists is
//! bounded by [`MAX_RULES_PER_PORT`], which [`check_depth`] enforces.

use std::collections::BTreeMap;

use super::rule::{PortRange, Rule};
use super::RuleIdx;
use crate::config_file::Problem;
use crate::transport::Transport;

/// Most rules of one transport that may cover the same port. The vendor
/// matrix needs 4; without a bound a hostile file (every rule over every
/// port) makes the compiled table hold rules × 65,536 entries.
pub const MAX_RULES_PER_PORT: usize = 64;

/// A run of ports on which exactly the same rules match.
#[derive(Debug, Clone)]
pub struct Segment {
    pub lo: u16,
    pub hi: u16,
    /// The matching rules: first those with a single-port entry equal to the
    /// segment's only port (`rules[..singles]`), then the others, each part in
    /// rule order.
    pub rules: Vec<RuleIdx>,
    pub singles: usize,
}

/// What covers the current segment, per rule.
#[derive(Debug, Default, Clone, Copy)]
struct Active {
    ranges: u32,
    singles: u32,
}

/// Cuts 0..=65535 at every end of the kept ranges of the kept rules and calls
/// `emit(lo, hi, active)` for each run, in order and without gaps; `active`
/// maps each rule with a kept range over the run to how many cover it.
fn sweep(
    rules: &[Rule],
    keep_rule: impl Fn(&Rule) -> bool,
    keep_range: impl Fn(PortRange) -> bool,
    mut emit: impl FnMut(u16, u16, &BTreeMap<RuleIdx, Active>),
) {
    // (where, rule, +1 at a start / -1 past an end, single port)
    let mut edges: Vec<(u32, RuleIdx, i32, bool)> = Vec::new();
    for (i, rule) in rules.iter().enumerate().filter(|(_, r)| keep_rule(r)) {
        // Rule indices fit: at most MAX_RULES (10,000) rules are loaded.
        let i = i as RuleIdx;
        for &range in rule.listen_ports.iter().filter(|&&r| keep_range(r)) {
            edges.push((u32::from(range.lo), i, 1, range.is_single()));
            edges.push((u32::from(range.hi) + 1, i, -1, range.is_single()));
        }
    }
    edges.sort_unstable_by_key(|e| e.0);
    let mut active: BTreeMap<RuleIdx, Active> = BTreeMap::new();
    let mut next = edges.iter().peekable();
    let mut lo = 0u32;
    while lo <= 65535 {
        while let Some(&(_, rule, delta, single)) = next.next_if(|e| e.0 == lo) {
            let a = active.entry(rule).or_default();
            a.ranges = a.ranges.saturating_add_signed(delta);
            a.singles = a
                .singles
                .saturating_add_signed(if single { delta } else { 0 });
            if a.ranges == 0 {
                active.remove(&rule);
            }
        }
        let end = next.peek().map_or(65536, |e| e.0);
        // lo <= 65535 and lo < end <= 65536, so both ends fit u16.
        emit(lo as u16, (end - 1) as u16, &active);
        lo = end;
    }
}

/// The segments of the rules that `keep` selects, with their matching rules.
pub(super) fn segments(
    rules: &[Rule],
    keep_rule: impl Fn(&Rule) -> bool,
    keep_range: impl Fn(PortRange) -> bool,
) -> Vec<Segment> {
    let mut out = Vec::new();
    sweep(rules, keep_rule, keep_range, |lo, hi, active| {
        let mut rules: Vec<RuleIdx> = active
            .iter()
            .filter(|(_, a)| a.singles > 0)
            .map(|(&i, _)| i)
            .collect();
        let singles = rules.len();
        rules.extend(
            active
                .iter()
                .filter(|(_, a)| a.singles == 0)
                .map(|(&i, _)| i),
        );
        out.push(Segment {
            lo,
            hi,
            rules,
            singles,
        });
    });
    out
}

/// Refuses rules that pile more than [`MAX_RULES_PER_PORT`] rules of one
/// transport onto one port: one error, naming the first such port and the
/// rule that went over the limit.
pub(super) fn check_depth(rules: &[Rule]) -> Option<Problem> {
    for transport in Transport::ALL {
        let mut over = None;
        sweep(
            rules,
            |r| r.has_transport(transport),
            |_| true,
            |lo, _, active| {
                if over.is_none() && active.len() > MAX_RULES_PER_PORT {
                    over = active
                        .keys()
                        .nth(MAX_RULES_PER_PORT)
                        .map(|&i| (lo, i, active.len()));
                }
            },
        );
        if let Some((port, idx, n)) = over {
            let rule = &rules[usize::from(idx)];
            return Some(Problem {
                origin: rule.origin.clone(),
                line: 0,
                column: 0,
                item: Some(format!("rule {}", rule.id)),
                field: Some("listen_ports".into()),
                message: format!(
                    "{n} rules cover {transport}/{port}; at most {MAX_RULES_PER_PORT} rules of one transport may cover the same port"
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::parse_rules;

    fn rules(text: &str) -> Vec<Rule> {
        parse_rules("t.toml", text).expect("valid rules").rules
    }

    fn rule(id: &str, ports: &str, transports: &str) -> String {
        format!("[[rule]]\nid = \"{id}\"\nlisten_ports = {ports}\ntransports = {transports}\n")
    }

    #[test]
    fn segments_cut_at_every_end_and_list_single_ports_first() {
        let text = format!(
            "schema = 1\n{}{}{}",
            rule("wide", "[[10, 20]]", "[\"tcp\"]"),
            rule("single", "[15, [18, 30]]", "[\"tcp\"]"),
            rule("udp", "[15]", "[\"udp\"]"),
        );
        let rules = rules(&text);
        let segs: Vec<(u16, u16, Vec<RuleIdx>, usize)> =
            segments(&rules, |r| r.has_transport(Transport::Tcp), |_| true)
                .into_iter()
                .map(|s| (s.lo, s.hi, s.rules, s.singles))
                .collect();
        assert_eq!(
            segs,
            vec![
                (0, 9, vec![], 0),
                (10, 14, vec![0], 0),
                (15, 15, vec![1, 0], 1),
                (16, 17, vec![0], 0),
                (18, 20, vec![0, 1], 0),
                (21, 30, vec![1], 0),
                (31, 65535, vec![], 0),
            ]
        );
    }

    #[test]
    fn at_most_max_rules_per_port_of_one_transport() {
        let pile = |n: usize| {
            let mut text = String::from("schema = 1\n");
            for i in 0..n {
                text.push_str(&rule(&format!("r{i}"), "[[5000, 5100]]", "[\"udp\"]"));
            }
            // The same port on the other transport does not add to the pile.
            text.push_str(&rule("tcp", "[5050]", "[\"tcp\"]"));
            rules(&text)
        };
        assert_eq!(check_depth(&pile(MAX_RULES_PER_PORT)), None);
        let err = check_depth(&pile(MAX_RULES_PER_PORT + 1)).expect("too deep");
        assert_eq!(err.item.as_deref(), Some("rule r64"));
        assert_eq!(
            err.to_string(),
            "t.toml: rule r64: field `listen_ports`: 65 rules cover udp/5000; \
             at most 64 rules of one transport may cover the same port"
        );
    }
}
