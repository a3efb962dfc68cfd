//! Hub-side pure logic: the downstream record payloads the hub signs for an edge node
//! (chain `hub/{node}`), and the settlement of a replicated bet from results.

use crate::edge::events::BetPlaced;
use crate::ids::{BetId, EventId, LogId, NodeId, PlayerId};
use crate::log::RecordKind;
use crate::money::Currency;
use crate::payout::{Factor, payout_minor, payout_sum_minor};
use crate::settle::{FinalScore, LegResult};
use crate::settlement::event_result::{EventResult, LegDecision, decide_leg};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// The hub's downstream chain id for a node.
pub fn down_log_id(node: &NodeId) -> LogId {
    LogId::new(format!("hub/{node}")).expect("node ids are log-id safe")
}

/// A final result, sent to every node so it closes the event's markets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubResult {
    pub event_id: EventId,
    pub score: FinalScore,
    pub result_version: u32,
    pub source: String,
}

/// A final result that is not a football score (a race, or per-outcome feed results), sent
/// to every node so it closes the event's markets (record kind 72). Scores keep `HubResult`
/// (64), so score records are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubEventResult {
    pub event_id: EventId,
    pub result: EventResult,
    pub result_version: u32,
    pub source: String,
}

impl HubEventResult {
    /// The markets this result closes: the resulted ones for per-outcome results, every
    /// market of the event otherwise (`None`).
    pub fn markets(&self) -> Option<Vec<crate::ids::MarketId>> {
        match &self.result {
            EventResult::Outcomes(o) => {
                Some(o.markets.iter().map(|m| m.market_id.clone()).collect())
            }
            _ => None,
        }
    }
}

/// How one leg was settled, exactly: the factors per unit of stake that made the payout
/// (`place` only on each-way bets) and the Rule 4 deduction taken. Present on settlements of
/// races, per-outcome results and each-way bets, so a verifier can recompute the payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegFactors {
    pub win: Factor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Factor>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rule4_pence: u8,
}

fn is_zero(x: &u8) -> bool {
    *x == 0
}

/// The settlement of one bet, keyed by (bet, result version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubSettlement {
    pub bet_id: BetId,
    pub node_id: NodeId,
    pub player_id: PlayerId,
    pub result_version: u32,
    pub leg_results: Vec<LegResult>,
    pub currency: Currency,
    pub stake_minor: i64,
    pub payout_minor: i64,
    /// Exact factors per leg, when a leg is not plain win/lose/void/push at its price or the
    /// bet is each-way (absent on football settlements, whose records are unchanged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leg_factors: Vec<LegFactors>,
}

/// A compensating entry: it reverses one earlier settlement of a bet (identified by the bet
/// and the result version it was settled at, and by its down record), returning the bet to
/// open. A corrected result is a reversal followed by a new [`HubSettlement`] at the new
/// result version; a rollback is a reversal alone. The original settlement record stays in the
/// chain unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubSettlementReversal {
    pub bet_id: BetId,
    pub node_id: NodeId,
    pub player_id: PlayerId,
    /// The settlement being reversed: its result version and its down record.
    pub reversed_result_version: u32,
    pub reversed_down_seq: u64,
    pub currency: Currency,
    pub stake_minor: i64,
    /// The payout of the reversed settlement, taken back from the player.
    pub payout_minor: i64,
    /// Why: `correction` (a different final result) or `rollback` (settlement withdrawn).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    Result(HubResult),
    Settlement(HubSettlement),
    Reversal(HubSettlementReversal),
    EventResult(HubEventResult),
}

impl HubEvent {
    pub fn kind(&self) -> RecordKind {
        match self {
            HubEvent::Result(_) => RecordKind::HubResult,
            HubEvent::Settlement(_) => RecordKind::HubSettlement,
            HubEvent::Reversal(_) => RecordKind::HubSettlementReversal,
            HubEvent::EventResult(_) => RecordKind::HubEventResult,
        }
    }
    pub fn to_payload(&self) -> Vec<u8> {
        match self {
            HubEvent::Result(r) => serde_json::to_vec(r),
            HubEvent::Settlement(s) => serde_json::to_vec(s),
            HubEvent::Reversal(r) => serde_json::to_vec(r),
            HubEvent::EventResult(r) => serde_json::to_vec(r),
        }
        .expect("hub payloads serialise")
    }
    pub fn from_payload(kind: RecordKind, p: &[u8]) -> Result<HubEvent, String> {
        match kind {
            RecordKind::HubResult => serde_json::from_slice(p)
                .map(HubEvent::Result)
                .map_err(|e| e.to_string()),
            RecordKind::HubSettlement => serde_json::from_slice(p)
                .map(HubEvent::Settlement)
                .map_err(|e| e.to_string()),
            RecordKind::HubSettlementReversal => serde_json::from_slice(p)
                .map(HubEvent::Reversal)
                .map_err(|e| e.to_string()),
            RecordKind::HubEventResult => serde_json::from_slice(p)
                .map(HubEvent::EventResult)
                .map_err(|e| e.to_string()),
            other => Err(format!("record kind {other:?} is not a hub record")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    #[error("bet {bet}: leg on {event} does not fit its market: {detail}")]
    LegMismatch {
        bet: BetId,
        event: EventId,
        detail: String,
    },
    #[error("bet {0}: payout overflows")]
    Overflow(BetId),
}

/// The down record announcing a final result: a score as `HubResult` (kind 64, as ever),
/// anything else as `HubEventResult` (kind 72).
pub fn result_event(
    event_id: EventId,
    result: EventResult,
    result_version: u32,
    source: String,
) -> HubEvent {
    match result {
        EventResult::Score(score) => HubEvent::Result(HubResult {
            event_id,
            score,
            result_version,
            source,
        }),
        result => HubEvent::EventResult(HubEventResult {
            event_id,
            result,
            result_version,
            source,
        }),
    }
}

/// Settle a bet if every leg's event has a result that settles the leg. `result_of` returns
/// the final result and result version of an event; `struck_at` is when the bet was placed
/// (its record's timestamp), for Rule 4. Returns `Ok(None)` while any leg is unresulted.
///
/// The bet's result version is the **sum** of its legs' result versions: it grows whenever any
/// leg's result is corrected (a maximum would not, for an accumulator whose other leg already
/// has a higher version), so (bet, result version) keys each settlement of the bet uniquely.
/// For a single it is the event's result version.
///
/// Money: a plain bet pays `floor(stake × Π win factors)`; an each-way bet (stake = twice the
/// unit) pays `floor(unit × Π win + unit × Π place)`, rounded down once over the sum.
pub fn settle_bet<'r>(
    node: &NodeId,
    bet: &BetPlaced,
    struck_at: UnixMillis,
    result_of: impl Fn(&EventId) -> Option<(&'r EventResult, u32)>,
) -> Result<Option<HubSettlement>, SettleError> {
    let mismatch = |leg: &crate::edge::events::BetLeg, detail: String| SettleError::LegMismatch {
        bet: bet.bet_id.clone(),
        event: leg.event_id.clone(),
        detail,
    };
    let mut legs: Vec<LegDecision> = Vec::with_capacity(bet.legs.len());
    let mut version: u32 = 0;
    let mut plain = !bet.each_way;
    for leg in &bet.legs {
        let Some((result, v)) = result_of(&leg.event_id) else {
            return Ok(None);
        };
        let Some(d) = decide_leg(leg, bet.each_way, struck_at, result)
            .map_err(|e| mismatch(leg, e.to_string()))?
        else {
            return Ok(None);
        };
        version = version
            .checked_add(v)
            .ok_or_else(|| SettleError::Overflow(bet.bet_id.clone()))?;
        plain &= matches!(result, EventResult::Score(_));
        legs.push(d);
    }
    let win: Vec<Factor> = legs.iter().map(|d| d.win).collect();
    let payout = if bet.each_way {
        if bet.stake_minor % 2 != 0 {
            return Err(SettleError::LegMismatch {
                bet: bet.bet_id.clone(),
                event: bet.legs[0].event_id.clone(),
                detail: format!("each-way stake {} is not two equal parts", bet.stake_minor),
            });
        }
        let place: Vec<Factor> = legs.iter().map(|d| d.place).collect();
        payout_sum_minor(bet.stake_minor / 2, &[&win, &place])
    } else {
        payout_minor(bet.stake_minor, &win)
    }
    .ok_or_else(|| SettleError::Overflow(bet.bet_id.clone()))?;
    Ok(Some(HubSettlement {
        bet_id: bet.bet_id.clone(),
        node_id: node.clone(),
        player_id: bet.player_id.clone(),
        result_version: version,
        leg_results: legs.iter().map(|d| d.result).collect(),
        currency: bet.currency,
        stake_minor: bet.stake_minor,
        payout_minor: payout,
        leg_factors: if plain {
            Vec::new()
        } else {
            legs.iter()
                .map(|d| LegFactors {
                    win: d.win,
                    place: bet.each_way.then_some(d.place),
                    rule4_pence: d.rule4_pence,
                })
                .collect()
        },
    }))
}

#[cfg(test)]
mod tests;
