//! The simulated region hub's storage and shell: per node, the committed upstream log (a
//! commit is durable once it completes; until then it is lost in a crash), and the downstream
//! settlement chain with a durable prefix. Settlement is idempotent the way the real hub's is:
//! which bets are settled is derived from the chain itself.

use super::edge::head_of;
use super::payload;
use outpost_core::ids::{LogId, NodeId, Seq};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordBody, RecordKind};
use outpost_core::time::UnixMillis;
use std::collections::{HashSet, VecDeque};

/// A commit in progress (the real hub awaits an SQLite transaction).
pub(crate) struct PendingCommit {
    pub(crate) conn: u64,
    pub(crate) records: Vec<(Frame, RecordBody)>,
    pub(crate) done_at: UnixMillis,
}

pub(crate) struct HubNode {
    pub(crate) node: NodeId,
    /// Upstream records durably committed (all of them are on disk).
    pub(crate) up: Vec<Frame>,
    /// Volatile.
    pub(crate) pending: Option<PendingCommit>,
    /// Downstream chain `hub/{node}`; `down[..down_durable]` on disk.
    pub(crate) down: Vec<Frame>,
    pub(crate) down_durable: usize,
    /// Volatile, rebuilt from the disk on restart.
    writer: ChainWriter,
    settled: HashSet<String>,
    unsettled: VecDeque<String>,
    /// Informational (the real hub writes it best-effort).
    pub(crate) down_acked: Seq,
}

pub(crate) struct SimHub {
    pub(crate) key: NodeKey,
    pub(crate) nodes: Vec<HubNode>,
    pub(crate) up: bool,
    pub(crate) restart_at: UnixMillis,
    pub(crate) crashes: u64,
    /// Deliberate bug for the checker's own test: after a restart the hub tells the next
    /// session of each node a durable head one record short of the truth (e.g. a head cache
    /// persisted before the commit), so the edge resends a record the hub already has.
    pub(crate) bug_stale_head: bool,
    stale: Vec<bool>,
}

impl HubNode {
    fn new(node: NodeId) -> HubNode {
        let log = LogId::new(format!("hub/{node}")).expect("valid log id");
        HubNode {
            node,
            up: Vec::new(),
            pending: None,
            down: Vec::new(),
            down_durable: 0,
            writer: ChainWriter::new(log, ChainHead::EMPTY),
            settled: HashSet::new(),
            unsettled: VecDeque::new(),
            down_acked: Seq::ZERO,
        }
    }

    /// Settlements waiting to be issued.
    pub(crate) fn unsettled(&self) -> usize {
        self.unsettled.len()
    }

    fn rebuild(&mut self) {
        let log = LogId::new(format!("hub/{}", self.node)).expect("valid log id");
        self.writer = ChainWriter::new(log, head_of(&self.down));
        self.settled = self
            .down
            .iter()
            .filter_map(|f| payload::settlement(&f.parse_body().ok()?.payload).map(|s| s.0))
            .collect();
        self.unsettled = self
            .up
            .iter()
            .filter_map(|f| {
                let b = f.parse_body().ok()?;
                (b.kind == RecordKind::BetPlaced).then(|| payload::bet_id(&b.payload))?
            })
            .filter(|b| !self.settled.contains(b))
            .collect();
    }
}

impl SimHub {
    pub(crate) fn new(nodes: &[NodeId]) -> SimHub {
        SimHub {
            key: NodeKey::from_seed([200; 32]),
            nodes: nodes.iter().cloned().map(HubNode::new).collect(),
            up: true,
            restart_at: UnixMillis(0),
            crashes: 0,
            bug_stale_head: false,
            stale: vec![false; nodes.len()],
        }
    }

    /// The durable upstream head a new session for node `i` starts from.
    pub(crate) fn session_head(&mut self, i: usize) -> ChainHead {
        let up = &self.nodes[i].up;
        if std::mem::take(&mut self.stale[i]) && !up.is_empty() {
            return head_of(&up[..up.len() - 1]);
        }
        head_of(up)
    }

    /// Complete node `i`'s commit in progress: the records become durable. Returns the
    /// connection that asked for it and the new durable head.
    pub(crate) fn finish_commit(&mut self, i: usize) -> Option<(u64, Seq)> {
        let n = &mut self.nodes[i];
        let p = n.pending.take()?;
        for (frame, body) in p.records {
            if body.kind == RecordKind::BetPlaced
                && let Some(bet) = payload::bet_id(&body.payload)
                && !n.settled.contains(&bet)
            {
                n.unsettled.push_back(bet);
            }
            n.up.push(frame);
        }
        Some((p.conn, Seq(n.up.len() as u64)))
    }

    /// Issue settlements for up to `count` committed bets of node `i` (in memory until flushed).
    pub(crate) fn settle(&mut self, i: usize, count: usize, now: UnixMillis) {
        let n = &mut self.nodes[i];
        for _ in 0..count {
            let Some(bet) = n.unsettled.pop_front() else {
                return;
            };
            if !n.settled.insert(bet.clone()) {
                continue;
            }
            // Deterministic result: odd bets win double their (fixed) stake, even ones lose.
            let payout = if bet.len() % 2 == 1 { 200 } else { 0 };
            let f = n.writer.append(
                RecordKind::HubSettlement,
                now,
                payload::settlement_payload(&bet, payout),
            );
            n.down.push(f);
        }
    }

    /// Flush node `i`'s downstream chain (sealing the open group). Returns the durable head.
    pub(crate) fn flush_down(&mut self, i: usize) -> Seq {
        let n = &mut self.nodes[i];
        if n.down.len() > n.down_durable
            && let Some(last) = n.down.last_mut()
            && last.seal.is_none()
        {
            ChainWriter::seal(last, &self.key);
        }
        n.down_durable = n.down.len();
        Seq(n.down_durable as u64)
    }

    pub(crate) fn crash(&mut self, restart_at: UnixMillis) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.pending = None;
            n.down.truncate(n.down_durable);
            n.down_acked = Seq::ZERO;
            self.stale[i] = self.bug_stale_head;
        }
        self.up = false;
        self.restart_at = restart_at;
        self.crashes += 1;
    }

    pub(crate) fn restart(&mut self) {
        for n in &mut self.nodes {
            n.rebuild();
        }
        self.up = true;
    }
}
