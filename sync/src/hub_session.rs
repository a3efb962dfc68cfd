//! The hub end of one replication session, as a sans-IO state machine.
//!
//! Upstream, it checks the edge's `Hello` against the TLS-authenticated node id and the node's
//! registration, tells the edge where to resume (`Welcome`: the hub's durable head), verifies
//! every incoming record with [`ChainVerifier`] starting at that durable head, and hands
//! verified records to the shell to commit; only after the shell reports them durable does it
//! acknowledge them. A record that fails verification gets the node flagged and the session
//! closed, and nothing from that message is committed.
//!
//! Seal signatures are checked in batches ([`crate::seal_batch`]): the verifier checks
//! everything else as records arrive and queues the seals; they are all checked together when
//! the shell takes the `Commit` (so across every message that arrived since the last commit),
//! or earlier when a message fails another check (so the first bad record is still the one
//! reported). A bad seal closes the session and drops the queued `Commit`s: nothing is
//! committed, and the error names the seal exactly as one-by-one verification would. Downstream, it streams the hub's
//! `hub/{node}` chain to the edge with the same kind of flow-control window.
//!
//! Exactly-once across reconnects rests on one rule: the edge resends from the hub's durable
//! head + 1, and the verifier demands gap-free sequence numbers from there. A duplicate or
//! out-of-order record is therefore a protocol error (not tampering: nothing is skipped or
//! committed twice, so the node is not flagged for it).
//!
//! The shell must not run two sessions for the same node at once (it serialises them, see
//! `transport`), because each session starts from the durable head it was given.

use crate::seal_batch::SealBatcher;
use crate::session::{
    Conn, PeerNames, Phase, SessionConfig, SessionError, Unacked, check_contiguous, split_frames,
};
use crate::wire::{Message, PROTOCOL_VERSION};
use outpost_core::ids::{Jurisdiction, LogId, NodeId, Seq};
use outpost_core::log::{
    ChainHead, ChainVerifier, Frame, PublicKey, RecordBody, RecordHash, VerifyError,
    open_checkpoint, origin_for,
};
use outpost_core::time::UnixMillis;
use std::collections::VecDeque;

/// What the hub knows about a node from its registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    pub jurisdiction: Jurisdiction,
    /// The node's Ed25519 log-sealing key.
    pub public_key: PublicKey,
}

/// Work the shell must do for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubAction {
    /// Durably append these verified records (consecutive, continuing the durable head) to the
    /// node's upstream log, then call [`HubSession::committed`] with the new durable head.
    Commit { records: Vec<(Frame, RecordBody)> },
    /// The node presented records that fail verification: flag it for investigation.
    Flag { reason: String },
    /// Liveness: the edge reports its durable head (`edge_head - acked` is the replication
    /// lag in records) and `lag_ms`, the age of its oldest record not yet acknowledged by the
    /// hub (lag in time, on the edge's clock); `edge_clock` is the edge's own clock, `now` the
    /// hub's.
    Touch {
        edge_head: Seq,
        edge_clock: UnixMillis,
        now: UnixMillis,
        lag_ms: i64,
    },
    /// Read up to `max` downstream frames with seq > `after` and pass them to
    /// [`HubSession::down_read`].
    ReadDown { after: Seq, max: usize },
    /// The edge durably applied the downstream chain through `applied`.
    DownAcked { applied: Seq },
}

/// A tree head the node signed, checked by the session (signature, origin, and that the hub
/// has verified every record it covers). The shell compares it with its own copy of the log
/// and cosigns it ([`HubSession::cosigned`]) or reports equivocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHead {
    pub size: Seq,
    pub root: [u8; 32],
    /// The signed note as received.
    pub note: String,
}

/// Proof that the node signed two different histories: the hub holds (and the node sealed)
/// record `seq` with hash `hub_hash`, while `fork` — consecutive records starting at
/// `seq + 1`, ending with a record whose seal verifies under the node's key — says the
/// record at `seq` has hash `offered_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkEvidence {
    pub seq: Seq,
    pub hub_hash: RecordHash,
    pub offered_hash: RecordHash,
    pub fork: Vec<Frame>,
}

/// Collecting the signed continuation of a record whose `prev_hash` contradicts the hub's log.
#[derive(Debug)]
struct ForkProbe {
    verifier: ChainVerifier,
    first_error: VerifyError,
    seq: Seq,
    hub_hash: RecordHash,
    offered_hash: RecordHash,
    frames: Vec<Frame>,
}

/// Why a `Records` message stopped being verified.
enum Refusal {
    /// This record failed; the frame is kept when it opened a seal group (a fork candidate).
    Record(VerifyError, Option<Frame>),
    /// The node's seal group grew past `max_unsealed`.
    TooManyUnsealed,
}

/// How the hub names the edge in timeout errors.
const HUB_NAMES: PeerNames = PeerNames {
    peer: "edge",
    ack: "DownAck",
    records: "downstream records",
};

#[derive(Debug)]
pub struct HubSession {
    cfg: SessionConfig,
    conn: Conn,
    node: NodeId,
    registration: Option<NodeRegistration>,
    durable: ChainHead,
    /// Defers seal signatures to `seals` (set on Hello).
    verifier: Option<ChainVerifier>,
    seals: Option<SealBatcher>,
    /// Highest seq handed out in a `Commit` (its seal may still be waiting in `verifier`).
    verified: Seq,
    /// Highest seq the shell reported durable.
    committed: Seq,
    edge_head: Seq,
    down_head: Seq,
    down_sent: Seq,
    down_acked: Seq,
    down_last_sealed_sent: Seq,
    read_down_outstanding: bool,
    /// Downstream records in flight, for the lag in time our heartbeats carry.
    down_unacked: Unacked,
    actions: VecDeque<HubAction>,
    fork: Option<ForkProbe>,
    heads_in: VecDeque<SignedHead>,
    equivocations: VecDeque<ForkEvidence>,
}

impl HubSession {
    /// Start a session for a connection whose TLS client certificate authenticates
    /// `authenticated`. `registration` is the registry entry for that node (`None`: unknown
    /// node, the Hello is refused), `durable` the hub's durable upstream head for it and
    /// `down_head` the head of its downstream chain. Waits for the edge's `Hello`.
    pub fn new(
        cfg: SessionConfig,
        authenticated: NodeId,
        registration: Option<NodeRegistration>,
        durable: ChainHead,
        down_head: Seq,
        now: UnixMillis,
    ) -> HubSession {
        HubSession {
            conn: Conn::new(now, &cfg, &HUB_NAMES),
            node: authenticated,
            registration,
            durable,
            verifier: None,
            seals: None,
            verified: durable.seq,
            committed: durable.seq,
            edge_head: Seq::ZERO,
            down_head,
            down_sent: Seq::ZERO,
            down_acked: Seq::ZERO,
            down_last_sealed_sent: Seq::ZERO,
            read_down_outstanding: false,
            down_unacked: Unacked::default(),
            actions: VecDeque::new(),
            fork: None,
            heads_in: VecDeque::new(),
            equivocations: VecDeque::new(),
            cfg,
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Feed one message received from the edge.
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
                Message::Hello {
                    version,
                    node_id,
                    jurisdiction,
                    edge_head,
                    down_applied,
                },
            ) => self.on_hello(version, node_id, jurisdiction, edge_head, down_applied, now),
            (Phase::Established, Message::Records { frames }) => self.on_records(frames),
            (Phase::Established, Message::DownAck { applied }) => self.on_down_ack(applied),
            (Phase::Established, Message::Checkpoint { note }) => self.on_checkpoint(note),
            (
                Phase::Established,
                Message::Heartbeat {
                    head,
                    now_ms,
                    lag_ms,
                },
            ) => {
                self.edge_head = head;
                self.actions.push_back(HubAction::Touch {
                    edge_head: head,
                    edge_clock: UnixMillis(now_ms),
                    now,
                    lag_ms: lag_ms.max(0),
                });
                Ok(())
            }
            (state, m) => Err(SessionError::Protocol(format!(
                "unexpected {} from edge {}",
                m.name(),
                if state == Phase::Handshake {
                    "before Hello"
                } else {
                    "after Hello"
                }
            ))),
        }
    }

    fn on_hello(
        &mut self,
        version: u16,
        node_id: NodeId,
        jurisdiction: Jurisdiction,
        edge_head: Seq,
        down_applied: Seq,
        now: UnixMillis,
    ) -> Result<(), SessionError> {
        if version != PROTOCOL_VERSION {
            return Err(SessionError::Version(format!(
                "protocol version {version} not supported by hub (supports {PROTOCOL_VERSION})"
            )));
        }
        if node_id != self.node {
            return Err(SessionError::Rejected(format!(
                "Hello names node {node_id} but the TLS client certificate authenticates node {}",
                self.node
            )));
        }
        let Some(reg) = &self.registration else {
            return Err(SessionError::Rejected(format!(
                "node {node_id} is not registered with this hub"
            )));
        };
        if reg.jurisdiction != jurisdiction {
            return Err(SessionError::Rejected(format!(
                "node {node_id} is registered for jurisdiction {} but its Hello says {jurisdiction}",
                reg.jurisdiction
            )));
        }
        if edge_head < self.durable.seq {
            let reason = format!(
                "edge reports log head {edge_head} but the hub has durably received through seq {}: the edge lost records",
                self.durable.seq
            );
            self.actions.push_back(HubAction::Flag {
                reason: reason.clone(),
            });
            return Err(SessionError::Diverged(reason));
        }
        if down_applied > self.down_head {
            return Err(SessionError::Diverged(format!(
                "edge claims to have applied downstream seq {down_applied} but the hub's downstream chain ends at seq {}",
                self.down_head
            )));
        }
        let log_id = LogId::new(node_id.as_str()).map_err(|e| {
            SessionError::Misuse(format!("node id {node_id} is not a valid log id: {e}"))
        })?;
        self.verifier = Some(ChainVerifier::deferring_seals(
            log_id,
            reg.public_key,
            self.durable,
        ));
        self.seals = Some(SealBatcher::new(reg.public_key));
        self.edge_head = edge_head;
        self.down_sent = down_applied;
        self.down_acked = down_applied;
        // The Hello's downstream position is durable at the edge, i.e. an acknowledgement: the
        // DownAck that would have said so may have been lost with the previous connection.
        if down_applied > Seq::ZERO {
            self.actions.push_back(HubAction::DownAcked {
                applied: down_applied,
            });
        }
        // Everything the edge applied ended on a seal (it only applies whole seal groups).
        self.down_last_sealed_sent = down_applied;
        self.conn.outbox.push_back(Message::Welcome {
            version: PROTOCOL_VERSION,
            acked: self.durable.seq,
            acked_hash: self.durable.hash,
            down_head: self.down_head,
        });
        self.actions.push_back(HubAction::Touch {
            edge_head,
            edge_clock: now,
            now,
            // Not known before the first heartbeat; records behind show in `edge_head`.
            lag_ms: 0,
        });
        self.conn.phase = Phase::Established;
        self.conn.liveness.established(now, &self.cfg);
        self.maybe_read_down();
        Ok(())
    }

    fn on_records(&mut self, frames: Vec<Frame>) -> Result<(), SessionError> {
        if self.fork.is_some() {
            return self.feed_fork(frames);
        }
        let Some(verifier) = self.verifier.as_mut() else {
            return Err(SessionError::Misuse("no verifier after Hello".into()));
        };
        // Collect first: a failure anywhere in the message commits nothing from it.
        let mut released = Vec::new();
        let mut frames = frames.into_iter();
        let mut failure = None;
        for frame in frames.by_ref() {
            // At a group start the previous record is sealed, so a contradicting `prev_hash`
            // may be provable equivocation: keep a copy (once per group, cheap).
            let group_start = (verifier.pending_len() == 0).then(|| frame.clone());
            match verifier.push(frame) {
                Ok(r) => released.extend(r),
                Err(e) => {
                    failure = Some(Refusal::Record(e, group_start));
                    break;
                }
            }
            if verifier.pending_len() > self.cfg.max_unsealed {
                failure = Some(Refusal::TooManyUnsealed);
                break;
            }
        }
        if let Some(refusal) = failure {
            // A seal before the failing record that does not verify is the first error, as
            // with one-by-one verification; and no fork is probed past a bad seal.
            self.check_seals()?;
            return self.refuse(refusal, frames);
        }
        if let Some((_, last)) = released.last() {
            self.verified = last.seq;
            // Merge with a not yet taken Commit (several Records messages in one read):
            // group commit, fewer fsyncs; its seals are checked in one batch when taken.
            match self.actions.back_mut() {
                Some(HubAction::Commit { records }) => records.extend(released),
                _ => self
                    .actions
                    .push_back(HubAction::Commit { records: released }),
            }
        }
        Ok(())
    }

    /// A `Records` message failed a check other than a seal's: decide what that means. `rest`
    /// holds the frames after the failing one.
    fn refuse(
        &mut self,
        refusal: Refusal,
        rest: std::vec::IntoIter<Frame>,
    ) -> Result<(), SessionError> {
        let (e, group_start) = match refusal {
            Refusal::TooManyUnsealed => {
                return Err(SessionError::Protocol(format!(
                    "more than {} records without a seal",
                    self.cfg.max_unsealed
                )));
            }
            Refusal::Record(e, group_start) => (e, group_start),
        };
        match e {
            VerifyError::BrokenChain {
                seq,
                expected,
                found,
                ..
            } if group_start.is_some() => {
                let prev = Seq(seq.0 - 1);
                let (Some(first), Some(reg)) = (group_start, &self.registration) else {
                    return Err(SessionError::Misuse("no registration after Hello".into()));
                };
                self.fork = Some(ForkProbe {
                    verifier: ChainVerifier::new(
                        LogId::new(self.node.as_str()).map_err(|e| {
                            SessionError::Misuse(format!("node id is not a log id: {e}"))
                        })?,
                        reg.public_key,
                        ChainHead {
                            seq: prev,
                            hash: found,
                            timestamp: UnixMillis(i64::MIN),
                        },
                    ),
                    first_error: e,
                    seq: prev,
                    hub_hash: expected,
                    offered_hash: found,
                    frames: Vec::new(),
                });
                // Nothing from this message is committed; the rest goes to the probe.
                let rest: Vec<Frame> = std::iter::once(first).chain(rest).collect();
                self.feed_fork(rest)
            }
            VerifyError::Gap { .. } => Err(SessionError::Protocol(format!(
                "record out of sequence ({e}); the edge must send from seq {} on",
                self.committed.0.saturating_add(1)
            ))),
            e => Err(self.flag_verify(e)),
        }
    }

    fn flag_verify(&mut self, e: VerifyError) -> SessionError {
        self.actions.push_back(HubAction::Flag {
            reason: format!(
                "upstream log of node {} failed verification: {e}",
                self.node
            ),
        });
        SessionError::Verify(e)
    }

    /// Check every seal the verifier queued, in one batch. A bad one drops the queued `Commit`s
    /// (nothing is committed from them) and flags the node; the caller closes the session.
    fn check_seals(&mut self) -> Result<(), SessionError> {
        let (Some(verifier), Some(batcher)) = (self.verifier.as_mut(), self.seals.as_ref()) else {
            return Ok(());
        };
        if !verifier.has_deferred_seals() {
            return Ok(());
        }
        let seals = verifier.take_deferred_seals();
        match batcher.verify(&seals) {
            Ok(_) => Ok(()),
            Err(e) => {
                self.actions
                    .retain(|a| !matches!(a, HubAction::Commit { .. }));
                Err(self.flag_verify(e))
            }
        }
    }

    /// Feed frames of a contradicting history to the fork probe. A valid seal makes it proven
    /// equivocation (evidence queued, session closed); anything else that fails is an ordinary
    /// verification failure (node flagged, as for any bad record).
    fn feed_fork(&mut self, frames: Vec<Frame>) -> Result<(), SessionError> {
        let Some(probe) = self.fork.as_mut() else {
            return Ok(());
        };
        for frame in frames {
            probe.frames.push(frame.clone());
            match probe.verifier.push(frame) {
                Ok(r) if !r.is_empty() => {
                    let probe = self.fork.take().expect("probe present");
                    let reason = format!(
                        "node {} equivocated: it sealed record seq {} with hash {} and now seals a continuation that says that record has hash {}",
                        self.node, probe.seq, probe.hub_hash, probe.offered_hash
                    );
                    self.equivocations.push_back(ForkEvidence {
                        seq: probe.seq,
                        hub_hash: probe.hub_hash,
                        offered_hash: probe.offered_hash,
                        fork: probe.frames,
                    });
                    return Err(SessionError::Diverged(reason));
                }
                Ok(_) => {}
                Err(_) => return Err(self.fork_unproven()),
            }
            if probe.frames.len() > self.cfg.max_unsealed {
                return Err(self.fork_unproven());
            }
        }
        Ok(())
    }

    fn fork_unproven(&mut self) -> SessionError {
        let e = self
            .fork
            .take()
            .map(|p| p.first_error)
            .unwrap_or(VerifyError::Unsealed {
                first: Seq::ZERO,
                last: Seq::ZERO,
            });
        self.flag_verify(e)
    }

    /// A signed tree head from the edge: check its signature and origin, and that every record
    /// it covers has been verified here (the edge sends a head only after its records).
    fn on_checkpoint(&mut self, note: String) -> Result<(), SessionError> {
        if self.fork.is_some() {
            return Ok(());
        }
        let Some(reg) = &self.registration else {
            return Err(SessionError::Misuse("no registration after Hello".into()));
        };
        let origin = origin_for(self.node.as_str());
        let (cp, _) = open_checkpoint(&note, &origin, &reg.public_key)
            .map_err(|e| SessionError::Protocol(format!("checkpoint refused: {e}")))?;
        if cp.size == 0 || Seq(cp.size) > self.verified {
            return Err(SessionError::Protocol(format!(
                "checkpoint of size {} covers records the hub has not received (verified through seq {})",
                cp.size, self.verified
            )));
        }
        self.heads_in.push_back(SignedHead {
            size: Seq(cp.size),
            root: cp.root,
            note,
        });
        Ok(())
    }

    /// Signed heads to witness, in arrival order. Drain after the actions: every `Commit` of
    /// records a head covers was queued before it.
    pub fn poll_checkpoint(&mut self) -> Option<SignedHead> {
        self.heads_in.pop_front()
    }

    /// Proven equivocation found in this session (the session is closed by then).
    pub fn poll_equivocation(&mut self) -> Option<ForkEvidence> {
        self.equivocations.pop_front()
    }

    /// The shell verified the head of `size` records against its copy and cosigned it.
    pub fn cosigned(&mut self, size: Seq, cosignature: String) {
        if self.conn.phase == Phase::Established {
            self.conn
                .outbox
                .push_back(Message::Cosigned { size, cosignature });
        }
    }

    fn on_down_ack(&mut self, applied: Seq) -> Result<(), SessionError> {
        if applied < self.down_acked || applied > self.down_sent {
            return Err(SessionError::Protocol(format!(
                "DownAck for seq {applied} outside [{}, {}] (acked so far, sent)",
                self.down_acked, self.down_sent
            )));
        }
        if applied > self.down_acked {
            self.conn.liveness.ack_progress();
            self.down_acked = applied;
            self.down_unacked.acked(applied);
            self.actions.push_back(HubAction::DownAcked { applied });
            self.maybe_read_down();
        }
        Ok(())
    }

    /// The shell durably committed the upstream records through `seq` (the result of a
    /// `Commit`). Queues an `Ack`.
    pub fn committed(&mut self, seq: Seq) -> Result<(), SessionError> {
        if self.conn.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        if seq < self.committed || seq > self.verified {
            return Err(self.conn.fail(SessionError::Misuse(format!(
                "committed({seq}) outside [{}, {}] (committed so far, handed out)",
                self.committed, self.verified
            ))));
        }
        if seq > self.committed {
            self.committed = seq;
            self.conn.outbox.push_back(Message::Ack { acked: seq });
        }
        Ok(())
    }

    /// The node's downstream chain grew to `head` (e.g. from the store's watch channel).
    pub fn down_available(&mut self, head: Seq) {
        if head > self.down_head {
            self.down_head = head;
            self.maybe_read_down();
        }
    }

    /// The frames a `ReadDown` asked for (possibly fewer, but at least one).
    pub fn down_read(&mut self, frames: Vec<Frame>) -> Result<(), SessionError> {
        if self.conn.phase == Phase::Closed {
            return Err(SessionError::Closed);
        }
        if !self.read_down_outstanding {
            return Err(self
                .conn
                .fail(SessionError::Misuse("down_read without a ReadDown".into())));
        }
        self.read_down_outstanding = false;
        if frames.is_empty() {
            return Err(self.conn.fail(SessionError::Misuse(format!(
                "store returned no downstream frames after seq {} although its head is {}",
                self.down_sent, self.down_head
            ))));
        }
        let (last, sealed) =
            match check_contiguous(&frames, Seq(self.down_sent.0.saturating_add(1))) {
                Ok(v) => v,
                Err(e) => {
                    return Err(self.conn.fail(SessionError::Misuse(format!(
                        "store returned downstream frames out of order: {e}"
                    ))));
                }
            };
        self.down_sent = last;
        self.down_head = self.down_head.max(last);
        if let Some(s) = sealed {
            self.down_last_sealed_sent = s;
        }
        self.down_unacked.sent(&frames);
        let outbox = &mut self.conn.outbox;
        split_frames(frames, self.cfg.batch_bytes, |frames| {
            outbox.push_back(Message::Down { frames })
        });
        self.maybe_read_down();
        Ok(())
    }

    fn maybe_read_down(&mut self) {
        if self.conn.phase != Phase::Established
            || self.read_down_outstanding
            || self.down_sent >= self.down_head
        {
            return;
        }
        let in_flight = self.down_sent.0 - self.down_acked.0;
        let window = self.cfg.window as u64;
        let room = if in_flight < window {
            window - in_flight
        } else if self.down_last_sealed_sent <= self.down_acked {
            // No seal in flight: the edge cannot apply (and ack) anything before the seal.
            self.cfg.batch_records as u64
        } else {
            return;
        };
        let max = (self.down_head.0 - self.down_sent.0)
            .min(room)
            .min(self.cfg.batch_records.max(1) as u64);
        self.read_down_outstanding = true;
        self.actions.push_back(HubAction::ReadDown {
            after: self.down_sent,
            max: max as usize,
        });
    }

    /// Call when `poll_timeout` passes: sends heartbeats and detects a silent edge.
    pub fn handle_timeout(&mut self, now: UnixMillis) -> Result<(), SessionError> {
        let in_flight = self.down_sent.0.saturating_sub(self.down_acked.0);
        let heartbeat_due = self.conn.heartbeat_due(now, &self.cfg, in_flight)?;
        if heartbeat_due {
            self.conn.outbox.push_back(Message::Heartbeat {
                head: self.down_head,
                now_ms: now.0,
                lag_ms: self.down_unacked.lag_ms(now),
            });
        }
        Ok(())
    }

    /// Close on the shell's initiative (shutdown, storage failure, superseded); queues an
    /// `Error` message with `code` for the edge.
    pub fn abort(&mut self, code: u16, message: impl Into<String>) -> SessionError {
        self.conn.abort(code, message.into())
    }

    // ---- outputs ------------------------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.conn.outbox.pop_front()
    }

    /// The next action. The seals of a `Commit`'s records (and of any records queued after
    /// them) are checked, in one batch, before it is handed out; if one is bad the session
    /// closes, no `Commit` is handed out and the node is flagged (a `Flag` action follows).
    pub fn poll_action(&mut self) -> Option<HubAction> {
        if matches!(self.actions.front(), Some(HubAction::Commit { .. }))
            && let Err(e) = self.check_seals()
        {
            self.conn.fail(e);
        }
        self.actions.pop_front()
    }

    /// When `handle_timeout` should next be called (`None` once closed).
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        self.conn.deadline(&self.cfg)
    }

    // ---- state --------------------------------------------------------------------------

    pub fn node(&self) -> &NodeId {
        &self.node
    }
    pub fn is_established(&self) -> bool {
        self.conn.is_established()
    }
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
    pub fn error(&self) -> Option<&SessionError> {
        self.conn.error()
    }
    /// Durable upstream head as last reported by the shell.
    pub fn committed_head(&self) -> Seq {
        self.committed
    }
    /// Edge's durable head as last reported (Hello / heartbeat).
    pub fn edge_head(&self) -> Seq {
        self.edge_head
    }
    pub fn down_acked(&self) -> Seq {
        self.down_acked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::code;
    use outpost_core::log::{ChainWriter, NodeKey, RecordKind};

    fn key() -> NodeKey {
        NodeKey::from_seed([5; 32])
    }

    fn chain(log: &str, key: &NodeKey, n: usize, seal_every: usize) -> Vec<Frame> {
        let mut w = ChainWriter::new(LogId::new(log).unwrap(), ChainHead::EMPTY);
        (0..n)
            .map(|i| {
                let mut f = w.append(
                    RecordKind::BetPlaced,
                    UnixMillis(1000 + i as i64),
                    format!("{{\"i\":{i}}}").into_bytes(),
                );
                if (i + 1) % seal_every == 0 {
                    ChainWriter::seal(&mut f, key);
                }
                f
            })
            .collect()
    }

    fn head_of(frames: &[Frame]) -> ChainHead {
        let f = frames.last().unwrap();
        let b = f.parse_body().unwrap();
        ChainHead {
            seq: b.seq,
            hash: f.hash(),
            timestamp: b.timestamp,
        }
    }

    fn reg() -> NodeRegistration {
        NodeRegistration {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            public_key: key().public(),
        }
    }

    fn hello(node: &str, j: &str, edge_head: u64, down_applied: u64) -> Message {
        Message::Hello {
            version: PROTOCOL_VERSION,
            node_id: NodeId::new(node).unwrap(),
            jurisdiction: Jurisdiction::new(j).unwrap(),
            edge_head: Seq(edge_head),
            down_applied: Seq(down_applied),
        }
    }

    fn session(durable: ChainHead, down_head: u64) -> HubSession {
        HubSession::new(
            SessionConfig::default(),
            NodeId::new("gb-1").unwrap(),
            Some(reg()),
            durable,
            Seq(down_head),
            UnixMillis(0),
        )
    }

    /// A session past its `Hello` (edge at `edge_head`), with the handshake's actions taken.
    fn established(durable: ChainHead, edge_head: u64) -> HubSession {
        let mut s = session(durable, 0);
        s.handle_message(hello("gb-1", "GB", edge_head, 0), UnixMillis(1))
            .unwrap();
        actions(&mut s);
        s
    }

    /// The records of the one `Commit` the session hands out next (panics on anything else).
    fn take_commit(s: &mut HubSession) -> Vec<(Frame, RecordBody)> {
        let a = actions(s);
        let [HubAction::Commit { records }] = &a[..] else {
            panic!("{a:?}")
        };
        records.clone()
    }

    fn drain(s: &mut HubSession) -> Vec<Message> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }
    fn actions(s: &mut HubSession) -> Vec<HubAction> {
        std::iter::from_fn(|| s.poll_action()).collect()
    }

    fn error_of(msgs: &[Message]) -> (u16, String) {
        match msgs.last() {
            Some(Message::Error { code, message }) => (*code, message.clone()),
            other => panic!("expected an Error, got {other:?}"),
        }
    }

    #[test]
    fn hello_checks() {
        let mut s = session(ChainHead::EMPTY, 0);
        // An old node (the previous protocol version) talking to this hub.
        let mut h = hello("gb-1", "GB", 0, 0);
        if let Message::Hello { version, .. } = &mut h {
            *version = PROTOCOL_VERSION - 1;
        }
        s.handle_message(h, UnixMillis(1)).unwrap_err();
        assert_eq!(
            error_of(&drain(&mut s)),
            (
                code::VERSION,
                format!(
                    "protocol version {} not supported by hub (supports {PROTOCOL_VERSION})",
                    PROTOCOL_VERSION - 1
                )
            )
        );

        let mut s = session(ChainHead::EMPTY, 0);
        s.handle_message(hello("gb-2", "GB", 0, 0), UnixMillis(1))
            .unwrap_err();
        let (c, m) = error_of(&drain(&mut s));
        assert_eq!(c, code::UNAUTHORIZED);
        assert!(m.contains("authenticates node gb-1"), "{m}");

        let mut s = session(ChainHead::EMPTY, 0);
        s.handle_message(hello("gb-1", "IE", 0, 0), UnixMillis(1))
            .unwrap_err();
        let (c, m) = error_of(&drain(&mut s));
        assert_eq!(c, code::UNAUTHORIZED);
        assert!(
            m.contains("registered for jurisdiction GB but its Hello says IE"),
            "{m}"
        );

        let mut s = HubSession::new(
            SessionConfig::default(),
            NodeId::new("gb-9").unwrap(),
            None,
            ChainHead::EMPTY,
            Seq(0),
            UnixMillis(0),
        );
        s.handle_message(hello("gb-9", "GB", 0, 0), UnixMillis(1))
            .unwrap_err();
        assert_eq!(
            error_of(&drain(&mut s)),
            (
                code::UNAUTHORIZED,
                "rejected: node gb-9 is not registered with this hub".into()
            )
        );

        let mut s = session(ChainHead::EMPTY, 0);
        s.handle_message(Message::Records { frames: vec![] }, UnixMillis(1))
            .unwrap_err();
        assert_eq!(error_of(&drain(&mut s)).0, code::PROTOCOL);
    }

    #[test]
    fn edge_behind_durable_head_is_flagged() {
        let frames = chain("gb-1", &key(), 4, 2);
        let mut s = session(head_of(&frames), 0);
        let e = s
            .handle_message(hello("gb-1", "GB", 2, 0), UnixMillis(1))
            .unwrap_err();
        assert!(matches!(e, SessionError::Diverged(_)));
        assert!(matches!(&actions(&mut s)[..], [HubAction::Flag { .. }]));
        assert_eq!(error_of(&drain(&mut s)).0, code::DIVERGED);
    }

    #[test]
    fn records_are_verified_committed_then_acked() {
        let frames = chain("gb-1", &key(), 10, 3);
        let mut s = session(head_of(&frames[..3]), 0);
        s.handle_message(hello("gb-1", "GB", 10, 0), UnixMillis(1))
            .unwrap();
        assert!(matches!(
            &drain(&mut s)[..],
            [Message::Welcome { acked: Seq(3), .. }]
        ));
        assert!(matches!(
            &actions(&mut s)[..],
            [HubAction::Touch {
                edge_head: Seq(10),
                ..
            }]
        ));
        s.handle_message(
            Message::Records {
                frames: frames[3..7].to_vec(),
            },
            UnixMillis(2),
        )
        .unwrap();
        let records = take_commit(&mut s);
        assert_eq!(
            records.iter().map(|r| r.1.seq).collect::<Vec<_>>(),
            vec![Seq(4), Seq(5), Seq(6)]
        );
        assert!(
            drain(&mut s).is_empty(),
            "no ack before the commit is durable"
        );
        s.committed(Seq(6)).unwrap();
        assert_eq!(drain(&mut s), vec![Message::Ack { acked: Seq(6) }]);
        assert!(matches!(s.committed(Seq(7)), Err(SessionError::Misuse(_))));
    }

    #[test]
    fn commits_from_several_messages_are_merged_until_taken() {
        let frames = chain("gb-1", &key(), 6, 2);
        let mut s = established(ChainHead::EMPTY, 6);
        for f in frames.chunks(2) {
            s.handle_message(Message::Records { frames: f.to_vec() }, UnixMillis(2))
                .unwrap();
        }
        let records = take_commit(&mut s);
        assert_eq!(records.len(), 6);
    }

    #[test]
    fn tampering_flags_and_commits_nothing_from_the_message() {
        let frames = chain("gb-1", &key(), 6, 2);
        let mut s = established(ChainHead::EMPTY, 6);
        let mut t = frames.clone();
        let mut body = t[4].parse_body().unwrap();
        body.payload = b"{\"i\":666}".to_vec();
        t[4].body = body.encode();
        let e = s
            .handle_message(Message::Records { frames: t }, UnixMillis(2))
            .unwrap_err();
        assert!(matches!(e, SessionError::Verify(_)), "{e}");
        let a = actions(&mut s);
        assert!(
            matches!(&a[..], [HubAction::Flag { .. }]),
            "no Commit, even for seqs 1-4: {a:?}"
        );
        assert_eq!(error_of(&drain(&mut s)).0, code::VERIFY_FAILED);
        assert!(s.is_closed());

        // A different key is just as bad.
        let other = NodeKey::from_seed([6; 32]);
        let mut s = established(ChainHead::EMPTY, 6);
        // The seal is checked (in a batch) when the shell takes the Commit: it gets the Flag.
        s.handle_message(
            Message::Records {
                frames: chain("gb-1", &other, 2, 2),
            },
            UnixMillis(2),
        )
        .unwrap();
        assert!(matches!(&actions(&mut s)[..], [HubAction::Flag { .. }]));
        assert!(matches!(
            s.error(),
            Some(SessionError::Verify(VerifyError::BadSeal {
                seq: Seq(2),
                ..
            }))
        ));
        assert_eq!(error_of(&drain(&mut s)).0, code::VERIFY_FAILED);
    }

    #[test]
    fn seals_of_several_messages_are_checked_in_one_batch_before_the_commit() {
        let frames = chain("gb-1", &key(), 400, 4);
        let mut s = established(ChainHead::EMPTY, 400);
        for f in frames.chunks(100) {
            s.handle_message(Message::Records { frames: f.to_vec() }, UnixMillis(2))
                .unwrap();
        }
        let records = take_commit(&mut s);
        assert_eq!(records.len(), 400);
        s.committed(Seq(400)).unwrap();
        assert_eq!(
            drain(&mut s).last(),
            Some(&Message::Ack { acked: Seq(400) })
        );
    }

    #[test]
    fn one_forged_seal_among_many_refuses_the_batch_and_names_its_group() {
        let mut frames = chain("gb-1", &key(), 400, 4);
        // Group 37 (seqs 145-148) sealed by another key over the right hash.
        let other = NodeKey::from_seed([6; 32]);
        ChainWriter::seal(&mut frames[147], &other);
        let mut s = established(ChainHead::EMPTY, 400);
        for f in frames.chunks(100) {
            s.handle_message(Message::Records { frames: f.to_vec() }, UnixMillis(2))
                .unwrap();
        }
        let a = actions(&mut s);
        let [HubAction::Flag { reason }] = &a[..] else {
            panic!("nothing may be committed: {a:?}")
        };
        assert_eq!(
            reason,
            "upstream log of node gb-1 failed verification: record #147 seq 148: seal signature does not verify"
        );
        assert!(s.is_closed());
        let (c, m) = error_of(&drain(&mut s));
        assert_eq!(c, code::VERIFY_FAILED);
        assert!(m.contains("seq 148: seal signature does not verify"), "{m}");

        // A bad seal earlier in a message than a broken link is the error reported, as with
        // one-by-one verification.
        let mut t = frames[..160].to_vec();
        let mut body = t[153].parse_body().unwrap();
        body.payload = b"{\"i\":666}".to_vec();
        t[153].body = body.encode();
        let mut s = established(ChainHead::EMPTY, 400);
        let e = s
            .handle_message(Message::Records { frames: t }, UnixMillis(2))
            .unwrap_err();
        assert!(
            matches!(
                e,
                SessionError::Verify(VerifyError::BadSeal { seq: Seq(148), .. })
            ),
            "{e}"
        );
        assert!(matches!(&actions(&mut s)[..], [HubAction::Flag { .. }]));
    }

    #[test]
    fn duplicates_are_protocol_errors_without_flag() {
        let frames = chain("gb-1", &key(), 6, 2);
        let mut s = session(head_of(&frames[..2]), 0);
        s.handle_message(hello("gb-1", "GB", 6, 0), UnixMillis(1))
            .unwrap();
        actions(&mut s);
        let e = s
            .handle_message(
                Message::Records {
                    frames: frames[1..4].to_vec(),
                },
                UnixMillis(2),
            )
            .unwrap_err();
        assert!(matches!(e, SessionError::Protocol(_)), "{e}");
        assert!(e.to_string().contains("must send from seq 3"), "{e}");
        assert!(actions(&mut s).is_empty());
    }

    #[test]
    fn downstream_flow_control() {
        let hub_key = NodeKey::from_seed([9; 32]);
        let down = chain("hub/gb-1", &hub_key, 10, 1);
        let cfg = SessionConfig {
            window: 3,
            ..SessionConfig::default()
        };
        let mut s = HubSession::new(
            cfg,
            NodeId::new("gb-1").unwrap(),
            Some(reg()),
            ChainHead::EMPTY,
            Seq(2),
            UnixMillis(0),
        );
        s.handle_message(hello("gb-1", "GB", 0, 1), UnixMillis(1))
            .unwrap();
        drain(&mut s);
        let a = actions(&mut s);
        assert_eq!(
            a.last(),
            Some(&HubAction::ReadDown {
                after: Seq(1),
                max: 1
            })
        );
        s.down_read(down[1..2].to_vec()).unwrap();
        assert_eq!(
            drain(&mut s),
            vec![Message::Down {
                frames: down[1..2].to_vec()
            }]
        );
        assert!(actions(&mut s).is_empty());
        s.down_available(Seq(10));
        assert_eq!(
            actions(&mut s),
            vec![HubAction::ReadDown {
                after: Seq(2),
                max: 2
            }]
        );
        s.down_read(down[2..4].to_vec()).unwrap();
        assert!(actions(&mut s).is_empty(), "window of 3 full");
        s.handle_message(Message::DownAck { applied: Seq(3) }, UnixMillis(2))
            .unwrap();
        assert_eq!(
            actions(&mut s),
            vec![
                HubAction::DownAcked { applied: Seq(3) },
                HubAction::ReadDown {
                    after: Seq(4),
                    max: 2
                }
            ]
        );
        // Out-of-range ack.
        s.handle_message(Message::DownAck { applied: Seq(9) }, UnixMillis(3))
            .unwrap_err();
        assert_eq!(error_of(&drain(&mut s)).0, code::PROTOCOL);
    }

    #[test]
    fn heartbeats_touch_and_timeout() {
        let mut s = session(ChainHead::EMPTY, 4);
        s.handle_message(hello("gb-1", "GB", 0, 4), UnixMillis(0))
            .unwrap();
        drain(&mut s);
        actions(&mut s);
        s.handle_message(
            Message::Heartbeat {
                head: Seq(12),
                now_ms: 777,
                lag_ms: 40,
            },
            UnixMillis(500),
        )
        .unwrap();
        assert_eq!(
            actions(&mut s),
            vec![HubAction::Touch {
                edge_head: Seq(12),
                edge_clock: UnixMillis(777),
                now: UnixMillis(500),
                lag_ms: 40
            }]
        );
        s.handle_timeout(UnixMillis(1000)).unwrap();
        assert_eq!(
            drain(&mut s),
            vec![Message::Heartbeat {
                head: Seq(4),
                now_ms: 1000,
                lag_ms: 0
            }]
        );
        let e = s.handle_timeout(UnixMillis(15_500)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "timed out: nothing received from the edge for 15000 ms"
        );
    }

    // ---- witnessed checkpoints and equivocation -----------------------------------------

    /// The same chain as `chain` but with other payloads: a second history signed by the
    /// same node key.
    fn forked_chain(n: usize, seal_every: usize) -> Vec<Frame> {
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        (0..n)
            .map(|i| {
                let mut f = w.append(
                    RecordKind::BetPlaced,
                    UnixMillis(1000 + i as i64),
                    format!("{{\"fork\":{i}}}").into_bytes(),
                );
                if (i + 1) % seal_every == 0 {
                    ChainWriter::seal(&mut f, &key());
                }
                f
            })
            .collect()
    }

    fn note_for(frames: &[Frame], size: usize, key: &NodeKey) -> String {
        let mut t = outpost_core::log::merkle::MerkleTree::new();
        frames[..size].iter().for_each(|f| t.push(&f.hash().0));
        let cp = outpost_core::log::Checkpoint {
            origin: origin_for("gb-1"),
            size: size as u64,
            root: t.root(),
            timestamp: UnixMillis(5),
        };
        cp.sign(&cp.origin, key)
    }

    #[test]
    fn signed_heads_are_checked_then_queued_for_the_shell() {
        let frames = chain("gb-1", &key(), 10, 5);
        let mut s = session(ChainHead::EMPTY, 0);
        s.handle_message(hello("gb-1", "GB", 10, 0), UnixMillis(1))
            .unwrap();
        s.handle_message(
            Message::Records {
                frames: frames.clone(),
            },
            UnixMillis(2),
        )
        .unwrap();
        let note = note_for(&frames, 10, &key());
        s.handle_message(Message::Checkpoint { note: note.clone() }, UnixMillis(3))
            .unwrap();
        let head = s.poll_checkpoint().unwrap();
        assert_eq!((head.size, head.note), (Seq(10), note));
        s.cosigned(Seq(10), "\u{2014} w AAAA".into());
        assert_eq!(
            drain(&mut s).last(),
            Some(&Message::Cosigned {
                size: Seq(10),
                cosignature: "\u{2014} w AAAA".into()
            })
        );
        // Another key's signature is refused (not attributable: no flag).
        let other = NodeKey::from_seed([6; 32]);
        let e = s
            .handle_message(
                Message::Checkpoint {
                    note: note_for(&frames, 5, &other),
                },
                UnixMillis(4),
            )
            .unwrap_err();
        assert!(e.to_string().contains("checkpoint refused"), "{e}");
        assert!(
            !actions(&mut s)
                .iter()
                .any(|a| matches!(a, HubAction::Flag { .. }))
        );

        // A head ahead of the records received is a protocol error.
        let mut s = session(ChainHead::EMPTY, 0);
        s.handle_message(hello("gb-1", "GB", 10, 0), UnixMillis(1))
            .unwrap();
        s.handle_message(
            Message::Records {
                frames: frames[..5].to_vec(),
            },
            UnixMillis(2),
        )
        .unwrap();
        let e = s
            .handle_message(
                Message::Checkpoint {
                    note: note_for(&frames, 10, &key()),
                },
                UnixMillis(3),
            )
            .unwrap_err();
        assert!(e.to_string().contains("has not received"), "{e}");
    }

    #[test]
    fn a_sealed_fork_is_proven_equivocation_with_evidence() {
        let honest = chain("gb-1", &key(), 5, 5);
        let fork = forked_chain(10, 5);
        let mut s = session(head_of(&honest), 0);
        s.handle_message(hello("gb-1", "GB", 10, 0), UnixMillis(1))
            .unwrap();
        // Split over two messages: the probe keeps collecting until the seal.
        s.handle_message(
            Message::Records {
                frames: fork[5..7].to_vec(),
            },
            UnixMillis(2),
        )
        .unwrap();
        assert!(s.poll_equivocation().is_none());
        let e = s
            .handle_message(
                Message::Records {
                    frames: fork[7..10].to_vec(),
                },
                UnixMillis(3),
            )
            .unwrap_err();
        assert!(e.to_string().contains("equivocated"), "{e}");
        let ev = s.poll_equivocation().unwrap();
        assert_eq!(ev.seq, Seq(5));
        assert_eq!(ev.hub_hash, honest[4].hash());
        assert_eq!(ev.offered_hash, fork[4].hash());
        assert_eq!(ev.fork, fork[5..10].to_vec());
        let acts = actions(&mut s);
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, HubAction::Commit { .. } | HubAction::Flag { .. })),
            "{acts:?}"
        );
        assert_eq!(error_of(&drain(&mut s)).0, code::DIVERGED);
    }

    #[test]
    fn an_unsigned_fork_is_only_a_verification_failure() {
        let honest = chain("gb-1", &key(), 5, 5);
        let mut fork = forked_chain(10, 5);
        fork[9].seal = Some([1; 64]);
        let mut s = session(head_of(&honest), 0);
        s.handle_message(hello("gb-1", "GB", 10, 0), UnixMillis(1))
            .unwrap();
        let e = s
            .handle_message(
                Message::Records {
                    frames: fork[5..10].to_vec(),
                },
                UnixMillis(2),
            )
            .unwrap_err();
        assert!(
            matches!(e, SessionError::Verify(VerifyError::BrokenChain { .. })),
            "{e}"
        );
        assert!(s.poll_equivocation().is_none());
        assert!(
            actions(&mut s)
                .iter()
                .any(|a| matches!(a, HubAction::Flag { .. }))
        );
    }
}
