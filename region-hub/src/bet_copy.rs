//! The compact copy of a `bet_placed` record that the settle pass reads (`event_bets`,
//! migration 5 in `db.rs`).
//!
//! Why: settling a final result used to join three tables per bet and decode each bet's full
//! signed frame and JSON payload; at a million bets that read and decode cost more than the
//! settling itself (`docs/benchmarks.md`, "Settlement"). At intake the hub now also writes each
//! bet, once per event it has a leg on, in this small binary form, clustered by event: a
//! result's bets are one sequential range scan away and decode without a JSON parser.
//!
//! The copy is derived data: the `bet_placed` record stays the truth, and [`encode`] /
//! [`decode`] round-trip every field of [`BetPlaced`] (tested). Layout (version 1), integers
//! little endian, a string is a u16 byte length then UTF-8:
//! `1u8, bet_id, player_id, currency, stake_minor i64, potential_payout_minor i64,
//! each_way u8, idem key, idem request_sha256, legs u8, legs × (selection_id, market_id,
//! event_id, kind JSON, outcome JSON, price milli u64)`.
//! A leg's market kind and outcome are kept as their (short) JSON, which is stable and
//! covers every variant; a [`Decoder`] parses each distinct one once and then reuses it.

use outpost_core::edge::events::{BetLeg, BetPlaced, IdemTag};
use outpost_core::ids::{BetId, EventId, IdemKey, MarketId, PlayerId, SelectionId};
use outpost_core::market::{MarketKind, Outcome};
use outpost_core::money::Currency;
use outpost_core::price::Price;

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[error("compact bet copy: {0}")]
pub struct CopyError(String);

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), CopyError> {
    let n =
        u16::try_from(s.len()).map_err(|_| CopyError(format!("string of {} bytes", s.len())))?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// The compact copy of `bet`.
pub fn encode(bet: &BetPlaced) -> Result<Vec<u8>, CopyError> {
    let mut out = Vec::with_capacity(160 + 120 * bet.legs.len());
    out.push(VERSION);
    put_str(&mut out, bet.bet_id.as_str())?;
    put_str(&mut out, bet.player_id.as_str())?;
    put_str(&mut out, bet.currency.code())?;
    out.extend_from_slice(&bet.stake_minor.to_le_bytes());
    out.extend_from_slice(&bet.potential_payout_minor.to_le_bytes());
    out.push(u8::from(bet.each_way));
    put_str(&mut out, bet.idem.key.as_str())?;
    put_str(&mut out, &bet.idem.request_sha256)?;
    let n =
        u8::try_from(bet.legs.len()).map_err(|_| CopyError(format!("{} legs", bet.legs.len())))?;
    out.push(n);
    for leg in &bet.legs {
        put_str(&mut out, leg.selection_id.as_str())?;
        put_str(&mut out, leg.market_id.as_str())?;
        put_str(&mut out, leg.event_id.as_str())?;
        let kind = serde_json::to_string(&leg.kind).map_err(|e| CopyError(e.to_string()))?;
        put_str(&mut out, &kind)?;
        let outcome = serde_json::to_string(&leg.outcome).map_err(|e| CopyError(e.to_string()))?;
        put_str(&mut out, &outcome)?;
        out.extend_from_slice(&leg.price.milli().to_le_bytes());
    }
    Ok(out)
}

/// Reads compact copies; remembers the market kinds and outcomes it has parsed (a result's
/// bets share a handful of them).
#[derive(Default)]
pub struct Decoder {
    kinds: Vec<(Vec<u8>, MarketKind)>,
    outcomes: Vec<(Vec<u8>, Outcome)>,
}

/// Distinct kinds/outcomes remembered at most (beyond that they are parsed each time).
const CACHE_MAX: usize = 64;

fn cached<T: Clone + serde::de::DeserializeOwned>(
    cache: &mut Vec<(Vec<u8>, T)>,
    bytes: &[u8],
) -> Result<T, CopyError> {
    if let Some((_, v)) = cache.iter().find(|(k, _)| k.as_slice() == bytes) {
        return Ok(v.clone());
    }
    let v: T = serde_json::from_slice(bytes).map_err(|e| CopyError(e.to_string()))?;
    if cache.len() < CACHE_MAX {
        cache.push((bytes.to_vec(), v.clone()));
    }
    Ok(v)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CopyError> {
        if self.b.len() < n {
            return Err(CopyError("truncated".into()));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, CopyError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, CopyError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self) -> Result<&'a [u8], CopyError> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes"));
        self.take(usize::from(n))
    }
    fn str(&mut self) -> Result<&'a str, CopyError> {
        std::str::from_utf8(self.bytes()?).map_err(|e| CopyError(e.to_string()))
    }
}

fn id<T>(r: Result<T, outpost_core::ids::IdError>) -> Result<T, CopyError> {
    r.map_err(|e| CopyError(e.to_string()))
}

impl Decoder {
    /// The bet a compact copy holds.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<BetPlaced, CopyError> {
        let mut r = Reader { b: bytes };
        let v = r.u8()?;
        if v != VERSION {
            return Err(CopyError(format!("unknown version {v}")));
        }
        let bet_id = id(BetId::new(r.str()?))?;
        let player_id = id(PlayerId::new(r.str()?))?;
        let currency = Currency::parse(r.str()?).map_err(|e| CopyError(e.to_string()))?;
        let stake_minor = r.u64()? as i64;
        let potential_payout_minor = r.u64()? as i64;
        let each_way = match r.u8()? {
            0 => false,
            1 => true,
            x => return Err(CopyError(format!("each_way {x}"))),
        };
        let idem = IdemTag {
            key: id(IdemKey::new(r.str()?))?,
            request_sha256: r.str()?.to_string(),
        };
        let n = r.u8()?;
        let mut legs = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            legs.push(BetLeg {
                selection_id: id(SelectionId::new(r.str()?))?,
                market_id: id(MarketId::new(r.str()?))?,
                event_id: id(EventId::new(r.str()?))?,
                kind: cached(&mut self.kinds, r.bytes()?)?,
                outcome: cached(&mut self.outcomes, r.bytes()?)?,
                price: Price::from_milli(r.u64()?).map_err(|e| CopyError(e.to_string()))?,
            });
        }
        if !r.b.is_empty() {
            return Err(CopyError(format!("{} trailing bytes", r.b.len())));
        }
        Ok(BetPlaced {
            bet_id,
            player_id,
            currency,
            stake_minor,
            potential_payout_minor,
            legs,
            idem,
            each_way,
        })
    }
}

/// Call `f` with the event id of each leg of a compact copy, without decoding the rest.
pub fn for_each_event(bytes: &[u8], mut f: impl FnMut(&str)) -> Result<(), CopyError> {
    let mut r = Reader { b: bytes };
    let v = r.u8()?;
    if v != VERSION {
        return Err(CopyError(format!("unknown version {v}")));
    }
    for _ in 0..3 {
        r.bytes()?;
    }
    r.take(8 + 8 + 1)?;
    r.bytes()?;
    r.bytes()?;
    for _ in 0..r.u8()? {
        r.bytes()?;
        r.bytes()?;
        f(r.str()?);
        r.bytes()?;
        r.bytes()?;
        r.take(8)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::market::{Line, Market};

    fn bet(each_way: bool, legs: Vec<(MarketKind, Outcome, u64)>) -> BetPlaced {
        let ev = EventId::new("E0-race-1").unwrap();
        BetPlaced {
            bet_id: BetId::new("gb-1-b42").unwrap(),
            player_id: PlayerId::new("p-7").unwrap(),
            currency: Currency::GBP,
            stake_minor: 1_000,
            potential_payout_minor: 12_345,
            legs: legs
                .into_iter()
                .map(|(kind, outcome, milli)| {
                    let market_id = Market::market_id_for(&ev, &kind);
                    BetLeg {
                        selection_id: Market::selection_id_for(&market_id, outcome),
                        market_id,
                        event_id: ev.clone(),
                        kind,
                        outcome,
                        price: Price::from_milli(milli).unwrap(),
                    }
                })
                .collect(),
            idem: IdemTag {
                key: IdemKey::new("k-1").unwrap(),
                request_sha256: "ab".repeat(32),
            },
            each_way,
        }
    }

    #[test]
    fn round_trips_every_field() {
        let mut d = Decoder::default();
        for b in [
            bet(false, vec![(MarketKind::MatchResult, Outcome::Draw, 3_400)]),
            bet(
                true,
                vec![
                    (
                        MarketKind::TotalGoals { line: Line(10) },
                        Outcome::Over,
                        1_900,
                    ),
                    (
                        MarketKind::AsianHandicap {
                            home_line: Line(-3),
                        },
                        Outcome::Away,
                        2_050,
                    ),
                    (
                        MarketKind::MatchResult,
                        Outcome::Score { home: 2, away: 1 },
                        9_000,
                    ),
                ],
            ),
        ] {
            let bytes = encode(&b).unwrap();
            let mut events = Vec::new();
            for_each_event(&bytes, |e| events.push(e.to_string())).unwrap();
            let legs: Vec<String> = b.legs.iter().map(|l| l.event_id.to_string()).collect();
            assert_eq!(events, legs);
            // Twice: the second decode takes kinds and outcomes from the cache.
            assert_eq!(d.decode(&bytes).unwrap(), b);
            assert_eq!(d.decode(&bytes).unwrap(), b);
        }
    }

    #[test]
    fn refuses_damaged_copies() {
        let bytes = encode(&bet(
            false,
            vec![(MarketKind::MatchResult, Outcome::Home, 2_000)],
        ))
        .unwrap();
        let mut d = Decoder::default();
        for cut in 0..bytes.len() {
            assert!(d.decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(d.decode(&longer).is_err());
        let mut other = bytes;
        other[0] = 2;
        assert!(d.decode(&other).is_err());
    }
}
