//! Double-entry wallet ledger in minor units.
//!
//! Every movement is a set of postings `from → to`; each posting moves the same amount out of
//! one account and into another, so the sum over all accounts is always zero (asserted).
//! Player accounts can never go negative: a posting that would do so is refused before any
//! posting of the movement is applied.

use crate::ids::{PlayerId, ShopId};
use crate::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Account {
    /// A player's withdrawable cash.
    PlayerCash(PlayerId),
    /// Stakes of a player's open bets, held until settlement.
    PlayerStakes(PlayerId),
    /// Withdrawals requested and not yet confirmed paid by the payment provider.
    PlayerPendingWithdrawal(PlayerId),
    /// Money in transit with the payment provider: debited by deposits, credited by
    /// withdrawals. Its balance is minus the net amount players have paid in.
    PaymentProvider,
    /// The house's betting result: credited with losing stakes, debited with winnings.
    House,
    /// What a player owes the house after a settlement correction took back more than their
    /// cash (`docs/settlement.md`, "Corrections that exceed the balance"). Never positive: its
    /// balance is minus the debt, and later credits repay it first.
    PlayerDebt(PlayerId),
    /// Cash over a shop's counters (issue 6), like `PaymentProvider`: debited by cash stakes
    /// taken in, credited by payouts and refunds paid out; minus the shop's net cash taken.
    ShopCash(ShopId),
}

impl Account {
    pub fn is_player(&self) -> bool {
        matches!(
            self,
            Account::PlayerCash(_) | Account::PlayerStakes(_) | Account::PlayerPendingWithdrawal(_)
        )
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::PlayerCash(p) => write!(f, "player:{p}:cash"),
            Account::PlayerStakes(p) => write!(f, "player:{p}:stakes"),
            Account::PlayerPendingWithdrawal(p) => write!(f, "player:{p}:pending_withdrawal"),
            Account::PaymentProvider => f.write_str("provider"),
            Account::House => f.write_str("house"),
            Account::PlayerDebt(p) => write!(f, "player:{p}:debt"),
            Account::ShopCash(s) => write!(f, "shop:{s}:cash"),
        }
    }
}
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}
impl TryFrom<String> for Account {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "provider" => return Ok(Account::PaymentProvider),
            "house" => return Ok(Account::House),
            _ => {}
        }
        if let Some(shop) = s
            .strip_prefix("shop:")
            .and_then(|r| r.strip_suffix(":cash"))
        {
            return ShopId::new(shop)
                .map(Account::ShopCash)
                .map_err(|e| e.to_string());
        }
        let rest = s
            .strip_prefix("player:")
            .ok_or_else(|| format!("unknown account {s:?}"))?;
        let (p, kind) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("unknown account {s:?}"))?;
        let p = PlayerId::new(p).map_err(|e| e.to_string())?;
        match kind {
            "cash" => Ok(Account::PlayerCash(p)),
            "stakes" => Ok(Account::PlayerStakes(p)),
            "debt" => Ok(Account::PlayerDebt(p)),
            "pending_withdrawal" => Ok(Account::PlayerPendingWithdrawal(p)),
            _ => Err(format!("unknown account {s:?}")),
        }
    }
}
impl From<Account> for String {
    fn from(a: Account) -> String {
        a.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub from: Account,
    pub to: Account,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("posting amount must be positive, got {0}")]
    NonPositive(i64),
    #[error("account {account} would go negative ({balance_minor} - {amount_minor})")]
    Insufficient {
        account: Account,
        balance_minor: i64,
        amount_minor: i64,
    },
    #[error("amount overflow")]
    Overflow,
    #[error("currency {0} is not this ledger's currency {1}")]
    Currency(Currency, Currency),
    #[error(
        "account {account} would hold more than the debt it records ({balance_minor} + {amount_minor})"
    )]
    DebtOverpaid {
        account: Account,
        balance_minor: i64,
        amount_minor: i64,
    },
}

/// Balances of one node's ledger (single currency: a node serves one jurisdiction's currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    currency: Currency,
    balances: HashMap<Account, i64>,
}

impl Ledger {
    pub fn new(currency: Currency) -> Ledger {
        Ledger {
            currency,
            balances: HashMap::new(),
        }
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn balance(&self, a: &Account) -> i64 {
        self.balances.get(a).copied().unwrap_or(0)
    }

    /// Check a movement without applying it: the exact check `apply` performs.
    pub fn check(&self, currency: Currency, postings: &[Posting]) -> Result<(), LedgerError> {
        if currency != self.currency {
            return Err(LedgerError::Currency(currency, self.currency));
        }
        let mut delta: HashMap<&Account, i64> = HashMap::new();
        for p in postings {
            if p.amount_minor <= 0 {
                return Err(LedgerError::NonPositive(p.amount_minor));
            }
            let f = delta.entry(&p.from).or_insert(0);
            *f = f.checked_sub(p.amount_minor).ok_or(LedgerError::Overflow)?;
            let t = delta.entry(&p.to).or_insert(0);
            *t = t.checked_add(p.amount_minor).ok_or(LedgerError::Overflow)?;
        }
        for (a, d) in delta {
            let bal = self.balance(a);
            let new = bal.checked_add(d).ok_or(LedgerError::Overflow)?;
            if a.is_player() && new < 0 {
                return Err(LedgerError::Insufficient {
                    account: a.clone(),
                    balance_minor: bal,
                    amount_minor: -d,
                });
            }
            if matches!(a, Account::PlayerDebt(_)) && new > 0 {
                return Err(LedgerError::DebtOverpaid {
                    account: a.clone(),
                    balance_minor: bal,
                    amount_minor: d,
                });
            }
        }
        Ok(())
    }

    /// Apply a movement atomically (all postings or none).
    pub fn apply(&mut self, currency: Currency, postings: &[Posting]) -> Result<(), LedgerError> {
        self.check(currency, postings)?;
        for p in postings {
            *self.balances.entry(p.from.clone()).or_insert(0) -= p.amount_minor;
            *self.balances.entry(p.to.clone()).or_insert(0) += p.amount_minor;
        }
        // Release builds re-assert the post-conditions on the accounts this movement touched,
        // in O(postings): no player account negative, no debt account positive. The
        // O(accounts) whole-ledger sum runs only in debug builds (and at recovery and on
        // `/healthz`, via `sum`): a node with a million players cannot afford it per bet.
        for p in postings {
            for a in [&p.from, &p.to] {
                let balance_minor = self.balance(a);
                assert!(
                    !(a.is_player() && balance_minor < 0),
                    "ledger: {a} negative ({balance_minor}) after a checked movement"
                );
                assert!(
                    !(matches!(a, Account::PlayerDebt(_)) && balance_minor > 0),
                    "ledger: {a} positive ({balance_minor}) after a checked movement"
                );
            }
        }
        debug_assert_eq!(self.sum(), 0, "ledger must sum to zero");
        Ok(())
    }

    /// Sum of all balances: zero by construction (double entry).
    pub fn sum(&self) -> i128 {
        self.balances.values().map(|&v| v as i128).sum()
    }

    pub fn accounts(&self) -> impl Iterator<Item = (&Account, i64)> {
        self.balances.iter().map(|(a, v)| (a, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(n: &str) -> PlayerId {
        PlayerId::new(n).unwrap()
    }

    #[test]
    fn account_strings_roundtrip() {
        for a in [
            Account::PlayerCash(p("p-1")),
            Account::PlayerStakes(p("gb-1:p:7")),
            Account::PlayerDebt(p("gb-1:p:7")),
            Account::House,
            Account::PaymentProvider,
        ] {
            assert_eq!(Account::try_from(a.to_string()).unwrap(), a);
        }
        assert!(Account::try_from("player:x:savings".to_string()).is_err());
    }

    #[test]
    fn refuses_overdraft_atomically() {
        let mut l = Ledger::new(Currency::GBP);
        let cash = Account::PlayerCash(p("a"));
        l.apply(
            Currency::GBP,
            &[Posting {
                from: Account::PaymentProvider,
                to: cash.clone(),
                amount_minor: 500,
            }],
        )
        .unwrap();
        let bad = [
            Posting {
                from: cash.clone(),
                to: Account::PlayerStakes(p("a")),
                amount_minor: 300,
            },
            Posting {
                from: cash.clone(),
                to: Account::House,
                amount_minor: 300,
            },
        ];
        assert!(matches!(
            l.apply(Currency::GBP, &bad),
            Err(LedgerError::Insufficient { .. })
        ));
        assert_eq!(l.balance(&cash), 500);
        assert!(l.apply(Currency::EUR, &[]).is_err());
    }

    proptest! {
        /// Money is never created or lost: whatever sequence of movements is attempted, the
        /// ledger sums to zero and no player account is negative.
        #[test]
        fn conservation(ops in proptest::collection::vec((0usize..4, 0usize..4, 1i64..10_000), 0..200)) {
            let accts = [Account::PlayerCash(p("a")), Account::PlayerStakes(p("a")), Account::PaymentProvider, Account::House];
            let mut l = Ledger::new(Currency::GBP);
            for (f, t, amt) in ops {
                let before = l.clone();
                let r = l.apply(Currency::GBP, &[Posting { from: accts[f].clone(), to: accts[t].clone(), amount_minor: amt }]);
                if r.is_err() { prop_assert_eq!(&l, &before); }
                prop_assert_eq!(l.sum(), 0);
                for a in &accts[..2] { prop_assert!(l.balance(a) >= 0); }
            }
        }
    }
}
