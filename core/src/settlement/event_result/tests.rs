use super::*;
use crate::ids::{EventId, SelectionId};
use crate::price::Price;

fn o(outcome: Outcome, won: bool, void: (u64, u64), dh: (u64, u64)) -> OutcomeResult {
    OutcomeResult {
        outcome,
        won,
        void_factor: Factor::new(void.0, void.1),
        dead_heat_factor: Factor::new(dh.0, dh.1),
    }
}
fn mid(s: &str) -> MarketId {
    MarketId::new(s).unwrap()
}
fn outcomes(markets: Vec<(&str, Vec<OutcomeResult>)>) -> EventResult {
    EventResult::Outcomes(
        OutcomeResults::new(
            markets
                .into_iter()
                .map(|(m, outcomes)| MarketResult {
                    market_id: mid(m),
                    outcomes,
                })
                .collect(),
        )
        .unwrap(),
    )
}
fn leg(market: &str, kind: MarketKind, outcome: Outcome, price: &str) -> BetLeg {
    BetLeg {
        selection_id: SelectionId::new(format!("{market}:x")).unwrap(),
        market_id: mid(market),
        event_id: EventId::new("sr:match:1").unwrap(),
        kind,
        outcome,
        price: Price::parse(price).unwrap(),
    }
}

/// Per-outcome results as UOF states them (Sportradar UOF `IOutcomeSettlement`: return =
/// void + (1 − void) × (won ? price × dead_heat : 0)), read as leg results and paid exactly.
#[test]
fn outcome_leg_table() {
    let m = "sr:match:1:1x2";
    // (won, void, dead heat, leg result, return of 1000 at 3.0)
    let table = [
        (true, (0, 1), (1, 1), LegResult::Win, 3000),
        (false, (0, 1), (1, 1), LegResult::Lose, 0),
        (false, (1, 1), (1, 1), LegResult::Void, 1000),
        (true, (1, 2), (1, 1), LegResult::HalfWin, 2000),
        (false, (1, 2), (1, 1), LegResult::HalfLose, 500),
        // Dead heat of two: half the stake at full odds.
        (true, (0, 1), (1, 2), LegResult::Win, 1500),
        // An unusual partial void (UOF allows any factor in [0, 1]): 0.25 back.
        (false, (1, 4), (1, 1), LegResult::Lose, 250),
    ];
    for (won, void, dh, result, ret) in table {
        let r = outcomes(vec![(m, vec![o(Outcome::Home, won, void, dh)])]);
        let l = leg(m, MarketKind::MatchResult, Outcome::Home, "3.0");
        let d = decide_leg(&l, false, UnixMillis(0), &r).unwrap().unwrap();
        assert_eq!(d.result, result, "{won} {void:?} {dh:?}");
        assert_eq!(crate::payout::payout_minor(1000, &[d.win]), Some(ret));
    }
    // A market the result does not cover does not settle the leg yet.
    let r = outcomes(vec![(m, vec![o(Outcome::Home, true, (0, 1), (1, 1))])]);
    let other = leg(
        "sr:match:1:btts",
        MarketKind::BothTeamsToScore,
        Outcome::Yes,
        "2.0",
    );
    assert_eq!(decide_leg(&other, false, UnixMillis(0), &r).unwrap(), None);
    // Neither does an each-way leg on a runner that won (the place part needs a race result).
    let ew = MarketKind::RaceWin {
        each_way: Some(crate::market::EachWayTerms {
            places: 3,
            fraction_num: 1,
            fraction_den: 5,
        }),
    };
    let r = outcomes(vec![(
        "v:win",
        vec![o(Outcome::Runner { id: 1 }, true, (0, 1), (1, 1))],
    )]);
    let l = leg("v:win", ew, Outcome::Runner { id: 1 }, "4.0");
    assert_eq!(decide_leg(&l, true, UnixMillis(0), &r).unwrap(), None);
}

/// Finality: "a result is final only when two sources agree or an operator confirms it"
/// (issue 5); per-outcome results agree market by market.
#[test]
fn agreement_table() {
    let s = |h, a| EventResult::Score(FinalScore { home: h, away: a });
    let rep = |src: &str, r: EventResult| (src.to_string(), r, false);
    assert_eq!(agree(&[]), Agreement::Pending);
    assert_eq!(agree(&[rep("a", s(1, 0))]), Agreement::Pending);
    assert_eq!(
        agree(&[rep("a", s(1, 0)), rep("a", s(1, 0))]),
        Agreement::Pending
    );
    assert_eq!(
        agree(&[rep("a", s(1, 0)), rep("b", s(1, 0))]),
        Agreement::Final(s(1, 0))
    );
    assert!(matches!(
        agree(&[rep("a", s(1, 0)), rep("b", s(2, 0))]),
        Agreement::Conflict(_)
    ));
    assert_eq!(
        agree(&[("operator:x".into(), s(3, 3), true)]),
        Agreement::Final(s(3, 3))
    );
    let m1 = |won| ("m1", vec![o(Outcome::Home, won, (0, 1), (1, 1))]);
    let m2 = ("m2", vec![o(Outcome::Yes, true, (0, 1), (1, 1))]);
    // Market m1 from two sources, m2 from one: only m1 is final.
    assert_eq!(
        agree(&[
            rep("uof", outcomes(vec![m1(true), m2.clone()])),
            rep("file", outcomes(vec![m1(true)])),
        ]),
        Agreement::Final(outcomes(vec![m1(true)]))
    );
    assert!(matches!(
        agree(&[
            rep("uof", outcomes(vec![m1(true)])),
            rep("file", outcomes(vec![m1(false)]))
        ]),
        Agreement::Conflict(_)
    ));
    // A score and per-outcome results do not mix.
    assert!(matches!(
        agree(&[rep("uof", outcomes(vec![m1(true)])), rep("file", s(1, 0))]),
        Agreement::Conflict(_)
    ));
    // Canonical form: the same result stated in another order, with unreduced factors, agrees.
    let a = OutcomeResults::new(vec![MarketResult {
        market_id: mid("m1"),
        outcomes: vec![
            o(Outcome::Away, false, (5, 10), (1, 1)),
            o(Outcome::Home, true, (1, 2), (1, 1)),
        ],
    }])
    .unwrap();
    let b = OutcomeResults::new(vec![MarketResult {
        market_id: mid("m1"),
        outcomes: vec![
            o(Outcome::Home, true, (1, 2), (2, 2)),
            o(Outcome::Away, false, (1, 2), (1, 1)),
        ],
    }])
    .unwrap();
    assert_eq!(a, b);
    assert!(
        OutcomeResults::new(vec![MarketResult {
            market_id: mid("m1"),
            outcomes: vec![o(Outcome::Home, true, (0, 1), (1, 1)); 2],
        }])
        .is_err()
    );
}

/// The result JSON is stable (it is a record payload, `docs/protocol.md`).
#[test]
fn result_json_shape() {
    let r = EventResult::Score(FinalScore { home: 2, away: 1 });
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r#"{"type":"score","home":2,"away":1}"#
    );
    let race = crate::settlement::race_result::RaceResult::new(
        vec![crate::settlement::race_result::Placing {
            runner: 7,
            position: 1,
        }],
        vec![],
        5,
        false,
    )
    .unwrap();
    let j = serde_json::to_string(&EventResult::Race(race.clone())).unwrap();
    assert_eq!(
        j,
        r#"{"type":"race","placings":[{"runner":7,"position":1}],"non_runners":[],"runners":5,"handicap":false}"#
    );
    assert_eq!(
        serde_json::from_str::<EventResult>(&j).unwrap(),
        EventResult::Race(race)
    );
}
