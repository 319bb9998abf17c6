//! `portmatrix live --config FILE` and `--print-config`: the options of
//! `live` from a TOML file, the command line winning over it.
//!
//! The file's keys are the long option names of `live`, read off its clap
//! definition: an option added to `live` is a key at once, with the same
//! checks (the same value parsers run on the file's values, so a bad value
//! is refused with its line before anything starts). The file's options are
//! turned into command-line words and parsed again together with the ones
//! typed, which clap then checks as a whole (conflicts, requirements):
//! there is one meaning for each option, not a second one for the file.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Result;
use clap::builder::ValueParser;
use clap::error::{ContextKind, ContextValue};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};
use toml::de::DeValue;
use toml::Spanned;

use portmatrix::config_file::{self, ConfigError, FileKind, Problems};
use portmatrix::printable::Printable;

use super::{write_stdout, Exit};
use crate::cli::{Cli, LiveArgs};

/// Options of `live` that are about the file itself, not the capture.
const NOT_KEYS: &[&str] = &["config", "print-config", "help"];

/// What `live` goes on with.
pub enum Resolved {
    /// Capture with these options.
    Run(Box<LiveArgs>),
    /// Nothing to capture: the configuration was printed, or it is wrong.
    Done(Exit),
}

/// The options `live` runs with: `args` as typed, with what `--config`
/// adds; with `--print-config`, those options printed instead.
pub fn resolve(args: LiveArgs, matches: &ArgMatches) -> Result<Resolved> {
    if args.config.is_none() && !args.print_config {
        return Ok(Resolved::Run(Box::new(args)));
    }
    let live = live_command();
    let mut words: Vec<OsString> = vec!["live".into()];
    if let Some(path) = &args.config {
        match read(path, &live) {
            Ok(options) => words.extend(from_file(options, &live, matches)),
            Err(e) => {
                portmatrix::diag!("portmatrix: {e}");
                return Ok(Resolved::Done(Exit::Usage));
            }
        }
    }
    // Everything typed, `--config` and `--print-config` included.
    for arg in live.get_arguments() {
        if matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine) {
            words.extend(typed(arg, matches));
        }
    }
    let merged = match live.clone().try_get_matches_from(&words) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            if let Some(path) = &args.config {
                portmatrix::diag!(
                    "(the options came from the command line and from {})",
                    Printable(&path.display().to_string())
                );
            }
            return Ok(Resolved::Done(Exit::Usage));
        }
    };
    let resolved = LiveArgs::from_arg_matches(&merged)?;
    if args.print_config {
        let text = render(&live, &merged)?;
        write_stdout("the configuration", |out| out.write_all(text.as_bytes()))?;
        return Ok(Resolved::Done(Exit::Success));
    }
    if resolved.interfaces.is_empty() {
        portmatrix::diag!(
            "portmatrix: error: no interface to capture on: give -i IFACE, or `interface = [\"eth0\"]` \
in the configuration file"
        );
        return Ok(Resolved::Done(Exit::Usage));
    }
    Ok(Resolved::Run(Box::new(resolved)))
}

/// The `live` subcommand as clap builds it (value parsers, conflicts).
fn live_command() -> clap::Command {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand("live")
        .cloned()
        .unwrap_or_else(|| unreachable!("the CLI has a live subcommand"))
}

/// The options a file may set, in the order `--help` lists them.
fn keys(live: &clap::Command) -> impl Iterator<Item = &Arg> {
    live.get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| !NOT_KEYS.contains(&l)))
}

/// How an option takes its value, which decides what the file may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `--no-promisc`: `true` or `false`.
    Flag,
    /// `--snaplen N`: a string or an integer.
    One,
    /// `--dedup[=WINDOW]`: `true` for the option alone, or its value.
    OptionalValue,
    /// `--host A --host B`: an array (or one value).
    Many,
}

fn shape(arg: &Arg) -> Shape {
    match arg.get_action() {
        ArgAction::SetTrue => Shape::Flag,
        ArgAction::Append => Shape::Many,
        _ if arg.get_num_args().is_some_and(|n| n.min_values() == 0) => Shape::OptionalValue,
        _ => Shape::One,
    }
}

/// One option the file sets: its key and the words it stands for
/// (`--snaplen=128`; none for `no-promisc = false`).
struct FileOption {
    long: String,
    words: Vec<OsString>,
}

/// The options set in the file at `path`, each value checked by the
/// option's own parser; every problem found, placed at its line.
fn read(path: &Path, live: &clap::Command) -> Result<Vec<FileOption>, ConfigError> {
    let text = config_file::read(path, FileKind::Config)?;
    let origin = path.display().to_string();
    parse(&origin, &text, live).map_err(|problems| ConfigError::Invalid {
        kind: FileKind::Config,
        problems,
    })
}

/// [`read`] on text already read (`origin` names it in problems).
fn parse(
    origin: &str,
    text: &str,
    live: &clap::Command,
) -> Result<Vec<FileOption>, Vec<config_file::Problem>> {
    let mut p = Problems::new(origin, text);
    let Some(root) = config_file::parse(FileKind::Config, text, &mut p) else {
        return Err(p.into_list());
    };
    let names: Vec<&str> = keys(live).filter_map(Arg::get_long).collect();
    let mut options = Vec::new();
    let _ = config_file::walk_top_level(root, &names, &mut p, |key, value, p| {
        let arg = keys(live).find(|a| a.get_long() == Some(key));
        if let Some(words) = arg.and_then(|arg| words(live, arg, value, p)) {
            options.push(FileOption {
                long: key.to_string(),
                words,
            });
        }
        ControlFlow::Continue(())
    });
    // The tree hands keys over sorted by name: put options in the order of
    // `--help`, and problems in the order of the file.
    options.sort_by_key(|o| names.iter().position(|n| *n == o.long));
    p.into_result(options).map_err(|mut list| {
        list.sort_by_key(|problem| (problem.line, problem.column));
        list
    })
}

/// The words for `key = value`, or `None` with the problem recorded.
fn words(
    live: &clap::Command,
    arg: &Arg,
    value: Spanned<DeValue<'_>>,
    p: &mut Problems<'_>,
) -> Option<Vec<OsString>> {
    let long = arg.get_long().unwrap_or_default();
    let span = value.span();
    let flag = || vec![OsString::from(format!("--{long}"))];
    let expected = |p: &mut Problems<'_>, what: &str| {
        p.push(span.clone(), None, Some(long), format!("expected {what}"));
        None
    };
    let values = match (shape(arg), value.into_inner()) {
        (Shape::Flag | Shape::OptionalValue, DeValue::Boolean(on)) => {
            return Some(if on { flag() } else { Vec::new() });
        }
        (Shape::Flag, _) => return expected(p, "true or false"),
        (Shape::Many, DeValue::Array(items)) => {
            let mut values = Vec::new();
            for item in items {
                let item_span = item.span();
                match scalar(item.into_inner()) {
                    Some(v) => values.push((v, item_span)),
                    None => {
                        p.push(
                            item_span,
                            None,
                            Some(long),
                            "expected a string or an integer in the array".into(),
                        );
                        return None;
                    }
                }
            }
            values
        }
        (shape, other) => match scalar(other) {
            Some(v) => vec![(v, span.clone())],
            None if shape == Shape::Many => {
                return expected(p, "an array of strings or integers (or one of them)")
            }
            None if shape == Shape::OptionalValue => {
                return expected(p, "true, false, a string or an integer")
            }
            None => return expected(p, "a string or an integer"),
        },
    };
    let mut words = Vec::with_capacity(values.len());
    for (v, at) in values {
        let word = OsString::from(format!("--{long}={v}"));
        if let Err(why) = check(live, &word) {
            // Most parsers quote the value themselves.
            let message = if why.starts_with(&format!("`{v}`")) {
                why
            } else {
                format!("invalid value `{v}`: {why}")
            };
            p.push(at, None, Some(long), message);
            return None;
        }
        words.push(word);
    }
    Some(words)
}

/// A string as it is, an integer in decimal; `None` for anything else.
fn scalar(value: DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.into_owned()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n.to_string()),
        _ => None,
    }
}

/// `word` (`--snaplen=10`) through the option's own parser: the reason it
/// is refused, if it is. (`--print-config` stands in for what `live`
/// otherwise requires; what one option requires of another, such as
/// `kafka-topic` of `kafka`, is checked once the whole file is merged.)
fn check(live: &clap::Command, word: &OsStr) -> Result<(), String> {
    let argv = [OsStr::new("live"), OsStr::new("--print-config"), word];
    match live.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument => Ok(()),
        Err(e) => Err(reason(&e)),
    }
}

/// What a value parser's error says, without clap's `error:` and usage lines.
fn reason(e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        return format!("expected one of: {}", valid.join(", "));
    }
    e.kind().to_string()
}

/// The file's words for the options not typed: a typed option wins, and so
/// does an option that cannot go with a typed one (`--json` typed, `format`
/// in the file).
fn from_file(
    options: Vec<FileOption>,
    live: &clap::Command,
    matches: &ArgMatches,
) -> Vec<OsString> {
    let typed: Vec<&Arg> = keys(live)
        .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .collect();
    let mut words = Vec::new();
    for option in options {
        let Some(arg) = keys(live).find(|a| a.get_long() == Some(option.long.as_str())) else {
            continue;
        };
        let overridden = typed.iter().any(|t| {
            t.get_id() == arg.get_id()
                || live.get_arg_conflicts_with(t).contains(&arg)
                || live.get_arg_conflicts_with(arg).contains(t)
        });
        if !overridden {
            words.extend(option.words);
        }
    }
    words
}

/// The words of an option as typed on the command line (as its values were
/// split: `--verdict a,b` comes back as `--verdict=a --verdict=b`).
fn typed(arg: &Arg, matches: &ArgMatches) -> Vec<OsString> {
    let long = arg.get_long().unwrap_or_default();
    if shape(arg) == Shape::Flag {
        return if matches.get_flag(arg.get_id().as_str()) {
            vec![format!("--{long}").into()]
        } else {
            Vec::new()
        };
    }
    let Some(values) = matches.get_raw(arg.get_id().as_str()) else {
        return Vec::new();
    };
    values
        .map(|v| {
            let mut word = OsString::from(format!("--{long}="));
            word.push(v);
            word
        })
        .collect()
}

/// The options of `merged` as a file `--config` reads back: every option,
/// the ones at their default marked, the ones not set commented out.
fn render(live: &clap::Command, merged: &ArgMatches) -> Result<String> {
    let mut out = String::from(
        "# The configuration `portmatrix live` runs with (defaults marked, options not set\n\
         # commented out); `portmatrix live --config FILE` reads it back.\n\
         schema = 1\n",
    );
    for arg in keys(live) {
        let long = arg.get_long().unwrap_or_default();
        let id = arg.get_id().as_str();
        let shape = shape(arg);
        if shape == Shape::Flag {
            let on = merged.get_flag(id);
            let _ = writeln!(out, "{long} = {on}{}", if on { "" } else { "  # default" });
            continue;
        }
        let numeric = is_numeric(arg.get_value_parser());
        let Some(raw) = merged.get_raw(id) else {
            let _ = writeln!(out, "# {long} = {}", placeholder(arg, shape, numeric));
            continue;
        };
        let raw: Vec<&OsStr> = raw.collect();
        let mut shown = Vec::with_capacity(raw.len());
        for v in &raw {
            let Some(text) = v.to_str() else {
                anyhow::bail!(
                    "cannot print the configuration: the value of `{long}` is not UTF-8 text"
                );
            };
            shown.push(toml_value(text, numeric));
        }
        let value = if shape == Shape::Many {
            format!("[{}]", shown.join(", "))
        } else {
            shown.join("")
        };
        let defaults: Vec<&OsStr> = arg
            .get_default_values()
            .iter()
            .map(|d| d.as_os_str())
            .collect();
        let default = if !defaults.is_empty() && raw == defaults {
            "  # default"
        } else {
            ""
        };
        let _ = writeln!(out, "{long} = {value}{default}");
    }
    Ok(out)
}

/// What an option not set would be written as: `N`, `"text|json|csv"`,
/// `["IP|CIDR"]`.
fn placeholder(arg: &Arg, shape: Shape, numeric: bool) -> String {
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_string())
        .collect();
    let name = if choices.is_empty() {
        arg.get_value_names()
            .and_then(|n| n.first())
            .map_or("VALUE".to_string(), ToString::to_string)
    } else {
        choices.join("|")
    };
    let one = if numeric { name } else { format!("\"{name}\"") };
    match shape {
        Shape::Many => format!("[{one}]"),
        _ => one,
    }
}

/// Whether the option's values are numbers (written bare, `snaplen = 256`).
fn is_numeric(parser: &ValueParser) -> bool {
    let id = parser.type_id();
    [
        ValueParser::from(clap::value_parser!(u16)).type_id(),
        ValueParser::from(clap::value_parser!(u32)).type_id(),
        ValueParser::from(clap::value_parser!(u64)).type_id(),
        ValueParser::new(crate::cli::workers_parser()).type_id(),
    ]
    .contains(&id)
}

/// `text` as a TOML value: bare digits for numbers, else a quoted string.
fn toml_value(text: &str, numeric: bool) -> String {
    if numeric && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.to_string()
    } else {
        toml::Value::String(text.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match parse("live.toml", text, &live_command()) {
            Ok(_) => Vec::new(),
            Err(list) => list.iter().map(ToString::to_string).collect(),
        }
    }

    fn words_of(text: &str) -> Vec<String> {
        let options = parse("live.toml", text, &live_command()).expect("valid");
        options
            .into_iter()
            .flat_map(|o| o.words)
            .map(|w| w.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn every_option_of_live_has_a_shape_the_file_can_write() {
        let live = live_command();
        let mut seen = 0;
        for arg in keys(&live) {
            seen += 1;
            let action = arg.get_action();
            assert!(
                matches!(
                    action,
                    ArgAction::SetTrue | ArgAction::Set | ArgAction::Append
                ),
                "--{:?}: {action:?} is not handled by the configuration file",
                arg.get_long()
            );
        }
        assert!(seen > 30, "{seen} options");
    }

    #[test]
    fn values_become_the_options_they_name() {
        let text = "schema = 1\ninterface = [\"eth1\", \"eth2\"]\nsnaplen = 128\n\
no-promisc = true\nretry = false\ndedup = true\nport = [5060, \"1972\"]\n\
verdict = [\"undocumented,wrong_transport\"]\nstats-interval = \"5m\"\n";
        assert_eq!(
            words_of(text),
            [
                "--interface=eth1",
                "--interface=eth2",
                "--snaplen=128",
                "--no-promisc",
                "--stats-interval=5m",
                "--port=5060",
                "--port=1972",
                "--verdict=undocumented,wrong_transport",
                "--dedup",
            ]
        );
        assert_eq!(words_of("schema = 1\ndedup = \"50ms\"\n"), ["--dedup=50ms"]);
        assert_eq!(
            words_of("schema = 1\ninterface = \"eth3\"\n"),
            ["--interface=eth3"]
        );
    }

    #[test]
    fn bad_keys_and_values_are_refused_with_their_line() {
        assert_eq!(
            problems("schema = 1\n\ninterfaces = [\"eth0\"]\n")[0]
                .split("; allowed")
                .next(),
            Some("live.toml:3:1: unknown top-level key `interfaces`")
        );
        assert_eq!(
            problems("schema = 1\nsnaplen = 10\nno-promisc = \"yes\"\nformat = \"xml\"\n"),
            [
                "live.toml:2:11: field `snaplen`: invalid value `10`: 10 is not in 64..=262144",
                "live.toml:3:14: field `no-promisc`: expected true or false",
                "live.toml:4:10: field `format`: invalid value `xml`: expected one of: text, json, csv, eve",
            ]
        );
        assert_eq!(
            problems("schema = 1\nstats-interval = \"5 min\"\nverdict = [\"documented,bogus\"]\n"),
            [
                "live.toml:2:18: field `stats-interval`: `5 min`: expected a duration such as 60s, \
5m, 1h or 500ms",
                "live.toml:3:12: field `verdict`: invalid value `documented,bogus`: `bogus` is not \
a verdict; the verdicts are: documented, undocumented, wrong_transport, internal_only, \
closed_by_default, deprecated, out_of_profile, protocol_mismatch, role_mismatch",
            ]
        );
        assert_eq!(
            problems("schema = 1\nhost = [\"10.0.0.0/8\", 1.5]\nbpf = [\"port 22\"]\n"),
            [
                "live.toml:2:23: field `host`: expected a string or an integer in the array",
                "live.toml:3:7: field `bpf`: expected a string or an integer",
            ]
        );
        assert_eq!(
            problems("interface = [\"eth0\"]\nconfig = \"other.toml\"\n")
                .iter()
                .map(|p| p.split("; allowed").next().unwrap_or_default().to_string())
                .collect::<Vec<_>>(),
            [
                "live.toml:1:1: field `schema`: missing `schema = 1` at the top of the file",
                "live.toml:2:1: unknown top-level key `config`",
            ]
        );
    }

    #[test]
    fn printed_values_are_toml() {
        assert_eq!(toml_value("256", true), "256");
        assert_eq!(toml_value("256", false), "\"256\"");
        assert_eq!(toml_value("a \"b\"\\", false), r#"'a "b"\'"#);
    }
}
