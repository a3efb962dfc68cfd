//! The replication link: adapts the node's durable log and writer to `outpost_sync`'s
//! `EdgeLog`, and runs the QUIC link to the hub in the background.
//!
//! Only durable records are offered: sled makes a batch readable as soon as it is applied,
//! before our fdatasync returns, so reads are capped at the published durable head. Otherwise
//! the hub could hold a record that a power loss takes back.

use crate::checkpoints::Checkpointer;
use crate::config::HubLinkConfig;
use crate::store::LogStore;
use crate::writer::WriterHandle;
use outpost_core::ids::{Jurisdiction, NodeId, Seq};
use outpost_core::log::Frame;
use outpost_sync::transport::{EdgeLinkConfig, EdgeLog, LinkStatus, run_edge_link};
use std::sync::Arc;
use tokio::sync::watch;

struct NodeLog {
    writer: WriterHandle,
    checkpoints: Arc<Checkpointer>,
    store: Arc<LogStore>,
    durable_seq: watch::Receiver<Seq>,
}

impl EdgeLog for NodeLog {
    /// What the link may send: durable and readable from the store.
    fn durable_head(&self) -> Seq {
        self.writer.readable().borrow().seq
    }
    fn subscribe_durable(&self) -> watch::Receiver<Seq> {
        self.durable_seq.clone()
    }
    fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, String> {
        let durable = self.durable_head();
        if from > durable {
            return Ok(vec![]);
        }
        let max = max.min((durable.0 - from.0 + 1) as usize);
        self.store.read_frames(from, max).map_err(|e| e.to_string())
    }
    fn down_applied(&self) -> Seq {
        self.writer.down_applied()
    }
    fn apply_down(&self, frames: Vec<Frame>) -> impl Future<Output = Result<Seq, String>> + Send {
        let w = self.writer.clone();
        async move { w.apply_down(frames).await }
    }
    fn checkpoints(&self) -> Option<watch::Receiver<Option<(Seq, String)>>> {
        Some(self.checkpoints.subscribe_heads())
    }
    fn store_cosignature(
        &self,
        size: Seq,
        cosignature: String,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let cp = self.checkpoints.clone();
        async move {
            tokio::task::spawn_blocking(move || cp.add_cosignature(size, &cosignature))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        }
    }
}

/// Start the link; returns its status (as JSON for `/healthz`).
pub fn start(
    node_id: &NodeId,
    jurisdiction: &Jurisdiction,
    hub: &HubLinkConfig,
    writer: WriterHandle,
    store: Arc<LogStore>,
    checkpoints: Arc<Checkpointer>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<watch::Receiver<serde_json::Value>> {
    let client = outpost_sync::tls::client_config_from_files(&hub.ca_cert, &hub.cert, &hub.key)?;
    let (mut cfg, status) =
        EdgeLinkConfig::new(node_id.clone(), jurisdiction.clone(), hub.addr, client);
    cfg.server_name = hub.server_name.clone();

    // Bridge the writer's readable-head watch (ChainHead) to the Seq watch the link wants.
    let mut durable = writer.readable();
    let (seq_tx, seq_rx) = watch::channel(durable.borrow().seq);
    tokio::spawn(async move {
        while durable.changed().await.is_ok() {
            let seq = durable.borrow().seq;
            if seq_tx.send(seq).is_err() {
                break;
            }
        }
    });
    let (json_tx, json_rx) = watch::channel(status_json(&status.borrow()));
    let mut st = status;
    tokio::spawn(async move {
        while st.changed().await.is_ok() {
            let v = status_json(&st.borrow());
            if json_tx.send(v).is_err() {
                break;
            }
        }
    });
    let log = Arc::new(NodeLog {
        writer,
        checkpoints,
        store,
        durable_seq: seq_rx,
    });
    tokio::spawn(run_edge_link(cfg, log, shutdown));
    Ok(json_rx)
}

fn status_json(s: &LinkStatus) -> serde_json::Value {
    serde_json::json!({
        "connected": s.connected, "hub_acked": s.acked, "local_head": s.local_head,
        "lag_records": s.local_head.0.saturating_sub(s.acked.0),
        "down_applied": s.down_applied, "hub_down_head": s.hub_down_head,
        "sessions": s.sessions, "last_error": s.last_error,
    })
}
