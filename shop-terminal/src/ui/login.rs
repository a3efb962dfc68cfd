//! Log in by PIN with the drawer float, and log out.

use super::*;

pub(super) async fn login_page(State(app): State<Shared>) -> Html<String> {
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
pub(super) struct LoginForm {
    staff_id: String,
    pin: String,
    #[serde(default)]
    float: Option<String>,
}

pub(super) async fn login(State(app): State<Shared>, Form(f): Form<LoginForm>) -> Response {
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

pub(super) async fn logout(State(app): State<Shared>, h: HeaderMap) -> Response {
    if let Some(c) = session_of(&app, &h) {
        let _ =
            app.journal
                .lock()
                .unwrap()
                .append(now_ms(), &c.staff_id, Kind::Logout, None, 0, 0, "");
        app.sessions.lock().unwrap().remove(&c.sid);
    }
    Redirect::to("/login").into_response()
}
