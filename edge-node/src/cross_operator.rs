//! The cross-operator deposit check (DE: LUGAS, the "Limitdatei"): before a deposit in a
//! jurisdiction with a cross-operator monthly cap, ask the external limit system how much the
//! player has deposited this month at *other* operators, record that figure in the log, then let
//! the gate decide the deposit against the cap.
//!
//! Why a pull at deposit time and not only pushed figures: the cap is across operators, and a
//! figure pushed hours ago misses what the player deposited elsewhere since. The query is
//! synchronous and fails closed: if the limit system cannot be reached, answers an error or an
//! unreadable body, the deposit is refused with `CROSS_OPERATOR_UNAVAILABLE` and nothing is
//! written. The wire protocol is documented in `docs/jurisdictions.md` ("Cross-operator
//! deposit check").

use outpost_core::ids::PlayerId;
use serde::Deserialize;
use std::time::Duration;

/// `[cross_operator]` in the node's config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossOperatorConfig {
    /// Base URL of the limit system's gateway, e.g. `http://lugas-gateway.internal:8080`. Plain
    /// HTTP inside the operator's network: TLS towards the authority is the gateway's job.
    pub url: String,
    /// How long a deposit may wait for the answer before it is refused.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Name recorded as the figure's source (e.g. `LUGAS`).
    pub source: String,
}

fn default_timeout_ms() -> u64 {
    2_000
}

/// Why no figure could be obtained. Each becomes `503 CROSS_OPERATOR_UNAVAILABLE`.
#[derive(Debug, thiserror::Error)]
pub enum CrossOperatorError {
    #[error("cross-operator limit system {url} unreachable: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("cross-operator limit system answered HTTP {status} for player {player}")]
    Status { status: u16, player: String },
    #[error("cross-operator limit system sent an unusable answer: {0}")]
    BadAnswer(String),
}

/// The answer of `GET {url}/v1/players/{player_id}/deposits-month`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    player_id: String,
    other_operators_month_minor: i64,
}

/// The largest figure accepted from outside (10^15 minor units): anything larger is nonsense,
/// and refusing it keeps the gate's arithmetic far from overflow.
const FIGURE_MINOR_MAX: i64 = 1_000_000_000_000_000;

pub struct CrossOperatorClient {
    cfg: CrossOperatorConfig,
    http: reqwest::Client,
}

impl CrossOperatorClient {
    pub fn new(cfg: CrossOperatorConfig) -> anyhow::Result<CrossOperatorClient> {
        anyhow::ensure!(
            cfg.url.starts_with("http://"),
            "[cross_operator] url must be http://… (the operator's gateway; https is not built in), got {:?}",
            cfg.url
        );
        anyhow::ensure!(
            !cfg.source.is_empty() && cfg.source.len() <= 64,
            "[cross_operator] source must be 1-64 characters"
        );
        anyhow::ensure!(
            (1..=60_000).contains(&cfg.timeout_ms),
            "[cross_operator] timeout_ms must be 1-60000"
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .build()?;
        Ok(CrossOperatorClient { cfg, http })
    }

    pub fn source(&self) -> &str {
        &self.cfg.source
    }

    /// This month's deposits of `player` at other operators, in minor units.
    pub async fn deposits_elsewhere_month_minor(
        &self,
        player: &PlayerId,
    ) -> Result<i64, CrossOperatorError> {
        let base = self.cfg.url.trim_end_matches('/');
        let url = format!("{base}/v1/players/{player}/deposits-month");
        let unreachable = |e: reqwest::Error| CrossOperatorError::Unreachable {
            url: base.to_string(),
            detail: e.to_string(),
        };
        let resp = self.http.get(&url).send().await.map_err(unreachable)?;
        if !resp.status().is_success() {
            return Err(CrossOperatorError::Status {
                status: resp.status().as_u16(),
                player: player.to_string(),
            });
        }
        let body = resp.bytes().await.map_err(unreachable)?;
        let a: Answer = serde_json::from_slice(&body)
            .map_err(|e| CrossOperatorError::BadAnswer(e.to_string()))?;
        if a.player_id != player.as_str() {
            return Err(CrossOperatorError::BadAnswer(format!(
                "asked about {player}, answered about {}",
                a.player_id
            )));
        }
        if !(0..=FIGURE_MINOR_MAX).contains(&a.other_operators_month_minor) {
            return Err(CrossOperatorError::BadAnswer(format!(
                "figure {} out of range",
                a.other_operators_month_minor
            )));
        }
        Ok(a.other_operators_month_minor)
    }
}
