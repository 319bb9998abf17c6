//! The exit codes, their precedence and their help text, in one place: every
//! command ends with an [`Exit`], and `--help` is written from the same words.

use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGQUIT, SIGTERM};

/// How a run ended. When several apply, [`Exit::and`] keeps the one that
/// wins: 4 over 130/143 over 1 over 3 over 0 (see [`PRECEDENCE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every input was used to its end (or the output was closed, as by `| head`).
    Success,
    /// An input, rules or site file could not be used, an interface failed, or
    /// an evidence file or the report could not be written: everything read
    /// before the damage is still reported.
    Incomplete,
    /// Wrong usage (as clap's own): nothing was run.
    Usage,
    /// Every input was used, and some flow had a `--fail-on` verdict.
    GateFailed,
    /// The output could not be written, or a stop took longer than
    /// `--stop-timeout`: the results are incomplete.
    OutputFailed,
    /// A signal (its number) ended the run before the end of its input:
    /// 128 + the signal, as a shell reports it (130 SIGINT, 131 SIGQUIT, 143
    /// SIGTERM). After a clean stop everything read is reported.
    Interrupted(u8),
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Incomplete => 1,
            Exit::Usage => 2,
            Exit::GateFailed => 3,
            Exit::OutputFailed => 4,
            Exit::Interrupted(signal) => 128 + signal,
        }
    }

    /// Higher wins. Output that could not be written makes the results
    /// incomplete; an input that could not be read leaves them complete up to
    /// the damage, which a `--fail-on` match must not hide. Wrong usage is
    /// found before anything runs, so it meets only output failures. A run
    /// a signal stopped did not read all its input, whatever it found in
    /// what it read.
    const fn rank(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::GateFailed => 1,
            Exit::Incomplete => 2,
            Exit::Interrupted(_) => 3,
            Exit::Usage => 4,
            Exit::OutputFailed => 5,
        }
    }

    /// The code that wins when both `self` and `other` apply.
    #[must_use]
    pub const fn and(self, other: Exit) -> Exit {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// [`Exit::Incomplete`] when `failed`, else `self`.
    #[must_use]
    pub const fn or_incomplete(self, failed: bool) -> Exit {
        if failed {
            self.and(Exit::Incomplete)
        } else {
            self
        }
    }
}

/// Runs a stop signal ended (the codes `--help` lists).
pub const BY_SIGINT: Exit = Exit::Interrupted(SIGINT as u8);
pub const BY_SIGQUIT: Exit = Exit::Interrupted(SIGQUIT as u8);
pub const BY_SIGTERM: Exit = Exit::Interrupted(SIGTERM as u8);

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The precedence rule, as `--help` and docs/guarantees.md say it.
pub const PRECEDENCE: &str = "When several apply, 4 wins over 130 and 143, which win over 1, and \
1 wins over 3: output that could not be written leaves the results incomplete; a stop signal \
or an input that could not be read leaves them complete up to that point, which a --fail-on \
match must not hide.";

/// `Exit codes: 0 …; 1 …; 130/143 …` for a command's `--help`: what each
/// code (or codes, joined by `/`) means for that command, then the
/// precedence rule when a signal can end the command.
pub fn help(meanings: &[(&[Exit], &str)]) -> String {
    let mut text = String::from("Exit codes: ");
    for (i, (exits, meaning)) in meanings.iter().enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        let codes: Vec<String> = exits.iter().map(|e| e.code().to_string()).collect();
        text.push_str(&format!("{} {meaning}", codes.join("/")));
    }
    text.push('.');
    // The rule is about signals against the rest: noise for a command that
    // no signal stops early.
    let signals = meanings
        .iter()
        .any(|(exits, _)| exits.iter().any(|e| matches!(e, Exit::Interrupted(_))));
    if signals {
        text.push(' ');
        text.push_str(PRECEDENCE);
    }
    text
}

/// The end of every command's `--help`: a few examples, then the exit codes
/// (from [`help`]), so that a reader finds both in the same place whatever the
/// command. Each example is `(what it does, command line)` (an empty `what` continues
/// the example before); a command line
/// longer than clap's 100 columns is split over lines ending in ` \` by its author
/// (clap would wrap it where a shell cannot read it). tests/help.rs runs every
/// example with the shipped files.
pub fn ending(examples: &[(&str, &str)], meanings: &[(&[Exit], &str)]) -> String {
    let mut text = String::from("Examples:\n");
    for (what, line) in examples {
        if !what.is_empty() {
            text.push_str(&format!("  # {what}\n"));
        }
        text.push_str(&format!("  {line}\n"));
    }
    text.push('\n');
    text.push_str(&help(meanings));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_wins_over_a_signal_over_one_over_three_over_zero_in_any_order() {
        let all = [
            Exit::Success,
            Exit::GateFailed,
            Exit::Incomplete,
            Exit::Interrupted(15),
            Exit::OutputFailed,
        ];
        for (i, a) in all.iter().enumerate() {
            for (j, b) in all.iter().enumerate() {
                let winner = all[i.max(j)];
                assert_eq!(a.and(*b), winner, "{a:?} and {b:?}");
            }
        }
        assert_eq!(Exit::GateFailed.or_incomplete(true), Exit::Incomplete);
        assert_eq!(Exit::OutputFailed.or_incomplete(true), Exit::OutputFailed);
        assert_eq!(Exit::GateFailed.or_incomplete(false), Exit::GateFailed);
    }

    #[test]
    fn the_help_lists_the_codes_and_the_rule() {
        let text = help(&[
            (&[Exit::Success], "fine"),
            (&[Exit::OutputFailed], "full disk"),
            (&[Exit::Interrupted(2), Exit::Interrupted(15)], "stopped"),
        ]);
        assert_eq!(
            text,
            format!("Exit codes: 0 fine; 4 full disk; 130/143 stopped. {PRECEDENCE}")
        );
        let ending = ending(
            &[("read", "portmatrix analyze x.pcap")],
            &[(&[Exit::Success], "fine")],
        );
        // No signal ends this command: no precedence rule to read.
        assert_eq!(
            ending,
            "Examples:\n  # read\n  portmatrix analyze x.pcap\n\nExit codes: 0 fine."
        );
    }
}
