//! Parser for Sportradar Unified Odds Feed (UOF) messages (XML over AMQP in production; here
//! just the message body). Handles `odds_change`, `bet_stop`, `bet_settlement`, `bet_cancel`,
//! `rollback_bet_settlement`, `rollback_bet_cancel`, `fixture_change`, `alive` and
//! `snapshot_complete`.
//!
//! Only what the book needs is kept; unknown elements and attributes are skipped so that a
//! schema extension by the provider does not stop the feed. Missing required attributes,
//! malformed numbers and malformed XML are typed errors, never panics. Odds become exact
//! thousandths (rounded down); probabilities stay `f64` because they are statistics, not money.

use super::decimal::parse_milli_floor;
use crate::time::UnixMillis;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Messages larger than this are refused before parsing (a full odds_change for a big match
/// is tens of KiB; this bounds memory for hostile input).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UofError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed XML at byte {position}: {detail}")]
    Xml { position: u64, detail: String },
    #[error("no root element")]
    Empty,
    #[error("unknown message type <{0}>")]
    UnknownMessage(String),
    #[error("<{element}> lacks required attribute {attribute}")]
    Missing {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("<{element}> attribute {attribute} has invalid value {value:?}")]
    Invalid {
        element: &'static str,
        attribute: &'static str,
        value: String,
    },
}

/// UOF producer id (1 = LO live odds, 3 = Ctrl pre-match, …).
pub type ProducerId = u32;

/// Market status in `odds_change` (UOF: 1 active, 0 inactive, -1 suspended, -2 handed over,
/// -3 settled, -4 cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UofMarketStatus {
    Active,
    Inactive,
    Suspended,
    HandedOver,
    Settled,
    Cancelled,
}

impl UofMarketStatus {
    fn from_code(c: i32) -> Option<Self> {
        Some(match c {
            1 => Self::Active,
            0 => Self::Inactive,
            -1 => Self::Suspended,
            -2 => Self::HandedOver,
            -3 => Self::Settled,
            -4 => Self::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UofOutcome {
    pub id: String,
    /// Odds in thousandths, rounded down; not yet validated as a price (may be ≤ 1000).
    pub odds_milli: Option<u64>,
    pub probability: Option<f64>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UofMarket {
    pub id: u32,
    pub specifiers: String,
    /// Absent on `odds_change` means active (UOF default).
    pub status: UofMarketStatus,
    pub outcomes: Vec<UofOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UofScore {
    /// `sport_event_status/@status`: 0 not started, 1 live, 2 suspended, 3 ended, 4 closed…
    pub status: i32,
    pub home_score: Option<u16>,
    pub away_score: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettledOutcome {
    pub id: String,
    pub won: bool,
    /// Fraction of the stake refunded, as thousandths (0.5 → 500).
    pub void_factor_milli: u64,
    /// Dead-heat factor as thousandths (0.5 → 500); 1000 when absent.
    pub dead_heat_factor_milli: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettledMarket {
    pub id: u32,
    pub specifiers: String,
    pub void_reason: Option<u32>,
    pub outcomes: Vec<SettledOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketRef {
    pub id: u32,
    pub specifiers: String,
    pub void_reason: Option<u32>,
}

/// Fields every event-scoped message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub product: ProducerId,
    pub event_id: String,
    pub timestamp: UnixMillis,
    pub request_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UofMessage {
    OddsChange {
        header: Header,
        status: Option<UofScore>,
        markets: Vec<UofMarket>,
    },
    BetStop {
        header: Header,
        groups: String,
    },
    BetSettlement {
        header: Header,
        certainty: Option<u8>,
        markets: Vec<SettledMarket>,
    },
    BetCancel {
        header: Header,
        start_time: Option<UnixMillis>,
        end_time: Option<UnixMillis>,
        markets: Vec<MarketRef>,
    },
    RollbackBetSettlement {
        header: Header,
        markets: Vec<MarketRef>,
    },
    RollbackBetCancel {
        header: Header,
        markets: Vec<MarketRef>,
    },
    FixtureChange {
        header: Header,
        change_type: Option<u32>,
        start_time: Option<UnixMillis>,
    },
    Alive {
        product: ProducerId,
        timestamp: UnixMillis,
        subscribed: bool,
    },
    SnapshotComplete {
        product: ProducerId,
        timestamp: UnixMillis,
        request_id: Option<u64>,
    },
}

impl UofMessage {
    pub fn product(&self) -> ProducerId {
        match self {
            UofMessage::Alive { product, .. } | UofMessage::SnapshotComplete { product, .. } => {
                *product
            }
            UofMessage::OddsChange { header, .. }
            | UofMessage::BetStop { header, .. }
            | UofMessage::BetSettlement { header, .. }
            | UofMessage::BetCancel { header, .. }
            | UofMessage::RollbackBetSettlement { header, .. }
            | UofMessage::RollbackBetCancel { header, .. }
            | UofMessage::FixtureChange { header, .. } => header.product,
        }
    }
    pub fn timestamp(&self) -> UnixMillis {
        match self {
            UofMessage::Alive { timestamp, .. }
            | UofMessage::SnapshotComplete { timestamp, .. } => *timestamp,
            UofMessage::OddsChange { header, .. }
            | UofMessage::BetStop { header, .. }
            | UofMessage::BetSettlement { header, .. }
            | UofMessage::BetCancel { header, .. }
            | UofMessage::RollbackBetSettlement { header, .. }
            | UofMessage::RollbackBetCancel { header, .. }
            | UofMessage::FixtureChange { header, .. } => header.timestamp,
        }
    }
    pub fn type_name(&self) -> &'static str {
        match self {
            UofMessage::OddsChange { .. } => "odds_change",
            UofMessage::BetStop { .. } => "bet_stop",
            UofMessage::BetSettlement { .. } => "bet_settlement",
            UofMessage::BetCancel { .. } => "bet_cancel",
            UofMessage::RollbackBetSettlement { .. } => "rollback_bet_settlement",
            UofMessage::RollbackBetCancel { .. } => "rollback_bet_cancel",
            UofMessage::FixtureChange { .. } => "fixture_change",
            UofMessage::Alive { .. } => "alive",
            UofMessage::SnapshotComplete { .. } => "snapshot_complete",
        }
    }
}

/// The attributes of one element, decoded to text.
struct Attrs<'a> {
    element: &'static str,
    list: Vec<(&'a [u8], Cow<'a, str>)>,
}

impl<'a> Attrs<'a> {
    fn read(element: &'static str, e: &'a BytesStart<'a>) -> Result<Attrs<'a>, UofError> {
        let xml = |detail: &str| UofError::Xml {
            position: 0,
            detail: format!("<{element}>: {detail}"),
        };
        let mut list = Vec::with_capacity(8);
        // A strict scanner for `name="value"` / `name='value'` pairs, several times faster than
        // quick-xml's general attribute iterator (which dominated parse profiles). Duplicates
        // are not diagnosed: the first occurrence wins.
        let b = e.attributes_raw();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < b.len() && b[*i].is_ascii_whitespace() {
                *i += 1;
            }
        };
        loop {
            skip_ws(&mut i);
            if i >= b.len() {
                break;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
                i += 1;
            }
            let key = &b[start..i];
            if key.is_empty()
                || key
                    .iter()
                    .any(|c| matches!(c, b'"' | b'\'' | b'<' | b'>' | b'/'))
            {
                return Err(xml("malformed attribute name"));
            }
            skip_ws(&mut i);
            if b.get(i) != Some(&b'=') {
                return Err(xml("attribute without a value"));
            }
            i += 1;
            skip_ws(&mut i);
            let q = match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => q,
                _ => return Err(xml("attribute value not quoted")),
            };
            i += 1;
            let Some(len) = b[i..].iter().position(|c| *c == q) else {
                return Err(xml("unterminated attribute value"));
            };
            let raw = &b[i..i + len];
            i += len + 1;
            if i < b.len() && !b[i].is_ascii_whitespace() {
                return Err(xml("attributes must be separated by whitespace"));
            }
            if raw.contains(&b'<') {
                return Err(xml("'<' in an attribute value"));
            }
            let text = std::str::from_utf8(raw).map_err(|_| xml("attribute value is not UTF-8"))?;
            let text = if text.contains('&') {
                Cow::Owned(
                    quick_xml::escape::unescape(text)
                        .map_err(|err| xml(&err.to_string()))?
                        .into_owned(),
                )
            } else {
                Cow::Borrowed(text)
            };
            list.push((key, text));
        }
        Ok(Attrs { element, list })
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.list
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    }
    fn req(&self, name: &'static str) -> Result<&str, UofError> {
        self.get(name).ok_or(UofError::Missing {
            element: self.element,
            attribute: name,
        })
    }
    fn invalid(&self, attribute: &'static str, value: &str) -> UofError {
        UofError::Invalid {
            element: self.element,
            attribute,
            value: value.chars().take(64).collect(),
        }
    }
    fn num<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, UofError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<T>()
                .map(Some)
                .map_err(|_| self.invalid(name, v)),
        }
    }
    fn req_num<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, UofError> {
        let v = self.req(name)?;
        v.trim().parse::<T>().map_err(|_| self.invalid(name, v))
    }
    fn millis(&self, name: &'static str) -> Result<Option<UnixMillis>, UofError> {
        Ok(self.num::<i64>(name)?.map(UnixMillis))
    }
    fn milli_factor(&self, name: &'static str, default: u64) -> Result<u64, UofError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match parse_milli_floor(v) {
                Some(m) if m <= 1000 => Ok(m),
                _ => Err(self.invalid(name, v)),
            },
        }
    }
    fn header(&self) -> Result<Header, UofError> {
        Ok(Header {
            // Some captured messages (rollback_bet_cancel) omit the product; 0 = unknown.
            product: self.num("product")?.unwrap_or(0),
            event_id: id_text(self, "event_id")?,
            timestamp: UnixMillis(self.req_num("timestamp")?),
            request_id: self.num("request_id")?,
        })
    }
}

fn id_text(a: &Attrs<'_>, name: &'static str) -> Result<String, UofError> {
    let v = a.req(name)?;
    if v.is_empty() || v.len() > 128 {
        return Err(a.invalid(name, v));
    }
    Ok(v.to_string())
}

fn xml_err(r: &Reader<&[u8]>, e: quick_xml::Error) -> UofError {
    UofError::Xml {
        position: r.buffer_position(),
        detail: e.to_string(),
    }
}

fn static_name(name: &[u8]) -> &'static str {
    match name {
        b"odds_change" => "odds_change",
        b"bet_stop" => "bet_stop",
        b"bet_settlement" => "bet_settlement",
        b"bet_cancel" => "bet_cancel",
        b"rollback_bet_settlement" => "rollback_bet_settlement",
        b"rollback_bet_cancel" => "rollback_bet_cancel",
        b"fixture_change" => "fixture_change",
        b"alive" => "alive",
        b"snapshot_complete" => "snapshot_complete",
        b"market" => "market",
        b"outcome" => "outcome",
        b"sport_event_status" => "sport_event_status",
        _ => "element",
    }
}

/// Parse one UOF message body.
pub fn parse(xml: &[u8]) -> Result<UofMessage, UofError> {
    if xml.len() > MAX_MESSAGE_BYTES {
        return Err(UofError::TooLarge(xml.len()));
    }
    let mut r = Reader::from_reader(xml);
    r.config_mut().check_end_names = true;
    r.config_mut().trim_text(true);
    // Find the root element.
    let (root, root_empty) = loop {
        match r.read_event().map_err(|e| xml_err(&r, e))? {
            Event::Start(e) => break (e, false),
            Event::Empty(e) => break (e, true),
            Event::Eof => return Err(UofError::Empty),
            Event::Text(t) if !t.iter().all(|b| b.is_ascii_whitespace()) => {
                return Err(UofError::Xml {
                    position: r.buffer_position(),
                    detail: "text before the root element".into(),
                });
            }
            _ => {}
        }
    };
    let name = root.name().as_ref().to_vec();
    let el = static_name(&name);
    let a = Attrs::read(el, &root)?;
    let mut body = Body::default();
    if !root_empty {
        read_body(&mut r, &mut body)?;
    }
    // Nothing but whitespace/comments may follow the root.
    loop {
        match r.read_event().map_err(|e| xml_err(&r, e))? {
            Event::Eof => break,
            Event::Start(_) | Event::Empty(_) => {
                return Err(UofError::Xml {
                    position: r.buffer_position(),
                    detail: "more than one root element".into(),
                });
            }
            _ => {}
        }
    }
    Ok(match name.as_slice() {
        b"odds_change" => UofMessage::OddsChange {
            header: a.header()?,
            status: body.status,
            markets: body.markets,
        },
        b"bet_stop" => UofMessage::BetStop {
            header: a.header()?,
            groups: a.get("groups").unwrap_or("all").to_string(),
        },
        b"bet_settlement" => UofMessage::BetSettlement {
            header: a.header()?,
            certainty: a.num("certainty")?,
            markets: body.settled,
        },
        b"bet_cancel" => UofMessage::BetCancel {
            header: a.header()?,
            start_time: a.millis("start_time")?,
            end_time: a.millis("end_time")?,
            markets: body.refs,
        },
        b"rollback_bet_settlement" => UofMessage::RollbackBetSettlement {
            header: a.header()?,
            markets: body.refs,
        },
        b"rollback_bet_cancel" => UofMessage::RollbackBetCancel {
            header: a.header()?,
            markets: body.refs,
        },
        b"fixture_change" => UofMessage::FixtureChange {
            header: a.header()?,
            change_type: a.num("change_type")?,
            start_time: a.millis("start_time")?,
        },
        b"alive" => UofMessage::Alive {
            product: a.req_num("product")?,
            timestamp: UnixMillis(a.req_num("timestamp")?),
            subscribed: a.get("subscribed") != Some("0"),
        },
        b"snapshot_complete" => UofMessage::SnapshotComplete {
            product: a.req_num("product")?,
            timestamp: UnixMillis(a.req_num("timestamp")?),
            request_id: a.num("request_id")?,
        },
        other => {
            return Err(UofError::UnknownMessage(
                String::from_utf8_lossy(other).chars().take(64).collect(),
            ));
        }
    })
}

#[derive(Default)]
struct Body {
    status: Option<UofScore>,
    /// odds_change markets.
    markets: Vec<UofMarket>,
    /// bet_settlement markets (with results).
    settled: Vec<SettledMarket>,
    /// cancel / rollback markets (references only).
    refs: Vec<MarketRef>,
}

/// Where a `<market>` sits decides how it is read: under `<odds>` it carries prices, under
/// `<outcomes>` results, directly under the root it is a reference.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    Odds,
    Outcomes,
    Other,
}

fn read_body(r: &mut Reader<&[u8]>, body: &mut Body) -> Result<(), UofError> {
    // Stack of open elements below the root, as contexts.
    // Each entry: the context children of that element are read in, and whether it is a market.
    let mut stack: Vec<(Ctx, bool)> = Vec::with_capacity(8);
    let mut market_kind: Option<Ctx> = None;
    loop {
        let ev = r.read_event().map_err(|e| xml_err(r, e))?;
        let (e, empty) = match ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                match stack.pop() {
                    None => return Ok(()), // the root's end
                    Some((_, true)) => market_kind = None,
                    Some((_, false)) => {}
                }
                continue;
            }
            Event::Eof => {
                return Err(UofError::Xml {
                    position: r.buffer_position(),
                    detail: "unexpected end of document".into(),
                });
            }
            _ => continue,
        };
        let parent = stack.last().map(|(c, _)| *c).unwrap_or(Ctx::Root);
        let mut is_market = false;
        let ctx = match e.name().as_ref() {
            b"odds" if parent == Ctx::Root => Ctx::Odds,
            b"outcomes" if parent == Ctx::Root => Ctx::Outcomes,
            b"sport_event_status" if parent == Ctx::Root => {
                let a = Attrs::read("sport_event_status", &e)?;
                body.status = Some(UofScore {
                    status: a.num("status")?.unwrap_or(0),
                    home_score: a.num("home_score")?,
                    away_score: a.num("away_score")?,
                });
                Ctx::Other
            }
            b"market" if matches!(parent, Ctx::Root | Ctx::Odds | Ctx::Outcomes) => {
                let a = Attrs::read("market", &e)?;
                let id: u32 = a.req_num("id")?;
                let specifiers = a.get("specifiers").unwrap_or("").to_string();
                match parent {
                    Ctx::Odds => {
                        let code: i32 = a.num("status")?.unwrap_or(1);
                        let status = UofMarketStatus::from_code(code)
                            .ok_or_else(|| a.invalid("status", &code.to_string()))?;
                        body.markets.push(UofMarket {
                            id,
                            specifiers,
                            status,
                            outcomes: Vec::new(),
                        });
                    }
                    Ctx::Outcomes => body.settled.push(SettledMarket {
                        id,
                        specifiers,
                        void_reason: a.num("void_reason")?,
                        outcomes: Vec::new(),
                    }),
                    _ => body.refs.push(MarketRef {
                        id,
                        specifiers,
                        void_reason: a.num("void_reason")?,
                    }),
                }
                if !empty {
                    market_kind = Some(parent);
                    is_market = true;
                }
                // Market children are read with the market as parent.
                match parent {
                    Ctx::Odds => Ctx::Odds,
                    Ctx::Outcomes => Ctx::Outcomes,
                    _ => Ctx::Other,
                }
            }
            b"outcome" if market_kind.is_some() => {
                let a = Attrs::read("outcome", &e)?;
                let id = id_text(&a, "id")?;
                match market_kind {
                    Some(Ctx::Odds) => {
                        let odds_milli = match a.get("odds") {
                            None => None,
                            Some(v) => {
                                Some(parse_milli_floor(v).ok_or_else(|| a.invalid("odds", v))?)
                            }
                        };
                        let probability = match a.get("probabilities") {
                            None => None,
                            Some(v) => match v.trim().parse::<f64>() {
                                Ok(p) if p.is_finite() && (0.0..=1.0).contains(&p) => Some(p),
                                _ => return Err(a.invalid("probabilities", v)),
                            },
                        };
                        let active = a.get("active").map(|v| v != "0").unwrap_or(true);
                        if let Some(m) = body.markets.last_mut() {
                            m.outcomes.push(UofOutcome {
                                id,
                                odds_milli,
                                probability,
                                active,
                            });
                        }
                    }
                    Some(Ctx::Outcomes) => {
                        let result: u8 = a.num("result")?.unwrap_or(0);
                        if result > 1 {
                            return Err(a.invalid("result", &result.to_string()));
                        }
                        let o = SettledOutcome {
                            id,
                            won: result == 1,
                            void_factor_milli: a.milli_factor("void_factor", 0)?,
                            dead_heat_factor_milli: a.milli_factor("dead_heat_factor", 1000)?,
                        };
                        if let Some(m) = body.settled.last_mut() {
                            m.outcomes.push(o);
                        }
                    }
                    // Outcomes inside cancel/rollback markets narrow the scope; the book treats
                    // the whole market, which is the conservative reading.
                    _ => {}
                }
                Ctx::Other
            }
            _ => Ctx::Other,
        };
        if !empty {
            stack.push((ctx, is_market));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<u8> {
        let p = format!("{}/../fixtures/uof/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn real_odds_change() {
        let m = parse(&fixture("go-uof-sdk/odds_change-0.xml")).unwrap();
        let UofMessage::OddsChange {
            header,
            status,
            markets,
        } = m
        else {
            panic!("not odds_change")
        };
        assert_eq!(header.event_id, "sr:match:123");
        assert_eq!(header.product, 2);
        assert_eq!(header.timestamp, UnixMillis(1234));
        let st = status.unwrap();
        assert_eq!(
            (st.status, st.home_score, st.away_score),
            (1, Some(2), Some(2))
        );
        assert_eq!(markets[0].id, 47);
        assert_eq!(markets[0].specifiers, "score=41.5");
        assert_eq!(markets[0].status, UofMarketStatus::Active);
        assert_eq!(markets[0].outcomes[1].odds_milli, Some(1920));
        assert_eq!(markets[2].status, UofMarketStatus::Inactive);
        assert!(markets[2].outcomes.is_empty());
        assert_eq!(markets[3].status, UofMarketStatus::Suspended);
        assert!(!markets[4].outcomes[1].active);
        assert_eq!(markets[5].outcomes[0].odds_milli, Some(200_000));
        assert!((markets[5].outcomes[0].probability.unwrap() - 8.97094e-4).abs() < 1e-15);
    }

    #[test]
    fn every_schema_sample_parses() {
        let cases = [
            ("alive.xml", "alive"),
            ("bet_cancel.xml", "bet_cancel"),
            ("bet_settlement.xml", "bet_settlement"),
            ("bet_stop.xml", "bet_stop"),
            ("fixture_change.xml", "fixture_change"),
            ("odds_change.xml", "odds_change"),
            ("rollback_bet_cancel.xml", "rollback_bet_cancel"),
            ("rollback_bet_settlement.xml", "rollback_bet_settlement"),
            ("snapshot_complete.xml", "snapshot_complete"),
        ];
        for (file, ty) in cases {
            let m = parse(&fixture(&format!("schema-samples/{file}")))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(m.type_name(), ty, "{file}");
        }
        let UofMessage::OddsChange { markets, .. } =
            parse(&fixture("schema-samples/odds_change.xml")).unwrap()
        else {
            panic!()
        };
        assert_eq!(markets.len(), 1);
        assert_eq!(
            markets[0]
                .outcomes
                .iter()
                .map(|o| o.odds_milli.unwrap())
                .collect::<Vec<_>>(),
            vec![2250, 3550, 3100]
        );
    }

    #[test]
    fn real_settlement_void_and_dead_heat() {
        let UofMessage::BetSettlement {
            header,
            certainty,
            markets,
        } = parse(&fixture("go-uof-sdk/bet_settlement.xml")).unwrap()
        else {
            panic!()
        };
        assert_eq!(header.event_id, "sr:match:16807109");
        assert_eq!(certainty, Some(2));
        let m201 = markets.iter().find(|m| m.id == 201).unwrap();
        assert_eq!(m201.outcomes[0].void_factor_milli, 1000);
        assert_eq!(m201.outcomes[1].void_factor_milli, 500);
        assert!(m201.outcomes[2].won);
        let m535 = markets.iter().find(|m| m.id == 535).unwrap();
        assert_eq!(m535.specifiers, "variant=pre:markettext:52751");
        assert_eq!(m535.outcomes[0].dead_heat_factor_milli, 500);
        assert_eq!(m535.outcomes[2].dead_heat_factor_milli, 1000);
    }

    #[test]
    fn real_cancel_and_rollback() {
        let UofMessage::BetCancel {
            start_time,
            end_time,
            markets,
            ..
        } = parse(&fixture("go-uof-sdk/bet_cancel.xml")).unwrap()
        else {
            panic!()
        };
        assert_eq!(start_time, Some(UnixMillis(1564597838000)));
        assert_eq!(end_time, Some(UnixMillis(1564598513000)));
        assert_eq!(markets[0].id, 62);
        assert_eq!(markets[0].void_reason, Some(12));
        let UofMessage::RollbackBetCancel { header, markets } =
            parse(&fixture("go-uof-sdk/rollback_bet_cancel.xml")).unwrap()
        else {
            panic!()
        };
        assert_eq!(header.product, 0);
        assert_eq!(markets[0].specifiers, "score=41.5");
    }

    #[test]
    fn attribute_forms() {
        let m = parse(b"<alive  product = '3'\ttimestamp=\"12\"\n subscribed='0' />").unwrap();
        assert_eq!(
            m,
            UofMessage::Alive {
                product: 3,
                timestamp: UnixMillis(12),
                subscribed: false
            }
        );
        let m = parse(b"<bet_stop product=\"1\" event_id=\"sr:match:1&amp;2\" timestamp=\"5\"/>")
            .unwrap();
        let UofMessage::BetStop { header, .. } = m else {
            panic!()
        };
        assert_eq!(header.event_id, "sr:match:1&2");
    }

    #[test]
    fn vhc_odds_change_parses() {
        let m = parse(&fixture("go-uof-sdk/odds_change-vhc.xml")).unwrap();
        assert_eq!(m.type_name(), "odds_change");
    }

    #[test]
    fn bad_input_is_typed() {
        let cases: &[&[u8]] = &[
            b"",
            b"   ",
            b"<odds_change",
            b"<odds_change product=\"1\" event_id=\"sr:match:1\" timestamp=\"1\"><odds></odds_change>",
            b"<odds_change product=\"1\" event_id=\"sr:match:1\"/>",
            b"<odds_change product=\"x\" event_id=\"sr:match:1\" timestamp=\"1\"/>",
            b"<unknown/>",
            b"<alive product=\"1\"/>",
            b"<alive product=\"1\" timestamp=\"1\"/><alive product=\"1\" timestamp=\"1\"/>",
            b"<odds_change product=\"1\" event_id=\"e\" timestamp=\"1\"><odds><market id=\"1\"><outcome id=\"1\" odds=\"-2\"/></market></odds></odds_change>",
            b"<odds_change product=\"1\" event_id=\"e\" timestamp=\"1\"><odds><market id=\"1\" status=\"7\"/></odds></odds_change>",
            b"<bet_settlement product=\"1\" event_id=\"e\" timestamp=\"1\"><outcomes><market id=\"1\"><outcome id=\"1\" result=\"1\" void_factor=\"2\"/></market></outcomes></bet_settlement>",
            b"<alive product=\"1\" timestamp=1/>",
            b"<alive product=\"1\"timestamp=\"1\"/>",
            b"<alive product=\"1\" timestamp=\"1/>",
            b"<alive product timestamp=\"1\"/>",
            b"<alive product=\"1\" timestamp=\"1\" x=\"<\"/>",
        ];
        for c in cases {
            assert!(parse(c).is_err(), "{}", String::from_utf8_lossy(c));
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&b);
        }
        #[test]
        fn mutated_real_message_never_panics(pos in 0usize..6000, byte in any::<u8>()) {
            let mut x = fixture("go-uof-sdk/odds_change-0.xml");
            let i = pos % x.len();
            x[i] = byte;
            let _ = parse(&x);
        }
    }
}
