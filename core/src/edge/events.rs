//! The edge node's log record payloads. Each is the JSON payload of one record kind; the
//! kind byte of the record says which struct it is. These schemas are documented in
//! `docs/log-format.md` and are append-only: fields may be added, never repurposed.

use crate::feed::records::{OddsChanged, ProducerChanged};
use crate::gate::{CheckResult, ReasonCode};
use crate::ids::{
    BetId, EventId, IdemKey, Jurisdiction, MarketId, NodeId, PlayerId, SelectionId, Seq,
};
use crate::ledger::Posting;
use crate::log::RecordKind;
use crate::market::{Market, MarketKind, Outcome, SportEvent};
use crate::money::Currency;
use crate::price::Price;
use crate::settle::{FinalScore, LegResult};
use serde::{Deserialize, Serialize};

pub use super::gate_events::*;

/// Client idempotency key plus the SHA-256 of the canonical request it was first used with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemTag {
    pub key: IdemKey,
    pub request_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub node_id: NodeId,
    pub jurisdiction: Jurisdiction,
    pub currency: Currency,
    pub public_key: String,
    pub software: String,
}

/// Only pseudonymous data: the name and date of birth stay in the node's PII vault; the log
/// keeps a salted SHA-256 commitment to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerRegistered {
    pub player_id: PlayerId,
    pub jurisdiction: Jurisdiction,
    pub pii_sha256: String,
    pub idem: IdemTag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KycVerified {
    pub player_id: PlayerId,
    pub idem: IdemTag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfExcluded {
    pub player_id: PlayerId,
    pub idem: IdemTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementReason {
    Deposit,
    Withdrawal,
    Stake,
    Settlement,
    // Shop counter (issue 6): cash stake in, ticket payout, void refund.
    ShopStake,
    ShopPayout,
    ShopVoid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletMovement {
    pub movement_id: u64,
    pub player_id: PlayerId,
    pub reason: MovementReason,
    pub currency: Currency,
    pub postings: Vec<Posting>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bet_id: Option<BetId>,
    /// Payment provider's reference (deposits and withdrawals), for reconciliation.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idem: Option<IdemTag>,
    /// Deposits and withdrawals: the gate's decision that allowed this movement (a refused
    /// one is a `ComplianceDecision` record instead).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision: Option<MovementDecision>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementDecision {
    pub rules_version: String,
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub flags: Vec<crate::gate::AmlHit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceDecision {
    pub player_id: PlayerId,
    pub action: String,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<ReasonCode>,
    pub jurisdiction: Jurisdiction,
    pub rules_version: String,
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bet_id: Option<BetId>,
    /// Present on rejections, whose decision is the command's only record.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idem: Option<IdemTag>,
    /// AML rules that fired (each also has its own `AmlFlagged` record).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub flags: Vec<crate::gate::AmlHit>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub reality_check_due: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetLeg {
    pub selection_id: SelectionId,
    pub market_id: MarketId,
    pub event_id: EventId,
    pub kind: MarketKind,
    pub outcome: Outcome,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetPlaced {
    pub bet_id: BetId,
    pub player_id: PlayerId,
    pub currency: Currency,
    /// The whole stake taken; for an each-way bet both parts (twice the unit stake).
    pub stake_minor: i64,
    /// Return if every leg wins (each-way: both parts).
    pub potential_payout_minor: i64,
    pub legs: Vec<BetLeg>,
    pub idem: IdemTag,
    /// Each-way: half the stake on each leg to win and half to be placed, at the each-way
    /// terms in each leg's market kind (`RaceWin { each_way }`) when the bet was struck.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub each_way: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketOpened {
    pub event: SportEvent,
    pub market: Market,
}

/// Where an applied downstream record came from: its position and hash in the hub's chain
/// for this node (`hub/{node}`), so the edge log proves what the hub sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownRef {
    pub down_seq: Seq,
    pub hub_record_sha256: String,
    /// The hub record's timestamp, so the edge can resume verifying the hub chain.
    pub hub_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventResulted {
    pub event_id: EventId,
    /// The final score of a football event; absent for a race or per-outcome result (the
    /// hub record `down` points at holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<FinalScore>,
    pub result_version: u32,
    pub down: DownRef,
    /// The markets the result closes; absent: every market of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markets: Option<Vec<MarketId>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetSettled {
    pub bet_id: BetId,
    pub player_id: PlayerId,
    pub result_version: u32,
    pub leg_results: Vec<LegResult>,
    pub payout_minor: i64,
    pub down: DownRef,
}

/// The edge applied a hub settlement reversal: the bet is open again, the reversed payout was
/// taken back (the wallet movement with reason `settlement` that follows this record), and
/// whatever the player's cash could not cover was booked as a debt (`docs/settlement.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetSettlementReversed {
    pub bet_id: BetId,
    pub player_id: PlayerId,
    pub reversed_result_version: u32,
    pub payout_reversed_minor: i64,
    /// Part of the reversed payout taken from the player's cash.
    pub from_cash_minor: i64,
    /// Part booked as a debt (cash was short).
    pub to_debt_minor: i64,
    pub reason: String,
    pub down: DownRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownSkipped {
    pub reason: String,
    pub down: DownRef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeEvent {
    Genesis(Genesis),
    PlayerRegistered(PlayerRegistered),
    KycVerified(KycVerified),
    SelfExcluded(SelfExcluded),
    WalletMovement(WalletMovement),
    ComplianceDecision(ComplianceDecision),
    BetPlaced(BetPlaced),
    MarketOpened(MarketOpened),
    EventResulted(EventResulted),
    BetSettled(BetSettled),
    DownSkipped(DownSkipped),
    BetSettlementReversed(BetSettlementReversed),
    BalanceSnapshot(super::balance_snapshot::BalanceSnapshot),
    // Issue 3: gate, wallet and risk.
    LimitChanged(LimitChanged),
    RegisterLoaded(RegisterLoaded),
    AmlFlagged(AmlFlagged),
    PlayerTimedOut(PlayerTimedOut),
    RealityCheckAcknowledged(RealityCheckAcknowledged),
    RulesActivated(RulesActivated),
    CrossOperatorFigure(CrossOperatorFigure),
    WithdrawalCompleted(WithdrawalCompleted),
    ShopTicketIssued(super::shop::ShopTicketIssued),
    ShopTicketPaid(super::shop::ShopTicketPaid),
    ShopTicketVoided(super::shop::ShopTicketVoided),
    OddsChanged(OddsChanged),
    ProducerChanged(ProducerChanged),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("record kind {0:?} is not an edge event")]
    NotEdge(RecordKind),
    #[error("payload of {kind:?} does not match its schema: {error}")]
    Schema { kind: RecordKind, error: String },
}

impl EdgeEvent {
    pub fn kind(&self) -> RecordKind {
        match self {
            EdgeEvent::Genesis(_) => RecordKind::Genesis,
            EdgeEvent::PlayerRegistered(_) => RecordKind::PlayerRegistered,
            EdgeEvent::KycVerified(_) => RecordKind::KycVerified,
            EdgeEvent::SelfExcluded(_) => RecordKind::SelfExcluded,
            EdgeEvent::WalletMovement(_) => RecordKind::WalletMovement,
            EdgeEvent::ComplianceDecision(_) => RecordKind::ComplianceDecision,
            EdgeEvent::BetPlaced(_) => RecordKind::BetPlaced,
            EdgeEvent::MarketOpened(_) => RecordKind::MarketOpened,
            EdgeEvent::EventResulted(_) => RecordKind::EventResulted,
            EdgeEvent::BetSettled(_) => RecordKind::BetSettled,
            EdgeEvent::DownSkipped(_) => RecordKind::DownSkipped,
            EdgeEvent::BetSettlementReversed(_) => RecordKind::BetSettlementReversed,
            EdgeEvent::BalanceSnapshot(_) => RecordKind::BalanceSnapshot,
            // Issue 3.
            EdgeEvent::LimitChanged(_) => RecordKind::LimitChanged,
            EdgeEvent::RegisterLoaded(_) => RecordKind::RegisterLoaded,
            EdgeEvent::AmlFlagged(_) => RecordKind::AmlFlagged,
            EdgeEvent::PlayerTimedOut(_) => RecordKind::PlayerTimedOut,
            EdgeEvent::RealityCheckAcknowledged(_) => RecordKind::RealityCheckAcknowledged,
            EdgeEvent::RulesActivated(_) => RecordKind::RulesActivated,
            EdgeEvent::CrossOperatorFigure(_) => RecordKind::CrossOperatorFigure,
            EdgeEvent::WithdrawalCompleted(_) => RecordKind::WithdrawalCompleted,
            EdgeEvent::ShopTicketIssued(_) => RecordKind::ShopTicketIssued,
            EdgeEvent::ShopTicketPaid(_) => RecordKind::ShopTicketPaid,
            EdgeEvent::ShopTicketVoided(_) => RecordKind::ShopTicketVoided,
            EdgeEvent::OddsChanged(_) => RecordKind::OddsChanged,
            EdgeEvent::ProducerChanged(_) => RecordKind::ProducerChanged,
        }
    }

    pub fn to_payload(&self) -> Vec<u8> {
        let r = match self {
            EdgeEvent::Genesis(x) => serde_json::to_vec(x),
            EdgeEvent::PlayerRegistered(x) => serde_json::to_vec(x),
            EdgeEvent::KycVerified(x) => serde_json::to_vec(x),
            EdgeEvent::SelfExcluded(x) => serde_json::to_vec(x),
            EdgeEvent::WalletMovement(x) => serde_json::to_vec(x),
            EdgeEvent::ComplianceDecision(x) => serde_json::to_vec(x),
            EdgeEvent::BetPlaced(x) => serde_json::to_vec(x),
            EdgeEvent::MarketOpened(x) => serde_json::to_vec(x),
            EdgeEvent::EventResulted(x) => serde_json::to_vec(x),
            EdgeEvent::BetSettled(x) => serde_json::to_vec(x),
            EdgeEvent::DownSkipped(x) => serde_json::to_vec(x),
            EdgeEvent::BetSettlementReversed(x) => serde_json::to_vec(x),
            EdgeEvent::BalanceSnapshot(x) => serde_json::to_vec(x),
            // Issue 3.
            EdgeEvent::LimitChanged(x) => serde_json::to_vec(x),
            EdgeEvent::RegisterLoaded(x) => serde_json::to_vec(x),
            EdgeEvent::AmlFlagged(x) => serde_json::to_vec(x),
            EdgeEvent::PlayerTimedOut(x) => serde_json::to_vec(x),
            EdgeEvent::RealityCheckAcknowledged(x) => serde_json::to_vec(x),
            EdgeEvent::RulesActivated(x) => serde_json::to_vec(x),
            EdgeEvent::CrossOperatorFigure(x) => serde_json::to_vec(x),
            EdgeEvent::WithdrawalCompleted(x) => serde_json::to_vec(x),
            EdgeEvent::ShopTicketIssued(x) => serde_json::to_vec(x),
            EdgeEvent::ShopTicketPaid(x) => serde_json::to_vec(x),
            EdgeEvent::ShopTicketVoided(x) => serde_json::to_vec(x),
            EdgeEvent::OddsChanged(x) => serde_json::to_vec(x),
            EdgeEvent::ProducerChanged(x) => serde_json::to_vec(x),
        };
        r.expect("event payloads serialise")
    }

    pub fn from_payload(kind: RecordKind, payload: &[u8]) -> Result<EdgeEvent, PayloadError> {
        fn de<T: for<'a> Deserialize<'a>>(kind: RecordKind, p: &[u8]) -> Result<T, PayloadError> {
            serde_json::from_slice(p).map_err(|e| PayloadError::Schema {
                kind,
                error: e.to_string(),
            })
        }
        Ok(match kind {
            RecordKind::Genesis => EdgeEvent::Genesis(de(kind, payload)?),
            RecordKind::PlayerRegistered => EdgeEvent::PlayerRegistered(de(kind, payload)?),
            RecordKind::KycVerified => EdgeEvent::KycVerified(de(kind, payload)?),
            RecordKind::SelfExcluded => EdgeEvent::SelfExcluded(de(kind, payload)?),
            RecordKind::WalletMovement => EdgeEvent::WalletMovement(de(kind, payload)?),
            RecordKind::ComplianceDecision => EdgeEvent::ComplianceDecision(de(kind, payload)?),
            RecordKind::BetPlaced => EdgeEvent::BetPlaced(de(kind, payload)?),
            RecordKind::MarketOpened => EdgeEvent::MarketOpened(de(kind, payload)?),
            RecordKind::EventResulted => EdgeEvent::EventResulted(de(kind, payload)?),
            RecordKind::BetSettled => EdgeEvent::BetSettled(de(kind, payload)?),
            RecordKind::DownSkipped => EdgeEvent::DownSkipped(de(kind, payload)?),
            RecordKind::BetSettlementReversed => {
                EdgeEvent::BetSettlementReversed(de(kind, payload)?)
            }
            RecordKind::BalanceSnapshot => EdgeEvent::BalanceSnapshot(de(kind, payload)?),
            // Issue 3.
            RecordKind::LimitChanged => EdgeEvent::LimitChanged(de(kind, payload)?),
            RecordKind::RegisterLoaded => EdgeEvent::RegisterLoaded(de(kind, payload)?),
            RecordKind::AmlFlagged => EdgeEvent::AmlFlagged(de(kind, payload)?),
            RecordKind::PlayerTimedOut => EdgeEvent::PlayerTimedOut(de(kind, payload)?),
            RecordKind::RealityCheckAcknowledged => {
                EdgeEvent::RealityCheckAcknowledged(de(kind, payload)?)
            }
            RecordKind::RulesActivated => EdgeEvent::RulesActivated(de(kind, payload)?),
            RecordKind::CrossOperatorFigure => EdgeEvent::CrossOperatorFigure(de(kind, payload)?),
            RecordKind::WithdrawalCompleted => EdgeEvent::WithdrawalCompleted(de(kind, payload)?),
            RecordKind::ShopTicketIssued => EdgeEvent::ShopTicketIssued(de(kind, payload)?),
            RecordKind::ShopTicketPaid => EdgeEvent::ShopTicketPaid(de(kind, payload)?),
            RecordKind::ShopTicketVoided => EdgeEvent::ShopTicketVoided(de(kind, payload)?),
            RecordKind::OddsChanged => EdgeEvent::OddsChanged(de(kind, payload)?),
            RecordKind::ProducerChanged => EdgeEvent::ProducerChanged(de(kind, payload)?),
            other => return Err(PayloadError::NotEdge(other)),
        })
    }
}
