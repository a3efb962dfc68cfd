//! HTTP routes for results that are not a football score (`docs/settlement.md`, "Race results
//! and feed settlements"):
//!
//! - `POST /v1/results/race` — a race result from a source (JSON, below);
//! - (race results files go to `POST /v1/results/race-file`, served with score files by
//!   `results_api.rs`: one file handler for both kinds);
//! - `POST /v1/results/uof?source=…` — a raw UOF `bet_settlement` or `rollback_bet_settlement`
//!   message (XML). A settlement is one report from `source` of the markets we offer; a
//!   rollback withdraws the event's result and reverses the bets on its markets.
//!
//! Both feed the same pipeline as scores: final when two sources agree or an operator
//! confirms, a conflict holds settlement and raises an alert, an unknown event is held for
//! review. Bad input is refused with a coded 400 and changes nothing.

use crate::api::ApiError;
use crate::results_api::receipt_response;
use crate::store::{HubState, now_ms};
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use outpost_core::ids::EventId;
use outpost_core::settlement::event_result::EventResult;
use outpost_core::settlement::race_result::{NonRunner, Placing, RaceResult};
use outpost_core::settlement::rule4::Deduction;
use outpost_core::settlement::uof::{self, SettlementMessage};
use outpost_core::settlement::uof_results::{map_bet_settlement, map_rollback_markets};
use outpost_core::time::UnixMillis;
use serde::Deserialize;
use serde_json::json;

pub(crate) fn routes() -> Router<HubState> {
    Router::new()
        .route("/v1/results/race", post(post_race))
        .route("/v1/results/uof", post(post_uof))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NonRunnerBody {
    pub(crate) runner: u64,
    pub(crate) withdrawn_at_ms: i64,
    pub(crate) deduction_pence: u8,
}

/// A race result as posted: placings (runners sharing a position dead-heated), non-runners
/// with their Rule 4 deduction and withdrawal time, the number that came under orders.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RaceBody {
    pub(crate) placings: Vec<Placing>,
    #[serde(default)]
    pub(crate) non_runners: Vec<NonRunnerBody>,
    pub(crate) runners: u16,
    pub(crate) handicap: bool,
}

impl RaceBody {
    pub(crate) fn into_result(self) -> Result<EventResult, ApiError> {
        RaceResult::new(
            self.placings,
            self.non_runners
                .into_iter()
                .map(|n| NonRunner {
                    runner: n.runner,
                    withdrawn_at: UnixMillis(n.withdrawn_at_ms),
                    deduction: Deduction(n.deduction_pence),
                })
                .collect(),
            self.runners,
            self.handicap,
        )
        .map(EventResult::Race)
        .map_err(|e| ApiError::bad_request("INVALID_RACE_RESULT", e.to_string()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaceRequest {
    event_id: String,
    source: String,
    #[serde(flatten)]
    race: RaceBody,
}

async fn post_race(
    State(state): State<HubState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    // `flatten` and `deny_unknown_fields` do not combine in serde: check the fields here.
    let Json(v) = body?;
    let allowed = [
        "event_id",
        "source",
        "placings",
        "non_runners",
        "runners",
        "handicap",
    ];
    if let Some(k) = v
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(ApiError::bad_request(
            "INVALID_JSON",
            format!("unknown field `{k}`"),
        ));
    }
    let req: RaceRequest = serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request("INVALID_JSON", e.to_string()))?;
    let event_id = EventId::new(req.event_id)
        .map_err(|e| ApiError::bad_request("INVALID_EVENT_ID", e.to_string()))?;
    let result = req.race.into_result()?;
    let source = req.source;
    let r = state
        .blocking(move |s| s.submit_report_blocking(&event_id, &result, &source, now_ms()))
        .await?;
    Ok(receipt_response(r))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UofQuery {
    #[serde(default = "uof_source")]
    source: String,
}

fn uof_source() -> String {
    "uof".into()
}

async fn post_uof(
    State(state): State<HubState>,
    q: Result<Query<UofQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request("INVALID_UOF_MESSAGE", format!("not UTF-8: {e}")))?;
    let msg = uof::parse(text)
        .map_err(|e| ApiError::bad_request("INVALID_UOF_MESSAGE", e.to_string()))?;
    match msg {
        SettlementMessage::Settle(s) => {
            let m = map_bet_settlement(&s)
                .map_err(|e| ApiError::bad_request("INVALID_UOF_MESSAGE", e))?;
            if m.results.markets.is_empty() {
                return Ok((
                    StatusCode::OK,
                    Json(json!({"event_id": m.event_id, "status": "ignored", "markets": 0, "skipped": m.skipped})),
                )
                    .into_response());
            }
            let result = EventResult::Outcomes(m.results);
            let (event_id, source, skipped) = (m.event_id, q.source, m.skipped);
            let r = state
                .blocking(move |s| s.submit_report_blocking(&event_id, &result, &source, now_ms()))
                .await?;
            let mut resp = receipt_response(r);
            if !skipped.is_empty() {
                resp.headers_mut().insert(
                    "x-uof-skipped-markets",
                    axum::http::HeaderValue::from(skipped.len()),
                );
            }
            Ok(resp)
        }
        SettlementMessage::Rollback(rb) => {
            let event_id = EventId::new(rb.event_id.clone())
                .map_err(|e| ApiError::bad_request("INVALID_EVENT_ID", e.to_string()))?;
            let markets = map_rollback_markets(&event_id, &rb.markets);
            if !rb.markets.is_empty() && markets.is_empty() {
                // Only markets we never offered: no bet can be affected.
                return Ok((
                    StatusCode::OK,
                    Json(json!({"event_id": event_id, "status": "ignored", "reversed": 0})),
                )
                    .into_response());
            }
            let source = q.source;
            let r = state
                .blocking(move |s| {
                    s.rollback_blocking(
                        &event_id,
                        (!markets.is_empty()).then_some(markets.as_slice()),
                        &source,
                        "UOF rollback_bet_settlement",
                        now_ms(),
                    )
                })
                .await?;
            Ok((StatusCode::OK, Json(r)).into_response())
        }
    }
}

#[cfg(test)]
mod tests;
