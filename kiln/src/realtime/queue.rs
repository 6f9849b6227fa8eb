//! A connection's bounded send queue, which costs no heap memory while it is
//! empty.
//!
//! tokio's bounded mpsc channel allocates its first block of 32 slots when
//! it is created, whatever its bound: 2.3 KiB of [`Outbound`] slots on
//! every connection, idle or not (measured with valgrind's DHAT, see
//! `benchmarks/realtime-scale/RESULTS.md`). This queue keeps its first item
//! in place and only the ones behind it in a `VecDeque`, which it frees
//! once they have drained: a connection that gets a message at a time (or
//! none) never touches the heap for its queue. It sits behind a std mutex
//! (nothing awaits while it is held) and a [`Notify`] for its one reader,
//! the connection's writer.
//!
//! [`Outbound`]: super::rooms::Outbound

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

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
    /// The next item; `None` only when `behind` is empty too.
    first: Option<T>,
    /// The items after `first`; freed whenever it drains.
    behind: VecDeque<T>,
    closed: bool,
    /// Set by [`SendQueue::interrupt`]: the reader's waits end at once.
    interrupted: bool,
}

impl<T> State<T> {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.behind.len()
    }
}

impl<T> SendQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                first: None,
                behind: VecDeque::new(),
                closed: false,
                interrupted: false,
            }),
            ready: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        super::lock(&self.state)
    }

    /// Queues `item` without waiting.
    pub(crate) fn try_push(&self, item: T) -> Result<(), PushError> {
        let mut state = self.lock();
        if state.closed {
            return Err(PushError::Closed);
        }
        if state.len() >= self.capacity {
            return Err(PushError::Full);
        }
        if state.first.is_none() {
            state.first = Some(item);
        } else {
            state.behind.push_back(item);
        }
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, waiting for one; `None` once the queue is
    /// [interrupted](Self::interrupt), even with items waiting. Cancel-safe:
    /// an item is only taken in the poll that returns it.
    pub(crate) async fn pop(&self) -> Option<T> {
        loop {
            // Created before the check: a push between the check and the
            // await leaves a permit that this wait consumes at once.
            let pushed = self.ready.notified();
            {
                let mut state = self.lock();
                if state.interrupted {
                    return None;
                }
                if let Some(item) = Self::take(&mut state) {
                    return Some(item);
                }
            }
            pushed.await;
        }
    }

    /// The next item if one waits, without waiting.
    pub(crate) fn try_pop(&self) -> Option<T> {
        Self::take(&mut self.lock())
    }

    fn take(state: &mut State<T>) -> Option<T> {
        let item = state.first.take();
        state.first = state.behind.pop_front();
        if state.behind.is_empty() && state.behind.capacity() > 0 {
            state.behind = VecDeque::new();
        }
        item
    }

    /// Ends the reader's current or next [`pop`](Self::pop) with `None`:
    /// the connection is closing, and what waits gives way to the close.
    pub(crate) fn interrupt(&self) {
        self.lock().interrupted = true;
        self.ready.notify_one();
    }

    /// Refuses every later push and drops what waits: the reader is gone.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.first = None;
        state.behind = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_the_bound_holds() {
        let queue = SendQueue::new(2);
        assert_eq!(queue.try_push(1), Ok(()));
        assert_eq!(queue.try_push(2), Ok(()));
        assert_eq!(queue.try_push(3), Err(PushError::Full));
        assert_eq!(queue.pop().await, Some(1));
        assert_eq!(queue.try_push(3), Ok(()));
        assert_eq!((queue.pop().await, queue.pop().await), (Some(2), Some(3)));
        queue.close();
        assert_eq!(queue.try_push(4), Err(PushError::Closed));
    }

    /// A reader already waiting on `queue` (spawned, then given a turn).
    async fn waiting_reader<T: Send + 'static>(
        queue: &Arc<SendQueue<T>>,
    ) -> tokio::task::JoinHandle<Option<T>> {
        let reader = tokio::spawn({
            let queue = Arc::clone(queue);
            async move { queue.pop().await }
        });
        tokio::task::yield_now().await;
        reader
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_a_push() {
        let queue = Arc::new(SendQueue::new(4));
        let reader = waiting_reader(&queue).await;
        assert_eq!(queue.try_push("hello"), Ok(()));
        assert_eq!(reader.await.ok(), Some(Some("hello")));
    }

    #[tokio::test]
    async fn an_interrupt_ends_a_waiting_pop_and_overtakes_what_waits() {
        let queue = Arc::new(SendQueue::new(4));
        let reader = waiting_reader(&queue).await;
        queue.interrupt();
        assert_eq!(reader.await.ok(), Some(None::<u8>));
        assert_eq!(queue.try_push(1), Ok(()));
        assert_eq!(queue.pop().await, None);
    }

    #[tokio::test]
    async fn a_drained_burst_gives_its_memory_back() {
        let queue = SendQueue::new(1000);
        for n in 0..100 {
            assert_eq!(queue.try_push(n), Ok(()));
        }
        for n in 0..100 {
            assert_eq!(queue.pop().await, Some(n));
        }
        assert_eq!(queue.lock().behind.capacity(), 0);
        // One item at a time never reaches the heap.
        assert_eq!(queue.try_push(1), Ok(()));
        assert_eq!(queue.lock().behind.capacity(), 0);
        assert_eq!(queue.pop().await, Some(1));
    }
}
