//! Crash test: kill -9 the real `edge-node` binary at random moments while bets are being
//! placed concurrently, restart it, and repeat. Afterwards every bet that got a 201 is present
//! exactly once, a retry of its request returns the same bet, the balances equal those
//! recomputed from the log, and the chain verifies.
//!
//! The bets go through the full compliance gate: the national register is loaded (one player
//! is listed on it), players have daily stake and loss limits that some of them reach during
//! the run, and AML velocity applies. Every refusal that got a 422 is logged: its retry gets
//! the same code, and every bet in the log has an accepting decision record.
//!
//! Cycles default to 50 (`OUTPOST_CRASH_CYCLES`); the seed is printed and can be replayed with
//! `OUTPOST_CRASH_SEED`.

mod common;

use common::*;
use outpost_core::log::{ChainHead, NodeKey, decode_segment, verify_frames};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Acked {
    idem: String,
    body: serde_json::Value,
    bet_id: String,
}

struct Refused {
    idem: String,
    body: serde_json::Value,
    code: String,
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_loses_no_acknowledged_bet() {
    let cycles: usize = std::env::var("OUTPOST_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut seed: u64 = std::env::var("OUTPOST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: OUTPOST_CRASH_SEED={seed} OUTPOST_CRASH_CYCLES={cycles}");
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    let cfg = write_edge_config(dir.path(), "gb-1", &http, None);
    let cfg_s = cfg.to_str().unwrap().to_string();
    let edge = bin("edge-node");
    let c = client();

    // Set-up: players with funds, and a set of open selections.
    let mut node = Proc::start(
        "edge-setup",
        &edge,
        &["run", "--config", &cfg_s],
        dir.path(),
    );
    wait_healthy(&base, &mut node, Duration::from_secs(60)).await;
    let mut players = Vec::new();
    for i in 0..8 {
        let (st, p) = post(&c, &format!("{base}/v1/players"), &format!("reg-{i}"), serde_json::json!({"jurisdiction":"GB","name":format!("Crash Tester {i}"),"date_of_birth":"1990-01-01"})).await;
        assert_eq!(st, 201, "{p}");
        let id = p["player_id"].as_str().unwrap().to_string();
        assert_eq!(
            post(
                &c,
                &format!("{base}/v1/players/{id}/kyc"),
                &format!("kyc-{i}"),
                serde_json::json!({})
            )
            .await
            .0,
            200
        );
        let (st, _) = post(&c, &format!("{base}/v1/players/{id}/deposits"), &format!("dep-{i}"), serde_json::json!({"amount_minor": 100_000_000, "currency":"GBP","provider_ref":format!("psp-{i}")})).await;
        assert_eq!(st, 201);
        // Stake and loss limits, low enough that some players reach them mid-run.
        for (kind, amount) in [("stake", 150_000 + i * 50_000), ("loss", 5_000_000)] {
            let (st, v) = post(
                &c,
                &format!("{base}/v1/players/{id}/limits"),
                &format!("lim-{kind}-{i}"),
                serde_json::json!({"kind": kind, "window": "day", "amount_minor": amount}),
            )
            .await;
            assert_eq!(st, 200, "{v}");
        }
        players.push(id);
    }
    // The last player is on the national register: every bet of theirs is refused.
    let excluded = players.last().unwrap().clone();
    let update = {
        use outpost_core::gate::register::*;
        let id = identity_sha256(
            "Crash Tester 7",
            outpost_core::time::CivilDate::new(1990, 1, 1).unwrap(),
        );
        let (_, reg) = get(&c, &format!("{base}/v1/admin/register")).await;
        let seq = reg["seq"].as_u64().unwrap();
        sign(
            &register_key(),
            &RegisterPayload {
                register: "GAMSTOP".into(),
                jurisdiction: outpost_core::ids::Jurisdiction::new("GB").unwrap(),
                kind: RegisterDocKind::Update,
                seq: seq + 1,
                base_seq: Some(seq),
                issued_at_ms: now_ms(),
                add: vec![id],
                remove: vec![],
            },
        )
    };
    let (st, v) = post(
        &c,
        &format!("{base}/v1/admin/register"),
        "reg-update",
        serde_json::to_value(&update).unwrap(),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (_, m) = get(&c, &format!("{base}/v1/markets?limit=60")).await;
    let selections: Vec<(String, String)> = m["markets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|mk| {
            mk["selections"].as_array().unwrap().iter().map(|s| {
                (
                    s["selection_id"].as_str().unwrap().to_string(),
                    s["price"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    assert!(selections.len() > 50);
    node.kill9();

    let acked: Arc<Mutex<Vec<Acked>>> = Arc::new(Mutex::new(Vec::new()));
    let refused: Arc<Mutex<Vec<Refused>>> = Arc::new(Mutex::new(Vec::new()));
    let players = Arc::new(players);
    let selections = Arc::new(selections);
    for cycle in 0..cycles {
        let mut node = Proc::start(
            &format!("edge-{cycle}"),
            &edge,
            &["run", "--config", &cfg_s],
            dir.path(),
        );
        wait_healthy(&base, &mut node, Duration::from_secs(60)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for t in 0..6u64 {
            let (c, base, stop, acked, refused, players, selections) = (
                c.clone(),
                base.clone(),
                stop.clone(),
                acked.clone(),
                refused.clone(),
                players.clone(),
                selections.clone(),
            );
            let mut s = seed.wrapping_add(t * 7919 + cycle as u64 * 104_729) | 1;
            tasks.push(tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let idem = format!("c{cycle}-t{t}-n{n}");
                    let p = &players[(xorshift(&mut s) % players.len() as u64) as usize];
                    let (sel, price) = &selections[(xorshift(&mut s) % selections.len() as u64) as usize];
                    let body = serde_json::json!({"player_id": p, "stake_minor": 100 + (xorshift(&mut s) % 900) as i64, "currency": "GBP", "legs": [{"selection_id": sel, "price": price}]});
                    let r = c.post(format!("{base}/v1/bets")).header("Idempotency-Key", &idem).json(&body).send().await;
                    match r {
                        Ok(r) if r.status().as_u16() == 201 => {
                            let v: serde_json::Value = r.json().await.unwrap_or_default();
                            if let Some(id) = v["bet_id"].as_str() {
                                acked.lock().unwrap().push(Acked { idem, body, bet_id: id.to_string() });
                            }
                        }
                        Ok(r) => {
                            let st = r.status().as_u16();
                            let v: serde_json::Value = r.json().await.unwrap_or_default();
                            let code = v["error"]["code"].as_str().unwrap_or("").to_string();
                            // Only gate refusals are expected (logged decisions).
                            let gate = ["STAKE_LIMIT", "LOSS_LIMIT", "AML_REFUSED", "REGISTER_EXCLUDED"];
                            if st == 422 && gate.contains(&code.as_str()) {
                                refused.lock().unwrap().push(Refused { idem, body, code });
                            } else if st != 503 {
                                panic!("unexpected {st}: {v}");
                            }
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }));
        }
        let delay = 20 + xorshift(&mut seed) % 400;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("bet task panicked");
        }
    }

    let mut node = Proc::start(
        "edge-final",
        &edge,
        &["run", "--config", &cfg_s],
        dir.path(),
    );
    wait_healthy(&base, &mut node, Duration::from_secs(60)).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "{} acknowledged bets over {cycles} kill -9 cycles",
        acked.len()
    );
    assert!(
        acked.len() > cycles,
        "too few bets were acknowledged to test anything"
    );

    // Every refusal that was answered was logged: its retry gets the same code.
    let refused = std::mem::take(&mut *refused.lock().unwrap());
    eprintln!("{} refused by the gate", refused.len());
    assert!(
        refused.iter().any(|r| r.code == "REGISTER_EXCLUDED"),
        "the excluded player was never refused"
    );
    // (A sample keeps the runtime in check; which ones is decided by the seed.)
    for r in refused.iter().step_by((refused.len() / 200).max(1)) {
        let (st, b) = post(&c, &format!("{base}/v1/bets"), &r.idem, r.body.clone()).await;
        assert_eq!(
            (st, b["error"]["code"].as_str()),
            (422, Some(r.code.as_str())),
            "retry of refused {}",
            r.idem
        );
    }
    assert!(
        acked
            .iter()
            .all(|a| a.body["player_id"] != excluded.as_str()),
        "an excluded player's bet was accepted"
    );

    // Every acknowledged bet is present, and a retry of its request returns the same bet.
    for a in &acked {
        let (st, b) = get(&c, &format!("{base}/v1/bets/{}", a.bet_id)).await;
        assert_eq!(st, 200, "acknowledged bet {} lost", a.bet_id);
        assert_eq!(b["stake_minor"], a.body["stake_minor"]);
        let (st, b) = post(&c, &format!("{base}/v1/bets"), &a.idem, a.body.clone()).await;
        assert_eq!(st, 201);
        assert_eq!(
            b["bet_id"].as_str(),
            Some(a.bet_id.as_str()),
            "retry of {} returned another bet",
            a.idem
        );
    }

    // Read the whole log: each bet and each idempotency key appears once; balances recomputed
    // from the wallet movements equal what the node reports.
    let mut after = 0u64;
    let mut bets_by_id: HashMap<String, usize> = HashMap::new();
    let mut bets_by_key: HashMap<String, usize> = HashMap::new();
    let mut accepting_decisions: HashMap<String, usize> = HashMap::new();
    let mut balances: HashMap<String, i64> = HashMap::new();
    loop {
        let (_, page) = get(&c, &format!("{base}/v1/log?after={after}&limit=1000")).await;
        let recs = page["records"].as_array().unwrap().clone();
        if recs.is_empty() {
            break;
        }
        for r in &recs {
            after = r["seq"].as_u64().unwrap();
            match r["kind"].as_str().unwrap() {
                "bet_placed" => {
                    *bets_by_id
                        .entry(r["payload"]["bet_id"].as_str().unwrap().into())
                        .or_default() += 1;
                    *bets_by_key
                        .entry(r["payload"]["idem"]["key"].as_str().unwrap().into())
                        .or_default() += 1;
                }
                "compliance_decision" => {
                    assert!(
                        r["payload"]["rules_version"]
                            .as_str()
                            .is_some_and(|v| !v.is_empty())
                    );
                    if let Some(b) = r["payload"]["bet_id"].as_str() {
                        assert_eq!(r["payload"]["accepted"], true);
                        *accepting_decisions.entry(b.into()).or_default() += 1;
                    }
                }
                "wallet_movement" => {
                    for p in r["payload"]["postings"].as_array().unwrap() {
                        let amt = p["amount_minor"].as_i64().unwrap();
                        *balances
                            .entry(p["from"].as_str().unwrap().into())
                            .or_default() -= amt;
                        *balances
                            .entry(p["to"].as_str().unwrap().into())
                            .or_default() += amt;
                    }
                }
                _ => {}
            }
        }
    }
    assert!(
        bets_by_id.values().all(|&n| n == 1),
        "a bet id appears twice in the log"
    );
    assert!(
        bets_by_key.values().all(|&n| n == 1),
        "an idempotency key placed two bets"
    );
    for a in &acked {
        assert_eq!(bets_by_id.get(&a.bet_id), Some(&1));
    }
    for b in bets_by_id.keys() {
        assert_eq!(
            accepting_decisions.get(b),
            Some(&1),
            "bet {b} has no single accepting decision"
        );
    }
    assert_eq!(
        balances.values().sum::<i64>(),
        0,
        "log movements do not sum to zero"
    );
    for p in players.iter() {
        let (_, w) = get(&c, &format!("{base}/v1/players/{p}/wallet")).await;
        assert_eq!(
            w["cash_minor"].as_i64(),
            Some(*balances.get(&format!("player:{p}:cash")).unwrap_or(&0)),
            "cash of {p}"
        );
        assert_eq!(
            w["stakes_held_minor"].as_i64(),
            Some(*balances.get(&format!("player:{p}:stakes")).unwrap_or(&0)),
            "stakes of {p}"
        );
    }

    // The chain verifies end to end with the node's key.
    let seg = c
        .get(format!("{base}/v1/log/segment"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (header, frames) = decode_segment(&seg).expect("segment decodes");
    let key =
        NodeKey::from_hex(&std::fs::read_to_string(dir.path().join("gb-1.key")).unwrap()).unwrap();
    let report = verify_frames(&header.log_id, &key.public(), ChainHead::EMPTY, frames)
        .expect("chain verifies");
    assert_eq!(report.head.seq.0, after);
    node.terminate();
}
