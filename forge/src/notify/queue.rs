//! A bounded queue that never makes the sender wait: when full, the oldest
//! entry is dropped to make room.
//!
//! The sync loop calls `send` from its own path; a receiver that is down for
//! an hour must cost it nothing. Newer news is worth more than older, so the
//! oldest goes. Owns only the queue; counting the drop is the caller's.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// A drop-oldest queue with one consumer.
#[derive(Debug)]
pub(crate) struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    ready: Notify,
}

impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue { items: Mutex::new(VecDeque::with_capacity(capacity)), capacity, ready: Notify::new() }
    }

    /// Adds `item`; returns true when the oldest entry was dropped for it.
    pub(crate) fn push(&self, item: T) -> bool {
        let dropped = {
            let mut items = self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let dropped = items.len() >= self.capacity && items.pop_front().is_some();
            items.push_back(item);
            dropped
        };
        // Stores a permit when the consumer is not waiting yet, so a push
        // between its check and its wait is not lost.
        self.ready.notify_one();
        dropped
    }

    /// Waits for the oldest entry.
    pub(crate) async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.items.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop_front() {
                return item;
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drops_the_oldest_when_full() {
        let queue = Queue::new(2);
        assert!(!queue.push(1));
        assert!(!queue.push(2));
        assert!(queue.push(3));
        assert_eq!(queue.pop().await, 2);
        assert_eq!(queue.pop().await, 3);
    }

    #[tokio::test]
    async fn pop_waits_for_a_push() {
        let queue = std::sync::Arc::new(Queue::new(4));
        let consumer = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop().await }
        });
        tokio::task::yield_now().await;
        queue.push("late");
        assert_eq!(consumer.await.unwrap(), "late");
    }
}
