//! Replication over a hostile network, with the real `edge-node` and `region-hub` binaries and
//! a user-space UDP relay between them (tests/common/udp_proxy.rs) that drops 20% of the QUIC
//! datagrams each way, delays them by 2–40 ms at random (so they arrive reordered) and
//! duplicates 5%, then partitions the link for 30 s, then heals, all while bets keep arriving
//! over HTTP. Results are posted at the hub while the faults are still on.
//!
//! Checked at the end: bets were accepted during the partition (a dead hub never blocks bet
//! acceptance); every acknowledged bet is at the hub; the hub holds the edge's durable log
//! exactly once, in order, byte for byte, and it verifies with the node's key; every bet was
//! settled exactly once at the hub and credited exactly once at the edge (each wallet equals
//! deposit − stakes + payouts, the ledger sums to zero); the downstream chain verifies with the
//! hub's key and was applied completely. Prints the catch-up time after the partition.

mod common;

use common::udp_proxy::{Faults, UdpProxy};
use common::*;
use outpost_core::ids::LogId;
use outpost_core::log::{ChainHead, Frame, NodeKey, decode_segment, verify_frames};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVENT: &str = "E0-20230811-burnley-man-city";
const PARTITION: Duration = Duration::from_secs(30);

async fn hub_acked(c: &reqwest::Client, hub: &str) -> u64 {
    get(c, &format!("{hub}/v1/nodes")).await.1["nodes"][0]["acked_seq"]
        .as_u64()
        .unwrap_or(0)
}

async fn edge_health(c: &reqwest::Client, edge: &str) -> serde_json::Value {
    get(c, &format!("{edge}/healthz")).await.1
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// The edge's whole durable log (through seq `head`), as one segment from its API.
async fn edge_log(c: &reqwest::Client, edge: &str, head: u64) -> Vec<Frame> {
    let r = c
        .get(format!("{edge}/v1/log/segment?from=1&to={head}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "segment: {}", r.status());
    let bytes = r.bytes().await.unwrap();
    decode_segment(&bytes).unwrap().1
}

#[derive(Default)]
struct Load {
    /// bet id → (player, stake) for every bet the edge acknowledged (201).
    acked: HashMap<String, (String, i64)>,
    /// Acknowledged while the link was partitioned.
    during_partition: u64,
    refused: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replication_survives_loss_reordering_duplication_and_a_30s_partition_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let hub_quic = free_udp_addr();
    let hub_quic_addr: SocketAddr = hub_quic.parse().unwrap();
    let proxy = UdpProxy::start(hub_quic_addr, 0x5eed_f00d).await;
    let proxy_addr = proxy.listen.to_string();

    // Configs point the edge at the proxy; the hub listens on its own port behind it.
    let stack = init_stack(dir.path(), Some(&proxy_addr), None);
    let hub_toml = dir.path().join("hub.toml");
    let text = std::fs::read_to_string(&hub_toml).unwrap();
    let listen = format!("quic_listen = \"{proxy_addr}\"");
    assert!(text.contains(&listen), "{text}");
    std::fs::write(
        &hub_toml,
        text.replace(&listen, &format!("quic_listen = \"{hub_quic}\"")),
    )
    .unwrap();

    let (hub, edge) = stack.start(dir.path()).await;
    let (e, h) = stack.urls();
    let c = client();

    // Players with funds.
    const DEPOSIT: i64 = 500_000;
    let mut players = Vec::new();
    for i in 0..4 {
        let (st, p) = post(&c, &format!("{e}/v1/players"), &format!("fp-reg-{i}"), json!({"jurisdiction":"GB","name":format!("Fault Tester {i}"),"date_of_birth":"1985-05-05"})).await;
        assert_eq!(st, 201, "{p}");
        let pid = p["player_id"].as_str().unwrap().to_string();
        assert_eq!(
            post(
                &c,
                &format!("{e}/v1/players/{pid}/kyc"),
                &format!("fp-kyc-{i}"),
                json!({})
            )
            .await
            .0,
            200
        );
        let (st, r) = post(&c, &format!("{e}/v1/players/{pid}/deposits"), &format!("fp-dep-{i}"), json!({"amount_minor": DEPOSIT, "currency":"GBP", "provider_ref": format!("psp-fp-{i}")})).await;
        assert_eq!(st, 201, "{r}");
        players.push(pid);
    }

    // Bet load: one task per player, ~40 bets/s each, alternating a winning and a losing
    // selection (Burnley 0-3 Man City).
    let load = Arc::new(Mutex::new(Load::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let partitioned = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for (w, pid) in players.iter().enumerate() {
        let (c, e, pid, load, stop, partitioned) = (
            c.clone(),
            e.clone(),
            pid.clone(),
            load.clone(),
            stop.clone(),
            partitioned.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (sel, price, stake) = if n.is_multiple_of(2) { ("away", "1.33", 100) } else { ("home", "8.0", 50) };
                let body = json!({"player_id": pid, "stake_minor": stake, "currency": "GBP", "legs": [{"selection_id": format!("{EVENT}:1x2:{sel}"), "price": price}]});
                let (st, r) = post(&c, &format!("{e}/v1/bets"), &format!("fp-bet-{w}-{n}"), body).await;
                {
                    let mut l = load.lock().unwrap();
                    if st == 201 {
                        l.acked.insert(r["bet_id"].as_str().unwrap().to_string(), (pid.clone(), stake));
                        if partitioned.load(Ordering::Relaxed) {
                            l.during_partition += 1;
                        }
                    } else {
                        l.refused += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
    }

    let lossy = Faults {
        drop_percent: 20,
        duplicate_percent: 5,
        delay_ms: (2, 40),
        partitioned: false,
    };
    // 1. A lossy, reordering, duplicating link.
    proxy.set(lossy);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let before = hub_acked(&c, &h).await;
    assert!(
        before > 0,
        "nothing replicated over the lossy link in 15 s; proxy: {}\nnodes {}\nedge {}\nedge log:\n{}\nhub log:\n{}",
        proxy.stats().summary(),
        get(&c, &format!("{h}/v1/nodes")).await.1,
        edge_health(&c, &e).await,
        edge.log_tail(),
        hub.log_tail()
    );

    // 2. Partition for 30 s; bets keep coming.
    proxy.set(Faults {
        partitioned: true,
        ..lossy
    });
    partitioned.store(true, Ordering::Relaxed);
    tokio::time::sleep(PARTITION).await;
    let acked_in_partition = hub_acked(&c, &h).await;
    // Observability: the hub shows the lag in records and seconds, in JSON and as metrics.
    let node_view = get(&c, &format!("{h}/v1/nodes")).await.1["nodes"][0].clone();
    let metrics = c
        .get(format!("{h}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    eprintln!(
        "at the end of the partition the hub reports lag {} records / {} s",
        node_view["lag_records"], node_view["lag_seconds"]
    );
    assert!(node_view["lag_seconds"].is_number(), "{node_view}");
    assert!(
        metrics.contains("outpost_replication_lag_seconds{node=\"gb-1\",jurisdiction=\"GB\"}")
            && metrics
                .contains("outpost_replication_lag_records{node=\"gb-1\",jurisdiction=\"GB\"}"),
        "{metrics}"
    );
    partitioned.store(false, Ordering::Relaxed);

    // 3. Heal (still lossy) and measure catch-up to the head the edge had at that moment.
    let head_at_heal = edge_health(&c, &e).await["durable_seq"].as_u64().unwrap();
    let healed = Instant::now();
    proxy.set(lossy);
    let catch_up = wait_for(
        "catch-up after the partition",
        Duration::from_secs(120),
        || {
            let (c, h) = (c.clone(), h.clone());
            async move { hub_acked(&c, &h).await >= head_at_heal }
        },
    )
    .await;
    let backlog = head_at_heal.saturating_sub(acked_in_partition);
    eprintln!(
        "catch-up after a {}s partition: {:.2}s for a backlog of {backlog} records (hub acked {acked_in_partition} → {head_at_heal}) over a link dropping 20%",
        PARTITION.as_secs(),
        catch_up.as_secs_f64()
    );
    let _ = healed;
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    // 4. Results arrive while the link is still lossy; settlements go down exactly once.
    // Final only when two independent sources agree.
    for source in ["openfootball", "football-data"] {
        let r = c
            .post(format!("{h}/v1/results"))
            .json(&json!({"event_id": EVENT, "home_goals": 0, "away_goals": 3, "source": source}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let settle_time = wait_for(
        "all bets settled at the edge",
        Duration::from_secs(180),
        || {
            let (c, e) = (c.clone(), e.clone());
            async move { get(&c, &format!("{e}/v1/node")).await.1["bets_open"].as_u64() == Some(0) }
        },
    )
    .await;
    proxy.set(Faults::default());
    // Let the log settle (the last settlements' wallet movements), then replicate all of it.
    let final_head = loop {
        let head = edge_health(&c, &e).await["durable_seq"].as_u64().unwrap();
        wait_for("final replication", Duration::from_secs(60), || {
            let (c, h) = (c.clone(), h.clone());
            async move { hub_acked(&c, &h).await >= head }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if edge_health(&c, &e).await["durable_seq"].as_u64() == Some(head) {
            break head;
        }
    };

    let caught_up = get(&c, &format!("{h}/v1/nodes")).await.1["nodes"][0].clone();
    assert_eq!(caught_up["lag_records"], 0, "{caught_up}");
    assert_eq!(caught_up["lag_seconds"], 0.0, "{caught_up}");
    let load = std::mem::take(&mut *load.lock().unwrap());
    eprintln!(
        "bets acknowledged: {} ({} during the partition, {} refused); settled in {:.2}s; proxy: {}",
        load.acked.len(),
        load.during_partition,
        load.refused,
        settle_time.as_secs_f64(),
        proxy.stats().summary()
    );
    assert!(
        load.during_partition > 100,
        "bet acceptance stalled during the partition: {}",
        load.during_partition
    );
    assert!(
        proxy.stats().dropped.load(Ordering::Relaxed) > 100
            && proxy.stats().duplicated.load(Ordering::Relaxed) > 10
    );

    // Upstream: the hub holds the edge's durable log exactly once, in order, and it verifies.
    let edge_frames = edge_log(&c, &e, final_head).await;
    assert_eq!(edge_frames.len() as u64, final_head);
    let db = rusqlite::Connection::open_with_flags(
        dir.path().join("hub/hub.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows: Vec<(i64, Vec<u8>)> = db
        .prepare("SELECT seq, frame FROM records WHERE node_id = 'gb-1' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows.len(),
        edge_frames.len(),
        "hub has {} records, edge {}",
        rows.len(),
        edge_frames.len()
    );
    for (i, (seq, bytes)) in rows.iter().enumerate() {
        assert_eq!(
            *seq,
            i as i64 + 1,
            "hub's upstream log has a gap or duplicate at position {i}"
        );
        assert_eq!(
            &Frame::decode_exact(bytes).unwrap(),
            &edge_frames[i],
            "record {seq} differs"
        );
    }
    let node_key = NodeKey::from_hex(
        std::fs::read_to_string(dir.path().join("gb-1.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    verify_frames(
        &LogId::new("gb-1").unwrap(),
        &node_key.public(),
        ChainHead::EMPTY,
        edge_frames.iter().cloned(),
    )
    .unwrap();

    // Every acknowledged bet reached the hub and was settled exactly once there.
    let hub_bets: HashSet<String> = db
        .prepare("SELECT bet_id FROM bets WHERE node_id = 'gb-1'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for id in load.acked.keys() {
        assert!(
            hub_bets.contains(id),
            "acknowledged bet {id} never reached the hub"
        );
    }
    let payouts: Vec<(String, i64)> = db
        .prepare("SELECT bet_id, payout_minor FROM settlements WHERE node_id = 'gb-1'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let settled: HashSet<&String> = payouts.iter().map(|p| &p.0).collect();
    assert_eq!(settled.len(), payouts.len(), "a bet was settled twice");
    assert_eq!(settled.len(), hub_bets.len(), "not every bet was settled");

    // Downstream: applied completely at the edge, verifies with the hub's key.
    let down: Vec<Vec<u8>> = db
        .prepare("SELECT frame FROM down_records WHERE node_id = 'gb-1' ORDER BY down_seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let hub_key = NodeKey::from_hex(
        std::fs::read_to_string(dir.path().join("hub.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    verify_frames(
        &LogId::new("hub/gb-1").unwrap(),
        &hub_key.public(),
        ChainHead::EMPTY,
        down.iter().map(|b| Frame::decode_exact(b).unwrap()),
    )
    .unwrap();
    assert_eq!(
        edge_health(&c, &e).await["down_applied"].as_u64(),
        Some(down.len() as u64)
    );

    // Wallets: every settlement credited exactly once.
    let mut expected: HashMap<&str, i64> = players.iter().map(|p| (p.as_str(), DEPOSIT)).collect();
    let payout_of: HashMap<&String, i64> = payouts.iter().map(|(b, p)| (b, *p)).collect();
    for (bet, (pid, stake)) in &load.acked {
        *expected.get_mut(pid.as_str()).unwrap() += payout_of[bet] - stake;
    }
    // Bets the edge made durable although the HTTP reply was lost count too: take the hub's view.
    assert_eq!(
        hub_bets.len(),
        load.acked.len(),
        "bets at the hub without an acknowledged request"
    );
    for pid in &players {
        let w = get(&c, &format!("{e}/v1/players/{pid}/wallet")).await.1;
        assert_eq!(
            w["cash_minor"].as_i64(),
            Some(expected[pid.as_str()]),
            "wallet of {pid}: {w}"
        );
        assert_eq!(w["stakes_held_minor"].as_i64(), Some(0), "{w}");
    }
    assert_eq!(
        get(&c, &format!("{e}/v1/node")).await.1["ledger_sum_minor"].as_i64(),
        Some(0)
    );
    drop(hub);
    drop(edge);
}
