//! Ed25519 keys for sealing logs. Key generation takes its 32 random bytes from the caller:
//! core never reads an entropy source.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key must be {0} hex characters")]
    Length(usize),
    #[error("key is not valid hex")]
    Hex,
    #[error("not a valid Ed25519 public key")]
    Invalid,
}

/// A node's (or hub's) private signing key.
pub struct NodeKey(SigningKey);

impl NodeKey {
    pub fn from_seed(seed: [u8; 32]) -> NodeKey {
        NodeKey(SigningKey::from_bytes(&seed))
    }
    pub fn from_hex(s: &str) -> Result<NodeKey, KeyError> {
        Ok(NodeKey::from_seed(parse_hex32(s)?))
    }
    pub fn seed_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey(public={})", self.public())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    pub fn from_hex(s: &str) -> Result<PublicKey, KeyError> {
        let b = parse_hex32(s)?;
        VerifyingKey::from_bytes(&b)
            .map(PublicKey)
            .map_err(|_| KeyError::Invalid)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// Strict verification (rejects small-order keys and non-canonical signatures), matching
    /// what OpenSSL and Python `cryptography` accept for honestly made signatures.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(msg, &sig).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], KeyError> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(KeyError::Length(64));
    }
    let v = hex::decode(s).map_err(|_| KeyError::Hex)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    Ok(out)
}
