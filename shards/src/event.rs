//! A shard-local, fire-once event with any number of waiting futures (used for "stopping").
//! Owns only waker bookkeeping; `!Send`, no atomics.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Fires once; every waiter then resolves. Waiter slots are reused, so memory is bounded by the number of
/// futures waiting at the same time.
#[derive(Default)]
pub(crate) struct LocalEvent {
    fired: Cell<bool>,
    waiters: RefCell<Waiters>,
}

#[derive(Default)]
struct Waiters {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl LocalEvent {
    pub(crate) fn is_fired(&self) -> bool {
        self.fired.get()
    }

    pub(crate) fn fire(&self) {
        if self.fired.replace(true) {
            return;
        }
        let wakers = std::mem::take(&mut self.waiters.borrow_mut().wakers);
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    fn register(&self, index: Option<usize>, waker: &Waker) -> usize {
        let mut waiters = self.waiters.borrow_mut();
        let index = match index {
            Some(index) => index,
            None => match waiters.free.pop() {
                Some(index) => index,
                None => {
                    waiters.wakers.push(None);
                    waiters.wakers.len() - 1
                }
            },
        };
        if let Some(slot) = waiters.wakers.get_mut(index) {
            *slot = Some(waker.clone());
        }
        index
    }

    fn unregister(&self, index: usize) {
        let Ok(mut waiters) = self.waiters.try_borrow_mut() else {
            return;
        };
        if let Some(slot) = waiters.wakers.get_mut(index) {
            *slot = None;
            waiters.free.push(index);
        }
    }
}

/// Something that holds a `LocalEvent` (lets the future keep its owner alive).
pub(crate) trait HasEvent {
    fn event(&self) -> &LocalEvent;
}

/// Resolves when the event fires.
pub(crate) struct EventWait<T: HasEvent> {
    owner: Rc<T>,
    index: Option<usize>,
}

impl<T: HasEvent> EventWait<T> {
    pub(crate) fn new(owner: Rc<T>) -> Self {
        Self { owner, index: None }
    }
}

impl<T: HasEvent> Future for EventWait<T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let event = this.owner.event();
        if event.is_fired() {
            return Poll::Ready(());
        }
        this.index = Some(event.register(this.index, cx.waker()));
        Poll::Pending
    }
}

impl<T: HasEvent> Drop for EventWait<T> {
    fn drop(&mut self) {
        if let Some(index) = self.index.take()
            && !self.owner.event().is_fired()
        {
            self.owner.event().unregister(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Owner(LocalEvent);
    impl HasEvent for Owner {
        fn event(&self) -> &LocalEvent {
            &self.0
        }
    }

    #[test]
    fn waiters_resolve_after_fire_and_slots_are_reused() {
        let owner = Rc::new(Owner(LocalEvent::default()));
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            let mut wait = Box::pin(EventWait::new(owner.clone()));
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(
            owner.0.waiters.borrow().wakers.len(),
            1,
            "dropped waiters free their slot"
        );
        let mut wait = Box::pin(EventWait::new(owner.clone()));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        owner.0.fire();
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        assert!(
            Box::pin(EventWait::new(owner))
                .as_mut()
                .poll(&mut cx)
                .is_ready()
        );
    }
}
