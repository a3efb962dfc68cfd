//! `shop-terminal bench`: N busy tills on loopback against a real `edge-node` process. Each
//! till loops: place a cash bet on `/v1/shop/bets`, then render the ESC/POS slip from the
//! reply. The latency measured is entry (request sent) to printable slip (bytes ready).
//! Prints p50/p90/p99/max and throughput. Not a test: no assertions on timing.

use crate::slip::{Slip, SlipLeg};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The edge-node binary (build it with `cargo build --release -p edge-node`).
    #[arg(long)]
    pub edge_bin: PathBuf,
    /// Repository root (for the GB rules and the fixture markets).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub tills: usize,
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Pause between a till's bets (0 = back to back, the busiest a till can be).
    #[arg(long, default_value_t = 0)]
    pub think_ms: u64,
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("outpost-shop-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let repo = std::fs::canonicalize(&a.repo)?;
    let mut cfg = format!(
        "node_id = \"bench-1\"\njurisdiction = \"GB\"\ndata_dir = \"{d}/data\"\nhttp_listen = \"127.0.0.1:{port}\"\nkey_file = \"{d}/node.key\"\nrules_file = \"{r}/deploy/jurisdictions/gb.toml\"\n\n[[fixtures]]\nfootball_data = \"{r}/fixtures/football-data/E0_2324.csv\"\ndiv = \"E0\"\n",
        d = dir.display(),
        r = repo.display()
    );
    let mut tokens = vec![];
    for i in 0..a.tills {
        let token = format!("bench-token-{i}-{}", crate::ui::random_hex(8));
        cfg.push_str(&format!(
            "\n[[shop_terminals]]\nshop_id = \"shop-{}\"\nterminal_id = \"t{i}\"\ntoken_sha256 = \"{}\"\n",
            i / 5,
            hex::encode(outpost_core::log::sha256(token.as_bytes()))
        ));
        tokens.push(token);
    }
    std::fs::write(dir.join("edge.toml"), cfg)?;
    let log = std::fs::File::create(dir.join("edge.log"))?;
    let _edge = Kill(
        Command::new(&a.edge_bin)
            .args(["run", "--config"])
            .arg(dir.join("edge.toml"))
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.tills)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let markets: Value = loop {
        if let Ok(r) = http
            .get(format!("{base}/v1/markets?status=open&limit=200"))
            .send()
            .await
            && let Ok(v) = r.json::<Value>().await
            && v["markets"].as_array().is_some_and(|m| !m.is_empty())
        {
            break v;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "edge node did not start; see {}",
            dir.join("edge.log").display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sels: Vec<(String, String)> = markets["markets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"]["type"] == "match_result")
        .flat_map(|m| m["selections"].as_array().cloned().unwrap_or_default())
        .map(|s| {
            (
                s["selection_id"].as_str().unwrap_or("").to_string(),
                s["price"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    println!(
        "edge up; {} tills for {} s (think time {} ms); load average at start: {}",
        a.tills,
        a.seconds,
        a.think_ms,
        load_average()
    );
    let start = Instant::now();
    let end = start + Duration::from_secs(a.seconds);
    let mut tasks = vec![];
    for (i, token) in tokens.into_iter().enumerate() {
        let (http, base, sels) = (http.clone(), base.clone(), sels.clone());
        let think = Duration::from_millis(a.think_ms);
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            let mut errors = 0u64;
            let mut n = 0usize;
            while Instant::now() < end {
                let (sel, price) = &sels[(i * 7 + n) % sels.len()];
                n += 1;
                let t0 = Instant::now();
                let r = http
                    .post(format!("{base}/v1/shop/bets"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("bench-{i}-{n}"))
                    .json(&json!({"staff_id": "bench", "stake_minor": 200, "currency": "GBP", "legs": [{"selection_id": sel, "price": price}], "age_confirmed": true}))
                    .send()
                    .await;
                let ok = match r {
                    Ok(r) if r.status().as_u16() == 201 => match r.json::<Value>().await {
                        Ok(v) => {
                            let slip = slip_from(&v, sel);
                            !slip.escpos(false).is_empty()
                        }
                        Err(_) => false,
                    },
                    _ => false,
                };
                if ok {
                    lat.push(t0.elapsed());
                } else {
                    errors += 1;
                }
                if !think.is_zero() {
                    tokio::time::sleep(think).await;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = vec![];
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        all.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: usize| {
        all.get((all.len() * p / 100).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "slips: {}  errors: {}  throughput: {:.0} slips/s\nentry→printable slip latency: p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        all.len(),
        errors,
        all.len() as f64 / secs,
        pct(50).as_secs_f64() * 1e3,
        pct(90).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    // The machine's load says how far the figures are from an idle machine's.
    println!(
        "load average at end: {} ({} CPUs)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `/proc/loadavg`'s 1, 5 and 15 minute figures ("n/a" where there is none).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "n/a".into())
}

fn slip_from(v: &Value, sel: &str) -> Slip {
    let t = &v["ticket"];
    Slip {
        shop_id: t["shop_id"].as_str().unwrap_or("").into(),
        shop_name: "Bench shop".into(),
        terminal_id: t["terminal_id"].as_str().unwrap_or("").into(),
        staff_id: t["staff_id"].as_str().unwrap_or("").into(),
        node_id: v["node_id"].as_str().unwrap_or("").into(),
        ticket_id: t["ticket_id"].as_str().unwrap_or("").into(),
        issued_at_ms: t["issued_at_ms"].as_i64().unwrap_or(0),
        expires_at_ms: t["expires_at_ms"].as_i64().unwrap_or(0),
        currency: "GBP".into(),
        minor_digits: 2,
        holder: "cash".into(),
        legs: vec![SlipLeg {
            event: sel.into(),
            market: "Match result".into(),
            selection: sel.into(),
            price: t["bet"]["legs"][0]["price"].as_str().unwrap_or("").into(),
        }],
        stake_minor: t["bet"]["stake_minor"].as_i64().unwrap_or(0),
        potential_minor: t["bet"]["potential_payout_minor"].as_i64().unwrap_or(0),
        record_seq: v["record_seq"].as_u64(),
        record_hash: v["record_hash"].as_str().map(str::to_string),
        terms: "Bench terms.".into(),
        each_way: crate::slip::SlipEachWay::from_ticket(t),
    }
}
