//! Results intake and settlement.
//!
//! A result is stored, announced to every registered node (a `HubResult` down record, which
//! closes the event's markets at the edge) and used to settle every bet whose legs are all
//! resulted (a `HubSettlement` down record to the bet's node), all in one transaction.
//!
//! Settlement is keyed by (bet, result version) in the `settlements` table. Running the pass
//! again, for instance on an identical resubmission of a result, finds those keys and changes
//! nothing; each such no-op is counted (`reprocessed_settlements` in `/v1/stats`) so operators
//! can see that retries happen and are harmless.
//!
//! Only result version 1 exists for now: a *different* result for an already resulted event
//! is refused. Correcting a result means resettling bets (version 2), a later feature.

use crate::store::{HubState, SettleOutcome, StoreError, TxEffects, now_ms};
use outpost_core::hub::{HubEvent, HubResult};
use outpost_core::ids::{BetId, EventId, NodeId};
use outpost_core::settle::FinalScore;
use outpost_core::time::UnixMillis;
use rusqlite::{OptionalExtension, params};

/// The only result version issued so far.
pub const RESULT_VERSION: u32 = 1;
const SOURCE_MAX: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error(
        "event {event_id} already has the result {}-{} from {stored_source}; a different result ({}-{}) would need resettlement, which is not supported yet",
        stored.home, stored.away, offered.home, offered.away
    )]
    Conflict {
        event_id: EventId,
        stored: FinalScore,
        stored_source: String,
        offered: FinalScore,
    },
    #[error("invalid source: {0}")]
    InvalidSource(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ResultError {
    fn from(e: rusqlite::Error) -> Self {
        ResultError::Store(StoreError::Sqlite(e))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// A new result: stored, announced and settled.
    Recorded,
    /// The same score was already stored: nothing changed.
    Unchanged,
}

/// What `submit_result` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResultReceipt {
    pub event_id: EventId,
    pub result_version: u32,
    pub status: ResultStatus,
    /// Bets settled by this submission.
    pub settled: usize,
    /// Bets found already settled for this result version (no change).
    pub reprocessed: u64,
    /// Bets on the event still waiting for other legs' results.
    pub waiting: usize,
}

fn validate_source(source: &str) -> Result<(), ResultError> {
    if source.trim().is_empty() {
        return Err(ResultError::InvalidSource("must not be empty"));
    }
    if source.chars().count() > SOURCE_MAX {
        return Err(ResultError::InvalidSource("must be at most 200 characters"));
    }
    if source.chars().any(char::is_control) {
        return Err(ResultError::InvalidSource(
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl HubState {
    /// Submit a final result (see the module docs). Identical resubmissions are no-ops; a
    /// different score for a resulted event is [`ResultError::Conflict`].
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
        validate_source(source)?;
        let mut effects = TxEffects::default();
        let receipt = {
            let mut conn = self.db().conn();
            let tx = conn.transaction()?;
            let stored: Option<(i64, i64, String)> = tx
                .query_row(
                    "SELECT home_goals, away_goals, source FROM results WHERE event_id = ?1",
                    [event_id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let status = match stored {
                Some((h, a, _)) if (h, a) == (i64::from(score.home), i64::from(score.away)) => {
                    ResultStatus::Unchanged
                }
                Some((h, a, stored_source)) => {
                    let stored = FinalScore {
                        home: h.clamp(0, u16::MAX.into()) as u16,
                        away: a.clamp(0, u16::MAX.into()) as u16,
                    };
                    return Err(ResultError::Conflict {
                        event_id: event_id.clone(),
                        stored,
                        stored_source,
                        offered: score,
                    });
                }
                None => {
                    tx.execute(
                        "INSERT INTO results (event_id, home_goals, away_goals, result_version, source, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![event_id.as_str(), score.home, score.away, RESULT_VERSION, source, now.0],
                    )?;
                    let result = HubEvent::Result(HubResult {
                        event_id: event_id.clone(),
                        score,
                        result_version: RESULT_VERSION,
                        source: source.to_string(),
                    });
                    let nodes: Vec<NodeId> =
                        self.registered_nodes().map(|n| n.id.clone()).collect();
                    for node in nodes {
                        let (seq, _) =
                            crate::down::append(&tx, self.hub_key(), &node, &result, now)
                                .map_err(StoreError::from)?;
                        effects.down_heads.insert(node, seq);
                    }
                    ResultStatus::Recorded
                }
            };

            // The settle pass runs on resubmission too: that is the reprocessing the
            // (bet, version) key makes harmless.
            let bets: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT be.bet_id FROM bet_events be JOIN bets b ON b.bet_id = be.bet_id
                     WHERE be.event_id = ?1 AND b.status != 'error' ORDER BY be.bet_id",
                )?;
                stmt.query_map([event_id.as_str()], |r| r.get(0))?
                    .collect::<Result<_, _>>()?
            };
            let mut waiting = 0;
            for bet in bets {
                let bet =
                    BetId::new(bet).map_err(|e| StoreError::Corrupt(format!("bet id: {e}")))?;
                if self.settle_in_tx(&tx, &bet, now, &mut effects)? == SettleOutcome::NotReady {
                    waiting += 1;
                }
            }
            effects.segments += self.cut_down_segments(&tx, &effects, now)?;
            tx.commit()?;
            ResultReceipt {
                event_id: event_id.clone(),
                result_version: RESULT_VERSION,
                status,
                settled: effects.settled,
                reprocessed: effects.reprocessed,
                waiting,
            }
        };
        self.after_commit(effects);
        if receipt.status == ResultStatus::Recorded {
            tracing::info!(event = %event_id, home = score.home, away = score.away, settled = receipt.settled, "result recorded");
        }
        Ok(receipt)
    }
}
