//! The stream fan-out thread: owns the sockets of the `GET /v1/odds/stream` clients whose
//! connection was handed over by the stream listener (`api/stream_listener.rs`) and writes
//! every published frame to each of them directly.
//!
//! Why a thread and not one task per client: every change reaches every client, so with 200
//! clients one publication is 200 socket writes. Done by 200 hyper connection tasks, each write
//! also costs a task wake-up, a scheduler hand-off between runtime threads and a body poll —
//! more CPU than the write itself, taken from the commit path on a small machine. Here one
//! thread writes the shared frame to every socket back to back; while it is busy, further
//! publications queue and are written together on its next round (one write per client per
//! round, however many changes it carries), so the cost adapts to the load.
//!
//! With `[odds] stream_fanout_threads` above 1 the clients are split over that many such
//! threads, each writing the same frames to its share (for machines with cores to spare).
//!
//! Order: the hub sends frames (to every thread) and new clients (to one thread) on the
//! threads' channels under its view lock, so a client's snapshot and the frames after it are
//! exactly consecutive. A client that cannot
//! keep up keeps what it has not taken in its own buffer; past `PENDING_MAX` it is disconnected
//! (logged, counted), never allowed to hold the others up. It reconnects and gets a snapshot.

use bytes::Bytes;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bytes a client may leave unread (beyond its socket buffer) before it is disconnected.
const PENDING_MAX: usize = 8 * 1024 * 1024;
/// How often a client with unread data is retried when nothing new is published.
const RETRY: Duration = Duration::from_millis(5);

pub enum ToFanout {
    /// Complete SSE frames, in sequence order.
    Frames(Bytes),
    /// A new client: its socket (non-blocking, response head already written) and its first
    /// bytes (the snapshot event).
    Client(TcpStream, Bytes),
    /// The node is shutting down: flush what can be flushed, close every client's socket and
    /// stop (clients see the stream end and reconnect, to this node once it is back).
    Close,
}

/// Counters shown by `GET /v1/feed/stats`.
#[derive(Default)]
pub struct FanoutStats {
    pub clients: AtomicU64,
    /// Clients disconnected because they fell `PENDING_MAX` behind.
    pub dropped_slow: AtomicU64,
    /// Rounds that wrote published frames to the clients, summed over the fan-out threads
    /// (each round: one write per client of that thread, however many changes it carries).
    pub rounds: AtomicU64,
}

struct Client {
    sock: TcpStream,
    /// What the socket has not accepted yet, oldest first.
    pending: Vec<u8>,
    /// Written so far from `pending`.
    pending_at: usize,
}

enum Wrote {
    Ok,
    Gone,
}

impl Client {
    fn unsent(&self) -> usize {
        self.pending.len() - self.pending_at
    }

    /// Write what is pending, then `data`; whatever the socket does not take is kept.
    fn send(&mut self, data: &[u8]) -> Wrote {
        if self.unsent() > 0 {
            self.pending.extend_from_slice(data);
            return self.flush();
        }
        let mut at = 0;
        while at < data.len() {
            match self.sock.write(&data[at..]) {
                Ok(0) => return Wrote::Gone,
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Wrote::Gone,
            }
        }
        if at < data.len() {
            self.pending.clear();
            self.pending_at = 0;
            self.pending.extend_from_slice(&data[at..]);
        }
        Wrote::Ok
    }

    fn flush(&mut self) -> Wrote {
        while self.unsent() > 0 {
            match self.sock.write(&self.pending[self.pending_at..]) {
                Ok(0) => return Wrote::Gone,
                Ok(n) => self.pending_at += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Wrote::Gone,
            }
        }
        if self.unsent() == 0 {
            self.pending.clear();
            self.pending_at = 0;
        } else if self.pending_at > self.pending.len() / 2 {
            self.pending.drain(..self.pending_at);
            self.pending_at = 0;
        }
        Wrote::Ok
    }
}

/// The fan-out threads; they end when this is dropped (the hub stopped).
pub struct Fanout {
    threads: Vec<std::sync::mpsc::Sender<ToFanout>>,
    next: std::sync::atomic::AtomicUsize,
    pub stats: Arc<FanoutStats>,
}

impl Fanout {
    pub fn start(threads: usize) -> Fanout {
        let stats = Arc::new(FanoutStats::default());
        Fanout {
            threads: (0..threads.max(1)).map(|_| spawn(stats.clone())).collect(),
            next: Default::default(),
            stats,
        }
    }

    /// Frames for every client (in sequence order).
    pub fn frames(&self, frames: &Bytes) {
        for t in &self.threads {
            let _ = t.send(ToFanout::Frames(frames.clone()));
        }
    }

    /// A new client, served by the next thread in turn.
    pub fn client(&self, sock: TcpStream, first: Bytes) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.threads.len();
        let _ = self.threads[i].send(ToFanout::Client(sock, first));
    }

    /// Close every client's stream and stop the threads (node shutdown). Without it the
    /// sockets stay open until the last handle on the odds hub is dropped, which for a node
    /// embedded in another process (tests, benches) can be never.
    pub fn close(&self) {
        for t in &self.threads {
            let _ = t.send(ToFanout::Close);
        }
    }
}

fn spawn(stats: Arc<FanoutStats>) -> std::sync::mpsc::Sender<ToFanout> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("odds-fanout".into())
        .spawn(move || run(rx, &stats))
        .expect("spawn odds fan-out thread");
    tx
}

fn run(rx: std::sync::mpsc::Receiver<ToFanout>, stats: &FanoutStats) {
    let mut clients: Vec<Client> = Vec::new();
    let mut frames: Vec<u8> = Vec::new();
    loop {
        let behind = clients.iter().any(|c| c.unsent() > 0);
        let first = if behind {
            match rx.recv_timeout(RETRY) {
                Ok(m) => Some(m),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        // Everything queued now goes out in this round: frames in one write per client; a
        // new client starts after the frames queued before it (which its snapshot includes).
        let mut next = first;
        let mut single: Option<Bytes> = None;
        while let Some(m) = next {
            match m {
                ToFanout::Frames(f) => {
                    if single.is_none() && frames.is_empty() {
                        single = Some(f); // the common case: no copy
                    } else {
                        if let Some(s) = single.take() {
                            frames.extend_from_slice(&s);
                        }
                        frames.extend_from_slice(&f);
                    }
                }
                ToFanout::Close => {
                    deliver(&mut clients, &mut single, &mut frames, stats);
                    // Counted out first, so a client that sees its stream end sees the count.
                    stats
                        .clients
                        .fetch_sub(clients.len() as u64, Ordering::Release);
                    for c in &mut clients {
                        let _ = c.flush();
                        let _ = c.sock.shutdown(std::net::Shutdown::Both);
                    }
                    return;
                }
                ToFanout::Client(sock, first) => {
                    deliver(&mut clients, &mut single, &mut frames, stats);
                    let mut c = Client {
                        sock,
                        pending: Vec::new(),
                        pending_at: 0,
                    };
                    if let Wrote::Ok = c.send(&first) {
                        clients.push(c);
                        stats.clients.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        deliver(&mut clients, &mut single, &mut frames, stats);
        if clients.iter().any(|c| c.unsent() > 0) {
            let before = clients.len();
            clients.retain_mut(|c| matches!(c.flush(), Wrote::Ok));
            let gone = (before - clients.len()) as u64;
            stats.clients.fetch_sub(gone, Ordering::Relaxed);
        }
    }
}

/// Write the frames gathered so far to every client; drop clients that are gone or too far
/// behind.
fn deliver(
    clients: &mut Vec<Client>,
    single: &mut Option<Bytes>,
    frames: &mut Vec<u8>,
    stats: &FanoutStats,
) {
    let data: &[u8] = match single.as_ref() {
        Some(s) => s,
        None if !frames.is_empty() => frames,
        None => return,
    };
    stats.rounds.fetch_add(1, Ordering::Relaxed);
    let before = clients.len();
    clients.retain_mut(|c| match c.send(data) {
        Wrote::Gone => false,
        Wrote::Ok if c.unsent() > PENDING_MAX => {
            stats.dropped_slow.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                peer = ?c.sock.peer_addr().ok(),
                unread_bytes = c.unsent(),
                "odds stream client too slow: disconnected (it reconnects for a new snapshot)"
            );
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
            false
        }
        Wrote::Ok => true,
    });
    let gone = (before - clients.len()) as u64;
    stats.clients.fetch_sub(gone, Ordering::Relaxed);
    *single = None;
    frames.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected pair: (server side for the fan-out, non-blocking; client side).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (server, client)
    }

    fn read_exactly(c: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.read_exact(&mut out).unwrap();
        out
    }

    #[test]
    fn every_client_gets_its_first_bytes_then_every_frame_in_order() {
        let f = Fanout::start(2);
        let (s1, mut c1) = pair();
        f.client(s1, Bytes::from_static(b"snap1;"));
        f.frames(&Bytes::from_static(b"a;"));
        let (s2, mut c2) = pair();
        // Joins after `a` (on the other thread): sees only what follows its own first bytes.
        f.client(s2, Bytes::from_static(b"snap2;"));
        for x in [&b"b;"[..], b"c;"] {
            f.frames(&Bytes::copy_from_slice(x));
        }
        assert_eq!(read_exactly(&mut c1, 12), b"snap1;a;b;c;");
        assert_eq!(read_exactly(&mut c2, 10), b"snap2;b;c;");
        assert_eq!(f.stats.clients.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn close_ends_every_stream_after_what_was_already_published() {
        let f = Fanout::start(2);
        let (s1, mut c1) = pair();
        let (s2, mut c2) = pair();
        f.client(s1, Bytes::from_static(b"snap1;"));
        f.client(s2, Bytes::from_static(b"snap2;"));
        f.frames(&Bytes::from_static(b"a;"));
        f.close();
        for (c, want) in [(&mut c1, &b"snap1;a;"[..]), (&mut c2, b"snap2;a;")] {
            c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut got = Vec::new();
            // read_to_end returns only at end of stream: the socket was closed.
            c.read_to_end(&mut got).unwrap();
            assert_eq!(got, want);
        }
        // Each thread counts its clients out before closing them (the wait is only for the
        // memory model: the ends seen above came from system calls made after the counting).
        let counted_out = (0..500).any(|_| {
            let zero = f.stats.clients.load(Ordering::Acquire) == 0;
            if !zero {
                std::thread::sleep(Duration::from_millis(10));
            }
            zero
        });
        assert!(counted_out, "clients still counted after close");
    }

    #[test]
    fn a_client_that_stops_reading_is_dropped_and_does_not_hold_up_the_others() {
        let f = Fanout::start(1);
        let (s_slow, c_slow) = pair();
        let (s_fast, mut c_fast) = pair();
        f.client(s_slow, Bytes::new());
        f.client(s_fast, Bytes::new());
        let frame = Bytes::from(vec![b'x'; 64 * 1024]);
        // The fast client reads each frame before the next is published; the slow one reads
        // nothing, so its backlog passes the bound (plus what its socket buffers hold).
        let frames = (PENDING_MAX / frame.len()) * 3;
        for _ in 0..frames {
            f.frames(&frame);
            let got = read_exactly(&mut c_fast, frame.len());
            assert!(got.iter().all(|b| *b == b'x'));
        }
        assert_eq!(f.stats.dropped_slow.load(Ordering::Relaxed), 1);
        assert_eq!(f.stats.clients.load(Ordering::Relaxed), 1);
        drop(c_slow);
    }
}
