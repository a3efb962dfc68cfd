//! Table tests for the basic results (win, lose, void, push) and Asian-handicap quarter lines,
//! as payouts in minor units. The rules themselves live in [`crate::settle`] (`LegResult` →
//! exact [`crate::payout::Factor`]); this file pins them to their sources.
//!
//! Sources:
//! - Win / lose / void: a winning bet returns stake × decimal price, a losing bet nothing, a
//!   void bet its stake (Sportradar UOF `bet_settlement` `result` 1 / 0, `bet_cancel` and
//!   `void_factor` 1; Tattersalls' Rules on Betting: on a void bet the stake is returned).
//! - Push: a whole-number handicap or total landing exactly on the line returns the stake
//!   (Pinnacle's Asian Handicap betting rules: when the handicap equals the winning margin the
//!   stake is refunded).
//! - Quarter lines (−0.25, +0.75, 2.25 …): the stake is split equally over the two neighbouring
//!   half/whole lines, so a result can be a half win (half at the price, half refunded) or a
//!   half loss (half lost, half refunded) (Pinnacle's Asian Handicap rules; UOF encodes the same as
//!   `result` with `void_factor="0.5"`, see [`super::void_factor`]).

#[cfg(test)]
mod tests {
    use crate::market::{Line, MarketKind, Outcome};
    use crate::payout::payout_minor;
    use crate::price::Price;
    use crate::settle::{FinalScore, LegResult, settle_selection};

    fn pay(r: LegResult, price: &str, stake: i64) -> Option<i64> {
        payout_minor(stake, &[r.factor(Price::parse(price).unwrap())])
    }

    /// Win, lose, void, push on £10 (1000p) at 2.50.
    #[test]
    fn win_lose_void_push_table() {
        let table = [
            (LegResult::Win, 2500),
            (LegResult::Lose, 0),
            (LegResult::Void, 1000),
            (LegResult::Push, 1000),
        ];
        for (r, paid) in table {
            assert_eq!(pay(r, "2.5", 1000), Some(paid), "{r:?}");
        }
        // Rounding down once: 33p at 1.909 is 62.997p → 62p.
        assert_eq!(pay(LegResult::Win, "1.909", 33), Some(62));
    }

    /// Asian handicap, home side, £10 at 1.90, by line and final score (Pinnacle rules).
    #[test]
    fn asian_handicap_quarter_lines_table() {
        let table = [
            // (home line, home goals, away goals, result, payout)
            ("-0.25", 1, 1, LegResult::HalfLose, 500),
            ("-0.25", 2, 1, LegResult::Win, 1900),
            ("+0.25", 1, 1, LegResult::HalfWin, 1450),
            ("-0.75", 2, 1, LegResult::HalfWin, 1450),
            ("-0.75", 3, 1, LegResult::Win, 1900),
            ("+0.75", 0, 1, LegResult::HalfLose, 500),
            ("-1", 2, 1, LegResult::Push, 1000),
            ("-1.25", 2, 1, LegResult::HalfLose, 500),
            ("-1.5", 2, 1, LegResult::Lose, 0),
            ("0", 0, 0, LegResult::Push, 1000),
        ];
        for (line, h, a, result, paid) in table {
            let kind = MarketKind::AsianHandicap {
                home_line: Line::parse(line).unwrap(),
            };
            let r =
                settle_selection(&kind, Outcome::Home, FinalScore { home: h, away: a }).unwrap();
            assert_eq!(r, result, "{line} {h}-{a}");
            assert_eq!(pay(r, "1.9", 1000), Some(paid), "{line} {h}-{a}");
        }
    }
}
