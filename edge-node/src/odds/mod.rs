//! The odds shell: one ingest task owns the core odds book (`outpost_core::feed::book`). Feed
//! messages from every source (HTTP push, files, WebSocket) queue to it; it applies them in
//! arrival order, logs every resulting change through the writer (one `RecordOdds` command per
//! batch, so group commit amortises the fsync), and only once the records are durable
//! publishes them to stream clients. A ticker checks producers' alive bounds.
//!
//! Publication keeps a "published" view (market → last durable state, plus the last stream
//! sequence) under one lock with the broadcast send, so a stream client's snapshot and the
//! changes that follow it are exactly consecutive.

pub mod config;
pub mod fanout;
pub mod recovery;
pub mod sources;

use crate::writer::WriterHandle;
use config::OddsConfig;
use outpost_core::edge::Command;
use outpost_core::feed::book::{BookConfig, FeedStats, Ingested, OddsBook, Skip};
use outpost_core::feed::records::{ChangeReason, MarketView, OddsChanged};
use outpost_core::ids::{MarketId, SelectionId};
use outpost_core::market::Market;
use outpost_core::market::MarketStatus;
use outpost_core::time::UnixMillis;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Which parser a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    Uof,
    Betfair,
    /// A Betfair historical-data file line (complete recorded state).
    BetfairHistorical,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestReport {
    pub changes: usize,
    pub first_seq: Option<u64>,
    pub skipped_markets: Vec<String>,
}

struct Input {
    kind: FeedKind,
    raw: Vec<u8>,
    reply: Option<oneshot::Sender<Result<IngestReport, Skip>>>,
}

/// Published changes, pre-serialised once for every client as complete SSE frames
/// (`event: change`, `id: <seq>`, `data: <json>`, one frame per change). All the changes that
/// became durable together travel as one item, so a client is woken once per durable batch,
/// not once per change.
#[derive(Clone)]
pub struct Published {
    /// Sequence number of the last change in `frame` (0 for a keep-alive).
    pub seq: u64,
    pub frame: bytes::Bytes,
}

#[derive(Default)]
struct View {
    markets: BTreeMap<MarketId, MarketView>,
    seq: u64,
}

pub struct OddsHub {
    tx: mpsc::Sender<Input>,
    view: Mutex<View>,
    broadcast: broadcast::Sender<Published>,
    /// The fan-out thread serving the stream connections diverted by the listener.
    pub fanout: fanout::Fanout,
    stats: Mutex<(FeedStats, BTreeMap<String, bool>)>,
    /// Messages refused before reaching the book (queue full, body too large).
    pub refused: AtomicU64,
    pub config: OddsConfig,
    /// Delivers the book's UOF recovery requests (`[odds.uof_api]`), when configured.
    pub recovery: Option<Arc<recovery::RecoveryClient>>,
}

impl OddsHub {
    /// Build the book from the markets the log already holds (restart), start the ingest
    /// task and the alive ticker.
    pub fn start(
        config: OddsConfig,
        recovery: Option<recovery::RecoveryClient>,
        writer: WriterHandle,
        state: &FeedState,
    ) -> Arc<OddsHub> {
        let mut book = OddsBook::new(BookConfig {
            recovery_retry_ms: recovery.as_ref().map(|r| r.retry_ms()),
            alive_timeout_ms: config.alive_timeout_ms,
            uof_products: config.uof_products.clone(),
            policy: config.policy(),
        });
        let mut view = View::default();
        for (id, m) in &state.markets {
            if !from_feed(m) {
                continue;
            }
            let mv = restored_view(m);
            book.restore(&OddsChanged {
                odds_seq: state.odds_seq,
                reason: ChangeReason::Restored,
                source_ts: UnixMillis(0),
                market: mv.clone(),
            });
            view.markets
                .insert(id.clone(), book.market(id).cloned().unwrap_or(mv));
        }
        view.seq = state.odds_seq;
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (btx, _) = broadcast::channel(config.stream_buffer);
        let hub = Arc::new(OddsHub {
            tx,
            view: Mutex::new(view),
            broadcast: btx,
            fanout: fanout::Fanout::start(config.stream_fanout_threads),
            stats: Mutex::new((book.stats.clone(), book.producers())),
            refused: AtomicU64::new(0),
            config,
            recovery: recovery.map(Arc::new),
        });
        tokio::spawn(ingest_task(hub.clone(), book, writer, rx));
        hub
    }

    /// Queue one message and wait until it is applied (and its changes durable).
    pub async fn ingest(&self, kind: FeedKind, raw: Vec<u8>) -> Result<IngestReport, Skip> {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .try_send(Input {
                kind,
                raw,
                reply: Some(reply),
            })
            .is_err()
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Skip::Malformed(
                "feed queue is full or the node is stopping".into(),
            ));
        }
        rx.await
            .map_err(|_| Skip::Malformed("odds book stopped".into()))?
    }

    /// Queue without waiting (file and WebSocket sources), applying backpressure.
    pub async fn feed(&self, kind: FeedKind, raw: Vec<u8>) -> bool {
        self.tx
            .send(Input {
                kind,
                raw,
                reply: None,
            })
            .await
            .is_ok()
    }

    /// A consistent snapshot (markets at sequence `seq`) and a receiver for what follows.
    pub fn subscribe(&self) -> (u64, Vec<MarketView>, broadcast::Receiver<Published>) {
        let v = self.view.lock().expect("view lock");
        (
            v.seq,
            v.markets.values().cloned().collect(),
            self.broadcast.subscribe(),
        )
    }

    /// Serve a stream connection (its response head already written) from the fan-out
    /// thread: the snapshot now, then every change after it.
    pub fn attach_stream_client(&self, sock: std::net::TcpStream) {
        let v = self.view.lock().expect("view lock");
        let markets: Vec<&MarketView> = v.markets.values().collect();
        let first = snapshot_frame(v.seq, &markets);
        // Sent under the view lock, like every published frame: nothing falls in between.
        self.fanout.client(sock, first);
    }

    pub fn stream_clients(&self) -> usize {
        self.broadcast.receiver_count() + self.fanout.stats.clients.load(Ordering::Relaxed) as usize
    }

    pub fn stats(&self) -> (FeedStats, BTreeMap<String, bool>, u64) {
        let s = self.stats.lock().expect("stats lock");
        (
            s.0.clone(),
            s.1.clone(),
            self.view.lock().expect("view lock").seq,
        )
    }

    /// Is the market of this selection in play (bets on it are delayed)?
    pub fn in_play(&self, selection: &SelectionId) -> bool {
        let v = self.view.lock().expect("view lock");
        v.markets
            .values()
            .any(|m| m.in_play && m.selections.iter().any(|s| &s.selection_id == selection))
    }

    /// An SSE comment to every client, so idle connections are not cut by proxies.
    fn keep_alive(&self) {
        let frame = bytes::Bytes::from_static(b": keep-alive\n\n");
        let _v = self.view.lock().expect("view lock");
        self.fanout.frames(&frame);
        let _ = self.broadcast.send(Published { seq: 0, frame });
    }

    fn publish(&self, changes: &[OddsChanged]) {
        if changes.is_empty() {
            return;
        }
        // Serialise outside the lock; frames are consecutive in sequence order.
        let mut frame = Vec::with_capacity(changes.len() * 640);
        for c in changes {
            use std::io::Write;
            let _ = write!(frame, "event: change\nid: {}\ndata: ", c.odds_seq);
            // JSON from serde_json has no raw newlines, so it is one SSE data line.
            serde_json::to_writer(&mut frame, c).expect("changes serialise");
            frame.extend_from_slice(b"\n\n");
        }
        let mut v = self.view.lock().expect("view lock");
        for c in changes {
            v.markets
                .insert(c.market.market_id.clone(), c.market.clone());
            v.seq = c.odds_seq;
        }
        let frame = bytes::Bytes::from(frame);
        self.fanout.frames(&frame);
        // No receivers is fine: nobody is watching.
        let _ = self.broadcast.send(Published { seq: v.seq, frame });
    }
}

/// The first event of a stream: every market at sequence `seq`.
pub fn snapshot_frame(seq: u64, markets: &[&MarketView]) -> bytes::Bytes {
    let snapshot = serde_json::json!({ "seq": seq, "markets": markets }).to_string();
    bytes::Bytes::from(format!("event: snapshot\nid: {seq}\ndata: {snapshot}\n\n"))
}

fn restored_view(m: &outpost_core::market::Market) -> MarketView {
    MarketView {
        market_id: m.market_id.clone(),
        event_id: m.event_id.clone(),
        kind: m.kind,
        status: if m.status == MarketStatus::Open {
            MarketStatus::Suspended
        } else {
            m.status
        },
        in_play: false,
        producer: if m.market_id.as_str().starts_with("bf:") {
            "betfair".into()
        } else {
            "uof:restored".into()
        },
        selections: m
            .selections
            .iter()
            .map(|s| outpost_core::feed::records::SelectionView {
                selection_id: s.selection_id.clone(),
                outcome: s.outcome,
                price: Some(s.price),
            })
            .collect(),
    }
}

/// The feed markets and stream position held by the log (read once at start-up).
pub struct FeedState {
    pub markets: BTreeMap<MarketId, Market>,
    pub odds_seq: u64,
}

/// Start the odds hub for a node: restore from the log, feed configured files, connect
/// configured WebSockets.
pub async fn start(
    cfg: &crate::config::EdgeConfig,
    writer: &WriterHandle,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Arc<OddsHub>> {
    let fs = writer
        .read(|st, _| FeedState {
            markets: st
                .markets
                .iter()
                .filter(|(_, m)| from_feed(m))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            odds_seq: st.odds_seq,
        })
        .await?;
    let mut oc = cfg.odds.clone();
    oc.jurisdiction = Some(cfg.jurisdiction.clone());
    let recovery = match &oc.uof_api {
        Some(api) => Some(recovery::RecoveryClient::new(
            api.clone(),
            &oc.uof_products,
        )?),
        None => None,
    };
    let hub = OddsHub::start(oc, recovery, writer.clone(), &fs);
    for f in &cfg.odds.files {
        let n = sources::feed_file(hub.clone(), f.clone()).await?;
        tracing::info!(file = %f.path.display(), messages = n, "feed file queued");
    }
    for w in &cfg.odds.websockets {
        tokio::spawn(sources::run_websocket(
            hub.clone(),
            w.clone(),
            shutdown.clone(),
        ));
    }
    Ok(hub)
}

/// Whether a market came from a feed (restored into the book on restart) rather than from a
/// fixture file: feed events are provider URNs (`sr:match:1`, `vhc:stage:2`, two colons) or
/// Betfair markets (`bf:…`).
fn from_feed(m: &Market) -> bool {
    let e = m.event_id.as_str();
    e.starts_with("bf:") || e.matches(':').count() >= 2
}

pub fn now() -> UnixMillis {
    crate::writer::now()
}

const BATCH_MAX: usize = 512;
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

type Reply = (
    Option<oneshot::Sender<Result<IngestReport, Skip>>>,
    Result<IngestReport, Skip>,
);

/// A batch whose records are in the writer's pipeline: published and answered once durable.
struct InFlight {
    durable: Option<
        oneshot::Receiver<Result<outpost_core::edge::Reply, outpost_core::edge::CommandError>>,
    >,
    changes: Vec<OddsChanged>,
    replies: Vec<Reply>,
}

/// Applies messages to the book in arrival order and hands each batch's records to the writer
/// without waiting for the fsync, so batches pipeline through group commit; `publisher`
/// releases them in the same order once durable.
async fn ingest_task(
    hub: Arc<OddsHub>,
    mut book: OddsBook,
    writer: WriterHandle,
    mut rx: mpsc::Receiver<Input>,
) {
    let (ptx, prx) = mpsc::channel::<InFlight>(1024);
    tokio::spawn(publisher(hub.clone(), prx));
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(hub.config.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_keep_alive = std::time::Instant::now();
    loop {
        if last_keep_alive.elapsed() >= KEEP_ALIVE {
            hub.keep_alive();
            last_keep_alive = std::time::Instant::now();
        }
        let mut batch: Vec<Input> = Vec::new();
        tokio::select! {
            m = rx.recv() => match m {
                Some(i) => batch.push(i),
                None => return,
            },
            _ = tick.tick() => {}
        }
        while batch.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let t = now();
        let mut all = Ingested::default();
        let mut replies = Vec::new();
        for input in batch {
            let r = match input.kind {
                FeedKind::Uof => book.ingest_uof(&input.raw, t),
                FeedKind::Betfair => book.ingest_betfair(&input.raw, t, false),
                FeedKind::BetfairHistorical => book.ingest_betfair(&input.raw, t, true),
            };
            let r = r.map(|ing| {
                let report = IngestReport {
                    changes: ing.changes.len(),
                    first_seq: ing.changes.first().map(|c| c.odds_seq),
                    skipped_markets: ing.market_skips.clone(),
                };
                for s in &ing.market_skips {
                    tracing::warn!(feed = ?input.kind, "feed market skipped: {s}");
                }
                all.changes.extend(ing.changes);
                all.producers.extend(ing.producers);
                report
            });
            if let Err(e) = &r {
                tracing::warn!(feed = ?input.kind, "feed message skipped: {e}");
            }
            replies.push((input.reply, r));
        }
        let ticked = book.tick(t);
        if let Some(r) = &hub.recovery {
            r.send_all(ticked.recovery_requests);
        }
        all.changes.extend(ticked.changes);
        all.producers.extend(ticked.producers);
        for p in &all.producers {
            tracing::info!(producer = %p.producer, up = p.up, reason = p.reason.code(), "feed producer changed");
        }
        *hub.stats.lock().expect("stats lock") = (book.stats.clone(), book.producers());
        let durable = if all.changes.is_empty() && all.producers.is_empty() {
            None
        } else {
            let cmd = Command::RecordOdds {
                producers: all.producers,
                changes: all.changes.clone(),
            };
            match writer.submit(cmd, None).await {
                Ok(rx) => Some(rx),
                Err(_) => return,
            }
        };
        if ptx
            .send(InFlight {
                durable,
                changes: all.changes,
                replies,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Waits for each batch to be durable, in order, then publishes it and answers its senders.
/// Batches that the writer made durable in the same group commit are published as one item.
async fn publisher(hub: Arc<OddsHub>, mut rx: mpsc::Receiver<InFlight>) {
    let mut next: Option<InFlight> = None;
    loop {
        let first = match next.take() {
            Some(f) => f,
            None => match rx.recv().await {
                Some(f) => f,
                None => return,
            },
        };
        let mut changes = Vec::new();
        let mut replies = Vec::new();
        let Some(ok) = settle(first, None, &mut changes, &mut replies).await else {
            return; // writer stopped
        };
        let mut logged = ok;
        // Take along every following batch that is already durable (same group commit).
        while logged {
            let Ok(mut f) = rx.try_recv() else { break };
            let ready = match f.durable.as_mut().map(|d| d.try_recv()) {
                None => None,
                Some(Ok(r)) => Some(r),
                Some(Err(oneshot::error::TryRecvError::Empty)) => {
                    next = Some(f);
                    break;
                }
                Some(Err(oneshot::error::TryRecvError::Closed)) => return,
            };
            f.durable = None;
            match settle(f, Some(ready), &mut changes, &mut replies).await {
                Some(ok) => logged = ok,
                None => return,
            }
        }
        hub.publish(&changes);
        for (reply, r) in replies {
            if let Some(reply) = reply {
                let _ = reply.send(r);
            }
        }
    }
}

type Durable = Result<outpost_core::edge::Reply, outpost_core::edge::CommandError>;

/// Wait for one batch to be durable (or use `ready`, its already received outcome), then add
/// its changes to those to publish and its replies to those to send. `None` if the writer
/// stopped; `Some(false)` if the batch was not logged (its changes are never published).
async fn settle(
    f: InFlight,
    ready: Option<Option<Durable>>,
    changes: &mut Vec<OddsChanged>,
    replies: &mut Vec<Reply>,
) -> Option<bool> {
    let outcome = match (ready, f.durable) {
        (Some(r), _) => r,
        (None, Some(d)) => Some(d.await.ok()?),
        (None, None) => None,
    };
    let mut batch_replies = f.replies;
    let logged = match outcome {
        None => true, // nothing to log
        Some(Ok(_)) => {
            changes.extend(f.changes);
            true
        }
        Some(Err(e)) => {
            // Cannot happen for RecordOdds on an initialised node; never publish what is
            // not logged.
            tracing::error!("odds changes not logged: {e}");
            for r in &mut batch_replies {
                r.1 = Err(Skip::Malformed(format!("not logged: {e}")));
            }
            false
        }
    };
    replies.extend(batch_replies);
    Some(logged)
}
