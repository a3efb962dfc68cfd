//! Results intake, finality, corrections and rollbacks (`docs/settlement.md`).
//!
//! **Intake.** Every result arrives as a *report* (a feed, a results file, an operator) and is
//! kept (`result_reports`, append only). A result becomes **final** only when two different
//! sources report the same score, or an operator confirms it. Only a final result is announced
//! to the nodes (a `HubResult` down record) and settles bets, all in one transaction.
//! - Reports that disagree hold the event: nothing settles, and a `conflict` alert is raised
//!   (log line, `/v1/alerts`, `result_alerts_raised` in `/v1/stats`) until an operator
//!   confirms one score.
//! - A report for an event the hub has never heard of (no market or bet replicated) is held
//!   for review with an `unknown_event` alert; it is evaluated again when the event becomes
//!   known, or an operator confirms it.
//! - A report that disagrees with a *final* result changes nothing but raises a conflict
//!   alert: only an operator's correction changes a final result.
//!
//! **Corrections and rollbacks** never rewrite history. A correction makes a new final result
//! version; every bet whose outcome changes gets a compensating entry (a
//! `HubSettlementReversal` referencing the original settlement) and a new settlement at the new
//! version. A rollback withdraws the final result and reverses exactly the settlements of the
//! bets it names (all bets on the event, or only those on the given markets); they stay open
//! until a new result version is final. The edge applies each reversal exactly once.
//!
//! **Idempotency.** Settlements are keyed by (bet, result version), reversals by (bet, reversed
//! version), reports by (event, source, score). Reprocessing anything changes nothing and is
//! counted (`reprocessed_settlements`, `reprocessed_results`).

use crate::store::{HubState, StoreError, TxEffects, load_bet, now_ms};
use outpost_core::edge::events::BetPlaced;
use outpost_core::hub::{HubEvent, HubSettlementReversal, result_event};
use outpost_core::ids::{BetId, EventId, MarketId, NodeId};
use outpost_core::log::NodeKey;
use outpost_core::settle::FinalScore;
use outpost_core::settlement::event_result::{Agreement, EventResult, agree};
use outpost_core::time::UnixMillis;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

const SOURCE_MAX: usize = 200;
/// Reports needed from different sources before a result is final without an operator.
pub const SOURCES_REQUIRED: usize = outpost_core::settlement::event_result::SOURCES_REQUIRED;

/// The stored columns of a result: (home_goals, away_goals, result_json) (`db.rs`, migration 3).
pub(crate) fn result_cols(r: &EventResult) -> (i64, i64, Option<String>) {
    match r {
        EventResult::Score(s) => (i64::from(s.home), i64::from(s.away), None),
        other => {
            let json = serde_json::to_string(other).expect("results serialise");
            let d = <sha2::Sha256 as sha2::Digest>::digest(json.as_bytes());
            let mut b = [0u8; 8];
            b[1..].copy_from_slice(&d[..7]);
            (-1, i64::from_be_bytes(b), Some(json))
        }
    }
}

/// A result from its stored columns.
pub(crate) fn result_from_cols(
    h: i64,
    a: i64,
    json: Option<String>,
) -> Result<EventResult, StoreError> {
    match json {
        Some(j) => {
            serde_json::from_str(&j).map_err(|e| StoreError::Corrupt(format!("stored result: {e}")))
        }
        None => {
            let c =
                |x: i64| u16::try_from(x).map_err(|_| StoreError::Corrupt(format!("goals {x}")));
            Ok(EventResult::Score(FinalScore {
                home: c(h)?,
                away: c(a)?,
            }))
        }
    }
}

/// The final result in force of `event` (not withdrawn) and its version: what settles bets.
pub(crate) fn load_final(
    tx: &Connection,
    event: &EventId,
) -> Result<Option<(EventResult, u32)>, StoreError> {
    let r: Option<(i64, i64, Option<String>, i64)> = tx
        .prepare_cached(
            "SELECT home_goals, away_goals, result_json, result_version FROM results WHERE event_id = ?1 AND withdrawn = 0",
        )?
        .query_row([event.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    r.map(|(h, a, j, v)| {
        Ok((
            result_from_cols(h, a, j)?,
            u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("result version {v}")))?,
        ))
    })
    .transpose()
}

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error("invalid {field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
    #[error(
        "event {event_id} already has the final result {current} (version {version}); a different result is a correction (POST /v1/results/{event_id}/correct)"
    )]
    AlreadyFinal {
        event_id: EventId,
        current: String,
        version: u32,
    },
    #[error("event {0} has no final result to correct or roll back")]
    NotFinal(EventId),
    #[error("settlement of event {0} is not suspended")]
    NotSuspended(EventId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ResultError {
    fn from(e: rusqlite::Error) -> Self {
        ResultError::Store(StoreError::Sqlite(e))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// The result became final now: announced and settled.
    Recorded,
    /// A correction made a new final version: bets whose outcome changed were resettled.
    Corrected,
    /// The same final result was already in force: nothing changed.
    Unchanged,
    /// Kept; waiting for a second source to agree (or an operator).
    Pending,
    /// Kept; the event is unknown to the hub, held for review.
    Held,
    /// Kept; it disagrees with another report or with the final result. Settlement of the
    /// event is held and an alert raised.
    Conflict,
}

/// What a result submission did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultReceipt {
    pub event_id: EventId,
    /// The final result version in force after the submission (0: none yet).
    pub result_version: u32,
    pub status: ResultStatus,
    /// Bets settled (or resettled) by this submission.
    pub settled: usize,
    /// Settlements reversed (compensating entries) by this submission.
    pub reversed: usize,
    /// Bets found already settled for this result version (no change).
    pub reprocessed: u64,
    /// Bets on the event still waiting for other legs' results.
    pub waiting: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackReceipt {
    pub event_id: EventId,
    pub withdrawn_version: u32,
    pub reversed: usize,
    pub bets: Vec<String>,
}

fn validate_name(field: &'static str, v: &str) -> Result<(), ResultError> {
    let bad = |problem| Err(ResultError::Invalid { field, problem });
    if v.trim().is_empty() {
        return bad("must not be empty");
    }
    if v.chars().count() > SOURCE_MAX {
        return bad("must be at most 200 characters");
    }
    if v.chars().any(char::is_control) {
        return bad("must not contain control characters");
    }
    Ok(())
}

/// The current final result of an event (`results` row).
#[derive(Debug, Clone)]
struct Current {
    result: EventResult,
    version: u32,
    withdrawn: bool,
    reports_from: i64,
}

fn current(tx: &Connection, event: &EventId) -> Result<Option<Current>, StoreError> {
    let row: Option<(i64, i64, i64, bool, i64, Option<String>)> = tx
        .query_row(
            "SELECT home_goals, away_goals, result_version, withdrawn, reports_from, result_json FROM results WHERE event_id = ?1",
            [event.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    row.map(|(h, a, v, withdrawn, reports_from, json)| {
        Ok(Current {
            result: result_from_cols(h, a, json)?,
            version: u32::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("result version {v}")))?,
            withdrawn,
            reports_from,
        })
    })
    .transpose()
}

/// Remember that the hub knows `event`; true if it is new.
pub(crate) fn note_event(
    tx: &Transaction<'_>,
    event: &EventId,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO hub_events (event_id, first_seen_ms) VALUES (?1, ?2)",
        params![event.as_str(), now.0],
    )? == 1)
}

/// The settlement of a bet currently in force: the latest not reversed.
#[derive(Debug, Clone)]
pub(crate) struct EffectiveSettlement {
    pub result_version: u32,
    pub down_seq: i64,
    pub payout_minor: i64,
    /// JSON of the leg results (absent on settlements made before it was stored).
    pub leg_results: Option<String>,
}

pub(crate) fn effective_settlement(
    tx: &Connection,
    bet: &BetId,
) -> Result<Option<EffectiveSettlement>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT s.result_version, s.down_seq, s.payout_minor, s.leg_results FROM settlements s
             WHERE s.bet_id = ?1 AND NOT EXISTS (SELECT 1 FROM settlement_reversals r
                 WHERE r.bet_id = s.bet_id AND r.reversed_version = s.result_version)
             ORDER BY s.result_version DESC LIMIT 1",
            [bet.as_str()],
            |r| {
                Ok(EffectiveSettlement {
                    result_version: r.get(0)?,
                    down_seq: r.get(1)?,
                    payout_minor: r.get(2)?,
                    leg_results: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Append the compensating entry that reverses `cur` (a settlement of `bet`) and reopen the
/// bet. Keyed by (bet, reversed version): the primary key refuses a second reversal.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reverse_in_tx(
    tx: &Transaction<'_>,
    key: &NodeKey,
    node: &NodeId,
    bet: &BetPlaced,
    cur: &EffectiveSettlement,
    reason: &str,
    now: UnixMillis,
    effects: &mut TxEffects,
) -> Result<(), StoreError> {
    let reversal = HubEvent::Reversal(HubSettlementReversal {
        bet_id: bet.bet_id.clone(),
        node_id: node.clone(),
        player_id: bet.player_id.clone(),
        reversed_result_version: cur.result_version,
        reversed_down_seq: cur.down_seq.max(0) as u64,
        currency: bet.currency,
        stake_minor: bet.stake_minor,
        payout_minor: cur.payout_minor,
        reason: reason.to_string(),
    });
    let (seq, _) = effects.down.append(tx, key, node, &reversal, now)?;
    tx.execute(
        "INSERT INTO settlement_reversals (bet_id, reversed_version, node_id, down_seq, payout_minor, reason, reversed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![bet.bet_id.as_str(), cur.result_version, node.as_str(), seq.0 as i64, cur.payout_minor, reason, now.0],
    )?;
    tracing::warn!(bet = %bet.bet_id, version = cur.result_version, payout = cur.payout_minor, reason, "settlement reversed");
    effects.down_heads.insert(node.clone(), seq);
    effects.reversed += 1;
    Ok(())
}

impl HubState {
    /// Submit a result report from a feed or file (see the module docs).
    pub async fn submit_result(
        &self,
        event_id: EventId,
        score: FinalScore,
        source: String,
    ) -> Result<ResultReceipt, ResultError> {
        self.blocking(move |s| s.submit_result_blocking(&event_id, score, &source, now_ms()))
            .await
    }

    /// Blocking form of [`HubState::submit_result`] with the hub's clock passed in.
    pub fn submit_result_blocking(
        &self,
        event_id: &EventId,
        score: FinalScore,
        source: &str,
        now: UnixMillis,
    ) -> Result<ResultReceipt, ResultError> {
        self.submit_report_blocking(event_id, &EventResult::Score(score), source, now)
    }

    /// Submit a report of any kind of result (score, race, per-outcome) from `source`.
    pub fn submit_report_blocking(
        &self,
        event_id: &EventId,
        result: &EventResult,
        source: &str,
        now: UnixMillis,
    ) -> Result<ResultReceipt, ResultError> {
        validate_name("source", source)?;
        if source.starts_with("operator:") {
            return Err(ResultError::Invalid {
                field: "source",
                problem: "operator: is reserved for operator confirmations",
            });
        }
        self.in_tx(event_id, now, |s, tx, effects| {
            if !insert_report(tx, event_id, source, result, false, now)? {
                effects.reprocessed_results += 1;
            }
            match current(tx, event_id)? {
                // Per-outcome results grow market by market: look at every report again.
                Some(c) if !c.withdrawn && matches!(c.result, EventResult::Outcomes(_)) => {
                    Ok(s.evaluate_reports(tx, event_id, now, effects)?)
                }
                Some(c) if !c.withdrawn && &c.result == result => Ok(ResultStatus::Unchanged),
                Some(c) if !c.withdrawn => {
                    s.raise_alert(
                        tx,
                        event_id,
                        "conflict",
                        &format!(
                            "{source} reports {}, but the final result is {} (version {}); settlement stands until an operator corrects it",
                            result.describe(), c.result.describe(), c.version
                        ),
                        now,
                        effects,
                    )?;
                    Ok(ResultStatus::Conflict)
                }
                _ => Ok(s.evaluate_reports(tx, event_id, now, effects)?),
            }
        })
    }

    /// An operator confirms `score` as the final result (after a conflict, for an unknown
    /// event, or instead of waiting for a second source).
    pub fn confirm_result_blocking(
        &self,
        event_id: &EventId,
        score: FinalScore,
        operator: &str,
        now: UnixMillis,
    ) -> Result<ResultReceipt, ResultError> {
        self.confirm_report_blocking(event_id, &EventResult::Score(score), operator, now)
    }

    /// An operator confirms any kind of result (see [`HubState::confirm_result_blocking`]).
    pub fn confirm_report_blocking(
        &self,
        event_id: &EventId,
        score: &EventResult,
        operator: &str,
        now: UnixMillis,
    ) -> Result<ResultReceipt, ResultError> {
        validate_name("operator", operator)?;
        self.in_tx(event_id, now, |s, tx, effects| {
            let source = format!("operator:{operator}");
            if !insert_report(tx, event_id, &source, score, true, now)? {
                effects.reprocessed_results += 1;
            }
            match current(tx, event_id)? {
                Some(c) if !c.withdrawn && &c.result == score => {
                    resolve_alerts(tx, event_id, &format!("confirmed by {operator}"), now)?;
                    Ok(ResultStatus::Unchanged)
                }
                Some(c) if !c.withdrawn => Err(ResultError::AlreadyFinal {
                    event_id: event_id.clone(),
                    current: c.result.describe(),
                    version: c.version,
                }),
                _ => {
                    s.finalize(
                        tx,
                        event_id,
                        score.clone(),
                        &format!("confirmed by operator {operator}"),
                        now,
                        effects,
                    )?;
                    Ok(ResultStatus::Recorded)
                }
            }
        })
    }

    /// An operator corrects a final result: a new result version; bets whose outcome changes
    /// are reversed and resettled.
    pub fn correct_result_blocking(
        &self,
        event_id: &EventId,
        score: FinalScore,
        operator: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<ResultReceipt, ResultError> {
        self.correct_report_blocking(event_id, &EventResult::Score(score), operator, reason, now)
    }

    /// An operator corrects a final result of any kind.
    pub fn correct_report_blocking(
        &self,
        event_id: &EventId,
        score: &EventResult,
        operator: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<ResultReceipt, ResultError> {
        validate_name("operator", operator)?;
        validate_name("reason", reason)?;
        self.in_tx(event_id, now, |s, tx, effects| {
            let c = current(tx, event_id)?
                .filter(|c| !c.withdrawn)
                .ok_or_else(|| ResultError::NotFinal(event_id.clone()))?;
            insert_report(
                tx,
                event_id,
                &format!("operator:{operator}"),
                score,
                true,
                now,
            )?;
            if &c.result == score {
                return Ok(ResultStatus::Unchanged);
            }
            s.finalize(
                tx,
                event_id,
                score.clone(),
                &format!("corrected by operator {operator}: {reason}"),
                now,
                effects,
            )?;
            Ok(ResultStatus::Corrected)
        })
    }

    /// An operator clears every active reconciliation suspension of `event_id` (after looking
    /// at the finding): recorded with who and why (`suspension_clearances`, and `cleared_by`
    /// on each suspension), and the event's bets are settled at once if its result is final,
    /// all in one transaction. Refused, changing nothing, if the event is not suspended.
    pub fn clear_suspension_blocking(
        &self,
        event_id: &EventId,
        operator: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<(usize, ResultReceipt), ResultError> {
        validate_name("operator", operator)?;
        validate_name("reason", reason)?;
        let mut cleared = 0;
        let receipt = self.in_tx(event_id, now, |_, tx, _| {
            cleared = crate::reconcile::suspend::clear(
                tx,
                event_id,
                &format!("operator:{operator}"),
                now.0,
            )?;
            if cleared == 0 {
                return Err(ResultError::NotSuspended(event_id.clone()));
            }
            tx.execute(
                "INSERT INTO suspension_clearances (event_id, operator, reason, suspensions, cleared_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![event_id.as_str(), operator, reason, cleared as i64, now.0],
            )?;
            tracing::warn!(event = %event_id, operator, reason, cleared, "settlement suspension cleared");
            // The settle pass runs as on a resubmission of the result in force.
            Ok(ResultStatus::Unchanged)
        })?;
        Ok((cleared, receipt))
    }

    /// Roll back the settlement of an event (UOF `rollback_bet_settlement`): the final result
    /// is withdrawn and exactly the settled bets on `markets` (all markets of the event if
    /// `None`) are reversed and reopened. They settle again when a new version is final.
    pub fn rollback_blocking(
        &self,
        event_id: &EventId,
        markets: Option<&[MarketId]>,
        operator: &str,
        reason: &str,
        now: UnixMillis,
    ) -> Result<RollbackReceipt, ResultError> {
        validate_name("operator", operator)?;
        validate_name("reason", reason)?;
        let mut effects = TxEffects::default();
        let receipt = {
            let mut conn = self.db().conn();
            let tx = conn.transaction()?;
            let c = current(&tx, event_id)?
                .filter(|c| !c.withdrawn)
                .ok_or_else(|| ResultError::NotFinal(event_id.clone()))?;
            tx.execute(
                "UPDATE results SET withdrawn = 1, reports_from = (SELECT COALESCE(MAX(id), 0) + 1 FROM result_reports) WHERE event_id = ?1",
                [event_id.as_str()],
            )?;
            let mut bets = Vec::new();
            for (bet_id, node, seq) in event_bets(&tx, event_id)? {
                let Some(cur) = effective_settlement(&tx, &bet_id)? else {
                    continue;
                };
                let bet = load_bet(&tx, &node, seq)?;
                let affected = bet.legs.iter().any(|l| {
                    l.event_id == *event_id && markets.is_none_or(|m| m.contains(&l.market_id))
                });
                if !affected {
                    continue;
                }
                let why = format!("rollback by {operator}: {reason}");
                reverse_in_tx(
                    &tx,
                    self.hub_key(),
                    &node,
                    &bet,
                    &cur,
                    &why,
                    now,
                    &mut effects,
                )?;
                bets.push(bet_id.to_string());
            }
            effects.segments += self.cut_down_segments(&tx, &mut effects, now)?;
            tx.commit()?;
            RollbackReceipt {
                event_id: event_id.clone(),
                withdrawn_version: c.version,
                reversed: effects.reversed,
                bets,
            }
        };
        tracing::warn!(event = %event_id, reversed = receipt.reversed, operator, reason, "settlement rolled back");
        self.after_commit(effects);
        Ok(receipt)
    }

    /// One result submission in one transaction: `f` decides the status; bets on the event are
    /// settled (or reprocessed) whenever a final result is in force.
    fn in_tx(
        &self,
        event_id: &EventId,
        now: UnixMillis,
        f: impl FnOnce(&HubState, &Transaction<'_>, &mut TxEffects) -> Result<ResultStatus, ResultError>,
    ) -> Result<ResultReceipt, ResultError> {
        let mut effects = TxEffects::default();
        let receipt = {
            let mut conn = self.db().conn();
            let tx = conn.transaction()?;
            let status = f(self, &tx, &mut effects)?;
            let mut waiting = 0;
            if status == ResultStatus::Unchanged {
                // The settle pass runs on resubmission too: that is the reprocessing the
                // (bet, version) key makes harmless.
                waiting = self.settle_event(&tx, event_id, now, &mut effects)?;
            } else if matches!(status, ResultStatus::Recorded | ResultStatus::Corrected) {
                waiting = effects.waiting;
            }
            let version = current(&tx, event_id)?
                .filter(|c| !c.withdrawn)
                .map_or(0, |c| c.version);
            let alert = open_alert(&tx, event_id)?;
            effects.segments += self.cut_down_segments(&tx, &mut effects, now)?;
            tx.commit()?;
            ResultReceipt {
                event_id: event_id.clone(),
                result_version: version,
                status,
                settled: effects.settled,
                reversed: effects.reversed,
                reprocessed: effects.reprocessed,
                waiting,
                alert: alert
                    .filter(|_| matches!(status, ResultStatus::Conflict | ResultStatus::Held)),
            }
        };
        match receipt.status {
            ResultStatus::Recorded | ResultStatus::Corrected => tracing::info!(
                event = %event_id, version = receipt.result_version, settled = receipt.settled,
                reversed = receipt.reversed, status = ?receipt.status, "result final"
            ),
            ResultStatus::Conflict | ResultStatus::Held => tracing::warn!(
                event = %event_id, status = ?receipt.status, alert = ?receipt.alert, "result held"
            ),
            _ => {}
        }
        self.after_commit(effects);
        Ok(receipt)
    }

    /// Look at the reports of an event without a final result in force: conflict, unknown
    /// event, agreement of two sources (final) or still pending.
    pub(crate) fn evaluate_reports(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<ResultStatus, StoreError> {
        let c = current(tx, event_id)?;
        let in_force = c
            .as_ref()
            .filter(|c| !c.withdrawn)
            .map(|c| c.result.clone());
        if in_force
            .as_ref()
            .is_some_and(|r| !matches!(r, EventResult::Outcomes(_)))
        {
            return Ok(ResultStatus::Unchanged);
        }
        let from = c.as_ref().map_or(0, |c| c.reports_from);
        let rows: Vec<(String, i64, i64, Option<String>, bool)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT source, home_goals, away_goals, result_json, operator FROM result_reports WHERE event_id = ?1 AND id >= ?2 ORDER BY id",
            )?;
            stmt.query_map(params![event_id.as_str(), from], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let reports = rows
            .into_iter()
            .map(|(src, h, a, j, op)| Ok((src, result_from_cols(h, a, j)?, op)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let agreed = match agree(&reports) {
            Agreement::Conflict(detail) => {
                self.raise_alert(
                    tx,
                    event_id,
                    "conflict",
                    &format!("{detail}; settlement held until an operator confirms a result"),
                    now,
                    effects,
                )?;
                return Ok(ResultStatus::Conflict);
            }
            Agreement::Pending if reports.is_empty() => return Ok(ResultStatus::Pending),
            a => a,
        };
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM hub_events WHERE event_id = ?1)",
            [event_id.as_str()],
            |r| r.get(0),
        )?;
        if !known {
            self.raise_alert(
                tx,
                event_id,
                "unknown_event",
                "no market or bet on this event has reached the hub; the result is held for review",
                now,
                effects,
            )?;
            return Ok(ResultStatus::Held);
        }
        let Agreement::Final(result) = agreed else {
            return Ok(if in_force.is_some() {
                ResultStatus::Unchanged
            } else {
                ResultStatus::Pending
            });
        };
        if in_force.as_ref() == Some(&result) {
            return Ok(ResultStatus::Unchanged);
        }
        let mut sources: Vec<&str> = reports.iter().map(|r| r.0.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        self.finalize(
            tx,
            event_id,
            result,
            &format!("agreed: {}", sources.join(", ")),
            now,
            effects,
        )?;
        Ok(ResultStatus::Recorded)
    }

    /// Make `score` the final result of `event_id` at the next version: record it, announce
    /// it to every node, resolve the event's alerts, and settle (or correct) its bets.
    fn finalize(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        score: EventResult,
        basis: &str,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<u32, StoreError> {
        let (home, away, json) = result_cols(&score);
        let last: i64 = tx.query_row(
            "SELECT MAX(COALESCE((SELECT MAX(result_version) FROM result_versions WHERE event_id = ?1), 0),
                        COALESCE((SELECT result_version FROM results WHERE event_id = ?1), 0))",
            [event_id.as_str()],
            |r| r.get(0),
        )?;
        let version = u32::try_from(last + 1)
            .map_err(|_| StoreError::Corrupt(format!("result version {last}")))?;
        tx.execute(
            "INSERT INTO result_versions (event_id, result_version, home_goals, away_goals, basis, final_ms, result_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![event_id.as_str(), version, home, away, basis, now.0, json],
        )?;
        tx.execute(
            "INSERT INTO results (event_id, home_goals, away_goals, result_version, source, received_ms, withdrawn, reports_from, result_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, ?7)
             ON CONFLICT (event_id) DO UPDATE SET home_goals = ?2, away_goals = ?3, result_version = ?4,
                 source = ?5, received_ms = ?6, withdrawn = 0, result_json = ?7",
            params![event_id.as_str(), home, away, version, basis, now.0, json],
        )?;
        let result = result_event(
            event_id.clone(),
            score,
            version,
            basis.chars().take(SOURCE_MAX).collect(),
        );
        let nodes: Vec<NodeId> = self.registered_nodes().map(|n| n.id.clone()).collect();
        for node in nodes {
            let (seq, _) = effects
                .down
                .append(tx, self.hub_key(), &node, &result, now)?;
            effects.down_heads.insert(node, seq);
        }
        resolve_alerts(tx, event_id, basis, now)?;
        // No earlier version: no bet on the event can have been settled (a settlement needs
        // a final result for every leg), so the settle pass need not look for settlements.
        effects.waiting = self.settle_event_with(tx, event_id, last == 0, now, effects)?;
        Ok(version)
    }

    /// The settle pass over every bet on `event_id`; returns how many still wait for other
    /// legs. Open bets are read with their records in one scan (the bulk path that settles a
    /// million bets in seconds); settled bets go through the per-bet path, which compares
    /// with the settlement in force and corrects it if the outcome changed.
    fn settle_event(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<usize, StoreError> {
        self.settle_event_with(tx, event_id, false, now, effects)
    }

    /// [`HubState::settle_event`]; `first_final`: the event's first final result version is
    /// being settled, so no bet on it has a settlement yet.
    fn settle_event_with(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        first_final: bool,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<usize, StoreError> {
        // Taken before the bulk pass, which settles bets in this transaction.
        let settled: Vec<String> = if first_final {
            Vec::new()
        } else {
            let mut stmt = tx.prepare_cached(
                "SELECT be.bet_id FROM bet_events be WHERE be.event_id = ?1 AND EXISTS (
                     SELECT 1 FROM settlements s WHERE s.bet_id = be.bet_id AND NOT EXISTS (
                         SELECT 1 FROM settlement_reversals r
                         WHERE r.bet_id = s.bet_id AND r.reversed_version = s.result_version))
                 ORDER BY be.bet_id",
            )?;
            stmt.query_map([event_id.as_str()], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let in_force: std::collections::HashSet<&str> =
            settled.iter().map(String::as_str).collect();
        let waiting = self.settle_open_bulk(tx, event_id, &in_force, !first_final, now, effects)?;
        for bet in settled {
            let bet = BetId::new(bet).map_err(|e| StoreError::Corrupt(format!("bet id: {e}")))?;
            self.settle_in_tx(tx, &bet, now, effects)?;
        }
        Ok(waiting)
    }

    /// Raise an alert unless one of the same kind is already open for the event.
    fn raise_alert(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        kind: &str,
        detail: &str,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<(), StoreError> {
        let open: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM result_alerts WHERE event_id = ?1 AND kind = ?2 AND resolved_ms IS NULL)",
            params![event_id.as_str(), kind],
            |r| r.get(0),
        )?;
        if !open {
            tx.execute(
                "INSERT INTO result_alerts (event_id, kind, detail, raised_ms) VALUES (?1, ?2, ?3, ?4)",
                params![event_id.as_str(), kind, detail, now.0],
            )?;
            tracing::warn!(event = %event_id, kind, detail, "result alert raised");
            effects.alerts += 1;
        }
        Ok(())
    }

    /// Open alerts (oldest first), or every alert with `all`.
    pub fn alerts_view(&self, all: bool) -> Result<Vec<AlertView>, StoreError> {
        let conn = self.db().reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, event_id, kind, detail, raised_ms, resolved_ms, resolution FROM result_alerts
             WHERE ?1 OR resolved_ms IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([all], |r| {
            Ok(AlertView {
                id: r.get(0)?,
                event_id: r.get(1)?,
                kind: r.get(2)?,
                detail: r.get(3)?,
                raised_ms: r.get(4)?,
                resolved_ms: r.get(5)?,
                resolution: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Everything the hub holds about an event's result: reports, final versions, alerts.
    pub fn result_view(&self, event_id: &EventId) -> Result<ResultView, StoreError> {
        let (c, reports, versions) = {
            let conn = self.db().reader();
            let c = current(&conn, event_id)?;
            let mut stmt = conn.prepare_cached(
                "SELECT source, home_goals, away_goals, operator, received_ms, result_json FROM result_reports WHERE event_id = ?1 ORDER BY id",
            )?;
            let reports: Vec<ReportView> = stmt
                .query_map([event_id.as_str()], |r| {
                    Ok(ReportView {
                        source: r.get(0)?,
                        home_goals: r.get(1)?,
                        away_goals: r.get(2)?,
                        operator: r.get(3)?,
                        received_ms: r.get(4)?,
                        result: json_value(r.get(5)?),
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut stmt = conn.prepare_cached(
                "SELECT result_version, home_goals, away_goals, basis, final_ms, result_json FROM result_versions WHERE event_id = ?1 ORDER BY result_version",
            )?;
            let versions: Vec<VersionView> = stmt
                .query_map([event_id.as_str()], |r| {
                    Ok(VersionView {
                        result_version: r.get(0)?,
                        home_goals: r.get(1)?,
                        away_goals: r.get(2)?,
                        basis: r.get(3)?,
                        final_ms: r.get(4)?,
                        result: json_value(r.get(5)?),
                    })
                })?
                .collect::<Result<_, _>>()?;
            (c, reports, versions)
        };
        let alerts = self
            .alerts_view(true)?
            .into_iter()
            .filter(|a| a.event_id == event_id.as_str())
            .collect();
        Ok(ResultView {
            event_id: event_id.to_string(),
            state: match &c {
                None => "none",
                Some(c) if c.withdrawn => "withdrawn",
                Some(_) => "final",
            },
            result_version: c.map_or(0, |c| c.version),
            reports,
            versions,
            alerts,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub detail: String,
    pub raised_ms: i64,
    pub resolved_ms: Option<i64>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportView {
    pub source: String,
    pub home_goals: i64,
    pub away_goals: i64,
    pub operator: bool,
    pub received_ms: i64,
    /// A race or per-outcome result (the goals are then -1 and a content key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

fn json_value(j: Option<String>) -> Option<serde_json::Value> {
    j.and_then(|j| serde_json::from_str(&j).ok())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionView {
    pub result_version: u32,
    pub home_goals: i64,
    pub away_goals: i64,
    pub basis: String,
    pub final_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultView {
    pub event_id: String,
    /// `none`, `final` or `withdrawn` (rolled back).
    pub state: &'static str,
    pub result_version: u32,
    pub reports: Vec<ReportView>,
    pub versions: Vec<VersionView>,
    pub alerts: Vec<AlertView>,
}

/// Store a report; false if the same source already reported the same score.
fn insert_report(
    tx: &Transaction<'_>,
    event_id: &EventId,
    source: &str,
    score: &EventResult,
    operator: bool,
    now: UnixMillis,
) -> Result<bool, StoreError> {
    let (home, away, json) = result_cols(score);
    let epoch: i64 = tx
        .query_row(
            "SELECT reports_from FROM results WHERE event_id = ?1",
            [event_id.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    Ok(tx.execute(
        "INSERT OR IGNORE INTO result_reports (event_id, source, home_goals, away_goals, operator, received_ms, epoch, result_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![event_id.as_str(), source, home, away, operator, now.0, epoch, json],
    )? == 1)
}

fn resolve_alerts(
    tx: &Transaction<'_>,
    event_id: &EventId,
    resolution: &str,
    now: UnixMillis,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE result_alerts SET resolved_ms = ?2, resolution = ?3 WHERE event_id = ?1 AND resolved_ms IS NULL",
        params![event_id.as_str(), now.0, resolution],
    )?;
    Ok(())
}

fn open_alert(tx: &Connection, event_id: &EventId) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT kind || ': ' || detail FROM result_alerts WHERE event_id = ?1 AND resolved_ms IS NULL ORDER BY id DESC LIMIT 1",
            [event_id.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Every bet with a leg on `event_id`: (bet, node, record seq), in bet order.
fn event_bets(
    tx: &Connection,
    event_id: &EventId,
) -> Result<Vec<(BetId, NodeId, i64)>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT b.bet_id, b.node_id, b.seq FROM bet_events be JOIN bets b ON b.bet_id = be.bet_id
         WHERE be.event_id = ?1 AND b.status != 'error' ORDER BY be.bet_id",
    )?;
    let rows: Vec<(String, String, i64)> = stmt
        .query_map([event_id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(b, n, seq)| {
            Ok((
                BetId::new(b).map_err(|e| StoreError::Corrupt(format!("bet id: {e}")))?,
                NodeId::new(n).map_err(|e| StoreError::Corrupt(format!("node id: {e}")))?,
                seq,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests;
