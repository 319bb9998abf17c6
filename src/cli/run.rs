//! The options `analyze` and `live` share ([`RunArgs`]): what to write,
//! which packets and flows, evidence, flow tracking, the stop, the rules and
//! the site; each command adds its own input (files or interfaces).

use std::num::{NonZeroU16, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser;
use clap::{Args, ValueEnum};

use portmatrix::evidence::ExtractBy;
use portmatrix::filter::{parse_verdict, Cidr, Focus, VerdictSet};
use portmatrix::flow::Timeouts;
use portmatrix::output::Format;
use portmatrix::pipeline::{ExtractConfig, FlowSettings};
use portmatrix::verdict::Verdict;

use super::kafka::KafkaProduceArgs;
use super::{MatrixArgs, SiteArgs};
use crate::cmd::exit::Exit;

/// What `analyze` and `live` have in common, written once so that the two
/// cannot drift apart: the same names, texts, defaults and limits. Each
/// part sets its help heading.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub extract: ExtractArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    #[command(flatten)]
    pub stop: StopArgs,
    #[command(flatten, next_help_heading = "Rules and site")]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub site: SiteArgs,
}

/// What to write.
#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct EventArgs {
    /// How to write events: text (one line a person reads), json (one EVE-style
    /// object per line, with a final stats event), csv (a header row and one row
    /// per flow event; implies --flows) or eve (Suricata's EVE JSON, valid against
    /// its schema, for Suricata tooling; see docs/events.md).
    #[arg(long, value_name = "FORMAT", value_enum, conflicts_with = "json")]
    pub format: Option<FormatArg>,
    /// The same as --format json.
    #[arg(long)]
    pub json: bool,
    /// Also write a flow event for every flow when it ends (documented ones included).
    #[arg(long)]
    pub flows: bool,
    /// Storm control: beyond N alerts a minute from one source, fold its
    /// alerts into one alert_summary event a minute (flow events keep every
    /// verdict); 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub alert_burst: u32,
    /// The sensor's name in the events: EVE's `host`, and `host` in JSON events when
    /// given or with --kafka (a fleet's events tell their sensor); default: the host name.
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    #[command(flatten, next_help_heading = "Kafka")]
    pub kafka: KafkaProduceArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
    Csv,
    Eve,
}

impl EventArgs {
    pub fn format(&self) -> Format {
        let kafka = self.kafka.connect.kafka.is_some();
        match (self.json, self.format) {
            (true, _) | (false, Some(FormatArg::Json)) => Format::Json,
            (false, None) if kafka => Format::Json,
            (false, Some(FormatArg::Csv)) => Format::Csv,
            (false, Some(FormatArg::Eve)) => Format::Eve,
            (false, Some(FormatArg::Text) | None) => Format::Text,
        }
    }

    /// What is wrong with these options together, if anything.
    pub fn problem(&self) -> Option<&'static str> {
        let kafka = self.kafka.connect.kafka.is_some();
        match self.format() {
            Format::Text | Format::Csv if kafka => {
                Some("--kafka sends JSON lines or EVE (--format json or eve), not text or CSV")
            }
            _ => None,
        }
    }

    /// The name `host` carries in JSON events: given, or needed by a fleet (--kafka).
    pub fn host_in_json(&self) -> bool {
        self.sensor_name.is_some() || self.kafka.connect.kafka.is_some()
    }

    /// Flow events are written with --flows, and always in CSV (which holds nothing else).
    pub fn flows(&self) -> bool {
        self.flows || self.format() == Format::Csv
    }
}

/// Which packets and flows matter, and which verdicts fail the run.
#[derive(Debug, Args)]
#[command(next_help_heading = "Focus")]
pub struct SelectArgs {
    /// Only packets to or from this address or block (repeatable: any of them).
    #[arg(long = "host", value_name = "IP|CIDR")]
    pub hosts: Vec<Cidr>,
    /// Only packets to or from this port (repeatable: any of them).
    #[arg(long = "port", value_name = "N")]
    pub ports: Vec<u16>,
    /// Report only flows with these verdicts (comma-separated or repeated); every
    /// flow is still counted in the stats and the summary.
    #[arg(long = "verdict", value_name = "V[,V…]", value_delimiter = ',', value_parser = parse_verdict)]
    pub verdicts: Vec<Verdict>,
    #[arg(long = "fail-on", value_name = "V[,V…]", value_delimiter = ',', value_parser = parse_verdict,
          help = format!("Exit with code {} when any flow has one of these verdicts \
(comma-separated or repeated), e.g. --fail-on undocumented,wrong_transport for a scheduled audit",
              Exit::GateFailed.code()))]
    pub fail_on: Vec<Verdict>,
}

impl SelectArgs {
    /// The packet filters of these options (hosts and ports).
    pub fn focus(&self) -> Focus {
        Focus {
            hosts: self.hosts.clone(),
            ports: self.ports.clone(),
            ..Focus::default()
        }
    }

    /// The verdicts to report: all when none is named.
    pub fn verdicts(&self) -> VerdictSet {
        if self.verdicts.is_empty() {
            VerdictSet::ALL
        } else {
            self.verdicts.iter().copied().collect()
        }
    }

    pub fn fail_on(&self) -> VerdictSet {
        self.fail_on.iter().copied().collect()
    }
}

/// Evidence: the packets of flagged flows as pcapng files.
#[derive(Debug, Args)]
#[command(next_help_heading = "Evidence")]
pub struct ExtractArgs {
    /// Write the packets of every flagged flow (verdict not documented; see
    /// --verdict) to pcapng files in DIR, created if missing; each file says in
    /// comments why its flows were flagged. Flow events name their file in `evidence`.
    #[arg(long = "extract", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// One file per flow (`<flow_id>-<verdict>-<proto>-<client>_<port>-<server>_<port>.pcapng`)
    /// or one per verdict (`<verdict>.pcapng`).
    #[arg(
        long = "extract-by",
        value_name = "BY",
        value_enum,
        default_value = "flow"
    )]
    pub by: ExtractByArg,
    /// Packets written per flow, from its first.
    #[arg(long = "extract-max-packets", value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_packets: u64,
    /// Captured bytes written in all, in MiB; extraction stops there (the stats count what it left out).
    #[arg(long = "extract-max-mb", value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub max_mb: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExtractByArg {
    Flow,
    Verdict,
}

impl ExtractArgs {
    /// `None` without --extract. `snaplen`: the capture's, if known (0 otherwise).
    pub fn config(&self, verdicts: VerdictSet, snaplen: u32) -> Option<ExtractConfig> {
        let dir = self.dir.clone()?;
        Some(ExtractConfig {
            dir,
            by: match self.by {
                ExtractByArg::Flow => ExtractBy::Flow,
                ExtractByArg::Verdict => ExtractBy::Verdict,
            },
            max_packets: self.max_packets,
            max_bytes: self.max_mb.saturating_mul(1 << 20),
            snaplen,
            verdicts,
        })
    }
}

/// How flows are tracked.
#[derive(Debug, Args)]
#[command(next_help_heading = "Flows")]
pub struct FlowArgs {
    /// Worker threads that track flows [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = workers_parser())]
    pub workers: Option<NonZeroU16>,
    /// The most flows tracked at once; beyond it the oldest idle flows are evicted (and reported).
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_flows: u64,
    /// Seconds a TCP connection may stay idle before its flow ends.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub tcp_timeout: u32,
    /// Seconds a closed (FIN/RST) TCP connection is kept for late packets.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub tcp_closed_timeout: u32,
    /// Seconds a UDP flow may stay idle before it ends.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub udp_timeout: u32,
    /// Drop the second copy of a packet seen again within the window (a SPAN
    /// mirroring both sides of a routed path); TTL and IP checksum are ignored.
    /// `--dedup` alone uses a 10 ms window; `--dedup=50ms` another.
    #[arg(long, value_name = "WINDOW", num_args = 0..=1, require_equals = true, default_missing_value = "10ms", value_parser = parse_dedup_window)]
    pub dedup: Option<Duration>,
    /// Keep flows of different VLANs apart (overlapping address spaces); by
    /// default the VLAN id is not part of a flow's identity.
    #[arg(long)]
    pub vlan_key: bool,
}

/// How long a stop may take (see the Signals paragraph of the command's help).
#[derive(Debug, Args)]
pub struct StopArgs {
    #[arg(long = "stop-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_duration,
          help_heading = None::<&str>,
          help = format!("The longest a clean stop (after SIGTERM or SIGINT) may take: closing \
the open flows, writing the final stats and the summary. Beyond it portmatrix says so and exits \
with code {}, keeping the events written so far", Exit::OutputFailed.code()))]
    pub timeout: Duration,
}

/// `--workers`: 1 to 1024, as a type that cannot be zero (so nothing after
/// the command line needs to guard against it).
pub fn workers_parser() -> impl TypedValueParser<Value = NonZeroU16> {
    clap::value_parser!(u16)
        .range(1..=1024)
        .try_map(NonZeroU16::try_from)
}

/// A dedup window: 1 ms to 10 s.
fn parse_dedup_window(s: &str) -> Result<Duration, String> {
    duration_within(s, Duration::from_millis(1), Duration::from_secs(10))
}

impl FlowArgs {
    pub fn settings(&self) -> FlowSettings {
        FlowSettings {
            workers: match self.workers {
                Some(n) => NonZeroUsize::from(n),
                None => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            },
            max_flows: usize::try_from(self.max_flows).unwrap_or(usize::MAX),
            timeouts: Timeouts {
                tcp_secs: self.tcp_timeout,
                tcp_closed_secs: self.tcp_closed_timeout,
                udp_secs: self.udp_timeout,
            },
            vlan_key: self.vlan_key,
            dedup_nanos: self
                .dedup
                .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        }
    }
}

/// `60s`, `5m`, `1h`, `500ms`, or plain seconds.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    duration_within(s, Duration::from_millis(100), Duration::MAX)
}

/// `60s`, `5m`, `1h`, `500ms` or plain seconds, between `min` and `max`.
fn duration_within(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let usage = || format!("`{s}`: expected a duration such as 60s, 5m, 1h or 500ms");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().map_err(|_| usage())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(usage()),
    };
    if d < min || d > max {
        return Err(format!(
            "`{s}`: must be at least {min:?}{}",
            if max == Duration::MAX {
                String::new()
            } else {
                format!(" and at most {max:?}")
            }
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("10ms").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_dedup_window("10ms"), Ok(Duration::from_millis(10)));
        assert!(parse_dedup_window("0ms").is_err());
        assert!(parse_dedup_window("1m").is_err());
    }
}
