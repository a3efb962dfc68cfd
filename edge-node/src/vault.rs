//! The PII vault: players' names and dates of birth. It never leaves this node: the log
//! carries only a salted SHA-256 commitment (`pii_sha256`), so what replicates to the hub
//! is pseudonymous. A regulator holding the vault entry can recompute the commitment.

use outpost_core::ids::PlayerId;
use outpost_core::log::sha256;
use outpost_core::time::CivilDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pii {
    pub name: String,
    pub date_of_birth: CivilDate,
    /// 16 random bytes, hex: stops anyone from confirming a guessed identity by hashing it.
    pub salt: String,
}

impl Pii {
    /// `sha256(salt_bytes || canonical_json)` where canonical_json is exactly
    /// `{"date_of_birth":"YYYY-MM-DD","name":<JSON string>}` (docs/log-format.md). The document
    /// is built by hand so its bytes never depend on a serde_json feature such as key order.
    pub fn commitment(&self) -> Result<String, String> {
        let salt = hex::decode(&self.salt).map_err(|_| "PII salt is not hex".to_string())?;
        if salt.len() != 16 {
            return Err("PII salt must be 16 bytes".into());
        }
        let name = serde_json::to_string(&self.name).map_err(|e| e.to_string())?;
        let doc = format!(
            "{{\"date_of_birth\":\"{}\",\"name\":{name}}}",
            self.date_of_birth
        );
        let mut bytes = salt;
        bytes.extend_from_slice(doc.as_bytes());
        Ok(hex::encode(sha256(&bytes)))
    }
}

#[derive(Default)]
pub struct Vault {
    entries: HashMap<PlayerId, Pii>,
}

impl Vault {
    pub fn load(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Vault, String> {
        let mut v = Vault::default();
        for (k, val) in entries {
            let id = String::from_utf8(k).map_err(|_| "vault key is not UTF-8".to_string())?;
            let id = PlayerId::new(id).map_err(|e| e.to_string())?;
            let pii: Pii =
                serde_json::from_slice(&val).map_err(|e| format!("vault entry {id}: {e}"))?;
            pii.commitment()
                .map_err(|e| format!("vault entry {id}: {e}"))?;
            v.entries.insert(id, pii);
        }
        Ok(v)
    }
    pub fn get(&self, p: &PlayerId) -> Option<&Pii> {
        self.entries.get(p)
    }
    pub fn insert(&mut self, p: PlayerId, pii: Pii) {
        self.entries.insert(p, pii);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commitment_bytes_are_the_documented_ones() {
        let pii = Pii {
            name: "Ada \"A\" Lovelace".into(),
            date_of_birth: CivilDate::parse("1990-12-10").unwrap(),
            salt: "00".repeat(16),
        };
        let mut expect = vec![0u8; 16];
        expect.extend_from_slice(br#"{"date_of_birth":"1990-12-10","name":"Ada \"A\" Lovelace"}"#);
        assert_eq!(pii.commitment().unwrap(), hex::encode(sha256(&expect)));
        assert!(
            Pii {
                salt: "zz".into(),
                ..pii.clone()
            }
            .commitment()
            .is_err()
        );
        assert!(
            Pii {
                salt: "00".into(),
                ..pii
            }
            .commitment()
            .is_err()
        );
    }
}
