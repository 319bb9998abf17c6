//! What the user typed (clap) -> what each command needs.

mod run;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cmd::exit::{self, Exit};

use portmatrix::filter::{Focus, TimeBound};
use portmatrix::matrix::{MatrixSources, Product};
use portmatrix::timestamp::Timestamp;
use portmatrix::transport::Transport;

use run::parse_duration;
pub use run::{workers_parser, RunArgs};

mod kafka;
mod sensor;
pub use kafka::KafkaConnectArgs;
pub use sensor::SensorArgs;

#[derive(Debug, Parser)]
#[command(
    name = "portmatrix",
    version,
    about = "Check network traffic against the Avaya Aura Contact Center 7.1.2 port matrix",
    long_about = "portmatrix classifies every TCP/UDP flow against the vendor's port matrix for \
Avaya Aura Contact Center / Contact Center Select 7.1.2 and flags what the matrix does not allow.\n\n\
The matrix is built in (`portmatrix rules list`); site rules files add to it (--rules). \
A site file (--site) says which hosts are which systems, so rules also check who talks to whom.",
    after_help = exit::ending(&[
        ("classify the flows of a capture: alerts on stdout, a summary on stderr",
         "portmatrix analyze fixtures/sample-contact-center.pcapng"),
        ("what the matrix says about a port, with the document's text",
         "portmatrix rules explain udp/6020"),
        ("draft a site inventory (which host is which system) from a capture",
         "portmatrix site suggest fixtures/sample-contact-center.pcapng -o site.toml"),
    ], &[
        (&[Exit::Success], "success"),
        (&[Exit::Incomplete], "an input or rules file could not be used"),
        (&[Exit::Usage], "wrong usage"),
        (&[Exit::GateFailed], "a flow had a verdict given to --fail-on"),
        (&[Exit::OutputFailed], "the output could not be written (a full disk; a closed pipe, as in \
`| head`, is a normal end) or a stop took longer than --stop-timeout"),
        (&[exit::BY_SIGINT, exit::BY_SIGQUIT, exit::BY_SIGTERM], "stopped by SIGINT/SIGQUIT/SIGTERM (see Signals in the help \
of analyze and live)"),
    ])
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
    #[command(subcommand, after_help = exit::ending(&[
        ("the rules of one port, with their document reference",
         "portmatrix rules list --port 1972"),
        ("the verdict a flow to a port gets, and why",
         "portmatrix rules explain udp/6020"),
        ("validate a site rules file, merged with the built-in matrix",
         "portmatrix rules check rules/infrastructure-example.toml"),
    ], RULES_EXITS))]
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
and the rule descriptions match the events.\n\n\
A fleet's events are read from Kafka with --kafka BROKERS --kafka-topic TOPIC (to the end the \
topic has when the report starts; --group keeps how far, for the next report): see docs/fleet.md."
    )]
    Report(ReportArgs),
    /// Work with site inventories (--site): draft one from captures, check one.
    #[command(subcommand, after_help = exit::ending(SITE_EXAMPLES, SITE_EXITS))]
    Site(SiteCommand),
    /// Write least-privilege firewall rules for a site (nftables, Windows Firewall, CSV).
    Policy(crate::cmd::policy::PolicyArgs),
    /// Compare two runs' events: new hosts, ports and verdicts, flows and rules gone.
    Diff(crate::cmd::diff::DiffArgs),
    /// Write the man pages and shell completions (for packaging).
    #[command(hide = true)]
    Generate(crate::cmd::generate::GenerateArgs),
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Propose a draft site file from the servers seen answering in captures.
    #[command(
        long_about = "Read captures and propose a draft site file (the --site format): every host \
that answered on ports the matrix documents (a TCP SYN-ACK, or a UDP reply) is given the system \
whose rules explain most of those ports, with the evidence (ports, flows, first seen) as \
comments. Clients are not listed: add agent desktops and other clients by subnet. Review the \
draft before using it.",
        after_help = exit::ending(&SITE_EXAMPLES[..1], SITE_EXITS)
    )]
    Suggest(SuggestArgs),
    /// Validate site files and report every error.
    #[command(after_help = exit::ending(&SITE_EXAMPLES[1..], SITE_EXITS))]
    Check(SiteCheckArgs),
}

/// The site inventory.
#[derive(Debug, Args)]
pub struct SiteArgs {
    /// Site file: which addresses are which systems, severities, accepted
    /// exceptions (see rules/site-example.toml). Rules then also check roles.
    #[arg(long = "site", value_name = "FILE")]
    pub site: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SuggestArgs {
    /// Capture files (pcap or pcapng) or directories of them.
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,
    /// Write the draft to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub matrix: MatrixArgs,
}

#[derive(Debug, Args)]
pub struct SiteCheckArgs {
    /// Site files to validate.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub matrix: MatrixArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List every rule with its document reference.
    #[command(after_help = exit::ending(&[
        ("every rule, one a line", "portmatrix rules list"),
        ("the rules of one port", "portmatrix rules list --port 1972"),
        ("the rules that name a system, as JSON", "portmatrix rules list --search ccmm --json"),
    ], RULES_EXITS))]
    List(ListArgs),
    /// Show the verdict a flow to TRANSPORT/PORT would get, and the rules that decide it.
    #[command(after_help = exit::ending(&[
        ("what the matrix says about RSM multicast", "portmatrix rules explain udp/6020"),
        ("between two hosts of a site inventory: does the role fit?",
         "portmatrix rules explain tcp/8081 --src 10.10.1.40 --dst 10.10.1.10 \\\n      \
--site rules/site-example.toml"),
    ], RULES_EXITS))]
    Explain(ExplainArgs),
    /// Validate rules files and report every error.
    #[command(after_help = exit::ending(&[
        ("a site rules file, merged with the built-in matrix (rule id clashes)",
         "portmatrix rules check rules/infrastructure-example.toml"),
        ("the file on its own",
         "portmatrix rules check --no-default-rules rules/infrastructure-example.toml"),
    ], RULES_EXITS))]
    Check(CheckArgs),
}

/// What `rules` and its subcommands exit with.
const RULES_EXITS: &[(&[Exit], &str)] = &[
    (&[Exit::Success], "success (for check: every file is valid)"),
    (
        &[Exit::Incomplete],
        "a rules or site file could not be read or is not valid (check prints \
every error, with its file and line)",
    ),
    (&[Exit::Usage], "wrong usage"),
    (&[Exit::OutputFailed], "the output could not be written"),
];

/// The examples of `site suggest` (the first) and `site check` (the rest).
const SITE_EXAMPLES: &[(&str, &str)] = &[
    (
        "draft a site file from the servers that answered in a capture",
        "portmatrix site suggest fixtures/sample-contact-center.pcapng -o site.toml",
    ),
    (
        "validate a site file against the matrix",
        "portmatrix site check rules/site-example.toml",
    ),
];

/// What `site` and its subcommands exit with.
const SITE_EXITS: &[(&[Exit], &str)] = &[
    (&[Exit::Success], "success (for check: every file is valid)"),
    (
        &[Exit::Incomplete],
        "a capture, rules or site file could not be read (suggest still drafts \
from what was read), or a site file is not valid (check prints every error)",
    ),
    (&[Exit::Usage], "wrong usage"),
    (
        &[Exit::OutputFailed],
        "the draft or the check's results could not be written",
    ),
];

/// Which rules make up the matrix, and for which product.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// Add the rules of a site rules file (repeatable; see docs/rules-and-site.md for the format).
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
    after_help = format!("\
Signals: SIGTERM or SIGINT stops the reading between chunks: every open flow is closed \
(reason \"shutdown\"), the final stats (with \"interrupted\": \"SIGTERM\" or \"SIGINT\") and \
the summary report what was read, and the exit code is {term} (SIGTERM) or {int} (SIGINT). \
Further SIGTERMs change nothing. A second SIGINT (half a second or more after the first stop \
signal) exits at once with code {int}, SIGQUIT with {quit}, and a stop that takes longer than \
--stop-timeout (default 10s) with code {out}; the events already written are kept, as for live.\n\n",
        term = exit::BY_SIGTERM.code(),
        int = exit::BY_SIGINT.code(),
        quit = exit::BY_SIGQUIT.code(),
        out = Exit::OutputFailed.code(),
    ) + "\
Events go to stdout (alerts as they happen; flow events with --flows; a final stats \
event with --format json); errors, progress and the summary go to stderr.\n\n" + &exit::ending(&[
        ("the alerts of a capture as they happen, then a summary",
         "portmatrix analyze fixtures/sample-contact-center.pcapng"),
        ("JSON events of every flow, checking who talks to whom with a site inventory",
         "portmatrix analyze -q --json --flows --site rules/site-example.toml \\\n      \
fixtures/sample-contact-center.pcapng > events.jsonl"),
        ("an incident: 20 seconds around one host, its flagged packets and an HTML report",
         "portmatrix analyze --since +10s --until +30s --host 10.10.1.10 --extract evidence \\\n      \
--report report.html fixtures/sample-contact-center.pcapng"),
        ("a scheduled audit that fails when any flow is undocumented",
         "portmatrix analyze -q --fail-on undocumented fixtures/sample-contact-center.pcapng"),
    ], &[
        (&[Exit::Success], "every input was read to its end (or the output was closed, as by `| head`)"),
        (&[Exit::Incomplete], "an input could not be read (everything before the damage is still \
reported), or an evidence file or the report could not be written"),
        (&[Exit::Usage], "wrong usage"),
        (&[Exit::GateFailed], "every input was read and some flow had a verdict given to --fail-on"),
        (&[Exit::OutputFailed], "the events could not be written (a full disk): they are incomplete; \
or a stop took longer than --stop-timeout"),
        (&[exit::BY_SIGINT, exit::BY_SIGTERM], "stopped by SIGINT or SIGTERM before the end of the input (see Signals)"),
        (&[exit::BY_SIGQUIT], "SIGQUIT"),
    ])
)]
pub struct AnalyzeArgs {
    /// Capture files (pcap or pcapng) or directories of them; read in time order.
    #[arg(value_name = "CAPTURE", required = true)]
    pub captures: Vec<PathBuf>,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Only packets matching this BPF expression (tcpdump syntax), on the
    /// outer headers as captured.
    #[arg(long, value_name = "EXPR", help_heading = "Focus")]
    pub bpf: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Write events to FILE (appending, as live does) instead of stdout.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Output"
    )]
    pub output: Option<PathBuf>,
    /// Also write the HTML report of this run to FILE (as `portmatrix report` would
    /// from the run's JSON events with --flows).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub report: Option<PathBuf>,
    /// No progress bar and no summary on stderr (errors are still printed).
    #[arg(long, short, help_heading = None::<&str>)]
    pub quiet: bool,
    /// No progress bar; the summary is still printed at the end.
    #[arg(long, help_heading = None::<&str>)]
    pub no_progress: bool,
}

impl AnalyzeArgs {
    pub fn focus(&self) -> Focus {
        Focus {
            since: self.window.since,
            until: self.window.until,
            bpf: self.bpf.clone(),
            ..self.run.select.focus()
        }
    }
}

/// The time window (files only).
#[derive(Debug, Args)]
#[command(next_help_heading = "Focus")]
pub struct WindowArgs {
    /// Only packets from this time on: RFC 3339 with any offset
    /// (2021-08-02T09:10:00Z, 2021-08-02T11:10:00+02:00; without one, the local time),
    /// epoch seconds (1627895400), or an offset from the first packet (+90s, +2m30s, +1h).
    #[arg(long, value_name = "TIME", value_parser = time_bound)]
    pub since: Option<TimeBound>,
    /// Only packets before this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = time_bound)]
    pub until: Option<TimeBound>,
}

/// `--since`/`--until`: a time given without an offset is the machine's
/// local time (its zone, or `TZ`), and stderr says which zone that was and
/// the UTC time it became, since the user may have meant another.
fn time_bound(s: &str) -> Result<TimeBound, portmatrix::filter::FilterError> {
    let (bound, assumed) = TimeBound::parse(s)?;
    match (bound, assumed) {
        (TimeBound::At(as_utc), true) => {
            let zone = jiff::tz::TimeZone::system();
            let name = zone.iana_name().unwrap_or("the local zone").to_string();
            let bound = TimeBound::At(local_to_utc(as_utc, &zone).unwrap_or(as_utc));
            portmatrix::diag!(
                "portmatrix: note: `{s}` has no offset: taken as local time in {name} ({bound}); \
add Z or the offset (such as +02:00) to say which zone it is in"
            );
            Ok(bound)
        }
        _ => Ok(bound),
    }
}

/// `report --since/--until`: a time as `analyze` takes it, but not an offset
/// from the first packet: events read in any order cannot say which is first.
fn absolute_time(s: &str) -> Result<Timestamp, String> {
    match time_bound(s).map_err(|e| e.to_string())? {
        TimeBound::At(t) => Ok(t),
        TimeBound::AfterStart(_) => Err(format!(
            "`{s}`: report takes a time (2021-08-02T09:10:00Z or epoch seconds), not an offset \
from the first packet"
        )),
    }
}

/// The instant at which the wall clock of `zone` reads what `wall` reads in
/// UTC (a time in a gap or a fold is taken as before the change).
fn local_to_utc(wall: Timestamp, zone: &jiff::tz::TimeZone) -> Option<Timestamp> {
    let civil = jiff::Timestamp::from_nanosecond(i128::from(wall.as_nanos()))
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime();
    let nanos = zone
        .to_ambiguous_zoned(civil)
        .compatible()
        .ok()?
        .timestamp()
        .as_nanosecond();
    i64::try_from(nanos).ok().map(Timestamp::from_nanos)
}

#[derive(Debug, Args)]
#[command(
    after_help = format!("\
Signals: SIGTERM stops the capture cleanly, however many times it comes: every open flow is \
closed (reason \"shutdown\"), the final stats and the summary are written, and the exit code \
is {ok}, or {inc}, {gate} or {out} as listed under Exit codes. SIGINT does the same; a second SIGINT, half a \
second or more after the first stop signal, exits at once with code {int} (a copy that comes \
sooner, as from timeout -s INT, is the same request). SIGQUIT exits at once with code {quit}. A stop that takes longer than \
--stop-timeout (default 10s) ends the same way, with code {out}. Exiting at once flushes the events \
already written, as whole lines unless the output itself is stuck; the flows still open and \
the final stats are not written. SIGHUP reopens -o FILE (for logrotate).\n\n",
        ok = Exit::Success.code(),
        inc = Exit::Incomplete.code(),
        gate = Exit::GateFailed.code(),
        out = Exit::OutputFailed.code(),
        int = exit::BY_SIGINT.code(),
        quit = exit::BY_SIGQUIT.code(),
    ) + "\
Privileges: capturing needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN: \
`sudo setcap cap_net_raw,cap_net_admin=eip $(command -v portmatrix)`. As root, --user \
drops to that user once the capture is open: no capabilities left, none that can come \
back (bounding set emptied, PR_SET_NO_NEW_PRIVS). SIGHUP then reopens -o FILE as that \
user: its folder must be writable by the user (chown USER DIR), or logrotate must create \
the new file for it (create 0640 USER GROUP).\n\n\
As a service: the Debian package's portmatrix.service runs `portmatrix live --config \
/etc/portmatrix/live.toml` as the user portmatrix with only these two capabilities, and \
rotates the events with logrotate and SIGHUP (docs/deployment.md).\n\n" + &exit::ending(&[
        ("a SPAN port: JSON events to a file that SIGHUP reopens (for logrotate)",
         "sudo portmatrix live -i eth1 --json -o /var/log/portmatrix/events.json"),
        ("the two ports of a TAP, with a site inventory, alerting only undocumented flows",
         "sudo portmatrix live -i eth1 -i eth2 --site rules/site-example.toml --verdict undocumented"),
        ("a sensor of a fleet: events to a Kafka topic, named for the fleet's report (docs/fleet.md)",
         "sudo portmatrix live -i eth1 --kafka kafka1:9092 --kafka-topic pm-events --sensor-name dc1"),
        ("write the options as a file for `live --config` (the service's /etc/portmatrix/live.toml)",
         "portmatrix live -i eth1 --json --site rules/site-example.toml --print-config > live.toml"),
    ], &[
        (&[Exit::Success], "stopped by SIGTERM or SIGINT (or the output was closed)"),
        (&[Exit::Incomplete], "an interface could not be opened, or failed during the run (without \
--retry), or an evidence file could not be written"),
        (&[Exit::Usage], "wrong usage, including a bad --bpf expression, a --config file that \
cannot be read or is not valid, or a --user that does not exist or is root (or privileges \
that could not be dropped)"),
        (&[Exit::GateFailed], "stopped as for 0, and some flow had a verdict given to --fail-on"),
        (&[Exit::OutputFailed], "the events could not be written (a full disk, a missing -o folder): \
capture stops, the summary is still printed; or a stop took longer than --stop-timeout"),
        (&[exit::BY_SIGINT], "a second SIGINT"),
        (&[exit::BY_SIGQUIT], "SIGQUIT"),
    ])
)]
pub struct LiveArgs {
    /// Interface to capture on (repeatable: the two ports of a TAP merge into one
    /// flow table); `any` captures on all of them.
    #[arg(short = 'i', long = "interface", value_name = "IFACE",
          required_unless_present_any = ["config", "print_config"], help_heading = "Capture")]
    pub interfaces: Vec<String>,
    /// Read options from this TOML file: its keys are the long option names
    /// (`interface = ["eth1"]`, `snaplen = 256`, `no-promisc = true`); an option
    /// given on the command line wins over the file (see docs/deployment.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the options live would run with (from --config and the command
    /// line, with the defaults) as a file --config reads, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Capture filter in tcpdump (BPF) syntax, applied in the kernel.
    #[arg(long, value_name = "EXPR", help_heading = "Capture")]
    pub bpf: Option<String>,
    /// Bytes kept of each packet: the headers are enough.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(64..=262_144), help_heading = "Capture")]
    pub snaplen: u32,
    /// The kernel's capture buffer per interface, in MiB: absorbs bursts.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=2047), help_heading = "Capture")]
    pub buffer_mb: u32,
    /// Do not put the interface in promiscuous mode (a SPAN port does not need it).
    #[arg(long, help_heading = "Capture")]
    pub no_promisc: bool,
    /// After opening the capture, switch to this user (not root) and its group, with no
    /// capabilities left; refuse to go on if that fails.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// When an interface goes down, wait for it to come back instead of stopping.
    #[arg(long, help_heading = "Capture")]
    pub retry: bool,
    /// Write events to FILE (appending) instead of stdout; SIGHUP reopens it.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Output"
    )]
    pub output: Option<PathBuf>,
    /// Write a stats event (and, without --json, a status line on stderr) this often:
    /// e.g. 60s, 5m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration,
          help_heading = "Output")]
    pub stats_interval: Duration,
    #[command(flatten, next_help_heading = "Syslog and metrics")]
    pub sensor: SensorArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// No summary and no status lines on stderr (errors and drop warnings are still printed).
    #[arg(long, short, help_heading = None::<&str>)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = exit::ending(&[
        ("the events of a capture, then their report",
         "portmatrix analyze -q --json --flows fixtures/sample-contact-center.pcapng > events.jsonl"),
        ("", "portmatrix report events.jsonl -o report.html"),
        ("what changed since an earlier run (here: the capture's first 20 seconds)",
         "portmatrix analyze -q --json --flows --until +20s fixtures/sample-contact-center.pcapng \\\n      \
> before.jsonl && portmatrix report --baseline before.jsonl events.jsonl -o report.html"),
    ], &[
        (&[Exit::Success], "every events line was used"),
        (&[Exit::Incomplete], "an events file could not be read or had malformed lines (they are \
skipped, named on stderr as FILE:LINE, and counted in the report, which is still written)"),
        (&[Exit::Usage], "wrong usage"),
        (&[Exit::OutputFailed], "the report could not be written (the file that was there is kept)"),
    ])
)]
pub struct ReportArgs {
    /// Events files (JSON Lines) from `portmatrix analyze --json --flows`; `-` reads stdin.
    #[arg(value_name = "EVENTS", required_unless_present = "kafka")]
    pub events: Vec<PathBuf>,
    /// Also read the events of a Kafka topic (--kafka BROKERS --kafka-topic TOPIC), every
    /// partition to the end it has when the report starts.
    #[command(flatten)]
    pub kafka: KafkaConnectArgs,
    /// Keep in this Kafka consumer group how far the topic was read, once the report is
    /// written: the next report with the same group starts after it (a scheduled report).
    /// Without it the whole topic is read and nothing is kept.
    #[arg(long, value_name = "NAME", requires = "kafka")]
    pub group: Option<String>,
    /// The HTML file to write (`-` writes to stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
    /// The report's heading.
    #[arg(long, value_name = "TEXT", default_value = "portmatrix report")]
    pub title: String,
    /// Events of an earlier run (repeatable): the report adds a section with what
    /// changed since (as `portmatrix diff BASELINE EVENTS`).
    #[arg(long, value_name = "EVENTS")]
    pub baseline: Vec<PathBuf>,
    /// Events of several sensors (`host`): one flow seen by two sensors (same
    /// Community ID) is counted once when their first packets are at most this
    /// far apart: e.g. 500ms, 2s.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub dedup_window: Duration,
    /// Only flows that overlap this time on: RFC 3339 with any offset (without one, the
    /// local time) or epoch seconds, as `analyze --since`.
    #[arg(long, value_name = "TIME", value_parser = absolute_time)]
    pub since: Option<Timestamp>,
    /// Only flows that overlap the time before this one (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = absolute_time)]
    pub until: Option<Timestamp>,
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
    /// The flow's VLAN, for site entries bound to VLANs.
    #[arg(long, value_name = "ID")]
    pub vlan: Option<u16>,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub site: SiteArgs,
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
