//! The tokio + quinn shells that drive the session state machines over QUIC with mutual TLS:
//! [`run_edge_link`] on the edge (one outgoing connection, reconnecting forever) and
//! [`run_hub_server`] / [`HubServer`] on the hub (one session per connected node).
//!
//! Storage stays outside this crate: the edge shell talks to its log through [`EdgeLog`], the
//! hub shell to its database through [`HubStore`].
//!
//! Each connection carries exactly one bidirectional stream, opened by the edge, on which both
//! sides exchange [`crate::wire`] messages. Each shell is a single task per connection that
//! `select!`s over reading the stream, writing its pending output (quinn's `read`/`write` are
//! cancel-safe), storage notifications, the session's timer and shutdown. Reading and writing
//! are never blocked on each other, so two peers with full buffers cannot deadlock; the
//! sessions' flow-control windows bound how much output can pile up.

mod edge;
mod hub;

pub use edge::{EdgeLinkConfig, LinkStatus, run_edge_link};
pub use hub::{HubServer, HubServerConfig, run_hub_server};

use crate::hub_session::{ForkEvidence, NodeRegistration, SignedHead};
use crate::wire::{Message, WireError};
use outpost_core::ids::{NodeId, Seq};
use outpost_core::log::{ChainHead, Frame, RecordBody};
use outpost_core::time::UnixMillis;
use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The edge's signed log as the replication link sees it.
pub trait EdgeLog: Send + Sync + 'static {
    /// Seq of the last durable record (always the end of a sealed commit group).
    fn durable_head(&self) -> Seq;
    /// Notified with the new durable head after each durable commit.
    fn subscribe_durable(&self) -> watch::Receiver<Seq>;
    /// Up to `max` consecutive durable frames starting at seq `from` (fewer, or none, if the
    /// log is shorter).
    fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, String>;
    /// Last durably applied seq of the downstream chain `hub/{node}`.
    fn down_applied(&self) -> Seq;
    /// Verify `frames` (consecutive whole seal groups continuing right after `down_applied()`)
    /// against the hub's public key, apply them durably, and return the new applied seq.
    /// An `Err` aborts the session (and the link reconnects later).
    fn apply_down(&self, frames: Vec<Frame>) -> impl Future<Output = Result<Seq, String>> + Send;

    // ---- witnessed checkpoints (`docs/checkpoints.md`) ----

    /// The newest signed tree head `(size, signed note)`, for the link to forward to the hub.
    /// `None`: this log does not sign checkpoints (test logs).
    fn checkpoints(&self) -> Option<watch::Receiver<Option<(Seq, String)>>> {
        None
    }
    /// The hub cosigned the head of `size` records: verify `cosignature` (a C2SP
    /// `cosignature/v1` note line) against the hub's key and store it durably with the
    /// checkpoint. An `Err` aborts the session.
    fn store_cosignature(
        &self,
        size: Seq,
        cosignature: String,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let _ = cosignature;
        async move {
            Err(format!(
                "this log keeps no checkpoints (cosignature for size {size} dropped)"
            ))
        }
    }
}

/// What the hub made of a node's signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Witnessed {
    /// It matches the hub's copy of the log: here is the hub's `cosignature/v1` line.
    Cosigned(String),
    /// It contradicts the hub's copy (or an earlier head): the node is quarantined and a
    /// critical alert with the evidence is stored. The text says why.
    Equivocation(String),
}

/// The hub's storage and registry as the replication server sees them. The server never runs
/// two sessions for one node at a time, so `commit_upstream` calls for a node are sequential.
pub trait HubStore: Send + Sync + 'static {
    /// The node's registration; `None` refuses the node.
    fn registration(&self, node: &NodeId) -> Option<NodeRegistration>;
    /// Durable head of the node's upstream log (`ChainHead::EMPTY` if nothing yet).
    fn upstream_head(&self, node: &NodeId) -> Result<ChainHead, String>;
    /// Durably append verified records (consecutive, continuing the durable head) and return
    /// the new durable head seq. Only then is the edge acknowledged.
    fn commit_upstream(
        &self,
        node: &NodeId,
        records: Vec<(Frame, RecordBody)>,
    ) -> impl Future<Output = Result<Seq, String>> + Send;
    /// The node sent records that failed verification (or lost records the hub had acknowledged).
    fn flag_node(&self, node: &NodeId, reason: &str);
    /// Liveness: the edge's durable head, at hub time `now_ms`.
    fn touch(&self, node: &NodeId, edge_head: Seq, now_ms: i64);
    /// Replication lag in time from the edge's heartbeat: the age (ms, on the edge's clock) of
    /// the edge's oldest record the hub has not yet acknowledged, reported at hub time `now_ms`.
    /// Default: ignored.
    fn lag(&self, _node: &NodeId, _lag_ms: i64, _now_ms: i64) {}
    /// Head of the node's downstream chain `hub/{node}`.
    fn down_head(&self, node: &NodeId) -> Seq;
    /// Notified with the new downstream head whenever the chain grows.
    fn subscribe_down(&self, node: &NodeId) -> watch::Receiver<Seq>;
    /// Up to `max` consecutive downstream frames with seq > `after`.
    fn read_down(&self, node: &NodeId, after: Seq, max: usize) -> Result<Vec<Frame>, String>;
    /// The edge durably applied the downstream chain through `applied`.
    fn down_acked(&self, node: &NodeId, applied: Seq);

    // ---- witnessed checkpoints and equivocation (`docs/checkpoints.md`) ----

    /// Why the node is refused at `Hello` (quarantined after equivocation), if it is.
    fn refusal(&self, node: &NodeId) -> Option<String>;
    /// Compare a signed head (signature already checked by the session; its records are
    /// committed) with the hub's copy of the node's log; cosign it or report equivocation.
    fn witness_checkpoint(
        &self,
        node: &NodeId,
        head: SignedHead,
    ) -> impl Future<Output = Result<Witnessed, String>> + Send;
    /// The node signed two different histories: quarantine it and store the evidence.
    fn report_equivocation(
        &self,
        node: &NodeId,
        evidence: ForkEvidence,
    ) -> impl Future<Output = ()> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind UDP socket {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("endpoint address: {0}")]
    LocalAddr(std::io::Error),
}

/// Output a shell has not yet written to the stream: encoded messages plus a write position.
#[derive(Default)]
struct Outbuf {
    bytes: Vec<u8>,
    pos: usize,
}

impl Outbuf {
    /// Bytes still to write.
    fn pending(&self) -> usize {
        self.bytes.len() - self.pos
    }
    fn unwritten(&self) -> &[u8] {
        &self.bytes[self.pos..]
    }
    fn push(&mut self, m: &Message) -> Result<(), WireError> {
        m.encode_into(&mut self.bytes)
    }
    fn consumed(&mut self, n: usize) {
        self.pos += n;
        if self.pos >= self.bytes.len() {
            self.bytes.clear();
            self.pos = 0;
        } else if self.pos > self.bytes.len() / 2 {
            self.bytes.drain(..self.pos);
            self.pos = 0;
        }
    }
}

/// Stop refilling output beyond this many unwritten bytes; the peer is not keeping up.
const OUT_HIGH_WATER: usize = 4 << 20;
/// Read chunk size.
const READ_CHUNK: usize = 64 * 1024;
/// How long to wait for the peer to receive our last bytes (e.g. an `Error`) before closing.
const LINGER: Duration = Duration::from_secs(2);

/// Session time: wall-clock milliseconds anchored once per connection and advanced by the
/// monotonic clock, so timers inside one connection never jump with the wall clock.
#[derive(Clone, Copy)]
struct Clock {
    wall0: i64,
    inst0: Instant,
}

impl Clock {
    fn new() -> Clock {
        let wall0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Clock {
            wall0,
            inst0: Instant::now(),
        }
    }
    fn now(&self) -> UnixMillis {
        UnixMillis(
            self.wall0
                .saturating_add(self.inst0.elapsed().as_millis() as i64),
        )
    }
    /// The tokio instant of a session deadline (far future if none).
    fn instant(&self, t: Option<UnixMillis>) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        match t {
            None => now + Duration::from_secs(3600),
            Some(t) => now + Duration::from_millis(t.0.saturating_sub(self.now().0).max(0) as u64),
        }
    }
}

/// Resolves once shutdown is requested (the flag becomes true, or its sender is dropped).
async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Write what is left of `out`, finish the stream, give the peer a moment to receive it, then
/// close the connection. quinn drops queued stream data on `close()`, hence the linger.
async fn close_gracefully(
    conn: &quinn::Connection,
    send: &mut quinn::SendStream,
    out: &Outbuf,
    code: u16,
    reason: &str,
) {
    let flush = async {
        if out.pending() > 0 {
            send.write_all(out.unwritten()).await.ok()?;
        }
        send.finish().ok()?;
        send.stopped().await.ok()
    };
    let _ = tokio::time::timeout(LINGER, flush).await;
    conn.close(u32::from(code).into(), truncate(reason, 200).as_bytes());
}

/// Send a single `Error` on a stream that has no session yet, then close.
async fn reject(conn: &quinn::Connection, send: &mut quinn::SendStream, code: u16, message: &str) {
    let mut out = Outbuf::default();
    let _ = out.push(&Message::error(code, message));
    close_gracefully(conn, send, &out, code, message).await;
}

/// A read error with the connection's close reason spelled out (quinn's `Display` for
/// `ConnectionLost` hides it, and it is where a TLS rejection is explained).
fn read_error(e: &quinn::ReadError) -> String {
    match e {
        quinn::ReadError::ConnectionLost(c) => c.to_string(),
        other => other.to_string(),
    }
}

fn write_error(e: &quinn::WriteError) -> String {
    match e {
        quinn::WriteError::ConnectionLost(c) => c.to_string(),
        other => other.to_string(),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
