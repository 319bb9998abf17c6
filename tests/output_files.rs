//! Files portmatrix writes: never through a link someone planted, named in
//! events and counted in stats only once written, replaced whole or not at
//! all. The full-disk and read-only cases mount a small tmpfs (root); as
//! another user they are skipped, unless PORTMATRIX_LIVE_TESTS=require.

mod common;
use common::{run_bounded, work_dir, Finished};

use std::collections::HashMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");
const TIMEOUT: Duration = Duration::from_secs(120);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn run(args: &[&str]) -> Finished {
    run_bounded(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        TIMEOUT,
    )
}

fn events(r: &Finished) -> Vec<Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn extract_stats(events: &[Value]) -> Value {
    let last = events.last().expect("a stats event");
    assert_eq!(last["event_type"], "stats", "{last}");
    last["stats"]["extract"].clone()
}

/// Whether this run may mount file systems; panics when it must and cannot.
fn can_mount(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
        "{test} mounts a tmpfs: it needs root"
    );
    eprintln!("SKIPPED {test}: mounting a small tmpfs needs root");
    false
}

/// A tmpfs of `size` (and `options`) at `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str, options: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let o = format!("size={size}{options}");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &o, "tmpfs", s(dir)])
            .status()
            .expect("mount runs");
        assert!(st.success(), "mount -t tmpfs -o {o} {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Plant a link at `at` to a file that must stay as it is; returns the target.
fn plant(at: &Path, targets: &Path) -> PathBuf {
    let name = at.file_name().expect("name").to_string_lossy();
    let target = targets.join(format!("{name}.target"));
    std::fs::write(&target, b"precious").expect("target");
    symlink(&target, at).expect("plant a link");
    target
}

fn untouched(target: &Path) {
    assert_eq!(
        std::fs::read(target).expect("the target is still there"),
        b"precious",
        "{} was written through a link",
        target.display()
    );
}

fn regular(path: &Path) {
    let m = std::fs::symlink_metadata(path).expect("written");
    assert!(m.is_file(), "{} is not a regular file", path.display());
}

#[test]
fn planted_links_are_never_written_through() {
    let dir = work_dir("output-files", "links");
    let targets = dir.join("targets");
    std::fs::create_dir_all(&targets).expect("targets");
    let sample = fixture("sample-contact-center.pcapng");

    // Learn the per-flow names (flow ids are stable), then plant them all,
    // the verdict files' names and the report's name.
    let first = dir.join("first");
    let r = run(&[
        "analyze",
        "--json",
        "--flows",
        "-q",
        "--extract",
        s(&first),
        s(&sample),
    ]);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let names: Vec<String> = events(&r)
        .iter()
        .filter_map(|e| e["evidence"].as_str())
        .map(|p| {
            Path::new(p)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    let evidence = dir.join("evidence");
    std::fs::create_dir_all(&evidence).expect("evidence");
    let mut planted = Vec::new();
    for name in names
        .iter()
        .map(String::as_str)
        .chain(["undocumented.pcapng"])
    {
        planted.push((evidence.join(name), plant(&evidence.join(name), &targets)));
    }
    let report = evidence.join("r.html");
    let report_target = plant(&report, &targets);

    for by in ["flow", "verdict"] {
        let r = run(&[
            "analyze",
            "--json",
            "--flows",
            "-q",
            "--extract",
            s(&evidence),
            "--extract-by",
            by,
            "--report",
            s(&report),
            s(&sample),
        ]);
        assert_eq!(r.code, Some(0), "--extract-by {by}: {}", r.describe());
        for e in events(&r).iter().filter_map(|e| e["evidence"].as_str()) {
            regular(Path::new(e));
        }
    }
    for (link, target) in &planted {
        untouched(target);
        regular(link);
    }
    untouched(&report_target);
    regular(&report);

    // `report -o` and `site suggest -o` replace a link, never write through it.
    let events_file = dir.join("events.jsonl");
    let r = run(&["analyze", "--json", "--flows", "-q", s(&sample)]);
    std::fs::write(&events_file, &r.stdout).expect("events");
    for (args, out) in [
        (
            vec!["report", s(&events_file), "-o"],
            dir.join("report.html"),
        ),
        (
            vec!["site", "suggest", s(&sample), "-o"],
            dir.join("site.toml"),
        ),
    ] {
        let target = plant(&out, &targets);
        let r = run(&[&args[..], &[s(&out)]].concat());
        assert_eq!(r.code, Some(0), "{args:?}: {}", r.describe());
        untouched(&target);
        regular(&out);
    }
    // No hidden temporary file is left beside them.
    let hidden: Vec<_> = std::fs::read_dir(&evidence)
        .expect("ls")
        .chain(std::fs::read_dir(&dir).expect("ls"))
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_report_piped_into_head_is_still_written_whole() {
    let dir = work_dir("output-files", "head");
    let report = dir.join("r.html");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let r = run_bounded(
        Command::new(BIN)
            .args(["analyze", "--json", "--flows", "--report", s(&report)])
            .arg(fixture("sample-contact-center.pcapng"))
            .stdout(writer)
            .stderr(Stdio::piped()),
        TIMEOUT,
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.stderr.contains("wrote"), "{}", r.stderr);
    let html = std::fs::read_to_string(&report).expect("the report is written");
    // Every flow of the capture is in it, not only those before the pipe closed.
    assert!(r.stderr.contains("42 flows, 15 flagged"), "{}", r.stderr);
    assert!(html.contains("</html>"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn report_skips_and_counts_a_line_torn_by_a_crash() {
    let dir = work_dir("output-files", "torn");
    let r = run(&[
        "analyze",
        "--json",
        "--flows",
        "-q",
        s(&fixture("sample-contact-center.pcapng")),
    ]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // A run killed mid-line, then `live -o` went on on a new line.
    let cut = &lines[3][..lines[3].len() / 2];
    let text = [&lines[..3], &[cut], &lines[4..]].concat().join("\n") + "\n";
    let file = dir.join("events.jsonl");
    std::fs::write(&file, text).expect("events");
    let out = dir.join("r.html");
    let r = run(&["report", s(&file), "-o", s(&out)]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    assert!(r.stderr.contains(":4: column"), "{}", r.stderr);
    assert!(r.stderr.contains("cut short"), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 malformed event line(s) skipped"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains(&format!("from {} event line(s)", lines.len())),
        "{}",
        r.stderr
    );
    assert!(out.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// Every file an event names exists and holds the flow's packets (all of
/// them, or its first ones for `.partial`); the stats count exactly the
/// files, packets and bytes in the folder.
fn check_evidence(events: &[Value], folder: &Path) {
    let mut flow_packets: HashMap<String, u64> = HashMap::new();
    for e in events.iter().filter(|e| e["event_type"] == "flow") {
        if let Some(path) = e["evidence"].as_str() {
            let n =
                e["pkts_toserver"].as_u64().expect("n") + e["pkts_toclient"].as_u64().expect("n");
            *flow_packets.entry(path.to_string()).or_default() += n;
        }
    }
    for (path, n) in &flow_packets {
        let mut cap = portmatrix::capture::CaptureFile::open(Path::new(path))
            .unwrap_or_else(|e| panic!("{path} is named but cannot be read: {e}"));
        let mut read = 0;
        while cap.next_packet().expect("a whole file").is_some() {
            read += 1;
        }
        if path.ends_with(".partial") {
            assert!(read > 0 && read <= *n, "{path}: {read} of {n}");
        } else if path.contains("-") {
            assert_eq!(read, *n, "{path}");
        } else {
            // A verdict's file holds at least the flows that name it.
            assert!(read >= *n, "{path}: {read} of {n}");
        }
    }
    let (mut files, mut bytes, mut packets) = (0u64, 0u64, 0u64);
    for entry in std::fs::read_dir(folder).expect("ls") {
        let path = entry.expect("entry").path();
        files += 1;
        bytes += std::fs::metadata(&path).expect("meta").len();
        let mut cap = portmatrix::capture::CaptureFile::open(&path).expect("every file reads");
        while cap.next_packet().expect("whole blocks only").is_some() {
            packets += 1;
        }
    }
    let stats = extract_stats(events);
    assert_eq!(stats["files"], files, "{stats}");
    assert_eq!(stats["bytes"], bytes, "{stats}");
    assert_eq!(stats["packets"], packets, "{stats}");
}

#[test]
fn evidence_on_a_full_disk_names_and_counts_only_what_was_written() {
    if !can_mount("evidence_on_a_full_disk_names_and_counts_only_what_was_written") {
        return;
    }
    let dir = work_dir("output-files", "full");
    // gen-traffic writes only outside the repository.
    let capture =
        std::env::temp_dir().join(format!("portmatrix-full-disk-{}.pcap", std::process::id()));
    let gen = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic"))
        .args(["-o", s(&capture), "--packets", "20000", "--scan", "1000"])
        .output()
        .expect("scripts/gen-traffic runs");
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    for by in ["flow", "verdict"] {
        let folder = dir.join(format!("evidence-{by}"));
        let _disk = Tmpfs::mount(&folder, "256k", "");
        let r = run(&[
            "analyze",
            "--json",
            "--flows",
            "-q",
            "--extract",
            s(&folder),
            "--extract-by",
            by,
            s(&capture),
        ]);
        assert_eq!(r.code, Some(1), "{by}: {}", r.describe());
        assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
        let events = events(&r);
        let stats = extract_stats(&events);
        assert!(stats["errors"].as_u64() > Some(0), "{stats}");
        check_evidence(&events, &folder);
        let partial = events
            .iter()
            .filter_map(|e| e["evidence"].as_str())
            .any(|p| p.ends_with(".partial"));
        let unnamed = events.iter().any(|e| {
            e["event_type"] == "flow" && e["verdict"] == "undocumented" && e["evidence"].is_null()
        });
        assert!(unnamed, "{by}: some flagged flows had no room");
        if by == "verdict" {
            // Cut short: renamed NAME.partial, unless a flow that ended before
            // the disk filled (another worker's) had named it whole already.
            let named = events.iter().any(|e| {
                e["event_type"] == "flow"
                    && e["evidence"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("undocumented.pcapng"))
            });
            assert!(partial || named, "the verdict file was cut short");
        }
    }
    let _ = std::fs::remove_file(capture);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn evidence_into_a_read_only_folder_names_no_file() {
    if !can_mount("evidence_into_a_read_only_folder_names_no_file") {
        return;
    }
    let dir = work_dir("output-files", "readonly");
    let folder = dir.join("evidence");
    let _disk = Tmpfs::mount(&folder, "64k", ",ro");
    let r = run(&[
        "analyze",
        "--json",
        "--flows",
        "-q",
        "--extract",
        s(&folder),
        s(&fixture("sample-contact-center.pcapng")),
    ]);
    assert_eq!(r.code, Some(1), "{}", r.describe());
    let events = events(&r);
    assert!(events.iter().all(|e| e["evidence"].is_null()));
    let stats = extract_stats(&events);
    assert_eq!(
        (stats["files"].as_u64(), stats["bytes"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );
    assert!(stats["errors"].as_u64() > Some(0), "{stats}");
    drop(_disk);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_report_that_does_not_fit_leaves_the_old_one_whole() {
    if !can_mount("a_report_that_does_not_fit_leaves_the_old_one_whole") {
        return;
    }
    let dir = work_dir("output-files", "report-full");
    let events_file = dir.join("events.jsonl");
    let r = run(&[
        "analyze",
        "--json",
        "--flows",
        "-q",
        s(&fixture("sample-contact-center.pcapng")),
    ]);
    std::fs::write(&events_file, &r.stdout).expect("events");
    let disk = dir.join("disk");
    let _disk = Tmpfs::mount(&disk, "64k", "");
    let report = disk.join("report.html");
    std::fs::write(&report, "the good report").expect("old report");
    for (code, args) in [
        (4, vec!["report", s(&events_file), "-o", s(&report)]),
        (
            1,
            vec![
                "analyze",
                "-q",
                "--report",
                s(&report),
                s(&fixture("sample-contact-center.pcapng")),
            ],
        ),
    ] {
        let r = run(&args);
        assert_eq!(r.code, Some(code), "{args:?}: {}", r.describe());
        assert!(r.stderr.contains("No space left on device"), "{}", r.stderr);
        assert_eq!(
            std::fs::read_to_string(&report).expect("kept"),
            "the good report"
        );
        let left: Vec<_> = std::fs::read_dir(&disk).expect("ls").collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    }
    drop(_disk);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn live_events_file_errors_are_output_errors_and_links_are_refused() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "live capture needs root"
        );
        eprintln!("SKIPPED live_events_file_errors_are_output_errors: live capture needs root");
        return;
    }
    let dir = work_dir("output-files", "live-o");
    let target = plant(&dir.join("events.json"), &dir);
    for (out, says) in [
        (dir.join("missing/events.json"), "No such file or directory"),
        (dir.join("events.json"), "is a symbolic link"),
    ] {
        let r = run(&["live", "-i", "lo", "--json", "-q", "-o", s(&out)]);
        assert_eq!(r.code, Some(4), "{}: {}", out.display(), r.describe());
        assert!(
            r.stderr.contains("cannot write the events to"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{}", r.stderr);
    }
    untouched(&target);
    let _ = std::fs::remove_dir_all(dir);
}

/// Peak resident memory of `portmatrix ARGS`, in KiB (GNU time's %M).
fn peak_kib(args: &[&str]) -> u64 {
    let o = Command::new("/usr/bin/time")
        .args(["-f", "peak %M"])
        .arg(BIN)
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("/usr/bin/time runs (scripts/setup --test installs it)");
    let text = String::from_utf8_lossy(&o.stderr);
    text.lines()
        .find_map(|l| l.strip_prefix("peak "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in: {text}"))
}

#[test]
fn extracting_huge_blocks_costs_a_few_blocks_of_memory_and_none_past_the_cap() {
    if !Path::new("/usr/bin/time").exists() {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "/usr/bin/time is missing (scripts/setup --test installs it)"
        );
        eprintln!("SKIPPED the memory test: /usr/bin/time is missing");
        return;
    }
    let dir = work_dir("output-files", "big-blocks");
    let capture = std::env::temp_dir().join(format!(
        "portmatrix-big-blocks-{}.pcapng",
        std::process::id()
    ));
    let gen = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-big-blocks"))
        .args(["-o", s(&capture), "--blocks", "12", "--block-mb", "32"])
        .output()
        .expect("scripts/gen-big-blocks runs");
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let evidence = dir.join("evidence");
    let base = peak_kib(&["analyze", "-q", "--json", s(&capture)]);
    let capped = peak_kib(&[
        "analyze",
        "-q",
        "--json",
        "--extract",
        s(&evidence),
        "--extract-max-mb",
        "10",
        s(&capture),
    ]);
    let _ = std::fs::remove_dir_all(&evidence);
    let full = peak_kib(&[
        "analyze",
        "-q",
        "--json",
        "--extract",
        s(&evidence),
        s(&capture),
    ]);
    let _ = std::fs::remove_file(&capture);
    let block = 32 << 10;
    // Nothing that cannot fit the cap is copied; without a cap, a few
    // copies of one block (read ahead, the worker's batch, in flight, the
    // file's buffer: at most 8), not one per block read ahead or queued.
    assert!(
        capped <= base + (16 << 10),
        "base {base} KiB, capped {capped} KiB"
    );
    assert!(
        full <= base + 8 * block,
        "base {base} KiB, extract {full} KiB"
    );
    let _ = std::fs::remove_dir_all(dir);
}
