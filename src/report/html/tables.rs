//! The page's two tables: the flagged flows, most severe first, and the
//! matrix's coverage, every rule with the traffic it saw.

use std::cmp::Reverse;
use std::fmt::{self, Write};
use std::net::IpAddr;

use crate::transport::Transport;
use crate::verdict::Verdict;

use super::Page;
use crate::report::coverage::Coverage;
use crate::report::escape::{href_for_path, Esc};
use crate::report::events::FlowRecord;
use crate::report::model::MAX_FLAGGED;
use crate::report::script::PAGE_ROWS;
use crate::report::theme::status_text;
use crate::report::units::{ByteSize, Count, TimeText};

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

pub(super) fn flagged_section(out: &mut String, p: &Page<'_>) -> fmt::Result {
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
        "<p class=\"muted\">{} flows the matrix does not allow, most severe first. Click a \
         header to sort; filter by words, verdict, host (a prefix such as <code>10.10.1.</code> \
         is enough) or server port; {PAGE_ROWS} rows a page (all of them when printed). \
         Click a host in the diagram to see its flows.",
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
    toolbar(out, m)?;
    out.push_str(
        "<div class=\"scroll\"><table class=\"sortable\" id=\"flagged-table\"><thead><tr>\
         <th data-type=\"num\">First seen</th><th data-type=\"num\">Last seen</th><th>Verdict</th>\
         <th data-type=\"num\">Severity</th><th>Proto</th><th>Client</th><th>Server</th>\
         <th>Rules</th><th>Rule description</th><th class=\"n\" data-type=\"num\">Packets</th>\
         <th class=\"n\" data-type=\"num\">Bytes</th><th>Evidence</th>",
    );
    if !m.sensors.is_empty() {
        out.push_str("<th>Sensors</th>");
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in &m.flagged {
        flagged_row(out, p, r)?;
    }
    out.push_str("</tbody></table></div>\n");
    Ok(())
}

/// The flagged table's filters, pager and CSV button; the page's script
/// (`super::super::script`) gives them life.
fn toolbar(out: &mut String, m: &crate::report::Model) -> fmt::Result {
    out.push_str(
        "<div class=\"toolbar\" id=\"flagged-tools\">\
         <input type=\"search\" id=\"flagged-filter\" placeholder=\"Filter: any words\" aria-label=\"Filter the flagged flows\">\
         <select id=\"flagged-verdict\" aria-label=\"Verdict\"><option value=\"\">every verdict</option>",
    );
    let verdicts: std::collections::BTreeSet<Verdict> =
        m.flagged.iter().map(|r| r.verdict).collect();
    for v in verdicts {
        write!(out, r#"<option value="{}">{v}</option>"#, v.as_str())?;
    }
    out.push_str(
        "</select>\
         <input type=\"search\" class=\"narrow\" id=\"flagged-host\" placeholder=\"Host\" aria-label=\"Client or server address\">\
         <input type=\"search\" class=\"port\" id=\"flagged-port\" inputmode=\"numeric\" placeholder=\"Port\" aria-label=\"Server port\">\
         <button type=\"button\" id=\"flagged-clear\">Clear</button>\
         <button type=\"button\" id=\"flagged-prev\">\u{2190} Previous</button>\
         <button type=\"button\" id=\"flagged-next\">Next \u{2192}</button>\
         <span class=\"info\" id=\"flagged-info\"></span>\
         <button type=\"button\" id=\"flagged-csv\">Download CSV (filtered rows)</button></div>\n",
    );
    Ok(())
}

fn flagged_row(out: &mut String, p: &Page<'_>, r: &FlowRecord) -> fmt::Result {
    write!(
        out,
        r#"<tr data-verdict="{}" data-client="{}" data-server="{}" data-port="{}"><td data-sort="{}">{}</td><td data-sort="{}">{}</td><td><span class="badge v-{}">{}</span></td><td data-sort="{}">{}</td><td>{}{}</td><td data-sort="{}" class="mono">{}</td><td data-sort="{}" class="mono">{}</td>"#,
        r.verdict.as_str(),
        r.client.0,
        r.server.0,
        r.server.1,
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
            // The space keeps ids apart in the CSV (the cell's text).
            out.push_str(" <br>");
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
    out.push_str("<td class=\"ev\">");
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
    out.push_str("</td>");
    if !p.model.sensors.is_empty() {
        // The sensors that saw the flow (several: counted once).
        out.push_str("<td class=\"mono\">");
        for (i, s) in r.sensor.iter().chain(&r.also_seen_by).enumerate() {
            write!(out, "{}{}", if i > 0 { " " } else { "" }, Esc(s))?;
        }
        out.push_str("</td>");
    }
    out.push_str("</tr>\n");
    Ok(())
}

/// Undocumented ports listed, the most widely used first.
const TOP_PORTS: usize = 20;

/// The undocumented ports by how many distinct clients, then servers, used
/// them, then by flows: a service that many hosts use comes before a port
/// that one scanner probed once, whichever was seen first.
pub(super) fn top_ports_section(out: &mut String, m: &crate::report::Model) -> fmt::Result {
    use std::collections::{BTreeMap, BTreeSet};
    type Seen = (BTreeSet<Option<IpAddr>>, BTreeSet<Option<IpAddr>>, u64);
    let mut ports: BTreeMap<(Transport, u16), Seen> = BTreeMap::new();
    for (k, u) in m
        .edges
        .iter()
        .filter(|(k, _)| k.verdict == Verdict::Undocumented)
    {
        let p = ports.entry((k.transport, k.port)).or_default();
        p.0.insert(k.client);
        p.1.insert(k.server);
        p.2 += u.flows;
    }
    out.push_str("<h2 id=\"top-ports\">Top undocumented ports</h2>\n");
    if ports.is_empty() {
        out.push_str("<p class=\"muted\">No undocumented flows.</p>\n");
        return Ok(());
    }
    let mut ranked: Vec<_> = ports.into_iter().collect();
    ranked.sort_by(|a, b| {
        let key = |(p, (c, s, f)): &((Transport, u16), Seen)| (Reverse((c.len(), s.len(), *f)), *p);
        key(a).cmp(&key(b))
    });
    writeln!(
        out,
        "<p class=\"muted\">{} undocumented ports; the {} used by the most distinct clients, \
         then servers (a scan's probes, one client each, come last).</p>",
        Count(ranked.len() as u64),
        TOP_PORTS.min(ranked.len())
    )?;
    out.push_str(
        "<table class=\"sortable\" id=\"top-ports-table\"><thead><tr><th>Port</th>\
         <th class=\"n\" data-type=\"num\">Clients</th><th class=\"n\" data-type=\"num\">Servers</th>\
         <th class=\"n\" data-type=\"num\">Flows</th></tr></thead><tbody>\n",
    );
    for ((t, port), (clients, servers, flows)) in ranked.iter().take(TOP_PORTS) {
        writeln!(
            out,
            r#"<tr><td class="mono">{t}/{port}</td><td class="n">{}</td><td class="n">{}</td><td class="n" data-sort="{flows}">{}</td></tr>"#,
            Count(clients.len() as u64),
            Count(servers.len() as u64),
            Count(*flows)
        )?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

pub(super) fn coverage_section(out: &mut String, p: &Page<'_>, cov: &Coverage<'_>) -> fmt::Result {
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
