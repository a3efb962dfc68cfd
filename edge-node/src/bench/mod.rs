//! `edge-node bench place` (also `outpost bench place`): the bet-acceptance load generator.
//!
//! It prepares a data directory with the GB rules, a freshly signed register snapshot and the
//! bundled Premier League fixtures; creates `--players` registered, KYC-verified and funded
//! players with the node's own writer (`synth.rs`: a real signed log, much faster than the
//! HTTP path); starts the real `edge-node run` on it (which verifies and replays that log);
//! reports its start-up time and resident memory (VmRSS), then drives the HTTP API on
//! loopback:
//! 1. closed loop: `--concurrency` connections place bets as fast as the node accepts them
//!    for `--seconds`: sustained accepted bets/s (each 201 is released only after its commit
//!    group is fdatasync'ed and sealed by the node's key);
//! 2. open loop: bets offered at a fixed `--rate` for `--seconds`: acceptance latency
//!    percentiles, measured from each bet's scheduled send time (so a stalled node cannot hide
//!    its queue: no coordinated omission).
//!
//! Bets pick players round-robin (so the per-player AML velocity rule is not what is
//! measured) and random selections at the current price.

mod http;
pub mod synth;

use anyhow::{Context, bail};
use http::Conn;
use outpost_core::gate::register::{RegisterDocKind, RegisterPayload, sign};
use outpost_core::log::NodeKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Players to create (registered, KYC-verified, funded) before the load.
    #[arg(long, default_value_t = 20_000)]
    pub players: usize,
    /// Concurrent HTTP connections.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Bets per second offered in the open-loop latency phase.
    #[arg(long, default_value_t = 2_000)]
    pub rate: u64,
    /// Only create the players, start the node on them and report memory (the
    /// 1,000,000-player figure).
    #[arg(long)]
    pub memory_only: bool,
    /// Working directory (default: a fresh temp dir, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The edge-node binary to measure (default: `edge-node` next to this executable).
    #[arg(long)]
    pub edge_bin: Option<PathBuf>,
    /// `[balance_snapshot] every_records` of the node under test. Each balance snapshot lists
    /// every player's balances, so its cost grows with the number of players; the node's
    /// default (10,000 records) is meant for small estates. The time rule (15 min) stays.
    #[arg(long, default_value_t = 10_000_000)]
    pub balance_snapshot_every_records: u64,
    /// Repository root (for `deploy/jurisdictions/gb.toml` and the fixtures).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
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

/// CPU time (user + system) a process has used so far, in microseconds.
fn cpu_us(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // The kernel reports clock ticks; USER_HZ is 100 on Linux.
    Some(ticks * 10_000)
}

/// CPU-µs per accepted bet of the node and of this generator over one phase.
struct CpuMeter {
    node_pid: String,
    node_us: u64,
    gen_us: u64,
    machine: Option<MachineTicks>,
}

/// The machine's CPU time by state (`/proc/stat`, first line), in clock ticks.
#[derive(Clone, Copy)]
struct MachineTicks {
    total: u64,
    idle: u64,
    steal: u64,
}

fn machine_ticks() -> Option<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    Some(MachineTicks {
        total: f.iter().take(8).sum(),
        idle: f.get(3).copied()? + f.get(4).copied().unwrap_or(0),
        steal: f.get(7).copied().unwrap_or(0),
    })
}

impl CpuMeter {
    fn start(node_pid: u32) -> CpuMeter {
        let node_pid = node_pid.to_string();
        CpuMeter {
            node_us: cpu_us(&node_pid).unwrap_or(0),
            gen_us: cpu_us("self").unwrap_or(0),
            node_pid,
            machine: machine_ticks(),
        }
    }
    fn report(&self, accepted: u64) -> String {
        let node = cpu_us(&self.node_pid)
            .unwrap_or(0)
            .saturating_sub(self.node_us);
        let generator = cpu_us("self").unwrap_or(0).saturating_sub(self.gen_us);
        let per = |us: u64| us as f64 / accepted.max(1) as f64;
        // Time the hypervisor gave to others while this VM wanted the CPU: when it is high,
        // latency figures measure the host, not the node.
        let machine = match (self.machine, machine_ticks()) {
            (Some(a), Some(b)) if b.total > a.total => {
                let share = |x: u64, y: u64| 100.0 * (y - x) as f64 / (b.total - a.total) as f64;
                format!(
                    "; machine: {:.1} % idle, {:.1} % stolen by the hypervisor",
                    share(a.idle, b.idle),
                    share(a.steal, b.steal)
                )
            }
            _ => String::new(),
        };
        format!(
            "CPU per accepted bet: node {:.0} µs, generator {:.0} µs (node {:.2} s, generator {:.2} s of CPU){machine}",
            per(node),
            per(generator),
            node as f64 / 1e6,
            generator as f64 / 1e6
        )
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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

/// Kills the node when the benchmark ends, however it ends.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("outpost-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let result = run_in(&a, &dir).await;
    if a.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_in(a: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    println!("load average before: {}", load_average());
    let root = std::fs::canonicalize(&a.repo)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let http_addr = listener.local_addr()?;
    drop(listener);
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no entropy: {e}"))?;
    let authority = NodeKey::from_seed(seed);
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
            "node_id = \"bench-1\"\njurisdiction = \"GB\"\ndata_dir = \"{d}/data\"\nhttp_listen = \"{http_addr}\"\nkey_file = \"{d}/bench-1.key\"\nrules_file = \"{r}/deploy/jurisdictions/gb.toml\"\n\n[[fixtures]]\nfootball_data = \"{r}/fixtures/football-data/E0_2324.csv\"\ndiv = \"E0\"\n\n[risk]\nselection_liability_minor_max = 1000000000000\nevent_liability_minor_max = 1000000000000\n\n[register]\nauthority_public_key = \"{k}\"\ninbox_dir = \"{i}\"\n\n[balance_snapshot]\nevery_records = {bs}\nevery_minutes = 15\n",
            d = dir.display(),
            r = root.display(),
            k = authority.public().to_hex(),
            i = inbox.display(),
            bs = a.balance_snapshot_every_records,
        ),
    )?;
    let bin = edge_bin(a)?;
    let ids_path = dir.join("players.txt");
    // Players first, in their own process: it holds the data directory's lock until it exits.
    let st = std::process::Command::new(&bin)
        .args(["bench-players", "--config"])
        .arg(&cfg)
        .args(["--players", &a.players.to_string(), "--ids-out"])
        .arg(&ids_path)
        .env("RUST_LOG", "warn")
        .status()?;
    if !st.success() {
        bail!("creating players failed: {st}");
    }
    let players: Vec<String> = std::fs::read_to_string(&ids_path)?
        .lines()
        .map(str::to_string)
        .collect();
    let log = std::fs::File::create(dir.join("edge.log"))?;
    let t = Instant::now();
    let child = Child(
        std::process::Command::new(&bin)
            .args(["run", "--config"])
            .arg(&cfg)
            // e.g. `OUTPOST_BENCH_NODE_LOG=warn,commit_timing=debug` with `--dir` to keep the
            // node's log (`edge.log`): where each commit group's time went.
            .env(
                "RUST_LOG",
                std::env::var("OUTPOST_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let pid = child.0.id();
    let mut c = loop {
        if let Ok(mut c) = Conn::connect(http_addr).await
            && c.get_json("/healthz").await.is_ok()
        {
            break c;
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!(
                "edge node not serving after 30 min (see {}/edge.log)",
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let started = t.elapsed();
    let rss = rss_kib(pid).unwrap_or(0);
    let health = c.get_json("/healthz").await?;
    println!(
        "edge-node started on the log ({} records verified and replayed) in {:.1} s",
        health["durable_seq"],
        started.as_secs_f64()
    );
    println!(
        "edge-node resident memory (VmRSS) with {} players loaded: {:.1} MiB ({:.0} bytes/player incl. the node's baseline)",
        players.len(),
        rss as f64 / 1024.0,
        rss as f64 * 1024.0 / players.len().max(1) as f64
    );
    if a.memory_only {
        return Ok(());
    }
    let m = c.get_json("/v1/markets?limit=2000&status=open").await?;
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
    if selections.is_empty() || players.is_empty() {
        bail!("nothing to bet on, or nobody to bet");
    }
    let load = Load {
        addr: http_addr,
        players: Arc::new(players),
        selections: Arc::new(selections),
        counter: Arc::new(AtomicU64::new(0)),
    };
    let head0 = c.get_json("/healthz").await?["durable_seq"]
        .as_u64()
        .unwrap_or(0);
    let bets0 = node_bets(&mut c).await?;
    let cpu = CpuMeter::start(pid);
    let (ok, no, lat, ids) = load.phase(a.concurrency, a.seconds, None).await?;
    let cpu_line = cpu.report(ok);
    let head1 = c.get_json("/healthz").await?["durable_seq"]
        .as_u64()
        .unwrap_or(0);
    verify_accepted(&mut c, bets0, ok, &ids).await?;
    println!(
        "closed loop, {} connections, {} s: {ok} accepted ({:.0} accepted bets/s), {no} refused; durable log grew by {} records; every accepted bet has a distinct id held in the node's durable state; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; load average {}",
        a.concurrency,
        a.seconds,
        ok as f64 / a.seconds as f64,
        head1 - head0,
        ms(pct(&lat.sched, 0.50)),
        ms(pct(&lat.sched, 0.99)),
        ms(pct(&lat.sched, 0.999)),
        load_average(),
    );
    println!("  {cpu_line}");
    let bets1 = node_bets(&mut c).await?;
    let cpu = CpuMeter::start(pid);
    let (ok, no, lat, ids) = load
        .phase(a.concurrency.min(64), a.seconds, Some(a.rate))
        .await?;
    let cpu_line = cpu.report(ok);
    verify_accepted(&mut c, bets1, ok, &ids).await?;
    println!(
        "open loop, offered {} bets/s, {} s: {ok} accepted ({:.0}/s), {no} refused; acceptance latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; load average {}",
        a.rate,
        a.seconds,
        ok as f64 / a.seconds as f64,
        ms(pct(&lat.sched, 0.50)),
        ms(pct(&lat.sched, 0.99)),
        ms(pct(&lat.sched, 0.999)),
        ms(lat.sched.last().copied().unwrap_or_default()),
        load_average(),
    );
    println!(
        "  excluding the generator's own lateness (a send late on an idle connection is timed from the send): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; generator sends late on an idle connection: p99 {:.2} ms",
        ms(pct(&lat.fair, 0.50)),
        ms(pct(&lat.fair, 0.99)),
        ms(pct(&lat.fair, 0.999)),
        ms(pct(&lat.slop, 0.99)),
    );
    println!("  {cpu_line}");
    println!(
        "edge-node VmRSS after the load: {:.1} MiB; load average after: {}",
        rss_kib(pid).unwrap_or(0) as f64 / 1024.0,
        load_average()
    );
    drop(child);
    Ok(())
}

/// The node's count of bets in its state (a read, released only once durable).
async fn node_bets(c: &mut Conn) -> anyhow::Result<u64> {
    c.get_json("/v1/node").await?["bets"]
        .as_u64()
        .context("/v1/node has no bets count")
}

/// Every 201 must carry a distinct bet id, the node must hold exactly that many new bets, and
/// a sample of the ids must be readable back: an acknowledged bet that is not in the node's
/// durable state fails the benchmark.
async fn verify_accepted(
    c: &mut Conn,
    bets_before: u64,
    accepted: u64,
    ids: &[String],
) -> anyhow::Result<()> {
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    if ids.len() as u64 != accepted || distinct.len() != ids.len() {
        bail!(
            "{accepted} bets acknowledged but {} bet ids returned ({} distinct)",
            ids.len(),
            distinct.len()
        );
    }
    let bets_after = node_bets(c).await?;
    if bets_after - bets_before != accepted {
        bail!(
            "{accepted} bets acknowledged but the node's durable state grew by {} bets",
            bets_after - bets_before
        );
    }
    let step = (ids.len() / 100).max(1);
    for id in ids.iter().step_by(step) {
        let (st, _) = c
            .request("GET", &format!("/v1/bets/{id}"), None, None)
            .await?;
        if st != 200 {
            bail!("acknowledged bet {id} cannot be read back: {st}");
        }
    }
    Ok(())
}

/// The `bet_id` of a 201 reply (a flat scan: the generator must stay cheap).
fn bet_id_of(reply: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"bet_id\":\"";
    let at = reply.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let end = reply[at..].iter().position(|b| *b == b'"')?;
    String::from_utf8(reply[at..at + end].to_vec()).ok()
}

struct Load {
    addr: SocketAddr,
    players: Arc<Vec<String>>,
    selections: Arc<Vec<(String, String)>>,
    counter: Arc<AtomicU64>,
}

impl Load {
    /// One phase. `rate`: None = closed loop; Some(r) = r bets/s spread over the connections.
    /// Returns (accepted, refused, sorted latencies of the accepted, their bet ids).
    async fn phase(
        &self,
        clients: usize,
        seconds: u64,
        rate: Option<u64>,
    ) -> anyhow::Result<(u64, u64, Latencies, Vec<String>)> {
        let start = Instant::now() + Duration::from_millis(50);
        let end = start + Duration::from_secs(seconds);
        let mut tasks = vec![];
        for t in 0..clients {
            let (addr, players, selections, counter) = (
                self.addr,
                self.players.clone(),
                self.selections.clone(),
                self.counter.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::connect(addr).await?;
                let mut rng =
                    Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
                let (mut ok, mut no, mut lat) = (0u64, 0u64, Latencies::default());
                let mut ids = Vec::new();
                // When the previous reply arrived: a send after its due time on a connection
                // that was idle then is late because of this generator's timer, not the node.
                let mut free_at = start;
                let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r as f64));
                let mut due = start
                    + interval
                        .map(|i| i.mul_f64(t as f64 / clients as f64))
                        .unwrap_or_default();
                tokio::time::sleep_until(due.into()).await;
                let mut body = Vec::with_capacity(256);
                loop {
                    if interval.is_some() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    // Open loop: latency from the scheduled time, so queueing shows.
                    let t0 = if interval.is_some() { due } else { sent };
                    let t_fair = if free_at > t0 { t0 } else { sent };
                    if let Some(i) = interval {
                        due += i;
                    }
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let p = &players[(n % players.len() as u64) as usize];
                    let (sel, price) = &selections[(rng.next() % selections.len() as u64) as usize];
                    body.clear();
                    use std::io::Write;
                    write!(
                        body,
                        r#"{{"player_id":"{p}","stake_minor":{},"currency":"GBP","legs":[{{"selection_id":"{sel}","price":"{price}"}}]}}"#,
                        10 + rng.next() % 90
                    )?;
                    let key = format!("b{n}");
                    let (st, reply) = c.request("POST", "/v1/bets", Some(&key), Some(&body)).await?;
                    free_at = Instant::now();
                    if st == 201 {
                        ok += 1;
                        lat.sched.push(free_at - t0);
                        lat.fair.push(free_at - t_fair);
                        lat.slop.push(t_fair - t0);
                        ids.push(bet_id_of(&reply).with_context(|| {
                            format!("201 without a bet id: {}", String::from_utf8_lossy(&reply))
                        })?);
                    } else {
                        no += 1;
                        if no == 1 {
                            eprintln!("refused: {st} {}", String::from_utf8_lossy(&reply));
                        }
                    }
                }
                anyhow::Ok((ok, no, lat, ids))
            }));
        }
        let (mut ok, mut no, mut lat, mut ids) = (0, 0, Latencies::default(), Vec::new());
        for t in tasks {
            let (a, b, l, i): (u64, u64, Latencies, Vec<String>) = t.await??;
            ok += a;
            no += b;
            lat.sched.extend(l.sched);
            lat.fair.extend(l.fair);
            lat.slop.extend(l.slop);
            ids.extend(i);
        }
        lat.sched.sort();
        lat.fair.sort();
        lat.slop.sort();
        Ok((ok, no, lat, ids))
    }
}

/// Latencies of the accepted bets of one phase.
#[derive(Default)]
struct Latencies {
    /// From the scheduled send time (open loop) or the send (closed loop) to the reply.
    sched: Vec<Duration>,
    /// The same, except that a send that was late while its connection was idle is timed
    /// from the actual send (that lateness is the generator's, not the node's).
    fair: Vec<Duration>,
    /// How late the generator sent on an idle connection.
    slop: Vec<Duration>,
}
