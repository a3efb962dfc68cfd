//! The gate against the real `edge-node` binary: a limit change above the jurisdiction's cap is
//! refused and changes nothing; a rules file that does not validate is refused with its file,
//! line and field while the old rules stay in force, and a good one is activated (and recorded
//! in the log); a register copy older than its bound suspends all betting and raises the alarm,
//! and a fresh signed snapshot resumes it; a player's self-exclusion over HTTP is idempotent
//! and refuses their next bet.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_hot_reload_and_stale_register() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    // GB rules with a £1,000 monthly deposit cap (as DE has), in a file we can rewrite.
    let gb = std::fs::read_to_string(repo_root().join("deploy/jurisdictions/gb.toml")).unwrap();
    let capped = gb.replace(
        "[limits]\n",
        "[limits]\ndeposit_cap = { month_minor = 100_000 }\n",
    );
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, &capped).unwrap();
    let cfg = write_edge_config(dir.path(), "gb-1", &http, None);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &repo_root()
            .join("deploy/jurisdictions/gb.toml")
            .display()
            .to_string(),
        &rules.display().to_string(),
    );
    std::fs::write(&cfg, text).unwrap();
    // The register copy the node starts with goes stale (GB bound: 24 h) 30 s after start.
    let issued = now_ms() - 24 * 3_600_000 + 30_000;
    write_register_doc(
        &dir.path().join("gb-1-register"),
        "0-snapshot.json",
        &register_snapshot(1, issued, vec![]),
    );
    let mut node = run_edge(&cfg, dir.path(), &base).await;
    let c = client();
    let pid = ready_player(&c, &base, "", "Gate Tester", 0).await;

    // The cap is the limit in force when none is set; above it is refused, nothing changes.
    let (_, l0) = get(&c, &format!("{base}/v1/players/{pid}/limits")).await;
    let month = |v: &serde_json::Value| {
        v["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["kind"] == "deposit" && l["window"] == "month")
            .unwrap()
            .clone()
    };
    assert_eq!(month(&l0)["amount_minor"], 100_000);
    assert_eq!(month(&l0)["source"], "cap");
    let head0 = get(&c, &format!("{base}/healthz")).await.1["durable_seq"]
        .as_u64()
        .unwrap();
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/limits"),
        "cap",
        json!({"kind":"deposit","window":"month","amount_minor": 100_001}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("LIMIT_ABOVE_CAP")),
        "{v}"
    );
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/limits"),
        "cap2",
        json!({"kind":"deposit","window":"month","amount_minor": null}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("LIMIT_ABOVE_CAP")),
        "{v}"
    );
    assert_eq!(
        get(&c, &format!("{base}/healthz")).await.1["durable_seq"]
            .as_u64()
            .unwrap(),
        head0
    );
    assert_eq!(
        get(&c, &format!("{base}/v1/players/{pid}/limits")).await.1,
        l0
    );
    // A deposit over the cap is refused by the gate (and logged); under it goes through.
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/deposits"),
        "d1",
        json!({"amount_minor": 100_001, "currency":"GBP", "provider_ref":"psp-1"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("DEPOSIT_LIMIT")),
        "{v}"
    );
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/deposits"),
        "d2",
        json!({"amount_minor": 50_000, "currency":"GBP", "provider_ref":"psp-2"}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    // Lowering applies at once; raising waits 24 h.
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/limits"),
        "low",
        json!({"kind":"deposit","window":"month","amount_minor": 60_000}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(month(&v)["amount_minor"], 60_000);
    let (st, v) = post(
        &c,
        &format!("{base}/v1/players/{pid}/limits"),
        "high",
        json!({"kind":"deposit","window":"month","amount_minor": 90_000}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(month(&v)["amount_minor"], 60_000);
    assert_eq!(month(&v)["pending"]["amount_minor"], 90_000);

    // Hot reload: a bad file is refused naming file, line and field; old rules stay.
    let v0 = get(&c, &format!("{base}/v1/rules")).await.1["rules_version"].clone();
    let bad = capped.replace("min_age_years = 18", "min_age_years = 12");
    std::fs::write(&rules, &bad).unwrap();
    let line = bad
        .lines()
        .position(|l| l.starts_with("min_age_years"))
        .unwrap()
        + 1;
    let err = wait_for(&c, &base, |h| {
        h["compliance"]["rules_reload_error"]
            .as_str()
            .map(String::from)
    })
    .await;
    assert!(
        err.contains(&format!("rules.toml:{line}")) && err.contains("min_age_years"),
        "{err}"
    );
    assert_eq!(
        get(&c, &format!("{base}/v1/rules")).await.1["rules_version"],
        v0
    );
    // A good new version is activated and recorded.
    std::fs::write(
        &rules,
        capped.replace(
            "rules_version = \"gb-2026.11-2\"",
            "rules_version = \"gb-test-3\"",
        ),
    )
    .unwrap();
    wait_for(&c, &base, |h| {
        (h["compliance"]["rules_version"] == "gb-test-3").then_some(())
    })
    .await;
    let seq = get(&c, &format!("{base}/healthz")).await.1["durable_seq"]
        .as_u64()
        .unwrap();
    let (_, page) = get(&c, &format!("{base}/v1/log?after={}&limit=1000", seq - 5)).await;
    assert!(page["records"].as_array().unwrap().iter().any(|r| r["kind"] == "rules_activated" && r["payload"]["rules_version"] == "gb-test-3"));

    // A register copy older than its bound (GB: 24 h) suspends betting, with the alarm up.
    let sel = "E0-20230811-burnley-man-city:1x2:away";
    let bet = json!({"player_id": pid, "stake_minor": 100, "currency": "GBP", "legs": [{"selection_id": sel, "price": "1.33"}]});
    let (st, v) = post(&c, &format!("{base}/v1/bets"), "b1", bet.clone()).await;
    assert_eq!(st, 201, "{v}");
    // An older document cannot roll the copy back.
    let old = register_snapshot(5, issued - 1, vec![]);
    let (st, v) = post(
        &c,
        &format!("{base}/v1/admin/register"),
        "r",
        serde_json::to_value(&old).unwrap(),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("REGISTER_OUT_OF_ORDER")),
        "{v}"
    );
    wait_for(&c, &base, |h| {
        (h["compliance"]["betting_suspended"] == true).then_some(())
    })
    .await;
    assert_eq!(
        get(&c, &format!("{base}/healthz")).await.1["compliance"]["register"]["state"],
        "stale"
    );
    let (st, v) = post(&c, &format!("{base}/v1/bets"), "b2", bet.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("REGISTER_STALE")),
        "{v}"
    );
    let fresh = register_snapshot(6, now_ms(), vec![]);
    post(
        &c,
        &format!("{base}/v1/admin/register"),
        "r2",
        serde_json::to_value(&fresh).unwrap(),
    )
    .await;
    let (st, v) = post(&c, &format!("{base}/v1/bets"), "b3", bet.clone()).await;
    assert_eq!(st, 201, "{v}");

    // Self-exclusion over HTTP: a body with an unknown field is refused and changes nothing;
    // the request takes effect at once, a retry with its key gets the same answer without a
    // new record, and the next bet is refused.
    let url = format!("{base}/v1/players/{pid}/self-exclusion");
    let durable = |h: serde_json::Value| h["durable_seq"].as_u64().unwrap();
    let head = durable(get(&c, &format!("{base}/healthz")).await.1);
    let (st, v) = post(&c, &url, "se-bad", json!({"until": "forever"})).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("INVALID_BODY")),
        "{v}"
    );
    assert_eq!(durable(get(&c, &format!("{base}/healthz")).await.1), head);
    let (st, first) = post(&c, &url, "se", json!({})).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["self_excluded"], true, "{first}");
    let head = durable(get(&c, &format!("{base}/healthz")).await.1);
    let (st, again) = post(&c, &url, "se", json!({})).await;
    assert_eq!((st, &again), (200, &first));
    assert_eq!(durable(get(&c, &format!("{base}/healthz")).await.1), head);
    let (st, v) = post(&c, &format!("{base}/v1/bets"), "b4", bet).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("SELF_EXCLUDED")),
        "{v}"
    );
    node.terminate();
}

async fn wait_for<T>(
    c: &reqwest::Client,
    base: &str,
    f: impl Fn(&serde_json::Value) -> Option<T>,
) -> T {
    for _ in 0..400 {
        let (_, h) = get(c, &format!("{base}/healthz")).await;
        if let Some(v) = f(&h) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "condition not reached; last health: {}",
        get(c, &format!("{base}/healthz")).await.1
    );
}
