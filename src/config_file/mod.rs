//! Reading the small TOML files people write for portmatrix (rules files,
//! site files, and `live --config` files): one reader for all, so a limit
//! added for one holds for the others.
//!
//! - [`read`]: the file's bytes through a size limit (a regular file, a FIFO,
//!   `/dev/zero` or `<(…)` alike), then checked as UTF-8.
//! - [`parse`]: the text as a spanned TOML tree, its syntax errors listed.
//! - [`Problems`]: every problem found, with its line and column (looked up
//!   in an index of line starts built once), capped at [`MAX_ERRORS`].
//! - [`walk_top_level`], [`array_of_tables`], [`deserialize`]: the steps
//!   both formats take over that tree.
//!
//! What is in the tables is each format's business (`matrix::load`,
//! `site::load`); this module knows nothing of rules, systems or verdicts.

mod error;
mod problems;
mod toml_tree;

use std::io::Read;
use std::path::Path;

pub use error::{ConfigError, FileKind, Problem};
pub use problems::Problems;
pub use toml_tree::{array_of_tables, deserialize, parse, walk_top_level};

/// The largest rules or site file read. A hostile or mistaken file (or
/// `/dev/zero`) must not make us allocate without bound.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// Problems listed per file; the rest are counted in one last problem. A file
/// of garbage can hold a million errors: listing them all would cost time and
/// memory (and scroll the useful first ones away).
pub const MAX_ERRORS: usize = 100;

/// The text of the file at `path`. Reads at most [`MAX_FILE_BYTES`] + 1 bytes
/// whatever the file is (its size as `stat` gives it is 0 for `/dev/zero` and
/// FIFOs), so an endless input stops at the limit. Too large or not UTF-8 is
/// [`ConfigError::Invalid`] with the line; failing to read is
/// [`ConfigError::Io`].
pub fn read(path: &Path, kind: FileKind) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        kind,
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // Only a hint for the buffer; what counts is what the read returns.
    let stated = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let hint = stated.map_or(64 << 10, |n| n.min(MAX_FILE_BYTES as u64 + 1) as usize);
    let mut bytes = Vec::with_capacity(hint);
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let origin = path.display().to_string();
    if bytes.len() > MAX_FILE_BYTES {
        // A regular file says how large it is; a stream only that it is longer.
        let size = match stated.filter(|&n| n > MAX_FILE_BYTES as u64) {
            Some(n) => format!("{n} bytes"),
            None => format!("more than {MAX_FILE_BYTES} bytes"),
        };
        return Err(kind.invalid_at_start(&origin, too_large(kind, &size)));
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfigError::Invalid {
            kind,
            problems: vec![Problem {
                origin,
                line,
                column: 1,
                item: None,
                field: None,
                message: format!(
                    "not UTF-8 text (bad byte at offset {offset}); save the file as UTF-8"
                ),
            }],
        }
    })
}

/// What a file over the limit is told; `size` is how large it is.
fn too_large(kind: FileKind, size: &str) -> String {
    format!(
        "file is {size}; {} files are limited to {MAX_FILE_BYTES} bytes",
        kind.noun()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("portmatrix-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(bytes))
            .expect("write");
        path
    }

    fn only_problem(r: Result<String, ConfigError>) -> Problem {
        match r {
            Err(ConfigError::Invalid { mut problems, .. }) if problems.len() == 1 => {
                problems.remove(0)
            }
            other => panic!("expected one problem, got {other:?}"),
        }
    }

    #[test]
    fn reads_small_utf8_files() {
        let path = temp("ok.toml", "schema = 1\n# é\n".as_bytes());
        assert_eq!(
            read(&path, FileKind::Rules).expect("read"),
            "schema = 1\n# é\n"
        );
    }

    #[test]
    fn refuses_what_is_too_large_or_not_utf8_with_the_line() {
        let path = temp("big.toml", &vec![b'#'; MAX_FILE_BYTES + 10]);
        let p = only_problem(read(&path, FileKind::Site));
        assert_eq!(
            p.message,
            format!(
                "file is {} bytes; site files are limited to 4194304 bytes",
                MAX_FILE_BYTES + 10
            )
        );
        assert_eq!((p.line, p.column), (1, 1));
        let path = temp("latin1.toml", b"a = 1\nb = \"\xe9\"\n");
        let p = only_problem(read(&path, FileKind::Rules));
        assert_eq!(p.line, 2);
        assert!(p.message.contains("bad byte at offset 11"), "{p}");
    }

    #[test]
    fn an_endless_device_stops_at_the_limit() {
        let p = only_problem(read(Path::new("/dev/zero"), FileKind::Rules));
        assert_eq!(
            p.message,
            "file is more than 4194304 bytes; rules files are limited to 4194304 bytes"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_is_an_io_error_naming_it() {
        let e =
            read(Path::new("/nonexistent/site.toml"), FileKind::Site).expect_err("missing file");
        assert!(matches!(e, ConfigError::Io { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("cannot read site file /nonexistent/site.toml:"),
            "{e}"
        );
    }
}
