//! The result of an event, whatever settles it: a football score, a race result, or
//! per-outcome results as a feed states them (UOF `bet_settlement`: won/lost, `void_factor`,
//! `dead_heat_factor` per outcome of each market). The hub keeps reports of these from several
//! sources; [`agree`] decides when they make a final result (two sources agree, or an operator
//! stated it), and [`decide_leg`] settles one bet leg from the final result.
//!
//! Canonical form: every constructor sorts and reduces, so two sources stating the same
//! result produce equal values (and equal JSON), which is how agreement is tested.

use super::race_result::{RaceLegError, RaceResult, decide_race_leg};
use super::ratio::{self, RatioOverflow};
use super::void_factor::OutcomeSettlement;
use crate::edge::events::BetLeg;
use crate::ids::MarketId;
use crate::market::{MarketKind, Outcome};
use crate::payout::Factor;
use crate::settle::{FinalScore, LegResult, settle_selection};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventResult {
    /// Football: the final score settles every market of the event.
    Score(FinalScore),
    /// A race: finishing order, non-runners with Rule 4, field size.
    Race(RaceResult),
    /// Per-outcome results of some markets of the event (the others are not resulted).
    Outcomes(OutcomeResults),
}

/// One outcome's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutcomeResult {
    pub outcome: Outcome,
    pub won: bool,
    pub void_factor: Factor,
    pub dead_heat_factor: Factor,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MarketResult {
    pub market_id: MarketId,
    /// Sorted by outcome.
    pub outcomes: Vec<OutcomeResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OutcomeResults {
    /// Sorted by market id, one entry per market.
    pub markets: Vec<MarketResult>,
}

fn reduce(f: Factor) -> Factor {
    // mul by one reduces by the gcd.
    ratio::mul(f, Factor::ONE).unwrap_or(f)
}

impl OutcomeResults {
    /// Canonical form: markets and outcomes sorted, factors reduced; a market or an outcome
    /// stated twice is refused (`Err` names it).
    pub fn new(markets: Vec<MarketResult>) -> Result<OutcomeResults, String> {
        let mut by_id: BTreeMap<MarketId, Vec<OutcomeResult>> = BTreeMap::new();
        for m in markets {
            let mut seen = BTreeSet::new();
            let mut outcomes = Vec::with_capacity(m.outcomes.len());
            for o in m.outcomes {
                if !seen.insert(o.outcome) {
                    return Err(format!(
                        "market {}: outcome {:?} is stated twice",
                        m.market_id, o.outcome
                    ));
                }
                outcomes.push(OutcomeResult {
                    void_factor: reduce(o.void_factor),
                    dead_heat_factor: reduce(o.dead_heat_factor),
                    ..o
                });
            }
            outcomes.sort_by_key(|o| o.outcome);
            if by_id.insert(m.market_id.clone(), outcomes).is_some() {
                return Err(format!("market {} is stated twice", m.market_id));
            }
        }
        Ok(OutcomeResults {
            markets: by_id
                .into_iter()
                .map(|(market_id, outcomes)| MarketResult {
                    market_id,
                    outcomes,
                })
                .collect(),
        })
    }
    pub fn market(&self, id: &MarketId) -> Option<&MarketResult> {
        self.markets.iter().find(|m| &m.market_id == id)
    }
}

impl EventResult {
    /// A short human description for alerts and views.
    pub fn describe(&self) -> String {
        match self {
            EventResult::Score(s) => format!("{}-{}", s.home, s.away),
            EventResult::Race(r) => {
                let placed: Vec<String> = r
                    .placings
                    .iter()
                    .take(4)
                    .map(|p| format!("{}:{}", p.position, p.runner))
                    .collect();
                format!(
                    "race {} ran, {} non-runners",
                    r.runners,
                    r.non_runners.len()
                ) + &format!(" [{}]", placed.join(" "))
            }
            EventResult::Outcomes(o) => format!("{} markets resulted", o.markets.len()),
        }
    }
}

/// What a set of reports (source, result, stated by an operator) amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// Final: two sources agree, or an operator stated it.
    Final(EventResult),
    /// Not enough sources yet.
    Pending,
    /// Sources disagree; the text says how.
    Conflict(String),
}

/// Reports needed from different sources before a result is final without an operator.
pub const SOURCES_REQUIRED: usize = 2;

/// Decide what `reports` (in arrival order) amount to.
///
/// - Score and race results: every report must be equal; two distinct sources (or an
///   operator) make it final.
/// - Per-outcome results settle market by market (a feed sends them in several messages):
///   reports must agree on every market they both state; a market is final when two distinct
///   sources (or an operator) stated it; the final result is the set of final markets.
/// - Reports of different kinds (a score and a race result) conflict.
pub fn agree(reports: &[(String, EventResult, bool)]) -> Agreement {
    let Some((_, first, _)) = reports.first() else {
        return Agreement::Pending;
    };
    if let EventResult::Outcomes(_) = first {
        return agree_outcomes(reports);
    }
    if reports.iter().any(|(_, r, _)| r != first) {
        let detail = reports
            .iter()
            .map(|(s, r, _)| format!("{s}: {}", r.describe()))
            .collect::<Vec<_>>()
            .join(", ");
        return Agreement::Conflict(format!("sources disagree ({detail})"));
    }
    let sources: BTreeSet<&str> = reports.iter().map(|(s, _, _)| s.as_str()).collect();
    if sources.len() >= SOURCES_REQUIRED || reports.iter().any(|(_, _, op)| *op) {
        Agreement::Final(first.clone())
    } else {
        Agreement::Pending
    }
}

fn agree_outcomes(reports: &[(String, EventResult, bool)]) -> Agreement {
    // market → (its outcomes as first stated, sources, stated by an operator)
    let mut markets: BTreeMap<&MarketId, (&Vec<OutcomeResult>, BTreeSet<&str>, bool)> =
        BTreeMap::new();
    for (source, r, op) in reports {
        let EventResult::Outcomes(o) = r else {
            return Agreement::Conflict(format!(
                "{source} reports {}, other sources per-outcome results",
                r.describe()
            ));
        };
        for m in &o.markets {
            let e = markets
                .entry(&m.market_id)
                .or_insert((&m.outcomes, BTreeSet::new(), false));
            if e.0 != &m.outcomes {
                return Agreement::Conflict(format!(
                    "sources disagree on market {} ({} differs from an earlier report)",
                    m.market_id, source
                ));
            }
            e.1.insert(source.as_str());
            e.2 |= *op;
        }
    }
    let agreed: Vec<MarketResult> = markets
        .into_iter()
        .filter(|(_, (_, sources, op))| *op || sources.len() >= SOURCES_REQUIRED)
        .map(|(id, (outcomes, _, _))| MarketResult {
            market_id: id.clone(),
            outcomes: outcomes.clone(),
        })
        .collect();
    if agreed.is_empty() {
        Agreement::Pending
    } else {
        Agreement::Final(EventResult::Outcomes(OutcomeResults { markets: agreed }))
    }
}

/// One leg decided: what it did and its exact factors per unit of stake (`place`: the place
/// part of an each-way leg; equal to `win` otherwise), and the Rule 4 deduction taken (pence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegDecision {
    pub result: LegResult,
    pub win: Factor,
    pub place: Factor,
    pub rule4_pence: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegError {
    #[error("{0}")]
    Mismatch(String),
    #[error(transparent)]
    Race(#[from] RaceLegError),
    #[error(transparent)]
    Overflow(#[from] RatioOverflow),
}

/// Decide `leg` (of a bet struck at `struck_at`, each-way or not) from its event's final
/// result. `Ok(None)`: the result does not settle this leg yet (per-outcome results that do
/// not include its market or its outcome).
pub fn decide_leg(
    leg: &BetLeg,
    each_way: bool,
    struck_at: UnixMillis,
    result: &EventResult,
) -> Result<Option<LegDecision>, LegError> {
    let simple = |r: LegResult| LegDecision {
        result: r,
        win: r.factor(leg.price),
        place: r.factor(leg.price),
        rule4_pence: 0,
    };
    match result {
        EventResult::Score(score) => {
            if each_way {
                return Err(LegError::Mismatch(
                    "an each-way bet cannot be settled from a score".into(),
                ));
            }
            let r = settle_selection(&leg.kind, leg.outcome, *score)
                .map_err(|e| LegError::Mismatch(e.to_string()))?;
            Ok(Some(simple(r)))
        }
        EventResult::Race(race) => {
            let l = decide_race_leg(&leg.kind, leg.outcome, leg.price, each_way, struck_at, race)?;
            Ok(Some(LegDecision {
                result: l.result,
                win: l.win,
                place: l.place,
                rule4_pence: l.deduction.0,
            }))
        }
        EventResult::Outcomes(o) => {
            let Some(m) = o.market(&leg.market_id) else {
                return Ok(None);
            };
            let Some(r) = m.outcomes.iter().find(|r| r.outcome == leg.outcome) else {
                return Ok(None);
            };
            if each_way && !matches!(leg.kind, MarketKind::RaceWin { .. }) {
                return Err(LegError::Mismatch(
                    "an each-way leg must be on a race-win market".into(),
                ));
            }
            let s = OutcomeSettlement {
                won: r.won,
                void_factor: r.void_factor,
                dead_heat_factor: r.dead_heat_factor,
            };
            let f = s.factor(leg.price)?;
            let result = outcome_leg_result(r);
            // A feed's per-outcome result of a race-win market carries no place terms, so an
            // each-way leg settles from it only when void (a non-runner: both parts at 1.0);
            // otherwise it waits for a race result.
            if each_way && r.void_factor != Factor::ONE {
                return Ok(None);
            }
            Ok(Some(LegDecision {
                result,
                win: f,
                place: f,
                rule4_pence: 0,
            }))
        }
    }
}

/// The leg result a per-outcome result reads as (the exact factor is what pays).
pub fn outcome_leg_result(r: &OutcomeResult) -> LegResult {
    let half = Factor::new(1, 2);
    match (r.won, reduce(r.void_factor)) {
        (_, v) if v == Factor::ONE => LegResult::Void,
        (true, v) if v == half => LegResult::HalfWin,
        (false, v) if v == half => LegResult::HalfLose,
        (true, _) => LegResult::Win,
        (false, _) => LegResult::Lose,
    }
}

#[cfg(test)]
mod tests;
