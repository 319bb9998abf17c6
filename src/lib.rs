//! portmatrix: a passive traffic classifier that checks every flow on the wire
//! against the Avaya Aura Contact Center 7.1.2 port matrix.
//!
//! The data moves through one line of stages, one module each:
//!
//! ```text
//! capture  -> decode     -> flow       -> classify   -> output
//! (files,     (bytes to     (direction-  (flow + the   (events: alert,
//!  live)       PacketMeta)   free table)  PortMatrix)   flow, stats)
//! ```
//!
//! The words every stage uses live at the bottom and import nothing of the
//! project: [`transport`] (TCP/UDP), [`timestamp`] (packet time), [`verdict`]
//! (verdicts and severities) and [`printable`]. Every module imports only the
//! layers below its own (`tests/layers.rs` holds the order and checks it).
//!
//! - [`config_file`]: reading rules and site files (TOML) through their
//!   limits, every problem placed at its line; knows nothing of either format.
//! - [`matrix`]: the vendor document as rules, loaded from TOML and compiled once
//!   into an immutable [`matrix::PortMatrix`] whose lookup does not allocate.
//! - [`classify`]: the verdict a flow gets from the matrix, and the rules that explain it.
//! - [`printable`]: text from files shown on a terminal, control characters escaped.
//! - [`filter`]: the focus of a run (time window, hosts, ports, BPF), applied
//!   before flows are counted, and the verdict sets of `--verdict` / `--fail-on`.
//! - [`evidence`]: the packets of flagged flows written as pcapng evidence
//!   (`--extract`): which are kept, the files, their names and comments.
//! - [`site`]: the site inventory (which address is which system), its
//!   severities and accepted deviations; with it, rules check roles too.
//! - [`report`]: the events read back into one self-contained HTML report,
//!   and the drift between two runs' events (`portmatrix diff`).
//! - [`policy`]: the least-privilege firewall rules for a site (nftables,
//!   Windows Firewall, CSV), from the matrix and the flows that were seen.

/// A line of diagnostics on stderr. Unlike `eprintln!` it never panics: when
/// stderr is closed or full (`2>/dev/full`) the line is lost and the run goes
/// on, its events and exit code unchanged.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {{
        let _ = ::std::io::Write::write_fmt(
            &mut ::std::io::stderr(),
            format_args!("{}\n", format_args!($($arg)*)),
        );
    }};
}

pub mod capture;
pub mod classify;
pub mod config_file;
pub mod decode;
pub mod evidence;
pub mod filter;
pub mod flow;
pub mod matrix;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod printable;
pub mod report;
pub mod site;
pub mod timestamp;
pub mod transport;
pub mod verdict;
