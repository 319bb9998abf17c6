//! Focus: which packets a run looks at, decided before any flow is counted,
//! in one place for both fronts (files and live capture).
//!
//! ```text
//! frame ── time window, BPF ──▶ decode ── hosts, ports ──▶ flow table
//!   (not matching: counted as `filtered`, nothing else)
//! ```
//!
//! - [`Focus`]: what the user asked for (`--since`, `--until`, `--host`,
//!   `--port`, `--bpf` on files); [`PacketFilter`] applies it, one per front
//!   thread, with the state it needs (the capture's start, compiled BPF).
//! - [`VerdictSet`]: `--verdict` (which flows are reported) and `--fail-on`;
//!   they act on flows once classified, not on packets.

mod bpf;
mod parse;

use crate::decode::Decoded;
use crate::timestamp::ParseTimestampError;
use crate::timestamp::Timestamp;

pub use bpf::check as check_bpf;
pub use parse::{parse_verdict, Cidr, TimeBound, VerdictSet};

/// Why a focus option cannot be used: each is a usage error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{text}` is not an address or address block such as 10.10.1.0/24: {reason}")]
    Host { text: String, reason: &'static str },
    #[error("{0}; or give epoch seconds (1627895400), or an offset from the capture's first packet such as +90s, +2m30s, +1h")]
    Time(ParseTimestampError),
    #[error(
        "`{text}` is not an offset from the capture's first packet: write + and a whole number \
with a unit ms, s, m, h or d, such as +90s, +10m or +2m30s"
    )]
    Offset { text: String },
    #[error("`{text}` is not a verdict; the verdicts are: {known}")]
    Verdict { text: String, known: String },
    #[error("bad BPF expression `{expression}`: {detail}")]
    Bpf { expression: String, detail: String },
    #[error("--since {since} is not before --until {until}: the window holds no packet")]
    EmptyWindow { since: String, until: String },
}

/// Which packets to look at. The default looks at all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Focus {
    pub since: Option<TimeBound>,
    /// Exclusive: a packet at exactly `until` is outside.
    pub until: Option<TimeBound>,
    /// A packet matches if either of its addresses is in any block.
    pub hosts: Vec<Cidr>,
    /// A packet matches if either of its ports is one of these.
    pub ports: Vec<u16>,
    /// tcpdump syntax, run in user space (live capture filters in the kernel instead).
    pub bpf: Option<String>,
}

impl Focus {
    /// Does any option narrow the packets?
    pub fn is_active(&self) -> bool {
        self.since.is_some()
            || self.until.is_some()
            || !self.hosts.is_empty()
            || !self.ports.is_empty()
            || self.bpf.is_some()
    }

    /// Refuse what cannot match anything or cannot run: an empty window
    /// (when both ends are of the same kind), a BPF expression that does not
    /// compile.
    pub fn check(&self) -> Result<(), FilterError> {
        if let (Some(since), Some(until)) = (self.since, self.until) {
            let empty = match (since, until) {
                (TimeBound::At(a), TimeBound::At(b)) => a >= b,
                (TimeBound::AfterStart(a), TimeBound::AfterStart(b)) => a >= b,
                _ => false,
            };
            if empty {
                return Err(FilterError::EmptyWindow {
                    since: since.to_string(),
                    until: until.to_string(),
                });
            }
        }
        if let Some(e) = &self.bpf {
            check_bpf(e)?;
        }
        Ok(())
    }
}

/// [`Focus`] at work in one front thread: what is decided on the frame, in
/// capture order (relative times count from the first packet read), and
/// the [`AddressFilter`] applied once decoded.
pub struct PacketFilter {
    since: Option<TimeBound>,
    until: Option<TimeBound>,
    bpf: Option<bpf::Bpf>,
    /// The first packet read: relative bounds count from it.
    start: Option<Timestamp>,
    addresses: AddressFilter,
}

impl PacketFilter {
    /// `None` when the focus lets everything through: the per-packet path
    /// then pays nothing.
    pub fn new(focus: &Focus) -> Option<PacketFilter> {
        focus.is_active().then(|| PacketFilter {
            since: focus.since,
            until: focus.until,
            bpf: focus.bpf.as_deref().map(bpf::Bpf::new),
            start: None,
            addresses: AddressFilter {
                hosts: focus.hosts.clone(),
                ports: focus.ports.clone(),
            },
        })
    }

    /// The capture's first packet, once read (relative bounds count from it).
    pub fn start(&self) -> Option<Timestamp> {
        self.start
    }

    /// Before decoding: the time window and the BPF expression.
    pub fn frame(&mut self, ts: Timestamp, link_type: u16, data: &[u8]) -> bool {
        let start = *self.start.get_or_insert(ts);
        if self.since.is_some_and(|b| ts < b.resolve(start)) {
            return false;
        }
        if self.until.is_some_and(|b| ts >= b.resolve(start)) {
            return false;
        }
        match &mut self.bpf {
            Some(bpf) => bpf.matches(link_type, data),
            None => true,
        }
    }

    /// After decoding (see [`AddressFilter::decoded`]).
    pub fn decoded(&self, decoded: &Decoded) -> bool {
        self.addresses.decoded(decoded)
    }

    /// The part that needs no order, for threads that decode apart.
    pub fn addresses(&self) -> &AddressFilter {
        &self.addresses
    }
}

/// The hosts and ports of a [`Focus`]: a test of each decoded packet on its
/// own, so any thread may run its own copy.
#[derive(Debug, Clone, Default)]
pub struct AddressFilter {
    hosts: Vec<Cidr>,
    ports: Vec<u16>,
}

impl AddressFilter {
    /// Packets without addresses and ports to test (ARP, ICMP, …) are
    /// outside a host or port focus; packets that could not be decoded stay
    /// in, to be counted as decode failures (the capture's health does not
    /// depend on the focus).
    pub fn decoded(&self, decoded: &Decoded) -> bool {
        if self.hosts.is_empty() && self.ports.is_empty() {
            return true;
        }
        match decoded {
            Decoded::Packet(m) => {
                let host = self.hosts.is_empty()
                    || self
                        .hosts
                        .iter()
                        .any(|c| c.contains(m.src) || c.contains(m.dst));
                let port = self.ports.is_empty()
                    || self
                        .ports
                        .iter()
                        .any(|&p| p == m.src_port || p == m.dst_port);
                host && port
            }
            Decoded::Other(_) => false,
            Decoded::Malformed(_) | Decoded::Fragment(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Encap, PacketMeta};
    use crate::transport::Transport;

    fn meta(src: &str, dst: &str, sport: u16, dport: u16) -> Decoded {
        Decoded::Packet(PacketMeta {
            src: src.parse().expect("ip"),
            dst: dst.parse().expect("ip"),
            src_port: sport,
            dst_port: dport,
            transport: Transport::Tcp,
            tcp_flags: 0,
            payload_len: 0,
            vlan: None,
            encap: Encap::default(),
            l2_group: false,
            app: None,
        })
    }

    fn at(f: &mut PacketFilter, secs: i64) -> bool {
        f.frame(Timestamp::from_secs_nanos(secs, 0), 1, &[])
    }

    #[test]
    fn nothing_asked_means_no_filter() {
        assert!(PacketFilter::new(&Focus::default()).is_none());
    }

    #[test]
    fn either_endpoint_matches_hosts_and_ports_and_both_kinds_must_hold() {
        let focus = Focus {
            hosts: vec!["10.10.1.0/24".parse().expect("cidr")],
            ports: vec![1972, 8100],
            ..Focus::default()
        };
        let f = PacketFilter::new(&focus).expect("active");
        assert!(f.decoded(&meta("10.10.1.11", "192.0.2.1", 40000, 1972)));
        assert!(f.decoded(&meta("192.0.2.1", "10.10.1.11", 8100, 40000)));
        assert!(!f.decoded(&meta("192.0.2.1", "192.0.2.2", 40000, 1972)));
        assert!(!f.decoded(&meta("10.10.1.11", "192.0.2.1", 40000, 443)));
        assert!(!f.decoded(&Decoded::Other(crate::decode::OtherProto::IpProto(1))));
    }

    #[test]
    fn the_window_counts_from_the_first_packet_and_excludes_its_end() {
        let focus = Focus {
            since: Some("+10s".parse().expect("bound")),
            until: Some("+20s".parse().expect("bound")),
            ..Focus::default()
        };
        let mut f = PacketFilter::new(&focus).expect("active");
        assert!(!at(&mut f, 1000));
        assert_eq!(f.start(), Some(Timestamp::from_secs_nanos(1000, 0)));
        assert!(!at(&mut f, 1009));
        assert!(at(&mut f, 1010));
        assert!(at(&mut f, 1019));
        assert!(!at(&mut f, 1020));
    }

    #[test]
    fn empty_windows_and_bad_expressions_are_refused() {
        let bound = |s: &str| Some(s.parse::<TimeBound>().expect("bound"));
        let window = |since, until| Focus {
            since,
            until,
            ..Focus::default()
        };
        assert!(window(bound("+10s"), bound("+10s")).check().is_err());
        assert!(window(bound("+10s"), bound("+11s")).check().is_ok());
        assert!(
            window(bound("2021-08-02T10:00:00Z"), bound("2021-08-02T09:00:00Z"))
                .check()
                .is_err()
        );
        let bad = Focus {
            bpf: Some("port".into()),
            ..Focus::default()
        };
        assert!(matches!(bad.check(), Err(FilterError::Bpf { .. })));
    }
}
