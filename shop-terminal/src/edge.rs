//! The till's client for its edge node (`/v1/shop/…`), authenticated with the terminal's
//! bearer token. Connection failures are `Offline`: the till then refuses anything that moves
//! money and queues nothing. Refusals carry the node's stable error code.

use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum EdgeError {
    #[error(
        "edge node unreachable ({0}): bets and payouts are refused until it is back; nothing was queued"
    )]
    Offline(String),
    #[error("{code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
        body: Value,
    },
}

impl EdgeError {
    pub fn code(&self) -> &str {
        match self {
            EdgeError::Offline(_) => "EDGE_OFFLINE",
            EdgeError::Refused { code, .. } => code,
        }
    }
}

#[derive(Clone)]
pub struct EdgeClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl EdgeClient {
    pub fn new(base: &str, token: &str) -> EdgeClient {
        EdgeClient {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(2))
                .build()
                .expect("http client"),
        }
    }

    async fn call(
        &self,
        post: bool,
        path: &str,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, EdgeError> {
        let url = format!("{}{path}", self.base);
        let mut rb = if post {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        };
        rb = rb.bearer_auth(&self.token);
        if let Some(k) = idem {
            rb = rb.header("Idempotency-Key", k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb
            .send()
            .await
            .map_err(|e| EdgeError::Offline(e.to_string()))?;
        let status = r.status().as_u16();
        let v: Value = r
            .json()
            .await
            .map_err(|e| EdgeError::Offline(format!("reading reply: {e}")))?;
        if (200..300).contains(&status) {
            return Ok(v);
        }
        let code = v["error"]["code"]
            .as_str()
            .unwrap_or("EDGE_ERROR")
            .to_string();
        let message = v["error"]["message"].as_str().unwrap_or("").to_string();
        if status == 503 && code == "NODE_UNAVAILABLE" {
            return Err(EdgeError::Offline(message));
        }
        Err(EdgeError::Refused {
            status,
            code,
            message,
            body: v,
        })
    }

    pub async fn whoami(&self) -> Result<Value, EdgeError> {
        self.call(false, "/v1/shop/terminal", None, None).await
    }
    pub async fn markets(&self) -> Result<Value, EdgeError> {
        self.call(false, "/v1/markets?limit=2000", None, None).await
    }
    pub async fn place_bet(&self, idem: &str, body: Value) -> Result<Value, EdgeError> {
        self.call(true, "/v1/shop/bets", Some(idem), Some(body))
            .await
    }
    pub async fn ticket(&self, id: &str) -> Result<Value, EdgeError> {
        self.call(false, &format!("/v1/shop/tickets/{}", enc(id)), None, None)
            .await
    }
    pub async fn payout(&self, id: &str, idem: &str, body: Value) -> Result<Value, EdgeError> {
        self.call(
            true,
            &format!("/v1/shop/tickets/{}/payout", enc(id)),
            Some(idem),
            Some(body),
        )
        .await
    }
    pub async fn void(&self, id: &str, idem: &str, body: Value) -> Result<Value, EdgeError> {
        self.call(
            true,
            &format!("/v1/shop/tickets/{}/void", enc(id)),
            Some(idem),
            Some(body),
        )
        .await
    }
    pub async fn report(&self, from_ms: i64, to_ms: i64) -> Result<Value, EdgeError> {
        self.call(
            false,
            &format!("/v1/shop/report?from_ms={from_ms}&to_ms={to_ms}"),
            None,
            None,
        )
        .await
    }
}

/// Percent-encode a path segment (scanned input may hold anything).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
