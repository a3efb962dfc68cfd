//! The audit trail survives an S3 outage during bet load: a real S3 server (its own LocalStack
//! instance on a free port, started and owned by this test through `scripts/localstack.sh`)
//! is STOPPED (SIGSTOP on its process group: it accepts nothing and answers nothing, like a
//! hung or partitioned endpoint) while two edge nodes' bets keep being committed. Commits
//! never wait for S3; the durable outbox retries with backoff; after the server is continued
//! the outbox drains in order, and the verifier re-reads every object from S3 and finds it
//! identical to the log, signed, and locked for its jurisdiction's retention (NJ: 10 years).
//!
//! SIGSTOP/SIGCONT rather than kill/start: LocalStack Community keeps S3 in memory, so a
//! restarted server would come back empty, which real S3 never does.
//!
//! Needs the Python venv with LocalStack (`scripts/test.sh` creates it); fails, never skips,
//! without it.

use outpost_core::edge::events::{BetLeg, BetPlaced, EdgeEvent, Genesis, IdemTag};
use outpost_core::ids::{
    BetId, EventId, IdemKey, Jurisdiction, LogId, MarketId, NodeId, PlayerId, SelectionId,
};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordBody};
use outpost_core::market::{MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;
use outpost_core::time::UnixMillis;
use region_hub::audit::{AuditStore, S3Credentials, S3Store, S3Timeouts};
use region_hub::audit_uploader::{Backoff, run_uploader};
use region_hub::config::{NodeConfig, SegmentPolicy};
use region_hub::db::Db;
use region_hub::reconcile::audit_verify::{Selection, verify};
use region_hub::store::HubState;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A LocalStack instance this test owns; stopped (and continued first, if frozen) on drop.
struct LocalStack {
    port: u16,
}

impl LocalStack {
    fn start() -> LocalStack {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let st = Command::new(repo().join("scripts/localstack.sh"))
            .args(["start", &port.to_string()])
            .status()
            .expect("running scripts/localstack.sh");
        assert!(
            st.success(),
            "LocalStack did not start on port {port} (see target/localstack/{port}.log)"
        );
        LocalStack { port }
    }
    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// The process group leader's pid, from the script's pid file.
    fn pgid(&self) -> String {
        let f = repo().join(format!("target/localstack/{}.pid", self.port));
        std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .trim()
            .to_string()
    }
    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.pgid())])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig} on LocalStack's process group");
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let f = repo().join(format!("target/localstack/{}.pid", self.port));
        if let Ok(pid) = std::fs::read_to_string(f) {
            let _ = Command::new("kill")
                .args(["-CONT", "--", &format!("-{}", pid.trim())])
                .status();
        }
        let _ = Command::new(repo().join("scripts/localstack.sh"))
            .args(["stop", &self.port.to_string()])
            .status();
    }
}

/// An edge node's log: genesis, then one bet per commit group.
struct Node {
    id: NodeId,
    j: Jurisdiction,
    key: NodeKey,
    w: ChainWriter,
    bets: u64,
}

impl Node {
    fn new(id: &str, j: &str, seed: u8) -> Node {
        Node {
            id: NodeId::new(id).unwrap(),
            j: Jurisdiction::new(j).unwrap(),
            key: NodeKey::from_seed([seed; 32]),
            w: ChainWriter::new(LogId::new(id).unwrap(), ChainHead::EMPTY),
            bets: 0,
        }
    }
    fn group(&mut self, events: Vec<EdgeEvent>) -> Vec<(Frame, RecordBody)> {
        let n = events.len();
        events
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let mut f = self
                    .w
                    .append(e.kind(), UnixMillis(now_ms()), e.to_payload());
                if i + 1 == n {
                    ChainWriter::seal(&mut f, &self.key);
                }
                let b = f.parse_body().unwrap();
                (f, b)
            })
            .collect()
    }
    fn genesis(&mut self) -> Vec<(Frame, RecordBody)> {
        let g = EdgeEvent::Genesis(Genesis {
            node_id: self.id.clone(),
            jurisdiction: self.j.clone(),
            currency: Currency::USD,
            public_key: self.key.public().to_hex(),
            software: "outage-test".into(),
        });
        self.group(vec![g])
    }
    fn bet(&mut self) -> Vec<(Frame, RecordBody)> {
        self.bets += 1;
        let ev = EventId::new(format!("ev-{}", self.bets % 7)).unwrap();
        let market_id = MarketId::new(format!("{ev}/1x2")).unwrap();
        let b = EdgeEvent::BetPlaced(BetPlaced {
            each_way: false,
            bet_id: BetId::new(format!("{}-b{}", self.id, self.bets)).unwrap(),
            player_id: PlayerId::new(format!("{}-p{}", self.id, self.bets % 13)).unwrap(),
            currency: Currency::USD,
            stake_minor: 500,
            potential_payout_minor: 1_000,
            legs: vec![BetLeg {
                selection_id: SelectionId::new(format!("{market_id}/home")).unwrap(),
                market_id,
                event_id: ev,
                kind: MarketKind::MatchResult,
                outcome: Outcome::Home,
                price: Price::parse("2.0").unwrap(),
            }],
            idem: IdemTag {
                key: IdemKey::new(format!("{}-k{}", self.id, self.bets)).unwrap(),
                request_sha256: "00".repeat(32),
            },
        });
        self.group(vec![b])
    }
}

async fn commit(state: &HubState, node: &NodeId, recs: Vec<(Frame, RecordBody)>) {
    let (s, n) = (state.clone(), node.clone());
    tokio::task::spawn_blocking(move || s.commit_upstream_blocking(&n, recs, UnixMillis(now_ms())))
        .await
        .unwrap()
        .expect("commits never wait for S3");
}

async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_rides_out_an_s3_outage_during_bet_load_and_drains_in_order() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let s3 = LocalStack::start();
    let dir = tempfile::tempdir().unwrap();
    let mut gb = Node::new("gb-1", "GB", 21);
    let mut nj = Node::new("nj-1", "US-NJ", 22);
    let regs = [&gb, &nj]
        .iter()
        .map(|n| NodeConfig {
            id: n.id.clone(),
            jurisdiction: n.j.clone(),
            public_key: n.key.public(),
        })
        .collect();
    let retention = BTreeMap::from([(gb.j.clone(), 5), (nj.j.clone(), 10)]);
    let state = HubState::new(
        Db::open(&dir.path().join("hub.sqlite")).unwrap(),
        "outage-hub".into(),
        NodeKey::from_seed([20; 32]),
        regs,
        retention,
        // Every commit becomes its own audit object: many objects to keep in order.
        SegmentPolicy {
            max_records: 1000,
            max_age_ms: 0,
        },
    )
    .unwrap();
    let bucket = format!("outpost-outage-{}", std::process::id());
    // The bucket is made with the hub's normal timeouts (LocalStack loads S3 on first use);
    // the uploader gets short ones so a frozen server fails a put within seconds, not 90 s.
    S3Store::connect(&s3.endpoint(), &bucket, S3Credentials::default())
        .unwrap()
        .ensure_bucket()
        .await
        .unwrap();
    let timeouts = S3Timeouts {
        connect: Duration::from_secs(1),
        attempt: Duration::from_millis(2_500),
        operation: Duration::from_secs(5),
    };
    let s3store =
        S3Store::connect_with_timeouts(&s3.endpoint(), &bucket, S3Credentials::default(), timeouts)
            .unwrap();
    let store = AuditStore::S3(s3store);
    let backoff = Backoff {
        base_ms: 250,
        max_ms: 4_000,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let uploader = tokio::spawn(run_uploader(
        state.clone(),
        store.clone(),
        backoff,
        Duration::from_millis(200),
        stop_rx,
    ));

    // Load, part 1: S3 up.
    commit(&state, &gb.id.clone(), gb.genesis()).await;
    commit(&state, &nj.id.clone(), nj.genesis()).await;
    for _ in 0..10 {
        commit(&state, &gb.id.clone(), gb.bet()).await;
        commit(&state, &nj.id.clone(), nj.bet()).await;
    }
    eventually(
        "the first objects to upload",
        Duration::from_secs(30),
        || state.stats_view().unwrap().audit_pending == 0,
    )
    .await;
    let before = state.stats_view().unwrap().audit_uploaded;
    assert_eq!(before, 22);

    // The S3 server stops. Load, part 2, goes on: every commit succeeds at once.
    s3.signal("-STOP");
    let outage = Instant::now();
    for _ in 0..15 {
        commit(&state, &gb.id.clone(), gb.bet()).await;
        commit(&state, &nj.id.clone(), nj.bet()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The outbox retries the head object with growing delays; nothing is uploaded meanwhile.
    let mut seen: Vec<(i64, i64)> = Vec::new(); // (attempts, delay until next attempt)
    eventually("two failed attempts", Duration::from_secs(40), || {
        let head = state.audit_outbox_view(1).unwrap().remove(0);
        let delay = head.next_attempt_ms - now_ms();
        if seen.last().map(|s| s.0) != Some(head.attempts) && head.attempts > 0 {
            assert!(
                head.last_error
                    .as_deref()
                    .unwrap_or("")
                    .contains("unavailable"),
                "{head:?}"
            );
            seen.push((head.attempts, delay));
        }
        head.attempts >= 2
    })
    .await;
    let st = state.stats_view().unwrap();
    assert_eq!(
        st.audit_uploaded, before,
        "nothing reaches a stopped server"
    );
    assert!(st.audit_pending >= 30, "{st:?}");
    // The first object still waits at the head: order is kept, the rest wait behind it.
    let queue = state.audit_outbox_view(1000).unwrap();
    assert!(queue.windows(2).all(|w| w[0].id < w[1].id));
    assert!(
        queue.iter().skip(1).all(|e| e.attempts == 0),
        "one probe at a time while the store is down"
    );
    eprintln!(
        "outage: {:.1} s, attempts/delays seen {seen:?}",
        outage.elapsed().as_secs_f64()
    );

    // S3 comes back: the outbox drains, in order.
    s3.signal("-CONT");
    eventually("the outbox to drain", Duration::from_secs(60), || {
        state.stats_view().unwrap().audit_pending == 0
    })
    .await;
    stop_tx.send(true).unwrap();
    uploader.await.unwrap();

    // Nothing lost: every record of both logs is in exactly one uploaded object, contiguous.
    let uploaded = state.audit_uploaded_view().unwrap();
    assert_eq!(uploaded.len(), 2 + 2 * 25);
    for (log, head) in [("gb-1", 26), ("nj-1", 26)] {
        let mut next = 1;
        for u in uploaded.iter().filter(|u| u.log_id == log) {
            assert_eq!(
                u.first_seq, next,
                "{log}: objects uploaded in seq order, no gap, no overlap"
            );
            next = u.last_seq + 1;
        }
        assert_eq!(next, head + 1, "{log}: all {head} records uploaded");
    }
    // In order across logs too: the upload order is the commit order.
    let after: Vec<_> = uploaded[before as usize..]
        .iter()
        .map(|u| (u.log_id.as_str(), u.first_seq))
        .collect();
    let mut expected = Vec::new();
    for i in 0..15 {
        expected.push(("gb-1", 12 + i));
        expected.push(("nj-1", 12 + i));
    }
    assert_eq!(after, expected);
    assert!(
        uploaded
            .windows(2)
            .all(|w| w[0].uploaded_ms <= w[1].uploaded_ms)
    );

    // The verifier re-reads every object from S3: identical to the log, chains and seals
    // verify with each node's key, locked in COMPLIANCE for 5 (GB) / 10 (NJ) years.
    let (out, sum) = verify(&state, &store, Selection::All, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(out.found, vec![], "{:#?}", out.found);
    assert_eq!((sum.objects, sum.records), (52, 52));
    let nj_key = &uploaded.iter().find(|u| u.log_id == "nj-1").unwrap().key;
    let r = store.retention(nj_key).await.unwrap();
    assert_eq!(r.mode, "COMPLIANCE");
    assert!(
        r.retain_until.0 > now_ms() + 9 * 365 * 86_400_000 + 300 * 86_400_000,
        "NJ keeps audit objects 10 years: {r:?}"
    );
    let gb_key = &uploaded.iter().find(|u| u.log_id == "gb-1").unwrap().key;
    let r = store.retention(gb_key).await.unwrap();
    let years = (r.retain_until.0 - now_ms()) / (365 * 86_400_000);
    assert!((4..=5).contains(&years), "GB keeps 5 years: {r:?}");
    assert!(nj_key.starts_with("US-NJ/") && gb_key.starts_with("GB/"));
}
