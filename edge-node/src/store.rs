//! Durable storage of the node's log on sled: the only state that must survive a crash.
//!
//! One sled tree holds, under distinct key prefixes, the log frames (`L` + seq, big-endian so
//! iteration is in log order), the PII vault (`P` + player id) and the latest state snapshot
//! (`S`). Because they share a tree, a commit group's frames and the PII they reference are
//! written by one `apply_batch`: atomically.
//!
//! Durability: sled 0.34's `flush` writes with `pwrite` then `sync_file_range`, which neither
//! persists the file's size metadata nor flushes the device cache. After every flush we also
//! `fdatasync` sled's data file; only then is a commit group acknowledged. sled also writes
//! any value over 128 KiB (a state snapshot, a large record) to its own file under `blobs/`
//! and never syncs it, while the log entry pointing at it is made durable by that flush: so
//! each new blob file, and the directory, is synced first (`BlobSyncer`).

use outpost_core::ids::{PlayerId, Seq};
use outpost_core::log::Frame;
use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const LOG: u8 = b'L';
const PII: u8 = b'P';
const SNAPSHOT: &[u8] = b"S";
/// sled's page cache (see `open`).
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
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

fn log_key(seq: Seq) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = LOG;
    k[1..].copy_from_slice(&seq.0.to_be_bytes());
    k
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
        let db = sled::Config::new()
            .path(dir)
            .flush_every_ms(None)
            .cache_capacity(CACHE_BYTES)
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
        })
    }

    /// Write a commit group and make it durable. Returns only once it is on stable storage.
    pub fn commit(&self, group: &CommitGroup) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (seq, frame) in &group.frames {
            batch.insert(&log_key(*seq)[..], frame.encode());
        }
        for (p, pii) in &group.pii {
            batch.insert(pii_key(p), pii.as_slice());
        }
        self.tree.apply_batch(batch)?;
        self.sync()
    }

    fn sync(&self) -> Result<(), StoreError> {
        // Blobs first: once the flush below is durable, the log points at them.
        self.blobs.sync_new()?;
        self.db.flush()?;
        self.data_file.sync_data().map_err(|error| StoreError::Io {
            path: "db".into(),
            error,
        })
    }

    /// Frames from `from` (inclusive), at most `max`.
    pub fn read_frames(&self, from: Seq, max: usize) -> Result<Vec<Frame>, StoreError> {
        let mut out = Vec::new();
        let mut expected = from.0;
        for item in self
            .tree
            .range(log_key(from)..=log_key(Seq(u64::MAX)))
            .take(max)
        {
            let (k, v) = item?;
            let seq = u64::from_be_bytes(k[1..9].try_into().map_err(|_| StoreError::Corrupt {
                seq: expected,
                detail: "bad key".into(),
            })?);
            if seq != expected {
                return Err(StoreError::Gap {
                    expected,
                    found: seq,
                });
            }
            let f = Frame::decode_exact(&v).map_err(|e| StoreError::Corrupt {
                seq,
                detail: e.to_string(),
            })?;
            out.push(f);
            expected += 1;
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
                let (k, _) = item?;
                Ok(Seq(u64::from_be_bytes(k[1..9].try_into().map_err(
                    |_| StoreError::Corrupt {
                        seq: 0,
                        detail: "bad key".into(),
                    },
                )?)))
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

    #[test]
    fn large_values_go_to_blob_files_which_are_synced_before_the_flush() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        // A snapshot over sled's 128 KiB blob threshold lands in its own file.
        s.put_snapshot(vec![7u8; 300 * 1024]).unwrap();
        let blob_files = std::fs::read_dir(dir.path().join("blobs")).unwrap().count();
        assert!(blob_files >= 1, "sled wrote no blob file");
        // Every blob present was synced by the put (nothing new is left to sync).
        assert_eq!(s.blobs.synced.lock().unwrap().len(), blob_files);
        assert_eq!(s.blobs.sync_new().unwrap(), 0);
        assert_eq!(s.snapshot().unwrap().unwrap().len(), 300 * 1024);
    }
}
