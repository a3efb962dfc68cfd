//! HTTP handlers for the witness: `GET /v1/node-alerts` (critical alerts with their evidence) and
//! `GET /v1/nodes/{node_id}/checkpoint` (the node's latest cosigned tree head, as a complete
//! C2SP note a third party can verify).

use crate::api::ApiError;
use crate::store::HubState;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outpost_core::ids::NodeId;
use serde_json::json;

pub async fn alerts(State(state): State<HubState>) -> Result<Response, ApiError> {
    let alerts = state.blocking(|s| s.node_alerts_view()).await?;
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

pub async fn checkpoint(
    State(state): State<HubState>,
    node: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(node) =
        node.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NODE_ID", e.body_text()))?;
    let node = NodeId::new(&node)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NODE_ID", e.to_string()))?;
    let shown = node.to_string();
    match state.blocking(move |s| s.latest_checkpoint(&node)).await? {
        Some(cp) => Ok(Json(cp).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NO_CHECKPOINT",
            format!("the hub has cosigned no checkpoint of node {shown}"),
        )),
    }
}
