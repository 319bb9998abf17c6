//! Flow events as CSV (RFC 4180), for people who live in spreadsheets: one
//! header row, then one row per `flow` event with the JSON event's fields
//! in the same order and under the same names. Lists are joined with spaces
//! (`rule_ids`) or slashes (`encap`); absent values are empty cells. Rows end
//! in CRLF, as the RFC says.
//!
//! A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab
//! or carriage return before one) as a formula: a rules file with the id
//! `=HYPERLINK(…)` would put a live link in every row it matched. Such cells
//! get a single quote in front, as OWASP advises for CSV injection; so does a
//! cell that starts with a quote, so that a leading `'` always means "added
//! here" and taking it away gives the value back exactly.

use std::fmt::Display;
use std::io::{self, Write};

use super::Printer;
use crate::output::event::{AlertSummaryJson, FlowEventJson, StatsEventJson};

/// The header row, CRLF included.
pub const CSV_HEADER: &str = "timestamp,flow_id,community_id,proto,src_ip,src_port,dest_ip,\
dest_port,verdict,severity,rule_ids,direction,vlan,encap,vni,start,end,pkts_toserver,\
pkts_toclient,bytes_toserver,bytes_toclient,tcp_state,reason,evidence,app_protocol_seen,\
one_sided\r\n";

/// Writes `flow` events as rows under one header.
pub struct Csv<W> {
    out: W,
    /// The header is still to be written: before the first row, or at the
    /// stats, so that a run without flows still gives a valid, empty table.
    header: bool,
}

impl<W: Write> Csv<W> {
    /// `header`: write the header row first (a destination that starts
    /// every file with it itself, such as a rotated events file, says `false`).
    pub fn new(out: W, header: bool) -> Csv<W> {
        Csv { out, header }
    }

    fn header(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.header) {
            self.out.write_all(CSV_HEADER.as_bytes())?;
        }
        Ok(())
    }
}

impl<W: Write + Send> Printer<W> for Csv<W> {
    /// Each flagged flow has its row when it ends.
    fn prints_alerts(&self) -> bool {
        false
    }

    fn alert(&mut self, _: &FlowEventJson<'_>) -> io::Result<()> {
        Ok(())
    }

    fn flow(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        self.header()?;
        write_row(&mut self.out, e)
    }

    /// A CSV holds flows only.
    fn alert_summary(&mut self, _: &AlertSummaryJson) -> io::Result<()> {
        Ok(())
    }

    fn stats(&mut self, _: &StatsEventJson) -> io::Result<()> {
        self.header()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn into_inner(self: Box<Self>) -> W {
        self.out
    }
}

/// What a cell may not start with unless a `'` goes first (see the module's
/// doc). Only text cells can: numbers are never negative, and addresses,
/// times and our own names start with a letter, a digit or a colon.
const NEEDS_QUOTE_MARK: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// One text cell: a `'` first when it could be read as a formula; quoted
/// when it holds a comma, a quote or a line break, with quotes doubled.
pub fn text(out: &mut impl Write, s: &str) -> io::Result<()> {
    let mark: &[u8] = if s.starts_with(NEEDS_QUOTE_MARK) {
        b"'"
    } else {
        b""
    };
    if !s.contains([',', '"', '\r', '\n']) {
        out.write_all(mark)?;
        return out.write_all(s.as_bytes());
    }
    out.write_all(b"\"")?;
    out.write_all(mark)?;
    let mut rest = s;
    while let Some(i) = rest.find('"') {
        out.write_all(&rest.as_bytes()[..=i])?;
        out.write_all(b"\"")?;
        rest = &rest[i + 1..];
    }
    out.write_all(rest.as_bytes())?;
    out.write_all(b"\"")
}

/// A cell whose text never needs quoting (numbers, addresses, our own names).
fn plain(out: &mut impl Write, v: impl Display) -> io::Result<()> {
    write!(out, "{v}")
}

fn opt(out: &mut impl Write, v: Option<impl Display>) -> io::Result<()> {
    match v {
        Some(v) => plain(out, v),
        None => Ok(()),
    }
}

/// Write `e` (a `flow` event) as one row.
fn write_row(out: &mut impl Write, e: &FlowEventJson<'_>) -> io::Result<()> {
    plain(out, e.timestamp)?;
    out.write_all(b",")?;
    plain(out, e.flow_id)?;
    out.write_all(b",")?;
    text(out, &e.community_id)?;
    write!(
        out,
        ",{},{},{},{},{},{},{},",
        e.proto,
        e.src_ip,
        e.src_port,
        e.dest_ip,
        e.dest_port,
        e.verdict.as_str(),
        e.severity.as_str()
    )?;
    text(out, &e.rule_ids.join(" "))?;
    write!(out, ",{},", e.direction.as_str())?;
    opt(out, e.vlan)?;
    out.write_all(b",")?;
    for (i, kind) in e.encap.layers().iter().enumerate() {
        if i > 0 {
            out.write_all(b"/")?;
        }
        plain(out, kind.as_str())?;
    }
    out.write_all(b",")?;
    opt(out, e.vni)?;
    match &e.flow {
        Some(f) => write!(
            out,
            ",{},{},{},{},{},{},{},{},",
            f.start,
            f.end,
            f.pkts_toserver,
            f.pkts_toclient,
            f.bytes_toserver,
            f.bytes_toclient,
            f.tcp_state.unwrap_or(""),
            f.reason.as_str()
        )?,
        None => out.write_all(b",,,,,,,,")?,
    }
    if let Some(path) = e.evidence {
        text(out, path)?;
    }
    out.write_all(b",")?;
    opt(out, e.app_protocol_seen)?;
    out.write_all(b",")?;
    if e.flow.as_ref().is_some_and(|f| f.one_sided) {
        out.write_all(b"true")?;
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = Vec::new();
        text(&mut out, s).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn cells_are_quoted_only_when_needed() {
        assert_eq!(cell("2.2.2#19 2.2.3#1"), "2.2.2#19 2.2.3#1");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_quote_mark() {
        assert_eq!(cell("=1+2"), "'=1+2");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("\t=1"), "'\t=1");
        assert_eq!(cell("\r=1"), "\"'\r=1\"");
        assert_eq!(cell("'quoted"), "''quoted");
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Anywhere but the start, nothing changes.
        assert_eq!(cell("a=1 -2 @3"), "a=1 -2 @3");
        assert_eq!(cell("2.2.2#19 -x"), "2.2.2#19 -x");
    }

    #[test]
    fn the_header_names_26_columns() {
        assert_eq!(CSV_HEADER.trim_end().split(',').count(), 26);
        assert!(CSV_HEADER.ends_with("\r\n"));
    }
}
