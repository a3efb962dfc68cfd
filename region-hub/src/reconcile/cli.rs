//! The command-line side of reconciliation, shared by `outpost reconcile` / `outpost
//! audit-verify` and `region-hub reconcile` / `region-hub audit-verify`: argument structs, a
//! progress bar for long runs, and the commands themselves (glue, so `anyhow`).

use super::audit_verify::{self, Selection};
use super::run::{Progress, Trigger, reconcile_hour};
use super::window::Hour;
use crate::config::HubConfig;
use crate::run::{audit_store, open_state};
use crate::store::now_ms;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use outpost_core::ids::Jurisdiction;
use outpost_core::time::UnixMillis;
use std::path::PathBuf;
use std::sync::Arc;

/// A terminal progress bar (drawn on stderr; hidden when stderr is not a terminal).
pub struct Bar {
    pb: ProgressBar,
}

impl Bar {
    pub fn new() -> Arc<Bar> {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Arc::new(Bar { pb })
    }
    pub fn finish(&self) {
        self.pb.finish_and_clear();
    }
}

impl Progress for Bar {
    fn phase(&self, phase: &'static str, total: u64) {
        self.pb.set_message(phase);
        self.pb.set_length(total);
        self.pb.set_position(0);
    }
    fn advance(&self, done: u64) {
        self.pb.set_position(done);
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReconcileArgs {
    /// The hub's config file.
    #[arg(long)]
    pub config: PathBuf,
    /// UTC hour to reconcile, YYYY-MM-DDTHH (its window is that hour and the one before).
    /// Default: the last complete hour.
    #[arg(long)]
    pub hour: Option<String>,
    /// Import this payment-provider settlement report (CSV) before reconciling.
    #[arg(long)]
    pub statement: Option<PathBuf>,
    /// Provider name of --statement.
    #[arg(long, default_value = "adyen")]
    pub provider: String,
    /// Jurisdiction --statement belongs to (default: the only jurisdiction the hub serves).
    #[arg(long)]
    pub jurisdiction: Option<String>,
    /// Skip re-reading the window's audit objects from the audit store.
    #[arg(long)]
    pub no_audit_verify: bool,
    /// Print the run summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `reconcile`: optionally import a statement, run, print the summary.
pub async fn reconcile(args: ReconcileArgs) -> anyhow::Result<()> {
    let cfg = HubConfig::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let state = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || open_state(&cfg)).await??
    };
    let now = now_ms().0;
    let hour = match &args.hour {
        Some(h) => Hour::parse(h)?,
        None => Hour::containing(UnixMillis(now)).previous(),
    };
    if let Some(path) = &args.statement {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let j = match &args.jurisdiction {
            Some(j) => Jurisdiction::new(j.clone()).context("--jurisdiction")?,
            None => {
                let all: std::collections::BTreeSet<_> =
                    cfg.nodes.iter().map(|n| n.jurisdiction.clone()).collect();
                match all.len() {
                    1 => all.into_iter().next().expect("one"),
                    _ => anyhow::bail!(
                        "the hub serves {} jurisdictions: say which one the statement is for with --jurisdiction",
                        all.len()
                    ),
                }
            }
        };
        let (st, provider) = (state.clone(), args.provider.clone());
        let summary = tokio::task::spawn_blocking(move || {
            st.import_statement_blocking(&provider, &j, &bytes, UnixMillis(now))
        })
        .await?
        .with_context(|| format!("importing {}", path.display()))?;
        println!("{summary}");
    }
    let store = if args.no_audit_verify {
        None
    } else {
        Some(audit_store(&cfg)?)
    };
    let bar = Bar::new();
    let summary = reconcile_hour(
        &state,
        store.as_ref(),
        hour,
        Trigger::OnDemand,
        cfg.reconcile.thresholds,
        now,
        bar.clone(),
    )
    .await;
    bar.finish();
    let summary = summary?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuditVerifyArgs {
    /// The hub's config file.
    #[arg(long)]
    pub config: PathBuf,
}

/// `audit-verify`: re-read every uploaded audit object and check it against the log. Fails if
/// anything does not match.
pub async fn audit_verify(args: AuditVerifyArgs) -> anyhow::Result<()> {
    let cfg = HubConfig::load(&args.config)
        .with_context(|| format!("loading {}", args.config.display()))?;
    let state = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || open_state(&cfg)).await??
    };
    let store = audit_store(&cfg)?;
    let bar = Bar::new();
    bar.phase("re-reading audit objects", 0);
    let r = audit_verify::verify(&state, &store, Selection::All, &|d, t| {
        bar.pb.set_length(t);
        bar.advance(d)
    })
    .await;
    bar.finish();
    let (out, sum) = r?;
    println!(
        "{} audit objects ({} records, {} bytes) re-read from {}",
        sum.objects,
        sum.records,
        sum.bytes,
        store.describe()
    );
    for d in &out.found {
        println!(
            "  {} {}: {} — {}",
            d.severity.as_str(),
            d.code,
            d.subject,
            d.detail
        );
    }
    if !out.found.is_empty() {
        anyhow::bail!("{} audit objects do not match the log", out.found.len());
    }
    println!("every object matches the log, verifies with its key and is locked for its retention");
    Ok(())
}
