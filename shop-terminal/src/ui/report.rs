//! The end-of-day report: this terminal from its journal, the whole shop from the edge node.

use super::*;

pub(super) async fn report(State(app): State<Shared>, c: Ctx) -> Response {
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
