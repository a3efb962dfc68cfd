//! Exact arithmetic on [`Factor`]s (non-negative rationals) for composing settlement rules:
//! a Rule 4 deduction reduces the winnings part of a price, a place part takes a fraction of
//! them, a void factor mixes a refund with a result. Every step is exact (u128 intermediates,
//! reduced by the gcd); a result that no longer fits a `Factor` is an error, never rounded,
//! because rounding happens exactly once, in [`crate::payout::payout_minor`].

use crate::payout::Factor;
use crate::price::{PRICE_SCALE, Price};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("settlement factor arithmetic overflowed")]
pub struct RatioOverflow;

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn make(num: u128, den: u128) -> Result<Factor, RatioOverflow> {
    debug_assert!(den > 0);
    let g = gcd(num, den).max(1);
    let (n, d) = (num / g, den / g);
    Ok(Factor::new(
        u64::try_from(n).map_err(|_| RatioOverflow)?,
        u64::try_from(d).map_err(|_| RatioOverflow)?,
    ))
}

/// `a × b`.
pub fn mul(a: Factor, b: Factor) -> Result<Factor, RatioOverflow> {
    make(a.num as u128 * b.num as u128, a.den as u128 * b.den as u128)
}

/// `a + b`.
pub fn add(a: Factor, b: Factor) -> Result<Factor, RatioOverflow> {
    let num = (a.num as u128 * b.den as u128)
        .checked_add(b.num as u128 * a.den as u128)
        .ok_or(RatioOverflow)?;
    make(num, a.den as u128 * b.den as u128)
}

/// `a − b`, which must not be negative (callers pass `1 − x` with `x ≤ 1`).
pub fn sub(a: Factor, b: Factor) -> Result<Factor, RatioOverflow> {
    let l = a.num as u128 * b.den as u128;
    let r = b.num as u128 * a.den as u128;
    make(
        l.checked_sub(r).ok_or(RatioOverflow)?,
        a.den as u128 * b.den as u128,
    )
}

/// `a ≤ b`, exactly.
pub fn le(a: Factor, b: Factor) -> bool {
    a.num as u128 * b.den as u128 <= b.num as u128 * a.den as u128
}

/// The winnings part of a decimal price, `price − 1` (fractional odds): 2.500 → 3/2.
pub fn odds_against(price: Price) -> Factor {
    let n = price.milli() - PRICE_SCALE;
    let g = gcd(n as u128, PRICE_SCALE as u128) as u64;
    Factor::new(n / g, PRICE_SCALE / g)
}

/// `1 + winnings × k`: the return per unit of stake when only the fraction `k` of the
/// winnings is paid (a place part at 1/4 odds, or winnings after a Rule 4 deduction).
pub fn stake_plus(winnings: Factor, k: Factor) -> Result<Factor, RatioOverflow> {
    add(Factor::ONE, mul(winnings, k)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_reduced() {
        assert_eq!(mul(Factor::new(3, 2), Factor::new(2, 3)), Ok(Factor::ONE));
        assert_eq!(add(Factor::new(1, 4), Factor::new(3, 4)), Ok(Factor::ONE));
        assert_eq!(sub(Factor::ONE, Factor::new(1, 4)), Ok(Factor::new(3, 4)));
        assert_eq!(sub(Factor::ZERO, Factor::ONE), Err(RatioOverflow));
        assert_eq!(
            odds_against(Price::parse("2.5").unwrap()),
            Factor::new(3, 2)
        );
        assert!(le(Factor::new(1, 3), Factor::new(1, 2)));
        assert!(!le(Factor::new(2, 3), Factor::new(1, 2)));
        assert_eq!(
            mul(Factor::new(u64::MAX, 1), Factor::new(3, 1)),
            Err(RatioOverflow)
        );
    }
}
