//! A fault-injecting UDP relay for QUIC tests: the edge talks to `listen`, the relay forwards
//! each datagram to the hub and back, and can drop a share of them, delay them by a random
//! amount (which also reorders them), duplicate them, or drop everything (a partition).
//! User space, because this machine kind's kernel has no `netem` qdisc.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Current faults; change them at any time with [`UdpProxy::set`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Share of datagrams dropped, in percent (each direction independently).
    pub drop_percent: u64,
    /// Share of datagrams sent twice, in percent.
    pub duplicate_percent: u64,
    /// Each datagram is held back a random time in this range (ms); different delays reorder.
    pub delay_ms: (u64, u64),
    /// Drop everything, both ways.
    pub partitioned: bool,
}

#[derive(Debug, Default)]
pub struct ProxyStats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub partitioned: AtomicU64,
}

impl ProxyStats {
    pub fn summary(&self) -> String {
        format!(
            "{} datagrams forwarded, {} dropped at random, {} duplicated, {} dropped by the partition",
            self.forwarded.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed),
            self.partitioned.load(Ordering::Relaxed)
        )
    }
}

struct Shared {
    faults: Mutex<Faults>,
    rng: Mutex<u64>,
    stats: ProxyStats,
    /// The edge's address, learnt from its first datagram.
    client: Mutex<Option<SocketAddr>>,
}

impl Shared {
    fn rand(&self, n: u64) -> u64 {
        let mut s = self.rng.lock().unwrap();
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        *s % n.max(1)
    }
    /// Delays at which to send copies of one datagram (empty: drop it).
    fn fate(&self) -> Vec<Duration> {
        let f = *self.faults.lock().unwrap();
        if f.partitioned {
            self.stats.partitioned.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        if self.rand(100) < f.drop_percent {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        let delay = || {
            let (lo, hi) = f.delay_ms;
            Duration::from_millis(lo + self.rand(hi.saturating_sub(lo) + 1))
        };
        let mut out = vec![delay()];
        if self.rand(100) < f.duplicate_percent {
            self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
            out.push(delay());
        }
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        out
    }
}

pub struct UdpProxy {
    pub listen: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl UdpProxy {
    /// Relay between a new loopback port (`listen`) and `upstream`, without faults at first.
    pub async fn start(upstream: SocketAddr, seed: u64) -> UdpProxy {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        back.connect(upstream).await.unwrap();
        let listen = front.local_addr().unwrap();
        let shared = Arc::new(Shared {
            faults: Mutex::new(Faults::default()),
            rng: Mutex::new(seed | 1),
            stats: ProxyStats::default(),
            client: Mutex::new(None),
        });
        let up = {
            let (front, back, shared) = (front.clone(), back.clone(), shared.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    let Ok((n, from)) = front.recv_from(&mut buf).await else {
                        continue;
                    };
                    *shared.client.lock().unwrap() = Some(from);
                    for d in shared.fate() {
                        let (back, data) = (back.clone(), buf[..n].to_vec());
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            let _ = back.send(&data).await;
                        });
                    }
                }
            })
        };
        let down = {
            let (front, back, shared) = (front.clone(), back.clone(), shared.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                loop {
                    // Errors here are ICMP "port unreachable" echoes while the hub is down.
                    let Ok(n) = back.recv(&mut buf).await else {
                        continue;
                    };
                    let Some(client) = *shared.client.lock().unwrap() else {
                        continue;
                    };
                    for d in shared.fate() {
                        let (front, data) = (front.clone(), buf[..n].to_vec());
                        tokio::spawn(async move {
                            tokio::time::sleep(d).await;
                            let _ = front.send_to(&data, client).await;
                        });
                    }
                }
            })
        };
        UdpProxy {
            listen,
            shared,
            tasks: vec![up, down],
        }
    }

    pub fn set(&self, f: Faults) {
        *self.shared.faults.lock().unwrap() = f;
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
