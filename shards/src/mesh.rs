//! The full mesh: one bounded SPSC request ring and one reply ring per ordered pair of shards, and the
//! per-shard "inbox" doorbell that wakes an idle receiver from another thread.
//!
//! Owns the only cross-thread state of the substrate (rings, doorbells, stop and liveness flags). Must not
//! know what the messages mean.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};

use futures_util::task::AtomicWaker;
use rtrb::{Consumer, Producer, RingBuffer};

/// A request as it travels on a ring: the sender's correlation slot and the message.
pub(crate) struct Request<M> {
    pub(crate) slot: u32,
    pub(crate) msg: M,
}

/// A reply as it travels back: the sender's correlation slot and the handler's answer.
pub(crate) struct Reply<R> {
    pub(crate) slot: u32,
    pub(crate) reply: R,
}

/// What one shard writes towards one peer.
pub(crate) struct Outbound<M, R> {
    pub(crate) requests: Producer<Request<M>>,
    pub(crate) replies: Producer<Reply<R>>,
}

/// What one shard reads from one peer.
pub(crate) struct Inbound<M, R> {
    pub(crate) requests: Consumer<Request<M>>,
    pub(crate) replies: Consumer<Reply<R>>,
}

impl<M, R> Inbound<M, R> {
    pub(crate) fn has_items(&self) -> bool {
        !self.requests.is_empty() || !self.replies.is_empty()
    }
}

/// One shard's ring ends, indexed by peer id (`None` at its own index).
pub(crate) struct ShardRings<M, R> {
    pub(crate) outbound: Vec<Option<Outbound<M, R>>>,
    pub(crate) inbound: Vec<Option<Inbound<M, R>>>,
}

/// Builds the rings for `count` shards, each holding `capacity` items.
pub(crate) fn build_mesh<M, R>(count: usize, capacity: usize) -> Vec<ShardRings<M, R>> {
    let mut outbound_requests: Vec<Vec<Option<Producer<Request<M>>>>> = empty_matrix(count);
    let mut inbound_requests: Vec<Vec<Option<Consumer<Request<M>>>>> = empty_matrix(count);
    let mut outbound_replies: Vec<Vec<Option<Producer<Reply<R>>>>> = empty_matrix(count);
    let mut inbound_replies: Vec<Vec<Option<Consumer<Reply<R>>>>> = empty_matrix(count);
    for sender in 0..count {
        for target in (0..count).filter(|&t| t != sender) {
            let (producer, consumer) = RingBuffer::new(capacity);
            outbound_requests[sender][target] = Some(producer);
            inbound_requests[target][sender] = Some(consumer);
            let (producer, consumer) = RingBuffer::new(capacity);
            outbound_replies[target][sender] = Some(producer);
            inbound_replies[sender][target] = Some(consumer);
        }
    }
    let mut shards = Vec::with_capacity(count);
    for shard in 0..count {
        let outbound = zip_ends(&mut outbound_requests[shard], &mut outbound_replies[shard])
            .map(|ends| ends.map(|(requests, replies)| Outbound { requests, replies }));
        let inbound = zip_ends(&mut inbound_requests[shard], &mut inbound_replies[shard])
            .map(|ends| ends.map(|(requests, replies)| Inbound { requests, replies }));
        shards.push(ShardRings {
            outbound: outbound.collect(),
            inbound: inbound.collect(),
        });
    }
    shards
}

fn empty_matrix<T>(count: usize) -> Vec<Vec<Option<T>>> {
    (0..count)
        .map(|_| (0..count).map(|_| None).collect())
        .collect()
}

fn zip_ends<'a, A, B>(
    left: &'a mut [Option<A>],
    right: &'a mut [Option<B>],
) -> impl Iterator<Item = Option<(A, B)>> + 'a {
    left.iter_mut()
        .zip(right.iter_mut())
        .map(|(a, b)| a.take().zip(b.take()))
}

/// A shard's doorbell and liveness flags, written by other threads. One cache line pair each.
#[repr(align(128))]
pub(crate) struct Inbox {
    waker: AtomicWaker,
    sleeping: AtomicBool,
    events: AtomicU64,
    run_returned: AtomicBool,
    closed: AtomicBool,
}

impl Inbox {
    fn new() -> Self {
        Self {
            waker: AtomicWaker::new(),
            sleeping: AtomicBool::new(false),
            events: AtomicU64::new(0),
            run_returned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// After pushing onto one of this shard's rings: wake it only if it went to sleep (batches wake-ups).
    pub(crate) fn ring_after_push(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// A control event (stop, a peer's run returned, a peer closed): always wake.
    pub(crate) fn notify_event(&self) {
        self.events.fetch_add(1, Ordering::AcqRel);
        fence(Ordering::SeqCst);
        self.sleeping.store(false, Ordering::Relaxed);
        self.waker.wake();
    }

    pub(crate) fn events(&self) -> u64 {
        self.events.load(Ordering::Acquire)
    }

    /// Consumer side, before sleeping: register, announce the sleep, then the caller re-checks for work.
    pub(crate) fn prepare_sleep(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Consumer side: work was found after `prepare_sleep`, so it stays awake.
    pub(crate) fn cancel_sleep(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn is_done_running(&self) -> bool {
        self.run_returned.load(Ordering::Acquire) || self.is_closed()
    }
}

/// Everything the shard threads (and stop handles) share.
pub(crate) struct Shared {
    inboxes: Box<[Inbox]>,
    stop_requested: AtomicBool,
}

impl Shared {
    pub(crate) fn new(count: usize) -> Self {
        Self {
            inboxes: (0..count).map(|_| Inbox::new()).collect(),
            stop_requested: AtomicBool::new(false),
        }
    }

    pub(crate) fn inbox(&self, shard: usize) -> &Inbox {
        &self.inboxes[shard]
    }

    pub(crate) fn request_stop(&self) {
        if !self.stop_requested.swap(true, Ordering::AcqRel) {
            self.notify_all();
        }
    }

    pub(crate) fn is_stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }

    /// Shard `shard`'s `run` returned (or was abandoned).
    pub(crate) fn mark_run_returned(&self, shard: usize) {
        self.inboxes[shard]
            .run_returned
            .store(true, Ordering::Release);
        self.notify_all();
    }

    /// Shard `shard` no longer reads its rings: requests to it will never be answered.
    pub(crate) fn mark_closed(&self, shard: usize) {
        self.inboxes[shard].closed.store(true, Ordering::Release);
        self.notify_all();
    }

    pub(crate) fn all_runs_returned(&self) -> bool {
        self.inboxes.iter().all(Inbox::is_done_running)
    }

    fn notify_all(&self) {
        for inbox in self.inboxes.iter() {
            inbox.notify_event();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ordered_pair_gets_its_own_request_and_reply_ring() {
        let mut shards = build_mesh::<u32, u64>(3, 2);
        for (id, rings) in shards.iter().enumerate() {
            assert!(rings.outbound[id].is_none() && rings.inbound[id].is_none());
            assert_eq!(rings.outbound.iter().flatten().count(), 2);
        }
        // shard 0 -> shard 2 request, shard 2 -> shard 0 reply
        let request = Request { slot: 7, msg: 42 };
        assert!(
            shards[0].outbound[2]
                .as_mut()
                .unwrap()
                .requests
                .push(request)
                .is_ok()
        );
        let got = shards[2].inbound[0]
            .as_mut()
            .unwrap()
            .requests
            .pop()
            .unwrap();
        assert_eq!((got.slot, got.msg), (7, 42));
        let reply = Reply { slot: 7, reply: 43 };
        assert!(
            shards[2].outbound[0]
                .as_mut()
                .unwrap()
                .replies
                .push(reply)
                .is_ok()
        );
        let got = shards[0].inbound[2]
            .as_mut()
            .unwrap()
            .replies
            .pop()
            .unwrap();
        assert_eq!((got.slot, got.reply), (7, 43));
        assert!(!shards[1].inbound[0].as_ref().unwrap().has_items());
    }

    #[test]
    fn rings_hold_exactly_their_capacity() {
        let mut shards = build_mesh::<u32, u32>(2, 2);
        let out = &mut shards[0].outbound[1].as_mut().unwrap().requests;
        assert!(out.push(Request { slot: 0, msg: 0 }).is_ok());
        assert!(out.push(Request { slot: 1, msg: 1 }).is_ok());
        assert!(out.push(Request { slot: 2, msg: 2 }).is_err());
    }

    #[test]
    fn runs_are_done_when_every_shard_returned_or_closed() {
        let shared = Shared::new(2);
        assert!(!shared.all_runs_returned());
        shared.mark_run_returned(0);
        assert!(!shared.all_runs_returned());
        shared.mark_closed(1);
        assert!(shared.all_runs_returned());
        assert!(shared.inbox(0).events() >= 2);
    }
}
