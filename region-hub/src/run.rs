//! Wiring: open the state, start the QUIC replication server, the HTTP API, the audit
//! uploader and a small refresher task, and stop them all on shutdown. Also the results file
//! loader behind `region-hub load-results`.
//!
//! This is glue, so it reports with `anyhow` (with context naming the file or address).

use crate::api;
use crate::audit::{AuditError, AuditStore, LocalWormStore, S3Credentials, S3Store};
use crate::audit_uploader::{Backoff, run_uploader};
use crate::config::{AuditStoreConfig, HubConfig};
use crate::settlement::ResultStatus;
use crate::store::{HubState, now_ms};
use anyhow::Context;
use outpost_core::settlement::event_result::EventResult;
use outpost_sync::transport::{HubServer, HubServerConfig};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often the uploader wakes without news (age-based segment cuts need a tick).
const AUDIT_POLL: Duration = Duration::from_secs(1);
/// How often down-chain heads are re-read from the database, to wake sessions for records
/// another process (`region-hub load-results`) appended.
const DOWN_REFRESH: Duration = Duration::from_secs(1);

/// Open the hub state described by `cfg` (reads the signing key, opens the database).
pub fn open_state(cfg: &HubConfig) -> anyhow::Result<HubState> {
    let key = cfg.signing_key()?;
    HubState::open(cfg, key)
        .with_context(|| format!("opening hub database {}", cfg.db_path().display()))
}

/// Build the configured audit store (no I/O for S3; see [`prepare_store`]).
pub fn audit_store(cfg: &HubConfig) -> anyhow::Result<AuditStore> {
    Ok(match &cfg.audit.store {
        AuditStoreConfig::Local { dir } => LocalWormStore::open(dir)
            .with_context(|| format!("opening local audit store {}", dir.display()))?
            .into(),
        AuditStoreConfig::S3 {
            endpoint,
            bucket,
            access_key,
            secret_key,
        } => {
            let creds = S3Credentials {
                access_key_id: access_key.clone(),
                secret_access_key: secret_key.clone(),
            };
            S3Store::connect(endpoint, bucket, creds)
                .context("configuring the S3 audit store")?
                .into()
        }
    })
}

/// Make sure the S3 bucket exists with Object Lock, retrying while S3 is unreachable (the
/// outbox keeps everything meanwhile). A permanent refusal is logged and retried slowly: the
/// hub keeps serving, and an operator fixes the bucket.
async fn prepare_store(store: &AuditStore, shutdown: &mut watch::Receiver<bool>) -> bool {
    let AuditStore::S3(s3) = store else {
        return true;
    };
    let backoff = Backoff::default();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let delay = match s3.ensure_bucket().await {
            Ok(()) => return true,
            Err(e @ AuditError::Unavailable(_)) => {
                tracing::warn!(error = %e, attempt, "S3 audit store unreachable; audit objects wait in the outbox");
                backoff.delay_ms(attempt)
            }
            Err(e) => {
                tracing::error!(error = %e, "S3 audit bucket is unusable; audit objects wait in the outbox until it is fixed");
                backoff.max_ms
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return false,
            _ = tokio::time::sleep(Duration::from_millis(delay as u64)) => {}
        }
        if *shutdown.borrow() {
            return false;
        }
    }
}

/// A started hub: its bound addresses and state. [`RunningHub::wait`] runs it to the end.
pub struct RunningHub {
    pub state: HubState,
    pub http_addr: SocketAddr,
    pub quic_addr: SocketAddr,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl fmt::Debug for RunningHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningHub")
            .field("http_addr", &self.http_addr)
            .field("quic_addr", &self.quic_addr)
            .finish()
    }
}

impl RunningHub {
    /// Wait until every task has stopped (after `shutdown` turns true). The first task error
    /// is returned; a failing task does not stop the others by itself.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first: anyhow::Result<()> = Ok(());
        while let Some(r) = self.tasks.join_next().await {
            let r = r.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(e) = r {
                tracing::error!(error = %format!("{e:#}"), "hub task failed");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

/// Start every part of the hub; returns once the sockets are bound (so callers and tests can
/// use port 0 and read the real addresses).
pub async fn start(cfg: HubConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<RunningHub> {
    let state = {
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || open_state(&cfg))
            .await
            .context("opening hub state")??
    };
    let store = audit_store(&cfg)?;

    let revocations = match &cfg.tls.revocation_list {
        Some(path) => Some(outpost_sync::revocation::RevocationFile::open(path)?),
        None => None,
    };
    let tls = (|| {
        use outpost_sync::tls::{load_certs, load_key, server_config_with_revocation};
        server_config_with_revocation(
            &load_certs(&cfg.tls.ca_cert)?,
            load_certs(&cfg.tls.hub_cert)?,
            load_key(&cfg.tls.hub_key)?,
            revocations,
        )
    })()
    .with_context(|| {
        format!(
            "loading hub TLS files (ca {}, cert {}, key {})",
            cfg.tls.ca_cert.display(),
            cfg.tls.hub_cert.display(),
            cfg.tls.hub_key.display()
        )
    })?;
    let server = HubServer::bind(HubServerConfig::new(cfg.quic_listen, tls))
        .with_context(|| format!("binding QUIC replication listener {}", cfg.quic_listen))?;
    let quic_addr = server.local_addr()?;
    let listener = tokio::net::TcpListener::bind(cfg.http_listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", cfg.http_listen))?;
    let http_addr = listener.local_addr()?;

    let mut tasks = JoinSet::new();
    {
        let (state, shutdown) = (Arc::new(state.clone()), shutdown.clone());
        tasks.spawn(async move {
            server.run(state, shutdown).await;
            Ok(())
        });
    }
    {
        let (router, mut shutdown) = (api::router(state.clone()), shutdown.clone());
        tasks.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|s| *s).await;
                })
                .await
                .context("HTTP server")
        });
    }
    {
        let (state, store, shutdown) = (state.clone(), audit_store(&cfg)?, shutdown.clone());
        let rc = cfg.reconcile;
        tasks.spawn(async move {
            crate::reconcile::scheduler::run(state, Some(store), rc, shutdown).await;
            Ok(())
        });
    }
    {
        let (state, mut shutdown) = (state.clone(), shutdown.clone());
        tasks.spawn(async move {
            if prepare_store(&store, &mut shutdown).await {
                run_uploader(state, store, Backoff::default(), AUDIT_POLL, shutdown).await;
            }
            Ok(())
        });
    }
    {
        let (state, mut shutdown) = (state.clone(), shutdown.clone());
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                    _ = tokio::time::sleep(DOWN_REFRESH) => {}
                }
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || s.refresh_down_heads()).await;
            }
        });
    }

    tracing::info!(hub = %cfg.hub_id, %quic_addr, %http_addr, audit = ?cfg.audit.store, nodes = cfg.nodes.len(), "region hub started");
    println!(
        "region-hub {}: replication (QUIC) on {quic_addr}, HTTP API on http://{http_addr}",
        cfg.hub_id
    );
    Ok(RunningHub {
        state,
        http_addr,
        quic_addr,
        tasks,
    })
}

/// Run the hub until `shutdown` becomes true.
pub async fn run(cfg: HubConfig, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    start(cfg, shutdown).await?.wait().await
}

/// What [`load_results_file`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadSummary {
    /// Played matches in the file.
    pub rows: usize,
    /// Results that became final with this file.
    pub recorded: usize,
    pub unchanged: usize,
    /// Kept but not final: waiting for a second source (or an operator), or held for review
    /// because no market or bet on the event has reached the hub.
    pub pending: usize,
    pub settled: usize,
    /// Matches whose stored result differs from the file's (left as they are).
    pub conflicts: Vec<String>,
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} results in file: {} final now, {} already final, {} awaiting a second source or review, {} conflicting; {} bets settled",
            self.rows,
            self.recorded,
            self.unchanged,
            self.pending,
            self.conflicts.len(),
            self.settled
        )?;
        for c in &self.conflicts {
            write!(f, "\n  conflict: {c}")?;
        }
        Ok(())
    }
}

/// Submit every played match of an openfootball season file (`en.1.json`) as a result, with
/// event ids for football-data division `div` (`E0`). Safe to re-run: identical results are
/// no-ops, and a result that differs from the stored one is reported, not applied.
pub fn load_results_file(state: &HubState, path: &Path, div: &str) -> anyhow::Result<LoadSummary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A `.csv` is a results file (scores, or a race results file when its header names a
    // `runner` column), refused whole with line numbers if any line is bad. Anything else is
    // an openfootball season file.
    let (rows, source) = if name.ends_with(".csv") {
        let rows = outpost_core::settlement::results_file::parse_any(&text)
            .with_context(|| format!("parsing {}", path.display()))?;
        (rows, format!("file:{name}"))
    } else {
        let rows = outpost_core::fixtures::openfootball::parse_results(&text, div)
            .with_context(|| format!("parsing {}", path.display()))?
            .into_iter()
            .map(|r| (r.event_id, EventResult::Score(r.score)))
            .collect::<Vec<_>>();
        (rows, format!("openfootball:{name}"))
    };
    let mut summary = LoadSummary {
        rows: rows.len(),
        ..LoadSummary::default()
    };
    for (event_id, result) in rows {
        let r = state
            .submit_report_blocking(&event_id, &result, &source, now_ms())
            .with_context(|| format!("submitting the result of {event_id}"))?;
        summary.settled += r.settled;
        match r.status {
            ResultStatus::Recorded | ResultStatus::Corrected => summary.recorded += 1,
            ResultStatus::Unchanged => summary.unchanged += 1,
            ResultStatus::Pending | ResultStatus::Held => summary.pending += 1,
            ResultStatus::Conflict => summary
                .conflicts
                .push(format!("{event_id}: {}", r.alert.unwrap_or_default())),
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use outpost_core::fixtures::event_id;
    use outpost_core::market::Outcome;
    use outpost_core::time::CivilDate;

    #[test]
    fn loads_a_season_file_idempotently() {
        let t = hub(eager());
        let ev = event_id(
            "E0",
            CivilDate::parse("2023-08-11").unwrap(),
            "Burnley",
            "Man City",
        );
        let mut edge = Edge::new();
        let recs = edge.group(&[
            genesis(),
            bet("b-1", 1000, vec![leg(ev.as_str(), Outcome::Away, "1.25")]),
        ]);
        t.state
            .commit_upstream_blocking(&node_id(), recs, now())
            .unwrap();

        let file = t.dir.path().join("en.1.json");
        std::fs::write(
            &file,
            r#"{"name":"Premier League 2023/24","matches":[
                {"round":"Matchday 1","date":"2023-08-11","team1":"Burnley FC","team2":"Manchester City FC","score":{"ft":[0,3]}},
                {"round":"Matchday 1","date":"2023-08-12","team1":"Arsenal FC","team2":"Nottingham Forest FC","score":{}}
            ]}"#,
        )
        .unwrap();
        // One source: kept, not final, nothing settled.
        let s = load_results_file(&t.state, &file, "E0").unwrap();
        assert_eq!(
            s,
            LoadSummary {
                rows: 1,
                recorded: 0,
                unchanged: 0,
                pending: 1,
                settled: 0,
                conflicts: vec![]
            }
        );
        // A second, independent source (a results file) agrees: final and settled.
        let csv = t.dir.path().join("results.csv");
        std::fs::write(&csv, format!("event_id,home_goals,away_goals\n{ev},0,3\n")).unwrap();
        let s = load_results_file(&t.state, &csv, "E0").unwrap();
        assert_eq!((s.recorded, s.settled), (1, 1));
        // A malformed results file is refused whole, naming the line.
        std::fs::write(&csv, "event_id,home_goals,away_goals\ne-1,1,0\ne-2,one,0\n").unwrap();
        let e = load_results_file(&t.state, &csv, "E0").unwrap_err();
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
        let bet = t
            .state
            .bet_view(&outpost_core::ids::BetId::new("b-1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(bet.payout_minor, Some(1250));
        let again = load_results_file(&t.state, &file, "E0").unwrap();
        assert_eq!((again.recorded, again.unchanged, again.settled), (0, 1, 0));
        assert!(
            t.state
                .metrics()
                .reprocessed_results
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 1
        );

        std::fs::write(&file, "{\"matches\": 5}").unwrap();
        let e = load_results_file(&t.state, &file, "E0").unwrap_err();
        assert!(format!("{e:#}").contains("en.1.json"), "{e:#}");
    }

    /// `load-results` takes a race results file too (told apart by its `runner` column): the
    /// real Hamilton 1m handicap of 2017-06-14, winner 12115648, two non-runners.
    #[test]
    fn loads_a_race_results_file() {
        let t = hub(eager());
        let race = "1.132153978";
        let mut edge = Edge::new();
        let recs = edge.group(&[
            genesis(),
            bet("w-1", 1000, vec![race_leg(race, 12115648, None)]),
        ]);
        t.state
            .commit_upstream_blocking(&node_id(), recs, now())
            .unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/results/hamilton-2017-06-14-1m-hcap.csv");
        let s = load_results_file(&t.state, &fixture, "").unwrap();
        assert_eq!((s.rows, s.pending, s.settled), (1, 1, 0), "{s}");
        // A second provider's copy agrees: final, and the winner is paid at 5.0.
        let second = t.dir.path().join("second-provider.csv");
        std::fs::copy(&fixture, &second).unwrap();
        let s = load_results_file(&t.state, &second, "").unwrap();
        assert_eq!((s.recorded, s.settled), (1, 1), "{s}");
        let bet = t
            .state
            .bet_view(&outpost_core::ids::BetId::new("w-1").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(bet.payout_minor, Some(5000));
        // A bad race file is refused whole, naming the line; nothing changes.
        let bad = t.dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            "event_id,runner,finish,withdrawn_at,rule4_pence,runners,handicap\nr-9,1,first,,,8,no\n",
        )
        .unwrap();
        let e = load_results_file(&t.state, &bad, "").unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
        assert!(
            t.state
                .result_view(&event("r-9"))
                .unwrap()
                .reports
                .is_empty()
        );
    }
}
