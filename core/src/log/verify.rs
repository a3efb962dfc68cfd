//! Verifying a chain: format, log id, gap-free sequence, hash links, non-decreasing time,
//! and seals. A record counts as verified only once a valid seal at or after it arrives.
//! Errors name the first bad record precisely.
//!
//! A verifier made with [`ChainVerifier::deferring_seals`] checks everything but the seal
//! signatures and hands those out as [`DeferredSeal`]s, so that a caller can check many at once
//! (the hub batches them, `outpost_sync::seal_batch`); records it releases are verified only
//! once their seals are.

use super::chain::ChainHead;
use super::keys::PublicKey;
use super::record::{DecodeError, Frame, RecordBody, RecordHash, seal_message};
use crate::ids::{LogId, Seq};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("record #{index} (seq {seq:?}): cannot decode: {error}")]
    Decode {
        index: usize,
        seq: Option<Seq>,
        error: DecodeError,
    },
    #[error("record #{index} seq {seq}: belongs to log {found}, expected {expected}")]
    WrongLog {
        index: usize,
        seq: Seq,
        expected: LogId,
        found: LogId,
    },
    #[error("record #{index}: expected seq {expected}, found {found} (gap or duplicate)")]
    Gap {
        index: usize,
        expected: Seq,
        found: Seq,
    },
    #[error("record #{index} seq {seq}: prev_hash {found} does not match the hash {expected} of seq {prev}", prev = Seq(seq.0 - 1))]
    BrokenChain {
        index: usize,
        seq: Seq,
        expected: RecordHash,
        found: RecordHash,
    },
    #[error("record #{index} seq {seq}: timestamp goes backwards")]
    TimeReversed { index: usize, seq: Seq },
    #[error("record #{index} seq {seq}: seal signature does not verify")]
    BadSeal { index: usize, seq: Seq },
    #[error("records from seq {first} to {last} are not covered by any seal")]
    Unsealed { first: Seq, last: Seq },
}

impl VerifyError {
    /// The sequence number of the first bad record, when known.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            VerifyError::Decode { seq, .. } => *seq,
            VerifyError::WrongLog { seq, .. }
            | VerifyError::BrokenChain { seq, .. }
            | VerifyError::TimeReversed { seq, .. }
            | VerifyError::BadSeal { seq, .. } => Some(*seq),
            VerifyError::Gap { found, .. } => Some(*found),
            VerifyError::Unsealed { first, .. } => Some(*first),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    pub first_seq: Seq,
    pub head: ChainHead,
}

/// A seal whose signature a [`ChainVerifier::deferring_seals`] verifier did not check: the
/// caller must check it (alone with [`DeferredSeal::verify`], or in a batch) before trusting the
/// records released with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeferredSeal {
    /// Position of the sealed record among all records pushed into the verifier.
    pub index: usize,
    /// First record of the group the seal closes.
    pub first: Seq,
    /// The sealed record (the last of its group).
    pub seq: Seq,
    /// Its hash: the seal signs [`seal_message`] of it.
    pub hash: RecordHash,
    pub signature: [u8; 64],
}

impl DeferredSeal {
    /// The bytes the seal signs.
    pub fn message(&self) -> Vec<u8> {
        seal_message(&self.hash)
    }
    /// Check this one seal exactly as a non-deferring verifier does.
    pub fn verify(&self, key: &PublicKey) -> Result<(), VerifyError> {
        if key.verify(&self.message(), &self.signature) {
            Ok(())
        } else {
            Err(self.error())
        }
    }
    /// The error a non-deferring verifier reports for this seal when it does not verify.
    pub fn error(&self) -> VerifyError {
        VerifyError::BadSeal {
            index: self.index,
            seq: self.seq,
        }
    }
}

/// Incremental verifier: push frames in order; records are released once sealed.
#[derive(Debug)]
pub struct ChainVerifier {
    log_id: LogId,
    key: PublicKey,
    /// Seal signatures are collected in `deferred` instead of checked.
    defer_seals: bool,
    deferred: Vec<DeferredSeal>,
    /// Last sealed-and-verified record (when deferring seals: sealed, its seal not yet checked).
    verified: ChainHead,
    /// Last pushed record (may be unsealed).
    tip: ChainHead,
    pending: Vec<(Frame, RecordBody)>,
    pushed: usize,
}

impl ChainVerifier {
    pub fn new(log_id: LogId, key: PublicKey, start: ChainHead) -> ChainVerifier {
        ChainVerifier {
            log_id,
            key,
            defer_seals: false,
            deferred: Vec::new(),
            verified: start,
            tip: start,
            pending: Vec::new(),
            pushed: 0,
        }
    }
    /// A verifier that does not check seal signatures itself: each seal it meets is queued for
    /// [`ChainVerifier::take_deferred_seals`], and the records it releases are verified only
    /// once the caller has checked those seals.
    pub fn deferring_seals(log_id: LogId, key: PublicKey, start: ChainHead) -> ChainVerifier {
        ChainVerifier {
            defer_seals: true,
            ..ChainVerifier::new(log_id, key, start)
        }
    }
    /// The seals met since the last call, in push order (always empty unless made with
    /// [`ChainVerifier::deferring_seals`]).
    pub fn take_deferred_seals(&mut self) -> Vec<DeferredSeal> {
        std::mem::take(&mut self.deferred)
    }
    /// Whether seals are waiting in [`ChainVerifier::take_deferred_seals`].
    pub fn has_deferred_seals(&self) -> bool {
        !self.deferred.is_empty()
    }
    pub fn verified_head(&self) -> ChainHead {
        self.verified
    }
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
    /// Drop unsealed records (e.g. after a disconnect): the sender resends from `verified`.
    pub fn reset_pending(&mut self) {
        self.pending.clear();
        self.tip = self.verified;
    }

    /// Check one frame. Returns the records that became verified (non-empty only when `frame`
    /// carries a valid seal). On error nothing pending is released and the pending tail is
    /// discarded.
    pub fn push(&mut self, frame: Frame) -> Result<Vec<(Frame, RecordBody)>, VerifyError> {
        let index = self.pushed;
        self.pushed += 1;
        // Hashed once here: the chain link and the seal both need it.
        let hash = frame.hash();
        match self.check(index, &frame, &hash) {
            Ok(body) => {
                self.tip = ChainHead {
                    seq: body.seq,
                    hash,
                    timestamp: body.timestamp,
                };
                let first = self.pending.first().map_or(body.seq, |p| p.1.seq);
                let seal = frame.seal;
                let seq = body.seq;
                self.pending.push((frame, body));
                if let Some(signature) = seal {
                    if self.defer_seals {
                        self.deferred.push(DeferredSeal {
                            index,
                            first,
                            seq,
                            hash: self.tip.hash,
                            signature,
                        });
                    }
                    self.verified = self.tip;
                    Ok(std::mem::take(&mut self.pending))
                } else {
                    Ok(Vec::new())
                }
            }
            Err(e) => {
                self.reset_pending();
                Err(e)
            }
        }
    }

    fn check(
        &self,
        index: usize,
        frame: &Frame,
        hash: &RecordHash,
    ) -> Result<RecordBody, VerifyError> {
        let body = frame.parse_body().map_err(|error| VerifyError::Decode {
            index,
            seq: peek_seq(&frame.body),
            error,
        })?;
        if body.log_id != self.log_id {
            return Err(VerifyError::WrongLog {
                index,
                seq: body.seq,
                expected: self.log_id.clone(),
                found: body.log_id,
            });
        }
        let expected = self.tip.seq.next();
        if body.seq != expected {
            return Err(VerifyError::Gap {
                index,
                expected,
                found: body.seq,
            });
        }
        if body.prev_hash != self.tip.hash {
            return Err(VerifyError::BrokenChain {
                index,
                seq: body.seq,
                expected: self.tip.hash,
                found: body.prev_hash,
            });
        }
        if body.timestamp < self.tip.timestamp {
            return Err(VerifyError::TimeReversed {
                index,
                seq: body.seq,
            });
        }
        if let Some(sig) = &frame.seal
            && !self.defer_seals
            && !self.key.verify(&seal_message(hash), sig)
        {
            return Err(VerifyError::BadSeal {
                index,
                seq: body.seq,
            });
        }
        Ok(body)
    }

    /// Call at the end of input: an unsealed tail is an error.
    pub fn finish(&self) -> Result<(), VerifyError> {
        match (self.pending.first(), self.pending.last()) {
            (Some(f), Some(l)) => Err(VerifyError::Unsealed {
                first: f.1.seq,
                last: l.1.seq,
            }),
            _ => Ok(()),
        }
    }
}

/// Best-effort sequence number of an undecodable body, for error messages.
fn peek_seq(body: &[u8]) -> Option<Seq> {
    let id_len = u16::from_be_bytes(body.get(6..8)?.try_into().ok()?) as usize;
    let s = body.get(8 + id_len..16 + id_len)?;
    Some(Seq(u64::from_be_bytes(s.try_into().ok()?)))
}

/// Verify a complete run of frames starting after `start`.
pub fn verify_frames<I: IntoIterator<Item = Frame>>(
    log_id: &LogId,
    key: &PublicKey,
    start: ChainHead,
    frames: I,
) -> Result<VerifyReport, VerifyError> {
    let mut v = ChainVerifier::new(log_id.clone(), *key, start);
    let mut n = 0u64;
    for f in frames {
        v.push(f)?;
        n += 1;
    }
    v.finish()?;
    Ok(VerifyReport {
        records: n,
        first_seq: start.seq.next(),
        head: v.verified_head(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::chain::ChainWriter;
    use super::super::keys::NodeKey;
    use super::super::record::RecordKind;
    use super::*;
    use crate::time::UnixMillis;

    fn build(n: usize, seal_every: usize) -> (NodeKey, Vec<Frame>) {
        let key = NodeKey::from_seed([7; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let mut frames = Vec::new();
        for i in 0..n {
            let mut f = w.append(
                RecordKind::WalletMovement,
                UnixMillis(1000 + i as i64),
                format!("{{\"i\":{i}}}").into_bytes(),
            );
            if (i + 1) % seal_every == 0 || i + 1 == n {
                ChainWriter::seal(&mut f, &key);
            }
            frames.push(f);
        }
        (key, frames)
    }

    fn verify(key: &NodeKey, frames: &[Frame]) -> Result<VerifyReport, VerifyError> {
        verify_frames(
            &LogId::new("gb-1").unwrap(),
            &key.public(),
            ChainHead::EMPTY,
            frames.iter().cloned(),
        )
    }

    #[test]
    fn good_chain_verifies() {
        let (key, frames) = build(50, 7);
        let r = verify(&key, &frames).unwrap();
        assert_eq!(r.records, 50);
        assert_eq!(r.head.seq, Seq(50));
    }

    #[test]
    fn each_tampering_names_the_first_bad_record() {
        let (key, frames) = build(20, 5);
        // Payload edit inside a group: the next record's prev_hash no longer matches.
        let mut t = frames.clone();
        let mut body = t[6].parse_body().unwrap();
        body.payload = b"{\"i\":666}".to_vec();
        t[6].body = body.encode();
        assert!(matches!(
            verify(&key, &t),
            Err(VerifyError::BrokenChain { seq: Seq(8), .. })
        ));
        // Edit the sealed record itself: its seal fails.
        let mut t = frames.clone();
        let mut body = t[9].parse_body().unwrap();
        body.payload = b"{\"i\":666}".to_vec();
        t[9].body = body.encode();
        assert!(matches!(
            verify(&key, &t),
            Err(VerifyError::BadSeal { seq: Seq(10), .. })
        ));
        // Gap.
        let mut t = frames.clone();
        t.remove(3);
        assert!(matches!(
            verify(&key, &t),
            Err(VerifyError::Gap {
                expected: Seq(4),
                found: Seq(5),
                ..
            })
        ));
        // Wrong key.
        let other = NodeKey::from_seed([8; 32]);
        assert!(matches!(
            verify(&other, &frames),
            Err(VerifyError::BadSeal { seq: Seq(5), .. })
        ));
        // Unsealed tail.
        let mut t = frames.clone();
        t.truncate(18);
        assert!(matches!(
            verify(&key, &t),
            Err(VerifyError::Unsealed {
                first: Seq(16),
                last: Seq(18)
            })
        ));
        // Garbage body.
        let mut t = frames.clone();
        t[2].body[0] = b'X';
        assert!(matches!(
            verify(&key, &t),
            Err(VerifyError::Decode {
                seq: Some(Seq(3)),
                ..
            })
        ));
    }

    #[test]
    fn incremental_release_only_on_seal() {
        let (key, frames) = build(10, 4);
        let mut v = ChainVerifier::new(LogId::new("gb-1").unwrap(), key.public(), ChainHead::EMPTY);
        let released: Vec<usize> = frames
            .into_iter()
            .map(|f| v.push(f).unwrap().len())
            .collect();
        assert_eq!(released, vec![0, 0, 0, 4, 0, 0, 0, 4, 0, 2]);
    }

    #[test]
    fn deferring_verifier_hands_out_seals_and_checks_the_rest() {
        let (key, mut frames) = build(10, 4);
        // A forged seal on the second group: the deferring verifier releases it unchecked,
        // with the seal to check; checking it gives the error a plain verifier gives.
        frames[7].seal = Some([3; 64]);
        let mut v = ChainVerifier::deferring_seals(
            LogId::new("gb-1").unwrap(),
            key.public(),
            ChainHead::EMPTY,
        );
        let released: Vec<usize> = frames
            .iter()
            .map(|f| v.push(f.clone()).unwrap().len())
            .collect();
        assert_eq!(released, vec![0, 0, 0, 4, 0, 0, 0, 4, 0, 2]);
        let seals = v.take_deferred_seals();
        assert!(!v.has_deferred_seals());
        assert_eq!(
            seals
                .iter()
                .map(|d| (d.index, d.first, d.seq))
                .collect::<Vec<_>>(),
            vec![
                (3, Seq(1), Seq(4)),
                (7, Seq(5), Seq(8)),
                (9, Seq(9), Seq(10))
            ]
        );
        assert_eq!(seals[0].verify(&key.public()), Ok(()));
        assert_eq!(seals[2].verify(&key.public()), Ok(()));
        let plain = verify(&key, &frames).unwrap_err();
        assert_eq!(seals[1].verify(&key.public()), Err(plain));
        // Structural checks still apply.
        let mut v = ChainVerifier::deferring_seals(
            LogId::new("gb-1").unwrap(),
            key.public(),
            ChainHead::EMPTY,
        );
        v.push(frames[0].clone()).unwrap();
        assert!(matches!(
            v.push(frames[2].clone()),
            Err(VerifyError::Gap { .. })
        ));
    }
}
