//! Reconciliation tests: a clean hour reports nothing; then each check is fed deliberately
//! introduced discrepancies of each class, built from real signed records committed through
//! the hub's normal upstream path.

use super::run::{Quiet, Trigger, reconcile_hour_blocking};
use super::*;
use crate::audit::{AuditStore, LocalWormStore};
use crate::audit_uploader::{Backoff, drain_once};
use crate::store::HubState;
use crate::test_support::{eager, gb, hub, leg, node_id, node_key};
use outpost_core::edge::EdgeState;
use outpost_core::edge::balance_snapshot::{BalanceSnapshot, snapshot_events};
use outpost_core::edge::events::*;
use outpost_core::hub::{HubEvent, HubSettlement};
use outpost_core::ids::{BetId, IdemKey, LogId, PlayerId, Seq};
use outpost_core::ledger::{Account, Posting};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordBody};
use outpost_core::market::Outcome;
use outpost_core::money::Currency;
use outpost_core::settle::{FinalScore, LegResult};
use outpost_core::time::UnixMillis;

const MIN: i64 = 60_000;

/// The hour under test: 2025-11-21T13, window 12:00-14:00 (in the past, so the outbox
/// treats every queued object as due).
fn hour() -> Hour {
    Hour::parse("2025-11-21T13").unwrap()
}
/// `m` minutes after 12:00 (the window start).
fn at(m: i64) -> i64 {
    hour().window().start_ms + m * MIN
}
/// The reconciliation runs 10 minutes after the window.
fn run_now() -> i64 {
    hour().window().end_ms + 10 * MIN
}

fn pid(s: &str) -> PlayerId {
    PlayerId::new(s).unwrap()
}
fn idem(k: &str) -> IdemTag {
    IdemTag {
        key: IdemKey::new(k).unwrap(),
        request_sha256: "00".repeat(32),
    }
}

/// An edge log written by hand with chosen timestamps, mirrored into an `EdgeState` so that
/// balance snapshots are what a correct edge would write.
struct Log {
    w: ChainWriter,
    key: NodeKey,
    state: EdgeState,
    group: Vec<(Frame, RecordBody)>,
    next_movement: u64,
    down_seq: u64,
}

impl Log {
    fn new() -> Log {
        let mut l = Log {
            w: ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY),
            key: node_key(),
            state: EdgeState::default(),
            group: vec![],
            next_movement: 1,
            down_seq: 0,
        };
        l.push(
            EdgeEvent::Genesis(Genesis {
                node_id: node_id(),
                jurisdiction: gb(),
                currency: Currency::GBP,
                public_key: node_key().public().to_hex(),
                software: "test".into(),
            }),
            at(0),
        );
        l
    }
    fn push(&mut self, ev: EdgeEvent, ts: i64) {
        // Applying keeps the mirror honest; events a real edge would refuse (tampering) are
        // still logged, as a faulty or hostile edge could.
        let _ = self.state.apply(&ev, UnixMillis(ts));
        let f = self.w.append(ev.kind(), UnixMillis(ts), ev.to_payload());
        let b = f.parse_body().unwrap();
        self.group.push((f, b));
    }
    /// End the commit group (seal its last record) and hand it over.
    fn commit(&mut self) -> Vec<(Frame, RecordBody)> {
        let mut g = std::mem::take(&mut self.group);
        ChainWriter::seal(&mut g.last_mut().unwrap().0, &self.key);
        g
    }
    fn register(&mut self, p: &str, ts: i64) {
        self.push(
            EdgeEvent::PlayerRegistered(PlayerRegistered {
                player_id: pid(p),
                jurisdiction: gb(),
                pii_sha256: "00".repeat(32),
                idem: idem(&format!("reg-{p}")),
            }),
            ts,
        );
    }
    fn movement(
        &mut self,
        p: &str,
        reason: MovementReason,
        postings: Vec<Posting>,
        r: Option<&str>,
        bet: Option<&str>,
        ts: i64,
    ) {
        let id = self.next_movement;
        self.next_movement += 1;
        self.push(
            EdgeEvent::WalletMovement(WalletMovement {
                movement_id: id,
                player_id: pid(p),
                reason,
                currency: Currency::GBP,
                postings,
                bet_id: bet.map(|b| BetId::new(b).unwrap()),
                provider_ref: r.map(String::from),
                decision: None,
                idem: None,
            }),
            ts,
        );
    }
    fn deposit(&mut self, p: &str, amount: i64, r: &str, ts: i64) {
        let postings = vec![Posting {
            from: Account::PaymentProvider,
            to: Account::PlayerCash(pid(p)),
            amount_minor: amount,
        }];
        self.movement(p, MovementReason::Deposit, postings, Some(r), None, ts);
    }
    fn withdraw(&mut self, p: &str, amount: i64, r: &str, ts: i64) {
        let postings = vec![Posting {
            from: Account::PlayerCash(pid(p)),
            to: Account::PaymentProvider,
            amount_minor: amount,
        }];
        self.movement(p, MovementReason::Withdrawal, postings, Some(r), None, ts);
    }
    fn bet(&mut self, p: &str, b: &str, stake: i64, ev: &str, ts: i64) {
        self.push(
            EdgeEvent::ComplianceDecision(ComplianceDecision {
                player_id: pid(p),
                action: "place_bet".into(),
                accepted: true,
                reason: None,
                jurisdiction: gb(),
                rules_version: "test".into(),
                checks: vec![],
                bet_id: Some(BetId::new(b).unwrap()),
                flags: vec![],
                reality_check_due: false,
                idem: None,
            }),
            ts,
        );
        let postings = vec![Posting {
            from: Account::PlayerCash(pid(p)),
            to: Account::PlayerStakes(pid(p)),
            amount_minor: stake,
        }];
        self.movement(p, MovementReason::Stake, postings, None, Some(b), ts);
        self.push(
            EdgeEvent::BetPlaced(BetPlaced {
                each_way: false,
                bet_id: BetId::new(b).unwrap(),
                player_id: pid(p),
                currency: Currency::GBP,
                stake_minor: stake,
                potential_payout_minor: stake * 2,
                legs: vec![leg(ev, Outcome::Home, "2.0")],
                idem: idem(&format!("bet-{b}")),
            }),
            ts,
        );
    }
    /// The edge applying the hub's result and settlement of a single at 2.0 that won.
    fn settled(&mut self, p: &str, b: &str, ev: &str, stake: i64, payout: i64, ts: i64) {
        let down = |s: &mut Log| {
            s.down_seq += 1;
            DownRef {
                down_seq: Seq(s.down_seq),
                hub_record_sha256: "00".repeat(32),
                hub_timestamp_ms: ts,
            }
        };
        let d = down(self);
        self.push(
            EdgeEvent::EventResulted(EventResulted {
                event_id: EventId::new(ev).unwrap(),
                score: Some(FinalScore { home: 2, away: 0 }),
                result_version: 1,
                down: d,
                markets: None,
            }),
            ts,
        );
        let d = down(self);
        self.push(
            EdgeEvent::BetSettled(BetSettled {
                bet_id: BetId::new(b).unwrap(),
                player_id: pid(p),
                result_version: 1,
                leg_results: vec![LegResult::Win],
                payout_minor: payout,
                down: d,
            }),
            ts,
        );
        let postings = vec![
            Posting {
                from: Account::PlayerStakes(pid(p)),
                to: Account::House,
                amount_minor: stake,
            },
            Posting {
                from: Account::House,
                to: Account::PlayerCash(pid(p)),
                amount_minor: payout,
            },
        ];
        self.movement(p, MovementReason::Settlement, postings, None, Some(b), ts);
    }
    /// A correct balance snapshot of the log so far.
    fn snapshot(&mut self, ts: i64) {
        let as_of = self.w.head().seq;
        for ev in snapshot_events(&self.state, as_of) {
            self.push(ev, ts);
        }
    }
}

fn commit(state: &HubState, log: &mut Log, now: i64) {
    state
        .commit_upstream_blocking(&node_id(), log.commit(), UnixMillis(now))
        .unwrap();
}

async fn drain(state: &HubState, dir: &std::path::Path) -> AuditStore {
    let store = AuditStore::Local(LocalWormStore::open(dir.join("worm")).unwrap());
    loop {
        let r = drain_once(
            state,
            &store,
            Backoff {
                base_ms: 0,
                max_ms: 0,
            },
        )
        .await
        .unwrap();
        assert!(!r.store_unavailable && r.failed == 0, "{r:?}");
        if r.uploaded == 0 {
            return store;
        }
    }
}

fn run(state: &HubState) -> run::RunSummary {
    reconcile_hour_blocking(
        state,
        hour(),
        Trigger::OnDemand,
        &Thresholds::default(),
        run_now(),
        &Quiet,
    )
    .unwrap()
}

fn report_of(state: &HubState, id: i64) -> report::Report {
    let (_, v) = report::by_id(&state.db().reader(), id).unwrap().unwrap();
    serde_json::from_value(v).unwrap()
}

/// Findings of one check as (code, severity, subject), sorted.
fn found(r: &report::Report, c: Check) -> Vec<(String, Severity, String)> {
    let mut v: Vec<_> = r
        .discrepancies
        .iter()
        .filter(|d| d.check == c)
        .map(|d| (d.code.clone(), d.severity, d.subject.clone()))
        .collect();
    v.sort();
    v
}

/// A normal hour: two players, deposits, a bet that wins and is settled at both ends, a
/// withdrawal, a snapshot. Returns the log so a test can continue it.
fn clean_hour(state: &HubState) -> Log {
    let mut log = Log::new();
    log.register("p1", at(1));
    log.register("p2", at(1));
    log.deposit("p1", 5_000, "psp-1", at(2));
    log.deposit("p2", 2_500, "psp-2", at(3));
    commit(state, &mut log, at(3));
    log.bet("p1", "b-1", 1_000, "e-1", at(10));
    commit(state, &mut log, at(10));
    final_result(
        state,
        &EventId::new("e-1").unwrap(),
        FinalScore { home: 2, away: 0 },
        UnixMillis(at(60)),
    );
    log.settled("p1", "b-1", "e-1", 1_000, 2_000, at(61));
    log.withdraw("p2", 500, "psp-3", at(70));
    log.snapshot(at(75));
    commit(state, &mut log, at(75));
    log
}

#[tokio::test]
async fn a_clean_hour_reports_nothing_and_goes_to_the_audit_trail() {
    let t = hub(eager());
    clean_hour(&t.state);
    drain(&t.state, t.dir.path()).await;
    let s = run(&t.state);
    assert_eq!(s.reports.len(), 1);
    let r = report_of(&t.state, s.reports[0].id);
    assert_eq!(r.discrepancies, vec![], "{:#?}", r.discrepancies);
    assert_eq!(
        (r.worst, r.hour.as_str(), r.jurisdiction.as_str()),
        (None, "2025-11-21T13", "GB")
    );
    let examined = |c| r.checks.iter().find(|e| e.check == c).unwrap().examined;
    assert_eq!(examined(Check::Balances), 2, "two players in the snapshot");
    assert_eq!(examined(Check::SettlementCompleteness), 1);
    assert!(examined(Check::AuditCompleteness) >= 15);
    assert!(examined(Check::Jurisdiction) >= 5);
    // Three movements with a provider, none covered by a statement yet: pending, not wrong.
    assert_eq!(
        r.checks
            .iter()
            .find(|e| e.check == Check::Payments)
            .unwrap()
            .pending,
        3
    );
    assert!(s.suspended_events.is_empty());

    // The signed report is queued for the audit trail, uploads, and its signature verifies.
    let store = drain(&t.state, t.dir.path()).await;
    let key = &s.reports[0].audit_key;
    assert!(
        key.starts_with("GB/2025/11/21/reconciliation~test-hub/2025-11-21T13-"),
        "{key}"
    );
    let body = store.get(key).await.unwrap();
    let text = String::from_utf8(body).unwrap();
    let (line1, line2) = text.trim_end().split_once('\n').unwrap();
    let trailer: serde_json::Value = serde_json::from_str(line2).unwrap();
    let sha = outpost_core::log::sha256(line1.as_bytes());
    assert_eq!(trailer["report_sha256"], hex::encode(sha));
    let mut msg = report::SIGN_DOMAIN.to_vec();
    msg.extend_from_slice(&sha);
    let sig: [u8; 64] = hex::decode(trailer["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert!(t.state.hub_public_key().verify(&msg, &sig));
    let again: report::Report = serde_json::from_str(line1).unwrap();
    assert_eq!(again, r);
    let retention = store.retention(key).await.unwrap();
    assert!(retention.retain_until.0 >= crate::outbox::add_years(UnixMillis(run_now()), 5).0);
}

#[tokio::test]
async fn balance_discrepancies_are_classed_by_size() {
    let t = hub(eager());
    let mut log = Log::new();
    for p in ["p1", "p2", "p3", "p4"] {
        log.register(p, at(1));
        log.deposit(p, 10_000, &format!("psp-{p}"), at(2));
    }
    let as_of = log.w.head().seq;
    // A tampered snapshot: p1 +50 (minor), p2 +5,000 (major), p3 +500,000 (critical), p4 left
    // out although it holds money (major), and a player the log never registered.
    let players = vec![
        outpost_core::edge::balance_snapshot::PlayerBalance {
            player_id: pid("p1"),
            cash_minor: 10_050,
            stakes_held_minor: 0,
        },
        outpost_core::edge::balance_snapshot::PlayerBalance {
            player_id: pid("p2"),
            cash_minor: 10_000,
            stakes_held_minor: 5_000,
        },
        outpost_core::edge::balance_snapshot::PlayerBalance {
            player_id: pid("p3"),
            cash_minor: 510_000,
            stakes_held_minor: 0,
        },
        outpost_core::edge::balance_snapshot::PlayerBalance {
            player_id: pid("ghost"),
            cash_minor: 50,
            stakes_held_minor: 0,
        },
    ];
    log.push(
        EdgeEvent::BalanceSnapshot(BalanceSnapshot {
            node_id: node_id(),
            jurisdiction: gb(),
            currency: Currency::GBP,
            as_of_seq: as_of,
            part: 1,
            parts: 1,
            players,
            total_cash_minor: 0,
            total_stakes_held_minor: 0,
        }),
        at(30),
    );
    commit(&t.state, &mut log, at(30));
    drain(&t.state, t.dir.path()).await;
    let r = report_of(&t.state, run(&t.state).reports[0].id);
    let s = |x: &str| x.to_string();
    assert_eq!(
        found(&r, Check::Balances),
        vec![
            (s("balance_mismatch"), Severity::Minor, s("p1")),
            (s("balance_mismatch"), Severity::Major, s("p2")),
            (s("balance_mismatch"), Severity::Critical, s("p3")),
            (s("snapshot_missing_player"), Severity::Major, s("p4")),
            (
                s("snapshot_totals_mismatch"),
                Severity::Critical,
                format!("seq {}", as_of.0 + 1)
            ),
            (s("snapshot_unknown_player"), Severity::Major, s("ghost")),
        ]
    );
    let d = r.discrepancies.iter().find(|d| d.subject == "p3").unwrap();
    assert_eq!(d.amount_minor, Some(500_000));
    assert_eq!(r.worst, Some(Severity::Critical));
    // Balance findings name no event: nothing is suspended.
    assert!(r.suspended_events.is_empty());
}

#[tokio::test]
async fn payments_are_reconciled_against_the_provider_statement() {
    let t = hub(eager());
    let fixture =
        include_bytes!("../../../fixtures/psp/adyen_settlement_detail_report_batch_412.csv");
    crate::reconcile::statement::import(
        &mut t.state.db().conn(),
        "adyen",
        &gb(),
        fixture,
        UnixMillis(run_now()),
    )
    .unwrap();
    let mut log = Log::new();
    log.register("p1", at(1));
    log.register("p2", at(1));
    // 12:03 £50 matches line 2 exactly; 12:17 £49.90 against £50.00 (minor); 12:55 £100
    // matches; 12:30 £2,000 that no line covers (critical); the refund of 13:10 matches by its
    // modification reference; the same reference credited twice (critical).
    log.deposit("p1", 5_000, "8816178914120301", at(3));
    log.deposit("p2", 4_990, "8816178914120302", at(17));
    log.deposit("p1", 200_000, "8816178914120999", at(30));
    log.deposit("p2", 10_000, "8816178914120304", at(55));
    log.withdraw("p1", 2_000, "8816178914129901", at(70));
    log.deposit("p2", 5_000, "8816178914120301", at(80));
    commit(&t.state, &mut log, at(80));
    drain(&t.state, t.dir.path()).await;
    let r = report_of(&t.state, run(&t.state).reports[0].id);
    let s = |x: &str| x.to_string();
    assert_eq!(
        found(&r, Check::Payments),
        vec![
            (s("amount_mismatch"), Severity::Minor, s("8816178914120302")),
            (
                s("duplicate_reference"),
                Severity::Critical,
                s("8816178914120301")
            ),
            (
                s("movement_not_in_statement"),
                Severity::Critical,
                s("8816178914120999")
            ),
            // Line 4 (£25.00) was paid but never credited to a wallet.
            (
                s("provider_reversal"),
                Severity::Major,
                s("8816178914119877")
            ),
            (
                s("statement_line_without_movement"),
                Severity::Major,
                s("8816178914120303")
            ),
        ],
        "{:#?}",
        r.discrepancies
    );
}

#[tokio::test]
async fn audit_completeness_classes_delays_and_holes() {
    let t = hub(eager());
    let mut log = Log::new();
    log.register("p1", at(5));
    commit(&t.state, &mut log, at(5)); // segment A: seq 1-2, uploaded, then its row "lost"
    drain(&t.state, t.dir.path()).await;
    log.register("p2", at(60));
    commit(&t.state, &mut log, at(60)); // segment B: waits 70 min in the outbox: major
    log.register("p3", at(110));
    commit(&t.state, &mut log, at(110)); // segment C: waits 20 min: minor
    t.state
        .db()
        .conn()
        .execute(
            "DELETE FROM audit_segments WHERE log_id = 'gb-1' AND first_seq = 1",
            [],
        )
        .unwrap();
    let r = report_of(&t.state, run(&t.state).reports[0].id);
    let s = |x: &str| x.to_string();
    assert_eq!(
        found(&r, Check::AuditCompleteness),
        vec![
            (s("audit_gap"), Severity::Critical, s("gb-1 seq 1-2")),
            (
                s("audit_upload_delayed"),
                Severity::Minor,
                s("gb-1 seq 4-4")
            ),
            (
                s("audit_upload_delayed"),
                Severity::Major,
                s("gb-1 seq 3-3")
            ),
        ],
        "{:#?}",
        r.discrepancies
    );
}

#[tokio::test]
async fn the_verifier_re_reads_objects_and_catches_tampering() {
    let t = hub(eager());
    let mut log = clean_hour(&t.state);
    log.register("p9", at(90));
    commit(&t.state, &mut log, at(90));
    let store = drain(&t.state, t.dir.path()).await;
    let (out, sum) =
        audit_verify::verify(&t.state, &store, audit_verify::Selection::All, &|_, _| {})
            .await
            .unwrap();
    assert_eq!(out.found, vec![], "an untouched trail verifies");
    assert!(sum.objects >= 4 && sum.records >= 16, "{sum:?}");

    // Someone with disk access rewrites one object (the WORM directory is read-only, but root
    // can chmod): the verifier names it.
    let key = t
        .state
        .db()
        .reader()
        .query_row(
            "SELECT key FROM audit_segments WHERE log_id = 'gb-1' ORDER BY first_seq DESC LIMIT 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    let path = t.dir.path().join("worm").join(&key);
    let mut perm = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&path, perm).unwrap();
    let mut body = std::fs::read(&path).unwrap();
    let n = body.len();
    body[n - 70] ^= 1;
    std::fs::write(&path, body).unwrap();
    let (out, _) = audit_verify::verify(&t.state, &store, audit_verify::Selection::All, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(out.found.len(), 1, "{:#?}", out.found);
    assert_eq!(
        (
            out.found[0].code.as_str(),
            out.found[0].severity,
            out.found[0].subject.as_str()
        ),
        ("audit_object_altered", Severity::Critical, key.as_str())
    );
}

#[tokio::test]
async fn settlement_completeness_and_the_suspension_hook() {
    let t = hub(eager());
    let mut log = clean_hour(&t.state);
    // b-2 on e-2: e-2's result reaches the results table without the settle pass (a crash or
    // a bug): unsettled long after the grace period → major.
    log.bet("p2", "b-2", 500, "e-2", at(80));
    // b-3 on e-3: the edge paid more than the hub settled → critical.
    log.bet("p1", "b-3", 1_000, "e-3", at(81));
    commit(&t.state, &mut log, at(81));
    t.state.db().conn().execute(
        "INSERT INTO results (event_id, home_goals, away_goals, result_version, source, received_ms) VALUES ('e-2', 1, 0, 1, 'x', ?1)",
        [at(85)],
    ).unwrap();
    final_result(
        &t.state,
        &EventId::new("e-3").unwrap(),
        FinalScore { home: 1, away: 0 },
        UnixMillis(at(86)),
    );
    log.settled("p1", "b-3", "e-3", 1_000, 2_500, at(87));
    commit(&t.state, &mut log, at(87));
    // b-1 (e-1) gets a second hub_settlement record for the same result version → critical.
    {
        let mut conn = t.state.db().conn();
        let tx = conn.transaction().unwrap();
        let dup = HubEvent::Settlement(HubSettlement {
            bet_id: BetId::new("b-1").unwrap(),
            node_id: node_id(),
            player_id: pid("p1"),
            result_version: 1,
            leg_results: vec![LegResult::Win],
            currency: Currency::GBP,
            stake_minor: 1_000,
            payout_minor: 2_000,
            leg_factors: Vec::new(),
        });
        let mut batch = crate::down::DownBatch::default();
        batch
            .append(&tx, t.state.hub_key(), &node_id(), &dup, UnixMillis(at(88)))
            .unwrap();
        batch
            .flush(&tx, t.state.hub_key(), UnixMillis(at(88)))
            .unwrap();
        tx.commit().unwrap();
    }
    drain(&t.state, t.dir.path()).await;
    let s = run(&t.state);
    let r = report_of(&t.state, s.reports[0].id);
    let st = |x: &str| x.to_string();
    assert_eq!(
        found(&r, Check::SettlementCompleteness),
        vec![
            (st("bet_unsettled"), Severity::Major, st("b-2")),
            (st("payout_mismatch"), Severity::Critical, st("b-3")),
            (st("settled_twice"), Severity::Critical, st("b-1")),
        ],
        "{:#?}",
        r.discrepancies
    );
    let ev = |s: &str| EventId::new(s).unwrap();
    assert_eq!(s.suspended_events, vec![ev("e-1"), ev("e-3")]);
    assert_eq!(r.suspended_events, s.suspended_events);

    // The hook: a new bet on suspended e-3 is not settled, although e-3 has its result.
    log.bet("p1", "b-4", 100, "e-3", at(100));
    commit(&t.state, &mut log, at(100));
    let status = |b: &str| {
        t.state
            .db()
            .reader()
            .query_row("SELECT status FROM bet_state WHERE bet_id = ?1", [b], |r| {
                r.get::<_, String>(0)
            })
            .unwrap()
    };
    assert_eq!(status("b-4"), "open");
    assert!(
        suspend::suspended(&t.state.db().reader(), &ev("e-3"))
            .unwrap()
            .unwrap()
            .starts_with("payout_mismatch")
    );
    // Cleared by an operator through the API: recorded with who and why, and b-4 settles at
    // once (e-3's result is final). A second clear is refused and changes nothing.
    let addr = crate::api::tests::serve(t.state.clone()).await;
    let (st, v) = crate::api::tests::call(
        addr,
        "POST",
        "/v1/reconciliation/suspensions/e-3/clear",
        Some(r#"{"operator":"alice","reason":""}"#),
    )
    .await;
    assert_eq!(
        (st, crate::api::tests::code(&v)),
        (400, "INVALID_REASON"),
        "{v}"
    );
    assert_eq!(status("b-4"), "open");
    let (st, v) = crate::api::tests::call(
        addr,
        "POST",
        "/v1/reconciliation/suspensions/e-3/clear",
        Some(r#"{"operator":"alice","reason":"payout mismatch explained: edge test fixture"}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["cleared"].as_u64(), v["receipt"]["settled"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(status("b-4"), "settled");
    let (who, why): (String, String) = t
        .state
        .db()
        .reader()
        .query_row(
            "SELECT operator, reason FROM suspension_clearances WHERE event_id = 'e-3'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (who.as_str(), why.as_str()),
        ("alice", "payout mismatch explained: edge test fixture")
    );
    let (st, v) = crate::api::tests::call(
        addr,
        "POST",
        "/v1/reconciliation/suspensions/e-3/clear",
        Some(r#"{"operator":"alice","reason":"again"}"#),
    )
    .await;
    assert_eq!(
        (st, crate::api::tests::code(&v)),
        (409, "NOT_SUSPENDED"),
        "{v}"
    );
    let n: i64 = t
        .state
        .db()
        .reader()
        .query_row("SELECT COUNT(*) FROM suspension_clearances", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        suspend::active(&t.state.db().reader()).unwrap().len(),
        1,
        "e-1 stays suspended"
    );
}

#[tokio::test]
async fn jurisdiction_consistency() {
    let t = hub(eager());
    let mut log = clean_hour(&t.state);
    let ie = Jurisdiction::new("IE").unwrap();
    // A player registered as Irish on a GB node (critical), a bet by that player (critical,
    // suspends e-7), a bet by a player nobody registered (major), a compliance decision made
    // under Irish rules (critical).
    log.push(
        EdgeEvent::PlayerRegistered(PlayerRegistered {
            player_id: pid("ie-p"),
            jurisdiction: ie.clone(),
            pii_sha256: "00".repeat(32),
            idem: idem("reg-ie"),
        }),
        at(80),
    );
    log.deposit("ie-p", 1_000, "psp-ie", at(80));
    commit(&t.state, &mut log, at(80));
    log.bet("ie-p", "b-ie", 100, "e-7", at(81));
    log.bet("nobody", "b-x", 100, "e-8", at(82));
    commit(&t.state, &mut log, at(82));
    log.push(
        EdgeEvent::ComplianceDecision(ComplianceDecision {
            player_id: pid("p1"),
            action: "place_bet".into(),
            accepted: false,
            reason: None,
            jurisdiction: ie,
            rules_version: "ie-2026".into(),
            checks: vec![],
            bet_id: None,
            flags: vec![],
            reality_check_due: false,
            idem: None,
        }),
        at(83),
    );
    commit(&t.state, &mut log, at(83));
    drain(&t.state, t.dir.path()).await;
    let s = run(&t.state);
    let r = report_of(&t.state, s.reports[0].id);
    let st = |x: &str| x.to_string();
    let f = found(&r, Check::Jurisdiction);
    let seq_of = |code: &str| f.iter().filter(|x| x.0 == code).count();
    assert_eq!(seq_of("record_outside_jurisdiction"), 2, "{f:#?}");
    assert!(
        f.contains(&(
            st("bet_by_player_of_other_jurisdiction"),
            Severity::Critical,
            st("b-ie")
        )),
        "{f:#?}"
    );
    assert!(
        f.contains(&(st("bet_by_unknown_player"), Severity::Major, st("b-x"))),
        "{f:#?}"
    );
    assert_eq!(f.len(), 4, "{f:#?}");
    assert!(s.suspended_events.contains(&EventId::new("e-7").unwrap()));
}

#[test]
fn a_shard_refuses_nodes_it_does_not_own() {
    let t = hub(eager());
    let shard = crate::shard::ShardConfig {
        id: Some("ie".into()),
        nodes: Default::default(),
        jurisdictions: [Jurisdiction::new("IE").unwrap()].into(),
    };
    t.state.set_shard(shard);
    let mut log = Log::new();
    let e = t
        .state
        .commit_upstream_blocking(&node_id(), log.commit(), UnixMillis(at(1)))
        .unwrap_err();
    assert!(matches!(e, crate::store::StoreError::NotOwned { .. }));
    assert_eq!(
        e.to_string(),
        "node gb-1 is not owned by this hub: it is shard ie (owns nodes [], jurisdictions [IE]); connect the node to the hub shard that owns it"
    );
    assert!(t.state.upstream_head(&node_id()).is_err());
    let n: i64 = t
        .state
        .db()
        .reader()
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "nothing stored");
    // Reconciliation only looks at owned nodes: no report for GB.
    assert!(run(&t.state).reports.is_empty());
}

#[tokio::test]
async fn reports_are_served_to_ops() {
    let t = hub(eager());
    clean_hour(&t.state);
    let s1 = run(&t.state);
    let s2 = run(&t.state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = crate::api::router(t.state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let get = |path: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status: u16 = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default(),
        )
    };
    let (st, v) = get("/v1/reconciliation/reports".into()).await;
    assert_eq!(st, 200);
    assert_eq!(v["latest"].as_array().unwrap().len(), 1);
    assert_eq!(v["recent"][0]["id"], s2.reports[0].id);
    assert_eq!(v["latest"][0]["hour"], "2025-11-21T13");
    let (st, v) = get("/v1/reconciliation/reports?hour=2025-11-21T13".into()).await;
    assert_eq!((st, v["reports"].as_array().unwrap().len()), (200, 2));
    let (st, v) = get("/v1/reconciliation/reports?hour=2025-11-21T12".into()).await;
    assert_eq!((st, v["reports"].as_array().unwrap().len()), (200, 0));
    let (st, v) = get(format!("/v1/reconciliation/reports/{}", s1.reports[0].id)).await;
    assert_eq!((st, v["jurisdiction"].as_str()), (200, Some("GB")));
    for (path, status, code) in [
        (
            "/v1/reconciliation/reports?hour=2025-11-21T24",
            400,
            "INVALID_HOUR",
        ),
        (
            "/v1/reconciliation/reports?hour=yesterday",
            400,
            "INVALID_HOUR",
        ),
        ("/v1/reconciliation/reports?hours=1", 400, "INVALID_QUERY"),
        ("/v1/reconciliation/reports/0", 400, "INVALID_REPORT_ID"),
        ("/v1/reconciliation/reports/abc", 400, "INVALID_REPORT_ID"),
        ("/v1/reconciliation/reports/999", 404, "REPORT_NOT_FOUND"),
    ] {
        let (st, v) = get(path.into()).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    let (st, v) = get("/v1/reconciliation/suspensions".into()).await;
    assert_eq!((st, v["suspended"].as_array().unwrap().len()), (200, 0));
}

/// Model-based test of the suspension store: random suspend/clear sequences against a plain
/// map; the hook and the listing must agree with the model after every step.
#[test]
fn suspension_store_matches_its_model() {
    use std::collections::BTreeMap;
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    schema::ensure(&conn).unwrap();
    // Deterministic xorshift: reproducible without a seed file.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    // model: event -> set of active report ids
    let mut model: BTreeMap<String, std::collections::BTreeSet<i64>> = BTreeMap::new();
    for step in 0..2_000i64 {
        let e = format!("e-{}", next(6));
        let ev = EventId::new(e.clone()).unwrap();
        match next(3) {
            0 | 1 => {
                let rid = next(4) as i64 + 1;
                let fresh = conn
                    .query_row("SELECT 1 FROM settlement_suspensions WHERE event_id = ?1 AND report_id = ?2", rusqlite::params![e, rid], |_| Ok(()))
                    .is_err();
                suspend::suspend(&conn, &ev, rid, "test", step).unwrap();
                // A (event, report) pair suspends once; once cleared it stays cleared.
                if fresh {
                    model.entry(e.clone()).or_default().insert(rid);
                }
            }
            _ => {
                let n = suspend::clear(&conn, &ev, "ops", step).unwrap();
                assert_eq!(n, model.remove(&e).map(|s| s.len()).unwrap_or(0));
            }
        }
        for i in 0..6 {
            let e = format!("e-{i}");
            let active = model.get(&e).is_some_and(|s| !s.is_empty());
            assert_eq!(
                suspend::suspended(&conn, &EventId::new(e).unwrap())
                    .unwrap()
                    .is_some(),
                active,
                "step {step}"
            );
        }
        let listed = suspend::active(&conn).unwrap().len();
        assert_eq!(listed, model.values().map(|s| s.len()).sum::<usize>());
    }
}

/// A result made final the way the hub requires: two independent sources agreeing.
fn final_result(state: &HubState, event: &EventId, score: FinalScore, now: UnixMillis) {
    for source in ["ops", "feed-b"] {
        state
            .submit_result_blocking(event, score, source, now)
            .unwrap();
    }
}
