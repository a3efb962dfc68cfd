//! Parser for Betfair Exchange Stream API messages: `connection`, `status` and market change
//! messages (`op=mcm`) with market definitions, runner states (including non-runners with
//! status `REMOVED`, their adjustment factors and removal dates), best-available and full
//! price ladders, last traded price and BSP. Historical-data files (one `mcm` per line) use
//! the same format.
//!
//! JSON numbers arrive as binary floats; prices and sizes are converted once, at this
//! boundary, to exact integers: a value within 1e-6 of a thousandth (all real Betfair ladder
//! prices) becomes that thousandth, anything else (unrounded BSP such as 9.9089…) is rounded
//! **down**. Sizes become minor units (pence), adjustment factors hundredths of a percent.

use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};

pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BetfairError {
    #[error("message of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("{field}: {detail}")]
    Invalid { field: &'static str, detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeType {
    SubImage,
    ResubDelta,
    Heartbeat,
    /// No `ct`: an ordinary delta.
    Delta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MarketDefStatus {
    Inactive,
    Open,
    Suspended,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunnerStatus {
    Active,
    Winner,
    Loser,
    Placed,
    /// A non-runner: bets on it are void and the others' matched prices are reduced by its
    /// adjustment factor.
    Removed,
    RemovedVacant,
    Hidden,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerDefinition {
    pub selection_id: u64,
    pub status: RunnerStatus,
    /// Betfair's reduction factor in hundredths of a percent (7.14 % → 714).
    pub adjustment_factor_bp: Option<u32>,
    pub bsp_milli: Option<u64>,
    pub removal_date: Option<String>,
    pub sort_priority: Option<u32>,
    pub name: Option<String>,
    /// Handicap in thousandths (0 for win markets).
    pub handicap_milli: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketDefinition {
    pub event_id: Option<String>,
    pub event_type_id: Option<String>,
    pub market_type: Option<String>,
    pub status: MarketDefStatus,
    pub in_play: bool,
    pub bet_delay_secs: u32,
    pub number_of_winners: u32,
    pub number_of_active_runners: Option<u32>,
    pub market_time: Option<String>,
    pub bsp_reconciled: bool,
    pub complete: bool,
    pub version: Option<u64>,
    pub name: Option<String>,
    pub venue: Option<String>,
    pub country_code: Option<String>,
    pub runners: Vec<RunnerDefinition>,
}

impl MarketDefinition {
    /// Sum of the adjustment factors of runners withdrawn (status `REMOVED`), in hundredths of
    /// a percent: the exchange's own reduction applied to bets matched before the withdrawals.
    pub fn removed_adjustment_bp(&self) -> u32 {
        self.runners
            .iter()
            .filter(|r| r.status == RunnerStatus::Removed)
            .filter_map(|r| r.adjustment_factor_bp)
            .sum()
    }
}

/// One price level: `level` is present only on best-available (`batb`, `batl`) ladders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    pub level: Option<u32>,
    pub price_milli: u64,
    /// Size in minor units; 0 removes the level.
    pub size_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunnerChange {
    pub selection_id: u64,
    pub handicap_milli: i64,
    pub last_traded_milli: Option<u64>,
    pub traded_volume_minor: Option<i64>,
    pub best_back: Vec<Level>,
    pub best_lay: Vec<Level>,
    pub back: Vec<Level>,
    pub lay: Vec<Level>,
    pub traded: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketChange {
    pub market_id: String,
    /// `img`: this change replaces the market's whole cached state.
    pub image: bool,
    pub conflated: bool,
    pub definition: Option<MarketDefinition>,
    pub runners: Vec<RunnerChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketChangeMessage {
    pub id: Option<u64>,
    pub clk: Option<String>,
    pub initial_clk: Option<String>,
    /// Publish time.
    pub pt: UnixMillis,
    pub change_type: ChangeType,
    pub heartbeat_ms: Option<u64>,
    pub markets: Vec<MarketChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BetfairMessage {
    Connection {
        connection_id: String,
    },
    Status {
        status_code: String,
        connection_closed: bool,
        error_message: Option<String>,
    },
    Mcm(MarketChangeMessage),
}

// ---- raw serde shapes (floats live only here) ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMsg {
    op: Option<String>,
    id: Option<u64>,
    connection_id: Option<String>,
    status_code: Option<String>,
    #[serde(default)]
    connection_closed: bool,
    error_message: Option<String>,
    clk: Option<String>,
    initial_clk: Option<String>,
    pt: Option<i64>,
    ct: Option<String>,
    heartbeat_ms: Option<u64>,
    #[serde(default)]
    mc: Vec<RawMc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMc {
    id: String,
    #[serde(default)]
    img: bool,
    #[serde(default)]
    con: bool,
    market_definition: Option<RawDef>,
    #[serde(default)]
    rc: Vec<RawRc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDef {
    event_id: Option<String>,
    event_type_id: Option<String>,
    market_type: Option<String>,
    status: MarketDefStatus,
    #[serde(default)]
    in_play: bool,
    #[serde(default)]
    bet_delay: u32,
    #[serde(default)]
    number_of_winners: u32,
    number_of_active_runners: Option<u32>,
    market_time: Option<String>,
    #[serde(default)]
    bsp_reconciled: bool,
    #[serde(default)]
    complete: bool,
    version: Option<u64>,
    name: Option<String>,
    venue: Option<String>,
    country_code: Option<String>,
    #[serde(default)]
    runners: Vec<RawRunnerDef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRunnerDef {
    id: u64,
    status: RunnerStatus,
    adjustment_factor: Option<f64>,
    bsp: Option<RawNum>,
    removal_date: Option<String>,
    sort_priority: Option<u32>,
    name: Option<String>,
    hc: Option<f64>,
}

/// BSP is a number, or the string "NaN"/"Infinity" before reconciliation in some files.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawNum {
    Num(f64),
    Text(#[allow(dead_code)] String),
}

#[derive(Deserialize)]
struct RawRc {
    id: u64,
    hc: Option<f64>,
    ltp: Option<f64>,
    tv: Option<f64>,
    batb: Option<Vec<Vec<f64>>>,
    batl: Option<Vec<Vec<f64>>>,
    atb: Option<Vec<Vec<f64>>>,
    atl: Option<Vec<Vec<f64>>>,
    trd: Option<Vec<Vec<f64>>>,
}

fn invalid(field: &'static str, detail: impl Into<String>) -> BetfairError {
    BetfairError::Invalid {
        field,
        detail: detail.into(),
    }
}

/// `x` in units of 1/`scale`, exact when `x` is within 1e-6 of a multiple, else rounded down.
fn scaled(field: &'static str, x: f64, scale: f64, max: f64) -> Result<i64, BetfairError> {
    if !x.is_finite() || x.abs() > max {
        return Err(invalid(
            field,
            format!("{x} is not a finite value within ±{max}"),
        ));
    }
    let v = x * scale;
    let r = v.round();
    Ok(if (v - r).abs() < 1e-6 { r } else { v.floor() } as i64)
}

fn price_milli(field: &'static str, x: f64) -> Result<u64, BetfairError> {
    let m = scaled(field, x, 1000.0, 1e7)?;
    u64::try_from(m).map_err(|_| invalid(field, format!("negative price {x}")))
}

fn ladder(
    field: &'static str,
    rows: Option<Vec<Vec<f64>>>,
    leveled: bool,
) -> Result<Vec<Level>, BetfairError> {
    let Some(rows) = rows else {
        return Ok(Vec::new());
    };
    rows.into_iter()
        .map(|row| {
            let (level, p, s) = match (leveled, row.as_slice()) {
                (true, [l, p, s]) => (Some(*l), *p, *s),
                (false, [p, s]) => (None, *p, *s),
                _ => {
                    return Err(invalid(
                        field,
                        format!("ladder row has {} numbers", row.len()),
                    ));
                }
            };
            let level = match level {
                Some(l) if l.fract() == 0.0 && (0.0..=1000.0).contains(&l) => Some(l as u32),
                Some(l) => return Err(invalid(field, format!("bad ladder level {l}"))),
                None => None,
            };
            let size_minor = scaled(field, s, 100.0, 1e12)?;
            if size_minor < 0 {
                return Err(invalid(field, format!("negative size {s}")));
            }
            Ok(Level {
                level,
                price_milli: price_milli(field, p)?,
                size_minor,
            })
        })
        .collect()
}

fn convert_def(d: RawDef) -> Result<MarketDefinition, BetfairError> {
    let runners = d
        .runners
        .into_iter()
        .map(|r| {
            let adjustment_factor_bp = match r.adjustment_factor {
                None => None,
                Some(a) => {
                    let bp = scaled("adjustmentFactor", a, 100.0, 100.0)?;
                    Some(
                        u32::try_from(bp)
                            .map_err(|_| invalid("adjustmentFactor", format!("{a}")))?,
                    )
                }
            };
            let bsp_milli = match r.bsp {
                Some(RawNum::Num(b)) => Some(price_milli("bsp", b)?),
                // "NaN"/"Infinity": not reconciled yet.
                Some(RawNum::Text(_)) | None => None,
            };
            Ok(RunnerDefinition {
                selection_id: r.id,
                status: r.status,
                adjustment_factor_bp,
                bsp_milli,
                removal_date: r.removal_date,
                sort_priority: r.sort_priority,
                name: r.name,
                handicap_milli: scaled("hc", r.hc.unwrap_or(0.0), 1000.0, 1e4)?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MarketDefinition {
        event_id: d.event_id,
        event_type_id: d.event_type_id,
        market_type: d.market_type,
        status: d.status,
        in_play: d.in_play,
        bet_delay_secs: d.bet_delay,
        number_of_winners: d.number_of_winners,
        number_of_active_runners: d.number_of_active_runners,
        market_time: d.market_time,
        bsp_reconciled: d.bsp_reconciled,
        complete: d.complete,
        version: d.version,
        name: d.name,
        venue: d.venue,
        country_code: d.country_code,
        runners,
    })
}

/// Parse one Stream API message (one line of a historical-data file).
pub fn parse(json: &[u8]) -> Result<BetfairMessage, BetfairError> {
    if json.len() > MAX_MESSAGE_BYTES {
        return Err(BetfairError::TooLarge(json.len()));
    }
    let raw: RawMsg =
        serde_json::from_slice(json).map_err(|e| BetfairError::Json(e.to_string()))?;
    let op = raw.op.as_deref().ok_or_else(|| invalid("op", "missing"))?;
    match op {
        "connection" => Ok(BetfairMessage::Connection {
            connection_id: raw
                .connection_id
                .ok_or_else(|| invalid("connectionId", "missing"))?,
        }),
        "status" => Ok(BetfairMessage::Status {
            status_code: raw
                .status_code
                .ok_or_else(|| invalid("statusCode", "missing"))?,
            connection_closed: raw.connection_closed,
            error_message: raw.error_message,
        }),
        "mcm" => {
            let change_type = match raw.ct.as_deref() {
                None => ChangeType::Delta,
                Some("SUB_IMAGE") => ChangeType::SubImage,
                Some("RESUB_DELTA") => ChangeType::ResubDelta,
                Some("HEARTBEAT") => ChangeType::Heartbeat,
                Some(other) => return Err(invalid("ct", format!("unknown change type {other:?}"))),
            };
            let markets = raw
                .mc
                .into_iter()
                .map(|mc| {
                    if mc.id.is_empty() || mc.id.len() > 64 {
                        return Err(invalid("mc.id", "empty or longer than 64 characters"));
                    }
                    Ok(MarketChange {
                        market_id: mc.id,
                        image: mc.img,
                        conflated: mc.con,
                        definition: mc.market_definition.map(convert_def).transpose()?,
                        runners: mc
                            .rc
                            .into_iter()
                            .map(|rc| {
                                Ok(RunnerChange {
                                    selection_id: rc.id,
                                    handicap_milli: scaled(
                                        "hc",
                                        rc.hc.unwrap_or(0.0),
                                        1000.0,
                                        1e4,
                                    )?,
                                    last_traded_milli: rc
                                        .ltp
                                        .map(|p| price_milli("ltp", p))
                                        .transpose()?,
                                    traded_volume_minor: rc
                                        .tv
                                        .map(|v| scaled("tv", v, 100.0, 1e12))
                                        .transpose()?,
                                    best_back: ladder("batb", rc.batb, true)?,
                                    best_lay: ladder("batl", rc.batl, true)?,
                                    back: ladder("atb", rc.atb, false)?,
                                    lay: ladder("atl", rc.atl, false)?,
                                    traded: ladder("trd", rc.trd, false)?,
                                })
                            })
                            .collect::<Result<Vec<_>, BetfairError>>()?,
                    })
                })
                .collect::<Result<Vec<_>, BetfairError>>()?;
            Ok(BetfairMessage::Mcm(MarketChangeMessage {
                id: raw.id,
                clk: raw.clk,
                initial_clk: raw.initial_clk,
                pt: UnixMillis(raw.pt.ok_or_else(|| invalid("pt", "missing"))?),
                change_type,
                heartbeat_ms: raw.heartbeat_ms,
                markets,
            }))
        }
        other => Err(BetfairError::UnknownOp(other.chars().take(32).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> String {
        let p = format!("{}/../fixtures/betfair/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }
    fn mcm(s: &str) -> MarketChangeMessage {
        match parse(s.as_bytes()).unwrap() {
            BetfairMessage::Mcm(m) => m,
            other => panic!("not mcm: {other:?}"),
        }
    }

    #[test]
    fn protocol_samples() {
        assert!(matches!(
            parse(fixture("betfairlightweight/streaming_connection.json").as_bytes()).unwrap(),
            BetfairMessage::Connection { .. }
        ));
        assert!(matches!(
            parse(fixture("betfairlightweight/streaming_status.json").as_bytes()).unwrap(),
            BetfairMessage::Status {
                connection_closed: false,
                ..
            }
        ));
        let hb = mcm(&fixture("betfairlightweight/streaming_mcm_HEARTBEAT.json"));
        assert_eq!(hb.change_type, ChangeType::Heartbeat);
        let img = mcm(&fixture("betfairlightweight/streaming_mcm_SUB_IMAGE.json"));
        assert_eq!(img.change_type, ChangeType::SubImage);
        let d = img.markets[0].definition.as_ref().unwrap();
        assert_eq!(d.runners.len(), 7);
        assert_eq!(d.runners[0].adjustment_factor_bp, Some(4432)); // 44.323 % → floor
        assert_eq!(d.status, MarketDefStatus::Open);
        let up = mcm(&fixture("betfairlightweight/streaming_mcm_update.json"));
        assert_eq!(up.change_type, ChangeType::Delta);
        let rc = &up.markets[0].runners[0];
        assert_eq!(rc.selection_id, 11527192);
        assert_eq!(
            rc.best_back[0],
            Level {
                level: Some(0),
                price_milli: 4700,
                size_minor: 433
            }
        );
        let resub = mcm(&fixture(
            "betfairlightweight/streaming_mcm_RESUB_DELTA.json",
        ));
        assert_eq!(resub.change_type, ChangeType::ResubDelta);
        assert!(resub.markets.iter().all(|m| m.conflated));
        assert_eq!(resub.markets[0].runners[0].best_lay[0].price_milli, 2740);
    }

    #[test]
    fn hamilton_race_non_runners() {
        let file = fixture("betfairlightweight/BASIC-1.132153978");
        let msgs: Vec<MarketChangeMessage> = file.lines().map(mcm).collect();
        assert_eq!(msgs.len(), 480);
        let last_def = msgs
            .iter()
            .rev()
            .find_map(|m| m.markets[0].definition.clone())
            .unwrap();
        assert_eq!(last_def.status, MarketDefStatus::Closed);
        assert!(last_def.bsp_reconciled);
        let removed: Vec<_> = last_def
            .runners
            .iter()
            .filter(|r| r.status == RunnerStatus::Removed)
            .map(|r| (r.selection_id, r.adjustment_factor_bp))
            .collect();
        assert_eq!(removed, vec![(11198538, Some(714)), (9606433, Some(555))]);
        assert_eq!(last_def.removed_adjustment_bp(), 1269);
        let winner = last_def
            .runners
            .iter()
            .find(|r| r.status == RunnerStatus::Winner)
            .unwrap();
        assert_eq!(
            (winner.selection_id, winner.bsp_milli),
            (12115648, Some(4150))
        );
        // The first withdrawal is on line 72.
        let first_removed =
            msgs.iter()
                .position(|m| {
                    m.markets[0].definition.as_ref().is_some_and(|d| {
                        d.runners.iter().any(|r| r.status == RunnerStatus::Removed)
                    })
                })
                .unwrap();
        assert_eq!(first_removed + 1, 72);
    }

    #[test]
    fn place_market_full_ladders() {
        let file = fixture("flumine/1.197931751");
        let msgs: Vec<MarketChangeMessage> = file.lines().map(mcm).collect();
        let d = msgs[0].markets[0].definition.as_ref().unwrap();
        assert_eq!(d.market_type.as_deref(), Some("PLACE"));
        assert_eq!(d.number_of_winners, 2);
        assert!(!msgs[0].markets[0].runners[0].back.is_empty());
        let last = msgs.last().unwrap().markets[0].definition.as_ref().unwrap();
        let placed: Vec<u64> = last
            .runners
            .iter()
            .filter(|r| r.status == RunnerStatus::Winner)
            .map(|r| r.selection_id)
            .collect();
        assert_eq!(placed.len(), 2);
    }

    #[test]
    fn bad_input_is_typed() {
        for bad in [
            "",
            "{",
            "[]",
            "{}",
            r#"{"op":"nope"}"#,
            r#"{"op":"mcm"}"#,
            r#"{"op":"mcm","pt":1,"ct":"WHAT"}"#,
            r#"{"op":"mcm","pt":1,"mc":[{"id":"1.1","rc":[{"id":1,"batb":[[0,2.5]]}]}]}"#,
            r#"{"op":"mcm","pt":1,"mc":[{"id":"1.1","rc":[{"id":1,"atb":[[-2.5,3]]}]}]}"#,
            r#"{"op":"mcm","pt":1,"mc":[{"id":"1.1","rc":[{"id":1,"atb":[[2.5,-3]]}]}]}"#,
            r#"{"op":"mcm","pt":1,"mc":[{"id":"1.1","marketDefinition":{"status":"WEIRD"}}]}"#,
            r#"{"op":"mcm","pt":1,"mc":[{"id":"1.1","marketDefinition":{"status":"OPEN","runners":[{"id":1,"status":"ACTIVE","adjustmentFactor":150}]}}]}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = parse(s.as_bytes());
        }
        #[test]
        fn ladder_prices_are_exact(cents in 101u64..100_000) {
            let price = cents as f64 / 100.0;
            let s = format!(r#"{{"op":"mcm","pt":1,"mc":[{{"id":"1.1","rc":[{{"id":1,"atb":[[{price},1]]}}]}}]}}"#);
            let m = mcm(&s);
            prop_assert_eq!(m.markets[0].runners[0].back[0].price_milli, cents * 10);
        }
    }
}
