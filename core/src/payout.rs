//! The one payout rule: `payout_minor = floor(stake_minor × Π(numᵢ / denᵢ))`.
//!
//! Every settlement outcome (win at a price, void at 1.0, Asian-handicap half win, and later
//! dead heats and Rule 4) is expressed as an exact rational factor per leg. The product is
//! computed exactly with a small unsigned big integer, then rounded **down** to the minor unit
//! once, at the end. Rounding down is the documented house rule (`docs/glossary.md`, "payout
//! rounding"): the player never receives a fraction of a minor unit the price did not earn, and
//! there is exactly one place where rounding happens.

use serde::{Deserialize, Serialize};

/// An exact non-negative rational `num / den` (den > 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Factor {
    pub num: u64,
    pub den: u64,
}

impl Factor {
    pub const ONE: Factor = Factor { num: 1, den: 1 };
    pub const ZERO: Factor = Factor { num: 0, den: 1 };
    pub const HALF: Factor = Factor { num: 1, den: 2 };

    pub fn new(num: u64, den: u64) -> Factor {
        assert!(den > 0, "factor denominator must be positive");
        Factor { num, den }
    }
}

/// floor(stake_minor × Π factors). Returns `None` if the stake is negative or the result does
/// not fit in `i64` (callers treat that as a payout above any limit). Factors are applied
/// exactly. Stakes can arrive from replicated records, so a bad one is an error, not a panic.
pub fn payout_minor(stake_minor: i64, factors: &[Factor]) -> Option<i64> {
    if stake_minor < 0 || factors.iter().any(|f| f.den == 0) {
        return None;
    }
    let mut num = BigUint::from_u64(stake_minor as u64);
    let mut den = BigUint::from_u64(1);
    for f in factors {
        num.mul_small(f.num);
        den.mul_small(f.den);
    }
    let q = num.div_floor(&den);
    q.to_u64().and_then(|v| i64::try_from(v).ok())
}

/// floor(stake_minor × Σₖ Πⱼ factorsₖⱼ): several parts of one bet (the win and place parts of an
/// each-way bet) priced exactly and rounded down **once**, over their sum. `None` as in
/// [`payout_minor`].
pub fn payout_sum_minor(stake_minor: i64, parts: &[&[Factor]]) -> Option<i64> {
    if stake_minor < 0 || parts.iter().flat_map(|p| p.iter()).any(|f| f.den == 0) {
        return None;
    }
    // Σ Nₖ/Dₖ = (Σ Nₖ·Π_{m≠k} Dₘ) / Π Dₘ, all exact.
    let mut total = BigUint::from_u64(0);
    let mut den = BigUint::from_u64(1);
    for (k, part) in parts.iter().enumerate() {
        let mut term = BigUint::from_u64(stake_minor as u64);
        for f in part.iter() {
            term.mul_small(f.num);
            den.mul_small(f.den);
        }
        for (m, other) in parts.iter().enumerate() {
            if m != k {
                for f in other.iter() {
                    term.mul_small(f.den);
                }
            }
        }
        total.add_assign(&term);
    }
    let q = total.div_floor(&den);
    q.to_u64().and_then(|v| i64::try_from(v).ok())
}

/// Minimal arbitrary-precision unsigned integer: little-endian base-2^32 limbs. Only what the
/// payout rule needs (multiply by u64, floor division by a big integer via shift-subtract).
#[derive(Debug, Clone, PartialEq, Eq)]
struct BigUint {
    limbs: Vec<u32>,
}

impl BigUint {
    fn from_u64(v: u64) -> BigUint {
        let mut b = BigUint {
            limbs: vec![v as u32, (v >> 32) as u32],
        };
        b.trim();
        b
    }
    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }
    fn is_zero(&self) -> bool {
        self.limbs.is_empty()
    }
    fn mul_small(&mut self, m: u64) {
        if m == 0 || self.is_zero() {
            self.limbs.clear();
            return;
        }
        let (lo, hi) = (m as u32 as u64, m >> 32);
        let a = std::mem::take(&mut self.limbs);
        let mut out = vec![0u32; a.len() + 3];
        for (i, &x) in a.iter().enumerate() {
            let mut carry = 0u64;
            for (j, part) in [lo, hi].into_iter().enumerate() {
                let t = x as u64 * part + out[i + j] as u64 + carry;
                out[i + j] = t as u32;
                carry = t >> 32;
            }
            let mut k = i + 2;
            while carry > 0 {
                let t = out[k] as u64 + carry;
                out[k] = t as u32;
                carry = t >> 32;
                k += 1;
            }
        }
        self.limbs = out;
        self.trim();
    }
    fn add_assign(&mut self, o: &BigUint) {
        let n = self.limbs.len().max(o.limbs.len());
        self.limbs.resize(n + 1, 0);
        let mut carry = 0u64;
        for i in 0..=n {
            let t = self.limbs[i] as u64 + *o.limbs.get(i).unwrap_or(&0) as u64 + carry;
            self.limbs[i] = t as u32;
            carry = t >> 32;
        }
        self.trim();
    }
    fn bits(&self) -> usize {
        match self.limbs.last() {
            None => 0,
            Some(&top) => self.limbs.len() * 32 - top.leading_zeros() as usize,
        }
    }
    fn bit(&self, i: usize) -> bool {
        self.limbs
            .get(i / 32)
            .is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }
    fn cmp(&self, o: &BigUint) -> std::cmp::Ordering {
        self.limbs
            .len()
            .cmp(&o.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(o.limbs.iter().rev()))
    }
    fn shl1_or(&mut self, bit: bool) {
        let mut carry = bit as u32;
        for l in self.limbs.iter_mut() {
            let next = *l >> 31;
            *l = (*l << 1) | carry;
            carry = next;
        }
        if carry != 0 {
            self.limbs.push(carry);
        }
    }
    fn sub_assign(&mut self, o: &BigUint) {
        let mut borrow = 0i64;
        for i in 0..self.limbs.len() {
            let t = self.limbs[i] as i64 - borrow - *o.limbs.get(i).unwrap_or(&0) as i64;
            if t < 0 {
                self.limbs[i] = (t + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                self.limbs[i] = t as u32;
                borrow = 0;
            }
        }
        debug_assert_eq!(borrow, 0);
        self.trim();
    }
    /// Schoolbook binary long division; operands are a few hundred bits at most.
    fn div_floor(&self, d: &BigUint) -> BigUint {
        assert!(!d.is_zero());
        let mut q = BigUint {
            limbs: vec![0; self.limbs.len()],
        };
        let mut r = BigUint { limbs: vec![] };
        for i in (0..self.bits()).rev() {
            r.shl1_or(self.bit(i));
            r.trim();
            if r.cmp(d) != std::cmp::Ordering::Less {
                r.sub_assign(d);
                q.limbs[i / 32] |= 1 << (i % 32);
            }
        }
        q.trim();
        q
    }
    fn to_u64(&self) -> Option<u64> {
        match self.limbs.len() {
            0 => Some(0),
            1 => Some(self.limbs[0] as u64),
            2 => Some(self.limbs[0] as u64 | (self.limbs[1] as u64) << 32),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        // £10 at 2.50 returns £25.00
        assert_eq!(payout_minor(1000, &[Factor::new(2500, 1000)]), Some(2500));
        // 33p at 1.909 = 62.997 -> 62 (rounded down)
        assert_eq!(payout_minor(33, &[Factor::new(1909, 1000)]), Some(62));
        // half-win on an Asian quarter line at 1.90: (1 + 1.9)/2 = 1.45
        assert_eq!(
            payout_minor(1001, &[Factor::new(1000 + 1900, 2000)]),
            Some(1451)
        );
        assert_eq!(payout_minor(1000, &[Factor::ZERO]), Some(0));
        assert_eq!(payout_minor(0, &[Factor::new(5, 1)]), Some(0));
        assert_eq!(payout_minor(-1, &[Factor::new(5, 1)]), None);
        assert_eq!(payout_minor(1, &[Factor { num: 1, den: 0 }]), None);
    }

    #[test]
    fn twenty_leg_accumulator_is_exact_then_floored() {
        // 20 legs at 1.5: 1.5^20 = 3325.256730079651; £1 stake -> 332525 pence
        let legs = vec![Factor::new(1500, 1000); 20];
        assert_eq!(payout_minor(100, &legs), Some(332_525));
        // Overflow is reported, not wrapped.
        let huge = vec![Factor::new(1_000_000, 1000); 20];
        assert_eq!(payout_minor(i64::MAX, &huge), None);
    }

    #[test]
    fn sum_of_parts_is_floored_once() {
        // 5p each-way at 5/1 (6.0), 1/4 odds a place, winner: win part 30p, place part
        // 5 × (1 + 5/4) = 11.25p, together 41.25p, floored once to 41p.
        let win = [Factor::new(6000, 1000)];
        let place = [Factor::new(9, 4)];
        assert_eq!(payout_sum_minor(5, &[&win, &place]), Some(41));
        let q = [Factor::new(1, 4)];
        let tq = [Factor::new(3, 4)];
        // ¼p + ¾p is 1p when floored once; flooring each part would lose it.
        assert_eq!(payout_sum_minor(1, &[&q, &tq]), Some(1));
        assert_eq!(payout_sum_minor(1, &[]), Some(0));
        assert_eq!(payout_sum_minor(-1, &[&q]), None);
    }

    proptest! {
        #[test]
        fn matches_u128_reference(stake in 0i64..10_000_000_000, legs in proptest::collection::vec((1000u64..50_000, prop_oneof![Just(1000u64), Just(2000u64)]), 0..4)) {
            let factors: Vec<Factor> = legs.iter().map(|&(n, d)| Factor::new(n, d)).collect();
            let mut num: u128 = stake as u128;
            let mut den: u128 = 1;
            for f in &factors { num *= f.num as u128; den *= f.den as u128; }
            let expect = num / den;
            prop_assert_eq!(payout_minor(stake, &factors).map(|v| v as u128), Some(expect).filter(|v| *v <= i64::MAX as u128));
        }

        #[test]
        fn sum_matches_u128_reference(stake in 0i64..1_000_000_000, a in 1000u64..50_000, b in 1u64..20, c in 1u64..20) {
            let fa = [Factor::new(a, 1000)];
            let fb = [Factor::new(b, c)];
            let expect = (stake as u128 * (a as u128 * c as u128 + b as u128 * 1000)) / (1000 * c as u128);
            prop_assert_eq!(payout_sum_minor(stake, &[&fa, &fb]).map(|v| v as u128), Some(expect));
            prop_assert_eq!(payout_sum_minor(stake, &[&fa]), payout_minor(stake, &fa));
        }

        #[test]
        fn never_pays_more_than_exact_value(stake in 0i64..1_000_000_000, p in 1001u64..1_000_000) {
            let out = payout_minor(stake, &[Factor::new(p, 1000)]).unwrap() as u128;
            prop_assert!(out * 1000 <= stake as u128 * p as u128);
            prop_assert!((out + 1) * 1000 > stake as u128 * p as u128);
        }
    }
}
