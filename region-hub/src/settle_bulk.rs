//! The bulk settle pass: every *open* bet on an event that has just become final, in the
//! caller's transaction (`docs/benchmarks.md`, "Settlement": a million bets in seconds).
//!
//! The per-bet path (`HubState::settle_loaded`) looks everything up per bet. Here the work is
//! split by what it needs:
//! 1. one query reads the open bets with their `bet_placed` records;
//! 2. decoding them (frame + JSON) is pure and runs on every core;
//! 3. the results and suspensions of the legs' events are read once per event (they cannot
//!    change inside the transaction);
//! 4. settling each bet (`outpost_core::hub::settle_bet`) and serialising its leg results and
//!    its down record's payload is pure too and runs on every core;
//! 5. only the writes are serial: the idempotency check on (bet, result version), the down
//!    chain append (a hash chain is sequential by nature) and the settlement row, all through
//!    cached prepared statements. The bet row itself is not rewritten: "open" means no
//!    settlement in force (migration 3 in `db.rs` says why).
//!
//! The outcome for each bet is exactly the per-bet path's for an open bet (not ready,
//! suspended, settled, reprocessed or failed); `settle_bulk_matches_per_bet` in the tests
//! compares them.

use crate::store::{HubState, SettlePhases, StoreError, TxEffects, bet_from_frame};
use outpost_core::edge::events::BetPlaced;
use outpost_core::hub::{HubEvent, settle_bet};
use outpost_core::ids::{EventId, NodeId};
use outpost_core::log::RecordKind;
use outpost_core::settlement::event_result::EventResult;
use outpost_core::time::UnixMillis;
use rusqlite::{Transaction, params};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What the pure phase decided for one bet.
enum Decided {
    NotReady,
    Failed(String),
    Settle {
        version: u32,
        payout_minor: i64,
        legs_json: String,
        payload: Vec<u8>,
    },
}

/// Per event: its final result in force (if any) and whether settlement is suspended.
struct EventState {
    result: Option<(EventResult, u32)>,
    suspended: bool,
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Run `f` over `items` on every core, keeping the order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let n = threads();
    if n == 1 || items.len() < 1024 {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(n);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("settling is pure and does not panic"))
            .collect()
    })
}

fn decide(
    node: &NodeId,
    bet: &BetPlaced,
    struck_at: UnixMillis,
    events: &HashMap<EventId, EventState>,
) -> Decided {
    // Reconciliation hook: a critical finding suspends settlement of its events.
    if bet
        .legs
        .iter()
        .any(|l| events.get(&l.event_id).is_some_and(|e| e.suspended))
    {
        return Decided::NotReady;
    }
    let result_of = |e: &EventId| {
        events
            .get(e)
            .and_then(|s| s.result.as_ref())
            .map(|(r, v)| (r, *v))
    };
    match settle_bet(node, bet, struck_at, result_of) {
        Ok(None) => Decided::NotReady,
        Err(e) => Decided::Failed(e.to_string()),
        Ok(Some(s)) => match serde_json::to_string(&s.leg_results) {
            Ok(legs_json) => Decided::Settle {
                version: s.result_version,
                payout_minor: s.payout_minor,
                legs_json,
                payload: HubEvent::Settlement(s).to_payload(),
            },
            Err(e) => Decided::Failed(format!("leg results do not serialise: {e}")),
        },
    }
}

impl HubState {
    /// Settle every open bet on `event_id` whose legs all have results; returns how many
    /// still wait (other legs unresulted, or an event suspended).
    pub(crate) fn settle_open_bulk(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<usize, StoreError> {
        let phases = &self.metrics().settle_phases;
        let mut started = Instant::now();
        // 1. Read.
        let rows: Vec<(String, i64, Vec<u8>, i64)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT b.node_id, b.seq, r.frame, r.ts_ms FROM bet_events be
                 JOIN bets b ON b.bet_id = be.bet_id
                 JOIN records r ON r.node_id = b.node_id AND r.seq = b.seq
                 WHERE be.event_id = ?1 AND b.status = 'open' AND NOT EXISTS (
                     SELECT 1 FROM settlements s WHERE s.bet_id = b.bet_id AND NOT EXISTS (
                         SELECT 1 FROM settlement_reversals r
                         WHERE r.bet_id = s.bet_id AND r.reversed_version = s.result_version))",
            )?;
            stmt.query_map([event_id.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?
        };
        SettlePhases::add(&phases.read_ns, started);
        if rows.is_empty() {
            return Ok(0);
        }
        started = Instant::now();
        let mut node_ids: HashMap<String, NodeId> = HashMap::new();
        for (n, _, _, _) in &rows {
            if !node_ids.contains_key(n) {
                let id = NodeId::new(n.clone())
                    .map_err(|e| StoreError::Corrupt(format!("node id: {e}")))?;
                node_ids.insert(n.clone(), id);
            }
        }
        // 2. Decode.
        let bets: Vec<(&NodeId, BetPlaced, UnixMillis)> = par_map(&rows, |(n, seq, frame, ts)| {
            let node = &node_ids[n];
            bet_from_frame(node, *seq, frame).map(|b| (node, b, UnixMillis(*ts)))
        })
        .into_iter()
        .collect::<Result<_, _>>()?;
        drop(rows);
        SettlePhases::add(&phases.decode_ns, started);
        started = Instant::now();
        // 3. Events.
        let mut events: HashMap<EventId, EventState> = HashMap::new();
        for (_, bet, _) in &bets {
            for leg in &bet.legs {
                if !events.contains_key(&leg.event_id) {
                    let st = event_state(tx, &leg.event_id)?;
                    events.insert(leg.event_id.clone(), st);
                }
            }
        }
        // 4. Settle.
        let decided = par_map(&bets, |(node, bet, ts)| decide(node, bet, *ts, &events));
        SettlePhases::add(&phases.settle_ns, started);
        started = Instant::now();
        // 5. Write.
        let mut waiting = 0;
        let mut done_stmt = tx.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM settlements WHERE bet_id = ?1 AND result_version = ?2)",
        )?;
        let mut ins_stmt = tx.prepare_cached(
            "INSERT INTO settlements (bet_id, result_version, node_id, down_seq, payout_minor, settled_ms, leg_results) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let progress = &self.metrics().settle_progress;
        for ((node, bet, _), d) in bets.iter().zip(decided) {
            let bet_id = bet.bet_id.as_str();
            match d {
                Decided::NotReady => waiting += 1,
                Decided::Failed(e) => {
                    tracing::error!(bet = bet_id, error = %e, "bet cannot be settled");
                    tx.execute(
                        "UPDATE bets SET status = 'error', settle_error = ?2 WHERE bet_id = ?1",
                        params![bet_id, e],
                    )?;
                }
                Decided::Settle {
                    version,
                    payout_minor,
                    legs_json,
                    payload,
                } => {
                    let done: bool = done_stmt.query_row(params![bet_id, version], |r| r.get(0))?;
                    if done {
                        effects.reprocessed += 1;
                        continue;
                    }
                    let (down_seq, _) = effects.down.append_payload(
                        tx,
                        self.hub_key(),
                        node,
                        RecordKind::HubSettlement,
                        payload,
                        now,
                    )?;
                    ins_stmt.execute(params![
                        bet_id,
                        version,
                        node.as_str(),
                        down_seq.0 as i64,
                        payout_minor,
                        now.0,
                        legs_json
                    ])?;
                    if effects.down_heads.get(*node) != Some(&down_seq) {
                        effects.down_heads.insert((*node).clone(), down_seq);
                    }
                    effects.settled += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        SettlePhases::add(&phases.write_ns, started);
        Ok(waiting)
    }
}

fn event_state(tx: &Transaction<'_>, event: &EventId) -> Result<EventState, StoreError> {
    let suspended = crate::reconcile::suspend::suspended(tx, event)?.is_some();
    // A withdrawn (rolled-back) result does not settle until a new version is final.
    let result = crate::settlement::load_final(tx, event)?;
    Ok(EventState { result, suspended })
}

#[cfg(test)]
mod tests;
