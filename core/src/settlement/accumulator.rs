//! Accumulators (parlays, multiples): the stake rides on every leg in turn, so the return is
//! the stake times the product of the legs' factors. A void leg (a non-runner, a postponed
//! match, a push) is priced at 1.0 and the bet continues on the remaining legs; a losing leg
//! loses the whole bet. An each-way accumulator is two accumulators: the win legs and the place
//! legs, each at its own factors.
//!
//! Source: the UK bookmakers' general rule for multiples, following Tattersalls' Rules on
//! Betting: a non-runner or void selection in a double, treble or accumulator is removed and
//! the bet stands on the remaining selections, which is the same as pricing that leg at 1.0;
//! Sportradar UOF bet settlement (a void outcome returns the stake, so it multiplies the
//! running return by 1). The per-leg factors come from
//! [`crate::settle::LegResult`], [`super::void_factor`], [`super::each_way`] and
//! [`super::rule4`], so every rule composes: a half-won quarter line, a dead heat or a Rule 4
//! deduction on one leg scales the whole accumulator.

use super::each_way::EachWayFactors;
use crate::payout::{Factor, payout_minor, payout_sum_minor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("accumulator payout overflows")]
pub struct AccumulatorOverflow;

/// Return of an accumulator of `legs` (exact factors, void legs at [`Factor::ONE`]).
pub fn accumulator_payout_minor(
    stake_minor: i64,
    legs: &[Factor],
) -> Result<i64, AccumulatorOverflow> {
    payout_minor(stake_minor, legs).ok_or(AccumulatorOverflow)
}

/// Return of an each-way accumulator of `stake_per_part_minor` per part: the win accumulator
/// plus the place accumulator, rounded down once over the sum.
pub fn each_way_accumulator_payout_minor(
    stake_per_part_minor: i64,
    legs: &[EachWayFactors],
) -> Result<i64, AccumulatorOverflow> {
    let win: Vec<Factor> = legs.iter().map(|l| l.win).collect();
    let place: Vec<Factor> = legs.iter().map(|l| l.place).collect();
    payout_sum_minor(stake_per_part_minor, &[&win, &place]).ok_or(AccumulatorOverflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::price::Price;
    use crate::settle::LegResult::{self, *};
    use crate::settlement::each_way::{Finish, each_way_factors, standard_place_terms};
    use crate::settlement::rule4::Deduction;
    use proptest::prelude::*;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }

    /// Source: Tattersalls' accumulator rule (void legs settle at 1.0), module docs. £10 in
    /// pence.
    #[test]
    fn accumulator_table() {
        let table: &[(&[(LegResult, &str)], i64)] = &[
            (&[(Win, "2.0"), (Win, "3.0")], 6000),
            (&[(Win, "2.0"), (Lose, "3.0")], 0),
            (&[(Win, "2.0"), (Void, "3.0"), (Win, "1.5")], 3000),
            (&[(Void, "2.0"), (Void, "3.0")], 1000),
            (&[(Win, "2.0"), (Push, "1.9")], 2000),
            (&[(HalfWin, "1.9"), (Win, "2.0")], 2900),
            (&[(HalfLose, "1.9"), (Win, "2.0")], 1000),
            (&[(Void, "5.0"), (Lose, "1.01")], 0),
        ];
        for (legs, paid) in table {
            let f: Vec<Factor> = legs.iter().map(|(r, pr)| r.factor(p(pr))).collect();
            assert_eq!(accumulator_payout_minor(1000, &f), Ok(*paid), "{legs:?}");
        }
    }

    /// Each-way double: £5 e/w (£10 total), leg 1 wins at 5/1 (8 runners, 1/5 odds), leg 2 is
    /// placed 2nd at 3/1 (6 runners, 1/4 odds): the win double loses; the place double pays
    /// 5 × (1 + 5/5) × (1 + 3/4) = £17.50.
    #[test]
    fn each_way_double() {
        let l1 = each_way_factors(
            p("6.0"),
            Finish::Position {
                position: 1,
                tied: 1,
            },
            standard_place_terms(8, false),
            Deduction::NONE,
        )
        .unwrap();
        let l2 = each_way_factors(
            p("4.0"),
            Finish::Position {
                position: 2,
                tied: 1,
            },
            standard_place_terms(6, false),
            Deduction::NONE,
        )
        .unwrap();
        assert_eq!(each_way_accumulator_payout_minor(500, &[l1, l2]), Ok(1750));
        // A non-runner in the double: settled as a single on the other leg (win 30 + place 10).
        let nr = each_way_factors(p("4.0"), Finish::NonRunner, None, Deduction::NONE).unwrap();
        assert_eq!(each_way_accumulator_payout_minor(500, &[l1, nr]), Ok(4000));
    }

    proptest! {
        /// Never more than stake × product of prices; all-void returns the stake; adding a void
        /// leg changes nothing.
        #[test]
        fn properties(stake in 0i64..1_000_000, legs in proptest::collection::vec((0usize..6, 1001u64..20_000), 1..8)) {
            let results = [Win, Lose, Push, Void, HalfWin, HalfLose];
            let prices: Vec<Price> = legs.iter().map(|&(_, m)| Price::from_milli(m).unwrap()).collect();
            let f: Vec<Factor> = legs.iter().zip(&prices).map(|(&(r, _), pr)| results[r].factor(*pr)).collect();
            let paid = accumulator_payout_minor(stake, &f).unwrap();
            let max: Vec<Factor> = prices.iter().map(|pr| pr.factor()).collect();
            prop_assert!(paid <= accumulator_payout_minor(stake, &max).unwrap());
            let voids = vec![Factor::ONE; legs.len()];
            prop_assert_eq!(accumulator_payout_minor(stake, &voids), Ok(stake));
            let mut with_void = f.clone();
            with_void.push(Void.factor(prices[0]));
            prop_assert_eq!(accumulator_payout_minor(stake, &with_void), Ok(paid));
        }
    }
}
