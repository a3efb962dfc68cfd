//! Settlement of football selections from a final score (1X2, totals, Asian handicap,
//! correct score, both teams to score), and of whole bets. Racing and outright markets settle
//! from a finishing order, not a score, and are refused here.
//!
//! Each leg settles to a [`LegResult`]; each result maps to one exact [`Factor`] applied to the
//! stake, and the payout is `payout::payout_minor` of the product. Void and push legs are
//! priced at 1.0, so an accumulator with a void leg pays on the remaining legs.

use crate::market::{Line, MarketKind, Outcome};
use crate::payout::{Factor, payout_minor};
use crate::price::{PRICE_SCALE, Price};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FinalScore {
    pub home: u16,
    pub away: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegResult {
    Win,
    Lose,
    /// Whole-line handicap or total landing exactly on the line: stake returned.
    Push,
    /// Event or market voided: stake returned, leg priced at 1.0.
    Void,
    /// Quarter line: half the stake wins at the price, half is returned.
    HalfWin,
    /// Quarter line: half the stake is lost, half is returned.
    HalfLose,
    /// Each-way: the runner was placed but did not win. The win part loses (the factor here);
    /// the place part is paid at the each-way terms (`settlement::each_way_bet`).
    Placed,
}

impl LegResult {
    /// The exact multiplier this result applies to the stake at `price`.
    pub fn factor(self, price: Price) -> Factor {
        let p = price.milli();
        match self {
            LegResult::Win => Factor::new(p, PRICE_SCALE),
            LegResult::Lose | LegResult::Placed => Factor::ZERO,
            LegResult::Push | LegResult::Void => Factor::ONE,
            LegResult::HalfWin => Factor::new(p + PRICE_SCALE, 2 * PRICE_SCALE),
            LegResult::HalfLose => Factor::HALF,
        }
    }
}

/// Result of a bet on a line where `margin_quarters` = (selection's goals + line) − (other
/// side's goals), in quarter goals, for a half or whole line.
fn line_result(margin_quarters: i32) -> LegResult {
    match margin_quarters.signum() {
        1 => LegResult::Win,
        -1 => LegResult::Lose,
        _ => LegResult::Push,
    }
}

/// Quarter lines split the stake over the two neighbouring lines (line ± 0.25).
fn split_line(raw_margin_quarters: i32, line: Line) -> LegResult {
    if !line.is_quarter() {
        return line_result(raw_margin_quarters + line.quarters());
    }
    let lo = line_result(raw_margin_quarters + line.quarters() - 1);
    let hi = line_result(raw_margin_quarters + line.quarters() + 1);
    use LegResult::*;
    match (lo, hi) {
        (Win, Win) => Win,
        (Lose, Lose) => Lose,
        (Push, Win) | (Win, Push) => HalfWin,
        (Push, Lose) | (Lose, Push) => HalfLose,
        // Neighbouring lines are 0.5 apart and one of them is whole, so they cannot split
        // into a win and a loss.
        other => unreachable!("quarter line split into {other:?}"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outcome {outcome:?} does not belong to market {kind:?}")]
pub struct OutcomeMismatch {
    pub kind: MarketKind,
    pub outcome: Outcome,
}

pub fn settle_selection(
    kind: &MarketKind,
    outcome: Outcome,
    score: FinalScore,
) -> Result<LegResult, OutcomeMismatch> {
    let (h, a) = (score.home as i32, score.away as i32);
    let mismatch = || OutcomeMismatch {
        kind: *kind,
        outcome,
    };
    let won = |b: bool| if b { LegResult::Win } else { LegResult::Lose };
    Ok(match (kind, outcome) {
        (MarketKind::MatchResult, Outcome::Home) => won(h > a),
        (MarketKind::MatchResult, Outcome::Draw) => won(h == a),
        (MarketKind::MatchResult, Outcome::Away) => won(h < a),
        (MarketKind::TotalGoals { line }, Outcome::Over) => {
            split_line((h + a) * 4, Line(-line.quarters()))
        }
        (MarketKind::TotalGoals { line }, Outcome::Under) => split_line(-(h + a) * 4, *line),
        (MarketKind::AsianHandicap { home_line }, Outcome::Home) => {
            split_line((h - a) * 4, *home_line)
        }
        (MarketKind::AsianHandicap { home_line }, Outcome::Away) => {
            split_line((a - h) * 4, Line(-home_line.quarters()))
        }
        (MarketKind::CorrectScore { max_goals }, Outcome::Score { home, away })
            if home <= *max_goals && away <= *max_goals =>
        {
            won(h == i32::from(home) && a == i32::from(away))
        }
        (MarketKind::CorrectScore { max_goals }, Outcome::OtherScore) => {
            won(h > i32::from(*max_goals) || a > i32::from(*max_goals))
        }
        (MarketKind::BothTeamsToScore, Outcome::Yes) => won(h > 0 && a > 0),
        (MarketKind::BothTeamsToScore, Outcome::No) => won(h == 0 || a == 0),
        _ => return Err(mismatch()),
    })
}

/// Payout of a bet (single = one leg) from its leg results, rounded down once.
/// Returns `None` if the payout does not fit in `i64` (never for a bet within payout limits).
pub fn bet_payout_minor(stake_minor: i64, legs: &[(LegResult, Price)]) -> Option<i64> {
    let factors: Vec<Factor> = legs.iter().map(|(r, p)| r.factor(*p)).collect();
    payout_minor(stake_minor, &factors)
}

/// Potential return if every leg wins (what the slip shows).
pub fn potential_payout_minor(stake_minor: i64, prices: &[Price]) -> Option<i64> {
    let factors: Vec<Factor> = prices.iter().map(|p| p.factor()).collect();
    payout_minor(stake_minor, &factors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use LegResult::*;

    fn s(h: u16, a: u16) -> FinalScore {
        FinalScore { home: h, away: a }
    }
    fn ah(l: &str) -> MarketKind {
        MarketKind::AsianHandicap {
            home_line: Line::parse(l).unwrap(),
        }
    }
    fn ou(l: &str) -> MarketKind {
        MarketKind::TotalGoals {
            line: Line::parse(l).unwrap(),
        }
    }

    #[test]
    fn asian_handicap_table() {
        // (home line, score, home result, away result)
        let table = [
            ("-0.5", s(1, 0), Win, Lose),
            ("-0.5", s(1, 1), Lose, Win),
            ("0", s(1, 1), Push, Push),
            ("-1", s(2, 1), Push, Push),
            ("-1", s(3, 1), Win, Lose),
            ("-0.25", s(1, 1), HalfLose, HalfWin),
            ("-0.25", s(2, 1), Win, Lose),
            ("-0.75", s(2, 1), HalfWin, HalfLose),
            ("-0.75", s(3, 1), Win, Lose),
            ("+0.25", s(0, 0), HalfWin, HalfLose),
            ("+0.75", s(0, 1), HalfLose, HalfWin),
            ("+1.25", s(0, 1), HalfWin, HalfLose),
            ("-2.25", s(2, 0), HalfLose, HalfWin),
        ];
        for (line, score, home, away) in table {
            assert_eq!(
                settle_selection(&ah(line), Outcome::Home, score).unwrap(),
                home,
                "home {line} {score:?}"
            );
            assert_eq!(
                settle_selection(&ah(line), Outcome::Away, score).unwrap(),
                away,
                "away {line} {score:?}"
            );
        }
    }

    #[test]
    fn correct_score_and_btts() {
        let cs = MarketKind::CorrectScore { max_goals: 3 };
        let sc = |h, a| Outcome::Score { home: h, away: a };
        assert_eq!(settle_selection(&cs, sc(2, 1), s(2, 1)).unwrap(), Win);
        assert_eq!(settle_selection(&cs, sc(1, 2), s(2, 1)).unwrap(), Lose);
        assert_eq!(
            settle_selection(&cs, Outcome::OtherScore, s(2, 1)).unwrap(),
            Lose
        );
        assert_eq!(
            settle_selection(&cs, Outcome::OtherScore, s(4, 1)).unwrap(),
            Win
        );
        assert_eq!(settle_selection(&cs, sc(3, 3), s(3, 3)).unwrap(), Win);
        assert!(settle_selection(&cs, sc(4, 0), s(4, 0)).is_err());
        assert!(settle_selection(&cs, Outcome::Home, s(1, 0)).is_err());
        let b = MarketKind::BothTeamsToScore;
        for (score, yes) in [
            (s(1, 1), Win),
            (s(2, 0), Lose),
            (s(0, 0), Lose),
            (s(0, 3), Lose),
            (s(3, 2), Win),
        ] {
            assert_eq!(settle_selection(&b, Outcome::Yes, score).unwrap(), yes);
            let no = if yes == Win { Lose } else { Win };
            assert_eq!(settle_selection(&b, Outcome::No, score).unwrap(), no);
        }
        assert!(
            settle_selection(
                &MarketKind::RaceWin { each_way: None },
                Outcome::Runner { id: 1 },
                s(1, 0)
            )
            .is_err()
        );
    }

    proptest::proptest! {
        /// Exactly one correct-score selection wins for any score, and BTTS yes/no are exclusive.
        #[test]
        fn exactly_one_correct_score_wins(h in 0u16..12, a in 0u16..12, max in 1u8..=9) {
            let cs = MarketKind::CorrectScore { max_goals: max };
            let winners = cs.outcomes().iter()
                .filter(|o| settle_selection(&cs, **o, s(h, a)).unwrap() == Win)
                .count();
            proptest::prop_assert_eq!(winners, 1);
            let b = MarketKind::BothTeamsToScore;
            let y = settle_selection(&b, Outcome::Yes, s(h, a)).unwrap();
            let n = settle_selection(&b, Outcome::No, s(h, a)).unwrap();
            proptest::prop_assert!(y != n);
        }
    }

    #[test]
    fn totals_table() {
        let table = [
            ("2.5", s(2, 1), Win, Lose),
            ("2.5", s(1, 1), Lose, Win),
            ("3", s(2, 1), Push, Push),
            ("2.25", s(1, 1), HalfLose, HalfWin),
            ("2.75", s(2, 1), HalfWin, HalfLose),
        ];
        for (line, score, over, under) in table {
            assert_eq!(
                settle_selection(&ou(line), Outcome::Over, score).unwrap(),
                over,
                "over {line}"
            );
            assert_eq!(
                settle_selection(&ou(line), Outcome::Under, score).unwrap(),
                under,
                "under {line}"
            );
        }
        assert!(settle_selection(&ou("2.5"), Outcome::Draw, s(0, 0)).is_err());
    }

    #[test]
    fn accumulator_with_void_leg_pays_remaining_legs() {
        let p = |x: &str| Price::parse(x).unwrap();
        assert_eq!(
            bet_payout_minor(1000, &[(Win, p("2.0")), (Void, p("3.0")), (Win, p("1.5"))]),
            Some(3000)
        );
        assert_eq!(
            bet_payout_minor(1000, &[(Win, p("2.0")), (Lose, p("3.0"))]),
            Some(0)
        );
        assert_eq!(
            bet_payout_minor(1000, &[(HalfWin, p("1.9")), (Win, p("2.0"))]),
            Some(2900)
        );
        assert_eq!(bet_payout_minor(1000, &[(HalfLose, p("1.9"))]), Some(500));
    }

    proptest::proptest! {
        /// Any full-time score settles exactly one 1X2 selection as a winner, and over/under on a
        /// half line are complementary.
        #[test]
        fn one_winner(h in 0u16..12, a in 0u16..12, q in 0i32..30) {
            let winners = [Outcome::Home, Outcome::Draw, Outcome::Away].iter()
                .filter(|o| settle_selection(&MarketKind::MatchResult, **o, s(h, a)).unwrap() == Win).count();
            proptest::prop_assert_eq!(winners, 1);
            let kind = MarketKind::TotalGoals { line: Line(q * 4 + 2) };
            let over = settle_selection(&kind, Outcome::Over, s(h, a)).unwrap();
            let under = settle_selection(&kind, Outcome::Under, s(h, a)).unwrap();
            proptest::prop_assert!((over == Win) != (under == Win));
        }

        /// Asian handicap home and away are mirror images on every line.
        #[test]
        fn ah_mirror(h in 0u16..10, a in 0u16..10, q in -20i32..20) {
            let k = MarketKind::AsianHandicap { home_line: Line(q) };
            let home = settle_selection(&k, Outcome::Home, s(h, a)).unwrap();
            let away = settle_selection(&k, Outcome::Away, s(h, a)).unwrap();
            let mirror = match home { Win => Lose, Lose => Win, HalfWin => HalfLose, HalfLose => HalfWin, x => x };
            proptest::prop_assert_eq!(away, mirror);
        }
    }
}
