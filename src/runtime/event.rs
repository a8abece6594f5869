//! Single-shard wake-up primitives: [`Latch`] (level-triggered, for shutdown) and [`Notify`]
//! (edge-triggered, one waiter at a time, for "queue changed").
//!
//! Both keep their state in `Cell`/`RefCell`, so they are not `Sync` and the futures that borrow
//! them are not `Send`: they live and are awaited on one shard. A waiter's future that is dropped
//! before it completes takes its registration with it, so what they hold is bounded by the
//! waiters alive now, never by how many have ever waited. No waker is dropped or woken while
//! their `RefCell` is borrowed, so a waker that re-enters (or drops a task that holds another of
//! their futures) cannot hit a borrow panic.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A latch that tasks of one shard can wait on: once set it stays set, and every waiter wakes.
///
/// Owns the wakers of the [`LatchWait`] futures that are pending on it now, one slot per future,
/// in a slab (`Vec<Option<Waker>>` plus a free list). A future takes a slot on its first pending
/// poll, replaces its waker in place on later polls (only if the waker changed), and gives the
/// slot back when dropped, so the slab holds the live waiters only and its length is the peak
/// number of waiters pending at once.
///
/// Costs: [`Latch::wait`] allocates nothing; a pending poll is O(1) (amortized for the first);
/// dropping a pending future is O(1); [`Latch::is_set`] and [`Latch::waiters`] are O(1);
/// [`Latch::set`] is O(slab length) and frees the slab.
#[derive(Default)]
pub struct Latch {
    set: Cell<bool>,
    waiters: RefCell<Waiters>,
}

/// The slab of a [`Latch`]: `slots[i]` is `Some` iff slot `i` is registered, and `free` lists
/// exactly the `None` slots.
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Waiters {
    fn insert(&mut self, waker: Waker) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(waker);
                i
            }
            None => {
                self.slots.push(Some(waker));
                self.slots.len() - 1
            }
        }
    }

    /// Frees slot `i`, giving back its waker (for the caller to drop outside the borrow).
    fn remove(&mut self, i: usize) -> Option<Waker> {
        let w = self.slots.get_mut(i).and_then(Option::take);
        if w.is_some() {
            self.free.push(i);
        }
        w
    }

    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

impl Latch {
    /// A latch not yet set, with no waiters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the latch and wakes every registered waiter, leaving none registered. O(slab
    /// length); a second call does nothing.
    pub fn set(&self) {
        if self.set.replace(true) {
            return;
        }
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters.slots.into_iter().flatten() {
            w.wake();
        }
    }

    /// Whether the latch is set. O(1).
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// The number of registered waiters: [`LatchWait`] futures that were polled while the latch
    /// was unset and are neither dropped nor woken by [`Latch::set`] yet. O(1). For tests and
    /// metrics.
    pub fn waiters(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Completes once the latch is set. The future registers on its first pending poll and
    /// deregisters when dropped.
    pub fn wait(&self) -> LatchWait<'_> {
        LatchWait {
            latch: self,
            slot: None,
        }
    }
}

/// Future of [`Latch::wait`]. Holds its slot in the latch's slab while pending; dropping it
/// frees the slot (O(1)).
pub struct LatchWait<'a> {
    latch: &'a Latch,
    /// Our slot while registered and the latch unset. [`Latch::set`] clears the whole slab and the
    /// latch never unsets, so once it is set a stale index here is never used.
    slot: Option<usize>,
}

impl Future for LatchWait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.latch.set.get() {
            this.slot = None;
            return Poll::Ready(());
        }
        let mut ws = this.latch.waiters.borrow_mut();
        let replaced = match this.slot {
            Some(i) => match &mut ws.slots[i] {
                Some(w) if w.will_wake(cx.waker()) => None,
                entry => entry.replace(cx.waker().clone()),
            },
            None => {
                this.slot = Some(ws.insert(cx.waker().clone()));
                None
            }
        };
        drop(ws);
        drop(replaced);
        Poll::Pending
    }
}

impl Drop for LatchWait<'_> {
    fn drop(&mut self) {
        if let Some(i) = self.slot.take() {
            if !self.latch.set.get() {
                let w = self.latch.waiters.borrow_mut().remove(i);
                drop(w);
            }
        }
    }
}

/// An edge-triggered notification for one waiter at a time (the other side of a queue).
///
/// `notify` before `wait` is remembered, so a wake-up is never lost. Owns at most one waker: that
/// of the [`Notified`] future polled last, which replaces any earlier one. A pending future that
/// is dropped clears its waker if it is still the registered one. Every operation is O(1).
#[derive(Default)]
pub struct Notify {
    pending: Cell<bool>,
    /// The registered waiter: the id of its [`Notified`] and its waker.
    waker: RefCell<Option<(u64, Waker)>>,
    next_id: Cell<u64>,
}

impl Notify {
    /// Wakes the waiter (or the next one to wait).
    pub fn notify(&self) {
        self.pending.set(true);
        let w = self.waker.borrow_mut().take();
        if let Some((_, w)) = w {
            w.wake();
        }
    }

    /// Completes after the next [`Notify::notify`] (or at once if one is pending).
    pub fn notified(&self) -> Notified<'_> {
        Notified { n: self, id: None }
    }

    /// Takes the registered waker if it is `id`'s (to drop outside the borrow).
    fn deregister(&self, id: u64) -> Option<(u64, Waker)> {
        let mut slot = self.waker.borrow_mut();
        if slot.as_ref().is_some_and(|(i, _)| *i == id) {
            slot.take()
        } else {
            None
        }
    }
}

/// Future of [`Notify::notified`]. Registers its waker (O(1)) on each pending poll, cloning it
/// only if it changed; dropping it while pending clears that registration.
pub struct Notified<'a> {
    n: &'a Notify,
    /// Our id once we have registered.
    id: Option<u64>,
}

impl Future for Notified<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.n.pending.replace(false) {
            if let Some(id) = this.id.take() {
                drop(this.n.deregister(id));
            }
            return Poll::Ready(());
        }
        let id = *this.id.get_or_insert_with(|| {
            let id = this.n.next_id.get();
            this.n.next_id.set(id.wrapping_add(1));
            id
        });
        let mut slot = this.n.waker.borrow_mut();
        let replaced = match &*slot {
            Some((i, w)) if *i == id && w.will_wake(cx.waker()) => None,
            _ => slot.replace((id, cx.waker().clone())),
        };
        drop(slot);
        drop(replaced);
        Poll::Pending
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            drop(self.n.deregister(id));
        }
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

    /// Issue 11: 100,000 short sessions, each racing `latch.wait()` against its own quick end in
    /// its own task (so each brings its own waker), must leave only the long-lived waiters
    /// registered.
    #[test]
    fn latch_forgets_waiters_of_ended_sessions() {
        const LIVE: usize = 10;
        const SESSIONS: usize = 100_000;
        const BATCH: usize = 1_000;
        glommio::LocalExecutor::default().run(async {
            let l = std::rc::Rc::new(Latch::new());
            let woken = std::rc::Rc::new(Cell::new(0usize));
            let live: Vec<_> = (0..LIVE)
                .map(|_| {
                    let (l, woken) = (l.clone(), woken.clone());
                    glommio::spawn_local(async move {
                        l.wait().await;
                        woken.set(woken.get() + 1);
                    })
                })
                .collect();
            futures_lite::future::yield_now().await;
            assert_eq!(l.waiters(), LIVE);
            let started = std::time::Instant::now();
            for _ in 0..SESSIONS / BATCH {
                let batch: Vec<_> = (0..BATCH)
                    .map(|_| {
                        let l = l.clone();
                        glommio::spawn_local(async move {
                            // Pending once (registers), polled again (same waker), then ends.
                            futures_lite::future::or(l.wait(), futures_lite::future::yield_now())
                                .await;
                        })
                    })
                    .collect();
                for t in batch {
                    t.await;
                }
            }
            eprintln!(
                "{SESSIONS} sessions in {:?}; waiters left: {}",
                started.elapsed(),
                l.waiters()
            );
            assert_eq!(l.waiters(), LIVE);
            assert_eq!(woken.get(), 0);
            l.set();
            assert_eq!(l.waiters(), 0);
            for t in live {
                t.await;
            }
            assert_eq!(woken.get(), LIVE);
        });
    }

    /// A waker that counts its wakes.
    struct Counter(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counter {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn counter() -> (std::sync::Arc<Counter>, Waker) {
        let c = std::sync::Arc::new(Counter(std::sync::atomic::AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    fn wakes(c: &Counter) -> usize {
        c.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn poll_with<F: Future + Unpin>(f: &mut F, w: &Waker) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(w))
    }

    #[test]
    fn latch_wait_polled_again_keeps_one_entry_and_wakes_the_newest_waker() {
        let l = Latch::new();
        let (a, wa) = counter();
        let (b, wb) = counter();
        let mut f = l.wait();
        assert!(poll_with(&mut f, &wa).is_pending());
        assert!(poll_with(&mut f, &wa).is_pending());
        assert_eq!(l.waiters(), 1);
        assert!(poll_with(&mut f, &wb).is_pending());
        assert_eq!(l.waiters(), 1);
        // The replaced waker is released, not kept in the latch.
        assert_eq!(std::sync::Arc::strong_count(&a), 2);
        l.set();
        assert_eq!(l.waiters(), 0);
        assert_eq!((wakes(&a), wakes(&b)), (0, 1));
        assert!(poll_with(&mut f, &wb).is_ready());
    }

    #[test]
    fn latch_wait_dropped_before_set_deregisters_and_set_after_drop_is_fine() {
        let l = Latch::new();
        let (a, wa) = counter();
        let (b, wb) = counter();
        let mut fa = l.wait();
        let mut fb = l.wait();
        assert!(poll_with(&mut fa, &wa).is_pending());
        assert!(poll_with(&mut fb, &wb).is_pending());
        assert_eq!(l.waiters(), 2);
        drop(fa);
        assert_eq!(l.waiters(), 1);
        assert_eq!(
            std::sync::Arc::strong_count(&a),
            2,
            "the dropped waiter's waker is freed"
        );
        // The freed slot is reused, the slab does not grow.
        let (c, wc) = counter();
        let mut fc = l.wait();
        assert!(poll_with(&mut fc, &wc).is_pending());
        assert_eq!(l.waiters(), 2);
        drop(fc);
        // Never polled: never registered.
        drop(l.wait());
        assert_eq!(l.waiters(), 1);
        l.set();
        assert_eq!((wakes(&a), wakes(&b), wakes(&c)), (0, 1, 0));
        assert_eq!(l.waiters(), 0);
        // Dropping a future registered before the set, after it, touches nothing.
        drop(fb);
        l.set();
        assert_eq!(wakes(&b), 1);
        let mut late = l.wait();
        assert!(poll_with(&mut late, &wa).is_ready());
        assert_eq!(l.waiters(), 0);
    }

    #[test]
    fn notified_dropped_while_pending_releases_its_waker() {
        let n = Notify::default();
        let (a, wa) = counter();
        let (b, wb) = counter();
        let mut fa = n.notified();
        assert!(poll_with(&mut fa, &wa).is_pending());
        assert!(poll_with(&mut fa, &wa).is_pending());
        // `a`, `wa` and the registered clone (one, not one per poll).
        assert_eq!(std::sync::Arc::strong_count(&a), 3);
        drop(fa);
        assert_eq!(std::sync::Arc::strong_count(&a), 2);
        // A newer waiter's registration survives an older one's drop.
        let mut f1 = n.notified();
        let mut f2 = n.notified();
        assert!(poll_with(&mut f1, &wa).is_pending());
        assert!(poll_with(&mut f2, &wb).is_pending());
        drop(f1);
        n.notify();
        assert_eq!((wakes(&a), wakes(&b)), (0, 1));
        assert!(poll_with(&mut f2, &wb).is_ready());
        // The notify-before-wait edge was consumed by f2.
        let mut f3 = n.notified();
        assert!(poll_with(&mut f3, &wb).is_pending());
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
