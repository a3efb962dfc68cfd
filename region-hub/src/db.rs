//! The hub's SQLite database: connection setup, schema and migrations.
//!
//! One connection does all the writing, behind a mutex; callers run it inside
//! `tokio::task::spawn_blocking`. SQLite serialises writers anyway, and a single writer keeps
//! every multi-table change (records + bets + settlements + down chain + audit outbox) inside
//! one transaction without cross-connection locking surprises. A second connection serves
//! reads (the transport's down-chain reads, the HTTP API): under WAL it sees the last
//! committed state without waiting for a writer's fsync.
//!
//! Durability: WAL with `synchronous=FULL`, so a transaction is on disk when `COMMIT` returns.
//! The hub acknowledges records to an edge node only after that, and the node may then treat
//! them as replicated. WAL checkpoints run on a third connection in a background thread, not
//! inside the writer's commits (`spawn_checkpointer`).

use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create database directory {path}: {error}")]
    Dir { path: String, error: std::io::Error },
    #[error("migration could not copy a stored record: {0}")]
    Backfill(String),
    #[error(
        "database schema version {found} is newer than this software supports ({supported}); upgrade the hub"
    )]
    TooNew { found: i64, supported: i64 },
}

/// Migrations in order; `PRAGMA user_version` is the number applied. Append only: a released
/// migration is never edited, a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
CREATE TABLE nodes (
    id              TEXT PRIMARY KEY,
    jurisdiction    TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    last_contact_ms INTEGER,
    edge_head       INTEGER NOT NULL DEFAULT 0,
    acked_seq       INTEGER NOT NULL DEFAULT 0,
    acked_hash      TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    acked_ts        INTEGER NOT NULL DEFAULT 0,
    down_acked      INTEGER NOT NULL DEFAULT 0,
    flagged         INTEGER NOT NULL DEFAULT 0,
    flag_reason     TEXT
) STRICT;

-- Every record replicated from an edge node, verbatim (frame = encoded Frame incl. seal).
CREATE TABLE records (
    node_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    ts_ms   INTEGER NOT NULL,
    hash    TEXT NOT NULL,
    frame   BLOB NOT NULL,
    PRIMARY KEY (node_id, seq)
) STRICT, WITHOUT ROWID;

-- Bets derived from BetPlaced records; the record itself stays the source of truth.
CREATE TABLE bets (
    bet_id                 TEXT PRIMARY KEY,
    node_id                TEXT NOT NULL,
    seq                    INTEGER NOT NULL,
    player_id              TEXT NOT NULL,
    currency               TEXT NOT NULL,
    stake_minor            INTEGER NOT NULL,
    potential_payout_minor INTEGER NOT NULL,
    legs_json              TEXT NOT NULL,
    status                 TEXT NOT NULL,          -- open | settled | error
    payout_minor           INTEGER,
    settle_error           TEXT
) STRICT;

CREATE TABLE bet_events (
    bet_id   TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (bet_id, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX bet_events_by_event ON bet_events (event_id, bet_id);

CREATE TABLE results (
    event_id       TEXT PRIMARY KEY,
    home_goals     INTEGER NOT NULL,
    away_goals     INTEGER NOT NULL,
    result_version INTEGER NOT NULL,
    source         TEXT NOT NULL,
    received_ms    INTEGER NOT NULL
) STRICT;

-- The hub's signed downstream chain per node (log id hub/{node}).
CREATE TABLE down_records (
    node_id  TEXT NOT NULL,
    down_seq INTEGER NOT NULL,
    kind     INTEGER NOT NULL,
    ts_ms    INTEGER NOT NULL,
    frame    BLOB NOT NULL,
    hash     TEXT NOT NULL,
    PRIMARY KEY (node_id, down_seq)
) STRICT, WITHOUT ROWID;

-- One row per (bet, result version): the idempotency key of settlement.
CREATE TABLE settlements (
    bet_id         TEXT NOT NULL,
    result_version INTEGER NOT NULL,
    node_id        TEXT NOT NULL,
    down_seq       INTEGER NOT NULL,
    payout_minor   INTEGER NOT NULL,
    settled_ms     INTEGER NOT NULL,
    PRIMARY KEY (bet_id, result_version)
) STRICT, WITHOUT ROWID;

-- Audit objects safely stored (moved here from the outbox on success).
CREATE TABLE audit_segments (
    log_id      TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    key         TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    PRIMARY KEY (log_id, first_seq)
) STRICT;

-- Audit objects waiting for upload, drained in id order. Written in the same transaction as
-- the records they hold, so nothing committed can miss the audit trail.
CREATE TABLE audit_outbox (
    id              INTEGER PRIMARY KEY,
    log_id          TEXT NOT NULL,
    jurisdiction    TEXT NOT NULL,
    first_seq       INTEGER NOT NULL,
    last_seq        INTEGER NOT NULL,
    key             TEXT NOT NULL,
    body            BLOB NOT NULL,
    retain_until_ms INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
) STRICT;

-- Per log: the last record already cut into an audit segment, and since when records after
-- it have been waiting (hub clock), for the segment age policy.
CREATE TABLE audit_cursors (
    log_id           TEXT PRIMARY KEY,
    node_id          TEXT NOT NULL,
    direction        TEXT NOT NULL,                -- up | down
    cut_seq          INTEGER NOT NULL DEFAULT 0,
    cut_hash         TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    cut_ts           INTEGER NOT NULL DEFAULT 0,
    pending_since_ms INTEGER
) STRICT;
"#,
    // 2: results intake (reports from several sources, finality, alerts), corrections as
    // compensating entries (settlement reversals), events known to the hub.
    r#"
-- Every result report as received, from a feed or an operator. Append only.
CREATE TABLE result_reports (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL,
    source      TEXT NOT NULL,
    home_goals  INTEGER NOT NULL,
    away_goals  INTEGER NOT NULL,
    operator    INTEGER NOT NULL DEFAULT 0,
    received_ms INTEGER NOT NULL,
    -- `results.reports_from` when received: after a rollback the same report counts anew.
    epoch       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (event_id, source, home_goals, away_goals, epoch)
) STRICT;

-- Every final result version of an event, and what made it final. Append only; `results`
-- holds the current one.
CREATE TABLE result_versions (
    event_id       TEXT NOT NULL,
    result_version INTEGER NOT NULL,
    home_goals     INTEGER NOT NULL,
    away_goals     INTEGER NOT NULL,
    basis          TEXT NOT NULL,
    final_ms       INTEGER NOT NULL,
    PRIMARY KEY (event_id, result_version)
) STRICT, WITHOUT ROWID;

-- Alerts for operators: conflicting results (settlement held), results for unknown events
-- (held for review). Resolved by an operator's confirmation or correction, never deleted.
CREATE TABLE result_alerts (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,               -- conflict | unknown_event
    detail      TEXT NOT NULL,
    raised_ms   INTEGER NOT NULL,
    resolved_ms INTEGER,
    resolution  TEXT
) STRICT;
CREATE INDEX result_alerts_open ON result_alerts (event_id, kind) WHERE resolved_ms IS NULL;

-- Events the hub knows of (a market or a bet on it was replicated).
CREATE TABLE hub_events (
    event_id      TEXT PRIMARY KEY,
    first_seen_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Compensating entries: one row per reversed settlement, keyed like the settlement it
-- reverses. The settlement row itself is never changed.
CREATE TABLE settlement_reversals (
    bet_id           TEXT NOT NULL,
    reversed_version INTEGER NOT NULL,
    node_id          TEXT NOT NULL,
    down_seq         INTEGER NOT NULL,
    payout_minor     INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    reversed_ms      INTEGER NOT NULL,
    PRIMARY KEY (bet_id, reversed_version)
) STRICT, WITHOUT ROWID;

ALTER TABLE settlements ADD COLUMN leg_results TEXT;
-- A rolled-back result stops settling until a new version is final; reports before
-- `reports_from` no longer count towards the next version.
ALTER TABLE results ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE results ADD COLUMN reports_from INTEGER NOT NULL DEFAULT 0;
"#,
    // 3: results that are not a score (races, per-outcome feed results). A score keeps
    // its goals with `result_json` NULL; any other result is its canonical JSON
    // (`core::settlement::event_result::EventResult`) with `home_goals` = -1 and `away_goals`
    // = the first 7 bytes of its SHA-256, so the reports' unique key stays per content.
    r#"
ALTER TABLE results ADD COLUMN result_json TEXT;
ALTER TABLE result_versions ADD COLUMN result_json TEXT;
ALTER TABLE result_reports ADD COLUMN result_json TEXT;
"#,
    // 4: settle-pass write volume (docs/benchmarks.md, "Settlement"). A final result's bets
    // are spread over the whole bet-id space, so every row written per bet at a random key
    // dirtied (and wrote to the WAL at commit) nearly every page of its table on each pass.
    // Settlement rows are now appended in settle order (a rowid table) and only the narrow
    // (bet, result version) index is touched at random; the bet row is no longer rewritten on
    // settlement: whether a bet is settled is the settlement table's answer (a settlement not
    // reversed), `bets.status` says only `open` or `error`, and `bet_state` derives the rest.
    r#"
CREATE TABLE settlements_v4 (
    bet_id         TEXT NOT NULL,
    result_version INTEGER NOT NULL,
    node_id        TEXT NOT NULL,
    down_seq       INTEGER NOT NULL,
    payout_minor   INTEGER NOT NULL,
    settled_ms     INTEGER NOT NULL,
    leg_results    TEXT,
    UNIQUE (bet_id, result_version)
) STRICT;
INSERT INTO settlements_v4 (bet_id, result_version, node_id, down_seq, payout_minor, settled_ms, leg_results)
    SELECT bet_id, result_version, node_id, down_seq, payout_minor, settled_ms, leg_results
    FROM settlements ORDER BY settled_ms, node_id, down_seq;
DROP TABLE settlements;
ALTER TABLE settlements_v4 RENAME TO settlements;
UPDATE bets SET status = 'open', payout_minor = NULL WHERE status = 'settled';

-- Each bet with the settlement in force (the latest one not reversed), if any.
CREATE VIEW bet_state AS
SELECT b.bet_id AS bet_id,
       CASE WHEN b.status = 'error' THEN 'error'
            WHEN s.bet_id IS NOT NULL THEN 'settled'
            ELSE 'open' END AS status,
       s.result_version AS result_version,
       s.payout_minor AS payout_minor
FROM bets b LEFT JOIN settlements s ON s.rowid = (
    SELECT s2.rowid FROM settlements s2
    WHERE s2.bet_id = b.bet_id AND NOT EXISTS (SELECT 1 FROM settlement_reversals r
        WHERE r.bet_id = s2.bet_id AND r.reversed_version = s2.result_version)
    ORDER BY s2.result_version DESC LIMIT 1);
"#,
    // 5: the settle pass's read (docs/benchmarks.md, "Settlement"). Each bet is kept once per
    // event it has a leg on, in a compact binary copy (`bet_copy.rs`), clustered by event: a
    // final result's bets are one range scan, with no join to `bets` and `records` and no
    // JSON decode of the signed frame. Written at intake; existing bets are copied from their
    // stored `bet_placed` records by `backfill_event_bets` in the same transaction. Bets that
    // cannot be settled (`status = 'error'`, rare) get a partial index so the pass can leave
    // them out without looking at every bet row.
    r#"
CREATE TABLE event_bets (
    event_id  TEXT NOT NULL,
    bet_id    TEXT NOT NULL,
    node_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    struck_ms INTEGER NOT NULL,
    bet       BLOB NOT NULL,
    PRIMARY KEY (event_id, bet_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX bets_in_error ON bets (bet_id) WHERE status = 'error';
"#,
];

/// Rust steps of migrations, by migration number (run after its SQL, in its transaction).
fn migration_step(n: usize, tx: &rusqlite::Transaction<'_>) -> Result<(), DbError> {
    if n == 5 {
        backfill_event_bets(tx)?;
    }
    Ok(())
}

/// Migration 5: the compact copy of every bet already stored, from its `bet_placed` record.
fn backfill_event_bets(tx: &rusqlite::Transaction<'_>) -> Result<(), DbError> {
    let mut read = tx.prepare(
        "SELECT be.event_id, b.bet_id, b.node_id, b.seq, r.ts_ms, r.frame FROM bet_events be
         JOIN bets b ON b.bet_id = be.bet_id
         JOIN records r ON r.node_id = b.node_id AND r.seq = b.seq",
    )?;
    let mut write = tx.prepare(
        "INSERT INTO event_bets (event_id, bet_id, node_id, seq, struck_ms, bet) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let (event, bet_id, node, seq, ts): (String, String, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let frame = r.get_ref(5)?.as_blob().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Blob, Box::new(e))
        })?;
        let bad = |e: String| DbError::Backfill(format!("bet {bet_id} (record {node}#{seq}): {e}"));
        let node_id =
            outpost_core::ids::NodeId::new(node.clone()).map_err(|e| bad(e.to_string()))?;
        let bet =
            crate::store::bet_from_frame(&node_id, seq, frame).map_err(|e| bad(e.to_string()))?;
        let copy = crate::bet_copy::encode(&bet).map_err(|e| bad(e.to_string()))?;
        write.execute(rusqlite::params![event, bet_id, node, seq, ts, copy])?;
    }
    Ok(())
}

/// The database handle: one connection behind a mutex.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// Tells the checkpointer thread to stop when the handle is dropped.
    checkpointer_stop: Arc<AtomicBool>,
}

/// How often the checkpointer copies the WAL back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

impl Drop for Db {
    fn drop(&mut self) {
        self.checkpointer_stop.store(true, Ordering::Relaxed);
    }
}

/// WAL checkpoints run on their own thread and connection, not inside the writer's `COMMIT`:
/// SQLite's automatic checkpoint would copy every page a commit wrote back into the database
/// file (and fsync it) before the commit returns, which for a settle pass of 100,000 bets
/// took as long as the settling. A `PASSIVE` checkpoint never blocks the writer or readers.
/// Durability does not depend on it: a commit is durable once its WAL frames are synced; if
/// the process dies, the next open replays the WAL.
/// Returns false if no thread could be started (the writer then keeps SQLite's own
/// checkpoints).
fn spawn_checkpointer(path: &Path, stop: Arc<AtomicBool>) -> Result<bool, DbError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(1))?;
    let spawned = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                let r =
                    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                if let Err(e) = r {
                    tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                }
            }
        });
    if let Err(e) = &spawned {
        tracing::warn!(error = %e, "no checkpointer thread; checkpoints run on commit");
    }
    Ok(spawned.is_ok())
}

impl Db {
    /// Open (creating if needed) the database file and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| DbError::Dir {
                path: dir.display().to_string(),
                error,
            })?;
        }
        let mut conn = Connection::open(path)?;
        // A second process (e.g. `region-hub load-results` next to a running hub) waits for
        // the lock instead of failing at once.
        conn.busy_timeout(Duration::from_secs(10))?;
        // 16 KiB pages for a new database (an existing one keeps its size): a settle pass
        // appends millions of rows to a few tables, and larger pages mean fewer page splits,
        // shallower indexes and fewer pages per WAL commit. Only takes effect before the
        // first table exists, which is also before WAL mode is set.
        conn.pragma_update(None, "page_size", 16384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // A settle pass touches a million rows in one transaction; with SQLite's default
        // 2 MiB page cache it spills dirty pages to the WAL and re-reads index pages over and
        // over. 256 MiB is an upper bound (pages are allocated as used). Durability is
        // unchanged: one fsync per commit.
        conn.pragma_update(None, "cache_size", -262_144)?;
        Db::migrate(&mut conn)?;
        crate::reconcile::schema::ensure(&conn)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(Duration::from_secs(10))?;
        let checkpointer_stop = Arc::new(AtomicBool::new(false));
        if spawn_checkpointer(path, checkpointer_stop.clone())? {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        Ok(Db {
            conn: Mutex::new(conn),
            reader: Mutex::new(reader),
            checkpointer_stop,
        })
    }

    pub(crate) fn migrate(conn: &mut Connection) -> Result<(), DbError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(DbError::TooNew {
                found: version,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            migration_step(i + 1, &tx)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The connection. A panic while it was held leaves no half transaction behind (dropping a
    /// `Transaction` rolls it back), so a poisoned lock is safe to reuse.
    pub fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The read connection: never use it to write.
    pub fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_is_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/hub.sqlite");
        {
            let db = Db::open(&path).unwrap();
            let c = db.conn();
            let v: i64 = c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, MIGRATIONS.len() as i64);
            let mode: String = c
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = c
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!(sync, 2, "synchronous=FULL");
            c.execute(
                "INSERT INTO nodes (id, jurisdiction, public_key) VALUES ('gb-1', 'GB', 'x')",
                [],
            )
            .unwrap();
        }
        // Reopening keeps data and does not re-run migrations.
        let db = Db::open(&path).unwrap();
        let n: i64 = db
            .conn()
            .query_row("SELECT COUNT(*) FROM nodes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    /// The writer does not checkpoint (`wal_autocheckpoint = 0`); the background connection
    /// copies committed pages into the database file.
    #[test]
    fn background_checkpointer_moves_the_wal_into_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let db = Db::open(&path).unwrap();
        let auto: i64 = db
            .conn()
            .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
            .unwrap();
        assert_eq!(auto, 0);
        let before = std::fs::metadata(&path).unwrap().len();
        {
            let mut c = db.conn();
            let tx = c.transaction().unwrap();
            for i in 0..2_000 {
                tx.execute(
                    "INSERT INTO nodes (id, jurisdiction, public_key) VALUES (?1, 'GB', ?2)",
                    rusqlite::params![format!("n-{i}"), "k".repeat(1000)],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        // Polled, not timed: under load the thread may take a while to get a CPU.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::fs::metadata(&path).unwrap().len() < before + 1_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the committed pages"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        drop(Db::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        assert!(matches!(
            Db::open(&path),
            Err(DbError::TooNew { found: 99, .. })
        ));
    }
}
