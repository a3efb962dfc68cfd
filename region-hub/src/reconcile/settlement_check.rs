//! Check 4: every bet whose events all have results is settled exactly once for the current
//! result version, and the edge paid what the hub settled.
//!
//! Sources: `results`, `bets` + `bet_events`, `settlements` (one row per (bet, result
//! version)), the hub's `hub_settlement` down records, and the edge's `bet_settled` records.
//! - no settlement for the current version after the grace period: major (a player is owed);
//! - a bet marked `error` by the settler: major;
//! - two down records for one (bet, version), or a settlement row without its down record,
//!   or a settlement of a bet whose events lack results: critical;
//! - the edge logged the bet settled twice, or paid a different amount: critical.
//!
//! Critical findings name the bet's events, whose settlement is then suspended.

use super::scan::{NodeLog, NodeRef};
use super::window::Window;
use super::{Check, CheckOutput, Discrepancy, ReconcileError, Severity, Thresholds};
use outpost_core::hub::HubEvent;
use outpost_core::ids::{EventId, Jurisdiction, NodeId};
use outpost_core::log::{Frame, RecordKind};
use rusqlite::Connection;
use std::collections::HashMap;

pub fn check(
    conn: &Connection,
    nodes: &[(NodeRef, &NodeLog)],
    w: Window,
    now_ms: i64,
    th: &Thresholds,
    out: &mut CheckOutput,
) -> Result<(), ReconcileError> {
    let scope: HashMap<&str, &Jurisdiction> = nodes
        .iter()
        .map(|(n, _)| (n.id.as_str(), &n.jurisdiction))
        .collect();
    let corrupt = |what: String| ReconcileError::Corrupt(what);

    let mut results: HashMap<String, (i64, i64)> = HashMap::new();
    let mut st = conn.prepare("SELECT event_id, result_version, received_ms FROM results")?;
    for r in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (e, v, t) = r?;
        results.insert(e, (v, t));
    }
    let mut legs: HashMap<String, Vec<String>> = HashMap::new();
    let mut st = conn.prepare("SELECT bet_id, event_id FROM bet_events")?;
    for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
        let (b, e) = r?;
        legs.entry(b).or_default().push(e);
    }
    // (bet) -> [(version, payout)]
    let mut settled: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    let mut st = conn.prepare("SELECT bet_id, result_version, payout_minor FROM settlements")?;
    for r in st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (b, v, p) = r?;
        settled.entry(b).or_default().push((v, p));
    }
    // (bet, version) -> down seqs of hub_settlement records.
    let mut down: HashMap<(String, i64), Vec<i64>> = HashMap::new();
    let mut st =
        conn.prepare("SELECT node_id, down_seq, frame FROM down_records WHERE kind = ?1")?;
    for r in st.query_map([RecordKind::HubSettlement as u8 as i64], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Vec<u8>>(2)?,
        ))
    })? {
        let (node, seq, bytes) = r?;
        if !scope.contains_key(node.as_str()) {
            continue;
        }
        let body = Frame::decode_exact(&bytes)
            .and_then(|f| f.parse_body())
            .map_err(|e| corrupt(format!("down record {node}#{seq}: {e}")))?;
        match HubEvent::from_payload(body.kind, &body.payload) {
            Ok(HubEvent::Settlement(s)) => down
                .entry((s.bet_id.to_string(), i64::from(s.result_version)))
                .or_default()
                .push(seq),
            Ok(_) => {}
            Err(e) => return Err(corrupt(format!("down record {node}#{seq}: {e}"))),
        }
    }
    // What each edge logged and still has in force: bet -> [(seq, version, payout)]. A
    // settlement the edge reversed on a hub correction (kind 67) is no longer in force.
    let mut edge: HashMap<&str, Vec<(u64, u32, i64)>> = HashMap::new();
    for (_, log) in nodes {
        for s in &log.settled {
            edge.entry(s.v.bet_id.as_str()).or_default().push((
                s.seq,
                s.v.result_version,
                s.v.payout_minor,
            ));
        }
        for r in &log.reversed {
            if let Some(logged) = edge.get_mut(r.v.bet_id.as_str())
                && let Some(i) = logged.iter().position(|l| {
                    l.1 == r.v.reversed_result_version && l.2 == r.v.payout_reversed_minor
                })
            {
                logged.remove(i);
            }
        }
    }

    let mut st =
        conn.prepare("SELECT bet_id, node_id, status, settle_error FROM bets ORDER BY bet_id")?;
    let bets = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    for b in bets {
        let (bet, node, status, settle_error) = b?;
        let Some(&j) = scope.get(node.as_str()) else {
            continue;
        };
        let events: Vec<&String> = legs
            .get(&bet)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let event_ids: Vec<EventId> = events
            .iter()
            .filter_map(|e| EventId::new(e.as_str()).ok())
            .collect();
        let node_id = NodeId::new(node.as_str()).ok();
        let finding = |severity, code: &str, amount: Option<i64>, detail: String| Discrepancy {
            check: Check::SettlementCompleteness,
            severity,
            code: code.into(),
            node_id: node_id.clone(),
            jurisdiction: j.clone(),
            subject: bet.clone(),
            amount_minor: amount,
            event_ids: if severity == Severity::Critical {
                event_ids.clone()
            } else {
                vec![]
            },
            detail,
        };
        let known: Vec<(i64, i64)> = events
            .iter()
            .filter_map(|e| results.get(*e).copied())
            .collect();
        let all_resulted = !events.is_empty() && known.len() == events.len();
        let rows = settled.get(&bet).map(Vec::as_slice).unwrap_or(&[]);
        if !all_resulted {
            if !rows.is_empty() {
                out.found.push(finding(
                    Severity::Critical,
                    "settled_without_result",
                    None,
                    format!(
                        "bet {bet} has {} settlement(s) but not all of its events have results",
                        rows.len()
                    ),
                ));
            }
            continue;
        }
        // A bet's result version is the sum of its legs' versions (core::hub::settle_bet).
        let version: i64 = known.iter().map(|k| k.0).sum();
        let ready_ms = known.iter().map(|k| k.1).max().unwrap_or(0);
        if ready_ms >= w.end_ms {
            continue;
        }
        out.examined(j, 1);
        for &(v, _) in rows {
            match down.get(&(bet.clone(), v)).map(Vec::len).unwrap_or(0) {
                1 => {}
                0 => out.found.push(finding(Severity::Critical, "settlement_without_down_record", None,
                    format!("bet {bet} is settled for result version {v} but no hub_settlement record was sent to the edge"))),
                n => out.found.push(finding(Severity::Critical, "settled_twice", None,
                    format!("bet {bet} was sent {n} hub_settlement records for result version {v}: it would be paid more than once"))),
            }
        }
        match rows.iter().find(|(v, _)| *v == version) {
            None if status == "error" => out.found.push(finding(Severity::Major, "bet_settlement_error", None,
                format!("bet {bet} could not be settled: {}", settle_error.unwrap_or_default()))),
            None if now_ms.saturating_sub(ready_ms) > th.settle_grace_ms => out.found.push(finding(Severity::Major, "bet_unsettled", None,
                format!("all events of bet {bet} have results (version {version}) since {} min, but it is not settled", now_ms.saturating_sub(ready_ms) / 60_000))),
            None => out.pending(j, 1),
            Some(_) => {}
        }
        if let Some(logged) = edge.get(bet.as_str()) {
            if logged.len() > 1 {
                let seqs: Vec<u64> = logged.iter().map(|l| l.0).collect();
                out.found.push(finding(
                    Severity::Critical,
                    "edge_settled_twice",
                    None,
                    format!(
                        "the edge logged bet {bet} settled {} times (seqs {seqs:?})",
                        logged.len()
                    ),
                ));
            }
            for &(seq, v, paid) in logged {
                if let Some(&(_, payout)) = rows.iter().find(|(rv, _)| *rv == i64::from(v))
                    && payout != paid
                {
                    out.found.push(finding(Severity::Critical, "payout_mismatch", Some(paid.saturating_sub(payout)),
                        format!("the edge paid {paid} for bet {bet} at seq {seq}, the hub settled {payout} for result version {v}")));
                }
            }
        }
    }
    Ok(())
}
