//! The in-flight queue of one client connection: one entry per request that expects a response,
//! in the order the client sent them.
//!
//! The broker answers a connection's requests in order, so the response at the head of the
//! upstream stream always belongs to the head of this queue; a mismatch is a protocol error.
//! Entries remember api key and api version, which are needed to read the response (its header
//! version, and whether a rewrite applies). Requests that Sluice answers itself carry the answer
//! (`local`) and are written back at their turn, so the client still sees its own order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use crate::runtime::event::Notify;

/// One request awaiting its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The client's correlation id (forwarded unchanged).
    pub correlation_id: i32,
    /// Api key of the request.
    pub api_key: i16,
    /// Api version of the request.
    pub api_version: i16,
    /// A response payload Sluice produced itself (no size prefix), sent at this entry's turn.
    pub local: Option<Bytes>,
    /// When the read that completed the request returned.
    pub received_at: Instant,
    /// When the write that carried it upstream completed (`None` until then, and for local
    /// answers).
    pub sent_at: Option<Instant>,
    /// A quota delay to report in the response's `throttle_time_ms` (0: none).
    pub throttle_ms: i32,
}

/// The queue, with wake-ups for both pumps of a session.
#[derive(Default)]
pub struct InFlightQueue {
    q: RefCell<VecDeque<InFlight>>,
    /// Notified when an entry is pushed (wakes the response pump).
    pushed: Notify,
    /// Notified when an entry is popped (wakes a request pump waiting for room or for drain).
    popped: Notify,
}

impl InFlightQueue {
    /// Appends an entry and wakes the response side.
    pub fn push(&self, e: InFlight) {
        self.q.borrow_mut().push_back(e);
        self.pushed.notify();
    }

    /// Marks every entry not yet marked as written upstream at `at` (they are the newest).
    pub fn stamp_sent(&self, at: Instant) {
        for e in self.q.borrow_mut().iter_mut().rev() {
            if e.sent_at.is_some() {
                break;
            }
            if e.local.is_none() {
                e.sent_at = Some(at);
            }
        }
    }

    /// Removes the head and wakes the request side.
    pub fn pop(&self) -> Option<InFlight> {
        let e = self.q.borrow_mut().pop_front();
        self.popped.notify();
        e
    }

    /// A copy of the head's identity: (correlation id, api key, api version, is local).
    pub fn head(&self) -> Option<(i32, i16, i16, bool)> {
        self.q.borrow().front().map(|e| {
            (
                e.correlation_id,
                e.api_key,
                e.api_version,
                e.local.is_some(),
            )
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.q.borrow().len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.q.borrow().is_empty()
    }

    /// Waits until the queue is not empty.
    pub async fn wait_nonempty(&self) {
        while self.is_empty() {
            self.pushed.notified().await;
        }
    }

    /// Waits until fewer than `limit` entries are queued.
    pub async fn wait_below(&self, limit: usize) {
        while self.len() >= limit {
            self.popped.notified().await;
        }
    }

    /// Waits until the queue is empty.
    pub async fn wait_empty(&self) {
        while !self.is_empty() {
            self.popped.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(c: i32) -> InFlight {
        InFlight {
            correlation_id: c,
            api_key: 0,
            api_version: 9,
            local: None,
            received_at: Instant::now(),
            sent_at: None,
            throttle_ms: 0,
        }
    }

    #[test]
    fn fifo_and_wakeups() {
        glommio::LocalExecutor::default().run(async {
            let q = std::rc::Rc::new(InFlightQueue::default());
            let waiter = glommio::spawn_local({
                let q = q.clone();
                async move {
                    q.wait_nonempty().await;
                    q.head()
                }
            });
            glommio::yield_if_needed().await;
            q.push(e(7));
            q.push(e(8));
            assert_eq!(waiter.await, Some((7, 0, 9, false)));
            let drained = glommio::spawn_local({
                let q = q.clone();
                async move { q.wait_empty().await }
            });
            assert_eq!(q.pop().map(|x| x.correlation_id), Some(7));
            assert_eq!(q.pop().map(|x| x.correlation_id), Some(8));
            drained.await;
            q.wait_below(1).await;
            q.push(e(9));
            let at = Instant::now();
            q.stamp_sent(at);
            q.push(e(10));
            assert_eq!(q.pop().and_then(|x| x.sent_at), Some(at));
            assert_eq!(q.pop().and_then(|x| x.sent_at), None);
        });
    }
}
