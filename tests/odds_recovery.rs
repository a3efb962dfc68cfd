//! The UOF producer-recovery flow against the real `edge-node` binary. A loopback HTTP server
//! stands in for the provider's recovery API (the provider is outside the project): the node
//! asks it for a recovery of every down producer, with its access token; only the
//! `snapshot_complete` that answers the node's own request brings the producer up; a lost
//! subscription makes the node ask again from the last good `alive`.

mod common;

use common::*;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every request the stand-in received: (request line, x-access-token header).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn recovery_api(listener: tokio::net::TcpListener, seen: Seen) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
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
            let line = head.lines().next().unwrap_or("").to_string();
            let token = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-access-token")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            seen.lock().unwrap().push((line, token));
            let body = "<response response_code=\"ACCEPTED\"><action>Request for PRE recovery</action></response>";
            let resp = format!(
                "HTTP/1.1 202 Accepted\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

/// Wait until the stand-in has received `n` requests; returns the n-th.
async fn nth_request(seen: &Seen, n: usize) -> (String, String) {
    for _ in 0..200 {
        if let Some(r) = seen.lock().unwrap().get(n - 1) {
            return r.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no recovery request #{n} within 20 s: {:?}",
        seen.lock().unwrap()
    );
}

fn request_id(line: &str) -> u64 {
    line.split(['?', '&', ' '])
        .find_map(|kv| kv.strip_prefix("request_id="))
        .expect("request_id parameter")
        .parse()
        .unwrap()
}

async fn push(c: &reqwest::Client, base: &str, xml: String) -> (u16, Value) {
    let r = c
        .post(format!("{base}/v1/feed/uof"))
        .body(xml)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn producer_up(c: &reqwest::Client, base: &str) -> bool {
    get(c, &format!("{base}/v1/feed/stats")).await.1["producers"]["uof:1"]
        .as_bool()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_drives_uof_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let server = tokio::spawn(recovery_api(listener, seen.clone()));
    let token = dir.path().join("uof-token");
    std::fs::write(&token, "test-token-123\n").unwrap();
    let http = free_addr();
    let base = format!("http://{http}");
    let cfg = write_edge_config(
        dir.path(),
        "gb-rec",
        &http,
        Some(&format!(
            "\n[odds]\nuof_products = [1]\n\n[odds.uof_api]\nbase_url = \"http://{api}\"\naccess_token_file = \"{}\"\nnode_id = 7\n",
            token.display()
        )),
    );
    let mut node = run_edge(&cfg, dir.path(), &base).await;
    let c = client();

    // At start the producer is down: a full recovery is requested, with the token.
    let (line, tok) = nth_request(&seen, 1).await;
    assert!(
        line.starts_with("POST /v1/liveodds/recovery/initiate_request?request_id="),
        "{line}"
    );
    assert!(
        !line.contains("after="),
        "first recovery is a full one: {line}"
    );
    assert!(line.contains("&node_id=7"), "{line}");
    assert_eq!(tok, "test-token-123");
    let id = request_id(&line);
    assert!(!producer_up(&c, &base).await);

    // A snapshot_complete for some other request is refused and changes nothing.
    let (st, v) = push(
        &c,
        &base,
        format!(
            r#"<snapshot_complete product="1" timestamp="1000" request_id="{}"/>"#,
            id + 1
        ),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("FEED_UNREQUESTED_RECOVERY")),
        "{v}"
    );
    assert!(!producer_up(&c, &base).await);

    // The answer to the node's own request completes recovery.
    let (st, v) = push(
        &c,
        &base,
        format!(r#"<snapshot_complete product="1" timestamp="1000" request_id="{id}"/>"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(producer_up(&c, &base).await);

    // Alive, then the subscription is lost: the node asks again from the last good alive.
    let now = now_ms();
    let (st, _) = push(
        &c,
        &base,
        format!(r#"<alive product="1" timestamp="{now}" subscribed="1"/>"#),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = push(
        &c,
        &base,
        format!(
            r#"<alive product="1" timestamp="{}" subscribed="0"/>"#,
            now + 10
        ),
    )
    .await;
    assert_eq!(st, 200);
    assert!(!producer_up(&c, &base).await);
    let (line, _) = nth_request(&seen, 2).await;
    assert!(line.contains(&format!("&after={now}")), "{line}");
    assert!(request_id(&line) > id, "{line}");
    let (_, stats) = get(&c, &format!("{base}/v1/feed/stats")).await;
    assert_eq!(stats["recovery_requests"]["sent"], 2, "{stats}");
    assert_eq!(stats["messages"]["unrequested_recovery"], 1, "{stats}");
    node.kill9();
    server.abort();
}
