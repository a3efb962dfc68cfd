//! The shop coupon: events with the short codes cashiers type. Event codes are 1000 + the
//! event's position in (kickoff, event id) order, events without a kickoff last, over every
//! event the node has ever offered,
//! so a code does not change while the coupon is up. Selection codes follow the printed
//! coupon: `1` / `X` / `2` (match result), `O` / `U` (total goals), `H` / `A` (Asian handicap);
//! on a race, the runner's number on the card (its place in the win market's runner list).

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct CouponSelection {
    pub code: String,
    pub selection_id: String,
    pub market: String,
    pub label: String,
    pub price: String,
    pub open: bool,
    /// The market's each-way terms as printed ("1/5 odds, 3 places"); `None`: win only.
    pub each_way: Option<String>,
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
        Some("race_win") => "Win".into(),
        _ => "Market".into(),
    }
}

/// Each-way terms of a race-win market kind, as printed on the slip.
pub fn each_way_terms(kind: &Value) -> Option<String> {
    let t = kind.get("each_way").filter(|t| t.is_object())?;
    Some(format!(
        "{}/{} odds, {} places",
        t["fraction_num"].as_u64()?,
        t["fraction_den"].as_u64()?,
        t["places"].as_u64()?
    ))
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
                    // Feed races carry no fixture record: named by their event id.
                    name: if ev.is_object() {
                        format!(
                            "{} v {}",
                            ev["home"].as_str().unwrap_or("?"),
                            ev["away"].as_str().unwrap_or("?")
                        )
                    } else {
                        format!("Race {event_id}")
                    },
                    kickoff_ms: ev["kickoff"].as_i64().unwrap_or(0),
                    selections: vec![],
                });
                events.len() - 1
            }
        };
        let label = market_label(&m["kind"]);
        let open = m["status"] == "open";
        let each_way = each_way_terms(&m["kind"]);
        for (n, s) in m["selections"].as_array().into_iter().flatten().enumerate() {
            let outcome = s["outcome"].as_str().unwrap_or("");
            let runner;
            let (code, name) = match (m["kind"]["type"].as_str().or(m["kind"].as_str()), outcome) {
                (Some("race_win"), _) => {
                    runner = (n + 1).to_string();
                    (
                        runner.as_str(),
                        format!("No. {runner} (runner {})", s["outcome"]["runner"]["id"]),
                    )
                }
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
                each_way: each_way.clone(),
            });
        }
    }
    // Events without a known start (feed races have no fixture record) come after the rest.
    events.sort_by(|a, b| {
        (a.kickoff_ms == 0, a.kickoff_ms, &a.event_id).cmp(&(
            b.kickoff_ms == 0,
            b.kickoff_ms,
            &b.event_id,
        ))
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A feed race (no fixture record) after a football match: runner numbers as codes, the
    /// each-way terms carried to the slip, the match keeps the first code.
    #[test]
    fn races_get_runner_codes_and_each_way_terms() {
        let m = serde_json::json!({"markets": [
            {"market_id": "bf:1:win", "event_id": "bf:1", "status": "open", "event": null,
             "kind": {"type": "race_win", "each_way": {"places": 2, "fraction_num": 1, "fraction_den": 4}},
             "selections": [{"selection_id": "bf:1:win:r11", "outcome": {"runner": {"id": 11}}, "price": "2.5"},
                            {"selection_id": "bf:1:win:r12", "outcome": {"runner": {"id": 12}}, "price": "4.0"}]},
            {"market_id": "m:1x2", "event_id": "m", "status": "open",
             "event": {"home": "Burnley", "away": "Man City", "kickoff": 1_691_780_400_000i64},
             "kind": {"type": "match_result"},
             "selections": [{"selection_id": "m:1x2:home", "outcome": "home", "price": "9.0"}]}
        ]});
        let c = build(&m);
        assert_eq!(
            (c[0].code, c[0].name.as_str()),
            (1000, "Burnley v Man City")
        );
        assert_eq!(c[0].selections[0].each_way, None);
        let (e, s) = find(&c, "1001", "2").unwrap();
        assert_eq!(e.name, "Race bf:1");
        assert_eq!(
            (s.selection_id.as_str(), s.label.as_str()),
            ("bf:1:win:r12", "No. 2 (runner 12)")
        );
        assert_eq!(s.each_way.as_deref(), Some("1/4 odds, 2 places"));
    }
}
