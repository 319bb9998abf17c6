//! Every example a user is shown runs: each command's `--help` ends with
//! Examples and Exit codes, and every example there, and every `portmatrix`
//! command of the README, runs with the shipped files (fixtures/, rules/);
//! the README's shown outputs are what those commands print.
//!
//! Examples run through `sh` (they use `>` and `&&`) in a fresh folder where
//! `fixtures` and `rules` link to the repository's, with the built binary
//! first on PATH. `live` cannot capture here: its examples run with
//! `--print-config`, which parses every option and exits.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");

/// Every command a user can ask `--help` of.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["analyze"],
    &["live"],
    &["rules"],
    &["rules", "list"],
    &["rules", "explain"],
    &["rules", "check"],
    &["report"],
    &["site"],
    &["site", "suggest"],
    &["site", "check"],
    &["policy"],
    &["diff"],
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh folder with `fixtures` and `rules` linked in.
fn sandbox(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the sandbox");
    for sub in ["fixtures", "rules"] {
        std::os::unix::fs::symlink(repo().join(sub), dir.join(sub)).expect("link");
    }
    dir
}

/// Runs one example line in `dir`; returns its stdout and stderr together.
fn run_example(dir: &Path, line: &str) -> String {
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .expect("sh runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0, or 3 for the examples of a failing --fail-on gate.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "`{line}` exits with {:?}:\n{text}",
        out.status.code()
    );
    text
}

/// `sudo portmatrix live …` cannot capture in a test: parse it instead.
fn runnable(line: &str) -> String {
    let line = line.strip_prefix("sudo ").unwrap_or(line);
    if line.starts_with("portmatrix live ") && !line.contains("--print-config") {
        line.replacen("portmatrix live ", "portmatrix live --print-config ", 1)
    } else {
        line.to_owned()
    }
}

/// The command lines of a block of text: lines starting with `portmatrix `
/// (or `sudo portmatrix `), joined with the lines they continue with ` \`.
fn command_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut commands = Vec::new();
    let mut open: Option<String> = None;
    for line in lines {
        let line = line.trim();
        if let Some(mut cmd) = open.take() {
            cmd.push(' ');
            cmd.push_str(line.trim_end_matches('\\').trim_end());
            if line.ends_with('\\') {
                open = Some(cmd);
            } else {
                commands.push(cmd);
            }
            continue;
        }
        if !(line.starts_with("portmatrix ") || line.starts_with("sudo portmatrix ")) {
            continue;
        }
        // A comment after the command is the shell's, but keep it out of
        // the way of the continuation check.
        let code = line.split("  #").next().unwrap_or(line).trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            open = Some(head.trim_end().to_owned());
        } else {
            commands.push(code.to_owned());
        }
    }
    assert!(open.is_none(), "a continued line ends the block: {open:?}");
    commands
}

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .output()
        .expect("portmatrix runs");
    assert!(out.status.success(), "{args:?} --help");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

#[test]
fn every_help_ends_with_examples_then_exit_codes_and_every_example_runs() {
    for args in COMMANDS {
        let text = help(args);
        let name = format!("portmatrix {}", args.join(" "));
        let examples = text
            .find("\nExamples:\n")
            .unwrap_or_else(|| panic!("`{name} --help` has no Examples section:\n{text}"));
        let exits = text
            .find("\n\nExit codes: ")
            .unwrap_or_else(|| panic!("`{name} --help` has no Exit codes section:\n{text}"));
        assert!(examples < exits, "{name}: Examples before Exit codes");
        // Exit codes close the help: one paragraph, nothing after it.
        assert!(
            !text[exits + 2..].trim_end().contains("\n\n"),
            "{name}: the exit codes end the help:\n{text}"
        );
        let block = &text[examples + "\nExamples:\n".len()..exits];
        // Every line is a comment, a command, or a command's continuation:
        // a line clap wrapped would be none of these.
        for line in block.lines() {
            assert!(
                line.starts_with("  # ")
                    || line.starts_with("  portmatrix ")
                    || line.starts_with("  sudo portmatrix ")
                    || line.starts_with("      "),
                "{name}: a wrapped example line (keep examples under 100 columns): {line:?}"
            );
        }
        let commands = command_lines(block.lines());
        assert!(!commands.is_empty(), "{name}: no example");
        let dir = sandbox(&args.join("-"));
        for cmd in &commands {
            run_example(&dir, &runnable(cmd));
        }
    }
}

#[test]
fn no_help_says_a_word_twice_in_a_row() {
    for args in COMMANDS {
        let text = help(args);
        let words: Vec<&str> = text.split_whitespace().collect();
        for pair in words.windows(2) {
            let same = pair[0] == pair[1] && pair[0].chars().all(char::is_alphabetic);
            assert!(!same, "{args:?}: `{} {}`", pair[0], pair[1]);
        }
        assert!(!text.contains("a full a "), "{args:?}");
    }
}

/// A fenced block of the README: its language and its lines.
struct Fenced {
    lang: String,
    lines: Vec<String>,
}

fn fenced_blocks(markdown: &str) -> Vec<Fenced> {
    let mut blocks = Vec::new();
    let mut open: Option<Fenced> = None;
    for line in markdown.lines() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Fenced {
                    lang: lang.trim().to_owned(),
                    lines: Vec::new(),
                })
            }
            (Some(block), Some(_)) => blocks.push(block),
            (Some(mut block), None) => {
                block.lines.push(line.to_owned());
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a fenced block of the README is not closed");
    blocks
}

/// Times of a run vary: `in 0.05 s` reads `in _ s`.
fn steady(line: &str) -> String {
    let line = line.trim_end();
    match line.find(" TCP/UDP flows in ") {
        Some(i) => {
            let rest = &line[i + " TCP/UDP flows in ".len()..];
            let after = rest.find(" s").map_or("", |j| &rest[j..]);
            format!("{} TCP/UDP flows in _{after}", &line[..i])
        }
        None => line.to_owned(),
    }
}

/// The files a command writes (`> FILE`, `-o FILE`), read back after it.
fn written_files(dir: &Path, command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let mut text = String::new();
    for pair in words.windows(2) {
        if matches!(pair[0], ">" | "-o") {
            if let Ok(written) = std::fs::read_to_string(dir.join(pair[1])) {
                text.push_str(&written);
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn the_readme_opens_with_its_two_commands_and_its_examples_print_what_it_shows() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let blocks = fenced_blocks(&readme);
    // The two commands contract: the first thing to run sets up and runs
    // the sample, the second is the whole test suite.
    let first = blocks.iter().find(|b| b.lang == "sh").expect("a sh block");
    let commands: Vec<&str> = first
        .lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(commands, ["scripts/demo", "scripts/test"]);

    let dir = sandbox("readme");
    let mut output: Option<String> = None;
    let mut checked = 0;
    for block in &blocks {
        if block.lang == "sh" {
            let commands = command_lines(block.lines.iter().map(String::as_str));
            output = (!commands.is_empty()).then(|| {
                commands
                    .iter()
                    .map(|c| run_example(&dir, &runnable(c)) + &written_files(&dir, c))
                    .collect()
            });
            continue;
        }
        let Some(out) = &output else { continue };
        if !matches!(block.lang.as_str(), "text" | "toml") {
            continue;
        }
        let printed: Vec<String> = out.lines().map(steady).collect();
        for shown in &block.lines {
            if shown.trim().is_empty() || shown.trim() == "…" {
                continue;
            }
            assert!(
                printed.contains(&steady(shown)),
                "the README shows a line its command does not print:\n{shown}\n\nprinted:\n{out}"
            );
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} lines checked");
}

/// The headings of `analyze --help` and `live --help`, and the options under
/// each: an option under a heading it does not belong to (a heading carried
/// over from the previous group) shows here.
#[test]
fn analyze_and_live_group_their_options_under_the_right_headings() {
    fn groups(text: &str) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for line in text.lines() {
            if line.ends_with(':') && !line.starts_with(' ') && !line.contains(' ')
                || line == "Rules and site:"
                || line == "Syslog and metrics:"
            {
                groups.push((line.trim_end_matches(':').to_owned(), Vec::new()));
            } else if let (Some(g), Some(opt)) = (
                groups.last_mut(),
                line.split_whitespace().find(|w| w.starts_with("--")),
            ) {
                if line.starts_with("  -") || line.starts_with("      --") {
                    g.1.push(
                        opt.split(['<', '[', '='])
                            .next()
                            .unwrap_or(opt)
                            .trim_end_matches(',')
                            .to_owned(),
                    );
                }
            }
        }
        groups
    }
    let evidence = [
        "--extract",
        "--extract-by",
        "--extract-max-packets",
        "--extract-max-mb",
    ];
    for (command, headings) in [
        (
            "analyze",
            vec![
                "Arguments",
                "Options",
                "Focus",
                "Output",
                "Kafka",
                "Evidence",
                "Flows",
                "Rules and site",
            ],
        ),
        (
            "live",
            vec![
                "Options",
                "Capture",
                "Output",
                "Syslog and metrics",
                "Kafka",
                "Focus",
                "Evidence",
                "Flows",
                "Rules and site",
            ],
        ),
    ] {
        let text = help(&[command]);
        let text = &text[..text.find("\nExamples:").expect("examples")];
        let found = groups(text);
        let names: Vec<&str> = found.iter().map(|(h, _)| h.as_str()).collect();
        assert_eq!(names, headings, "{command}");
        let options = |h: &str| &found.iter().find(|(n, _)| n == h).expect("heading").1;
        assert_eq!(options("Evidence"), &evidence, "{command}");
        assert!(
            options("Output")
                .iter()
                .all(|o| !o.starts_with("--workers") && o != "--site"),
            "{command}"
        );
        assert!(
            options("Flows").contains(&"--workers".to_owned()),
            "{command}"
        );
        assert!(
            options("Rules and site").contains(&"--site".to_owned()),
            "{command}"
        );
    }
    assert!(help(&["live"]).contains("      --print-config"));
}
