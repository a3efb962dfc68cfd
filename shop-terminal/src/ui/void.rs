//! Void a ticket and refund its stake (in the void window, or with a shop manager).

use super::*;

pub(super) async fn void_page(State(app): State<Shared>, c: Ctx) -> Response {
    let body = "<form method=\"post\" action=\"/void\"><label for=\"void-ticket\">Ticket number</label><input id=\"void-ticket\" name=\"ticket\" inputmode=\"numeric\" required autofocus> <label for=\"void-reason\">Reason</label><input id=\"void-reason\" name=\"reason\" required maxlength=\"200\"><fieldset><legend>Shop manager (after the void window, or another cashier's ticket)</legend><label for=\"mgr\">Manager id</label><input id=\"mgr\" name=\"manager_id\"> <label for=\"mgr-pin\">Manager PIN</label><input id=\"mgr-pin\" name=\"manager_pin\" type=\"password\" inputmode=\"numeric\"></fieldset><button id=\"void\" class=\"danger\">Void ticket and refund stake</button></form>";
    render(&app, Some(&c.sid), "Void", body).into_response()
}

#[derive(Deserialize)]
pub(super) struct VoidForm {
    ticket: String,
    reason: String,
    #[serde(default)]
    manager_id: String,
    #[serde(default)]
    manager_pin: String,
}

pub(super) async fn void(State(app): State<Shared>, c: Ctx, Form(f): Form<VoidForm>) -> Response {
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
        Err(e) => refused(&app, &c, "void", Some(&ticket), 0, &e),
        Ok(v) => {
            let refund = v["voided"]["refund_minor"].as_i64().unwrap_or(0);
            let cash = v["holder"] == "cash";
            let detail = match &manager {
                None => format!("cancelled: {}", f.reason.trim()),
                Some(m) => format!("voided by {m}: {}", f.reason.trim()),
            };
            let drawer = if cash { -refund } else { 0 };
            journal_once(&app, &c, Kind::Void, &ticket, refund, drawer, &detail);
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
