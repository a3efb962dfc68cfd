//! The hub's HTTP API (operators, the results feed, the demo launcher).
//!
//! Every error leaves through [`ApiError`] as `{"error":{"code":"…","message":"…"}}` with a
//! 4xx status for anything the caller can fix; 500 is reserved for the hub's own failures
//! (e.g. the database), never for bad input.

use crate::settlement::ResultError;
use crate::store::{HubState, StoreError};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use outpost_core::ids::{BetId, EventId};
use outpost_core::settle::FinalScore;
use serde::Deserialize;
use serde_json::json;

/// Largest goal count accepted for one side. Nothing near it has happened in a recorded
/// football match that anyone bets on; a bigger number is a typo in the feed.
pub const MAX_GOALS: i64 = 255;

/// An error response: HTTP status, stable machine-readable code, human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
    }
}

impl From<ResultError> for ApiError {
    fn from(e: ResultError) -> ApiError {
        match e {
            ResultError::AlreadyFinal { .. } => {
                ApiError::new(StatusCode::CONFLICT, "RESULT_ALREADY_FINAL", e.to_string())
            }
            ResultError::NotFinal(_) => {
                ApiError::new(StatusCode::CONFLICT, "RESULT_NOT_FINAL", e.to_string())
            }
            ResultError::NotSuspended(_) => {
                ApiError::new(StatusCode::CONFLICT, "NOT_SUSPENDED", e.to_string())
            }
            ResultError::Invalid { field, .. } => ApiError::bad_request(
                match field {
                    "source" => "INVALID_SOURCE",
                    "operator" => "INVALID_OPERATOR",
                    _ => "INVALID_REASON",
                },
                e.to_string(),
            ),
            ResultError::Store(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let code = match &r {
            JsonRejection::MissingJsonContentType(_) => "UNSUPPORTED_MEDIA_TYPE",
            JsonRejection::JsonSyntaxError(_) => "INVALID_JSON",
            JsonRejection::JsonDataError(_) => "INVALID_REQUEST",
            _ => "INVALID_BODY",
        };
        // Keep the status axum chose (400, 413, 415, 422): all are the caller's to fix.
        let status = if r.status().is_client_error() {
            r.status()
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::bad_request("INVALID_PATH", r.body_text())
    }
}

/// The router, with the hub state attached.
pub fn router(state: HubState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/results", post(post_result))
        .route("/v1/nodes", get(get_nodes))
        .route("/v1/bets/{bet_id}", get(get_bet))
        .route("/v1/stats", get(get_stats))
        .route("/v1/node-alerts", get(crate::witness::api::alerts))
        .route(
            "/v1/nodes/{node_id}/checkpoint",
            get(crate::witness::api::checkpoint),
        )
        .merge(crate::results_api::routes())
        .merge(crate::results_feed_api::routes())
        .merge(crate::reconcile::api::routes())
        .route("/metrics", get(crate::metrics::get_metrics))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "method not allowed on this endpoint",
            )
        })
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultRequest {
    event_id: String,
    home_goals: i64,
    away_goals: i64,
    source: String,
}

pub(crate) fn goals(field: &str, v: i64) -> Result<u16, ApiError> {
    if !(0..=MAX_GOALS).contains(&v) {
        return Err(ApiError::bad_request(
            "INVALID_SCORE",
            format!("{field} must be between 0 and {MAX_GOALS}, got {v}"),
        ));
    }
    Ok(v as u16)
}

async fn post_result(
    State(state): State<HubState>,
    body: Result<Json<ResultRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body?;
    let event_id = EventId::new(req.event_id)
        .map_err(|e| ApiError::bad_request("INVALID_EVENT_ID", e.to_string()))?;
    let score = FinalScore {
        home: goals("home_goals", req.home_goals)?,
        away: goals("away_goals", req.away_goals)?,
    };
    let receipt = state.submit_result(event_id, score, req.source).await?;
    Ok(crate::results_api::receipt_response(receipt))
}

async fn get_nodes(State(state): State<HubState>) -> Result<Response, ApiError> {
    let nodes = state.blocking(|s| s.nodes_view()).await?;
    Ok(Json(json!({ "nodes": nodes })).into_response())
}

async fn get_bet(
    State(state): State<HubState>,
    bet_id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(bet_id) = bet_id?;
    let bet_id =
        BetId::new(bet_id).map_err(|e| ApiError::bad_request("INVALID_BET_ID", e.to_string()))?;
    let shown = bet_id.to_string();
    match state.blocking(move |s| s.bet_view(&bet_id)).await? {
        Some(bet) => Ok(Json(bet).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "BET_NOT_FOUND",
            format!("no bet {shown} has been replicated to this hub"),
        )),
    }
}

async fn get_stats(State(state): State<HubState>) -> Result<Response, ApiError> {
    let stats = state.blocking(|s| s.stats_view()).await?;
    Ok(Json(stats).into_response())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::*;
    use outpost_core::market::Outcome;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serve the router on an ephemeral port; returns its address.
    pub(crate) async fn serve(state: HubState) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
        addr
    }

    /// A minimal HTTP/1.1 client (one request per connection): (status, JSON body).
    pub(crate) async fn call(
        addr: std::net::SocketAddr,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = body.unwrap_or("");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let status: u16 = text[9..12].parse().unwrap();
        let json = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (
            status,
            serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        )
    }

    pub(crate) fn code(v: &serde_json::Value) -> &str {
        v["error"]["code"].as_str().unwrap_or("<none>")
    }

    #[tokio::test]
    async fn endpoints() {
        let t = hub(eager());
        let mut edge = Edge::new();
        let recs = edge.group(&[
            genesis(),
            bet("b-1", 1000, vec![leg("e-1", Outcome::Home, "2.5")]),
        ]);
        t.state
            .commit_upstream_blocking(&node_id(), recs, now())
            .unwrap();
        let addr = serve(t.state.clone()).await;

        assert_eq!(
            call(addr, "GET", "/healthz", None).await,
            (200, json!({"status": "ok"}))
        );

        // One source: kept, not final (202); a second agreeing source makes it final (201).
        let body = r#"{"event_id":"e-1","home_goals":2,"away_goals":0,"source":"feed-a"}"#;
        let (st, v) = call(addr, "POST", "/v1/results", Some(body)).await;
        assert_eq!(
            (st, v["status"].as_str(), v["settled"].as_u64()),
            (202, Some("pending"), Some(0))
        );
        let body = r#"{"event_id":"e-1","home_goals":2,"away_goals":0,"source":"ops"}"#;
        let (st, v) = call(addr, "POST", "/v1/results", Some(body)).await;
        assert_eq!(
            (st, v["status"].as_str(), v["settled"].as_u64()),
            (201, Some("recorded"), Some(1))
        );
        let (st, v) = call(addr, "POST", "/v1/results", Some(body)).await;
        assert_eq!(
            (st, v["status"].as_str(), v["reprocessed"].as_u64()),
            (200, Some("unchanged"), Some(1))
        );
        let (st, v) = call(
            addr,
            "POST",
            "/v1/results",
            Some(&body.replace("\"home_goals\":2", "\"home_goals\":1")),
        )
        .await;
        assert_eq!((st, code(&v)), (409, "RESULT_CONFLICT"));

        let (st, v) = call(addr, "GET", "/v1/bets/b-1", None).await;
        assert_eq!(
            (st, v["status"].as_str(), v["payout_minor"].as_i64()),
            (200, Some("settled"), Some(2500))
        );
        assert_eq!(v["settlements"][0]["result_version"], 1);
        let (st, v) = call(addr, "GET", "/v1/bets/nope", None).await;
        assert_eq!((st, code(&v)), (404, "BET_NOT_FOUND"));
        let (st, v) = call(addr, "GET", "/v1/bets/bad%20id", None).await;
        assert_eq!((st, code(&v)), (400, "INVALID_BET_ID"));

        let (st, v) = call(addr, "GET", "/v1/nodes", None).await;
        assert_eq!(st, 200);
        let n = &v["nodes"][0];
        assert_eq!(
            (
                n["id"].as_str(),
                n["acked_seq"].as_u64(),
                n["down_head"].as_u64(),
                n["flagged"].as_bool()
            ),
            (Some("gb-1"), Some(2), Some(2), Some(false))
        );
        assert_eq!(n["jurisdiction"], "GB");

        let (st, v) = call(addr, "GET", "/v1/stats", None).await;
        assert_eq!(st, 200);
        assert_eq!(
            (
                v["records"].as_u64(),
                v["bets"].as_u64(),
                v["settled"].as_u64(),
                v["results"].as_u64()
            ),
            (Some(2), Some(1), Some(1), Some(1))
        );
        assert_eq!(v["reprocessed_settlements"], 1);
        assert!(v["audit_pending"].as_u64().unwrap() >= 2);
    }

    #[tokio::test]
    async fn bad_input_is_4xx_json_never_500() {
        let t = hub(eager());
        let addr = serve(t.state.clone()).await;
        let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
            (
                "POST",
                "/v1/results",
                Some("{not json"),
                400,
                "INVALID_JSON",
            ),
            (
                "POST",
                "/v1/results",
                Some(r#"{"event_id":"e-1","home_goals":1,"away_goals":0,"source":"x","extra":1}"#),
                422,
                "INVALID_REQUEST",
            ),
            (
                "POST",
                "/v1/results",
                Some(r#"{"event_id":"e-1","home_goals":1,"source":"x"}"#),
                422,
                "INVALID_REQUEST",
            ),
            (
                "POST",
                "/v1/results",
                Some(r#"{"event_id":"e 1","home_goals":1,"away_goals":0,"source":"x"}"#),
                400,
                "INVALID_EVENT_ID",
            ),
            (
                "POST",
                "/v1/results",
                Some(r#"{"event_id":"e-1","home_goals":-1,"away_goals":0,"source":"x"}"#),
                400,
                "INVALID_SCORE",
            ),
            (
                "POST",
                "/v1/results",
                Some(r#"{"event_id":"e-1","home_goals":1,"away_goals":1e9,"source":"x"}"#),
                422,
                "INVALID_REQUEST",
            ),
            (
                "POST",
                "/v1/results",
                Some(r#"{"event_id":"e-1","home_goals":1,"away_goals":0,"source":""}"#),
                400,
                "INVALID_SOURCE",
            ),
            ("POST", "/v1/results", Some("[]"), 422, "INVALID_REQUEST"),
            ("GET", "/v1/results", None, 405, "METHOD_NOT_ALLOWED"),
            ("GET", "/nowhere", None, 404, "NOT_FOUND"),
        ];
        for (method, path, body, status, c) in cases {
            let (st, v) = call(addr, method, path, *body).await;
            assert_eq!(
                (st, code(&v)),
                (*status, *c),
                "{method} {path} {body:?}: {v}"
            );
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        // Nothing was stored.
        assert_eq!(t.state.stats_view().unwrap().results, 0);
    }
}
