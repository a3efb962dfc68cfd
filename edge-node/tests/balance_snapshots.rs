//! The real writer emits balance-snapshot records (kind 56) by its record-count rule, as the
//! sealed end of a commit group, with balances equal to a replay of the log's wallet
//! movements, and not at all on an idle node.

use edge_node::balance_snapshot::BalanceSnapshotPolicy;
use edge_node::config::EdgeConfig;
use edge_node::node::start_core;
use outpost_core::edge::events::{EdgeEvent, IdemTag};
use outpost_core::edge::{Command, Reply};
use outpost_core::ids::{IdemKey, Jurisdiction, NodeId, Seq};
use outpost_core::ledger::Account;
use outpost_core::log::RecordKind;
use outpost_core::money::{Currency, Money};
use std::collections::HashMap;
use std::path::PathBuf;

fn idem(k: &str) -> IdemTag {
    IdemTag {
        key: IdemKey::new(k).unwrap(),
        request_sha256: "00".repeat(32),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_emits_sealed_snapshots_matching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cfg = EdgeConfig {
        node_id: NodeId::new("gb-1").unwrap(),
        jurisdiction: Jurisdiction::new("GB").unwrap(),
        data_dir: dir.path().join("data"),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        key_file: dir.path().join("node.key"),
        rules_file: root.join("deploy/jurisdictions/gb.toml"),
        fixtures: vec![],
        hub: None,
        balance_snapshot: BalanceSnapshotPolicy {
            every_records: 4,
            every_minutes: 60,
        },
        risk: Default::default(),
        register: None,
        odds: Default::default(),
        cross_operator: None,
        api: Default::default(),
        shop_terminals: vec![],
    };
    let core = start_core(&cfg).await.unwrap();
    let w = core.writer.clone();
    let mut players = Vec::new();
    for i in 0..3 {
        let r = w
            .command(
                Command::RegisterPlayer {
                    jurisdiction: cfg.jurisdiction.clone(),
                    pii_sha256: "00".repeat(32),
                    idem: idem(&format!("reg-{i}")),
                },
                None,
            )
            .await
            .unwrap()
            .unwrap();
        let Reply::Player(p) = r else { panic!("{r:?}") };
        players.push(p.player_id.clone());
        w.command(
            Command::Deposit {
                player_id: p.player_id,
                amount: Money::new(1_000 * (i + 1), Currency::GBP),
                provider_ref: format!("psp-{i}"),
                idem: idem(&format!("dep-{i}")),
            },
            None,
        )
        .await
        .unwrap()
        .unwrap();
    }
    // Reads log nothing: an idle node writes no snapshot, however often it is woken.
    w.wait_readable().await.unwrap();
    let before = core.store.last_seq().unwrap();
    for _ in 0..5 {
        w.read(|_, _| ()).await.unwrap();
    }
    w.wait_readable().await.unwrap();
    assert_eq!(core.store.last_seq().unwrap(), before);

    let frames = core.store.read_frames(Seq(1), 1000).unwrap();
    let mut derived: HashMap<String, i64> = HashMap::new();
    let mut snapshots = 0;
    for (i, f) in frames.iter().enumerate() {
        let b = f.parse_body().unwrap();
        match EdgeEvent::from_payload(b.kind, &b.payload).unwrap() {
            EdgeEvent::WalletMovement(m) => {
                for p in m.postings {
                    if let Account::PlayerCash(id) = &p.to {
                        *derived.entry(id.to_string()).or_default() += p.amount_minor;
                    }
                }
            }
            EdgeEvent::BalanceSnapshot(s) => {
                snapshots += 1;
                assert_eq!(b.kind, RecordKind::BalanceSnapshot);
                assert_eq!(s.as_of_seq.0 + 1, b.seq.0, "as of the record before it");
                assert!(
                    f.seal.is_some(),
                    "a snapshot ends its commit group, so it is sealed"
                );
                assert_eq!((s.part, s.parts), (1, 1));
                for pb in &s.players {
                    assert_eq!(
                        pb.cash_minor,
                        derived.get(pb.player_id.as_str()).copied().unwrap_or(0)
                    );
                }
                let total: i64 = derived.values().sum();
                assert_eq!(s.total_cash_minor, total);
                assert!(
                    i + 1 == frames.len()
                        || frames[i + 1].parse_body().unwrap().kind != RecordKind::BalanceSnapshot
                );
            }
            _ => {}
        }
    }
    // genesis + 6 records: the count rule (every 4 records) fired once after 4+ records.
    assert!(snapshots >= 1, "{} frames, no snapshot", frames.len());
    assert_eq!(players.len(), 3);
}
