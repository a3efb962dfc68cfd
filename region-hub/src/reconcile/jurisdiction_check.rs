//! Check 5: jurisdiction consistency. Outpost runs inside the jurisdiction that licenses it,
//! so every record a node logs must belong to the node's configured jurisdiction:
//! - genesis, player registrations, compliance decisions and balance snapshots must name it
//!   (critical otherwise: a node is acting outside its licence or was misconfigured);
//! - a bet must be by a player registered on the same node; a player of another jurisdiction
//!   is critical (the bet's events are suspended), one of another node of the same
//!   jurisdiction or an unknown player is major;
//! - a bet's currency must be the node's currency (major);
//! - the node's audit objects must be filed under its jurisdiction (critical: retention and
//!   regulator access are per jurisdiction);
//! - a record whose payload does not decode cannot be checked at all (major).

use super::scan::{NodeLog, NodeRef};
use super::window::Window;
use super::{Check, CheckOutput, Discrepancy, ReconcileError, Severity};
use crate::outbox::up_log_id;
use outpost_core::hub::down_log_id;
use outpost_core::ids::{Jurisdiction, NodeId, PlayerId};
use rusqlite::{Connection, params};
use std::collections::HashMap;

pub fn check(
    conn: &Connection,
    nodes: &[(NodeRef, &NodeLog)],
    w: Window,
    out: &mut CheckOutput,
) -> Result<(), ReconcileError> {
    // Every player the hub has seen registered, on any node: (node, jurisdiction).
    let mut players: HashMap<&PlayerId, (&NodeId, &Jurisdiction)> = HashMap::new();
    for (n, log) in nodes {
        for p in &log.players {
            players.insert(&p.v.player_id, (&n.id, &p.v.jurisdiction));
        }
    }
    for (node, log) in nodes {
        let j = &node.jurisdiction;
        let finding =
            |severity, code: &str, subject: String, event_ids, detail: String| Discrepancy {
                check: Check::Jurisdiction,
                severity,
                code: code.into(),
                node_id: Some(node.id.clone()),
                jurisdiction: j.clone(),
                subject,
                amount_minor: None,
                event_ids,
                detail,
            };
        let mut wrong = |seq: u64, what: &str, found: &Jurisdiction| {
            out.found.push(finding(
                Severity::Critical,
                "record_outside_jurisdiction",
                format!("seq {seq}"),
                vec![],
                format!(
                    "{what} at seq {seq} names jurisdiction {found}; node {} is configured for {j}",
                    node.id
                ),
            ));
        };
        let mut examined = 0u64;
        if let Some(g) = &log.genesis {
            examined += 1;
            if g.v.jurisdiction != *j {
                wrong(g.seq, "genesis", &g.v.jurisdiction);
            }
        }
        for p in log.players.iter().filter(|p| w.contains(p.ts_ms)) {
            examined += 1;
            if p.v.jurisdiction != *j {
                wrong(p.seq, "player registration", &p.v.jurisdiction);
            }
        }
        for d in &log.decisions {
            examined += 1;
            if d.v.jurisdiction != *j {
                wrong(d.seq, "compliance decision", &d.v.jurisdiction);
            }
        }
        for s in &log.snapshots {
            examined += 1;
            if s.v.jurisdiction != *j || s.v.node_id != node.id {
                wrong(
                    s.seq,
                    &format!("balance snapshot of node {}", s.v.node_id),
                    &s.v.jurisdiction,
                );
            }
        }
        let currency = log.genesis.as_ref().map(|g| g.v.currency);
        for b in &log.bets {
            examined += 1;
            let events: Vec<_> = b.v.legs.iter().map(|l| l.event_id.clone()).collect();
            let subject = b.v.bet_id.to_string();
            match players.get(&b.v.player_id) {
                Some((n, pj)) if *pj != j => out.found.push(finding(
                    Severity::Critical,
                    "bet_by_player_of_other_jurisdiction",
                    subject,
                    events,
                    format!(
                        "bet {} at seq {} is by player {} of {pj} (node {n}); node {} serves {j}",
                        b.v.bet_id, b.seq, b.v.player_id, node.id
                    ),
                )),
                Some((n, _)) if **n == node.id => {}
                Some((n, _)) => out.found.push(finding(
                    Severity::Major,
                    "bet_by_player_of_other_node",
                    subject,
                    vec![],
                    format!(
                        "bet {} at seq {} is by player {} registered on node {n}",
                        b.v.bet_id, b.seq, b.v.player_id
                    ),
                )),
                None => out.found.push(finding(
                    Severity::Major,
                    "bet_by_unknown_player",
                    subject,
                    vec![],
                    format!(
                        "bet {} at seq {} is by player {}, whom no node registered",
                        b.v.bet_id, b.seq, b.v.player_id
                    ),
                )),
            }
            if currency.is_some_and(|c| c != b.v.currency) {
                out.found.push(finding(
                    Severity::Major,
                    "bet_currency_mismatch",
                    b.v.bet_id.to_string(),
                    vec![],
                    format!(
                        "bet {} is in {}, the node's ledger is in {}",
                        b.v.bet_id,
                        b.v.currency.code(),
                        currency.map(|c| c.code().to_string()).unwrap_or_default()
                    ),
                ));
            }
        }
        for (seq, e) in &log.unreadable {
            out.found.push(finding(
                Severity::Major,
                "record_unreadable",
                format!("seq {seq}"),
                vec![],
                format!("record {seq} does not decode, so it cannot be checked: {e}"),
            ));
        }
        // Audit objects filed under another jurisdiction.
        let prefix = format!("{j}/");
        let mut st = conn.prepare_cached(
            "SELECT key FROM audit_segments WHERE log_id IN (?1, ?2) AND substr(key, 1, length(?3)) <> ?3
             UNION ALL SELECT key FROM audit_outbox WHERE log_id IN (?1, ?2) AND substr(key, 1, length(?3)) <> ?3",
        )?;
        let keys = st.query_map(
            params![
                up_log_id(&node.id).as_str(),
                down_log_id(&node.id).as_str(),
                prefix
            ],
            |r| r.get::<_, String>(0),
        )?;
        for k in keys {
            let k = k?;
            out.found.push(finding(
                Severity::Critical,
                "audit_object_outside_jurisdiction",
                k.clone(),
                vec![],
                format!(
                    "audit object {k} of node {} is not filed under {prefix}",
                    node.id
                ),
            ));
        }
        out.examined(j, examined);
    }
    Ok(())
}
