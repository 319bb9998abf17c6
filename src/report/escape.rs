//! Text from the events is hostile: an event file can say anything, including
//! `<script>`. Every string that did not come from this crate's own literals
//! reaches the page through [`Esc`] (text and double-quoted attributes alike)
//! or, for links, through [`href_for_path`].

use std::fmt;

/// Writes a string with `& < > " '` replaced by character references, which
/// is enough for element content and for attribute values in double quotes.
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// The `href` for a file path named in an event (the `evidence` pcapng), or
/// `None` when the value is not a plain path: anything with a URL scheme
/// (`javascript:`, `http:`, `C:`) or starting with `//` (a network location)
/// is shown as text only, so a hostile event cannot make the page link out.
/// Relative paths stay relative, so they resolve beside the report file.
/// Every byte outside the URL-safe set is percent-encoded.
pub fn href_for_path(path: &str) -> Option<String> {
    let scheme_end = path.find(':');
    let first_slash = path.find('/');
    let has_scheme = match (scheme_end, first_slash) {
        (Some(c), Some(s)) => c < s,
        (Some(_), None) => true,
        _ => false,
    };
    if path.is_empty() || has_scheme || path.starts_with("//") || path.contains('\\') {
        return None;
    }
    let mut href = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            href.push(char::from(b));
        } else {
            href.push_str(&format!("%{b:02X}"));
        }
    }
    Some(href)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            Esc(r#"<script>alert("x")</script> & 'y'"#).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(Esc("10.0.0.1 plain").to_string(), "10.0.0.1 plain");
        assert_eq!(Esc("").to_string(), "");
        assert_eq!(Esc("é<ü").to_string(), "é&lt;ü");
    }

    #[test]
    fn plain_paths_become_relative_links() {
        assert_eq!(
            href_for_path("evidence/flow 1#a.pcapng").as_deref(),
            Some("evidence/flow%201%23a.pcapng")
        );
        assert_eq!(
            href_for_path("/var/lib/x.pcapng").as_deref(),
            Some("/var/lib/x.pcapng")
        );
        assert_eq!(
            href_for_path("a/b:c.pcapng").as_deref(),
            Some("a/b%3Ac.pcapng")
        );
        assert_eq!(
            href_for_path("\"><script>").as_deref(),
            Some("%22%3E%3Cscript%3E")
        );
    }

    #[test]
    fn urls_and_network_paths_are_not_links() {
        for hostile in [
            "javascript:alert(1)",
            "http://example.com/x.pcapng",
            "https://example.com/x",
            "//example.com/x",
            "C:\\evidence\\x.pcapng",
            "data:text/html,x",
            "",
        ] {
            assert_eq!(href_for_path(hostile), None, "{hostile}");
        }
    }
}
