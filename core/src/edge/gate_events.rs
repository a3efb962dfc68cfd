//! Log record payloads of the compliance gate, wallet and risk (record kinds 12-19). Like
//! `events.rs`, append-only schemas documented in `docs/log-format.md`.

use super::events::IdemTag;
use crate::gate::aml::AmlHit;
use crate::gate::limits::{LimitChange, LimitKind, Window};
use crate::gate::register::{RegisterDocKind, SignedRegisterDoc};
use crate::ids::{BetId, Jurisdiction, PlayerId};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// A player's limit change: immediate (decrease) or pending until `effective_at` (raise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitChanged {
    pub player_id: PlayerId,
    pub kind: LimitKind,
    pub window: Window,
    pub change: LimitChange,
    pub rules_version: String,
    pub idem: IdemTag,
}

/// A verified register document: the authority's signed bytes are kept verbatim so anyone
/// can re-verify it from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterLoaded {
    pub register: String,
    pub doc_kind: RegisterDocKind,
    pub seq: u64,
    pub issued_at_ms: i64,
    pub entries: usize,
    pub doc: SignedRegisterDoc,
}

/// One AML rule that fired: the input to suspicious-activity reporting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmlFlagged {
    pub player_id: PlayerId,
    /// "place_bet", "deposit" or "withdraw".
    pub action: String,
    pub hit: AmlHit,
    /// Whether the action went ahead (flag) or was refused.
    pub accepted: bool,
    pub amount_minor: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bet_id: Option<BetId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub movement_id: Option<u64>,
    pub rules_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeOutKind {
    /// A short break the player chooses (hours to weeks).
    TimeOut,
    /// A cool-off: same effect, recorded separately for reporting.
    CoolOff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerTimedOut {
    pub player_id: PlayerId,
    pub kind: TimeOutKind,
    pub until: UnixMillis,
    pub idem: IdemTag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealityCheckAcknowledged {
    pub player_id: PlayerId,
    pub idem: IdemTag,
}

/// The jurisdiction rules in force from this record on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesActivated {
    pub jurisdiction: Jurisdiction,
    pub rules_version: String,
    /// SHA-256 of the rules file's bytes.
    pub rules_sha256: String,
}

/// The player's deposits this month at other operators, as reported by the cross-operator
/// system (DE: LUGAS). Deposits need a figure no older than a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossOperatorFigure {
    pub player_id: PlayerId,
    pub other_operators_month_minor: i64,
    pub source: String,
    pub idem: IdemTag,
}

/// A pending withdrawal's outcome at the payment provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalCompleted {
    pub player_id: PlayerId,
    pub provider_ref: String,
    /// Paid out (pending → provider) or failed (pending → back to cash).
    pub paid: bool,
    pub movement_id: u64,
    pub idem: IdemTag,
}
