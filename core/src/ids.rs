//! Identifier newtypes. Sequence numbers and ids never travel as bare integers or strings
//! inside the domain, so a bet id cannot be passed where a player id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Position of a record in one log (1-based, gap-free). `Seq(0)` means "nothing yet".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    pub const ZERO: Seq = Seq(0);
    pub fn next(self) -> Seq {
        Seq(self.0.checked_add(1).expect("sequence space exhausted"))
    }
}
impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl fmt::Debug for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Seq({})", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {value:?} ({rule})")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal, $allowed:expr, $rule:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s: String = s.into();
                let allowed: fn(u8) -> bool = $allowed;
                if s.is_empty() || s.len() > $max || !s.bytes().all(allowed) {
                    return Err(IdError { kind: $kind, value: s.chars().take(80).collect(), rule: $rule });
                }
                Ok($name(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                $name::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

fn dns_label(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}
fn token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/')
}

string_id!(
    /// An edge node's id. It is a DNS label because it is bound into the node's TLS
    /// certificate as `{node}.nodes.outpost`.
    NodeId, "node id", 32, dns_label, "1-32 chars of a-z, 0-9, '-'"
);
string_id!(
    /// Identifies one hash chain: an edge node's log (`gb-1`) or the hub's downstream chain
    /// to a node (`hub/gb-1`).
    LogId, "log id", 64, token, "1-64 chars of A-Z a-z 0-9 - _ . : /"
);
string_id!(
    /// Pseudonymous player id: carries no PII, so it may leave the jurisdiction.
    PlayerId, "player id", 64, token, "1-64 chars of A-Z a-z 0-9 - _ . : /"
);
string_id!(
    BetId,
    "bet id",
    64,
    token,
    "1-64 chars of A-Z a-z 0-9 - _ . : /"
);
string_id!(
    EventId,
    "event id",
    96,
    token,
    "1-96 chars of A-Z a-z 0-9 - _ . : /"
);
string_id!(
    MarketId,
    "market id",
    128,
    token,
    "1-128 chars of A-Z a-z 0-9 - _ . : /"
);
string_id!(
    SelectionId,
    "selection id",
    160,
    token,
    "1-160 chars of A-Z a-z 0-9 - _ . : /"
);
string_id!(
    /// A client-supplied idempotency key (`Idempotency-Key` header).
    IdemKey, "idempotency key", 128, token, "1-128 chars of A-Z a-z 0-9 - _ . : /"
);

// Shop estate ids (issue 6: retail).
string_id!(
    /// A betting shop of the operator's estate served by this edge node.
    ShopId, "shop id", 32, dns_label, "1-32 chars of a-z, 0-9, '-'"
);
string_id!(
    /// One till in a shop; bound with its shop id to the terminal's credential.
    TerminalId, "terminal id", 32, dns_label, "1-32 chars of a-z, 0-9, '-'"
);
string_id!(
    /// A member of shop staff (cashier or manager), as the till authenticated them by PIN.
    StaffId, "staff id", 32, dns_label, "1-32 chars of a-z, 0-9, '-'"
);

/// A jurisdiction code such as `GB`, `IE`, `US-NJ`, `DE`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Jurisdiction(String);

impl Jurisdiction {
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s: String = s.into();
        let ok =
            (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'-');
        if !ok {
            return Err(IdError {
                kind: "jurisdiction",
                value: s.chars().take(16).collect(),
                rule: "2-8 chars of A-Z and '-', e.g. GB or US-NJ",
            });
        }
        Ok(Jurisdiction(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Jurisdiction {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Jurisdiction::new(s)
    }
}
impl From<Jurisdiction> for String {
    fn from(v: Jurisdiction) -> String {
        v.0
    }
}
impl fmt::Display for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Jurisdiction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jurisdiction({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(NodeId::new("gb-1").is_ok());
        assert!(NodeId::new("GB-1").is_err());
        assert!(NodeId::new("").is_err());
        assert!(NodeId::new("a".repeat(33)).is_err());
        assert!(IdemKey::new("abc def").is_err());
        assert!(Jurisdiction::new("US-NJ").is_ok());
        assert!(Jurisdiction::new("gb").is_err());
        let j: Result<PlayerId, _> = serde_json::from_str("\"p 1\"");
        assert!(j.is_err());
    }
}
