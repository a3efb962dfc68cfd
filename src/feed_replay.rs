//! `outpost feed replay`: play a recorded feed into a node's push endpoints at real or
//! accelerated speed. The file holds one message per line: UOF XML (lines starting with `<`)
//! or Betfair Stream API JSON (lines starting with `{`). Message times come from the messages
//! themselves (UOF `timestamp`, Betfair `pt`), so gaps are reproduced, divided by `--speed`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use outpost_core::feed::{betfair, uof};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum FeedCmd {
    /// Replay a recorded feed file against a node.
    Replay(ReplayArgs),
}

#[derive(Args)]
pub struct ReplayArgs {
    #[arg(long)]
    file: PathBuf,
    /// `1x` real time, `10x` ten times faster, `max` as fast as the node accepts.
    #[arg(long, default_value = "1x")]
    speed: String,
    /// Node base URL (a node with API clients needs a `feed` token in `OUTPOST_API_TOKEN`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    to: String,
    /// Betfair lines are a historical-data file (complete recorded states).
    #[arg(long)]
    historical: bool,
}

/// `Some(factor)` or `None` for "max".
fn parse_speed(s: &str) -> anyhow::Result<Option<f64>> {
    if s == "max" {
        return Ok(None);
    }
    let n: f64 = s
        .trim_end_matches('x')
        .parse()
        .with_context(|| format!("--speed {s:?}: expected e.g. 1x, 10x or max"))?;
    if !(n.is_finite() && n > 0.0) {
        bail!("--speed must be positive");
    }
    Ok(Some(n))
}

pub async fn run(cmd: FeedCmd) -> anyhow::Result<()> {
    let FeedCmd::Replay(a) = cmd;
    let speed = parse_speed(&a.speed)?;
    let text = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let client = reqwest::Client::new();
    let (mut first_ts, start) = (None::<i64>, Instant::now());
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for (no, line) in text.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(&first) = line.iter().find(|b| !b.is_ascii_whitespace()) else {
            continue;
        };
        let (path, ts) = match first {
            b'<' => (
                "/v1/feed/uof",
                uof::parse(line).ok().map(|m| m.timestamp().0),
            ),
            b'{' => {
                let ts = match betfair::parse(line) {
                    Ok(betfair::BetfairMessage::Mcm(m)) => Some(m.pt.0),
                    _ => None,
                };
                (
                    if a.historical {
                        "/v1/feed/betfair?historical=true"
                    } else {
                        "/v1/feed/betfair"
                    },
                    ts,
                )
            }
            _ => {
                eprintln!("line {}: neither XML nor JSON, skipped", no + 1);
                *counts.entry("unreadable".into()).or_default() += 1;
                continue;
            }
        };
        // Unparseable messages are still sent (the node counts and refuses them), at once.
        if let (Some(speed), Some(ts)) = (speed, ts) {
            let t0 = *first_ts.get_or_insert(ts);
            let due = Duration::from_secs_f64(((ts - t0).max(0) as f64 / 1000.0) / speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        let req = client
            .post(format!("{}{path}", a.to.trim_end_matches('/')))
            .body(line.to_vec());
        let r = crate::api_token::authorise(req)
            .send()
            .await
            .with_context(|| format!("posting line {}", no + 1))?;
        *counts.entry(r.status().as_u16().to_string()).or_default() += 1;
    }
    println!(
        "replayed {} in {:.2?}: {:?}",
        a.file.display(),
        start.elapsed(),
        counts
    );
    Ok(())
}
