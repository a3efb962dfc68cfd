//! The till's web UI (localhost) and what each action does: log in by PIN (with the drawer
//! float), build a slip by event code + selection code, place it on the edge node, journal
//! it, print it; scan and pay a ticket; void; drawer movements; cash-up; reports.
//! Forms post and redirect (no client-side state), so the UI works with JavaScript off.

mod cashup_page;
mod drawer;
mod login;
mod payout;
mod report;
mod slips;
mod void;

use crate::amount::{fmt_minor, fmt_time, parse_minor};
use crate::cashup;
use crate::config::{Role, TillConfig, pin_hash};
use crate::coupon::{self, CouponEvent};
use crate::edge::{EdgeClient, EdgeError};
use crate::html::{Frame, esc, page};
use crate::journal::{Journal, Kind};
use crate::printer;
use crate::slip::{Slip, SlipLeg};
use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use outpost_core::edge::shop::TicketId;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

#[derive(Clone)]
pub struct Leg {
    pub event_code: u32,
    pub event: String,
    pub market: String,
    pub selection: String,
    pub selection_id: String,
    pub price: String,
    /// Each-way terms of the leg's market ("1/5 odds, 3 places"); `None`: win only.
    pub each_way: Option<String>,
}

pub struct Session {
    pub staff_id: String,
    pub role: Role,
    pub legs: Vec<Leg>,
    pub bet_idem: String,
    pub flash: Option<(bool, String, String)>,
}

pub struct EdgeStatus {
    pub online: bool,
    pub text: String,
    pub currency: String,
    pub digits: u32,
    pub node_id: String,
}

pub struct App {
    pub cfg: TillConfig,
    pub edge: EdgeClient,
    pub journal: Mutex<Journal>,
    pub sessions: Mutex<HashMap<String, Session>>,
    pub coupon: RwLock<Vec<CouponEvent>>,
    pub status: RwLock<EdgeStatus>,
}

pub type Shared = Arc<App>;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("entropy");
    hex::encode(b)
}

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(slips::home))
        .route("/login", get(login::login_page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/legs/add", post(slips::add_leg))
        .route("/legs/clear", post(slips::clear_legs))
        .route("/bet", post(slips::place_bet))
        .route("/slip/{ticket}", get(slips::slip_page))
        .route("/slip/{ticket}/reprint", post(slips::reprint))
        .route("/payout", get(payout::payout_page))
        .route("/payout/{ticket}", post(payout::pay))
        .route("/void", get(void::void_page).post(void::void))
        .route("/drawer", get(drawer::drawer_page).post(drawer::drawer))
        .route(
            "/cashup",
            get(cashup_page::cashup_page).post(cashup_page::cashup),
        )
        .route("/report", get(report::report))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app)
}

/// Keep the edge status fresh: probe every 2 s, reload the coupon every 30 s. Reconnects on
/// its own; nothing is ever queued for later.
pub async fn status_loop(app: Shared) {
    let mut last_coupon = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        match app.edge.whoami().await {
            Ok(v) => {
                let currency = v["currency"].as_str().unwrap_or("GBP").to_string();
                let digits = outpost_core::money::Currency::parse(&currency)
                    .map(|c| c.minor_digits())
                    .unwrap_or(2);
                {
                    let mut s = app.status.write().unwrap();
                    if !s.online {
                        tracing::info!("edge node reachable");
                    }
                    *s = EdgeStatus {
                        online: true,
                        text: "online".into(),
                        currency,
                        digits,
                        node_id: v["node_id"].as_str().unwrap_or("").into(),
                    };
                }
                if last_coupon.elapsed() > Duration::from_secs(30)
                    && let Ok(m) = app.edge.markets().await
                {
                    *app.coupon.write().unwrap() = coupon::build(&m);
                    last_coupon = std::time::Instant::now();
                }
            }
            Err(e) => {
                let mut s = app.status.write().unwrap();
                if s.online {
                    tracing::warn!("edge node unreachable: {e}");
                }
                s.online = false;
                s.text = match &e {
                    EdgeError::Offline(m) => m.clone(),
                    EdgeError::Refused { code, .. } => code.clone(),
                };
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn cookie(h: &HeaderMap) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("till_sid=").map(str::to_string))
}

struct Ctx {
    sid: String,
    staff_id: String,
    role: Role,
}

/// The logged-in session, if the request carries a live session cookie.
fn session_of(app: &App, h: &HeaderMap) -> Option<Ctx> {
    let sid = cookie(h)?;
    let s = app.sessions.lock().unwrap();
    let sess = s.get(&sid)?;
    Some(Ctx {
        staff_id: sess.staff_id.clone(),
        role: sess.role,
        sid,
    })
}

/// A page handler that takes a `Ctx` runs only for a logged-in cashier; anyone else is
/// redirected to the login page before the handler (or its form parsing) runs.
impl FromRequestParts<Shared> for Ctx {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Ctx, Redirect> {
        session_of(app, &parts.headers).ok_or_else(|| Redirect::to("/login"))
    }
}

fn flash(app: &App, sid: &str, ok: bool, code: &str, msg: impl Into<String>) {
    if let Some(s) = app.sessions.lock().unwrap().get_mut(sid) {
        s.flash = Some((ok, code.to_string(), msg.into()));
    }
}

fn render(app: &App, sid: Option<&str>, title: &str, body: &str) -> Html<String> {
    let (staff, role, fl) = match sid.and_then(|s| {
        app.sessions
            .lock()
            .unwrap()
            .get_mut(s)
            .map(|x| (x.staff_id.clone(), x.role, x.flash.take()))
    }) {
        Some((a, r, f)) => (Some(a), Some(r), f),
        None => (None, None, None),
    };
    let st = app.status.read().unwrap();
    let role_s = match role {
        Some(Role::Manager) => "shop manager",
        _ => "cashier",
    };
    Html(page(
        &Frame {
            title,
            staff: staff.as_deref().map(|s| (s, role_s)),
            online: st.online,
            status_text: &st.text,
            shop: app.cfg.shop_id.as_str(),
            terminal: app.cfg.terminal_id.as_str(),
            flash: fl,
        },
        body,
    ))
}

fn money(app: &App, minor: i64) -> String {
    let st = app.status.read().unwrap();
    format!("{} {}", st.currency, fmt_minor(minor, st.digits))
}

fn digits(app: &App) -> u32 {
    app.status.read().unwrap().digits
}

fn check_pin(cfg: &TillConfig, staff: &str, pin: &str) -> Option<Role> {
    let s = cfg.staff.iter().find(|s| s.staff_id.as_str() == staff)?;
    let h = pin_hash(staff, pin);
    (h.len() == s.pin_sha256.len()
        && h.bytes()
            .zip(s.pin_sha256.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0)
        .then_some(s.role)
}

fn refusal_text(e: &EdgeError) -> String {
    match e {
        EdgeError::Offline(_) => e.to_string(),
        EdgeError::Refused { message, .. } => message.clone(),
    }
}

/// The node refused a till action (`what`: "bet", "payout", "void"): journal the refusal, so
/// the cash-up lists it, and tell the cashier why.
fn refused(app: &App, c: &Ctx, what: &str, ticket: Option<&str>, amount_minor: i64, e: &EdgeError) {
    let detail = format!("{what}: {}", e.code());
    let r = app.journal.lock().unwrap().append(
        now_ms(),
        &c.staff_id,
        Kind::Refused,
        ticket,
        amount_minor,
        0,
        &detail,
    );
    if let Err(je) = r {
        tracing::error!(error = %je, %detail, "journal: refusal not recorded");
    }
    flash(app, &c.sid, false, e.code(), refusal_text(e));
}

/// Journal a ticket action the node completed, once: when a retried request is answered again
/// (same idempotency key), the drawer must not count the cash twice.
fn journal_once(
    app: &App,
    c: &Ctx,
    kind: Kind,
    ticket: &str,
    amount_minor: i64,
    drawer_delta_minor: i64,
    detail: &str,
) {
    let j = app.journal.lock().unwrap();
    let r = match j.has_entry(kind, ticket) {
        Ok(true) => return,
        Ok(false) => j.append(
            now_ms(),
            &c.staff_id,
            kind,
            Some(ticket),
            amount_minor,
            drawer_delta_minor,
            detail,
        ),
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        tracing::error!(error = %e, ticket, kind = kind.as_str(), "journal: entry not recorded");
    }
}

/// Idempotency key for a till action: the terminal plus a hash of what the action is.
fn action_key(app: &App, prefix: &str, parts: &[&str]) -> String {
    let h = outpost_core::log::sha256(parts.join("\u{1f}").as_bytes());
    format!("{prefix}-{}-{}", app.cfg.terminal_id, &hex::encode(h)[..32])
}
