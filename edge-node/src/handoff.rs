//! The hand-over between the writer and the persister: one pending batch that the writer
//! keeps adding to while the persister is busy, and that the persister takes whole as soon as
//! it is free.
//!
//! Why not a channel of groups: with a queue, a group built while the disk is busy waits
//! behind every group queued before it, each paying its own flush (measured at 2,000 bets/s:
//! a group waited ~1.5 ms in a one-slot channel plus ~0.6 ms for the writer to get its next
//! group into it, on top of its own ~0.9 ms flush). Here whatever arrived during a flush is
//! written by the next flush, so a request waits for at most the flush in progress plus its
//! own — the least group commit can do.

use std::sync::{Condvar, Mutex};

/// What can be merged into the pending batch.
pub trait Batch {
    /// Append `later` (everything in it was decided after everything in `self`).
    fn merge(&mut self, later: Self);
    /// Records held (for the back-pressure bound).
    fn records(&self) -> usize;
}

pub struct Handoff<B> {
    state: Mutex<State<B>>,
    /// Signalled when a batch is pending or the writer has stopped.
    ready: Condvar,
    /// Signalled when the persister has taken the pending batch.
    room: Condvar,
    /// The writer waits (back-pressure) while this many records are pending.
    records_max: usize,
}

struct State<B> {
    pending: Option<B>,
    closed: bool,
}

impl<B: Batch> Handoff<B> {
    pub fn new(records_max: usize) -> Handoff<B> {
        Handoff {
            state: Mutex::new(State {
                pending: None,
                closed: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            records_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<B>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add `batch` to the pending one (waiting first while the pending one is full).
    pub fn put(&self, batch: B) {
        let mut s = self.lock();
        while s
            .pending
            .as_ref()
            .is_some_and(|p| p.records() >= self.records_max)
        {
            s = self.room.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        match &mut s.pending {
            Some(p) => p.merge(batch),
            None => s.pending = Some(batch),
        }
        drop(s);
        self.ready.notify_one();
    }

    /// The writer has stopped: `take` returns what is pending, then `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Wait for a pending batch and take all of it.
    pub fn take(&self) -> Option<B> {
        let mut s = self.lock();
        loop {
            if let Some(b) = s.pending.take() {
                drop(s);
                self.room.notify_one();
                return Some(b);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    impl Batch for Vec<u32> {
        fn merge(&mut self, later: Self) {
            self.extend(later);
        }
        fn records(&self) -> usize {
            self.len()
        }
    }

    #[test]
    fn batches_put_while_busy_are_taken_together_in_order() {
        let h = Handoff::new(100);
        h.put(vec![1, 2]);
        h.put(vec![3]);
        assert_eq!(h.take(), Some(vec![1, 2, 3]));
        h.put(vec![4]);
        h.close();
        assert_eq!(h.take(), Some(vec![4]));
        assert_eq!(h.take(), None);
    }

    #[test]
    fn a_full_pending_batch_holds_the_writer_until_taken() {
        let h = Arc::new(Handoff::new(2));
        h.put(vec![1, 2]);
        let h2 = h.clone();
        let writer = std::thread::spawn(move || {
            h2.put(vec![3]);
            h2.close();
        });
        // The pending batch is full, so the writer's batch cannot join it.
        assert_eq!(h.take(), Some(vec![1, 2]));
        assert_eq!(h.take(), Some(vec![3]));
        assert_eq!(h.take(), None);
        writer.join().unwrap();
    }
}
