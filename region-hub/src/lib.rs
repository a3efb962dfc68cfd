//! `region-hub`: the Outpost region hub. It receives the signed logs of the edge nodes in its
//! region over QUIC (`outpost-sync`), keeps them in SQLite, settles bets from results, sends
//! results and settlements back down each node's signed down chain, and writes every record
//! to the write-once audit trail.
//!
//! Modules, one concern each: [`config`] (TOML), [`db`] (schema), [`store`] (the state behind
//! replication), [`down`] (down chains), [`outbox`] (audit segments), [`settlement`] (results),
//! [`audit_uploader`] (draining to the audit store), [`views`] and [`api`] (HTTP), `lag` and
//! `metrics` (replication lag, Prometheus text on `GET /metrics`), [`run`] (wiring it together).

pub mod api;
pub mod audit;
pub mod audit_uploader;
mod bet_copy;
pub mod config;
pub mod db;
mod down;
mod hub_store;
mod lag;
mod metrics;
mod outbox;
pub mod reconcile;
mod results_api;
mod results_feed_api;
pub mod run;
mod settle_bulk;
pub mod settlement;
pub mod shard;
pub mod store;
pub mod views;
pub mod witness;

#[cfg(test)]
mod test_support;

pub use config::HubConfig;
pub use store::HubState;
