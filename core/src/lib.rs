//! `outpost-core`: the sans-IO heart of Outpost.
//!
//! Pure functions and state machines only: no clocks, no randomness, no sockets, no disks.
//! The shells (`edge-node`, `region-hub`) load state, pass time and entropy in, let this crate
//! decide, then persist what it produced ("prefetch, then execute").

pub mod edge;
pub mod feed;
pub mod fixtures;
pub mod gate;
pub mod hub;
pub mod ids;
pub mod jurisdiction;
pub mod ledger;
pub mod log;
pub mod market;
pub mod money;
pub mod payout;
pub mod price;
pub mod pricing;
pub mod settle;
pub mod settlement;
pub mod time;
