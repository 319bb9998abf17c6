//! Address sets as a firewall writes them: a system's addresses from the site
//! (merged ranges, longest prefix already applied) turned back into the
//! fewest CIDR blocks, per family.

use std::net::IpAddr;

/// Some addresses, by family, as disjoint inclusive ranges in address order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub v4: Vec<(IpAddr, IpAddr)>,
    pub v6: Vec<(IpAddr, IpAddr)>,
}

/// One address family, for renderers that write a rule per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    fn bits(self) -> u32 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The multicast block: 224.0.0.0/4 or ff00::/8.
    pub fn multicast(self) -> &'static str {
        match self {
            Family::V4 => "224.0.0.0/4",
            Family::V6 => "ff00::/8",
        }
    }

    /// `v4` or `v6`, for set names.
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
}

impl Addresses {
    /// From merged ranges of both families (as [`crate::site::Site::ranges_of`] gives them).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (IpAddr, IpAddr)>) -> Addresses {
        let mut a = Addresses::default();
        for (first, last) in ranges {
            match Family::of(first) {
                Family::V4 => a.v4.push((first, last)),
                Family::V6 => a.v6.push((first, last)),
            }
        }
        a
    }

    /// Single addresses (multicast groups seen), merged into ranges.
    pub fn from_hosts(hosts: impl IntoIterator<Item = IpAddr>) -> Addresses {
        let mut hosts: Vec<IpAddr> = hosts.into_iter().collect();
        hosts.sort_unstable();
        hosts.dedup();
        let mut a = Addresses::default();
        for ip in hosts {
            let list = match Family::of(ip) {
                Family::V4 => &mut a.v4,
                Family::V6 => &mut a.v6,
            };
            match list.last_mut() {
                Some(last) if number(last.1).checked_add(1) == Some(number(ip)) => last.1 = ip,
                _ => list.push((ip, ip)),
            }
        }
        a
    }

    pub fn family(&self, f: Family) -> &[(IpAddr, IpAddr)] {
        match f {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// One address in each family that has any: one host (its IPv4 and IPv6
    /// address), whose flows to itself never cross a firewall.
    pub fn is_one_host(&self) -> bool {
        let single = |list: &[(IpAddr, IpAddr)]| match list {
            [] => true,
            [(a, b)] => a == b,
            _ => false,
        };
        !self.is_empty() && single(&self.v4) && single(&self.v6)
    }

    /// The family's addresses as the fewest CIDR blocks, a lone address
    /// without its `/32` or `/128`: `10.10.1.10`, `10.10.20.0/24`.
    pub fn cidrs(&self, f: Family) -> Vec<String> {
        let mut out = Vec::new();
        for &(first, last) in self.family(f) {
            for (start, len) in blocks(number(first), number(last), f.bits()) {
                let addr = match f {
                    Family::V4 => IpAddr::from((start as u32).to_be_bytes()),
                    Family::V6 => IpAddr::from(start.to_be_bytes()),
                };
                if u32::from(len) == f.bits() {
                    out.push(addr.to_string());
                } else {
                    out.push(format!("{addr}/{len}"));
                }
            }
        }
        out
    }

    /// Both families' blocks, IPv4 first.
    pub fn all_cidrs(&self) -> Vec<String> {
        let mut out = self.cidrs(Family::V4);
        out.extend(self.cidrs(Family::V6));
        out
    }
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// `first..=last` as aligned blocks (start, prefix length), in order.
fn blocks(mut first: u128, last: u128, bits: u32) -> Vec<(u128, u8)> {
    let mut out = Vec::new();
    loop {
        // The largest block aligned at `first` that ends at or before `last`.
        let mut host = first.trailing_zeros().min(bits);
        let mask = |h: u32| {
            if h >= 128 {
                u128::MAX
            } else {
                (1u128 << h) - 1
            }
        };
        while host > 0 && first.checked_add(mask(host)).is_none_or(|end| end > last) {
            host -= 1;
        }
        // Prefix lengths are at most 128.
        out.push((first, (bits - host) as u8));
        match first
            .checked_add(mask(host))
            .and_then(|end| end.checked_add(1))
        {
            Some(next) if next <= last => first = next,
            _ => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ranges_become_the_fewest_blocks() {
        let a = Addresses::from_ranges([
            (ip("10.10.0.0"), ip("10.10.1.9")),
            (ip("10.10.1.12"), ip("10.10.1.255")),
            (ip("10.10.20.0"), ip("10.10.20.255")),
            (ip("10.0.0.7"), ip("10.0.0.7")),
            (ip("fd00::"), ip("fd00::ffff:ffff:ffff:ffff")),
        ]);
        assert_eq!(
            a.cidrs(Family::V4),
            [
                "10.10.0.0/24",
                "10.10.1.0/29",
                "10.10.1.8/31",
                "10.10.1.12/30",
                "10.10.1.16/28",
                "10.10.1.32/27",
                "10.10.1.64/26",
                "10.10.1.128/25",
                "10.10.20.0/24",
                "10.0.0.7"
            ]
        );
        assert_eq!(a.cidrs(Family::V6), ["fd00::/64"]);
    }

    #[test]
    fn whole_spaces_and_the_top_address_end_cleanly() {
        let a = Addresses::from_ranges([
            (ip("0.0.0.0"), ip("255.255.255.255")),
            (ip("::"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        ]);
        assert_eq!(a.all_cidrs(), ["0.0.0.0/0", "::/0"]);
        let top = Addresses::from_ranges([(ip("255.255.255.254"), ip("255.255.255.255"))]);
        assert_eq!(top.all_cidrs(), ["255.255.255.254/31"]);
        let odd = Addresses::from_ranges([(ip("255.255.255.255"), ip("255.255.255.255"))]);
        assert_eq!(odd.all_cidrs(), ["255.255.255.255"]);
    }

    #[test]
    fn hosts_merge_and_one_host_is_told_apart() {
        let g = Addresses::from_hosts([ip("230.0.0.2"), ip("230.0.0.1"), ip("230.0.0.3")]);
        assert_eq!(g.v4, [(ip("230.0.0.1"), ip("230.0.0.3"))]);
        assert!(!g.is_one_host());
        let host = Addresses::from_hosts([ip("10.10.1.10"), ip("fd00::10")]);
        assert!(host.is_one_host());
        assert!(!Addresses::default().is_one_host());
    }
}
