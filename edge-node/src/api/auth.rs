//! Who may call which endpoint. Every endpoint that changes money, identity or compliance
//! state, or reads the log, needs an API client's bearer token holding the endpoint's role;
//! the node's config (`[[api.clients]]`) names each client, the SHA-256 of its token (so the
//! file holds no usable secret) and its roles. Prices (`/v1/markets`, `/v1/odds`, the odds
//! stream), the rules in force and `/healthz` are public; shop tills authenticate with their
//! own terminal tokens (`shop.rs`).
//!
//! Why roles: the callers are different systems with different blast radii. The operator's
//! player-facing platform places bets for players; only the payments integration moves
//! money in or out; only the back office verifies identity; only the feed adapter sets
//! prices; a regulator's tooling reads the log. A leaked platform token cannot mark a player
//! verified or credit a deposit.
//!
//! A node with no clients configured serves without tokens, and `EdgeConfig::load` allows
//! that only on a loopback address (a developer's stack, the tests): an open API is never
//! reachable from the network.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use outpost_core::log::sha256;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

/// What an API client may do. Each protected route needs exactly one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The operator's player-facing platform: registration, bets, a player's own limits,
    /// time-outs, reality checks and self-exclusion, player and bet lookups.
    PlayerChannel,
    /// The payment integration: deposits, withdrawals and their completion.
    Payments,
    /// Compliance staff tooling: KYC verification, the self-exclusion register, the
    /// cross-operator figure, node details.
    BackOffice,
    /// The odds feed adapter: pushes provider messages.
    Feed,
    /// Read-only: the log, its segments, checkpoints and proofs, feed statistics.
    Audit,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::PlayerChannel => "player_channel",
            Role::Payments => "payments",
            Role::BackOffice => "back_office",
            Role::Feed => "feed",
            Role::Audit => "audit",
        }
    }
}

/// One API client in the node's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClient {
    /// Shown in errors and logs (never the token).
    pub name: String,
    /// Hex SHA-256 of the client's bearer token.
    pub token_sha256: String,
    pub roles: BTreeSet<Role>,
}

/// `[api]` in the node's config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiAccessConfig {
    #[serde(default)]
    pub clients: Vec<ApiClient>,
}

impl ApiAccessConfig {
    /// Refuse a config that would expose an open API, or whose clients are malformed.
    pub fn validate(&self, listen: &SocketAddr) -> Result<(), String> {
        if self.clients.is_empty() && !listen.ip().is_loopback() {
            return Err(format!(
                "http_listen {listen} is not a loopback address and [api] has no clients: the API would be open to the network (add [[api.clients]] or listen on loopback)"
            ));
        }
        let mut names = BTreeSet::new();
        for c in &self.clients {
            if c.name.trim().is_empty() || !names.insert(c.name.as_str()) {
                return Err(format!(
                    "api.clients: name {:?} is empty or used twice",
                    c.name
                ));
            }
            if c.token_sha256.len() != 64 || hex::decode(&c.token_sha256).is_err() {
                return Err(format!(
                    "api.clients {:?}: token_sha256 must be 64 hex characters (the SHA-256 of the token)",
                    c.name
                ));
            }
            if c.roles.is_empty() {
                return Err(format!("api.clients {:?}: roles is empty", c.name));
            }
        }
        Ok(())
    }
}

/// The configured clients, as the middleware checks them.
pub struct ApiAccess {
    clients: Vec<ApiClient>,
}

impl ApiAccess {
    pub fn new(cfg: &ApiAccessConfig) -> Arc<ApiAccess> {
        Arc::new(ApiAccess {
            clients: cfg.clients.clone(),
        })
    }

    /// Tokens are not required (no clients configured; the listener is on loopback).
    pub fn open(&self) -> bool {
        self.clients.is_empty()
    }

    fn check(&self, headers: &axum::http::HeaderMap, role: Role) -> Result<(), ApiError> {
        if self.open() {
            return Ok(());
        }
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "an API client bearer token is required",
                )
            })?;
        let digest = hex::encode(sha256(token.trim().as_bytes()));
        let client = self
            .clients
            .iter()
            .find(|c| constant_time_eq_hex(c.token_sha256.as_bytes(), digest.as_bytes()))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "UNAUTHENTICATED",
                    "unknown API client token",
                )
            })?;
        if client.roles.contains(&role) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!(
                    "API client {:?} does not hold the role {} this endpoint needs",
                    client.name,
                    role.name()
                ),
            ))
        }
    }
}

/// Route layer: let the request through only if its client holds `role`.
pub async fn require(
    State((access, role)): State<(Arc<ApiAccess>, Role)>,
    req: Request,
    next: Next,
) -> Response {
    match access.check(req.headers(), role) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `configured` (hex, any case) equals `lower_hex`, in time independent of where they differ.
pub fn constant_time_eq_hex(configured: &[u8], lower_hex: &[u8]) -> bool {
    configured.len() == lower_hex.len()
        && configured
            .iter()
            .zip(lower_hex)
            .fold(0u8, |acc, (x, y)| acc | (x.to_ascii_lowercase() ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn access() -> Arc<ApiAccess> {
        ApiAccess::new(&ApiAccessConfig {
            clients: vec![ApiClient {
                name: "platform".into(),
                token_sha256: hex::encode(sha256(b"s3cret")).to_uppercase(),
                roles: [Role::PlayerChannel, Role::Payments].into(),
            }],
        })
    }

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {t}").parse().unwrap());
        h
    }

    fn code(r: Result<(), ApiError>) -> Option<(StatusCode, &'static str)> {
        r.err().map(|e| match e {
            ApiError::Status { status, code, .. } => (status, code),
            other => panic!("unexpected {other:?}"),
        })
    }

    #[test]
    fn a_token_is_checked_against_the_roles_of_its_client() {
        let a = access();
        assert_eq!(code(a.check(&bearer("s3cret"), Role::PlayerChannel)), None);
        assert_eq!(code(a.check(&bearer("s3cret"), Role::Payments)), None);
        assert_eq!(
            code(a.check(&bearer("s3cret"), Role::BackOffice)),
            Some((StatusCode::FORBIDDEN, "FORBIDDEN"))
        );
        for h in [bearer("wrong"), bearer(""), HeaderMap::new()] {
            assert_eq!(
                code(a.check(&h, Role::PlayerChannel)),
                Some((StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"))
            );
        }
        // No clients: open (only allowed on loopback, see below).
        let open = ApiAccess::new(&ApiAccessConfig::default());
        assert_eq!(code(open.check(&HeaderMap::new(), Role::BackOffice)), None);
    }

    #[test]
    fn an_open_api_off_loopback_and_malformed_clients_are_refused() {
        let lan: SocketAddr = "10.0.0.5:8080".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let none = ApiAccessConfig::default();
        assert!(none.validate(&lo).is_ok());
        assert!(none.validate(&lan).unwrap_err().contains("not a loopback"));
        let client = |name: &str, hash: String, roles: &[Role]| ApiAccessConfig {
            clients: vec![ApiClient {
                name: name.into(),
                token_sha256: hash,
                roles: roles.iter().copied().collect(),
            }],
        };
        let good = hex::encode(sha256(b"t"));
        assert!(
            client("p", good.clone(), &[Role::Feed])
                .validate(&lan)
                .is_ok()
        );
        assert!(
            client("p", "abc".into(), &[Role::Feed])
                .validate(&lan)
                .is_err()
        );
        assert!(client("p", good.clone(), &[]).validate(&lan).is_err());
        assert!(
            client(" ", good.clone(), &[Role::Feed])
                .validate(&lan)
                .is_err()
        );
        let mut twice = client("p", good.clone(), &[Role::Feed]);
        twice.clients.push(twice.clients[0].clone());
        assert!(twice.validate(&lan).unwrap_err().contains("used twice"));
    }
}
