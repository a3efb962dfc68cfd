//! End to end, with the real binaries on loopback and a real S3 server (LocalStack, started by
//! `scripts/test.sh`): a bet passes the gate, is durably logged, replicates over QUIC with
//! mutual TLS, settles when the real result arrives, is credited back to the wallet, and lands
//! in the S3 Object Lock audit trail, where it verifies with the node's key — with our code and
//! with the independent Python verifier.

mod common;

use common::*;
use outpost_core::log::{ChainHead, NodeKey, RecordKind, decode_segment, verify_frames};
use region_hub::audit::{AuditStore, S3Credentials, S3Store};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bet_replicates_settles_and_lands_in_the_audit_trail() {
    let endpoint = s3_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let bucket = format!("outpost-e2e-{}", std::process::id());
    let stack = init_stack(dir.path(), None, Some((&endpoint, &bucket)));
    // Balance snapshots every few records, so the hub's reconciliation has some to check and
    // the Python verifier sees kind 56.
    append_config(
        &dir.path().join("gb-1.toml"),
        "\n[balance_snapshot]\nevery_records = 4\n",
    );
    let (mut hub, mut edge) = stack.start(dir.path()).await;
    let (e, h) = stack.urls();
    let c = client();

    // A player, KYC, a deposit, and three bets on the opening match of 2023/24 (Burnley 0-3 Man City).
    let pid = ready_player(&c, &e, "e2e-", "Grace Hopper", 10_000).await;
    let ev = "E0-20230811-burnley-man-city";
    let ev2 = "E0-20230812-arsenal-nott-m-forest";
    let bet = |idem: &str, stake: i64, legs: serde_json::Value| {
        let c = c.clone();
        let (e, pid, idem) = (e.clone(), pid.clone(), idem.to_string());
        async move {
            post(
                &c,
                &format!("{e}/v1/bets"),
                &idem,
                json!({"player_id": pid, "stake_minor": stake, "currency": "GBP", "legs": legs}),
            )
            .await
        }
    };
    let (st, win) = bet(
        "e2e-bet-1",
        1000,
        json!([{"selection_id": format!("{ev}:1x2:away"), "price": "1.33"}]),
    )
    .await;
    assert_eq!(st, 201, "{win}");
    let (st, lose) = bet(
        "e2e-bet-2",
        500,
        json!([{"selection_id": format!("{ev}:1x2:home"), "price": "8.0"}]),
    )
    .await;
    assert_eq!(st, 201, "{lose}");
    let (_, markets) = get(&c, &format!("{e}/v1/markets?event_id={ev2}")).await;
    // The home selection of ev2's 1X2 market, found by id (the listing's order is not a contract).
    let home_sel = format!("{ev2}:1x2:home");
    let home_price = markets["markets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["selections"].as_array().unwrap().iter())
        .find(|s| s["selection_id"] == home_sel.as_str())
        .unwrap_or_else(|| panic!("{home_sel} listed: {markets}"))["price"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, acca) = bet("e2e-bet-3", 200, json!([{"selection_id": format!("{ev}:ou:2.5:over"), "price": "1.36"}, {"selection_id": format!("{ev2}:1x2:home"), "price": home_price}])).await;
    assert_eq!(st, 201, "{acca}");
    let (st, refused) = bet(
        "e2e-bet-4",
        1_000_000,
        json!([{"selection_id": format!("{ev}:1x2:away"), "price": "1.33"}]),
    )
    .await;
    assert_eq!(
        (st, refused["error"]["code"].as_str()),
        (422, Some("INSUFFICIENT_FUNDS")),
        "{refused}"
    );

    // Replication: the hub acknowledges the edge's whole durable log.
    let (_, health) = get(&c, &format!("{e}/healthz")).await;
    let edge_head = health["durable_seq"].as_u64().unwrap();
    eventually("replication", Duration::from_secs(30), || {
        let c = c.clone();
        let h = h.clone();
        async move {
            let (_, n) = get(&c, &format!("{h}/v1/nodes")).await;
            n["nodes"][0]["acked_seq"].as_u64().unwrap_or(0) >= edge_head
        }
    })
    .await;
    let (st, hub_bet) = get(
        &c,
        &format!("{h}/v1/bets/{}", win["bet_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(st, 200, "hub does not know the bet: {hub_bet}");

    // Results arrive at the hub (Burnley 0-3 Man City; Arsenal 2-1 Nott'm Forest) from two
    // independent sources; a result is final only when two sources agree.
    for source in ["openfootball", "football-data"] {
        for (id, hg, ag) in [(ev, 0, 3), (ev2, 2, 1)] {
            let r = c
                .post(format!("{h}/v1/results"))
                .json(
                    &json!({"event_id": id, "home_goals": hg, "away_goals": ag, "source": source}),
                )
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        }
    }
    // Settlements flow down and are applied exactly once.
    for b in [&win, &lose, &acca] {
        let id = b["bet_id"].as_str().unwrap().to_string();
        eventually("settlement at the edge", Duration::from_secs(30), || {
            let (c, e, id) = (c.clone(), e.clone(), id.clone());
            async move { get(&c, &format!("{e}/v1/bets/{id}")).await.1["status"] == "settled" }
        })
        .await;
    }
    let payout = |b: &serde_json::Value| {
        let (c, e, id) = (
            c.clone(),
            e.clone(),
            b["bet_id"].as_str().unwrap().to_string(),
        );
        async move {
            get(&c, &format!("{e}/v1/bets/{id}")).await.1["payout_minor"]
                .as_i64()
                .unwrap()
        }
    };
    assert_eq!(payout(&win).await, 1330);
    assert_eq!(payout(&lose).await, 0);
    // Both legs won; the payout is the stake times the prices the bet was struck at (the
    // default price policy accepts a better current price than the one requested).
    let struck: Vec<u128> = acca["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["price"]
                .as_str()
                .unwrap()
                .replace('.', "")
                .parse::<u128>()
                .unwrap()
        })
        .collect();
    assert_eq!(struck.len(), 2, "{acca}");
    let acca_expected = (200u128 * struck[0] * struck[1] / 1_000_000) as i64;
    assert_eq!(payout(&acca).await, acca_expected);
    let (_, w) = get(&c, &format!("{e}/v1/players/{pid}/wallet")).await;
    assert_eq!(
        w["cash_minor"].as_i64().unwrap(),
        10_000 - 1000 - 500 - 200 + 1330 + acca_expected
    );
    assert_eq!(w["stakes_held_minor"].as_i64().unwrap(), 0);

    // A retried result changes nothing; the credit is not applied twice.
    let r = c
        .post(format!("{h}/v1/results"))
        .json(&json!({"event_id": ev, "home_goals": 0, "away_goals": 3, "source": "openfootball"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get(&c, &format!("{e}/v1/players/{pid}/wallet")).await.1["cash_minor"],
        w["cash_minor"]
    );

    // An operator corrects Burnley-Man City to 3-0: the away bet's £13.30 is taken back and
    // the home bet now wins £40.00 (compensating entries over the down chain, applied once);
    // the accumulator (over 2.5, still 3 goals) is unaffected.
    let r = c
        .post(format!("{h}/v1/results/{ev}/correct"))
        .json(&json!({"home_goals": 3, "away_goals": 0, "operator": "e2e-ops", "reason": "scoring error"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().await.unwrap());
    let cash_before = w["cash_minor"].as_i64().unwrap();
    eventually(
        "the correction at the edge",
        Duration::from_secs(30),
        || {
            let (c, e, pid) = (c.clone(), e.clone(), pid.clone());
            async move {
                get(&c, &format!("{e}/v1/players/{pid}/wallet")).await.1["cash_minor"].as_i64()
                    == Some(cash_before - 1330 + 4000)
            }
        },
    )
    .await;
    assert_eq!(payout(&win).await, 0);
    assert_eq!(payout(&lose).await, 4000);
    assert_eq!(payout(&acca).await, acca_expected);

    // Audit trail: every edge record up to the settlement is in S3, locked in COMPLIANCE mode,
    // and verifies with the node's key.
    let (_, health) = get(&c, &format!("{e}/healthz")).await;
    let final_head = health["durable_seq"].as_u64().unwrap();
    let s3 =
        AuditStore::from(S3Store::connect(&endpoint, &bucket, S3Credentials::default()).unwrap());
    let key =
        NodeKey::from_hex(&std::fs::read_to_string(dir.path().join("gb-1.key")).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let keys = s3.list("GB/").await.unwrap_or_default();
        let covered = keys
            .iter()
            .filter(|k| k.contains("/gb-1/"))
            .filter_map(|k| {
                k.rsplit('/')
                    .next()?
                    .trim_end_matches(".seg")
                    .split_once('-')?
                    .1
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        if covered >= final_head {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "audit trail covers seq {covered}, node head is {final_head}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut keys: Vec<String> = s3
        .list("GB/")
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.contains("/gb-1/"))
        .collect();
    keys.sort_by_key(|k| k.rsplit('/').next().unwrap().to_string());
    let mut head = ChainHead::EMPTY;
    let mut bet_ids_in_audit = Vec::new();
    for k in &keys {
        let bytes = s3.get(k).await.unwrap();
        let (header, frames) = decode_segment(&bytes).unwrap();
        assert_eq!(
            header.first_seq.0,
            head.seq.0 + 1,
            "audit segments are contiguous"
        );
        for f in &frames {
            let b = f.parse_body().unwrap();
            if b.kind == RecordKind::BetPlaced {
                let v: serde_json::Value = serde_json::from_slice(&b.payload).unwrap();
                bet_ids_in_audit.push(v["bet_id"].as_str().unwrap().to_string());
            }
        }
        head = verify_frames(
            &header.log_id,
            &key.public(),
            header.start().unwrap(),
            frames,
        )
        .expect("audit segment verifies")
        .head;
        let ret = s3.retention(k).await.unwrap();
        assert_eq!(ret.mode, "COMPLIANCE");
        assert!(
            ret.retain_until.0 > outpost_core::time::UnixMillis(0).0 + 5 * 365 * 86_400_000,
            "retention is years, not days"
        );
    }
    assert!(bet_ids_in_audit.contains(&win["bet_id"].as_str().unwrap().to_string()));
    // The hub's downstream chain (settlements) is audited too.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s3
        .list("GB/")
        .await
        .unwrap()
        .iter()
        .any(|k| k.contains("/hub~gb-1/"))
    {
        assert!(
            Instant::now() < deadline,
            "the hub's downstream chain (settlements) was not audited"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The independent Python verifier accepts the node's exported log.
    let seg = c
        .get(format!("{e}/v1/log/segment"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let seg_path = dir.path().join("export.seg");
    std::fs::write(&seg_path, &seg).unwrap();
    let python = std::env::var("OUTPOST_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(&python)
        .args([
            repo_root().join("tests/verify_log.py").to_str().unwrap(),
            seg_path.to_str().unwrap(),
            "--public-key",
            &key.public().to_hex(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python verifier: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The launcher's own verifier agrees.
    let out = std::process::Command::new(outpost_bin())
        .args([
            "verify",
            "--public-key",
            &key.public().to_hex(),
            seg_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On-demand reconciliation of the current hour against the running hub: the five checks
    // plus re-reading the window's audit objects from S3. A correct session has no major or
    // critical finding; the signed report is served to ops.
    let hour = region_hub::reconcile::Hour::containing(outpost_core::time::UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    ))
    .to_string();
    let out = std::process::Command::new(outpost_bin())
        .args([
            "reconcile",
            "--config",
            &format!("{d}/hub.toml"),
            "--hour",
            &hour,
            "--json",
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let report = &summary["reports"][0];
    assert_eq!(report["jurisdiction"], "GB", "{summary}");
    assert_eq!(
        (report["major"].as_i64(), report["critical"].as_i64()),
        (Some(0), Some(0)),
        "{summary}"
    );
    assert!(
        summary["audit_verified"]["objects"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let reports: serde_json::Value = c
        .get(format!("{h}/v1/reconciliation/reports?hour={hour}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let served = &reports["reports"][0];
    assert_eq!(served["hour"], hour.as_str());
    let balances = served["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "balances")
        .unwrap();
    assert!(
        balances["examined"].as_u64().unwrap() > 0,
        "balance snapshots were checked: {served}"
    );
    edge.terminate();
    hub.terminate();
}
