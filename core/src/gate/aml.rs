//! Anti-money-laundering rules. Each rule that fires yields a hit with the action the
//! jurisdiction's rules assign to it (refuse, or accept and flag); every hit becomes an
//! `AmlFlagged` log record, the input to suspicious-activity reporting.

use super::limits::Activity;
use crate::jurisdiction::{AmlAction, AmlRules};
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

const HOUR_MS: i64 = 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmlRule {
    LargeBet,
    LargeDeposit,
    Velocity,
    Structuring,
    NewAccountLargeBet,
    WithdrawalWithoutPlay,
}

impl AmlRule {
    pub fn as_str(self) -> &'static str {
        match self {
            AmlRule::LargeBet => "large_bet",
            AmlRule::LargeDeposit => "large_deposit",
            AmlRule::Velocity => "velocity",
            AmlRule::Structuring => "structuring",
            AmlRule::NewAccountLargeBet => "new_account_large_bet",
            AmlRule::WithdrawalWithoutPlay => "withdrawal_without_play",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmlHit {
    pub rule: AmlRule,
    pub action: AmlAction,
    pub detail: String,
}

pub fn check_bet(
    a: &AmlRules,
    activity: &Activity,
    registered_at: UnixMillis,
    stake_minor: i64,
    now: UnixMillis,
) -> Vec<AmlHit> {
    let mut hits = Vec::new();
    if stake_minor >= a.due_diligence_minor {
        hits.push(AmlHit {
            rule: AmlRule::LargeBet,
            action: a.due_diligence_action,
            detail: format!(
                "stake {stake_minor} >= due-diligence threshold {}",
                a.due_diligence_minor
            ),
        });
    }
    let minute_ago = now.0 - 60_000;
    let recent = activity
        .recent_bets
        .iter()
        .rev()
        .take_while(|t| t.0 > minute_ago)
        .count();
    if recent + 1 > a.velocity_bets_per_minute_max as usize {
        hits.push(AmlHit {
            rule: AmlRule::Velocity,
            action: a.velocity_action,
            detail: format!(
                "{} bets within 60 s, maximum {}",
                recent + 1,
                a.velocity_bets_per_minute_max
            ),
        });
    }
    if now.0 - registered_at.0 < a.new_account_hours as i64 * HOUR_MS
        && stake_minor >= a.new_account_stake_minor
    {
        hits.push(AmlHit {
            rule: AmlRule::NewAccountLargeBet,
            action: a.new_account_action,
            detail: format!(
                "stake {stake_minor} within {} h of registration (threshold {})",
                a.new_account_hours, a.new_account_stake_minor
            ),
        });
    }
    hits
}

pub fn check_deposit(
    a: &AmlRules,
    activity: &Activity,
    amount_minor: i64,
    now: UnixMillis,
) -> Vec<AmlHit> {
    let mut hits = Vec::new();
    if amount_minor >= a.due_diligence_minor {
        hits.push(AmlHit {
            rule: AmlRule::LargeDeposit,
            action: a.due_diligence_action,
            detail: format!(
                "deposit {amount_minor} >= due-diligence threshold {}",
                a.due_diligence_minor
            ),
        });
    }
    let floor = a.due_diligence_minor as i128 * a.structuring_band_percent as i128 / 100;
    let near = |v: i64| (v as i128) >= floor && v < a.due_diligence_minor;
    if near(amount_minor) {
        let since = now.0 - a.structuring_window_hours as i64 * HOUR_MS;
        let n = 1 + activity
            .recent_deposits
            .iter()
            .filter(|(t, v)| t.0 > since && near(*v))
            .count();
        if n >= a.structuring_count as usize {
            hits.push(AmlHit {
                rule: AmlRule::Structuring,
                action: a.structuring_action,
                detail: format!(
                    "{n} deposits within {} h just under the {} threshold",
                    a.structuring_window_hours, a.due_diligence_minor
                ),
            });
        }
    }
    hits
}

pub fn check_withdrawal(a: &AmlRules, activity: &Activity) -> Vec<AmlHit> {
    match (activity.last_deposit_at, activity.last_stake_at) {
        (Some(d), s) if s.is_none_or(|s| s < d) => vec![AmlHit {
            rule: AmlRule::WithdrawalWithoutPlay,
            action: a.no_play_withdrawal_action,
            detail: "withdrawal with no stake since the last deposit".into(),
        }],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::limits::ActivityKind;
    use crate::gate::test_rules;

    #[test]
    fn structuring_and_large_deposit() {
        let r = test_rules().aml; // threshold 200_000, band 90 %, 3 in 24 h
        let mut a = Activity::default();
        let t = UnixMillis(1_700_000_000_000);
        assert!(check_deposit(&r, &a, 190_000, t).is_empty());
        a.record(t, ActivityKind::Deposit, 190_000);
        a.record(t, ActivityKind::Deposit, 195_000);
        let hits = check_deposit(&r, &a, 199_999, t);
        assert_eq!(hits[0].rule, AmlRule::Structuring);
        assert_eq!(
            check_deposit(&r, &a, 200_000, t)[0].rule,
            AmlRule::LargeDeposit
        );
    }

    #[test]
    fn velocity_new_account_and_no_play() {
        let r = test_rules().aml;
        let mut a = Activity::default();
        let t = UnixMillis(1_700_000_000_000);
        for i in 0..r.velocity_bets_per_minute_max {
            a.record(UnixMillis(t.0 + i as i64), ActivityKind::Stake, 1);
        }
        let hits = check_bet(&r, &a, UnixMillis(0), 1, UnixMillis(t.0 + 1000));
        assert_eq!(hits[0].rule, AmlRule::Velocity);
        let hits = check_bet(&r, &Activity::default(), t, r.new_account_stake_minor, t);
        assert!(hits.iter().any(|h| h.rule == AmlRule::NewAccountLargeBet));
        let mut a = Activity::default();
        a.record(t, ActivityKind::Deposit, 100);
        assert_eq!(check_withdrawal(&r, &a).len(), 1);
        a.record(t, ActivityKind::Stake, 10);
        assert!(check_withdrawal(&r, &a).is_empty());
    }
}
