//! `edge-node run --config FILE`: one jurisdiction's edge node.
//! `edge-node bench place`: the bet-acceptance benchmark (`bench/mod.rs`).

use anyhow::Context;
use clap::Parser;

/// mimalloc rather than the system allocator: every bet allocates and frees many small
/// strings and JSON buffers across the HTTP workers, the writer and the persister, and
/// glibc's malloc (its arena locks and `malloc_consolidate`) was 5–8 % of the node's CPU.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "edge-node", about = "Outpost edge node")]
enum Cli {
    /// Run the node until SIGINT/SIGTERM.
    Run {
        #[arg(long)]
        config: std::path::PathBuf,
    },
    /// Benchmarks that drive a real node (`edge-node bench place`).
    #[command(subcommand)]
    Bench(Bench),
    /// Benchmark setup: create N registered, KYC-verified, funded players in the node's log
    /// through its writer (the node must not be running).
    #[command(hide = true)]
    BenchPlayers {
        #[arg(long)]
        config: std::path::PathBuf,
        #[arg(long)]
        players: usize,
        #[arg(long, default_value_t = 150_000)]
        deposit_minor: i64,
        #[arg(long)]
        ids_out: std::path::PathBuf,
    },
}

#[derive(clap::Subcommand)]
enum Bench {
    /// Bet acceptance over HTTP: sustained bets/s, latency at a fixed rate, memory.
    Place(edge_node::bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = match Cli::parse() {
        Cli::Run { config } => config,
        Cli::Bench(Bench::Place(args)) => {
            // The generator gets one thread: the node under test needs the other core.
            return tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(edge_node::bench::run(args));
        }
        Cli::BenchPlayers {
            config,
            players,
            deposit_minor,
            ids_out,
        } => {
            let cfg =
                edge_node::config::EdgeConfig::load(&config).context("loading node config")?;
            return tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(edge_node::bench::synth::players(
                    &cfg,
                    players,
                    deposit_minor,
                    &ids_out,
                ));
        }
    };
    let cfg = edge_node::config::EdgeConfig::load(&config).context("loading node config")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = tx.send(true);
        });
        edge_node::node::run(cfg, rx).await
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
}
