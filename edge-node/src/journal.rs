//! The store's redo journal: what makes a commit group durable.
//!
//! Why: sled 0.34 makes writes durable only with `flush`, which wakes every one of its I/O
//! threads. Under load at 2,000 bets/s a flush took 0.6–1.7 ms on average and up to 35 ms,
//! for groups of 2–4 bets, and cost the node ~300 µs of CPU per bet. Instead a group's keys
//! and values are appended here with one `pwrite` and one `fdatasync` (~0.25 ms here), and
//! then applied to sled without a flush (by `LogStore`'s applier thread). sled is flushed in the background every few
//! MiB or every second (`LogStore`'s flusher); after that flush those journal records are
//! redundant and their file can be reused.
//!
//! Layout: two files, `journal-0` and `journal-1`, used in turn. A file holds records of one
//! generation, from offset 0; each switch starts the next generation in the other file. A
//! record is a 20-byte header — magic `OJR1`, generation (u64 LE), payload length (u32 LE),
//! CRC-32 (IEEE) of generation, length and payload (u32 LE) — and the payload. sled itself
//! stores the *floor*: every record of a generation below it is already in sled.
//!
//! Recovery reads each file from offset 0 while records are whole and carry the first
//! record's generation, and keeps them if that generation is at or above the floor. A torn
//! tail (a write cut short by a crash, so never acknowledged) ends its file; records left
//! behind by an earlier use of a file (an older generation) are never replayed. After their
//! first use the files are overwritten in place, so an `fdatasync` seldom has a file size to
//! persist as well.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use crate::commit_timing::{self, CommitTiming};

const MAGIC: &[u8; 4] = b"OJR1";
const HEADER_BYTES: usize = 20;

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {error}")]
pub struct JournalError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

pub struct Journal {
    files: [File; 2],
    paths: [PathBuf; 2],
    active: Mutex<Active>,
}

struct Active {
    /// Index into `files` of the file being appended to.
    which: usize,
    generation: u64,
    /// Bytes written to the active file in this generation.
    offset: u64,
    /// Records appended since the journal was opened (all generations).
    records: u64,
}

/// What recovery found: the payloads to re-apply, oldest first, and the generation the
/// journal must start at (above every generation found).
pub struct Recovered {
    pub payloads: Vec<Vec<u8>>,
    pub next_generation: u64,
}

fn crc(generation: u64, len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// The whole records of one generation at the start of `bytes`, with that generation.
fn read_records(bytes: &[u8]) -> (Option<u64>, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    let mut first_generation = None;
    let mut pos = 0usize;
    while let Some(header) = bytes.get(pos..pos + HEADER_BYTES) {
        if &header[..4] != MAGIC {
            break;
        }
        let generation = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
        let sum = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes"));
        if first_generation.is_some_and(|g| g != generation) {
            break;
        }
        let start = pos + HEADER_BYTES;
        let Some(payload) = bytes.get(start..start + len as usize) else {
            break;
        };
        if crc(generation, len, payload) != sum {
            break;
        }
        first_generation = Some(generation);
        out.push(payload.to_vec());
        pos = start + len as usize;
    }
    (first_generation, out)
}

impl Journal {
    /// Open (creating) the two files in `dir` and read back every record at or above
    /// `floor`. The journal appends nothing until [`Journal::start`].
    pub fn open(dir: &Path, floor: u64) -> Result<(Journal, Recovered), JournalError> {
        let paths = [dir.join("journal-0"), dir.join("journal-1")];
        let mut created = false;
        let mut found: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        let mut open = |path: &Path| -> Result<File, JournalError> {
            let err = |error| JournalError {
                path: path.to_path_buf(),
                error,
            };
            created |= !path.exists();
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(err)?;
            let bytes = std::fs::read(path).map_err(err)?;
            if let (Some(generation), records) = read_records(&bytes)
                && generation >= floor
            {
                found.push((generation, records));
            }
            Ok(file)
        };
        let files = [open(&paths[0])?, open(&paths[1])?];
        if created {
            // A new file's name must survive a crash before anything in it counts as durable.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|error| JournalError {
                    path: dir.to_path_buf(),
                    error,
                })?;
        }
        found.sort_by_key(|(g, _)| *g);
        let next_generation = found.last().map_or(floor, |(g, _)| g + 1).max(floor);
        let payloads = found.into_iter().flat_map(|(_, r)| r).collect();
        let journal = Journal {
            files,
            paths,
            active: Mutex::new(Active {
                which: 0,
                generation: next_generation,
                offset: 0,
                records: 0,
            }),
        };
        Ok((
            journal,
            Recovered {
                payloads,
                next_generation,
            },
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append `record` (its inserts, built after [`HEADER_BYTES`] of header space, which this
    /// fills in) and make it durable; returns the bytes written in this generation.
    pub fn append(&self, record: &mut Inserts, timing: &CommitTiming) -> Result<u64, JournalError> {
        let t = Instant::now();
        let mut a = self.lock();
        let err = |error| JournalError {
            path: self.paths[a.which].clone(),
            error,
        };
        let buf = &mut record.buf;
        let len = u32::try_from(buf.len() - HEADER_BYTES)
            .map_err(|_| err(std::io::Error::other("a journal record over 4 GiB")))?;
        let sum = crc(a.generation, len, &buf[HEADER_BYTES..]);
        buf[..4].copy_from_slice(MAGIC);
        buf[4..12].copy_from_slice(&a.generation.to_le_bytes());
        buf[12..16].copy_from_slice(&len.to_le_bytes());
        buf[16..20].copy_from_slice(&sum.to_le_bytes());
        let file = &self.files[a.which];
        file.write_all_at(buf, a.offset).map_err(err)?;
        let t = timing.lap(commit_timing::WRITE, t);
        file.sync_data().map_err(err)?;
        timing.lap(commit_timing::FSYNC, t);
        a.offset += buf.len() as u64;
        a.records += 1;
        Ok(a.offset)
    }

    /// Start the next generation in the other file; returns it and how many records were
    /// appended (since open) before it: exactly those are in older generations. The caller
    /// must have made every generation before the current one redundant (raised the floor
    /// past it) first: that is the file reused.
    pub fn switch(&self) -> (u64, u64) {
        let mut a = self.lock();
        a.which ^= 1;
        a.generation += 1;
        a.offset = 0;
        (a.generation, a.records)
    }

    /// Bytes appended in the current generation.
    pub fn pending_bytes(&self) -> u64 {
        self.lock().offset
    }
}

/// One journal record under construction: header space, then the inserts of one commit
/// group, each `[u32 LE key length][key][u32 LE value length][value]`. Values are written in
/// place (a log chunk's frames are encoded straight into it) and sled reads them from here:
/// the group's bytes are copied once into this buffer, not once per step. Reused across
/// commits so a busy node does not fault in fresh pages for every group.
pub struct Inserts {
    buf: Vec<u8>,
    /// (key, value) byte ranges in `buf`.
    entries: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    /// Start of the value being written (after its length placeholder).
    open: Option<usize>,
}

impl Default for Inserts {
    fn default() -> Self {
        Inserts {
            buf: vec![0; HEADER_BYTES],
            entries: Vec::new(),
            open: None,
        }
    }
}

impl Inserts {
    /// Empty it, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.truncate(HEADER_BYTES);
        self.entries.clear();
        self.open = None;
    }

    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.begin(key).extend_from_slice(value);
        self.end();
    }

    /// Start an insert of `key`; write its value into the returned buffer, then call `end`.
    pub fn begin(&mut self, key: &[u8]) -> &mut Vec<u8> {
        assert!(self.open.is_none(), "an insert is already open");
        self.buf
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        let k = self.buf.len();
        self.buf.extend_from_slice(key);
        self.entries.push((k..self.buf.len(), 0..0));
        self.buf.extend_from_slice(&[0; 4]);
        self.open = Some(self.buf.len());
        &mut self.buf
    }

    /// The open insert's value buffer (to write more of it).
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        assert!(self.open.is_some(), "no insert is open");
        &mut self.buf
    }

    /// Bytes written so far to the open insert's value.
    pub fn open_len(&self) -> usize {
        self.open.map_or(0, |v| self.buf.len() - v)
    }

    pub fn end(&mut self) {
        let v = self.open.take().expect("an insert is open");
        let len = (self.buf.len() - v) as u32;
        self.buf[v - 4..v].copy_from_slice(&len.to_le_bytes());
        self.entries.last_mut().expect("begun").1 = v..self.buf.len();
    }

    /// The inserts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(k, v)| (&self.buf[k.clone()], &self.buf[v.clone()]))
    }

    /// The inserts in a recovered payload, or `None` if it does not parse (its CRC matched,
    /// so this would be a bug, not a torn write).
    pub fn decode(payload: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        let mut part = || {
            let len = u32::from_le_bytes(payload.get(pos..pos + 4)?.try_into().ok()?) as usize;
            let bytes = payload.get(pos + 4..pos + 4 + len)?;
            pos += 4 + len;
            Some(bytes)
        };
        while let Some(key) = part() {
            out.push((key, part()?));
        }
        (pos == payload.len()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> CommitTiming {
        CommitTiming::default()
    }

    /// A record whose payload is `bytes` (tests look at payloads, not inserts).
    fn rec(bytes: &[u8]) -> Inserts {
        let mut r = Inserts::default();
        r.buf.extend_from_slice(bytes);
        r
    }

    #[test]
    fn records_come_back_in_order_across_a_switch() {
        let dir = tempfile::tempdir().unwrap();
        let (j, r) = Journal::open(dir.path(), 0).unwrap();
        assert!(r.payloads.is_empty());
        assert_eq!(r.next_generation, 0);
        j.append(&mut rec(b"a"), &none()).unwrap();
        j.append(&mut rec(b"b"), &none()).unwrap();
        assert_eq!(j.switch(), (1, 2));
        j.append(&mut rec(b"c"), &none()).unwrap();
        drop(j);
        let (_, r) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(
            r.payloads,
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(r.next_generation, 2);
        // Generations below the floor are already in sled and are not replayed.
        let (_, r) = Journal::open(dir.path(), 1).unwrap();
        assert_eq!(r.payloads, vec![b"c".to_vec()]);
        let (_, r) = Journal::open(dir.path(), 5).unwrap();
        assert!(r.payloads.is_empty());
        assert_eq!(r.next_generation, 5);
    }

    #[test]
    fn a_torn_or_corrupt_record_ends_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), 0).unwrap();
        j.append(&mut rec(b"first"), &none()).unwrap();
        let end = j.append(&mut rec(b"second record"), &none()).unwrap();
        drop(j);
        let path = dir.path().join("journal-0");
        // Torn: the last record cut anywhere inside it.
        for cut in [1, 5, 13, HEADER_BYTES as u64, 33] {
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(end - cut).unwrap();
            let (_, r) = Journal::open(dir.path(), 0).unwrap();
            assert_eq!(r.payloads, vec![b"first".to_vec()], "cut {cut}");
        }
        // Corrupt: one flipped payload bit in the first record ends the file there.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_BYTES] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let (_, r) = Journal::open(dir.path(), 0).unwrap();
        assert!(r.payloads.is_empty());
    }

    #[test]
    fn records_of_an_earlier_use_of_a_file_are_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), 0).unwrap();
        for p in [&b"old-1"[..], b"old-2", b"old-3"] {
            j.append(&mut rec(p), &none()).unwrap();
        }
        assert_eq!(j.switch(), (1, 3)); // generation 1 in journal-1
        j.append(&mut rec(b"one"), &none()).unwrap();
        // Generation 2 reuses journal-0, over generation 0's records.
        assert_eq!(j.switch(), (2, 4));
        j.append(&mut rec(b"new"), &none()).unwrap();
        drop(j);
        // The floor says generations 0 and 1 are in sled: only "new" is replayed, not the
        // old records after it in the same file.
        let (_, r) = Journal::open(dir.path(), 2).unwrap();
        assert_eq!(r.payloads, vec![b"new".to_vec()]);
        assert_eq!(r.next_generation, 3);
        // Even with a lower floor, a file's records stop where the generation changes.
        let (_, r) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(r.payloads, vec![b"one".to_vec(), b"new".to_vec()]);
    }

    #[test]
    fn inserts_round_trip_and_garbage_is_refused() {
        let mut ins = Inserts::default();
        ins.push(b"L\0\0\0\0\0\0\0\x01", b"frames");
        ins.begin(b"Pgb-1-p1").extend_from_slice(b"in ");
        assert_eq!(ins.open_len(), 3);
        ins.buf_mut().extend_from_slice(b"place");
        ins.end();
        let want = vec![
            (&b"L\0\0\0\0\0\0\0\x01"[..], &b"frames"[..]),
            (b"Pgb-1-p1", b"in place"),
        ];
        assert_eq!(ins.iter().collect::<Vec<_>>(), want);
        let payload = &ins.buf[HEADER_BYTES..];
        assert_eq!(Inserts::decode(payload).unwrap(), want);
        assert_eq!(Inserts::decode(&[]).unwrap(), vec![]);
        assert!(Inserts::decode(&payload[..payload.len() - 1]).is_none());
        ins.clear();
        assert_eq!(ins.iter().count(), 0);
        assert_eq!(ins.buf.len(), HEADER_BYTES);
        assert!(Inserts::decode(&[1, 0, 0, 0, b'k']).is_none());
    }
}
