//! A UOF `bet_settlement` message as per-outcome results of our markets: each UOF market is
//! mapped to the market id the edge gave it when it priced the same market from `odds_change`
//! ([`crate::feed::book::uof_market_kind`], `Market::market_id_for`), and each outcome to its
//! `Outcome`. Markets and outcomes the book does not price are listed as skipped (no bet can
//! be on them); the message is otherwise taken whole.

use super::event_result::{MarketResult, OutcomeResult, OutcomeResults};
use super::uof::BetSettlement;
use crate::feed::book::uof_market_kind;
use crate::ids::{EventId, MarketId};
use crate::market::Market;

/// The message's event, its results on our markets, and what was skipped (one line each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedSettlement {
    pub event_id: EventId,
    pub results: OutcomeResults,
    pub skipped: Vec<String>,
}

pub fn map_bet_settlement(msg: &BetSettlement) -> Result<MappedSettlement, String> {
    let event_id = EventId::new(msg.event_id.clone()).map_err(|e| format!("event_id: {e}"))?;
    let mut markets = Vec::new();
    let mut skipped = Vec::new();
    for m in &msg.markets {
        let Some((kind, map)) = uof_market_kind(m.key.id, &m.key.specifiers) else {
            skipped.push(format!(
                "market {} {:?}: not offered",
                m.key.id, m.key.specifiers
            ));
            continue;
        };
        let mut outcomes = Vec::new();
        for o in &m.outcomes {
            let Some(outcome) = map(&o.id) else {
                skipped.push(format!("market {} outcome {}: not offered", m.key.id, o.id));
                continue;
            };
            outcomes.push(OutcomeResult {
                outcome,
                won: o.settlement.won,
                void_factor: o.settlement.void_factor,
                dead_heat_factor: o.settlement.dead_heat_factor,
            });
        }
        markets.push(MarketResult {
            market_id: Market::market_id_for(&event_id, &kind),
            outcomes,
        });
    }
    Ok(MappedSettlement {
        event_id,
        results: OutcomeResults::new(markets)?,
        skipped,
    })
}

/// The market ids of a rollback's UOF markets that the book prices.
pub fn map_rollback_markets(
    event_id: &EventId,
    markets: &[super::uof::MarketKey],
) -> Vec<MarketId> {
    markets
        .iter()
        .filter_map(|k| uof_market_kind(k.id, &k.specifiers))
        .map(|(kind, _)| Market::market_id_for(event_id, &kind))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{MarketKind, Outcome};
    use crate::settlement::uof::{SettlementMessage, parse};

    /// The real capture (a tennis match, `fixtures/uof/settlement/bet_settlement.xml`) has no
    /// market the book prices: every market is skipped, nothing is mapped.
    #[test]
    fn real_capture_maps_to_nothing_we_offer() {
        let xml = include_str!("../../../fixtures/uof/settlement/bet_settlement.xml");
        let SettlementMessage::Settle(s) = parse(xml).unwrap() else {
            panic!("a bet_settlement")
        };
        let m = map_bet_settlement(&s).unwrap();
        assert_eq!(m.event_id.as_str(), "sr:match:16807109");
        assert!(m.results.markets.is_empty());
        assert_eq!(m.skipped.len(), s.markets.len());
    }

    /// Markets the book prices land on the edge's market ids: 1X2 and total 2.5 of a match,
    /// and the virtual race's win (866) and place (868, pos=3) markets.
    #[test]
    fn priced_markets_map_to_edge_ids() {
        let xml = r#"<bet_settlement certainty="2" product="3" event_id="sr:match:42" timestamp="1">
  <outcomes>
    <market id="1"><outcome id="1" result="1"/><outcome id="2" result="0"/><outcome id="3" result="0"/></market>
    <market id="18" specifiers="total=2.5"><outcome id="12" result="0" void_factor="0.5"/><outcome id="13" result="1" void_factor="0.5"/></market>
    <market id="866"><outcome id="sr:competitor:94163" result="1" dead_heat_factor="0.5"/></market>
    <market id="868" specifiers="pos=3"><outcome id="sr:competitor:94163" result="1"/></market>
    <market id="999"><outcome id="1" result="1"/></market>
  </outcomes>
</bet_settlement>"#;
        let SettlementMessage::Settle(s) = parse(xml).unwrap() else {
            panic!()
        };
        let m = map_bet_settlement(&s).unwrap();
        let ids: Vec<&str> = m
            .results
            .markets
            .iter()
            .map(|m| m.market_id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "sr:match:42:1x2",
                "sr:match:42:ou:2.5",
                "sr:match:42:place:3",
                "sr:match:42:win"
            ]
        );
        assert_eq!(m.skipped.len(), 1);
        let ev = EventId::new("sr:match:42").unwrap();
        assert_eq!(
            Market::market_id_for(&ev, &MarketKind::MatchResult),
            m.results.markets[0].market_id
        );
        let win = &m.results.markets[3].outcomes[0];
        assert_eq!(win.outcome, Outcome::Runner { id: 94163 });
        assert_eq!(win.dead_heat_factor, crate::payout::Factor::new(1, 2));
    }
}
