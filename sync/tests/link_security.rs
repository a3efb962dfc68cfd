//! The hub's replication endpoint against hostile or outdated clients, over real QUIC + mutual
//! TLS on loopback: expired and revoked node certificates are refused in the handshake (the
//! revocation list is reloaded when it changes), an old node gets a clear version error, and a
//! malformed frame closes that connection with a logged reason while the hub keeps serving.
//! The client side is a bare quinn connection that writes bytes by hand.

use outpost_core::ids::{Jurisdiction, NodeId, Seq};
use outpost_core::log::{ChainHead, Frame, NodeKey, RecordBody, sha256};
use outpost_sync::pki::{self, DevCa};
use outpost_sync::revocation::{RevocationFile, cert_serial};
use outpost_sync::tls;
use outpost_sync::wire::{Decoder, Message, PROTOCOL_VERSION, code};
use outpost_sync::{HubServer, HubServerConfig, HubStore, NodeRegistration};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

fn gb1() -> NodeId {
    NodeId::new("gb-1").unwrap()
}

/// A hub store knowing one node (gb-1) with empty chains; these tests never get as far as
/// committing anything.
struct OneNode;

impl HubStore for OneNode {
    fn refusal(&self, _node: &NodeId) -> Option<String> {
        None
    }
    async fn witness_checkpoint(
        &self,
        _node: &NodeId,
        _head: outpost_sync::SignedHead,
    ) -> Result<outpost_sync::Witnessed, String> {
        Err("this test store holds no records to witness".into())
    }
    async fn report_equivocation(&self, _node: &NodeId, _evidence: outpost_sync::ForkEvidence) {}
    fn registration(&self, node: &NodeId) -> Option<NodeRegistration> {
        (*node == gb1()).then(|| NodeRegistration {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            public_key: NodeKey::from_seed([1; 32]).public(),
        })
    }
    fn upstream_head(&self, _: &NodeId) -> Result<ChainHead, String> {
        Ok(ChainHead::EMPTY)
    }
    async fn commit_upstream(
        &self,
        _: &NodeId,
        _: Vec<(Frame, RecordBody)>,
    ) -> Result<Seq, String> {
        Err("this test store commits nothing".into())
    }
    fn flag_node(&self, _: &NodeId, _: &str) {}
    fn touch(&self, _: &NodeId, _: Seq, _: i64) {}
    fn down_head(&self, _: &NodeId) -> Seq {
        Seq::ZERO
    }
    fn subscribe_down(&self, _: &NodeId) -> watch::Receiver<Seq> {
        watch::channel(Seq::ZERO).1
    }
    fn read_down(&self, _: &NodeId, _: Seq, _: usize) -> Result<Vec<Frame>, String> {
        Ok(Vec::new())
    }
    fn down_acked(&self, _: &NodeId, _: Seq) {}
}

struct Setup {
    _dir: tempfile::TempDir,
    pki: PathBuf,
    ca: DevCa,
    revoked: PathBuf,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

/// A dev PKI, an empty revocation list file, and a hub enforcing it.
async fn setup() -> Setup {
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    pki::write_dev_pki(&pki, &pki::DEFAULT_HUB_NAMES, &[gb1()]).unwrap();
    let ca = DevCa::load(&pki).unwrap();
    let revoked = dir.path().join("revoked.txt");
    std::fs::write(&revoked, "# revoked node certificates\n").unwrap();
    let server = tls::server_config_with_revocation(
        &tls::load_certs(&pki.join(pki::CA_CERT_FILE)).unwrap(),
        tls::load_certs(&pki.join(pki::HUB_CERT_FILE)).unwrap(),
        tls::load_key(&pki.join(pki::HUB_KEY_FILE)).unwrap(),
        Some(RevocationFile::open(&revoked).unwrap()),
    )
    .unwrap();
    let hub =
        HubServer::bind(HubServerConfig::new("127.0.0.1:0".parse().unwrap(), server)).unwrap();
    let addr = hub.local_addr().unwrap();
    let (stop, rx) = watch::channel(false);
    tokio::spawn(hub.run(Arc::new(OneNode), rx));
    Setup {
        _dir: dir,
        pki,
        ca,
        revoked,
        addr,
        stop,
    }
}

fn client_for(pki: &Path, cert_pem: &Path, key_pem: &Path) -> quinn::ClientConfig {
    tls::client_config_from_files(&pki.join(pki::CA_CERT_FILE), cert_pem, key_pem).unwrap()
}

/// Connect, write `bytes` on the stream, and collect the hub's messages until `done` says
/// so; `Err` is the error that ended the connection first.
async fn converse(
    client: quinn::ClientConfig,
    addr: SocketAddr,
    bytes: &[u8],
    done: impl Fn(&Message) -> bool,
) -> Result<Vec<Message>, String> {
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let r = async {
        let conn = ep
            .connect_with(client, addr, pki::HUB_SERVER_NAME)
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut d = Decoder::new();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        loop {
            while let Some(m) = d.next().map_err(|e| format!("decode: {e}"))? {
                let stop = done(&m);
                got.push(m);
                if stop {
                    return Ok(got);
                }
            }
            match recv.read(&mut buf).await {
                Ok(Some(n)) => d.push(&buf[..n]),
                Ok(None) => return Err(format!("stream finished after {got:?}")),
                Err(quinn::ReadError::ConnectionLost(e)) => {
                    return Err(format!("connection lost: {e}"));
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    };
    let out = tokio::time::timeout(Duration::from_secs(20), r)
        .await
        .unwrap_or_else(|_| Err("no answer within 20 s".into()));
    ep.close(0u32.into(), b"");
    out
}

/// The hub's first message.
async fn exchange(
    client: quinn::ClientConfig,
    addr: SocketAddr,
    bytes: &[u8],
) -> Result<Message, String> {
    converse(client, addr, bytes, |_| true)
        .await
        .map(|mut v| v.remove(0))
}

fn hello(version: u16) -> Vec<u8> {
    Message::Hello {
        version,
        node_id: gb1(),
        jurisdiction: Jurisdiction::new("GB").unwrap(),
        edge_head: Seq::ZERO,
        down_applied: Seq::ZERO,
    }
    .encode()
    .unwrap()
}

fn gb1_client(s: &Setup) -> quinn::ClientConfig {
    client_for(
        &s.pki,
        &s.pki.join(pki::node_cert_file(&gb1())),
        &s.pki.join(pki::node_key_file(&gb1())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_certificate_gets_a_welcome() {
    let s = setup().await;
    let m = exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION)).await;
    assert!(
        matches!(
            m,
            Ok(Message::Welcome {
                acked: Seq::ZERO,
                ..
            })
        ),
        "{m:?}"
    );
    s.stop.send_replace(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_certificate_is_refused() {
    let s = setup().await;
    let issued =
        s.ca.issue_node_valid(&gb1(), (2020, 1, 1), (2021, 1, 1))
            .unwrap();
    let dir = s.pki.join("expired");
    pki::write_pair(&dir, "gb-1.pem", "gb-1.key", &issued).unwrap();
    let client = client_for(&s.pki, &dir.join("gb-1.pem"), &dir.join("gb-1.key"));
    let err = exchange(client, s.addr, &hello(PROTOCOL_VERSION))
        .await
        .unwrap_err();
    eprintln!("expired: {err}");
    // TLS alert 45 (certificate_expired) travels as QUIC crypto error 0x100 + 45.
    assert!(
        err.contains("0x12d") || err.to_lowercase().contains("expired"),
        "{err}"
    );
    s.stop.send_replace(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificate_is_refused_and_the_list_reloads() {
    let s = setup().await;
    let cert_path = s.pki.join(pki::node_cert_file(&gb1()));
    let der = CertificateDer::from_pem_file(&cert_path).unwrap();
    assert!(
        exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION))
            .await
            .is_ok()
    );

    // Revoke by serial number, in the form `openssl x509 -noout -serial` prints.
    let serial: String = cert_serial(&der)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    std::fs::write(&s.revoked, format!("# stolen\nserial={serial}\n")).unwrap();
    let err = exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION))
        .await
        .unwrap_err();
    eprintln!("revoked by serial: {err}");
    // TLS alert 44 (certificate_revoked) travels as QUIC crypto error 0x100 + 44.
    assert!(
        err.contains("0x12c") || err.to_lowercase().contains("revoked"),
        "{err}"
    );

    // A broken edit keeps the revocation in force.
    std::fs::write(&s.revoked, "serial=zz-not-hex\n").unwrap();
    assert!(
        exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION))
            .await
            .is_err()
    );

    // Revoke by SHA-256 fingerprint instead; another node certificate for gb-1 still works.
    let fp: String = sha256(&der).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&s.revoked, format!("sha256:{fp}\n")).unwrap();
    assert!(
        exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION))
            .await
            .is_err()
    );
    let fresh = s.ca.issue_node(&gb1()).unwrap();
    let dir = s.pki.join("fresh");
    pki::write_pair(&dir, "gb-1.pem", "gb-1.key", &fresh).unwrap();
    let client = client_for(&s.pki, &dir.join("gb-1.pem"), &dir.join("gb-1.key"));
    let m = exchange(client, s.addr, &hello(PROTOCOL_VERSION)).await;
    assert!(matches!(m, Ok(Message::Welcome { .. })), "{m:?}");

    // Emptying the list un-revokes.
    std::fs::write(&s.revoked, "").unwrap();
    assert!(
        exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION))
            .await
            .is_ok()
    );
    s.stop.send_replace(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_node_gets_a_clear_version_error() {
    let s = setup().await;
    // The previous protocol version, same Hello layout.
    let m = exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION - 1)).await;
    let Ok(Message::Error { code: c, message }) = m else {
        panic!("{m:?}")
    };
    assert_eq!(c, code::VERSION);
    assert_eq!(
        message,
        format!(
            "protocol version {} not supported by hub (supports {PROTOCOL_VERSION})",
            PROTOCOL_VERSION - 1
        )
    );
    // A version whose Hello this hub cannot even decode still gets the version error.
    let m = exchange(gb1_client(&s), s.addr, &[0, 0, 0, 4, 1, 0, 9, 0xff]).await;
    let Ok(Message::Error { code: c, message }) = m else {
        panic!("{m:?}")
    };
    assert_eq!(c, code::VERSION, "{message}");
    assert!(
        message.contains("protocol version 9 not supported"),
        "{message}"
    );
    s.stop.send_replace(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_the_connection_with_a_reason() {
    let s = setup().await;
    // After a good Hello: an unknown message type, an oversized length, a truncated Records.
    for bad in [
        vec![0, 0, 0, 1, 99],
        vec![0xff, 0xff, 0xff, 0xff],
        vec![0, 0, 0, 5, 3, 0, 0, 0, 9],
    ] {
        // As the first message.
        let m = exchange(gb1_client(&s), s.addr, &bad).await;
        let Ok(Message::Error { code: c, message }) = m else {
            panic!("{bad:?}: {m:?}")
        };
        assert_eq!(c, code::PROTOCOL, "{message}");
        assert!(message.contains("undecodable first message"), "{message}");
        // After a good Hello: Welcome, then the Error naming the problem.
        let mut bytes = hello(PROTOCOL_VERSION);
        bytes.extend_from_slice(&bad);
        let msgs = converse(gb1_client(&s), s.addr, &bytes, |m| {
            matches!(m, Message::Error { .. })
        })
        .await
        .unwrap();
        assert!(matches!(msgs[0], Message::Welcome { .. }), "{msgs:?}");
        let Some(Message::Error { code: c, message }) = msgs.last() else {
            panic!("{msgs:?}")
        };
        assert_eq!(*c, code::PROTOCOL, "{message}");
        assert!(
            message.contains("undecodable message from edge"),
            "{message}"
        );
    }
    // The hub still serves.
    let m = exchange(gb1_client(&s), s.addr, &hello(PROTOCOL_VERSION)).await;
    assert!(matches!(m, Ok(Message::Welcome { .. })), "{m:?}");
    s.stop.send_replace(true);
}
