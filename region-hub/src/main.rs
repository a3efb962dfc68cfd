//! `region-hub` command line: run the hub, or load a season of results into its database.

use anyhow::Context;
use clap::{Parser, Subcommand};
use region_hub::config::HubConfig;
use region_hub::run;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::watch;

/// mimalloc rather than the system allocator: a settle pass allocates and frees millions of
/// small objects on two threads next to SQLite's page-sized buffers, and glibc's malloc spent a
/// quarter of the pass's CPU consolidating and unlinking chunks (`docs/benchmarks.md`,
/// "Settlement").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "region-hub",
    version,
    about = "Outpost region hub: replication endpoint, settlement, audit trail"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the hub until Ctrl-C / SIGTERM.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Submit every result of a file as one source's report (settling bets once final).
    LoadResults {
        #[arg(long)]
        config: PathBuf,
        /// openfootball JSON (e.g. en.1.json), a results CSV (`event_id,home_goals,away_goals`)
        /// or a race results CSV (`event_id,runner,finish,withdrawn_at,rule4_pence,runners,
        /// handicap`). One source is not enough: a result is final when two sources agree.
        #[arg(long)]
        file: PathBuf,
        /// football-data division code the openfootball event ids use, e.g. E0.
        #[arg(long, default_value = "E0")]
        div: String,
    },
    /// Reconcile one hour now (balances, payments, audit trail, settlement, jurisdiction).
    Reconcile(region_hub::reconcile::cli::ReconcileArgs),
    /// Re-read every audit object from the audit store and check it against the log.
    AuditVerify(region_hub::reconcile::cli::AuditVerifyArgs),
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line per cause, without a backtrace: these are operator-facing errors.
            eprintln!("region-hub: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    // Both quinn and the S3 client use rustls; pin one process-wide provider. Err only means
    // one is already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.cmd {
        Cmd::Run { config } => {
            let cfg = HubConfig::load(&config)
                .with_context(|| format!("loading {}", config.display()))?;
            rt.block_on(async {
                let (tx, rx) = watch::channel(false);
                tokio::spawn(async move {
                    shutdown_signal().await;
                    tracing::info!("shutting down");
                    let _ = tx.send(true);
                });
                run::run(cfg, rx).await
            })
        }
        Cmd::LoadResults { config, file, div } => {
            let cfg = HubConfig::load(&config)
                .with_context(|| format!("loading {}", config.display()))?;
            let state = run::open_state(&cfg)?;
            let summary = run::load_results_file(&state, &file, &div)?;
            println!("{summary}");
            Ok(())
        }
        Cmd::Reconcile(args) => rt.block_on(region_hub::reconcile::cli::reconcile(args)),
        Cmd::AuditVerify(args) => rt.block_on(region_hub::reconcile::cli::audit_verify(args)),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
