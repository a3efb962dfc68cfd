//! Benchmark: feed message arrival → update received by N stream clients, on loopback.
//!
//! Starts a real edge node in-process (temp data dir, sled log with fsync), connects N
//! Server-Sent-Events clients to `/v1/odds/stream`, then pushes UOF `odds_change` messages
//! (1X2, 3 selections each) to `POST /v1/feed/uof` at a fixed rate, spread over 50 matches,
//! each message moving the prices so every message is one logged change. For every
//! (message, client) pair it measures the time from just before the POST is sent to the
//! client reading the change, and prints percentiles.
//!
//! Run: `cargo run --release -p edge-node --example odds_stream_bench -- [clients] [updates/s] [seconds]`
//! (defaults 200 clients, 2000 selection updates/s, 10 s).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SELECTIONS_PER_MESSAGE: u64 = 3;
const EVENTS: u64 = 50;

fn odds_change(event: u64, ts: i64, flip: bool) -> String {
    let (h, d, a) = if flip {
        ("2.10", "3.40", "3.60")
    } else {
        ("2.60", "3.20", "2.80")
    };
    format!(
        r#"<odds_change product="1" event_id="sr:match:{event}" timestamp="{ts}"><odds><market id="1" status="1"><outcome id="1" odds="{h}" active="1"/><outcome id="2" odds="{d}" active="1"/><outcome id="3" odds="{a}" active="1"/></market></odds></odds_change>"#
    )
}

/// One stream client: reads its connection and records (sequence, arrival time) for every
/// change. Only what the measurement needs is parsed: the `id:` line of each SSE frame
/// (found with `memchr`), so the 200 clients cost little of the machine the node runs on.
async fn client(
    addr: String,
    ready: Arc<tokio::sync::Barrier>,
    stop_seq: Arc<std::sync::atomic::AtomicU64>,
) -> Vec<(u64, Instant)> {
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.set_nodelay(true).ok();
    s.write_all(b"GET /v1/odds/stream HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut have = 0; // bytes of an incomplete line kept at the start of `buf`
    let mut got = Vec::with_capacity(8192);
    let mut ready_once = Some(ready);
    let finder = memchr::memmem::Finder::new(b"\nid: ");
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = s.read(&mut buf[have..]).await.unwrap_or(0);
        if n == 0 {
            return got;
        }
        let now = Instant::now();
        let end = have + n;
        // Scan from one byte before the new data so a "\nid: " split across reads is found.
        let mut at = have.saturating_sub(5);
        let mut done_to = 0;
        while let Some(p) = finder.find(&buf[at..end]) {
            let start = at + p + 5;
            let Some(nl) = memchr::memchr(b'\n', &buf[start..end]) else {
                break; // the id line is incomplete: keep it for the next read
            };
            let seq = std::str::from_utf8(&buf[start..start + nl])
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok());
            at = start + nl;
            done_to = at;
            if let Some(seq) = seq {
                if let Some(r) = ready_once.take() {
                    r.wait().await; // the snapshot's id: connected and subscribed
                } else {
                    got.push((seq, now));
                }
                let stop = stop_seq.load(std::sync::atomic::Ordering::Relaxed);
                if stop != 0 && seq >= stop {
                    return got;
                }
            }
        }
        // Keep the tail after the last complete id line (at most a partial frame).
        let keep_from = done_to.max(end.saturating_sub(4096)).min(end);
        buf.copy_within(keep_from..end, 0);
        have = end - keep_from;
    }
}

/// CPU time this process has used so far (user + system, all threads), from `/proc/self/stat`
/// (clock ticks of 10 ms); `None` off Linux. The load-independent cost of the run: node,
/// clients and posting all live in this process.
fn process_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let rate: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let secs: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();

    let dir = tempfile::tempdir()?;
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.to_string()
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg_path = dir.path().join("edge.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "node_id = \"bench-1\"\njurisdiction = \"GB\"\ndata_dir = \"{}\"\nhttp_listen = \"{addr}\"\nkey_file = \"{}\"\nrules_file = \"{}\"\n[odds]\nstream_buffer = 1048576\n",
            dir.path().join("data").display(),
            dir.path().join("k").display(),
            root.join("deploy/jurisdictions/gb.toml").display()
        ),
    )?;
    let cfg = edge_node::config::EdgeConfig::load(&cfg_path)?;
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(edge_node::node::run(cfg, stop_rx));
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    http.post(format!("{base}/v1/feed/uof"))
        .body(r#"<snapshot_complete product="1" timestamp="1" request_id="1"/>"#)
        .send()
        .await?
        .error_for_status()?;

    let ready = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let stop_seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
    // All clients share one thread with its own single-threaded runtime: one epoll loop
    // serves every connection, and the node's runtime threads are left to the node.
    let client_thread = {
        let (addr, ready, stop_seq) = (addr.clone(), ready.clone(), stop_seq.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime");
            rt.block_on(async move {
                let handles: Vec<_> = (0..clients)
                    .map(|_| tokio::spawn(client(addr.clone(), ready.clone(), stop_seq.clone())))
                    .collect();
                let mut all = Vec::with_capacity(clients);
                for h in handles {
                    all.push(h.await.expect("client task"));
                }
                all
            })
        })
    };
    ready.wait().await;

    let messages = rate * secs / SELECTIONS_PER_MESSAGE;
    let interval = Duration::from_secs_f64(SELECTIONS_PER_MESSAGE as f64 / rate as f64);
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let cpu0 = process_cpu_secs();
    let t0 = Instant::now();
    let mut posts = Vec::new();
    for i in 0..messages {
        let due = t0 + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let body = odds_change(1000 + i % EVENTS, 1_000 + i as i64, (i / EVENTS) % 2 == 0);
        let (http, base, sent) = (http.clone(), base.clone(), sent.clone());
        posts.push(tokio::spawn(async move {
            let at = Instant::now();
            let r = http
                .post(format!("{base}/v1/feed/uof"))
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status();
            let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            let rtt = at.elapsed();
            let seq = v["first_seq"]
                .as_u64()
                .ok_or_else(|| format!("{status}: {}", v["error"]["code"]))?;
            sent.lock().unwrap().insert(seq, at);
            Ok::<_, String>((seq, rtt))
        }));
    }
    let mut last = 0;
    let mut failed: HashMap<String, usize> = HashMap::new();
    let mut rtts = Vec::new();
    for p in posts {
        match p.await? {
            Ok((s, rtt)) => {
                last = last.max(s);
                rtts.push(rtt);
            }
            Err(e) => *failed.entry(e).or_default() += 1,
        }
    }
    rtts.sort();
    let send_elapsed = t0.elapsed();
    stop_seq.store(last, std::sync::atomic::Ordering::Relaxed);
    let mut lat = Vec::new();
    let sent = sent.lock().unwrap().clone();
    let mut received = 0usize;
    let all = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || client_thread.join()),
    )
    .await??
    .map_err(|_| anyhow::anyhow!("a stream client panicked"))?;
    for got in all {
        received += got.len();
        for (seq, at) in got {
            if let Some(s) = sent.get(&seq) {
                lat.push(at.saturating_duration_since(*s));
            }
        }
    }
    lat.sort();
    let cpu = match (cpu0, process_cpu_secs()) {
        (Some(a), Some(b)) if received > 0 => format!(
            "{:.2} s CPU for the run = {:.1} µs per delivered update (node, clients and posting)",
            b - a,
            (b - a) * 1e6 / received as f64
        ),
        _ => "process CPU time not available".into(),
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at the end (1/5/15 min): {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "odds stream: {clients} clients, {messages} odds_change messages ({} selection updates) in {:.2?} \
         (target {rate} selection updates/s), failed posts {failed:?}",
        messages * SELECTIONS_PER_MESSAGE,
        send_elapsed
    );
    println!(
        "POST /v1/feed/uof round trip (parse, price, log durably, publish) p50 {:.3?} p99 {:.3?}",
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99)
    );
    println!(
        "deliveries {received} (expected {}), arrival→client latency p50 {:.3?} p90 {:.3?} p99 {:.3?} p99.9 {:.3?} max {:.3?}",
        messages as usize * clients,
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat.last().copied().unwrap_or_default()
    );
    println!("{cpu}");
    Ok(())
}
