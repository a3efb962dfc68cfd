//! Read access to the durable log: JSON pages for people and tools, and segment files
//! (`docs/log-format.md`) for independent verification. Only durable records are served, and
//! every record acknowledged before a request arrived is in its answer's range.

use super::AppState;
use super::error::ApiError;
use super::extract::Query;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use base64::Engine;
use outpost_core::ids::Seq;
use outpost_core::log::{Frame, SEGMENT_FORMAT, SegmentHeader, encode_segment};
use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

pub async fn page(
    State(s): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let durable = readable_head(&s).await?;
    let from = Seq(q.after.saturating_add(1));
    let frames = if from > durable {
        vec![]
    } else {
        read(&s, from, limit.min((durable.0 - from.0 + 1) as usize)).await?
    };
    let records: Vec<serde_json::Value> = frames
        .iter()
        .filter_map(|f| {
            let b = f.parse_body().ok()?;
            let payload: serde_json::Value = serde_json::from_slice(&b.payload).ok()?;
            Some(serde_json::json!({
                "seq": b.seq, "kind": b.kind.name(), "timestamp_ms": b.timestamp.0,
                "prev_hash": b.prev_hash.to_hex(), "hash": f.hash().to_hex(), "sealed": f.seal.is_some(),
                "payload": payload,
                "frame_b64": base64::engine::general_purpose::STANDARD.encode(f.encode()),
            }))
        })
        .collect();
    Ok(axum::Json(
        serde_json::json!({ "log_id": s.node_id, "durable_seq": durable, "records": records }),
    ))
}

/// How long a read waits for the store to hold what was acknowledged before it arrived.
const READABLE_WAIT: Duration = Duration::from_secs(10);

/// The head to serve up to: at least everything acknowledged when the request arrived, so a
/// client told its bet is durable finds its record here. The store's applier puts each group
/// into sled just after it is acknowledged; this waits for that (usually not at all).
async fn readable_head(s: &AppState) -> Result<Seq, ApiError> {
    match tokio::time::timeout(READABLE_WAIT, s.writer.wait_readable()).await {
        Ok(head) => Ok(head?.seq),
        Err(_) => Err(ApiError::unavailable(format!(
            "the store has not applied the acknowledged log within {READABLE_WAIT:?}"
        ))),
    }
}

async fn read(s: &AppState, from: Seq, max: usize) -> Result<Vec<Frame>, ApiError> {
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.read_frames(from, max))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentQuery {
    from: Option<u64>,
    to: Option<u64>,
}

/// A verifiable segment from `from` (default 1) through `to` (default: the durable head),
/// extended to the next seal so that every record in it is covered by a signature.
pub async fn segment(
    State(s): State<AppState>,
    Query(q): Query<SegmentQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let durable = readable_head(&s).await?;
    let from = Seq(q.from.unwrap_or(1).max(1));
    let to = Seq(q.to.unwrap_or(durable.0).min(durable.0));
    if from > to {
        return Err(ApiError::bad_request(
            "INVALID_RANGE",
            format!("empty range {from}..={to} (durable head {durable})"),
        ));
    }
    if to.0 - from.0 >= 1_000_000 {
        return Err(ApiError::bad_request(
            "RANGE_TOO_LARGE",
            "at most 1,000,000 records per segment",
        ));
    }
    let mut frames = read(&s, from, (to.0 - from.0 + 1) as usize).await?;
    // Extend to the seal that covers `to`.
    while frames.last().is_some_and(|f| f.seal.is_none()) {
        let next = Seq(from.0 + frames.len() as u64);
        let more = read(&s, next, 64).await?;
        if more.is_empty() {
            return Err(ApiError::unavailable("log tail is not sealed"));
        }
        for f in more {
            let sealed = f.seal.is_some();
            frames.push(f);
            if sealed {
                break;
            }
        }
    }
    let first = frames
        .first()
        .and_then(|f| f.parse_body().ok())
        .ok_or_else(|| ApiError::unavailable("cannot read first record"))?;
    let prev_ts = if from.0 > 1 {
        read(&s, Seq(from.0 - 1), 1)
            .await?
            .first()
            .and_then(|f| f.parse_body().ok())
            .map(|b| b.timestamp.0)
            .unwrap_or(0)
    } else {
        0
    };
    let last = frames.last().expect("non-empty");
    let header = SegmentHeader {
        format: SEGMENT_FORMAT.into(),
        log_id: first.log_id.clone(),
        first_seq: from,
        last_seq: Seq(from.0 + frames.len() as u64 - 1),
        prev_hash: first.prev_hash.to_hex(),
        prev_timestamp_ms: prev_ts,
        last_hash: last.hash().to_hex(),
        records: frames.len() as u64,
        public_key: s.public_key.clone(),
    };
    let bytes = encode_segment(&header, &frames);
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}
