//! The single writer: owns the edge state, the chain writer and the PII vault, and performs
//! group commit.
//!
//! Requests arrive on a bounded channel. The writer takes everything that is waiting (up to
//! `MAX_GROUP`), decides and applies each in order against the in-memory state, appends the
//! resulting records to the chain, and adds them to the batch pending for the persister thread
//! (`handoff.rs`). The persister takes all that is pending, seals its last record, writes it
//! durably (the store's journal), publishes the new durable head, and only then releases the
//! replies. The store's applier then puts the group into sled and moves the readable head,
//! which readers of the stored log follow. While one
//! group is being flushed the writer keeps deciding into the next one, so throughput is not
//! capped at 1/fsync, and a request waits for at most the flush in progress plus its own.
//!
//! Architecture invariant: no reply (not even a read) is released before every record it could
//! have observed is durable. If persisting fails the process aborts: memory is ahead of disk
//! and the only safe state is the one rebuilt from the log on restart.

use crate::checkpoints::{DurableFeed, Leaf};
use crate::commit_timing::{self, CommitTiming};
use crate::handoff::Handoff;
use crate::store::{CommitGroup, LogStore};
use crate::vault::{Pii, Vault};
use outpost_core::edge::events::{DownRef, EdgeEvent};
use outpost_core::edge::{Command, CommandError, DecideCtx, EdgeState, NodeGateConfig, Reply};
use outpost_core::gate::register::identity_sha256;
use outpost_core::hub::{HubEvent, down_log_id};
use outpost_core::ids::{NodeId, Seq};
use outpost_core::jurisdiction::JurisdictionRules;
use outpost_core::log::{
    ChainHead, ChainVerifier, ChainWriter, Frame, NodeKey, PublicKey, RecordHash, RecordKind,
};
use outpost_core::time::UnixMillis;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

const MAX_GROUP: usize = 1024;
/// The writer waits while this many records are waiting for the persister (back-pressure;
/// about a second of records at full load).
const PENDING_RECORDS_MAX: usize = 32_768;
pub const SNAPSHOT_EVERY_RECORDS: u64 = 100_000;
/// ...and at most one state snapshot per minute: cloning and serialising a large state costs
/// time proportional to the state, so under heavy load a fixed record count would make it
/// a constant tax on every bet.
const SNAPSHOT_MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

type Completion = Box<dyn FnOnce() + Send>;
type ReadFn = Box<dyn FnOnce(&EdgeState, &Vault) -> Completion + Send>;

/// A record one command appended: where it is and its hash. A shop slip prints the hash of
/// the record that issued the ticket; handing it back here saves reading the log to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendedRecord {
    pub seq: Seq,
    pub kind: RecordKind,
    pub hash: RecordHash,
}

/// Where a command's reply goes (released once durable).
pub enum ReplyTo {
    Reply(oneshot::Sender<Result<Reply, CommandError>>),
    /// The reply and the records the command appended (empty for a retry or a refusal).
    WithRecords(oneshot::Sender<(Result<Reply, CommandError>, Vec<AppendedRecord>)>),
}

// A command is most of an op's size; boxing it would cost an allocation per bet to save a
// few hundred bytes per queued op.
#[allow(clippy::large_enum_variant)]
pub enum Op {
    Command {
        cmd: Command,
        pii: Option<Pii>,
        reply: ReplyTo,
    },
    Read(ReadFn),
    ApplyDown {
        frames: Vec<Frame>,
        reply: oneshot::Sender<Result<Seq, String>>,
    },
    /// Put new jurisdiction rules in force (logged as `RulesActivated`).
    SetRules {
        rules: Arc<JurisdictionRules>,
        sha256: String,
        reply: oneshot::Sender<Result<Reply, CommandError>>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("the node's writer has stopped")]
pub struct WriterGone;

#[derive(Clone)]
pub struct WriterHandle {
    /// Each op with when it was queued (for `commit_timing`).
    tx: mpsc::Sender<(std::time::Instant, Op)>,
    durable: watch::Receiver<ChainHead>,
    readable: watch::Receiver<ChainHead>,
    down_applied: watch::Receiver<Seq>,
    rules: watch::Receiver<Arc<JurisdictionRules>>,
}

impl WriterHandle {
    fn send_op(
        &self,
        op: Op,
    ) -> impl Future<Output = Result<(), mpsc::error::SendError<(std::time::Instant, Op)>>> + '_
    {
        self.tx.send((std::time::Instant::now(), op))
    }

    pub async fn command(
        &self,
        cmd: Command,
        pii: Option<Pii>,
    ) -> Result<Result<Reply, CommandError>, WriterGone> {
        self.submit(cmd, pii).await?.await.map_err(|_| WriterGone)
    }

    /// Like [`Self::command`], and also returns the records the command appended.
    pub async fn command_recorded(
        &self,
        cmd: Command,
    ) -> Result<(Result<Reply, CommandError>, Vec<AppendedRecord>), WriterGone> {
        let (reply, rx) = oneshot::channel();
        self.send_op(Op::Command {
            cmd,
            pii: None,
            reply: ReplyTo::WithRecords(reply),
        })
        .await
        .map_err(|_| WriterGone)?;
        rx.await.map_err(|_| WriterGone)
    }

    /// Queue a command and return the receiver of its reply (released once durable), so a
    /// caller can keep several commands in flight while their order is kept.
    pub async fn submit(
        &self,
        cmd: Command,
        pii: Option<Pii>,
    ) -> Result<oneshot::Receiver<Result<Reply, CommandError>>, WriterGone> {
        let (reply, rx) = oneshot::channel();
        self.send_op(Op::Command {
            cmd,
            pii,
            reply: ReplyTo::Reply(reply),
        })
        .await
        .map_err(|_| WriterGone)?;
        Ok(rx)
    }

    /// Run `f` against the state in request order; the result is released once durable.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EdgeState, &Vault) -> T + Send + 'static,
    ) -> Result<T, WriterGone> {
        let (tx, rx) = oneshot::channel();
        let op = Op::Read(Box::new(move |s: &EdgeState, v: &Vault| {
            let out = f(s, v);
            Box::new(move || {
                let _ = tx.send(out);
            }) as Completion
        }));
        self.send_op(op).await.map_err(|_| WriterGone)?;
        rx.await.map_err(|_| WriterGone)
    }

    pub async fn apply_down(&self, frames: Vec<Frame>) -> Result<Seq, String> {
        let (reply, rx) = oneshot::channel();
        self.send_op(Op::ApplyDown { frames, reply })
            .await
            .map_err(|_| WriterGone.to_string())?;
        rx.await.map_err(|_| WriterGone.to_string())?
    }

    /// Activate new rules: they apply to every command decided after the returned record.
    pub async fn set_rules(
        &self,
        rules: Arc<JurisdictionRules>,
        sha256: String,
    ) -> Result<Result<Reply, CommandError>, WriterGone> {
        let (reply, rx) = oneshot::channel();
        self.send_op(Op::SetRules {
            rules,
            sha256,
            reply,
        })
        .await
        .map_err(|_| WriterGone)?;
        rx.await.map_err(|_| WriterGone)
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<JurisdictionRules> {
        self.rules.borrow().clone()
    }

    /// The head of the acknowledged log: durable, perhaps not yet readable from the store.
    pub fn durable(&self) -> watch::Receiver<ChainHead> {
        self.durable.clone()
    }

    /// The head readers of the store (replication, checkpoints, the log API) may read up to:
    /// durable and in sled. It trails [`Self::durable`] by the applier's queue, usually a
    /// group or none.
    pub fn readable(&self) -> watch::Receiver<ChainHead> {
        self.readable.clone()
    }

    /// Wait until the store shows everything acknowledged before this call (read-your-writes
    /// for readers of the store); returns the readable head then. Usually immediate.
    pub async fn wait_readable(&self) -> Result<ChainHead, WriterGone> {
        let acknowledged = self.durable.borrow().seq;
        let mut readable = self.readable.clone();
        let head = readable
            .wait_for(|h| h.seq >= acknowledged)
            .await
            .map_err(|_| WriterGone)?;
        Ok(*head)
    }
    pub fn down_applied(&self) -> Seq {
        *self.down_applied.borrow()
    }
}

pub struct WriterParts {
    pub state: EdgeState,
    pub vault: Vault,
    pub chain: ChainWriter,
    pub key: NodeKey,
    pub rules: Arc<JurisdictionRules>,
    pub gate: NodeGateConfig,
    pub hub_key: Option<PublicKey>,
    pub store: Arc<LogStore>,
    pub records_since_snapshot: u64,
    /// When to append a balance-snapshot record (see `balance_snapshot.rs`).
    pub balance_snapshots: crate::balance_snapshot::SnapshotClock,
    /// Where durable records go for the Merkle tree (`checkpoints.rs`), if anywhere.
    pub feed: Option<Arc<DurableFeed>>,
}

struct Group {
    commit: CommitGroup,
    /// The tree's view of `commit.frames` (hash and bet id, known as each is appended).
    leaves: Vec<Leaf>,
    completions: Vec<Completion>,
    head: ChainHead,
    down_applied: Seq,
    snapshot: Option<(ChainHead, EdgeState)>,
    /// When the writer handed it to the persister (for `commit_timing`).
    sent: std::time::Instant,
}

impl crate::handoff::Batch for Group {
    fn merge(&mut self, later: Group) {
        self.commit.frames.extend(later.commit.frames);
        self.commit.pii.extend(later.commit.pii);
        self.leaves.extend(later.leaves);
        self.completions.extend(later.completions);
        self.head = later.head;
        self.down_applied = later.down_applied;
        if later.snapshot.is_some() {
            self.snapshot = later.snapshot;
        }
    }
    fn records(&self) -> usize {
        self.commit.frames.len()
    }
}

pub fn now() -> UnixMillis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    UnixMillis(d.as_millis() as i64)
}

/// Start the writer and persister threads.
pub fn spawn(parts: WriterParts) -> WriterHandle {
    let (tx, rx) = mpsc::channel::<(std::time::Instant, Op)>(65_536);
    let timing = Arc::new(CommitTiming::new());
    let (durable_tx, durable_rx) = watch::channel(parts.chain.head());
    let (readable_tx, readable_rx) = watch::channel(parts.chain.head());
    let (down_tx, down_rx) = watch::channel(parts.state.down_applied);
    let (rules_tx, rules_rx) = watch::channel(parts.rules.clone());
    let handoff = Arc::new(Handoff::new(PENDING_RECORDS_MAX));
    let p = Persister {
        store: parts.store.clone(),
        feed: parts.feed.clone(),
        // The persister signs; the writer keeps `parts` whole (a copy, not a second key).
        key: NodeKey::from_hex(&parts.key.seed_hex()).expect("a key's own seed parses"),
        durable: durable_tx,
        readable: Arc::new(readable_tx),
        down: Arc::new(down_tx),
        timing: timing.clone(),
        snapshot_busy: Default::default(),
    };
    let persist = handoff.clone();
    std::thread::Builder::new()
        .name("persister".into())
        .spawn(move || p.run(&persist))
        .expect("spawn persister");
    std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            Writer {
                p: parts,
                rules_tx,
                appended: Vec::new(),
                last_snapshot: std::time::Instant::now(),
                timing,
            }
            .run(rx, &handoff)
        })
        .expect("spawn writer");
    WriterHandle {
        tx,
        durable: durable_rx,
        readable: readable_rx,
        down_applied: down_rx,
        rules: rules_rx,
    }
}

struct Persister {
    store: Arc<LogStore>,
    feed: Option<Arc<DurableFeed>>,
    /// Seals each group it writes: one signature per flush, however many batches it holds.
    key: NodeKey,
    durable: watch::Sender<ChainHead>,
    readable: Arc<watch::Sender<ChainHead>>,
    down: Arc<watch::Sender<Seq>>,
    timing: Arc<CommitTiming>,
    /// A state snapshot is being written (at most one at a time).
    snapshot_busy: Arc<std::sync::atomic::AtomicBool>,
}

impl Persister {
    fn run(self, handoff: &Handoff<Group>) {
        while let Some(g) = handoff.take() {
            self.timing.add(commit_timing::PWAIT, g.sent.elapsed());
            self.persist(g);
        }
    }

    fn persist(&self, mut g: Group) {
        if let Some((_, last)) = g.commit.frames.last_mut() {
            ChainWriter::seal(last, &self.key);
            let (feed, readable, down) =
                (self.feed.clone(), self.readable.clone(), self.down.clone());
            let (leaves, head, down_applied) =
                (std::mem::take(&mut g.leaves), g.head, g.down_applied);
            let on_applied = Box::new(move || {
                // Fed before the readable head moves, so the checkpoint task woken by it
                // finds them.
                if let Some(f) = &feed {
                    f.push(leaves);
                }
                readable.send_replace(head);
                down.send_replace(down_applied);
            });
            if let Err(e) = self
                .store
                .commit_durable(&g.commit, &self.timing, on_applied)
            {
                tracing::error!(
                    "cannot make the log durable: {e}; aborting (state is rebuilt from the log on restart)"
                );
                std::process::abort();
            }
            self.durable.send_replace(g.head);
        }
        let t = std::time::Instant::now();
        let ops = g.completions.len();
        for c in g.completions {
            c();
        }
        self.timing.add(commit_timing::RELEASE, t.elapsed());
        self.timing.group_done(ops, g.commit.frames.len());
        // Serialised and stored on its own thread, so the next commit group is not held up
        // behind a large snapshot. At most one at a time; one skipped is only a longer replay.
        if let Some((head, state)) = g.snapshot
            && !self
                .snapshot_busy
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let (store, busy) = (self.store.clone(), self.snapshot_busy.clone());
            std::thread::spawn(move || {
                write_snapshot(&store, head, &state);
                busy.store(false, std::sync::atomic::Ordering::Release);
            });
        }
    }
}

fn write_snapshot(store: &LogStore, head: ChainHead, state: &EdgeState) {
    // Serialised straight from the state (no intermediate `serde_json::Value` tree, which
    // would take several times the state's memory).
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        seq: Seq,
        hash: String,
        state: &'a EdgeState,
    }
    let doc = Doc {
        seq: head.seq,
        hash: head.hash.to_hex(),
        state,
    };
    match serde_json::to_vec(&doc) {
        Ok(bytes) => {
            if let Err(e) = store.put_snapshot(bytes) {
                tracing::warn!("snapshot at seq {} not written: {e}", head.seq);
            }
        }
        Err(e) => tracing::warn!("snapshot not serialised: {e}"),
    }
}

struct Writer {
    p: WriterParts,
    rules_tx: watch::Sender<Arc<JurisdictionRules>>,
    /// The records the last executed command appended (the chain head gives each hash as it
    /// is appended, so nobody has to read the log back to find them).
    appended: Vec<AppendedRecord>,
    last_snapshot: std::time::Instant,
    timing: Arc<CommitTiming>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<(std::time::Instant, Op)>, persist: &Handoff<Group>) {
        while let Some((queued, first)) = rx.blocking_recv() {
            let started = std::time::Instant::now();
            self.timing.add(commit_timing::QUEUE, started - queued);
            let mut g = Group {
                commit: CommitGroup::default(),
                leaves: Vec::new(),
                completions: Vec::new(),
                head: self.p.chain.head(),
                down_applied: self.p.state.down_applied,
                snapshot: None,
                sent: started,
            };
            self.handle(first, &mut g);
            while g.commit.frames.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok((_, op)) => self.handle(op, &mut g),
                    Err(_) => break,
                }
            }
            self.p.balance_snapshots.note(g.commit.frames.len() as u64);
            self.append_balance_snapshot_if_due(&mut g);
            g.head = self.p.chain.head();
            g.down_applied = self.p.state.down_applied;
            self.p.records_since_snapshot += g.commit.frames.len() as u64;
            if self.p.records_since_snapshot >= SNAPSHOT_EVERY_RECORDS
                && self.last_snapshot.elapsed() >= SNAPSHOT_MIN_INTERVAL
            {
                self.p.records_since_snapshot = 0;
                self.last_snapshot = std::time::Instant::now();
                g.snapshot = Some((g.head, self.p.state.clone()));
            }
            let t = std::time::Instant::now();
            self.timing.add(commit_timing::BUILD, t - started);
            g.sent = t;
            persist.put(g);
            self.timing.add(commit_timing::HANDOFF, t.elapsed());
        }
        persist.close();
    }

    fn handle(&mut self, op: Op, g: &mut Group) {
        match op {
            Op::Command { cmd, pii, reply } => {
                let r = self.execute(cmd, pii, g);
                match reply {
                    ReplyTo::Reply(reply) => g.completions.push(Box::new(move || {
                        let _ = reply.send(r);
                    })),
                    ReplyTo::WithRecords(reply) => {
                        let records = self.appended.clone();
                        g.completions.push(Box::new(move || {
                            let _ = reply.send((r, records));
                        }))
                    }
                }
            }
            Op::Read(f) => g.completions.push(f(&self.p.state, &self.p.vault)),
            Op::ApplyDown { frames, reply } => {
                let r = self.apply_down(frames, g);
                g.completions.push(Box::new(move || {
                    let _ = reply.send(r);
                }));
            }
            Op::SetRules {
                rules,
                sha256,
                reply,
            } => {
                let old = std::mem::replace(&mut self.p.rules, rules);
                let r = self.execute(
                    Command::ActivateRules {
                        rules_sha256: sha256,
                    },
                    None,
                    g,
                );
                if r.is_ok() {
                    self.rules_tx.send_replace(self.p.rules.clone());
                } else {
                    self.p.rules = old;
                }
                g.completions.push(Box::new(move || {
                    let _ = reply.send(r);
                }));
            }
        }
    }

    /// Decide, apply, append. Returns the reply to release once the group is durable.
    fn execute(
        &mut self,
        mut cmd: Command,
        pii: Option<Pii>,
        g: &mut Group,
    ) -> Result<Reply, CommandError> {
        // Prefetch: the gate needs the date of birth and the register identity, which live
        // only in the vault.
        let vault_pii = match &cmd {
            Command::PlaceBet { player_id, .. }
            | Command::Deposit { player_id, .. }
            | Command::Withdraw { player_id, .. } => self.p.vault.get(player_id),
            // A shop account bet runs the full gate for its player, register included.
            Command::Shop(outpost_core::edge::shop::ShopCommand::PlaceBet {
                holder: outpost_core::edge::shop::Holder::Account { player_id, .. },
                ..
            }) => self.p.vault.get(player_id),
            _ => None,
        };
        let date_of_birth = vault_pii.map(|p| p.date_of_birth);
        let identity = match (vault_pii, &self.p.rules.register) {
            (Some(p), Some(_)) => Some(identity_sha256(&p.name, p.date_of_birth)),
            _ => None,
        };
        if let Command::PlaceBet {
            date_of_birth: dob, ..
        } = &mut cmd
        {
            *dob = date_of_birth;
        }
        self.appended.clear();
        let at = now().max(self.p.chain.head().timestamp);
        let decided = self.p.state.decide(
            cmd,
            &DecideCtx {
                now: at,
                rules: &self.p.rules,
                gate: &self.p.gate,
                identity_sha256: identity.as_deref(),
                date_of_birth,
            },
        )?;
        for ev in &decided.events {
            if let Err(e) = self.p.state.apply(ev, at) {
                // decide() produced an event apply() refuses: a bug. Memory may be ahead of disk.
                tracing::error!("decided event does not apply: {e}; aborting");
                std::process::abort();
            }
            let frame = self.p.chain.append(ev.kind(), at, ev.to_payload());
            let head = self.p.chain.head();
            self.appended.push(AppendedRecord {
                seq: head.seq,
                kind: ev.kind(),
                hash: head.hash,
            });
            g.leaves.push(Leaf {
                seq: head.seq,
                hash: head.hash,
                bet_id: match ev {
                    EdgeEvent::BetPlaced(b) => Some(b.bet_id.clone()),
                    _ => None,
                },
            });
            g.commit.frames.push((head.seq, frame));
            if let (EdgeEvent::PlayerRegistered(r), Some(pii)) = (ev, &pii) {
                let bytes = serde_json::to_vec(pii).expect("PII serialises");
                g.commit.pii.push((r.player_id.clone(), bytes));
                self.p.vault.insert(r.player_id.clone(), pii.clone());
            }
        }
        Ok(decided.reply)
    }

    /// Append a balance snapshot as the group's last records when the clock says so.
    fn append_balance_snapshot_if_due(&mut self, g: &mut Group) {
        let at = now().max(self.p.chain.head().timestamp);
        if !self.p.balance_snapshots.due(at) {
            return;
        }
        let as_of = self.p.chain.head().seq;
        for ev in outpost_core::edge::balance_snapshot::snapshot_events(&self.p.state, as_of) {
            if let Err(e) = self.p.state.apply(&ev, at) {
                tracing::error!("balance snapshot does not apply: {e}; aborting");
                std::process::abort();
            }
            let frame = self.p.chain.append(ev.kind(), at, ev.to_payload());
            let head = self.p.chain.head();
            g.leaves.push(Leaf {
                seq: head.seq,
                hash: head.hash,
                bet_id: None,
            });
            g.commit.frames.push((head.seq, frame));
        }
        self.p.balance_snapshots.done(at);
    }

    /// Verify hub downstream frames (the hub's chain for this node) and apply each in order.
    fn apply_down(&mut self, frames: Vec<Frame>, g: &mut Group) -> Result<Seq, String> {
        let hub_key = self.p.hub_key.ok_or("no hub public key configured")?;
        let node: NodeId = self
            .p
            .state
            .node
            .as_ref()
            .ok_or("node not initialised")?
            .node_id
            .clone();
        let s = &self.p.state;
        let start = ChainHead {
            seq: s.down_applied,
            hash: RecordHash::from_hex(&s.down_hash).ok_or("corrupt down hash in state")?,
            timestamp: UnixMillis(s.down_timestamp_ms),
        };
        let mut verifier = ChainVerifier::new(down_log_id(&node), hub_key, start);
        for f in frames {
            // Duplicates of already applied records are expected after a reconnect.
            let seq = f
                .parse_body()
                .map(|b| b.seq)
                .map_err(|e| format!("down frame: {e}"))?;
            if seq <= self.p.state.down_applied {
                continue;
            }
            for (frame, body) in verifier
                .push(f)
                .map_err(|e| format!("hub chain does not verify: {e}"))?
            {
                let event = HubEvent::from_payload(body.kind, &body.payload)?;
                let down = DownRef {
                    down_seq: body.seq,
                    hub_record_sha256: frame.hash().to_hex(),
                    hub_timestamp_ms: body.timestamp.0,
                };
                self.execute(Command::ApplyDown { down, event }, None, g)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(self.p.state.down_applied)
    }
}
