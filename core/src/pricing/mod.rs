//! Pricing: from provider or model ("true") probabilities to offered prices.
//! `margin` removes and applies bookmaker margin, `ladder` rounds to the offered price ladder
//! and caps, `policy` holds the operator's target margin per market type and jurisdiction.

pub mod ladder;
pub mod margin;
pub mod policy;
