//! `portmatrix generate --dir DIR` (hidden, for packaging): a man page for the
//! command and each visible subcommand, completions for bash, zsh and fish,
//! the same bytes on every run for one SOURCE_DATE_EPOCH, and nothing about
//! itself in what users see. The installed copies are checked further
//! (mandoc, man, completing in bash and fish) by tests/package_deb.rs.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn generate(dir: &Path, epoch: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["generate", "--dir"])
        .arg(dir)
        .env("SOURCE_DATE_EPOCH", epoch)
        .output()
        .expect("portmatrix runs")
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn pages_and_completions_for_every_visible_command_the_same_each_time() {
    let first = common::work_dir("generate", "first");
    let second = common::work_dir("generate", "second");
    for dir in [&first, &second] {
        let out = generate(dir, "86400");
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let pages = files(&first.join("man"));
    let expected: BTreeSet<String> = [
        "portmatrix",
        "portmatrix-analyze",
        "portmatrix-live",
        "portmatrix-rules",
        "portmatrix-rules-list",
        "portmatrix-rules-explain",
        "portmatrix-rules-check",
        "portmatrix-report",
        "portmatrix-site",
        "portmatrix-site-suggest",
        "portmatrix-site-check",
        "portmatrix-policy",
        "portmatrix-diff",
    ]
    .iter()
    .map(|p| format!("{p}.1"))
    .collect();
    assert_eq!(pages, expected);
    let completions = files(&first.join("completions"));
    assert_eq!(
        completions,
        BTreeSet::from(["portmatrix.bash", "_portmatrix", "portmatrix.fish"].map(String::from))
    );
    for (sub, names) in [("man", &pages), ("completions", &completions)] {
        for name in names {
            assert_eq!(
                read(&first.join(sub).join(name)),
                read(&second.join(sub).join(name)),
                "{sub}/{name} differs between two runs"
            );
        }
    }
    let live = read(&first.join("man/portmatrix-live.1"));
    let title = format!(
        ".TH portmatrix-live 1 1970-01-02 \"portmatrix {}\" \"User Commands\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(live.lines().any(|l| l == title), "{live}");
    assert!(
        live.contains("print\\-config") && live.contains("Exit codes"),
        "{live}"
    );
    // The packaging command is hidden from the pages and the completions.
    for text in [
        read(&first.join("man/portmatrix.1")),
        read(&first.join("completions/portmatrix.bash")),
    ] {
        assert!(
            text.contains("live") && !text.contains("generate"),
            "{text}"
        );
    }
    let bash = Command::new("bash")
        .arg("-n")
        .arg(first.join("completions/portmatrix.bash"))
        .status()
        .expect("bash");
    assert!(bash.success());
}

#[test]
fn a_bad_source_date_epoch_is_refused() {
    let dir = common::work_dir("generate", "bad-epoch");
    let out = generate(&dir, "yesterday");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        common::stderr(&out).contains("SOURCE_DATE_EPOCH=`yesterday` is not a number of seconds"),
        "{}",
        common::stderr(&out)
    );
}
