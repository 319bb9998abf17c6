//! When the flagged flows happened, as inline SVG: one lane per verdict, one
//! mark per flow from its first to its last packet, on a UTC time axis that
//! spans the whole capture. Marks that overlap in time are stacked in
//! sub-rows of their lane, so a burst (a port scan) stays visible as a block.

use std::fmt::{self, Write};

use crate::timestamp::Timestamp;
use crate::verdict::Verdict;

use super::escape::Esc;
use super::events::FlowRecord;
use super::theme::colour;
use super::units::{ByteSize, Count, TimeText};

const WIDTH: f64 = 1240.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 30.0;
const SUB_ROW: f64 = 9.0;
/// Sub-rows per lane; marks beyond them overlap in the last one.
const MAX_SUB_ROWS: usize = 14;
const LANE_PAD: f64 = 10.0;
/// Narrower marks are widened to this, so a one-packet flow is visible.
const MIN_MARK: f64 = 3.0;

/// Maps time to x over `[start, end]` (a zero-length span is widened to 1 s).
struct Axis {
    start: i64,
    len: f64,
}

impl Axis {
    fn new(span: (Timestamp, Timestamp)) -> Axis {
        let (a, b) = (span.0.as_nanos(), span.1.as_nanos());
        if b > a {
            Axis {
                start: a,
                // abs_diff: the span of two i64 times can exceed i64.
                len: b.abs_diff(a) as f64,
            }
        } else {
            Axis {
                start: a.saturating_sub(500_000_000),
                len: 1e9,
            }
        }
    }

    fn x(&self, t: Timestamp) -> f64 {
        let frac = (t.as_nanos().saturating_sub(self.start)) as f64 / self.len;
        LEFT + frac.clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    /// Tick step in nanoseconds (a "round" duration, 4 to 10 ticks) and how to label it.
    fn ticks(&self) -> (i64, TimeText) {
        const S: i64 = 1_000_000_000;
        const STEPS: [i64; 28] = [
            1_000,
            10_000,
            100_000,
            1_000_000,
            2_000_000,
            5_000_000,
            10_000_000,
            20_000_000,
            50_000_000,
            100_000_000,
            200_000_000,
            500_000_000,
            S,
            2 * S,
            5 * S,
            10 * S,
            15 * S,
            30 * S,
            60 * S,
            120 * S,
            300 * S,
            600 * S,
            1_800 * S,
            3_600 * S,
            3 * 3_600 * S,
            6 * 3_600 * S,
            86_400 * S,
            7 * 86_400 * S,
        ];
        let step = STEPS
            .iter()
            .copied()
            .find(|&s| self.len / s as f64 <= 10.0)
            .unwrap_or(30 * 86_400 * S);
        let text = if step >= 86_400 * S {
            TimeText::Date
        } else if self.len > 86_400.0 * S as f64 {
            TimeText::DayMinute
        } else if step >= S {
            TimeText::Second
        } else if step >= 1_000_000 {
            TimeText::Milli
        } else {
            TimeText::Micro
        };
        (step, text)
    }
}

/// What the timeline draws.
#[derive(Debug, Clone, Copy)]
pub enum Flagged<'a> {
    /// Every flagged flow, with its details: one mark each.
    Flows(&'a [FlowRecord]),
    /// Too many flows for the page to list: the verdict and first packet of
    /// each, drawn as counts per slice of time.
    Starts(&'a [(Verdict, Timestamp)]),
}

/// Slices of the span in the counts view.
const BINS: usize = 400;
/// Height of a lane in the counts view.
const DENSITY_H: f64 = 34.0;

/// What one lane draws.
enum Content<'r> {
    /// One mark per flow, each in a sub-row; and the number of sub-rows.
    Marks(Vec<(&'r FlowRecord, usize)>, usize),
    /// Flows that started in each of [`BINS`] equal slices of the span.
    Counts(Vec<u64>),
}

struct Lane<'r> {
    verdict: Verdict,
    flows: u64,
    content: Content<'r>,
}

impl Lane<'_> {
    fn height(&self) -> f64 {
        match &self.content {
            Content::Marks(_, rows) => *rows as f64 * SUB_ROW + 2.0 * LANE_PAD,
            Content::Counts(_) => DENSITY_H + 2.0 * LANE_PAD,
        }
    }
}

fn lanes<'r>(flagged: Flagged<'r>, axis: &Axis) -> Vec<Lane<'r>> {
    let verdicts = Verdict::ALL
        .into_iter()
        .filter(|&v| v != Verdict::Documented);
    match flagged {
        Flagged::Flows(records) => verdicts
            .filter_map(|v| {
                let mut flows: Vec<&FlowRecord> =
                    records.iter().filter(|r| r.verdict == v).collect();
                flows.sort_by_key(|r| (r.first, r.last, r.flow_id));
                let (marks, rows) = stack(&flows, axis);
                (!flows.is_empty()).then_some(Lane {
                    verdict: v,
                    flows: flows.len() as u64,
                    content: Content::Marks(marks, rows),
                })
            })
            .collect(),
        Flagged::Starts(starts) => verdicts
            .filter_map(|v| {
                let mut bins = vec![0u64; BINS];
                let mut flows = 0;
                for &(_, t) in starts.iter().filter(|(sv, _)| *sv == v) {
                    let frac = (axis.x(t) - LEFT) / (WIDTH - LEFT - RIGHT);
                    let i = ((frac * BINS as f64) as usize).min(BINS - 1);
                    bins[i] += 1;
                    flows += 1;
                }
                (flows > 0).then_some(Lane {
                    verdict: v,
                    flows,
                    content: Content::Counts(bins),
                })
            })
            .collect(),
    }
}

/// Write the timeline of the flagged flows over `span` as one `<svg>` element.
pub fn write_svg(
    out: &mut String,
    flagged: Flagged<'_>,
    span: (Timestamp, Timestamp),
) -> fmt::Result {
    let axis = Axis::new(span);
    let lanes = lanes(flagged, &axis);
    let top = 12.0;
    let axis_y = top + lanes.iter().map(Lane::height).sum::<f64>().max(30.0);
    let height = axis_y + 40.0;
    writeln!(
        out,
        r#"<svg id="timeline-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="Flagged flows over time">"#
    )?;
    // Lane backgrounds and names first, then the grid, then the marks on top.
    let mut y = top;
    for (i, lane) in lanes.iter().enumerate() {
        let h = lane.height();
        writeln!(
            out,
            r##"<rect x="0" y="{y:.1}" width="{WIDTH}" height="{h:.1}" fill="{bg}"/><text x="{tx}" y="{ty:.1}" text-anchor="end" font-size="12" fill="#1d2330">{} ({})</text>"##,
            lane.verdict,
            Count(lane.flows),
            bg = if i % 2 == 0 { "#ffffff" } else { "#f5f7fa" },
            tx = LEFT - 10.0,
            ty = y + h / 2.0 + 4.0
        )?;
        y += h;
    }
    write_axis(out, &axis, top, axis_y)?;
    let mut y = top;
    for lane in &lanes {
        match &lane.content {
            Content::Marks(marks, _) => write_marks(out, &axis, lane.verdict, marks, y)?,
            Content::Counts(bins) => write_counts(out, &axis, lane.verdict, bins, y)?,
        }
        y += lane.height();
    }
    out.push_str("</svg>\n");
    Ok(())
}

fn write_axis(out: &mut String, axis: &Axis, top: f64, axis_y: f64) -> fmt::Result {
    let (step, text) = axis.ticks();
    // In i128: an axis that reaches the end of i64 time (a timestamp in the
    // year 4042 saturates there) must still end, not stop on i64::MAX forever.
    let (start, step) = (i128::from(axis.start), i128::from(step));
    let end = start + axis.len as i128;
    let mut t = start.div_euclid(step) * step;
    if t < start {
        t += step;
    }
    while t <= end {
        let at = Timestamp::from_nanos(i64::try_from(t).unwrap_or(i64::MAX));
        let x = axis.x(at);
        writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{axis_y}" stroke="#e3e7ed"/><text x="{x:.1}" y="{ty}" text-anchor="middle" font-size="11" fill="#5f6b7a">{}</text>"##,
            Esc(&text.show(at)),
            ty = axis_y + 16.0
        )?;
        t += step;
    }
    writeln!(
        out,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{x2}" y2="{axis_y}" stroke="#5f6b7a"/><text x="{LEFT}" y="{ty}" font-size="11" fill="#5f6b7a">UTC</text>"##,
        x2 = WIDTH - RIGHT,
        ty = axis_y + 32.0
    )
}

fn write_marks(
    out: &mut String,
    axis: &Axis,
    verdict: Verdict,
    marks: &[(&FlowRecord, usize)],
    y: f64,
) -> fmt::Result {
    for &(r, row) in marks {
        let x1 = axis.x(r.first);
        let w = (axis.x(r.last) - x1).max(MIN_MARK);
        write!(
            out,
            r#"<rect class="mark" data-verdict="{verdict}" x="{x1:.1}" y="{my:.1}" width="{w:.1}" height="{h}" rx="1.5" fill="{c}"><title>"#,
            my = y + LANE_PAD + row as f64 * SUB_ROW,
            h = SUB_ROW - 2.0,
            c = colour(verdict)
        )?;
        write!(
            out,
            "{} {} {}:{} \u{2192} {}:{} {}",
            Esc(&TimeText::Full.show(r.first)),
            r.transport,
            r.client.0,
            r.client.1,
            r.server.0,
            r.server.1,
            verdict
        )?;
        if let Some(bytes) = r.bytes {
            write!(out, ", {}", ByteSize(bytes))?;
        }
        out.push_str("</title></rect>\n");
    }
    Ok(())
}

/// One bar per slice of time, as tall as its count against the lane's busiest slice.
fn write_counts(
    out: &mut String,
    axis: &Axis,
    verdict: Verdict,
    bins: &[u64],
    y: f64,
) -> fmt::Result {
    let busiest = bins.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slice = (WIDTH - LEFT - RIGHT) / BINS as f64;
    let ns_per_bin = axis.len / BINS as f64;
    for (i, &n) in bins.iter().enumerate().filter(|(_, &n)| n > 0) {
        let h = (n as f64 / busiest * DENSITY_H).max(2.0);
        let from = Timestamp::from_nanos(axis.start.saturating_add((i as f64 * ns_per_bin) as i64));
        writeln!(
            out,
            r#"<rect class="bin" data-verdict="{verdict}" x="{x:.1}" y="{by:.1}" width="{w:.2}" height="{h:.1}" fill="{c}"><title>{} {verdict} flow{} from {}</title></rect>"#,
            Count(n),
            if n == 1 { "" } else { "s" },
            Esc(&TimeText::Full.show(from)),
            x = LEFT + i as f64 * slice,
            by = y + LANE_PAD + DENSITY_H - h,
            w = slice.max(1.0),
            c = colour(verdict)
        )?;
    }
    Ok(())
}

/// Greedy interval packing: each mark goes to the first sub-row whose last
/// mark ends (in pixels) before it starts. Returns marks with their sub-row
/// and the number of sub-rows used.
fn stack<'r>(flows: &[&'r FlowRecord], axis: &Axis) -> (Vec<(&'r FlowRecord, usize)>, usize) {
    let mut ends: Vec<f64> = Vec::new();
    let placed = flows
        .iter()
        .map(|&r| {
            let x1 = axis.x(r.first);
            let x2 = axis.x(r.last).max(x1 + MIN_MARK) + 1.0;
            let row = match ends.iter().position(|&e| e <= x1) {
                Some(i) => i,
                None if ends.len() < MAX_SUB_ROWS => {
                    ends.push(0.0);
                    ends.len() - 1
                }
                None => MAX_SUB_ROWS - 1,
            };
            ends[row] = ends[row].max(x2);
            (r, row)
        })
        .collect();
    (placed, ends.len().max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Transport;

    fn flow(id: u64, first_ms: i64, last_ms: i64, verdict: Verdict) -> FlowRecord {
        FlowRecord {
            flow_id: id,
            transport: Transport::Tcp,
            client: ("10.0.0.1".parse().expect("ip"), 50000),
            server: ("10.0.0.2".parse().expect("ip"), 135),
            verdict,
            severity: verdict.default_severity(),
            rule_ids: vec![],
            vlan: None,
            first: Timestamp::from_nanos(first_ms * 1_000_000),
            last: Timestamp::from_nanos(last_ms * 1_000_000),
            packets: Some(2),
            bytes: Some(120),
            evidence: None,
            sensor: None,
            also_seen_by: Vec::new(),
            community_id: None,
            copies: None,
        }
    }

    #[test]
    fn one_mark_per_flagged_flow_in_one_lane_per_verdict() {
        let flows = vec![
            flow(1, 0, 10, Verdict::Undocumented),
            flow(2, 1, 2, Verdict::Undocumented),
            flow(3, 30_000, 30_010, Verdict::InternalOnly),
        ];
        let mut svg = String::new();
        write_svg(
            &mut svg,
            Flagged::Flows(&flows),
            (
                Timestamp::from_nanos(0),
                Timestamp::from_nanos(60 * 1_000_000_000),
            ),
        )
        .expect("render");
        assert_eq!(svg.matches("<rect class=\"mark\"").count(), 3);
        assert!(svg.contains("undocumented (2)"));
        assert!(svg.contains("internal_only (1)"));
        assert!(svg.contains(">00:00:10<"), "ticks every 10 s: {svg}");
    }

    #[test]
    fn overlapping_marks_stack_and_the_stack_is_bounded() {
        let axis = Axis::new((
            Timestamp::from_nanos(0),
            Timestamp::from_nanos(1_000_000_000),
        ));
        let flows: Vec<FlowRecord> = (0..40)
            .map(|i| flow(i, 0, 1, Verdict::Undocumented))
            .collect();
        let refs: Vec<&FlowRecord> = flows.iter().collect();
        let (placed, rows) = stack(&refs, &axis);
        assert_eq!(rows, MAX_SUB_ROWS);
        assert_eq!(placed.len(), 40);
        assert_eq!(placed[1].1, 1);
    }

    #[test]
    fn too_many_flows_are_drawn_as_counts_per_slice_of_time() {
        let s = 1_000_000_000;
        let starts: Vec<(Verdict, Timestamp)> = (0..50_000)
            .map(|i| (Verdict::Undocumented, Timestamp::from_nanos(i % 100 * s)))
            .chain([(Verdict::Deprecated, Timestamp::from_nanos(99 * s))])
            .collect();
        let mut svg = String::new();
        write_svg(
            &mut svg,
            Flagged::Starts(&starts),
            (Timestamp::EPOCH, Timestamp::from_nanos(100 * s)),
        )
        .expect("render");
        assert_eq!(svg.matches("class=\"mark\"").count(), 0);
        assert_eq!(
            svg.matches("class=\"bin\" data-verdict=\"undocumented\"")
                .count(),
            100
        );
        assert_eq!(
            svg.matches("class=\"bin\" data-verdict=\"deprecated\"")
                .count(),
            1
        );
        assert!(svg.contains("undocumented (50,000)"));
        assert!(svg.contains("<title>500 undocumented flows from"));
    }

    #[test]
    fn a_zero_length_span_still_draws() {
        let flows = vec![flow(1, 5, 5, Verdict::Deprecated)];
        let t = Timestamp::from_nanos(5_000_000);
        let mut svg = String::new();
        write_svg(&mut svg, Flagged::Flows(&flows), (t, t)).expect("render");
        assert_eq!(svg.matches("class=\"mark\"").count(), 1);
    }
}
