//! Durable storage of the node's log on sled: the only state that must survive a crash.
//!
//! One sled tree holds, under distinct key prefixes, the log (`L` + seq, big-endian so
//! iteration is in log order), the PII vault (`P` + player id), signed tree heads (`C` + size)
//! and the latest state snapshot (`S`). Because they share a tree, a commit group's frames and
//! the PII they reference are written by one `apply_batch`: atomically.
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
//! Durability: sled 0.34's `flush` writes with `pwrite` then `sync_file_range`, which neither
//! persists the file's size metadata nor flushes the device cache. After every flush we also
//! `fdatasync` sled's data file; only then is a commit group acknowledged. sled also writes
//! any page over its blob threshold (a state snapshot, a large record) to its own file under
//! `blobs/` and never syncs it, while the log entry pointing at it is made durable by that
//! flush: so each new blob file, and the directory, is synced first (`BlobSyncer`).

use outpost_core::ids::{PlayerId, Seq};
use outpost_core::log::Frame;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::commit_timing::{self, CommitTiming};

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
}

pub struct LogStore {
    db: sled::Db,
    tree: sled::Tree,
    data_file: File,
    blobs: BlobSyncer,
    /// Largest log chunk written (see the module header).
    chunk_bytes_max: usize,
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

/// Cut a group's frames into chunks of consecutive frames, each at most `bytes_max` long
/// unless a single frame is longer (it is then a chunk of its own), and hand each chunk with
/// the seq of its first frame to `put`.
fn for_each_chunk(frames: &[(Seq, Frame)], bytes_max: usize, mut put: impl FnMut(Seq, Vec<u8>)) {
    let mut chunk: Vec<u8> = Vec::new();
    let mut first = Seq::ZERO;
    let mut next = Seq::ZERO;
    for (seq, frame) in frames {
        let len = frame.body.len() + 69;
        if !chunk.is_empty() && (*seq != next || chunk.len() + len > bytes_max) {
            put(first, std::mem::take(&mut chunk));
        }
        if chunk.is_empty() {
            first = *seq;
            chunk.reserve(bytes_max.max(len));
        }
        frame.encode_into(&mut chunk);
        next = Seq(seq.0 + 1);
    }
    if !chunk.is_empty() {
        put(first, chunk);
    }
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
        // Our own flush cadence decides durability; sled's background flusher only adds I/O.
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
        Ok(LogStore {
            db,
            tree,
            data_file,
            blobs,
            chunk_bytes_max: chunk_bytes_max(segment_bytes),
        })
    }

    /// Write a commit group and make it durable. Returns only once it is on stable storage.
    pub fn commit(&self, group: &CommitGroup) -> Result<(), StoreError> {
        self.commit_timed(group, &CommitTiming::default())
    }

    /// [`Self::commit`], adding each step's time to `timing`.
    pub fn commit_timed(
        &self,
        group: &CommitGroup,
        timing: &CommitTiming,
    ) -> Result<(), StoreError> {
        let t = Instant::now();
        let mut batch = sled::Batch::default();
        for_each_chunk(&group.frames, self.chunk_bytes_max, |first, chunk| {
            batch.insert(&log_key(first)[..], chunk)
        });
        for (p, pii) in &group.pii {
            batch.insert(pii_key(p), pii.as_slice());
        }
        self.tree.apply_batch(batch)?;
        timing.add(commit_timing::BATCH, t.elapsed());
        self.sync_timed(timing)
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.sync_timed(&CommitTiming::default())
    }

    fn sync_timed(&self, timing: &CommitTiming) -> Result<(), StoreError> {
        let t = Instant::now();
        // Blobs first: once the flush below is durable, the log points at them.
        self.blobs.sync_new()?;
        let t = timing.lap(commit_timing::BLOBS, t);
        self.db.flush()?;
        let t = timing.lap(commit_timing::FLUSH, t);
        self.data_file.sync_data().map_err(|error| StoreError::Io {
            path: "db".into(),
            error,
        })?;
        timing.lap(commit_timing::FSYNC, t);
        Ok(())
    }

    /// Frames from `from` (inclusive), at most `max`.
    pub fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, StoreError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        // The chunk holding `from` is the last one starting at or before it.
        let start = match self.tree.range(log_key(Seq(0))..=log_key(from)).next_back() {
            Some(item) => item?.0,
            None => log_key(from)[..].into(),
        };
        // The seq the next chunk must start at (chunks are contiguous).
        let mut next: Option<u64> = None;
        for item in self
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
            let mut seq = first;
            let mut pos = 0;
            while pos < v.len() {
                let (f, n) = Frame::decode_prefix(&v[pos..]).map_err(|e| StoreError::Corrupt {
                    seq,
                    detail: e.to_string(),
                })?;
                pos += n;
                if seq >= from.0 {
                    out.push(f);
                    if out.len() == max {
                        return Ok(out);
                    }
                }
                seq += 1;
            }
            if seq == first {
                return Err(StoreError::Corrupt {
                    seq,
                    detail: "empty chunk".into(),
                });
            }
            next = Some(seq);
        }
        Ok(out)
    }

    /// Highest stored sequence number (0 when empty).
    pub fn last_seq(&self) -> Result<Seq, StoreError> {
        let last = self
            .tree
            .range(log_key(Seq(0))..=log_key(Seq(u64::MAX)))
            .next_back();
        match last {
            None => Ok(Seq::ZERO),
            Some(item) => {
                let (k, v) = item?;
                let first = key_seq(&k)?;
                let mut count = 0u64;
                let mut pos = 0;
                while pos < v.len() {
                    pos += Frame::decode_prefix(&v[pos..])
                        .map_err(|e| StoreError::Corrupt {
                            seq: first + count,
                            detail: e.to_string(),
                        })?
                        .1;
                    count += 1;
                }
                match count {
                    0 => Err(StoreError::Corrupt {
                        seq: first,
                        detail: "empty chunk".into(),
                    }),
                    n => Ok(Seq(first + n - 1)),
                }
            }
        }
    }

    pub fn pii_entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([PII]) {
            let (k, v) = item?;
            out.push((k[1..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    pub fn snapshot(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(SNAPSHOT)?.map(|v| v.to_vec()))
    }

    /// Store a signed tree head (and its cosignatures) durably.
    pub fn put_checkpoint(&self, size: Seq, json: Vec<u8>) -> Result<(), StoreError> {
        let mut k = vec![CHECKPOINT];
        k.extend_from_slice(&size.0.to_be_bytes());
        self.tree.insert(k, json)?;
        self.sync()
    }

    /// The stored tree head of exactly `size` records, if one was signed.
    pub fn checkpoint(&self, size: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        let mut k = vec![CHECKPOINT];
        k.extend_from_slice(&size.0.to_be_bytes());
        Ok(self.tree.get(k)?.map(|v| v.to_vec()))
    }

    /// The newest stored tree head.
    pub fn latest_checkpoint(&self) -> Result<Option<Vec<u8>>, StoreError> {
        match self.tree.scan_prefix([CHECKPOINT]).next_back() {
            None => Ok(None),
            Some(item) => Ok(Some(item?.1.to_vec())),
        }
    }

    /// Up to `limit` stored tree heads, newest first.
    pub fn checkpoints_newest_first(&self, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([CHECKPOINT]).rev().take(limit) {
            out.push(item?.1.to_vec());
        }
        Ok(out)
    }

    /// Snapshots only speed up restart; losing one costs a longer replay, never data.
    pub fn put_snapshot(&self, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.tree.insert(SNAPSHOT, bytes)?;
        self.sync()
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
            let mut chunks = 0;
            for_each_chunk(&big.frames, s.chunk_bytes_max, |_, c| {
                assert!(c.len() <= s.chunk_bytes_max);
                chunks += 1;
            });
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
            s.tree.insert(&log_key(*seq)[..], f.encode()).unwrap();
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
    fn a_store_created_with_another_segment_size_opens_with_it() {
        let dir = tempfile::tempdir().unwrap();
        // A data directory from before this change: sled's default 512 KiB segment.
        drop(sled::Config::new().path(dir.path()).open().unwrap());
        assert_eq!(stored_segment_bytes(dir.path()), Some(512 * 1024));
        let s = reopen(dir.path());
        assert_eq!(s.chunk_bytes_max, chunk_bytes_max(512 * 1024));
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
        // Remove a chunk from the middle (a torn store, which apply_batch never leaves).
        let keys: Vec<_> = s
            .tree
            .scan_prefix([LOG])
            .keys()
            .map(|k| k.unwrap())
            .collect();
        assert!(keys.len() >= 3);
        s.tree.remove(&keys[1]).unwrap();
        let found = key_seq(&keys[2]).unwrap();
        match s.read_frames(Seq(1), 1000) {
            Err(StoreError::Gap { found: f, .. }) => assert_eq!(f, found),
            other => panic!("expected a gap, got {other:?}"),
        }
    }

    /// Child of `kill_9_mid_commit_leaves_whole_groups_only`: commits groups (some spanning
    /// several chunks) until killed, printing each acknowledged head.
    #[test]
    #[ignore]
    fn crash_child_commits_until_killed() {
        let Ok(dir) = std::env::var("OUTPOST_STORE_CRASH_DIR") else {
            return;
        };
        let key = NodeKey::from_seed([5; 32]);
        let mut w = ChainWriter::new(LogId::new("gb-1").unwrap(), ChainHead::EMPTY);
        let s = LogStore::open(Path::new(&dir)).unwrap();
        for i in 0.. {
            let g = group(&mut w, &key, 1 + (i * 37) % 150, 1500);
            s.commit(&g).unwrap();
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
        assert_eq!(s.blobs.synced.lock().unwrap().len(), blob_files);
        assert_eq!(s.blobs.sync_new().unwrap(), 0);
        assert_eq!(s.snapshot().unwrap().unwrap().len(), 3 * SEGMENT_BYTES / 4);
    }
}
