//! Each-way place terms for a race: how many places pay and at what fraction of the win odds.
//! These are the standard UK bookmaker terms (the defaults most GB books publish; an operator
//! may offer enhanced terms via configuration):
//!
//! | runners | non-handicap | handicap |
//! |---|---|---|
//! | 2–4 | win only | win only |
//! | 5–7 | 2 places at 1/4 | 2 places at 1/4 |
//! | 8–11 | 3 places at 1/5 | 3 places at 1/5 |
//! | 12–15 | 3 places at 1/5 | 3 places at 1/4 |
//! | 16+ | 3 places at 1/5 | 4 places at 1/4 |

use crate::market::EachWayTerms;

pub fn standard_terms(runners: usize, handicap: bool) -> Option<EachWayTerms> {
    let t = |places, den| {
        Some(EachWayTerms {
            places,
            fraction_num: 1,
            fraction_den: den,
        })
    };
    match (runners, handicap) {
        (0..=4, _) => None,
        (5..=7, _) => t(2, 4),
        (8..=11, _) | (_, false) => t(3, 5),
        (12..=15, true) => t(3, 4),
        (_, true) => t(4, 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(standard_terms(4, false), None);
        assert_eq!(standard_terms(6, false).unwrap().places, 2);
        let t = standard_terms(8, false).unwrap();
        assert_eq!((t.places, t.fraction_num, t.fraction_den), (3, 1, 5));
        // Hamilton "1m Hcap", 12 runners after two withdrawals: 3 places at 1/4.
        let t = standard_terms(12, true).unwrap();
        assert_eq!((t.places, t.fraction_den), (3, 4));
        assert_eq!(standard_terms(16, true).unwrap().places, 4);
        assert_eq!(standard_terms(20, false).unwrap().places, 3);
        for n in 0..40 {
            for h in [false, true] {
                assert!(standard_terms(n, h).is_none_or(|t| t.is_valid()));
            }
        }
    }
}
