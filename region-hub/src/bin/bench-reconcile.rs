//! Benchmark: reconcile 1,000,000 replicated log records (target: 10 s or less on the
//! project's 2-core machine). Figures and the command are in `docs/benchmarks.md`
//! ("Hub: settlement and reconciliation" → "Reconciliation").
//!
//! Setup (not timed): four GB edge nodes' logs written as real signed records (registrations,
//! deposits, bets with their compliance decision and stake movement, withdrawals, and a
//! balance snapshot every 10,000 records), committed through the hub's normal upstream path
//! (SQLite, bet rows, audit segments), results for a tenth of the events (settling their bets
//! through the hub's settler), a matching payment-provider statement, and the audit outbox
//! drained into a local write-once store. Then it times one reconciliation of the hour: all
//! five checks, once reading only the database and once also re-reading every audit object of
//! the window. A correct data set must reconcile clean: the run fails if anything is found.
//!
//! Usage: `cargo run --release -p region-hub --bin bench-reconcile -- [--events N]`

use anyhow::Context;
use outpost_core::edge::EdgeState;
use outpost_core::edge::balance_snapshot::snapshot_events;
use outpost_core::edge::events::*;
use outpost_core::ids::{
    BetId, EventId, IdemKey, Jurisdiction, LogId, MarketId, NodeId, PlayerId, SelectionId,
};
use outpost_core::ledger::{Account, Posting};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordBody};
use outpost_core::market::{MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;
use outpost_core::settle::FinalScore;
use outpost_core::time::UnixMillis;
use region_hub::audit::{AuditStore, LocalWormStore};
use region_hub::audit_uploader::{Backoff, drain_once};
use region_hub::config::{NodeConfig, SegmentPolicy};
use region_hub::db::Db;
use region_hub::reconcile::cli::Bar;
use region_hub::reconcile::run::{Progress, Quiet, Trigger, reconcile_hour};
use region_hub::reconcile::{Hour, Thresholds};
use region_hub::store::HubState;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

const NODES: usize = 4;
const PLAYERS_PER_NODE: usize = 5_000;
const EVENTS: usize = 100;
const GROUP: usize = 512;
const SNAPSHOT_EVERY: usize = 10_000;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut events_total: usize = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => {
                events_total = args
                    .next()
                    .context("--events N")?
                    .parse()
                    .context("--events N")?;
            }
            other => {
                anyhow::bail!("unknown argument {other:?}; usage: bench-reconcile [--events N]")
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(events_total))
}

fn id<T>(r: Result<T, outpost_core::ids::IdError>) -> T {
    r.expect("generated ids are valid")
}

struct Gen {
    node: NodeId,
    w: ChainWriter,
    key: NodeKey,
    state: EdgeState,
    pending: Vec<(Frame, RecordBody)>,
    movement: u64,
    bets: u64,
    records: usize,
    since_snapshot: usize,
    t0: i64,
    dt: f64,
    refs: Vec<(String, i64, i64, &'static str)>,
}

impl Gen {
    fn new(n: usize, t0: i64, span_ms: i64, records: usize) -> Gen {
        let node = id(NodeId::new(format!("gb-{n}")));
        let key = NodeKey::from_seed([n as u8 + 10; 32]);
        Gen {
            w: ChainWriter::new(id(LogId::new(node.as_str())), ChainHead::EMPTY),
            node,
            key,
            state: EdgeState::default(),
            pending: Vec::with_capacity(GROUP),
            movement: 0,
            bets: 0,
            records: 0,
            since_snapshot: 0,
            t0,
            dt: span_ms as f64 / records as f64,
            refs: Vec::new(),
        }
    }
    fn now(&self) -> i64 {
        self.t0 + (self.records as f64 * self.dt) as i64
    }
    fn push(&mut self, ev: EdgeEvent) {
        let t = UnixMillis(self.now());
        self.state.apply(&ev, t).expect("generated events apply");
        let f = self.w.append(ev.kind(), t, ev.to_payload());
        let b = f.parse_body().expect("fresh frame parses");
        self.pending.push((f, b));
        self.records += 1;
        self.since_snapshot += 1;
    }
    fn take_group(&mut self) -> Vec<(Frame, RecordBody)> {
        let mut g = std::mem::take(&mut self.pending);
        if let Some((f, b)) = g.last_mut() {
            ChainWriter::seal(f, &self.key);
            *b = f.parse_body().expect("sealed frame parses");
        }
        g
    }
    fn movement(
        &mut self,
        p: &PlayerId,
        reason: MovementReason,
        postings: Vec<Posting>,
        r: Option<String>,
        bet: Option<BetId>,
    ) {
        self.movement += 1;
        self.push(EdgeEvent::WalletMovement(WalletMovement {
            movement_id: self.movement,
            player_id: p.clone(),
            reason,
            currency: Currency::GBP,
            postings,
            bet_id: bet,
            provider_ref: r,
            decision: None,
            idem: None,
        }));
    }
    /// One step of a realistic day: new players register and deposit; known players bet,
    /// and now and then withdraw.
    fn step(&mut self, i: usize) {
        let pno = i % PLAYERS_PER_NODE;
        let p = id(PlayerId::new(format!("{}-p{pno}", self.node)));
        let idem = |k: String| IdemTag {
            key: id(IdemKey::new(k)),
            request_sha256: "00".repeat(32),
        };
        if !self.state.players.contains_key(&p) {
            self.push(EdgeEvent::PlayerRegistered(PlayerRegistered {
                player_id: p.clone(),
                jurisdiction: id(Jurisdiction::new("GB")),
                pii_sha256: "00".repeat(32),
                idem: idem(format!("{}-reg-{pno}", self.node)),
            }));
            let r = format!("psp-{}-{}", self.node, self.movement + 1);
            self.refs.push((r.clone(), self.now(), 50_000, "Settled"));
            let postings = vec![Posting {
                from: Account::PaymentProvider,
                to: Account::PlayerCash(p.clone()),
                amount_minor: 50_000,
            }];
            self.movement(&p, MovementReason::Deposit, postings, Some(r), None);
            return;
        }
        if i.is_multiple_of(97) {
            let r = format!("psp-{}-{}", self.node, self.movement + 1);
            self.refs.push((r.clone(), self.now(), 100, "Refunded"));
            let postings = vec![Posting {
                from: Account::PlayerCash(p.clone()),
                to: Account::PaymentProvider,
                amount_minor: 100,
            }];
            self.movement(&p, MovementReason::Withdrawal, postings, Some(r), None);
            return;
        }
        self.bets += 1;
        let bet_id = id(BetId::new(format!("{}-b{}", self.node, self.bets)));
        let ev = id(EventId::new(format!("e-{}", self.bets as usize % EVENTS)));
        let market_id = id(MarketId::new(format!("{ev}/1x2")));
        self.push(EdgeEvent::ComplianceDecision(ComplianceDecision {
            player_id: p.clone(),
            action: "place_bet".into(),
            accepted: true,
            reason: None,
            jurisdiction: id(Jurisdiction::new("GB")),
            rules_version: "gb-2026.1".into(),
            checks: vec![],
            bet_id: Some(bet_id.clone()),
            flags: vec![],
            reality_check_due: false,
            idem: None,
        }));
        let postings = vec![Posting {
            from: Account::PlayerCash(p.clone()),
            to: Account::PlayerStakes(p.clone()),
            amount_minor: 100,
        }];
        self.movement(
            &p,
            MovementReason::Stake,
            postings,
            None,
            Some(bet_id.clone()),
        );
        self.push(EdgeEvent::BetPlaced(BetPlaced {
            each_way: false,
            bet_id: bet_id.clone(),
            player_id: p,
            currency: Currency::GBP,
            stake_minor: 100,
            potential_payout_minor: 250,
            legs: vec![BetLeg {
                selection_id: id(SelectionId::new(format!("{market_id}/home"))),
                market_id,
                event_id: ev,
                kind: MarketKind::MatchResult,
                outcome: Outcome::Home,
                price: Price::parse("2.5").expect("valid price"),
            }],
            idem: idem(format!("{bet_id}-k")),
        }));
    }
    fn maybe_snapshot(&mut self) {
        if self.since_snapshot >= SNAPSHOT_EVERY {
            let as_of = self.w.head().seq;
            for ev in snapshot_events(&self.state, as_of) {
                self.push(ev);
            }
            self.since_snapshot = 0;
        }
    }
}

/// The provider's settlement report for the generated deposits and withdrawals.
fn statement(refs: &[(String, i64, i64, &'static str)]) -> String {
    let mut s = String::from(
        "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Batch Number\n",
    );
    for (r, t, amount, ty) in refs {
        let secs = t.div_euclid(1000);
        let d = UnixMillis(*t).date();
        let tod = secs.rem_euclid(86_400);
        let (debit, credit) = if *ty == "Settled" {
            (
                String::new(),
                format!("{}.{:02}", amount / 100, amount % 100),
            )
        } else {
            (
                format!("{}.{:02}", amount / 100, amount % 100),
                String::new(),
            )
        };
        let _ = writeln!(
            s,
            "OutpostLtd,OutpostGB,{r},{r},visa,{d} {:02}:{:02}:{:02},GMT,{ty},{r},GBP,{debit},{credit},1",
            tod / 3600,
            tod % 3600 / 60,
            tod % 60
        );
    }
    s
}

async fn bench(events_total: usize) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let hour = Hour::parse("2025-11-21T13")?;
    let w = hour.window();
    let nodes: Vec<Gen> = (0..NODES)
        .map(|n| {
            Gen::new(
                n + 1,
                w.start_ms,
                w.end_ms - w.start_ms - 60_000,
                events_total / NODES,
            )
        })
        .collect();
    let regs: Vec<NodeConfig> = nodes
        .iter()
        .map(|g| NodeConfig {
            id: g.node.clone(),
            jurisdiction: id(Jurisdiction::new("GB")),
            public_key: g.key.public(),
        })
        .collect();
    let db = Db::open(&dir.join("hub.sqlite"))?;
    let state = HubState::new(
        db,
        "bench-hub".into(),
        NodeKey::from_seed([1; 32]),
        regs,
        BTreeMap::from([(id(Jurisdiction::new("GB")), 5)]),
        SegmentPolicy {
            max_records: 10_000,
            max_age_ms: 3_600_000,
        },
    )?;

    println!(
        "setup: generating and committing {events_total} signed records on {NODES} nodes (not timed)…"
    );
    let t_setup = Instant::now();
    let bar = Bar::new();
    bar.phase("committing records", events_total as u64);
    let mut refs = Vec::new();
    let mut done = 0u64;
    for mut g in nodes {
        let target = events_total / NODES;
        let mut i = 0;
        g.push(EdgeEvent::Genesis(Genesis {
            node_id: g.node.clone(),
            jurisdiction: id(Jurisdiction::new("GB")),
            currency: Currency::GBP,
            public_key: g.key.public().to_hex(),
            software: "bench".into(),
        }));
        while g.records < target {
            g.step(i);
            i += 1;
            g.maybe_snapshot();
            if g.pending.len() >= GROUP || g.records >= target {
                let now = UnixMillis(g.now());
                let group = g.take_group();
                let n = group.len() as u64;
                let node = g.node.clone();
                let st = state.clone();
                tokio::task::spawn_blocking(move || st.commit_upstream_blocking(&node, group, now))
                    .await??;
                done += n;
                bar.advance(done);
            }
        }
        refs.append(&mut g.refs);
    }
    bar.finish();
    // Results for a tenth of the events, settling their bets through the hub's settler. A
    // result is final only when two sources agree, so each comes from two.
    for e in 0..EVENTS / 10 {
        for source in ["bench-a", "bench-b"] {
            let st = state.clone();
            let t = UnixMillis(w.end_ms - 30 * 60_000);
            tokio::task::spawn_blocking(move || {
                st.submit_result_blocking(
                    &id(EventId::new(format!("e-{e}"))),
                    FinalScore { home: 2, away: 1 },
                    source,
                    t,
                )
            })
            .await??;
        }
    }
    let csv = statement(&refs);
    state.import_statement_blocking(
        "adyen",
        &id(Jurisdiction::new("GB")),
        csv.as_bytes(),
        UnixMillis(w.end_ms),
    )?;
    let store = AuditStore::Local(LocalWormStore::open(dir.join("worm"))?);
    state.cut_due_segments(true).await?;
    loop {
        let r = drain_once(
            &state,
            &store,
            Backoff {
                base_ms: 0,
                max_ms: 0,
            },
        )
        .await?;
        if r.uploaded == 0 {
            break;
        }
    }
    let stats = state.stats_view()?;
    let (records, settled) = (stats.records, stats.settled);
    anyhow::ensure!(settled > 0, "no bet was settled in the setup");
    println!(
        "setup done in {:.1} s: {records} records, {settled} bets settled by the hub, {} statement lines",
        t_setup.elapsed().as_secs_f64(),
        refs.len()
    );

    let now = w.end_ms + 10 * 60_000;
    let th = Thresholds::default();
    let quiet: Arc<dyn Progress + Send> = Arc::new(Quiet);
    let t = Instant::now();
    let s1 = reconcile_hour(
        &state,
        None,
        hour,
        Trigger::OnDemand,
        th,
        now,
        quiet.clone(),
    )
    .await?;
    let db_only = t.elapsed();
    let t = Instant::now();
    let s2 = reconcile_hour(
        &state,
        Some(&store),
        hour,
        Trigger::OnDemand,
        th,
        now,
        Bar::new(),
    )
    .await?;
    let with_objects = t.elapsed();
    println!("{s2}");
    for s in [&s1, &s2] {
        let r = &s.reports[0];
        if r.worst.is_some() {
            anyhow::bail!(
                "a correct data set must reconcile clean, but report #{} found {} minor, {} major, {} critical",
                r.id,
                r.minor,
                r.major,
                r.critical
            );
        }
    }
    let per_s = |d: std::time::Duration| s1.records_read as f64 / d.as_secs_f64();
    println!(
        "RESULT reconcile {} records, five checks, database only:          {:.2} s ({:.0} records/s)",
        s1.records_read,
        db_only.as_secs_f64(),
        per_s(db_only)
    );
    let v = s2.audit_verified.clone().unwrap_or_default();
    println!(
        "RESULT reconcile {} records, five checks + re-read {} audit objects ({} MB): {:.2} s ({:.0} records/s)",
        s2.records_read,
        v.objects,
        v.bytes / 1_000_000,
        with_objects.as_secs_f64(),
        per_s(with_objects)
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let base = std::env::var_os("TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("outpost-bench-reconcile-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
