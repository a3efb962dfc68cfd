//! Outpost edge node: accepts bets behind the compliance gate, runs the wallet, and keeps the
//! signed event log durable on sled. Works with the WAN down; replicates to the region hub
//! over QUIC when it is up.

pub mod api;
pub mod balance_snapshot;
pub mod bench;
pub mod checkpoints;
pub mod commit_timing;
pub mod compliance_watch;
pub mod config;
pub mod cross_operator;
pub mod handoff;
pub mod journal;
pub mod link;

pub mod node;
pub mod odds;
pub mod recover;
pub mod store;
pub mod vault;
pub mod writer;
