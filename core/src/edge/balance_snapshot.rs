//! Periodic balance-snapshot records (kind 56): the edge states, inside its own signed log,
//! every player's wallet balances at a log position. The hub's hourly reconciliation replays
//! the wallet movements up to that position and compares (check 1 of
//! `docs/reconciliation.md`), so a ledger bug, a lost or altered record, or a tampered store
//! on either side shows up within the hour.
//!
//! Only pseudonymous player ids and integer minor units leave the edge. A snapshot larger than
//! [`PLAYERS_PER_RECORD`] players is split into `parts` records written consecutively in one
//! commit group; every part carries the totals over all parts.

use super::events::EdgeEvent;
use super::state::EdgeState;
use crate::ids::{Jurisdiction, NodeId, PlayerId, Seq};
use crate::ledger::Account;
use crate::money::Currency;
use serde::{Deserialize, Serialize};

/// Players per record: ~70 bytes of JSON each keeps a part far below the 1 MiB payload limit.
pub const PLAYERS_PER_RECORD: usize = 5_000;

/// One player's balances in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerBalance {
    pub player_id: PlayerId,
    pub cash_minor: i64,
    pub stakes_held_minor: i64,
}

/// Payload of one balance-snapshot record (one part of a snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceSnapshot {
    pub node_id: NodeId,
    pub jurisdiction: Jurisdiction,
    pub currency: Currency,
    /// The balances are those after applying every record with `seq <= as_of_seq`: the
    /// record just before the snapshot's first part.
    pub as_of_seq: Seq,
    /// 1-based part number and number of parts.
    pub part: u32,
    pub parts: u32,
    /// Players of this part in id order (every registered player, zero balances included, so
    /// a player the hub knows but the edge left out is itself a discrepancy).
    pub players: Vec<PlayerBalance>,
    /// Sums over all parts.
    pub total_cash_minor: i64,
    pub total_stakes_held_minor: i64,
}

/// The snapshot of `state` as of `as_of_seq` (the seq of the last record `state` has applied),
/// as one or more events. Empty if the state has no genesis yet.
pub fn snapshot_events(state: &EdgeState, as_of_seq: Seq) -> Vec<EdgeEvent> {
    let Some(node) = state.node.as_ref() else {
        return Vec::new();
    };
    let ledger = state.ledger();
    let players: Vec<PlayerBalance> = state
        .players
        .keys()
        .map(|p| PlayerBalance {
            player_id: p.clone(),
            cash_minor: ledger.balance(&Account::PlayerCash(p.clone())),
            stakes_held_minor: ledger.balance(&Account::PlayerStakes(p.clone())),
        })
        .collect();
    // Player balances are never negative and each fits i64, but their sum need not: saturate
    // rather than wrap (a saturated total is itself a reconciliation finding).
    let total_cash_minor = players
        .iter()
        .fold(0i64, |a, p| a.saturating_add(p.cash_minor));
    let total_stakes_held_minor = players
        .iter()
        .fold(0i64, |a, p| a.saturating_add(p.stakes_held_minor));
    let chunks: Vec<&[PlayerBalance]> = if players.is_empty() {
        vec![&[]]
    } else {
        players.chunks(PLAYERS_PER_RECORD).collect()
    };
    let parts = chunks.len() as u32;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            EdgeEvent::BalanceSnapshot(BalanceSnapshot {
                node_id: node.node_id.clone(),
                jurisdiction: node.jurisdiction.clone(),
                currency: node.currency,
                as_of_seq,
                part: i as u32 + 1,
                parts,
                players: chunk.to_vec(),
                total_cash_minor,
                total_stakes_held_minor,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::events::{Genesis, IdemTag, MovementReason, PlayerRegistered, WalletMovement};
    use crate::ids::IdemKey;
    use crate::ledger::Posting;
    use crate::log::RecordKind;
    use crate::time::UnixMillis;

    fn state_with(players: usize) -> EdgeState {
        let mut s = EdgeState::default();
        let node = NodeId::new("gb-1").unwrap();
        let gb = Jurisdiction::new("GB").unwrap();
        let t = UnixMillis(1_000);
        s.apply(
            &EdgeEvent::Genesis(Genesis {
                node_id: node,
                jurisdiction: gb.clone(),
                currency: Currency::GBP,
                public_key: "00".repeat(32),
                software: "test".into(),
            }),
            t,
        )
        .unwrap();
        for i in 0..players {
            let p = PlayerId::new(format!("gb-1-p{i}")).unwrap();
            let idem = IdemTag {
                key: IdemKey::new(format!("k{i}")).unwrap(),
                request_sha256: "00".repeat(32),
            };
            s.apply(
                &EdgeEvent::PlayerRegistered(PlayerRegistered {
                    player_id: p.clone(),
                    jurisdiction: gb.clone(),
                    pii_sha256: "00".repeat(32),
                    idem,
                }),
                t,
            )
            .unwrap();
            s.apply(
                &EdgeEvent::WalletMovement(WalletMovement {
                    movement_id: i as u64 + 1,
                    player_id: p.clone(),
                    reason: MovementReason::Deposit,
                    currency: Currency::GBP,
                    postings: vec![Posting {
                        from: Account::PaymentProvider,
                        to: Account::PlayerCash(p),
                        amount_minor: 100 + i as i64,
                    }],
                    bet_id: None,
                    provider_ref: Some(format!("psp-{i}")),
                    decision: None,
                    idem: None,
                }),
                t,
            )
            .unwrap();
        }
        s
    }

    #[test]
    fn lists_every_player_with_totals_and_round_trips() {
        let s = state_with(3);
        let evs = snapshot_events(&s, Seq(7));
        assert_eq!(evs.len(), 1);
        let EdgeEvent::BalanceSnapshot(b) = &evs[0] else {
            panic!("{:?}", evs[0])
        };
        assert_eq!((b.part, b.parts, b.as_of_seq), (1, 1, Seq(7)));
        assert_eq!(
            b.players.iter().map(|p| p.cash_minor).collect::<Vec<_>>(),
            vec![100, 101, 102]
        );
        assert_eq!((b.total_cash_minor, b.total_stakes_held_minor), (303, 0));
        assert_eq!(evs[0].kind(), RecordKind::BalanceSnapshot);
        let back = EdgeEvent::from_payload(RecordKind::BalanceSnapshot, &evs[0].to_payload());
        assert_eq!(back.unwrap(), evs[0]);
        // Applying a snapshot changes nothing.
        let mut s2 = s.clone();
        s2.apply(&evs[0], UnixMillis(2_000)).unwrap();
        assert_eq!(s2, s);
    }

    #[test]
    fn splits_large_snapshots_into_parts_under_the_payload_limit() {
        let s = state_with(PLAYERS_PER_RECORD + 1);
        let evs = snapshot_events(&s, Seq(1));
        assert_eq!(evs.len(), 2);
        let mut n = 0;
        for (i, e) in evs.iter().enumerate() {
            let EdgeEvent::BalanceSnapshot(b) = e else {
                panic!()
            };
            assert_eq!((b.part, b.parts), (i as u32 + 1, 2));
            n += b.players.len();
            assert!(
                e.to_payload().len() < 1 << 20,
                "under the 1 MiB payload limit"
            );
        }
        assert_eq!(n, PLAYERS_PER_RECORD + 1);
        assert!(snapshot_events(&EdgeState::default(), Seq(0)).is_empty());
    }
}
