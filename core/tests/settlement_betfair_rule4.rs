//! Settles win and each-way bets on a real race with two non-runners: Hamilton, 14 Jun 2017,
//! "1m Hcap", Betfair WIN market 1.132153978 (Betfair Historical Data BASIC file, vendored as
//! `fixtures/betfair/settlement/BASIC-1.132153978`; see `fixtures/README.md`).
//!
//! The file is read message by message, as a results source would deliver it: the runners'
//! statuses (ACTIVE → REMOVED → WINNER/LOSER), the withdrawal times (`removalDate`), each
//! non-runner's `adjustmentFactor` at withdrawal (Betfair's estimate of its win chance in
//! percent, so its price is 100 / factor), the last traded prices (`ltp`) at which bets are
//! struck, and the starting prices (`bsp`). Rule 4 deductions are then taken from the
//! Tattersalls Rule 4(c) scale at the non-runners' prices, applied by the time each bet was
//! struck. The race is a 12-runner handicap after the withdrawals: 3 places at 1/4 odds.
//!
//! Only the minimum of the stream format is parsed here; the odds feed owns a full parser.

use outpost_core::price::{PRICE_SCALE, Price};
use outpost_core::settlement::each_way::{Finish, standard_place_terms};
use outpost_core::settlement::racing::{RaceOutcome, RacingBet, settle_racing_bet};
use outpost_core::settlement::rule4::{
    Deduction, PriceTaken, Withdrawal, deduction_for_bet, tattersalls_deduction,
};
use outpost_core::time::{CivilDate, UnixMillis};
use serde_json::Value;
use std::collections::BTreeMap;

const RACE: &str = include_str!("../../fixtures/betfair/settlement/BASIC-1.132153978");

const WINNER: u64 = 12115648; // Brother Mcgonagall
const HELLAVASHOCK: u64 = 11198538; // non-runner, withdrawn 07:00:50Z
const HYMN: u64 = 9606433; // non-runner, withdrawn 09:23:43Z
const LOSER: u64 = 7330488; // Sakhalin Star

#[derive(Debug, Default, Clone)]
struct Runner {
    status: String,
    adjustment_hundredths: u64,
    removal: Option<UnixMillis>,
    bsp: Option<Price>,
    /// (publish time, last traded price), in stream order.
    ltps: Vec<(UnixMillis, Price)>,
}

#[derive(Debug)]
struct Race {
    name: String,
    runners: BTreeMap<u64, Runner>,
    closed: bool,
}

/// "2017-06-14T07:00:50.000Z" → Unix milliseconds.
fn iso_millis(s: &str) -> UnixMillis {
    let (date, time) = s.split_once('T').expect("ISO timestamp");
    let t = time.trim_end_matches('Z');
    let (hms, ms) = t.split_once('.').unwrap_or((t, "0"));
    let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let day = CivilDate::parse(date).unwrap().start_millis().0;
    UnixMillis(day + ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms.parse::<i64>().unwrap())
}

/// A JSON number as written ("7.14") in hundredths, without going through a float.
fn hundredths(v: &Value) -> u64 {
    let s = v.to_string();
    let (i, f) = s.split_once('.').unwrap_or((&s, ""));
    let f = format!("{f:0<2}");
    assert!(f.len() == 2, "more than two decimals in {s}");
    i.parse::<u64>().unwrap() * 100 + f.parse::<u64>().unwrap()
}

fn price(v: &Value) -> Price {
    Price::parse_rounding_down(&v.to_string()).unwrap()
}

fn read_race() -> Race {
    let mut race = Race {
        name: String::new(),
        runners: BTreeMap::new(),
        closed: false,
    };
    for line in RACE.lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        let pt = UnixMillis(m["pt"].as_i64().unwrap());
        for mc in m["mc"].as_array().unwrap() {
            if let Some(def) = mc.get("marketDefinition") {
                race.name = def["name"].as_str().unwrap().to_string();
                race.closed = def["status"] == "CLOSED";
                for r in def["runners"].as_array().unwrap() {
                    let e = race.runners.entry(r["id"].as_u64().unwrap()).or_default();
                    e.status = r["status"].as_str().unwrap().to_string();
                    e.adjustment_hundredths = hundredths(&r["adjustmentFactor"]);
                    e.removal = r
                        .get("removalDate")
                        .map(|d| iso_millis(d.as_str().unwrap()));
                    e.bsp = r.get("bsp").map(price);
                }
            }
            for rc in mc.get("rc").and_then(Value::as_array).into_iter().flatten() {
                let e = race.runners.entry(rc["id"].as_u64().unwrap()).or_default();
                e.ltps.push((pt, price(&rc["ltp"])));
            }
        }
    }
    race
}

/// Each non-runner as a Rule 4 withdrawal: price = 100 / adjustment factor, rounded down to
/// the price scale (the house never credits more than the source implies).
fn withdrawals(race: &Race) -> Vec<(u64, Withdrawal)> {
    race.runners
        .iter()
        .filter(|(_, r)| r.status == "REMOVED")
        .map(|(&id, r)| {
            let milli = 100 * 100 * PRICE_SCALE / r.adjustment_hundredths;
            (
                id,
                Withdrawal {
                    price: Price::from_milli(milli).unwrap(),
                    withdrawn_at: r.removal.unwrap(),
                    // Both were withdrawn hours before the off: the market re-formed.
                    new_market_formed: true,
                },
            )
        })
        .collect()
}

fn outcome(race: &Race, runner: u64) -> RaceOutcome {
    let runners = race
        .runners
        .values()
        .filter(|r| r.status != "REMOVED")
        .count() as u16;
    let finish = match race.runners[&runner].status.as_str() {
        "REMOVED" => Finish::NonRunner,
        "WINNER" => Finish::Position {
            position: 1,
            tied: 1,
        },
        "LOSER" => Finish::Unplaced,
        other => panic!("unexpected status {other}"),
    };
    RaceOutcome {
        finish,
        runners,
        handicap: race.name.contains("Hcap"),
        withdrawals: withdrawals(race).into_iter().map(|(_, w)| w).collect(),
    }
}

#[test]
fn the_race_as_the_file_states_it() {
    let race = read_race();
    assert!(race.closed);
    assert_eq!(race.name, "1m Hcap");
    assert_eq!(race.runners.len(), 14);
    let ws = withdrawals(&race);
    assert_eq!(ws.len(), 2);
    let w: BTreeMap<u64, Withdrawal> = ws.into_iter().collect();
    // Hellavashock: factor 7.14 → 14.005 (13/1 and a bit): 10/1-to-14/1 band, 5p.
    assert_eq!(w[&HELLAVASHOCK].price.milli(), 14_005);
    assert_eq!(
        w[&HELLAVASHOCK].withdrawn_at,
        iso_millis("2017-06-14T07:00:50.000Z")
    );
    assert_eq!(tattersalls_deduction(w[&HELLAVASHOCK].price), Deduction(5));
    // Hymn For The Dudes: factor 5.55 → 18.018 (17/1): over 14/1, no deduction.
    assert_eq!(w[&HYMN].price.milli(), 18_018);
    assert_eq!(tattersalls_deduction(w[&HYMN].price), Deduction(0));
    let o = outcome(&race, WINNER);
    assert_eq!((o.runners, o.handicap), (12, true));
    // 12-runner handicap: 3 places at 1/4 odds.
    let t = standard_place_terms(o.runners, o.handicap).unwrap();
    assert_eq!((t.places, t.fraction.num, t.fraction.den), (3, 1, 4));
    assert_eq!(
        race.runners[&WINNER].bsp,
        Some(Price::parse("4.15").unwrap())
    );
}

/// Bets on the winner struck at its traded prices through the day, each-way £10 (1000p a
/// part): those struck before Hellavashock's withdrawal take its 5p deduction, later ones none.
#[test]
fn each_way_bets_on_the_winner_by_time_struck() {
    let race = read_race();
    let o = outcome(&race, WINNER);
    let first_removal = iso_millis("2017-06-14T07:00:50.000Z");
    let (mut before, mut after) = (0, 0);
    for &(at, p) in &race.runners[&WINNER].ltps {
        let taken = PriceTaken::Fixed { struck_at: at };
        let d = deduction_for_bet(&o.withdrawals, taken);
        let bet = RacingBet {
            stake_per_part_minor: 1000,
            price: p,
            taken,
            each_way: true,
        };
        let paid = settle_racing_bet(&bet, &o).unwrap();
        // Independently: win 1000 × (1 + w) + place 1000 × (1 + w/4) with
        // w = (p − 1)(100 − d)/100; with w100k = (p − 1) × 1000 × (100 − d) that is
        // (2000 × 400 + 5 × w100k) / 400, floored once.
        let w100k = (p.milli() - 1000) as i128 * (100 - d.0 as i128);
        assert_eq!(paid as i128, (800_000 + 5 * w100k) / 400, "{p:?} at {at:?}");
        if at < first_removal {
            assert_eq!(d, Deduction(5));
            before += 1;
        } else {
            assert_eq!(d, Deduction(0));
            after += 1;
        }
    }
    assert!(
        before >= 20 && after >= 100,
        "{before} before, {after} after"
    );

    // The first traded price, 4.4 at 19:10:41 the evening before: 5p deduction.
    // Win 10 × (1 + 3.4 × 0.95) = £42.30; place 10 × (1 + 3.23 / 4) = £18.075 → £60.37.
    let (at, p) = race.runners[&WINNER].ltps[0];
    assert_eq!(p, Price::parse("4.4").unwrap());
    let bet = RacingBet {
        stake_per_part_minor: 1000,
        price: p,
        taken: PriceTaken::Fixed { struck_at: at },
        each_way: true,
    };
    assert_eq!(settle_racing_bet(&bet, &o), Ok(6037));
    // The same bet struck in the same message as the withdrawal is in the new market: no
    // deduction. Win £44.00 + place £18.50.
    let bet = RacingBet {
        taken: PriceTaken::Fixed {
            struck_at: first_removal,
        },
        ..bet
    };
    assert_eq!(settle_racing_bet(&bet, &o), Ok(6250));
}

#[test]
fn sp_bets_non_runners_and_losers() {
    let race = read_race();
    let win = outcome(&race, WINNER);
    let sp = |runner: u64, each_way| RacingBet {
        stake_per_part_minor: 1000,
        price: race.runners[&runner]
            .bsp
            .unwrap_or(Price::parse("2.0").unwrap()),
        taken: PriceTaken::Starting,
        each_way,
    };
    // SP on the winner: the market re-formed after both withdrawals, no deduction.
    // Win £41.50; e/w adds 10 × (1 + 3.15/4) = £17.875 → £59.37.
    assert_eq!(settle_racing_bet(&sp(WINNER, false), &win), Ok(4150));
    assert_eq!(settle_racing_bet(&sp(WINNER, true), &win), Ok(5937));
    // A bet on a non-runner is void: every stake back, whenever it was struck.
    for nr in [HELLAVASHOCK, HYMN] {
        let o = outcome(&race, nr);
        let bet = RacingBet {
            stake_per_part_minor: 1000,
            price: Price::parse("12.0").unwrap(),
            taken: PriceTaken::Fixed {
                struck_at: UnixMillis(0),
            },
            each_way: true,
        };
        assert_eq!(settle_racing_bet(&bet, &o), Ok(2000));
    }
    // A loser (the file does not say where losers finished, so only a win bet is settled).
    let lose = outcome(&race, LOSER);
    assert_eq!(settle_racing_bet(&sp(LOSER, false), &lose), Ok(0));
}
