//! Unit tests of the whole gate: each check fails closed with its code, and a clean bet lists
//! every check it made.

use super::geo::GeoAttestation;
use super::register::{RegisterState, identity_sha256};
use super::*;
use crate::ids::{EventId, Jurisdiction};
use crate::jurisdiction::{BannedEvents, GeoRules, RegisterRules};
use crate::market::{Market, MarketKind, MarketStatus, Outcome, SelectionPrice, SportEvent};
use crate::money::{Currency, Money};
use std::collections::BTreeSet;

const NOW: i64 = 1_800_000_000_000;

struct Fx {
    rules: JurisdictionRules,
    served: Vec<Jurisdiction>,
    register: Option<RegisterState>,
    risk: RiskLimits,
    event: SportEvent,
    market: Market,
    limits: PlayerLimits,
    activity: Activity,
    timed_out_until: Option<UnixMillis>,
    identity: String,
    geo: Option<GeoAttestation>,
    stake: i64,
    price: &'static str,
    policy: PricePolicy,
    liability: i64,
}

fn fx() -> Fx {
    let ev = SportEvent {
        event_id: EventId::new("E0-20300101-a-b").unwrap(),
        competition: "English Premier League".into(),
        home: "Arsenal".into(),
        away: "Chelsea".into(),
        kickoff: UnixMillis(NOW + 86_400_000),
    };
    let kind = MarketKind::MatchResult;
    let mid = Market::market_id_for(&ev.event_id, &kind);
    let market = Market {
        market_id: mid.clone(),
        event_id: ev.event_id.clone(),
        kind,
        status: MarketStatus::Open,
        selections: [Outcome::Home, Outcome::Draw, Outcome::Away]
            .into_iter()
            .zip(["2.50", "3.40", "2.90"])
            .map(|(o, p)| SelectionPrice {
                selection_id: Market::selection_id_for(&mid, o),
                outcome: o,
                price: Price::parse(p).unwrap(),
            })
            .collect(),
    };
    let rules = test_rules();
    Fx {
        served: vec![rules.code.clone()],
        rules,
        register: None,
        risk: RiskLimits::default(),
        event: ev,
        market,
        limits: PlayerLimits::default(),
        activity: Activity::default(),
        timed_out_until: None,
        identity: identity_sha256("Ann Player", CivilDate::new(1990, 1, 1).unwrap()),
        geo: None,
        stake: 1_000,
        price: "2.50",
        policy: PricePolicy::AcceptBetter,
        liability: 0,
    }
}

impl Fx {
    fn bet(&self) -> GateDecision {
        let env = Env {
            rules: &self.rules,
            served: &self.served,
            register: self.register.as_ref(),
            risk: &self.risk,
            now: UnixMillis(NOW),
        };
        let j = self.rules.code.clone();
        let p = PlayerFacts {
            jurisdiction: &j,
            kyc_verified: true,
            date_of_birth: Some(CivilDate::new(1990, 1, 1).unwrap()),
            self_excluded: false,
            identity_sha256: Some(&self.identity),
            cash_minor: 1_000_000,
            registered_at: UnixMillis(0),
            timed_out_until: self.timed_out_until,
            limits: &self.limits,
            activity: &self.activity,
            last_reality_check_at: UnixMillis(NOW - 1000),
        };
        let sel = self.market.selections[0].selection_id.clone();
        let legs = [LegFacts {
            selection_id: &sel,
            requested_price: Price::parse(self.price).unwrap(),
            market: Some(&self.market),
            event: Some(&self.event),
            selection_liability_minor: self.liability,
            event_liability_minor: self.liability,
        }];
        evaluate_bet(&BetFacts {
            env: &env,
            player: &p,
            stake: Money::new(self.stake, self.rules.currency),
            legs: &legs,
            price_policy: self.policy,
            geo: self.geo.as_ref(),
        })
    }

    fn deposit(&self, amount: i64, other: Option<i64>) -> GateDecision {
        let env = Env {
            rules: &self.rules,
            served: &self.served,
            register: self.register.as_ref(),
            risk: &self.risk,
            now: UnixMillis(NOW),
        };
        let j = self.rules.code.clone();
        let p = PlayerFacts {
            jurisdiction: &j,
            kyc_verified: true,
            date_of_birth: Some(CivilDate::new(1990, 1, 1).unwrap()),
            self_excluded: false,
            identity_sha256: Some(&self.identity),
            cash_minor: 0,
            registered_at: UnixMillis(0),
            timed_out_until: self.timed_out_until,
            limits: &self.limits,
            activity: &self.activity,
            last_reality_check_at: UnixMillis(NOW),
        };
        evaluate_deposit(&DepositFacts {
            env: &env,
            player: &p,
            amount: Money::new(amount, self.rules.currency),
            other_operators_month_minor: other,
        })
    }
}

fn with_register(f: &mut Fx, issued_at: i64, listed: bool) {
    f.rules.register = Some(RegisterRules {
        name: "GAMSTOP".into(),
        refresh_interval_minutes: 60,
        staleness_bound_minutes: 120,
    });
    f.register = Some(RegisterState {
        register: "GAMSTOP".into(),
        seq: 7,
        issued_at_ms: issued_at,
        entries: if listed {
            BTreeSet::from([f.identity.clone()])
        } else {
            BTreeSet::new()
        },
    });
}

#[test]
fn clean_bet_lists_every_check() {
    let d = fx().bet();
    assert!(d.accepted, "{d:?}");
    assert_eq!(d.rules_version, "test-1");
    let names: Vec<&str> = d.checks.iter().map(|c| c.check.as_ref()).collect();
    for n in [
        "jurisdiction",
        "kyc",
        "age",
        "self_exclusion",
        "register",
        "time_out",
        "currency",
        "stake_min",
        "stake_max",
        "legs",
        "bet_type",
        "market_open",
        "sport",
        "market_kind",
        "banned_event",
        "price",
        "payout_max",
        "selection_liability",
        "event_liability",
        "funds",
        "aml",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert_eq!(d.strike_prices, vec![Price::parse("2.50").unwrap()]);
}

#[test]
fn register_fails_closed() {
    let mut f = fx();
    with_register(&mut f, NOW - 60_000, false);
    assert!(f.bet().accepted);
    with_register(&mut f, NOW - 60_000, true);
    assert_eq!(f.bet().reason, Some(ReasonCode::RegisterExcluded));
    with_register(&mut f, NOW - 121 * 60_000, false);
    assert_eq!(f.bet().reason, Some(ReasonCode::RegisterStale));
    f.register = None;
    assert_eq!(f.bet().reason, Some(ReasonCode::RegisterMissing));
    // No identity to look up never means "not listed".
    with_register(&mut f, NOW, false);
    f.identity = String::new();
    let env_less = f.bet();
    assert!(
        env_less.accepted,
        "an identity that is simply not listed passes"
    );
}

#[test]
fn geo_required_where_configured() {
    let mut f = fx();
    f.rules.geo = Some(GeoRules {
        area: "Box".into(),
        ip_cidrs: vec![],
        polygon_e6: vec![
            [0, 0],
            [0, 10_000_000],
            [10_000_000, 10_000_000],
            [10_000_000, 0],
        ],
    });
    assert_eq!(f.bet().reason, Some(ReasonCode::GeoRequired));
    f.geo = Some(GeoAttestation {
        ip: None,
        lat_e6: Some(20_000_000),
        lon_e6: Some(5),
    });
    assert_eq!(f.bet().reason, Some(ReasonCode::GeoOutside));
    f.geo = Some(GeoAttestation {
        ip: None,
        lat_e6: Some(5_000_000),
        lon_e6: Some(5_000_000),
    });
    assert!(f.bet().accepted);
}

#[test]
fn nj_college_ban_is_data() {
    let mut f = fx();
    f.rules.banned_events = vec![BannedEvents {
        reason: "NJ".into(),
        competitions: vec!["NCAA".into()],
        teams: vec!["Rutgers".into()],
        venue_regions: vec!["US-NJ".into()],
    }];
    assert!(f.bet().accepted, "a Premier League match is not banned");
    f.event.competition = "NCAA Division I".into();
    f.event.home = "Rutgers".into();
    let d = f.bet();
    assert_eq!(d.reason, Some(ReasonCode::BannedEvent));
    // A college event without a NJ team but with an unknown venue is refused (fail closed).
    f.event.home = "Ohio State".into();
    assert_eq!(f.bet().reason, Some(ReasonCode::BannedEvent));
}

#[test]
fn in_play_rules() {
    let mut f = fx();
    f.event.kickoff = UnixMillis(NOW - 10 * 60_000);
    assert!(f.bet().accepted, "match result in play is allowed");
    f.rules.bets.in_play_market_kinds = vec![];
    assert_eq!(f.bet().reason, Some(ReasonCode::InPlayNotAllowed));
}

#[test]
fn limits_time_out_and_liability() {
    let mut f = fx();
    f.timed_out_until = Some(UnixMillis(NOW + 1));
    assert_eq!(f.bet().reason, Some(ReasonCode::TimedOut));
    f.timed_out_until = Some(UnixMillis(NOW));
    assert!(f.bet().accepted, "a time-out ends at its time");
    let c = limits::decide_limit_change(
        &f.limits,
        &f.rules,
        LimitKind::Stake,
        Window::Day,
        Some(1_500),
        UnixMillis(NOW),
    )
    .unwrap();
    f.limits.set(LimitKind::Stake, Window::Day, &c);
    f.activity
        .record(UnixMillis(NOW - 1000), limits::ActivityKind::Stake, 600);
    assert_eq!(f.bet().reason, Some(ReasonCode::StakeLimit));
    f.limits = PlayerLimits::default();
    f.liability = f.risk.selection_liability_minor_max - 2_000;
    assert_eq!(f.bet().reason, Some(ReasonCode::SelectionLiability));
}

#[test]
fn price_policy_and_aml_refusal() {
    let mut f = fx();
    f.price = "2.60";
    assert_eq!(f.bet().reason, Some(ReasonCode::PriceChanged));
    f.policy = PricePolicy::WithinTolerance {
        tolerance_milli: 100,
    };
    let d = f.bet();
    assert!(d.accepted);
    assert_eq!(d.strike_prices, vec![Price::parse("2.50").unwrap()]);
    // Velocity refuses (test rules: 30 a minute); the hit is also reported as a flag.
    let mut f = fx();
    for i in 0..30 {
        f.activity.record(
            UnixMillis(NOW - 30_000 + i),
            limits::ActivityKind::Stake,
            10,
        );
    }
    let d = f.bet();
    assert_eq!(d.reason, Some(ReasonCode::AmlRefused));
    assert_eq!(d.flags[0].rule, AmlRule::Velocity);
    // A large bet is accepted and flagged.
    let mut f = fx();
    f.stake = 300_000;
    let d = f.bet();
    assert!(d.accepted);
    assert!(d.flags.iter().any(|h| h.rule == AmlRule::LargeBet));
}

#[test]
fn deposits_cross_operator_and_limits() {
    let mut f = fx();
    assert!(f.deposit(10_000, None).accepted);
    f.rules.limits.cross_operator_deposit_cap_month_minor = Some(100_000);
    assert_eq!(
        f.deposit(10_000, None).reason,
        Some(ReasonCode::CrossOperatorUnknown)
    );
    assert_eq!(
        f.deposit(10_000, Some(95_000)).reason,
        Some(ReasonCode::CrossOperatorLimit)
    );
    assert!(f.deposit(5_000, Some(95_000)).accepted);
    f.rules.limits.deposit_default.month_minor = Some(20_000);
    f.activity.record(
        UnixMillis(NOW - 1000),
        limits::ActivityKind::Deposit,
        15_000,
    );
    assert_eq!(
        f.deposit(6_000, Some(0)).reason,
        Some(ReasonCode::DepositLimit)
    );
    let _ = Currency::GBP;
}
