//! Results intake, corrections and rollbacks at the hub, with the down chain applied by a
//! real edge state machine (`outpost_core::edge`) so wallet effects are checked end to end.

use super::*;
use crate::store::HubState;
use crate::test_support::*;
use outpost_core::edge::events::{
    BetLeg, DownRef, EdgeEvent, IdemTag, MovementReason, PlayerRegistered, WalletMovement,
};
use outpost_core::edge::{Command, DecideCtx, EdgeState};
use outpost_core::ids::{IdemKey, PlayerId, Seq};
use outpost_core::ledger::{Account, Posting};
use outpost_core::market::{Line, MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;
use std::sync::atomic::Ordering;

fn s(home: u16, away: u16) -> FinalScore {
    FinalScore { home, away }
}
fn p1() -> PlayerId {
    PlayerId::new("p-1").unwrap()
}
fn idem(k: &str) -> IdemTag {
    IdemTag {
        key: IdemKey::new(k).unwrap(),
        request_sha256: "00".repeat(32),
    }
}
fn movement(id: u64, reason: MovementReason, from: Account, to: Account, amount: i64) -> EdgeEvent {
    EdgeEvent::WalletMovement(WalletMovement {
        movement_id: id,
        player_id: p1(),
        reason,
        currency: Currency::GBP,
        postings: vec![Posting {
            from,
            to,
            amount_minor: amount,
        }],
        bet_id: None,
        provider_ref: None,
        decision: None,
        idem: None,
    })
}
fn over(ev: &str, line: &str, price: &str) -> BetLeg {
    let kind = MarketKind::TotalGoals {
        line: Line::parse(line).unwrap(),
    };
    let market_id = MarketId::new(format!("{ev}/ou")).unwrap();
    BetLeg {
        selection_id: outpost_core::ids::SelectionId::new(format!("{market_id}/over")).unwrap(),
        market_id,
        event_id: event(ev),
        kind,
        outcome: Outcome::Over,
        price: Price::parse(price).unwrap(),
    }
}

/// The edge side: the same events as replicated, plus the down chain applied in order.
struct World {
    t: TestHub,
    edge: Edge,
    state: EdgeState,
    applied: Seq,
    next_movement: u64,
}

impl World {
    /// A hub and an edge whose player `p-1` deposited £100.
    fn new() -> World {
        let mut w = World {
            t: hub(eager()),
            edge: Edge::new(),
            state: EdgeState::default(),
            applied: Seq::ZERO,
            next_movement: 1,
        };
        let reg = EdgeEvent::PlayerRegistered(PlayerRegistered {
            player_id: p1(),
            jurisdiction: gb(),
            pii_sha256: "00".repeat(32),
            idem: idem("reg"),
        });
        let dep = w.movement(
            MovementReason::Deposit,
            Account::PaymentProvider,
            Account::PlayerCash(p1()),
            10_000,
        );
        w.up(vec![genesis(), reg, dep]);
        w
    }
    fn movement(
        &mut self,
        r: MovementReason,
        from: Account,
        to: Account,
        amount: i64,
    ) -> EdgeEvent {
        self.next_movement += 1;
        movement(self.next_movement - 1, r, from, to, amount)
    }
    /// Replicate `events` to the hub and apply them at the edge.
    fn up(&mut self, events: Vec<EdgeEvent>) {
        for e in &events {
            self.state.apply(e, now()).unwrap();
        }
        let recs = self.edge.group(&events);
        self.t
            .state
            .commit_upstream_blocking(&node_id(), recs, now())
            .unwrap();
    }
    /// Place a bet: the stake is held, then the bet replicated.
    fn bet(&mut self, id: &str, stake: i64, legs: Vec<BetLeg>) {
        let hold = self.movement(
            MovementReason::Stake,
            Account::PlayerCash(p1()),
            Account::PlayerStakes(p1()),
            stake,
        );
        self.up(vec![hold, bet(id, stake, legs)]);
    }
    /// Apply every new down record at the edge (decide + apply, as the edge writer does).
    fn sync_down(&mut self) -> Vec<EdgeEvent> {
        let rules = outpost_core::jurisdiction::example_rules();
        let mut logged = Vec::new();
        for f in self
            .t
            .state
            .read_down(&node_id(), self.applied, 1000)
            .unwrap()
        {
            let b = f.parse_body().unwrap();
            let event = HubEvent::from_payload(b.kind, &b.payload).unwrap();
            let down = DownRef {
                down_seq: b.seq,
                hub_record_sha256: f.hash().to_hex(),
                hub_timestamp_ms: b.timestamp.0,
            };
            let d = self
                .state
                .decide(
                    Command::ApplyDown { down, event },
                    &DecideCtx {
                        now: now(),
                        rules: &rules,
                        gate: &Default::default(),
                        identity_sha256: None,
                        date_of_birth: None,
                    },
                )
                .unwrap();
            for e in &d.events {
                self.state.apply(e, now()).unwrap();
            }
            assert_eq!(self.state.ledger().sum(), 0);
            logged.extend(d.events);
            self.applied = b.seq;
        }
        logged
    }
    fn cash(&self) -> i64 {
        self.state.ledger().balance(&Account::PlayerCash(p1()))
    }
    fn held(&self) -> i64 {
        self.state.ledger().balance(&Account::PlayerStakes(p1()))
    }
    fn hub(&self) -> &HubState {
        &self.t.state
    }
    fn count(&self, sql: &str) -> i64 {
        self.hub()
            .db()
            .reader()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }
    fn hub_bet(&self, id: &str) -> (String, Option<i64>) {
        let b = self
            .hub()
            .bet_view(&BetId::new(id).unwrap())
            .unwrap()
            .unwrap();
        (b.status, b.payout_minor)
    }
}

#[test]
fn final_only_when_two_sources_agree() {
    let mut w = World::new();
    w.bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.5")]);
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed-a", now())
        .unwrap();
    assert_eq!(
        (r.status, r.settled, r.result_version),
        (ResultStatus::Pending, 0, 0)
    );
    // The same source again is not a second source (and is counted as reprocessed).
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed-a", now())
        .unwrap();
    assert_eq!(r.status, ResultStatus::Pending);
    assert_eq!(
        w.hub()
            .metrics()
            .reprocessed_results
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(w.hub().down_head(&node_id()), Seq(0));
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed-b", now())
        .unwrap();
    assert_eq!(
        (r.status, r.settled, r.result_version),
        (ResultStatus::Recorded, 1, 1)
    );
    assert_eq!(w.hub_bet("b-1"), ("settled".into(), Some(2500)));
    w.sync_down();
    assert_eq!(w.cash(), 9000 + 2500);
    let v = w.hub().result_view(&event("e-1")).unwrap();
    assert_eq!(
        (v.state, v.reports.len(), v.versions.len()),
        ("final", 2, 1)
    );
    assert_eq!(v.versions[0].basis, "agreed: feed-a, feed-b");
}

#[test]
fn conflicting_sources_hold_settlement_until_an_operator_confirms() {
    let mut w = World::new();
    w.bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.5")]);
    w.hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed-a", now())
        .unwrap();
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(1, 1), "feed-b", now())
        .unwrap();
    assert_eq!((r.status, r.settled), (ResultStatus::Conflict, 0));
    assert!(
        r.alert
            .as_deref()
            .unwrap()
            .contains("feed-a: 2-1, feed-b: 1-1"),
        "{r:?}"
    );
    // A third source agreeing with one of them does not settle a held event.
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed-c", now())
        .unwrap();
    assert_eq!(r.status, ResultStatus::Conflict);
    assert_eq!(w.hub_bet("b-1").0, "open");
    assert_eq!(
        w.hub().alerts_view(false).unwrap().len(),
        1,
        "one open alert per event"
    );
    assert_eq!(
        w.hub()
            .metrics()
            .result_alerts_raised
            .load(Ordering::Relaxed),
        1
    );
    assert_eq!(w.hub().down_head(&node_id()), Seq(0));

    let r = w
        .hub()
        .confirm_result_blocking(&event("e-1"), s(2, 1), "alice", now())
        .unwrap();
    assert_eq!((r.status, r.settled), (ResultStatus::Recorded, 1));
    assert!(w.hub().alerts_view(false).unwrap().is_empty());
    let all = w.hub().alerts_view(true).unwrap();
    assert_eq!(
        all[0].resolution.as_deref(),
        Some("confirmed by operator alice")
    );
    // Confirming again changes nothing; confirming another score is a correction, refused.
    let r = w
        .hub()
        .confirm_result_blocking(&event("e-1"), s(2, 1), "alice", now())
        .unwrap();
    assert_eq!(r.status, ResultStatus::Unchanged);
    assert!(matches!(
        w.hub()
            .confirm_result_blocking(&event("e-1"), s(0, 0), "alice", now()),
        Err(ResultError::AlreadyFinal { version: 1, .. })
    ));
    w.sync_down();
    assert_eq!(w.cash(), 11_500);
}

#[test]
fn a_result_for_an_unknown_event_is_held_for_review() {
    let mut w = World::new();
    let r = w
        .hub()
        .submit_result_blocking(&event("e-7"), s(0, 0), "feed-a", now())
        .unwrap();
    assert_eq!(r.status, ResultStatus::Held);
    let r = w
        .hub()
        .submit_result_blocking(&event("e-7"), s(0, 0), "feed-b", now())
        .unwrap();
    assert_eq!(
        r.status,
        ResultStatus::Held,
        "agreement does not release an unknown event"
    );
    let alerts = w.hub().alerts_view(false).unwrap();
    assert_eq!(
        (alerts.len(), alerts[0].kind.as_str()),
        (1, "unknown_event")
    );
    assert_eq!(w.hub().down_head(&node_id()), Seq(0));
    // A bet on the event reaches the hub: the held reports are looked at again, in the same
    // commit, and the bet settles at once.
    w.bet("b-7", 1000, vec![leg("e-7", Outcome::Draw, "3.0")]);
    assert_eq!(w.hub_bet("b-7"), ("settled".into(), Some(3000)));
    assert!(w.hub().alerts_view(false).unwrap().is_empty());
    w.sync_down();
    assert_eq!(w.cash(), 9000 + 3000);
}

#[test]
fn correction_is_a_compensating_entry_applied_once_at_the_edge() {
    let mut w = World::new();
    w.bet("b-home", 1000, vec![leg("e-1", Outcome::Home, "2.5")]);
    w.bet("b-away", 500, vec![leg("e-1", Outcome::Away, "3.0")]);
    w.bet("b-over", 1000, vec![over("e-1", "2.5", "1.8")]);
    w.bet(
        "b-acca",
        1000,
        vec![
            leg("e-1", Outcome::Home, "2.0"),
            leg("e-2", Outcome::Draw, "3.0"),
        ],
    );
    final_result(w.hub(), &event("e-1"), s(2, 1), "feed", now()).unwrap();
    w.sync_down();
    // Paid: home 2500, over 1800; lost: away; acca waits for e-2.
    assert_eq!((w.cash(), w.held()), (10_000 - 3500 + 2500 + 1800, 1000));
    let down_before = w.hub().down_head(&node_id());

    // The operator corrects 2-1 to 1-2 (still 3 goals: the over bet is unaffected).
    let r = w
        .hub()
        .correct_result_blocking(&event("e-1"), s(1, 2), "alice", "scorer review", now())
        .unwrap();
    assert_eq!(
        (r.status, r.result_version, r.reversed, r.settled),
        (ResultStatus::Corrected, 2, 2, 2)
    );
    assert_eq!(w.hub_bet("b-home"), ("settled".into(), Some(0)));
    assert_eq!(w.hub_bet("b-away"), ("settled".into(), Some(1500)));
    assert_eq!(w.hub_bet("b-over"), ("settled".into(), Some(1800)));
    // History kept: both settlements of each changed bet, and one reversal referencing the
    // original settlement's down record.
    assert_eq!(
        w.count("SELECT COUNT(*) FROM settlements WHERE bet_id = 'b-home'"),
        2
    );
    let (reversed_seq, orig_seq): (i64, i64) = w
        .hub()
        .db()
        .reader()
        .query_row(
            "SELECT r.down_seq, s.down_seq FROM settlement_reversals r JOIN settlements s ON s.bet_id = r.bet_id AND s.result_version = r.reversed_version WHERE r.bet_id = 'b-home'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(reversed_seq > orig_seq);
    // Down chain: result v2, then per changed bet a reversal followed by its new settlement.
    let logged = w.sync_down();
    let kinds: Vec<&str> = logged
        .iter()
        .map(|e| match e {
            EdgeEvent::EventResulted(_) => "result",
            EdgeEvent::BetSettlementReversed(_) => "reversed",
            EdgeEvent::BetSettled(_) => "settled",
            EdgeEvent::WalletMovement(_) => "movement",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "result", "reversed", "movement", "settled", "movement", "reversed", "movement",
            "settled", "movement"
        ]
    );
    assert_eq!(w.hub().down_head(&node_id()).0, down_before.0 + 5);
    // The edge moved exactly the difference: −2500 (home) + 1500 (away).
    assert_eq!((w.cash(), w.held()), (10_000 - 3500 + 1800 + 1500, 1000));

    // Reprocessing the same correction changes nothing and is counted.
    let before = w
        .hub()
        .metrics()
        .reprocessed_settlements
        .load(Ordering::Relaxed);
    let r = w
        .hub()
        .correct_result_blocking(&event("e-1"), s(1, 2), "alice", "again", now())
        .unwrap();
    assert_eq!(
        (r.status, r.reversed, r.settled),
        (ResultStatus::Unchanged, 0, 0)
    );
    assert!(
        w.hub()
            .metrics()
            .reprocessed_settlements
            .load(Ordering::Relaxed)
            > before
    );
    assert!(w.sync_down().is_empty());
    // The accumulator settles on e-2 at version 1 + 2 = 3 with the corrected e-1 (a loss).
    final_result(w.hub(), &event("e-2"), s(0, 0), "feed", now()).unwrap();
    let v: i64 = w
        .hub()
        .db()
        .reader()
        .query_row(
            "SELECT result_version FROM settlements WHERE bet_id = 'b-acca'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(v, 3);
    w.sync_down();
    assert_eq!(w.held(), 0);
    // Corrections of an event without a final result are refused.
    assert!(matches!(
        w.hub()
            .correct_result_blocking(&event("e-9"), s(1, 0), "alice", "x", now()),
        Err(ResultError::NotFinal(_))
    ));
}

#[test]
fn rollback_reverses_exactly_the_affected_bets() {
    let mut w = World::new();
    w.bet("b-home", 1000, vec![leg("e-1", Outcome::Home, "2.5")]);
    w.bet("b-over", 1000, vec![over("e-1", "2.5", "1.8")]);
    w.bet("b-other", 1000, vec![leg("e-2", Outcome::Home, "2.0")]);
    final_result(w.hub(), &event("e-1"), s(2, 1), "feed", now()).unwrap();
    final_result(w.hub(), &event("e-2"), s(1, 0), "feed", now()).unwrap();
    w.sync_down();
    assert_eq!(w.cash(), 7000 + 2500 + 1800 + 2000);

    // Roll back only the 1X2 market of e-1: the over/under bet and e-2 stay settled.
    let markets = [MarketId::new("e-1/1x2").unwrap()];
    let r = w
        .hub()
        .rollback_blocking(
            &event("e-1"),
            Some(&markets),
            "alice",
            "feed withdrew the result",
            now(),
        )
        .unwrap();
    assert_eq!(
        (r.withdrawn_version, r.reversed, r.bets.as_slice()),
        (1, 1, ["b-home".to_string()].as_slice())
    );
    assert_eq!(w.hub_bet("b-home"), ("open".into(), None));
    assert_eq!(w.hub_bet("b-over"), ("settled".into(), Some(1800)));
    assert_eq!(w.hub_bet("b-other"), ("settled".into(), Some(2000)));
    w.sync_down();
    // The edge took the payout back and holds the stake again.
    assert_eq!((w.cash(), w.held()), (7000 + 1800 + 2000, 1000));
    // Rolling back again: no final result in force.
    assert!(matches!(
        w.hub()
            .rollback_blocking(&event("e-1"), None, "alice", "again", now()),
        Err(ResultError::NotFinal(_))
    ));
    // Reports from before the rollback no longer count; a new agreement makes version 2.
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed", now())
        .unwrap();
    assert_eq!(r.status, ResultStatus::Pending);
    let r = w
        .hub()
        .submit_result_blocking(&event("e-1"), s(2, 1), "feed-b", now())
        .unwrap();
    assert_eq!(
        (r.status, r.result_version, r.settled, r.reversed),
        (ResultStatus::Recorded, 2, 1, 0)
    );
    // b-home settles again at version 2; b-over's outcome did not change (no new record).
    assert_eq!(w.hub_bet("b-home"), ("settled".into(), Some(2500)));
    assert_eq!(
        w.count("SELECT COUNT(*) FROM settlements WHERE bet_id = 'b-over'"),
        1
    );
    w.sync_down();
    assert_eq!((w.cash(), w.held()), (7000 + 2500 + 1800 + 2000, 0));
}
