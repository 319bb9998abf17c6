//! Text from files (rules, site files) shown on a terminal. A rules file can
//! hold any character, escape sequences included: printed raw, `ESC ] 0 ;`
//! retitles the window, `ESC [ 2 J` clears the screen, a bidi override makes
//! `undocumented` read as something else. [`Printable`] shows such characters
//! as escapes (`\u{1b}`, `\t`) and everything else as it is.

use std::fmt;

/// `text` for a terminal: control characters (C0, DEL, C1) and the Unicode
/// bidi controls written as Rust escapes. Honours width and alignment
/// (`{:<10}`), so tables stay aligned.
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

/// Whether `c` changes what a terminal shows rather than being shown.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.chars().any(needs_escape) {
            return f.pad(self.0);
        }
        // Rare: only a hostile or broken file gets here.
        let mut escaped = String::with_capacity(self.0.len() + 16);
        for c in self.0.chars() {
            if needs_escape(c) {
                escaped.extend(c.escape_default());
            } else {
                escaped.push(c);
            }
        }
        f.pad(&escaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_the_rest_kept() {
        let shown = |s: &str| Printable(s).to_string();
        assert_eq!(shown("2.2.2#19 Café ✓"), "2.2.2#19 Café ✓");
        assert_eq!(shown("a\u{1b}]0;pwned\u{7}b"), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(shown("tab\there\nnext\r"), "tab\\there\\nnext\\r");
        assert_eq!(shown("\u{7f}\u{9b}2J"), "\\u{7f}\\u{9b}2J");
        assert_eq!(shown("safe\u{202e}txt.exe"), "safe\\u{202e}txt.exe");
        // A backslash that is not an escape stays as written.
        assert_eq!(shown("C:\\dir"), "C:\\dir");
    }

    #[test]
    fn width_and_alignment_hold() {
        assert_eq!(format!("[{:<6}]", Printable("ab")), "[ab    ]");
        assert_eq!(format!("[{:<8}]", Printable("a\u{1b}")), "[a\\u{1b} ]");
    }
}
