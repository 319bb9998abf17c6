//! The page's two pictures, each with what it leaves out: who talked to whom
//! (the diagram) and when flagged flows happened (the timeline).

use std::fmt::{self, Write};

use super::legend;
use crate::report::diagram;
use crate::report::escape::Esc;
use crate::report::graph::{self, Graph, MAX_HOSTS, SCAN_PORTS};
use crate::report::model::{Model, KEEP_HOSTS, MAX_EDGES};
use crate::report::timeline::{self, Flagged};
use crate::report::units::Count;

pub(super) fn diagram_section(out: &mut String, g: &Graph) -> fmt::Result {
    out.push_str("<h2 id=\"diagram\">Who talked to whom</h2>\n");
    if g.edges.is_empty() {
        out.push_str("<p class=\"muted\">No flows in the events.</p>\n");
        return Ok(());
    }
    out.push_str(
        "<p class=\"muted\">Left: the hosts that opened each flow; right: the hosts that \
         accepted it, with the ports they were reached on. Hosts are grouped by subnet \
         (/24, IPv6 /64); an edge's colour is the verdict, its width grows with the number \
         of flows; hover an edge for details.</p>\n",
    );
    let mut notes: Vec<String> = Vec::new();
    if g.by_subnet {
        notes.push(format!(
            "{} hosts are more than {MAX_HOSTS}: other hosts are drawn as their subnet, \
             but the {} servers (hosts that accepted documented flows, the busiest) keep \
             their own node, named with their role (the site's, else the system that \
             listens on most of their documented ports; \"a or b\" when the ports do not tell)",
            Count(g.hosts as u64),
            g.roles.len()
        ));
    }
    if !g.scanners.is_empty() {
        notes.push(format!(
            "{} scanner(s) (flagged flows to {SCAN_PORTS} ports or more): each one's flows \
             are one edge per server it probed, ending on that server's \"scanned\" row",
            g.scanners.len()
        ));
    }
    if g.folded_clients + g.folded_servers > 0 {
        notes.push(format!(
            "the quietest {} client and {} server nodes are folded into one",
            g.folded_clients, g.folded_servers
        ));
    }
    if g.hosts_beyond.0 || g.hosts_beyond.1 {
        notes.push(format!(
            "with more than {} host pairs, hosts beyond the {} busiest per side are counted \
together as other hosts ({} flows)",
            Count(MAX_EDGES as u64),
            Count(KEEP_HOSTS as u64),
            Count(g.beyond_flows),
        ));
    }
    if g.folded_services > 0 {
        notes.push(format!(
            "{} ports are folded into \"other ports\" (the most severe and busiest are shown per server)",
            Count(g.folded_services as u64),
        ));
    }
    if g.hidden_edges > 0 {
        notes.push(format!(
            "{} edges are not drawn (the flagged and busiest {} are)",
            Count(g.hidden_edges as u64),
            graph::MAX_EDGES
        ));
    }
    if !notes.is_empty() {
        writeln!(
            out,
            r#"<div class="note">Aggregated: {}.</div>"#,
            Esc(&notes.join("; "))
        )?;
    }
    legend(out, None)?;
    out.push_str("<div class=\"panel\" id=\"diagram-panel\">\n");
    diagram::write_svg(out, g)?;
    out.push_str("</div>\n");
    Ok(())
}

pub(super) fn timeline_section(out: &mut String, m: &Model) -> fmt::Result {
    out.push_str("<h2 id=\"timeline\">Timeline of flagged flows</h2>\n");
    let (Some(span), false) = (m.span, m.flagged.is_empty()) else {
        out.push_str("<p class=\"muted\">No flagged flows.</p>\n");
        return Ok(());
    };
    let flagged = if m.flagged_total == m.flagged.len() as u64 {
        out.push_str(
            "<p class=\"muted\">One mark per flagged flow, from its first to its last packet, \
             across the whole capture; overlapping flows stack. Hover a mark for the flow.</p>\n",
        );
        Flagged::Flows(&m.flagged)
    } else {
        writeln!(
            out,
            "<div class=\"note\">{} flagged flows are too many for one mark each: each bar \
             counts the flows that started in its slice of the capture (1/400 of the span), \
             scaled to the busiest slice of its verdict. Hover a bar for its count.</div>",
            Count(m.flagged_total)
        )?;
        Flagged::Starts(&m.flagged_starts)
    };
    out.push_str("<div class=\"panel\" id=\"timeline-panel\">\n");
    timeline::write_svg(out, flagged, span)?;
    out.push_str("</div>\n");
    Ok(())
}
