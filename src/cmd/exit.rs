//! The exit codes, their precedence and their help text, in one place: every
//! command ends with an [`Exit`], and `--help` is written from the same words.

use std::process::ExitCode;

/// How a run ended. When several apply, [`Exit::and`] keeps the one that
/// wins: 4 over 1 over 3 over 0 (see [`PRECEDENCE`]).
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
    /// The output could not be written: the results are incomplete.
    OutputFailed,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Incomplete => 1,
            Exit::Usage => 2,
            Exit::GateFailed => 3,
            Exit::OutputFailed => 4,
        }
    }

    /// Higher wins. Output that could not be written makes the results
    /// incomplete; an input that could not be read leaves them complete up to
    /// the damage, which a `--fail-on` match must not hide. Wrong usage is
    /// found before anything runs, so it meets only output failures.
    const fn rank(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::GateFailed => 1,
            Exit::Incomplete => 2,
            Exit::Usage => 3,
            Exit::OutputFailed => 4,
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

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The precedence rule, as `--help` and the README say it.
pub const PRECEDENCE: &str = "When several apply, 4 wins over 1 and 1 over 3: output that could \
not be written leaves the results incomplete; an input that could not be read leaves them \
complete up to the damage, which a --fail-on match must not hide.";

/// `Exit codes: 0 …; 1 …; …` for a command's `--help`: what each code
/// means for that command, in code order, then the precedence rule.
pub fn help(meanings: &[(Exit, &str)]) -> String {
    let mut text = String::from("Exit codes: ");
    for (i, (exit, meaning)) in meanings.iter().enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        text.push_str(&format!("{} {meaning}", exit.code()));
    }
    text.push_str(". ");
    text.push_str(PRECEDENCE);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_wins_over_one_over_three_over_zero_in_any_order() {
        let all = [
            Exit::Success,
            Exit::GateFailed,
            Exit::Incomplete,
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
        let text = help(&[(Exit::Success, "fine"), (Exit::OutputFailed, "full disk")]);
        assert_eq!(
            text,
            format!("Exit codes: 0 fine; 4 full disk. {PRECEDENCE}")
        );
    }
}
