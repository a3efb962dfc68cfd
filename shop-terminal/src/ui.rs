//! The till's web UI (localhost) and what each action does: log in by PIN (with the drawer
//! float), build a slip by event code + selection code, place it on the edge node, journal
//! it, print it; scan and pay a ticket; void; drawer movements; cash-up; reports.
//! Forms post and redirect (no client-side state), so the UI works with JavaScript off.

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
use axum::extract::{Form, Path, Query, State};
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
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/legs/add", post(add_leg))
        .route("/legs/clear", post(clear_legs))
        .route("/bet", post(place_bet))
        .route("/slip/{ticket}", get(slip_page))
        .route("/slip/{ticket}/reprint", post(reprint))
        .route("/payout", get(payout_page))
        .route("/payout/{ticket}", post(pay))
        .route("/void", get(void_page).post(void))
        .route("/drawer", get(drawer_page).post(drawer))
        .route("/cashup", get(cashup_page).post(cashup))
        .route("/report", get(report))
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

/// The logged-in session, or a redirect to the login page (boxed: a response is large).
fn ctx(app: &App, h: &HeaderMap) -> Result<Ctx, Box<Response>> {
    let login = || Box::new(Redirect::to("/login").into_response());
    let sid = cookie(h).ok_or_else(login)?;
    let s = app.sessions.lock().unwrap();
    let sess = s.get(&sid).ok_or_else(login)?;
    Ok(Ctx {
        staff_id: sess.staff_id.clone(),
        role: sess.role,
        sid,
    })
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

// ---------- login ----------

async fn login_page(State(app): State<Shared>) -> Html<String> {
    let need_float = app
        .journal
        .lock()
        .unwrap()
        .open_period()
        .ok()
        .flatten()
        .is_none();
    let opts: String = app
        .cfg
        .staff
        .iter()
        .map(|s| {
            format!(
                "<option value=\"{}\">{} ({})</option>",
                esc(s.staff_id.as_str()),
                esc(&s.name),
                esc(s.staff_id.as_str())
            )
        })
        .collect();
    let float = if need_float {
        "<p>No drawer is open on this till: count the float into the drawer.</p><label for=\"float\">Float</label><input id=\"float\" name=\"float\" inputmode=\"decimal\" required>"
    } else {
        ""
    };
    let body = format!(
        "<form method=\"post\" action=\"/login\"><label for=\"staff\">Staff</label><select id=\"staff-select\" name=\"staff_id\">{opts}</select> <label for=\"pin\">PIN</label><input id=\"pin\" name=\"pin\" type=\"password\" inputmode=\"numeric\" autocomplete=\"off\" required autofocus> {float} <button id=\"login\" class=\"primary\">Log in</button></form>"
    );
    render(&app, None, "Log in", &body)
}

#[derive(Deserialize)]
struct LoginForm {
    staff_id: String,
    pin: String,
    #[serde(default)]
    float: Option<String>,
}

async fn login(State(app): State<Shared>, Form(f): Form<LoginForm>) -> Response {
    let fail = |code: &str, msg: &str| {
        let body = format!(
            "<div id=\"flash\" class=\"flash err\" role=\"alert\"><span id=\"flash-code\">{code}</span> {msg}</div><p><a href=\"/login\">Try again</a></p>"
        );
        render(&app, None, "Log in", &body).into_response()
    };
    let Some(role) = check_pin(&app.cfg, &f.staff_id, &f.pin) else {
        return fail("PIN_WRONG", "unknown staff member or wrong PIN");
    };
    let j = app.journal.lock().unwrap();
    let now = now_ms();
    match j.open_period() {
        Ok(Some(_)) => {}
        Ok(None) => {
            let Some(float) = f
                .float
                .as_deref()
                .and_then(|x| parse_minor(x, digits(&app)))
            else {
                return fail(
                    "FLOAT_REQUIRED",
                    "count the float into the drawer and enter it",
                );
            };
            if let Err(e) = j.start_period(now, &f.staff_id, float) {
                return fail("JOURNAL_ERROR", &e.to_string());
            }
        }
        Err(e) => return fail("JOURNAL_ERROR", &e.to_string()),
    }
    let _ = j.append(now, &f.staff_id, Kind::Login, None, 0, 0, "");
    drop(j);
    let sid = random_hex(16);
    app.sessions.lock().unwrap().insert(
        sid.clone(),
        Session {
            staff_id: f.staff_id,
            role,
            legs: vec![],
            bet_idem: random_hex(12),
            flash: None,
        },
    );
    (
        [(
            header::SET_COOKIE,
            format!("till_sid={sid}; HttpOnly; SameSite=Strict; Path=/"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

async fn logout(State(app): State<Shared>, h: HeaderMap) -> Response {
    if let Ok(c) = ctx(&app, &h) {
        let _ =
            app.journal
                .lock()
                .unwrap()
                .append(now_ms(), &c.staff_id, Kind::Logout, None, 0, 0, "");
        app.sessions.lock().unwrap().remove(&c.sid);
    }
    Redirect::to("/login").into_response()
}

// ---------- bets ----------

#[derive(Deserialize)]
struct HomeQuery {
    #[serde(default)]
    q: Option<String>,
}

async fn home(State(app): State<Shared>, h: HeaderMap, Query(hq): Query<HomeQuery>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let (legs, idem) = {
        let s = app.sessions.lock().unwrap();
        let x = &s[&c.sid];
        (x.legs.clone(), x.bet_idem.clone())
    };
    let mut body = String::from(
        "<form method=\"post\" action=\"/legs/add\" aria-label=\"Add selection\"><label for=\"event-code\">Event code</label><input id=\"event-code\" name=\"event_code\" inputmode=\"numeric\" size=\"6\" autofocus required> <label for=\"selection-code\">Selection (1 X 2 / O U / H A)</label><input id=\"selection-code\" name=\"selection_code\" size=\"3\" required> <button id=\"add-leg\">Add</button></form>",
    );
    if !legs.is_empty() {
        body.push_str("<h2>Slip</h2><table id=\"legs\"><tr><th>Code</th><th>Event</th><th>Market</th><th>Selection</th><th>Price</th><th>Each-way terms</th></tr>");
        for l in &legs {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                l.event_code,
                esc(&l.event),
                esc(&l.market),
                esc(&l.selection),
                esc(&l.price),
                esc(l.each_way.as_deref().unwrap_or("win only"))
            ));
        }
        body.push_str("</table><form method=\"post\" action=\"/legs/clear\"><button id=\"clear-legs\">Clear slip</button></form>");
        // Each-way is offered when every leg's market has each-way terms. Keyboard: typing
        // `e` in the stake field toggles it ("5e" = £5 each-way); touch: the large checkbox.
        let each_way = if legs.iter().all(|l| l.each_way.is_some()) {
            "<label class=\"ew\"><input type=\"checkbox\" id=\"each-way\" name=\"each_way\" value=\"1\" accesskey=\"e\"> Each-way (E/W): the stake is per part, twice it is taken <kbd>E</kbd></label> "
        } else {
            ""
        };
        body.push_str(&format!(
            "<form method=\"post\" action=\"/bet\" aria-label=\"Place bet\"><input type=\"hidden\" name=\"idem\" value=\"{idem}\"><fieldset><legend>{}</legend><label for=\"stake\">Stake</label><input id=\"stake\" name=\"stake\" inputmode=\"decimal\" required> {each_way}<label for=\"player-id\">Player card / ID (optional)</label><input id=\"player-id\" name=\"player_id\" autocomplete=\"off\"> <label><input type=\"checkbox\" id=\"age-confirmed\" name=\"age_confirmed\" value=\"1\"> Customer is over the age limit (checked at the counter)</label></fieldset><button id=\"place-bet\" class=\"primary\">Take cash and print slip</button></form>",
            if legs.len() == 1 { "Single".to_string() } else { format!("Accumulator, {} legs", legs.len()) }
        ));
    }
    // The coupon: open events, searchable.
    let q = hq.q.unwrap_or_default().to_lowercase();
    body.push_str(&format!("<h2>Coupon</h2><form method=\"get\" action=\"/\"><label for=\"q\">Find</label><input id=\"q\" name=\"q\" value=\"{}\"> <button>Search</button></form><table id=\"coupon\"><tr><th>Code</th><th>Event</th><th>Kick-off</th><th>Selections</th></tr>", esc(&q)));
    let coupon = app.coupon.read().unwrap();
    for e in coupon
        .iter()
        .filter(|e| e.selections.iter().any(|s| s.open))
        .filter(|e| q.is_empty() || e.name.to_lowercase().contains(&q))
        .take(40)
    {
        let sels: Vec<String> = e
            .selections
            .iter()
            .filter(|s| s.open)
            .map(|s| format!("{} {} {}", esc(&s.code), esc(&s.label), esc(&s.price)))
            .collect();
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.code,
            esc(&e.name),
            fmt_time(e.kickoff_ms),
            sels.join(" &middot; ")
        ));
    }
    body.push_str("</table>");
    render(&app, Some(&c.sid), "Bets", &body).into_response()
}

#[derive(Deserialize)]
struct AddLegForm {
    event_code: String,
    selection_code: String,
}

async fn add_leg(State(app): State<Shared>, h: HeaderMap, Form(f): Form<AddLegForm>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let found = {
        let coupon = app.coupon.read().unwrap();
        coupon::find(&coupon, &f.event_code, &f.selection_code)
            .map(|(e, s)| (e.code, e.name.clone(), s.clone()))
    };
    match found {
        None => flash(
            &app,
            &c.sid,
            false,
            "UNKNOWN_CODE",
            format!(
                "no selection {} on event {}",
                f.selection_code.trim(),
                f.event_code.trim()
            ),
        ),
        Some((_, _, s)) if !s.open => flash(
            &app,
            &c.sid,
            false,
            "MARKET_NOT_OPEN",
            "that market is not open",
        ),
        Some((code, name, s)) => {
            let mut ss = app.sessions.lock().unwrap();
            let sess = ss.get_mut(&c.sid).unwrap();
            if sess.legs.iter().any(|l| l.event_code == code) {
                sess.flash = Some((
                    false,
                    "DUPLICATE_EVENT".into(),
                    "an accumulator may hold one selection per event".into(),
                ));
            } else {
                sess.legs.push(Leg {
                    event_code: code,
                    event: name,
                    market: s.market,
                    selection: s.label,
                    selection_id: s.selection_id,
                    price: s.price,
                    each_way: s.each_way,
                });
            }
        }
    }
    Redirect::to("/").into_response()
}

async fn clear_legs(State(app): State<Shared>, h: HeaderMap) -> Response {
    if let Ok(c) = ctx(&app, &h) {
        app.sessions
            .lock()
            .unwrap()
            .get_mut(&c.sid)
            .unwrap()
            .legs
            .clear();
    }
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
struct BetForm {
    idem: String,
    stake: String,
    #[serde(default)]
    player_id: String,
    #[serde(default)]
    age_confirmed: Option<String>,
    #[serde(default)]
    each_way: Option<String>,
}

async fn place_bet(State(app): State<Shared>, h: HeaderMap, Form(f): Form<BetForm>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let legs = app.sessions.lock().unwrap()[&c.sid].legs.clone();
    let (currency, dig) = {
        let s = app.status.read().unwrap();
        (s.currency.clone(), s.digits)
    };
    let Some(stake) = parse_minor(&f.stake, dig).filter(|s| *s > 0) else {
        flash(
            &app,
            &c.sid,
            false,
            "INVALID_STAKE",
            "enter the stake as an amount, e.g. 5 or 2.50",
        );
        return Redirect::to("/").into_response();
    };
    if legs.is_empty() {
        flash(&app, &c.sid, false, "NO_LEGS", "add a selection first");
        return Redirect::to("/").into_response();
    }
    let player = f.player_id.trim();
    let mut body = json!({
        "staff_id": c.staff_id, "stake_minor": stake, "currency": currency,
        "legs": legs.iter().map(|l| json!({"selection_id": l.selection_id, "price": l.price})).collect::<Vec<_>>(),
        "age_confirmed": f.age_confirmed.is_some(),
    });
    // Each-way: `stake` is the unit on each part; the edge takes (and the drawer gets) twice.
    let each_way = f.each_way.is_some();
    if each_way {
        body["each_way"] = json!(true);
    }
    if !player.is_empty() {
        body["player_id"] = json!(player);
    }
    let idem = format!("bet-{}-{}", app.cfg.terminal_id, f.idem);
    match app.edge.place_bet(&idem, body).await {
        Err(e) => {
            let _ = app.journal.lock().unwrap().append(
                now_ms(),
                &c.staff_id,
                Kind::Refused,
                None,
                if each_way {
                    stake.saturating_mul(2)
                } else {
                    stake
                },
                0,
                &format!("bet: {}", e.code()),
            );
            flash(&app, &c.sid, false, e.code(), refusal_text(&e));
            Redirect::to("/").into_response()
        }
        Ok(v) => {
            let t = &v["ticket"];
            let slip = Slip {
                shop_id: app.cfg.shop_id.to_string(),
                shop_name: app.cfg.shop_name.clone(),
                terminal_id: app.cfg.terminal_id.to_string(),
                staff_id: c.staff_id.clone(),
                node_id: v["node_id"].as_str().unwrap_or("").into(),
                ticket_id: t["ticket_id"].as_str().unwrap_or("").into(),
                issued_at_ms: t["issued_at_ms"].as_i64().unwrap_or(0),
                expires_at_ms: t["expires_at_ms"].as_i64().unwrap_or(0),
                currency: currency.clone(),
                minor_digits: dig,
                holder: t["holder"].as_str().unwrap_or("cash").into(),
                legs: legs
                    .iter()
                    .map(|l| SlipLeg {
                        event: l.event.clone(),
                        market: l.market.clone(),
                        selection: l.selection.clone(),
                        price: l.price.clone(),
                    })
                    .collect(),
                stake_minor: t["bet"]["stake_minor"].as_i64().unwrap_or(stake),
                potential_minor: t["bet"]["potential_payout_minor"].as_i64().unwrap_or(0),
                record_seq: v["record_seq"].as_u64(),
                record_hash: v["record_hash"].as_str().map(str::to_string),
                terms: app.cfg.terms.clone(),
                each_way: crate::slip::SlipEachWay::from_ticket(t),
            };
            let ticket = slip.ticket_id.clone();
            // Cash bets put the stake in the drawer; account bets are staked from the wallet.
            let drawer = if slip.holder == "cash" {
                slip.stake_minor
            } else {
                0
            };
            {
                let mut j = app.journal.lock().unwrap();
                let json = serde_json::to_string(&slip).expect("slip serialises");
                if let Err(e) = j.record_slip(
                    slip.issued_at_ms,
                    &c.staff_id,
                    &ticket,
                    slip.stake_minor,
                    drawer,
                    &json,
                ) {
                    tracing::error!("journal: {e}");
                }
            }
            {
                let mut ss = app.sessions.lock().unwrap();
                let s = ss.get_mut(&c.sid).unwrap();
                s.legs.clear();
                s.bet_idem = random_hex(12);
            }
            print_slip(&app, &c, &slip, false).await;
            Redirect::to(&format!("/slip/{ticket}")).into_response()
        }
    }
}

fn refusal_text(e: &EdgeError) -> String {
    match e {
        EdgeError::Offline(_) => e.to_string(),
        EdgeError::Refused { message, .. } => message.clone(),
    }
}

async fn print_slip(app: &Shared, c: &Ctx, slip: &Slip, duplicate: bool) {
    let bytes = slip.escpos(duplicate);
    let cfg = app.cfg.printer.clone();
    let r = tokio::task::spawn_blocking(move || printer::print(&cfg, &bytes))
        .await
        .unwrap_or_else(|e| Err(printer::PrintError::Offline(e.to_string())));
    let j = app.journal.lock().unwrap();
    match r {
        Ok(()) => {
            let _ = j.append(
                now_ms(),
                &c.staff_id,
                if duplicate {
                    Kind::Reprint
                } else {
                    Kind::Printed
                },
                Some(&slip.ticket_id),
                0,
                0,
                "",
            );
            flash(
                app,
                &c.sid,
                true,
                if duplicate { "REPRINTED" } else { "PRINTED" },
                format!("ticket {} printed", slip.ticket_id),
            );
        }
        Err(e) => {
            let _ = j.append(
                now_ms(),
                &c.staff_id,
                Kind::PrintFailed,
                Some(&slip.ticket_id),
                0,
                0,
                e.code(),
            );
            flash(
                app,
                &c.sid,
                false,
                e.code(),
                format!(
                    "{e}. The bet is placed and journaled: fix the printer, then press Reprint."
                ),
            );
        }
    }
}

fn load_slip(app: &App, ticket: &str) -> Option<Slip> {
    let j = app.journal.lock().unwrap();
    j.slip_json(ticket)
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str(&s).ok())
}

async fn slip_page(
    State(app): State<Shared>,
    h: HeaderMap,
    Path(ticket): Path<String>,
) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let body = match load_slip(&app, &ticket) {
        Some(s) => format!(
            "<p>Ticket <strong id=\"slip-ticket\">{t}</strong>: stake {stake}, potential return {pot}.</p>{html}<form method=\"post\" action=\"/slip/{t}/reprint\"><button id=\"reprint\">Reprint (duplicate)</button></form><p><a class=\"btn\" href=\"/\" id=\"next-bet\">Next bet</a></p>",
            t = esc(&s.ticket_id),
            stake = esc(&s.money(s.stake_minor)),
            pot = esc(&s.money(s.potential_minor)),
            html = s.html(false)
        ),
        None => "<p role=\"alert\">No slip with that ticket id in this till's journal.</p>".into(),
    };
    render(&app, Some(&c.sid), "Slip", &body).into_response()
}

async fn reprint(State(app): State<Shared>, h: HeaderMap, Path(ticket): Path<String>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match load_slip(&app, &ticket) {
        Some(s) => print_slip(&app, &c, &s, true).await,
        None => flash(
            &app,
            &c.sid,
            false,
            "SLIP_NOT_IN_JOURNAL",
            "no slip with that ticket id in this till's journal",
        ),
    }
    Redirect::to(&format!("/slip/{}", urlenc(&ticket))).into_response()
}

/// Idempotency key for a till action: the terminal plus a hash of what the action is.
fn action_key(app: &App, prefix: &str, parts: &[&str]) -> String {
    let h = outpost_core::log::sha256(parts.join("\u{1f}").as_bytes());
    format!("{prefix}-{}-{}", app.cfg.terminal_id, &hex::encode(h)[..32])
}

fn urlenc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------- payout ----------

#[derive(Deserialize)]
struct TicketQuery {
    #[serde(default)]
    ticket: Option<String>,
}

async fn payout_page(
    State(app): State<Shared>,
    h: HeaderMap,
    Query(q): Query<TicketQuery>,
) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let mut body = String::from(
        "<form method=\"get\" action=\"/payout\" aria-label=\"Scan ticket\"><label for=\"scan\">Scan or type the ticket number</label><input id=\"scan\" name=\"ticket\" inputmode=\"numeric\" autocomplete=\"off\" autofocus required> <button id=\"lookup\">Look up</button></form>",
    );
    if let Some(raw) = q.ticket.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // The check digit is verified here first, so a misread never reaches the node.
        match TicketId::parse(raw) {
            Err(e) => {
                let code = match e {
                    outpost_core::edge::shop::TicketIdError::Unreadable => "TICKET_UNREADABLE",
                    outpost_core::edge::shop::TicketIdError::CheckDigit => "TICKET_CHECK_DIGIT",
                };
                body.push_str(&format!("<div id=\"lookup-result\" class=\"flash err\" role=\"alert\"><span id=\"lookup-code\">{code}</span> {}</div>", esc(&e.to_string())));
            }
            Ok(t) => match app.edge.ticket(t.as_str()).await {
                Err(e) => body.push_str(&format!("<div id=\"lookup-result\" class=\"flash err\" role=\"alert\"><span id=\"lookup-code\">{}</span> {}</div>", esc(e.code()), esc(&refusal_text(&e)))),
                Ok(v) => {
                    let state = v["state"].as_str().unwrap_or("?");
                    body.push_str(&format!(
                        "<div id=\"lookup-result\" class=\"flash {}\" role=\"status\">Ticket {} <span id=\"lookup-code\">{}</span>: stake {}, issued {} at {}/{}{}</div>",
                        if state == "payable" { "ok" } else { "err" },
                        esc(t.as_str()),
                        state.to_uppercase(),
                        money(&app, v["bet"]["stake_minor"].as_i64().unwrap_or(0)),
                        fmt_time(v["issued_at_ms"].as_i64().unwrap_or(0)),
                        esc(v["shop_id"].as_str().unwrap_or("")),
                        esc(v["terminal_id"].as_str().unwrap_or("")),
                        if state == "payable" { format!(", <strong>pay {}</strong>", money(&app, v["payable_minor"].as_i64().unwrap_or(0))) } else { String::new() }
                    ));
                    if state == "payable" {
                        body.push_str(&format!("<form method=\"post\" action=\"/payout/{}\"><label><input type=\"checkbox\" id=\"id-checked\" name=\"id_checked\" value=\"1\"> Customer ID checked (needed above the cash threshold)</label> <button id=\"pay\" class=\"primary\">Pay {}</button></form>", esc(t.as_str()), money(&app, v["payable_minor"].as_i64().unwrap_or(0))));
                    }
                }
            },
        }
    }
    render(&app, Some(&c.sid), "Payout", &body).into_response()
}

#[derive(Deserialize)]
struct PayForm {
    #[serde(default)]
    id_checked: Option<String>,
}

async fn pay(
    State(app): State<Shared>,
    h: HeaderMap,
    Path(ticket): Path<String>,
    Form(f): Form<PayForm>,
) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    // The same request from this till (a retry after a lost reply) reuses its key, so it cannot
    // pay twice; any other till or request is a new key, refused by the node once paid.
    let idem = action_key(
        &app,
        "payout",
        &[
            &ticket,
            &c.staff_id,
            if f.id_checked.is_some() { "id" } else { "" },
        ],
    );
    match app
        .edge
        .payout(
            &ticket,
            &idem,
            json!({"staff_id": c.staff_id, "id_checked": f.id_checked.is_some()}),
        )
        .await
    {
        Err(e) => {
            let _ = app.journal.lock().unwrap().append(
                now_ms(),
                &c.staff_id,
                Kind::Refused,
                Some(&ticket),
                0,
                0,
                &format!("payout: {}", e.code()),
            );
            flash(&app, &c.sid, false, e.code(), refusal_text(&e));
        }
        Ok(v) => {
            let amount = v["paid"]["payout_minor"].as_i64().unwrap_or(0);
            let j = app.journal.lock().unwrap();
            if !j.has_entry(Kind::Payout, &ticket).unwrap_or(false) {
                let _ = j.append(
                    now_ms(),
                    &c.staff_id,
                    Kind::Payout,
                    Some(&ticket),
                    amount,
                    -amount,
                    "",
                );
            }
            flash(
                &app,
                &c.sid,
                true,
                "PAID",
                format!(
                    "pay {} to the customer for ticket {ticket}",
                    money(&app, amount)
                ),
            );
        }
    }
    Redirect::to("/payout").into_response()
}

// ---------- void ----------

async fn void_page(State(app): State<Shared>, h: HeaderMap) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let body = "<form method=\"post\" action=\"/void\"><label for=\"void-ticket\">Ticket number</label><input id=\"void-ticket\" name=\"ticket\" inputmode=\"numeric\" required autofocus> <label for=\"void-reason\">Reason</label><input id=\"void-reason\" name=\"reason\" required maxlength=\"200\"><fieldset><legend>Shop manager (after the void window, or another cashier's ticket)</legend><label for=\"mgr\">Manager id</label><input id=\"mgr\" name=\"manager_id\"> <label for=\"mgr-pin\">Manager PIN</label><input id=\"mgr-pin\" name=\"manager_pin\" type=\"password\" inputmode=\"numeric\"></fieldset><button id=\"void\" class=\"danger\">Void ticket and refund stake</button></form>";
    render(&app, Some(&c.sid), "Void", body).into_response()
}

#[derive(Deserialize)]
struct VoidForm {
    ticket: String,
    reason: String,
    #[serde(default)]
    manager_id: String,
    #[serde(default)]
    manager_pin: String,
}

async fn void(State(app): State<Shared>, h: HeaderMap, Form(f): Form<VoidForm>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let ticket = f.ticket.trim().to_string();
    // A logged-in shop manager authorises their own voids.
    let manager = if f.manager_id.trim().is_empty() {
        (c.role == Role::Manager).then(|| c.staff_id.clone())
    } else if check_pin(&app.cfg, f.manager_id.trim(), &f.manager_pin) == Some(Role::Manager) {
        Some(f.manager_id.trim().to_string())
    } else {
        flash(
            &app,
            &c.sid,
            false,
            "MANAGER_PIN_WRONG",
            "that is not a shop manager's id and PIN",
        );
        return Redirect::to("/void").into_response();
    };
    let idem = action_key(
        &app,
        "void",
        &[
            &ticket,
            &c.staff_id,
            f.reason.trim(),
            manager.as_deref().unwrap_or(""),
        ],
    );
    let mut body = json!({"staff_id": c.staff_id, "reason": f.reason});
    if let Some(m) = &manager {
        body["authorised_by"] = json!(m);
    }
    match app.edge.void(&ticket, &idem, body).await {
        Err(e) => {
            let _ = app.journal.lock().unwrap().append(
                now_ms(),
                &c.staff_id,
                Kind::Refused,
                Some(&ticket),
                0,
                0,
                &format!("void: {}", e.code()),
            );
            flash(&app, &c.sid, false, e.code(), refusal_text(&e));
        }
        Ok(v) => {
            let refund = v["voided"]["refund_minor"].as_i64().unwrap_or(0);
            let cash = v["holder"] == "cash";
            let detail = match &manager {
                None => format!("cancelled: {}", f.reason.trim()),
                Some(m) => format!("voided by {m}: {}", f.reason.trim()),
            };
            let j = app.journal.lock().unwrap();
            if !j.has_entry(Kind::Void, &ticket).unwrap_or(false) {
                let _ = j.append(
                    now_ms(),
                    &c.staff_id,
                    Kind::Void,
                    Some(&ticket),
                    refund,
                    if cash { -refund } else { 0 },
                    &detail,
                );
            }
            flash(
                &app,
                &c.sid,
                true,
                "VOIDED",
                if cash {
                    format!("refund {} to the customer", money(&app, refund))
                } else {
                    format!(
                        "stake {} returned to the player's account",
                        money(&app, refund)
                    )
                },
            );
        }
    }
    Redirect::to("/void").into_response()
}

// ---------- drawer ----------

async fn drawer_page(State(app): State<Shared>, h: HeaderMap) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let expected = {
        let j = app.journal.lock().unwrap();
        j.open_period()
            .ok()
            .flatten()
            .and_then(|p| j.period_entries(p.id).ok())
            .map(|e| cashup::expected_drawer(&e))
    };
    let body = format!(
        "<p>Cash expected in the drawer: <strong id=\"drawer-expected\">{}</strong></p><form method=\"post\" action=\"/drawer\"><label for=\"action\">Movement</label><select id=\"action\" name=\"action\"><option value=\"pay_in\">Pay-in (cash into drawer)</option><option value=\"pay_out\">Pay-out (cash out of drawer)</option><option value=\"drop\">Drop to safe</option></select> <label for=\"amount\">Amount</label><input id=\"amount\" name=\"amount\" inputmode=\"decimal\" required> <label for=\"note\">Note</label><input id=\"note\" name=\"note\" required> <button id=\"record-movement\" class=\"primary\">Record</button></form>",
        expected
            .map(|e| money(&app, e))
            .unwrap_or_else(|| "no drawer open".into())
    );
    render(&app, Some(&c.sid), "Drawer", &body).into_response()
}

#[derive(Deserialize)]
struct DrawerForm {
    action: String,
    amount: String,
    note: String,
}

async fn drawer(State(app): State<Shared>, h: HeaderMap, Form(f): Form<DrawerForm>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(a) = parse_minor(&f.amount, digits(&app)).filter(|a| *a > 0) else {
        flash(
            &app,
            &c.sid,
            false,
            "INVALID_AMOUNT",
            "enter an amount, e.g. 20 or 12.50",
        );
        return Redirect::to("/drawer").into_response();
    };
    let (kind, delta) = match f.action.as_str() {
        "pay_in" => (Kind::PayIn, a),
        "pay_out" => (Kind::PayOut, -a),
        "drop" => (Kind::Drop, -a),
        _ => {
            flash(
                &app,
                &c.sid,
                false,
                "INVALID_MOVEMENT",
                "unknown drawer movement",
            );
            return Redirect::to("/drawer").into_response();
        }
    };
    let r = app.journal.lock().unwrap().append(
        now_ms(),
        &c.staff_id,
        kind,
        None,
        a,
        delta,
        f.note.trim(),
    );
    match r {
        Ok(_) => flash(
            &app,
            &c.sid,
            true,
            "RECORDED",
            format!("{} {}", kind.as_str().replace('_', "-"), money(&app, a)),
        ),
        Err(e) => flash(&app, &c.sid, false, "JOURNAL_ERROR", e.to_string()),
    }
    Redirect::to("/drawer").into_response()
}

// ---------- cash-up ----------

async fn cashup_page(State(app): State<Shared>, h: HeaderMap) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let body = "<p>Count the drawer, then a shop manager signs off. The till compares its journal with the edge node's records and lists every difference.</p><form method=\"post\" action=\"/cashup\"><label for=\"counted\">Cash counted</label><input id=\"counted\" name=\"counted\" inputmode=\"decimal\" required autofocus><fieldset><legend>Shop manager sign-off</legend><label for=\"cu-mgr\">Manager id</label><input id=\"cu-mgr\" name=\"manager_id\" required> <label for=\"cu-pin\">PIN</label><input id=\"cu-pin\" name=\"manager_pin\" type=\"password\" inputmode=\"numeric\" required></fieldset><button id=\"do-cashup\" class=\"primary\">Cash up</button></form>";
    render(&app, Some(&c.sid), "Cash-up", body).into_response()
}

#[derive(Deserialize)]
struct CashupForm {
    counted: String,
    manager_id: String,
    manager_pin: String,
}

async fn cashup(State(app): State<Shared>, h: HeaderMap, Form(f): Form<CashupForm>) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let back = |code: &str, msg: String| {
        flash(&app, &c.sid, false, code, msg);
        Redirect::to("/cashup").into_response()
    };
    if check_pin(&app.cfg, f.manager_id.trim(), &f.manager_pin) != Some(Role::Manager) {
        return back(
            "MANAGER_PIN_WRONG",
            "cash-up needs a shop manager's id and PIN".into(),
        );
    }
    let Some(counted) = parse_minor(&f.counted, digits(&app)) else {
        return back(
            "INVALID_AMOUNT",
            "enter the counted cash, e.g. 153.20".into(),
        );
    };
    let period = match app.journal.lock().unwrap().open_period() {
        Ok(Some(p)) => p,
        _ => return back("NO_DRAWER", "no drawer is open on this till".into()),
    };
    let now = now_ms();
    let report = match app.edge.report(period.opened_at_ms, now + 1).await {
        Ok(r) => r,
        Err(e) => {
            return back(
                e.code(),
                format!(
                    "cannot reconcile without the edge node: {}",
                    refusal_text(&e)
                ),
            );
        }
    };
    let entries = app
        .journal
        .lock()
        .unwrap()
        .period_entries(period.id)
        .unwrap_or_default();
    let edge_entries: Vec<Value> = report["entries"].as_array().cloned().unwrap_or_default();
    let diffs = cashup::reconcile(&entries, &edge_entries, app.cfg.terminal_id.as_str());
    let expected = cashup::expected_drawer(&entries);
    let over_short = counted - expected;
    if let Err(e) = app.journal.lock().unwrap().close_period(
        period.id,
        now,
        &c.staff_id,
        f.manager_id.trim(),
        counted,
        expected,
    ) {
        return back("JOURNAL_ERROR", e.to_string());
    }
    let mut body = format!(
        "<table id=\"cashup-result\"><tr><th>Drawer opened</th><td>{}</td></tr><tr><th>Float</th><td>{}</td></tr><tr><th>Expected</th><td id=\"cu-expected\">{}</td></tr><tr><th>Counted</th><td id=\"cu-counted\">{}</td></tr><tr><th>Over / short</th><td id=\"cu-over-short\">{}</td></tr><tr><th>Signed off by</th><td>{}</td></tr><tr><th>Differences with the edge node</th><td id=\"cu-differences\">{}</td></tr></table>",
        fmt_time(period.opened_at_ms),
        money(&app, period.float_minor),
        money(&app, expected),
        money(&app, counted),
        money(&app, over_short),
        esc(f.manager_id.trim()),
        diffs.len()
    );
    if !diffs.is_empty() {
        body.push_str("<h2>Differences</h2><table id=\"diffs\"><tr><th>Ticket</th><th>Event</th><th>Journal</th><th>Edge</th><th>Problem</th></tr>");
        for d in &diffs {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.ticket_id),
                esc(&d.event),
                d.journal_minor.map(|m| money(&app, m)).unwrap_or_default(),
                d.edge_minor.map(|m| money(&app, m)).unwrap_or_default(),
                d.problem
            ));
        }
        body.push_str("</table>");
    }
    body.push_str("<p>The drawer is closed. The next login counts in a new float.</p>");
    let html = render(&app, Some(&c.sid), "Cash-up result", &body);
    app.sessions.lock().unwrap().remove(&c.sid);
    html.into_response()
}

// ---------- report ----------

async fn report(State(app): State<Shared>, h: HeaderMap) -> Response {
    let c = match ctx(&app, &h) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let now = now_ms();
    let day_start = now - now.rem_euclid(86_400_000);
    let (entries, closed) = {
        let j = app.journal.lock().unwrap();
        (
            j.entries_since(day_start).unwrap_or_default(),
            j.closed_periods(day_start).unwrap_or_default(),
        )
    };
    let closed: Vec<(i64, i64)> = closed.iter().map(|(_, c, e, _)| (*c, *e)).collect();
    let d = cashup::terminal_day(&entries, &closed);
    let row = |name: &str, id: &str, x: &cashup::Count| {
        format!(
            "<tr><th>{name}</th><td id=\"{id}-count\">{}</td><td id=\"{id}-amount\">{}</td></tr>",
            x.count,
            money(&app, x.amount_minor)
        )
    };
    let mut body = format!(
        "<p>Business day {} (UTC), printed {}.</p><h2>Terminal {}</h2><table id=\"terminal-report\"><tr><th></th><th>Tickets</th><th>Amount</th></tr>",
        fmt_time(day_start),
        fmt_time(now),
        esc(app.cfg.terminal_id.as_str())
    );
    body.push_str(&row("Sold", "t-sold", &d.sold));
    body.push_str(&row("Paid", "t-paid", &d.paid));
    body.push_str(&row("Voided (manager)", "t-voided", &d.voided));
    body.push_str(&row("Cancelled (in window)", "t-cancelled", &d.cancelled));
    body.push_str(&row("Pay-ins", "t-payins", &d.pay_ins));
    body.push_str(&row("Pay-outs", "t-payouts", &d.pay_outs));
    body.push_str(&row("Drops to safe", "t-drops", &d.drops));
    body.push_str(&format!("<tr><th>Drawer over / short ({} cash-ups)</th><td colspan=\"2\" id=\"t-over-short\">{}</td></tr></table>", d.cash_ups, money(&app, d.over_short_minor)));
    match app.edge.report(day_start, now + 1).await {
        Err(e) => body.push_str(&format!(
            "<p role=\"alert\">Shop report unavailable: {}</p>",
            esc(&refusal_text(&e))
        )),
        Ok(r) => {
            let entries: Vec<Value> = r["entries"].as_array().cloned().unwrap_or_default();
            let shop = cashup::shop_day(&entries);
            body.push_str(&format!("<h2>Shop {}</h2><table id=\"shop-report\"><tr><th>Terminal</th><th>Sold</th><th>Paid</th><th>Voided</th><th>Cancelled</th></tr>", esc(app.cfg.shop_id.as_str())));
            for (t, x) in &shop {
                body.push_str(&format!("<tr><td>{}</td><td>{} / {}</td><td>{} / {}</td><td>{} / {}</td><td>{} / {}</td></tr>", esc(t), x.sold.count, money(&app, x.sold.amount_minor), x.paid.count, money(&app, x.paid.amount_minor), x.voided.count, money(&app, x.voided.amount_minor), x.cancelled.count, money(&app, x.cancelled.amount_minor)));
            }
            body.push_str(&format!(
                "</table><p>Outstanding liability (winning tickets not yet paid): <strong id=\"liability\">{}</strong>. Open tickets: <span id=\"open-tickets\">{}</span>. Expired unpaid tickets: <span id=\"expired-tickets\">{}</span>.</p>",
                money(&app, r["outstanding_winning_minor"].as_i64().unwrap_or(0)),
                r["open_tickets"],
                r["expired_unpaid_tickets"]
            ));
        }
    }
    render(&app, Some(&c.sid), "End-of-day report", &body).into_response()
}
