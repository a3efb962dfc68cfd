//! The hub's downstream chains: one signed hash chain per edge node (log id `hub/{node}`)
//! carrying results and settlements to that node.
//!
//! Appends happen inside the caller's transaction, so a down record exists exactly when the
//! state change that caused it (a stored result, a settlement row) does. The chain head is
//! read from the database each time rather than cached, so two processes (a running hub and
//! `region-hub load-results`) can never fork a chain: SQLite serialises their transactions.
//!
//! Every down record is sealed. That costs one signature per record but makes each record
//! verifiable on its own, so a reader can stop after any record without an unsealed tail.

use crate::outbox::{self, Direction};
use outpost_core::hub::{HubEvent, down_log_id};
use outpost_core::ids::{NodeId, Seq};
use outpost_core::log::{ChainHead, ChainWriter, NodeKey, RecordHash};
use outpost_core::time::UnixMillis;
use rusqlite::{OptionalExtension, Transaction, params};

/// The stored tip of `node`'s down chain.
pub(crate) fn head(tx: &rusqlite::Connection, node: &NodeId) -> Result<ChainHead, DownError> {
    let row: Option<(i64, String, i64)> = tx
        .query_row(
            "SELECT down_seq, hash, ts_ms FROM down_records WHERE node_id = ?1 ORDER BY down_seq DESC LIMIT 1",
            [node.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match row {
        None => Ok(ChainHead::EMPTY),
        Some((seq, hash, ts)) => Ok(ChainHead {
            seq: Seq(seq as u64),
            hash: RecordHash::from_hex(&hash).ok_or_else(|| {
                DownError::Corrupt(format!("down record {node}#{seq} has hash {hash:?}"))
            })?,
            timestamp: UnixMillis(ts),
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DownError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored down chain is corrupt: {0}")]
    Corrupt(String),
}

/// Append one sealed record to `node`'s down chain and mark it pending for the audit trail.
/// Returns its sequence number and hash.
pub(crate) fn append(
    tx: &Transaction<'_>,
    key: &NodeKey,
    node: &NodeId,
    event: &HubEvent,
    now: UnixMillis,
) -> Result<(Seq, RecordHash), DownError> {
    let mut w = ChainWriter::new(down_log_id(node), head(tx, node)?);
    let mut frame = w.append(event.kind(), now, event.to_payload());
    ChainWriter::seal(&mut frame, key);
    let h = w.head();
    tx.execute(
        "INSERT INTO down_records (node_id, down_seq, kind, ts_ms, frame, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![node.as_str(), h.seq.0 as i64, event.kind() as u8 as i64, h.timestamp.0, frame.encode(), h.hash.to_hex()],
    )?;
    outbox::note_pending(tx, node, Direction::Down, now)?;
    Ok((h.seq, h.hash))
}
