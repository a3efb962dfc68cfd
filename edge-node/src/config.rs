//! Node configuration (TOML). Unknown keys and bad values are refused with the file, line and
//! field, before anything starts.

use outpost_core::ids::{Jurisdiction, NodeId};
use outpost_core::jurisdiction::JurisdictionRules;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    pub node_id: NodeId,
    pub jurisdiction: Jurisdiction,
    pub data_dir: PathBuf,
    pub http_listen: SocketAddr,
    /// Ed25519 seed (64 hex chars) that seals this node's log.
    pub key_file: PathBuf,
    pub rules_file: PathBuf,
    #[serde(default)]
    pub fixtures: Vec<FixtureSource>,
    pub hub: Option<HubLinkConfig>,
    /// When balance-snapshot records are written (for the hub's reconciliation).
    #[serde(default)]
    pub balance_snapshot: crate::balance_snapshot::BalanceSnapshotPolicy,
    /// Operator trading limits (liability per selection and per event).
    #[serde(default)]
    pub risk: outpost_core::gate::RiskLimits,
    /// The national self-exclusion register source, where the jurisdiction has one.
    #[serde(default)]
    pub register: Option<RegisterSource>,
    /// Shop tills allowed to use `/v1/shop` (issue 6).
    #[serde(default)]
    pub shop_terminals: Vec<crate::api::shop::TerminalCredential>,
    /// Feeds, pricing and the odds stream (issue 4).
    #[serde(default)]
    pub odds: crate::odds::config::OddsConfig,
    /// The external cross-operator deposit check (DE: LUGAS), queried before each deposit
    /// where the jurisdiction has a cross-operator cap.
    #[serde(default)]
    pub cross_operator: Option<crate::cross_operator::CrossOperatorConfig>,
    /// API clients and their roles; without any, the API listens on loopback only.
    #[serde(default)]
    pub api: crate::api::auth::ApiAccessConfig,
}

/// Where this node gets its copy of the national self-exclusion register.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSource {
    /// The register authority's Ed25519 public key (hex) that signs snapshots and updates.
    pub authority_public_key: String,
    /// A directory the register's documents are delivered into (`*.json`, each a
    /// `{"payload_b64","signature_hex"}` document). Polled; imported in name order.
    #[serde(default)]
    pub inbox_dir: Option<PathBuf>,
}

/// A football-data.co.uk CSV whose matches are opened as markets on first start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSource {
    pub football_data: PathBuf,
    pub div: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubLinkConfig {
    pub addr: SocketAddr,
    #[serde(default = "default_server_name")]
    pub server_name: String,
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The hub's Ed25519 public key (hex): verifies the downstream chain.
    pub public_key: String,
}

fn default_server_name() -> String {
    "hub.outpost".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}:{line}: {error}")]
    Invalid {
        path: PathBuf,
        /// Line of the offending field (0 when the field is absent from the file).
        line: usize,
        error: outpost_core::jurisdiction::RulesError,
    },
}

fn parse<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.into(),
        error,
    })?;
    // toml's message names the line, column and field.
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

impl EdgeConfig {
    pub fn load(path: &Path) -> Result<EdgeConfig, ConfigError> {
        let cfg: EdgeConfig = parse(path)?;
        cfg.api
            .validate(&cfg.http_listen)
            .map_err(|message| ConfigError::Parse {
                path: path.into(),
                message,
            })?;
        Ok(cfg)
    }
}

/// Load and validate a rules file; also returns the SHA-256 (hex) of its bytes, recorded when
/// the rules are activated.
pub fn load_rules_with_hash(path: &Path) -> Result<(JurisdictionRules, String), ConfigError> {
    let bytes = std::fs::read(path).map_err(|error| ConfigError::Read {
        path: path.into(),
        error,
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| ConfigError::Parse {
        path: path.into(),
        message: "not UTF-8".into(),
    })?;
    let r: JurisdictionRules = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string(),
    })?;
    r.validate().map_err(|error| ConfigError::Invalid {
        path: path.into(),
        line: field_line(&text, error.field),
        error,
    })?;
    Ok((r, hex::encode(outpost_core::log::sha256(&bytes))))
}

pub fn load_rules(path: &Path) -> Result<JurisdictionRules, ConfigError> {
    load_rules_with_hash(path).map(|(r, _)| r)
}

/// The 1-based line where a dotted field (`limits.time_out_hours_max`) is set: the key inside
/// its table (or the table header itself when the key is the table). 0 if not found.
pub fn field_line(text: &str, field: &str) -> usize {
    let (table, key) = match field.rsplit_once('.') {
        Some((t, k)) => (Some(t), k),
        None => (None, field),
    };
    let mut current: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(h) = line.strip_prefix('[') {
            let name = h.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            if table.is_none() && name == key {
                return i + 1;
            }
            current = Some(name);
            continue;
        }
        let in_table = current.as_deref() == table;
        if in_table
            && let Some((k, _)) = line.split_once('=')
            && k.trim() == key
        {
            return i + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped rules file parses and validates.
    #[test]
    fn shipped_rules_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/jurisdictions");
        let mut codes = vec![];
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let r = load_rules(&p).unwrap_or_else(|e| panic!("{e}"));
            codes.push(r.code.to_string());
        }
        codes.sort();
        assert_eq!(
            codes,
            ["DE", "DK", "GB", "IE", "IT", "MT", "US-NJ", "US-PA"]
        );
    }

    /// The shipped Outposts example config loads (and so passes the API access check).
    #[test]
    fn the_outposts_example_config_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/outposts/edge.example.toml");
        let cfg = EdgeConfig::load(&p).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cfg.http_listen.ip().is_loopback());
        assert_eq!(cfg.api.clients.len(), 5);
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(cfg.rules_file.strip_prefix("/opt/outpost").unwrap())
                .exists()
        );
    }

    /// A node listening beyond loopback must have API clients: it never serves an open API
    /// to the network.
    #[test]
    fn an_open_api_off_loopback_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("edge.toml");
        let cfg = |listen: &str| {
            format!(
                "node_id = \"gb-1\"\njurisdiction = \"GB\"\ndata_dir = \"d\"\nhttp_listen = \"{listen}\"\nkey_file = \"k\"\nrules_file = \"r\"\n"
            )
        };
        std::fs::write(&p, cfg("127.0.0.1:8080")).unwrap();
        assert!(EdgeConfig::load(&p).is_ok());
        std::fs::write(&p, cfg("0.0.0.0:8080")).unwrap();
        let e = EdgeConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("edge.toml") && e.contains("not a loopback"),
            "{e}"
        );
        let hash = "ab".repeat(32);
        std::fs::write(
            &p,
            cfg("0.0.0.0:8080")
                + &format!("[[api.clients]]\nname = \"platform\"\ntoken_sha256 = \"{hash}\"\nroles = [\"player_channel\"]\n"),
        )
        .unwrap();
        assert!(EdgeConfig::load(&p).is_ok());
        // An unknown role is a parse error naming it.
        std::fs::write(
            &p,
            std::fs::read_to_string(&p)
                .unwrap()
                .replace("player_channel", "root"),
        )
        .unwrap();
        let e = EdgeConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("root"), "{e}");
    }

    /// A bad value is refused with the file, line and field.
    #[test]
    fn bad_value_names_file_line_and_field() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/jurisdictions/de.toml");
        let text = std::fs::read_to_string(src).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("de.toml");
        let bad = text.replace(
            "staleness_bound_minutes = 15",
            "staleness_bound_minutes = 1",
        );
        std::fs::write(&p, &bad).unwrap();
        let line = bad
            .lines()
            .position(|l| l.starts_with("staleness_bound_minutes"))
            .unwrap()
            + 1;
        let e = load_rules(&p).unwrap_err().to_string();
        assert!(
            e.contains(&format!("de.toml:{line}:"))
                && e.contains("register.staleness_bound_minutes"),
            "{e}"
        );
        // Unknown or mistyped fields: toml names the line and key.
        std::fs::write(
            &p,
            text.replace("in_play_allowed = true", "in_play_allowed = \"yes\""),
        )
        .unwrap();
        let e = load_rules(&p).unwrap_err().to_string();
        assert!(e.contains("in_play_allowed") && e.contains("line"), "{e}");
        std::fs::write(&p, text.replace("[bets]\n", "[bets]\nsurprise = 1\n")).unwrap();
        let e = load_rules(&p).unwrap_err().to_string();
        assert!(e.contains("surprise"), "{e}");
    }
}
