//! Request extraction that never lets a malformed request reach the domain: JSON bodies with
//! unknown fields or wrong types, missing or invalid idempotency keys and bad query strings
//! all become coded 4xx errors.

use super::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use outpost_core::edge::events::IdemTag;
use outpost_core::ids::IdemKey;
use outpost_core::log::sha256;
use serde::Serialize;
use serde::de::DeserializeOwned;

const BODY_MAX: usize = 64 * 1024;

/// A JSON body. An empty body is read as `{}` (for commands without parameters).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request("INVALID_BODY", e.body_text()))?;
        if bytes.len() > BODY_MAX {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                "request body exceeds 64 KiB",
            ));
        }
        let slice: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(slice).map(JsonBody).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => {
                    ApiError::bad_request("INVALID_JSON", format!("body is not valid JSON: {e}"))
                }
                Category::Data => ApiError::unprocessable("INVALID_BODY", e.to_string()),
            }
        })
    }
}

/// The `Idempotency-Key` header, required on every state-changing call.
pub struct IdemHeader(pub IdemKey);

impl<S: Send + Sync> FromRequestParts<S> for IdemHeader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let v = parts.headers.get("idempotency-key").ok_or_else(|| {
            ApiError::bad_request(
                "IDEMPOTENCY_KEY_REQUIRED",
                "the Idempotency-Key header is required",
            )
        })?;
        let s = v.to_str().map_err(|_| {
            ApiError::bad_request("INVALID_IDEMPOTENCY_KEY", "Idempotency-Key must be ASCII")
        })?;
        IdemKey::new(s)
            .map(IdemHeader)
            .map_err(|e| ApiError::bad_request("INVALID_IDEMPOTENCY_KEY", e.to_string()))
    }
}

impl IdemHeader {
    /// Bind the key to the request: SHA-256 over the route and the canonical re-serialisation
    /// of the parsed body, so formatting differences are not mistaken for a different request.
    pub fn tag<T: Serialize>(self, route: &str, body: &T) -> IdemTag {
        idem_tag(self.0, route, body)
    }
}

/// The idempotency tag of a request: its key and the SHA-256 of `route \n body-json`.
pub fn idem_tag<T: Serialize>(key: IdemKey, route: &str, body: &T) -> IdemTag {
    let mut bytes = route.as_bytes().to_vec();
    bytes.push(b'\n');
    bytes.extend_from_slice(&serde_json::to_vec(body).expect("request serialises"));
    IdemTag {
        key,
        request_sha256: hex::encode(sha256(&bytes)),
    }
}

/// Query strings with unknown or mistyped parameters are refused.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.body_text()))
    }
}
