//! A shard's pool of parsed-request objects.
//!
//! Owns: lending a `BidRequest` to one auction and taking it back. A pooled request keeps its
//! buffers (the `imp` list, string lists) between uses, so the request path parses without
//! allocating once the pool is warm. Must not know: what a request holds or how it is answered.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

use net::openrtb::BidRequest;

/// Requests kept for reuse, at most; more in flight at once are allocated and freed as usual.
const POOLED_MAX: usize = 64;

/// One shard's idle request objects (shard-local: no locking).
#[derive(Default)]
pub struct RequestPool {
    /// Boxed: a request is ~2 KB, and lending one out and back moves a pointer, not the request.
    #[allow(clippy::vec_box)]
    idle: RefCell<Vec<Box<BidRequest>>>,
}

impl RequestPool {
    /// A request object for one auction (from the pool, or new); back to the pool when dropped.
    /// Its content is whatever it last held: parse into it with
    /// [`net::openrtb::parse_bid_request_reusing`], which resets it first.
    pub fn lend(&self) -> Lent<'_> {
        let request = self.idle.borrow_mut().pop().unwrap_or_default();
        Lent {
            pool: self,
            request: Some(request),
        }
    }

    fn take_back(&self, request: Box<BidRequest>) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < POOLED_MAX {
            idle.push(request);
        }
    }

    /// Requests waiting in the pool.
    pub fn idle(&self) -> usize {
        self.idle.borrow().len()
    }
}

/// A request lent by a [`RequestPool`].
pub struct Lent<'a> {
    pool: &'a RequestPool,
    /// `Some` until dropped.
    request: Option<Box<BidRequest>>,
}

impl Deref for Lent<'_> {
    type Target = BidRequest;
    fn deref(&self) -> &BidRequest {
        self.request.as_deref().expect("lent until dropped")
    }
}

impl DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut BidRequest {
        self.request.as_deref_mut().expect("lent until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(request) = self.request.take() {
            self.pool.take_back(request);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_request_is_lent_again_with_its_buffers() {
        let pool = RequestPool::default();
        let body = br#"{"id":"a","imp":[{"id":"1"},{"id":"2"}],"cur":["USD"]}"#;
        let imp_buffer = {
            let mut lent = pool.lend();
            net::openrtb::parse_bid_request_reusing(body, &mut lent).unwrap();
            lent.imp.as_ptr()
        };
        assert_eq!(pool.idle(), 1);
        let mut lent = pool.lend();
        assert_eq!(pool.idle(), 0);
        net::openrtb::parse_bid_request_reusing(br#"{"id":"b","imp":[{"id":"3"}]}"#, &mut lent)
            .unwrap();
        assert_eq!(
            lent.imp.as_ptr(),
            imp_buffer,
            "the imp list kept its buffer"
        );
        assert_eq!(lent.id, "b");
        assert_eq!(lent.imp.len(), 1);
        assert!(lent.cur.is_empty());
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound() {
        let pool = RequestPool::default();
        let lent: Vec<_> = (0..POOLED_MAX + 5).map(|_| pool.lend()).collect();
        drop(lent);
        assert_eq!(pool.idle(), POOLED_MAX);
    }
}
