//! The invariants, checked after every simulation step (incrementally, so a run stays cheap)
//! and once more in full at the end.
//!
//! After every step, per node:
//! - upstream: the hub's committed log is exactly a prefix of the edge's **durable** log, byte
//!   for byte: every record reaches the hub at most once, in order, and nothing the edge had
//!   not made durable ever leaves it;
//! - the edge never sees an acknowledgement for more than the hub has durably committed;
//! - downstream: the edge's applied settlements are exactly a prefix of the hub's durable
//!   chain (each settlement applied at most once, in order);
//! - wallet: exactly one wallet credit per applied settlement, no bet credited twice;
//! - the hub settles each bet at most once, and only bets it has committed;
//! - the hub never records a downstream acknowledgement beyond what the edge made durable.
//!
//! At the end (after the faults stop and the run converges): both chains verify from genesis
//! with the right keys, every durable record reached the hub (exactly once, in order), every
//! committed bet was settled exactly once and every settlement reached the edge exactly once.
//! [`Checker::heads`] is the hook for signed tree heads / checkpoints (issue 7, part A).

use super::World;
use super::payload;
use outpost_core::ids::LogId;
use outpost_core::log::{ChainHead, Frame, RecordKind, verify_frames};
use std::collections::HashSet;

pub(crate) struct Checker {
    nodes: Vec<NodeChecks>,
}

/// Per node: how far each list has been checked, and what the checked prefixes contain.
/// Lists that only grow are checked once per entry; lists a crash can shrink are rechecked
/// from the start when they do.
#[derive(Default)]
struct NodeChecks {
    up_checked: usize,
    committed_bets: HashSet<String>,
    hub_down_checked: usize,
    hub_settled: HashSet<String>,
    edge_down_checked: usize,
    wallet_checked: usize,
    credited: HashSet<String>,
}

fn seq_of(f: &Frame) -> u64 {
    f.parse_body().map_or(0, |b| b.seq.0)
}

impl Checker {
    pub(crate) fn new(nodes: usize) -> Checker {
        Checker {
            nodes: (0..nodes).map(|_| NodeChecks::default()).collect(),
        }
    }

    pub(crate) fn step(&mut self, w: &World) -> Result<(), String> {
        for (i, (e, h)) in w.edges.iter().zip(&w.hub.nodes).enumerate() {
            let node = &e.node;
            let c = &mut self.nodes[i];
            // Upstream: exactly once, in order, durable only. The hub's committed log never
            // shrinks and the edge's durable log never changes, so a checked prefix stays valid.
            if h.up.len() > e.log_durable {
                let extra = &h.up[e.log_durable];
                return Err(format!(
                    "{node}: the hub committed {} records but the edge made only {} durable (hub position {} holds seq {}{})",
                    h.up.len(),
                    e.log_durable,
                    e.log_durable + 1,
                    seq_of(extra),
                    if (seq_of(extra) as usize) <= e.log_durable {
                        ": a record reached the hub twice"
                    } else {
                        ""
                    }
                ));
            }
            for k in c.up_checked..h.up.len() {
                if h.up[k] != e.log[k] {
                    let got = seq_of(&h.up[k]);
                    let what = if got <= k as u64 {
                        format!("seq {got} reached the hub twice")
                    } else {
                        format!("seq {got} arrived out of order")
                    };
                    return Err(format!(
                        "{node}: hub's upstream record #{} differs from the edge's: {what}",
                        k + 1
                    ));
                }
                if let Ok(b) = h.up[k].parse_body()
                    && b.kind == RecordKind::BetPlaced
                    && let Some(bet) = payload::bet_id(&b.payload)
                {
                    c.committed_bets.insert(bet);
                }
            }
            c.up_checked = h.up.len();
            if let Some(conn) = &w.links[i].conn
                && conn.edge.acked().0 as usize > h.up.len()
            {
                return Err(format!(
                    "{node}: the edge holds an acknowledgement for seq {} but the hub has durably committed only {}",
                    conn.edge.acked(),
                    h.up.len()
                ));
            }

            // The hub settles each bet at most once, and only committed bets.
            if h.down.len() < c.hub_down_checked {
                c.hub_down_checked = 0;
                c.hub_settled.clear();
            }
            for f in &h.down[c.hub_down_checked..] {
                let body = f.parse_body().map_err(|x| x.to_string())?;
                let (bet, _) = payload::settlement(&body.payload)
                    .ok_or_else(|| format!("{node}: unreadable settlement"))?;
                if !c.committed_bets.contains(&bet) {
                    return Err(format!(
                        "{node}: the hub settled bet {bet} it has not committed"
                    ));
                }
                if !c.hub_settled.insert(bet.clone()) {
                    return Err(format!("{node}: the hub settled bet {bet} twice"));
                }
            }
            c.hub_down_checked = h.down.len();

            // Downstream: exactly once, in order, from the hub's durable chain only.
            if e.down.len() > h.down_durable {
                return Err(format!(
                    "{node}: the edge applied {} settlements but the hub's durable chain has {}",
                    e.down.len(),
                    h.down_durable
                ));
            }
            c.edge_down_checked = c.edge_down_checked.min(e.down.len());
            for k in c.edge_down_checked..e.down.len() {
                if e.down[k] != h.down[k] {
                    return Err(format!(
                        "{node}: applied settlement #{} is not the hub's record #{}: applied twice or out of order",
                        k + 1,
                        k + 1
                    ));
                }
            }
            c.edge_down_checked = e.down.len();
            if h.down_acked.0 as usize > e.down_durable {
                return Err(format!(
                    "{node}: the hub holds a downstream acknowledgement for seq {} but the edge made only {} durable",
                    h.down_acked, e.down_durable
                ));
            }

            // Wallet: one credit per applied settlement, none twice.
            if e.wallet.len() < c.wallet_checked {
                c.wallet_checked = 0;
                c.credited.clear();
            }
            for (bet, _) in &e.wallet[c.wallet_checked..] {
                if !c.credited.insert(bet.clone()) {
                    return Err(format!("{node}: wallet credited twice for bet {bet}"));
                }
            }
            if e.wallet.len() != e.down.len() {
                return Err(format!(
                    "{node}: wallet holds {} settlement credits but the edge has applied {} settlements: a credit without its settlement would be credited again on redelivery",
                    e.wallet.len(),
                    e.down.len()
                ));
            }
            for k in c.wallet_checked..e.wallet.len() {
                let body = e.down[k].parse_body().map_err(|x| x.to_string())?;
                if payload::settlement(&body.payload).as_ref() != Some(&e.wallet[k]) {
                    return Err(format!(
                        "{node}: wallet credit #{} does not match settlement #{}",
                        k + 1,
                        k + 1
                    ));
                }
            }
            c.wallet_checked = e.wallet.len();
        }
        self.heads(w)
    }

    /// Final, full checks once the run has converged.
    pub(crate) fn finish(&mut self, w: &World) -> Result<(), String> {
        self.step(w)?;
        for (e, h) in w.edges.iter().zip(&w.hub.nodes) {
            let node = &e.node;
            if h.up[..] != e.log[..e.log_durable] {
                return Err(format!(
                    "{node}: hub's upstream log is not the edge's durable log"
                ));
            }
            verify_frames(
                &e.log_id,
                &e.key.public(),
                ChainHead::EMPTY,
                h.up.iter().cloned(),
            )
            .map_err(|x| format!("{node}: upstream chain at the hub does not verify: {x}"))?;
            let down_id = LogId::new(format!("hub/{node}")).map_err(|x| x.to_string())?;
            verify_frames(
                &down_id,
                &w.hub.key.public(),
                ChainHead::EMPTY,
                e.down.iter().cloned(),
            )
            .map_err(|x| format!("{node}: downstream chain at the edge does not verify: {x}"))?;
            if e.down != h.down {
                return Err(format!("{node}: not every settlement reached the edge"));
            }
            let bets =
                h.up.iter()
                    .filter(|f| {
                        f.parse_body()
                            .is_ok_and(|b| b.kind == RecordKind::BetPlaced)
                    })
                    .count();
            if bets != h.down.len() {
                return Err(format!(
                    "{node}: {bets} bets committed but {} settled",
                    h.down.len()
                ));
            }
            // Every settlement shows up as exactly one wallet movement in the edge's own log.
            let moves: Vec<String> = e.log[..e.log_durable]
                .iter()
                .filter_map(|f| f.parse_body().ok())
                .filter(|b| b.kind == RecordKind::WalletMovement)
                .filter_map(|b| payload::bet_id(&b.payload))
                .collect();
            let unique: HashSet<&String> = moves.iter().collect();
            if unique.len() != moves.len() || moves.len() != e.down.len() {
                return Err(format!(
                    "{node}: {} wallet movements logged ({} distinct) for {} settlements",
                    moves.len(),
                    unique.len(),
                    e.down.len()
                ));
            }
        }
        self.heads(w)
    }

    /// Hook for signed tree heads (checkpoints) and hub cosignatures: once the protocol
    /// carries them, verify here that every head the edge signed is consistent with the log
    /// the hub holds and that every cosignature the edge stored verifies. Nothing to check
    /// until then.
    fn heads(&self, _w: &World) -> Result<(), String> {
        Ok(())
    }
}
