//! Feed push endpoints, feed metrics and the odds stream.
//!
//! * `POST /v1/feed/uof` (one UOF XML message) and `POST /v1/feed/betfair` (one Stream API
//!   JSON message): applied by the odds book; the reply says how many market changes were
//!   logged, or why the message was skipped (4xx with a stable code; nothing changes).
//! * `GET /v1/feed/stats`: counters of received/applied/skipped messages per reason, producer
//!   states, stream sequence and connected stream clients.
//! * `GET /v1/odds`: the current markets. `GET /v1/odds/stream`: Server-Sent Events: one
//!   `snapshot` event (`{"seq":S,"markets":[…]}`), then one `change` event per market change
//!   with `id:` = its sequence number S+1, S+2, … A client that sees a gap, or receives a
//!   `resync` event (it fell too far behind), reconnects and starts from a new snapshot.
//!   Most stream connections never reach this route: the listener hands a connection whose
//!   first request is the stream to the odds fan-out thread (`stream_listener.rs`), which
//!   serves the same events; this route serves a stream asked for on a reused connection.

use super::AppState;
use super::error::ApiError;
use crate::odds::{FeedKind, OddsHub};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::stream;
use outpost_core::feed::book::Skip;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// Feed messages above this are refused before parsing (the parsers also bound input).
const FEED_BODY_MAX: usize = 4 * 1024 * 1024;

fn hub(s: &AppState) -> Result<&Arc<OddsHub>, ApiError> {
    s.odds
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("odds are not enabled on this node"))
}

fn skip_error(e: Skip) -> ApiError {
    let msg = e.to_string();
    match e {
        Skip::Malformed(_) => ApiError::bad_request("FEED_MALFORMED", msg),
        Skip::UnknownProducer(_) => ApiError::unprocessable("FEED_UNKNOWN_PRODUCER", msg),
        Skip::UnknownMarket => ApiError::unprocessable("FEED_UNKNOWN_MARKET", msg),
        Skip::OutOfOrder { .. } => ApiError::new(StatusCode::CONFLICT, "FEED_OUT_OF_ORDER", msg),
        Skip::Duplicate => ApiError::new(StatusCode::CONFLICT, "FEED_DUPLICATE", msg),
        Skip::UnrequestedRecovery { .. } => {
            ApiError::new(StatusCode::CONFLICT, "FEED_UNREQUESTED_RECOVERY", msg)
        }
    }
}

async fn push(
    s: AppState,
    kind: FeedKind,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hub = hub(&s)?;
    if body.len() > FEED_BODY_MAX {
        hub.refused.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "FEED_TOO_LARGE",
            "feed message above 4 MiB",
        ));
    }
    match hub.ingest(kind, body.to_vec()).await {
        Ok(report) => Ok(Json(
            serde_json::to_value(report).expect("report serialises"),
        )),
        // A retried push of the same message is answered as success and changes nothing.
        Err(Skip::Duplicate) => Ok(Json(serde_json::json!({ "changes": 0, "duplicate": true }))),
        Err(e) => Err(skip_error(e)),
    }
}

pub async fn push_uof(
    State(s): State<AppState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    push(s, FeedKind::Uof, body).await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetfairQuery {
    /// The message is a line of a Betfair historical-data file (a complete recorded state).
    #[serde(default)]
    historical: bool,
}

pub async fn push_betfair(
    State(s): State<AppState>,
    super::extract::Query(q): super::extract::Query<BetfairQuery>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = if q.historical {
        FeedKind::BetfairHistorical
    } else {
        FeedKind::Betfair
    };
    push(s, kind, body).await
}

pub async fn stats(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let hub = hub(&s)?;
    let (stats, producers, seq) = hub.stats();
    Ok(Json(serde_json::json!({
        "messages": stats,
        "refused": hub.refused.load(Ordering::Relaxed),
        "producers": producers,
        "odds_seq": seq,
        "stream_clients": hub.stream_clients(),
        "stream_clients_dropped_slow": hub.fanout.stats.dropped_slow.load(Ordering::Relaxed),
        "stream_fanout_rounds": hub.fanout.stats.rounds.load(Ordering::Relaxed),
        "recovery_requests": hub.recovery.as_ref().map(|r| serde_json::json!({
            "sent": r.stats.sent.load(Ordering::Relaxed),
            "failed": r.stats.failed.load(Ordering::Relaxed),
        })),
    })))
}

pub async fn snapshot(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let (seq, markets, _) = hub(&s)?.subscribe();
    Ok(Json(serde_json::json!({ "seq": seq, "markets": markets })))
}

/// Frames already waiting for a client are written together (one write, not one per change),
/// which keeps a slow moment from turning into a backlog when many clients are connected.
const COALESCE_MAX: usize = 256;

pub async fn stream(State(s): State<AppState>) -> Result<Response, ApiError> {
    let (seq, markets, rx) = hub(&s)?.subscribe();
    let first = crate::odds::snapshot_frame(seq, &markets.iter().collect::<Vec<_>>());
    // State: (pending first frame, receiver, finished).
    let body = stream::unfold(
        (Some(first), rx, false),
        |(first, mut rx, done)| async move {
            if done {
                return None;
            }
            if let Some(f) = first {
                return Some((Ok::<Bytes, Infallible>(f), (None, rx, false)));
            }
            // No per-client timer: the hub broadcasts a keep-alive comment when idle.
            let p = match rx.recv().await {
                Ok(p) => p,
                Err(RecvError::Lagged(n)) => {
                    let f = Bytes::from(format!("event: resync\ndata: {{\"missed\":{n}}}\n\n"));
                    return Some((Ok(f), (None, rx, true)));
                }
                Err(RecvError::Closed) => return None,
            };
            // The common case (nothing else waiting) sends the shared frame without copying.
            let next = match rx.try_recv() {
                Ok(n) => n,
                Err(TryRecvError::Lagged(n)) => {
                    let f = Bytes::from(format!("event: resync\ndata: {{\"missed\":{n}}}\n\n"));
                    return Some((Ok(f), (None, rx, true)));
                }
                Err(_) => return Some((Ok(p.frame), (None, rx, false))),
            };
            let mut out = BytesMut::from(&p.frame[..]);
            out.extend_from_slice(&next.frame);
            for _ in 0..COALESCE_MAX {
                match rx.try_recv() {
                    Ok(p) => out.extend_from_slice(&p.frame),
                    Err(TryRecvError::Lagged(n)) => {
                        out.extend_from_slice(
                            format!("event: resync\ndata: {{\"missed\":{n}}}\n\n").as_bytes(),
                        );
                        return Some((Ok(out.freeze()), (None, rx, true)));
                    }
                    Err(_) => break,
                }
            }
            Some((Ok(out.freeze()), (None, rx, false)))
        },
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}
