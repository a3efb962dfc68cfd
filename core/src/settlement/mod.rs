//! Settlement rules as pure functions over exact factors, one rule per file, each with a table
//! test citing its source (see `docs/settlement.md` for the rules with worked examples).
//!
//! Every rule turns a result into an exact rational [`crate::payout::Factor`] per unit of
//! stake; the money is computed once, by [`crate::payout::payout_minor`] (or
//! [`crate::payout::payout_sum_minor`] for the two parts of an each-way bet), in integer minor
//! units, rounded down once. Football win/lose/void/push and Asian quarter lines live in
//! [`crate::settle`] and are pinned to their sources in [`basic`].

pub mod accumulator;
mod basic;
pub mod dead_heat;
pub mod each_way;
pub mod each_way_bet;
pub mod event_result;
pub mod race_result;
pub mod race_results_file;
pub mod racing;
pub mod ratio;
pub mod results_file;
pub mod rule4;
pub mod uof;
pub mod uof_results;
pub mod void_factor;
