//! Batched Ed25519 verification of the seals the hub receives.
//!
//! The hub's session verifies a node's records with a verifier that defers seal signatures
//! ([`ChainVerifier::deferring_seals`](outpost_core::log::ChainVerifier::deferring_seals)) and
//! checks all seals collected before a commit here at once, with `ed25519-dalek`'s
//! `verify_batch` (one multiscalar multiplication for the whole batch instead of one
//! double-scalar multiplication per seal). If the batch does not verify, every seal is checked
//! on its own, in order, so the error names the first bad one exactly as per-seal verification
//! would.
//!
//! Randomness: `verify_batch` (2.x/3.x) derives the coefficients of its random linear
//! combination from a transcript of all its inputs (Merlin/STROBE), not from an entropy source,
//! so nothing has to be passed in and the result is deterministic.
//!
//! Agreement with per-seal (strict) verification, which is what OpenSSL and Python
//! `cryptography` do: the batch equation is cofactorless over a random combination, so on its
//! own it would accept a few things `verify_strict` refuses. Those are checked here first and
//! send the batch to the one-by-one path: a small-order or not torsion-free node key (checked
//! once per key), an `R` that is not a canonical encoding, and a small-order `R`. What remains
//! is an `R` with a small torsion component on an otherwise valid signature: the batch accepts it
//! whenever its coefficient cancels the torsion, the strict check never does. Only the holder of
//! the node's private key can make such a seal (it is not a forgery), and a third-party verifier
//! that checks each seal (`tests/verify_log.py`) still names it; see `docs/protocol.md`.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, VerifyingKey};
use outpost_core::log::{DeferredSeal, PublicKey, VerifyError};

/// Larger batches gain little more and only cost memory.
const MAX_BATCH: usize = 1024;

/// Checks seals made with one node key.
#[derive(Debug, Clone)]
pub struct SealBatcher {
    key: PublicKey,
    /// `None`: the key is unsuitable for batching (small order or with a torsion component; an
    /// honestly generated key never is), so seals are checked one by one.
    batch_key: Option<VerifyingKey>,
}

/// What [`SealBatcher::verify`] did, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SealStats {
    /// Seals covered by a successful batch equation.
    pub batched: usize,
    /// Seals checked one by one (a failed batch, a lone seal, or a seal unfit for batching).
    pub single: usize,
}

impl SealBatcher {
    pub fn new(key: PublicKey) -> SealBatcher {
        let bytes = key.to_bytes();
        let batch_key = CompressedEdwardsY(bytes)
            .decompress()
            .filter(|p| !p.is_small_order() && p.is_torsion_free())
            .and_then(|_| VerifyingKey::from_bytes(&bytes).ok());
        SealBatcher { key, batch_key }
    }

    /// Ok when every seal verifies; otherwise the error for the first one (in the given order)
    /// that does not, identical to a per-seal verifier's.
    pub fn verify(&self, seals: &[DeferredSeal]) -> Result<SealStats, VerifyError> {
        let mut stats = SealStats::default();
        for chunk in seals.chunks(MAX_BATCH) {
            if chunk.len() > 1 && self.batch_verifies(chunk) {
                stats.batched += chunk.len();
                continue;
            }
            for seal in chunk {
                seal.verify(&self.key)?;
            }
            stats.single += chunk.len();
        }
        Ok(stats)
    }

    fn batch_verifies(&self, seals: &[DeferredSeal]) -> bool {
        let Some(key) = self.batch_key else {
            return false;
        };
        if !seals.iter().all(|s| r_is_batchable(&s.signature)) {
            return false;
        }
        let messages: Vec<Vec<u8>> = seals.iter().map(DeferredSeal::message).collect();
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<Signature> = seals
            .iter()
            .map(|s| Signature::from_bytes(&s.signature))
            .collect();
        let keys = vec![key; seals.len()];
        ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
    }
}

/// The signature's `R` is a canonical encoding of a point that is not of small order (what
/// `verify_strict` demands and the batch equation does not check).
fn r_is_batchable(signature: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    CompressedEdwardsY(r)
        .decompress()
        .is_some_and(|p| !p.is_small_order() && p.compress().0 == r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::ids::{LogId, Seq};
    use outpost_core::log::{ChainHead, ChainVerifier, ChainWriter, Frame, NodeKey, RecordKind};
    use outpost_core::time::UnixMillis;

    fn sealed_chain(key: &NodeKey, n: usize, group: usize) -> Vec<Frame> {
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        (0..n)
            .map(|i| {
                let mut f = w.append(
                    RecordKind::WalletMovement,
                    UnixMillis(1000 + i as i64),
                    format!("{{\"i\":{i}}}").into_bytes(),
                );
                if (i + 1) % group == 0 {
                    ChainWriter::seal(&mut f, key);
                }
                f
            })
            .collect()
    }

    fn seals_of(key: &NodeKey, frames: &[Frame]) -> Vec<DeferredSeal> {
        let mut v = ChainVerifier::deferring_seals(
            LogId::new("gb-1").unwrap(),
            key.public(),
            ChainHead::EMPTY,
        );
        for f in frames {
            v.push(f.clone()).unwrap();
        }
        v.take_deferred_seals()
    }

    #[test]
    fn a_valid_batch_verifies_in_one_equation() {
        let key = NodeKey::from_seed([4; 32]);
        let seals = seals_of(&key, &sealed_chain(&key, 300, 3));
        assert_eq!(seals.len(), 100);
        let stats = SealBatcher::new(key.public()).verify(&seals).unwrap();
        assert_eq!(
            stats,
            SealStats {
                batched: 100,
                single: 0
            }
        );
    }

    #[test]
    fn one_forged_seal_among_many_is_named() {
        let key = NodeKey::from_seed([4; 32]);
        let frames = sealed_chain(&key, 300, 3);
        let mut seals = seals_of(&key, &frames);
        // Group 58 (seqs 172-174) carries someone else's signature over the right hash.
        let forger = NodeKey::from_seed([5; 32]);
        seals[57].signature = forger.sign(&seals[57].message());
        // And group 90 a bit-flipped one: only the first bad seal is reported.
        seals[89].signature[40] ^= 1;
        let e = SealBatcher::new(key.public()).verify(&seals).unwrap_err();
        assert_eq!(
            e,
            VerifyError::BadSeal {
                index: 173,
                seq: Seq(174)
            }
        );
        assert_eq!((seals[57].first, seals[57].seq), (Seq(172), Seq(174)));
    }

    #[test]
    fn seals_unfit_for_the_batch_equation_go_one_by_one() {
        let key = NodeKey::from_seed([4; 32]);
        let mut seals = seals_of(&key, &sealed_chain(&key, 12, 3));
        // R = the identity point (small order): strict verification refuses it.
        seals[1].signature[..32].copy_from_slice(&{
            let mut id = [0u8; 32];
            id[0] = 1;
            id
        });
        assert!(!r_is_batchable(&seals[1].signature));
        assert_eq!(
            SealBatcher::new(key.public()).verify(&seals),
            Err(seals[1].error())
        );
        // A lone seal is simply checked.
        let one = &seals[..1];
        assert_eq!(
            SealBatcher::new(key.public()).verify(one),
            Ok(SealStats {
                batched: 0,
                single: 1
            })
        );
    }
}
