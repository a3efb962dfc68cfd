//! Responsible-gambling and compliance endpoints: player limits, time-outs and cool-offs,
//! reality-check acknowledgement, cross-operator deposit figures (DE: LUGAS), register
//! documents, pending-withdrawal completion, and the rules in force.

use super::AppState;
use super::error::ApiError;
use super::extract::{IdemHeader, JsonBody};
use super::players::player_id;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use outpost_core::edge::events::TimeOutKind;
use outpost_core::edge::{Command, Reply};
use outpost_core::gate::register::SignedRegisterDoc;
use outpost_core::gate::{LimitKind, Window};
use outpost_core::ids::PlayerId;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitBody {
    kind: LimitKind,
    window: Window,
    /// `null` removes the limit (which, like a raise, waits for the cooling-off period).
    amount_minor: Option<i64>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeOutBody {
    hours: u32,
    #[serde(default = "time_out_kind")]
    kind: TimeOutKind,
}
fn time_out_kind() -> TimeOutKind {
    TimeOutKind::TimeOut
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrossOperatorBody {
    other_operators_month_minor: i64,
    source: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    paid: bool,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDocBody {
    payload_b64: String,
    signature_hex: String,
}

/// The player's limits in force (own, default or cap), pending raises, time-out and
/// reality-check status.
async fn compliance_view(s: &AppState, pid: PlayerId) -> Result<serde_json::Value, ApiError> {
    let rules = s.writer.rules();
    let p2 = pid.clone();
    s.writer
        .read(move |st, _| {
            let p = st.players.get(&p2)?;
            let now = crate::writer::now();
            let mut limits = Vec::new();
            for k in LimitKind::ALL {
                for w in Window::ALL {
                    let e = p.rg.limits.effective(k, w, now, &rules);
                    let used = p.rg.activity.used(k, w, now);
                    limits.push(serde_json::json!({
                        "kind": k, "window": w, "amount_minor": e.amount_minor, "source": e.source,
                        "pending": e.pending, "used_minor": used,
                    }));
                }
            }
            let interval = rules.limits.reality_check_interval_minutes as i64 * 60_000;
            Some(serde_json::json!({
                "player_id": p.player_id, "rules_version": rules.rules_version, "limits": limits,
                "timed_out_until": p.rg.timed_out_until.filter(|u| *u > now),
                "reality_check_due": interval > 0 && now.0 - p.rg.last_reality_check_at.0 >= interval,
                "cooling_off_hours": rules.limits.increase_cooling_off_hours,
            }))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("PLAYER_NOT_FOUND", format!("player {pid} not found")))
}

async fn command_then_view(
    s: &AppState,
    pid: PlayerId,
    cmd: Command,
) -> Result<Json<serde_json::Value>, ApiError> {
    match s.writer.command(cmd, None).await?? {
        Reply::Player(_) => Ok(Json(compliance_view(s, pid).await?)),
        other => Err(ApiError::unavailable(format!("unexpected reply {other:?}"))),
    }
}

pub async fn get_limits(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(compliance_view(&s, player_id(id)?).await?))
}

pub async fn set_limit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<LimitBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pid = player_id(id)?;
    let tag = idem.tag(&format!("POST /v1/players/{pid}/limits"), &b);
    let cmd = Command::SetLimit {
        player_id: pid.clone(),
        kind: b.kind,
        window: b.window,
        amount_minor: b.amount_minor,
        idem: tag,
    };
    command_then_view(&s, pid, cmd).await
}

pub async fn time_out(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<TimeOutBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pid = player_id(id)?;
    let tag = idem.tag(&format!("POST /v1/players/{pid}/time-out"), &b);
    let cmd = Command::TimeOut {
        player_id: pid.clone(),
        kind: b.kind,
        hours: b.hours,
        idem: tag,
    };
    command_then_view(&s, pid, cmd).await
}

pub async fn reality_check(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<Empty>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pid = player_id(id)?;
    let tag = idem.tag(&format!("POST /v1/players/{pid}/reality-check"), &b);
    let cmd = Command::AckRealityCheck {
        player_id: pid.clone(),
        idem: tag,
    };
    command_then_view(&s, pid, cmd).await
}

pub async fn cross_operator(
    State(s): State<AppState>,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<CrossOperatorBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let pid = player_id(id)?;
    let tag = idem.tag(&format!("POST /v1/players/{pid}/cross-operator"), &b);
    let cmd = Command::ReportCrossOperator {
        player_id: pid.clone(),
        other_operators_month_minor: b.other_operators_month_minor,
        source: b.source,
        idem: tag,
    };
    command_then_view(&s, pid, cmd).await
}

/// Upload a signed register snapshot or update. Idempotent by content: re-sending an applied
/// document is refused as out of order and changes nothing.
pub async fn load_register(
    State(s): State<AppState>,
    JsonBody(b): JsonBody<RegisterDocBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let doc = SignedRegisterDoc {
        payload_b64: b.payload_b64,
        signature_hex: b.signature_hex,
    };
    s.writer
        .command(Command::LoadRegister { doc }, None)
        .await??;
    Ok((StatusCode::CREATED, Json(register_view(&s).await?)))
}

async fn register_view(s: &AppState) -> Result<serde_json::Value, ApiError> {
    let rules = s.writer.rules();
    Ok(s.writer
        .read(move |st, _| {
            let reg = st.gate.register.as_ref();
            serde_json::json!({
                "status": st.register_status(&rules, crate::writer::now()),
                "register": rules.register.as_ref().map(|r| &r.name),
                "seq": reg.map(|r| r.seq), "issued_at_ms": reg.map(|r| r.issued_at_ms),
                "entries": reg.map(|r| r.entries.len()),
            })
        })
        .await?)
}

pub async fn get_register(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(register_view(&s).await?))
}

/// The payment provider's outcome for a pending withdrawal.
pub async fn complete_withdrawal(
    State(s): State<AppState>,
    Path(provider_ref): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<CompleteBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tag = idem.tag(&format!("POST /v1/withdrawals/{provider_ref}/complete"), &b);
    let cmd = Command::CompleteWithdrawal {
        provider_ref,
        paid: b.paid,
        idem: tag,
    };
    match s.writer.command(cmd, None).await?? {
        Reply::Movement {
            movement_id,
            player,
        } => Ok(Json(
            serde_json::json!({ "movement_id": movement_id, "wallet": player }),
        )),
        other => Err(ApiError::unavailable(format!("unexpected reply {other:?}"))),
    }
}

pub async fn rules(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::to_value(&*s.writer.rules()).unwrap_or_default())
}

/// Before a deposit where the jurisdiction caps deposits across operators and a limit system
/// is configured (`[cross_operator]`): ask it for the player's deposits elsewhere this month
/// and log the answer (a `cross_operator_figure` record), so the gate decides the deposit on a
/// figure from now. Fails closed: no answer, no deposit (`503 CROSS_OPERATOR_UNAVAILABLE`,
/// nothing written). A retry of a deposit that was already decided asks nothing: its reply is
/// replayed by the deposit command itself.
pub(super) async fn cross_operator_before_deposit(
    s: &AppState,
    player: &PlayerId,
    deposit: &outpost_core::edge::events::IdemTag,
) -> Result<(), ApiError> {
    let Some(client) = s.cross_operator.clone() else {
        return Ok(());
    };
    if s.writer
        .rules()
        .limits
        .cross_operator_deposit_cap_month_minor
        .is_none()
    {
        return Ok(());
    }
    let key = deposit.key.clone();
    if s.writer
        .read(move |st, _| st.idem.contains_key(&key))
        .await?
    {
        return Ok(());
    }
    let figure = client
        .deposits_elsewhere_month_minor(player)
        .await
        .map_err(|e| {
            tracing::warn!(player = %player, "deposit refused: {e}");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "CROSS_OPERATOR_UNAVAILABLE",
                format!("{e}; the deposit is refused until the limit system answers"),
            )
        })?;
    // The figure's own idempotency key is derived from the deposit's, and its request hash
    // does not include the figure: a retry after a crash between the two commands replays
    // the first figure instead of failing as a reused key.
    let derived = outpost_core::log::sha256(deposit.key.as_str().as_bytes());
    let tag = outpost_core::edge::events::IdemTag {
        key: outpost_core::ids::IdemKey::new(format!("cross-operator:{}", hex::encode(derived)))
            .expect("derived key is 79 allowed characters"),
        request_sha256: hex::encode(outpost_core::log::sha256(
            format!("{}\n{}", deposit.key.as_str(), deposit.request_sha256).as_bytes(),
        )),
    };
    let cmd = Command::ReportCrossOperator {
        player_id: player.clone(),
        other_operators_month_minor: figure,
        source: client.source().to_string(),
        idem: tag,
    };
    s.writer.command(cmd, None).await??;
    Ok(())
}
