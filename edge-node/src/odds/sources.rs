//! Feed sources besides the HTTP push endpoint: files fed once at start-up, and WebSocket
//! clients that connect to a provider and reconnect with backoff. Each message goes through
//! the same queue and book as a pushed one, so the same checks apply to all sources.

use super::config::{FileSource, SourceFormat, WsSource};
use super::{FeedKind, OddsHub};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub fn kind(f: SourceFormat) -> FeedKind {
    match f {
        SourceFormat::Uof => FeedKind::Uof,
        SourceFormat::Betfair => FeedKind::Betfair,
        SourceFormat::BetfairHistorical => FeedKind::BetfairHistorical,
    }
}

/// Feed a file, one message per non-empty line. A missing file is an error at start-up.
pub async fn feed_file(hub: Arc<OddsHub>, src: FileSource) -> anyhow::Result<usize> {
    let text = tokio::fs::read(&src.path)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", src.path.display()))?;
    let mut n = 0;
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if !hub.feed(kind(src.format), line.to_vec()).await {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// Keep a WebSocket connection to `src.url` until shutdown; every text or binary frame is one
/// message. Reconnects after 1, 2, 4 … 30 s. After a reconnect the producer's own recovery
/// (UOF snapshot, Betfair image) is what reopens markets.
pub async fn run_websocket(hub: Arc<OddsHub>, src: WsSource, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match tokio_tungstenite::connect_async(src.url.as_str()).await {
            Ok((mut ws, _)) => {
                tracing::info!(url = %src.url, "feed websocket connected");
                backoff = Duration::from_secs(1);
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        m = ws.next() => match m {
                            Some(Ok(msg)) => {
                                use tokio_tungstenite::tungstenite::Message;
                                let raw = match msg {
                                    Message::Text(t) => t.as_bytes().to_vec(),
                                    Message::Binary(b) => b.to_vec(),
                                    Message::Close(_) => break,
                                    _ => continue,
                                };
                                if !hub.feed(kind(src.format), raw).await {
                                    return;
                                }
                            }
                            Some(Err(e)) => {
                                tracing::warn!(url = %src.url, "feed websocket error: {e}");
                                break;
                            }
                            None => break,
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(url = %src.url, "feed websocket connect failed: {e}"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}
