//! Shard ownership: which edge nodes this hub instance serves. A region can run several hub
//! shards side by side (see `docs/scale-out.md`), each with its own SQLite database and all
//! sharing one S3 audit bucket; the `[shard]` config section says which nodes, or which
//! jurisdictions' nodes, this one owns. Records from a node it does not own are refused with
//! [`crate::store::StoreError::NotOwned`], so a misrouted node can never split its log across
//! two databases. Without a `[shard]` section the hub owns every registered node.

use outpost_core::ids::{Jurisdiction, NodeId};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShard {
    id: String,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    jurisdictions: Vec<String>,
}

/// Validated `[shard]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardConfig {
    /// `None`: a single hub owning every registered node.
    pub id: Option<String>,
    pub nodes: BTreeSet<NodeId>,
    pub jurisdictions: BTreeSet<Jurisdiction>,
}

impl ShardConfig {
    pub(crate) fn from_raw(raw: Option<RawShard>) -> Result<ShardConfig, (String, String)> {
        let Some(raw) = raw else {
            return Ok(ShardConfig::default());
        };
        let err = |f: &str, p: String| (format!("shard.{f}"), p);
        if raw.id.is_empty()
            || raw.id.len() > 63
            || !raw
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("id", "must be 1-63 chars of a-z 0-9 -".into()));
        }
        let mut nodes = BTreeSet::new();
        for (i, n) in raw.nodes.into_iter().enumerate() {
            nodes.insert(NodeId::new(n).map_err(|e| err(&format!("nodes[{i}]"), e.to_string()))?);
        }
        let mut jurisdictions = BTreeSet::new();
        for (i, j) in raw.jurisdictions.into_iter().enumerate() {
            jurisdictions.insert(
                Jurisdiction::new(j)
                    .map_err(|e| err(&format!("jurisdictions[{i}]"), e.to_string()))?,
            );
        }
        if nodes.is_empty() && jurisdictions.is_empty() {
            return Err(err(
                "nodes",
                "a shard must own at least one node or jurisdiction".into(),
            ));
        }
        Ok(ShardConfig {
            id: Some(raw.id),
            nodes,
            jurisdictions,
        })
    }

    /// Whether this hub serves `node` of `jurisdiction`.
    pub fn owns(&self, node: &NodeId, jurisdiction: &Jurisdiction) -> bool {
        self.id.is_none() || self.nodes.contains(node) || self.jurisdictions.contains(jurisdiction)
    }
}

impl fmt::Display for ShardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            None => f.write_str("the only shard (owns every registered node)"),
            Some(id) => {
                let n: Vec<&str> = self.nodes.iter().map(|n| n.as_str()).collect();
                let j: Vec<&str> = self.jurisdictions.iter().map(|j| j.as_str()).collect();
                write!(
                    f,
                    "shard {id} (owns nodes [{}], jurisdictions [{}])",
                    n.join(", "),
                    j.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, nodes: &[&str], js: &[&str]) -> Option<RawShard> {
        Some(RawShard {
            id: id.into(),
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            jurisdictions: js.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn owns_by_node_or_jurisdiction() {
        let gb = Jurisdiction::new("GB").unwrap();
        let nj = Jurisdiction::new("US-NJ").unwrap();
        let n = |s: &str| NodeId::new(s).unwrap();
        let all = ShardConfig::from_raw(None).unwrap();
        assert!(all.owns(&n("gb-1"), &gb));
        let s = ShardConfig::from_raw(raw("nj", &["gb-9"], &["US-NJ"])).unwrap();
        assert!(s.owns(&n("nj-1"), &nj) && s.owns(&n("gb-9"), &gb));
        assert!(!s.owns(&n("gb-1"), &gb));
        assert!(s.to_string().contains("US-NJ"));
        assert_eq!(
            ShardConfig::from_raw(raw("x", &[], &[])).unwrap_err().0,
            "shard.nodes"
        );
        assert_eq!(
            ShardConfig::from_raw(raw("X!", &["a"], &[])).unwrap_err().0,
            "shard.id"
        );
        assert_eq!(
            ShardConfig::from_raw(raw("x", &["bad id"], &[]))
                .unwrap_err()
                .0,
            "shard.nodes[0]"
        );
        assert_eq!(
            ShardConfig::from_raw(raw("x", &[], &["gb"])).unwrap_err().0,
            "shard.jurisdictions[0]"
        );
    }

    /// The shard configs shipped in the Kubernetes manifests parse and own what they say.
    #[test]
    fn k8s_shard_configs_parse() {
        let yaml = include_str!("../../deploy/k8s/hub-config.yaml");
        let mut shards: Vec<(String, String)> = Vec::new();
        for line in yaml.lines() {
            if let Some(name) = line
                .strip_prefix("  shard-")
                .and_then(|l| l.strip_suffix(".toml: |"))
            {
                shards.push((name.to_string(), String::new()));
            } else if let Some((_, body)) = shards.last_mut() {
                body.push_str(line.strip_prefix("    ").unwrap_or(line));
                body.push('\n');
            }
        }
        assert_eq!(shards.len(), 2);
        for (n, body) in shards {
            let body = body
                .replace("${S3_ACCESS_KEY}", "AKIA")
                .replace("${S3_SECRET_KEY}", "secret");
            let c = crate::HubConfig::from_toml(&body, std::path::Path::new("/"))
                .unwrap_or_else(|e| panic!("shard-{n}.toml: {e}"));
            assert!(c.shard.id.is_some());
            for node in &c.nodes {
                assert!(
                    c.shard.owns(&node.id, &node.jurisdiction),
                    "shard-{n} owns its nodes"
                );
            }
        }
    }
}
