//! Till configuration (TOML): which shop and terminal this is, the edge node and its token,
//! the printer, the journal file, the slip terms, and the staff who may log in.
//! Unknown keys and bad values are refused before anything starts.

use crate::printer::PrinterConfig;
use outpost_core::ids::{ShopId, StaffId, TerminalId};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Cashier,
    Manager,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffConfig {
    pub staff_id: StaffId,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of `"{staff_id}:{pin}"` (see `shop-terminal hash-pin`).
    pub pin_sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TillConfig {
    pub shop_id: ShopId,
    pub shop_name: String,
    pub terminal_id: TerminalId,
    /// The till UI; keep it on loopback.
    pub listen: SocketAddr,
    /// The shop's edge node over the LAN, e.g. `http://10.0.0.2:8080`.
    pub edge_url: String,
    /// File holding this terminal's bearer token (the node's config holds its SHA-256).
    pub token_file: PathBuf,
    pub journal: PathBuf,
    pub printer: PrinterConfig,
    /// Printed at the foot of every slip.
    pub terms: String,
    pub staff: Vec<StaffConfig>,
}

impl TillConfig {
    pub fn load(path: &Path) -> anyhow::Result<TillConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let c: TillConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if c.staff.is_empty() {
            anyhow::bail!(
                "{}: at least one [[staff]] entry is required",
                path.display()
            );
        }
        for s in &c.staff {
            if s.pin_sha256.len() != 64 || hex::decode(&s.pin_sha256).is_err() {
                anyhow::bail!(
                    "{}: staff {} pin_sha256 must be 64 hex chars",
                    path.display(),
                    s.staff_id
                );
            }
        }
        if !c.edge_url.starts_with("http://") && !c.edge_url.starts_with("https://") {
            anyhow::bail!("{}: edge_url must be an http(s) URL", path.display());
        }
        Ok(c)
    }

    pub fn token(&self) -> anyhow::Result<String> {
        let t = std::fs::read_to_string(&self.token_file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.token_file.display()))?;
        Ok(t.trim().to_string())
    }
}

pub fn pin_hash(staff: &str, pin: &str) -> String {
    hex::encode(outpost_core::log::sha256(
        format!("{staff}:{pin}").as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_bad_ones_are_refused() {
        let ex = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/shop/till.example.toml"
        );
        let c = TillConfig::load(Path::new(ex)).unwrap();
        assert_eq!(c.staff[0].pin_sha256, pin_hash("ann", "1234"));
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(ex).unwrap();
        for (from, to) in [
            ("kind = \"network\"", "kind = \"carrier-pigeon\""),
            ("terminal_id = \"t1\"", "terminal_id = \"T 1\""),
            ("shop_id = \"s1\"", "shop_id = \"s1\"\ncolour = \"red\""),
        ] {
            let p = dir.path().join("bad.toml");
            std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
            assert!(TillConfig::load(&p).is_err(), "{to} accepted");
        }
    }
}
