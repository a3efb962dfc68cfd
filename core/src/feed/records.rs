//! Log record payloads of the odds book (record kinds 28–29). Every price or status change of
//! a feed market is one `OddsChanged` record; producer up/down transitions are
//! `ProducerChanged` records. Replaying them rebuilds the markets and the stream sequence.

use crate::ids::{EventId, MarketId, SelectionId};
use crate::market::{MarketKind, MarketStatus, Outcome};
use crate::price::Price;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

/// Why a market changed. Every change carries exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ChangeReason {
    /// New prices or provider status from an odds message.
    FeedOdds,
    /// Provider marked the market inactive/suspended.
    ProviderSuspended,
    /// UOF `bet_stop` for the event.
    BetStop,
    /// The producer missed its alive bound.
    ProducerSilent,
    /// The producer reported itself lost (alive subscribed=0, stream closed).
    ProducerLost,
    /// Recovery finished (UOF snapshot_complete, Betfair image); markets may reopen.
    RecoveryComplete,
    /// A price at or below 1.0 (or above the maximum) arrived; the market stays shut.
    ImpossiblePrice,
    /// The margin could not be applied (e.g. additive method gives a negative probability).
    PricingFailed {
        detail: String,
    },
    /// Not every active selection has a price.
    IncompletePrices,
    /// Provider closed the market (no more bets, result pending).
    ProviderClosed,
    Settled,
    Cancelled {
        void_reason: Option<u32>,
    },
    RollbackSettlement,
    RollbackCancel,
    /// A runner was withdrawn (Betfair `REMOVED`); its adjustment factor in hundredths of %.
    NonRunner {
        runner_id: u64,
        adjustment_factor_bp: Option<u32>,
    },
    /// Replayed from the log on restart (producers start down, so markets start suspended).
    Restored,
}

impl ChangeReason {
    pub fn code(&self) -> &'static str {
        match self {
            ChangeReason::FeedOdds => "feed_odds",
            ChangeReason::ProviderSuspended => "provider_suspended",
            ChangeReason::BetStop => "bet_stop",
            ChangeReason::ProducerSilent => "producer_silent",
            ChangeReason::ProducerLost => "producer_lost",
            ChangeReason::RecoveryComplete => "recovery_complete",
            ChangeReason::ImpossiblePrice => "impossible_price",
            ChangeReason::PricingFailed { .. } => "pricing_failed",
            ChangeReason::IncompletePrices => "incomplete_prices",
            ChangeReason::ProviderClosed => "provider_closed",
            ChangeReason::Settled => "settled",
            ChangeReason::Cancelled { .. } => "cancelled",
            ChangeReason::RollbackSettlement => "rollback_settlement",
            ChangeReason::RollbackCancel => "rollback_cancel",
            ChangeReason::NonRunner { .. } => "non_runner",
            ChangeReason::Restored => "restored",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionView {
    pub selection_id: SelectionId,
    pub outcome: Outcome,
    /// `None`: not offered (inactive outcome, or no valid price yet).
    pub price: Option<Price>,
}

/// A feed market as offered after this change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketView {
    pub market_id: MarketId,
    pub event_id: EventId,
    pub kind: MarketKind,
    pub status: MarketStatus,
    pub in_play: bool,
    /// `uof:<product>` or `betfair`.
    pub producer: String,
    pub selections: Vec<SelectionView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OddsChanged {
    /// Position in the odds stream (1-based, gap-free); clients detect gaps with it.
    pub odds_seq: u64,
    pub reason: ChangeReason,
    /// Provider's timestamp of the message that caused the change (local time for timeouts).
    pub source_ts: UnixMillis,
    pub market: MarketView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerChanged {
    pub producer: String,
    pub up: bool,
    pub reason: ChangeReason,
    pub at: UnixMillis,
}
