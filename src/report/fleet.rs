//! Events of several sensors in one report (issue 16): each event may name
//! its sensor (`host`, EVE's word, written with `--sensor-name`). Flows of
//! two sensors never merge by flow id (each sensor counts from 1); the same
//! flow seen by two sensors (same Community ID and judgement, first packets
//! within the dedup window) is counted once. Events without `host` are read
//! exactly as before: one unnamed sensor, nothing merged.
//!
//! Order independence: the page must not depend on the order in which the
//! sensors' events arrive (files one after the other, or one Kafka topic
//! where only each flow's own events keep their order). So whatever is kept
//! of a flow seen twice is a function of the set of copies, not of which
//! came first: its first packet is the earliest copy's, its last the latest,
//! its packets and bytes the largest copy's (the sensor that lost the
//! least), its evidence and VLAN those of the sensor with the smallest name.
//! Counts are added once per flow; a later copy adds only what it has more
//! (packets, bytes, an earlier first packet), so nothing is summed twice.
//!
//! Memory: one [`Group`] (56 bytes in a hash table) per flow that names a
//! sensor and a Community ID, nothing per flow otherwise. A week of a fleet's
//! flows (millions) costs tens of megabytes per million flows; see
//! `docs/guide.md` for the figure measured.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use super::events::FlowRecord;
use super::stats::StatsTotals;

/// Sensors told apart (one bit each in a [`Group`]). A sensor beyond them is
/// read as an unnamed one (no section row, no dedup) and counted, so a file
/// naming millions of hosts cannot grow memory; which sensors are the first
/// 128 then depends on the order, and the page says it happened.
pub const MAX_SENSORS: usize = 128;
/// Flows kept per Community ID and judgement (a port reused many times in a
/// week); beyond, a new flow is counted without dedup. Bounds the time a
/// hostile file with one Community ID on every line can cost.
const MAX_GROUPS_PER_KEY: usize = 64;
/// `report --dedup-window`'s default: sensors' clocks (NTP) and the paths to
/// them differ by milliseconds, a port reused by the same hosts within 2 s is
/// rare.
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(2);

/// What one sensor's events showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensorSeen {
    /// Flows it saw, including those another sensor saw too.
    pub flows: u64,
    /// Of them, not `documented`.
    pub flagged: u64,
    pub verdicts: BTreeMap<Verdict, u64>,
    /// Its earliest and latest time: first and last packets of its flows, and
    /// its stats events' times.
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// The counters of its latest stats event (by timestamp).
    pub stats: Option<StatsTotals>,
}

impl SensorSeen {
    pub(super) fn saw(&mut self, t: Timestamp) {
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    /// Packets lost before classification: the kernel's and the interfaces'
    /// drops, portmatrix's own queue drops.
    pub fn drops(&self) -> Option<u64> {
        let s = self.stats.as_ref()?;
        let named = ["interfaces.kernel_dropped", "interfaces.interface_dropped"]
            .iter()
            .filter_map(|k| s.get(k));
        Some(
            named
                .chain(s.group("queue_drops").map(|(_, n)| n))
                .fold(0u64, u64::saturating_add),
        )
    }
}

/// One flow, as far as dedup needs it: which sensors saw it, and what its
/// copies counted so far.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// One bit per sensor index (two words: 8-byte alignment, so an entry
    /// of the table is 56 bytes, not the 64 a `u128` would make it).
    hosts: [u64; 2],
    /// The earliest copy's first packet.
    start: Timestamp,
    packets: u64,
    bytes: u64,
    id: u32,
    /// Its place in `Model::flagged_starts`, when flagged (`u32::MAX`: none).
    slot: u32,
}

/// What [`Fleet::sight`] found for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sight {
    /// A flow of its own; `Some(id)` names its copies' group.
    New(Option<u32>),
    /// Another sensor's copy of an already counted flow.
    Copy {
        id: u32,
        /// What this copy has more than the copies before it.
        extra_packets: u64,
        extra_bytes: u64,
        /// The group's earlier first packet moved here (update the timeline).
        moved_start: Option<(u32, Timestamp)>,
        /// The flow had been seen by one sensor until now.
        second_sensor: bool,
    },
}

/// The sensors named so far and the flows that may be seen twice.
#[derive(Debug)]
pub(super) struct Fleet {
    window_nanos: u64,
    index: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
    /// Per sensor index: its latest stats event (time, counters).
    latest_stats: Vec<Option<(Timestamp, Map<String, Value>)>>,
    /// By flow key; further flows of one key (a port reused later, a flow
    /// evicted and resumed) at [`probe`]d keys, in the same table: no list
    /// per key to allocate.
    groups: HashMap<u64, Group>,
    next_id: u32,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet::new(DEFAULT_DEDUP_WINDOW)
    }
}

impl Fleet {
    pub(super) fn new(window: Duration) -> Fleet {
        Fleet {
            window_nanos: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            index: HashMap::new(),
            names: Vec::new(),
            latest_stats: Vec::new(),
            groups: HashMap::new(),
            next_id: 0,
        }
    }

    /// The index of sensor `name` and its one shared copy of the name;
    /// `None` beyond [`MAX_SENSORS`].
    pub(super) fn sensor(&mut self, name: &str) -> Option<(u32, Arc<str>)> {
        if let Some(&i) = self.index.get(name) {
            return Some((i, self.names[i as usize].clone()));
        }
        if self.names.len() >= MAX_SENSORS {
            return None;
        }
        let i = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.index.insert(name.clone(), i);
        self.names.push(name.clone());
        self.latest_stats.push(None);
        Some((i, name))
    }

    /// The index of a sensor already named.
    pub(super) fn index_of(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// Keep `stats` if it is sensor `host`'s latest so far. Two with the same
    /// time: the greater text wins, so the choice never depends on the order.
    pub(super) fn stats(&mut self, host: u32, at: Timestamp, stats: Map<String, Value>) {
        let Some(slot) = self.latest_stats.get_mut(host as usize) else {
            return;
        };
        let newer = match slot {
            None => true,
            Some((t, kept)) => {
                at > *t
                    || (at == *t
                        && serde_json::to_string(&stats).ok() > serde_json::to_string(kept).ok())
            }
        };
        if newer {
            *slot = Some((at, stats));
        }
    }

    /// Each sensor's latest stats event, by name.
    pub(super) fn take_stats(&mut self) -> Vec<(String, Map<String, Value>)> {
        self.names
            .iter()
            .zip(self.latest_stats.iter_mut())
            .filter_map(|(n, s)| s.take().map(|(_, m)| (n.to_string(), m)))
            .collect()
    }

    /// Whether flow `r`, seen by sensor `host`, is another sensor's flow seen
    /// again. `slot`: its place in the timeline's starts if it is new and flagged.
    pub(super) fn sight(&mut self, r: &FlowRecord, host: u32, slot: Option<u32>) -> Sight {
        let Some(cid) = r.community_id else {
            return Sight::New(None);
        };
        let key = flow_key(cid, r);
        let (word, bit) = ((host / 64) as usize % 2, 1u64 << (host % 64));
        let (packets, bytes) = (r.packets.unwrap_or(0), r.bytes.unwrap_or(0));
        let window = self.window_nanos;
        // The nearest flow in time of this key that this sensor has not seen
        // yet; and where a new one would go.
        let mut best: Option<(u64, Timestamp, u64)> = None;
        let mut vacant = None;
        for n in 0..MAX_GROUPS_PER_KEY {
            let at = probe(key, n);
            let Some(g) = self.groups.get(&at) else {
                vacant = Some(at);
                break;
            };
            let d = g.start.as_nanos().abs_diff(r.first.as_nanos());
            if g.hosts[word] & bit == 0
                && d <= window
                && best.is_none_or(|(bd, bs, _)| (d, g.start) < (bd, bs))
            {
                best = Some((d, g.start, at));
            }
        }
        if let Some(g) = best.and_then(|(_, _, at)| self.groups.get_mut(&at)) {
            let second_sensor = g.hosts[0].count_ones() + g.hosts[1].count_ones() == 1;
            g.hosts[word] |= bit;
            let extra_packets = packets.saturating_sub(g.packets);
            let extra_bytes = bytes.saturating_sub(g.bytes);
            g.packets = g.packets.max(packets);
            g.bytes = g.bytes.max(bytes);
            let moved_start = (r.first < g.start).then(|| {
                g.start = r.first;
                (g.slot, r.first)
            });
            return Sight::Copy {
                id: g.id,
                extra_packets,
                extra_bytes,
                moved_start: moved_start.filter(|(s, _)| *s != u32::MAX),
                second_sensor,
            };
        }
        let mut hosts = [0; 2];
        hosts[word] = bit;
        let group = Group {
            hosts,
            start: r.first,
            packets,
            bytes,
            id: self.next_id,
            slot: slot.unwrap_or(u32::MAX),
        };
        let Some(at) = vacant else {
            return Sight::New(None);
        };
        self.groups.insert(at, group);
        self.next_id = self.next_id.wrapping_add(1);
        Sight::New(Some(group.id))
    }
}

/// The `n`th place of flow key `key` in the table (nothing is ever removed,
/// so a key's flows are the places up to the first empty one).
fn probe(key: u64, n: usize) -> u64 {
    match n {
        0 => key,
        _ => (key ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(23),
    }
}

/// The flow's identity across sensors: its Community ID and how it was
/// judged. Sensors that judge one flow differently (other rules or site
/// files) keep it once per judgement, so the disagreement stays visible.
/// SipHash with fixed keys: the same key in every run.
fn flow_key(cid: u64, r: &FlowRecord) -> u64 {
    let mut h = DefaultHasher::new();
    (cid, r.verdict, r.transport, r.client, r.server, &r.rule_ids).hash(&mut h);
    h.finish()
}

/// Merge the kept copies of each flow seen by several sensors into one
/// record, whatever their order (see the module's comment).
pub(super) fn merge_copies(flagged: Vec<FlowRecord>) -> Vec<FlowRecord> {
    let (mut copies, mut out): (Vec<FlowRecord>, Vec<FlowRecord>) =
        flagged.into_iter().partition(|r| r.copies.is_some());
    copies.sort_by(|a, b| (a.copies, &a.sensor).cmp(&(b.copies, &b.sensor)));
    let mut copies = copies.into_iter().peekable();
    while let Some(mut kept) = copies.next() {
        while let Some(c) = copies.next_if(|c| c.copies == kept.copies) {
            kept.first = kept.first.min(c.first);
            kept.last = kept.last.max(c.last);
            kept.packets = kept.packets.max(c.packets);
            kept.bytes = kept.bytes.max(c.bytes);
            kept.evidence = kept.evidence.or(c.evidence);
            kept.vlan = kept.vlan.or(c.vlan);
            kept.also_seen_by.extend(c.sensor);
            kept.also_seen_by.extend(c.also_seen_by);
        }
        kept.also_seen_by.sort();
        kept.also_seen_by.dedup();
        kept.also_seen_by
            .retain(|s| Some(s) != kept.sensor.as_ref());
        out.push(kept);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;
    use crate::verdict::Severity;

    fn flow(host: &str, ms: i64, packets: u64) -> FlowRecord {
        FlowRecord {
            flow_id: 1,
            transport: Transport::Tcp,
            client: ("10.0.0.1".parse().expect("ip"), 40000),
            server: ("10.0.0.2".parse().expect("ip"), 8100),
            verdict: Verdict::Undocumented,
            severity: Severity::High,
            rule_ids: Vec::new(),
            vlan: None,
            first: Timestamp::from_nanos(ms * 1_000_000),
            last: Timestamp::from_nanos((ms + 10) * 1_000_000),
            packets: Some(packets),
            bytes: Some(packets * 100),
            evidence: None,
            sensor: Some(Arc::from(host)),
            also_seen_by: Vec::new(),
            community_id: Some(7),
            copies: None,
        }
    }

    #[test]
    fn a_second_sensor_within_the_window_is_a_copy_and_adds_only_what_it_has_more() {
        let mut f = Fleet::new(Duration::from_secs(2));
        let (a, b) = (f.sensor("a").expect("a").0, f.sensor("b").expect("b").0);
        assert_eq!(
            f.sight(&flow("b", 1000, 5), b, Some(0)),
            Sight::New(Some(0))
        );
        // The same sensor again: its own flow (a port reused), never merged.
        assert_eq!(f.sight(&flow("b", 1500, 5), b, None), Sight::New(Some(1)));
        let Sight::Copy {
            extra_packets,
            moved_start,
            second_sensor,
            ..
        } = f.sight(&flow("a", 999, 7), a, None)
        else {
            panic!("a copy");
        };
        assert_eq!((extra_packets, second_sensor), (2, true));
        assert_eq!(moved_start, Some((0, Timestamp::from_nanos(999_000_000))));
        // Outside the window: another flow.
        assert_eq!(f.sight(&flow("a", 9000, 1), a, None), Sight::New(Some(2)));
    }

    #[test]
    fn one_key_holds_a_bounded_number_of_flows() {
        let mut f = Fleet::default();
        let b = f.sensor("b").expect("b").0;
        for i in 0..MAX_GROUPS_PER_KEY {
            let s = f.sight(&flow("b", i as i64 * 10_000, 1), b, None);
            assert_eq!(s, Sight::New(Some(i as u32)), "{i}");
        }
        // The 65th flow of one key is counted, without dedup state.
        assert_eq!(f.sight(&flow("b", 1 << 30, 1), b, None), Sight::New(None));
        assert_eq!(f.groups.len(), MAX_GROUPS_PER_KEY);
        // Another sensor's copy of the 40th still finds it, 39 places down.
        let a = f.sensor("a").expect("a").0;
        assert!(matches!(
            f.sight(&flow("a", 400_000, 1), a, None),
            Sight::Copy { id: 40, .. }
        ));
    }

    #[test]
    fn copies_merge_the_same_whatever_their_order() {
        let mut x = flow("b", 1000, 5);
        x.copies = Some(3);
        x.evidence = Some("b.pcapng".into());
        let mut y = flow("a", 1001, 9);
        y.copies = Some(3);
        let one = merge_copies(vec![x.clone(), y.clone()]);
        assert_eq!(one, merge_copies(vec![y, x]));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].sensor.as_deref(), Some("a"));
        assert_eq!(one[0].also_seen_by, [Arc::from("b")]);
        assert_eq!(one[0].packets, Some(9));
        assert_eq!(one[0].evidence.as_deref(), Some("b.pcapng"));
    }

    #[test]
    fn a_sensor_beyond_the_limit_is_not_named() {
        let mut f = Fleet::default();
        for i in 0..MAX_SENSORS {
            assert!(f.sensor(&format!("s{i}")).is_some());
        }
        assert_eq!(f.sensor("one too many"), None);
        assert_eq!(f.sensor("s0").map(|s| s.0), Some(0));
    }
}
