//! Odds book tests: the UOF recovery flow, bet_stop, ordering, impossible prices, producer
//! silence, lifecycle; Betfair non-runners and settlement on the real race files; and a
//! property test that no sequence of messages leaves a market open unsafely.

use super::*;
use crate::ids::Jurisdiction;
use crate::pricing::ladder::is_on_ladder;
use crate::pricing::margin::MarginMethod;
use crate::pricing::policy::MarginTarget;
use proptest::prelude::*;

fn config() -> BookConfig {
    BookConfig {
        recovery_retry_ms: None,
        alive_timeout_ms: 20_000,
        uof_products: vec![1, 3],
        policy: PricingPolicy {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            default: MarginTarget {
                margin_bp: 500,
                method: MarginMethod::Multiplicative,
            },
            by_class: Default::default(),
            max_price_milli: 500_000,
        },
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/../fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn odds_change(product: u32, ts: i64, odds: [&str; 3]) -> Vec<u8> {
    format!(
        r#"<odds_change product="{product}" event_id="sr:match:42" timestamp="{ts}"><odds><market id="1" status="1"><outcome id="1" odds="{}" active="1"/><outcome id="2" odds="{}" active="1"/><outcome id="3" odds="{}" active="1"/></market></odds></odds_change>"#,
        odds[0], odds[1], odds[2]
    )
    .into_bytes()
}
fn snapshot_complete(product: u32, ts: i64) -> Vec<u8> {
    format!(r#"<snapshot_complete product="{product}" timestamp="{ts}" request_id="1"/>"#)
        .into_bytes()
}
fn alive(product: u32, ts: i64, subscribed: u8) -> Vec<u8> {
    format!(r#"<alive product="{product}" timestamp="{ts}" subscribed="{subscribed}"/>"#)
        .into_bytes()
}
fn bet_stop(product: u32, ts: i64) -> Vec<u8> {
    format!(
        r#"<bet_stop product="{product}" event_id="sr:match:42" timestamp="{ts}" groups="all"/>"#
    )
    .into_bytes()
}

fn mid() -> MarketId {
    MarketId::new("sr:match:42:1x2").unwrap()
}
fn t(ms: i64) -> UnixMillis {
    UnixMillis(ms)
}

#[test]
fn recovery_flow_then_open_with_laddered_prices() {
    let mut b = OddsBook::new(config());
    // Real schema sample: product 3, market 1 with probabilities.
    let r = b
        .ingest_uof(&fixture("uof/schema-samples/odds_change.xml"), t(0))
        .unwrap();
    assert_eq!(r.changes.len(), 1);
    assert_eq!(
        r.changes[0].market.status,
        MarketStatus::Suspended,
        "producer not recovered yet"
    );
    assert_eq!(r.changes[0].reason, ChangeReason::ProducerLost);
    // Recovery completes: the market opens, priced from the provider's probabilities.
    let r = b
        .ingest_uof(&snapshot_complete(3, 1653576646191), t(1))
        .unwrap();
    assert!(r.producers[0].up);
    let c = &r.changes[0];
    assert_eq!(c.reason, ChangeReason::RecoveryComplete);
    assert_eq!(c.market.status, MarketStatus::Open);
    assert!(c.market.in_play);
    let prices: Vec<Price> = c
        .market
        .selections
        .iter()
        .map(|s| s.price.unwrap())
        .collect();
    assert!(
        prices
            .iter()
            .all(|p| is_on_ladder(p.milli()) && p.milli() > 1000)
    );
    let book: f64 = prices.iter().map(|p| 1000.0 / p.milli() as f64).sum();
    assert!(book >= 1.05, "{book}");
    assert_eq!(c.odds_seq, 2);
}

#[test]
fn bet_stop_suspends_every_market_of_the_event_until_new_odds() {
    let mut b = OddsBook::new(config());
    b.ingest_uof(&snapshot_complete(1, 10), t(0)).unwrap();
    let r = b
        .ingest_uof(&odds_change(1, 100, ["2.1", "3.4", "3.6"]), t(1))
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Open);
    // Also a BTTS market on the same event.
    let btts = br#"<odds_change product="1" event_id="sr:match:42" timestamp="101"><odds><market id="29"><outcome id="74" odds="1.8"/><outcome id="76" odds="2.0"/></market></odds></odds_change>"#;
    b.ingest_uof(btts, t(2)).unwrap();
    let r = b.ingest_uof(&bet_stop(1, 102), t(3)).unwrap();
    assert_eq!(r.changes.len(), 2);
    assert!(
        r.changes.iter().all(
            |c| c.market.status == MarketStatus::Suspended && c.reason == ChangeReason::BetStop
        )
    );
    // The real schema sample's bet_stop also parses and applies (nothing left to suspend).
    let r = b
        .ingest_uof(&fixture("uof/schema-samples/bet_stop.xml"), t(4))
        .unwrap();
    assert!(r.changes.is_empty());
    let r = b
        .ingest_uof(&odds_change(1, 1653576646191, ["2.0", "3.4", "3.8"]), t(5))
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Open);
}

#[test]
fn out_of_order_duplicate_and_impossible_prices_are_skipped_and_counted() {
    let mut b = OddsBook::new(config());
    b.ingest_uof(&snapshot_complete(1, 10), t(0)).unwrap();
    let m = odds_change(1, 100, ["2.1", "3.4", "3.6"]);
    b.ingest_uof(&m, t(1)).unwrap();
    let before = b.market(&mid()).unwrap().selections[0].price;
    assert_eq!(b.ingest_uof(&m, t(2)), Err(Skip::Duplicate));
    assert!(matches!(
        b.ingest_uof(&odds_change(1, 99, ["5.0", "3.4", "1.5"]), t(3)),
        Err(Skip::OutOfOrder { .. })
    ));
    assert_eq!(
        b.market(&mid()).unwrap().selections[0].price,
        before,
        "old price kept"
    );
    // A price of 1.0 shuts the market; it never opens with it.
    let r = b
        .ingest_uof(&odds_change(1, 200, ["1.0", "3.4", "3.6"]), t(4))
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Suspended);
    assert_eq!(r.changes[0].reason, ChangeReason::ImpossiblePrice);
    assert!(
        r.changes[0]
            .market
            .selections
            .iter()
            .all(|s| s.price.is_none())
    );
    assert!(b.ingest_uof(b"<odds_change", t(5)).is_err());
    assert!(matches!(
        b.ingest_uof(&odds_change(7, 300, ["2", "3", "4"]), t(6)),
        Err(Skip::UnknownProducer(_))
    ));
    // The real capture uses product 2 and market ids the book does not price.
    let mut cfg = config();
    cfg.uof_products.push(2);
    let mut b2 = OddsBook::new(cfg);
    assert_eq!(
        b2.ingest_uof(&fixture("uof/go-uof-sdk/odds_change-0.xml"), t(0)),
        Err(Skip::UnknownMarket)
    );
    assert_eq!(b2.stats.unknown_market, 9);
    let s = &b.stats;
    assert_eq!(
        (
            s.duplicate,
            s.out_of_order,
            s.impossible_price,
            s.malformed,
            s.unknown_producer
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn silent_or_lost_producer_suspends_and_only_recovery_reopens() {
    let mut b = OddsBook::new(config());
    b.ingest_uof(&snapshot_complete(1, 10), t(0)).unwrap();
    b.ingest_uof(&odds_change(1, 100, ["2.1", "3.4", "3.6"]), t(0))
        .unwrap();
    assert!(b.tick(t(20_000)).changes.is_empty(), "within the bound");
    let r = b.tick(t(20_001));
    assert_eq!(r.changes[0].reason, ChangeReason::ProducerSilent);
    assert_eq!(r.changes[0].market.status, MarketStatus::Suspended);
    // Alive again is not enough; fresh odds are not enough either.
    assert!(
        b.ingest_uof(&alive(1, 200, 1), t(21_000))
            .unwrap()
            .changes
            .is_empty()
    );
    let r = b
        .ingest_uof(&odds_change(1, 300, ["2.2", "3.4", "3.5"]), t(21_001))
        .unwrap();
    assert!(
        r.changes
            .iter()
            .all(|c| c.market.status == MarketStatus::Suspended)
    );
    let r = b.ingest_uof(&snapshot_complete(1, 400), t(21_002)).unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Open);
    // Lost subscription.
    let r = b.ingest_uof(&alive(1, 500, 0), t(21_003)).unwrap();
    assert_eq!(r.changes[0].reason, ChangeReason::ProducerLost);
    assert!(!b.producer_up("uof:1"));
}

fn snapshot_complete_for(product: u32, ts: i64, request_id: u64) -> Vec<u8> {
    format!(
        r#"<snapshot_complete product="{product}" timestamp="{ts}" request_id="{request_id}"/>"#
    )
    .into_bytes()
}

#[test]
fn the_node_requests_recovery_and_only_its_own_snapshot_reopens() {
    let mut b = OddsBook::new(BookConfig {
        recovery_retry_ms: Some(60_000),
        ..config()
    });
    // Start: both producers are down; the first tick asks for full recoveries, ids ≥ now.
    let r = b.tick(t(1_000_000));
    assert_eq!(
        r.recovery_requests,
        vec![
            RecoveryRequest {
                product: 1,
                request_id: 1_000_000,
                after: None
            },
            RecoveryRequest {
                product: 3,
                request_id: 1_000_001,
                after: None
            },
        ]
    );
    // Outstanding requests are not repeated before the retry interval.
    assert!(b.tick(t(1_059_999)).recovery_requests.is_empty());
    // Someone else's snapshot_complete (or a stale one) does not bring the producer up.
    let e = b
        .ingest_uof(&snapshot_complete_for(1, 10, 999), t(1_001_000))
        .unwrap_err();
    assert_eq!(
        e,
        Skip::UnrequestedRecovery {
            got: Some(999),
            want: Some(1_000_000)
        }
    );
    assert!(!b.producer_up("uof:1"));
    assert_eq!(b.stats.unrequested_recovery, 1);
    b.ingest_uof(&snapshot_complete_for(1, 20, 1_000_000), t(1_002_000))
        .unwrap();
    assert!(b.producer_up("uof:1"));
    // Product 3 never answered: asked again after the interval, with a new id (product 1
    // stays up: it reports alive within its bound).
    b.ingest_uof(&alive(1, 4_000, 1), t(1_050_000)).unwrap();
    let r = b.tick(t(1_060_001));
    assert_eq!(r.recovery_requests.len(), 1);
    assert_eq!(r.recovery_requests[0].product, 3);
    assert_eq!(r.recovery_requests[0].request_id, 1_060_001);
    // Product 1 is up and reports alive; then loses its subscription: recovery resumes from
    // the last good alive, with a fresh request, and the old request id no longer counts.
    b.ingest_uof(&odds_change(1, 100, ["2.1", "3.4", "3.6"]), t(1_070_000))
        .unwrap();
    b.ingest_uof(&alive(1, 5_000, 1), t(1_080_000)).unwrap();
    let r = b.ingest_uof(&alive(1, 6_000, 0), t(1_090_000)).unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Suspended);
    let r = b.tick(t(1_090_500));
    assert_eq!(
        r.recovery_requests,
        vec![RecoveryRequest {
            product: 1,
            request_id: 1_090_500,
            after: Some(t(5_000))
        }]
    );
    assert!(
        b.ingest_uof(&snapshot_complete_for(1, 30, 1_000_000), t(1_091_000))
            .is_err()
    );
    let r = b
        .ingest_uof(&snapshot_complete_for(1, 40, 1_090_500), t(1_092_000))
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Open);
    assert_eq!(r.changes[0].reason, ChangeReason::RecoveryComplete);
    // A gap longer than the provider keeps is recovered in full.
    b.ingest_uof(&alive(1, 7_000, 0), t(1_093_000)).unwrap();
    let r = b.tick(t(7_000 + RECOVERY_AFTER_MAX_MS + 1));
    assert_eq!(r.recovery_requests[0].after, None);
}

#[test]
fn lifecycle_settle_rollback_cancel() {
    let mut b = OddsBook::new(config());
    b.ingest_uof(&snapshot_complete(1, 10), t(0)).unwrap();
    b.ingest_uof(&odds_change(1, 100, ["2.1", "3.4", "3.6"]), t(0))
        .unwrap();
    let r = b
        .ingest_uof(&fixture("uof/schema-samples/bet_settlement.xml"), t(1))
        .unwrap();
    let statuses: Vec<_> = r.changes.iter().map(|c| c.market.status).collect();
    assert_eq!(statuses, vec![MarketStatus::Settled]);
    assert_eq!(r.changes[0].reason, ChangeReason::Settled);
    let r = b
        .ingest_uof(
            &fixture("uof/schema-samples/rollback_bet_settlement.xml"),
            t(2),
        )
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Closed);
    assert_eq!(r.changes[0].reason, ChangeReason::RollbackSettlement);
    // Betting has ended: new odds never reopen it.
    let r = b
        .ingest_uof(&odds_change(1, 1653576646999, ["2.1", "3.4", "3.6"]), t(3))
        .unwrap();
    assert!(r.changes.is_empty());
    let r = b
        .ingest_uof(&fixture("uof/schema-samples/bet_cancel.xml"), t(4))
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Cancelled);
    let r = b
        .ingest_uof(&fixture("uof/schema-samples/rollback_bet_cancel.xml"), t(5))
        .unwrap();
    assert_eq!(r.changes[0].reason, ChangeReason::RollbackCancel);
    // fixture_change is ordered with the event's other messages: this one is older.
    let fc = fixture("uof/schema-samples/fixture_change.xml");
    assert!(matches!(
        b.ingest_uof(&fc, t(6)),
        Err(Skip::OutOfOrder { .. })
    ));
    assert!(OddsBook::new(config()).ingest_uof(&fc, t(6)).is_ok());
}

#[test]
fn betfair_hamilton_non_runners_and_settlement() {
    let mut b = OddsBook::new(config());
    let file = fixture("betfair/betfairlightweight/BASIC-1.132153978");
    let mut all = Vec::new();
    for (i, line) in file
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let r = b
            .ingest_betfair(line, t(i as i64), true)
            .unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        all.extend(r.changes);
    }
    let non_runners: Vec<_> = all
        .iter()
        .filter_map(|c| match c.reason {
            ChangeReason::NonRunner {
                runner_id,
                adjustment_factor_bp,
            } => Some((runner_id, adjustment_factor_bp)),
            _ => None,
        })
        .collect();
    assert_eq!(
        non_runners,
        vec![(11198538, Some(714)), (9606433, Some(555))]
    );
    assert!(all.iter().any(|c| c.market.status == MarketStatus::Open));
    // Every open state had only valid prices and the right runner count.
    for c in all.iter().filter(|c| c.market.status == MarketStatus::Open) {
        assert!(
            c.market
                .selections
                .iter()
                .all(|s| s.price.is_some_and(|p| p.milli() > 1000))
        );
    }
    let last = all.last().unwrap();
    assert_eq!(last.market.status, MarketStatus::Settled);
    // "1m Hcap" with 14 declared runners: standard each-way terms 3 places at 1/4.
    let MarketKind::RaceWin { each_way: Some(t) } = last.market.kind else {
        panic!("{:?}", last.market.kind)
    };
    assert_eq!((t.places, t.fraction_num, t.fraction_den), (3, 1, 4));
    assert_eq!(last.market.selections.len(), 12);
    assert!(
        all.windows(2).all(|w| w[1].odds_seq == w[0].odds_seq + 1),
        "gap-free sequence"
    );
}

#[test]
fn betfair_place_market_has_two_winners() {
    let mut b = OddsBook::new(config());
    let file = fixture("betfair/flumine/1.197931751");
    let mut opened = None;
    for (i, line) in file
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let r = b.ingest_betfair(line, t(i as i64), true).unwrap();
        if opened.is_none() {
            opened = r
                .changes
                .into_iter()
                .find(|c| c.market.status == MarketStatus::Open);
        }
    }
    let o = opened.expect("place market opened");
    assert_eq!(o.market.kind, MarketKind::RacePlace { places: 2 });
    let book: f64 = o
        .market
        .selections
        .iter()
        .map(|s| 1000.0 / s.price.unwrap().milli() as f64)
        .sum();
    assert!(book >= 2.0 * 1.05 - 1e-9, "{book}");
}

#[test]
fn betfair_live_stream_needs_an_image() {
    let mut b = OddsBook::new(config());
    // A delta before any image: the market is unknown, nothing opens.
    assert_eq!(
        b.ingest_betfair(
            &fixture("betfair/betfairlightweight/streaming_mcm_update.json"),
            t(0),
            false
        ),
        Err(Skip::UnknownMarket)
    );
    let r = b
        .ingest_betfair(
            &fixture("betfair/betfairlightweight/streaming_mcm_SUB_IMAGE.json"),
            t(1),
            false,
        )
        .unwrap();
    assert!(r.producers[0].up);
    let open = r.changes.last().unwrap();
    assert_eq!(open.market.status, MarketStatus::Open);
    assert_eq!(open.market.selections.len(), 7);
    let r = b
        .ingest_betfair(
            &fixture("betfair/betfairlightweight/streaming_mcm_update.json"),
            t(2),
            false,
        )
        .unwrap();
    // 11527192's best back moved 4.6 → 4.7: a new price, still open.
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].market.status, MarketStatus::Open);
    let closed = br#"{"op":"status","id":2,"statusCode":"SUCCESS","connectionClosed":true}"#;
    let r = b.ingest_betfair(closed, t(3), false).unwrap();
    assert!(!b.producer_up("betfair"));
    assert_eq!(r.changes[0].market.status, MarketStatus::Suspended);
}

#[test]
fn restore_keeps_sequence_and_starts_suspended() {
    let mut b = OddsBook::new(config());
    b.ingest_uof(&snapshot_complete(1, 10), t(0)).unwrap();
    let r = b
        .ingest_uof(&odds_change(1, 100, ["2.1", "3.4", "3.6"]), t(0))
        .unwrap();
    let mut b2 = OddsBook::new(config());
    for c in &r.changes {
        b2.restore(c);
    }
    assert_eq!(b2.next_seq(), b.next_seq());
    assert_eq!(b2.market(&mid()).unwrap().status, MarketStatus::Suspended);
    let r = b2.ingest_uof(&snapshot_complete(1, 20), t(1)).unwrap();
    assert!(r.changes.is_empty(), "restored market waits for fresh odds");
    let r = b2
        .ingest_uof(&odds_change(1, 200, ["2.1", "3.4", "3.6"]), t(2))
        .unwrap();
    assert_eq!(r.changes[0].market.status, MarketStatus::Open);
}

#[derive(Debug, Clone)]
enum Op {
    Odds(i64, [u32; 3]),
    BetStop,
    Alive(bool),
    Snapshot,
    Tick(i64),
    Garbage(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (-50i64..100, [0u32..5000, 0u32..5000, 0u32..5000]).prop_map(|(d, p)| Op::Odds(d, p)),
        1 => Just(Op::BetStop),
        1 => any::<bool>().prop_map(Op::Alive),
        1 => Just(Op::Snapshot),
        1 => (0i64..40_000).prop_map(Op::Tick),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Garbage),
    ]
}

proptest! {
    /// Whatever arrives, an open market has an up producer, was not bet-stopped since its last
    /// odds, and offers only laddered prices > 1.0; the stream sequence is gap-free.
    #[test]
    fn never_open_unsafely(ops in proptest::collection::vec(op(), 1..60)) {
        let mut b = OddsBook::new(config());
        let (mut ts, mut now) = (1000i64, 0i64);
        let mut expected_seq = 1;
        for o in ops {
            now += 10;
            let r = match o {
                Op::Odds(d, p) => {
                    ts += d;
                    let s: Vec<String> = p.iter().map(|m| format!("{}.{:03}", m / 1000, m % 1000)).collect();
                    b.ingest_uof(&odds_change(1, ts, [&s[0], &s[1], &s[2]]), t(now))
                }
                Op::BetStop => { ts += 1; b.ingest_uof(&bet_stop(1, ts), t(now)) }
                Op::Alive(sub) => b.ingest_uof(&alive(1, ts, u8::from(sub)), t(now)),
                Op::Snapshot => b.ingest_uof(&snapshot_complete(1, ts), t(now)),
                Op::Tick(d) => { now += d; Ok(b.tick(t(now))) }
                Op::Garbage(g) => b.ingest_uof(&g, t(now)),
            };
            if let Ok(r) = r {
                for c in &r.changes {
                    prop_assert_eq!(c.odds_seq, expected_seq);
                    expected_seq += 1;
                    if c.market.status == MarketStatus::Open {
                        prop_assert!(b.producer_up("uof:1") || c.reason != ChangeReason::FeedOdds);
                        for s in &c.market.selections {
                            let p = s.price.expect("open market prices every selection");
                            prop_assert!(p.milli() > 1000 && is_on_ladder(p.milli()));
                        }
                    }
                }
            }
            if let Some(m) = b.market(&mid())
                && m.status == MarketStatus::Open
            {
                prop_assert!(b.producer_up("uof:1"));
                prop_assert!(m.selections.iter().all(|s| s.price.is_some_and(|p| p.milli() > 1000)));
            }
        }
    }
}

#[test]
fn bet_stop_groups_suspend_only_the_named_groups() {
    let mut b = OddsBook::new(config());
    b.ingest_uof(&snapshot_complete(1, 10), t(0)).unwrap();
    b.ingest_uof(&odds_change(1, 100, ["2.1", "3.4", "3.6"]), t(1))
        .unwrap();
    // BTTS: its groups are not in the descriptions the book holds, so any bet_stop stops it.
    let btts = br#"<odds_change product="1" event_id="sr:match:42" timestamp="101"><odds><market id="29"><outcome id="74" odds="1.8"/><outcome id="76" odds="2.0"/></market></odds></odds_change>"#;
    b.ingest_uof(btts, t(2)).unwrap();
    let stop = |ts: i64, groups: &str| {
        format!(
            r#"<bet_stop product="1" event_id="sr:match:42" timestamp="{ts}" groups="{groups}"/>"#
        )
        .into_bytes()
    };
    // A corners stop leaves the 1X2 (groups all|score|regular_play) open.
    let r = b.ingest_uof(&stop(102, "corners|10_min"), t(3)).unwrap();
    assert_eq!(r.changes.len(), 1, "{:?}", r.changes);
    assert_eq!(r.changes[0].market.market_id.as_str(), "sr:match:42:btts");
    assert_eq!(r.changes[0].market.status, MarketStatus::Suspended);
    assert_eq!(b.market(&mid()).unwrap().status, MarketStatus::Open);
    // A stop naming one of the 1X2's groups suspends it.
    let r = b.ingest_uof(&stop(103, "penalties|score"), t(4)).unwrap();
    assert_eq!(r.changes.len(), 1);
    assert_eq!(r.changes[0].market.market_id, mid());
    assert_eq!(r.changes[0].reason, ChangeReason::BetStop);
    assert_eq!(b.market(&mid()).unwrap().status, MarketStatus::Suspended);
    // Fresh odds reopen it; the real schema sample (groups="all") stops it again.
    b.ingest_uof(&odds_change(1, 104, ["2.0", "3.4", "3.8"]), t(5))
        .unwrap();
    assert_eq!(b.market(&mid()).unwrap().status, MarketStatus::Open);
    let sample = String::from_utf8(fixture("uof/schema-samples/bet_stop.xml"))
        .unwrap()
        .replace("sr:match:16807109", "sr:match:42");
    assert!(sample.contains("groups=\"all\""));
    let r = b.ingest_uof(sample.as_bytes(), t(6)).unwrap();
    assert!(r.changes.iter().any(|c| c.market.market_id == mid()));
    assert_eq!(b.market(&mid()).unwrap().status, MarketStatus::Suspended);
}

#[test]
fn real_virtual_race_capture_maps_win_and_place() {
    let mut cfg = config();
    cfg.uof_products.push(11);
    let mut b = OddsBook::new(cfg);
    let raw = fixture("uof/go-uof-sdk/odds_change-vhc.xml");
    let r = b.ingest_uof(&raw, t(0)).unwrap();
    // 866 (winner) and 868 (first 3) are priced; the forecast/tricast markets 870-873 are
    // skipped as unknown.
    assert_eq!(r.changes.len(), 2, "{:?}", r.market_skips);
    assert_eq!(r.market_skips.len(), 4);
    let win = MarketId::new("vhc:stage:18361597:win").unwrap();
    let place = MarketId::new("vhc:stage:18361597:place:3").unwrap();
    let w = b.market(&win).unwrap();
    assert_eq!(w.kind, MarketKind::RaceWin { each_way: None });
    assert_eq!(w.selections.len(), 10);
    assert!(
        w.selections
            .iter()
            .any(|s| s.outcome == Outcome::Runner { id: 94163 })
    );
    // The capture has every market inactive (the race has ended): nothing opens.
    assert_eq!(w.status, MarketStatus::Suspended);
    assert_eq!(
        b.market(&place).unwrap().kind,
        MarketKind::RacePlace { places: 3 }
    );

    // The same capture with the markets active, after recovery: both open, the win book
    // carries the margin on one winner and the place book on three.
    let mut b = OddsBook::new({
        let mut c = config();
        c.uof_products.push(11);
        c
    });
    b.ingest_uof(&snapshot_complete(11, 1), t(0)).unwrap();
    let live = String::from_utf8(raw)
        .unwrap()
        .replace("status=\"0\"", "status=\"1\"")
        .replace("active=\"0\"", "active=\"1\"");
    b.ingest_uof(live.as_bytes(), t(1)).unwrap();
    for (id, winners) in [(&win, 1.0), (&place, 3.0)] {
        let m = b.market(id).unwrap();
        assert_eq!(m.status, MarketStatus::Open, "{id}");
        let book: f64 = m
            .selections
            .iter()
            .map(|s| 1000.0 / s.price.unwrap().milli() as f64)
            .sum();
        assert!(
            book > winners * 1.04 && book < winners * 1.3,
            "{id}: {book}"
        );
    }
    // An outcome that is not a runner id makes the market unknown rather than guessed.
    let odd = br#"<odds_change product="11" event_id="vhc:stage:1" timestamp="5"><odds><market id="866"><outcome id="sr:competitor:x1" odds="2.0"/><outcome id="sr:competitor:2" odds="2.0"/></market></odds></odds_change>"#;
    let r = b.ingest_uof(odd, t(2)).unwrap();
    assert!(r.changes.is_empty());
    assert!(r.market_skips[0].contains("unknown outcome"), "{r:?}");
}
