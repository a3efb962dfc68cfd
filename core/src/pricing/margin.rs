//! Bookmaker margin: removing it from quoted odds to recover "true" probabilities, and applying
//! a target margin to true probabilities to produce quotable implied probabilities.
//!
//! Methods (as defined by the reference packages `penaltyblog` and `shin`, whose published and
//! derived values the tests check to 1e-9):
//! * multiplicative ("basic"): `p_i = q_i / B`
//! * additive: `p_i = q_i − (B − 1)/n`
//! * power: `p_i = q_i^k`, `k` solved so that `Σ p_i = 1`
//! * Shin: `p_i = (√(z² + 4(1−z) q_i²/B) − z) / (2(1−z))`, `z` solved so that `Σ p_i = 1`
//! * odds ratio: `p_i = q_i / (c + q_i − c·q_i)`, `c` solved so that `Σ p_i = 1`
//!
//! where `q_i = 1/odds_i` and `B = Σ q_i` (the booksum). These are statistics, so `f64` is
//! appropriate; money never passes through here, and offered prices leave through
//! [`super::ladder`] as exact `Price`s. Multi-winner markets (place, top-N) pass the number of
//! winners so the probabilities sum to that instead of 1.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginMethod {
    Multiplicative,
    Additive,
    Power,
    Shin,
    OddsRatio,
}

impl MarginMethod {
    pub const ALL: [MarginMethod; 5] = [
        MarginMethod::Multiplicative,
        MarginMethod::Additive,
        MarginMethod::Power,
        MarginMethod::Shin,
        MarginMethod::OddsRatio,
    ];
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MarginError {
    #[error("a market needs at least two outcomes")]
    TooFewOutcomes,
    #[error("odds must be finite and greater than 1.0 (got {0})")]
    BadOdds(f64),
    #[error("probabilities must be finite and strictly between 0 and 1 (got {0})")]
    BadProbability(f64),
    #[error("the book has no margin to remove or apply in this direction (booksum {0})")]
    NoSolution(f64),
    #[error("the {0:?} method gives a negative probability for this market")]
    Negative(MarginMethod),
}

/// Result of removing a margin: probabilities plus the method's fitted parameter
/// (power `k`, Shin `z`, odds-ratio `c`; `None` for multiplicative/additive).
#[derive(Debug, Clone, PartialEq)]
pub struct Fair {
    pub probabilities: Vec<f64>,
    pub param: Option<f64>,
}

pub fn booksum(odds: &[f64]) -> f64 {
    odds.iter().map(|o| 1.0 / o).sum()
}

fn check_odds(odds: &[f64]) -> Result<Vec<f64>, MarginError> {
    if odds.len() < 2 {
        return Err(MarginError::TooFewOutcomes);
    }
    odds.iter()
        .map(|&o| {
            if o.is_finite() && o > 1.0 {
                Ok(1.0 / o)
            } else {
                Err(MarginError::BadOdds(o))
            }
        })
        .collect()
}

/// Bisection on a monotone function to full double precision: robust, and with 200 halvings
/// the bracket collapses to adjacent floats, so the 1e-9 tolerance is met with a wide margin.
fn solve(mut lo: f64, mut hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    let f_lo = f(lo);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        let v = f(mid);
        if (v > 0.0) == (f_lo > 0.0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Remove the margin from decimal `odds` of a market with one winner.
pub fn remove(method: MarginMethod, odds: &[f64]) -> Result<Fair, MarginError> {
    remove_n(method, odds, 1.0)
}

/// Remove the margin so that the probabilities sum to `winners` (1 for a win market, the
/// number of places for a place market).
pub fn remove_n(method: MarginMethod, odds: &[f64], winners: f64) -> Result<Fair, MarginError> {
    let q = check_odds(odds)?;
    let b: f64 = q.iter().sum();
    let n = q.len() as f64;
    let (probabilities, param) = match method {
        MarginMethod::Multiplicative => {
            (q.iter().map(|x| x * winners / b).collect::<Vec<_>>(), None)
        }
        MarginMethod::Additive => (q.iter().map(|x| x - (b - winners) / n).collect(), None),
        MarginMethod::Power => {
            // Σ q^k is decreasing in k (q < 1); bracket k where the sum crosses `winners`.
            let g = |k: f64| q.iter().map(|x| x.powf(k)).sum::<f64>() - winners;
            let (lo, hi) = if g(1.0) > 0.0 {
                (1.0, 1e3)
            } else {
                (1e-6, 1.0)
            };
            if g(lo).signum() == g(hi).signum() {
                return Err(MarginError::NoSolution(b));
            }
            let k = solve(lo, hi, g);
            (q.iter().map(|x| x.powf(k)).collect(), Some(k))
        }
        MarginMethod::Shin => {
            if (b - winners).abs() < 1e-15 {
                (q.clone(), Some(0.0))
            } else if b < winners || winners != 1.0 {
                // Shin's model is for one winner and a positive overround.
                return Err(MarginError::NoSolution(b));
            } else {
                let p = |z: f64, x: f64| {
                    ((z * z + 4.0 * (1.0 - z) * x * x / b).sqrt() - z) / (2.0 * (1.0 - z))
                };
                let g = |z: f64| q.iter().map(|x| p(z, *x)).sum::<f64>() - 1.0;
                let z = solve(0.0, 0.999_999, g);
                (q.iter().map(|x| p(z, *x)).collect(), Some(z))
            }
        }
        MarginMethod::OddsRatio => {
            // p_i = q_i/(c + q_i − c q_i) is decreasing in c.
            let p = |c: f64, x: f64| x / (c + x - c * x);
            let g = |c: f64| q.iter().map(|x| p(c, *x)).sum::<f64>() - winners;
            let (lo, hi) = if g(1.0) > 0.0 {
                (1.0, 1e6)
            } else {
                (1e-6, 1.0)
            };
            if g(lo).signum() == g(hi).signum() {
                return Err(MarginError::NoSolution(b));
            }
            let c = solve(lo, hi, g);
            (q.iter().map(|x| p(c, *x)).collect(), Some(c))
        }
    };
    Ok(Fair {
        probabilities,
        param,
    })
}

/// Apply a margin: turn true probabilities (summing to `winners`) into implied probabilities
/// summing to `target_booksum` (e.g. 1.05 for a 5 % overround), with the inverse of `method`.
/// Removing the margin again with the same method returns the input (tested).
pub fn apply(
    method: MarginMethod,
    probabilities: &[f64],
    target_booksum: f64,
    winners: f64,
) -> Result<Vec<f64>, MarginError> {
    if probabilities.len() < 2 {
        return Err(MarginError::TooFewOutcomes);
    }
    for &p in probabilities {
        if !(p.is_finite() && p > 0.0 && p < 1.0) {
            return Err(MarginError::BadProbability(p));
        }
    }
    if !(target_booksum.is_finite() && target_booksum >= winners) {
        return Err(MarginError::NoSolution(target_booksum));
    }
    let n = probabilities.len() as f64;
    let sum: f64 = probabilities.iter().sum();
    let b = target_booksum;
    let out: Vec<f64> = match method {
        MarginMethod::Multiplicative => probabilities.iter().map(|p| p * b / sum).collect(),
        MarginMethod::Additive => probabilities.iter().map(|p| p + (b - sum) / n).collect(),
        MarginMethod::Power => {
            // q = p^(1/k); Σ p^(1/k) grows as k grows above 1.
            let g = |k: f64| probabilities.iter().map(|p| p.powf(1.0 / k)).sum::<f64>() - b;
            if g(1.0) > 0.0 {
                return Err(MarginError::NoSolution(b));
            }
            let k = solve(1.0, 1e3, g);
            probabilities.iter().map(|p| p.powf(1.0 / k)).collect()
        }
        MarginMethod::Shin => {
            if winners != 1.0 {
                return Err(MarginError::NoSolution(b));
            }
            // Inverse of Shin's formula: q_i = √B · √(z p_i + (1−z) p_i²), with B = (Σ s_i)².
            let s = |z: f64, p: f64| (z * p + (1.0 - z) * p * p).sqrt();
            let bz = |z: f64| probabilities.iter().map(|p| s(z, *p)).sum::<f64>().powi(2);
            if bz(0.999_999) < b {
                return Err(MarginError::NoSolution(b));
            }
            let z = solve(0.0, 0.999_999, |z| bz(z) - b);
            let root_b = bz(z).sqrt();
            probabilities.iter().map(|p| root_b * s(z, *p)).collect()
        }
        MarginMethod::OddsRatio => {
            // Inverse of p = q/(c + q − cq): q = c p / (1 − p + c p); Σ grows with c.
            let q = |c: f64, p: f64| c * p / (1.0 - p + c * p);
            let g = |c: f64| probabilities.iter().map(|p| q(c, *p)).sum::<f64>() - b;
            if g(1.0) > 0.0 {
                return Err(MarginError::NoSolution(b));
            }
            let c = solve(1.0, 1e9, g);
            probabilities.iter().map(|p| q(c, *p)).collect()
        }
    };
    if out.iter().any(|q| !(*q > 0.0 && q.is_finite())) {
        return Err(MarginError::Negative(method));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> String {
        let p = format!("{}/../fixtures/margin/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }
    fn nums(s: &str) -> Vec<f64> {
        s.split(';').map(|x| x.trim().parse().unwrap()).collect()
    }
    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    /// Minimal CSV split that honours double quotes (the reference files quote some notes).
    fn split_csv(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut q) = (Vec::new(), String::new(), false);
        for ch in line.chars() {
            match ch {
                '"' => q = !q,
                ',' if !q => out.push(std::mem::take(&mut cur)),
                _ => cur.push(ch),
            }
        }
        out.push(cur);
        out
    }

    fn method(name: &str) -> Option<MarginMethod> {
        Some(match name {
            "multiplicative" | "basic" => MarginMethod::Multiplicative,
            "additive" | "differential_margin_weighting" => MarginMethod::Additive,
            "power" => MarginMethod::Power,
            "shin" => MarginMethod::Shin,
            "odds_ratio" => MarginMethod::OddsRatio,
            _ => return None,
        })
    }

    #[test]
    fn published_reference_values() {
        let text = fixture("published_reference_values.csv");
        let mut lines = text.lines();
        let header = split_csv(lines.next().unwrap());
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let mut checked = 0;
        for line in lines {
            let row = split_csv(line);
            if row[col("input_format")] != "decimal" {
                continue;
            }
            let Some(m) = method(&row[col("method")]) else {
                continue;
            };
            let expected = nums(&row[col("expected_probabilities_or_decimal")]);
            // Values printed with 8 significant digits are checked to that precision; full
            // precision values to 1e-9.
            let digits = row[col("expected_probabilities_or_decimal")]
                .split(';')
                .map(|s| s.trim_start_matches("0.").len())
                .min()
                .unwrap();
            let tol = if digits >= 12 { 1e-9 } else { 1e-7 };
            let fair = remove(m, &nums(&row[col("odds")])).unwrap();
            assert!(
                close(&fair.probabilities, &expected, tol),
                "{m:?} {:?} vs {expected:?}",
                fair.probabilities
            );
            let pv = &row[col("param_value")];
            if !pv.is_empty() {
                let want: f64 = pv.parse().unwrap();
                let got = fair.param.unwrap();
                assert!(
                    (got - want).abs() <= tol.max(want.abs() * 1e-9),
                    "{m:?} param {got} vs {want}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 6, "only {checked} published rows checked");
    }

    #[test]
    fn derived_premier_league_1x2_to_1e9() {
        let text = fixture("derived_E0_2324_1x2.csv");
        let mut lines = text.lines();
        let header = split_csv(lines.next().unwrap());
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let mut rows = 0;
        for line in lines {
            let r = split_csv(line);
            let f = |n: &str| r[col(n)].parse::<f64>().unwrap();
            let odds = [f("odds_home"), f("odds_draw"), f("odds_away")];
            for (m, prefix, param) in [
                (MarginMethod::Multiplicative, "mult", None),
                (MarginMethod::Additive, "add", None),
                (MarginMethod::Power, "power", Some("power_k")),
                (MarginMethod::Shin, "shin", Some("shin_z")),
                (MarginMethod::OddsRatio, "or", Some("or_c")),
            ] {
                let want = [
                    f(&format!("{prefix}_home")),
                    f(&format!("{prefix}_draw")),
                    f(&format!("{prefix}_away")),
                ];
                let fair = remove(m, &odds).unwrap();
                assert!(
                    close(&fair.probabilities, &want, 1e-9),
                    "{m:?} {odds:?}: {:?} vs {want:?}",
                    fair.probabilities
                );
                if let Some(p) = param {
                    let got = fair.param.unwrap();
                    assert!(
                        (got - f(p)).abs() <= 1e-9,
                        "{m:?} {odds:?}: param {got} vs {}",
                        f(p)
                    );
                }
            }
            rows += 1;
        }
        assert_eq!(rows, 760);
    }

    #[test]
    fn derived_edge_cases_to_1e9() {
        let text = fixture("derived_edge_cases.csv");
        let mut lines = text.lines();
        let header = split_csv(lines.next().unwrap());
        let col = |n: &str| header.iter().position(|h| h == n).unwrap();
        let mut checked = 0;
        for line in lines {
            let r = split_csv(line);
            let Some(m) = method(&r[col("method")]) else {
                continue;
            };
            let odds = nums(&r[col("odds")]);
            let want = nums(&r[col("probabilities")]);
            let fair = remove(m, &odds).unwrap();
            assert!(
                close(&fair.probabilities, &want, 1e-9),
                "{m:?} {odds:?}: {:?} vs {want:?}",
                fair.probabilities
            );
            if r[col("any_negative")] == "True" {
                assert!(fair.probabilities.iter().any(|p| *p < 0.0));
            }
            checked += 1;
        }
        assert!(checked >= 10, "{checked}");
    }

    #[test]
    fn two_way_shin_equals_additive() {
        let a = remove(MarginMethod::Shin, &[1.5, 2.74]).unwrap();
        let b = remove(MarginMethod::Additive, &[1.5, 2.74]).unwrap();
        assert!(close(&a.probabilities, &b.probabilities, 1e-12));
    }

    #[test]
    fn bad_inputs() {
        assert_eq!(
            remove(MarginMethod::Power, &[2.0]),
            Err(MarginError::TooFewOutcomes)
        );
        assert!(matches!(
            remove(MarginMethod::Shin, &[1.0, 2.0]),
            Err(MarginError::BadOdds(_))
        ));
        assert!(matches!(
            remove(MarginMethod::Shin, &[f64::NAN, 2.0]),
            Err(MarginError::BadOdds(_))
        ));
        assert!(apply(MarginMethod::Power, &[0.5, 0.5], 0.9, 1.0).is_err());
        assert!(apply(MarginMethod::Power, &[0.0, 1.0], 1.05, 1.0).is_err());
    }

    fn probs() -> impl Strategy<Value = Vec<f64>> {
        proptest::collection::vec(0.02f64..1.0, 2..8).prop_map(|w| {
            let s: f64 = w.iter().sum();
            w.iter().map(|x| x / s).collect()
        })
    }

    proptest! {
        #[test]
        fn apply_then_remove_round_trips(p in probs(), margin in 0.0f64..0.2, mi in 0usize..5) {
            let m = MarginMethod::ALL[mi];
            let q = apply(m, &p, 1.0 + margin, 1.0);
            // Additive can go negative on long shots: that is a refusal, never a bad price.
            if let Ok(q) = q {
                prop_assert!((q.iter().sum::<f64>() - (1.0 + margin)).abs() < 1e-9);
                let odds: Vec<f64> = q.iter().map(|x| 1.0 / x).collect();
                prop_assume!(odds.iter().all(|o| *o > 1.0));
                let back = remove(m, &odds).unwrap();
                prop_assert!(close(&back.probabilities, &p, 1e-9), "{:?} {:?} -> {:?}", m, p, back.probabilities);
            } else {
                prop_assert_eq!(m, MarginMethod::Additive);
            }
        }
    }
}
