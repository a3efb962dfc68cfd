//! Builds a small, deterministic, real Outpost log and writes it as segment files, for
//! `docs/log-format.md` (the worked example and the payload examples) and for the Python
//! verifier test (`core/tests/python_verifier.rs` includes this file as a module).
//!
//! ```text
//! cargo run -p outpost-core --example make_segment -- OUT_DIR
//! ```
//!
//! Writes to OUT_DIR:
//! - `gb-1.seg`: the whole edge log of node `gb-1` (seq 1..), sealed by the edge key;
//! - `gb-1.part1.seg`, `gb-1.part2.seg`: the same log as two consecutive segments;
//! - `hub~gb-1.seg`: the hub's downstream chain `hub/gb-1`, sealed by the hub key;
//!
//! and prints the public keys, one worked record (body, hash, seal) and one payload per kind.
//! The events are produced by the real edge state machine (`EdgeState::decide`/`apply`) and
//! the real hub settlement (`hub::settle_bet`); keys come from fixed seeds and timestamps are
//! fixed, so the output is byte-for-byte reproducible (Ed25519 signatures are deterministic).

use outpost_core::edge::events::TimeOutKind;
use outpost_core::edge::events::{DownRef, EdgeEvent, Genesis, IdemTag};
use outpost_core::edge::shop::{Holder, ShopCommand, ShopReply, Till};
use outpost_core::edge::{Command, DecideCtx, EdgeState, LegRequest, NodeGateConfig, Reply};
use outpost_core::gate::register;
use outpost_core::gate::{LimitKind, Window};
use outpost_core::hub::{self, HubEvent, HubResult, down_log_id};
use outpost_core::ids::{
    BetId, EventId, IdemKey, Jurisdiction, LogId, NodeId, PlayerId, SelectionId, ShopId, StaffId,
    TerminalId,
};
use outpost_core::jurisdiction::JurisdictionRules;
use outpost_core::log::{
    ChainHead, ChainWriter, Frame, NodeKey, RecordKind, SegmentHeader, encode_segment, sha256,
};
use outpost_core::market::{
    Line, Market, MarketKind, MarketStatus, Outcome, SelectionPrice, SportEvent,
};
use outpost_core::money::{Currency, Money};
use outpost_core::price::Price;
use outpost_core::settle::FinalScore;
use outpost_core::settlement::event_result::EventResult;
use outpost_core::time::{CivilDate, UnixMillis};

/// 2026-01-01T10:00:00Z.
pub const T0: i64 = 1_767_261_600_000;
pub const NODE: &str = "gb-1";

/// The demo's output: both chains and their keys.
pub struct Demo {
    pub edge_key: NodeKey,
    pub hub_key: NodeKey,
    pub edge_log: LogId,
    pub hub_log: LogId,
    /// The edge log `gb-1`, genesis first, ending on a seal.
    pub edge: Vec<Frame>,
    /// The hub's downstream chain `hub/gb-1` (every record sealed).
    pub hub: Vec<Frame>,
    /// Where the demo splits the edge log into two segments: `edge[..split]` and `edge[split..]`
    /// (the record before the split is sealed).
    pub split: usize,
    /// The PII commitment example: (salt hex, canonical JSON, commitment hex).
    pub pii: (String, String, String),
}

pub fn edge_key() -> NodeKey {
    NodeKey::from_seed(sha256(b"outpost example edge key gb-1"))
}
pub fn hub_key() -> NodeKey {
    NodeKey::from_seed(sha256(b"outpost example hub key"))
}

fn rules() -> JurisdictionRules {
    JurisdictionRules {
        code: Jurisdiction::new("GB").unwrap(),
        name: "Great Britain (example)".into(),
        rules_version: "gb-2026.11-1".into(),
        currency: Currency::GBP,
        min_age_years: 18,
        stake_minor_min: 10,
        stake_minor_max: 1_000_000,
        payout_minor_max: 100_000_000,
        accumulator_legs_max: 20,
        audit_retention_years: 6,
        retail: Some(outpost_core::edge::shop::RetailRules {
            cash_id_threshold_minor: 200_000,
            player_id_required: false,
            ticket_expiry_days: 180,
            cross_shop_redemption: true,
            void_window_secs: 120,
        }),
        ..outpost_core::jurisdiction::example_rules()
    }
}

/// The commitment the edge node's PII vault computes (edge-node/src/vault.rs):
/// `sha256(salt_bytes || serde_json::json!({"name": …, "date_of_birth": …}).to_string())`.
pub fn pii_commitment(salt_hex: &str, name: &str, dob: CivilDate) -> (String, String) {
    let doc = serde_json::json!({ "name": name, "date_of_birth": dob }).to_string();
    let mut bytes = hex::decode(salt_hex).unwrap();
    bytes.extend_from_slice(doc.as_bytes());
    (doc, hex::encode(sha256(&bytes)))
}

fn idem(key: &str, request: &str) -> IdemTag {
    IdemTag {
        key: IdemKey::new(key).unwrap(),
        request_sha256: hex::encode(sha256(request.as_bytes())),
    }
}

/// The edge node's writer, reduced to what shapes the log: decide, apply, append; the last
/// record of each commit group is sealed.
struct Edge {
    state: EdgeState,
    chain: ChainWriter,
    key: NodeKey,
    rules: JurisdictionRules,
    gate: NodeGateConfig,
    /// The register identity the shell would prefetch from its vault (player 1's).
    identity: Option<String>,
    frames: Vec<Frame>,
}

impl Edge {
    fn run(&mut self, cmd: Command, at: i64) -> Reply {
        let now = UnixMillis(at);
        let d = self
            .state
            .decide(
                cmd,
                &DecideCtx {
                    now,
                    rules: &self.rules,
                    gate: &self.gate,
                    identity_sha256: self.identity.as_deref(),
                    date_of_birth: Some(CivilDate::new(1990, 5, 17).unwrap()),
                },
            )
            .expect("demo command is valid");
        for ev in &d.events {
            self.state.apply(ev, now).expect("decided events apply");
            self.frames
                .push(self.chain.append(ev.kind(), now, ev.to_payload()));
        }
        d.reply
    }
    /// End of a commit group: seal its last record.
    fn commit(&mut self) {
        let last = self.frames.last_mut().expect("non-empty group");
        assert!(last.seal.is_none());
        ChainWriter::seal(last, &self.key);
    }
}

fn player_of(r: &Reply) -> PlayerId {
    match r {
        Reply::Player(p) => p.player_id.clone(),
        other => panic!("expected a player reply, got {other:?}"),
    }
}
fn bet_of(r: &Reply) -> BetId {
    match r {
        Reply::Bet(b) => b.bet_id.clone(),
        other => panic!("expected a bet reply, got {other:?}"),
    }
}

fn market(event: &EventId, kind: MarketKind, prices: &[&str]) -> Market {
    let market_id = Market::market_id_for(event, &kind);
    let selections = kind
        .outcomes()
        .iter()
        .zip(prices)
        .map(|(o, p)| SelectionPrice {
            selection_id: Market::selection_id_for(&market_id, *o),
            outcome: *o,
            price: Price::parse(p).unwrap(),
        })
        .collect();
    Market {
        market_id,
        event_id: event.clone(),
        kind,
        status: MarketStatus::Open,
        selections,
    }
}

fn sel(m: &Market, o: Outcome) -> SelectionId {
    Market::selection_id_for(&m.market_id, o)
}

pub fn build_demo() -> Demo {
    let node = NodeId::new(NODE).unwrap();
    let edge_log = LogId::new(NODE).unwrap();
    let hub_log = down_log_id(&node);
    let gb = Jurisdiction::new("GB").unwrap();
    let min = 60_000;
    let mut e = Edge {
        state: EdgeState::default(),
        chain: ChainWriter::new(edge_log.clone(), ChainHead::EMPTY),
        key: edge_key(),
        rules: rules(),
        gate: NodeGateConfig::default(),
        identity: None,
        frames: vec![],
    };

    // Group: genesis (seq 1).
    e.run(
        Command::Genesis(Genesis {
            node_id: node.clone(),
            jurisdiction: gb.clone(),
            currency: Currency::GBP,
            public_key: e.key.public().to_hex(),
            software: "outpost-edge 0.1.0".into(),
        }),
        T0,
    );
    e.commit();

    // Group: register player 1 (seq 2).
    let salt = "6f7574706f73742d6578616d706c6521".to_string();
    let dob = CivilDate::parse("1990-05-17").unwrap();
    let (doc, commitment) = pii_commitment(&salt, "Jane Example", dob);
    let p1 = player_of(&e.run(
        Command::RegisterPlayer {
            jurisdiction: gb.clone(),
            pii_sha256: commitment.clone(),
            idem: idem("reg-0001", "register jane"),
        },
        T0 + min,
    ));
    e.commit();
    // Group: KYC (seq 3), the worked example of docs/log-format.md.
    e.run(
        Command::VerifyKyc {
            player_id: p1.clone(),
            idem: idem("kyc-0001", "kyc jane"),
        },
        T0 + 2 * min,
    );
    e.commit();
    // Group of two commands: deposit and a second registration (seq 4-5).
    e.run(
        Command::Deposit {
            player_id: p1.clone(),
            amount: Money::new(5_000, Currency::GBP),
            provider_ref: "psp-7f3a-0001".into(),
            idem: idem("dep-0001", "deposit 50"),
        },
        T0 + 3 * min,
    );
    let (_, c2) = pii_commitment(
        "00112233445566778899aabbccddeeff",
        "John Example",
        CivilDate::parse("2001-11-30").unwrap(),
    );
    let p2 = player_of(&e.run(
        Command::RegisterPlayer {
            jurisdiction: gb.clone(),
            pii_sha256: c2,
            idem: idem("reg-0002", "register john"),
        },
        T0 + 3 * min,
    ));
    e.commit();

    // Group: three markets on two matches (seq 6-8).
    let ev1 = SportEvent {
        event_id: EventId::new("E0-20260103-arsenal-chelsea").unwrap(),
        competition: "English Premier League".into(),
        home: "Arsenal".into(),
        away: "Chelsea".into(),
        kickoff: UnixMillis(T0 + 2 * 86_400_000 + 5 * 3_600_000),
    };
    let ev2 = SportEvent {
        event_id: EventId::new("E0-20260103-liverpool-man-city").unwrap(),
        competition: "English Premier League".into(),
        home: "Liverpool".into(),
        away: "Man City".into(),
        kickoff: UnixMillis(T0 + 2 * 86_400_000 + 7 * 3_600_000),
    };
    let m1x2 = market(
        &ev1.event_id,
        MarketKind::MatchResult,
        &["2.5", "3.4", "2.9"],
    );
    let mah = market(
        &ev1.event_id,
        MarketKind::AsianHandicap {
            home_line: Line::parse("-0.75").unwrap(),
        },
        &["1.95", "1.9"],
    );
    let mou = market(
        &ev2.event_id,
        MarketKind::TotalGoals {
            line: Line::parse("2.5").unwrap(),
        },
        &["1.8", "2.05"],
    );
    for (ev, m) in [(&ev1, &m1x2), (&ev1, &mah), (&ev2, &mou)] {
        e.run(
            Command::OpenMarket {
                event: ev.clone(),
                market: m.clone(),
            },
            T0 + 4 * min,
        );
    }
    e.commit();
    let split = e.frames.len();

    // Group: a single (seq 9-11: compliance decision, stake movement, bet).
    let bet1 = bet_of(&e.run(
        Command::PlaceBet {
            player_id: p1.clone(),
            stake: Money::new(1_000, Currency::GBP),
            legs: vec![LegRequest {
                selection_id: sel(&m1x2, Outcome::Home),
                price: Price::parse("2.5").unwrap(),
            }],
            date_of_birth: Some(dob),
            geo: None,
            price_policy: Default::default(),
            idem: idem("bet-0001", "single arsenal"),
        },
        T0 + 5 * min,
    ));
    e.commit();
    // Group: a two-leg accumulator on an Asian quarter line and a total (seq 12-14).
    let bet2 = bet_of(&e.run(
        Command::PlaceBet {
            player_id: p1.clone(),
            stake: Money::new(500, Currency::GBP),
            legs: vec![
                LegRequest {
                    selection_id: sel(&mah, Outcome::Home),
                    price: Price::parse("1.95").unwrap(),
                },
                LegRequest {
                    selection_id: sel(&mou, Outcome::Over),
                    price: Price::parse("1.8").unwrap(),
                },
            ],
            date_of_birth: Some(dob),
            geo: None,
            price_policy: Default::default(),
            idem: idem("bet-0002", "acca"),
        },
        T0 + 6 * min,
    ));
    e.commit();
    // Group: player 2 self-excludes, then a bet is refused (seq 15-16).
    e.run(
        Command::SelfExclude {
            player_id: p2.clone(),
            idem: idem("sx-0002", "self exclude john"),
        },
        T0 + 7 * min,
    );
    let r = e.run(
        Command::PlaceBet {
            player_id: p2.clone(),
            stake: Money::new(200, Currency::GBP),
            legs: vec![LegRequest {
                selection_id: sel(&m1x2, Outcome::Draw),
                price: Price::parse("3.4").unwrap(),
            }],
            date_of_birth: Some(CivilDate::parse("2001-11-30").unwrap()),
            geo: None,
            price_policy: Default::default(),
            idem: idem("bet-0003", "john draw"),
        },
        T0 + 7 * min,
    );
    assert!(matches!(r, Reply::BetRejected { .. }), "{r:?}");
    e.commit();

    // Shop counter (docs/shop-operations.md): two anonymous cash tickets at till s1/t1, the
    // second voided by its cashier inside the void window (seq 17-25).
    let till = |term: &str, staff: &str| Till {
        shop_id: ShopId::new("s1").unwrap(),
        terminal_id: TerminalId::new(term).unwrap(),
        staff_id: StaffId::new(staff).unwrap(),
    };
    let shop_bet = |e: &mut Edge,
                    s: SelectionId,
                    p: &str,
                    stake: i64,
                    key: &str,
                    random: u64,
                    at: i64| match e.run(
        Command::Shop(ShopCommand::PlaceBet {
            each_way: false,
            till: till("t1", "ann"),
            stake: Money::new(stake, Currency::GBP),
            legs: vec![LegRequest {
                selection_id: s,
                price: Price::parse(p).unwrap(),
            }],
            holder: Holder::Cash {
                age_confirmed: true,
            },
            ticket_random: random,
            idem: idem(key, key),
        }),
        at,
    ) {
        Reply::Shop(ShopReply::Ticket(t)) => *t,
        other => panic!("expected a ticket, got {other:?}"),
    };
    let ticket1 = shop_bet(
        &mut e,
        sel(&mou, Outcome::Over),
        "1.8",
        1_000,
        "shop-bet-0001",
        123_456_789,
        T0 + 8 * min,
    );
    let ticket2 = shop_bet(
        &mut e,
        sel(&m1x2, Outcome::Draw),
        "3.4",
        500,
        "shop-bet-0002",
        987_654_321,
        T0 + 8 * min,
    );
    e.commit();
    e.run(
        Command::Shop(ShopCommand::Void {
            till: till("t1", "ann"),
            ticket_id: ticket2.ticket_id.clone(),
            reason: "keyed the wrong selection".into(),
            authorised_by: None,
            idem: idem("void-t1-0002", "void ticket 2"),
        }),
        T0 + 9 * min,
    );
    e.commit();
    let shop_placed = e.state.bets[&ticket1.bet.bet_id].placed.clone();

    // The hub's downstream chain for gb-1: results and settlements, every record sealed
    // (region-hub/src/down.rs).
    let hk = hub_key();
    let mut hub_chain = ChainWriter::new(hub_log.clone(), ChainHead::EMPTY);
    let mut hub: Vec<Frame> = vec![];
    let mut push_hub = |hub: &mut Vec<Frame>, ev: &HubEvent, at: i64| {
        let mut f = hub_chain.append(ev.kind(), UnixMillis(at), ev.to_payload());
        ChainWriter::seal(&mut f, &hk);
        hub.push(f);
    };
    let t_res = T0 + 2 * 86_400_000 + 9 * 3_600_000;
    let s1 = FinalScore { home: 2, away: 1 };
    let s2 = FinalScore { home: 2, away: 1 };
    let r1 = HubEvent::Result(HubResult {
        event_id: ev1.event_id.clone(),
        score: s1,
        result_version: 1,
        source: "football-data.co.uk".into(),
    });
    let r2 = HubEvent::Result(HubResult {
        event_id: ev2.event_id.clone(),
        score: s2,
        result_version: 1,
        source: "football-data.co.uk".into(),
    });
    push_hub(&mut hub, &r1, t_res);
    push_hub(&mut hub, &r2, t_res);
    let results = |v1: (FinalScore, u32)| {
        vec![
            (ev1.event_id.clone(), EventResult::Score(v1.0), v1.1),
            (ev2.event_id.clone(), EventResult::Score(s2), 1),
        ]
    };
    fn lookup<'a>(
        rs: &'a [(EventId, EventResult, u32)],
    ) -> impl Fn(&EventId) -> Option<(&'a EventResult, u32)> + 'a {
        move |id| rs.iter().find(|r| &r.0 == id).map(|r| (&r.1, r.2))
    }
    let placed = |b: &BetId| e.state.bets[b].placed.clone();
    let (placed1, placed2) = (placed(&bet1), placed(&bet2));
    let st1 = hub::settle_bet(&node, &placed1, UnixMillis(0), lookup(&results((s1, 1))))
        .unwrap()
        .unwrap();
    let st2 = hub::settle_bet(&node, &placed2, UnixMillis(0), lookup(&results((s1, 1))))
        .unwrap()
        .unwrap();
    push_hub(&mut hub, &HubEvent::Settlement(st1.clone()), t_res + 1_000);
    push_hub(&mut hub, &HubEvent::Settlement(st2.clone()), t_res + 1_000);
    // A corrected result (version 2): each bet on the event is resettled by a compensating
    // entry (a reversal of its version-1 settlement, which stays in the chain unchanged) and a
    // new settlement. A bet's result version is the sum of its legs' versions, so the
    // accumulator moves from 2 to 3 (region-hub/src/settlement.rs, docs/settlement.md).
    let s1b = FinalScore { home: 2, away: 2 };
    let r1b = HubEvent::Result(HubResult {
        event_id: ev1.event_id.clone(),
        score: s1b,
        result_version: 2,
        source: "operator correction".into(),
    });
    let t_fix = t_res + 3_600_000;
    push_hub(&mut hub, &r1b, t_fix);
    let reversal = |st: &hub::HubSettlement, down_seq: u64| {
        HubEvent::Reversal(hub::HubSettlementReversal {
            bet_id: st.bet_id.clone(),
            node_id: st.node_id.clone(),
            player_id: st.player_id.clone(),
            reversed_result_version: st.result_version,
            reversed_down_seq: down_seq,
            currency: st.currency,
            stake_minor: st.stake_minor,
            payout_minor: st.payout_minor,
            reason: "correction".into(),
        })
    };
    let st1b = hub::settle_bet(&node, &placed1, UnixMillis(0), lookup(&results((s1b, 2))))
        .unwrap()
        .unwrap();
    let st2b = hub::settle_bet(&node, &placed2, UnixMillis(0), lookup(&results((s1b, 2))))
        .unwrap()
        .unwrap();
    push_hub(&mut hub, &reversal(&st1, 3), t_fix);
    push_hub(&mut hub, &HubEvent::Settlement(st1b.clone()), t_fix);
    push_hub(&mut hub, &reversal(&st2, 4), t_fix);
    push_hub(&mut hub, &HubEvent::Settlement(st2b), t_fix);
    // A duplicate delivery of a settlement already applied: the edge pays a bet at most once,
    // so it acknowledges the record and logs it as skipped.
    push_hub(&mut hub, &HubEvent::Settlement(st1b), t_fix + 1_000);

    // The edge applies the verified downstream records: one group per batch received.
    let apply = |e: &mut Edge, f: &Frame, at: i64| {
        let b = f.parse_body().unwrap();
        let event = HubEvent::from_payload(b.kind, &b.payload).unwrap();
        let down = DownRef {
            down_seq: b.seq,
            hub_record_sha256: f.hash().to_hex(),
            hub_timestamp_ms: b.timestamp.0,
        };
        e.run(Command::ApplyDown { down, event }, at);
    };
    let t_apply = t_res + 2_000;
    for f in &hub[0..2] {
        apply(&mut e, f, t_apply);
    }
    e.commit();
    for f in &hub[2..4] {
        apply(&mut e, f, t_apply + 1_000);
    }
    e.commit();
    for f in &hub[4..10] {
        apply(&mut e, f, t_fix + 2_000);
    }
    e.commit();
    // Group: a withdrawal.
    e.run(
        Command::Withdraw {
            player_id: p1.clone(),
            amount: Money::new(1_000, Currency::GBP),
            provider_ref: "psp-7f3a-0002".into(),
            idem: idem("wd-0001", "withdraw 10"),
        },
        T0 + 3 * 86_400_000,
    );
    e.commit();
    // Group: the periodic balance snapshot (kind 56) as of the withdrawal.
    let as_of = e.chain.head().seq;
    for ev in outpost_core::edge::balance_snapshot::snapshot_events(&e.state, as_of) {
        let now = UnixMillis(T0 + 3 * 86_400_000 + min);
        e.state.apply(&ev, now).expect("snapshots apply");
        e.frames
            .push(e.chain.append(ev.kind(), now, ev.to_payload()));
    }
    e.commit();

    // The gate's own records (kinds 12-19), one group, after everything above so the earlier
    // seqs stay as docs/log-format.md describes them. The rules gain a register (GAMSTOP,
    // signed by an example authority key) and a cross-operator cap for this part.
    let t_gate = T0 + 3 * 86_400_000 + 60_000;
    let authority = NodeKey::from_seed(sha256(b"outpost example register authority"));
    e.gate.register_authority = Some(authority.public());
    e.rules.register = Some(outpost_core::jurisdiction::RegisterRules {
        name: "GAMSTOP".into(),
        refresh_interval_minutes: 60,
        staleness_bound_minutes: 1440,
    });
    e.rules.limits.cross_operator_deposit_cap_month_minor = Some(100_000);
    e.identity = Some(register::identity_sha256("Jane Example", dob));
    e.run(
        Command::ActivateRules {
            rules_sha256: hex::encode(sha256(b"example rules file")),
        },
        t_gate,
    );
    e.run(
        Command::LoadRegister {
            doc: register::sign(
                &authority,
                &register::RegisterPayload {
                    register: "GAMSTOP".into(),
                    jurisdiction: gb.clone(),
                    kind: register::RegisterDocKind::Snapshot,
                    seq: 1,
                    base_seq: None,
                    issued_at_ms: t_gate - 60_000,
                    add: vec![register::identity_sha256(
                        "John Example",
                        CivilDate::parse("2001-11-30").unwrap(),
                    )],
                    remove: vec![],
                },
            ),
        },
        t_gate,
    );
    e.run(
        Command::SetLimit {
            player_id: p1.clone(),
            kind: LimitKind::Deposit,
            window: Window::Week,
            amount_minor: Some(50_000),
            idem: idem("lim-0001", "deposit limit 500/week"),
        },
        t_gate,
    );
    e.run(
        Command::AckRealityCheck {
            player_id: p1.clone(),
            idem: idem("rc-0001", "reality check"),
        },
        t_gate,
    );
    e.run(
        Command::ReportCrossOperator {
            player_id: p1.clone(),
            other_operators_month_minor: 20_000,
            source: "LUGAS-example".into(),
            idem: idem("xo-0001", "lugas figure"),
        },
        t_gate,
    );
    e.run(
        Command::CompleteWithdrawal {
            provider_ref: "psp-7f3a-0002".into(),
            paid: true,
            idem: idem("wdc-0001", "withdrawal paid"),
        },
        t_gate,
    );
    // Three deposits just under the (example) due-diligence threshold: the structuring rule
    // flags the third (AmlFlagged).
    e.rules.aml.due_diligence_minor = 10_000;
    for (i, amount) in [9_500, 9_600, 9_700].into_iter().enumerate() {
        let r = e.run(
            Command::Deposit {
                player_id: p1.clone(),
                amount: Money::new(amount, Currency::GBP),
                provider_ref: format!("psp-7f3a-01{i:02}"),
                idem: idem(&format!("dep-01{i:02}"), &format!("deposit {amount}")),
            },
            t_gate,
        );
        assert!(matches!(r, Reply::Movement { .. }), "{r:?}");
    }
    e.run(
        Command::TimeOut {
            player_id: p1.clone(),
            kind: TimeOutKind::TimeOut,
            hours: 24,
            idem: idem("to-0001", "time out 24h"),
        },
        t_gate,
    );
    e.commit();

    // The hub settles the shop ticket (appended to its chain); the edge applies it and the
    // ticket is paid at the shop's other till.
    let st_shop = hub::settle_bet(
        &node,
        &shop_placed,
        UnixMillis(0),
        lookup(&results((s1b, 2))),
    )
    .unwrap()
    .unwrap();
    push_hub(
        &mut hub,
        &HubEvent::Settlement(st_shop),
        t_res + 3_600_000 + 60_000,
    );
    let last = hub.last().unwrap().clone();
    apply(&mut e, &last, T0 + 3 * 86_400_000 + min);
    e.commit();
    e.run(
        Command::Shop(ShopCommand::Payout {
            till: till("t2", "bob"),
            ticket_id: ticket1.ticket_id.clone(),
            id_checked: false,
            idem: idem("payout-t2-0001", "pay ticket 1"),
        }),
        T0 + 3 * 86_400_000 + 2 * min,
    );
    e.commit();

    // The hub announces a race result (kind 72: the Hamilton race of the Betfair fixture,
    // winner and two non-runners); the edge closes the race's markets (kind 9, no score).
    {
        use outpost_core::settlement::race_result::{NonRunner, Placing, RaceResult};
        use outpost_core::settlement::rule4::Deduction;
        let race = RaceResult::new(
            vec![Placing {
                runner: 12115648,
                position: 1,
            }],
            vec![
                NonRunner {
                    runner: 11198538,
                    withdrawn_at: UnixMillis(1497423650000),
                    deduction: Deduction(5),
                },
                NonRunner {
                    runner: 9606433,
                    withdrawn_at: UnixMillis(1497432223000),
                    deduction: Deduction(0),
                },
            ],
            12,
            true,
        )
        .unwrap();
        let ev = hub::result_event(
            EventId::new("bf:28262365:2017-06-14T13:15:00.000Z").unwrap(),
            EventResult::Race(race),
            1,
            "agreed: betfair, racing-post".into(),
        );
        push_hub(&mut hub, &ev, T0 + 3 * 86_400_000 + 2 * min + 30_000);
        let last = hub.last().unwrap().clone();
        apply(&mut e, &last, T0 + 3 * 86_400_000 + 2 * min + 40_000);
        e.commit();
    }

    // Group: a feed producer recovers and a feed market's prices are logged (odds records).
    e.run(odds_demo(), T0 + 3 * 86_400_000 + 3 * min);
    e.commit();

    Demo {
        edge_key: e.key,
        hub_key: hk,
        edge_log,
        hub_log,
        edge: e.frames,
        hub,
        split,
        pii: (salt, doc, commitment),
    }
}

/// A UOF producer's recovery and one 1X2 feed market opening at laddered prices.
fn odds_demo() -> Command {
    use outpost_core::feed::records::{
        ChangeReason, MarketView, OddsChanged, ProducerChanged, SelectionView,
    };
    let event = EventId::new("sr:match:42").unwrap();
    let kind = MarketKind::MatchResult;
    let market_id = Market::market_id_for(&event, &kind);
    let selections = [
        (Outcome::Home, "2.220"),
        (Outcome::Draw, "3.550"),
        (Outcome::Away, "3.100"),
    ]
    .into_iter()
    .map(|(o, p)| SelectionView {
        selection_id: Market::selection_id_for(&market_id, o),
        outcome: o,
        price: Some(Price::parse(p).unwrap()),
    })
    .collect();
    Command::RecordOdds {
        producers: vec![ProducerChanged {
            producer: "uof:3".into(),
            up: true,
            reason: ChangeReason::RecoveryComplete,
            at: UnixMillis(1_653_576_646_191),
        }],
        changes: vec![OddsChanged {
            odds_seq: 1,
            reason: ChangeReason::RecoveryComplete,
            source_ts: UnixMillis(1_653_576_646_191),
            market: MarketView {
                market_id,
                event_id: event,
                kind,
                status: outpost_core::market::MarketStatus::Open,
                in_play: true,
                producer: "uof:3".into(),
                selections,
            },
        }],
    }
}

/// The chain head after `frames` (which continue `start`).
pub fn head_after(start: ChainHead, frames: &[Frame]) -> ChainHead {
    frames.iter().fold(start, |_, f| {
        let b = f.parse_body().unwrap();
        ChainHead {
            seq: b.seq,
            hash: f.hash(),
            timestamp: b.timestamp,
        }
    })
}

/// The segment header for `frames`, which continue `start`.
pub fn header_for(
    log_id: &LogId,
    key: &NodeKey,
    start: ChainHead,
    frames: &[Frame],
) -> SegmentHeader {
    let end = head_after(start, frames);
    SegmentHeader {
        format: "outpost-segment/1".into(),
        log_id: log_id.clone(),
        first_seq: start.seq.next(),
        last_seq: end.seq,
        prev_hash: start.hash.to_hex(),
        prev_timestamp_ms: start.timestamp.0,
        last_hash: end.hash.to_hex(),
        records: frames.len() as u64,
        public_key: key.public().to_hex(),
    }
}

/// A complete segment file for `frames`, which continue `start`.
pub fn segment_file(log_id: &LogId, key: &NodeKey, start: ChainHead, frames: &[Frame]) -> Vec<u8> {
    encode_segment(&header_for(log_id, key, start, frames), frames)
}

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: make_segment OUT_DIR");
        std::process::exit(2);
    });
    let out = std::path::Path::new(&out);
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    let d = build_demo();
    let write = |name: &str, bytes: Vec<u8>| {
        std::fs::write(out.join(name), bytes).expect("write segment");
        println!("wrote {}", out.join(name).display());
    };
    write(
        "gb-1.seg",
        segment_file(&d.edge_log, &d.edge_key, ChainHead::EMPTY, &d.edge),
    );
    let (a, b) = d.edge.split_at(d.split);
    write(
        "gb-1.part1.seg",
        segment_file(&d.edge_log, &d.edge_key, ChainHead::EMPTY, a),
    );
    write(
        "gb-1.part2.seg",
        segment_file(&d.edge_log, &d.edge_key, head_after(ChainHead::EMPTY, a), b),
    );
    write(
        "hub~gb-1.seg",
        segment_file(&d.hub_log, &d.hub_key, ChainHead::EMPTY, &d.hub),
    );

    println!("\nedge public key (gb-1):    {}", d.edge_key.public());
    println!("edge private seed (DEMO ONLY): {}", d.edge_key.seed_hex());
    println!("hub public key (hub/gb-1): {}", d.hub_key.public());
    println!(
        "edge records: {}, hub records: {}, split after seq {}",
        d.edge.len(),
        d.hub.len(),
        d.split
    );

    // The worked example: the KYC record (seq 3), a commit group of its own, so sealed.
    let f = &d.edge[2];
    let body = f.parse_body().unwrap();
    assert_eq!(body.kind, RecordKind::KycVerified);
    println!(
        "\n== worked example: {} seq {} ==",
        body.kind.name(),
        body.seq
    );
    println!("body ({} bytes):\n{}", f.body.len(), hex::encode(&f.body));
    println!(
        "frame ({} bytes):\n{}",
        f.encode().len(),
        hex::encode(f.encode())
    );
    println!("record hash: {}", f.hash());
    println!("prev_hash:   {}", body.prev_hash);
    println!("seal:        {}", hex::encode(f.seal.unwrap()));
    println!("payload:     {}", String::from_utf8_lossy(&body.payload));

    println!(
        "\n== PII commitment ==\nsalt: {}\ncanonical json: {}\npii_sha256: {}",
        d.pii.0, d.pii.1, d.pii.2
    );

    println!("\n== one payload per kind ==");
    let mut seen = std::collections::BTreeSet::new();
    for f in d.edge.iter().chain(&d.hub) {
        let b = f.parse_body().unwrap();
        // Settlements and their corrections are printed in full: the examples in
        // docs/log-format.md follow one bet through a correction.
        let every = matches!(b.kind as u8, 10 | 65..=67).then_some(b.seq);
        if seen.insert((
            b.kind as u8,
            String::from_utf8_lossy(&b.payload).contains("\"accepted\":false"),
            every,
        )) {
            println!(
                "{} {} seq {} ts {}: {}",
                b.kind as u8,
                b.kind.name(),
                b.seq,
                b.timestamp.0,
                String::from_utf8_lossy(&b.payload)
            );
        }
    }
    println!("\n== all records ==");
    for f in d.edge.iter().chain(&d.hub) {
        let b = f.parse_body().unwrap();
        println!(
            "{} #{} {} sealed={} hash={}",
            b.log_id,
            b.seq,
            b.kind.name(),
            f.seal.is_some(),
            f.hash()
        );
    }
    // Sanity: every edge event round-trips through its schema.
    for f in &d.edge {
        let b = f.parse_body().unwrap();
        EdgeEvent::from_payload(b.kind, &b.payload).expect("edge payload matches its schema");
    }
}
