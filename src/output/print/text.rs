//! Text lines for people: one line per alert, flow and alert summary. The
//! stats are not written here: people get the summary on stderr instead
//! (see `super::summary`).

use std::io::{self, Write};
use std::net::IpAddr;

use super::Printer;
use crate::output::event::{AlertSummaryJson, FlowEventJson, StatsEventJson};
use crate::printable::Printable;

/// Writes events as lines a person reads.
pub struct Text<W> {
    out: W,
}

impl<W: Write> Text<W> {
    pub fn new(out: W) -> Text<W> {
        Text { out }
    }
}

impl<W: Write + Send> Printer<W> for Text<W> {
    fn prints_alerts(&self) -> bool {
        true
    }

    fn alert(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        write_event(&mut self.out, e)
    }

    fn flow(&mut self, e: &FlowEventJson<'_>) -> io::Result<()> {
        write_event(&mut self.out, e)
    }

    fn alert_summary(&mut self, s: &AlertSummaryJson) -> io::Result<()> {
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| format!("{}/{} ({})", p.proto.to_ascii_lowercase(), p.port, p.count))
            .collect();
        let targets: Vec<String> = s
            .targets
            .iter()
            .map(|t| format!("{} ({})", t.ip, t.count))
            .collect();
        writeln!(
            self.out,
            "{} alert_summary {:<6} {} folded {} alerts until {}: ports {}; targets {}",
            s.timestamp,
            s.severity.as_str(),
            s.src_ip,
            s.count,
            s.window_end,
            ports.join(", "),
            targets.join(", ")
        )
    }

    fn stats(&mut self, _: &StatsEventJson) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn into_inner(self: Box<Self>) -> W {
        self.out
    }
}

/// An `alert` or `flow` event as one line.
fn write_event(out: &mut impl Write, e: &FlowEventJson<'_>) -> io::Result<()> {
    write!(
        out,
        "{} {:<5} {:<17} {:<6} {} {} -> {}",
        e.timestamp,
        e.event_type,
        e.verdict.as_str(),
        e.severity.as_str(),
        e.proto,
        SocketText(e.src_ip, e.src_port),
        SocketText(e.dest_ip, e.dest_port),
    )?;
    if let Some(vlan) = e.vlan {
        write!(out, " vlan {vlan}")?;
    }
    for (i, kind) in e.encap.layers().iter().enumerate() {
        write!(out, "{}{kind}", if i == 0 { " in " } else { "/" })?;
    }
    if let Some(vni) = e.vni {
        write!(out, " vni {vni}")?;
    }
    if let Some(f) = &e.flow {
        write!(
            out,
            " pkts {}/{} bytes {}/{} {}",
            f.pkts_toserver,
            f.pkts_toclient,
            f.bytes_toserver,
            f.bytes_toclient,
            f.reason.as_str()
        )?;
    }
    // Paths and ids come from the user's folders and rules files: printable.
    if let Some(path) = e.evidence {
        write!(out, " evidence {}", Printable(path))?;
    }
    if let (Some(src), Some(dst)) = (&e.src_roles, &e.dest_roles) {
        write!(out, " roles {} -> {}", src.join(","), dst.join(","))?;
    }
    if let Some(id) = e.exception {
        write!(out, " suppressed by {}", Printable(id))?;
    }
    for (i, id) in e.rule_ids.iter().enumerate() {
        let sep = if i == 0 { " rules " } else { "," };
        write!(out, "{sep}{}", Printable(id))?;
    }
    writeln!(out, " ({})", e.direction.as_str())
}

/// `10.0.0.1:443` or `[fe80::1]:443`.
struct SocketText(IpAddr, u16);

impl std::fmt::Display for SocketText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.1),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.1),
        }
    }
}
