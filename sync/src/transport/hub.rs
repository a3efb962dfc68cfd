//! The hub's replication server: a quinn endpoint that accepts mutually authenticated
//! connections, binds each to a node (the `Hello`'s node id must be named by the client
//! certificate), and runs one [`HubSession`] per connection against the [`HubStore`].
//!
//! Commits are pipelined: while one durable commit (SQLite, fsync) is in flight, the next
//! messages are read, decoded and verified, and their records wait to form the next commit,
//! so the commit size follows the disk's latency (group commit) and verification overlaps
//! with the fsync. An acknowledgement still goes out only after its commit returned.
//!
//! Sessions for the same node are serialised: a new connection from a node first tells the
//! running session to stop (`superseded`), then waits for it to end before reading the durable
//! head. Otherwise a stale session could still be committing while the new one resumes from an
//! older head, and records would be committed twice.

use super::{
    Clock, HubStore, LINGER, OUT_HIGH_WATER, Outbuf, READ_CHUNK, TransportError, Witnessed,
    close_gracefully, read_error, reject, shutdown_requested, write_error,
};
use crate::hub_session::{HubAction, HubSession, SignedHead};
use crate::pki::node_dns_name;
use crate::session::{SessionConfig, SessionError};
use crate::tls::cert_is_for_node;
use crate::wire::{Decoder, Message, PROTOCOL_VERSION, code};
use outpost_core::ids::{NodeId, Seq};
use outpost_core::log::{ChainHead, Frame, RecordBody};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

/// Configuration of the hub's replication server.
#[derive(Clone)]
pub struct HubServerConfig {
    pub listen: SocketAddr,
    /// From `tls::server_config*` / `tls::hub_server_config`.
    pub server: quinn::ServerConfig,
    pub session: SessionConfig,
    /// Limit for the handshake plus the edge's `Hello`.
    pub handshake_timeout: Duration,
}

impl HubServerConfig {
    pub fn new(listen: SocketAddr, server: quinn::ServerConfig) -> HubServerConfig {
        HubServerConfig {
            listen,
            server,
            session: SessionConfig::default(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A bound hub endpoint; [`HubServer::run`] serves it.
pub struct HubServer {
    endpoint: quinn::Endpoint,
    cfg: HubServerConfig,
}

/// Bind and serve until `shutdown` becomes true (or its sender is dropped).
pub async fn run_hub_server<S: HubStore>(
    cfg: HubServerConfig,
    store: Arc<S>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TransportError> {
    HubServer::bind(cfg)?.run(store, shutdown).await;
    Ok(())
}

impl HubServer {
    /// Bind the UDP socket (so the caller learns the port, e.g. when listening on port 0).
    pub fn bind(cfg: HubServerConfig) -> Result<HubServer, TransportError> {
        let endpoint =
            quinn::Endpoint::server(cfg.server.clone(), cfg.listen).map_err(|source| {
                TransportError::Bind {
                    addr: cfg.listen,
                    source,
                }
            })?;
        Ok(HubServer { endpoint, cfg })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        self.endpoint
            .local_addr()
            .map_err(TransportError::LocalAddr)
    }

    /// Serve until shutdown. On shutdown every session sends its edge an `Error(SHUTDOWN)`, then
    /// the endpoint closes. quinn's driver task releases the UDP socket a moment after this
    /// returns, so rebinding the same port right away may need a short retry.
    pub async fn run<S: HubStore>(self, store: Arc<S>, mut shutdown: watch::Receiver<bool>) {
        let HubServer { endpoint, cfg } = self;
        let addr = endpoint.local_addr().ok();
        info!(?addr, "hub replication server listening");
        let slots = Arc::new(Slots::default());
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown_requested(&mut shutdown) => break,
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => {
                        tasks.spawn(serve(incoming, store.clone(), slots.clone(), cfg.clone(), shutdown.clone()));
                    }
                    None => break,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        // Sessions watch the same signal and close themselves; give them a moment.
        let drained = tokio::time::timeout(LINGER + Duration::from_secs(1), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        endpoint.close(u32::from(code::SHUTDOWN).into(), b"hub shutting down");
        let _ = tokio::time::timeout(LINGER, endpoint.wait_idle()).await;
        info!(?addr, "hub replication server stopped");
    }
}

/// Per-node serialisation of sessions.
#[derive(Default)]
struct Slots {
    nodes: Mutex<HashMap<NodeId, Arc<Slot>>>,
}

struct Slot {
    /// Held by the running session for its whole life.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Bumped by each new connection; a session whose number is no longer current stops.
    generation: watch::Sender<u64>,
}

impl Slots {
    fn get(&self, node: &NodeId) -> Arc<Slot> {
        // A poisoned map is still a valid map (no invariant spans the lock).
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .entry(node.clone())
            .or_insert_with(|| {
                Arc::new(Slot {
                    lock: Arc::new(tokio::sync::Mutex::new(())),
                    generation: watch::Sender::new(0),
                })
            })
            .clone()
    }
}

/// How long a new connection waits for the node's previous session to wind down.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

async fn serve<S: HubStore>(
    incoming: quinn::Incoming,
    store: Arc<S>,
    slots: Arc<Slots>,
    cfg: HubServerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let remote = incoming.remote_address();
    let deadline = tokio::time::Instant::now() + cfg.handshake_timeout;
    // A client without a certificate from the operator CA (or speaking anything but QUIC
    // with our ALPN) fails here.
    let conn = match incoming.accept() {
        Ok(connecting) => match tokio::time::timeout_at(deadline, connecting).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                warn!(%remote, "replication handshake failed: {e}");
                return;
            }
            Err(_) => {
                warn!(%remote, "replication handshake timed out");
                return;
            }
        },
        Err(e) => {
            warn!(%remote, "refused connection attempt: {e}");
            return;
        }
    };
    // Resolves only once the edge has written on the stream (its Hello).
    let (mut send, mut recv) = match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(%remote, "connection closed before opening a stream: {e}");
            return;
        }
        Err(_) => {
            warn!(%remote, "no stream opened within the handshake timeout");
            conn.close(u32::from(code::TIMEOUT).into(), b"no stream opened");
            return;
        }
    };

    // First message: must be a Hello.
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let first = loop {
        match decoder.next() {
            Ok(Some(m)) => break Ok(m),
            Ok(None) => {}
            // A node speaking another protocol version may send a Hello this build cannot
            // decode; tell it the versions differ rather than that its bytes are garbage.
            Err(e) => {
                break Err(match decoder.peek_hello_version() {
                    Some(v) if v != PROTOCOL_VERSION => (
                        code::VERSION,
                        format!(
                            "protocol version {v} not supported by hub (supports {PROTOCOL_VERSION})"
                        ),
                    ),
                    _ => (code::PROTOCOL, format!("undecodable first message: {e}")),
                });
            }
        }
        match tokio::time::timeout_at(deadline, recv.read(&mut buf)).await {
            Ok(Ok(Some(n))) => decoder.push(&buf[..n]),
            Ok(Ok(None)) => break Err((code::PROTOCOL, "stream finished before Hello".to_owned())),
            Ok(Err(e)) => {
                debug!(%remote, "connection lost before Hello: {e}");
                return;
            }
            Err(_) => {
                break Err((
                    code::TIMEOUT,
                    "no Hello within the handshake timeout".to_owned(),
                ));
            }
        }
    };
    let (hello, node) = match first {
        Ok(Message::Hello {
            version,
            node_id,
            jurisdiction,
            edge_head,
            down_applied,
        }) => {
            let node = node_id.clone();
            let hello = Message::Hello {
                version,
                node_id,
                jurisdiction,
                edge_head,
                down_applied,
            };
            (hello, node)
        }
        Ok(other) => {
            let msg = format!("expected Hello, got {}", other.name());
            warn!(%remote, "refusing connection: {msg}");
            reject(&conn, &mut send, code::PROTOCOL, &msg).await;
            return;
        }
        Err((c, msg)) => {
            warn!(%remote, "refusing connection: {msg}");
            reject(&conn, &mut send, c, &msg).await;
            return;
        }
    };

    // The certificate must name the node the Hello claims.
    if !cert_is_for_node(&conn, &node) {
        let msg = format!(
            "TLS client certificate is not valid for node {node} (it must name {})",
            node_dns_name(&node)
        );
        warn!(%remote, %node, "refusing connection: {msg}");
        reject(&conn, &mut send, code::UNAUTHORIZED, &msg).await;
        return;
    }

    // One session per node at a time: supersede the running one, then wait for it to end.
    let slot = slots.get(&node);
    let mut mine = 0;
    slot.generation.send_modify(|g| {
        *g += 1;
        mine = *g;
    });
    let mut generation = slot.generation.subscribe();
    let _guard = match tokio::time::timeout(TAKEOVER_WAIT, slot.lock.clone().lock_owned()).await {
        Ok(g) => g,
        Err(_) => {
            let msg = format!("previous session of node {node} is still closing; retry later");
            warn!(%remote, %node, "{msg}");
            reject(&conn, &mut send, code::INTERNAL, &msg).await;
            return;
        }
    };
    if *generation.borrow_and_update() != mine {
        reject(
            &conn,
            &mut send,
            code::SUPERSEDED,
            "a newer connection from this node took over",
        )
        .await;
        return;
    }

    // A node quarantined for equivocation is refused until an operator clears it.
    if let Some(reason) = store.refusal(&node) {
        let msg = format!("node {node} is quarantined: {reason}");
        warn!(%remote, %node, "refusing connection: {msg}");
        reject(&conn, &mut send, code::VERIFY_FAILED, &msg).await;
        return;
    }

    // An unknown node gets a session anyway: it refuses the Hello with a clear Error. Its
    // (nonexistent) chains are not looked up.
    let registration = store.registration(&node);
    let (head, down_head, mut down_rx) = if registration.is_some() {
        let head = match store.upstream_head(&node) {
            Ok(h) => h,
            Err(e) => {
                error!(%node, "cannot read upstream head: {e}");
                let msg = format!("hub storage error: {e}");
                reject(&conn, &mut send, code::INTERNAL, &msg).await;
                return;
            }
        };
        let down_rx = store.subscribe_down(&node);
        (head, store.down_head(&node), down_rx)
    } else {
        (ChainHead::EMPTY, Seq::ZERO, watch::channel(Seq::ZERO).1)
    };
    let clock = Clock::new();
    let mut session = HubSession::new(
        cfg.session.clone(),
        node.clone(),
        registration,
        head,
        down_head,
        clock.now(),
    );
    let _ = session.handle_message(hello, clock.now());
    // Whatever arrived in the same reads as the Hello.
    feed(&mut decoder, &mut session, &clock);
    if session.is_established() {
        info!(%remote, %node, durable = %head.seq, "replication session established");
    }

    let mut out = Outbuf::default();
    // The commit in flight, and the verified records that wait for it to finish.
    let mut in_flight: Option<InFlight<'_>> = None;
    let mut next_commit: Vec<(Frame, RecordBody)> = Vec::new();
    // Signed heads wait until every record they cover is durable here.
    let mut heads: VecDeque<SignedHead> = VecDeque::new();
    let mut stop_requested = false;
    let mut down_open = true;
    let mut generation_open = true;
    let transport_failure: Option<String> = loop {
        // 1. Actions.
        while let Some(action) = session.poll_action() {
            match action {
                HubAction::Commit { records } => {
                    if session.is_closed() {
                        continue; // never commit after a failure in the same session
                    }
                    next_commit.extend(records);
                }
                HubAction::Flag { reason } => {
                    warn!(%remote, %node, "flagging node: {reason}");
                    store.flag_node(&node, &reason);
                }
                HubAction::Touch {
                    edge_head,
                    now,
                    lag_ms,
                    ..
                } => {
                    store.touch(&node, edge_head, now.0);
                    store.lag(&node, lag_ms, now.0);
                }
                HubAction::ReadDown { after, max } => {
                    if session.is_closed() {
                        continue;
                    }
                    match store.read_down(&node, after, max) {
                        Ok(frames) => {
                            let _ = session.down_read(frames);
                        }
                        Err(e) => {
                            error!(%node, "reading downstream chain failed: {e}");
                            session.abort(
                                code::INTERNAL,
                                format!("hub could not read downstream records: {e}"),
                            );
                        }
                    }
                }
                HubAction::DownAcked { applied } => store.down_acked(&node, applied),
            }
        }
        // 1b. Equivocation evidence (the session has closed itself), then signed heads; every
        // commit a head covers was an action above.
        while let Some(evidence) = session.poll_equivocation() {
            error!(%remote, %node, seq = %evidence.seq, "CRITICAL: node equivocated (two different records for one sequence number)");
            store.report_equivocation(&node, evidence).await;
        }
        if session.is_closed() {
            next_commit.clear();
        } else if in_flight.is_none() && !next_commit.is_empty() {
            let records = std::mem::take(&mut next_commit);
            in_flight = Some(Box::pin(store.commit_upstream(&node, records)));
        }
        while let Some(head) = session.poll_checkpoint() {
            heads.push_back(head);
        }
        while heads
            .front()
            .is_some_and(|h| h.size <= session.committed_head())
        {
            let Some(head) = heads.pop_front() else { break };
            if session.is_closed() {
                break;
            }
            let size = head.size;
            match store.witness_checkpoint(&node, head).await {
                Ok(Witnessed::Cosigned(line)) => session.cosigned(size, line),
                Ok(Witnessed::Equivocation(reason)) => {
                    error!(%remote, %node, %size, "CRITICAL: {reason}");
                    session.abort(code::VERIFY_FAILED, reason);
                }
                Err(e) => {
                    error!(%node, "witnessing checkpoint failed: {e}");
                    session.abort(
                        code::INTERNAL,
                        format!("hub could not witness the checkpoint: {e}"),
                    );
                }
            }
        }
        // 2. Encode output.
        while let Some(m) = session.poll_transmit() {
            if let Err(e) = out.push(&m) {
                session.abort(code::INTERNAL, format!("cannot encode {}: {e}", m.name()));
            }
        }
        if session.is_closed() {
            break None;
        }

        let deadline = clock.instant(session.poll_timeout());
        tokio::select! {
            r = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                committed(&mut session, &node, r);
            }
            _ = shutdown_requested(&mut shutdown), if !stop_requested => {
                stop_requested = true;
                session.abort(code::SHUTDOWN, "hub shutting down");
            }
            r = generation.changed(), if generation_open => match r {
                Ok(()) => {
                    if *generation.borrow_and_update() != mine {
                        session.abort(code::SUPERSEDED, "a newer connection from this node took over");
                    }
                }
                Err(_) => generation_open = false,
            },
            // Stop reading while the edge is not taking our output: backpressure through QUIC.
            r = recv.read(&mut buf), if out.pending() < OUT_HIGH_WATER => match r {
                Ok(Some(n)) => {
                    decoder.push(&buf[..n]);
                    feed(&mut decoder, &mut session, &clock);
                }
                Ok(None) => break Some("edge finished the stream".to_owned()),
                Err(e) => break Some(format!("connection lost: {}", read_error(&e))),
            },
            r = send.write(out.unwritten()), if out.pending() > 0 => match r {
                Ok(n) => out.consumed(n),
                Err(e) => break Some(format!("write failed: {}", write_error(&e))),
            },
            r = down_rx.changed(), if down_open => match r {
                Ok(()) => {
                    let head = *down_rx.borrow_and_update();
                    session.down_available(head);
                }
                Err(_) => down_open = false,
            },
            _ = tokio::time::sleep_until(deadline) => {
                let _ = session.handle_timeout(clock.now());
            }
        }
    };

    // A commit already issued finishes before the session ends (the next session of this node
    // starts from the durable head); its records are acknowledged if the edge still listens.
    if let Some(commit) = in_flight.take() {
        committed(&mut session, &node, commit.await);
        while let Some(m) = session.poll_transmit() {
            let _ = out.push(&m);
        }
    }
    match (transport_failure, session.error().cloned()) {
        (Some(t), _) => {
            info!(%remote, %node, committed = %session.committed_head(), "replication session ended: {t}");
            conn.close(u32::from(code::INTERNAL).into(), b"connection failed");
        }
        (None, Some(e)) => {
            log_end(&remote, &node, &session, &e);
            close_gracefully(&conn, &mut send, &out, e.code(), &e.to_string()).await;
        }
        (None, None) => conn.close(0u32.into(), b""),
    }
}

/// A durable commit of upstream records in flight.
type InFlight<'a> = Pin<Box<dyn Future<Output = Result<Seq, String>> + Send + 'a>>;

/// The outcome of a commit: acknowledge it, or end the session.
fn committed(session: &mut HubSession, node: &NodeId, r: Result<Seq, String>) {
    match r {
        Ok(seq) => {
            let _ = session.committed(seq);
        }
        Err(e) => {
            error!(%node, "commit failed: {e}");
            session.abort(code::INTERNAL, format!("hub could not commit records: {e}"));
        }
    }
}

/// Hand every complete message in `decoder` to the session; an undecodable one closes the
/// session with a `PROTOCOL` error naming the problem (logged when the session ends).
fn feed(decoder: &mut Decoder, session: &mut HubSession, clock: &Clock) {
    loop {
        match decoder.next() {
            Ok(Some(m)) => {
                if session.handle_message(m, clock.now()).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                session.abort(
                    code::PROTOCOL,
                    format!("undecodable message from edge: {e}"),
                );
                return;
            }
        }
    }
}

fn log_end(remote: &SocketAddr, node: &NodeId, session: &HubSession, e: &SessionError) {
    let committed = session.committed_head();
    match e {
        SessionError::Aborted {
            code: code::SHUTDOWN | code::SUPERSEDED,
            ..
        }
        | SessionError::Remote {
            code: code::SHUTDOWN,
            ..
        } => {
            info!(%remote, %node, %committed, "replication session ended: {e}")
        }
        SessionError::Timeout(_) | SessionError::Remote { .. } => {
            info!(%remote, %node, %committed, "replication session ended: {e}")
        }
        _ => warn!(%remote, %node, %committed, "replication session refused or failed: {e}"),
    }
}
