//! The edge's replication link: connect to the hub, run an [`EdgeSession`] over one QUIC
//! stream, and reconnect forever with capped exponential backoff after any failure. Progress and
//! the last error are published on a `watch` channel ([`LinkStatus`]) for health endpoints.

use super::{
    Clock, EdgeLog, LINGER, OUT_HIGH_WATER, Outbuf, READ_CHUNK, close_gracefully, read_error,
    shutdown_requested, write_error,
};
use crate::edge_session::{EdgeAction, EdgeSession};
use crate::pki::HUB_SERVER_NAME;
use crate::session::SessionConfig;
use crate::wire::{Decoder, code};
use outpost_core::ids::{Jurisdiction, NodeId, Seq};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// What the link is doing, for health checks and operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// A session is established (the hub's `Welcome` arrived and nothing failed since).
    pub connected: bool,
    /// The hub's durable position for this node (from `Welcome`/`Ack`).
    pub acked: Seq,
    /// Local durable head as last seen by the link.
    pub local_head: Seq,
    /// Downstream records durably applied.
    pub down_applied: Seq,
    /// The hub's downstream head as last reported.
    pub hub_down_head: Seq,
    /// Sessions established since start.
    pub sessions: u64,
    /// The most recent failure (kept after a successful reconnect, for display).
    pub last_error: Option<String>,
}

/// Configuration of [`run_edge_link`].
pub struct EdgeLinkConfig {
    pub node_id: NodeId,
    pub jurisdiction: Jurisdiction,
    pub hub_addr: SocketAddr,
    /// Name the hub's certificate must carry (default `hub.outpost`).
    pub server_name: String,
    /// From `tls::client_config*` / `tls::edge_client_config`.
    pub client: quinn::ClientConfig,
    pub session: SessionConfig,
    /// Limit for the QUIC handshake.
    pub connect_timeout: Duration,
    /// Reconnect delay after the first failure; doubles per failure up to `backoff_max`, and
    /// resets once a session was established and made progress or lasted a while.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Where the link publishes its [`LinkStatus`].
    pub status: watch::Sender<LinkStatus>,
}

impl EdgeLinkConfig {
    /// Defaults (server name `hub.outpost`, backoff 100 ms → 5 s) and a fresh status channel.
    pub fn new(
        node_id: NodeId,
        jurisdiction: Jurisdiction,
        hub_addr: SocketAddr,
        client: quinn::ClientConfig,
    ) -> (EdgeLinkConfig, watch::Receiver<LinkStatus>) {
        let (status, rx) = watch::channel(LinkStatus::default());
        let cfg = EdgeLinkConfig {
            node_id,
            jurisdiction,
            hub_addr,
            server_name: HUB_SERVER_NAME.to_owned(),
            client,
            session: SessionConfig::default(),
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            status,
        };
        (cfg, rx)
    }
}

/// A session that lasted this long counts as healthy and resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(5);

enum Outcome {
    Shutdown,
    Ended { error: String, healthy: bool },
}

/// Replicate `log` to the hub until `shutdown` becomes true (or its sender is dropped).
/// Never returns early: every failure is logged, published in the status, and retried.
pub async fn run_edge_link<L: EdgeLog>(
    cfg: EdgeLinkConfig,
    log: Arc<L>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut endpoint: Option<quinn::Endpoint> = None;
    let mut backoff = cfg.backoff_min;
    info!(node = %cfg.node_id, hub = %cfg.hub_addr, "edge replication link starting");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let outcome = match client_endpoint(&mut endpoint, cfg.hub_addr) {
            Ok(ep) => connection(&cfg, &ep, &log, &mut shutdown).await,
            Err(e) => Outcome::Ended {
                error: format!("cannot create UDP endpoint: {e}"),
                healthy: false,
            },
        };
        match outcome {
            Outcome::Shutdown => break,
            Outcome::Ended { error, healthy } => {
                if healthy {
                    backoff = cfg.backoff_min;
                }
                warn!(node = %cfg.node_id, hub = %cfg.hub_addr, retry_in = ?backoff, "replication link down: {error}");
                cfg.status.send_modify(|s| {
                    s.connected = false;
                    s.last_error = Some(error);
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown_requested(&mut shutdown) => break,
        }
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
    cfg.status.send_modify(|s| s.connected = false);
    if let Some(ep) = endpoint {
        ep.close(u32::from(code::SHUTDOWN).into(), b"edge shutting down");
        let _ = tokio::time::timeout(LINGER, ep.wait_idle()).await;
    }
    info!(node = %cfg.node_id, "edge replication link stopped");
}

fn client_endpoint(
    slot: &mut Option<quinn::Endpoint>,
    hub: SocketAddr,
) -> std::io::Result<quinn::Endpoint> {
    if let Some(ep) = slot {
        return Ok(ep.clone());
    }
    let bind: SocketAddr = if hub.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let ep = quinn::Endpoint::client(bind)?;
    *slot = Some(ep.clone());
    Ok(ep)
}

/// One connection: handshake, session, teardown.
async fn connection<L: EdgeLog>(
    cfg: &EdgeLinkConfig,
    ep: &quinn::Endpoint,
    log: &Arc<L>,
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    let ended = |error: String| Outcome::Ended {
        error,
        healthy: false,
    };
    let connecting = match ep.connect_with(cfg.client.clone(), cfg.hub_addr, &cfg.server_name) {
        Ok(c) => c,
        Err(e) => return ended(format!("cannot connect: {e}")),
    };
    let conn = tokio::select! {
        r = tokio::time::timeout(cfg.connect_timeout, connecting) => match r {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return ended(format!("QUIC/TLS handshake failed: {e}")),
            Err(_) => return ended(format!("no handshake within {:?}", cfg.connect_timeout)),
        },
        _ = shutdown_requested(shutdown) => return Outcome::Shutdown,
    };
    // Opening a stream is local; the hub sees it with our first write (the Hello).
    let (mut send, mut recv) = match conn.open_bi().await {
        Ok(s) => s,
        Err(e) => return ended(format!("cannot open stream: {e}")),
    };
    debug!(node = %cfg.node_id, hub = %cfg.hub_addr, "QUIC connection up, sending Hello");

    let clock = Clock::new();
    let started = tokio::time::Instant::now();
    let mut session = EdgeSession::new(
        cfg.session.clone(),
        cfg.node_id.clone(),
        cfg.jurisdiction.clone(),
        log.durable_head(),
        log.down_applied(),
        clock.now(),
    );
    // Established yet (counted in the status), and the hub's position at that moment.
    let mut counted = false;
    let mut welcome_acked: Option<Seq> = None;
    let mut durable_rx = log.subscribe_durable();
    let mut heads_rx = log.checkpoints();
    if let Some(rx) = heads_rx.as_mut()
        && let Some((size, note)) = rx.borrow_and_update().clone()
    {
        session.checkpoint(size, note);
    }
    let mut out = Outbuf::default();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut decoder = Decoder::new();
    let mut stop_requested = false;

    // `Some(text)`: the connection failed underneath the session (no Error message to send).
    let transport_failure: Option<String> = loop {
        // 1. Actions: apply downstream frames.
        while let Some(EdgeAction::ApplyDown(frames)) = session.poll_action() {
            match log.apply_down(frames).await {
                Ok(seq) => {
                    let _ = session.down_applied(seq);
                }
                Err(e) => {
                    session.abort(
                        code::INTERNAL,
                        format!("edge could not apply downstream records: {e}"),
                    );
                }
            }
        }
        // 1b. Cosignatures from the hub: verify and store with their checkpoints.
        while let Some((size, cosignature)) = session.poll_cosigned() {
            if let Err(e) = log.store_cosignature(size, cosignature).await {
                session.abort(
                    code::INTERNAL,
                    format!("edge could not store the hub's cosignature: {e}"),
                );
            }
        }
        // 2. Stream the log while the window and our output buffer allow.
        while out.pending() < OUT_HIGH_WATER {
            let Some((from, max)) = session.want_records() else {
                break;
            };
            match log.read_frames(from, max) {
                Ok(frames) if frames.is_empty() => break,
                Ok(frames) => {
                    if session.records_read(frames).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    session.abort(code::INTERNAL, format!("edge could not read its log: {e}"));
                    break;
                }
            }
        }
        // 3. Encode output.
        while let Some(m) = session.poll_transmit() {
            if let Err(e) = out.push(&m) {
                session.abort(code::INTERNAL, format!("cannot encode {}: {e}", m.name()));
            }
        }
        publish(cfg, &session, &mut counted);
        if counted && welcome_acked.is_none() {
            welcome_acked = Some(session.acked());
        }
        if session.is_closed() {
            break None;
        }

        let deadline = clock.instant(session.poll_timeout());
        tokio::select! {
            _ = shutdown_requested(shutdown), if !stop_requested => {
                stop_requested = true;
                session.abort(code::SHUTDOWN, "edge shutting down");
            }
            r = recv.read(&mut buf) => match r {
                Ok(Some(n)) => {
                    decoder.push(&buf[..n]);
                    loop {
                        match decoder.next() {
                            Ok(Some(m)) => {
                                if session.handle_message(m, clock.now()).is_err() {
                                    break;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                session.abort(code::PROTOCOL, format!("undecodable message from hub: {e}"));
                                break;
                            }
                        }
                    }
                }
                Ok(None) => break Some("hub finished the stream".to_owned()),
                Err(e) if session.is_established() => break Some(format!("connection lost: {}", read_error(&e))),
                // mTLS rejection surfaces here, on the first read.
                Err(e) => break Some(format!("connection lost before Welcome (was this node's certificate rejected?): {}", read_error(&e))),
            },
            r = send.write(out.unwritten()), if out.pending() > 0 => match r {
                Ok(n) => out.consumed(n),
                Err(e) => break Some(format!("write failed: {}", write_error(&e))),
            },
            r = durable_rx.changed() => match r {
                Ok(()) => {
                    let head = *durable_rx.borrow_and_update();
                    session.on_local_durable(head);
                }
                Err(_) => {
                    session.abort(code::SHUTDOWN, "edge log closed");
                }
            },
            r = async { heads_rx.as_mut().expect("guarded").changed().await }, if heads_rx.is_some() => match r {
                Ok(()) => {
                    let head = heads_rx.as_mut().and_then(|rx| rx.borrow_and_update().clone());
                    if let Some((size, note)) = head {
                        session.checkpoint(size, note);
                    }
                }
                Err(_) => heads_rx = None,
            },
            _ = tokio::time::sleep_until(deadline) => {
                let _ = session.handle_timeout(clock.now());
            }
        }
    };

    let healthy =
        welcome_acked.is_some_and(|w| session.acked() > w || started.elapsed() >= HEALTHY_SESSION);
    let error = match (transport_failure, session.error()) {
        (Some(t), _) => {
            conn.close(u32::from(code::INTERNAL).into(), b"connection failed");
            t
        }
        (None, Some(e)) => {
            let reason = e.to_string();
            // Our own Error (if any) is in `out`; a Remote error needs no reply.
            close_gracefully(&conn, &mut send, &out, e.code(), &reason).await;
            reason
        }
        (None, None) => "session closed".to_owned(),
    };
    if stop_requested {
        return Outcome::Shutdown;
    }
    Outcome::Ended { error, healthy }
}

/// Publish the session's progress (only when something changed, to spare watchers).
fn publish(cfg: &EdgeLinkConfig, s: &EdgeSession, counted: &mut bool) {
    let newly_established = s.is_established() && !*counted;
    if newly_established {
        *counted = true;
        info!(node = %cfg.node_id, hub = %cfg.hub_addr, acked = %s.acked(), "replication session established");
    }
    cfg.status.send_if_modified(|st| {
        let mut next = st.clone();
        next.connected = s.is_established();
        next.local_head = s.local_head();
        next.down_applied = s.down_applied_head();
        // Before Welcome the session knows nothing about the hub: keep the last known values.
        if *counted {
            next.acked = s.acked();
            next.hub_down_head = s.hub_down_head();
        }
        next.sessions += u64::from(newly_established);
        let changed = *st != next;
        *st = next;
        changed
    });
}
