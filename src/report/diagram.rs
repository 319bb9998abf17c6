//! Who talked to whom, as inline SVG: clients (the side that opened the flow)
//! on the left, grouped by subnet; servers on the right, grouped by subnet,
//! each with the ports it was reached on. Every edge runs from a client to a
//! server's port, so the port row at its end is its label, and no label sits
//! on a crossing. Colour is the verdict.
//!
//! The layout of the [`Graph`] (see `super::graph` for what it holds and
//! folds) is computed here, deterministically (rows in the graph's order, no
//! physics), so the same events always draw the same picture.

use std::collections::HashMap;
use std::fmt::{self, Write};

use crate::verdict::Verdict;

use super::escape::Esc;
use super::graph::{Graph, Node, ServerNode, Service, Subnet};
use super::theme::colour;
use super::units::{ByteSize, Count};

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
        let mut ports: Vec<String> = e
            .ports
            .iter()
            .take(20)
            .map(|(t, p)| format!("{t}/{p}"))
            .collect();
        if e.ports.len() > 20 {
            ports.push(format!("\u{2026} {} ports", e.ports.len()));
        }
        let verdicts: Vec<String> = e.mix.iter().map(|(v, n)| format!("{v} {n}")).collect();
        write!(
            out,
            "{} \u{2192} {} {}: {}, {} flow{}, {}",
            Esc(&g.label(e.client, true)),
            Esc(&g.label(e.server, false)),
            Esc(&ports.join(" ")),
            Esc(&verdicts.join(", ")),
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

/// A host node's address, for the page's drill-down (a click filters the
/// flagged flows on it); subnets and "other" have none.
fn host_attr(node: Node) -> String {
    match node {
        Node::Host(ip) => format!(r#" data-host="{ip}""#),
        _ => String::new(),
    }
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
                let label = g.label(*node, true);
                write!(
                    items,
                    r##"<g class="node"{}><circle cx="{LEFT_X}" cy="{cy:.1}" r="4.5" fill="#1d2330"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="12" fill="#1d2330">{}</text></g>"##,
                    host_attr(*node),
                    Esc(&label),
                    tx = LEFT_X - 10.0,
                    ty = cy + 4.0
                )?;
                items.push('\n');
                y += ROW;
            }
            Row::Server(s) => {
                let label = g.label(s.node, false);
                writeln!(
                    items,
                    r##"<text class="node"{} x="{tx}" y="{ty:.1}" font-size="12" font-weight="600" fill="#1d2330">{}</text>"##,
                    host_attr(s.node),
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
                    Esc(&g.service_label(*node, *svc)),
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
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::graph::tests::small_traffic;

    #[test]
    fn small_traffic_draws_every_host_and_port() {
        let t = small_traffic();
        let mut svg = String::new();
        write_svg(&mut svg, &Graph::build(&t, &BTreeMap::new())).expect("render");
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 3);
        assert!(svg.contains("tcp/135"));
        assert!(svg.contains("10.0.0.0/24 · 2 hosts"));
    }
}
