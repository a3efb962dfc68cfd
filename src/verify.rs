//! `outpost verify`: check exported segments with a trusted public key, exactly as a regulator
//! would with `tests/verify_log.py`. Several files are checked as consecutive segments of one log.

use anyhow::Context;
use outpost_core::log::{ChainHead, PublicKey, decode_segment, verify_segment};
use std::path::PathBuf;

pub fn run(public_key: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let key = PublicKey::from_hex(public_key).context("--public-key")?;
    anyhow::ensure!(!files.is_empty(), "give at least one segment file");
    let mut prev: Option<ChainHead> = None;
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let (header, frames) =
            decode_segment(&bytes).with_context(|| format!("{}", f.display()))?;
        let report = verify_segment(&header, frames, &key, prev)
            .with_context(|| format!("{}: verification failed", f.display()))?;
        println!(
            "{}: OK — log {}, records {}..={} ({}), head {}",
            f.display(),
            header.log_id,
            report.first_seq,
            report.head.seq,
            report.records,
            report.head.hash
        );
        prev = Some(report.head);
    }
    Ok(())
}
