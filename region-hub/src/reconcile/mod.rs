//! Hourly reconciliation: five independent checks over one hour plus the hour before it (a
//! sliding window, so anything that arrived late is looked at twice), each finding classed
//! minor, major or critical by the thresholds in [`thresholds`] (documented in
//! `docs/reconciliation.md`).
//!
//! 1. [`balances`]: balances derived from the replicated event log against the balances the
//!    edge nodes state in their balance-snapshot records (kind 56).
//! 2. [`payments`]: deposits and withdrawals against imported payment-provider settlement
//!    reports ([`statement`]).
//! 3. [`audit_check`]: every record of every node (and every down-chain record) is in the
//!    audit trail; [`audit_verify`] re-reads the objects from the store and compares them
//!    with the log.
//! 4. [`settlement_check`]: every bet whose events all have results is settled exactly once.
//! 5. [`jurisdiction_check`]: every node's records carry only its jurisdiction; bets are by
//!    players of the same jurisdiction.
//!
//! A run produces one signed report per jurisdiction ([`report`]): stored in SQLite, queued
//! to the audit trail as an object, served at `GET /v1/reconciliation/reports` ([`api`]). A
//! critical finding that names events suspends their settlement ([`suspend`]) until an
//! operator clears it. [`scheduler`] runs it every hour inside the hub.

pub mod api;
pub mod audit_check;
pub mod audit_status;
pub mod audit_verify;
pub mod balances;
pub mod cli;
pub mod config;
pub mod jurisdiction_check;
pub mod payments;
pub mod report;
pub mod run;
pub mod scan;
pub mod scheduler;
pub mod schema;
pub mod settlement_check;
pub mod statement;
pub mod suspend;
pub mod thresholds;
pub mod window;

pub use run::{RunSummary, Trigger, reconcile_hour_blocking};
pub use thresholds::Thresholds;
pub use window::Hour;

use outpost_core::ids::{EventId, Jurisdiction, NodeId};
use serde::{Deserialize, Serialize};

/// How bad a discrepancy is. Ordered: `Minor < Major < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look on the next working day; no money or record is at risk.
    Minor,
    /// Ops must act today: money or an audit record is late or unexplained.
    Major,
    /// Stop and investigate now; events it names have their settlement suspended.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

/// The five checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Balances,
    Payments,
    AuditCompleteness,
    SettlementCompleteness,
    Jurisdiction,
}

impl Check {
    pub const ALL: [Check; 5] = [
        Check::Balances,
        Check::Payments,
        Check::AuditCompleteness,
        Check::SettlementCompleteness,
        Check::Jurisdiction,
    ];
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discrepancy {
    pub check: Check,
    pub severity: Severity,
    /// Stable machine-readable kind, e.g. `balance_mismatch`, `audit_gap`.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node_id: Option<NodeId>,
    pub jurisdiction: Jurisdiction,
    /// What it is about: a player id, bet id, provider reference or seq range.
    pub subject: String,
    /// Size of the difference in minor units, where money is involved.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub amount_minor: Option<i64>,
    /// Events whose settlement a critical finding suspends.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub event_ids: Vec<EventId>,
    pub detail: String,
}

/// What one check looked at, for the report (a check that looked at nothing says so).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStats {
    /// Items compared (snapshot entries, movements, records, bets, records).
    pub examined: u64,
    /// Items that could not be judged yet (e.g. no statement covers the time yet).
    pub pending: u64,
}

/// The output of one check over the whole hub.
#[derive(Debug, Default)]
pub struct CheckOutput {
    /// Per jurisdiction.
    pub stats: std::collections::BTreeMap<Jurisdiction, CheckStats>,
    pub found: Vec<Discrepancy>,
}

impl CheckOutput {
    pub(crate) fn examined(&mut self, j: &Jurisdiction, n: u64) {
        self.stats.entry(j.clone()).or_default().examined += n;
    }
    pub(crate) fn pending(&mut self, j: &Jurisdiction, n: u64) {
        self.stats.entry(j.clone()).or_default().pending += n;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid hour {0:?}: expected YYYY-MM-DDTHH (UTC), e.g. 2026-11-21T13")]
    BadHour(String),
    #[error(transparent)]
    Statement(#[from] statement::StatementError),
    #[error("audit store: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("no report {0}")]
    NoReport(String),
}

#[cfg(test)]
mod tests;
