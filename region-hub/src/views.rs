//! Read models for the HTTP API: nodes with their replication lag, bets with their
//! settlements, and hub-wide counters. Read through the database's read connection, so they
//! never wait for a writer's fsync.

use crate::store::{HubState, StoreError};
use outpost_core::ids::BetId;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::sync::atomic::Ordering;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub id: String,
    pub jurisdiction: String,
    /// In the current config (a node removed from it keeps its data but cannot connect).
    pub registered: bool,
    pub last_contact_ms: Option<i64>,
    /// The edge's own durable head, as last reported.
    pub edge_head: u64,
    /// Durably received by the hub.
    pub acked_seq: u64,
    /// Records the hub still has to receive: `edge_head - acked_seq`.
    pub lag_records: u64,
    /// The same lag in time: age of the edge's oldest record the hub has not yet acknowledged
    /// (from the edge's heartbeats, aged while none arrive; see `lag.rs`). 0 when caught up.
    pub lag_seconds: f64,
    pub down_head: u64,
    pub down_acked: u64,
    pub flagged: bool,
    pub flag_reason: Option<String>,
    /// Set when the node equivocated (see `/v1/alerts`); it is refused until cleared.
    pub quarantined: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementView {
    pub result_version: u32,
    pub down_seq: u64,
    pub payout_minor: i64,
    pub settled_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BetView {
    pub bet_id: String,
    pub node_id: String,
    pub seq: u64,
    pub player_id: String,
    pub currency: String,
    pub stake_minor: i64,
    pub potential_payout_minor: i64,
    pub legs: serde_json::Value,
    pub status: String,
    pub payout_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_error: Option<String>,
    pub settlements: Vec<SettlementView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsView {
    pub hub_id: String,
    pub nodes: u64,
    pub records: u64,
    pub bets: u64,
    pub open_bets: u64,
    pub settled: u64,
    pub results: u64,
    pub down_records: u64,
    pub audit_uploaded: u64,
    pub audit_pending: u64,
    /// Pending objects that failed at least once (the store is or was unavailable).
    pub audit_retrying: u64,
    /// Settlement passes that found the (bet, result version) already settled (since start).
    pub reprocessed_settlements: u64,
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

impl HubState {
    pub fn nodes_view(&self) -> Result<Vec<NodeView>, StoreError> {
        let conn = self.db().reader();
        let mut stmt = conn.prepare_cached(
            "SELECT n.id, n.jurisdiction, n.last_contact_ms, n.edge_head, n.acked_seq, n.down_acked, n.flagged, n.flag_reason,
                    (SELECT COALESCE(MAX(down_seq), 0) FROM down_records d WHERE d.node_id = n.id)
             FROM nodes n ORDER BY n.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let id: String = r.get(0)?;
            let edge_head = u(r.get(3)?);
            let acked_seq = u(r.get(4)?);
            Ok(NodeView {
                jurisdiction: r.get(1)?,
                last_contact_ms: r.get(2)?,
                edge_head,
                acked_seq,
                lag_records: edge_head.saturating_sub(acked_seq),
                lag_seconds: 0.0,
                down_acked: u(r.get(5)?),
                flagged: r.get(6)?,
                flag_reason: r.get(7)?,
                down_head: u(r.get(8)?),
                registered: false,
                quarantined: None,
                id,
            })
        })?;
        let mut out: Vec<NodeView> = rows.collect::<Result<_, _>>()?;
        let now = crate::store::now_ms().0;
        for n in &mut out {
            n.registered = self.registered_nodes().any(|c| c.id.as_str() == n.id);
            if let Ok(id) = outpost_core::ids::NodeId::new(&n.id) {
                n.quarantined = self.quarantine_reason(&id);
            }
            let lag_ms = self
                .metrics()
                .replication_lag
                .lag_ms(&n.id, n.lag_records, now);
            n.lag_seconds = lag_ms as f64 / 1000.0;
        }
        Ok(out)
    }

    pub fn bet_view(&self, bet_id: &BetId) -> Result<Option<BetView>, StoreError> {
        let conn = self.db().reader();
        let bet = conn
            .query_row(
                "SELECT b.node_id, b.seq, b.player_id, b.currency, b.stake_minor, b.potential_payout_minor, b.legs_json, st.status, st.payout_minor, b.settle_error
                 FROM bets b JOIN bet_state st ON st.bet_id = b.bet_id WHERE b.bet_id = ?1",
                [bet_id.as_str()],
                |r| {
                    Ok(BetView {
                        bet_id: bet_id.to_string(),
                        node_id: r.get(0)?,
                        seq: u(r.get(1)?),
                        player_id: r.get(2)?,
                        currency: r.get(3)?,
                        stake_minor: r.get(4)?,
                        potential_payout_minor: r.get(5)?,
                        legs: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or(serde_json::Value::Null),
                        status: r.get(7)?,
                        payout_minor: r.get(8)?,
                        settle_error: r.get(9)?,
                        settlements: Vec::new(),
                    })
                },
            )
            .optional()?;
        let Some(mut bet) = bet else { return Ok(None) };
        let mut stmt = conn.prepare_cached(
            "SELECT result_version, down_seq, payout_minor, settled_ms FROM settlements WHERE bet_id = ?1 ORDER BY result_version",
        )?;
        bet.settlements = stmt
            .query_map(params![bet_id.as_str()], |r| {
                Ok(SettlementView {
                    result_version: r.get(0)?,
                    down_seq: u(r.get(1)?),
                    payout_minor: r.get(2)?,
                    settled_ms: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(bet))
    }

    pub fn stats_view(&self) -> Result<StatsView, StoreError> {
        let conn = self.db().reader();
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(u(conn.query_row(sql, [], |r| r.get(0))?))
        };
        Ok(StatsView {
            hub_id: self.hub_id().to_string(),
            nodes: count("SELECT COUNT(*) FROM nodes")?,
            records: count("SELECT COUNT(*) FROM records")?,
            bets: count("SELECT COUNT(*) FROM bets")?,
            open_bets: count("SELECT COUNT(*) FROM bet_state WHERE status = 'open'")?,
            settled: count("SELECT COUNT(*) FROM settlements")?,
            results: count("SELECT COUNT(*) FROM results")?,
            down_records: count("SELECT COUNT(*) FROM down_records")?,
            audit_uploaded: count("SELECT COUNT(*) FROM audit_segments")?,
            audit_pending: count("SELECT COUNT(*) FROM audit_outbox")?,
            audit_retrying: count("SELECT COUNT(*) FROM audit_outbox WHERE attempts > 0")?,
            reprocessed_settlements: self
                .metrics()
                .reprocessed_settlements
                .load(Ordering::Relaxed),
        })
    }
}
