//! HTTP routes for results intake and settlement corrections (see `settlement.rs`):
//!
//! - `POST /v1/results/file?source=…` — a results file (CSV, `text/csv`); refused whole, with
//!   line numbers, if any line is malformed;
//! - `GET  /v1/results/{event_id}` — reports, final versions and alerts of one event;
//! - `POST /v1/results/{event_id}/confirm` — an operator confirms a score;
//! - `POST /v1/results/{event_id}/correct` — an operator corrects a final result;
//! - `POST /v1/results/{event_id}/rollback` — roll back settlement (all or some markets);
//! - `GET  /v1/alerts[?all=true]` — result alerts for ops (open ones by default).
//!
//! Result submissions answer 201 when the result became final (or was corrected), 200 when it
//! changed nothing, 202 when it is kept but not final (pending a second source, or held for
//! review) and 409 with the alert when it conflicts.

use crate::api::{ApiError, goals};
use crate::settlement::{ResultReceipt, ResultStatus};
use crate::store::{HubState, now_ms};
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use outpost_core::ids::{EventId, MarketId};
use outpost_core::settle::FinalScore;
use outpost_core::settlement::results_file;
use serde::Deserialize;
use serde_json::json;

pub(crate) fn routes() -> Router<HubState> {
    Router::new()
        .route("/v1/results/file", post(post_file))
        .route("/v1/results/{event_id}", get(get_result))
        .route("/v1/results/{event_id}/confirm", post(post_confirm))
        .route("/v1/results/{event_id}/correct", post(post_correct))
        .route("/v1/results/{event_id}/rollback", post(post_rollback))
        .route("/v1/alerts", get(get_alerts))
}

/// The HTTP status of a result submission (module docs).
pub(crate) fn receipt_response(r: ResultReceipt) -> Response {
    let status = match r.status {
        ResultStatus::Recorded | ResultStatus::Corrected => StatusCode::CREATED,
        ResultStatus::Unchanged => StatusCode::OK,
        ResultStatus::Pending | ResultStatus::Held => StatusCode::ACCEPTED,
        ResultStatus::Conflict => {
            // An error body like every other 4xx, with the receipt alongside.
            let message = r.alert.clone().unwrap_or_else(|| "conflicting result".into());
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": {"code": "RESULT_CONFLICT", "message": message}, "receipt": r})),
            )
                .into_response();
        }
    };
    (status, Json(r)).into_response()
}

fn event(p: Result<Path<String>, PathRejection>) -> Result<EventId, ApiError> {
    let Path(id) = p?;
    EventId::new(id).map_err(|e| ApiError::bad_request("INVALID_EVENT_ID", e.to_string()))
}

fn score(home: i64, away: i64) -> Result<FinalScore, ApiError> {
    Ok(FinalScore {
        home: goals("home_goals", home)?,
        away: goals("away_goals", away)?,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmRequest {
    home_goals: i64,
    away_goals: i64,
    operator: String,
}

async fn post_confirm(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<ConfirmRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let event_id = event(path)?;
    let Json(req) = body?;
    let score = score(req.home_goals, req.away_goals)?;
    let r = state
        .blocking(move |s| s.confirm_result_blocking(&event_id, score, &req.operator, now_ms()))
        .await?;
    Ok(receipt_response(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorrectRequest {
    home_goals: i64,
    away_goals: i64,
    operator: String,
    reason: String,
}

async fn post_correct(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<CorrectRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let event_id = event(path)?;
    let Json(req) = body?;
    let score = score(req.home_goals, req.away_goals)?;
    let r = state
        .blocking(move |s| {
            s.correct_result_blocking(&event_id, score, &req.operator, &req.reason, now_ms())
        })
        .await?;
    Ok(receipt_response(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackRequest {
    operator: String,
    reason: String,
    /// Only bets on these markets of the event (all markets if absent).
    #[serde(default)]
    market_ids: Option<Vec<String>>,
}

async fn post_rollback(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<RollbackRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let event_id = event(path)?;
    let Json(req) = body?;
    let markets = req
        .market_ids
        .map(|ids| {
            ids.into_iter()
                .map(|m| {
                    MarketId::new(m)
                        .map_err(|e| ApiError::bad_request("INVALID_MARKET_ID", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let r = state
        .blocking(move |s| {
            s.rollback_blocking(
                &event_id,
                markets.as_deref(),
                &req.operator,
                &req.reason,
                now_ms(),
            )
        })
        .await?;
    Ok((StatusCode::OK, Json(r)).into_response())
}

async fn get_result(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let event_id = event(path)?;
    let v = state.blocking(move |s| s.result_view(&event_id)).await?;
    Ok(Json(v).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    #[serde(default)]
    all: bool,
}

async fn get_alerts(
    State(state): State<HubState>,
    q: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))?;
    let alerts = state.blocking(move |s| s.alerts_view(q.all)).await?;
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    source: String,
}

/// A results file: validated whole first (nothing is applied if any line is bad), then each
/// row is submitted as a report from `source`.
async fn post_file(
    State(state): State<HubState>,
    q: Result<Query<FileQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request("INVALID_FILE", format!("not UTF-8: {e}")))?;
    let rows = match results_file::parse(text) {
        Ok(rows) => rows,
        Err(e) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"code": "INVALID_RESULTS_FILE", "message": e.to_string(), "lines": e.errors, "more": e.more}})),
            )
                .into_response());
        }
    };
    let source = q.source;
    let receipts = state
        .blocking(move |s| {
            let now = now_ms();
            rows.iter()
                .map(|r| s.submit_result_blocking(&r.event_id, r.score, &source, now))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let count = |st: ResultStatus| receipts.iter().filter(|r| r.status == st).count();
    Ok(Json(json!({
        "rows": receipts.len(),
        "recorded": count(ResultStatus::Recorded),
        "unchanged": count(ResultStatus::Unchanged),
        "pending": count(ResultStatus::Pending),
        "held": count(ResultStatus::Held),
        "conflict": count(ResultStatus::Conflict),
        "settled": receipts.iter().map(|r| r.settled).sum::<usize>(),
    }))
    .into_response())
}
