//! The operator's pricing policy for one jurisdiction: the target margin per market class
//! (1x2, totals, correct score, racing win/place, …), the method used to apply it, and the
//! maximum offered price. `price_market` turns true probabilities into laddered `Price`s.

use super::ladder::offer_for_probability;
use super::margin::{MarginError, MarginMethod, apply, remove_n};
use crate::ids::Jurisdiction;
use crate::price::Price;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarginTarget {
    /// Target overround in basis points (500 = booksum 1.05 for a one-winner market).
    pub margin_bp: u32,
    pub method: MarginMethod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingPolicy {
    pub jurisdiction: Jurisdiction,
    pub default: MarginTarget,
    /// Overrides by market class (`MarketKind::class()`: "1x2", "ou", "correct_score", …).
    #[serde(default)]
    pub by_class: BTreeMap<String, MarginTarget>,
    /// No selection is offered above this price (thousandths).
    pub max_price_milli: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PricingError {
    #[error(transparent)]
    Margin(#[from] MarginError),
    #[error("selection {0} cannot be offered on the ladder (price would be at or below 1.01)")]
    Unofferable(usize),
    #[error("margin of {0} bp is above the 50 % sanity limit")]
    MarginTooLarge(u32),
}

impl PricingPolicy {
    pub fn target(&self, class: &str) -> &MarginTarget {
        self.by_class.get(class).unwrap_or(&self.default)
    }

    /// Offer prices for a market of `class` whose true probabilities (summing to `winners`)
    /// are `probabilities`.
    pub fn price_market(
        &self,
        class: &str,
        probabilities: &[f64],
        winners: u32,
    ) -> Result<Vec<Price>, PricingError> {
        let t = self.target(class);
        if t.margin_bp > 5_000 {
            return Err(PricingError::MarginTooLarge(t.margin_bp));
        }
        let w = f64::from(winners.max(1));
        let booksum = w * (1.0 + f64::from(t.margin_bp) / 10_000.0);
        // Shin is defined for one winner; multi-winner markets fall back to multiplicative.
        let method = if winners > 1 && t.method == MarginMethod::Shin {
            MarginMethod::Multiplicative
        } else {
            t.method
        };
        let implied = apply(method, probabilities, booksum, w)?;
        implied
            .iter()
            .enumerate()
            .map(|(i, q)| {
                offer_for_probability(*q, self.max_price_milli).ok_or(PricingError::Unofferable(i))
            })
            .collect()
    }

    /// Re-price a provider's quoted odds with this policy's margin: remove the provider's margin
    /// (multiplicative, robust for any book), then apply ours.
    pub fn reprice_odds(
        &self,
        class: &str,
        odds: &[f64],
        winners: u32,
    ) -> Result<Vec<Price>, PricingError> {
        let fair = remove_n(
            MarginMethod::Multiplicative,
            odds,
            f64::from(winners.max(1)),
        )?;
        self.price_market(class, &fair.probabilities, winners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::ladder::is_on_ladder;

    fn policy() -> PricingPolicy {
        let mut by_class = BTreeMap::new();
        by_class.insert(
            "correct_score".to_string(),
            MarginTarget {
                margin_bp: 1_500,
                method: MarginMethod::Power,
            },
        );
        PricingPolicy {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            default: MarginTarget {
                margin_bp: 500,
                method: MarginMethod::Shin,
            },
            by_class,
            max_price_milli: 500_000,
        }
    }

    #[test]
    fn prices_a_1x2_market_on_the_ladder_with_the_margin() {
        // True probabilities of Burnley v Man City (Pinnacle closing, Shin).
        let p = [0.096318940716, 0.16393578637, 0.739745272915];
        let prices = policy().price_market("1x2", &p, 1).unwrap();
        assert!(prices.iter().all(|x| is_on_ladder(x.milli())));
        let book: f64 = prices.iter().map(|x| 1000.0 / x.milli() as f64).sum();
        // Rounding down only adds margin: the booksum is at least the 5 % target.
        assert!((1.05 - 1e-12..1.10).contains(&book), "{book}");
        // Independently (Python, Shin's inverse by bisection): z = 0.025657, fair-with-margin
        // odds 9.0961 / 5.5980 / 1.3133, which the Betfair ladder floors to 9.0 / 5.5 / 1.31.
        assert_eq!(
            prices.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            ["9.000", "5.500", "1.310"]
        );
    }

    #[test]
    fn class_override_and_cap() {
        let p: Vec<f64> = std::iter::once(0.9)
            .chain(std::iter::repeat_n(0.1 / 50.0, 50))
            .collect();
        let prices = policy().price_market("correct_score", &p, 1).unwrap();
        assert!(prices.iter().all(|x| x.milli() <= 500_000));
        let book: f64 = prices.iter().map(|x| 1000.0 / x.milli() as f64).sum();
        assert!(book >= 1.15 - 1e-9, "{book}");
    }

    #[test]
    fn place_market_two_winners() {
        // Sheffield PLACE market BSPs (2 places): reprice with 2 winners.
        let bsp = [21.0, 5.6, 2.42, 2.86, 4.64, 1.28];
        let prices = policy().reprice_odds("place", &bsp, 2).unwrap();
        let book: f64 = prices.iter().map(|x| 1000.0 / x.milli() as f64).sum();
        assert!(book >= 2.0 * 1.05 - 1e-9, "{book}");
    }
}
