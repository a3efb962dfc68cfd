//! Mutual-TLS configuration for the replication link (rustls with aws-lc-rs, inside quinn), and
//! the binding of a TLS client certificate to a node id.
//!
//! - The hub requires a client certificate chaining to the operator CA
//!   (`WebPkiClientVerifier`, which also enforces the ClientAuth key usage); edges verify the
//!   hub's certificate against the same CA under the name `hub.outpost`.
//! - TLS 1.3 only (QUIC requires it), ALPN `outpost-sync/1` on both sides (quinn fails the
//!   handshake otherwise), no 0-RTT (replayable early data has no place in a replication
//!   protocol) and no session tickets, so every connection re-validates the client certificate
//!   (validity period and revocation list included, see [`crate::revocation`]).
//! - The configs carry the aws-lc-rs provider explicitly, so they work whether or not a
//!   process-wide default provider was installed; [`install_crypto_provider`] is still offered
//!   for other rustls users in the same process.
//!
//! A rejected client certificate does not make the client's `connect()` fail: the client
//! learns it on its first read (the hub's `Welcome` never arrives, the read returns
//! `ConnectionLost`). The transport treats the first response as the authentication check.

use crate::pki::{self, node_dns_name};
use crate::revocation::{RevocationFile, RevokingVerifier};
use outpost_core::ids::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// ALPN protocol id of the replication protocol.
pub const ALPN: &[u8] = b"outpost-sync/1";

/// QUIC idle timeout: the connection dies after this long without any packet. Session
/// heartbeats (1 s) keep a healthy link busy; this bounds how long a dead one goes unnoticed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no {what} found in PEM file ({reason})")]
    Pem {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    #[error("peer certificate cannot be parsed: {0}")]
    BadCertificate(String),
    #[error("peer certificate names no node (no SAN *.nodes.outpost with a valid node id)")]
    NoNodeName,
    #[error("peer certificate names several nodes: {0:?}")]
    AmbiguousNode(Vec<String>),
}

/// Install aws-lc-rs as the process-wide rustls provider (ignored if one is installed already).
/// The configs built here do not need it, but other rustls users in the process might (with
/// more than one provider compiled in, rustls refuses to guess and panics).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// All certificates in a PEM file (chain order as in the file).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
            reason: "file has no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })?;
    PrivateKeyDer::from_pem_slice(&data).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: "private key",
        reason: e.to_string(),
    })
}

fn roots(ca: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for c in ca {
        store.add(c.clone())?;
    }
    Ok(Arc::new(store))
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // IDLE_TIMEOUT is 10 s, far inside QUIC's varint range, so the conversion cannot fail.
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    t.keep_alive_interval(Some(Duration::from_secs(2)));
    // BBR paces by measured bandwidth and RTT instead of halving the window on every loss:
    // on a link that drops packets at random (a flaky WAN, or the 20% fault test) a loss-based
    // controller (the default, CUBIC) collapses to a trickle that cannot keep up with the
    // edge's log, while BBR keeps replicating at the link's real rate.
    t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    // One bidirectional stream per connection is all the protocol uses.
    t.max_concurrent_bidi_streams(1u8.into());
    t.max_concurrent_uni_streams(0u8.into());
    Arc::new(t)
}

/// Hub side: present `chain`/`key`, require client certificates issued by `ca`.
pub fn server_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, TlsError> {
    server_config_with_revocation(ca, chain, key, None)
}

/// [`server_config`], also refusing client certificates listed in `revocations` (see
/// [`crate::revocation`]). Expired (or not yet valid) certificates are refused either way.
pub fn server_config_with_revocation(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    revocations: Option<Arc<RevocationFile>>,
) -> Result<quinn::ServerConfig, TlsError> {
    let webpki = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier: Arc<dyn ClientCertVerifier> = match revocations {
        Some(revocations) => Arc::new(RevokingVerifier {
            inner: webpki,
            revocations,
        }),
        None => webpki,
    };
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    tls.send_tls13_tickets = 0;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    cfg.transport_config(transport());
    Ok(cfg)
}

/// Edge side: present `chain`/`key` as the client certificate, trust only `ca` for the hub.
pub fn client_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_early_data = false;
    let quic = QuicClientConfig::try_from(tls).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(quic));
    cfg.transport_config(transport());
    Ok(cfg)
}

/// Hub config from PEM files: CA bundle, hub certificate (chain), hub key.
pub fn server_config_from_files(
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<quinn::ServerConfig, TlsError> {
    server_config(
        &load_certs(ca_pem)?,
        load_certs(cert_pem)?,
        load_key(key_pem)?,
    )
}

/// Edge config from PEM files: CA bundle, node certificate (chain), node key.
pub fn client_config_from_files(
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<quinn::ClientConfig, TlsError> {
    client_config(
        &load_certs(ca_pem)?,
        load_certs(cert_pem)?,
        load_key(key_pem)?,
    )
}

/// Hub config from a dev PKI directory (`ca.pem`, `hub.pem`, `hub.key`).
pub fn hub_server_config(pki_dir: &Path) -> Result<quinn::ServerConfig, TlsError> {
    server_config_from_files(
        &pki_dir.join(pki::CA_CERT_FILE),
        &pki_dir.join(pki::HUB_CERT_FILE),
        &pki_dir.join(pki::HUB_KEY_FILE),
    )
}

/// Edge config from a dev PKI directory (`ca.pem`, `node-{id}.pem`, `node-{id}.key`).
pub fn edge_client_config(pki_dir: &Path, node: &NodeId) -> Result<quinn::ClientConfig, TlsError> {
    client_config_from_files(
        &pki_dir.join(pki::CA_CERT_FILE),
        &pki_dir.join(pki::node_cert_file(node)),
        &pki_dir.join(pki::node_key_file(node)),
    )
}

/// The peer's certificate chain (end-entity first) as verified during the handshake.
pub fn peer_certificates(conn: &quinn::Connection) -> Option<Vec<CertificateDer<'static>>> {
    conn.peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()
        .map(|b| *b)
}

/// Whether `cert` is valid for the DNS name `{node}.nodes.outpost` (chain validity was already
/// checked by the handshake; this is only the name binding).
pub fn cert_names_node(cert: &CertificateDer<'_>, node: &NodeId) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(node_dns_name(node)) else {
        return false;
    };
    ee.verify_is_valid_for_subject_name(&name).is_ok()
}

/// Whether the connection's client certificate is for `node`. Use this with the node id the
/// edge claims in its `Hello`.
pub fn cert_is_for_node(conn: &quinn::Connection, node: &NodeId) -> bool {
    peer_certificates(conn)
        .and_then(|c| c.into_iter().next())
        .is_some_and(|ee| cert_names_node(&ee, node))
}

/// The node id the connection's client certificate names: exactly one SAN of the form
/// `{id}.nodes.outpost` with a valid node id (confirmed with webpki's own name check).
pub fn authenticated_node_id(conn: &quinn::Connection) -> Result<NodeId, TlsError> {
    let chain = peer_certificates(conn).ok_or(TlsError::NoPeerCertificate)?;
    let ee_der = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    node_id_of_cert(ee_der)
}

/// [`authenticated_node_id`] for a certificate.
pub fn node_id_of_cert(cert: &CertificateDer<'_>) -> Result<NodeId, TlsError> {
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| TlsError::BadCertificate(format!("{e:?}")))?;
    let suffix = format!(".{}", pki::NODE_DNS_SUFFIX);
    let mut nodes: Vec<NodeId> = ee
        .valid_dns_names()
        .filter_map(|n| n.strip_suffix(suffix.as_str()))
        .filter_map(|id| NodeId::new(id).ok())
        .filter(|id| cert_names_node(cert, id))
        .collect();
    nodes.dedup();
    match nodes.len() {
        0 => Err(TlsError::NoNodeName),
        1 => Ok(nodes.remove(0)),
        _ => Err(TlsError::AmbiguousNode(
            nodes.iter().map(|n| n.to_string()).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::DevCa;

    #[test]
    fn node_id_is_read_from_the_san() {
        let ca = DevCa::generate().unwrap();
        let node = NodeId::new("gb-7").unwrap();
        let cert =
            CertificateDer::from_pem_slice(ca.issue_node(&node).unwrap().cert_pem.as_bytes())
                .unwrap();
        assert_eq!(node_id_of_cert(&cert).unwrap(), node);
        assert!(cert_names_node(&cert, &node));
        assert!(!cert_names_node(&cert, &NodeId::new("gb-1").unwrap()));
        let hub = CertificateDer::from_pem_slice(
            ca.issue_hub(&pki::DEFAULT_HUB_NAMES)
                .unwrap()
                .cert_pem
                .as_bytes(),
        )
        .unwrap();
        assert!(matches!(node_id_of_cert(&hub), Err(TlsError::NoNodeName)));
    }

    #[test]
    fn configs_build_from_a_dev_pki() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeId::new("gb-1").unwrap();
        pki::write_dev_pki(
            dir.path(),
            &pki::DEFAULT_HUB_NAMES,
            std::slice::from_ref(&node),
        )
        .unwrap();
        hub_server_config(dir.path()).unwrap();
        edge_client_config(dir.path(), &node).unwrap();
        let e = edge_client_config(dir.path(), &NodeId::new("gb-2").unwrap()).unwrap_err();
        assert!(e.to_string().contains("node-gb-2.pem"), "{e}");
    }
}
