//! What `analyze` makes of its inputs, as a new user gives them: folders
//! without a capture are errors that say what was skipped and why, a fatal
//! input error is one line, and errors do not repeat their cause.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A fresh folder for one test.
fn temp_dir(test: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "portmatrix-inputs-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the temp folder");
    dir
}

fn analyze(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("analyze")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run portmatrix")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn a_folder_without_a_capture_is_an_error_that_names_what_was_skipped() {
    let root = temp_dir("folders");
    let empty = root.join("empty");
    fs::create_dir(&empty).expect("mkdir");
    let out = analyze(&[s(&empty)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no capture in folder") && err.contains("it is empty"),
        "{err}"
    );
    assert!(!err.contains("rules saw none"), "no empty summary: {err}");

    let garbage = root.join("garbage");
    fs::create_dir(&garbage).expect("mkdir");
    fs::write(garbage.join("notes.txt"), b"not a capture at all").expect("write");
    fs::write(garbage.join("zero.pcap"), b"").expect("write");
    let out = analyze(&[s(&garbage)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("notes.txt: not a capture (first bytes 6e 6f 74 20"),
        "{err}"
    );
    assert!(err.contains("zero.pcap: empty"), "{err}");
    assert!(err.contains("its 2 entries were skipped"), "{err}");

    // Captures one level down are not searched, and the folder says so.
    let nested = root.join("nested");
    fs::create_dir_all(nested.join("day1")).expect("mkdir");
    fs::copy(fixture("tunnels.pcap"), nested.join("day1/a.pcap")).expect("copy");
    let out = analyze(&[s(&nested)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("day1: a folder (folders inside are not searched"),
        "{err}"
    );

    // Many stray files: ten named, the rest counted.
    let many = root.join("many");
    fs::create_dir(&many).expect("mkdir");
    for i in 0..15 {
        fs::write(many.join(format!("n{i:02}.txt")), b"text").expect("write");
    }
    fs::copy(fixture("tunnels.pcap"), many.join("t.pcap")).expect("copy");
    let out = analyze(&[s(&many)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches(": not a capture (").count(), 10, "{err}");
    assert!(err.contains("… and 5 more entries skipped"), "{err}");
    assert!(
        err.contains("1 file(s)"),
        "the capture beside them is read: {err}"
    );
}

#[test]
fn a_fatal_input_error_is_one_line() {
    let dir = temp_dir("fatal");
    let missing = dir.join("missing.pcap");
    let empty = dir.join("empty.pcap");
    fs::write(&empty, b"").expect("write");
    for (input, says) in [(&missing, "No such file"), (&empty, "is empty")] {
        let out = analyze(&[s(input)]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "the error alone: {err}");
        assert!(
            err.starts_with("portmatrix: error: ") && err.contains(says),
            "{err}"
        );
    }
    // With an input that was read, the summary stays and lists the failure once.
    let out = analyze(&[s(&missing), s(&fixture("tunnels.pcap"))]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(
        err.contains("incomplete: 1 of 2 inputs not read to their end"),
        "{err}"
    );
    assert!(err.contains("flows per verdict"), "{err}");
}

#[test]
fn errors_do_not_repeat_their_cause() {
    let dir = temp_dir("chain");
    let missing = dir.join("missing.toml");
    let capture = fixture("tunnels.pcap");
    for option in ["--rules", "--site"] {
        let out = analyze(&[option, s(&missing), s(&capture)]);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert_eq!(err.matches("(os error 2)").count(), 1, "{option}: {err}");
    }
    let blocked = dir.join("file");
    fs::write(&blocked, b"").expect("write");
    let out = analyze(&["--extract", s(&blocked.join("evidence")), s(&capture)]);
    let err = stderr(&out);
    assert_eq!(err.matches("(os error 20)").count(), 1, "{err}");
}

/// The events of a run, without its final stats (which name the file).
fn events(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("\"event_type\":\"stats\""))
        .map(str::to_owned)
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("compress");
    enc.finish().expect("compress")
}

#[test]
fn compressed_captures_read_as_the_plain_ones_whatever_their_name() {
    let dir = temp_dir("compressed");
    let plain = fixture("sample-contact-center.pcapng");
    let bytes = fs::read(&plain).expect("read the fixture");
    let gz = dir.join("sample.pcapng.gz");
    fs::write(&gz, gzip(&bytes)).expect("write");
    let zst = dir.join("sample.zst");
    fs::write(&zst, zstd::encode_all(&bytes[..], 3).expect("compress")).expect("write");
    // Told by its magic bytes, not its name.
    let misnamed = dir.join("sample.pcapng");
    fs::write(&misnamed, gzip(&bytes)).expect("write");
    let expected = analyze(&["--json", s(&plain)]);
    assert_eq!(expected.status.code(), Some(0));
    assert!(events(&expected).len() > 10);
    for file in [&gz, &zst, &misnamed] {
        let out = analyze(&["--json", s(file)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
        assert_eq!(events(&out), events(&expected), "{}", file.display());
    }
    // In a folder, compressed captures count as captures.
    let out = analyze(&["--json", s(&dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("3 file(s)"), "{}", stderr(&out));
}

#[test]
fn a_cut_compressed_stream_names_the_file_and_the_decompressed_offset() {
    let dir = temp_dir("cut");
    let bytes = fs::read(fixture("sample-contact-center.pcapng")).expect("read");
    let compressed = gzip(&bytes);
    let cut = dir.join("cut.pcapng.gz");
    fs::write(&cut, &compressed[..compressed.len() / 2]).expect("write");
    let out = analyze(&["--json", s(&cut)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("cut.pcapng.gz is damaged in its gzip stream, at byte offset")
            && err.contains("of the decompressed capture")
            && err.contains("gzip -t"),
        "{err}"
    );
    // The packets before the damage were analysed.
    let stats = String::from_utf8_lossy(&out.stdout);
    let last = stats.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).expect("stats JSON");
    assert!(
        v["stats"]["files"][0]["packets"].as_u64().unwrap_or(0) > 0,
        "{last}"
    );
}

#[test]
fn standard_input_is_read_plain_or_compressed() {
    use std::io::Write;
    let plain = fixture("sample-contact-center.pcapng");
    let bytes = fs::read(&plain).expect("read");
    let expected = analyze(&["--json", s(&plain)]);
    for input in [bytes.clone(), gzip(&bytes)] {
        let mut child = Command::new(BIN)
            .args(["analyze", "--json", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run portmatrix");
        let mut stdin = child.stdin.take().expect("stdin");
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("wait");
        feeder.join().expect("feeder").expect("write stdin");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(events(&out), events(&expected));
    }
    // Nothing on standard input: one error.
    let out = analyze(&["-"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("standard input is empty"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn output_goes_to_a_file_as_live_writes_it() {
    let dir = temp_dir("output");
    let capture = fixture("sample-contact-center.pcapng");
    let file = dir.join("events.jsonl");
    let expected = analyze(&["--json", s(&capture)]);
    let out = analyze(&["--json", "-o", s(&file), s(&capture)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "the events go to the file only");
    let written = fs::read(&file).expect("the events file");
    assert_eq!(written, expected.stdout);
    // A link is refused, not written through.
    let link = dir.join("link.jsonl");
    std::os::unix::fs::symlink(dir.join("elsewhere"), &link).expect("symlink");
    let out = analyze(&["--json", "-o", s(&link), s(&capture)]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot write the events to"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.join("elsewhere").exists());
}

#[test]
fn an_unknown_app_protocol_is_an_error_with_its_line_and_column() {
    let dir = temp_dir("app");
    let rules = dir.join("site-rules.toml");
    fs::write(
        &rules,
        "schema = 1\n[[rule]]\nid = \"site#1\"\nlisten_ports = [8443]\ntransports = [\"tcp\"]\napp_protocol = \"htps\"\n",
    )
    .expect("write");
    let out = analyze(&["--rules", s(&rules), s(&fixture("tunnels.pcap"))]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("site-rules.toml:6:16"),
        "line and column: {err}"
    );
    assert!(
        err.contains("unknown protocol \"htps\"; did you mean \"https\"?"),
        "{err}"
    );
}

#[test]
fn report_of_a_capture_points_to_analyze_and_a_missing_events_file_is_an_error() {
    let dir = temp_dir("report");
    let page = dir.join("r.html");
    for capture in [
        fixture("tunnels.pcap"),
        fixture("sample-contact-center.pcapng"),
    ] {
        let out = Command::new(BIN)
            .args(["report", s(&capture), "-o", s(&page)])
            .output()
            .expect("run portmatrix");
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert_eq!(
            err.lines().count(),
            1,
            "one line, no \"not UTF-8\" flood: {err}"
        );
        assert!(
            err.contains("is a capture, not an events file") && err.contains("analyze --report"),
            "{err}"
        );
    }
    let out = Command::new(BIN)
        .args(["report", s(&dir.join("missing.jsonl")), "-o", s(&page)])
        .output()
        .expect("run portmatrix");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: cannot open events file"),
        "{}",
        stderr(&out)
    );
    assert!(!page.exists(), "no empty report");
}

/// The alerts and flows of a run (`--json --flows`), without the stats.
fn alert_count(args: &[&str]) -> usize {
    let out = analyze(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    events(&out).len()
}

#[test]
fn times_take_any_offset_epoch_seconds_and_compound_offsets() {
    let capture = fixture("sample-contact-center.pcapng");
    let c = s(&capture);
    // The sample starts at 2021-08-02T09:00:00Z: all these are 09:00:20Z.
    let utc = alert_count(&["--json", "--since", "2021-08-02T09:00:20Z", c]);
    for same in [
        "2021-08-02T11:00:20+02:00",
        "2021-08-02T04:00:20-05:00",
        "1627894820",
        "+20s",
        "+0m20s",
    ] {
        assert_eq!(alert_count(&["--json", "--since", same, c]), utc, "{same}");
    }
    let all = alert_count(&["--json", c]);
    assert!(utc < all, "the window leaves some out: {utc} of {all}");
    assert_eq!(
        alert_count(&["--json", "--since", "+1m", "--until", "+1m30s", c]),
        0
    );
    // Without an offset: the local time of the machine's zone (TZ here),
    // and stderr says which zone and what UTC time it became.
    for (zone, wall) in [
        ("UTC", "2021-08-02T09:00:20"),
        ("Europe/Paris", "2021-08-02T11:00:20"),
        ("America/New_York", "2021-08-02T05:00:20"),
    ] {
        let out = Command::new(BIN)
            .args(["analyze", "--json", "--since", wall, c])
            .env("TZ", zone)
            .stdin(Stdio::null())
            .output()
            .expect("run portmatrix");
        assert_eq!(events(&out).len(), utc, "{zone}");
        assert!(
            stderr(&out).contains("has no offset: taken as local time in")
                && stderr(&out).contains("(2021-08-02T09:00:20.000000Z)"),
            "{zone}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_window_outside_the_capture_says_where_the_capture_is() {
    let capture = fixture("sample-contact-center.pcapng");
    for (option, time) in [
        ("--since", "2022-01-01T00:00:00Z"),
        ("--until", "1600000000"),
    ] {
        let out = analyze(&["-q", option, time, s(&capture)]);
        assert_eq!(out.status.code(), Some(0));
        let err = stderr(&out);
        assert!(
            err.contains("lies outside the capture, which runs from 2021-08-02T09:00:00.000000Z to 2021-08-02T09:00:55.800000Z"),
            "{err}"
        );
    }
    let out = analyze(&["-q", "--since", "+10s", s(&capture)]);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}
