//! Jurisdiction rules as data. The shell reads `deploy/jurisdictions/*.toml`; core validates
//! and uses them. Every gate decision records the `rules_version` it used.

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
    /// How long audit objects are locked (S3 Object Lock COMPLIANCE retention).
    pub audit_retention_years: u16,
    /// Retail (shop counter) rules; absent means shop bets are refused (fail closed).
    #[serde(default)]
    pub retail: Option<crate::edge::shop::RetailRules>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("jurisdiction rules field `{field}`: {problem}")]
pub struct RulesError {
    pub field: &'static str,
    pub problem: String,
}

impl JurisdictionRules {
    pub fn validate(&self) -> Result<(), RulesError> {
        let e = |field, problem: &str| {
            Err(RulesError {
                field,
                problem: problem.into(),
            })
        };
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
        if let Some(r) = &self.retail {
            r.validate(self).map_err(|(field, p)| RulesError { field, problem: p.into() })?;
        }
        Ok(())
    }
}
