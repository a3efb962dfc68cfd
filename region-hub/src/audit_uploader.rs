//! The audit uploader: a background task that drains `audit_outbox` into the [`AuditStore`].
//!
//! Objects are tried in id order (the order they were committed). While the store is
//! unavailable nothing is lost: the object stays in the outbox with its attempt count, next
//! attempt time and last error persisted, and is retried with capped exponential backoff,
//! across restarts too. The first `Unavailable` ends a pass, since the rest would fail the
//! same way. A permanent refusal (conflict, rejected, bad retention) cannot be fixed by
//! retrying soon; such an object is kept and retried at the maximum backoff while an error
//! is logged for the operator, and it does not block the objects behind it.
//!
//! `put` is idempotent for identical bodies, so a crash between a successful upload and the
//! database update only causes a harmless re-put. On success the row moves to
//! `audit_segments`.
//!
//! The same task also cuts segments whose age limit has passed, since no commit may come
//! along to do it.

use crate::audit::{AuditError, AuditObject, AuditStore};
use crate::outbox;
use crate::store::{HubState, StoreError, TxEffects, now_ms};
use outpost_core::time::UnixMillis;
use rusqlite::params;
use std::time::Duration;
use tokio::sync::watch;

/// Retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base_ms: 500,
            max_ms: 60_000,
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempts + 1`, after `attempts` failures (≥ 1).
    pub fn delay_ms(&self, attempts: i64) -> i64 {
        let shift = attempts.saturating_sub(1).clamp(0, 30) as u32;
        self.base_ms.saturating_mul(1i64 << shift).min(self.max_ms)
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub uploaded: usize,
    pub failed: usize,
    /// True if the pass stopped because the store is unavailable.
    pub store_unavailable: bool,
}

#[derive(Debug)]
struct OutboxRow {
    id: i64,
    log_id: String,
    first_seq: i64,
    last_seq: i64,
    key: String,
    body: Vec<u8>,
    retain_until_ms: i64,
    attempts: i64,
}

/// Rows fetched per pass; bounds memory (bodies are whole segments).
const BATCH: usize = 32;

/// How `AuditError::Unavailable` starts when displayed (stored as `last_error`).
const UNAVAILABLE_PREFIX: &str = "audit store unavailable:";

impl HubState {
    /// Cut segments that are due by age (all pending ones with `force`). Returns how many.
    pub async fn cut_due_segments(&self, force: bool) -> Result<usize, StoreError> {
        self.blocking(move |s| s.cut_due_segments_blocking(now_ms(), force))
            .await
    }

    pub fn cut_due_segments_blocking(
        &self,
        now: UnixMillis,
        force: bool,
    ) -> Result<usize, StoreError> {
        let mut conn = self.db().conn();
        let tx = conn.transaction()?;
        let n = outbox::cut_due(&tx, self.audit_policy(), now, force)?;
        tx.commit()?;
        drop(conn);
        self.after_commit(TxEffects {
            segments: n,
            ..TxEffects::default()
        });
        Ok(n)
    }

    /// The due rows, oldest first. A row waiting out its backoff because the store was
    /// unavailable is a barrier: nothing behind it may overtake it, so objects reach the store
    /// in the order they were committed, also after an outage. A row the store refused
    /// permanently (kept for the operator, see the module docs) is skipped instead, so one bad
    /// object cannot hold up the trail.
    fn due_outbox(&self, now: UnixMillis) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.db().reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, log_id, first_seq, last_seq, key, body, retain_until_ms, attempts, next_attempt_ms, last_error
             FROM audit_outbox ORDER BY id LIMIT ?1",
        )?;
        let mut rows = stmt.query([(BATCH * 4) as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let next_attempt_ms: i64 = r.get(8)?;
            if next_attempt_ms > now.0 {
                let last_error: Option<String> = r.get(9)?;
                if last_error.is_some_and(|e| e.starts_with(UNAVAILABLE_PREFIX)) {
                    break;
                }
                continue;
            }
            out.push(OutboxRow {
                id: r.get(0)?,
                log_id: r.get(1)?,
                first_seq: r.get(2)?,
                last_seq: r.get(3)?,
                key: r.get(4)?,
                body: r.get(5)?,
                retain_until_ms: r.get(6)?,
                attempts: r.get(7)?,
            });
            if out.len() >= BATCH {
                break;
            }
        }
        Ok(out)
    }

    fn outbox_uploaded(
        &self,
        row: &OutboxRow,
        sha256: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let mut conn = self.db().conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO audit_segments (log_id, first_seq, last_seq, key, sha256, uploaded_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (log_id, first_seq) DO NOTHING",
            params![row.log_id, row.first_seq, row.last_seq, row.key, sha256, now.0],
        )?;
        tx.execute("DELETE FROM audit_outbox WHERE id = ?1", [row.id])?;
        tx.commit()?;
        Ok(())
    }

    fn outbox_failed(
        &self,
        row: &OutboxRow,
        error: &AuditError,
        backoff: Backoff,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let attempts = row.attempts.saturating_add(1);
        let delay = if error.is_retryable() {
            backoff.delay_ms(attempts)
        } else {
            backoff.max_ms
        };
        self.db().conn().execute(
            "UPDATE audit_outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
            params![row.id, attempts, now.0.saturating_add(delay), error.to_string()],
        )?;
        Ok(())
    }

    /// Earliest `next_attempt_ms` in the outbox, if any.
    fn next_outbox_attempt(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.db().reader().query_row(
            "SELECT MIN(next_attempt_ms) FROM audit_outbox",
            [],
            |r| r.get(0),
        )?)
    }
}

/// One pass over the due part of the outbox.
pub async fn drain_once(
    state: &HubState,
    store: &AuditStore,
    backoff: Backoff,
) -> Result<DrainReport, StoreError> {
    let now = now_ms();
    let rows = state.blocking(move |s| s.due_outbox(now)).await?;
    let mut report = DrainReport::default();
    for row in rows {
        let obj = AuditObject {
            key: row.key.clone(),
            body: row.body.clone(),
            retain_until: UnixMillis(row.retain_until_ms),
        };
        let result = store.put(&obj).await;
        let now = now_ms();
        match result {
            Ok(receipt) => {
                tracing::debug!(key = %receipt.key, already_present = receipt.already_present, "audit object stored");
                state
                    .blocking(move |s| s.outbox_uploaded(&row, &receipt.sha256, now))
                    .await?;
                report.uploaded += 1;
            }
            Err(e) => {
                let retryable = e.is_retryable();
                if retryable {
                    tracing::warn!(key = %row.key, attempt = row.attempts + 1, error = %e, "audit store unavailable; will retry");
                } else {
                    tracing::error!(key = %row.key, error = %e, "audit store refused an object; kept in the outbox, operator action needed");
                }
                state
                    .blocking(move |s| s.outbox_failed(&row, &e, backoff, now))
                    .await?;
                report.failed += 1;
                if retryable {
                    report.store_unavailable = true;
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Run until `shutdown` becomes true: cut age-due segments, drain, sleep until the next due
/// attempt, a new segment, or at most `poll` (age-based cuts need a clock tick).
pub async fn run_uploader(
    state: HubState,
    store: AuditStore,
    backoff: Backoff,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(store = %store.describe(), "audit uploader started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Err(e) = state.cut_due_segments(false).await {
            tracing::error!(error = %e, "cutting audit segments failed");
        }
        let mut sleep = poll;
        match drain_once(&state, &store, backoff).await {
            // A full batch went through: there may be more right away.
            Ok(r) if r.uploaded + r.failed >= BATCH && !r.store_unavailable => {
                sleep = Duration::ZERO
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "audit outbox pass failed"),
        }
        if let Ok(Some(next)) = state.blocking(|s| s.next_outbox_attempt()).await {
            let wait = next.saturating_sub(now_ms().0).max(0) as u64;
            sleep = sleep.min(Duration::from_millis(wait));
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = state.audit_wakeup().notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
    // Queue what is pending so the next start uploads it promptly; records are already safe in
    // the database either way.
    if let Err(e) = state.cut_due_segments(true).await {
        tracing::warn!(error = %e, "cutting pending audit segments at shutdown failed");
    }
    tracing::info!("audit uploader stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::LocalWormStore;
    use crate::test_support::*;
    use outpost_core::market::Outcome;

    fn counts(state: &HubState) -> (i64, i64, i64) {
        state
            .db()
            .reader()
            .query_row(
                "SELECT (SELECT COUNT(*) FROM audit_outbox), (SELECT COUNT(*) FROM audit_segments), (SELECT COALESCE(MAX(attempts), 0) FROM audit_outbox)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn drains_in_order_and_survives_an_unavailable_store() {
        let t = hub(eager());
        let mut edge = Edge::new();
        t.state
            .commit_upstream_blocking(&node_id(), edge.group(&[genesis()]), now())
            .unwrap();
        t.state
            .commit_upstream_blocking(
                &node_id(),
                edge.group(&[bet("b-1", 100, vec![leg("e-1", Outcome::Home, "2.0")])]),
                now(),
            )
            .unwrap();
        assert_eq!(counts(&t.state), (2, 0, 0));

        // The store's directory is replaced by a file: every put fails with an I/O error.
        let root = t.dir.path().join("worm");
        let store = AuditStore::Local(LocalWormStore::open(&root).unwrap());
        std::fs::remove_dir(&root).unwrap();
        std::fs::write(&root, b"not a directory").unwrap();
        let backoff = Backoff {
            base_ms: 0,
            max_ms: 0,
        };
        let r = drain_once(&t.state, &store, backoff).await.unwrap();
        assert_eq!(
            r,
            DrainReport {
                uploaded: 0,
                failed: 1,
                store_unavailable: true
            }
        );
        assert_eq!(
            counts(&t.state),
            (2, 0, 1),
            "kept, attempt counted, pass stopped at the first failure"
        );
        let err: String = t
            .state
            .db()
            .reader()
            .query_row(
                "SELECT last_error FROM audit_outbox ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(err.contains("unavailable"), "{err}");

        // With a real backoff the failed object is not retried before its time.
        let slow = Backoff {
            base_ms: 60_000,
            max_ms: 60_000,
        };
        t.state
            .db()
            .conn()
            .execute(
                "UPDATE audit_outbox SET next_attempt_ms = ?1",
                [now().0 + 60_000],
            )
            .unwrap();
        assert_eq!(
            drain_once(&t.state, &store, slow).await.unwrap(),
            DrainReport::default()
        );

        // The store comes back: everything is uploaded, in order, and verifies.
        t.state
            .db()
            .conn()
            .execute("UPDATE audit_outbox SET next_attempt_ms = 0", [])
            .unwrap();
        std::fs::remove_file(&root).unwrap();
        let store = AuditStore::Local(LocalWormStore::open(&root).unwrap());
        let r = drain_once(&t.state, &store, backoff).await.unwrap();
        assert_eq!((r.uploaded, r.failed), (2, 0));
        assert_eq!(counts(&t.state), (0, 2, 0));
        let keys = store.list("GB/").await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(
            keys[0].ends_with("/gb-1/00000000000000000001-00000000000000000001.seg"),
            "{keys:?}"
        );
        for key in keys {
            let (h, frames) =
                outpost_core::log::decode_segment(&store.get(&key).await.unwrap()).unwrap();
            outpost_core::log::verify_frames(
                &h.log_id,
                &node_key().public(),
                h.start().unwrap(),
                frames,
            )
            .unwrap();
        }
        assert_eq!(t.state.stats_view().unwrap().audit_uploaded, 2);
    }

    #[tokio::test]
    async fn uploader_task_uploads_and_stops_on_shutdown() {
        let t = hub(eager());
        let store = AuditStore::Local(LocalWormStore::open(t.dir.path().join("worm")).unwrap());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_uploader(
            t.state.clone(),
            store,
            Backoff::default(),
            Duration::from_secs(5),
            rx,
        ));
        let mut edge = Edge::new();
        let state = t.state.clone();
        let recs = edge.group(&[genesis()]);
        state
            .blocking(move |s| s.commit_upstream_blocking(&node_id(), recs, now()))
            .await
            .unwrap();
        // Woken by the commit, well before the 5 s poll.
        for _ in 0..100 {
            if counts(&t.state).1 == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(counts(&t.state), (0, 1, 0));
        tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn an_unavailable_head_is_a_barrier_a_refused_one_is_not() {
        let t = hub(eager());
        let mut edge = Edge::new();
        for g in [
            vec![genesis()],
            vec![bet("b-1", 100, vec![leg("e-1", Outcome::Home, "2.0")])],
        ] {
            t.state
                .commit_upstream_blocking(&node_id(), edge.group(&g), now())
                .unwrap();
        }
        let ids = |s: &HubState| -> Vec<i64> {
            s.due_outbox(now()).unwrap().iter().map(|r| r.id).collect()
        };
        let all = ids(&t.state);
        assert_eq!(all.len(), 2);
        let set = |err: &str| {
            t.state
                .db()
                .conn()
                .execute(
                    "UPDATE audit_outbox SET next_attempt_ms = ?1, last_error = ?2 WHERE id = ?3",
                    params![now().0 + 60_000, err, all[0]],
                )
                .unwrap();
        };
        set("audit store unavailable: connection refused");
        assert_eq!(
            ids(&t.state),
            Vec::<i64>::new(),
            "nothing overtakes a head waiting for the store"
        );
        set("audit store rejected the request: AccessDenied");
        assert_eq!(
            ids(&t.state),
            vec![all[1]],
            "a permanently refused object does not block the trail"
        );
    }

    #[test]
    fn backoff_is_exponential_and_capped() {
        let b = Backoff {
            base_ms: 500,
            max_ms: 10_000,
        };
        assert_eq!(b.delay_ms(1), 500);
        assert_eq!(b.delay_ms(2), 1000);
        assert_eq!(b.delay_ms(3), 2000);
        assert_eq!(b.delay_ms(6), 10_000);
        assert_eq!(b.delay_ms(1000), 10_000);
    }
}
