//! A single-shard, level-triggered event: once set it stays set, and every waiter wakes.
//!
//! Used for shutdown and for "queue changed" wake-ups inside one shard. `!Send` by construction.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A latch that tasks of one shard can wait on.
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Latch {
    /// A latch not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the latch and wakes every waiter.
    pub fn set(&self) {
        self.set.set(true);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    /// Whether the latch is set.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Completes once the latch is set.
    pub fn wait(&self) -> LatchWait<'_> {
        LatchWait { latch: self }
    }
}

/// Future of [`Latch::wait`].
pub struct LatchWait<'a> {
    latch: &'a Latch,
}

impl Future for LatchWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.set.get() {
            return Poll::Ready(());
        }
        let mut w = self.latch.waiters.borrow_mut();
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// An edge-triggered notification for one waiter at a time (the other side of a queue).
///
/// `notify` before `wait` is remembered, so a wake-up is never lost.
#[derive(Default)]
pub struct Notify {
    pending: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Wakes the waiter (or the next one to wait).
    pub fn notify(&self) {
        self.pending.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Completes after the next [`Notify::notify`] (or at once if one is pending).
    pub fn notified(&self) -> Notified<'_> {
        Notified { n: self }
    }
}

/// Future of [`Notify::notified`].
pub struct Notified<'a> {
    n: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.n.pending.replace(false) {
            return Poll::Ready(());
        }
        *self.n.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latch_wakes_all_and_stays_set() {
        glommio::LocalExecutor::default().run(async {
            let l = std::rc::Rc::new(Latch::new());
            let a = glommio::spawn_local({
                let l = l.clone();
                async move { l.wait().await }
            });
            let b = glommio::spawn_local({
                let l = l.clone();
                async move { l.wait().await }
            });
            glommio::yield_if_needed().await;
            assert!(!l.is_set());
            l.set();
            a.await;
            b.await;
            l.wait().await;
        });
    }

    #[test]
    fn notify_before_wait_is_not_lost() {
        glommio::LocalExecutor::default().run(async {
            let n = Notify::default();
            n.notify();
            n.notified().await;
        });
    }
}
