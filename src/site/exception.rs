//! Accepted deviations: flagged flows a site has decided to live with, until
//! a date, for a reason (a change ticket). They are counted, not alerted.

use std::net::IpAddr;

use crate::matrix::{PortRange, RuleIdx};
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Verdict;

use super::lookup::IpNet;

const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// One `[[exception]]`: who (src/dst networks), what (transport and port,
/// verdict, rule), until when and why. Every criterion given must match;
/// one left out matches anything.
#[derive(Debug, Clone)]
pub struct Exception {
    /// `id` as written, or `exception#N` (1-based, file order).
    pub id: String,
    pub why: String,
    /// Flows starting at or after this instant are no longer covered.
    pub until: Option<Timestamp>,
    /// `until` as written, for messages.
    pub until_text: Option<String>,
    pub src: Vec<IpNet>,
    pub dst: Vec<IpNet>,
    pub proto: Option<Transport>,
    pub ports: Vec<PortRange>,
    pub verdict: Option<Verdict>,
    /// A rule id the flow's rules must include.
    pub rule: Option<String>,
    /// `rule` resolved against the matrix in use (see `Site::resolve_rules`).
    pub(crate) rule_idx: Option<RuleIdx>,
    /// Where the exception is written (its `id`, else the table), and where
    /// its `rule` is: line and column, for errors found after parsing.
    pub(crate) at: (usize, usize),
    pub(crate) rule_at: (usize, usize),
}

/// What an exception is matched against: a flagged flow as its events show it.
#[derive(Clone, Copy)]
pub struct DeviationQuery<'a> {
    pub transport: Transport,
    pub client: IpAddr,
    pub server: IpAddr,
    /// The listening side's port.
    pub port: u16,
    pub verdict: Verdict,
    /// The flow's first packet: an exception covers flows that start before `until`.
    pub start: Timestamp,
    /// Whether the flow's rules, as its events name them, include this one:
    /// asked only of an exception that names a rule and matches otherwise,
    /// so that a flow's rules need not be gathered (or allocated) to match.
    pub has_rule: &'a dyn Fn(RuleIdx) -> bool,
}

/// How the site's exceptions apply to one flow. Four bytes: every flow
/// carries it, decided with its verdict (see `Flow::judge`), and its events
/// and counts read it from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExceptionMatch {
    /// No exception names this flow.
    #[default]
    None,
    /// Covered by this exception (index in the site's list): suppressed.
    Suppressed(u16),
    /// Only exceptions that had expired when the flow started name it: the
    /// first of them; the flow is alerted as usual.
    Expired(u16),
}

impl ExceptionMatch {
    /// An exception accepts the flow: it is counted, not alerted.
    pub fn suppresses(self) -> bool {
        matches!(self, ExceptionMatch::Suppressed(_))
    }
}

impl Exception {
    /// Whether the exception names this flow, whatever its expiry.
    pub fn names(&self, q: &DeviationQuery<'_>) -> bool {
        let within =
            |nets: &[IpNet], ip: IpAddr| nets.is_empty() || nets.iter().any(|n| n.contains(ip));
        q.verdict != Verdict::Documented
            && within(&self.src, q.client)
            && within(&self.dst, q.server)
            && self.proto.is_none_or(|p| p == q.transport)
            && (self.ports.is_empty() || self.ports.iter().any(|r| r.contains(q.port)))
            && self.verdict.is_none_or(|v| v == q.verdict)
            && (self.rule.is_none() || self.rule_idx.is_some_and(|i| (q.has_rule)(i)))
    }

    /// Whether the exception has expired at `at` (it covers flows before `until`).
    pub fn expired_at(&self, at: Timestamp) -> bool {
        self.until.is_some_and(|u| at >= u)
    }
}

// A flow keeps the index of its exception in a `u16`.
const _: () = assert!(super::MAX_EXCEPTIONS <= 1 << 16);

/// The first exception that covers the flow; else the first expired one that
/// names it. Only flagged flows (not `documented`) are ever matched. Indexes
/// are `u16`: a site file holds at most [`super::MAX_EXCEPTIONS`] (10,000);
/// of a longer list built otherwise, the first 65,536 are looked at.
pub fn exception_for(exceptions: &[Exception], q: &DeviationQuery<'_>) -> ExceptionMatch {
    let mut expired = None;
    for (i, e) in (0..=u16::MAX).zip(exceptions) {
        if !e.names(q) {
            continue;
        }
        if !e.expired_at(q.start) {
            return ExceptionMatch::Suppressed(i);
        }
        expired.get_or_insert(i);
    }
    expired.map_or(ExceptionMatch::None, ExceptionMatch::Expired)
}

/// `until`: an RFC 3339 UTC date-time (the exception ends at that instant),
/// or a date `YYYY-MM-DD` (it covers that whole day, UTC).
pub fn parse_until(text: &str) -> Result<Timestamp, String> {
    let usage = || {
        format!(
            "`{text}` is not a date such as 2026-03-31 or an RFC 3339 UTC time such as 2026-03-31T18:00:00Z"
        )
    };
    if text.len() == 10 {
        let start: Timestamp = format!("{text}T00:00:00Z").parse().map_err(|_| usage())?;
        return Ok(Timestamp::from_nanos(
            start.as_nanos().saturating_add(DAY_NANOS),
        ));
    }
    text.parse::<Timestamp>().map_err(|_| usage())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exception(until: Option<&str>) -> Exception {
        Exception {
            id: "e".into(),
            why: "CHG-1".into(),
            until: until.map(|u| parse_until(u).expect("until")),
            until_text: until.map(str::to_string),
            src: vec![IpNet::parse("10.10.99.0/24").expect("net")],
            dst: Vec::new(),
            proto: Some(Transport::Tcp),
            ports: vec![PortRange { lo: 8000, hi: 8100 }],
            verdict: None,
            rule: None,
            rule_idx: None,
            at: (0, 0),
            rule_at: (0, 0),
        }
    }

    fn query(start: &str, port: u16, verdict: Verdict) -> DeviationQuery<'static> {
        DeviationQuery {
            transport: Transport::Tcp,
            client: "10.10.99.5".parse().expect("ip"),
            server: "10.10.1.10".parse().expect("ip"),
            port,
            verdict,
            start: start.parse().expect("ts"),
            has_rule: &|_| false,
        }
    }

    #[test]
    fn until_is_a_date_or_a_utc_time() {
        let day = parse_until("2021-08-02").expect("date");
        assert_eq!(day, "2021-08-03T00:00:00Z".parse().expect("ts"));
        let t = parse_until("2021-08-02T09:00:30Z").expect("time");
        assert_eq!(t, "2021-08-02T09:00:30Z".parse().expect("ts"));
        for bad in [
            "2021-08-32",
            "tomorrow",
            "2021-08-02T09:00:30",
            "2021-08-02T09:00:30+02:00",
        ] {
            assert!(
                parse_until(bad).expect_err(bad).contains("RFC 3339"),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_exception_covers_flagged_flows_before_it_expires() {
        let list = [exception(Some("2021-08-02T09:00:30Z"))];
        let early = query("2021-08-02T09:00:10Z", 8080, Verdict::Undocumented);
        assert_eq!(exception_for(&list, &early), ExceptionMatch::Suppressed(0));
        let late = query("2021-08-02T09:00:30Z", 8080, Verdict::Undocumented);
        assert_eq!(exception_for(&list, &late), ExceptionMatch::Expired(0));
        let other_port = query("2021-08-02T09:00:10Z", 9000, Verdict::Undocumented);
        assert_eq!(exception_for(&list, &other_port), ExceptionMatch::None);
        let documented = query("2021-08-02T09:00:10Z", 8080, Verdict::Documented);
        assert_eq!(exception_for(&list, &documented), ExceptionMatch::None);
        // A later, still valid exception wins over an expired one.
        let list = [exception(Some("2021-08-01")), exception(None)];
        assert_eq!(exception_for(&list, &late), ExceptionMatch::Suppressed(1));
    }
}
