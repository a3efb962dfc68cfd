//! Replication lag in time, per node, from the edges' heartbeats. Each heartbeat carries the
//! age (on the edge's own clock) of the edge's oldest record the hub has not acknowledged; the
//! hub keeps the latest report in memory (it is re-sent every second, so nothing is lost on a
//! restart) and ages it by the time since it arrived.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct LagBoard {
    /// node id → (reported lag in ms, hub time of the report in ms).
    reports: Mutex<HashMap<String, (i64, i64)>>,
}

impl LagBoard {
    pub fn report(&self, node: &str, lag_ms: i64, now_ms: i64) {
        let mut m = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        m.insert(node.to_owned(), (lag_ms.max(0), now_ms));
    }

    /// The node's lag in ms at hub time `now_ms`, given how many records the hub knows it
    /// lacks. No records behind: 0. Otherwise the last reported lag plus the time since that
    /// report (while the link is down no report arrives and the lag keeps growing, as it does
    /// for real); with no report yet, the time since the last contact is unknown: 0.
    pub fn lag_ms(&self, node: &str, lag_records: u64, now_ms: i64) -> i64 {
        if lag_records == 0 {
            return 0;
        }
        let m = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        m.get(node).map_or(0, |(lag, at)| {
            lag.saturating_add(now_ms.saturating_sub(*at).max(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_zero_when_caught_up_and_ages_while_silent() {
        let b = LagBoard::default();
        assert_eq!(b.lag_ms("gb-1", 5, 1000), 0, "no report yet");
        b.report("gb-1", 250, 1000);
        assert_eq!(b.lag_ms("gb-1", 5, 1000), 250);
        assert_eq!(b.lag_ms("gb-1", 5, 4000), 3250, "no news for 3 s");
        assert_eq!(b.lag_ms("gb-1", 0, 4000), 0, "caught up");
        b.report("gb-1", -7, 5000);
        assert_eq!(b.lag_ms("gb-1", 1, 5000), 0, "never negative");
    }
}
