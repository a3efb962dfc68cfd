//! HTTP routes for results intake and settlement corrections (see `settlement.rs`):
//!
//! - `POST /v1/results/file?source=…` — a results file (CSV, `text/csv`); refused whole, with
//!   line numbers, if any line is malformed;
//! - `GET  /v1/results/{event_id}` — reports, final versions and alerts of one event;
//! - `POST /v1/results/{event_id}/confirm` — an operator confirms a result (score, race or
//!   per-outcome: [`OperatorRequest`]);
//! - `POST /v1/results/{event_id}/correct` — an operator corrects a final result (same body
//!   plus `reason`);
//! - `POST /v1/results/{event_id}/rollback` — roll back settlement (all or some markets);
//! - `GET  /v1/alerts[?all=true]` — result alerts for ops (open ones by default).
//!
//! Result submissions answer 201 when the result became final (or was corrected), 200 when it
//! changed nothing, 202 when it is kept but not final (pending a second source, or held for
//! review) and 409 with the alert when it conflicts.

use crate::api::{ApiError, goals};
use crate::results_feed_api::{NonRunnerBody, RaceBody};
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
use outpost_core::settlement::event_result::{EventResult, MarketResult, OutcomeResults};
use outpost_core::settlement::race_result::Placing;
use outpost_core::settlement::results_file;
use serde::Deserialize;
use serde_json::json;

pub(crate) fn routes() -> Router<HubState> {
    Router::new()
        .route("/v1/results/file", post(post_file))
        .route("/v1/results/race-file", post(post_file))
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
            let message = r
                .alert
                .clone()
                .unwrap_or_else(|| "conflicting result".into());
            return (
                StatusCode::CONFLICT,
                Json(
                    json!({"error": {"code": "RESULT_CONFLICT", "message": message}, "receipt": r}),
                ),
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

fn score_of(home: i64, away: i64) -> Result<FinalScore, ApiError> {
    Ok(FinalScore {
        home: goals("home_goals", home)?,
        away: goals("away_goals", away)?,
    })
}

/// What an operator states when confirming or correcting: who, why (corrections), and the
/// result, exactly one of
/// - a score: `home_goals`, `away_goals`;
/// - a race: `placings`, `non_runners`, `runners`, `handicap` (as `POST /v1/results/race`);
/// - per-outcome results: `markets` (`[{market_id, outcomes: [{outcome, won, void_factor,
///   dead_heat_factor}]}]`, factors as `{num, den}`), markets of this event only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    operator: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    home_goals: Option<i64>,
    #[serde(default)]
    away_goals: Option<i64>,
    #[serde(default)]
    placings: Option<Vec<Placing>>,
    #[serde(default)]
    non_runners: Option<Vec<NonRunnerBody>>,
    #[serde(default)]
    runners: Option<u16>,
    #[serde(default)]
    handicap: Option<bool>,
    #[serde(default)]
    markets: Option<Vec<MarketResult>>,
}

impl OperatorRequest {
    /// The stated result; a request naming none, or more than one kind, is refused.
    fn result(&mut self, event_id: &EventId) -> Result<EventResult, ApiError> {
        let invalid = |m: String| ApiError::bad_request("INVALID_RESULT", m);
        let score = self.home_goals.is_some() || self.away_goals.is_some();
        let race = self.placings.is_some()
            || self.non_runners.is_some()
            || self.runners.is_some()
            || self.handicap.is_some();
        let outcomes = self.markets.is_some();
        match (score, race, outcomes) {
            (true, false, false) => match (self.home_goals, self.away_goals) {
                (Some(h), Some(a)) => Ok(EventResult::Score(score_of(h, a)?)),
                _ => Err(invalid("a score needs both home_goals and away_goals".into())),
            },
            (false, true, false) => match (self.placings.take(), self.runners, self.handicap) {
                (Some(placings), Some(runners), Some(handicap)) => RaceBody {
                    placings,
                    non_runners: self.non_runners.take().unwrap_or_default(),
                    runners,
                    handicap,
                }
                .into_result(),
                _ => Err(invalid(
                    "a race result needs placings, runners and handicap".into(),
                )),
            },
            (false, false, true) => {
                let markets = self.markets.take().unwrap_or_default();
                if markets.is_empty() {
                    return Err(invalid("markets is empty".into()));
                }
                // A sanity check against a pasted id of another event (ids are `{event}:{kind}`).
                let prefix = format!("{event_id}:");
                for m in &markets {
                    if !m.market_id.as_str().starts_with(&prefix) {
                        return Err(invalid(format!(
                            "market {} is not a market of event {event_id}",
                            m.market_id
                        )));
                    }
                    for o in &m.outcomes {
                        for (name, f) in [("void_factor", o.void_factor), ("dead_heat_factor", o.dead_heat_factor)] {
                            if f.den == 0 || f.num > f.den {
                                return Err(invalid(format!(
                                    "market {}: {name} {}/{} is not between 0 and 1",
                                    m.market_id, f.num, f.den
                                )));
                            }
                        }
                    }
                }
                OutcomeResults::new(markets)
                    .map(EventResult::Outcomes)
                    .map_err(invalid)
            }
            (false, false, false) => Err(invalid(
                "state a result: home_goals/away_goals, a race (placings, runners, handicap) or markets".into(),
            )),
            _ => Err(invalid(
                "state one kind of result: a score, a race or markets, not several".into(),
            )),
        }
    }
}

/// An operator confirms a result that is not final (pending one source, held by a conflict,
/// or an unknown event held for review): it becomes final and settles.
async fn post_confirm(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<OperatorRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let event_id = event(path)?;
    let Json(mut req) = body?;
    if req.reason.is_some() {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "a confirmation takes no reason (a correction does: POST …/correct)",
        ));
    }
    let result = req.result(&event_id)?;
    let r = state
        .blocking(move |s| s.confirm_report_blocking(&event_id, &result, &req.operator, now_ms()))
        .await?;
    Ok(receipt_response(r))
}

/// An operator corrects a final result: its settlements are reversed by compensating records
/// and the bets settled again on the new version (never an update in place).
async fn post_correct(
    State(state): State<HubState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Json<OperatorRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let event_id = event(path)?;
    let Json(mut req) = body?;
    let Some(reason) = req.reason.take() else {
        return Err(ApiError::bad_request(
            "INVALID_REQUEST",
            "a correction needs a reason",
        ));
    };
    let result = req.result(&event_id)?;
    let r = state
        .blocking(move |s| {
            s.correct_report_blocking(&event_id, &result, &req.operator, &reason, now_ms())
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

/// A results file, of scores or of races (`results_file::parse_any`): validated whole first
/// (nothing is applied if any line is bad), then each result is submitted as a report from
/// `source` (an unknown event is held for review). Serves `/v1/results/file` and
/// `/v1/results/race-file`.
async fn post_file(
    State(state): State<HubState>,
    q: Result<Query<FileQuery>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request("INVALID_FILE", format!("not UTF-8: {e}")))?;
    let rows = match results_file::parse_any(text) {
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
                .map(|(event_id, result)| s.submit_report_blocking(event_id, result, &source, now))
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
        "receipts": receipts,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use crate::api::tests::{call, code, serve};
    use crate::test_support::*;
    use outpost_core::market::Outcome;

    #[tokio::test]
    async fn operator_routes_and_results_files() {
        let t = hub(eager());
        let mut edge = Edge::new();
        let recs = edge.group(&[
            genesis(),
            bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.5")]),
            bet("b-2", 1000, vec![leg("e-2", Outcome::Away, "3.0")]),
        ]);
        t.state
            .commit_upstream_blocking(&node_id(), recs, now())
            .unwrap();
        let addr = serve(t.state.clone()).await;

        // A malformed results file is refused whole, every bad line named; nothing stored.
        let bad = "event_id,home_goals,away_goals\ne-1,2,0\ne-2,x,1\ne 3,1,1\n";
        let (st, v) = call(
            addr,
            "POST",
            "/v1/results/file?source=provider-a",
            Some(bad),
        )
        .await;
        assert_eq!((st, code(&v)), (400, "INVALID_RESULTS_FILE"), "{v}");
        let lines: Vec<u64> = v["error"]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [3, 4]);
        assert_eq!(t.state.result_view(&event("e-1")).unwrap().reports.len(), 0);

        // Two providers' files agree on e-1, disagree on e-2: e-1 settles, e-2 is held.
        let a = "event_id,home_goals,away_goals\ne-1,2,0\ne-2,0,1\n";
        let b = "event_id,home_goals,away_goals\ne-1,2,0\ne-2,1,1\n";
        let (st, v) = call(addr, "POST", "/v1/results/file?source=provider-a", Some(a)).await;
        assert_eq!((st, v["pending"].as_u64()), (200, Some(2)), "{v}");
        let (_, v) = call(addr, "POST", "/v1/results/file?source=provider-b", Some(b)).await;
        assert_eq!(
            (
                v["recorded"].as_u64(),
                v["conflict"].as_u64(),
                v["settled"].as_u64()
            ),
            (Some(1), Some(1), Some(1)),
            "{v}"
        );
        let (st, v) = call(addr, "GET", "/v1/alerts", None).await;
        assert_eq!((st, v["alerts"].as_array().unwrap().len()), (200, 1));
        assert_eq!(v["alerts"][0]["event_id"], "e-2");

        // The operator confirms e-2; corrects e-1; rolls back e-1.
        let (st, v) = call(
            addr,
            "POST",
            "/v1/results/e-2/confirm",
            Some(r#"{"home_goals":0,"away_goals":1,"operator":"alice"}"#),
        )
        .await;
        assert_eq!(
            (st, v["status"].as_str(), v["settled"].as_u64()),
            (201, Some("recorded"), Some(1)),
            "{v}"
        );
        let (st, v) = call(
            addr,
            "POST",
            "/v1/results/e-1/correct",
            Some(r#"{"home_goals":0,"away_goals":2,"operator":"alice","reason":"review"}"#),
        )
        .await;
        assert_eq!(
            (
                st,
                v["status"].as_str(),
                v["reversed"].as_u64(),
                v["result_version"].as_u64()
            ),
            (201, Some("corrected"), Some(1), Some(2)),
            "{v}"
        );
        let (st, v) = call(
            addr,
            "POST",
            "/v1/results/e-1/rollback",
            Some(r#"{"operator":"alice","reason":"feed rollback","market_ids":["e-1/1x2"]}"#),
        )
        .await;
        assert_eq!((st, v["reversed"].as_u64()), (200, Some(1)), "{v}");
        let (st, v) = call(addr, "GET", "/v1/results/e-1", None).await;
        assert_eq!(
            (
                st,
                v["state"].as_str(),
                v["versions"].as_array().unwrap().len()
            ),
            (200, Some("withdrawn"), 2)
        );
        let (st, v) = call(addr, "GET", "/v1/bets/b-1", None).await;
        assert_eq!((st, v["status"].as_str()), (200, Some("open")));

        // Bad requests: 4xx with a code, never 500.
        let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
            (
                "POST",
                "/v1/results/e-1/confirm",
                Some(r#"{"home_goals":1,"away_goals":0,"operator":""}"#),
                400,
                "INVALID_OPERATOR",
            ),
            (
                "POST",
                "/v1/results/e-9/correct",
                Some(r#"{"home_goals":1,"away_goals":0,"operator":"a","reason":"r"}"#),
                409,
                "RESULT_NOT_FINAL",
            ),
            (
                "POST",
                "/v1/results/e-2/confirm",
                Some(r#"{"home_goals":3,"away_goals":0,"operator":"a"}"#),
                409,
                "RESULT_ALREADY_FINAL",
            ),
            (
                "POST",
                "/v1/results/e%201/rollback",
                Some(r#"{"operator":"a","reason":"r"}"#),
                400,
                "INVALID_EVENT_ID",
            ),
            (
                "POST",
                "/v1/results/e-2/rollback",
                Some(r#"{"operator":"a","reason":"r","market_ids":["bad id"]}"#),
                400,
                "INVALID_MARKET_ID",
            ),
            (
                "POST",
                "/v1/results/e-2/correct",
                Some(r#"{"home_goals":-1,"away_goals":0,"operator":"a","reason":"r"}"#),
                400,
                "INVALID_SCORE",
            ),
            (
                "POST",
                "/v1/results/file",
                Some("event_id,home_goals,away_goals\n"),
                400,
                "INVALID_QUERY",
            ),
            ("GET", "/v1/alerts?all=maybe", None, 400, "INVALID_QUERY"),
        ];
        for (method, path, body, status, c) in cases {
            let (st, v) = call(addr, method, path, *body).await;
            assert_eq!((st, code(&v)), (*status, *c), "{method} {path}: {v}");
        }
    }
}
