//! The signed, hash-chained event log: record byte format, sealing (signatures), chain
//! building, verification and segment files. The byte format is specified in
//! `docs/log-format.md` so that third parties can verify a log without our code.

mod chain;
mod checkpoint;
mod keys;
pub mod merkle;
mod record;
mod segment;
mod verify;

pub use chain::{ChainHead, ChainWriter};
pub use checkpoint::{
    Checkpoint, CheckpointError, NOTE_MAX, Note, cosign, open_checkpoint, origin_for,
    verify_cosignature,
};
pub use keys::{KeyError, NodeKey, PublicKey};
pub use record::{
    DecodeError, Frame, RecordBody, RecordHash, RecordKind, SEAL_DOMAIN, seal_message, sha256,
};
pub use segment::{
    SEGMENT_FORMAT, SegmentError, SegmentHeader, decode_segment, encode_segment, verify_segment,
};
pub use verify::{ChainVerifier, DeferredSeal, VerifyError, VerifyReport, verify_frames};
