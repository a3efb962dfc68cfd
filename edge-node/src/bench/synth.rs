//! Bulk players for the benchmarks: registers, KYC-verifies and funds N players by sending the
//! very commands the HTTP handlers send (same idempotency tags, same PII vault entries) to the
//! node's real writer, in-process, on the node's data directory. The result is an ordinary
//! signed, hash-chained log written by the node's own code with its own key, group-committed
//! and fdatasync'ed; the benchmark then starts the real `edge-node run` on it, which verifies
//! and replays it like any other log.
//!
//! Why: the HTTP path runs at a few hundred registrations per second on this machine, so a
//! million players would take most of an hour; only the HTTP parsing is skipped here.

use crate::api::extract::idem_tag;
use crate::api::players::{MoneyBody, RegisterBody};
use crate::config::EdgeConfig;
use crate::vault::Pii;
use anyhow::{Context, bail};
use outpost_core::edge::{Command, Reply};
use outpost_core::ids::{IdemKey, PlayerId};
use outpost_core::money::Money;
use outpost_core::time::CivilDate;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Register `n` players (ids written one per line to `ids_out`), each verified and funded
/// with `deposit_minor`.
pub async fn players(
    cfg: &EdgeConfig,
    n: usize,
    deposit_minor: i64,
    ids_out: &Path,
) -> anyhow::Result<()> {
    let started = crate::node::start_core(cfg).await?;
    let writer = started.writer.clone();
    // Deposits pass the full gate, national register included: import the inbox's signed
    // snapshot as the running node would.
    if let Some(inbox) = cfg.register.as_ref().and_then(|r| r.inbox_dir.as_ref()) {
        crate::compliance_watch::import_register_file(&writer, &inbox.join("snapshot.json"))
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let currency = writer.rules().currency;
    let t = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Enough in flight to fill the writer's commit groups.
    for _ in 0..2048 {
        let (w, next, done, jurisdiction) = (
            writer.clone(),
            next.clone(),
            done.clone(),
            cfg.jurisdiction.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(ids);
                }
                let body = RegisterBody {
                    jurisdiction: jurisdiction.clone(),
                    name: format!("Bench Player {i}"),
                    date_of_birth: CivilDate::new(1985, 6, 15).expect("valid date"),
                };
                let mut salt = [0u8; 16];
                getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no entropy: {e}"))?;
                let pii = Pii {
                    name: body.name.clone(),
                    date_of_birth: body.date_of_birth,
                    salt: hex::encode(salt),
                };
                let cmd = Command::RegisterPlayer {
                    jurisdiction: body.jurisdiction.clone(),
                    pii_sha256: pii.commitment().map_err(anyhow::Error::msg)?,
                    idem: idem_tag(IdemKey::new(format!("reg-{i}"))?, "POST /v1/players", &body),
                };
                let id: PlayerId = match w.command(cmd, Some(pii)).await?? {
                    Reply::Player(p) => p.player_id,
                    other => bail!("register: unexpected reply {other:?}"),
                };
                let kyc = Command::VerifyKyc {
                    player_id: id.clone(),
                    idem: idem_tag(
                        IdemKey::new(format!("kyc-{i}"))?,
                        &format!("POST /v1/players/{id}/kyc"),
                        &crate::api::players::Empty {},
                    ),
                };
                let dep_body = MoneyBody {
                    amount_minor: deposit_minor,
                    currency,
                    provider_ref: format!("bench-psp-{i}"),
                };
                let dep = Command::Deposit {
                    player_id: id.clone(),
                    amount: Money::new(deposit_minor, currency),
                    provider_ref: dep_body.provider_ref.clone(),
                    idem: idem_tag(
                        IdemKey::new(format!("dep-{i}"))?,
                        &format!("POST /v1/players/{id}/deposits"),
                        &dep_body,
                    ),
                };
                // Both queued before either is awaited: order is kept, groups stay full.
                let kyc = w.submit(kyc, None).await?;
                let dep = w.submit(dep, None).await?;
                kyc.await.context("writer stopped")??;
                match dep.await.context("writer stopped")?? {
                    Reply::Movement { .. } => {}
                    other => bail!("deposit: unexpected reply {other:?}"),
                }
                ids.push(id);
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % 100_000 == 0 {
                    eprintln!("  {d} players in {:.0} s", t.elapsed().as_secs_f64());
                }
            }
        }));
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(ids_out)?);
    for t in tasks {
        for id in t.await?? {
            writeln!(out, "{id}")?;
        }
    }
    out.flush()?;
    // Every reply above was released only after its commit group was durable.
    let head = writer.durable().borrow().seq;
    println!(
        "synthesised {n} players (register + KYC + deposit through the node's writer) in {:.1} s; durable log head {head}",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
