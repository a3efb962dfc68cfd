//! Benchmark: parsing real UOF `odds_change` messages, Betfair stream lines, and applying UOF
//! messages to the odds book (parse + price + state), single thread.
//! Run: `cargo bench -p outpost-core --bench feed_parse`.

use outpost_core::feed::book::{BookConfig, OddsBook};
use outpost_core::feed::{betfair, uof};
use outpost_core::ids::Jurisdiction;
use outpost_core::pricing::margin::MarginMethod;
use outpost_core::pricing::policy::{MarginTarget, PricingPolicy};
use outpost_core::time::UnixMillis;
use std::hint::black_box;
use std::time::Instant;

fn fixture(p: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../fixtures/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), so the rate per CPU-second
/// can be reported even when the shared machine is busy; `None` elsewhere.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn rate(name: &str, n: usize, bytes: usize, f: impl FnMut(usize)) {
    let mut f = f;
    for i in 0..n / 10 {
        f(i); // warm up
    }
    let (t, c0) = (Instant::now(), cpu_ns());
    for i in 0..n {
        f(i);
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => {
            format!("{:>10.0} msgs/CPU-s", n as f64 / ((b - a) as f64 / 1e9))
        }
        _ => String::new(),
    };
    println!(
        "{name:<58} {:>10.0} msgs/s  {:>7.1} MB/s  {cpu}",
        n as f64 / s,
        (n * bytes) as f64 / s / 1e6
    );
}

/// The 1/5/15-minute load average (Linux), printed with the figures: on a shared machine the
/// wall-clock rates mean little without it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    println!("load average at the start (1/5/15 min): {}", load_average());
    println!("target: >= 50,000 real UOF odds_change msgs/s (first row)");
    let real = fixture("uof/go-uof-sdk/odds_change-0.xml");
    let vhc = fixture("uof/go-uof-sdk/odds_change-vhc.xml");
    let sample = fixture("uof/schema-samples/odds_change.xml");
    for (name, msg) in [
        (
            "UOF odds_change-0.xml (real capture, 9 markets, 6.9 KB)",
            &real,
        ),
        ("UOF odds_change-vhc.xml (real capture, 10.4 KB)", &vhc),
        ("UOF schema-sample odds_change.xml (1.5 KB)", &sample),
    ] {
        rate(name, 200_000, msg.len(), |_| {
            black_box(uof::parse(black_box(msg)).unwrap());
        });
    }
    let lines: Vec<Vec<u8>> = fixture("betfair/flumine/1.197931751")
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect();
    let avg = lines.iter().map(|l| l.len()).sum::<usize>() / lines.len();
    rate(
        "Betfair mcm lines (flumine PLACE market, full ladders)",
        100_000,
        avg,
        |i| {
            black_box(betfair::parse(black_box(&lines[i % lines.len()])).unwrap());
        },
    );
    let mut book = OddsBook::new(BookConfig {
        recovery_retry_ms: None,
        alive_timeout_ms: i64::MAX / 4,
        uof_products: vec![1],
        policy: PricingPolicy {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            default: MarginTarget {
                margin_bp: 500,
                method: MarginMethod::Shin,
            },
            by_class: Default::default(),
            max_price_milli: 500_000,
        },
    });
    book.ingest_uof(
        br#"<snapshot_complete product="1" timestamp="1" request_id="1"/>"#,
        UnixMillis(0),
    )
    .unwrap();
    let msgs: Vec<Vec<u8>> = (0..200_000u64)
        .map(|i| {
            let (h, d, a) = if (i / 50) % 2 == 0 { ("2.10", "3.40", "3.60") } else { ("2.60", "3.20", "2.80") };
            format!(r#"<odds_change product="1" event_id="sr:match:{}" timestamp="{}"><odds><market id="1" status="1"><outcome id="1" odds="{h}" active="1"/><outcome id="2" odds="{d}" active="1"/><outcome id="3" odds="{a}" active="1"/></market></odds></odds_change>"#, 1000 + i % 50, 10 + i).into_bytes()
        })
        .collect();
    let (t, c0) = (Instant::now(), cpu_ns());
    let mut changes = 0;
    for m in &msgs {
        changes += book.ingest_uof(m, UnixMillis(0)).unwrap().changes.len();
    }
    let s = t.elapsed().as_secs_f64();
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => format!(
            "{:.0} msgs/CPU-s, ",
            msgs.len() as f64 / ((b - a) as f64 / 1e9)
        ),
        _ => String::new(),
    };
    println!(
        "{:<58} {:>10.0} msgs/s  ({cpu}{changes} changes, Shin margin, ladder)",
        "odds book: ingest UOF 1X2 odds_change (parse+price+state)",
        msgs.len() as f64 / s
    );
    println!("load average at the end (1/5/15 min): {}", load_average());
}
