//! `[odds]` section of the node configuration: producers, alive bound, the jurisdiction's
//! pricing policy (target margin per market class, method, maximum price) and the feed sources (files, WebSocket URLs). Every field has a safe default, so a
//! node without the section still ingests pushed feeds with a 5 % margin.

use outpost_core::ids::Jurisdiction;
use outpost_core::pricing::margin::MarginMethod;
use outpost_core::pricing::policy::{MarginTarget, PricingPolicy};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OddsConfig {
    /// UOF producers (products) subscribed to: 1 = live odds, 3 = pre-match.
    pub uof_products: Vec<u32>,
    /// A producer silent longer than this is down (UOF sends alive every 10 s).
    pub alive_timeout_ms: i64,
    /// How often the alive bound is checked.
    pub tick_ms: u64,
    /// Target overround in basis points for classes without an override.
    pub margin_bp: u32,
    pub margin_method: MarginMethod,
    /// Per market class (`1x2`, `ou`, `ah`, `correct_score`, `btts`, `win`, `place`, …).
    pub margin_by_class: BTreeMap<String, MarginTarget>,
    /// Offered prices are capped here (thousandths; 500000 = 500.0).
    pub max_price_milli: u64,
    pub queue_capacity: usize,
    /// Published batches (the changes made durable together) buffered per stream client
    /// before it must resync.
    pub stream_buffer: usize,
    /// Threads writing published changes to the stream connections (`fanout.rs`); each
    /// serves a share of the clients. One is enough on a 2-core node (a second measured no
    /// clear gain there); more help where cores are free while a round is written.
    pub stream_fanout_threads: usize,
    pub files: Vec<FileSource>,
    pub websockets: Vec<WsSource>,
    /// The provider's recovery API: when set, the node requests UOF recoveries itself.
    pub uof_api: Option<super::recovery::UofApiConfig>,
    /// Filled in from the node's jurisdiction.
    #[serde(skip)]
    pub jurisdiction: Option<Jurisdiction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// One UOF XML message per line.
    Uof,
    /// One Betfair Stream API message per line (live stream recording).
    Betfair,
    /// A Betfair historical-data file.
    BetfairHistorical,
}

/// Messages in a file, fed once at start-up, one per line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub path: PathBuf,
    pub format: SourceFormat,
}

/// A provider WebSocket the node connects to; every text frame is one message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSource {
    pub url: String,
    pub format: SourceFormat,
}

impl Default for OddsConfig {
    fn default() -> Self {
        OddsConfig {
            uof_products: vec![1, 3],
            alive_timeout_ms: 20_000,
            tick_ms: 1_000,
            margin_bp: 500,
            margin_method: MarginMethod::Shin,
            margin_by_class: BTreeMap::new(),
            max_price_milli: 500_000,
            queue_capacity: 65_536,
            stream_buffer: 65_536,
            stream_fanout_threads: 1,
            files: Vec::new(),
            websockets: Vec::new(),
            uof_api: None,
            jurisdiction: None,
        }
    }
}

impl OddsConfig {
    pub fn policy(&self) -> PricingPolicy {
        PricingPolicy {
            jurisdiction: self
                .jurisdiction
                .clone()
                .unwrap_or_else(|| Jurisdiction::new("XX").expect("valid")),
            default: MarginTarget {
                margin_bp: self.margin_bp,
                method: self.margin_method,
            },
            by_class: self.margin_by_class.clone(),
            max_price_milli: self.max_price_milli,
        }
    }
}
