//! Player, KYC, self-exclusion and wallet endpoints.

use super::AppState;
use super::error::ApiError;
use super::extract::{IdemHeader, JsonBody};
use crate::vault::Pii;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use outpost_core::edge::events::IdemTag;
use outpost_core::edge::{Command, PlayerView, Reply};
use outpost_core::ids::{Jurisdiction, PlayerId};
use outpost_core::money::{Currency, Money};
use outpost_core::time::CivilDate;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub(crate) jurisdiction: Jurisdiction,
    pub(crate) name: String,
    pub(crate) date_of_birth: CivilDate,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MoneyBody {
    pub(crate) amount_minor: i64,
    pub(crate) currency: Currency,
    /// The payment provider's transaction reference (reconciled by the hub).
    pub(crate) provider_ref: String,
}

pub(super) fn player_id(s: String) -> Result<PlayerId, ApiError> {
    PlayerId::new(s).map_err(|e| ApiError::not_found("PLAYER_NOT_FOUND", e.to_string()))
}

fn player_reply(r: Reply) -> Result<PlayerView, ApiError> {
    match r {
        Reply::Player(p) => Ok(p),
        other => Err(ApiError::unavailable(format!("unexpected reply {other:?}"))),
    }
}

pub async fn register(
    State(s): State<AppState>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<RegisterBody>,
) -> Result<(StatusCode, Json<PlayerView>), ApiError> {
    let name = b.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(ApiError::unprocessable(
            "INVALID_NAME",
            "name must be 1-200 characters",
        ));
    }
    let tag = idem.tag("POST /v1/players", &b);
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| ApiError::unavailable(format!("no entropy: {e}")))?;
    let pii = Pii {
        name: name.to_string(),
        date_of_birth: b.date_of_birth,
        salt: hex::encode(salt),
    };
    let cmd = Command::RegisterPlayer {
        jurisdiction: b.jurisdiction,
        pii_sha256: pii.commitment().map_err(ApiError::unavailable)?,
        idem: tag,
    };
    let reply = s.writer.command(cmd, Some(pii)).await??;
    Ok((StatusCode::CREATED, Json(player_reply(reply)?)))
}

pub async fn verify_kyc(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<Empty>,
) -> Result<Json<PlayerView>, ApiError> {
    player_action(&s, id, idem, &b, "kyc", |player_id, idem| {
        Command::VerifyKyc { player_id, idem }
    })
    .await
}

pub async fn self_exclude(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<Empty>,
) -> Result<Json<PlayerView>, ApiError> {
    player_action(&s, id, idem, &b, "self-exclusion", |player_id, idem| {
        Command::SelfExclude { player_id, idem }
    })
    .await
}

/// A player command without a body (`POST /v1/players/{id}/{action}`), answered with the
/// player's view once it is durable.
async fn player_action(
    s: &AppState,
    id: String,
    idem: IdemHeader,
    body: &Empty,
    action: &str,
    command: impl FnOnce(PlayerId, IdemTag) -> Command,
) -> Result<Json<PlayerView>, ApiError> {
    let player_id = player_id(id)?;
    let tag = idem.tag(&format!("POST /v1/players/{player_id}/{action}"), body);
    let reply = s.writer.command(command(player_id, tag), None).await??;
    Ok(Json(player_reply(reply)?))
}

async fn movement(
    s: AppState,
    id: String,
    idem: IdemHeader,
    b: MoneyBody,
    deposit: bool,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let player_id = player_id(id)?;
    if b.provider_ref.is_empty() || b.provider_ref.len() > 128 {
        return Err(ApiError::unprocessable(
            "INVALID_PROVIDER_REF",
            "provider_ref must be 1-128 characters",
        ));
    }
    let what = if deposit { "deposits" } else { "withdrawals" };
    let tag = idem.tag(&format!("POST /v1/players/{player_id}/{what}"), &b);
    let amount = Money::new(b.amount_minor, b.currency);
    if deposit {
        super::compliance::cross_operator_before_deposit(&s, &player_id, &tag).await?;
    }
    let cmd = if deposit {
        Command::Deposit {
            player_id,
            amount,
            provider_ref: b.provider_ref,
            idem: tag,
        }
    } else {
        Command::Withdraw {
            player_id,
            amount,
            provider_ref: b.provider_ref,
            idem: tag,
        }
    };
    match s.writer.command(cmd, None).await?? {
        Reply::Movement {
            movement_id,
            player,
        } => Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({ "movement_id": movement_id, "wallet": player })),
        )),
        // Refused by the compliance gate (limits, exclusion, AML): the decision was logged.
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

pub async fn deposit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<MoneyBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    movement(s, id, idem, b, true).await
}

pub async fn withdraw(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<MoneyBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    movement(s, id, idem, b, false).await
}

pub async fn get_player(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PlayerView>, ApiError> {
    let player_id = player_id(id)?;
    let pid = player_id.clone();
    s.writer
        .read(move |st, _| st.player_view(&pid))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found("PLAYER_NOT_FOUND", format!("player {player_id} not found"))
        })
}
