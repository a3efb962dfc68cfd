//! Cash-up and the end-of-day report, as pure functions over the journal and the node's
//! records. Reconciliation compares every ticket event this terminal journaled with the
//! node's log (issued / paid / voided, by ticket and amount) and lists each difference.
//! The daily report follows the layout of New Jersey's daily sports wagering report
//! (N.J.A.C. 13:69N): tickets sold, paid, voided, cancelled and expired, outstanding
//! liability, and the drawer's over/short.

use crate::journal::Entry;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub ticket_id: String,
    pub event: String,
    pub journal_minor: Option<i64>,
    pub edge_minor: Option<i64>,
    pub problem: &'static str,
}

fn journal_event(kind: &str) -> Option<&'static str> {
    match kind {
        "slip" => Some("issued"),
        "payout" => Some("paid"),
        "void" => Some("voided"),
        _ => None,
    }
}

/// Every (ticket, event) on one side only, or with different amounts.
pub fn reconcile(journal: &[Entry], edge_entries: &[Value], terminal_id: &str) -> Vec<Difference> {
    let mut j: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in journal {
        if let (Some(ev), Some(t)) = (journal_event(&e.kind), &e.ticket_id) {
            *j.entry((t.clone(), ev.to_string())).or_default() += e.amount_minor;
        }
    }
    let mut n: BTreeMap<(String, String), i64> = BTreeMap::new();
    for e in edge_entries
        .iter()
        .filter(|e| e["terminal_id"] == terminal_id)
    {
        let key = (
            e["ticket_id"].as_str().unwrap_or("").to_string(),
            e["event"].as_str().unwrap_or("").to_string(),
        );
        *n.entry(key).or_default() += e["amount_minor"].as_i64().unwrap_or(0);
    }
    let mut out = vec![];
    for (k, a) in &j {
        match n.get(k) {
            None => out.push(Difference {
                ticket_id: k.0.clone(),
                event: k.1.clone(),
                journal_minor: Some(*a),
                edge_minor: None,
                problem: "in the till journal, not on the node's log",
            }),
            Some(b) if b != a => out.push(Difference {
                ticket_id: k.0.clone(),
                event: k.1.clone(),
                journal_minor: Some(*a),
                edge_minor: Some(*b),
                problem: "amounts differ",
            }),
            _ => {}
        }
    }
    for (k, b) in &n {
        if !j.contains_key(k) {
            out.push(Difference {
                ticket_id: k.0.clone(),
                event: k.1.clone(),
                journal_minor: None,
                edge_minor: Some(*b),
                problem: "on the node's log, not in the till journal",
            });
        }
    }
    out
}

/// Cash the drawer should hold: the float plus every drawer movement since.
pub fn expected_drawer(period_entries: &[Entry]) -> i64 {
    period_entries.iter().map(|e| e.drawer_delta_minor).sum()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub count: u64,
    pub amount_minor: i64,
}
impl Count {
    fn add(&mut self, a: i64) {
        self.count += 1;
        self.amount_minor += a;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TerminalDay {
    pub sold: Count,
    pub paid: Count,
    /// Voided with a shop manager's authority.
    pub voided: Count,
    /// Cancelled by the issuing cashier inside the void window.
    pub cancelled: Count,
    pub pay_ins: Count,
    pub pay_outs: Count,
    pub drops: Count,
    pub floats: Count,
    pub cash_ups: u64,
    pub over_short_minor: i64,
}

/// A terminal's day from its journal; `closed` = (counted, expected) of each cash-up.
pub fn terminal_day(entries: &[Entry], closed: &[(i64, i64)]) -> TerminalDay {
    let mut d = TerminalDay::default();
    for e in entries {
        match e.kind.as_str() {
            "slip" => d.sold.add(e.amount_minor),
            "payout" => d.paid.add(e.amount_minor),
            "void" if e.detail.starts_with("cancelled") => d.cancelled.add(e.amount_minor),
            "void" => d.voided.add(e.amount_minor),
            "pay_in" => d.pay_ins.add(e.amount_minor),
            "pay_out" => d.pay_outs.add(e.amount_minor),
            "drop" => d.drops.add(e.amount_minor),
            "float" => d.floats.add(e.amount_minor),
            _ => {}
        }
    }
    d.cash_ups = closed.len() as u64;
    d.over_short_minor = closed.iter().map(|(c, x)| c - x).sum();
    d
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ShopTerminalDay {
    pub sold: Count,
    pub paid: Count,
    pub voided: Count,
    pub cancelled: Count,
}

/// The shop's day per terminal from the node's records (every till of the shop).
pub fn shop_day(edge_entries: &[Value]) -> BTreeMap<String, ShopTerminalDay> {
    let mut m: BTreeMap<String, ShopTerminalDay> = BTreeMap::new();
    for e in edge_entries {
        let t = m
            .entry(e["terminal_id"].as_str().unwrap_or("?").to_string())
            .or_default();
        let a = e["amount_minor"].as_i64().unwrap_or(0);
        match e["event"].as_str() {
            Some("issued") => t.sold.add(a),
            Some("paid") => t.paid.add(a),
            Some("voided") if e["authorised_by"].is_null() => t.cancelled.add(a),
            Some("voided") => t.voided.add(a),
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn e(kind: &str, t: Option<&str>, a: i64, d: i64, detail: &str) -> Entry {
        Entry {
            id: 0,
            at_ms: 0,
            staff_id: "ann".into(),
            kind: kind.into(),
            ticket_id: t.map(str::to_string),
            amount_minor: a,
            drawer_delta_minor: d,
            detail: detail.into(),
        }
    }

    #[test]
    fn reconcile_flags_every_difference() {
        let j = vec![
            e("slip", Some("A"), 500, 500, ""),
            e("slip", Some("B"), 700, 700, ""),
            e("payout", Some("C"), 900, -900, ""),
            e("pay_in", None, 100, 100, ""),
        ];
        let n = vec![
            json!({"ticket_id":"A","event":"issued","terminal_id":"t1","amount_minor":500}),
            json!({"ticket_id":"C","event":"paid","terminal_id":"t1","amount_minor":950}),
            json!({"ticket_id":"D","event":"voided","terminal_id":"t1","amount_minor":300}),
            json!({"ticket_id":"E","event":"issued","terminal_id":"t2","amount_minor":300}),
        ];
        let d = reconcile(&j, &n, "t1");
        let summary: Vec<(&str, &str, &str)> = d
            .iter()
            .map(|x| (x.ticket_id.as_str(), x.event.as_str(), x.problem))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("B", "issued", "in the till journal, not on the node's log"),
                ("C", "paid", "amounts differ"),
                ("D", "voided", "on the node's log, not in the till journal"),
            ]
        );
        assert_eq!(expected_drawer(&j), 500 + 700 - 900 + 100);
    }

    #[test]
    fn day_counts() {
        let j = vec![
            e("float", None, 10_000, 10_000, ""),
            e("slip", Some("A"), 500, 500, ""),
            e("void", Some("A"), 500, -500, "cancelled: misprint"),
            e(
                "void",
                Some("B"),
                200,
                -200,
                "voided by meg: event abandoned",
            ),
            e("drop", None, 5000, -5000, ""),
        ];
        let d = terminal_day(&j, &[(4_800, 4_800), (100, 110)]);
        assert_eq!(
            d.sold,
            Count {
                count: 1,
                amount_minor: 500
            }
        );
        assert_eq!(d.cancelled.count, 1);
        assert_eq!(d.voided.count, 1);
        assert_eq!(d.over_short_minor, -10);
    }
}
