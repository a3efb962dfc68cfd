//! The shop API on a real in-process node (sled log, writer thread, HTTP on loopback):
//! terminal tokens, cash bets with a slip record hash, settlement through signed hub
//! records, payout exactly once when two tills scan the same ticket at the same moment, and
//! coded refusals for unreadable, mistyped and forged ticket ids.

use edge_node::api::{AppState, router};
use edge_node::config::{EdgeConfig, FixtureSource, HubLinkConfig, RegisterSource};
use edge_node::node::{load_fixtures, start_core};
use outpost_core::hub::{HubEvent, HubSettlement, down_log_id};
use outpost_core::ids::{BetId, NodeId, PlayerId, Seq};
use outpost_core::log::{ChainHead, ChainWriter, NodeKey, RecordKind, sha256};
use outpost_core::money::Currency;
use outpost_core::settle::LegResult;
use outpost_core::time::UnixMillis;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

struct Node {
    base: String,
    state: AppState,
    hub_key: NodeKey,
    hub_chain: ChainWriter,
    _dir: tempfile::TempDir,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn token_sha(t: &str) -> String {
    hex::encode(sha256(t.as_bytes()))
}

/// The node's store once it shows everything acknowledged so far (replies come once a group
/// is durable; the store's applier puts it into sled just after).
async fn stored(n: &Node) -> &edge_node::store::LogStore {
    n.state.writer.wait_readable().await.unwrap();
    &n.state.store
}

async fn start() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let hub_key = NodeKey::from_seed(sha256(b"shop test hub"));
    let creds = |shop: &str, term: &str, tok: &str| {
        toml::from_str::<edge_node::api::shop::TerminalCredential>(&format!(
            "shop_id = \"{shop}\"\nterminal_id = \"{term}\"\ntoken_sha256 = \"{}\"",
            token_sha(tok)
        ))
        .unwrap()
    };
    let cfg = EdgeConfig {
        node_id: NodeId::new("gb-1").unwrap(),
        jurisdiction: outpost_core::ids::Jurisdiction::new("GB").unwrap(),
        data_dir: dir.path().join("data"),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        key_file: dir.path().join("node.key"),
        rules_file: repo().join("deploy/jurisdictions/gb.toml"),
        fixtures: vec![FixtureSource {
            football_data: repo().join("fixtures/football-data/E0_2324.csv"),
            div: "E0".into(),
        }],
        hub: Some(HubLinkConfig {
            addr: "127.0.0.1:9".parse().unwrap(),
            server_name: "hub.outpost".into(),
            ca_cert: "unused".into(),
            cert: "unused".into(),
            key: "unused".into(),
            public_key: hub_key.public().to_hex(),
        }),
        balance_snapshot: Default::default(),
        risk: Default::default(),
        // GB betting needs a fresh GAMSTOP copy (fail closed): a test authority signs one below.
        register: Some(RegisterSource {
            authority_public_key: register_key().public().to_hex(),
            inbox_dir: None,
        }),
        odds: Default::default(),
        cross_operator: None,
        api: Default::default(),
        shop_terminals: vec![
            creds("s1", "t1", "token-one"),
            creds("s1", "t2", "token-two"),
            creds("s2", "t1", "token-three"),
        ],
    };
    let started = start_core(&cfg).await.unwrap();
    load_fixtures(&cfg, &started.writer).await.unwrap();
    load_register(&started.writer).await;
    let state = AppState {
        writer: started.writer.clone(),
        store: started.store.clone(),
        node_id: cfg.node_id.clone(),
        public_key: started.key_public.clone(),
        link: None,
        checkpoints: started.checkpoints.clone(),
        compliance: tokio::sync::watch::channel(serde_json::Value::Null).1,
        odds: None,
        cross_operator: None,
        shop_terminals: Arc::new(cfg.shop_terminals.clone()),
        access: edge_node::api::auth::ApiAccess::new(&cfg.api),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
    Node {
        base,
        state,
        hub_chain: ChainWriter::new(down_log_id(&cfg.node_id), ChainHead::EMPTY),
        hub_key,
        _dir: dir,
    }
}

impl Node {
    /// Settle a bet the way the hub does: a signed record on the hub's chain for this node.
    async fn settle(&mut self, bet: &Value, payout_minor: i64) {
        self.settle_legs(bet, payout_minor, vec![LegResult::Win])
            .await
    }
    async fn settle_legs(&mut self, bet: &Value, payout_minor: i64, leg_results: Vec<LegResult>) {
        let ev = HubEvent::Settlement(HubSettlement {
            bet_id: BetId::new(bet["bet_id"].as_str().unwrap()).unwrap(),
            node_id: NodeId::new("gb-1").unwrap(),
            player_id: PlayerId::new(bet["player_id"].as_str().unwrap()).unwrap(),
            result_version: 1,
            leg_results,
            currency: Currency::GBP,
            stake_minor: bet["stake_minor"].as_i64().unwrap(),
            payout_minor,
            leg_factors: Vec::new(),
        });
        let mut f =
            self.hub_chain
                .append(ev.kind(), UnixMillis(1_700_000_000_000), ev.to_payload());
        ChainWriter::seal(&mut f, &self.hub_key);
        self.state.writer.apply_down(vec![f]).await.unwrap();
    }
}

/// Assert that a call was refused with this HTTP status and error code.
#[track_caller]
fn assert_refused((status, body): (u16, Value), want_status: u16, want_code: &str) {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (want_status, Some(want_code)),
        "{body}"
    );
}

async fn call(
    c: &reqwest::Client,
    url: String,
    token: Option<&str>,
    idem: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = if body.is_some() {
        c.post(url)
    } else {
        c.get(url)
    };
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(k) = idem {
        rb = rb.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

const SEL: &str = "E0-20230811-burnley-man-city:1x2:away";

async fn cash_bet(n: &Node, c: &reqwest::Client, token: &str, key: &str) -> Value {
    let (st, v) = call(
        c,
        format!("{}/v1/shop/bets", n.base),
        Some(token),
        Some(key),
        Some(json!({"staff_id": "ann", "stake_minor": 1000, "currency": "GBP", "legs": [{"selection_id": SEL, "price": "1.33"}], "age_confirmed": true})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_tills_scanning_at_once_pay_exactly_once() {
    let mut n = start().await;
    let c = reqwest::Client::new();
    const TICKETS: usize = 25;
    let mut tickets = vec![];
    for i in 0..TICKETS {
        let v = cash_bet(&n, &c, "token-one", &format!("bet-{i}")).await;
        n.settle(&v["ticket"]["bet"], 1330).await;
        tickets.push(v["ticket"]["ticket_id"].as_str().unwrap().to_string());
    }
    // Both tills of shop s1 plus a till of shop s2 press "pay" on each ticket concurrently.
    let mut handles = vec![];
    for t in &tickets {
        for (tok, staff) in [
            ("token-one", "ann"),
            ("token-two", "bob"),
            ("token-three", "cy"),
        ] {
            let (c, url, t) = (
                c.clone(),
                format!("{}/v1/shop/tickets/{t}/payout", n.base),
                t.clone(),
            );
            handles.push(tokio::spawn(async move {
                let r = call(
                    &c,
                    url,
                    Some(tok),
                    Some(&format!("pay-{tok}-{t}")),
                    Some(json!({"staff_id": staff})),
                )
                .await;
                (t, r)
            }));
        }
    }
    let mut paid = std::collections::HashMap::<String, usize>::new();
    for h in handles {
        let (t, (st, v)) = h.await.unwrap();
        match st {
            200 => *paid.entry(t).or_default() += 1,
            409 => assert_eq!(v["error"]["code"], "TICKET_ALREADY_PAID", "{v}"),
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(paid.len(), TICKETS);
    assert!(
        paid.values().all(|&k| k == 1),
        "a ticket was paid more than once: {paid:?}"
    );
    // The log holds exactly one payout record per ticket, and the ledger still sums to zero.
    let frames = stored(&n).await.read_frames(Seq(1), 1_000_000).unwrap();
    let payouts = frames
        .iter()
        .filter(|f| f.parse_body().unwrap().kind == RecordKind::ShopTicketPaid)
        .count();
    assert_eq!(payouts, TICKETS);
    let (_, node) = call(&c, format!("{}/v1/node", n.base), None, None, None).await;
    assert_eq!(node["ledger_sum_minor"], 0);
    // A retry of a till's own request answers the same, without a second record.
    let t = &tickets[0];
    let winner = ["token-one", "token-two", "token-three"]
        .into_iter()
        .find(|tok| {
            frames.iter().any(|f| {
                let b = f.parse_body().unwrap();
                b.kind == RecordKind::ShopTicketPaid
                    && String::from_utf8_lossy(&b.payload).contains(&format!("pay-{tok}-{t}"))
            })
        });
    let tok = winner.expect("the winning till's idempotency key is on the record");
    let staff = match tok {
        "token-one" => "ann",
        "token-two" => "bob",
        _ => "cy",
    };
    let (st, v) = call(
        &c,
        format!("{}/v1/shop/tickets/{t}/payout", n.base),
        Some(tok),
        Some(&format!("pay-{tok}-{t}")),
        Some(json!({"staff_id": staff})),
    )
    .await;
    assert_eq!((st, v["state"].as_str()), (200, Some("paid")), "{v}");
    assert_eq!(
        stored(&n)
            .await
            .read_frames(Seq(1), 1_000_000)
            .unwrap()
            .len(),
        frames.len()
    );
}

#[tokio::test]
async fn slip_record_hash_tokens_and_bad_ticket_ids() {
    let n = start().await;
    let c = reqwest::Client::new();
    let v = cash_bet(&n, &c, "token-one", "b1").await;
    // The slip's record hash is the hash of the ShopTicketIssued record at record_seq.
    let seq = v["record_seq"].as_u64().unwrap();
    let f = stored(&n).await.read_frames(Seq(seq), 1).unwrap().remove(0);
    assert_eq!(f.parse_body().unwrap().kind, RecordKind::ShopTicketIssued);
    assert_eq!(v["record_hash"].as_str().unwrap(), f.hash().to_hex());
    assert_eq!(v["ticket"]["terminal_id"], "t1");
    assert_eq!(v["ticket"]["shop_id"], "s1");
    let ticket = v["ticket"]["ticket_id"].as_str().unwrap().to_string();
    // A retry returns the same ticket with the same record (found in the log this time).
    let again = cash_bet(&n, &c, "token-one", "b1").await;
    assert_eq!(
        (
            &again["ticket"]["ticket_id"],
            &again["record_seq"],
            &again["record_hash"]
        ),
        (
            &v["ticket"]["ticket_id"],
            &v["record_seq"],
            &v["record_hash"]
        )
    );

    let url = |t: &str| format!("{}/v1/shop/tickets/{t}", n.base);
    assert_eq!(call(&c, url(&ticket), None, None, None).await.0, 401);
    assert_refused(
        call(&c, url(&ticket), Some("not-a-token"), None, None).await,
        401,
        "TERMINAL_UNAUTHORISED",
    );
    let (st, t) = call(&c, url(&ticket), Some("token-two"), None, None).await;
    assert_eq!((st, t["state"].as_str()), (200, Some("open")));

    assert_refused(
        call(&c, url("12AB"), Some("token-one"), None, None).await,
        400,
        "TICKET_UNREADABLE",
    );
    let mut wrong = ticket.clone().into_bytes();
    wrong[17] = b'0' + (wrong[17] - b'0' + 3) % 10;
    assert_refused(
        call(
            &c,
            url(std::str::from_utf8(&wrong).unwrap()),
            Some("token-one"),
            None,
            None,
        )
        .await,
        422,
        "TICKET_CHECK_DIGIT",
    );
    let forged = outpost_core::edge::shop::TicketId::generate(77_777, 123_456_789);
    assert_refused(
        call(&c, url(forged.as_str()), Some("token-one"), None, None).await,
        404,
        "TICKET_NOT_FOUND",
    );
    assert_refused(
        call(
            &c,
            format!("{}/payout", url(forged.as_str())),
            Some("token-one"),
            Some("p-forged"),
            Some(json!({"staff_id": "ann"})),
        )
        .await,
        404,
        "TICKET_NOT_FOUND",
    );

    // Unsettled tickets are not paid; another cashier cannot void without a manager.
    assert_refused(
        call(
            &c,
            format!("{}/payout", url(&ticket)),
            Some("token-one"),
            Some("p1"),
            Some(json!({"staff_id": "ann"})),
        )
        .await,
        409,
        "TICKET_NOT_SETTLED",
    );
    assert_refused(
        call(
            &c,
            format!("{}/void", url(&ticket)),
            Some("token-two"),
            Some("v1"),
            Some(json!({"staff_id": "bob", "reason": "wrong selection"})),
        )
        .await,
        403,
        "VOID_REFUSED",
    );
    let (st, v2) = call(
        &c,
        format!("{}/void", url(&ticket)),
        Some("token-one"),
        Some("v2"),
        Some(json!({"staff_id": "ann", "reason": "wrong selection"})),
    )
    .await;
    assert_eq!((st, v2["state"].as_str()), (200, Some("voided")), "{v2}");

    // Anonymous cash above the AML threshold needs ID: refused, nothing logged.
    let before = stored(&n).await.last_seq().unwrap();
    assert_refused(call(&c, format!("{}/v1/shop/bets", n.base), Some("token-one"), Some("big"),
        Some(json!({"staff_id": "ann", "stake_minor": 300_000, "currency": "GBP", "legs": [{"selection_id": SEL, "price": "1.33"}], "age_confirmed": true}))).await, 422, "ID_REQUIRED");
    assert_eq!(stored(&n).await.last_seq().unwrap(), before);

    // The shop report lists what the node recorded for this shop only.
    let (st, r) = call(
        &c,
        format!("{}/v1/shop/report?from_ms=0&to_ms=9999999999999", n.base),
        Some("token-one"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let events: Vec<&str> = r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, vec!["issued", "voided"]);
    let (_, r2) = call(
        &c,
        format!("{}/v1/shop/report?from_ms=0&to_ms=9999999999999", n.base),
        Some("token-three"),
        None,
        None,
    )
    .await;
    assert_eq!(r2["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn shipped_jurisdictions_have_valid_retail_rules() {
    let gb = edge_node::config::load_rules(&repo().join("deploy/jurisdictions/gb.toml")).unwrap();
    let dk = edge_node::config::load_rules(&repo().join("deploy/jurisdictions/dk.toml")).unwrap();
    assert!(!gb.retail.unwrap().player_id_required);
    let dk_retail = dk.retail.unwrap();
    assert!(
        dk_retail.player_id_required,
        "DK: a player id on every shop bet"
    );
    assert_eq!(dk.currency, Currency::DKK);
}

/// An account bet at the counter: the player card id makes the node run the full gate on the
/// registered player (date of birth prefetched from the PII vault) and stake from the wallet.
#[tokio::test]
async fn account_bet_at_the_counter_uses_the_players_wallet_and_gate() {
    let mut n = start().await;
    let c = reqwest::Client::new();
    let (st, p) = call(
        &c,
        format!("{}/v1/players", n.base),
        None,
        Some("reg-1"),
        Some(json!({"jurisdiction": "GB", "name": "Ada Example", "date_of_birth": "1990-02-03"})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let pid = p["player_id"].as_str().unwrap().to_string();
    let bet = |key: &'static str| {
        let (c, url, pid) = (c.clone(), format!("{}/v1/shop/bets", n.base), pid.clone());
        async move {
            call(&c, url, Some("token-one"), Some(key),
                Some(json!({"staff_id": "ann", "stake_minor": 800, "currency": "GBP", "player_id": pid, "legs": [{"selection_id": SEL, "price": "1.33"}]}))).await
        }
    };
    // Not yet KYC-verified: the ordinary gate refuses, with its reason code.
    let (st, e) = bet("acct-1").await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("KYC_REQUIRED")),
        "{e}"
    );
    assert_eq!(
        call(
            &c,
            format!("{}/v1/players/{pid}/kyc", n.base),
            None,
            Some("kyc-1"),
            Some(json!({}))
        )
        .await
        .0,
        200
    );
    let (st, e) = bet("acct-2").await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("INSUFFICIENT_FUNDS")),
        "{e}"
    );
    assert_eq!(
        call(
            &c,
            format!("{}/v1/players/{pid}/deposits", n.base),
            None,
            Some("dep-1"),
            Some(json!({"amount_minor": 1000, "currency": "GBP", "provider_ref": "psp-1"}))
        )
        .await
        .0,
        201
    );
    let (st, v) = bet("acct-3").await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["ticket"]["holder"], "account");
    assert_eq!(v["ticket"]["bet"]["player_id"], pid.as_str());
    let (_, w) = call(
        &c,
        format!("{}/v1/players/{pid}/wallet", n.base),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(
        (w["cash_minor"].as_i64(), w["stakes_held_minor"].as_i64()),
        (Some(200), Some(800))
    );
    // Settled and paid out in cash at the till: the winnings leave the player's wallet.
    n.settle(&v["ticket"]["bet"], 1064).await;
    let t = v["ticket"]["ticket_id"].as_str().unwrap();
    let (st, paid) = call(
        &c,
        format!("{}/v1/shop/tickets/{t}/payout", n.base),
        Some("token-two"),
        Some("pay-acct"),
        Some(json!({"staff_id": "bob"})),
    )
    .await;
    assert_eq!((st, paid["state"].as_str()), (200, Some("paid")), "{paid}");
    let (_, w) = call(
        &c,
        format!("{}/v1/players/{pid}/wallet", n.base),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(w["cash_minor"].as_i64(), Some(200));
}

/// The test stand-in for the GAMSTOP register authority.
fn register_key() -> NodeKey {
    NodeKey::from_seed([0x42; 32])
}

/// Load a fresh, empty, signed GAMSTOP snapshot, as the register inbox would.
async fn load_register(writer: &edge_node::writer::WriterHandle) {
    use outpost_core::gate::register::{RegisterDocKind, RegisterPayload, sign};
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let doc = sign(
        &register_key(),
        &RegisterPayload {
            register: "GAMSTOP".into(),
            jurisdiction: outpost_core::ids::Jurisdiction::new("GB").unwrap(),
            kind: RegisterDocKind::Snapshot,
            seq: 1,
            base_seq: None,
            issued_at_ms: now_ms,
            add: vec![],
            remove: vec![],
        },
    );
    writer
        .command(outpost_core::edge::Command::LoadRegister { doc }, None)
        .await
        .expect("writer running")
        .expect("register snapshot accepted");
}

/// Open a race-win market with each-way terms (1/5 odds, 3 places) through the writer, the
/// way the Betfair feed opens one; runners 11 (11/1), 12 (7/2) and 13 (4/1).
async fn open_race(n: &Node) -> Vec<String> {
    use outpost_core::edge::Command;
    use outpost_core::ids::EventId;
    use outpost_core::market::{
        EachWayTerms, Market, MarketKind, MarketStatus, Outcome, SelectionPrice, SportEvent,
    };
    use outpost_core::price::Price;
    let event = SportEvent {
        event_id: EventId::new("bf:28587288").unwrap(),
        competition: "Hamilton".into(),
        home: "7f Hcap".into(),
        away: String::new(),
        // Off in a day: not in play (the GB rules offer race_win before the off only).
        kickoff: UnixMillis(edge_node::writer::now().0 + 86_400_000),
    };
    let kind = MarketKind::RaceWin {
        each_way: Some(EachWayTerms {
            places: 3,
            fraction_num: 1,
            fraction_den: 5,
        }),
    };
    let market_id = Market::market_id_for(&event.event_id, &kind);
    let selections: Vec<SelectionPrice> = [(11, "12.0"), (12, "4.5"), (13, "5.0")]
        .into_iter()
        .map(|(id, p)| SelectionPrice {
            selection_id: Market::selection_id_for(&market_id, Outcome::Runner { id }),
            outcome: Outcome::Runner { id },
            price: Price::parse(p).unwrap(),
        })
        .collect();
    let ids = selections
        .iter()
        .map(|s| s.selection_id.to_string())
        .collect();
    let market = Market {
        market_id,
        event_id: event.event_id.clone(),
        kind,
        status: MarketStatus::Open,
        selections,
    };
    n.state
        .writer
        .command(Command::OpenMarket { event, market }, None)
        .await
        .unwrap()
        .unwrap();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_way_cash_tickets_win_and_placed_are_paid_once() {
    use outpost_core::settlement::each_way::Finish;
    use outpost_core::settlement::each_way_bet::{EachWayLeg, settle_each_way};
    use outpost_core::settlement::rule4::Deduction;
    let mut n = start().await;
    let c = reqwest::Client::new();
    let runners = open_race(&n).await;
    let ew = |sel: &str, price: &str| {
        json!({"staff_id": "ann", "stake_minor": 500, "currency": "GBP", "each_way": true,
            "legs": [{"selection_id": sel, "price": price}], "age_confirmed": true})
    };
    let place = |key: &'static str, body: Value| {
        let c = c.clone();
        let url = format!("{}/v1/shop/bets", n.base);
        async move { call(&c, url, Some("token-one"), Some(key), Some(body)).await }
    };
    // £5 each-way at 11/1, 1/5 odds 3 places: £10 taken; £76 if it wins, £16 if placed.
    let (st, won) = place("ew-1", ew(&runners[0], "12.0")).await;
    assert_eq!(st, 201, "{won}");
    let t = &won["ticket"];
    assert_eq!(
        (
            &t["bet"]["each_way"],
            &t["bet"]["stake_minor"],
            &t["bet"]["potential_payout_minor"]
        ),
        (&json!(true), &json!(1000), &json!(7600))
    );
    assert_eq!(
        t["each_way"],
        json!({"unit_stake_minor": 500, "total_stake_minor": 1000, "if_won_minor": 7600,
            "if_placed_minor": 1600, "terms": [{"places": 3, "fraction_num": 1, "fraction_den": 5}]})
    );
    let seq = won["record_seq"].as_u64().unwrap();
    let f = stored(&n).await.read_frames(Seq(seq), 1).unwrap().remove(0);
    assert_eq!(f.parse_body().unwrap().kind, RecordKind::ShopTicketIssued);
    assert_eq!(won["record_hash"].as_str().unwrap(), f.hash().to_hex());
    // £5 each-way at 4/1: placed second returns the place part only, 5 × (1 + 4/5) = £9.
    let (st, placed) = place("ew-2", ew(&runners[2], "5.0")).await;
    assert_eq!(st, 201, "{placed}");
    // Each-way is refused on a market without each-way terms, and on account bets.
    let (st, e) = place("ew-3", ew(SEL, "1.33")).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("EACH_WAY_NOT_OFFERED")),
        "{e}"
    );
    let mut acct = ew(&runners[1], "4.5");
    acct["player_id"] = json!("gb-1-p1");
    let (st, e) = place("ew-4", acct).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("EACH_WAY_ACCOUNT_BET")),
        "{e}"
    );

    // The settlement the hub sends: the core each-way rule over each runner's finish.
    let settle = |price: &str, position| {
        settle_each_way(
            500,
            &[EachWayLeg {
                price: outpost_core::price::Price::parse(price).unwrap(),
                terms: outpost_core::market::EachWayTerms {
                    places: 3,
                    fraction_num: 1,
                    fraction_den: 5,
                },
                finish: Finish::Position { position, tied: 1 },
                deduction: Deduction::NONE,
            }],
        )
        .unwrap()
    };
    let (pay, legs) = settle("12.0", 1);
    assert_eq!((pay, &legs), (7600, &vec![LegResult::Win]));
    n.settle_legs(&won["ticket"]["bet"], pay, legs).await;
    let (pay, legs) = settle("5.0", 2);
    assert_eq!((pay, &legs), (900, &vec![LegResult::Placed]));
    n.settle_legs(&placed["ticket"]["bet"], pay, legs).await;

    let pay_url = |v: &Value| {
        format!(
            "{}/v1/shop/tickets/{}/payout",
            n.base,
            v["ticket"]["ticket_id"].as_str().unwrap()
        )
    };
    for (v, key, expected) in [(&won, "pay-ew-1", 7600), (&placed, "pay-ew-2", 900)] {
        let (st, t) = call(
            &c,
            pay_url(v),
            Some("token-two"),
            Some(key),
            Some(json!({"staff_id": "bob"})),
        )
        .await;
        assert_eq!(
            (st, t["state"].as_str(), t["paid"]["payout_minor"].as_i64()),
            (200, Some("paid"), Some(expected)),
            "{t}"
        );
        assert!(t["each_way"]["if_placed_minor"].as_i64().is_some(), "{t}");
        let (st, e) = call(
            &c,
            pay_url(v),
            Some("token-one"),
            Some(&format!("{key}-again")),
            Some(json!({"staff_id": "ann"})),
        )
        .await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (409, Some("TICKET_ALREADY_PAID")),
            "{e}"
        );
    }
}
