//! Signed tree heads ("checkpoints") and witness cosignatures, in the C2SP formats used by
//! transparency logs (Go checksum database, Sigstore, the C2SP witness network), so that a
//! third party can check them with nothing but Ed25519 and SHA-256. Specified in
//! `docs/checkpoints.md`.
//!
//! A checkpoint body (C2SP `tlog-checkpoint`) is UTF-8 text, every line ending in `\n`:
//!
//! ```text
//! outpost/gb-1                                   origin: "outpost/" + log id
//! 1234                                           tree size (decimal, no leading zeros)
//! 3kWnAx2oM…=                                    root hash, standard base64 with padding
//! timestamp 1763728000123                        extension line: signing time, Unix ms
//! ```
//!
//! The node signs it as a C2SP `signed-note`: the signature is Ed25519 over the body bytes
//! exactly; the note is `body || "\n" || "— " name " " base64(key_id(4) || sig(64)) "\n"` with
//! `key_id = SHA-256(name || "\n" || 0x01 || public_key)[..4]` and `name` = the origin.
//!
//! A witness cosignature (C2SP `tlog-cosignature`, `cosignature/v1`) is an Ed25519 signature
//! over `"cosignature/v1\ntime " t "\n" || body`, where `t` is the cosigning time in Unix
//! seconds; its note line is `"— " witness " " base64(key_id(4) || t as u64 BE (8) || sig(64))`
//! with `key_id = SHA-256(witness || "\n" || 0x04 || public_key)[..4]`.
//!
//! Domain separation: a log seal signs `"outpost/log/seal/v1" || hash` (51 bytes); a
//! checkpoint body starts with `"outpost/" node "\n"` where a node id holds no `/`, and a
//! cosignature message starts with `"cosignature/v1\n"`, so no signature is valid as another.

use super::keys::{NodeKey, PublicKey};
use super::merkle::TreeHash;
use super::record::sha256;
use crate::time::UnixMillis;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The em dash that starts a signed-note signature line.
const SIG_PREFIX: &str = "\u{2014} ";
/// Signature type bytes of C2SP signed-note key ids.
const ALG_ED25519: u8 = 0x01;
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// Notes are a few hundred bytes; anything far larger is refused before parsing.
pub const NOTE_MAX: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("note of {0} bytes exceeds the {NOTE_MAX}-byte limit")]
    TooLarge(usize),
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("no signature by {0} on the checkpoint")]
    NoSignature(String),
    #[error("signature by {0} does not verify")]
    BadSignature(String),
    #[error("checkpoint origin is {got:?}, expected {want:?}")]
    Origin { got: String, want: String },
}

/// A tree head: the log of `size` records (seq 1..=size) has Merkle root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: TreeHash,
    pub timestamp: UnixMillis,
}

/// The checkpoint origin of a log id.
pub fn origin_for(log_id: &str) -> String {
    format!("outpost/{log_id}")
}

fn key_id(name: &str, alg: u8, key: &PublicKey) -> [u8; 4] {
    let mut m = Vec::with_capacity(name.len() + 34);
    m.extend_from_slice(name.as_bytes());
    m.push(b'\n');
    m.push(alg);
    m.extend_from_slice(&key.to_bytes());
    let h = sha256(&m);
    [h[0], h[1], h[2], h[3]]
}

impl Checkpoint {
    /// The body text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\ntimestamp {}\n",
            self.origin,
            self.size,
            B64.encode(self.root),
            self.timestamp.0
        )
    }

    /// Parse a body (strict: exactly the four lines Outpost writes).
    pub fn parse_body(body: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let Some(text) = body.strip_suffix('\n') else {
            return Err(bad("body must end with a newline"));
        };
        let lines: Vec<&str> = text.split('\n').collect();
        let [origin, size, root, ts] = lines[..] else {
            return Err(bad("body must have 4 lines: origin, size, root, timestamp"));
        };
        if origin.is_empty() || origin.contains(char::is_whitespace) {
            return Err(bad("origin must be non-empty without whitespace"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("size must be a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| bad("size out of range"))?;
        let root_text = root;
        let root_bytes = B64
            .decode(root_text)
            .map_err(|_| bad("root is not base64"))?;
        let root: TreeHash = root_bytes
            .try_into()
            .map_err(|_| bad("root is not 32 bytes"))?;
        if B64.encode(root) != root_text {
            return Err(bad("root is not canonical base64"));
        }
        let ts = ts
            .strip_prefix("timestamp ")
            .ok_or_else(|| bad("4th line must be `timestamp <unix ms>`"))?;
        if ts.is_empty()
            || !ts.bytes().all(|b| b.is_ascii_digit())
            || (ts.len() > 1 && ts.starts_with('0'))
        {
            return Err(bad(
                "timestamp must be a decimal number without leading zeros",
            ));
        }
        let ts: i64 = ts.parse().map_err(|_| bad("timestamp out of range"))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            timestamp: UnixMillis(ts),
        })
    }

    /// Sign as a C2SP signed note under `name` (Outpost uses the origin).
    pub fn sign(&self, name: &str, key: &NodeKey) -> String {
        let body = self.body();
        let sig = key.sign(body.as_bytes());
        let mut blob = key_id(name, ALG_ED25519, &key.public()).to_vec();
        blob.extend_from_slice(&sig);
        format!("{body}\n{SIG_PREFIX}{name} {}\n", B64.encode(blob))
    }
}

/// A parsed signed note: body text and signature lines (`name`, decoded blob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub body: String,
    pub signatures: Vec<(String, Vec<u8>)>,
}

impl Note {
    pub fn parse(note: &str) -> Result<Note, CheckpointError> {
        if note.len() > NOTE_MAX {
            return Err(CheckpointError::TooLarge(note.len()));
        }
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let Some(split) = note.find("\n\n") else {
            return Err(bad("note has no blank line before its signatures"));
        };
        let body = &note[..split + 1];
        let sigs = &note[split + 2..];
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(bad("note must end with a newline"));
        };
        let mut signatures = Vec::new();
        for line in sigs.split('\n') {
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or_else(|| bad("signature line must start with an em dash and a space"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| bad("signature line needs a name and a signature"))?;
            let blob = B64
                .decode(b64)
                .map_err(|_| bad("signature is not base64"))?;
            if name.is_empty() || blob.len() < 5 {
                return Err(bad("signature line is too short"));
            }
            signatures.push((name.to_owned(), blob));
        }
        Ok(Note {
            body: body.to_owned(),
            signatures,
        })
    }

    /// Text of the note with `extra` signature lines appended (e.g. cosignatures).
    pub fn with_lines(note: &str, extra: &[String]) -> String {
        let mut s = note.to_owned();
        for l in extra {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Verify a node-signed checkpoint note: a signature by `name` with `key` over the body, and
/// the body's origin equals `name`. Returns the checkpoint and its body text.
pub fn open_checkpoint(
    note: &str,
    name: &str,
    key: &PublicKey,
) -> Result<(Checkpoint, String), CheckpointError> {
    let n = Note::parse(note)?;
    let cp = Checkpoint::parse_body(&n.body)?;
    if cp.origin != name {
        return Err(CheckpointError::Origin {
            got: cp.origin,
            want: name.to_owned(),
        });
    }
    let id = key_id(name, ALG_ED25519, key);
    let Some((_, blob)) = n
        .signatures
        .iter()
        .find(|(nm, b)| nm == name && b[..4] == id)
    else {
        return Err(CheckpointError::NoSignature(name.to_owned()));
    };
    let sig: [u8; 64] = blob[4..]
        .try_into()
        .map_err(|_| CheckpointError::BadSignature(name.to_owned()))?;
    if !key.verify(n.body.as_bytes(), &sig) {
        return Err(CheckpointError::BadSignature(name.to_owned()));
    }
    Ok((cp, n.body))
}

fn cosigned_message(body: &str, time_s: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {time_s}\n{body}").into_bytes()
}

/// Cosign a checkpoint body as witness `witness`; returns the signature line (no newline).
pub fn cosign(body: &str, witness: &str, key: &NodeKey, time_s: u64) -> String {
    let sig = key.sign(&cosigned_message(body, time_s));
    let mut blob = key_id(witness, ALG_COSIGNATURE_V1, &key.public()).to_vec();
    blob.extend_from_slice(&time_s.to_be_bytes());
    blob.extend_from_slice(&sig);
    format!("{SIG_PREFIX}{witness} {}", B64.encode(blob))
}

/// Verify a cosignature line by `witness` with `key` on `body`; returns the cosigning time
/// (Unix seconds).
pub fn verify_cosignature(
    body: &str,
    line: &str,
    witness: &str,
    key: &PublicKey,
) -> Result<u64, CheckpointError> {
    let bad = || CheckpointError::BadSignature(witness.to_owned());
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .and_then(|r| r.strip_prefix(witness))
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| CheckpointError::NoSignature(witness.to_owned()))?;
    let blob = B64.decode(rest).map_err(|_| bad())?;
    if blob.len() != 4 + 8 + 64 || blob[..4] != key_id(witness, ALG_COSIGNATURE_V1, key) {
        return Err(bad());
    }
    let time_s = u64::from_be_bytes(blob[4..12].try_into().map_err(|_| bad())?);
    let sig: [u8; 64] = blob[12..].try_into().map_err(|_| bad())?;
    if !key.verify(&cosigned_message(body, time_s), &sig) {
        return Err(bad());
    }
    Ok(time_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            origin: origin_for("gb-1"),
            size: 42,
            root: [7; 32],
            timestamp: UnixMillis(1_763_728_000_123),
        }
    }

    #[test]
    fn body_layout_and_roundtrip() {
        let c = cp();
        assert_eq!(
            c.body(),
            "outpost/gb-1\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntimestamp 1763728000123\n"
        );
        assert_eq!(Checkpoint::parse_body(&c.body()).unwrap(), c);
    }

    #[test]
    fn sign_open_and_cosign() {
        let node = NodeKey::from_seed([1; 32]);
        let hub = NodeKey::from_seed([2; 32]);
        let c = cp();
        let note = c.sign(&c.origin, &node);
        assert!(note.contains("\n\n\u{2014} outpost/gb-1 "));
        let (got, body) = open_checkpoint(&note, "outpost/gb-1", &node.public()).unwrap();
        assert_eq!(got, c);
        assert!(open_checkpoint(&note, "outpost/gb-1", &hub.public()).is_err());
        assert!(open_checkpoint(&note, "outpost/gb-2", &node.public()).is_err());
        let tampered = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            open_checkpoint(&tampered, "outpost/gb-1", &node.public()),
            Err(CheckpointError::BadSignature(_))
        ));
        let line = cosign(&body, "outpost/hub", &hub, 1_763_728_001);
        assert_eq!(
            verify_cosignature(&body, &line, "outpost/hub", &hub.public()).unwrap(),
            1_763_728_001
        );
        assert!(verify_cosignature(&body, &line, "outpost/hub", &node.public()).is_err());
        let other = Checkpoint { size: 43, ..c }.body();
        assert!(verify_cosignature(&other, &line, "outpost/hub", &hub.public()).is_err());
        // A cosigned note still opens, and still carries both signatures.
        let full = Note::with_lines(&note, &[line]);
        assert_eq!(Note::parse(&full).unwrap().signatures.len(), 2);
        open_checkpoint(&full, "outpost/gb-1", &node.public()).unwrap();
    }

    /// Known answers computed independently with Python `cryptography` + `hashlib` from the
    /// format in `docs/checkpoints.md` (Ed25519 is deterministic): seed 01…01 for the node,
    /// 02…02 for the witness.
    #[test]
    fn known_answers_from_an_independent_implementation() {
        let node = NodeKey::from_seed([1; 32]);
        let hub = NodeKey::from_seed([2; 32]);
        let c = cp();
        assert_eq!(
            c.sign(&c.origin, &node),
            "outpost/gb-1\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntimestamp 1763728000123\n\n\u{2014} outpost/gb-1 yEwpynRuppXH357Dcy6GA+Mu4DWDcmYn3CW25zB1xBeDqQovGZ/R64QgyyACK7Mj5yuzWg9684nUurwwUlWKmn9jTgA=\n"
        );
        assert_eq!(
            cosign(&c.body(), "outpost/hub", &hub, 1_763_728_001),
            "\u{2014} outpost/hub iLS/eAAAAABpIFqByhsKRrcdyiuTpVutDnXFX2WHs/ZcXwlM6qaGpjRi/im4jwfGEeDCoCoLh420dgk74OZ7EI6bXHugfDuN2iVlDg=="
        );
    }

    #[test]
    fn malformed_notes_are_errors_not_panics() {
        for s in [
            "",
            "\n\n",
            "outpost/gb-1\n42\n",
            "outpost/gb-1\n042\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntimestamp 1\n\n\u{2014} a AAAAAAA=\n",
            "outpost/gb-1\n42\nBwcH\ntimestamp 1\n\n\u{2014} a AAAAAAA=\n",
            "outpost/gb-1\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntimestamp x\n\n\u{2014} a AAAAAAA=\n",
            "outpost/gb-1\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\ntimestamp 1\n\n- a AAAAAAA=\n",
        ] {
            assert!(
                open_checkpoint(s, "outpost/gb-1", &NodeKey::from_seed([1; 32]).public()).is_err(),
                "{s:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn random_text_never_panics(s in "\\PC{0,300}") {
            let _ = Note::parse(&s);
            let _ = Checkpoint::parse_body(&s);
        }
    }
}
