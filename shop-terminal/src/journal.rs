//! The till's local journal (SQLite, WAL, synchronous=FULL): every slip, payout, void, cash
//! movement, print outcome, login and cash-up, attributed to the staff member. It survives
//! restarts and is what cash-up and reprints read. Rows are only ever appended, except that
//! a drawer period is closed by its cash-up.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("journal: {0}")]
pub struct JournalError(#[from] rusqlite::Error);

/// What a journal row records. `drawer_delta_minor` is the cash it put into (+) or took out
/// of (−) the drawer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    Logout,
    Float,
    Slip,
    Payout,
    Void,
    PayIn,
    PayOut,
    Drop,
    Printed,
    PrintFailed,
    Reprint,
    Refused,
    CashUp,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::Logout => "logout",
            Kind::Float => "float",
            Kind::Slip => "slip",
            Kind::Payout => "payout",
            Kind::Void => "void",
            Kind::PayIn => "pay_in",
            Kind::PayOut => "pay_out",
            Kind::Drop => "drop",
            Kind::Printed => "printed",
            Kind::PrintFailed => "print_failed",
            Kind::Reprint => "reprint",
            Kind::Refused => "refused",
            Kind::CashUp => "cash_up",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at_ms: i64,
    pub staff_id: String,
    pub kind: String,
    pub ticket_id: Option<String>,
    pub amount_minor: i64,
    pub drawer_delta_minor: i64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub id: i64,
    pub opened_at_ms: i64,
    pub opened_by: String,
    pub float_minor: i64,
    pub closed_at_ms: Option<i64>,
}

pub struct Journal {
    db: Connection,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS entries (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at_ms INTEGER NOT NULL,
                staff_id TEXT NOT NULL,
                period_id INTEGER,
                kind TEXT NOT NULL,
                ticket_id TEXT,
                amount_minor INTEGER NOT NULL DEFAULT 0,
                drawer_delta_minor INTEGER NOT NULL DEFAULT 0,
                detail TEXT NOT NULL DEFAULT '');
             CREATE INDEX IF NOT EXISTS entries_ticket ON entries(ticket_id);
             CREATE TABLE IF NOT EXISTS slips (
                ticket_id TEXT PRIMARY KEY,
                issued_at_ms INTEGER NOT NULL,
                slip_json TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS periods (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                opened_at_ms INTEGER NOT NULL,
                opened_by TEXT NOT NULL,
                float_minor INTEGER NOT NULL,
                closed_at_ms INTEGER,
                closed_by TEXT,
                signed_off_by TEXT,
                counted_minor INTEGER,
                expected_minor INTEGER);",
        )?;
        Ok(Journal { db })
    }

    pub fn open_period(&self) -> Result<Option<Period>, JournalError> {
        Ok(self
            .db
            .query_row(
                "SELECT id, opened_at_ms, opened_by, float_minor, closed_at_ms FROM periods WHERE closed_at_ms IS NULL ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok(Period { id: r.get(0)?, opened_at_ms: r.get(1)?, opened_by: r.get(2)?, float_minor: r.get(3)?, closed_at_ms: r.get(4)? }),
            )
            .optional()?)
    }

    /// Start a drawer period with the float counted in at login.
    pub fn start_period(
        &self,
        at_ms: i64,
        staff: &str,
        float_minor: i64,
    ) -> Result<Period, JournalError> {
        self.db.execute(
            "INSERT INTO periods (opened_at_ms, opened_by, float_minor) VALUES (?1, ?2, ?3)",
            params![at_ms, staff, float_minor],
        )?;
        let id = self.db.last_insert_rowid();
        self.append(
            at_ms,
            staff,
            Kind::Float,
            None,
            float_minor,
            float_minor,
            "float at login",
        )?;
        Ok(Period {
            id,
            opened_at_ms: at_ms,
            opened_by: staff.into(),
            float_minor,
            closed_at_ms: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &self,
        at_ms: i64,
        staff: &str,
        kind: Kind,
        ticket: Option<&str>,
        amount_minor: i64,
        drawer_delta_minor: i64,
        detail: &str,
    ) -> Result<i64, JournalError> {
        let period = self.open_period()?.map(|p| p.id);
        self.db.execute(
            "INSERT INTO entries (at_ms, staff_id, period_id, kind, ticket_id, amount_minor, drawer_delta_minor, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![at_ms, staff, period, kind.as_str(), ticket, amount_minor, drawer_delta_minor, detail],
        )?;
        Ok(self.db.last_insert_rowid())
    }

    /// The slip and its journal entry in one transaction.
    pub fn record_slip(
        &mut self,
        at_ms: i64,
        staff: &str,
        ticket: &str,
        stake_minor: i64,
        drawer_delta_minor: i64,
        slip_json: &str,
    ) -> Result<(), JournalError> {
        let period = self.open_period()?.map(|p| p.id);
        let tx = self.db.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO slips (ticket_id, issued_at_ms, slip_json) VALUES (?1, ?2, ?3)",
            params![ticket, at_ms, slip_json],
        )?;
        if tx.changes() == 1 {
            tx.execute(
                "INSERT INTO entries (at_ms, staff_id, period_id, kind, ticket_id, amount_minor, drawer_delta_minor, detail) VALUES (?1, ?2, ?3, 'slip', ?4, ?5, ?6, '')",
                params![at_ms, staff, period, ticket, stake_minor, drawer_delta_minor],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn slip_json(&self, ticket: &str) -> Result<Option<String>, JournalError> {
        Ok(self
            .db
            .query_row(
                "SELECT slip_json FROM slips WHERE ticket_id = ?1",
                [ticket],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn has_entry(&self, kind: Kind, ticket: &str) -> Result<bool, JournalError> {
        Ok(self.db.query_row(
            "SELECT COUNT(*) FROM entries WHERE kind = ?1 AND ticket_id = ?2",
            params![kind.as_str(), ticket],
            |r| r.get::<_, i64>(0),
        )? > 0)
    }

    pub fn entries_since(&self, from_ms: i64) -> Result<Vec<Entry>, JournalError> {
        let mut st = self.db.prepare(
            "SELECT id, at_ms, staff_id, kind, ticket_id, amount_minor, drawer_delta_minor, detail FROM entries WHERE at_ms >= ?1 ORDER BY id",
        )?;
        let rows = st.query_map([from_ms], |r| {
            Ok(Entry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                staff_id: r.get(2)?,
                kind: r.get(3)?,
                ticket_id: r.get(4)?,
                amount_minor: r.get(5)?,
                drawer_delta_minor: r.get(6)?,
                detail: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn period_entries(&self, period: i64) -> Result<Vec<Entry>, JournalError> {
        let mut st = self.db.prepare(
            "SELECT id, at_ms, staff_id, kind, ticket_id, amount_minor, drawer_delta_minor, detail FROM entries WHERE period_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([period], |r| {
            Ok(Entry {
                id: r.get(0)?,
                at_ms: r.get(1)?,
                staff_id: r.get(2)?,
                kind: r.get(3)?,
                ticket_id: r.get(4)?,
                amount_minor: r.get(5)?,
                drawer_delta_minor: r.get(6)?,
                detail: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Close the drawer period with its cash-up (manager sign-off recorded).
    pub fn close_period(
        &self,
        period: i64,
        at_ms: i64,
        by: &str,
        signed_off_by: &str,
        counted: i64,
        expected: i64,
    ) -> Result<(), JournalError> {
        self.append(at_ms, by, Kind::CashUp, None, counted, 0, &format!("expected {expected}, counted {counted}, over/short {}, signed off by {signed_off_by}", counted - expected))?;
        self.db.execute(
            "UPDATE periods SET closed_at_ms = ?2, closed_by = ?3, signed_off_by = ?4, counted_minor = ?5, expected_minor = ?6 WHERE id = ?1 AND closed_at_ms IS NULL",
            params![period, at_ms, by, signed_off_by, counted, expected],
        )?;
        Ok(())
    }

    /// Closed periods overlapping `[from, to)`: (period, counted, expected).
    pub fn closed_periods(
        &self,
        from_ms: i64,
    ) -> Result<Vec<(i64, i64, i64, String)>, JournalError> {
        let mut st = self.db.prepare(
            "SELECT id, counted_minor, expected_minor, signed_off_by FROM periods WHERE closed_at_ms IS NOT NULL AND closed_at_ms >= ?1 ORDER BY id",
        )?;
        let rows = st.query_map([from_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_keeps_slips_and_periods() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        {
            let mut j = Journal::open(&path).unwrap();
            let p = j.start_period(1_000, "ann", 10_000).unwrap();
            j.record_slip(2_000, "ann", "T1", 500, 500, "{\"slip\":1}")
                .unwrap();
            // The same slip twice (a retried bet) is journaled once.
            j.record_slip(2_001, "ann", "T1", 500, 500, "{\"slip\":1}")
                .unwrap();
            j.append(3_000, "ann", Kind::Payout, Some("T0"), 700, -700, "")
                .unwrap();
            assert_eq!(p.id, j.open_period().unwrap().unwrap().id);
        }
        let j = Journal::open(&path).unwrap();
        let p = j.open_period().unwrap().expect("period survives restart");
        assert_eq!(p.float_minor, 10_000);
        let e = j.period_entries(p.id).unwrap();
        assert_eq!(
            e.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>(),
            vec!["float", "slip", "payout"]
        );
        assert_eq!(crate::cashup::expected_drawer(&e), 10_000 + 500 - 700);
        assert_eq!(j.slip_json("T1").unwrap().as_deref(), Some("{\"slip\":1}"));
        j.close_period(p.id, 4_000, "ann", "meg", 9_800, 9_800)
            .unwrap();
        assert!(j.open_period().unwrap().is_none());
        assert_eq!(
            j.closed_periods(0).unwrap(),
            vec![(p.id, 9_800, 9_800, "meg".to_string())]
        );
    }
}
