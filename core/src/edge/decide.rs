//! `decide`: command → (events to log, reply), against the current state, without mutating.
//! Expected refusals of a bet are logged `ComplianceDecision`s; malformed or impossible
//! requests are `CommandError`s that change nothing and log nothing.

use super::compliance::NodeGateConfig;
use super::events::*;
use super::state::{BetStatus, BetView, EdgeState, IdemOutcome, PlayerView};
use crate::feed::records::{OddsChanged, ProducerChanged};
use crate::gate::geo::GeoAttestation;
use crate::gate::register::SignedRegisterDoc;
use crate::gate::{
    self, BetFacts, DepositFacts, GateDecision, LimitKind, PricePolicy, ReasonCode, Window,
};
use crate::hub::{HubEvent, HubResult, HubSettlement, HubSettlementReversal};
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
        /// Where the player is, for jurisdictions that require presence.
        geo: Option<GeoAttestation>,
        price_policy: PricePolicy,
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
    // Issue 3: limits, time-outs, reality checks, register, rules, cross-operator figures,
    // withdrawal completion.
    SetLimit {
        player_id: PlayerId,
        kind: LimitKind,
        window: Window,
        /// None removes the limit (a raise: waits for the cooling-off period).
        amount_minor: Option<i64>,
        idem: IdemTag,
    },
    TimeOut {
        player_id: PlayerId,
        kind: TimeOutKind,
        hours: u32,
        idem: IdemTag,
    },
    AckRealityCheck {
        player_id: PlayerId,
        idem: IdemTag,
    },
    ReportCrossOperator {
        player_id: PlayerId,
        other_operators_month_minor: i64,
        source: String,
        idem: IdemTag,
    },
    LoadRegister {
        doc: SignedRegisterDoc,
    },
    /// Record that `ctx.rules` (whose file hashes to `rules_sha256`) are now in force.
    ActivateRules {
        rules_sha256: String,
    },
    CompleteWithdrawal {
        provider_ref: String,
        paid: bool,
        idem: IdemTag,
    },
    /// A shop till's command (issue 6).
    Shop(super::shop::ShopCommand),
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
    /// Risk limits and the register authority key.
    pub gate: &'a NodeGateConfig,
    /// The command's player's register identity and date of birth, prefetched from the PII
    /// vault.
    pub identity_sha256: Option<&'a str>,
    pub date_of_birth: Option<CivilDate>,
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
    Shop(super::shop::ShopReply),
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
    #[error(
        "the player owes {debt_minor} (minor units) after a settlement correction; withdrawals are refused until it is repaid"
    )]
    DebtOutstanding { debt_minor: i64 },
    // Issue 3.
    /// A request the gate refuses without logging (it changes nothing): a limit above the
    /// jurisdiction's cap, a bad time-out, a register document that does not verify.
    #[error("{detail}")]
    Refused { code: ReasonCode, detail: String },
    #[error("payment provider reference {0} was already used")]
    DuplicateProviderRef(String),
    #[error("no pending withdrawal with provider reference {0}")]
    UnknownWithdrawal(String),
    #[error(transparent)]
    Shop(#[from] super::shop::ShopError),
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
                let player_id = &self.movements[id];
                Reply::Movement {
                    movement_id: *id,
                    player: self.player_view(player_id).expect("player exists"),
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
            | Command::PlaceBet { idem, .. }
            | Command::SetLimit { idem, .. }
            | Command::TimeOut { idem, .. }
            | Command::AckRealityCheck { idem, .. }
            | Command::ReportCrossOperator { idem, .. }
            | Command::CompleteWithdrawal { idem, .. } => Some(idem),
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
                    debt_minor: 0,
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
                let player = self.player(&player_id)?;
                self.check_amount(amount)?;
                if self.gate.provider_refs.contains_key(&provider_ref) {
                    return Err(CommandError::DuplicateProviderRef(provider_ref));
                }
                let served = [self
                    .node
                    .as_ref()
                    .expect("initialised")
                    .jurisdiction
                    .clone()];
                let env = self.gate_env(ctx, &served);
                let facts = self.player_facts(player, ctx.date_of_birth, ctx.identity_sha256);
                let decision = gate::evaluate_deposit(&DepositFacts {
                    env: &env,
                    player: &facts,
                    amount,
                    other_operators_month_minor: self.other_operators(player, ctx.now),
                });
                let postings = vec![Posting {
                    from: Account::PaymentProvider,
                    to: Account::PlayerCash(player_id.clone()),
                    amount_minor: amount.minor,
                }];
                self.gated_movement(
                    "deposit",
                    player_id,
                    amount.minor,
                    decision,
                    MovementReason::Deposit,
                    postings,
                    provider_ref,
                    idem,
                )
            }
            Command::Withdraw {
                player_id,
                amount,
                provider_ref,
                idem,
            } => {
                let player = self.player(&player_id)?;
                self.check_amount(amount)?;
                let debt_minor = -self
                    .ledger()
                    .balance(&Account::PlayerDebt(player_id.clone()));
                if debt_minor > 0 {
                    return Err(CommandError::DebtOutstanding { debt_minor });
                }
                if self.gate.provider_refs.contains_key(&provider_ref) {
                    return Err(CommandError::DuplicateProviderRef(provider_ref));
                }
                let balance = self
                    .ledger()
                    .balance(&Account::PlayerCash(player_id.clone()));
                if balance < amount.minor {
                    return Err(CommandError::InsufficientFunds {
                        balance_minor: balance,
                        amount_minor: amount.minor,
                    });
                }
                let served = [self
                    .node
                    .as_ref()
                    .expect("initialised")
                    .jurisdiction
                    .clone()];
                let env = self.gate_env(ctx, &served);
                let facts = self.player_facts(player, None, ctx.identity_sha256);
                let decision = gate::evaluate_withdrawal(&env, &facts);
                // Held as pending until the provider confirms the payout (CompleteWithdrawal).
                let postings = vec![Posting {
                    from: Account::PlayerCash(player_id.clone()),
                    to: Account::PlayerPendingWithdrawal(player_id.clone()),
                    amount_minor: amount.minor,
                }];
                self.gated_movement(
                    "withdraw",
                    player_id,
                    amount.minor,
                    decision,
                    MovementReason::Withdrawal,
                    postings,
                    provider_ref,
                    idem,
                )
            }
            Command::PlaceBet {
                player_id,
                stake,
                legs,
                date_of_birth,
                geo,
                price_policy,
                idem,
            } => self.place_bet(
                &node_id,
                player_id,
                stake,
                legs,
                (date_of_birth, geo, price_policy),
                idem,
                ctx,
            ),
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
            c @ (Command::SetLimit { .. }
            | Command::TimeOut { .. }
            | Command::AckRealityCheck { .. }
            | Command::ReportCrossOperator { .. }
            | Command::LoadRegister { .. }
            | Command::ActivateRules { .. }
            | Command::CompleteWithdrawal { .. }) => self.decide_gate(c, ctx),
            Command::Shop(c) => self.decide_shop(&node_id, c, ctx),
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

    pub(super) fn movement(
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
            decision: None,
        };
        Ok(Decided {
            events: vec![EdgeEvent::WalletMovement(ev)],
            reply: Reply::Movement {
                movement_id,
                player: view,
            },
        })
    }

    /// Events for one AML flag each.
    fn aml_events(
        action: &str,
        player_id: &PlayerId,
        decision: &GateDecision,
        amount_minor: i64,
        bet_id: Option<&BetId>,
        movement_id: Option<u64>,
    ) -> impl Iterator<Item = EdgeEvent> {
        let (action, player_id, bet_id) = (action.to_string(), player_id.clone(), bet_id.cloned());
        let (accepted, version) = (decision.accepted, decision.rules_version.clone());
        decision.flags.clone().into_iter().map(move |hit| {
            EdgeEvent::AmlFlagged(AmlFlagged {
                player_id: player_id.clone(),
                action: action.clone(),
                hit,
                accepted,
                amount_minor,
                bet_id: bet_id.clone(),
                movement_id,
                rules_version: version.clone(),
            })
        })
    }

    fn decision_record(
        action: &str,
        player_id: &PlayerId,
        jurisdiction: &Jurisdiction,
        d: &GateDecision,
        bet_id: Option<BetId>,
        idem: Option<IdemTag>,
    ) -> EdgeEvent {
        EdgeEvent::ComplianceDecision(ComplianceDecision {
            player_id: player_id.clone(),
            action: action.into(),
            accepted: d.accepted,
            reason: d.reason,
            jurisdiction: jurisdiction.clone(),
            rules_version: d.rules_version.clone(),
            checks: d.checks.clone(),
            bet_id,
            idem,
            flags: d.flags.clone(),
            reality_check_due: d.reality_check_due,
        })
    }

    fn refusal(
        action: &str,
        player_id: &PlayerId,
        jurisdiction: &Jurisdiction,
        d: GateDecision,
        amount_minor: i64,
        idem: IdemTag,
    ) -> Decided {
        let mut events = vec![Self::decision_record(
            action,
            player_id,
            jurisdiction,
            &d,
            None,
            Some(idem),
        )];
        events.extend(Self::aml_events(
            action,
            player_id,
            &d,
            amount_minor,
            None,
            None,
        ));
        Decided {
            events,
            reply: Reply::BetRejected {
                reason: d.reason.expect("rejections carry a reason"),
                rules_version: d.rules_version,
                checks: d.checks,
            },
        }
    }

    /// A deposit or withdrawal the gate decided: the decision record, any AML flags, and (if
    /// accepted) the movement.
    #[allow(clippy::too_many_arguments)]
    fn gated_movement(
        &self,
        action: &str,
        player_id: PlayerId,
        amount_minor: i64,
        decision: GateDecision,
        reason: MovementReason,
        postings: Vec<Posting>,
        provider_ref: String,
        idem: IdemTag,
    ) -> Result<Decided, CommandError> {
        let jurisdiction = self.player(&player_id)?.jurisdiction.clone();
        if !decision.accepted {
            return Ok(Self::refusal(
                action,
                &player_id,
                &jurisdiction,
                decision,
                amount_minor,
                idem,
            ));
        }
        let mut mv = self.movement(
            player_id.clone(),
            reason,
            postings,
            Some(provider_ref),
            Some(idem),
            None,
        )?;
        let movement_id = self.next_movement_no;
        if let Some(EdgeEvent::WalletMovement(m)) = mv.events.first_mut() {
            m.decision = Some(MovementDecision {
                rules_version: decision.rules_version.clone(),
                checks: decision.checks.clone(),
                flags: decision.flags.clone(),
            });
        }
        mv.events.extend(Self::aml_events(
            action,
            &player_id,
            &decision,
            amount_minor,
            None,
            Some(movement_id),
        ));
        Ok(mv)
    }

    #[allow(clippy::too_many_arguments)]
    fn place_bet(
        &self,
        node_id: &NodeId,
        player_id: PlayerId,
        stake: Money,
        legs: Vec<LegRequest>,
        (date_of_birth, geo, price_policy): (
            Option<CivilDate>,
            Option<GeoAttestation>,
            PricePolicy,
        ),
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
        let served = [node.jurisdiction.clone()];
        let env = self.gate_env(ctx, &served);
        let facts = self.player_facts(
            player,
            date_of_birth.or(ctx.date_of_birth),
            ctx.identity_sha256,
        );
        let leg_facts = self.leg_facts(&legs);
        let decision: GateDecision = gate::evaluate_bet(&BetFacts {
            env: &env,
            player: &facts,
            stake,
            legs: &leg_facts,
            price_policy,
            geo: geo.as_ref(),
        });
        if !decision.accepted {
            return Ok(Self::refusal(
                "place_bet",
                &player_id,
                &player.jurisdiction,
                decision,
                stake.minor,
                idem,
            ));
        }
        // The gate passed, so every leg resolved to an open market selection.
        let bet_legs: Vec<BetLeg> = legs
            .iter()
            .zip(&leg_facts)
            .zip(&decision.strike_prices)
            .map(|((l, f), price)| {
                let m = f.market.expect("gate checked");
                let sel = m.selection(&l.selection_id).expect("gate checked");
                BetLeg {
                    selection_id: l.selection_id.clone(),
                    market_id: m.market_id.clone(),
                    event_id: m.event_id.clone(),
                    kind: m.kind,
                    outcome: sel.outcome,
                    price: *price,
                }
            })
            .collect();
        let potential = potential_payout_minor(stake.minor, &decision.strike_prices)
            .expect("gate checked payout limit");
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
            each_way: false,
            bet_id: bet_id.clone(),
            player_id: player_id.clone(),
            currency: stake.currency,
            stake_minor: stake.minor,
            potential_payout_minor: potential,
            legs: bet_legs.clone(),
            idem,
        };
        let view = BetView {
            each_way: false,
            bet_id: bet_id.clone(),
            player_id: player_id.clone(),
            placed_at: ctx.now,
            currency: stake.currency,
            stake_minor: stake.minor,
            potential_payout_minor: potential,
            legs: bet_legs,
            status: BetStatus::Open,
            reality_check_due: decision.reality_check_due,
        };
        let mut events = vec![Self::decision_record(
            "place_bet",
            &player_id,
            &player.jurisdiction,
            &decision,
            Some(bet_id.clone()),
            None,
        )];
        events.extend(Self::aml_events(
            "place_bet",
            &player_id,
            &decision,
            stake.minor,
            Some(&bet_id),
            None,
        ));
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
                    score: Some(score),
                    result_version,
                    down,
                    markets: None,
                })],
                reply: Reply::Done,
            }),
            HubEvent::EventResult(r) => Ok(Decided {
                events: vec![EdgeEvent::EventResulted(EventResulted {
                    markets: r.markets(),
                    event_id: r.event_id,
                    score: None,
                    result_version: r.result_version,
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
                    leg_factors: _,
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
                // A debt left by an earlier correction is repaid first (docs/settlement.md).
                let debt = -self
                    .ledger()
                    .balance(&Account::PlayerDebt(player_id.clone()));
                let repay = debt.clamp(0, payout_minor);
                if repay > 0 {
                    postings.push(Posting {
                        from: Account::House,
                        to: Account::PlayerDebt(player_id.clone()),
                        amount_minor: repay,
                    });
                }
                if payout_minor > repay {
                    postings.push(Posting {
                        from: Account::House,
                        to: Account::PlayerCash(player_id.clone()),
                        amount_minor: payout_minor - repay,
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
            HubEvent::Reversal(r) => self.reverse_settlement(node_id, down, r),
        }
    }

    /// Apply a hub settlement reversal exactly once: the bet must be settled as the reversal
    /// states (same result version and payout); anything else is acknowledged and skipped
    /// (`DownSkipped`), so a replayed or stray reversal never moves money twice.
    ///
    /// Money: the stake goes back to the player's held stakes (the bet is open again) and the
    /// reversed payout is taken from their cash; what the cash cannot cover is booked as a debt
    /// (`player:{p}:debt`), never as a negative balance (docs/settlement.md).
    fn reverse_settlement(
        &self,
        node_id: &NodeId,
        down: DownRef,
        r: HubSettlementReversal,
    ) -> Result<Decided, CommandError> {
        if &r.node_id != node_id {
            return Err(CommandError::WrongNode(r.node_id));
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
        let Some(bet) = self.bets.get(&r.bet_id) else {
            return skip(format!("reversal of unknown bet {}", r.bet_id));
        };
        let matches = matches!(&bet.status, BetStatus::Settled { result_version, payout_minor, .. }
            if *result_version == r.reversed_result_version && *payout_minor == r.payout_minor);
        if !matches
            || bet.placed.player_id != r.player_id
            || bet.placed.stake_minor != r.stake_minor
            || bet.placed.currency != r.currency
            || r.payout_minor < 0
        {
            return skip(format!(
                "reversal of {} (version {}) does not match the bet's settlement",
                r.bet_id, r.reversed_result_version
            ));
        }
        let p = &r.player_id;
        let cash = self.ledger().balance(&Account::PlayerCash(p.clone()));
        let from_cash = cash.clamp(0, r.payout_minor);
        let to_debt = r.payout_minor - from_cash;
        let mut postings = vec![Posting {
            from: Account::House,
            to: Account::PlayerStakes(p.clone()),
            amount_minor: r.stake_minor,
        }];
        if from_cash > 0 {
            postings.push(Posting {
                from: Account::PlayerCash(p.clone()),
                to: Account::House,
                amount_minor: from_cash,
            });
        }
        if to_debt > 0 {
            postings.push(Posting {
                from: Account::PlayerDebt(p.clone()),
                to: Account::House,
                amount_minor: to_debt,
            });
        }
        // A zero stake has no posting (postings are positive).
        postings.retain(|p| p.amount_minor > 0);
        let mut events = vec![EdgeEvent::BetSettlementReversed(BetSettlementReversed {
            bet_id: r.bet_id.clone(),
            player_id: p.clone(),
            reversed_result_version: r.reversed_result_version,
            payout_reversed_minor: r.payout_minor,
            from_cash_minor: from_cash,
            to_debt_minor: to_debt,
            reason: r.reason,
            down,
        })];
        if !postings.is_empty() {
            let mv = self.movement(
                p.clone(),
                MovementReason::Settlement,
                postings,
                None,
                None,
                Some(r.bet_id),
            )?;
            events.extend(mv.events);
        }
        Ok(Decided {
            events,
            reply: Reply::Done,
        })
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
        if outcomes.len() < 2
            || distinct.len() != outcomes.len()
            || !outcomes.iter().all(|o| m.kind.accepts(o))
        {
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
