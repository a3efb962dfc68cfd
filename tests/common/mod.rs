//! Shared harness for the end-to-end tests: locate (or build) the real binaries, write
//! configs into a temp dir, start processes, wait for health, and make HTTP calls.
#![allow(dead_code)]

pub mod udp_proxy;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of a workspace binary next to the `outpost` test binary's target dir; built on demand
/// (the test script builds all binaries first, so this is normally a no-op).
pub fn bin(name: &str) -> PathBuf {
    let outpost = PathBuf::from(env!("CARGO_BIN_EXE_outpost"));
    let path = outpost.parent().expect("target dir").join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--bins", "-p", "edge-node", "-p", "region-hub"])
            .current_dir(repo_root())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building binaries failed");
    }
    path
}

pub fn outpost_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_outpost"))
}

pub fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

pub fn free_udp_addr() -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().to_string()
}

/// The LocalStack endpoint `scripts/test.sh` starts on loopback for the tests that need S3.
pub fn s3_endpoint() -> String {
    std::env::var("OUTPOST_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("OUTPOST_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts LocalStack on loopback and sets it")
    })
}

/// Poll `f` every 100 ms until it holds; fail the test naming `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where `init_stack` put the local stack: edge HTTP, hub HTTP and hub QUIC addresses.
pub struct Stack {
    pub edge_http: String,
    pub hub_http: String,
    pub hub_quic: String,
}

/// Write a local stack (hub + node gb-1, dev PKI, keys) into `dir` with `outpost init`, on
/// free loopback ports. `hub_quic` overrides the address the edge dials (a fault proxy);
/// `s3` = (endpoint, bucket) sends the audit trail to a real S3 server.
pub fn init_stack(dir: &Path, hub_quic: Option<&str>, s3: Option<(&str, &str)>) -> Stack {
    let stack = Stack {
        edge_http: free_addr(),
        hub_http: free_addr(),
        hub_quic: free_udp_addr(),
    };
    let mut args = vec![
        "init".to_string(),
        "--dir".into(),
        dir.to_str().expect("utf-8 temp dir").into(),
        "--edge-http".into(),
        stack.edge_http.clone(),
        "--hub-http".into(),
        stack.hub_http.clone(),
        "--hub-quic".into(),
        hub_quic.unwrap_or(&stack.hub_quic).to_string(),
    ];
    if let Some((endpoint, bucket)) = s3 {
        args.extend([
            "--s3-endpoint".into(),
            endpoint.into(),
            "--s3-bucket".into(),
            bucket.into(),
        ]);
    }
    let st = Command::new(outpost_bin()).args(&args).status().unwrap();
    assert!(st.success(), "outpost init failed");
    stack
}

impl Stack {
    /// Base URLs of the edge's and the hub's HTTP APIs.
    pub fn urls(&self) -> (String, String) {
        (
            format!("http://{}", self.edge_http),
            format!("http://{}", self.hub_http),
        )
    }

    /// Start the hub and the edge node that `init_stack` wrote into `dir`, as child processes
    /// logging into `dir`, and wait until both answer `/health`.
    pub async fn start(&self, dir: &Path) -> (Proc, Proc) {
        let (e, h) = self.urls();
        let mut hub = start_node(dir, "hub", "region-hub", "hub.toml");
        let mut edge = start_edge(dir);
        wait_healthy(&h, &mut hub, Duration::from_secs(60)).await;
        wait_healthy(&e, &mut edge, Duration::from_secs(60)).await;
        (hub, edge)
    }
}

/// (Re)start the edge node `gb-1` that `init_stack` wrote into `dir` (not waited for).
pub fn start_edge(dir: &Path) -> Proc {
    start_node(dir, "edge", "edge-node", "gb-1.toml")
}

fn start_node(dir: &Path, name: &str, program: &str, config: &str) -> Proc {
    let config = dir.join(config);
    let args = ["run", "--config", config.to_str().expect("utf-8 temp dir")];
    Proc::start(name, &bin(program), &args, dir)
}

/// Append settings to a config file `init_stack` wrote.
pub fn append_config(path: &Path, toml: &str) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(toml);
    std::fs::write(path, text).unwrap();
}

pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn start(name: &str, program: &Path, args: &[&str], log_dir: &Path) -> Proc {
        let log = log_dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Proc {
            child,
            name: name.into(),
            log,
        }
    }
    /// SIGKILL: no shutdown hooks run.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
    }
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Start `edge-node run --config cfg` (its log in `dir`) and wait until `base` is healthy.
pub async fn run_edge(cfg: &Path, dir: &Path, base: &str) -> Proc {
    let args = ["run", "--config", cfg.to_str().expect("utf-8 temp dir")];
    let mut node = Proc::start("edge", &bin("edge-node"), &args, dir);
    wait_healthy(base, &mut node, Duration::from_secs(60)).await;
    node
}

pub async fn wait_healthy(base: &str, proc: &mut Proc, timeout: Duration) {
    let c = client();
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(r) = c.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(st)) = proc.child.try_wait() {
            panic!(
                "{} exited with {st} before becoming healthy:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy after {timeout:?}:\n{}",
            proc.name,
            proc.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Write an edge-node config (no hub link unless `hub` is given) into `dir`.
pub fn write_edge_config(dir: &Path, node: &str, http: &str, hub: Option<&str>) -> PathBuf {
    let root = repo_root();
    let mut cfg = format!(
        "node_id = \"{node}\"\njurisdiction = \"GB\"\ndata_dir = \"{data}\"\nhttp_listen = \"{http}\"\nkey_file = \"{key}\"\nrules_file = \"{rules}\"\n\n[[fixtures]]\nfootball_data = \"{fx}\"\ndiv = \"E0\"\n",
        data = dir.join(node).display(),
        key = dir.join(format!("{node}.key")).display(),
        rules = root.join("deploy/jurisdictions/gb.toml").display(),
        fx = root.join("fixtures/football-data/E0_2324.csv").display(),
    );
    // GB requires the national register (GAMSTOP): a test register authority signs a fresh
    // empty snapshot into the node's inbox, imported before the node serves bets.
    let inbox = dir.join(format!("{node}-register"));
    std::fs::create_dir_all(&inbox).unwrap();
    write_register_doc(
        &inbox,
        "0-snapshot.json",
        &register_snapshot(1, now_ms(), vec![]),
    );
    cfg.push_str(&format!(
        "\n[register]\nauthority_public_key = \"{}\"\ninbox_dir = \"{}\"\n",
        register_key().public().to_hex(),
        inbox.display()
    ));
    if let Some(h) = hub {
        cfg.push_str(h);
    }
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(&path, cfg).unwrap();
    path
}

pub async fn post(
    c: &reqwest::Client,
    url: &str,
    idem: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = c
        .post(url)
        .header("Idempotency-Key", idem)
        .json(&body)
        .send()
        .await
        .expect("request");
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Register a GB adult called `name`, verify KYC and, when `deposit_minor` > 0, deposit that
/// many pence: the player id. Every step must succeed. Idempotency keys are `{prefix}reg`,
/// `{prefix}kyc`, `{prefix}dep`; the deposit's provider reference is `psp-{prefix}1`.
pub async fn ready_player(
    c: &reqwest::Client,
    base: &str,
    prefix: &str,
    name: &str,
    deposit_minor: i64,
) -> String {
    let (st, p) = post(
        c,
        &format!("{base}/v1/players"),
        &format!("{prefix}reg"),
        serde_json::json!({"jurisdiction":"GB","name":name,"date_of_birth":"1980-01-01"}),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["player_id"].as_str().unwrap().to_string();
    let (st, v) = post(
        c,
        &format!("{base}/v1/players/{pid}/kyc"),
        &format!("{prefix}kyc"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    if deposit_minor > 0 {
        let (st, v) = post(
            c,
            &format!("{base}/v1/players/{pid}/deposits"),
            &format!("{prefix}dep"),
            serde_json::json!({"amount_minor": deposit_minor, "currency": "GBP", "provider_ref": format!("psp-{prefix}1")}),
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    pid
}

pub async fn get(c: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let r = c.get(url).send().await.expect("request");
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// The test stand-in for the GAMSTOP register authority's signing key.
pub fn register_key() -> outpost_core::log::NodeKey {
    outpost_core::log::NodeKey::from_seed([0x42; 32])
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A signed GB (GAMSTOP) register snapshot listing `entries` (identity hashes).
pub fn register_snapshot(
    seq: u64,
    issued_at_ms: i64,
    entries: Vec<String>,
) -> outpost_core::gate::register::SignedRegisterDoc {
    use outpost_core::gate::register::*;
    sign(
        &register_key(),
        &RegisterPayload {
            register: "GAMSTOP".into(),
            jurisdiction: outpost_core::ids::Jurisdiction::new("GB").unwrap(),
            kind: RegisterDocKind::Snapshot,
            seq,
            base_seq: None,
            issued_at_ms,
            add: entries,
            remove: vec![],
        },
    )
}

pub fn write_register_doc(
    dir: &Path,
    name: &str,
    doc: &outpost_core::gate::register::SignedRegisterDoc,
) {
    std::fs::write(dir.join(name), serde_json::to_vec(doc).unwrap()).unwrap();
}
