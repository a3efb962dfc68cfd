use crate::api::tests::{call, code, serve};
use crate::test_support::*;
use outpost_core::edge::events::{BetLeg, EdgeEvent};
use outpost_core::ids::{BetId, MarketId, SelectionId};
use outpost_core::market::{EachWayTerms, Market, MarketKind, Outcome};
use outpost_core::price::Price;

fn each_way(b: EdgeEvent) -> EdgeEvent {
    match b {
        EdgeEvent::BetPlaced(mut p) => {
            p.each_way = true;
            EdgeEvent::BetPlaced(p)
        }
        other => other,
    }
}

fn payout(t: &TestHub, bet: &str) -> Option<i64> {
    t.state
        .bet_view(&BetId::new(bet).unwrap())
        .unwrap()
        .unwrap()
        .payout_minor
}

const TERMS: EachWayTerms = EachWayTerms {
    places: 3,
    fraction_num: 1,
    fraction_den: 5,
};

/// Race results through the API: pending on one source, final and settled when a second
/// agrees (each-way placed, win-only lost, a non-runner void with stakes back); a different
/// report after that raises a conflict and changes nothing; a bad result is refused whole.
#[tokio::test]
async fn race_results_two_sources_settle_conflict_holds() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let recs = edge.group(&[
        genesis(),
        each_way(bet("ew-1", 1000, vec![race_leg("r-1", 2, Some(TERMS))])),
        bet("w-1", 1000, vec![race_leg("r-1", 2, None)]),
        each_way(bet("nr-1", 1000, vec![race_leg("r-1", 9, Some(TERMS))])),
        bet("w-2", 1000, vec![race_leg("r-2", 1, None)]),
    ]);
    t.state
        .commit_upstream_blocking(&node_id(), recs, now())
        .unwrap();
    let addr = serve(t.state.clone()).await;
    // 9 ran; one non-runner withdrawn after the bets were struck, at 10p: Rule 4 takes 10p
    // in the pound off their winnings.
    let withdrawn_at_ms = now().0 + 3_600_000;
    let body = |src: &str, winner: u64| {
        format!(
            r#"{{"event_id":"r-1","source":"{src}","runners":9,"handicap":false,
               "placings":[{{"runner":{winner},"position":1}},{{"runner":2,"position":2}},{{"runner":3,"position":3}}],
               "non_runners":[{{"runner":9,"withdrawn_at_ms":{},"deduction_pence":10}}]}}"#,
            withdrawn_at_ms
        )
    };
    let (st, v) = call(
        addr,
        "POST",
        "/v1/results/race",
        Some(&body("racing-post", 1)),
    )
    .await;
    assert_eq!((st, v["status"].as_str()), (202, Some("pending")), "{v}");
    assert_eq!(payout(&t, "ew-1"), None);
    let (st, v) = call(addr, "POST", "/v1/results/race", Some(&body("timeform", 1))).await;
    assert_eq!(
        (st, v["status"].as_str(), v["settled"].as_u64()),
        (201, Some("recorded"), Some(3)),
        "{v}"
    );
    // Each-way £5 a part at 4/1, placed 2nd of 9 (3 places at 1/5), 10p Rule 4: place part
    // 500 × (1 + 4 × 0.9 / 5) = 860; the win part loses.
    assert_eq!(payout(&t, "ew-1"), Some(860));
    assert_eq!(payout(&t, "w-1"), Some(0));
    assert_eq!(payout(&t, "nr-1"), Some(1000));
    // A third source with another winner: conflict, alert, settlement stands.
    let (st, v) = call(addr, "POST", "/v1/results/race", Some(&body("tote", 4))).await;
    assert_eq!((st, code(&v)), (409, "RESULT_CONFLICT"), "{v}");
    assert_eq!(payout(&t, "ew-1"), Some(860));
    let (_, v) = call(addr, "GET", "/v1/alerts", None).await;
    assert_eq!(v["alerts"][0]["event_id"], "r-1", "{v}");

    // Two sources disagree before anything is final: held, nothing settles.
    let two = |src: &str, w: u64| {
        format!(
            r#"{{"event_id":"r-2","source":"{src}","runners":5,"handicap":false,"placings":[{{"runner":{w},"position":1}}]}}"#
        )
    };
    call(addr, "POST", "/v1/results/race", Some(&two("a", 1))).await;
    let (st, _) = call(addr, "POST", "/v1/results/race", Some(&two("b", 3))).await;
    assert_eq!(st, 409);
    assert_eq!(payout(&t, "w-2"), None);
    // An operator confirms: settled.
    let ok = t
        .state
        .confirm_report_blocking(
            &event("r-2"),
            &outpost_core::settlement::event_result::EventResult::Race(
                outpost_core::settlement::race_result::RaceResult::new(
                    vec![outpost_core::settlement::race_result::Placing {
                        runner: 1,
                        position: 1,
                    }],
                    vec![],
                    5,
                    false,
                )
                .unwrap(),
            ),
            "alice",
            now(),
        )
        .unwrap();
    assert_eq!(ok.settled, 1);
    assert_eq!(payout(&t, "w-2"), Some(5000));

    // Unknown race: held for review.
    let (st, v) = call(
        addr,
        "POST",
        "/v1/results/race",
        Some(&two("a", 1).replace("r-2", "r-unknown")),
    )
    .await;
    assert_eq!((st, v["status"].as_str()), (202, Some("held")), "{v}");

    // Bad input: refused, nothing stored.
    let before = t.state.result_view(&event("r-3")).unwrap().reports.len();
    for (bad, want) in [
        (
            r#"{"event_id":"r-3","source":"a","runners":5,"handicap":false,"placings":[{"runner":1,"position":2}]}"#,
            "INVALID_RACE_RESULT",
        ),
        (
            r#"{"event_id":"r-3","source":"a","runners":5,"handicap":false,"placings":[{"runner":1,"position":1}],"non_runners":[{"runner":2,"withdrawn_at_ms":0,"deduction_pence":95}]}"#,
            "INVALID_RACE_RESULT",
        ),
        (
            r#"{"event_id":"r-3","source":"a","runners":5,"handicap":false,"placings":[],"extra":1}"#,
            "INVALID_JSON",
        ),
        (
            r#"{"event_id":"r-3","source":"a","runners":5}"#,
            "INVALID_JSON",
        ),
    ] {
        let (st, v) = call(addr, "POST", "/v1/results/race", Some(bad)).await;
        assert_eq!((st, code(&v)), (400, want), "{bad} {v}");
    }
    assert_eq!(
        t.state.result_view(&event("r-3")).unwrap().reports.len(),
        before
    );
}

fn uof_leg(ev: &str, kind: MarketKind, outcome: Outcome, price: &str) -> BetLeg {
    let event_id = event(ev);
    let market_id = Market::market_id_for(&event_id, &kind);
    BetLeg {
        selection_id: SelectionId::new(format!("{market_id}:{}", outcome.slug())).unwrap(),
        market_id: MarketId::new(market_id.as_str()).unwrap(),
        event_id,
        kind,
        outcome,
        price: Price::parse(price).unwrap(),
    }
}

const UOF: &str = r#"<bet_settlement certainty="2" product="3" event_id="sr:match:42" timestamp="1">
  <outcomes>
    <market id="1"><outcome id="1" result="1"/><outcome id="2" result="0"/><outcome id="3" result="0"/></market>
    <market id="18" specifiers="total=2.25"><outcome id="12" result="1" void_factor="0.5"/><outcome id="13" result="0" void_factor="0.5"/></market>
  </outcomes>
</bet_settlement>"#;

/// UOF bet_settlement through the hub: bad XML refused (line number, nothing stored); the
/// real capture maps to no market we offer; two feeds agreeing settle the bets with UOF's
/// void factor; a rollback_bet_settlement reverses exactly the bets on its market.
#[tokio::test]
async fn uof_bet_settlement_and_rollback() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let total = MarketKind::TotalGoals {
        line: outpost_core::market::Line::parse("2.25").unwrap(),
    };
    let recs = edge.group(&[
        genesis(),
        bet(
            "h-1",
            1000,
            vec![uof_leg(
                "sr:match:42",
                MarketKind::MatchResult,
                Outcome::Home,
                "2.0",
            )],
        ),
        bet(
            "o-1",
            1000,
            vec![uof_leg("sr:match:42", total, Outcome::Over, "1.9")],
        ),
        bet(
            "b-1",
            1000,
            vec![uof_leg(
                "sr:match:42",
                MarketKind::BothTeamsToScore,
                Outcome::Yes,
                "1.8",
            )],
        ),
    ]);
    t.state
        .commit_upstream_blocking(&node_id(), recs, now())
        .unwrap();
    let addr = serve(t.state.clone()).await;

    let (st, v) = call(addr, "POST", "/v1/results/uof", Some("<bet_settlement event_id=\"sr:match:42\" product=\"3\" timestamp=\"1\">\n<outcomes>\n<market id=\"x\"/></outcomes></bet_settlement>")).await;
    assert_eq!((st, code(&v)), (400, "INVALID_UOF_MESSAGE"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 3"),
        "{v}"
    );
    let (st, v) = call(addr, "POST", "/v1/results/uof", Some("<odds_change/>")).await;
    assert_eq!((st, code(&v)), (400, "INVALID_UOF_MESSAGE"), "{v}");
    assert!(
        t.state
            .result_view(&event("sr:match:42"))
            .unwrap()
            .reports
            .is_empty()
    );

    let real = include_str!("../../../fixtures/uof/settlement/bet_settlement.xml");
    let (st, v) = call(addr, "POST", "/v1/results/uof", Some(real)).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("ignored")), "{v}");

    let (st, v) = call(addr, "POST", "/v1/results/uof?source=uof-a", Some(UOF)).await;
    assert_eq!((st, v["status"].as_str()), (202, Some("pending")), "{v}");
    let (st, v) = call(addr, "POST", "/v1/results/uof?source=uof-b", Some(UOF)).await;
    assert_eq!((st, v["settled"].as_u64()), (201, Some(2)), "{v}");
    assert_eq!(payout(&t, "h-1"), Some(2000));
    // Over 2.25 on 2 goals: half void, half won: 500 + 500 × 1.9 = 1450.
    assert_eq!(payout(&t, "o-1"), Some(1450));
    // BTTS is not in the message: still open.
    assert_eq!(payout(&t, "b-1"), None);

    let rollback = r#"<rollback_bet_settlement product="3" event_id="sr:match:42" timestamp="2">
  <market id="1"/>
</rollback_bet_settlement>"#;
    let (st, v) = call(addr, "POST", "/v1/results/uof?source=uof-a", Some(rollback)).await;
    assert_eq!((st, v["reversed"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(v["bets"][0], "h-1");
    assert_eq!(payout(&t, "h-1"), None);
    assert_eq!(payout(&t, "o-1"), Some(1450));
}

/// Operator confirm and correct over HTTP for races and per-outcome results: a race held by
/// two disagreeing sources is confirmed (settled once); a correction of the final race
/// reverses each settlement by a compensating record and settles the new version (the bet
/// keeps both settlements in its history); the same correction again changes nothing;
/// per-outcome results are confirmed the same way; bad operator requests change nothing.
#[tokio::test]
async fn operator_confirms_and_corrects_races_and_outcomes_over_http() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let recs = edge.group(&[
        genesis(),
        each_way(bet("ew-1", 1000, vec![race_leg("r-1", 2, Some(TERMS))])),
        bet("w-1", 1000, vec![race_leg("r-1", 1, None)]),
        bet(
            "h-1",
            1000,
            vec![uof_leg(
                "sr:match:7",
                MarketKind::MatchResult,
                Outcome::Home,
                "2.0",
            )],
        ),
    ]);
    t.state
        .commit_upstream_blocking(&node_id(), recs, now())
        .unwrap();
    let addr = serve(t.state.clone()).await;
    let race = |src: &str, first: u64, second: u64| {
        format!(
            r#"{{"event_id":"r-1","source":"{src}","runners":8,"handicap":false,
               "placings":[{{"runner":{first},"position":1}},{{"runner":{second},"position":2}},{{"runner":3,"position":3}}]}}"#
        )
    };
    call(addr, "POST", "/v1/results/race", Some(&race("a", 1, 2))).await;
    let (st, _) = call(addr, "POST", "/v1/results/race", Some(&race("b", 2, 1))).await;
    assert_eq!(st, 409);
    assert_eq!(payout(&t, "w-1"), None);

    // Confirm: 1 won from 2 (8 ran: 3 places at 1/5 as struck).
    let confirm = r#"{"operator":"alice","runners":8,"handicap":false,
        "placings":[{"runner":1,"position":1},{"runner":2,"position":2},{"runner":3,"position":3}]}"#;
    let (st, v) = call(addr, "POST", "/v1/results/r-1/confirm", Some(confirm)).await;
    assert_eq!(
        (st, v["status"].as_str(), v["settled"].as_u64()),
        (201, Some("recorded"), Some(2)),
        "{v}"
    );
    assert_eq!(payout(&t, "w-1"), Some(5000));
    // Each-way 500 a part at 4/1, 2nd: place part 500 × (1 + 4/5) = 900, win part lost.
    assert_eq!(payout(&t, "ew-1"), Some(900));
    // Confirming the same result again: nothing new.
    let (st, v) = call(addr, "POST", "/v1/results/r-1/confirm", Some(confirm)).await;
    assert_eq!((st, v["settled"].as_u64()), (200, Some(0)), "{v}");
    // Confirming a different race now is a correction, refused here.
    let other = confirm.replace(
        r#""runner":1,"position":1},{"runner":2,"#,
        r#""runner":2,"position":1},{"runner":1,"#,
    );
    let (st, v) = call(addr, "POST", "/v1/results/r-1/confirm", Some(&other)).await;
    assert_eq!((st, code(&v)), (409, "RESULT_ALREADY_FINAL"), "{v}");
    assert_eq!(payout(&t, "w-1"), Some(5000));

    // Correct: the stewards reversed 1 and 2. Both bets reversed and settled again.
    let correct = other.replace(
        r#""operator":"alice","#,
        r#""operator":"alice","reason":"stewards' inquiry","#,
    );
    let (st, v) = call(addr, "POST", "/v1/results/r-1/correct", Some(&correct)).await;
    assert_eq!(
        (
            st,
            v["status"].as_str(),
            v["reversed"].as_u64(),
            v["settled"].as_u64(),
            v["result_version"].as_u64()
        ),
        (201, Some("corrected"), Some(2), Some(2), Some(2)),
        "{v}"
    );
    assert_eq!(payout(&t, "w-1"), Some(0));
    // Won: win part 500 × 5 = 2500, place part 900: 3400.
    assert_eq!(payout(&t, "ew-1"), Some(3400));
    let b = t
        .state
        .bet_view(&BetId::new("ew-1").unwrap())
        .unwrap()
        .unwrap();
    let history: Vec<(u32, i64)> = b
        .settlements
        .iter()
        .map(|s| (s.result_version, s.payout_minor))
        .collect();
    assert_eq!(history, [(1, 900), (2, 3400)], "{b:?}");
    let (st, v) = call(addr, "POST", "/v1/results/r-1/correct", Some(&correct)).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("unchanged")), "{v}");
    let (_, v) = call(addr, "GET", "/v1/results/r-1", None).await;
    assert_eq!(v["versions"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        v["versions"][1]["result"]["placings"][0]["runner"], 2,
        "{v}"
    );

    // Per-outcome results: an operator confirms a market of an event no source reported.
    let markets = r#"{"operator":"bob","markets":[{"market_id":"sr:match:7:1x2","outcomes":[
        {"outcome":"home","won":true,"void_factor":{"num":0,"den":1},"dead_heat_factor":{"num":1,"den":1}},
        {"outcome":"away","won":false,"void_factor":{"num":0,"den":1},"dead_heat_factor":{"num":1,"den":1}}]}]}"#;
    let (st, v) = call(
        addr,
        "POST",
        "/v1/results/sr:match:7/confirm",
        Some(markets),
    )
    .await;
    assert_eq!((st, v["settled"].as_u64()), (201, Some(1)), "{v}");
    assert_eq!(payout(&t, "h-1"), Some(2000));

    // Bad operator requests: coded 4xx, nothing changes.
    let cases: &[(&str, &str, &str)] = &[
        ("confirm", r#"{"operator":"a"}"#, "INVALID_RESULT"),
        (
            "confirm",
            r#"{"operator":"a","home_goals":1,"away_goals":0,"runners":5,"handicap":false,"placings":[]}"#,
            "INVALID_RESULT",
        ),
        (
            "confirm",
            r#"{"operator":"a","runners":5}"#,
            "INVALID_RESULT",
        ),
        (
            "confirm",
            r#"{"operator":"a","runners":5,"handicap":false,"placings":[{"runner":1,"position":2}]}"#,
            "INVALID_RACE_RESULT",
        ),
        (
            "confirm",
            r#"{"operator":"a","reason":"r","runners":5,"handicap":false,"placings":[{"runner":1,"position":1}]}"#,
            "INVALID_REQUEST",
        ),
        (
            "correct",
            r#"{"operator":"a","runners":5,"handicap":false,"placings":[{"runner":1,"position":1}]}"#,
            "INVALID_REQUEST",
        ),
        (
            "confirm",
            r#"{"operator":"a","markets":[{"market_id":"other/1x2","outcomes":[]}]}"#,
            "INVALID_RESULT",
        ),
        (
            "confirm",
            r#"{"operator":"a","markets":[{"market_id":"r-9:1x2","outcomes":[{"outcome":"home","won":true,"void_factor":{"num":2,"den":1},"dead_heat_factor":{"num":1,"den":1}}]}]}"#,
            "INVALID_RESULT",
        ),
        (
            "confirm",
            r#"{"operator":"a","markets":[]}"#,
            "INVALID_RESULT",
        ),
    ];
    for (verb, body, want) in cases {
        let (st, v) = call(addr, "POST", &format!("/v1/results/r-9/{verb}"), Some(body)).await;
        assert_eq!((st, code(&v)), (400, *want), "{verb} {body} {v}");
    }
    assert!(
        t.state
            .result_view(&event("r-9"))
            .unwrap()
            .reports
            .is_empty()
    );
    assert_eq!(payout(&t, "ew-1"), Some(3400));
}

/// Race results files through the API: a malformed file is refused whole with every bad
/// line's number and nothing is stored; two providers' files agree and settle (Rule 4 by the
/// time each bet was struck: the non-runner withdrawn after the bets takes its 20p, the one
/// withdrawn before them nothing); a race no market or bet is known for is held for review;
/// the same file again changes nothing.
#[tokio::test]
async fn race_results_files_refused_whole_or_settled() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let recs = edge.group(&[
        genesis(),
        bet("w-1", 1000, vec![race_leg("r-1", 1, None)]),
        each_way(bet("ew-1", 1000, vec![race_leg("r-1", 2, Some(TERMS))])),
    ]);
    t.state
        .commit_upstream_blocking(&node_id(), recs, now())
        .unwrap();
    let addr = serve(t.state.clone()).await;
    const HEAD: &str = "event_id,runner,finish,withdrawn_at,rule4_pence,runners,handicap\n";

    let bad = format!(
        "{HEAD}r-1,1,1,,,8,no\nr-1,2,2,,,8,no\nr-1,9,NR,2099-01-01T00:00:00Z,120,8,no\nr-x,4,2,,,6,no\nr-1,3,3,,,8\n"
    );
    let (st, v) = call(addr, "POST", "/v1/results/race-file?source=pa", Some(&bad)).await;
    assert_eq!((st, code(&v)), (400, "INVALID_RESULTS_FILE"), "{v}");
    let lines: Vec<u64> = v["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 5, 6], "{v}");
    assert!(
        t.state
            .result_view(&event("r-1"))
            .unwrap()
            .reports
            .is_empty()
    );
    assert!(
        t.state
            .result_view(&event("r-x"))
            .unwrap()
            .reports
            .is_empty()
    );

    // The NR withdrawn in 2099 is withdrawn after the bets (20p); the one in 2000 before (none).
    let good = format!(
        "{HEAD}r-1,3,3,,,8,no\nr-1,1,1,,,8,no\nr-1,2,2,,,8,no\nr-1,9,NR,2099-01-01T00:00:00Z,20,8,no\nr-1,10,NR,2000-01-01T00:00:00Z,15,8,no\nr-x,4,1,,,6,no\n"
    );
    let (st, v) = call(addr, "POST", "/v1/results/race-file?source=pa", Some(&good)).await;
    assert_eq!(
        (
            st,
            v["rows"].as_u64(),
            v["pending"].as_u64(),
            v["held"].as_u64()
        ),
        (200, Some(2), Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(payout(&t, "w-1"), None);
    let (_, v) = call(addr, "GET", "/v1/alerts", None).await;
    assert_eq!(v["alerts"][0]["event_id"], "r-x", "{v}");
    let (st, v) = call(
        addr,
        "POST",
        "/v1/results/race-file?source=timeform",
        Some(&good),
    )
    .await;
    assert_eq!(
        (st, v["recorded"].as_u64(), v["settled"].as_u64()),
        (200, Some(1), Some(2)),
        "{v}"
    );
    // Win 1000 at 4/1 less 20p in the pound: 1000 + 4000 × 0.8 = 4200.
    assert_eq!(payout(&t, "w-1"), Some(4200));
    // Each-way on the 2nd, 8 ran (3 places at 1/5): place part 500 × (1 + 4 × 0.8 / 5) = 820.
    assert_eq!(payout(&t, "ew-1"), Some(820));
    // The same file again: nothing changes.
    let (_, v) = call(
        addr,
        "POST",
        "/v1/results/race-file?source=timeform",
        Some(&good),
    )
    .await;
    assert_eq!(
        (v["unchanged"].as_u64(), v["settled"].as_u64()),
        (Some(1), Some(0)),
        "{v}"
    );
    assert_eq!(payout(&t, "w-1"), Some(4200));

    let (st, v) = call(addr, "POST", "/v1/results/race-file", Some(&good)).await;
    assert_eq!((st, code(&v)), (400, "INVALID_QUERY"), "{v}");
}
