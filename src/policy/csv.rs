//! The policy as CSV for a change ticket: one row per allowed line, per rule
//! to close and per rule kept closed, with the same cells as the other
//! renderers' rules (the Windows script's rule names are these rows' keys).
//! Cells go through the events' CSV writer, so none can be read as a formula.

use std::io::{self, Write};

use super::{document_text, Line, Policy, Side, Usage};
use crate::output::csv_text_cell as text;

/// The header row, CRLF included.
pub const CSV_POLICY_HEADER: &str = "action,rule_id,transport,ports,client_system,\
client_addresses,listener_system,listener_addresses,flows,first_seen,last_seen,reason,\
document\r\n";

pub fn write_csv(out: &mut dyn Write, p: &Policy<'_>) -> io::Result<()> {
    let mut out = out;
    out.write_all(CSV_POLICY_HEADER.as_bytes())?;
    for line in &p.allow {
        if p.families(line).is_empty() {
            continue;
        }
        let ports: Vec<String> = line
            .rule
            .listen_ports
            .iter()
            .map(|r| r.to_string())
            .collect();
        row(
            &mut out,
            &[
                "allow",
                &line.rule.id,
                line.transport.as_str(),
                &ports.join(" "),
                line.client.name(),
                &addresses(p, line, line.client),
                line.listener.name(),
                &addresses(p, line, line.listener),
            ],
            line.seen.as_ref(),
            if line.closed_by_default {
                "closed_by_default"
            } else {
                ""
            },
            &document_text(line.rule),
        )?;
    }
    for rule in &p.to_close {
        row(
            &mut out,
            &[
                "close",
                &rule.id,
                &rule.transports_text(),
                &rule.ports_text().replace(", ", " "),
                &rule.client_systems.text().replace(", ", " "),
                "",
                &rule.listener_systems.text().replace(", ", " "),
                "",
            ],
            None,
            "never_seen",
            &document_text(rule),
        )?;
    }
    for s in &p.shut {
        row(
            &mut out,
            &[
                "keep_closed",
                &s.rule.id,
                &s.rule.transports_text(),
                &s.rule.ports_text().replace(", ", " "),
                &s.rule.client_systems.text().replace(", ", " "),
                "",
                &s.rule.listener_systems.text().replace(", ", " "),
                "",
            ],
            s.seen.as_ref(),
            s.reason.as_str(),
            &document_text(s.rule),
        )?;
    }
    Ok(())
}

/// A side's addresses for the families the line is written for, space
/// separated; `any` for a side the document leaves open.
fn addresses(p: &Policy<'_>, line: &Line<'_>, side: Side) -> String {
    let mut all = Vec::new();
    for f in p.families(line) {
        match p.side_cidrs(line, side, f) {
            Some(c) => all.extend(c),
            None => return "any".into(),
        }
    }
    all.join(" ")
}

fn row(
    out: &mut impl Write,
    cells: &[&str],
    seen: Option<&Usage>,
    reason: &str,
    document: &str,
) -> io::Result<()> {
    for cell in cells {
        text(out, cell)?;
        out.write_all(b",")?;
    }
    match seen {
        Some(u) => write!(out, "{},{},{},", u.flows, u.first, u.last)?,
        None => out.write_all(b",,,")?,
    }
    text(out, reason)?;
    out.write_all(b",")?;
    text(out, document)?;
    out.write_all(b"\r\n")
}
