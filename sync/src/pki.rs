//! Development PKI: an operator CA that issues the hub's server certificate and one client
//! certificate per edge node, written as PEM files.
//!
//! Node identity in TLS is the SAN DNS name `{node_id}.nodes.outpost`; the hub checks it against
//! the node id the edge claims (see `tls::cert_is_for_node`). Certificates carry explicit
//! extended key usages (ServerAuth for the hub, ClientAuth for nodes) so a node certificate
//! cannot serve as a hub certificate or the other way round.
//!
//! rcgen is built without its X.509 parser, so a CA read back from disk is rebuilt from the
//! fixed CA parameters below plus the stored key; [`DevCa::from_pem`] checks that the result
//! really matches `ca.pem` before it is used to issue anything.
//!
//! Files in a PKI directory: `ca.pem`, `ca.key`, `hub.pem`, `hub.key`, `node-{id}.pem`,
//! `node-{id}.key`. Keys are ECDSA P-256, PKCS#8 PEM, written with mode 0600 on Unix.

use outpost_core::ids::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::{Path, PathBuf};

/// DNS suffix of node identities: a node's certificate names `{node_id}.nodes.outpost`.
pub const NODE_DNS_SUFFIX: &str = "nodes.outpost";
/// The name edges use to reach the hub (SNI and certificate check).
pub const HUB_SERVER_NAME: &str = "hub.outpost";
/// SANs of a dev hub certificate.
pub const DEFAULT_HUB_NAMES: [&str; 3] = [HUB_SERVER_NAME, "localhost", "127.0.0.1"];

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";
pub const HUB_CERT_FILE: &str = "hub.pem";
pub const HUB_KEY_FILE: &str = "hub.key";

const CA_COMMON_NAME: &str = "Outpost Dev Operator CA";
const ORGANIZATION: &str = "Outpost";

/// `{node_id}.nodes.outpost`
pub fn node_dns_name(node: &NodeId) -> String {
    format!("{node}.{NODE_DNS_SUFFIX}")
}
/// `node-{id}.pem`
pub fn node_cert_file(node: &NodeId) -> String {
    format!("node-{node}.pem")
}
/// `node-{id}.key`
pub fn node_key_file(node: &NodeId) -> String {
    format!("node-{node}.key")
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("{path}: not a usable PEM {what}: {reason}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Mismatch(String),
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuedCert { .. }")
    }
}

/// The development operator CA.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevCa { .. }")
    }
}

/// The CA's parameters. A CA loaded from disk is rebuilt from them (rcgen cannot parse
/// certificates here), and the issuer name in every leaf must equal the CA's subject, so they
/// depend on nothing but the CA key: the common name carries a fingerprint of the public key,
/// which keeps different dev CAs apart (a certificate from another dev CA then fails as
/// "unknown issuer", not as a confusing bad signature).
fn ca_params(key: &KeyPair) -> CertificateParams {
    let fingerprint = outpost_core::log::sha256(key.public_key_raw());
    let mut cn = format!("{CA_COMMON_NAME} ");
    for b in &fingerprint[..6] {
        cn.push_str(&format!("{b:02x}"));
    }
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn leaf_params(
    sans: Vec<String>,
    common_name: &str,
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, PkiError> {
    // `new` turns IP-looking names into IP SANs and the rest into DNS SANs.
    let mut p = CertificateParams::new(sans)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, common_name);
    p.distinguished_name
        .push(DnType::OrganizationName, ORGANIZATION);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

impl DevCa {
    /// A fresh CA with a new key.
    pub fn generate() -> Result<DevCa, PkiError> {
        let key = KeyPair::generate()?;
        let params = ca_params(&key);
        let cert = params.self_signed(&key)?;
        Ok(DevCa {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// Rebuild a CA from its certificate and key PEM, checking that they belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<DevCa, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let ca_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| PkiError::Mismatch(format!("CA certificate is not PEM: {e}")))?;
        let issuer = Issuer::new(ca_params(&key), key);
        // Issue a throwaway leaf and check its issuer name and signature key match ca.pem, so a
        // foreign or mismatched CA fails here rather than as a TLS error much later.
        let probe = CertificateParams::default().signed_by(issuer.key(), &issuer)?;
        let same_name = parse(&ca_der)?.subject() == parse(probe.der())?.issuer();
        let raw_key = issuer.key().public_key_raw();
        let same_key = ca_der.as_ref().windows(raw_key.len()).any(|w| w == raw_key);
        if !same_name || !same_key {
            return Err(PkiError::Mismatch(format!(
                "CA certificate and key do not belong together or were not made by this tool (name matches: {same_name}, key matches: {same_key})"
            )));
        }
        Ok(DevCa {
            issuer,
            cert_pem: cert_pem.to_owned(),
        })
    }

    /// Read `ca.pem` and `ca.key` from `dir`.
    pub fn load(dir: &Path) -> Result<DevCa, PkiError> {
        let cert = read(&dir.join(CA_CERT_FILE))?;
        let key = read(&dir.join(CA_KEY_FILE))?;
        DevCa::from_pem(&cert, &key).map_err(|e| match e {
            PkiError::Rcgen(r) => PkiError::Pem {
                path: dir.join(CA_KEY_FILE),
                what: "private key",
                reason: r.to_string(),
            },
            other => other,
        })
    }

    /// Write `ca.pem` and `ca.key` into `dir` (overwriting).
    pub fn write(&self, dir: &Path) -> Result<(), PkiError> {
        write_pair(
            dir,
            CA_CERT_FILE,
            CA_KEY_FILE,
            &IssuedCert {
                cert_pem: self.cert_pem.clone(),
                key_pem: self.key_pem(),
            },
        )
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A hub server certificate for `names` (DNS names or IP addresses), EKU ServerAuth.
    pub fn issue_hub(&self, names: &[&str]) -> Result<IssuedCert, PkiError> {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cn = names.first().copied().unwrap_or(HUB_SERVER_NAME);
        self.issue(leaf_params(sans, cn, ExtendedKeyUsagePurpose::ServerAuth)?)
    }

    /// A node client certificate with SAN `{node}.nodes.outpost`, EKU ClientAuth.
    pub fn issue_node(&self, node: &NodeId) -> Result<IssuedCert, PkiError> {
        let name = node_dns_name(node);
        self.issue(leaf_params(
            vec![name.clone()],
            &name,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?)
    }

    /// A node certificate valid only from `not_before` to `not_after` (UTC dates as
    /// `(year, month, day)`), e.g. a short-lived one, or an expired one to test refusal.
    pub fn issue_node_valid(
        &self,
        node: &NodeId,
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> Result<IssuedCert, PkiError> {
        let name = node_dns_name(node);
        let mut p = leaf_params(
            vec![name.clone()],
            &name,
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        p.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        self.issue(p)
    }

    fn issue(&self, params: CertificateParams) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn parse<'a>(der: &'a CertificateDer<'a>) -> Result<webpki::EndEntityCert<'a>, PkiError> {
    webpki::EndEntityCert::try_from(der)
        .map_err(|e| PkiError::Mismatch(format!("cannot parse certificate: {e:?}")))
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Write a certificate (mode 0644) and its key (mode 0600 on Unix) into `dir`.
pub fn write_pair(
    dir: &Path,
    cert_file: &str,
    key_file: &str,
    issued: &IssuedCert,
) -> Result<(), PkiError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| PkiError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let key_path = dir.join(key_file);
    write_private(&key_path, issued.key_pem.as_bytes()).map_err(io(&key_path))?;
    let cert_path = dir.join(cert_file);
    std::fs::write(&cert_path, issued.cert_pem.as_bytes()).map_err(io(&cert_path))?;
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Create the dev PKI in `dir`, keeping whatever already exists: the CA (`ca.pem`/`ca.key`) is
/// generated only if both files are missing, the hub pair (`hub.pem`/`hub.key`) and each
/// `node-{id}.pem`/`node-{id}.key` pair only if either file of the pair is missing. Returns the
/// CA (loaded or new).
pub fn write_dev_pki(
    dir: &Path,
    hub_names: &[&str],
    node_ids: &[NodeId],
) -> Result<DevCa, PkiError> {
    let exists = |f: &str| dir.join(f).exists();
    let ca = match (exists(CA_CERT_FILE), exists(CA_KEY_FILE)) {
        (true, true) => DevCa::load(dir)?,
        (false, false) => {
            let ca = DevCa::generate()?;
            ca.write(dir)?;
            tracing::info!(dir = %dir.display(), "generated dev operator CA");
            ca
        }
        (has_cert, _) => {
            return Err(PkiError::Mismatch(format!(
                "{}: found {} without {}; refusing to replace half a CA",
                dir.display(),
                if has_cert { CA_CERT_FILE } else { CA_KEY_FILE },
                if has_cert { CA_KEY_FILE } else { CA_CERT_FILE },
            )));
        }
    };
    if !exists(HUB_CERT_FILE) || !exists(HUB_KEY_FILE) {
        write_pair(dir, HUB_CERT_FILE, HUB_KEY_FILE, &ca.issue_hub(hub_names)?)?;
        tracing::info!(dir = %dir.display(), names = ?hub_names, "issued dev hub certificate");
    }
    for node in node_ids {
        let (c, k) = (node_cert_file(node), node_key_file(node));
        if !exists(&c) || !exists(&k) {
            write_pair(dir, &c, &k, &ca.issue_node(node)?)?;
            tracing::info!(dir = %dir.display(), %node, "issued dev node certificate");
        }
    }
    Ok(ca)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn node_cert_names_the_node_and_hub_cert_the_hub() {
        let ca = DevCa::generate().unwrap();
        let node = NodeId::new("gb-1").unwrap();
        let n = der(&ca.issue_node(&node).unwrap().cert_pem);
        let ee = webpki::EndEntityCert::try_from(&n).unwrap();
        let name = rustls_pki_types::ServerName::try_from("gb-1.nodes.outpost").unwrap();
        assert!(ee.verify_is_valid_for_subject_name(&name).is_ok());
        let other = rustls_pki_types::ServerName::try_from("gb-2.nodes.outpost").unwrap();
        assert!(ee.verify_is_valid_for_subject_name(&other).is_err());

        let h = der(&ca.issue_hub(&DEFAULT_HUB_NAMES).unwrap().cert_pem);
        let ee = webpki::EndEntityCert::try_from(&h).unwrap();
        for n in ["hub.outpost", "localhost", "127.0.0.1"] {
            let name = rustls_pki_types::ServerName::try_from(n).unwrap();
            assert!(ee.verify_is_valid_for_subject_name(&name).is_ok(), "{n}");
        }
    }

    #[test]
    fn write_is_idempotent_and_reloads_the_same_ca() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = [NodeId::new("gb-1").unwrap(), NodeId::new("ie-1").unwrap()];
        let ca = write_dev_pki(dir.path(), &DEFAULT_HUB_NAMES, &nodes).unwrap();
        for f in [
            "ca.pem",
            "ca.key",
            "hub.pem",
            "hub.key",
            "node-gb-1.pem",
            "node-gb-1.key",
            "node-ie-1.pem",
            "node-ie-1.key",
        ] {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others");
        }
        let hub_before = std::fs::read(dir.path().join("hub.pem")).unwrap();
        std::fs::remove_file(dir.path().join("node-ie-1.key")).unwrap();
        let again = write_dev_pki(dir.path(), &DEFAULT_HUB_NAMES, &nodes).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        assert_eq!(
            std::fs::read(dir.path().join("hub.pem")).unwrap(),
            hub_before,
            "existing pair kept"
        );
        assert!(
            dir.path().join("node-ie-1.key").exists(),
            "missing pair reissued"
        );
    }

    #[test]
    fn mismatched_ca_files_are_refused() {
        let a = DevCa::generate().unwrap();
        let b = DevCa::generate().unwrap();
        assert!(DevCa::from_pem(a.cert_pem(), &a.key_pem()).is_ok());
        let e = DevCa::from_pem(a.cert_pem(), &b.key_pem()).unwrap_err();
        assert!(matches!(e, PkiError::Mismatch(_)), "{e}");

        let dir = tempfile::tempdir().unwrap();
        a.write(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("ca.key")).unwrap();
        let e = write_dev_pki(dir.path(), &DEFAULT_HUB_NAMES, &[]).unwrap_err();
        assert!(e.to_string().contains("found ca.pem without ca.key"), "{e}");
    }
}
