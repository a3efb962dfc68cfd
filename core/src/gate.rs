//! The compliance gate: a pure function from everything it needs (prefetched by the shell) to
//! a decision that lists every check it made, each with its result and detail.
//!
//! Architecture invariant: the gate is synchronous and fails closed. Missing data (unknown
//! date of birth, unknown market) is a failed check, never a pass.

use crate::ids::{EventId, Jurisdiction, SelectionId};
use crate::jurisdiction::JurisdictionRules;
use crate::market::{Market, MarketStatus};
use crate::money::Money;
use crate::price::Price;
use crate::settle::potential_payout_minor;
use crate::time::CivilDate;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Stable reason codes; clients and regulators key on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    JurisdictionNotServed,
    KycRequired,
    AgeUnknown,
    UnderAge,
    SelfExcluded,
    CurrencyMismatch,
    StakeTooLow,
    StakeTooHigh,
    NoLegs,
    TooManyLegs,
    DuplicateEvent,
    SelectionNotFound,
    MarketNotOpen,
    PriceChanged,
    PayoutTooHigh,
    InsufficientFunds,
}

impl ReasonCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReasonCode::JurisdictionNotServed => "JURISDICTION_NOT_SERVED",
            ReasonCode::KycRequired => "KYC_REQUIRED",
            ReasonCode::AgeUnknown => "AGE_UNKNOWN",
            ReasonCode::UnderAge => "UNDER_AGE",
            ReasonCode::SelfExcluded => "SELF_EXCLUDED",
            ReasonCode::CurrencyMismatch => "CURRENCY_MISMATCH",
            ReasonCode::StakeTooLow => "STAKE_TOO_LOW",
            ReasonCode::StakeTooHigh => "STAKE_TOO_HIGH",
            ReasonCode::NoLegs => "NO_LEGS",
            ReasonCode::TooManyLegs => "TOO_MANY_LEGS",
            ReasonCode::DuplicateEvent => "DUPLICATE_EVENT",
            ReasonCode::SelectionNotFound => "SELECTION_NOT_FOUND",
            ReasonCode::MarketNotOpen => "MARKET_NOT_OPEN",
            ReasonCode::PriceChanged => "PRICE_CHANGED",
            ReasonCode::PayoutTooHigh => "PAYOUT_TOO_HIGH",
            ReasonCode::InsufficientFunds => "INSUFFICIENT_FUNDS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: String,
    pub passed: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<ReasonCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    pub accepted: bool,
    /// The first failed check's code (None when accepted).
    pub reason: Option<ReasonCode>,
    pub rules_version: String,
    pub checks: Vec<CheckResult>,
}

/// What the gate knows about the player (prefetched: state + the node-local PII vault).
#[derive(Debug, Clone)]
pub struct PlayerFacts {
    pub jurisdiction: Jurisdiction,
    pub kyc_verified: bool,
    pub date_of_birth: Option<CivilDate>,
    pub self_excluded: bool,
    pub cash_minor: i64,
}

pub struct LegFacts<'a> {
    pub selection_id: &'a SelectionId,
    pub requested_price: Price,
    /// The market holding the selection, if any.
    pub market: Option<&'a Market>,
}

pub struct BetFacts<'a> {
    pub rules: &'a JurisdictionRules,
    pub served: &'a [Jurisdiction],
    pub player: &'a PlayerFacts,
    pub today: CivilDate,
    pub stake: Money,
    pub legs: &'a [LegFacts<'a>],
}

struct Checks(Vec<CheckResult>);
impl Checks {
    fn add(&mut self, check: &str, ok: bool, code: ReasonCode, detail: String) {
        self.0.push(CheckResult {
            check: check.into(),
            passed: ok,
            detail,
            code: (!ok).then_some(code),
        });
    }
}

/// Evaluate every check for placing a bet. All checks run (so the record shows the full
/// picture); the reason is the first failure in this fixed order.
pub fn evaluate_bet(f: &BetFacts<'_>) -> GateDecision {
    let mut c = Checks(Vec::with_capacity(12));
    let r = f.rules;
    let p = f.player;

    let served = f.served.contains(&p.jurisdiction);
    c.add(
        "jurisdiction",
        served,
        ReasonCode::JurisdictionNotServed,
        format!("player jurisdiction {}", p.jurisdiction),
    );
    c.add(
        "kyc",
        p.kyc_verified,
        ReasonCode::KycRequired,
        if p.kyc_verified {
            "verified".into()
        } else {
            "identity not verified".into()
        },
    );
    match p.date_of_birth {
        None => c.add(
            "age",
            false,
            ReasonCode::AgeUnknown,
            "no date of birth on record".into(),
        ),
        Some(dob) => {
            let age = dob.years_until(f.today);
            c.add(
                "age",
                age >= r.min_age_years as i32,
                ReasonCode::UnderAge,
                format!("age {age}, minimum {}", r.min_age_years),
            );
        }
    }
    c.add(
        "self_exclusion",
        !p.self_excluded,
        ReasonCode::SelfExcluded,
        if p.self_excluded {
            "player is self-excluded".into()
        } else {
            "not excluded (operator list)".into()
        },
    );

    let cur_ok = f.stake.currency == r.currency;
    c.add(
        "currency",
        cur_ok,
        ReasonCode::CurrencyMismatch,
        format!(
            "stake in {}, jurisdiction uses {}",
            f.stake.currency, r.currency
        ),
    );
    let s = f.stake.minor;
    c.add(
        "stake_min",
        s >= r.stake_minor_min,
        ReasonCode::StakeTooLow,
        format!("stake {s}, minimum {}", r.stake_minor_min),
    );
    c.add(
        "stake_max",
        s <= r.stake_minor_max,
        ReasonCode::StakeTooHigh,
        format!("stake {s}, maximum {}", r.stake_minor_max),
    );

    let n = f.legs.len();
    c.add("legs", n >= 1, ReasonCode::NoLegs, format!("{n} leg(s)"));
    c.add(
        "legs_max",
        n <= r.accumulator_legs_max as usize,
        ReasonCode::TooManyLegs,
        format!("{n} leg(s), maximum {}", r.accumulator_legs_max),
    );
    let mut events: HashSet<&EventId> = HashSet::new();
    let mut dup = None;
    for l in f.legs {
        if let Some(m) = l.market
            && !events.insert(&m.event_id)
        {
            dup = Some(m.event_id.clone());
        }
    }
    c.add(
        "one_leg_per_event",
        dup.is_none(),
        ReasonCode::DuplicateEvent,
        match &dup {
            Some(e) => format!("two legs on event {e}"),
            None => "distinct events".into(),
        },
    );

    let mut prices = Vec::with_capacity(n);
    for l in f.legs {
        let sel = l.market.and_then(|m| m.selection(l.selection_id));
        let (Some(m), Some(sel)) = (l.market, sel) else {
            c.add(
                "selection",
                false,
                ReasonCode::SelectionNotFound,
                format!("{} not offered", l.selection_id),
            );
            continue;
        };
        let open = m.status == MarketStatus::Open;
        c.add(
            "market_open",
            open,
            ReasonCode::MarketNotOpen,
            format!("{} is {}", m.market_id, m.status.as_str()),
        );
        // The client's price must be at most the current one: equal or better for the player.
        let ok = l.requested_price <= sel.price;
        c.add(
            "price",
            ok,
            ReasonCode::PriceChanged,
            format!(
                "{}: requested {}, current {}",
                l.selection_id, l.requested_price, sel.price
            ),
        );
        prices.push(l.requested_price);
    }
    // Payout limit at the requested prices (the prices the bet will be struck at).
    if prices.len() == n && n > 0 {
        let pot = potential_payout_minor(s.max(0), &prices);
        let ok = pot.is_some_and(|v| v <= r.payout_minor_max);
        c.add(
            "payout_max",
            ok,
            ReasonCode::PayoutTooHigh,
            format!(
                "potential payout {}, maximum {}",
                pot.map(|v| v.to_string()).unwrap_or("overflow".into()),
                r.payout_minor_max
            ),
        );
    }
    c.add(
        "funds",
        p.cash_minor >= s,
        ReasonCode::InsufficientFunds,
        format!("balance {}, stake {s}", p.cash_minor),
    );

    let reason = c.0.iter().find(|x| !x.passed).and_then(|x| x.code);
    GateDecision {
        accepted: reason.is_none(),
        reason,
        rules_version: r.rules_version.clone(),
        checks: c.0,
    }
}
