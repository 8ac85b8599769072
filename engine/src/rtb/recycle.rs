//! Reused per-shard buffers for the fan-out: a bounded free list of `Vec`s, handed out as
//! [`Recycled`] guards that give their buffer back (cleared) when dropped — also when a call's
//! future is cancelled at the cutoff. After warm-up a request's outbound bodies, DSP choices and
//! floors cost no allocation.
//!
//! Bounds: at most `kept_max` idle buffers are kept (the fan-out passes the most that can be in
//! use at once: DSP endpoints x `pool_conns_max`), and a buffer that grew past `capacity_max`
//! elements is freed instead of kept, so one huge request cannot pin memory.
//!
//! Owns: buffer reuse. Must not know: what the buffers hold. Shard-local (`Rc`, not `Send`).

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

struct Free<T> {
    bufs: RefCell<Vec<Vec<T>>>,
    kept_max: usize,
    capacity_max: usize,
}

/// A shard's free list of `Vec<T>`.
pub struct Recycler<T> {
    free: Rc<Free<T>>,
}

impl<T> Recycler<T> {
    pub fn new(kept_max: usize, capacity_max: usize) -> Recycler<T> {
        Recycler {
            free: Rc::new(Free {
                bufs: RefCell::new(Vec::with_capacity(kept_max.min(4096))),
                kept_max,
                capacity_max,
            }),
        }
    }

    /// An empty buffer: a kept one when there is one, else a new one with `capacity`.
    pub fn take(&self, capacity: usize) -> Recycled<T> {
        let buf = self
            .free
            .bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(capacity));
        debug_assert!(buf.is_empty());
        Recycled {
            buf,
            home: Rc::clone(&self.free),
        }
    }

    /// Idle buffers kept now.
    pub fn idle(&self) -> usize {
        self.free.bufs.borrow().len()
    }
}

/// A buffer on loan; returned to its [`Recycler`] on drop.
pub struct Recycled<T> {
    buf: Vec<T>,
    home: Rc<Free<T>>,
}

impl<T> Deref for Recycled<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.buf
    }
}

impl<T> DerefMut for Recycled<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.buf
    }
}

impl<T> Drop for Recycled<T> {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() == 0 || buf.capacity() > self.home.capacity_max {
            return;
        }
        buf.clear();
        let mut bufs = self.home.bufs.borrow_mut();
        if bufs.len() < self.home.kept_max {
            bufs.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_cleared_and_reused_within_bounds() {
        let r: Recycler<u8> = Recycler::new(2, 1024);
        let mut a = r.take(16);
        a.extend_from_slice(b"hello");
        let ptr = a.as_ptr();
        drop(a);
        assert_eq!(r.idle(), 1);
        let b = r.take(16);
        assert!(b.is_empty(), "returned cleared");
        assert_eq!(b.as_ptr(), ptr, "the same allocation is reused");
        // More loans than kept_max: only two come back.
        let (c, d) = (r.take(16), r.take(16));
        drop((b, c, d));
        assert_eq!(r.idle(), 2);
        // A buffer grown past capacity_max is freed, not kept.
        let mut big = r.take(16);
        big.resize(2048, 0);
        let small = r.take(16);
        drop(big);
        assert_eq!(r.idle(), 0);
        drop(small);
        assert_eq!(r.idle(), 1);
    }

    #[test]
    fn a_dropped_future_returns_its_buffer() {
        let r: Recycler<u8> = Recycler::new(4, 1024);
        let body = r.take(8);
        let fut = async move {
            let _held = body;
            std::future::pending::<()>().await;
        };
        drop(fut); // cancelled at the cutoff without ever running
        assert_eq!(r.idle(), 1);
    }
}
