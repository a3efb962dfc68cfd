//! Sends the odds book's UOF recovery requests to the provider's recovery API
//! (`POST {base_url}/v1/{product}/recovery/initiate_request?after=…&request_id=…`), the other
//! half of the producer-recovery flow: the book decides when to ask and which answer
//! (`snapshot_complete` with that `request_id`) completes recovery; this shell only delivers
//! the request. A request that fails is logged and counted; the book asks again after its
//! retry interval, and the producer's markets stay suspended until a requested recovery
//! completes, so a failure here can only keep markets shut, never open them.

use outpost_core::feed::book::RecoveryRequest;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// `[odds.uof_api]`: where and how to ask for recoveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UofApiConfig {
    /// `http://…` of the operator's egress proxy towards the provider's API
    /// (`https://api.betradar.com`, or `stgapi` for integration). This build speaks plain HTTP
    /// out of the node; TLS to the provider is the egress proxy's job (see `docs/feed-recovery.md`).
    pub base_url: String,
    /// File holding the access token (sent as `x-access-token`), kept out of the config.
    pub access_token_file: PathBuf,
    /// Repeat a recovery request that has not completed after this long.
    #[serde(default = "default_retry_ms")]
    pub retry_ms: i64,
    /// The `node_id` parameter, when several sessions share one access token.
    #[serde(default)]
    pub node_id: Option<u32>,
    /// Product (producer) id → the path name the API uses. 1 = `liveodds` and 3 = `pre` are
    /// built in; other producers must be named here.
    #[serde(default)]
    pub product_names: BTreeMap<u32, String>,
}

fn default_retry_ms() -> i64 {
    60_000
}

/// Counters for `/v1/feed/stats`.
#[derive(Debug, Default)]
pub struct RecoveryStats {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
}

pub struct RecoveryClient {
    cfg: UofApiConfig,
    token: String,
    http: reqwest::Client,
    pub stats: RecoveryStats,
}

impl RecoveryClient {
    /// Validates the section (every subscribed product has a path name, token readable).
    pub fn new(cfg: UofApiConfig, products: &[u32]) -> anyhow::Result<RecoveryClient> {
        anyhow::ensure!(
            cfg.base_url.starts_with("http://"),
            "[odds.uof_api] base_url must be http://… (the egress proxy); https is not built in"
        );
        anyhow::ensure!(
            (1_000..=3_600_000).contains(&cfg.retry_ms),
            "[odds.uof_api] retry_ms must be 1000-3600000"
        );
        for p in products {
            anyhow::ensure!(
                product_name(&cfg, *p).is_some(),
                "[odds.uof_api] product {p} has no path name: add it to product_names"
            );
        }
        let token = std::fs::read_to_string(&cfg.access_token_file)
            .map_err(|e| {
                anyhow::anyhow!(
                    "[odds.uof_api] access_token_file {}: {e}",
                    cfg.access_token_file.display()
                )
            })?
            .trim()
            .to_string();
        anyhow::ensure!(
            !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()),
            "[odds.uof_api] access token must be one line of printable ASCII"
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(RecoveryClient {
            cfg,
            token,
            http,
            stats: RecoveryStats::default(),
        })
    }

    pub fn retry_ms(&self) -> i64 {
        self.cfg.retry_ms
    }

    /// Deliver requests in the background: the ingest task never waits on the provider.
    pub fn send_all(self: &Arc<Self>, requests: Vec<RecoveryRequest>) {
        for r in requests {
            let me = self.clone();
            tokio::spawn(async move { me.send(r).await });
        }
    }

    async fn send(&self, r: RecoveryRequest) {
        let Some(name) = product_name(&self.cfg, r.product) else {
            return; // refused at start-up
        };
        let base = self.cfg.base_url.trim_end_matches('/');
        let mut url = format!(
            "{base}/v1/{name}/recovery/initiate_request?request_id={}",
            r.request_id
        );
        if let Some(after) = r.after {
            url.push_str(&format!("&after={}", after.0));
        }
        if let Some(n) = self.cfg.node_id {
            url.push_str(&format!("&node_id={n}"));
        }
        let res = self
            .http
            .post(&url)
            .header("x-access-token", &self.token)
            .send()
            .await;
        match res {
            Ok(resp) if resp.status().is_success() => {
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                tracing::info!(product = r.product, request_id = r.request_id, after = ?r.after, "UOF recovery requested");
            }
            Ok(resp) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    product = r.product,
                    request_id = r.request_id,
                    status = resp.status().as_u16(),
                    "UOF recovery request refused; will ask again"
                );
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    product = r.product,
                    request_id = r.request_id,
                    "UOF recovery request failed: {e}; will ask again"
                );
            }
        }
    }
}

fn product_name(cfg: &UofApiConfig, product: u32) -> Option<&str> {
    cfg.product_names
        .get(&product)
        .map(String::as_str)
        .or(match product {
            1 => Some("liveodds"),
            3 => Some("pre"),
            _ => None,
        })
}
