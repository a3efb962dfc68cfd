//! The hub's downstream chains: one signed hash chain per edge node (log id `hub/{node}`)
//! carrying results and settlements to that node.
//!
//! Appends happen inside the caller's transaction, so a down record exists exactly when the
//! state change that caused it (a stored result, a settlement row) does. The chain head is
//! read from the database each time rather than cached, so two processes (a running hub and
//! `region-hub load-results`) can never fork a chain: SQLite serialises their transactions.
//!
//! Records appended in one transaction are buffered per node ([`DownBatch`]) and written when
//! the transaction flushes them, the last record of each group sealed: a group ends at the end
//! of every transaction and after at most [`GROUP_MAX`] records (well below the edge's limit of
//! unsealed records, `SessionConfig::max_unsealed`). One signature per group rather than per
//! record is what lets a result settle a million bets in seconds; every record is still
//! covered by the hash chain and by the seal that ends its group.

use crate::outbox::{self, Direction};
use outpost_core::hub::{HubEvent, down_log_id};
use outpost_core::ids::{NodeId, Seq};
use outpost_core::log::Frame;
use outpost_core::log::{ChainHead, ChainWriter, NodeKey, RecordHash, RecordKind};
use outpost_core::time::UnixMillis;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::BTreeMap;

/// Records per seal group at most.
pub(crate) const GROUP_MAX: usize = 4096;

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
    #[error("down chain of {0} is lent to the settle pass")]
    Lent(NodeId),
    #[error("down chain of {0} is not lent")]
    NotLent(NodeId),
    #[error("down chain of {node}: record {got} handed back, expected {expected}")]
    OutOfOrder {
        node: NodeId,
        expected: Seq,
        got: Seq,
    },
}

/// Down records of one transaction, buffered per node until [`DownBatch::flush`]. Every
/// down append of a transaction goes through its batch, so the chain head is read from the
/// database once per node and can never fork.
#[derive(Debug, Default)]
pub(crate) struct DownBatch {
    nodes: BTreeMap<NodeId, NodeBatch>,
}

#[derive(Debug)]
struct NodeBatch {
    writer: ChainWriter,
    /// While the chain is lent to another thread ([`DownBatch::lend`]): the last sequence
    /// number pushed back ([`DownBatch::push_built`]). Direct appends are refused meanwhile.
    lent: Option<Seq>,
    frames: Vec<Pending>,
    /// Records already written in this transaction, kept for cutting audit segments
    /// ([`DownBatch::take_written`]).
    written: Vec<outbox::PendingRow>,
}

/// A buffered record with what its row needs besides the frame.
#[derive(Debug)]
struct Pending {
    seq: Seq,
    kind: u8,
    ts: UnixMillis,
    /// The record hash, hex as stored in `down_records.hash`.
    hash_hex: String,
    frame: Frame,
}

/// A down record chained by [`build`] on another thread than the transaction's (the bulk
/// settle pass chains on its settling thread and the writer only stores), pushed back in
/// chain order with [`DownBatch::push_built`].
#[derive(Debug)]
pub(crate) struct Built(Pending);

impl Built {
    pub(crate) fn seq(&self) -> Seq {
        self.0.seq
    }
}

/// Append one record to a chain lent by [`DownBatch::lend`]: the frame, its hash (SHA-256)
/// and the hash's hex, everything its row needs.
pub(crate) fn build(
    writer: &mut ChainWriter,
    kind: RecordKind,
    now: UnixMillis,
    payload: Vec<u8>,
) -> Built {
    let frame = writer.append(kind, now, payload);
    let h = writer.head();
    Built(Pending {
        seq: h.seq,
        kind: kind as u8,
        ts: h.timestamp,
        hash_hex: h.hash.to_hex(),
        frame,
    })
}

impl DownBatch {
    /// Append one record to `node`'s down chain; returns its sequence number and hash.
    pub(crate) fn append(
        &mut self,
        tx: &Transaction<'_>,
        key: &NodeKey,
        node: &NodeId,
        event: &HubEvent,
        now: UnixMillis,
    ) -> Result<(Seq, RecordHash), DownError> {
        self.append_payload(tx, key, node, event.kind(), event.to_payload(), now)
    }

    /// [`DownBatch::append`] with the event already serialised (`HubEvent::to_payload`), so
    /// the bulk settle pass can serialise on every core and only chain here.
    pub(crate) fn append_payload(
        &mut self,
        tx: &Transaction<'_>,
        key: &NodeKey,
        node: &NodeId,
        kind: RecordKind,
        payload: Vec<u8>,
        now: UnixMillis,
    ) -> Result<(Seq, RecordHash), DownError> {
        let nb = self.node(tx, node)?;
        if nb.lent.is_some() {
            return Err(DownError::Lent(node.clone()));
        }
        let frame = nb.writer.append(kind, now, payload);
        let h = nb.writer.head();
        nb.frames.push(Pending {
            seq: h.seq,
            kind: kind as u8,
            ts: h.timestamp,
            hash_hex: h.hash.to_hex(),
            frame,
        });
        if nb.frames.len() >= GROUP_MAX {
            write_group(tx, key, node, &mut nb.frames, &mut nb.written, now)?;
        }
        Ok((h.seq, h.hash))
    }

    /// `node`'s batch, reading the chain head from the database the first time.
    fn node(&mut self, tx: &Transaction<'_>, node: &NodeId) -> Result<&mut NodeBatch, DownError> {
        if !self.nodes.contains_key(node) {
            let writer = ChainWriter::new(down_log_id(node), head(tx, node)?);
            self.nodes.insert(
                node.clone(),
                NodeBatch {
                    writer,
                    lent: None,
                    frames: Vec::new(),
                    written: Vec::new(),
                },
            );
        }
        Ok(self.nodes.get_mut(node).expect("inserted above"))
    }

    /// Lend `node`'s chain to another thread: a writer continuing its head, whose records
    /// ([`build`]) come back in order through [`DownBatch::push_built`] until
    /// [`DownBatch::give_back`]. Hashing and framing then run off the transaction's thread.
    pub(crate) fn lend(
        &mut self,
        tx: &Transaction<'_>,
        node: &NodeId,
    ) -> Result<ChainWriter, DownError> {
        let nb = self.node(tx, node)?;
        if nb.lent.is_some() {
            return Err(DownError::Lent(node.clone()));
        }
        let h = nb.writer.head();
        nb.lent = Some(h.seq);
        Ok(ChainWriter::new(down_log_id(node), h))
    }

    /// Buffer a record built on a lent chain; it must be the next one in the chain (the
    /// builder appends in the order the records come back).
    pub(crate) fn push_built(
        &mut self,
        tx: &Transaction<'_>,
        key: &NodeKey,
        node: &NodeId,
        built: Built,
        now: UnixMillis,
    ) -> Result<(), DownError> {
        let nb = self.node(tx, node)?;
        let Some(last) = nb.lent else {
            return Err(DownError::NotLent(node.clone()));
        };
        if built.0.seq != last.next() {
            return Err(DownError::OutOfOrder {
                node: node.clone(),
                expected: last.next(),
                got: built.0.seq,
            });
        }
        nb.lent = Some(built.0.seq);
        nb.frames.push(built.0);
        if nb.frames.len() >= GROUP_MAX {
            write_group(tx, key, node, &mut nb.frames, &mut nb.written, now)?;
        }
        Ok(())
    }

    /// End a loan: `writer` (from [`DownBatch::lend`]) becomes the chain's writer again. Its
    /// head must be the last record pushed back (records built and not pushed would fork).
    pub(crate) fn give_back(
        &mut self,
        node: &NodeId,
        writer: ChainWriter,
    ) -> Result<(), DownError> {
        let nb = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| DownError::NotLent(node.clone()))?;
        let Some(last) = nb.lent else {
            return Err(DownError::NotLent(node.clone()));
        };
        if writer.head().seq != last {
            return Err(DownError::OutOfOrder {
                node: node.clone(),
                expected: last,
                got: writer.head().seq,
            });
        }
        nb.writer = writer;
        nb.lent = None;
        Ok(())
    }

    /// Write every buffered record, sealing the last of each node's group, and mark the
    /// chains pending for the audit trail. Must run before the transaction commits and before
    /// anything reads `down_records` in it.
    pub(crate) fn flush(
        &mut self,
        tx: &Transaction<'_>,
        key: &NodeKey,
        now: UnixMillis,
    ) -> Result<(), DownError> {
        for (node, nb) in self.nodes.iter_mut() {
            if nb.lent.is_some() {
                return Err(DownError::Lent(node.clone()));
            }
            write_group(tx, key, node, &mut nb.frames, &mut nb.written, now)?;
        }
        Ok(())
    }

    /// The records of `node`'s chain written so far in this transaction, in order (for
    /// `outbox::cut_with`); empty if none.
    pub(crate) fn take_written(&mut self, node: &NodeId) -> Vec<outbox::PendingRow> {
        self.nodes
            .get_mut(node)
            .map(|nb| std::mem::take(&mut nb.written))
            .unwrap_or_default()
    }
}

fn write_group(
    tx: &Transaction<'_>,
    key: &NodeKey,
    node: &NodeId,
    frames: &mut Vec<Pending>,
    written: &mut Vec<outbox::PendingRow>,
    now: UnixMillis,
) -> Result<(), DownError> {
    let Some(last) = frames.last_mut() else {
        return Ok(());
    };
    // The seal signs the record hash; it does not change it.
    ChainWriter::seal(&mut last.frame, key);
    let mut stmt = tx.prepare_cached(
        "INSERT INTO down_records (node_id, down_seq, kind, ts_ms, frame, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut buf = Vec::new();
    for p in frames.drain(..) {
        buf.clear();
        p.frame.encode_into(&mut buf);
        stmt.execute(params![
            node.as_str(),
            p.seq.0 as i64,
            i64::from(p.kind),
            p.ts.0,
            &buf,
            &p.hash_hex
        ])?;
        written.push(outbox::PendingRow {
            seq: p.seq.0 as i64,
            ts: p.ts.0,
            hash: p.hash_hex,
            frame: p.frame,
        });
    }
    outbox::note_pending(tx, node, Direction::Down, now)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_name(e: DownError) -> &'static str {
        match e {
            DownError::Lent(_) => "lent",
            DownError::NotLent(_) => "not lent",
            DownError::OutOfOrder { .. } => "out of order",
            _ => "other",
        }
    }

    /// A lent chain cannot fork: the owner refuses its own appends while lent, records must
    /// come back in chain order, and the loan ends only on the last record handed back.
    #[test]
    fn a_lent_chain_comes_back_in_order_or_not_at_all() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::Db::migrate(&mut conn).unwrap();
        let tx = conn.transaction().unwrap();
        let key = NodeKey::from_seed([7; 32]);
        let node = NodeId::new("gb-1").unwrap();
        let kind = RecordKind::HubEventResult;
        let t = UnixMillis(1_763_700_000_000);
        let mut batch = DownBatch::default();

        let first = batch
            .append_payload(&tx, &key, &node, kind, b"{}".to_vec(), t)
            .unwrap();
        assert_eq!(first.0, Seq(1));
        let not_lent = build(
            &mut ChainWriter::new(down_log_id(&node), ChainHead::EMPTY),
            kind,
            t,
            b"{}".to_vec(),
        );
        assert_eq!(
            err_name(batch.push_built(&tx, &key, &node, not_lent, t).unwrap_err()),
            "not lent"
        );

        let mut lent = batch.lend(&tx, &node).unwrap();
        assert_eq!(err_name(batch.lend(&tx, &node).unwrap_err()), "lent");
        assert_eq!(
            err_name(
                batch
                    .append_payload(&tx, &key, &node, kind, b"{}".to_vec(), t)
                    .unwrap_err()
            ),
            "lent"
        );
        let r2 = build(&mut lent, kind, t, b"{\"n\":2}".to_vec());
        let r3 = build(&mut lent, kind, t, b"{\"n\":3}".to_vec());
        assert_eq!((r2.seq(), r3.seq()), (Seq(2), Seq(3)));
        assert_eq!(
            err_name(batch.push_built(&tx, &key, &node, r3, t).unwrap_err()),
            "out of order"
        );
        batch.push_built(&tx, &key, &node, r2, t).unwrap();
        // Record 3 was built but not handed back: giving the writer back would fork the chain.
        assert_eq!(
            err_name(batch.give_back(&node, lent).unwrap_err()),
            "out of order"
        );

        assert_eq!(err_name(batch.lend(&tx, &node).unwrap_err()), "lent");
        // The loan is still open at record 2; a writer continuing from there ends it.
        let at2 = batch.nodes[&node].frames.last().unwrap();
        let mut resumed = ChainWriter::new(
            down_log_id(&node),
            ChainHead {
                seq: at2.seq,
                hash: RecordHash::from_hex(&at2.hash_hex).unwrap(),
                timestamp: at2.ts,
            },
        );
        let r3 = build(&mut resumed, kind, t, b"{\"n\":3}".to_vec());
        batch.push_built(&tx, &key, &node, r3, t).unwrap();
        batch.give_back(&node, resumed).unwrap();
        let next = batch
            .append_payload(&tx, &key, &node, kind, b"{}".to_vec(), t)
            .unwrap();
        assert_eq!(next.0, Seq(4));
    }
}
