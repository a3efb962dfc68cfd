//! Each-way bets on races: two bets of equal stake, one to win and one to place, the place
//! part paid at a fraction of the win odds for a number of places set by the field size.
//!
//! Source for the place terms: the **standard UK each-way terms** printed in bookmakers' horse
//! racing rules (e.g. William Hill, bet365, Betfair Sportsbook "Each Way Terms"):
//!
//! | runners        | race            | places | fraction of the odds |
//! |----------------|-----------------|--------|----------------------|
//! | 2–4            | any             | win only (no place part; it is settled as a win bet) | |
//! | 5–7            | any             | 2      | 1/4 |
//! | 8+             | non-handicap    | 3      | 1/5 |
//! | 8–11           | handicap        | 3      | 1/5 |
//! | 12–15          | handicap        | 3      | 1/4 |
//! | 16+            | handicap        | 4      | 1/4 |
//!
//! The field size is the number of runners that come under starter's orders (non-runners do
//! not count), so a withdrawal can change the terms. When a race has fewer than five runners
//! the bookmakers' rules settle an each-way bet as a win bet of the whole stake: the "place"
//! stake is placed to win as well.
//!
//! A Rule 4 deduction ([`super::rule4`]) reduces the winnings of both parts; a dead heat
//! ([`super::dead_heat`]) divides each part's stake separately (win: ties for first; place:
//! ties for the last paid place). The two parts are priced exactly and rounded down once over
//! their sum ([`crate::payout::payout_sum_minor`]).

use super::dead_heat::{DeadHeatError, dead_heat_factor};
use super::ratio::{self, RatioOverflow};
use super::rule4::Deduction;
use crate::payout::{Factor, payout_sum_minor};
use crate::price::Price;
use serde::{Deserialize, Serialize};

/// Places paid and the fraction of the odds they are paid at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceTerms {
    pub places: u16,
    pub fraction: Factor,
}

/// Standard UK each-way terms for a race of `runners` (see the module table). `None`: win only.
pub fn standard_place_terms(runners: u16, handicap: bool) -> Option<PlaceTerms> {
    let t = |places, n, d| {
        Some(PlaceTerms {
            places,
            fraction: Factor::new(n, d),
        })
    };
    match (runners, handicap) {
        (0..=4, _) => None,
        (5..=7, _) => t(2, 1, 4),
        (8..=11, _) | (_, false) => t(3, 1, 5),
        (12..=15, true) => t(3, 1, 4),
        (_, true) => t(4, 1, 4),
    }
}

/// How a runner finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Finish {
    /// Withdrawn (did not come under orders): bets on it are void, stakes returned.
    NonRunner,
    /// Placed at `position` (1 = won), sharing it with `tied` runners including itself
    /// (1 = no dead heat).
    Position { position: u16, tied: u16 },
    /// Ran but was not placed (or did not finish).
    Unplaced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EachWayError {
    #[error(transparent)]
    DeadHeat(#[from] DeadHeatError),
    #[error(transparent)]
    Overflow(#[from] RatioOverflow),
    #[error("payout overflows")]
    PayoutOverflow,
}

/// The exact factors of one runner's win and place parts (per unit of each part's stake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EachWayFactors {
    pub win: Factor,
    pub place: Factor,
}

/// Factors of the two parts for a runner at `price` that finished `finish`, under `terms`
/// (`None` = fewer than five runners: the place part is settled as a second win part) and the
/// bet's Rule 4 deduction.
pub fn each_way_factors(
    price: Price,
    finish: Finish,
    terms: Option<PlaceTerms>,
    deduction: Deduction,
) -> Result<EachWayFactors, EachWayError> {
    let (position, tied) = match finish {
        Finish::NonRunner => {
            return Ok(EachWayFactors {
                win: Factor::ONE,
                place: Factor::ONE,
            });
        }
        Finish::Unplaced => {
            return Ok(EachWayFactors {
                win: Factor::ZERO,
                place: Factor::ZERO,
            });
        }
        Finish::Position { position, tied } => (position, tied),
    };
    let winnings = ratio::mul(ratio::odds_against(price), deduction.kept())?;
    let win_full = ratio::add(Factor::ONE, winnings)?;
    let win = ratio::mul(win_full, dead_heat_factor(position, tied, 1)?)?;
    let place = match terms {
        None => win,
        Some(t) => {
            let full = ratio::stake_plus(winnings, t.fraction)?;
            ratio::mul(full, dead_heat_factor(position, tied, t.places)?)?
        }
    };
    Ok(EachWayFactors { win, place })
}

/// Total return of an each-way bet of `stake_per_part_minor` on each part (the bet costs
/// twice that), rounded down once.
pub fn each_way_payout_minor(
    stake_per_part_minor: i64,
    f: EachWayFactors,
) -> Result<i64, EachWayError> {
    payout_sum_minor(stake_per_part_minor, &[&[f.win], &[f.place]])
        .ok_or(EachWayError::PayoutOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payout::payout_minor;
    use proptest::prelude::*;

    /// Standard UK each-way terms by field size (module table; bookmakers' racing rules).
    #[test]
    fn place_terms_table() {
        let q = |places| {
            Some(PlaceTerms {
                places,
                fraction: Factor::new(1, 4),
            })
        };
        let f = |places| {
            Some(PlaceTerms {
                places,
                fraction: Factor::new(1, 5),
            })
        };
        // (runners, handicap, terms)
        let table = [
            (2, false, None),
            (4, true, None),
            (5, false, q(2)),
            (7, true, q(2)),
            (8, false, f(3)),
            (8, true, f(3)),
            (11, true, f(3)),
            (12, false, f(3)),
            (12, true, q(3)),
            (15, true, q(3)),
            (16, true, q(4)),
            (16, false, f(3)),
            (30, true, q(4)),
        ];
        for (runners, hcap, terms) in table {
            assert_eq!(
                standard_place_terms(runners, hcap),
                terms,
                "{runners} {hcap}"
            );
        }
    }

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    fn pos(position: u16, tied: u16) -> Finish {
        Finish::Position { position, tied }
    }

    /// Worked examples in minor units (pence). Sources: module docs; DAZN Bet "Each Way Dead
    /// Heats" (£20 e/w at 16/1, 1/4 odds 3 places, joint 3rd of two → £50).
    #[test]
    fn each_way_table() {
        let t3q = standard_place_terms(12, true); // 3 places at 1/4
        let t2q = standard_place_terms(6, false); // 2 places at 1/4
        let t3f = standard_place_terms(9, false); // 3 places at 1/5
        let none = Deduction::NONE;
        // (stake per part, price, finish, terms, deduction, total return)
        let table = [
            // £10 e/w at 5/1, wins, 1/4 odds: 60 + 10 × 2.25 = £82.50
            (1000, "6.0", pos(1, 1), t3q, none, 8250),
            // same, placed 2nd: place only, £22.50
            (1000, "6.0", pos(2, 1), t3q, none, 2250),
            // 3rd of 3 places at 1/5: 10 × (1 + 1) = £20
            (1000, "6.0", pos(3, 1), t3f, none, 2000),
            // 3rd with only 2 places: loses both parts
            (1000, "6.0", pos(3, 1), t2q, none, 0),
            (1000, "6.0", Finish::Unplaced, t3q, none, 0),
            // Non-runner: both stakes back
            (1000, "6.0", Finish::NonRunner, t3q, none, 2000),
            // DAZN: £20 e/w at 16/1, joint 3rd of two: £10 × (1 + 4) = £50
            (2000, "17.0", pos(3, 2), t3q, none, 5000),
            // Dead heat for first of two: win half stake at full odds (10 × 6 / 2 = 30), place
            // part full (both occupy places 1 and 2): 22.50
            (1000, "6.0", pos(1, 2), t3q, none, 5250),
            // Fewer than 5 runners: win only, both parts on the win: 2 × 60 = £120
            (1000, "6.0", pos(1, 1), None, none, 12000),
            (1000, "6.0", pos(2, 1), None, none, 0),
            // Rule 4 of 25p: winnings 50 × 0.75 = 37.50 → win 47.50; place 10 + 37.5/4 = 19.375
            // total 66.875 → 6687p (rounded down once)
            (1000, "6.0", pos(1, 1), t3q, Deduction(25), 6687),
        ];
        for (stake, price, finish, terms, d, total) in table {
            let f = each_way_factors(p(price), finish, terms, d).unwrap();
            assert_eq!(
                each_way_payout_minor(stake, f),
                Ok(total),
                "{stake} {price} {finish:?} {terms:?} {d:?}"
            );
        }
    }

    proptest! {
        /// Never more than both parts winning at full price; a winner with no deduction and no
        /// dead heat gets exactly win + place; a tie of one runner is no dead heat.
        #[test]
        fn properties(stake in 0i64..10_000_000, m in 1001u64..200_000, runners in 2u16..30, hcap: bool, position in 1u16..6, d in 0u8..=75) {
            let price = Price::from_milli(m).unwrap();
            let terms = standard_place_terms(runners, hcap);
            let f = each_way_factors(price, pos(position, 1), terms, Deduction(d)).unwrap();
            let paid = each_way_payout_minor(stake, f).unwrap();
            prop_assert!(paid <= payout_minor(2 * stake, &[price.factor()]).unwrap());
            if position == 1 && d == 0 {
                let win = price.factor();
                let place = match terms {
                    Some(t) => ratio::stake_plus(ratio::odds_against(price), t.fraction).unwrap(),
                    None => win,
                };
                prop_assert_eq!(paid, payout_sum_minor(stake, &[&[win], &[place]]).unwrap());
            }
        }
    }
}
