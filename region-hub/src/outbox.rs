//! Cutting committed records into audit segments and queueing them in `audit_outbox`.
//!
//! Every record the hub commits (an edge node's upstream records, and the hub's own down
//! records) must end up in the write-once audit store. Segments are cut inside the same
//! transaction that commits the records, so a crash can never leave a committed record that
//! no segment will cover; the uploader (`audit_uploader`) drains the outbox later and
//! survives the store being down.
//!
//! Per log, `audit_cursors` remembers the last record already cut (seq, hash, timestamp: the
//! `prev_*` fields of the next segment header) and since when records after it have waited.
//! A segment is cut when [`SegmentPolicy`] says so, and always ends on a sealed record, so each
//! object verifies on its own with `outpost_core::log::verify_frames`.

use crate::audit::{AuditError, AuditObject};
use crate::config::SegmentPolicy;
use outpost_core::hub::down_log_id;
use outpost_core::ids::{Jurisdiction, LogId, NodeId, Seq};
use outpost_core::log::{DecodeError, Frame, PublicKey, SegmentHeader};
use outpost_core::time::{CivilDate, UnixMillis};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;

/// `outpost_core::log`'s segment format tag (the constant itself is not exported).
const SEGMENT_FORMAT: &str = "outpost-segment/1";

/// Retention used for a jurisdiction missing from the config (only possible for a node that
/// was unregistered after it replicated): the longest configured one, since keeping a record
/// too long is recoverable and deleting it too early is not.
const FALLBACK_RETENTION_YEARS: u16 = 10;

/// Which of a node's two chains a log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The edge node's own log, replicated to the hub (log id = node id).
    Up,
    /// The hub's chain to the node (`hub/{node}`).
    Down,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
    fn parse(s: &str) -> Option<Direction> {
        match s {
            "up" => Some(Direction::Up),
            "down" => Some(Direction::Down),
            _ => None,
        }
    }
    pub(crate) fn log_id(self, node: &NodeId) -> LogId {
        match self {
            Direction::Up => up_log_id(node),
            Direction::Down => down_log_id(node),
        }
    }
}

/// An edge node's log id is its node id (both are validated DNS labels).
pub(crate) fn up_log_id(node: &NodeId) -> LogId {
    LogId::new(node.as_str()).expect("a node id is a valid log id")
}

/// What cutting needs besides the database.
#[derive(Debug, Clone)]
pub(crate) struct AuditPolicy {
    pub segment: SegmentPolicy,
    pub retention_years: BTreeMap<Jurisdiction, u16>,
    /// Signs every down chain.
    pub hub_public: PublicKey,
}

impl AuditPolicy {
    fn retention(&self, j: &Jurisdiction) -> u16 {
        self.retention_years.get(j).copied().unwrap_or_else(|| {
            self.retention_years
                .values()
                .copied()
                .max()
                .unwrap_or(FALLBACK_RETENTION_YEARS)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored record {log}#{seq} is corrupt: {detail}")]
    Corrupt {
        log: String,
        seq: i64,
        detail: String,
    },
    #[error("building audit object: {0}")]
    Audit(#[from] AuditError),
}

/// Note that `node`'s `dir` log has a new record waiting for a segment (starts the age clock).
pub(crate) fn note_pending(
    tx: &Connection,
    node: &NodeId,
    dir: Direction,
    now: UnixMillis,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit_cursors (log_id, node_id, direction, pending_since_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (log_id) DO UPDATE SET pending_since_ms = COALESCE(pending_since_ms, excluded.pending_since_ms)",
        params![dir.log_id(node).as_str(), node.as_str(), dir.name(), now.0],
    )?;
    Ok(())
}

/// Retention end: the same instant `years` calendar years later. 29 February maps to 1 March,
/// so the period is never shorter than asked.
pub(crate) fn add_years(t: UnixMillis, years: u16) -> UnixMillis {
    let day_ms = 86_400_000;
    let time_of_day = t.0.rem_euclid(day_ms);
    let d = t.date();
    let y = d.year.saturating_add(i32::from(years));
    let date = CivilDate::new(y, d.month, d.day).or_else(|_| CivilDate::new(y, 3, 1));
    match date {
        Ok(date) => UnixMillis(date.start_millis().0 + time_of_day),
        // Beyond year 9999: CivilDate refuses it; approximate with 366-day years (never shorter).
        Err(_) => UnixMillis(t.0.saturating_add(i64::from(years) * 366 * day_ms)),
    }
}

/// A committed record of a log, as a segment needs it.
#[derive(Debug)]
pub(crate) struct PendingRow {
    pub seq: i64,
    pub ts: i64,
    pub hash: String,
    pub frame: Frame,
}

/// Cut segments for one log if the policy says so (or `force`). Returns how many were queued.
pub(crate) fn cut(
    tx: &Connection,
    policy: &AuditPolicy,
    node: &NodeId,
    dir: Direction,
    now: UnixMillis,
    force: bool,
) -> Result<usize, OutboxError> {
    cut_with(tx, policy, node, dir, now, force, Vec::new())
}

/// [`cut`], given `recent`: the log's newest records, just written in this transaction and
/// still in memory, contiguous up to the head. Only the records before them are read back
/// from the database (the settle pass writes a million down records; reading them all back
/// to cut segments would double its work).
pub(crate) fn cut_with(
    tx: &Connection,
    policy: &AuditPolicy,
    node: &NodeId,
    dir: Direction,
    now: UnixMillis,
    force: bool,
    recent: Vec<PendingRow>,
) -> Result<usize, OutboxError> {
    let log_id = dir.log_id(node);
    let cursor: Option<(i64, String, i64, Option<i64>)> = tx
        .query_row(
            "SELECT cut_seq, cut_hash, cut_ts, pending_since_ms FROM audit_cursors WHERE log_id = ?1",
            [log_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((cut_seq, cut_hash, cut_ts, pending_since)) = cursor else {
        return Ok(0);
    };
    let (table, seq_col) = match dir {
        Direction::Up => ("records", "seq"),
        Direction::Down => ("down_records", "down_seq"),
    };
    let head: i64 = tx.query_row(
        &format!("SELECT COALESCE(MAX({seq_col}), 0) FROM {table} WHERE node_id = ?1"),
        [node.as_str()],
        |r| r.get(0),
    )?;
    let pending = head - cut_seq;
    if pending <= 0 {
        return Ok(0);
    }
    let age_due =
        pending_since.is_none_or(|since| now.0.saturating_sub(since) >= policy.segment.max_age_ms);
    if !(force || age_due || pending as u64 >= policy.segment.max_records) {
        return Ok(0);
    }

    let (jurisdiction, node_key): (String, String) = tx.query_row(
        "SELECT jurisdiction, public_key FROM nodes WHERE id = ?1",
        [node.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let corrupt = |seq: i64, detail: String| OutboxError::Corrupt {
        log: log_id.to_string(),
        seq,
        detail,
    };
    let jurisdiction = Jurisdiction::new(jurisdiction)
        .map_err(|e| corrupt(0, format!("node jurisdiction: {e}")))?;
    let public_key = match dir {
        Direction::Up => node_key,
        Direction::Down => policy.hub_public.to_hex(),
    };
    let years = policy.retention(&jurisdiction);

    // `recent` is used only if it really ends at the head and is contiguous; anything else
    // (never expected) falls back to reading everything from the database.
    let usable = recent.last().is_some_and(|r| r.seq == head)
        && recent.first().is_some_and(|r| r.seq > cut_seq)
        && recent.windows(2).all(|w| w[1].seq == w[0].seq + 1);
    let (recent, read_below) = if usable {
        let first = recent[0].seq;
        (recent, first)
    } else {
        (Vec::new(), i64::MAX)
    };
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {seq_col}, ts_ms, hash, frame FROM {table} WHERE node_id = ?1 AND {seq_col} > ?2 AND {seq_col} < ?3 ORDER BY {seq_col}"
    ))?;
    let rows = stmt
        .query_map(params![node.as_str(), cut_seq, read_below], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut frames = Vec::with_capacity(rows.len() + recent.len());
    for (seq, ts, hash, bytes) in rows {
        let frame =
            Frame::decode_exact(&bytes).map_err(|e: DecodeError| corrupt(seq, e.to_string()))?;
        frames.push(PendingRow {
            seq,
            ts,
            hash,
            frame,
        });
    }
    frames.extend(recent);

    // Chunks hold at most `max_records` records where a seal allows it; a single commit group
    // larger than that stays whole, since a segment must end on a seal to verify.
    let max = policy.segment.max_records.max(1) as usize;
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    let mut last_sealed: Option<usize> = None;
    for (i, row) in frames.iter().enumerate() {
        if row.frame.seal.is_some() {
            last_sealed = Some(i);
        }
        if i + 1 - start >= max
            && let Some(ls) = last_sealed.filter(|&ls| ls >= start)
        {
            chunks.push((start, ls));
            start = ls + 1;
        }
    }
    if let Some(ls) = last_sealed.filter(|&ls| ls >= start) {
        chunks.push((start, ls));
        start = ls + 1;
    }

    let (mut prev_seq, mut prev_hash, mut prev_ts) = (cut_seq, cut_hash, cut_ts);
    for &(a, b) in &chunks {
        let run = &frames[a..=b];
        let (first, last) = (&run[0], &run[run.len() - 1]);
        let header = SegmentHeader {
            format: SEGMENT_FORMAT.to_string(),
            log_id: log_id.clone(),
            first_seq: Seq(first.seq as u64),
            last_seq: Seq(last.seq as u64),
            prev_hash: prev_hash.clone(),
            prev_timestamp_ms: prev_ts,
            last_hash: last.hash.clone(),
            records: run.len() as u64,
            public_key: public_key.clone(),
        };
        let body: Vec<Frame> = run.iter().map(|r| r.frame.clone()).collect();
        // Retained from the *last* record's time, so every record in it is kept long enough.
        let retain_until = add_years(UnixMillis(last.ts), years);
        let obj = AuditObject::for_segment(&jurisdiction, &header, &body, retain_until)?;
        tx.execute(
            "INSERT INTO audit_outbox (log_id, jurisdiction, first_seq, last_seq, key, body, retain_until_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![log_id.as_str(), jurisdiction.as_str(), first.seq, last.seq, obj.key, obj.body, obj.retain_until.0, now.0],
        )?;
        debug_assert!(first.seq == prev_seq + 1);
        (prev_seq, prev_hash, prev_ts) = (last.seq, last.hash.clone(), last.ts);
    }
    let still_pending = start < frames.len();
    tx.execute(
        "UPDATE audit_cursors SET cut_seq = ?2, cut_hash = ?3, cut_ts = ?4, pending_since_ms = ?5 WHERE log_id = ?1",
        params![log_id.as_str(), prev_seq, prev_hash, prev_ts, still_pending.then_some(now.0)],
    )?;
    Ok(chunks.len())
}

/// Cut every log whose oldest pending record has waited past the age limit (or all pending
/// logs with `force`, e.g. at shutdown). Returns how many segments were queued.
pub(crate) fn cut_due(
    tx: &Connection,
    policy: &AuditPolicy,
    now: UnixMillis,
    force: bool,
) -> Result<usize, OutboxError> {
    let due: Vec<(String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT node_id, direction FROM audit_cursors
             WHERE pending_since_ms IS NOT NULL AND (?1 OR pending_since_ms <= ?2) ORDER BY log_id",
        )?;
        stmt.query_map(
            params![force, now.0.saturating_sub(policy.segment.max_age_ms)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?
    };
    let mut n = 0;
    for (node, dir) in due {
        let (Ok(node), Some(dir)) = (NodeId::new(node.clone()), Direction::parse(&dir)) else {
            return Err(OutboxError::Corrupt {
                log: node,
                seq: 0,
                detail: format!("audit cursor direction {dir:?}"),
            });
        };
        n += cut(tx, policy, &node, dir, now, force)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_years_keeps_time_of_day_and_never_shortens() {
        // 2023-11-14T22:13:20Z + 7y = 2030-11-14T22:13:20Z
        let t = UnixMillis(1_700_000_000_000);
        let r = add_years(t, 7);
        assert_eq!(r.date().to_string(), "2030-11-14");
        assert_eq!(r.0.rem_euclid(86_400_000), t.0.rem_euclid(86_400_000));
        let leap = CivilDate::parse("2024-02-29").unwrap().start_millis();
        assert_eq!(add_years(leap, 1).date().to_string(), "2025-03-01");
        assert_eq!(add_years(leap, 4).date().to_string(), "2028-02-29");
    }
}
