//! The values the focus options take, parsed from what the user typed:
//! `10.0.0.0/8`, `2021-08-02T09:10:00Z` or `+10m`, `undocumented,deprecated`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use super::FilterError;

/// An address block; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address, host bits cleared.
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Does the block hold `ip`? An IPv4 block never holds an IPv6 address
    /// (not even a mapped one): flows carry the addresses as they were on the wire.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(ip) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = FilterError;

    /// `10.1.2.3`, `10.1.0.0/16`, `2001:db8::/32`. Host bits set under the
    /// prefix (`10.1.2.3/16`) are refused: they usually mean a typo.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &'static str| FilterError::Host {
            text: s.chars().take(64).collect(),
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| bad("not an IPv4 or IPv6 address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| bad("the prefix length is 0-32 for IPv4, 0-128 for IPv6"))?,
        };
        let cidr = Cidr { net, prefix };
        let cleared = Cidr {
            net: cidr.network(),
            prefix,
        };
        if cleared != cidr {
            return Err(bad("host bits are set below the prefix length"));
        }
        Ok(cidr)
    }
}

impl Cidr {
    fn network(&self) -> IpAddr {
        match self.net {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.net.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.net)
        } else {
            write!(f, "{}/{}", self.net, self.prefix)
        }
    }
}

/// One end of the time window: a moment, or an offset from the capture's
/// first packet (known only once it is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    At(Timestamp),
    /// Nanoseconds after the first packet read.
    AfterStart(i64),
}

impl TimeBound {
    /// The moment this bound stands for, given the capture's first packet.
    pub fn resolve(self, start: Timestamp) -> Timestamp {
        match self {
            TimeBound::At(t) => t,
            TimeBound::AfterStart(n) => Timestamp::from_nanos(start.as_nanos().saturating_add(n)),
        }
    }
}

impl FromStr for TimeBound {
    type Err = FilterError;

    /// See [`TimeBound::parse`]; whether a zone was assumed is dropped.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeBound::parse(s).map(|(bound, _)| bound)
    }
}

impl TimeBound {
    /// RFC 3339 with any offset (`2021-08-02T11:10:00+02:00`), or without
    /// one (read as UTC: the `bool` is then true, and the CLI moves it to the local zone);
    /// epoch seconds (`1627895400`, `1627895400.5`); or `+` and one or more
    /// numbers with a unit `ms`, `s`, `m`, `h` or `d` (`+90s`, `+2m30s`):
    /// that long after the first packet.
    pub fn parse(s: &str) -> Result<(TimeBound, bool), FilterError> {
        if let Some(rel) = s.strip_prefix('+') {
            return relative(rel)
                .map(|n| (TimeBound::AfterStart(n), false))
                .ok_or_else(|| FilterError::Offset {
                    text: s.chars().take(64).collect(),
                });
        }
        if let Some(t) = epoch_seconds(s) {
            return Ok((TimeBound::At(t), false));
        }
        Timestamp::parse_any_offset(s)
            .map(|(t, assumed)| (TimeBound::At(t), assumed))
            .map_err(FilterError::Time)
    }
}

/// `2m30s`, `90s`, `1h`: nanoseconds, `None` if malformed or too large.
fn relative(mut rel: &str) -> Option<i64> {
    if rel.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rel.is_empty() {
        let digits = rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len());
        let (number, rest) = rel.split_at(digits);
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(letters);
        let n: i64 = number.parse().ok()?;
        let nanos_per_unit: i64 = match unit {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(nanos_per_unit)?)?;
        rel = rest;
    }
    Some(total)
}

/// `1627895400` or `1627895400.25`: seconds since the epoch (UTC).
fn epoch_seconds(s: &str) -> Option<Timestamp> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(frac) || frac.len() > 9 {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let nanos: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32)
    };
    Some(Timestamp::from_secs_nanos(secs, nanos))
}

impl fmt::Display for TimeBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TimeBound::At(t) => write!(f, "{t}"),
            TimeBound::AfterStart(n) if n % 1_000_000_000 == 0 => {
                write!(f, "+{}s", n / 1_000_000_000)
            }
            TimeBound::AfterStart(n) => write!(f, "+{}ms", n / 1_000_000),
        }
    }
}

/// A set of verdicts (`--verdict`, `--fail-on`), one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerdictSet(u32);

impl VerdictSet {
    pub const EMPTY: VerdictSet = VerdictSet(0);
    pub const ALL: VerdictSet = VerdictSet((1 << Verdict::ALL.len()) - 1);

    pub fn contains(self, v: Verdict) -> bool {
        self.0 & (1 << v.index()) != 0
    }

    pub fn insert(&mut self, v: Verdict) {
        self.0 |= 1 << v.index();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The verdicts in the set, in [`Verdict::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Verdict> {
        Verdict::ALL.into_iter().filter(move |&v| self.contains(v))
    }
}

impl FromIterator<Verdict> for VerdictSet {
    fn from_iter<I: IntoIterator<Item = Verdict>>(iter: I) -> Self {
        let mut set = VerdictSet::EMPTY;
        for v in iter {
            set.insert(v);
        }
        set
    }
}

/// One verdict name, as clap's value parser for `--verdict` and `--fail-on`.
pub fn parse_verdict(s: &str) -> Result<Verdict, FilterError> {
    Verdict::parse(s.trim()).ok_or_else(|| FilterError::Verdict {
        text: s.chars().take(64).collect(),
        known: Verdict::ALL.map(Verdict::as_str).join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn blocks_hold_their_addresses_and_no_others() {
        let lan = cidr("10.10.1.0/24");
        assert!(lan.contains(ip("10.10.1.0")) && lan.contains(ip("10.10.1.255")));
        assert!(!lan.contains(ip("10.10.2.1")) && !lan.contains(ip("::ffff:10.10.1.1")));
        let one = cidr("10.10.1.11");
        assert!(one.contains(ip("10.10.1.11")) && !one.contains(ip("10.10.1.12")));
        assert!(cidr("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(cidr("::/0").contains(ip("fe80::1")));
        assert_eq!(cidr("10.10.1.0/24").to_string(), "10.10.1.0/24");
        assert_eq!(cidr("10.10.1.7").to_string(), "10.10.1.7");
    }

    #[test]
    fn bad_blocks_say_why() {
        for (text, needle) in [
            ("10.1.2.3/16", "host bits"),
            ("10.1.0.0/33", "prefix length"),
            ("10.1.0.0/", "prefix length"),
            ("host.example", "not an IPv4 or IPv6"),
            ("2001:db8::/129", "prefix length"),
        ] {
            let e = text.parse::<Cidr>().expect_err(text).to_string();
            assert!(e.contains(needle) && e.contains(text), "{e}");
        }
    }

    #[test]
    fn time_bounds_are_moments_or_offsets_from_the_start() {
        let start: Timestamp = "2021-08-02T09:00:00Z".parse().expect("ts");
        let at = |s: &str| {
            s.parse::<TimeBound>()
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .resolve(start)
                .to_string()
        };
        assert_eq!(at("+10m"), "2021-08-02T09:10:00.000000Z");
        assert_eq!(at("+90s"), "2021-08-02T09:01:30.000000Z");
        assert_eq!(at("+1500ms"), "2021-08-02T09:00:01.500000Z");
        assert_eq!(at("+2h"), "2021-08-02T11:00:00.000000Z");
        assert_eq!(at("+1d"), "2021-08-03T09:00:00.000000Z");
        assert_eq!(at("2021-08-02T09:00:18Z"), "2021-08-02T09:00:18.000000Z");
        assert_eq!("+90s".parse::<TimeBound>().expect("ok").to_string(), "+90s");
        for bad in [
            "+10",
            "+m",
            "+10 m",
            "+10y",
            "10m",
            "+99999999999999999d",
            "yesterday",
        ] {
            assert!(bad.parse::<TimeBound>().is_err(), "{bad}");
        }
    }

    #[test]
    fn verdict_sets_and_names() {
        let set: VerdictSet = [Verdict::Undocumented, Verdict::Deprecated]
            .into_iter()
            .collect();
        assert!(set.contains(Verdict::Undocumented) && !set.contains(Verdict::Documented));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Verdict::Undocumented, Verdict::Deprecated]
        );
        assert!(VerdictSet::ALL.iter().count() == Verdict::ALL.len());
        assert!(VerdictSet::EMPTY.is_empty());
        assert_eq!(parse_verdict("internal_only"), Ok(Verdict::InternalOnly));
        let e = parse_verdict("bad").expect_err("bad").to_string();
        assert!(e.contains("`bad`") && e.contains("out_of_profile"), "{e}");
    }
}
