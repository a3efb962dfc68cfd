//! Seal verification cost at the hub: one-by-one strict verification against the batched
//! verification of `outpost_sync::seal_batch`, for the seals of a run of sealed groups.
//!
//! `cargo run --release -p outpost-sync --no-default-features --example seal_batch_bench [seals]`

use outpost_core::ids::LogId;
use outpost_core::log::{ChainHead, ChainVerifier, ChainWriter, NodeKey, RecordKind};
use outpost_core::time::UnixMillis;
use outpost_sync::seal_batch::SealBatcher;
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let key = NodeKey::from_seed([1; 32]);
    let mut w = ChainWriter::new(LogId::new("gb-1").expect("log id"), ChainHead::EMPTY);
    let mut v = ChainVerifier::deferring_seals(
        LogId::new("gb-1").expect("log id"),
        key.public(),
        ChainHead::EMPTY,
    );
    for i in 0..n {
        let mut f = w.append(
            RecordKind::WalletMovement,
            UnixMillis(1_795_000_000_000),
            format!("{{\"i\":{i}}}").into_bytes(),
        );
        ChainWriter::seal(&mut f, &key);
        v.push(f).expect("valid chain");
    }
    let seals = v.take_deferred_seals();
    let t = Instant::now();
    for s in &seals {
        s.verify(&key.public()).expect("valid seal");
    }
    let single = t.elapsed().as_secs_f64();
    let batcher = SealBatcher::new(key.public());
    for batch in [4usize, 16, 64, 256, 1024] {
        let t = Instant::now();
        for chunk in seals.chunks(batch) {
            batcher.verify(chunk).expect("valid batch");
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "batch of {batch:>4}: {:.1} µs/seal ({:.2}x one-by-one)",
            secs * 1e6 / n as f64,
            single / secs
        );
    }
    println!(
        "one by one (verify_strict): {:.1} µs/seal, {n} seals",
        single * 1e6 / n as f64
    );
}
