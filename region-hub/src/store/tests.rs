//! Store tests: real signed records with real payloads, over a SQLite file in a temp dir.

use super::*;
use crate::config::SegmentPolicy;
use crate::settlement::{ResultError, ResultStatus};
use crate::test_support::*;
use outpost_core::hub::HubEvent;
use outpost_core::log::{ChainWriter, decode_segment, verify_frames};
use outpost_core::market::Outcome;
use outpost_core::settle::FinalScore;

fn count(state: &HubState, sql: &str) -> i64 {
    state
        .db()
        .reader()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

fn commit(state: &HubState, records: Vec<(Frame, RecordBody)>) -> Result<Seq, StoreError> {
    state.commit_upstream_blocking(&node_id(), records, now())
}

#[test]
fn commit_derives_bets_and_is_idempotent() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let g1 = edge.group(&[
        genesis(),
        bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.5")]),
    ]);
    assert_eq!(commit(&t.state, g1.clone()).unwrap(), Seq(2));
    assert_eq!(t.state.upstream_head(&node_id()).unwrap(), edge.w.head());
    let bet = t
        .state
        .bet_view(&BetId::new("b-1").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        (bet.status.as_str(), bet.stake_minor, bet.seq),
        ("open", 1000, 2)
    );

    // The same records again (a retry after a lost ack) change nothing.
    assert_eq!(commit(&t.state, g1).unwrap(), Seq(2));
    assert_eq!(count(&t.state, "SELECT COUNT(*) FROM records"), 2);
    assert_eq!(count(&t.state, "SELECT COUNT(*) FROM bets"), 1);

    // The state survives a reopen.
    drop(t.state);
    let state = open_hub(t.dir.path(), eager());
    assert_eq!(state.upstream_head(&node_id()).unwrap(), edge.w.head());
    assert_eq!(state.nodes_view().unwrap()[0].acked_seq, 2);
}

#[test]
fn equivocation_is_refused_and_flags_the_node() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let g1 = edge.group(&[genesis()]);
    commit(&t.state, g1.clone()).unwrap();
    let after_genesis = edge.w.head();
    commit(
        &t.state,
        edge.group(&[bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.0")])]),
    )
    .unwrap();

    // A forked log: same seq 1, a different, validly signed seq 2.
    let mut fork = Edge {
        w: ChainWriter::new(LogId::new("gb-1").unwrap(), after_genesis),
        key: node_key(),
    };
    let mut records = g1;
    records.extend(fork.group(&[bet("b-1", 9999, vec![leg("e-1", Outcome::Home, "2.0")])]));
    let err = commit(&t.state, records).unwrap_err();
    assert!(
        matches!(err, StoreError::Equivocation { seq: Seq(2), .. }),
        "{err}"
    );

    // Nothing of the forked commit was kept, the node is flagged (persisted), and its further
    // records are refused.
    assert_eq!(count(&t.state, "SELECT stake_minor FROM bets"), 1000);
    let n = &t.state.nodes_view().unwrap()[0];
    assert!(n.flagged && n.flag_reason.as_deref().unwrap().contains("equivocated"));
    let more = edge.group(&[bet("b-2", 500, vec![leg("e-2", Outcome::Away, "3.0")])]);
    assert!(matches!(
        commit(&t.state, more),
        Err(StoreError::Flagged { .. })
    ));
    drop(t.state);
    let state = open_hub(t.dir.path(), eager());
    assert!(state.nodes_view().unwrap()[0].flagged);
    assert!(matches!(
        state.commit_upstream_blocking(&node_id(), vec![], now()),
        Err(StoreError::Flagged { .. })
    ));
}

#[test]
fn gaps_and_foreign_logs_are_refused_without_flagging() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let _skipped = edge.group(&[genesis()]);
    let g2 = edge.group(&[bet("b-1", 100, vec![leg("e-1", Outcome::Home, "2.0")])]);
    assert!(matches!(
        commit(&t.state, g2),
        Err(StoreError::NotContiguous {
            seq: Seq(2),
            head: Seq(0),
            ..
        })
    ));
    assert!(!t.state.nodes_view().unwrap()[0].flagged);
    assert!(matches!(
        t.state
            .commit_upstream_blocking(&NodeId::new("xx-9").unwrap(), vec![], now()),
        Err(StoreError::UnknownNode(_))
    ));
}

fn down_events(state: &HubState) -> Vec<HubEvent> {
    let frames = state.read_down(&node_id(), Seq::ZERO, 1000).unwrap();
    // The down chain verifies against the hub's key, record by record.
    let log = outpost_core::hub::down_log_id(&node_id());
    verify_frames(
        &log,
        &state.hub_public_key(),
        ChainHead::EMPTY,
        frames.clone(),
    )
    .unwrap();
    frames
        .iter()
        .map(|f| {
            let b = f.parse_body().unwrap();
            HubEvent::from_payload(b.kind, &b.payload).unwrap()
        })
        .collect()
}

#[test]
fn result_settles_open_bets_and_later_bets_at_commit() {
    let t = hub(eager());
    let mut edge = Edge::new();
    commit(
        &t.state,
        edge.group(&[
            genesis(),
            bet("b-win", 1000, vec![leg("e-1", Outcome::Home, "2.5")]),
            bet("b-lose", 700, vec![leg("e-1", Outcome::Away, "3.0")]),
            bet(
                "b-acca",
                1000,
                vec![
                    leg("e-1", Outcome::Home, "2.0"),
                    leg("e-2", Outcome::Draw, "3.0"),
                ],
            ),
        ]),
    )
    .unwrap();
    let mut rx = t.state.subscribe_down(&node_id());
    let r = final_result(
        &t.state,
        &event("e-1"),
        FinalScore { home: 2, away: 1 },
        "test-feed",
        now(),
    )
    .unwrap();
    assert_eq!(
        (r.status, r.settled, r.waiting),
        (ResultStatus::Recorded, 2, 1)
    );
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), Seq(3));
    assert_eq!(t.state.down_head(&node_id()), Seq(3));

    let b = |id: &str| t.state.bet_view(&BetId::new(id).unwrap()).unwrap().unwrap();
    assert_eq!(
        (b("b-win").status.as_str(), b("b-win").payout_minor),
        ("settled", Some(2500))
    );
    assert_eq!(
        (b("b-lose").status.as_str(), b("b-lose").payout_minor),
        ("settled", Some(0))
    );
    assert_eq!(b("b-acca").status, "open");

    let evs = down_events(&t.state);
    assert!(
        matches!(&evs[0], HubEvent::Result(r) if r.event_id == event("e-1") && r.result_version == 1)
    );
    let payouts: Vec<(String, i64)> = evs[1..]
        .iter()
        .map(|e| match e {
            HubEvent::Settlement(s) => (s.bet_id.to_string(), s.payout_minor),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        payouts,
        vec![("b-lose".to_string(), 0), ("b-win".to_string(), 2500)]
    );

    // The second leg's result settles the accumulator: 1000 × 2.0 × 3.0.
    let r = final_result(
        &t.state,
        &event("e-2"),
        FinalScore { home: 1, away: 1 },
        "test-feed",
        now(),
    )
    .unwrap();
    assert_eq!(r.settled, 1);
    assert_eq!(b("b-acca").payout_minor, Some(6000));

    // A bet replicated after its event was resulted settles in the commit that brings it.
    commit(
        &t.state,
        edge.group(&[bet("b-late", 400, vec![leg("e-1", Outcome::Draw, "3.2")])]),
    )
    .unwrap();
    assert_eq!(
        (b("b-late").status.as_str(), b("b-late").payout_minor),
        ("settled", Some(0))
    );
    assert_eq!(down_events(&t.state).len(), 6);
    let stats = t.state.stats_view().unwrap();
    assert_eq!(
        (stats.bets, stats.settled, stats.results, stats.open_bets),
        (4, 4, 2, 0)
    );
}

#[test]
fn resubmission_is_a_noop_and_a_different_result_raises_an_alert() {
    let t = hub(eager());
    let mut edge = Edge::new();
    commit(
        &t.state,
        edge.group(&[
            genesis(),
            bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.0")]),
        ]),
    )
    .unwrap();
    let score = FinalScore { home: 1, away: 0 };
    final_result(&t.state, &event("e-1"), score, "feed", now()).unwrap();
    let down_before = t.state.down_head(&node_id());

    let again = t
        .state
        .submit_result_blocking(&event("e-1"), score, "another-feed", now())
        .unwrap();
    assert_eq!(
        (again.status, again.settled, again.reprocessed),
        (ResultStatus::Unchanged, 0, 1)
    );
    assert_eq!(t.state.down_head(&node_id()), down_before);
    assert_eq!(t.state.stats_view().unwrap().reprocessed_settlements, 1);

    // A different score for a final result: kept as a report, alert raised, nothing settled.
    let r = t
        .state
        .submit_result_blocking(
            &event("e-1"),
            FinalScore { home: 0, away: 0 },
            "feed",
            now(),
        )
        .unwrap();
    assert_eq!(r.status, ResultStatus::Conflict);
    assert!(
        r.alert.as_deref().unwrap().contains("final result is 1-0"),
        "{r:?}"
    );
    assert_eq!(t.state.down_head(&node_id()), down_before);
    assert_eq!(t.state.alerts_view(false).unwrap().len(), 1);
    assert!(matches!(
        t.state
            .submit_result_blocking(&event("e-9"), score, " ", now()),
        Err(ResultError::Invalid {
            field: "source",
            ..
        })
    ));
}

#[test]
fn settlement_is_keyed_by_bet_and_result_version() {
    let t = hub(eager());
    let mut edge = Edge::new();
    commit(
        &t.state,
        edge.group(&[
            genesis(),
            bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.0")]),
        ]),
    )
    .unwrap();
    final_result(
        &t.state,
        &event("e-1"),
        FinalScore { home: 3, away: 0 },
        "feed",
        now(),
    )
    .unwrap();
    let before = (
        count(&t.state, "SELECT COUNT(*) FROM settlements"),
        t.state.down_head(&node_id()),
    );

    // Reprocess the bet directly, twice, even after forcing its status back to open.
    let mut conn = t.state.db().conn();
    let tx = conn.transaction().unwrap();
    tx.execute("UPDATE bets SET status = 'open'", []).unwrap();
    let mut fx = TxEffects::default();
    let id = BetId::new("b-1").unwrap();
    assert_eq!(
        t.state.settle_in_tx(&tx, &id, now(), &mut fx).unwrap(),
        SettleOutcome::Reprocessed
    );
    assert_eq!(
        t.state.settle_in_tx(&tx, &id, now(), &mut fx).unwrap(),
        SettleOutcome::Reprocessed
    );
    tx.commit().unwrap();
    drop(conn);
    assert_eq!(fx.reprocessed, 2);
    assert!(fx.down_heads.is_empty());
    assert_eq!(
        (
            count(&t.state, "SELECT COUNT(*) FROM settlements"),
            t.state.down_head(&node_id())
        ),
        before
    );
}

/// Decode and verify every outbox object; returns (log id, first, last) per object.
fn verified_outbox(state: &HubState) -> Vec<(String, u64, u64)> {
    let conn = state.db().reader();
    let mut stmt = conn
        .prepare("SELECT log_id, key, body FROM audit_outbox ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.into_iter()
        .map(|(log, key, body)| {
            let (h, frames) = decode_segment(&body).unwrap();
            let pk = outpost_core::log::PublicKey::from_hex(&h.public_key).unwrap();
            let expected_pk = if log.starts_with("hub/") {
                state.hub_public_key()
            } else {
                node_key().public()
            };
            assert_eq!(pk, expected_pk);
            let report = verify_frames(&h.log_id, &pk, h.start().unwrap(), frames).unwrap();
            assert_eq!(
                (report.first_seq, report.head.seq, report.records),
                (h.first_seq, h.last_seq, h.records)
            );
            assert_eq!(report.head.hash.to_hex(), h.last_hash);
            assert!(key.starts_with("GB/"), "{key}");
            assert_eq!(h.log_id.as_str(), log);
            (log, h.first_seq.0, h.last_seq.0)
        })
        .collect()
}

#[test]
fn audit_outbox_gets_verifiable_segments_of_both_chains() {
    let t = hub(eager());
    let mut edge = Edge::new();
    commit(
        &t.state,
        edge.group(&[
            genesis(),
            bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.0")]),
        ]),
    )
    .unwrap();
    commit(
        &t.state,
        edge.group(&[bet("b-2", 500, vec![leg("e-1", Outcome::Away, "4.0")])]),
    )
    .unwrap();
    final_result(
        &t.state,
        &event("e-1"),
        FinalScore { home: 0, away: 2 },
        "feed",
        now(),
    )
    .unwrap();
    let segs = verified_outbox(&t.state);
    assert_eq!(
        segs,
        vec![
            ("gb-1".into(), 1, 2),
            ("gb-1".into(), 3, 3),
            ("hub/gb-1".into(), 1, 3)
        ],
        "the second upstream segment starts from the first one's last record"
    );
    // Retention: record time + 5 years for GB.
    let (retain, ts): (i64, i64) = t
        .state
        .db()
        .reader()
        .query_row(
            "SELECT o.retain_until_ms, r.ts_ms FROM audit_outbox o JOIN records r ON r.node_id = 'gb-1' AND r.seq = o.last_seq WHERE o.log_id = 'gb-1' AND o.first_seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(retain, crate::outbox::add_years(UnixMillis(ts), 5).0);
}

#[test]
fn segment_policy_batches_by_count_and_age_and_ends_on_seals() {
    let t = hub(SegmentPolicy {
        max_records: 3,
        max_age_ms: 3_600_000,
    });
    let mut edge = Edge::new();
    // Groups of 1 and 1: below the count, not yet old: nothing is cut.
    commit(&t.state, edge.group(&[genesis()])).unwrap();
    commit(
        &t.state,
        edge.group(&[bet("b-1", 100, vec![leg("e-1", Outcome::Home, "2.0")])]),
    )
    .unwrap();
    assert!(verified_outbox(&t.state).is_empty());
    // A group of 4 makes 6 pending: cut at the seals ≤ 3 records (1-2), then the group of 4
    // whole (it has no inner seal), never an unsealed end.
    let four: Vec<EdgeEvent> = (0..4)
        .map(|i| {
            bet(
                &format!("b-x{i}"),
                100,
                vec![leg("e-2", Outcome::Home, "2.0")],
            )
        })
        .collect();
    commit(&t.state, edge.group(&four)).unwrap();
    assert_eq!(
        verified_outbox(&t.state),
        vec![("gb-1".into(), 1, 2), ("gb-1".into(), 3, 6)]
    );
    // One more record waits for the age limit; forcing cuts it.
    commit(
        &t.state,
        edge.group(&[bet("b-y", 100, vec![leg("e-3", Outcome::Home, "2.0")])]),
    )
    .unwrap();
    assert_eq!(verified_outbox(&t.state).len(), 2);
    assert_eq!(t.state.cut_due_segments_blocking(now(), false).unwrap(), 0);
    assert_eq!(
        t.state
            .cut_due_segments_blocking(UnixMillis(now().0 + 3_600_000), false)
            .unwrap(),
        1
    );
    assert_eq!(
        verified_outbox(&t.state).last().unwrap(),
        &("gb-1".into(), 7, 7)
    );
}

#[test]
fn touch_and_down_ack_are_monotonic() {
    let t = hub(eager());
    let n = node_id();
    t.state.touch_blocking(&n, Seq(10), 2000).unwrap();
    t.state.touch_blocking(&n, Seq(7), 1000).unwrap();
    t.state.down_acked_blocking(&n, Seq(3)).unwrap();
    t.state.down_acked_blocking(&n, Seq(2)).unwrap();
    let v = &t.state.nodes_view().unwrap()[0];
    assert_eq!(
        (v.edge_head, v.last_contact_ms, v.down_acked, v.lag_records),
        (10, Some(2000), 3, 10)
    );
}

#[test]
fn registration_change_is_refused() {
    let t = hub(eager());
    drop(t.state);
    let db = crate::db::Db::open(&t.dir.path().join("hub.sqlite")).unwrap();
    let nodes = vec![NodeConfig {
        id: node_id(),
        jurisdiction: gb(),
        public_key: NodeKey::from_seed([9; 32]).public(),
    }];
    let r = HubState::new(
        db,
        "h".into(),
        NodeKey::from_seed(HUB_SEED),
        nodes,
        BTreeMap::new(),
        eager(),
    );
    assert!(matches!(r, Err(StoreError::RegistrationMismatch { .. })));
}

#[test]
fn a_reused_bet_id_is_kept_as_evidence_and_flags_the_node() {
    let t = hub(eager());
    let mut edge = Edge::new();
    let b = || bet("b-1", 100, vec![leg("e-1", Outcome::Home, "2.0")]);
    commit(&t.state, edge.group(&[genesis(), b()])).unwrap();
    // The records are committed (and acked): they are signed evidence.
    assert_eq!(commit(&t.state, edge.group(&[b()])).unwrap(), Seq(3));
    assert_eq!(count(&t.state, "SELECT COUNT(*) FROM records"), 3);
    assert_eq!(
        count(&t.state, "SELECT seq FROM bets WHERE bet_id = 'b-1'"),
        2
    );
    let n = &t.state.nodes_view().unwrap()[0];
    assert!(
        n.flagged && n.flag_reason.as_deref().unwrap().contains("already placed"),
        "{n:?}"
    );
    assert!(matches!(
        commit(&t.state, edge.group(&[genesis()])),
        Err(StoreError::Flagged { .. })
    ));
}
