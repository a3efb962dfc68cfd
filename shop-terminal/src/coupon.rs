//! The shop coupon: events with the short codes cashiers type. Event codes are 1000 + the
//! event's position in (kickoff, event id) order over every event the node has ever offered,
//! so a code does not change while the coupon is up. Selection codes follow the printed
//! coupon: `1` / `X` / `2` (match result), `O` / `U` (total goals), `H` / `A` (Asian handicap).

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct CouponSelection {
    pub code: String,
    pub selection_id: String,
    pub market: String,
    pub label: String,
    pub price: String,
    pub open: bool,
}

#[derive(Debug, Clone)]
pub struct CouponEvent {
    pub code: u32,
    pub event_id: String,
    pub name: String,
    pub kickoff_ms: i64,
    pub selections: Vec<CouponSelection>,
}

fn market_label(kind: &Value) -> String {
    match kind["type"].as_str().or(kind.as_str()) {
        Some("match_result") => "Match result".into(),
        Some("total_goals") => format!("Total goals {}", line(&kind["line"])),
        Some("asian_handicap") => format!("Asian handicap {}", line(&kind["home_line"])),
        _ => "Market".into(),
    }
}

fn line(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Build the coupon from the node's `/v1/markets` answer.
pub fn build(markets: &Value) -> Vec<CouponEvent> {
    let mut events: Vec<CouponEvent> = vec![];
    for m in markets["markets"].as_array().into_iter().flatten() {
        let ev = &m["event"];
        let event_id = m["event_id"].as_str().unwrap_or_default().to_string();
        let idx = match events.iter().position(|e| e.event_id == event_id) {
            Some(i) => i,
            None => {
                events.push(CouponEvent {
                    code: 0,
                    event_id: event_id.clone(),
                    name: format!(
                        "{} v {}",
                        ev["home"].as_str().unwrap_or("?"),
                        ev["away"].as_str().unwrap_or("?")
                    ),
                    kickoff_ms: ev["kickoff"].as_i64().unwrap_or(0),
                    selections: vec![],
                });
                events.len() - 1
            }
        };
        let label = market_label(&m["kind"]);
        let open = m["status"] == "open";
        for s in m["selections"].as_array().into_iter().flatten() {
            let outcome = s["outcome"].as_str().unwrap_or("");
            let (code, name) = match (m["kind"]["type"].as_str().or(m["kind"].as_str()), outcome) {
                (Some("match_result"), "home") => {
                    ("1", ev["home"].as_str().unwrap_or("Home").to_string())
                }
                (Some("match_result"), "draw") => ("X", "Draw".to_string()),
                (Some("match_result"), "away") => {
                    ("2", ev["away"].as_str().unwrap_or("Away").to_string())
                }
                (Some("total_goals"), "over") => ("O", "Over".to_string()),
                (Some("total_goals"), "under") => ("U", "Under".to_string()),
                (Some("asian_handicap"), "home") => {
                    ("H", ev["home"].as_str().unwrap_or("Home").to_string())
                }
                (Some("asian_handicap"), "away") => {
                    ("A", ev["away"].as_str().unwrap_or("Away").to_string())
                }
                _ => continue,
            };
            events[idx].selections.push(CouponSelection {
                code: code.into(),
                selection_id: s["selection_id"].as_str().unwrap_or_default().to_string(),
                market: label.clone(),
                label: name,
                price: s["price"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| s["price"].to_string()),
                open,
            });
        }
    }
    events.sort_by(|a, b| (a.kickoff_ms, &a.event_id).cmp(&(b.kickoff_ms, &b.event_id)));
    for (i, e) in events.iter_mut().enumerate() {
        e.code = 1000 + i as u32;
    }
    events
}

pub fn find<'a>(
    events: &'a [CouponEvent],
    event_code: &str,
    sel_code: &str,
) -> Option<(&'a CouponEvent, &'a CouponSelection)> {
    let code: u32 = event_code.trim().parse().ok()?;
    let e = events.iter().find(|e| e.code == code)?;
    let s = e
        .selections
        .iter()
        .find(|s| s.code.eq_ignore_ascii_case(sel_code.trim()))?;
    Some((e, s))
}
