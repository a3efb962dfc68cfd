//! Benchmark: feed message arrival → update received by N stream clients, on loopback.
//!
//! Starts a real edge node in-process (temp data dir, sled log with fsync), connects N
//! Server-Sent-Events clients to `/v1/odds/stream`, then pushes UOF `odds_change` messages
//! (1X2, 3 selections each) to `POST /v1/feed/uof` at a fixed rate, spread over 50 matches,
//! each message moving the prices so every message is one logged change. For every
//! (message, client) pair it measures the time from just before the POST is written to an
//! open keep-alive connection (the message arriving at the node) to the client reading the
//! change, and prints percentiles of those, of each message's *last* client (the target), of
//! the POST reply (sent once the change is durable and published) and of the first client;
//! plus the load average and CPU per delivered update, split by thread group.
//!
//! The posting and the clients each run on their own thread (single-threaded runtime,
//! persistent connections, minimal HTTP and SSE handling), so the node's runtime is the
//! node's and the bench's own cost is visible in the split.
//!
//! Run: `cargo run --release -p edge-node --example odds_stream_bench -- [clients] [updates/s] [seconds]`
//! (defaults 200 clients, 2000 selection updates/s, 10 s). A fourth argument `--via-router`
//! makes the clients ask for the stream on a reused connection, which the router's hyper
//! route serves instead of the fan-out thread (the comparison). `RUST_LOG` turns on the
//! node's logs on stderr (`RUST_LOG=warn,commit_timing=debug`: per-step commit timings).

use std::collections::HashMap;
use std::sync::Arc;
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
    via_router: bool,
) -> Vec<(u64, Instant)> {
    let mut s = TcpStream::connect(&addr).await.expect("connect");
    s.set_nodelay(true).ok();
    if via_router {
        // A stream asked for after another request on the same connection is served by the
        // router's route (one hyper connection task per client), not by the fan-out thread.
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        // The reply is one small JSON object.
        while !(head.windows(4).any(|w| w == b"\r\n\r\n") && head.ends_with(b"}")) {
            let n = s.read(&mut b).await.unwrap();
            assert!(n > 0, "healthz reply");
            head.extend_from_slice(&b[..n]);
        }
        s.write_all(b"GET /v1/odds/stream HTTP/1.1\r\nhost: bench\r\n\r\n")
            .await
            .unwrap();
    } else {
        s.write_all(b"GET /v1/odds/stream HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
    }
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

/// CPU seconds per thread group of this process (from `/proc/self/task/*/stat`): the node's
/// runtime, its writer/persister/sled threads, the fan-out thread, the feed poster, the clients.
fn thread_cpu_secs() -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for t in dir.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(a), Some(b)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let name = &s[a + 1..b];
        let main = t.file_name().to_str() == Some(&std::process::id().to_string());
        let group = if main {
            "bench main"
        } else if name.starts_with("sled") {
            "sled I/O"
        } else if name.starts_with("tokio-rt") {
            "node runtime"
        } else {
            name
        };
        let f: Vec<&str> = s[b + 2..].split_whitespace().collect();
        let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *out.entry(group.to_string()).or_insert(0.0) += ticks / 100.0;
    }
    out
}

/// One keep-alive connection to the node that posts UOF messages (minimal HTTP/1.1).
struct Poster {
    sock: TcpStream,
    buf: Vec<u8>,
}

impl Poster {
    async fn connect(addr: &str) -> Poster {
        let sock = TcpStream::connect(addr).await.expect("connect poster");
        sock.set_nodelay(true).ok();
        Poster {
            sock,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Post one message; returns (`first_seq` or the error text, time the reply took).
    async fn post(&mut self, body: &str, at: Instant) -> Result<(u64, Duration), String> {
        let req = format!(
            "POST /v1/feed/uof HTTP/1.1\r\nhost: bench\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.sock
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        let (head_end, len) = loop {
            let n = self
                .sock
                .read(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..p]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or("reply without content-length")?;
                break (p + 4, len);
            }
        };
        while self.buf.len() < head_end + len {
            let n = self
                .sock
                .read(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let rtt = at.elapsed();
        let status = String::from_utf8_lossy(&self.buf[9..12.min(head_end)]).to_string();
        let v: serde_json::Value = serde_json::from_slice(&self.buf[head_end..head_end + len])
            .map_err(|e| e.to_string())?;
        v["first_seq"]
            .as_u64()
            .map(|s| (s, rtt))
            .ok_or_else(|| format!("{status}: {}", v["error"]["code"]))
    }
}

/// CPU seconds of the calling thread so far (a bench thread reads it just before it ends).
fn this_thread_cpu_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/thread-self/stat") else {
        return 0.0;
    };
    let Some(b) = s.rfind(')') else { return 0.0 };
    let f: Vec<&str> = s[b + 2..].split_whitespace().collect();
    (f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        / 100.0
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
    // `--via-router`: clients reach the router's stream route (for comparison).
    let via_router = args.get(4).is_some_and(|a| a == "--via-router");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The node's own logs, only when asked for (e.g. `RUST_LOG=warn,commit_timing=debug` for
    // the per-step commit timings).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }

    let dir = tempfile::tempdir()?;
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.to_string()
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg_path = dir.path().join("edge.toml");
    // ODDS_FANOUT_THREADS=N sets `[odds] stream_fanout_threads` (the node's default otherwise).
    let fanout = std::env::var("ODDS_FANOUT_THREADS")
        .map(|n| format!("stream_fanout_threads = {n}\n"))
        .unwrap_or_default();
    std::fs::write(
        &cfg_path,
        format!(
            "node_id = \"bench-1\"\njurisdiction = \"GB\"\ndata_dir = \"{}\"\nhttp_listen = \"{addr}\"\nkey_file = \"{}\"\nrules_file = \"{}\"\n[odds]\nstream_buffer = 1048576\n{fanout}",
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
        std::thread::Builder::new()
            .name("bench-clients".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("client runtime");
                rt.block_on(async move {
                    let handles: Vec<_> = (0..clients)
                        .map(|_| {
                            tokio::spawn(client(
                                addr.clone(),
                                ready.clone(),
                                stop_seq.clone(),
                                via_router,
                            ))
                        })
                        .collect();
                    let mut all = Vec::with_capacity(clients);
                    for h in handles {
                        all.push(h.await.expect("client task"));
                    }
                    (all, this_thread_cpu_secs())
                })
            })?
    };
    ready.wait().await;

    let messages = rate * secs / SELECTIONS_PER_MESSAGE;
    let interval = Duration::from_secs_f64(SELECTIONS_PER_MESSAGE as f64 / rate as f64);
    let cpu0 = process_cpu_secs();
    let threads0 = thread_cpu_secs();
    let t0 = Instant::now();
    // The poster: its own thread and runtime, a pool of keep-alive connections (one request
    // in flight on each), messages dispatched in order on schedule.
    let poster = {
        let addr = addr.clone();
        std::thread::Builder::new()
            .name("bench-feed".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("poster runtime");
                rt.block_on(async move {
                    const CONNECTIONS: usize = 32;
                    let (pool_tx, mut pool_rx) = tokio::sync::mpsc::channel(CONNECTIONS);
                    for _ in 0..CONNECTIONS {
                        pool_tx.send(Poster::connect(&addr).await).await.ok();
                    }
                    let mut posts = Vec::with_capacity(messages as usize);
                    for i in 0..messages {
                        let due = t0 + interval * i as u32;
                        tokio::time::sleep_until(due.into()).await;
                        let body = odds_change(
                            1000 + i % EVENTS,
                            1_000 + i as i64,
                            (i / EVENTS).is_multiple_of(2),
                        );
                        let mut conn = pool_rx.recv().await.expect("pool");
                        let pool_tx = pool_tx.clone();
                        posts.push(tokio::spawn(async move {
                            let at = Instant::now();
                            let r = conn.post(&body, at).await;
                            pool_tx.send(conn).await.ok();
                            r.map(|(seq, rtt)| (seq, at, rtt))
                        }));
                    }
                    let mut out = Vec::with_capacity(posts.len());
                    for p in posts {
                        out.push(p.await.expect("post task"));
                    }
                    (out, this_thread_cpu_secs())
                })
            })?
    };
    let (results, poster_cpu) = tokio::task::spawn_blocking(move || poster.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the poster panicked"))?;
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut last = 0;
    let mut failed: HashMap<String, usize> = HashMap::new();
    let mut rtts = Vec::new();
    for r in results {
        match r {
            Ok((s, at, rtt)) => {
                last = last.max(s);
                sent.insert(s, at);
                rtts.push(rtt);
            }
            Err(e) => *failed.entry(e).or_default() += 1,
        }
    }
    rtts.sort();
    let send_elapsed = t0.elapsed();
    stop_seq.store(last, std::sync::atomic::Ordering::Relaxed);
    let mut lat = Vec::new();
    let mut received = 0usize;
    let (all, clients_cpu) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || client_thread.join()),
    )
    .await??
    .map_err(|_| anyhow::anyhow!("a stream client panicked"))?;
    // Per message: its first and last client.
    let mut spread: HashMap<u64, (Duration, Duration)> = HashMap::new();
    for got in all {
        received += got.len();
        for (seq, at) in got {
            if let Some(s) = sent.get(&seq) {
                let d = at.saturating_duration_since(*s);
                lat.push(d);
                let e = spread.entry(seq).or_insert((d, d));
                e.0 = e.0.min(d);
                e.1 = e.1.max(d);
            }
        }
    }
    lat.sort();
    let mut firsts: Vec<Duration> = spread.values().map(|v| v.0).collect();
    let mut lasts: Vec<Duration> = spread.values().map(|v| v.1).collect();
    firsts.sort();
    lasts.sort();
    let mut threads1 = thread_cpu_secs();
    // The bench's own threads have ended; they reported their CPU time themselves.
    threads1.insert("bench feed poster".into(), poster_cpu);
    threads1.insert(format!("bench {clients} clients"), clients_cpu);
    let feed_stats: serde_json::Value = http
        .get(format!("{base}/v1/feed/stats"))
        .send()
        .await?
        .json()
        .await?;
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
    println!(
        "per message, arrival→LAST of the {clients} clients (the target, p99 ≤ 5 ms): p50 {:.3?} p90 {:.3?} p99 {:.3?} max {:.3?}",
        percentile(&lasts, 0.50),
        percentile(&lasts, 0.90),
        percentile(&lasts, 0.99),
        lasts.last().copied().unwrap_or_default()
    );
    println!(
        "split: arrival→POST reply (parsed, priced, durable, published) p50 {:.3?} p99 {:.3?}; \
         arrival→first client p50 {:.3?} p99 {:.3?}",
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99),
        percentile(&firsts, 0.50),
        percentile(&firsts, 0.99),
    );
    println!("{cpu}");
    if received > 0 {
        let parts: Vec<String> = threads1
            .iter()
            .map(|(k, v)| {
                let d = v - threads0.get(k).copied().unwrap_or(0.0);
                format!("{k} {:.2} µs", d * 1e6 / received as f64)
            })
            .collect();
        println!("CPU per delivered update by thread: {}", parts.join(", "));
    }
    if let Some(rounds) = feed_stats["stream_fanout_rounds"].as_u64() {
        println!(
            "fan-out rounds {rounds}, summed over the fan-out threads {} (one socket write per client each)",
            if fanout.is_empty() {
                "(node default)"
            } else {
                fanout.trim()
            }
        );
    }
    Ok(())
}
