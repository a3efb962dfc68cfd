//! The odds book: a sans-IO state machine from parsed feed messages (and the current time) to
//! market changes, each with a reason.
//!
//! Safety rules it enforces:
//! * A producer starts **down** and comes up only when recovery completes (UOF
//!   `snapshot_complete`, Betfair subscription image). When the node drives UOF recovery
//!   itself (`BookConfig::recovery_retry_ms`), [`OddsBook::tick`] asks the shell to send a
//!   recovery request for every down producer (from the last good `alive`, so nothing in between
//!   is missed) and only the `snapshot_complete` carrying that request's id brings it up; a
//!   request that does not complete is repeated. A producer that is silent longer than
//!   `alive_timeout_ms` (checked by [`OddsBook::tick`]) or reports itself lost goes down, and
//!   every market it feeds is suspended until the next recovery completes.
//! * `bet_stop` suspends the markets of the event in the groups it names (every market when it
//!   names none, or when a market's groups are not known) until fresh odds arrive.
//! * Messages older than the last one seen for the same event (UOF) or market (Betfair) are
//!   rejected as out of order; an exact repeat is rejected as a duplicate.
//! * A market is open only if its producer is up, the provider has it active, and every active
//!   selection has a valid laddered price > 1.0; an impossible price keeps it shut.
//! * Unknown market types and unknown producers are skipped; nothing is ever opened from them.
//!
//! Every rejection is counted in [`FeedStats`] so the shell can expose it as a metric.

use super::betfair::{self, BetfairMessage, ChangeType, MarketDefStatus, RunnerStatus};
use super::records::{ChangeReason, MarketView, OddsChanged, ProducerChanged, SelectionView};
use super::uof::{self, UofMarket, UofMarketStatus, UofMessage};
use crate::ids::{EventId, MarketId};
use crate::market::{Line, Market, MarketKind, MarketStatus, Outcome};
use crate::price::{PRICE_MILLI_MAX, Price};
use crate::pricing::each_way::standard_terms;
use crate::pricing::policy::PricingPolicy;
use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookConfig {
    /// A producer silent (no alive/heartbeat) for longer than this is treated as down.
    pub alive_timeout_ms: i64,
    /// UOF products (producers) this node is subscribed to; others are skipped.
    pub uof_products: Vec<u32>,
    pub policy: PricingPolicy,
    /// `Some(ms)`: the node requests UOF recovery itself (the provider's recovery API), accepts
    /// only the `snapshot_complete` of its own latest request, and repeats a request that has
    /// not completed after `ms`. `None`: the provider pushes snapshots unasked (recorded feeds,
    /// replays) and any `snapshot_complete` completes recovery.
    #[serde(default)]
    pub recovery_retry_ms: Option<i64>,
}

/// How far back a UOF recovery may start. Sportradar's documentation gives 72 h for pre-match
/// and less for live producers (UNVERIFIED here: the API is not reachable from this project);
/// the node uses the smallest, 10 h, and asks for a full recovery when the gap is longer.
pub const RECOVERY_AFTER_MAX_MS: i64 = 10 * 3_600_000;

/// A UOF recovery request for the shell to send:
/// `POST {api}/v1/{product}/recovery/initiate_request?after={after}&request_id={request_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    pub product: u32,
    pub request_id: u64,
    /// Recover everything since this provider time (the last `alive` with `subscribed="1"` seen
    /// while the producer was up); `None` = a full recovery.
    pub after: Option<UnixMillis>,
}

/// Counters of everything received, applied and skipped (exposed as metrics by the shell).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStats {
    pub received: u64,
    pub applied: u64,
    pub malformed: u64,
    pub unknown_market: u64,
    pub unknown_producer: u64,
    pub duplicate: u64,
    pub out_of_order: u64,
    pub impossible_price: u64,
    pub pricing_failed: u64,
    /// `snapshot_complete` messages that did not answer the node's outstanding request.
    #[serde(default)]
    pub unrequested_recovery: u64,
    pub updates: u64,
}

/// Why a whole message was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("producer {0} is not subscribed")]
    UnknownProducer(String),
    #[error("duplicate message")]
    Duplicate,
    #[error("out of order: message time {got} is before {last}")]
    OutOfOrder { got: i64, last: i64 },
    #[error("no market in the message is known to the book")]
    UnknownMarket,
    #[error(
        "snapshot_complete for request {got:?} does not answer the outstanding request {want:?}"
    )]
    UnrequestedRecovery { got: Option<u64>, want: Option<u64> },
}

/// Result of one ingested message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ingested {
    pub changes: Vec<OddsChanged>,
    pub producers: Vec<ProducerChanged>,
    /// Markets inside an otherwise valid message that were skipped (unknown id, bad price).
    pub market_skips: Vec<String>,
    /// UOF recovery requests the shell must send (only from [`OddsBook::tick`]).
    pub recovery_requests: Vec<RecoveryRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Producer {
    up: bool,
    last_alive: Option<UnixMillis>,
    /// Provider time of the last `alive` with `subscribed="1"` while up: where recovery resumes.
    #[serde(default)]
    last_good_alive: Option<UnixMillis>,
    /// The outstanding recovery request: (request id, local time it was issued).
    #[serde(default)]
    pending_recovery: Option<(u64, UnixMillis)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BookSelection {
    outcome: Outcome,
    /// Provider's key (UOF outcome id, Betfair selection id).
    feed_key: String,
    /// Provider's reference odds in thousandths (validated > 1.0).
    ref_milli: Option<u64>,
    probability: Option<f64>,
    active: bool,
    offered: Option<Price>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BookMarket {
    view: MarketView,
    selections: Vec<BookSelection>,
    provider_open: bool,
    bet_stopped: bool,
    /// Set when the last odds were impossible or unpriceable: stays shut until good odds.
    blocked: Option<ChangeReason>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OddsBook {
    config: BookConfig,
    producers: BTreeMap<String, Producer>,
    markets: BTreeMap<MarketId, BookMarket>,
    /// Ordering guard: last (timestamp, digest) per UOF event / Betfair market.
    last_seen: BTreeMap<String, (i64, u64)>,
    /// Betfair market id (`bf:1.23`) → book market.
    bf_markets: BTreeMap<String, MarketId>,
    /// The last recovery request id issued. Ids are at least the local time in ms, so a
    /// restarted node never reuses one a late `snapshot_complete` could still answer.
    #[serde(default)]
    last_request_id: u64,
    next_seq: u64,
    pub stats: FeedStats,
}

fn digest(bytes: &[u8]) -> u64 {
    // SipHash with fixed keys: deterministic, only used to spot exact repeats.
    let mut h = std::hash::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Maps a UOF outcome id to the book's outcome (`None`: an outcome id the market lacks).
pub type OutcomeMap = fn(&str) -> Option<Outcome>;

/// The market kind and outcome-id mapping of UOF market `id` with `specifiers`, exactly as the
/// book maps `odds_change` (the hub maps `bet_settlement` with it, so a settled outcome lands
/// on the market and selection the edge offered). `None`: a market the book does not price.
pub fn uof_market_kind(id: u32, specifiers: &str) -> Option<(MarketKind, OutcomeMap)> {
    uof_kind(&UofMarket {
        id,
        specifiers: specifiers.to_string(),
        status: UofMarketStatus::Active,
        outcomes: vec![],
    })
}

/// UOF market ids the book prices, and their outcome ids. Everything else is "unknown".
fn uof_kind(m: &UofMarket) -> Option<(MarketKind, OutcomeMap)> {
    let spec = |key: &str| {
        m.specifiers.split('|').find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v)
        })
    };
    Some(match m.id {
        1 => (MarketKind::MatchResult, |o| match o {
            "1" => Some(Outcome::Home),
            "2" => Some(Outcome::Draw),
            "3" => Some(Outcome::Away),
            _ => None,
        }),
        18 => (
            MarketKind::TotalGoals {
                line: Line::parse(spec("total")?).ok()?,
            },
            |o| match o {
                "12" => Some(Outcome::Over),
                "13" => Some(Outcome::Under),
                _ => None,
            },
        ),
        16 => (
            MarketKind::AsianHandicap {
                home_line: Line::parse(spec("hcp")?).ok()?,
            },
            |o| match o {
                "1714" => Some(Outcome::Home),
                "1715" => Some(Outcome::Away),
                _ => None,
            },
        ),
        29 => (MarketKind::BothTeamsToScore, |o| match o {
            "74" => Some(Outcome::Yes),
            "76" => Some(Outcome::No),
            _ => None,
        }),
        // Race winner and "finish in the first `pos`" on (virtual) races, as in the real
        // `odds_change-vhc.xml` capture: one outcome per runner, `sr:competitor:<id>`. The
        // capture's books (win ≈ 1.2, place with pos=3 ≈ 3.5) confirm 1 and 3 winners.
        866 => (MarketKind::RaceWin { each_way: None }, uof_runner),
        868 => (
            MarketKind::RacePlace {
                places: spec("pos")?.parse().ok().filter(|p| (1..=10).contains(p))?,
            },
            uof_runner,
        ),
        _ => return None,
    })
}

fn uof_runner(o: &str) -> Option<Outcome> {
    let id = o.strip_prefix("sr:competitor:")?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Outcome::Runner {
        id: id.parse().ok()?,
    })
}

/// The UOF market groups of a priced market kind, as Sportradar's market descriptions give
/// them (the real `markets-*.xml` captures: 1x2, handicap and total are
/// `all|score|regular_play`). `None` where the book holds no description: such a market is
/// suspended by every bet_stop, whatever its groups (the safe reading).
fn uof_groups(kind: &MarketKind) -> Option<&'static [&'static str]> {
    match kind {
        MarketKind::MatchResult
        | MarketKind::TotalGoals { .. }
        | MarketKind::AsianHandicap { .. } => Some(&["all", "score", "regular_play"]),
        _ => None,
    }
}

/// Does a bet_stop naming `groups` (`a|b`; absent means `all`) stop this market?
fn bet_stop_applies(groups: &str, kind: &MarketKind) -> bool {
    let mut named = groups
        .split('|')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .peekable();
    if named.peek().is_none() {
        return true;
    }
    match uof_groups(kind) {
        None => true,
        Some(gs) => named.any(|g| g == "all" || gs.contains(&g)),
    }
}

impl OddsBook {
    pub fn new(config: BookConfig) -> OddsBook {
        let mut producers = BTreeMap::new();
        for p in &config.uof_products {
            producers.insert(
                format!("uof:{p}"),
                Producer {
                    up: false,
                    last_alive: None,
                    last_good_alive: None,
                    pending_recovery: None,
                },
            );
        }
        producers.insert(
            "betfair".into(),
            Producer {
                up: false,
                last_alive: None,
                last_good_alive: None,
                pending_recovery: None,
            },
        );
        OddsBook {
            config,
            producers,
            markets: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            bf_markets: BTreeMap::new(),
            last_request_id: 0,
            next_seq: 1,
            stats: FeedStats::default(),
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
    pub fn producer_up(&self, producer: &str) -> bool {
        self.producers.get(producer).is_some_and(|p| p.up)
    }
    pub fn producers(&self) -> BTreeMap<String, bool> {
        self.producers
            .iter()
            .map(|(k, p)| (k.clone(), p.up))
            .collect()
    }
    /// The current state of every market, in market-id order (the stream's snapshot).
    pub fn snapshot(&self) -> Vec<MarketView> {
        self.markets.values().map(|m| m.view.clone()).collect()
    }
    pub fn market(&self, id: &MarketId) -> Option<&MarketView> {
        self.markets.get(id).map(|m| &m.view)
    }

    /// Rebuild from a logged change (restart). Producers stay down, so the market is
    /// suspended until its producer recovers.
    pub fn restore(&mut self, rec: &OddsChanged) {
        self.next_seq = self.next_seq.max(rec.odds_seq + 1);
        let mut view = rec.market.clone();
        if view.status == MarketStatus::Open {
            view.status = MarketStatus::Suspended;
        }
        let selections = view
            .selections
            .iter()
            .map(|s| BookSelection {
                outcome: s.outcome,
                feed_key: String::new(),
                ref_milli: None,
                probability: None,
                active: s.price.is_some(),
                offered: s.price,
            })
            .collect();
        self.markets.insert(
            view.market_id.clone(),
            BookMarket {
                view,
                selections,
                provider_open: false,
                bet_stopped: false,
                blocked: Some(ChangeReason::Restored),
            },
        );
    }

    // ---------------------------------------------------------------- UOF

    /// Parse and apply one UOF message received at local time `now`.
    pub fn ingest_uof(&mut self, raw: &[u8], now: UnixMillis) -> Result<Ingested, Skip> {
        self.stats.received += 1;
        let msg = match uof::parse(raw) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(Skip::Malformed(e.to_string()));
            }
        };
        let r = self.apply_uof(&msg, digest(raw), now);
        self.count(&r);
        r
    }

    fn count(&mut self, r: &Result<Ingested, Skip>) {
        match r {
            Ok(i) => {
                self.stats.applied += 1;
                self.stats.updates += i.changes.len() as u64;
            }
            Err(Skip::Malformed(_)) => self.stats.malformed += 1,
            Err(Skip::UnknownProducer(_)) => self.stats.unknown_producer += 1,
            Err(Skip::Duplicate) => self.stats.duplicate += 1,
            Err(Skip::OutOfOrder { .. }) => self.stats.out_of_order += 1,
            Err(Skip::UnrequestedRecovery { .. }) => self.stats.unrequested_recovery += 1,
            Err(Skip::UnknownMarket) => {} // counted per market
        }
    }

    fn check_order(&mut self, key: String, ts: UnixMillis, dig: u64) -> Result<(), Skip> {
        match self.last_seen.get(&key) {
            Some(&(last, d)) if ts.0 < last => {
                let _ = d;
                Err(Skip::OutOfOrder { got: ts.0, last })
            }
            Some(&(last, d)) if ts.0 == last && d == dig => Err(Skip::Duplicate),
            _ => {
                self.last_seen.insert(key, (ts.0, dig));
                Ok(())
            }
        }
    }

    fn apply_uof(&mut self, msg: &UofMessage, dig: u64, now: UnixMillis) -> Result<Ingested, Skip> {
        let product = msg.product();
        let producer = format!("uof:{product}");
        // Rollback of a cancel may omit the product (as in the captured sample); it names
        // markets we already hold, so it is allowed through on any subscribed producer.
        let known = self.producers.contains_key(&producer);
        let productless_rollback =
            product == 0 && matches!(msg, UofMessage::RollbackBetCancel { .. });
        if !known && !productless_rollback {
            return Err(Skip::UnknownProducer(producer));
        }
        let mut out = Ingested::default();
        match msg {
            UofMessage::Alive {
                subscribed,
                timestamp,
                ..
            } => {
                let p = self.producers.get_mut(&producer).expect("checked");
                p.last_alive = Some(now);
                if *subscribed && p.up {
                    p.last_good_alive = Some(*timestamp);
                }
                if !subscribed && p.up {
                    self.producer_down(&producer, ChangeReason::ProducerLost, *timestamp, &mut out);
                }
            }
            UofMessage::SnapshotComplete {
                timestamp,
                request_id,
                ..
            } => {
                let requesting = self.config.recovery_retry_ms.is_some();
                let p = self.producers.get_mut(&producer).expect("checked");
                p.last_alive = Some(now);
                if requesting && !p.up {
                    let want = p.pending_recovery.map(|(id, _)| id);
                    if want.is_none() || *request_id != want {
                        return Err(Skip::UnrequestedRecovery {
                            got: *request_id,
                            want,
                        });
                    }
                }
                if !p.up {
                    p.pending_recovery = None;
                    p.up = true;
                    out.producers.push(ProducerChanged {
                        producer: producer.clone(),
                        up: true,
                        reason: ChangeReason::RecoveryComplete,
                        at: *timestamp,
                    });
                    let ids: Vec<MarketId> = self
                        .markets
                        .iter()
                        .filter(|(_, m)| m.view.producer == producer)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in ids {
                        self.settle_status(
                            &id,
                            ChangeReason::RecoveryComplete,
                            *timestamp,
                            &mut out,
                        );
                    }
                }
            }
            UofMessage::OddsChange {
                header,
                status,
                markets,
            } => {
                self.check_order(format!("uof:{}", header.event_id), header.timestamp, dig)?;
                let event_id = EventId::new(header.event_id.clone())
                    .map_err(|e| Skip::Malformed(e.to_string()))?;
                let in_play = status.is_some_and(|s| s.status == 1);
                let mut any_known = markets.is_empty();
                for m in markets {
                    let Some((kind, map)) = uof_kind(m) else {
                        self.stats.unknown_market += 1;
                        out.market_skips
                            .push(format!("unknown market {} {}", m.id, m.specifiers));
                        continue;
                    };
                    any_known = true;
                    self.uof_market(
                        &event_id,
                        &producer,
                        kind,
                        map,
                        m,
                        in_play,
                        header.timestamp,
                        &mut out,
                    );
                }
                // In-play flag applies to every market of the event, priced or not.
                if in_play {
                    let ids = self.event_markets(&event_id);
                    for id in ids {
                        if let Some(bm) = self.markets.get_mut(&id)
                            && !bm.view.in_play
                        {
                            bm.view.in_play = true;
                            self.settle_status(
                                &id,
                                ChangeReason::FeedOdds,
                                header.timestamp,
                                &mut out,
                            );
                        }
                    }
                }
                if !any_known {
                    return Err(Skip::UnknownMarket);
                }
            }
            UofMessage::BetStop { header, groups } => {
                self.check_order(format!("uof:{}", header.event_id), header.timestamp, dig)?;
                let event_id = EventId::new(header.event_id.clone())
                    .map_err(|e| Skip::Malformed(e.to_string()))?;
                for id in self.event_markets(&event_id) {
                    // Only the markets in the named groups stop; the others keep trading.
                    match self.markets.get_mut(&id) {
                        Some(m) if bet_stop_applies(groups, &m.view.kind) => m.bet_stopped = true,
                        _ => continue,
                    }
                    self.settle_status(&id, ChangeReason::BetStop, header.timestamp, &mut out);
                }
            }
            UofMessage::BetSettlement {
                header, markets, ..
            } => {
                let refs: Vec<(u32, &str)> = markets
                    .iter()
                    .map(|m| (m.id, m.specifiers.as_str()))
                    .collect();
                self.lifecycle(
                    header,
                    &refs,
                    MarketStatus::Settled,
                    ChangeReason::Settled,
                    &mut out,
                )?;
            }
            UofMessage::BetCancel {
                header, markets, ..
            } => {
                for m in markets {
                    let reason = ChangeReason::Cancelled {
                        void_reason: m.void_reason,
                    };
                    self.lifecycle(
                        header,
                        &[(m.id, m.specifiers.as_str())],
                        MarketStatus::Cancelled,
                        reason,
                        &mut out,
                    )?;
                }
            }
            UofMessage::RollbackBetSettlement { header, markets }
            | UofMessage::RollbackBetCancel { header, markets } => {
                // A rolled-back settlement or cancellation returns the markets to closed: they
                // await a new result, and stay unbettable.
                let reason = if matches!(msg, UofMessage::RollbackBetSettlement { .. }) {
                    ChangeReason::RollbackSettlement
                } else {
                    ChangeReason::RollbackCancel
                };
                let refs: Vec<(u32, &str)> = markets
                    .iter()
                    .map(|m| (m.id, m.specifiers.as_str()))
                    .collect();
                self.lifecycle(header, &refs, MarketStatus::Closed, reason, &mut out)?;
            }
            UofMessage::FixtureChange { header, .. } => {
                // The fixture (start time, coverage) changed; the SDK would refetch it. Prices
                // are unaffected; the ordering guard still applies.
                self.check_order(format!("uof:{}", header.event_id), header.timestamp, dig)?;
            }
        }
        Ok(out)
    }

    fn event_markets(&self, event: &EventId) -> Vec<MarketId> {
        self.markets
            .iter()
            .filter(|(_, m)| &m.view.event_id == event)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn lifecycle(
        &mut self,
        header: &uof::Header,
        refs: &[(u32, &str)],
        to: MarketStatus,
        reason: ChangeReason,
        out: &mut Ingested,
    ) -> Result<(), Skip> {
        let event_id =
            EventId::new(header.event_id.clone()).map_err(|e| Skip::Malformed(e.to_string()))?;
        let mut any = false;
        for (id, spec) in refs {
            let probe = UofMarket {
                id: *id,
                specifiers: spec.to_string(),
                status: UofMarketStatus::Active,
                outcomes: vec![],
            };
            let Some((kind, _)) = uof_kind(&probe) else {
                self.stats.unknown_market += 1;
                out.market_skips.push(format!("unknown market {id} {spec}"));
                continue;
            };
            let mid = Market::market_id_for(&event_id, &kind);
            let Some(m) = self.markets.get_mut(&mid) else {
                self.stats.unknown_market += 1;
                out.market_skips.push(format!("market {mid} not held"));
                continue;
            };
            any = true;
            let from = m.view.status;
            // Settling or cancelling an open market closes it first (never jump open → settled
            // without recording that betting stopped).
            if matches!(to, MarketStatus::Settled | MarketStatus::Cancelled)
                && from == MarketStatus::Open
            {
                m.view.status = MarketStatus::Closed;
            }
            if m.view.status.can_become(to) {
                m.view.status = to;
                self.emit(&mid, reason.clone(), header.timestamp, out);
            }
        }
        if any || refs.is_empty() {
            Ok(())
        } else {
            Err(Skip::UnknownMarket)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn uof_market(
        &mut self,
        event_id: &EventId,
        producer: &str,
        kind: MarketKind,
        map: fn(&str) -> Option<Outcome>,
        m: &UofMarket,
        in_play: bool,
        ts: UnixMillis,
        out: &mut Ingested,
    ) {
        let mid = Market::market_id_for(event_id, &kind);
        let mut sels: Vec<BookSelection> = Vec::new();
        for o in &m.outcomes {
            let Some(outcome) = map(&o.id) else {
                self.stats.unknown_market += 1;
                out.market_skips
                    .push(format!("market {mid}: unknown outcome {}", o.id));
                return;
            };
            sels.push(BookSelection {
                outcome,
                feed_key: o.id.to_string(),
                ref_milli: o.odds_milli,
                probability: o.probability,
                active: o.active,
                offered: None,
            });
        }
        let bm = self
            .markets
            .entry(mid.clone())
            .or_insert_with(|| BookMarket {
                view: MarketView {
                    market_id: mid.clone(),
                    event_id: event_id.clone(),
                    kind,
                    status: MarketStatus::Suspended,
                    in_play,
                    producer: producer.to_string(),
                    selections: Vec::new(),
                },
                selections: Vec::new(),
                provider_open: false,
                bet_stopped: false,
                blocked: None,
            });
        if matches!(
            bm.view.status,
            MarketStatus::Settled | MarketStatus::Cancelled | MarketStatus::Closed
        ) {
            return; // no reopening a market whose betting has ended
        }
        bm.view.in_play |= in_play;
        // A market restored from the log learns its producer from the first fresh message.
        bm.view.producer = producer.to_string();
        bm.bet_stopped = false;
        let mut reason = ChangeReason::FeedOdds;
        match m.status {
            UofMarketStatus::Active => bm.provider_open = true,
            UofMarketStatus::Settled | UofMarketStatus::Cancelled => {
                bm.provider_open = false;
                bm.view.status = MarketStatus::Closed;
                self.emit(&mid, ChangeReason::ProviderClosed, ts, out);
                return;
            }
            _ => {
                bm.provider_open = false;
                reason = ChangeReason::ProviderSuspended;
            }
        }
        if !sels.is_empty() {
            // Merge: outcomes absent from this message keep their previous state.
            for s in sels {
                match bm.selections.iter_mut().find(|x| x.outcome == s.outcome) {
                    Some(x) => *x = s,
                    None => bm.selections.push(s),
                }
            }
            bm.selections.sort_by_key(|s| s.outcome);
            let priced = self.reprice(&mid);
            if let Err(r) = priced {
                reason = r;
            }
        }
        self.settle_status(&mid, reason, ts, out);
    }

    /// Recompute offered prices from the reference odds/probabilities with the policy.
    /// On failure the market is blocked (kept shut) with the returned reason.
    fn reprice(&mut self, mid: &MarketId) -> Result<(), ChangeReason> {
        let policy = &self.config.policy;
        let bm = self.markets.get_mut(mid).expect("caller holds the market");
        let active: Vec<usize> = (0..bm.selections.len())
            .filter(|i| bm.selections[*i].active)
            .collect();
        for s in &mut bm.selections {
            s.offered = None;
        }
        if active.iter().any(|i| {
            bm.selections[*i]
                .ref_milli
                .is_some_and(|m| m <= 1000 || m > PRICE_MILLI_MAX)
        }) {
            self.stats.impossible_price += 1;
            bm.blocked = Some(ChangeReason::ImpossiblePrice);
            return Err(ChangeReason::ImpossiblePrice);
        }
        if active.len() < 2 || active.iter().any(|i| bm.selections[*i].ref_milli.is_none()) {
            bm.blocked = Some(ChangeReason::IncompletePrices);
            return Err(ChangeReason::IncompletePrices);
        }
        let class = bm.view.kind.class();
        let winners = bm.view.kind.winners();
        let all_probs: Option<Vec<f64>> = active
            .iter()
            .map(|i| bm.selections[*i].probability)
            .collect();
        let priced = match all_probs {
            // Provider probabilities of the whole market: price them directly.
            Some(p)
                if active.len() == bm.selections.len()
                    && p.iter().all(|x| *x > 0.0 && *x < 1.0) =>
            {
                policy.price_market(class, &p, winners)
            }
            _ => {
                let odds: Vec<f64> = active
                    .iter()
                    .map(|i| bm.selections[*i].ref_milli.expect("checked") as f64 / 1000.0)
                    .collect();
                policy.reprice_odds(class, &odds, winners)
            }
        };
        match priced {
            Ok(prices) => {
                for (i, p) in active.iter().zip(prices) {
                    bm.selections[*i].offered = Some(p);
                }
                bm.blocked = None;
                Ok(())
            }
            Err(e) => {
                self.stats.pricing_failed += 1;
                let r = ChangeReason::PricingFailed {
                    detail: e.to_string(),
                };
                bm.blocked = Some(r.clone());
                Err(r)
            }
        }
    }

    /// Decide the status a market should have now, apply it, and emit a change if the view
    /// (status or prices) differs from what was last published.
    fn settle_status(
        &mut self,
        mid: &MarketId,
        reason: ChangeReason,
        ts: UnixMillis,
        out: &mut Ingested,
    ) {
        let Some(bm) = self.markets.get(mid) else {
            return;
        };
        let producer_up = self.producers.get(&bm.view.producer).is_some_and(|p| p.up);
        let current = bm.view.status;
        if !matches!(current, MarketStatus::Open | MarketStatus::Suspended) {
            return;
        }
        let offerable = bm.blocked.is_none()
            && bm
                .selections
                .iter()
                .filter(|s| s.active)
                .all(|s| s.offered.is_some_and(|p| p.milli() > 1000))
            && bm.selections.iter().filter(|s| s.offered.is_some()).count() >= 2;
        let want_open = producer_up && bm.provider_open && !bm.bet_stopped && offerable;
        let status = if want_open {
            MarketStatus::Open
        } else {
            MarketStatus::Suspended
        };
        let selections: Vec<SelectionView> = bm
            .selections
            .iter()
            .map(|s| SelectionView {
                selection_id: Market::selection_id_for(mid, s.outcome),
                outcome: s.outcome,
                price: if s.active { s.offered } else { None },
            })
            .collect();
        let bm = self.markets.get_mut(mid).expect("present");
        if bm.view.status == status && bm.view.selections == selections {
            return; // nothing visible changed (e.g. bet_stop on an already suspended market)
        }
        bm.view.status = status;
        bm.view.selections = selections;
        // A shut market reports why it is shut rather than "feed odds".
        let reason = if status == MarketStatus::Suspended && reason == ChangeReason::FeedOdds {
            if !producer_up {
                ChangeReason::ProducerLost
            } else if let Some(b) = bm.blocked.clone() {
                b
            } else if !bm.provider_open {
                ChangeReason::ProviderSuspended
            } else {
                ChangeReason::BetStop
            }
        } else {
            reason
        };
        self.emit(mid, reason, ts, out);
    }

    fn emit(&mut self, mid: &MarketId, reason: ChangeReason, ts: UnixMillis, out: &mut Ingested) {
        let bm = self.markets.get(mid).expect("present");
        out.changes.push(OddsChanged {
            odds_seq: self.next_seq,
            reason,
            source_ts: ts,
            market: bm.view.clone(),
        });
        self.next_seq += 1;
    }

    fn producer_down(
        &mut self,
        producer: &str,
        reason: ChangeReason,
        at: UnixMillis,
        out: &mut Ingested,
    ) {
        let Some(p) = self.producers.get_mut(producer) else {
            return;
        };
        if !p.up {
            return;
        }
        p.up = false;
        // A new outage needs a new request (from the last good alive).
        p.pending_recovery = None;
        out.producers.push(ProducerChanged {
            producer: producer.to_string(),
            up: false,
            reason: reason.clone(),
            at,
        });
        let ids: Vec<MarketId> = self
            .markets
            .iter()
            .filter(|(_, m)| m.view.producer == producer && m.view.status == MarketStatus::Open)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.markets.get_mut(&id).expect("present").view.status = MarketStatus::Suspended;
            self.emit(&id, reason.clone(), at, out);
        }
    }

    /// Check producers' alive bounds at local time `now`: any producer silent for longer than
    /// `alive_timeout_ms` goes down and its markets are suspended.
    pub fn tick(&mut self, now: UnixMillis) -> Ingested {
        let mut out = Ingested::default();
        let silent: Vec<String> = self
            .producers
            .iter()
            .filter(|(_, p)| {
                p.up && p
                    .last_alive
                    .is_none_or(|t| now.0 - t.0 > self.config.alive_timeout_ms)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for p in silent {
            self.producer_down(&p, ChangeReason::ProducerSilent, now, &mut out);
        }
        if let Some(retry_ms) = self.config.recovery_retry_ms {
            for (name, p) in self.producers.iter_mut() {
                let Some(product) = name.strip_prefix("uof:").and_then(|n| n.parse().ok()) else {
                    continue;
                };
                if p.up
                    || p.pending_recovery
                        .is_some_and(|(_, at)| now.0 - at.0 < retry_ms)
                {
                    continue;
                }
                let request_id = (self.last_request_id + 1).max(now.0.max(0) as u64);
                self.last_request_id = request_id;
                p.pending_recovery = Some((request_id, now));
                out.recovery_requests.push(RecoveryRequest {
                    product,
                    request_id,
                    after: p
                        .last_good_alive
                        .filter(|t| now.0 - t.0 <= RECOVERY_AFTER_MAX_MS),
                });
            }
        }
        self.stats.updates += out.changes.len() as u64;
        out
    }

    // ---------------------------------------------------------------- Betfair

    /// Parse and apply one Betfair Stream API message received at local time `now`.
    /// `historical`: the message comes from a recorded historical-data file, whose records are
    /// complete market states; the stream itself only counts as recovered after an image.
    pub fn ingest_betfair(
        &mut self,
        raw: &[u8],
        now: UnixMillis,
        historical: bool,
    ) -> Result<Ingested, Skip> {
        self.stats.received += 1;
        let msg = match betfair::parse(raw) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(Skip::Malformed(e.to_string()));
            }
        };
        let r = self.apply_betfair(&msg, digest(raw), now, historical);
        self.count(&r);
        r
    }

    fn apply_betfair(
        &mut self,
        msg: &BetfairMessage,
        dig: u64,
        now: UnixMillis,
        historical: bool,
    ) -> Result<Ingested, Skip> {
        const P: &str = "betfair";
        let mut out = Ingested::default();
        let mcm = match msg {
            BetfairMessage::Connection { .. } => return Ok(out),
            BetfairMessage::Status {
                connection_closed, ..
            } => {
                if *connection_closed {
                    self.producer_down(P, ChangeReason::ProducerLost, now, &mut out);
                }
                return Ok(out);
            }
            BetfairMessage::Mcm(m) => m,
        };
        if let Some(p) = self.producers.get_mut(P) {
            p.last_alive = Some(now);
        }
        if mcm.change_type == ChangeType::Heartbeat {
            return Ok(out);
        }
        let image = matches!(
            mcm.change_type,
            ChangeType::SubImage | ChangeType::ResubDelta
        ) || historical;
        let mut any_known = mcm.markets.is_empty();
        for mc in &mcm.markets {
            let key = format!("bf:{}", mc.market_id);
            // Only markets the book holds (or is about to, by definition) are ordered, so a
            // stray delta before the image cannot block the image.
            let ordered = mc.definition.is_some() || self.bf_markets.contains_key(&key);
            if let Err(e) = if ordered {
                self.check_order(key, mcm.pt, dig)
            } else {
                Ok(())
            } {
                if mcm.markets.len() == 1 {
                    return Err(e);
                }
                match e {
                    Skip::Duplicate => self.stats.duplicate += 1,
                    _ => self.stats.out_of_order += 1,
                }
                continue;
            }
            if self.betfair_market(mc, mcm.pt, &mut out) {
                any_known = true;
            }
        }
        if image && !self.producer_up(P) {
            self.producers.get_mut(P).expect("always present").up = true;
            out.producers.push(ProducerChanged {
                producer: P.into(),
                up: true,
                reason: ChangeReason::RecoveryComplete,
                at: mcm.pt,
            });
            let ids: Vec<MarketId> = self
                .markets
                .iter()
                .filter(|(_, m)| m.view.producer == P)
                .map(|(k, _)| k.clone())
                .collect();
            for id in ids {
                self.settle_status(&id, ChangeReason::RecoveryComplete, mcm.pt, &mut out);
            }
        }
        if !any_known {
            return Err(Skip::UnknownMarket);
        }
        Ok(out)
    }

    /// Map a Betfair market onto the book (by its definition) and apply runner changes.
    /// Returns false if the market is unknown (no definition seen, unsupported type).
    fn betfair_market(
        &mut self,
        mc: &betfair::MarketChange,
        pt: UnixMillis,
        out: &mut Ingested,
    ) -> bool {
        let key = format!("bf:{}", mc.market_id);
        let mid = match (&mc.definition, self.bf_index(&key)) {
            (Some(d), _) => {
                let kind = match d.market_type.as_deref() {
                    Some("WIN") => {
                        // Place terms from the declared field (fixed when the market is first
                        // seen); a handicap is named "… Hcap"/"… Handicap" by Betfair.
                        let runners = d
                            .runners
                            .iter()
                            .filter(|r| r.status == RunnerStatus::Active)
                            .count();
                        let name = d.name.as_deref().unwrap_or("");
                        let handicap = name.contains("Hcap") || name.contains("Handicap");
                        MarketKind::RaceWin {
                            each_way: standard_terms(runners, handicap),
                        }
                    }
                    Some("PLACE") if (1..=10).contains(&d.number_of_winners) => {
                        MarketKind::RacePlace {
                            places: d.number_of_winners as u8,
                        }
                    }
                    _ => {
                        self.stats.unknown_market += 1;
                        out.market_skips.push(format!(
                            "betfair market {} type {:?}",
                            mc.market_id, d.market_type
                        ));
                        return false;
                    }
                };
                let ev = format!(
                    "bf:{}:{}",
                    d.event_id.as_deref().unwrap_or("0"),
                    d.market_time.as_deref().unwrap_or("")
                );
                let Ok(event_id) = EventId::new(ev) else {
                    self.stats.unknown_market += 1;
                    return false;
                };
                let mid = Market::market_id_for(&event_id, &kind);
                self.apply_definition(&key, &mid, event_id, kind, d, pt, out);
                mid
            }
            (None, Some(mid)) => mid,
            (None, None) => {
                self.stats.unknown_market += 1;
                out.market_skips.push(format!(
                    "betfair market {} has no definition yet",
                    mc.market_id
                ));
                return false;
            }
        };
        if !mc.runners.is_empty() {
            let bm = self.markets.get_mut(&mid).expect("definition applied");
            for rc in &mc.runners {
                let outcome = Outcome::Runner {
                    id: rc.selection_id,
                };
                let Some(s) = bm.selections.iter_mut().find(|s| s.outcome == outcome) else {
                    continue;
                };
                // Reference price: best available to back, else best of the full ladder, else
                // last traded (historical BASIC files carry only ltp).
                let best = rc
                    .best_back
                    .iter()
                    .find(|l| l.level == Some(0) && l.size_minor > 0)
                    .map(|l| l.price_milli)
                    .or_else(|| {
                        rc.back
                            .iter()
                            .filter(|l| l.size_minor > 0)
                            .map(|l| l.price_milli)
                            .max()
                    });
                if let Some(p) = best.or(rc.last_traded_milli.filter(|m| *m > 1000)) {
                    s.ref_milli = Some(p);
                }
            }
            let reason = match self.reprice(&mid) {
                Ok(()) => ChangeReason::FeedOdds,
                Err(r) => r,
            };
            self.settle_status(&mid, reason, pt, out);
        }
        true
    }

    fn bf_index(&self, key: &str) -> Option<MarketId> {
        self.bf_markets.get(key).cloned()
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_definition(
        &mut self,
        key: &str,
        mid: &MarketId,
        event_id: EventId,
        kind: MarketKind,
        d: &betfair::MarketDefinition,
        pt: UnixMillis,
        out: &mut Ingested,
    ) {
        self.bf_markets.insert(key.to_string(), mid.clone());
        let bm = self
            .markets
            .entry(mid.clone())
            .or_insert_with(|| BookMarket {
                view: MarketView {
                    market_id: mid.clone(),
                    event_id,
                    kind,
                    status: MarketStatus::Suspended,
                    in_play: d.in_play,
                    producer: "betfair".into(),
                    selections: Vec::new(),
                },
                selections: Vec::new(),
                provider_open: false,
                bet_stopped: false,
                blocked: None,
            });
        bm.view.in_play = d.in_play;
        bm.provider_open = d.status == MarketDefStatus::Open;
        let mut non_runners = Vec::new();
        for r in &d.runners {
            let outcome = Outcome::Runner { id: r.selection_id };
            let pos = bm.selections.iter().position(|s| s.outcome == outcome);
            match (r.status, pos) {
                (
                    RunnerStatus::Removed | RunnerStatus::RemovedVacant | RunnerStatus::Hidden,
                    Some(i),
                ) => {
                    bm.selections.remove(i);
                    non_runners.push((r.selection_id, r.adjustment_factor_bp));
                }
                (
                    RunnerStatus::Removed | RunnerStatus::RemovedVacant | RunnerStatus::Hidden,
                    None,
                ) => {}
                (_, None) => bm.selections.push(BookSelection {
                    outcome,
                    feed_key: format!("{key}:{}", r.selection_id),
                    ref_milli: None,
                    probability: None,
                    active: true,
                    offered: None,
                }),
                (_, Some(_)) => {}
            }
        }
        let status = bm.view.status;
        let closed = d.status == MarketDefStatus::Closed;
        let settled = closed && d.runners.iter().any(|r| r.status == RunnerStatus::Winner);
        for (runner_id, adjustment_factor_bp) in non_runners {
            let _ = self.reprice(mid);
            let bm = self.markets.get_mut(mid).expect("present");
            bm.view
                .selections
                .retain(|s| s.outcome != Outcome::Runner { id: runner_id });
            // Suspend for the withdrawal; the market reopens when repriced odds arrive.
            if bm.view.status == MarketStatus::Open {
                bm.view.status = MarketStatus::Suspended;
            }
            self.emit(
                mid,
                ChangeReason::NonRunner {
                    runner_id,
                    adjustment_factor_bp,
                },
                pt,
                out,
            );
        }
        if closed {
            let bm = self.markets.get_mut(mid).expect("present");
            if matches!(status, MarketStatus::Open | MarketStatus::Suspended) {
                bm.view.status = MarketStatus::Closed;
                self.emit(mid, ChangeReason::ProviderClosed, pt, out);
            }
            let bm = self.markets.get_mut(mid).expect("present");
            if settled && bm.view.status.can_become(MarketStatus::Settled) {
                bm.view.status = MarketStatus::Settled;
                self.emit(mid, ChangeReason::Settled, pt, out);
            }
        } else {
            self.settle_status(mid, ChangeReason::FeedOdds, pt, out);
        }
    }
}

#[cfg(test)]
mod tests;
