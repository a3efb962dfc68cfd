//! Signed tree heads ("checkpoints") over the node's whole log, and the proofs served from
//! them. Format and rules: `docs/checkpoints.md`.
//!
//! The checkpointer keeps an RFC 9162 Merkle tree over the *durable* records (leaf data = the
//! 32-byte record hash), extended as the durable head advances — never rehashed. It signs a
//! head (C2SP signed note, the node's key) over the first `size` records whenever the log has
//! grown and either a second has passed since the last head or `every_records` records were
//! added, stores it durably (sled key `C` + size, beside the log) and only then hands it to the
//! replication link. An idle log keeps its last head. Heads are not log records: a head is a
//! statement *about* the log, so signing one never changes the tree it describes.
//!
//! The hub cosigns heads that match its copy of the log; the link hands the cosignature back
//! here, where it is checked against the hub's key before being stored with its head.

use crate::store::LogStore;
use outpost_core::edge::events::EdgeEvent;
use outpost_core::ids::{LogId, Seq};
use outpost_core::log::merkle::{LeafSource, MerkleTree, ProofError, TreeHash, leaf_hash};
use outpost_core::log::{
    Checkpoint, NodeKey, Note, PublicKey, RecordKind, origin_for, verify_cosignature,
};
use outpost_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// How often a grown log gets a new head, at most this long after growing.
pub const HEAD_INTERVAL: Duration = Duration::from_secs(1);
/// A new head after this many records even within the interval.
pub const HEAD_EVERY_RECORDS: u64 = 1000;
/// After catching up, the checkpointer lets the log grow this long before it looks again.
/// Why: it used to wake (and hand a task to the blocking pool) on every durable commit
/// group; at 2,000 bets/s in groups of 2–3 bets that was ~800 thread wake-ups a second for
/// a few tree hashes each.
const CATCH_UP_EVERY: Duration = Duration::from_millis(20);
/// The tree keeps subtrees of `2^TREE_MIN_LEVEL` records and more in memory (about 0.06 bytes
/// per record plus one block); proofs re-read at most two blocks of records from the log.
const TREE_MIN_LEVEL: u32 = 10;

/// Leaf hashes read back from the log, for proofs over forgotten low levels of the tree.
struct StoreLeaves<'a>(&'a LogStore);

impl LeafSource for StoreLeaves<'_> {
    fn leaf_hashes(&mut self, start: u64, end: u64) -> Result<Vec<TreeHash>, String> {
        let frames = self
            .0
            .read_frames(Seq(start + 1), (end - start) as usize)
            .map_err(|e| e.to_string())?;
        Ok(frames.iter().map(|f| leaf_hash(&f.hash().0)).collect())
    }
}

/// A head as stored on the edge: the node's signed note plus the cosignature lines received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredHead {
    pub size: u64,
    pub root_hex: String,
    pub timestamp_ms: i64,
    /// The node's signed note (C2SP), without cosignatures.
    pub note: String,
    /// Cosignature lines (`— witness base64`), one per witness.
    #[serde(default)]
    pub cosignatures: Vec<String>,
}

impl StoredHead {
    /// The complete note: the node's signature followed by every cosignature.
    pub fn full_note(&self) -> String {
        Note::with_lines(&self.note, &self.cosignatures)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("stored checkpoint is unreadable: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Proof(#[from] ProofError),
    #[error("cosignature refused: {0}")]
    Cosignature(String),
}

/// One durable record as the tree needs it: its hash, and the bet id of a `bet_placed`.
pub struct Leaf {
    pub seq: Seq,
    pub hash: outpost_core::log::RecordHash,
    pub bet_id: Option<outpost_core::ids::BetId>,
}

/// Leaves handed over by the writer's persister once their group is durable, so the tree
/// grows without reading every record back from sled and decoding its JSON (which cost about
/// a tenth of the node's CPU per bet). Anything not found here (a gap, start-up) is still
/// read from the store.
#[derive(Default)]
pub struct DurableFeed(std::sync::Mutex<std::collections::VecDeque<Leaf>>);

/// If nobody drains the feed (no checkpoint task), stop holding leaves past this many; the
/// tree then catches up from the store as before.
const FEED_MAX: usize = 1 << 20;

impl DurableFeed {
    pub fn push(&self, leaves: impl IntoIterator<Item = Leaf>) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.extend(leaves);
        if q.len() > FEED_MAX {
            q.clear();
        }
    }
}

struct Tree {
    merkle: MerkleTree,
    /// Bet id → seq of its `bet_placed` record, for proofs by bet id.
    bets: HashMap<String, u64>,
}

pub struct Checkpointer {
    store: Arc<LogStore>,
    key: NodeKey,
    origin: String,
    hub_key: Option<PublicKey>,
    tree: RwLock<Tree>,
    feed: Arc<DurableFeed>,
    latest: watch::Sender<Option<StoredHead>>,
    /// `(size, note)` of the newest head, for the replication link.
    heads: watch::Sender<Option<(Seq, String)>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Checkpointer {
    /// Build the tree over the durable log through `durable` (blocking: reads the whole log).
    pub fn open(
        store: Arc<LogStore>,
        log_id: &LogId,
        key: NodeKey,
        hub_key: Option<PublicKey>,
        durable: Seq,
    ) -> Result<Checkpointer, CheckpointError> {
        let latest = match store.latest_checkpoint()? {
            Some(b) => Some(
                serde_json::from_slice::<StoredHead>(&b)
                    .map_err(|e| CheckpointError::Corrupt(e.to_string()))?,
            ),
            None => None,
        };
        let heads = latest.as_ref().map(|h| (Seq(h.size), h.note.clone()));
        let c = Checkpointer {
            store,
            key,
            origin: origin_for(log_id.as_str()),
            hub_key,
            tree: RwLock::new(Tree {
                merkle: MerkleTree::with_min_level(TREE_MIN_LEVEL),
                bets: HashMap::new(),
            }),
            feed: Arc::default(),
            latest: watch::Sender::new(latest),
            heads: watch::Sender::new(heads),
        };
        c.catch_up(durable)?;
        Ok(c)
    }

    /// Where the persister hands over durable leaves (see [`DurableFeed`]).
    pub fn feed(&self) -> Arc<DurableFeed> {
        self.feed.clone()
    }

    /// Extend the tree with durable records up to `durable`: from the feed where it holds the
    /// next records, otherwise from the store.
    fn catch_up(&self, durable: Seq) -> Result<(), CheckpointError> {
        loop {
            let from = Seq(self.size() + 1);
            if from > durable {
                return Ok(());
            }
            if self.catch_up_from_feed(durable) > 0 {
                continue;
            }
            let max = (durable.0 - from.0 + 1).min(4096) as usize;
            let frames = self.store.read_frames(from, max)?;
            if frames.is_empty() {
                return Ok(());
            }
            let mut t = self.tree.write().unwrap_or_else(|p| p.into_inner());
            for (i, f) in frames.iter().enumerate() {
                let seq = from.0 + i as u64;
                t.merkle.push(&f.hash().0);
                if let Ok(body) = f.parse_body()
                    && body.kind == RecordKind::BetPlaced
                    && let Ok(EdgeEvent::BetPlaced(b)) =
                        EdgeEvent::from_payload(body.kind, &body.payload)
                {
                    t.bets.insert(b.bet_id.to_string(), seq);
                }
            }
        }
    }

    /// Take leaves from the feed while they continue the tree and are durable; returns how
    /// many were added. Leaves the tree already has are dropped; a gap means the rest comes
    /// from the store.
    fn catch_up_from_feed(&self, durable: Seq) -> usize {
        let mut q = self.feed.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = self.tree.write().unwrap_or_else(|p| p.into_inner());
        let mut added = 0;
        while let Some(leaf) = q.front() {
            let next = t.merkle.size() + 1;
            if leaf.seq.0 < next {
                q.pop_front();
                continue;
            }
            if leaf.seq.0 != next || leaf.seq > durable {
                break;
            }
            let leaf = q.pop_front().expect("front exists");
            t.merkle.push(&leaf.hash.0);
            if let Some(b) = leaf.bet_id {
                t.bets.insert(b.to_string(), leaf.seq.0);
            }
            added += 1;
        }
        added
    }

    /// Number of records in the tree.
    pub fn size(&self) -> u64 {
        self.tree
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .merkle
            .size()
    }

    /// Sign, store and publish a head over the whole tree (if it grew since the last head).
    fn sign_head(&self) -> Result<Option<StoredHead>, CheckpointError> {
        let (size, root) = {
            let t = self.tree.read().unwrap_or_else(|p| p.into_inner());
            (t.merkle.size(), t.merkle.root())
        };
        if size == 0
            || self
                .latest
                .borrow()
                .as_ref()
                .is_some_and(|h| h.size >= size)
        {
            return Ok(None);
        }
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            timestamp: UnixMillis(now_ms()),
        };
        let head = StoredHead {
            size,
            root_hex: hex::encode(root),
            timestamp_ms: cp.timestamp.0,
            note: cp.sign(&self.origin, &self.key),
            cosignatures: Vec::new(),
        };
        self.persist(&head)?;
        self.latest.send_replace(Some(head.clone()));
        self.heads
            .send_replace(Some((Seq(size), head.note.clone())));
        Ok(Some(head))
    }

    fn persist(&self, head: &StoredHead) -> Result<(), CheckpointError> {
        let json = serde_json::to_vec(head).map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
        self.store.put_checkpoint(Seq(head.size), json)?;
        Ok(())
    }

    pub fn stored(&self, size: u64) -> Result<Option<StoredHead>, CheckpointError> {
        match self.store.checkpoint(Seq(size))? {
            Some(b) => Ok(Some(
                serde_json::from_slice(&b).map_err(|e| CheckpointError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    pub fn latest(&self) -> Option<StoredHead> {
        self.latest.borrow().clone()
    }

    /// For the replication link: the newest head to send.
    pub fn subscribe_heads(&self) -> watch::Receiver<Option<(Seq, String)>> {
        self.heads.subscribe()
    }

    /// Verify a cosignature line from the hub and store it with the head of `size` records.
    pub fn add_cosignature(&self, size: Seq, line: &str) -> Result<(), CheckpointError> {
        let refuse = |m: String| CheckpointError::Cosignature(m);
        let Some(hub_key) = &self.hub_key else {
            return Err(refuse("no hub key configured".into()));
        };
        let Some(mut head) = self.stored(size.0)? else {
            return Err(refuse(format!("no head of size {size} was signed here")));
        };
        // `— <witness name> <base64>`: the name is everything between the dash and the last space.
        let witness = line
            .strip_prefix("\u{2014} ")
            .and_then(|r| r.rsplit_once(' '))
            .map(|(name, _)| name.to_owned())
            .ok_or_else(|| refuse("not a note signature line".into()))?;
        let body = Note::parse(&head.note)
            .map_err(|e| CheckpointError::Corrupt(e.to_string()))?
            .body;
        verify_cosignature(&body, line, &witness, hub_key).map_err(|e| refuse(e.to_string()))?;
        if head.cosignatures.iter().any(|l| l == line) {
            return Ok(());
        }
        head.cosignatures
            .retain(|l| !l.starts_with(&format!("\u{2014} {witness} ")));
        head.cosignatures.push(line.to_owned());
        self.persist(&head)?;
        self.latest.send_if_modified(|cur| match cur {
            Some(c) if c.size == head.size => {
                *c = head.clone();
                true
            }
            _ => false,
        });
        Ok(())
    }

    /// The newest head that carries at least one cosignature.
    pub fn latest_cosigned(&self) -> Result<Option<StoredHead>, CheckpointError> {
        if let Some(h) = self.latest()
            && !h.cosignatures.is_empty()
        {
            return Ok(Some(h));
        }
        // Heads are at most one per second of activity; look back over the last few thousand.
        for bytes in self.store.checkpoints_newest_first(10_000)? {
            let h: StoredHead = serde_json::from_slice(&bytes)
                .map_err(|e| CheckpointError::Corrupt(e.to_string()))?;
            if !h.cosignatures.is_empty() {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    pub fn bet_seq(&self, bet_id: &str) -> Option<u64> {
        self.tree
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .bets
            .get(bet_id)
            .copied()
    }

    pub fn root_at(&self, size: u64) -> Result<TreeHash, CheckpointError> {
        let t = self.tree.read().unwrap_or_else(|p| p.into_inner());
        Ok(t.merkle.root_at_with(size, &mut StoreLeaves(&self.store))?)
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<TreeHash>, CheckpointError> {
        let t = self.tree.read().unwrap_or_else(|p| p.into_inner());
        Ok(t.merkle
            .inclusion_proof_with(index, size, &mut StoreLeaves(&self.store))?)
    }

    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<TreeHash>, CheckpointError> {
        let t = self.tree.read().unwrap_or_else(|p| p.into_inner());
        Ok(t.merkle
            .consistency_proof_with(first, second, &mut StoreLeaves(&self.store))?)
    }
}

/// Run the checkpointer: follow the durable head and sign heads (see the module docs).
pub async fn run(
    cp: Arc<Checkpointer>,
    mut durable: watch::Receiver<outpost_core::log::ChainHead>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(HEAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let timer = tokio::select! {
            r = durable.changed() => {
                if r.is_err() { return; }
                false
            }
            _ = tick.tick() => true,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let head = durable.borrow_and_update().seq;
        let cp2 = cp.clone();
        let r =
            tokio::task::spawn_blocking(move || -> Result<Option<StoredHead>, CheckpointError> {
                cp2.catch_up(head)?;
                let grown = cp2.size() - cp2.latest().map_or(0, |h| h.size);
                if grown >= HEAD_EVERY_RECORDS || (grown > 0 && timer) {
                    return cp2.sign_head();
                }
                Ok(None)
            })
            .await;
        match r {
            Ok(Ok(Some(h))) => {
                tracing::debug!(size = h.size, root = %h.root_hex, "signed tree head")
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not sign a tree head"),
            Err(e) => tracing::error!(error = %e, "checkpoint task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(CATCH_UP_EVERY) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CommitGroup;
    use outpost_core::log::{ChainHead, ChainWriter, cosign, open_checkpoint};

    fn store_with(dir: &std::path::Path, n: u64) -> Arc<LogStore> {
        let key = NodeKey::from_seed([1; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let mut group = CommitGroup::default();
        for i in 1..=n {
            let mut f = w.append(
                RecordKind::KycVerified,
                UnixMillis(i as i64),
                b"{}".to_vec(),
            );
            if i == n {
                ChainWriter::seal(&mut f, &key);
            }
            group.frames.push((Seq(i), f));
        }
        let s = Arc::new(LogStore::open(dir).unwrap());
        s.commit(&group).unwrap();
        s
    }

    #[test]
    fn heads_are_signed_stored_and_only_the_hubs_cosignature_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 1500);
        let hub = NodeKey::from_seed([2; 32]);
        let log_id = LogId::new("gb-1").unwrap();
        let open = |store: Arc<LogStore>| {
            Checkpointer::open(
                store,
                &log_id,
                NodeKey::from_seed([1; 32]),
                Some(hub.public()),
                Seq(1500),
            )
            .unwrap()
        };
        let cp = open(store.clone());
        assert_eq!(cp.size(), 1500);
        let head = cp.sign_head().unwrap().unwrap();
        assert!(
            cp.sign_head().unwrap().is_none(),
            "no new head without growth"
        );
        let (parsed, body) = open_checkpoint(
            &head.note,
            "outpost/gb-1",
            &NodeKey::from_seed([1; 32]).public(),
        )
        .unwrap();
        assert_eq!(parsed.size, 1500);
        assert_eq!(
            cp.subscribe_heads().borrow().clone(),
            Some((Seq(1500), head.note.clone()))
        );

        // A cosignature by another key, or for a size never signed, is refused.
        let forged = cosign(&body, "outpost-hub/x", &NodeKey::from_seed([3; 32]), 5);
        assert!(cp.add_cosignature(Seq(1500), &forged).is_err());
        let good = cosign(&body, "outpost-hub/x", &hub, 5);
        assert!(cp.add_cosignature(Seq(1499), &good).is_err());
        assert!(cp.latest_cosigned().unwrap().is_none());
        cp.add_cosignature(Seq(1500), &good).unwrap();
        cp.add_cosignature(Seq(1500), &good).unwrap();
        assert_eq!(cp.latest().unwrap().cosignatures, vec![good.clone()]);

        // Proofs over forgotten low levels (1500 > one 1024-record block) verify.
        let root = cp.root_at(1500).unwrap();
        for seq in [1u64, 700, 1024, 1025, 1500] {
            let leaf = leaf_hash(&store.read_frames(Seq(seq), 1).unwrap()[0].hash().0);
            let p = cp.inclusion_proof(seq - 1, 1500).unwrap();
            outpost_core::log::merkle::verify_inclusion(&leaf, seq - 1, 1500, &p, &root).unwrap();
        }
        let c = cp.consistency_proof(1000, 1500).unwrap();
        outpost_core::log::merkle::verify_consistency(
            1000,
            1500,
            &c,
            &cp.root_at(1000).unwrap(),
            &root,
        )
        .unwrap();

        // Durable: a reopened checkpointer has the head with its cosignature.
        drop(cp);
        drop(store);
        let store = Arc::new(LogStore::open(dir.path()).unwrap());
        let cp = open(store);
        let again = cp.latest_cosigned().unwrap().unwrap();
        assert_eq!((again.size, again.cosignatures.clone()), (1500, vec![good]));
        assert!(again.full_note().starts_with(&head.note));
    }
}
