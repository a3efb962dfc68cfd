//! The bulk pass (compact copies settled on a second thread, written here) against the
//! per-bet rules: singles settle with the payout the core rules give, a double waits for its
//! other leg, a suspended event's bets wait, and the down chain's audit segments (cut from
//! the records still in memory) verify against the hub key and cover every record.

use crate::reconcile::suspend;
use crate::settlement::ResultReceipt;
use crate::store::HubState;
use crate::test_support::*;
use outpost_core::log::{ChainHead, decode_segment, verify_segment};
use outpost_core::market::Outcome;
use outpost_core::settle::FinalScore;

const OUTCOMES: [Outcome; 3] = [Outcome::Home, Outcome::Draw, Outcome::Away];

#[test]
fn bulk_pass_settles_like_the_per_bet_rules() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let mut events = vec![genesis()];
    let mut expected_paid = 0;
    for i in 0..1_500usize {
        let outcome = OUTCOMES[i % 3];
        let legs = if i % 10 == 0 {
            vec![leg("e-1", outcome, "2.5"), leg("e-2", Outcome::Home, "1.5")]
        } else if i % 10 == 1 {
            vec![leg("e-3", outcome, "2.5")]
        } else {
            // e-1 ends 2-1: Home pays 2.5 x the (even) stake exactly.
            if outcome == Outcome::Home {
                expected_paid += (100 + 2 * i as i64) * 5 / 2;
            }
            vec![leg("e-1", outcome, "2.5")]
        };
        events.push(bet(&format!("b-{i}"), 100 + 2 * i as i64, legs));
    }
    let recs = edge.group(&events);
    t.state
        .commit_upstream_blocking(&node_id(), recs, now())
        .unwrap();
    suspend::suspend(
        &t.state.db().conn(),
        &event("e-3"),
        1,
        "test: critical finding",
        now().0,
    )
    .unwrap();

    let r = make_final(&t.state, "e-1", 2, 1);
    assert_eq!((r.settled, r.waiting), (1_200, 150), "{r:?}");
    let r = make_final(&t.state, "e-3", 0, 0);
    assert_eq!((r.settled, r.waiting), (0, 150), "suspended: {r:?}");
    // Resubmitting settles nothing twice.
    let r = make_final(&t.state, "e-1", 2, 1);
    assert_eq!((r.settled, r.reprocessed), (0, 1_200), "{r:?}");

    let head = t.state.down_head(&node_id()).0;
    let conn = t.state.db().reader();
    let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(
        q("SELECT COALESCE(SUM(payout_minor), 0) FROM settlements"),
        expected_paid
    );
    assert_eq!(q("SELECT COUNT(*) FROM settlements"), 1_200);
    assert_eq!(
        q("SELECT COUNT(*) FROM bet_state WHERE status = 'settled'"),
        1_200
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM bet_state b JOIN settlements s ON s.bet_id = b.bet_id WHERE b.payout_minor = s.payout_minor"
        ),
        1_200
    );
    assert_eq!(
        q(
            "SELECT COUNT(*) FROM bet_state WHERE status = 'open' AND (bet_id LIKE '%0' OR bet_id LIKE '%1')"
        ),
        300
    );
    // Two result records + 1,200 settlements, every one in exactly one verified segment.
    assert_eq!(head, 1_202);
    let mut st = conn
        .prepare("SELECT body FROM audit_outbox WHERE log_id = 'hub/gb-1' ORDER BY first_seq")
        .unwrap();
    let bodies: Vec<Vec<u8>> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = t.state.hub_key().public();
    let mut prev: Option<ChainHead> = None;
    for b in bodies {
        let (h, frames) = decode_segment(&b).unwrap();
        let rep = verify_segment(&h, frames, &key, prev).unwrap();
        prev = Some(rep.head);
    }
    assert_eq!(prev.map(|p| p.seq.0), Some(head));
    drop(st);
    drop(conn);
}

/// A database from before migration 5 (no `event_bets`) gets the compact copy of every stored
/// bet from its `bet_placed` record, and the bulk pass then settles from it as before.
#[test]
fn migration_copies_stored_bets_and_settles_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected_paid = 0;
    {
        let state = open_hub(dir.path(), eager());
        let mut edge = Edge::new();
        let mut events = vec![genesis()];
        for i in 0..1_100usize {
            let outcome = OUTCOMES[i % 3];
            let legs = if i % 10 == 0 {
                vec![leg("e-1", outcome, "2.5"), leg("e-2", Outcome::Home, "1.5")]
            } else {
                if outcome == Outcome::Home {
                    expected_paid += (100 + 2 * i as i64) * 5 / 2;
                }
                vec![leg("e-1", outcome, "2.5")]
            };
            events.push(bet(&format!("b-{i}"), 100 + 2 * i as i64, legs));
        }
        let recs = edge.group(&events);
        state
            .commit_upstream_blocking(&node_id(), recs, now())
            .unwrap();
    }
    // Back to schema 4, as a hub of the previous release left it.
    {
        let c = rusqlite::Connection::open(dir.path().join("hub.sqlite")).unwrap();
        c.execute_batch(
            "DROP TABLE event_bets; DROP INDEX bets_in_error; PRAGMA user_version = 4;",
        )
        .unwrap();
    }
    let state = open_hub(dir.path(), eager());
    {
        let conn = state.db().reader();
        let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(q("PRAGMA user_version"), 5);
        assert_eq!(q("SELECT COUNT(*) FROM event_bets"), 1_100 + 110);
        assert_eq!(
            q("SELECT COUNT(*) FROM event_bets WHERE event_id = 'e-2'"),
            110
        );
        assert_eq!(
            q(
                "SELECT COUNT(*) FROM event_bets eb JOIN records r ON r.node_id = eb.node_id AND r.seq = eb.seq AND r.ts_ms = eb.struck_ms"
            ),
            1_210
        );
    }
    let r = make_final(&state, "e-1", 2, 1);
    assert_eq!((r.settled, r.waiting), (990, 110), "{r:?}");
    let paid: i64 = state
        .db()
        .reader()
        .query_row("SELECT SUM(payout_minor) FROM settlements", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(paid, expected_paid);
    // The doubles settle when their second leg's result is final.
    let r = make_final(&state, "e-2", 1, 0);
    assert_eq!((r.settled, r.waiting), (110, 0), "{r:?}");
}

/// A bet that cannot be settled (marked `error` on one leg's result) is left out of the bulk
/// pass of its other leg's event, found by the partial index rather than by reading every bet.
#[test]
fn bets_in_error_are_left_out_of_later_passes() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let mut events = vec![genesis()];
    // A race leg cannot be settled from a football score.
    events.push(bet(
        "bad-double",
        200,
        vec![race_leg("e-1", 3, None), leg("e-2", Outcome::Home, "2.0")],
    ));
    for i in 0..1_100usize {
        events.push(bet(
            &format!("b-{i}"),
            100,
            vec![leg("e-2", Outcome::Home, "2.0")],
        ));
    }
    let recs = edge.group(&events);
    t.state
        .commit_upstream_blocking(&node_id(), recs, now())
        .unwrap();
    let r = make_final(&t.state, "e-1", 1, 0);
    assert_eq!((r.settled, r.waiting), (0, 0), "{r:?}");
    let r = make_final(&t.state, "e-2", 1, 0);
    assert_eq!((r.settled, r.waiting), (1_100, 0), "{r:?}");
    let conn = t.state.db().reader();
    let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, String>(0)).unwrap();
    assert_eq!(
        q("SELECT status FROM bet_state WHERE bet_id = 'bad-double'"),
        "error"
    );
    let plan: String = conn
        .query_row(
            "EXPLAIN QUERY PLAN SELECT bet_id FROM bets WHERE status = 'error'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("bets_in_error"), "{plan}");
}

/// Make `ev`'s score final (two feed sources agreeing) and return the receipt.
fn make_final(state: &HubState, ev: &str, home: u16, away: u16) -> ResultReceipt {
    final_result(state, &event(ev), FinalScore { home, away }, "feed", now()).unwrap()
}
