//! Rules files from strangers: deeply nested TOML, huge arrays, enormous
//! strings, many tables, invalid UTF-8, files over the 4 MiB limit, floods of
//! errors, and valid files built to make the compiled matrix explode. Each is
//! an error naming the file and line (or, when valid, a prompt answer), never
//! a crash, a hang or an unbounded allocation: every run has a deadline and
//! at most 1 GiB of address space (`ulimit -v`), so an allocation beyond the
//! bound kills the process and fails the test.
//!
//! The files are written to a temporary directory by the tests themselves.

mod common;
use common::{hostile_file as hostile, portmatrix_bounded, Finished};

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Generous for a debug build on a busy machine; a hang takes forever.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Address space allowed to each run, in KiB.
const ADDRESS_SPACE_KIB: u32 = 1 << 20;

/// `portmatrix ARGS` under the address-space limit, with a deadline.
fn portmatrix(args: &[&str]) -> Finished {
    portmatrix_bounded(args, ADDRESS_SPACE_KIB, TIMEOUT)
}

/// `rules check` refuses the file with an error at `file:line:` saying `says`.
fn refused(path: &Path, line: usize, says: &str) -> Finished {
    let p = path.to_str().expect("UTF-8 path");
    let r = portmatrix(&["rules", "check", "--no-default-rules", p]);
    assert_eq!(r.code, Some(1), "{p}: {}", r.describe());
    let at = format!("{p}:{line}:");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with(&at) && l.contains(says)),
        "{p}: expected `{at} … {says}` in:\n{}",
        r.stdout.chars().take(2000).collect::<String>()
    );
    r
}

#[test]
fn deeply_nested_toml_is_refused_not_recursed_into() {
    let depth = 1_000_000;
    let arrays = format!(
        "schema = 1\na = {}{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    refused(&hostile("arrays.toml", arrays), 2, "invalid TOML");
    let unclosed = format!("schema = 1\na = {}\n", "[".repeat(2 * depth));
    refused(&hostile("unclosed.toml", unclosed), 2, "invalid TOML");
    let tables = format!(
        "schema = 1\na = {}1{}\n",
        "{b = ".repeat(depth / 4),
        "}".repeat(depth / 4)
    );
    refused(&hostile("inline-tables.toml", tables), 2, "invalid TOML");
    let keys = format!("schema = 1\n[{}]\n", vec!["k"; depth].join("."));
    refused(&hostile("dotted-keys.toml", keys), 1, "invalid TOML");
}

#[test]
fn huge_arrays_and_strings_stop_at_the_limits() {
    let ports = vec!["1"; 1_500_000].join(",");
    let text = format!(
        "schema = 1\n[[rule]]\nid = \"x\"\ntransports = [\"tcp\"]\nlisten_ports = [{ports}]\n"
    );
    refused(
        &hostile("huge-array.toml", text),
        5,
        "at most 1024 ports or ranges per rule",
    );
    let id = "x".repeat((4 << 20) - 100);
    let text = format!(
        "schema = 1\n[[rule]]\nid = \"{id}\"\nlisten_ports = [1]\ntransports = [\"tcp\"]\n"
    );
    refused(
        &hostile("huge-string.toml", text),
        3,
        "id must be 1 to 64 characters",
    );
}

#[test]
fn too_many_rules_or_tables_are_counted_not_listed() {
    let text = format!("schema = 1\n{}", "[[rule]]\nid = \"x\"\n".repeat(200_000));
    refused(
        &hostile("many-rules.toml", text),
        1,
        "200000 rules; a rules file may hold at most 10000",
    );
    let mut text = String::from("schema = 1\n");
    for i in 0..400_000 {
        let _ = writeln!(text, "[t{i}]");
    }
    let r = refused(
        &hostile("many-tables.toml", text),
        2,
        "unknown top-level key `t0`",
    );
    // 100 errors, one that counts the rest, and the file's summary line.
    assert_eq!(r.stdout.lines().count(), 102, "{}", r.stdout);
    assert!(
        r.stdout.contains("399900 more errors not listed"),
        "{}",
        r.stdout
    );
    let mut text = String::from("schema = 1\n");
    for i in 0..9_000 {
        let ports = vec!["70000"; 60].join(",");
        let _ = writeln!(
            text,
            "[[rule]]\nid = \"r{i}\"\ntransports = [\"tcp\"]\nlisten_ports = [{ports}]"
        );
    }
    let r = refused(
        &hostile("many-errors.toml", text),
        5,
        "port 70000 is out of range",
    );
    assert!(
        r.stdout.contains("539900 more errors not listed"),
        "{}",
        r.stdout
    );
    let garbage = format!("schema = 1\n{}", "=\n".repeat(1_500_000));
    let r = refused(&hostile("garbage.toml", garbage), 2, "invalid TOML");
    assert_eq!(
        r.stdout.lines().count(),
        2,
        "only the first syntax error of a large file"
    );
}

#[test]
fn invalid_utf8_and_oversized_files_are_refused_before_parsing() {
    let bytes = b"schema = 1\n[[rule]]\nid = \"\xff\xfe\"\n".to_vec();
    refused(
        &hostile("latin1.toml", bytes),
        3,
        "not UTF-8 text (bad byte at offset 26)",
    );
    let big = format!("schema = 1\n{}", "# padding\n".repeat(524_300));
    refused(
        &hostile("five-mib.toml", big),
        1,
        "rules files are limited to 4194304 bytes",
    );
}

/// `rules explain PORT` with only `file`: compiles the whole matrix.
fn explain(path: &Path, port: &str) -> Finished {
    let p = path.to_str().expect("UTF-8 path");
    portmatrix(&[
        "rules",
        "explain",
        "--json",
        port,
        "--no-default-rules",
        "--rules",
        p,
    ])
}

fn deciding(r: &Finished) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.describe()));
    v["deciding_rule_ids"]
        .as_array()
        .expect("deciding_rule_ids")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[test]
fn valid_files_built_to_explode_the_matrix_compile_promptly() {
    // Close to 4 MiB: 690 rules of 1,024 ports each, every port cut.
    let port_of = |i: u32, j: u32| (i * 1024 + j * 61) % 65536;
    let mut text = String::from("schema = 1\n");
    for i in 0..690 {
        let ports: Vec<String> = (0..1024).map(|j| port_of(i, j).to_string()).collect();
        let _ = writeln!(
            text,
            "[[rule]]\nid = \"r{i}\"\nlisten_ports = [{}]\ntransports = [\"tcp\", \"udp\"]",
            ports.join(",")
        );
    }
    assert!(text.len() < 4 << 20);
    let r = explain(&hostile("wide.toml", text), "udp/5");
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let on_5: Vec<String> = (0..690)
        .filter(|&i| (0..1024).any(|j| port_of(i, j) == 5))
        .map(|i| format!("r{i}"))
        .collect();
    assert_eq!(deciding(&r), on_5);

    // A rule set of its own for every port of both transports.
    let mut text = String::from("schema = 1\n");
    for t in ["tcp", "udp"] {
        for m in 0..4000 {
            let ports: Vec<String> = (m..65536).step_by(4000).map(|p| p.to_string()).collect();
            let _ = writeln!(
                text,
                "[[rule]]\nid = \"{t}-m{m}\"\nlisten_ports = [{}]\ntransports = [\"{t}\"]",
                ports.join(",")
            );
        }
        for q in 0..17 {
            let lo = q * 4000;
            let _ = writeln!(
                text,
                "[[rule]]\nid = \"{t}-q{q}\"\nlisten_ports = [[{lo}, {}]]\ntransports = [\"{t}\"]",
                (lo + 3999).min(65535)
            );
        }
    }
    let r = explain(&hostile("sets.toml", text), "udp/5");
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert_eq!(deciding(&r), ["udp-m5"].map(String::from));

    // Piled on one port beyond the limit: refused, naming the rule and port.
    let mut text = String::from("schema = 1\n");
    for i in 0..65 {
        let _ = writeln!(text, "[[rule]]\nid = \"all{i}\"\nlisten_ports = [[0, 65535]]\ntransports = [\"udp\"]\ncast = \"any\"");
    }
    let path = hostile("pile.toml", text);
    let r = explain(&path, "udp/5");
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let says = format!(
        "{}: rule all64: field `listen_ports`: 65 rules cover udp/0; at most 64",
        path.display()
    );
    assert!(r.stderr.contains(&says), "{}", r.stderr);
}
