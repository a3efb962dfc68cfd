//! Segment files: a run of consecutive frames from one log with a one-line JSON header.
//! Used for log export (`outpost export-log`) and for audit-trail objects, so one verifier
//! handles both.

use super::chain::ChainHead;
use super::record::{DecodeError, Frame, RecordHash};
use crate::ids::{LogId, Seq};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

pub const SEGMENT_FORMAT: &str = "outpost-segment/1";

/// The header line. Every field is checkable against the frames that follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentHeader {
    pub format: String,
    pub log_id: LogId,
    pub first_seq: Seq,
    pub last_seq: Seq,
    /// Hash of the record before `first_seq` (all zeros when `first_seq` is 1).
    pub prev_hash: String,
    /// Timestamp of the record before `first_seq` (0 when `first_seq` is 1).
    pub prev_timestamp_ms: i64,
    pub last_hash: String,
    pub records: u64,
    /// The author's Ed25519 public key, hex. A verifier must get the trusted key out of band
    /// (operator registration); this copy is a convenience and is checked against it.
    pub public_key: String,
}

impl SegmentHeader {
    pub fn start(&self) -> Result<ChainHead, SegmentError> {
        let hash = RecordHash::from_hex(&self.prev_hash).ok_or(SegmentError::Header("prev_hash is not 64 hex chars".into()))?;
        Ok(ChainHead { seq: Seq(self.first_seq.0.saturating_sub(1)), hash, timestamp: UnixMillis(self.prev_timestamp_ms) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segment header: {0}")]
    Header(String),
    #[error("frame #{index}: {error}")]
    Frame { index: usize, error: DecodeError },
    #[error("header says {header} records, found {found}")]
    Count { header: u64, found: u64 },
}

pub fn encode_segment(header: &SegmentHeader, frames: &[Frame]) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).expect("header serialises");
    out.push(b'\n');
    for f in frames {
        f.encode_into(&mut out);
    }
    out
}

pub fn decode_segment(bytes: &[u8]) -> Result<(SegmentHeader, Vec<Frame>), SegmentError> {
    let nl = bytes.iter().position(|&b| b == b'\n').ok_or(SegmentError::Header("no header line".into()))?;
    let header: SegmentHeader = serde_json::from_slice(&bytes[..nl]).map_err(|e| SegmentError::Header(e.to_string()))?;
    if header.format != SEGMENT_FORMAT {
        return Err(SegmentError::Header(format!("unsupported format {:?}", header.format)));
    }
    let mut rest = &bytes[nl + 1..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (f, n) = Frame::decode_prefix(rest).map_err(|error| SegmentError::Frame { index: frames.len(), error })?;
        frames.push(f);
        rest = &rest[n..];
    }
    if frames.len() as u64 != header.records {
        return Err(SegmentError::Count { header: header.records, found: frames.len() as u64 });
    }
    Ok((header, frames))
}
