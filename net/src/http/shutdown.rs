//! Per-shard shutdown signal: `trigger(drain_deadline)` wakes every waiter on this shard.
//!
//! Owns the signal only (a `!Send` Rc + waker slab, no atomics). It does not know what the
//! waiters do with it; `serve` uses it to stop accepting and drain connections.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A cloneable, shard-local shutdown signal.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    drain_deadline: Cell<Option<Instant>>,
    waiters: RefCell<Waiters>,
}

/// Waker slots, reused: a waiter takes a slot on first poll and frees it when dropped.
#[derive(Default)]
struct Waiters {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("drain_deadline", &self.inner.drain_deadline.get())
            .finish()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire the signal: busy work should finish by `drain_deadline`, after which it is dropped.
    /// Only the first call counts.
    pub fn trigger(&self, drain_deadline: Instant) {
        if self.is_triggered() {
            return;
        }
        self.inner.drain_deadline.set(Some(drain_deadline));
        let wakers: Vec<Waker> = {
            let mut waiters = self.inner.waiters.borrow_mut();
            waiters.slots.iter_mut().filter_map(Option::take).collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Whether `trigger` was called.
    pub fn is_triggered(&self) -> bool {
        self.inner.drain_deadline.get().is_some()
    }

    /// The drain deadline given to `trigger`.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.inner.drain_deadline.get()
    }

    /// A future that completes once the signal has fired.
    pub fn wait(&self) -> ShutdownWait {
        ShutdownWait {
            inner: Rc::clone(&self.inner),
            slot: None,
        }
    }

    /// Completes at the drain deadline (never before `trigger`).
    pub async fn drain_deadline_passed(&self) {
        self.wait().await;
        if let Some(deadline) = self.drain_deadline() {
            monoio::time::sleep_until(monoio::time::Instant::from_std(deadline)).await;
        }
    }
}

/// Future returned by [`Shutdown::wait`].
pub struct ShutdownWait {
    inner: Rc<Inner>,
    slot: Option<usize>,
}

impl Future for ShutdownWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.inner.drain_deadline.get().is_some() {
            return Poll::Ready(());
        }
        let mut waiters = this.inner.waiters.borrow_mut();
        match this.slot {
            Some(slot) => match waiters.slots.get_mut(slot) {
                Some(Some(waker)) if same_task(waker, cx.waker()) => {}
                Some(entry) => *entry = Some(cx.waker().clone()),
                None => debug_assert!(false, "slot {slot} vanished"),
            },
            None => this.slot = Some(waiters.insert(cx.waker().clone())),
        }
        Poll::Pending
    }
}

/// Whether `stored` wakes the task `current` wakes. `Waker::will_wake` also compares vtable
/// addresses, and monoio's vtable is a generic constant that may be emitted more than once in a
/// binary: it said "no" for every poll of a connection's wait, so each request cloned and dropped
/// a waker. A monoio waker's data pointer is its task, so equal data pointers are the same task.
fn same_task(stored: &Waker, current: &Waker) -> bool {
    stored.will_wake(current) || std::ptr::eq(stored.data(), current.data())
}

impl Drop for ShutdownWait {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.inner.waiters.borrow_mut().remove(slot);
        }
    }
}

impl Waiters {
    fn insert(&mut self, waker: Waker) -> usize {
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(waker);
                slot
            }
            None => {
                self.slots.push(Some(waker));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize) {
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = None;
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waiters_complete_after_trigger_and_slots_are_reused() {
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let shutdown = Shutdown::new();
            let woken = Rc::new(Cell::new(0));
            for _ in 0..3 {
                let (shutdown, woken) = (shutdown.clone(), woken.clone());
                monoio::spawn(async move {
                    shutdown.wait().await;
                    woken.set(woken.get() + 1);
                });
            }
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(woken.get(), 0);
            assert_eq!(shutdown.inner.waiters.borrow().slots.len(), 3);
            let deadline = Instant::now() + Duration::from_millis(20);
            shutdown.trigger(deadline);
            shutdown.trigger(deadline + Duration::from_secs(60));
            monoio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(woken.get(), 3);
            assert_eq!(shutdown.drain_deadline(), Some(deadline));
            assert_eq!(shutdown.inner.waiters.borrow().free.len(), 3);
            shutdown.drain_deadline_passed().await;
            assert!(Instant::now() >= deadline);
        });
    }
}
