//! Check 1: balances derived from the event log against the edge's balance-snapshot records.
//!
//! For each snapshot in the window the wallet movements of the node's log are replayed up to
//! the snapshot's `as_of_seq` (one pass, snapshots in seq order) and every player's cash and
//! held stakes are compared. A difference is classed by its size ([`Thresholds::by_amount`]);
//! a player with money that the snapshot leaves out, or a snapshot naming a player the log
//! never registered, is at least major; an inconsistent snapshot (parts missing, totals that
//! do not add up, a position after itself) is major or critical.

use super::scan::{NodeLog, NodeRef};
use super::{Check, CheckOutput, Discrepancy, Severity, Thresholds};
use outpost_core::edge::balance_snapshot::BalanceSnapshot;
use outpost_core::ids::PlayerId;
use outpost_core::ledger::Account;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bal {
    cash: i64,
    stakes: i64,
}

pub fn check(node: &NodeRef, log: &NodeLog, th: &Thresholds, out: &mut CheckOutput) {
    let j = &node.jurisdiction;
    let finding =
        |severity, code: &str, subject: String, amount: Option<i64>, detail: String| Discrepancy {
            check: Check::Balances,
            severity,
            code: code.into(),
            node_id: Some(node.id.clone()),
            jurisdiction: j.clone(),
            subject,
            amount_minor: amount,
            event_ids: vec![],
            detail,
        };
    // Group the parts of each snapshot by position.
    let mut snaps: BTreeMap<u64, Vec<(u64, &BalanceSnapshot)>> = BTreeMap::new();
    for r in &log.snapshots {
        if r.v.as_of_seq.0 >= r.seq {
            out.found.push(finding(
                Severity::Critical,
                "snapshot_position_invalid",
                format!("seq {}", r.seq),
                None,
                format!(
                    "balance snapshot at seq {} claims to be as of seq {}, which is not before it",
                    r.seq, r.v.as_of_seq
                ),
            ));
            continue;
        }
        snaps
            .entry(r.v.as_of_seq.0)
            .or_default()
            .push((r.seq, &r.v));
    }

    let mut derived: HashMap<&PlayerId, Bal> = HashMap::new();
    let mut registered: HashSet<&PlayerId> = HashSet::new();
    let mut overflowed = false;
    let (mut mi, mut pi) = (0, 0);
    for (&as_of, parts) in &snaps {
        // Replay up to and including `as_of`.
        while let Some(m) = log.movements.get(mi).filter(|m| m.seq <= as_of) {
            for p in &m.v.postings {
                for (acct, sign) in [(&p.from, -1i64), (&p.to, 1)] {
                    let (pid, cash) = match acct {
                        Account::PlayerCash(pid) => (pid, true),
                        Account::PlayerStakes(pid) => (pid, false),
                        _ => continue,
                    };
                    let b = derived.entry(pid).or_default();
                    let slot = if cash { &mut b.cash } else { &mut b.stakes };
                    match p
                        .amount_minor
                        .checked_mul(sign)
                        .and_then(|d| slot.checked_add(d))
                    {
                        Some(v) => *slot = v,
                        None => overflowed = true,
                    }
                }
            }
            mi += 1;
        }
        while let Some(p) = log.players.get(pi).filter(|p| p.seq <= as_of) {
            registered.insert(&p.v.player_id);
            pi += 1;
        }
        if overflowed {
            out.found.push(finding(
                Severity::Critical,
                "ledger_overflow",
                format!("as of seq {as_of}"),
                None,
                "replaying the wallet movements overflows i64 minor units".into(),
            ));
            return;
        }

        let first_seq = parts[0].0;
        let expected_parts = parts[0].1.parts;
        let mut numbers: Vec<u32> = parts.iter().map(|(_, s)| s.part).collect();
        numbers.sort_unstable();
        if numbers != (1..=expected_parts).collect::<Vec<_>>() {
            out.found.push(finding(
                Severity::Major,
                "snapshot_incomplete",
                format!("seq {first_seq}"),
                None,
                format!(
                    "balance snapshot as of seq {as_of} has parts {numbers:?} of {expected_parts}"
                ),
            ));
            continue;
        }
        let mut listed: HashSet<&PlayerId> = HashSet::new();
        let (mut sum_cash, mut sum_stakes) = (0i64, 0i64);
        for (_, s) in parts {
            for pb in &s.players {
                out.examined(j, 1);
                listed.insert(&pb.player_id);
                sum_cash = sum_cash.saturating_add(pb.cash_minor);
                sum_stakes = sum_stakes.saturating_add(pb.stakes_held_minor);
                let d = derived.get(&pb.player_id).copied().unwrap_or_default();
                if !registered.contains(&pb.player_id) {
                    let amount = pb.cash_minor.saturating_add(pb.stakes_held_minor);
                    out.found.push(finding(
                        th.by_amount(amount, Severity::Major),
                        "snapshot_unknown_player",
                        pb.player_id.to_string(),
                        Some(amount),
                        format!(
                            "snapshot as of seq {as_of} lists player {} whom the log never registered",
                            pb.player_id
                        ),
                    ));
                    continue;
                }
                let dc = pb.cash_minor.saturating_sub(d.cash);
                let ds = pb.stakes_held_minor.saturating_sub(d.stakes);
                if dc != 0 || ds != 0 {
                    let amount = dc.saturating_abs().saturating_add(ds.saturating_abs());
                    out.found.push(finding(
                        th.by_amount(amount, Severity::Minor),
                        "balance_mismatch",
                        pb.player_id.to_string(),
                        Some(amount),
                        format!(
                            "as of seq {as_of}: edge reports cash {} / stakes {}, the log gives cash {} / stakes {}",
                            pb.cash_minor, pb.stakes_held_minor, d.cash, d.stakes
                        ),
                    ));
                }
            }
        }
        let totals = parts[0].1;
        if (totals.total_cash_minor, totals.total_stakes_held_minor) != (sum_cash, sum_stakes) {
            let amount = (totals.total_cash_minor.saturating_sub(sum_cash))
                .saturating_abs()
                .saturating_add(
                    totals
                        .total_stakes_held_minor
                        .saturating_sub(sum_stakes)
                        .saturating_abs(),
                );
            out.found.push(finding(
                th.by_amount(amount, Severity::Major),
                "snapshot_totals_mismatch",
                format!("seq {first_seq}"),
                Some(amount),
                format!(
                    "snapshot totals cash {} / stakes {} but its players sum to {sum_cash} / {sum_stakes}",
                    totals.total_cash_minor, totals.total_stakes_held_minor
                ),
            ));
        }
        // Players the log knows that the snapshot leaves out.
        let mut missing: Vec<&&PlayerId> = registered
            .iter()
            .filter(|p| !listed.contains(**p))
            .collect();
        missing.sort();
        for p in missing {
            out.examined(j, 1);
            let d = derived.get(*p).copied().unwrap_or_default();
            let amount = d
                .cash
                .saturating_abs()
                .saturating_add(d.stakes.saturating_abs());
            let severity = if amount == 0 {
                Severity::Minor
            } else {
                th.by_amount(amount, Severity::Major)
            };
            out.found.push(finding(
                severity,
                "snapshot_missing_player",
                p.to_string(),
                Some(amount),
                format!(
                    "snapshot as of seq {as_of} leaves out player {p} (the log gives cash {} / stakes {})",
                    d.cash, d.stakes
                ),
            ));
        }
    }
}
