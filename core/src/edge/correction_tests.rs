//! Settlement corrections at the edge: a hub reversal followed by a resettlement moves exactly
//! the difference, once; a reversal that exceeds the player's cash books a debt rather than a
//! negative balance, blocks withdrawals until repaid, and later winnings repay it first
//! (docs/settlement.md, "Corrections that exceed the balance").

use super::events::*;
use super::{BetStatus, Command, CommandError, DecideCtx, EdgeState};
use crate::hub::{HubEvent, HubSettlement, HubSettlementReversal};
use crate::ids::{
    BetId, EventId, IdemKey, Jurisdiction, MarketId, NodeId, PlayerId, SelectionId, Seq,
};
use crate::jurisdiction::JurisdictionRules;
use crate::ledger::{Account, Posting};
use crate::market::{MarketKind, Outcome};
use crate::money::{Currency, Money};
use crate::price::Price;
use crate::settle::LegResult;
use crate::time::UnixMillis;

fn rules() -> JurisdictionRules {
    crate::jurisdiction::example_rules()
}

fn idem(k: &str) -> IdemTag {
    IdemTag {
        key: IdemKey::new(k).unwrap(),
        request_sha256: "0".repeat(64),
    }
}

struct Edge {
    s: EdgeState,
    down: u64,
    node: NodeId,
    player: PlayerId,
}

impl Edge {
    /// A node with one player who deposited `cash` and placed bet `b-1`: £10 at 3.00.
    fn new(cash: i64) -> Edge {
        let node = NodeId::new("gb-1").unwrap();
        let player = PlayerId::new("gb-1-p1").unwrap();
        let mut s = EdgeState::default();
        let at = UnixMillis(1);
        let events = vec![
            EdgeEvent::Genesis(Genesis {
                node_id: node.clone(),
                jurisdiction: Jurisdiction::new("GB").unwrap(),
                currency: Currency::GBP,
                public_key: "00".repeat(32),
                software: "test".into(),
            }),
            EdgeEvent::PlayerRegistered(PlayerRegistered {
                player_id: player.clone(),
                jurisdiction: Jurisdiction::new("GB").unwrap(),
                pii_sha256: "0".repeat(64),
                idem: idem("reg"),
            }),
            EdgeEvent::WalletMovement(WalletMovement {
                movement_id: 1,
                player_id: player.clone(),
                reason: MovementReason::Deposit,
                currency: Currency::GBP,
                postings: vec![Posting {
                    from: Account::PaymentProvider,
                    to: Account::PlayerCash(player.clone()),
                    amount_minor: cash + 1000,
                }],
                bet_id: None,
                provider_ref: Some("dep-1".into()),
                decision: None,
                idem: Some(idem("dep")),
            }),
            EdgeEvent::WalletMovement(WalletMovement {
                movement_id: 2,
                player_id: player.clone(),
                reason: MovementReason::Stake,
                currency: Currency::GBP,
                postings: vec![Posting {
                    from: Account::PlayerCash(player.clone()),
                    to: Account::PlayerStakes(player.clone()),
                    amount_minor: 1000,
                }],
                bet_id: Some(BetId::new("b-1").unwrap()),
                provider_ref: None,
                decision: None,
                idem: None,
            }),
            EdgeEvent::BetPlaced(BetPlaced {
                each_way: false,
                bet_id: BetId::new("b-1").unwrap(),
                player_id: player.clone(),
                currency: Currency::GBP,
                stake_minor: 1000,
                potential_payout_minor: 3000,
                legs: vec![BetLeg {
                    selection_id: SelectionId::new("e-1/1x2/home").unwrap(),
                    market_id: MarketId::new("e-1/1x2").unwrap(),
                    event_id: EventId::new("e-1").unwrap(),
                    kind: MarketKind::MatchResult,
                    outcome: Outcome::Home,
                    price: Price::parse("3.0").unwrap(),
                }],
                idem: idem("bet"),
            }),
        ];
        for e in &events {
            s.apply(e, at).unwrap();
        }
        Edge {
            s,
            down: 0,
            node,
            player,
        }
    }

    /// Decide and apply one downstream record; returns the logged events.
    fn down(&mut self, event: HubEvent) -> Vec<EdgeEvent> {
        self.down += 1;
        let d = DownRef {
            down_seq: Seq(self.down),
            hub_record_sha256: format!("{:064x}", self.down),
            hub_timestamp_ms: 10,
        };
        let rules = rules();
        let ctx = DecideCtx {
            now: UnixMillis(10),
            rules: &rules,
            gate: &crate::edge::NodeGateConfig::default(),
            identity_sha256: None,
            date_of_birth: None,
        };
        let decided = self
            .s
            .decide(Command::ApplyDown { down: d, event }, &ctx)
            .unwrap();
        for e in &decided.events {
            self.s.apply(e, UnixMillis(10)).unwrap();
        }
        assert_eq!(self.s.ledger().sum(), 0, "ledger sums to zero");
        decided.events
    }

    fn settle(&self, version: u32, result: LegResult, payout: i64) -> HubEvent {
        HubEvent::Settlement(HubSettlement {
            bet_id: BetId::new("b-1").unwrap(),
            node_id: self.node.clone(),
            player_id: self.player.clone(),
            result_version: version,
            leg_results: vec![result],
            currency: Currency::GBP,
            stake_minor: 1000,
            payout_minor: payout,
            leg_factors: Vec::new(),
        })
    }

    fn reverse(&self, version: u32, payout: i64) -> HubEvent {
        HubEvent::Reversal(HubSettlementReversal {
            bet_id: BetId::new("b-1").unwrap(),
            node_id: self.node.clone(),
            player_id: self.player.clone(),
            reversed_result_version: version,
            reversed_down_seq: 1,
            currency: Currency::GBP,
            stake_minor: 1000,
            payout_minor: payout,
            reason: "correction".into(),
        })
    }

    fn balance(&self, a: Account) -> i64 {
        self.s.ledger().balance(&a)
    }
    fn cash(&self) -> i64 {
        self.balance(Account::PlayerCash(self.player.clone()))
    }
    fn debt(&self) -> i64 {
        -self.balance(Account::PlayerDebt(self.player.clone()))
    }
    fn withdraw(&self, minor: i64) -> Result<(), CommandError> {
        let rules = rules();
        let ctx = DecideCtx {
            now: UnixMillis(10),
            rules: &rules,
            gate: &crate::edge::NodeGateConfig::default(),
            identity_sha256: None,
            date_of_birth: None,
        };
        self.s
            .decide(
                Command::Withdraw {
                    player_id: self.player.clone(),
                    amount: Money::new(minor, Currency::GBP),
                    provider_ref: "w-1".into(),
                    idem: idem("wd"),
                },
                &ctx,
            )
            .map(|_| ())
    }
}

#[test]
fn correction_moves_exactly_the_difference_once() {
    let mut e = Edge::new(5000);
    e.down(e.settle(1, LegResult::Win, 3000));
    assert_eq!(e.cash(), 8000);
    // Corrected to a loss: reversal (takes the £30 back, stake held again), then version 2.
    let ev = e.down(e.reverse(1, 3000));
    assert!(
        matches!(&ev[0], EdgeEvent::BetSettlementReversed(r) if r.from_cash_minor == 3000 && r.to_debt_minor == 0)
    );
    assert_eq!(
        e.s.bets[&BetId::new("b-1").unwrap()].status,
        BetStatus::Open
    );
    assert_eq!(
        (e.cash(), e.balance(Account::PlayerStakes(e.player.clone()))),
        (5000, 1000)
    );
    e.down(e.settle(2, LegResult::Lose, 0));
    assert_eq!(e.cash(), 5000);
    assert_eq!(e.balance(Account::PlayerStakes(e.player.clone())), 0);
    // The same reversal again (a replay, or a stray) is skipped: no money moves.
    let before = e.s.ledger().clone();
    let ev = e.down(e.reverse(1, 3000));
    assert!(matches!(&ev[..], [EdgeEvent::DownSkipped(_)]));
    assert_eq!(e.s.ledger(), &before);
    // A settlement at the old version for a bet settled at v2 is skipped too.
    let ev = e.down(e.settle(1, LegResult::Win, 3000));
    assert!(matches!(&ev[..], [EdgeEvent::DownSkipped(_)]));
    assert_eq!(e.s.ledger(), &before);
}

#[test]
fn correction_beyond_the_cash_books_a_debt_and_blocks_withdrawals() {
    let mut e = Edge::new(0);
    e.down(e.settle(1, LegResult::Win, 3000));
    assert_eq!(e.cash(), 3000);
    // The player withdraws £25 of the winnings before the correction arrives.
    let rules = rules();
    let ctx = DecideCtx {
        now: UnixMillis(10),
        rules: &rules,
        gate: &crate::edge::NodeGateConfig::default(),
        identity_sha256: None,
        date_of_birth: None,
    };
    let w =
        e.s.decide(
            Command::Withdraw {
                player_id: e.player.clone(),
                amount: Money::new(2500, Currency::GBP),
                provider_ref: "w-0".into(),
                idem: idem("wd0"),
            },
            &ctx,
        )
        .unwrap();
    for ev in &w.events {
        e.s.apply(ev, UnixMillis(10)).unwrap();
    }
    assert_eq!(e.cash(), 500);
    // Reversal of £30 with £5 cash: £5 from cash, £25 booked as debt; never negative.
    let ev = e.down(e.reverse(1, 3000));
    assert!(
        matches!(&ev[0], EdgeEvent::BetSettlementReversed(r) if r.from_cash_minor == 500 && r.to_debt_minor == 2500)
    );
    assert_eq!((e.cash(), e.debt()), (0, 2500));
    assert_eq!(e.s.player_view(&e.player).unwrap().debt_minor, 2500);
    assert!(matches!(
        e.withdraw(1),
        Err(CommandError::DebtOutstanding { debt_minor: 2500 })
    ));
    // Resettled as a half win at version 2 (£10 × (1 + 3)/2 = £20): repays £20 of the debt.
    e.down(e.settle(2, LegResult::HalfWin, 2000));
    assert_eq!((e.cash(), e.debt()), (0, 500));
    assert!(matches!(
        e.withdraw(1),
        Err(CommandError::DebtOutstanding { .. })
    ));
    // Corrected once more, to a full win at version 3 (£30): reversal of £20 with no cash
    // books £20 more debt (£25), then £30 repays it and leaves £5 cash.
    e.down(e.reverse(2, 2000));
    assert_eq!((e.cash(), e.debt()), (0, 2500));
    e.down(e.settle(3, LegResult::Win, 3000));
    assert_eq!((e.cash(), e.debt()), (500, 0));
    assert!(e.withdraw(500).is_ok());
}
