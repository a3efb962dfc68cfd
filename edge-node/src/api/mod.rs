//! The node's HTTP API (`/v1`, JSON). Handlers only translate HTTP to commands and replies;
//! every decision is made by `outpost_core` inside the writer.

pub mod auth;
mod bets;
mod compliance;
pub mod error;
pub(crate) mod extract;
mod log;
mod odds;
pub(crate) mod players;
mod proofs;
pub mod shop;
pub mod stream_listener;

use crate::store::LogStore;
use crate::writer::WriterHandle;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use outpost_core::ids::NodeId;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone)]
pub struct AppState {
    pub writer: WriterHandle,
    pub store: Arc<LogStore>,
    pub node_id: NodeId,
    pub public_key: String,
    pub link: Option<watch::Receiver<serde_json::Value>>,
    pub checkpoints: Arc<crate::checkpoints::Checkpointer>,
    /// Rules version, register status and the betting-suspended alarm (issue 3).
    pub compliance: watch::Receiver<serde_json::Value>,
    pub shop_terminals: Arc<Vec<shop::TerminalCredential>>,
    pub odds: Option<Arc<crate::odds::OddsHub>>,
    pub cross_operator: Option<Arc<crate::cross_operator::CrossOperatorClient>>,
    /// API clients and their roles (`auth.rs`).
    pub access: Arc<auth::ApiAccess>,
}

pub fn router(state: AppState) -> Router {
    use auth::Role;
    use compliance as c;
    // Each protected group names its role next to its routes (see `auth.rs`).
    let with_role = |routes: Router<AppState>, role: Role| {
        routes.route_layer(axum::middleware::from_fn_with_state(
            (state.access.clone(), role),
            auth::require,
        ))
    };
    let player_channel = Router::new()
        .route("/v1/players", post(players::register))
        .route("/v1/players/{id}", get(players::get_player))
        .route("/v1/players/{id}/wallet", get(players::get_player))
        .route(
            "/v1/players/{id}/self-exclusion",
            post(players::self_exclude),
        )
        .route(
            "/v1/players/{id}/limits",
            get(c::get_limits).post(c::set_limit),
        )
        .route("/v1/players/{id}/time-out", post(c::time_out))
        .route("/v1/players/{id}/reality-check", post(c::reality_check))
        .route("/v1/bets", post(bets::place))
        .route("/v1/bets/{id}", get(bets::get));
    let payments = Router::new()
        .route("/v1/players/{id}/deposits", post(players::deposit))
        .route("/v1/players/{id}/withdrawals", post(players::withdraw))
        .route(
            "/v1/withdrawals/{provider_ref}/complete",
            post(c::complete_withdrawal),
        );
    let back_office = Router::new()
        .route("/v1/node", get(node))
        .route("/v1/players/{id}/kyc", post(players::verify_kyc))
        .route("/v1/players/{id}/cross-operator", post(c::cross_operator))
        .route(
            "/v1/admin/register",
            get(c::get_register).post(c::load_register),
        );
    let feed = Router::new()
        .route("/v1/feed/uof", post(odds::push_uof))
        .route("/v1/feed/betfair", post(odds::push_betfair));
    let audit = Router::new()
        .route("/v1/log", get(log::page))
        .route("/v1/log/segment", get(log::segment))
        .route("/v1/checkpoint", get(proofs::checkpoint))
        .route("/v1/proofs/inclusion", get(proofs::inclusion))
        .route("/v1/proofs/consistency", get(proofs::consistency))
        .route("/v1/feed/stats", get(odds::stats));
    // Public: liveness, prices and the rules in force. Shop tills: terminal tokens (shop.rs).
    let public = Router::new()
        .route("/healthz", get(health))
        .route("/v1/markets", get(bets::markets))
        .route("/v1/odds", get(odds::snapshot))
        .route("/v1/odds/stream", get(odds::stream))
        .route("/v1/rules", get(c::rules));
    let shop = Router::new()
        .route("/v1/shop/terminal", get(shop::whoami))
        .route("/v1/shop/bets", post(shop::place))
        .route("/v1/shop/tickets/{id}", get(shop::get))
        .route("/v1/shop/tickets/{id}/payout", post(shop::payout))
        .route("/v1/shop/tickets/{id}/void", post(shop::void))
        .route("/v1/shop/report", get(shop::report));
    Router::new()
        .merge(with_role(player_channel, Role::PlayerChannel))
        .merge(with_role(payments, Role::Payments))
        .merge(with_role(back_office, Role::BackOffice))
        .merge(with_role(feed, Role::Feed))
        .merge(with_role(audit, Role::Audit))
        .merge(public)
        .merge(shop)
        .fallback(|| async { error::ApiError::not_found("NOT_FOUND", "no such endpoint") })
        .with_state(state)
}

async fn health(State(s): State<AppState>) -> axum::Json<serde_json::Value> {
    let head = *s.writer.durable().borrow();
    let link = s.link.as_ref().map(|l| l.borrow().clone());
    axum::Json(serde_json::json!({
        "status": "ok", "node_id": s.node_id, "durable_seq": head.seq, "head_hash": head.hash.to_hex(),
        "down_applied": s.writer.down_applied(), "link": link,
        "compliance": s.compliance.borrow().clone(),
    }))
}

async fn node(State(s): State<AppState>) -> Result<axum::Json<serde_json::Value>, error::ApiError> {
    let info = s.writer.read(|st, _| {
        let bets_open = st.bets.values().filter(|b| b.status == outpost_core::edge::BetStatus::Open).count();
        serde_json::json!({
            "node": st.node, "players": st.players.len(), "bets": st.bets.len(), "bets_open": bets_open,
            "bets_rejected": st.bets_rejected, "markets": st.markets.len(), "down_applied": st.down_applied,
            "ledger_sum_minor": st.ledger.as_ref().map(|l| l.sum() as i64),
        })
    });
    Ok(axum::Json(info.await?))
}
