//! The printed slip, read back the way a third party would: an ESC/POS decoder written here
//! from the command reference (not the encoder's code) turns the byte stream into text lines
//! and barcode commands; the barcode's data bytes are checked to be Code 128 code set C for
//! the ticket id; and the Code 128 symbol drawn from those data bytes is rasterised and read
//! by zxing-cpp (an independent decoder, from PyPI) to prove it scans back to the ticket id.
//!
//! Why this route: the printer itself draws the bars from `GS k`, so what we control is the
//! command and its data; re-deriving the symbol from the decoded data and reading it with
//! zxing-cpp checks both the data and our Code 128 tables (used for the on-screen slip).

use shop_terminal::code128;
use shop_terminal::slip::{Slip, SlipLeg};
use std::path::PathBuf;
use std::process::Command;

#[derive(Debug, PartialEq)]
enum Op {
    Init,
    Align(u8),
    Bold(u8),
    Size(u8),
    Feed(u8),
    Text(String),
    BarcodeHeight(u8),
    BarcodeWidth(u8),
    Hri(u8),
    Barcode { m: u8, data: Vec<u8> },
    Cut,
}

/// ESC/POS decoder for the commands a receipt slip uses. Unknown commands are an error.
fn decode(b: &[u8]) -> Result<Vec<Op>, String> {
    let mut ops = vec![];
    let mut i = 0;
    let mut text = Vec::new();
    let need = |i: usize, n: usize| {
        if i + n <= b.len() {
            Ok(())
        } else {
            Err(format!("truncated command at {i}"))
        }
    };
    while i < b.len() {
        match b[i] {
            0x1b => {
                need(i, 2)?;
                match b[i + 1] {
                    b'@' => {
                        ops.push(Op::Init);
                        i += 2;
                    }
                    b'a' => {
                        need(i, 3)?;
                        ops.push(Op::Align(b[i + 2]));
                        i += 3;
                    }
                    b'E' => {
                        need(i, 3)?;
                        ops.push(Op::Bold(b[i + 2]));
                        i += 3;
                    }
                    b'd' => {
                        need(i, 3)?;
                        ops.push(Op::Feed(b[i + 2]));
                        i += 3;
                    }
                    c => return Err(format!("unknown ESC {c:#x} at {i}")),
                }
            }
            0x1d => {
                need(i, 3)?;
                match b[i + 1] {
                    b'!' => {
                        ops.push(Op::Size(b[i + 2]));
                        i += 3;
                    }
                    b'h' => {
                        ops.push(Op::BarcodeHeight(b[i + 2]));
                        i += 3;
                    }
                    b'w' => {
                        ops.push(Op::BarcodeWidth(b[i + 2]));
                        i += 3;
                    }
                    b'H' => {
                        ops.push(Op::Hri(b[i + 2]));
                        i += 3;
                    }
                    b'k' => {
                        // Function B: GS k m n d1…dn (m ≥ 65).
                        need(i, 4)?;
                        let (m, n) = (b[i + 2], b[i + 3] as usize);
                        if m < 65 {
                            return Err("function A barcodes not expected".into());
                        }
                        need(i + 4, n)?;
                        ops.push(Op::Barcode {
                            m,
                            data: b[i + 4..i + 4 + n].to_vec(),
                        });
                        i += 4 + n;
                    }
                    b'V' => {
                        // GS V m [n]: m = 65/66 take an n.
                        let m = b[i + 2];
                        i += if m == 65 || m == 66 {
                            need(i, 4)?;
                            4
                        } else {
                            3
                        };
                        ops.push(Op::Cut);
                    }
                    c => return Err(format!("unknown GS {c:#x} at {i}")),
                }
            }
            0x0a => {
                ops.push(Op::Text(
                    String::from_utf8(std::mem::take(&mut text)).map_err(|e| e.to_string())?,
                ));
                i += 1;
            }
            c if (0x20..0x7f).contains(&c) => {
                text.push(c);
                i += 1;
            }
            c => return Err(format!("unexpected byte {c:#x} at {i}")),
        }
    }
    if !text.is_empty() {
        return Err("text without a line feed at the end".into());
    }
    Ok(ops)
}

fn slip() -> Slip {
    Slip {
        shop_id: "s1".into(),
        shop_name: "Outpost Bookmakers".into(),
        terminal_id: "t1".into(),
        staff_id: "ann".into(),
        node_id: "gb-1".into(),
        ticket_id: "000000011234567894".into(),
        issued_at_ms: 1_700_000_000_000,
        expires_at_ms: 1_715_552_000_000,
        currency: "GBP".into(),
        minor_digits: 2,
        holder: "cash".into(),
        legs: vec![
            SlipLeg { event: "Burnley v Man City".into(), market: "Match result".into(), selection: "Man City".into(), price: "1.330".into() },
            SlipLeg { event: "Arsenal v Nott'm Forest".into(), market: "Total goals 2.5".into(), selection: "Over".into(), price: "1.360".into() },
        ],
        stake_minor: 1000,
        potential_minor: 1808,
        record_seq: Some(4242),
        record_hash: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
        terms: "Winning tickets are paid within 180 days of issue at any of our shops. Bets are accepted under our rules, available on request — 18+ only.".into(),
        each_way: None,
    }
}

fn text_lines(bytes: &[u8]) -> Vec<String> {
    decode(bytes)
        .expect("valid ESC/POS")
        .into_iter()
        .filter_map(|o| if let Op::Text(t) = o { Some(t) } else { None })
        .collect()
}

/// An each-way single as the edge returns it (`ticket.each_way`): £5 E/W at 11/1, 1/5 odds
/// 3 places; the slip says E/W, the unit and total stake, the terms and both returns.
#[test]
fn each_way_slip_shows_unit_total_terms_and_both_returns() {
    let ticket = serde_json::json!({"each_way": {"unit_stake_minor": 500, "total_stake_minor": 1000,
        "if_won_minor": 7600, "if_placed_minor": 1600,
        "terms": [{"places": 3, "fraction_num": 1, "fraction_den": 5}]}});
    let mut s = slip();
    s.legs = vec![SlipLeg {
        event: "Race bf:28587288".into(),
        market: "Win".into(),
        selection: "No. 1".into(),
        price: "12.000".into(),
    }];
    s.stake_minor = 1000;
    s.potential_minor = 7600;
    s.each_way = shop_terminal::slip::SlipEachWay::from_ticket(&ticket);
    assert!(
        shop_terminal::slip::SlipEachWay::from_ticket(&serde_json::json!({"each_way": null}))
            .is_none()
    );
    let lines = text_lines(&s.escpos(false));
    let find = |p: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("no {p:?} in {lines:#?}"))
            .clone()
    };
    assert_eq!(find("E/W"), "E/W SINGLE");
    assert!(
        lines
            .iter()
            .any(|l| l.trim() == "E/W terms 1/5 odds, 3 places"),
        "{lines:#?}"
    );
    assert!(find("Stake E/W").ends_with("GBP 5.00 x 2"));
    assert!(find("Total stake").ends_with("GBP 10.00"));
    assert!(find("Return if won").ends_with("GBP 76.00"));
    assert!(find("Return if placed").ends_with("GBP 16.00"));
    assert!(
        lines.iter().all(|l| l.len() <= 42),
        "a line is wider than the paper"
    );
    // The journal keeps the slip as JSON; a reprint renders the same lines, marked duplicate.
    let back: Slip = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    let dup = text_lines(&back.escpos(true));
    assert!(dup.iter().any(|l| l.contains("DUPLICATE")));
    assert!(
        dup.iter()
            .any(|l| l.starts_with("Return if placed") && l.ends_with("GBP 16.00"))
    );
    assert!(back.html(false).contains("Return if placed"));
}

fn python() -> PathBuf {
    std::env::var_os("OUTPOST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

#[test]
fn slip_decodes_to_its_content_and_the_barcode_scans_back() {
    let s = slip();
    let ops = decode(&s.escpos(false)).expect("valid ESC/POS");
    assert_eq!(ops.first(), Some(&Op::Init));
    assert_eq!(ops.last(), Some(&Op::Cut));
    let lines: Vec<&str> = ops
        .iter()
        .filter_map(|o| {
            if let Op::Text(t) = o {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    let all = lines.join("\n");
    for want in [
        "Outpost Bookmakers",
        "Shop s1  Terminal t1",
        "ACCUMULATOR (2 legs)",
        "Burnley v Man City",
        "Match result: Man City",
        "@ 1.330",
        "Total goals 2.5: Over",
        "Ticket 000000011234567894",
        "Node gb-1 record #4242",
        "Cashier ann",
    ] {
        assert!(all.contains(want), "slip lacks {want:?}:\n{all}");
    }
    let stake = lines.iter().find(|l| l.starts_with("Stake")).unwrap();
    assert!(stake.ends_with("GBP 10.00"), "{stake}");
    let pot = lines
        .iter()
        .find(|l| l.starts_with("Potential return"))
        .unwrap();
    assert!(pot.ends_with("GBP 18.08"), "{pot}");
    // The record hash is printed in two halves; joined they are the hash.
    let i = lines.iter().position(|l| *l == "Record SHA-256:").unwrap();
    assert_eq!(
        format!("{}{}", lines[i + 1], lines[i + 2]),
        s.record_hash.clone().unwrap()
    );
    assert!(
        all.contains("18+ only"),
        "terms missing (and the dash must have been made ASCII)"
    );
    assert!(
        lines.iter().all(|l| l.len() <= 42),
        "a line is wider than the paper"
    );
    assert!(!all.contains("DUPLICATE"));

    // The barcode command: CODE128 (73), code set C, digit pairs.
    let (m, data) = ops
        .iter()
        .find_map(|o| {
            if let Op::Barcode { m, data } = o {
                Some((*m, data.clone()))
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(m, 73);
    assert_eq!(&data[..2], b"{C");
    let digits: String = data[2..]
        .iter()
        .map(|b| {
            assert!(*b < 100);
            format!("{b:02}")
        })
        .collect();
    assert_eq!(digits, s.ticket_id);

    // Rasterise the symbol for those digits and let zxing-cpp read it.
    let modules = code128::modules(&code128::encode_c(&digits).unwrap());
    let (scale, h) = (3usize, 60usize);
    let w = modules.len() * scale;
    let mut pgm = format!("P5\n{w} {h}\n255\n").into_bytes();
    for _ in 0..h {
        for m in &modules {
            pgm.extend(std::iter::repeat_n(if *m { 0u8 } else { 255u8 }, scale));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("barcode.pgm");
    std::fs::write(&img, pgm).unwrap();
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/read_barcode.py"
        ))
        .arg(&img)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/test.sh (it installs zxing-cpp into .venv)",
                python().display()
            )
        });
    assert!(
        out.status.success(),
        "zxing-cpp reader failed (is zxing-cpp installed in the venv? scripts/python-venv.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("Code128 {}", s.ticket_id)
    );
}

#[test]
fn reprint_is_marked_duplicate_and_screen_shows_the_same_lines() {
    let s = slip();
    let ops = decode(&s.escpos(true)).unwrap();
    assert!(
        ops.iter()
            .any(|o| matches!(o, Op::Text(t) if t.contains("DUPLICATE")))
    );
    let html = s.html(false);
    assert!(html.contains("Ticket 000000011234567894"));
    assert!(html.contains("<svg"), "screen slip has the barcode");
    assert!(html.contains("Burnley v Man City"));
}

#[test]
fn decoder_rejects_garbage() {
    assert!(decode(&[0x1d, b'k', 73, 10, b'{']).is_err());
    assert!(decode(&[0x1b, 0x99]).is_err());
}
