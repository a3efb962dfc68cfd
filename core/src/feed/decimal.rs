//! Exact decimal parsing for feed prices: `"1.92"` → 1920 thousandths, rounding extra decimals
//! **down** (the house never offers more than the source quoted). No floats are involved.
//! A value that parses is not necessarily a valid price: `"1.0"` gives 1000, and the book
//! refuses it as impossible (a price must be > 1.000).

use crate::price::PRICE_SCALE;

/// `str::trim` without its cost in the usual case: a value that neither starts nor ends with
/// an ASCII space or control byte is returned as is (anything else goes through `trim`).
#[inline(always)]
pub(crate) fn trim(v: &str) -> &str {
    match (v.as_bytes().first(), v.as_bytes().last()) {
        (Some(&f), Some(&l)) if f > b' ' && f < 0x80 && l > b' ' && l < 0x80 => v,
        _ => v.trim(),
    }
}

/// Parse a non-negative decimal (`"2"`, `"2.5"`, `"200.0"`, `"1.90909"`) into thousandths,
/// truncating beyond three decimals. `None` for anything else (signs, exponents, empty,
/// more than 9 integer digits).
pub fn parse_milli_floor(s: &str) -> Option<u64> {
    // One pass over the bytes: this runs for every outcome of every feed message.
    let b = trim(s).as_bytes();
    let mut i = 0;
    let mut int: u64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        if i == 9 {
            return None; // more than 9 integer digits
        }
        int = int * 10 + u64::from(b[i] - b'0');
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut milli = int * PRICE_SCALE;
    if i == b.len() {
        return Some(milli);
    }
    if b[i] != b'.' || i + 1 == b.len() {
        return None;
    }
    let mut scale = PRICE_SCALE / 10;
    for &c in &b[i + 1..] {
        if !c.is_ascii_digit() {
            return None;
        }
        milli += u64::from(c - b'0') * scale; // scale is 0 past the third decimal: truncation
        scale /= 10;
    }
    Some(milli)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        assert_eq!(parse_milli_floor("1.92"), Some(1920));
        assert_eq!(parse_milli_floor("200.0"), Some(200_000));
        assert_eq!(parse_milli_floor("1.90909"), Some(1909));
        assert_eq!(parse_milli_floor("13"), Some(13_000));
        assert_eq!(parse_milli_floor("1.0"), Some(1000));
        for bad in [
            "",
            ".5",
            "1.",
            "-2",
            "1e3",
            "2,5",
            "abc",
            "1.2.3",
            "1234567890",
        ] {
            assert_eq!(parse_milli_floor(bad), None, "{bad}");
        }
    }

    /// The straightforward definition the one-pass parser must agree with.
    fn reference(s: &str) -> Option<u64> {
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || int.len() > 9 || !int.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
            return None;
        }
        let mut milli: u64 = int.parse::<u64>().ok()? * PRICE_SCALE;
        let mut scale = PRICE_SCALE / 10;
        for b in frac.bytes().take(3) {
            milli += u64::from(b - b'0') * scale;
            scale /= 10;
        }
        Some(milli)
    }

    proptest! {
        #[test]
        fn fast_trim_is_str_trim(s in "[ \t\r\n\u{a0}\u{2003}a1.]{0,6}\\PC{0,4}[ \t\u{a0}\u{3000}x9]{0,3}") {
            prop_assert_eq!(trim(&s), s.trim());
        }

        #[test]
        fn never_panics(s in "\\PC{0,16}") {
            let _ = parse_milli_floor(&s);
        }
        #[test]
        fn agrees_with_reference(s in "[ 0-9.]{0,14}|\\PC{0,12}") {
            prop_assert_eq!(parse_milli_floor(&s), reference(&s));
        }
        #[test]
        fn agrees_with_price_display(m in 1001u64..=1_000_000) {
            let p = crate::price::Price::from_milli(m).unwrap();
            prop_assert_eq!(parse_milli_floor(&p.to_string()), Some(m));
        }
    }
}
