//! Reconciliation's own tables. Created with `IF NOT EXISTS` when the database opens, apart
//! from the numbered migrations in `db.rs`, so this module can be added (or merged) without
//! renumbering anyone's migration; the statements are idempotent and never altered once
//! released (a change is a new table or a new statement here).

use rusqlite::Connection;

const SCHEMA: &str = r#"
-- One row per (run, jurisdiction). `report_json` is exactly the signed bytes.
CREATE TABLE IF NOT EXISTS reconciliation_reports (
    id              INTEGER PRIMARY KEY,
    hour            TEXT NOT NULL,                 -- YYYY-MM-DDTHH, UTC
    jurisdiction    TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    run_ms          INTEGER NOT NULL,
    trigger         TEXT NOT NULL,                 -- scheduled | on_demand
    worst           TEXT,                          -- NULL (clean) | minor | major | critical
    minor           INTEGER NOT NULL,
    major           INTEGER NOT NULL,
    critical        INTEGER NOT NULL,
    report_json     BLOB NOT NULL,
    audit_key       TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS reconciliation_reports_by_hour ON reconciliation_reports (hour, id);

-- Events whose settlement a critical finding suspended. Cleared by an operator (cleared_ms),
-- never deleted, so the history stays.
CREATE TABLE IF NOT EXISTS settlement_suspensions (
    event_id    TEXT NOT NULL,
    report_id   INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    since_ms    INTEGER NOT NULL,
    cleared_ms  INTEGER,
    cleared_by  TEXT,
    PRIMARY KEY (event_id, report_id)
) STRICT;
CREATE INDEX IF NOT EXISTS settlement_suspensions_active ON settlement_suspensions (event_id) WHERE cleared_ms IS NULL;

-- Operators clearing an event's suspensions (POST /v1/reconciliation/suspensions/{event}/clear):
-- who, when, why, and how many suspensions it cleared. Append only.
CREATE TABLE IF NOT EXISTS suspension_clearances (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL,
    operator    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    suspensions INTEGER NOT NULL,
    cleared_ms  INTEGER NOT NULL
) STRICT;

-- Imported payment-provider settlement reports (see statement.rs): one row per file ...
CREATE TABLE IF NOT EXISTS provider_statements (
    id              INTEGER PRIMARY KEY,
    provider        TEXT NOT NULL,
    jurisdiction    TEXT NOT NULL,
    merchant_account TEXT NOT NULL,
    batch_number    INTEGER NOT NULL,
    file_sha256     TEXT NOT NULL UNIQUE,
    period_start_ms INTEGER NOT NULL,              -- earliest creation date in the file
    period_end_ms   INTEGER NOT NULL,              -- latest creation date in the file
    lines           INTEGER NOT NULL,
    imported_ms     INTEGER NOT NULL
) STRICT;
-- ... and one per payment line (fees and payouts to our own bank are not stored).
CREATE TABLE IF NOT EXISTS provider_statement_lines (
    statement_id    INTEGER NOT NULL,
    line_no         INTEGER NOT NULL,
    psp_reference   TEXT NOT NULL,
    merchant_reference TEXT NOT NULL,
    record_type     TEXT NOT NULL,                 -- deposit | withdrawal | reversal
    created_ms      INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    gross_minor     INTEGER NOT NULL,              -- positive: what the player paid or received
    PRIMARY KEY (statement_id, line_no)
) STRICT;
CREATE INDEX IF NOT EXISTS provider_statement_lines_by_ref ON provider_statement_lines (psp_reference);
"#;

/// Create the tables if missing.
pub fn ensure(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}
