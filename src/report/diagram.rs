//! Who talked to whom, as inline SVG: clients (the side that opened the flow)
//! on the left, grouped by subnet; servers on the right, grouped by subnet,
//! each with the ports it was reached on. Every edge runs from a client to a
//! server's port, so the port row at its end is its label, and no label sits
//! on a crossing. Colour is the verdict.
//!
//! The layout is computed here, deterministically (sorted addresses, no
//! physics), so the same events always draw the same picture. Beyond
//! [`MAX_HOSTS`] hosts the nodes become subnets; beyond [`MAX_NODES`] per side
//! ([`MAX_SUBNET_NODES`] for subnets), [`MAX_SERVICES`] ports per server (fewer
//! when many servers share [`SERVICE_ROWS`]) or [`MAX_EDGES`] edges the quietest
//! are folded into "other" nodes and ports, and the page says so. The caps keep
//! the picture within a few screens.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::transport::Transport;
use crate::verdict::Verdict;

use super::escape::Esc;
use super::model::{EdgeKey, Usage};
use super::theme::{colour, rank};
use super::units::{ByteSize, Count};

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
    fn group(self) -> Option<Subnet> {
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

const WIDTH: f64 = 1240.0;
const LEFT_X: f64 = 330.0;
const RIGHT_X: f64 = 880.0;
const TOP: f64 = 44.0;
const ROW: f64 = 19.0;
const HEADER: f64 = 22.0;
const GAP: f64 = 14.0;

/// What a column is made of, top to bottom.
enum Row<'g> {
    Group(Subnet, usize),
    Client(Node),
    Server(&'g ServerNode),
    Service(Node, Service, Verdict, u64),
    Gap,
}

fn height(rows: &[Row<'_>]) -> f64 {
    rows.iter()
        .map(|r| match r {
            Row::Group(..) => HEADER,
            Row::Gap => GAP,
            _ => ROW,
        })
        .sum()
}

/// Rows of a column: nodes in subnet groups, a gap between groups.
fn column<'g, T>(
    items: &'g [T],
    node: impl Fn(&T) -> Node,
    rows_of: impl Fn(&'g T) -> Vec<Row<'g>>,
) -> Vec<Row<'g>> {
    let mut rows = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let group = node(&items[i]).group();
        let n = items[i..]
            .iter()
            .take_while(|t| node(t).group() == group)
            .count();
        if !rows.is_empty() {
            rows.push(Row::Gap);
        }
        if let Some(g) = group {
            rows.push(Row::Group(g, n));
        }
        for item in &items[i..i + n] {
            rows.extend(rows_of(item));
        }
        i += n;
    }
    rows
}

fn node_label(node: Node, folded: usize, beyond: bool) -> String {
    match node {
        Node::Host(ip) => ip.to_string(),
        Node::Subnet(s) => s.to_string(),
        Node::Others if beyond => "other hosts (folded)".into(),
        Node::Others => format!("{folded} more (folded)"),
    }
}

fn service_label(s: Service) -> String {
    match s {
        Service::Port(t, p) => format!("{t}/{p}"),
        Service::Others => "other ports".into(),
    }
}

/// Write the diagram as one `<svg>` element.
pub fn write_svg(out: &mut String, g: &Graph) -> fmt::Result {
    let left = column(&g.clients, |n| *n, |n| vec![Row::Client(*n)]);
    let right = column(
        &g.servers,
        |s| s.node,
        |s| {
            let mut rows = vec![Row::Server(s)];
            rows.extend(
                s.services
                    .iter()
                    .map(|&(svc, v, n)| Row::Service(s.node, svc, v, n)),
            );
            rows
        },
    );
    let (lh, rh) = (height(&left), height(&right));
    let body = lh.max(rh).max(ROW);
    let total = TOP + body + 16.0;
    writeln!(
        out,
        r#"<svg id="diagram-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {total}" width="{WIDTH}" height="{total}" role="img" aria-label="Who talked to whom">"#
    )?;
    writeln!(
        out,
        r##"<text x="{LEFT_X}" y="20" text-anchor="end" font-size="13" font-weight="600" fill="#1d2330">Clients (opened the flow)</text><text x="{RIGHT_X}" y="20" font-size="13" font-weight="600" fill="#1d2330">Servers and the ports they were reached on</text>"##
    )?;
    let mut anchors = Anchors::default();
    let mut shapes = String::new();
    for (rows, h, side) in [(&left, lh, Side::Left), (&right, rh, Side::Right)] {
        // The shorter column is spread over the height: its spare room is
        // shared between the gaps and both ends, so edges do not all climb
        // to one corner.
        let slots = rows.iter().filter(|r| matches!(r, Row::Gap)).count() as f64 + 2.0;
        let share = (body - h) / slots;
        draw_column(&mut shapes, rows, TOP + share, share, side, g, &mut anchors)?;
    }
    out.push_str("<g fill=\"none\">\n");
    let mid = (LEFT_X + RIGHT_X) / 2.0;
    for e in &g.edges {
        let (Some(&y1), Some(&y2)) = (
            anchors.clients.get(&e.client),
            anchors.services.get(&(e.server, e.service)),
        ) else {
            continue;
        };
        let width = 1.2 + (e.flows as f64).log2().clamp(0.0, 6.0) * 0.5;
        let opacity = if e.verdict == Verdict::Documented {
            0.55
        } else {
            0.9
        };
        write!(
            out,
            r#"<path class="edge" data-verdict="{v}" d="M{x1},{y1:.1} C{mid},{y1:.1} {mid},{y2:.1} {x2},{y2:.1}" stroke="{c}" stroke-width="{width:.2}" stroke-opacity="{opacity}"><title>"#,
            v = e.verdict,
            x1 = LEFT_X + 5.0,
            x2 = RIGHT_X - 5.0,
            c = colour(e.verdict),
        )?;
        let ports: Vec<String> = e
            .ports
            .iter()
            .take(20)
            .map(|(t, p)| format!("{t}/{p}"))
            .collect();
        write!(
            out,
            "{} \u{2192} {} {}: {}, {} flow{}, {}",
            Esc(&node_label(e.client, g.folded_clients, g.hosts_beyond.0)),
            Esc(&node_label(e.server, g.folded_servers, g.hosts_beyond.1)),
            Esc(&ports.join(" ")),
            e.verdict,
            Count(e.flows),
            if e.flows == 1 { "" } else { "s" },
            ByteSize(e.bytes)
        )?;
        out.push_str("</title></path>\n");
    }
    out.push_str("</g>\n");
    out.push_str(&shapes);
    out.push_str("</svg>\n");
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// Where edges attach: the y of each client dot and each server port dot.
#[derive(Default)]
struct Anchors {
    clients: HashMap<Node, f64>,
    services: HashMap<(Node, Service), f64>,
}

/// Draw one column from `top`, each gap between groups widened by `stretch`.
fn draw_column(
    out: &mut String,
    rows: &[Row<'_>],
    top: f64,
    stretch: f64,
    side: Side,
    g: &Graph,
    anchors: &mut Anchors,
) -> fmt::Result {
    let (box_x, box_w) = match side {
        Side::Left => (12.0, LEFT_X + 14.0 - 12.0),
        Side::Right => (RIGHT_X - 14.0, WIDTH - 12.0 - (RIGHT_X - 14.0)),
    };
    let mut y = top;
    let mut group_box: Option<(f64, &Subnet, usize)> = None;
    let close = |out: &mut String, start: Option<(f64, &Subnet, usize)>, end: f64| -> fmt::Result {
        if let Some((y0, subnet, n)) = start {
            write!(
                out,
                r##"<rect class="subnet" x="{box_x}" y="{y0:.1}" width="{box_w}" height="{h:.1}" rx="6" fill="#f3f5f8" stroke="#c9d1dc"/>"##,
                h = end - y0 + 3.0
            )?;
            let tx = match side {
                Side::Left => box_x + 8.0,
                Side::Right => box_x + 8.0,
            };
            writeln!(
                out,
                r##"<text x="{tx}" y="{ty:.1}" font-size="11.5" font-weight="600" fill="#5f6b7a">{} · {n} host{}</text>"##,
                Esc(&subnet.to_string()),
                if n == 1 { "" } else { "s" },
                ty = y0 + 15.0
            )?;
        }
        Ok(())
    };
    // Boxes are drawn behind their rows: collect rows, then boxes first.
    let mut boxes = String::new();
    let mut items = String::new();
    for row in rows {
        match row {
            Row::Gap => {
                close(&mut boxes, group_box.take(), y)?;
                y += GAP + stretch;
            }
            Row::Group(subnet, n) => {
                group_box = Some((y, subnet, *n));
                y += HEADER;
            }
            Row::Client(node) => {
                let cy = y + ROW / 2.0;
                anchors.clients.insert(*node, cy);
                let label = node_label(*node, g.folded_clients, g.hosts_beyond.0);
                write!(
                    items,
                    r##"<g class="node"><circle cx="{LEFT_X}" cy="{cy:.1}" r="4.5" fill="#1d2330"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="12" fill="#1d2330">{}</text></g>"##,
                    Esc(&label),
                    tx = LEFT_X - 10.0,
                    ty = cy + 4.0
                )?;
                items.push('\n');
                y += ROW;
            }
            Row::Server(s) => {
                let label = node_label(s.node, g.folded_servers, g.hosts_beyond.1);
                writeln!(
                    items,
                    r##"<text class="node" x="{tx}" y="{ty:.1}" font-size="12" font-weight="600" fill="#1d2330">{}</text>"##,
                    Esc(&label),
                    tx = RIGHT_X + 2.0,
                    ty = y + ROW / 2.0 + 4.0
                )?;
                y += ROW;
            }
            Row::Service(node, svc, verdict, flows) => {
                let cy = y + ROW / 2.0;
                anchors.services.insert((*node, *svc), cy);
                writeln!(
                    items,
                    r##"<g class="service"><circle cx="{RIGHT_X}" cy="{cy:.1}" r="4" fill="{c}"/><text x="{tx}" y="{ty:.1}" font-size="12" fill="#1d2330"><tspan class="mono">{}</tspan><tspan fill="#5f6b7a" font-size="11"> · {} flow{}</tspan></text></g>"##,
                    Esc(&service_label(*svc)),
                    Count(*flows),
                    if *flows == 1 { "" } else { "s" },
                    c = colour(*verdict),
                    tx = RIGHT_X + 16.0,
                    ty = cy + 4.0
                )?;
                y += ROW;
            }
        }
    }
    close(&mut boxes, group_box.take(), y)?;
    out.push_str(&boxes);
    out.push_str(&items);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Usage;

    fn key(client: &str, server: &str, port: u16, verdict: Verdict) -> EdgeKey {
        EdgeKey {
            client: Some(client.parse().expect("ip")),
            server: Some(server.parse().expect("ip")),
            transport: Transport::Tcp,
            port,
            verdict,
        }
    }

    fn usage(flows: u64) -> Usage {
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
    fn small_traffic_draws_every_host_and_port() {
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
        let mut svg = String::new();
        write_svg(&mut svg, &g).expect("render");
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 3);
        assert!(svg.contains("tcp/135"));
        assert!(svg.contains("10.0.0.0/24 · 2 hosts"));
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
