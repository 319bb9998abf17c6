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
    /// ([`super::model::fold_hosts`]): their "other" node has no count.
    pub hosts_beyond: (bool, bool),
    /// The flows of those hosts.
    pub beyond_flows: u64,
}

impl Graph {
    pub fn build(traffic: &BTreeMap<EdgeKey, Usage>) -> Graph {
        let hosts: BTreeSet<IpAddr> = traffic
            .keys()
            .flat_map(|k| [k.client, k.server])
            .flatten()
            .collect();
        let by_subnet = hosts.len() > MAX_HOSTS;
        // A host the model folded (`None`) is drawn in "other".
        let base = |ip: Option<IpAddr>| match ip {
            None => Node::Others,
            Some(ip) if by_subnet => Node::Subnet(Subnet::of(ip)),
            Some(ip) => Node::Host(ip),
        };
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
        let (client_of, folded_clients) = fold_smallest(&client_flows, max_nodes);
        let (server_of, folded_servers) = fold_smallest(&server_flows, max_nodes);
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

        // Ports per server, ranked by their worst verdict and then by flows.
        let mut ports: BTreeMap<Node, BTreeMap<(Transport, u16), Tally>> = BTreeMap::new();
        for (k, u) in traffic {
            ports
                .entry(server(k.server))
                .or_default()
                .entry((k.transport, k.port))
                .or_insert(Tally::new(k.verdict))
                .add(k.verdict, u.flows);
        }
        let per_server = (SERVICE_ROWS / ports.len().max(1)).clamp(2, MAX_SERVICES);
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
        let service = |node: Node, p: (Transport, u16)| {
            if kept_ports.get(&node).is_some_and(|k| k.contains(&p)) {
                Service::Port(p.0, p.1)
            } else {
                Service::Others
            }
        };

        let mut edges: BTreeMap<(Node, Node, Service, Verdict), Edge> = BTreeMap::new();
        let mut services: BTreeMap<Node, BTreeMap<Service, Tally>> = BTreeMap::new();
        for (k, u) in traffic {
            let (c, s) = (client(k.client), server(k.server));
            let svc = service(s, (k.transport, k.port));
            let e = edges.entry((c, s, svc, k.verdict)).or_insert_with(|| Edge {
                client: c,
                server: s,
                service: svc,
                verdict: k.verdict,
                flows: 0,
                bytes: 0,
                ports: BTreeSet::new(),
            });
            e.flows += u.flows;
            e.bytes = e.bytes.saturating_add(u.bytes);
            e.ports.insert((k.transport, k.port));
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
        let servers = services
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
            servers,
            edges,
            folded_clients,
            folded_servers,
            folded_services,
            hidden_edges,
            hosts_beyond,
            beyond_flows,
        }
    }
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
/// rest to [`Node::Others`]; returns the map and how many were folded.
fn fold_smallest(flows: &BTreeMap<Node, u64>, max: usize) -> (HashMap<Node, Node>, usize) {
    if flows.len() <= max {
        return (flows.keys().map(|&n| (n, n)).collect(), 0);
    }
    let mut ranked: Vec<(&Node, &u64)> = flows.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let map = ranked
        .iter()
        .enumerate()
        .map(|(i, (&n, _))| (n, if i + 1 < max { n } else { Node::Others }))
        .collect();
    (map, flows.len() + 1 - max)
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

    #[test]
    fn subnets_are_slash_24_and_slash_64() {
        let s = |ip: &str| Subnet::of(ip.parse().expect("ip")).to_string();
        assert_eq!(s("10.10.1.77"), "10.10.1.0/24");
        assert_eq!(s("fd00:10:10:20::51"), "fd00:10:10:20::/64");
    }

    #[test]
    fn small_traffic_keeps_every_host_and_port() {
        let mut t = BTreeMap::new();
        t.insert(
            key("10.0.0.1", "10.0.1.1", 443, Verdict::Documented),
            usage(3),
        );
        t.insert(
            key("10.0.0.1", "10.0.1.1", 135, Verdict::Undocumented),
            usage(1),
        );
        t.insert(
            key("10.0.0.2", "10.0.1.1", 443, Verdict::Documented),
            usage(1),
        );
        let g = Graph::build(&t);
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
        let g = Graph::build(&t);
        assert!(g.by_subnet);
        assert_eq!(g.clients.len(), 3);
        assert_eq!(g.servers.len(), 1);
        assert_eq!(g.servers[0].services.len(), MAX_SERVICES);
        assert_eq!(g.folded_services, 150 - (MAX_SERVICES - 1));
        assert!(g.servers[0].services.iter().any(|s| s.0 == Service::Others));
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
        let g = Graph::build(&t);
        assert!(!g.by_subnet);
        assert_eq!(g.servers.len(), MAX_NODES);
        assert_eq!(g.folded_servers, 11);
        assert!(g.servers.iter().any(|s| s.node == Node::Others));
        // The busiest server is kept.
        let busiest: IpAddr = format!("10.2.0.{}", MAX_NODES + 10).parse().expect("ip");
        assert!(g.servers.iter().any(|s| s.node == Node::Host(busiest)));
    }
}
