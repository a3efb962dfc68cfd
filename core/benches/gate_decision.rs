//! One compliance decision in-process: `gate::evaluate_bet` with every check active (register
//! of 100,000 entries, stake/loss limits with a month of activity, geo polygon, AML, liability).
//! Prints latency percentiles; no assertions (a benchmark, not a test).
//!
//! ```text
//! cargo bench -p outpost-core --bench gate_decision
//! ```

use outpost_core::gate::geo::GeoAttestation;
use outpost_core::gate::limits::{ActivityKind, decide_limit_change};
use outpost_core::gate::register::{RegisterState, identity_sha256};
use outpost_core::gate::*;
use outpost_core::ids::EventId;
use outpost_core::jurisdiction::{GeoRules, RegisterRules, example_rules};
use outpost_core::market::{Market, MarketKind, MarketStatus, Outcome, SelectionPrice, SportEvent};
use outpost_core::money::Money;
use outpost_core::price::Price;
use outpost_core::time::{CivilDate, UnixMillis};
use std::hint::black_box;
use std::time::{Duration, Instant};

const NOW: i64 = 1_800_000_000_000;

fn main() {
    let mut rules = example_rules();
    rules.register = Some(RegisterRules {
        name: "GAMSTOP".into(),
        refresh_interval_minutes: 60,
        staleness_bound_minutes: 1440,
    });
    rules.geo = Some(GeoRules {
        area: "box".into(),
        ip_cidrs: vec!["10.0.0.0/8".into()],
        polygon_e6: vec![
            [40_000_000, -76_000_000],
            [41_500_000, -76_000_000],
            [41_500_000, -73_000_000],
            [40_000_000, -73_000_000],
        ],
    });
    let register = RegisterState {
        register: "GAMSTOP".into(),
        seq: 1,
        issued_at_ms: NOW - 60_000,
        entries: (0..100_000u32)
            .map(|i| hex::encode(outpost_core::log::sha256(&i.to_le_bytes())))
            .collect(),
    };
    let identity = identity_sha256("Bench Player", CivilDate::new(1985, 6, 15).unwrap());
    let ev = SportEvent {
        event_id: EventId::new("E0-20300101-a-b").unwrap(),
        competition: "English Premier League".into(),
        home: "Arsenal".into(),
        away: "Chelsea".into(),
        kickoff: UnixMillis(NOW + 86_400_000),
    };
    let mid = Market::market_id_for(&ev.event_id, &MarketKind::MatchResult);
    let market = Market {
        market_id: mid.clone(),
        event_id: ev.event_id.clone(),
        kind: MarketKind::MatchResult,
        status: MarketStatus::Open,
        selections: [Outcome::Home, Outcome::Draw, Outcome::Away]
            .into_iter()
            .map(|o| SelectionPrice {
                selection_id: Market::selection_id_for(&mid, o),
                outcome: o,
                price: Price::parse("2.50").unwrap(),
            })
            .collect(),
    };
    let mut limits = PlayerLimits::default();
    for k in [LimitKind::Stake, LimitKind::Loss] {
        for w in Window::ALL {
            let c = decide_limit_change(
                &limits,
                &rules,
                k,
                w,
                Some(10_000_000),
                UnixMillis(NOW - 40 * 86_400_000),
            )
            .unwrap();
            limits.set(k, w, &c);
        }
    }
    // A month of activity: a bet every 10 minutes.
    let mut activity = Activity::default();
    let mut t = NOW - 30 * 86_400_000;
    while t < NOW - 60_000 {
        activity.record(UnixMillis(t), ActivityKind::Stake, 500);
        t += 600_000;
    }
    let served = [rules.code.clone()];
    let risk = RiskLimits::default();
    let geo = GeoAttestation {
        ip: Some("10.1.2.3".into()),
        lat_e6: Some(40_700_000),
        lon_e6: Some(-74_000_000),
    };
    let sel = market.selections[0].selection_id.clone();
    let run = || {
        let env = Env {
            rules: &rules,
            served: &served,
            register: Some(&register),
            risk: &risk,
            now: UnixMillis(NOW),
        };
        let p = PlayerFacts {
            jurisdiction: &rules.code,
            kyc_verified: true,
            date_of_birth: Some(CivilDate::new(1985, 6, 15).unwrap()),
            self_excluded: false,
            identity_sha256: Some(&identity),
            cash_minor: 1_000_000,
            registered_at: UnixMillis(0),
            timed_out_until: None,
            limits: &limits,
            activity: &activity,
            last_reality_check_at: UnixMillis(NOW - 1000),
        };
        let legs = [LegFacts {
            selection_id: &sel,
            requested_price: Price::parse("2.50").unwrap(),
            market: Some(&market),
            event: Some(&ev),
            selection_liability_minor: 10_000,
            event_liability_minor: 50_000,
        }];
        evaluate_bet(&BetFacts {
            env: &env,
            player: &p,
            stake: Money::new(1_000, rules.currency),
            legs: &legs,
            price_policy: PricePolicy::AcceptBetter,
            geo: Some(&geo),
        })
    };
    let d = run();
    assert!(d.accepted, "{d:?}");
    println!("checks per decision: {}", d.checks.len());
    for _ in 0..20_000 {
        black_box(run());
    }
    let n = 200_000;
    let mut lat = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        black_box(run());
        lat.push(t0.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((n as f64 - 1.0) * q) as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "gate::evaluate_bet over {n} decisions: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs",
        us(p(0.5)),
        us(p(0.99)),
        us(p(0.999)),
        us(lat[n - 1])
    );
}
