//! `outpost`: the launcher. A thin CLI over the crates: `up` starts a local region hub and edge
//! node (optionally driving a demo session), `init` writes a local stack's keys, certificates
//! and configs, `verify` checks exported logs, `export-log` fetches one from a node.

mod api_token;
mod bench_place;
mod bench_replicate;
mod demo;
mod feed_replay;
mod init;
mod proof;
mod reconcile;
mod verify;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "outpost",
    version,
    about = "Outpost: an in-jurisdiction sportsbook"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start a region hub and a GB edge node on loopback (creating keys and configs on first run).
    Up {
        #[command(flatten)]
        init: init::InitArgs,
        /// Drive a realistic session (players, deposits, bets on real matches, results) and report.
        #[arg(long)]
        demo: bool,
        /// With --demo: stop after the report instead of serving.
        #[arg(long)]
        exit_after_demo: bool,
    },
    /// Write keys, dev certificates and configs for a local stack, then exit.
    Init {
        #[command(flatten)]
        init: init::InitArgs,
    },
    /// Verify exported log segments (as `docs/log-format.md` describes) with a trusted key.
    Verify {
        #[arg(long)]
        public_key: String,
        files: Vec<PathBuf>,
    },
    /// Fetch a Merkle inclusion or consistency proof from a node and verify it locally (a node
    /// with API clients needs an `audit` token in `OUTPOST_API_TOKEN`).
    #[command(subcommand)]
    Proof(proof::ProofCmd),
    /// Benchmarks against real binaries (`outpost bench place`).
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Feed tools (replay a recorded feed into a node).
    Feed {
        #[command(subcommand)]
        cmd: feed_replay::FeedCmd,
    },
    /// Replication benchmarks on loopback: ack lag at a fixed rate, catch-up of a backlog.
    BenchReplicate {
        #[command(flatten)]
        args: bench_replicate::BenchArgs,
    },
    /// Download a node's whole log as a verifiable segment file (a node with API clients needs
    /// an `audit` token in `OUTPOST_API_TOKEN`).
    ExportLog {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        node: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Reconcile one hour of a region hub now, e.g. `--hour 2026-11-21T13`.
    Reconcile(reconcile::ReconcileArgs),
    /// Re-read a region hub's audit objects from S3 and check them against its log.
    AuditVerify(reconcile::AuditVerifyArgs),
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Load-generate bet placement through the HTTP API of a real edge node on loopback.
    Place(bench_place::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws=warn,sled=warn".into()),
        )
        .init();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Init { init } => {
            let stack = init::init(&init)?;
            println!(
                "wrote local stack to {}\n  hub:  {}\n  edge: {}",
                init.dir.display(),
                stack.hub_config.display(),
                stack.edge_config.display()
            );
            Ok(())
        }
        Cmd::Up {
            init,
            demo,
            exit_after_demo,
        } => rt.block_on(up(init, demo, exit_after_demo)),
        Cmd::Verify { public_key, files } => verify::run(&public_key, &files),
        Cmd::Proof(cmd) => rt.block_on(proof::run(cmd)),
        Cmd::Reconcile(args) => rt.block_on(reconcile::reconcile(args)),
        Cmd::AuditVerify(args) => rt.block_on(reconcile::audit_verify(args)),
        Cmd::Bench(BenchCmd::Place(a)) => rt.block_on(bench_place::run(a)),
        Cmd::Feed { cmd } => rt.block_on(feed_replay::run(cmd)),
        Cmd::BenchReplicate { args } => rt.block_on(bench_replicate::run(args)),
        Cmd::ExportLog { node, out } => rt.block_on(async {
            let req = reqwest::Client::new().get(format!("{node}/v1/log/segment"));
            let bytes = api_token::authorise(req)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {} bytes to {}", bytes.len(), out.display());
            Ok(())
        }),
    }
}

async fn up(args: init::InitArgs, demo: bool, exit_after_demo: bool) -> anyhow::Result<()> {
    let stack = init::init(&args)?;
    let hub_cfg = region_hub::HubConfig::load(&stack.hub_config)?;
    let edge_cfg = edge_node::config::EdgeConfig::load(&stack.edge_config)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let hub_http = format!("http://{}", hub_cfg.http_listen);
    let edge_http = format!("http://{}", edge_cfg.http_listen);
    let hub = tokio::spawn(region_hub::run::run(hub_cfg, rx.clone()));
    let edge = tokio::spawn(edge_node::node::run(edge_cfg, rx.clone()));
    demo::wait_healthy(&hub_http)
        .await
        .context("region hub did not start")?;
    demo::wait_healthy(&edge_http)
        .await
        .context("edge node did not start")?;
    println!("{}", init::banner(&args, &edge_http, &hub_http));
    if demo {
        demo::run(&edge_http, &hub_http, &args.dir).await?;
        if exit_after_demo {
            let _ = tx.send(true);
            let _ = hub.await;
            let _ = edge.await;
            return Ok(());
        }
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("stopping"),
        r = hub => { r??; anyhow::bail!("region hub stopped") }
        r = edge => { r??; anyhow::bail!("edge node stopped") }
    }
    let _ = tx.send(true);
    Ok(())
}
