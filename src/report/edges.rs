//! Who talked to whom: the edge a flow is counted in, and the folding of
//! quiet hosts into "other hosts" that keeps the edges bounded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use super::events::FlowRecord;
use super::model::{EdgeKey, Usage, KEEP_HOSTS, MAX_EDGES};

pub(super) fn edge_key(r: &FlowRecord) -> EdgeKey {
    EdgeKey {
        client: Some(r.client.0),
        server: Some(r.server.0),
        transport: r.transport,
        port: r.server.1,
        verdict: r.verdict,
    }
}

/// The edge `key` was counted in, whichever of its hosts [`fold_hosts`] has
/// folded since.
pub(super) fn edge_mut(edges: &mut BTreeMap<EdgeKey, Usage>, key: EdgeKey) -> Option<&mut Usage> {
    let folded = [
        key,
        EdgeKey {
            client: None,
            ..key
        },
        EdgeKey {
            server: None,
            ..key
        },
        EdgeKey {
            client: None,
            server: None,
            ..key
        },
    ];
    let found = folded.into_iter().find(|k| edges.contains_key(k))?;
    edges.get_mut(&found)
}

/// Bring `edges` down to half of [`MAX_EDGES`] by folding hosts into
/// `None` ("other hosts"): first the clients beyond the [`KEEP_HOSTS`]
/// busiest, then such servers, then, if a port scan still spreads too wide,
/// every client and every server. Totals stay exact; only who is named
/// changes.
pub fn fold_hosts(edges: &mut BTreeMap<EdgeKey, Usage>) {
    let target = MAX_EDGES / 2;
    type Side = fn(&mut EdgeKey) -> &mut Option<IpAddr>;
    let client: Side = |k| &mut k.client;
    let server: Side = |k| &mut k.server;
    for (side, keep) in [
        (client, KEEP_HOSTS),
        (server, KEEP_HOSTS),
        (client, 0),
        (server, 0),
    ] {
        if edges.len() <= target {
            break;
        }
        let mut flows: HashMap<IpAddr, u64> = HashMap::new();
        for (k, u) in edges.iter() {
            let mut k = *k;
            if let Some(ip) = *side(&mut k) {
                *flows.entry(ip).or_default() += u.flows;
            }
        }
        let mut ranked: Vec<(IpAddr, u64)> = flows.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let kept: HashSet<IpAddr> = ranked.iter().take(keep).map(|&(ip, _)| ip).collect();
        let mut folded: BTreeMap<EdgeKey, Usage> = BTreeMap::new();
        for (mut k, u) in std::mem::take(edges) {
            let host = side(&mut k);
            if host.is_some_and(|ip| !kept.contains(&ip)) {
                *host = None;
            }
            folded.entry(k).or_default().merge(&u);
        }
        *edges = folded;
    }
}
