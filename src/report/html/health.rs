//! The page's "Capture health" section: whether the data is complete (decode
//! failures, evictions, inputs read in part, malformed event lines, and any
//! loss counter a newer writer adds), and the inputs it was read from.

use std::fmt::{self, Write};

use crate::report::escape::Esc;
use crate::report::model::{Model, MAX_LINE_ERRORS};
use crate::report::units::{ByteSize, Count};

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

/// Counters that are normal or chosen by the user (a focus, `--dedup`, the
/// evidence caps, live mode's latency), not a loss. Any other counter not
/// named here or in [`NOTED`] is shown as a loss when non-zero: a counter
/// added later errs on the side of being noticed.
const BENIGN_COUNTERS: &[&str] = &[
    "timeouts",
    "active_flows",
    "filtered",
    "duplicates",
    "extract.files",
    "extract.packets",
    "extract.bytes",
    "extract.capped_packets",
    "extract.capped_flows",
    "alert_storms.summaries",
    // --kafka: what the broker took, and what waited for it when the
    // stats were written (the final stats event is written before the
    // queue drains; the producer says at its end what it could not deliver).
    // Its losses are kafka.failed and kafka.dropped.
    "kafka.delivered",
    "kafka.queued",
    // --syslog: what was sent, and how often the connection was made again;
    // its loss is syslog.dropped.
    "syslog.sent",
    "syslog.reconnects",
];

/// Groups of counters that are never a loss (`alert_latency.p99_us`…).
const BENIGN_GROUPS: &[&str] = &["alert_latency"];

/// Counters worth a note, not an alarm: nothing was lost, but the reader
/// should know. With the note's text after the count.
const NOTED: &[(&str, &str)] = &[
    (
        "alert_storms.alerts_folded",
        "alerts of storming sources were folded into alert_summary events by storm control; \
         every flow kept its verdict, and this report counts every one of them",
    ),
    (
        "one_sided_flows",
        "TCP flows were seen in one direction only (a SPAN port mirroring one direction?); \
         they are classified all the same",
    ),
    (
        "resumed_flows",
        "flows came back after they were evicted and kept their ends",
    ),
];

/// A loss counter in words: "5 packets dropped by the kernel"; one this
/// version does not know by its name: "drops.kernel: 5".
fn loss_text(key: &str, n: u64) -> String {
    let n = Count(n);
    match key {
        "interfaces.kernel_dropped" => format!("{n} packets dropped by the kernel"),
        "interfaces.interface_dropped" => format!("{n} packets dropped by the interface"),
        "interfaces.errors" => format!("{n} capture interface(s) stopped with an error"),
        _ => match key.strip_prefix("queue_drops.") {
            Some(reason) => format!("{n} packets dropped inside portmatrix ({reason})"),
            None => format!("{key}: {n}"),
        },
    }
}

pub(super) fn health(out: &mut String, m: &Model) -> fmt::Result {
    out.push_str("<h2 id=\"health\">Capture health</h2>\n");
    let mut problems: Vec<String> = Vec::new();
    // Already escaped: they are written as they are.
    let mut notes: Vec<String> = Vec::new();
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
                problems.push(format!(
                    "{} flows were evicted (the flow table was full)",
                    Count(evictions)
                ));
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
                let group = key.split_once('.').map_or("", |(g, _)| g);
                let benign =
                    BENIGN_COUNTERS.contains(&key.as_str()) || BENIGN_GROUPS.contains(&group);
                let noted = NOTED.iter().find(|(k, _)| k == key);
                let meaning = match noted {
                    Some(_) => "not a loss: see the note above",
                    None if benign => "normal",
                    None => "lost: the analysis misses these",
                };
                row(key, false, n, !benign && noted.is_none(), meaning)?;
                if n == 0 {
                    continue;
                }
                match noted {
                    Some((_, text)) => notes.push(format!("{}: {} {text}", Esc(key), Count(n))),
                    None if !benign => problems.push(loss_text(key, n)),
                    None => {}
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
    for note in &notes {
        writeln!(out, r#"<div class="note">{note}.</div>"#)?;
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

/// The events files and their malformed lines, in a `<section id="inputs">`:
/// the one part of the section that depends on how the events were
/// delivered (see [`super::render`]); then the capture files the stats name.
fn inputs(out: &mut String, m: &Model) -> fmt::Result {
    out.push_str(
        "<section id=\"inputs\"><h3>Inputs</h3>\n<table><thead><tr><th>Events file</th><th class=\"n\">Lines</th>\
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
    out.push_str("</section>\n");
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
    Ok(())
}
