//! Pricing: from provider or model ("true") probabilities to offered prices.
//! `margin` removes and applies bookmaker margin, `ladder` rounds to the offered price ladder
//! and caps, `policy` holds the operator's target margin per market type and jurisdiction,
//! `each_way` gives the standard place terms of a race.

pub mod each_way;
pub mod ladder;
pub mod margin;
pub mod policy;
