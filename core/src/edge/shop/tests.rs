//! Shop tickets through decide/apply: cash and account bets, payout exactly once, voids,
//! expiry, cross-shop redemption, retail rules, and replay of the resulting log.

use super::*;
use crate::edge::events::{DownRef, Genesis};
use crate::fixtures::football_data::parse_matches;
use crate::hub::{HubEvent, HubSettlement};
use crate::ids::{Jurisdiction, Seq};
use crate::market::MarketKind;
use proptest::prelude::*;

const CSV: &str = include_str!("../../../../fixtures/football-data/E0_2324.csv");
const T0: UnixMillis = UnixMillis(1_700_000_000_000);

fn rules(retail: Option<RetailRules>) -> JurisdictionRules {
    JurisdictionRules {
        name: "GB".into(),
        rules_version: "gb-test".into(),
        retail,
        ..crate::jurisdiction::example_rules()
    }
}

fn gb_retail() -> RetailRules {
    RetailRules {
        cash_id_threshold_minor: 200_000,
        player_id_required: false,
        ticket_expiry_days: 180,
        cross_shop_redemption: true,
        void_window_secs: 120,
    }
}

struct World {
    st: EdgeState,
    rules: JurisdictionRules,
    log: Vec<(EdgeEvent, UnixMillis)>,
    n: u64,
}

fn idem(k: &str) -> IdemTag {
    IdemTag {
        key: IdemKey::new(k).unwrap(),
        request_sha256: hex::encode(sha256(k.as_bytes())),
    }
}

fn till(shop: &str, term: &str, staff: &str) -> Till {
    Till {
        shop_id: ShopId::new(shop).unwrap(),
        terminal_id: TerminalId::new(term).unwrap(),
        staff_id: StaffId::new(staff).unwrap(),
    }
}

impl World {
    fn new(retail: Option<RetailRules>) -> World {
        let mut w = World {
            st: EdgeState::default(),
            rules: rules(retail),
            log: vec![],
            n: 0,
        };
        w.run(
            Command::Genesis(Genesis {
                node_id: NodeId::new("gb-1").unwrap(),
                jurisdiction: Jurisdiction::new("GB").unwrap(),
                currency: Currency::GBP,
                public_key: "00".repeat(32),
                software: "test".into(),
            }),
            T0,
        )
        .unwrap();
        let f = parse_matches(CSV, "E0").unwrap().remove(0);
        for m in f.markets {
            w.run(
                Command::OpenMarket {
                    event: f.event.clone(),
                    market: m,
                },
                T0,
            )
            .unwrap();
        }
        w
    }
    fn run(&mut self, cmd: Command, now: UnixMillis) -> Result<Reply, CommandError> {
        let d = self.st.decide(
            cmd,
            &DecideCtx {
                now,
                rules: &self.rules,
                gate: &Default::default(),
                identity_sha256: None,
                // The vault's date of birth for every player of this world (deposits are gated).
                date_of_birth: Some(CivilDate::new(1990, 1, 1).unwrap()),
            },
        )?;
        for ev in &d.events {
            self.st.apply(ev, now).unwrap();
            self.log.push((ev.clone(), now));
        }
        assert_eq!(self.st.ledger().sum(), 0);
        Ok(d.reply)
    }
    fn leg(&self, outcome_idx: usize) -> LegRequest {
        let m = self
            .st
            .markets
            .values()
            .find(|m| m.kind == MarketKind::MatchResult)
            .unwrap();
        let s = &m.selections[outcome_idx];
        LegRequest {
            selection_id: s.selection_id.clone(),
            price: s.price,
        }
    }
    fn cash_bet(
        &mut self,
        t: Till,
        stake: i64,
        key: &str,
        now: UnixMillis,
    ) -> Result<Reply, CommandError> {
        self.n += 1;
        let leg = self.leg(0);
        self.run(
            Command::Shop(ShopCommand::PlaceBet {
                each_way: false,
                till: t,
                stake: Money::new(stake, Currency::GBP),
                legs: vec![leg],
                holder: Holder::Cash {
                    age_confirmed: true,
                },
                ticket_random: 123_456_789 + self.n * 7919,
                idem: idem(key),
            }),
            now,
        )
    }
    fn settle(&mut self, bet: &BetId, payout: i64) {
        let b = self.st.bets[bet].placed.clone();
        let down = DownRef {
            down_seq: self.st.down_applied.next(),
            hub_record_sha256: "ab".repeat(32),
            hub_timestamp_ms: T0.0,
        };
        self.run(
            Command::ApplyDown {
                down,
                event: HubEvent::Settlement(HubSettlement {
                    bet_id: bet.clone(),
                    node_id: NodeId::new("gb-1").unwrap(),
                    player_id: b.player_id,
                    result_version: 1,
                    leg_results: vec![if payout > 0 {
                        LegResult::Win
                    } else {
                        LegResult::Lose
                    }],
                    currency: Currency::GBP,
                    stake_minor: b.stake_minor,
                    payout_minor: payout,
                    leg_factors: Vec::new(),
                }),
            },
            T0,
        )
        .unwrap();
    }
    fn payout(
        &mut self,
        t: Till,
        id: &TicketId,
        key: &str,
        now: UnixMillis,
    ) -> Result<Reply, CommandError> {
        self.run(
            Command::Shop(ShopCommand::Payout {
                till: t,
                ticket_id: id.clone(),
                id_checked: false,
                idem: idem(key),
            }),
            now,
        )
    }
    fn replay_matches(&self) {
        let mut r = EdgeState::default();
        for (ev, at) in &self.log {
            r.apply(ev, *at).unwrap();
        }
        assert_eq!(r, self.st);
    }
}

fn ticket(r: Reply) -> TicketView {
    match r {
        Reply::Shop(ShopReply::Ticket(t)) => *t,
        other => panic!("expected a ticket, got {other:?}"),
    }
}

fn shop_err(r: Result<Reply, CommandError>) -> ShopError {
    match r {
        Err(CommandError::Shop(e)) => e,
        other => panic!("expected a shop error, got {other:?}"),
    }
}

#[test]
fn ticket_ids_check_digit() {
    let t = TicketId::generate(1, 987_654_321);
    assert_eq!(t.as_str().len(), TICKET_DIGITS);
    assert_eq!(TicketId::parse(t.as_str()).unwrap(), t);
    // The Luhn worked example from ISO/IEC 7812: 7992739871 → check digit 3.
    assert_eq!(luhn_check_digit("7992739871"), 3);
    assert_eq!(TicketId::parse("12345"), Err(TicketIdError::Unreadable));
    assert_eq!(
        TicketId::parse("12345678901234567x"),
        Err(TicketIdError::Unreadable)
    );
    let mut wrong = t.as_str().as_bytes().to_vec();
    wrong[17] = b'0' + (wrong[17] - b'0' + 1) % 10;
    assert_eq!(
        TicketId::parse(std::str::from_utf8(&wrong).unwrap()),
        Err(TicketIdError::CheckDigit)
    );
}

proptest! {
    /// Luhn catches every single-digit substitution.
    #[test]
    fn luhn_catches_single_digit_errors(serial in 0u64..100_000_000, random: u64, pos in 0usize..18, delta in 1u8..10) {
        let t = TicketId::generate(serial, random);
        let mut b = t.as_str().as_bytes().to_vec();
        b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
        prop_assert_eq!(TicketId::parse(std::str::from_utf8(&b).unwrap()), Err(TicketIdError::CheckDigit));
    }
}

#[test]
fn cash_bet_win_pay_once_ledger_balances() {
    let mut w = World::new(Some(gb_retail()));
    let t = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    assert_eq!(t.state, "open");
    assert_eq!(t.holder, HolderKind::Cash);
    let shop_cash = Account::ShopCash(ShopId::new("s1").unwrap());
    assert_eq!(w.st.ledger().balance(&shop_cash), -1000);
    // Retry with the same key: same ticket, nothing new logged.
    let before = w.log.len();
    let again = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    assert_eq!(again.ticket_id, t.ticket_id);
    assert_eq!(w.log.len(), before);

    assert_eq!(
        shop_err(w.payout(till("s1", "t2", "bob"), &t.ticket_id, "p0", T0)),
        ShopError::NotSettled(t.ticket_id.clone())
    );
    w.settle(&t.bet.bet_id, 2500);
    let paid = ticket(
        w.payout(till("s1", "t2", "bob"), &t.ticket_id, "p1", T0)
            .unwrap(),
    );
    assert_eq!(paid.state, "paid");
    assert_eq!(paid.paid.as_ref().unwrap().payout_minor, 2500);
    assert_eq!(w.st.ledger().balance(&shop_cash), 1500);
    // The same request again (network retry) answers the same; another till is refused.
    assert_eq!(
        ticket(
            w.payout(till("s1", "t2", "bob"), &t.ticket_id, "p1", T0)
                .unwrap()
        )
        .state,
        "paid"
    );
    assert!(matches!(
        shop_err(w.payout(till("s1", "t1", "ann"), &t.ticket_id, "p2", T0)),
        ShopError::AlreadyPaid { .. }
    ));
    let paid_records = w
        .log
        .iter()
        .filter(|(e, _)| matches!(e, EdgeEvent::ShopTicketPaid(_)))
        .count();
    assert_eq!(paid_records, 1);
    w.replay_matches();
}

#[test]
fn a_log_that_pays_twice_does_not_replay() {
    let mut w = World::new(Some(gb_retail()));
    let t = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    w.settle(&t.bet.bet_id, 2500);
    w.payout(till("s1", "t1", "ann"), &t.ticket_id, "p1", T0)
        .unwrap();
    let paid = w
        .log
        .iter()
        .find(|(e, _)| matches!(e, EdgeEvent::ShopTicketPaid(_)))
        .unwrap()
        .0
        .clone();
    assert!(matches!(
        w.st.clone().apply(&paid, T0),
        Err(ApplyError::Shop(_))
    ));
}

#[test]
fn lost_unknown_expired_and_other_shop() {
    let mut w = World::new(Some(RetailRules {
        cross_shop_redemption: false,
        ..gb_retail()
    }));
    let lost = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    w.settle(&lost.bet.bet_id, 0);
    assert_eq!(
        shop_err(w.payout(till("s1", "t1", "ann"), &lost.ticket_id, "p1", T0)),
        ShopError::NothingToPay(lost.ticket_id.clone())
    );
    let forged = TicketId::generate(99, 42);
    assert_eq!(
        shop_err(w.payout(till("s1", "t1", "ann"), &forged, "p2", T0)),
        ShopError::TicketNotFound(forged)
    );
    let won = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k2", T0).unwrap());
    w.settle(&won.bet.bet_id, 3000);
    assert_eq!(
        shop_err(w.payout(till("s2", "t1", "cy"), &won.ticket_id, "p3", T0)),
        ShopError::OtherShop(won.ticket_id.clone())
    );
    let late = UnixMillis(T0.0 + 181 * 86_400_000);
    assert!(matches!(
        shop_err(w.payout(till("s1", "t1", "ann"), &won.ticket_id, "p4", late)),
        ShopError::TicketExpired { .. }
    ));
    assert_eq!(
        w.st.ticket_view(&won.ticket_id, late).unwrap().state,
        "expired"
    );
    w.replay_matches();
}

#[test]
fn cross_shop_redemption_when_allowed() {
    let mut w = World::new(Some(gb_retail()));
    let t = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    w.settle(&t.bet.bet_id, 1900);
    ticket(
        w.payout(till("s2", "t9", "cy"), &t.ticket_id, "p1", T0)
            .unwrap(),
    );
    let s2 = Account::ShopCash(ShopId::new("s2").unwrap());
    assert_eq!(w.st.ledger().balance(&s2), 1900);
}

#[test]
fn void_window_and_manager() {
    let mut w = World::new(Some(gb_retail()));
    let t = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    let void = |w: &mut World, staff: &str, mgr: Option<&str>, key: &str, now: UnixMillis| {
        w.run(
            Command::Shop(ShopCommand::Void {
                till: till("s1", "t1", staff),
                ticket_id: t.ticket_id.clone(),
                reason: "customer changed mind".into(),
                authorised_by: mgr.map(|m| StaffId::new(m).unwrap()),
                idem: idem(key),
            }),
            now,
        )
    };
    assert!(matches!(
        shop_err(void(&mut w, "bob", None, "v1", T0)),
        ShopError::VoidRefused(_)
    ));
    let later = UnixMillis(T0.0 + 121_000);
    assert!(matches!(
        shop_err(void(&mut w, "ann", None, "v2", later)),
        ShopError::VoidRefused(_)
    ));
    let v = ticket(void(&mut w, "ann", Some("meg"), "v3", later).unwrap());
    assert_eq!(v.state, "voided");
    assert_eq!(
        v.voided
            .as_ref()
            .unwrap()
            .authorised_by
            .as_ref()
            .unwrap()
            .as_str(),
        "meg"
    );
    let shop_cash = Account::ShopCash(ShopId::new("s1").unwrap());
    assert_eq!(w.st.ledger().balance(&shop_cash), 0);
    // The hub's later settlement of the voided bet is skipped, not applied twice.
    let before = w.st.ledger().balance(&Account::House);
    w.settle(&t.bet.bet_id, 2000);
    assert_eq!(w.st.ledger().balance(&Account::House), before);
    assert_eq!(
        shop_err(w.payout(till("s1", "t1", "ann"), &t.ticket_id, "p1", T0)),
        ShopError::TicketVoided(t.ticket_id.clone())
    );
    w.replay_matches();
}

#[test]
fn own_void_inside_the_window() {
    let mut w = World::new(Some(gb_retail()));
    let t = ticket(w.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0).unwrap());
    let r = w.run(
        Command::Shop(ShopCommand::Void {
            till: till("s1", "t1", "ann"),
            ticket_id: t.ticket_id.clone(),
            reason: "misprint".into(),
            authorised_by: None,
            idem: idem("v1"),
        }),
        UnixMillis(T0.0 + 60_000),
    );
    assert_eq!(ticket(r.unwrap()).state, "voided");
}

#[test]
fn retail_rules_threshold_dk_and_missing() {
    let mut none = World::new(None);
    assert_eq!(
        shop_err(none.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0)),
        ShopError::RetailRulesMissing
    );
    let mut dk = World::new(Some(RetailRules {
        player_id_required: true,
        ..gb_retail()
    }));
    assert_eq!(
        shop_err(dk.cash_bet(till("s1", "t1", "ann"), 1000, "k1", T0)),
        ShopError::PlayerIdRequired
    );
    let mut gb = World::new(Some(gb_retail()));
    assert!(matches!(
        shop_err(gb.cash_bet(till("s1", "t1", "ann"), 200_001, "k1", T0)),
        ShopError::IdRequired { .. }
    ));
    // Below the threshold, the shared gate still applies (minimum stake).
    let r = gb.cash_bet(till("s1", "t1", "ann"), 5, "k2", T0).unwrap();
    assert!(matches!(
        r,
        Reply::BetRejected {
            reason: gate::ReasonCode::StakeTooLow,
            ..
        }
    ));
    assert_eq!(gb.st.shop.tickets.len(), 0);
}

#[test]
fn account_bet_goes_through_the_gate() {
    let mut w = World::new(Some(gb_retail()));
    let p = match w
        .run(
            Command::RegisterPlayer {
                jurisdiction: Jurisdiction::new("GB").unwrap(),
                pii_sha256: "00".repeat(32),
                idem: idem("r1"),
            },
            T0,
        )
        .unwrap()
    {
        Reply::Player(p) => p.player_id,
        _ => unreachable!(),
    };
    let leg = w.leg(1);
    let place = |w: &mut World, key: &str| {
        w.run(
            Command::Shop(ShopCommand::PlaceBet {
                each_way: false,
                till: till("s1", "t1", "ann"),
                stake: Money::new(500, Currency::GBP),
                legs: vec![leg.clone()],
                holder: Holder::Account {
                    player_id: p.clone(),
                    date_of_birth: Some(CivilDate::new(1990, 1, 1).unwrap()),
                },
                ticket_random: 5,
                idem: idem(key),
            }),
            T0,
        )
    };
    // Not KYC-verified: the ordinary gate refuses it and no ticket is issued.
    assert!(matches!(
        place(&mut w, "b1").unwrap(),
        Reply::BetRejected {
            reason: gate::ReasonCode::KycRequired,
            ..
        }
    ));
    w.run(
        Command::VerifyKyc {
            player_id: p.clone(),
            idem: idem("kyc"),
        },
        T0,
    )
    .unwrap();
    w.run(
        Command::Deposit {
            player_id: p.clone(),
            amount: Money::new(2000, Currency::GBP),
            provider_ref: "x".into(),
            idem: idem("d1"),
        },
        T0,
    )
    .unwrap();
    let t = ticket(place(&mut w, "b2").unwrap());
    assert_eq!(t.holder, HolderKind::Account);
    assert_eq!(t.bet.player_id, p);
    w.replay_matches();
    assert_eq!(w.st.ledger().balance(&Account::PlayerStakes(p)), 500);
    let _ = Seq::ZERO;
}

#[test]
fn shop_cash_account_round_trips() {
    let a = Account::ShopCash(ShopId::new("s-12").unwrap());
    let j = serde_json::to_string(&a).unwrap();
    assert_eq!(j, "\"shop:s-12:cash\"");
    assert_eq!(serde_json::from_str::<Account>(&j).unwrap(), a);
    assert!(serde_json::from_str::<Account>("\"shop:S 1:cash\"").is_err());
    assert!(serde_json::from_str::<Account>("\"shop:s1:stakes\"").is_err());
}

#[test]
fn retail_rules_validate() {
    let r = rules(Some(RetailRules {
        ticket_expiry_days: 0,
        ..gb_retail()
    }));
    assert_eq!(r.validate().unwrap_err().field, "retail.ticket_expiry_days");
    assert!(rules(Some(gb_retail())).validate().is_ok());
}

/// A race-win market with each-way terms (1/5 odds, 3 places), as the Betfair feed opens one.
fn open_race(w: &mut World) -> crate::market::Market {
    open_race_at(w, "bf:28587288")
}

fn open_race_at(w: &mut World, event_id: &str) -> crate::market::Market {
    use crate::ids::EventId;
    use crate::market::{EachWayTerms, Market, MarketStatus, Outcome, SelectionPrice, SportEvent};
    if !w
        .rules
        .bets
        .sports_allowed
        .iter()
        .any(|s| s == "horse_racing")
    {
        w.rules.bets.sports_allowed.push("horse_racing".into());
        w.rules.bets.market_kinds_allowed.push("race_win".into());
    }
    let event = SportEvent {
        event_id: EventId::new(event_id).unwrap(),
        competition: "Hamilton".into(),
        home: "7f Hcap".into(),
        away: String::new(),
        kickoff: UnixMillis(T0.0 + 3_600_000),
    };
    let kind = MarketKind::RaceWin {
        each_way: Some(EachWayTerms {
            places: 3,
            fraction_num: 1,
            fraction_den: 5,
        }),
    };
    let market_id = Market::market_id_for(&event.event_id, &kind);
    let market = Market {
        market_id: market_id.clone(),
        event_id: event.event_id.clone(),
        kind,
        status: MarketStatus::Open,
        selections: [(1, "12.0"), (2, "3.5"), (3, "5.0")]
            .into_iter()
            .map(|(id, p)| SelectionPrice {
                selection_id: Market::selection_id_for(&market_id, Outcome::Runner { id }),
                outcome: Outcome::Runner { id },
                price: Price::parse(p).unwrap(),
            })
            .collect(),
    };
    w.run(
        Command::OpenMarket {
            event,
            market: market.clone(),
        },
        T0,
    )
    .unwrap();
    market
}

#[test]
fn each_way_cash_single_takes_twice_the_unit_and_pays_the_settled_parts() {
    use crate::settlement::each_way::Finish;
    use crate::settlement::each_way_bet::{EachWayLeg, settle_each_way};
    use crate::settlement::rule4::Deduction;
    let mut w = World::new(Some(gb_retail()));
    let race = open_race(&mut w);
    let t = till("shop-1", "t1", "alice");
    let cash_before =
        w.st.ledger()
            .balance(&Account::ShopCash(ShopId::new("shop-1").unwrap()));
    let place = |w: &mut World, sel: usize, key: &str, each_way: bool| {
        let s = &race.selections[sel];
        w.run(
            Command::Shop(ShopCommand::PlaceBet {
                till: t.clone(),
                stake: Money::new(500, Currency::GBP),
                legs: vec![LegRequest {
                    selection_id: s.selection_id.clone(),
                    price: s.price,
                }],
                each_way,
                holder: Holder::Cash {
                    age_confirmed: true,
                },
                ticket_random: 42 + key.len() as u64 * 7919,
                idem: idem(key),
            }),
            T0,
        )
    };
    // £5 each-way at 11/1: £10 taken; returns £76 if it wins, £16 if placed.
    let won = ticket(place(&mut w, 0, "ew-1", true).unwrap());
    assert_eq!(won.bet.stake_minor, 1000);
    assert!(won.bet.each_way);
    assert_eq!(won.bet.potential_payout_minor, 7600);
    let ew = won.each_way.clone().unwrap();
    assert_eq!(
        (
            ew.unit_stake_minor,
            ew.total_stake_minor,
            ew.if_won_minor,
            ew.if_placed_minor
        ),
        (500, 1000, 7600, 1600)
    );
    assert_eq!(ew.terms, vec![leg_each_way_terms(&race.kind).unwrap()]);
    let placed = ticket(place(&mut w, 2, "ew-2", true).unwrap());
    let shop_cash = Account::ShopCash(ShopId::new("shop-1").unwrap());
    // The ledger books cash taken at the counter out of the shop's cash account (its balance
    // is the shop's position towards the bets it holds): two each-way bets, £20.
    assert_eq!(w.st.ledger().balance(&shop_cash), cash_before - 2000);
    // A football selection has no each-way terms; an account each-way is refused.
    let football = w.leg(0);
    let e = shop_err(w.run(
        Command::Shop(ShopCommand::PlaceBet {
            till: t.clone(),
            stake: Money::new(500, Currency::GBP),
            legs: vec![football.clone()],
            each_way: true,
            holder: Holder::Cash {
                age_confirmed: true,
            },
            ticket_random: 1,
            idem: idem("ew-football"),
        }),
        T0,
    ));
    assert_eq!(e, ShopError::EachWayNotOffered(football.selection_id));
    // The hub settles each from the finish (the core rule); the till pays exactly that, once.
    let settle = |finish| {
        settle_each_way(
            500,
            &[EachWayLeg {
                price: race.selections[0].price,
                terms: leg_each_way_terms(&race.kind).unwrap(),
                finish,
                deduction: Deduction::NONE,
            }],
        )
        .unwrap()
    };
    let (win_pay, win_legs) = settle(Finish::Position {
        position: 1,
        tied: 1,
    });
    assert_eq!((win_pay, win_legs), (7600, vec![LegResult::Win]));
    w.settle(&won.bet.bet_id, win_pay);
    let placed_pay = settle_each_way(
        500,
        &[EachWayLeg {
            price: race.selections[2].price,
            terms: leg_each_way_terms(&race.kind).unwrap(),
            finish: Finish::Position {
                position: 2,
                tied: 1,
            },
            deduction: Deduction::NONE,
        }],
    )
    .unwrap()
    .0;
    assert_eq!(placed_pay, 500 * (100 + 400 / 5) / 100); // 5 × (1 + 4/5) = £9
    w.settle(&placed.bet.bet_id, placed_pay);
    let paid = ticket(w.payout(t.clone(), &won.ticket_id, "pay-ew-1", T0).unwrap());
    assert_eq!(paid.paid.unwrap().payout_minor, 7600);
    let paid = ticket(
        w.payout(t.clone(), &placed.ticket_id, "pay-ew-2", T0)
            .unwrap(),
    );
    assert_eq!(paid.paid.unwrap().payout_minor, 900);
    assert!(matches!(
        shop_err(w.payout(t, &won.ticket_id, "pay-ew-1-again", T0)),
        ShopError::AlreadyPaid { .. }
    ));
    assert_eq!(
        w.st.ledger().balance(&shop_cash),
        cash_before - 2000 + 7600 + 900
    );
    w.replay_matches();
}

/// An each-way double at the counter: both legs must offer each-way; £1 E/W (£2 taken) at
/// 11/1 and 4/1, 1/5 odds 3 places: won = 12 × 5 + 3.2 × 1.8 = £65.76, placed = £5.76.
#[test]
fn each_way_double_at_the_counter() {
    let mut w = World::new(Some(gb_retail()));
    let a = open_race_at(&mut w, "bf:1");
    let b = open_race_at(&mut w, "bf:2");
    let leg = |m: &crate::market::Market, i: usize| LegRequest {
        selection_id: m.selections[i].selection_id.clone(),
        price: m.selections[i].price,
    };
    let bet = |w: &mut World, legs: Vec<LegRequest>, key: &str| {
        w.run(
            Command::Shop(ShopCommand::PlaceBet {
                till: till("shop-1", "t1", "alice"),
                stake: Money::new(100, Currency::GBP),
                legs,
                each_way: true,
                holder: Holder::Cash {
                    age_confirmed: true,
                },
                ticket_random: 77 + key.len() as u64,
                idem: idem(key),
            }),
            T0,
        )
    };
    let t = ticket(bet(&mut w, vec![leg(&a, 0), leg(&b, 2)], "ew-double").unwrap());
    let ew = t.each_way.unwrap();
    assert_eq!(
        (
            t.bet.stake_minor,
            ew.if_won_minor,
            ew.if_placed_minor,
            ew.terms.len()
        ),
        (200, 6576, 576, 2)
    );
    // A football leg in an each-way multiple is refused.
    let football = w.leg(0);
    assert_eq!(
        shop_err(bet(&mut w, vec![leg(&a, 1), football.clone()], "ew-mixed")),
        ShopError::EachWayNotOffered(football.selection_id)
    );
    w.replay_matches();
}
