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
    #[serde(default)]
    pub odds: crate::odds::config::OddsConfig,
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
    #[error("{path}: {error}")]
    Invalid {
        path: PathBuf,
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
        parse(path)
    }
}

pub fn load_rules(path: &Path) -> Result<JurisdictionRules, ConfigError> {
    let r: JurisdictionRules = parse(path)?;
    r.validate().map_err(|error| ConfigError::Invalid {
        path: path.into(),
        error,
    })?;
    Ok(r)
}
