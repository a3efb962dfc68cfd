//! The simulation as tests: many seeds (2,000 by default), a replay switch for one seed, and
//! proof that the checker catches deliberately injected bugs.
//!
//! - `OUTPOST_SIM_SEED=1234 cargo test -p outpost-sync --lib sim::tests::seeds -- --nocapture`
//!   replays seed 1234 alone, printing every fault and session error as it happens.
//! - `OUTPOST_SIM_SEEDS=20000` runs more seeds.

use super::{Bug, SimConfig, SimFailure, SimStats, run};
use std::sync::Mutex;

const DEFAULT_SEEDS: u64 = 2000;

/// `run`, with a panic anywhere inside turned into a failure that names the seed.
fn run_caught(seed: u64, cfg: SimConfig) -> Result<SimStats, SimFailure> {
    std::panic::catch_unwind(|| run(seed, cfg)).unwrap_or_else(|p| {
        let message = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        Err(SimFailure {
            seed,
            step: 0,
            at_ms: 0,
            message: format!("panicked: {message}"),
        })
    })
}

/// Run seeds `1..=count` on all cores; returns the failures and the summed statistics.
fn run_many(count: u64, cfg: SimConfig) -> (Vec<SimFailure>, SimStats) {
    let next = Mutex::new(1u64);
    let out = Mutex::new((Vec::new(), SimStats::default()));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let seed = {
                        let mut n = next.lock().unwrap();
                        let seed = *n;
                        *n += 1;
                        seed
                    };
                    if seed > count {
                        return;
                    }
                    let r = run_caught(seed, cfg);
                    let mut o = out.lock().unwrap();
                    match r {
                        Ok(st) => o.1.add(&st),
                        Err(f) => o.0.push(f),
                    }
                }
            });
        }
    });
    let (mut failures, stats) = out.into_inner().unwrap();
    failures.sort_by_key(|f| f.seed);
    (failures, stats)
}

#[test]
fn seeds() {
    if let Ok(seed) = std::env::var("OUTPOST_SIM_SEED") {
        let seed: u64 = seed.parse().expect("OUTPOST_SIM_SEED must be a number");
        let cfg = SimConfig {
            trace: true,
            ..SimConfig::default()
        };
        match run_caught(seed, cfg) {
            Ok(st) => eprintln!("seed {seed} passed: {st:?}"),
            Err(f) => panic!("{f}"),
        }
        return;
    }
    let count = std::env::var("OUTPOST_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    let started = std::time::Instant::now();
    let (failures, st) = run_many(count, SimConfig::default());
    eprintln!(
        "simulated {count} seeds in {:?}: {} records and {} settlements replicated exactly once over {} sessions; faults: {} edge crashes, {} hub crashes, {} partitions, {} resets, {} session errors; messages: {} sent, {} lost, {} duplicated, {} reordered, {} delayed, {} dropped by partitions; max reported lag {} ms; {} s simulated",
        started.elapsed(),
        st.records,
        st.settlements,
        st.sessions,
        st.edge_crashes,
        st.hub_crashes,
        st.partitions,
        st.resets,
        st.session_errors,
        st.net.sent,
        st.net.lost,
        st.net.duplicated,
        st.net.reordered,
        st.net.delayed,
        st.net.partitioned,
        st.max_lag_ms,
        st.sim_ms / 1000
    );
    for f in &failures {
        eprintln!("FAILED {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed; first: {}",
        failures.len(),
        failures[0]
    );
    // The faults really happened (a simulation that injects nothing proves nothing).
    if count >= 200 {
        assert!(
            st.edge_crashes > 20
                && st.hub_crashes > 20
                && st.partitions > 20
                && st.resets > 20
                && st.net.lost > 20
                && st.net.duplicated > 20
                && st.net.reordered > 20
                && st.net.delayed > 20
                && st.session_errors > 100,
            "{st:?}"
        );
    }
}

/// The checker must catch a hub that applies a record twice.
#[test]
fn checker_catches_a_hub_that_commits_a_record_twice() {
    let cfg = SimConfig {
        bug: Some(Bug::HubStaleHeadAfterRestart),
        trace: false,
    };
    let (failures, _) = run_many(300, cfg);
    assert!(
        !failures.is_empty(),
        "injected bug went unnoticed in 300 seeds"
    );
    let f = &failures[0];
    assert!(f.message.contains("reached the hub twice"), "{f}");
    assert!(
        f.to_string()
            .contains(&format!("OUTPOST_SIM_SEED={} cargo test", f.seed))
    );
}

/// The checker must catch an edge whose wallet credit and downstream position are not
/// written atomically (a crash in between credits the settlement twice).
#[test]
fn checker_catches_an_edge_that_can_credit_a_settlement_twice() {
    let cfg = SimConfig {
        bug: Some(Bug::EdgeWalletNotAtomic),
        trace: false,
    };
    let (failures, _) = run_many(300, cfg);
    assert!(
        !failures.is_empty(),
        "injected bug went unnoticed in 300 seeds"
    );
    assert!(
        failures.iter().all(|f| f.message.contains("wallet")),
        "{}",
        failures[0]
    );
}
