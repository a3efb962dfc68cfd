//! The replication wire protocol: message types and their binary codec.
//!
//! Every message travels as `u32 BE length || u8 type || body`, where `length` counts the type
//! byte plus the body and is at most [`MAX_MESSAGE`]. Integers are big-endian, strings are
//! `u16 length || UTF-8`, frame lists are `u32 count || frames` in the log's own frame encoding
//! ([`Frame::encode_into`]). The bytes come from the network, so decoding never panics and
//! never allocates more than the bytes that actually arrived: a declared length is checked
//! against [`MAX_MESSAGE`] before anything is buffered for it, and a declared frame count only
//! reserves capacity for as many frames as the remaining bytes could possibly hold.

use outpost_core::ids::{Jurisdiction, NodeId, Seq};
use outpost_core::log::{DecodeError, Frame, RecordHash};

/// Version spoken by this build; `Hello` and `Welcome` carry it and both sides insist on equality.
/// Version 2 added `Checkpoint` / `Cosigned` (witnessed tree heads, `docs/checkpoints.md`) and
/// `lag_ms` in `Heartbeat`. The framing, the `Error` message and the first field of `Hello` (the
/// version) never change, so any two versions can tell each other they differ (see
/// [`Decoder::peek_hello_version`]); a version-1 node is refused at `Hello` with an error naming
/// both versions.
pub const PROTOCOL_VERSION: u16 = 2;

/// Upper bound on the length field (type byte + body): 8 MiB. Larger declared lengths are
/// rejected before any buffering, so a peer cannot make us allocate more than this per message.
pub const MAX_MESSAGE: usize = 8 << 20;

/// Bytes of an `Error` message text we keep. Longer texts are cut (at a char boundary) when
/// encoding; they are for humans, and a bounded size keeps log lines sane.
pub const MAX_ERROR_TEXT: usize = 4096;

/// Error codes carried by [`Message::Error`]. Codes are part of the protocol: never reuse one.
pub mod code {
    /// The peer broke the protocol (unexpected message, out-of-sequence record, bad ack...).
    pub const PROTOCOL: u16 = 1;
    /// Protocol versions differ.
    pub const VERSION: u16 = 2;
    /// The node is unknown, its certificate does not match its claim, or its jurisdiction differs.
    pub const UNAUTHORIZED: u16 = 3;
    /// The upstream chain failed verification; the hub has flagged the node.
    pub const VERIFY_FAILED: u16 = 4;
    /// The two sides disagree about history (e.g. the edge has fewer records than the hub acked).
    pub const DIVERGED: u16 = 5;
    /// The peer was silent for too long.
    pub const TIMEOUT: u16 = 6;
    /// A local failure (storage error, bug); retrying later may succeed.
    pub const INTERNAL: u16 = 7;
    /// The sender is shutting down.
    pub const SHUTDOWN: u16 = 8;
    /// The hub accepted a newer connection from the same node.
    pub const SUPERSEDED: u16 = 9;

    /// Human-readable name of a code, for logs and error texts.
    pub fn name(code: u16) -> &'static str {
        match code {
            PROTOCOL => "protocol violation",
            VERSION => "version mismatch",
            UNAUTHORIZED => "unauthorized",
            VERIFY_FAILED => "verification failed",
            DIVERGED => "logs diverged",
            TIMEOUT => "timeout",
            INTERNAL => "internal error",
            SHUTDOWN => "shutting down",
            SUPERSEDED => "superseded",
            _ => "unknown code",
        }
    }
}

/// One protocol message. Direction is noted on each variant; receiving a message meant for
/// the other direction is a protocol error (the session state machines enforce that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// edge → hub, first message on the stream.
    Hello {
        version: u16,
        node_id: NodeId,
        jurisdiction: Jurisdiction,
        edge_head: Seq,
        down_applied: Seq,
    },
    /// hub → edge: the hub's durable upstream position for this node and its downstream head.
    Welcome {
        version: u16,
        acked: Seq,
        acked_hash: RecordHash,
        down_head: Seq,
    },
    /// edge → hub: consecutive frames of the edge's own log.
    Records { frames: Vec<Frame> },
    /// hub → edge: the hub has durably committed everything through `acked`.
    Ack { acked: Seq },
    /// hub → edge: consecutive frames of the hub's downstream chain `hub/{node}`.
    Down { frames: Vec<Frame> },
    /// edge → hub: the edge has durably applied the downstream chain through `applied`.
    DownAck { applied: Seq },
    /// Both ways. The edge sends its durable head (so the hub sees lag), the hub its
    /// downstream head. `now_ms` is the sender's clock (lets the hub watch clock skew).
    /// `lag_ms` is the age, on the sender's clock, of the oldest record the sender has sent
    /// but the peer has not yet acknowledged (0 when nothing is outstanding): replication lag
    /// in time, measured where both timestamps come from the same clock.
    Heartbeat { head: Seq, now_ms: i64, lag_ms: i64 },
    /// Either side, immediately before closing.
    Error { code: u16, message: String },
    // ---- witnessed checkpoints (issue 7) ----
    /// edge → hub: a signed tree head (C2SP signed note, UTF-8, at most `NOTE_MAX` bytes)
    /// over the first `size` records; sent only after those records.
    Checkpoint { note: String },
    /// hub → edge: the hub verified the head of `size` records against its copy of the log
    /// and cosigns it; `cosignature` is the C2SP `cosignature/v1` note line (no newline).
    Cosigned { size: Seq, cosignature: String },
}

const T_HELLO: u8 = 1;
const T_WELCOME: u8 = 2;
const T_RECORDS: u8 = 3;
const T_ACK: u8 = 4;
const T_DOWN: u8 = 5;
const T_DOWN_ACK: u8 = 6;
const T_HEARTBEAT: u8 = 7;
const T_ERROR: u8 = 8;
// Witnessed checkpoints: codes well apart from the core set so other additions do not clash.
const T_CHECKPOINT: u8 = 32;
const T_COSIGNED: u8 = 33;

/// Smallest possible encoded frame: `u32 len (0) || u8 seal flag`.
const MIN_FRAME_BYTES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message length {len} exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("message length 0 (a message needs at least its type byte)")]
    Empty,
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("{ty} message truncated: {field} needs {needed} bytes, {available} left")]
    Truncated {
        ty: &'static str,
        field: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("{ty} message has {extra} trailing bytes")]
    Trailing { ty: &'static str, extra: usize },
    #[error("{ty} message: invalid {field}: {reason}")]
    Invalid {
        ty: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("{ty} message: frame #{index}: {error}")]
    Frame {
        ty: &'static str,
        index: usize,
        error: DecodeError,
    },
}

impl Message {
    /// Short name of the message type, for logs and errors.
    pub fn name(&self) -> &'static str {
        type_name(self.type_byte())
    }

    fn type_byte(&self) -> u8 {
        match self {
            Message::Hello { .. } => T_HELLO,
            Message::Welcome { .. } => T_WELCOME,
            Message::Records { .. } => T_RECORDS,
            Message::Ack { .. } => T_ACK,
            Message::Down { .. } => T_DOWN,
            Message::DownAck { .. } => T_DOWN_ACK,
            Message::Heartbeat { .. } => T_HEARTBEAT,
            Message::Error { .. } => T_ERROR,
            Message::Checkpoint { .. } => T_CHECKPOINT,
            Message::Cosigned { .. } => T_COSIGNED,
        }
    }

    /// Convenience constructor for an `Error` message.
    pub fn error(code: u16, message: impl Into<String>) -> Message {
        Message::Error {
            code,
            message: message.into(),
        }
    }

    /// Append the complete encoding (length prefix included) to `out`. Fails only if the
    /// message would exceed [`MAX_MESSAGE`]; `out` is then left as it was. The session state
    /// machines split frame lists well below the limit, so for them this never fails.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.push(self.type_byte());
        match self {
            Message::Hello {
                version,
                node_id,
                jurisdiction,
                edge_head,
                down_applied,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                put_str(out, node_id.as_str());
                put_str(out, jurisdiction.as_str());
                out.extend_from_slice(&edge_head.0.to_be_bytes());
                out.extend_from_slice(&down_applied.0.to_be_bytes());
            }
            Message::Welcome {
                version,
                acked,
                acked_hash,
                down_head,
            } => {
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&acked.0.to_be_bytes());
                out.extend_from_slice(&acked_hash.0);
                out.extend_from_slice(&down_head.0.to_be_bytes());
            }
            Message::Records { frames } | Message::Down { frames } => {
                let Ok(count) = u32::try_from(frames.len()) else {
                    out.truncate(start);
                    return Err(WireError::TooLarge {
                        len: usize::MAX,
                        max: MAX_MESSAGE,
                    });
                };
                out.extend_from_slice(&count.to_be_bytes());
                for f in frames {
                    f.encode_into(out);
                    // Stop early rather than building a huge buffer we will discard.
                    if out.len() - start - 4 > MAX_MESSAGE {
                        break;
                    }
                }
            }
            Message::Ack { acked } => out.extend_from_slice(&acked.0.to_be_bytes()),
            Message::DownAck { applied } => out.extend_from_slice(&applied.0.to_be_bytes()),
            Message::Heartbeat {
                head,
                now_ms,
                lag_ms,
            } => {
                out.extend_from_slice(&head.0.to_be_bytes());
                out.extend_from_slice(&now_ms.to_be_bytes());
                out.extend_from_slice(&lag_ms.to_be_bytes());
            }
            Message::Error { code, message } => {
                out.extend_from_slice(&code.to_be_bytes());
                put_str(out, truncate_at_char(message, MAX_ERROR_TEXT));
            }
            Message::Checkpoint { note } => put_str(out, note),
            Message::Cosigned { size, cosignature } => {
                out.extend_from_slice(&size.0.to_be_bytes());
                put_str(out, cosignature);
            }
        }
        let len = out.len() - start - 4;
        if len > MAX_MESSAGE {
            out.truncate(start);
            return Err(WireError::TooLarge {
                len,
                max: MAX_MESSAGE,
            });
        }
        // len <= MAX_MESSAGE < u32::MAX, so the cast is lossless.
        out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    /// The complete encoding as a new buffer.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decode exactly one complete message (length prefix included) from `buf`.
    pub fn decode(buf: &[u8]) -> Result<Message, WireError> {
        let mut d = Decoder::new();
        d.push(buf);
        match d.next()? {
            Some(m) if d.buffered() == 0 => Ok(m),
            Some(m) => Err(WireError::Trailing {
                ty: m.name(),
                extra: d.buffered(),
            }),
            None => Err(WireError::Truncated {
                ty: "message",
                field: "length-prefixed message",
                needed: declared_total(buf),
                available: buf.len(),
            }),
        }
    }
}

fn declared_total(buf: &[u8]) -> usize {
    match buf.get(..4) {
        Some(p) => 4 + u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
        None => 4,
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        T_HELLO => "Hello",
        T_WELCOME => "Welcome",
        T_RECORDS => "Records",
        T_ACK => "Ack",
        T_DOWN => "Down",
        T_DOWN_ACK => "DownAck",
        T_HEARTBEAT => "Heartbeat",
        T_ERROR => "Error",
        T_CHECKPOINT => "Checkpoint",
        T_COSIGNED => "Cosigned",
        _ => "unknown",
    }
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Strings on the wire are ids or short texts; callers bound them well below `u16::MAX`.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let s = truncate_at_char(s, u16::MAX as usize);
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Bounds-checked cursor over one message body.
struct Reader<'a> {
    ty: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], WireError> {
        let available = self.buf.len() - self.pos;
        if available < n {
            return Err(WireError::Truncated {
                ty: self.ty,
                field,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }
    fn seq(&mut self, field: &'static str) -> Result<Seq, WireError> {
        Ok(Seq(self.u64(field)?))
    }
    fn string(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        let len = self.u16(field)? as usize;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes).map_err(|_| WireError::Invalid {
            ty: self.ty,
            field,
            reason: "not UTF-8".into(),
        })
    }
    fn frames(&mut self) -> Result<Vec<Frame>, WireError> {
        let count = self.u32("frame count")? as usize;
        let remaining = self.buf.len() - self.pos;
        // Never trust the declared count for allocation: each frame needs >= 5 bytes.
        let mut frames = Vec::with_capacity(count.min(remaining / MIN_FRAME_BYTES));
        for index in 0..count {
            let (frame, used) =
                Frame::decode_prefix(&self.buf[self.pos..]).map_err(|error| WireError::Frame {
                    ty: self.ty,
                    index,
                    error,
                })?;
            self.pos += used;
            frames.push(frame);
        }
        Ok(frames)
    }
    fn finish(self) -> Result<(), WireError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            extra => Err(WireError::Trailing { ty: self.ty, extra }),
        }
    }
}

/// Decode one message from its type byte and body (length prefix already stripped).
fn decode_body(t: u8, body: &[u8]) -> Result<Message, WireError> {
    let ty = type_name(t);
    let mut r = Reader {
        ty,
        buf: body,
        pos: 0,
    };
    let msg = match t {
        T_HELLO => {
            let version = r.u16("version")?;
            let node = r.string("node id")?;
            let node_id = NodeId::new(node).map_err(|e| WireError::Invalid {
                ty,
                field: "node id",
                reason: e.to_string(),
            })?;
            let j = r.string("jurisdiction")?;
            let jurisdiction = Jurisdiction::new(j).map_err(|e| WireError::Invalid {
                ty,
                field: "jurisdiction",
                reason: e.to_string(),
            })?;
            let edge_head = r.seq("edge head")?;
            let down_applied = r.seq("down applied")?;
            Message::Hello {
                version,
                node_id,
                jurisdiction,
                edge_head,
                down_applied,
            }
        }
        T_WELCOME => Message::Welcome {
            version: r.u16("version")?,
            acked: r.seq("acked")?,
            acked_hash: RecordHash(r.array("acked hash")?),
            down_head: r.seq("down head")?,
        },
        T_RECORDS => Message::Records {
            frames: r.frames()?,
        },
        T_ACK => Message::Ack {
            acked: r.seq("acked")?,
        },
        T_DOWN => Message::Down {
            frames: r.frames()?,
        },
        T_DOWN_ACK => Message::DownAck {
            applied: r.seq("applied")?,
        },
        T_HEARTBEAT => Message::Heartbeat {
            head: r.seq("head")?,
            now_ms: r.u64("now")? as i64,
            lag_ms: r.u64("lag")? as i64,
        },
        T_ERROR => {
            let code = r.u16("code")?;
            let message = r.string("message")?.to_owned();
            Message::Error { code, message }
        }
        T_CHECKPOINT => {
            let note = r.string("note")?;
            if note.len() > outpost_core::log::NOTE_MAX {
                return Err(WireError::Invalid {
                    ty,
                    field: "note",
                    reason: format!(
                        "{} bytes exceeds {}",
                        note.len(),
                        outpost_core::log::NOTE_MAX
                    ),
                });
            }
            Message::Checkpoint {
                note: note.to_owned(),
            }
        }
        T_COSIGNED => Message::Cosigned {
            size: r.seq("size")?,
            cosignature: r.string("cosignature")?.to_owned(),
        },
        other => return Err(WireError::UnknownType(other)),
    };
    r.finish()?;
    Ok(msg)
}

/// Incremental decoder for a byte stream: `push` what arrived, then call `next` until it
/// returns `Ok(None)`. Memory stays bounded by one maximal message plus one pushed chunk as long
/// as the caller drains `next` after every `push`. After an error the stream is unusable and
/// every later call to `next` returns the same error.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    failed: Option<WireError>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 {
            // Drop consumed messages; what is left is at most one partial message.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// If the next buffered message is a `Hello`, the protocol version it announces, read
    /// without decoding the rest. A hub uses it when the first message does not decode, so a
    /// node speaking another version (whose `Hello` may have another layout) gets a clear
    /// version error instead of a generic decode error.
    pub fn peek_hello_version(&self) -> Option<u16> {
        let b = &self.buf[self.start..];
        if *b.get(4)? != T_HELLO {
            return None;
        }
        Some(u16::from_be_bytes([*b.get(5)?, *b.get(6)?]))
    }

    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Message>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let avail = &self.buf[self.start..];
        let Some(prefix) = avail.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
        let checked = if len == 0 {
            Err(WireError::Empty)
        } else if len > MAX_MESSAGE {
            Err(WireError::TooLarge {
                len,
                max: MAX_MESSAGE,
            })
        } else {
            Ok(())
        };
        if let Err(e) = checked {
            self.failed = Some(e.clone());
            return Err(e);
        }
        let Some(msg_bytes) = avail.get(4..4 + len) else {
            return Ok(None);
        };
        match decode_body(msg_bytes[0], &msg_bytes[1..]) {
            Ok(m) => {
                self.start += 4 + len;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Ok(Some(m))
            }
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }
}

/// Byte offset of the sequence number inside a record body: magic(4) version(1) kind(1)
/// log-id length(2) log id, then `u64 seq` (see `docs/log-format.md`).
const SEQ_OFFSET_AFTER_ID: usize = 8;

/// The sequence number of a frame, read straight from its body bytes without the full parse
/// (the sessions use it to check contiguity cheaply; full verification happens elsewhere).
/// `None` if the body is too short or lacks the record magic.
pub fn peek_seq(frame: &Frame) -> Option<Seq> {
    let b = &frame.body;
    // The record magic (core's `MAGIC`, not re-exported).
    if b.get(..4)? != b"OPLR" {
        return None;
    }
    let id_len = u16::from_be_bytes([*b.get(6)?, *b.get(7)?]) as usize;
    let at = SEQ_OFFSET_AFTER_ID.checked_add(id_len)?;
    let s: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(Seq(u64::from_be_bytes(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn samples() -> Vec<Message> {
        let f1 = Frame {
            body: b"OPLR\x01\x06\x00\x04gb-1\x00\x00\x00\x00\x00\x00\x00\x07".to_vec(),
            seal: None,
        };
        let f2 = Frame {
            body: vec![1, 2, 3],
            seal: Some([9; 64]),
        };
        vec![
            Message::Hello {
                version: 1,
                node_id: node("gb-1"),
                jurisdiction: Jurisdiction::new("GB").unwrap(),
                edge_head: Seq(10),
                down_applied: Seq(3),
            },
            Message::Welcome {
                version: 1,
                acked: Seq(5),
                acked_hash: RecordHash([7; 32]),
                down_head: Seq(4),
            },
            Message::Records {
                frames: vec![f1.clone(), f2.clone()],
            },
            Message::Records { frames: vec![] },
            Message::Ack { acked: Seq(5) },
            Message::Down { frames: vec![f2] },
            Message::DownAck { applied: Seq(4) },
            Message::Heartbeat {
                head: Seq(11),
                now_ms: -5,
                lag_ms: 250,
            },
            Message::error(
                code::VERSION,
                "protocol version 2 not supported by hub (supports 1)",
            ),
            Message::Checkpoint {
                note: "outpost/gb-1\n3\nAAAA\n\n\u{2014} outpost/gb-1 AAAAAA==\n".into(),
            },
            Message::Cosigned {
                size: Seq(3),
                cosignature: "\u{2014} outpost-hub/eu AAAA".into(),
            },
        ]
    }

    #[test]
    fn samples_roundtrip_and_stream_decoding_works_byte_by_byte() {
        let mut stream = Vec::new();
        for m in samples() {
            let enc = m.encode().unwrap();
            assert_eq!(Message::decode(&enc).unwrap(), m);
            stream.extend_from_slice(&enc);
        }
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(m) = d.next().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out, samples());
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn layout_is_length_type_body() {
        let enc = Message::Ack { acked: Seq(0x0102) }.encode().unwrap();
        assert_eq!(enc, vec![0, 0, 0, 9, T_ACK, 0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn oversized_length_is_rejected_before_buffering() {
        let mut d = Decoder::new();
        d.push(&((MAX_MESSAGE as u32) + 1).to_be_bytes());
        assert!(matches!(d.next(), Err(WireError::TooLarge { .. })));
        // Sticky: the stream is dead.
        d.push(&[0; 16]);
        assert!(d.next().is_err());
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 0]);
        assert_eq!(d.next(), Err(WireError::Empty));
    }

    #[test]
    fn encoding_refuses_messages_over_the_limit() {
        let big = Frame {
            body: vec![0; 1 << 20],
            seal: None,
        };
        let m = Message::Records {
            frames: vec![big; 9],
        };
        let mut out = vec![42];
        assert!(matches!(
            m.encode_into(&mut out),
            Err(WireError::TooLarge { .. })
        ));
        assert_eq!(out, vec![42]);
    }

    #[test]
    fn bad_fields_are_errors() {
        // Hello with an invalid node id.
        let mut body = vec![0, 1];
        put_str(&mut body, "GB 1");
        put_str(&mut body, "GB");
        body.extend_from_slice(&[0; 16]);
        assert!(matches!(
            decode_body(T_HELLO, &body),
            Err(WireError::Invalid {
                field: "node id",
                ..
            })
        ));
        // Trailing bytes.
        assert!(matches!(
            decode_body(T_ACK, &[0; 9]),
            Err(WireError::Trailing { extra: 1, .. })
        ));
        // Huge frame count with no bytes behind it.
        assert!(matches!(
            decode_body(T_RECORDS, &[0xff, 0xff, 0xff, 0xff]),
            Err(WireError::Frame { index: 0, .. })
        ));
        assert_eq!(decode_body(99, &[]), Err(WireError::UnknownType(99)));
    }

    #[test]
    fn a_hello_of_another_version_is_recognised_even_if_undecodable() {
        // A future Hello with a different layout: version 3, then bytes this build cannot parse.
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 4, T_HELLO, 0, 3, 0xff]);
        assert!(d.next().is_err());
        assert_eq!(d.peek_hello_version(), Some(3));
        let mut d = Decoder::new();
        d.push(&Message::Ack { acked: Seq(1) }.encode().unwrap());
        assert_eq!(d.peek_hello_version(), None);
    }

    #[test]
    fn long_error_texts_are_cut_at_a_char_boundary() {
        let m = Message::error(1, "é".repeat(MAX_ERROR_TEXT));
        let Message::Error { message, .. } = Message::decode(&m.encode().unwrap()).unwrap() else {
            panic!()
        };
        assert!(message.len() <= MAX_ERROR_TEXT);
        assert!(message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn peek_seq_reads_the_body() {
        let f = Frame {
            body: b"OPLR\x01\x06\x00\x04gb-1\x00\x00\x00\x00\x00\x00\x01\x07rest".to_vec(),
            seal: None,
        };
        assert_eq!(peek_seq(&f), Some(Seq(0x107)));
        assert_eq!(
            peek_seq(&Frame {
                body: b"OPLR\x01\x06\x00\x04gb-1\x00".to_vec(),
                seal: None
            }),
            None
        );
        assert_eq!(
            peek_seq(&Frame {
                body: b"XXXX\x01\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01".to_vec(),
                seal: None
            }),
            None
        );
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::option::of(any::<[u8; 32]>()),
        )
            .prop_map(|(body, seal)| Frame {
                body,
                seal: seal.map(|h| {
                    let mut s = [0u8; 64];
                    s[..32].copy_from_slice(&h);
                    s[32..].copy_from_slice(&h);
                    s
                }),
            })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let node = "[a-z0-9-]{1,32}".prop_map(|s| NodeId::new(s).unwrap());
        let jur = "[A-Z-]{2,8}".prop_map(|s| Jurisdiction::new(s).unwrap());
        let frames = || proptest::collection::vec(arb_frame(), 0..5);
        prop_oneof![
            (any::<u16>(), node, jur, any::<u64>(), any::<u64>()).prop_map(
                |(version, node_id, jurisdiction, h, d)| {
                    Message::Hello {
                        version,
                        node_id,
                        jurisdiction,
                        edge_head: Seq(h),
                        down_applied: Seq(d),
                    }
                }
            ),
            (any::<u16>(), any::<u64>(), any::<[u8; 32]>(), any::<u64>()).prop_map(
                |(version, a, h, d)| Message::Welcome {
                    version,
                    acked: Seq(a),
                    acked_hash: RecordHash(h),
                    down_head: Seq(d)
                }
            ),
            frames().prop_map(|frames| Message::Records { frames }),
            any::<u64>().prop_map(|a| Message::Ack { acked: Seq(a) }),
            frames().prop_map(|frames| Message::Down { frames }),
            any::<u64>().prop_map(|a| Message::DownAck { applied: Seq(a) }),
            (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(h, now_ms, lag_ms)| {
                Message::Heartbeat {
                    head: Seq(h),
                    now_ms,
                    lag_ms,
                }
            }),
            (any::<u16>(), ".{0,100}").prop_map(|(code, message)| Message::Error { code, message }),
            ".{0,200}".prop_map(|note| Message::Checkpoint { note }),
            (any::<u64>(), ".{0,100}").prop_map(|(s, cosignature)| Message::Cosigned {
                size: Seq(s),
                cosignature
            }),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(msgs in proptest::collection::vec(arb_message(), 1..6), chunk in 1usize..50) {
            let mut stream = Vec::new();
            for m in &msgs {
                let enc = m.encode().unwrap();
                prop_assert_eq!(&Message::decode(&enc).unwrap(), m);
                stream.extend_from_slice(&enc);
            }
            let mut d = Decoder::new();
            let mut out = Vec::new();
            for c in stream.chunks(chunk) {
                d.push(c);
                while let Some(m) = d.next().unwrap() {
                    out.push(m);
                }
            }
            prop_assert_eq!(out, msgs);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300), chunk in 1usize..64) {
            let _ = Message::decode(&data);
            let mut d = Decoder::new();
            for c in data.chunks(chunk) {
                d.push(c);
                while let Ok(Some(_)) = d.next() {}
            }
        }

        #[test]
        fn random_bodies_never_panic(t in 0u8..12, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_body(t, &body);
        }

        #[test]
        fn mutated_messages_never_panic(m in arb_message(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
            let mut enc = m.encode().unwrap();
            for (i, x) in flips {
                let n = enc.len();
                enc[i % n] ^= x;
            }
            let _ = Message::decode(&enc);
        }
    }
}
