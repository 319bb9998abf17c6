//! Rules file (TOML) -> validated [`Rule`]s, reporting every error at once.
//!
//! The file is parsed into a spanned TOML tree first, then each `[[rule]]` is
//! deserialized and validated on its own, so one bad rule does not hide the next
//! one's errors and every error carries the line and column it refers to.

use std::collections::HashMap;
use std::ops::Range;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::error::RuleError;
use super::rule::{Cast, DefaultState, DocumentRow, Listener, PortRange, Profile, Rule};
use super::system::SystemSet;
use super::text::line_col;
use crate::classify::{Severity, Verdict};
use crate::transport::Transport;

/// A hostile or mistaken file must not make us allocate without bound.
pub const MAX_FILE_BYTES: usize = 4 << 20;
pub const MAX_RULES: usize = 10_000;
pub const MAX_RANGES_PER_RULE: usize = 1_024;
/// Errors listed per file; the rest are counted in one last error. A file of
/// garbage can hold a million errors: listing them all would cost time and
/// memory (and scroll the useful first ones away).
pub const MAX_ERRORS: usize = 100;
/// Files up to this size have all their TOML syntax errors found at once;
/// larger ones only their first (see [`parse_rules`]).
const LIST_SYNTAX_ERRORS_UP_TO: usize = 256 << 10;

/// What one rules file contributes: its rules and its severity changes.
#[derive(Debug, Default)]
pub struct RulesFile {
    pub rules: Vec<Rule>,
    pub severities: Vec<(Verdict, Severity)>,
    pub document: Option<String>,
}

/// Parse and validate one rules file. `origin` names it in errors and on rules.
pub fn parse_rules(origin: &str, text: &str) -> Result<RulesFile, Vec<RuleError>> {
    let mut errors = Errors {
        origin,
        text,
        list: Vec::new(),
        unlisted: 0,
    };
    if text.len() > MAX_FILE_BYTES {
        errors.push(
            0..0,
            None,
            None,
            format!(
                "file is {} bytes; rules files are limited to {MAX_FILE_BYTES} bytes",
                text.len()
            ),
        );
        return Err(errors.into_list());
    }
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(first) => {
            // Every syntax error at once needs them all in memory at once (a
            // few hundred bytes each, and garbage holds several per line):
            // only for files small enough. Larger ones get the first.
            let all = if text.len() <= LIST_SYNTAX_ERRORS_UP_TO {
                DeTable::parse_recoverable(text).1
            } else {
                vec![first]
            };
            for e in all {
                errors.push(
                    e.span().unwrap_or(0..0),
                    None,
                    None,
                    format!("invalid TOML: {}", e.message()),
                );
            }
            return Err(errors.into_list());
        }
    };

    let mut out = RulesFile::default();
    let mut seen_schema = false;
    let mut rule_values: Vec<Spanned<DeValue<'_>>> = Vec::new();
    let root_span = root.span();
    for (key, value) in root.into_inner() {
        let span = value.span();
        match key.get_ref().as_ref() {
            "schema" => {
                seen_schema = true;
                if !is_schema_one(value.get_ref()) {
                    errors.push(span, None, Some("schema"), UNSUPPORTED_SCHEMA.into());
                }
            }
            "document" => match value.get_ref().as_str() {
                Some(s) => out.document = Some(s.to_string()),
                None => errors.push(span, None, Some("document"), "expected a string".into()),
            },
            "severity" => parse_severities(
                value,
                &mut |span, field, msg| errors.push(span, None, Some(field), msg),
                &mut out.severities,
            ),
            "rule" => match value.into_inner() {
                DeValue::Array(items) => rule_values.extend(items),
                _ => errors.push(
                    span,
                    None,
                    Some("rule"),
                    "expected an array of tables: write each rule as `[[rule]]`".into(),
                ),
            },
            other => errors.push(
                key.span(),
                None,
                None,
                format!(
                    "unknown top-level key `{other}`; allowed: schema, document, severity, rule"
                ),
            ),
        }
    }
    if !seen_schema {
        errors.push(
            root_span.start..root_span.start,
            None,
            Some("schema"),
            "missing `schema = 1` at the top of the file".into(),
        );
    }
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
        let span = value.span();
        let spec = match RuleSpec::deserialize(ValueDeserializer::from(value)) {
            Ok(spec) => spec,
            Err(e) => {
                errors.push(
                    e.span().unwrap_or(span),
                    None,
                    None,
                    e.message().to_string(),
                );
                continue;
            }
        };
        let id_span = spec.id.span();
        if let Some(rule) = spec.validate(origin, &mut errors) {
            if let Some(first) = ids.get(&rule.id) {
                let (line, _) = line_col(text, first.start);
                errors.push(
                    id_span,
                    Some(&rule.id),
                    Some("id"),
                    format!("duplicate id: line {line} already uses it; ids must be unique"),
                );
            } else {
                ids.insert(rule.id.clone(), id_span);
                out.rules.push(rule);
            }
        }
    }
    if errors.list.is_empty() {
        Ok(out)
    } else {
        Err(errors.into_list())
    }
}

/// What a `schema` other than 1 is told (rules files and site files).
pub(crate) const UNSUPPORTED_SCHEMA: &str =
    "unsupported schema; this portmatrix reads `schema = 1`";

/// `schema = 1`, written as a decimal integer: the only version there is.
pub(crate) fn is_schema_one(value: &DeValue<'_>) -> bool {
    value.as_integer().map(|i| (i.as_str(), i.radix())) == Some(("1", 10))
}

/// `[severity]`: `undocumented = "high"`, for rules files and site files
/// alike; `problem(span, field, message)` reports what is wrong.
pub(crate) fn parse_severities(
    value: Spanned<DeValue<'_>>,
    problem: &mut impl FnMut(Range<usize>, &str, String),
    out: &mut Vec<(Verdict, Severity)>,
) {
    let span = value.span();
    let DeValue::Table(table) = value.into_inner() else {
        problem(
            span,
            "severity",
            "expected a table such as `[severity]` with `undocumented = \"high\"`".into(),
        );
        return;
    };
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let Some(verdict) = Verdict::parse(name) else {
            let allowed: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
            problem(
                key.span(),
                "severity",
                format!("unknown verdict `{name}`; allowed: {}", allowed.join(", ")),
            );
            continue;
        };
        match value.get_ref().as_str().and_then(Severity::parse) {
            Some(sev) => out.push((verdict, sev)),
            None => problem(
                value.span(),
                "severity",
                "expected one of \"info\", \"low\", \"medium\", \"high\"".into(),
            ),
        }
    }
}

/// Collects errors, turning byte spans into line and column; beyond
/// [`MAX_ERRORS`] it only counts them, so finding the line of each costs at
/// most `MAX_ERRORS` scans of the text.
struct Errors<'a> {
    origin: &'a str,
    text: &'a str,
    list: Vec<RuleError>,
    /// Errors found beyond [`MAX_ERRORS`].
    unlisted: usize,
}

impl Errors<'_> {
    /// Errors found so far, listed or not.
    fn count(&self) -> usize {
        self.list.len() + self.unlisted
    }

    /// The listed errors, and one more that counts the others.
    fn into_list(mut self) -> Vec<RuleError> {
        if self.unlisted > 0 {
            // Placed at the last listed error: the ones not listed come later
            // in the order the checks run, mostly later in the file.
            let line = self.list.last().map_or(1, |e| e.line);
            self.list.push(RuleError {
                origin: self.origin.to_string(),
                line,
                column: 1,
                rule: None,
                field: None,
                message: format!(
                    "{} more errors not listed; fix the ones above and check again",
                    self.unlisted
                ),
            });
        }
        self.list
    }

    fn push(&mut self, span: Range<usize>, rule: Option<&str>, field: Option<&str>, msg: String) {
        if self.list.len() >= MAX_ERRORS {
            self.unlisted += 1;
            return;
        }
        let (line, column) = line_col(self.text, span.start);
        self.list.push(RuleError {
            origin: self.origin.to_string(),
            line,
            column,
            rule: rule.map(str::to_string),
            field: field.map(str::to_string),
            message: msg,
        });
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
    fn validate(self, origin: &str, errors: &mut Errors<'_>) -> Option<Rule> {
        let before = errors.count();
        let (id_span, id) = (self.id.span(), self.id.into_inner());
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
                Some(&id),
                Some("listen_ports"),
                "at least one port is needed, e.g. [443] or [[6000, 32599]]".into(),
            );
        }
        if specs.len() > MAX_RANGES_PER_RULE {
            errors.push(
                ports_span,
                Some(&id),
                Some("listen_ports"),
                format!("at most {MAX_RANGES_PER_RULE} ports or ranges per rule"),
            );
        }
        let mut listen_ports = Vec::with_capacity(specs.len().min(MAX_RANGES_PER_RULE));
        for spec in specs.iter().take(MAX_RANGES_PER_RULE) {
            match spec.get_ref().range() {
                Ok(range) => listen_ports.push(range),
                Err(msg) => errors.push(spec.span(), Some(&id), Some("listen_ports"), msg),
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
                Some(&id),
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
                        Some(&id),
                        Some("app_protocol"),
                        "expected a short lower-case name such as \"https\", \"sip\" or \"unknown\""
                            .into(),
                    );
                }
                p.into_inner()
            }
        };

        let client_systems = systems(self.client_systems, &id, "client_systems", errors);
        let listener_systems = systems(self.listener_systems, &id, "listener_systems", errors);

        if let Some(r) = &self.replaced_by {
            if !self.deprecated {
                errors.push(
                    r.span(),
                    Some(&id),
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
    id: &str,
    name: &str,
    errors: &mut Errors<'_>,
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
            errors.push(span, Some(id), Some(name), message);
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

    fn errors_of(text: &str) -> Vec<RuleError> {
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

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\ncdé\nx", 8), (3, 1));
        assert_eq!(line_col("ab\ncdé\nx", 5), (2, 3));
    }
}
