//! Parser for Sportradar Unified Odds Feed (UOF) messages (XML over AMQP in production; here
//! just the message body). Handles `odds_change`, `bet_stop`, `bet_settlement`, `bet_cancel`,
//! `rollback_bet_settlement`, `rollback_bet_cancel`, `fixture_change`, `alive` and
//! `snapshot_complete`.
//!
//! Only what the book needs is kept; unknown elements and attributes are skipped so that a
//! schema extension by the provider does not stop the feed. Missing required attributes,
//! malformed numbers and malformed XML are typed errors, never panics. Odds become exact
//! thousandths (rounded down); probabilities stay `f64` because they are statistics, not money.

use super::decimal::{parse_milli_floor, trim};
use crate::time::UnixMillis;
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

/// A provider's outcome id (`"1"`, `"sr:player:10077"`). Almost all are short, so they are kept
/// inline, saving a heap allocation per outcome (a large odds_change has hundreds).
#[derive(Clone, PartialEq, Eq)]
pub struct OutcomeId(IdRepr);

const INLINE_ID: usize = 30;

#[derive(Clone, PartialEq, Eq)]
enum IdRepr {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Heap(Box<str>),
}

impl OutcomeId {
    pub fn new(s: &str) -> Self {
        if s.len() <= INLINE_ID {
            let mut bytes = [0u8; INLINE_ID];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            OutcomeId(IdRepr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            OutcomeId(IdRepr::Heap(s.into()))
        }
    }
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Built from a whole `&str`, so always valid UTF-8.
            IdRepr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            IdRepr::Heap(s) => s,
        }
    }
}

impl std::ops::Deref for OutcomeId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for OutcomeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for OutcomeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for OutcomeId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for OutcomeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OutcomeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(OutcomeId::new(&String::deserialize(d)?))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UofOutcome {
    pub id: OutcomeId,
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

/// The attributes of one element that the parser uses, decoded to text. Only the `N` names
/// its `lookup` knows are kept (and unescaped); the others are checked for well-formedness and
/// skipped, so an attribute the book never reads costs one scan. `lookup` is a `match` on
/// byte-string literals, which compiles to length checks and inline compares.
struct Attrs<'a, L: Lookup, const N: usize> {
    element: &'static str,
    vals: [Option<Cow<'a, str>>; N],
    lookup: std::marker::PhantomData<L>,
}

/// The attribute names one kind of element is read for, as indices into `Attrs::vals`.
/// Static dispatch, so a `get("odds")` folds to a constant index.
trait Lookup {
    fn index(k: &[u8]) -> Option<usize>;
}

impl<'a, L: Lookup, const N: usize> Attrs<'a, L, N> {
    fn new(element: &'static str) -> Self {
        Attrs {
            element,
            vals: std::array::from_fn(|_| None),
            lookup: std::marker::PhantomData,
        }
    }
    /// Read the attributes of the start tag the scanner is in; returns whether the element
    /// is self-closing (`<x/>`), pushing `frame` for its end tag otherwise.
    fn read(&mut self, sc: &mut Scanner<'a>, frame: Frame) -> Result<bool, UofError> {
        let (element, vals) = (self.element, &mut self.vals);
        sc.attrs(frame, |sc, key, raw, escaped| {
            let Some(slot) = L::index(key).and_then(|i| vals.get_mut(i)) else {
                return Ok(());
            };
            if slot.is_some() {
                return Err(sc.err(&format!(
                    "<{element}> repeats attribute {}",
                    String::from_utf8_lossy(key)
                )));
            }
            *slot = Some(if escaped {
                sc.decode(raw)?
            } else {
                Cow::Borrowed(raw)
            });
            Ok(())
        })
    }
    fn get(&self, name: &str) -> Option<&str> {
        let i = L::index(name.as_bytes())?;
        self.vals.get(i)?.as_deref()
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
            Some(v) => trim(v)
                .parse::<T>()
                .map(Some)
                .map_err(|_| self.invalid(name, v)),
        }
    }
    fn req_num<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, UofError> {
        let v = self.req(name)?;
        trim(v).parse::<T>().map_err(|_| self.invalid(name, v))
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
    fn id_str(&self, name: &'static str) -> Result<&str, UofError> {
        let v = self.req(name)?;
        if v.is_empty() || v.len() > 128 {
            return Err(self.invalid(name, v));
        }
        Ok(v)
    }
    fn id_text(&self, name: &'static str) -> Result<String, UofError> {
        Ok(self.id_str(name)?.to_string())
    }
    fn header(&self) -> Result<Header, UofError> {
        Ok(Header {
            // Some captured messages (rollback_bet_cancel) omit the product; 0 = unknown.
            product: self.num("product")?.unwrap_or(0),
            event_id: self.id_text("event_id")?,
            timestamp: UnixMillis(self.req_num("timestamp")?),
            request_id: self.num("request_id")?,
        })
    }
}

/// Attributes read on the root element (the union over message types).
struct RootAttrs;
impl Lookup for RootAttrs {
    #[inline(always)]
    fn index(k: &[u8]) -> Option<usize> {
        Some(match k {
            b"product" => 0,
            b"event_id" => 1,
            b"timestamp" => 2,
            b"request_id" => 3,
            b"groups" => 4,
            b"certainty" => 5,
            b"start_time" => 6,
            b"end_time" => 7,
            b"change_type" => 8,
            b"subscribed" => 9,
            _ => return None,
        })
    }
}
struct StatusAttrs;
impl Lookup for StatusAttrs {
    #[inline(always)]
    fn index(k: &[u8]) -> Option<usize> {
        Some(match k {
            b"status" => 0,
            b"home_score" => 1,
            b"away_score" => 2,
            _ => return None,
        })
    }
}
struct MarketAttrs;
impl Lookup for MarketAttrs {
    #[inline(always)]
    fn index(k: &[u8]) -> Option<usize> {
        Some(match k {
            b"id" => 0,
            b"specifiers" => 1,
            b"status" => 2,
            b"void_reason" => 3,
            _ => return None,
        })
    }
}
struct OddsOutcomeAttrs;
impl Lookup for OddsOutcomeAttrs {
    #[inline(always)]
    fn index(k: &[u8]) -> Option<usize> {
        Some(match k {
            b"id" => 0,
            b"odds" => 1,
            b"probabilities" => 2,
            b"active" => 3,
            _ => return None,
        })
    }
}
struct ResultOutcomeAttrs;
impl Lookup for ResultOutcomeAttrs {
    #[inline(always)]
    fn index(k: &[u8]) -> Option<usize> {
        Some(match k {
            b"id" => 0,
            b"result" => 1,
            b"void_factor" => 2,
            b"dead_heat_factor" => 3,
            _ => return None,
        })
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
        _ => "element",
    }
}

/// What an open element means to the parser, kept on the scanner's stack until its end tag.
/// Where a `<market>` sits decides how it is read: under `<odds>` it carries prices, under
/// `<outcomes>` results, directly under the root it is a reference.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ctx {
    Root,
    Odds,
    Outcomes,
    Other,
}

/// The context children of an open element are read in, and whether it is a `<market>`.
#[derive(Clone, Copy, Debug)]
struct Frame {
    ctx: Ctx,
    market: bool,
}

const OTHER: Frame = Frame {
    ctx: Ctx::Other,
    market: false,
};

/// One token of the document, as the parser needs it. Text, comments and processing
/// instructions inside the root are skipped by the scanner (UOF carries no text content).
enum Tok<'a> {
    /// A start tag: its name. The scanner is left inside the tag; the caller reads the
    /// attributes next (`Attrs::read` or `Scanner::skip_attrs`).
    Start(&'a [u8]),
    /// An end tag matching the innermost open element, and that element's frame.
    End(Frame),
    Eof,
}

/// A strict, single-pass XML scanner over the message bytes (a subset of XML 1.0 that covers
/// UOF: elements, attributes, comments, processing instructions, CDATA). It checks that tags
/// are well formed, that end tags match, that attribute values are quoted and free of `<`, and
/// that nothing but whitespace, comments and PIs surrounds the root. DTDs are refused (no
/// entity expansion on outside input). The whole document is checked as UTF-8 once up front,
/// so attribute values are borrowed `&str` slices, never copied unless they hold an escape.
struct Scanner<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    open: Vec<(&'a [u8], Frame)>,
    seen_root: bool,
    /// Inside a start tag whose attributes have not been read yet.
    in_tag: bool,
    /// The name of the current (or last) start tag.
    tag: &'a [u8],
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Bytes that end or interrupt an attribute value scan: either quote, `<`, `&`.
static VALUE_STOP: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    t[b'<' as usize] = true;
    t[b'&' as usize] = true;
    t
};

/// Bytes allowed in element and attribute names (ASCII letters, digits, `_-.:`, and any byte
/// of a multi-byte UTF-8 character), as a table: names are scanned a byte at a time.
static NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':') || c >= 0x80;
        i += 1;
    }
    t
};

/// SWAR (SIMD within a register): bit 7 of each byte of the result is set where `v` holds a
/// zero byte. Exact for the lowest zero byte (a borrow only reaches bytes above it), which is
/// all the scans below use: `trailing_zeros() / 8` of a mask is the first match.
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    v.wrapping_sub(LO) & !v & (LO << 7)
}

#[inline(always)]
fn eq_bytes(v: u64, c: u8) -> u64 {
    zero_bytes(v ^ (0x0101_0101_0101_0101 * u64::from(c)))
}

/// The index of the first byte at or after `i` that ends or interrupts an attribute value
/// (`VALUE_STOP`), or `b.len()`. Eight bytes per step: a typical value (`1.92`, `sr:match:1`)
/// ends within one or two steps without a branch per byte.
#[inline(always)]
fn value_stop(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let v = u64::from_le_bytes(*chunk);
        let m = eq_bytes(v, b'"') | eq_bytes(v, b'\'') | eq_bytes(v, b'<') | eq_bytes(v, b'&');
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !VALUE_STOP[usize::from(b[i])] {
        i += 1;
    }
    i
}

/// The first `<` within the next 24 bytes (the indentation between tags), eight at a time.
#[inline(always)]
fn find_lt_near(rest: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < 24 {
        let Some(chunk) = rest.get(i..).and_then(|r| r.first_chunk::<8>()) else {
            return rest
                .get(i..)?
                .iter()
                .position(|c| *c == b'<')
                .map(|p| i + p);
        };
        let m = eq_bytes(u64::from_le_bytes(*chunk), b'<');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    None
}

impl<'a> Scanner<'a> {
    fn new(xml: &'a [u8]) -> Result<Self, UofError> {
        let s = std::str::from_utf8(xml).map_err(|e| UofError::Xml {
            position: e.valid_up_to() as u64,
            detail: "message is not UTF-8".into(),
        })?;
        // A UTF-8 byte order mark is allowed before the document.
        let pos = if s.starts_with('\u{feff}') { 3 } else { 0 };
        Ok(Scanner {
            s,
            b: xml,
            pos,
            open: Vec::with_capacity(8),
            seen_root: false,
            in_tag: false,
            tag: b"",
        })
    }

    fn err(&self, detail: &str) -> UofError {
        UofError::Xml {
            position: self.pos as u64,
            detail: detail.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        let (b, mut i) = (self.b, self.pos);
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        self.pos = i;
    }

    /// Skip past the next `pat`, or fail with `what`.
    fn skip_past(&mut self, pat: &[u8], what: &str) -> Result<(), UofError> {
        match memchr::memmem::find(&self.b[self.pos..], pat) {
            Some(i) => {
                self.pos += i + pat.len();
                Ok(())
            }
            None => Err(self.err(what)),
        }
    }

    fn name(&mut self) -> Result<&'a [u8], UofError> {
        let (b, start) = (self.b, self.pos);
        let mut i = start;
        while i < b.len() && NAME_BYTE[usize::from(b[i])] {
            i += 1;
        }
        self.pos = i;
        if i == start {
            return Err(self.err("malformed name"));
        }
        Ok(&b[start..i])
    }

    fn next(&mut self) -> Result<Tok<'a>, UofError> {
        if self.in_tag {
            self.skip_attrs(OTHER)?;
        }
        loop {
            let rest = &self.b[self.pos..];
            // Usually a short run of indentation: look nearby before a vectorised search.
            let lt = match find_lt_near(rest) {
                Some(i) => Some(i),
                None => memchr::memchr(b'<', rest),
            };
            if self.open.is_empty() {
                // Outside the root only whitespace may appear as text.
                let text = &rest[..lt.unwrap_or(rest.len())];
                if !text.iter().all(|c| is_ws(*c)) {
                    return Err(self.err(if self.seen_root {
                        "text after the root element"
                    } else {
                        "text before the root element"
                    }));
                }
            }
            let Some(lt) = lt else {
                self.pos = self.b.len();
                return if !self.open.is_empty() {
                    Err(self.err("unexpected end of document"))
                } else {
                    Ok(Tok::Eof)
                };
            };
            self.pos += lt + 1;
            match self.b.get(self.pos) {
                Some(b'/') => {
                    self.pos += 1;
                    let name = self.name()?;
                    self.skip_ws();
                    if self.b.get(self.pos) != Some(&b'>') {
                        return Err(self.err("malformed end tag"));
                    }
                    self.pos += 1;
                    return match self.open.pop() {
                        Some((open, frame)) if open == name => Ok(Tok::End(frame)),
                        Some((open, _)) => Err(self.err(&format!(
                            "end tag </{}> does not match <{}>",
                            String::from_utf8_lossy(name),
                            String::from_utf8_lossy(open)
                        ))),
                        None => Err(self.err("end tag without a start tag")),
                    };
                }
                Some(b'?') => self.skip_past(b"?>", "unterminated processing instruction")?,
                Some(b'!') => {
                    let rest = &self.b[self.pos..];
                    if rest.starts_with(b"!--") {
                        self.pos += 3;
                        self.skip_past(b"-->", "unterminated comment")?;
                    } else if rest.starts_with(b"![CDATA[") && !self.open.is_empty() {
                        self.skip_past(b"]]>", "unterminated CDATA section")?;
                    } else {
                        return Err(self.err("DTDs and declarations are not accepted"));
                    }
                }
                _ => {
                    if self.open.is_empty() && self.seen_root {
                        return Err(self.err("more than one root element"));
                    }
                    let name = self.name()?;
                    match self.b.get(self.pos) {
                        Some(c) if is_ws(*c) || *c == b'/' || *c == b'>' => {}
                        _ => return Err(self.err("malformed start tag")),
                    }
                    self.seen_root = true;
                    self.in_tag = true;
                    self.tag = name;
                    return Ok(Tok::Start(name));
                }
            }
        }
    }

    /// Read the attributes of the current start tag, calling `f(key, raw value, has '&')`
    /// for each; returns whether the tag is self-closing, and otherwise pushes the element
    /// with `frame`.
    fn attrs(
        &mut self,
        frame: Frame,
        mut f: impl FnMut(&Self, &'a [u8], &'a str, bool) -> Result<(), UofError>,
    ) -> Result<bool, UofError> {
        let name = self.tag;
        self.in_tag = false;
        loop {
            self.skip_ws();
            match self.b.get(self.pos) {
                None => return Err(self.err("unterminated start tag")),
                Some(b'>') => {
                    self.pos += 1;
                    self.open.push((name, frame));
                    return Ok(false);
                }
                Some(b'/') => {
                    if self.b.get(self.pos + 1) != Some(&b'>') {
                        return Err(self.err("malformed start tag"));
                    }
                    self.pos += 2;
                    return Ok(true);
                }
                Some(_) => {}
            }
            let key = self
                .name()
                .map_err(|_| self.err("malformed attribute name"))?;
            self.skip_ws();
            if self.b.get(self.pos) != Some(&b'=') {
                return Err(self.err("attribute without a value"));
            }
            self.pos += 1;
            self.skip_ws();
            let q = match self.b.get(self.pos) {
                Some(&q @ (b'"' | b'\'')) => q,
                _ => return Err(self.err("attribute value not quoted")),
            };
            self.pos += 1;
            let start = self.pos;
            // Values are short (ids, prices): eight bytes at a time (SWAR), then a table.
            let (b, mut i, mut escaped) = (self.b, start, false);
            loop {
                i = value_stop(b, i);
                match b.get(i) {
                    Some(&c) if c == q => break,
                    Some(b'<') => {
                        self.pos = i;
                        return Err(self.err("'<' in an attribute value"));
                    }
                    Some(b'&') => escaped = true,
                    Some(_) => {} // the other quote character
                    None => {
                        self.pos = i;
                        return Err(self.err("unterminated attribute value"));
                    }
                }
                i += 1;
            }
            self.pos = i;
            // Quotes are ASCII, so both ends are character boundaries.
            let raw = self
                .s
                .get(start..self.pos)
                .ok_or_else(|| self.err("attribute value is not UTF-8"))?;
            self.pos += 1;
            match self.b.get(self.pos) {
                Some(c) if is_ws(*c) || *c == b'/' || *c == b'>' => {}
                _ => return Err(self.err("attributes must be separated by whitespace")),
            }
            f(self, key, raw, escaped)?;
        }
    }

    fn skip_attrs(&mut self, frame: Frame) -> Result<bool, UofError> {
        self.attrs(frame, |_, _, _, _| Ok(()))
    }

    /// An attribute value with its entity and character references replaced.
    fn decode(&self, raw: &'a str) -> Result<Cow<'a, str>, UofError> {
        quick_xml::escape::unescape(raw)
            .map(|c| Cow::Owned(c.into_owned()))
            .map_err(|e| self.err(&e.to_string()))
    }
}

/// Parse one UOF message body.
pub fn parse(xml: &[u8]) -> Result<UofMessage, UofError> {
    if xml.len() > MAX_MESSAGE_BYTES {
        return Err(UofError::TooLarge(xml.len()));
    }
    let mut sc = Scanner::new(xml)?;
    let name = match sc.next()? {
        Tok::Start(name) => name,
        Tok::Eof => return Err(UofError::Empty),
        // `next` refuses an end tag before any start tag.
        Tok::End(_) => return Err(sc.err("end tag before the root element")),
    };
    let el = static_name(name);
    if el == "element" {
        return Err(UofError::UnknownMessage(
            String::from_utf8_lossy(name).chars().take(64).collect(),
        ));
    }
    let mut a = Attrs::<RootAttrs, 10>::new(el);
    let root = Frame {
        ctx: Ctx::Root,
        market: false,
    };
    let root_empty = a.read(&mut sc, root)?;
    let mut body = Body::default();
    if name == b"odds_change" {
        body.markets.reserve(16);
    }
    if !root_empty {
        read_body(&mut sc, &mut body)?;
    }
    // Nothing but whitespace, comments and PIs may follow the root.
    match sc.next()? {
        Tok::Eof => {}
        _ => return Err(sc.err("more than one root element")),
    }
    Ok(match name {
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
        _ => UofMessage::SnapshotComplete {
            product: a.req_num("product")?,
            timestamp: UnixMillis(a.req_num("timestamp")?),
            request_id: a.num("request_id")?,
        },
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

/// Read the root's children up to and including the root's end tag.
fn read_body(sc: &mut Scanner<'_>, body: &mut Body) -> Result<(), UofError> {
    // The kind of market whose outcomes are being read (its parent's context), if any.
    let mut market_kind: Option<Ctx> = None;
    loop {
        let name = match sc.next()? {
            Tok::Start(name) => name,
            Tok::End(frame) => {
                if frame.ctx == Ctx::Root {
                    return Ok(()); // the root's end
                }
                if frame.market {
                    market_kind = None;
                }
                continue;
            }
            // `next` refuses end of input while elements are open.
            Tok::Eof => return Err(sc.err("unexpected end of document")),
        };
        let parent = sc.open.last().map(|(_, f)| f.ctx).unwrap_or(Ctx::Other);
        match name {
            b"odds" if parent == Ctx::Root => {
                sc.skip_attrs(Frame {
                    ctx: Ctx::Odds,
                    market: false,
                })?;
            }
            b"outcomes" if parent == Ctx::Root => {
                sc.skip_attrs(Frame {
                    ctx: Ctx::Outcomes,
                    market: false,
                })?;
            }
            b"sport_event_status" if parent == Ctx::Root => {
                let mut a = Attrs::<StatusAttrs, 3>::new("sport_event_status");
                a.read(sc, OTHER)?;
                body.status = Some(UofScore {
                    status: a.num("status")?.unwrap_or(0),
                    home_score: a.num("home_score")?,
                    away_score: a.num("away_score")?,
                });
            }
            b"market" if matches!(parent, Ctx::Root | Ctx::Odds | Ctx::Outcomes) => {
                let mut a = Attrs::<MarketAttrs, 4>::new("market");
                // Market children are read with the market's parent context.
                let child_ctx = match parent {
                    Ctx::Odds | Ctx::Outcomes => parent,
                    _ => Ctx::Other,
                };
                let empty = a.read(
                    sc,
                    Frame {
                        ctx: child_ctx,
                        market: true,
                    },
                )?;
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
                }
            }
            b"outcome" if market_kind == Some(Ctx::Odds) => {
                let mut a = Attrs::<OddsOutcomeAttrs, 4>::new("outcome");
                a.read(sc, OTHER)?;
                let id = OutcomeId::new(a.id_str("id")?);
                let odds_milli = match a.get("odds") {
                    None => None,
                    Some(v) => Some(parse_milli_floor(v).ok_or_else(|| a.invalid("odds", v))?),
                };
                let probability = match a.get("probabilities") {
                    None => None,
                    Some(v) => match trim(v).parse::<f64>() {
                        Ok(p) if p.is_finite() && (0.0..=1.0).contains(&p) => Some(p),
                        _ => return Err(a.invalid("probabilities", v)),
                    },
                };
                let active = a.get("active").map(|v| v != "0").unwrap_or(true);
                if let Some(m) = body.markets.last_mut() {
                    if m.outcomes.is_empty() {
                        // Most markets have 2-3 outcomes; avoid regrowing from 1.
                        m.outcomes.reserve(4);
                    }
                    m.outcomes.push(UofOutcome {
                        id,
                        odds_milli,
                        probability,
                        active,
                    });
                }
            }
            b"outcome" if market_kind == Some(Ctx::Outcomes) => {
                let mut a = Attrs::<ResultOutcomeAttrs, 4>::new("outcome");
                a.read(sc, OTHER)?;
                let id = a.id_text("id")?;
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
            // Outcomes inside cancel/rollback markets narrow the scope; the book treats the
            // whole market, which is the conservative reading. Other elements are skipped.
            _ => {
                sc.skip_attrs(OTHER)?;
            }
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

    proptest! {
        /// The eight-bytes-at-a-time scans find exactly what a byte-by-byte scan finds.
        #[test]
        fn swar_scans_match_bytewise(b in proptest::collection::vec(
            proptest::sample::select(vec![b'a', b' ', b'"', b'\'', b'<', b'&', 0u8, 1, 0x80, 0xff, b'='])
            , 0..40), i in 0usize..40) {
            let i = i.min(b.len());
            let naive = i + b[i..].iter().position(|c| VALUE_STOP[usize::from(*c)]).unwrap_or(b.len() - i);
            prop_assert_eq!(value_stop(&b, i), naive);
            let lt = b.iter().take(24).position(|c| *c == b'<');
            prop_assert_eq!(find_lt_near(&b), lt);
        }
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
    fn document_forms_accepted() {
        // BOM, declaration, comments, CDATA inside the root, end tags with whitespace,
        // character references, and unused attributes with '>' in their values.
        let m = parse(
            "\u{feff}<?xml version=\"1.0\"?>\n<!-- c --><bet_stop product=\"1\" \
             event_id=\"sr:match:&#49;\" x=\"a>b\" timestamp=\"5\" groups=\"a|b\"\
             ><![CDATA[<x>]]></bet_stop >\n<!-- after -->\n"
                .as_bytes(),
        )
        .unwrap();
        let UofMessage::BetStop { header, groups } = m else {
            panic!()
        };
        assert_eq!(header.event_id, "sr:match:1");
        assert_eq!(groups, "a|b");
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
            b"<alive product=\"1\" product=\"2\" timestamp=\"1\"/>",
            b"<odds_change product=\"1\" event_id=\"e\" timestamp=\"1\"><odds></market></odds_change>",
            b"<!DOCTYPE x [<!ENTITY a \"b\">]><alive product=\"1\" timestamp=\"1\"/>",
            b"<alive product=\"1\" timestamp=\"1\"/>trailing",
            b"junk<alive product=\"1\" timestamp=\"1\"/>",
            b"<alive product=\"\xff\" timestamp=\"1\"/>",
            b"<alive product=\"1\" timestamp=\"1\"><!-- unterminated </alive>",
            b"<alive product=\"1\" timestamp=\"1\" /",
            b"</alive>",
            b"<alive product=\"1\" timestamp=\"1\"></alive >x</alive>",
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
