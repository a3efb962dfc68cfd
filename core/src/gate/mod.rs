//! The compliance gate: pure functions from everything they need (prefetched by the shell) to
//! a decision that lists every check made, each with its result, detail and code.
//!
//! Architecture invariant: the gate is synchronous and fails closed. Missing data (unknown
//! date of birth, no register copy, a stale register, no location attestation, no
//! cross-operator figure) is a failed check, never a pass.
//!
//! Pieces: `limits` (rolling windows, cooling-off), `aml` (flags), `register` (signed
//! national self-exclusion register), `geo` (location attestation), `risk` (liability and
//! price-change policy).

pub mod aml;
pub mod detail;
pub mod geo;
pub mod limits;
pub mod register;
pub mod risk;

pub use aml::{AmlHit, AmlRule};
pub use detail::Detail;
pub use limits::{Activity, LimitKind, PlayerLimits, Window};
pub use risk::{PricePolicy, RiskLimits};

use crate::ids::{Jurisdiction, SelectionId};
use crate::jurisdiction::{AmlAction, BetType, JurisdictionRules};
use crate::market::{Market, MarketKind, MarketStatus, SportEvent};
use crate::money::Money;
use crate::price::Price;
use crate::settle::potential_payout_minor;
use crate::time::{CivilDate, UnixMillis};
use register::RegisterState;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// An event counts as in play from kick-off for this long (a football match with half time
/// and stoppage time fits comfortably).
pub const IN_PLAY_WINDOW_MS: i64 = 150 * 60_000;

/// Stable reason codes; clients and regulators key on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    JurisdictionNotServed,
    KycRequired,
    AgeUnknown,
    UnderAge,
    SelfExcluded,
    CurrencyMismatch,
    StakeTooLow,
    StakeTooHigh,
    NoLegs,
    TooManyLegs,
    DuplicateEvent,
    SelectionNotFound,
    MarketNotOpen,
    PriceChanged,
    PayoutTooHigh,
    InsufficientFunds,
    // Issue 3: the full gate, limits, register, AML, geo, risk.
    RegisterExcluded,
    RegisterMissing,
    RegisterStale,
    RegisterNotUsed,
    RegisterUnsigned,
    RegisterBadSignature,
    RegisterCorrupt,
    RegisterOutOfOrder,
    TimedOut,
    DepositLimit,
    LossLimit,
    StakeLimit,
    CrossOperatorLimit,
    CrossOperatorUnknown,
    LimitAboveCap,
    LimitInvalid,
    TimeOutInvalid,
    AmlRefused,
    GeoRequired,
    GeoOutside,
    SportNotAllowed,
    BetTypeNotAllowed,
    MarketKindNotAllowed,
    InPlayNotAllowed,
    BannedEvent,
    SelectionLiability,
    EventLiability,
}

impl ReasonCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ReasonCode::JurisdictionNotServed => "JURISDICTION_NOT_SERVED",
            ReasonCode::KycRequired => "KYC_REQUIRED",
            ReasonCode::AgeUnknown => "AGE_UNKNOWN",
            ReasonCode::UnderAge => "UNDER_AGE",
            ReasonCode::SelfExcluded => "SELF_EXCLUDED",
            ReasonCode::CurrencyMismatch => "CURRENCY_MISMATCH",
            ReasonCode::StakeTooLow => "STAKE_TOO_LOW",
            ReasonCode::StakeTooHigh => "STAKE_TOO_HIGH",
            ReasonCode::NoLegs => "NO_LEGS",
            ReasonCode::TooManyLegs => "TOO_MANY_LEGS",
            ReasonCode::DuplicateEvent => "DUPLICATE_EVENT",
            ReasonCode::SelectionNotFound => "SELECTION_NOT_FOUND",
            ReasonCode::MarketNotOpen => "MARKET_NOT_OPEN",
            ReasonCode::PriceChanged => "PRICE_CHANGED",
            ReasonCode::PayoutTooHigh => "PAYOUT_TOO_HIGH",
            ReasonCode::InsufficientFunds => "INSUFFICIENT_FUNDS",
            ReasonCode::RegisterExcluded => "REGISTER_EXCLUDED",
            ReasonCode::RegisterMissing => "REGISTER_MISSING",
            ReasonCode::RegisterStale => "REGISTER_STALE",
            ReasonCode::RegisterNotUsed => "REGISTER_NOT_USED",
            ReasonCode::RegisterUnsigned => "REGISTER_UNSIGNED",
            ReasonCode::RegisterBadSignature => "REGISTER_BAD_SIGNATURE",
            ReasonCode::RegisterCorrupt => "REGISTER_CORRUPT",
            ReasonCode::RegisterOutOfOrder => "REGISTER_OUT_OF_ORDER",
            ReasonCode::TimedOut => "TIMED_OUT",
            ReasonCode::DepositLimit => "DEPOSIT_LIMIT",
            ReasonCode::LossLimit => "LOSS_LIMIT",
            ReasonCode::StakeLimit => "STAKE_LIMIT",
            ReasonCode::CrossOperatorLimit => "CROSS_OPERATOR_LIMIT",
            ReasonCode::CrossOperatorUnknown => "CROSS_OPERATOR_UNKNOWN",
            ReasonCode::LimitAboveCap => "LIMIT_ABOVE_CAP",
            ReasonCode::LimitInvalid => "LIMIT_INVALID",
            ReasonCode::TimeOutInvalid => "TIME_OUT_INVALID",
            ReasonCode::AmlRefused => "AML_REFUSED",
            ReasonCode::GeoRequired => "GEO_REQUIRED",
            ReasonCode::GeoOutside => "GEO_OUTSIDE",
            ReasonCode::SportNotAllowed => "SPORT_NOT_ALLOWED",
            ReasonCode::BetTypeNotAllowed => "BET_TYPE_NOT_ALLOWED",
            ReasonCode::MarketKindNotAllowed => "MARKET_KIND_NOT_ALLOWED",
            ReasonCode::InPlayNotAllowed => "IN_PLAY_NOT_ALLOWED",
            ReasonCode::BannedEvent => "BANNED_EVENT",
            ReasonCode::SelectionLiability => "SELECTION_LIABILITY",
            ReasonCode::EventLiability => "EVENT_LIABILITY",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: Cow<'static, str>,
    pub passed: bool,
    /// Rendered to text when serialised (`detail.rs`).
    pub detail: Detail,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<ReasonCode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateDecision {
    pub accepted: bool,
    /// The first failed check's code (None when accepted).
    pub reason: Option<ReasonCode>,
    pub rules_version: String,
    pub checks: Vec<CheckResult>,
    /// AML rules that fired (refusing ones also appear as a failed `aml` check).
    pub flags: Vec<AmlHit>,
    /// Bets: the price each leg is struck at, under the bet's price-change policy.
    pub strike_prices: Vec<Price>,
    pub reality_check_due: bool,
}

/// What the gate knows about the player (prefetched: state + the node-local PII vault).
#[derive(Debug, Clone)]
pub struct PlayerFacts<'a> {
    pub jurisdiction: &'a Jurisdiction,
    pub kyc_verified: bool,
    pub date_of_birth: Option<CivilDate>,
    /// The operator's own self-exclusion list.
    pub self_excluded: bool,
    /// For the national register (`register::identity_sha256`), from the vault.
    pub identity_sha256: Option<&'a str>,
    pub cash_minor: i64,
    pub registered_at: UnixMillis,
    pub timed_out_until: Option<UnixMillis>,
    pub limits: &'a PlayerLimits,
    pub activity: &'a Activity,
    pub last_reality_check_at: UnixMillis,
}

/// Node-wide inputs.
pub struct Env<'a> {
    pub rules: &'a JurisdictionRules,
    pub served: &'a [Jurisdiction],
    pub register: Option<&'a RegisterState>,
    pub risk: &'a RiskLimits,
    pub now: UnixMillis,
}

pub struct LegFacts<'a> {
    pub selection_id: &'a SelectionId,
    pub requested_price: Price,
    /// The market holding the selection, if any, and its event.
    pub market: Option<&'a Market>,
    pub event: Option<&'a SportEvent>,
    /// Potential payouts of open bets already on this selection / its event on this node.
    pub selection_liability_minor: i64,
    pub event_liability_minor: i64,
}

pub struct BetFacts<'a> {
    pub env: &'a Env<'a>,
    pub player: &'a PlayerFacts<'a>,
    pub stake: Money,
    pub legs: &'a [LegFacts<'a>],
    pub price_policy: PricePolicy,
    pub geo: Option<&'a geo::GeoAttestation>,
}

pub struct DepositFacts<'a> {
    pub env: &'a Env<'a>,
    pub player: &'a PlayerFacts<'a>,
    pub amount: Money,
    /// Deposits this month at other operators, from the cross-operator system (DE: LUGAS),
    /// when the jurisdiction has one. `None` there means unknown: refused.
    pub other_operators_month_minor: Option<i64>,
}

struct Checks {
    list: Vec<CheckResult>,
    flags: Vec<AmlHit>,
}
impl Checks {
    fn add(&mut self, check: &'static str, ok: bool, code: ReasonCode, detail: impl Into<Detail>) {
        self.list.push(CheckResult {
            check: Cow::Borrowed(check),
            passed: ok,
            detail: detail.into(),
            code: (!ok).then_some(code),
        });
    }
    fn aml(&mut self, hits: Vec<AmlHit>) {
        let refusing = hits.iter().any(|h| h.action == AmlAction::Refuse);
        let detail = if hits.is_empty() {
            Detail::fixed("no rule fired")
        } else {
            hits.iter()
                .map(|h| {
                    format!(
                        "{} ({}): {}",
                        h.rule.as_str(),
                        if h.action == AmlAction::Refuse {
                            "refuse"
                        } else {
                            "flag"
                        },
                        h.detail
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
                .into()
        };
        self.add("aml", !refusing, ReasonCode::AmlRefused, detail);
        self.flags.extend(hits);
    }
    fn finish(self, rules: &JurisdictionRules, strike: Vec<Price>, rc_due: bool) -> GateDecision {
        let reason = self.list.iter().find(|x| !x.passed).and_then(|x| x.code);
        GateDecision {
            accepted: reason.is_none(),
            reason,
            rules_version: rules.rules_version.clone(),
            checks: self.list,
            flags: self.flags,
            strike_prices: strike,
            reality_check_due: rc_due,
        }
    }
}

/// Checks about the player that every money action shares: served jurisdiction, KYC, age,
/// both self-exclusion lists, time-out.
fn player_checks(c: &mut Checks, env: &Env<'_>, p: &PlayerFacts<'_>) {
    let r = env.rules;
    let now = env.now;
    c.add(
        "jurisdiction",
        env.served.contains(p.jurisdiction) && p.jurisdiction == &r.code,
        ReasonCode::JurisdictionNotServed,
        Detail::Jurisdiction {
            player: p.jurisdiction.clone(),
            node: r.code.clone(),
        },
    );
    c.add(
        "kyc",
        p.kyc_verified,
        ReasonCode::KycRequired,
        Detail::fixed(if p.kyc_verified {
            "verified"
        } else {
            "identity not verified"
        }),
    );
    match p.date_of_birth {
        None => c.add(
            "age",
            false,
            ReasonCode::AgeUnknown,
            Detail::fixed("no date of birth on record"),
        ),
        Some(dob) => {
            let age = dob.years_until(now.date());
            c.add(
                "age",
                age >= r.min_age_years as i32,
                ReasonCode::UnderAge,
                Detail::Versus {
                    label: "age",
                    value: age as i64,
                    bound_label: "minimum",
                    bound: r.min_age_years as i64,
                },
            );
        }
    }
    c.add(
        "self_exclusion",
        !p.self_excluded,
        ReasonCode::SelfExcluded,
        Detail::fixed(if p.self_excluded {
            "on the operator's self-exclusion list"
        } else {
            "not on the operator's list"
        }),
    );
    let st = register::status(r.register.as_ref(), env.register, now);
    match (st, r.register.as_ref()) {
        (register::RegisterStatus::NotRequired, _) | (_, None) => c.add(
            "register",
            true,
            ReasonCode::RegisterMissing,
            Detail::NoRegister(r.code.clone()),
        ),
        (register::RegisterStatus::Missing, Some(rr)) => c.add(
            "register",
            false,
            ReasonCode::RegisterMissing,
            format!("no copy of {} held: betting suspended", rr.name),
        ),
        (register::RegisterStatus::Stale { age_ms, seq }, Some(rr)) => c.add(
            "register",
            false,
            ReasonCode::RegisterStale,
            format!(
                "{} copy seq {seq} is {} min old, bound {} min: betting suspended",
                rr.name,
                age_ms / 60_000,
                rr.staleness_bound_minutes
            ),
        ),
        (register::RegisterStatus::Fresh { seq, .. }, Some(rr)) => {
            let listed = match (p.identity_sha256, env.register) {
                (Some(id), Some(reg)) => Some(reg.entries.contains(id)),
                _ => None,
            };
            c.add(
                "register",
                listed == Some(false),
                ReasonCode::RegisterExcluded,
                match listed {
                    Some(listed) => Detail::Register {
                        name: rr.name.clone(),
                        seq,
                        listed,
                    },
                    None => Detail::fixed("no identity on record to check against the register"),
                },
            );
        }
    }
    let timed_out = p.timed_out_until.is_some_and(|u| u > now);
    c.add(
        "time_out",
        !timed_out,
        ReasonCode::TimedOut,
        match p.timed_out_until {
            Some(u) if timed_out => format!("timed out until {}", u.0).into(),
            _ => Detail::fixed("no time-out in force"),
        },
    );
}

fn reality_check_due(rules: &JurisdictionRules, p: &PlayerFacts<'_>, now: UnixMillis) -> bool {
    let i = rules.limits.reality_check_interval_minutes as i64 * 60_000;
    i > 0 && now.0 - p.last_reality_check_at.0 >= i
}

fn market_kind_name(k: &MarketKind) -> &'static str {
    match k {
        MarketKind::MatchResult => "match_result",
        MarketKind::TotalGoals { .. } => "total_goals",
        MarketKind::AsianHandicap { .. } => "asian_handicap",
        MarketKind::CorrectScore { .. } => "correct_score",
        MarketKind::BothTeamsToScore => "both_teams_to_score",
        MarketKind::RaceWin { .. } => "race_win",
        MarketKind::RacePlace { .. } => "race_place",
        MarketKind::Outright { .. } => "outright",
    }
}

/// The sport a market kind belongs to (outrights are offered on football competitions today).
fn sport_of(k: &MarketKind) -> &'static str {
    match k {
        MarketKind::RaceWin { .. } | MarketKind::RacePlace { .. } => "horse_racing",
        _ => "football",
    }
}

fn limit_code(k: LimitKind) -> ReasonCode {
    match k {
        LimitKind::Deposit => ReasonCode::DepositLimit,
        LimitKind::Loss => ReasonCode::LossLimit,
        LimitKind::Stake => ReasonCode::StakeLimit,
    }
}

/// `{kind}_limit_{window}` for each of `Window::ALL`.
fn limit_check_names(k: LimitKind) -> [&'static str; 3] {
    match k {
        LimitKind::Deposit => [
            "deposit_limit_day",
            "deposit_limit_week",
            "deposit_limit_month",
        ],
        LimitKind::Loss => ["loss_limit_day", "loss_limit_week", "loss_limit_month"],
        LimitKind::Stake => ["stake_limit_day", "stake_limit_week", "stake_limit_month"],
    }
}

/// Limit checks for adding `amount` to the kinds given.
fn limit_checks(
    c: &mut Checks,
    env: &Env<'_>,
    p: &PlayerFacts<'_>,
    kinds: &[LimitKind],
    amount: i64,
) {
    for &k in kinds {
        for (w, name) in Window::ALL.into_iter().zip(limit_check_names(k)) {
            let eff = p.limits.effective(k, w, env.now, env.rules);
            let Some(limit) = eff.amount_minor else {
                continue;
            };
            let used = p.activity.used(k, w, env.now);
            let after = used.saturating_add(amount);
            c.add(
                name,
                after <= limit,
                limit_code(k),
                Detail::Limit {
                    used,
                    amount,
                    after,
                    limit,
                    source: eff.source,
                },
            );
        }
    }
}

/// Ban rules expressed as data (NJ: college events with a New Jersey team or venue).
fn banned(rules: &JurisdictionRules, ev: &SportEvent) -> Option<String> {
    if rules.banned_events.is_empty() {
        return None;
    }
    let comp = ev.competition.to_lowercase();
    for b in &rules.banned_events {
        if !b
            .competitions
            .iter()
            .any(|c| comp.contains(&c.to_lowercase()))
        {
            continue;
        }
        let team = b
            .teams
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&ev.home) || t.eq_ignore_ascii_case(&ev.away));
        if let Some(t) = team {
            return Some(format!("{}: {t} plays ({})", ev.event_id, b.reason));
        }
        if !b.venue_regions.is_empty() {
            // The venue is not in the event data: unknown venue of a matching competition is
            // treated as inside the banned region.
            return Some(format!(
                "{}: venue unknown for a {} event ({})",
                ev.event_id, ev.competition, b.reason
            ));
        }
    }
    None
}

/// Evaluate every check for placing a bet. All checks run (so the record shows the full
/// picture); the reason is the first failure in this fixed order.
pub fn evaluate_bet(f: &BetFacts<'_>) -> GateDecision {
    let mut c = Checks {
        list: Vec::with_capacity(24),
        flags: Vec::new(),
    };
    let env = f.env;
    let r = env.rules;
    let p = f.player;
    let now = env.now;
    player_checks(&mut c, env, p);
    if let Some(g) = &r.geo {
        match geo::check(g, f.geo) {
            Ok(d) => c.add("geo", true, ReasonCode::GeoOutside, d),
            Err(d) => c.add(
                "geo",
                false,
                if f.geo.is_none() {
                    ReasonCode::GeoRequired
                } else {
                    ReasonCode::GeoOutside
                },
                d,
            ),
        }
    }

    c.add(
        "currency",
        f.stake.currency == r.currency,
        ReasonCode::CurrencyMismatch,
        Detail::Currency {
            stake: f.stake.currency,
            rules: r.currency,
        },
    );
    let s = f.stake.minor;
    c.add(
        "stake_min",
        s >= r.stake_minor_min,
        ReasonCode::StakeTooLow,
        Detail::Versus {
            label: "stake",
            value: s,
            bound_label: "minimum",
            bound: r.stake_minor_min,
        },
    );
    c.add(
        "stake_max",
        s <= r.stake_minor_max,
        ReasonCode::StakeTooHigh,
        Detail::Versus {
            label: "stake",
            value: s,
            bound_label: "maximum",
            bound: r.stake_minor_max,
        },
    );

    let n = f.legs.len();
    c.add(
        "legs",
        n >= 1,
        ReasonCode::NoLegs,
        Detail::Legs { n, max: None },
    );
    c.add(
        "legs_max",
        n <= r.accumulator_legs_max as usize,
        ReasonCode::TooManyLegs,
        Detail::Legs {
            n,
            max: Some(r.accumulator_legs_max as u32),
        },
    );
    let bet_type = if n > 1 {
        BetType::Accumulator
    } else {
        BetType::Single
    };
    c.add(
        "bet_type",
        r.bets.bet_types_allowed.contains(&bet_type),
        ReasonCode::BetTypeNotAllowed,
        Detail::BetType(bet_type),
    );
    // Legs are few (bounded by the rules' accumulator maximum): a pairwise scan beats a set.
    let mut dup = None;
    for (i, l) in f.legs.iter().enumerate() {
        if let Some(m) = l.market
            && f.legs[..i]
                .iter()
                .any(|o| o.market.is_some_and(|om| om.event_id == m.event_id))
        {
            dup = Some(m.event_id.clone());
        }
    }
    c.add(
        "one_leg_per_event",
        dup.is_none(),
        ReasonCode::DuplicateEvent,
        match &dup {
            Some(e) => Detail::from(format!("two legs on event {e}")),
            None => Detail::fixed("distinct events"),
        },
    );

    let mut strike = Vec::with_capacity(n);
    for l in f.legs {
        let sel = l.market.and_then(|m| m.selection(l.selection_id));
        let (Some(m), Some(sel)) = (l.market, sel) else {
            c.add(
                "selection",
                false,
                ReasonCode::SelectionNotFound,
                format!("{} not offered", l.selection_id),
            );
            continue;
        };
        c.add(
            "market_open",
            m.status == MarketStatus::Open,
            ReasonCode::MarketNotOpen,
            Detail::MarketStatus {
                market: m.market_id.clone(),
                status: m.status.as_str(),
            },
        );
        let sport = sport_of(&m.kind);
        c.add(
            "sport",
            r.bets.sports_allowed.iter().any(|x| x == sport),
            ReasonCode::SportNotAllowed,
            Detail::Market {
                market: m.market_id.clone(),
                what: sport,
                suffix: "",
            },
        );
        let kind = market_kind_name(&m.kind);
        let in_play = l
            .event
            .is_some_and(|e| e.kickoff <= now && now.0 < e.kickoff.0 + IN_PLAY_WINDOW_MS);
        c.add(
            "market_kind",
            r.bets.market_kinds_allowed.iter().any(|x| x == kind),
            ReasonCode::MarketKindNotAllowed,
            Detail::Market {
                market: m.market_id.clone(),
                what: kind,
                suffix: "",
            },
        );
        if in_play {
            let ok =
                r.bets.in_play_allowed && r.bets.in_play_market_kinds.iter().any(|x| x == kind);
            c.add(
                "in_play",
                ok,
                ReasonCode::InPlayNotAllowed,
                Detail::Market {
                    market: m.market_id.clone(),
                    what: kind,
                    suffix: " in play",
                },
            );
        }
        match l.event {
            Some(ev) => {
                let b = banned(r, ev);
                c.add(
                    "banned_event",
                    b.is_none(),
                    ReasonCode::BannedEvent,
                    match b {
                        Some(why) => why.into(),
                        None => Detail::NotBanned(ev.event_id.clone()),
                    },
                );
            }
            // Without fixture details (a feed-only event) a ban cannot be ruled out, so it
            // fails closed, unless the jurisdiction bans nothing at all.
            None => c.add(
                "banned_event",
                r.banned_events.is_empty(),
                ReasonCode::BannedEvent,
                if r.banned_events.is_empty() {
                    format!(
                        "event {} has no fixture details; {} bans no events",
                        m.event_id, r.code
                    )
                } else {
                    format!("event {} unknown: a ban cannot be ruled out", m.event_id)
                },
            ),
        }
        let struck = f.price_policy.strike(l.requested_price, sel.price);
        c.add(
            "price",
            struck.is_some(),
            ReasonCode::PriceChanged,
            Detail::Price {
                selection: l.selection_id.clone(),
                requested: l.requested_price,
                current: sel.price,
                struck,
                policy: f.price_policy.as_str(),
            },
        );
        strike.extend(struck);
    }
    // Payout and liability limits at the strike prices.
    if strike.len() == n && n > 0 {
        let pot = potential_payout_minor(s.max(0), &strike);
        c.add(
            "payout_max",
            pot.is_some_and(|v| v <= r.payout_minor_max),
            ReasonCode::PayoutTooHigh,
            match pot {
                Some(v) => Detail::Versus {
                    label: "potential payout",
                    value: v,
                    bound_label: "maximum",
                    bound: r.payout_minor_max,
                },
                None => format!("potential payout overflow, maximum {}", r.payout_minor_max).into(),
            },
        );
        if let Some(pot) = pot {
            risk::liability_checks(
                &mut |n, ok, code, d| c.add(n, ok, code, d),
                f.env.risk,
                f.legs,
                pot,
            );
        }
    }
    c.add(
        "funds",
        p.cash_minor >= s,
        ReasonCode::InsufficientFunds,
        Detail::Versus {
            label: "balance",
            value: p.cash_minor,
            bound_label: "stake",
            bound: s,
        },
    );
    limit_checks(&mut c, env, p, &[LimitKind::Stake, LimitKind::Loss], s);
    c.aml(aml::check_bet(&r.aml, p.activity, p.registered_at, s, now));
    let due = reality_check_due(r, p, now);
    c.finish(r, strike, due)
}

/// Evaluate a deposit: player checks, deposit limits (and the cross-operator cap), AML.
pub fn evaluate_deposit(f: &DepositFacts<'_>) -> GateDecision {
    let mut c = Checks {
        list: Vec::with_capacity(16),
        flags: Vec::new(),
    };
    let env = f.env;
    let r = env.rules;
    player_checks(&mut c, env, f.player);
    let a = f.amount.minor;
    limit_checks(&mut c, env, f.player, &[LimitKind::Deposit], a);
    if let Some(cap) = r.limits.cross_operator_deposit_cap_month_minor {
        let own = f
            .player
            .activity
            .used(LimitKind::Deposit, Window::Month, env.now);
        match f.other_operators_month_minor {
            None => c.add(
                "cross_operator_limit",
                false,
                ReasonCode::CrossOperatorUnknown,
                Detail::fixed("no current cross-operator deposit figure: refused (fail closed)"),
            ),
            Some(other) => {
                let total = own.saturating_add(other).saturating_add(a);
                c.add(
                    "cross_operator_limit",
                    total <= cap,
                    ReasonCode::CrossOperatorLimit,
                    format!("here {own} + elsewhere {other} + {a} = {total}, cap {cap}"),
                );
            }
        }
    }
    c.aml(aml::check_deposit(&r.aml, f.player.activity, a, env.now));
    let due = reality_check_due(r, f.player, env.now);
    c.finish(r, vec![], due)
}

/// Evaluate a withdrawal. Self-exclusion and time-outs never block getting money out; only
/// AML can refuse (where the rules say so).
pub fn evaluate_withdrawal(env: &Env<'_>, p: &PlayerFacts<'_>) -> GateDecision {
    let mut c = Checks {
        list: Vec::with_capacity(2),
        flags: Vec::new(),
    };
    c.add(
        "jurisdiction",
        env.served.contains(p.jurisdiction),
        ReasonCode::JurisdictionNotServed,
        format!("player jurisdiction {}", p.jurisdiction),
    );
    c.aml(aml::check_withdrawal(&env.rules.aml, p.activity));
    c.finish(env.rules, vec![], false)
}

/// A small, valid rule set for unit tests across the crate.
#[cfg(test)]
pub fn test_rules() -> JurisdictionRules {
    crate::jurisdiction::example_rules()
}

#[cfg(test)]
mod tests;
