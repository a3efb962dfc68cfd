//! Bad input against the real `edge-node` binary: every malformed or conflicting request gets a
//! 4xx with a stable code, and changes nothing (the durable log head and the wallet are the
//! same before and after).

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_code_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    let cfg = write_edge_config(dir.path(), "gb-1", &http, None);
    let mut node = run_edge(&cfg, dir.path(), &base).await;
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

/// With API clients configured, every protected endpoint needs a bearer token whose client
/// holds that endpoint's role: no token or an unknown one is 401 `UNAUTHENTICATED`, a client
/// without the role is 403 `FORBIDDEN`, and a refused call changes nothing. Prices, the rules
/// and `/healthz` stay public.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_need_a_token_whose_client_holds_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    let cfg = write_edge_config(dir.path(), "gb-1", &http, None);
    let client_toml = |name: &str, token: &str, roles: &str| {
        let hash = hex::encode(outpost_core::log::sha256(token.as_bytes()));
        format!(
            "\n[[api.clients]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\nroles = {roles}\n"
        )
    };
    append_config(
        &cfg,
        &client_toml("platform", "tok-platform", r#"["player_channel"]"#),
    );
    append_config(&cfg, &client_toml("psp", "tok-psp", r#"["payments"]"#));
    append_config(
        &cfg,
        &client_toml("office", "tok-office", r#"["back_office"]"#),
    );
    append_config(&cfg, &client_toml("regulator", "tok-audit", r#"["audit"]"#));
    let _node = run_edge(&cfg, dir.path(), &base).await;
    let c = client();
    let call = |method: &'static str,
                path: String,
                token: Option<&'static str>,
                idem: &str,
                body: serde_json::Value| {
        let (c, url, idem) = (c.clone(), format!("{base}{path}"), idem.to_string());
        async move {
            let mut r = match method {
                "GET" => c.get(url),
                _ => c.post(url).header("Idempotency-Key", idem).json(&body),
            };
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.expect("request");
            let st = r.status().as_u16();
            (st, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let code = |v: &serde_json::Value| v["error"]["code"].as_str().unwrap_or("").to_string();
    let register = json!({"jurisdiction":"GB","name":"Auth Test","date_of_birth":"1980-01-01"});

    // Public without a token.
    for path in ["/healthz", "/v1/markets", "/v1/odds", "/v1/rules"] {
        let (st, v) = call("GET", path.into(), None, "", json!({})).await;
        assert_eq!(st, 200, "{path}: {v}");
    }
    let head = || async {
        call("GET", "/healthz".into(), None, "", json!({})).await.1["durable_seq"]
            .as_u64()
            .unwrap()
    };
    let head0 = head().await;
    // No token, an unknown token, the wrong role: refused, nothing written.
    for (token, st_want, code_want) in [
        (None, 401, "UNAUTHENTICATED"),
        (Some("tok-wrong"), 401, "UNAUTHENTICATED"),
        (Some("tok-psp"), 403, "FORBIDDEN"),
    ] {
        let (st, v) = call("POST", "/v1/players".into(), token, "reg", register.clone()).await;
        assert_eq!(
            (st, code(&v)),
            (st_want, code_want.to_string()),
            "{token:?}: {v}"
        );
    }
    assert_eq!(head().await, head0, "a refused call wrote to the log");

    let (st, p) = call(
        "POST",
        "/v1/players".into(),
        Some("tok-platform"),
        "reg",
        register.clone(),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["player_id"].as_str().unwrap().to_string();
    let kyc = format!("/v1/players/{pid}/kyc");
    let deposit = format!("/v1/players/{pid}/deposits");
    let dep = json!({"amount_minor": 5000, "currency": "GBP", "provider_ref": "psp-auth-1"});
    // The platform cannot verify identity or move money.
    let (st, v) = call("POST", kyc.clone(), Some("tok-platform"), "kyc", json!({})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN".into()), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("back_office"),
        "{v}"
    );
    let (st, v) = call(
        "POST",
        deposit.clone(),
        Some("tok-platform"),
        "dep",
        dep.clone(),
    )
    .await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN".into()), "{v}");
    let (st, v) = call("POST", kyc, Some("tok-office"), "kyc", json!({})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = call("POST", deposit, Some("tok-psp"), "dep", dep).await;
    assert_eq!(st, 201, "{v}");
    let (st, w) = call(
        "GET",
        format!("/v1/players/{pid}/wallet"),
        Some("tok-platform"),
        "",
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{w}");
    // The log: the auditor reads it, the platform may not.
    let (st, v) = call("GET", "/v1/log".into(), Some("tok-platform"), "", json!({})).await;
    assert_eq!((st, code(&v)), (403, "FORBIDDEN".into()), "{v}");
    let (st, v) = call(
        "GET",
        format!("/v1/log?after={head0}"),
        Some("tok-audit"),
        "",
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let kinds: Vec<&str> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"kyc_verified"), "{kinds:?}");
}
