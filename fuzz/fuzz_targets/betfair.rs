//! Fuzz the Betfair Stream API parser, then the odds book with newline-separated messages.
#![no_main]
use libfuzzer_sys::fuzz_target;
use outpost_core::market::MarketStatus;
use outpost_core::time::UnixMillis;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let _ = outpost_core::feed::betfair::parse(data);
    let mut book = common::book();
    for (i, msg) in data.split(|b| *b == b'\n').enumerate() {
        let _ = book.ingest_betfair(msg, UnixMillis(i as i64), i % 2 == 0);
    }
    for m in book.snapshot() {
        if m.status == MarketStatus::Open {
            assert!(
                m.selections
                    .iter()
                    .all(|s| s.price.is_some_and(|p| p.milli() > 1000))
            );
        }
    }
});
