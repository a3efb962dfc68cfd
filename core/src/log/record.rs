//! One log record: its canonical body bytes (what is hashed) and its frame (body plus an
//! optional seal signature). See `docs/log-format.md`; every constant here appears there.

use crate::ids::{LogId, Seq};
use crate::time::UnixMillis;
use sha2::{Digest, Sha256};
use std::fmt;

pub const MAGIC: &[u8; 4] = b"OPLR";
pub const FORMAT_VERSION: u8 = 1;
/// Payloads are small JSON documents; 1 MiB bounds what a peer can make us allocate.
pub const PAYLOAD_MAX: usize = 1 << 20;
/// The signed message of a seal is `SEAL_DOMAIN || record_hash`.
pub const SEAL_DOMAIN: &[u8] = b"outpost/log/seal/v1";

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let out = Sha256::digest(data);
    let mut h = [0u8; 32];
    h.copy_from_slice(&out);
    h
}

pub fn seal_message(hash: &RecordHash) -> Vec<u8> {
    let mut m = Vec::with_capacity(SEAL_DOMAIN.len() + 32);
    m.extend_from_slice(SEAL_DOMAIN);
    m.extend_from_slice(&hash.0);
    m
}

/// SHA-256 of a record body. The chain links each record to its predecessor's hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RecordHash(pub [u8; 32]);

impl RecordHash {
    pub const ZERO: RecordHash = RecordHash([0; 32]);
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(s: &str) -> Option<RecordHash> {
        let v = hex::decode(s).ok()?;
        let mut h = [0u8; 32];
        (v.len() == 32).then(|| {
            h.copy_from_slice(&v);
            RecordHash(h)
        })
    }
}
impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.to_hex()[..12])
    }
}
impl fmt::Display for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The record kind byte. Codes are part of the on-disk format and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RecordKind {
    Genesis = 1,
    PlayerRegistered = 2,
    KycVerified = 3,
    WalletMovement = 4,
    ComplianceDecision = 5,
    BetPlaced = 6,
    SelfExcluded = 7,
    MarketOpened = 8,
    EventResulted = 9,
    BetSettled = 10,
    /// A downstream record the edge acknowledged without effect (e.g. a duplicate settlement).
    DownSkipped = 11,
    // Hub reconciliation (issue 5r), edge side: periodic balance snapshots.
    BalanceSnapshot = 56,
    // Edge gate, wallet and risk (issue 3): codes 12-27.
    LimitChanged = 12,
    RegisterLoaded = 13,
    AmlFlagged = 14,
    PlayerTimedOut = 15,
    RealityCheckAcknowledged = 16,
    RulesActivated = 17,
    CrossOperatorFigure = 18,
    WithdrawalCompleted = 19,
    // Shop terminal (issue 6): 40–47.
    ShopTicketIssued = 40,
    ShopTicketPaid = 41,
    ShopTicketVoided = 42,
    // --- odds/markets (issue 4): 28–39 ---
    /// A feed market's status or offered prices changed (payload `feed::records::OddsChanged`).
    OddsChanged = 28,
    /// A feed producer went up (recovery complete) or down (silent, lost).
    ProducerChanged = 29,
    /// Hub → edge downstream chain records.
    HubResult = 64,
    HubSettlement = 65,
    // Hub settlement/results (issue 5): 66–79.
    /// Hub → edge: a compensating entry that reverses one earlier settlement of a bet
    /// (a result correction or a rollback). The original record is never changed.
    HubSettlementReversal = 66,
    /// Edge: the edge applied a `HubSettlementReversal` (the bet is open again).
    BetSettlementReversed = 67,
    // Hub results intake for races and per-outcome feed results (issue 5, h5r): 72–79.
    /// Hub → edge: a final race or per-outcome result (`hub::HubEventResult`); a football
    /// score stays a `HubResult` (64).
    HubEventResult = 72,
}

impl RecordKind {
    pub const ALL: [RecordKind; 30] = [
        RecordKind::Genesis,
        RecordKind::PlayerRegistered,
        RecordKind::KycVerified,
        RecordKind::WalletMovement,
        RecordKind::ComplianceDecision,
        RecordKind::BetPlaced,
        RecordKind::SelfExcluded,
        RecordKind::MarketOpened,
        RecordKind::EventResulted,
        RecordKind::BetSettled,
        RecordKind::DownSkipped,
        RecordKind::BalanceSnapshot,
        // Issue 3.
        RecordKind::LimitChanged,
        RecordKind::RegisterLoaded,
        RecordKind::AmlFlagged,
        RecordKind::PlayerTimedOut,
        RecordKind::RealityCheckAcknowledged,
        RecordKind::RulesActivated,
        RecordKind::CrossOperatorFigure,
        RecordKind::WithdrawalCompleted,
        RecordKind::ShopTicketIssued,
        RecordKind::ShopTicketPaid,
        RecordKind::ShopTicketVoided,
        RecordKind::OddsChanged,
        RecordKind::ProducerChanged,
        RecordKind::HubResult,
        RecordKind::HubSettlement,
        RecordKind::HubSettlementReversal,
        RecordKind::BetSettlementReversed,
        RecordKind::HubEventResult,
    ];
    pub fn from_code(c: u8) -> Option<RecordKind> {
        Self::ALL.iter().copied().find(|k| *k as u8 == c)
    }
    pub fn name(&self) -> &'static str {
        match self {
            RecordKind::Genesis => "genesis",
            RecordKind::PlayerRegistered => "player_registered",
            RecordKind::KycVerified => "kyc_verified",
            RecordKind::WalletMovement => "wallet_movement",
            RecordKind::ComplianceDecision => "compliance_decision",
            RecordKind::BetPlaced => "bet_placed",
            RecordKind::SelfExcluded => "self_excluded",
            RecordKind::MarketOpened => "market_opened",
            RecordKind::EventResulted => "event_resulted",
            RecordKind::BetSettled => "bet_settled",
            RecordKind::DownSkipped => "down_skipped",
            RecordKind::BalanceSnapshot => "balance_snapshot",
            // Issue 3.
            RecordKind::LimitChanged => "limit_changed",
            RecordKind::RegisterLoaded => "register_loaded",
            RecordKind::AmlFlagged => "aml_flagged",
            RecordKind::PlayerTimedOut => "player_timed_out",
            RecordKind::RealityCheckAcknowledged => "reality_check_acknowledged",
            RecordKind::RulesActivated => "rules_activated",
            RecordKind::CrossOperatorFigure => "cross_operator_figure",
            RecordKind::WithdrawalCompleted => "withdrawal_completed",
            RecordKind::ShopTicketIssued => "shop_ticket_issued",
            RecordKind::ShopTicketPaid => "shop_ticket_paid",
            RecordKind::ShopTicketVoided => "shop_ticket_voided",
            RecordKind::OddsChanged => "odds_changed",
            RecordKind::ProducerChanged => "producer_changed",
            RecordKind::HubResult => "hub_result",
            RecordKind::HubSettlement => "hub_settlement",
            RecordKind::HubSettlementReversal => "hub_settlement_reversal",
            RecordKind::BetSettlementReversed => "bet_settlement_reversed",
            RecordKind::HubEventResult => "hub_event_result",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: needed {needed} bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("bad magic (not an Outpost log record)")]
    Magic,
    #[error("unsupported format version {0}")]
    Version(u8),
    #[error("unknown record kind {0}")]
    Kind(u8),
    #[error("invalid log id: {0}")]
    LogId(String),
    #[error("sequence number 0 is not allowed")]
    ZeroSeq,
    #[error("payload of {0} bytes exceeds the 1 MiB limit")]
    PayloadTooLarge(usize),
    #[error("payload is not UTF-8 JSON: {0}")]
    Payload(String),
    #[error("{0} trailing bytes after the record")]
    Trailing(usize),
    #[error("seal flag must be 0 or 1, got {0}")]
    SealFlag(u8),
}

/// The hashed part of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBody {
    pub kind: RecordKind,
    pub log_id: LogId,
    pub seq: Seq,
    pub timestamp: UnixMillis,
    pub prev_hash: RecordHash,
    /// UTF-8 JSON document; its schema depends on `kind`.
    pub payload: Vec<u8>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}
impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated {
                offset: self.pos,
                needed: n,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
}

impl RecordBody {
    pub fn encode(&self) -> Vec<u8> {
        let id = self.log_id.as_str().as_bytes();
        let mut out = Vec::with_capacity(60 + id.len() + self.payload.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        out.extend_from_slice(&self.seq.0.to_be_bytes());
        out.extend_from_slice(&self.timestamp.0.to_be_bytes());
        out.extend_from_slice(&self.prev_hash.0);
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<RecordBody, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::Magic);
        }
        let v = r.u8()?;
        if v != FORMAT_VERSION {
            return Err(DecodeError::Version(v));
        }
        let k = r.u8()?;
        let kind = RecordKind::from_code(k).ok_or(DecodeError::Kind(k))?;
        let id_len = r.u16()? as usize;
        let id = std::str::from_utf8(r.take(id_len)?)
            .map_err(|_| DecodeError::LogId("not UTF-8".into()))?;
        let log_id = LogId::new(id).map_err(|e| DecodeError::LogId(e.to_string()))?;
        let seq = Seq(r.u64()?);
        if seq == Seq::ZERO {
            return Err(DecodeError::ZeroSeq);
        }
        let timestamp = UnixMillis(r.u64()? as i64);
        let mut prev = [0u8; 32];
        prev.copy_from_slice(r.take(32)?);
        let plen = r.u32()? as usize;
        if plen > PAYLOAD_MAX {
            return Err(DecodeError::PayloadTooLarge(plen));
        }
        let payload = r.take(plen)?.to_vec();
        // serde_json does not validate the bytes of strings it merely skips, so check UTF-8 first.
        if std::str::from_utf8(&payload).is_err() {
            return Err(DecodeError::Payload("not UTF-8".into()));
        }
        if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
            return Err(DecodeError::Payload("not a JSON document".into()));
        }
        if r.pos != buf.len() {
            return Err(DecodeError::Trailing(buf.len() - r.pos));
        }
        Ok(RecordBody {
            kind,
            log_id,
            seq,
            timestamp,
            prev_hash: RecordHash(prev),
            payload,
        })
    }
}

/// A record as stored and transmitted: body bytes plus an optional seal (Ed25519 signature
/// over `SEAL_DOMAIN || sha256(body)`). The last record of every commit group is sealed; the
/// seal covers it and, through the hash chain, every earlier record.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub body: Vec<u8>,
    pub seal: Option<[u8; 64]>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Frame({} body bytes, sealed={})",
            self.body.len(),
            self.seal.is_some()
        )
    }
}

impl Frame {
    pub fn hash(&self) -> RecordHash {
        RecordHash(sha256(&self.body))
    }

    /// `u32 body_len || body || u8 seal_flag || [64-byte signature if flag = 1]`
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.body.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.body);
        match &self.seal {
            Some(sig) => {
                out.push(1);
                out.extend_from_slice(sig);
            }
            None => out.push(0),
        }
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.body.len() + 69);
        self.encode_into(&mut v);
        v
    }

    /// Decode one frame from the front of `buf`, returning it and the bytes consumed.
    /// Only framing is checked here; the body is parsed by [`RecordBody::decode`].
    pub fn decode_prefix(buf: &[u8]) -> Result<(Frame, usize), DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let len = r.u32()? as usize;
        if len > PAYLOAD_MAX + 4096 {
            return Err(DecodeError::PayloadTooLarge(len));
        }
        let body = r.take(len)?.to_vec();
        let seal = match r.u8()? {
            0 => None,
            1 => {
                let mut s = [0u8; 64];
                s.copy_from_slice(r.take(64)?);
                Some(s)
            }
            f => return Err(DecodeError::SealFlag(f)),
        };
        Ok((Frame { body, seal }, r.pos))
    }

    pub fn decode_exact(buf: &[u8]) -> Result<Frame, DecodeError> {
        let (f, n) = Frame::decode_prefix(buf)?;
        if n != buf.len() {
            return Err(DecodeError::Trailing(buf.len() - n));
        }
        Ok(f)
    }

    pub fn parse_body(&self) -> Result<RecordBody, DecodeError> {
        RecordBody::decode(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> RecordBody {
        RecordBody {
            kind: RecordKind::BetPlaced,
            log_id: LogId::new("gb-1").unwrap(),
            seq: Seq(7),
            timestamp: UnixMillis(1_700_000_000_000),
            prev_hash: RecordHash([9; 32]),
            payload: br#"{"a":1}"#.to_vec(),
        }
    }

    #[test]
    fn roundtrip_and_layout() {
        let b = body();
        let bytes = b.encode();
        assert_eq!(&bytes[..4], b"OPLR");
        assert_eq!(bytes.len(), 60 + 4 + 7);
        assert_eq!(RecordBody::decode(&bytes).unwrap(), b);
        let f = Frame {
            body: bytes,
            seal: Some([3; 64]),
        };
        let enc = f.encode();
        assert_eq!(Frame::decode_exact(&enc).unwrap(), f);
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_not_a_panic() {
        let enc = Frame {
            body: body().encode(),
            seal: None,
        }
        .encode();
        for n in 0..enc.len() {
            assert!(Frame::decode_exact(&enc[..n]).is_err());
        }
        let bytes = body().encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            // Either an error or a different body; never a panic.
            if let Ok(d) = RecordBody::decode(&b) {
                assert_ne!(d.encode(), bytes);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = Frame::decode_prefix(&data);
            let _ = RecordBody::decode(&data);
        }
    }
}
