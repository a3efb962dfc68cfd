//! The shop till end to end in a real browser: the real `region-hub`, `edge-node` and
//! `shop-terminal` binaries, Debian's headless Chromium driven through chromedriver
//! (WebDriver). A cashier logs in with a PIN and a float, builds a bet by event code and
//! selection code, takes the cash and prints the slip; the result arrives at the hub and the
//! settlement flows down; the ticket is scanned and paid; a mis-keyed ticket is voided; bad
//! scans are refused with a code;
//! the printer runs out of paper and the slip is reprinted from the journal; the drawer is
//! cashed up against the node's records; the edge goes away and the till refuses money.
//! A screenshot of each step is kept under `target/tmp/shop-browser/`.
//!
//! The printer is a small TCP server in this test speaking the ESC/POS network protocol
//! (raw port 9100 with `DLE EOT` status replies): there is no receipt printer on CI.

mod common;
#[path = "common/webdriver.rs"]
mod webdriver;

use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use webdriver::Driver;

const CASHIER_PIN: &str = "1234";
const MANAGER_PIN: &str = "9876";

fn pin_hash(staff: &str, pin: &str) -> String {
    hex::encode(outpost_core::log::sha256(
        format!("{staff}:{pin}").as_bytes(),
    ))
}

/// An ESC/POS network printer: answers `DLE EOT 4` (paper) and `DLE EOT 2` (offline cause)
/// and keeps what it is sent. `paper_out` makes it report a paper end.
struct FakePrinter {
    addr: String,
    paper_out: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<u8>>>,
}

fn start_printer() -> FakePrinter {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let paper_out = Arc::new(AtomicBool::new(false));
    let received = Arc::new(Mutex::new(Vec::new()));
    let (p, r) = (paper_out.clone(), received.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut q = [0u8; 3];
            if s.read_exact(&mut q).is_err() || q != [0x10, 0x04, 0x04] {
                continue;
            }
            let out = p.load(Ordering::SeqCst);
            let _ = s.write_all(&[if out { 0x72 } else { 0x12 }]);
            if out {
                continue;
            }
            if s.read_exact(&mut q).is_err() || q != [0x10, 0x04, 0x02] {
                continue;
            }
            let _ = s.write_all(&[0x12]);
            let mut data = vec![];
            let _ = s.read_to_end(&mut data);
            r.lock().unwrap().extend(data);
        }
    });
    FakePrinter {
        addr,
        paper_out,
        received,
    }
}

fn artifacts() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shop-browser");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn shop_terminal_bin() -> PathBuf {
    let p = bin("region-hub").parent().unwrap().join("shop-terminal");
    if !p.exists() {
        let st = std::process::Command::new(env!("CARGO"))
            .args(["build", "--bin", "shop-terminal", "-p", "shop-terminal"])
            .current_dir(repo_root())
            .status()
            .unwrap();
        assert!(st.success());
    }
    p
}

async fn wait_http(url: &str, proc: &mut Proc) {
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(st)) = proc.child.try_wait() {
            panic!("{} exited with {st}:\n{}", proc.name, proc.log_tail());
        }
        assert!(
            Instant::now() < deadline,
            "{} did not start:\n{}",
            proc.name,
            proc.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reload `url` until the element's text satisfies `pred` (the page is server-rendered).
async fn reload_until(b: &Driver, url: &str, css: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.goto(url).await;
        if b.find(css).await.is_some() {
            let t = b.text(css).await;
            if pred(&t) {
                return t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{css} never matched at {url}:\n{}",
            b.page_text().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn till_bet_slip_payout_cashup_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shots = artifacts();
    let till_http = free_addr();
    let Stack {
        edge_http,
        hub_http,
        ..
    } = init_stack(d, None, None);
    // The till's credential, bound to shop s1 / terminal t1 in the node's config.
    let token = "till-token-s1-t1-0123456789abcdef";
    std::fs::write(d.join("t1.token"), token).unwrap();
    let mut edge_cfg = std::fs::read_to_string(d.join("gb-1.toml")).unwrap();
    edge_cfg.push_str(&format!(
        "\n[[shop_terminals]]\nshop_id = \"s1\"\nterminal_id = \"t1\"\ntoken_sha256 = \"{}\"\n",
        hex::encode(outpost_core::log::sha256(token.as_bytes()))
    ));
    // A real Betfair race (Kempton, 7 runners: each-way 1/4 odds, 2 places) from a recorded
    // stream image; the file is the only message, so the producer's silence bound is long.
    edge_cfg.push_str(&format!(
        "\n[odds]\nalive_timeout_ms = 86400000\n\n[[odds.files]]\npath = \"{}\"\nformat = \"betfair\"\n",
        repo_root()
            .join("fixtures/betfair/betfairlightweight/streaming_mcm_SUB_IMAGE.json")
            .display()
    ));
    std::fs::write(d.join("gb-1.toml"), edge_cfg).unwrap();
    let printer = start_printer();
    std::fs::write(
        d.join("till.toml"),
        format!(
            "shop_id = \"s1\"\nshop_name = \"Outpost Bookmakers High St\"\nterminal_id = \"t1\"\nlisten = \"{till_http}\"\nedge_url = \"http://{edge_http}\"\ntoken_file = \"{tok}\"\njournal = \"{j}\"\nterms = \"Winning tickets are paid for 180 days at any of our shops. 18+ only.\"\n\n[printer]\nkind = \"network\"\naddr = \"{pa}\"\n\n[[staff]]\nstaff_id = \"ann\"\nname = \"Ann Cashier\"\nrole = \"cashier\"\npin_sha256 = \"{ph1}\"\n\n[[staff]]\nstaff_id = \"meg\"\nname = \"Meg Manager\"\nrole = \"manager\"\npin_sha256 = \"{ph2}\"\n",
            tok = d.join("t1.token").display(),
            j = d.join("till.sqlite").display(),
            pa = printer.addr,
            ph1 = pin_hash("ann", CASHIER_PIN),
            ph2 = pin_hash("meg", MANAGER_PIN),
        ),
    )
    .unwrap();

    let mut hub = Proc::start(
        "hub",
        &bin("region-hub"),
        &["run", "--config", &format!("{}/hub.toml", d.display())],
        d,
    );
    let edge_args = [
        "run".to_string(),
        "--config".into(),
        format!("{}/gb-1.toml", d.display()),
    ];
    let edge_args: Vec<&str> = edge_args.iter().map(String::as_str).collect();
    let mut edge = Proc::start("edge", &bin("edge-node"), &edge_args, d);
    let (e, h, t) = (
        format!("http://{edge_http}"),
        format!("http://{hub_http}"),
        format!("http://{till_http}"),
    );
    wait_healthy(&h, &mut hub, Duration::from_secs(60)).await;
    wait_healthy(&e, &mut edge, Duration::from_secs(60)).await;
    let mut till = Proc::start(
        "till",
        &shop_terminal_bin(),
        &["run", "--config", &format!("{}/till.toml", d.display())],
        d,
    );
    wait_http(&format!("{t}/healthz"), &mut till).await;

    let b = Driver::start(&d.join("chrome-profile"), &d.join("chromedriver.log")).await;

    // 1. Log in with a PIN; the first login of the day counts in the float.
    b.goto(&format!("{t}/")).await;
    b.wait("#pin").await;
    b.click("option[value=ann]").await;
    b.type_into("#pin", CASHIER_PIN).await;
    b.type_into("#float", "100.00").await;
    b.screenshot(&shots.join("01-login.png")).await;
    b.submit("#login").await;
    b.wait_text("#staff", |s| s.contains("ann")).await;
    reload_until(&b, &format!("{t}/"), "#edge-status", |s| {
        s.contains("Edge online")
    })
    .await;

    // 2. Keyboard entry: event code + selection code (Burnley v Man City is the first event).
    let coupon = reload_until(&b, &format!("{t}/"), "#coupon", |s| {
        s.contains("Burnley v Man City")
    })
    .await;
    let line = coupon
        .lines()
        .find(|l| l.contains("Burnley v Man City"))
        .unwrap()
        .to_string();
    let code = line.split_whitespace().next().unwrap().to_string();
    assert_eq!(code, "1000", "{line}");
    b.type_into("#event-code", &code).await;
    b.type_into("#selection-code", "2").await;
    b.submit("#add-leg").await;
    let legs = b.wait_text("#legs", |s| s.contains("Man City")).await;
    assert!(legs.contains("Match result"), "{legs}");
    b.type_into("#stake", "10").await;
    b.click("#age-confirmed").await;
    b.screenshot(&shots.join("02-bet-entry.png")).await;
    b.submit("#place-bet").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "PRINTED",
        "{}",
        b.page_text().await
    );
    let ticket = b.text("#slip-ticket").await;
    assert_eq!(ticket.len(), 18);
    let slip = b.text(".slip").await;
    for want in [
        "Outpost Bookmakers High St",
        "Shop s1  Terminal t1",
        "Match result: Man City",
        "GBP 10.00",
        "GBP 13.30",
        "Record SHA-256:",
    ] {
        assert!(slip.contains(want), "screen slip lacks {want}:\n{slip}");
    }
    b.screenshot(&shots.join("03-slip.png")).await;
    // What reached the printer: ESC/POS with the ticket in the Code 128 command.
    let printed = printer.received.lock().unwrap().clone();
    assert_eq!(&printed[..2], &[0x1b, b'@']);
    let pairs: Vec<u8> = ticket
        .as_bytes()
        .chunks(2)
        .map(|p| (p[0] - b'0') * 10 + (p[1] - b'0'))
        .collect();
    let mut gs_k = vec![0x1d, b'k', 73, 11, b'{', b'C'];
    gs_k.extend(&pairs);
    assert!(
        printed.windows(gs_k.len()).any(|w| w == gs_k.as_slice()),
        "barcode command not printed"
    );

    // 3. Printer out of paper: the bet stands, the till says so, the slip is reprinted.
    printer.paper_out.store(true, Ordering::SeqCst);
    b.goto(&format!("{t}/")).await;
    b.type_into("#event-code", "1000").await;
    b.type_into("#selection-code", "X").await;
    b.submit("#add-leg").await;
    b.type_into("#stake", "5").await;
    b.click("#age-confirmed").await;
    b.submit("#place-bet").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "PRINTER_OUT_OF_PAPER"
    );
    let ticket2 = b.text("#slip-ticket").await;
    b.screenshot(&shots.join("04-out-of-paper.png")).await;
    printer.paper_out.store(false, Ordering::SeqCst);
    let before = printer.received.lock().unwrap().len();
    b.submit("#reprint").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "REPRINTED"
    );
    let reprint = printer.received.lock().unwrap()[before..].to_vec();
    assert!(String::from_utf8_lossy(&reprint).contains("DUPLICATE"));
    assert!(String::from_utf8_lossy(&reprint).contains(&format!("Ticket {ticket2}")));

    // 3b. A mis-keyed bet, voided by its own cashier inside the window: the stake goes back.
    b.goto(&format!("{t}/")).await;
    b.type_into("#event-code", "1000").await;
    b.type_into("#selection-code", "1").await;
    b.submit("#add-leg").await;
    b.type_into("#stake", "3").await;
    b.click("#age-confirmed").await;
    b.submit("#place-bet").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "PRINTED"
    );
    let ticket3 = b.text("#slip-ticket").await;
    b.goto(&format!("{t}/void")).await;
    b.type_into("#void-ticket", &ticket3).await;
    b.type_into("#void-reason", "keyed the wrong selection")
        .await;
    b.submit("#void").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "VOIDED",
        "{}",
        b.page_text().await
    );
    assert!(b.text("#flash").await.contains("GBP 3.00"));
    b.screenshot(&shots.join("04b-void.png")).await;
    // Voiding again is refused with a code.
    b.type_into("#void-ticket", &ticket3).await;
    b.type_into("#void-reason", "again").await;
    b.submit("#void").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "TICKET_VOIDED"
    );

    // 3c. Each-way on the race: find it on the coupon, key its code and runner number, type
    // the stake and `e` (the each-way toggle key): £2 each-way, £4 taken.
    let deadline = Instant::now() + Duration::from_secs(60);
    let race = loop {
        b.goto(&format!("{t}/?q=race")).await;
        let c = b.text("#coupon").await;
        if let Some(l) = c.lines().find(|l| l.contains("Race bf:27890558")) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "race not on the coupon:\n{c}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let race_code = race.split_whitespace().next().unwrap().to_string();
    b.type_into("#event-code", &race_code).await;
    b.type_into("#selection-code", "1").await;
    b.submit("#add-leg").await;
    let legs = b.wait_text("#legs", |s| s.contains("No. 1")).await;
    assert!(legs.contains("1/4 odds, 2 places"), "{legs}");
    assert!(!b.selected("#each-way").await);
    b.type_into("#stake", "2e").await;
    assert!(b.selected("#each-way").await, "the E key toggles each-way");
    b.click("#age-confirmed").await;
    b.screenshot(&shots.join("04c-each-way-entry.png")).await;
    b.submit("#place-bet").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "PRINTED",
        "{}",
        b.page_text().await
    );
    let ew_slip = b.text(".slip").await;
    for want in [
        "E/W SINGLE",
        "E/W terms 1/4 odds, 2 places",
        "GBP 2.00 x 2",
        "Total stake",
        "GBP 4.00",
        "Return if won",
        "Return if placed",
    ] {
        assert!(
            ew_slip.contains(want),
            "each-way slip lacks {want}:\n{ew_slip}"
        );
    }
    let ew_ticket = b.text("#slip-ticket").await;
    let v: serde_json::Value = client()
        .get(format!("{e}/v1/shop/tickets/{ew_ticket}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &v["bet"]["each_way"],
            &v["bet"]["stake_minor"],
            &v["each_way"]["unit_stake_minor"]
        ),
        (&json!(true), &json!(400), &json!(200)),
        "{v}"
    );
    b.screenshot(&shots.join("04d-each-way-slip.png")).await;

    // 4. Bad scans are refused with a code.
    b.goto(&format!("{t}/payout")).await;
    b.type_into("#scan", "12345").await;
    b.submit("#lookup").await;
    assert_eq!(
        b.wait_text("#lookup-code", |s| !s.is_empty()).await,
        "TICKET_UNREADABLE"
    );
    let mut wrong = ticket.clone().into_bytes();
    wrong[17] = b'0' + (wrong[17] - b'0' + 1) % 10;
    b.type_into("#scan", std::str::from_utf8(&wrong).unwrap())
        .await;
    b.submit("#lookup").await;
    assert_eq!(
        b.wait_text("#lookup-code", |s| !s.is_empty()).await,
        "TICKET_CHECK_DIGIT"
    );
    let forged = outpost_core::edge::shop::TicketId::generate(4_242, 987_654_321);
    b.type_into("#scan", forged.as_str()).await;
    b.submit("#lookup").await;
    assert_eq!(
        b.wait_text("#lookup-code", |s| !s.is_empty()).await,
        "TICKET_NOT_FOUND"
    );
    b.screenshot(&shots.join("05-bad-scan.png")).await;
    b.type_into("#scan", &ticket).await;
    b.submit("#lookup").await;
    assert_eq!(b.wait_text("#lookup-code", |s| !s.is_empty()).await, "OPEN");

    // 5. The result reaches the hub (Burnley 0-3 Man City); the settlement flows down.
    let c = client();
    // Final only when two independent sources agree.
    for source in ["openfootball", "football-data"] {
        let r = c.post(format!("{h}/v1/results")).json(&json!({"event_id": "E0-20230811-burnley-man-city", "home_goals": 0, "away_goals": 3, "source": source})).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v: serde_json::Value = c
            .get(format!("{e}/v1/shop/tickets/{ticket}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["state"] == "payable" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ticket never became payable: {v}\n{}",
            edge.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 6. Scan and pay.
    b.type_into("#scan", &ticket).await;
    b.submit("#lookup").await;
    assert_eq!(
        b.wait_text("#lookup-code", |s| !s.is_empty()).await,
        "PAYABLE"
    );
    b.submit("#pay").await;
    assert_eq!(b.wait_text("#flash-code", |s| !s.is_empty()).await, "PAID");
    assert!(b.text("#flash").await.contains("GBP 13.30"));
    b.screenshot(&shots.join("06-paid.png")).await;
    b.type_into("#scan", &ticket).await;
    b.submit("#lookup").await;
    assert_eq!(b.wait_text("#lookup-code", |s| !s.is_empty()).await, "PAID");

    // 7. Cash-up: 100 float + 10 + 5 + 3 + 4 (each-way) stakes - 3 refunded - 13.30 paid =
    // 105.70; a manager signs off.
    b.goto(&format!("{t}/cashup")).await;
    b.type_into("#counted", "105.70").await;
    b.type_into("#cu-mgr", "meg").await;
    b.type_into("#cu-pin", MANAGER_PIN).await;
    b.submit("#do-cashup").await;
    assert_eq!(
        b.wait_text("#cu-over-short", |s| !s.is_empty()).await,
        "GBP 0.00",
        "{}",
        b.page_text().await
    );
    assert_eq!(b.text("#cu-expected").await, "GBP 105.70");
    assert_eq!(b.text("#cu-differences").await, "0");
    b.screenshot(&shots.join("07-cashup.png")).await;

    // 8. End-of-day report (log in again: the cash-up closed the drawer).
    b.goto(&format!("{t}/login")).await;
    b.click("option[value=meg]").await;
    b.type_into("#pin", MANAGER_PIN).await;
    b.type_into("#float", "50").await;
    b.submit("#login").await;
    b.wait("#event-code").await;
    b.goto(&format!("{t}/report")).await;
    assert_eq!(b.wait_text("#t-sold-count", |s| !s.is_empty()).await, "4");
    assert_eq!(b.text("#t-sold-amount").await, "GBP 22.00");
    assert_eq!(b.text("#t-cancelled-count").await, "1");
    assert_eq!(b.text("#t-paid-count").await, "1");
    assert_eq!(b.text("#t-over-short").await, "GBP 0.00");
    let shop = b.wait_text("#shop-report", |s| s.contains("t1")).await;
    assert!(shop.contains("4 / GBP 22.00"), "{shop}");
    b.screenshot(&shots.join("08-report.png")).await;

    // 9. The edge goes away: the till says so and refuses a bet; nothing is queued.
    edge.kill9();
    reload_until(&b, &format!("{t}/"), "#edge-status", |s| {
        s.contains("EDGE OFFLINE")
    })
    .await;
    b.type_into("#event-code", "1000").await;
    b.type_into("#selection-code", "1").await;
    b.submit("#add-leg").await;
    b.type_into("#stake", "2").await;
    b.click("#age-confirmed").await;
    b.submit("#place-bet").await;
    assert_eq!(
        b.wait_text("#flash-code", |s| !s.is_empty()).await,
        "EDGE_OFFLINE"
    );
    b.screenshot(&shots.join("09-offline.png")).await;
    // It reconnects by itself once the node is back, and nothing was sent in between.
    let mut edge = Proc::start("edge2", &bin("edge-node"), &edge_args, d);
    wait_healthy(&e, &mut edge, Duration::from_secs(60)).await;
    reload_until(&b, &format!("{t}/"), "#edge-status", |s| {
        s.contains("Edge online")
    })
    .await;
    let (_, report) = get(&c, &format!("{e}/v1/node")).await;
    assert_eq!(
        report["bets"], 4,
        "a bet was queued while the node was down: {report}"
    );
    b.quit().await;
    drop(till);
}
