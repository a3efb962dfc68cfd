//! The settlement side of the Sportradar Unified Odds Feed: `bet_settlement` (outcome results
//! with `void_factor` / `dead_heat_factor`) and `rollback_bet_settlement` (take a settlement
//! back). Deliberately small: it reads only what settling and unsettling a bet needs. The
//! full feed parser (odds, fixtures, market descriptions) is the odds feed's job.
//!
//! Message shapes (Sportradar UOF XSD, as in the real capture from `minus5/go-uof-sdk` and the
//! schema-complete samples of `efcasado/betradar_uof_schemas`):
//!
//! ```xml
//! <bet_settlement event_id="sr:match:1" product="3" certainty="2" timestamp="1547538073717">
//!   <outcomes>
//!     <market id="201" specifiers="…">
//!       <outcome id="864" result="0" void_factor="0.5"/>
//!       <outcome id="pre:outcometext:1" result="1" dead_heat_factor="0.5"/>
//!     </market>
//!   </outcomes>
//! </bet_settlement>
//! <rollback_bet_settlement event_id="sr:match:42" product="1" timestamp="…">
//!   <market id="1" specifiers="goalnr=1"/>
//! </rollback_bet_settlement>
//! ```
//!
//! Bad input is refused with the line it is on and nothing else is produced: a message is
//! applied whole or not at all.

use super::void_factor::{OutcomeSettlement, parse_unit_factor};
use crate::payout::Factor;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

/// Messages larger than this are refused (the largest real message is a few hundred KiB).
pub const MESSAGE_MAX: usize = 4 << 20;
const ID_MAX: usize = 200;

/// A market is identified by its id and specifiers (`total=2.5`), as in UOF.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MarketKey {
    pub id: u32,
    pub specifiers: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledOutcome {
    pub id: String,
    pub settlement: OutcomeSettlement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledMarket {
    pub key: MarketKey,
    pub void_reason: Option<u32>,
    pub outcomes: Vec<SettledOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BetSettlement {
    pub event_id: String,
    pub product: u32,
    /// 1 = settled from live scouting, 2 = confirmed (UOF).
    pub certainty: Option<u8>,
    pub timestamp_ms: i64,
    pub markets: Vec<SettledMarket>,
}

impl BetSettlement {
    /// The feed's settlement of one outcome, if this message settles it.
    pub fn outcome(&self, market: &MarketKey, outcome_id: &str) -> Option<&OutcomeSettlement> {
        self.markets
            .iter()
            .find(|m| &m.key == market)?
            .outcomes
            .iter()
            .find(|o| o.id == outcome_id)
            .map(|o| &o.settlement)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackBetSettlement {
    pub event_id: String,
    pub product: u32,
    pub timestamp_ms: i64,
    /// Markets whose settlement is taken back (every outcome of each).
    pub markets: Vec<MarketKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementMessage {
    Settle(BetSettlement),
    Rollback(RollbackBetSettlement),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct UofError {
    pub line: usize,
    pub message: String,
}

/// Parse one `bet_settlement` or `rollback_bet_settlement` message.
pub fn parse(xml: &str) -> Result<SettlementMessage, UofError> {
    if xml.len() > MESSAGE_MAX {
        return Err(UofError {
            line: 1,
            message: format!("message larger than {MESSAGE_MAX} bytes"),
        });
    }
    Parser::new(xml).run()
}

struct Parser<'a> {
    xml: &'a str,
    reader: Reader<&'a [u8]>,
}

enum Root {
    Settle(BetSettlement),
    Rollback(RollbackBetSettlement),
}

impl<'a> Parser<'a> {
    fn new(xml: &'a str) -> Self {
        Parser {
            xml,
            reader: Reader::from_str(xml),
        }
    }

    fn line_at(&self, pos: u64) -> usize {
        let pos = (pos as usize).min(self.xml.len());
        1 + self.xml.as_bytes()[..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn err(&self, message: impl Into<String>) -> UofError {
        UofError {
            line: self.line_at(self.reader.buffer_position()),
            message: message.into(),
        }
    }

    fn attrs(&self, e: &BytesStart<'_>) -> Result<Vec<(String, String)>, UofError> {
        let mut out = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|x| self.err(format!("bad attribute: {x}")))?;
            let key = std::str::from_utf8(a.key.as_ref())
                .map_err(|_| self.err("attribute name is not UTF-8"))?
                .to_string();
            let value = a
                .unescape_value()
                .map_err(|x| self.err(format!("bad value of {key}: {x}")))?
                .into_owned();
            out.push((key, value));
        }
        Ok(out)
    }

    fn get<'v>(attrs: &'v [(String, String)], key: &str) -> Option<&'v str> {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn req<'v>(
        &self,
        attrs: &'v [(String, String)],
        el: &str,
        key: &str,
    ) -> Result<&'v str, UofError> {
        Self::get(attrs, key).ok_or_else(|| self.err(format!("<{el}> has no {key} attribute")))
    }

    fn num<T: std::str::FromStr>(&self, v: &str, what: &str) -> Result<T, UofError> {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(format!("{what} {v:?} is not a non-negative integer")));
        }
        v.parse()
            .map_err(|_| self.err(format!("{what} {v:?} is out of range")))
    }

    fn text_id(&self, v: &str, what: &str) -> Result<String, UofError> {
        if v.is_empty() || v.len() > ID_MAX || v.chars().any(char::is_control) {
            return Err(self.err(format!("{what} must be 1 to {ID_MAX} printable characters")));
        }
        Ok(v.to_string())
    }

    fn market_key(&self, attrs: &[(String, String)]) -> Result<MarketKey, UofError> {
        Ok(MarketKey {
            id: self.num(self.req(attrs, "market", "id")?, "market id")?,
            specifiers: match Self::get(attrs, "specifiers") {
                Some(s) if s.len() > ID_MAX => return Err(self.err("specifiers too long")),
                Some(s) => s.to_string(),
                None => String::new(),
            },
        })
    }

    fn factor(
        &self,
        attrs: &[(String, String)],
        key: &str,
        default: Factor,
    ) -> Result<Factor, UofError> {
        match Self::get(attrs, key) {
            None => Ok(default),
            Some(v) => parse_unit_factor(v).map_err(|e| self.err(format!("{key}: {e}"))),
        }
    }

    fn run(mut self) -> Result<SettlementMessage, UofError> {
        let mut root: Option<Root> = None;
        let mut depth = 0usize;
        let mut closed = false;
        // A <market> of a bet_settlement is open: its <outcome>s follow.
        let mut open_market = false;
        loop {
            let ev = self
                .reader
                .read_event()
                .map_err(|e| self.err(format!("malformed XML: {e}")))?;
            let (e, is_start) = match ev {
                Event::Eof => break,
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => continue,
                Event::Text(t) => {
                    if !t.iter().all(|b| b.is_ascii_whitespace()) {
                        return Err(self.err("unexpected text"));
                    }
                    continue;
                }
                Event::CData(_) | Event::GeneralRef(_) => {
                    return Err(self.err("unexpected content"));
                }
                Event::End(e) => {
                    depth = depth.saturating_sub(1);
                    if e.name().as_ref() == b"market" {
                        open_market = false;
                    }
                    if depth == 0 {
                        closed = true;
                    }
                    continue;
                }
                Event::Start(e) => (e, true),
                Event::Empty(e) => (e, false),
            };
            if closed {
                return Err(self.err("content after the root element"));
            }
            let attrs = self.attrs(&e)?;
            self.element(
                &mut root,
                e.name().as_ref(),
                &attrs,
                is_start,
                &mut open_market,
            )?;
            if is_start {
                depth += 1;
            } else if depth == 0 {
                closed = true;
            }
        }
        match root {
            None => Err(UofError {
                line: 1,
                message: "no message element".into(),
            }),
            Some(_) if !closed => Err(self.err("message is truncated")),
            Some(Root::Settle(s)) if s.markets.is_empty() => {
                Err(self.err("bet_settlement settles no market"))
            }
            Some(Root::Settle(s)) => Ok(SettlementMessage::Settle(s)),
            Some(Root::Rollback(r)) => Ok(SettlementMessage::Rollback(r)),
        }
    }

    fn element(
        &self,
        root: &mut Option<Root>,
        name: &[u8],
        attrs: &[(String, String)],
        is_start: bool,
        open_market: &mut bool,
    ) -> Result<(), UofError> {
        match (root.as_mut(), name) {
            (None, b"bet_settlement") => {
                let el = "bet_settlement";
                *root = Some(Root::Settle(BetSettlement {
                    event_id: self.text_id(self.req(attrs, el, "event_id")?, "event_id")?,
                    product: self.num(self.req(attrs, el, "product")?, "product")?,
                    certainty: Self::get(attrs, "certainty")
                        .map(|v| self.num(v, "certainty"))
                        .transpose()?,
                    timestamp_ms: self.num(self.req(attrs, el, "timestamp")?, "timestamp")?,
                    markets: Vec::new(),
                }));
            }
            (None, b"rollback_bet_settlement") => {
                let el = "rollback_bet_settlement";
                *root = Some(Root::Rollback(RollbackBetSettlement {
                    event_id: self.text_id(self.req(attrs, el, "event_id")?, "event_id")?,
                    product: self.num(self.req(attrs, el, "product")?, "product")?,
                    timestamp_ms: self.num(self.req(attrs, el, "timestamp")?, "timestamp")?,
                    markets: Vec::new(),
                }));
            }
            (None, other) => {
                return Err(self.err(format!(
                    "expected <bet_settlement> or <rollback_bet_settlement>, found <{}>",
                    String::from_utf8_lossy(other)
                )));
            }
            (Some(Root::Settle(_)), b"outcomes") => {}
            (Some(Root::Settle(s)), b"market") => {
                let key = self.market_key(attrs)?;
                if s.markets.iter().any(|m| m.key == key) {
                    return Err(self.err(format!(
                        "market {} {:?} appears twice",
                        key.id, key.specifiers
                    )));
                }
                let void_reason = Self::get(attrs, "void_reason")
                    .map(|v| self.num(v, "void_reason"))
                    .transpose()?;
                s.markets.push(SettledMarket {
                    key,
                    void_reason,
                    outcomes: Vec::new(),
                });
                *open_market = is_start;
            }
            (Some(Root::Settle(s)), b"outcome") => {
                let Some(m) = s.markets.last_mut().filter(|_| *open_market) else {
                    return Err(self.err("<outcome> outside a <market>"));
                };
                let id = self.text_id(self.req(attrs, "outcome", "id")?, "outcome id")?;
                if m.outcomes.iter().any(|o| o.id == id) {
                    return Err(self.err(format!("outcome {id} appears twice")));
                }
                let won = match self.req(attrs, "outcome", "result")? {
                    "1" => true,
                    "0" => false,
                    v => return Err(self.err(format!("result {v:?} is not 0 or 1"))),
                };
                let settlement = OutcomeSettlement {
                    won,
                    void_factor: self.factor(attrs, "void_factor", Factor::ZERO)?,
                    dead_heat_factor: self.factor(attrs, "dead_heat_factor", Factor::ONE)?,
                };
                if settlement.dead_heat_factor == Factor::ZERO {
                    return Err(self.err("dead_heat_factor 0 would make a winner a loser"));
                }
                m.outcomes.push(SettledOutcome { id, settlement });
            }
            (Some(Root::Rollback(r)), b"market") => {
                let key = self.market_key(attrs)?;
                if !r.markets.contains(&key) {
                    r.markets.push(key);
                }
            }
            // A rollback may list outcomes of the market; the market is rolled back whole.
            (Some(Root::Rollback(_)), b"outcome") => {}
            (Some(_), other) => {
                return Err(self.err(format!(
                    "unexpected element <{}>",
                    String::from_utf8_lossy(other)
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payout::payout_minor;
    use crate::price::Price;

    const REAL: &str = include_str!("../../../fixtures/uof/settlement/bet_settlement.xml");
    const ROLLBACK: &str =
        include_str!("../../../fixtures/uof/settlement/rollback_bet_settlement.xml");

    fn key(id: u32, spec: &str) -> MarketKey {
        MarketKey {
            id,
            specifiers: spec.into(),
        }
    }

    /// The real capture (go-uof-sdk): results, half and full voids, a dead heat of two joint
    /// winners, settled on £10 bets at 3.00 (pence).
    #[test]
    fn settles_bets_from_the_real_bet_settlement() {
        let SettlementMessage::Settle(m) = parse(REAL).unwrap() else {
            panic!("expected a bet_settlement");
        };
        assert_eq!(
            (m.event_id.as_str(), m.product, m.certainty, m.timestamp_ms),
            ("sr:match:16807109", 3, Some(2), 1_547_538_073_717)
        );
        assert_eq!(m.markets.len(), 5);
        let price = Price::parse("3.0").unwrap();
        let pay = |market: &MarketKey, outcome: &str| {
            let s = m.outcome(market, outcome).expect("outcome settled");
            payout_minor(1000, &[s.factor(price).unwrap()]).unwrap()
        };
        let table = [
            (key(193, ""), "76", 3000),                  // won
            (key(193, ""), "74", 0),                     // lost
            (key(204, "setnr=1|total=9.5"), "13", 3000), // won, with specifiers
            (key(201, ""), "863", 1000),                 // void_factor 1: refunded
            (key(201, ""), "864", 500),                  // lost, half void
            (key(201, ""), "861", 2000),                 // won, half void
            (key(201, ""), "862", 0),
            (
                key(535, "variant=pre:markettext:52751"),
                "pre:outcometext:6388892",
                1500,
            ), // dead heat ½
            (
                key(535, "variant=pre:markettext:52751"),
                "pre:outcometext:6408970",
                1500,
            ),
            (
                key(535, "variant=pre:markettext:52751"),
                "pre:outcometext:30101",
                0,
            ),
            (key(40, "type=live"), "sr:player:249437", 3000),
        ];
        for (k, outcome, paid) in table {
            assert_eq!(pay(&k, outcome), paid, "{k:?} {outcome}");
        }
        assert!(m.outcome(&key(193, "x=1"), "76").is_none());
    }

    #[test]
    fn parses_rollback() {
        let SettlementMessage::Rollback(r) = parse(ROLLBACK).unwrap() else {
            panic!("expected a rollback");
        };
        assert_eq!(r.event_id, "sr:match:42");
        assert_eq!(r.markets, vec![key(1, "goalnr=1")]);
    }

    /// Malformed messages are refused with the line of the problem.
    #[test]
    fn bad_messages_name_the_line() {
        let ok_head = "<bet_settlement event_id=\"sr:match:1\" product=\"1\" timestamp=\"5\">\n<outcomes>\n<market id=\"1\">\n";
        let tail = "</market>\n</outcomes>\n</bet_settlement>";
        let cases = [
            (
                format!("{ok_head}<outcome id=\"1\" result=\"2\"/>\n{tail}"),
                4,
            ),
            (
                format!("{ok_head}<outcome id=\"1\" result=\"1\" void_factor=\"1.5\"/>\n{tail}"),
                4,
            ),
            (
                format!("{ok_head}<outcome id=\"1\" result=\"1\" dead_heat_factor=\"0\"/>\n{tail}"),
                4,
            ),
            (format!("{ok_head}<outcome result=\"1\"/>\n{tail}"), 4),
            (
                format!(
                    "{ok_head}<outcome id=\"1\" result=\"1\"/>\n<outcome id=\"1\" result=\"0\"/>\n{tail}"
                ),
                5,
            ),
            (format!("{ok_head}<outcome id=\"1\" result=\"1\">\n"), 5),
            (format!("{ok_head}<odds/>\n{tail}"), 4),
            ("<bet_stop event_id=\"x\"/>".to_string(), 1),
            (
                "<bet_settlement event_id=\"x\" product=\"1\" timestamp=\"-1\"/>".to_string(),
                1,
            ),
            (
                "\n\n<bet_settlement event_id=\"x\" product=\"1\" timestamp=\"1\"><x".to_string(),
                3,
            ),
            ("".to_string(), 1),
        ];
        for (xml, line) in cases {
            let e = parse(&xml).expect_err(&xml);
            assert_eq!(e.line, line, "{xml}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse(&s);
        }
    }
}
