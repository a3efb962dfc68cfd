//! Set-up shared by the hub's integration tests: a hub started on loopback with a development
//! PKI for one node (`gb-1`, jurisdiction GB), an edge link to it, and waiting for a condition.

#![allow(dead_code)] // each test binary uses its own subset

use outpost_core::ids::{Jurisdiction, NodeId};
use outpost_core::log::NodeKey;
use outpost_sync::transport::{EdgeLinkConfig, EdgeLog, LinkStatus, run_edge_link};
use region_hub::config::HubConfig;
use region_hub::run::RunningHub;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The hub's signing key in these tests.
pub fn hub_key() -> NodeKey {
    NodeKey::from_seed([1; 32])
}

/// Start a hub in `dir` that knows node `gb-1` by `node_key`. `audit_extra` is appended to
/// the `[audit]` table (e.g. `segment_max_age_ms = 0` to upload every segment at once).
/// Send `true` on the returned sender to stop it.
pub async fn start_hub(
    dir: &Path,
    node_key: &NodeKey,
    audit_extra: &str,
) -> (RunningHub, watch::Sender<bool>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let node = NodeId::new("gb-1").unwrap();
    outpost_sync::pki::write_dev_pki(
        &dir.join("pki"),
        &outpost_sync::pki::DEFAULT_HUB_NAMES,
        std::slice::from_ref(&node),
    )
    .unwrap();
    std::fs::write(dir.join("hub.seed"), hub_key().seed_hex()).unwrap();
    let toml = format!(
        r#"
hub_id = "test"
data_dir = "data"
quic_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
signing_key_file = "hub.seed"
[tls]
ca_cert = "pki/ca.pem"
hub_cert = "pki/hub.pem"
hub_key = "pki/hub.key"
[[nodes]]
id = "gb-1"
jurisdiction = "GB"
public_key = "{}"
[audit]
retention_years = {{ GB = 5 }}
{audit_extra}
"#,
        node_key.public().to_hex()
    );
    let cfg = HubConfig::from_toml(&toml, dir).unwrap();
    let (stop, stop_rx) = watch::channel(false);
    (region_hub::run::start(cfg, stop_rx).await.unwrap(), stop)
}

/// Run node `gb-1`'s replication link from `log` to `hub`, with the PKI `start_hub` wrote.
pub fn link<L: EdgeLog + 'static>(
    dir: &Path,
    hub: &RunningHub,
    log: Arc<L>,
    stop: watch::Receiver<bool>,
) -> (tokio::task::JoinHandle<()>, watch::Receiver<LinkStatus>) {
    let node = NodeId::new("gb-1").unwrap();
    let client = outpost_sync::tls::edge_client_config(&dir.join("pki"), &node).unwrap();
    let (cfg, status) = EdgeLinkConfig::new(
        node,
        Jurisdiction::new("GB").unwrap(),
        hub.quic_addr,
        client,
    );
    (tokio::spawn(run_edge_link(cfg, log, stop)), status)
}

/// Poll `f` every 50 ms until it holds; fail the test after 15 s.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
