//! The report's "Changes since the baseline" section (`report --baseline`):
//! the ranked changes of [`Drift`], the most severe first, as a sortable
//! table. Every string from the events goes through [`Esc`].

use std::fmt::{self, Write};

use super::drift::{Change, ChangeKind, Drift};
use super::escape::Esc;
use super::units::{Count, TimeText};

/// Changes listed one by one; the rest are counted (a baseline from another
/// site would otherwise make a page of every flow).
pub const MAX_ROWS: usize = 1_000;

pub fn section(out: &mut String, d: &Drift) -> fmt::Result {
    out.push_str("<h2 id=\"drift\">Changes since the baseline</h2>\n");
    write!(
        out,
        "<p class=\"muted\">Against <code>{}</code> ({} flows): {}.",
        Esc(&d.base.inputs.join(", ")),
        Count(d.base.flows),
        Esc(&d.summary())
    )?;
    if d.changes.len() > MAX_ROWS {
        write!(
            out,
            " The {} most severe are listed; <code>portmatrix diff</code> lists them all.",
            Count(MAX_ROWS as u64)
        )?;
    }
    out.push_str("</p>\n");
    if d.changes.is_empty() {
        out.push_str("<p>Nothing changed.</p>\n");
        return Ok(());
    }
    out.push_str(
        "<table class=\"sortable\" id=\"drift-table\"><thead><tr><th>Change</th>\
         <th data-type=\"num\">Severity</th><th>Verdict</th><th>Proto</th><th>Client</th>\
         <th>Listener</th><th>Rule</th><th class=\"n\" data-type=\"num\">Flows</th>\
         <th>First seen</th><th>Last seen</th></tr></thead><tbody>\n",
    );
    for c in d.changes.iter().take(MAX_ROWS) {
        row(out, c)?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}

fn row(out: &mut String, c: &Change) -> fmt::Result {
    let kind = match c.kind {
        ChangeKind::NewFlow if !c.was.is_empty() => "verdict changed",
        ChangeKind::NewFlow => "new flow",
        ChangeKind::NewPort => "new listening port",
        ChangeKind::NewHost => "new host",
        ChangeKind::GoneFlow => "flow gone",
        ChangeKind::GoneRule => "rule no longer used",
    };
    let verdict = match (c.verdict, c.was.as_slice()) {
        (Some(v), []) => format!(r#"<span class="badge v-{v}">{v}</span>"#),
        (Some(v), was) => {
            let was: Vec<&str> = was.iter().map(|w| w.as_str()).collect();
            format!(
                r#"<span class="badge v-{v}">{v}</span> (was {})"#,
                was.join(", ")
            )
        }
        (None, _) => String::new(),
    };
    let host = |ip: Option<std::net::IpAddr>, port: Option<u16>| match (ip, port) {
        (Some(ip), Some(p)) => format!("{ip}:{p}"),
        (Some(ip), None) => ip.to_string(),
        (None, Some(p)) if c.kind != ChangeKind::GoneRule => format!("other hosts:{p}"),
        _ => String::new(),
    };
    let client = match (c.kind, c.src_ip) {
        (ChangeKind::NewFlow | ChangeKind::GoneFlow, None) => "other hosts".to_string(),
        (_, ip) => ip.map(|ip| ip.to_string()).unwrap_or_default(),
    };
    let time = |t: Option<crate::timestamp::Timestamp>| {
        t.map(|t| TimeText::Full.show(t)).unwrap_or_default()
    };
    writeln!(
        out,
        r#"<tr><td>{}</td><td data-sort="{}">{}</td><td>{}</td><td>{}</td><td class="mono">{}</td><td class="mono">{}</td><td class="mono">{}</td><td class="n">{}</td><td>{}</td><td>{}</td></tr>"#,
        kind,
        c.severity as u8,
        c.severity.as_str(),
        verdict,
        c.proto.map(|p| p.eve_name()).unwrap_or_default(),
        Esc(&client),
        Esc(&host(c.dest_ip, c.dest_port)),
        Esc(c.rule_id.as_deref().unwrap_or_default()),
        Count(c.flows),
        Esc(&time(c.first)),
        Esc(&time(c.last)),
    )
}
