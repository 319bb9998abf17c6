//! The library's top-level modules import only downward, along the data's
//! path: a module may use those of the layers below its own, never one above
//! (and so there is no import circle). Read from the `use crate::…` lines of
//! `src/`, so a new import that runs upward fails here with its file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import any module of a lower layer.
const LAYERS: &[&[&str]] = &[
    // Words every stage uses; they import nothing of the project.
    &["transport", "timestamp", "verdict", "printable"],
    &["config_file", "decode", "capture"],
    &["matrix"],
    &["site"],
    &["classify"],
    &["flow", "filter"],
    &["output"],
    // The evidence files of `--extract`: filled by the pipeline's workers.
    &["evidence"],
    &["pipeline", "report"],
    // Reads events files through `report` and writes firewall rules.
    &["policy"],
];

/// Imports that run upward, each with the reason it is allowed for now.
const EXCEPTIONS: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The top-level modules a file's `use crate::…` items name, comments aside:
/// `use crate::a::B;`, `use crate::{a::B, c};` over several lines too.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for item in code.split("use ").skip(1) {
        let Some(item) = item.split(';').next() else {
            continue;
        };
        let Some(rest) = item.trim_start().strip_prefix("crate::") else {
            continue;
        };
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split(',').collect(),
            None => vec![rest],
        };
        for name in names {
            let module = name.trim().split("::").next().unwrap_or_default();
            let module: String = module
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !module.is_empty() {
                found.insert(module);
            }
        }
    }
    found
}

#[test]
fn modules_import_only_the_layers_below_their_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    let mut unknown = BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src/");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs");
        // The binary's own files (main, cli, cmd) sit above the library.
        if matches!(top, "main" | "lib" | "cli" | "cmd") {
            continue;
        }
        let Some(own) = layer_of(top) else {
            unknown.insert(top.to_string());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file");
        for module in imports(&text) {
            if module == top {
                continue;
            }
            match layer_of(&module) {
                Some(layer) if layer < own => {}
                _ if EXCEPTIONS
                    .iter()
                    .any(|(from, to, _)| *from == top && *to == module) => {}
                Some(_) => upward.push(format!("{} imports `{module}`", rel.display())),
                None => {
                    unknown.insert(module);
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from LAYERS (add them where they belong): {unknown:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that run upward or sideways (see LAYERS):\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_parser_finds_grouped_and_wrapped_imports() {
    let text = "use crate::a::B;\n// use crate::commented::X;\nuse crate::{\n    c::D,\n    e,\n};\nuse std::fs;\n";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["a", "c", "e"]);
}
