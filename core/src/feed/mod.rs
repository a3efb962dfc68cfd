//! Provider feeds: parsers for the Sportradar Unified Odds Feed (UOF) XML messages and the
//! Betfair Exchange Stream API market-change messages, and the odds book that turns parsed
//! messages into market state changes (suspensions, prices, lifecycle) with a reason each.
//!
//! Everything here is sans-IO: the shell hands in bytes and the current time; parsers return
//! typed errors, never panic, and turn feed prices into exact thousandths.

pub mod betfair;
pub mod book;
pub mod decimal;
pub mod records;
pub mod uof;
