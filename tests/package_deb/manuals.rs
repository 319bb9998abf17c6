//! The installed man pages (one for the command and each subcommand, as
//! `generate` writes them, found by `man`, clean for mandoc and groff) and
//! completions (parsed, where each shell looks, completing).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::{ok, run, BIN};

/// Checks the pages and completions; `dir` is a folder for this test's files.
pub fn check(dir: &Path) {
    // A page for the command and each subcommand: what `generate` writes.
    let generated = dir.join("generated");
    ok(
        BIN,
        &["generate", "--dir", generated.to_str().expect("utf-8")],
    );
    let names = |d: &Path, suffix: &str| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .expect("man folder")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("portmatrix") && n.ends_with(suffix))
            .map(|n| n.trim_end_matches(suffix).to_string())
            .collect()
    };
    let pages = names(Path::new("/usr/share/man/man1"), ".1.gz");
    assert_eq!(pages, names(&generated.join("man"), ".1"));
    assert!(
        pages.contains("portmatrix-live") && pages.len() > 10,
        "{pages:?}"
    );
    for page in &pages {
        let path = format!("/usr/share/man/man1/{page}.1.gz");
        assert_eq!(ok("man", &["-w", page]).trim(), path);
        let lint = run("mandoc", &["-T", "lint", "-W", "warning", &path]);
        // clap_mangen puts a .br beside each .sp around lists of values.
        let problems: Vec<String> = String::from_utf8_lossy(&lint.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&lint.stderr).lines())
            .filter(|l| !l.contains("skipping paragraph macro: br"))
            .map(str::to_string)
            .collect();
        assert!(problems.is_empty(), "{page}: {problems:#?}");
        let shown = Command::new("man")
            .args(["--warnings", "-l", &path])
            .env("MANWIDTH", "80")
            .output()
            .expect("man");
        assert!(
            shown.status.success() && shown.stderr.is_empty(),
            "{page}: {shown:?}"
        );
        assert!(String::from_utf8_lossy(&shown.stdout).contains("portmatrix"));
    }
    // The completions parse, sit where each shell looks, and complete.
    let bash = "/usr/share/bash-completion/completions/portmatrix";
    ok("bash", &["-n", bash]);
    let script = format!(
        "source {bash}; COMP_WORDS=(portmatrix ''); COMP_CWORD=1; _portmatrix portmatrix '' portmatrix; \
echo \"${{COMPREPLY[@]}}\"; COMP_WORDS=(portmatrix live --con); COMP_CWORD=2; \
_portmatrix portmatrix --con live; echo \"${{COMPREPLY[@]}}\""
    );
    let words = ok("bash", &["-c", &script]);
    let commands: BTreeSet<&str> = words
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        commands.contains("live") && commands.contains("analyze"),
        "{words}"
    );
    // The hidden `generate` is for packaging, not offered.
    assert!(!commands.contains("generate"), "{words}");
    assert!(words.contains("--config"), "{words}");
    ok(
        "zsh",
        &["-n", "/usr/share/zsh/vendor-completions/_portmatrix"],
    );
    let fpath = ok("zsh", &["-c", "print -l $fpath"]);
    assert!(
        fpath
            .lines()
            .any(|l| l == "/usr/share/zsh/vendor-completions"),
        "{fpath}"
    );
    ok(
        "fish",
        &["-n", "/usr/share/fish/vendor_completions.d/portmatrix.fish"],
    );
    let words = ok(
        "fish",
        &[
            "-c",
            "complete -C 'portmatrix '; complete -C 'portmatrix live --con'",
        ],
    );
    assert!(
        words.lines().any(|l| l.starts_with("live\t")) && words.contains("--config"),
        "{words}"
    );
    assert!(!words.lines().any(|l| l.starts_with("generate")), "{words}");
}
