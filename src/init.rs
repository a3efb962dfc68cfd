//! `outpost init`: everything a local stack needs, created once and then reused: a dev
//! operator CA with hub and node certificates, Ed25519 log-sealing keys, and the hub and edge
//! configs. Existing files are never overwritten, so `up` can be run again and again.

use anyhow::Context;
use outpost_core::ids::NodeId;
use outpost_core::log::NodeKey;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone)]
pub struct InitArgs {
    /// Where keys, certificates, configs and data live.
    #[arg(long, default_value = "data")]
    pub dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub edge_http: String,
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub hub_http: String,
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub hub_quic: String,
    /// Use this S3-compatible endpoint (with Object Lock) for the audit trail instead of the
    /// local write-once directory.
    #[arg(long)]
    pub s3_endpoint: Option<String>,
    #[arg(long, default_value = "outpost-audit")]
    pub s3_bucket: String,
}

pub struct Stack {
    pub hub_config: PathBuf,
    pub edge_config: PathBuf,
}

const NODE: &str = "gb-1";

/// Where the bundled rules and fixtures are: the repository this binary was built from.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn key(path: &Path) -> anyhow::Result<NodeKey> {
    if path.exists() {
        return NodeKey::from_hex(&std::fs::read_to_string(path)?)
            .with_context(|| format!("{}: bad key", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no entropy: {e}"))?;
    let k = NodeKey::from_seed(seed);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(k.seed_hex().as_bytes())?;
    Ok(k)
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if !path.exists() {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub fn init(a: &InitArgs) -> anyhow::Result<Stack> {
    std::fs::create_dir_all(&a.dir)?;
    let dir = std::fs::canonicalize(&a.dir)?;
    let node = NodeId::new(NODE).expect("valid");
    let pki = dir.join("pki");
    std::fs::create_dir_all(&pki)?;
    outpost_sync::pki::write_dev_pki(
        &pki,
        &["hub.outpost", "localhost", "127.0.0.1"],
        std::slice::from_ref(&node),
    )?;
    let hub_key = key(&dir.join("hub.key"))?;
    let node_key = key(&dir.join(format!("{NODE}.key")))?;
    // A local stand-in for the GAMSTOP register authority (GB rules require the register).
    let register_key = key(&dir.join("register-authority.key"))?;
    let audit = match &a.s3_endpoint {
        Some(ep) => format!(
            "[audit.store]\nkind = \"s3\"\nendpoint = \"{ep}\"\nbucket = \"{}\"\naccess_key = \"test\"\nsecret_key = \"test\"\n",
            a.s3_bucket
        ),
        None => format!(
            "[audit.store]\nkind = \"local\"\ndir = \"{}\"\n",
            dir.join("audit").display()
        ),
    };
    let hub_config = dir.join("hub.toml");
    write_new(
        &hub_config,
        &format!(
            "hub_id = \"hub-1\"\ndata_dir = \"{d}/hub\"\nquic_listen = \"{q}\"\nhttp_listen = \"{h}\"\nsigning_key_file = \"{d}/hub.key\"\n\n[tls]\nca_cert = \"{p}/ca.pem\"\nhub_cert = \"{p}/hub.pem\"\nhub_key = \"{p}/hub.key\"\n\n[[nodes]]\nid = \"{NODE}\"\njurisdiction = \"GB\"\npublic_key = \"{pk}\"\n\n[audit]\nsegment_max_records = 1000\nsegment_max_age_ms = 2000\n[audit.retention_years]\nGB = 6\n{audit}",
            d = dir.display(),
            q = a.hub_quic,
            h = a.hub_http,
            p = pki.display(),
            pk = node_key.public().to_hex(),
        ),
    )?;
    let edge_config = dir.join(format!("{NODE}.toml"));
    let r = repo();
    write_new(
        &edge_config,
        &format!(
            "node_id = \"{NODE}\"\njurisdiction = \"GB\"\ndata_dir = \"{d}/{NODE}\"\nhttp_listen = \"{e}\"\nkey_file = \"{d}/{NODE}.key\"\nrules_file = \"{r}/deploy/jurisdictions/gb.toml\"\n\n[[fixtures]]\nfootball_data = \"{r}/fixtures/football-data/E0_2324.csv\"\ndiv = \"E0\"\n\n[register]\nauthority_public_key = \"{rk}\"\ninbox_dir = \"{d}/register-inbox\"\n\n[hub]\naddr = \"{q}\"\nserver_name = \"hub.outpost\"\nca_cert = \"{p}/ca.pem\"\ncert = \"{p}/node-{NODE}.pem\"\nkey = \"{p}/node-{NODE}.key\"\npublic_key = \"{hk}\"\n",
            d = dir.display(),
            e = a.edge_http,
            r = r.display(),
            q = a.hub_quic,
            p = pki.display(),
            hk = hub_key.public().to_hex(),
            rk = register_key.public().to_hex(),
        ),
    )?;
    write_local_register(&dir, &register_key)?;
    Ok(Stack {
        hub_config,
        edge_config,
    })
}

pub fn banner(a: &InitArgs, edge: &str, hub: &str) -> String {
    format!(
        r#"
Outpost is up (data in {dir}).
  edge node gb-1 (GB):  {edge}   (markets: {edge}/v1/markets)
  region hub:           {hub}   (nodes: {hub}/v1/nodes)

Try it:
  curl -s -XPOST {edge}/v1/players -H 'Idempotency-Key: reg-1' \
       -d '{{"jurisdiction":"GB","name":"Ada Lovelace","date_of_birth":"1990-12-10"}}'
  curl -s -XPOST {edge}/v1/players/gb-1-p1/kyc -H 'Idempotency-Key: kyc-1'
  curl -s -XPOST {edge}/v1/players/gb-1-p1/deposits -H 'Idempotency-Key: dep-1' \
       -d '{{"amount_minor":5000,"currency":"GBP","provider_ref":"psp-0001"}}'
  curl -s -XPOST {edge}/v1/bets -H 'Idempotency-Key: bet-1' \
       -d '{{"player_id":"gb-1-p1","stake_minor":1000,"currency":"GBP","legs":[{{"selection_id":"E0-20230811-burnley-man-city:1x2:away","price":"1.33"}}]}}'
  curl -s -XPOST {hub}/v1/results -H 'content-type: application/json' \
       -d '{{"event_id":"E0-20230811-burnley-man-city","home_goals":0,"away_goals":3,"source":"openfootball"}}'
  # final (and settled) once a second source agrees, or an operator confirms:
  curl -s -XPOST {hub}/v1/results -H 'content-type: application/json' \
       -d '{{"event_id":"E0-20230811-burnley-man-city","home_goals":0,"away_goals":3,"source":"football-data"}}'
  curl -s {edge}/v1/players/gb-1-p1/wallet
"#,
        dir = a.dir.display()
    )
}

/// Sign a fresh (empty) GAMSTOP snapshot into the node's register inbox, as the register
/// authority's distribution would, so the local node's register copy is current at start.
fn write_local_register(dir: &Path, k: &NodeKey) -> anyhow::Result<()> {
    use outpost_core::gate::register::{RegisterDocKind, RegisterPayload, sign};
    let inbox = dir.join("register-inbox");
    std::fs::create_dir_all(&inbox)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let doc = sign(
        k,
        &RegisterPayload {
            register: "GAMSTOP".into(),
            jurisdiction: outpost_core::ids::Jurisdiction::new("GB").expect("valid"),
            kind: RegisterDocKind::Snapshot,
            seq: now as u64,
            base_seq: None,
            issued_at_ms: now,
            add: vec![],
            remove: vec![],
        },
    );
    std::fs::write(
        inbox.join(format!("snapshot-{now}.json")),
        serde_json::to_vec(&doc)?,
    )?;
    Ok(())
}
