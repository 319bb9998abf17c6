//! What the user typed (clap) -> what each command needs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use portmatrix::flow::Timeouts;
use portmatrix::matrix::{MatrixSources, Product};
use portmatrix::output::Format;
use portmatrix::pipeline::FlowSettings;
use portmatrix::transport::Transport;

#[derive(Debug, Parser)]
#[command(
    name = "portmatrix",
    version,
    about = "Check network traffic against the Avaya Aura Contact Center 7.1.2 port matrix",
    long_about = "portmatrix classifies every TCP/UDP flow against the vendor's port matrix for \
Avaya Aura Contact Center / Contact Center Select 7.1.2 and flags what the matrix does not allow.\n\n\
The matrix is built in (`portmatrix rules list`); site rules files add to it (--rules).",
    after_help = "Exit codes: 0 success, 1 an input or rules file could not be used, 2 wrong usage, \
4 the output could not be written (a full disk; a closed pipe, as in `| head`, is a normal end)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse capture files: classify every TCP/UDP flow against the matrix.
    Analyze(AnalyzeArgs),
    /// Capture on network interfaces and classify flows as they happen.
    Live(LiveArgs),
    /// Show, explain and check the port-matrix rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Write a self-contained HTML report from the events of `analyze --json --flows`.
    #[command(
        long_about = "Write one self-contained HTML file (inline style, script and SVG; it fetches \
nothing and opens from disk) from the JSON Lines events of `portmatrix analyze --json --flows`:\n\
- overview: packets, flows, flows per verdict, flagged flows, time span;\n\
- capture health: decode failures, evictions, input errors, drops, malformed event lines;\n\
- a diagram of who talked to whom (hosts grouped by subnet, edges coloured by verdict);\n\
- a timeline and a sortable table of the flagged flows, with their rules;\n\
- matrix coverage: every rule, the traffic it saw, and the open rules never used.\n\n\
Give the same --rules / --no-default-rules / --profile as to analyze, so the coverage \
and the rule descriptions match the events."
    )]
    Report(ReportArgs),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List every rule with its document reference.
    List(ListArgs),
    /// Show the verdict a flow to TRANSPORT/PORT would get, and the rules that decide it.
    Explain(ExplainArgs),
    /// Validate rules files and report every error.
    Check(CheckArgs),
}

/// Which rules make up the matrix, and for which product.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Add the rules of a site rules file (repeatable; see the README for the format).
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not load the built-in AACC 7.1.2 matrix: use only --rules files.
    #[arg(long)]
    pub no_default_rules: bool,
    /// The product the site runs: aacc (Aura Contact Center) or accs (Contact Center Select).
    #[arg(long, value_name = "PROFILE", default_value = "aacc")]
    pub profile: Product,
}

impl MatrixArgs {
    pub fn sources(&self) -> MatrixSources {
        MatrixSources {
            builtin: !self.no_default_rules,
            files: self.rules.clone(),
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 every input was read to its end (or the output was closed, as \
by `| head`); 1 an input could not be read (everything before the damage is still reported); \
2 wrong usage; 4 the events could not be written (a full disk): they are incomplete.\n\n\
Events go to stdout (alerts as they happen; flow events with --flows; a final stats \
event with --json); errors, progress and the summary go to stderr."
)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng) or directories of them; read in time order.
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,
    #[command(flatten)]
    pub events: EventArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// No progress bar and no summary on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// What to write.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// Write one JSON object per line (EVE-style alert, flow and stats events).
    #[arg(long)]
    pub json: bool,
    /// Also write a flow event for every flow when it ends (documented ones included).
    #[arg(long)]
    pub flows: bool,
}

impl EventArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            Format::Text
        }
    }
}

/// How flows are tracked.
#[derive(Debug, Args)]
pub struct FlowArgs {
    /// Worker threads that track flows [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
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
}

impl FlowArgs {
    pub fn settings(&self) -> FlowSettings {
        FlowSettings {
            workers: match self.workers {
                Some(n) => usize::from(n),
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            max_flows: usize::try_from(self.max_flows).unwrap_or(usize::MAX),
            timeouts: Timeouts {
                tcp_secs: self.tcp_timeout,
                tcp_closed_secs: self.tcp_closed_timeout,
                udp_secs: self.udp_timeout,
            },
        }
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 stopped by SIGINT or SIGTERM (or the output was closed); \
1 an interface could not be opened, or failed during the run (without --retry); 2 wrong usage, \
including a bad --bpf expression or a --user that does not exist; 4 the events could not be \
written (a full disk): capture stops, the summary is still printed.\n\n\
Signals: SIGINT/SIGTERM stop the capture, close every open flow (reason \"shutdown\"), \
write the final stats and the summary; a second SIGINT exits at once. SIGHUP reopens -o FILE \
(for logrotate).\n\n\
Privileges: capturing needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN: \
`sudo setcap cap_net_raw,cap_net_admin=eip $(command -v portmatrix)`. As root, --user \
drops to that user once the capture is open."
)]
pub struct LiveArgs {
    /// Interface to capture on (repeatable: the two ports of a TAP merge into one
    /// flow table); `any` captures on all of them.
    #[arg(short = 'i', long = "interface", value_name = "IFACE", required = true)]
    pub interfaces: Vec<String>,
    /// Capture filter in tcpdump (BPF) syntax, applied in the kernel.
    #[arg(long, value_name = "EXPR")]
    pub bpf: Option<String>,
    /// Bytes kept of each packet: the headers are enough.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(64..=262_144))]
    pub snaplen: u32,
    /// The kernel's capture buffer per interface, in MiB: absorbs bursts.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2047))]
    pub buffer_mb: u32,
    /// Do not put the interface in promiscuous mode (a SPAN port does not need it).
    #[arg(long)]
    pub no_promisc: bool,
    /// Write events to FILE (appending) instead of stdout; SIGHUP reopens it.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub events: EventArgs,
    /// Write a stats event (and, without --json, a status line on stderr) this often:
    /// e.g. 60s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub stats_interval: Duration,
    /// After opening the capture, switch to this user (and its group); refuse to go on as root if that fails.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// When an interface goes down, wait for it to come back instead of stopping.
    #[arg(long)]
    pub retry: bool,
    #[command(flatten)]
    pub flow: FlowArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// No summary and no status lines on stderr (errors and drop warnings are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 every events line was used; 1 an events file could not be read \
or had malformed lines (they are skipped, named on stderr as FILE:LINE, and counted in the \
report, which is still written); 2 wrong usage; 4 the report could not be written.\n\n\
Example: portmatrix analyze --json --flows capture.pcapng > events.jsonl && \
portmatrix report events.jsonl -o report.html"
)]
pub struct ReportArgs {
    /// Events files (JSON Lines) from `portmatrix analyze --json --flows`; `-` reads stdin.
    #[arg(value_name = "EVENTS", required = true)]
    pub events: Vec<PathBuf>,
    /// The HTML file to write (`-` writes to stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// The report's heading.
    #[arg(long, value_name = "TEXT", default_value = "portmatrix report")]
    pub title: String,
    #[command(flatten)]
    pub matrix: MatrixArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Print a JSON array of rules instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only rules whose listening ports include PORT.
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Only rules whose id, systems, description or note contain TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The flow's transport and listening port, e.g. tcp/1972 or udp/6020.
    #[arg(value_name = "TRANSPORT/PORT", value_parser = parse_target)]
    pub target: (Transport, u16),
    /// The client's address.
    #[arg(long, value_name = "IP", default_value = "192.0.2.10")]
    pub src: IpAddr,
    /// The listening side's address (a multicast group for multicast traffic).
    #[arg(long, value_name = "IP", default_value = "192.0.2.20")]
    pub dst: IpAddr,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rules files to validate.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Check the files on their own, not merged with the built-in matrix (id clashes).
    #[arg(long)]
    pub no_default_rules: bool,
}

/// `tcp/1972` -> (Tcp, 1972).
fn parse_target(s: &str) -> Result<(Transport, u16), String> {
    let usage = || format!("`{s}`: expected TRANSPORT/PORT such as tcp/1972 or udp/6020");
    let (t, p) = s.split_once('/').ok_or_else(usage)?;
    let transport = match t.to_ascii_lowercase().as_str() {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        _ => {
            return Err(format!(
                "`{t}`: the transport is tcp or udp (TLS, HTTP, SIP… run over tcp)"
            ))
        }
    };
    let port = p
        .parse::<u16>()
        .map_err(|_| format!("`{p}`: a port is a number from 0 to 65535"))?;
    Ok((transport, port))
}

/// `60s`, `5m`, `1h`, `500ms`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
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
    if d < Duration::from_millis(100) {
        return Err(format!("`{s}`: the interval must be at least 100ms"));
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
    }
}
