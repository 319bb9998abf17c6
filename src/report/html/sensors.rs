//! The page's "Sensors" section, when the events name their sensors
//! (`host`): what each saw, and how many flows more than one saw (counted
//! once everywhere else in the page). Sensor names come from the events:
//! untrusted, escaped.

use std::fmt::{self, Write};

use crate::report::escape::Esc;
use crate::report::fleet::MAX_SENSORS;
use crate::report::model::Model;
use crate::report::units::{Count, Span, TimeText};
use crate::verdict::Verdict;

pub(super) fn section(out: &mut String, m: &Model) -> fmt::Result {
    if m.sensors.is_empty() {
        return Ok(());
    }
    out.push_str("<h2 id=\"sensors\">Sensors</h2>\n");
    let window = i64::try_from(m.dedup_window.as_nanos()).unwrap_or(i64::MAX);
    writeln!(
        out,
        "<p class=\"muted\">{} sensor(s) named in the events. <b>{}</b> flow(s) were seen by more \
         than one sensor and are counted once in this report (same Community ID and verdict, \
         first packets at most {} apart: <code>--dedup-window</code>); below, each sensor counts \
         every flow it saw. Packets and drops are from each sensor's latest stats event.</p>",
        Count(m.sensors.len() as u64),
        Count(m.multi_sensor_flows),
        Span(window)
    )?;
    if m.sensors_over_limit > 0 {
        writeln!(
            out,
            "<div class=\"note\">{} event(s) named a sensor beyond the first {MAX_SENSORS}: they \
             are counted as unnamed, and never merged with another sensor's.</div>",
            Count(m.sensors_over_limit)
        )?;
    }
    out.push_str(
        "<table class=\"sortable\" id=\"sensors-table\"><thead><tr><th>Sensor</th>\
         <th class=\"n\" data-type=\"num\">Flows</th><th class=\"n\" data-type=\"num\">Flagged</th>\
         <th>Verdicts</th><th class=\"n\" data-type=\"num\">Packets</th>\
         <th class=\"n\" data-type=\"num\">Drops</th><th data-type=\"num\">First seen</th>\
         <th data-type=\"num\">Last seen</th></tr></thead><tbody>\n",
    );
    for (name, s) in &m.sensors {
        let verdicts: Vec<String> = Verdict::ALL
            .into_iter()
            .filter_map(|v| s.verdicts.get(&v).map(|n| format!("{v} {}", Count(*n))))
            .collect();
        let packets = s.stats.as_ref().and_then(|t| t.get("packets"));
        let drops = s.drops();
        let number = |n: Option<u64>, warn: bool| match n {
            Some(n) => format!(
                r#"<td class="n{}" data-sort="{n}">{}</td>"#,
                if warn && n > 0 { " warnv" } else { "" },
                Count(n)
            ),
            None => r#"<td class="n muted" data-sort="-1">—</td>"#.to_string(),
        };
        let time = |t: Option<crate::timestamp::Timestamp>| {
            t.map_or_else(
                || r#"<td data-sort="0"></td>"#.to_string(),
                |t| {
                    format!(
                        r#"<td data-sort="{}">{}</td>"#,
                        t.as_nanos(),
                        Esc(&TimeText::Full.show(t))
                    )
                },
            )
        };
        writeln!(
            out,
            r#"<tr><td class="mono">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td>{}{}{}{}</tr>"#,
            Esc(name),
            Count(s.flows),
            Count(s.flagged),
            Esc(&verdicts.join(", ")),
            number(packets, false),
            number(drops, true),
            time(s.first),
            time(s.last),
        )?;
    }
    out.push_str("</tbody></table>\n");
    Ok(())
}
