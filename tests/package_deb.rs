//! The Debian package, built and installed on this machine as a security team
//! would: `scripts/build-deb`, `dpkg -i`, then the installed command, its man
//! pages and completions, the unit checked offline (`systemd-analyze verify`
//! and `security`), and the unit run by a booted systemd (a container of this
//! machine's own /usr and /etc, see `container`): as its own user with two
//! capabilities, the configuration file with only the interface edited,
//! logrotate's rotation and SIGHUP, a clean stop, and no restart after a bad
//! configuration. Then `dpkg --purge`.
//!
//! Needs root and the tools scripts/setup --test installs; without them the
//! test says SKIPPED, and with `PORTMATRIX_LIVE_TESTS=require` (scripts/test
//! as root, as in CI) it fails. It installs into this machine and removes
//! what it installed when it ends (the package, and the user and log folder
//! if it created them); a machine that already has the package is refused.

mod common;
#[path = "package_deb/container.rs"]
mod container;
#[path = "package_deb/manuals.rs"]
mod manuals;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::lab::{fixture, Lab, BIN};
use container::Booted;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const UNIT: &str = "/usr/lib/systemd/system/portmatrix.service";
const CONFIG: &str = "/etc/portmatrix/live.toml";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} does not run: {e}"))
}

/// `program ARGS`, which must succeed: its stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn missing_prerequisite() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root to install a package".into());
    }
    let tools = [
        "dpkg",
        "cargo-deb",
        "systemd-analyze",
        "systemd-nspawn",
        "nsenter",
        "logrotate",
        "mandoc",
        "man",
        "zsh",
        "fish",
        "ip",
        "tcpreplay",
    ];
    tools
        .iter()
        .find(|t| {
            !run("sh", &["-c", &format!("command -v {t}")])
                .status
                .success()
        })
        .map(|t| format!("`{t}` is not installed (scripts/setup --test installs it)"))
}

/// The package installed, and removed again when dropped, with the user
/// and the log folder if this test created them.
struct Installed {
    created_user: bool,
    created_logs: bool,
}

impl Installed {
    fn new(deb: &Path) -> Installed {
        let status = run("dpkg-query", &["-W", "-f=${Status}", "portmatrix"]);
        assert!(
            !String::from_utf8_lossy(&status.stdout).contains("installed"),
            "the portmatrix package is installed on this machine: this test installs and purges \
its own, so it leaves that one alone; remove it (dpkg --purge portmatrix) or run the test elsewhere"
        );
        let installed = Installed {
            created_user: !run("getent", &["passwd", "portmatrix"]).status.success(),
            created_logs: !Path::new("/var/log/portmatrix").exists(),
        };
        ok("dpkg", &["-i", deb.to_str().expect("utf-8 path")]);
        installed
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "portmatrix"]);
        if self.created_user {
            let _ = run("userdel", &["portmatrix"]);
            let _ = run("groupdel", &["portmatrix"]);
        }
        if self.created_logs {
            let _ = std::fs::remove_dir_all("/var/log/portmatrix");
        }
    }
}

#[test]
fn the_package_installs_a_sensor_that_runs_as_a_service() {
    if let Some(why) = missing_prerequisite() {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "cannot run the package test: {why}"
        );
        eprintln!("SKIPPED the package test: {why}");
        return;
    }
    // One package test at a time on this machine (dpkg has one database).
    let lock = std::fs::File::create("/run/lock/portmatrix-package-test.lock").expect("lock file");
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("lock");

    let dir = common::work_dir("package", "deb");
    let started = Instant::now();
    let deb = build(&dir.join("first"));
    eprintln!("package test: built the .deb in {:.0?}", started.elapsed());
    // The same sources give the same package, byte for byte.
    let again = build(&dir.join("second"));
    assert!(
        std::fs::read(&deb).expect("deb") == std::fs::read(&again).expect("deb"),
        "two builds of the same sources differ: {} and {}",
        deb.display(),
        again.display()
    );
    check_archive(&deb);

    let installed = Installed::new(&deb);
    check_command();
    manuals::check(&dir);
    check_unit_offline();
    check_user_and_folder();
    check_configuration(&dir);
    run_the_service(&dir);

    ok("dpkg", &["--purge", "portmatrix"]);
    for gone in [
        "/usr/bin/portmatrix",
        UNIT,
        CONFIG,
        "/etc/logrotate.d/portmatrix",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after purge");
    }
    // The events stay: they are a record, not the package's.
    assert!(Path::new("/var/log/portmatrix").is_dir());
    drop(installed);
    eprintln!("package test: {:.0?} in all", started.elapsed());
}

/// `scripts/build-deb` with the test's lighter profile: the .deb's path.
fn build(out: &Path) -> PathBuf {
    let script = Path::new(ROOT).join("scripts/build-deb");
    let out_text = out.to_str().expect("utf-8 path");
    ok(
        script.to_str().expect("utf-8 path"),
        &["--profile", "deb-test", "--output", out_text],
    );
    let debs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("output folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    debs[0].clone()
}

fn check_archive(deb: &Path) {
    let deb = deb.to_str().expect("utf-8 path");
    let depends = ok("dpkg-deb", &["-f", deb, "Depends"]);
    assert!(depends.contains("libpcap0.8"), "{depends}");
    assert!(depends.contains("systemd"), "{depends}");
    let conffiles = ok("dpkg-deb", &["-I", deb, "conffiles"]);
    let conffiles: BTreeSet<&str> = conffiles.lines().collect();
    assert_eq!(
        conffiles,
        BTreeSet::from([CONFIG, "/etc/logrotate.d/portmatrix"])
    );
    let files = ok("dpkg-deb", &["-c", deb]);
    for path in [
        "./usr/bin/portmatrix",
        "./usr/lib/systemd/system/portmatrix.service",
        "./usr/lib/sysusers.d/portmatrix.conf",
        "./usr/lib/tmpfiles.d/portmatrix.conf",
        "./etc/portmatrix/live.toml",
        "./etc/logrotate.d/portmatrix",
        "./usr/share/man/man1/portmatrix.1.gz",
        "./usr/share/man/man1/portmatrix-live.1.gz",
        "./usr/share/bash-completion/completions/portmatrix",
        "./usr/share/zsh/vendor-completions/_portmatrix",
        "./usr/share/fish/vendor_completions.d/portmatrix.fish",
        "./usr/share/doc/portmatrix/deployment.md",
    ] {
        assert!(
            files.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} is not in the package:\n{files}"
        );
    }
    // Nothing is installed enabled, let alone started.
    assert!(!files.contains("wants/"), "{files}");
}

/// The installed command is the one this commit builds.
fn check_command() {
    let installed = "/usr/bin/portmatrix";
    assert_eq!(ok(installed, &["--version"]), ok(BIN, &["--version"]));
    let rules = ok(installed, &["rules", "list"]);
    assert!(rules.lines().count() > 100, "{rules}");
    assert_eq!(rules, ok(BIN, &["rules", "list"]));
    let sample = fixture("sample-contact-center.pcapng");
    let sample = sample.to_str().expect("utf-8 path");
    let args = ["analyze", "-q", "--json", "--flows", sample];
    // The same events (in an order that depends on the workers' timing).
    let sorted = |text: String| -> Vec<String> {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    let events = sorted(ok(installed, &args));
    assert!(events
        .iter()
        .any(|l| l.contains("\"event_type\":\"alert\"")));
    assert!(
        events == sorted(ok(BIN, &args)),
        "the installed binary's events differ"
    );
}

fn check_unit_offline() {
    // Without systemd running: the unit's syntax, its command and its man
    // page (Documentation=) exist, and what its sandbox leaves exposed.
    let verify = run("systemd-analyze", &["verify", UNIT]);
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = run(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            "--threshold=20",
            "--no-pager",
            UNIT,
        ],
    );
    let report = String::from_utf8_lossy(&security.stdout);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .to_string();
    eprintln!("package test: {overall}");
    assert!(security.status.success(), "exposure above 2.0:\n{report}");
    let enabled = run("systemctl", &["is-enabled", "portmatrix.service"]);
    assert_eq!(String::from_utf8_lossy(&enabled.stdout).trim(), "disabled");
}

fn check_user_and_folder() {
    let user = ok("getent", &["passwd", "portmatrix"]);
    let fields: Vec<&str> = user.trim().split(':').collect();
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid < 1000, "not a system user: {user}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{user}");
    let logs = std::fs::metadata("/var/log/portmatrix").expect("the log folder");
    assert_eq!(logs.uid(), uid);
    assert_eq!(
        logs.gid(),
        ok("getent", &["group", "adm"])
            .split(':')
            .nth(2)
            .and_then(|g| g.parse::<u32>().ok())
            .expect("adm")
    );
    assert_eq!(logs.permissions().mode() & 0o7777, 0o2750);
}

/// The installed configuration, as its user reads it, needs only the interface.
fn check_configuration(dir: &Path) {
    let printed = ok(
        "setpriv",
        &[
            "--reuid=portmatrix",
            "--regid=portmatrix",
            "--clear-groups",
            "/usr/bin/portmatrix",
            "live",
            "--config",
            CONFIG,
            "--print-config",
        ],
    );
    for line in [
        "interface = [\"eth0\"]",
        "output = \"/var/log/portmatrix/events.json\"",
        "format = \"json\"",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "no `{line}` in:\n{printed}"
        );
    }
    let back = dir.join("printed.toml");
    std::fs::write(&back, &printed).expect("write");
    let again = ok(
        "/usr/bin/portmatrix",
        &[
            "live",
            "--config",
            back.to_str().expect("utf-8"),
            "--print-config",
        ],
    );
    assert_eq!(again, printed);
}

/// The installed configuration with its `interface` line changed, and
/// nothing else: what a user has to edit.
fn with_interface(name: &str) -> String {
    let installed = std::fs::read_to_string(CONFIG).expect("the installed configuration");
    let edited: Vec<String> = installed
        .lines()
        .map(|l| {
            if l.starts_with("interface = ") {
                format!("interface = [\"{name}\"]")
            } else {
                l.to_string()
            }
        })
        .collect();
    let changed = installed
        .lines()
        .zip(&edited)
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(changed, 1, "one `interface = ` line to edit in {CONFIG}");
    edited.join("\n") + "\n"
}

fn run_the_service(dir: &Path) {
    let Some(lab) = Lab::new("the_package_installs_a_sensor") else {
        return;
    };
    let etc = dir.join("etc-portmatrix");
    std::fs::create_dir_all(&etc).expect("etc");
    let config = etc.join("live.toml");
    std::fs::write(&config, with_interface("pm1")).expect("config");
    let name = format!("pmdeb{}", std::process::id());
    let booted = Booted::boot(&name, &lab.ns, &etc, &dir.join("root"));
    let unit = "portmatrix.service";

    booted.ok(&["systemctl", "start", unit]);
    booted.wait_for("the sensor to capture", || {
        booted
            .journal(unit)
            .contains("capturing on pm1")
            .then_some(())
    });
    // Its own user, the two capabilities and no others, none to gain, and
    // a system call filter.
    let pid = booted.show(unit, &["MainPID"])["MainPID"].clone();
    let status =
        std::fs::read_to_string(booted.path(&format!("/proc/{pid}/status"))).expect("status");
    let field = |name: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let uid = ok("id", &["-u", "portmatrix"]);
    assert!(
        field("Uid").split_whitespace().all(|u| u == uid.trim()),
        "{status}"
    );
    for caps in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        // CAP_NET_ADMIN (12) and CAP_NET_RAW (13).
        assert_eq!(field(caps), "0000000000003000", "{caps}: {status}");
    }
    assert_eq!(field("NoNewPrivs"), "1");
    assert_eq!(field("Seccomp"), "2");

    let sample = fixture("sample-contact-center.pcapng");
    let offline = ok(
        BIN,
        &["analyze", "-q", "--json", sample.to_str().expect("utf-8")],
    );
    let alerts = offline.matches("\"event_type\":\"alert\"").count();
    let packets = ok(
        BIN,
        &["analyze", "-q", "--json", sample.to_str().expect("utf-8")],
    )
    .lines()
    .last()
    .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    .and_then(|v| v["stats"]["packets"].as_u64())
    .expect("packets");
    lab.replay(&sample, &["--multiplier", "20"]);
    let events = booted.path("/var/log/portmatrix/events.json");
    let count_alerts = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .matches("\"event_type\":\"alert\"")
            .count()
    };
    booted.wait_for("the alerts in the events file", || {
        (count_alerts(&events) == alerts).then_some(())
    });

    // logrotate as installed: the file renamed, the next one created for the
    // service's user, and the SIGHUP that makes the service reopen it.
    booted.ok(&[
        "logrotate",
        "--force",
        "--state",
        "/run/logrotate.status",
        "/etc/logrotate.d/portmatrix",
    ]);
    let rotated = booted.path("/var/log/portmatrix/events.json.1");
    assert_eq!(count_alerts(&rotated), alerts);
    let fresh = std::fs::metadata(&events).expect("the new events file");
    assert_eq!(
        (fresh.len(), fresh.permissions().mode() & 0o777),
        (0, 0o640)
    );
    booted.wait_for("the SIGHUP", || {
        booted
            .journal(unit)
            .contains("Sent signal SIGHUP")
            .then_some(())
    });
    booted.ok(&["systemctl", "reload", unit]);
    booted.ok(&["systemctl", "stop", unit]);
    let state = booted.show(unit, &["Result", "ExecMainStatus"]);
    assert_eq!(
        (state["Result"].as_str(), state["ExecMainStatus"].as_str()),
        ("success", "0")
    );
    // The final stats went to the reopened file: nothing was written to
    // the rotated one after the rotation, nothing lost.
    let after = std::fs::read_to_string(&events).expect("events");
    let last: serde_json::Value =
        serde_json::from_str(after.lines().last().unwrap_or("{}")).expect("json");
    assert_eq!(last["event_type"], "stats", "{after}");
    assert_eq!(last["stats"]["packets"], packets, "{after}");
    assert_eq!(count_alerts(&rotated), alerts);

    // A bad configuration is wrong usage (2): reported with its line, and
    // not restarted, as it would only fail again.
    std::fs::write(&config, with_interface("pm1") + "snaplenn = 128\n").expect("config");
    booted.ok(&["systemctl", "start", unit]);
    let failed = booted.wait_for("the start to fail", || {
        let s = booted.show(
            unit,
            &["ActiveState", "SubState", "ExecMainStatus", "NRestarts"],
        );
        (s["ActiveState"] == "failed").then_some(s)
    });
    assert_eq!(
        (
            failed["ExecMainStatus"].as_str(),
            failed["NRestarts"].as_str()
        ),
        ("2", "0")
    );
    assert!(booted
        .journal(unit)
        .contains("unknown top-level key `snaplenn`"));
    booted.ok(&["systemctl", "reset-failed", unit]);
    // An interface that is not there (yet) is a failure to retry.
    std::fs::write(&config, with_interface("pmgone0")).expect("config");
    booted.ok(&["systemctl", "start", unit]);
    let retrying = booted.wait_for("the restart to be planned", || {
        let s = booted.show(unit, &["SubState", "ExecMainStatus"]);
        (s["SubState"] == "auto-restart").then_some(s)
    });
    assert_eq!(retrying["ExecMainStatus"], "1");
    booted.ok(&["systemctl", "stop", unit]);
    eprintln!(
        "package test: the unit ran under a booted systemd ({alerts} alerts, rotated, stopped)"
    );
}
