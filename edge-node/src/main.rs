//! `edge-node run --config FILE`: one jurisdiction's edge node.

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(name = "edge-node", about = "Outpost edge node")]
enum Cli {
    /// Run the node until SIGINT/SIGTERM.
    Run {
        #[arg(long)]
        config: std::path::PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Cli::Run { config } = Cli::parse();
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
