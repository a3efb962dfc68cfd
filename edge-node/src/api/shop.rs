//! Shop till API (`/v1/shop/…`): counter bets, ticket lookup, payout, void and the records a
//! till reconciles its cash-up against. Every call is made by a terminal authenticated with
//! its bearer token, which the node's config binds to one shop id and terminal id; the staff
//! member is the one the till logged in by PIN and is recorded on every record.

use super::AppState;
use super::auth::constant_time_eq_hex;
use super::error::ApiError;
use super::extract::{IdemHeader, JsonBody, Query};
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use outpost_core::edge::shop::{
    Holder, ShopCommand, ShopReply, TicketId, TicketIdError, TicketView, Till,
};
use outpost_core::edge::{Command, LegRequest, Reply};
use outpost_core::ids::{PlayerId, SelectionId, Seq, ShopId, StaffId, TerminalId};
use outpost_core::log::{RecordKind, sha256};
use outpost_core::money::{Currency, Money};
use outpost_core::price::Price;
use serde::{Deserialize, Serialize};

const LEGS_MAX: usize = 20;

/// One till's credential in the node's config (`[[shop_terminals]]`). Only the SHA-256 of
/// the token is stored, so the config file does not hold a usable secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminalCredential {
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
    /// Hex SHA-256 of the terminal's bearer token.
    pub token_sha256: String,
}

/// The authenticated terminal making the request.
pub struct Terminal {
    pub shop_id: ShopId,
    pub terminal_id: TerminalId,
}

impl FromRequestParts<AppState> for Terminal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let unauthorised =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "TERMINAL_UNAUTHORISED", m);
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorised("a terminal bearer token is required"))?;
        // Hex-encode the digest once and compare it with each configured hash in constant
        // time (case-insensitively), instead of decoding every configured hash per request.
        let digest = hex::encode(sha256(token.trim().as_bytes()));
        s.shop_terminals
            .iter()
            .find(|c| constant_time_eq_hex(c.token_sha256.as_bytes(), digest.as_bytes()))
            .map(|c| Terminal {
                shop_id: c.shop_id.clone(),
                terminal_id: c.terminal_id.clone(),
            })
            .ok_or_else(|| unauthorised("unknown terminal token"))
    }
}

impl Terminal {
    fn till(&self, staff_id: StaffId) -> Till {
        Till {
            shop_id: self.shop_id.clone(),
            terminal_id: self.terminal_id.clone(),
            staff_id,
        }
    }
}

/// Scanned or typed ticket ids: unreadable and wrong-check-digit input get distinct codes.
fn parse_ticket(s: &str) -> Result<TicketId, ApiError> {
    TicketId::parse(s).map_err(|e| match e {
        TicketIdError::Unreadable => ApiError::bad_request("TICKET_UNREADABLE", e.to_string()),
        TicketIdError::CheckDigit => ApiError::unprocessable("TICKET_CHECK_DIGIT", e.to_string()),
    })
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LegBody {
    selection_id: SelectionId,
    price: Price,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShopBetBody {
    staff_id: StaffId,
    /// The stake; for an each-way bet the unit stake on each part (twice this is taken).
    stake_minor: i64,
    currency: Currency,
    legs: Vec<LegBody>,
    /// Each-way (race-win markets with each-way terms; cash bets).
    #[serde(default)]
    each_way: bool,
    /// A scanned player card / ID makes it an account bet; absent means anonymous cash.
    #[serde(default)]
    player_id: Option<PlayerId>,
    /// The cashier confirmed the customer's age at the counter (anonymous cash bets).
    #[serde(default)]
    age_confirmed: bool,
}

#[derive(Serialize)]
pub struct IssuedTicket {
    ticket: TicketView,
    /// The log record that issued the ticket: printed on the slip so anyone can verify it.
    record_seq: Option<Seq>,
    record_hash: Option<String>,
    node_id: String,
}

pub async fn place(
    State(s): State<AppState>,
    term: Terminal,
    idem: IdemHeader,
    JsonBody(b): JsonBody<ShopBetBody>,
) -> Result<(StatusCode, Json<IssuedTicket>), ApiError> {
    if b.stake_minor <= 0 {
        return Err(ApiError::unprocessable(
            "INVALID_STAKE",
            "stake_minor must be a positive integer number of minor units",
        ));
    }
    if b.legs.is_empty() || b.legs.len() > LEGS_MAX {
        return Err(ApiError::unprocessable(
            "INVALID_LEGS",
            format!("a bet has 1 to {LEGS_MAX} legs"),
        ));
    }
    // The route names the terminal so two tills' keys can never collide.
    let tag = idem.tag(
        &format!("POST /v1/shop/bets {}/{}", term.shop_id, term.terminal_id),
        &b,
    );
    let holder = match b.player_id.clone() {
        Some(p) => {
            // Prefetch: the date of birth lives only in the node-local vault.
            let q = p.clone();
            let dob = s
                .writer
                .read(move |_, v| v.get(&q).map(|x| x.date_of_birth))
                .await?;
            Holder::Account {
                player_id: p,
                date_of_birth: dob,
            }
        }
        None => Holder::Cash {
            age_confirmed: b.age_confirmed,
        },
    };
    let mut r = [0u8; 8];
    getrandom::fill(&mut r).map_err(|e| ApiError::unavailable(format!("no entropy: {e}")))?;
    let cmd = ShopCommand::PlaceBet {
        till: term.till(b.staff_id),
        stake: Money::new(b.stake_minor, b.currency),
        legs: b
            .legs
            .into_iter()
            .map(|l| LegRequest {
                selection_id: l.selection_id,
                price: l.price,
            })
            .collect(),
        each_way: b.each_way,
        holder,
        ticket_random: u64::from_le_bytes(r),
        idem: tag,
    };
    let (reply, appended) = s.writer.command_recorded(Command::Shop(cmd)).await?;
    let ticket = match reply? {
        Reply::Shop(ShopReply::Ticket(t)) => *t,
        Reply::BetRejected {
            reason,
            rules_version,
            checks,
        } => {
            return Err(ApiError::Rejected {
                reason,
                rules_version,
                checks,
            });
        }
        other => return Err(ApiError::unavailable(format!("unexpected reply {other:?}"))),
    };
    // The writer hands back the issuing record; only a retry (nothing appended now) has to
    // look it up in the log.
    let found = match appended
        .iter()
        .find(|r| r.kind == RecordKind::ShopTicketIssued)
    {
        Some(r) => Some((r.seq, r.hash.to_hex())),
        None => find_issue_record(&s, &ticket.ticket_id).await,
    };
    Ok((
        StatusCode::CREATED,
        Json(IssuedTicket {
            ticket,
            record_seq: found.as_ref().map(|f| f.0),
            record_hash: found.map(|f| f.1),
            node_id: s.node_id.to_string(),
        }),
    ))
}

/// Find the record that issued `ticket` by reading the log (an idempotent retry of a bet
/// placed earlier, rare; a new bet's record comes back from the writer).
async fn find_issue_record(s: &AppState, ticket: &TicketId) -> Option<(Seq, String)> {
    // The first attempt may have been acknowledged a moment ago: let the store catch up.
    s.writer.wait_readable().await.ok()?;
    let store = s.store.clone();
    let needle = format!("\"ticket_id\":\"{ticket}\"");
    tokio::task::spawn_blocking(move || {
        let mut at = Seq(1);
        loop {
            let frames = store.read_frames(at, 512).ok()?;
            if frames.is_empty() {
                return None;
            }
            for f in &frames {
                let body = f.parse_body().ok()?;
                at = body.seq.next();
                if body.kind == RecordKind::ShopTicketIssued
                    && std::str::from_utf8(&body.payload).is_ok_and(|p| p.contains(&needle))
                {
                    return Some((body.seq, f.hash().to_hex()));
                }
            }
        }
    })
    .await
    .ok()
    .flatten()
}

pub async fn get(
    State(s): State<AppState>,
    _term: Terminal,
    Path(id): Path<String>,
) -> Result<Json<TicketView>, ApiError> {
    let id = parse_ticket(&id)?;
    let now = crate::writer::now();
    let q = id.clone();
    s.writer
        .read(move |st, _| st.ticket_view(&q, now))
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "TICKET_NOT_FOUND",
                format!("ticket {id} is not on this node's log"),
            )
        })
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutBody {
    staff_id: StaffId,
    #[serde(default)]
    id_checked: bool,
}

pub async fn payout(
    State(s): State<AppState>,
    term: Terminal,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<PayoutBody>,
) -> Result<Json<TicketView>, ApiError> {
    let ticket_id = parse_ticket(&id)?;
    let tag = idem.tag(
        &format!(
            "POST /v1/shop/tickets/{ticket_id}/payout {}/{}",
            term.shop_id, term.terminal_id
        ),
        &b,
    );
    let cmd = ShopCommand::Payout {
        till: term.till(b.staff_id),
        ticket_id,
        id_checked: b.id_checked,
        idem: tag,
    };
    ticket_reply(s.writer.command(Command::Shop(cmd), None).await??)
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    staff_id: StaffId,
    reason: String,
    #[serde(default)]
    authorised_by: Option<StaffId>,
}

pub async fn void(
    State(s): State<AppState>,
    term: Terminal,
    Path(id): Path<String>,
    idem: IdemHeader,
    JsonBody(b): JsonBody<VoidBody>,
) -> Result<Json<TicketView>, ApiError> {
    let ticket_id = parse_ticket(&id)?;
    let tag = idem.tag(
        &format!(
            "POST /v1/shop/tickets/{ticket_id}/void {}/{}",
            term.shop_id, term.terminal_id
        ),
        &b,
    );
    let cmd = ShopCommand::Void {
        till: term.till(b.staff_id),
        ticket_id,
        reason: b.reason,
        authorised_by: b.authorised_by,
        idem: tag,
    };
    ticket_reply(s.writer.command(Command::Shop(cmd), None).await??)
}

fn ticket_reply(r: Reply) -> Result<Json<TicketView>, ApiError> {
    match r {
        Reply::Shop(ShopReply::Ticket(t)) => Ok(Json(*t)),
        other => Err(ApiError::unavailable(format!("unexpected reply {other:?}"))),
    }
}

/// Who the terminal is, and the node it talks to (the till's connectivity probe).
pub async fn whoami(
    State(s): State<AppState>,
    term: Terminal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let node = s.writer.read(|st, _| st.node.clone()).await?;
    Ok(Json(serde_json::json!({
        "shop_id": term.shop_id, "terminal_id": term.terminal_id, "node_id": s.node_id,
        "jurisdiction": node.as_ref().map(|n| n.jurisdiction.to_string()),
        "currency": node.as_ref().map(|n| n.currency.to_string()),
        "public_key": s.public_key,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    from_ms: i64,
    to_ms: i64,
}

/// The node's records of this terminal's shop in `[from_ms, to_ms)`: every ticket issued,
/// paid or voided there (with terminal, staff and amount), and the shop's outstanding
/// liability now. A till's cash-up compares its journal with this, entry by entry.
pub async fn report(
    State(s): State<AppState>,
    term: Terminal,
    Query(q): Query<ReportQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if q.to_ms < q.from_ms {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            "to_ms must not be before from_ms",
        ));
    }
    let now = crate::writer::now();
    let shop = term.shop_id.clone();
    let out = s
        .writer
        .read(move |st, _| {
            let within = |t: i64| t >= q.from_ms && t < q.to_ms;
            let mut entries = Vec::new();
            let (mut liability_minor, mut open_bets, mut expired) = (0i64, 0u64, 0u64);
            for (id, t) in &st.shop.tickets {
                let i = &t.issued;
                if i.shop_id == shop && within(t.issued_at_ms) {
                    entries.push(serde_json::json!({"ticket_id": id, "event": "issued", "terminal_id": i.terminal_id,
                        "staff_id": i.staff_id, "amount_minor": i.stake_minor, "holder": i.holder, "at_ms": t.issued_at_ms}));
                }
                if let Some(p) = &t.paid
                    && p.shop_id == shop
                    && within(p.at_ms)
                {
                    entries.push(serde_json::json!({"ticket_id": id, "event": "paid", "terminal_id": p.terminal_id,
                        "staff_id": p.staff_id, "amount_minor": p.payout_minor, "holder": i.holder, "at_ms": p.at_ms}));
                }
                if let Some(v) = &t.voided
                    && v.shop_id == shop
                    && within(v.at_ms)
                {
                    entries.push(serde_json::json!({"ticket_id": id, "event": "voided", "terminal_id": v.terminal_id,
                        "staff_id": v.staff_id, "amount_minor": v.refund_minor, "holder": i.holder, "at_ms": v.at_ms,
                        "authorised_by": v.authorised_by, "reason": v.reason}));
                }
                if i.shop_id == shop
                    && let Some(view) = st.ticket_view(id, now)
                {
                    match view.state {
                        "payable" => liability_minor += view.payable_minor,
                        "open" => open_bets += 1,
                        "expired" => expired += 1,
                        _ => {}
                    }
                }
            }
            serde_json::json!({
                "shop_id": shop, "from_ms": q.from_ms, "to_ms": q.to_ms, "entries": entries,
                "outstanding_winning_minor": liability_minor, "open_tickets": open_bets, "expired_unpaid_tickets": expired,
            })
        })
        .await?;
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq_hex;

    #[test]
    fn token_hash_comparison_ignores_case_and_checks_length() {
        assert!(constant_time_eq_hex(b"00AbcF", b"00abcf"));
        assert!(!constant_time_eq_hex(b"00abce", b"00abcf"));
        assert!(!constant_time_eq_hex(b"00abc", b"00abcf"));
        assert!(!constant_time_eq_hex(b"", b"00"));
    }
}
