//! The edge end of one replication session, as a sans-IO state machine.
//!
//! Upstream, it streams the edge's own durable log to the hub from the hub's acknowledged
//! position, never holding more than [`SessionConfig::window`] unacknowledged records in flight
//! (so the edge never buffers without bound while the hub is slow or away). Downstream, it
//! accepts the hub's `hub/{node}` chain, hands complete seal groups to the shell to verify and
//! apply, and acknowledges what the shell reports as durably applied.
//!
//! One `EdgeSession` lives for one connection. After any error or disconnect the shell starts a
//! fresh session from its durable state; the hub's `Welcome` says where to resume, which is what
//! makes delivery exactly-once across reconnects.
//!
//! Typical shell loop: create, then repeatedly
//! 1. feed input (`handle_message`, `on_local_durable`, `handle_timeout`, `down_applied`);
//! 2. perform `poll_action`s (apply downstream frames, report back with `down_applied`);
//! 3. while `want_records()` says so, read frames from the log and pass them to `records_read`;
//! 4. send everything from `poll_transmit`; wait for input or `poll_timeout`.

use crate::session::{
    Conn, PeerNames, Phase, SessionConfig, SessionError, Unacked, check_contiguous, split_frames,
};
use crate::wire::{Message, PROTOCOL_VERSION};
use outpost_core::ids::{Jurisdiction, NodeId, Seq};
use outpost_core::log::{Frame, RecordHash};
use outpost_core::time::UnixMillis;
use std::collections::VecDeque;

/// Work the shell must do for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeAction {
    /// Verify (against the hub's key) and durably apply these downstream frames, then call
    /// [`EdgeSession::down_applied`] with the new applied head. The frames are consecutive,
    /// continue from the last frames handed out in this session (the first batch starts right
    /// after the `down_applied` the session was created with), and end with a sealed frame:
    /// they are whole seal groups, so a `ChainVerifier` started at the applied head releases
    /// all of them.
    ApplyDown(Vec<Frame>),
}

/// How the edge names the hub in timeout errors.
const EDGE_NAMES: PeerNames = PeerNames {
    peer: "hub",
    ack: "acknowledgement",
    records: "records",
};

#[derive(Debug)]
pub struct EdgeSession {
    cfg: SessionConfig,
    conn: Conn,
    /// Highest durable seq of the local log we know of.
    local_head: Seq,
    /// Hub's durable position (from Welcome, then Acks).
    acked: Seq,
    acked_hash: RecordHash,
    /// Next seq to send; everything below it was sent in this session (or acked before it).
    next_to_send: Seq,
    /// Highest sealed seq sent (or `acked`, which is always a seal boundary).
    last_sealed_sent: Seq,
    /// Downstream: durably applied head, as reported by the shell.
    down_applied: Seq,
    /// Downstream: last seq handed out in an `ApplyDown`.
    down_handed: Seq,
    /// Downstream: received frames after `down_handed`, waiting for their seal.
    down_pending: Vec<Frame>,
    /// Downstream: hub's head, from Welcome and hub heartbeats.
    hub_down_head: Seq,
    /// Downstream lag in time as the hub last reported it.
    hub_down_lag_ms: i64,
    /// Upstream records in flight, for the lag in time our heartbeats carry.
    unacked: Unacked,
    actions: VecDeque<EdgeAction>,
    /// Witnessed checkpoints: the newest signed head not yet sent (sent once its records are).
    checkpoint_pending: Option<(Seq, String)>,
    /// Size of the last checkpoint sent in this session.
    checkpoint_sent: Seq,
    /// Cosignatures received, for the shell to verify and store (`poll_cosigned`).
    cosigned: VecDeque<(Seq, String)>,
}

impl EdgeSession {
    /// Start a session; queues the `Hello`. `local_head` is the edge log's durable head and
    /// `down_applied` the last durably applied downstream seq.
    pub fn new(
        cfg: SessionConfig,
        node_id: NodeId,
        jurisdiction: Jurisdiction,
        local_head: Seq,
        down_applied: Seq,
        now: UnixMillis,
    ) -> EdgeSession {
        let mut conn = Conn::new(now, &cfg, &EDGE_NAMES);
        conn.outbox.push_back(Message::Hello {
            version: PROTOCOL_VERSION,
            node_id,
            jurisdiction,
            edge_head: local_head,
            down_applied,
        });
        EdgeSession {
            conn,
            local_head,
            acked: Seq::ZERO,
            acked_hash: RecordHash::ZERO,
            next_to_send: Seq(1),
            last_sealed_sent: Seq::ZERO,
            down_applied,
            down_handed: down_applied,
            down_pending: Vec::new(),
            hub_down_head: Seq::ZERO,
            hub_down_lag_ms: 0,
            unacked: Unacked::default(),
            actions: VecDeque::new(),
            checkpoint_pending: None,
            checkpoint_sent: Seq::ZERO,
            cosigned: VecDeque::new(),
            cfg,
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Feed one message received from the hub.
    pub fn handle_message(&mut self, msg: Message, now: UnixMillis) -> Result<(), SessionError> {
        if self.conn.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        self.conn.liveness.received(now);
        let r = self.dispatch(msg, now);
        r.map_err(|e| self.conn.fail(e))
    }

    fn dispatch(&mut self, msg: Message, now: UnixMillis) -> Result<(), SessionError> {
        match (self.conn.phase, msg) {
            (_, Message::Error { code, message }) => Err(SessionError::Remote { code, message }),
            (
                Phase::Handshake,
                Message::Welcome {
                    version,
                    acked,
                    acked_hash,
                    down_head,
                },
            ) => self.on_welcome(version, acked, acked_hash, down_head, now),
            (Phase::Established, Message::Ack { acked }) => self.on_ack(acked),
            (Phase::Established, Message::Down { frames }) => self.on_down(frames),
            (Phase::Established, Message::Heartbeat { head, lag_ms, .. }) => {
                self.hub_down_head = self.hub_down_head.max(head);
                self.hub_down_lag_ms = lag_ms.max(0);
                Ok(())
            }
            (Phase::Established, Message::Cosigned { size, cosignature }) => {
                if size == Seq::ZERO || size > self.checkpoint_sent {
                    return Err(SessionError::Protocol(format!(
                        "hub cosigned a checkpoint of size {size} but the last one sent has size {}",
                        self.checkpoint_sent
                    )));
                }
                self.cosigned.push_back((size, cosignature));
                Ok(())
            }
            (state, m) => Err(SessionError::Protocol(format!(
                "unexpected {} from hub {}",
                m.name(),
                if state == Phase::Handshake {
                    "before Welcome"
                } else {
                    "after Welcome"
                }
            ))),
        }
    }

    fn on_welcome(
        &mut self,
        version: u16,
        acked: Seq,
        acked_hash: RecordHash,
        down_head: Seq,
        now: UnixMillis,
    ) -> Result<(), SessionError> {
        if version != PROTOCOL_VERSION {
            return Err(SessionError::Version(format!(
                "hub speaks protocol version {version}, edge supports {PROTOCOL_VERSION}"
            )));
        }
        if acked > self.local_head {
            return Err(SessionError::Diverged(format!(
                "hub has durably acknowledged seq {acked} but the local log ends at seq {}: the local log lost records",
                self.local_head
            )));
        }
        if down_head < self.down_applied {
            return Err(SessionError::Diverged(format!(
                "hub's downstream chain ends at seq {down_head} but the edge has applied through seq {}",
                self.down_applied
            )));
        }
        self.acked = acked;
        self.acked_hash = acked_hash;
        self.next_to_send = Seq(acked.0.saturating_add(1));
        // The hub acknowledges only verified (sealed) records, so `acked` ends a seal group.
        self.last_sealed_sent = acked;
        self.hub_down_head = down_head;
        self.conn.phase = Phase::Established;
        self.conn.liveness.established(now, &self.cfg);
        self.maybe_send_checkpoint();
        Ok(())
    }

    /// The log signed a new tree head over its first `size` records (`note` is the C2SP signed
    /// note). It is sent once those records have been sent, so the hub can check it against
    /// its copy; only the newest pending head is kept.
    pub fn checkpoint(&mut self, size: Seq, note: String) {
        if self.conn.phase == Phase::Closed || size <= self.checkpoint_sent {
            return;
        }
        if self
            .checkpoint_pending
            .as_ref()
            .is_none_or(|(s, _)| size > *s)
        {
            self.checkpoint_pending = Some((size, note));
        }
        self.maybe_send_checkpoint();
    }

    fn maybe_send_checkpoint(&mut self) {
        if self.conn.phase != Phase::Established {
            return;
        }
        let sent_through = Seq(self.next_to_send.0.saturating_sub(1));
        if let Some((size, _)) = &self.checkpoint_pending
            && *size <= sent_through
            && let Some((size, note)) = self.checkpoint_pending.take()
        {
            self.checkpoint_sent = size;
            self.conn.outbox.push_back(Message::Checkpoint { note });
        }
    }

    /// A cosignature from the hub: `(size, cosignature note line)`. The shell verifies it
    /// against the hub's key and stores it with its checkpoint.
    pub fn poll_cosigned(&mut self) -> Option<(Seq, String)> {
        self.cosigned.pop_front()
    }

    fn on_ack(&mut self, acked: Seq) -> Result<(), SessionError> {
        if acked < self.acked {
            return Err(SessionError::Protocol(format!(
                "ack went backwards: seq {acked} after {}",
                self.acked
            )));
        }
        let sent = Seq(self.next_to_send.0 - 1);
        if acked > sent {
            return Err(SessionError::Protocol(format!(
                "hub acknowledged seq {acked} but the edge has only sent through {sent}"
            )));
        }
        if acked > self.acked {
            self.conn.liveness.ack_progress();
        }
        self.acked = acked;
        self.unacked.acked(acked);
        Ok(())
    }

    fn on_down(&mut self, frames: Vec<Frame>) -> Result<(), SessionError> {
        let expected = Seq(self.down_handed.0 + self.down_pending.len() as u64 + 1);
        check_contiguous(&frames, expected)
            .map_err(|e| SessionError::Protocol(format!("downstream: {e}")))?;
        for f in frames {
            let sealed = f.seal.is_some();
            self.down_pending.push(f);
            if sealed {
                self.down_handed = Seq(self.down_handed.0 + self.down_pending.len() as u64);
                let group = std::mem::take(&mut self.down_pending);
                // Merge with a not yet taken ApplyDown: fewer, larger durable writes.
                match self.actions.back_mut() {
                    Some(EdgeAction::ApplyDown(frames)) => frames.extend(group),
                    _ => self.actions.push_back(EdgeAction::ApplyDown(group)),
                }
            }
        }
        if self.down_pending.len() > self.cfg.max_unsealed {
            return Err(SessionError::Protocol(format!(
                "downstream: more than {} records without a seal",
                self.cfg.max_unsealed
            )));
        }
        Ok(())
    }

    /// The local log became durable through `head` (e.g. from the log's watch channel).
    pub fn on_local_durable(&mut self, head: Seq) {
        self.local_head = self.local_head.max(head);
    }

    /// The frames `want_records` asked for (possibly fewer; at least one if the log had any).
    /// They must start at the `from` given by `want_records` and be consecutive.
    pub fn records_read(&mut self, frames: Vec<Frame>) -> Result<(), SessionError> {
        match self.conn.phase {
            Phase::Closed => return Err(SessionError::Closed),
            Phase::Handshake => {
                return Err(self
                    .conn
                    .fail(SessionError::Misuse("records_read before Welcome".into())));
            }
            Phase::Established => {}
        }
        if frames.is_empty() {
            return Ok(());
        }
        let (last, sealed) = match check_contiguous(&frames, self.next_to_send) {
            Ok(v) => v,
            Err(e) => {
                return Err(self.conn.fail(SessionError::Misuse(format!(
                    "log returned frames out of order: {e}"
                ))));
            }
        };
        self.next_to_send = Seq(last.0.saturating_add(1));
        self.local_head = self.local_head.max(last);
        if let Some(s) = sealed {
            self.last_sealed_sent = s;
        }
        self.unacked.sent(&frames);
        let outbox = &mut self.conn.outbox;
        split_frames(frames, self.cfg.batch_bytes, |frames| {
            outbox.push_back(Message::Records { frames })
        });
        self.maybe_send_checkpoint();
        Ok(())
    }

    /// The shell durably applied the downstream chain through `applied` (the value returned by
    /// applying an `ApplyDown`). Queues a `DownAck`.
    pub fn down_applied(&mut self, applied: Seq) -> Result<(), SessionError> {
        if self.conn.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        if applied < self.down_applied || applied > self.down_handed {
            return Err(self.conn.fail(SessionError::Misuse(format!(
                "down_applied({applied}) outside [{}, {}] (applied so far, handed out)",
                self.down_applied, self.down_handed
            ))));
        }
        if applied > self.down_applied {
            self.down_applied = applied;
            self.conn.outbox.push_back(Message::DownAck { applied });
        }
        Ok(())
    }

    /// Call when `poll_timeout` passes (calling early is harmless): sends heartbeats and
    /// detects a silent hub.
    pub fn handle_timeout(&mut self, now: UnixMillis) -> Result<(), SessionError> {
        let in_flight = self.in_flight();
        let heartbeat_due = self.conn.heartbeat_due(now, &self.cfg, in_flight)?;
        if heartbeat_due {
            self.conn.outbox.push_back(Message::Heartbeat {
                head: self.local_head,
                now_ms: now.0,
                lag_ms: self.unacked.lag_ms(now),
            });
        }
        Ok(())
    }

    /// Close the session on the shell's initiative (shutdown, storage or verification failure);
    /// queues an `Error` message with `code` for the hub.
    pub fn abort(&mut self, code: u16, message: impl Into<String>) -> SessionError {
        self.conn.abort(code, message.into())
    }

    // ---- outputs ------------------------------------------------------------------------

    /// Next message to send to the hub.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.conn.outbox.pop_front()
    }

    /// Next action for the shell.
    pub fn poll_action(&mut self) -> Option<EdgeAction> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` should next be called (`None` once closed).
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.conn.deadline(&self.cfg)
    }

    /// Which records to read from the local log and pass to `records_read`: `(from, max)`.
    /// `None` when not established, nothing new is durable, or the flow-control window is full.
    pub fn want_records(&self) -> Option<(Seq, usize)> {
        if self.conn.phase != Phase::Established || self.next_to_send > self.local_head {
            return None;
        }
        let in_flight = self.in_flight();
        let available = self.local_head.0 - self.next_to_send.0 + 1;
        let room = if in_flight < self.cfg.window as u64 {
            self.cfg.window as u64 - in_flight
        } else if self.last_sealed_sent <= self.acked {
            // Window full but no seal in flight: the hub cannot acknowledge anything until the
            // group's seal arrives, so send on (bounded by the group size) to avoid a deadlock.
            self.cfg.batch_records as u64
        } else {
            return None;
        };
        let max = available
            .min(room)
            .min(self.cfg.batch_records.max(1) as u64);
        Some((self.next_to_send, max as usize))
    }

    // ---- state --------------------------------------------------------------------------

    /// Welcome received and no error yet.
    pub fn is_established(&self) -> bool {
        self.conn.is_established()
    }
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
    /// Why the session closed, if it did.
    pub fn error(&self) -> Option<&SessionError> {
        self.conn.error()
    }
    /// Hub's durable position for this node.
    pub fn acked(&self) -> Seq {
        self.acked
    }
    /// Hash of the record at `acked`, as the hub reported it in `Welcome`.
    pub fn acked_hash(&self) -> RecordHash {
        self.acked_hash
    }
    /// Records sent but not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        (self.next_to_send.0 - 1).saturating_sub(self.acked.0)
    }
    pub fn next_to_send(&self) -> Seq {
        self.next_to_send
    }
    pub fn local_head(&self) -> Seq {
        self.local_head
    }
    pub fn down_applied_head(&self) -> Seq {
        self.down_applied
    }
    /// Hub's downstream head as last reported.
    pub fn hub_down_head(&self) -> Seq {
        self.hub_down_head
    }
    /// Downstream lag in time (ms) as the hub last reported it.
    pub fn hub_down_lag_ms(&self) -> i64 {
        self.hub_down_lag_ms
    }
    /// Upstream lag in time at `now`: age of the oldest record sent but not yet acknowledged.
    pub fn lag_ms(&self, now: UnixMillis) -> i64 {
        self.unacked.lag_ms(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::code;
    use outpost_core::ids::LogId;
    use outpost_core::log::{ChainHead, ChainWriter, NodeKey, RecordKind};

    fn chain(log: &str, n: usize, seal_every: usize) -> Vec<Frame> {
        let key = NodeKey::from_seed([1; 32]);
        let mut w = ChainWriter::new(LogId::new(log).unwrap(), ChainHead::EMPTY);
        (0..n)
            .map(|i| {
                let mut f = w.append(
                    RecordKind::WalletMovement,
                    UnixMillis(1000 + i as i64),
                    b"{}".to_vec(),
                );
                if (i + 1) % seal_every == 0 {
                    ChainWriter::seal(&mut f, &key);
                }
                f
            })
            .collect()
    }

    fn session(cfg: SessionConfig, local_head: u64, down_applied: u64) -> EdgeSession {
        EdgeSession::new(
            cfg,
            NodeId::new("gb-1").unwrap(),
            Jurisdiction::new("GB").unwrap(),
            Seq(local_head),
            Seq(down_applied),
            UnixMillis(0),
        )
    }

    fn welcome(acked: u64, down_head: u64) -> Message {
        Message::Welcome {
            version: PROTOCOL_VERSION,
            acked: Seq(acked),
            acked_hash: RecordHash([1; 32]),
            down_head: Seq(down_head),
        }
    }

    fn drain(s: &mut EdgeSession) -> Vec<Message> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    #[test]
    fn hello_then_resume_from_acked() {
        let frames = chain("gb-1", 10, 1);
        let mut s = session(SessionConfig::default(), 10, 2);
        let out = drain(&mut s);
        assert!(matches!(
            &out[..],
            [Message::Hello {
                version: PROTOCOL_VERSION,
                edge_head: Seq(10),
                down_applied: Seq(2),
                ..
            }]
        ));
        assert_eq!(s.want_records(), None, "nothing before Welcome");
        s.handle_message(welcome(4, 2), UnixMillis(5)).unwrap();
        assert_eq!(s.want_records(), Some((Seq(5), 6)));
        s.records_read(frames[4..].to_vec()).unwrap();
        assert!(matches!(&drain(&mut s)[..], [Message::Records { frames }] if frames.len() == 6));
        assert_eq!(s.want_records(), None);
        s.on_local_durable(Seq(12));
        assert_eq!(s.want_records(), Some((Seq(11), 2)));
        s.handle_message(Message::Ack { acked: Seq(10) }, UnixMillis(6))
            .unwrap();
        assert_eq!(s.acked(), Seq(10));
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn window_limits_records_in_flight() {
        let frames = chain("gb-1", 20, 1);
        let cfg = SessionConfig {
            window: 4,
            ..SessionConfig::default()
        };
        let mut s = session(cfg, 20, 0);
        s.handle_message(welcome(0, 0), UnixMillis(1)).unwrap();
        assert_eq!(s.want_records(), Some((Seq(1), 4)));
        s.records_read(frames[..3].to_vec()).unwrap();
        assert_eq!(s.want_records(), Some((Seq(4), 1)));
        s.records_read(frames[3..4].to_vec()).unwrap();
        assert_eq!(s.want_records(), None, "window full");
        s.handle_message(Message::Ack { acked: Seq(2) }, UnixMillis(2))
            .unwrap();
        assert_eq!(s.want_records(), Some((Seq(5), 2)));
    }

    #[test]
    fn window_is_exceeded_only_to_finish_a_seal_group() {
        let frames = chain("gb-1", 12, 6);
        let cfg = SessionConfig {
            window: 4,
            batch_records: 2,
            ..SessionConfig::default()
        };
        let mut s = session(cfg, 12, 0);
        s.handle_message(welcome(0, 0), UnixMillis(1)).unwrap();
        let mut sent = 0;
        while let Some((from, max)) = s.want_records() {
            let from = from.0 as usize - 1;
            s.records_read(frames[from..(from + max).min(12)].to_vec())
                .unwrap();
            sent = from + max;
        }
        // Stops right after the seal at seq 6, although the window is 4.
        assert_eq!(sent, 6);
        assert_eq!(s.next_to_send(), Seq(7));
    }

    #[test]
    fn bad_acks_are_protocol_errors() {
        let frames = chain("gb-1", 5, 1);
        let mut s = session(SessionConfig::default(), 5, 0);
        s.handle_message(welcome(0, 0), UnixMillis(1)).unwrap();
        s.records_read(frames[..3].to_vec()).unwrap();
        drain(&mut s);
        let e = s
            .handle_message(Message::Ack { acked: Seq(4) }, UnixMillis(2))
            .unwrap_err();
        assert!(matches!(e, SessionError::Protocol(_)), "{e}");
        assert!(matches!(
            &drain(&mut s)[..],
            [Message::Error {
                code: code::PROTOCOL,
                ..
            }]
        ));
        assert!(s.is_closed());
        assert_eq!(
            s.handle_message(Message::Ack { acked: Seq(1) }, UnixMillis(3)),
            Err(SessionError::Closed)
        );

        let mut s = session(SessionConfig::default(), 5, 0);
        s.handle_message(welcome(0, 0), UnixMillis(1)).unwrap();
        s.records_read(frames[..3].to_vec()).unwrap();
        s.handle_message(Message::Ack { acked: Seq(2) }, UnixMillis(2))
            .unwrap();
        s.handle_message(Message::Ack { acked: Seq(2) }, UnixMillis(2))
            .unwrap();
        assert!(
            s.handle_message(Message::Ack { acked: Seq(1) }, UnixMillis(2))
                .is_err()
        );
    }

    #[test]
    fn version_mismatch_and_divergence_are_clear_errors() {
        let mut s = session(SessionConfig::default(), 5, 0);
        let w = Message::Welcome {
            version: PROTOCOL_VERSION + 1,
            acked: Seq(0),
            acked_hash: RecordHash::ZERO,
            down_head: Seq(0),
        };
        let e = s.handle_message(w, UnixMillis(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "hub speaks protocol version {}, edge supports {PROTOCOL_VERSION}",
                PROTOCOL_VERSION + 1
            )
        );

        let mut s = session(SessionConfig::default(), 5, 0);
        let e = s.handle_message(welcome(9, 0), UnixMillis(1)).unwrap_err();
        assert!(matches!(e, SessionError::Diverged(_)));
        assert!(e.to_string().contains("local log ends at seq 5"), "{e}");

        let mut s = session(SessionConfig::default(), 5, 0);
        let e = s
            .handle_message(Message::Ack { acked: Seq(0) }, UnixMillis(1))
            .unwrap_err();
        assert_eq!(
            e,
            SessionError::Protocol("unexpected Ack from hub before Welcome".into())
        );

        let mut s = session(SessionConfig::default(), 5, 0);
        let e = s
            .handle_message(Message::error(code::UNAUTHORIZED, "no"), UnixMillis(1))
            .unwrap_err();
        assert!(matches!(
            e,
            SessionError::Remote {
                code: code::UNAUTHORIZED,
                ..
            }
        ));
        assert!(
            drain(&mut s)
                .iter()
                .all(|m| !matches!(m, Message::Error { .. })),
            "no Error echoed back"
        );
    }

    #[test]
    fn down_frames_are_released_per_seal_group_and_acked_after_apply() {
        let down = chain("hub/gb-1", 6, 3);
        let mut s = session(SessionConfig::default(), 0, 0);
        s.handle_message(welcome(0, 6), UnixMillis(1)).unwrap();
        s.handle_message(
            Message::Down {
                frames: down[..2].to_vec(),
            },
            UnixMillis(2),
        )
        .unwrap();
        assert_eq!(s.poll_action(), None, "unsealed frames wait");
        s.handle_message(
            Message::Down {
                frames: down[2..5].to_vec(),
            },
            UnixMillis(3),
        )
        .unwrap();
        assert_eq!(
            s.poll_action(),
            Some(EdgeAction::ApplyDown(down[..3].to_vec()))
        );
        assert_eq!(s.poll_action(), None);
        drain(&mut s);
        s.down_applied(Seq(3)).unwrap();
        assert_eq!(drain(&mut s), vec![Message::DownAck { applied: Seq(3) }]);
        // Out of order downstream frame.
        let e = s
            .handle_message(
                Message::Down {
                    frames: down[4..5].to_vec(),
                },
                UnixMillis(4),
            )
            .unwrap_err();
        assert!(matches!(e, SessionError::Protocol(_)), "{e}");
    }

    #[test]
    fn down_applied_beyond_handed_out_is_misuse() {
        let mut s = session(SessionConfig::default(), 0, 0);
        s.handle_message(welcome(0, 6), UnixMillis(1)).unwrap();
        assert!(matches!(
            s.down_applied(Seq(1)),
            Err(SessionError::Misuse(_))
        ));
    }

    #[test]
    fn heartbeats_and_peer_timeout() {
        let cfg = SessionConfig {
            heartbeat_ms: 1000,
            peer_timeout_ms: 5000,
            ..SessionConfig::default()
        };
        let mut s = session(cfg, 7, 0);
        drain(&mut s);
        assert_eq!(
            s.poll_timeout(),
            Some(UnixMillis(5000)),
            "only the Welcome deadline before Welcome"
        );
        s.handle_message(welcome(7, 0), UnixMillis(100)).unwrap();
        assert_eq!(s.poll_timeout(), Some(UnixMillis(1100)));
        s.handle_timeout(UnixMillis(1100)).unwrap();
        assert_eq!(
            drain(&mut s),
            vec![Message::Heartbeat {
                head: Seq(7),
                now_ms: 1100,
                lag_ms: 0
            }]
        );
        s.handle_timeout(UnixMillis(1500)).unwrap();
        assert!(drain(&mut s).is_empty());
        let e = s.handle_timeout(UnixMillis(5100)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "timed out: nothing received from the hub for 5000 ms"
        );
        assert!(matches!(
            &drain(&mut s)[..],
            [Message::Error {
                code: code::TIMEOUT,
                ..
            }]
        ));
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn records_without_acks_time_out_even_if_heartbeats_flow() {
        let frames = chain("gb-1", 3, 1);
        let cfg = SessionConfig {
            heartbeat_ms: 1000,
            peer_timeout_ms: 5000,
            ..SessionConfig::default()
        };
        let mut s = session(cfg, 3, 0);
        s.handle_message(welcome(0, 0), UnixMillis(0)).unwrap();
        s.records_read(frames).unwrap();
        // The first timer call after sending arms the ack deadline (t=1000, so it fires at 6000).
        for t in (1000..=5000).step_by(1000) {
            s.handle_message(
                Message::Heartbeat {
                    head: Seq(0),
                    now_ms: t,
                    lag_ms: 0,
                },
                UnixMillis(t),
            )
            .unwrap();
            s.handle_timeout(UnixMillis(t)).unwrap();
        }
        assert_eq!(s.poll_timeout(), Some(UnixMillis(6000)));
        s.handle_message(
            Message::Heartbeat {
                head: Seq(0),
                now_ms: 6000,
                lag_ms: 0,
            },
            UnixMillis(6000),
        )
        .unwrap();
        let e = s.handle_timeout(UnixMillis(6000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "timed out: no acknowledgement from the hub for 5000 ms with 3 records in flight"
        );
    }

    #[test]
    fn heartbeats_carry_the_age_of_the_oldest_unacknowledged_record() {
        // Records are stamped 1000, 1001, ... (see `chain`).
        let frames = chain("gb-1", 4, 2);
        let cfg = SessionConfig {
            heartbeat_ms: 1000,
            ..SessionConfig::default()
        };
        let mut s = session(cfg, 4, 0);
        s.handle_message(welcome(0, 0), UnixMillis(900)).unwrap();
        s.records_read(frames).unwrap();
        drain(&mut s);
        s.handle_timeout(UnixMillis(1900)).unwrap();
        assert!(matches!(
            &drain(&mut s)[..],
            [Message::Heartbeat {
                lag_ms: 900,
                head: Seq(4),
                ..
            }]
        ));
        s.handle_message(Message::Ack { acked: Seq(2) }, UnixMillis(1950))
            .unwrap();
        assert_eq!(
            s.lag_ms(UnixMillis(2000)),
            998,
            "oldest unacked is now seq 3 @1002"
        );
        s.handle_message(Message::Ack { acked: Seq(4) }, UnixMillis(1960))
            .unwrap();
        assert_eq!(s.lag_ms(UnixMillis(2000)), 0);
    }

    #[test]
    fn records_read_checks_continuity() {
        let frames = chain("gb-1", 5, 1);
        let mut s = session(SessionConfig::default(), 5, 0);
        s.handle_message(welcome(1, 0), UnixMillis(1)).unwrap();
        let e = s.records_read(frames[2..].to_vec()).unwrap_err();
        assert!(matches!(e, SessionError::Misuse(_)), "{e}");
    }

    #[test]
    fn large_reads_are_split_into_several_messages() {
        let frames = chain("gb-1", 100, 1);
        let cfg = SessionConfig {
            batch_bytes: 1000,
            batch_records: 1000,
            ..SessionConfig::default()
        };
        let mut s = session(cfg, 100, 0);
        s.handle_message(welcome(0, 0), UnixMillis(1)).unwrap();
        drain(&mut s);
        s.records_read(frames.clone()).unwrap();
        let msgs = drain(&mut s);
        assert!(msgs.len() > 5);
        let mut got = Vec::new();
        for m in msgs {
            let Message::Records { frames } = m else {
                panic!("{m:?}")
            };
            assert!(m_size(&frames) <= 1000 + 200);
            got.extend(frames);
        }
        assert_eq!(got, frames);
    }

    fn m_size(frames: &[Frame]) -> usize {
        frames.iter().map(|f| f.encode().len()).sum()
    }

    #[test]
    fn checkpoints_follow_their_records_and_cosignatures_are_handed_out() {
        let frames = chain("gb-1", 10, 5);
        let mut s = session(SessionConfig::default(), 10, 0);
        // Before Welcome nothing is sent; only the newest pending head is kept.
        s.checkpoint(Seq(5), "head-5".into());
        s.checkpoint(Seq(10), "head-10".into());
        s.checkpoint(Seq(7), "older".into());
        drain(&mut s);
        s.handle_message(welcome(0, 0), UnixMillis(1)).unwrap();
        assert!(
            drain(&mut s).is_empty(),
            "head of 10 must wait for its records"
        );
        s.records_read(frames[..5].to_vec()).unwrap();
        assert!(
            !drain(&mut s)
                .iter()
                .any(|m| matches!(m, Message::Checkpoint { .. }))
        );
        s.records_read(frames[5..].to_vec()).unwrap();
        let out = drain(&mut s);
        assert!(
            matches!(out.last(), Some(Message::Checkpoint { note }) if note == "head-10"),
            "{out:?}"
        );
        // Already sent sizes are not sent again.
        s.checkpoint(Seq(10), "head-10".into());
        assert!(drain(&mut s).is_empty());
        s.handle_message(
            Message::Cosigned {
                size: Seq(10),
                cosignature: "c".into(),
            },
            UnixMillis(2),
        )
        .unwrap();
        assert_eq!(s.poll_cosigned(), Some((Seq(10), "c".to_owned())));
        // A cosignature for a head never sent is a protocol error.
        let e = s
            .handle_message(
                Message::Cosigned {
                    size: Seq(11),
                    cosignature: "c".into(),
                },
                UnixMillis(3),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("cosigned a checkpoint of size 11"),
            "{e}"
        );

        // After a reconnect the hub has acked through 10: a head of 10 goes out at once.
        let mut s = session(SessionConfig::default(), 10, 0);
        s.handle_message(welcome(10, 0), UnixMillis(1)).unwrap();
        drain(&mut s);
        s.checkpoint(Seq(10), "head-10".into());
        assert_eq!(
            drain(&mut s),
            vec![Message::Checkpoint {
                note: "head-10".into()
            }]
        );
    }
}
