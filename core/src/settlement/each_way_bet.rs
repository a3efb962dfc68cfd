//! An each-way bet as a customer strikes it on a race-win market: the unit stake goes on each
//! of two parts (win and place), so the bet costs twice the unit. The place terms are the
//! market's each-way terms at the time the bet was struck ([`EachWayTerms`], printed on the
//! slip). This module turns those terms into the returns the slip shows and settles the bet
//! from each leg's finish, by composing [`super::each_way`] (exact factors, dead heats, Rule 4)
//! with [`super::accumulator`] (an each-way multiple is a win multiple plus a place multiple).

use super::each_way::{EachWayError, EachWayFactors, Finish, PlaceTerms, each_way_factors};
use super::rule4::Deduction;
use crate::market::EachWayTerms;
use crate::payout::{Factor, payout_minor, payout_sum_minor};
use crate::price::Price;
use crate::settle::LegResult;

/// The market's terms as exact place terms.
pub fn place_terms(t: EachWayTerms) -> PlaceTerms {
    PlaceTerms {
        places: u16::from(t.places),
        fraction: Factor::new(u64::from(t.fraction_num), u64::from(t.fraction_den)),
    }
}

/// What the slip promises for a unit stake: the return if every selection wins (both parts
/// pay) and if every selection is placed without winning (the place part only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EachWayReturns {
    pub total_stake_minor: i64,
    pub if_won_minor: i64,
    pub if_placed_minor: i64,
}

/// Returns of an each-way single (one leg) or multiple at `unit_stake_minor` per part.
/// `None` on overflow or an empty bet.
pub fn each_way_returns(
    unit_stake_minor: i64,
    legs: &[(Price, EachWayTerms)],
) -> Option<EachWayReturns> {
    if legs.is_empty() {
        return None;
    }
    let won = Finish::Position {
        position: 1,
        tied: 1,
    };
    let mut win = Vec::with_capacity(legs.len());
    let mut place = Vec::with_capacity(legs.len());
    for (price, terms) in legs {
        let f = each_way_factors(*price, won, Some(place_terms(*terms)), Deduction::NONE).ok()?;
        win.push(f.win);
        place.push(f.place);
    }
    Some(EachWayReturns {
        total_stake_minor: unit_stake_minor.checked_mul(2)?,
        if_won_minor: payout_sum_minor(unit_stake_minor, &[&win, &place])?,
        if_placed_minor: payout_minor(unit_stake_minor, &place)?,
    })
}

/// One leg of an each-way bet and how its runner finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EachWayLeg {
    pub price: Price,
    pub terms: EachWayTerms,
    pub finish: Finish,
    /// Rule 4 deduction that applies to the bet (by the time it was struck).
    pub deduction: Deduction,
}

/// What each leg did, for the settlement record: won (both parts), placed (place part only),
/// lost, or void (a non-runner: both parts' stakes ride on at 1.0).
pub fn leg_result(leg: &EachWayLeg) -> LegResult {
    match leg.finish {
        Finish::NonRunner => LegResult::Void,
        Finish::Position { position: 1, .. } => LegResult::Win,
        Finish::Position { position, .. } if position <= u16::from(leg.terms.places) => {
            LegResult::Placed
        }
        Finish::Position { .. } | Finish::Unplaced => LegResult::Lose,
    }
}

/// Settle an each-way bet of `unit_stake_minor` per part: the total return (win multiple plus
/// place multiple, rounded down once) and each leg's result.
pub fn settle_each_way(
    unit_stake_minor: i64,
    legs: &[EachWayLeg],
) -> Result<(i64, Vec<LegResult>), EachWayError> {
    let factors: Vec<EachWayFactors> = legs
        .iter()
        .map(|l| each_way_factors(l.price, l.finish, Some(place_terms(l.terms)), l.deduction))
        .collect::<Result<_, _>>()?;
    let win: Vec<Factor> = factors.iter().map(|f| f.win).collect();
    let place: Vec<Factor> = factors.iter().map(|f| f.place).collect();
    let payout =
        payout_sum_minor(unit_stake_minor, &[&win, &place]).ok_or(EachWayError::PayoutOverflow)?;
    Ok((payout, legs.iter().map(leg_result).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Price {
        Price::parse(s).unwrap()
    }
    const FIFTH_3: EachWayTerms = EachWayTerms {
        places: 3,
        fraction_num: 1,
        fraction_den: 5,
    };
    const QUARTER_2: EachWayTerms = EachWayTerms {
        places: 2,
        fraction_num: 1,
        fraction_den: 4,
    };
    fn at(position: u16) -> Finish {
        Finish::Position { position, tied: 1 }
    }
    fn leg(price: &str, terms: EachWayTerms, finish: Finish) -> EachWayLeg {
        EachWayLeg {
            price: p(price),
            terms,
            finish,
            deduction: Deduction::NONE,
        }
    }

    /// £5 each-way (£10 total) at 11/1 (12.0), 1/5 odds 3 places: won = 5 × 12 + 5 × (1 +
    /// 11/5) = 60 + 16 = £76; placed = £16. Worked like the bookmakers' each-way examples
    /// (module docs of `super::each_way`).
    #[test]
    fn single_returns_and_settlement() {
        let r = each_way_returns(500, &[(p("12.0"), FIFTH_3)]).unwrap();
        assert_eq!(
            r,
            EachWayReturns {
                total_stake_minor: 1000,
                if_won_minor: 7600,
                if_placed_minor: 1600,
            }
        );
        let table = [
            (at(1), 7600, LegResult::Win),
            (at(2), 1600, LegResult::Placed),
            (at(3), 1600, LegResult::Placed),
            (at(4), 0, LegResult::Lose),
            (Finish::Unplaced, 0, LegResult::Lose),
            (Finish::NonRunner, 1000, LegResult::Void),
            // Dead heat for 3rd of two: the place part's stake is halved: 5/2 × 3.2 = £8.
            (
                Finish::Position {
                    position: 3,
                    tied: 2,
                },
                800,
                LegResult::Placed,
            ),
        ];
        for (finish, payout, result) in table {
            let got = settle_each_way(500, &[leg("12.0", FIFTH_3, finish)]).unwrap();
            assert_eq!(got, (payout, vec![result]), "{finish:?}");
        }
    }

    /// £1 each-way double: 3/1 (4.0) at 1/4 two places, 5/1 (6.0) at 1/5 three places.
    /// Both win: 1 × 4 × 6 + 1 × 1.75 × 2 = 24 + 3.50 = £27.50. Both placed: £3.50. One
    /// wins, one placed: win multiple lost, place multiple £3.50. A non-runner leg rides at 1.0.
    #[test]
    fn each_way_double() {
        let terms = [(p("4.0"), QUARTER_2), (p("6.0"), FIFTH_3)];
        let r = each_way_returns(100, &terms).unwrap();
        assert_eq!((r.if_won_minor, r.if_placed_minor), (2750, 350));
        let s = |a, b| {
            settle_each_way(100, &[leg("4.0", QUARTER_2, a), leg("6.0", FIFTH_3, b)])
                .unwrap()
                .0
        };
        assert_eq!(s(at(1), at(1)), 2750);
        assert_eq!(s(at(2), at(3)), 350);
        assert_eq!(s(at(1), at(2)), 350);
        assert_eq!(s(at(3), at(1)), 0); // third with two places paid: the double is lost
        assert_eq!(s(Finish::NonRunner, at(1)), 600 + 200);
    }

    proptest! {
        /// A placed runner never returns more than a winner, nor more than the whole stake at
        /// the win price on both parts; the returns are never negative.
        #[test]
        fn placed_at_most_won(unit in 1i64..1_000_000, milli in 1001u64..200_000, places in 1u8..=5, den in 2u8..=6) {
            let terms = EachWayTerms { places, fraction_num: 1, fraction_den: den };
            let price = Price::from_milli(milli).unwrap();
            let r = each_way_returns(unit, &[(price, terms)]).unwrap();
            prop_assert!(0 <= r.if_placed_minor && r.if_placed_minor <= r.if_won_minor);
            prop_assert!(r.if_won_minor <= payout_minor(r.total_stake_minor, &[price.factor()]).unwrap());
            let won = settle_each_way(unit, &[EachWayLeg { price, terms, finish: at(1), deduction: Deduction::NONE }]).unwrap().0;
            prop_assert_eq!(won, r.if_won_minor);
        }
    }
}
