//! Time as plain values passed in by the shell (core never reads a clock), and civil dates for
//! age checks and fixture dates. Proleptic Gregorian, UTC.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    pub fn date(&self) -> CivilDate {
        CivilDate::from_days(self.0.div_euclid(86_400_000))
    }
}

/// A calendar date. Serialised as `YYYY-MM-DD`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CivilDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid date {0:?}: expected a real calendar date as YYYY-MM-DD")]
pub struct DateError(pub String);

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}
fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        _ => 28,
    }
}

impl CivilDate {
    pub fn new(year: i32, month: u8, day: u8) -> Result<CivilDate, DateError> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || !(1800..=9999).contains(&year)
        {
            return Err(DateError(format!("{year:04}-{month:02}-{day:02}")));
        }
        Ok(CivilDate { year, month, day })
    }

    pub fn parse(s: &str) -> Result<CivilDate, DateError> {
        let err = || DateError(s.chars().take(16).collect());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, DateError> {
            let part = &s[r];
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        CivilDate::new(num(0..4)? as i32, num(5..7)? as u8, num(8..10)? as u8).map_err(|_| err())
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    pub fn to_days(&self) -> i64 {
        let y = self.year as i64 - (self.month <= 2) as i64;
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i64) -> CivilDate {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let y = (yoe + era * 400 + (m <= 2) as i64) as i32;
        CivilDate {
            year: y,
            month: m,
            day: d,
        }
    }

    pub fn start_millis(&self) -> UnixMillis {
        UnixMillis(self.to_days() * 86_400_000)
    }

    /// Completed years from `self` (a birth date) to `on`. Someone born on 29 February turns a
    /// year older on 1 March in common years (the UK legal convention).
    pub fn years_until(&self, on: CivilDate) -> i32 {
        let mut years = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            years -= 1;
        }
        years
    }
}

impl TryFrom<String> for CivilDate {
    type Error = DateError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CivilDate::parse(&s)
    }
}
impl From<CivilDate> for String {
    fn from(d: CivilDate) -> String {
        d.to_string()
    }
}
impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
impl fmt::Debug for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ages() {
        let dob = CivilDate::parse("2008-02-29").unwrap();
        assert_eq!(dob.years_until(CivilDate::parse("2026-02-28").unwrap()), 17);
        assert_eq!(dob.years_until(CivilDate::parse("2026-03-01").unwrap()), 18);
        let dob = CivilDate::parse("2000-06-15").unwrap();
        assert_eq!(dob.years_until(CivilDate::parse("2018-06-14").unwrap()), 17);
        assert_eq!(dob.years_until(CivilDate::parse("2018-06-15").unwrap()), 18);
    }

    #[test]
    fn parse_rejects_nonsense() {
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-00-10",
            "20230101",
            "2023-1-01",
            "abcd-ef-gh",
            "2023-01-32",
            "",
        ] {
            assert!(CivilDate::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(UnixMillis(0).date().to_string(), "1970-01-01");
        assert_eq!(
            UnixMillis(1_700_000_000_000).date().to_string(),
            "2023-11-14"
        );
    }

    proptest! {
        #[test]
        fn days_roundtrip(d in -100_000i64..3_000_000) {
            let c = CivilDate::from_days(d);
            prop_assert_eq!(c.to_days(), d);
        }
    }
}
