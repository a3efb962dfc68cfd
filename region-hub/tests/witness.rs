//! The hub as witness, over real QUIC + mutual TLS against a started hub (SQLite, HTTP):
//! - it cosigns a node's signed tree head that matches the records it holds, and the edge gets
//!   a cosignature that verifies under the hub's key;
//! - a validly signed head that contradicts the records is equivocation: CRITICAL alert with
//!   both heads as evidence, node quarantined, nothing further accepted;
//! - a sealed fork of the log (two different records for one sequence number, both signed with
//!   the real node key) is equivocation too, with both records stored as evidence.

mod common;
use common::{eventually, link, start_hub};
use outpost_core::ids::{LogId, NodeId, Seq};
use outpost_core::log::merkle::MerkleTree;
use outpost_core::log::{
    ChainHead, ChainWriter, Checkpoint, Frame, NodeKey, Note, PublicKey, RecordKind, origin_for,
    verify_cosignature,
};
use outpost_core::time::UnixMillis;
use outpost_sync::transport::EdgeLog;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// An in-memory edge log that also signs checkpoints (on demand) and keeps cosignatures.
struct MemLog {
    frames: Mutex<Vec<Frame>>,
    durable: watch::Sender<Seq>,
    heads: watch::Sender<Option<(Seq, String)>>,
    cosigs: Mutex<Vec<(Seq, String)>>,
    hub_key: PublicKey,
}

impl MemLog {
    fn new(hub_key: PublicKey) -> MemLog {
        MemLog {
            frames: Mutex::new(Vec::new()),
            durable: watch::Sender::new(Seq::ZERO),
            heads: watch::Sender::new(None),
            cosigs: Mutex::new(Vec::new()),
            hub_key,
        }
    }
    fn push(&self, group: Vec<Frame>) {
        let mut f = self.frames.lock().unwrap();
        f.extend(group);
        self.durable.send_replace(Seq(f.len() as u64));
    }
    /// Sign a head over the first `size` records; `root` overrides the true root.
    fn sign_head(&self, key: &NodeKey, size: usize, root: Option<[u8; 32]>) -> String {
        let f = self.frames.lock().unwrap();
        let mut t = MerkleTree::new();
        f[..size].iter().for_each(|fr| t.push(&fr.hash().0));
        let cp = Checkpoint {
            origin: origin_for("gb-1"),
            size: size as u64,
            root: root.unwrap_or_else(|| t.root()),
            timestamp: UnixMillis(1_763_700_000_000 + size as i64),
        };
        let note = cp.sign(&cp.origin, key);
        self.heads
            .send_replace(Some((Seq(size as u64), note.clone())));
        note
    }
}

impl EdgeLog for MemLog {
    fn durable_head(&self) -> Seq {
        *self.durable.borrow()
    }
    fn subscribe_durable(&self) -> watch::Receiver<Seq> {
        self.durable.subscribe()
    }
    fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, String> {
        let f = self.frames.lock().unwrap();
        Ok(f.iter()
            .skip(from.0.saturating_sub(1) as usize)
            .take(max)
            .cloned()
            .collect())
    }
    fn down_applied(&self) -> Seq {
        Seq::ZERO
    }
    async fn apply_down(&self, _frames: Vec<Frame>) -> Result<Seq, String> {
        Err("this test edge applies no downstream records".to_owned())
    }
    fn checkpoints(&self) -> Option<watch::Receiver<Option<(Seq, String)>>> {
        Some(self.heads.subscribe())
    }
    fn store_cosignature(
        &self,
        size: Seq,
        cosignature: String,
    ) -> impl Future<Output = Result<(), String>> + Send {
        let r = (|| {
            let heads = self.heads.borrow();
            let (s, note) = heads.as_ref().ok_or("no head sent")?;
            if *s != size {
                return Err(format!("cosignature for size {size}, last head is {s}"));
            }
            let body = Note::parse(note).map_err(|e| e.to_string())?.body;
            verify_cosignature(&body, &cosignature, "outpost-hub/test", &self.hub_key)
                .map_err(|e| e.to_string())?;
            self.cosigs.lock().unwrap().push((size, cosignature));
            Ok(())
        })();
        async move { r }
    }
}

fn chain(key: &NodeKey, n: usize, tag: &str) -> Vec<Frame> {
    let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
    (0..n)
        .map(|i| {
            let mut f = w.append(
                RecordKind::MarketOpened,
                UnixMillis(1_763_700_000_000 + i as i64),
                format!("{{\"{tag}\":{i}}}").into_bytes(),
            );
            if (i + 1) % 5 == 0 {
                ChainWriter::seal(&mut f, key);
            }
            f
        })
        .collect()
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosigns_matching_heads_and_quarantines_an_inconsistent_one() {
    let dir = tempfile::tempdir().unwrap();
    let node_key = NodeKey::from_seed([2; 32]);
    let hub_pub = NodeKey::from_seed([1; 32]).public();
    let (hub, stop) = start_hub(dir.path(), &node_key, "").await;
    let state = hub.state.clone();
    let node = NodeId::new("gb-1").unwrap();

    let log = Arc::new(MemLog::new(hub_pub));
    let frames = chain(&node_key, 20, "m");
    log.push(frames[..10].to_vec());
    let good = log.sign_head(&node_key, 10, None);
    let (task, status) = link(dir.path(), &hub, log.clone(), stop.subscribe());

    eventually("the cosignature to reach the edge", || {
        !log.cosigs.lock().unwrap().is_empty()
    })
    .await;
    let cp = state.latest_checkpoint(&node).unwrap().unwrap();
    assert_eq!(cp.size, 10);
    assert!(cp.note.starts_with(&good), "{}", cp.note);
    assert_eq!(cp.witness, "outpost-hub/test");
    let body = Note::parse(&cp.note).unwrap().body;
    verify_cosignature(&body, &cp.cosignature, "outpost-hub/test", &hub_pub).unwrap();
    let http = http_get(hub.http_addr, "/v1/nodes/gb-1/checkpoint").await;
    assert!(
        http.starts_with("HTTP/1.1 200") && http.contains("\"size\":10"),
        "{http}"
    );

    // A head over 15 records whose root is not the root of the records the node sent.
    log.push(frames[10..15].to_vec());
    eventually("records 11..15 to be committed", || {
        state.nodes_view().unwrap()[0].acked_seq == 15
    })
    .await;
    let bad = log.sign_head(&node_key, 15, Some([0xab; 32]));
    eventually("the quarantine", || {
        state.quarantine_reason(&node).is_some()
    })
    .await;
    let alerts = state.node_alerts_view().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(
        (a.severity.as_str(), a.kind.as_str()),
        ("critical", "inconsistent_checkpoint")
    );
    assert!(
        a.message.starts_with("CRITICAL: node gb-1 equivocated"),
        "{}",
        a.message
    );
    assert_eq!(a.evidence["checkpoint_note"], bad);
    // The earlier head as the hub witnessed it: the node's note plus the hub's cosignature.
    let prev = a.evidence["previous_checkpoint_note"].as_str().unwrap();
    assert!(
        prev.starts_with(&good) && prev.contains("\u{2014} outpost-hub/test "),
        "{prev}"
    );
    assert_eq!(a.evidence["size"], 15);
    // The evidence is checkable: the hub's own root at 15 extends the cosigned head at 10.
    let proof: Vec<[u8; 32]> = a.evidence["consistency_proof_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    let hub_root: [u8; 32] = hex::decode(a.evidence["hub_root_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let prev_root: [u8; 32] = hex::decode(cp.root_hex.as_str())
        .unwrap()
        .try_into()
        .unwrap();
    outpost_core::log::merkle::verify_consistency(10, 15, &proof, &prev_root, &hub_root).unwrap();
    assert_ne!(hub_root, [0xab; 32]);

    // Visible on /v1/nodes and /v1/node-alerts; further records are refused.
    let nodes = http_get(hub.http_addr, "/v1/nodes").await;
    assert!(
        nodes.contains("\"quarantined\":\"CRITICAL: node gb-1 equivocated"),
        "{nodes}"
    );
    let alerts_http = http_get(hub.http_addr, "/v1/node-alerts").await;
    assert!(
        alerts_http.contains("inconsistent_checkpoint"),
        "{alerts_http}"
    );
    log.push(frames[15..20].to_vec());
    eventually("the edge to see the refusal", || {
        status
            .borrow()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("quarantined"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(state.nodes_view().unwrap()[0].acked_seq, 15);
    assert_eq!(state.stats_view().unwrap().records, 15);

    // Durable: a restarted hub still refuses the node and still has the alert.
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap();
    let (hub, stop) = start_hub(dir.path(), &node_key, "").await;
    assert!(hub.state.quarantine_reason(&node).is_some());
    assert_eq!(hub.state.node_alerts_view().unwrap().len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_fork_is_equivocation_with_both_records_as_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let node_key = NodeKey::from_seed([2; 32]);
    let hub_pub = NodeKey::from_seed([1; 32]).public();
    let (hub, stop) = start_hub(dir.path(), &node_key, "").await;
    let state = hub.state.clone();
    let node = NodeId::new("gb-1").unwrap();

    // The honest history reaches the hub.
    let honest = Arc::new(MemLog::new(hub_pub));
    honest.push(chain(&node_key, 5, "honest"));
    let (stop_a, stop_a_rx) = watch::channel(false);
    let (task_a, _) = link(dir.path(), &hub, honest.clone(), stop_a_rx);
    eventually("the honest records", || {
        state.nodes_view().unwrap()[0].acked_seq == 5
    })
    .await;
    stop_a.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), task_a)
        .await
        .unwrap()
        .unwrap();

    // A rewritten history, signed with the same key, resumes from the hub's position.
    let forked = Arc::new(MemLog::new(hub_pub));
    let fork = chain(&node_key, 10, "rewritten");
    forked.push(fork.clone());
    let (task_b, status) = link(dir.path(), &hub, forked.clone(), stop.subscribe());
    eventually("the quarantine", || {
        state.quarantine_reason(&node).is_some()
    })
    .await;
    let alerts = state.node_alerts_view().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.kind, "forked_record");
    assert_eq!(a.evidence["seq"], 5);
    let honest_frames = honest.read_frames(Seq(1), 5).unwrap();
    assert_eq!(a.evidence["hub_hash_hex"], honest_frames[4].hash().to_hex());
    assert_eq!(a.evidence["offered_hash_hex"], fork[4].hash().to_hex());
    // Both versions are signed by the node: the hub's stored record 5 (sealed) and the fork's
    // continuation 6..10 (sealed at 10, its record 6 naming the other record 5).
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let hub_rec = Frame::decode_exact(
        &b64.decode(a.evidence["hub_record_frame_b64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(hub_rec, honest_frames[4]);
    let fork_frames: Vec<Frame> = a.evidence["fork_frames_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Frame::decode_exact(&b64.decode(s.as_str().unwrap()).unwrap()).unwrap())
        .collect();
    assert_eq!(fork_frames, fork[5..10].to_vec());
    let seal_ok = |f: &Frame| {
        node_key.public().verify(
            &outpost_core::log::seal_message(&f.hash()),
            f.seal.as_ref().unwrap(),
        )
    };
    assert!(seal_ok(&hub_rec) && seal_ok(&fork_frames[4]));
    assert_eq!(
        fork_frames[0].parse_body().unwrap().prev_hash,
        fork[4].hash()
    );

    // Nothing of the fork was committed, and the node stays refused.
    eventually("the edge to see the refusal", || {
        status
            .borrow()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("quarantined"))
    })
    .await;
    assert_eq!(state.nodes_view().unwrap()[0].acked_seq, 5);
    assert_eq!(state.stats_view().unwrap().records, 5);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), task_b)
        .await
        .unwrap()
        .unwrap();
}
