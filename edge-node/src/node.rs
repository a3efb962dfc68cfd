//! Wiring: open the log, recover state, start the writer, open fixture markets, start the
//! replication link and serve HTTP until shutdown.

use crate::api::{AppState, router};
use crate::config::{EdgeConfig, load_rules};
use crate::recover::recover;
use crate::store::LogStore;
use crate::writer::{self, WriterHandle, WriterParts};
use anyhow::Context;
use outpost_core::edge::events::Genesis;
use outpost_core::edge::{Command, CommandError, NodeGateConfig};
use outpost_core::ids::LogId;
use outpost_core::log::{ChainWriter, NodeKey, PublicKey};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Load the node's signing key, creating it (mode 0600) on first start.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<NodeKey> {
    if path.exists() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return NodeKey::from_hex(&text)
            .with_context(|| format!("{}: not an Ed25519 seed", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no entropy: {e}"))?;
    let key = NodeKey::from_seed(seed);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(key.seed_hex().as_bytes())?;
    f.sync_all()?;
    Ok(key)
}

pub struct Started {
    pub writer: WriterHandle,
    pub checkpoints: Arc<crate::checkpoints::Checkpointer>,
    pub store: Arc<LogStore>,
    pub key_public: String,
}

/// Open storage, recover, and start the writer (no network yet).
pub async fn start_core(cfg: &EdgeConfig) -> anyhow::Result<Started> {
    let rules = load_rules(&cfg.rules_file)?;
    if rules.code != cfg.jurisdiction {
        anyhow::bail!(
            "{}: rules are for {}, node serves {}",
            cfg.rules_file.display(),
            rules.code,
            cfg.jurisdiction
        );
    }
    let key = load_or_create_key(&cfg.key_file)?;
    let hub_key = match &cfg.hub {
        Some(h) => Some(PublicKey::from_hex(&h.public_key).context("hub.public_key")?),
        None => None,
    };
    let log_id = LogId::new(cfg.node_id.as_str()).expect("node ids are log ids");
    let store = Arc::new(LogStore::open(&cfg.data_dir.join("log"))?);
    let (store2, log_id2, key_seed) = (store.clone(), log_id.clone(), key.seed_hex());
    let rec = tokio::task::spawn_blocking(move || {
        recover(
            &store2,
            &log_id2,
            &NodeKey::from_hex(&key_seed).expect("valid seed"),
        )
    })
    .await??;
    tracing::info!(records = rec.records, head = %rec.head.seq, snapshot = ?rec.from_snapshot, "log verified and state rebuilt");
    if let Some(n) = &rec.state.node
        && (n.node_id != cfg.node_id
            || n.jurisdiction != cfg.jurisdiction
            || n.public_key != key.public().to_hex())
    {
        anyhow::bail!(
            "log belongs to node {} ({}) with another key or identity; refusing to start",
            n.node_id,
            n.jurisdiction
        );
    }
    let public = key.public().to_hex();
    let empty = rec.state.node.is_none();
    let (store3, log_id3, seed3, durable) =
        (store.clone(), log_id.clone(), key.seed_hex(), rec.head.seq);
    let checkpoints = Arc::new(
        tokio::task::spawn_blocking(move || {
            crate::checkpoints::Checkpointer::open(
                store3,
                &log_id3,
                NodeKey::from_hex(&seed3).expect("valid seed"),
                hub_key,
                durable,
            )
        })
        .await??,
    );
    let writer = writer::spawn(WriterParts {
        state: rec.state,
        vault: rec.vault,
        chain: ChainWriter::new(log_id, rec.head),
        key,
        rules: Arc::new(rules.clone()),
        gate: NodeGateConfig {
            risk: cfg.risk,
            register_authority: match &cfg.register {
                Some(r) => Some(
                    PublicKey::from_hex(&r.authority_public_key)
                        .context("register.authority_public_key")?,
                ),
                None => None,
            },
        },
        hub_key,
        store: store.clone(),
        records_since_snapshot: 0,
        feed: Some(checkpoints.feed()),
        balance_snapshots: crate::balance_snapshot::SnapshotClock::new(
            cfg.balance_snapshot,
            writer::now(),
        ),
    });
    spawn_snapshot_ticker(writer.clone());
    if empty {
        let g = Genesis {
            node_id: cfg.node_id.clone(),
            jurisdiction: cfg.jurisdiction.clone(),
            currency: rules.currency,
            public_key: public.clone(),
            software: format!("outpost-edge {}", env!("CARGO_PKG_VERSION")),
        };
        writer
            .command(Command::Genesis(g), None)
            .await?
            .context("writing genesis")?;
    }
    // Record the rules in force if they differ from the last activation in the log.
    crate::compliance_watch::reload_rules(cfg, &writer)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Started {
        writer,
        checkpoints,
        store,
        key_public: public,
    })
}

/// Wake the writer every 30 s so the time rule of the balance snapshots fires on a quiet node
/// (an empty read: it logs nothing itself). Ends when the writer stops.
fn spawn_snapshot_ticker(writer: WriterHandle) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            if writer.read(|_, _| ()).await.is_err() {
                return;
            }
        }
    });
}

/// Open every fixture market not already open. Idempotent across restarts.
pub async fn load_fixtures(cfg: &EdgeConfig, writer: &WriterHandle) -> anyhow::Result<usize> {
    let mut opened = 0;
    for src in &cfg.fixtures {
        let text = std::fs::read_to_string(&src.football_data)
            .with_context(|| format!("reading {}", src.football_data.display()))?;
        let fixtures = outpost_core::fixtures::football_data::parse_matches(&text, &src.div)
            .with_context(|| format!("parsing {}", src.football_data.display()))?;
        for f in fixtures {
            for m in f.markets {
                match writer
                    .command(
                        Command::OpenMarket {
                            event: f.event.clone(),
                            market: m,
                        },
                        None,
                    )
                    .await?
                {
                    Ok(_) => opened += 1,
                    Err(CommandError::MarketExists(_)) => {}
                    Err(e) => anyhow::bail!("opening fixture market: {e}"),
                }
            }
        }
    }
    Ok(opened)
}

pub async fn run(cfg: EdgeConfig, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let started = start_core(&cfg).await?;
    let opened = load_fixtures(&cfg, &started.writer).await?;
    if opened > 0 {
        tracing::info!(markets = opened, "fixture markets opened");
    }
    tokio::spawn(crate::checkpoints::run(
        started.checkpoints.clone(),
        started.writer.readable(),
        shutdown.clone(),
    ));
    let link = match &cfg.hub {
        Some(h) => Some(crate::link::start(
            &cfg.node_id,
            &cfg.jurisdiction,
            h,
            started.writer.clone(),
            started.store.clone(),
            started.checkpoints.clone(),
            shutdown.clone(),
        )?),
        None => None,
    };
    let (status_tx, status_rx) = watch::channel(serde_json::Value::Null);
    crate::compliance_watch::start(
        cfg.clone(),
        started.writer.clone(),
        status_tx,
        shutdown.clone(),
    )
    .await;
    let odds = crate::odds::start(&cfg, &started.writer, &shutdown).await?;
    let state = AppState {
        compliance: status_rx,
        writer: started.writer.clone(),
        store: started.store.clone(),
        node_id: cfg.node_id.clone(),
        public_key: started.key_public.clone(),
        link,
        checkpoints: started.checkpoints.clone(),
        shop_terminals: Arc::new(cfg.shop_terminals.clone()),
        access: crate::api::auth::ApiAccess::new(&cfg.api),
        odds: Some(odds),
        cross_operator: match cfg.cross_operator.clone() {
            Some(c) => Some(Arc::new(crate::cross_operator::CrossOperatorClient::new(
                c,
            )?)),
            None => None,
        },
    };
    if cfg.api.clients.is_empty() {
        tracing::warn!(
            "no [[api.clients]] configured: the API on {} (loopback only) takes calls without a token",
            cfg.http_listen
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("binding {}", cfg.http_listen))?;
    tracing::info!(
        "edge node {} ({}) serving http://{}",
        cfg.node_id,
        cfg.jurisdiction,
        listener.local_addr()?
    );
    // Stream clients go to the odds fan-out thread; it also sets TCP_NODELAY on every connection.
    let listener =
        crate::api::stream_listener::StreamListener::start(listener, state.odds.clone())?;
    let fanout_odds = state.odds.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
            // Long-lived odds streams would otherwise hold the node open past its shutdown.
            if let Some(o) = fanout_odds {
                o.fanout.close();
            }
        })
        .await?;
    Ok(())
}
