//! Reading a node's replicated log for the checks: one pass over the `records` table up to the
//! end of the window, decoding only the kinds some check needs. Decoding (frame + JSON) is the
//! expensive part, so it is spread over the machine's cores in contiguous chunks and merged
//! back in seq order, while the next chunk is read from the database.

use super::ReconcileError;
use super::window::Window;
use outpost_core::edge::balance_snapshot::BalanceSnapshot;
use outpost_core::edge::events::{
    BetPlaced, BetSettled, ComplianceDecision, EdgeEvent, Genesis, PlayerRegistered, WalletMovement,
};
use outpost_core::ids::{Jurisdiction, NodeId};
use outpost_core::log::{Frame, RecordKind};
use rusqlite::{Connection, params};

/// A decoded record and where it sits in the log.
#[derive(Debug, Clone)]
pub struct Rec<T> {
    pub seq: u64,
    pub ts_ms: i64,
    pub v: T,
}

/// What the checks need of one node's log. "All" lists cover the log from seq 1 to the end of
/// the window (balances are cumulative); "window" lists only records inside the window.
#[derive(Debug, Default)]
pub struct NodeLog {
    pub node: Option<NodeId>,
    pub genesis: Option<Rec<Genesis>>,
    /// All.
    pub players: Vec<Rec<PlayerRegistered>>,
    /// All.
    pub movements: Vec<Rec<WalletMovement>>,
    /// All (a settlement may come long after the bet).
    pub settled: Vec<Rec<BetSettled>>,
    /// Settlements the edge reversed on a hub correction (kind 67).
    pub reversed: Vec<Rec<outpost_core::edge::events::BetSettlementReversed>>,
    /// Window.
    pub bets: Vec<Rec<BetPlaced>>,
    /// Window.
    pub decisions: Vec<Rec<ComplianceDecision>>,
    /// Window.
    pub snapshots: Vec<Rec<BalanceSnapshot>>,
    /// Records whose payload does not decode: (seq, error).
    pub unreadable: Vec<(u64, String)>,
    /// Records read (all kinds needed), for the report and the benchmark.
    pub records_read: u64,
}

/// The kinds any check decodes.
const KINDS: [RecordKind; 8] = [
    RecordKind::Genesis,
    RecordKind::PlayerRegistered,
    RecordKind::WalletMovement,
    RecordKind::ComplianceDecision,
    RecordKind::BetPlaced,
    RecordKind::BetSettled,
    RecordKind::BetSettlementReversed,
    RecordKind::BalanceSnapshot,
];

type Row = (u64, u8, i64, Vec<u8>);
type Decoded = (u64, i64, Result<EdgeEvent, String>);

fn decode(rows: &[Row]) -> Vec<Decoded> {
    rows.iter()
        .map(|(seq, kind, ts, bytes)| {
            let ev = (|| {
                let body = Frame::decode_exact(bytes)
                    .and_then(|f| f.parse_body())
                    .map_err(|e| e.to_string())?;
                let kind = RecordKind::from_code(*kind).ok_or("unknown kind")?;
                EdgeEvent::from_payload(kind, &body.payload).map_err(|e| e.to_string())
            })();
            (*seq, *ts, ev)
        })
        .collect()
}

/// Load `node`'s log up to `window.end_ms` (exclusive). `progress(n)` is told how many records
/// were decoded so far.
pub fn load(
    conn: &Connection,
    node: &NodeId,
    window: Window,
    progress: &dyn Fn(u64),
) -> Result<NodeLog, ReconcileError> {
    let kinds = KINDS
        .iter()
        .map(|k| (*k as u8).to_string())
        .collect::<Vec<_>>()
        .join(",");
    // Edge timestamps never decrease along the chain (the writer uses max(now, head)), so
    // `ts_ms < end` is a prefix of the log.
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, kind, ts_ms, frame FROM records WHERE node_id = ?1 AND ts_ms < ?2 AND kind IN ({kinds}) ORDER BY seq"
    ))?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8);
    const CHUNK: usize = 50_000;
    let mut log = NodeLog {
        node: Some(node.clone()),
        ..NodeLog::default()
    };
    let mut rows = stmt.query(params![node.as_str(), window.end_ms])?;
    // Reading (SQLite, this thread) and decoding (the other threads) overlap: batch k is
    // decoded while batch k+1 is read.
    let mut read_batch = |batch: &mut Vec<Row>| -> Result<bool, ReconcileError> {
        batch.clear();
        while batch.len() < CHUNK * threads {
            match rows.next()? {
                Some(r) => batch.push((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u8,
                    r.get(2)?,
                    r.get(3)?,
                )),
                None => return Ok(false),
            }
        }
        Ok(true)
    };
    let mut batch: Vec<Row> = Vec::with_capacity(CHUNK * threads);
    let mut next: Vec<Row> = Vec::with_capacity(CHUNK * threads);
    let mut more = read_batch(&mut batch)?;
    while !batch.is_empty() {
        let per = batch.len().div_ceil(threads).max(1);
        let (decoded, read_more) = std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .chunks(per)
                .map(|c| s.spawn(move || decode(c)))
                .collect();
            let read_more = if more {
                read_batch(&mut next)
            } else {
                next.clear();
                Ok(false)
            };
            let decoded: Vec<Vec<Decoded>> = handles
                .into_iter()
                .map(|h| h.join().expect("decoding does not panic"))
                .collect();
            (decoded, read_more)
        });
        more = read_more?;
        std::mem::swap(&mut batch, &mut next);
        for (seq, ts_ms, ev) in decoded.into_iter().flatten() {
            log.records_read += 1;
            let in_window = window.contains(ts_ms);
            match ev {
                Err(e) => log.unreadable.push((seq, e)),
                Ok(EdgeEvent::Genesis(v)) => log.genesis = Some(Rec { seq, ts_ms, v }),
                Ok(EdgeEvent::PlayerRegistered(v)) => log.players.push(Rec { seq, ts_ms, v }),
                Ok(EdgeEvent::WalletMovement(v)) => log.movements.push(Rec { seq, ts_ms, v }),
                Ok(EdgeEvent::BetSettled(v)) => log.settled.push(Rec { seq, ts_ms, v }),
                Ok(EdgeEvent::BetSettlementReversed(v)) => log.reversed.push(Rec { seq, ts_ms, v }),
                Ok(EdgeEvent::BetPlaced(v)) if in_window => log.bets.push(Rec { seq, ts_ms, v }),
                Ok(EdgeEvent::ComplianceDecision(v)) if in_window => {
                    log.decisions.push(Rec { seq, ts_ms, v })
                }
                Ok(EdgeEvent::BalanceSnapshot(v)) if in_window => {
                    log.snapshots.push(Rec { seq, ts_ms, v })
                }
                Ok(_) => {}
            }
        }
        progress(log.records_read);
    }
    Ok(log)
}

/// A registered node as the checks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub id: NodeId,
    pub jurisdiction: Jurisdiction,
}
