//! `portmatrix generate --dir DIR` (hidden): the man pages and the shell
//! completions, made from the clap definitions so they say what `--help`
//! says and cannot fall behind it. scripts/build-deb runs it for the Debian
//! package. The same binary writes the same bytes: the pages' date is
//! `SOURCE_DATE_EPOCH` (the reproducible-builds convention; scripts/build-deb
//! sets it to the last commit's time), and `cargo build` compiles nothing
//! more for it than two small crates.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::{Generator, Shell};

use portmatrix::output::create::AtomicFile;
use portmatrix::timestamp::Timestamp;

use super::Exit;
use crate::cli::Cli;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Write man/*.1 (portmatrix and each subcommand, as portmatrix-live.1) and
    /// completions/ (portmatrix.bash, _portmatrix for zsh, portmatrix.fish) here.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// The shells completions are written for: those Debian ships a folder for.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

pub fn run(args: GenerateArgs) -> Result<Exit> {
    let man = args.dir.join("man");
    let completions = args.dir.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // No `help` subcommand in the pages: `portmatrix help live` is `man
    // portmatrix-live` there.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, &man, &page_date()?)?;
    let mut cmd = visible();
    for shell in SHELLS {
        let path = completions.join(shell.file_name("portmatrix"));
        write(&path, |out| {
            clap_complete::generate(shell, &mut cmd, "portmatrix", out);
            Ok(())
        })?;
    }
    Ok(Exit::Success)
}

/// The CLI without its hidden subcommands (this one), which clap_complete
/// would otherwise offer: the top level has no options but help and version.
fn visible() -> clap::Command {
    let cli = Cli::command();
    let mut shown = clap::Command::new("portmatrix")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommands(cli.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    if let Some(about) = cli.get_about() {
        shown = shown.about(about.clone());
    }
    shown
}

/// A page for `cmd` and for each of its visible subcommands, down the tree
/// (`portmatrix-rules-list.1`).
fn man_pages(cmd: &clap::Command, dir: &Path, date: &str) -> Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir, date)?;
    }
    // Every page names the program and its version (a subcommand has none
    // of its own), and has a date: without one, the source takes its place.
    let page = clap_mangen::Man::new(cmd.clone())
        .date(date)
        .source(concat!("portmatrix ", env!("CARGO_PKG_VERSION")))
        .manual("User Commands");
    write(&dir.join(page.get_filename()), |out| page.render(out))
}

/// `YYYY-MM-DD` of `SOURCE_DATE_EPOCH`, or of today without it.
fn page_date() -> Result<String> {
    let secs = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(s) => s
            .trim()
            .parse::<i64>()
            .with_context(|| format!("SOURCE_DATE_EPOCH=`{s}` is not a number of seconds"))?,
        Err(_) => Timestamp::now().secs(),
    };
    let stamp = Timestamp::from_secs_nanos(secs, 0).to_string();
    Ok(stamp.split('T').next().unwrap_or_default().to_string())
}

/// `path` replaced whole by what `body` writes (never written through a link).
fn write(path: &Path, body: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    body(&mut file)
        .and_then(|()| file.commit())
        .with_context(|| format!("cannot write {}", path.display()))
}
