//! Test fixtures shared by the unit tests: a hub over a temp directory and an edge node that
//! writes real signed records with real `EdgeEvent` payloads.

use crate::config::{NodeConfig, SegmentPolicy};
use crate::db::Db;
use crate::store::{HubState, now_ms};
use outpost_core::edge::events::{BetLeg, BetPlaced, EdgeEvent, Genesis, IdemTag};
use outpost_core::ids::{
    BetId, EventId, IdemKey, Jurisdiction, LogId, MarketId, NodeId, PlayerId, SelectionId,
};
use outpost_core::log::{ChainHead, ChainWriter, Frame, NodeKey, RecordBody};
use outpost_core::market::{EachWayTerms, Market, MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;
use outpost_core::time::UnixMillis;
use std::collections::BTreeMap;

pub const HUB_SEED: [u8; 32] = [1; 32];
pub const NODE_SEED: [u8; 32] = [2; 32];

pub fn node_id() -> NodeId {
    NodeId::new("gb-1").unwrap()
}
pub fn gb() -> Jurisdiction {
    Jurisdiction::new("GB").unwrap()
}
pub fn node_key() -> NodeKey {
    NodeKey::from_seed(NODE_SEED)
}
pub fn event(s: &str) -> EventId {
    EventId::new(s).unwrap()
}

pub struct TestHub {
    pub dir: tempfile::TempDir,
    pub state: HubState,
}

pub fn hub(policy: SegmentPolicy) -> TestHub {
    let dir = tempfile::tempdir().unwrap();
    let state = open_hub(dir.path(), policy);
    TestHub { dir, state }
}

pub fn open_hub(dir: &std::path::Path, policy: SegmentPolicy) -> HubState {
    let db = Db::open(&dir.join("hub.sqlite")).unwrap();
    let nodes = vec![NodeConfig {
        id: node_id(),
        jurisdiction: gb(),
        public_key: node_key().public(),
    }];
    HubState::new(
        db,
        "test-hub".into(),
        NodeKey::from_seed(HUB_SEED),
        nodes,
        BTreeMap::from([(gb(), 5)]),
        policy,
    )
    .unwrap()
}

/// Every commit is cut into a segment at once.
pub fn eager() -> SegmentPolicy {
    SegmentPolicy {
        max_records: 1000,
        max_age_ms: 0,
    }
}

/// An edge node's log writer.
pub struct Edge {
    pub w: ChainWriter,
    pub key: NodeKey,
}

impl Edge {
    pub fn new() -> Edge {
        Edge {
            w: ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY),
            key: node_key(),
        }
    }

    /// Append events as one commit group (last one sealed), as the verifier releases them.
    pub fn group(&mut self, events: &[EdgeEvent]) -> Vec<(Frame, RecordBody)> {
        let n = events.len();
        events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut f = self.w.append(e.kind(), now_ms(), e.to_payload());
                if i + 1 == n {
                    ChainWriter::seal(&mut f, &self.key);
                }
                let b = f.parse_body().unwrap();
                (f, b)
            })
            .collect()
    }
}

pub fn genesis() -> EdgeEvent {
    EdgeEvent::Genesis(Genesis {
        node_id: node_id(),
        jurisdiction: gb(),
        currency: Currency::GBP,
        public_key: node_key().public().to_hex(),
        software: "test".into(),
    })
}

pub fn leg(ev: &str, outcome: Outcome, price: &str) -> BetLeg {
    let event_id = event(ev);
    let market_id = MarketId::new(format!("{ev}/1x2")).unwrap();
    BetLeg {
        selection_id: SelectionId::new(format!("{market_id}/{}", outcome.slug())).unwrap(),
        market_id,
        event_id,
        kind: MarketKind::MatchResult,
        outcome,
        price: Price::parse(price).unwrap(),
    }
}

pub fn bet(id: &str, stake_minor: i64, legs: Vec<BetLeg>) -> EdgeEvent {
    EdgeEvent::BetPlaced(BetPlaced {
        each_way: false,
        bet_id: BetId::new(id).unwrap(),
        player_id: PlayerId::new("p-1").unwrap(),
        currency: Currency::GBP,
        stake_minor,
        potential_payout_minor: stake_minor * 2,
        legs,
        idem: IdemTag {
            key: IdemKey::new(format!("k-{id}")).unwrap(),
            request_sha256: "00".repeat(32),
        },
    })
}

pub fn now() -> UnixMillis {
    now_ms()
}

/// Make `score` the final result of `event` the way a feed does: two sources agree
/// (`source` and `{source}-2`). Returns the second (finalising) receipt.
pub fn final_result(
    state: &HubState,
    event: &EventId,
    score: outpost_core::settle::FinalScore,
    source: &str,
    now: UnixMillis,
) -> Result<crate::settlement::ResultReceipt, crate::settlement::ResultError> {
    state.submit_result_blocking(event, score, source, now)?;
    state.submit_result_blocking(event, score, &format!("{source}-2"), now)
}

/// A leg on runner `runner` of race `ev`'s win market (each-way when `terms` is set).
pub fn race_leg(ev: &str, runner: u64, terms: Option<EachWayTerms>) -> BetLeg {
    let event_id = event(ev);
    let kind = MarketKind::RaceWin { each_way: terms };
    let market_id = Market::market_id_for(&event_id, &kind);
    BetLeg {
        selection_id: Market::selection_id_for(&market_id, Outcome::Runner { id: runner }),
        market_id,
        event_id,
        kind,
        outcome: Outcome::Runner { id: runner },
        price: Price::parse("5.0").unwrap(),
    }
}
