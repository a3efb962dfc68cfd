//! `HubState`: the hub's durable state behind the replication transport (`HubStore`) and
//! the HTTP API.
//!
//! The database is the source of truth. In memory the hub keeps only what the transport asks
//! for on every message (registrations, upstream heads) and one watch channel per node that
//! wakes the node's session when its down chain grows.
//!
//! An upstream commit is one SQLite transaction: the records, the bets derived from them, the
//! node's acked position, settlements of new bets on already-resulted events (with their down
//! records) and the audit segments covering all of it. Either all of that is durable, and the
//! edge gets its ack, or none of it is.

use crate::config::{HubConfig, NodeConfig, SegmentPolicy};
use crate::db::{Db, DbError};
use crate::down::{self, DownError};
use crate::outbox::{self, AuditPolicy, Direction, OutboxError, up_log_id};
use outpost_core::edge::events::{BetPlaced, EdgeEvent};
use outpost_core::hub::{HubEvent, settle_bet};
use outpost_core::ids::{BetId, EventId, Jurisdiction, LogId, NodeId, Seq};
use outpost_core::log::{ChainHead, Frame, NodeKey, RecordBody, RecordHash, RecordKind};
use outpost_core::settlement::event_result::EventResult;
use outpost_core::time::UnixMillis;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, watch};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("node {0} is not registered with this hub")]
    UnknownNode(NodeId),
    #[error(
        "node {node} is flagged ({reason}); its records are refused until an operator clears the flag"
    )]
    Flagged { node: NodeId, reason: String },
    #[error(
        "node {node} equivocated: seq {seq} was committed with hash {stored}, now offered with hash {offered}"
    )]
    Equivocation {
        node: NodeId,
        seq: Seq,
        stored: String,
        offered: String,
    },
    #[error("node {node}: record seq {seq} does not continue the committed head (seq {head})")]
    NotContiguous { node: NodeId, seq: Seq, head: Seq },
    #[error("node {node}: record seq {seq} belongs to log {found}, expected {expected}")]
    WrongLog {
        node: NodeId,
        seq: Seq,
        found: LogId,
        expected: LogId,
    },
    #[error(
        "node {node} is registered in the database as {db} but in the config as {config}; re-registering a node is not supported"
    )]
    RegistrationMismatch {
        node: NodeId,
        db: String,
        config: String,
    },
    #[error(
        "node {node} is not owned by this hub: it is {shard}; connect the node to the hub shard that owns it"
    )]
    NotOwned { node: NodeId, shard: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Down(#[from] DownError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("database task failed: {0}")]
    Task(String),
}

/// Counters that are not state (they reset on restart).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Settlement passes that found the (bet, result version) already settled and did nothing.
    pub reprocessed_settlements: AtomicU64,
    /// Result reports that repeated one already received (same source, same score).
    pub reprocessed_results: AtomicU64,
    /// Alerts raised for results (conflicts, unknown events).
    pub result_alerts_raised: AtomicU64,
    /// Settlements reversed by a correction or a rollback.
    pub settlements_reversed: AtomicU64,
    /// Bets settled so far, counted as they are settled (before the commit): a progress
    /// gauge for long settle passes (`outpost bench settle`).
    pub settle_progress: AtomicU64,
    /// Where bulk settle passes spent their time (`bench-settle` prints the split).
    pub settle_phases: SettlePhases,
    /// Replication lag in time per node, from the edges' heartbeats.
    pub replication_lag: crate::lag::LagBoard,
}

/// Cumulative wall time of the bulk settle pass's phases, in nanoseconds (`settle_bulk.rs`;
/// `flush` is writing the buffered down records and cutting their audit segments). `decode`
/// and `settle` run on the settling thread while the writer writes; `write` is the writer
/// busy, `wait` the writer idle waiting for it. The commit itself is what remains of a pass.
#[derive(Debug, Default)]
pub struct SettlePhases {
    pub read_ns: AtomicU64,
    pub decode_ns: AtomicU64,
    pub settle_ns: AtomicU64,
    pub write_ns: AtomicU64,
    pub flush_ns: AtomicU64,
    pub wait_ns: AtomicU64,
}

impl SettlePhases {
    pub(crate) fn add(counter: &AtomicU64, since: std::time::Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

/// Final results in force, looked up once per event during a settle pass.
#[derive(Debug, Default)]
pub(crate) struct ResultCache {
    map: HashMap<EventId, Option<(EventResult, u32)>>,
}

impl ResultCache {
    fn load(&mut self, tx: &Connection, event: &EventId) -> Result<(), StoreError> {
        if self.map.contains_key(event) {
            return Ok(());
        }
        // A withdrawn (rolled-back) result does not settle until a new version is final.
        let v = crate::settlement::load_final(tx, event)?;
        self.map.insert(event.clone(), v);
        Ok(())
    }
    fn get(&self, event: &EventId) -> Option<(&EventResult, u32)> {
        self.map
            .get(event)
            .and_then(|r| r.as_ref())
            .map(|(r, v)| (r, *v))
    }
}

/// In-memory view of one registered node.
#[derive(Debug)]
struct NodeEntry {
    reg: NodeConfig,
    live: Mutex<NodeLive>,
    down_tx: watch::Sender<Seq>,
}

#[derive(Debug, Clone)]
struct NodeLive {
    /// Durable upstream head (what the transport verifies new records against).
    up_head: ChainHead,
    flagged: Option<String>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    hub_id: String,
    hub_key: NodeKey,
    nodes: BTreeMap<NodeId, NodeEntry>,
    audit: AuditPolicy,
    metrics: Metrics,
    /// Wakes the audit uploader when new segments are queued.
    audit_wakeup: Notify,
    witness: crate::witness::Witness,
    /// Which nodes this hub shard owns (`shard.rs`); unset = all.
    shard: std::sync::OnceLock<crate::shard::ShardConfig>,
}

/// Cheap to clone; all clones share one database and one set of watch channels.
#[derive(Debug, Clone)]
pub struct HubState {
    inner: Arc<Inner>,
}

/// What one settlement attempt did (see [`HubState`]'s settle pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettleOutcome {
    NotReady,
    Settled,
    /// Already settled for this result version: nothing changed.
    Reprocessed,
    /// Settled earlier on a result since corrected, with a different outcome: the earlier
    /// settlement was reversed (a compensating entry) and the bet settled again.
    Corrected,
    /// The bet cannot be settled (a leg does not fit its market); marked `error`.
    Failed,
}

/// Changes made inside one transaction that need action once it has committed.
#[derive(Debug, Default)]
pub(crate) struct TxEffects {
    /// Nodes whose down chain grew, with the new head.
    pub down_heads: BTreeMap<NodeId, Seq>,
    pub segments: usize,
    pub reprocessed: u64,
    pub settled: usize,
    pub reversed: usize,
    pub alerts: u64,
    pub reprocessed_results: u64,
    /// Bets on a newly final event still waiting for other legs.
    pub waiting: usize,
    /// Down records appended in the transaction, written on flush (`cut_down_segments`).
    pub down: down::DownBatch,
}

pub(crate) fn now_ms() -> UnixMillis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UnixMillis(d.as_millis() as i64)
}

impl HubState {
    /// Open the state from a validated config (database at `data_dir/hub.sqlite`).
    pub fn open(cfg: &HubConfig, hub_key: NodeKey) -> Result<HubState, StoreError> {
        let db = Db::open(&cfg.db_path())?;
        let state = HubState::new(
            db,
            cfg.hub_id.clone(),
            hub_key,
            cfg.nodes.clone(),
            cfg.audit.retention_years.clone(),
            cfg.audit.segment,
        )?;
        state.set_shard(cfg.shard.clone());
        Ok(state)
    }

    /// Restrict this hub to the nodes `shard` owns (once, right after opening).
    pub fn set_shard(&self, shard: crate::shard::ShardConfig) {
        if self.inner.shard.set(shard).is_err() {
            tracing::warn!("shard ownership already set; ignoring the second setting");
        }
    }

    /// Whether this hub shard owns `node` (unregistered nodes are not owned).
    pub fn owns(&self, node: &NodeId) -> bool {
        match (self.inner.nodes.get(node), self.inner.shard.get()) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(e), Some(s)) => s.owns(node, &e.reg.jurisdiction),
        }
    }

    fn check_owned(&self, node: &NodeId) -> Result<(), StoreError> {
        if self.inner.nodes.contains_key(node) && !self.owns(node) {
            return Err(StoreError::NotOwned {
                node: node.clone(),
                shard: self
                    .inner
                    .shard
                    .get()
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Build the state over an open database, registering `nodes` (new ones are inserted; a
    /// node already known with a different jurisdiction or key is refused).
    pub fn new(
        db: Db,
        hub_id: String,
        hub_key: NodeKey,
        nodes: Vec<NodeConfig>,
        retention_years: BTreeMap<Jurisdiction, u16>,
        segment: SegmentPolicy,
    ) -> Result<HubState, StoreError> {
        let mut entries = BTreeMap::new();
        {
            let mut conn = db.conn();
            let tx = conn.transaction()?;
            for n in nodes {
                let existing: Option<(String, String)> = tx
                    .query_row(
                        "SELECT jurisdiction, public_key FROM nodes WHERE id = ?1",
                        [n.id.as_str()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let config = format!("{}/{}", n.jurisdiction, n.public_key.to_hex());
                match existing {
                    None => {
                        tx.execute(
                            "INSERT INTO nodes (id, jurisdiction, public_key) VALUES (?1, ?2, ?3)",
                            params![
                                n.id.as_str(),
                                n.jurisdiction.as_str(),
                                n.public_key.to_hex()
                            ],
                        )?;
                    }
                    Some((j, k)) if format!("{j}/{k}") != config => {
                        return Err(StoreError::RegistrationMismatch {
                            node: n.id.clone(),
                            db: format!("{j}/{k}"),
                            config,
                        });
                    }
                    Some(_) => {}
                }
                let (seq, hash, ts, flagged, reason): (i64, String, i64, bool, Option<String>) = tx.query_row(
                    "SELECT acked_seq, acked_hash, acked_ts, flagged, flag_reason FROM nodes WHERE id = ?1",
                    [n.id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )?;
                let hash = RecordHash::from_hex(&hash).ok_or_else(|| {
                    StoreError::Corrupt(format!("node {} acked_hash {hash:?}", n.id))
                })?;
                let up_head = ChainHead {
                    seq: Seq(seq as u64),
                    hash,
                    timestamp: UnixMillis(ts),
                };
                let down_head = down::head(&tx, &n.id)?.seq;
                let live = NodeLive {
                    up_head,
                    flagged: flagged.then(|| reason.unwrap_or_default()),
                };
                entries.insert(
                    n.id.clone(),
                    NodeEntry {
                        reg: n,
                        live: Mutex::new(live),
                        down_tx: watch::Sender::new(down_head),
                    },
                );
            }
            tx.commit()?;
        }
        let witness = crate::witness::Witness::open(&db.conn())?;
        let audit = AuditPolicy {
            segment,
            retention_years,
            hub_public: hub_key.public(),
        };
        Ok(HubState {
            inner: Arc::new(Inner {
                db,
                hub_id,
                hub_key,
                nodes: entries,
                audit,
                metrics: Metrics::default(),
                audit_wakeup: Notify::new(),
                witness,
                shard: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn hub_id(&self) -> &str {
        &self.inner.hub_id
    }
    pub fn hub_public_key(&self) -> outpost_core::log::PublicKey {
        self.inner.hub_key.public()
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }
    pub(crate) fn hub_key(&self) -> &NodeKey {
        &self.inner.hub_key
    }
    pub(crate) fn audit_policy(&self) -> &AuditPolicy {
        &self.inner.audit
    }
    pub(crate) fn audit_wakeup(&self) -> &Notify {
        &self.inner.audit_wakeup
    }
    pub(crate) fn witness(&self) -> &crate::witness::Witness {
        &self.inner.witness
    }
    /// Registered nodes, in id order.
    pub fn registered_nodes(&self) -> impl Iterator<Item = &NodeConfig> {
        self.inner.nodes.values().map(|e| &e.reg)
    }
    pub fn registration(&self, node: &NodeId) -> Option<&NodeConfig> {
        self.inner.nodes.get(node).map(|e| &e.reg)
    }

    fn entry(&self, node: &NodeId) -> Result<&NodeEntry, StoreError> {
        self.inner
            .nodes
            .get(node)
            .ok_or_else(|| StoreError::UnknownNode(node.clone()))
    }

    /// Run blocking database work off the async runtime.
    pub(crate) async fn blocking<R: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&HubState) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| E::from(StoreError::Task(e.to_string())))?
    }

    // ---- upstream -----------------------------------------------------------------------

    /// The durable head of `node`'s upstream log.
    pub fn upstream_head(&self, node: &NodeId) -> Result<ChainHead, StoreError> {
        self.check_owned(node)?;
        Ok(self
            .entry(node)?
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .up_head)
    }

    /// Durably commit verified, consecutive records of `node`'s log (see the module docs).
    /// Records at or below the committed head are accepted again only with identical hashes;
    /// a different hash is equivocation and flags the node. Returns the new durable head.
    pub fn commit_upstream_blocking(
        &self,
        node: &NodeId,
        records: Vec<(Frame, RecordBody)>,
        now: UnixMillis,
    ) -> Result<Seq, StoreError> {
        let entry = self.entry(node)?;
        self.check_owned(node)?;
        if let Some(reason) = entry
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .flagged
            .clone()
        {
            return Err(StoreError::Flagged {
                node: node.clone(),
                reason,
            });
        }
        let result = {
            let mut conn = self.inner.db.conn();
            self.commit_tx(&mut conn, node, records, now)
        };
        match result {
            Ok((head, flags, effects)) => {
                entry.live.lock().unwrap_or_else(|p| p.into_inner()).up_head = head;
                for reason in flags {
                    tracing::warn!(%node, %reason, "node flagged");
                    entry.live.lock().unwrap_or_else(|p| p.into_inner()).flagged = Some(reason);
                }
                self.after_commit(effects);
                Ok(head.seq)
            }
            Err(e @ StoreError::Equivocation { .. }) => {
                self.flag(node, &e.to_string());
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::type_complexity)]
    fn commit_tx(
        &self,
        conn: &mut Connection,
        node: &NodeId,
        records: Vec<(Frame, RecordBody)>,
        now: UnixMillis,
    ) -> Result<(ChainHead, Vec<String>, TxEffects), StoreError> {
        let tx = conn.transaction()?;
        let (seq, hash, ts): (i64, String, i64) = tx.query_row(
            "SELECT acked_seq, acked_hash, acked_ts FROM nodes WHERE id = ?1",
            [node.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut head = ChainHead {
            seq: Seq(seq as u64),
            hash: RecordHash::from_hex(&hash)
                .ok_or_else(|| StoreError::Corrupt(format!("node {node} acked_hash {hash:?}")))?,
            timestamp: UnixMillis(ts),
        };
        let expected_log = up_log_id(node);
        let mut new_bets: Vec<BetId> = Vec::new();
        // Events the hub learns of in this commit: results held for them are looked at again.
        let mut new_events: Vec<EventId> = Vec::new();
        // Problems with a record's *content* (its signature is fine) flag the node but do not
        // refuse the commit: the record is evidence and must be kept, and refusing it would
        // stall replication of everything after it.
        let mut flags: Vec<String> = Vec::new();
        let mut inserted = false;
        // Prepared once per connection (statement cache), not once per record.
        let mut insert = tx.prepare_cached(
            "INSERT INTO records (node_id, seq, kind, ts_ms, hash, frame) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (frame, body) in records {
            if body.log_id != expected_log {
                return Err(StoreError::WrongLog {
                    node: node.clone(),
                    seq: body.seq,
                    found: body.log_id,
                    expected: expected_log,
                });
            }
            let hash = frame.hash();
            if body.seq <= head.seq {
                let stored: Option<String> = tx
                    .query_row(
                        "SELECT hash FROM records WHERE node_id = ?1 AND seq = ?2",
                        params![node.as_str(), body.seq.0 as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                match stored {
                    Some(s) if s == hash.to_hex() => continue,
                    Some(s) => {
                        return Err(StoreError::Equivocation {
                            node: node.clone(),
                            seq: body.seq,
                            stored: s,
                            offered: hash.to_hex(),
                        });
                    }
                    None => {
                        return Err(StoreError::Corrupt(format!(
                            "node {node} acked through {} but record {} is missing",
                            head.seq, body.seq
                        )));
                    }
                }
            }
            if body.seq != head.seq.next() || body.prev_hash != head.hash {
                return Err(StoreError::NotContiguous {
                    node: node.clone(),
                    seq: body.seq,
                    head: head.seq,
                });
            }
            insert.execute(params![
                node.as_str(),
                body.seq.0 as i64,
                body.kind as u8 as i64,
                body.timestamp.0,
                hash.to_hex(),
                frame.encode()
            ])?;
            inserted = true;
            if body.kind == RecordKind::MarketOpened
                && let Ok(EdgeEvent::MarketOpened(m)) =
                    EdgeEvent::from_payload(body.kind, &body.payload)
                && crate::settlement::note_event(&tx, &m.event.event_id, now)?
            {
                new_events.push(m.event.event_id);
            }
            if body.kind == RecordKind::BetPlaced {
                match EdgeEvent::from_payload(body.kind, &body.payload) {
                    Ok(EdgeEvent::BetPlaced(bet)) => {
                        match insert_bet(&tx, node, body.seq, body.timestamp, &bet)? {
                            Ok(()) => {
                                for leg in &bet.legs {
                                    if crate::settlement::note_event(&tx, &leg.event_id, now)? {
                                        new_events.push(leg.event_id.clone());
                                    }
                                }
                                new_bets.push(bet.bet_id)
                            }
                            Err(reason) => flags.push(reason),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => flags.push(format!("record {} of node {node}: {e}", body.seq)),
                }
            }
            head = ChainHead {
                seq: body.seq,
                hash,
                timestamp: body.timestamp,
            };
        }
        drop(insert);
        tx.execute(
            "UPDATE nodes SET acked_seq = ?2, acked_hash = ?3, acked_ts = ?4, edge_head = MAX(edge_head, ?2) WHERE id = ?1",
            params![node.as_str(), head.seq.0 as i64, head.hash.to_hex(), head.timestamp.0],
        )?;
        if let Some(reason) = flags.last() {
            tx.execute(
                "UPDATE nodes SET flagged = 1, flag_reason = ?2 WHERE id = ?1",
                params![node.as_str(), reason],
            )?;
        }
        let mut effects = TxEffects::default();
        if inserted {
            outbox::note_pending(&tx, node, Direction::Up, now)?;
        }
        // Results reported for events the hub did not know yet are evaluated again.
        for ev in &new_events {
            self.evaluate_reports(&tx, ev, now, &mut effects)?;
        }
        // A bet placed on an event whose result is already in settles at once.
        for bet in &new_bets {
            self.settle_in_tx(&tx, bet, now, &mut effects)?;
        }
        let n = self.cut_segments(&tx, node, &mut effects, inserted, now)?;
        effects.segments += n;
        tx.commit()?;
        Ok((head, flags, effects))
    }

    /// Cut audit segments for `node`'s upstream log (if it grew) and for every down chain that
    /// grew in this transaction.
    fn cut_segments(
        &self,
        tx: &Transaction<'_>,
        node: &NodeId,
        effects: &mut TxEffects,
        up_grew: bool,
        now: UnixMillis,
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        if up_grew {
            n += outbox::cut(tx, &self.inner.audit, node, Direction::Up, now, false)?;
        }
        n += self.cut_down_segments(tx, effects, now)?;
        Ok(n)
    }

    /// Write the transaction's buffered down records, then cut their audit segments.
    pub(crate) fn cut_down_segments(
        &self,
        tx: &Transaction<'_>,
        effects: &mut TxEffects,
        now: UnixMillis,
    ) -> Result<usize, StoreError> {
        let started = std::time::Instant::now();
        effects.down.flush(tx, &self.inner.hub_key, now)?;
        let mut n = 0;
        for node in effects.down_heads.keys() {
            let recent = effects.down.take_written(node);
            n += outbox::cut_with(
                tx,
                &self.inner.audit,
                node,
                Direction::Down,
                now,
                false,
                recent,
            )?;
        }
        SettlePhases::add(&self.inner.metrics.settle_phases.flush_ns, started);
        Ok(n)
    }

    /// After a transaction committed: publish down heads, count metrics, wake the uploader.
    pub(crate) fn after_commit(&self, effects: TxEffects) {
        for (node, head) in &effects.down_heads {
            if let Some(e) = self.inner.nodes.get(node) {
                e.down_tx.send_if_modified(|cur| {
                    let grew = *head > *cur;
                    if grew {
                        *cur = *head;
                    }
                    grew
                });
            }
        }
        let m = &self.inner.metrics;
        m.reprocessed_settlements
            .fetch_add(effects.reprocessed, Ordering::Relaxed);
        m.reprocessed_results
            .fetch_add(effects.reprocessed_results, Ordering::Relaxed);
        m.result_alerts_raised
            .fetch_add(effects.alerts, Ordering::Relaxed);
        m.settlements_reversed
            .fetch_add(effects.reversed as u64, Ordering::Relaxed);
        if effects.segments > 0 {
            self.inner.audit_wakeup.notify_one();
        }
    }

    /// Settle `bet_id` inside `tx` if all its legs have results (see `settlement.rs` for the
    /// results side). Keyed by (bet, result version): a second pass changes nothing.
    pub(crate) fn settle_in_tx(
        &self,
        tx: &Transaction<'_>,
        bet_id: &BetId,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<SettleOutcome, StoreError> {
        let row: Option<(String, i64, String)> = tx
            .prepare_cached("SELECT node_id, seq, status FROM bets WHERE bet_id = ?1")?
            .query_row([bet_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((node, seq, status)) = row else {
            return Err(StoreError::Corrupt(format!("bet {bet_id} vanished")));
        };
        if status == "error" {
            return Ok(SettleOutcome::Failed);
        }
        let node =
            NodeId::new(node).map_err(|e| StoreError::Corrupt(format!("bet {bet_id}: {e}")))?;
        let bet = load_bet(tx, &node, seq)?;
        let struck_at: i64 = tx
            .prepare_cached("SELECT ts_ms FROM records WHERE node_id = ?1 AND seq = ?2")?
            .query_row(params![node.as_str(), seq], |r| r.get(0))?;
        let mut results = ResultCache::default();
        // Whether a settlement is in force is the settlement table's answer (`settle_loaded`
        // looks it up), not the bet row's.
        self.settle_loaded(
            tx,
            &node,
            &bet,
            UnixMillis(struck_at),
            false,
            &mut results,
            now,
            effects,
        )
    }

    /// Settle (or correct) one loaded bet. `open`: the bet has no settlement in force, so
    /// there is nothing to compare with or reverse (the bulk pass over a newly final event).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn settle_loaded(
        &self,
        tx: &Transaction<'_>,
        node: &NodeId,
        bet: &BetPlaced,
        struck_at: UnixMillis,
        open: bool,
        results: &mut ResultCache,
        now: UnixMillis,
        effects: &mut TxEffects,
    ) -> Result<SettleOutcome, StoreError> {
        let bet_id = &bet.bet_id;
        // Reconciliation hook: a critical finding suspends settlement of its events.
        for leg in &bet.legs {
            if crate::reconcile::suspend::suspended(tx, &leg.event_id)?.is_some() {
                return Ok(SettleOutcome::NotReady);
            }
        }
        for leg in &bet.legs {
            results.load(tx, &leg.event_id)?;
        }
        let settlement = match settle_bet(node, bet, struck_at, |e| results.get(e)) {
            Ok(None) => return Ok(SettleOutcome::NotReady),
            Ok(Some(s)) => s,
            Err(e) => {
                tracing::error!(bet = %bet_id, error = %e, "bet cannot be settled");
                tx.execute(
                    "UPDATE bets SET status = 'error', settle_error = ?2 WHERE bet_id = ?1",
                    params![bet_id.as_str(), e.to_string()],
                )?;
                return Ok(SettleOutcome::Failed);
            }
        };
        let done: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM settlements WHERE bet_id = ?1 AND result_version = ?2)",
            )?
            .query_row(params![bet_id.as_str(), settlement.result_version], |r| {
                r.get(0)
            })?;
        if done {
            effects.reprocessed += 1;
            return Ok(SettleOutcome::Reprocessed);
        }
        let legs_json = serde_json::to_string(&settlement.leg_results)
            .map_err(|e| StoreError::Corrupt(format!("leg results of {bet_id}: {e}")))?;
        // The settlement in force: the latest one not reversed.
        let current = if open {
            None
        } else {
            crate::settlement::effective_settlement(tx, bet_id)?
        };
        let mut outcome = SettleOutcome::Settled;
        if let Some(cur) = current {
            let same = cur.payout_minor == settlement.payout_minor
                && cur.leg_results.as_deref().is_none_or(|l| l == legs_json);
            if same {
                // A newer result version that does not change this bet: nothing to correct.
                effects.reprocessed += 1;
                return Ok(SettleOutcome::Reprocessed);
            }
            crate::settlement::reverse_in_tx(
                tx,
                self.hub_key(),
                node,
                bet,
                &cur,
                "correction",
                now,
                effects,
            )?;
            outcome = SettleOutcome::Corrected;
        }
        let payout = settlement.payout_minor;
        let version = settlement.result_version;
        let (down_seq, _) = effects.down.append(
            tx,
            &self.inner.hub_key,
            node,
            &HubEvent::Settlement(settlement),
            now,
        )?;
        tx.prepare_cached(
            "INSERT INTO settlements (bet_id, result_version, node_id, down_seq, payout_minor, settled_ms, leg_results) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![bet_id.as_str(), version, node.as_str(), down_seq.0 as i64, payout, now.0, legs_json])?;
        if effects.down_heads.get(node) != Some(&down_seq) {
            effects.down_heads.insert(node.clone(), down_seq);
        }
        effects.settled += 1;
        self.inner
            .metrics
            .settle_progress
            .fetch_add(1, Ordering::Relaxed);
        Ok(outcome)
    }

    /// Mark `node` flagged (persisted); its further records are refused.
    pub fn flag(&self, node: &NodeId, reason: &str) {
        self.flag_in_memory(node, reason);
        self.persist_flag(node, reason);
    }

    /// Takes effect at once for every later commit of the node.
    pub(crate) fn flag_in_memory(&self, node: &NodeId, reason: &str) {
        tracing::warn!(%node, %reason, "flagging node");
        if let Some(e) = self.inner.nodes.get(node) {
            e.live.lock().unwrap_or_else(|p| p.into_inner()).flagged = Some(reason.to_string());
        }
    }

    pub(crate) fn persist_flag(&self, node: &NodeId, reason: &str) {
        let r = self.inner.db.conn().execute(
            "UPDATE nodes SET flagged = 1, flag_reason = ?2 WHERE id = ?1",
            params![node.as_str(), reason],
        );
        if let Err(e) = r {
            // The in-memory flag still refuses the node until restart.
            tracing::error!(%node, error = %e, "could not persist node flag");
        }
    }

    /// Record liveness. Monotonic fields use MAX so late, reordered writes are harmless.
    pub fn touch_blocking(
        &self,
        node: &NodeId,
        edge_head: Seq,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.inner.db.conn().execute(
            "UPDATE nodes SET last_contact_ms = MAX(COALESCE(last_contact_ms, 0), ?2), edge_head = MAX(edge_head, ?3) WHERE id = ?1",
            params![node.as_str(), now_ms, edge_head.0 as i64],
        )?;
        Ok(())
    }

    pub fn down_acked_blocking(&self, node: &NodeId, applied: Seq) -> Result<(), StoreError> {
        self.inner.db.conn().execute(
            "UPDATE nodes SET down_acked = MAX(down_acked, ?2) WHERE id = ?1",
            params![node.as_str(), applied.0 as i64],
        )?;
        Ok(())
    }

    // ---- downstream ---------------------------------------------------------------------

    /// Head of `node`'s down chain, read from the database so that records appended by another
    /// process (`region-hub load-results`) are seen too; wakes subscribers if it grew.
    pub fn down_head(&self, node: &NodeId) -> Seq {
        let db_head = self.inner.db.reader().query_row(
            "SELECT COALESCE(MAX(down_seq), 0) FROM down_records WHERE node_id = ?1",
            [node.as_str()],
            |r| r.get::<_, i64>(0),
        );
        let Some(e) = self.inner.nodes.get(node) else {
            return db_head.map(|s| Seq(s as u64)).unwrap_or(Seq::ZERO);
        };
        if let Ok(s) = db_head {
            let s = Seq(s as u64);
            e.down_tx.send_if_modified(|cur| {
                let grew = s > *cur;
                if grew {
                    *cur = s;
                }
                grew
            });
        }
        *e.down_tx.borrow()
    }

    /// A receiver that changes whenever `node`'s down chain grows.
    pub fn subscribe_down(&self, node: &NodeId) -> watch::Receiver<Seq> {
        match self.inner.nodes.get(node) {
            Some(e) => e.down_tx.subscribe(),
            // Unknown node: a channel that never changes (the session is refused anyway).
            None => watch::Sender::new(Seq::ZERO).subscribe(),
        }
    }

    /// Down frames of `node` with seq > `after`, at most `max`, in order.
    pub fn read_down(
        &self,
        node: &NodeId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<Frame>, StoreError> {
        let conn = self.inner.db.reader();
        let mut stmt =
            conn.prepare_cached("SELECT down_seq, frame FROM down_records WHERE node_id = ?1 AND down_seq > ?2 ORDER BY down_seq LIMIT ?3")?;
        let rows = stmt.query_map(
            params![
                node.as_str(),
                after.0 as i64,
                max.min(i64::MAX as usize) as i64
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, bytes) = row?;
            out.push(
                Frame::decode_exact(&bytes)
                    .map_err(|e| StoreError::Corrupt(format!("down record {node}#{seq}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Poll the database for down records appended by another process and wake sessions.
    pub fn refresh_down_heads(&self) {
        for node in self.inner.nodes.keys() {
            self.down_head(node);
        }
    }
}

/// Insert the `bets` row for a BetPlaced record. The inner `Err` is a reason to flag the node
/// (a bet id already used by a different record), not a database failure.
fn insert_bet(
    tx: &Transaction<'_>,
    node: &NodeId,
    seq: Seq,
    struck: UnixMillis,
    bet: &BetPlaced,
) -> Result<Result<(), String>, StoreError> {
    let existing: Option<(String, i64)> = tx
        .query_row(
            "SELECT node_id, seq FROM bets WHERE bet_id = ?1",
            [bet.bet_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((n, s)) = existing {
        return Ok(Err(format!(
            "bet id {} in record {seq} of node {node} was already placed by record {s} of node {n}",
            bet.bet_id
        )));
    }
    let legs = serde_json::to_string(&bet.legs)
        .map_err(|e| StoreError::Corrupt(format!("legs of {}: {e}", bet.bet_id)))?;
    tx.execute(
        "INSERT INTO bets (bet_id, node_id, seq, player_id, currency, stake_minor, potential_payout_minor, legs_json, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'open')",
        params![
            bet.bet_id.as_str(),
            node.as_str(),
            seq.0 as i64,
            bet.player_id.as_str(),
            bet.currency.code(),
            bet.stake_minor,
            bet.potential_payout_minor,
            legs
        ],
    )?;
    // The compact copy the settle pass reads, once per event (`bet_copy.rs`).
    let copy = crate::bet_copy::encode(bet)
        .map_err(|e| StoreError::Corrupt(format!("bet {}: {e}", bet.bet_id)))?;
    let mut by_bet =
        tx.prepare_cached("INSERT OR IGNORE INTO bet_events (bet_id, event_id) VALUES (?1, ?2)")?;
    let mut by_event = tx.prepare_cached(
        "INSERT OR IGNORE INTO event_bets (event_id, bet_id, node_id, seq, struck_ms, bet) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for leg in &bet.legs {
        by_bet.execute(params![bet.bet_id.as_str(), leg.event_id.as_str()])?;
        by_event.execute(params![
            leg.event_id.as_str(),
            bet.bet_id.as_str(),
            node.as_str(),
            seq.0 as i64,
            struck.0,
            &copy
        ])?;
    }
    Ok(Ok(()))
}

/// The BetPlaced payload of record `seq` of `node` (the stored record is the source of truth).
pub(crate) fn load_bet(tx: &Connection, node: &NodeId, seq: i64) -> Result<BetPlaced, StoreError> {
    let bytes: Vec<u8> = tx
        .prepare_cached("SELECT frame FROM records WHERE node_id = ?1 AND seq = ?2")?
        .query_row(params![node.as_str(), seq], |r| r.get(0))?;
    bet_from_frame(node, seq, &bytes)
}

/// Decode the BetPlaced payload of a stored record frame.
pub(crate) fn bet_from_frame(
    node: &NodeId,
    seq: i64,
    bytes: &[u8],
) -> Result<BetPlaced, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(format!("record {node}#{seq}: {e}"));
    let body = Frame::decode_exact(bytes)
        .map_err(|e| corrupt(e.to_string()))?
        .parse_body()
        .map_err(|e| corrupt(e.to_string()))?;
    match EdgeEvent::from_payload(body.kind, &body.payload).map_err(|e| corrupt(e.to_string()))? {
        EdgeEvent::BetPlaced(b) => Ok(b),
        other => Err(corrupt(format!(
            "expected BetPlaced, found {:?}",
            other.kind()
        ))),
    }
}

#[cfg(test)]
mod tests;
