//! The documented thresholds that class a discrepancy (see `docs/reconciliation.md`, which
//! mirrors this file). Configurable under `[reconcile]` in the hub's TOML; the defaults are
//! what a UK operator's finance team would start from.

use super::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// A money difference up to this (inclusive) is minor: rounding-sized, e.g. £1.00.
    pub minor_max_minor: i64,
    /// Up to this (inclusive) is major, above it critical: e.g. £1,000.00.
    pub major_max_minor: i64,
    /// An audit object still waiting in the outbox this long is a minor finding ...
    pub audit_minor_after_ms: i64,
    /// ... and this long a major one (S3 down for hours loses nothing, but ops must know).
    pub audit_major_after_ms: i64,
    /// A committed record not yet cut into an audit segment after this long is critical: the
    /// cutter should have queued it within `segment_max_age_ms`.
    pub audit_uncut_critical_after_ms: i64,
    /// A bet whose events all have results and that is still unsettled after this long.
    pub settle_grace_ms: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            minor_max_minor: 100,
            major_max_minor: 100_000,
            audit_minor_after_ms: 15 * 60_000,
            audit_major_after_ms: 60 * 60_000,
            audit_uncut_critical_after_ms: 15 * 60_000,
            settle_grace_ms: 5 * 60_000,
        }
    }
}

impl Thresholds {
    /// Severity of a money difference of `amount_minor` (sign ignored), never below `floor`.
    pub fn by_amount(&self, amount_minor: i64, floor: Severity) -> Severity {
        let a = amount_minor.unsigned_abs();
        let s = if a <= self.minor_max_minor.unsigned_abs() {
            Severity::Minor
        } else if a <= self.major_max_minor.unsigned_abs() {
            Severity::Major
        } else {
            Severity::Critical
        };
        s.max(floor)
    }

    /// Severity of an audit object that has waited `waited_ms` in the outbox, if any.
    pub fn audit_wait(&self, waited_ms: i64) -> Option<Severity> {
        if waited_ms >= self.audit_major_after_ms {
            Some(Severity::Major)
        } else if waited_ms >= self.audit_minor_after_ms {
            Some(Severity::Minor)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_documented_thresholds() {
        let t = Thresholds::default();
        assert_eq!(t.by_amount(1, Severity::Minor), Severity::Minor);
        assert_eq!(t.by_amount(-100, Severity::Minor), Severity::Minor);
        assert_eq!(t.by_amount(101, Severity::Minor), Severity::Major);
        assert_eq!(t.by_amount(100_000, Severity::Minor), Severity::Major);
        assert_eq!(t.by_amount(100_001, Severity::Minor), Severity::Critical);
        assert_eq!(t.by_amount(i64::MIN, Severity::Minor), Severity::Critical);
        assert_eq!(t.by_amount(5, Severity::Major), Severity::Major);
        assert_eq!(t.audit_wait(14 * 60_000), None);
        assert_eq!(t.audit_wait(15 * 60_000), Some(Severity::Minor));
        assert_eq!(t.audit_wait(60 * 60_000), Some(Severity::Major));
    }
}
