//! Responsible-gambling limits: deposit, loss and stake limits over rolling day/week/month
//! windows, and the rule that a decrease takes effect at once while an increase (or removal)
//! waits out the jurisdiction's cooling-off period.
//!
//! Activity is kept in per-minute buckets for 31 days. Each bucket also carries running
//! (prefix) totals of everything recorded since the player's first activity, maintained by
//! `record` in O(1), so a window sum is the newest running total minus the one just before the
//! window's first bucket: a binary search, O(log n), with exact integer arithmetic (i128, so
//! the totals cannot overflow). A window includes its whole oldest minute: the rounding can
//! only make a limit stricter, never looser.

use super::ReasonCode;
use crate::jurisdiction::JurisdictionRules;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Longest window (month = 30 days) plus a day of slack.
const KEEP_MS: i64 = 31 * DAY_MS;
/// Recent deposits and bets kept individually for the AML rules.
const RECENT_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    Deposit,
    Loss,
    Stake,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Day,
    Week,
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Month];
    pub fn millis(self) -> i64 {
        match self {
            Window::Day => DAY_MS,
            Window::Week => 7 * DAY_MS,
            Window::Month => 30 * DAY_MS,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Week => "week",
            Window::Month => "month",
        }
    }
}

impl LimitKind {
    pub const ALL: [LimitKind; 3] = [LimitKind::Deposit, LimitKind::Loss, LimitKind::Stake];
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Deposit => "deposit",
            LimitKind::Loss => "loss",
            LimitKind::Stake => "stake",
        }
    }
}

/// Sums of one minute's activity.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct MinuteSums {
    pub minute: i64,
    pub deposit_minor: i64,
    pub stake_minor: i64,
    /// Money returned to the player by settlement (wins, pushes, voids).
    pub return_minor: i64,
    /// Running totals up to and including this minute (deposits, stakes, returns). Derived
    /// data: not serialised (recomputed on load, see `ActivityWire`), not compared.
    #[serde(skip)]
    running: [i128; 3],
}

impl MinuteSums {
    fn values(&self) -> [i128; 3] {
        [
            self.deposit_minor as i128,
            self.stake_minor as i128,
            self.return_minor as i128,
        ]
    }
}

/// Equality is on the recorded figures; the running totals depend on where the history
/// started (a snapshot rebases them) and say nothing more.
impl PartialEq for MinuteSums {
    fn eq(&self, o: &Self) -> bool {
        (
            self.minute,
            self.deposit_minor,
            self.stake_minor,
            self.return_minor,
        ) == (o.minute, o.deposit_minor, o.stake_minor, o.return_minor)
    }
}
impl Eq for MinuteSums {}

/// A player's recent money activity, rebuilt from the log like everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ActivityWire")]
pub struct Activity {
    pub minutes: VecDeque<MinuteSums>,
    /// Individual recent deposits `(at, amount)`, newest last.
    pub recent_deposits: VecDeque<(UnixMillis, i64)>,
    /// Times of recent bets, newest last.
    pub recent_bets: VecDeque<UnixMillis>,
    pub last_deposit_at: Option<UnixMillis>,
    pub last_stake_at: Option<UnixMillis>,
}

/// `Activity` as stored in a state snapshot: the same fields; the running totals are rebuilt
/// on load.
#[derive(Deserialize)]
struct ActivityWire {
    minutes: VecDeque<MinuteSums>,
    recent_deposits: VecDeque<(UnixMillis, i64)>,
    recent_bets: VecDeque<UnixMillis>,
    last_deposit_at: Option<UnixMillis>,
    last_stake_at: Option<UnixMillis>,
}

impl From<ActivityWire> for Activity {
    fn from(w: ActivityWire) -> Activity {
        let mut minutes = w.minutes;
        let mut run = [0i128; 3];
        for m in minutes.iter_mut() {
            let v = m.values();
            for i in 0..3 {
                run[i] += v[i];
            }
            m.running = run;
        }
        Activity {
            minutes,
            recent_deposits: w.recent_deposits,
            recent_bets: w.recent_bets,
            last_deposit_at: w.last_deposit_at,
            last_stake_at: w.last_stake_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Deposit,
    Stake,
    Return,
}

impl Activity {
    pub fn record(&mut self, at: UnixMillis, kind: ActivityKind, amount_minor: i64) {
        let minute = at.0.div_euclid(MINUTE_MS);
        if self.minutes.back().is_none_or(|m| m.minute < minute) {
            let running = self.minutes.back().map_or([0; 3], |m| m.running);
            self.minutes.push_back(MinuteSums {
                minute,
                running,
                ..Default::default()
            });
        }
        // Timestamps are monotonic in the log, so the newest bucket is the right one.
        let b = self.minutes.back_mut().expect("pushed above");
        let (slot, i) = match kind {
            ActivityKind::Deposit => (&mut b.deposit_minor, 0),
            ActivityKind::Stake => (&mut b.stake_minor, 1),
            ActivityKind::Return => (&mut b.return_minor, 2),
        };
        let before = *slot;
        *slot = slot.saturating_add(amount_minor);
        // The running total moves by what the bucket actually moved (after saturation).
        b.running[i] += (*slot as i128) - (before as i128);
        match kind {
            ActivityKind::Deposit => {
                self.recent_deposits.push_back((at, amount_minor));
                self.last_deposit_at = Some(at);
                if self.recent_deposits.len() > RECENT_MAX {
                    self.recent_deposits.pop_front();
                }
            }
            ActivityKind::Stake => {
                self.recent_bets.push_back(at);
                self.last_stake_at = Some(at);
                if self.recent_bets.len() > RECENT_MAX {
                    self.recent_bets.pop_front();
                }
            }
            ActivityKind::Return => {}
        }
        let oldest = (at.0 - KEEP_MS).div_euclid(MINUTE_MS);
        while self.minutes.front().is_some_and(|m| m.minute < oldest) {
            self.minutes.pop_front();
        }
    }

    /// Sums over the window ending at `now`: (deposits, stakes, returns).
    pub fn window_sums(&self, window: Window, now: UnixMillis) -> (i64, i64, i64) {
        let first = (now.0 - window.millis()).div_euclid(MINUTE_MS);
        let i = self.minutes.partition_point(|m| m.minute < first);
        let (Some(newest), Some(oldest)) = (self.minutes.back(), self.minutes.get(i)) else {
            return (0, 0, 0);
        };
        // Running total before the window = the oldest bucket's running total minus itself.
        let (v, r) = (oldest.values(), oldest.running);
        let sum = |k: usize| {
            let s = newest.running[k] - (r[k] - v[k]);
            s.clamp(i64::MIN as i128, i64::MAX as i128) as i64
        };
        (sum(0), sum(1), sum(2))
    }

    /// What counts against a limit of `kind` in the window: deposits, stakes, or net loss
    /// (stakes minus returns, never below zero).
    pub fn used(&self, kind: LimitKind, window: Window, now: UnixMillis) -> i64 {
        let (d, s, r) = self.window_sums(window, now);
        match kind {
            LimitKind::Deposit => d,
            LimitKind::Stake => s,
            LimitKind::Loss => s.saturating_sub(r).max(0),
        }
    }
}

/// A raise (or removal) waiting for its cooling-off period to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLimit {
    pub amount_minor: Option<i64>,
    pub effective_at: UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitEntry {
    pub kind: LimitKind,
    pub window: Window,
    /// The player's own limit in force (None: none set).
    pub amount_minor: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pending: Option<PendingLimit>,
}

/// The limits a player has set. Small (at most nine entries), kept sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerLimits {
    pub entries: Vec<LimitEntry>,
}

/// The limit in force for one kind and window, and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EffectiveLimit {
    pub kind: LimitKind,
    pub window: Window,
    pub amount_minor: Option<i64>,
    /// "player", "default" (jurisdiction default) or "cap" (jurisdiction cap).
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingLimit>,
}

impl PlayerLimits {
    fn entry(&self, kind: LimitKind, window: Window) -> Option<&LimitEntry> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.window == window)
    }

    /// The player's own setting at `now`: a pending raise counts once its time has come.
    fn own(&self, kind: LimitKind, window: Window, now: UnixMillis) -> Option<Option<i64>> {
        let e = self.entry(kind, window)?;
        Some(match e.pending {
            Some(p) if p.effective_at <= now => p.amount_minor,
            _ => e.amount_minor,
        })
    }

    pub fn effective(
        &self,
        kind: LimitKind,
        window: Window,
        now: UnixMillis,
        rules: &JurisdictionRules,
    ) -> EffectiveLimit {
        let (default, cap) = match kind {
            LimitKind::Deposit => (
                rules.limits.deposit_default.get(window),
                rules.limits.deposit_cap.get(window),
            ),
            _ => (None, None),
        };
        let pending = self
            .entry(kind, window)
            .and_then(|e| e.pending)
            .filter(|p| p.effective_at > now);
        let (amount, source) = match self.own(kind, window, now) {
            Some(v) => (v, "player"),
            None => (default, "default"),
        };
        let (amount, source) = match (amount, cap) {
            (None, Some(c)) => (Some(c), "cap"),
            (Some(a), Some(c)) if c < a => (Some(c), "cap"),
            (a, _) => (a, source),
        };
        EffectiveLimit {
            kind,
            window,
            amount_minor: amount,
            source,
            pending,
        }
    }

    /// Record a decided change (`apply` side).
    pub fn set(&mut self, kind: LimitKind, window: Window, change: &LimitChange) {
        let idx = match self
            .entries
            .iter()
            .position(|e| e.kind == kind && e.window == window)
        {
            Some(i) => i,
            None => {
                self.entries.push(LimitEntry {
                    kind,
                    window,
                    amount_minor: None,
                    pending: None,
                });
                self.entries.sort_by_key(|e| (e.kind, e.window));
                self.entries
                    .iter()
                    .position(|e| e.kind == kind && e.window == window)
                    .expect("just inserted")
            }
        };
        let e = &mut self.entries[idx];
        if change.immediate {
            e.amount_minor = change.amount_minor;
            e.pending = None;
        } else {
            // A raise that has already matured becomes the base before the new one waits.
            if let Some(p) = e.pending
                && p.effective_at <= change.requested_at
            {
                e.amount_minor = p.amount_minor;
            }
            e.pending = Some(PendingLimit {
                amount_minor: change.amount_minor,
                effective_at: change.effective_at,
            });
        }
    }
}

/// A limit change as decided: immediate (a decrease) or pending (a raise or removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitChange {
    pub amount_minor: Option<i64>,
    pub immediate: bool,
    pub requested_at: UnixMillis,
    pub effective_at: UnixMillis,
}

/// Decide a player's request to set (`Some`) or remove (`None`) a limit.
pub fn decide_limit_change(
    limits: &PlayerLimits,
    rules: &JurisdictionRules,
    kind: LimitKind,
    window: Window,
    requested: Option<i64>,
    now: UnixMillis,
) -> Result<LimitChange, (ReasonCode, String)> {
    if requested.is_some_and(|v| v < 1) {
        return Err((
            ReasonCode::LimitInvalid,
            "a limit must be at least 1 minor unit".into(),
        ));
    }
    if kind == LimitKind::Deposit
        && let Some(cap) = rules.limits.deposit_cap.get(window)
    {
        match requested {
            None => {
                return Err((
                    ReasonCode::LimitAboveCap,
                    format!(
                        "{} caps {} deposits at {cap}; the limit cannot be removed",
                        rules.code,
                        window.as_str()
                    ),
                ));
            }
            Some(v) if v > cap => {
                return Err((
                    ReasonCode::LimitAboveCap,
                    format!(
                        "{} deposit limit {v} exceeds the {} cap {cap}",
                        window.as_str(),
                        rules.code
                    ),
                ));
            }
            _ => {}
        }
    }
    let current = limits.effective(kind, window, now, rules).amount_minor;
    let decrease = match (requested, current) {
        (Some(r), Some(c)) => r <= c,
        (Some(_), None) => true,
        (None, None) => true,
        (None, Some(_)) => false,
    };
    let cooling = rules.limits.increase_cooling_off_hours as i64 * HOUR_MS;
    Ok(LimitChange {
        amount_minor: requested,
        immediate: decrease || cooling == 0,
        requested_at: now,
        effective_at: if decrease {
            now
        } else {
            UnixMillis(now.0 + cooling)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::test_rules;

    #[test]
    fn windows_roll() {
        let mut a = Activity::default();
        let t0 = UnixMillis(1_700_000_000_000);
        a.record(t0, ActivityKind::Deposit, 100);
        a.record(UnixMillis(t0.0 + 2 * DAY_MS), ActivityKind::Deposit, 50);
        let now = UnixMillis(t0.0 + 2 * DAY_MS + 1);
        assert_eq!(a.used(LimitKind::Deposit, Window::Day, now), 50);
        assert_eq!(a.used(LimitKind::Deposit, Window::Week, now), 150);
        let later = UnixMillis(t0.0 + 40 * DAY_MS);
        assert_eq!(a.used(LimitKind::Deposit, Window::Month, later), 0);
    }

    /// The running totals give exactly what summing the buckets of the window gives, for
    /// every window and any `now`, including after old buckets were dropped and after a
    /// snapshot round trip (which rebases the totals).
    #[test]
    fn running_totals_match_a_walk_over_the_buckets() {
        fn walk(a: &Activity, w: Window, now: UnixMillis) -> (i64, i64, i64) {
            let first = (now.0 - w.millis()).div_euclid(MINUTE_MS);
            a.minutes
                .iter()
                .filter(|m| m.minute >= first)
                .fold((0i64, 0i64, 0i64), |o, m| {
                    (
                        o.0.saturating_add(m.deposit_minor),
                        o.1.saturating_add(m.stake_minor),
                        o.2.saturating_add(m.return_minor),
                    )
                })
        }
        let mut a = Activity::default();
        let mut t = 1_700_000_000_000i64;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += (x % (7 * HOUR_MS as u64)) as i64;
            let kind = [
                ActivityKind::Deposit,
                ActivityKind::Stake,
                ActivityKind::Return,
            ][(x >> 20) as usize % 3];
            let amount = if i == 777 {
                i64::MAX
            } else {
                (x >> 32) as i64 % 1_000_000
            };
            a.record(UnixMillis(t), kind, amount);
            if i % 97 == 0 {
                let back: Activity =
                    serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
                assert_eq!(back, a);
                a = back;
            }
            for w in Window::ALL {
                for ahead in [0, MINUTE_MS, 3 * DAY_MS, 40 * DAY_MS] {
                    let now = UnixMillis(t + ahead);
                    assert_eq!(a.window_sums(w, now), walk(&a, w, now), "{i} {w:?} {ahead}");
                }
            }
        }
    }

    #[test]
    fn loss_is_stakes_minus_returns_floored() {
        let mut a = Activity::default();
        let t = UnixMillis(1_700_000_000_000);
        a.record(t, ActivityKind::Stake, 100);
        a.record(t, ActivityKind::Return, 250);
        assert_eq!(a.used(LimitKind::Loss, Window::Day, t), 0);
        a.record(t, ActivityKind::Stake, 400);
        assert_eq!(a.used(LimitKind::Loss, Window::Day, t), 250);
    }

    #[test]
    fn decrease_now_increase_after_cooling_off() {
        let rules = test_rules();
        let mut l = PlayerLimits::default();
        let t = UnixMillis(1_700_000_000_000);
        let c =
            decide_limit_change(&l, &rules, LimitKind::Stake, Window::Day, Some(500), t).unwrap();
        assert!(c.immediate);
        l.set(LimitKind::Stake, Window::Day, &c);
        let c =
            decide_limit_change(&l, &rules, LimitKind::Stake, Window::Day, Some(900), t).unwrap();
        assert!(!c.immediate);
        l.set(LimitKind::Stake, Window::Day, &c);
        let eff = |at| {
            l.effective(LimitKind::Stake, Window::Day, at, &rules)
                .amount_minor
        };
        assert_eq!(eff(t), Some(500));
        assert_eq!(eff(UnixMillis(t.0 + 24 * HOUR_MS)), Some(900));
        // Removing a limit is a raise: it waits too.
        let c = decide_limit_change(&l, &rules, LimitKind::Stake, Window::Day, None, t).unwrap();
        assert!(!c.immediate);
    }

    #[test]
    fn cap_refuses_and_applies_when_unset() {
        let mut rules = test_rules();
        rules.limits.deposit_cap.month_minor = Some(100_000);
        let l = PlayerLimits::default();
        let t = UnixMillis(0);
        let e = decide_limit_change(
            &l,
            &rules,
            LimitKind::Deposit,
            Window::Month,
            Some(100_001),
            t,
        );
        assert_eq!(e.unwrap_err().0, ReasonCode::LimitAboveCap);
        let e = decide_limit_change(&l, &rules, LimitKind::Deposit, Window::Month, None, t);
        assert_eq!(e.unwrap_err().0, ReasonCode::LimitAboveCap);
        let eff = l.effective(LimitKind::Deposit, Window::Month, t, &rules);
        assert_eq!((eff.amount_minor, eff.source), (Some(100_000), "cap"));
    }
}
