//! Trading risk on this node: liability per selection and per event, and the price-change
//! policy a bet is placed under.

use super::{Detail, LegFacts, ReasonCode};
use crate::price::Price;
use serde::{Deserialize, Serialize};

/// Node risk limits (operator policy, from the node config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskLimits {
    /// Sum of potential payouts of open bets on one selection.
    pub selection_liability_minor_max: i64,
    /// Sum of potential payouts of open bets on one event.
    pub event_liability_minor_max: i64,
}

impl Default for RiskLimits {
    fn default() -> Self {
        // Operator policy defaults: 5,000,000 and 20,000,000 minor units (e.g. £50k / £200k).
        RiskLimits {
            selection_liability_minor_max: 5_000_000,
            event_liability_minor_max: 20_000_000,
        }
    }
}

/// What happens when the price moved between the client seeing it and the bet arriving.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum PricePolicy {
    /// Only the exact price requested.
    Exact,
    /// The requested price or better; struck at the current (better) price.
    #[default]
    AcceptBetter,
    /// Down to `tolerance_milli` thousandths below the requested price; struck at current.
    WithinTolerance { tolerance_milli: u64 },
}

impl PricePolicy {
    pub fn as_str(&self) -> &'static str {
        match self {
            PricePolicy::Exact => "exact",
            PricePolicy::AcceptBetter => "accept_better",
            PricePolicy::WithinTolerance { .. } => "within_tolerance",
        }
    }
    /// The price to strike at, or None if the current price is not acceptable.
    pub fn strike(&self, requested: Price, current: Price) -> Option<Price> {
        match self {
            PricePolicy::Exact => (requested == current).then_some(current),
            PricePolicy::AcceptBetter => (current >= requested).then_some(current),
            PricePolicy::WithinTolerance { tolerance_milli } => {
                (current.milli().saturating_add(*tolerance_milli) >= requested.milli())
                    .then_some(current)
            }
        }
    }
}

/// The whole potential payout is counted against each leg's selection and event: for an
/// accumulator that is the conservative choice (any leg can be the one that completes it).
pub(super) fn liability_checks(
    add: &mut dyn FnMut(&'static str, bool, ReasonCode, Detail),
    limits: &RiskLimits,
    legs: &[LegFacts<'_>],
    potential_minor: i64,
) {
    for l in legs {
        let sel = l.selection_liability_minor.saturating_add(potential_minor);
        add(
            "selection_liability",
            sel <= limits.selection_liability_minor_max,
            ReasonCode::SelectionLiability,
            Detail::Liability {
                selection: l.selection_id.clone(),
                event: false,
                liability: sel,
                max: limits.selection_liability_minor_max,
            },
        );
        let ev = l.event_liability_minor.saturating_add(potential_minor);
        add(
            "event_liability",
            ev <= limits.event_liability_minor_max,
            ReasonCode::EventLiability,
            Detail::Liability {
                selection: l.selection_id.clone(),
                event: true,
                liability: ev,
                max: limits.event_liability_minor_max,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        let p = |s| Price::parse(s).unwrap();
        assert_eq!(PricePolicy::Exact.strike(p("2.00"), p("2.10")), None);
        assert_eq!(
            PricePolicy::Exact.strike(p("2.00"), p("2.00")),
            Some(p("2.00"))
        );
        assert_eq!(
            PricePolicy::AcceptBetter.strike(p("2.00"), p("2.10")),
            Some(p("2.10"))
        );
        assert_eq!(PricePolicy::AcceptBetter.strike(p("2.00"), p("1.95")), None);
        let t = PricePolicy::WithinTolerance {
            tolerance_milli: 50,
        };
        assert_eq!(t.strike(p("2.00"), p("1.95")), Some(p("1.95")));
        assert_eq!(t.strike(p("2.00"), p("1.94")), None);
    }
}
