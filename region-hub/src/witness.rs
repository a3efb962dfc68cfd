//! The hub as a witness of its nodes' logs: it checks every signed tree head a node sends
//! against its own copy of the node's records, cosigns the heads that match, and quarantines
//! a node that signs two histories (a head that contradicts the records, or a record fork),
//! raising a CRITICAL alert that carries the evidence. Formats: `docs/checkpoints.md`.
//!
//! State: tables `checkpoints` (every cosigned head, with the node's note and the hub's
//! cosignature line), `alerts` and `quarantine` (created here with `IF NOT EXISTS`, outside the
//! numbered migrations, so that this module stays self-contained). In memory, per node: the
//! compact range (right edge, `O(log n)` hashes) of its tree at the last head checked, extended
//! from the stored record hashes to each new head — never rehashing the log — and the
//! quarantine set that the transport consults at `Hello`. Only the rare paths (a head older
//! than the last one checked, building the evidence of equivocation) read the whole log.

pub mod api;

use crate::store::{HubState, StoreError, now_ms};
use base64::Engine;
use outpost_core::ids::NodeId;
use outpost_core::log::merkle::{CompactRange, MerkleTree};
use outpost_core::log::{Note, cosign};
use outpost_sync::{ForkEvidence, SignedHead, Witnessed};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS checkpoints (
    node_id     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    root        TEXT NOT NULL,             -- hex
    note        TEXT NOT NULL,             -- the node's signed note, as received
    cosignature TEXT NOT NULL,             -- the hub's cosignature/v1 note line
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (node_id, size)
) STRICT;
CREATE TABLE IF NOT EXISTS alerts (
    id          INTEGER PRIMARY KEY,
    node_id     TEXT NOT NULL,
    severity    TEXT NOT NULL,             -- critical
    kind        TEXT NOT NULL,             -- forked_record | inconsistent_checkpoint
    message     TEXT NOT NULL,
    evidence    TEXT NOT NULL,             -- JSON, see docs/checkpoints.md
    created_ms  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS quarantine (
    node_id  TEXT PRIMARY KEY,
    reason   TEXT NOT NULL,
    alert_id INTEGER NOT NULL,
    since_ms INTEGER NOT NULL
) STRICT;
"#;

/// In-memory witness state, owned by [`HubState`].
#[derive(Debug, Default)]
pub struct Witness {
    frontiers: Mutex<HashMap<NodeId, CompactRange>>,
    quarantined: Mutex<HashMap<NodeId, String>>,
}

impl Witness {
    /// Create the tables if needed and load the quarantine set.
    pub(crate) fn open(conn: &Connection) -> Result<Witness, StoreError> {
        conn.execute_batch(SCHEMA)?;
        let mut stmt = conn.prepare("SELECT node_id, reason FROM quarantine")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut q = HashMap::new();
        for row in rows {
            let (node, reason) = row?;
            let node = NodeId::new(&node)
                .map_err(|e| StoreError::Corrupt(format!("quarantine node id {node:?}: {e}")))?;
            q.insert(node, reason);
        }
        Ok(Witness {
            frontiers: Mutex::default(),
            quarantined: Mutex::new(q),
        })
    }
}

/// One stored alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub node_id: String,
    pub severity: String,
    pub kind: String,
    pub message: String,
    pub evidence: serde_json::Value,
    pub created_ms: i64,
}

/// The latest cosigned head of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointView {
    pub node_id: String,
    pub size: u64,
    pub root_hex: String,
    /// The node's signed note followed by the hub's cosignature line: a complete C2SP note.
    pub note: String,
    pub cosignature: String,
    pub witness: String,
    pub witness_public_key: String,
    pub received_ms: i64,
}

impl HubState {
    /// The name the hub cosigns under (C2SP witness name).
    pub fn witness_name(&self) -> String {
        format!("outpost-hub/{}", self.hub_id())
    }

    /// Why `node` is quarantined, if it is.
    pub fn quarantine_reason(&self, node: &NodeId) -> Option<String> {
        self.witness()
            .quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }

    /// Visit the stored hashes of `node`'s records `after+1 ..= upto`, in order.
    fn each_hash(
        &self,
        node: &NodeId,
        after: u64,
        upto: u64,
        mut f: impl FnMut(&[u8; 32]),
    ) -> Result<(), StoreError> {
        let conn = self.db().reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, hash FROM records WHERE node_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![node.as_str(), after as i64, upto as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut expected = after + 1;
        for row in rows {
            let (seq, hash) = row?;
            if seq as u64 != expected {
                return Err(StoreError::Corrupt(format!(
                    "node {node}: records table skips from seq {} to {seq}",
                    expected - 1
                )));
            }
            let h: [u8; 32] = hex::decode(&hash)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("node {node} seq {seq} hash {hash:?}"))
                })?;
            f(&h);
            expected += 1;
        }
        if expected != upto + 1 {
            return Err(StoreError::Corrupt(format!(
                "node {node}: a head of size {upto} covers records the hub has not committed (it has {})",
                expected - 1
            )));
        }
        Ok(())
    }

    /// Root of `node`'s log of `size` records over the hub's copy.
    fn root_at(&self, node: &NodeId, size: u64) -> Result<[u8; 32], StoreError> {
        let mut frontiers = self
            .witness()
            .frontiers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let f = frontiers.entry(node.clone()).or_default();
        if size < f.size() {
            // A head older than the last one checked (e.g. resent after a restart): rare.
            let mut c = CompactRange::new();
            self.each_hash(node, 0, size, |h| c.push(h))?;
            return Ok(c.root());
        }
        let mut next = f.clone();
        self.each_hash(node, f.size(), size, |h| next.push(h))?;
        *f = next;
        Ok(f.root())
    }

    /// The whole tree of `node`'s first `size` records (for evidence only).
    fn full_tree(&self, node: &NodeId, size: u64) -> Result<MerkleTree, StoreError> {
        let mut t = MerkleTree::new();
        self.each_hash(node, 0, size, |h| t.push(h))?;
        Ok(t)
    }

    /// Check a signed head against the committed records; cosign or quarantine.
    pub fn witness_checkpoint_blocking(
        &self,
        node: &NodeId,
        head: SignedHead,
    ) -> Result<Witnessed, StoreError> {
        if let Some(reason) = self.quarantine_reason(node) {
            return Ok(Witnessed::Equivocation(format!(
                "node {node} is quarantined: {reason}"
            )));
        }
        let size = head.size.0;
        let root = self.root_at(node, size)?;
        if root != head.root {
            let previous = self.latest_checkpoint(node)?;
            let tree = self.full_tree(node, size)?;
            let (proof, prev_root) = match &previous {
                Some(p) if p.size <= size => (
                    tree.consistency_proof(p.size, size).unwrap_or_default(),
                    tree.root_at(p.size).ok(),
                ),
                _ => (Vec::new(), None),
            };
            let message = format!(
                "CRITICAL: node {node} equivocated: it signed a tree head of size {size} with root {}, but the records it sealed and sent give root {}",
                hex::encode(head.root),
                hex::encode(root)
            );
            let evidence = serde_json::json!({
                "kind": "inconsistent_checkpoint",
                "size": size,
                "checkpoint_note": head.note,
                "hub_root_hex": hex::encode(root),
                "previous_checkpoint_note": previous.as_ref().map(|p| p.note.clone()),
                "previous_size": previous.as_ref().map(|p| p.size),
                "hub_root_at_previous_size_hex": prev_root.map(hex::encode),
                "consistency_proof_hex": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            });
            self.raise_equivocation(node, "inconsistent_checkpoint", &message, evidence)?;
            return Ok(Witnessed::Equivocation(message));
        }
        let body = Note::parse(&head.note)
            .map_err(|e| StoreError::Corrupt(format!("note checked by the session: {e}")))?
            .body;
        let now = now_ms();
        let line = cosign(
            &body,
            &self.witness_name(),
            self.hub_key(),
            (now.0 / 1000) as u64,
        );
        self.db().conn().execute(
            "INSERT OR REPLACE INTO checkpoints (node_id, size, root, note, cosignature, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![node.as_str(), size as i64, hex::encode(root), head.note, line, now.0],
        )?;
        Ok(Witnessed::Cosigned(line))
    }

    /// A proven record fork: quarantine the node and store both versions of the record.
    pub fn report_equivocation_blocking(
        &self,
        node: &NodeId,
        ev: ForkEvidence,
    ) -> Result<(), StoreError> {
        let hub_frame: Option<Vec<u8>> = self
            .db()
            .reader()
            .query_row(
                "SELECT frame FROM records WHERE node_id = ?1 AND seq = ?2",
                params![node.as_str(), ev.seq.0 as i64],
                |r| r.get(0),
            )
            .optional()?;
        let message = format!(
            "CRITICAL: node {node} equivocated: record seq {} was sealed with hash {} and is now contradicted by a sealed continuation saying hash {}",
            ev.seq, ev.hub_hash, ev.offered_hash
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let evidence = serde_json::json!({
            "kind": "forked_record",
            "seq": ev.seq.0,
            "hub_hash_hex": ev.hub_hash.to_hex(),
            "offered_hash_hex": ev.offered_hash.to_hex(),
            "hub_record_frame_b64": hub_frame.map(|f| b64.encode(f)),
            "fork_frames_b64": ev.fork.iter().map(|f| b64.encode(f.encode())).collect::<Vec<_>>(),
        });
        self.raise_equivocation(node, "forked_record", &message, evidence)
    }

    fn raise_equivocation(
        &self,
        node: &NodeId,
        kind: &str,
        message: &str,
        evidence: serde_json::Value,
    ) -> Result<(), StoreError> {
        tracing::error!(%node, kind, evidence = %evidence, "{message}");
        let now = now_ms().0;
        {
            let mut conn = self.db().conn();
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO alerts (node_id, severity, kind, message, evidence, created_ms) VALUES (?1, 'critical', ?2, ?3, ?4, ?5)",
                params![node.as_str(), kind, message, evidence.to_string(), now],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT OR IGNORE INTO quarantine (node_id, reason, alert_id, since_ms) VALUES (?1, ?2, ?3, ?4)",
                params![node.as_str(), message, id, now],
            )?;
            tx.commit()?;
        }
        self.witness()
            .quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(node.clone())
            .or_insert_with(|| message.to_owned());
        // Also refuse any further commit of the node's records.
        self.flag(node, message);
        Ok(())
    }

    /// Latest cosigned head of `node`.
    pub fn latest_checkpoint(&self, node: &NodeId) -> Result<Option<CheckpointView>, StoreError> {
        let conn = self.db().reader();
        let row = conn
            .query_row(
                "SELECT size, root, note, cosignature, received_ms FROM checkpoints WHERE node_id = ?1 ORDER BY size DESC LIMIT 1",
                [node.as_str()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                },
            )
            .optional()?;
        Ok(row.map(
            |(size, root, note, cosignature, received_ms)| CheckpointView {
                node_id: node.to_string(),
                size: size as u64,
                root_hex: root,
                note: Note::with_lines(&note, std::slice::from_ref(&cosignature)),
                cosignature,
                witness: self.witness_name(),
                witness_public_key: self.hub_public_key().to_hex(),
                received_ms,
            },
        ))
    }

    /// All alerts, newest first.
    pub fn node_alerts_view(&self) -> Result<Vec<AlertView>, StoreError> {
        let conn = self.db().reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, node_id, severity, kind, message, evidence, created_ms FROM alerts ORDER BY id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            let evidence: String = r.get(5)?;
            Ok(AlertView {
                id: r.get(0)?,
                node_id: r.get(1)?,
                severity: r.get(2)?,
                kind: r.get(3)?,
                message: r.get(4)?,
                evidence: serde_json::from_str(&evidence)
                    .unwrap_or(serde_json::Value::String(evidence)),
                created_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use outpost_core::ids::Seq;
    use outpost_core::log::{Checkpoint, Frame, origin_for, verify_cosignature};

    fn head(frames: &[Frame], size: usize, root: Option<[u8; 32]>) -> SignedHead {
        let mut t = MerkleTree::new();
        frames[..size].iter().for_each(|f| t.push(&f.hash().0));
        let cp = Checkpoint {
            origin: origin_for("gb-1"),
            size: size as u64,
            root: root.unwrap_or_else(|| t.root()),
            timestamp: now(),
        };
        SignedHead {
            size: Seq(size as u64),
            root: cp.root,
            note: cp.sign(&cp.origin, &node_key()),
        }
    }

    #[test]
    fn heads_in_any_order_are_checked_against_the_records() {
        let h = hub(eager());
        let mut edge = Edge::new();
        let mut frames = Vec::new();
        for i in 0..4 {
            let g = edge.group(&[genesis(), genesis(), genesis()][..if i == 0 { 1 } else { 3 }]);
            frames.extend(g.iter().map(|(f, _)| f.clone()));
            h.state
                .commit_upstream_blocking(&node_id(), g, now())
                .unwrap();
        }
        assert_eq!(frames.len(), 10);
        let hub_pub = h.state.hub_public_key();
        // Growing, repeated, and older sizes all verify and get a valid cosignature.
        for size in [4, 10, 10, 1, 7] {
            let hd = head(&frames, size, None);
            let body = Note::parse(&hd.note).unwrap().body;
            match h.state.witness_checkpoint_blocking(&node_id(), hd).unwrap() {
                Witnessed::Cosigned(line) => {
                    verify_cosignature(&body, &line, &h.state.witness_name(), &hub_pub).unwrap();
                }
                other => panic!("size {size}: {other:?}"),
            }
        }
        assert_eq!(
            h.state.latest_checkpoint(&node_id()).unwrap().unwrap().size,
            10
        );
        // A head beyond the committed records is an error, not a verdict.
        let mut more = frames.clone();
        more.extend(edge.group(&[genesis()]).into_iter().map(|(f, _)| f));
        assert!(
            h.state
                .witness_checkpoint_blocking(&node_id(), head(&more, 11, None))
                .is_err()
        );
        assert!(h.state.quarantine_reason(&node_id()).is_none());
        // An older head with a wrong root is equivocation too; the evidence also names the
        // newest cosigned head (size 10).
        match h
            .state
            .witness_checkpoint_blocking(&node_id(), head(&frames, 3, Some([9; 32])))
            .unwrap()
        {
            Witnessed::Equivocation(reason) => assert!(reason.contains("size 3"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let alerts = h.state.node_alerts_view().unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].evidence["previous_size"], 10);
        assert!(h.state.quarantine_reason(&node_id()).is_some());
        // Once quarantined, even a correct head is refused.
        assert!(matches!(
            h.state
                .witness_checkpoint_blocking(&node_id(), head(&frames, 10, None))
                .unwrap(),
            Witnessed::Equivocation(_)
        ));
    }
}
