//! The nftables policy, checked against the real `nft` (Debian's nftables)
//! in a router namespace between two veth pairs: a generated site capture
//! (scripts/gen-traffic with its --site and --truth) is analysed, `portmatrix
//! policy` makes a ruleset of its events, and every flow of the capture is
//! sent again through the router with real sockets: every documented flow
//! must pass, every undocumented, wrong-transport, internal-only and
//! role-mismatch flow must be dropped. A run without the ruleset first shows
//! that every flow does pass when nothing is filtered, so a drop is the
//! ruleset's. Multicast (RSM) is checked with the host ruleset (`--nft-hook
//! input`) on the receiver: from the AACC server to the groups it passes,
//! from another host or to another port it does not.
//!
//! Traffic stays inside the three namespaces the test creates (client,
//! router, server), which are removed at the end, even on failure. Needs
//! root, iproute2, nftables and python3 (scripts/setup --test installs them);
//! without them the test says SKIPPED, unless PORTMATRIX_LIVE_TESTS=require.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde::Deserialize;

mod common;
use common::lab::netns_missing;

const BIN: &str = env!("CARGO_BIN_EXE_portmatrix");

/// Waits this long for a flow's answer before calling it dropped.
const PATIENCE_SECS: &str = "2.0";

/// A flow of the generator's truth file.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Truth {
    proto: String,
    src_ip: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    dest_port: u16,
    verdict: Option<String>,
    site_verdict: Option<String>,
    mid_stream: bool,
}

/// What is sent through the firewall: the flow without its client port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Probe {
    proto: String,
    client: IpAddr,
    server: IpAddr,
    port: u16,
    verdict: String,
}

fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Three namespaces: clients -- router -- servers, removed on drop.
struct Net {
    c: String,
    r: String,
    s: String,
}

impl Net {
    fn new() -> Net {
        let base = format!("pmpol-{}", std::process::id());
        let net = Net {
            c: format!("{base}-c"),
            r: format!("{base}-r"),
            s: format!("{base}-s"),
        };
        for ns in [&net.c, &net.r, &net.s] {
            ok(Command::new("ip").args(["netns", "add", ns]));
            // Before any link exists, so no address waits on duplicate detection.
            net.sysctl(ns, "net.ipv6.conf.all.accept_dad=0");
            net.sysctl(ns, "net.ipv6.conf.default.accept_dad=0");
            net.sysctl(ns, "net.ipv4.conf.all.rp_filter=0");
            net.sysctl(ns, "net.ipv4.conf.default.rp_filter=0");
        }
        net.ip(&net.r, "link add rc type veth peer name c0");
        net.ip(&net.r, &format!("link set c0 netns {}", net.c));
        net.ip(&net.r, "link add rs type veth peer name s0");
        net.ip(&net.r, &format!("link set s0 netns {}", net.s));
        for (ns, dev) in [
            (&net.c, "c0"),
            (&net.s, "s0"),
            (&net.r, "rc"),
            (&net.r, "rs"),
        ] {
            net.ip(ns, &format!("link set {dev} up"));
            net.ip(ns, "link set lo up");
        }
        net.sysctl(&net.r, "net.ipv4.ip_forward=1");
        net.sysctl(&net.r, "net.ipv6.conf.all.forwarding=1");
        net.links();
        net
    }

    /// The link addresses and default routes (flushed addresses come back).
    fn links(&self) {
        for (ns, dev, v4, v6) in [
            (&self.c, "c0", "192.0.2.2/24", "2001:db8:c::2/64"),
            (&self.r, "rc", "192.0.2.1/24", "2001:db8:c::1/64"),
            (&self.r, "rs", "198.51.100.1/24", "2001:db8:5::1/64"),
            (&self.s, "s0", "198.51.100.2/24", "2001:db8:5::2/64"),
        ] {
            self.ip(ns, &format!("addr replace {v4} dev {dev}"));
            self.ip(ns, &format!("-6 addr replace {v6} dev {dev} nodad"));
        }
        self.ip(&self.c, "route replace default via 192.0.2.1");
        self.ip(&self.c, "-6 route replace default via 2001:db8:c::1");
        self.ip(&self.s, "route replace default via 198.51.100.1");
        self.ip(&self.s, "-6 route replace default via 2001:db8:5::1");
    }

    fn ip(&self, ns: &str, args: &str) {
        ok(Command::new("ip")
            .args(["-n", ns])
            .args(args.split_whitespace()));
    }

    /// Many `ip` commands at once (`ip -batch`).
    fn batch(&self, ns: &str, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let mut child = Command::new("ip")
            .args(["-n", ns, "-batch", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip -batch");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(lines.join("\n").as_bytes())
            .expect("write the batch");
        let out = child.wait_with_output().expect("ip -batch ends");
        assert!(
            out.status.success(),
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn sysctl(&self, ns: &str, setting: &str) {
        ok(Command::new("ip").args(["netns", "exec", ns, "sysctl", "-qw", setting]));
    }

    fn exec(&self, ns: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]);
        cmd
    }

    /// Load `ruleset` into `ns`'s nftables, or empty it (`None`).
    fn nft(&self, ns: &str, ruleset: Option<&Path>) {
        ok(self.exec(ns).args(["nft", "flush", "ruleset"]));
        if let Some(file) = ruleset {
            ok(self.exec(ns).arg("nft").arg("-f").arg(file));
        }
    }

    /// Put `clients` on the client side and `servers` on the server side,
    /// with the router's routes to each.
    fn place(&self, clients: &BTreeSet<IpAddr>, servers: &BTreeSet<IpAddr>) {
        for (ns, dev) in [(&self.c, "c0"), (&self.s, "s0")] {
            self.ip(ns, &format!("addr flush dev {dev}"));
        }
        self.ip(&self.r, "-4 route flush proto static");
        self.ip(&self.r, "-6 route flush proto static");
        self.links();
        let mut routes = Vec::new();
        for (ns, dev, via, hosts) in [
            (&self.c, "c0", "rc", clients),
            (&self.s, "s0", "rs", servers),
        ] {
            let adds: Vec<String> = hosts
                .iter()
                .map(|ip| match ip {
                    IpAddr::V4(_) => format!("addr add {ip}/32 dev {dev}"),
                    IpAddr::V6(_) => format!("addr add {ip}/128 dev {dev} nodad"),
                })
                .collect();
            self.batch(ns, &adds);
            routes.extend(hosts.iter().map(|ip| match ip {
                IpAddr::V4(_) => format!("route add {ip}/32 dev {via} proto static"),
                IpAddr::V6(_) => format!("route add {ip}/128 dev {via} proto static"),
            }));
        }
        self.batch(&self.r, &routes);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.c, &self.r, &self.s] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A helper script running in a namespace, ended (by its id) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The socket ends, in Python (tests/common/firewall_probe.py).
fn probe_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/firewall_probe.py")
}

/// Start the probe's `script` (server, receiver) with `args` in `ns` and
/// wait for its "ready".
fn start(net: &Net, ns: &str, script: &str, args: &[&str]) -> Running {
    let mut child = net
        .exec(ns)
        .arg("python3")
        .arg(probe_script())
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("read ready");
    assert_eq!(line.trim(), "ready", "{script}");
    Running(child)
}

/// Send `probes` from the client side and return each one's outcome.
fn send(net: &Net, dir: &Path, probes: &[&Probe]) -> Vec<String> {
    let listen: BTreeSet<(u8, &str, String, u16)> = probes
        .iter()
        .map(|p| {
            let addr = match (p.proto.as_str(), p.server) {
                ("UDP", ip) => ip.to_string(),
                (_, IpAddr::V4(_)) => "0.0.0.0".to_string(),
                (_, IpAddr::V6(_)) => "::".to_string(),
            };
            (family(p.server), p.proto.as_str(), addr, p.port)
        })
        .collect();
    let ports = dir.join("listen.json");
    std::fs::write(&ports, serde_json::to_vec(&listen).expect("json")).expect("write");
    let _server = start(net, &net.s, "server", &[ports.to_str().expect("utf-8")]);
    let flows: Vec<(u8, &str, String, String, u16)> = probes
        .iter()
        .map(|p| {
            (
                family(p.server),
                p.proto.as_str(),
                p.client.to_string(),
                p.server.to_string(),
                p.port,
            )
        })
        .collect();
    let mut client = net
        .exec(&net.c)
        .arg("python3")
        .arg(probe_script())
        .args(["client", PATIENCE_SECS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    client
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(&flows).expect("json"))
        .expect("send the flows");
    let out = client.wait_with_output().expect("the client ends");
    assert!(
        out.status.success(),
        "client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client's results")
}

fn family(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        4
    } else {
        6
    }
}

/// Every probe through the router in rounds where no address is both a
/// client and a server; per probe, whether it passed.
fn through_router(net: &Net, dir: &Path, probes: &[Probe]) -> BTreeMap<Probe, bool> {
    let mut left: Vec<&Probe> = probes.iter().collect();
    let mut outcome = BTreeMap::new();
    while !left.is_empty() {
        let (mut clients, mut servers) = (BTreeSet::new(), BTreeSet::new());
        let (mut round, mut later) = (Vec::new(), Vec::new());
        for p in left {
            if servers.contains(&p.client) || clients.contains(&p.server) {
                later.push(p);
            } else {
                clients.insert(p.client);
                servers.insert(p.server);
                round.push(p);
            }
        }
        net.place(&clients, &servers);
        let results = send(net, dir, &round);
        for (p, r) in round.iter().zip(&results) {
            assert!(
                r == "passed" || r == "timeout",
                "{p:?}: {r} (the server listens on every port sent to)"
            );
            outcome.insert((*p).clone(), r == "passed");
        }
        left = later;
    }
    outcome
}

fn portmatrix(args: &[&str]) -> Output {
    ok(Command::new(BIN).args(args))
}

fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portmatrix-policy-nft-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn the_nftables_policy_lets_through_exactly_the_documented_flows() {
    if let Some(why) = netns_missing(&["ip", "nft", "python3"]) {
        assert!(
            std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
            "cannot run the nftables test: {why}"
        );
        eprintln!("SKIPPED the nftables policy test: {why}");
        return;
    }
    let dir = work_dir();
    let (capture, truth, site, events) = (
        dir.join("site.pcap"),
        dir.join("truth.jsonl"),
        dir.join("site.toml"),
        dir.join("events.jsonl"),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-traffic");
    ok(Command::new("python3")
        .arg(script)
        .arg("-o")
        .arg(&capture)
        .args(["--packets", "20000", "--seed", "3", "--truth"])
        .arg(&truth)
        .arg("--site")
        .arg(&site));
    let site_arg = site.to_str().expect("utf-8");
    let out = portmatrix(&[
        "analyze",
        "-q",
        "--json",
        "--flows",
        "--site",
        site_arg,
        capture.to_str().expect("utf-8"),
    ]);
    std::fs::write(&events, &out.stdout).expect("write the events");
    let events_arg = events.to_str().expect("utf-8");
    let (forward, input) = (dir.join("forward.nft"), dir.join("input.nft"));
    for (hook, file) in [("forward", &forward), ("input", &input)] {
        portmatrix(&[
            "policy",
            "--site",
            site_arg,
            events_arg,
            "--nft-hook",
            hook,
            "-o",
            file.to_str().expect("utf-8"),
        ]);
    }

    // The flows of the capture, each (client, listener, transport, port) once.
    let text = std::fs::read_to_string(&truth).expect("truth");
    let mut probes = BTreeSet::new();
    let mut multicast = BTreeSet::new();
    for line in text.lines() {
        let t: Truth = serde_json::from_str(line).expect("a truth line");
        // Scan probes have no intended verdict; they are the scanner's.
        let Some(verdict) = t.site_verdict else {
            continue;
        };
        if t.dest_ip.is_multicast() {
            multicast.insert((t.src_ip, t.dest_ip, t.dest_port));
            continue;
        }
        probes.insert(Probe {
            proto: t.proto,
            client: t.src_ip,
            server: t.dest_ip,
            port: t.dest_port,
            verdict,
        });
    }
    let probes: Vec<Probe> = probes.into_iter().collect();
    let mut per_verdict: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &probes {
        *per_verdict.entry(p.verdict.as_str()).or_default() += 1;
    }
    for v in [
        "documented",
        "undocumented",
        "wrong_transport",
        "internal_only",
    ] {
        assert!(
            per_verdict.get(v).is_some_and(|&n| n > 0),
            "no {v} flow: {per_verdict:?}"
        );
    }

    let net = Net::new();
    // Without a ruleset every flow passes: the harness reaches every listener.
    net.nft(&net.r, None);
    let open = through_router(&net, &dir, &probes);
    let blocked: Vec<&Probe> = open.iter().filter(|(_, &p)| !p).map(|(p, _)| p).collect();
    assert!(
        blocked.is_empty(),
        "without a ruleset these did not pass: {blocked:?}"
    );

    // With the policy on the router.
    net.nft(&net.r, Some(&forward));
    let outcome = through_router(&net, &dir, &probes);
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (p, passed) in &outcome {
        let c = counts.entry(p.verdict.as_str()).or_default();
        c.0 += 1;
        c.1 += usize::from(*passed);
        if *passed != (p.verdict == "documented") {
            wrong.push(format!("{p:?} passed: {passed}"));
        }
    }
    let summary: Vec<String> = counts
        .iter()
        .map(|(v, (n, passed))| format!("{v}: {passed} of {n} passed"))
        .collect();
    eprintln!(
        "nftables forward policy, {} distinct flows of the capture: {}",
        outcome.len(),
        summary.join("; ")
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Multicast with the host ruleset on the receiver: the RSM groups from
    // the AACC server pass; from the CCMA, or to a port of no rule, not.
    assert!(!multicast.is_empty(), "the capture has RSM multicast");
    net.nft(&net.r, None);
    net.place(&BTreeSet::new(), &BTreeSet::new());
    let senders: BTreeSet<IpAddr> = multicast.iter().map(|m| m.0).collect();
    let stranger: IpAddr = "10.10.1.11".parse().expect("the CCMA");
    for ip in senders.iter().chain([&stranger]) {
        net.ip(&net.r, &format!("addr add {ip}/32 dev rs"));
    }
    net.ip(&net.r, "route replace 224.0.0.0/4 dev rs");
    net.nft(&net.s, Some(&input));
    let mut sends = Vec::new();
    let mut joins = BTreeSet::new();
    for &(src, group, port) in &multicast {
        joins.insert((group.to_string(), port));
        joins.insert((group.to_string(), port + 1));
        sends.push((src.to_string(), group.to_string(), port, true));
        sends.push((stranger.to_string(), group.to_string(), port, false));
        sends.push((src.to_string(), group.to_string(), port + 1, false));
    }
    let joins_file = dir.join("joins.json");
    std::fs::write(&joins_file, serde_json::to_vec(&joins).expect("json")).expect("write");
    let mut receiver = start(
        &net,
        &net.s,
        "receiver",
        &[joins_file.to_str().expect("utf-8"), "s0"],
    );
    let list: Vec<(&str, &str, u16)> = sends
        .iter()
        .map(|(s, g, p, _)| (s.as_str(), g.as_str(), *p))
        .collect();
    let mut sender = net
        .exec(&net.r)
        .arg("python3")
        .arg(probe_script())
        .arg("sender")
        .stdin(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    sender
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(&list).expect("json"))
        .expect("send the list");
    assert!(sender.wait().expect("the sender ends").success());
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(receiver.0.stdin.take());
    let mut line = String::new();
    BufReader::new(receiver.0.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("the counts");
    let got: BTreeMap<String, u64> = serde_json::from_str(&line).expect("counts");
    let (mut allowed, mut dropped) = ((0, 0), (0, 0));
    let mut wrong = Vec::new();
    for (src, group, port, should) in &sends {
        let passed = got.contains_key(&format!("{src} {group} {port}"));
        let tally = if *should { &mut allowed } else { &mut dropped };
        tally.0 += 1;
        tally.1 += usize::from(passed);
        if passed != *should {
            wrong.push(format!("{src} -> {group}:{port} passed: {passed}"));
        }
    }
    eprintln!(
        "nftables input policy, multicast: documented {} of {} passed; other sender or port {} of {} passed",
        allowed.1, allowed.0, dropped.1, dropped.0
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
