//! Cash-up: count the drawer, a manager signs off, the journal is compared with the edge node.

use super::*;

pub(super) async fn cashup_page(State(app): State<Shared>, c: Ctx) -> Response {
    let body = "<p>Count the drawer, then a shop manager signs off. The till compares its journal with the edge node's records and lists every difference.</p><form method=\"post\" action=\"/cashup\"><label for=\"counted\">Cash counted</label><input id=\"counted\" name=\"counted\" inputmode=\"decimal\" required autofocus><fieldset><legend>Shop manager sign-off</legend><label for=\"cu-mgr\">Manager id</label><input id=\"cu-mgr\" name=\"manager_id\" required> <label for=\"cu-pin\">PIN</label><input id=\"cu-pin\" name=\"manager_pin\" type=\"password\" inputmode=\"numeric\" required></fieldset><button id=\"do-cashup\" class=\"primary\">Cash up</button></form>";
    render(&app, Some(&c.sid), "Cash-up", body).into_response()
}

#[derive(Deserialize)]
pub(super) struct CashupForm {
    counted: String,
    manager_id: String,
    manager_pin: String,
}

pub(super) async fn cashup(
    State(app): State<Shared>,
    c: Ctx,
    Form(f): Form<CashupForm>,
) -> Response {
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
