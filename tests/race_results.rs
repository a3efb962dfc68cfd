//! End to end for racing, with the real binaries on loopback and a real S3 server (LocalStack,
//! started by `scripts/test.sh`): the real Betfair Hamilton race of 14 Jun 2017 (WIN market
//! 1.132153978, 14 declared, two non-runners; `fixtures/README.md`) is fed to an edge node
//! message by message up to the off; a win bet (an account bet, from the player's wallet) and
//! an each-way cash ticket at the till are placed on the winner; the race result is posted at
//! the hub by two sources (a results file, then the JSON route); the settlements flow down the
//! real QUIC link and are applied exactly once: the wallet is credited once, a repeated result
//! changes nothing. An operator then corrects the race to a dead heat over HTTP: compensating
//! reversals and new settlements flow down, the wallet ends at the corrected amount, the hub
//! keeps both settlements, and the ticket pays the corrected each-way return once.
//!
//! Rule 4: both non-runners were withdrawn (07:00:50Z and 09:23:43Z on the day of the race)
//! before these bets were struck (now, by the edge's clock), so by Rule 4(c) no deduction
//! applies to them: the payouts are the full prices. The deduction by time struck of the same
//! race is covered where the strike time can be set: `core/tests/settlement_betfair_rule4.rs`
//! and `region-hub/src/results_feed_api/tests.rs`.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const RACE_FILE: &str = "fixtures/betfair/betfairlightweight/BASIC-1.132153978";
/// Lines 1..=476 of the file: open, not in play, both non-runners removed (line 477 goes in play).
const PRE_OFF_LINES: usize = 476;
const WINNER: u64 = 12115648; // Brother Mcgonagall
const TOKEN: &str = "till-token-race-0123456789abcdef";

async fn shop(c: &reqwest::Client, url: &str, idem: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(url)
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", idem)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn get_ticket(c: &reqwest::Client, e: &str, id: &str) -> (u16, Value) {
    let r = c
        .get(format!("{e}/v1/shop/tickets/{id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

async fn post_text(c: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let r = c.post(url).body(body).send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

/// "4.15" → 4150 (thousandths, exact).
fn milli(p: &str) -> i64 {
    let (i, f) = p.split_once('.').unwrap_or((p, ""));
    i.parse::<i64>().unwrap() * 1000 + format!("{f:0<3}").parse::<i64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_race_settles_win_and_each_way_once_over_quic() {
    let endpoint = s3_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let bucket = format!("outpost-race-{}", std::process::id());
    let stack = init_stack(dir.path(), None, Some((&endpoint, &bucket)));
    // A till for the each-way cash ticket; the recorded race has long silences between
    // messages, so the producer's silence bound is long.
    let edge_cfg = dir.path().join("gb-1.toml");
    append_config(
        &edge_cfg,
        &format!(
            "\n[[shop_terminals]]\nshop_id = \"s1\"\nterminal_id = \"t1\"\ntoken_sha256 = \"{}\"\n\n[odds]\nalive_timeout_ms = 86400000\n",
            hex::encode(outpost_core::log::sha256(TOKEN.as_bytes()))
        ),
    );
    let (mut hub, mut edge) = stack.start(dir.path()).await;
    let (e, h) = stack.urls();
    let c = client();

    // The race up to the off, as the Betfair feed delivered it.
    let race = std::fs::read_to_string(repo_root().join(RACE_FILE)).unwrap();
    for (i, line) in race.lines().take(PRE_OFF_LINES).enumerate() {
        let (st, v) = post_text(
            &c,
            &format!("{e}/v1/feed/betfair?historical=true"),
            line.to_string(),
        )
        .await;
        assert_eq!(st, 200, "line {}: {v}", i + 1);
    }
    let (_, odds) = get(&c, &format!("{e}/v1/odds")).await;
    let market = odds["markets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["market_id"].as_str().unwrap_or("").ends_with(":win"))
        .unwrap_or_else(|| panic!("race market listed: {odds}"))
        .clone();
    assert_eq!(market["status"], "open", "{market}");
    assert_eq!(
        market["selections"].as_array().unwrap().len(),
        12,
        "{market}"
    );
    let event_id = market["event_id"].as_str().unwrap().to_string();
    let sel = market["selections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["selection_id"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":r{WINNER}"))
        })
        .unwrap_or_else(|| panic!("winner listed: {market}"))
        .clone();
    let (sel_id, price) = (
        sel["selection_id"].as_str().unwrap().to_string(),
        sel["price"].as_str().unwrap().to_string(),
    );
    // 14 declared in a handicap: each-way 3 places at 1/4 (the terms struck on the slip).
    assert_eq!(
        market["kind"]["each_way"],
        json!({"places": 3, "fraction_num": 1, "fraction_den": 4}),
        "{market}"
    );

    // A £10 win bet from the wallet, and a £5 each-way cash ticket (£10 taken).
    let pid = ready_player(&c, &e, "race-", "Ada Lovelace", 10_000).await;
    let (st, win) = post(
        &c,
        &format!("{e}/v1/bets"),
        "race-bet-1",
        json!({"player_id": pid, "stake_minor": 1000, "currency": "GBP",
               "legs": [{"selection_id": sel_id, "price": price}]}),
    )
    .await;
    assert_eq!(st, 201, "{win}");
    let (st, ticket) = shop(
        &c,
        &format!("{e}/v1/shop/bets"),
        "race-ew-1",
        json!({"staff_id": "ann", "stake_minor": 500, "currency": "GBP", "each_way": true,
               "legs": [{"selection_id": sel_id, "price": price}], "age_confirmed": true}),
    )
    .await;
    assert_eq!(st, 201, "{ticket}");
    let p = milli(win["legs"][0]["price"].as_str().unwrap());
    let pt = milli(
        ticket["ticket"]["bet"]["legs"][0]["price"]
            .as_str()
            .unwrap(),
    );
    let win_expected = 1000 * p / 1000;
    // Win part 500 × P, place part 500 × (1 + (P − 1)/4), rounded down once over the sum.
    let ew_expected = (500 * pt * 4 + 500 * (4000 + pt - 1000)) / 4000;
    let (_, wallet) = get(&c, &format!("{e}/v1/players/{pid}/wallet")).await;
    assert_eq!(wallet["cash_minor"].as_i64(), Some(9000), "{wallet}");

    // Replication: the hub has both bets.
    let (_, health) = get(&c, &format!("{e}/healthz")).await;
    let edge_head = health["durable_seq"].as_u64().unwrap();
    eventually("replication", Duration::from_secs(30), || {
        let (c, h) = (c.clone(), h.clone());
        async move {
            let (_, n) = get(&c, &format!("{h}/v1/nodes")).await;
            n["nodes"][0]["acked_seq"].as_u64().unwrap_or(0) >= edge_head
        }
    })
    .await;

    // The result from two sources: a results provider's file (the fixture, re-keyed to the
    // event id the odds feed gave the race), then a second source over the JSON route.
    let file = std::fs::read_to_string(
        repo_root().join("fixtures/results/hamilton-2017-06-14-1m-hcap.csv"),
    )
    .unwrap()
    .replace("1.132153978,", &format!("{event_id},"));
    let (st, v) = post_text(
        &c,
        &format!("{h}/v1/results/race-file?source=results-file"),
        file,
    )
    .await;
    assert_eq!((st, v["pending"].as_u64()), (200, Some(1)), "{v}");
    let (_, b) = get(
        &c,
        &format!("{e}/v1/bets/{}", win["bet_id"].as_str().unwrap()),
    )
    .await;
    assert_ne!(b["status"], "settled", "one source settles nothing: {b}");
    let result = json!({"event_id": event_id, "source": "betfair", "runners": 12, "handicap": true,
        "placings": [{"runner": WINNER, "position": 1}],
        "non_runners": [
            {"runner": 11198538, "withdrawn_at_ms": 1_497_423_650_000i64, "deduction_pence": 5},
            {"runner": 9606433, "withdrawn_at_ms": 1_497_432_223_000i64, "deduction_pence": 0}]});
    let r = c
        .post(format!("{h}/v1/results/race"))
        .json(&result)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (st, v["status"].as_str(), v["settled"].as_u64()),
        (201, Some("recorded"), Some(2)),
        "{v}"
    );

    // Down the QUIC link: the win bet settles and the wallet is credited.
    let win_id = win["bet_id"].as_str().unwrap().to_string();
    eventually(
        "the win bet settled at the edge",
        Duration::from_secs(30),
        || {
            let (c, e, id) = (c.clone(), e.clone(), win_id.clone());
            async move { get(&c, &format!("{e}/v1/bets/{id}")).await.1["status"] == "settled" }
        },
    )
    .await;
    let (_, b) = get(&c, &format!("{e}/v1/bets/{win_id}")).await;
    assert_eq!(b["payout_minor"].as_i64(), Some(win_expected), "{b}");
    let ticket_id = ticket["ticket"]["ticket_id"].as_str().unwrap().to_string();
    eventually(
        "the ticket settled at the edge",
        Duration::from_secs(30),
        || {
            let (c, e, id) = (c.clone(), e.clone(), ticket_id.clone());
            async move { get_ticket(&c, &e, &id).await.1["state"] == "payable" }
        },
    )
    .await;

    // The same result again from both sources: nothing new goes down.
    let r = c
        .post(format!("{h}/v1/results/race"))
        .json(&result)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, wallet) = get(&c, &format!("{e}/v1/players/{pid}/wallet")).await;
    assert_eq!(
        wallet["cash_minor"].as_i64(),
        Some(9000 + win_expected),
        "credited exactly once: {wallet}"
    );
    assert_eq!(wallet["stakes_held_minor"].as_i64(), Some(0), "{wallet}");

    let (_, t) = get_ticket(&c, &e, &ticket_id).await;
    assert_eq!(t["payable_minor"].as_i64(), Some(ew_expected), "{t}");

    // An operator corrects the result to a dead heat for first with Sakhalin Star: a new
    // result version; each settlement is reversed by a compensating record and the bets are
    // settled again, all down the same QUIC link. The win bet now has half its stake on the
    // winner (dead heat): 500 × P. The each-way ticket: win part 250 × P, place part in full
    // (both tied runners are within the 3 places): 500 × (1 + (P − 1)/4).
    let mut corrected = result.clone();
    corrected["placings"] =
        json!([{"runner": WINNER, "position": 1}, {"runner": 7330488, "position": 1}]);
    let body = corrected.as_object_mut().unwrap();
    body.remove("event_id");
    body.remove("source");
    body.insert("operator".into(), json!("race-ops"));
    body.insert("reason".into(), json!("judge's dead heat"));
    let r = c
        .post(format!("{h}/v1/results/{event_id}/correct"))
        .json(&corrected)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            st,
            v["status"].as_str(),
            v["reversed"].as_u64(),
            v["settled"].as_u64()
        ),
        (201, Some("corrected"), Some(2), Some(2)),
        "{v}"
    );
    let win_corrected = 500 * p / 1000;
    let ew_corrected = (250 * pt * 4 + 500 * (4000 + pt - 1000)) / 4000;
    eventually(
        "the correction at the edge",
        Duration::from_secs(30),
        || {
            let (c, e, pid) = (c.clone(), e.clone(), pid.clone());
            async move {
                get(&c, &format!("{e}/v1/players/{pid}/wallet")).await.1["cash_minor"].as_i64()
                    == Some(9000 + win_corrected)
            }
        },
    )
    .await;
    let (_, b) = get(&c, &format!("{e}/v1/bets/{win_id}")).await;
    assert_eq!(b["payout_minor"].as_i64(), Some(win_corrected), "{b}");
    eventually("the corrected ticket", Duration::from_secs(30), || {
        let (c, e, id) = (c.clone(), e.clone(), ticket_id.clone());
        async move {
            get_ticket(&c, &e, &id).await.1["payable_minor"].as_i64() == Some(ew_corrected)
        }
    })
    .await;

    // The ticket pays the corrected each-way return once at the till.
    let pay = format!(
        "{e}/v1/shop/tickets/{}/payout",
        ticket["ticket"]["ticket_id"].as_str().unwrap()
    );
    let (st, t) = shop(&c, &pay, "race-pay-1", json!({"staff_id": "ann"})).await;
    assert_eq!(
        (st, t["state"].as_str(), t["paid"]["payout_minor"].as_i64()),
        (200, Some("paid"), Some(ew_corrected)),
        "{t}"
    );
    let (st, again) = shop(&c, &pay, "race-pay-2", json!({"staff_id": "ann"})).await;
    assert_eq!(
        (st, again["error"]["code"].as_str()),
        (409, Some("TICKET_ALREADY_PAID")),
        "{again}"
    );

    // The hub keeps both settlements of the bet (versions 1 and 2): history is not rewritten.
    let (_, hb) = get(&c, &format!("{h}/v1/bets/{win_id}")).await;
    let history: Vec<(u64, i64)> = hb["settlements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["result_version"].as_u64().unwrap(),
                s["payout_minor"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(history, [(1, win_expected), (2, win_corrected)], "{hb}");
    let (_, wallet) = get(&c, &format!("{e}/v1/players/{pid}/wallet")).await;
    assert_eq!(
        wallet["cash_minor"].as_i64(),
        Some(9000 + win_corrected),
        "{wallet}"
    );
    edge.terminate();
    hub.terminate();
}
