//! The summary for people, on stderr at the end of a run: what was read,
//! the verdicts, the top undocumented ports and hosts, the matrix's
//! coverage, storms, exceptions, and anything that makes the analysis less
//! than complete (decode failures, evictions, drops, unreadable inputs).

use std::collections::HashMap;
use std::io::{self, Write};

use crate::classify::Classifier;
use crate::output::event::{ActiveFilters, Stats};
use crate::output::tally::{PortUse, Summary};
use crate::printable::Printable;
use crate::timestamp::Timestamp;
use crate::transport::Transport;
use crate::verdict::Verdict;

/// Rules listed by name under "never seen" in the summary; the report lists all.
const NEVER_SEEN_SHOWN: usize = 20;

/// The human summary written to stderr at the end of a run.
pub fn write_summary(
    out: &mut impl Write,
    stats: &Stats,
    summary: &Summary,
    classifier: &Classifier,
    elapsed: std::time::Duration,
) -> io::Result<()> {
    let source = if stats.interfaces.is_empty() {
        format!("{} file(s)", stats.files.len())
    } else {
        format!("{} interface(s)", stats.interfaces.len())
    };
    writeln!(
        out,
        "portmatrix: {source}, {} packets ({} bytes), {} TCP/UDP flows in {:.2} s",
        stats.packets,
        stats.bytes,
        stats.flows,
        elapsed.as_secs_f64()
    )?;
    if let Some(signal) = stats.interrupted {
        writeln!(
            out,
            "  interrupted by {signal}: the input was read no further; everything above is what was read"
        )?;
    }
    let verdicts: Vec<String> = Verdict::ALL
        .iter()
        .filter_map(|v| {
            let n = stats
                .flows_per_verdict
                .get(v.as_str())
                .copied()
                .unwrap_or(0);
            (n > 0).then(|| format!("{v} {n}"))
        })
        .collect();
    writeln!(
        out,
        "  flows per verdict: {}",
        or_none(&verdicts.join(", "))
    )?;
    writeln!(
        out,
        "  top undocumented destination ports: {}",
        top_ports(&summary.undocumented_ports)
    )?;
    let hosts = top(&summary.undocumented_hosts, |ip| ip.to_string());
    writeln!(out, "  top undocumented destination hosts: {hosts}")?;
    let rules = classifier.matrix().rules();
    let seen = summary.flows_per_rule.iter().filter(|&&n| n > 0).count();
    let unseen: Vec<&str> = rules
        .iter()
        .zip(&summary.flows_per_rule)
        .filter(|(r, &n)| n == 0 && !r.deprecated && !r.needs_roles)
        .map(|(r, _)| r.id.as_str())
        .collect();
    writeln!(
        out,
        "  matrix coverage: {seen} of {} rules saw traffic; {} current rules saw none",
        rules.len(),
        unseen.len()
    )?;
    if !unseen.is_empty() {
        // A short list reads at a glance; the report and `--json` have all of them.
        let shown = &unseen[..unseen.len().min(NEVER_SEEN_SHOWN)];
        let more = unseen.len() - shown.len();
        let rest = if more > 0 {
            format!(" … and {more} more (all of them: portmatrix report)")
        } else {
            String::new()
        };
        write!(out, "    never seen:")?;
        for id in shown {
            write!(out, " {}", Printable(id))?;
        }
        writeln!(out, "{rest}")?;
    }
    if let Some(storms) = &stats.alert_storms {
        writeln!(
            out,
            "  alert storms: {} alerts folded into {} alert_summary events (flow events keep every verdict)",
            storms.alerts_folded, storms.summaries
        )?;
    }
    // In file order; "expired" by the wall clock, as at the start of the run.
    let now = Timestamp::now();
    let exceptions = classifier.site().map_or(&[][..], |s| &s.exceptions[..]);
    for x in exceptions {
        let Some(e) = stats.suppressed.as_ref().and_then(|m| m.get(&x.id)) else {
            continue;
        };
        let until = match (&e.until, x.expired_at(now)) {
            (Some(u), true) => format!(", expired {u}"),
            (Some(u), false) => format!(", until {u}"),
            (None, _) => String::new(),
        };
        write!(
            out,
            "  exception {} ({}{}): {} flows suppressed",
            Printable(&x.id),
            Printable(&e.why),
            Printable(&until),
            e.flows
        )?;
        if e.expired_flows > 0 {
            write!(
                out,
                "; {} flows after it expired were alerted",
                e.expired_flows
            )?;
        }
        writeln!(out)?;
    }
    let failures: u64 = stats.decode_failures.values().sum();
    if failures > 0 || stats.evictions > 0 {
        writeln!(
            out,
            "  capture health: {failures} packets not decoded, {} flows evicted{}",
            stats.evictions,
            match stats.resumed_flows {
                Some(n) => format!(" ({n} came back and kept their ends)"),
                None => String::new(),
            }
        )?;
    }
    if summary.one_sided > 0 {
        writeln!(
            out,
            "  one-sided: {} TCP flows were seen in one direction only (is the SPAN mirroring both directions?)",
            summary.one_sided
        )?;
    }
    if let Some(n) = stats.duplicates {
        writeln!(out, "  dedup: {n} mirrored copies dropped")?;
    }
    for i in &stats.interfaces {
        writeln!(
            out,
            "  {}: {} packets read; kernel received {}, dropped {}; interface dropped {}",
            i.name, i.packets, i.kernel_received, i.kernel_dropped, i.interface_dropped
        )?;
        if let Some(err) = &i.error {
            writeln!(out, "    error: {err}")?;
        }
    }
    if let Some(drops) = &stats.queue_drops {
        let n: u64 = drops.values().sum();
        if n > 0 {
            writeln!(out, "  dropped by full worker queues: {n} packets")?;
        }
    }
    // The errors were printed as they happened: named once more, not repeated.
    let failed: Vec<&str> = stats
        .files
        .iter()
        .filter(|f| f.error.is_some())
        .map(|f| f.path.as_str())
        .collect();
    if !failed.is_empty() {
        writeln!(
            out,
            "  incomplete: {} of {} inputs not read to their end (errors above): {}",
            failed.len(),
            stats.files.len(),
            failed.join(", ")
        )?;
    }
    if let Some(filters) = &stats.filters {
        writeln!(
            out,
            "  filters: {}; {} packets outside them",
            describe_filters(filters),
            stats.filtered.unwrap_or(0)
        )?;
    }
    if let Some(x) = &stats.extract {
        writeln!(
            out,
            "  evidence: {} files, {} packets, {} bytes written; capped: {} packets of {} flows{}",
            x.files,
            x.packets,
            x.bytes,
            x.capped_packets,
            x.capped_flows,
            if x.errors > 0 {
                format!("; {} packets could not be written", x.errors)
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// `since 2021-…Z, host 10.10.1.0/24 10.10.2.7, port 1972, verdict undocumented`.
fn describe_filters(f: &ActiveFilters) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &f.since {
        parts.push(format!("since {t}"));
    }
    if let Some(t) = &f.until {
        parts.push(format!("until {t}"));
    }
    if !f.host.is_empty() {
        parts.push(format!("host {}", f.host.join(" ")));
    }
    if !f.port.is_empty() {
        let ports: Vec<String> = f.port.iter().map(u16::to_string).collect();
        parts.push(format!("port {}", ports.join(" ")));
    }
    if let Some(e) = &f.bpf {
        parts.push(format!("bpf `{e}`"));
    }
    if !f.verdict.is_empty() {
        parts.push(format!(
            "verdict {} (reported; all counted)",
            f.verdict.join(",")
        ));
    }
    parts.join(", ")
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}

/// The ten largest counts, as `name (n), …`, or `none`.
/// The ten undocumented ports most hosts used: by distinct clients, then
/// servers, then flows, then port; each with its three counts.
fn top_ports(ports: &HashMap<(Transport, u16), PortUse>) -> String {
    let mut sorted: Vec<_> = ports.iter().collect();
    sorted.sort_by(|a, b| b.1.rank().cmp(&a.1.rank()).then(a.0.cmp(b.0)));
    let shown: Vec<String> = sorted
        .iter()
        .take(10)
        .map(|((t, p), u)| {
            let (clients, servers, flows) = u.rank();
            format!(
                "{t}/{p} ({clients} client{}, {servers} server{}, {flows} flow{})",
                plural(clients as u64),
                plural(servers as u64),
                plural(flows)
            )
        })
        .collect();
    or_none(&shown.join(", ")).to_string()
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn top<K: Ord>(counts: &HashMap<K, u64>, name: impl Fn(&K) -> String) -> String {
    let mut sorted: Vec<(&K, &u64)> = counts.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<String> = sorted
        .iter()
        .take(10)
        .map(|(k, n)| format!("{} ({n})", name(k)))
        .collect();
    or_none(&shown.join(", ")).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_ports_rank_by_distinct_clients_then_servers_then_flows() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let mut ports: HashMap<(Transport, u16), PortUse> = HashMap::new();
        let mut add = |port: u16, client: &str, server: &str| {
            let u = ports.entry((Transport::Tcp, port)).or_default();
            u.clients.insert(ip(client));
            u.servers.insert(ip(server));
            u.flows += 1;
        };
        // A scanner probes port 1 many times on one host: many flows, one
        // client. Three clients use 4444 on one server; two use 8080 on two.
        for _ in 0..50 {
            add(1, "10.9.9.9", "10.0.0.1");
        }
        for c in ["10.1.0.1", "10.1.0.2", "10.1.0.3"] {
            add(4444, c, "10.0.0.1");
        }
        add(8080, "10.1.0.1", "10.0.0.1");
        add(8080, "10.1.0.2", "10.0.0.2");
        add(9090, "10.1.0.1", "10.0.0.1");
        add(9090, "10.1.0.2", "10.0.0.1");
        assert_eq!(
            top_ports(&ports),
            "tcp/4444 (3 clients, 1 server, 3 flows), tcp/8080 (2 clients, 2 servers, 2 flows), \
tcp/9090 (2 clients, 1 server, 2 flows), tcp/1 (1 client, 1 server, 50 flows)"
        );
    }
}
