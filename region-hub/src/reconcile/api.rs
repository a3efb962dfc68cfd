//! Reconciliation for ops over HTTP (merged into the hub's router):
//! - `GET /v1/reconciliation/reports`: the latest report of each jurisdiction (in full) and
//!   the 50 most recent report rows;
//! - `GET /v1/reconciliation/reports?hour=2026-11-21T13`: every report for that hour, in full;
//! - `GET /v1/reconciliation/reports/{id}`: one report;
//! - `GET /v1/reconciliation/suspensions`: events whose settlement is suspended;
//! - `POST /v1/reconciliation/suspensions/{event_id}/clear` `{"operator", "reason"}`: an
//!   operator clears the event's suspensions (recorded with who and why); its bets settle at
//!   once if its result is final. 409 `NOT_SUSPENDED` if there is nothing to clear;
//! - `GET /v1/audit/outbox`: audit objects waiting for the store, with attempts and errors.

use super::{ReconcileError, report, suspend, window::Hour};
use crate::api::ApiError;
use crate::store::{HubState, StoreError};
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> ApiError {
        match e {
            ReconcileError::BadHour(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_HOUR", e.to_string())
            }
            ReconcileError::NoReport(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "REPORT_NOT_FOUND", e.to_string())
            }
            other => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                other.to_string(),
            ),
        }
    }
}

impl From<ReconcileError> for StoreError {
    fn from(e: ReconcileError) -> StoreError {
        StoreError::Corrupt(e.to_string())
    }
}

pub fn routes() -> Router<HubState> {
    Router::new()
        .route("/v1/reconciliation/reports", get(list))
        .route("/v1/reconciliation/reports/{id}", get(one))
        .route("/v1/reconciliation/suspensions", get(suspensions))
        .route(
            "/v1/reconciliation/suspensions/{event_id}/clear",
            post(clear),
        )
        .route("/v1/audit/outbox", get(outbox))
}

/// The first 100 objects waiting for the audit store, with attempts and last error.
async fn outbox(State(state): State<HubState>) -> Result<Response, ApiError> {
    let v = state.blocking(|s| s.audit_outbox_view(100)).await?;
    Ok(Json(json!({ "outbox": v })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    hour: Option<String>,
}

async fn list(
    State(state): State<HubState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) =
        q.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", r.body_text()))?;
    let body = state
        .blocking(move |s| -> Result<serde_json::Value, ApiError> {
            let conn = s.db().reader();
            Ok(match q.hour {
                Some(h) => {
                    let hour = Hour::parse(&h)?.to_string();
                    let reports: Vec<_> = report::for_hour(&conn, &hour)?
                        .into_iter()
                        .map(|(_, v)| v)
                        .collect();
                    json!({ "hour": hour, "reports": reports })
                }
                None => {
                    let latest: Vec<_> =
                        report::latest(&conn)?.into_iter().map(|(_, v)| v).collect();
                    json!({ "latest": latest, "recent": report::recent(&conn, 50)? })
                }
            })
        })
        .await?;
    Ok(Json(body).into_response())
}

async fn one(
    State(state): State<HubState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id?;
    let id: i64 = id.parse().ok().filter(|i| *i > 0).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REPORT_ID",
            "a report id is a positive integer",
        )
    })?;
    let r = state
        .blocking(move |s| -> Result<_, ApiError> { Ok(report::by_id(&s.db().reader(), id)?) })
        .await?;
    match r {
        Some((_, v)) => Ok(Json(v).into_response()),
        None => Err(ReconcileError::NoReport(id.to_string()).into()),
    }
}

async fn suspensions(State(state): State<HubState>) -> Result<Response, ApiError> {
    let v = state
        .blocking(|s| -> Result<_, ApiError> {
            suspend::active(&s.db().reader()).map_err(|e| ReconcileError::from(e).into())
        })
        .await?;
    Ok(Json(json!({ "suspended": v })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearRequest {
    operator: String,
    reason: String,
}

async fn clear(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ClearRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = path?;
    let event_id = outpost_core::ids::EventId::new(id)
        .map_err(|e| ApiError::bad_request("INVALID_EVENT_ID", e.to_string()))?;
    let Json(req) = body?;
    let (cleared, receipt) = state
        .blocking(move |s| {
            s.clear_suspension_blocking(
                &event_id,
                &req.operator,
                &req.reason,
                crate::store::now_ms(),
            )
        })
        .await?;
    Ok(Json(json!({ "cleared": cleared, "receipt": receipt })).into_response())
}
