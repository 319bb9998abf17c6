//! A booted systemd to run the installed unit under, where the machine's own
//! init is not systemd: `systemd-nspawn --boot` of this machine's /usr and
//! /etc (read-only; /var a fresh tmpfs, so tmpfiles.d creates the log folder
//! as at boot), inside the test's network namespace (its veth pair is all
//! the container sees). Commands run in it through `nsenter`. Shut down, and
//! killed if it does not go, when dropped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct Booted {
    nspawn: Child,
    /// The container's PID 1 (its systemd), as this machine numbers it.
    init: u32,
}

impl Booted {
    /// Boot a container named `name` in the network namespace `netns`, with
    /// `etc_portmatrix` (writable: the test edits the configuration) as its
    /// /etc/portmatrix. `root` is an empty folder to build its root in.
    pub fn boot(name: &str, netns: &str, etc_portmatrix: &Path, root: &Path) -> Booted {
        // The root holds only mount points and the usr-merge links; nspawn
        // checks for os-release before it binds /usr over it.
        for dir in [
            "usr/lib", "etc", "var", "dev", "proc", "sys", "run", "tmp", "root",
        ] {
            std::fs::create_dir_all(root.join(dir)).expect("container root");
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/sbin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            let _ = std::fs::remove_file(root.join(link));
            std::os::unix::fs::symlink(to, root.join(link)).expect("usr-merge link");
        }
        std::fs::copy("/usr/lib/os-release", root.join("usr/lib/os-release")).expect("os-release");
        let log = std::fs::File::create(root.with_extension("console.log")).expect("console log");
        let nspawn = Command::new("systemd-nspawn")
            .arg("--quiet")
            .arg(format!("--directory={}", root.display()))
            .args(["--bind-ro=/usr", "--bind-ro=/etc", "--tmpfs=/var"])
            .arg(format!(
                "--bind={}:/etc/portmatrix",
                etc_portmatrix.display()
            ))
            .arg(format!("--network-namespace-path=/run/netns/{netns}"))
            // nspawn keeps CAP_NET_ADMIN from a container without its own
            // network; the unit must get both of its capabilities.
            .arg("--capability=CAP_NET_ADMIN")
            .args(["--register=no", "--keep-unit", "--boot"])
            .arg(format!("--machine={name}"))
            // Up to basic.target (the journal, timers, sockets): none of the
            // services this machine enables for multi-user.target.
            .args(["--", "systemd.unit=basic.target"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start systemd-nspawn");
        let mut booted = Booted { nspawn, init: 0 };
        let deadline = Instant::now() + Duration::from_secs(60);
        booted.init = loop {
            if let Some(pid) = descendant_named(booted.nspawn.id(), "systemd") {
                break pid;
            }
            if let Ok(Some(status)) = booted.nspawn.try_wait() {
                panic!("systemd-nspawn ended ({status}) before booting; see its console log");
            }
            assert!(Instant::now() < deadline, "the container did not start");
            thread::sleep(Duration::from_millis(100));
        };
        booted.wait_for("the container to boot", || {
            let state = booted.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout);
            matches!(state.trim(), "running" | "degraded").then_some(())
        });
        booted
    }

    /// `argv` run inside, whatever its exit status.
    pub fn run(&self, argv: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-a"])
            .args(argv)
            .output()
            .expect("run nsenter")
    }

    /// `argv` run inside, which must succeed: its stdout.
    pub fn ok(&self, argv: &[&str]) -> String {
        let out = self.run(argv);
        assert!(
            out.status.success(),
            "{argv:?} in the container failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A path inside the container, as this machine reaches it.
    pub fn path(&self, inside: &str) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.init)).join(inside.trim_start_matches('/'))
    }

    /// Properties of a unit (`systemctl show`).
    pub fn show(&self, unit: &str, properties: &[&str]) -> HashMap<String, String> {
        let mut argv = vec!["systemctl", "show", unit];
        let joined = properties.join(",");
        argv.extend(["-p", joined.as_str()]);
        self.ok(&argv)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The unit's journal.
    pub fn journal(&self, unit: &str) -> String {
        self.ok(&["journalctl", "--no-pager", "-o", "cat", "-u", unit])
    }

    /// Polls `done` until it gives a value (within 30 s, or the test fails).
    pub fn wait_for<T>(&self, what: &str, mut done: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = done() {
                return v;
            }
            assert!(Instant::now() < deadline, "waited in vain for {what}");
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Booted {
    fn drop(&mut self) {
        // SIGTERM makes nspawn shut the container down cleanly.
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        // Killing its PID 1 kills everything in the container's PID namespace.
        if self.init != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.init.to_string()])
                .status();
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

/// The first process below `pid` whose name is `name`, breadth first.
fn descendant_named(pid: u32, name: &str) -> Option<u32> {
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let children =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for child in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if comm.trim() == name {
                return Some(child);
            }
            queue.insert(0, child);
        }
    }
    None
}
