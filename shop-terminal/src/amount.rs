//! Money as the cashier types and reads it: exact decimal text ⇄ integer minor units. No
//! floats anywhere.

/// `1234` with 2 digits → "12.34"; negative amounts keep their sign.
pub fn fmt_minor(minor: i64, digits: u32) -> String {
    let scale = 10i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{a}");
    }
    format!(
        "{sign}{}.{:0w$}",
        a / scale as u64,
        a % scale as u64,
        w = digits as usize
    )
}

/// "12", "12.3", "12.34" → minor units; refuses more decimals than the currency has, signs,
/// exponents, and amounts that overflow.
pub fn parse_minor(s: &str, digits: u32) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > digits as usize
        || whole.len() > 15
    {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut f: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..digits as usize {
        f *= 10;
    }
    w.checked_mul(10i64.pow(digits))?.checked_add(f)
}

/// UTC date and time of a Unix millisecond timestamp, "2026-11-21 14:05:09 UTC".
pub fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = outpost_core::time::CivilDate::from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{day} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(fmt_minor(1234, 2), "12.34");
        assert_eq!(fmt_minor(-5, 2), "-0.05");
        assert_eq!(parse_minor("12.3", 2), Some(1230));
        assert_eq!(parse_minor("0.05", 2), Some(5));
        assert_eq!(parse_minor("1.234", 2), None);
        assert_eq!(parse_minor("-1", 2), None);
        assert_eq!(parse_minor("1e3", 2), None);
        assert_eq!(parse_minor("", 2), None);
        assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
    }

    proptest! {
        #[test]
        fn round_trip(m in 0i64..1_000_000_000_000) {
            prop_assert_eq!(parse_minor(&fmt_minor(m, 2), 2), Some(m));
        }
    }
}
