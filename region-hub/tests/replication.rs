//! End to end over real QUIC + mutual TLS: an in-memory edge log replicates to a started hub,
//! a result settles its bet, the settlement flows back down and is verified and acked by the
//! edge, and the audit trail receives verifiable segments of both chains.

mod common;
use common::{eventually, link, start_hub};
use outpost_core::edge::events::{BetLeg, BetPlaced, EdgeEvent, IdemTag};
use outpost_core::hub::down_log_id;
use outpost_core::ids::{
    BetId, EventId, IdemKey, LogId, MarketId, NodeId, PlayerId, SelectionId, Seq,
};
use outpost_core::log::{ChainHead, ChainVerifier, ChainWriter, Frame, NodeKey, PublicKey};
use outpost_core::market::{MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;
use outpost_core::settle::FinalScore;
use outpost_core::time::UnixMillis;
use outpost_sync::transport::EdgeLog;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

fn now() -> UnixMillis {
    UnixMillis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    )
}

/// The edge side: a sealed in-memory log plus a verified, applied copy of the down chain.
struct MemLog {
    frames: Mutex<Vec<Frame>>,
    durable: watch::Sender<Seq>,
    down: Mutex<(ChainVerifier, Vec<Frame>)>,
}

impl MemLog {
    fn new(hub_key: PublicKey, node: &NodeId) -> MemLog {
        MemLog {
            frames: Mutex::new(Vec::new()),
            durable: watch::Sender::new(Seq::ZERO),
            down: Mutex::new((
                ChainVerifier::new(down_log_id(node), hub_key, ChainHead::EMPTY),
                Vec::new(),
            )),
        }
    }
    fn push(&self, group: Vec<Frame>) {
        let mut f = self.frames.lock().unwrap();
        f.extend(group);
        self.durable.send_replace(Seq(f.len() as u64));
    }
    fn applied(&self) -> Vec<Frame> {
        self.down.lock().unwrap().1.clone()
    }
}

impl EdgeLog for MemLog {
    fn durable_head(&self) -> Seq {
        *self.durable.borrow()
    }
    fn subscribe_durable(&self) -> watch::Receiver<Seq> {
        self.durable.subscribe()
    }
    fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, String> {
        let f = self.frames.lock().unwrap();
        Ok(f.iter()
            .skip(from.0.saturating_sub(1) as usize)
            .take(max)
            .cloned()
            .collect())
    }
    fn down_applied(&self) -> Seq {
        Seq(self.down.lock().unwrap().1.len() as u64)
    }
    fn apply_down(&self, frames: Vec<Frame>) -> impl Future<Output = Result<Seq, String>> + Send {
        let r = (|| {
            let mut d = self.down.lock().unwrap();
            for f in frames {
                let released = d.0.push(f).map_err(|e| e.to_string())?;
                d.1.extend(released.into_iter().map(|(f, _)| f));
            }
            Ok(Seq(d.1.len() as u64))
        })();
        async move { r }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicate_settle_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeId::new("gb-1").unwrap();
    let hub_key = common::hub_key();
    let node_key = NodeKey::from_seed([2; 32]);
    let (hub, stop) = start_hub(dir.path(), &node_key, "segment_max_age_ms = 0").await;
    let state = hub.state.clone();

    // The edge writes a genesis-free log: one bet, sealed.
    let ev = EventId::new("e0-20230811-burnley-man-city").unwrap();
    let market = MarketId::new("m-1").unwrap();
    let bet = EdgeEvent::BetPlaced(BetPlaced {
        each_way: false,
        bet_id: BetId::new("b-1").unwrap(),
        player_id: PlayerId::new("p-1").unwrap(),
        currency: Currency::GBP,
        stake_minor: 1000,
        potential_payout_minor: 3000,
        legs: vec![BetLeg {
            selection_id: SelectionId::new("m-1/away").unwrap(),
            market_id: market,
            event_id: ev.clone(),
            kind: MarketKind::MatchResult,
            outcome: Outcome::Away,
            price: Price::parse("3.0").unwrap(),
        }],
        idem: IdemTag {
            key: IdemKey::new("k-1").unwrap(),
            request_sha256: "00".repeat(32),
        },
    });
    let log = Arc::new(MemLog::new(hub_key.public(), &node));
    let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
    let mut f = w.append(bet.kind(), now(), bet.to_payload());
    ChainWriter::seal(&mut f, &node_key);
    log.push(vec![f]);

    let (link, _status) = link(dir.path(), &hub, log.clone(), stop.subscribe());

    eventually("the bet to replicate", || {
        state.nodes_view().unwrap()[0].acked_seq == 1
    })
    .await;
    // Final only once two sources agree (region-hub/src/settlement.rs).
    let r = state
        .submit_result(ev.clone(), FinalScore { home: 0, away: 3 }, "test".into())
        .await
        .unwrap();
    assert_eq!(r.settled, 0);
    let r = state
        .submit_result(ev, FinalScore { home: 0, away: 3 }, "test-2".into())
        .await
        .unwrap();
    assert_eq!(r.settled, 1);
    eventually("the edge to apply result + settlement", || {
        log.applied().len() == 2
    })
    .await;
    eventually("the hub to see the down ack", || {
        state.nodes_view().unwrap()[0].down_acked == 2
    })
    .await;
    let stats = state.stats_view().unwrap();
    assert_eq!((stats.records, stats.settled), (1, 1));
    eventually("audit uploads", || {
        state.stats_view().unwrap().audit_uploaded == 2
    })
    .await;
    let n = &state.nodes_view().unwrap()[0];
    assert!(n.last_contact_ms.is_some() && !n.flagged);

    // The HTTP API is up on its bound address.
    let mut s = tokio::net::TcpStream::connect(hub.http_addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /v1/bets/b-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("\"payout_minor\":3000"),
        "{out}"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(15), hub.wait())
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), link)
        .await
        .unwrap()
        .unwrap();
}
