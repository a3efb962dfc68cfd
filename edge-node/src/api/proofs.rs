//! Tree heads and Merkle proofs (`docs/checkpoints.md`):
//! - `GET /v1/checkpoint`: the newest signed head, and the newest one the hub cosigned;
//! - `GET /v1/proofs/inclusion?seq=N|bet_id=B[&size=M]`: record `N` (or bet `B`'s
//!   `bet_placed` record) is in the log of `M` records (default: the newest head);
//! - `GET /v1/proofs/consistency?from=M[&to=N]`: the log of `N` records extends the log of `M`.
//!
//! Every answer carries the signed head of the tree size it proves against when one exists,
//! so a verifier can check the whole chain: record → leaf → root → node signature → hub
//! cosignature. Hashes are lowercase hex.

use super::AppState;
use super::error::ApiError;
use super::extract::Query;
use crate::checkpoints::{CheckpointError, StoredHead};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use outpost_core::ids::Seq;
use outpost_core::log::merkle::{ProofError, leaf_hash};
use serde::Deserialize;
use serde_json::{Value, json};

impl From<CheckpointError> for ApiError {
    fn from(e: CheckpointError) -> ApiError {
        match e {
            // Reading leaves back from the log failed: the node's problem, not the caller's.
            CheckpointError::Proof(p @ ProofError::Source(_)) => {
                ApiError::unavailable(p.to_string())
            }
            CheckpointError::Proof(p) => {
                ApiError::bad_request("INVALID_PROOF_REQUEST", p.to_string())
            }
            other => ApiError::unavailable(other.to_string()),
        }
    }
}

fn head_json(h: &StoredHead) -> Value {
    json!({
        "size": h.size, "root_hex": h.root_hex, "timestamp_ms": h.timestamp_ms,
        "note": h.full_note(), "cosignatures": h.cosignatures,
    })
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, ApiError> + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
}

pub async fn checkpoint(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let cp = s.checkpoints.clone();
    let (latest, cosigned) = blocking(move || Ok((cp.latest(), cp.latest_cosigned()?))).await?;
    let Some(latest) = latest else {
        return Err(ApiError::not_found(
            "NO_CHECKPOINT",
            "no tree head has been signed yet (one follows within a second of the first record)",
        ));
    };
    Ok(Json(json!({
        "origin": outpost_core::log::origin_for(s.node_id.as_str()),
        "public_key": s.public_key,
        "latest": head_json(&latest),
        "latest_cosigned": cosigned.as_ref().map(head_json),
    })))
}

/// The tree size to prove against: `size` if given, else the newest head's.
fn target_size(s: &AppState, size: Option<u64>) -> Result<u64, ApiError> {
    match size {
        Some(n) if n > s.checkpoints.size() => Err(ApiError::new(
            StatusCode::CONFLICT,
            "SIZE_NOT_YET_AVAILABLE",
            format!(
                "the log has {} durable records in its tree, not {n}",
                s.checkpoints.size()
            ),
        )),
        Some(n) => Ok(n),
        None => s.checkpoints.latest().map(|h| h.size).ok_or_else(|| {
            ApiError::not_found(
                "NO_CHECKPOINT",
                "no tree head has been signed yet; pass size=",
            )
        }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    seq: Option<u64>,
    bet_id: Option<String>,
    size: Option<u64>,
}

pub async fn inclusion(
    State(s): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<Value>, ApiError> {
    let seq = match (q.seq, &q.bet_id) {
        (Some(seq), None) if seq >= 1 => seq,
        (Some(_), None) => return Err(ApiError::bad_request("INVALID_SEQ", "seq starts at 1")),
        (None, Some(b)) => s.checkpoints.bet_seq(b).ok_or_else(|| {
            ApiError::not_found(
                "BET_NOT_FOUND",
                format!("no bet_placed record for bet {b} in the log"),
            )
        })?,
        _ => {
            return Err(ApiError::bad_request(
                "INVALID_PROOF_REQUEST",
                "give exactly one of seq= or bet_id=",
            ));
        }
    };
    let size = target_size(&s, q.size)?;
    if seq > size {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "SIZE_NOT_YET_AVAILABLE",
            format!(
                "record {seq} is not in the log of {size} records; ask again after the next head"
            ),
        ));
    }
    let (cp, store) = (s.checkpoints.clone(), s.store.clone());
    blocking(move || {
        let frame = store
            .read_frames(Seq(seq), 1)
            .map_err(|e| ApiError::unavailable(e.to_string()))?
            .pop()
            .ok_or_else(|| ApiError::unavailable(format!("record {seq} missing from the store")))?;
        let record_hash = frame.hash();
        let proof = cp.inclusion_proof(seq - 1, size)?;
        let root = cp.root_at(size)?;
        let head = cp.stored(size)?;
        Ok(Json(json!({
            "seq": seq, "leaf_index": seq - 1, "tree_size": size,
            "record_hash_hex": record_hash.to_hex(),
            "leaf_hash_hex": hex::encode(leaf_hash(&record_hash.0)),
            "root_hex": hex::encode(root),
            "proof_hex": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            "frame_b64": base64::engine::general_purpose::STANDARD.encode(frame.encode()),
            "checkpoint": head.as_ref().map(head_json),
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    from: u64,
    to: Option<u64>,
}

pub async fn consistency(
    State(s): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<Value>, ApiError> {
    let to = target_size(&s, q.to)?;
    if q.from > to {
        return Err(ApiError::bad_request(
            "INVALID_PROOF_REQUEST",
            format!("from ({}) must not exceed to ({to})", q.from),
        ));
    }
    let cp = s.checkpoints.clone();
    let from = q.from;
    blocking(move || {
        let proof = cp.consistency_proof(from, to)?;
        Ok(Json(json!({
            "from": from, "to": to,
            "from_root_hex": hex::encode(cp.root_at(from)?),
            "to_root_hex": hex::encode(cp.root_at(to)?),
            "proof_hex": proof.iter().map(hex::encode).collect::<Vec<_>>(),
            "from_checkpoint": cp.stored(from)?.as_ref().map(head_json),
            "to_checkpoint": cp.stored(to)?.as_ref().map(head_json),
        })))
    })
    .await
}
