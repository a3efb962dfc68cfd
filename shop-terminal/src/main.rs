//! `shop-terminal`: run the till, hash a staff PIN or a terminal token for the configs, or
//! benchmark the edge node's shop API.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "shop-terminal", about = "Outpost shop till")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the till UI.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the `pin_sha256` value for a staff member's PIN.
    HashPin {
        #[arg(long)]
        staff: String,
        #[arg(long)]
        pin: String,
    },
    /// Create a new terminal token in FILE and print the `token_sha256` for the node's config.
    NewToken { file: PathBuf },
    /// Benchmark: N busy tills against a real edge node on loopback.
    Bench(shop_terminal::bench::BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().cmd {
        Cmd::Run { config } => {
            shop_terminal::run::run(shop_terminal::config::TillConfig::load(&config)?).await
        }
        Cmd::HashPin { staff, pin } => {
            println!("{}", shop_terminal::config::pin_hash(&staff, &pin));
            Ok(())
        }
        Cmd::NewToken { file } => {
            let token = shop_terminal::ui::random_hex(32);
            std::fs::write(&file, &token)?;
            println!(
                "{}",
                hex::encode(outpost_core::log::sha256(token.as_bytes()))
            );
            Ok(())
        }
        Cmd::Bench(a) => shop_terminal::bench::run(a).await,
    }
}
