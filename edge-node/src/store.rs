//! Durable storage of the node's log on sled: the only state that must survive a crash.
//!
//! One sled tree holds, under distinct key prefixes, the log (`L` + seq, big-endian so
//! iteration is in log order), the PII vault (`P` + player id), signed tree heads (`C` + size),
//! the latest state snapshot (`S`) and the journal floor (`J`).
//!
//! The log is stored in chunks: the value under `L` + seq is one or more consecutive frames
//! in their log encoding (`Frame::encode`, self-delimiting), the first of which has that seq;
//! chunks are contiguous. A commit group is cut into chunks of at most `chunk_bytes_max`
//! (one sled insert per chunk instead of per record: sled's per-key work was most of the
//! store's CPU). A log written one frame per key is a log of one-frame chunks, so older data
//! directories read unchanged.
//!
//! Why the bound: sled writes any page larger than a quarter of its segment to a separate
//! blob file, and a leaf page holds up to 17 values; chunks of at most segment/4/20 keep log
//! pages inline in sled's own log. New stores use a 1 MiB segment (sled's default 512 KiB
//! would allow 6 KiB chunks; 4 MiB grew the node's memory by ~500 MiB under load); an
//! existing store keeps the segment size it was created with (sled refuses another).
//!
//! Durability: a commit group is made durable by the redo journal (`journal.rs`: its keys and
//! values with one `pwrite` and one `fdatasync`) and may then be acknowledged; the applier thread
//! then puts the same keys and values into sled without a flush, in journal order, and tells
//! the committer (`on_applied`), after which readers may see it. A background flusher
//! (`run_flusher`) switches journal files every `FLUSH_AT_BYTES` or `FLUSH_EVERY`, waits for
//! the applier to catch up with the switch, flushes sled, then raises the journal floor stored
//! in sled (`J`), which frees the older journal file. On open, journal records at or above the
//! floor are re-applied to sled before anything reads it.
//!
//! sled's own flush: 0.34 writes with `pwrite` then `sync_file_range`, which neither persists
//! the file's size metadata nor flushes the device cache, so every flush here is followed by
//! an `fdatasync` of sled's data file. sled also writes any page over its blob threshold (a
//! state snapshot, a large record) to its own file under `blobs/` and never syncs it, while
//! the log entry pointing at it is made durable by that flush: so each new blob file, and the
//! directory, is synced first (`BlobSyncer`).

use outpost_core::ids::{PlayerId, Seq};
use outpost_core::log::Frame;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::commit_timing::{self, CommitTiming};
use crate::journal::{Inserts, Journal, JournalError};

const LOG: u8 = b'L';
const PII: u8 = b'P';
const SNAPSHOT: &[u8] = b"S";
/// sled's page cache (see `open`).
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// sled's segment (and I/O buffer) size for a new store; sled's default is 512 KiB. sled
/// writes any page larger than a quarter of it to a blob file, and a leaf page holds up to 17
/// values: a larger segment lets a log chunk hold a whole commit group of a busy node.
const SEGMENT_BYTES: usize = 1024 * 1024;
/// Signed tree heads (`checkpoints.rs`): `C` + size (big-endian) → JSON.
const CHECKPOINT: u8 = b'C';
/// The journal floor (big-endian u64): every journal generation below it is in sled.
const FLOOR: &[u8] = b"J";
/// Flush sled once the journal's current generation holds this much. It bounds the replay
/// on restart and the journal files' size (each grows to about this once, then is reused).
/// (Small in unit tests, so the crash test switches journal files many times.)
const FLUSH_AT_BYTES: u64 = if cfg!(test) {
    256 * 1024
} else {
    8 * 1024 * 1024
};
/// ... or once this long has passed with anything journaled since the last flush.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("io on {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("stored frame at seq {seq} is corrupt: {detail}")]
    Corrupt { seq: u64, detail: String },
    #[error("log has a gap: expected seq {expected}, found {found}")]
    Gap { expected: u64, found: u64 },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("journal record {index} replayed at open does not parse")]
    JournalRecord { index: usize },
    #[error("the background flush of sled failed earlier: {0}")]
    FlushFailed(String),
    #[error("the store is closing")]
    Closing,
}

pub struct LogStore {
    inner: Arc<Inner>,
    flusher: Option<std::thread::JoinHandle<()>>,
    applier: Option<std::thread::JoinHandle<()>>,
}

/// A stored PII record: the player id's bytes and the value stored for it.
pub type PiiEntry = (Vec<u8>, Vec<u8>);

/// Run by the applier once a journaled group is in sled (readers may then see it).
pub type OnApplied = Box<dyn FnOnce() + Send>;

/// A journaled commit group on its way into sled.
struct Journaled {
    inserts: Inserts,
    timing: Arc<CommitTiming>,
    on_applied: OnApplied,
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    data_file: File,
    blobs: BlobSyncer,
    journal: Journal,
    /// Largest log chunk written (see the module header).
    chunk_bytes_max: usize,
    flush: Mutex<FlushState>,
    /// Wakes the flusher: enough journaled, or the store is closing.
    flush_wake: Condvar,
    /// Held from encoding a group to handing it to the applier, so the applier gets groups
    /// in journal order. `None` once the store is closing.
    to_applier: Mutex<Option<SyncSender<Journaled>>>,
    /// Journal record buffers the applier is done with, reused (see `Inserts`).
    spare: Mutex<Vec<Inserts>>,
    /// Journal records (since open) the applier has put into sled; the flusher waits on it.
    applied: Mutex<u64>,
    applied_cv: Condvar,
}

/// Groups journaled but not yet in sled before the persister waits for the applier.
const APPLY_QUEUE_MAX: usize = 256;
/// Spare journal record buffers kept (each as large as the largest group it held).
const SPARE_MAX: usize = 4;

#[derive(Default)]
struct FlushState {
    stop: bool,
    /// Set once a background flush failed: the older journal file may not be reused, so
    /// further commits are refused (the persister then aborts; restart replays the journal).
    failed: Option<String>,
}

/// Syncs the blob files sled wrote since the last flush. Listing an empty directory is a few
/// system calls per commit group; blobs themselves are rare (values over 128 KiB).
struct BlobSyncer {
    dir: PathBuf,
    /// Blob files already synced (pruned to what still exists: sled deletes old blobs).
    synced: Mutex<HashSet<OsString>>,
}

impl BlobSyncer {
    /// Sync every blob file not synced yet, then the directory (so the new names persist).
    /// Returns how many files it synced.
    fn sync_new(&self) -> Result<usize, StoreError> {
        let io = |path: &Path, error| StoreError::Io {
            path: path.to_path_buf(),
            error,
        };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            // sled creates the directory with its first blob.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&self.dir, e)),
        };
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        let mut present = HashSet::new();
        let mut newly = 0;
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.dir, e))?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                let path = entry.path();
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| io(&path, e))?;
                newly += 1;
            }
            present.insert(name);
        }
        if newly > 0 {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io(&self.dir, e))?;
        }
        *synced = present;
        Ok(newly)
    }
}

/// The segment size an existing store was created with (sled refuses to open it with another);
/// `None` for a new store. sled's `conf` file holds a line `segment_size: <bytes>`.
fn stored_segment_bytes(dir: &Path) -> Option<usize> {
    let conf = std::fs::read(dir.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("segment_size: ")?.trim().parse().ok())
}

/// The largest log chunk for a segment size: a leaf page of 17 chunks (sled splits a leaf
/// past 16 keys) plus its keys and headers stays under sled's blob threshold (a quarter of a
/// segment), so log pages are written inline in sled's log, never as blob files.
fn chunk_bytes_max(segment_bytes: usize) -> usize {
    (segment_bytes / 4 / 20).max(1024)
}

fn log_key(seq: Seq) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG;
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
    k
}

/// The first seq of the chunk stored under a log key.
fn key_seq(k: &[u8]) -> Result<u64, StoreError> {
    match (k.first(), k.get(1..9)) {
        (Some(&LOG), Some(b)) if k.len() == 9 => {
            Ok(u64::from_be_bytes(b.try_into().expect("eight bytes")))
        }
        _ => Err(StoreError::Corrupt {
            seq: 0,
            detail: format!("bad log key {k:?}"),
        }),
    }
}

/// The frames of the chunk stored under first seq `first`. An empty chunk is corrupt (the
/// store never writes one).
fn chunk_frames(first: u64, v: &[u8]) -> Result<Vec<Frame>, StoreError> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < v.len() {
        let (f, n) = Frame::decode_prefix(&v[pos..]).map_err(|e| StoreError::Corrupt {
            seq: first + frames.len() as u64,
            detail: e.to_string(),
        })?;
        frames.push(f);
        pos += n;
    }
    if frames.is_empty() {
        return Err(StoreError::Corrupt {
            seq: first,
            detail: "empty chunk".into(),
        });
    }
    Ok(frames)
}

/// The log's last chunk: its key, first seq and frames (`None` for an empty log).
fn last_chunk(tree: &sled::Tree) -> Result<Option<(sled::IVec, u64, Vec<Frame>)>, StoreError> {
    match tree
        .range(log_key(Seq(0))..=log_key(Seq(u64::MAX)))
        .next_back()
    {
        None => Ok(None),
        Some(item) => {
            let (k, v) = item?;
            let first = key_seq(&k)?;
            let frames = chunk_frames(first, &v)?;
            Ok(Some((k, first, frames)))
        }
    }
}

/// Cut a group's frames into chunks of consecutive frames, each at most `bytes_max` long
/// unless a single frame is longer (it is then a chunk of its own), and add each chunk to
/// `ins` under the log key of its first frame, encoding the frames straight into it.
fn push_chunks(frames: &[(Seq, Frame)], bytes_max: usize, ins: &mut Inserts) {
    let mut open = false;
    let mut next = Seq::ZERO;
    for (seq, frame) in frames {
        let len = frame.body.len() + 69;
        if open && (*seq != next || ins.open_len() + len > bytes_max) {
            ins.end();
            open = false;
        }
        let buf = if open {
            ins.buf_mut()
        } else {
            open = true;
            ins.begin(&log_key(*seq))
        };
        frame.encode_into(buf);
        next = Seq(seq.0 + 1);
    }
    if open {
        ins.end();
    }
}

/// Write one commit group's keys and values to sled, in order, one `insert` each.
///
/// Why not one atomic `apply_batch`: sled 0.34 seals its current I/O buffer after every batch
/// (so a batch is never split across a crash), which hands a write to its I/O thread pool and
/// makes it zero a fresh 1 MiB buffer: once per commit group that was ~15 % of the node's CPU.
/// Atomicity comes from the journal: sled receives a group only once it is whole there, and
/// a crash part-way through the inserts leaves a journal record that open re-applies whole.
/// The inserts are in log order with the group's PII first, so sled never holds a sealed
/// group without its PII.
fn apply<'a>(
    tree: &sled::Tree,
    inserts: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<(), StoreError> {
    for (k, v) in inserts {
        tree.insert(k, v)?;
    }
    Ok(())
}

/// Remove the records after the last sealed one (every group ends with a sealed record, see
/// `ChainWriter::seal`): the part of a commit group that sled kept when a crash cut its
/// inserts short before it was journaled. The store no longer writes sled ahead of the
/// journal, but a data directory written by an earlier version may end this way; such a group
/// was never acknowledged. Returns how many records were dropped.
fn drop_unsealed_tail(tree: &sled::Tree) -> Result<u64, StoreError> {
    let mut dropped = 0u64;
    while let Some((k, _, frames)) = last_chunk(tree)? {
        match frames.iter().rposition(|f| f.seal.is_some()) {
            Some(last) if last + 1 == frames.len() => break,
            Some(last) => {
                let mut kept = Vec::new();
                for f in &frames[..=last] {
                    f.encode_into(&mut kept);
                }
                tree.insert(k, kept)?;
                dropped += (frames.len() - last - 1) as u64;
                break;
            }
            None => {
                tree.remove(k)?;
                dropped += frames.len() as u64;
            }
        }
    }
    Ok(dropped)
}

fn pii_key(p: &PlayerId) -> Vec<u8> {
    let mut k = vec![PII];
    k.extend_from_slice(p.as_str().as_bytes());
    k
}

/// One commit group on its way to disk.
#[derive(Default)]
pub struct CommitGroup {
    pub frames: Vec<(Seq, Frame)>,
    pub pii: Vec<(PlayerId, Vec<u8>)>,
}

impl LogStore {
    pub fn open(dir: &Path) -> Result<LogStore, StoreError> {
        let io = |path: &Path, error| StoreError::Io {
            path: path.to_path_buf(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        // Our own flusher decides when sled flushes; sled's background flusher only adds I/O.
        // sled's page cache defaults to 1 GiB: on an append-only log it mostly holds pages
        // that are never read again, and it was most of the node's memory growth under load
        // (about 6 KB per accepted bet). Records are read back only for replication, proofs
        // and the log API, where the OS page cache serves them.
        let segment_bytes = stored_segment_bytes(dir).unwrap_or(SEGMENT_BYTES);
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(CACHE_BYTES)
            .segment_size(segment_bytes)
            .open()?;
        let tree = db.open_tree("outpost")?;
        let data_path = dir.join("db");
        let data_file = File::open(&data_path).map_err(|e| io(&data_path, e))?;
        let blobs = BlobSyncer {
            dir: dir.join("blobs"),
            synced: Mutex::new(HashSet::new()),
        };
        // Blobs left by a previous run may never have been synced.
        blobs.sync_new()?;
        let floor = match tree.get(FLOOR)? {
            Some(v) => {
                u64::from_be_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    seq: 0,
                    detail: format!("journal floor {v:?} is not 8 bytes"),
                })?)
            }
            None => 0,
        };
        let (journal, recovered) = Journal::open(dir, floor)?;
        // Re-apply what the journal holds beyond sled's last flush (applying a group again is
        // harmless: the same keys get the same values), then make it sled's own.
        for (index, payload) in recovered.payloads.iter().enumerate() {
            apply(
                &tree,
                Inserts::decode(payload).ok_or(StoreError::JournalRecord { index })?,
            )?;
        }
        let dropped = drop_unsealed_tail(&tree)?;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "removed the unsealed end of a commit group cut short by a crash (never acknowledged)"
            );
        }
        let inner = Arc::new(Inner {
            db,
            tree,
            data_file,
            blobs,
            journal,
            chunk_bytes_max: chunk_bytes_max(segment_bytes),
            flush: Mutex::new(FlushState::default()),
            flush_wake: Condvar::new(),
            to_applier: Mutex::new(None),
            spare: Mutex::new(Vec::new()),
            applied: Mutex::new(0),
            applied_cv: Condvar::new(),
        });
        inner.raise_floor(recovered.next_generation)?;
        let (tx, rx) = sync_channel(APPLY_QUEUE_MAX);
        *inner.lock_to_applier() = Some(tx);
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|e| io(dir, e))
        };
        let applier = {
            let inner = inner.clone();
            spawn("store-applier", Box::new(move || inner.run_applier(rx)))?
        };
        let flusher = {
            let inner = inner.clone();
            spawn("store-flusher", Box::new(move || inner.run_flusher()))?
        };
        Ok(LogStore {
            inner,
            flusher: Some(flusher),
            applier: Some(applier),
        })
    }

    /// Write a commit group, make it durable, and return once readers can see it too.
    pub fn commit(&self, group: &CommitGroup) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.commit_durable(
            group,
            &Arc::new(CommitTiming::default()),
            Box::new(move || {
                let _ = tx.send(());
            }),
        )?;
        // The applier aborts the process rather than drop a group, so this only fails if
        // the store is closing.
        rx.recv().map_err(|_| StoreError::Closing)
    }

    /// Make a commit group durable: returns once its journal record is on stable storage,
    /// which is when it may be acknowledged. The applier then puts it into sled and runs
    /// `on_applied`, in commit order; until then readers of the store do not see it.
    ///
    /// Why sled after the journal and off this thread: a sled insert now and then stalls for
    /// several milliseconds (it rotates its I/O buffers, splits and merges pages), and every
    /// group queued behind it waited too. Those stalls were most of the slow commit groups
    /// left once the journal replaced sled's flush.
    pub fn commit_durable(
        &self,
        group: &CommitGroup,
        timing: &Arc<CommitTiming>,
        on_applied: OnApplied,
    ) -> Result<(), StoreError> {
        let s = &self.inner;
        if let Some(e) = &s.lock_flush().failed {
            return Err(StoreError::FlushFailed(e.clone()));
        }
        let t = Instant::now();
        let to_applier = s.lock_to_applier();
        let Some(to_applier) = to_applier.as_ref() else {
            return Err(StoreError::Closing);
        };
        let mut ins = s.lock_spare().pop().unwrap_or_default();
        ins.clear();
        // PII first (see `apply`).
        for (p, pii) in &group.pii {
            ins.push(&pii_key(p), pii);
        }
        push_chunks(&group.frames, s.chunk_bytes_max, &mut ins);
        timing.add(commit_timing::ENCODE, t.elapsed());
        let journaled = s.journal.append(&mut ins, timing)?;
        // Still under `to_applier`: the applier gets groups in journal order, which the
        // flusher relies on (see `run_flusher`).
        to_applier
            .send(Journaled {
                inserts: ins,
                timing: timing.clone(),
                on_applied,
            })
            .map_err(|_| StoreError::Closing)?;
        if journaled >= FLUSH_AT_BYTES {
            s.flush_wake.notify_one();
        }
        Ok(())
    }

    /// Frames from `from` (inclusive), at most `max`.
    pub fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, StoreError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        // The chunk holding `from` is the last one starting at or before it.
        let start = match self
            .inner
            .tree
            .range(log_key(Seq(0))..=log_key(from))
            .next_back()
        {
            Some(item) => item?.0,
            None => log_key(from)[..].into(),
        };
        // The seq the next chunk must start at (chunks are contiguous).
        let mut next: Option<u64> = None;
        for item in self
            .inner
            .tree
            .range(start..=sled::IVec::from(&log_key(Seq(u64::MAX))[..]))
        {
            let (k, v) = item?;
            let first = key_seq(&k)?;
            let expected = next.unwrap_or(first.min(from.0));
            if first != expected {
                return Err(StoreError::Gap {
                    expected,
                    found: first,
                });
            }
            let frames = chunk_frames(first, &v)?;
            // The seq after this chunk's last frame: where the next chunk must start.
            let end = first + frames.len() as u64;
            let skip = from.0.saturating_sub(first) as usize;
            for f in frames.into_iter().skip(skip) {
                out.push(f);
                if out.len() == max {
                    return Ok(out);
                }
            }
            next = Some(end);
        }
        Ok(out)
    }

    /// Highest stored sequence number (0 when empty).
    pub fn last_seq(&self) -> Result<Seq, StoreError> {
        Ok(match last_chunk(&self.inner.tree)? {
            None => Seq::ZERO,
            Some((_, first, frames)) => Seq(first + frames.len() as u64 - 1),
        })
    }

    /// Every stored PII record: (player id, encrypted PII) as stored.
    pub fn pii_entries(&self) -> Result<Vec<PiiEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix([PII]) {
            let (k, v) = item?;
            out.push((k[1..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    pub fn snapshot(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.inner.tree.get(SNAPSHOT)?.map(|v| v.to_vec()))
    }

    /// Store a signed tree head (and its cosignatures) durably.
    pub fn put_checkpoint(&self, size: Seq, json: Vec<u8>) -> Result<(), StoreError> {
        let mut k = vec![CHECKPOINT];
        k.extend_from_slice(&size.0.to_be_bytes());
        self.inner.tree.insert(k, json)?;
        self.inner.sync()
    }

    /// The stored tree head of exactly `size` records, if one was signed.
    pub fn checkpoint(&self, size: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        let mut k = vec![CHECKPOINT];
        k.extend_from_slice(&size.0.to_be_bytes());
        Ok(self.inner.tree.get(k)?.map(|v| v.to_vec()))
    }

    /// The newest stored tree head.
    pub fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match self.inner.tree.scan_prefix([CHECKPOINT]).next_back() {
            None => Ok(None),
            Some(item) => Ok(Some(item?.1.to_vec())),
        }
    }

    /// Up to `limit` stored tree heads, newest first.
    pub fn checkpoints_newest_first(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.tree.scan_prefix([CHECKPOINT]).rev().take(limit) {
            out.push(item?.1.to_vec());
        }
        Ok(out)
    }

    /// Snapshots only speed up restart; losing one costs a longer replay, never data.
    pub fn put_snapshot(&self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.inner.tree.insert(SNAPSHOT, bytes)?;
        self.inner.sync()
    }
}

impl Inner {
    fn lock_flush(&self) -> std::sync::MutexGuard<'_, FlushState> {
        self.flush.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_to_applier(&self) -> std::sync::MutexGuard<'_, Option<SyncSender<Journaled>>> {
        self.to_applier.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_spare(&self) -> std::sync::MutexGuard<'_, Vec<Inserts>> {
        self.spare.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_applied(&self) -> std::sync::MutexGuard<'_, u64> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Put each journaled group into sled, in journal order, then tell its committer.
    fn run_applier(&self, groups: std::sync::mpsc::Receiver<Journaled>) {
        for g in groups {
            let t = Instant::now();
            if let Err(e) = apply(&self.tree, g.inserts.iter()) {
                // Memory (readers' heads, the flusher) would run ahead of sled; the journal
                // holds the group, and restart re-applies it.
                tracing::error!(
                    "cannot apply a journaled commit group to sled: {e}; aborting (restart re-applies it from the journal)"
                );
                std::process::abort();
            }
            g.timing.add(commit_timing::APPLY, t.elapsed());
            (g.on_applied)();
            *self.lock_applied() += 1;
            self.applied_cv.notify_all();
            let mut spare = self.lock_spare();
            if spare.len() < SPARE_MAX {
                spare.push(g.inserts);
            }
        }
    }

    /// Wait until the applier has put the first `records` journal records into sled.
    fn wait_applied(&self, records: u64) {
        let mut applied = self.lock_applied();
        while *applied < records {
            applied = self
                .applied_cv
                .wait(applied)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Flush sled (blobs first, then its log, then `fdatasync` of its data file).
    fn sync(&self) -> Result<(), StoreError> {
        // Blobs first: once the flush below is durable, the log points at them.
        self.blobs.sync_new()?;
        self.db.flush()?;
        self.data_file.sync_data().map_err(|error| StoreError::Io {
            path: "db".into(),
            error,
        })
    }

    /// Record durably in sled that every journal generation below `floor` is in sled.
    fn raise_floor(&self, floor: u64) -> Result<(), StoreError> {
        self.tree.insert(FLOOR, &floor.to_be_bytes())?;
        self.sync()
    }

    /// Switch the journal to its other file, flush sled (which then holds everything the
    /// older generation did) and raise the floor past it, freeing that file for the next
    /// switch. One at a time, on this thread only: a switch reuses the file the previous
    /// flush freed.
    fn run_flusher(&self) {
        let mut last = Instant::now();
        loop {
            {
                let mut st = self.lock_flush();
                loop {
                    if st.stop || st.failed.is_some() {
                        return;
                    }
                    let pending = self.journal.pending_bytes();
                    if pending >= FLUSH_AT_BYTES || (pending > 0 && last.elapsed() >= FLUSH_EVERY) {
                        break;
                    }
                    st = self
                        .flush_wake
                        .wait_timeout(st, FLUSH_EVERY)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            let (generation, records) = self.journal.switch();
            // sled's flush must hold every record of the older generations: wait until the
            // applier has put in all that were journaled before the switch.
            self.wait_applied(records);
            if let Err(e) = self.raise_floor(generation) {
                tracing::error!("background flush of sled failed: {e}; refusing further commits");
                self.lock_flush().failed = Some(e.to_string());
                return;
            }
            last = Instant::now();
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.inner.lock_flush().stop = true;
        self.inner.flush_wake.notify_one();
        if let Some(t) = self.flusher.take() {
            let _ = t.join();
        }
        // Closing the channel ends the applier once it has applied what was queued.
        self.inner.lock_to_applier().take();
        if let Some(t) = self.applier.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::ids::LogId;
    use outpost_core::log::{ChainHead, ChainWriter, NodeKey, RecordKind};
    use outpost_core::time::UnixMillis;

    #[test]
    fn commit_read_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed([1; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let mut group = CommitGroup::default();
        for i in 0..10 {
            let mut f = w.append(RecordKind::KycVerified, UnixMillis(i), b"{}".to_vec());
            if i == 9 {
                ChainWriter::seal(&mut f, &key);
            }
            group.frames.push((Seq(i as u64 + 1), f));
        }
        group.pii.push((
            PlayerId::new("gb-1-p1").unwrap(),
            b"{\"name\":\"A\"}".to_vec(),
        ));
        {
            let s = LogStore::open(dir.path()).unwrap();
            s.commit(&group).unwrap();
        }
        // sled's background flusher can hold the file lock for a moment after the drop (a
        // restarted process never sees this); wait for it rather than fail on WouldBlock.
        let s = (0..100)
            .find_map(|_| match LogStore::open(dir.path()) {
                Ok(s) => Some(s),
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
            })
            .expect("store reopens once the previous handle has let go");
        assert_eq!(s.last_seq().unwrap(), Seq(10));
        let frames = s.read_frames(Seq(4), 3).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], group.frames[3].1);
        assert_eq!(s.pii_entries().unwrap().len(), 1);
    }

    /// `n` chained frames from seq `from` (after `w`'s head), the last one sealed.
    fn group(w: &mut ChainWriter, key: &NodeKey, n: usize, payload_bytes: usize) -> CommitGroup {
        let mut g = CommitGroup::default();
        for i in 0..n {
            let payload = format!("{{\"pad\":\"{}\"}}", "x".repeat(payload_bytes));
            let mut f = w.append(
                RecordKind::KycVerified,
                UnixMillis(i as i64),
                payload.into(),
            );
            if i == n - 1 {
                ChainWriter::seal(&mut f, key);
            }
            g.frames.push((w.head().seq, f));
        }
        g
    }

    fn reopen(dir: &Path) -> LogStore {
        // sled's background threads can hold the file lock for a moment after a drop.
        (0..100)
            .find_map(|_| match LogStore::open(dir) {
                Ok(s) => Some(s),
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    None
                }
            })
            .expect("store reopens once the previous handle has let go")
    }

    #[test]
    fn a_group_larger_than_a_chunk_is_stored_as_several_and_reads_back_from_any_seq() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed([2; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let small = group(&mut w, &key, 3, 10);
        let big = group(&mut w, &key, 200, 2000);
        let mut all: Vec<Frame> = Vec::new();
        {
            let s = LogStore::open(dir.path()).unwrap();
            let mut ins = Inserts::default();
            push_chunks(&big.frames, s.inner.chunk_bytes_max, &mut ins);
            let chunks = ins.iter().count();
            for (_, c) in ins.iter() {
                assert!(c.len() <= s.inner.chunk_bytes_max);
            }
            assert!(chunks >= 3, "the big group spans several chunks ({chunks})");
            s.commit(&small).unwrap();
            s.commit(&big).unwrap();
            all.extend(
                small
                    .frames
                    .iter()
                    .chain(&big.frames)
                    .map(|(_, f)| f.clone()),
            );
        }
        let s = reopen(dir.path());
        assert_eq!(s.last_seq().unwrap(), Seq(203));
        assert_eq!(s.read_frames(Seq(1), 10_000).unwrap(), all);
        for from in [1u64, 2, 3, 4, 5, 57, 100, 150, 202, 203] {
            for max in [1usize, 2, 60, 500] {
                let got = s.read_frames(Seq(from), max).unwrap();
                let want: Vec<Frame> = all
                    .iter()
                    .skip(from as usize - 1)
                    .take(max)
                    .cloned()
                    .collect();
                assert_eq!(got, want, "from {from} max {max}");
            }
        }
        assert!(s.read_frames(Seq(204), 10).unwrap().is_empty());
        // The whole log verifies and every group ends sealed.
        let mut v = outpost_core::log::ChainVerifier::new(
            LogId::new("gb-1").unwrap(),
            key.public(),
            ChainHead::EMPTY,
        );
        let mut verified = 0;
        for f in s.read_frames(Seq(1), 10_000).unwrap() {
            verified += v.push(f).unwrap().len();
        }
        assert_eq!(verified, 203);
    }

    /// Groups handed over with `commit_durable` reach sled in commit order, each followed by
    /// its `on_applied`; the flusher switches journal files many times meanwhile and never
    /// raises the floor past a group the applier has not put into sled (else the reopen
    /// below would miss it: nothing here waits for the applier before the drop).
    #[test]
    fn durable_groups_are_applied_in_order_and_survive_journal_switches() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed([3; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let groups: Vec<CommitGroup> = (0..120).map(|_| group(&mut w, &key, 4, 3000)).collect();
        let applied = Arc::new(Mutex::new(Vec::new()));
        {
            let s = LogStore::open(dir.path()).unwrap();
            let timing = Arc::new(CommitTiming::default());
            for (i, g) in groups.iter().enumerate() {
                let (applied, store) = (applied.clone(), s.inner.clone());
                let last = g.frames.last().unwrap().0;
                s.commit_durable(
                    g,
                    &timing,
                    Box::new(move || {
                        // Readable from sled by the time it is reported applied.
                        let (_, first, frames) = last_chunk(&store.tree).unwrap().unwrap();
                        assert_eq!(first + frames.len() as u64 - 1, last.0);
                        applied.lock().unwrap().push(i);
                    }),
                )
                .unwrap();
            }
            // 120 groups of ~12 KiB cross the test's 256 KiB switch point five times.
            assert!(s.inner.journal.pending_bytes() < FLUSH_AT_BYTES * 2);
        }
        let applied = applied.lock().unwrap().clone();
        assert_eq!(
            applied,
            (0..120).collect::<Vec<_>>(),
            "every group applied once, in commit order"
        );
        let s = reopen(dir.path());
        let want: Vec<Frame> = groups
            .iter()
            .flat_map(|g| g.frames.iter().map(|(_, f)| f.clone()))
            .collect();
        assert_eq!(s.last_seq().unwrap(), Seq(480));
        assert_eq!(s.read_frames(Seq(1), 10_000).unwrap(), want);
    }

    #[test]
    fn a_log_of_one_frame_per_key_written_before_chunks_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed([3; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let old = group(&mut w, &key, 5, 100);
        let new = group(&mut w, &key, 7, 100);
        let s = LogStore::open(dir.path()).unwrap();
        // The layout before chunks: each frame under its own key (a chunk of one).
        for (seq, f) in &old.frames {
            s.inner.tree.insert(&log_key(*seq)[..], f.encode()).unwrap();
        }
        s.commit(&new).unwrap();
        assert_eq!(s.last_seq().unwrap(), Seq(12));
        let want: Vec<Frame> = old
            .frames
            .iter()
            .chain(&new.frames)
            .map(|(_, f)| f.clone())
            .collect();
        assert_eq!(s.read_frames(Seq(1), 100).unwrap(), want);
        assert_eq!(s.read_frames(Seq(4), 3).unwrap(), want[3..6].to_vec());
    }

    #[test]
    fn the_unsealed_end_of_a_group_cut_short_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed([6; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let whole = group(&mut w, &key, 4, 100);
        // What sled may hold after a crash mid-group: the group's first chunks only, so its
        // sealed last record is missing. Here: one chunk with the whole group and then two
        // unsealed records, then a chunk of unsealed records only.
        let mut torn = group(&mut w, &key, 5, 100);
        torn.frames.last_mut().unwrap().1.seal = None;
        {
            let s = LogStore::open(dir.path()).unwrap();
            s.commit(&whole).unwrap();
            let tree = &s.inner.tree;
            let mut mixed = Vec::new();
            for (_, f) in whole.frames.iter().chain(&torn.frames[..2]) {
                f.encode_into(&mut mixed);
            }
            tree.insert(&log_key(Seq(1))[..], mixed).unwrap();
            let mut rest = Vec::new();
            for (_, f) in &torn.frames[2..] {
                f.encode_into(&mut rest);
            }
            tree.insert(&log_key(torn.frames[2].0)[..], rest).unwrap();
            assert_eq!(s.last_seq().unwrap(), Seq(9));
        }
        let s = reopen(dir.path());
        assert_eq!(s.last_seq().unwrap(), Seq(4));
        let want: Vec<Frame> = whole.frames.iter().map(|(_, f)| f.clone()).collect();
        assert_eq!(s.read_frames(Seq(1), 100).unwrap(), want);
        // A sealed tail is left alone.
        drop(s);
        assert_eq!(reopen(dir.path()).last_seq().unwrap(), Seq(4));
    }

    #[test]
    fn a_store_created_with_another_segment_size_opens_with_it() {
        let dir = tempfile::tempdir().unwrap();
        // A data directory from before this change: sled's default 512 KiB segment.
        drop(sled::Config::new().path(dir.path()).open().unwrap());
        assert_eq!(stored_segment_bytes(dir.path()), Some(512 * 1024));
        let s = reopen(dir.path());
        assert_eq!(s.inner.chunk_bytes_max, chunk_bytes_max(512 * 1024));
        let new = tempfile::tempdir().unwrap();
        assert_eq!(stored_segment_bytes(new.path()), None);
        drop(LogStore::open(new.path()).unwrap());
        assert_eq!(stored_segment_bytes(new.path()), Some(SEGMENT_BYTES));
    }

    #[test]
    fn a_missing_chunk_is_reported_as_a_gap_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_seed([4; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let s = LogStore::open(dir.path()).unwrap();
        let big = group(&mut w, &key, 200, 2000);
        s.commit(&big).unwrap();
        // Remove a chunk from the middle (a torn store, which the store never leaves).
        let keys: Vec<_> = s
            .inner
            .tree
            .scan_prefix([LOG])
            .keys()
            .map(|k| k.unwrap())
            .collect();
        assert!(keys.len() >= 3);
        s.inner.tree.remove(&keys[1]).unwrap();
        let found = key_seq(&keys[2]).unwrap();
        match s.read_frames(Seq(1), 1000) {
            Err(StoreError::Gap { found: f, .. }) => assert_eq!(f, found),
            other => panic!("expected a gap, got {other:?}"),
        }
    }

    /// Child of `kill_9_mid_commit_leaves_whole_groups_only`: commits groups (some spanning
    /// several chunks) until killed, printing each acknowledged head. A group counts as
    /// acknowledged once `commit_durable` returns, as in the node (the applier may still be
    /// putting it, and the ones before it, into sled when the kill comes).
    #[test]
    #[ignore]
    fn crash_child_commits_until_killed() {
        let Ok(dir) = std::env::var("OUTPOST_STORE_CRASH_DIR") else {
            return;
        };
        let key = NodeKey::from_seed([5; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let s = LogStore::open(Path::new(&dir)).unwrap();
        let timing = Arc::new(CommitTiming::default());
        for i in 0.. {
            let g = group(&mut w, &key, 1 + (i * 37) % 150, 1500);
            s.commit_durable(&g, &timing, Box::new(|| ())).unwrap();
            println!("acked {}", w.head().seq.0);
        }
    }

    #[test]
    fn kill_9_mid_commit_leaves_whole_groups_only() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::tests::crash_child_commits_until_killed"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env("OUTPOST_STORE_CRASH_DIR", dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut acked = 0u64;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        while acked < 3000 {
            let line = lines.next().expect("child runs").unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                acked = n.parse().unwrap();
            }
        }
        child.kill().unwrap(); // SIGKILL, mid-commit or between commits
        child.wait().unwrap();
        // Both journal files were used: the child's flusher switched generations while
        // committing, so recovery also crosses a reused file.
        for f in ["journal-0", "journal-1"] {
            let len = std::fs::metadata(dir.path().join(f)).unwrap().len();
            assert!(len > 0, "{f} never written");
        }
        let s = reopen(dir.path());
        let last = s.last_seq().unwrap().0;
        assert!(last >= acked, "acknowledged {acked}, only {last} survived");
        let frames = s.read_frames(Seq(1), usize::MAX).unwrap();
        assert_eq!(frames.len() as u64, last);
        // Every record verifies and the last one is a group's seal: no half group.
        let mut v = outpost_core::log::ChainVerifier::new(
            LogId::new("gb-1").unwrap(),
            NodeKey::from_seed([5; 32]).public(),
            ChainHead::EMPTY,
        );
        let mut verified = 0u64;
        for f in frames {
            verified += v.push(f).unwrap().len() as u64;
        }
        assert_eq!(verified, last, "the log ends inside a group");
    }

    #[test]
    fn large_values_go_to_blob_files_which_are_synced_before_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        // A snapshot over sled's blob threshold (a quarter of a segment) lands in its own file.
        s.put_snapshot(vec![7u8; 3 * SEGMENT_BYTES / 4]).unwrap();
        let blob_files = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blob_files >= 1, "sled wrote no blob file");
        // Every blob present was synced by the put (nothing new is left to sync).
        assert_eq!(s.inner.blobs.synced.lock().unwrap().len(), blob_files);
        assert_eq!(s.inner.blobs.sync_new().unwrap(), 0);
        assert_eq!(s.snapshot().unwrap().unwrap().len(), 3 * SEGMENT_BYTES / 4);
    }
}
