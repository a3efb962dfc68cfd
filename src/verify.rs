//! `outpost verify`: check exported segments with a trusted public key, exactly as a regulator
//! would with `tests/verify_log.py`.

use anyhow::Context;
use outpost_core::log::{PublicKey, decode_segment, verify_frames};
use std::path::PathBuf;

pub fn run(public_key: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let key = PublicKey::from_hex(public_key).context("--public-key")?;
    anyhow::ensure!(!files.is_empty(), "give at least one segment file");
    for f in files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let (header, frames) = decode_segment(&bytes).with_context(|| format!("{}", f.display()))?;
        anyhow::ensure!(header.public_key == key.to_hex(), "{}: segment names key {}, not the trusted key", f.display(), header.public_key);
        let start = header.start()?;
        let report = verify_frames(&header.log_id, &key, start, frames).with_context(|| format!("{}: verification failed", f.display()))?;
        anyhow::ensure!(report.head.hash.to_hex() == header.last_hash, "{}: header last_hash does not match the records", f.display());
        println!("{}: OK — log {}, records {}..={} ({}), head {}", f.display(), header.log_id, report.first_seq, report.head.seq, report.records, report.head.hash);
    }
    Ok(())
}
