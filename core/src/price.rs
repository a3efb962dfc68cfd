//! Decimal odds with a fixed scale of 1/1000 (`2.500` is stored as 2500), plus fractional
//! display. A price is always > 1.000: a market is never offered at or below evens-of-nothing.
//!
//! Prices arriving in other forms (fractional 10/11, more decimals) are converted by rounding
//! **down** to the scale, so the house never offers more than the source quoted.

use crate::payout::Factor;
use serde::{Deserialize, Serialize};
use std::fmt;

pub const PRICE_SCALE: u64 = 1000;
/// Highest price the engine represents (1000.000). Jurisdictions cap lower via max payout.
pub const PRICE_MILLI_MAX: u64 = 1_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Price {
    milli: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("price {0:?} is not a decimal number with at most 3 decimals")]
    Malformed(String),
    #[error("price must be greater than 1.000 and at most 1000.000")]
    OutOfRange,
}

impl Price {
    pub fn from_milli(milli: u64) -> Result<Price, PriceError> {
        if milli <= PRICE_SCALE || milli > PRICE_MILLI_MAX {
            return Err(PriceError::OutOfRange);
        }
        Ok(Price { milli })
    }
    pub fn milli(&self) -> u64 {
        self.milli
    }

    /// Parse `"2.5"`, `"2.50"`, `"2.500"`. More than three decimals is refused (exactness:
    /// we never silently round a price a client claims to have seen).
    pub fn parse(s: &str) -> Result<Price, PriceError> {
        let bad = || PriceError::Malformed(s.chars().take(32).collect());
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || int.len() > 7 || frac.len() > 3 {
            return Err(bad());
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let int: u64 = int.parse().map_err(|_| bad())?;
        let mut f: u64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        for _ in frac.len()..3 {
            f *= 10;
        }
        Price::from_milli(int.checked_mul(PRICE_SCALE).ok_or(PriceError::OutOfRange)? + f)
    }

    /// Parse a source price that may have more decimals (e.g. a bookmaker CSV), rounding down.
    pub fn parse_rounding_down(s: &str) -> Result<Price, PriceError> {
        let s = s.trim();
        match s.split_once('.') {
            // Only ASCII digits are truncated; anything else is refused by `parse` unchanged.
            Some((i, f)) if f.len() > 3 && f.is_ascii() => {
                Price::parse(&format!("{i}.{}", &f[..3]))
            }
            _ => Price::parse(s),
        }
    }

    /// From fractional odds `num/den` (e.g. 10/11), rounded down to the scale.
    pub fn from_fraction(num: u64, den: u64) -> Result<Price, PriceError> {
        if den == 0 {
            return Err(PriceError::OutOfRange);
        }
        let milli = (num as u128 * PRICE_SCALE as u128 / den as u128) + PRICE_SCALE as u128;
        Price::from_milli(u64::try_from(milli).map_err(|_| PriceError::OutOfRange)?)
    }

    /// The settlement factor of a winning leg at this price.
    pub fn factor(&self) -> Factor {
        Factor::new(self.milli, PRICE_SCALE)
    }

    /// Fractional odds for display. If a traditional fraction rounds down to exactly this price
    /// (10/11 -> 1.909) it is shown; otherwise the exact reduced fraction (1.91 -> 91/100).
    pub fn fractional(&self) -> (u64, u64) {
        for &(n, d) in TRADITIONAL {
            if Price::from_fraction(n, d)
                .map(|p| p == *self)
                .unwrap_or(false)
            {
                return (n, d);
            }
        }
        let (n, d) = (self.milli - PRICE_SCALE, PRICE_SCALE);
        let g = gcd(n, d);
        (n / g, d / g)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// The common UK fractional ladder (odds-on and odds-against), used only for display.
const TRADITIONAL: &[(u64, u64)] = &[
    (1, 10),
    (1, 8),
    (1, 7),
    (1, 6),
    (1, 5),
    (2, 9),
    (1, 4),
    (2, 7),
    (1, 3),
    (4, 11),
    (2, 5),
    (4, 9),
    (1, 2),
    (8, 15),
    (4, 7),
    (8, 13),
    (4, 6),
    (8, 11),
    (4, 5),
    (5, 6),
    (10, 11),
    (1, 1),
    (11, 10),
    (6, 5),
    (5, 4),
    (11, 8),
    (6, 4),
    (13, 8),
    (7, 4),
    (15, 8),
    (2, 1),
    (9, 4),
    (5, 2),
    (11, 4),
    (3, 1),
    (10, 3),
    (7, 2),
    (4, 1),
    (9, 2),
    (5, 1),
    (11, 2),
    (6, 1),
    (13, 2),
    (7, 1),
    (15, 2),
    (8, 1),
    (17, 2),
    (9, 1),
    (10, 1),
    (11, 1),
    (12, 1),
    (14, 1),
    (16, 1),
    (18, 1),
    (20, 1),
    (25, 1),
    (33, 1),
    (40, 1),
    (50, 1),
    (66, 1),
    (100, 1),
];

impl TryFrom<String> for Price {
    type Error = PriceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Price::parse(&s)
    }
}
impl From<Price> for String {
    fn from(p: Price) -> String {
        p.to_string()
    }
}
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:03}",
            self.milli / PRICE_SCALE,
            self.milli % PRICE_SCALE
        )
    }
}
impl fmt::Debug for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parsing() {
        assert_eq!(Price::parse("2.5").unwrap().milli(), 2500);
        assert_eq!(Price::parse("2.05").unwrap().milli(), 2050);
        assert_eq!(Price::parse("13").unwrap().milli(), 13000);
        for bad in [
            "", ".5", "1.0", "1", "0.5", "2.0001", "-2", "2,5", "1e3", "abc", "2.5.1", "1000.001",
        ] {
            assert!(Price::parse(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(Price::parse_rounding_down("1.90909").unwrap().milli(), 1909);
        assert!(Price::parse_rounding_down("2.é€").is_err());
    }

    #[test]
    fn fractions() {
        assert_eq!(Price::from_fraction(10, 11).unwrap().milli(), 1909);
        assert_eq!(Price::parse("1.909").unwrap().fractional(), (10, 11));
        assert_eq!(Price::parse("2.5").unwrap().fractional(), (6, 4));
        assert_eq!(Price::parse("2.55").unwrap().fractional(), (31, 20));
        assert_eq!(Price::parse("1.91").unwrap().fractional(), (91, 100));
        assert_eq!(Price::parse("2.0").unwrap().fractional(), (1, 1));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,12}") {
            let _ = Price::parse(&s);
            let _ = Price::parse_rounding_down(&s);
        }
        #[test]
        fn display_roundtrips(m in 1001u64..=PRICE_MILLI_MAX) {
            let p = Price::from_milli(m).unwrap();
            prop_assert_eq!(Price::parse(&p.to_string()).unwrap(), p);
        }
        #[test]
        fn fraction_display_is_exact_or_traditional(m in 1001u64..=100_000) {
            let p = Price::from_milli(m).unwrap();
            let (n, d) = p.fractional();
            prop_assert_eq!(Price::from_fraction(n, d).unwrap(), p);
        }
    }
}
