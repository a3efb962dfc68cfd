//! Local write-once ("WORM") directory backend: the embedded default when no S3 bucket is
//! configured. Same key layout as S3, one file per object under `root`.
//!
//! Write-once is enforced by how objects are created, not by trusting callers: the body goes to
//! a temp file in the target directory, is fsynced and made read-only (0444), and is then
//! published with `link(2)`, which — unlike `rename(2)` — fails if the target exists. So an
//! existing object is never replaced, even by a concurrent writer, and a crash leaves either no
//! object or the complete one. The directory is fsynced afterwards so the new name survives a
//! power loss.
//!
//! Each object gets a sidecar `{key}.retention.json` (`{"mode":"COMPLIANCE",
//! "retain_until_ms":…,"sha256":"…"}`), written the same way after the object. The object is
//! the commit point: if we crash between the two, the next identical `put` (an outbox retry)
//! writes the missing sidecar.
//!
//! This is honest about its limits: a local directory cannot stop root (or the hub's own user
//! after `chmod`) from deleting files. It gives crash-safety and no-overwrite, and the sidecar's
//! SHA-256 makes tampering detectable on `get`; real immutability needs the S3 backend.

use super::{
    AuditError, AuditObject, PutReceipt, RETENTION_MODE, RetentionInfo, SIDECAR_SUFFIX,
    check_retain_until, round_up_to_second, sha256_hex, validate_key, validate_prefix,
};
use outpost_core::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Read-only for everyone: a second line of defence against accidental in-place edits.
const OBJECT_MODE: u32 = 0o444;

/// Distinguishes temp files of concurrent puts within this process (the pid separates
/// processes, random bytes separate a restarted process reusing a pid).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    mode: String,
    retain_until_ms: i64,
    sha256: String,
}

#[derive(Debug, Clone)]
pub struct LocalWormStore {
    root: PathBuf,
}

impl LocalWormStore {
    /// Open (creating if needed) the store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalWormStore, AuditError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_err("create store root", &root, e))?;
        Ok(LocalWormStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn describe(&self) -> String {
        format!("local write-once directory {}", self.root.display())
    }

    /// The file holding `key` (after validating it), for operators and tests.
    pub fn object_path(&self, key: &str) -> Result<PathBuf, AuditError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    pub async fn put(&self, obj: &AuditObject) -> Result<PutReceipt, AuditError> {
        validate_key(&obj.key)?;
        let this = self.clone();
        let obj = obj.clone();
        // fsync-heavy work must not stall the async runtime's worker threads.
        blocking(move || this.put_blocking(&obj)).await
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, AuditError> {
        validate_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || this.get_blocking(&key)).await
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        validate_prefix(prefix)?;
        let this = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || this.list_blocking(&prefix)).await
    }

    pub async fn retention(&self, key: &str) -> Result<RetentionInfo, AuditError> {
        validate_key(key)?;
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || {
            let path = this.root.join(&key);
            if !exists(&path)? {
                return Err(AuditError::NotFound(key));
            }
            let sc = this.read_sidecar(&key)?.ok_or_else(|| {
                AuditError::Integrity(format!("{key}: retention sidecar missing"))
            })?;
            Ok(RetentionInfo {
                mode: sc.mode,
                retain_until: UnixMillis(sc.retain_until_ms),
            })
        })
        .await
    }

    fn put_blocking(&self, obj: &AuditObject) -> Result<PutReceipt, AuditError> {
        let path = self.root.join(&obj.key);
        let dir = path.parent().ok_or_else(|| AuditError::InvalidKey {
            key: obj.key.clone(),
            reason: "no parent directory",
        })?;
        self.create_dirs_durable(dir)?;
        let sha = sha256_hex(&obj.body);

        // An existing object is checked before the retention date, so an idempotent retry of an
        // old upload still succeeds after its requested date has passed.
        let created = if exists(&path)? {
            false
        } else {
            check_retain_until(obj)?;
            publish_new(&path, &obj.body)?
        };
        if !created {
            // Someone (an earlier attempt, or a concurrent writer) got there first: succeed only
            // if it is byte-for-byte what we were asked to store.
            let stored = fs::read(&path).map_err(|e| io_err("read existing object", &path, e))?;
            let stored_sha = sha256_hex(&stored);
            if stored_sha != sha {
                return Err(AuditError::Conflict {
                    key: obj.key.clone(),
                    stored: stored_sha,
                    new: sha,
                });
            }
        }

        // The object is committed; now make sure its sidecar exists. An existing sidecar is
        // authoritative (its retention date was promised first) unless it contradicts the body.
        let sidecar = match self.read_sidecar(&obj.key)? {
            Some(sc) => sc,
            None => {
                let sc = Sidecar {
                    mode: RETENTION_MODE.to_owned(),
                    retain_until_ms: round_up_to_second(obj.retain_until).0,
                    sha256: sha.clone(),
                };
                let json = serde_json::to_vec(&sc)
                    .map_err(|e| AuditError::Unavailable(format!("encode sidecar: {e}")))?;
                if !publish_new(&sidecar_path(&path), &json)? {
                    // Lost a race with a concurrent identical put; use what it wrote.
                    self.read_sidecar(&obj.key)?.ok_or_else(|| {
                        AuditError::Integrity(format!("{}: sidecar vanished", obj.key))
                    })?
                } else {
                    sc
                }
            }
        };
        if sidecar.sha256 != sha {
            return Err(AuditError::Integrity(format!(
                "{}: sidecar sha256 {} does not match object {sha}",
                obj.key, sidecar.sha256
            )));
        }
        Ok(PutReceipt {
            key: obj.key.clone(),
            sha256: sha,
            already_present: !created,
            retain_until: UnixMillis(sidecar.retain_until_ms),
            version_id: None,
        })
    }

    fn get_blocking(&self, key: &str) -> Result<Vec<u8>, AuditError> {
        let path = self.root.join(key);
        let body = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(AuditError::NotFound(key.to_owned()));
            }
            Err(e) => return Err(io_err("read object", &path, e)),
        };
        // Detect tampering or bit rot rather than hand a regulator silently altered bytes.
        if let Some(sc) = self.read_sidecar(key)? {
            let sha = sha256_hex(&body);
            if sc.sha256 != sha {
                return Err(AuditError::Integrity(format!(
                    "{key}: content sha256 {sha} does not match recorded {}",
                    sc.sha256
                )));
            }
        }
        Ok(body)
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        // Start the walk at the deepest directory the prefix names, so listing one day does not
        // read the whole tree.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.root.join(dir_part)
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    continue;
                }
                Err(e) => return Err(io_err("list directory", &dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err("list directory", &dir, e))?;
                // Names that are not UTF-8 cannot be keys we wrote; skip rather than fail.
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') || name.ends_with(SIDECAR_SUFFIX) {
                    continue; // temp files and sidecars are not objects
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                // file_type() does not follow symlinks, so a planted link cannot escape root.
                let ft = entry
                    .file_type()
                    .map_err(|e| io_err("stat", &entry.path(), e))?;
                if ft.is_dir() {
                    // Descend only where keys below could still match the prefix.
                    let k = format!("{key}/");
                    if k.starts_with(prefix) || prefix.starts_with(&k) {
                        stack.push((entry.path(), key));
                    }
                } else if ft.is_file() && key.starts_with(prefix) && validate_key(&key).is_ok() {
                    out.push(key);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn read_sidecar(&self, key: &str) -> Result<Option<Sidecar>, AuditError> {
        let path = sidecar_path(&self.root.join(key));
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| AuditError::Integrity(format!("{key}: bad retention sidecar: {e}"))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read sidecar", &path, e)),
        }
    }

    /// `mkdir -p` below the root, fsyncing each parent that gained an entry, so a new object's
    /// directory chain is as durable as the object itself.
    fn create_dirs_durable(&self, dir: &Path) -> Result<(), AuditError> {
        let rel = dir.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let mut cur = self.root.clone();
        for comp in rel.components() {
            let parent = cur.clone();
            cur.push(comp);
            match fs::create_dir(&cur) {
                Ok(()) => fsync_dir(&parent)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create directory", &cur, e)),
            }
        }
        Ok(())
    }
}

fn sidecar_path(object: &Path) -> PathBuf {
    let mut s = object.as_os_str().to_owned();
    s.push(SIDECAR_SUFFIX);
    PathBuf::from(s)
}

/// Atomically create `path` with `data` unless it exists. Returns false (writing nothing) if
/// it already exists.
fn publish_new(path: &Path, data: &[u8]) -> Result<bool, AuditError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed),
        random_hex()
    ));

    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(OBJECT_MODE)
            .open(&tmp)
            .map_err(|e| io_err("create temp file", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| io_err("write temp file", &tmp, e))?;
        // The umask may have cleared bits from `mode`; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(OBJECT_MODE))
            .map_err(|e| io_err("chmod temp file", &tmp, e))?;
        f.sync_all()
            .map_err(|e| io_err("fsync temp file", &tmp, e))?;
        drop(f);
        // link(2) is the create_new of renames: it fails with EEXIST instead of replacing.
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err("publish object", path, e)),
        }
    })();
    // The temp name is only a staging handle; removing it leaves the published link intact.
    let _ = fs::remove_file(&tmp);
    let created = result?;
    if created {
        fsync_dir(dir)?;
    }
    Ok(created)
}

fn fsync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync directory", dir, e))
}

fn exists(path: &Path) -> Result<bool, AuditError> {
    path.try_exists().map_err(|e| io_err("stat", path, e))
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    // Uniqueness already comes from pid + counter; randomness only guards pid reuse, so a
    // failing entropy source is not worth failing the write over.
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// Local I/O failures (disk full, EIO, permissions) are reported as unavailable: the outbox
/// keeps the object and retries, and the operator sees the error in the logs.
fn io_err(op: &str, path: &Path, e: io::Error) -> AuditError {
    AuditError::Unavailable(format!("{op} {}: {e}", path.display()))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuditError> + Send + 'static,
) -> Result<T, AuditError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuditError::Unavailable(format!("local audit store task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(key: &str, body: &[u8]) -> AuditObject {
        AuditObject {
            key: key.into(),
            body: body.to_vec(),
            retain_until: UnixMillis(super::super::now_millis() + 86_400_000),
        }
    }

    #[tokio::test]
    async fn missing_sidecar_is_repaired_by_identical_put() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalWormStore::open(dir.path()).unwrap();
        let o = obj("GB/2026/01/02/gb-1/a.seg", b"hello");
        s.put(&o).await.unwrap();
        let sc = sidecar_path(&s.object_path(&o.key).unwrap());
        fs::remove_file(&sc).unwrap(); // simulate a crash between object and sidecar
        assert!(matches!(
            s.retention(&o.key).await,
            Err(AuditError::Integrity(_))
        ));
        let r = s.put(&o).await.unwrap();
        assert!(r.already_present);
        assert_eq!(s.retention(&o.key).await.unwrap().mode, "COMPLIANCE");
    }

    #[tokio::test]
    async fn tampering_is_detected_and_listing_skips_noise() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalWormStore::open(dir.path()).unwrap();
        s.put(&obj("GB/2026/01/02/gb-1/a.seg", b"one"))
            .await
            .unwrap();
        s.put(&obj("GB/2026/01/03/gb-1/b.seg", b"two"))
            .await
            .unwrap();
        s.put(&obj("IE/2026/01/02/ie-1/c.seg", b"three"))
            .await
            .unwrap();
        fs::write(dir.path().join("GB/2026/01/02/gb-1/.junk.tmp-1"), b"x").unwrap();
        assert_eq!(s.list("").await.unwrap().len(), 3);
        assert_eq!(
            s.list("GB/2026/01/0").await.unwrap(),
            vec!["GB/2026/01/02/gb-1/a.seg", "GB/2026/01/03/gb-1/b.seg"]
        );
        assert_eq!(
            s.list("GB/2026/01/02/").await.unwrap(),
            vec!["GB/2026/01/02/gb-1/a.seg"]
        );
        assert!(s.list("XX/").await.unwrap().is_empty());

        let p = s.object_path("GB/2026/01/02/gb-1/a.seg").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"forged").unwrap();
        assert!(matches!(
            s.get("GB/2026/01/02/gb-1/a.seg").await,
            Err(AuditError::Integrity(_))
        ));
        assert!(matches!(
            s.get("GB/nope.seg").await,
            Err(AuditError::NotFound(_))
        ));
        assert!(matches!(
            s.get("../etc/passwd").await,
            Err(AuditError::InvalidKey { .. })
        ));
    }

    #[tokio::test]
    async fn past_retention_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalWormStore::open(dir.path()).unwrap();
        let mut o = obj("GB/x.seg", b"1");
        o.retain_until = UnixMillis(1_000);
        assert!(matches!(
            s.put(&o).await,
            Err(AuditError::InvalidRetention { .. })
        ));
    }
}
