//! Bad input against the real `edge-node` binary: every malformed or conflicting request gets a
//! 4xx with a stable code, and changes nothing (the durable log head and the wallet are the
//! same before and after).

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    let cfg = write_edge_config(dir.path(), "gb-1", &http, None);
    let mut node = Proc::start(
        "edge",
        &bin("edge-node"),
        &["run", "--config", cfg.to_str().unwrap()],
        dir.path(),
    );
    wait_healthy(&base, &mut node, Duration::from_secs(60)).await;
    let c = client();
    let pid = ready_player(&c, &base, "", "Bad Input", 5000).await;
    let sel = "E0-20230811-burnley-man-city:1x2:away";
    let (st, _) = post(&c, &format!("{base}/v1/bets"), "good", json!({"player_id": pid, "stake_minor": 100, "currency": "GBP", "legs": [{"selection_id": sel, "price": "1.33"}]})).await;
    assert_eq!(st, 201);

    let head = || {
        let (c, base) = (c.clone(), base.clone());
        async move {
            get(&c, &format!("{base}/healthz")).await.1["durable_seq"]
                .as_u64()
                .unwrap()
        }
    };
    let wallet = || {
        let (c, base, pid) = (c.clone(), base.clone(), pid.clone());
        async move { get(&c, &format!("{base}/v1/players/{pid}/wallet")).await.1 }
    };
    let (head0, wallet0) = (head().await, wallet().await);

    let bet = |stake: serde_json::Value, legs: serde_json::Value| json!({"player_id": pid, "stake_minor": stake, "currency": "GBP", "legs": legs});
    let leg = json!([{"selection_id": sel, "price": "1.33"}]);
    let raw_cases: Vec<(&str, &str, u16, &str)> = vec![
        ("/v1/bets", "{not json", 400, "INVALID_JSON"),
        ("/v1/bets", "[1,2,3]", 422, "INVALID_BODY"),
        (
            "/v1/players",
            r#"{"jurisdiction":"GB","name":"X","date_of_birth":"1990-02-30"}"#,
            422,
            "INVALID_BODY",
        ),
        (
            "/v1/players",
            r#"{"jurisdiction":"gb","name":"X","date_of_birth":"1990-01-01"}"#,
            422,
            "INVALID_BODY",
        ),
    ];
    for (path, body, status, code) in raw_cases {
        let r = c
            .post(format!("{base}{path}"))
            .header("Idempotency-Key", "raw")
            .body(body)
            .send()
            .await
            .unwrap();
        let st = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {v}"
        );
    }
    let cases: Vec<(&str, serde_json::Value, u16, &str)> = vec![
        (
            "wrong-type",
            json!({"player_id": pid, "stake_minor": "ten", "currency": "GBP", "legs": leg}),
            422,
            "INVALID_BODY",
        ),
        ("zero", bet(json!(0), leg.clone()), 422, "INVALID_STAKE"),
        (
            "negative",
            bet(json!(-100), leg.clone()),
            422,
            "INVALID_STAKE",
        ),
        ("huge", bet(json!(1e30), leg.clone()), 422, "INVALID_BODY"),
        (
            "float-stake",
            bet(json!(1.5), leg.clone()),
            422,
            "INVALID_BODY",
        ),
        (
            "unknown-selection",
            bet(
                json!(100),
                json!([{"selection_id": "E0-nope:1x2:home", "price": "2.0"}]),
            ),
            422,
            "UNKNOWN_SELECTION",
        ),
        ("no-legs", bet(json!(100), json!([])), 422, "INVALID_LEGS"),
        (
            "bad-price",
            bet(json!(100), json!([{"selection_id": sel, "price": "1.0"}])),
            422,
            "INVALID_BODY",
        ),
        (
            "float-price",
            bet(json!(100), json!([{"selection_id": sel, "price": 1.33}])),
            422,
            "INVALID_BODY",
        ),
        (
            "unknown-field",
            json!({"player_id": pid, "stake_minor": 100, "currency": "GBP", "legs": leg, "bonus": true}),
            422,
            "INVALID_BODY",
        ),
        (
            "unknown-currency",
            json!({"player_id": pid, "stake_minor": 100, "currency": "XBT", "legs": leg}),
            422,
            "INVALID_BODY",
        ),
        (
            "unknown-player",
            json!({"player_id": "gb-1-p999", "stake_minor": 100, "currency": "GBP", "legs": leg}),
            404,
            "PLAYER_NOT_FOUND",
        ),
        // The key "good" was used for another body: refused, not replayed.
        (
            "good",
            bet(json!(200), leg.clone()),
            409,
            "IDEMPOTENCY_KEY_REUSED",
        ),
    ];
    for (idem, body, status, code) in cases {
        let (st, v) = post(&c, &format!("{base}/v1/bets"), idem, body).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{idem}: {v}"
        );
    }
    // Missing idempotency key, bad deposits and withdrawals.
    let r = c
        .post(format!("{base}/v1/bets"))
        .json(&bet(json!(100), leg.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    for (idem, body, code) in [
        (
            "d1",
            json!({"amount_minor": 0, "currency": "GBP", "provider_ref": "x"}),
            "INVALID_AMOUNT",
        ),
        (
            "d2",
            json!({"amount_minor": 100, "currency": "EUR", "provider_ref": "x"}),
            "CURRENCY_MISMATCH",
        ),
        (
            "d3",
            json!({"amount_minor": 100, "currency": "GBP", "provider_ref": ""}),
            "INVALID_PROVIDER_REF",
        ),
    ] {
        let (st, v) = post(&c, &format!("{base}/v1/players/{pid}/deposits"), idem, body).await;
        assert_eq!((st, v["error"]["code"].as_str()), (422, Some(code)), "{v}");
    }
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/withdrawals"),
        "w1",
        json!({"amount_minor": 1_000_000, "currency": "GBP", "provider_ref": "x"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("INSUFFICIENT_FUNDS"))
    );
    let (st, _) = get(&c, &format!("{base}/v1/log?after=abc")).await;
    assert_eq!(st, 400);

    // Gate endpoints: malformed limit changes and time-outs, a reused provider reference.
    let limits0 = get(&c, &format!("{base}/v1/players/{pid}/limits")).await.1;
    let register0 = get(&c, &format!("{base}/v1/admin/register")).await.1;
    for (idem, path, body, status, code) in [
        (
            "l1",
            "limits",
            json!({"kind": "stake", "window": "day", "amount_minor": 0}),
            422,
            "LIMIT_INVALID",
        ),
        (
            "l2",
            "limits",
            json!({"kind": "stake", "window": "fortnight", "amount_minor": 5}),
            422,
            "INVALID_BODY",
        ),
        (
            "l3",
            "limits",
            json!({"kind": "stake", "window": "day", "amount_minor": 5, "extra": 1}),
            422,
            "INVALID_BODY",
        ),
        (
            "l4",
            "limits",
            json!({"kind": "bets", "window": "day", "amount_minor": 5}),
            422,
            "INVALID_BODY",
        ),
        (
            "t1",
            "time-out",
            json!({"hours": 1}),
            422,
            "TIME_OUT_INVALID",
        ),
        (
            "t2",
            "time-out",
            json!({"hours": 24, "until": "forever"}),
            422,
            "INVALID_BODY",
        ),
        ("r1", "reality-check", json!({"x": 1}), 422, "INVALID_BODY"),
        (
            "x1",
            "cross-operator",
            json!({"other_operators_month_minor": 5, "source": "LUGAS"}),
            422,
            "LIMIT_INVALID",
        ),
        (
            "dp",
            "deposits",
            json!({"amount_minor": 100, "currency": "GBP", "provider_ref": "psp-1"}),
            409,
            "DUPLICATE_PROVIDER_REF",
        ),
    ] {
        let (st, v) = post(&c, &format!("{base}/v1/players/{pid}/{path}"), idem, body).await;
        assert_eq!(
            (st, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{idem}: {v}"
        );
    }
    // Register documents that are corrupt, unsigned, signed by someone else or replayed: refused
    // with a code; the cached copy stays as it was (and keeps ageing).
    let good = register_snapshot(2, now_ms(), vec![]);
    let mut unsigned = serde_json::to_value(&good).unwrap();
    unsigned["signature_hex"] = json!("");
    let mut corrupt = serde_json::to_value(&good).unwrap();
    corrupt["payload_b64"] = json!("bm90IGpzb24=");
    let forged = outpost_core::gate::register::sign(
        &outpost_core::log::NodeKey::from_seed([1; 32]),
        &serde_json::from_slice(&base64_decode(good.payload_b64.as_str())).unwrap(),
    );
    let mut extra = serde_json::to_value(&good).unwrap();
    extra["note"] = json!("x");
    for (body, code) in [
        (unsigned, "REGISTER_UNSIGNED"),
        (corrupt, "REGISTER_BAD_SIGNATURE"),
        (
            serde_json::to_value(&forged).unwrap(),
            "REGISTER_BAD_SIGNATURE",
        ),
        (
            serde_json::to_value(register_snapshot(1, now_ms(), vec![])).unwrap(),
            "REGISTER_OUT_OF_ORDER",
        ),
        (extra, "INVALID_BODY"),
        (
            json!({"payload_b64": "!!!", "signature_hex": "00"}),
            "REGISTER_CORRUPT",
        ),
    ] {
        let (st, v) = post(&c, &format!("{base}/v1/admin/register"), "reg-doc", body).await;
        assert_eq!((st, v["error"]["code"].as_str()), (422, Some(code)), "{v}");
    }
    assert_eq!(
        get(&c, &format!("{base}/v1/admin/register")).await.1["seq"],
        register0["seq"]
    );
    let limits1 = get(&c, &format!("{base}/v1/players/{pid}/limits")).await.1;
    assert_eq!(
        limits1["limits"], limits0["limits"],
        "a refused limit change changed limits"
    );

    assert_eq!(head().await, head0, "a refused request wrote to the log");
    assert_eq!(wallet().await, wallet0, "a refused request moved money");
    node.terminate();
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
