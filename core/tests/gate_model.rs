//! Model-based test of the gate and wallet: random sequences of deposits, withdrawals, bets,
//! limit changes, time-outs, self-exclusions, register updates and clock jumps are driven
//! through the real `EdgeState::decide`/`apply`, and every outcome and balance is compared
//! with a small reference model written from the rules, not from the implementation.
//!
//! Each case also replays the log it produced into a fresh state and checks the result is
//! byte-identical (canonical JSON) to the live state.

use outpost_core::edge::events::{EdgeEvent, Genesis, IdemTag};
use outpost_core::edge::{
    Command, CommandError, DecideCtx, EdgeState, LegRequest, NodeGateConfig, Reply,
};
use outpost_core::gate::register::{self, RegisterDocKind, RegisterPayload};
use outpost_core::gate::{LimitKind, RiskLimits, Window};
use outpost_core::ids::{EventId, IdemKey, Jurisdiction, NodeId, PlayerId};
use outpost_core::jurisdiction::{JurisdictionRules, RegisterRules, example_rules};
use outpost_core::log::NodeKey;
use outpost_core::market::{Market, MarketKind, MarketStatus, Outcome, SelectionPrice, SportEvent};
use outpost_core::money::{Currency, Money};
use outpost_core::price::Price;
use outpost_core::time::{CivilDate, UnixMillis};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const PLAYERS: usize = 4;
const T0: i64 = 1_800_000_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const BOUND_MIN: u32 = 24 * 60;

#[derive(Debug, Clone)]
enum Op {
    Deposit(usize, i64),
    Withdraw(usize, i64),
    Bet(usize, i64),
    SetLimit(usize, LimitKind, Window, Option<i64>),
    TimeOut(usize, u32),
    SelfExclude(usize),
    Register(Vec<usize>),
    Clock(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PLAYERS;
    let kind = prop_oneof![
        Just(LimitKind::Deposit),
        Just(LimitKind::Loss),
        Just(LimitKind::Stake)
    ];
    let window = prop_oneof![Just(Window::Day), Just(Window::Week), Just(Window::Month)];
    prop_oneof![
        4 => (p.clone(), 1i64..50_000).prop_map(|(p, a)| Op::Deposit(p, a)),
        1 => (p.clone(), 1i64..10_000).prop_map(|(p, a)| Op::Withdraw(p, a)),
        6 => (p.clone(), 10i64..3_000).prop_map(|(p, a)| Op::Bet(p, a)),
        2 => (p.clone(), kind, window, proptest::option::weighted(0.8, 1i64..12_000))
            .prop_map(|(p, k, w, a)| Op::SetLimit(p, k, w, a)),
        1 => (p.clone(), 1u32..30).prop_map(|(p, h)| Op::TimeOut(p, h)),
        // Only the last player ever self-excludes, so the others keep playing.
        1 => Just(Op::SelfExclude(PLAYERS - 1)),
        3 => proptest::collection::vec(0..PLAYERS, 0..2).prop_map(Op::Register),
        5 => prop_oneof![
            6 => 1i64..5 * MIN,
            2 => HOUR..5 * HOUR,
            1 => 20 * HOUR..50 * HOUR
        ]
        .prop_map(Op::Clock),
    ]
}

/// (limit in force, pending raise (amount, effective_at))
type MLimit = (Option<i64>, Option<(Option<i64>, i64)>);

/// The reference model: plain lists and the rules as the docs state them.
#[derive(Default, Clone)]
struct MPlayer {
    cash: i64,
    stakes: i64,
    deposits: Vec<(i64, i64)>,
    bets: Vec<(i64, i64)>,
    /// (kind, window) -> (in force, pending (amount, effective_at))
    limits: BTreeMap<(LimitKind, Window), MLimit>,
    excluded: bool,
    timed_out_until: i64,
}

struct Model {
    now: i64,
    players: Vec<MPlayer>,
    listed: BTreeSet<usize>,
    register_issued_at: i64,
}

fn window_ms(w: Window) -> i64 {
    match w {
        Window::Day => 24 * HOUR,
        Window::Week => 7 * 24 * HOUR,
        Window::Month => 30 * 24 * HOUR,
    }
}

impl MPlayer {
    fn limit(&self, k: LimitKind, w: Window, now: i64) -> Option<i64> {
        match self.limits.get(&(k, w)) {
            None => None,
            Some((_, Some((v, at)))) if *at <= now => *v,
            Some((v, _)) => *v,
        }
    }
    /// Sum over the window; the window starts at the beginning of its oldest minute.
    fn used(list: &[(i64, i64)], w: Window, now: i64) -> i64 {
        let first_minute = (now - window_ms(w)).div_euclid(MIN);
        list.iter()
            .filter(|(t, _)| t.div_euclid(MIN) >= first_minute)
            .map(|(_, a)| a)
            .sum()
    }
    fn within(&self, kinds: &[(LimitKind, &[(i64, i64)])], add: i64, now: i64) -> bool {
        kinds.iter().all(|(k, list)| {
            [Window::Day, Window::Week, Window::Month].iter().all(|w| {
                self.limit(*k, *w, now)
                    .is_none_or(|l| Self::used(list, *w, now) + add <= l)
            })
        })
    }
}

impl Model {
    fn register_ok(&self, p: usize) -> bool {
        self.now - self.register_issued_at <= BOUND_MIN as i64 * MIN && !self.listed.contains(&p)
    }
    fn may_play(&self, p: usize) -> bool {
        let m = &self.players[p];
        !m.excluded && self.register_ok(p) && m.timed_out_until <= self.now
    }
}

struct Harness {
    state: EdgeState,
    rules: JurisdictionRules,
    gate: NodeGateConfig,
    authority: NodeKey,
    log: Vec<(EdgeEvent, UnixMillis)>,
    players: Vec<PlayerId>,
    identities: Vec<String>,
    selection: outpost_core::ids::SelectionId,
    n: u64,
    register_seq: u64,
}

impl Harness {
    fn run(&mut self, cmd: Command, now: i64, who: Option<usize>) -> Result<Reply, CommandError> {
        let ident = who.map(|p| self.identities[p].clone());
        let d = self.state.decide(
            cmd,
            &DecideCtx {
                now: UnixMillis(now),
                rules: &self.rules,
                gate: &self.gate,
                identity_sha256: ident.as_deref(),
                date_of_birth: Some(CivilDate::new(1990, 1, 1).unwrap()),
            },
        )?;
        for ev in d.events {
            self.state
                .apply(&ev, UnixMillis(now))
                .expect("decided events apply");
            self.log.push((ev, UnixMillis(now)));
        }
        Ok(d.reply)
    }
    fn idem(&mut self) -> IdemTag {
        self.n += 1;
        IdemTag {
            key: IdemKey::new(format!("k{}", self.n)).unwrap(),
            request_sha256: format!("{:064x}", self.n),
        }
    }
    fn register(&mut self, listed: &BTreeSet<usize>, now: i64) -> Result<Reply, CommandError> {
        self.register_seq += 1;
        let doc = register::sign(
            &self.authority,
            &RegisterPayload {
                register: "GAMSTOP".into(),
                jurisdiction: self.rules.code.clone(),
                kind: RegisterDocKind::Snapshot,
                seq: self.register_seq,
                base_seq: None,
                issued_at_ms: now,
                add: listed.iter().map(|p| self.identities[*p].clone()).collect(),
                remove: vec![],
            },
        );
        self.run(Command::LoadRegister { doc }, now, None)
    }
}

fn setup() -> Harness {
    let mut rules = example_rules();
    rules.register = Some(RegisterRules {
        name: "GAMSTOP".into(),
        refresh_interval_minutes: 60,
        staleness_bound_minutes: BOUND_MIN,
    });
    // AML rules that never refuse: flags do not change outcomes, so the model ignores them.
    rules.aml.velocity_bets_per_minute_max = 1_000_000;
    rules.limits.time_out_hours_min = 1;
    let authority = NodeKey::from_seed([9; 32]);
    let mut h = Harness {
        state: EdgeState::default(),
        gate: NodeGateConfig {
            risk: RiskLimits {
                selection_liability_minor_max: i64::MAX / 4,
                event_liability_minor_max: i64::MAX / 4,
            },
            register_authority: Some(authority.public()),
        },
        rules,
        authority,
        log: vec![],
        players: vec![],
        identities: (0..PLAYERS)
            .map(|i| {
                register::identity_sha256(
                    &format!("Player {i}"),
                    CivilDate::new(1990, 1, 1).unwrap(),
                )
            })
            .collect(),
        selection: outpost_core::ids::SelectionId::new("x").unwrap(),
        n: 0,
        register_seq: 0,
    };
    h.run(
        Command::Genesis(Genesis {
            node_id: NodeId::new("gb-1").unwrap(),
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            currency: Currency::GBP,
            public_key: "00".repeat(32),
            software: "model".into(),
        }),
        T0,
        None,
    )
    .unwrap();
    for _ in 0..PLAYERS {
        let idem = h.idem();
        let r = h
            .run(
                Command::RegisterPlayer {
                    jurisdiction: Jurisdiction::new("GB").unwrap(),
                    pii_sha256: "ab".repeat(32),
                    idem,
                },
                T0,
                None,
            )
            .unwrap();
        let Reply::Player(p) = r else { panic!() };
        let idem = h.idem();
        h.run(
            Command::VerifyKyc {
                player_id: p.player_id.clone(),
                idem,
            },
            T0,
            None,
        )
        .unwrap();
        h.players.push(p.player_id);
    }
    // A market far in the future (never in play) at 2.00.
    let ev = SportEvent {
        event_id: EventId::new("E0-20400101-a-b").unwrap(),
        competition: "Premier League".into(),
        home: "A".into(),
        away: "B".into(),
        kickoff: UnixMillis(T0 + 10_000 * 24 * HOUR),
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
                price: Price::parse("2.00").unwrap(),
            })
            .collect(),
    };
    h.selection = market.selections[0].selection_id.clone();
    h.run(Command::OpenMarket { event: ev, market }, T0, None)
        .unwrap();
    h.register(&BTreeSet::new(), T0).unwrap();
    h
}

fn canonical(s: &EdgeState) -> Vec<u8> {
    // serde_json::Value keeps object keys sorted, so this is canonical even for hash maps.
    serde_json::to_vec(&serde_json::to_value(s).unwrap()).unwrap()
}

fn accepted(r: &Result<Reply, CommandError>) -> bool {
    matches!(
        r,
        Ok(Reply::Bet(_)) | Ok(Reply::Movement { .. }) | Ok(Reply::Player(_)) | Ok(Reply::Done)
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]
    #[test]
    fn gate_and_wallet_follow_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut h = setup();
        let mut m = Model { now: T0, players: vec![MPlayer::default(); PLAYERS], listed: BTreeSet::new(), register_issued_at: T0 };
        for (i, o) in ops.iter().enumerate() {
            let now = m.now;
            match o.clone() {
                Op::Clock(d) => m.now += d,
                Op::Deposit(p, a) => {
                    let idem = h.idem();
                    let r = h.run(Command::Deposit { player_id: h.players[p].clone(), amount: Money::new(a, Currency::GBP), provider_ref: format!("psp-{i}"), idem }, now, Some(p));
                    let mp = &m.players[p];
                    let expect = m.may_play(p) && mp.within(&[(LimitKind::Deposit, &mp.deposits)], a, now);
                    prop_assert_eq!(accepted(&r), expect, "deposit {} {:?}: {:?}", a, o, r);
                    if expect {
                        let mp = &mut m.players[p];
                        mp.cash += a;
                        mp.deposits.push((now, a));
                    }
                }
                Op::Withdraw(p, a) => {
                    let idem = h.idem();
                    let r = h.run(Command::Withdraw { player_id: h.players[p].clone(), amount: Money::new(a, Currency::GBP), provider_ref: format!("psp-{i}"), idem }, now, Some(p));
                    let expect = m.players[p].cash >= a;
                    prop_assert_eq!(accepted(&r), expect, "withdraw {:?}: {:?}", o, r);
                    if expect { m.players[p].cash -= a; }
                }
                Op::Bet(p, s) => {
                    let idem = h.idem();
                    let r = h.run(Command::PlaceBet {
                        player_id: h.players[p].clone(), stake: Money::new(s, Currency::GBP),
                        legs: vec![LegRequest { selection_id: h.selection.clone(), price: Price::parse("2.00").unwrap() }],
                        date_of_birth: None, geo: None, price_policy: Default::default(), idem,
                    }, now, Some(p));
                    let mp = &m.players[p];
                    let expect = m.may_play(p)
                        && mp.cash >= s
                        && mp.within(&[(LimitKind::Stake, &mp.bets), (LimitKind::Loss, &mp.bets)], s, now);
                    prop_assert_eq!(matches!(r, Ok(Reply::Bet(_))), expect, "bet {:?}: {:?}", o, r);
                    prop_assert!(r.is_ok(), "a bet outcome is a reply, never an error: {:?}", r);
                    if expect {
                        let mp = &mut m.players[p];
                        mp.cash -= s; mp.stakes += s; mp.bets.push((now, s));
                    }
                }
                Op::SetLimit(p, k, w, a) => {
                    let idem = h.idem();
                    let r = h.run(Command::SetLimit { player_id: h.players[p].clone(), kind: k, window: w, amount_minor: a, idem }, now, Some(p));
                    prop_assert!(r.is_ok(), "no caps in these rules: {:?}", r);
                    let mp = &mut m.players[p];
                    let cur = mp.limit(k, w, now);
                    let e = mp.limits.entry((k, w)).or_insert((None, None));
                    // A matured raise becomes the base.
                    if let Some((v, at)) = e.1 && at <= now { e.0 = v; e.1 = None; }
                    let decrease = match (a, cur) { (Some(a), Some(c)) => a <= c, (Some(_), None) => true, (None, None) => true, (None, Some(_)) => false };
                    if decrease { *e = (a, None); } else { e.1 = Some((a, now + 24 * HOUR)); }
                }
                Op::TimeOut(p, hours) => {
                    let idem = h.idem();
                    let r = h.run(Command::TimeOut { player_id: h.players[p].clone(), kind: outpost_core::edge::events::TimeOutKind::TimeOut, hours, idem }, now, Some(p));
                    prop_assert!(r.is_ok(), "{:?}", r);
                    let t = &mut m.players[p].timed_out_until;
                    *t = (*t).max(now + hours as i64 * HOUR);
                }
                Op::SelfExclude(p) => {
                    let idem = h.idem();
                    h.run(Command::SelfExclude { player_id: h.players[p].clone(), idem }, now, Some(p)).unwrap();
                    m.players[p].excluded = true;
                }
                Op::Register(listed) => {
                    let set: BTreeSet<usize> = listed.into_iter().collect();
                    h.register(&set, now).unwrap();
                    m.listed = set;
                    m.register_issued_at = now;
                }
            }
            // Balances agree with the model after every step.
            for (p, id) in h.players.iter().enumerate() {
                let v = h.state.player_view(id).unwrap();
                prop_assert_eq!((v.cash_minor, v.stakes_held_minor), (m.players[p].cash, m.players[p].stakes));
            }
            prop_assert_eq!(h.state.ledger().sum(), 0);
        }
        // Replaying the log rebuilds a byte-identical state.
        let mut replayed = EdgeState::default();
        for (ev, at) in &h.log {
            // Through the record encoding, as recovery does.
            let back = EdgeEvent::from_payload(ev.kind(), &ev.to_payload()).unwrap();
            replayed.apply(&back, *at).unwrap();
        }
        prop_assert_eq!(canonical(&replayed), canonical(&h.state));
    }
}
