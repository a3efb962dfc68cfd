//! Benchmark of the checkpoint Merkle tree (`docs/checkpoints.md`): append rate, root, and
//! inclusion / consistency proof generation and verification, for the edge's configuration
//! (low levels forgotten, leaves re-read from an in-memory source standing in for the log).
//!
//!     cargo run --release -p outpost-core --example merkle_bench [-- RECORDS]

use outpost_core::log::merkle::{
    CompactRange, LeafSource, MerkleTree, TreeHash, leaf_hash, verify_consistency, verify_inclusion,
};
use std::time::Instant;

struct Leaves(Vec<TreeHash>);
impl LeafSource for Leaves {
    fn leaf_hashes(&mut self, start: u64, end: u64) -> Result<Vec<TreeHash>, String> {
        Ok(self.0[start as usize..end as usize].to_vec())
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let hashes: Vec<[u8; 32]> = (0..n)
        .map(|i| outpost_core::log::sha256(&i.to_be_bytes()))
        .collect();

    let t0 = Instant::now();
    let mut tree = MerkleTree::with_min_level(10);
    for h in &hashes {
        tree.push(h);
    }
    let append = t0.elapsed();
    let t0 = Instant::now();
    let mut range = CompactRange::new();
    for h in &hashes {
        range.push(h);
    }
    let compact = t0.elapsed();
    assert_eq!(range.root(), tree.root());

    let mut src = Leaves(hashes.iter().map(|h| leaf_hash(h)).collect());
    let samples = 10_000u64;
    let root = tree.root();
    let t0 = Instant::now();
    let mut proofs = Vec::with_capacity(samples as usize);
    for k in 0..samples {
        let i = (k * 7919) % n;
        proofs.push((i, tree.inclusion_proof_with(i, n, &mut src).unwrap()));
    }
    let incl_gen = t0.elapsed();
    let t0 = Instant::now();
    for (i, p) in &proofs {
        verify_inclusion(&src.0[*i as usize], *i, n, p, &root).unwrap();
    }
    let incl_ver = t0.elapsed();
    let t0 = Instant::now();
    let m = n / 3 + 17;
    let mut cons = Vec::new();
    for _ in 0..1000 {
        cons = tree.consistency_proof_with(m, n, &mut src).unwrap();
    }
    let cons_gen = t0.elapsed();
    let m_root = tree.root_at_with(m, &mut src).unwrap();
    verify_consistency(m, n, &cons, &m_root, &root).unwrap();

    let per = |d: std::time::Duration, k: u64| d.as_secs_f64() * 1e6 / k as f64;
    println!("records: {n}");
    println!(
        "append (edge tree, min level 10): {:.0} records/s ({:.3} us each)",
        n as f64 / append.as_secs_f64(),
        per(append, n)
    );
    println!(
        "append (hub compact range):       {:.0} records/s",
        n as f64 / compact.as_secs_f64()
    );
    println!(
        "inclusion proof: generate {:.1} us, verify {:.1} us ({} hashes)",
        per(incl_gen, samples),
        per(incl_ver, samples),
        proofs[0].1.len()
    );
    println!(
        "consistency proof {m}->{n}: generate {:.1} us ({} hashes)",
        per(cons_gen, 1000),
        cons.len()
    );
}
