//! Who talked to whom, before any coordinates: the traffic per host pair,
//! port and verdict folded into the nodes, ports and edges the diagram draws
//! (see `super::diagram` for the drawing). Clients are the side that opened
//! the flow; every edge runs from a client to one port of a server.
//!
//! Deterministic (sorted addresses; the busiest kept, ties by address), so the same
//! events always give the same graph. Beyond [`MAX_HOSTS`] hosts the nodes
//! become subnets; beyond [`MAX_NODES`] per side ([`MAX_SUBNET_NODES`] for
//! subnets), [`MAX_SERVICES`] ports per server (fewer when many servers share
//! [`SERVICE_ROWS`]) or [`MAX_EDGES`] edges the quietest are folded into
//! "other" nodes and ports, and the page says so. The caps keep the picture
//! within a few screens.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::transport::Transport;
use crate::verdict::Verdict;

use super::model::{EdgeKey, Usage};
use super::theme::rank;
use super::units::Count;

/// Up to this many distinct hosts each host is a node.
pub const MAX_HOSTS: usize = 100;
/// Host nodes per column; the quietest beyond it are folded into one.
pub const MAX_NODES: usize = 60;
/// Subnet nodes per column: each brings many ports, so fewer fit.
pub const MAX_SUBNET_NODES: usize = 30;
/// Ports listed under one server; the rest are folded into "other ports".
pub const MAX_SERVICES: usize = 12;
/// Port rows in the servers' column, shared out among the servers (at least
/// two each: the worst port and "other ports").
pub const SERVICE_ROWS: usize = 120;
/// Edges drawn; flagged ones first, then the busiest.
pub const MAX_EDGES: usize = 600;

/// The subnet a host is grouped in: /24 for IPv4, /64 for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet(IpAddr);

impl Subnet {
    pub fn of(ip: IpAddr) -> Subnet {
        Subnet(match ip {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & 0xffff_ff00)),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !0u128 << 64)),
        })
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(ip) => write!(f, "{ip}/24"),
            IpAddr::V6(ip) => write!(f, "{ip}/64"),
        }
    }
}

/// A box in a column: a host, a subnet (when there are too many hosts), or
/// everything folded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Host(IpAddr),
    Subnet(Subnet),
    Others,
}

impl Node {
    /// The subnet box the node is drawn in; subnets and "other" stand alone.
    pub fn group(self) -> Option<Subnet> {
        match self {
            Node::Host(ip) => Some(Subnet::of(ip)),
            _ => None,
        }
    }
}

/// Where an edge ends on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Port(Transport, u16),
    Others,
    /// Every port a scanner probed on this server, as one row.
    Scan,
}

/// A server node and its ports, with the worst verdict seen on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNode {
    pub node: Node,
    pub services: Vec<(Service, Verdict, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub client: Node,
    pub server: Node,
    pub service: Service,
    pub verdict: Verdict,
    pub flows: u64,
    pub bytes: u64,
    /// The real ports behind a folded `Service::Others` edge (for its tooltip).
    pub ports: BTreeSet<(Transport, u16)>,
    /// Flows per verdict (a scan's edge folds several).
    pub mix: BTreeMap<Verdict, u64>,
}

/// What the diagram shows, before any coordinates.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Graph {
    /// Distinct hosts in the traffic.
    pub hosts: usize,
    /// Nodes are subnets because there were more than [`MAX_HOSTS`] hosts.
    pub by_subnet: bool,
    pub clients: Vec<Node>,
    pub servers: Vec<ServerNode>,
    /// Drawing order: documented first, so flagged edges are on top.
    pub edges: Vec<Edge>,
    /// Nodes folded into "other" per side, ports folded, edges not drawn.
    pub folded_clients: usize,
    pub folded_servers: usize,
    pub folded_services: usize,
    pub hidden_edges: usize,
    /// Clients, servers beyond the busiest, folded by the model
    /// ([`super::edges::fold_hosts`]): their "other" node has no count.
    pub hosts_beyond: (bool, bool),
    /// The flows of those hosts.
    pub beyond_flows: u64,
    /// Hosts kept as their own node whatever the count, with their role.
    pub roles: BTreeMap<IpAddr, Option<String>>,
    /// Clients that probed at least [`SCAN_PORTS`] ports: distinct ports.
    pub scanners: BTreeMap<IpAddr, usize>,
    /// Per server node, the distinct ports scanners probed on it.
    pub scanned: BTreeMap<Node, usize>,
}

/// A client with flagged flows to this many distinct ports (of any servers)
/// is a scanner: its flows fold into one edge per server it probed.
pub const SCAN_PORTS: usize = 64;

impl Graph {
    /// `servers`: the hosts kept as their own node on either side, even
    /// when the others become subnets (see `super::servers`), with their role.
    pub fn build(
        traffic: &BTreeMap<EdgeKey, Usage>,
        servers: &BTreeMap<IpAddr, Option<String>>,
    ) -> Graph {
        let hosts: BTreeSet<IpAddr> = traffic
            .keys()
            .flat_map(|k| [k.client, k.server])
            .flatten()
            .collect();
        let by_subnet = hosts.len() > MAX_HOSTS;
        let scanners = scanners(traffic, servers);
        let named = |ip: &IpAddr| servers.contains_key(ip) || scanners.contains_key(ip);
        // A host the model folded (`None`) is drawn in "other".
        let base = |ip: Option<IpAddr>| match ip {
            None => Node::Others,
            Some(ip) if by_subnet && !named(&ip) => Node::Subnet(Subnet::of(ip)),
            Some(ip) => Node::Host(ip),
        };
        let is_scan = |k: &EdgeKey| k.client.is_some_and(|c| scanners.contains_key(&c));
        let mut client_flows: BTreeMap<Node, u64> = BTreeMap::new();
        let mut server_flows: BTreeMap<Node, u64> = BTreeMap::new();
        for (k, u) in traffic {
            *client_flows.entry(base(k.client)).or_default() += u.flows;
            *server_flows.entry(base(k.server)).or_default() += u.flows;
        }
        let max_nodes = if by_subnet {
            MAX_SUBNET_NODES
        } else {
            MAX_NODES
        };
        let kept = |n: &Node| matches!(n, Node::Host(ip) if named(ip));
        let (client_of, folded_clients) = fold_smallest(&client_flows, max_nodes, kept);
        let (server_of, folded_servers) = fold_smallest(&server_flows, max_nodes, kept);
        let client = |ip| *client_of.get(&base(ip)).unwrap_or(&Node::Others);
        let server = |ip| *server_of.get(&base(ip)).unwrap_or(&Node::Others);
        let beyond =
            |side: fn(&EdgeKey) -> Option<IpAddr>| traffic.keys().any(|k| side(k).is_none());
        let hosts_beyond = (beyond(|k| k.client), beyond(|k| k.server));
        let beyond_flows = traffic
            .iter()
            .filter(|(k, _)| k.client.is_none() || k.server.is_none())
            .map(|(_, u)| u.flows)
            .sum();

        // Ports per server, ranked by their worst verdict and then by flows;
        // a scan's probes are one row of their own, not ports.
        let mut ports: BTreeMap<Node, BTreeMap<(Transport, u16), Tally>> = BTreeMap::new();
        let mut scanned: BTreeMap<Node, BTreeSet<(Transport, u16)>> = BTreeMap::new();
        for (k, u) in traffic {
            if is_scan(k) {
                scanned
                    .entry(server(k.server))
                    .or_default()
                    .insert((k.transport, k.port));
                continue;
            }
            ports
                .entry(server(k.server))
                .or_default()
                .entry((k.transport, k.port))
                .or_insert(Tally::new(k.verdict))
                .add(k.verdict, u.flows);
        }
        let rows = ports.len() + scanned.len();
        let per_server = (SERVICE_ROWS / rows.max(1)).clamp(2, MAX_SERVICES);
        let mut folded_services = 0;
        let mut kept_ports: HashMap<Node, BTreeSet<(Transport, u16)>> = HashMap::new();
        for (node, list) in &ports {
            let mut ranked: Vec<_> = list.iter().collect();
            ranked.sort_by_key(|(_, t)| Reverse((rank(t.worst), t.flows)));
            let keep = if ranked.len() > per_server {
                per_server - 1
            } else {
                ranked.len()
            };
            folded_services += ranked.len() - keep;
            kept_ports.insert(*node, ranked[..keep].iter().map(|(p, _)| **p).collect());
        }
        let service = |k: &EdgeKey, node: Node| {
            if is_scan(k) {
                Service::Scan
            } else if kept_ports
                .get(&node)
                .is_some_and(|kp| kp.contains(&(k.transport, k.port)))
            {
                Service::Port(k.transport, k.port)
            } else {
                Service::Others
            }
        };

        let mut edges: BTreeMap<(Node, Node, Service, Option<Verdict>), Edge> = BTreeMap::new();
        let mut services: BTreeMap<Node, BTreeMap<Service, Tally>> = BTreeMap::new();
        for (k, u) in traffic {
            let (c, s) = (client(k.client), server(k.server));
            let svc = service(k, s);
            // A scan's edge holds every verdict of its probes.
            let verdict = (svc != Service::Scan).then_some(k.verdict);
            let e = edges.entry((c, s, svc, verdict)).or_insert_with(|| Edge {
                client: c,
                server: s,
                service: svc,
                verdict: k.verdict,
                flows: 0,
                bytes: 0,
                ports: BTreeSet::new(),
                mix: BTreeMap::new(),
            });
            e.flows += u.flows;
            e.bytes = e.bytes.saturating_add(u.bytes);
            e.ports.insert((k.transport, k.port));
            *e.mix.entry(k.verdict).or_default() += u.flows;
            if rank(k.verdict) > rank(e.verdict) {
                e.verdict = k.verdict;
            }
            services
                .entry(s)
                .or_default()
                .entry(svc)
                .or_insert(Tally::new(k.verdict))
                .add(k.verdict, u.flows);
        }
        let mut edges: Vec<Edge> = edges.into_values().collect();
        let hidden_edges = edges.len().saturating_sub(MAX_EDGES);
        if hidden_edges > 0 {
            edges.sort_by_key(|e| Reverse((rank(e.verdict), e.flows)));
            edges.truncate(MAX_EDGES);
        }
        edges.sort_by(|a, b| {
            (rank(a.verdict), a.client, a.server, a.service).cmp(&(
                rank(b.verdict),
                b.client,
                b.server,
                b.service,
            ))
        });
        let clients: BTreeSet<Node> = edges.iter().map(|e| e.client).collect();
        let drawn: BTreeSet<(Node, Service)> =
            edges.iter().map(|e| (e.server, e.service)).collect();
        let server_nodes = services
            .into_iter()
            .map(|(node, list)| ServerNode {
                node,
                services: list
                    .into_iter()
                    .filter(|(svc, _)| drawn.contains(&(node, *svc)))
                    .map(|(svc, t)| (svc, t.worst, t.flows))
                    .collect(),
            })
            .filter(|s| !s.services.is_empty())
            .collect();
        Graph {
            hosts: hosts.len(),
            by_subnet,
            clients: clients.into_iter().collect(),
            servers: server_nodes,
            edges,
            folded_clients,
            folded_servers,
            folded_services,
            hidden_edges,
            hosts_beyond,
            beyond_flows,
            roles: servers.clone(),
            scanners,
            scanned: scanned.into_iter().map(|(n, p)| (n, p.len())).collect(),
        }
    }

    /// A node's label: its address and role, a scanner's port count, a
    /// subnet, or what "other" folds.
    pub fn label(&self, node: Node, client_side: bool) -> String {
        let (folded, beyond) = if client_side {
            (self.folded_clients, self.hosts_beyond.0)
        } else {
            (self.folded_servers, self.hosts_beyond.1)
        };
        match node {
            Node::Host(ip) => match (self.roles.get(&ip), self.scanners.get(&ip)) {
                (Some(Some(role)), _) => format!("{ip} \u{b7} {role}"),
                (Some(None), _) => format!("{ip} \u{b7} server"),
                (None, Some(&n)) => format!("{ip} \u{b7} scanner, {} ports", Count(n as u64)),
                (None, None) => ip.to_string(),
            },
            Node::Subnet(s) => s.to_string(),
            Node::Others if beyond => "other hosts (folded)".into(),
            Node::Others => format!("{folded} more (folded)"),
        }
    }

    /// A port row's label.
    pub fn service_label(&self, server: Node, s: Service) -> String {
        match s {
            Service::Port(t, p) => format!("{t}/{p}"),
            Service::Others => "other ports".into(),
            Service::Scan => format!(
                "scanned: {} ports",
                Count(self.scanned.get(&server).copied().unwrap_or(0) as u64)
            ),
        }
    }
}

/// Clients (not named servers) with flagged flows to at least [`SCAN_PORTS`]
/// distinct ports, and how many ports they reached in all (documented too).
fn scanners(
    traffic: &BTreeMap<EdgeKey, Usage>,
    servers: &BTreeMap<IpAddr, Option<String>>,
) -> BTreeMap<IpAddr, usize> {
    type Ports = BTreeSet<(Option<IpAddr>, Transport, u16)>;
    // Per client: (flagged ports, every port).
    let mut probed: BTreeMap<IpAddr, (Ports, Ports)> = BTreeMap::new();
    for k in traffic.keys() {
        if let Some(c) = k.client.filter(|c| !servers.contains_key(c)) {
            let p = probed.entry(c).or_default();
            if k.verdict != Verdict::Documented {
                p.0.insert((k.server, k.transport, k.port));
            }
            p.1.insert((k.server, k.transport, k.port));
        }
    }
    probed
        .into_iter()
        .filter(|(_, p)| p.0.len() >= SCAN_PORTS)
        .map(|(ip, p)| (ip, p.1.len()))
        .collect()
}

/// Flows to a port or service and the worst verdict among them.
#[derive(Debug, Clone, Copy)]
struct Tally {
    worst: Verdict,
    flows: u64,
}

impl Tally {
    fn new(v: Verdict) -> Tally {
        Tally { worst: v, flows: 0 }
    }

    fn add(&mut self, v: Verdict, flows: u64) {
        self.flows += flows;
        if rank(v) > rank(self.worst) {
            self.worst = v;
        }
    }
}

/// Keep the `max - 1` busiest nodes (all of them if they fit) and map the
/// rest to [`Node::Others`]; `kept` nodes stay and do not count. Returns the
/// map and how many were folded.
fn fold_smallest(
    flows: &BTreeMap<Node, u64>,
    max: usize,
    kept: impl Fn(&Node) -> bool,
) -> (HashMap<Node, Node>, usize) {
    let (mut map, rest): (HashMap<Node, Node>, Vec<(&Node, &u64)>) = {
        let (k, r): (Vec<_>, Vec<_>) = flows.iter().partition(|(n, _)| kept(n));
        (k.into_iter().map(|(&n, _)| (n, n)).collect(), r)
    };
    if rest.len() <= max {
        map.extend(rest.iter().map(|(&n, _)| (n, n)));
        return (map, 0);
    }
    let mut ranked = rest;
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    map.extend(
        ranked
            .iter()
            .enumerate()
            .map(|(i, (&n, _))| (n, if i + 1 < max { n } else { Node::Others })),
    );
    (map, ranked.len() + 1 - max)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::report) fn key(
        client: &str,
        server: &str,
        port: u16,
        verdict: Verdict,
    ) -> EdgeKey {
        EdgeKey {
            client: Some(client.parse().expect("ip")),
            server: Some(server.parse().expect("ip")),
            transport: Transport::Tcp,
            port,
            verdict,
        }
    }

    pub(in crate::report) fn usage(flows: u64) -> Usage {
        Usage {
            flows,
            ..Usage::default()
        }
    }

    /// Two clients of one server: two documented edges and a flagged one.
    pub(in crate::report) fn small_traffic() -> BTreeMap<EdgeKey, Usage> {
        BTreeMap::from([
            (
                key("10.0.0.1", "10.0.1.1", 443, Verdict::Documented),
                usage(3),
            ),
            (
                key("10.0.0.1", "10.0.1.1", 135, Verdict::Undocumented),
                usage(1),
            ),
            (
                key("10.0.0.2", "10.0.1.1", 443, Verdict::Documented),
                usage(1),
            ),
        ])
    }

    #[test]
    fn subnets_are_slash_24_and_slash_64() {
        let s = |ip: &str| Subnet::of(ip.parse().expect("ip")).to_string();
        assert_eq!(s("10.10.1.77"), "10.10.1.0/24");
        assert_eq!(s("fd00:10:10:20::51"), "fd00:10:10:20::/64");
    }

    #[test]
    fn small_traffic_keeps_every_host_and_port() {
        let t = small_traffic();
        let g = Graph::build(&t, &BTreeMap::new());
        assert_eq!(g.hosts, 3);
        assert!(!g.by_subnet);
        assert_eq!(g.clients.len(), 2);
        assert_eq!(g.servers.len(), 1);
        assert_eq!(g.servers[0].services.len(), 2);
        assert_eq!(g.edges.len(), 3);
        // Flagged edges are drawn last, on top.
        assert_eq!(g.edges[2].verdict, Verdict::Undocumented);
    }

    #[test]
    fn many_hosts_become_subnets_and_many_ports_fold() {
        let mut t = BTreeMap::new();
        for i in 0..150u32 {
            let client = format!("10.1.{}.{}", i / 50, i % 50 + 1);
            t.insert(
                key(&client, "10.9.0.1", 1000 + i as u16, Verdict::Undocumented),
                usage(1),
            );
        }
        let g = Graph::build(&t, &BTreeMap::new());
        assert!(g.by_subnet);
        assert_eq!(g.clients.len(), 3);
        assert_eq!(g.servers.len(), 1);
        assert_eq!(g.servers[0].services.len(), MAX_SERVICES);
        assert_eq!(g.folded_services, 150 - (MAX_SERVICES - 1));
        assert!(g.servers[0].services.iter().any(|s| s.0 == Service::Others));
    }

    #[test]
    fn servers_keep_their_node_and_a_scan_is_one_edge_per_server() {
        let mut t = BTreeMap::new();
        for i in 0..150u32 {
            let client = format!("10.1.{}.{}", i / 50, i % 50 + 1);
            t.insert(key(&client, "10.9.0.1", 443, Verdict::Documented), usage(1));
        }
        for port in 1..=100u16 {
            t.insert(
                key("10.7.7.7", "10.9.0.1", port, Verdict::Undocumented),
                usage(1),
            );
        }
        t.insert(
            key("10.7.7.7", "10.9.0.1", 1972, Verdict::WrongTransport),
            usage(1),
        );
        let server: IpAddr = "10.9.0.1".parse().expect("ip");
        let roles = BTreeMap::from([(server, Some("aacc_server".to_string()))]);
        let g = Graph::build(&t, &roles);
        assert!(g.by_subnet);
        assert_eq!(g.servers.len(), 1);
        assert_eq!(
            g.label(g.servers[0].node, false),
            "10.9.0.1 \u{b7} aacc_server"
        );
        let scanner: IpAddr = "10.7.7.7".parse().expect("ip");
        assert_eq!(g.scanners.get(&scanner), Some(&101));
        let scan: Vec<&Edge> = g
            .edges
            .iter()
            .filter(|e| e.service == Service::Scan)
            .collect();
        assert_eq!(scan.len(), 1, "one edge for the whole scan");
        assert_eq!(scan[0].flows, 101);
        assert_eq!(scan[0].mix.get(&Verdict::WrongTransport), Some(&1));
        // The server's own port is a row, not folded among the probes.
        let rows: Vec<Service> = g.servers[0].services.iter().map(|s| s.0).collect();
        assert_eq!(rows, [Service::Port(Transport::Tcp, 443), Service::Scan]);
        assert_eq!(g.folded_services, 0);
    }

    #[test]
    fn too_many_nodes_fold_the_quietest_into_one() {
        let mut t = BTreeMap::new();
        for i in 0..(MAX_NODES as u32 + 10) {
            let server = format!("10.2.0.{}", i + 1);
            t.insert(
                key("10.1.0.1", &server, 80, Verdict::Documented),
                usage(u64::from(i) + 1),
            );
        }
        let g = Graph::build(&t, &BTreeMap::new());
        assert!(!g.by_subnet);
        assert_eq!(g.servers.len(), MAX_NODES);
        assert_eq!(g.folded_servers, 11);
        assert!(g.servers.iter().any(|s| s.node == Node::Others));
        // The busiest server is kept.
        let busiest: IpAddr = format!("10.2.0.{}", MAX_NODES + 10).parse().expect("ip");
        assert!(g.servers.iter().any(|s| s.node == Node::Host(busiest)));
    }
}
