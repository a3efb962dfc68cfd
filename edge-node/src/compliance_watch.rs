//! The gate's background duties: hot-reload the jurisdiction rules file, import national
//! register documents dropped into the inbox directory, and raise the alarm when the register
//! copy goes stale (or is missing), which suspends all betting in the jurisdiction.
//!
//! Polls once a second (file mtimes), so it needs neither inotify nor signals. A rules file that
//! does not parse or validate is refused with its file, line and field; the rules in force stay.

use crate::config::{EdgeConfig, load_rules_with_hash};
use crate::writer::{WriterHandle, now};
use outpost_core::edge::{Command, CommandError};
use outpost_core::gate::register::{RegisterStatus, SignedRegisterDoc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

const POLL: Duration = Duration::from_secs(1);

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Load the rules file and activate it if it differs from what is in force. Returns whether
/// rules were activated; errors leave the old rules in force.
pub async fn reload_rules(cfg: &EdgeConfig, writer: &WriterHandle) -> Result<bool, String> {
    let (rules, sha) = load_rules_with_hash(&cfg.rules_file).map_err(|e| e.to_string())?;
    if rules.code != cfg.jurisdiction {
        return Err(format!(
            "{}: rules are for {}, node serves {}",
            cfg.rules_file.display(),
            rules.code,
            cfg.jurisdiction
        ));
    }
    let active = writer
        .read(|st, _| st.gate.rules.clone())
        .await
        .map_err(|e| e.to_string())?;
    if active.is_some_and(|a| a.rules_sha256 == sha && a.rules_version == rules.rules_version) {
        return Ok(false);
    }
    let version = rules.rules_version.clone();
    writer
        .set_rules(Arc::new(rules), sha)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    tracing::info!(rules_version = %version, "jurisdiction rules activated");
    Ok(true)
}

/// Import one register document file. Refused documents change nothing.
pub async fn import_register_file(writer: &WriterHandle, path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: SignedRegisterDoc = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a register document: {e}", path.display()))?;
    match writer.command(Command::LoadRegister { doc }, None).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(CommandError::Refused { code, detail })) => Err(format!(
            "{}: refused {}: {detail}",
            path.display(),
            code.as_str()
        )),
        Ok(Err(e)) => Err(format!("{}: {e}", path.display())),
        Err(e) => Err(e.to_string()),
    }
}

/// The register's status as JSON for `/healthz`.
pub async fn register_status(writer: &WriterHandle) -> Option<RegisterStatus> {
    let rules = writer.rules();
    writer
        .read(move |st, _| st.register_status(&rules, now()))
        .await
        .ok()
}

/// Run the first pass (so a register delivered before start is loaded before the node serves
/// bets), then keep polling in the background.
pub async fn start(
    cfg: EdgeConfig,
    writer: WriterHandle,
    status_tx: watch::Sender<serde_json::Value>,
    shutdown: watch::Receiver<bool>,
) {
    let mut w = Watcher {
        rules_mtime: mtime(&cfg.rules_file),
        seen: BTreeMap::new(),
        alarmed: false,
        last_rules_error: None,
        cfg,
        writer,
        status_tx,
    };
    w.pass().await;
    tokio::spawn(w.run(shutdown));
}

struct Watcher {
    cfg: EdgeConfig,
    writer: WriterHandle,
    status_tx: watch::Sender<serde_json::Value>,
    rules_mtime: Option<SystemTime>,
    seen: BTreeMap<PathBuf, Option<SystemTime>>,
    alarmed: bool,
    last_rules_error: Option<String>,
}

impl Watcher {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            self.pass().await;
        }
    }

    async fn pass(&mut self) {
        let Watcher {
            cfg,
            writer,
            status_tx,
            rules_mtime,
            seen,
            alarmed,
            last_rules_error,
        } = self;
        {
            // Rules hot reload.
            let m = mtime(&cfg.rules_file);
            if m != *rules_mtime {
                *rules_mtime = m;
                match reload_rules(cfg, writer).await {
                    Ok(_) => *last_rules_error = None,
                    Err(e) => {
                        tracing::error!("rules reload refused, previous rules stay in force: {e}");
                        *last_rules_error = Some(e);
                    }
                }
            }
            // Register inbox.
            if let Some(dir) = cfg.register.as_ref().and_then(|r| r.inbox_dir.as_ref())
                && let Ok(rd) = std::fs::read_dir(dir)
            {
                let mut files: Vec<PathBuf> = rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect();
                files.sort();
                for f in files {
                    let m = mtime(&f);
                    if seen.get(&f) == Some(&m) {
                        continue;
                    }
                    seen.insert(f.clone(), m);
                    match import_register_file(writer, &f).await {
                        Ok(()) => tracing::info!("register document {} imported", f.display()),
                        Err(e) => tracing::warn!("register document not imported: {e}"),
                    }
                }
            }
            // Staleness alarm: betting is already refused by the gate; this makes it loud.
            if let Some(st) = register_status(writer).await {
                let usable = st.usable();
                if !usable && !*alarmed {
                    tracing::error!(status = ?st, "ALARM: self-exclusion register unusable; all betting in the jurisdiction is suspended");
                } else if usable && *alarmed {
                    tracing::info!(status = ?st, "self-exclusion register usable again; betting resumed");
                }
                *alarmed = !usable;
                let rules = writer.rules();
                status_tx.send_replace(serde_json::json!({
                    "rules_version": rules.rules_version,
                    "rules_reload_error": last_rules_error.clone(),
                    "register": st,
                    "betting_suspended": !usable,
                }));
            }
        }
    }
}
