//! The bulk pass on enough bets to take its parallel path (more than 1,024), against the
//! per-bet rules: singles settle with the payout the core rules give, a double waits for its
//! other leg, a suspended event's bets wait, and the down chain's audit segments (cut from
//! the records still in memory) verify against the hub key and cover every record.

use crate::reconcile::suspend;
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

    let r = final_result(
        &t.state,
        &event("e-1"),
        FinalScore { home: 2, away: 1 },
        "feed",
        now(),
    )
    .unwrap();
    assert_eq!((r.settled, r.waiting), (1_200, 150), "{r:?}");
    let r = final_result(
        &t.state,
        &event("e-3"),
        FinalScore { home: 0, away: 0 },
        "feed",
        now(),
    )
    .unwrap();
    assert_eq!((r.settled, r.waiting), (0, 150), "suspended: {r:?}");
    // Resubmitting settles nothing twice.
    let r = final_result(
        &t.state,
        &event("e-1"),
        FinalScore { home: 2, away: 1 },
        "feed",
        now(),
    )
    .unwrap();
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
