//! The hub's reconciliation scheduler: every `every_minutes` (hourly by default), at
//! `delay_minutes` past the boundary, it reconciles the last complete hour (whose window also
//! re-checks the hour before it), re-reading that window's audit objects from the store.
//! A failed run is logged and retried at the next tick; nothing is skipped silently.

use super::config::ReconcileConfig;
use super::run::{Quiet, Trigger, reconcile_hour};
use super::window::Hour;
use crate::audit::AuditStore;
use crate::store::{HubState, now_ms};
use outpost_core::time::UnixMillis;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Milliseconds from `now` to the next tick.
pub fn until_next_tick(cfg: &ReconcileConfig, now_ms: i64) -> i64 {
    let period = cfg.every_minutes.max(1) * 60_000;
    let delay = cfg.delay_minutes * 60_000;
    let next = (now_ms - delay).div_euclid(period) * period + period + delay;
    next - now_ms
}

pub async fn run(
    state: HubState,
    store: Option<AuditStore>,
    cfg: ReconcileConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    if !cfg.enabled {
        tracing::info!("reconciliation scheduler disabled in [reconcile]");
        return;
    }
    loop {
        let wait = until_next_tick(&cfg, now_ms().0).max(0) as u64;
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
        let now = now_ms().0;
        let hour = Hour::containing(UnixMillis(now)).previous();
        match reconcile_hour(
            &state,
            store.as_ref(),
            hour,
            Trigger::Scheduled,
            cfg.thresholds,
            now,
            Arc::new(Quiet),
        )
        .await
        {
            Ok(s) => {
                tracing::info!(hour = %s.hour, reports = s.reports.len(), suspended = s.suspended_events.len(), "reconciliation run stored")
            }
            Err(e) => {
                tracing::error!(hour = %hour, error = %e, "reconciliation run failed; retried at the next tick")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_hourly_after_the_delay() {
        let cfg = ReconcileConfig::default();
        let h = 3_600_000;
        // 13:00 → 13:05; 13:05 exactly → 14:05; 13:30 → 14:05.
        assert_eq!(until_next_tick(&cfg, 13 * h), 5 * 60_000);
        assert_eq!(until_next_tick(&cfg, 13 * h + 5 * 60_000), h);
        assert_eq!(until_next_tick(&cfg, 13 * h + 30 * 60_000), 35 * 60_000);
    }
}
