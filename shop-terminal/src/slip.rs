//! The bet slip: one model, rendered as ESC/POS bytes for the printer and as HTML for the
//! screen, from the same list of lines, so a reprint and the screen show exactly what the
//! customer holds. A reprint is marked DUPLICATE.

use crate::amount::{fmt_minor, fmt_time};
use crate::code128;
use crate::escpos::{Align, EscPos};
use serde::{Deserialize, Serialize};

/// Characters per line on an 80 mm printer in font A.
pub const WIDTH: usize = 42;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlipLeg {
    pub event: String,
    pub market: String,
    pub selection: String,
    pub price: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slip {
    pub shop_id: String,
    pub shop_name: String,
    pub terminal_id: String,
    pub staff_id: String,
    pub node_id: String,
    pub ticket_id: String,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub currency: String,
    pub minor_digits: u32,
    /// "cash" or "account"
    pub holder: String,
    pub legs: Vec<SlipLeg>,
    pub stake_minor: i64,
    pub potential_minor: i64,
    pub record_seq: Option<u64>,
    pub record_hash: Option<String>,
    pub terms: String,
    /// Each-way bets: `stake_minor` is the total (both parts), `potential_minor` the return
    /// if every selection wins. Absent on older journal entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each_way: Option<SlipEachWay>,
}

/// The each-way part of a slip (from the edge's `ticket.each_way`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlipEachWay {
    pub unit_stake_minor: i64,
    /// Each leg's terms as printed, e.g. "1/5 odds, 3 places".
    pub terms: Vec<String>,
    /// Return if every selection is placed but does not win (the place part).
    pub if_placed_minor: i64,
}

impl SlipEachWay {
    /// From the edge's ticket view (`ticket.each_way`); `None` for a win-only bet.
    pub fn from_ticket(t: &serde_json::Value) -> Option<SlipEachWay> {
        let ew = t.get("each_way").filter(|v| v.is_object())?;
        Some(SlipEachWay {
            unit_stake_minor: ew["unit_stake_minor"].as_i64()?,
            terms: ew["terms"]
                .as_array()?
                .iter()
                .map(|t| {
                    format!(
                        "{}/{} odds, {} places",
                        t["fraction_num"], t["fraction_den"], t["places"]
                    )
                })
                .collect(),
            if_placed_minor: ew["if_placed_minor"].as_i64()?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Title,
    Bold,
    Normal,
}

pub enum Line {
    Text(Style, Align, String),
    Barcode(String),
    Rule,
}

fn two_col(left: &str, right: &str) -> String {
    let pad = WIDTH
        .saturating_sub(left.chars().count() + right.chars().count())
        .max(1);
    format!("{left}{}{right}", " ".repeat(pad))
}

/// Greedy word wrap to the slip width.
pub fn wrap(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    for w in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + w.len() > WIDTH {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(w);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

impl Slip {
    pub fn money(&self, minor: i64) -> String {
        format!("{} {}", self.currency, fmt_minor(minor, self.minor_digits))
    }

    pub fn lines(&self, duplicate: bool) -> Vec<Line> {
        use Style::*;
        let t = |s: Style, a: Align, x: String| Line::Text(s, a, x);
        let mut v = vec![
            t(Title, Align::Center, self.shop_name.clone()),
            t(
                Normal,
                Align::Center,
                format!("Shop {}  Terminal {}", self.shop_id, self.terminal_id),
            ),
        ];
        if duplicate {
            v.push(t(Bold, Align::Center, "*** DUPLICATE - REPRINT ***".into()));
        }
        v.push(Line::Rule);
        let kind = if self.legs.len() == 1 {
            "SINGLE".to_string()
        } else {
            format!("ACCUMULATOR ({} legs)", self.legs.len())
        };
        let kind = match &self.each_way {
            Some(_) => format!("E/W {kind}"),
            None => kind,
        };
        v.push(t(Bold, Align::Left, kind));
        for (i, l) in self.legs.iter().enumerate() {
            v.push(t(Normal, Align::Left, format!("{}. {}", i + 1, l.event)));
            v.push(t(
                Normal,
                Align::Left,
                two_col(
                    &format!("   {}: {}", l.market, l.selection),
                    &format!("@ {}", l.price),
                ),
            ));
            if let Some(terms) = self.each_way.as_ref().and_then(|e| e.terms.get(i)) {
                v.push(t(Normal, Align::Left, format!("   E/W terms {terms}")));
            }
        }
        v.push(Line::Rule);
        match &self.each_way {
            Some(ew) => {
                v.push(t(
                    Bold,
                    Align::Left,
                    two_col(
                        "Stake E/W",
                        &format!("{} x 2", self.money(ew.unit_stake_minor)),
                    ),
                ));
                v.push(t(
                    Bold,
                    Align::Left,
                    two_col("Total stake", &self.money(self.stake_minor)),
                ));
                v.push(t(
                    Bold,
                    Align::Left,
                    two_col("Return if won", &self.money(self.potential_minor)),
                ));
                v.push(t(
                    Bold,
                    Align::Left,
                    two_col("Return if placed", &self.money(ew.if_placed_minor)),
                ));
            }
            None => {
                v.push(t(
                    Bold,
                    Align::Left,
                    two_col("Stake", &self.money(self.stake_minor)),
                ));
                v.push(t(
                    Bold,
                    Align::Left,
                    two_col("Potential return", &self.money(self.potential_minor)),
                ));
            }
        }
        v.push(t(
            Normal,
            Align::Left,
            two_col(
                "Paid by",
                if self.holder == "cash" {
                    "Cash"
                } else {
                    "Player account"
                },
            ),
        ));
        v.push(Line::Rule);
        v.push(t(
            Normal,
            Align::Left,
            format!("Issued  {}", fmt_time(self.issued_at_ms)),
        ));
        v.push(t(
            Normal,
            Align::Left,
            format!("Claim by {}", fmt_time(self.expires_at_ms)),
        ));
        v.push(t(Normal, Align::Left, format!("Cashier {}", self.staff_id)));
        v.push(Line::Barcode(self.ticket_id.clone()));
        v.push(t(Bold, Align::Center, format!("Ticket {}", self.ticket_id)));
        v.push(t(
            Normal,
            Align::Left,
            format!(
                "Node {} record #{}",
                self.node_id,
                self.record_seq
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into())
            ),
        ));
        let hash = self
            .record_hash
            .clone()
            .unwrap_or_else(|| "unavailable".into());
        v.push(t(Normal, Align::Left, "Record SHA-256:".into()));
        for chunk in hash.as_bytes().chunks(32) {
            v.push(t(
                Normal,
                Align::Left,
                String::from_utf8_lossy(chunk).into_owned(),
            ));
        }
        v.push(Line::Rule);
        for w in wrap(&self.terms) {
            v.push(t(Normal, Align::Left, w));
        }
        v
    }

    pub fn escpos(&self, duplicate: bool) -> Vec<u8> {
        let mut p = EscPos::new();
        for l in self.lines(duplicate) {
            match l {
                Line::Text(style, align, text) => {
                    p.align(align);
                    match style {
                        Style::Title => p.bold(true).size(2, 2).line(&text).size(1, 1).bold(false),
                        Style::Bold => p.bold(true).line(&text).bold(false),
                        Style::Normal => p.line(&text),
                    };
                }
                Line::Rule => {
                    p.align(Align::Left).line(&"-".repeat(WIDTH));
                }
                Line::Barcode(d) => {
                    p.align(Align::Center).code128_digits(&d);
                }
            }
        }
        p.feed(4).cut();
        p.into_bytes()
    }

    /// The same slip for the screen: a receipt-shaped block with an SVG barcode.
    pub fn html(&self, duplicate: bool) -> String {
        let mut s = String::from("<div class=\"slip\" role=\"document\" aria-label=\"Bet slip\">");
        for l in self.lines(duplicate) {
            match l {
                Line::Text(style, align, text) => {
                    let cls = match style {
                        Style::Title => "t",
                        Style::Bold => "b",
                        Style::Normal => "n",
                    };
                    let al = match align {
                        Align::Left => "l",
                        Align::Center => "c",
                        Align::Right => "r",
                    };
                    s.push_str(&format!(
                        "<div class=\"{cls} {al}\">{}</div>",
                        crate::html::esc(&text)
                    ));
                }
                Line::Rule => s.push_str("<hr>"),
                Line::Barcode(d) => {
                    if let Ok(svg) = code128::svg(&d, 2, 70) {
                        s.push_str(&format!("<div class=\"c barcode\">{svg}</div>"));
                    }
                }
            }
        }
        s.push_str("</div>");
        s
    }
}
