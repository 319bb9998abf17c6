//! How the report looks: one colour per verdict (shared by the diagram, the
//! timeline, the legend and the tables), the style sheet and the one small
//! script, all inline so the file opens from disk with no network.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::verdict::Verdict;

/// The colour of a verdict. Documented traffic is a quiet grey-green so the
/// flagged verdicts stand out; the others are distinct hues (Tableau 10).
pub fn colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Documented => "#7fa98a",
        Verdict::Undocumented => "#d62728",
        Verdict::WrongTransport => "#9467bd",
        Verdict::InternalOnly => "#ff7f0e",
        Verdict::ClosedByDefault => "#bcbd22",
        Verdict::Deprecated => "#8c564b",
        Verdict::OutOfProfile => "#1f77b4",
        Verdict::RoleMismatch => "#e377c2",
        Verdict::ProtocolMismatch => "#17becf",
    }
}

/// Drawing and ranking order: documented lowest, then by default severity.
pub fn rank(v: Verdict) -> u8 {
    if v == Verdict::Documented {
        0
    } else {
        1 + v.default_severity() as u8
    }
}

/// What a rule alone makes of a flow, as the coverage table says it.
pub fn status_text(v: Verdict) -> &'static str {
    match v {
        Verdict::Documented => "open",
        Verdict::Undocumented => "undocumented",
        Verdict::WrongTransport => "wrong transport",
        Verdict::InternalOnly => "internal only",
        Verdict::ClosedByDefault => "closed by default",
        Verdict::Deprecated => "deprecated",
        Verdict::OutOfProfile => "other product",
        Verdict::ProtocolMismatch => "other protocol",
        Verdict::RoleMismatch => "wrong systems",
    }
}

/// Forbids every fetch (scripts, styles, images, fonts, connections) and
/// every inline script and style except the page's own `<style>` and
/// `<script>`, named by their SHA-256: if a future change forgets to escape
/// something, the injected markup can neither run script (inline `<script>`,
/// `onclick=`…), nor restyle the page (`style=` attributes), nor call out,
/// nor move the evidence links (`<base>`). The hashes depend only on the
/// code, so the same events still give the same page.
pub fn content_security_policy(style: &str, script: &str) -> String {
    format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; img-src data:; \
         base-uri 'none'; form-action 'none'",
        sha256_source(style),
        sha256_source(script)
    )
}

/// A CSP hash source: `sha256-` and the base64 of the text's SHA-256.
fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page's style sheet: [`CSS`] and a class per verdict (`v-undocumented`)
/// giving its colour, since a hash-based policy refuses `style=` attributes.
pub fn stylesheet() -> String {
    let mut css = String::from(CSS);
    for v in Verdict::ALL {
        css.push_str(&format!(
            ".v-{} {{ background:{}; }}\n",
            v.as_str(),
            colour(v)
        ));
    }
    css
}

pub const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#d9dee5; --bg:#f6f7f9; --card:#fff; --warn:#b3261e; --warnbg:#fdecea; --okbg:#e8f3ec; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--fg); background:var(--bg); }
main { max-width:1320px; margin:0 auto; padding:24px 28px 60px; }
h1 { font-size:24px; margin:0 0 4px; }
h2 { font-size:18px; margin:34px 0 10px; padding-bottom:4px; border-bottom:2px solid var(--line); }
p.sub, .muted { color:var(--muted); }
p.sub { margin:0 0 18px; }
code, .mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size:12.5px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(140px, 1fr)); gap:12px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.card .v { font-size:21px; font-weight:600; white-space:nowrap; }
.card .k { color:var(--muted); font-size:12.5px; }
.card.alert .v { color:var(--warn); }
.bar { display:flex; height:14px; border-radius:7px; overflow:hidden; margin:14px 0 6px; background:var(--line); }
.bar svg { display:block; width:100%; height:100%; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; margin:6px 0 10px; font-size:13px; }
.sw { display:inline-block; width:12px; height:12px; border-radius:3px; vertical-align:-1px; margin-right:5px; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px; overflow-x:auto; }
.note { background:#fff8e1; border:1px solid #f0d58c; border-radius:6px; padding:8px 12px; margin:8px 0; }
.bad { background:var(--warnbg); border:1px solid #f1b8b3; border-radius:6px; padding:8px 12px; margin:8px 0; }
.good { background:var(--okbg); border:1px solid #b7dcc3; border-radius:6px; padding:8px 12px; margin:8px 0; }
table { border-collapse:collapse; width:100%; background:var(--card); font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; text-align:left; vertical-align:top; }
th { background:#eef1f5; position:sticky; top:0; font-weight:600; white-space:nowrap; }
table.sortable th { cursor:pointer; user-select:none; }
table.sortable th:hover { background:#e1e6ed; }
th[aria-sort=ascending]::after { content:" \25B2"; font-size:10px; }
th[aria-sort=descending]::after { content:" \25BC"; font-size:10px; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.ids { white-space:nowrap; }
.clamp, .clamp2 { display:-webkit-box; -webkit-box-orient:vertical; overflow:hidden; }
.clamp { -webkit-line-clamp:3; }
.clamp2 { -webkit-line-clamp:2; }
td.use { min-width:150px; }
h3 { font-size:15px; margin:20px 0 8px; }
td.sub { padding-left:26px; color:var(--muted); }
td.err { color:var(--warn); overflow-wrap:anywhere; min-width:260px; }
td code { overflow-wrap:anywhere; }
table + table { margin-top:14px; }
tbody tr:nth-child(even) { background:#fafbfc; }
tr.candidate { background:#fff4e5 !important; }
tr.candidate td.use { color:#a04f00; font-weight:600; }
td.desc { max-width:420px; }
td.comp { max-width:220px; color:var(--muted); font-size:12px; }
.badge { display:inline-block; padding:1px 7px; border-radius:9px; color:#fff; font-size:12px; white-space:nowrap; }
.warnv { color:var(--warn); font-weight:600; }
details { margin:8px 0; }
summary { cursor:pointer; color:var(--muted); }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
footer { margin-top:40px; color:var(--muted); font-size:12px; }
nav.toc { position:sticky; top:0; z-index:2; background:var(--bg); border-bottom:1px solid var(--line); padding:6px 0; margin:0 0 8px; display:flex; flex-wrap:wrap; gap:4px 14px; font-size:13px; }
nav.toc a { color:#1f5fa8; text-decoration:none; }
nav.toc a:hover { text-decoration:underline; }
nav.toc a.key { font-weight:600; }
h2 { scroll-margin-top:40px; }
.toolbar { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:8px 0; }
.toolbar input, .toolbar select, .toolbar button { font:inherit; font-size:13px; padding:3px 6px; border:1px solid var(--line); border-radius:5px; background:#fff; }
.toolbar input[type=search] { min-width:220px; }
.toolbar input.narrow { width:140px; }
.toolbar input.port { width:80px; }
.toolbar button { cursor:pointer; }
.toolbar button:disabled { cursor:default; opacity:.5; }
.toolbar .info { color:var(--muted); }
.scroll { overflow-x:auto; }
tr.f-out, tr.p-out { display:none; }
td.ev { max-width:200px; overflow-wrap:anywhere; font-size:12px; }
#diagram-svg [data-host] { cursor:pointer; }
@media print {
  body { background:#fff; font-size:11px; }
  main { max-width:none; padding:0; }
  nav.toc, .toolbar { display:none; }
  tr.p-out { display:table-row; }
  th { position:static; }
  .panel { overflow:visible; border:none; padding:0; }
  .panel svg { max-width:100%; height:auto; }
  h2 { break-after:avoid; }
  tr, .card, .panel { break-inside:avoid; }
  a { color:inherit; text-decoration:none; }
}
"#;

pub use super::script::SCRIPT;

/// The one-line meaning (README, Verdicts) of each verdict, for the legend's tooltips.
pub fn meaning(v: Verdict) -> &'static str {
    match v {
        Verdict::Documented => "an open, current rule of the active profile covers the flow",
        Verdict::Undocumented => "no rule covers this port on any transport",
        Verdict::WrongTransport => "the port is documented only for the other transport",
        Verdict::InternalOnly => {
            "only INTERNAL ONLY rules cover it and the two ends are different hosts"
        }
        Verdict::ClosedByDefault => "only rules whose default state is closed cover it",
        Verdict::Deprecated => "only rules the document removed, changed, or says to close",
        Verdict::OutOfProfile => "only rules of the other product cover it",
        Verdict::RoleMismatch => {
            "the port is documented, but not between the systems the site inventory names"
        }
        Verdict::ProtocolMismatch => {
            "documented, but the payload is clearly another protocol than the rules name"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_hashes_of_the_exact_texts() {
        // Known answers: `echo -n … | openssl dgst -sha256 -binary | base64`.
        assert_eq!(
            sha256_source(""),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            sha256_source("abc"),
            "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        let csp = content_security_policy("a", "b");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
    }

    #[test]
    fn every_verdict_has_its_colour_class() {
        let css = stylesheet();
        for v in Verdict::ALL {
            let rule = format!(".v-{} {{ background:{}; }}", v.as_str(), colour(v));
            assert!(css.contains(&rule), "{rule}");
        }
    }
}
