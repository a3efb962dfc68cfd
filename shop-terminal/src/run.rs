//! Wiring: load the config and token, open the journal, start the edge status loop and serve
//! the UI until shutdown.

use crate::config::TillConfig;
use crate::edge::EdgeClient;
use crate::journal::Journal;
use crate::ui::{App, EdgeStatus, router, status_loop};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub async fn run(cfg: TillConfig) -> anyhow::Result<()> {
    let token = cfg.token()?;
    if let Some(dir) = cfg.journal.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let journal = Journal::open(&cfg.journal)?;
    let app = Arc::new(App {
        edge: EdgeClient::new(&cfg.edge_url, &token),
        journal: Mutex::new(journal),
        sessions: Mutex::new(HashMap::new()),
        coupon: RwLock::new(vec![]),
        status: RwLock::new(EdgeStatus {
            online: false,
            text: "connecting".into(),
            currency: "GBP".into(),
            digits: 2,
            node_id: String::new(),
        }),
        cfg,
    });
    tokio::spawn(status_loop(app.clone()));
    let listener = tokio::net::TcpListener::bind(app.cfg.listen).await?;
    tracing::info!(
        "shop till {}/{} serving http://{}",
        app.cfg.shop_id,
        app.cfg.terminal_id,
        listener.local_addr()?
    );
    axum::serve(listener, router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
