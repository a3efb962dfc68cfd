//! Partial voids and dead heats as the Sportradar Unified Odds Feed (UOF) states them on each
//! outcome of a `bet_settlement` message.
//!
//! Source: Sportradar UOF SDK reference, `IOutcomeSettlement` / `VoidFactor`:
//! - `void_factor` "indicates the percentage of the stake that should be voided (returned to the
//!   punter)": 0 settles the whole stake by the result, 0.5 returns half and settles the other
//!   half by the result ("Half"), 1 returns the whole stake ("One");
//! - `dead_heat_factor`: "the stake should be divided by the number of competitors involved in
//!   the dead heat and then settled at the normal odds", i.e. the winning stake is multiplied
//!   by the factor (0.5 for two joint winners);
//! - `result` 1 = the outcome won, 0 = it lost.
//!
//! So the return per unit of stake at decimal price `p` is
//! `void + (1 − void) × (won ? p × dead_heat : 0)`. Quarter-line Asian handicaps arrive this
//! way too (half win = result 1, void 0.5), so this agrees with [`crate::settle::LegResult`].
//!
//! The factors arrive as decimal text ("0.5", "1.0"). They are parsed exactly (0.5 → 1/2)
//! and must lie in [0, 1]: a feed value out of range or with an exponent is refused, never
//! clamped.

use super::ratio::{self, RatioOverflow};
use crate::payout::Factor;
use crate::price::Price;
use serde::{Deserialize, Serialize};

/// One outcome's settlement as the feed states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeSettlement {
    pub won: bool,
    pub void_factor: Factor,
    pub dead_heat_factor: Factor,
}

impl OutcomeSettlement {
    pub const WON: OutcomeSettlement = OutcomeSettlement {
        won: true,
        void_factor: Factor::ZERO,
        dead_heat_factor: Factor::ONE,
    };
    pub const LOST: OutcomeSettlement = OutcomeSettlement {
        won: false,
        void_factor: Factor::ZERO,
        dead_heat_factor: Factor::ONE,
    };

    /// The exact return per unit of stake of a bet on this outcome at `price`.
    pub fn factor(&self, price: Price) -> Result<Factor, RatioOverflow> {
        let settled = ratio::sub(Factor::ONE, self.void_factor)?;
        let by_result = if self.won {
            ratio::mul(price.factor(), self.dead_heat_factor)?
        } else {
            Factor::ZERO
        };
        ratio::add(self.void_factor, ratio::mul(settled, by_result)?)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("factor {0:?} is not a decimal number between 0 and 1 with at most 9 decimals")]
pub struct FactorParseError(pub String);

/// Parse a UOF factor ("0.5", "1", "1.0", "0.333333333") exactly.
pub fn parse_unit_factor(s: &str) -> Result<Factor, FactorParseError> {
    let bad = || FactorParseError(s.chars().take(24).collect());
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || int.len() > 1
        || frac.len() > 9
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let den = 10u64.pow(frac.len() as u32);
    let num = int.parse::<u64>().map_err(|_| bad())? * den
        + if frac.is_empty() {
            0
        } else {
            frac.parse::<u64>().map_err(|_| bad())?
        };
    if num > den {
        return Err(bad());
    }
    ratio::mul(Factor::new(num, den), Factor::ONE).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payout::payout_minor;
    use crate::settle::LegResult;
    use proptest::prelude::*;

    fn o(won: bool, void: &str, dh: &str) -> OutcomeSettlement {
        OutcomeSettlement {
            won,
            void_factor: parse_unit_factor(void).unwrap(),
            dead_heat_factor: parse_unit_factor(dh).unwrap(),
        }
    }

    /// Source: Sportradar UOF `VoidFactor` (Zero / Half / One) and `DeadHeatFactor` (module
    /// docs). £10 at 3.00 in pence.
    #[test]
    fn uof_void_and_dead_heat_table() {
        let table = [
            (o(true, "0", "1"), 3000),   // won
            (o(false, "0", "1"), 0),     // lost
            (o(false, "1", "1"), 1000),  // fully void: stake back
            (o(true, "1", "1"), 1000),   // void wins over the result
            (o(true, "0.5", "1"), 2000), // half won, half refunded: 500 × 3 + 500
            (o(false, "0.5", "1"), 500), // half lost, half refunded
            (o(true, "0", "0.5"), 1500), // dead heat of two: half stake at full odds
            (o(true, "0.0", "1.0"), 3000),
            (o(true, "0", "0.333333333"), 999), // ⅓ as the feed writes it, floored
        ];
        for (s, paid) in table {
            assert_eq!(
                payout_minor(1000, &[s.factor(Price::parse("3.0").unwrap()).unwrap()]),
                Some(paid),
                "{s:?}"
            );
        }
    }

    /// UOF's encoding of Asian quarter lines gives the same factor as `LegResult`.
    #[test]
    fn agrees_with_leg_results() {
        let p = Price::parse("1.9").unwrap();
        let pairs = [
            (LegResult::Win, o(true, "0", "1")),
            (LegResult::Lose, o(false, "0", "1")),
            (LegResult::Void, o(false, "1", "1")),
            (LegResult::HalfWin, o(true, "0.5", "1")),
            (LegResult::HalfLose, o(false, "0.5", "1")),
        ];
        for (r, s) in pairs {
            // Compared in lowest terms (LegResult keeps the price's 1/1000 denominator).
            assert_eq!(ratio::mul(r.factor(p), Factor::ONE), s.factor(p), "{r:?}");
        }
    }

    #[test]
    fn parsing_is_exact_and_strict() {
        assert_eq!(parse_unit_factor("0.5"), Ok(Factor::HALF));
        assert_eq!(parse_unit_factor("1.0"), Ok(Factor::ONE));
        assert_eq!(parse_unit_factor("0.25"), Ok(Factor::new(1, 4)));
        for bad in [
            "",
            "1.5",
            "2",
            "-0.5",
            "0,5",
            "5e-1",
            ".5",
            "0.1234567891",
            "0.5 ",
        ] {
            assert!(parse_unit_factor(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Never more than stake × price; void 1 is the stake; dead heat 1 is a plain result.
        #[test]
        fn properties(stake in 0i64..10_000_000, m in 1001u64..100_000, won: bool, v in 0u64..=4, dh in 1u64..=4) {
            let price = Price::from_milli(m).unwrap();
            let s = OutcomeSettlement { won, void_factor: Factor::new(v, 4), dead_heat_factor: Factor::new(dh, 4) };
            let paid = payout_minor(stake, &[s.factor(price).unwrap()]).unwrap();
            prop_assert!(paid <= payout_minor(stake, &[price.factor()]).unwrap());
            if v == 4 { prop_assert_eq!(paid, stake); }
            let plain = OutcomeSettlement { dead_heat_factor: Factor::ONE, void_factor: Factor::ZERO, won };
            let expect = if won { payout_minor(stake, &[price.factor()]) } else { Some(0) };
            prop_assert_eq!(payout_minor(stake, &[plain.factor(price).unwrap()]), expect);
        }
    }
}
