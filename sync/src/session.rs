//! Pieces shared by the two sans-IO session state machines: tuning knobs and the error type.
//!
//! Both machines follow the quinn-proto pattern: no I/O, no clock, no tasks. The caller feeds
//! received messages, timer expiries and storage results in, and drains messages to transmit
//! (`poll_transmit`), actions to perform (`poll_action`) and the next deadline (`poll_timeout`).
//! Any error closes the session for good; unless the peer caused it with its own `Error`
//! message, an `Error` message explaining why is queued for transmission first, so the caller
//! should still drain `poll_transmit` and send it before closing the connection.

use crate::wire::{code, peek_seq};
use outpost_core::ids::Seq;
use outpost_core::log::{Frame, VerifyError};
use outpost_core::time::UnixMillis;
use std::collections::VecDeque;

/// Tuning shared by both ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Max records sent but not yet acknowledged, upstream (edge) and downstream (hub). Bounds
    /// what the receiver must hold and what the sender buffers. The window may be exceeded only
    /// to finish a seal group (nothing in flight carries a seal), because the receiver can only
    /// acknowledge sealed records and would otherwise wait forever.
    pub window: usize,
    /// Max records asked from storage at once.
    pub batch_records: usize,
    /// Target size of one `Records`/`Down` message; frames are split into several messages so
    /// that none nears [`crate::wire::MAX_MESSAGE`] (a single frame is at most ~1 MiB).
    pub batch_bytes: usize,
    /// Heartbeat period.
    pub heartbeat_ms: i64,
    /// Close the session when nothing arrived from the peer for this long (heartbeats keep a
    /// healthy peer well inside it), or when records are in flight and no acknowledgement has
    /// advanced for this long. QUIC's idle timeout catches dead networks; this also catches a
    /// live connection whose peer application is stuck.
    pub peer_timeout_ms: i64,
    /// Max unsealed records a receiver holds while waiting for the seal of their group. A seal
    /// group larger than this is a protocol error.
    pub max_unsealed: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            window: 8192,
            batch_records: 1024,
            batch_bytes: 1 << 20,
            heartbeat_ms: 1000,
            peer_timeout_ms: 15_000,
            max_unsealed: 65_536,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer sent an `Error` message.
    #[error("peer closed the session with error {code} ({}): {message}", code::name(*code))]
    Remote { code: u16, message: String },
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Protocol versions differ; the text names both.
    #[error("{0}")]
    Version(String),
    /// The hub refused the node (unknown node, certificate/claim mismatch, wrong jurisdiction).
    #[error("rejected: {0}")]
    Rejected(String),
    /// The upstream chain failed verification (the hub flags the node).
    #[error("chain verification failed: {0}")]
    Verify(VerifyError),
    /// The two sides disagree about history.
    #[error("logs diverged: {0}")]
    Diverged(String),
    /// The peer went silent, or stopped acknowledging what was sent to it.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The caller closed the session (shutdown, storage failure, superseded...).
    #[error("session aborted ({}): {message}", code::name(*code))]
    Aborted { code: u16, message: String },
    /// The caller used the state machine wrongly (e.g. fed records that do not continue the
    /// stream). A bug in the shell or its storage, not in the peer.
    #[error("caller error: {0}")]
    Misuse(String),
    /// The session had already ended.
    #[error("session is closed")]
    Closed,
}

impl SessionError {
    /// The wire error code that describes this error to the peer.
    pub fn code(&self) -> u16 {
        match self {
            SessionError::Remote { code, .. } | SessionError::Aborted { code, .. } => *code,
            SessionError::Protocol(_) => code::PROTOCOL,
            SessionError::Version(_) => code::VERSION,
            SessionError::Rejected(_) => code::UNAUTHORIZED,
            SessionError::Verify(_) => code::VERIFY_FAILED,
            SessionError::Diverged(_) => code::DIVERGED,
            SessionError::Timeout(_) => code::TIMEOUT,
            SessionError::Misuse(_) | SessionError::Closed => code::INTERNAL,
        }
    }

    /// The text of the `Error` message that tells the peer (the peer adds the code's name).
    pub(crate) fn peer_text(&self) -> String {
        match self {
            SessionError::Aborted { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether an `Error` message should tell the peer about it (not when the peer itself said
    /// it, and not twice).
    pub(crate) fn tell_peer(&self) -> bool {
        !matches!(self, SessionError::Remote { .. } | SessionError::Closed)
    }
}

/// Check that `frames` continue a stream whose next expected sequence number is `first`.
/// Returns the last sequence number and the last sealed one (if any frame is sealed).
pub(crate) fn check_contiguous(frames: &[Frame], first: Seq) -> Result<(Seq, Option<Seq>), String> {
    let mut expected = first;
    let mut last_sealed = None;
    let mut last = Seq::ZERO;
    for (i, f) in frames.iter().enumerate() {
        let Some(seq) = peek_seq(f) else {
            return Err(format!(
                "frame #{i} has no readable sequence number (expected seq {expected})"
            ));
        };
        if seq != expected {
            return Err(format!("frame #{i} has seq {seq}, expected {expected}"));
        }
        if f.seal.is_some() {
            last_sealed = Some(seq);
        }
        last = seq;
        expected = Seq(seq.0.saturating_add(1));
    }
    Ok((last, last_sealed))
}

/// Split a run of frames into messages of about `batch_bytes` each (at least one frame each).
pub(crate) fn split_frames(
    frames: Vec<Frame>,
    batch_bytes: usize,
    mut emit: impl FnMut(Vec<Frame>),
) {
    let mut batch = Vec::new();
    let mut size = 0usize;
    for f in frames {
        // Encoded size: u32 length + body + seal flag + optional signature.
        let n = 5 + f.body.len() + if f.seal.is_some() { 64 } else { 0 };
        if !batch.is_empty() && size + n > batch_bytes {
            emit(std::mem::take(&mut batch));
            size = 0;
        }
        size += n;
        batch.push(f);
    }
    if !batch.is_empty() {
        emit(batch);
    }
}

/// The timestamp (record creation time on the writer's clock) of a frame, read from its body
/// bytes like [`peek_seq`]: it follows the seq (see `docs/log-format.md`). `None` if the body
/// is too short or lacks the record magic.
pub(crate) fn peek_timestamp(frame: &Frame) -> Option<i64> {
    let b = &frame.body;
    if b.get(..4)? != b"OPLR" {
        return None;
    }
    let id_len = u16::from_be_bytes([*b.get(6)?, *b.get(7)?]) as usize;
    let at = 16usize.checked_add(id_len)?;
    let t: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(t) as i64)
}

/// Timestamps of records sent but not yet acknowledged, oldest first; gives the lag in time
/// that heartbeats carry. Holds at most what the flow-control window lets be in flight.
#[derive(Debug, Default)]
pub(crate) struct Unacked {
    sent: VecDeque<(Seq, i64)>,
}

impl Unacked {
    pub(crate) fn sent(&mut self, frames: &[Frame]) {
        for f in frames {
            if let (Some(seq), Some(ts)) = (peek_seq(f), peek_timestamp(f)) {
                self.sent.push_back((seq, ts));
            }
        }
    }
    pub(crate) fn acked(&mut self, through: Seq) {
        while self.sent.front().is_some_and(|(s, _)| *s <= through) {
            self.sent.pop_front();
        }
    }
    /// Age at `now` of the oldest unacknowledged record (0 if none, never negative).
    pub(crate) fn lag_ms(&self, now: UnixMillis) -> i64 {
        self.sent
            .front()
            .map_or(0, |(_, ts)| now.0.saturating_sub(*ts).max(0))
    }
}

/// Milliseconds from `from` to `to`, saturating.
pub(crate) fn elapsed(from: UnixMillis, to: UnixMillis) -> i64 {
    to.0.saturating_sub(from.0)
}

/// `t + ms`, saturating.
pub(crate) fn after(t: UnixMillis, ms: i64) -> UnixMillis {
    UnixMillis(t.0.saturating_add(ms))
}

/// How a machine names its peer in timeout errors.
#[derive(Debug)]
pub(crate) struct PeerNames {
    /// "hub" or "edge".
    pub(crate) peer: &'static str,
    /// What acknowledges this side's records: "acknowledgement" or "DownAck".
    pub(crate) ack: &'static str,
    /// What this side sends that needs acknowledging: "records" or "downstream records".
    pub(crate) records: &'static str,
}

/// The timers both machines keep: when the peer was last heard from, when our next heartbeat
/// is due, and since when records we sent have waited for an acknowledgement. Shared so the two
/// ends cannot drift apart in how they detect a dead or stuck peer.
#[derive(Debug)]
pub(crate) struct Liveness {
    last_rx: UnixMillis,
    next_heartbeat: UnixMillis,
    /// Armed lazily by `check` while records are in flight, cleared by ack progress.
    ack_wait_since: Option<UnixMillis>,
}

impl Liveness {
    pub(crate) fn new(now: UnixMillis, cfg: &SessionConfig) -> Liveness {
        Liveness {
            last_rx: now,
            next_heartbeat: after(now, cfg.heartbeat_ms),
            ack_wait_since: None,
        }
    }

    /// Something arrived from the peer.
    pub(crate) fn received(&mut self, now: UnixMillis) {
        self.last_rx = now;
    }

    /// The session was just established: the first heartbeat is a period away.
    pub(crate) fn established(&mut self, now: UnixMillis, cfg: &SessionConfig) {
        self.next_heartbeat = after(now, cfg.heartbeat_ms);
    }

    /// The peer's acknowledgement advanced: restart the wait for the next one.
    pub(crate) fn ack_progress(&mut self) {
        self.ack_wait_since = None;
    }

    /// At `now`, with `in_flight` records unacknowledged: a timeout error if the peer has been
    /// silent, or has not acknowledged for `peer_timeout_ms`; otherwise whether a heartbeat is
    /// due (only once `established`; the next one is then re-armed).
    pub(crate) fn check(
        &mut self,
        now: UnixMillis,
        cfg: &SessionConfig,
        in_flight: u64,
        established: bool,
        names: &PeerNames,
    ) -> Result<bool, SessionError> {
        let silent = elapsed(self.last_rx, now);
        if silent >= cfg.peer_timeout_ms {
            return Err(SessionError::Timeout(format!(
                "nothing received from the {} for {silent} ms",
                names.peer
            )));
        }
        self.ack_wait_since = match self.ack_wait_since {
            _ if in_flight == 0 => None,
            None => Some(now),
            Some(since) if elapsed(since, now) >= cfg.peer_timeout_ms => {
                let waited = elapsed(since, now);
                return Err(SessionError::Timeout(format!(
                    "no {} from the {} for {waited} ms with {in_flight} {} in flight",
                    names.ack, names.peer, names.records
                )));
            }
            Some(since) => Some(since),
        };
        if established && now >= self.next_heartbeat {
            self.next_heartbeat = after(now, cfg.heartbeat_ms);
            return Ok(true);
        }
        Ok(false)
    }

    /// When `check` should next run: the silence bound, and once established also the next
    /// heartbeat and the acknowledgement bound.
    pub(crate) fn deadline(&self, cfg: &SessionConfig, established: bool) -> UnixMillis {
        let mut t = after(self.last_rx, cfg.peer_timeout_ms);
        if established {
            t = t.min(self.next_heartbeat);
            if let Some(since) = self.ack_wait_since {
                t = t.min(after(since, cfg.peer_timeout_ms));
            }
        }
        t
    }
}

/// Where a session is: waiting for the peer's handshake (`Hello` at the hub, `Welcome` at the
/// edge), established, or closed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Handshake,
    Established,
    Closed,
}

/// The connection-level part both machines share: the phase, the messages waiting to be sent,
/// the liveness timers and the error that closed the session. One implementation, so the two
/// ends close, report and time out the same way.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) phase: Phase,
    pub(crate) outbox: VecDeque<crate::wire::Message>,
    pub(crate) liveness: Liveness,
    error: Option<SessionError>,
    names: &'static PeerNames,
}

impl Conn {
    pub(crate) fn new(now: UnixMillis, cfg: &SessionConfig, names: &'static PeerNames) -> Conn {
        Conn {
            phase: Phase::Handshake,
            outbox: VecDeque::new(),
            liveness: Liveness::new(now, cfg),
            error: None,
            names,
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    pub(crate) fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    pub(crate) fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// Close the session with `e` (the first error wins): unless the peer caused it, queue an
    /// `Error` message telling the peer why.
    pub(crate) fn fail(&mut self, e: SessionError) -> SessionError {
        if self.phase != Phase::Closed {
            if e.tell_peer() {
                self.outbox
                    .push_back(crate::wire::Message::error(e.code(), e.peer_text()));
            }
            self.phase = Phase::Closed;
            self.error = Some(e.clone());
        }
        e
    }

    /// Close on the shell's initiative with `code` (see the machines' `abort`).
    pub(crate) fn abort(&mut self, code: u16, message: String) -> SessionError {
        if self.phase == Phase::Closed {
            return SessionError::Closed;
        }
        self.fail(SessionError::Aborted { code, message })
    }

    /// The timer check of `handle_timeout`, with `in_flight` records of ours unacknowledged:
    /// closes the session if the peer is silent or stuck, else says whether a heartbeat is due.
    pub(crate) fn heartbeat_due(
        &mut self,
        now: UnixMillis,
        cfg: &SessionConfig,
        in_flight: u64,
    ) -> Result<bool, SessionError> {
        if self.phase == Phase::Closed {
            return Ok(false);
        }
        let established = self.phase == Phase::Established;
        self.liveness
            .check(now, cfg, in_flight, established, self.names)
            .map_err(|e| self.fail(e))
    }

    /// When `handle_timeout` should next be called (`None` once closed).
    pub(crate) fn deadline(&self, cfg: &SessionConfig) -> Option<UnixMillis> {
        match self.phase {
            Phase::Closed => None,
            Phase::Handshake => Some(self.liveness.deadline(cfg, false)),
            Phase::Established => Some(self.liveness.deadline(cfg, true)),
        }
    }
}
