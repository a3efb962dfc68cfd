//! A whole real season through the settlement engine: the 380 Premier League 2023/24 matches
//! from football-data.co.uk (prices and results) and openfootball (independent results), both
//! vendored under `fixtures/` (see `fixtures/README.md` for sources and licences).
//!
//! The expected counts below were measured on the vendored files and cross-checked with an
//! independent script; they pin the data as much as the code.

use outpost_core::fixtures::{FixtureOdds, ResultRow, event_id, parse_matches, parse_results};
use outpost_core::market::{Line, Market, MarketKind, Outcome};
use outpost_core::price::Price;
use outpost_core::settle::{FinalScore, LegResult, bet_payout_minor, settle_selection};
use outpost_core::time::CivilDate;
use std::collections::HashMap;

const E0_2324_CSV: &str = include_str!("../../fixtures/football-data/E0_2324.csv");
const E0_2324_JSON: &str = include_str!("../../fixtures/openfootball/2023-24/en.1.json");

fn season() -> Vec<FixtureOdds> {
    parse_matches(E0_2324_CSV, "E0").expect("the vendored CSV parses")
}

fn market(f: &FixtureOdds, pred: impl Fn(&MarketKind) -> bool) -> Option<&Market> {
    f.markets.iter().find(|m| pred(&m.kind))
}

fn score(f: &FixtureOdds) -> FinalScore {
    f.full_time.expect("every 2023/24 match was played")
}

#[test]
fn a_all_rows_parse_with_three_markets() {
    let rows = season();
    assert_eq!(rows.len(), 380);
    let (mut no_1x2, mut no_ou, mut no_ah, mut not_b365) = (0, 0, 0, 0);
    for f in &rows {
        let one_x_two = market(f, |k| *k == MarketKind::MatchResult);
        let ou = market(f, |k| *k == MarketKind::TotalGoals { line: Line(10) });
        let ah = market(f, |k| matches!(k, MarketKind::AsianHandicap { .. }));
        no_1x2 += one_x_two.is_none() as u32;
        no_ou += ou.is_none() as u32;
        no_ah += ah.is_none() as u32;
        for m in &f.markets {
            assert_eq!(m.event_id, f.event.event_id);
            assert_eq!(m.selections.len(), m.kind.outcomes().len());
            for s in &m.selections {
                assert_eq!(
                    s.selection_id,
                    Market::selection_id_for(&m.market_id, s.outcome)
                );
            }
        }
        // Bet365 priced every market in this season, so the `Avg*` fallback is never used.
        if let Some(m) = one_x_two {
            let b365h = Price::parse_rounding_down(cell(f, "B365H")).unwrap();
            not_b365 += (m.selections[0].price != b365h) as u32;
        }
        assert_eq!(f.event.competition, "English Premier League");
    }
    assert_eq!((no_1x2, no_ou, no_ah, not_b365), (0, 0, 0, 0));

    // Spot checks against the file.
    let first = &rows[0];
    assert_eq!(
        first.event.event_id.as_str(),
        "E0-20230811-burnley-man-city"
    );
    assert_eq!(
        first.event.kickoff,
        outpost_core::time::UnixMillis(1_691_784_000_000)
    ); // 20:00 "UTC"
    let last = &rows[379];
    assert_eq!(
        last.event.event_id.as_str(),
        "E0-20240519-sheffield-united-tottenham"
    );
    assert_eq!(last.full_time, Some(FinalScore { home: 0, away: 3 }));

    // Asian handicap lines: 202 quarter lines, 22 matches on the whole lines 0, ±1, ±2 that
    // pushed (measured below), and the range quoted in the data README.
    let lines: Vec<Line> = rows
        .iter()
        .filter_map(
            |f| match market(f, |k| matches!(k, MarketKind::AsianHandicap { .. }))?.kind {
                MarketKind::AsianHandicap { home_line } => Some(home_line),
                _ => None,
            },
        )
        .collect();
    assert_eq!(lines.iter().filter(|l| l.is_quarter()).count(), 202);
    assert_eq!(lines.iter().min(), Some(&Line(-11)));
    assert_eq!(lines.iter().max(), Some(&Line(9)));
}

/// The raw CSV cell of a row, found by event id (for cross-checks against the parser).
fn cell(f: &FixtureOdds, column: &str) -> &'static str {
    let mut lines = E0_2324_CSV.lines();
    let header: Vec<&str> = lines.next().unwrap().trim_end().split(',').collect();
    let col = header.iter().position(|h| *h == column).unwrap();
    let (date_col, home_col, away_col) = (1, 3, 4);
    for line in lines {
        let cells: Vec<&str> = line.trim_end().split(',').collect();
        let (d, m, y) = (
            &cells[date_col][0..2],
            &cells[date_col][3..5],
            &cells[date_col][6..10],
        );
        let date = CivilDate::parse(&format!("{y}-{m}-{d}")).unwrap();
        if event_id("E0", date, cells[home_col], cells[away_col]) == f.event.event_id {
            return cells[col];
        }
    }
    panic!("{} not in the CSV", f.event.event_id)
}

#[test]
fn b_1x2_and_totals_settle_like_the_file() {
    let rows = season();
    let mut overs = 0;
    let mut by_ftr: HashMap<char, u32> = HashMap::new();
    for f in &rows {
        let s = score(f);
        let ftr = f.ftr.expect("FTR is present");
        *by_ftr.entry(ftr).or_default() += 1;

        let m = market(f, |k| *k == MarketKind::MatchResult).unwrap();
        let winners: Vec<Outcome> = m
            .selections
            .iter()
            .filter(|sel| settle_selection(&m.kind, sel.outcome, s).unwrap() == LegResult::Win)
            .map(|sel| sel.outcome)
            .collect();
        let expected = match ftr {
            'H' => Outcome::Home,
            'D' => Outcome::Draw,
            _ => Outcome::Away,
        };
        assert_eq!(winners, [expected], "{}", f.event.event_id);
        for sel in &m.selections {
            let r = settle_selection(&m.kind, sel.outcome, s).unwrap();
            assert!(
                matches!(r, LegResult::Win | LegResult::Lose),
                "1X2 never pushes"
            );
        }

        let m = market(f, |k| *k == MarketKind::TotalGoals { line: Line(10) }).unwrap();
        let over = settle_selection(&m.kind, Outcome::Over, s).unwrap();
        let under = settle_selection(&m.kind, Outcome::Under, s).unwrap();
        let goals = s.home + s.away;
        assert_eq!(over == LegResult::Win, goals >= 3, "{}", f.event.event_id);
        assert_eq!(under == LegResult::Win, goals <= 2, "{}", f.event.event_id);
        assert_ne!(over, under, "a half line has exactly one winner");
        overs += (over == LegResult::Win) as u32;
    }
    // Known fact from the data README: Over 2.5 landed in 246 of 380 matches.
    assert_eq!(overs, 246);
    assert_eq!((by_ftr[&'H'], by_ftr[&'D'], by_ftr[&'A']), (175, 82, 123));
}

#[test]
fn c_openfootball_agrees_with_football_data() {
    let odds = season();
    let results = parse_results(E0_2324_JSON, "E0").expect("the vendored JSON parses");
    assert_eq!(results.len(), 380);
    let by_id: HashMap<_, &ResultRow> = results.iter().map(|r| (r.event_id.clone(), r)).collect();
    assert_eq!(by_id.len(), 380, "event ids are unique");
    for f in &odds {
        let r = by_id
            .get(&f.event.event_id)
            .unwrap_or_else(|| panic!("{} missing from openfootball", f.event.event_id));
        assert_eq!(r.score, score(f), "{}", f.event.event_id);
        assert_eq!(
            (r.home.as_str(), r.away.as_str()),
            (f.event.home.as_str(), f.event.away.as_str())
        );
        assert_eq!(r.date, f.event.kickoff.date());
    }
}

#[test]
fn d_asian_handicap_quarter_lines_split() {
    use LegResult::*;
    let rows = season();
    // Home-side results, split by quarter vs whole/half lines.
    let mut quarter: HashMap<LegResult, u32> = HashMap::new();
    let mut other: HashMap<LegResult, u32> = HashMap::new();
    for f in &rows {
        let s = score(f);
        let m = market(f, |k| matches!(k, MarketKind::AsianHandicap { .. })).unwrap();
        let MarketKind::AsianHandicap { home_line } = m.kind else {
            unreachable!()
        };
        let home = settle_selection(&m.kind, Outcome::Home, s).unwrap();
        let away = settle_selection(&m.kind, Outcome::Away, s).unwrap();
        let mirror = match home {
            Win => Lose,
            Lose => Win,
            HalfWin => HalfLose,
            HalfLose => HalfWin,
            x => x,
        };
        assert_eq!(away, mirror, "{}", f.event.event_id);

        if home_line.is_quarter() {
            // A quarter line is half the stake on each neighbouring line; settle those
            // independently and combine.
            let half = |q: i32| {
                settle_selection(
                    &MarketKind::AsianHandicap { home_line: Line(q) },
                    Outcome::Home,
                    s,
                )
                .unwrap()
            };
            let (lo, hi) = (half(home_line.0 - 1), half(home_line.0 + 1));
            let combined = match (lo, hi) {
                (Win, Win) => Win,
                (Lose, Lose) => Lose,
                (Win, Push) | (Push, Win) => HalfWin,
                (Lose, Push) | (Push, Lose) => HalfLose,
                other => panic!("neighbouring lines split into {other:?}"),
            };
            assert_eq!(home, combined, "{}", f.event.event_id);
            assert_ne!(home, Push, "a quarter line cannot push");

            // Half results pay exactly half the stake at the price plus half back (or half back).
            let sel = &m.selections[0];
            let p = sel.price.milli() as i64;
            match home {
                HalfWin => assert_eq!(
                    bet_payout_minor(1000, &[(home, sel.price)]),
                    Some((1000 * (p + 1000)) / 2000)
                ),
                HalfLose => assert_eq!(bet_payout_minor(1000, &[(home, sel.price)]), Some(500)),
                _ => {}
            }
            *quarter.entry(home).or_default() += 1;
        } else {
            assert!(matches!(home, Win | Lose | Push), "{}", f.event.event_id);
            // Only whole lines can push.
            if home == Push {
                assert_eq!(home_line.0 % 4, 0);
            }
            *other.entry(home).or_default() += 1;
        }
    }
    let get = |m: &HashMap<LegResult, u32>, r| m.get(&r).copied().unwrap_or(0);
    assert!(get(&quarter, HalfWin) + get(&quarter, HalfLose) > 0);
    assert_eq!(
        (
            get(&quarter, Win),
            get(&quarter, HalfWin),
            get(&quarter, HalfLose),
            get(&quarter, Lose)
        ),
        (68, 35, 27, 72)
    );
    assert_eq!(
        (get(&other, Win), get(&other, Push), get(&other, Lose)),
        (76, 22, 80)
    );
}

#[test]
fn e_ten_pound_singles_on_winning_1x2_selections() {
    let rows = season();
    let stake_minor = 1000; // £10.00
    let mut total = 0i64;
    for f in &rows {
        let m = market(f, |k| *k == MarketKind::MatchResult).unwrap();
        for sel in &m.selections {
            let r = settle_selection(&m.kind, sel.outcome, score(f)).unwrap();
            let paid = bet_payout_minor(stake_minor, &[(r, sel.price)]).unwrap();
            if r == LegResult::Win {
                let expected = (stake_minor as u128 * sel.price.milli() as u128 / 1000) as i64;
                assert_eq!(paid, expected, "{}", sel.selection_id);
                total += paid;
            } else {
                assert_eq!(paid, 0);
            }
        }
    }
    // £10 on all 1,140 selections at Bet365's pre-match prices (£11,400 staked) returns
    // £10,204.80: the book's margin, measured over a whole season.
    assert_eq!(total, 1_020_480);
}
