//! The node's HTTP listener: hands a connection whose first request is
//! `GET /v1/odds/stream` to the odds fan-out thread (`odds/fanout.rs`), and every other
//! connection to the axum router.
//!
//! Why: a stream connection only ever receives the same frames as every other one; serving
//! it from one fan-out thread instead of a hyper connection task saves a task wake-up and a
//! body poll per client per change (see `fanout.rs`). The response is the same Server-Sent
//! Events stream the router's `/v1/odds/stream` route serves (`api/odds.rs`), close-delimited:
//! the head, one `snapshot` event, then `change` events with consecutive ids. A connection
//! that asks for the stream after another request on the same connection is served by that
//! route.

use crate::odds::OddsHub;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const STREAM_REQUEST: &[u8] = b"GET /v1/odds/stream";
/// A request head above this is refused (the router's limit for headers is similar).
const HEAD_MAX: usize = 16 * 1024;
/// A client that has connected but not sent its request line within this is passed to the
/// router (which applies its own rules).
const FIRST_BYTES_WAIT: Duration = Duration::from_secs(10);

pub struct StreamListener {
    rx: mpsc::Receiver<(TcpStream, SocketAddr)>,
    addr: SocketAddr,
}

impl StreamListener {
    /// Accept on `listener`; stream connections go to `odds` when odds are enabled.
    pub fn start(
        listener: TcpListener,
        odds: Option<Arc<OddsHub>>,
    ) -> std::io::Result<StreamListener> {
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(accept_loop(listener, odds, tx));
        Ok(StreamListener { rx, addr })
    }
}

impl axum::serve::Listener for StreamListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop ended (the node is stopping): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    odds: Option<Arc<OddsHub>>,
    tx: mpsc::Sender<(TcpStream, SocketAddr)>,
) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small responses and stream events must not wait for Nagle + delayed ACK.
        let _ = sock.set_nodelay(true);
        if tx.is_closed() {
            return;
        }
        match &odds {
            None => {
                if tx.send((sock, peer)).await.is_err() {
                    return;
                }
            }
            Some(hub) => {
                let (hub, tx) = (hub.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Some(sock) = divert(sock, &hub).await {
                        let _ = tx.send((sock, peer)).await;
                    }
                });
            }
        }
    }
}

/// Serve the connection from the fan-out thread if its first request is for the stream;
/// otherwise give it back (nothing read from it yet).
async fn divert(sock: TcpStream, hub: &OddsHub) -> Option<TcpStream> {
    let deadline = tokio::time::Instant::now() + FIRST_BYTES_WAIT;
    let mut first = [0u8; STREAM_REQUEST.len() + 1];
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.peek(&mut first)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return Some(sock),
        };
        let k = n.min(STREAM_REQUEST.len());
        if first[..k] != STREAM_REQUEST[..k] {
            return Some(sock);
        }
        if n > STREAM_REQUEST.len() {
            if matches!(first[STREAM_REQUEST.len()], b' ' | b'?') {
                break;
            }
            return Some(sock);
        }
        // Only part of the request line has arrived.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    serve_stream(sock, hub).await;
    None
}

/// Read the request head, answer with the event-stream head and hand the socket over.
async fn serve_stream(mut sock: TcpStream, hub: &OddsHub) {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let complete = tokio::time::timeout(FIRST_BYTES_WAIT, async {
        loop {
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return true;
            }
            if head.len() > HEAD_MAX {
                return false;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or(false);
    let line_end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(head.len());
    let line = &head[..line_end];
    if !complete || !(line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0")) {
        let _ = sock
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    // The body ends when the connection does (no chunking: each frame is written as is).
    let ok = sock
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
        )
        .await;
    if ok.is_err() {
        return;
    }
    match sock.into_std() {
        Ok(std_sock) => hub.attach_stream_client(std_sock),
        Err(e) => tracing::warn!("odds stream connection not handed over: {e}"),
    }
}
