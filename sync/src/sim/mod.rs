//! Deterministic simulation of replication under faults (issue 7).
//!
//! Edge nodes and the hub run in one process, driven by the real sans-IO session state
//! machines ([`EdgeSession`], [`HubSession`]) and the real codec, under a seeded RNG and a
//! fake clock. Every run:
//! - the edges keep taking bets (group commit: a bet is durable, hence visible to replication,
//!   only after its group is flushed) and apply the settlements that come down;
//! - the hub commits what arrives (a commit takes time and is lost if the hub crashes first)
//!   and issues settlements for committed bets;
//! - the network ([`net`]) loses, duplicates, reorders and delays messages, resets
//!   connections and partitions links;
//! - either side crashes (kill -9) and restarts from its **last durable state**: each store
//!   models durable and volatile state explicitly ([`edge`], [`hub`]).
//!
//! After every step [`check`] verifies the invariants; once the edges have made their records
//! durable the faults stop and the run must converge, then the final checks run (including
//! full chain verification). A failure names the seed and a one-line replay command.

mod check;
mod edge;
mod hub;
mod net;
mod payload;
mod rng;
#[cfg(test)]
mod tests;

use crate::edge_session::{EdgeAction, EdgeSession};
use crate::hub_session::{HubAction, HubSession, NodeRegistration};
use crate::session::SessionConfig;
use edge::SimEdge;
use hub::{PendingCommit, SimHub};
use net::{Conn, NetFaults, NetStats, Pipe};
use outpost_core::ids::{Jurisdiction, Seq};
use outpost_core::time::UnixMillis;
use rng::Rng;

/// A deliberate bug to inject, proving the checker catches what it claims to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bug {
    /// After a restart the hub resumes each node one record short of its durable head, so it
    /// commits (applies) a record twice.
    HubStaleHeadAfterRestart,
    /// The edge writes wallet credits to disk before the downstream position that records
    /// them as applied, so a crash in between credits a settlement twice.
    EdgeWalletNotAtomic,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SimConfig {
    pub(crate) bug: Option<Bug>,
    /// Print every fault and session error as it happens.
    pub(crate) trace: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SimStats {
    pub(crate) net: NetStats,
    pub(crate) sessions: u64,
    pub(crate) session_errors: u64,
    pub(crate) edge_crashes: u64,
    pub(crate) hub_crashes: u64,
    pub(crate) partitions: u64,
    pub(crate) resets: u64,
    pub(crate) records: u64,
    pub(crate) settlements: u64,
    pub(crate) max_lag_ms: i64,
    pub(crate) sim_ms: i64,
    pub(crate) steps: u64,
}

impl SimStats {
    pub(crate) fn add(&mut self, o: &SimStats) {
        let n = &mut self.net;
        n.sent += o.net.sent;
        n.lost += o.net.lost;
        n.duplicated += o.net.duplicated;
        n.reordered += o.net.reordered;
        n.delayed += o.net.delayed;
        n.partitioned += o.net.partitioned;
        self.sessions += o.sessions;
        self.session_errors += o.session_errors;
        self.edge_crashes += o.edge_crashes;
        self.hub_crashes += o.hub_crashes;
        self.partitions += o.partitions;
        self.resets += o.resets;
        self.records += o.records;
        self.settlements += o.settlements;
        self.max_lag_ms = self.max_lag_ms.max(o.max_lag_ms);
        self.sim_ms += o.sim_ms;
        self.steps += o.steps;
    }
}

#[derive(Debug)]
pub(crate) struct SimFailure {
    pub(crate) seed: u64,
    pub(crate) step: u64,
    pub(crate) at_ms: i64,
    pub(crate) message: String,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}: step {} (t={} ms): {}\n  replay: OUTPOST_SIM_SEED={} cargo test -p outpost-sync --lib sim::tests::seeds -- --nocapture",
            self.seed, self.step, self.at_ms, self.message, self.seed
        )
    }
}

/// Per-run fault rates and sizes, drawn from the seed.
struct Params {
    target_records: usize,
    net: NetFaults,
    edge_crash: u64,
    hub_crash: u64,
    partition: u64,
    reset: u64,
    session: SessionConfig,
}

struct Link {
    conn: Option<Conn>,
    next_attempt: UnixMillis,
    backoff_ms: i64,
    partitioned_until: UnixMillis,
}

/// Upper bound on steps: far beyond what a converging run needs.
const MAX_STEPS: u64 = 400_000;
const T0: UnixMillis = UnixMillis(1_767_225_600_000);

pub(crate) struct World {
    rng: Rng,
    cfg: SimConfig,
    p: Params,
    now: UnixMillis,
    step: u64,
    healing: bool,
    next_conn: u64,
    pub(crate) edges: Vec<SimEdge>,
    pub(crate) hub: SimHub,
    links: Vec<Link>,
    stats: SimStats,
}

/// Run one seed to convergence, checking the invariants after every step.
pub(crate) fn run(seed: u64, cfg: SimConfig) -> Result<SimStats, SimFailure> {
    let mut w = World::new(seed, cfg);
    let mut chk = check::Checker::new(w.edges.len());
    let fail = |w: &World, message: String| SimFailure {
        seed,
        step: w.step,
        at_ms: w.now.0 - T0.0,
        message,
    };
    loop {
        if let Err(e) = w.step() {
            return Err(fail(&w, e));
        }
        if let Err(e) = chk.step(&w) {
            return Err(fail(&w, format!("invariant violated: {e}")));
        }
        if w.healing && w.converged() {
            if let Err(e) = chk.finish(&w) {
                return Err(fail(&w, format!("final check failed: {e}")));
            }
            w.stats.sim_ms = w.now.0 - T0.0;
            w.stats.steps = w.step;
            w.stats.records = w.hub.nodes.iter().map(|n| n.up.len() as u64).sum();
            w.stats.settlements = w.hub.nodes.iter().map(|n| n.down.len() as u64).sum();
            return Ok(w.stats);
        }
        if w.step >= MAX_STEPS {
            let state = w.summary();
            return Err(fail(
                &w,
                format!("no convergence after the faults stopped: {state}"),
            ));
        }
    }
}

impl World {
    fn new(seed: u64, cfg: SimConfig) -> World {
        let mut rng = Rng::new(seed);
        let nodes = rng.range(1, 3) as usize;
        let p = Params {
            target_records: rng.range(20, 80) as usize,
            net: NetFaults {
                loss: rng.range(0, 2000),
                duplicate: rng.range(0, 2000),
                reorder: rng.range(0, 2000),
                spike: rng.range(0, 20_000),
            },
            edge_crash: rng.range(0, 500),
            hub_crash: rng.range(0, 300),
            partition: rng.range(0, 400),
            reset: rng.range(0, 300),
            session: SessionConfig {
                window: rng.range(2, 64) as usize,
                batch_records: rng.range(1, 16) as usize,
                batch_bytes: rng.range(200, 4000) as usize,
                heartbeat_ms: rng.range(100, 300) as i64,
                peer_timeout_ms: rng.range(1000, 2500) as i64,
                max_unsealed: 1000,
            },
        };
        let mut edges: Vec<SimEdge> = (0..nodes).map(SimEdge::new).collect();
        for e in &mut edges {
            e.bug_wallet_not_atomic = cfg.bug == Some(Bug::EdgeWalletNotAtomic);
        }
        let mut hub = SimHub::new(&edges.iter().map(|e| e.node.clone()).collect::<Vec<_>>());
        hub.bug_stale_head = cfg.bug == Some(Bug::HubStaleHeadAfterRestart);
        let links = (0..nodes)
            .map(|_| Link {
                conn: None,
                next_attempt: T0,
                backoff_ms: 50,
                partitioned_until: T0,
            })
            .collect();
        World {
            rng,
            cfg,
            p,
            now: T0,
            step: 0,
            healing: false,
            next_conn: 1,
            edges,
            hub,
            links,
            stats: SimStats::default(),
        }
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.cfg.trace {
            eprintln!(
                "[t={:>6} ms #{:>6}] {}",
                self.now.0 - T0.0,
                self.step,
                what()
            );
        }
    }

    fn drop_conn(&mut self, i: usize, why: &str) {
        if let Some(c) = self.links[i].conn.take() {
            let (id, node) = (c.id, self.edges[i].node.clone());
            self.trace(|| format!("{node}: connection {id} down: {why}"));
            self.links[i].next_attempt = UnixMillis(self.now.0 + self.links[i].backoff_ms);
        }
    }

    fn step(&mut self) -> Result<(), String> {
        self.step += 1;
        self.now = UnixMillis(self.now.0 + self.rng.range(1, 4) as i64);
        let now = self.now;
        let n = self.edges.len();

        if !self.healing {
            self.inject_faults();
        }
        for i in 0..n {
            let e = &mut self.edges[i];
            if !e.up && now >= e.restart_at {
                e.restart();
                let node = e.node.clone();
                self.trace(|| format!("{node}: restarted from durable state"));
            }
        }
        if !self.hub.up && now >= self.hub.restart_at {
            self.hub.restart();
            self.trace(|| "hub: restarted from durable state".into());
        }

        // The edges take bets and flush commit groups.
        for i in 0..n {
            if !self.edges[i].up {
                continue;
            }
            if !self.healing
                && self.edges[i].log_durable < self.p.target_records
                && self.rng.chance(15_000)
            {
                let k = self.rng.range(1, 4);
                self.edges[i].place_bets(k, 100, now);
            }
            if self.edges[i].dirty() && self.rng.chance(250_000) {
                let ack = self.edges[i].flush();
                if let Some((cid, seq)) = ack
                    && let Some(c) = self.links[i].conn.as_mut()
                    && c.id == cid
                {
                    let _ = c.edge.down_applied(seq);
                }
            }
        }

        // The hub completes commits, settles bets and flushes its downstream chains.
        if self.hub.up {
            for i in 0..n {
                if self.hub.nodes[i]
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.done_at <= now)
                    && let Some((cid, seq)) = self.hub.finish_commit(i)
                    && let Some(c) = self.links[i].conn.as_mut()
                    && c.id == cid
                {
                    let _ = c.hub.committed(seq);
                }
            }
            let settle_rate = if self.healing { 200_000 } else { 20_000 };
            if self.rng.chance(settle_rate) {
                let i = self.rng.range(0, n as u64 - 1) as usize;
                let k = self.rng.range(1, 3) as usize;
                self.hub.settle(i, k, now);
            }
            for i in 0..n {
                let hn = &self.hub.nodes[i];
                if hn.down.len() > hn.down_durable && self.rng.chance(250_000) {
                    let head = self.hub.flush_down(i);
                    if let Some(c) = self.links[i].conn.as_mut() {
                        c.hub.down_available(head);
                    }
                }
            }
        }

        for i in 0..n {
            self.maybe_connect(i);
            self.drive(i)?;
        }

        if !self.healing
            && self
                .edges
                .iter()
                .all(|e| e.log_durable >= self.p.target_records)
        {
            self.healing = true;
            for l in &mut self.links {
                l.partitioned_until = now;
            }
            self.trace(|| "all records made; faults stop, waiting for convergence".into());
        }
        Ok(())
    }

    fn inject_faults(&mut self) {
        let now = self.now;
        let n = self.edges.len();
        for i in 0..n {
            if self.edges[i].up && self.rng.chance(self.p.edge_crash) {
                self.drop_conn(i, "edge crashed");
                let at = UnixMillis(now.0 + self.rng.range(20, 1500) as i64);
                self.edges[i].crash(at);
                self.stats.edge_crashes += 1;
                let node = self.edges[i].node.clone();
                self.trace(|| format!("{node}: CRASH (kill -9)"));
            }
        }
        if self.hub.up && self.rng.chance(self.p.hub_crash) {
            for i in 0..n {
                self.drop_conn(i, "hub crashed");
            }
            let at = UnixMillis(now.0 + self.rng.range(20, 2000) as i64);
            self.hub.crash(at);
            self.stats.hub_crashes += 1;
            self.trace(|| "hub: CRASH (kill -9)".into());
        }
        if self.rng.chance(self.p.partition) {
            let until = UnixMillis(now.0 + self.rng.range(300, 6000) as i64);
            let all = self.rng.chance(500_000);
            let one = self.rng.range(0, n as u64 - 1) as usize;
            for (i, l) in self.links.iter_mut().enumerate() {
                if all || i == one {
                    l.partitioned_until = l.partitioned_until.max(until);
                }
            }
            self.stats.partitions += 1;
            self.trace(|| {
                format!(
                    "PARTITION {} until t={} ms",
                    if all {
                        "all links".to_string()
                    } else {
                        format!("link {one}")
                    },
                    until.0 - T0.0
                )
            });
        }
        for i in 0..n {
            if self.links[i].conn.is_some() && self.rng.chance(self.p.reset) {
                self.stats.resets += 1;
                self.drop_conn(i, "connection reset");
            }
        }
    }

    fn maybe_connect(&mut self, i: usize) {
        let now = self.now;
        let l = &self.links[i];
        let e = &self.edges[i];
        if l.conn.is_some() || now < l.next_attempt || !e.up || !self.hub.up {
            return;
        }
        // The shells serialise: the hub finishes a node's commit in progress, and the edge its
        // downstream apply, before a new session starts from the durable positions.
        if self.hub.nodes[i].pending.is_some() || e.down.len() > e.down_durable {
            return;
        }
        if now < l.partitioned_until {
            let l = &mut self.links[i];
            l.next_attempt = UnixMillis(now.0 + l.backoff_ms);
            l.backoff_ms = (l.backoff_ms * 2).min(1000);
            return;
        }
        let cfg = self.p.session.clone();
        let node = e.node.clone();
        let edge = EdgeSession::new(
            cfg.clone(),
            node.clone(),
            Jurisdiction::new("GB").expect("valid"),
            e.durable_head(),
            Seq(e.down_durable as u64),
            now,
        );
        let reg = NodeRegistration {
            jurisdiction: Jurisdiction::new("GB").expect("valid"),
            public_key: e.key.public(),
        };
        let head = self.hub.session_head(i);
        let hub = HubSession::new(
            cfg,
            node.clone(),
            Some(reg),
            head,
            Seq(self.hub.nodes[i].down_durable as u64),
            now,
        );
        let id = self.next_conn;
        self.next_conn += 1;
        self.stats.sessions += 1;
        self.links[i].backoff_ms = 50;
        self.links[i].conn = Some(Conn {
            id,
            edge,
            hub,
            to_hub: Pipe::default(),
            to_edge: Pipe::default(),
        });
        self.trace(|| {
            format!(
                "{node}: connection {id} opened (edge head {}, hub head {})",
                self.edges[i].durable_head(),
                head.seq
            )
        });
    }

    /// Run both shells of node `i`'s connection for one step.
    fn drive(&mut self, i: usize) -> Result<(), String> {
        let Some(mut c) = self.links[i].conn.take() else {
            return Ok(());
        };
        let now = self.now;
        for m in c.to_hub.due(now) {
            let _ = c.hub.handle_message(m, now);
        }
        for m in c.to_edge.due(now) {
            let _ = c.edge.handle_message(m, now);
        }

        // Hub shell.
        let hn = &mut self.hub.nodes[i];
        while let Some(a) = c.hub.poll_action() {
            match a {
                HubAction::Commit { records } => {
                    if c.hub.is_closed() {
                        continue;
                    }
                    match hn.pending.as_mut() {
                        // Still writing the previous batch: this one joins the group commit.
                        Some(p) => p.records.extend(records),
                        None => {
                            hn.pending = Some(PendingCommit {
                                conn: c.id,
                                records,
                                done_at: UnixMillis(now.0 + self.rng.range(0, 40) as i64),
                            })
                        }
                    }
                }
                HubAction::Flag { reason } => {
                    return Err(format!("the hub flagged honest node {}: {reason}", hn.node));
                }
                HubAction::Touch { lag_ms, .. } => {
                    self.stats.max_lag_ms = self.stats.max_lag_ms.max(lag_ms);
                }
                HubAction::ReadDown { after, max } => {
                    let from = after.0 as usize;
                    let to = (from + max).min(hn.down_durable);
                    let _ = c.hub.down_read(hn.down[from.min(to)..to].to_vec());
                }
                HubAction::DownAcked { applied } => hn.down_acked = applied,
            }
        }

        // Edge shell.
        let e = &mut self.edges[i];
        while let Some(EdgeAction::ApplyDown(frames)) = c.edge.poll_action() {
            if c.edge.is_closed() {
                continue;
            }
            let applied = e
                .apply_down(frames, &self.hub.key.public(), now)
                .map_err(|err| {
                    format!(
                        "{}: the edge refused the hub's downstream records: {err}",
                        e.node
                    )
                })?;
            e.pending_down_ack = Some((c.id, applied));
        }
        c.edge.on_local_durable(e.durable_head());
        while let Some((from, max)) = c.edge.want_records() {
            let from = from.0 as usize - 1;
            let to = (from + max).min(e.log_durable);
            if from >= to {
                break;
            }
            if c.edge.records_read(e.log[from..to].to_vec()).is_err() {
                break;
            }
        }

        for t in [c.edge.poll_timeout(), c.hub.poll_timeout()]
            .into_iter()
            .enumerate()
        {
            if let (k, Some(at)) = t
                && now >= at
            {
                let _ = if k == 0 {
                    c.edge.handle_timeout(now)
                } else {
                    c.hub.handle_timeout(now)
                };
            }
        }

        let partitioned = now < self.links[i].partitioned_until;
        while let Some(m) = c.edge.poll_transmit() {
            c.to_hub.send(
                &m,
                now,
                partitioned,
                &self.p.net,
                &mut self.rng,
                &mut self.stats.net,
            );
        }
        while let Some(m) = c.hub.poll_transmit() {
            c.to_edge.send(
                &m,
                now,
                partitioned,
                &self.p.net,
                &mut self.rng,
                &mut self.stats.net,
            );
        }

        if c.edge.is_closed() || c.hub.is_closed() {
            self.stats.session_errors += 1;
            let why = c
                .edge
                .error()
                .or(c.hub.error())
                .map(|e| e.to_string())
                .unwrap_or_default();
            self.links[i].conn = Some(c);
            self.drop_conn(i, &why);
        } else {
            self.links[i].conn = Some(c);
        }
        Ok(())
    }

    fn converged(&self) -> bool {
        self.hub.up
            && self
                .edges
                .iter()
                .zip(&self.hub.nodes)
                .zip(&self.links)
                .all(|((e, h), l)| {
                    e.up && !e.dirty()
                        && h.pending.is_none()
                        && h.up.len() == e.log_durable
                        && h.unsettled() == 0
                        && h.down_durable == h.down.len()
                        && e.down_durable == h.down.len()
                        && h.down_acked.0 as usize == h.down.len()
                        && l.conn
                            .as_ref()
                            .is_some_and(|c| c.edge.acked().0 as usize == e.log_durable)
                })
    }

    fn summary(&self) -> String {
        let nodes: Vec<String> = self
            .edges
            .iter()
            .zip(&self.hub.nodes)
            .map(|(e, h)| {
                format!(
                    "{}: edge durable {} (memory {}), hub committed {}, unsettled {}, down {} / durable {}, edge applied {}, down acked {}",
                    e.node,
                    e.log_durable,
                    e.log.len(),
                    h.up.len(),
                    h.unsettled(),
                    h.down.len(),
                    h.down_durable,
                    e.down_durable,
                    h.down_acked
                )
            })
            .collect();
        nodes.join("; ")
    }
}
