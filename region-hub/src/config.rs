//! The hub's TOML configuration: where it listens, which keys and certificates it uses,
//! which edge nodes are registered with it, and how the audit trail is written.
//!
//! Parsing happens in two steps. Serde reads the file into plain structs (unknown fields are
//! refused, so a typo cannot silently leave a setting at its default), then [`HubConfig::from_toml`]
//! validates every value into domain types (ids, keys, jurisdictions) and names the exact
//! field at fault, e.g. `nodes[1].public_key: key must be 64 hex characters`.

use outpost_core::ids::{Jurisdiction, NodeId};
use outpost_core::log::{NodeKey, PublicKey};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// TOML syntax errors, unknown fields and wrong types; toml's message names the key and line.
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config field `{field}`: {problem}")]
    Field { field: String, problem: String },
}

fn field_err(field: impl Into<String>, problem: impl ToString) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        problem: problem.to_string(),
    }
}

/// The file as written. Paths may be relative to the config file's directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hub_id: String,
    data_dir: PathBuf,
    quic_listen: String,
    http_listen: String,
    tls: RawTls,
    signing_key_file: PathBuf,
    #[serde(default)]
    nodes: Vec<RawNode>,
    audit: RawAudit,
    #[serde(default)]
    reconcile: Option<crate::reconcile::config::RawReconcile>,
    #[serde(default)]
    shard: Option<crate::shard::RawShard>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_cert: PathBuf,
    hub_cert: PathBuf,
    hub_key: PathBuf,
    #[serde(default)]
    revocation_list: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: String,
    jurisdiction: String,
    public_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    #[serde(default)]
    store: Option<RawStore>,
    /// Jurisdiction code → years audit objects are locked.
    #[serde(default)]
    retention_years: BTreeMap<String, i64>,
    #[serde(default = "default_segment_max_records")]
    segment_max_records: i64,
    #[serde(default = "default_segment_max_age_ms")]
    segment_max_age_ms: i64,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum RawStore {
    Local {
        #[serde(default)]
        dir: Option<PathBuf>,
    },
    S3 {
        endpoint: String,
        bucket: String,
        access_key: String,
        secret_key: String,
    },
}

fn default_segment_max_records() -> i64 {
    1000
}
fn default_segment_max_age_ms() -> i64 {
    10_000
}

/// Validated hub configuration.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Names this hub in logs and in `/v1/stats`.
    pub hub_id: String,
    /// Holds `hub.sqlite` and, by default, the local audit store.
    pub data_dir: PathBuf,
    pub quic_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub tls: TlsFiles,
    /// File holding the hub's Ed25519 seed as 64 hex characters (signs the down chains).
    pub signing_key_file: PathBuf,
    pub nodes: Vec<NodeConfig>,
    pub audit: AuditConfig,
    /// `[reconcile]`: schedule and thresholds of the hourly reconciliation.
    pub reconcile: crate::reconcile::config::ReconcileConfig,
    /// `[shard]`: which nodes this hub owns.
    pub shard: crate::shard::ShardConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA that issued the edge nodes' client certificates (and the hub's own).
    pub ca_cert: PathBuf,
    pub hub_cert: PathBuf,
    pub hub_key: PathBuf,
    /// Revoked node certificates (serials / SHA-256 fingerprints, see
    /// `outpost_sync::revocation`), reloaded when the file changes. Optional.
    pub revocation_list: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: NodeId,
    pub jurisdiction: Jurisdiction,
    /// The node's log-sealing key; records not sealed by it are refused.
    pub public_key: PublicKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub store: AuditStoreConfig,
    /// How long audit objects of each jurisdiction stay locked. Every registered node's
    /// jurisdiction must have an entry: retention is a legal requirement, never a default.
    pub retention_years: BTreeMap<Jurisdiction, u16>,
    pub segment: SegmentPolicy,
}

#[derive(Clone, PartialEq, Eq)]
pub enum AuditStoreConfig {
    Local {
        dir: PathBuf,
    },
    S3 {
        endpoint: String,
        bucket: String,
        access_key: String,
        secret_key: String,
    },
}

// The secret key must never reach a log line.
impl std::fmt::Debug for AuditStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditStoreConfig::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            AuditStoreConfig::S3 {
                endpoint,
                bucket,
                access_key,
                ..
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("access_key", access_key)
                .field("secret_key", &"<redacted>")
                .finish(),
        }
    }
}

/// When a run of committed records becomes an audit object: once `max_records` are pending,
/// or once the oldest pending record has waited `max_age_ms` (0 = every commit at once).
/// A segment always ends on a sealed record so that it verifies on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPolicy {
    pub max_records: u64,
    pub max_age_ms: i64,
}

impl Default for SegmentPolicy {
    fn default() -> Self {
        SegmentPolicy {
            max_records: default_segment_max_records() as u64,
            max_age_ms: default_segment_max_age_ms(),
        }
    }
}

impl HubConfig {
    /// Read and validate a config file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<HubConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        HubConfig::from_toml(&text, &base).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parse and validate TOML text; relative paths are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<HubConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::from("<config>"),
            message: e.to_string(),
        })?;
        let abs = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let hub_id = raw.hub_id.trim().to_string();
        if hub_id.is_empty()
            || hub_id.len() > 64
            || !hub_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(field_err("hub_id", "must be 1-64 chars of A-Z a-z 0-9 - _"));
        }
        let addr = |field: &str, s: &str| -> Result<SocketAddr, ConfigError> {
            s.parse()
                .map_err(|_| field_err(field, format!("{s:?} is not an address like 0.0.0.0:7443")))
        };
        let quic_listen = addr("quic_listen", &raw.quic_listen)?;
        let http_listen = addr("http_listen", &raw.http_listen)?;

        let mut nodes: Vec<NodeConfig> = Vec::with_capacity(raw.nodes.len());
        for (i, n) in raw.nodes.into_iter().enumerate() {
            let f = |name: &str| format!("nodes[{i}].{name}");
            let id = NodeId::new(n.id).map_err(|e| field_err(f("id"), e))?;
            if nodes.iter().any(|x| x.id == id) {
                return Err(field_err(f("id"), format!("node {id} is registered twice")));
            }
            let jurisdiction =
                Jurisdiction::new(n.jurisdiction).map_err(|e| field_err(f("jurisdiction"), e))?;
            let public_key =
                PublicKey::from_hex(&n.public_key).map_err(|e| field_err(f("public_key"), e))?;
            nodes.push(NodeConfig {
                id,
                jurisdiction,
                public_key,
            });
        }

        let mut retention_years = BTreeMap::new();
        for (code, years) in raw.audit.retention_years {
            let field = format!("audit.retention_years.{code}");
            let j = Jurisdiction::new(code).map_err(|e| field_err(&field, e))?;
            if !(1..=100).contains(&years) {
                return Err(field_err(field, "must be between 1 and 100 years"));
            }
            retention_years.insert(j, years as u16);
        }
        for (i, n) in nodes.iter().enumerate() {
            if !retention_years.contains_key(&n.jurisdiction) {
                return Err(field_err(
                    "audit.retention_years",
                    format!(
                        "no entry for {} (jurisdiction of nodes[{i}] {})",
                        n.jurisdiction, n.id
                    ),
                ));
            }
        }
        if raw.audit.segment_max_records < 1 {
            return Err(field_err("audit.segment_max_records", "must be at least 1"));
        }
        if raw.audit.segment_max_age_ms < 0 {
            return Err(field_err(
                "audit.segment_max_age_ms",
                "must not be negative",
            ));
        }
        let data_dir = abs(raw.data_dir);
        let store = match raw.audit.store {
            None | Some(RawStore::Local { dir: None }) => AuditStoreConfig::Local {
                dir: data_dir.join("audit"),
            },
            Some(RawStore::Local { dir: Some(d) }) => AuditStoreConfig::Local { dir: abs(d) },
            Some(RawStore::S3 {
                endpoint,
                bucket,
                access_key,
                secret_key,
            }) => {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(field_err(
                        "audit.store.endpoint",
                        "must start with http:// or https://",
                    ));
                }
                if bucket.len() < 3
                    || bucket.len() > 63
                    || !bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    })
                {
                    return Err(field_err(
                        "audit.store.bucket",
                        "must be a valid S3 bucket name (3-63 chars of a-z 0-9 - .)",
                    ));
                }
                if access_key.is_empty() {
                    return Err(field_err("audit.store.access_key", "must not be empty"));
                }
                if secret_key.is_empty() {
                    return Err(field_err("audit.store.secret_key", "must not be empty"));
                }
                AuditStoreConfig::S3 {
                    endpoint,
                    bucket,
                    access_key,
                    secret_key,
                }
            }
        };

        let reconcile = crate::reconcile::config::ReconcileConfig::from_raw(raw.reconcile)
            .map_err(|(f, p)| field_err(f, p))?;
        let shard =
            crate::shard::ShardConfig::from_raw(raw.shard).map_err(|(f, p)| field_err(f, p))?;
        Ok(HubConfig {
            reconcile,
            shard,
            hub_id,
            data_dir,
            quic_listen,
            http_listen,
            tls: TlsFiles {
                ca_cert: abs(raw.tls.ca_cert),
                hub_cert: abs(raw.tls.hub_cert),
                hub_key: abs(raw.tls.hub_key),
                revocation_list: raw.tls.revocation_list.map(abs),
            },
            signing_key_file: abs(raw.signing_key_file),
            nodes,
            audit: AuditConfig {
                store,
                retention_years,
                segment: SegmentPolicy {
                    max_records: raw.audit.segment_max_records as u64,
                    max_age_ms: raw.audit.segment_max_age_ms,
                },
            },
        })
    }

    /// Read the hub's signing key from `signing_key_file`.
    pub fn signing_key(&self) -> Result<NodeKey, ConfigError> {
        let text =
            std::fs::read_to_string(&self.signing_key_file).map_err(|error| ConfigError::Read {
                path: self.signing_key_file.clone(),
                error,
            })?;
        NodeKey::from_hex(text.trim()).map_err(|e| {
            field_err(
                "signing_key_file",
                format!("{}: {e}", self.signing_key_file.display()),
            )
        })
    }

    /// Path of the SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("hub.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn sample() -> String {
        format!(
            r#"
hub_id = "eu-1"
data_dir = "data"
quic_listen = "127.0.0.1:7443"
http_listen = "127.0.0.1:8080"
signing_key_file = "keys/hub.seed"

[tls]
ca_cert = "tls/ca.pem"
hub_cert = "tls/hub.pem"
hub_key = "tls/hub.key"

[[nodes]]
id = "gb-1"
jurisdiction = "GB"
public_key = "{PK}"

[audit]
retention_years = {{ GB = 5 }}
segment_max_records = 500
segment_max_age_ms = 0
"#
        )
    }

    #[test]
    fn parses_sample_and_resolves_paths() {
        let c = HubConfig::from_toml(&sample(), Path::new("/etc/outpost")).unwrap();
        assert_eq!(c.hub_id, "eu-1");
        assert_eq!(c.data_dir, PathBuf::from("/etc/outpost/data"));
        assert_eq!(c.tls.ca_cert, PathBuf::from("/etc/outpost/tls/ca.pem"));
        assert_eq!(c.nodes[0].id.as_str(), "gb-1");
        assert_eq!(
            c.audit.store,
            AuditStoreConfig::Local {
                dir: PathBuf::from("/etc/outpost/data/audit")
            }
        );
        assert_eq!(
            c.audit.segment,
            SegmentPolicy {
                max_records: 500,
                max_age_ms: 0
            }
        );
        assert_eq!(
            c.audit.retention_years[&Jurisdiction::new("GB").unwrap()],
            5
        );
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../hub.example.toml");
        let c = HubConfig::from_toml(text, Path::new("/srv/hub")).unwrap();
        assert_eq!(
            c.audit.store,
            AuditStoreConfig::Local {
                dir: PathBuf::from("/srv/hub/data/audit")
            }
        );
        let s3 = text
            .replace("# [audit.store]", "[audit.store]")
            .replace("# kind", "kind")
            .replace("# endpoint", "endpoint");
        let s3 = s3
            .replace("# bucket", "bucket")
            .replace("# access_key", "access_key")
            .replace("# secret_key", "secret_key");
        assert!(matches!(
            HubConfig::from_toml(&s3, Path::new("/"))
                .unwrap()
                .audit
                .store,
            AuditStoreConfig::S3 { .. }
        ));
    }

    #[test]
    fn s3_store() {
        let text = sample().replace(
            "[audit]",
            "[audit.store]\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:4566\"\nbucket = \"outpost-audit\"\naccess_key = \"test\"\nsecret_key = \"test\"\n\n[audit]",
        );
        // `[audit.store]` before `[audit]` is valid TOML.
        let c = HubConfig::from_toml(&text, Path::new("/")).unwrap();
        assert!(
            matches!(c.audit.store, AuditStoreConfig::S3 { ref bucket, .. } if bucket == "outpost-audit")
        );
        assert!(!format!("{:?}", c.audit.store).contains("secret_key: \"test\""));
    }

    fn err(text: &str) -> String {
        HubConfig::from_toml(text, Path::new("/"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_field() {
        assert!(err(&sample().replace(PK, "abc")).contains("nodes[0].public_key"));
        assert!(err(&sample().replace("\"GB\"", "\"gb\"")).contains("nodes[0].jurisdiction"));
        assert!(err(&sample().replace("\"gb-1\"", "\"GB 1\"")).contains("nodes[0].id"));
        assert!(err(&sample().replace("127.0.0.1:8080", "localhost")).contains("http_listen"));
        assert!(err(&sample().replace("GB = 5", "IE = 5")).contains("audit.retention_years"));
        assert!(err(&sample().replace("GB = 5", "GB = 0")).contains("audit.retention_years.GB"));
        assert!(
            err(&sample().replace("segment_max_records = 500", "segment_max_records = 0"))
                .contains("audit.segment_max_records")
        );
        // Unknown fields are refused with their name.
        let e = err(&sample().replace("hub_id = \"eu-1\"", "hub_id = \"eu-1\"\nhub_idd = 1"));
        assert!(e.contains("hub_idd"), "{e}");
        let e = err(&sample().replace(
            "[audit]",
            "[audit.store]\nkind = \"local\"\ndirr = \"x\"\n[audit]",
        ));
        assert!(e.contains("dirr"), "{e}");
        // Missing required field.
        assert!(err(&sample().replace("hub_id = \"eu-1\"", "")).contains("hub_id"));
    }
}
