//! `outpost up --demo`: drives a realistic session through the public HTTP APIs only — players
//! register, pass KYC and deposit; a few hundred singles and accumulators go on real 2023/24
//! Premier League matches at the bundled Bet365 prices; the real results (openfootball) are
//! posted to the hub; settlements flow back; then it reports what happened and verifies the
//! node's log.

use anyhow::{Context, bail};
use outpost_core::log::{NodeKey, decode_segment, verify_frames};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const PLAYERS: usize = 40;
const BETS: usize = 300;
const EVENTS: usize = 30;

pub async fn wait_healthy(base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{base} not healthy after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn post(
    c: &reqwest::Client,
    url: &str,
    idem: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let r = c
        .post(url)
        .header("Idempotency-Key", idem)
        .json(&body)
        .send()
        .await?;
    Ok((r.status().as_u16(), r.json().await.unwrap_or(Value::Null)))
}

async fn get(c: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    Ok(c.get(url).send().await?.error_for_status()?.json().await?)
}

pub async fn run(edge: &str, hub: &str, dir: &Path) -> anyhow::Result<()> {
    let c = reqwest::Client::new();
    let session = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let mut rng = Rng(session as u64 | 1);
    println!("demo: registering {PLAYERS} players …");
    let mut players = Vec::new();
    for i in 0..PLAYERS {
        let (st, p) = post(&c, &format!("{edge}/v1/players"), &format!("demo{session}-reg-{i}"), json!({
            "jurisdiction": "GB", "name": format!("Demo Player {i}"),
            "date_of_birth": format!("{}-{:02}-{:02}", 1960 + rng.below(45), 1 + rng.below(12), 1 + rng.below(28)),
        })).await?;
        anyhow::ensure!(st == 201, "register: {st} {p}");
        let id = p["player_id"].as_str().context("player_id")?.to_string();
        let (st, _) = post(
            &c,
            &format!("{edge}/v1/players/{id}/kyc"),
            &format!("demo{session}-kyc-{i}"),
            json!({}),
        )
        .await?;
        anyhow::ensure!(st == 200, "kyc: {st}");
        let amount = 5_000 + 500 * rng.below(90) as i64;
        let (st, _) = post(&c, &format!("{edge}/v1/players/{id}/deposits"), &format!("demo{session}-dep-{i}"), json!({
            "amount_minor": amount, "currency": "GBP", "provider_ref": format!("demo-psp-{session}-{i}"),
        })).await?;
        anyhow::ensure!(st == 201, "deposit: {st}");
        players.push(id);
    }

    let markets = get(&c, &format!("{edge}/v1/markets?status=open&limit=2000")).await?;
    let mut events: Vec<String> = markets["markets"]
        .as_array()
        .context("markets")?
        .iter()
        .filter_map(|m| m["event_id"].as_str().map(String::from))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    events.truncate(EVENTS);
    anyhow::ensure!(!events.is_empty(), "no open markets left on this node");
    let selections: Vec<(String, String, String)> = markets["markets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| events.iter().any(|e| m["event_id"] == *e))
        .flat_map(|m| {
            m["selections"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |s| {
                    (
                        m["event_id"].as_str().unwrap_or("").to_string(),
                        s["selection_id"].as_str().unwrap_or("").to_string(),
                        s["price"].as_str().unwrap_or("").to_string(),
                    )
                })
        })
        .collect();

    println!(
        "demo: placing {BETS} bets on {} real matches …",
        events.len()
    );
    let (mut accepted, mut rejected, mut turnover) = (Vec::new(), 0usize, 0i64);
    for n in 0..BETS {
        let p = &players[rng.below(players.len())];
        let legs_n = if rng.below(5) == 0 {
            2 + rng.below(3)
        } else {
            1
        };
        let mut legs = Vec::new();
        let mut used = BTreeSet::new();
        while legs.len() < legs_n {
            let (ev, sel, price) = &selections[rng.below(selections.len())];
            if used.insert(ev.clone()) {
                legs.push(json!({"selection_id": sel, "price": price}));
            }
        }
        let stake = 100 * (1 + rng.below(20)) as i64;
        let (st, b) = post(
            &c,
            &format!("{edge}/v1/bets"),
            &format!("demo{session}-bet-{n}"),
            json!({"player_id": p, "stake_minor": stake, "currency": "GBP", "legs": legs}),
        )
        .await?;
        match st {
            201 => {
                turnover += stake;
                accepted.push(b["bet_id"].as_str().context("bet_id")?.to_string());
            }
            422 => rejected += 1,
            _ => bail!("bet: {st} {b}"),
        }
    }

    println!("demo: posting the real results (openfootball and football-data) to the hub …");
    let results_json = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/openfootball/2023-24/en.1.json"),
    )?;
    let results = outpost_core::fixtures::openfootball::parse_results(&results_json, "E0")?;
    // A result is final only when two independent sources agree: the same matches' full-time
    // scores from football-data.co.uk are the second source.
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/football-data/E0_2324.csv"),
    )?;
    let second: Vec<(outpost_core::ids::EventId, outpost_core::settle::FinalScore)> =
        outpost_core::fixtures::football_data::parse_matches(&csv, "E0")?
            .into_iter()
            .filter_map(|f| Some((f.event.event_id, f.full_time?)))
            .collect();
    let reports = results
        .iter()
        .map(|r| ("openfootball", &r.event_id, r.score))
        .chain(second.iter().map(|(id, s)| ("football-data", id, *s)));
    for (source, event_id, score) in
        reports.filter(|(_, id, _)| events.iter().any(|e| e == id.as_str()))
    {
        let resp = c
            .post(format!("{hub}/v1/results"))
            .json(&json!({"event_id": event_id, "home_goals": score.home, "away_goals": score.away, "source": source}))
            .send()
            .await?;
        anyhow::ensure!(
            resp.status().is_success(),
            "result for {event_id} from {source}: {}",
            resp.text().await?
        );
    }

    println!("demo: waiting for settlements to reach the edge …");
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut payouts, mut settled) = (0i64, 0usize);
    for id in &accepted {
        loop {
            let b = get(&c, &format!("{edge}/v1/bets/{id}")).await?;
            if b["status"] == "settled" {
                payouts += b["payout_minor"].as_i64().unwrap_or(0);
                settled += 1;
                break;
            }
            if Instant::now() > deadline {
                bail!("bet {id} not settled after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut cash = 0i64;
    for p in &players {
        cash += get(&c, &format!("{edge}/v1/players/{p}/wallet")).await?["cash_minor"]
            .as_i64()
            .unwrap_or(0);
    }
    let nodes = get(&c, &format!("{hub}/v1/nodes")).await?;
    let stats = get(&c, &format!("{hub}/v1/stats")).await?;
    // Let the audit uploader catch up with the settlement records before reporting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats_after = get(&c, &format!("{hub}/v1/stats")).await.unwrap_or(stats);

    let seg = c
        .get(format!("{edge}/v1/log/segment"))
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let (header, frames) = decode_segment(&seg)?;
    let key = NodeKey::from_hex(&std::fs::read_to_string(dir.join("gb-1.key"))?)?;
    let verdict = match verify_frames(
        &header.log_id,
        &key.public(),
        outpost_core::log::ChainHead::EMPTY,
        frames,
    ) {
        Ok(r) => format!("OK ({} records, head {})", r.records, r.head.hash),
        Err(e) => format!("FAILED: {e}"),
    };
    let gbp = |m: i64| format!("£{}.{:02}", m / 100, m.abs() % 100);
    println!(
        "\n== Demo report ==\n  bets accepted:        {}\n  bets refused by gate: {rejected}\n  turnover:             {}\n  bets settled:         {settled}\n  payouts:              {}\n  house result (GGR):   {}\n  demo players' cash:   {}\n  hub nodes:            {}\n  hub stats:            {}\n  edge log verification: {verdict}\n",
        accepted.len(),
        gbp(turnover),
        gbp(payouts),
        gbp(turnover - payouts),
        gbp(cash),
        nodes,
        stats_after,
    );
    Ok(())
}
