//! Jurisdiction rules as data. The shell reads `deploy/jurisdictions/*.toml` (and re-reads it
//! when it changes); core validates and uses them. Every gate decision records the
//! `rules_version` it used. The meaning and source of each value is in `docs/jurisdictions.md`.

use crate::ids::Jurisdiction;
use crate::money::Currency;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionRules {
    pub code: Jurisdiction,
    pub name: String,
    /// Bumped by the rules' author whenever a value changes; recorded in every decision.
    pub rules_version: String,
    pub currency: Currency,
    pub min_age_years: u8,
    /// Smallest stake accepted per bet.
    pub stake_minor_min: i64,
    /// Largest stake accepted per bet.
    pub stake_minor_max: i64,
    /// Largest potential payout accepted per bet.
    pub payout_minor_max: i64,
    /// Accumulator size limits.
    pub accumulator_legs_max: u8,
    /// How long audit objects are locked (S3 Object Lock COMPLIANCE retention); also the
    /// record-keeping period the jurisdiction requires.
    pub audit_retention_years: u16,
    pub bets: BetRules,
    pub limits: LimitRules,
    /// The national self-exclusion register, where the jurisdiction has one.
    #[serde(default)]
    pub register: Option<RegisterRules>,
    pub aml: AmlRules,
    /// Present when the jurisdiction requires the player to be physically inside it.
    #[serde(default)]
    pub geo: Option<GeoRules>,
    /// Events nobody in this jurisdiction may bet on, expressed as data.
    #[serde(default)]
    pub banned_events: Vec<BannedEvents>,
    /// Retail (shop counter) rules; absent means shop bets are refused (fail closed).
    #[serde(default)]
    pub retail: Option<crate::edge::shop::RetailRules>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetType {
    Single,
    Accumulator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BetRules {
    /// Sports offered (lower-case names: "football").
    pub sports_allowed: Vec<String>,
    pub bet_types_allowed: Vec<BetType>,
    /// Market kinds offered before the event starts (`match_result`, `total_goals`,
    /// `asian_handicap`).
    pub market_kinds_allowed: Vec<String>,
    pub in_play_allowed: bool,
    /// Market kinds offered once the event has started (subset of `market_kinds_allowed`).
    #[serde(default)]
    pub in_play_market_kinds: Vec<String>,
    /// An in-play bet is held this long, then decided against the prices current then.
    pub in_play_delay_ms: u32,
}

/// Per-window amounts in minor units; `None` means no limit for that window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowAmounts {
    #[serde(default)]
    pub day_minor: Option<i64>,
    #[serde(default)]
    pub week_minor: Option<i64>,
    #[serde(default)]
    pub month_minor: Option<i64>,
}

impl WindowAmounts {
    pub fn get(&self, w: crate::gate::Window) -> Option<i64> {
        match w {
            crate::gate::Window::Day => self.day_minor,
            crate::gate::Window::Week => self.week_minor,
            crate::gate::Window::Month => self.month_minor,
        }
    }
    fn validate(&self, field: &'static str) -> Result<(), RulesError> {
        for (name, v) in [
            ("day_minor", self.day_minor),
            ("week_minor", self.week_minor),
            ("month_minor", self.month_minor),
        ] {
            if v.is_some_and(|v| v < 1) {
                return Err(RulesError::new(
                    field,
                    &format!("{name} must be at least 1"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRules {
    /// Deposit limits in force for a player who has not set their own.
    #[serde(default)]
    pub deposit_default: WindowAmounts,
    /// The highest deposit limit a player may set (and the limit when none is set).
    #[serde(default)]
    pub deposit_cap: WindowAmounts,
    /// Cross-operator monthly deposit cap checked against an external system (DE: LUGAS).
    /// When set, a deposit needs a current figure of the player's deposits at other operators.
    #[serde(default)]
    pub cross_operator_deposit_cap_month_minor: Option<i64>,
    /// A raised (or removed) limit takes effect only after this many hours.
    pub increase_cooling_off_hours: u32,
    /// Shortest and longest time-out a player can take.
    pub time_out_hours_min: u32,
    pub time_out_hours_max: u32,
    /// Minutes between reality checks (0: the jurisdiction sets none).
    pub reality_check_interval_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRules {
    /// The register's name (GAMSTOP, OASIS, ROFUS, RUA, ...).
    pub name: String,
    /// How often the operator must refresh its copy.
    pub refresh_interval_minutes: u32,
    /// A copy older than this is stale: betting in the jurisdiction stops (fail closed).
    pub staleness_bound_minutes: u32,
}

/// What an AML rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmlAction {
    /// Accept, and write a flag record for suspicious-activity review.
    Flag,
    /// Refuse, and write a flag record.
    Refuse,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmlRules {
    /// Single bet or deposit at or above this triggers customer due diligence.
    pub due_diligence_minor: i64,
    pub due_diligence_action: AmlAction,
    /// Cash transactions at or above this are reportable (retail).
    pub retail_cash_threshold_minor: i64,
    /// More bets than this within 60 seconds is velocity.
    pub velocity_bets_per_minute_max: u32,
    pub velocity_action: AmlAction,
    /// Structuring: `structuring_count` deposits within `structuring_window_hours`, each at
    /// least `structuring_band_percent` % of the due-diligence threshold but under it.
    pub structuring_count: u32,
    pub structuring_window_hours: u32,
    pub structuring_band_percent: u8,
    pub structuring_action: AmlAction,
    /// A stake at or above `new_account_stake_minor` within `new_account_hours` of
    /// registration.
    pub new_account_hours: u32,
    pub new_account_stake_minor: i64,
    pub new_account_action: AmlAction,
    /// A withdrawal with no stake since the last deposit.
    pub no_play_withdrawal_action: AmlAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRules {
    /// The area the player must be in (human-readable).
    pub area: String,
    /// IP ranges inside the area (CIDR). Empty: IP is not used.
    #[serde(default)]
    pub ip_cidrs: Vec<String>,
    /// The area's outline as `[lat, lon]` points in millionths of a degree. Empty: GPS is not
    /// used. At least one of `ip_cidrs` and `polygon_e6` is set.
    #[serde(default)]
    pub polygon_e6: Vec<[i64; 2]>,
}

/// A data-expressed ban: events whose competition matches one of `competitions` (substring,
/// case-insensitive) and where a listed team plays, or the venue is in a listed region. An
/// event of a matching competition whose venue is unknown is banned too (fail closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BannedEvents {
    pub reason: String,
    pub competitions: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub venue_regions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("jurisdiction rules field `{field}`: {problem}")]
pub struct RulesError {
    /// Dotted path of the offending field (`limits.time_out_hours_max`).
    pub field: &'static str,
    pub problem: String,
}

impl RulesError {
    fn new(field: &'static str, problem: &str) -> RulesError {
        RulesError {
            field,
            problem: problem.into(),
        }
    }
}

const MARKET_KINDS: [&str; 8] = [
    "match_result",
    "total_goals",
    "asian_handicap",
    "correct_score",
    "both_teams_to_score",
    "race_win",
    "race_place",
    "outright",
];

impl JurisdictionRules {
    pub fn validate(&self) -> Result<(), RulesError> {
        let e = |field, problem: &str| Err(RulesError::new(field, problem));
        if self.rules_version.trim().is_empty() {
            return e("rules_version", "must not be empty");
        }
        if !(16..=25).contains(&self.min_age_years) {
            return e("min_age_years", "must be between 16 and 25");
        }
        if self.stake_minor_min < 1 {
            return e("stake_minor_min", "must be at least 1");
        }
        if self.stake_minor_max < self.stake_minor_min {
            return e("stake_minor_max", "must be at least stake_minor_min");
        }
        if self.payout_minor_max < self.stake_minor_max {
            return e("payout_minor_max", "must be at least stake_minor_max");
        }
        if !(2..=20).contains(&self.accumulator_legs_max) {
            return e("accumulator_legs_max", "must be between 2 and 20");
        }
        if !(1..=100).contains(&self.audit_retention_years) {
            return e("audit_retention_years", "must be between 1 and 100");
        }
        let b = &self.bets;
        if b.sports_allowed.is_empty() {
            return e("bets.sports_allowed", "must list at least one sport");
        }
        if b.bet_types_allowed.is_empty() {
            return e("bets.bet_types_allowed", "must list at least one bet type");
        }
        for k in &b.market_kinds_allowed {
            if !MARKET_KINDS.contains(&k.as_str()) {
                return e("bets.market_kinds_allowed", "unknown market kind");
            }
        }
        for k in &b.in_play_market_kinds {
            if !b.market_kinds_allowed.contains(k) {
                return e(
                    "bets.in_play_market_kinds",
                    "must be a subset of market_kinds_allowed",
                );
            }
        }
        if b.in_play_delay_ms > 30_000 {
            return e("bets.in_play_delay_ms", "must be at most 30000");
        }
        let l = &self.limits;
        l.deposit_default.validate("limits.deposit_default")?;
        l.deposit_cap.validate("limits.deposit_cap")?;
        for w in crate::gate::Window::ALL {
            if let (Some(d), Some(c)) = (l.deposit_default.get(w), l.deposit_cap.get(w))
                && d > c
            {
                return e("limits.deposit_default", "a default exceeds its cap");
            }
        }
        if l.cross_operator_deposit_cap_month_minor
            .is_some_and(|v| v < 1)
        {
            return e(
                "limits.cross_operator_deposit_cap_month_minor",
                "must be at least 1",
            );
        }
        if l.increase_cooling_off_hours > 24 * 31 {
            return e("limits.increase_cooling_off_hours", "must be at most 744");
        }
        if l.time_out_hours_min < 1 || l.time_out_hours_max < l.time_out_hours_min {
            return e(
                "limits.time_out_hours_max",
                "need 1 <= time_out_hours_min <= time_out_hours_max",
            );
        }
        if l.reality_check_interval_minutes > 24 * 60 {
            return e(
                "limits.reality_check_interval_minutes",
                "must be at most 1440",
            );
        }
        if let Some(r) = &self.register {
            if r.name.trim().is_empty() {
                return e("register.name", "must not be empty");
            }
            if r.refresh_interval_minutes < 1 {
                return e("register.refresh_interval_minutes", "must be at least 1");
            }
            if r.staleness_bound_minutes < r.refresh_interval_minutes {
                return e(
                    "register.staleness_bound_minutes",
                    "must be at least refresh_interval_minutes",
                );
            }
        }
        let a = &self.aml;
        if a.due_diligence_minor < 1 {
            return e("aml.due_diligence_minor", "must be at least 1");
        }
        if a.retail_cash_threshold_minor < 1 {
            return e("aml.retail_cash_threshold_minor", "must be at least 1");
        }
        if a.velocity_bets_per_minute_max < 1 {
            return e("aml.velocity_bets_per_minute_max", "must be at least 1");
        }
        if a.structuring_count < 2 {
            return e("aml.structuring_count", "must be at least 2");
        }
        if !(1..=99).contains(&a.structuring_band_percent) {
            return e("aml.structuring_band_percent", "must be between 1 and 99");
        }
        if a.structuring_window_hours < 1 {
            return e("aml.structuring_window_hours", "must be at least 1");
        }
        if a.new_account_stake_minor < 1 {
            return e("aml.new_account_stake_minor", "must be at least 1");
        }
        if let Some(g) = &self.geo {
            if g.ip_cidrs.is_empty() && g.polygon_e6.is_empty() {
                return e("geo", "set ip_cidrs or polygon_e6 (or both)");
            }
            for c in &g.ip_cidrs {
                if crate::gate::geo::Cidr::parse(c).is_none() {
                    return e("geo.ip_cidrs", "not a CIDR range");
                }
            }
            if !g.polygon_e6.is_empty() && g.polygon_e6.len() < 3 {
                return e("geo.polygon_e6", "needs at least 3 points");
            }
            for [lat, lon] in &g.polygon_e6 {
                if lat.abs() > 90_000_000 || lon.abs() > 180_000_000 {
                    return e(
                        "geo.polygon_e6",
                        "point outside -90..90 / -180..180 degrees",
                    );
                }
            }
        }
        for b in &self.banned_events {
            if b.competitions.is_empty() || (b.teams.is_empty() && b.venue_regions.is_empty()) {
                return e(
                    "banned_events",
                    "each ban needs competitions and teams or venue_regions",
                );
            }
        }
        if let Some(r) = &self.retail {
            r.validate(self).map_err(|(field, p)| RulesError {
                field,
                problem: p.into(),
            })?;
        }
        Ok(())
    }
}

/// A small, valid GB-like rule set with no register and no geo requirement, for tests,
/// examples and benchmarks (not a deployment's rules: those are `deploy/jurisdictions/*.toml`).
pub fn example_rules() -> JurisdictionRules {
    JurisdictionRules {
        code: Jurisdiction::new("GB").unwrap(),
        name: "Test".into(),
        rules_version: "test-1".into(),
        currency: Currency::parse("GBP").unwrap(),
        min_age_years: 18,
        stake_minor_min: 10,
        stake_minor_max: 1_000_000,
        payout_minor_max: 100_000_000,
        accumulator_legs_max: 20,
        audit_retention_years: 6,
        bets: BetRules {
            sports_allowed: vec!["football".into()],
            bet_types_allowed: vec![BetType::Single, BetType::Accumulator],
            market_kinds_allowed: vec![
                "match_result".into(),
                "total_goals".into(),
                "asian_handicap".into(),
            ],
            in_play_allowed: true,
            in_play_market_kinds: vec!["match_result".into()],
            in_play_delay_ms: 0,
        },
        limits: LimitRules {
            deposit_default: WindowAmounts::default(),
            deposit_cap: WindowAmounts::default(),
            cross_operator_deposit_cap_month_minor: None,
            increase_cooling_off_hours: 24,
            time_out_hours_min: 24,
            time_out_hours_max: 24 * 42,
            reality_check_interval_minutes: 60,
        },
        register: None,
        aml: AmlRules {
            due_diligence_minor: 200_000,
            due_diligence_action: AmlAction::Flag,
            retail_cash_threshold_minor: 1_000_000,
            velocity_bets_per_minute_max: 30,
            velocity_action: AmlAction::Refuse,
            structuring_count: 3,
            structuring_window_hours: 24,
            structuring_band_percent: 90,
            structuring_action: AmlAction::Flag,
            new_account_hours: 24,
            new_account_stake_minor: 100_000,
            new_account_action: AmlAction::Flag,
            no_play_withdrawal_action: AmlAction::Flag,
        },
        geo: None,
        banned_events: vec![],
        retail: None,
    }
}
