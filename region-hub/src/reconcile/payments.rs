//! Check 2: deposits and withdrawals against the payment providers' settlement reports.
//!
//! Every deposit or withdrawal movement in the window is matched to statement lines by
//! reference (the edge's `provider_ref`). Then:
//! - matched: type, currency and amount must agree (amount by [`Thresholds::by_amount`],
//!   currency critical);
//! - a movement no line matches is a finding only once an imported statement of its
//!   jurisdiction covers its time (the provider settles a day or more later); until then it is
//!   counted as pending. A deposit credited without the provider's money is at least major, as
//!   is a withdrawal the provider never paid;
//! - a statement line in the window that no movement matches: the player paid (or was paid)
//!   without a wallet entry; at least major;
//! - a reversal (chargeback) is always at least major: the wallet has no entry for it, ops must
//!   recover the money or close the account;
//! - one provider reference on two movements is critical (a double credit).

use super::scan::{NodeLog, NodeRef};
use super::statement::LineType;
use super::window::Window;
use super::{Check, CheckOutput, Discrepancy, ReconcileError, Severity, Thresholds};
use outpost_core::edge::events::MovementReason;
use outpost_core::ids::{Jurisdiction, NodeId};
use outpost_core::ledger::Account;
use rusqlite::{Connection, params};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A statement line as loaded for matching.
#[derive(Debug, Clone)]
pub struct Line {
    pub statement_id: i64,
    pub line_no: i64,
    pub reference: String,
    pub line_type: LineType,
    pub created_ms: i64,
    pub currency: String,
    pub gross_minor: i64,
    pub jurisdiction: Jurisdiction,
}

/// Lines near the window, and which periods the imported statements cover.
#[derive(Debug, Default)]
pub struct Statements {
    pub lines: Vec<Line>,
    /// (jurisdiction, start, end) of every imported statement.
    pub periods: Vec<(Jurisdiction, i64, i64)>,
}

/// Settlement lags payment by days; lines this far either side of the window are loaded for
/// matching (only lines inside the window can be "unmatched").
const MATCH_SLACK_MS: i64 = 7 * 86_400_000;

pub fn load(conn: &Connection, w: Window) -> Result<Statements, ReconcileError> {
    let mut out = Statements::default();
    let mut stmt = conn.prepare(
        "SELECT l.statement_id, l.line_no, l.psp_reference, l.record_type, l.created_ms, l.currency, l.gross_minor, s.jurisdiction
         FROM provider_statement_lines l JOIN provider_statements s ON s.id = l.statement_id
         WHERE l.created_ms >= ?1 AND l.created_ms < ?2 ORDER BY l.statement_id, l.line_no",
    )?;
    let rows = stmt.query_map(
        params![w.start_ms - MATCH_SLACK_MS, w.end_ms + MATCH_SLACK_MS],
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, String>(7)?,
            ))
        },
    )?;
    for row in rows {
        let (statement_id, line_no, reference, ty, created_ms, currency, gross_minor, j) = row?;
        let corrupt =
            || ReconcileError::Corrupt(format!("statement {statement_id} line {line_no}"));
        out.lines.push(Line {
            statement_id,
            line_no,
            reference,
            line_type: LineType::parse(&ty).ok_or_else(corrupt)?,
            created_ms,
            currency,
            gross_minor,
            jurisdiction: Jurisdiction::new(j).map_err(|_| corrupt())?,
        });
    }
    let mut stmt = conn
        .prepare("SELECT jurisdiction, period_start_ms, period_end_ms FROM provider_statements")?;
    for row in stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (j, a, b) = row?;
        let j = Jurisdiction::new(j)
            .map_err(|e| ReconcileError::Corrupt(format!("statement jurisdiction: {e}")))?;
        out.periods.push((j, a, b));
    }
    Ok(out)
}

/// A deposit or withdrawal movement of some node, in the window.
struct Movement<'a> {
    node: &'a NodeRef,
    movement_id: u64,
    seq: u64,
    ts_ms: i64,
    kind: LineType,
    reference: Option<&'a str>,
    currency: &'a str,
    amount_minor: i64,
}

pub fn check(
    nodes: &[(NodeRef, &NodeLog)],
    st: &Statements,
    w: Window,
    th: &Thresholds,
    out: &mut CheckOutput,
) {
    let mut moves: Vec<Movement<'_>> = Vec::new();
    // Every reference used by any movement up to the window end (a line may match a movement
    // just before the window).
    let mut all_refs: HashSet<&str> = HashSet::new();
    for (node, log) in nodes {
        for m in &log.movements {
            let kind = match m.v.reason {
                MovementReason::Deposit => LineType::Deposit,
                MovementReason::Withdrawal => LineType::Withdrawal,
                _ => continue,
            };
            if let Some(r) = &m.v.provider_ref {
                all_refs.insert(r);
            }
            if !w.contains(m.ts_ms) {
                continue;
            }
            // The provider's side of the movement is the money that moved to or from it.
            let amount_minor =
                m.v.postings
                    .iter()
                    .filter(|p| {
                        matches!(p.from, Account::PaymentProvider)
                            || matches!(p.to, Account::PaymentProvider)
                    })
                    .fold(0i64, |a, p| a.saturating_add(p.amount_minor));
            moves.push(Movement {
                node,
                movement_id: m.v.movement_id,
                seq: m.seq,
                ts_ms: m.ts_ms,
                kind,
                reference: m.v.provider_ref.as_deref(),
                currency: m.v.currency.code(),
                amount_minor,
            });
        }
    }
    let mut by_ref: HashMap<&str, Vec<&Line>> = HashMap::new();
    for l in &st.lines {
        by_ref.entry(l.reference.as_str()).or_default().push(l);
    }
    let finding = |node: Option<&NodeId>,
                   j: &Jurisdiction,
                   severity,
                   code: &str,
                   subject: &str,
                   amount,
                   detail: String| Discrepancy {
        check: Check::Payments,
        severity,
        code: code.into(),
        node_id: node.cloned(),
        jurisdiction: j.clone(),
        subject: subject.into(),
        amount_minor: amount,
        event_ids: vec![],
        detail,
    };

    let mut seen: BTreeMap<&str, (&NodeId, u64)> = BTreeMap::new();
    for m in &moves {
        let j = &m.node.jurisdiction;
        out.examined(j, 1);
        let id = format!("{}#{} (movement {})", m.node.id, m.seq, m.movement_id);
        let Some(reference) = m.reference else {
            out.found.push(finding(
                Some(&m.node.id),
                j,
                th.by_amount(m.amount_minor, Severity::Major),
                "movement_without_reference",
                &id,
                Some(m.amount_minor),
                format!(
                    "{} of {} has no provider reference and cannot be reconciled",
                    m.kind.as_str(),
                    m.amount_minor
                ),
            ));
            continue;
        };
        if let Some((n, s)) = seen.insert(reference, (&m.node.id, m.seq)) {
            out.found.push(finding(
                Some(&m.node.id),
                j,
                Severity::Critical,
                "duplicate_reference",
                reference,
                Some(m.amount_minor),
                format!(
                    "provider reference used by {id} and by {n}#{s}: one payment credited twice"
                ),
            ));
            continue;
        }
        let lines: Vec<&&Line> = by_ref
            .get(reference)
            .map(|v| v.iter().filter(|l| l.line_type == m.kind).collect())
            .unwrap_or_default();
        match lines.as_slice() {
            [] => {
                let covered = st
                    .periods
                    .iter()
                    .any(|(pj, a, b)| pj == j && (*a..=*b).contains(&m.ts_ms));
                if covered {
                    out.found.push(finding(Some(&m.node.id), j, th.by_amount(m.amount_minor, Severity::Major), "movement_not_in_statement", reference, Some(m.amount_minor),
                        format!("{} {id} of {} {} is in no statement line, though a statement covers its time", m.kind.as_str(), m.amount_minor, m.currency)));
                } else {
                    out.pending(j, 1);
                }
            }
            [l] => {
                if l.currency != m.currency {
                    out.found.push(finding(
                        Some(&m.node.id),
                        j,
                        Severity::Critical,
                        "currency_mismatch",
                        reference,
                        Some(m.amount_minor),
                        format!(
                            "{id} is in {} but statement {} line {} is in {}",
                            m.currency, l.statement_id, l.line_no, l.currency
                        ),
                    ));
                } else if l.gross_minor != m.amount_minor {
                    let diff = m.amount_minor.saturating_sub(l.gross_minor);
                    out.found.push(finding(
                        Some(&m.node.id),
                        j,
                        th.by_amount(diff, Severity::Minor),
                        "amount_mismatch",
                        reference,
                        Some(diff),
                        format!(
                            "{id} moved {} but statement {} line {} says {}",
                            m.amount_minor, l.statement_id, l.line_no, l.gross_minor
                        ),
                    ));
                }
            }
            many => {
                out.found.push(finding(
                    Some(&m.node.id),
                    j,
                    Severity::Major,
                    "reference_on_several_lines",
                    reference,
                    Some(m.amount_minor),
                    format!("{} statement lines carry the reference of {id}", many.len()),
                ));
            }
        }
    }
    // Lines in the window without a movement, and reversals.
    for l in st.lines.iter().filter(|l| w.contains(l.created_ms)) {
        out.examined(&l.jurisdiction, 1);
        let subject = format!("statement {} line {}", l.statement_id, l.line_no);
        if l.line_type == LineType::Reversal {
            out.found.push(finding(None, &l.jurisdiction, th.by_amount(l.gross_minor, Severity::Major), "provider_reversal", &l.reference, Some(l.gross_minor),
                format!("{subject}: the provider reversed payment {} ({} {}); the wallet has no entry for it", l.reference, l.gross_minor, l.currency)));
            continue;
        }
        if !all_refs.contains(l.reference.as_str()) {
            // A line at the very end of the window may belong to a movement replicated later.
            if l.created_ms >= w.end_ms - 10 * 60_000 {
                out.pending(&l.jurisdiction, 1);
                continue;
            }
            out.found.push(finding(
                None,
                &l.jurisdiction,
                th.by_amount(l.gross_minor, Severity::Major),
                "statement_line_without_movement",
                &l.reference,
                Some(l.gross_minor),
                format!(
                    "{subject}: {} {} {} has no wallet movement on any node",
                    l.line_type.as_str(),
                    l.gross_minor,
                    l.currency
                ),
            ));
        }
    }
}
