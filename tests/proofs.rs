//! Witnessed checkpoints and proofs end to end, with the real binaries on loopback: the edge
//! signs tree heads, the hub verifies and cosigns them over QUIC, the edge stores the
//! cosignatures durably (they survive a restart), and a bet's inclusion proof and a consistency
//! proof between two heads verify with `outpost proof` and with the independent Python verifier
//! `tests/verify_proof.py` (cryptography only) — and fail when tampered with.
//!
//! Python: `$OUTPOST_PYTHON` if set (scripts/test.sh sets it), else `python3`.

mod common;

use common::*;
use outpost_core::log::NodeKey;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn python() -> PathBuf {
    std::env::var_os("OUTPOST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn public_of(seed_file: &Path) -> String {
    NodeKey::from_hex(&std::fs::read_to_string(seed_file).unwrap())
        .unwrap()
        .public()
        .to_hex()
}

/// Poll `url` until `ok(json)`.
async fn wait_for(
    c: &reqwest::Client,
    url: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, v) = get(c, url).await;
        if st == 200 && ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {st} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn python_verify(kind: &str, proof: &Value, dir: &Path, keys: &[&str]) -> (bool, String) {
    let file = dir.join(format!("{kind}-{}.json", std::process::id()));
    std::fs::write(&file, proof.to_string()).unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/verify_proof.py"))
        .arg(kind)
        .arg(&file)
        .args(["--node-id", "gb-1"])
        .args(keys);
    let out = cmd.output().expect("run python");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "verifier error: {text}"
    );
    (out.status.success(), text)
}

fn outpost_proof(args: &[&str]) -> (bool, String) {
    let out = Command::new(outpost_bin())
        .arg("proof")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn tamper_first_hash(v: &Value, field: &str) -> Value {
    let mut v = v.clone();
    let first = v[field][0].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if &first[..1] == "0" { "1" } else { "0" },
        &first[1..]
    );
    v[field][0] = Value::String(flipped);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heads_are_cosigned_and_proofs_verify_independently() {
    let dir = tempfile::tempdir().unwrap();
    let stack = init_stack(dir.path(), None, None);
    let node_key = public_of(&dir.path().join("gb-1.key"));
    let hub_key = public_of(&dir.path().join("hub.key"));
    // The hub runs until the end of the test.
    let (_hub, mut edge) = stack.start(dir.path()).await;
    let (e, h) = stack.urls();
    let c = client();

    // The first cosigned head (over genesis and the fixture markets).
    let first = wait_for(&c, &format!("{e}/v1/checkpoint"), "a cosigned head", |v| {
        !v["latest_cosigned"].is_null()
    })
    .await;
    let m = first["latest_cosigned"]["size"].as_u64().unwrap();
    // Genesis and the season's fixture markets: more than one 1024-record block, so proofs also
    // exercise the edge reading forgotten tree levels back from its log.
    assert!(m > 1024, "{first}");
    assert_eq!(first["public_key"], node_key.as_str());
    let hub_cp = wait_for(
        &c,
        &format!("{h}/v1/nodes/gb-1/checkpoint"),
        "the hub's copy",
        |v| v["size"].as_u64() >= Some(m),
    )
    .await;
    assert_eq!(hub_cp["witness"], "outpost-hub/hub-1");

    // A bet.
    let pid = ready_player(&c, &e, "pr-", "Ada Lovelace", 5_000).await;
    let (st, bet) = post(&c, &format!("{e}/v1/bets"), "pr-bet", json!({"player_id": pid, "stake_minor": 500, "currency": "GBP", "legs": [{"selection_id": "E0-20230811-burnley-man-city:1x2:away", "price": "1.33"}]})).await;
    assert_eq!(st, 201, "{bet}");
    let bet_id = bet["bet_id"].as_str().unwrap().to_string();

    // Its inclusion proof against a head that covers it and that the hub has cosigned.
    let incl = wait_for(
        &c,
        &format!("{e}/v1/proofs/inclusion?bet_id={bet_id}"),
        "a cosigned head covering the bet",
        |v| {
            v["checkpoint"]["cosignatures"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        },
    )
    .await;
    let n = incl["tree_size"].as_u64().unwrap();
    assert!(n > m);
    let keys = [
        "--node-key",
        node_key.as_str(),
        "--hub-key",
        hub_key.as_str(),
    ];
    let (ok, out) = outpost_proof(
        &[
            &[
                "inclusion",
                "--node",
                &e,
                "--bet-id",
                &bet_id,
                "--size",
                &n.to_string(),
            ],
            &keys[..],
        ]
        .concat(),
    );
    assert!(
        ok && out.contains("OK: record") && out.contains("cosigned by witness outpost-hub/hub-1"),
        "{out}"
    );
    let (ok, out) = python_verify("inclusion", &incl, dir.path(), &keys);
    assert!(ok && out.starts_with("OK: record"), "{out}");
    // Tampered proof, wrong hub key, wrong node key: all refused.
    let (ok, out) = python_verify(
        "inclusion",
        &tamper_first_hash(&incl, "proof_hex"),
        dir.path(),
        &keys,
    );
    assert!(!ok, "{out}");
    let other = NodeKey::from_seed([3; 32]).public().to_hex();
    let (ok, out) = python_verify(
        "inclusion",
        &incl,
        dir.path(),
        &["--node-key", &node_key, "--hub-key", &other],
    );
    assert!(!ok && out.contains("no cosignature by the hub"), "{out}");
    let (ok, _) = python_verify("inclusion", &incl, dir.path(), &["--node-key", &other]);
    assert!(!ok);
    let (ok, out) = outpost_proof(&[
        "inclusion",
        "--node",
        &e,
        "--seq",
        "1",
        "--node-key",
        &other,
    ]);
    assert!(!ok, "{out}");

    // Consistency between the two heads.
    let cons = get(&c, &format!("{e}/v1/proofs/consistency?from={m}&to={n}"))
        .await
        .1;
    let (ok, out) = outpost_proof(
        &[
            &[
                "consistency",
                "--node",
                &e,
                "--from",
                &m.to_string(),
                "--to",
                &n.to_string(),
            ],
            &keys[..],
        ]
        .concat(),
    );
    assert!(
        ok && out.contains(&format!("extends the log of {m} records")),
        "{out}"
    );
    let (ok, out) = python_verify("consistency", &cons, dir.path(), &keys);
    assert!(ok, "{out}");
    if cons["proof_hex"].as_array().is_some_and(|a| !a.is_empty()) {
        let (ok, out) = python_verify(
            "consistency",
            &tamper_first_hash(&cons, "proof_hex"),
            dir.path(),
            &keys,
        );
        assert!(!ok, "{out}");
    }
    let mut wrong_root = cons.clone();
    wrong_root["from_root_hex"] = Value::String("00".repeat(32));
    let (ok, _) = python_verify("consistency", &wrong_root, dir.path(), &keys);
    assert!(!ok);

    // Bad requests are coded 4xx.
    assert_eq!(
        get(&c, &format!("{e}/v1/proofs/inclusion?seq=0")).await.0,
        400
    );
    assert_eq!(
        get(&c, &format!("{e}/v1/proofs/inclusion?seq=1&bet_id=x"))
            .await
            .0,
        400
    );
    assert_eq!(
        get(&c, &format!("{e}/v1/proofs/inclusion?bet_id=nope"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&c, &format!("{e}/v1/proofs/consistency?from={n}&to={m}"))
            .await
            .0,
        400
    );
    assert_eq!(
        get(
            &c,
            &format!("{e}/v1/proofs/consistency?from=1&to=999999999")
        )
        .await
        .0,
        409
    );
    assert_eq!(
        get(&c, &format!("{e}/v1/proofs/consistency?from=x"))
            .await
            .0,
        400
    );

    // Heads and cosignatures are durable: after a kill -9 the cosigned head is still served.
    edge.kill9();
    let mut edge = start_edge(dir.path());
    wait_healthy(&e, &mut edge, Duration::from_secs(60)).await;
    let (st, after) = get(&c, &format!("{e}/v1/checkpoint")).await;
    assert_eq!(st, 200, "{after}");
    assert!(
        after["latest_cosigned"]["size"].as_u64() >= Some(n),
        "{after}"
    );
    let (st, again) = get(
        &c,
        &format!("{e}/v1/proofs/inclusion?bet_id={bet_id}&size={n}"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(again["root_hex"], incl["root_hex"]);
    let (ok, out) = python_verify("inclusion", &again, dir.path(), &keys);
    assert!(ok, "{out}");
    let nodes = get(&c, &format!("{h}/v1/nodes")).await.1;
    assert!(nodes["nodes"][0]["quarantined"].is_null(), "{nodes}");
    assert!(
        get(&c, &format!("{h}/v1/node-alerts")).await.1["alerts"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
