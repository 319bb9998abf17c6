//! The `portmatrix` command: parse arguments, run one command, map the result
//! to an exit code. Everything else lives in the library.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // What was typed (not defaulted): `live --config` fills in the rest.
    let typed = matches.subcommand().map_or(&matches, |(_, m)| m);
    let result = match cli.command {
        cli::Command::Analyze(args) => cmd::analyze::run(args),
        cli::Command::Live(args) => cmd::live::run(args, typed),
        cli::Command::Rules(cmd) => cmd::rules::run(cmd),
        cli::Command::Report(args) => cmd::report::run(args),
        cli::Command::Site(cmd) => cmd::site::run(cmd),
        cli::Command::Policy(args) => cmd::policy::run(args),
        cli::Command::Diff(args) => cmd::diff::run(args),
        cli::Command::Generate(args) => cmd::generate::run(args),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(err) => {
            if cmd::is_broken_pipe(&err) {
                return cmd::Exit::Success.into();
            }
            if let Some(output) = err.downcast_ref::<cmd::OutputError>() {
                portmatrix::diag!("portmatrix: {output}");
                return cmd::Exit::OutputFailed.into();
            }
            portmatrix::diag!("portmatrix: {}", cmd::Chain(&err));
            cmd::Exit::Incomplete
        }
    };
    exit.into()
}
