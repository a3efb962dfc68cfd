//! Rule 4 deductions: when a runner is withdrawn after a price was struck, winnings on the
//! other runners are reduced by a number of pence in the pound, set by the withdrawn runner's
//! price at the time of withdrawal.
//!
//! Source: **Tattersalls' Rules on Betting, Rule 4(c)**, "scale of deductions" (the scale every
//! UK and Irish bookmaker applies; reproduced e.g. in William Hill's help page "Rule 4
//! Deduction" and mathematician-betting.co.uk/rule4.asp). The same rule sets:
//! - the deduction is taken from the **winnings** only; the stake is returned in full;
//! - it applies to bets struck **before** the withdrawal at the price then on offer; bets struck
//!   after it (in the re-formed market) are not subject to it;
//! - starting-price bets are affected only when there was no time to form a new market
//!   (a withdrawal at the start): [`Withdrawal::new_market_formed`];
//! - with two or more withdrawals the deductions are **added**, and the total shall not exceed
//!   **75p in the £** ([`MAX_TOTAL_PENCE`]).
//!
//! Band edges: the scale lists ranges of traditional fractions ("13/8 to 7/4: 35p"). A price
//! between two ranges (e.g. 1.19, between 2/11 and 1/5) belongs to the range below it, i.e. the
//! shorter-priced band with the larger deduction, as bookmakers' decimal versions of the table
//! do (Unibet "Horse Racing - Rule 4": "1.13 - 1.19: 85p"). Over 14/1 there is no deduction.

use super::ratio::{self, RatioOverflow};
use crate::payout::Factor;
use crate::price::{PRICE_SCALE, Price};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Total deductions for several withdrawals are capped at this (Rule 4(c)).
pub const MAX_TOTAL_PENCE: u8 = 75;

/// A deduction in pence in the pound of winnings (0..=90).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Deduction(pub u8);

impl Deduction {
    pub const NONE: Deduction = Deduction(0);
    /// The fraction of winnings kept: `(100 − pence) / 100`.
    pub fn kept(self) -> Factor {
        Factor::new(100 - u64::from(self.0.min(100)), 100)
    }
}

/// The Rule 4(c) scale: (shortest fractional odds of the band as num/den, pence). A price is
/// in the last band whose start is at or below it; 1/9 or shorter is 90p.
const SCALE: &[(u64, u64, u8)] = &[
    (0, 1, 90),  // 1/9 or shorter
    (2, 17, 85), // 2/17 to 2/11
    (1, 5, 80),  // 1/5 to 1/4
    (2, 7, 75),  // 2/7 to 3/10
    (1, 3, 70),  // 1/3 to 2/5
    (4, 9, 65),  // 4/9 to 8/15
    (4, 7, 60),  // 4/7 to 8/13
    (4, 6, 55),  // 4/6 to 4/5
    (5, 6, 50),  // 5/6 to 20/21
    (1, 1, 45),  // evens to 6/5
    (5, 4, 40),  // 5/4 to 6/4
    (13, 8, 35), // 13/8 to 7/4
    (15, 8, 30), // 15/8 to 9/4
    (5, 2, 25),  // 5/2 to 3/1
    (10, 3, 20), // 10/3 to 4/1
    (9, 2, 15),  // 9/2 to 11/2
    (6, 1, 10),  // 6/1 to 9/1
    (10, 1, 5),  // 10/1 to 14/1
];

/// The Rule 4(c) deduction for one withdrawn runner at `price` when it was withdrawn.
pub fn tattersalls_deduction(price: Price) -> Deduction {
    // Fractional odds in thousandths. Band starts are rounded down to the same scale, as
    // `Price::from_fraction` rounds a quoted fraction, so a listed fraction (2/17 → 1.117)
    // always lands in its own band.
    let f = price.milli() - PRICE_SCALE;
    if f > 14 * PRICE_SCALE {
        return Deduction::NONE; // over 14/1
    }
    let mut pence = 90;
    for &(n, d, p) in SCALE {
        if f >= n * PRICE_SCALE / d {
            pence = p;
        }
    }
    Deduction(pence)
}

/// One withdrawn runner (a non-runner), as the results source reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawal {
    /// The runner's price at the time it was withdrawn.
    pub price: Price,
    pub withdrawn_at: UnixMillis,
    /// A new market was formed after the withdrawal, so starting prices already reflect it and
    /// SP bets take no deduction for it. False for a withdrawal at the start.
    pub new_market_formed: bool,
}

/// How the bet was priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceTaken {
    /// A fixed price struck at `struck_at`.
    Fixed { struck_at: UnixMillis },
    /// Starting price.
    Starting,
}

/// The total deduction for one bet: the sum over the withdrawals it is subject to, capped at
/// 75p. A fixed-price bet is subject to a withdrawal if it was struck strictly before it.
pub fn deduction_for_bet(withdrawals: &[Withdrawal], taken: PriceTaken) -> Deduction {
    let total: u32 = withdrawals
        .iter()
        .filter(|w| match taken {
            PriceTaken::Fixed { struck_at } => struck_at < w.withdrawn_at,
            PriceTaken::Starting => !w.new_market_formed,
        })
        .map(|w| u32::from(tattersalls_deduction(w.price).0))
        .sum();
    Deduction(total.min(u32::from(MAX_TOTAL_PENCE)) as u8)
}

/// The settlement factor of a winning leg at `price` after deduction `d`:
/// `1 + (price − 1) × (100 − d) / 100`.
pub fn win_factor(price: Price, d: Deduction) -> Result<Factor, RatioOverflow> {
    ratio::stake_plus(ratio::odds_against(price), d.kept())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payout::payout_minor;
    use proptest::prelude::*;

    fn frac(n: u64, d: u64) -> Price {
        Price::from_fraction(n, d).unwrap()
    }

    /// Every band of the Tattersalls Rule 4(c) scale at both of its listed ends, plus the
    /// in-between and over-14/1 edges. Source: Tattersalls' Rules on Betting, Rule 4(c).
    #[test]
    fn tattersalls_rule_4c_scale_table() {
        let table: &[((u64, u64), u8)] = &[
            ((1, 10), 90),
            ((1, 9), 90),
            ((2, 17), 85),
            ((2, 11), 85),
            ((1, 5), 80),
            ((1, 4), 80),
            ((2, 7), 75),
            ((3, 10), 75),
            ((1, 3), 70),
            ((2, 5), 70),
            ((4, 9), 65),
            ((8, 15), 65),
            ((4, 7), 60),
            ((8, 13), 60),
            ((4, 6), 55),
            ((4, 5), 55),
            ((5, 6), 50),
            ((20, 21), 50),
            ((1, 1), 45),
            ((6, 5), 45),
            ((5, 4), 40),
            ((6, 4), 40),
            ((13, 8), 35),
            ((7, 4), 35),
            ((15, 8), 30),
            ((9, 4), 30),
            ((5, 2), 25),
            ((3, 1), 25),
            ((10, 3), 20),
            ((4, 1), 20),
            ((9, 2), 15),
            ((11, 2), 15),
            ((6, 1), 10),
            ((9, 1), 10),
            ((10, 1), 5),
            ((14, 1), 5),
            ((15, 1), 0),
            ((33, 1), 0),
        ];
        for &((n, d), pence) in table {
            assert_eq!(
                tattersalls_deduction(frac(n, d)),
                Deduction(pence),
                "{n}/{d}"
            );
        }
        // Between bands: the shorter band (larger deduction) applies.
        assert_eq!(
            tattersalls_deduction(Price::parse("1.19").unwrap()),
            Deduction(85)
        );
        assert_eq!(
            tattersalls_deduction(Price::parse("2.24").unwrap()),
            Deduction(45)
        );
        assert_eq!(
            tattersalls_deduction(Price::parse("15.0").unwrap()),
            Deduction(5)
        );
        assert_eq!(
            tattersalls_deduction(Price::parse("15.001").unwrap()),
            Deduction(0)
        );
    }

    /// Worked example (mathematician-betting.co.uk, Rule 4(c)): £100 at 10/1, a non-runner at
    /// 5/1 (15p): winnings £1000 × 0.85 = £850, return £950.
    #[test]
    fn worked_examples() {
        let d = deduction_for_bet(
            &[Withdrawal {
                price: frac(5, 1),
                withdrawn_at: UnixMillis(2),
                new_market_formed: true,
            }],
            PriceTaken::Fixed {
                struck_at: UnixMillis(1),
            },
        );
        assert_eq!(d, Deduction(15));
        let f = win_factor(frac(10, 1), d).unwrap();
        assert_eq!(payout_minor(10_000, &[f]), Some(95_000));
        // £10 at 8/1, favourite out at 3/1 (25p): 10 + 80 × 0.75 = £70.
        let f = win_factor(frac(8, 1), tattersalls_deduction(frac(3, 1))).unwrap();
        assert_eq!(payout_minor(1000, &[f]), Some(7000));
    }

    /// Several withdrawals: deductions added, by bet time, capped at 75p (Rule 4(c)).
    #[test]
    fn several_withdrawals_by_bet_time_table() {
        let w = |price: (u64, u64), at: i64, formed: bool| Withdrawal {
            price: frac(price.0, price.1),
            withdrawn_at: UnixMillis(at),
            new_market_formed: formed,
        };
        let ws = [
            w((3, 1), 100, true),
            w((6, 4), 200, true),
            w((1, 2), 300, false),
        ];
        let fixed = |t: i64| PriceTaken::Fixed {
            struck_at: UnixMillis(t),
        };
        let table = [
            // struck before all three: 25 + 40 + 65 = 130 → capped at 75
            (fixed(50), 75),
            // after the first: 40 + 65 = 105 → 75
            (fixed(150), 75),
            // after the second: 65
            (fixed(250), 65),
            // struck at the withdrawal instant: the new market, no deduction for it
            (fixed(300), 0),
            (fixed(400), 0),
            // SP: only the withdrawal without a new market
            (PriceTaken::Starting, 65),
        ];
        for (taken, pence) in table {
            assert_eq!(deduction_for_bet(&ws, taken), Deduction(pence), "{taken:?}");
        }
        let two = [w((3, 1), 100, true), w((6, 4), 200, true)];
        assert_eq!(deduction_for_bet(&two, fixed(50)), Deduction(65));
    }

    proptest! {
        /// No deduction is the identity; a deduction never increases a return and never touches
        /// the stake; the scale is monotone (shorter non-runner, larger deduction).
        #[test]
        fn properties(stake in 0i64..10_000_000, p in 1001u64..200_000, q in 1001u64..200_000, pence in 0u8..=75) {
            let price = Price::from_milli(p).unwrap();
            let none = win_factor(price, Deduction::NONE).unwrap();
            prop_assert_eq!(payout_minor(stake, &[none]), payout_minor(stake, &[price.factor()]));
            let reduced = payout_minor(stake, &[win_factor(price, Deduction(pence)).unwrap()]).unwrap();
            prop_assert!(reduced <= payout_minor(stake, &[price.factor()]).unwrap());
            prop_assert!(reduced >= stake);
            let (a, b) = (Price::from_milli(p.min(q)).unwrap(), Price::from_milli(p.max(q)).unwrap());
            prop_assert!(tattersalls_deduction(a) >= tattersalls_deduction(b));
        }
    }
}
