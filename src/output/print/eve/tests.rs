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
