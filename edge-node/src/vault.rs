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
    /// `sha256(salt_bytes || canonical_json)` where canonical_json is
    /// `{"name":…,"date_of_birth":"YYYY-MM-DD"}` (documented in docs/log-format.md).
    pub fn commitment(&self) -> String {
        let salt = hex::decode(&self.salt).unwrap_or_default();
        let doc = serde_json::json!({ "name": self.name, "date_of_birth": self.date_of_birth });
        let mut bytes = salt;
        bytes.extend_from_slice(doc.to_string().as_bytes());
        hex::encode(sha256(&bytes))
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
            let pii: Pii = serde_json::from_slice(&val).map_err(|e| format!("vault entry {id}: {e}"))?;
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
