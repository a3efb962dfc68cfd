//! Fuzz the UOF XML parser, then the odds book with the same bytes split into messages:
//! neither may panic, and no market may end up open with a price at or below 1.0.
#![no_main]
use libfuzzer_sys::fuzz_target;
use outpost_core::market::MarketStatus;
use outpost_core::time::UnixMillis;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let _ = outpost_core::feed::uof::parse(data);
    let mut book = common::book();
    for (i, msg) in data.split(|b| *b == 0).enumerate() {
        let _ = book.ingest_uof(msg, UnixMillis(i as i64 * 1000));
        let _ = book.tick(UnixMillis(i as i64 * 1000));
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
