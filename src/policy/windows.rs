//! The policy as a PowerShell script for Windows Defender Firewall on the
//! servers that run Windows Server (AACC with CCT, CCMA, CCMM): one inbound
//! `New-NetFirewallRule` per line whose listener is such a system, in one
//! section per system. The script takes the systems of the server it runs on
//! (`-System aacc_server,cct` on a single box), removes the rules of an
//! earlier run, and puts every rule in the group "portmatrix", so
//! `Remove-NetFirewallRule -Group 'portmatrix'` takes them all away.
//!
//! Outbound traffic is allowed by Windows' default policy and loopback is
//! not filtered, so only inbound rules are written.

use std::io::{self, Write};

use super::{document_text, port_text, Line, Policy, Side};
use crate::matrix::System;

/// The systems that run on Windows Server (AAMS runs on Linux since 7.0.3).
pub const WINDOWS_SYSTEMS: [&str; 4] = ["aacc_server", "cct", "ccma", "ccmm"];

fn is_windows(s: System) -> bool {
    WINDOWS_SYSTEMS.contains(&s.as_str())
}

/// The lines a Windows system's section holds: those it listens for, and
/// the multicast groups it may receive.
fn lines_of<'p, 'm>(p: &'p Policy<'m>, s: System) -> impl Iterator<Item = &'p Line<'m>> {
    p.allow.iter().filter(move |l| match l.listener {
        Side::System(listener) => listener == s,
        Side::Multicast => l.rule.listener_systems.is_any() || l.rule.listener_systems.contains(s),
        Side::Any => false,
    })
}

/// The Windows systems of the site that the policy writes rules for.
pub fn windows_sections(p: &Policy<'_>) -> Vec<System> {
    System::all()
        .filter(|&s| is_windows(s) && p.present.contains(s))
        .filter(|&s| lines_of(p, s).any(|l| !p.families(l).is_empty()))
        .collect()
}

pub fn write_windows(out: &mut dyn Write, p: &Policy<'_>) -> io::Result<()> {
    let sections = windows_sections(p);
    for line in p.header() {
        writeln!(out, "# {line}")?;
    }
    let names: Vec<&str> = sections.iter().map(|s| s.as_str()).collect();
    writeln!(
        out,
        "# Windows Defender Firewall, inbound rules for the Windows servers. Run on each server,\n\
         # as administrator, with the systems it runs, e.g.: .\\policy.ps1 -System {}\n\
         # Every rule is in the group 'portmatrix': Remove-NetFirewallRule -Group 'portmatrix'\n\
         # removes them all; running the script again replaces them.",
        names.first().copied().unwrap_or("aacc_server")
    )?;
    writeln!(out, "param(")?;
    writeln!(out, "    [Parameter(Mandatory = $true)]")?;
    let set: Vec<String> = names.iter().map(|n| ps(n)).collect();
    writeln!(out, "    [ValidateSet({})]", set.join(", "))?;
    writeln!(out, "    [string[]] $System")?;
    writeln!(out, ")")?;
    writeln!(out, "$ErrorActionPreference = 'Stop'")?;
    writeln!(
        out,
        "Remove-NetFirewallRule -Group 'portmatrix' -ErrorAction SilentlyContinue"
    )?;
    for s in sections {
        let addresses = p
            .addresses
            .get(&s)
            .map(|a| a.all_cidrs().join(", "))
            .unwrap_or_default();
        writeln!(out)?;
        writeln!(out, "# --- {s}: {}", comment(s.info().title))?;
        if !addresses.is_empty() {
            writeln!(out, "# --- addresses: {addresses}")?;
        }
        writeln!(out, "if ($System -contains {}) {{", ps(s.as_str()))?;
        for line in lines_of(p, s) {
            write_rule(out, p, line, s)?;
        }
        writeln!(out, "}}")?;
    }
    super::write_closed(out, p)
}

/// One `New-NetFirewallRule`, its comment first.
fn write_rule(out: &mut dyn Write, p: &Policy<'_>, line: &Line<'_>, on: System) -> io::Result<()> {
    let families = p.families(line);
    if families.is_empty() {
        return Ok(());
    }
    let seen = Policy::seen_text(line.seen.as_ref());
    writeln!(
        out,
        "    # {} {} {} -> {}{}: {}",
        line.rule.id,
        port_text(line),
        line.client.name(),
        line.listener.name(),
        if seen.is_empty() {
            String::new()
        } else {
            format!(" ({seen})")
        },
        comment(&document_text(line.rule))
    )?;
    let addresses = |side: Side| -> Option<String> {
        let mut all = Vec::new();
        for &f in &families {
            all.extend(p.side_cidrs(line, side, f)?);
        }
        Some(all.iter().map(|a| ps(a)).collect::<Vec<_>>().join(", "))
    };
    let local = addresses(line.listener).unwrap_or_else(|| "Any".into());
    let remote = addresses(line.client).unwrap_or_else(|| "Any".into());
    let ports: Vec<String> = line
        .rule
        .listen_ports
        .iter()
        .map(|r| ps(&r.to_string()))
        .collect();
    let mut description = format!("{}: {}", line.rule.id, document_text(line.rule));
    if !seen.is_empty() {
        description.push_str(&format!(" ({seen})"));
    }
    writeln!(
        out,
        "    New-NetFirewallRule -Name {} -DisplayName {} -Group 'portmatrix' -Direction Inbound \
         -Action Allow -Protocol {} -LocalPort {} -LocalAddress {local} -RemoteAddress {remote} \
         -Description {} | Out-Null",
        ps(&rule_name(line, on)),
        ps(&format!(
            "portmatrix {} {} from {}",
            line.rule.id,
            port_text(line),
            line.client.name()
        )),
        line.transport.eve_name(),
        ports.join(", "),
        ps(&description)
    )
}

/// The rule's unique name, made of the line's key (and the section, for
/// multicast lines written in several): the CSV row it comes from.
pub fn rule_name(line: &Line<'_>, on: System) -> String {
    let mut name = format!(
        "portmatrix:{}:{}:{}:{}",
        line.rule.id,
        line.transport,
        line.client.name(),
        line.listener.name()
    );
    if line.listener == Side::Multicast {
        name.push_str(&format!(":{on}"));
    }
    name
}

/// A PowerShell single-quoted string: quotes doubled (PowerShell also takes
/// the typographic single quotes as quotes), control characters as spaces.
fn ps(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Text for a `#` comment: on one line.
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_quotes_of_every_kind_are_doubled() {
        assert_eq!(ps("it's"), "'it''s'");
        assert_eq!(ps("a\u{2019}b"), "'a\u{2019}\u{2019}b'");
        assert_eq!(ps("line\nbreak"), "'line break'");
    }
}
