//! Numbers, sizes and times the way a person reads them in the report.

use std::fmt;

use crate::timestamp::Timestamp;

/// `150783` -> `150,783`.
pub struct Count(pub u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// `150783` -> `147.2 KiB`; exact below 1 KiB.
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

/// A length of time in nanoseconds: `41.3 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`.
pub struct Span(pub i64);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.max(0);
        let secs = ns / 1_000_000_000;
        match secs {
            0 if ns < 1_000_000 => write!(f, "{:.1} µs", ns as f64 / 1e3),
            0 => write!(f, "{:.1} ms", ns as f64 / 1e6),
            1..60 => write!(f, "{:.1} s", ns as f64 / 1e9),
            60..3_600 => write!(f, "{} min {} s", secs / 60, secs % 60),
            3_600..86_400 => write!(f, "{} h {} min", secs / 3_600, secs % 3_600 / 60),
            _ => write!(f, "{} d {} h", secs / 86_400, secs % 86_400 / 3_600),
        }
    }
}

/// Parts of a timestamp as text, cut from its RFC 3339 form
/// `2021-08-02T09:00:14.123456Z`.
#[derive(Debug, Clone, Copy)]
pub enum TimeText {
    /// `2021-08-02 09:00:14.123`: table cells.
    Full,
    /// `2021-08-02`.
    Date,
    /// `08-02 09:00`.
    DayMinute,
    /// `09:00:14`.
    Second,
    /// `09:00:14.123`.
    Milli,
    /// `09:00:14.123456`.
    Micro,
}

impl TimeText {
    pub fn show(self, ts: Timestamp) -> String {
        let s = ts.to_string();
        let cut = |a: usize, b: usize| s.get(a..b).unwrap_or_default().to_string();
        match self {
            TimeText::Full => format!("{} {}", cut(0, 10), cut(11, 23)),
            TimeText::Date => cut(0, 10),
            TimeText::DayMinute => format!("{} {}", cut(5, 10), cut(11, 16)),
            TimeText::Second => cut(11, 19),
            TimeText::Milli => cut(11, 23),
            TimeText::Micro => cut(11, 26),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(Count(0).to_string(), "0");
        assert_eq!(Count(999).to_string(), "999");
        assert_eq!(Count(1000).to_string(), "1,000");
        assert_eq!(Count(150_783).to_string(), "150,783");
        assert_eq!(Count(u64::MAX).to_string(), "18,446,744,073,709,551,615");
    }

    #[test]
    fn sizes_and_spans_read_naturally() {
        assert_eq!(ByteSize(60).to_string(), "60 B");
        assert_eq!(ByteSize(150_783).to_string(), "147.2 KiB");
        assert_eq!(ByteSize(u64::MAX).to_string(), "16384.0 PiB");
        assert_eq!(Span(300_000).to_string(), "300.0 µs");
        assert_eq!(Span(55_800_000_000).to_string(), "55.8 s");
        assert_eq!(Span(725_000_000_000).to_string(), "12 min 5 s");
        assert_eq!(Span(12_000_000_000_000).to_string(), "3 h 20 min");
        assert_eq!(Span(187_200_000_000_000).to_string(), "2 d 4 h");
        assert_eq!(Span(-5).to_string(), "0.0 µs");
    }

    #[test]
    fn time_texts_cut_the_rfc3339_form() {
        let ts: Timestamp = "2021-08-02T09:00:14.123456Z".parse().expect("valid");
        assert_eq!(TimeText::Full.show(ts), "2021-08-02 09:00:14.123");
        assert_eq!(TimeText::Date.show(ts), "2021-08-02");
        assert_eq!(TimeText::DayMinute.show(ts), "08-02 09:00");
        assert_eq!(TimeText::Second.show(ts), "09:00:14");
        assert_eq!(TimeText::Milli.show(ts), "09:00:14.123");
        assert_eq!(TimeText::Micro.show(ts), "09:00:14.123456");
    }
}
