//! Fuzz the session state machines with whatever the frame decoder makes of arbitrary bytes:
//! an established hub session and an established edge session receive every decoded message
//! (and timer ticks in between). They must never panic, and must answer a bad message by
//! closing with an error, never by committing or applying something out of sequence.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_core::ids::{Jurisdiction, NodeId, Seq};
use outpost_core::log::{ChainHead, NodeKey};
use outpost_core::time::UnixMillis;
use outpost_sync::wire::{Decoder, Message, PROTOCOL_VERSION};
use outpost_sync::{EdgeSession, HubAction, HubSession, NodeRegistration, SessionConfig};

fuzz_target!(|data: &[u8]| {
    let node = NodeId::new("gb-1").unwrap();
    let gb = Jurisdiction::new("GB").unwrap();
    let cfg = SessionConfig::default();
    let mut now = UnixMillis(1_000);
    let reg = NodeRegistration {
        jurisdiction: gb.clone(),
        public_key: NodeKey::from_seed([1; 32]).public(),
    };
    let mut hub = HubSession::new(
        cfg.clone(),
        node.clone(),
        Some(reg),
        ChainHead::EMPTY,
        Seq(5),
        now,
    );
    let mut edge = EdgeSession::new(cfg, node.clone(), gb.clone(), Seq(3), Seq(0), now);
    let _ = hub.handle_message(
        Message::Hello {
            version: PROTOCOL_VERSION,
            node_id: node,
            jurisdiction: gb,
            edge_head: Seq(3),
            down_applied: Seq(0),
        },
        now,
    );
    while let Some(m) = hub.poll_transmit() {
        let _ = edge.handle_message(m, now);
    }
    let mut d = Decoder::new();
    d.push(data);
    let mut committed = Seq::ZERO;
    while let Ok(Some(m)) = d.next() {
        now = UnixMillis(now.0 + 7);
        let _ = hub.handle_message(m.clone(), now);
        let _ = edge.handle_message(m, now);
        let _ = hub.handle_timeout(now);
        let _ = edge.handle_timeout(now);
        while let Some(a) = hub.poll_action() {
            if let HubAction::Commit { records } = a {
                for (_, body) in records {
                    // Only records that verified against the node's key could get here, and
                    // the fuzzer cannot sign; gap-free order is the invariant either way.
                    assert_eq!(body.seq, committed.next());
                    committed = body.seq;
                }
            }
        }
        while edge.poll_action().is_some() {}
        while hub.poll_transmit().is_some() {}
        while edge.poll_transmit().is_some() {}
        let _ = hub.poll_timeout();
        let _ = edge.want_records();
    }
});
