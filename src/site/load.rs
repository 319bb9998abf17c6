//! Site file (TOML) -> validated [`Site`], reporting every error at once with
//! its line and column, like the rules loader.

use std::collections::HashSet;
use std::ops::{ControlFlow, Range};
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

use super::exception::{parse_until, Exception};
use super::lookup::{IpNet, RoleEntry, RoleTable};
use super::Site;
use crate::config_file::{self, ConfigError, FileKind, Problem, Problems};
use crate::matrix::parse_severities;
use crate::matrix::{PortSpec, System, SystemSet};
use crate::transport::Transport;
use crate::verdict::Verdict;

/// Addresses and networks in the inventory, all systems together.
pub const MAX_ADDRESSES: usize = 100_000;
pub const MAX_EXCEPTIONS: usize = 10_000;
/// Networks, ports or VLANs in one list.
pub const MAX_LIST: usize = 4_096;

/// Read and validate a site file.
pub fn read_site_file(path: &Path) -> Result<Site, ConfigError> {
    let text = config_file::read(path, FileKind::Site)?;
    parse_site(&path.display().to_string(), &text).map_err(|problems| ConfigError::Invalid {
        kind: FileKind::Site,
        problems,
    })
}

/// Parse and validate a site file's text; `origin` names it in errors.
pub fn parse_site(origin: &str, text: &str) -> Result<Site, Vec<Problem>> {
    let mut p = Problems::new(origin, text);
    let Some(root) = config_file::parse(FileKind::Site, text, &mut p) else {
        return Err(p.into_list());
    };
    let mut entries: Vec<RoleEntry> = Vec::new();
    let mut severities = Vec::new();
    let mut exceptions: Vec<Exception> = Vec::new();
    let walked = config_file::walk_top_level(
        root,
        &["systems", "system", "severity", "exception"],
        &mut p,
        |key, value, p| {
            let span = value.span();
            match key {
                "systems" => systems_table(value, p, &mut entries),
                "system" => {
                    for v in config_file::array_of_tables(value, "system", p) {
                        system_entry(v, p, &mut entries);
                    }
                }
                "severity" => parse_severities(value, p, &mut severities),
                _ => {
                    for v in config_file::array_of_tables(value, "exception", p) {
                        let n = exceptions.len() + 1;
                        if let Some(e) = exception_entry(v, n, p) {
                            exceptions.push(e);
                        }
                    }
                }
            }
            if entries.len() > MAX_ADDRESSES || exceptions.len() > MAX_EXCEPTIONS {
                p.push(
                    span,
                    None,
                    None,
                    format!("at most {MAX_ADDRESSES} addresses and {MAX_EXCEPTIONS} exceptions per site file"),
                );
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    );
    if walked.is_break() {
        return Err(p.into_list());
    }
    let mut ids = HashSet::new();
    for e in &exceptions {
        if !ids.insert(e.id.as_str()) {
            p.push_at(
                e.at,
                Some(&format!("exception \"{}\"", e.id)),
                Some("id"),
                "duplicate exception id; ids must be unique".into(),
            );
        }
    }
    let roles = match RoleTable::build(&entries) {
        Ok(t) => Some(t),
        Err(_) => {
            p.push(
                0..0,
                None,
                Some("system"),
                "too many distinct combinations of systems".into(),
            );
            None
        }
    };
    match roles {
        Some(roles) => p.into_result(Site {
            origin: origin.to_string(),
            roles,
            severities,
            exceptions,
        }),
        None => Err(p.into_list()),
    }
}

/// `[systems]`: `aacc_server = ["10.10.1.10", "fd00::10"]`, one key per system.
fn systems_table(value: Spanned<DeValue<'_>>, p: &mut Problems<'_>, out: &mut Vec<RoleEntry>) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        p.push(
            span,
            None,
            Some("systems"),
            "expected a table such as `[systems]` with `aacc_server = [\"10.10.1.10\"]`".into(),
        );
        return;
    };
    for (key, list) in table {
        let name = key.get_ref().as_ref();
        let item = format!("systems.{name}");
        let Some(roles) = system_roles(name, key.span(), &item, p) else {
            continue;
        };
        match Vec::<Spanned<String>>::deserialize(ValueDeserializer::from(list)) {
            Ok(addresses) => {
                for net in networks(&addresses, &item, "addresses", p) {
                    out.push(RoleEntry {
                        net,
                        roles,
                        vlans: Vec::new(),
                    });
                }
            }
            Err(e) => p.push(
                e.span().unwrap_or(key.span()),
                Some(&item),
                None,
                format!("expected a list of addresses: {}", e.message()),
            ),
        }
    }
}

/// The one system `name` stands for, or a located problem.
fn system_roles(
    name: &str,
    span: Range<usize>,
    item: &str,
    p: &mut Problems<'_>,
) -> Option<SystemSet> {
    match System::parse(name) {
        Some(s) => Some(SystemSet::of([s])),
        None => {
            let message = if name == crate::matrix::ANY {
                "`any` is not a system a host can have; name the host's system".to_string()
            } else {
                crate::matrix::unknown_system_message(name)
            };
            p.push(span, Some(item), None, message);
            None
        }
    }
}

/// A `[[system]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemSpec {
    name: Spanned<String>,
    addresses: Spanned<Vec<Spanned<String>>>,
    vlans: Option<Spanned<Vec<Spanned<i64>>>>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn system_entry(value: Spanned<DeValue<'_>>, p: &mut Problems<'_>, out: &mut Vec<RoleEntry>) {
    let Some(spec) = config_file::deserialize::<SystemSpec>(value, Some("[[system]]"), p) else {
        return;
    };
    let item = format!("system \"{}\"", spec.name.get_ref());
    let Some(roles) = system_roles(spec.name.get_ref(), spec.name.span(), &item, p) else {
        return;
    };
    if spec.addresses.get_ref().is_empty() {
        p.push(
            spec.addresses.span(),
            Some(&item),
            Some("addresses"),
            "at least one address or network is needed".into(),
        );
    }
    let mut vlans = Vec::new();
    if let Some(list) = spec.vlans {
        if list.get_ref().is_empty() || list.get_ref().len() > MAX_LIST {
            p.push(
                list.span(),
                Some(&item),
                Some("vlans"),
                format!("1 to {MAX_LIST} VLAN ids, or leave `vlans` out"),
            );
        }
        for v in list.get_ref().iter().take(MAX_LIST) {
            match u16::try_from(*v.get_ref()) {
                Ok(id) if (1..=4094).contains(&id) => vlans.push(id),
                _ => p.push(
                    v.span(),
                    Some(&item),
                    Some("vlans"),
                    format!(
                        "VLAN {} is out of range; VLAN ids are 1 to 4094",
                        v.get_ref()
                    ),
                ),
            }
        }
    }
    for net in networks(spec.addresses.get_ref(), &item, "addresses", p) {
        out.push(RoleEntry {
            net,
            roles,
            vlans: vlans.clone(),
        });
    }
}

/// Parse a list of addresses and networks, reporting each bad one.
fn networks(list: &[Spanned<String>], item: &str, field: &str, p: &mut Problems<'_>) -> Vec<IpNet> {
    if list.len() > MAX_LIST {
        p.push(
            list[MAX_LIST].span(),
            Some(item),
            Some(field),
            format!("at most {MAX_LIST} entries per list"),
        );
    }
    list.iter()
        .take(MAX_LIST)
        .filter_map(|a| match IpNet::parse(a.get_ref()) {
            Ok(net) => Some(net),
            Err(msg) => {
                p.push(a.span(), Some(item), Some(field), msg);
                None
            }
        })
        .collect()
}

/// An `[[exception]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionSpec {
    id: Option<Spanned<String>>,
    src: Option<Vec<Spanned<String>>>,
    dst: Option<Vec<Spanned<String>>>,
    proto: Option<Transport>,
    ports: Option<Vec<Spanned<PortSpec>>>,
    verdict: Option<Spanned<String>>,
    rule: Option<Spanned<String>>,
    until: Option<Spanned<toml::Value>>,
    why: Spanned<String>,
}

fn exception_entry(
    value: Spanned<DeValue<'_>>,
    n: usize,
    p: &mut Problems<'_>,
) -> Option<Exception> {
    let span = value.span();
    let spec: ExceptionSpec = config_file::deserialize(value, Some(&format!("exception #{n}")), p)?;
    let before = p.count();
    let id = spec
        .id
        .as_ref()
        .map_or_else(|| format!("exception#{n}"), |i| i.get_ref().clone());
    let item = format!("exception \"{id}\"");
    if let Some(i) = &spec.id {
        let ok = !i.get_ref().trim().is_empty() && i.get_ref().len() <= 64;
        if !ok {
            p.push(
                i.span(),
                Some(&item),
                Some("id"),
                "id must be 1 to 64 characters, e.g. \"chg-1234\"".into(),
            );
        }
    }
    if spec.why.get_ref().trim().is_empty() {
        p.push(
            spec.why.span(),
            Some(&item),
            Some("why"),
            "say why the deviation is accepted, e.g. a change ticket".into(),
        );
    }
    let src = networks(spec.src.as_deref().unwrap_or_default(), &item, "src", p);
    let dst = networks(spec.dst.as_deref().unwrap_or_default(), &item, "dst", p);
    let mut ports = Vec::new();
    for spec_port in spec
        .ports
        .as_deref()
        .unwrap_or_default()
        .iter()
        .take(MAX_LIST)
    {
        match spec_port.get_ref().range() {
            Ok(r) => ports.push(r),
            Err(msg) => p.push(spec_port.span(), Some(&item), Some("ports"), msg),
        }
    }
    let verdict = spec
        .verdict
        .as_ref()
        .and_then(|v| match Verdict::parse(v.get_ref()) {
            Some(Verdict::Documented) => {
                p.push(
                    v.span(),
                    Some(&item),
                    Some("verdict"),
                    "documented flows are never alerted; name a flagged verdict".into(),
                );
                None
            }
            Some(verdict) => Some(verdict),
            None => {
                let allowed: Vec<&str> = Verdict::ALL.iter().skip(1).map(|v| v.as_str()).collect();
                p.push(
                    v.span(),
                    Some(&item),
                    Some("verdict"),
                    format!(
                        "unknown verdict `{}`; allowed: {}",
                        v.get_ref(),
                        allowed.join(", ")
                    ),
                );
                None
            }
        });
    let (until, until_text) = match &spec.until {
        None => (None, None),
        Some(u) => {
            // A TOML date or date-time literal reads like the string form.
            let text = match u.get_ref() {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Datetime(d) => Some(d.to_string()),
                _ => None,
            };
            match text.as_deref().map(|t| (t, parse_until(t))) {
                Some((t, Ok(ts))) => (Some(ts), Some(t.to_string())),
                Some((_, Err(msg))) => {
                    p.push(u.span(), Some(&item), Some("until"), msg);
                    (None, None)
                }
                None => {
                    p.push(
                        u.span(),
                        Some(&item),
                        Some("until"),
                        "expected a date such as 2026-03-31 or a time such as 2026-03-31T18:00:00Z"
                            .into(),
                    );
                    (None, None)
                }
            }
        }
    };
    let names_something = !src.is_empty()
        || !dst.is_empty()
        || !ports.is_empty()
        || verdict.is_some()
        || spec.rule.is_some()
        || spec.proto.is_some();
    if !names_something && p.count() == before {
        p.push(
            span.clone(),
            Some(&item),
            None,
            "an exception must say what it covers: src, dst, proto, ports, verdict or rule".into(),
        );
    }
    if p.count() != before {
        return None;
    }
    let at = spec
        .id
        .as_ref()
        .map_or_else(|| p.at(span.start), |i| p.at(i.span().start));
    let rule_at = spec.rule.as_ref().map_or(at, |r| p.at(r.span().start));
    Some(Exception {
        id,
        why: spec.why.into_inner(),
        until,
        until_text,
        src,
        dst,
        proto: spec.proto,
        ports,
        verdict,
        rule: spec.rule.map(Spanned::into_inner),
        rule_idx: None,
        at,
        rule_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Severity;

    const GOOD: &str = r#"schema = 1

[systems]
aacc_server = ["10.10.1.10", "fd00:10:10:1::10"]
agent_desktop = ["10.10.20.0/24"]

[[system]]
name = "web_browser"
addresses = ["10.10.120.0/24"]
vlans = [120]
note = "supervisors"

[severity]
role_mismatch = "medium"

[[exception]]
id = "chg-1"
src = ["10.10.99.5"]
proto = "tcp"
ports = [8080, [9000, 9010]]
until = 2021-08-02T09:00:30Z
why = "CHG-1: scanner"

[[exception]]
verdict = "internal_only"
until = "2099-12-31"
why = "accepted"
"#;

    fn problems(text: &str) -> Vec<Problem> {
        match parse_site("site.toml", text) {
            Ok(_) => panic!("expected problems"),
            Err(p) => p,
        }
    }

    #[test]
    fn parses_systems_severities_and_exceptions() {
        let site = parse_site("site.toml", GOOD).expect("valid");
        let roles = |ip: &str, vlan| site.roles_of(ip.parse().expect("ip"), vlan).names();
        assert_eq!(roles("10.10.1.10", None), ["aacc_server"]);
        assert_eq!(roles("fd00:10:10:1::10", None), ["aacc_server"]);
        assert_eq!(roles("10.10.20.7", None), ["agent_desktop"]);
        assert_eq!(roles("10.10.120.15", Some(120)), ["web_browser"]);
        assert!(roles("10.10.120.15", None).is_empty());
        assert_eq!(site.severities, [(Verdict::RoleMismatch, Severity::Medium)]);
        assert_eq!(site.exceptions.len(), 2);
        let e = &site.exceptions[0];
        assert_eq!(e.id, "chg-1");
        assert_eq!(e.until_text.as_deref(), Some("2021-08-02T09:00:30Z"));
        assert_eq!(e.ports.len(), 2);
        assert_eq!(site.exceptions[1].id, "exception#2");
        assert_eq!(site.exceptions[1].verdict, Some(Verdict::InternalOnly));
    }

    #[test]
    fn reports_every_problem_with_its_place() {
        let text = r#"schema = 1
[systems]
ccms = ["10.0.0.1"]
ccma = ["10.0.0.300", "10.0.0.1/24"]

[[system]]
name = "aams"
addresses = ["10.0.1.0/24"]
vlans = [5000]

[[exception]]
why = "nothing named"

[[exception]]
src = ["10.0.0.1"]
verdict = "bogus"
until = "soon"
why = "x"

[[exception]]
dst = ["10.0.0.1"]
colour = "red"
why = "x"
"#;
        let p = problems(text);
        let shown: Vec<String> = p.iter().map(|e| e.to_string()).collect();
        let find = |needle: &str| {
            shown
                .iter()
                .find(|s| s.contains(needle))
                .unwrap_or_else(|| panic!("{needle}: {shown:#?}"))
        };
        assert!(find("unknown system `ccms`").starts_with("site.toml:3:1: systems.ccms"));
        assert!(find("`10.0.0.300` is not an address").starts_with("site.toml:4:9:"));
        assert!(find("host bits").contains("10.0.0.0/24"));
        assert!(find("VLAN 5000").starts_with("site.toml:9:"));
        assert!(find("must say what it covers").starts_with("site.toml:11:"));
        assert!(find("unknown verdict `bogus`").starts_with("site.toml:16:"));
        assert!(find("`soon` is not a date").starts_with("site.toml:17:"));
        assert!(find("colour").starts_with("site.toml:22:"));
        assert_eq!(p.len(), 8, "{shown:#?}");
    }

    #[test]
    fn any_prefix_of_a_site_file_parses_or_fails_without_panic() {
        let example = include_str!("../../rules/site-example.toml");
        for text in [GOOD, example] {
            for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
                let _ = parse_site("cut.toml", &text[..end]);
            }
            parse_site("whole.toml", text).expect("the whole file is valid");
        }
    }

    #[test]
    fn refuses_any_as_a_host_system_and_a_missing_schema() {
        let p = problems("[systems]\nany = [\"10.0.0.1\"]\n");
        assert!(
            p.iter()
                .any(|e| e.message.contains("`any` is not a system")),
            "{p:?}"
        );
        assert!(p.iter().any(|e| e.message.contains("schema = 1")), "{p:?}");
    }
}
