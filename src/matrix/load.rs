//! Rules file (TOML) -> validated [`Rule`]s, reporting every error at once.
//!
//! The file is parsed into a spanned TOML tree first, then each `[[rule]]` is
//! deserialized and validated on its own, so one bad rule does not hide the next
//! one's errors and every error carries the line and column it refers to.

use std::collections::HashMap;

use super::app_names::{closest_app_protocol, APP_PROTOCOLS};
use std::ops::{ControlFlow, Range};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::DeValue;
use toml::Spanned;

use super::rule::{Cast, DefaultState, DocumentRow, Listener, PortRange, Profile, Rule};
use super::system::SystemSet;
use crate::config_file::{self, FileKind, Problem, Problems};
use crate::transport::Transport;
use crate::verdict::Severity;
use crate::verdict::Verdict;

pub const MAX_RULES: usize = 10_000;
pub const MAX_RANGES_PER_RULE: usize = 1_024;

/// What one rules file contributes: its rules and its severity changes.
#[derive(Debug, Default)]
pub struct RulesFile {
    pub rules: Vec<Rule>,
    pub severities: Vec<(Verdict, Severity)>,
    pub document: Option<String>,
}

/// Parse and validate one rules file. `origin` names it in errors and on rules.
pub fn parse_rules(origin: &str, text: &str) -> Result<RulesFile, Vec<Problem>> {
    let mut errors = Problems::new(origin, text);
    let Some(root) = config_file::parse(FileKind::Rules, text, &mut errors) else {
        return Err(errors.into_list());
    };

    let mut out = RulesFile::default();
    let mut rule_values: Vec<Spanned<DeValue<'_>>> = Vec::new();
    let _ = config_file::walk_top_level(
        root,
        &["document", "severity", "rule"],
        &mut errors,
        |key, value, errors| {
            match key {
                "document" => match value.get_ref().as_str() {
                    Some(s) => out.document = Some(s.to_string()),
                    None => errors.push(
                        value.span(),
                        None,
                        Some("document"),
                        "expected a string".into(),
                    ),
                },
                "severity" => parse_severities(value, errors, &mut out.severities),
                _ => rule_values.extend(config_file::array_of_tables(value, "rule", errors)),
            }
            ControlFlow::Continue(())
        },
    );
    if rule_values.len() > MAX_RULES {
        errors.push(
            0..0,
            None,
            Some("rule"),
            format!(
                "{} rules; a rules file may hold at most {MAX_RULES}",
                rule_values.len()
            ),
        );
        return Err(errors.into_list());
    }

    let mut ids: HashMap<String, Range<usize>> = HashMap::new();
    for value in rule_values {
        let Some(spec) = config_file::deserialize::<RuleSpec>(value, None, &mut errors) else {
            continue;
        };
        let id_span = spec.id.span();
        if let Some(rule) = spec.validate(origin, &mut errors) {
            if let Some(first) = ids.get(&rule.id) {
                let (line, _) = errors.at(first.start);
                errors.push(
                    id_span,
                    Some(&format!("rule {}", rule.id)),
                    Some("id"),
                    format!("duplicate id: line {line} already uses it; ids must be unique"),
                );
            } else {
                ids.insert(rule.id.clone(), id_span);
                out.rules.push(rule);
            }
        }
    }
    errors.into_result(out)
}

/// `[severity]`: `undocumented = "high"`, for rules files and site files alike.
pub(crate) fn parse_severities(
    value: Spanned<DeValue<'_>>,
    p: &mut Problems<'_>,
    out: &mut Vec<(Verdict, Severity)>,
) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        p.push(
            span,
            None,
            Some("severity"),
            "expected a table such as `[severity]` with `undocumented = \"high\"`".into(),
        );
        return;
    };
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let Some(verdict) = Verdict::parse(name) else {
            let allowed: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
            p.push(
                key.span(),
                None,
                Some("severity"),
                format!("unknown verdict `{name}`; allowed: {}", allowed.join(", ")),
            );
            continue;
        };
        match value.get_ref().as_str().and_then(Severity::parse) {
            Some(sev) => out.push((verdict, sev)),
            None => p.push(
                value.span(),
                None,
                Some("severity"),
                "expected one of \"info\", \"low\", \"medium\", \"high\"".into(),
            ),
        }
    }
}

/// A rule as written: every key the format allows, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: Spanned<String>,
    #[serde(default)]
    component: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    source_port: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    destination_port: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    optional_cell: String,
    #[serde(default)]
    state_cell: String,
    #[serde(default)]
    description: String,
    change: Option<String>,
    new_port: Option<String>,

    listen_ports: Spanned<Vec<Spanned<PortSpec>>>,
    transports: Spanned<Vec<Transport>>,
    app_protocol: Option<Spanned<String>>,
    #[serde(default)]
    listener: Listener,
    client_systems: Option<Spanned<Vec<Spanned<String>>>>,
    listener_systems: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    cast: Cast,
    optional: Option<bool>,
    default_state: Option<DefaultState>,
    #[serde(default)]
    profile: Profile,
    #[serde(default)]
    internal_only: bool,
    #[serde(default)]
    ha_only: bool,
    #[serde(default)]
    windows_only: bool,
    #[serde(default)]
    deprecated: bool,
    replaced_by: Option<Spanned<String>>,
    #[serde(default)]
    needs_roles: bool,
    note: Option<String>,
}

impl RuleSpec {
    fn validate(self, origin: &str, errors: &mut Problems<'_>) -> Option<Rule> {
        let before = errors.count();
        let (id_span, id) = (self.id.span(), self.id.into_inner());
        // Problems of the rule name it, once it has an id.
        let item = format!("rule {id}");
        if id.trim().is_empty() || id.len() > 64 {
            errors.push(
                id_span,
                None,
                Some("id"),
                "id must be 1 to 64 characters, e.g. \"site#1\"".into(),
            );
        }

        let ports_span = self.listen_ports.span();
        let specs = self.listen_ports.into_inner();
        if specs.is_empty() {
            errors.push(
                ports_span.clone(),
                Some(&item),
                Some("listen_ports"),
                "at least one port is needed, e.g. [443] or [[6000, 32599]]".into(),
            );
        }
        if specs.len() > MAX_RANGES_PER_RULE {
            errors.push(
                ports_span,
                Some(&item),
                Some("listen_ports"),
                format!("at most {MAX_RANGES_PER_RULE} ports or ranges per rule"),
            );
        }
        let mut listen_ports = Vec::with_capacity(specs.len().min(MAX_RANGES_PER_RULE));
        for spec in specs.iter().take(MAX_RANGES_PER_RULE) {
            match spec.get_ref().range() {
                Ok(range) => listen_ports.push(range),
                Err(msg) => errors.push(spec.span(), Some(&item), Some("listen_ports"), msg),
            }
        }
        listen_ports.sort();
        listen_ports.dedup();

        let transports_span = self.transports.span();
        let mut transports = self.transports.into_inner();
        transports.sort();
        transports.dedup();
        if transports.is_empty() {
            errors.push(
                transports_span,
                Some(&item),
                Some("transports"),
                "at least one transport is needed: [\"tcp\"], [\"udp\"] or [\"tcp\", \"udp\"]"
                    .into(),
            );
        }

        let app_protocol = match self.app_protocol {
            None => "unknown".to_string(),
            Some(p) => {
                let valid = !p.get_ref().is_empty()
                    && p.get_ref().len() <= 32
                    && p.get_ref()
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    errors.push(
                        p.span(),
                        Some(&item),
                        Some("app_protocol"),
                        "expected a short lower-case name such as \"https\", \"sip\" or \"unknown\""
                            .into(),
                    );
                } else if !APP_PROTOCOLS.contains(&p.get_ref().as_str()) {
                    // A typo ("htps") would turn the protocol check off in silence.
                    let hint = match closest_app_protocol(p.get_ref()) {
                        Some(near) => format!("did you mean \"{near}\"? "),
                        None => String::new(),
                    };
                    errors.push(
                        p.span(),
                        Some(&item),
                        Some("app_protocol"),
                        format!(
                            "unknown protocol \"{}\"; {hint}known: {}",
                            p.get_ref(),
                            APP_PROTOCOLS.join(", ")
                        ),
                    );
                }
                p.into_inner()
            }
        };

        let client_systems = systems(self.client_systems, &item, "client_systems", errors);
        let listener_systems = systems(self.listener_systems, &item, "listener_systems", errors);

        if let Some(r) = &self.replaced_by {
            if !self.deprecated {
                errors.push(
                    r.span(),
                    Some(&item),
                    Some("replaced_by"),
                    "only a deprecated rule can be replaced; add `deprecated = true` or remove it"
                        .into(),
                );
            }
        }

        if errors.count() != before {
            return None;
        }
        Some(Rule {
            id,
            origin: origin.to_string(),
            component: self.component,
            source: self.source,
            destination: self.destination,
            description: self.description,
            listen_ports,
            transports,
            app_protocol,
            listener: self.listener,
            client_systems,
            listener_systems,
            cast: self.cast,
            multicast: self.cast != Cast::Unicast,
            optional: self.optional,
            default_state: self.default_state.unwrap_or(DefaultState::Open),
            profile: self.profile,
            internal_only: self.internal_only,
            ha_only: self.ha_only,
            windows_only: self.windows_only,
            deprecated: self.deprecated,
            replaced_by: self.replaced_by.map(Spanned::into_inner),
            needs_roles: self.needs_roles,
            note: self.note,
            document: DocumentRow {
                source_port: self.source_port,
                destination_port: self.destination_port,
                protocol: self.protocol,
                optional_cell: self.optional_cell,
                state_cell: self.state_cell,
                change: self.change,
                new_port: self.new_port,
            },
        })
    }
}

/// A rule's `client_systems` or `listener_systems`: canonical names, `any`
/// when the field is left out.
fn systems(
    field: Option<Spanned<Vec<Spanned<String>>>>,
    item: &str,
    name: &str,
    errors: &mut Problems<'_>,
) -> SystemSet {
    let Some(list) = field else {
        return SystemSet::ANY;
    };
    let whole = list.span();
    let names = list
        .get_ref()
        .iter()
        .map(|n| (n.get_ref().as_str(), n.span()));
    SystemSet::from_names(names, whole).unwrap_or_else(|problems| {
        for (span, message) in problems {
            errors.push(span, Some(item), Some(name), message);
        }
        SystemSet::ANY
    })
}

/// `443` or `[6000, 32599]`, kept as wide integers so that range errors can be
/// reported with the number the user wrote. Site files use it too.
#[derive(Debug, Clone, Copy)]
pub struct PortSpec(i64, i64);

impl PortSpec {
    /// The range, or why it is not one.
    pub fn range(self) -> Result<PortRange, String> {
        let PortSpec(lo, hi) = self;
        let valid = |p: i64| (0..=65535).contains(&p);
        if !valid(lo) || !valid(hi) {
            Err(format!(
                "port {} is out of range; ports are 0 to 65535",
                if valid(lo) { hi } else { lo }
            ))
        } else if lo > hi {
            Err(format!(
                "range [{lo}, {hi}] is reversed; write [{hi}, {lo}]"
            ))
        } else {
            // Both ends were just checked to lie in 0..=65535.
            Ok(PortRange {
                lo: lo as u16,
                hi: hi as u16,
            })
        }
    }
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PortVisitor;
        impl<'de> Visitor<'de> for PortVisitor {
            type Value = PortSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a port number such as 443 or an inclusive range such as [6000, 32599]")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortSpec, E> {
                Ok(PortSpec(v, v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortSpec, E> {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                Ok(PortSpec(v, v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PortSpec, A::Error> {
                let lo: i64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let hi: i64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(PortSpec(lo, hi))
            }
        }
        d.deserialize_any(PortVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config_file::MAX_ERRORS;

    fn errors_of(text: &str) -> Vec<Problem> {
        match parse_rules("site.toml", text) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e,
        }
    }

    const GOOD: &str = r#"schema = 1
[[rule]]
id = "site#1"
listen_ports = [8443, [9000, 9010]]
transports = ["tcp"]
app_protocol = "https"
"#;

    #[test]
    fn parses_a_minimal_site_rule() {
        let file = parse_rules("site.toml", GOOD).expect("valid");
        assert_eq!(file.rules.len(), 1);
        let r = &file.rules[0];
        assert_eq!(r.id, "site#1");
        assert_eq!(
            r.listen_ports,
            vec![PortRange::single(8443), PortRange { lo: 9000, hi: 9010 }]
        );
        assert_eq!(r.default_state, DefaultState::Open);
        assert_eq!(r.origin, "site.toml");
    }

    #[test]
    fn reports_every_bad_rule_with_line_and_field() {
        let text = r#"schema = 1
[[rule]]
id = "a"
listen_ports = [70000]
transports = ["tcp"]

[[rule]]
id = "b"
listen_ports = [80]
transports = ["tls"]

[[rule]]
id = "c"
lisen_ports = [80]
transports = ["tcp"]
"#;
        let errs = errors_of(text);
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[0].line, 4);
        assert_eq!(errs[0].field.as_deref(), Some("listen_ports"));
        assert!(errs[0].message.contains("70000"), "{}", errs[0].message);
        assert_eq!(errs[1].line, 10);
        assert!(errs[1].message.contains("tls"), "{}", errs[1].message);
        assert_eq!(errs[2].line, 14);
        assert!(
            errs[2].message.contains("lisen_ports"),
            "{}",
            errs[2].message
        );
        let shown = errs[0].to_string();
        assert!(shown.starts_with("site.toml:4:"), "{shown}");
    }

    #[test]
    fn rejects_reversed_ranges_duplicates_and_bad_severity() {
        let text = r#"schema = 1
[severity]
undocumented = "extreme"
bogus = "low"

[[rule]]
id = "a"
listen_ports = [[200, 100]]
transports = ["udp"]

[[rule]]
id = "a"
listen_ports = [1]
transports = ["udp"]
replaced_by = "x"
"#;
        let errs = errors_of(text);
        let messages: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("extreme") || m.contains("expected one of")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("unknown verdict `bogus`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("reversed")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("only a deprecated rule")),
            "{messages:?}"
        );
    }

    #[test]
    fn reports_duplicate_ids() {
        let text = format!(
            "{GOOD}\n[[rule]]\nid = \"site#1\"\nlisten_ports = [1]\ntransports = [\"udp\"]\n"
        );
        let errs = errors_of(&text);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].message.contains("duplicate id"),
            "{}",
            errs[0].message
        );
        assert_eq!(errs[0].line, 9);
    }

    #[test]
    fn reports_syntax_errors_and_missing_schema() {
        let errs = errors_of("[[rule]\nid = 1\n");
        assert!(errs[0].message.starts_with("invalid TOML"), "{:?}", errs[0]);
        let errs = errors_of("[[rule]]\nid = \"x\"\nlisten_ports = [1]\ntransports = [\"tcp\"]\n");
        assert!(errs.iter().any(|e| e.message.contains("schema = 1")));
    }

    #[test]
    fn systems_are_canonical_names_or_any() {
        let text = format!(
            "{GOOD}client_systems = [\"agent_desktop\"]\nlistener_systems = [\"aacc_server\", \"cct\"]\n"
        );
        let file = parse_rules("site.toml", &text).expect("valid");
        let r = &file.rules[0];
        assert_eq!(r.client_systems.names(), ["agent_desktop"]);
        assert_eq!(r.listener_systems.names(), ["aacc_server", "cct"]);
        // Left out: not checked.
        let file = parse_rules("site.toml", GOOD).expect("valid");
        assert!(file.rules[0].client_systems.is_any());

        let text = format!("{GOOD}client_systems = [\"ccms\"]\nlistener_systems = []\n");
        let errs = errors_of(&text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].column), (7, 19));
        assert_eq!(errs[0].field.as_deref(), Some("client_systems"));
        assert!(
            errs[0].message.contains("unknown system `ccms`"),
            "{}",
            errs[0]
        );
        assert_eq!(errs[1].line, 8);
        assert!(
            errs[1].message.contains("at least one system"),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn lists_the_first_errors_and_counts_the_rest() {
        let mut text = String::from("schema = 1\n");
        for i in 0..300 {
            text.push_str(&format!(
                "[[rule]]\nid = \"r{i}\"\nlisten_ports = [70000, 70001]\ntransports = [\"tcp\"]\n"
            ));
        }
        let errs = errors_of(&text);
        assert_eq!(errs.len(), MAX_ERRORS + 1);
        let last = &errs[MAX_ERRORS];
        assert!(
            last.message.starts_with("500 more errors not listed"),
            "{last}"
        );
        assert_eq!(last.line, errs[MAX_ERRORS - 1].line);
        // Syntax errors are capped the same way.
        let errs = errors_of(&format!("schema = 1\n{}", "=\n".repeat(1000)));
        assert_eq!(errs.len(), MAX_ERRORS + 1);
        assert!(errs[0].message.starts_with("invalid TOML"), "{}", errs[0]);
    }
}
