//! Start-up: verify the whole log, rebuild state (from the latest snapshot that matches the
//! log, then replay the rest), and write the genesis record on first start.
//!
//! A log that fails verification stops the node with the first bad record named: the node
//! never serves from state it cannot justify.

use crate::store::{LogStore, StoreError};
use crate::vault::Vault;
use outpost_core::edge::EdgeState;
use outpost_core::edge::events::EdgeEvent;
use outpost_core::ids::{LogId, Seq};
use outpost_core::log::{ChainHead, ChainVerifier, NodeKey, RecordHash};
use outpost_core::time::UnixMillis;

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("log verification failed: {0}")]
    Verify(#[from] outpost_core::log::VerifyError),
    #[error("record {seq}: {detail}")]
    Replay { seq: Seq, detail: String },
    #[error("PII vault: {0}")]
    Vault(String),
}

pub struct Recovered {
    pub state: EdgeState,
    pub head: ChainHead,
    pub vault: Vault,
    pub records: u64,
    pub from_snapshot: Option<Seq>,
}

const CHUNK: usize = 8192;

pub fn recover(store: &LogStore, log_id: &LogId, key: &NodeKey) -> Result<Recovered, RecoverError> {
    let mut snapshot = load_snapshot(store);
    let mut verifier = ChainVerifier::new(log_id.clone(), key.public(), ChainHead::EMPTY);
    let mut state = EdgeState::default();
    let mut snapshot_used = None;
    let mut next = Seq(1);
    let mut records = 0u64;
    loop {
        let frames = store.read_frames(next, CHUNK)?;
        if frames.is_empty() {
            break;
        }
        next = Seq(next.0 + frames.len() as u64);
        for f in frames {
            for (frame, body) in verifier.push(f)? {
                records += 1;
                if let Some((snap_head, _)) = &snapshot
                    && body.seq == snap_head.seq
                {
                    if frame.hash() == snap_head.hash {
                        // Moved, not cloned: a large state must not be held twice.
                        state = snapshot.take().expect("matched above").1;
                        snapshot_used = Some(body.seq);
                        continue;
                    }
                    tracing::warn!(
                        "snapshot at seq {} does not match the log; replaying from the start",
                        body.seq
                    );
                }
                if snapshot_used.is_some_and(|s| body.seq <= s) {
                    continue;
                }
                let ev = EdgeEvent::from_payload(body.kind, &body.payload).map_err(|e| {
                    RecoverError::Replay {
                        seq: body.seq,
                        detail: e.to_string(),
                    }
                })?;
                state
                    .apply(&ev, body.timestamp)
                    .map_err(|e| RecoverError::Replay {
                        seq: body.seq,
                        detail: e.to_string(),
                    })?;
            }
        }
    }
    verifier.finish()?;
    if let Some(l) = state.ledger.as_ref() {
        assert_eq!(l.sum(), 0, "replayed ledger must sum to zero");
    }
    let vault = Vault::load(store.pii_entries()?).map_err(RecoverError::Vault)?;
    Ok(Recovered {
        state,
        head: verifier.verified_head(),
        vault,
        records,
        from_snapshot: snapshot_used,
    })
}

fn load_snapshot(store: &LogStore) -> Option<(ChainHead, EdgeState)> {
    let bytes = store.snapshot().ok()??;
    #[derive(serde::Deserialize)]
    struct Snap {
        seq: Seq,
        hash: String,
        state: EdgeState,
    }
    match serde_json::from_slice::<Snap>(&bytes) {
        Ok(s) => Some((
            ChainHead {
                seq: s.seq,
                hash: RecordHash::from_hex(&s.hash)?,
                timestamp: UnixMillis(0),
            },
            s.state,
        )),
        Err(e) => {
            tracing::warn!("ignoring unreadable snapshot: {e}");
            None
        }
    }
}
