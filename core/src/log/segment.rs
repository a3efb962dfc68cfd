//! Segment files: a run of consecutive frames from one log with a one-line JSON header.
//! Used for log export (`outpost export-log`) and for audit-trail objects, so one verifier
//! handles both.

use super::chain::ChainHead;
use super::keys::PublicKey;
use super::record::{DecodeError, Frame, RecordHash};
use super::verify::{VerifyError, VerifyReport, verify_frames};
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
        let hash = RecordHash::from_hex(&self.prev_hash)
            .ok_or(SegmentError::Header("prev_hash is not 64 hex chars".into()))?;
        Ok(ChainHead {
            seq: Seq(self.first_seq.0.saturating_sub(1)),
            hash,
            timestamp: UnixMillis(self.prev_timestamp_ms),
        })
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
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// Verify a decoded segment completely: every header field against the records, the records
/// against the trusted key, and (when `prev` is given, for consecutive segments) that it
/// continues exactly where the previous one ended. `docs/log-format.md` §7 in code.
pub fn verify_segment(
    header: &SegmentHeader,
    frames: Vec<Frame>,
    key: &PublicKey,
    prev: Option<ChainHead>,
) -> Result<VerifyReport, SegmentError> {
    let bad = |m: String| Err(SegmentError::Header(m));
    if header.public_key != key.to_hex() {
        return bad(format!(
            "names key {}, not the trusted key",
            header.public_key
        ));
    }
    if header.first_seq.0 == 0 || header.records == 0 {
        return bad("a segment holds at least one record, starting at seq >= 1".into());
    }
    if header
        .last_seq
        .0
        .checked_sub(header.first_seq.0)
        .and_then(|d| d.checked_add(1))
        != Some(header.records)
    {
        return bad(format!(
            "first_seq {} .. last_seq {} does not span {} records",
            header.first_seq, header.last_seq, header.records
        ));
    }
    if header.prev_timestamp_ms < 0 {
        return bad("prev_timestamp_ms is negative".into());
    }
    let start = header.start()?;
    if header.first_seq.0 == 1 && (start.hash != RecordHash::ZERO || start.timestamp.0 != 0) {
        return bad(
            "a segment starting at seq 1 must have a zero prev_hash and prev_timestamp_ms".into(),
        );
    }
    if let Some(p) = prev
        && p != start
    {
        return bad(format!(
            "does not continue the previous segment (which ended at seq {} {})",
            p.seq, p.hash
        ));
    }
    let report = verify_frames(&header.log_id, key, start, frames)?;
    if report.head.hash.to_hex() != header.last_hash || report.head.seq != header.last_seq {
        return bad("last_seq/last_hash do not match the records".into());
    }
    Ok(report)
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
    let nl = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(SegmentError::Header("no header line".into()))?;
    let header: SegmentHeader =
        serde_json::from_slice(&bytes[..nl]).map_err(|e| SegmentError::Header(e.to_string()))?;
    if header.format != SEGMENT_FORMAT {
        return Err(SegmentError::Header(format!(
            "unsupported format {:?}",
            header.format
        )));
    }
    let mut rest = &bytes[nl + 1..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (f, n) = Frame::decode_prefix(rest).map_err(|error| SegmentError::Frame {
            index: frames.len(),
            error,
        })?;
        frames.push(f);
        rest = &rest[n..];
    }
    if frames.len() as u64 != header.records {
        return Err(SegmentError::Count {
            header: header.records,
            found: frames.len() as u64,
        });
    }
    Ok((header, frames))
}
