//! `decide`: command → (events to log, reply), against the current state, without mutating.
//! Expected refusals of a bet are logged `ComplianceDecision`s; malformed or impossible
//! requests are `CommandError`s that change nothing and log nothing.

use super::events::*;
use super::state::{BetStatus, BetView, EdgeState, IdemOutcome, PlayerView};
use crate::feed::records::{OddsChanged, ProducerChanged};
use crate::gate::{self, BetFacts, GateDecision, LegFacts, PlayerFacts, ReasonCode};
use crate::hub::{HubEvent, HubResult, HubSettlement};
use crate::ids::{BetId, Jurisdiction, NodeId, PlayerId, SelectionId, Seq};
use crate::jurisdiction::JurisdictionRules;
use crate::ledger::{Account, Posting};
use crate::market::{Market, MarketStatus, SportEvent};
use crate::money::Money;
use crate::price::Price;
use crate::settle::potential_payout_minor;
use crate::time::{CivilDate, UnixMillis};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegRequest {
    pub selection_id: SelectionId,
    pub price: Price,
}

#[derive(Debug, Clone)]
pub enum Command {
    Genesis(Genesis),
    RegisterPlayer {
        jurisdiction: Jurisdiction,
        pii_sha256: String,
        idem: IdemTag,
    },
    VerifyKyc {
        player_id: PlayerId,
        idem: IdemTag,
    },
    SelfExclude {
        player_id: PlayerId,
        idem: IdemTag,
    },
    Deposit {
        player_id: PlayerId,
        amount: Money,
        provider_ref: String,
        idem: IdemTag,
    },
    Withdraw {
        player_id: PlayerId,
        amount: Money,
        provider_ref: String,
        idem: IdemTag,
    },
    /// `date_of_birth` is prefetched by the shell from the node-local PII vault.
    PlaceBet {
        player_id: PlayerId,
        stake: Money,
        legs: Vec<LegRequest>,
        date_of_birth: Option<CivilDate>,
        idem: IdemTag,
    },
    OpenMarket {
        event: SportEvent,
        market: Market,
    },
    /// A verified record of the hub's downstream chain for this node.
    ApplyDown {
        down: DownRef,
        event: HubEvent,
    },
    /// Changes decided by the odds book (`feed::book`) to be logged: one record each.
    RecordOdds {
        producers: Vec<ProducerChanged>,
        changes: Vec<OddsChanged>,
    },
}

/// Inputs the shell passes in: time and the jurisdiction rules in force.
pub struct DecideCtx<'a> {
    pub now: UnixMillis,
    pub rules: &'a JurisdictionRules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Player(PlayerView),
    Movement {
        movement_id: u64,
        player: PlayerView,
    },
    Bet(BetView),
    BetRejected {
        reason: ReasonCode,
        rules_version: String,
        checks: Vec<crate::gate::CheckResult>,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub events: Vec<EdgeEvent>,
    pub reply: Reply,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("node is not initialised (no genesis record)")]
    NotInitialised,
    #[error("node is already initialised")]
    AlreadyInitialised,
    #[error("player {0} not found")]
    UnknownPlayer(PlayerId),
    #[error("selection {0} is not offered by this node")]
    UnknownSelection(SelectionId),
    #[error("jurisdiction {0} is not served by this node")]
    JurisdictionNotServed(Jurisdiction),
    #[error("idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("amount must be a positive number of minor units")]
    InvalidAmount,
    #[error("currency {found} is not this node's currency {expected}")]
    CurrencyMismatch { expected: String, found: String },
    #[error("insufficient funds: balance {balance_minor}, requested {amount_minor}")]
    InsufficientFunds {
        balance_minor: i64,
        amount_minor: i64,
    },
    #[error("market {0} already exists")]
    MarketExists(String),
    #[error("invalid market: {0}")]
    InvalidMarket(String),
    #[error("downstream record {found} out of order (expected {expected})")]
    DownOutOfOrder { expected: Seq, found: Seq },
    #[error("downstream settlement is for node {0}, not this node")]
    WrongNode(NodeId),
}

impl EdgeState {
    fn idem_replay(&self, tag: &IdemTag) -> Result<Option<Reply>, CommandError> {
        let Some(e) = self.idem.get(&tag.key) else {
            return Ok(None);
        };
        if e.request_sha256 != tag.request_sha256 {
            return Err(CommandError::IdempotencyKeyReused);
        }
        Ok(Some(match &e.outcome {
            IdemOutcome::Player(p) => {
                Reply::Player(self.player_view(p).expect("remembered player exists"))
            }
            IdemOutcome::Movement(id) => {
                let m = &self.movements[id];
                Reply::Movement {
                    movement_id: *id,
                    player: self.player_view(&m.player_id).expect("player exists"),
                }
            }
            IdemOutcome::Bet(b) => Reply::Bet(self.bet_view(b).expect("remembered bet exists")),
            IdemOutcome::BetRejected {
                reason,
                rules_version,
                checks,
            } => Reply::BetRejected {
                reason: *reason,
                rules_version: rules_version.clone(),
                checks: checks.clone(),
            },
        }))
    }

    fn node_id(&self) -> Result<&NodeId, CommandError> {
        self.node
            .as_ref()
            .map(|n| &n.node_id)
            .ok_or(CommandError::NotInitialised)
    }

    fn check_amount(&self, amount: Money) -> Result<(), CommandError> {
        if amount.minor <= 0 {
            return Err(CommandError::InvalidAmount);
        }
        let cur = self.ledger().currency();
        if amount.currency != cur {
            return Err(CommandError::CurrencyMismatch {
                expected: cur.to_string(),
                found: amount.currency.to_string(),
            });
        }
        Ok(())
    }

    fn player(&self, id: &PlayerId) -> Result<&super::state::Player, CommandError> {
        self.players
            .get(id)
            .ok_or_else(|| CommandError::UnknownPlayer(id.clone()))
    }

    /// Decide a command. Pure: the returned events, applied in order with `apply`, perform it.
    pub fn decide(&self, cmd: Command, ctx: &DecideCtx<'_>) -> Result<Decided, CommandError> {
        if let Command::Genesis(g) = cmd {
            if self.node.is_some() {
                return Err(CommandError::AlreadyInitialised);
            }
            return Ok(Decided {
                events: vec![EdgeEvent::Genesis(g)],
                reply: Reply::Done,
            });
        }
        let node_id = self.node_id()?.clone();
        let idem = match &cmd {
            Command::RegisterPlayer { idem, .. }
            | Command::VerifyKyc { idem, .. }
            | Command::SelfExclude { idem, .. }
            | Command::Deposit { idem, .. }
            | Command::Withdraw { idem, .. }
            | Command::PlaceBet { idem, .. } => Some(idem),
            _ => None,
        };
        if let Some(tag) = idem
            && let Some(reply) = self.idem_replay(tag)?
        {
            return Ok(Decided {
                events: vec![],
                reply,
            });
        }
        let one = |ev: EdgeEvent, reply: Reply| {
            Ok(Decided {
                events: vec![ev],
                reply,
            })
        };
        match cmd {
            Command::Genesis(_) => unreachable!("handled above"),
            Command::RegisterPlayer {
                jurisdiction,
                pii_sha256,
                idem,
            } => {
                if self
                    .node
                    .as_ref()
                    .is_some_and(|n| n.jurisdiction != jurisdiction)
                {
                    return Err(CommandError::JurisdictionNotServed(jurisdiction));
                }
                let player_id = PlayerId::new(format!("{node_id}-p{}", self.next_player_no))
                    .expect("generated ids are valid");
                let view = PlayerView {
                    player_id: player_id.clone(),
                    jurisdiction: jurisdiction.clone(),
                    kyc_verified: false,
                    self_excluded: false,
                    currency: self.ledger().currency(),
                    cash_minor: 0,
                    stakes_held_minor: 0,
                };
                one(
                    EdgeEvent::PlayerRegistered(PlayerRegistered {
                        player_id,
                        jurisdiction,
                        pii_sha256,
                        idem,
                    }),
                    Reply::Player(view),
                )
            }
            Command::VerifyKyc { player_id, idem } => {
                let mut view = self
                    .player_view(&player_id)
                    .ok_or(CommandError::UnknownPlayer(player_id.clone()))?;
                view.kyc_verified = true;
                one(
                    EdgeEvent::KycVerified(KycVerified { player_id, idem }),
                    Reply::Player(view),
                )
            }
            Command::SelfExclude { player_id, idem } => {
                let mut view = self
                    .player_view(&player_id)
                    .ok_or(CommandError::UnknownPlayer(player_id.clone()))?;
                view.self_excluded = true;
                one(
                    EdgeEvent::SelfExcluded(SelfExcluded { player_id, idem }),
                    Reply::Player(view),
                )
            }
            Command::Deposit {
                player_id,
                amount,
                provider_ref,
                idem,
            } => {
                self.player(&player_id)?;
                self.check_amount(amount)?;
                let postings = vec![Posting {
                    from: Account::PaymentProvider,
                    to: Account::PlayerCash(player_id.clone()),
                    amount_minor: amount.minor,
                }];
                self.movement(
                    player_id,
                    MovementReason::Deposit,
                    postings,
                    Some(provider_ref),
                    Some(idem),
                    None,
                )
            }
            Command::Withdraw {
                player_id,
                amount,
                provider_ref,
                idem,
            } => {
                self.player(&player_id)?;
                self.check_amount(amount)?;
                let balance = self
                    .ledger()
                    .balance(&Account::PlayerCash(player_id.clone()));
                if balance < amount.minor {
                    return Err(CommandError::InsufficientFunds {
                        balance_minor: balance,
                        amount_minor: amount.minor,
                    });
                }
                let postings = vec![Posting {
                    from: Account::PlayerCash(player_id.clone()),
                    to: Account::PaymentProvider,
                    amount_minor: amount.minor,
                }];
                self.movement(
                    player_id,
                    MovementReason::Withdrawal,
                    postings,
                    Some(provider_ref),
                    Some(idem),
                    None,
                )
            }
            Command::PlaceBet {
                player_id,
                stake,
                legs,
                date_of_birth,
                idem,
            } => self.place_bet(&node_id, player_id, stake, legs, date_of_birth, idem, ctx),
            Command::OpenMarket { event, market } => {
                if self.markets.contains_key(&market.market_id) {
                    return Err(CommandError::MarketExists(market.market_id.to_string()));
                }
                validate_market(&event, &market)?;
                one(
                    EdgeEvent::MarketOpened(MarketOpened { event, market }),
                    Reply::Done,
                )
            }
            Command::ApplyDown { down, event } => self.apply_down(&node_id, down, event),
            Command::RecordOdds { producers, changes } => Ok(Decided {
                events: producers
                    .into_iter()
                    .map(EdgeEvent::ProducerChanged)
                    .chain(changes.into_iter().map(EdgeEvent::OddsChanged))
                    .collect(),
                reply: Reply::Done,
            }),
        }
    }

    fn movement(
        &self,
        player_id: PlayerId,
        reason: MovementReason,
        postings: Vec<Posting>,
        provider_ref: Option<String>,
        idem: Option<IdemTag>,
        bet_id: Option<BetId>,
    ) -> Result<Decided, CommandError> {
        let movement_id = self.next_movement_no;
        // `check` is exactly what `apply` will enforce; the reply's balances are derived from
        // the postings rather than from a cloned ledger (this runs on every bet).
        self.ledger()
            .check(self.ledger().currency(), &postings)
            .map_err(|_| CommandError::InsufficientFunds {
                balance_minor: self
                    .ledger()
                    .balance(&Account::PlayerCash(player_id.clone())),
                amount_minor: postings.iter().map(|p| p.amount_minor).sum(),
            })?;
        let mut view = self.player_view(&player_id).expect("player checked");
        let (cash, stakes) = (
            Account::PlayerCash(player_id.clone()),
            Account::PlayerStakes(player_id.clone()),
        );
        for p in &postings {
            for (acct, sign) in [(&p.from, -1), (&p.to, 1)] {
                if *acct == cash {
                    view.cash_minor += sign * p.amount_minor;
                } else if *acct == stakes {
                    view.stakes_held_minor += sign * p.amount_minor;
                }
            }
        }
        let ev = WalletMovement {
            movement_id,
            player_id,
            reason,
            currency: self.ledger().currency(),
            postings,
            bet_id,
            provider_ref,
            idem,
        };
        Ok(Decided {
            events: vec![EdgeEvent::WalletMovement(ev)],
            reply: Reply::Movement {
                movement_id,
                player: view,
            },
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn place_bet(
        &self,
        node_id: &NodeId,
        player_id: PlayerId,
        stake: Money,
        legs: Vec<LegRequest>,
        date_of_birth: Option<CivilDate>,
        idem: IdemTag,
        ctx: &DecideCtx<'_>,
    ) -> Result<Decided, CommandError> {
        let player = self.player(&player_id)?;
        // An unknown selection is malformed input, not a compliance outcome: refuse it
        // without logging anything.
        if let Some(l) = legs
            .iter()
            .find(|l| !self.selection_index.contains_key(&l.selection_id))
        {
            return Err(CommandError::UnknownSelection(l.selection_id.clone()));
        }
        let node = self.node.as_ref().expect("initialised");
        let facts = PlayerFacts {
            jurisdiction: player.jurisdiction.clone(),
            kyc_verified: player.kyc_verified,
            date_of_birth,
            self_excluded: player.self_excluded,
            cash_minor: self
                .ledger()
                .balance(&Account::PlayerCash(player_id.clone())),
        };
        let leg_facts: Vec<LegFacts<'_>> = legs
            .iter()
            .map(|l| LegFacts {
                selection_id: &l.selection_id,
                requested_price: l.price,
                market: self
                    .selection_index
                    .get(&l.selection_id)
                    .and_then(|m| self.markets.get(m)),
            })
            .collect();
        let served = [node.jurisdiction.clone()];
        let decision: GateDecision = gate::evaluate_bet(&BetFacts {
            rules: ctx.rules,
            served: &served,
            player: &facts,
            today: ctx.now.date(),
            stake,
            legs: &leg_facts,
        });
        let record =
            |accepted: bool, bet_id: Option<BetId>, idem: Option<IdemTag>| ComplianceDecision {
                player_id: player_id.clone(),
                action: "place_bet".into(),
                accepted,
                reason: decision.reason,
                jurisdiction: player.jurisdiction.clone(),
                rules_version: decision.rules_version.clone(),
                checks: decision.checks.clone(),
                bet_id,
                idem,
            };
        let Some(()) = decision.accepted.then_some(()) else {
            let reason = decision.reason.expect("rejections carry a reason");
            let reply = Reply::BetRejected {
                reason,
                rules_version: decision.rules_version.clone(),
                checks: decision.checks.clone(),
            };
            return Ok(Decided {
                events: vec![EdgeEvent::ComplianceDecision(record(
                    false,
                    None,
                    Some(idem),
                ))],
                reply,
            });
        };
        // The gate passed, so every leg resolved to an open market selection.
        let bet_legs: Vec<BetLeg> = legs
            .iter()
            .zip(&leg_facts)
            .map(|(l, f)| {
                let m = f.market.expect("gate checked");
                let sel = m.selection(&l.selection_id).expect("gate checked");
                BetLeg {
                    selection_id: l.selection_id.clone(),
                    market_id: m.market_id.clone(),
                    event_id: m.event_id.clone(),
                    kind: m.kind,
                    outcome: sel.outcome,
                    price: l.price,
                }
            })
            .collect();
        let prices: Vec<Price> = bet_legs.iter().map(|l| l.price).collect();
        let potential =
            potential_payout_minor(stake.minor, &prices).expect("gate checked payout limit");
        let bet_id = BetId::new(format!("{node_id}-b{}", self.next_bet_no))
            .expect("generated ids are valid");
        let stake_postings = vec![Posting {
            from: Account::PlayerCash(player_id.clone()),
            to: Account::PlayerStakes(player_id.clone()),
            amount_minor: stake.minor,
        }];
        let mv = self.movement(
            player_id.clone(),
            MovementReason::Stake,
            stake_postings,
            None,
            None,
            Some(bet_id.clone()),
        )?;
        let placed = BetPlaced {
            bet_id: bet_id.clone(),
            player_id: player_id.clone(),
            currency: stake.currency,
            stake_minor: stake.minor,
            potential_payout_minor: potential,
            legs: bet_legs.clone(),
            idem,
        };
        let view = BetView {
            bet_id: bet_id.clone(),
            player_id: player_id.clone(),
            placed_at: ctx.now,
            currency: stake.currency,
            stake_minor: stake.minor,
            potential_payout_minor: potential,
            legs: bet_legs,
            status: BetStatus::Open,
        };
        let mut events = vec![EdgeEvent::ComplianceDecision(record(
            true,
            Some(bet_id),
            None,
        ))];
        events.extend(mv.events);
        events.push(EdgeEvent::BetPlaced(placed));
        Ok(Decided {
            events,
            reply: Reply::Bet(view),
        })
    }

    fn apply_down(
        &self,
        node_id: &NodeId,
        down: DownRef,
        event: HubEvent,
    ) -> Result<Decided, CommandError> {
        let expected = self.down_applied.next();
        if down.down_seq != expected {
            return Err(CommandError::DownOutOfOrder {
                expected,
                found: down.down_seq,
            });
        }
        let skip = |reason: String| {
            Ok(Decided {
                events: vec![EdgeEvent::DownSkipped(DownSkipped {
                    reason,
                    down: down.clone(),
                })],
                reply: Reply::Done,
            })
        };
        match event {
            HubEvent::Result(HubResult {
                event_id,
                score,
                result_version,
                ..
            }) => Ok(Decided {
                events: vec![EdgeEvent::EventResulted(EventResulted {
                    event_id,
                    score,
                    result_version,
                    down,
                })],
                reply: Reply::Done,
            }),
            HubEvent::Settlement(s) => {
                let HubSettlement {
                    bet_id,
                    node_id: target,
                    player_id,
                    result_version,
                    leg_results,
                    stake_minor,
                    payout_minor,
                    currency,
                } = s;
                if &target != node_id {
                    return Err(CommandError::WrongNode(target));
                }
                let Some(bet) = self.bets.get(&bet_id) else {
                    return skip(format!("unknown bet {bet_id}"));
                };
                if bet.status != BetStatus::Open {
                    return skip(format!("bet {bet_id} already settled"));
                }
                if bet.placed.player_id != player_id
                    || bet.placed.stake_minor != stake_minor
                    || currency != bet.placed.currency
                {
                    return skip(format!(
                        "settlement of {bet_id} does not match the bet as placed"
                    ));
                }
                if payout_minor < 0 {
                    return skip(format!("negative payout for {bet_id}"));
                }
                let mut postings = vec![Posting {
                    from: Account::PlayerStakes(player_id.clone()),
                    to: Account::House,
                    amount_minor: stake_minor,
                }];
                if payout_minor > 0 {
                    postings.push(Posting {
                        from: Account::House,
                        to: Account::PlayerCash(player_id.clone()),
                        amount_minor: payout_minor,
                    });
                }
                let mv = self.movement(
                    player_id.clone(),
                    MovementReason::Settlement,
                    postings,
                    None,
                    None,
                    Some(bet_id.clone()),
                )?;
                let mut events = vec![EdgeEvent::BetSettled(BetSettled {
                    bet_id,
                    player_id,
                    result_version,
                    leg_results,
                    payout_minor,
                    down,
                })];
                events.extend(mv.events);
                Ok(Decided {
                    events,
                    reply: Reply::Done,
                })
            }
        }
    }
}

fn validate_market(event: &SportEvent, m: &Market) -> Result<(), CommandError> {
    let bad = |s: &str| Err(CommandError::InvalidMarket(format!("{}: {s}", m.market_id)));
    if m.event_id != event.event_id {
        return bad("event id mismatch");
    }
    if Market::market_id_for(&m.event_id, &m.kind) != m.market_id {
        return bad("market id does not match its event and kind");
    }
    let outcomes: Vec<_> = m.selections.iter().map(|s| s.outcome).collect();
    if !m.kind.is_valid() {
        return bad("invalid market kind (each-way terms, places or score range)");
    }
    if m.kind.is_open_set() {
        // Runner markets: at least two distinct runners.
        let distinct: std::collections::BTreeSet<_> = outcomes.iter().collect();
        if outcomes.len() < 2 || distinct.len() != outcomes.len() || !outcomes.iter().all(|o| m.kind.accepts(o)) {
            return bad("selections do not match the market kind");
        }
    } else if outcomes != m.kind.outcomes() {
        return bad("selections do not match the market kind");
    }
    for s in &m.selections {
        if Market::selection_id_for(&m.market_id, s.outcome) != s.selection_id {
            return bad("selection id does not match its market and outcome");
        }
    }
    if m.status != MarketStatus::Open && m.status != MarketStatus::Suspended {
        return bad("a new market must be open or suspended");
    }
    Ok(())
}
