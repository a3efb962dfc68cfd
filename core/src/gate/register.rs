//! The national self-exclusion register: a signed snapshot plus signed incremental updates,
//! cached locally. The register authority signs each document's payload bytes with Ed25519;
//! the node checks the signature with the authority key configured for its jurisdiction.
//!
//! Architecture invariant: a register that is missing, or older than the jurisdiction's
//! staleness bound, never means "not excluded": the gate refuses every bet (fail closed). A
//! document that does not verify is refused and the cached copy keeps ageing.
//!
//! Entries are SHA-256 hex of the player's identity (`identity_sha256`), so neither the
//! register nor the log holds names.

use super::ReasonCode;
use crate::ids::Jurisdiction;
use crate::jurisdiction::RegisterRules;
use crate::log::PublicKey;
use crate::time::{CivilDate, UnixMillis};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A clock skew tolerance: documents issued further in the future are refused.
const FUTURE_SKEW_MS: i64 = 5 * 60_000;

/// The upload form: the exact payload bytes (base64) and the authority's signature over them.
/// (Unknown fields are refused by the upload endpoint's own body type; the log keeps this.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRegisterDoc {
    pub payload_b64: String,
    pub signature_hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterDocKind {
    Snapshot,
    Update,
}

/// The signed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterPayload {
    pub register: String,
    pub jurisdiction: Jurisdiction,
    pub kind: RegisterDocKind,
    /// Strictly increasing across the register's documents.
    pub seq: u64,
    /// Updates only: the `seq` they apply on top of.
    #[serde(default)]
    pub base_seq: Option<u64>,
    pub issued_at_ms: i64,
    /// Snapshot: every excluded identity. Update: identities added.
    #[serde(default)]
    pub add: Vec<String>,
    /// Update: identities no longer excluded.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// The locally cached register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterState {
    pub register: String,
    pub seq: u64,
    /// When the newest applied document was issued: the copy's age is measured from here.
    pub issued_at_ms: i64,
    pub entries: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RegisterStatus {
    NotRequired,
    Missing,
    Fresh { age_ms: i64, seq: u64 },
    Stale { age_ms: i64, seq: u64 },
}

impl RegisterStatus {
    pub fn usable(&self) -> bool {
        matches!(
            self,
            RegisterStatus::NotRequired | RegisterStatus::Fresh { .. }
        )
    }
}

pub fn status(
    rules: Option<&RegisterRules>,
    state: Option<&RegisterState>,
    now: UnixMillis,
) -> RegisterStatus {
    let Some(r) = rules else {
        return RegisterStatus::NotRequired;
    };
    let Some(s) = state else {
        return RegisterStatus::Missing;
    };
    let age_ms = now.0 - s.issued_at_ms;
    if age_ms > r.staleness_bound_minutes as i64 * 60_000 {
        RegisterStatus::Stale { age_ms, seq: s.seq }
    } else {
        RegisterStatus::Fresh { age_ms, seq: s.seq }
    }
}

/// The register key of a person: SHA-256 hex of `lower(trim(name)) | YYYY-MM-DD`.
pub fn identity_sha256(name: &str, date_of_birth: CivilDate) -> String {
    let s = format!("{}|{}", name.trim().to_lowercase(), date_of_birth);
    hex::encode(crate::log::sha256(s.as_bytes()))
}

fn is_identity(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Verify a document and check it fits on top of the cached copy. Returns the payload to log.
pub fn verify(
    doc: &SignedRegisterDoc,
    authority: Option<&PublicKey>,
    rules: Option<&RegisterRules>,
    jurisdiction: &Jurisdiction,
    current: Option<&RegisterState>,
    now: UnixMillis,
) -> Result<RegisterPayload, (ReasonCode, String)> {
    let bad = |c: ReasonCode, m: String| Err((c, m));
    let Some(rules) = rules else {
        return bad(
            ReasonCode::RegisterNotUsed,
            format!("{jurisdiction} has no self-exclusion register"),
        );
    };
    let Some(key) = authority else {
        return bad(
            ReasonCode::RegisterUnsigned,
            format!("no {} authority key is configured on this node", rules.name),
        );
    };
    let payload = base64::engine::general_purpose::STANDARD
        .decode(doc.payload_b64.as_bytes())
        .map_err(|_| {
            (
                ReasonCode::RegisterCorrupt,
                "payload_b64 is not base64".into(),
            )
        })?;
    let sig: [u8; 64] = hex::decode(&doc.signature_hex)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or((
            ReasonCode::RegisterUnsigned,
            "signature_hex is not a 64-byte hex signature".to_string(),
        ))?;
    if !key.verify(&payload, &sig) {
        return bad(
            ReasonCode::RegisterBadSignature,
            format!(
                "signature does not verify with the {} authority key",
                rules.name
            ),
        );
    }
    let p: RegisterPayload = serde_json::from_slice(&payload)
        .map_err(|e| (ReasonCode::RegisterCorrupt, format!("payload: {e}")))?;
    if p.register != rules.name || &p.jurisdiction != jurisdiction {
        return bad(
            ReasonCode::RegisterCorrupt,
            format!(
                "document is for {} ({}), this node uses {} ({jurisdiction})",
                p.register, p.jurisdiction, rules.name
            ),
        );
    }
    if p.issued_at_ms > now.0 + FUTURE_SKEW_MS {
        return bad(ReasonCode::RegisterCorrupt, "issued in the future".into());
    }
    if let Some(x) = p.add.iter().chain(&p.remove).find(|x| !is_identity(x)) {
        return bad(
            ReasonCode::RegisterCorrupt,
            format!(
                "entry {:?} is not a SHA-256 hex identity",
                x.chars().take(70).collect::<String>()
            ),
        );
    }
    if let Some(c) = current
        && (p.seq <= c.seq || p.issued_at_ms < c.issued_at_ms)
    {
        return bad(
            ReasonCode::RegisterOutOfOrder,
            format!(
                "document (seq {}, issued {}) is not newer than the cached copy (seq {}, issued {})",
                p.seq, p.issued_at_ms, c.seq, c.issued_at_ms
            ),
        );
    }
    match p.kind {
        RegisterDocKind::Snapshot => {
            if !p.remove.is_empty() || p.base_seq.is_some() {
                return bad(
                    ReasonCode::RegisterCorrupt,
                    "a snapshot has no base_seq or remove list".into(),
                );
            }
        }
        RegisterDocKind::Update => {
            let have = current.map(|c| c.seq);
            if p.base_seq.is_none() || p.base_seq != have {
                return bad(
                    ReasonCode::RegisterOutOfOrder,
                    format!(
                        "update applies on seq {:?}, the cached copy is at {:?}",
                        p.base_seq, have
                    ),
                );
            }
        }
    }
    Ok(p)
}

/// Apply a verified payload to the cached copy.
pub fn apply(current: Option<RegisterState>, p: &RegisterPayload) -> RegisterState {
    match p.kind {
        RegisterDocKind::Snapshot => RegisterState {
            register: p.register.clone(),
            seq: p.seq,
            issued_at_ms: p.issued_at_ms,
            entries: p.add.iter().cloned().collect(),
        },
        RegisterDocKind::Update => {
            let mut s = current.unwrap_or_else(|| RegisterState {
                register: p.register.clone(),
                seq: 0,
                issued_at_ms: 0,
                entries: BTreeSet::new(),
            });
            for r in &p.remove {
                s.entries.remove(r);
            }
            s.entries.extend(p.add.iter().cloned());
            s.seq = p.seq;
            s.issued_at_ms = p.issued_at_ms;
            s
        }
    }
}

/// Sign a payload as the register authority would (used by tests, the demo's local register
/// and operators' tooling).
pub fn sign(key: &crate::log::NodeKey, payload: &RegisterPayload) -> SignedRegisterDoc {
    let bytes = serde_json::to_vec(payload).expect("payload serialises");
    SignedRegisterDoc {
        payload_b64: base64::engine::general_purpose::STANDARD.encode(&bytes),
        signature_hex: hex::encode(key.sign(&bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::NodeKey;

    fn rules() -> RegisterRules {
        RegisterRules {
            name: "GAMSTOP".into(),
            refresh_interval_minutes: 60,
            staleness_bound_minutes: 120,
        }
    }
    fn snap(seq: u64, at: i64, add: Vec<String>) -> RegisterPayload {
        RegisterPayload {
            register: "GAMSTOP".into(),
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            kind: RegisterDocKind::Snapshot,
            seq,
            base_seq: None,
            issued_at_ms: at,
            add,
            remove: vec![],
        }
    }

    #[test]
    fn signed_snapshot_and_update() {
        let k = NodeKey::from_seed([7; 32]);
        let gb = Jurisdiction::new("GB").unwrap();
        let id = identity_sha256("Ann Smith", CivilDate::new(1990, 1, 2).unwrap());
        let now = UnixMillis(10_000_000);
        let d = sign(&k, &snap(1, now.0, vec![id.clone()]));
        let p = verify(&d, Some(&k.public()), Some(&rules()), &gb, None, now).unwrap();
        let s = apply(None, &p);
        assert!(s.entries.contains(&id));
        let mut u = snap(2, now.0 + 1, vec![]);
        u.kind = RegisterDocKind::Update;
        u.base_seq = Some(1);
        u.remove = vec![id.clone()];
        let d = sign(&k, &u);
        let p = verify(&d, Some(&k.public()), Some(&rules()), &gb, Some(&s), now).unwrap();
        let s2 = apply(Some(s.clone()), &p);
        assert!(s2.entries.is_empty());
        // Replaying an older document is refused.
        let d = sign(&k, &snap(1, now.0, vec![]));
        let e = verify(&d, Some(&k.public()), Some(&rules()), &gb, Some(&s2), now).unwrap_err();
        assert_eq!(e.0, ReasonCode::RegisterOutOfOrder);
    }

    #[test]
    fn bad_documents_refused() {
        let k = NodeKey::from_seed([7; 32]);
        let other = NodeKey::from_seed([8; 32]);
        let gb = Jurisdiction::new("GB").unwrap();
        let now = UnixMillis(10_000_000);
        let d = sign(&other, &snap(1, now.0, vec![]));
        let e = verify(&d, Some(&k.public()), Some(&rules()), &gb, None, now).unwrap_err();
        assert_eq!(e.0, ReasonCode::RegisterBadSignature);
        let mut d = sign(&k, &snap(1, now.0, vec![]));
        d.signature_hex = String::new();
        let e = verify(&d, Some(&k.public()), Some(&rules()), &gb, None, now).unwrap_err();
        assert_eq!(e.0, ReasonCode::RegisterUnsigned);
        let mut d = sign(&k, &snap(1, now.0, vec![]));
        d.payload_b64 = "!!".into();
        let e = verify(&d, Some(&k.public()), Some(&rules()), &gb, None, now).unwrap_err();
        assert_eq!(e.0, ReasonCode::RegisterCorrupt);
        let d = sign(&k, &snap(1, now.0, vec!["nothex".into()]));
        let e = verify(&d, Some(&k.public()), Some(&rules()), &gb, None, now).unwrap_err();
        assert_eq!(e.0, ReasonCode::RegisterCorrupt);
    }

    #[test]
    fn staleness() {
        let s = RegisterState {
            register: "GAMSTOP".into(),
            seq: 1,
            issued_at_ms: 0,
            entries: BTreeSet::new(),
        };
        let r = rules();
        assert!(status(Some(&r), Some(&s), UnixMillis(120 * 60_000)).usable());
        assert!(!status(Some(&r), Some(&s), UnixMillis(120 * 60_000 + 1)).usable());
        assert!(!status(Some(&r), None, UnixMillis(0)).usable());
        assert!(status(None, None, UnixMillis(0)).usable());
    }
}
