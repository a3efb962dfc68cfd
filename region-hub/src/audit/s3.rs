//! S3 backend with Object Lock: every object is written with COMPLIANCE retention into a
//! versioned, Object-Lock-enabled bucket, so not even the bucket owner can delete or shorten
//! it before the retain-until date. Tested against LocalStack 4.12 (the only local server that
//! enforces COMPLIANCE; see `../shared/notes/feasibility.md` §2) and written for real S3.
//!
//! Object Lock alone does not stop a *new version* being written over a key, so no-overwrite
//! is enforced here: `put` first does HeadObject and compares our `outpost-sha256` metadata,
//! and the PutObject itself carries `If-None-Match: *` so two concurrent writers cannot both
//! create a version (the loser gets 412 and re-checks). PutObject also carries
//! `x-amz-checksum-sha256`, so S3 rejects a body corrupted in transit.

use super::{
    AuditError, AuditObject, PutReceipt, RetentionInfo, check_retain_until, sha256_hex,
    validate_key, validate_prefix,
};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{BucketVersioningStatus, ChecksumMode, ObjectLockEnabled, ObjectLockMode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use outpost_core::time::UnixMillis;
use std::fmt;
use std::time::Duration;

/// Region used for signing. LocalStack accepts anything; for AWS the bucket must live here
/// (a different region would need a config option, which nothing needs yet).
pub const DEFAULT_REGION: &str = "us-east-1";

/// User metadata key (sent as `x-amz-meta-outpost-sha256`) holding the body's hex SHA-256. It
/// is what the idempotency check compares, so it does not depend on which checksum algorithms
/// a given S3 implementation reports back.
const META_SHA256: &str = "outpost-sha256";

/// Static S3 credentials. The defaults (`test`/`test`) are what LocalStack expects.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for S3Credentials {
    fn default() -> Self {
        S3Credentials {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
        }
    }
}

// Never print the secret, not even in debug logs of a config struct.
impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Bounds on one S3 call: TCP connect, one attempt, and the whole operation with the SDK's
/// retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct S3Timeouts {
    pub connect: Duration,
    pub attempt: Duration,
    pub operation: Duration,
}

impl Default for S3Timeouts {
    fn default() -> Self {
        S3Timeouts {
            connect: Duration::from_secs(5),
            attempt: Duration::from_secs(30),
            operation: Duration::from_secs(90),
        }
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    endpoint: String,
}

/// How an SDK failure matters to us. 404 and 412 are expected outcomes of some calls, so they
/// are kept apart from real errors until the caller decides what they mean.
enum Failure {
    NotFound,
    PreconditionFailed,
    Error(AuditError),
}

impl S3Store {
    /// Build a client for `endpoint` (e.g. `http://127.0.0.1:4566`) and `bucket`. Does no I/O;
    /// call [`S3Store::ensure_bucket`] before the first `put`.
    pub fn connect(
        endpoint: &str,
        bucket: &str,
        creds: S3Credentials,
    ) -> Result<S3Store, AuditError> {
        S3Store::connect_with_timeouts(endpoint, bucket, creds, S3Timeouts::default())
    }

    /// [`S3Store::connect`] with explicit timeouts (e.g. short ones for an outage test, so a
    /// frozen server turns into `Unavailable` within seconds).
    pub fn connect_with_timeouts(
        endpoint: &str,
        bucket: &str,
        creds: S3Credentials,
        timeouts: S3Timeouts,
    ) -> Result<S3Store, AuditError> {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(AuditError::Rejected(format!(
                "S3 endpoint {endpoint:?} must start with http:// or https://"
            )));
        }
        validate_bucket_name(bucket)?;
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            // Path style (`endpoint/bucket/key`) works with LocalStack and any S3-compatible
            // server without wildcard DNS; AWS still supports it.
            .force_path_style(true)
            .region(Region::new(DEFAULT_REGION))
            .credentials_provider(Credentials::new(
                &creds.access_key_id,
                &creds.secret_access_key,
                None,
                None,
                "outpost-config",
            ))
            // Bounded waits: the outbox would rather get `Unavailable` and retry later than have
            // an audit upload hang on a dead endpoint.
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeouts.connect)
                    .operation_attempt_timeout(timeouts.attempt)
                    .operation_timeout(timeouts.operation)
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .build();
        Ok(S3Store {
            client: Client::from_conf(config),
            bucket: bucket.to_owned(),
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        })
    }

    /// The underlying SDK client, for operators' tooling and tests (e.g. to prove a delete is
    /// refused). Audit code should go through the methods of this type.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn describe(&self) -> String {
        format!(
            "S3 bucket {} at {} (Object Lock COMPLIANCE)",
            self.bucket, self.endpoint
        )
    }

    /// Create the bucket with Object Lock if it does not exist, then verify that versioning and
    /// Object Lock are enabled. Object Lock can only be switched on at creation, so a
    /// pre-existing bucket without it is refused rather than silently used.
    pub async fn ensure_bucket(&self) -> Result<(), AuditError> {
        let b = &self.bucket;
        match self
            .client
            .create_bucket()
            .bucket(b)
            .object_lock_enabled_for_bucket(true)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {}
            Err(e) if e.code() == Some("BucketAlreadyExists") => {
                return Err(AuditError::Rejected(format!(
                    "bucket {b} exists and belongs to someone else"
                )));
            }
            Err(e) => return Err(into_error(classify("CreateBucket", b, e), b)),
        }

        let v = self
            .client
            .get_bucket_versioning()
            .bucket(b)
            .send()
            .await
            .map_err(|e| into_error(classify("GetBucketVersioning", b, e), b))?;
        if v.status() != Some(&BucketVersioningStatus::Enabled) {
            return Err(AuditError::Rejected(format!(
                "bucket {b}: versioning is {:?}, must be Enabled (Object Lock requires it)",
                v.status()
            )));
        }

        let lock = match self
            .client
            .get_object_lock_configuration()
            .bucket(b)
            .send()
            .await
        {
            Ok(out) => out
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .cloned(),
            Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => None,
            Err(e) => return Err(into_error(classify("GetObjectLockConfiguration", b, e), b)),
        };
        if lock != Some(ObjectLockEnabled::Enabled) {
            return Err(AuditError::Rejected(format!(
                "bucket {b} exists without Object Lock; it can only be enabled at creation, so configure a new bucket"
            )));
        }
        Ok(())
    }

    pub async fn put(&self, obj: &AuditObject) -> Result<PutReceipt, AuditError> {
        validate_key(&obj.key)?;
        let digest = outpost_core::log::sha256(&obj.body);
        let sha_hex = hex::encode(digest);
        if let Some(receipt) = self.existing(&obj.key, &sha_hex).await? {
            return Ok(receipt);
        }
        // Checked only when writing, so an idempotent retry of an old upload still succeeds.
        let until = check_retain_until(obj)?;

        let res = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&obj.key)
            .body(ByteStream::from(obj.body.clone()))
            .content_type("application/octet-stream")
            .if_none_match("*")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_millis(until.0))
            .checksum_sha256(BASE64.encode(digest))
            .metadata(META_SHA256, &sha_hex)
            .send()
            .await;
        match res {
            Ok(out) => Ok(PutReceipt {
                key: obj.key.clone(),
                sha256: sha_hex,
                already_present: false,
                retain_until: until,
                version_id: out.version_id().map(str::to_owned),
            }),
            Err(e) => match classify("PutObject", &obj.key, e) {
                // A concurrent writer created the key after our HeadObject: same rule as above.
                Failure::PreconditionFailed => {
                    self.existing(&obj.key, &sha_hex).await?.ok_or_else(|| {
                        AuditError::Unavailable(format!(
                            "PutObject {}: precondition failed but object not visible yet",
                            obj.key
                        ))
                    })
                }
                f => Err(into_error(f, &obj.key)),
            },
        }
    }

    /// If `key` exists: `Some(receipt)` when it holds the body with `sha_hex`, `Conflict` when
    /// it holds something else. `None` when there is no current version.
    async fn existing(&self, key: &str, sha_hex: &str) -> Result<Option<PutReceipt>, AuditError> {
        let head = match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
        {
            Ok(h) => h,
            Err(e) => {
                return match classify("HeadObject", key, e) {
                    Failure::NotFound => Ok(None),
                    f => Err(into_error(f, key)),
                };
            }
        };
        let stored = stored_sha256_hex(&head);
        if stored.as_deref() != Some(sha_hex) {
            return Err(AuditError::Conflict {
                key: key.to_owned(),
                stored: stored.unwrap_or_else(|| "unknown (no checksum recorded)".into()),
                new: sha_hex.to_owned(),
            });
        }
        let retain_until = head
            .object_lock_retain_until_date()
            .and_then(|d| d.to_millis().ok())
            .ok_or_else(|| {
                AuditError::Integrity(format!("{key}: stored object has no Object Lock retention"))
            })?;
        Ok(Some(PutReceipt {
            key: key.to_owned(),
            sha256: sha_hex.to_owned(),
            already_present: true,
            retain_until: UnixMillis(retain_until),
            version_id: head.version_id().map(str::to_owned),
        }))
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, AuditError> {
        validate_key(key)?;
        // ChecksumMode::Enabled makes the SDK verify S3's stored SHA-256 against what arrives.
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| into_error(classify("GetObject", key, e), key))?;
        let expected = out.metadata().and_then(|m| m.get(META_SHA256)).cloned();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| AuditError::Unavailable(format!("GetObject {key}: reading body: {e}")))?
            .to_vec();
        if let Some(expected) = expected {
            let sha = sha256_hex(&body);
            if sha != expected {
                return Err(AuditError::Integrity(format!(
                    "{key}: content sha256 {sha} does not match recorded {expected}"
                )));
            }
        }
        Ok(body)
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        validate_prefix(prefix)?;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_continuation_token(token.take());
            if !prefix.is_empty() {
                req = req.prefix(prefix);
            }
            let out = req
                .send()
                .await
                .map_err(|e| into_error(classify("ListObjectsV2", prefix, e), prefix))?;
            keys.extend(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(str::to_owned),
            );
            match (out.is_truncated(), out.next_continuation_token()) {
                (Some(true), Some(t)) => token = Some(t.to_owned()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    pub async fn retention(&self, key: &str) -> Result<RetentionInfo, AuditError> {
        validate_key(key)?;
        let out = match self
            .client
            .get_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.code() == Some("NoSuchObjectLockConfiguration") => {
                return Err(AuditError::Integrity(format!(
                    "{key}: object has no retention"
                )));
            }
            Err(e) => return Err(into_error(classify("GetObjectRetention", key, e), key)),
        };
        let r = out
            .retention()
            .ok_or_else(|| AuditError::Integrity(format!("{key}: object has no retention")))?;
        let mode = r
            .mode()
            .map(|m| m.as_str().to_owned())
            .ok_or_else(|| AuditError::Integrity(format!("{key}: retention has no mode")))?;
        let until = r
            .retain_until_date()
            .and_then(|d| d.to_millis().ok())
            .ok_or_else(|| {
                AuditError::Integrity(format!("{key}: retention has no retain-until date"))
            })?;
        Ok(RetentionInfo {
            mode,
            retain_until: UnixMillis(until),
        })
    }
}

/// Our recorded hex SHA-256, falling back to S3's own SHA-256 checksum (base64) for objects
/// that lack our metadata.
fn stored_sha256_hex(head: &HeadObjectOutput) -> Option<String> {
    if let Some(m) = head.metadata().and_then(|m| m.get(META_SHA256)) {
        return Some(m.to_ascii_lowercase());
    }
    let b64 = head.checksum_sha256()?;
    // A multipart object's checksum is `base64-N` (a checksum of checksums): not comparable.
    BASE64
        .decode(b64)
        .ok()
        .filter(|d| d.len() == 32)
        .map(hex::encode)
}

/// Sort an SDK failure into retryable / permanent / expected-outcome. Transport problems,
/// timeouts, throttling and 5xx are transient; other 4xx are permanent.
fn classify<E>(op: &str, target: &str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = err.code().map(str::to_owned);
    let msg = || format!("{op} {target}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(se) => match (se.raw().status().as_u16(), code.as_deref()) {
            (404, Some("NoSuchBucket")) => Failure::Error(AuditError::Rejected(msg())),
            (404, _) => Failure::NotFound,
            (412, _) => Failure::PreconditionFailed,
            // 409 ConditionalRequestConflict: a concurrent conditional write is in flight.
            (408 | 429 | 500..=599, _)
            | (409, Some("ConditionalRequestConflict" | "OperationAborted")) => {
                Failure::Error(AuditError::Unavailable(msg()))
            }
            _ => Failure::Error(AuditError::Rejected(msg())),
        },
        SdkError::ConstructionFailure(_) => Failure::Error(AuditError::Rejected(msg())),
        SdkError::DispatchFailure(d) if d.is_user() => Failure::Error(AuditError::Rejected(msg())),
        // Timeouts, connection refused/reset, unparseable responses from a proxy, and any
        // future variants: worth another try.
        _ => Failure::Error(AuditError::Unavailable(msg())),
    }
}

fn into_error(f: Failure, target: &str) -> AuditError {
    match f {
        Failure::NotFound => AuditError::NotFound(target.to_owned()),
        Failure::PreconditionFailed => {
            AuditError::Rejected(format!("{target}: unexpected precondition failure"))
        }
        Failure::Error(e) => e,
    }
}

/// S3's bucket naming rules (the subset that matters for path-style requests), checked up
/// front so a typo in config fails at startup with a clear message.
fn validate_bucket_name(b: &str) -> Result<(), AuditError> {
    let ok = (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !b.contains("..");
    if ok {
        Ok(())
    } else {
        Err(AuditError::Rejected(format!(
            "invalid S3 bucket name {b:?}: 3-63 chars of a-z 0-9 . -"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(
            S3Store::connect(
                "http://127.0.0.1:4566",
                "outpost-audit",
                S3Credentials::default()
            )
            .is_ok()
        );
        assert!(
            S3Store::connect("127.0.0.1:4566", "outpost-audit", S3Credentials::default()).is_err()
        );
        for bad in ["ab", "Upper", "-lead", "trail-", "a..b", "under_score"] {
            assert!(
                S3Store::connect("http://x", bad, S3Credentials::default()).is_err(),
                "{bad}"
            );
        }
        assert!(
            !format!(
                "{:?}",
                S3Credentials {
                    access_key_id: "AK".into(),
                    secret_access_key: "SECRET".into()
                }
            )
            .contains("SECRET")
        );
    }

    #[tokio::test]
    async fn unreachable_endpoint_is_retryable() {
        // Port 9 (discard) on loopback is closed: connection refused must map to Unavailable.
        let s = S3Store::connect(
            "http://127.0.0.1:9",
            "outpost-audit",
            S3Credentials::default(),
        )
        .unwrap();
        let err = s.get("GB/x.seg").await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
