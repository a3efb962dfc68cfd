//! Price ladder: the set of prices the book may offer. We use the **Betfair Exchange
//! "CLASSIC" ladder** (tick 0.01 up to 2, 0.02 to 3, 0.05 to 4, 0.1 to 6, 0.2 to 10, 0.5 to 20,
//! 1 to 30, 2 to 50, 5 to 100, 10 to 1000), because it is the ladder terminals and traders know
//! and exchange prices from the Betfair feed already sit on it.
//!
//! An offered price is rounded **down** to the ladder (the house never offers more than its
//! model says) and capped at a maximum price; the result is always > 1.0 or refused.

use crate::price::{PRICE_MILLI_MAX, Price};

/// (band upper bound inclusive, tick) in thousandths.
const BANDS: &[(u64, u64)] = &[
    (2_000, 10),
    (3_000, 20),
    (4_000, 50),
    (6_000, 100),
    (10_000, 200),
    (20_000, 500),
    (30_000, 1_000),
    (50_000, 2_000),
    (100_000, 5_000),
    (1_000_000, 10_000),
];

pub const LADDER_MIN_MILLI: u64 = 1_010;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LadderError {
    #[error("price {0}/1000 is below the lowest ladder price 1.01")]
    BelowLadder(u64),
    #[error("maximum price {0}/1000 is below the lowest ladder price 1.01")]
    BadCap(u64),
}

/// Is `milli` a price on the ladder?
pub fn is_on_ladder(milli: u64) -> bool {
    floor_milli(milli) == Some(milli)
}

/// The highest ladder price ≤ `milli`, or `None` below 1.01.
pub fn floor_milli(milli: u64) -> Option<u64> {
    if milli < LADDER_MIN_MILLI {
        return None;
    }
    let milli = milli.min(PRICE_MILLI_MAX);
    let mut lower = 1_000;
    for &(upper, tick) in BANDS {
        if milli <= upper {
            return Some(lower + (milli - lower) / tick * tick);
        }
        lower = upper;
    }
    Some(PRICE_MILLI_MAX)
}

/// Round `milli` down to the ladder and cap it at `max_milli` (itself rounded down to the
/// ladder). The result is a valid `Price` > 1.0.
pub fn offer(milli: u64, max_milli: u64) -> Result<Price, LadderError> {
    let cap = floor_milli(max_milli).ok_or(LadderError::BadCap(max_milli))?;
    let p = floor_milli(milli).ok_or(LadderError::BelowLadder(milli))?;
    Ok(Price::from_milli(p.min(cap)).expect("ladder prices lie in 1.01..=1000"))
}

/// The offered price for an implied probability `q` (which includes the margin): decimal odds
/// `1/q`, converted to thousandths rounding down, then laddered and capped. `None` if `q` is not
/// a usable probability or the price would fall below the ladder.
pub fn offer_for_probability(q: f64, max_milli: u64) -> Option<Price> {
    if !(q.is_finite() && q > 0.0 && q < 1.0) {
        return None;
    }
    let raw = 1000.0 / q;
    let milli = if raw >= PRICE_MILLI_MAX as f64 {
        PRICE_MILLI_MAX
    } else {
        raw.floor() as u64
    };
    offer(milli, max_milli).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_ticks() {
        for (i, o) in [
            (1_015, 1_010),
            (2_015, 2_000),
            (2_039, 2_020),
            (3_070, 3_050),
            (5_550, 5_500),
            (9_990, 9_800),
            (13_700, 13_500),
            (27_300, 27_000),
            (47_000, 46_000),
            (98_000, 95_000),
            (999_000, 990_000),
            (5_000_000, 1_000_000),
        ] {
            assert_eq!(floor_milli(i), Some(o), "{i}");
        }
        assert_eq!(floor_milli(1_009), None);
        assert!(is_on_ladder(1_010) && is_on_ladder(2_020) && !is_on_ladder(2_010));
        assert_eq!(offer(15_000, 10_000).unwrap().milli(), 10_000);
        assert!(offer(1_000, 10_000).is_err());
        // Every price of the Betfair samples lies on the ladder.
        for p in [
            2_700, 2_740, 9_800, 10_500, 4_800, 6_800, 23_000, 250_000, 320_000,
        ] {
            assert!(is_on_ladder(p), "{p}");
        }
    }

    proptest! {
        #[test]
        fn monotonic_idempotent_never_above(a in 0u64..2_000_000, b in 0u64..2_000_000) {
            let (lo, hi) = (a.min(b), a.max(b));
            if let (Some(x), Some(y)) = (floor_milli(lo), floor_milli(hi)) {
                prop_assert!(x <= y);
            }
            if let Some(x) = floor_milli(a) {
                prop_assert!(x <= a.max(LADDER_MIN_MILLI));
                prop_assert!(x > 1_000);
                prop_assert_eq!(floor_milli(x), Some(x));
            }
        }
        #[test]
        fn offers_are_capped_and_above_one(q in 0.0001f64..0.9999, cap in 1_010u64..1_000_000) {
            if let Some(p) = offer_for_probability(q, cap) {
                prop_assert!(p.milli() > 1_000);
                prop_assert!(p.milli() <= cap);
                prop_assert!(is_on_ladder(p.milli()));
                // Rounded down: never more generous than 1/q.
                prop_assert!(p.milli() as f64 <= 1000.0 / q + 1e-6);
            }
        }
    }
}
