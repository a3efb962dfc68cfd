//! `outpost bench-replicate`: replication benchmarks on loopback, with the real QUIC + mutual
//! TLS transport, the real session state machines and the real hub store (SQLite, chain
//! verification, durable commit before every ack). The edge side is an in-memory log fed by
//! a producer that commits groups the way the edge writer does (one seal per group), so the
//! figures isolate replication from bet processing.
//!
//! 1. **Lag**: records are produced at `--rate` per second for `--seconds`; the lag of a record
//!    is the time from its group becoming durable at the edge to the edge receiving the hub's
//!    acknowledgement for it (so it includes the hub's verification and fsync). Prints
//!    p50/p99/p99.9/max.
//! 2. **Catch-up**: a backlog of `--backlog` records (default: 10 minutes at 5,000/s, what a
//!    10-minute partition leaves behind) is already durable when the link comes up; prints the
//!    time until the hub has acknowledged all of it and the resulting rate.

use anyhow::Context;
use outpost_core::ids::{Jurisdiction, LogId, NodeId, Seq};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordKind};
use outpost_core::time::UnixMillis;
use outpost_sync::transport::EdgeLog;
use outpost_sync::{EdgeLinkConfig, HubServer, HubServerConfig, pki, run_edge_link, tls};
use region_hub::config::{NodeConfig, SegmentPolicy};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Records per second produced during the lag benchmark.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// Length of the lag benchmark (the first 2 s are warm-up and not counted).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Records waiting when the link comes up in the catch-up benchmark (0 skips it).
    #[arg(long, default_value_t = 3_000_000)]
    backlog: u64,
    /// Records per sealed commit group in the backlog.
    #[arg(long, default_value_t = 64)]
    group: u64,
}

/// An edge log held in memory: frames and the durable head, as the link sees them.
struct MemLog {
    frames: RwLock<Vec<Frame>>,
    durable: watch::Sender<Seq>,
}

impl EdgeLog for MemLog {
    fn durable_head(&self) -> Seq {
        *self.durable.borrow()
    }
    fn subscribe_durable(&self) -> watch::Receiver<Seq> {
        self.durable.subscribe()
    }
    fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, String> {
        let f = self.frames.read().map_err(|_| "poisoned")?;
        let start = (from.0 as usize).saturating_sub(1).min(f.len());
        Ok(f[start..(start + max).min(f.len())].to_vec())
    }
    fn down_applied(&self) -> Seq {
        Seq::ZERO
    }
    async fn apply_down(&self, _frames: Vec<Frame>) -> Result<Seq, String> {
        Err("the benchmark log takes no downstream records".into())
    }
}

/// A ~200-byte JSON payload, the size of a typical wallet movement record.
fn payload(i: u64) -> Vec<u8> {
    format!("{{\"player_id\":\"p-{:08}\",\"kind\":\"stake_hold\",\"amount_minor\":-{},\"currency\":\"GBP\",\"balance_after_minor\":{},\"ref\":\"bench-{i:012}\",\"note\":\"replication benchmark record\"}}", i % 1000, 100 + i % 900, 1_000_000 - (i % 1000)).into_bytes()
}

struct Stack {
    _dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    status: watch::Receiver<outpost_sync::LinkStatus>,
    log: Arc<MemLog>,
    writer: ChainWriter,
    key: NodeKey,
}

/// A hub (fresh SQLite database) and an edge link over loopback QUIC with mutual TLS.
async fn stack(prefill: Vec<Frame>, writer: ChainWriter, key: NodeKey) -> anyhow::Result<Stack> {
    let dir = tempfile::tempdir()?;
    let node = NodeId::new("gb-1")?;
    let gb = Jurisdiction::new("GB")?;
    let pki_dir = dir.path().join("pki");
    pki::write_dev_pki(
        &pki_dir,
        &pki::DEFAULT_HUB_NAMES,
        std::slice::from_ref(&node),
    )?;
    let db = region_hub::db::Db::open(&dir.path().join("hub.sqlite"))?;
    let hub = region_hub::HubState::new(
        db,
        "bench-hub".into(),
        NodeKey::from_seed([7; 32]),
        vec![NodeConfig {
            id: node.clone(),
            jurisdiction: gb.clone(),
            public_key: key.public(),
        }],
        BTreeMap::from([(gb.clone(), 6)]),
        SegmentPolicy::default(),
    )?;
    let server = HubServer::bind(HubServerConfig::new(
        "127.0.0.1:0".parse()?,
        tls::hub_server_config(&pki_dir)?,
    ))?;
    let addr = server.local_addr()?;
    let (stop, rx) = watch::channel(false);
    tokio::spawn(server.run(Arc::new(hub), rx.clone()));
    let head = Seq(prefill.len() as u64);
    let log = Arc::new(MemLog {
        frames: RwLock::new(prefill),
        durable: watch::Sender::new(head),
    });
    let (cfg, status) = EdgeLinkConfig::new(
        node,
        gb,
        addr,
        tls::edge_client_config(&pki_dir, &NodeId::new("gb-1")?)?,
    );
    tokio::spawn(run_edge_link(cfg, log.clone(), rx));
    Ok(Stack {
        _dir: dir,
        stop,
        status,
        log,
        writer,
        key,
    })
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn lag(args: &BenchArgs) -> anyhow::Result<()> {
    let key = NodeKey::from_seed([1; 32]);
    let writer = ChainWriter::new(LogId::new("gb-1")?, ChainHead::EMPTY);
    let mut s = stack(Vec::new(), writer, key).await?;
    s.status
        .wait_for(|st| st.connected)
        .await
        .context("link never connected")?;
    // Producer: every millisecond, commit (seal) whatever the rate says is due.
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let warmup = start + Duration::from_secs(2.min(args.seconds / 2));
    let mut groups: VecDeque<(u64, Instant)> = VecDeque::new(); // (last seq, durable at)
    let mut produced = 0u64;
    let mut lags_us: Vec<u64> = Vec::new();
    let mut acked = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick(), if Instant::now() < end => {
                let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
                if due > produced {
                    let now = UnixMillis(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64);
                    let mut batch: Vec<Frame> = (produced..due).map(|i| s.writer.append(RecordKind::WalletMovement, now, payload(i))).collect();
                    if let Some(last) = batch.last_mut() {
                        ChainWriter::seal(last, &s.key);
                    }
                    s.log.frames.write().map_err(|_| anyhow::anyhow!("poisoned"))?.append(&mut batch);
                    produced = due;
                    s.log.durable.send_replace(Seq(produced));
                    groups.push_back((produced, Instant::now()));
                }
            }
            r = s.status.changed() => {
                r?;
                let a = s.status.borrow_and_update().acked.0;
                let now = Instant::now();
                let mut prev = acked;
                while let Some((last, at)) = groups.front().copied() {
                    if last > a {
                        break;
                    }
                    groups.pop_front();
                    if at >= warmup {
                        let us = now.duration_since(at).as_micros() as u64;
                        lags_us.extend(std::iter::repeat_n(us, (last - prev) as usize));
                    }
                    prev = last;
                }
                acked = acked.max(a);
            }
            _ = tokio::time::sleep(Duration::from_millis(50)), if Instant::now() >= end => {
                if acked >= produced || Instant::now() > end + Duration::from_secs(30) { break; }
            }
        }
    }
    lags_us.sort_unstable();
    println!(
        "lag: {produced} records at {} records/s for {} s (groups every ~1 ms), {} measured after warm-up; ack lag p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms{}",
        args.rate,
        args.seconds,
        lags_us.len(),
        pct(&lags_us, 0.50),
        pct(&lags_us, 0.99),
        pct(&lags_us, 0.999),
        pct(&lags_us, 1.0),
        if acked < produced {
            format!(" (NOT caught up: hub acked {acked} of {produced})")
        } else {
            String::new()
        }
    );
    s.stop.send_replace(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

async fn catch_up(args: &BenchArgs) -> anyhow::Result<()> {
    let key = NodeKey::from_seed([1; 32]);
    let mut writer = ChainWriter::new(LogId::new("gb-1")?, ChainHead::EMPTY);
    let t = Instant::now();
    let now = UnixMillis(1_795_000_000_000);
    let group = args.group.max(1);
    let mut frames = Vec::with_capacity(args.backlog as usize);
    for i in 0..args.backlog {
        let mut f = writer.append(RecordKind::WalletMovement, now, payload(i));
        if (i + 1) % group == 0 || i + 1 == args.backlog {
            ChainWriter::seal(&mut f, &key);
        }
        frames.push(f);
    }
    let bytes: usize = frames.iter().map(|f| f.body.len() + 69).sum();
    eprintln!(
        "built a backlog of {} records ({} MB, seal every {group}) in {:.1?}",
        args.backlog,
        bytes / 1_000_000,
        t.elapsed()
    );
    let mut s = stack(frames, writer, key).await?;
    let start = Instant::now();
    let target = Seq(args.backlog);
    let mut next_report = Duration::from_secs(10);
    loop {
        let st = s.status.borrow_and_update().clone();
        if st.acked >= target {
            break;
        }
        if start.elapsed() >= next_report {
            eprintln!(
                "  … {:.0?}: hub acked {} of {}",
                start.elapsed(),
                st.acked,
                args.backlog
            );
            next_report += Duration::from_secs(10);
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), s.status.changed()).await;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "catch-up: {} records ({} MB) replicated, verified and durably committed in {secs:.1} s = {:.0} records/s (connection set-up included)",
        args.backlog,
        bytes / 1_000_000,
        args.backlog as f64 / secs
    );
    s.stop.send_replace(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// The machine's load average and this process's peak resident memory (Linux `/proc`), printed
/// beside each figure: the benchmarks run on shared machines.
fn conditions() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    let peak_mb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or_else(|| "unknown".into(), |kb| format!("{} MB", kb / 1024));
    format!("load average {load}, peak RSS {peak_mb}")
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.seconds > 0 {
        lag(&args).await?;
        println!("  ({})", conditions());
    }
    if args.backlog > 0 {
        catch_up(&args).await?;
        println!("  ({})", conditions());
    }
    Ok(())
}
