//! Check 3 (database side): every record of every node's log, and every record of the hub's
//! down chain to it, that falls in the window is in the audit trail.
//!
//! Per log, the window's seq range is split by where each record is: in an uploaded object
//! (`audit_segments`: fine), queued in the outbox (fine while the store is down, but a minor
//! or major finding after the documented waits), not yet cut (fine for a moment, critical once
//! older than the cut policy allows), or nowhere although the cut cursor has passed it
//! (critical: a hole in the audit trail). [`super::audit_verify`] then re-reads the uploaded
//! objects from the store itself.

use super::scan::NodeRef;
use super::window::Window;
use super::{Check, CheckOutput, Discrepancy, ReconcileError, Severity, Thresholds};
use crate::outbox::{Direction, up_log_id};
use rusqlite::{Connection, OptionalExtension, params};

/// A log's seq range inside the window, for the object verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRange {
    pub node: NodeRef,
    pub log_id: String,
    pub down: bool,
    pub lo: u64,
    pub hi: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Uploaded,
    Queued { attempts: i64, idx: usize },
}

pub fn check(
    conn: &Connection,
    nodes: &[NodeRef],
    w: Window,
    now_ms: i64,
    th: &Thresholds,
    out: &mut CheckOutput,
) -> Result<Vec<LogRange>, ReconcileError> {
    let mut ranges = Vec::new();
    for node in nodes {
        for dir in [Direction::Up, Direction::Down] {
            if let Some(r) = check_log(conn, node, dir, w, now_ms, th, out)? {
                ranges.push(r);
            }
        }
    }
    Ok(ranges)
}

fn check_log(
    conn: &Connection,
    node: &NodeRef,
    dir: Direction,
    w: Window,
    now_ms: i64,
    th: &Thresholds,
    out: &mut CheckOutput,
) -> Result<Option<LogRange>, ReconcileError> {
    let j = &node.jurisdiction;
    let log_id = match dir {
        Direction::Up => up_log_id(&node.id).to_string(),
        Direction::Down => dir.log_id(&node.id).to_string(),
    };
    let (table, seq_col) = match dir {
        Direction::Up => ("records", "seq"),
        Direction::Down => ("down_records", "down_seq"),
    };
    let (lo, hi, n): (Option<i64>, Option<i64>, i64) = conn.query_row(
        &format!("SELECT MIN({seq_col}), MAX({seq_col}), COUNT(*) FROM {table} WHERE node_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3"),
        params![node.id.as_str(), w.start_ms, w.end_ms],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(None);
    };
    out.examined(j, (hi - lo + 1) as u64);
    let finding = |severity, code: &str, a: i64, b: i64, detail: String| Discrepancy {
        check: Check::AuditCompleteness,
        severity,
        code: code.into(),
        node_id: Some(node.id.clone()),
        jurisdiction: j.clone(),
        subject: format!("{log_id} seq {a}-{b}"),
        amount_minor: None,
        event_ids: vec![],
        detail,
    };
    if n != hi - lo + 1 {
        out.found.push(finding(
            Severity::Critical,
            "record_missing_at_hub",
            lo,
            hi,
            format!("the hub holds {n} records of {log_id} in seq {lo}-{hi}: some are missing"),
        ));
    }
    let ts_of = |seq: i64| -> Result<Option<i64>, rusqlite::Error> {
        conn.query_row(
            &format!("SELECT ts_ms FROM {table} WHERE node_id = ?1 AND {seq_col} = ?2"),
            params![node.id.as_str(), seq],
            |r| r.get(0),
        )
        .optional()
    };

    let mut iv: Vec<(i64, i64, Where)> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, last_seq FROM audit_segments WHERE log_id = ?1 AND last_seq >= ?2 AND first_seq <= ?3",
    )?;
    for r in stmt.query_map(params![log_id, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (a, b) = r?;
        iv.push((a, b, Where::Uploaded));
    }
    let mut queued: Vec<(i64, i64, Option<String>)> = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, last_seq, attempts, last_error FROM audit_outbox WHERE log_id = ?1 AND last_seq >= ?2 AND first_seq <= ?3 ORDER BY id",
    )?;
    for r in stmt.query_map(params![log_id, lo, hi], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })? {
        let (a, b, attempts, err) = r?;
        iv.push((
            a,
            b,
            Where::Queued {
                attempts,
                idx: queued.len(),
            },
        ));
        queued.push((a, b, err));
    }
    iv.sort_by_key(|x| (x.0, x.1));
    let cut_seq: i64 = conn
        .query_row(
            "SELECT cut_seq FROM audit_cursors WHERE log_id = ?1",
            [&log_id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);

    let mut gaps: Vec<(i64, i64)> = Vec::new();
    let mut cursor = lo;
    for &(a, b, wh) in &iv {
        if b < cursor {
            continue;
        }
        if a > cursor {
            gaps.push((cursor, (a - 1).min(hi)));
        }
        if let Where::Queued { attempts, idx } = wh {
            let last_ts = ts_of(b)?.unwrap_or(now_ms);
            let waited = now_ms.saturating_sub(last_ts);
            match th.audit_wait(waited) {
                Some(sev) => {
                    let err = queued[idx].2.as_deref().unwrap_or("none");
                    out.found.push(finding(sev, "audit_upload_delayed", a, b,
                        format!("audit object waiting in the outbox for {} min after {attempts} attempts (last error: {err}); it is durable and will be retried", waited / 60_000)));
                }
                None => out.pending(j, (b.min(hi) - a.max(lo) + 1) as u64),
            }
        }
        cursor = cursor.max(b + 1);
        if cursor > hi {
            break;
        }
    }
    if cursor <= hi {
        gaps.push((cursor, hi));
    }
    for (a, b) in gaps {
        // Up to the cut cursor a segment must exist: a hole.
        if a <= cut_seq {
            let e = b.min(cut_seq);
            out.found.push(finding(Severity::Critical, "audit_gap", a, e,
                format!("records {a}-{e} of {log_id} were cut into audit segments, but no uploaded or queued object holds them")));
        }
        // After it: waiting to be cut; critical once older than the cut policy allows.
        let s = a.max(cut_seq + 1);
        if s <= b {
            let first_ts = ts_of(s)?.unwrap_or(now_ms);
            let waited = now_ms.saturating_sub(first_ts);
            if waited >= th.audit_uncut_critical_after_ms {
                out.found.push(finding(Severity::Critical, "audit_not_cut", s, b,
                    format!("records {s}-{b} of {log_id} have waited {} min without being cut into an audit segment", waited / 60_000)));
            } else {
                out.pending(j, (b - s + 1) as u64);
            }
        }
    }
    Ok(Some(LogRange {
        node: node.clone(),
        log_id,
        down: dir == Direction::Down,
        lo: lo as u64,
        hi: hi as u64,
    }))
}
