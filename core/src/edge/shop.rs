//! Shop counter (retail) logic: tickets for bets taken at a till, their payout exactly once,
//! voids, and the jurisdiction's retail rules. Sans-IO like the rest of `edge`: the shell
//! passes in time, the rules and the ticket's random part; `decide_shop` returns events,
//! `apply_shop` is the only mutation.
//!
//! Money model (double entry): an anonymous cash bet is held by the shop's *bearer* player
//! (`shop/{shop}`), a pseudonymous account that exists so settlement from the hub works
//! unchanged. The stake moves `ShopCash(shop) → PlayerStakes(bearer)`; the hub's settlement
//! credits `PlayerCash(bearer)`; the till's payout moves `PlayerCash(bearer) → ShopCash(shop)`.
//! An account bet is staked from the player's wallet through the ordinary `PlaceBet` command
//! (so the full compliance gate applies) and paid out `PlayerCash(player) → ShopCash(shop)`.
//!
//! Ticket ids are 18 decimal digits: an 8-digit serial (unique per node), 9 random digits (so a
//! ticket id cannot be guessed from another), and a Luhn (ISO/IEC 7812-1 mod 10) check digit
//! that catches every single-digit error and most adjacent transpositions at the scanner.

use super::decide::{Command, CommandError, DecideCtx, Decided, LegRequest, Reply};
use super::events::{
    BetLeg, BetPlaced, ComplianceDecision, EdgeEvent, IdemTag, MovementReason, PlayerRegistered,
    WalletMovement,
};
use super::state::{ApplyError, BetStatus, BetView, EdgeState, IdemOutcome};
use crate::gate::{self, BetFacts, PlayerFacts};
use crate::ids::{BetId, IdemKey, NodeId, PlayerId, ShopId, StaffId, TerminalId};
use crate::jurisdiction::JurisdictionRules;
use crate::ledger::{Account, Posting};
use crate::log::sha256;
use crate::market::{EachWayTerms, MarketKind};
use crate::money::{Currency, Money};
use crate::price::Price;
use crate::settle::{LegResult, potential_payout_minor};
use crate::time::{CivilDate, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Retail rules of a jurisdiction (`[retail]` in `deploy/jurisdictions/*.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetailRules {
    /// Anonymous cash above this (stake taken or payout paid) needs the customer identified.
    pub cash_id_threshold_minor: i64,
    /// Every shop bet must carry a player id (e.g. DK: player card + ROFUS check).
    pub player_id_required: bool,
    /// A winning ticket may be redeemed for this many days after issue.
    pub ticket_expiry_days: u32,
    /// Any of the operator's shops served by this node may redeem (else only the issuing shop).
    pub cross_shop_redemption: bool,
    /// The issuing cashier may void within this many seconds; afterwards a manager must.
    pub void_window_secs: u32,
}

impl RetailRules {
    pub fn validate(&self, _r: &JurisdictionRules) -> Result<(), (&'static str, &'static str)> {
        if self.cash_id_threshold_minor < 0 {
            return Err(("retail.cash_id_threshold_minor", "must not be negative"));
        }
        if !(1..=3650).contains(&self.ticket_expiry_days) {
            return Err(("retail.ticket_expiry_days", "must be between 1 and 3650"));
        }
        if self.void_window_secs > 3600 {
            return Err(("retail.void_window_secs", "must be at most 3600"));
        }
        Ok(())
    }
}

/// A ticket id: 18 digits, the last a Luhn check digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId(String);

pub const TICKET_DIGITS: usize = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketIdError {
    #[error("ticket id unreadable: expected {TICKET_DIGITS} digits")]
    Unreadable,
    #[error("ticket id check digit is wrong (mistyped or damaged)")]
    CheckDigit,
}

/// Luhn check digit for a string of ASCII digits (the payload, without the check digit).
pub fn luhn_check_digit(payload: &str) -> u8 {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = (b - b'0') as u32;
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl TicketId {
    /// `serial` is the node's ticket number; `random` any 64-bit value (only 9 digits used).
    pub fn generate(serial: u64, random: u64) -> TicketId {
        let payload = format!("{:08}{:09}", serial % 100_000_000, random % 1_000_000_000);
        let c = luhn_check_digit(&payload);
        TicketId(format!("{payload}{c}"))
    }
    pub fn parse(s: &str) -> Result<TicketId, TicketIdError> {
        let s = s.trim();
        if s.len() != TICKET_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TicketIdError::Unreadable);
        }
        let (payload, check) = s.split_at(TICKET_DIGITS - 1);
        if luhn_check_digit(payload) != check.as_bytes()[0] - b'0' {
            return Err(TicketIdError::CheckDigit);
        }
        Ok(TicketId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for TicketId {
    type Error = TicketIdError;
    fn try_from(s: String) -> Result<Self, TicketIdError> {
        TicketId::parse(&s)
    }
}
impl From<TicketId> for String {
    fn from(t: TicketId) -> String {
        t.0
    }
}
impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketId({})", self.0)
    }
}

/// Who is acting: the authenticated terminal (shop + terminal) and the staff member on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Till {
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
}

/// Who holds the bet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Anonymous bearer ticket paid in cash; staff confirmed the customer's age at the counter.
    Cash { age_confirmed: bool },
    /// A registered player (card or ID scanned); `date_of_birth` prefetched from the vault.
    Account {
        player_id: PlayerId,
        date_of_birth: Option<CivilDate>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    Cash,
    Account,
}

#[derive(Debug, Clone)]
pub enum ShopCommand {
    PlaceBet {
        till: Till,
        /// The stake, or for an each-way bet the unit stake on each part (the customer pays
        /// twice this).
        stake: Money,
        legs: Vec<LegRequest>,
        /// Each-way on race-win markets that offer it: win part + place part.
        each_way: bool,
        holder: Holder,
        /// Random part of the ticket id (from the shell's entropy source).
        ticket_random: u64,
        idem: IdemTag,
    },
    Payout {
        till: Till,
        ticket_id: TicketId,
        /// Staff saw and recorded the customer's ID (needed above the cash threshold).
        id_checked: bool,
        idem: IdemTag,
    },
    Void {
        till: Till,
        ticket_id: TicketId,
        reason: String,
        /// A shop manager who authorised a void outside the issuing cashier's window.
        authorised_by: Option<StaffId>,
        idem: IdemTag,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShopError {
    #[error("this jurisdiction's rules have no [retail] section; shop bets are refused")]
    RetailRulesMissing,
    #[error("a player id is required on every shop bet in this jurisdiction")]
    PlayerIdRequired,
    #[error(
        "cash amount {amount_minor} is above the threshold {threshold_minor}: identify the customer"
    )]
    IdRequired {
        amount_minor: i64,
        threshold_minor: i64,
    },
    #[error("the customer's age was not confirmed at the counter")]
    AgeNotConfirmed,
    #[error("ticket {0} is not on this node's log")]
    TicketNotFound(TicketId),
    #[error("ticket {ticket_id} was already paid at {shop_id}/{terminal_id} at {paid_at_ms}")]
    AlreadyPaid {
        ticket_id: TicketId,
        shop_id: ShopId,
        terminal_id: TerminalId,
        paid_at_ms: i64,
    },
    #[error("ticket {0} was voided")]
    TicketVoided(TicketId),
    #[error("ticket {0} is not settled yet")]
    NotSettled(TicketId),
    #[error("ticket {0} did not win: nothing to pay")]
    NothingToPay(TicketId),
    #[error("ticket {ticket_id} expired at {expired_at_ms}")]
    TicketExpired {
        ticket_id: TicketId,
        expired_at_ms: i64,
    },
    #[error(
        "ticket {0} was issued by another shop and this jurisdiction allows redemption only there"
    )]
    OtherShop(TicketId),
    #[error("void refused: {0}")]
    VoidRefused(String),
    #[error("ledger refuses the payout: {0}")]
    Ledger(String),
    #[error("ticket id collision; retry with another random part")]
    TicketIdCollision,
    #[error("selection {0} is not on a race-win market with each-way terms: each-way refused")]
    EachWayNotOffered(crate::ids::SelectionId),
    #[error("each-way account bets are not taken at the counter; take it as a cash bet")]
    EachWayAccountBet,
    #[error("the each-way stake overflows")]
    StakeOverflow,
}

/// Recorded with the bet (kind 40). Carries the ticket's terms as they were at issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopTicketIssued {
    pub ticket_id: TicketId,
    pub bet_id: BetId,
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
    pub holder: HolderKind,
    pub player_id: PlayerId,
    pub currency: Currency,
    pub stake_minor: i64,
    pub potential_payout_minor: i64,
    pub expires_at_ms: i64,
    pub rules_version: String,
}

/// Cash paid over the counter for a ticket (kind 41). Exactly one per ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopTicketPaid {
    pub ticket_id: TicketId,
    pub bet_id: BetId,
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
    pub payout_minor: i64,
    pub id_checked: bool,
    pub idem: IdemTag,
}

/// A ticket voided before settlement, stake refunded (kind 42).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopTicketVoided {
    pub ticket_id: TicketId,
    pub bet_id: BetId,
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub authorised_by: Option<StaffId>,
    pub reason: String,
    pub refund_minor: i64,
    pub idem: IdemTag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paid {
    pub at_ms: i64,
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
    pub payout_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voided {
    pub at_ms: i64,
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
    pub authorised_by: Option<StaffId>,
    pub reason: String,
    pub refund_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub issued: ShopTicketIssued,
    pub issued_at_ms: i64,
    pub paid: Option<Paid>,
    pub voided: Option<Voided>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShopState {
    pub tickets: BTreeMap<TicketId, Ticket>,
    pub by_bet: BTreeMap<BetId, TicketId>,
    pub next_ticket_no: u64,
    /// Idempotency of payouts and voids: key → (request hash, ticket).
    pub idem: BTreeMap<IdemKey, (String, TicketId)>,
}

/// A ticket as the till sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketView {
    pub ticket_id: TicketId,
    /// open | payable | lost | paid | voided | expired
    pub state: &'static str,
    pub payable_minor: i64,
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    pub staff_id: StaffId,
    pub holder: HolderKind,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub rules_version: String,
    pub bet: BetView,
    /// Each-way tickets: unit and total stake, the terms and both parts' returns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub each_way: Option<EachWayView>,
    pub paid: Option<Paid>,
    pub voided: Option<Voided>,
}

/// What an each-way slip prints under "E/W": the unit stake on each part, the total taken,
/// each leg's terms, and the returns if every selection wins (both parts) or is placed only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EachWayView {
    pub unit_stake_minor: i64,
    pub total_stake_minor: i64,
    pub terms: Vec<EachWayTerms>,
    pub if_won_minor: i64,
    pub if_placed_minor: i64,
}

/// The each-way terms a leg was struck at (`None`: the market offers no each-way).
pub fn leg_each_way_terms(kind: &MarketKind) -> Option<EachWayTerms> {
    match kind {
        MarketKind::RaceWin { each_way } => *each_way,
        _ => None,
    }
}

/// The each-way view of a bet, from its legs as struck.
pub fn each_way_view(bet: &BetView) -> Option<EachWayView> {
    if !bet.each_way {
        return None;
    }
    let legs: Option<Vec<(Price, EachWayTerms)>> = bet
        .legs
        .iter()
        .map(|l| leg_each_way_terms(&l.kind).map(|t| (l.price, t)))
        .collect();
    let legs = legs?;
    let unit = bet.stake_minor / 2;
    let r = crate::settlement::each_way_bet::each_way_returns(unit, &legs)?;
    Some(EachWayView {
        unit_stake_minor: unit,
        total_stake_minor: r.total_stake_minor,
        terms: legs.iter().map(|(_, t)| *t).collect(),
        if_won_minor: r.if_won_minor,
        if_placed_minor: r.if_placed_minor,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShopReply {
    /// Boxed: a ticket view is large next to the other replies.
    Ticket(Box<TicketView>),
}

/// The pseudonymous account holding a shop's anonymous cash bets.
pub fn bearer_player(shop: &ShopId) -> PlayerId {
    PlayerId::new(format!("shop/{shop}")).expect("shop ids make valid player ids")
}

/// Gate checks that describe the player; replaced for anonymous cash bets by counter checks.
/// The gate's checks on the bet itself, kept for an anonymous cash bet; the player's checks
/// (identity, age, exclusion, limits, AML patterns, geolocation) are replaced by the counter's.
const BET_CHECKS: [&str; 17] = [
    "currency",
    "stake_min",
    "stake_max",
    "legs",
    "legs_max",
    "bet_type",
    "one_leg_per_event",
    "sport",
    "market_kind",
    "market_open",
    "in_play",
    "banned_event",
    "price",
    "payout_max",
    "selection_liability",
    "event_liability",
    "funds",
];

impl EdgeState {
    pub fn ticket_view(&self, id: &TicketId, now: UnixMillis) -> Option<TicketView> {
        let t = self.shop.tickets.get(id)?;
        let bet = self.bet_view(&t.issued.bet_id)?;
        let (state, payable) = if t.voided.is_some() {
            ("voided", 0)
        } else if t.paid.is_some() {
            ("paid", 0)
        } else {
            match &bet.status {
                BetStatus::Open => ("open", 0),
                BetStatus::Settled { payout_minor, .. } if *payout_minor == 0 => ("lost", 0),
                BetStatus::Settled { .. } if now.0 > t.issued.expires_at_ms => ("expired", 0),
                BetStatus::Settled { payout_minor, .. } => ("payable", *payout_minor),
            }
        };
        Some(TicketView {
            ticket_id: id.clone(),
            state,
            payable_minor: payable,
            shop_id: t.issued.shop_id.clone(),
            terminal_id: t.issued.terminal_id.clone(),
            staff_id: t.issued.staff_id.clone(),
            holder: t.issued.holder,
            issued_at_ms: t.issued_at_ms,
            expires_at_ms: t.issued.expires_at_ms,
            rules_version: t.issued.rules_version.clone(),
            each_way: each_way_view(&bet),
            bet,
            paid: t.paid.clone(),
            voided: t.voided.clone(),
        })
    }

    fn ticket_reply(&self, id: &TicketId, now: UnixMillis) -> Reply {
        Reply::Shop(ShopReply::Ticket(Box::new(
            self.ticket_view(id, now).expect("ticket exists"),
        )))
    }

    /// A view of a ticket as it will be once `events` are applied (for the reply).
    fn projected(&self, events: &[EdgeEvent], id: &TicketId, now: UnixMillis) -> Reply {
        // Only the one ticket and its bet are needed: copy them, apply, and view.
        let mut st = EdgeState::default();
        if let Some(t) = self.shop.tickets.get(id) {
            st.shop.tickets.insert(id.clone(), t.clone());
            if let Some(b) = self.bets.get(&t.issued.bet_id) {
                st.bets.insert(b.placed.bet_id.clone(), b.clone());
            }
        }
        for ev in events {
            match ev {
                EdgeEvent::BetPlaced(b) => {
                    st.bets.insert(
                        b.bet_id.clone(),
                        super::state::Bet {
                            placed: b.clone(),
                            placed_at: now,
                            status: BetStatus::Open,
                        },
                    );
                }
                EdgeEvent::ShopTicketIssued(_)
                | EdgeEvent::ShopTicketPaid(_)
                | EdgeEvent::ShopTicketVoided(_) => {
                    st.apply_shop(ev, now).expect("decided events apply");
                }
                _ => {}
            }
        }
        st.ticket_reply(id, now)
    }

    pub(super) fn decide_shop(
        &self,
        node_id: &NodeId,
        cmd: ShopCommand,
        ctx: &DecideCtx<'_>,
    ) -> Result<Decided, CommandError> {
        let retail = ctx
            .rules
            .retail
            .as_ref()
            .ok_or(ShopError::RetailRulesMissing)?;
        match cmd {
            ShopCommand::PlaceBet {
                till,
                stake,
                legs,
                each_way,
                holder,
                ticket_random,
                idem,
            } => self.shop_bet(
                node_id,
                retail,
                till,
                (stake, each_way),
                legs,
                holder,
                ticket_random,
                idem,
                ctx,
            ),
            ShopCommand::Payout {
                till,
                ticket_id,
                id_checked,
                idem,
            } => {
                if let Some(r) = self.shop_idem(&idem, ctx.now)? {
                    return Ok(r);
                }
                self.payout(retail, till, ticket_id, id_checked, idem, ctx.now)
            }
            ShopCommand::Void {
                till,
                ticket_id,
                reason,
                authorised_by,
                idem,
            } => {
                if let Some(r) = self.shop_idem(&idem, ctx.now)? {
                    return Ok(r);
                }
                self.void(
                    retail,
                    till,
                    ticket_id,
                    reason,
                    authorised_by,
                    idem,
                    ctx.now,
                )
            }
        }
    }

    fn shop_idem(&self, tag: &IdemTag, now: UnixMillis) -> Result<Option<Decided>, CommandError> {
        let Some((sha, ticket)) = self.shop.idem.get(&tag.key) else {
            return Ok(None);
        };
        if *sha != tag.request_sha256 {
            return Err(CommandError::IdempotencyKeyReused);
        }
        Ok(Some(Decided {
            events: vec![],
            reply: self.ticket_reply(ticket, now),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn shop_bet(
        &self,
        node_id: &NodeId,
        retail: &RetailRules,
        till: Till,
        (stake, each_way): (Money, bool),
        legs: Vec<LegRequest>,
        holder: Holder,
        ticket_random: u64,
        idem: IdemTag,
        ctx: &DecideCtx<'_>,
    ) -> Result<Decided, CommandError> {
        // A retry returns the same ticket (or the same refusal).
        if let Some(e) = self.idem.get(&idem.key) {
            if e.request_sha256 != idem.request_sha256 {
                return Err(CommandError::IdempotencyKeyReused);
            }
            return match &e.outcome {
                IdemOutcome::Bet(b) => match self.shop.by_bet.get(b) {
                    Some(t) => Ok(Decided {
                        events: vec![],
                        reply: self.ticket_reply(t, ctx.now),
                    }),
                    None => Err(CommandError::IdempotencyKeyReused),
                },
                IdemOutcome::BetRejected {
                    reason,
                    rules_version,
                    checks,
                } => Ok(Decided {
                    events: vec![],
                    reply: Reply::BetRejected {
                        reason: *reason,
                        rules_version: rules_version.clone(),
                        checks: checks.clone(),
                    },
                }),
                _ => Err(CommandError::IdempotencyKeyReused),
            };
        }
        let ticket_id = TicketId::generate(self.shop.next_ticket_no + 1, ticket_random);
        if self.shop.tickets.contains_key(&ticket_id) {
            return Err(ShopError::TicketIdCollision.into());
        }
        let expires_at_ms = ctx.now.0 + retail.ticket_expiry_days as i64 * 86_400_000;
        let issue = |bet: &BetPlaced, kind: HolderKind| ShopTicketIssued {
            ticket_id: ticket_id.clone(),
            bet_id: bet.bet_id.clone(),
            shop_id: till.shop_id.clone(),
            terminal_id: till.terminal_id.clone(),
            staff_id: till.staff_id.clone(),
            holder: kind,
            player_id: bet.player_id.clone(),
            currency: bet.currency,
            stake_minor: bet.stake_minor,
            potential_payout_minor: bet.potential_payout_minor,
            expires_at_ms,
            rules_version: ctx.rules.rules_version.clone(),
        };
        match holder {
            Holder::Account { .. } if each_way => Err(ShopError::EachWayAccountBet.into()),
            Holder::Account {
                player_id,
                date_of_birth,
            } => {
                // The ordinary bet command: the full compliance gate applies.
                let mut d = self.decide(
                    Command::PlaceBet {
                        player_id,
                        stake,
                        legs,
                        date_of_birth,
                        geo: None,
                        price_policy: gate::PricePolicy::Exact,
                        idem,
                    },
                    ctx,
                )?;
                let placed = d.events.iter().find_map(|e| match e {
                    EdgeEvent::BetPlaced(b) => Some(b.clone()),
                    _ => None,
                });
                let Some(placed) = placed else {
                    return Ok(d); // refused by the gate: the decision is logged
                };
                d.events.push(EdgeEvent::ShopTicketIssued(issue(
                    &placed,
                    HolderKind::Account,
                )));
                d.reply = self.projected(&d.events, &ticket_id, ctx.now);
                Ok(d)
            }
            Holder::Cash { age_confirmed } => {
                if retail.player_id_required {
                    return Err(ShopError::PlayerIdRequired.into());
                }
                // Each-way: the unit goes on both parts, so the customer hands over twice it.
                let unit_minor = stake.minor;
                let stake = if each_way {
                    Money::new(
                        stake.minor.checked_mul(2).ok_or(ShopError::StakeOverflow)?,
                        stake.currency,
                    )
                } else {
                    stake
                };
                if stake.minor > retail.cash_id_threshold_minor {
                    return Err(ShopError::IdRequired {
                        amount_minor: stake.minor,
                        threshold_minor: retail.cash_id_threshold_minor,
                    }
                    .into());
                }
                if !age_confirmed {
                    return Err(ShopError::AgeNotConfirmed.into());
                }
                let each_way_unit = each_way.then_some(unit_minor);
                self.cash_bet(
                    node_id,
                    retail,
                    &till,
                    (stake, each_way_unit),
                    legs,
                    idem,
                    ctx,
                    &issue,
                )
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn cash_bet(
        &self,
        node_id: &NodeId,
        retail: &RetailRules,
        till: &Till,
        (stake, each_way_unit): (Money, Option<i64>),
        legs: Vec<LegRequest>,
        idem: IdemTag,
        ctx: &DecideCtx<'_>,
        issue: &dyn Fn(&BetPlaced, HolderKind) -> ShopTicketIssued,
    ) -> Result<Decided, CommandError> {
        if let Some(l) = legs
            .iter()
            .find(|l| !self.selection_index.contains_key(&l.selection_id))
        {
            return Err(CommandError::UnknownSelection(l.selection_id.clone()));
        }
        if each_way_unit.is_some()
            && let Some(l) = legs.iter().find(|l| {
                self.selection_index
                    .get(&l.selection_id)
                    .and_then(|m| self.markets.get(m))
                    .and_then(|m| leg_each_way_terms(&m.kind))
                    .is_none()
            })
        {
            return Err(ShopError::EachWayNotOffered(l.selection_id.clone()).into());
        }
        let node = self.node.as_ref().ok_or(CommandError::NotInitialised)?;
        let bearer = bearer_player(&till.shop_id);
        let mut events = Vec::new();
        if !self.players.contains_key(&bearer) {
            let key = format!("outpost:shop-bearer:{}", till.shop_id);
            events.push(EdgeEvent::PlayerRegistered(PlayerRegistered {
                player_id: bearer.clone(),
                jurisdiction: node.jurisdiction.clone(),
                pii_sha256: hex::encode(sha256(key.as_bytes())),
                idem: IdemTag {
                    key: IdemKey::new(key.clone()).expect("valid key"),
                    request_sha256: hex::encode(sha256(key.as_bytes())),
                },
            }));
        }
        // The shared gate for everything about the bet itself (stake, legs, markets, prices);
        // the player checks are replaced by what the counter established.
        let limits = crate::gate::PlayerLimits::default();
        let activity = crate::gate::Activity::default();
        let facts = PlayerFacts {
            jurisdiction: &node.jurisdiction,
            kyc_verified: false,
            date_of_birth: None,
            self_excluded: false,
            identity_sha256: None,
            cash_minor: stake.minor,
            registered_at: ctx.now,
            timed_out_until: None,
            limits: &limits,
            activity: &activity,
            last_reality_check_at: ctx.now,
        };
        let leg_facts = self.leg_facts(&legs);
        let served = [node.jurisdiction.clone()];
        let env = self.gate_env(ctx, &served);
        // A cash bet has no player: the counter's own checks (age seen by the cashier, the
        // retail cash threshold) replace the player's, and the till is inside the
        // jurisdiction by licence, so only the checks on the bet itself are kept.
        let decision = gate::evaluate_bet(&BetFacts {
            env: &env,
            player: &facts,
            stake,
            legs: &leg_facts,
            price_policy: gate::PricePolicy::Exact,
            geo: None,
        });
        let mut checks: Vec<_> = decision
            .checks
            .into_iter()
            .filter(|c| BET_CHECKS.contains(&c.check.as_ref()))
            .collect();
        checks.push(gate::CheckResult {
            check: "retail_age_at_counter".into(),
            passed: true,
            detail: format!(
                "cashier {} confirmed age ≥ {}",
                till.staff_id, ctx.rules.min_age_years
            )
            .into(),
            code: None,
        });
        checks.push(gate::CheckResult {
            check: "retail_cash_threshold".into(),
            passed: true,
            detail: format!(
                "cash stake {}, ID needed above {}",
                stake.minor, retail.cash_id_threshold_minor
            )
            .into(),
            code: None,
        });
        let reason = checks.iter().find(|c| !c.passed).and_then(|c| c.code);
        let accepted = checks.iter().all(|c| c.passed);
        let record = |bet_id: Option<BetId>, idem: Option<IdemTag>| ComplianceDecision {
            player_id: bearer.clone(),
            action: "place_shop_cash_bet".into(),
            accepted,
            reason,
            jurisdiction: node.jurisdiction.clone(),
            rules_version: decision.rules_version.clone(),
            checks: checks.clone(),
            bet_id,
            flags: vec![],
            reality_check_due: false,
            idem,
        };
        if !accepted {
            let reason = reason.unwrap_or(gate::ReasonCode::SelectionNotFound);
            return Ok(Decided {
                events: vec![EdgeEvent::ComplianceDecision(record(None, Some(idem)))],
                reply: Reply::BetRejected {
                    reason,
                    rules_version: decision.rules_version.clone(),
                    checks: checks.clone(),
                },
            });
        }
        let bet_legs: Vec<BetLeg> = legs
            .iter()
            .zip(&leg_facts)
            .map(|(l, f)| {
                let m = f.market.expect("gate checked");
                let sel = m.selection(&l.selection_id).expect("gate checked");
                BetLeg {
                    selection_id: l.selection_id.clone(),
                    market_id: m.market_id.clone(),
                    event_id: m.event_id.clone(),
                    kind: m.kind,
                    outcome: sel.outcome,
                    price: l.price,
                }
            })
            .collect();
        let potential = match each_way_unit {
            // The gate bounded the return by the whole stake at the win prices, which is more
            // than both parts can return, so the exact each-way return fits too.
            Some(unit) => {
                let legs: Vec<(Price, EachWayTerms)> = bet_legs
                    .iter()
                    .map(|l| (l.price, leg_each_way_terms(&l.kind).expect("checked above")))
                    .collect();
                crate::settlement::each_way_bet::each_way_returns(unit, &legs)
                    .expect("gate checked payout limit")
                    .if_won_minor
            }
            None => {
                let prices: Vec<Price> = bet_legs.iter().map(|l| l.price).collect();
                potential_payout_minor(stake.minor, &prices).expect("gate checked payout limit")
            }
        };
        let bet_id = BetId::new(format!("{node_id}-b{}", self.next_bet_no))
            .expect("generated ids are valid");
        let postings = vec![Posting {
            from: Account::ShopCash(till.shop_id.clone()),
            to: Account::PlayerStakes(bearer.clone()),
            amount_minor: stake.minor,
        }];
        self.ledger()
            .check(stake.currency, &postings)
            .map_err(|e| ShopError::Ledger(e.to_string()))?;
        let placed = BetPlaced {
            bet_id: bet_id.clone(),
            player_id: bearer.clone(),
            currency: stake.currency,
            stake_minor: stake.minor,
            potential_payout_minor: potential,
            legs: bet_legs,
            idem,
            each_way: each_way_unit.is_some(),
        };
        let ticket = issue(&placed, HolderKind::Cash);
        let ticket_id = ticket.ticket_id.clone();
        events.push(EdgeEvent::ComplianceDecision(record(
            Some(bet_id.clone()),
            None,
        )));
        events.push(EdgeEvent::WalletMovement(WalletMovement {
            movement_id: self.next_movement_no,
            player_id: bearer.clone(),
            reason: MovementReason::ShopStake,
            currency: stake.currency,
            postings,
            bet_id: Some(bet_id),
            provider_ref: Some(format!("{}/{}", till.shop_id, till.terminal_id)),
            decision: None,
            idem: None,
        }));
        events.push(EdgeEvent::BetPlaced(placed));
        events.push(EdgeEvent::ShopTicketIssued(ticket));
        let reply = self.projected(&events, &ticket_id, ctx.now);
        Ok(Decided { events, reply })
    }

    fn payout(
        &self,
        retail: &RetailRules,
        till: Till,
        ticket_id: TicketId,
        id_checked: bool,
        idem: IdemTag,
        now: UnixMillis,
    ) -> Result<Decided, CommandError> {
        let t = self
            .shop
            .tickets
            .get(&ticket_id)
            .ok_or_else(|| ShopError::TicketNotFound(ticket_id.clone()))?;
        if t.voided.is_some() {
            return Err(ShopError::TicketVoided(ticket_id).into());
        }
        if let Some(p) = &t.paid {
            return Err(ShopError::AlreadyPaid {
                ticket_id,
                shop_id: p.shop_id.clone(),
                terminal_id: p.terminal_id.clone(),
                paid_at_ms: p.at_ms,
            }
            .into());
        }
        if t.issued.shop_id != till.shop_id && !retail.cross_shop_redemption {
            return Err(ShopError::OtherShop(ticket_id).into());
        }
        let bet = self
            .bets
            .get(&t.issued.bet_id)
            .ok_or_else(|| ShopError::TicketNotFound(ticket_id.clone()))?;
        let payout_minor = match bet.status {
            BetStatus::Open => return Err(ShopError::NotSettled(ticket_id).into()),
            BetStatus::Settled { payout_minor, .. } => payout_minor,
        };
        if payout_minor <= 0 {
            return Err(ShopError::NothingToPay(ticket_id).into());
        }
        if now.0 > t.issued.expires_at_ms {
            return Err(ShopError::TicketExpired {
                ticket_id,
                expired_at_ms: t.issued.expires_at_ms,
            }
            .into());
        }
        if t.issued.holder == HolderKind::Cash
            && payout_minor > retail.cash_id_threshold_minor
            && !id_checked
        {
            return Err(ShopError::IdRequired {
                amount_minor: payout_minor,
                threshold_minor: retail.cash_id_threshold_minor,
            }
            .into());
        }
        let holder = t.issued.player_id.clone();
        let postings = vec![Posting {
            from: Account::PlayerCash(holder.clone()),
            to: Account::ShopCash(till.shop_id.clone()),
            amount_minor: payout_minor,
        }];
        self.ledger()
            .check(t.issued.currency, &postings)
            .map_err(|e| ShopError::Ledger(e.to_string()))?;
        let events = vec![
            EdgeEvent::WalletMovement(WalletMovement {
                movement_id: self.next_movement_no,
                player_id: holder,
                reason: MovementReason::ShopPayout,
                currency: t.issued.currency,
                postings,
                bet_id: Some(t.issued.bet_id.clone()),
                provider_ref: Some(format!("{}/{}", till.shop_id, till.terminal_id)),
                decision: None,
                idem: None,
            }),
            EdgeEvent::ShopTicketPaid(ShopTicketPaid {
                ticket_id: ticket_id.clone(),
                bet_id: t.issued.bet_id.clone(),
                shop_id: till.shop_id,
                terminal_id: till.terminal_id,
                staff_id: till.staff_id,
                payout_minor,
                id_checked,
                idem,
            }),
        ];
        let reply = self.projected(&events, &ticket_id, now);
        Ok(Decided { events, reply })
    }

    #[allow(clippy::too_many_arguments)]
    fn void(
        &self,
        retail: &RetailRules,
        till: Till,
        ticket_id: TicketId,
        reason: String,
        authorised_by: Option<StaffId>,
        idem: IdemTag,
        now: UnixMillis,
    ) -> Result<Decided, CommandError> {
        let refuse = |m: &str| Err(ShopError::VoidRefused(m.to_string()).into());
        let reason = reason.trim().to_string();
        if reason.is_empty() || reason.len() > 200 {
            return refuse("a reason of 1 to 200 characters is required");
        }
        let t = self
            .shop
            .tickets
            .get(&ticket_id)
            .ok_or_else(|| ShopError::TicketNotFound(ticket_id.clone()))?;
        if t.voided.is_some() {
            return Err(ShopError::TicketVoided(ticket_id).into());
        }
        if t.paid.is_some() {
            return refuse("the ticket is paid");
        }
        let bet = self
            .bets
            .get(&t.issued.bet_id)
            .ok_or_else(|| ShopError::TicketNotFound(ticket_id.clone()))?;
        if bet.status != BetStatus::Open {
            return refuse("the bet is settled");
        }
        if t.issued.shop_id != till.shop_id {
            return refuse("only the issuing shop can void a ticket");
        }
        let in_window = now.0 - t.issued_at_ms <= retail.void_window_secs as i64 * 1000;
        let own = t.issued.staff_id == till.staff_id;
        if !(in_window && own) && authorised_by.is_none() {
            return refuse(if own {
                "the void window has passed: a shop manager must authorise"
            } else {
                "only the issuing cashier may void without a shop manager"
            });
        }
        let holder = t.issued.player_id.clone();
        let refund = t.issued.stake_minor;
        let to = match t.issued.holder {
            HolderKind::Cash => Account::ShopCash(till.shop_id.clone()),
            HolderKind::Account => Account::PlayerCash(holder.clone()),
        };
        let postings = vec![Posting {
            from: Account::PlayerStakes(holder.clone()),
            to,
            amount_minor: refund,
        }];
        self.ledger()
            .check(t.issued.currency, &postings)
            .map_err(|e| ShopError::Ledger(e.to_string()))?;
        let events = vec![
            EdgeEvent::WalletMovement(WalletMovement {
                movement_id: self.next_movement_no,
                player_id: holder,
                reason: MovementReason::ShopVoid,
                currency: t.issued.currency,
                postings,
                bet_id: Some(t.issued.bet_id.clone()),
                provider_ref: Some(format!("{}/{}", till.shop_id, till.terminal_id)),
                decision: None,
                idem: None,
            }),
            EdgeEvent::ShopTicketVoided(ShopTicketVoided {
                ticket_id: ticket_id.clone(),
                bet_id: t.issued.bet_id.clone(),
                shop_id: till.shop_id,
                terminal_id: till.terminal_id,
                staff_id: till.staff_id,
                authorised_by,
                reason,
                refund_minor: refund,
                idem,
            }),
        ];
        let reply = self.projected(&events, &ticket_id, now);
        Ok(Decided { events, reply })
    }

    /// Apply a shop record. Refuses a second payout or void of a ticket: a log that pays a
    /// ticket twice does not replay.
    pub(super) fn apply_shop(&mut self, ev: &EdgeEvent, at: UnixMillis) -> Result<(), ApplyError> {
        let bad = |m: String| Err(ApplyError::Shop(m));
        match ev {
            EdgeEvent::ShopTicketIssued(i) => {
                if self.shop.tickets.contains_key(&i.ticket_id) {
                    return bad(format!("ticket {} issued twice", i.ticket_id));
                }
                self.shop
                    .by_bet
                    .insert(i.bet_id.clone(), i.ticket_id.clone());
                self.shop.tickets.insert(
                    i.ticket_id.clone(),
                    Ticket {
                        issued: i.clone(),
                        issued_at_ms: at.0,
                        paid: None,
                        voided: None,
                    },
                );
                self.shop.next_ticket_no += 1;
            }
            EdgeEvent::ShopTicketPaid(p) => {
                let Some(t) = self.shop.tickets.get_mut(&p.ticket_id) else {
                    return bad(format!("payout of unknown ticket {}", p.ticket_id));
                };
                if t.paid.is_some() || t.voided.is_some() {
                    return bad(format!("ticket {} paid twice", p.ticket_id));
                }
                t.paid = Some(Paid {
                    at_ms: at.0,
                    shop_id: p.shop_id.clone(),
                    terminal_id: p.terminal_id.clone(),
                    staff_id: p.staff_id.clone(),
                    payout_minor: p.payout_minor,
                });
                self.shop.idem.insert(
                    p.idem.key.clone(),
                    (p.idem.request_sha256.clone(), p.ticket_id.clone()),
                );
            }
            EdgeEvent::ShopTicketVoided(v) => {
                let Some(t) = self.shop.tickets.get_mut(&v.ticket_id) else {
                    return bad(format!("void of unknown ticket {}", v.ticket_id));
                };
                if t.paid.is_some() || t.voided.is_some() {
                    return bad(format!(
                        "ticket {} voided after payout or twice",
                        v.ticket_id
                    ));
                }
                t.voided = Some(Voided {
                    at_ms: at.0,
                    shop_id: v.shop_id.clone(),
                    terminal_id: v.terminal_id.clone(),
                    staff_id: v.staff_id.clone(),
                    authorised_by: v.authorised_by.clone(),
                    reason: v.reason.clone(),
                    refund_minor: v.refund_minor,
                });
                // The bet is closed: a later settlement from the hub is skipped as a duplicate.
                if let Some(b) = self.bets.get_mut(&v.bet_id) {
                    b.status = BetStatus::Settled {
                        result_version: 0,
                        leg_results: vec![LegResult::Void; b.placed.legs.len()],
                        payout_minor: v.refund_minor,
                    };
                }
                self.shop.idem.insert(
                    v.idem.key.clone(),
                    (v.idem.request_sha256.clone(), v.ticket_id.clone()),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
