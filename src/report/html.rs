//! The page: one HTML document with its style, script and SVG inline. Every
//! string that came from the events or the rules goes through [`Esc`].

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::net::IpAddr;

use crate::matrix::{PortMatrix, Product};
use crate::verdict::Verdict;

use super::diagram;
use super::escape::{href_for_path, Esc};
use super::events::FlowRecord;
use super::graph::{self, Graph, MAX_HOSTS};
use super::model::{Coverage, Model, KEEP_HOSTS, MAX_EDGES, MAX_FLAGGED, MAX_LINE_ERRORS};
use super::theme::{self, colour, meaning, status_text};
use super::timeline::{self, Flagged};
use super::units::{ByteSize, Count, Span, TimeText};

/// Everything the page is made from.
pub struct Page<'a> {
    pub title: &'a str,
    pub model: &'a Model,
    pub matrix: &'a PortMatrix,
    pub product: Product,
}

/// Whether a counter of the stats event has its own place in the page (the
/// overview, or a named health row). Every other counter gets a health row of
/// its own, and a non-zero one is a warning: new loss counters, such as a live
/// capture's drops, appear without a code change.
fn shown_by_name(key: &str) -> bool {
    let group = key.split_once('.').map_or("", |(g, _)| g);
    ["packets", "bytes", "tcp_udp_packets", "flows", "evictions"].contains(&key)
        || [
            "flows_per_verdict",
            "other_protocols",
            "decode_failures",
            "encapsulated",
        ]
        .contains(&group)
}

/// Counters that are normal or chosen by the user (a focus, the evidence
/// caps), not a loss. Any other counter not named here is shown as a warning
/// when non-zero: a counter added later errs on the side of being noticed.
const BENIGN_COUNTERS: &[&str] = &[
    "timeouts",
    "active_flows",
    "filtered",
    "extract.files",
    "extract.packets",
    "extract.bytes",
    "extract.capped_packets",
    "extract.capped_flows",
    "alert_latency.count",
];

pub fn render(p: &Page<'_>) -> Result<String, fmt::Error> {
    let graph = Graph::build(&p.model.edges);
    let coverage = p.model.coverage(p.matrix, p.product);
    let mut out = String::with_capacity(128 * 1024);
    let css = theme::stylesheet();
    write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="portmatrix {version}">
<title>{title}</title>
<style>{css}</style>
</head><body><main>
<h1>{title}</h1>
"#,
        csp = theme::content_security_policy(&css, theme::SCRIPT),
        version = env!("CARGO_PKG_VERSION"),
        title = Esc(p.title),
    )?;
    subtitle(&mut out, p)?;
    overview(&mut out, p, &graph, &coverage)?;
    health(&mut out, p.model)?;
    diagram_section(&mut out, &graph)?;
    timeline_section(&mut out, p.model)?;
    flagged_section(&mut out, p)?;
    coverage_section(&mut out, p, &coverage)?;
    write!(
        out,
        "<footer>Written by portmatrix {} from the events of <code>portmatrix analyze --json --flows</code>. \
         Self-contained: no network access, opens from disk.</footer>\n</main>\n<script>{}</script>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        theme::SCRIPT
    )?;
    Ok(out)
}

fn subtitle(out: &mut String, p: &Page<'_>) -> fmt::Result {
    let names: Vec<&str> = p.model.inputs.iter().map(|i| i.name.as_str()).collect();
    write!(
        out,
        r#"<p class="sub">Events from <code>{}</code> checked against {} rules (profile <code>{}</code>)"#,
        Esc(&names.join(", ")),
        Count(p.matrix.rules().len() as u64),
        p.product.as_str()
    )?;
    if let Some((a, b)) = p.model.span {
        write!(
            out,
            "; traffic from {} to {} UTC",
            Esc(&TimeText::Full.show(a)),
            Esc(&TimeText::Full.show(b))
        )?;
    }
    out.push_str(".</p>\n");
    Ok(())
}

fn overview(out: &mut String, p: &Page<'_>, graph: &Graph, cov: &Coverage<'_>) -> fmt::Result {
    let m = p.model;
    let verdicts = m.flows_per_verdict();
    let flows: u64 = verdicts.values().sum();
    let flagged: u64 = verdicts
        .iter()
        .filter(|(v, _)| **v != Verdict::Documented)
        .map(|(_, n)| n)
        .sum();
    let stat = |k: &str| m.stats.as_ref().and_then(|s| s.get(k));
    let used = cov.rows.iter().filter(|r| r.usage.flows > 0).count();
    let candidates = cov.rows.iter().filter(|r| r.candidate).count();
    out.push_str("<h2 id=\"overview\">Overview</h2>\n<div class=\"cards\">\n");
    let card = |out: &mut String, class: &str, value: &str, key: &str| {
        writeln!(
            out,
            r#"<div class="card {class}"><div class="v">{}</div><div class="k">{}</div></div>"#,
            Esc(value),
            Esc(key)
        )
    };
    let or_dash = |v: Option<u64>, f: fn(u64) -> String| v.map_or_else(|| "—".to_string(), f);
    card(
        out,
        "",
        &or_dash(stat("packets"), |n| Count(n).to_string()),
        "packets",
    )?;
    card(
        out,
        "",
        &or_dash(stat("bytes"), |n| ByteSize(n).to_string()),
        "on the wire",
    )?;
    card(out, "", &Count(flows).to_string(), "TCP/UDP flows")?;
    card(
        out,
        if flagged > 0 { "alert" } else { "" },
        &Count(flagged).to_string(),
        "flagged flows (not documented)",
    )?;
    let span = m.span.map(|(a, b)| b.nanos_since(a));
    card(
        out,
        "",
        &span.map_or_else(|| "—".into(), |s| Span(s).to_string()),
        "time span",
    )?;
    card(out, "", &Count(graph.hosts as u64).to_string(), "hosts")?;
    card(
        out,
        "",
        &format!("{} / {}", Count(used as u64), Count(cov.rows.len() as u64)),
        "rules that saw traffic",
    )?;
    card(
        out,
        if candidates > 0 { "alert" } else { "" },
        &Count(candidates as u64).to_string(),
        "open rules never used",
    )?;
    out.push_str("</div>\n");
    if flows > 0 {
        // Drawn, not styled: the policy refuses `style=` widths.
        out.push_str(
            "<div class=\"bar\"><svg viewBox=\"0 0 100 1\" preserveAspectRatio=\"none\" \
             role=\"img\" aria-label=\"flows per verdict\">",
        );
        let mut x = 0.0;
        for (v, n) in &verdicts {
            let width = *n as f64 * 100.0 / flows as f64;
            write!(
                out,
                r#"<rect x="{x:.3}" width="{width:.3}" height="1" fill="{}"><title>{v}: {}</title></rect>"#,
                colour(*v),
                Count(*n)
            )?;
            x += width;
        }
        out.push_str("</svg></div>\n");
    }
    legend(out, Some(&verdicts))?;
    if let Some(stats) = &m.stats {
        let other: Vec<String> = stats
            .group("other_protocols")
            .map(|(k, n)| format!("{k} {}", Count(n)))
            .collect();
        if !other.is_empty() {
            writeln!(
                out,
                r#"<p class="muted">Not TCP/UDP (counted, not classified): {}.</p>"#,
                Esc(&other.join(", "))
            )?;
        }
    }
    Ok(())
}

/// The verdict colours, with counts when given; zero-count verdicts are shown
/// too, dimmed, so the legend is the same in every report.
fn legend(out: &mut String, counts: Option<&BTreeMap<Verdict, u64>>) -> fmt::Result {
    out.push_str("<div class=\"legend\">");
    for v in Verdict::ALL {
        let n = counts.map(|c| c.get(&v).copied().unwrap_or(0));
        write!(
            out,
            r#"<span title="{}"{}><span class="sw v-{}"></span>{v}"#,
            Esc(meaning(v)),
            if n == Some(0) {
                r#" class="muted""#
            } else {
                ""
            },
            v.as_str()
        )?;
        if let Some(n) = n {
            write!(out, " <b>{}</b>", Count(n))?;
        }
        out.push_str("</span>");
    }
    out.push_str("</div>\n");
    Ok(())
}

fn health(out: &mut String, m: &Model) -> fmt::Result {
    out.push_str("<h2 id=\"health\">Capture health</h2>\n");
    let mut problems: Vec<String> = Vec::new();
    let mut rows = String::new();
    // A row of the health table; `name` is indented under the row above when `sub`.
    let mut row = |name: &str, sub: bool, value: u64, warn: bool, note: &str| -> fmt::Result {
        writeln!(
            rows,
            r#"<tr><td{}>{}</td><td class="n{}">{}</td><td class="muted">{}</td></tr>"#,
            if sub { r#" class="sub""# } else { "" },
            Esc(name),
            if warn && value > 0 { " warnv" } else { "" },
            Count(value),
            Esc(note)
        )
    };
    match &m.stats {
        None => problems.push(
            "the events have no stats event (the run was cut short, or they are alerts only): \
             packet counts and decode failures are unknown"
                .into(),
        ),
        Some(stats) => {
            let failures: u64 = stats.group("decode_failures").map(|(_, n)| n).sum();
            row("packets not decoded", false, failures, true, "all reasons")?;
            for (reason, n) in stats.group("decode_failures") {
                row(reason, true, n, true, "decode failure")?;
            }
            let evictions = stats.get("evictions").unwrap_or(0);
            row(
                "flows evicted",
                false,
                evictions,
                true,
                "the flow table was full; evicted flows are reported early",
            )?;
            let input_errors = stats.files.iter().filter(|f| f.error.is_some()).count() as u64;
            row(
                "capture files read only in part",
                false,
                input_errors,
                true,
                "see the inputs below",
            )?;
            if failures > 0 {
                problems.push(format!("{} packets could not be decoded", Count(failures)));
            }
            if evictions > 0 {
                problems.push(format!("{} flows were evicted", Count(evictions)));
            }
            if input_errors > 0 {
                problems.push(format!(
                    "{input_errors} capture file(s) were read only in part"
                ));
            }
            for (key, &n) in &stats.counters {
                if shown_by_name(key) {
                    continue;
                }
                let benign = BENIGN_COUNTERS.contains(&key.as_str());
                row(
                    key,
                    false,
                    n,
                    !benign,
                    if benign {
                        "normal"
                    } else {
                        "reported by the capture"
                    },
                )?;
                if !benign && n > 0 {
                    problems.push(format!("{key}: {}", Count(n)));
                }
            }
        }
    }
    row(
        "malformed event lines skipped",
        false,
        m.bad_lines,
        true,
        "lines of the events files that could not be read",
    )?;
    if m.bad_lines > 0 {
        problems.push(format!(
            "{} event line(s) were malformed and skipped",
            Count(m.bad_lines)
        ));
    }
    let read_errors = m.inputs.iter().filter(|i| i.error.is_some()).count();
    if read_errors > 0 {
        problems.push(format!(
            "{read_errors} events file(s) could not be read to the end"
        ));
    }
    if problems.is_empty() {
        out.push_str(
            "<div class=\"good\">The data is complete: no decode failures, evictions, drops, \
             input errors or malformed event lines.</div>\n",
        );
    } else {
        writeln!(
            out,
            r#"<div class="bad"><b>The data is incomplete:</b> {}.</div>"#,
            Esc(&problems.join("; "))
        )?;
    }
    if m.flow_events == 0 && m.alert_events > 0 {
        out.push_str(
            "<div class=\"note\">These events have alerts but no <code>flow</code> events: \
             documented traffic, packet and byte counts are missing. Run \
             <code>portmatrix analyze --json --flows</code>.</div>\n",
        );
    } else if m.alerts_without_flow > 0 {
        writeln!(
            out,
            r#"<div class="note">{} flagged flow(s) have an alert but no <code>flow</code> event (still open, or the run was cut): they are listed without counts.</div>"#,
            Count(m.alerts_without_flow)
        )?;
    }
    writeln!(
        out,
        "<table class=\"health\"><thead><tr><th>Counter</th><th class=\"n\">Value</th><th>Meaning</th></tr></thead><tbody>\n{rows}</tbody></table>"
    )?;
    inputs(out, m)
}

fn inputs(out: &mut String, m: &Model) -> fmt::Result {
    out.push_str(
        "<h3>Inputs</h3>\n<table><thead><tr><th>Events file</th><th class=\"n\">Lines</th>\
         <th class=\"n\">Events</th><th class=\"n\">Malformed lines</th><th>Read error</th></tr></thead><tbody>\n",
    );
    for i in &m.inputs {
        writeln!(
            out,
            r#"<tr><td><code>{}</code></td><td class="n">{}</td><td class="n">{}</td><td class="n{}">{}</td><td>{}</td></tr>"#,
            Esc(&i.name),
            Count(i.lines),
            Count(i.events),
            if i.bad_lines > 0 { " warnv" } else { "" },
            Count(i.bad_lines),
            Esc(i.error.as_deref().unwrap_or(""))
        )?;
    }
    out.push_str("</tbody></table>\n");
    if let Some(stats) = m.stats.as_ref().filter(|s| !s.files.is_empty()) {
        // Many captures: folded, the ones read only in part first.
        let partial = stats.files.iter().filter(|f| f.error.is_some()).count();
        writeln!(
            out,
            "<details{}><summary>{} capture file(s), {} read only in part</summary>",
            if stats.files.len() <= 10 { " open" } else { "" },
            Count(stats.files.len() as u64),
            Count(partial as u64)
        )?;
        out.push_str(
            "<table><thead><tr><th>Capture file</th><th>Format</th><th class=\"n\">Packets</th>\
             <th class=\"n\">Bytes read</th><th>Error</th></tr></thead><tbody>\n",
        );
        let mut files: Vec<_> = stats.files.iter().collect();
        files.sort_by_key(|f| f.error.is_none());
        for f in files {
            writeln!(
                out,
                r#"<tr><td><code>{}</code></td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="err">{}</td></tr>"#,
                Esc(&f.path),
                Esc(&f.format),
                Count(f.packets),
                ByteSize(f.bytes_read),
                Esc(f.error.as_deref().unwrap_or(""))
            )?;
        }
        out.push_str("</tbody></table></details>\n");
    }
    if !m.line_errors.is_empty() {
        write!(
            out,
            "<details open><summary>{} malformed line(s) skipped{}</summary><ul class=\"mono\">",
            Count(m.bad_lines),
            if m.bad_lines > MAX_LINE_ERRORS as u64 {
                format!(" (the first {MAX_LINE_ERRORS} are listed)")
            } else {
                String::new()
            }
        )?;
        for e in &m.line_errors {
            write!(out, "<li>{}</li>", Esc(&e.to_string()))?;
        }
        out.push_str("</ul></details>\n");
    }
    Ok(())
}

fn diagram_section(out: &mut String, g: &Graph) -> fmt::Result {
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
            "{} hosts are more than {MAX_HOSTS}: each node is a subnet",
            Count(g.hosts as u64)
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

fn timeline_section(out: &mut String, m: &Model) -> fmt::Result {
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

/// A sort key that orders addresses numerically: `4:010.010.001.011:51234`.
fn addr_key(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!(
                "4:{:03}.{:03}.{:03}.{:03}:{port:05}",
                o[0], o[1], o[2], o[3]
            )
        }
        IpAddr::V6(v6) => format!("6:{:032x}:{port:05}", u128::from(v6)),
    }
}

fn socket(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(_) => format!("{ip}:{port}"),
        IpAddr::V6(_) => format!("[{ip}]:{port}"),
    }
}

fn flagged_section(out: &mut String, p: &Page<'_>) -> fmt::Result {
    let m = p.model;
    out.push_str("<h2 id=\"flagged\">Flagged flows</h2>\n");
    if m.flagged.is_empty() {
        out.push_str(
            "<div class=\"good\">No flagged flows: every flow is documented by the matrix.</div>\n",
        );
        return Ok(());
    }
    write!(
        out,
        "<p class=\"muted\">{} flows the matrix does not allow, most severe first. Click a header to sort.",
        Count(m.flagged_total)
    )?;
    if m.flagged_total > m.flagged.len() as u64 {
        write!(
            out,
            " Only the {} most severe and earliest are listed.",
            Count(MAX_FLAGGED as u64)
        )?;
    }
    out.push_str("</p>\n");
    out.push_str(
        "<table class=\"sortable\" id=\"flagged-table\"><thead><tr>\
         <th data-type=\"num\">First seen</th><th data-type=\"num\">Last seen</th><th>Verdict</th>\
         <th data-type=\"num\">Severity</th><th>Proto</th><th>Client</th><th>Server</th>\
         <th>Rules</th><th>Rule description</th><th class=\"n\" data-type=\"num\">Packets</th>\
         <th class=\"n\" data-type=\"num\">Bytes</th><th>Evidence</th></tr></thead><tbody>\n",
    );
    for r in &m.flagged {
        flagged_row(out, p, r)?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

fn flagged_row(out: &mut String, p: &Page<'_>, r: &FlowRecord) -> fmt::Result {
    write!(
        out,
        r#"<tr><td data-sort="{}">{}</td><td data-sort="{}">{}</td><td><span class="badge v-{}">{}</span></td><td data-sort="{}">{}</td><td>{}{}</td><td data-sort="{}" class="mono">{}</td><td data-sort="{}" class="mono">{}</td>"#,
        r.first.as_nanos(),
        Esc(&TimeText::Full.show(r.first)),
        r.last.as_nanos(),
        Esc(&TimeText::Full.show(r.last)),
        r.verdict.as_str(),
        r.verdict,
        r.severity as u8,
        r.severity,
        r.transport.as_str().to_ascii_uppercase(),
        r.vlan.map_or(String::new(), |v| format!(" (vlan {v})")),
        addr_key(r.client.0, r.client.1),
        Esc(&socket(r.client.0, r.client.1)),
        addr_key(r.server.0, r.server.1),
        Esc(&socket(r.server.0, r.server.1)),
    )?;
    out.push_str("<td class=\"mono ids\">");
    for (i, id) in r.rule_ids.iter().enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        write!(out, "{}", Esc(id))?;
    }
    out.push_str("</td><td class=\"desc\">");
    if r.rule_ids.is_empty() {
        out.push_str("<span class=\"muted\">no rule covers this port</span>");
    }
    for id in &r.rule_ids {
        match p.matrix.find(id) {
            Some(rule) if !rule.description.is_empty() => {
                write!(out, "{}", Clamped("clamp", &rule.description))?
            }
            Some(rule) => write!(out, "{}", Clamped("clamp", &rule.component))?,
            None => out.push_str("<div class=\"muted\">not in this matrix</div>"),
        }
    }
    out.push_str("</td>");
    let count = |out: &mut String, v: Option<u64>, f: &dyn Fn(u64) -> String| match v {
        Some(n) => write!(out, r#"<td class="n" data-sort="{n}">{}</td>"#, f(n)),
        None => out.write_str(r#"<td class="n muted" data-sort="-1">—</td>"#),
    };
    count(out, r.packets, &|n| Count(n).to_string())?;
    count(out, r.bytes, &|n| Count(n).to_string())?;
    out.push_str("<td>");
    if let Some(path) = &r.evidence {
        let name = path.rsplit('/').next().unwrap_or(path);
        match href_for_path(path) {
            Some(href) => write!(
                out,
                r#"<a href="{}" title="{}">{}</a>"#,
                Esc(&href),
                Esc(path),
                Esc(name)
            )?,
            None => write!(out, r#"<span class="mono">{}</span>"#, Esc(path))?,
        }
    }
    out.push_str("</td></tr>\n");
    Ok(())
}

fn coverage_section(out: &mut String, p: &Page<'_>, cov: &Coverage<'_>) -> fmt::Result {
    let candidates = cov.rows.iter().filter(|r| r.candidate).count();
    out.push_str("<h2 id=\"coverage\">Matrix coverage</h2>\n");
    write!(
        out,
        "<p class=\"muted\">Every rule of the matrix and the traffic it covered. \
         <b>{}</b> rules are open for the <code>{}</code> profile but saw no traffic \
         (highlighted): candidates to close in the firewall, if the capture saw \
         everything that should pass.",
        Count(candidates as u64),
        p.product.as_str()
    )?;
    if p.model.flow_events == 0 {
        out.push_str(" Without <code>flow</code> events only flagged flows count here.");
    }
    out.push_str("</p>\n");
    out.push_str(
        "<table class=\"sortable\" id=\"coverage-table\"><thead><tr><th>Rule</th>\
         <th>Component</th><th>Description</th><th>Ports</th><th>Rule status</th>\
         <th class=\"n\" data-type=\"num\">Flows</th><th class=\"n\" data-type=\"num\">Flagged</th>\
         <th class=\"n\" data-type=\"num\">Bytes</th><th data-type=\"num\">First seen</th>\
         <th data-type=\"num\">Last seen</th><th>Use</th></tr></thead><tbody>\n",
    );
    for row in &cov.rows {
        let r = row.rule;
        let status = if r.needs_roles {
            "needs site roles"
        } else {
            status_text(row.status)
        };
        let usage = if row.usage.flows > 0 {
            "used"
        } else if row.candidate {
            "never used \u{2014} candidate to close"
        } else {
            "never used"
        };
        let time = |t: Option<crate::timestamp::Timestamp>| {
            t.map_or((i64::MIN.to_string(), String::new()), |t| {
                (t.as_nanos().to_string(), TimeText::Full.show(t))
            })
        };
        let (first_key, first) = time(row.usage.first);
        let (last_key, last) = time(row.usage.last);
        writeln!(
            out,
            r#"<tr{}><td class="mono ids">{}</td><td class="comp">{}</td><td class="desc">{}</td><td class="mono">{} {}</td><td>{}</td><td class="n">{}</td><td class="n">{}</td><td class="n" data-sort="{}">{}</td><td data-sort="{first_key}">{}</td><td data-sort="{last_key}">{}</td><td class="use">{}</td></tr>"#,
            if row.candidate {
                r#" class="candidate""#
            } else {
                ""
            },
            Esc(&r.id),
            Clamped("clamp2", &r.component),
            Clamped("clamp", &r.description),
            Esc(&r.transports_text()),
            Esc(&r.ports_text()),
            status,
            Count(row.usage.flows),
            Count(row.usage.flagged),
            row.usage.bytes,
            ByteSize(row.usage.bytes),
            Esc(&first),
            Esc(&last),
            usage
        )?;
    }
    out.push_str("</tbody></table>\n");
    if !cov.unknown.is_empty() {
        out.push_str(
            "<div class=\"note\">The events name rules this matrix does not have (they were \
             written with other rules files; pass the same <code>--rules</code>): ",
        );
        let ids: Vec<String> = cov
            .unknown
            .iter()
            .map(|(id, u)| {
                let s = if u.flows == 1 { "" } else { "s" };
                format!("{id} ({} flow{s})", u.flows)
            })
            .collect();
        writeln!(out, "{}.</div>", Esc(&ids.join(", ")))?;
    }
    Ok(())
}

/// Long document text, cut to a few lines on screen; the whole text is the
/// tooltip and stays in the page (search finds it).
struct Clamped<'a>(&'static str, &'a str);

impl fmt::Display for Clamped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            r#"<div class="{}" title="{}">{}</div>"#,
            self.0,
            Esc(self.1),
            Esc(self.1)
        )
    }
}
