//! One racing bet (win or each-way, fixed price or SP) settled against a race result: the
//! composition of [`super::rule4`] (deduction by the time the bet was struck),
//! [`super::each_way`] (place terms by the number of runners) and [`super::dead_heat`].

use super::each_way::{
    EachWayError, Finish, each_way_factors, each_way_payout_minor, standard_place_terms,
};
use super::rule4::{PriceTaken, Withdrawal, deduction_for_bet};
use crate::payout::payout_minor;
use crate::price::Price;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RacingBet {
    /// Stake of the win bet, or of each part of an each-way bet (which costs twice this).
    pub stake_per_part_minor: i64,
    /// The struck price, or the starting price for an SP bet.
    pub price: Price,
    pub taken: PriceTaken,
    pub each_way: bool,
}

/// What the race produced for the bet's runner, and what it needs to know about the race.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceOutcome {
    pub finish: Finish,
    /// Runners that came under starter's orders (non-runners excluded).
    pub runners: u16,
    pub handicap: bool,
    pub withdrawals: Vec<Withdrawal>,
}

/// The total return of the bet, rounded down once.
pub fn settle_racing_bet(bet: &RacingBet, race: &RaceOutcome) -> Result<i64, EachWayError> {
    let deduction = deduction_for_bet(&race.withdrawals, bet.taken);
    let terms = standard_place_terms(race.runners, race.handicap);
    let f = each_way_factors(bet.price, race.finish, terms, deduction)?;
    if bet.each_way {
        each_way_payout_minor(bet.stake_per_part_minor, f)
    } else {
        payout_minor(bet.stake_per_part_minor, &[f.win]).ok_or(EachWayError::PayoutOverflow)
    }
}
