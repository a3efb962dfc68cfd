//! Drawer movements: pay-ins, pay-outs and drops to the safe, each journalled.

use super::*;

pub(super) async fn drawer_page(State(app): State<Shared>, c: Ctx) -> Response {
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
pub(super) struct DrawerForm {
    action: String,
    amount: String,
    note: String,
}

pub(super) async fn drawer(
    State(app): State<Shared>,
    c: Ctx,
    Form(f): Form<DrawerForm>,
) -> Response {
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
