//! Reports: one per (run, jurisdiction), signed by the hub, stored in SQLite, queued to the
//! audit trail as an object, and the suspensions its critical findings cause.
//!
//! The audit object is two lines of JSON: the report exactly as stored, then
//! `{"report_sha256", "public_key", "signature"}` where `signature` is the hub's Ed25519
//! signature of `outpost/reconciliation/v1 || sha256(line 1)`. A regulator verifies it with the
//! hub's public key and Python `cryptography` or `openssl` (see `docs/reconciliation.md`).

use super::{Check, CheckStats, Discrepancy, ReconcileError, Severity, suspend};
use crate::audit::{AuditObject, validate_key};
use crate::outbox::add_years;
use crate::store::HubState;
use outpost_core::ids::{EventId, Jurisdiction};
use outpost_core::time::UnixMillis;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const REPORT_FORMAT: &str = "outpost-reconciliation/1";
/// Signed message: `SIGN_DOMAIN || sha256(report line)`.
pub const SIGN_DOMAIN: &[u8] = b"outpost/reconciliation/v1";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub minor: u64,
    pub major: u64,
    pub critical: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEntry {
    pub check: Check,
    pub examined: u64,
    pub pending: u64,
    pub minor: u64,
    pub major: u64,
    pub critical: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub hub_id: String,
    /// `YYYY-MM-DDTHH`, UTC.
    pub hour: String,
    pub jurisdiction: Jurisdiction,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
    pub run_ms: i64,
    pub trigger: String,
    /// Whether check 3 also re-read the audit objects from the store.
    pub audit_objects_verified: bool,
    /// `None` when nothing was found.
    pub worst: Option<Severity>,
    pub counts: Counts,
    pub checks: Vec<CheckEntry>,
    pub discrepancies: Vec<Discrepancy>,
    pub suspended_events: Vec<EventId>,
}

impl Report {
    // Called once, by the hourly run; each argument is a distinct field of the signed report.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        hub_id: &str,
        hour: &str,
        j: &Jurisdiction,
        window: (i64, i64),
        run_ms: i64,
        trigger: &str,
        audit_objects_verified: bool,
        stats: &BTreeMap<Check, CheckStats>,
        mut found: Vec<Discrepancy>,
    ) -> Report {
        found.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(&b.check)));
        let mut counts = Counts::default();
        let mut checks = Vec::new();
        for c in Check::ALL {
            let s = stats.get(&c).cloned().unwrap_or_default();
            let n = |sev| {
                found
                    .iter()
                    .filter(|d| d.check == c && d.severity == sev)
                    .count() as u64
            };
            checks.push(CheckEntry {
                check: c,
                examined: s.examined,
                pending: s.pending,
                minor: n(Severity::Minor),
                major: n(Severity::Major),
                critical: n(Severity::Critical),
            });
        }
        for d in &found {
            match d.severity {
                Severity::Minor => counts.minor += 1,
                Severity::Major => counts.major += 1,
                Severity::Critical => counts.critical += 1,
            }
        }
        let suspended_events: BTreeSet<EventId> = found
            .iter()
            .filter(|d| d.severity == Severity::Critical)
            .flat_map(|d| d.event_ids.iter().cloned())
            .collect();
        Report {
            format: REPORT_FORMAT.into(),
            hub_id: hub_id.into(),
            hour: hour.into(),
            jurisdiction: j.clone(),
            window_start_ms: window.0,
            window_end_ms: window.1,
            run_ms,
            trigger: trigger.into(),
            audit_objects_verified,
            worst: found.iter().map(|d| d.severity).max(),
            counts,
            checks,
            discrepancies: found,
            suspended_events: suspended_events.into_iter().collect(),
        }
    }
}

/// A stored report's row, for listings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub id: i64,
    pub hour: String,
    pub jurisdiction: String,
    pub run_ms: i64,
    pub trigger: String,
    pub worst: Option<String>,
    pub minor: i64,
    pub major: i64,
    pub critical: i64,
    pub audit_key: String,
}

/// The signed audit object body for `report_json`.
pub fn signed_body(state: &HubState, report_json: &[u8]) -> Vec<u8> {
    let sha = outpost_core::log::sha256(report_json);
    let mut msg = SIGN_DOMAIN.to_vec();
    msg.extend_from_slice(&sha);
    let sig = state.hub_key().sign(&msg);
    let trailer = serde_json::json!({
        "report_sha256": hex::encode(sha),
        "public_key": state.hub_public_key().to_hex(),
        "signature": hex::encode(sig),
    });
    let mut body = report_json.to_vec();
    body.push(b'\n');
    body.extend_from_slice(trailer.to_string().as_bytes());
    body.push(b'\n');
    body
}

/// Store `report`, queue its audit object and suspend the events of its critical findings,
/// inside `tx`. Returns the stored row.
pub(crate) fn store(
    state: &HubState,
    tx: &Transaction<'_>,
    report: &Report,
) -> Result<ReportRow, ReconcileError> {
    let json =
        serde_json::to_vec(report).map_err(|e| ReconcileError::Corrupt(format!("report: {e}")))?;
    tx.execute(
        "INSERT INTO reconciliation_reports (hour, jurisdiction, window_start_ms, window_end_ms, run_ms, trigger, worst, minor, major, critical, report_json, audit_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, '')",
        params![
            report.hour,
            report.jurisdiction.as_str(),
            report.window_start_ms,
            report.window_end_ms,
            report.run_ms,
            report.trigger,
            report.worst.map(Severity::as_str),
            report.counts.minor as i64,
            report.counts.major as i64,
            report.counts.critical as i64,
            json
        ],
    )?;
    let id = tx.last_insert_rowid();
    // Filed under the day of the hour it reconciles, so a regulator finds it with that day's prefix.
    let d = UnixMillis(report.window_end_ms - super::window::HOUR_MS).date();
    let key = format!(
        "{j}/{y:04}/{m:02}/{dd:02}/reconciliation~{hub}/{hour}-{id:020}.json",
        j = report.jurisdiction,
        y = d.year,
        m = d.month,
        dd = d.day,
        hub = report.hub_id,
        hour = report.hour,
    );
    validate_key(&key)?;
    tx.execute(
        "UPDATE reconciliation_reports SET audit_key = ?2 WHERE id = ?1",
        params![id, key],
    )?;
    let policy = state.audit_policy();
    let years = policy
        .retention_years
        .get(&report.jurisdiction)
        .copied()
        .or_else(|| policy.retention_years.values().copied().max())
        .unwrap_or(10);
    let obj = AuditObject {
        key: key.clone(),
        body: signed_body(state, &json),
        retain_until: add_years(UnixMillis(report.run_ms), years),
    };
    tx.execute(
        "INSERT INTO audit_outbox (log_id, jurisdiction, first_seq, last_seq, key, body, retain_until_ms, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)",
        params![
            format!("reconciliation/{}", report.hub_id),
            report.jurisdiction.as_str(),
            id,
            obj.key,
            obj.body,
            obj.retain_until.0,
            report.run_ms
        ],
    )?;
    for d in report
        .discrepancies
        .iter()
        .filter(|d| d.severity == Severity::Critical)
    {
        for e in &d.event_ids {
            suspend::suspend(
                tx,
                e,
                id,
                &format!("{}: {}", d.code, d.subject),
                report.run_ms,
            )?;
        }
    }
    Ok(ReportRow {
        id,
        hour: report.hour.clone(),
        jurisdiction: report.jurisdiction.to_string(),
        run_ms: report.run_ms,
        trigger: report.trigger.clone(),
        worst: report.worst.map(|s| s.as_str().to_string()),
        minor: report.counts.minor as i64,
        major: report.counts.major as i64,
        critical: report.counts.critical as i64,
        audit_key: key,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReportRow> {
    Ok(ReportRow {
        id: r.get(0)?,
        hour: r.get(1)?,
        jurisdiction: r.get(2)?,
        run_ms: r.get(3)?,
        trigger: r.get(4)?,
        worst: r.get(5)?,
        minor: r.get(6)?,
        major: r.get(7)?,
        critical: r.get(8)?,
        audit_key: r.get(9)?,
    })
}

const COLS: &str =
    "id, hour, jurisdiction, run_ms, trigger, worst, minor, major, critical, audit_key";

/// The newest report of each jurisdiction.
pub fn latest(conn: &Connection) -> Result<Vec<(ReportRow, serde_json::Value)>, ReconcileError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLS}, report_json FROM reconciliation_reports WHERE id IN (SELECT MAX(id) FROM reconciliation_reports GROUP BY jurisdiction) ORDER BY jurisdiction"
    ))?;
    with_json(&mut st, [])
}

/// Every report for `hour`, oldest first.
pub fn for_hour(
    conn: &Connection,
    hour: &str,
) -> Result<Vec<(ReportRow, serde_json::Value)>, ReconcileError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLS}, report_json FROM reconciliation_reports WHERE hour = ?1 ORDER BY id"
    ))?;
    with_json(&mut st, [hour])
}

/// The `limit` newest report rows.
pub fn recent(conn: &Connection, limit: i64) -> Result<Vec<ReportRow>, ReconcileError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM reconciliation_reports ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn by_id(
    conn: &Connection,
    id: i64,
) -> Result<Option<(ReportRow, serde_json::Value)>, ReconcileError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLS}, report_json FROM reconciliation_reports WHERE id = ?1"
    ))?;
    Ok(with_json(&mut st, [id])?.into_iter().next())
}

fn with_json<P: rusqlite::Params>(
    st: &mut rusqlite::Statement<'_>,
    p: P,
) -> Result<Vec<(ReportRow, serde_json::Value)>, ReconcileError> {
    let rows = st.query_map(p, |r| Ok((row(r)?, r.get::<_, Vec<u8>>(10)?)))?;
    let mut out = Vec::new();
    for x in rows {
        let (row, json) = x?;
        let v = serde_json::from_slice(&json)
            .map_err(|e| ReconcileError::Corrupt(format!("report {}: {e}", row.id)))?;
        out.push((row, v));
    }
    Ok(out)
}

/// Whether `id` exists (for the API's 404).
pub fn exists(conn: &Connection, id: i64) -> Result<bool, ReconcileError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM reconciliation_reports WHERE id = ?1",
            [id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
