//! The cross-operator deposit check (DE: LUGAS) against the real `edge-node` binary. A small
//! HTTP limit system on loopback stands in for the external one (it is the counterparty the
//! node talks to, not part of Outpost): the node asks it before each deposit, logs the figure,
//! and the gate applies the cross-operator cap; an unreachable, failing or lying limit system
//! refuses the deposit and writes nothing; a retried deposit asks nothing and replays.

mod common;

use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the stand-in limit system answers, and how many questions it was asked.
#[derive(Default)]
struct LimitSystem {
    figures: HashMap<String, i64>,
    /// `Some(body)`: answer 200 with this raw body whatever the player (a broken system).
    raw: Option<String>,
    status: u16,
    asked: usize,
}

async fn serve(listener: tokio::net::TcpListener, ls: Arc<Mutex<LimitSystem>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let ls = ls.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = {
                let mut g = ls.lock().unwrap();
                g.asked += 1;
                let player = path
                    .strip_prefix("/v1/players/")
                    .and_then(|p| p.strip_suffix("/deposits-month"))
                    .unwrap_or("");
                match (&g.raw, g.status) {
                    (_, s) if s != 200 => (s, "{}".to_string()),
                    (Some(raw), _) => (200, raw.clone()),
                    (None, _) => match g.figures.get(player) {
                        Some(v) => (
                            200,
                            json!({"player_id": player, "other_operators_month_minor": v})
                                .to_string(),
                        ),
                        None => (404, "{}".to_string()),
                    },
                }
            };
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_ask_the_limit_system_and_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ls_addr = listener.local_addr().unwrap();
    let ls = Arc::new(Mutex::new(LimitSystem {
        status: 200,
        ..Default::default()
    }));
    let server = tokio::spawn(serve(listener, ls.clone()));

    // GB rules with DE's cross-operator cap of €1,000 (100,000 minor) a month.
    let gb = std::fs::read_to_string(repo_root().join("deploy/jurisdictions/gb.toml")).unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        gb.replace(
            "[limits]\n",
            "[limits]\ncross_operator_deposit_cap_month_minor = 100_000\n",
        ),
    )
    .unwrap();
    let cfg = write_edge_config(dir.path(), "xop-1", &http, None);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            &repo_root()
                .join("deploy/jurisdictions/gb.toml")
                .display()
                .to_string(),
            &rules.display().to_string(),
        )
        .replace(
            "\n[register]",
            &format!(
                "\n[cross_operator]\nurl = \"http://{ls_addr}\"\nsource = \"LUGAS-test\"\ntimeout_ms = 1000\n\n[register]"
            ),
        );
    std::fs::write(&cfg, text).unwrap();
    let mut node = run_edge(&cfg, dir.path(), &base).await;
    let c = client();
    let pid = ready_player(&c, &base, "", "Cross Operator", 0).await;
    let deposit = |key: &'static str, amount: i64, pref: &'static str| {
        let c = c.clone();
        let url = format!("{base}/v1/players/{pid}/deposits");
        async move {
            post(
                &c,
                &url,
                key,
                json!({"amount_minor": amount, "currency": "GBP", "provider_ref": pref}),
            )
            .await
        }
    };
    let head = |c: reqwest::Client| {
        let url = format!("{base}/healthz");
        async move { get(&c, &url).await.1["durable_seq"].as_u64().unwrap() }
    };

    // The player is unknown to the limit system (404): refused, nothing written.
    let h0 = head(c.clone()).await;
    let (st, v) = deposit("d0", 5_000, "psp-0").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (503, Some("CROSS_OPERATOR_UNAVAILABLE")),
        "{v}"
    );
    assert_eq!(head(c.clone()).await, h0);

    // €900 deposited elsewhere this month: €50 fits under the cap, then €60 more does not.
    ls.lock().unwrap().figures.insert(pid.clone(), 90_000);
    let (st, v) = deposit("d1", 5_000, "psp-1").await;
    assert_eq!(st, 201, "{v}");
    let movement = v["movement_id"].clone();
    let (st, v) = deposit("d2", 6_000, "psp-2").await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["error"]["code"], "CROSS_OPERATOR_LIMIT", "{v}");
    let check = v["error"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "cross_operator_limit")
        .unwrap()
        .clone();
    assert!(
        check["detail"].as_str().unwrap().contains("90000"),
        "{check}"
    );

    // A retry of the accepted deposit replays it and does not ask again.
    let asked = ls.lock().unwrap().asked;
    let (st, v) = deposit("d1", 5_000, "psp-1").await;
    assert_eq!((st, v["movement_id"].clone()), (201, movement), "{v}");
    assert_eq!(ls.lock().unwrap().asked, asked);

    // Failing, lying and unreachable limit systems: refused, nothing written.
    let h1 = head(c.clone()).await;
    ls.lock().unwrap().status = 500;
    let (st, v) = deposit("d3", 1_000, "psp-3").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (503, Some("CROSS_OPERATOR_UNAVAILABLE"))
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("HTTP 500"),
        "{v}"
    );
    {
        let mut g = ls.lock().unwrap();
        g.status = 200;
        g.raw = Some(
            json!({"player_id": "someone-else", "other_operators_month_minor": 0}).to_string(),
        );
    }
    let (st, v) = deposit("d4", 1_000, "psp-4").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (503, Some("CROSS_OPERATOR_UNAVAILABLE"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("someone-else"),
        "{v}"
    );
    ls.lock().unwrap().raw = Some(format!(
        "{{\"player_id\":\"{pid}\",\"other_operators_month_minor\":-5}}"
    ));
    let (st, v) = deposit("d5", 1_000, "psp-5").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (503, Some("CROSS_OPERATOR_UNAVAILABLE"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{v}"
    );
    ls.lock().unwrap().raw = Some("not json".into());
    let (st, _) = deposit("d6", 1_000, "psp-6").await;
    assert_eq!(st, 503);
    server.abort();
    let _ = server.await;
    let (st, v) = deposit("d7", 1_000, "psp-7").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (503, Some("CROSS_OPERATOR_UNAVAILABLE"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{v}"
    );
    assert_eq!(head(c.clone()).await, h1);

    // The balance holds exactly the one accepted deposit.
    let (_, w) = get(&c, &format!("{base}/v1/players/{pid}/wallet")).await;
    assert_eq!(w["cash_minor"], 5_000, "{w}");
    node.kill9();
}
