//! Dead heats: when runners tie for a paid place, the stake is divided by the number tied and
//! paid in full only for the places the tied group actually occupies.
//!
//! Source: **Tattersalls' Rules on Betting, dead-heat rule** as applied by UK bookmakers
//! (Betfair Sportsbook help "Dead Heat in Horse Racing": "If two horses tie … you will get paid
//! half your stake at the full odds … For three runners tied your stake is divided by three";
//! DAZN Bet "Each Way Dead Heats": the rule applies to the place part "where, as a result of a
//! dead heat, more selections have placed than are being paid out"). In the Sportradar Unified
//! Odds Feed the same number arrives ready-made as `dead_heat_factor` on a winning outcome
//! (see [`super::void_factor`]).
//!
//! With `tied` runners sharing `position` and `places` places paid, the tied group occupies
//! places `position ..= position + tied − 1`, of which `min(tied, places − position + 1)` are
//! paid. The factor on the stake is that number divided by `tied`: two tied for first in a
//! win market → 1/2; two tied for second with three places paid → 1 (both places are paid);
//! two tied for third with three places paid → 1/2.

use crate::payout::Factor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeadHeatError {
    #[error("a finishing position starts at 1")]
    NoPosition,
    #[error("at least one runner (the selection itself) shares its position")]
    NoneTied,
}

/// The fraction of the stake that is paid at the (place) odds, or 0 if the position is out of
/// the places. `places` = 1 for a win bet.
pub fn dead_heat_factor(position: u16, tied: u16, places: u16) -> Result<Factor, DeadHeatError> {
    if position == 0 {
        return Err(DeadHeatError::NoPosition);
    }
    if tied == 0 {
        return Err(DeadHeatError::NoneTied);
    }
    if position > places {
        return Ok(Factor::ZERO);
    }
    let paid = tied.min(places - position + 1);
    Ok(reduce(u64::from(paid), u64::from(tied)))
}

fn reduce(n: u64, d: u64) -> Factor {
    let (mut a, mut b) = (n, d);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    Factor::new(n / a, d / a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payout::payout_minor;
    use crate::settlement::ratio::mul;
    use proptest::prelude::*;

    /// Source: Tattersalls' dead-heat rule as published in bookmakers' rules (module docs).
    #[test]
    fn dead_heat_table() {
        // (position, tied, places paid, factor)
        let table = [
            (1, 1, 1, Factor::ONE),       // outright winner
            (1, 2, 1, Factor::new(1, 2)), // two dead-heat for first, win bet
            (1, 3, 1, Factor::new(1, 3)), // three dead-heat for first
            (2, 1, 1, Factor::ZERO),      // second in a win market
            (2, 2, 3, Factor::ONE),       // two tied for 2nd, 3 places: both paid
            (3, 2, 3, Factor::new(1, 2)), // two tied for 3rd, 3 places: half
            (3, 3, 4, Factor::new(2, 3)), // three tied for 3rd, 4 places: 2 of 3
            (1, 4, 3, Factor::new(3, 4)), // four tied for 1st, 3 places: 3 of 4
            (4, 2, 3, Factor::ZERO),      // out of the places
        ];
        for (pos, tied, places, f) in table {
            assert_eq!(
                dead_heat_factor(pos, tied, places),
                Ok(f),
                "{pos} {tied} {places}"
            );
        }
        assert_eq!(dead_heat_factor(0, 1, 1), Err(DeadHeatError::NoPosition));
        assert_eq!(dead_heat_factor(1, 0, 1), Err(DeadHeatError::NoneTied));
    }

    /// Betfair's example: £10 at 10/1, two tie for first: £5 at 10/1 = £55.
    #[test]
    fn betfair_worked_example() {
        let f = mul(Factor::new(11, 1), dead_heat_factor(1, 2, 1).unwrap()).unwrap();
        assert_eq!(payout_minor(1000, &[f]), Some(5500));
    }

    proptest! {
        /// A "dead heat" of one runner is a normal result; the factor never exceeds 1.
        #[test]
        fn properties(pos in 1u16..30, tied in 1u16..10, places in 1u16..6) {
            let f = dead_heat_factor(pos, tied, places).unwrap();
            prop_assert!(f.num <= f.den);
            let alone = dead_heat_factor(pos, 1, places).unwrap();
            prop_assert_eq!(alone, if pos <= places { Factor::ONE } else { Factor::ZERO });
        }
    }
}
