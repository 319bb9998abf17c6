//! Packet timestamps: nanoseconds since the Unix epoch, printed as RFC 3339 UTC.
//!
//! Formatting goes through [`fmt::Display`] with integer formatting only, so
//! `write!(out, "{ts}")` into any `fmt::Write` or `io::Write` does not allocate.
//! The civil-date conversions are Howard Hinnant's `civil_from_days` and
//! `days_from_civil`; [`str::parse`] reads back what `Display` writes, so tools
//! that consume our events (`portmatrix report`) need no date library.

use std::fmt;

use serde::{Serialize, Serializer};

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A capture timestamp: signed nanoseconds since 1970-01-01T00:00:00Z.
///
/// `i64` nanoseconds cover the years 1677 to 2262; conversions from file
/// formats saturate at those bounds rather than wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// From whole seconds plus nanoseconds; `nanos` may exceed one second
    /// (damaged pcap records do that) and is simply added. Saturates.
    pub const fn from_secs_nanos(secs: i64, nanos: u64) -> Timestamp {
        let whole = secs.saturating_mul(NANOS_PER_SEC);
        let frac = if nanos > i64::MAX as u64 {
            i64::MAX
        } else {
            nanos as i64
        };
        Timestamp(whole.saturating_add(frac))
    }

    /// From seconds and microseconds (classic pcap). Saturates.
    pub const fn from_secs_micros(secs: i64, micros: u64) -> Timestamp {
        Timestamp::from_secs_nanos(secs, micros.saturating_mul(1_000))
    }

    /// The wall clock, the same clock the kernel stamps live packets with.
    pub fn now() -> Timestamp {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(_) => Timestamp::EPOCH,
        }
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded towards minus infinity).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub const fn subsec_nanos(self) -> u32 {
        self.0.rem_euclid(NANOS_PER_SEC) as u32
    }

    /// `self - earlier` in nanoseconds, saturating (negative if `earlier` is later).
    pub const fn nanos_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month 1..=12, day 1..=31) to days since 1970-01-01, proleptic Gregorian.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Why a string is not an RFC 3339 UTC timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an RFC 3339 timestamp such as 2021-08-02T09:00:18.000000Z: {reason}")]
pub struct ParseTimestampError {
    text: String,
    reason: &'static str,
}

impl std::str::FromStr for Timestamp {
    type Err = ParseTimestampError;

    /// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (or `+00:00`), the form `Display`
    /// writes; up to nine fraction digits. Other offsets are refused rather
    /// than converted: every timestamp portmatrix writes is UTC.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason| ParseTimestampError {
            text: s.chars().take(64).collect(),
            reason,
        };
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return Err(fail("expected YYYY-MM-DDTHH:MM:SS"));
        }
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(fail("expected `T` between date and time"));
        }
        let num = |range: std::ops::Range<usize>| -> Result<u32, ParseTimestampError> {
            let part = &b[range];
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
            } else {
                Err(fail("expected digits"))
            }
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(fail("month or day out of range"));
        }
        // 60 admits a leap second; it reads as the next second's start.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(fail("hour, minute or second out of range"));
        }
        let mut rest = &b[19..];
        let mut nanos: u64 = 0;
        if let Some(frac) = rest.strip_prefix(b".") {
            let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 9 {
                return Err(fail("expected 1 to 9 fraction digits"));
            }
            nanos = frac[..digits]
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
                * 10u64.pow(9 - digits as u32);
            rest = &frac[digits..];
        }
        if !matches!(rest, b"Z" | b"z" | b"+00:00") {
            return Err(fail("expected `Z` (UTC) at the end"));
        }
        civil(s, (year, month, day), (hour, minute, second), nanos)
    }
}

/// Seconds since the epoch of a civil date and time (UTC), checked.
fn civil(
    s: &str,
    (year, month, day): (u32, u32, u32),
    (hour, minute, second): (u32, u32, u32),
    nanos: u64,
) -> Result<Timestamp, ParseTimestampError> {
    let days = days_from_civil(i64::from(year), month, day);
    if civil_from_days(days) != (i64::from(year), month, day) {
        return Err(ParseTimestampError {
            text: s.chars().take(64).collect(),
            reason: "no such date",
        });
    }
    let secs = days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second);
    Ok(Timestamp::from_secs_nanos(secs, nanos))
}

impl Timestamp {
    /// RFC 3339 with any offset (`+02:00`, `-05:30`, `Z`), or none at all,
    /// which is read as UTC: the `bool` says so, for the caller to tell the
    /// user. For what a user types (`--since`); what portmatrix reads back
    /// (events) stays UTC only ([`str::parse`]).
    pub fn parse_any_offset(s: &str) -> Result<(Timestamp, bool), ParseTimestampError> {
        let fail = |reason| ParseTimestampError {
            text: s.chars().take(64).collect(),
            reason,
        };
        let b = s.as_bytes();
        // The offset is what follows the seconds and their fraction.
        let head = b.len().min(19);
        let mut end = head;
        if b.get(19) == Some(&b'.') {
            end = 20 + b[20..].iter().take_while(|c| c.is_ascii_digit()).count();
        }
        let (body, offset) = s.split_at(end.min(s.len()));
        let (minutes, assumed) = match offset.as_bytes() {
            [] => (0i64, true),
            [b'Z' | b'z'] => (0, false),
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
                if [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()) =>
            {
                let h = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
                let m = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
                if h > 23 || m > 59 {
                    return Err(fail("offset out of range"));
                }
                let total = h * 60 + m;
                (if *sign == b'-' { -total } else { total }, false)
            }
            _ => {
                return Err(fail(
                    "expected `Z`, an offset such as +02:00, or nothing (UTC) at the end",
                ))
            }
        };
        let utc: Timestamp = format!("{body}Z").parse().map_err(|_| {
            fail("expected YYYY-MM-DDTHH:MM:SS[.fraction] and an offset such as Z or +02:00")
        })?;
        let nanos = utc.as_nanos() - minutes * 60_000_000_000;
        Ok((Timestamp::from_nanos(nanos), assumed))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 UTC with microseconds, e.g. `2021-08-01T12:00:00.123456Z`
    /// (sub-microsecond digits are truncated, not rounded).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_utc(f, "Z")
    }
}

/// A timestamp as Suricata's EVE writes it: `2021-08-01T12:00:00.123456+0000`.
/// EVE's schema takes only a numeric offset, not RFC 3339's `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EveTime(pub Timestamp);

impl fmt::Display for EveTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write_utc(f, "+0000")
    }
}

impl Serialize for EveTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Timestamp {
    /// Date and time to the microsecond (truncated), then `zone`.
    fn write_utc(&self, f: &mut fmt::Formatter<'_>, zone: &str) -> fmt::Result {
        let secs = self.secs();
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}{zone}",
            year,
            month,
            day,
            sod / 3_600,
            sod % 3_600 / 60,
            sod % 60,
            self.subsec_nanos() / 1_000
        )
    }
}

impl Serialize for Timestamp {
    /// Serialized as the RFC 3339 string of [`fmt::Display`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    fn show(ts: Timestamp) -> String {
        let mut s = String::new();
        write!(s, "{ts}").expect("writing to a String cannot fail");
        s
    }

    #[test]
    fn epoch() {
        assert_eq!(show(Timestamp::EPOCH), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn known_instant_with_micros() {
        // 2021-08-01T12:00:00Z = 1627819200
        let ts = Timestamp::from_secs_nanos(1_627_819_200, 123_456_789);
        assert_eq!(show(ts), "2021-08-01T12:00:00.123456Z");
    }

    #[test]
    fn leap_day_and_2038() {
        // 2024-02-29T23:59:59Z = 1709251199
        assert_eq!(
            show(Timestamp::from_secs_micros(1_709_251_199, 999_999)),
            "2024-02-29T23:59:59.999999Z"
        );
        // one second past the signed 32-bit limit
        assert_eq!(
            show(Timestamp::from_secs_nanos(2_147_483_648, 0)),
            "2038-01-19T03:14:08.000000Z"
        );
        // 2000-03-01 (century leap year rule)
        assert_eq!(
            show(Timestamp::from_secs_nanos(951_868_800, 0)),
            "2000-03-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn before_epoch() {
        assert_eq!(
            show(Timestamp::from_nanos(-1)),
            "1969-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn every_day_round_trips_through_month_lengths() {
        // Walk 1970..2100 day by day and check the date advances by one each time.
        let mut prev = civil_from_days(-1);
        for d in 0..(130 * 366) {
            let cur = civil_from_days(d);
            let next_day = if prev.2 >= 28 && cur.2 == 1 {
                assert!(cur.1 == prev.1 % 12 + 1, "month after {prev:?} is {cur:?}");
                true
            } else {
                assert_eq!((cur.0, cur.1, cur.2), (prev.0, prev.1, prev.2 + 1));
                false
            };
            let _ = next_day;
            prev = cur;
        }
    }

    #[test]
    fn days_from_civil_inverts_civil_from_days() {
        for d in -800_000..800_000 {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn parse_reads_back_display() {
        for ts in [
            Timestamp::EPOCH,
            Timestamp::from_secs_micros(1_627_894_818, 123_456),
            Timestamp::from_secs_micros(1_709_251_199, 999_999),
            Timestamp::from_secs_nanos(2_147_483_648, 0),
            Timestamp::from_nanos(-1_000),
        ] {
            assert_eq!(show(ts).parse::<Timestamp>(), Ok(ts));
        }
    }

    #[test]
    fn parse_accepts_other_fraction_lengths_and_utc_offset() {
        let base = Timestamp::from_secs_nanos(1_627_894_818, 0);
        let p = |s: &str| s.parse::<Timestamp>();
        assert_eq!(p("2021-08-02T09:00:18Z"), Ok(base));
        assert_eq!(
            p("2021-08-02T09:00:18.5+00:00"),
            Ok(Timestamp::from_secs_nanos(1_627_894_818, 500_000_000))
        );
        assert_eq!(
            p("2021-08-02T09:00:18.123456789Z"),
            Ok(Timestamp::from_secs_nanos(1_627_894_818, 123_456_789))
        );
    }

    #[test]
    fn parse_refuses_what_is_not_a_utc_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2021-08-02",
            "2021-08-02T09:00:18",
            "2021-08-02T09:00:18+02:00",
            "2021-02-30T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-08-02T24:00:00Z",
            "2021-08-02T09:00:18.Z",
            "2021-08-02T09:00:18.1234567890Z",
            "2021-08-02T09:00:18Zjunk",
            "2021-08-0xT09:00:18Z",
            "2021-08-02T09:00:18\u{e9}Z",
        ] {
            let e = bad.parse::<Timestamp>().expect_err(bad);
            assert!(e.to_string().contains("RFC 3339"), "{e}");
        }
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        assert_eq!(Timestamp::from_secs_nanos(i64::MAX, 5).as_nanos(), i64::MAX);
        assert_eq!(
            Timestamp::from_secs_micros(0, u64::MAX).as_nanos(),
            i64::MAX
        );
    }

    #[test]
    fn ordering_and_parts() {
        let a = Timestamp::from_secs_nanos(10, 5);
        let b = Timestamp::from_secs_nanos(10, 6);
        assert!(a < b);
        assert_eq!(b.nanos_since(a), 1);
        assert_eq!(a.secs(), 10);
        assert_eq!(a.subsec_nanos(), 5);
    }
}
