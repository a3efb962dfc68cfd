//! A race result as the hub receives it (a results file, the race-result API, an operator):
//! finishing positions per runner with dead heats, the non-runners with their Rule 4
//! deduction and withdrawal time, and the field that came under orders. From it, one leg of a
//! bet on a race market (`RaceWin`, `RacePlace`, `Outright`) is decided: won, placed, lost or
//! void (non-runner), with its exact win and place factors after Rule 4 and dead heats.
//!
//! Sources (each rule is pinned in its own module): Rule 4 by the time the bet was struck
//! ([`super::rule4`], Tattersalls' Rules on Betting, Rule 4(c)); dead heats
//! ([`super::dead_heat`]); each-way place terms by the field that ran ([`super::each_way`], the
//! standard UK each-way terms).
//!
//! Each-way terms: the bet carries the terms struck on the slip (`RaceWin { each_way }`). The
//! standard terms are set by the number of runners that come under starter's orders, so when
//! withdrawals shrink the field under eight, the terms of the smaller field apply (8 declared
//! at 3 places 1/5, one non-runner: 7 ran, 2 places at 1/4; fewer than five ran: win only,
//! both parts on the win). With eight or more running, the struck terms stand, including
//! extra places the book offered (and a handicap that falls from 16 to 15 runners keeps its
//! struck fourth place): [`effective_place_terms`].

use super::dead_heat::dead_heat_factor;
use super::each_way::{EachWayError, Finish, PlaceTerms, each_way_factors, standard_place_terms};
use super::each_way_bet::place_terms;
use super::ratio::{self, RatioOverflow};
use super::rule4::{Deduction, MAX_TOTAL_PENCE};
use crate::market::{EachWayTerms, MarketKind, Outcome};
use crate::payout::Factor;
use crate::price::Price;
use crate::settle::LegResult;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Most runners a race result may list (the largest UK fields are 40).
pub const RUNNERS_MAX: usize = 64;

/// One runner that finished in a listed position. Runners sharing a position dead-heated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Placing {
    pub runner: u64,
    pub position: u16,
}

/// A withdrawn runner (did not come under orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NonRunner {
    pub runner: u64,
    /// When it was withdrawn: bets struck strictly before it take `deduction`.
    pub withdrawn_at: UnixMillis,
    /// Rule 4(c) deduction in pence in the pound (from the scale at the runner's price when
    /// withdrawn; 0 for a withdrawal over 14/1 or when a new market was formed).
    pub deduction: Deduction,
}

/// The result of a race. Runners neither placed nor non-runners ran and were unplaced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RaceResult {
    /// Finishing positions, sorted by (position, runner).
    pub placings: Vec<Placing>,
    /// Sorted by runner.
    pub non_runners: Vec<NonRunner>,
    /// Runners that came under starter's orders (sets the each-way terms).
    pub runners: u16,
    /// A handicap race (the standard terms of big fields differ).
    pub handicap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaceResultError {
    #[error("no runner is placed first")]
    NoWinner,
    #[error("runner {0} is listed twice")]
    DuplicateRunner(u64),
    #[error("position {0} is not possible: positions start at 1 and follow the dead heats")]
    BadPosition(u16),
    #[error("a Rule 4 deduction of {0}p is over the 90p of the scale")]
    BadDeduction(u8),
    #[error("{placed} placed runners but only {runners} came under orders")]
    FieldTooSmall { placed: usize, runners: u16 },
    #[error("more than {RUNNERS_MAX} runners")]
    TooMany,
}

impl RaceResult {
    /// Check and put in canonical order (so two sources stating the same result agree
    /// byte for byte). Positions must follow the dead heats: two tied for 1st → next is 3rd.
    pub fn new(
        mut placings: Vec<Placing>,
        mut non_runners: Vec<NonRunner>,
        runners: u16,
        handicap: bool,
    ) -> Result<RaceResult, RaceResultError> {
        if placings.len() + non_runners.len() > RUNNERS_MAX {
            return Err(RaceResultError::TooMany);
        }
        placings.sort_by_key(|p| (p.position, p.runner));
        non_runners.sort_by_key(|n| n.runner);
        let mut seen = std::collections::BTreeSet::new();
        for r in placings
            .iter()
            .map(|p| p.runner)
            .chain(non_runners.iter().map(|n| n.runner))
        {
            if !seen.insert(r) {
                return Err(RaceResultError::DuplicateRunner(r));
            }
        }
        if placings.first().is_none_or(|p| p.position != 1) {
            return Err(RaceResultError::NoWinner);
        }
        // Each position must be 1 + the number of runners ahead of it.
        let mut i = 0;
        while i < placings.len() {
            let pos = placings[i].position;
            if usize::from(pos) != i + 1 {
                return Err(RaceResultError::BadPosition(pos));
            }
            while i < placings.len() && placings[i].position == pos {
                i += 1;
            }
        }
        if let Some(n) = non_runners.iter().find(|n| n.deduction.0 > 90) {
            return Err(RaceResultError::BadDeduction(n.deduction.0));
        }
        if placings.len() > usize::from(runners) {
            return Err(RaceResultError::FieldTooSmall {
                placed: placings.len(),
                runners,
            });
        }
        Ok(RaceResult {
            placings,
            non_runners,
            runners,
            handicap,
        })
    }

    /// How `runner` finished.
    pub fn finish(&self, runner: u64) -> Finish {
        if self.non_runners.iter().any(|n| n.runner == runner) {
            return Finish::NonRunner;
        }
        match self.placings.iter().find(|p| p.runner == runner) {
            Some(p) => Finish::Position {
                position: p.position,
                tied: self
                    .placings
                    .iter()
                    .filter(|q| q.position == p.position)
                    .count() as u16,
            },
            None => Finish::Unplaced,
        }
    }

    /// The Rule 4 deduction a bet struck at `struck_at` takes: the sum over the withdrawals
    /// after it, capped at 75p (Rule 4(c)).
    pub fn deduction_for(&self, struck_at: UnixMillis) -> Deduction {
        let total: u32 = self
            .non_runners
            .iter()
            .filter(|n| struck_at < n.withdrawn_at)
            .map(|n| u32::from(n.deduction.0))
            .sum();
        Deduction(total.min(u32::from(MAX_TOTAL_PENCE)) as u8)
    }
}

/// The place terms an each-way bet struck at `struck` is settled at when `runners` came
/// under orders (module docs): the struck terms, unless fewer than eight ran and that field
/// pays fewer places (then its standard terms); `None` = fewer than five ran, win only.
pub fn effective_place_terms(
    struck: EachWayTerms,
    runners: u16,
    handicap: bool,
) -> Option<PlaceTerms> {
    match standard_place_terms(runners, handicap) {
        None => None,
        Some(std) if runners < 8 && std.places < u16::from(struck.places) => Some(std),
        Some(_) => Some(place_terms(struck)),
    }
}

/// One race leg decided: what it did and its exact factors per unit of stake. `place` is the
/// place part of an each-way leg (equal to `win` otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaceLeg {
    pub result: LegResult,
    pub win: Factor,
    pub place: Factor,
    pub deduction: Deduction,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaceLegError {
    #[error("market {0:?} is not a race or outright market")]
    NotARaceMarket(MarketKind),
    #[error("outcome {0:?} is not a runner")]
    NotARunner(Outcome),
    #[error("an each-way bet needs each-way terms on a race-win market")]
    NoEachWayTerms,
    #[error(transparent)]
    EachWay(#[from] EachWayError),
    #[error(transparent)]
    Overflow(#[from] RatioOverflow),
}

/// Decide one leg on a race market at `price`, struck at `struck_at`, from `race`.
///
/// - `RaceWin`: won (also in a dead heat for first, at the divided stake), placed (each-way
///   only: within the effective places) or lost; a win-only bet on a placed runner loses.
/// - `RacePlace { places }` and `Outright { winners }`: won if within the places (dead heat
///   for the last place divides the stake).
/// - A non-runner's leg is void (stake returned, priced at 1.0) with no deduction.
/// - Rule 4 reduces the winnings of every part of a bet struck before a withdrawal.
pub fn decide_race_leg(
    kind: &MarketKind,
    outcome: Outcome,
    price: Price,
    each_way: bool,
    struck_at: UnixMillis,
    race: &RaceResult,
) -> Result<RaceLeg, RaceLegError> {
    let Outcome::Runner { id } = outcome else {
        return Err(RaceLegError::NotARunner(outcome));
    };
    let finish = race.finish(id);
    if finish == Finish::NonRunner {
        return Ok(RaceLeg {
            result: LegResult::Void,
            win: Factor::ONE,
            place: Factor::ONE,
            deduction: Deduction::NONE,
        });
    }
    let deduction = race.deduction_for(struck_at);
    match kind {
        MarketKind::RaceWin { each_way: terms } => {
            let terms = match (each_way, terms) {
                (true, Some(t)) => effective_place_terms(*t, race.runners, race.handicap),
                (true, None) => return Err(RaceLegError::NoEachWayTerms),
                (false, _) => None,
            };
            let f = each_way_factors(price, finish, terms, deduction)?;
            let result = match finish {
                Finish::Position { position: 1, .. } => LegResult::Win,
                _ if each_way && f.place != Factor::ZERO => LegResult::Placed,
                _ => LegResult::Lose,
            };
            let place = if each_way { f.place } else { f.win };
            Ok(RaceLeg {
                result,
                win: f.win,
                place,
                deduction,
            })
        }
        MarketKind::RacePlace { places: n } | MarketKind::Outright { winners: n } => {
            if each_way {
                return Err(RaceLegError::NoEachWayTerms);
            }
            let f = match finish {
                Finish::Position { position, tied } => {
                    let full = ratio::stake_plus(ratio::odds_against(price), deduction.kept())?;
                    ratio::mul(
                        full,
                        dead_heat_factor(position, tied, u16::from(*n))
                            .map_err(EachWayError::from)?,
                    )?
                }
                _ => Factor::ZERO,
            };
            let result = if f == Factor::ZERO {
                LegResult::Lose
            } else {
                LegResult::Win
            };
            Ok(RaceLeg {
                result,
                win: f,
                place: f,
                deduction,
            })
        }
        other => Err(RaceLegError::NotARaceMarket(*other)),
    }
}

#[cfg(test)]
mod tests;
