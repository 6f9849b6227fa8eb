//! A connection's bounded send queue, which costs no heap memory while it is
//! empty.
//!
//! tokio's bounded mpsc channel allocates its first block of 32 slots when
//! it is created, whatever its bound: 2.3 KiB of [`Outbound`] slots on
//! every connection, idle or not (measured with valgrind's DHAT, see
//! `benchmarks/realtime-scale/RESULTS.md`). This queue is a
//! `VecDeque` that allocates on its first push and gives its memory back
//! once a burst has drained, behind a std mutex (nothing awaits while it is
//! held) and a [`Notify`] for its one reader, the connection's writer task.
//!
//! [`Outbound`]: super::rooms::Outbound

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

/// A drained queue whose buffer grew past this many slots frees it, so
/// that one burst does not stay allocated on an idle connection; smaller
/// buffers are kept, since a connection that gets steady traffic would
/// otherwise allocate again for every message.
const KEEP_SLOTS: usize = 16;

/// Why [`SendQueue::try_push`] refused an item.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PushError {
    /// `capacity` items are waiting: the reader cannot keep up.
    Full,
    /// The reader has stopped.
    Closed,
}

#[derive(Debug)]
pub(crate) struct SendQueue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> SendQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A poisoned lock only means a panic elsewhere mid-push; the deque
        // is still whole.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` without waiting.
    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.items.len() >= self.capacity {
            return Err(PushError::Full);
        }
        state.items.push_back(item);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, waiting for one. Cancel-safe: an item is only taken
    /// in the poll that returns it.
    pub(crate) async fn pop(&self) -> T {
        loop {
            // Created before the check: a push between the check and the
            // await leaves a permit that this wait consumes at once.
            let pushed = self.ready.notified();
            if let Some(item) = self.try_pop() {
                return item;
            }
            pushed.await;
        }
    }

    /// The next item if one waits, without waiting.
    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut state = self.lock();
        let item = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
            state.items = VecDeque::new();
        }
        item
    }

    /// Refuses every later push and drops what waits: the reader is gone.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_the_bound_holds() {
        let queue = SendQueue::new(2);
        assert_eq!(queue.try_push(1), Ok(()));
        assert_eq!(queue.try_push(2), Ok(()));
        assert_eq!(queue.try_push(3), Err(PushError::Full));
        assert_eq!(queue.pop().await, 1);
        assert_eq!(queue.try_push(3), Ok(()));
        assert_eq!((queue.pop().await, queue.pop().await), (2, 3));
        queue.close();
        assert_eq!(queue.try_push(4), Err(PushError::Closed));
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_a_push() {
        let queue = std::sync::Arc::new(SendQueue::new(4));
        let reader = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.pop().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(queue.try_push("hello"), Ok(()));
        assert_eq!(reader.await.ok(), Some("hello"));
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_memory_back() {
        let queue = SendQueue::new(1000);
        for n in 0..100 {
            assert_eq!(queue.try_push(n), Ok(()));
        }
        for n in 0..100 {
            assert_eq!(queue.pop().await, n);
        }
        assert_eq!(queue.lock().items.capacity(), 0);
        // A small buffer is kept for steady traffic.
        assert_eq!(queue.try_push(1), Ok(()));
        assert_eq!(queue.pop().await, 1);
        assert!(queue.lock().items.capacity() > 0);
    }
}
