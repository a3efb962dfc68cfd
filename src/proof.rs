//! `outpost proof inclusion|consistency`: fetch a Merkle proof from an edge node and verify it
//! locally, all the way to the node's signed tree head and (with `--hub-key`) the hub's
//! cosignature, as `docs/checkpoints.md` describes. Nothing the node says is trusted except
//! through the keys given on the command line.

use anyhow::{Context, bail, ensure};
use base64::Engine;
use clap::{Args, Subcommand};
use outpost_core::log::merkle::{TreeHash, leaf_hash, verify_consistency, verify_inclusion};
use outpost_core::log::{Frame, Note, PublicKey, open_checkpoint, origin_for, verify_cosignature};
use serde_json::Value;

#[derive(Subcommand)]
pub enum ProofCmd {
    /// Prove that a record (by seq or by bet id) is in the node's log of a given size.
    Inclusion {
        #[command(flatten)]
        common: Common,
        #[arg(long, conflicts_with = "bet_id", required_unless_present = "bet_id")]
        seq: Option<u64>,
        #[arg(long)]
        bet_id: Option<String>,
        /// Tree size to prove against (default: the node's newest signed head).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Prove that the node's log of size `to` extends its log of size `from`.
    Consistency {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        from: u64,
        /// Default: the node's newest signed head.
        #[arg(long)]
        to: Option<u64>,
        /// The root you recorded earlier for size `from` (hex); otherwise the node's signed head
        /// of that size is used when it has one.
        #[arg(long)]
        from_root: Option<String>,
    },
}

#[derive(Args)]
pub struct Common {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    node: String,
    /// The node id (the checkpoint origin is `outpost/<node id>`).
    #[arg(long, default_value = "gb-1")]
    node_id: String,
    /// The node's Ed25519 public key (hex), from a source you trust (its registration).
    #[arg(long)]
    node_key: String,
    /// The hub's public key (hex): also require the hub's cosignature on the head.
    #[arg(long)]
    hub_key: Option<String>,
}

fn hash32(v: &Value, what: &str) -> anyhow::Result<TreeHash> {
    let s = v.as_str().with_context(|| format!("{what} missing"))?;
    hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| format!("{what} is not 32 bytes of hex"))
}

fn hashes(v: &Value, what: &str) -> anyhow::Result<Vec<TreeHash>> {
    v.as_array()
        .with_context(|| format!("{what} missing"))?
        .iter()
        .map(|h| hash32(h, what))
        .collect()
}

/// Check a signed head (JSON from the node) against `size` and `root`; returns a summary.
fn check_head(c: &Common, head: &Value, size: u64, root: &TreeHash) -> anyhow::Result<String> {
    let note = head["note"].as_str().context("checkpoint note missing")?;
    let key = PublicKey::from_hex(&c.node_key).context("--node-key")?;
    let origin = origin_for(&c.node_id);
    let (cp, body) = open_checkpoint(note, &origin, &key).context("node signature on the head")?;
    ensure!(
        cp.size == size,
        "signed head is for size {}, not {size}",
        cp.size
    );
    ensure!(
        &cp.root == root,
        "signed head's root differs from the proof's root"
    );
    let mut summary = format!("signed by {origin} at {} ms", cp.timestamp.0);
    if let Some(hub) = &c.hub_key {
        let hub = PublicKey::from_hex(hub).context("--hub-key")?;
        let lines = Note::parse(note)?.signatures;
        let mut ok = None;
        for (name, _) in lines.iter().filter(|(n, _)| *n != origin) {
            let line = note
                .lines()
                .find(|l| l.starts_with(&format!("\u{2014} {name} ")))
                .unwrap_or_default();
            if let Ok(t) = verify_cosignature(&body, line, name, &hub) {
                ok = Some((name.clone(), t));
            }
        }
        let Some((name, t)) = ok else {
            bail!(
                "the head carries no valid cosignature by the given hub key (not yet witnessed?)"
            );
        };
        summary.push_str(&format!(", cosigned by witness {name} at {t} s"));
    }
    Ok(summary)
}

async fn fetch(url: &str) -> anyhow::Result<Value> {
    let r = crate::api_token::authorise(reqwest::Client::new().get(url))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let v: Value = r
        .json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))?;
    ensure!(status.is_success(), "GET {url}: {status}: {v}");
    Ok(v)
}

pub async fn run(cmd: ProofCmd) -> anyhow::Result<()> {
    match cmd {
        ProofCmd::Inclusion {
            common,
            seq,
            bet_id,
            size,
        } => {
            let mut url = format!("{}/v1/proofs/inclusion?", common.node);
            match (seq, &bet_id) {
                (Some(s), _) => url.push_str(&format!("seq={s}")),
                (None, Some(b)) => url.push_str(&format!("bet_id={b}")),
                (None, None) => bail!("give --seq or --bet-id"),
            }
            if let Some(n) = size {
                url.push_str(&format!("&size={n}"));
            }
            let v = fetch(&url).await?;
            let seq = v["seq"].as_u64().context("seq missing")?;
            let size = v["tree_size"].as_u64().context("tree_size missing")?;
            let frame_bytes = base64::engine::general_purpose::STANDARD
                .decode(v["frame_b64"].as_str().context("frame_b64 missing")?)?;
            let frame = Frame::decode_exact(&frame_bytes).context("record frame")?;
            let body = frame.parse_body().context("record body")?;
            ensure!(body.seq.0 == seq, "record has seq {}, not {seq}", body.seq);
            if let Some(b) = &bet_id {
                let payload: Value = serde_json::from_slice(&body.payload)?;
                ensure!(
                    body.kind.name() == "bet_placed" && payload["bet_id"] == b.as_str(),
                    "record {seq} is not the bet_placed record of bet {b}"
                );
            }
            let record_hash = frame.hash();
            let root = hash32(&v["root_hex"], "root_hex")?;
            let proof = hashes(&v["proof_hex"], "proof_hex")?;
            verify_inclusion(&leaf_hash(&record_hash.0), seq - 1, size, &proof, &root)
                .context("inclusion proof")?;
            ensure!(
                !v["checkpoint"].is_null(),
                "the node has no signed head of size {size}; use its head size"
            );
            let head = check_head(&common, &v["checkpoint"], size, &root)?;
            println!(
                "OK: record {seq} ({}, hash {record_hash}) is in the log of {size} records, root {}; {head}",
                body.kind.name(),
                hex::encode(root)
            );
        }
        ProofCmd::Consistency {
            common,
            from,
            to,
            from_root,
        } => {
            let mut url = format!("{}/v1/proofs/consistency?from={from}", common.node);
            if let Some(n) = to {
                url.push_str(&format!("&to={n}"));
            }
            let v = fetch(&url).await?;
            let to = v["to"].as_u64().context("to missing")?;
            let to_root = hash32(&v["to_root_hex"], "to_root_hex")?;
            let from_root = match from_root {
                Some(h) => hash32(&Value::String(h), "--from-root")?,
                None => {
                    let r = hash32(&v["from_root_hex"], "from_root_hex")?;
                    ensure!(
                        from == 0 || !v["from_checkpoint"].is_null(),
                        "the node has no signed head of size {from}: pass --from-root with the root you recorded"
                    );
                    if from > 0 {
                        check_head(&common, &v["from_checkpoint"], from, &r)
                            .context("head of size `from`")?;
                    }
                    r
                }
            };
            let proof = hashes(&v["proof_hex"], "proof_hex")?;
            verify_consistency(from, to, &proof, &from_root, &to_root)
                .context("consistency proof")?;
            ensure!(
                !v["to_checkpoint"].is_null(),
                "the node has no signed head of size {to}"
            );
            let head = check_head(&common, &v["to_checkpoint"], to, &to_root)?;
            println!(
                "OK: the log of {to} records (root {}) extends the log of {from} records (root {}); {head}",
                hex::encode(to_root),
                hex::encode(from_root)
            );
        }
    }
    Ok(())
}
