//! Build a slip by event code + selection code, place it on the edge node, journal it, print and reprint it.

use super::*;

#[derive(Deserialize)]
pub(super) struct HomeQuery {
    #[serde(default)]
    q: Option<String>,
}

pub(super) async fn home(
    State(app): State<Shared>,
    c: Ctx,
    Query(hq): Query<HomeQuery>,
) -> Response {
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
pub(super) struct AddLegForm {
    event_code: String,
    selection_code: String,
}

pub(super) async fn add_leg(
    State(app): State<Shared>,
    c: Ctx,
    Form(f): Form<AddLegForm>,
) -> Response {
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
            // Logged out in another tab since the request began: nothing to add to.
            let Some(sess) = ss.get_mut(&c.sid) else {
                return Redirect::to("/login").into_response();
            };
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

pub(super) async fn clear_legs(State(app): State<Shared>, c: Ctx) -> Response {
    if let Some(s) = app.sessions.lock().unwrap().get_mut(&c.sid) {
        s.legs.clear();
    }
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
pub(super) struct BetForm {
    idem: String,
    stake: String,
    #[serde(default)]
    player_id: String,
    #[serde(default)]
    age_confirmed: Option<String>,
    #[serde(default)]
    each_way: Option<String>,
}

pub(super) async fn place_bet(
    State(app): State<Shared>,
    c: Ctx,
    Form(f): Form<BetForm>,
) -> Response {
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
            // The refused amount is what the customer handed over (both parts of an each-way).
            let asked = if each_way {
                stake.saturating_mul(2)
            } else {
                stake
            };
            refused(&app, &c, "bet", None, asked, &e);
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
                if let Some(s) = app.sessions.lock().unwrap().get_mut(&c.sid) {
                    s.legs.clear();
                    s.bet_idem = random_hex(12);
                }
            }
            print_slip(&app, &c, &slip, false).await;
            Redirect::to(&format!("/slip/{ticket}")).into_response()
        }
    }
}

pub(super) async fn print_slip(app: &Shared, c: &Ctx, slip: &Slip, duplicate: bool) {
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

pub(super) async fn slip_page(
    State(app): State<Shared>,
    c: Ctx,
    Path(ticket): Path<String>,
) -> Response {
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

pub(super) async fn reprint(
    State(app): State<Shared>,
    c: Ctx,
    Path(ticket): Path<String>,
) -> Response {
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
