//! Where a commit group's time goes, for finding what bounds bet latency: how long its first
//! request queued before the writer took it, building the group, handing it to the persister,
//! each persist step, releasing the replies, and (after the replies, off their path) putting
//! the group into sled. Summed over a window and logged every
//! `WINDOW` at debug level under the target `commit_timing` (e.g.
//! `RUST_LOG=warn,commit_timing=debug`); when that target is off nothing is summed or logged
//! (the few clock reads per group remain).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(2);

/// A step taking longer than this is counted as slow: the max says how bad a stall was, the
/// count how often it happens (what sets a p99).
const SLOW: Duration = Duration::from_millis(1);

/// One step's running sum, maximum (nanoseconds) and slow count over the current window.
#[derive(Default)]
struct Step {
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
    slow: AtomicU64,
}

impl Step {
    fn add(&self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
        if d > SLOW {
            self.slow.fetch_add(1, Relaxed);
        }
    }
    fn take(&self) -> (u64, u64, u64) {
        (
            self.sum_ns.swap(0, Relaxed),
            self.max_ns.swap(0, Relaxed),
            self.slow.swap(0, Relaxed),
        )
    }
}

/// The steps, in the order a group passes through them.
pub const STEPS: [&str; 9] = [
    "queue", "build", "handoff", "pwait", "encode", "write", "fsync", "release", "apply",
];
pub const QUEUE: usize = 0;
pub const BUILD: usize = 1;
pub const HANDOFF: usize = 2;
pub const PWAIT: usize = 3;
pub const ENCODE: usize = 4;
pub const WRITE: usize = 5;
pub const FSYNC: usize = 6;
pub const RELEASE: usize = 7;
/// After the reply: the applier putting the group into sled (off the reply path).
pub const APPLY: usize = 8;

pub struct CommitTiming {
    enabled: bool,
    steps: [Step; STEPS.len()],
    groups: AtomicU64,
    ops: AtomicU64,
    records: AtomicU64,
    window_start: std::sync::Mutex<Instant>,
}

impl CommitTiming {
    pub fn new() -> CommitTiming {
        CommitTiming {
            enabled: tracing::enabled!(target: "commit_timing", tracing::Level::DEBUG),
            steps: Default::default(),
            groups: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            records: AtomicU64::new(0),
            window_start: std::sync::Mutex::new(Instant::now()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn add(&self, step: usize, d: Duration) {
        if self.enabled {
            self.steps[step].add(d);
        }
    }

    /// Add the time since `since` to `step`; returns now (the start of the next step).
    pub fn lap(&self, step: usize, since: Instant) -> Instant {
        let now = Instant::now();
        self.add(step, now - since);
        now
    }

    /// A group was persisted (called by the persister, which also logs the window).
    pub fn group_done(&self, ops: usize, records: usize) {
        if !self.enabled {
            return;
        }
        self.groups.fetch_add(1, Relaxed);
        self.ops.fetch_add(ops as u64, Relaxed);
        self.records.fetch_add(records as u64, Relaxed);
        let mut start = self.window_start.lock().unwrap_or_else(|p| p.into_inner());
        if start.elapsed() < WINDOW {
            return;
        }
        *start = Instant::now();
        let groups = self.groups.swap(0, Relaxed).max(1);
        let ops = self.ops.swap(0, Relaxed);
        let records = self.records.swap(0, Relaxed);
        let mut line = format!(
            "{groups} groups, {:.1} ops and {:.1} records per group; per group mean/max µs (and how many over 1 ms):",
            ops as f64 / groups as f64,
            records as f64 / groups as f64
        );
        for (name, step) in STEPS.iter().zip(&self.steps) {
            let (sum, max, slow) = step.take();
            line.push_str(&format!(
                " {name} {:.0}/{:.0} ({slow})",
                sum as f64 / groups as f64 / 1e3,
                max as f64 / 1e3
            ));
        }
        tracing::debug!(target: "commit_timing", "{line}");
    }
}

impl Default for CommitTiming {
    fn default() -> Self {
        Self::new()
    }
}
