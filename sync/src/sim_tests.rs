//! Deterministic simulation: an `EdgeSession` and a `HubSession` wired together in memory
//! through a link that loses, duplicates and reorders messages and drops the connection at
//! random, driven by a seeded xorshift RNG and simulated time. Real QUIC streams never lose or
//! reorder bytes; the faults stand in for bugs and broken connections, and show that every
//! fault ends in a clean error, a reconnect from durable state, and eventually every upstream
//! record committed exactly once in order (and every downstream record applied exactly once).

use crate::edge_session::{EdgeAction, EdgeSession};
use crate::hub_session::{HubAction, HubSession, NodeRegistration};
use crate::session::SessionConfig;
use crate::wire::Message;
use outpost_core::ids::{Jurisdiction, LogId, NodeId, Seq};
use outpost_core::log::{
    ChainHead, ChainWriter, Frame, NodeKey, RecordBody, RecordKind, verify_frames,
};
use outpost_core::time::UnixMillis;
use std::collections::VecDeque;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default, Debug)]
struct Faults {
    lost: u32,
    duplicated: u32,
    reordered: u32,
    dropped: u32,
    sessions: u32,
    session_errors: u32,
}

/// One direction of the link: encoded messages, faults applied on send. A reordered message is
/// held back and queued right after the next one.
#[derive(Default)]
struct Dir {
    q: VecDeque<Vec<u8>>,
    held: Option<Vec<u8>>,
}

fn send(d: &mut Dir, msg: Message, rng: &mut Rng, f: &mut Faults) {
    let bytes = msg
        .encode()
        .expect("sessions keep messages under the limit");
    if rng.chance(8) {
        f.lost += 1;
        return;
    }
    if rng.chance(8) {
        f.duplicated += 1;
        d.q.push_back(bytes.clone());
    }
    if let Some(h) = d.held.take() {
        f.reordered += 1;
        d.q.push_back(bytes);
        d.q.push_back(h);
    } else if rng.chance(8) {
        d.held = Some(bytes);
    } else {
        d.q.push_back(bytes);
    }
}

fn head_after(frames: &[Frame]) -> ChainHead {
    match frames.last() {
        None => ChainHead::EMPTY,
        Some(f) => {
            let b = f.parse_body().unwrap();
            ChainHead {
                seq: b.seq,
                hash: f.hash(),
                timestamp: b.timestamp,
            }
        }
    }
}

fn run(seed: u64) -> Faults {
    let mut rng = Rng(seed | 1);
    let mut f = Faults::default();
    let node = NodeId::new("gb-1").unwrap();
    let jur = Jurisdiction::new("GB").unwrap();
    let edge_key = NodeKey::from_seed([1; 32]);
    let hub_key = NodeKey::from_seed([2; 32]);
    let cfg = SessionConfig {
        window: 64,
        batch_records: 16,
        batch_bytes: 2000,
        heartbeat_ms: 200,
        peer_timeout_ms: 2000,
        ..SessionConfig::default()
    };

    // Edge durable state.
    let mut edge_writer = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
    let mut edge_log: Vec<Frame> = Vec::new();
    let mut applied_down: Vec<Frame> = Vec::new();
    // Hub durable state.
    let mut down_writer = ChainWriter::new(LogId::new("hub/gb-1").unwrap(), ChainHead::EMPTY);
    let mut down_chain: Vec<Frame> = Vec::new();
    let mut committed: Vec<(Frame, RecordBody)> = Vec::new();
    let mut committed_head = ChainHead::EMPTY;
    let mut hub_down_acked = Seq::ZERO;
    let reg = NodeRegistration {
        jurisdiction: jur.clone(),
        public_key: edge_key.public(),
    };

    const TARGET_UP: usize = 1200;
    const TARGET_DOWN: usize = 150;
    let mut now = UnixMillis(1_700_000_000_000);
    let mut conn: Option<(EdgeSession, HubSession, Dir, Dir)> = None;
    let mut reconnect_at = now;

    for _step in 0..400_000 {
        now = UnixMillis(now.0 + 10);
        // The edge commits groups of 1-6 records, sealing the last of each group.
        if edge_log.len() < TARGET_UP && rng.chance(300) {
            let n = 1 + rng.below(6) as usize;
            for i in 0..n {
                let mut fr = edge_writer.append(
                    RecordKind::BetPlaced,
                    now,
                    format!("{{\"n\":{}}}", edge_log.len()).into_bytes(),
                );
                if i + 1 == n {
                    ChainWriter::seal(&mut fr, &edge_key);
                }
                edge_log.push(fr);
            }
        }
        if down_chain.len() < TARGET_DOWN && rng.chance(40) {
            let n = 1 + rng.below(3) as usize;
            for i in 0..n {
                let mut fr = down_writer.append(RecordKind::HubSettlement, now, b"{}".to_vec());
                if i + 1 == n {
                    ChainWriter::seal(&mut fr, &hub_key);
                }
                down_chain.push(fr);
            }
        }

        let Some((edge, hub, to_hub, to_edge)) = conn.as_mut() else {
            if now >= reconnect_at {
                f.sessions += 1;
                let edge = EdgeSession::new(
                    cfg.clone(),
                    node.clone(),
                    jur.clone(),
                    Seq(edge_log.len() as u64),
                    Seq(applied_down.len() as u64),
                    now,
                );
                let hub = HubSession::new(
                    cfg.clone(),
                    node.clone(),
                    Some(reg.clone()),
                    committed_head,
                    Seq(down_chain.len() as u64),
                    now,
                );
                conn = Some((edge, hub, Dir::default(), Dir::default()));
            }
            continue;
        };

        // Deliver a few messages each way.
        let mut broken = false;
        for _ in 0..3 {
            if let Some(b) = to_hub.q.pop_front() {
                broken |= hub
                    .handle_message(Message::decode(&b).unwrap(), now)
                    .is_err();
            }
            if let Some(b) = to_edge.q.pop_front() {
                broken |= edge
                    .handle_message(Message::decode(&b).unwrap(), now)
                    .is_err();
            }
        }

        // Hub shell: commit, flag, serve downstream.
        hub.down_available(Seq(down_chain.len() as u64));
        while let Some(a) = hub.poll_action() {
            match a {
                HubAction::Commit { records } => {
                    for (fr, body) in records {
                        assert_eq!(
                            body.seq.0 as usize,
                            committed.len() + 1,
                            "commit out of order or duplicated"
                        );
                        assert_eq!(
                            fr,
                            edge_log[committed.len()],
                            "committed frame differs from the edge's"
                        );
                        committed.push((fr, body));
                    }
                    committed_head = head_after(&edge_log[..committed.len()]);
                    broken |= hub.committed(committed_head.seq).is_err();
                }
                HubAction::Flag { reason } => panic!("honest edge flagged: {reason}"),
                HubAction::ReadDown { after, max } => {
                    let from = after.0 as usize;
                    let frames = down_chain[from..(from + max).min(down_chain.len())].to_vec();
                    broken |= hub.down_read(frames).is_err();
                }
                HubAction::DownAcked { applied } => {
                    assert!(applied >= hub_down_acked);
                    hub_down_acked = applied;
                }
                HubAction::Touch { .. } => {}
            }
        }

        // Edge shell: apply downstream (verifying the hub's seals), stream the log.
        while let Some(EdgeAction::ApplyDown(frames)) = edge.poll_action() {
            let start = head_after(&applied_down);
            verify_frames(
                &LogId::new("hub/gb-1").unwrap(),
                &hub_key.public(),
                start,
                frames.iter().cloned(),
            )
            .expect("session hands out whole, consecutive seal groups");
            applied_down.extend(frames);
            broken |= edge.down_applied(Seq(applied_down.len() as u64)).is_err();
        }
        edge.on_local_durable(Seq(edge_log.len() as u64));
        while let Some((from, max)) = edge.want_records() {
            let from = from.0 as usize - 1;
            let frames = edge_log[from..(from + max).min(edge_log.len())].to_vec();
            broken |= edge.records_read(frames).is_err();
        }

        for (s, t) in [(edge.poll_timeout(), true), (hub.poll_timeout(), false)] {
            if s.is_some_and(|s| now >= s) {
                broken |= if t {
                    edge.handle_timeout(now).is_err()
                } else {
                    hub.handle_timeout(now).is_err()
                };
            }
        }

        while let Some(m) = edge.poll_transmit() {
            send(to_hub, m, &mut rng, &mut f);
        }
        while let Some(m) = hub.poll_transmit() {
            send(to_edge, m, &mut rng, &mut f);
        }

        if broken || edge.is_closed() || hub.is_closed() {
            f.session_errors += 1;
            conn = None;
            reconnect_at = UnixMillis(now.0 + 100);
        } else if rng.chance(2) {
            f.dropped += 1;
            conn = None;
            reconnect_at = UnixMillis(now.0 + 100);
        }

        if edge_log.len() >= TARGET_UP
            && committed.len() == edge_log.len()
            && down_chain.len() >= TARGET_DOWN
            && applied_down.len() == down_chain.len()
            && hub_down_acked.0 as usize == down_chain.len()
        {
            assert_eq!(applied_down, down_chain);
            assert!(committed.iter().map(|c| &c.0).eq(edge_log.iter()));
            return f;
        }
    }
    panic!(
        "seed {seed}: no convergence: edge {} committed {} down {} applied {} acked {} ({f:?})",
        edge_log.len(),
        committed.len(),
        down_chain.len(),
        applied_down.len(),
        hub_down_acked
    );
}

#[test]
fn lossy_link_with_reconnects_delivers_everything_exactly_once_in_order() {
    let mut total = Faults::default();
    for seed in [1, 2, 3, 0xdead_beef, 0x1234_5678_9abc] {
        let f = run(seed);
        total.lost += f.lost;
        total.duplicated += f.duplicated;
        total.reordered += f.reordered;
        total.dropped += f.dropped;
        total.sessions += f.sessions;
        total.session_errors += f.session_errors;
    }
    eprintln!("{total:?}");
    // The faults really happened.
    assert!(
        total.lost > 10 && total.duplicated > 10 && total.reordered > 10 && total.dropped > 5,
        "{total:?}"
    );
    assert!(
        total.sessions > 25 && total.session_errors > 15,
        "{total:?}"
    );
}

#[test]
fn clean_link_converges_in_one_session() {
    // Same machinery without faults: a single session suffices.
    let node = NodeId::new("gb-1").unwrap();
    let jur = Jurisdiction::new("GB").unwrap();
    let key = NodeKey::from_seed([1; 32]);
    let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
    let log: Vec<Frame> = (0..500)
        .map(|i| {
            let mut fr = w.append(RecordKind::BetPlaced, UnixMillis(i), b"{}".to_vec());
            if i % 7 == 6 || i == 499 {
                ChainWriter::seal(&mut fr, &key);
            }
            fr
        })
        .collect();
    let cfg = SessionConfig {
        window: 50,
        batch_records: 20,
        ..SessionConfig::default()
    };
    let now = UnixMillis(0);
    let mut edge = EdgeSession::new(
        cfg.clone(),
        node.clone(),
        jur.clone(),
        Seq(500),
        Seq(0),
        now,
    );
    let reg = NodeRegistration {
        jurisdiction: jur,
        public_key: key.public(),
    };
    let mut hub = HubSession::new(cfg, node, Some(reg), ChainHead::EMPTY, Seq(0), now);
    let mut committed = 0u64;
    for _ in 0..1000 {
        while let Some(m) = edge.poll_transmit() {
            hub.handle_message(m, now).unwrap();
        }
        while let Some(a) = hub.poll_action() {
            if let HubAction::Commit { records } = a {
                committed += records.len() as u64;
                hub.committed(Seq(committed)).unwrap();
            }
        }
        while let Some(m) = hub.poll_transmit() {
            edge.handle_message(m, now).unwrap();
        }
        while let Some((from, max)) = edge.want_records() {
            let from = from.0 as usize - 1;
            edge.records_read(log[from..from + max].to_vec()).unwrap();
        }
        if edge.acked() == Seq(500) {
            assert_eq!(committed, 500);
            return;
        }
    }
    panic!("did not converge: acked {}", edge.acked());
}
