//! Audit trail backends against the real thing: the S3 backend against LocalStack (which
//! enforces Object Lock COMPLIANCE like AWS does), and the local write-once directory backend.
//!
//! The S3 test needs `OUTPOST_TEST_S3_ENDPOINT` (set by `scripts/test.sh`, which starts
//! LocalStack with `scripts/localstack.sh`). Without it the test fails instead of skipping: a
//! silently skipped compliance test is worse than a red one.

use outpost_core::ids::{Jurisdiction, LogId, Seq};
use outpost_core::log::{
    ChainHead, ChainWriter, Frame, NodeKey, RecordKind, SEGMENT_FORMAT, SegmentHeader,
    decode_segment, encode_segment, sha256,
};
use outpost_core::time::UnixMillis;
use region_hub::audit::{
    AuditError, AuditObject, AuditStore, LocalWormStore, S3Credentials, S3Store, audit_key,
};
use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A real, sealed segment of the hub's downstream chain `hub/gb-1` (records 1..=3), and the
/// first record's timestamp.
fn segment(tag: &str) -> (SegmentHeader, Vec<Frame>, UnixMillis) {
    let key = NodeKey::from_seed([7u8; 32]);
    let log = LogId::new("hub/gb-1").unwrap();
    let mut w = ChainWriter::new(log.clone(), ChainHead::EMPTY);
    let t0 = UnixMillis(1_763_726_400_000); // 2025-11-21T12:00:00Z
    let mut frames = Vec::new();
    for i in 0..3i64 {
        let payload = format!(r#"{{"tag":"{tag}","i":{i}}}"#).into_bytes();
        frames.push(w.append(RecordKind::HubResult, UnixMillis(t0.0 + i * 1000), payload));
    }
    ChainWriter::seal(frames.last_mut().unwrap(), &key);
    let head = w.head();
    let header = SegmentHeader {
        format: SEGMENT_FORMAT.into(),
        log_id: log,
        first_seq: Seq(1),
        last_seq: head.seq,
        prev_hash: "0".repeat(64),
        prev_timestamp_ms: 0,
        last_hash: head.hash.to_hex(),
        records: frames.len() as u64,
        public_key: key.public().to_hex(),
    };
    (header, frames, t0)
}

fn audit_object(tag: &str, retain_until: UnixMillis) -> AuditObject {
    let (header, frames, t0) = segment(tag);
    let j = Jurisdiction::new("GB").unwrap();
    let obj = AuditObject::for_segment(&j, &header, &frames, retain_until).unwrap();
    // for_segment must agree with the documented key helper and the segment encoder.
    assert_eq!(obj.key, audit_key(&j, &header.log_id, Seq(1), Seq(3), t0));
    assert_eq!(
        obj.key,
        "GB/2025/11/21/hub~gb-1/00000000000000000001-00000000000000000003.seg"
    );
    assert_eq!(obj.body, encode_segment(&header, &frames));
    obj
}

/// A whole second a day from now: S3 keeps retention at second precision.
fn one_day_from_now() -> UnixMillis {
    UnixMillis((now_ms() / 1000 + 86_400) * 1000)
}

#[tokio::test]
async fn s3_object_lock_audit_trail() {
    let endpoint = match std::env::var("OUTPOST_TEST_S3_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e,
        _ => panic!(
            "OUTPOST_TEST_S3_ENDPOINT is not set. This test needs an S3 server with Object Lock: \
             run scripts/test.sh (it starts LocalStack via scripts/localstack.sh and sets the variable), \
             or run scripts/localstack.sh start and export OUTPOST_TEST_S3_ENDPOINT=http://127.0.0.1:4566"
        ),
    };
    // Locked objects can never be cleaned up, so every run uses a fresh bucket.
    let bucket = format!("outpost-audit-test-{}-{}", std::process::id(), now_ms());
    let s3 = S3Store::connect(&endpoint, &bucket, S3Credentials::default()).unwrap();
    s3.ensure_bucket()
        .await
        .expect("create bucket with Object Lock");
    s3.ensure_bucket()
        .await
        .expect("ensure_bucket is idempotent");

    // The bucket really has Object Lock and versioning.
    let client = s3.client().clone();
    let lock = client
        .get_object_lock_configuration()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        lock.object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .map(|e| e.as_str()),
        Some("Enabled")
    );

    let store = AuditStore::from(s3);
    assert!(store.describe().contains(&bucket));
    let until = one_day_from_now();
    let obj = audit_object("s3", until);

    let receipt = store.put(&obj).await.unwrap();
    assert!(!receipt.already_present);
    assert_eq!(receipt.retain_until, until);
    assert_eq!(receipt.sha256, hex::encode(sha256(&obj.body)));
    let version = receipt
        .version_id
        .clone()
        .expect("versioned bucket returns a version id");

    // Byte-identical round trip, and still a valid segment.
    let got = store.get(&obj.key).await.unwrap();
    assert_eq!(got, obj.body);
    let (h, frames) = decode_segment(&got).unwrap();
    assert_eq!((h.first_seq, h.last_seq, frames.len()), (Seq(1), Seq(3), 3));

    // Retention as S3 reports it, through both HeadObject and GetObjectRetention.
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&obj.key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode().map(|m| m.as_str()),
        Some("COMPLIANCE")
    );
    assert_eq!(
        head.object_lock_retain_until_date()
            .map(|d| d.to_millis().unwrap()),
        Some(until.0)
    );
    let r = store.retention(&obj.key).await.unwrap();
    assert_eq!(r.mode, "COMPLIANCE");
    assert_eq!(r.retain_until, until);

    // COMPLIANCE: deleting the locked version is refused, even asking to bypass governance.
    let del = client
        .delete_object()
        .bucket(&bucket)
        .key(&obj.key)
        .version_id(&version)
        .bypass_governance_retention(true)
        .send()
        .await;
    let err = del.expect_err("deleting a COMPLIANCE-locked version must be refused");
    let status = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(403), "expected 403 AccessDenied, got {err:?}");
    assert_eq!(
        store.get(&obj.key).await.unwrap(),
        obj.body,
        "object survived the delete attempt"
    );

    // Idempotent re-put reports the original version and retention.
    let again = store
        .put(&AuditObject {
            retain_until: UnixMillis(until.0 + 5_000),
            ..obj.clone()
        })
        .await
        .unwrap();
    assert!(again.already_present);
    assert_eq!(again.version_id.as_deref(), Some(version.as_str()));
    assert_eq!(again.retain_until, until);
    // ...even when an outbox retries long after the requested date has passed.
    let late = AuditObject {
        retain_until: UnixMillis(1_000),
        ..obj.clone()
    };
    assert!(store.put(&late).await.unwrap().already_present);

    // A different body for the same key is a permanent Conflict, and nothing is written.
    let forged = AuditObject {
        body: audit_object("forged", until).body,
        ..obj.clone()
    };
    let err = store.put(&forged).await.unwrap_err();
    assert!(matches!(err, AuditError::Conflict { .. }), "{err}");
    assert!(!err.is_retryable());
    let versions = client
        .list_object_versions()
        .bucket(&bucket)
        .prefix(&obj.key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "conflicting put must not create a new version"
    );
    assert_eq!(store.get(&obj.key).await.unwrap(), obj.body);

    // The If-None-Match guard itself: a raw conditional write over the key gets 412.
    let raw = client
        .put_object()
        .bucket(&bucket)
        .key(&obj.key)
        .if_none_match("*")
        .body(forged.body.clone().into())
        .send()
        .await;
    assert_eq!(
        raw.expect_err("If-None-Match: * must refuse")
            .raw_response()
            .map(|r| r.status().as_u16()),
        Some(412)
    );

    // Concurrent writers racing past HeadObject: exactly one version is created, the identical
    // loser reports already_present and the different one gets Conflict.
    let race_key = "GB/2025/11/21/hub~gb-1/00000000000000000004-00000000000000000006.seg";
    let a = AuditObject {
        key: race_key.into(),
        ..obj.clone()
    };
    let b = AuditObject {
        key: race_key.into(),
        ..forged.clone()
    };
    let (r1, r2, r3) = tokio::join!(store.put(&a), store.put(&a), store.put(&b));
    let outcomes = [&r1, &r2, &r3].map(|r| match r {
        Ok(p) if p.already_present => "present",
        Ok(_) => "created",
        Err(AuditError::Conflict { .. }) => "conflict",
        Err(e) => panic!("unexpected error in race: {e}"),
    });
    assert_eq!(
        outcomes.iter().filter(|o| **o == "created").count(),
        1,
        "{outcomes:?}"
    );
    let versions = client
        .list_object_versions()
        .bucket(&bucket)
        .prefix(race_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.versions().len(),
        1,
        "racing puts must create exactly one version ({outcomes:?})"
    );

    // Listing by day prefix; missing keys are NotFound.
    assert_eq!(
        store
            .list("GB/2025/11/21/hub~gb-1/00000000000000000001")
            .await
            .unwrap(),
        vec![obj.key.clone()]
    );
    assert_eq!(
        store.list("GB/2025/11/21/").await.unwrap(),
        vec![obj.key.clone(), race_key.to_owned()]
    );
    assert!(store.list("GB/2025/11/22/").await.unwrap().is_empty());
    assert!(matches!(
        store.get("GB/2025/11/21/hub~gb-1/missing.seg").await,
        Err(AuditError::NotFound(_))
    ));
    assert!(matches!(
        store.retention("GB/2025/11/21/hub~gb-1/missing.seg").await,
        Err(AuditError::NotFound(_))
    ));
}

#[tokio::test]
async fn local_worm_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let store = AuditStore::from(LocalWormStore::open(dir.path().join("audit")).unwrap());
    let until = UnixMillis(one_day_from_now().0 + 123); // rounded up to the next whole second
    let obj = audit_object("local", until);

    let receipt = store.put(&obj).await.unwrap();
    assert!(!receipt.already_present);
    assert_eq!(receipt.retain_until, UnixMillis(until.0 - 123 + 1000));
    assert_eq!(receipt.version_id, None);

    let path = dir.path().join("audit").join(&obj.key);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(store.get(&obj.key).await.unwrap(), obj.body);

    // Sidecar: exact documented shape, read-only too.
    let sidecar_path = format!("{}.retention.json", path.display());
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sidecar_path).unwrap()).unwrap();
    assert_eq!(
        sidecar,
        serde_json::json!({"mode": "COMPLIANCE", "retain_until_ms": receipt.retain_until.0, "sha256": hex::encode(sha256(&obj.body))})
    );
    assert_eq!(
        std::fs::metadata(&sidecar_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o444
    );
    let r = store.retention(&obj.key).await.unwrap();
    assert_eq!(
        (r.mode.as_str(), r.retain_until),
        ("COMPLIANCE", receipt.retain_until)
    );

    // Idempotent re-put keeps the original retention.
    let again = store
        .put(&AuditObject {
            retain_until: UnixMillis(until.0 + 60_000),
            ..obj.clone()
        })
        .await
        .unwrap();
    assert!(again.already_present);
    assert_eq!(again.retain_until, receipt.retain_until);
    let late = AuditObject {
        retain_until: UnixMillis(1_000),
        ..obj.clone()
    };
    assert!(store.put(&late).await.unwrap().already_present);

    // No overwrite: Conflict, the file is untouched, and no temp files are left behind.
    let forged = AuditObject {
        body: audit_object("forged", until).body,
        ..obj.clone()
    };
    let err = store.put(&forged).await.unwrap_err();
    assert!(matches!(err, AuditError::Conflict { .. }), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(std::fs::read(&path).unwrap(), obj.body);
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "object + sidecar only, got {names:?}");

    // Concurrent writers (link(2) decides): one creates, the identical one sees it, the
    // different one conflicts.
    let race_key = "GB/2025/11/21/hub~gb-1/00000000000000000004-00000000000000000006.seg";
    let a = AuditObject {
        key: race_key.into(),
        ..obj.clone()
    };
    let b = AuditObject {
        key: race_key.into(),
        ..forged.clone()
    };
    let (r1, r2, r3) = tokio::join!(store.put(&a), store.put(&a), store.put(&b));
    let created = [&r1, &r2, &r3]
        .iter()
        .filter(|r| matches!(r, Ok(p) if !p.already_present))
        .count();
    assert_eq!(created, 1, "{r1:?} {r2:?} {r3:?}");
    // Whoever lost the race got a clean answer, never an I/O error or a replaced file.
    for r in [&r1, &r2, &r3] {
        assert!(
            matches!(r, Ok(_) | Err(AuditError::Conflict { .. })),
            "{r:?}"
        );
    }

    assert_eq!(
        store.list("GB/").await.unwrap(),
        vec![obj.key.clone(), race_key.to_owned()]
    );
    assert!(matches!(
        store.get("GB/nothing.seg").await,
        Err(AuditError::NotFound(_))
    ));
    assert!(matches!(
        store.get("GB/../../etc/passwd").await,
        Err(AuditError::InvalidKey { .. })
    ));
    // Retention in the past is refused up front (S3 would refuse it too).
    let stale = AuditObject {
        key: "GB/2025/11/21/x/1-1.seg".into(),
        retain_until: UnixMillis(now_ms() - 1000),
        ..obj.clone()
    };
    assert!(matches!(
        store.put(&stale).await,
        Err(AuditError::InvalidRetention { .. })
    ));
}
