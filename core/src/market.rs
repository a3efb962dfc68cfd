//! Sport events, markets and selections: football 1X2 (match result), total goals over/under,
//! Asian handicap, correct score and both teams to score; horse racing win (with each-way
//! terms) and place; outrights. Lines are held in quarter goals so that quarter lines
//! (-0.75, 2.25) are exact.
//!
//! Football kinds have a fixed outcome set (`outcomes()`); racing and outright markets have an
//! open set of runners/competitors (`Outcome::Runner`), checked with `accepts`.

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
    /// Exact final score: every score with both sides ≤ `max_goals`, plus "any other score".
    CorrectScore { max_goals: u8 },
    /// Both teams to score: yes / no.
    BothTeamsToScore,
    /// Horse (or greyhound) race winner; `each_way` terms when the book offers each-way.
    RaceWin { each_way: Option<EachWayTerms> },
    /// Finish in the first `places` (a separate place market, e.g. Betfair PLACE).
    RacePlace { places: u8 },
    /// Outright winner of a competition, `winners` paying places (1 for a plain outright).
    Outright { winners: u8 },
}

/// Each-way terms: the place part pays at `fraction_num/fraction_den` of the win odds if the
/// runner finishes in the first `places`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EachWayTerms {
    pub places: u8,
    pub fraction_num: u8,
    pub fraction_den: u8,
}

impl EachWayTerms {
    /// Valid terms: 1–10 places, fraction strictly between 0 and 1 (1/4, 1/5 in practice).
    pub fn is_valid(&self) -> bool {
        (1..=10).contains(&self.places)
            && self.fraction_num > 0
            && self.fraction_den > self.fraction_num
    }
}

impl MarketKind {
    /// The market-id suffix: `1x2`, `ou:2.5`, `ah:-0.75`, `cs:4`, `btts`, `win`, `place:3`,
    /// `outright:1`.
    pub fn slug(&self) -> String {
        match self {
            MarketKind::MatchResult => "1x2".into(),
            MarketKind::TotalGoals { line } => format!("ou:{line}"),
            MarketKind::AsianHandicap { home_line } => format!("ah:{home_line}"),
            MarketKind::CorrectScore { max_goals } => format!("cs:{max_goals}"),
            MarketKind::BothTeamsToScore => "btts".into(),
            MarketKind::RaceWin { .. } => "win".into(),
            MarketKind::RacePlace { places } => format!("place:{places}"),
            MarketKind::Outright { winners } => format!("outright:{winners}"),
        }
    }
    /// The pricing class (target margins are set per class): `1x2`, `ou`, `ah`,
    /// `correct_score`, `btts`, `win`, `place`, `outright`.
    pub fn class(&self) -> &'static str {
        match self {
            MarketKind::MatchResult => "1x2",
            MarketKind::TotalGoals { .. } => "ou",
            MarketKind::AsianHandicap { .. } => "ah",
            MarketKind::CorrectScore { .. } => "correct_score",
            MarketKind::BothTeamsToScore => "btts",
            MarketKind::RaceWin { .. } => "win",
            MarketKind::RacePlace { .. } => "place",
            MarketKind::Outright { .. } => "outright",
        }
    }
    /// How many selections win (for margin: probabilities sum to this).
    pub fn winners(&self) -> u32 {
        match self {
            MarketKind::RacePlace { places } => u32::from(*places),
            MarketKind::Outright { winners } => u32::from(*winners),
            _ => 1,
        }
    }
    /// The fixed outcome set, in order; empty for open sets (racing, outrights), whose
    /// selections are runners checked with [`MarketKind::accepts`].
    pub fn outcomes(&self) -> Vec<Outcome> {
        match self {
            MarketKind::MatchResult => vec![Outcome::Home, Outcome::Draw, Outcome::Away],
            MarketKind::TotalGoals { .. } => vec![Outcome::Over, Outcome::Under],
            MarketKind::AsianHandicap { .. } => vec![Outcome::Home, Outcome::Away],
            MarketKind::CorrectScore { max_goals } => {
                let mut v = Vec::new();
                for home in 0..=*max_goals {
                    for away in 0..=*max_goals {
                        v.push(Outcome::Score { home, away });
                    }
                }
                v.push(Outcome::OtherScore);
                v
            }
            MarketKind::BothTeamsToScore => vec![Outcome::Yes, Outcome::No],
            MarketKind::RaceWin { .. }
            | MarketKind::RacePlace { .. }
            | MarketKind::Outright { .. } => Vec::new(),
        }
    }
    /// Runner-based markets whose selections are not a fixed list.
    pub fn is_open_set(&self) -> bool {
        matches!(
            self,
            MarketKind::RaceWin { .. } | MarketKind::RacePlace { .. } | MarketKind::Outright { .. }
        )
    }
    /// Is the kind itself well-formed (each-way terms, places, score range)?
    pub fn is_valid(&self) -> bool {
        match self {
            MarketKind::CorrectScore { max_goals } => (1..=9).contains(max_goals),
            MarketKind::RaceWin { each_way } => each_way.is_none_or(|t| t.is_valid()),
            MarketKind::RacePlace { places } => (1..=10).contains(places),
            MarketKind::Outright { winners } => (1..=10).contains(winners),
            _ => true,
        }
    }
    /// Does `outcome` belong to this kind?
    pub fn accepts(&self, outcome: &Outcome) -> bool {
        if self.is_open_set() {
            matches!(outcome, Outcome::Runner { .. })
        } else {
            self.outcomes().contains(outcome)
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
    /// Correct score `home`-`away`.
    Score {
        home: u8,
        away: u8,
    },
    /// Correct score: any score not listed in the market.
    OtherScore,
    Yes,
    No,
    /// A runner or competitor, by the provider's numeric id (Betfair selection id).
    Runner {
        id: u64,
    },
}

impl Outcome {
    pub fn slug(&self) -> String {
        match self {
            Outcome::Home => "home".into(),
            Outcome::Draw => "draw".into(),
            Outcome::Away => "away".into(),
            Outcome::Over => "over".into(),
            Outcome::Under => "under".into(),
            Outcome::Score { home, away } => format!("{home}-{away}"),
            Outcome::OtherScore => "other".into(),
            Outcome::Yes => "yes".into(),
            Outcome::No => "no".into(),
            Outcome::Runner { id } => format!("r{id}"),
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
    /// Resulted by the provider (may still be rolled back to `Closed`).
    Settled,
    /// Voided by the provider (may be rolled back to `Closed`).
    Cancelled,
}

impl MarketStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MarketStatus::Open => "open",
            MarketStatus::Suspended => "suspended",
            MarketStatus::Closed => "closed",
            MarketStatus::Settled => "settled",
            MarketStatus::Cancelled => "cancelled",
        }
    }
    /// The lifecycle open ⇄ suspended → closed → settled | cancelled; a rollback takes
    /// settled/cancelled back to closed. Anything else is refused.
    pub fn can_become(self, next: MarketStatus) -> bool {
        use MarketStatus::*;
        matches!(
            (self, next),
            (Open, Suspended)
                | (Suspended, Open)
                | (Open | Suspended, Closed)
                | (Open | Suspended | Closed, Settled | Cancelled)
                | (Settled | Cancelled, Closed)
        )
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

    #[test]
    fn new_kinds() {
        let cs = MarketKind::CorrectScore { max_goals: 3 };
        assert_eq!(cs.outcomes().len(), 17);
        assert!(cs.accepts(&Outcome::Score { home: 3, away: 0 }));
        assert!(!cs.accepts(&Outcome::Score { home: 4, away: 0 }));
        assert!(cs.accepts(&Outcome::OtherScore));
        let ew = MarketKind::RaceWin {
            each_way: Some(EachWayTerms {
                places: 3,
                fraction_num: 1,
                fraction_den: 5,
            }),
        };
        assert!(ew.is_valid() && ew.is_open_set());
        assert!(ew.accepts(&Outcome::Runner { id: 12115648 }));
        assert!(!ew.accepts(&Outcome::Home));
        let bad = MarketKind::RaceWin {
            each_way: Some(EachWayTerms {
                places: 3,
                fraction_num: 1,
                fraction_den: 1,
            }),
        };
        assert!(!bad.is_valid());
        assert_eq!(MarketKind::RacePlace { places: 2 }.winners(), 2);
        let ev = EventId::new("bf:31389771").unwrap();
        let id = Market::market_id_for(&ev, &MarketKind::RacePlace { places: 2 });
        assert_eq!(id.as_str(), "bf:31389771:place:2");
        assert_eq!(
            Market::selection_id_for(&id, Outcome::Runner { id: 7 }).as_str(),
            "bf:31389771:place:2:r7"
        );
        assert_eq!(Outcome::Score { home: 2, away: 1 }.slug(), "2-1");
    }

    #[test]
    fn lifecycle() {
        use MarketStatus::*;
        assert!(Open.can_become(Suspended) && Suspended.can_become(Open));
        assert!(Suspended.can_become(Closed) && Closed.can_become(Settled));
        assert!(Settled.can_become(Closed) && Cancelled.can_become(Closed));
        assert!(
            !Closed.can_become(Open)
                && !Settled.can_become(Open)
                && !Cancelled.can_become(Suspended)
        );
    }
}
