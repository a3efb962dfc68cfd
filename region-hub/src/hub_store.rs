//! The replication server's view of the hub: `outpost_sync::transport::HubStore` for
//! [`HubState`]. A thin adapter: the logic lives in `store.rs`.
//!
//! The transport calls the synchronous methods from its async tasks, so they must be quick:
//! registrations and upstream heads come from memory, down-chain reads use the read
//! connection (never blocked by a writer's fsync under WAL), and the liveness writes (`touch`,
//! `down_acked`) are handed to the blocking pool without waiting for them.

use crate::store::{HubState, now_ms};
use outpost_core::ids::{NodeId, Seq};
use outpost_core::log::{ChainHead, Frame, RecordBody};
use outpost_sync::transport::HubStore;
use outpost_sync::{ForkEvidence, NodeRegistration, SignedHead, Witnessed};
use std::future::Future;
use tokio::sync::watch;

impl HubState {
    /// Run a best-effort database write off the async runtime without waiting for it (inline
    /// when there is no runtime). Failures are logged: these fields are informational and the
    /// next heartbeat rewrites them.
    fn fire_and_forget(
        &self,
        what: &'static str,
        f: impl FnOnce(&HubState) -> Result<(), crate::store::StoreError> + Send + 'static,
    ) {
        let me = self.clone();
        let run = move || {
            if let Err(e) = f(&me) {
                tracing::warn!(error = %e, "{what} not recorded");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(run)),
            Err(_) => run(),
        }
    }
}

impl HubStore for HubState {
    fn registration(&self, node: &NodeId) -> Option<NodeRegistration> {
        HubState::registration(self, node).map(|n| NodeRegistration {
            jurisdiction: n.jurisdiction.clone(),
            public_key: n.public_key,
        })
    }

    fn upstream_head(&self, node: &NodeId) -> Result<ChainHead, String> {
        HubState::upstream_head(self, node).map_err(|e| e.to_string())
    }

    fn commit_upstream(
        &self,
        node: &NodeId,
        records: Vec<(Frame, RecordBody)>,
    ) -> impl Future<Output = Result<Seq, String>> + Send {
        let node = node.clone();
        let me = self.clone();
        async move {
            me.blocking(move |s| s.commit_upstream_blocking(&node, records, now_ms()))
                .await
                .map_err(|e: crate::store::StoreError| e.to_string())
        }
    }

    fn flag_node(&self, node: &NodeId, reason: &str) {
        // The in-memory flag refuses further commits at once; the database write may wait
        // for a commit in progress, so it happens off the async runtime.
        self.flag_in_memory(node, reason);
        let (node, reason) = (node.clone(), reason.to_string());
        self.fire_and_forget("node flag", move |s| {
            s.persist_flag(&node, &reason);
            Ok(())
        });
    }

    fn touch(&self, node: &NodeId, edge_head: Seq, now_ms: i64) {
        let node = node.clone();
        self.fire_and_forget("node contact", move |s| {
            s.touch_blocking(&node, edge_head, now_ms)
        });
    }

    fn lag(&self, node: &NodeId, lag_ms: i64, now_ms: i64) {
        self.metrics()
            .replication_lag
            .report(node.as_str(), lag_ms, now_ms);
    }

    fn down_head(&self, node: &NodeId) -> Seq {
        HubState::down_head(self, node)
    }

    fn subscribe_down(&self, node: &NodeId) -> watch::Receiver<Seq> {
        HubState::subscribe_down(self, node)
    }

    fn read_down(&self, node: &NodeId, after: Seq, max: usize) -> Result<Vec<Frame>, String> {
        HubState::read_down(self, node, after, max).map_err(|e| e.to_string())
    }

    fn down_acked(&self, node: &NodeId, applied: Seq) {
        let node = node.clone();
        self.fire_and_forget("down ack", move |s| s.down_acked_blocking(&node, applied));
    }

    fn refusal(&self, node: &NodeId) -> Option<String> {
        self.quarantine_reason(node)
    }

    fn witness_checkpoint(
        &self,
        node: &NodeId,
        head: SignedHead,
    ) -> impl Future<Output = Result<Witnessed, String>> + Send {
        let node = node.clone();
        let me = self.clone();
        async move {
            me.blocking(move |s| s.witness_checkpoint_blocking(&node, head))
                .await
                .map_err(|e: crate::store::StoreError| e.to_string())
        }
    }

    fn report_equivocation(
        &self,
        node: &NodeId,
        evidence: ForkEvidence,
    ) -> impl Future<Output = ()> + Send {
        let node = node.clone();
        let me = self.clone();
        async move {
            let n2 = node.clone();
            let r = me
                .blocking(move |s| s.report_equivocation_blocking(&n2, evidence))
                .await;
            if let Err(e) = r {
                // Still refuse the node in memory: the evidence is in the log line above.
                let e: crate::store::StoreError = e;
                tracing::error!(%node, error = %e, "could not store equivocation evidence");
                me.flag_in_memory(&node, &format!("equivocation (evidence not stored: {e})"));
            }
        }
    }
}
