//! Settlement suspension: a critical reconciliation finding that names events stops their
//! settlement until an operator has looked and cleared it.
//!
//! The settler calls [`suspended`] once per leg event before settling a bet (one function
//! call in `store.rs`'s settle path); a suspended event's bets stay open ("not ready"), nothing
//! is lost, and they settle on the next pass after the suspension is cleared.

use outpost_core::ids::EventId;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// The hook: why `event` is suspended, if it is.
pub fn suspended(conn: &Connection, event: &EventId) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT reason FROM settlement_suspensions WHERE event_id = ?1 AND cleared_ms IS NULL LIMIT 1",
    )?
    .query_row([event.as_str()], |r| r.get(0))
    .optional()
}

/// Suspend `event` because of report `report_id` (idempotent per report).
pub(crate) fn suspend(
    conn: &Connection,
    event: &EventId,
    report_id: i64,
    reason: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO settlement_suspensions (event_id, report_id, reason, since_ms) VALUES (?1, ?2, ?3, ?4)",
        params![event.as_str(), report_id, reason, now_ms],
    )?;
    Ok(())
}

/// Clear every active suspension of `event`; returns how many were cleared. The rows stay,
/// with who cleared them and when.
pub fn clear(conn: &Connection, event: &EventId, by: &str, now_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE settlement_suspensions SET cleared_ms = ?2, cleared_by = ?3 WHERE event_id = ?1 AND cleared_ms IS NULL",
        params![event.as_str(), now_ms, by],
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suspension {
    pub event_id: String,
    pub report_id: i64,
    pub reason: String,
    pub since_ms: i64,
}

/// Active suspensions, oldest first.
pub fn active(conn: &Connection) -> rusqlite::Result<Vec<Suspension>> {
    let mut st = conn.prepare(
        "SELECT event_id, report_id, reason, since_ms FROM settlement_suspensions WHERE cleared_ms IS NULL ORDER BY since_ms, event_id",
    )?;
    st.query_map([], |r| {
        Ok(Suspension {
            event_id: r.get(0)?,
            report_id: r.get(1)?,
            reason: r.get(2)?,
            since_ms: r.get(3)?,
        })
    })?
    .collect()
}
