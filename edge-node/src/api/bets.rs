//! Bet placement and lookup, and the market list.

use super::AppState;
use super::error::ApiError;
use super::extract::{IdemHeader, JsonBody, Query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use outpost_core::edge::{BetView, Command, LegRequest, Reply};
use outpost_core::gate::PricePolicy;
use outpost_core::gate::geo::GeoAttestation;
use outpost_core::ids::{BetId, EventId, PlayerId, SelectionId};
use outpost_core::market::MarketStatus;
use outpost_core::money::{Currency, Money};
use outpost_core::price::Price;
use serde::{Deserialize, Serialize};

/// Accumulators have at most 20 legs in any jurisdiction; rules may set fewer.
const LEGS_MAX: usize = 20;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LegBody {
    selection_id: SelectionId,
    /// Decimal odds as a string ("2.10"): the price the client saw. Accepted if the current
    /// price is equal or better.
    price: Price,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceBetBody {
    player_id: PlayerId,
    stake_minor: i64,
    currency: Currency,
    legs: Vec<LegBody>,
    /// Where the player is (required where the jurisdiction requires presence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    geo: Option<GeoAttestation>,
    /// What to do if the price moved: exact, accept_better (default), within_tolerance.
    #[serde(default)]
    price_policy: PricePolicy,
}

pub async fn place(
    State(s): State<AppState>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<PlaceBetBody>,
) -> Result<(StatusCode, Json<BetView>), ApiError> {
    if b.stake_minor <= 0 {
        return Err(ApiError::unprocessable(
            "INVALID_STAKE",
            "stake_minor must be a positive integer number of minor units",
        ));
    }
    if b.legs.is_empty() || b.legs.len() > LEGS_MAX {
        return Err(ApiError::unprocessable(
            "INVALID_LEGS",
            format!("a bet has 1 to {LEGS_MAX} legs"),
        ));
    }
    let tag = idem.tag("POST /v1/bets", &b);
    in_play_delay(&s, &b.legs).await?;
    let legs = b
        .legs
        .into_iter()
        .map(|l| LegRequest {
            selection_id: l.selection_id,
            price: l.price,
        })
        .collect();
    let cmd = Command::PlaceBet {
        player_id: b.player_id,
        stake: Money::new(b.stake_minor, b.currency),
        legs,
        date_of_birth: None,
        geo: b.geo,
        price_policy: b.price_policy,
        idem: tag,
    };
    match s.writer.command(cmd, None).await?? {
        Reply::Bet(v) => Ok((StatusCode::CREATED, Json(v))),
        Reply::BetRejected {
            reason,
            rules_version,
            checks,
        } => Err(ApiError::Rejected {
            reason,
            rules_version,
            checks,
        }),
        other => Err(ApiError::unavailable(format!("unexpected reply {other:?}"))),
    }
}

/// Where the rules impose an in-play delay, an in-play bet waits it out before it is decided
/// (at the prices current then). Pre-match bets and jurisdictions without a delay skip this.
async fn in_play_delay(s: &AppState, legs: &[LegBody]) -> Result<(), ApiError> {
    let rules = s.writer.rules();
    if !rules.bets.in_play_allowed {
        return Ok(()); // the gate refuses in-play bets; nothing to hold
    }
    // The jurisdiction's rules are the single source of the delay (`[bets] in_play_delay_ms`).
    let delay_ms = u64::from(rules.bets.in_play_delay_ms);
    if delay_ms == 0 {
        return Ok(());
    }
    // Live according to the feed, or (without a feed flag) inside the kick-off window.
    let feed_live = s
        .odds
        .as_ref()
        .is_some_and(|h| legs.iter().any(|l| h.in_play(&l.selection_id)));
    let sels: Vec<SelectionId> = legs.iter().map(|l| l.selection_id.clone()).collect();
    let now = crate::writer::now();
    let in_play = feed_live
        || s.writer
            .read(move |st, _| {
                sels.iter().any(|sel| {
                    st.selection_index
                        .get(sel)
                        .and_then(|m| st.markets.get(m))
                        .and_then(|m| st.events.get(&m.event_id))
                        .is_some_and(|e| {
                            e.kickoff <= now
                                && now.0 < e.kickoff.0 + outpost_core::gate::IN_PLAY_WINDOW_MS
                        })
                })
            })
            .await?;
    if in_play {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    }
    Ok(())
}

pub async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BetView>, ApiError> {
    let bet_id = BetId::new(id).map_err(|e| ApiError::not_found("BET_NOT_FOUND", e.to_string()))?;
    let b = bet_id.clone();
    s.writer
        .read(move |st, _| st.bet_view(&b))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("BET_NOT_FOUND", format!("bet {bet_id} not found")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketQuery {
    event_id: Option<EventId>,
    status: Option<MarketStatus>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// Markets with their events and current prices, in market-id order.
pub async fn markets(
    State(s): State<AppState>,
    Query(q): Query<MarketQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(200).min(2000);
    let out = s
        .writer
        .read(move |st, _| {
            let matching: Vec<_> = st
                .markets
                .values()
                .filter(|m| q.event_id.as_ref().is_none_or(|e| &m.event_id == e))
                .filter(|m| q.status.is_none_or(|x| m.status == x))
                .collect();
            let total = matching.len();
            let items: Vec<serde_json::Value> = matching
                .into_iter()
                .skip(q.offset)
                .take(limit)
                .map(|m| {
                    let ev = st.events.get(&m.event_id);
                    serde_json::json!({
                        "market_id": m.market_id, "event_id": m.event_id, "kind": m.kind, "status": m.status,
                        "event": ev,
                        "selections": m.selections.iter().map(|sel| serde_json::json!({
                            "selection_id": sel.selection_id, "outcome": sel.outcome, "price": sel.price,
                            "fractional": format!("{}/{}", sel.price.fractional().0, sel.price.fractional().1),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::json!({ "markets": items, "offset": q.offset, "limit": limit, "total": total })
        })
        .await?;
    Ok(Json(out))
}
