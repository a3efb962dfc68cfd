//! The simulated network: one connection per edge node at a time, each carrying encoded
//! protocol messages both ways with latency. Faults: loss, duplication, reordering, latency
//! spikes (delay), connection resets, and partitions (every datagram dropped, no new
//! connection can be made). A real QUIC stream never loses or reorders bytes, so loss,
//! duplication and reordering *inside* a connection stand in for transport bugs: the sessions
//! must turn them into a clean error and a reconnect, never into a lost or doubled record.

use super::rng::Rng;
use crate::edge_session::EdgeSession;
use crate::hub_session::HubSession;
use crate::wire::Message;
use outpost_core::time::UnixMillis;

/// Fault rates for one run (per message, per million).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NetFaults {
    pub(crate) loss: u64,
    pub(crate) duplicate: u64,
    pub(crate) reorder: u64,
    pub(crate) spike: u64,
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NetStats {
    pub(crate) sent: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) reordered: u64,
    pub(crate) delayed: u64,
    pub(crate) partitioned: u64,
}

/// One direction of a connection: messages in flight with their delivery time.
pub(crate) struct Pipe {
    q: Vec<(UnixMillis, Vec<u8>)>,
    /// Delivery time of the last in-order message (a stream delivers in order).
    tail: UnixMillis,
}

impl Default for Pipe {
    fn default() -> Pipe {
        Pipe {
            q: Vec::new(),
            tail: UnixMillis(0),
        }
    }
}

impl Pipe {
    pub(crate) fn send(
        &mut self,
        msg: &Message,
        now: UnixMillis,
        partitioned: bool,
        faults: &NetFaults,
        rng: &mut Rng,
        st: &mut NetStats,
    ) {
        st.sent += 1;
        let bytes = msg
            .encode()
            .expect("sessions keep messages under the size limit");
        if partitioned {
            st.partitioned += 1;
            return;
        }
        if rng.chance(faults.loss) {
            st.lost += 1;
            return;
        }
        let mut latency = rng.range(1, 15) as i64;
        if rng.chance(faults.spike) {
            st.delayed += 1;
            latency += rng.range(200, 1500) as i64;
        }
        let mut at = UnixMillis(now.0 + latency);
        if rng.chance(faults.reorder) && !self.q.is_empty() {
            // Overtake what is queued: deliver before the earliest pending message.
            st.reordered += 1;
            let first = self.q.iter().map(|(t, _)| *t).min().unwrap_or(now);
            at = UnixMillis(first.0 - 1).max(now);
        } else {
            at = at.max(self.tail);
            self.tail = at;
        }
        if rng.chance(faults.duplicate) {
            st.duplicated += 1;
            self.q.push((at, bytes.clone()));
        }
        self.q.push((at, bytes));
    }

    /// Messages due at `now`, in delivery order (stable for equal times).
    pub(crate) fn due(&mut self, now: UnixMillis) -> Vec<Message> {
        if !self.q.iter().any(|(t, _)| *t <= now) {
            return Vec::new();
        }
        self.q.sort_by_key(|(t, _)| *t);
        let n = self.q.iter().take_while(|(t, _)| *t <= now).count();
        self.q
            .drain(..n)
            .map(|(_, b)| Message::decode(&b).expect("encoded by us"))
            .collect()
    }
}

/// A live connection between one edge and the hub.
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) edge: EdgeSession,
    pub(crate) hub: HubSession,
    pub(crate) to_hub: Pipe,
    pub(crate) to_edge: Pipe,
}
