//! Signature ids and severities of EVE alerts: what an alert console sorts
//! and groups by. The numbers are part of the output contract
//! (docs/events.md, "Signature ids"): they never change meaning.

use crate::verdict::{Severity, Verdict};

/// Signature ids: `8VSSRRR`, V the verdict's code, SS the document section,
/// RRR the row (docs/events.md, "Signature ids").
const SID_BASE: u32 = 8_000_000;
/// Alert summaries of storm control (the verdict digit 9, which no verdict has).
pub const SID_ALERT_SUMMARY: u32 = SID_BASE + 9 * 100_000;
/// Rules of other files (`--rules`): `9xxxx`, a hash of the id.
const OTHER_RULES: u32 = 90_000;

/// The verdict's digit of a signature id. Written out rather than taken from
/// `Verdict::index`, so that a verdict added in between cannot renumber them.
fn verdict_code(v: Verdict) -> u32 {
    match v {
        Verdict::Documented => 0,
        Verdict::Undocumented => 1,
        Verdict::WrongTransport => 2,
        Verdict::InternalOnly => 3,
        Verdict::ClosedByDefault => 4,
        Verdict::Deprecated => 5,
        Verdict::OutOfProfile => 6,
        Verdict::ProtocolMismatch => 7,
        Verdict::RoleMismatch => 8,
    }
}

/// A rule's part of a signature id: the document's section and row
/// (`2.2.2#19` -> 22019), or for a rule of another file a number from
/// 90000 to 99999 made from its id (stable, but two ids may share it).
pub fn rule_code(id: &str) -> u32 {
    let document = id.split_once('#').and_then(|(section, row)| {
        let section = match section {
            "2.2.2" => 22,
            "2.2.3" => 23,
            "2.2.4" => 24,
            "2.2.5" => 25,
            "2.2.6" => 26,
            "2.3.1" => 31,
            "3-notes" => 30,
            _ => return None,
        };
        let row: u32 = row.parse().ok().filter(|r| (1..1000).contains(r))?;
        Some(section * 1000 + row)
    });
    // FNV-1a: fixed, unlike std's hasher, so the number is the same in every build.
    document.unwrap_or_else(|| {
        let hash = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        OTHER_RULES + hash % 10_000
    })
}

/// The signature id of an alert with `verdict` whose deciding rule is
/// `rule` (none for `undocumented`: no rule covers the port).
pub fn signature_id(verdict: Verdict, rule: Option<&str>) -> u32 {
    SID_BASE + verdict_code(verdict) * 100_000 + rule.map_or(0, rule_code)
}

/// EVE's severity: 1 is the most severe.
pub fn eve_severity(s: Severity) -> u8 {
    match s {
        Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low | Severity::Info => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_ids_of_the_document() {
        assert_eq!(signature_id(Verdict::Undocumented, None), 8_100_000);
        assert_eq!(
            signature_id(Verdict::InternalOnly, Some("2.2.2#19")),
            8_322_019
        );
        assert_eq!(
            signature_id(Verdict::Deprecated, Some("2.3.1#8")),
            8_531_008
        );
        assert_eq!(
            signature_id(Verdict::RoleMismatch, Some("3-notes#5")),
            8_830_005
        );
        assert_eq!(SID_ALERT_SUMMARY, 8_900_000);
    }

    #[test]
    fn every_builtin_rule_has_its_own_code() {
        let matrix = crate::matrix::PortMatrix::builtin().expect("the built-in matrix");
        let mut codes: Vec<u32> = matrix.rules().iter().map(|r| rule_code(&r.id)).collect();
        assert!(codes.iter().all(|&c| (22_001..OTHER_RULES).contains(&c)));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), matrix.rules().len());
    }

    #[test]
    fn other_rules_get_a_fixed_hashed_code() {
        let code = rule_code("site#1");
        assert!((OTHER_RULES..100_000).contains(&code));
        assert_eq!(code, rule_code("site#1"));
        // Not a row of the document: hashed too.
        assert!(rule_code("2.2.2#0") >= OTHER_RULES);
        assert!(rule_code("9.9.9#1") >= OTHER_RULES);
    }

    #[test]
    fn severities_run_from_one_high_to_three() {
        assert_eq!(eve_severity(Severity::High), 1);
        assert_eq!(eve_severity(Severity::Medium), 2);
        assert_eq!(eve_severity(Severity::Low), 3);
        assert_eq!(eve_severity(Severity::Info), 3);
    }
}
