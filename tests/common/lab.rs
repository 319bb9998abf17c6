//! The live-capture lab: a network namespace of its own holding a veth
//! pair, `portmatrix live` running in it on one end, fixture captures
//! replayed into the other with tcpreplay. The namespace is removed when
//! the lab is dropped, even on failure.
//!
//! Needs root, `ip` (iproute2) and `tcpreplay`. Without them [`Lab::new`]
//! says SKIPPED on stderr; with `PORTMATRIX_LIVE_TESTS=require` (scripts/test
//! sets it when run as root, as in CI) a missing prerequisite is a failure.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A network namespace with the veth pair `pm0` (replay into it) and `pm1`
/// (capture on it). Removed on drop.
pub struct Lab {
    pub ns: String,
}

impl Lab {
    /// The lab, or `None` (with a SKIPPED notice) when this machine cannot host it.
    pub fn new(test: &str) -> Option<Lab> {
        let missing = prerequisites_missing();
        if let Some(why) = missing {
            assert!(
                std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
                "{test}: cannot run the live-capture test: {why}"
            );
            eprintln!("SKIPPED {test}: {why} (run the suite as root to include it)");
            return None;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let ns = format!(
            "pmt-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ok(Command::new("ip").args(["netns", "add", &ns]));
        let lab = Lab { ns };
        lab.ip(&["link", "add", "pm0", "type", "veth", "peer", "name", "pm1"]);
        // No IPv6 autoconfiguration chatter: only the replayed packets cross.
        lab.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        lab.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        lab.ip(&["link", "set", "pm0", "up"]);
        lab.ip(&["link", "set", "pm1", "up"]);
        Some(lab)
    }

    pub fn ip(&self, args: &[&str]) {
        ok(Command::new("ip").args(["-n", &self.ns]).args(args));
    }

    pub fn exec(&self, args: &[&str]) -> Output {
        ok(Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args))
    }

    /// Send `file` into `pm0`, at `speed` (tcpreplay options).
    pub fn replay(&self, file: &Path, speed: &[&str]) {
        let file = file.to_str().expect("utf-8 path");
        let mut args = vec!["tcpreplay", "-q", "-i", "pm0"];
        args.extend_from_slice(speed);
        args.push(file);
        self.exec(&args);
    }

    /// Start `portmatrix live -i pm1 ARGS` in the namespace and wait until it captures.
    pub fn live(&self, args: &[&str]) -> Live {
        let mut argv = vec![BIN, "live", "-i", "pm1"];
        argv.extend_from_slice(args);
        Live::watch(self.command(&argv).spawn().expect("start portmatrix live"))
    }

    /// `argv` to run in the namespace, stdout and stderr piped (for [`Live::watch`]).
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .args(argv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

pub fn prerequisites_missing() -> Option<String> {
    netns_missing(&["ip", "tcpreplay", "setcap", "setpriv"])
}

/// Why a test that makes network namespaces and runs `tools` cannot run
/// here (not root, a tool missing), or `None`.
pub fn netns_missing(tools: &[&str]) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root for network namespaces".into());
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup --test installs it)"
            ));
        }
    }
    None
}

pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running `portmatrix live`: its stdout lines with their arrival time
/// (when stdout was piped), and its stderr.
pub struct Live {
    child: Child,
    lines: Arc<Mutex<Vec<(SystemTime, String)>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Live {
    /// Read what `child` writes and wait until it says it captures.
    pub fn watch(mut child: Child) -> Live {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let e = Arc::clone(&stderr);
        let mut readers = vec![thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = e.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        })];
        if let Some(out) = child.stdout.take() {
            let l = Arc::clone(&lines);
            readers.push(thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    l.lock().expect("lock").push((SystemTime::now(), line));
                }
            }));
        }
        let live = Live {
            child,
            lines,
            stderr,
            readers,
        };
        live.wait_for_stderr("Ctrl-C to stop");
        live
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    pub fn wait_for_stderr(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "portmatrix live never said `{text}`; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, name: &str) {
        ok(Command::new("kill").args(["-s", name, &self.pid()]));
    }

    /// Wait for the process to end (it must, within a bound) and collect everything.
    pub fn finish(mut self) -> Ended {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("portmatrix live did not stop; stderr:\n{}", self.stderr());
            }
            thread::sleep(Duration::from_millis(20));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let lines = std::mem::take(&mut *self.lines.lock().expect("lock"));
        let events = lines
            .iter()
            .map(|(t, l)| {
                (
                    *t,
                    serde_json::from_str(l).expect("one JSON object per line"),
                )
            })
            .collect();
        Ended {
            status,
            events,
            stderr: self.stderr(),
        }
    }

    /// SIGTERM, then [`Live::finish`].
    pub fn stop(self) -> Ended {
        self.signal("TERM");
        self.finish()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Ended {
    pub status: ExitStatus,
    pub events: Vec<(SystemTime, Value)>,
    pub stderr: String,
}

impl Ended {
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.events
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e["event_type"] == t)
            .collect()
    }

    pub fn final_stats(&self) -> &Value {
        let stats = self.of_type("stats");
        &stats.last().expect("a final stats event")["stats"]
    }
}

/// What must be equal between live and offline: a flow event minus its times,
/// ids and end reason (`shutdown` live is `end_of_input` offline).
pub fn flow_identity(e: &Value) -> String {
    let reason = match e["reason"].as_str() {
        Some("shutdown" | "end_of_input") => "open",
        Some(r) => r,
        None => "?",
    };
    format!(
        "{} {}:{} -> {}:{} {} {} pkts {}/{} bytes {}/{} vlan {} {reason}",
        e["proto"],
        e["src_ip"],
        e["src_port"],
        e["dest_ip"],
        e["dest_port"],
        e["verdict"],
        e["direction"],
        e["pkts_toserver"],
        e["pkts_toclient"],
        e["bytes_toserver"],
        e["bytes_toclient"],
        e["vlan"],
    )
}

pub fn offline_flows(file: &Path) -> (BTreeSet<String>, u64) {
    offline_flows_of(&[file.to_path_buf()])
}

/// `analyze --flows` on `files`: the flows' identities and the packet count.
pub fn offline_flows_of(files: &[PathBuf]) -> (BTreeSet<String>, u64) {
    let out = Command::new(BIN)
        .args(["analyze", "-q", "--json", "--flows"])
        .args(files)
        .output()
        .expect("run analyze");
    assert!(out.status.success());
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let flows = events
        .iter()
        .filter(|e| e["event_type"] == "flow")
        .map(flow_identity)
        .collect();
    let packets = events
        .iter()
        .rfind(|e| e["event_type"] == "stats")
        .and_then(|e| e["stats"]["packets"].as_u64())
        .expect("stats");
    (flows, packets)
}

pub fn assert_nothing_dropped(stats: &Value) {
    assert_eq!(stats["queue_drops"]["worker_queue_full"], 0, "{stats}");
    for i in stats["interfaces"].as_array().expect("interfaces") {
        assert_eq!(i["kernel_dropped"], 0, "{stats}");
        assert_eq!(i["interface_dropped"], 0, "{stats}");
    }
}

impl Lab {
    /// Run a command in the namespace, whatever its exit status.
    pub fn exec_status(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .expect("run")
    }
}

pub fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("events file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portmatrix-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl Lab {
    /// Packets the kernel delivered to `dev` in the namespace so far (its RX
    /// counter): what a capture on it was offered.
    pub fn rx_packets(&self, dev: &str) -> u64 {
        let out = ok(Command::new("ip").args(["-n", &self.ns, "-s", "-j", "link", "show", dev]));
        let links: Value = serde_json::from_slice(&out.stdout).expect("ip -j gives JSON");
        links[0]["stats64"]["rx"]["packets"]
            .as_u64()
            .expect("an RX packet counter")
    }
}

/// A server a test started in its lab (rsyslogd, prometheus): stopped by
/// its PID when dropped, and never left running after the test.
pub struct Daemon {
    pub child: Child,
    pub name: &'static str,
}

impl Daemon {
    /// Kill it now (SIGKILL to its PID) and reap it: a receiver that goes away.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Lab {
    /// Bring up the namespace's loopback, for servers the test runs in it.
    pub fn loopback_up(&self) {
        self.ip(&["link", "set", "lo", "up"]);
    }

    /// Start `argv` in the namespace, its output to `log` (`ip netns exec`
    /// execs it, so the child's PID is the server's own).
    pub fn daemon(&self, name: &'static str, argv: &[&str], log: &Path) -> Daemon {
        let out = std::fs::File::create(log).expect("daemon log");
        let err = out.try_clone().expect("daemon log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon { child, name }
    }

    /// GET `url` from inside the namespace (python3's urllib): the body, or
    /// `None` while nothing answers.
    pub fn http_get(&self, url: &str) -> Option<String> {
        let out = self.exec_status(&[
            "python3",
            "-c",
            "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
            url,
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Whether `tool` is on the PATH; with `PORTMATRIX_LIVE_TESTS=require` its
/// absence is a failure, otherwise the test says SKIPPED.
pub fn have_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args([
            "-c",
            &format!("command -v {tool} || test -x /usr/sbin/{tool}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "{test}: `{tool}` is not installed (scripts/setup --test installs it)"
        );
        eprintln!("SKIPPED {test}: `{tool}` is not installed (scripts/setup --test installs it)");
    }
    found
}

/// Wait up to `within` for `check` to give something.
pub fn wait_for<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(t) = check() {
            return Some(t);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(100));
    }
}
