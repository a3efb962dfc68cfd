//! Revocation of node certificates on the hub: a list file naming revoked certificates by
//! serial number or SHA-256 fingerprint, enforced inside the TLS handshake and reloaded when
//! the file changes.
//!
//! File format (UTF-8 text, one entry per line, blank lines and `#` comments ignored; hex is
//! case-insensitive and may contain `:` separators):
//! ```text
//! # gb-3's laptop was stolen, 2026-11-20
//! serial:4A:1F:0C:...            (the certificate's serial number)
//! sha256:9F86D081884C7D65...      (SHA-256 of the certificate's DER encoding, 64 hex digits)
//! ```
//! The two forms `openssl x509 -noout -serial -in node.pem` and
//! `openssl x509 -noout -fingerprint -sha256 -in node.pem` print (`serial=…`,
//! `sha256 Fingerprint=…`) are accepted as they are, so an operator can append their output.
//!
//! A list that cannot be read or parsed at startup stops the hub (fail closed). A later
//! change is picked up at the next handshake; if the new file is unreadable or invalid, the
//! previous list stays in force and the error is logged, so a botched edit never un-revokes
//! anything. Revocation refuses new connections; a session already running with a
//! certificate that gets revoked ends at its next reconnect (sessions reconnect at least on
//! every network change and hub restart; restart the hub to cut them at once).

use outpost_core::log::sha256;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tracing::{error, info};

#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    #[error("revocation list {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("revocation list {path}, line {line}: {problem}")]
    Syntax {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// The revoked serial numbers and fingerprints.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RevocationList {
    /// Serial numbers as unsigned big-endian bytes without leading zeros.
    serials: HashSet<Vec<u8>>,
    fingerprints: HashSet<[u8; 32]>,
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let mut digits: String = s.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() {
        return Err("no hex digits".into());
    }
    if !digits.len().is_multiple_of(2) {
        // A number written without its leading zero digit.
        digits.insert(0, '0');
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| format!("not hex: {s:?}"))
        })
        .collect()
}

fn strip_leading_zeros(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

impl RevocationList {
    /// Parse the list file's text. `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RevocationList, RevocationError> {
        let mut list = RevocationList::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |problem: String| RevocationError::Syntax {
                path: path.to_owned(),
                line: n + 1,
                problem,
            };
            let lower = line.to_ascii_lowercase();
            let (kind, value) = if let Some(v) = lower.strip_prefix("serial:") {
                ("serial", v)
            } else if let Some(v) = lower.strip_prefix("serial=") {
                ("serial", v)
            } else if let Some(v) = lower.strip_prefix("sha256:") {
                ("sha256", v)
            } else if let Some(v) = lower.strip_prefix("sha256 fingerprint=") {
                ("sha256", v)
            } else {
                return Err(err(format!(
                    "expected `serial:<hex>` or `sha256:<64 hex digits>`, got {line:?}"
                )));
            };
            let bytes = parse_hex(value.trim()).map_err(|e| err(format!("{kind}: {e}")))?;
            if kind == "serial" {
                let s = strip_leading_zeros(&bytes);
                if s.is_empty() || bytes.len() > 20 {
                    return Err(err(
                        "serial: must be a non-zero number of at most 20 bytes (RFC 5280)".into(),
                    ));
                }
                list.serials.insert(s);
            } else {
                let fp: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                    err(format!(
                        "sha256: needs 32 bytes (64 hex digits), got {}",
                        b.len()
                    ))
                })?;
                list.fingerprints.insert(fp);
            }
        }
        Ok(list)
    }

    /// Read and parse a list file.
    pub fn load(path: &Path) -> Result<RevocationList, RevocationError> {
        let text = std::fs::read_to_string(path).map_err(|source| RevocationError::Io {
            path: path.to_owned(),
            source,
        })?;
        RevocationList::parse(&text, path)
    }

    pub fn len(&self) -> usize {
        self.serials.len() + self.fingerprints.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why `cert` is revoked (`None` if it is not).
    pub fn revoked(&self, cert: &[u8]) -> Option<String> {
        let fp = sha256(cert);
        if self.fingerprints.contains(&fp) {
            return Some(format!("certificate SHA-256 {} is revoked", hex(&fp)));
        }
        let serial = strip_leading_zeros(cert_serial(cert)?);
        self.serials
            .contains(&serial)
            .then(|| format!("certificate serial {} is revoked", hex(&serial)))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One DER TLV at the start of `b`: `(tag, content, rest)`. `None` if malformed.
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, b.get(header..end)?, b.get(end..)?))
}

/// The serial number (INTEGER content bytes) of a DER X.509 certificate:
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber
/// INTEGER, … } … }`.
pub fn cert_serial(der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = der_tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = der_tlv(cert)? else {
        return None;
    };
    let (mut tag, mut content, rest) = der_tlv(tbs)?;
    if tag == 0xa0 {
        (tag, content, _) = der_tlv(rest)?;
    }
    (tag == 0x02).then_some(content)
}

/// Identity of the file version a list was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
    })
}

/// A revocation list file, reloaded when it changes (checked at each use, i.e. per handshake:
/// one `stat`).
#[derive(Debug)]
pub struct RevocationFile {
    path: PathBuf,
    state: Mutex<(Option<Stamp>, Arc<RevocationList>)>,
}

impl RevocationFile {
    /// Load the list; an unreadable or invalid file is an error (the hub must not start
    /// without the revocations it was told to enforce).
    pub fn open(path: &Path) -> Result<Arc<RevocationFile>, RevocationError> {
        let st = stamp(path).ok();
        let list = RevocationList::load(path)?;
        info!(path = %path.display(), entries = list.len(), "revocation list loaded");
        Ok(Arc::new(RevocationFile {
            path: path.to_owned(),
            state: Mutex::new((st, Arc::new(list))),
        }))
    }

    /// The list in force, reloading the file first if it changed since the last load.
    pub fn current(&self) -> Arc<RevocationList> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = stamp(&self.path).ok();
        if now.is_some() && now != g.0 {
            match RevocationList::load(&self.path) {
                Ok(list) => {
                    info!(path = %self.path.display(), entries = list.len(), "revocation list reloaded");
                    *g = (now, Arc::new(list));
                }
                Err(e) => {
                    // Keep the previous list: a broken edit must not un-revoke anything. Remember
                    // the stamp so the error is logged once per change, not per handshake.
                    error!(
                        "{e}; keeping the previous revocation list ({} entries)",
                        g.1.len()
                    );
                    g.0 = now;
                }
            }
        } else if now.is_none() && g.0.is_some() {
            error!(path = %self.path.display(), "revocation list file is gone; keeping the previous list ({} entries)", g.1.len());
            g.0 = None;
        }
        g.1.clone()
    }
}

/// A client-certificate verifier that runs the normal WebPKI checks (chain to the operator
/// CA, validity period — an expired certificate fails here —, key usage) and then refuses
/// revoked certificates.
#[derive(Debug)]
pub struct RevokingVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub revocations: Arc<RevocationFile>,
}

impl ClientCertVerifier for RevokingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if let Some(reason) = self.revocations.current().revoked(end_entity) {
            tracing::warn!("refusing client certificate: {reason}");
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(ok)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::DevCa;
    use outpost_core::ids::NodeId;
    use rustls_pki_types::pem::PemObject;

    fn p() -> PathBuf {
        PathBuf::from("revoked.txt")
    }

    #[test]
    fn parses_both_forms_and_openssl_output() {
        let text = "# comment\n\nserial:01:0A\nSERIAL=00FF # trailing comment\nsha256:".to_string()
            + &"ab".repeat(32)
            + "\nsha256 Fingerprint="
            + &vec!["CD"; 32].join(":")
            + "\n";
        let l = RevocationList::parse(&text, &p()).unwrap();
        assert_eq!(l.len(), 4);
        assert!(l.serials.contains(&vec![1, 10]));
        assert!(l.serials.contains(&vec![0xff]), "leading zeros dropped");
        assert!(l.fingerprints.contains(&[0xcd; 32]));
    }

    #[test]
    fn bad_lines_name_the_line() {
        for (text, want) in [
            ("serial:01\nbogus\n", "line 2: expected"),
            ("sha256:abcd\n", "line 1: sha256: needs 32 bytes"),
            ("serial:0\n", "non-zero"),
            ("serial:00:00\n", "non-zero"),
            ("serial:zz\n", "not hex"),
        ] {
            let e = RevocationList::parse(text, &p()).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn matches_certificates_by_serial_and_fingerprint() {
        let ca = DevCa::generate().unwrap();
        let node = NodeId::new("gb-1").unwrap();
        let pem = ca.issue_node(&node).unwrap().cert_pem;
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let serial = cert_serial(&der).expect("serial");
        assert!(!serial.is_empty());
        let other =
            CertificateDer::from_pem_slice(ca.issue_node(&node).unwrap().cert_pem.as_bytes())
                .unwrap();

        let by_serial = RevocationList::parse(&format!("serial:{}\n", hex(serial)), &p()).unwrap();
        assert!(by_serial.revoked(&der).unwrap().contains("serial"));
        assert_eq!(by_serial.revoked(&other), None);
        let by_fp =
            RevocationList::parse(&format!("sha256:{}\n", hex(&sha256(&der))), &p()).unwrap();
        assert!(by_fp.revoked(&der).unwrap().contains("SHA-256"));
        assert_eq!(by_fp.revoked(&other), None);
        assert_eq!(RevocationList::default().revoked(&der), None);
        // Garbage never panics and is never "revoked by serial".
        assert_eq!(by_serial.revoked(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(cert_serial(&[]), None);
    }

    #[test]
    fn file_reloads_on_change_and_keeps_the_old_list_on_a_bad_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked.txt");
        std::fs::write(&path, "serial:01\n").unwrap();
        let f = RevocationFile::open(&path).unwrap();
        assert_eq!(f.current().len(), 1);
        std::fs::write(&path, "serial:01\nserial:0203\n").unwrap();
        assert_eq!(f.current().len(), 2);
        std::fs::write(&path, "serial:01\nnonsense that is longer\n").unwrap();
        assert_eq!(f.current().len(), 2, "bad edit keeps the previous list");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(f.current().len(), 2, "deleted file keeps the previous list");
        assert!(
            RevocationFile::open(&path).is_err(),
            "missing at startup: refuse"
        );
    }
}
