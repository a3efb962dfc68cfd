//! A check's detail as a structured value (numbers, codes, ids), rendered to text only when
//! the decision is serialised (the log record's payload, an API reply).
//!
//! Why: a bet decision makes ~30 checks; formatting each detail while deciding cost more than
//! the checks themselves. The rendered text is a pure function of the value, so the record
//! bytes are the same as when the text was formatted eagerly, and a record read back from the
//! log (where only the text exists) holds it as `Text` and serialises to the same bytes.

use crate::ids::{EventId, Jurisdiction, MarketId, SelectionId};
use crate::jurisdiction::BetType;
use crate::money::Currency;
use crate::price::Price;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub enum Detail {
    /// Fixed wording, a rarely taken path, or a detail read back from a record.
    Text(Cow<'static, str>),
    /// "{label} {value}, {bound_label} {bound}", e.g. "stake 100, maximum 500000".
    Versus {
        label: &'static str,
        value: i64,
        bound_label: &'static str,
        bound: i64,
    },
    /// "player jurisdiction {player}, node serves {node}".
    Jurisdiction {
        player: Jurisdiction,
        node: Jurisdiction,
    },
    /// "{code} has no national register".
    NoRegister(Jurisdiction),
    /// "listed on {name} (seq {seq})" / "not listed on {name} (seq {seq})".
    Register {
        name: String,
        seq: u64,
        listed: bool,
    },
    /// "{area}: IP {ip} in range, GPS inside area" (each part only when the area checks it).
    GeoInside {
        area: String,
        ip: Option<IpAddr>,
        gps: bool,
    },
    /// "stake in {stake}, jurisdiction uses {rules}".
    Currency { stake: Currency, rules: Currency },
    /// "{n} leg(s)" or "{n} leg(s), maximum {max}".
    Legs { n: usize, max: Option<u32> },
    /// "{bet_type:?} bet".
    BetType(BetType),
    /// "{market}: {what}{suffix}", e.g. "E0-…/1x2: football", "…: match_result in play".
    Market {
        market: MarketId,
        what: &'static str,
        suffix: &'static str,
    },
    /// "{market} is {status}".
    MarketStatus {
        market: MarketId,
        status: &'static str,
    },
    /// "{event} not banned".
    NotBanned(EventId),
    /// "{selection}: requested {requested}, current {current}[, struck at {struck}] ({policy})".
    Price {
        selection: SelectionId,
        requested: Price,
        current: Price,
        struck: Option<Price>,
        policy: &'static str,
    },
    /// "[event of ]{selection}: {liability}, maximum {max}".
    Liability {
        selection: SelectionId,
        event: bool,
        liability: i64,
        max: i64,
    },
    /// "{used} used + {amount} = {after}, limit {limit} ({source})".
    Limit {
        used: i64,
        amount: i64,
        after: i64,
        limit: i64,
        source: &'static str,
    },
}

impl Detail {
    pub const fn fixed(s: &'static str) -> Detail {
        Detail::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Detail {
    fn from(s: String) -> Detail {
        Detail::Text(Cow::Owned(s))
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Text(s) => f.write_str(s),
            Detail::Versus {
                label,
                value,
                bound_label,
                bound,
            } => write!(f, "{label} {value}, {bound_label} {bound}"),
            Detail::Jurisdiction { player, node } => {
                write!(f, "player jurisdiction {player}, node serves {node}")
            }
            Detail::NoRegister(code) => write!(f, "{code} has no national register"),
            Detail::Register { name, seq, listed } => {
                let not = if *listed { "" } else { "not " };
                write!(f, "{not}listed on {name} (seq {seq})")
            }
            Detail::GeoInside { area, ip, gps } => {
                write!(f, "{area}: ")?;
                if let Some(ip) = ip {
                    write!(f, "IP {ip} in range")?;
                    if *gps {
                        f.write_str(", ")?;
                    }
                }
                if *gps {
                    f.write_str("GPS inside area")?;
                }
                Ok(())
            }
            Detail::Currency { stake, rules } => {
                write!(f, "stake in {stake}, jurisdiction uses {rules}")
            }
            Detail::Legs { n, max: None } => write!(f, "{n} leg(s)"),
            Detail::Legs { n, max: Some(m) } => write!(f, "{n} leg(s), maximum {m}"),
            Detail::BetType(t) => write!(f, "{t:?} bet"),
            Detail::Market {
                market,
                what,
                suffix,
            } => write!(f, "{market}: {what}{suffix}"),
            Detail::MarketStatus { market, status } => write!(f, "{market} is {status}"),
            Detail::NotBanned(e) => write!(f, "{e} not banned"),
            Detail::Price {
                selection,
                requested,
                current,
                struck,
                policy,
            } => {
                write!(f, "{selection}: requested {requested}, current {current}")?;
                if let Some(p) = struck {
                    write!(f, ", struck at {p}")?;
                }
                write!(f, " ({policy})")
            }
            Detail::Liability {
                selection,
                event,
                liability,
                max,
            } => {
                let of = if *event { "event of " } else { "" };
                write!(f, "{of}{selection}: {liability}, maximum {max}")
            }
            Detail::Limit {
                used,
                amount,
                after,
                limit,
                source,
            } => write!(
                f,
                "{used} used + {amount} = {after}, limit {limit} ({source})"
            ),
        }
    }
}

/// Equal when the rendered texts are equal: a structured detail and the same detail read
/// back from a record are the same detail.
impl PartialEq for Detail {
    fn eq(&self, o: &Detail) -> bool {
        match (self, o) {
            (Detail::Text(a), Detail::Text(b)) => a == b,
            _ => self.to_string() == o.to_string(),
        }
    }
}
impl Eq for Detail {}

impl Serialize for Detail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Detail, D::Error> {
        String::deserialize(d).map(Detail::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_round_trips_as_text() {
        let d = Detail::Limit {
            used: 5,
            amount: 10,
            after: 15,
            limit: 100,
            source: "player",
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, "\"5 used + 10 = 15, limit 100 (player)\"");
        let back: Detail = serde_json::from_str(&json).unwrap();
        assert!(matches!(back, Detail::Text(_)));
        assert_eq!(back, d);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        let g = Detail::GeoInside {
            area: "New Jersey".into(),
            ip: Some("10.1.2.3".parse().unwrap()),
            gps: true,
        };
        assert_eq!(
            g.to_string(),
            "New Jersey: IP 10.1.2.3 in range, GPS inside area"
        );
    }
}
