//! `outpost-sync`: replication of an edge node's signed log to its region hub, and of the
//! hub's downstream chain (results, settlements) back to the edge.
//!
//! Layers, bottom up:
//! - [`wire`]: the binary message codec (length-prefixed, bounded, panic-free on any input);
//! - [`edge_session`] / [`hub_session`]: sans-IO protocol state machines (no sockets, no
//!   clock, no tasks; time is passed in), unit-testable and deterministic;
//! - [`seal_batch`]: the hub's batched Ed25519 verification of seals (`verify_batch`);
//! - [`pki`]: a development CA issuing the hub and node certificates;
//! - [`revocation`]: the hub's list of revoked node certificates, enforced in the handshake;
//! - [`tls`]: rustls/quinn configurations for mutual TLS and the certificate → node binding;
//! - [`transport`]: the tokio + quinn shells that drive the state machines over QUIC.

pub mod edge_session;
pub mod hub_session;
#[cfg(feature = "transport")]
pub mod pki;
#[cfg(feature = "transport")]
pub mod revocation;
pub mod seal_batch;
pub mod session;
#[cfg(feature = "transport")]
pub mod tls;
#[cfg(feature = "transport")]
pub mod transport;
pub mod wire;

#[cfg(test)]
mod sim;

pub use edge_session::{EdgeAction, EdgeSession};
pub use hub_session::{ForkEvidence, HubAction, HubSession, NodeRegistration, SignedHead};
pub use session::{SessionConfig, SessionError};
#[cfg(feature = "transport")]
pub use transport::{
    EdgeLinkConfig, EdgeLog, HubServer, HubServerConfig, HubStore, LinkStatus, TransportError,
    Witnessed, run_edge_link, run_hub_server,
};
pub use wire::{Decoder, Message, PROTOCOL_VERSION, WireError};
