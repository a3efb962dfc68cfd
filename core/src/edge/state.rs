//! Edge state and its transition function `apply`. Ordered maps everywhere so that snapshots
//! of the same log are byte-identical.

use super::events::*;
use crate::gate::{CheckResult, ReasonCode};
use crate::ids::{
    BetId, EventId, IdemKey, Jurisdiction, MarketId, NodeId, PlayerId, SelectionId, Seq,
};
use crate::ledger::{Account, Ledger, LedgerError};
use crate::market::{Market, MarketStatus, SportEvent};
use crate::money::Currency;
use crate::settle::LegResult;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player {
    pub player_id: PlayerId,
    pub jurisdiction: Jurisdiction,
    pub kyc_verified: bool,
    pub self_excluded: bool,
    pub registered_at: UnixMillis,
    /// Limits, activity, time-out, reality check (issue 3).
    #[serde(default)]
    pub rg: super::compliance::PlayerCompliance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BetStatus {
    Open,
    Settled {
        result_version: u32,
        leg_results: Vec<LegResult>,
        payout_minor: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bet {
    pub placed: BetPlaced,
    pub placed_at: UnixMillis,
    pub status: BetStatus,
}

/// What an idempotency key resolved to, so a retry gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdemOutcome {
    Player(PlayerId),
    Movement(u64),
    Bet(BetId),
    BetRejected {
        reason: ReasonCode,
        rules_version: String,
        checks: Vec<CheckResult>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdemEntry {
    pub request_sha256: String,
    pub outcome: IdemOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub jurisdiction: Jurisdiction,
    pub currency: Currency,
    pub public_key: String,
}

impl EdgeState {
    /// A feed market's new status and prices become the bettable market. Selections without
    /// a price keep their last one (the market is then not open, so it cannot be bet); a
    /// selection missing from the view (a non-runner) is removed.
    fn apply_odds(&mut self, c: &crate::feed::records::OddsChanged) {
        use crate::market::SelectionPrice;
        self.odds_seq = self.odds_seq.max(c.odds_seq);
        let v = &c.market;
        let prev = self.markets.remove(&v.market_id);
        let selections: Vec<SelectionPrice> = v
            .selections
            .iter()
            .filter_map(|s| {
                let price = s.price.or_else(|| {
                    prev.as_ref()
                        .and_then(|m| m.selection(&s.selection_id))
                        .map(|p| p.price)
                })?;
                Some(SelectionPrice {
                    selection_id: s.selection_id.clone(),
                    outcome: s.outcome,
                    price,
                })
            })
            .collect();
        if let Some(p) = &prev {
            for s in &p.selections {
                if !selections.iter().any(|x| x.selection_id == s.selection_id) {
                    self.selection_index.remove(&s.selection_id);
                }
            }
        }
        for s in &selections {
            self.selection_index
                .insert(s.selection_id.clone(), v.market_id.clone());
        }
        self.markets.insert(
            v.market_id.clone(),
            Market {
                market_id: v.market_id.clone(),
                event_id: v.event_id.clone(),
                kind: v.kind,
                // Unpriced selections can never be bet: such a market is never left open.
                status: if selections.len() < v.selections.len() && v.status == MarketStatus::Open {
                    MarketStatus::Suspended
                } else {
                    v.status
                },
                selections,
            },
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeState {
    pub node: Option<NodeInfo>,
    pub players: BTreeMap<PlayerId, Player>,
    pub ledger: Option<Ledger>,
    pub bets: BTreeMap<BetId, Bet>,
    pub events: BTreeMap<EventId, SportEvent>,
    pub markets: BTreeMap<MarketId, Market>,
    pub selection_index: BTreeMap<SelectionId, MarketId>,
    /// Last odds stream sequence logged (`OddsChanged.odds_seq`), so it continues on restart.
    #[serde(default)]
    pub odds_seq: u64,
    pub idem: BTreeMap<IdemKey, IdemEntry>,
    /// Movement id → its player. The movement itself (postings, the gate's decision) is in
    /// the log; keeping only what idempotent replies need saves ~2 KB per deposit in memory.
    pub movements: BTreeMap<u64, PlayerId>,
    /// Last downstream (hub → edge) record applied, and its hash and time: where the edge
    /// resumes verifying the hub's chain.
    pub down_applied: Seq,
    pub down_hash: String,
    pub down_timestamp_ms: i64,
    pub next_player_no: u64,
    pub next_bet_no: u64,
    pub next_movement_no: u64,
    pub bets_rejected: u64,
    /// Register, liabilities, payment references, rules in force (issue 3).
    #[serde(default)]
    pub gate: super::compliance::GateState,
    /// Shop tickets (issue 6).
    #[serde(default)]
    pub shop: super::shop::ShopState,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("log does not start with a genesis record")]
    NoGenesis,
    #[error("second genesis record")]
    DuplicateGenesis,
    #[error("unknown player {0}")]
    UnknownPlayer(PlayerId),
    #[error("unknown bet {0}")]
    UnknownBet(BetId),
    #[error("bet {0} is already settled: a bet pays out at most once")]
    AlreadySettled(BetId),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("bet {0} is not settled as the reversal states: a settlement is reversed at most once")]
    NotReversible(BetId),
    #[error("downstream record {found} applied out of order (expected {expected})")]
    DownOrder { expected: Seq, found: Seq },
    #[error("duplicate id {0}")]
    Duplicate(String),
    #[error("unreadable record: {0}")]
    Corrupt(String),
    #[error("shop: {0}")]
    Shop(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayerView {
    pub player_id: PlayerId,
    pub jurisdiction: Jurisdiction,
    pub kyc_verified: bool,
    pub self_excluded: bool,
    pub currency: Currency,
    pub cash_minor: i64,
    pub stakes_held_minor: i64,
    /// What the player owes after a settlement correction (0 normally); withdrawals are
    /// refused until it is repaid.
    #[serde(skip_serializing_if = "is_zero")]
    pub debt_minor: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BetView {
    pub bet_id: BetId,
    pub player_id: PlayerId,
    pub placed_at: UnixMillis,
    pub currency: Currency,
    pub stake_minor: i64,
    pub potential_payout_minor: i64,
    pub legs: Vec<BetLeg>,
    /// Each-way: `stake_minor` is both parts (twice the unit stake).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub each_way: bool,
    #[serde(flatten)]
    pub status: BetStatus,
    /// The player is due a reality check (returned with a newly placed bet).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reality_check_due: bool,
}

impl Default for EdgeState {
    fn default() -> Self {
        EdgeState {
            node: None,
            players: BTreeMap::new(),
            ledger: None,
            bets: BTreeMap::new(),
            events: BTreeMap::new(),
            markets: BTreeMap::new(),
            selection_index: BTreeMap::new(),
            odds_seq: 0,
            idem: BTreeMap::new(),
            movements: BTreeMap::new(),
            down_applied: Seq::ZERO,
            down_hash: "0".repeat(64),
            down_timestamp_ms: 0,
            next_player_no: 1,
            next_bet_no: 1,
            next_movement_no: 1,
            bets_rejected: 0,
            gate: Default::default(),
            shop: Default::default(),
        }
    }
}

impl EdgeState {
    pub fn ledger(&self) -> &Ledger {
        self.ledger.as_ref().expect("state initialised by genesis")
    }

    pub fn player_view(&self, id: &PlayerId) -> Option<PlayerView> {
        let p = self.players.get(id)?;
        let l = self.ledger();
        Some(PlayerView {
            player_id: p.player_id.clone(),
            jurisdiction: p.jurisdiction.clone(),
            kyc_verified: p.kyc_verified,
            self_excluded: p.self_excluded,
            currency: l.currency(),
            cash_minor: l.balance(&Account::PlayerCash(id.clone())),
            stakes_held_minor: l.balance(&Account::PlayerStakes(id.clone())),
            debt_minor: -l.balance(&Account::PlayerDebt(id.clone())),
        })
    }

    pub fn bet_view(&self, id: &BetId) -> Option<BetView> {
        let b = self.bets.get(id)?;
        Some(BetView {
            bet_id: b.placed.bet_id.clone(),
            player_id: b.placed.player_id.clone(),
            placed_at: b.placed_at,
            currency: b.placed.currency,
            stake_minor: b.placed.stake_minor,
            potential_payout_minor: b.placed.potential_payout_minor,
            legs: b.placed.legs.clone(),
            each_way: b.placed.each_way,
            status: b.status.clone(),
            reality_check_due: false,
        })
    }

    pub(super) fn remember(&mut self, tag: &IdemTag, outcome: IdemOutcome) {
        self.idem.insert(
            tag.key.clone(),
            IdemEntry {
                request_sha256: tag.request_sha256.clone(),
                outcome,
            },
        );
    }

    fn advance_down(&mut self, d: &DownRef) -> Result<(), ApplyError> {
        let expected = self.down_applied.next();
        if d.down_seq != expected {
            return Err(ApplyError::DownOrder {
                expected,
                found: d.down_seq,
            });
        }
        self.down_applied = d.down_seq;
        self.down_hash = d.hub_record_sha256.clone();
        self.down_timestamp_ms = d.hub_timestamp_ms;
        Ok(())
    }

    /// Apply one logged event. Any error means the log contradicts itself (or a bug): the
    /// caller must stop, never skip.
    pub fn apply(&mut self, ev: &EdgeEvent, at: UnixMillis) -> Result<(), ApplyError> {
        if self.node.is_none() && !matches!(ev, EdgeEvent::Genesis(_)) {
            return Err(ApplyError::NoGenesis);
        }
        match ev {
            EdgeEvent::Genesis(g) => {
                if self.node.is_some() {
                    return Err(ApplyError::DuplicateGenesis);
                }
                self.node = Some(NodeInfo {
                    node_id: g.node_id.clone(),
                    jurisdiction: g.jurisdiction.clone(),
                    currency: g.currency,
                    public_key: g.public_key.clone(),
                });
                self.ledger = Some(Ledger::new(g.currency));
            }
            EdgeEvent::PlayerRegistered(r) => {
                if self.players.contains_key(&r.player_id) {
                    return Err(ApplyError::Duplicate(r.player_id.to_string()));
                }
                self.players.insert(
                    r.player_id.clone(),
                    Player {
                        player_id: r.player_id.clone(),
                        jurisdiction: r.jurisdiction.clone(),
                        kyc_verified: false,
                        self_excluded: false,
                        registered_at: at,
                        rg: super::compliance::PlayerCompliance {
                            last_reality_check_at: at,
                            ..Default::default()
                        },
                    },
                );
                self.next_player_no += 1;
                self.remember(&r.idem, IdemOutcome::Player(r.player_id.clone()));
            }
            EdgeEvent::KycVerified(k) => {
                let p = self
                    .players
                    .get_mut(&k.player_id)
                    .ok_or_else(|| ApplyError::UnknownPlayer(k.player_id.clone()))?;
                p.kyc_verified = true;
                self.remember(&k.idem, IdemOutcome::Player(k.player_id.clone()));
            }
            EdgeEvent::SelfExcluded(s) => {
                let p = self
                    .players
                    .get_mut(&s.player_id)
                    .ok_or_else(|| ApplyError::UnknownPlayer(s.player_id.clone()))?;
                p.self_excluded = true;
                self.remember(&s.idem, IdemOutcome::Player(s.player_id.clone()));
            }
            EdgeEvent::WalletMovement(m) => {
                if self.movements.contains_key(&m.movement_id) {
                    return Err(ApplyError::Duplicate(format!("movement {}", m.movement_id)));
                }
                let ledger = self.ledger.as_mut().expect("genesis applied");
                // Double entry keeps the sum at zero by construction. Summing every account
                // is O(accounts), so it runs after every movement only in debug builds (tests,
                // `Ledger::apply`), and in full at recovery and on `/healthz`.
                ledger.apply(m.currency, &m.postings)?;
                self.next_movement_no = self.next_movement_no.max(m.movement_id + 1);
                if let Some(tag) = &m.idem {
                    self.remember(tag, IdemOutcome::Movement(m.movement_id));
                }
                self.gate_on_movement(m, at);
                self.movements.insert(m.movement_id, m.player_id.clone());
            }
            EdgeEvent::ComplianceDecision(d) => {
                if !d.accepted {
                    if d.action == "place_bet" {
                        self.bets_rejected += 1;
                    }
                    if let (Some(tag), Some(reason)) = (&d.idem, d.reason) {
                        self.remember(
                            tag,
                            IdemOutcome::BetRejected {
                                reason,
                                rules_version: d.rules_version.clone(),
                                checks: d.checks.clone(),
                            },
                        );
                    }
                }
            }
            EdgeEvent::BetPlaced(b) => {
                if self.bets.contains_key(&b.bet_id) {
                    return Err(ApplyError::Duplicate(b.bet_id.to_string()));
                }
                self.bets.insert(
                    b.bet_id.clone(),
                    Bet {
                        placed: b.clone(),
                        placed_at: at,
                        status: BetStatus::Open,
                    },
                );
                self.next_bet_no += 1;
                self.remember(&b.idem, IdemOutcome::Bet(b.bet_id.clone()));
                self.gate_on_bet_placed(b);
            }
            EdgeEvent::MarketOpened(m) => {
                self.events
                    .entry(m.event.event_id.clone())
                    .or_insert_with(|| m.event.clone());
                for s in &m.market.selections {
                    self.selection_index
                        .insert(s.selection_id.clone(), m.market.market_id.clone());
                }
                self.markets
                    .insert(m.market.market_id.clone(), m.market.clone());
            }
            EdgeEvent::EventResulted(r) => {
                self.advance_down(&r.down)?;
                for m in self
                    .markets
                    .values_mut()
                    .filter(|m| m.event_id == r.event_id)
                    .filter(|m| {
                        r.markets
                            .as_ref()
                            .is_none_or(|ms| ms.contains(&m.market_id))
                    })
                {
                    m.status = MarketStatus::Closed;
                }
            }
            EdgeEvent::BetSettled(s) => {
                self.advance_down(&s.down)?;
                let bet = self
                    .bets
                    .get_mut(&s.bet_id)
                    .ok_or_else(|| ApplyError::UnknownBet(s.bet_id.clone()))?;
                if bet.status != BetStatus::Open {
                    return Err(ApplyError::AlreadySettled(s.bet_id.clone()));
                }
                bet.status = BetStatus::Settled {
                    result_version: s.result_version,
                    leg_results: s.leg_results.clone(),
                    payout_minor: s.payout_minor,
                };
                let placed = bet.placed.clone();
                self.gate_on_bet_settled(&placed, &BetStatus::Open);
            }
            EdgeEvent::DownSkipped(s) => self.advance_down(&s.down)?,
            EdgeEvent::BetSettlementReversed(r) => {
                self.advance_down(&r.down)?;
                let bet = self
                    .bets
                    .get_mut(&r.bet_id)
                    .ok_or_else(|| ApplyError::UnknownBet(r.bet_id.clone()))?;
                match &bet.status {
                    BetStatus::Settled {
                        result_version,
                        payout_minor,
                        ..
                    } if *result_version == r.reversed_result_version
                        && *payout_minor == r.payout_reversed_minor => {}
                    _ => return Err(ApplyError::NotReversible(r.bet_id.clone())),
                }
                bet.status = BetStatus::Open;
            }
            // A statement about the state, checked by the hub; it changes nothing.
            EdgeEvent::BalanceSnapshot(_) => {}
            // Issue 3: the gate's own records.
            EdgeEvent::LimitChanged(_)
            | EdgeEvent::RegisterLoaded(_)
            | EdgeEvent::AmlFlagged(_)
            | EdgeEvent::PlayerTimedOut(_)
            | EdgeEvent::RealityCheckAcknowledged(_)
            | EdgeEvent::RulesActivated(_)
            | EdgeEvent::CrossOperatorFigure(_)
            | EdgeEvent::WithdrawalCompleted(_) => self.apply_gate(ev, at)?,
            EdgeEvent::ShopTicketIssued(_)
            | EdgeEvent::ShopTicketPaid(_)
            | EdgeEvent::ShopTicketVoided(_) => self.apply_shop(ev, at)?,
            EdgeEvent::OddsChanged(c) => self.apply_odds(c),
            EdgeEvent::ProducerChanged(_) => {}
        }
        Ok(())
    }
}
