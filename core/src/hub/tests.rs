use super::*;
use crate::edge::events::{BetLeg, IdemTag};
use crate::ids::{IdemKey, MarketId, SelectionId};
use crate::market::{EachWayTerms, MarketKind, Outcome};
use crate::price::Price;
use crate::settlement::race_result::{NonRunner, Placing, RaceResult};
use crate::settlement::rule4::Deduction;

fn bet(each_way: bool, stake: i64, runner: u64, kind: MarketKind) -> BetPlaced {
    let ev = EventId::new("bf:28262365:2017-06-14T13:15").unwrap();
    let market = MarketId::new(format!("{ev}:win")).unwrap();
    BetPlaced {
        bet_id: BetId::new("b-1").unwrap(),
        player_id: PlayerId::new("p-1").unwrap(),
        currency: Currency::GBP,
        stake_minor: stake,
        potential_payout_minor: 0,
        legs: vec![BetLeg {
            selection_id: SelectionId::new(format!("{market}:r{runner}")).unwrap(),
            market_id: market,
            event_id: ev,
            kind,
            outcome: Outcome::Runner { id: runner },
            price: Price::parse("5.0").unwrap(),
        }],
        idem: IdemTag {
            key: IdemKey::new("k-1").unwrap(),
            request_sha256: "0".repeat(64),
        },
        each_way,
    }
}

/// An each-way bet (£10 total, £5 a part) at 4/1 with 1/4 odds 3 places on a 12-runner
/// handicap, settled from a race result by `settle_bet`: the record carries the leg result and
/// the exact factors, and the payout is the each-way rule's (`settlement::each_way_bet`).
#[test]
fn each_way_bet_settles_from_a_race_result() {
    let terms = EachWayTerms {
        places: 3,
        fraction_num: 1,
        fraction_den: 4,
    };
    let race = RaceResult::new(
        vec![
            Placing {
                runner: 1,
                position: 1,
            },
            Placing {
                runner: 2,
                position: 2,
            },
            Placing {
                runner: 3,
                position: 3,
            },
        ],
        vec![NonRunner {
            runner: 9,
            withdrawn_at: UnixMillis(5_000),
            deduction: Deduction(10),
        }],
        12,
        true,
    )
    .unwrap();
    let result = EventResult::Race(race);
    let node = NodeId::new("gb-1").unwrap();
    let kind = MarketKind::RaceWin {
        each_way: Some(terms),
    };
    // (runner, struck at, leg result, payout): placed 2nd after the withdrawal: 500 × (1 +
    // 4/4) = 1000; won before it (10p): win 500 × (1 + 4 × 0.9) = 2300, place 500 × (1 +
    // 0.9) = 950; a non-runner returns both parts.
    let table = [
        (2, 9_000, LegResult::Placed, 1000),
        (1, 1_000, LegResult::Win, 3250),
        (9, 1_000, LegResult::Void, 1000),
        (4, 9_000, LegResult::Lose, 0),
    ];
    for (runner, struck, leg, payout) in table {
        let b = bet(true, 1000, runner, kind);
        let s = settle_bet(&node, &b, UnixMillis(struck), |_| Some((&result, 1)))
            .unwrap()
            .unwrap();
        assert_eq!(
            (s.leg_results[0], s.payout_minor),
            (leg, payout),
            "r{runner}"
        );
        assert_eq!(s.leg_factors.len(), 1);
        assert!(s.leg_factors[0].place.is_some());
        // The payload round-trips, `placed` included.
        let ev = HubEvent::Settlement(s.clone());
        assert_eq!(
            HubEvent::from_payload(RecordKind::HubSettlement, &ev.to_payload()).unwrap(),
            ev
        );
    }
    // An odd each-way stake cannot be two equal parts.
    assert!(
        settle_bet(&node, &bet(true, 1001, 1, kind), UnixMillis(0), |_| Some((
            &result, 1
        )))
        .is_err()
    );
    // A race result announced down the chain is kind 72 and round-trips.
    let ev = result_event(
        EventId::new("e").unwrap(),
        result.clone(),
        1,
        "agreed".into(),
    );
    assert_eq!(ev.kind(), RecordKind::HubEventResult);
    assert_eq!(
        HubEvent::from_payload(ev.kind(), &ev.to_payload()).unwrap(),
        ev
    );
}

/// Football settlements are byte-for-byte what they were: no `leg_factors` field, and a
/// score is still announced as a `HubResult` (kind 64).
#[test]
fn score_records_are_unchanged() {
    let score = EventResult::Score(FinalScore { home: 1, away: 0 });
    let mut b = bet(false, 1000, 0, MarketKind::MatchResult);
    b.legs[0].outcome = Outcome::Home;
    let s = settle_bet(&NodeId::new("gb-1").unwrap(), &b, UnixMillis(0), |_| {
        Some((&score, 3))
    })
    .unwrap()
    .unwrap();
    assert_eq!(s.payout_minor, 5000);
    let json = String::from_utf8(HubEvent::Settlement(s).to_payload()).unwrap();
    assert!(!json.contains("leg_factors"), "{json}");
    let ev = result_event(EventId::new("e").unwrap(), score, 1, "x".into());
    assert_eq!(ev.kind(), RecordKind::HubResult);
}
