//! `outpost bench place`: a load generator for bet acceptance through the real HTTP API.
//!
//! It starts a real `edge-node` (the binary next to this one) on loopback with the GB rules, a
//! freshly signed register snapshot and the bundled Premier League fixtures (hundreds of
//! markets), registers, verifies and funds many players through the API, then:
//! 1. closed loop: `--concurrency` clients place bets as fast as the node accepts them for
//!    `--seconds`, and reports sustained accepted bets/s (each 201 is released only after its
//!    group is fdatasync'ed and sealed by the node's key);
//! 2. open loop: bets at a fixed `--rate` for `--seconds`, and reports acceptance latency
//!    percentiles (send to 201);
//! 3. the node's resident memory (VmRSS) with all players loaded.
//!
//! Bets pick players round-robin (so the per-player AML velocity rule is not what is measured)
//! and random selections at the current price.

use anyhow::{Context, bail};
use outpost_core::gate::register::{RegisterDocKind, RegisterPayload, sign};
use outpost_core::log::NodeKey;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Players to register and fund before the load.
    #[arg(long, default_value_t = 20_000)]
    pub players: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Bets per second in the open-loop latency phase.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Only register players and report memory (for the 1,000,000-player figure).
    #[arg(long)]
    pub memory_only: bool,
    /// Working directory (default: a fresh temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The edge-node binary (default: the one next to this executable).
    #[arg(long)]
    pub edge_bin: Option<PathBuf>,
}

fn edge_bin(a: &BenchArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &a.edge_bin {
        return Ok(p.clone());
    }
    let me = std::env::current_exe()?;
    let p = me.parent().context("exe dir")?.join("edge-node");
    if !p.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p edge-node)",
            p.display()
        );
    }
    Ok(p)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile_dir(&a)?;
    let dir = tmp.clone();
    let root = std::env::current_dir()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let http = listener.local_addr()?;
    drop(listener);
    let authority = NodeKey::from_seed(rand_seed());
    let inbox = dir.join("register-inbox");
    std::fs::create_dir_all(&inbox)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let doc = sign(
        &authority,
        &RegisterPayload {
            register: "GAMSTOP".into(),
            jurisdiction: outpost_core::ids::Jurisdiction::new("GB")?,
            kind: RegisterDocKind::Snapshot,
            seq: 1,
            base_seq: None,
            issued_at_ms: now,
            add: vec![],
            remove: vec![],
        },
    );
    std::fs::write(inbox.join("snapshot.json"), serde_json::to_vec(&doc)?)?;
    let cfg = dir.join("bench-edge.toml");
    std::fs::write(
        &cfg,
        format!(
            "node_id = \"bench-1\"\njurisdiction = \"GB\"\ndata_dir = \"{d}/data\"\nhttp_listen = \"{http}\"\nkey_file = \"{d}/bench-1.key\"\nrules_file = \"{r}/deploy/jurisdictions/gb.toml\"\n\n[[fixtures]]\nfootball_data = \"{r}/fixtures/football-data/E0_2324.csv\"\ndiv = \"E0\"\n\n[risk]\nselection_liability_minor_max = 1000000000000\nevent_liability_minor_max = 1000000000000\n\n[register]\nauthority_public_key = \"{k}\"\ninbox_dir = \"{i}\"\n",
            d = dir.display(),
            r = root.display(),
            k = authority.public().to_hex(),
            i = inbox.display(),
        ),
    )?;
    let log = std::fs::File::create(dir.join("edge.log"))?;
    let mut child = std::process::Command::new(edge_bin(&a)?)
        .args(["run", "--config", cfg.to_str().context("utf-8 path")?])
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pid = child.id();
    let base = format!("http://{http}");
    let result = drive(&a, &base, pid).await;
    let _ = child.kill();
    let _ = child.wait();
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn rand_seed() -> [u8; 32] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    outpost_core::log::sha256(&t.to_le_bytes())
}

fn tempfile_dir(a: &BenchArgs) -> anyhow::Result<PathBuf> {
    let d = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("outpost-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&d)?;
    Ok(std::fs::canonicalize(d)?)
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    idem: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let r = c
        .post(url)
        .header("Idempotency-Key", idem)
        .json(body)
        .send()
        .await?;
    let st = r.status().as_u16();
    Ok((st, r.json().await.unwrap_or(Value::Null)))
}

async fn drive(a: &BenchArgs, base: &str, pid: u32) -> anyhow::Result<()> {
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency * 2)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = c.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("edge node not healthy after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss0 = rss_kib(pid).unwrap_or(0);
    // Players: register, KYC, deposit — concurrently.
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let players: Arc<std::sync::Mutex<Vec<String>>> =
        Arc::new(std::sync::Mutex::new(Vec::with_capacity(a.players)));
    let mut tasks = vec![];
    for _ in 0..a.concurrency {
        let (c, base, next, players, n) = (
            c.clone(),
            base.to_string(),
            next.clone(),
            players.clone(),
            a.players,
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                let (st, p) = post(&c, &format!("{base}/v1/players"), &format!("reg-{i}"), &json!({"jurisdiction":"GB","name":format!("Bench Player {i}"),"date_of_birth":"1985-06-15"})).await?;
                anyhow::ensure!(st == 201, "register: {st} {p}");
                let id = p["player_id"].as_str().context("player_id")?.to_string();
                let (st, v) = post(&c, &format!("{base}/v1/players/{id}/kyc"), &format!("kyc-{i}"), &json!({})).await?;
                anyhow::ensure!(st == 200, "kyc: {st} {v}");
                let (st, v) = post(&c, &format!("{base}/v1/players/{id}/deposits"), &format!("dep-{i}"), &json!({"amount_minor": 150_000, "currency": "GBP", "provider_ref": format!("bench-psp-{i}")})).await?;
                anyhow::ensure!(st == 201, "deposit: {st} {v}");
                players.lock().unwrap().push(id);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let players: Vec<String> = std::mem::take(&mut *players.lock().unwrap());
    let setup = t.elapsed();
    let rss = rss_kib(pid).unwrap_or(0);
    println!(
        "players: {} registered, KYC'd and funded through the API in {:.1} s ({:.0} players/s)",
        players.len(),
        setup.as_secs_f64(),
        players.len() as f64 / setup.as_secs_f64()
    );
    println!(
        "edge-node resident memory (VmRSS): {:.1} MiB before players, {:.1} MiB with {} players",
        rss0 as f64 / 1024.0,
        rss as f64 / 1024.0,
        players.len()
    );
    if a.memory_only {
        return Ok(());
    }
    let m: Value = c
        .get(format!("{base}/v1/markets?limit=2000&status=open"))
        .send()
        .await?
        .json()
        .await?;
    let selections: Vec<(String, String)> = m["markets"]
        .as_array()
        .context("markets")?
        .iter()
        .flat_map(|mk| {
            mk["selections"].as_array().into_iter().flatten().map(|s| {
                (
                    s["selection_id"].as_str().unwrap_or_default().to_string(),
                    s["price"].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect();
    println!("markets: {} selections open", selections.len());
    let players = Arc::new(players);
    let selections = Arc::new(selections);
    let counter = Arc::new(AtomicU64::new(0));
    let head0 = durable_seq(&c, base).await?;

    // Phase 1: closed loop, maximum sustained acceptance.
    let (accepted, refused, lat) = phase(
        &c,
        base,
        &players,
        &selections,
        &counter,
        a.concurrency,
        a.seconds,
        None,
    )
    .await?;
    let head1 = durable_seq(&c, base).await?;
    println!(
        "closed loop, {} clients, {} s: {} accepted ({:.0} bets/s), {} refused; durable log grew by {} records; p50 {:.2} ms, p99 {:.2} ms",
        a.concurrency,
        a.seconds,
        accepted,
        accepted as f64 / a.seconds as f64,
        refused,
        head1 - head0,
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
    );
    // Phase 2: open loop at a fixed rate.
    let (accepted, refused, lat) = phase(
        &c,
        base,
        &players,
        &selections,
        &counter,
        a.concurrency,
        a.seconds,
        Some(a.rate),
    )
    .await?;
    println!(
        "open loop at {} bets/s, {} s: {} accepted, {} refused; acceptance latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        a.rate,
        a.seconds,
        accepted,
        refused,
        ms(pct(&lat, 0.50)),
        ms(pct(&lat, 0.99)),
        ms(pct(&lat, 0.999)),
        ms(lat.last().copied().unwrap_or_default()),
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn durable_seq(c: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let h: Value = c
        .get(format!("{base}/healthz"))
        .send()
        .await?
        .json()
        .await?;
    h["durable_seq"].as_u64().context("durable_seq")
}

/// One load phase. `rate`: None = closed loop; Some(r) = r bets/s spread over the clients.
#[allow(clippy::too_many_arguments)]
async fn phase(
    c: &reqwest::Client,
    base: &str,
    players: &Arc<Vec<String>>,
    selections: &Arc<Vec<(String, String)>>,
    counter: &Arc<AtomicU64>,
    clients: usize,
    seconds: u64,
    rate: Option<u64>,
) -> anyhow::Result<(u64, u64, Vec<Duration>)> {
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = vec![];
    for t in 0..clients {
        let (c, base, players, selections, counter) = (
            c.clone(),
            base.to_string(),
            players.clone(),
            selections.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
            let (mut ok, mut no, mut lat) = (0u64, 0u64, Vec::new());
            // Open loop: this client's share of the rate, on a fixed schedule.
            let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r as f64));
            let mut due = start + interval.map(|i| i.mul_f64(t as f64 / clients as f64)).unwrap_or_default();
            loop {
                if let Some(i) = interval {
                    tokio::time::sleep_until(due.into()).await;
                    due += i;
                }
                if Instant::now() >= end {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let p = &players[(n % players.len() as u64) as usize];
                let (sel, price) = &selections[(rng.next() % selections.len() as u64) as usize];
                let body = json!({"player_id": p, "stake_minor": 10 + (rng.next() % 90) as i64, "currency": "GBP", "legs": [{"selection_id": sel, "price": price}]});
                let t0 = Instant::now();
                let r = c.post(format!("{base}/v1/bets")).header("Idempotency-Key", format!("b{n}")).json(&body).send().await?;
                let st = r.status().as_u16();
                let _ = r.bytes().await?;
                if st == 201 {
                    ok += 1;
                    lat.push(t0.elapsed());
                } else {
                    no += 1;
                }
            }
            anyhow::Ok((ok, no, lat))
        }));
    }
    let (mut ok, mut no, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        let (a, b, l) = t.await??;
        ok += a;
        no += b;
        lat.extend(l);
    }
    lat.sort();
    Ok((ok, no, lat))
}
