use super::*;
use crate::payout::payout_minor;

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn at(runner: u64, position: u16) -> Placing {
    Placing { runner, position }
}
const T0: UnixMillis = UnixMillis(1_000_000);
fn nr(runner: u64, minute: i64, pence: u8) -> NonRunner {
    NonRunner {
        runner,
        withdrawn_at: UnixMillis(T0.0 + minute * 60_000),
        deduction: Deduction(pence),
    }
}
const FIFTH_3: EachWayTerms = EachWayTerms {
    places: 3,
    fraction_num: 1,
    fraction_den: 5,
};

/// A 9-runner non-handicap: 1 won, 2 and 3 dead-heated for 2nd, 4 fourth; runner 9 withdrawn
/// at minute 10 with a 25p deduction (Rule 4(c): 5/2 to 3/1). Runner 8 withdrawn at minute
/// 20 at over 14/1 (0p).
fn race() -> RaceResult {
    RaceResult::new(
        vec![at(3, 2), at(1, 1), at(2, 2), at(4, 4)],
        vec![nr(9, 10, 25), nr(8, 20, 0)],
        9,
        false,
    )
    .unwrap()
}

/// Each row: leg kind, runner, each-way, minute struck, expected result, and the return of
/// a 1000p stake (each-way: 1000p a part) at 6.0 (5/1). Sources: Tattersalls Rule 4(c)
/// (deduction by time struck, winnings only), the dead-heat rule (stake divided by the number
/// tied for the last paid place) and the standard each-way terms (module docs).
#[test]
fn race_leg_table() {
    let r = race();
    let win = MarketKind::RaceWin { each_way: None };
    let ew = MarketKind::RaceWin {
        each_way: Some(FIFTH_3),
    };
    let place2 = MarketKind::RacePlace { places: 2 };
    use LegResult::*;
    // (kind, runner, each way, minute struck, result, return)
    let table: &[(&MarketKind, u64, bool, i64, LegResult, i64)] = &[
        // Winner, struck after every withdrawal: 1000 × 6 = 6000.
        (&win, 1, false, 30, Win, 6000),
        // Struck before runner 9's withdrawal: winnings 5000 × 0.75 → 1000 + 3750.
        (&win, 1, false, 0, Win, 4750),
        // Dead heat for 2nd in a win market: lost.
        (&win, 2, false, 30, Lose, 0),
        // Non-runner: void, stake back, no deduction.
        (&win, 9, false, 0, Void, 1000),
        // Runner not listed: ran unplaced.
        (&win, 5, false, 30, Lose, 0),
        // Each-way winner, 9 ran: 3 places at 1/5: 6000 + 1000 × (1 + 5/5) = 8000.
        (&ew, 1, true, 30, Win, 8000),
        // Each-way, 2nd in a dead heat of two: places 2 and 3 both paid: 2000.
        (&ew, 2, true, 30, Placed, 2000),
        // 4th: lost both parts.
        (&ew, 4, true, 30, Lose, 0),
        // Each-way winner struck before the 25p withdrawal: win 1000 + 3750; place 1000 +
        // 3750/5 = 1750: 6500.
        (&ew, 1, true, 0, Win, 6500),
        // Place market of 2 places: 2nd of a dead heat of two for 2nd: half the stake at
        // full odds: 1000 / 2 × 6 = 3000.
        (&place2, 3, false, 30, Win, 3000),
        (&place2, 1, false, 30, Win, 6000),
        (&place2, 4, false, 30, Lose, 0),
    ];
    for &(kind, runner, each_way, minute, result, ret) in table {
        let leg = decide_race_leg(
            kind,
            Outcome::Runner { id: runner },
            p("6.0"),
            each_way,
            UnixMillis(T0.0 + minute * 60_000),
            &r,
        )
        .unwrap();
        let paid = if each_way {
            crate::payout::payout_sum_minor(1000, &[&[leg.win], &[leg.place]]).unwrap()
        } else {
            payout_minor(1000, &[leg.win]).unwrap()
        };
        assert_eq!(
            (leg.result, paid),
            (result, ret),
            "{kind:?} r{runner} {minute}"
        );
    }
}

/// Place terms by the field that ran (standard UK each-way terms, `super::each_way`).
#[test]
fn effective_place_terms_table() {
    let q = |places| PlaceTerms {
        places,
        fraction: Factor::new(1, 4),
    };
    let f = |places| PlaceTerms {
        places,
        fraction: Factor::new(1, 5),
    };
    let extra = EachWayTerms {
        places: 4,
        fraction_num: 1,
        fraction_den: 5,
    };
    // (struck terms, ran, handicap, terms applied)
    let table = [
        (FIFTH_3, 8, false, Some(f(3))),
        // One non-runner from 8: 7 ran, 2 places at 1/4.
        (FIFTH_3, 7, false, Some(q(2))),
        // Four ran: win only.
        (FIFTH_3, 4, false, None),
        // Extra places offered by the book are kept where the field pays at least as many.
        (extra, 12, false, Some(f(4))),
        (extra, 6, false, Some(q(2))),
    ];
    for (struck, ran, hcap, want) in table {
        assert_eq!(effective_place_terms(struck, ran, hcap), want, "{ran}");
    }
}

#[test]
fn bad_results_are_refused() {
    let e = |pl: Vec<Placing>, nrs: Vec<NonRunner>, runners| {
        RaceResult::new(pl, nrs, runners, false).unwrap_err()
    };
    assert_eq!(e(vec![at(1, 2)], vec![], 5), RaceResultError::NoWinner);
    assert_eq!(
        e(vec![at(1, 1), at(2, 1), at(3, 2)], vec![], 5),
        RaceResultError::BadPosition(2)
    );
    assert_eq!(
        e(vec![at(1, 1)], vec![nr(1, 0, 5)], 5),
        RaceResultError::DuplicateRunner(1)
    );
    assert_eq!(
        e(vec![at(1, 1)], vec![nr(2, 0, 95)], 5),
        RaceResultError::BadDeduction(95)
    );
    assert!(matches!(
        e(vec![at(1, 1), at(2, 2)], vec![], 1),
        RaceResultError::FieldTooSmall { .. }
    ));
    // Two non-runners before the bet: 50 + 40 capped at 75 (Rule 4(c)).
    let r = RaceResult::new(vec![at(1, 1)], vec![nr(2, 5, 50), nr(3, 6, 40)], 8, false).unwrap();
    assert_eq!(r.deduction_for(T0), Deduction(75));
    assert_eq!(
        r.deduction_for(UnixMillis(T0.0 + 5 * 60_000 + 1)),
        Deduction(40)
    );
}

proptest::proptest! {
    /// Whatever the finish, a race leg never returns more than the stake at the full price,
    /// and a Rule 4 deduction never increases a return.
    #[test]
    fn never_more_than_full_price(m in 1001u64..100_000, runner in 1u64..8, pence in 0u8..=75) {
        let r = RaceResult::new(vec![at(1, 1), at(2, 1), at(3, 3)], vec![nr(7, 10, pence)], 8, false).unwrap();
        let price = Price::from_milli(m).unwrap();
        let kind = MarketKind::RaceWin { each_way: Some(FIFTH_3) };
        let early = decide_race_leg(&kind, Outcome::Runner { id: runner }, price, true, T0, &r).unwrap();
        let late = decide_race_leg(&kind, Outcome::Runner { id: runner }, price, true, UnixMillis(T0.0 + 3_600_000), &r).unwrap();
        let pay = |l: RaceLeg| crate::payout::payout_sum_minor(1000, &[&[l.win], &[l.place]]).unwrap();
        proptest::prop_assert!(pay(early) <= pay(late));
        proptest::prop_assert!(pay(late) <= payout_minor(2000, &[price.factor()]).unwrap());
    }
}
