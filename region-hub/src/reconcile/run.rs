//! One reconciliation run: read a consistent snapshot of the database, run the five checks
//! over the window of the hour, optionally re-read the audit objects, then store one report
//! per jurisdiction (and the suspensions) in one transaction.

use super::audit_check::{self, LogRange};
use super::audit_verify::{self, Selection, VerifySummary};
use super::report::{self, Report, ReportRow};
use super::scan::{self, NodeLog, NodeRef};
use super::window::Hour;
use super::{
    Check, CheckOutput, CheckStats, ReconcileError, Thresholds, balances, jurisdiction_check,
    payments, settlement_check,
};
use crate::audit::AuditStore;
use crate::store::{HubState, TxEffects};
use outpost_core::ids::{EventId, Jurisdiction};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Why a run happened (recorded in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Scheduled,
    OnDemand,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::OnDemand => "on_demand",
        }
    }
}

/// Progress of a long run, for a CLI progress bar.
pub trait Progress: Sync {
    /// `phase` started, with `total` units of work (0 if unknown).
    fn phase(&self, phase: &'static str, total: u64);
    /// `done` units of the current phase are done.
    fn advance(&self, done: u64);
}

/// A [`Progress`] that shows nothing (the scheduler, tests).
pub struct Quiet;
impl Progress for Quiet {
    fn phase(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Everything the checks found, before it is split into reports.
#[derive(Debug, Default)]
pub struct Findings {
    pub outputs: BTreeMap<Check, CheckOutput>,
    pub ranges: Vec<LogRange>,
    pub jurisdictions: BTreeSet<Jurisdiction>,
    pub records_read: u64,
    pub audit_objects_verified: bool,
}

/// What a run stored.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub hour: String,
    pub reports: Vec<ReportRow>,
    pub suspended_events: Vec<EventId>,
    pub records_read: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_verified: Option<VerifySummary>,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "reconciliation of {} (window {} and the hour before), {} log records read",
            self.hour, self.hour, self.records_read
        )?;
        if let Some(v) = &self.audit_verified {
            writeln!(
                f,
                "  audit objects re-read from the store: {} objects, {} records, {} bytes",
                v.objects, v.records, v.bytes
            )?;
        }
        for r in &self.reports {
            writeln!(
                f,
                "  report #{} {}: {} (minor {}, major {}, critical {}) -> audit object {}",
                r.id,
                r.jurisdiction,
                r.worst.as_deref().unwrap_or("clean"),
                r.minor,
                r.major,
                r.critical,
                r.audit_key
            )?;
        }
        if !self.suspended_events.is_empty() {
            let list: Vec<&str> = self.suspended_events.iter().map(|e| e.as_str()).collect();
            writeln!(f, "  settlement suspended for: {}", list.join(", "))?;
        }
        Ok(())
    }
}

/// A read-only connection holding one read transaction, so every check sees the same state
/// while the hub keeps committing.
fn snapshot(state: &HubState) -> Result<Connection, ReconcileError> {
    let path = state
        .db()
        .reader()
        .path()
        .map(str::to_owned)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ReconcileError::Corrupt("the hub database has no file path".into()))?;
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("BEGIN DEFERRED; SELECT COUNT(*) FROM nodes;")?;
    Ok(conn)
}

/// The registered nodes this hub reconciles.
fn scope(state: &HubState) -> Vec<NodeRef> {
    state
        .registered_nodes()
        .filter(|n| state.owns(&n.id))
        .map(|n| NodeRef {
            id: n.id.clone(),
            jurisdiction: n.jurisdiction.clone(),
        })
        .collect()
}

/// Run checks 1-5 (check 3 database side only) for `hour`.
pub fn collect_blocking(
    state: &HubState,
    hour: Hour,
    th: &Thresholds,
    now_ms: i64,
    progress: &dyn Progress,
) -> Result<Findings, ReconcileError> {
    let conn = snapshot(state)?;
    let w = hour.window();
    let nodes = scope(state);
    let mut f = Findings {
        jurisdictions: nodes.iter().map(|n| n.jurisdiction.clone()).collect(),
        ..Findings::default()
    };
    let mut total = 0u64;
    for n in &nodes {
        let head: Option<i64> = conn.query_row(
            "SELECT MAX(seq) FROM records WHERE node_id = ?1",
            [n.id.as_str()],
            |r| r.get(0),
        )?;
        total += head.unwrap_or(0) as u64;
    }
    progress.phase("reading logs", total);
    let mut logs: Vec<NodeLog> = Vec::with_capacity(nodes.len());
    let mut base = 0u64;
    for n in &nodes {
        let log = scan::load(&conn, &n.id, w, &|done| progress.advance(base + done))?;
        base += log.records_read;
        f.records_read += log.records_read;
        logs.push(log);
    }
    let pairs: Vec<(NodeRef, &NodeLog)> = nodes.iter().cloned().zip(logs.iter()).collect();

    progress.phase("checking", 5);
    let mut out = CheckOutput::default();
    for (n, log) in &pairs {
        balances::check(n, log, th, &mut out);
    }
    f.outputs.insert(Check::Balances, out);
    progress.advance(1);

    let mut out = CheckOutput::default();
    let st = payments::load(&conn, w)?;
    payments::check(&pairs, &st, w, th, &mut out);
    f.outputs.insert(Check::Payments, out);
    progress.advance(2);

    let mut out = CheckOutput::default();
    f.ranges = audit_check::check(&conn, &nodes, w, now_ms, th, &mut out)?;
    f.outputs.insert(Check::AuditCompleteness, out);
    progress.advance(3);

    let mut out = CheckOutput::default();
    settlement_check::check(&conn, &pairs, w, now_ms, th, &mut out)?;
    f.outputs.insert(Check::SettlementCompleteness, out);
    progress.advance(4);

    let mut out = CheckOutput::default();
    jurisdiction_check::check(&conn, &pairs, w, &mut out)?;
    f.outputs.insert(Check::Jurisdiction, out);
    progress.advance(5);
    Ok(f)
}

/// Store one report per jurisdiction, in one transaction; wakes the audit uploader.
pub fn store_blocking(
    state: &HubState,
    hour: Hour,
    trigger: Trigger,
    findings: Findings,
    now_ms: i64,
    audit_verified: Option<VerifySummary>,
) -> Result<RunSummary, ReconcileError> {
    let w = hour.window();
    let mut reports = Vec::new();
    let mut suspended = BTreeSet::new();
    {
        let mut conn = state.db().conn();
        let tx = conn.transaction()?;
        for j in &findings.jurisdictions {
            let mut stats: BTreeMap<Check, CheckStats> = BTreeMap::new();
            let mut found = Vec::new();
            for (c, out) in &findings.outputs {
                stats.insert(*c, out.stats.get(j).cloned().unwrap_or_default());
                found.extend(out.found.iter().filter(|d| d.jurisdiction == *j).cloned());
            }
            let report = Report::build(
                state.hub_id(),
                &hour.to_string(),
                j,
                (w.start_ms, w.end_ms),
                now_ms,
                trigger.as_str(),
                findings.audit_objects_verified,
                &stats,
                found,
            );
            suspended.extend(report.suspended_events.iter().cloned());
            reports.push(report::store(state, &tx, &report)?);
        }
        tx.commit()?;
    }
    state.after_commit(TxEffects {
        segments: reports.len(),
        ..TxEffects::default()
    });
    for r in &reports {
        match r.worst.as_deref() {
            Some("critical") => {
                tracing::error!(report = r.id, jurisdiction = %r.jurisdiction, critical = r.critical, major = r.major, minor = r.minor, hour = %hour, "reconciliation found critical discrepancies")
            }
            Some(_) => {
                tracing::warn!(report = r.id, jurisdiction = %r.jurisdiction, major = r.major, minor = r.minor, hour = %hour, "reconciliation found discrepancies")
            }
            None => {
                tracing::info!(report = r.id, jurisdiction = %r.jurisdiction, hour = %hour, "reconciliation clean")
            }
        }
    }
    Ok(RunSummary {
        hour: hour.to_string(),
        reports,
        suspended_events: suspended.into_iter().collect(),
        records_read: findings.records_read,
        audit_verified,
    })
}

/// A whole run without re-reading the audit store (tests, benchmarks, a hub without one).
pub fn reconcile_hour_blocking(
    state: &HubState,
    hour: Hour,
    trigger: Trigger,
    th: &Thresholds,
    now_ms: i64,
    progress: &dyn Progress,
) -> Result<RunSummary, ReconcileError> {
    let f = collect_blocking(state, hour, th, now_ms, progress)?;
    store_blocking(state, hour, trigger, f, now_ms, None)
}

/// A whole run; with `store`, check 3 also re-reads the window's audit objects from it.
pub async fn reconcile_hour(
    state: &HubState,
    store: Option<&AuditStore>,
    hour: Hour,
    trigger: Trigger,
    th: Thresholds,
    now_ms: i64,
    progress: std::sync::Arc<dyn Progress + Send>,
) -> Result<RunSummary, ReconcileError> {
    let (st, p) = (state.clone(), progress.clone());
    let mut f = tokio::task::spawn_blocking(move || collect_blocking(&st, hour, &th, now_ms, &*p))
        .await
        .map_err(|e| ReconcileError::Corrupt(format!("reconciliation task: {e}")))??;
    let mut verified = None;
    if let Some(store) = store {
        progress.phase("re-reading audit objects", 0);
        let (out, sum) = audit_verify::verify(
            state,
            store,
            Selection::Ranges(f.ranges.clone()),
            &|d, _| progress.advance(d),
        )
        .await?;
        let o = f.outputs.entry(Check::AuditCompleteness).or_default();
        o.found.extend(out.found);
        f.audit_objects_verified = true;
        verified = Some(sum);
    }
    let st = state.clone();
    tokio::task::spawn_blocking(move || store_blocking(&st, hour, trigger, f, now_ms, verified))
        .await
        .map_err(|e| ReconcileError::Corrupt(format!("reconciliation task: {e}")))?
}
