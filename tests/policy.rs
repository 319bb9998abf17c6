//! `portmatrix policy` from the command line: the sample capture and the
//! example site give the rules the README shows; the Windows script is
//! checked for PowerShell syntax by a small parser and against the CSV (the
//! same rules); malformed rules, site and events files give one-line errors,
//! and a site with no system of the matrix writes nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{portmatrix, stderr, work_dir};

const SITE: &str = "rules/site-example.toml";

fn repo(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .display()
        .to_string()
}

/// The sample's events with the example site, written once per test.
fn sample_events(dir: &Path) -> PathBuf {
    let out = portmatrix(&[
        "analyze",
        "-q",
        "--json",
        "--flows",
        "--site",
        &repo(SITE),
        &repo("fixtures/sample-contact-center.pcapng"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join("events.jsonl");
    std::fs::write(&path, &out.stdout).expect("write the events");
    path
}

fn policy(args: &[&str]) -> Output {
    let mut all = vec!["policy", "--site"];
    let site = repo(SITE);
    all.push(&site);
    all.extend_from_slice(args);
    portmatrix(&all)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_sample_s_policy_opens_what_was_used_and_lists_the_rest() {
    let dir = work_dir("policy", "sample");
    let events = sample_events(&dir);
    let out = policy(&[events.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let nft = stdout(&out);
    // Every rule written carries its matrix id and the document's text.
    let rules: Vec<&str> = nft
        .lines()
        .filter(|l| l.contains(" accept comment "))
        .collect();
    assert!(rules.len() > 10, "{nft}");
    for r in &rules {
        assert!(
            r.contains("comment \"2.") || r.contains("comment \"3-"),
            "{r}"
        );
    }
    assert!(nft.contains("# 2.2.2#25 tcp/29373 any -> aacc_server (seen 3 flows"));
    assert!(nft.contains("CCT Client and AAD -> AACC – CCT Server: Listens for requests"));
    // RSM to the two groups the sample's AACC server sent to.
    assert!(nft.contains(
        "ip saddr @aacc_server_v4 ip daddr { 239.255.1.1, 239.255.1.2 } udp dport { 6020"
    ));
    // Internal-only JMX (seen from the CCMA) is never opened; unused rules are to close.
    assert!(!nft.contains("dport 8100 accept"));
    assert!(nft.contains("#   2.2.2#19 tcp/8100: INTERNAL ONLY"));
    assert!(nft.contains("# To close:"));
    assert!(nft.contains("#   2.2.4#2 tcp/443:"));
    assert!(stderr(&out).contains("13 lines allowed, 48 rules to close"));
}

/// A PowerShell single-quoted string at the start of `s`: its value and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut rest = s.strip_prefix('\'')?;
    let mut value = String::new();
    loop {
        let i = rest.find('\'')?;
        value.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        match rest.strip_prefix('\'') {
            Some(more) => {
                value.push('\'');
                rest = more;
            }
            None => return Some((value, rest)),
        }
    }
}

/// A parameter value: a bare word, or quoted strings joined by `, `.
fn value(s: &str) -> Option<(Vec<String>, &str)> {
    if !s.starts_with('\'') {
        let end = s.find(' ').unwrap_or(s.len());
        return Some((vec![s[..end].to_string()], &s[end..]));
    }
    let mut values = Vec::new();
    let mut rest = s;
    loop {
        let (v, after) = quoted(rest)?;
        values.push(v);
        match after.strip_prefix(", ") {
            Some(more) if more.starts_with('\'') => rest = more,
            _ => return Some((values, after)),
        }
    }
}

const PARAMETERS: [&str; 10] = [
    "Name",
    "DisplayName",
    "Group",
    "Direction",
    "Action",
    "Protocol",
    "LocalPort",
    "LocalAddress",
    "RemoteAddress",
    "Description",
];

/// One `New-NetFirewallRule … | Out-Null` line: its parameters, or why not.
fn new_rule(line: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut rest = line
        .trim()
        .strip_prefix("New-NetFirewallRule ")
        .and_then(|l| l.strip_suffix(" | Out-Null"))
        .ok_or("not a New-NetFirewallRule … | Out-Null line")?;
    let mut params = BTreeMap::new();
    while !rest.is_empty() {
        let name_end = rest.find(' ').ok_or("a parameter without a value")?;
        let name = rest[..name_end]
            .strip_prefix('-')
            .ok_or_else(|| format!("expected -Parameter at `{rest}`"))?;
        if !PARAMETERS.contains(&name) {
            return Err(format!("unknown parameter -{name}"));
        }
        let (v, after) = value(&rest[name_end + 1..]).ok_or("an unclosed quote")?;
        if params.insert(name.to_string(), v).is_some() {
            return Err(format!("-{name} twice"));
        }
        rest = after.strip_prefix(' ').unwrap_or(after);
    }
    Ok(params)
}

/// A CSV file (RFC 4180) as rows of cells.
fn csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell, mut quoted_cell) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted_cell) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', _) => quoted_cell = !quoted_cell,
            (',', false) => row.push(std::mem::take(&mut cell)),
            ('\r', false) => {}
            ('\n', false) => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => cell.push(c),
        }
    }
    rows
}

fn check_address(a: &str) -> bool {
    a == "Any"
        || a.split_once('/')
            .map_or(a, |(ip, _)| ip)
            .parse::<std::net::IpAddr>()
            .is_ok()
}

#[test]
fn the_windows_script_is_powershell_and_holds_the_csv_s_rules() {
    let dir = work_dir("policy", "windows");
    let events = sample_events(&dir);
    // Without and with the events: all the rules, and only the used ones.
    for with_events in [false, true] {
        let ev = events.to_str().expect("utf-8");
        let extra: &[&str] = if with_events { &[ev] } else { &[] };
        let ps = policy(&[extra, &["--format", "windows"]].concat());
        let table = policy(&[extra, &["--format", "csv"]].concat());
        assert!(
            ps.status.success() && table.status.success(),
            "{}",
            stderr(&ps)
        );
        let (ps, table) = (stdout(&ps), stdout(&table));

        let mut rules = Vec::new();
        let mut depth = 0;
        let mut in_param = false;
        for (n, line) in ps.lines().enumerate() {
            let t = line.trim();
            let ok = if t.is_empty() || t.starts_with('#') {
                true
            } else if t == "param(" {
                in_param = true;
                true
            } else if in_param {
                if t == ")" {
                    in_param = false;
                }
                t == ")"
                    || t == "[Parameter(Mandatory = $true)]"
                    || t == "[string[]] $System"
                    || t.starts_with("[ValidateSet('")
            } else if t == "$ErrorActionPreference = 'Stop'"
                || t == "Remove-NetFirewallRule -Group 'portmatrix' -ErrorAction SilentlyContinue"
            {
                depth == 0
            } else if let Some(cond) = t.strip_prefix("if ($System -contains ") {
                depth += 1;
                quoted(cond).is_some_and(|(system, rest)| {
                    ["aacc_server", "cct", "ccma", "ccmm"].contains(&system.as_str())
                        && rest == ") {"
                })
            } else if t == "}" {
                depth -= 1;
                depth >= 0
            } else {
                match new_rule(t) {
                    Ok(p) => {
                        rules.push(p);
                        depth == 1
                    }
                    Err(e) => panic!("line {}: {e}: {line}", n + 1),
                }
            };
            assert!(ok, "line {}: not what the script holds: {line}", n + 1);
        }
        assert_eq!(depth, 0, "unbalanced braces");
        assert!(!rules.is_empty());

        // The CSV's allowed rows, by key.
        let rows = csv(&table);
        let header = &rows[0];
        let col = |name: &str| header.iter().position(|h| h == name).expect(name);
        let allow: BTreeMap<(String, String, String, String), &Vec<String>> = rows[1..]
            .iter()
            .filter(|r| r[col("action")] == "allow")
            .map(|r| {
                (
                    (
                        r[col("rule_id")].clone(),
                        r[col("transport")].clone(),
                        r[col("client_system")].clone(),
                        r[col("listener_system")].clone(),
                    ),
                    r,
                )
            })
            .collect();
        let mut covered = BTreeSet::new();
        for p in &rules {
            let one = |k: &str| {
                p.get(k)
                    .and_then(|v| v.first())
                    .cloned()
                    .unwrap_or_default()
            };
            assert_eq!(one("Group"), "portmatrix");
            assert_eq!(one("Direction"), "Inbound");
            assert_eq!(one("Action"), "Allow");
            let name = one("Name");
            let parts: Vec<&str> = name.split(':').collect();
            assert!(parts.len() >= 5 && parts[0] == "portmatrix", "{name}");
            let key = (
                parts[1].to_string(),
                parts[2].to_string(),
                parts[3].to_string(),
                parts[4].to_string(),
            );
            let row = allow
                .get(&key)
                .unwrap_or_else(|| panic!("{name}: no such allowed row in the CSV"));
            covered.insert(key.clone());
            assert_eq!(one("Protocol").to_lowercase(), row[col("transport")]);
            assert_eq!(p["LocalPort"].join(" "), row[col("ports")], "{name}");
            let remote = p["RemoteAddress"].join(" ");
            let csv_remote = &row[col("client_addresses")];
            assert!(
                remote == *csv_remote || (remote == "Any" && csv_remote == "any"),
                "{name}: {remote} vs {csv_remote}"
            );
            assert_eq!(p["LocalAddress"].join(" "), row[col("listener_addresses")]);
            for a in p["RemoteAddress"].iter().chain(&p["LocalAddress"]) {
                assert!(check_address(a), "{name}: address {a}");
            }
            for port in &p["LocalPort"] {
                let ok = port
                    .split_once('-')
                    .map_or(port.parse::<u16>().is_ok(), |(a, b)| {
                        a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok()
                    });
                assert!(ok, "{name}: port {port}");
            }
            assert!(one("Description").starts_with(&format!("{}: ", key.0)));
        }
        // Every allowed row with a Windows listener has its rule.
        for (key, _) in allow
            .iter()
            .filter(|(k, _)| ["aacc_server", "cct", "ccma", "ccmm"].contains(&k.3.as_str()))
        {
            assert!(covered.contains(key), "{key:?} has no Windows rule");
        }
        eprintln!(
            "{} Windows rules, all of them among the CSV's {} allowed rows (events: {with_events})",
            rules.len(),
            allow.len()
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn bad_inputs_give_one_line_errors_and_no_empty_policy() {
    let dir = work_dir("policy", "errors");
    let output = dir.join("policy.nft");
    let out_arg = output.display().to_string();

    // A site whose only system no rule names: said, and nothing written.
    let lonely = write(
        &dir,
        "lonely.toml",
        "schema = 1\n[systems]\naes = [\"10.0.0.1\"]\n",
    );
    let o = portmatrix(&["policy", "--site", &lonely, "-o", &out_arg]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("names no system that a rule of the matrix allows"),
        "{e}"
    );
    assert!(e.contains("lonely.toml") && e.contains("aes"), "{e}");
    assert!(!output.exists());

    // A malformed site: the file and line.
    let bad = write(
        &dir,
        "bad.toml",
        "schema = 1\n[systems]\nccma = [\"10.10.1.999\"]\n",
    );
    let o = portmatrix(&["policy", "--site", &bad]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("bad.toml:3"), "{e}");
    assert!(o.stdout.is_empty());

    // A malformed rules file.
    let rules = write(&dir, "rules.toml", "schema = 1\n[[rule]]\nid = 7\n");
    let o = portmatrix(&["policy", "--site", &repo(SITE), "--rules", &rules]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("rules.toml:"), "{}", stderr(&o));

    // Malformed event lines: named, skipped, the policy written from the rest.
    let events = std::fs::read_to_string(sample_events(&dir)).expect("events");
    let damaged = format!("{{not json\n{events}{{\"event_type\":\"flow\"}}\n");
    let damaged = write(&dir, "damaged.jsonl", &damaged);
    let o = portmatrix(&["policy", "--site", &repo(SITE), &damaged, "-o", &out_arg]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("damaged.jsonl:1:"), "{e}");
    assert!(e.contains("2 malformed event line(s) skipped"), "{e}");
    let written = std::fs::read_to_string(&output).expect("the policy is written");
    assert!(written.contains("2.2.2#25"));

    // Alerts only: no documented flows to make a policy of.
    let alerts: String = events
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let alerts = write(&dir, "alerts.jsonl", &alerts);
    let o = portmatrix(&["policy", "--site", &repo(SITE), &alerts]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--json --flows"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());

    // A missing events file.
    let o = portmatrix(&["policy", "--site", &repo(SITE), "/nonexistent/events.jsonl"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot open events file /nonexistent/events.jsonl"));

    // The unreadable file, then why there is no policy: a line each.
    assert_eq!(stderr(&o).lines().count(), 2, "{}", stderr(&o));
}
