//! Hub-side pure logic: the downstream record payloads the hub signs for an edge node
//! (chain `hub/{node}`), and the settlement of a replicated bet from results.

use crate::edge::events::BetPlaced;
use crate::ids::{BetId, EventId, LogId, NodeId, PlayerId};
use crate::log::RecordKind;
use crate::money::Currency;
use crate::settle::{FinalScore, LegResult, bet_payout_minor, settle_selection};
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
}

impl HubEvent {
    pub fn kind(&self) -> RecordKind {
        match self {
            HubEvent::Result(_) => RecordKind::HubResult,
            HubEvent::Settlement(_) => RecordKind::HubSettlement,
            HubEvent::Reversal(_) => RecordKind::HubSettlementReversal,
        }
    }
    pub fn to_payload(&self) -> Vec<u8> {
        match self {
            HubEvent::Result(r) => serde_json::to_vec(r),
            HubEvent::Settlement(s) => serde_json::to_vec(s),
            HubEvent::Reversal(r) => serde_json::to_vec(r),
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

/// Settle a bet if every leg's event has a result. `result_of` returns the final score and
/// result version of an event. Returns `Ok(None)` while any leg is unresulted.
///
/// The bet's result version is the **sum** of its legs' result versions: it grows whenever any
/// leg's result is corrected (a maximum would not, for an accumulator whose other leg already
/// has a higher version), so (bet, result version) keys each settlement of the bet uniquely.
/// For a single it is the event's result version.
pub fn settle_bet(
    node: &NodeId,
    bet: &BetPlaced,
    result_of: impl Fn(&EventId) -> Option<(FinalScore, u32)>,
) -> Result<Option<HubSettlement>, SettleError> {
    let mut legs = Vec::with_capacity(bet.legs.len());
    let mut version: u32 = 0;
    for leg in &bet.legs {
        let Some((score, v)) = result_of(&leg.event_id) else {
            return Ok(None);
        };
        version = version
            .checked_add(v)
            .ok_or_else(|| SettleError::Overflow(bet.bet_id.clone()))?;
        let r = settle_selection(&leg.kind, leg.outcome, score).map_err(|e| {
            SettleError::LegMismatch {
                bet: bet.bet_id.clone(),
                event: leg.event_id.clone(),
                detail: e.to_string(),
            }
        })?;
        legs.push((r, leg.price));
    }
    let payout = bet_payout_minor(bet.stake_minor, &legs)
        .ok_or_else(|| SettleError::Overflow(bet.bet_id.clone()))?;
    Ok(Some(HubSettlement {
        bet_id: bet.bet_id.clone(),
        node_id: node.clone(),
        player_id: bet.player_id.clone(),
        result_version: version,
        leg_results: legs.into_iter().map(|(r, _)| r).collect(),
        currency: bet.currency,
        stake_minor: bet.stake_minor,
        payout_minor: payout,
    }))
}
