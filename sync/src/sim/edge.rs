//! A simulated edge node's storage and shell. State is split explicitly into what is on disk
//! (`*_durable` prefixes) and what lives only in memory (the open commit group, downstream
//! records applied but not yet flushed, the chain writer): a crash keeps exactly the durable
//! prefixes, as the real edge's sled log does after kill -9.

use super::payload;
use outpost_core::ids::{LogId, NodeId, Seq};
use outpost_core::log::{
    ChainHead, ChainVerifier, ChainWriter, Frame, NodeKey, PublicKey, RecordKind,
};
use outpost_core::time::UnixMillis;

pub(crate) struct SimEdge {
    pub(crate) node: NodeId,
    pub(crate) log_id: LogId,
    pub(crate) key: NodeKey,
    /// The edge's own log; `log[..log_durable]` is on disk, the rest is the open commit group.
    pub(crate) log: Vec<Frame>,
    pub(crate) log_durable: usize,
    /// Downstream records applied, in order; `down[..down_durable]` on disk.
    pub(crate) down: Vec<Frame>,
    pub(crate) down_durable: usize,
    /// Wallet credits from settlements, `(bet id, payout)`; `wallet[..wallet_durable]` on disk.
    pub(crate) wallet: Vec<(String, i64)>,
    pub(crate) wallet_durable: usize,
    /// Volatile: continues the log.
    writer: ChainWriter,
    /// Volatile: downstream head applied in memory by connection `.0`, acknowledged once durable.
    pub(crate) pending_down_ack: Option<(u64, Seq)>,
    pub(crate) up: bool,
    pub(crate) restart_at: UnixMillis,
    pub(crate) crashes: u64,
    /// Deliberate bug for the checker's own test: wallet credits hit the disk before the
    /// downstream position that says they were applied (two writes instead of one batch).
    pub(crate) bug_wallet_not_atomic: bool,
}

pub(crate) fn head_of(frames: &[Frame]) -> ChainHead {
    match frames.last() {
        None => ChainHead::EMPTY,
        Some(f) => {
            let b = f.parse_body().expect("frames built by the simulator parse");
            ChainHead {
                seq: b.seq,
                hash: f.hash(),
                timestamp: b.timestamp,
            }
        }
    }
}

impl SimEdge {
    pub(crate) fn new(index: usize) -> SimEdge {
        let node = NodeId::new(format!("gb-{}", index + 1)).expect("valid node id");
        let log_id = LogId::new(node.as_str()).expect("valid log id");
        SimEdge {
            key: NodeKey::from_seed([index as u8 + 1; 32]),
            writer: ChainWriter::new(log_id.clone(), ChainHead::EMPTY),
            node,
            log_id,
            log: Vec::new(),
            log_durable: 0,
            down: Vec::new(),
            down_durable: 0,
            wallet: Vec::new(),
            wallet_durable: 0,
            pending_down_ack: None,
            up: true,
            restart_at: UnixMillis(0),
            crashes: 0,
            bug_wallet_not_atomic: false,
        }
    }

    pub(crate) fn durable_head(&self) -> Seq {
        Seq(self.log_durable as u64)
    }

    /// Accept `n` bets into the open commit group (not yet durable, so not yet acknowledged
    /// to the punter and not yet visible to replication).
    pub(crate) fn place_bets(&mut self, n: u64, stake_minor: i64, now: UnixMillis) {
        for _ in 0..n {
            let seq = self.writer.head().seq.next();
            let bet = format!("{}-{}", self.node, seq);
            let f = self
                .writer
                .append(RecordKind::BetPlaced, now, payload::bet(&bet, stake_minor));
            self.log.push(f);
        }
    }

    /// Verify downstream frames (whole seal groups continuing the applied head) against the
    /// hub's key and apply them in memory: record the settlement, credit the wallet, log the
    /// wallet movement. Returns the new applied head, to acknowledge once durable.
    pub(crate) fn apply_down(
        &mut self,
        frames: Vec<Frame>,
        hub_key: &PublicKey,
        now: UnixMillis,
    ) -> Result<Seq, String> {
        let down_log = LogId::new(format!("hub/{}", self.node)).expect("valid log id");
        let mut v = ChainVerifier::new(down_log, *hub_key, head_of(&self.down));
        let mut released = Vec::new();
        for f in frames {
            released.extend(
                v.push(f)
                    .map_err(|e| format!("downstream verification: {e}"))?,
            );
        }
        if v.pending_len() > 0 {
            return Err("downstream batch does not end on a seal".into());
        }
        for (frame, body) in released {
            let (bet, payout) = payload::settlement(&body.payload)
                .ok_or_else(|| format!("unreadable settlement at down seq {}", body.seq))?;
            self.down.push(frame);
            self.wallet.push((bet.clone(), payout));
            let f = self.writer.append(
                RecordKind::WalletMovement,
                now,
                payload::credit(&bet, payout),
            );
            self.log.push(f);
        }
        if self.bug_wallet_not_atomic {
            self.wallet_durable = self.wallet.len();
        }
        Ok(Seq(self.down.len() as u64))
    }

    /// Whether anything in memory awaits a flush.
    pub(crate) fn dirty(&self) -> bool {
        self.log.len() > self.log_durable || self.down.len() > self.down_durable
    }

    /// Group commit: seal the open group and make everything durable in one atomic write.
    /// Returns the downstream head to acknowledge, if one was waiting for this flush.
    pub(crate) fn flush(&mut self) -> Option<(u64, Seq)> {
        let open_group = self.log.len() > self.log_durable;
        if let Some(last) = self.log.last_mut()
            && open_group
            && last.seal.is_none()
        {
            ChainWriter::seal(last, &self.key);
        }
        self.log_durable = self.log.len();
        self.down_durable = self.down.len();
        self.wallet_durable = self.wallet.len();
        self.pending_down_ack.take()
    }

    /// kill -9: memory is gone, the disk keeps its durable prefixes.
    pub(crate) fn crash(&mut self, restart_at: UnixMillis) {
        self.log.truncate(self.log_durable);
        self.down.truncate(self.down_durable);
        self.wallet.truncate(self.wallet_durable);
        self.pending_down_ack = None;
        self.up = false;
        self.restart_at = restart_at;
        self.crashes += 1;
    }

    /// Recovery: rebuild the volatile state from the disk.
    pub(crate) fn restart(&mut self) {
        self.writer = ChainWriter::new(self.log_id.clone(), head_of(&self.log));
        self.up = true;
    }
}
