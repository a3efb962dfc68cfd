//! When the writer emits a balance-snapshot record (kind 56, payload in
//! `outpost_core::edge::balance_snapshot`): after every `every_records` records, or once
//! `every_minutes` have passed since the last snapshot, whichever comes first, and only if
//! something was logged since (an idle node does not fill its log with identical snapshots).
//!
//! The clock lives in the writer thread. A snapshot is appended at the end of a commit group,
//! so it is the sealed record of that group and the hub can check it on its own; the node's
//! ticker (see `node.rs`) wakes the writer so that the time rule fires on a quiet node too.
//! After a restart the clock starts afresh: at worst one snapshot comes early.

use outpost_core::time::UnixMillis;
use serde::Deserialize;

/// `[balance_snapshot]` in the node's TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawPolicy")]
pub struct BalanceSnapshotPolicy {
    pub every_records: u64,
    pub every_minutes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default = "default_records")]
    every_records: u64,
    #[serde(default = "default_minutes")]
    every_minutes: u64,
}

fn default_records() -> u64 {
    10_000
}
fn default_minutes() -> u64 {
    15
}

impl TryFrom<RawPolicy> for BalanceSnapshotPolicy {
    type Error = String;
    fn try_from(r: RawPolicy) -> Result<Self, String> {
        if r.every_records == 0 {
            return Err("balance_snapshot.every_records must be at least 1".into());
        }
        // At least hourly: the hub reconciles every hour and needs a fresh snapshot to do so.
        if !(1..=60).contains(&r.every_minutes) {
            return Err("balance_snapshot.every_minutes must be between 1 and 60".into());
        }
        Ok(BalanceSnapshotPolicy {
            every_records: r.every_records,
            every_minutes: r.every_minutes,
        })
    }
}

impl Default for BalanceSnapshotPolicy {
    fn default() -> Self {
        BalanceSnapshotPolicy {
            every_records: default_records(),
            every_minutes: default_minutes(),
        }
    }
}

/// The writer's snapshot clock.
#[derive(Debug, Clone)]
pub struct SnapshotClock {
    policy: BalanceSnapshotPolicy,
    records_since: u64,
    last_at: UnixMillis,
}

impl SnapshotClock {
    pub fn new(policy: BalanceSnapshotPolicy, now: UnixMillis) -> SnapshotClock {
        SnapshotClock {
            policy,
            records_since: 0,
            last_at: now,
        }
    }
    /// `n` records (not snapshots) were logged.
    pub fn note(&mut self, n: u64) {
        self.records_since = self.records_since.saturating_add(n);
    }
    pub fn due(&self, now: UnixMillis) -> bool {
        let period_ms = (self.policy.every_minutes as i64).saturating_mul(60_000);
        self.records_since > 0
            && (self.records_since >= self.policy.every_records
                || now.0.saturating_sub(self.last_at.0) >= period_ms)
    }
    pub fn done(&mut self, now: UnixMillis) {
        self.records_since = 0;
        self.last_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_by_count_or_time_and_never_when_idle() {
        let p = BalanceSnapshotPolicy {
            every_records: 3,
            every_minutes: 1,
        };
        let mut c = SnapshotClock::new(p, UnixMillis(0));
        assert!(!c.due(UnixMillis(10 * 60_000)), "idle: nothing to state");
        c.note(2);
        assert!(!c.due(UnixMillis(59_999)));
        assert!(c.due(UnixMillis(60_000)), "time rule");
        c.note(1);
        assert!(c.due(UnixMillis(1)), "count rule");
        c.done(UnixMillis(5));
        assert!(!c.due(UnixMillis(1_000_000)));
    }

    #[test]
    fn config_is_validated() {
        #[derive(Deserialize)]
        struct W {
            balance_snapshot: BalanceSnapshotPolicy,
        }
        let ok: W = toml::from_str("[balance_snapshot]\nevery_records = 5\n").unwrap();
        assert_eq!(
            ok.balance_snapshot,
            BalanceSnapshotPolicy {
                every_records: 5,
                every_minutes: 15
            }
        );
        for bad in [
            "every_records = 0",
            "every_minutes = 0",
            "every_minutes = 61",
            "every_minute = 5",
        ] {
            let e = toml::from_str::<W>(&format!("[balance_snapshot]\n{bad}\n"))
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("balance_snapshot") || e.contains("every_minute"),
                "{e}"
            );
        }
    }
}
