//! Scan a ticket and pay it: the edge node decides what is owed, the till journals and tells the cashier.

use super::*;

#[derive(Deserialize)]
pub(super) struct TicketQuery {
    #[serde(default)]
    ticket: Option<String>,
}

pub(super) async fn payout_page(
    State(app): State<Shared>,
    c: Ctx,
    Query(q): Query<TicketQuery>,
) -> Response {
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
pub(super) struct PayForm {
    #[serde(default)]
    id_checked: Option<String>,
}

pub(super) async fn pay(
    State(app): State<Shared>,
    c: Ctx,
    Path(ticket): Path<String>,
    Form(f): Form<PayForm>,
) -> Response {
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
        Err(e) => refused(&app, &c, "payout", Some(&ticket), 0, &e),
        Ok(v) => {
            let amount = v["paid"]["payout_minor"].as_i64().unwrap_or(0);
            journal_once(&app, &c, Kind::Payout, &ticket, amount, -amount, "");
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
