//! The policy as an nftables ruleset: one `inet portmatrix` table, loaded
//! with `nft -f FILE` in one transaction (the file deletes its own table
//! first, so loading it again replaces it). Sets name each system's
//! addresses; the chain `allowed` holds one rule per line and family; one
//! base chain with `policy drop` lets the replies of allowed flows through
//! by connection tracking and jumps to `allowed`.

use std::io::{self, Write};

use super::{document_text, port_text, Family, Line, Policy, Side};

/// Where the ruleset hooks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// A router or firewall between zones: the flows it forwards.
    Forward,
    /// A Linux host (AAMS): the flows to the host itself.
    Input,
}

impl Hook {
    fn name(self) -> &'static str {
        match self {
            Hook::Forward => "forward",
            Hook::Input => "input",
        }
    }
}

/// The longest comment nftables stores on a rule.
const COMMENT_BYTES: usize = 128;

pub fn write_nft(out: &mut dyn Write, p: &Policy<'_>, hook: Hook) -> io::Result<()> {
    writeln!(out, "#!/usr/sbin/nft -f")?;
    for line in p.header() {
        writeln!(out, "# {line}")?;
    }
    writeln!(
        out,
        "# Load with `nft -f FILE` (as root): it replaces the table inet portmatrix in one step.\n\
         # Hook: {}. Every other new flow is dropped; replies pass by connection tracking.",
        match hook {
            Hook::Forward => "forward (a router or firewall between zones)",
            Hook::Input => "input (this host's own services; loopback passes)",
        }
    )?;
    writeln!(out, "table inet portmatrix")?;
    writeln!(out, "delete table inet portmatrix")?;
    writeln!(out, "table inet portmatrix {{")?;
    for (system, addresses) in &p.addresses {
        for f in Family::BOTH {
            let cidrs = addresses.cidrs(f);
            if cidrs.is_empty() {
                continue;
            }
            writeln!(out, "\tset {system}_{} {{", f.suffix())?;
            writeln!(
                out,
                "\t\ttype {}; flags interval",
                match f {
                    Family::V4 => "ipv4_addr",
                    Family::V6 => "ipv6_addr",
                }
            )?;
            writeln!(out, "\t\telements = {{ {} }}", cidrs.join(", "))?;
            writeln!(out, "\t}}")?;
        }
    }
    writeln!(out, "\tchain allowed {{")?;
    for line in &p.allow {
        write_line(out, p, line)?;
    }
    writeln!(out, "\t}}")?;
    let name = hook.name();
    writeln!(out, "\tchain {name} {{")?;
    writeln!(
        out,
        "\t\ttype filter hook {name} priority filter; policy drop;"
    )?;
    if hook == Hook::Input {
        writeln!(
            out,
            "\t\tiif \"lo\" accept comment \"the host itself: INTERNAL ONLY ports stay here\""
        )?;
    }
    writeln!(out, "\t\tct state established,related accept")?;
    writeln!(out, "\t\tct state invalid drop")?;
    if hook == Hook::Input {
        writeln!(
            out,
            "\t\ticmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert }} accept \
             comment \"IPv6 neighbour discovery\""
        )?;
        if p.allow.iter().any(|l| l.listener == Side::Multicast) {
            writeln!(
                out,
                "\t\tip protocol igmp accept comment \"multicast group membership (RSM, RTD)\""
            )?;
        }
    }
    writeln!(out, "\t\tjump allowed")?;
    writeln!(out, "\t}}")?;
    writeln!(out, "}}")?;
    super::write_closed(out, p)
}

/// One line: a `#` comment with the document's words and the use, then a
/// rule per family, each with the rule id (and as much of the text as fits).
fn write_line(out: &mut dyn Write, p: &Policy<'_>, line: &Line<'_>) -> io::Result<()> {
    let seen = Policy::seen_text(line.seen.as_ref());
    writeln!(
        out,
        "\t\t# {} {} {} -> {}{}{}: {}",
        line.rule.id,
        port_text(line),
        line.client.name(),
        line.listener.name(),
        if line.closed_by_default {
            " (closed by default; opened because flows used it)"
        } else {
            ""
        },
        if seen.is_empty() {
            String::new()
        } else {
            format!(" ({seen})")
        },
        document_text(line.rule)
    )?;
    let families = p.families(line);
    if families.is_empty() {
        writeln!(
            out,
            "\t\t# (not written: the two sides have no address family in common)"
        )?;
    }
    let comment = quoted(&format!("{}: {}", line.rule.id, document_text(line.rule)));
    for f in families {
        let (ip, l4) = (
            match f {
                Family::V4 => "ip",
                Family::V6 => "ip6",
            },
            line.transport.as_str(),
        );
        let mut rule = String::new();
        if let Some(s) = side_match(p, line, line.client, f) {
            rule.push_str(&format!("{ip} saddr {s} "));
        }
        if let Some(d) = side_match(p, line, line.listener, f) {
            rule.push_str(&format!("{ip} daddr {d} "));
        }
        writeln!(
            out,
            "\t\t{rule}{l4} dport {} accept comment {comment}",
            ports(line)
        )?;
    }
    Ok(())
}

/// `@aacc_server_v4`, `{ 230.0.0.1, 230.0.0.2 }`, `224.0.0.0/4`, or `None` for any.
fn side_match(p: &Policy<'_>, line: &Line<'_>, side: Side, f: Family) -> Option<String> {
    match side {
        Side::Any => None,
        Side::System(s) => Some(format!("@{s}_{}", f.suffix())),
        Side::Multicast => {
            let cidrs = p.side_cidrs(line, side, f).unwrap_or_default();
            Some(match cidrs.as_slice() {
                [one] => one.clone(),
                many => format!("{{ {} }}", many.join(", ")),
            })
        }
    }
}

/// `80`, `{ 9080, 9083, 9090 }`, `6000-32599`.
fn ports(line: &Line<'_>) -> String {
    let list: Vec<String> = line
        .rule
        .listen_ports
        .iter()
        .map(|r| r.to_string())
        .collect();
    match list.as_slice() {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    }
}

/// A comment nftables accepts: quoted, no `"` inside, at most
/// [`COMMENT_BYTES`] bytes (cut at a character boundary).
fn quoted(text: &str) -> String {
    let mut s = String::new();
    for c in text.chars() {
        let c = if c == '"' { '\'' } else { c };
        if s.len() + c.len_utf8() > COMMENT_BYTES {
            break;
        }
        s.push(c);
    }
    format!("\"{s}\"")
}
