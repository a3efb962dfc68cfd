//! `[reconcile]` in the hub's TOML: the schedule and the thresholds of
//! `docs/reconciliation.md`. Every field is optional; the defaults are documented there.

use super::Thresholds;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReconcile {
    enabled: Option<bool>,
    every_minutes: Option<i64>,
    delay_minutes: Option<i64>,
    minor_max_minor: Option<i64>,
    major_max_minor: Option<i64>,
    audit_minor_after_minutes: Option<i64>,
    audit_major_after_minutes: Option<i64>,
    audit_uncut_critical_after_minutes: Option<i64>,
    settle_grace_minutes: Option<i64>,
}

/// Validated `[reconcile]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// Run the scheduler inside the hub (default true).
    pub enabled: bool,
    /// How often the scheduler runs (default 60: hourly).
    pub every_minutes: i64,
    /// How long after the top of the hour the run starts, so late replication is in (default 5).
    pub delay_minutes: i64,
    pub thresholds: Thresholds,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            enabled: true,
            every_minutes: 60,
            delay_minutes: 5,
            thresholds: Thresholds::default(),
        }
    }
}

impl ReconcileConfig {
    pub(crate) fn from_raw(raw: Option<RawReconcile>) -> Result<ReconcileConfig, (String, String)> {
        let raw = raw.unwrap_or_default();
        let d = ReconcileConfig::default();
        let t = d.thresholds;
        let minutes = |name: &str,
                       v: Option<i64>,
                       default_ms: i64,
                       lo: i64,
                       hi: i64|
         -> Result<i64, (String, String)> {
            match v {
                None => Ok(default_ms),
                Some(m) if (lo..=hi).contains(&m) => Ok(m * 60_000),
                Some(_) => Err((
                    format!("reconcile.{name}"),
                    format!("must be between {lo} and {hi} minutes"),
                )),
            }
        };
        let money = |name: &str, v: Option<i64>, default: i64| -> Result<i64, (String, String)> {
            match v {
                None => Ok(default),
                Some(m) if m >= 0 => Ok(m),
                Some(_) => Err((format!("reconcile.{name}"), "must not be negative".into())),
            }
        };
        let thresholds = Thresholds {
            minor_max_minor: money("minor_max_minor", raw.minor_max_minor, t.minor_max_minor)?,
            major_max_minor: money("major_max_minor", raw.major_max_minor, t.major_max_minor)?,
            audit_minor_after_ms: minutes(
                "audit_minor_after_minutes",
                raw.audit_minor_after_minutes,
                t.audit_minor_after_ms,
                1,
                10_080,
            )?,
            audit_major_after_ms: minutes(
                "audit_major_after_minutes",
                raw.audit_major_after_minutes,
                t.audit_major_after_ms,
                1,
                10_080,
            )?,
            audit_uncut_critical_after_ms: minutes(
                "audit_uncut_critical_after_minutes",
                raw.audit_uncut_critical_after_minutes,
                t.audit_uncut_critical_after_ms,
                1,
                10_080,
            )?,
            settle_grace_ms: minutes(
                "settle_grace_minutes",
                raw.settle_grace_minutes,
                t.settle_grace_ms,
                0,
                10_080,
            )?,
        };
        if thresholds.major_max_minor < thresholds.minor_max_minor {
            return Err((
                "reconcile.major_max_minor".into(),
                "must be at least minor_max_minor".into(),
            ));
        }
        if thresholds.audit_major_after_ms < thresholds.audit_minor_after_ms {
            return Err((
                "reconcile.audit_major_after_minutes".into(),
                "must be at least audit_minor_after_minutes".into(),
            ));
        }
        Ok(ReconcileConfig {
            enabled: raw.enabled.unwrap_or(true),
            every_minutes: minutes("every_minutes", raw.every_minutes, 60 * 60_000, 1, 60)?
                / 60_000,
            delay_minutes: minutes("delay_minutes", raw.delay_minutes, 5 * 60_000, 0, 59)? / 60_000,
            thresholds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReconcileConfig, (String, String)> {
        ReconcileConfig::from_raw(Some(toml::from_str::<RawReconcile>(text).unwrap()))
    }

    #[test]
    fn defaults_overrides_and_errors_name_the_field() {
        assert_eq!(
            ReconcileConfig::from_raw(None).unwrap(),
            ReconcileConfig::default()
        );
        let c = parse("every_minutes = 15\nminor_max_minor = 50\naudit_major_after_minutes = 120\nenabled = false").unwrap();
        assert_eq!((c.every_minutes, c.enabled), (15, false));
        assert_eq!(c.thresholds.minor_max_minor, 50);
        assert_eq!(c.thresholds.audit_major_after_ms, 120 * 60_000);
        for (text, field) in [
            ("every_minutes = 0", "reconcile.every_minutes"),
            ("every_minutes = 61", "reconcile.every_minutes"),
            ("delay_minutes = 60", "reconcile.delay_minutes"),
            ("minor_max_minor = -1", "reconcile.minor_max_minor"),
            (
                "minor_max_minor = 500\nmajor_max_minor = 100",
                "reconcile.major_max_minor",
            ),
            (
                "audit_minor_after_minutes = 90",
                "reconcile.audit_major_after_minutes",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err().0, field, "{text}");
        }
        assert!(
            toml::from_str::<RawReconcile>("every_minute = 5").is_err(),
            "unknown keys are refused"
        );
    }
}
