//! End-to-end test of the replication link over real QUIC + mutual TLS on loopback, in one
//! tokio process: a dev PKI in a temp dir, an in-memory edge log and an in-memory hub store.
//! Checks replication and acks, downstream delivery, refusal of foreign, mismatched,
//! unregistered and certificate-less clients, and exactly-once resumption across hub restarts.

use outpost_core::ids::{Jurisdiction, LogId, NodeId, Seq};
use outpost_core::log::{
    ChainHead, ChainWriter, Frame, NodeKey, PublicKey, RecordBody, RecordKind, verify_frames,
};
use outpost_core::time::UnixMillis;
use outpost_sync::pki::{self, DevCa};
use outpost_sync::tls;
use outpost_sync::{
    EdgeLinkConfig, EdgeLog, HubServer, HubServerConfig, HubStore, LinkStatus, NodeRegistration,
    run_edge_link,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

fn node(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}
fn gb() -> Jurisdiction {
    Jurisdiction::new("GB").unwrap()
}
fn head_of(frames: &[Frame]) -> ChainHead {
    match frames.last() {
        None => ChainHead::EMPTY,
        Some(f) => {
            let b = f.parse_body().unwrap();
            ChainHead {
                seq: b.seq,
                hash: f.hash(),
                timestamp: b.timestamp,
            }
        }
    }
}

// ---- in-memory edge log ---------------------------------------------------------------------

struct EdgeInner {
    writer: ChainWriter,
    frames: Vec<Frame>,
    down: Vec<Frame>,
}

struct MemEdgeLog {
    key: NodeKey,
    hub_key: PublicKey,
    down_log: LogId,
    inner: Mutex<EdgeInner>,
    durable: watch::Sender<Seq>,
}

impl MemEdgeLog {
    fn new(node: &NodeId, key: NodeKey, hub_key: PublicKey) -> Arc<MemEdgeLog> {
        Arc::new(MemEdgeLog {
            key,
            hub_key,
            down_log: LogId::new(format!("hub/{node}")).unwrap(),
            inner: Mutex::new(EdgeInner {
                writer: ChainWriter::new(LogId::new(node.as_str()).unwrap(), ChainHead::EMPTY),
                frames: Vec::new(),
                down: Vec::new(),
            }),
            durable: watch::Sender::new(Seq::ZERO),
        })
    }

    /// Append `n` records in sealed commit groups of up to 7, then publish the durable head.
    fn append(&self, n: usize) {
        let mut g = self.inner.lock().unwrap();
        for i in 0..n {
            let seq = g.frames.len();
            let mut f = g.writer.append(
                RecordKind::BetPlaced,
                UnixMillis(1_700_000_000_000 + seq as i64),
                format!("{{\"bet\":{seq}}}").into_bytes(),
            );
            if i + 1 == n || seq % 7 == 6 {
                ChainWriter::seal(&mut f, &self.key);
            }
            g.frames.push(f);
        }
        let head = Seq(g.frames.len() as u64);
        drop(g);
        self.durable.send_replace(head);
    }
    fn frames(&self) -> Vec<Frame> {
        self.inner.lock().unwrap().frames.clone()
    }
}

impl EdgeLog for MemEdgeLog {
    fn durable_head(&self) -> Seq {
        Seq(self.inner.lock().unwrap().frames.len() as u64)
    }
    fn subscribe_durable(&self) -> watch::Receiver<Seq> {
        self.durable.subscribe()
    }
    fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, String> {
        let g = self.inner.lock().unwrap();
        let start = (from.0 as usize).saturating_sub(1);
        Ok(g.frames.iter().skip(start).take(max).cloned().collect())
    }
    fn down_applied(&self) -> Seq {
        Seq(self.inner.lock().unwrap().down.len() as u64)
    }
    async fn apply_down(&self, frames: Vec<Frame>) -> Result<Seq, String> {
        let mut g = self.inner.lock().unwrap();
        // The edge trusts nothing the hub sends without checking the hub's seals.
        verify_frames(
            &self.down_log,
            &self.hub_key,
            head_of(&g.down),
            frames.iter().cloned(),
        )
        .map_err(|e| e.to_string())?;
        g.down.extend(frames);
        Ok(Seq(g.down.len() as u64))
    }
}

// ---- in-memory hub store --------------------------------------------------------------------

#[derive(Default)]
struct HubInner {
    upstream: HashMap<NodeId, Vec<(Frame, RecordBody)>>,
    down: HashMap<NodeId, Vec<Frame>>,
    down_acked: HashMap<NodeId, Seq>,
    flags: Vec<(NodeId, String)>,
    touches: u64,
    commit_errors: Vec<String>,
}

struct MemHubStore {
    regs: HashMap<NodeId, NodeRegistration>,
    hub_key: NodeKey,
    inner: Mutex<HubInner>,
    down_tx: Mutex<HashMap<NodeId, watch::Sender<Seq>>>,
}

impl MemHubStore {
    fn new(regs: HashMap<NodeId, NodeRegistration>, hub_key: NodeKey) -> Arc<MemHubStore> {
        Arc::new(MemHubStore {
            regs,
            hub_key,
            inner: Mutex::default(),
            down_tx: Mutex::default(),
        })
    }
    fn tx(&self, node: &NodeId) -> watch::Sender<Seq> {
        self.down_tx
            .lock()
            .unwrap()
            .entry(node.clone())
            .or_insert_with(|| watch::Sender::new(Seq::ZERO))
            .clone()
    }
    /// Issue `n` downstream records (one seal group) to `node`.
    fn issue_down(&self, node: &NodeId, n: usize) {
        let mut g = self.inner.lock().unwrap();
        let chain = g.down.entry(node.clone()).or_default();
        let mut w = ChainWriter::new(LogId::new(format!("hub/{node}")).unwrap(), head_of(chain));
        for i in 0..n {
            let mut f = w.append(
                RecordKind::HubSettlement,
                UnixMillis(1_700_000_000_000),
                b"{\"settled\":true}".to_vec(),
            );
            if i + 1 == n {
                ChainWriter::seal(&mut f, &self.hub_key);
            }
            chain.push(f);
        }
        let head = Seq(chain.len() as u64);
        drop(g);
        self.tx(node).send_replace(head);
    }
    fn upstream_seqs(&self, node: &NodeId) -> Vec<u64> {
        self.inner
            .lock()
            .unwrap()
            .upstream
            .get(node)
            .map(|v| v.iter().map(|r| r.1.seq.0).collect())
            .unwrap_or_default()
    }
}

impl HubStore for MemHubStore {
    fn registration(&self, node: &NodeId) -> Option<NodeRegistration> {
        self.regs.get(node).cloned()
    }
    fn upstream_head(&self, node: &NodeId) -> Result<ChainHead, String> {
        let g = self.inner.lock().unwrap();
        let frames: Vec<Frame> = g
            .upstream
            .get(node)
            .map(|v| v.iter().map(|r| r.0.clone()).collect())
            .unwrap_or_default();
        Ok(head_of(&frames))
    }
    async fn commit_upstream(
        &self,
        node: &NodeId,
        records: Vec<(Frame, RecordBody)>,
    ) -> Result<Seq, String> {
        let mut g = self.inner.lock().unwrap();
        let log = g.upstream.entry(node.clone()).or_default();
        let head = head_of(&log.iter().map(|r| r.0.clone()).collect::<Vec<_>>());
        // A real store would enforce this with a unique key; here it proves exactly-once.
        let first = &records[0].1;
        if first.seq != head.seq.next() || first.prev_hash != head.hash {
            let e = format!(
                "commit of seq {} does not continue head {}",
                first.seq, head.seq
            );
            g.commit_errors.push(e.clone());
            return Err(e);
        }
        log.extend(records);
        Ok(Seq(log.len() as u64))
    }
    fn refusal(&self, _node: &NodeId) -> Option<String> {
        // This store records flags for the assertions but never quarantines.
        None
    }
    async fn witness_checkpoint(
        &self,
        node: &NodeId,
        head: outpost_sync::SignedHead,
    ) -> Result<outpost_sync::Witnessed, String> {
        // Same rule as the real hub: recompute the root over the committed records.
        let g = self.inner.lock().unwrap();
        let mut tree = outpost_core::log::merkle::MerkleTree::new();
        for (f, _) in g.upstream.get(node).into_iter().flatten() {
            tree.push(&f.hash().0);
        }
        let root = tree.root_at(head.size.0).map_err(|e| e.to_string())?;
        if root != head.root {
            return Ok(outpost_sync::Witnessed::Equivocation(format!(
                "head of size {} does not match the committed records",
                head.size
            )));
        }
        let body = outpost_core::log::Note::parse(&head.note)
            .map_err(|e| e.to_string())?
            .body;
        let key = outpost_core::log::NodeKey::from_seed([9; 32]);
        Ok(outpost_sync::Witnessed::Cosigned(
            outpost_core::log::cosign(&body, "outpost-hub/test", &key, 0),
        ))
    }
    async fn report_equivocation(&self, node: &NodeId, evidence: outpost_sync::ForkEvidence) {
        self.flag_node(node, &format!("equivocation at seq {}", evidence.seq));
    }
    fn flag_node(&self, node: &NodeId, reason: &str) {
        self.inner
            .lock()
            .unwrap()
            .flags
            .push((node.clone(), reason.to_owned()));
    }
    fn touch(&self, _node: &NodeId, _edge_head: Seq, _now_ms: i64) {
        self.inner.lock().unwrap().touches += 1;
    }
    fn down_head(&self, node: &NodeId) -> Seq {
        Seq(self
            .inner
            .lock()
            .unwrap()
            .down
            .get(node)
            .map_or(0, |v| v.len() as u64))
    }
    fn subscribe_down(&self, node: &NodeId) -> watch::Receiver<Seq> {
        self.tx(node).subscribe()
    }
    fn read_down(&self, node: &NodeId, after: Seq, max: usize) -> Result<Vec<Frame>, String> {
        let g = self.inner.lock().unwrap();
        Ok(g.down
            .get(node)
            .map(|v| v.iter().skip(after.0 as usize).take(max).cloned().collect())
            .unwrap_or_default())
    }
    fn down_acked(&self, node: &NodeId, applied: Seq) {
        self.inner
            .lock()
            .unwrap()
            .down_acked
            .insert(node.clone(), applied);
    }
}

// ---- harness --------------------------------------------------------------------------------

struct Hub {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Start a hub on `addr` (port 0 for any). Rebinding a just-released port is retried briefly.
async fn start_hub(pki_dir: &Path, addr: SocketAddr, store: Arc<MemHubStore>) -> Hub {
    let mut tries = 0;
    let server = loop {
        let cfg = HubServerConfig::new(addr, tls::hub_server_config(pki_dir).unwrap());
        match HubServer::bind(cfg) {
            Ok(s) => break s,
            Err(e) if tries < 50 => {
                tries += 1;
                eprintln!("bind retry: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let addr = server.local_addr().unwrap();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(server.run(store, rx));
    Hub { addr, stop, task }
}

impl Hub {
    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("hub stops")
            .unwrap();
    }
}

struct Edge {
    status: watch::Receiver<LinkStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

fn start_edge(
    node_id: NodeId,
    hub: SocketAddr,
    client: quinn::ClientConfig,
    log: Arc<MemEdgeLog>,
) -> Edge {
    let (mut cfg, status) = EdgeLinkConfig::new(node_id, gb(), hub, client);
    cfg.backoff_max = Duration::from_millis(400);
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(run_edge_link(cfg, log, rx));
    Edge { status, stop, task }
}

impl Edge {
    async fn stop(self) {
        self.stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("edge stops")
            .unwrap();
    }
    async fn wait(&mut self, what: &str, cond: impl Fn(&LinkStatus) -> bool) -> LinkStatus {
        let r = tokio::time::timeout(Duration::from_secs(20), self.status.wait_for(|s| cond(s)))
            .await
            .map(|r| r.map(|s| s.clone()));
        match r {
            Ok(Ok(s)) => s,
            _ => panic!(
                "timed out waiting for {what}; status {:?}",
                *self.status.borrow()
            ),
        }
    }
}

struct World {
    _dir: tempfile::TempDir,
    pki: std::path::PathBuf,
    store: Arc<MemHubStore>,
    hub_key_public: PublicKey,
}

fn world() -> World {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    pki::write_dev_pki(
        &pki,
        &pki::DEFAULT_HUB_NAMES,
        &[node("gb-1"), node("gb-2"), node("gb-3")],
    )
    .unwrap();
    let mut regs = HashMap::new();
    regs.insert(
        node("gb-1"),
        NodeRegistration {
            jurisdiction: gb(),
            public_key: NodeKey::from_seed([1; 32]).public(),
        },
    );
    regs.insert(
        node("gb-2"),
        NodeRegistration {
            jurisdiction: gb(),
            public_key: NodeKey::from_seed([2; 32]).public(),
        },
    );
    let hub_key = NodeKey::from_seed([99; 32]);
    let hub_key_public = hub_key.public();
    World {
        _dir: dir,
        pki,
        store: MemHubStore::new(regs, hub_key),
        hub_key_public,
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

// ---- tests ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_applies_downstream_and_resumes_after_hub_restart() {
    let w = world();
    let gb1 = node("gb-1");
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    let log = MemEdgeLog::new(&gb1, NodeKey::from_seed([1; 32]), w.hub_key_public);
    log.append(50);
    let mut edge = start_edge(
        gb1.clone(),
        hub.addr,
        tls::edge_client_config(&w.pki, &gb1).unwrap(),
        log.clone(),
    );

    let s = edge.wait("50 records acked", |s| s.acked == Seq(50)).await;
    assert!(s.connected);
    assert_eq!(s.sessions, 1);
    assert_eq!(w.store.upstream_seqs(&gb1), (1..=50).collect::<Vec<_>>());

    // Live records while connected.
    log.append(25);
    edge.wait("75 records acked", |s| s.acked == Seq(75)).await;

    // Downstream: the hub issues a settlement group; the edge verifies and applies it.
    w.store.issue_down(&gb1, 3);
    edge.wait("downstream applied", |s| s.down_applied == Seq(3))
        .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while w.store.inner.lock().unwrap().down_acked.get(&gb1) != Some(&Seq(3)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("hub sees DownAck");

    // Hub restart: records written meanwhile are sent after reconnecting, none twice.
    let addr = hub.addr;
    hub.stop().await;
    edge.wait("link down", |s| !s.connected).await;
    log.append(30);
    w.store.issue_down(&gb1, 2);
    let hub = start_hub(&w.pki, addr, w.store.clone()).await;
    let s = edge
        .wait("105 records acked after restart", |s| {
            s.acked == Seq(105) && s.down_applied == Seq(5)
        })
        .await;
    assert!(s.sessions >= 2, "{s:?}");
    log.append(10);
    edge.wait("115 records acked", |s| s.acked == Seq(115))
        .await;

    let stored: Vec<Frame> = w.store.inner.lock().unwrap().upstream[&gb1]
        .iter()
        .map(|r| r.0.clone())
        .collect();
    assert_eq!(
        stored,
        log.frames(),
        "hub holds exactly the edge's log, in order, once"
    );
    {
        let g = w.store.inner.lock().unwrap();
        assert!(g.commit_errors.is_empty(), "{:?}", g.commit_errors);
        assert!(g.flags.is_empty(), "{:?}", g.flags);
        assert!(g.touches > 0);
    }

    edge.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_cert_from_another_ca_is_refused() {
    let w = world();
    let gb1 = node("gb-1");
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    // Trusts the real CA for the hub, but presents a gb-1 certificate from a foreign CA.
    let foreign = DevCa::generate().unwrap();
    let issued = foreign.issue_node(&gb1).unwrap();
    let fdir = w.pki.parent().unwrap().join("foreign");
    pki::write_pair(&fdir, "gb-1.pem", "gb-1.key", &issued).unwrap();
    let client = tls::client_config_from_files(
        &w.pki.join("ca.pem"),
        &fdir.join("gb-1.pem"),
        &fdir.join("gb-1.key"),
    )
    .unwrap();
    let log = MemEdgeLog::new(&gb1, NodeKey::from_seed([1; 32]), w.hub_key_public);
    log.append(5);
    let mut edge = start_edge(gb1.clone(), hub.addr, client, log);
    let s = edge.wait("an error", |s| s.last_error.is_some()).await;
    let err = s.last_error.clone().unwrap();
    eprintln!("foreign CA: {err}");
    assert!(!s.connected && s.sessions == 0, "{s:?}");
    assert!(
        err.contains("before Welcome") || err.contains("handshake"),
        "{err}"
    );
    assert!(w.store.upstream_seqs(&gb1).is_empty());
    edge.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_cert_for_gb2_claiming_gb1_is_refused() {
    let w = world();
    let gb1 = node("gb-1");
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    let client = tls::edge_client_config(&w.pki, &node("gb-2")).unwrap();
    let log = MemEdgeLog::new(&gb1, NodeKey::from_seed([1; 32]), w.hub_key_public);
    log.append(5);
    let mut edge = start_edge(gb1.clone(), hub.addr, client, log);
    let s = edge.wait("an error", |s| s.last_error.is_some()).await;
    let err = s.last_error.clone().unwrap();
    eprintln!("gb-2 as gb-1: {err}");
    assert!(err.contains("not valid for node gb-1"), "{err}");
    assert!(err.contains("error 3 (unauthorized)"), "{err}");
    assert!(!s.connected && s.sessions == 0);
    assert!(w.store.upstream_seqs(&gb1).is_empty());
    edge.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_node_is_refused() {
    let w = world();
    let gb3 = node("gb-3");
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    let client = tls::edge_client_config(&w.pki, &gb3).unwrap();
    let log = MemEdgeLog::new(&gb3, NodeKey::from_seed([3; 32]), w.hub_key_public);
    let mut edge = start_edge(gb3, hub.addr, client, log);
    let s = edge.wait("an error", |s| s.last_error.is_some()).await;
    let err = s.last_error.clone().unwrap();
    assert!(err.contains("node gb-3 is not registered"), "{err}");
    edge.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_fails_the_handshake() {
    let w = world();
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    let mut roots = rustls::RootCertStore::empty();
    for c in tls::load_certs(&w.pki.join("ca.pem")).unwrap() {
        roots.add(c).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls_cfg.alpn_protocols = vec![tls::ALPN.to_vec()];
    let client = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls_cfg).unwrap(),
    ));
    let ep = quinn::Endpoint::client(any_port()).unwrap();
    // connect() may well succeed: the refusal shows on the first read.
    let result: Result<(), String> = async {
        let conn = ep
            .connect_with(client, hub.addr, pki::HUB_SERVER_NAME)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(b"\0\0\0\x01\x07")
            .await
            .map_err(|e| match e {
                quinn::WriteError::ConnectionLost(c) => c.to_string(),
                e => e.to_string(),
            })?;
        let mut buf = [0u8; 16];
        match recv.read(&mut buf).await {
            Ok(_) => Ok(()),
            Err(quinn::ReadError::ConnectionLost(c)) => Err(c.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }
    .await;
    let err = result.expect_err("a client without certificate must not get a response");
    eprintln!("certless: {err}");
    assert!(
        err.contains("certificate") || err.contains("handshake"),
        "{err}"
    );
    assert!(w.store.inner.lock().unwrap().touches == 0);
    ep.close(0u32.into(), b"");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_backlog_flows_through_the_window() {
    let w = world();
    let gb2 = node("gb-2");
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    let log = MemEdgeLog::new(&gb2, NodeKey::from_seed([2; 32]), w.hub_key_public);
    // Several windows' worth (default window 8192 records) accumulated while offline.
    log.append(30_000);
    let started = std::time::Instant::now();
    let mut edge = start_edge(
        gb2.clone(),
        hub.addr,
        tls::edge_client_config(&w.pki, &gb2).unwrap(),
        log.clone(),
    );
    edge.wait("backlog acked", |s| s.acked == Seq(30_000)).await;
    eprintln!("30000 records replicated in {:?}", started.elapsed());
    assert_eq!(w.store.upstream_seqs(&gb2).len(), 30_000);
    assert!(w.store.inner.lock().unwrap().commit_errors.is_empty());
    edge.stop().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_connections_for_one_node_never_commit_twice() {
    // Two links for the same node (as after an edge restart while the hub still holds the old
    // connection): each new connection supersedes the running session, and the per-node
    // serialisation keeps every record committed exactly once.
    let w = world();
    let gb1 = node("gb-1");
    let hub = start_hub(&w.pki, any_port(), w.store.clone()).await;
    let log = MemEdgeLog::new(&gb1, NodeKey::from_seed([1; 32]), w.hub_key_public);
    let client = || tls::edge_client_config(&w.pki, &gb1).unwrap();
    let mut a = start_edge(gb1.clone(), hub.addr, client(), log.clone());
    let mut b = start_edge(gb1.clone(), hub.addr, client(), log.clone());
    for _ in 0..20 {
        log.append(50);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(Duration::from_secs(30), async {
        while w.store.upstream_seqs(&gb1).len() < 1000 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("all records committed");
    assert_eq!(w.store.upstream_seqs(&gb1), (1..=1000).collect::<Vec<_>>());
    assert!(w.store.inner.lock().unwrap().commit_errors.is_empty());
    let superseded = [&mut a, &mut b]
        .iter()
        .filter_map(|e| e.status.borrow().last_error.clone())
        .filter(|e| e.contains("superseded") || e.contains("newer connection"))
        .count();
    assert!(superseded > 0, "one link was superseded by the other");
    a.stop().await;
    b.stop().await;
    hub.stop().await;
}
