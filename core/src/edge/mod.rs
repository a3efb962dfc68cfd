//! The edge node's state machine: players, wallets, bets and markets, rebuilt from the log.
//!
//! `decide` turns a command into the events it would log plus the reply, without mutating;
//! `apply` is the only way state changes, used both live (right after `decide`) and on replay.
//! Replaying a log through `apply` therefore rebuilds exactly the live state.

pub mod balance_snapshot;
mod compliance;
#[cfg(test)]
mod correction_tests;
mod decide;
pub mod events;
mod gate_events;
pub mod shop;
mod state;

pub use compliance::{GateState, NodeGateConfig, PlayerCompliance};
pub use decide::{Command, CommandError, DecideCtx, Decided, LegRequest, Reply};
pub use state::{ApplyError, Bet, BetStatus, BetView, EdgeState, IdemOutcome, Player, PlayerView};
