//! The one place where errors become HTTP responses: `{"error":{"code":…,"message":…}}`.
//! Bad input is always 4xx with a stable code; 5xx means the node itself is failing.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use outpost_core::edge::CommandError;
use outpost_core::gate::{CheckResult, ReasonCode};

#[derive(Debug)]
pub enum ApiError {
    Status {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// A bet refused by the compliance gate: the decision was logged.
    Rejected {
        reason: ReasonCode,
        rules_version: String,
        checks: Vec<CheckResult>,
    },
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Status {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "NODE_UNAVAILABLE", message)
    }
}

impl From<crate::writer::WriterGone> for ApiError {
    fn from(e: crate::writer::WriterGone) -> ApiError {
        ApiError::unavailable(e.to_string())
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        use CommandError as E;
        let msg = e.to_string();
        match e {
            E::NotInitialised => ApiError::unavailable(msg),
            E::AlreadyInitialised => {
                ApiError::new(StatusCode::CONFLICT, "ALREADY_INITIALISED", msg)
            }
            E::UnknownPlayer(_) => ApiError::not_found("PLAYER_NOT_FOUND", msg),
            E::UnknownSelection(_) => ApiError::unprocessable("UNKNOWN_SELECTION", msg),
            E::JurisdictionNotServed(_) => ApiError::unprocessable("JURISDICTION_NOT_SERVED", msg),
            E::IdempotencyKeyReused => {
                ApiError::new(StatusCode::CONFLICT, "IDEMPOTENCY_KEY_REUSED", msg)
            }
            E::InvalidAmount => ApiError::unprocessable("INVALID_AMOUNT", msg),
            E::CurrencyMismatch { .. } => ApiError::unprocessable("CURRENCY_MISMATCH", msg),
            E::InsufficientFunds { .. } => ApiError::unprocessable("INSUFFICIENT_FUNDS", msg),
            E::MarketExists(_) => ApiError::new(StatusCode::CONFLICT, "MARKET_EXISTS", msg),
            E::InvalidMarket(_) => ApiError::unprocessable("INVALID_MARKET", msg),
            E::DownOutOfOrder { .. } | E::WrongNode(_) => {
                ApiError::new(StatusCode::CONFLICT, "DOWNSTREAM_REFUSED", msg)
            }
            E::DebtOutstanding { .. } => ApiError::unprocessable("DEBT_OUTSTANDING", msg),
            // Issue 3.
            E::Refused { code, .. } => ApiError::unprocessable(code.as_str(), msg),
            E::DuplicateProviderRef(_) => {
                ApiError::new(StatusCode::CONFLICT, "DUPLICATE_PROVIDER_REF", msg)
            }
            E::UnknownWithdrawal(_) => ApiError::not_found("WITHDRAWAL_NOT_FOUND", msg),
            E::Shop(e) => shop_error(e),
        }
    }
}

/// Shop till refusals (issue 6): stable codes the till shows and keys on.
fn shop_error(e: outpost_core::edge::shop::ShopError) -> ApiError {
    use outpost_core::edge::shop::ShopError as S;
    let msg = e.to_string();
    let (status, code) = match e {
        S::RetailRulesMissing => (StatusCode::UNPROCESSABLE_ENTITY, "RETAIL_RULES_MISSING"),
        S::PlayerIdRequired => (StatusCode::UNPROCESSABLE_ENTITY, "PLAYER_ID_REQUIRED"),
        S::IdRequired { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "ID_REQUIRED"),
        S::AgeNotConfirmed => (StatusCode::UNPROCESSABLE_ENTITY, "AGE_NOT_CONFIRMED"),
        S::TicketNotFound(_) => (StatusCode::NOT_FOUND, "TICKET_NOT_FOUND"),
        S::AlreadyPaid { .. } => (StatusCode::CONFLICT, "TICKET_ALREADY_PAID"),
        S::TicketVoided(_) => (StatusCode::CONFLICT, "TICKET_VOIDED"),
        S::NotSettled(_) => (StatusCode::CONFLICT, "TICKET_NOT_SETTLED"),
        S::NothingToPay(_) => (StatusCode::CONFLICT, "TICKET_NOT_A_WINNER"),
        S::TicketExpired { .. } => (StatusCode::CONFLICT, "TICKET_EXPIRED"),
        S::OtherShop(_) => (StatusCode::FORBIDDEN, "TICKET_OTHER_SHOP"),
        S::VoidRefused(_) => (StatusCode::FORBIDDEN, "VOID_REFUSED"),
        S::Ledger(_) => (StatusCode::UNPROCESSABLE_ENTITY, "LEDGER_REFUSED"),
        S::TicketIdCollision => (StatusCode::SERVICE_UNAVAILABLE, "TICKET_ID_COLLISION"),
        S::EachWayNotOffered(_) => (StatusCode::UNPROCESSABLE_ENTITY, "EACH_WAY_NOT_OFFERED"),
        S::EachWayAccountBet => (StatusCode::UNPROCESSABLE_ENTITY, "EACH_WAY_ACCOUNT_BET"),
        S::StakeOverflow => (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_STAKE"),
    };
    ApiError::new(status, code, msg)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Status {
                status,
                code,
                message,
            } => (
                status,
                Json(serde_json::json!({ "error": { "code": code, "message": message } })),
            )
                .into_response(),
            ApiError::Rejected {
                reason,
                rules_version,
                checks,
            } => {
                let failed: Vec<String> = checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| c.detail.to_string())
                    .collect();
                let body = serde_json::json!({ "error": {
                    "code": reason.as_str(),
                    "message": format!("refused: {}", failed.join("; ")),
                    "rules_version": rules_version,
                    "checks": checks,
                }});
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
        }
    }
}
