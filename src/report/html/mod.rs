//! The page: one HTML document with its style, script and SVG inline. Every
//! string that came from the events or the rules goes through [`Esc`]. The
//! head, the overview and the legend are here; the other sections, in the
//! page's order, are in [`health`], [`pictures`] (the diagram and the
//! timeline) and [`tables`] (flagged flows, matrix coverage).

mod health;
mod pictures;
mod sensors;
mod tables;

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use crate::matrix::{PortMatrix, Product};
use crate::verdict::Verdict;

use super::coverage::Coverage;
use super::escape::Esc;
use super::graph::Graph;
use super::model::Model;
use super::theme::{self, colour, meaning};
use super::units::{ByteSize, Count, Span, TimeText};

/// Everything the page is made from.
pub struct Page<'a> {
    pub title: &'a str,
    pub model: &'a Model,
    pub matrix: &'a PortMatrix,
    pub product: Product,
    /// With `report --baseline`: the changes since the baseline's events.
    pub drift: Option<&'a super::drift::Drift>,
}

/// The page. It depends only on the events, not on the order they came in
/// (as long as each flow's own events keep theirs), except in two marked
/// places that name where they came from (files, stdin, a Kafka topic): the
/// subtitle's `<code id="input-names">` and the `<section id="inputs">` of
/// the health section (events files, their lines, malformed lines). A test
/// that compares the pages of one fleet's events read two ways removes those
/// two elements first.
pub fn render(p: &Page<'_>) -> Result<String, fmt::Error> {
    let graph = Graph::build(&p.model.edges, &p.model.servers.kept(p.matrix));
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
    toc(&mut out, p)?;
    overview(&mut out, p, &graph, &coverage)?;
    health::health(&mut out, p.model)?;
    sensors::section(&mut out, p.model)?;
    pictures::diagram_section(&mut out, &graph)?;
    pictures::timeline_section(&mut out, p.model)?;
    tables::flagged_section(&mut out, p)?;
    tables::top_ports_section(&mut out, p.model)?;
    tables::coverage_section(&mut out, p, &coverage)?;
    if let Some(drift) = p.drift {
        super::drift_html::section(&mut out, drift)?;
    }
    write!(
        out,
        "<footer>Written by portmatrix {} from the events of <code>portmatrix analyze --json --flows</code>. \
         Self-contained: no network access, opens from disk.</footer>\n</main>\n<script>{}</script>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        theme::SCRIPT
    )?;
    Ok(out)
}

/// Links to every section; matrix coverage, what a firewall audit reads
/// first, stands out. Sticky, so any section is one click away.
fn toc(out: &mut String, p: &Page<'_>) -> fmt::Result {
    out.push_str("<nav class=\"toc\" aria-label=\"Sections\">");
    let mut sections = vec![
        ("coverage", "Matrix coverage", true),
        ("overview", "Overview", false),
        ("health", "Capture health", false),
        ("sensors", "Sensors", false),
        ("diagram", "Who talked to whom", false),
        ("timeline", "Timeline", false),
        ("flagged", "Flagged flows", false),
        ("top-ports", "Top undocumented ports", false),
    ];
    if p.drift.is_some() {
        sections.push(("drift", "Changes since the baseline", false));
    }
    if p.model.sensors.is_empty() {
        sections.retain(|s| s.0 != "sensors");
    }
    for (id, name, key) in sections {
        write!(
            out,
            r##"<a href="#{id}"{}>{name}</a>"##,
            if key { r#" class="key""# } else { "" }
        )?;
    }
    out.push_str("</nav>\n");
    Ok(())
}

fn subtitle(out: &mut String, p: &Page<'_>) -> fmt::Result {
    let names: Vec<&str> = p.model.inputs.iter().map(|i| i.name.as_str()).collect();
    write!(
        out,
        r#"<p class="sub">Events from <code id="input-names">{}</code> checked against {} rules (profile <code>{}</code>)"#,
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
    let (since, until) = p.model.window;
    if since.is_some() || until.is_some() {
        let bound = |t: Option<crate::timestamp::Timestamp>, none: &str| {
            t.map_or(none.to_string(), |t| TimeText::Full.show(t) + " UTC")
        };
        write!(
            out,
            "; only the flows that overlap {} to {} ({} left out; the stats counters cover \
             the whole runs)",
            Esc(&bound(since, "the start")),
            Esc(&bound(until, "the end")),
            Count(p.model.outside_window)
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
    // Sensors that watch the same links see the same packets: their counts add up.
    let (packets, wire) = if m.sensors.len() > 1 {
        (
            "packets (all sensors added up)",
            "on the wire (all sensors)",
        )
    } else {
        ("packets", "on the wire")
    };
    card(
        out,
        "",
        &or_dash(stat("packets"), |n| Count(n).to_string()),
        packets,
    )?;
    card(
        out,
        "",
        &or_dash(stat("bytes"), |n| ByteSize(n).to_string()),
        wire,
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
        // No zero-width slices: a stats event lists every verdict, events only those seen.
        for (v, n) in verdicts.iter().filter(|(_, n)| **n > 0) {
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
pub(super) fn legend(out: &mut String, counts: Option<&BTreeMap<Verdict, u64>>) -> fmt::Result {
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
