//! Sport events, markets and selections for football: 1X2 (match result), total goals
//! over/under, and Asian handicap. Lines are held in quarter goals so that quarter lines
//! (-0.75, 2.25) are exact.

use crate::ids::{EventId, MarketId, SelectionId};
use crate::price::Price;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A goal line in quarter goals: `Line(10)` is 2.5, `Line(-3)` is -0.75.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Line(pub i32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid goal line {0:?}: expected a multiple of 0.25 between -20 and 20")]
pub struct LineError(pub String);

impl Line {
    pub fn parse(s: &str) -> Result<Line, LineError> {
        let err = || LineError(s.chars().take(16).collect());
        let t = s.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || int.len() > 2 {
            return Err(err());
        }
        let q_frac = match frac.trim_end_matches('0') {
            "" => 0,
            "25" => 1,
            "5" => 2,
            "75" => 3,
            _ => return Err(err()),
        };
        let q = int.parse::<i32>().map_err(|_| err())? * 4 + q_frac;
        if q > 80 {
            return Err(err());
        }
        Ok(Line(if neg { -q } else { q }))
    }
    pub fn quarters(&self) -> i32 {
        self.0
    }
    pub fn is_quarter(&self) -> bool {
        self.0 % 2 != 0
    }
}
impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let frac = ["", ".25", ".5", ".75"][(a % 4) as usize];
        write!(f, "{sign}{}{frac}", a / 4)
    }
}
impl fmt::Debug for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Line({self})")
    }
}
impl TryFrom<String> for Line {
    type Error = LineError;
    fn try_from(s: String) -> Result<Self, LineError> {
        Line::parse(&s)
    }
}
impl From<Line> for String {
    fn from(l: Line) -> String {
        l.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketKind {
    /// 1X2: home win, draw, away win over 90 minutes plus stoppage time.
    MatchResult,
    /// Total goals over/under `line`.
    TotalGoals { line: Line },
    /// Asian handicap; `home_line` is added to the home team's goals (the away line is its
    /// negation), as in football-data.co.uk's `AHh` column.
    AsianHandicap { home_line: Line },
}

impl MarketKind {
    /// The market-id suffix: `1x2`, `ou:2.5`, `ah:-0.75`.
    pub fn slug(&self) -> String {
        match self {
            MarketKind::MatchResult => "1x2".into(),
            MarketKind::TotalGoals { line } => format!("ou:{line}"),
            MarketKind::AsianHandicap { home_line } => format!("ah:{home_line}"),
        }
    }
    pub fn outcomes(&self) -> &'static [Outcome] {
        match self {
            MarketKind::MatchResult => &[Outcome::Home, Outcome::Draw, Outcome::Away],
            MarketKind::TotalGoals { .. } => &[Outcome::Over, Outcome::Under],
            MarketKind::AsianHandicap { .. } => &[Outcome::Home, Outcome::Away],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Home,
    Draw,
    Away,
    Over,
    Under,
}

impl Outcome {
    pub fn slug(&self) -> &'static str {
        match self {
            Outcome::Home => "home",
            Outcome::Draw => "draw",
            Outcome::Away => "away",
            Outcome::Over => "over",
            Outcome::Under => "under",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketStatus {
    Open,
    Suspended,
    /// No more bets; waiting for (or holding) a result.
    Closed,
}

impl MarketStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MarketStatus::Open => "open",
            MarketStatus::Suspended => "suspended",
            MarketStatus::Closed => "closed",
        }
    }
}

/// A football match as offered by the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SportEvent {
    pub event_id: EventId,
    pub competition: String,
    pub home: String,
    pub away: String,
    pub kickoff: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelectionPrice {
    pub selection_id: SelectionId,
    pub outcome: Outcome,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Market {
    pub market_id: MarketId,
    pub event_id: EventId,
    pub kind: MarketKind,
    pub status: MarketStatus,
    pub selections: Vec<SelectionPrice>,
}

impl Market {
    pub fn market_id_for(event: &EventId, kind: &MarketKind) -> MarketId {
        MarketId::new(format!("{event}:{}", kind.slug())).expect("event ids and slugs are id-safe")
    }
    pub fn selection_id_for(market: &MarketId, outcome: Outcome) -> SelectionId {
        SelectionId::new(format!("{market}:{}", outcome.slug()))
            .expect("market ids and slugs are id-safe")
    }
    pub fn selection(&self, id: &SelectionId) -> Option<&SelectionPrice> {
        self.selections.iter().find(|s| &s.selection_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        for (s, q) in [
            ("2.5", 10),
            ("-0.75", -3),
            ("0", 0),
            ("+1.25", 5),
            ("-3.0", -12),
            ("0.50", 2),
        ] {
            assert_eq!(Line::parse(s).unwrap(), Line(q), "{s}");
        }
        for bad in ["2.3", "abc", "", "-", "1.125", "100", "2.5.1"] {
            assert!(Line::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Line(-3).to_string(), "-0.75");
        assert_eq!(Line(10).to_string(), "2.5");
        assert_eq!(Line(0).to_string(), "0");
        assert!(Line(-3).is_quarter() && !Line(2).is_quarter());
    }
}
