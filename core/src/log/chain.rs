//! Building a chain: assigns gap-free sequence numbers, links each record to its
//! predecessor's hash, keeps timestamps non-decreasing, and seals commit groups.

use super::keys::NodeKey;
use super::record::{Frame, RecordBody, RecordHash, RecordKind, seal_message};
use crate::ids::{LogId, Seq};
use crate::time::UnixMillis;

/// The durable tip of a chain: last sequence number, its hash and timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: Seq,
    pub hash: RecordHash,
    pub timestamp: UnixMillis,
}

impl ChainHead {
    pub const EMPTY: ChainHead = ChainHead {
        seq: Seq::ZERO,
        hash: RecordHash::ZERO,
        timestamp: UnixMillis(0),
    };
}

#[derive(Debug)]
pub struct ChainWriter {
    log_id: LogId,
    head: ChainHead,
}

impl ChainWriter {
    pub fn new(log_id: LogId, head: ChainHead) -> ChainWriter {
        ChainWriter { log_id, head }
    }
    pub fn head(&self) -> ChainHead {
        self.head
    }
    pub fn log_id(&self) -> &LogId {
        &self.log_id
    }

    /// Append one record (unsealed). A clock that steps backwards is clamped to the previous
    /// record's timestamp so that timestamps never decrease along the chain.
    pub fn append(&mut self, kind: RecordKind, now: UnixMillis, payload: Vec<u8>) -> Frame {
        let body = RecordBody {
            kind,
            log_id: self.log_id.clone(),
            seq: self.head.seq.next(),
            timestamp: now.max(self.head.timestamp),
            prev_hash: self.head.hash,
            payload,
        };
        let frame = Frame {
            body: body.encode(),
            seal: None,
        };
        self.head = ChainHead {
            seq: body.seq,
            hash: frame.hash(),
            timestamp: body.timestamp,
        };
        frame
    }

    /// Seal the last frame of a commit group: it then vouches for every record before it.
    pub fn seal(frame: &mut Frame, key: &NodeKey) {
        frame.seal = Some(key.sign(&seal_message(&frame.hash())));
    }
}
