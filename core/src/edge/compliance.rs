//! The gate's share of the edge state machine: per-player limits, activity and time-outs, the
//! cached national register, liabilities, payment references and the rules in force, plus
//! `decide` and `apply` for the gate's own commands and records (kinds 12-19).
//!
//! Kept apart from `state.rs`/`decide.rs` so those stay about players, bets and markets.

use super::decide::{Command, CommandError, DecideCtx, Decided, LegRequest, Reply};
use super::events::*;
use super::state::{ApplyError, BetStatus, EdgeState, IdemOutcome, Player};
use crate::gate::limits::{self, Activity, ActivityKind, PlayerLimits};
use crate::gate::register::{self, RegisterState, RegisterStatus};
use crate::gate::{Env, LegFacts, PlayerFacts, ReasonCode, RiskLimits};
use crate::ids::{EventId, Jurisdiction, PlayerId, SelectionId};
use crate::ledger::{Account, Posting};
use crate::log::PublicKey;
use crate::time::{CivilDate, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A cross-operator figure older than this is not used (fail closed).
pub const CROSS_OPERATOR_FIGURE_MAX_AGE_MS: i64 = 24 * 3_600_000;

/// Per-player responsible-gambling state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerCompliance {
    pub limits: PlayerLimits,
    pub activity: Activity,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timed_out_until: Option<UnixMillis>,
    pub last_reality_check_at: UnixMillis,
    /// (deposits this month at other operators, when reported)
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub other_operators: Option<(i64, UnixMillis)>,
}

/// Node-wide gate state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    pub register: Option<RegisterState>,
    pub rules: Option<RulesActivated>,
    /// Potential payouts of open bets per selection and per event.
    pub liability_selection: BTreeMap<SelectionId, i64>,
    pub liability_event: BTreeMap<EventId, i64>,
    /// Payment provider references already used → movement id (deposits and withdrawals are
    /// idempotent by reference as well as by idempotency key).
    pub provider_refs: BTreeMap<String, u64>,
    /// Pending withdrawals by provider reference → (player, amount).
    pub pending_withdrawals: BTreeMap<String, (PlayerId, i64)>,
    pub aml_flags: u64,
}

/// Node configuration the gate needs besides the jurisdiction rules.
#[derive(Debug, Clone, Default)]
pub struct NodeGateConfig {
    pub risk: RiskLimits,
    /// The national register authority's key (from the node config).
    pub register_authority: Option<PublicKey>,
}

impl EdgeState {
    pub(super) fn player_facts<'a>(
        &'a self,
        p: &'a Player,
        date_of_birth: Option<CivilDate>,
        identity_sha256: Option<&'a str>,
    ) -> PlayerFacts<'a> {
        PlayerFacts {
            jurisdiction: &p.jurisdiction,
            kyc_verified: p.kyc_verified,
            date_of_birth,
            self_excluded: p.self_excluded,
            identity_sha256,
            cash_minor: self
                .ledger()
                .balance(&Account::PlayerCash(p.player_id.clone())),
            registered_at: p.registered_at,
            timed_out_until: p.rg.timed_out_until,
            limits: &p.rg.limits,
            activity: &p.rg.activity,
            last_reality_check_at: p.rg.last_reality_check_at,
        }
    }

    /// What the gate needs to know about each requested leg: its market and event, and the
    /// liability this node already carries on them.
    pub(super) fn leg_facts<'a>(&'a self, legs: &'a [LegRequest]) -> Vec<LegFacts<'a>> {
        legs.iter()
            .map(|l| {
                let market = self
                    .selection_index
                    .get(&l.selection_id)
                    .and_then(|m| self.markets.get(m));
                LegFacts {
                    selection_id: &l.selection_id,
                    requested_price: l.price,
                    market,
                    event: market.and_then(|m| self.events.get(&m.event_id)),
                    selection_liability_minor: self
                        .gate
                        .liability_selection
                        .get(&l.selection_id)
                        .copied()
                        .unwrap_or(0),
                    event_liability_minor: market
                        .and_then(|m| self.gate.liability_event.get(&m.event_id))
                        .copied()
                        .unwrap_or(0),
                }
            })
            .collect()
    }

    pub(super) fn gate_env<'a>(
        &'a self,
        ctx: &'a DecideCtx<'a>,
        served: &'a [Jurisdiction],
    ) -> Env<'a> {
        Env {
            rules: ctx.rules,
            served,
            register: self.gate.register.as_ref(),
            risk: &ctx.gate.risk,
            now: ctx.now,
        }
    }

    /// The cross-operator figure if fresh enough to use.
    pub(super) fn other_operators(&self, p: &Player, now: UnixMillis) -> Option<i64> {
        p.rg.other_operators
            .filter(|(_, at)| now.0 - at.0 <= CROSS_OPERATOR_FIGURE_MAX_AGE_MS)
            .map(|(v, _)| v)
    }

    pub fn register_status(
        &self,
        rules: &crate::jurisdiction::JurisdictionRules,
        now: UnixMillis,
    ) -> RegisterStatus {
        register::status(rules.register.as_ref(), self.gate.register.as_ref(), now)
    }

    pub(super) fn decide_gate(
        &self,
        cmd: Command,
        ctx: &DecideCtx<'_>,
    ) -> Result<Decided, CommandError> {
        let refused =
            |code: ReasonCode, detail: String| Err(CommandError::Refused { code, detail });
        let one = |ev: EdgeEvent, reply: Reply| {
            Ok(Decided {
                events: vec![ev],
                reply,
            })
        };
        let player = |id: &PlayerId| {
            self.players
                .get(id)
                .ok_or_else(|| CommandError::UnknownPlayer(id.clone()))
        };
        match cmd {
            Command::SetLimit {
                player_id,
                kind,
                window,
                amount_minor,
                idem,
            } => {
                let p = player(&player_id)?;
                let change = match limits::decide_limit_change(
                    &p.rg.limits,
                    ctx.rules,
                    kind,
                    window,
                    amount_minor,
                    ctx.now,
                ) {
                    Ok(c) => c,
                    Err((code, detail)) => return refused(code, detail),
                };
                let view = self.player_view(&player_id).expect("player exists");
                one(
                    EdgeEvent::LimitChanged(LimitChanged {
                        player_id,
                        kind,
                        window,
                        change,
                        rules_version: ctx.rules.rules_version.clone(),
                        idem,
                    }),
                    Reply::Player(view),
                )
            }
            Command::TimeOut {
                player_id,
                kind,
                hours,
                idem,
            } => {
                let p = player(&player_id)?;
                let l = &ctx.rules.limits;
                if hours < l.time_out_hours_min || hours > l.time_out_hours_max {
                    return refused(
                        ReasonCode::TimeOutInvalid,
                        format!(
                            "a time-out lasts {} to {} hours in {}",
                            l.time_out_hours_min, l.time_out_hours_max, ctx.rules.code
                        ),
                    );
                }
                // A time-out can be extended but never shortened.
                let until = UnixMillis(ctx.now.0 + hours as i64 * 3_600_000)
                    .max(p.rg.timed_out_until.unwrap_or(UnixMillis(0)));
                let view = self.player_view(&player_id).expect("player exists");
                one(
                    EdgeEvent::PlayerTimedOut(PlayerTimedOut {
                        player_id,
                        kind,
                        until,
                        idem,
                    }),
                    Reply::Player(view),
                )
            }
            Command::AckRealityCheck { player_id, idem } => {
                player(&player_id)?;
                let view = self.player_view(&player_id).expect("player exists");
                one(
                    EdgeEvent::RealityCheckAcknowledged(RealityCheckAcknowledged {
                        player_id,
                        idem,
                    }),
                    Reply::Player(view),
                )
            }
            Command::ReportCrossOperator {
                player_id,
                other_operators_month_minor,
                source,
                idem,
            } => {
                player(&player_id)?;
                if ctx
                    .rules
                    .limits
                    .cross_operator_deposit_cap_month_minor
                    .is_none()
                {
                    return refused(
                        ReasonCode::LimitInvalid,
                        format!("{} has no cross-operator deposit cap", ctx.rules.code),
                    );
                }
                if other_operators_month_minor < 0 || source.is_empty() || source.len() > 64 {
                    return refused(
                        ReasonCode::LimitInvalid,
                        "figure must be >= 0 and source 1-64 characters".into(),
                    );
                }
                let view = self.player_view(&player_id).expect("player exists");
                one(
                    EdgeEvent::CrossOperatorFigure(CrossOperatorFigure {
                        player_id,
                        other_operators_month_minor,
                        source,
                        idem,
                    }),
                    Reply::Player(view),
                )
            }
            Command::LoadRegister { doc } => {
                let node = self.node.as_ref().ok_or(CommandError::NotInitialised)?;
                let p = match register::verify(
                    &doc,
                    ctx.gate.register_authority.as_ref(),
                    ctx.rules.register.as_ref(),
                    &node.jurisdiction,
                    self.gate.register.as_ref(),
                    ctx.now,
                ) {
                    Ok(p) => p,
                    Err((code, detail)) => return refused(code, detail),
                };
                let entries = register::apply(self.gate.register.clone(), &p)
                    .entries
                    .len();
                one(
                    EdgeEvent::RegisterLoaded(RegisterLoaded {
                        register: p.register,
                        doc_kind: p.kind,
                        seq: p.seq,
                        issued_at_ms: p.issued_at_ms,
                        entries,
                        doc,
                    }),
                    Reply::Done,
                )
            }
            Command::ActivateRules { rules_sha256 } => {
                let node = self.node.as_ref().ok_or(CommandError::NotInitialised)?;
                if ctx.rules.code != node.jurisdiction {
                    return Err(CommandError::JurisdictionNotServed(ctx.rules.code.clone()));
                }
                one(
                    EdgeEvent::RulesActivated(RulesActivated {
                        jurisdiction: ctx.rules.code.clone(),
                        rules_version: ctx.rules.rules_version.clone(),
                        rules_sha256,
                    }),
                    Reply::Done,
                )
            }
            Command::CompleteWithdrawal {
                provider_ref,
                paid,
                idem,
            } => {
                let Some((player_id, amount)) = self.gate.pending_withdrawals.get(&provider_ref)
                else {
                    return Err(CommandError::UnknownWithdrawal(provider_ref));
                };
                let pending = Account::PlayerPendingWithdrawal(player_id.clone());
                let to = if paid {
                    Account::PaymentProvider
                } else {
                    Account::PlayerCash(player_id.clone())
                };
                let mv = self.movement(
                    player_id.clone(),
                    MovementReason::Withdrawal,
                    vec![Posting {
                        from: pending,
                        to,
                        amount_minor: *amount,
                    }],
                    None,
                    None,
                    None,
                )?;
                let movement_id = self.next_movement_no;
                let mut events = vec![EdgeEvent::WithdrawalCompleted(WithdrawalCompleted {
                    player_id: player_id.clone(),
                    provider_ref,
                    paid,
                    movement_id,
                    idem,
                })];
                events.extend(mv.events);
                Ok(Decided {
                    events,
                    reply: mv.reply,
                })
            }
            other => unreachable!("not a gate command: {other:?}"),
        }
    }

    fn player_mut(&mut self, id: &PlayerId) -> Result<&mut Player, ApplyError> {
        self.players
            .get_mut(id)
            .ok_or_else(|| ApplyError::UnknownPlayer(id.clone()))
    }

    /// Apply one of the gate's own records.
    pub(super) fn apply_gate(&mut self, ev: &EdgeEvent, at: UnixMillis) -> Result<(), ApplyError> {
        match ev {
            EdgeEvent::LimitChanged(l) => {
                self.player_mut(&l.player_id)?
                    .rg
                    .limits
                    .set(l.kind, l.window, &l.change);
                self.remember_player(&l.idem, &l.player_id);
            }
            EdgeEvent::PlayerTimedOut(t) => {
                let p = self.player_mut(&t.player_id)?;
                p.rg.timed_out_until = Some(t.until.max(p.rg.timed_out_until.unwrap_or(t.until)));
                self.remember_player(&t.idem, &t.player_id);
            }
            EdgeEvent::RealityCheckAcknowledged(r) => {
                self.player_mut(&r.player_id)?.rg.last_reality_check_at = at;
                self.remember_player(&r.idem, &r.player_id);
            }
            EdgeEvent::CrossOperatorFigure(c) => {
                self.player_mut(&c.player_id)?.rg.other_operators =
                    Some((c.other_operators_month_minor, at));
                self.remember_player(&c.idem, &c.player_id);
            }
            EdgeEvent::RegisterLoaded(r) => {
                // The document was verified when it was decided; the log is signed by this
                // node, so replay trusts it (and `verify` stays possible for auditors).
                let payload: register::RegisterPayload = base64_json(&r.doc.payload_b64)
                    .ok_or_else(|| ApplyError::Corrupt(format!("register seq {}", r.seq)))?;
                self.gate.register = Some(register::apply(self.gate.register.take(), &payload));
            }
            EdgeEvent::AmlFlagged(_) => self.gate.aml_flags += 1,
            EdgeEvent::RulesActivated(r) => self.gate.rules = Some(r.clone()),
            EdgeEvent::WithdrawalCompleted(w) => {
                if self
                    .gate
                    .pending_withdrawals
                    .remove(&w.provider_ref)
                    .is_none()
                {
                    return Err(ApplyError::Duplicate(format!(
                        "withdrawal {} completed twice",
                        w.provider_ref
                    )));
                }
                self.remember(&w.idem, IdemOutcome::Movement(w.movement_id));
            }
            _ => unreachable!("not a gate record"),
        }
        Ok(())
    }

    fn remember_player(&mut self, tag: &IdemTag, p: &PlayerId) {
        self.remember(tag, IdemOutcome::Player(p.clone()));
    }

    /// Bookkeeping every wallet movement feeds: activity windows, payment references,
    /// pending withdrawals.
    pub(super) fn gate_on_movement(&mut self, m: &WalletMovement, at: UnixMillis) {
        let cash = Account::PlayerCash(m.player_id.clone());
        let pending = Account::PlayerPendingWithdrawal(m.player_id.clone());
        if let Some(r) = &m.provider_ref {
            self.gate.provider_refs.insert(r.clone(), m.movement_id);
            if m.reason == MovementReason::Withdrawal {
                let amount: i64 = m
                    .postings
                    .iter()
                    .filter(|p| p.to == pending)
                    .map(|p| p.amount_minor)
                    .sum();
                if amount > 0 {
                    self.gate
                        .pending_withdrawals
                        .insert(r.clone(), (m.player_id.clone(), amount));
                }
            }
        }
        let Some(p) = self.players.get_mut(&m.player_id) else {
            return;
        };
        let to_cash: i64 = m
            .postings
            .iter()
            .filter(|x| x.to == cash)
            .map(|x| x.amount_minor)
            .sum();
        let from_cash: i64 = m
            .postings
            .iter()
            .filter(|x| x.from == cash)
            .map(|x| x.amount_minor)
            .sum();
        match m.reason {
            MovementReason::Deposit => p.rg.activity.record(at, ActivityKind::Deposit, to_cash),
            MovementReason::Stake => p.rg.activity.record(at, ActivityKind::Stake, from_cash),
            MovementReason::Settlement if to_cash > 0 => {
                p.rg.activity.record(at, ActivityKind::Return, to_cash)
            }
            _ => {}
        }
    }

    /// A placed bet adds its potential payout to each leg's selection and event liability.
    pub(super) fn gate_on_bet_placed(&mut self, b: &BetPlaced) {
        for l in &b.legs {
            *self
                .gate
                .liability_selection
                .entry(l.selection_id.clone())
                .or_default() += b.potential_payout_minor;
            *self
                .gate
                .liability_event
                .entry(l.event_id.clone())
                .or_default() += b.potential_payout_minor;
        }
    }

    /// A settled bet releases it.
    pub(super) fn gate_on_bet_settled(&mut self, bet: &super::events::BetPlaced, was: &BetStatus) {
        if *was != BetStatus::Open {
            return;
        }
        for l in &bet.legs {
            release(
                &mut self.gate.liability_selection,
                &l.selection_id,
                bet.potential_payout_minor,
            );
            release(
                &mut self.gate.liability_event,
                &l.event_id,
                bet.potential_payout_minor,
            );
        }
    }
}

fn release<K: Ord + Clone>(m: &mut BTreeMap<K, i64>, k: &K, v: i64) {
    if let Some(x) = m.get_mut(k) {
        *x -= v;
        if *x <= 0 {
            m.remove(k);
        }
    }
}

fn base64_json<T: for<'a> Deserialize<'a>>(b64: &str) -> Option<T> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    serde_json::from_slice(&bytes).ok()
}
