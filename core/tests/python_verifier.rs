//! The independent Python verifier (`tests/verify_log.py`, built from `docs/log-format.md`
//! alone) against real chains written by our code, good and tampered, and cross-checked
//! against our own verifier (`verify_frames`): both must accept the same logs and name the same
//! first bad record.
//!
//! Python: `$OUTPOST_PYTHON` if set, else the repo's `.venv/bin/python` (created by
//! `scripts/python-venv.sh`), else `python3`. It needs the `cryptography` package.

#[path = "../examples/make_segment.rs"]
#[allow(dead_code, unused_imports)]
mod demo;

use demo::{Demo, build_demo, head_after, header_for};
use outpost_core::edge::events::{EdgeEvent, Genesis};
use outpost_core::hub::{HubEvent, HubResult};
use outpost_core::ids::{EventId, Jurisdiction, LogId, NodeId};
use outpost_core::log::{
    ChainHead, ChainWriter, Frame, NodeKey, PublicKey, RecordHash, RecordKind, SEGMENT_FORMAT,
    SegmentHeader, encode_segment, seal_message, verify_frames,
};
use outpost_core::money::Currency;
use outpost_core::settle::FinalScore;
use outpost_core::time::UnixMillis;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ has a parent")
        .to_path_buf()
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("OUTPOST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn demo() -> &'static Demo {
    static D: OnceLock<Demo> = OnceLock::new();
    D.get_or_init(build_demo)
}

/// What a verifier concluded: `Ok(summary)` or the first bad record's seq (None for a
/// header-only problem) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Good {
    records: u64,
    first_seq: u64,
    last_seq: u64,
    head_hash: String,
}
type Outcome = Result<Good, (Option<u64>, String)>;

/// Run the Python verifier on segment files (written to a tempdir in the given order).
fn run_python(files: &[(&str, Vec<u8>)], key_hex: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![];
    for (name, bytes) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    let script = repo_root().join("tests/verify_log.py");
    let out = Command::new(python())
        .arg(&script)
        .args(&paths)
        .args(["--public-key", key_hex, "--json"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (set OUTPOST_PYTHON or run scripts/python-venv.sh): {e}",
                python().display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "python verifier did not run properly (exit {code:?}); does {} have `cryptography`?\nstdout:\n{stdout}\nstderr:\n{stderr}",
        python().display()
    );
    let v: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("verifier output is not JSON ({e}):\n{stdout}\n{stderr}"));
    assert_eq!(
        v["ok"].as_bool(),
        Some(code == Some(0)),
        "exit status and `ok` disagree: {v}"
    );
    if code == Some(0) {
        Ok(Good {
            records: v["records"].as_u64().unwrap(),
            first_seq: v["first_seq"].as_u64().unwrap(),
            last_seq: v["last_seq"].as_u64().unwrap(),
            head_hash: v["head_hash"].as_str().unwrap().to_string(),
        })
    } else {
        let e = &v["error"];
        Err((
            e["seq"].as_u64(),
            e["reason"].as_str().unwrap_or_default().to_string(),
        ))
    }
}

/// Our own verifier over the same bytes: `verify_frames` for the chain, plus the segment-header
/// and content rules of docs/log-format.md, in the documented order.
fn run_rust(files: &[(&str, Vec<u8>)], key: &PublicKey) -> Outcome {
    let mut log_id: Option<LogId> = None;
    let mut head = ChainHead::EMPTY;
    let mut all: Vec<Frame> = vec![];
    for (i, (_, bytes)) in files.iter().enumerate() {
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or((None, "no header line".to_string()))?;
        let h: SegmentHeader = serde_json::from_slice(&bytes[..nl])
            .map_err(|e| (None, format!("bad segment header: {e}")))?;
        let hex_ok = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if h.format != SEGMENT_FORMAT
            || h.first_seq.0 == 0
            || h.records == 0
            || h.prev_timestamp_ms < 0
            || ![&h.prev_hash, &h.last_hash, &h.public_key]
                .iter()
                .all(|s| hex_ok(s))
            || (h.first_seq.0 == 1 && (h.prev_hash != "0".repeat(64) || h.prev_timestamp_ms != 0))
        {
            return Err((None, "bad segment header".into()));
        }
        let start = if i == 0 {
            log_id = Some(h.log_id.clone());
            h.start().unwrap()
        } else {
            head
        };
        let log = log_id.clone().unwrap();
        let mut frames = vec![];
        let mut rest = &bytes[nl + 1..];
        while !rest.is_empty() {
            let (f, n) = Frame::decode_prefix(rest).map_err(|e| (None, format!("frame: {e}")))?;
            frames.push(f);
            rest = &rest[n..];
        }
        let report = verify_frames(&log, key, start, frames.iter().cloned())
            .map_err(|e| (e.seq().map(|s| s.0), e.to_string()))?;
        if frames.is_empty() {
            return Err((None, "segment holds no records".into()));
        }
        let first = frames[0].parse_body().unwrap();
        let last_seq = Some(report.head.seq.0);
        let at_first = Some(first.seq.0);
        if h.records != frames.len() as u64 {
            return Err((
                last_seq,
                format!("header says {} records, found {}", h.records, frames.len()),
            ));
        }
        if h.log_id != log || h.first_seq != first.seq {
            return Err((at_first, "header log_id / first_seq".into()));
        }
        if i > 0
            && (RecordHash::from_hex(&h.prev_hash) != Some(head.hash)
                || h.prev_timestamp_ms != head.timestamp.0)
        {
            return Err((
                at_first,
                "header prev_hash / prev_timestamp_ms does not continue the previous segment"
                    .into(),
            ));
        }
        if h.last_seq != report.head.seq
            || RecordHash::from_hex(&h.last_hash) != Some(report.head.hash)
            || h.public_key.to_lowercase() != key.to_hex()
        {
            return Err((last_seq, "header last_seq / last_hash / public_key".into()));
        }
        head = report.head;
        all.extend(frames);
    }
    // Content: schemas (our own deserialisers), kinds per chain type, genesis rules.
    let log = log_id.unwrap();
    let hub_chain = log.as_str().starts_with("hub/");
    for f in &all {
        let b = f.parse_body().unwrap();
        let seq = Some(b.seq.0);
        let doc: serde_json::Value =
            serde_json::from_slice(&b.payload).map_err(|e| (seq, e.to_string()))?;
        for field in [
            "pii_sha256",
            "request_sha256",
            "hub_record_sha256",
            "public_key",
        ] {
            if let Some(s) = find_str(&doc, field)
                && !(s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
            {
                return Err((seq, format!("{field} is not 64 lowercase hex chars")));
            }
        }
        if hub_chain {
            HubEvent::from_payload(b.kind, &b.payload).map_err(|e| (seq, e))?;
            continue;
        }
        let ev = EdgeEvent::from_payload(b.kind, &b.payload).map_err(|e| (seq, e.to_string()))?;
        match ev {
            EdgeEvent::Genesis(g)
                if b.seq.0 != 1
                    || g.public_key != key.to_hex()
                    || g.node_id.as_str() != log.as_str() =>
            {
                return Err((seq, "genesis record does not fit this log".into()));
            }
            EdgeEvent::Genesis(_) => {}
            _ if b.seq.0 == 1 => {
                return Err((seq, "an edge log must start with a genesis record".into()));
            }
            _ => {}
        }
    }
    let first = all[0].parse_body().unwrap();
    Ok(Good {
        records: all.len() as u64,
        first_seq: first.seq.0,
        last_seq: head.seq.0,
        head_hash: head.hash.to_hex(),
    })
}

fn find_str<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(|x| x.as_str())
            .or_else(|| m.values().find_map(|x| find_str(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_str(x, key)),
        _ => None,
    }
}

#[derive(Debug)]
enum Expect {
    Pass,
    /// Fails at this seq (None: a header problem with no record to name), with a reason
    /// containing this text (Python's wording).
    Fail(Option<u64>, &'static str),
}

/// Run both verifiers; assert they agree with each other and with `expect`.
#[track_caller]
fn check(case: &str, files: &[(&str, Vec<u8>)], key: &PublicKey, expect: Expect) {
    let py = run_python(files, &key.to_hex());
    let rs = run_rust(files, key);
    match (&expect, &py, &rs) {
        (Expect::Pass, Ok(p), Ok(r)) => {
            assert_eq!(p, r, "{case}: the verifiers report different logs")
        }
        (Expect::Fail(seq, text), Err((pseq, preason)), Err((rseq, rreason))) => {
            assert_eq!(
                pseq, seq,
                "{case}: python names seq {pseq:?} ({preason}), expected {seq:?}"
            );
            assert_eq!(
                rseq, seq,
                "{case}: verify_frames names seq {rseq:?} ({rreason}), expected {seq:?}"
            );
            assert!(
                preason.contains(text),
                "{case}: python's reason {preason:?} does not mention {text:?}"
            );
        }
        _ => panic!("{case}: expected {expect:?}\n  python: {py:?}\n  rust:   {rs:?}"),
    }
}

fn edge_pub() -> PublicKey {
    demo().edge_key.public()
}

/// A segment of `frames` (continuing `start`) with an honest header.
fn seg(log: &LogId, key: &NodeKey, start: ChainHead, frames: &[Frame]) -> Vec<u8> {
    encode_segment(&header_for(log, key, start, frames), frames)
}

fn edge_seg(frames: &[Frame]) -> Vec<u8> {
    let d = demo();
    seg(&d.edge_log, &d.edge_key, ChainHead::EMPTY, frames)
}

/// A segment with the header computed for `honest` but carrying `frames` (tampered).
fn edge_seg_header_of(honest: &[Frame], frames: &[Frame]) -> Vec<u8> {
    let d = demo();
    encode_segment(
        &header_for(&d.edge_log, &d.edge_key, ChainHead::EMPTY, honest),
        frames,
    )
}

/// Flip one bit of the first occurrence of `needle` inside record `seq`'s body.
fn flip_in(frames: &mut [Frame], seq: u64, needle: &str, bit: u8) {
    let f = &mut frames[(seq - 1) as usize];
    let at = f
        .body
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle:?} not in seq {seq}"));
    f.body[at + needle.len() - 1] ^= bit;
}

fn with_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let nl = bytes.iter().position(|&b| b == b'\n').unwrap();
    let mut h: serde_json::Value = serde_json::from_slice(&bytes[..nl]).unwrap();
    edit(&mut h);
    let mut out = serde_json::to_vec(&h).unwrap();
    out.extend_from_slice(&bytes[nl..]);
    out
}

#[test]
fn demo_log_has_every_kind_and_its_shape() {
    let d = demo();
    let kinds: std::collections::BTreeSet<u8> = d
        .edge
        .iter()
        .chain(&d.hub)
        .map(|f| f.parse_body().unwrap().kind as u8)
        .collect();
    let all: std::collections::BTreeSet<u8> = RecordKind::ALL.iter().map(|k| *k as u8).collect();
    assert_eq!(kinds, all, "the demo covers every record kind");
    assert_eq!(d.edge[0].parse_body().unwrap().kind, RecordKind::Genesis);
    assert!(d.edge.last().unwrap().seal.is_some() && d.edge[d.split - 1].seal.is_some());
    assert!(
        d.hub.iter().all(|f| f.seal.is_some()),
        "every hub record is sealed"
    );
}

#[test]
fn good_logs_pass_both_verifiers() {
    let d = demo();
    check(
        "edge log, one segment",
        &[("gb-1.seg", edge_seg(&d.edge))],
        &edge_pub(),
        Expect::Pass,
    );
    let py = run_python(&[("gb-1.seg", edge_seg(&d.edge))], &edge_pub().to_hex()).unwrap();
    assert_eq!(py.records, d.edge.len() as u64);
    assert_eq!(py.head_hash, d.edge.last().unwrap().hash().to_hex());

    let (a, b) = d.edge.split_at(d.split);
    let p1 = seg(&d.edge_log, &d.edge_key, ChainHead::EMPTY, a);
    let p2 = seg(&d.edge_log, &d.edge_key, head_after(ChainHead::EMPTY, a), b);
    check(
        "edge log, two consecutive segments",
        &[("p1.seg", p1.clone()), ("p2.seg", p2.clone())],
        &edge_pub(),
        Expect::Pass,
    );
    check(
        "second segment alone (starts mid-chain)",
        &[("p2.seg", p2.clone())],
        &edge_pub(),
        Expect::Pass,
    );
    check(
        "segments out of order",
        &[("p2.seg", p2), ("p1.seg", p1)],
        &edge_pub(),
        Expect::Fail(
            Some(1),
            format!("expected seq {}, found 1", d.edge.len() + 1).leak(),
        ),
    );

    let hub = seg(&d.hub_log, &d.hub_key, ChainHead::EMPTY, &d.hub);
    check(
        "hub downstream chain",
        &[("hub~gb-1.seg", hub.clone())],
        &d.hub_key.public(),
        Expect::Pass,
    );

    // Stored under its audit object key, the name is checked too.
    let t = d.edge[0].parse_body().unwrap().timestamp;
    let key = format!(
        "GB/{}/gb-1/{:020}-{:020}.seg",
        t.date().to_string().replace('-', "/"),
        1,
        d.edge.len()
    );
    check(
        "edge log under its audit key",
        &[(&key, edge_seg(&d.edge))],
        &edge_pub(),
        Expect::Pass,
    );
    let wrong = key.replace("/01/01/", "/01/02/");
    let py = run_python(&[(&wrong, edge_seg(&d.edge))], &edge_pub().to_hex());
    assert!(
        matches!(&py, Err((Some(1), r)) if r.contains("audit object name")),
        "{py:?}"
    );
}

#[test]
fn flipped_payload_bytes_fail_at_the_right_record() {
    let d = demo();
    // A sealed record (seq 3 is a commit group of its own): its seal no longer verifies.
    let mut t = d.edge.clone();
    flip_in(&mut t, 3, "kyc-0001", 0x01);
    check(
        "flip in sealed seq 3",
        &[("gb-1.seg", edge_seg_header_of(&d.edge, &t))],
        &edge_pub(),
        Expect::Fail(Some(3), "seal signature does not verify"),
    );
    // An unsealed record (seq 4; its group is sealed at 5): the next record's link breaks.
    let mut t = d.edge.clone();
    flip_in(&mut t, 4, "psp-7f3a-0001", 0x01);
    check(
        "flip in unsealed seq 4",
        &[("gb-1.seg", edge_seg_header_of(&d.edge, &t))],
        &edge_pub(),
        Expect::Fail(Some(5), "does not match the hash"),
    );
    // A flip that breaks the JSON itself is caught at the record.
    let mut t = d.edge.clone();
    flip_in(&mut t, 10, "{\"movement_id\"", 0x02);
    check(
        "flip breaking JSON in seq 10",
        &[("gb-1.seg", edge_seg_header_of(&d.edge, &t))],
        &edge_pub(),
        Expect::Fail(Some(10), "not UTF-8 JSON"),
    );
    // A flip in the timestamp field of unsealed seq 12 breaks the link at 13.
    let mut t = d.edge.clone();
    let b = t[11].parse_body().unwrap();
    let off = 4 + 1 + 1 + 2 + b.log_id.as_str().len() + 8 + 7;
    t[11].body[off] ^= 0x01;
    check(
        "flip in timestamp of seq 12",
        &[("gb-1.seg", edge_seg_header_of(&d.edge, &t))],
        &edge_pub(),
        Expect::Fail(Some(13), "does not match the hash"),
    );
}

#[test]
fn removed_record_fails_as_a_gap() {
    let d = demo();
    let mut t = d.edge.clone();
    t.remove(11); // seq 12
    // Header rewritten to match (what an attacker would do) or left as it was: same verdict.
    check(
        "seq 12 removed, header fixed up",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(13), "expected seq 12, found 13"),
    );
    check(
        "seq 12 removed, header untouched",
        &[("gb-1.seg", edge_seg_header_of(&d.edge, &t))],
        &edge_pub(),
        Expect::Fail(Some(13), "expected seq 12, found 13"),
    );
    // A missing middle segment.
    let thirds = [&d.edge[..8], &d.edge[8..16], &d.edge[16..]];
    assert!(
        thirds.iter().all(|p| p.last().unwrap().seal.is_some()),
        "demo groups end at seq 8 and 16"
    );
    let p1 = seg(&d.edge_log, &d.edge_key, ChainHead::EMPTY, thirds[0]);
    let p3 = seg(
        &d.edge_log,
        &d.edge_key,
        head_after(ChainHead::EMPTY, &d.edge[..16]),
        thirds[2],
    );
    check(
        "missing middle segment",
        &[("p1.seg", p1), ("p3.seg", p3)],
        &edge_pub(),
        Expect::Fail(Some(17), "expected seq 9, found 17"),
    );
}

#[test]
fn wrong_key_fails_at_the_first_seal() {
    let d = demo();
    check(
        "edge log, hub key",
        &[("gb-1.seg", edge_seg(&d.edge))],
        &d.hub_key.public(),
        Expect::Fail(Some(1), "seal signature does not verify"),
    );
    let other = NodeKey::from_seed([9; 32]).public();
    check(
        "hub chain, other key",
        &[(
            "hub.seg",
            seg(&d.hub_log, &d.hub_key, ChainHead::EMPTY, &d.hub),
        )],
        &other,
        Expect::Fail(Some(1), "seal signature"),
    );
    // Mid-chain segment: the first seal in it is seq 11 (records 9-11 are one group).
    let (a, b) = d.edge.split_at(d.split);
    let p2 = seg(&d.edge_log, &d.edge_key, head_after(ChainHead::EMPTY, a), b);
    check(
        "second segment, other key",
        &[("p2.seg", p2)],
        &other,
        Expect::Fail(Some(11), "seal signature does not verify"),
    );
}

#[test]
fn forged_seals_fail() {
    let d = demo();
    let mallory = NodeKey::from_seed([0x66; 32]);
    // A valid signature over the right message, by another key.
    let mut t = d.edge.clone();
    t[10].seal = Some(mallory.sign(&seal_message(&t[10].hash())));
    check(
        "seal of seq 11 by another key",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(11), "seal signature does not verify"),
    );
    // Alter a sealed record and re-seal it with another key.
    let mut t = d.edge.clone();
    flip_in(&mut t, 14, "bet-0002", 0x01);
    ChainWriter::seal(&mut t[13], &mallory);
    check(
        "seq 14 altered and re-sealed",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(14), "seal signature does not verify"),
    );
    // Seal an unsealed record (seq 9) with another key.
    let mut t = d.edge.clone();
    assert!(t[8].seal.is_none());
    ChainWriter::seal(&mut t[8], &mallory);
    check(
        "extra seal on seq 9",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(9), "seal signature does not verify"),
    );
    // Garbage signature bytes; and the real seal of seq 3 moved onto seq 5.
    let mut t = d.edge.clone();
    t[7].seal = Some([0x5a; 64]);
    check(
        "garbage seal on seq 8",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(8), "seal signature does not verify"),
    );
    let mut t = d.edge.clone();
    t[4].seal = t[2].seal;
    check(
        "seal of seq 3 replayed on seq 5",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(5), "seal signature does not verify"),
    );
}

#[test]
fn unsealed_tail_fails() {
    let d = demo();
    // The log cut inside a commit group: seq 30-33 is one group, sealed at 33.
    let cut = &d.edge[..32];
    assert!(cut.last().unwrap().seal.is_none());
    check(
        "cut after seq 32",
        &[("gb-1.seg", edge_seg(cut))],
        &edge_pub(),
        Expect::Fail(Some(30), "not covered by any seal"),
    );
    // The last seal stripped: the last group (from after the previous seal) is uncovered.
    let mut t = d.edge.clone();
    t.last_mut().unwrap().seal = None;
    let last_group_first_seq = t.iter().rposition(|f| f.seal.is_some()).unwrap() as u64 + 2;
    check(
        "last seal stripped",
        &[("gb-1.seg", edge_seg(&t))],
        &edge_pub(),
        Expect::Fail(Some(last_group_first_seq), "not covered by any seal"),
    );
    // Two segments where the first ends inside a group: each segment must end on a seal.
    let p1 = seg(&d.edge_log, &d.edge_key, ChainHead::EMPTY, &d.edge[..9]);
    let p2 = seg(
        &d.edge_log,
        &d.edge_key,
        head_after(ChainHead::EMPTY, &d.edge[..9]),
        &d.edge[9..],
    );
    check(
        "segment boundary inside a group",
        &[("p1.seg", p1), ("p2.seg", p2)],
        &edge_pub(),
        Expect::Fail(Some(9), "not covered by any seal"),
    );
}

#[test]
fn broken_headers_fail() {
    let d = demo();
    let good = edge_seg(&d.edge);
    let last = d.edge.len() as u64;
    let zero = "0".repeat(64);
    check(
        "last_hash altered",
        &[(
            "gb-1.seg",
            with_header(&good, |h| h["last_hash"] = zero.clone().into()),
        )],
        &edge_pub(),
        Expect::Fail(Some(last), "last_hash"),
    );
    check(
        "last_seq altered",
        &[(
            "gb-1.seg",
            with_header(&good, |h| h["last_seq"] = 32.into()),
        )],
        &edge_pub(),
        Expect::Fail(Some(last), "last_seq"),
    );
    check(
        "records altered",
        &[(
            "gb-1.seg",
            with_header(&good, |h| h["records"] = (d.edge.len() + 1).into()),
        )],
        &edge_pub(),
        Expect::Fail(
            Some(last),
            format!(
                "header says {} records, found {}",
                d.edge.len() + 1,
                d.edge.len()
            )
            .leak(),
        ),
    );
    check(
        "first_seq altered",
        &[(
            "gb-1.seg",
            with_header(&good, |h| h["first_seq"] = 2.into()),
        )],
        &edge_pub(),
        Expect::Fail(Some(1), "expected seq 2, found 1"),
    );
    check(
        "public_key replaced",
        &[(
            "gb-1.seg",
            with_header(&good, |h| {
                h["public_key"] = d.hub_key.public().to_hex().into()
            }),
        )],
        &edge_pub(),
        Expect::Fail(Some(last), "public_key"),
    );
    check(
        "log_id altered",
        &[(
            "gb-1.seg",
            with_header(&good, |h| h["log_id"] = "gb-2".into()),
        )],
        &edge_pub(),
        Expect::Fail(Some(1), "belongs to log 'gb-1', expected 'gb-2'"),
    );
    // Mid-chain segment alone: its header's prev_hash is where the chain starts.
    let (a, b) = d.edge.split_at(d.split);
    let p1 = seg(&d.edge_log, &d.edge_key, ChainHead::EMPTY, a);
    let p2 = seg(&d.edge_log, &d.edge_key, head_after(ChainHead::EMPTY, a), b);
    let bad_prev = with_header(&p2, |h| h["prev_hash"] = "ab".repeat(32).into());
    check(
        "prev_hash altered, segment alone",
        &[("p2.seg", bad_prev.clone())],
        &edge_pub(),
        Expect::Fail(Some(9), "does not match the hash"),
    );
    // With its predecessor given, the header must continue it.
    check(
        "prev_hash altered, after its predecessor",
        &[("p1.seg", p1.clone()), ("p2.seg", bad_prev)],
        &edge_pub(),
        Expect::Fail(Some(9), "prev_hash"),
    );
    let bad_ts = with_header(&p2, |h| h["prev_timestamp_ms"] = 5.into());
    check(
        "prev_timestamp_ms altered",
        &[("p1.seg", p1), ("p2.seg", bad_ts)],
        &edge_pub(),
        Expect::Fail(Some(9), "prev_timestamp_ms"),
    );
    // Headers that are not headers: no record to name.
    let mut not_json = good.clone();
    not_json[0] = b'[';
    for (case, bytes) in [
        ("header not JSON", not_json),
        (
            "unknown header field",
            with_header(&good, |h| h["extra"] = 1.into()),
        ),
        (
            "missing header field",
            with_header(&good, |h| {
                drop(h.as_object_mut().unwrap().remove("records"))
            }),
        ),
        (
            "wrong format",
            with_header(&good, |h| h["format"] = "outpost-segment/2".into()),
        ),
        (
            "seq given as a string",
            with_header(&good, |h| h["first_seq"] = "1".into()),
        ),
        (
            "first segment with a non-zero prev_hash",
            with_header(&good, |h| h["prev_hash"] = "11".repeat(32).into()),
        ),
        (
            "no newline",
            good.iter().copied().take_while(|&b| b != b'\n').collect(),
        ),
    ] {
        check(
            case,
            &[("gb-1.seg", bytes)],
            &edge_pub(),
            Expect::Fail(None, "header"),
        );
    }
}

#[test]
fn content_rules_are_checked() {
    let key = NodeKey::from_seed([3; 32]);
    let log = LogId::new("ie-1").unwrap();
    let genesis = |pk: String| {
        EdgeEvent::Genesis(Genesis {
            node_id: NodeId::new("ie-1").unwrap(),
            jurisdiction: Jurisdiction::new("IE").unwrap(),
            currency: Currency::EUR,
            public_key: pk,
            software: "test".into(),
        })
    };
    let build = |events: &[(RecordKind, Vec<u8>)]| {
        let mut w = ChainWriter::new(log.clone(), ChainHead::EMPTY);
        let mut frames: Vec<Frame> = events
            .iter()
            .map(|(k, p)| w.append(*k, UnixMillis(1_700_000_000_000), p.clone()))
            .collect();
        ChainWriter::seal(frames.last_mut().unwrap(), &key);
        seg(&log, &key, ChainHead::EMPTY, &frames)
    };
    let g = genesis(key.public().to_hex());
    check(
        "minimal good log",
        &[("ie-1.seg", build(&[(g.kind(), g.to_payload())]))],
        &key.public(),
        Expect::Pass,
    );
    let other = NodeKey::from_seed([4; 32]).public().to_hex();
    let bad = genesis(other);
    check(
        "genesis names another key",
        &[("ie-1.seg", build(&[(bad.kind(), bad.to_payload())]))],
        &key.public(),
        Expect::Fail(Some(1), "genesis public_key"),
    );
    let hub = HubEvent::Result(HubResult {
        event_id: EventId::new("e1").unwrap(),
        score: FinalScore { home: 1, away: 0 },
        result_version: 1,
        source: "x".into(),
    });
    check(
        "hub record in an edge log",
        &[(
            "ie-1.seg",
            build(&[(g.kind(), g.to_payload()), (hub.kind(), hub.to_payload())]),
        )],
        &key.public(),
        Expect::Fail(Some(2), "does not belong in an edge log"),
    );
    let sha = "ab".repeat(32);
    let kyc = format!(r#"{{"player_id":"ie-1-p1","idem":{{"key":"k","request_sha256":"{sha}"}}}}"#)
        .into_bytes();
    check(
        "edge log without genesis",
        &[("ie-1.seg", build(&[(RecordKind::KycVerified, kyc.clone())]))],
        &key.public(),
        Expect::Fail(Some(1), "must start with a genesis"),
    );
    check(
        "second genesis",
        &[(
            "ie-1.seg",
            build(&[
                (g.kind(), g.to_payload()),
                (RecordKind::KycVerified, kyc),
                (g.kind(), g.to_payload()),
            ]),
        )],
        &key.public(),
        Expect::Fail(Some(3), "genesis record after seq 1"),
    );
    let bad_sha = format!(
        r#"{{"player_id":"ie-1-p1","idem":{{"key":"k","request_sha256":"{}"}}}}"#,
        "AB".repeat(32)
    )
    .into_bytes();
    check(
        "request_sha256 not lowercase hex",
        &[(
            "ie-1.seg",
            build(&[
                (g.kind(), g.to_payload()),
                (RecordKind::KycVerified, bad_sha),
            ]),
        )],
        &key.public(),
        Expect::Fail(Some(2), "request_sha256"),
    );
    check(
        "payload missing a field",
        &[(
            "ie-1.seg",
            build(&[
                (g.kind(), g.to_payload()),
                (RecordKind::KycVerified, br#"{"player_id":"p"}"#.to_vec()),
            ]),
        )],
        &key.public(),
        Expect::Fail(Some(2), "idem: missing field"),
    );
    // A real market payload with its price as a JSON number instead of a string.
    let market = demo().edge[5].parse_body().unwrap().payload;
    let market = String::from_utf8(market)
        .unwrap()
        .replacen(r#""price":"2.500""#, r#""price":2.5"#, 1)
        .into_bytes();
    check(
        "price as a number",
        &[(
            "ie-1.seg",
            build(&[
                (g.kind(), g.to_payload()),
                (RecordKind::MarketOpened, market),
            ]),
        )],
        &key.public(),
        Expect::Fail(Some(2), "market.selections[0].price: expected a string"),
    );
}

/// Every payload field, mutated (removed, null, wrong type, invalid value): the Python schema
/// check and our own deserialisers (`EdgeEvent::from_payload`, `HubEvent::from_payload`) must
/// accept and reject exactly the same payloads. One Python process runs all variants through
/// the verifier's `main` (the same code path as the command line).
#[test]
fn payload_schemas_agree_with_serde() {
    use serde_json::{Value, json};
    let d = demo();
    // One base record per kind (two compliance decisions and two movement shapes).
    let mut bases: Vec<(RecordKind, Value)> = vec![];
    let mut seen = std::collections::BTreeSet::new();
    for f in d.edge.iter().chain(&d.hub) {
        let b = f.parse_body().unwrap();
        let v: Value = serde_json::from_slice(&b.payload).unwrap();
        let variant = (
            b.kind as u8,
            v.get("accepted").cloned(),
            v.get("reason")
                .cloned()
                .filter(|_| b.kind == RecordKind::WalletMovement),
        );
        if seen.insert(format!("{variant:?}")) {
            bases.push((b.kind, v));
        }
    }
    fn mutations(v: &Value, out: &mut Vec<Value>, rebuild: &dyn Fn(Value) -> Value) {
        let wrong_type = match v {
            Value::String(_) => json!(7),
            Value::Number(_) => json!("7"),
            Value::Bool(_) => json!(1),
            Value::Array(_) => json!({}),
            Value::Object(_) => json!([]),
            Value::Null => json!(0),
        };
        out.push(rebuild(wrong_type));
        out.push(rebuild(Value::Null));
        match v {
            Value::String(s) => out.push(rebuild(Value::String(format!("{s} x")))),
            Value::Number(_) => {
                for n in [
                    json!(-1),
                    json!(1.5),
                    serde_json::from_str::<Value>("18446744073709551616").unwrap(),
                ] {
                    out.push(rebuild(n));
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    let mut without = m.clone();
                    without.remove(k);
                    out.push(rebuild(Value::Object(without)));
                    let (m, k) = (m.clone(), k.clone());
                    mutations(x, out, &|nx| {
                        let mut m2 = m.clone();
                        m2.insert(k.clone(), nx);
                        rebuild(Value::Object(m2))
                    });
                }
            }
            Value::Array(a) if !a.is_empty() => {
                let a = a.clone();
                mutations(&a[0], out, &|nx| {
                    let mut a2 = a.clone();
                    a2[0] = nx;
                    rebuild(Value::Array(a2))
                });
            }
            _ => {}
        }
    }
    let genesis = d.edge[0].parse_body().unwrap().payload;
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<(PathBuf, PublicKey, Vec<u8>)> = vec![];
    for (kind, base) in &bases {
        let mut variants = vec![base.clone()];
        mutations(base, &mut variants, &|v| v);
        for v in variants {
            let payload = serde_json::to_vec(&v).unwrap();
            let hub_kind = (*kind as u8) >= 64;
            let (log, key) = if hub_kind {
                (&d.hub_log, &d.hub_key)
            } else {
                (&d.edge_log, &d.edge_key)
            };
            let mut records = vec![];
            if !hub_kind && *kind != RecordKind::Genesis {
                records.push((RecordKind::Genesis, genesis.clone()));
            }
            records.push((*kind, payload.clone()));
            let mut w = ChainWriter::new(log.clone(), ChainHead::EMPTY);
            let mut frames: Vec<Frame> = records
                .into_iter()
                .map(|(k, p)| w.append(k, UnixMillis(demo::T0), p))
                .collect();
            ChainWriter::seal(frames.last_mut().unwrap(), key);
            let path = dir.path().join(format!("case-{}.seg", cases.len()));
            std::fs::write(&path, seg(log, key, ChainHead::EMPTY, &frames)).unwrap();
            cases.push((path, key.public(), payload));
        }
    }
    assert!(cases.len() > 300, "{} variants", cases.len());

    let harness = r#"
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import verify_log
for line in sys.stdin:
    key, path = line.rstrip("\n").split("\t")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = verify_log.main([path, "--public-key", key, "--json"])
    out = json.loads(buf.getvalue())
    err = out.get("error") or {}
    print(json.dumps({"rc": rc, "seq": err.get("seq"), "reason": err.get("reason")}), flush=True)
"#;
    let mut child = Command::new(python())
        .args(["-c", harness])
        .arg(repo_root().join("tests"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    let input: String = cases
        .iter()
        .map(|(p, k, _)| format!("{}\t{}\n", k.to_hex(), p.display()))
        .collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        std::io::Write::write_all(&mut stdin, input.as_bytes()).unwrap()
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "harness failed");
    let verdicts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), cases.len());

    let mut disagreements = vec![];
    let (mut accepted, mut rejected) = (0, 0);
    for ((path, key, payload), py) in cases.iter().zip(&verdicts) {
        let rs = run_rust(&[("x.seg", std::fs::read(path).unwrap())], key);
        let py_seq = py["seq"].as_u64();
        let agree = match &rs {
            Ok(_) => py["rc"] == 0,
            Err((seq, _)) => py["rc"] == 1 && py_seq == *seq,
        };
        if rs.is_ok() {
            accepted += 1
        } else {
            rejected += 1
        }
        if !agree {
            disagreements.push(format!(
                "{}\n    python: {py}\n    rust:   {rs:?}",
                String::from_utf8_lossy(payload)
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} variants disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    eprintln!(
        "{} payload variants: {accepted} accepted, {rejected} rejected, python and rust agree on all",
        cases.len()
    );
    assert!(
        accepted > 20 && rejected > 200,
        "accepted {accepted}, rejected {rejected}"
    );
}
