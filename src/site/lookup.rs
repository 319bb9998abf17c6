//! Address -> roles, without allocating: the inventory's prefixes flattened
//! into sorted, disjoint intervals per address family, found by binary search.
//!
//! Prefixes nest or are disjoint (a CIDR property), so one sweep in address
//! order turns them into intervals where the longest covering prefix decides:
//! `10.10.0.0/16 = agent_desktop` with `10.10.1.10/32 = aacc_server` gives
//! the server its own one-address interval. The same prefix listed under two
//! systems gives the host both roles. Each interval holds a small class
//! number, not the set itself, so a flow can carry its roles in a few bytes.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::matrix::{System, SystemSet};

/// The interned roles of an address: an index into the site's classes.
/// Class 0 is "not in the inventory" (no roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct RoleClass(pub(crate) u16);

impl RoleClass {
    pub const UNKNOWN: RoleClass = RoleClass(0);
}

/// An IPv4 or IPv6 network: address bits and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    pub addr: IpAddr,
    pub len: u8,
}

impl IpNet {
    /// `10.0.0.0/8`, `fd00::/64`, or a single address (`/32`, `/128`).
    /// Host bits under the prefix are refused: they are usually a typo.
    pub fn parse(text: &str) -> Result<IpNet, String> {
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.trim().parse().map_err(|_| {
            format!("`{text}` is not an address or a network such as 10.10.1.10, 10.10.20.0/24 or fd00::/64")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len_text {
            None => max,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{text}`: the prefix length is 0 to {max}")),
            },
        };
        let net = IpNet { addr, len };
        if net.first() != bits(addr) {
            return Err(format!(
                "`{text}` has host bits set under /{len}; the network is {}",
                net.network_text()
            ));
        }
        Ok(net)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && self.first() <= bits(ip) && bits(ip) <= self.last()
    }

    fn host_bits(&self) -> u32 {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        max - u32::from(self.len)
    }

    /// The first address, as a number (IPv4 in the low 32 bits).
    fn first(&self) -> u128 {
        let host = self.host_bits();
        if host >= 128 {
            0
        } else {
            bits(self.addr) >> host << host
        }
    }

    fn last(&self) -> u128 {
        let host = self.host_bits();
        if host >= 128 {
            u128::MAX
        } else {
            self.first() | ((1u128 << host) - 1)
        }
    }

    fn network_text(&self) -> String {
        let first = self.first();
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::from((first as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(first.to_be_bytes()),
        };
        format!("{addr}/{}", self.len)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Disjoint intervals of one family: `(first address, class)`, sorted; an
/// interval runs to the next one's start.
#[derive(Debug, Default, Clone)]
struct Intervals(Vec<(u128, RoleClass)>);

impl Intervals {
    /// Longest-prefix-match over `nets` (same family), by one sweep.
    fn build(mut nets: Vec<(u128, u128, RoleClass)>) -> Intervals {
        // Outer prefixes first when two start together.
        nets.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = Intervals::default();
        // Enclosing prefixes: (last address, class).
        let mut open: Vec<(u128, RoleClass)> = Vec::new();
        for (first, last, class) in nets {
            out.close(&mut open, Some(first));
            out.emit(first, class);
            open.push((last, class));
        }
        out.close(&mut open, None);
        out
    }

    /// From `at` on, `class` holds (until a later interval starts).
    fn emit(&mut self, at: u128, class: RoleClass) {
        match self.0.last_mut() {
            Some(last) if last.0 == at => last.1 = class,
            Some(last) if last.1 == class => {}
            None if class == RoleClass::UNKNOWN => {}
            _ => self.0.push((at, class)),
        }
    }

    /// End the open prefixes that stop before `next` (all of them for
    /// `None`): after each, its parent's class resumes.
    fn close(&mut self, open: &mut Vec<(u128, RoleClass)>, next: Option<u128>) {
        while let Some(&(last, _)) = open.last() {
            if next.is_some_and(|start| last >= start) {
                break;
            }
            open.pop();
            let resume = open.last().map_or(RoleClass::UNKNOWN, |o| o.1);
            if let Some(after) = last.checked_add(1) {
                self.emit(after, resume);
            }
        }
    }

    /// Each interval as (first, last, class), the last one running to `top`.
    fn spans(&self, top: u128) -> impl Iterator<Item = (u128, u128, RoleClass)> + '_ {
        self.0.iter().enumerate().map(move |(i, &(start, class))| {
            let last = self.0.get(i + 1).map_or(top, |next| next.0 - 1);
            (start, last, class)
        })
    }

    fn find(&self, addr: u128) -> RoleClass {
        let i = self.0.partition_point(|&(start, _)| start <= addr);
        match i.checked_sub(1) {
            Some(i) => self.0[i].1,
            None => RoleClass::UNKNOWN,
        }
    }
}

/// Longest-prefix match for both families.
#[derive(Debug, Default, Clone)]
struct PrefixTable {
    v4: Intervals,
    v6: Intervals,
}

impl PrefixTable {
    fn build(entries: &[(IpNet, RoleClass)]) -> PrefixTable {
        let family = |v4: bool| {
            Intervals::build(
                entries
                    .iter()
                    .filter(|(n, _)| n.addr.is_ipv4() == v4)
                    .map(|(n, c)| (n.first(), n.last(), *c))
                    .collect(),
            )
        };
        PrefixTable {
            v4: family(true),
            v6: family(false),
        }
    }

    fn find(&self, ip: IpAddr) -> RoleClass {
        match ip {
            IpAddr::V4(_) => self.v4.find(bits(ip)),
            IpAddr::V6(_) => self.v6.find(bits(ip)),
        }
    }
}

/// One inventory line: these networks have these roles, on these VLANs only
/// (none: on any VLAN).
#[derive(Debug, Clone)]
pub struct RoleEntry {
    pub net: IpNet,
    pub roles: SystemSet,
    pub vlans: Vec<u16>,
}

/// The compiled inventory: address (and VLAN) -> role class -> systems.
#[derive(Debug, Clone)]
pub struct RoleTable {
    any_vlan: PrefixTable,
    /// Entries that name VLANs, one table per VLAN, sorted by VLAN id. They
    /// win over `any_vlan` for flows tagged with that VLAN.
    per_vlan: Vec<(u16, PrefixTable)>,
    /// Class -> systems; class 0 has none.
    classes: Vec<SystemSet>,
}

/// More distinct role sets than a [`RoleClass`] can number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRoleSets;

impl RoleTable {
    pub fn build(entries: &[RoleEntry]) -> Result<RoleTable, TooManyRoleSets> {
        // The same network named twice (under two systems) has both roles.
        let mut merged: HashMap<(IpNet, Option<u16>), SystemSet> = HashMap::new();
        for e in entries {
            if e.vlans.is_empty() {
                let r = merged.entry((e.net, None)).or_default();
                *r = r.union(e.roles);
            }
            for &v in &e.vlans {
                let r = merged.entry((e.net, Some(v))).or_default();
                *r = r.union(e.roles);
            }
        }
        let mut keyed: Vec<((IpNet, Option<u16>), SystemSet)> = merged.into_iter().collect();
        keyed.sort_by_key(|((net, vlan), _)| (*vlan, *net));
        let mut classes = vec![SystemSet::EMPTY];
        let mut class_of: HashMap<SystemSet, RoleClass> = HashMap::new();
        let mut any_vlan = Vec::new();
        let mut by_vlan: Vec<(u16, Vec<(IpNet, RoleClass)>)> = Vec::new();
        for ((net, vlan), roles) in keyed {
            let class = match class_of.get(&roles) {
                Some(c) => *c,
                None => {
                    let c = RoleClass(u16::try_from(classes.len()).map_err(|_| TooManyRoleSets)?);
                    classes.push(roles);
                    class_of.insert(roles, c);
                    c
                }
            };
            match vlan {
                None => any_vlan.push((net, class)),
                Some(v) => match by_vlan.last_mut() {
                    Some((last, list)) if *last == v => list.push((net, class)),
                    _ => by_vlan.push((v, vec![(net, class)])),
                },
            }
        }
        Ok(RoleTable {
            any_vlan: PrefixTable::build(&any_vlan),
            per_vlan: by_vlan
                .into_iter()
                .map(|(v, list)| (v, PrefixTable::build(&list)))
                .collect(),
            classes,
        })
    }

    /// The roles of `ip` seen on `vlan`: the most specific entry for that
    /// VLAN, else the most specific entry for any VLAN, else unknown.
    pub fn class_of(&self, ip: IpAddr, vlan: Option<u16>) -> RoleClass {
        if let Some(v) = vlan {
            if let Ok(i) = self.per_vlan.binary_search_by_key(&v, |(id, _)| *id) {
                let class = self.per_vlan[i].1.find(ip);
                if class != RoleClass::UNKNOWN {
                    return class;
                }
            }
        }
        self.any_vlan.find(ip)
    }

    pub fn roles(&self, class: RoleClass) -> SystemSet {
        self.classes
            .get(usize::from(class.0))
            .copied()
            .unwrap_or(SystemSet::EMPTY)
    }

    /// Every address the lookup gives the role `system`, as merged inclusive
    /// ranges, IPv4 first, in address order: the same longest-prefix answer
    /// as [`RoleTable::class_of`], so `10.10.0.0/16 = agent_desktop` with
    /// `10.10.1.10 = aacc_server` leaves the server out of the desktops'
    /// ranges. Entries bound to VLANs count too (a firewall rule sees
    /// addresses, not tags).
    pub fn ranges_of(&self, system: System) -> Vec<(IpAddr, IpAddr)> {
        let mut out = Vec::new();
        for (v4, top) in [(true, u128::from(u32::MAX)), (false, u128::MAX)] {
            let tables =
                std::iter::once(&self.any_vlan).chain(self.per_vlan.iter().map(|(_, t)| t));
            let mut spans: Vec<(u128, u128)> = tables
                .flat_map(|t| if v4 { &t.v4 } else { &t.v6 }.spans(top))
                .filter(|&(_, _, class)| self.roles(class).contains(system))
                .map(|(first, last, _)| (first, last))
                .collect();
            spans.sort_unstable();
            let mut merged: Vec<(u128, u128)> = Vec::new();
            for (first, last) in spans {
                match merged.last_mut() {
                    Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
                    _ => merged.push((first, last)),
                }
            }
            let addr = |n: u128| -> IpAddr {
                if v4 {
                    IpAddr::from((n as u32).to_be_bytes())
                } else {
                    IpAddr::from(n.to_be_bytes())
                }
            };
            out.extend(merged.into_iter().map(|(a, b)| (addr(a), addr(b))));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> SystemSet {
        SystemSet::of(names.iter().map(|n| System::parse(n).expect("system")))
    }

    fn entry(net: &str, names: &[&str], vlans: &[u16]) -> RoleEntry {
        RoleEntry {
            net: IpNet::parse(net).expect("net"),
            roles: set(names),
            vlans: vlans.to_vec(),
        }
    }

    fn roles(t: &RoleTable, ip: &str, vlan: Option<u16>) -> Vec<&'static str> {
        t.roles(t.class_of(ip.parse().expect("ip"), vlan)).names()
    }

    #[test]
    fn networks_parse_and_refuse_host_bits() {
        assert_eq!(IpNet::parse("10.1.2.3").expect("ip").len, 32);
        assert_eq!(IpNet::parse("fd00::/64").expect("net").len, 64);
        assert!(IpNet::parse("10.10.1.10/24")
            .expect_err("host bits")
            .contains("10.10.1.0/24"));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("server1").is_err());
        assert!(IpNet::parse("0.0.0.0/0")
            .expect("all")
            .contains("1.2.3.4".parse().expect("ip")));
        assert!(IpNet::parse("::/0")
            .expect("all")
            .contains("::1".parse().expect("ip")));
        assert_eq!(
            IpNet::parse("10.0.0.0/8").expect("net").to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn the_longest_prefix_wins_and_same_prefixes_merge() {
        let t = RoleTable::build(&[
            entry("10.10.0.0/16", &["agent_desktop"], &[]),
            entry("10.10.1.0/24", &["ccma"], &[]),
            entry("10.10.1.10", &["aacc_server"], &[]),
            entry("10.10.1.10", &["cct"], &[]),
            entry("fd00:10:10:1::10", &["aacc_server"], &[]),
            entry("fd00::/8", &["agent_desktop"], &[]),
        ])
        .expect("table");
        assert_eq!(roles(&t, "10.10.1.10", None), ["aacc_server", "cct"]);
        assert_eq!(roles(&t, "10.10.1.9", None), ["ccma"]);
        assert_eq!(roles(&t, "10.10.1.11", None), ["ccma"]);
        assert_eq!(roles(&t, "10.10.1.255", None), ["ccma"]);
        assert_eq!(roles(&t, "10.10.2.0", None), ["agent_desktop"]);
        assert_eq!(roles(&t, "10.10.255.255", None), ["agent_desktop"]);
        assert!(roles(&t, "10.11.0.0", None).is_empty());
        assert!(roles(&t, "10.9.255.255", None).is_empty());
        assert!(roles(&t, "0.0.0.0", None).is_empty());
        assert_eq!(roles(&t, "fd00:10:10:1::10", None), ["aacc_server"]);
        assert_eq!(roles(&t, "fd00:10:10:1::11", None), ["agent_desktop"]);
        assert!(roles(&t, "fe80::1", None).is_empty());
        // An IPv4 address never matches an IPv6 network, nor the reverse.
        assert!(roles(&t, "::a0a:10a", None).is_empty());
    }

    #[test]
    fn whole_address_spaces_and_the_top_address_work() {
        let t = RoleTable::build(&[
            entry("0.0.0.0/0", &["agent_desktop"], &[]),
            entry("255.255.255.255", &["aams"], &[]),
            entry("::/0", &["ccmm"], &[]),
            entry("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &["aams"], &[]),
        ])
        .expect("table");
        assert_eq!(roles(&t, "0.0.0.0", None), ["agent_desktop"]);
        assert_eq!(roles(&t, "255.255.255.254", None), ["agent_desktop"]);
        assert_eq!(roles(&t, "255.255.255.255", None), ["aams"]);
        assert_eq!(roles(&t, "::", None), ["ccmm"]);
        assert_eq!(
            roles(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ["aams"]
        );
    }

    #[test]
    fn vlan_entries_win_on_their_vlans_only() {
        let t = RoleTable::build(&[
            entry("10.10.0.0/16", &["agent_desktop"], &[]),
            entry("10.10.120.0/24", &["web_browser"], &[120, 121]),
        ])
        .expect("table");
        assert_eq!(roles(&t, "10.10.120.15", Some(120)), ["web_browser"]);
        assert_eq!(roles(&t, "10.10.120.15", Some(121)), ["web_browser"]);
        assert_eq!(roles(&t, "10.10.120.15", None), ["agent_desktop"]);
        assert_eq!(roles(&t, "10.10.120.15", Some(7)), ["agent_desktop"]);
        // Not in the VLAN's entries: the VLAN-free entries still apply.
        assert_eq!(roles(&t, "10.10.5.5", Some(120)), ["agent_desktop"]);
    }

    #[test]
    fn a_system_s_ranges_leave_out_the_more_specific_entries_of_others() {
        let t = RoleTable::build(&[
            entry("10.10.0.0/16", &["agent_desktop"], &[]),
            entry("10.10.1.10", &["aacc_server"], &[]),
            entry("10.10.1.11", &["aacc_server", "cct"], &[]),
            entry("10.10.120.0/24", &["web_browser"], &[120]),
            entry("fd00::/64", &["agent_desktop"], &[]),
            entry("255.255.255.255", &["aams"], &[]),
        ])
        .expect("table");
        let ranges = |name: &str| -> Vec<String> {
            t.ranges_of(System::parse(name).expect("system"))
                .iter()
                .map(|(a, b)| format!("{a}-{b}"))
                .collect()
        };
        assert_eq!(
            ranges("agent_desktop"),
            [
                "10.10.0.0-10.10.1.9",
                "10.10.1.12-10.10.255.255",
                "fd00::-fd00::ffff:ffff:ffff:ffff"
            ]
        );
        assert_eq!(ranges("aacc_server"), ["10.10.1.10-10.10.1.11"]);
        assert_eq!(ranges("cct"), ["10.10.1.11-10.10.1.11"]);
        assert_eq!(ranges("web_browser"), ["10.10.120.0-10.10.120.255"]);
        assert_eq!(ranges("aams"), ["255.255.255.255-255.255.255.255"]);
        assert!(ranges("ccmm").is_empty());
    }

    #[test]
    fn lookups_agree_with_a_linear_scan() {
        // Nested and disjoint prefixes at many lengths, against brute force.
        let nets = [
            ("10.0.0.0/8", "aams"),
            ("10.128.0.0/9", "ccma"),
            ("10.128.0.0/16", "ccmm"),
            ("10.128.0.0/24", "cct"),
            ("10.128.0.128/25", "pom"),
            ("10.200.0.0/16", "lync"),
            ("10.255.255.255", "cs1k"),
            ("11.0.0.0/8", "aes"),
        ];
        let entries: Vec<RoleEntry> = nets.iter().map(|(n, s)| entry(n, &[s], &[])).collect();
        let t = RoleTable::build(&entries).expect("table");
        let mut state: u32 = 0x9e37_79b9;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            // Mostly inside 10/8 and 11/8, where the prefixes are.
            let ip = IpAddr::from((0x0a00_0000 | (state & 0x01ff_ffff)).to_be_bytes());
            let want = entries
                .iter()
                .filter(|e| e.net.contains(ip))
                .max_by_key(|e| e.net.len)
                .map_or(SystemSet::EMPTY, |e| e.roles);
            assert_eq!(t.roles(t.class_of(ip, None)), want, "{ip}");
        }
    }
}
