//! The hub as a witness of its nodes' logs: it checks every signed tree head a node sends
//! against its own copy of the node's records, cosigns the heads that match, and quarantines
//! a node that signs two histories (a head that contradicts the records, or a record fork),
//! raising a CRITICAL alert that carries the evidence. Formats: `docs/checkpoints.md`.
//!
//! State: tables `checkpoints` (every cosigned head, with the node's note and the hub's
//! cosignature line), `alerts` and `quarantine` (created here with `IF NOT EXISTS`, outside the
//! numbered migrations, so that this module stays self-contained). In memory: one Merkle tree
//! per node, built from the stored record hashes on first use and then extended with new
//! records only, and the quarantine set that the transport consults at `Hello`.

pub mod api;

use crate::store::{HubState, StoreError, now_ms};
use base64::Engine;
use outpost_core::ids::NodeId;
use outpost_core::log::merkle::MerkleTree;
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
    trees: Mutex<HashMap<NodeId, MerkleTree>>,
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
            trees: Mutex::default(),
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

    /// Bring `node`'s tree up to the committed records and run `f` on it.
    fn with_tree<R>(
        &self,
        node: &NodeId,
        f: impl FnOnce(&MerkleTree) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut trees = self
            .witness()
            .trees
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let tree = trees.entry(node.clone()).or_default();
        let conn = self.db().reader();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, hash FROM records WHERE node_id = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![node.as_str(), tree.size() as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (seq, hash) = row?;
            if seq as u64 != tree.size() + 1 {
                return Err(StoreError::Corrupt(format!(
                    "node {node}: records table skips from seq {} to {seq}",
                    tree.size()
                )));
            }
            let h: [u8; 32] = hex::decode(&hash)
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("node {node} seq {seq} hash {hash:?}"))
                })?;
            tree.push(&h);
        }
        f(tree)
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
        let previous = self.latest_checkpoint(node)?;
        let (root, proof, prev_root) = self.with_tree(node, |t| {
            let root = t.root_at(size).map_err(|e| {
                StoreError::Corrupt(format!("checkpoint of size {size} for node {node}: {e}"))
            })?;
            let (proof, prev_root) = match &previous {
                Some(p) if p.size <= size => (
                    t.consistency_proof(p.size, size).unwrap_or_default(),
                    t.root_at(p.size).ok(),
                ),
                _ => (Vec::new(), None),
            };
            Ok((root, proof, prev_root))
        })?;
        if root != head.root {
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
    pub fn alerts_view(&self) -> Result<Vec<AlertView>, StoreError> {
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
