//! The audit verifier: re-reads audit objects from the store (S3 or the local WORM
//! directory) and checks each against the hub's log. Part of check 3 when a run has the
//! store at hand (the hub's scheduler and `outpost reconcile` do), and on its own as
//! `outpost audit-verify`.
//!
//! For every object recorded as uploaded (`audit_segments`), all critical if they fail:
//! the object exists; its SHA-256 equals the one recorded at upload; it decodes as a segment
//! whose header names the recorded log and range; its chain and seals verify with the node's
//! (or, for a down chain, the hub's) registered key; every record's hash equals the hash of
//! the record the hub committed; and it is locked in COMPLIANCE mode until at least the
//! retention its jurisdiction requires after its last record.

use super::audit_check::LogRange;
use super::scan::NodeRef;
use super::{Check, CheckOutput, Discrepancy, ReconcileError, Severity};
use crate::audit::{AuditError, AuditStore, RETENTION_MODE};
use crate::outbox::{add_years, up_log_id};
use crate::store::HubState;
use outpost_core::hub::down_log_id;
use outpost_core::log::{PublicKey, decode_segment, verify_frames};
use outpost_core::time::UnixMillis;
use rusqlite::params;
use serde::Serialize;
use std::collections::HashMap;

/// Which objects to verify.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    /// Objects overlapping these ranges (a reconciliation window).
    Ranges(Vec<LogRange>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifySummary {
    pub objects: u64,
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
struct Row {
    log_id: String,
    first_seq: i64,
    last_seq: i64,
    key: String,
    sha256: String,
}

struct LogInfo {
    node: NodeRef,
    key: PublicKey,
    down: bool,
    years: u16,
}

fn rows(state: &HubState, sel: &Selection) -> Result<Vec<Row>, ReconcileError> {
    let conn = state.db().reader();
    let map = |r: &rusqlite::Row<'_>| {
        Ok(Row {
            log_id: r.get(0)?,
            first_seq: r.get(1)?,
            last_seq: r.get(2)?,
            key: r.get(3)?,
            sha256: r.get(4)?,
        })
    };
    let sql = "SELECT log_id, first_seq, last_seq, key, sha256 FROM audit_segments";
    let mut out = Vec::new();
    match sel {
        Selection::All => {
            let mut st = conn.prepare(&format!("{sql} ORDER BY log_id, first_seq"))?;
            for r in st.query_map([], map)? {
                out.push(r?);
            }
        }
        Selection::Ranges(ranges) => {
            let mut st = conn.prepare(&format!(
                "{sql} WHERE log_id = ?1 AND last_seq >= ?2 AND first_seq <= ?3 ORDER BY first_seq"
            ))?;
            for g in ranges {
                for r in st.query_map(params![g.log_id, g.lo as i64, g.hi as i64], map)? {
                    out.push(r?);
                }
            }
        }
    }
    Ok(out)
}

/// Hashes and last timestamp the hub holds for `log` seq `a..=b`.
fn log_hashes(
    state: &HubState,
    info_down: bool,
    node: &str,
    a: i64,
    b: i64,
) -> Result<(Vec<(i64, String)>, i64), ReconcileError> {
    let conn = state.db().reader();
    let sql = if info_down {
        "SELECT down_seq, hash, ts_ms FROM down_records WHERE node_id = ?1 AND down_seq BETWEEN ?2 AND ?3 ORDER BY down_seq"
    } else {
        "SELECT seq, hash, ts_ms FROM records WHERE node_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq"
    };
    let mut st = conn.prepare_cached(sql)?;
    let mut out = Vec::new();
    let mut last_ts = 0;
    for r in st.query_map(params![node, a, b], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (s, h, t) = r?;
        last_ts = t;
        out.push((s, h));
    }
    Ok((out, last_ts))
}

/// Verify the selected objects. `progress(done, total)` is called after each object.
pub async fn verify(
    state: &HubState,
    store: &AuditStore,
    sel: Selection,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<(CheckOutput, VerifySummary), ReconcileError> {
    let mut logs: HashMap<String, LogInfo> = HashMap::new();
    let policy = state.audit_policy();
    let longest = policy.retention_years.values().copied().max().unwrap_or(10);
    for n in state.registered_nodes() {
        let node = NodeRef {
            id: n.id.clone(),
            jurisdiction: n.jurisdiction.clone(),
        };
        let years = policy
            .retention_years
            .get(&n.jurisdiction)
            .copied()
            .unwrap_or(longest);
        logs.insert(
            up_log_id(&n.id).to_string(),
            LogInfo {
                node: node.clone(),
                key: n.public_key,
                down: false,
                years,
            },
        );
        logs.insert(
            down_log_id(&n.id).to_string(),
            LogInfo {
                node,
                key: state.hub_public_key(),
                down: true,
                years,
            },
        );
    }
    let st = state.clone();
    let rows = tokio::task::spawn_blocking(move || rows(&st, &sel))
        .await
        .map_err(|e| ReconcileError::Corrupt(format!("verifier task: {e}")))??;
    let mut out = CheckOutput::default();
    let mut sum = VerifySummary::default();
    let total = rows.len() as u64;
    for (i, row) in rows.into_iter().enumerate() {
        progress(i as u64, total);
        // Reports and other hub objects are not node logs; their checksums are still checked.
        let info = logs.get(&row.log_id);
        let j = info.map(|i| i.node.jurisdiction.clone());
        let fail = |out: &mut CheckOutput, severity, code: &str, detail: String| {
            if let (Some(info), Some(j)) = (info, &j) {
                out.found.push(Discrepancy {
                    check: Check::AuditCompleteness,
                    severity,
                    code: code.into(),
                    node_id: Some(info.node.id.clone()),
                    jurisdiction: j.clone(),
                    subject: row.key.clone(),
                    amount_minor: None,
                    event_ids: vec![],
                    detail,
                });
            }
        };
        let Some(info) = info else { continue };
        let body = match store.get(&row.key).await {
            Ok(b) => b,
            Err(AuditError::NotFound(_)) => {
                fail(
                    &mut out,
                    Severity::Critical,
                    "audit_object_missing",
                    format!(
                        "{} seq {}-{} is recorded as uploaded but the store does not have it",
                        row.log_id, row.first_seq, row.last_seq
                    ),
                );
                continue;
            }
            Err(e @ AuditError::Unavailable(_)) => {
                fail(
                    &mut out,
                    Severity::Major,
                    "audit_store_unavailable",
                    format!("could not re-read audit objects: {e}"),
                );
                break;
            }
            Err(e @ AuditError::Integrity(_)) => {
                fail(
                    &mut out,
                    Severity::Critical,
                    "audit_object_altered",
                    e.to_string(),
                );
                continue;
            }
            Err(e) => {
                fail(
                    &mut out,
                    Severity::Critical,
                    "audit_object_unreadable",
                    e.to_string(),
                );
                continue;
            }
        };
        sum.objects += 1;
        sum.bytes += body.len() as u64;
        out.examined(&info.node.jurisdiction, 1);
        let sha = hex::encode(outpost_core::log::sha256(&body));
        if sha != row.sha256 {
            fail(
                &mut out,
                Severity::Critical,
                "audit_object_altered",
                format!(
                    "stored object has sha256 {sha}, {} was recorded at upload",
                    row.sha256
                ),
            );
            continue;
        }
        let (header, frames) = match decode_segment(&body) {
            Ok(x) => x,
            Err(e) => {
                fail(
                    &mut out,
                    Severity::Critical,
                    "audit_object_invalid",
                    format!("not a segment: {e}"),
                );
                continue;
            }
        };
        if header.log_id.as_str() != row.log_id
            || header.first_seq.0 as i64 != row.first_seq
            || header.last_seq.0 as i64 != row.last_seq
        {
            fail(
                &mut out,
                Severity::Critical,
                "audit_object_invalid",
                format!(
                    "header says {}#{}-{}",
                    header.log_id, header.first_seq, header.last_seq
                ),
            );
            continue;
        }
        let hashes: Vec<String> = frames.iter().map(|f| f.hash().to_hex()).collect();
        let start = match header.start() {
            Ok(s) => s,
            Err(e) => {
                fail(
                    &mut out,
                    Severity::Critical,
                    "audit_object_invalid",
                    e.to_string(),
                );
                continue;
            }
        };
        if let Err(e) = verify_frames(&header.log_id, &info.key, start, frames) {
            fail(
                &mut out,
                Severity::Critical,
                "audit_object_does_not_verify",
                e.to_string(),
            );
            continue;
        }
        let st = state.clone();
        let (down, node, a, b) = (
            info.down,
            info.node.id.to_string(),
            row.first_seq,
            row.last_seq,
        );
        let (held, last_ts) =
            tokio::task::spawn_blocking(move || log_hashes(&st, down, &node, a, b))
                .await
                .map_err(|e| ReconcileError::Corrupt(format!("verifier task: {e}")))??;
        sum.records += hashes.len() as u64;
        let differs =
            held.len() != hashes.len() || held.iter().zip(&hashes).any(|((_, h), o)| h != o);
        if differs {
            fail(
                &mut out,
                Severity::Critical,
                "audit_object_differs_from_log",
                format!(
                    "records {}-{} in the object are not the records the hub committed",
                    row.first_seq, row.last_seq
                ),
            );
            continue;
        }
        match store.retention(&row.key).await {
            Ok(r) => {
                let needed = add_years(UnixMillis(last_ts), info.years).0;
                if r.mode != RETENTION_MODE {
                    fail(
                        &mut out,
                        Severity::Critical,
                        "audit_retention_mode",
                        format!("object is locked in {} mode, not {RETENTION_MODE}", r.mode),
                    );
                } else if r.retain_until.0 + 999 < needed {
                    fail(
                        &mut out,
                        Severity::Critical,
                        "audit_retention_short",
                        format!(
                            "retained until {} ms, {} requires {} years after the last record ({needed} ms)",
                            r.retain_until.0, info.node.jurisdiction, info.years
                        ),
                    );
                }
            }
            Err(e) => fail(
                &mut out,
                Severity::Critical,
                "audit_retention_missing",
                e.to_string(),
            ),
        }
    }
    progress(total, total);
    Ok((out, sum))
}
