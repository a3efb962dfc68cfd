//! Money: integer minor units tagged with a currency, with checked arithmetic only.
//!
//! Architecture invariant: no float ever touches an amount. Amounts are `i64` minor units
//! (pence, cents); every operation that can overflow or mix currencies returns a `Result`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// ISO 4217 alphabetic code. Only currencies with two minor digits are accepted, which covers
/// every jurisdiction Outpost serves (GBP, EUR, USD, DKK); adding a zero-decimal currency means
/// adding its exponent here, nowhere else.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const GBP: Currency = Currency(*b"GBP");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");
    pub const DKK: Currency = Currency(*b"DKK");
    const KNOWN: [Currency; 4] = [Self::GBP, Self::EUR, Self::USD, Self::DKK];

    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes = code.as_bytes();
        Self::KNOWN
            .iter()
            .copied()
            .find(|c| c.0 == bytes)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.chars().take(8).collect()))
    }

    pub fn code(&self) -> &str {
        // The constructor only admits the ASCII codes in KNOWN.
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// Number of minor digits (all supported currencies have 2).
    pub fn minor_digits(&self) -> u32 {
        2
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}
impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown or unsupported currency {0:?}")]
    UnknownCurrency(String),
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflow")]
    Overflow,
}

/// An amount in minor units of one currency. May be negative (ledger postings and house
/// accounts are signed); player balances are kept non-negative by the ledger, not by this type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }
    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }
    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }
    fn same(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same(&other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same(&other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money {
            minor,
            currency: self.currency,
        })
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `GBP 12.34`, `GBP -0.05`: for humans only; APIs carry `*_minor` integers.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10i128.pow(self.currency.minor_digits());
        let v = self.minor as i128;
        let sign = if v < 0 { "-" } else { "" };
        let a = v.abs();
        write!(f, "{} {sign}{}.{:02}", self.currency, a / scale, a % scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_display() {
        assert_eq!(Currency::parse("GBP").unwrap(), Currency::GBP);
        assert!(Currency::parse("gbp").is_err());
        assert!(Currency::parse("XXXX").is_err());
        assert_eq!(Money::new(1234, Currency::GBP).to_string(), "GBP 12.34");
        assert_eq!(Money::new(-5, Currency::EUR).to_string(), "EUR -0.05");
    }

    #[test]
    fn mismatch_and_overflow_are_errors() {
        let a = Money::new(1, Currency::GBP);
        let b = Money::new(1, Currency::EUR);
        assert_eq!(
            a.checked_add(b),
            Err(MoneyError::CurrencyMismatch(Currency::GBP, Currency::EUR))
        );
        assert_eq!(
            Money::new(i64::MAX, Currency::GBP).checked_add(a),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MIN, Currency::GBP).checked_neg(),
            Err(MoneyError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn add_then_sub_is_identity(a in -1_000_000_000_000i64..1_000_000_000_000, b in -1_000_000_000_000i64..1_000_000_000_000) {
            let x = Money::new(a, Currency::GBP);
            let y = Money::new(b, Currency::GBP);
            prop_assert_eq!(x.checked_add(y).unwrap().checked_sub(y).unwrap(), x);
        }
    }
}
