//! The immutable audit trail: segment files of the hub's logs, stored write-once with a
//! COMPLIANCE retention date, either in an S3 bucket with Object Lock ([`S3Store`]) or, for
//! the embedded default without S3, in a local write-once directory ([`LocalWormStore`]).
//!
//! Both backends share one key layout (see [`audit_key`]) and one contract:
//! - `put` never replaces an existing object. Re-putting the identical body is a success that
//!   reports `already_present` (so an outbox can blindly retry after a crash); a different body
//!   under an existing key is [`AuditError::Conflict`], a permanent error.
//! - Only [`AuditError::Unavailable`] is worth retrying ([`AuditError::is_retryable`]).
//! - There is no delete.

pub mod local;
pub mod s3;

pub use local::LocalWormStore;
pub use s3::{S3Credentials, S3Store, S3Timeouts};

use outpost_core::ids::{Jurisdiction, LogId, Seq};
use outpost_core::log::{Frame, SegmentHeader, encode_segment};
use outpost_core::time::UnixMillis;
use std::time::{SystemTime, UNIX_EPOCH};

/// The only retention mode we write. COMPLIANCE (unlike GOVERNANCE) cannot be shortened or
/// removed by anyone, including the bucket owner's root account.
pub const RETENTION_MODE: &str = "COMPLIANCE";

/// S3's key length limit; the local backend uses the same so keys are portable.
const MAX_KEY_LEN: usize = 1024;

/// Suffix of the local backend's retention sidecars. Object keys may not end with it, so a
/// sidecar can never be mistaken for (or collide with) an object.
pub(crate) const SIDECAR_SUFFIX: &str = ".retention.json";

/// One audit object: a segment file and how long it must be retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditObject {
    pub key: String,
    pub body: Vec<u8>,
    /// Retention end. Stores keep whole seconds (S3's precision), rounding *up* so retention
    /// is never shorter than asked; the effective value is in [`PutReceipt::retain_until`].
    pub retain_until: UnixMillis,
}

impl AuditObject {
    /// Build the audit object for a run of frames: encodes the segment and derives the key
    /// from the header and the first record's timestamp.
    pub fn for_segment(
        jurisdiction: &Jurisdiction,
        header: &SegmentHeader,
        frames: &[Frame],
        retain_until: UnixMillis,
    ) -> Result<AuditObject, AuditError> {
        let first = frames
            .first()
            .ok_or_else(|| AuditError::InvalidSegment("no frames".into()))?;
        let body = first
            .parse_body()
            .map_err(|e| AuditError::InvalidSegment(format!("first frame: {e}")))?;
        if body.seq != header.first_seq || body.log_id != header.log_id {
            return Err(AuditError::InvalidSegment(format!(
                "first frame is {}#{} but header says {}#{}",
                body.log_id, body.seq, header.log_id, header.first_seq
            )));
        }
        let key = audit_key(
            jurisdiction,
            &header.log_id,
            header.first_seq,
            header.last_seq,
            body.timestamp,
        );
        validate_key(&key)?;
        Ok(AuditObject {
            key,
            body: encode_segment(header, frames),
            retain_until,
        })
    }
}

/// What a successful `put` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    pub key: String,
    /// Hex SHA-256 of the body.
    pub sha256: String,
    /// True when the identical object was already stored (nothing was written).
    pub already_present: bool,
    /// Effective retention end of the stored object (for `already_present`, the original one).
    pub retain_until: UnixMillis,
    /// S3 version id; `None` for the local backend.
    pub version_id: Option<String>,
}

/// An object's retention as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionInfo {
    /// `COMPLIANCE` for everything we write; `GOVERNANCE` if someone else wrote the object.
    pub mode: String,
    pub retain_until: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// A different body is already stored under this key. Permanent: retrying cannot help and
    /// the stored object is never replaced; this means two different segments claim the same
    /// log range, which is an incident to investigate.
    #[error(
        "audit object {key} already exists with different content (stored sha256 {stored}, new {new})"
    )]
    Conflict {
        key: String,
        stored: String,
        new: String,
    },
    #[error("audit object {0} not found")]
    NotFound(String),
    #[error("invalid audit key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("invalid audit segment: {0}")]
    InvalidSegment(String),
    #[error("invalid retention for {key}: {reason}")]
    InvalidRetention { key: String, reason: String },
    /// Transient: network, timeout, throttling, 5xx, local I/O. Safe to retry later.
    #[error("audit store unavailable: {0}")]
    Unavailable(String),
    /// Permanent refusal or misconfiguration: access denied, bucket without Object Lock or
    /// versioning, malformed request. Needs an operator, not a retry.
    #[error("audit store rejected the request: {0}")]
    Rejected(String),
    /// A stored object does not match its recorded checksum or lacks its retention.
    #[error("audit store integrity failure: {0}")]
    Integrity(String),
}

impl AuditError {
    /// Whether an outbox should keep the object queued and try again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AuditError::Unavailable(_))
    }
}

/// Where audit objects go.
#[derive(Debug, Clone)]
pub enum AuditStore {
    Local(LocalWormStore),
    S3(S3Store),
}

impl AuditStore {
    pub async fn put(&self, obj: &AuditObject) -> Result<PutReceipt, AuditError> {
        match self {
            AuditStore::Local(s) => s.put(obj).await,
            AuditStore::S3(s) => s.put(obj).await,
        }
    }
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, AuditError> {
        match self {
            AuditStore::Local(s) => s.get(key).await,
            AuditStore::S3(s) => s.get(key).await,
        }
    }
    /// Keys starting with `prefix` (plain string prefix, as in S3), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        match self {
            AuditStore::Local(s) => s.list(prefix).await,
            AuditStore::S3(s) => s.list(prefix).await,
        }
    }
    pub async fn retention(&self, key: &str) -> Result<RetentionInfo, AuditError> {
        match self {
            AuditStore::Local(s) => s.retention(key).await,
            AuditStore::S3(s) => s.retention(key).await,
        }
    }
    /// One line for logs and `/status`: backend and location, never credentials.
    pub fn describe(&self) -> String {
        match self {
            AuditStore::Local(s) => s.describe(),
            AuditStore::S3(s) => s.describe(),
        }
    }
}

impl From<LocalWormStore> for AuditStore {
    fn from(s: LocalWormStore) -> Self {
        AuditStore::Local(s)
    }
}
impl From<S3Store> for AuditStore {
    fn from(s: S3Store) -> Self {
        AuditStore::S3(s)
    }
}

/// The object key for a segment:
/// `{jurisdiction}/{yyyy}/{mm}/{dd}/{log}/{first_seq:020}-{last_seq:020}.seg`.
///
/// `{log}` is the log id with `/` replaced by `~` (`hub/gb-1` → `hub~gb-1`) so a log is one
/// path component; `~` is not allowed in log ids, so the mapping is reversible. The date is the
/// UTC date of the segment's first record, so a regulator can list one day with one prefix.
/// Zero-padded sequence numbers make lexicographic order (S3 listing order) numeric order.
pub fn audit_key(
    jurisdiction: &Jurisdiction,
    log_id: &LogId,
    first_seq: Seq,
    last_seq: Seq,
    first_record_time: UnixMillis,
) -> String {
    let d = first_record_time.date();
    let log = log_id.as_str().replace('/', "~");
    format!(
        "{j}/{y:04}/{m:02}/{dd:02}/{log}/{a:020}-{b:020}.seg",
        j = jurisdiction.as_str(),
        y = d.year,
        m = d.month,
        dd = d.day,
        a = first_seq.0,
        b = last_seq.0
    )
}

fn key_char_ok(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':')
}

/// Checks a key is safe as both an S3 key and a relative path under the local root: `/`
/// separated non-empty components of `A-Z a-z 0-9 - _ . ~ :`, none starting with `.` (that
/// excludes `.`/`..` traversal and the local backend's temp files), not ending with the
/// sidecar suffix.
pub fn validate_key(key: &str) -> Result<(), AuditError> {
    let bad = |reason| {
        Err(AuditError::InvalidKey {
            key: key.chars().take(120).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("longer than 1024 bytes");
    }
    if key.ends_with(SIDECAR_SUFFIX) {
        return bad("ends with the reserved suffix .retention.json");
    }
    for comp in key.split('/') {
        if comp.is_empty() {
            return bad("empty path component (leading, trailing or double '/')");
        }
        if comp.starts_with('.') {
            return bad("path component starts with '.'");
        }
        if !comp.bytes().all(key_char_ok) {
            return bad("only A-Z a-z 0-9 - _ . ~ : and '/' are allowed");
        }
    }
    Ok(())
}

/// A list prefix is a key prefix: same characters, may be empty or end with `/`, and must not
/// contain a component that could walk out of the local root.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), AuditError> {
    let bad = |reason| {
        Err(AuditError::InvalidKey {
            key: prefix.chars().take(120).collect(),
            reason,
        })
    };
    if prefix.len() > MAX_KEY_LEN {
        return bad("prefix longer than 1024 bytes");
    }
    if !prefix.bytes().all(|b| key_char_ok(b) || b == b'/') {
        return bad("only A-Z a-z 0-9 - _ . ~ : and '/' are allowed");
    }
    if prefix.starts_with('/') || prefix.split('/').any(|c| c == "." || c == "..") {
        return bad("prefix must be relative without '.' or '..' components");
    }
    Ok(())
}

/// Retention is stored in whole seconds; round up so it is never shorter than requested.
pub(crate) fn round_up_to_second(t: UnixMillis) -> UnixMillis {
    let secs = t.0.div_euclid(1000) + i64::from(t.0.rem_euclid(1000) != 0);
    UnixMillis(secs.saturating_mul(1000))
}

/// The hub's wall clock, only used to refuse a retention date already in the past (S3 refuses
/// those too; checking up front makes both backends behave alike and the error permanent).
pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn check_retain_until(obj: &AuditObject) -> Result<UnixMillis, AuditError> {
    let until = round_up_to_second(obj.retain_until);
    if until.0 <= now_millis() {
        return Err(AuditError::InvalidRetention {
            key: obj.key.clone(),
            reason: format!(
                "retain-until {} ms is not in the future",
                obj.retain_until.0
            ),
        });
    }
    Ok(until)
}

pub(crate) fn sha256_hex(body: &[u8]) -> String {
    hex::encode(outpost_core::log::sha256(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let j = Jurisdiction::new("GB").unwrap();
        let log = LogId::new("hub/gb-1").unwrap();
        // 2023-11-14T22:13:20Z
        let k = audit_key(&j, &log, Seq(1), Seq(250), UnixMillis(1_700_000_000_000));
        assert_eq!(
            k,
            "GB/2023/11/14/hub~gb-1/00000000000000000001-00000000000000000250.seg"
        );
        assert!(validate_key(&k).is_ok());
        // Last millisecond of a day stays on that day.
        let k = audit_key(
            &j,
            &LogId::new("gb-1").unwrap(),
            Seq(7),
            Seq(7),
            UnixMillis(86_400_000 - 1),
        );
        assert_eq!(
            k,
            "GB/1970/01/01/gb-1/00000000000000000007-00000000000000000007.seg"
        );
    }

    #[test]
    fn rejects_unsafe_keys() {
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "..",
            "a/./b",
            "a/.hidden",
            "trailing/",
            "sp ace",
            "x.seg.retention.json",
            "back\\slash",
            "nul\0",
            "ünï",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"a".repeat(1025)).is_err());
        assert!(validate_prefix("").is_ok());
        assert!(validate_prefix("GB/2023/").is_ok());
        assert!(validate_prefix("GB/../x").is_err());
        assert!(validate_prefix("/GB").is_err());
    }

    #[test]
    fn rounding() {
        assert_eq!(round_up_to_second(UnixMillis(1000)), UnixMillis(1000));
        assert_eq!(round_up_to_second(UnixMillis(1001)), UnixMillis(2000));
        assert_eq!(round_up_to_second(UnixMillis(-1)), UnixMillis(0));
        // Saturates instead of overflowing on hostile input.
        assert_eq!(
            round_up_to_second(UnixMillis(i64::MAX)),
            UnixMillis(i64::MAX)
        );
    }
}
