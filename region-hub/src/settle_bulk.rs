//! The bulk settle pass: every *open* bet on an event that has just become final, in the
//! caller's transaction (`docs/benchmarks.md`, "Settlement": a million bets in seconds).
//!
//! The per-bet path (`HubState::settle_loaded`) looks everything up per bet. Here the work is
//! split by what it needs:
//! 1. one range scan reads the event's bets in their compact copy (`event_bets`,
//!    `bet_copy.rs`), clustered by event: no join, no signed frame, no JSON. Bets with a
//!    settlement in force (the caller passes them; none when the event's first final result is
//!    being settled) and bets in error are left out by id;
//! 2. the results and suspensions of the legs' events are read once per event (they cannot
//!    change inside the transaction);
//! 3. decoding each copy, settling it (`outpost_core::hub::settle_bet`) and serialising its leg
//!    results and down-record payload is pure and runs on a second thread, handing chunks to
//!    the writer through a bounded channel;
//! 4. the writer (this thread, the only one touching SQLite) appends each settlement to the
//!    down chain (a hash chain is sequential by nature) and writes its row, through cached
//!    prepared statements, while the next chunk is being settled. The idempotency check on
//!    (bet, result version) runs first unless the caller knows no bet on the event has any
//!    settlement (the unique index would still refuse a duplicate). The bet row itself is not
//!    rewritten: "open" means no settlement in force (migration 4 in `db.rs` says why).
//!
//! The outcome for each bet is exactly the per-bet path's for an open bet (not ready,
//! suspended, settled, reprocessed or failed); `bulk_pass_settles_like_the_per_bet_rules` in the tests
//! compares them.

use crate::bet_copy;
use crate::down;
use crate::store::{HubState, SettlePhases, StoreError, TxEffects};
use outpost_core::edge::events::BetPlaced;
use outpost_core::hub::{HubEvent, settle_bet};
use outpost_core::ids::{BetId, EventId, NodeId};
use outpost_core::log::{ChainWriter, RecordKind};
use outpost_core::settlement::event_result::EventResult;
use outpost_core::time::UnixMillis;
use rusqlite::{Transaction, params};
use std::collections::{HashMap, HashSet};
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
        record: DownRecord,
    },
}

/// The settlement's down record: serialised only, or already chained (hashed and framed) on
/// the settling thread when the writer stores every settlement it is handed (no idempotency
/// check that could leave one out).
enum DownRecord {
    Payload(Vec<u8>),
    Built(down::Built),
}

/// Per event: its final result in force (if any) and whether settlement is suspended.
struct EventState {
    result: Option<(EventResult, u32)>,
    suspended: bool,
}

fn decide(
    node: &NodeId,
    bet: &BetPlaced,
    struck_at: UnixMillis,
    events: &HashMap<EventId, EventState>,
    chain: Option<(&mut ChainWriter, UnixMillis)>,
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
            Ok(legs_json) => {
                let (version, payout_minor) = (s.result_version, s.payout_minor);
                let payload = HubEvent::Settlement(s).to_payload();
                Decided::Settle {
                    version,
                    payout_minor,
                    legs_json,
                    record: match chain {
                        Some((w, now)) => DownRecord::Built(down::build(
                            w,
                            RecordKind::HubSettlement,
                            now,
                            payload,
                        )),
                        None => DownRecord::Payload(payload),
                    },
                }
            }
            Err(e) => Decided::Failed(format!("leg results do not serialise: {e}")),
        },
    }
}

impl HubState {
    /// Settle every open bet on `event_id` whose legs all have results; returns how many
    /// still wait (other legs unresulted, or an event suspended). `in_force`: the bets on the
    /// event that have a settlement in force (they are not open). `check_done`: look up
    /// (bet, result version) before writing; false only when no bet on the event can have a
    /// settlement yet.
    pub(crate) fn settle_open_bulk(
        &self,
        tx: &Transaction<'_>,
        event_id: &EventId,
        in_force: &HashSet<&str>,
        check_done: bool,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<usize, StoreError> {
        let phases = &self.metrics().settle_phases;
        let started = Instant::now();
        // 1. Read.
        let in_error: HashSet<String> = {
            let mut stmt = tx.prepare_cached("SELECT bet_id FROM bets WHERE status = 'error'")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut nodes: Vec<NodeId> = Vec::new();
        let mut rows: Vec<Row> = Vec::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT bet_id, node_id, struck_ms, bet FROM event_bets WHERE event_id = ?1",
            )?;
            let mut q = stmt.query([event_id.as_str()])?;
            while let Some(r) = q.next()? {
                let bet_id = text(r, 0)?;
                if in_force.contains(bet_id) || in_error.contains(bet_id) {
                    continue;
                }
                let node = text(r, 1)?;
                let node = match nodes.iter().position(|n| n.as_str() == node) {
                    Some(i) => i,
                    None => {
                        nodes.push(
                            NodeId::new(node)
                                .map_err(|e| StoreError::Corrupt(format!("node id: {e}")))?,
                        );
                        nodes.len() - 1
                    }
                };
                rows.push(Row {
                    node,
                    struck_at: UnixMillis(r.get(2)?),
                    copy: r.get(3)?,
                });
            }
        }
        if rows.is_empty() {
            SettlePhases::add(&phases.read_ns, started);
            return Ok(0);
        }
        // 2. The legs' events, once each.
        let mut events: HashMap<EventId, EventState> = HashMap::new();
        events.insert(event_id.clone(), event_state(tx, event_id)?);
        let mut seen: HashSet<String> = HashSet::from([event_id.as_str().to_string()]);
        for row in &rows {
            let mut err = None;
            bet_copy::for_each_event(&row.copy, |e| {
                if e != event_id.as_str() && !seen.contains(e) {
                    seen.insert(e.to_string());
                    match EventId::new(e) {
                        Ok(id) => match event_state(tx, &id) {
                            Ok(st) => {
                                events.insert(id, st);
                            }
                            Err(x) => err = Some(x),
                        },
                        Err(x) => err = Some(StoreError::Corrupt(format!("event id: {x}"))),
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(e) = err {
                return Err(e);
            }
        }
        SettlePhases::add(&phases.read_ns, started);

        // 3 + 4. Settle on a second thread, write here.
        let write_started = Instant::now();
        let mut waiting = 0;
        let mut done_stmt = tx.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM settlements WHERE bet_id = ?1 AND result_version = ?2)",
        )?;
        let mut ins_stmt = tx.prepare_cached(
            "INSERT INTO settlements (bet_id, result_version, node_id, down_seq, payout_minor, settled_ms, leg_results) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let progress = &self.metrics().settle_progress;
        let mut waited = std::time::Duration::ZERO;
        let (to_writer, from_settler) =
            std::sync::mpsc::sync_channel::<Result<Vec<Out>, StoreError>>(4);
        // Without the idempotency check every settlement decided is stored, in order: the
        // settling thread can chain them too (hash, frame, hex), on writers lent per node.
        let mut chains: Vec<ChainWriter> = Vec::new();
        if !check_done {
            for node in &nodes {
                chains.push(effects.down.lend(tx, node)?);
            }
        }
        std::thread::scope(|s| -> Result<(), StoreError> {
            // Owned here so that a writer error drops it before the scope joins the settling
            // thread, which then stops at its next send instead of blocking for ever.
            let from_settler = from_settler;
            let (rows, nodes, events) = (&rows, &nodes, &events);
            let settler = s.spawn(move || {
                let mut decoder = bet_copy::Decoder::default();
                for chunk in rows.chunks(CHUNK) {
                    let t = Instant::now();
                    let bets: Result<Vec<BetPlaced>, StoreError> = chunk
                        .iter()
                        .map(|row| {
                            decoder
                                .decode(&row.copy)
                                .map_err(|e| StoreError::Corrupt(e.to_string()))
                        })
                        .collect();
                    SettlePhases::add(&phases.decode_ns, t);
                    let t = Instant::now();
                    let out = bets.map(|bets| {
                        chunk
                            .iter()
                            .zip(bets)
                            .map(|(row, bet)| Out {
                                node: row.node,
                                decided: decide(
                                    &nodes[row.node],
                                    &bet,
                                    row.struck_at,
                                    events,
                                    chains.get_mut(row.node).map(|w| (w, now)),
                                ),
                                bet_id: bet.bet_id,
                            })
                            .collect::<Vec<Out>>()
                    });
                    SettlePhases::add(&phases.settle_ns, t);
                    let stop = out.is_err();
                    // A closed channel means the writer stopped on an error: stop too.
                    if to_writer.send(out).is_err() || stop {
                        break;
                    }
                }
                chains
            });
            loop {
                let t = Instant::now();
                let Ok(chunk) = from_settler.recv() else {
                    break;
                };
                waited += t.elapsed();
                for out in chunk? {
                    let node = &nodes[out.node];
                    let bet_id = out.bet_id.as_str();
                    match out.decided {
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
                            record,
                        } => {
                            if check_done
                                && done_stmt.query_row(params![bet_id, version], |r| r.get(0))?
                            {
                                effects.reprocessed += 1;
                                continue;
                            }
                            let down_seq = match record {
                                DownRecord::Built(b) => {
                                    let seq = b.seq();
                                    effects.down.push_built(tx, self.hub_key(), node, b, now)?;
                                    seq
                                }
                                DownRecord::Payload(payload) => {
                                    effects
                                        .down
                                        .append_payload(
                                            tx,
                                            self.hub_key(),
                                            node,
                                            RecordKind::HubSettlement,
                                            payload,
                                            now,
                                        )?
                                        .0
                                }
                            };
                            ins_stmt.execute(params![
                                bet_id,
                                version,
                                node.as_str(),
                                down_seq.0 as i64,
                                payout_minor,
                                now.0,
                                legs_json
                            ])?;
                            if effects.down_heads.get(node) != Some(&down_seq) {
                                effects.down_heads.insert(node.clone(), down_seq);
                            }
                            effects.settled += 1;
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            let chains = settler
                .join()
                .map_err(|_| StoreError::Corrupt("the settling thread panicked".into()))?;
            for (node, w) in nodes.iter().zip(chains) {
                effects.down.give_back(node, w)?;
            }
            Ok(())
        })?;
        phases
            .wait_ns
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        phases.write_ns.fetch_add(
            write_started.elapsed().saturating_sub(waited).as_nanos() as u64,
            Ordering::Relaxed,
        );
        Ok(waiting)
    }
}

/// A text column without copying it.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Bets handed from the settling thread to the writer at a time.
const CHUNK: usize = 2048;

/// One open bet as read: its node (index into the pass's nodes), when it was struck, and its
/// compact copy.
struct Row {
    node: usize,
    struck_at: UnixMillis,
    copy: Vec<u8>,
}

/// What the settling thread hands the writer for one bet.
struct Out {
    node: usize,
    bet_id: BetId,
    decided: Decided,
}

fn event_state(tx: &Transaction<'_>, event: &EventId) -> Result<EventState, StoreError> {
    let suspended = crate::reconcile::suspend::suspended(tx, event)?.is_some();
    // A withdrawn (rolled-back) result does not settle until a new version is final.
    let result = crate::settlement::load_final(tx, event)?;
    Ok(EventState { result, suspended })
}

#[cfg(test)]
mod tests;
