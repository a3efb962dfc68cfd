//! Benchmark: settle 1,000,000 open bets on one result set (target: 10 s or less on the
//! project's 2-core machine), with the settlement records durable. Figures and the command
//! are in `docs/benchmarks.md` ("Hub: settlement and reconciliation" → "Settlement").
//!
//! Setup (not timed): one GB edge node's log of 1,000,000 real signed `bet_placed` records
//! (singles on 1X2, total-goals and Asian-handicap quarter-line markets, plus doubles) over a
//! matchday of 10 matches, committed through the hub's normal upstream path (records, bet rows,
//! audit segments) into SQLite (WAL, `synchronous=FULL`).
//!
//! Timed: the matchday's results arrive from two sources (final when both agree), each final
//! result settling every bet it completes in one transaction: settlement rows, the signed
//! down-chain records to the node and the audit-outbox segments, committed durably before the
//! call returns. The run fails unless every bet is settled exactly once and the payouts add up
//! to an independent recomputation.
//!
//! Usage: `cargo run --release -p region-hub --bin bench-settle -- [--bets N] [--dir PATH]`

use anyhow::{Context, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use outpost_core::edge::events::{BetLeg, BetPlaced, EdgeEvent, Genesis, IdemTag};
use outpost_core::ids::{BetId, EventId, IdemKey, Jurisdiction, LogId, MarketId, NodeId, PlayerId};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordBody};
use outpost_core::market::{Line, Market, MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;
use outpost_core::settle::{FinalScore, bet_payout_minor, settle_selection};
use outpost_core::time::UnixMillis;
use region_hub::config::{NodeConfig, SegmentPolicy};
use region_hub::db::Db;
use region_hub::store::HubState;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// mimalloc rather than the system allocator: a settle pass allocates and frees millions of
/// small objects on two threads next to SQLite's page-sized buffers, and glibc's malloc spent a
/// quarter of the pass's CPU consolidating and unlinking chunks (`docs/benchmarks.md`,
/// "Settlement").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EVENTS: usize = 10;
/// Records per upstream commit in the setup (one seal each).
const GROUP: usize = 10_000;

fn main() -> anyhow::Result<()> {
    let mut bets: usize = 1_000_000;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bets" => {
                bets = args
                    .next()
                    .context("--bets N")?
                    .parse()
                    .context("--bets N")?
            }
            "--dir" => dir = Some(args.next().context("--dir PATH")?.into()),
            other => {
                bail!("unknown argument {other:?}; usage: bench-settle [--bets N] [--dir PATH]")
            }
        }
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("outpost-bench-settle-{}", std::process::id()))
    });
    ensure!(
        !dir.join("hub.sqlite").exists(),
        "{} already holds a hub database",
        dir.display()
    );
    let r = bench(bets, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn id<T>(r: Result<T, outpost_core::ids::IdError>) -> T {
    r.expect("generated ids are valid")
}

/// A small deterministic generator (xorshift), so every run settles the same book.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn event(i: usize) -> EventId {
    id(EventId::new(format!("E0-20240817-match-{i}")))
}

fn leg(rng: &mut Rng, ev: &EventId) -> BetLeg {
    let (kind, outcomes): (MarketKind, &[Outcome]) = match rng.below(3) {
        0 => (
            MarketKind::MatchResult,
            &[Outcome::Home, Outcome::Draw, Outcome::Away],
        ),
        1 => (
            MarketKind::TotalGoals { line: Line(10) }, // 2.5
            &[Outcome::Over, Outcome::Under],
        ),
        _ => (
            MarketKind::AsianHandicap {
                home_line: Line(-3),
            }, // -0.75
            &[Outcome::Home, Outcome::Away],
        ),
    };
    let outcome = outcomes[rng.below(outcomes.len())];
    let market_id: MarketId = Market::market_id_for(ev, &kind);
    BetLeg {
        selection_id: Market::selection_id_for(&market_id, outcome),
        market_id,
        event_id: ev.clone(),
        kind,
        outcome,
        price: Price::from_milli(1_050 + rng.below(9_000) as u64).expect("price in range"),
    }
}

fn bench(n_bets: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    println!(
        "bench-settle: {n_bets} open bets on {EVENTS} matches, hub database in {}",
        dir.display()
    );
    let node = id(NodeId::new("bench-1"));
    let gb = id(Jurisdiction::new("GB"));
    let node_key = NodeKey::from_seed([7; 32]);
    let db = Db::open(&dir.join("hub.sqlite"))?;
    let state = HubState::new(
        db,
        "bench-hub".into(),
        NodeKey::from_seed([8; 32]),
        vec![NodeConfig {
            id: node.clone(),
            jurisdiction: gb.clone(),
            public_key: node_key.public(),
        }],
        BTreeMap::from([(gb.clone(), 5)]),
        SegmentPolicy::default(),
    )?;

    // Setup: the node's log, committed through the normal upstream path.
    let mut w = ChainWriter::new(id(LogId::new("bench-1")), ChainHead::EMPTY);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = UnixMillis(1_723_900_000_000);
    let events: Vec<EventId> = (0..EVENTS).map(event).collect();
    let mut book: Vec<BetPlaced> = Vec::with_capacity(n_bets);
    let bar = progress(n_bets as u64, "replicating bets");
    let mut group: Vec<(Frame, RecordBody)> = Vec::with_capacity(GROUP + 1);
    let genesis = EdgeEvent::Genesis(Genesis {
        node_id: node.clone(),
        jurisdiction: gb.clone(),
        currency: Currency::GBP,
        public_key: node_key.public().to_hex(),
        software: "bench".into(),
    });
    let push = |w: &mut ChainWriter, group: &mut Vec<(Frame, RecordBody)>, ev: &EdgeEvent| {
        let f = w.append(ev.kind(), t0, ev.to_payload());
        let b = f.parse_body().expect("own frame");
        group.push((f, b));
    };
    push(&mut w, &mut group, &genesis);
    for i in 0..n_bets {
        // One bet in ten is a double across two matches.
        let first = rng.below(EVENTS);
        let mut legs = vec![leg(&mut rng, &events[first])];
        if rng.below(10) == 0 {
            let second = (first + 1 + rng.below(EVENTS - 1)) % EVENTS;
            legs.push(leg(&mut rng, &events[second]));
        }
        let stake_minor = 100 * (1 + rng.below(50)) as i64;
        let bet = BetPlaced {
            each_way: false,
            bet_id: id(BetId::new(format!("bench-1-b{i}"))),
            player_id: id(PlayerId::new(format!("bench-1-p{}", i % 20_000))),
            currency: Currency::GBP,
            stake_minor,
            potential_payout_minor: 0,
            legs,
            idem: IdemTag {
                key: id(IdemKey::new(format!("bench-{i}"))),
                request_sha256: "00".repeat(32),
            },
        };
        push(&mut w, &mut group, &EdgeEvent::BetPlaced(bet.clone()));
        book.push(bet);
        if group.len() >= GROUP || i + 1 == n_bets {
            let last = group.last_mut().expect("non-empty");
            ChainWriter::seal(&mut last.0, &node_key);
            state
                .commit_upstream_blocking(&node, std::mem::take(&mut group), t0)
                .map_err(|e| anyhow::anyhow!("upstream commit: {e}"))?;
            bar.set_position(i as u64 + 1);
        }
    }
    bar.finish();

    // The result set, and the payouts computed independently of the hub.
    let scores: Vec<FinalScore> = (0..EVENTS)
        .map(|i| FinalScore {
            home: (i % 4) as u16,
            away: ((i * 7 + 1) % 3) as u16,
        })
        .collect();
    let score_of = |e: &EventId| scores[events.iter().position(|x| x == e).expect("known event")];
    let expected_paid: i64 = book
        .iter()
        .map(|b| {
            let legs: Vec<_> = b
                .legs
                .iter()
                .map(|l| {
                    (
                        settle_selection(&l.kind, l.outcome, score_of(&l.event_id)).expect("fits"),
                        l.price,
                    )
                })
                .collect();
            bet_payout_minor(b.stake_minor, &legs).expect("in range")
        })
        .sum();

    // Timed: results from two sources; each final result settles its bets durably.
    let m = &state.metrics().settle_progress;
    let start_progress = m.load(Ordering::Relaxed);
    let bar = progress(n_bets as u64, "settling");
    let watcher = {
        let bar = bar.clone();
        let state = state.clone();
        std::thread::spawn(move || {
            while !bar.is_finished() {
                bar.set_position(
                    state.metrics().settle_progress.load(Ordering::Relaxed) - start_progress,
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let load_before = load_average();
    let cpu_before = (
        cpu_seconds("/proc/self/stat"),
        cpu_seconds("/proc/thread-self/stat"),
    );
    let started = Instant::now();
    let mut settled = 0;
    let mut per_result = Vec::new();
    for (ev, score) in events.iter().zip(&scores) {
        let t = Instant::now();
        state
            .submit_result_blocking(ev, *score, "feed-a", t0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let r = state
            .submit_result_blocking(ev, *score, "feed-b", t0)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(r.result_version == 1, "{ev} not final: {r:?}");
        settled += r.settled;
        per_result.push((r.settled, t.elapsed()));
    }
    let elapsed = started.elapsed();
    let cpu_after = (
        cpu_seconds("/proc/self/stat"),
        cpu_seconds("/proc/thread-self/stat"),
    );
    let load_after = load_average();
    bar.finish();
    let _ = watcher.join();

    // Checks: every bet settled exactly once, payouts as recomputed, down chain complete.
    let stats = state.stats_view()?;
    ensure!(settled == n_bets, "settled {settled} of {n_bets}");
    ensure!(
        stats.settled == n_bets as u64 && stats.open_bets == 0,
        "{stats:?}"
    );
    let (paid, rows): (i64, i64) = rusqlite::Connection::open(dir.join("hub.sqlite"))?.query_row(
        "SELECT COALESCE(SUM(payout_minor), 0), COUNT(DISTINCT bet_id) FROM settlements",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    ensure!(rows == n_bets as i64, "{rows} bets in settlements");
    ensure!(
        paid == expected_paid,
        "hub paid {paid}, recomputed {expected_paid}"
    );
    let down = state.down_head(&node).0;
    ensure!(down == (n_bets + EVENTS) as u64, "down chain head {down}");

    let secs = elapsed.as_secs_f64();
    let db_mb = std::fs::metadata(dir.join("hub.sqlite"))?.len() as f64 / 1e6;
    println!(
        "settled {settled} bets on {EVENTS} results in {secs:.2} s = {:.0} bets/s",
        settled as f64 / secs
    );
    for (i, (n, d)) in per_result.iter().enumerate() {
        println!("  result {i}: {n} bets settled in {:.2} s", d.as_secs_f64());
    }
    let ph = &state.metrics().settle_phases;
    let ph_s = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
    let (read, decode, settle, write, wait, flush) = (
        ph_s(&ph.read_ns),
        ph_s(&ph.decode_ns),
        ph_s(&ph.settle_ns),
        ph_s(&ph.write_ns),
        ph_s(&ph.wait_ns),
        ph_s(&ph.flush_ns),
    );
    let rest = secs - read - write - wait - flush;
    let per = |s: f64| s * 1e6 / settled.max(1) as f64;
    println!(
        "phases (wall s, us/bet): read {read:.2} ({:.1}), write {write:.2} ({:.1}), writer waiting for the settling thread {wait:.2} ({:.1}), down flush + audit cut {flush:.2} ({:.1}), commit + intake {rest:.2} ({:.1}); on the settling thread, overlapping the writer: decode {decode:.2} ({:.1}), settle {settle:.2} ({:.1})",
        per(read),
        per(write),
        per(wait),
        per(flush),
        per(rest),
        per(decode),
        per(settle)
    );
    match (cpu_before, cpu_after) {
        ((Some(p0), Some(t0)), (Some(p1), Some(t1))) => println!(
            "cpu during the timed part: process {:.2} s ({:.1} us/bet, all threads incl. the settling thread and the WAL checkpointer), writer (main) thread {:.2} s ({:.1} us/bet)",
            p1 - p0,
            (p1 - p0) * 1e6 / settled.max(1) as f64,
            t1 - t0,
            (t1 - t0) * 1e6 / settled.max(1) as f64
        ),
        _ => println!("cpu during the timed part: unknown (no /proc)"),
    }
    println!("load average (1/5/15 min): before {load_before}, after {load_after}");
    println!(
        "durable: {} settlement rows, {down} signed down records, {} audit segments queued; payouts {paid} minor units (matches recomputation); database {db_mb:.0} MB",
        stats.settled, stats.audit_pending
    );
    Ok(())
}

/// `/proc/loadavg`'s first three fields, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// User + system CPU seconds from a `/proc/.../stat` file (fields 14 and 15, in clock ticks
/// of 1/100 s on Linux).
fn cpu_seconds(path: &str) -> Option<f64> {
    let s = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces; fields are counted after its ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn progress(len: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:18} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what);
    bar
}
