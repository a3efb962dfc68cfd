//! What the audit outbox and the uploaded-object list look like, for ops
//! (`GET /v1/audit/outbox`) and for tests that watch the outbox ride out an S3 outage.

use crate::store::{HubState, StoreError};
use serde::Serialize;

/// One object waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEntry {
    /// Drain order.
    pub id: i64,
    pub log_id: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub key: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// One uploaded object, in upload order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadedEntry {
    pub log_id: String,
    pub first_seq: i64,
    pub last_seq: i64,
    pub key: String,
    pub sha256: String,
    pub uploaded_ms: i64,
}

impl HubState {
    /// The outbox in drain order (at most `limit` entries).
    pub fn audit_outbox_view(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.db().reader();
        let mut st = conn.prepare(
            "SELECT id, log_id, first_seq, last_seq, key, attempts, next_attempt_ms, last_error FROM audit_outbox ORDER BY id LIMIT ?1",
        )?;
        let rows = st.query_map([limit], |r| {
            Ok(OutboxEntry {
                id: r.get(0)?,
                log_id: r.get(1)?,
                first_seq: r.get(2)?,
                last_seq: r.get(3)?,
                key: r.get(4)?,
                attempts: r.get(5)?,
                next_attempt_ms: r.get(6)?,
                last_error: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every uploaded object in the order it was uploaded (`audit_segments` rowid order).
    pub fn audit_uploaded_view(&self) -> Result<Vec<UploadedEntry>, StoreError> {
        let conn = self.db().reader();
        let mut st = conn.prepare(
            "SELECT log_id, first_seq, last_seq, key, sha256, uploaded_ms FROM audit_segments ORDER BY rowid",
        )?;
        let rows = st.query_map([], |r| {
            Ok(UploadedEntry {
                log_id: r.get(0)?,
                first_seq: r.get(1)?,
                last_seq: r.get(2)?,
                key: r.get(3)?,
                sha256: r.get(4)?,
                uploaded_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
