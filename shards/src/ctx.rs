//! The per-shard context handed to services: identity, the service instance, `invoke_on`, stats and stop.
//!
//! Owns the shard-local half of the mesh (outbound ring ends, correlation tables, counters). Everything here
//! is `!Send` and touched only by its own shard thread: no locks, no atomics except the doorbell ring.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::StopHandle;
use crate::config::{Driver, ShardId};
use crate::error::MeshError;
use crate::event::{EventWait, HasEvent, LocalEvent};
use crate::mesh::{Outbound, Reply, Request, Shared};
use crate::pending::PendingTable;

/// A service instantiated once per shard (Seastar's `sharded<T>` shape).
pub trait Service: Sized + 'static {
    /// Request sent to another shard with `invoke_on`.
    type Msg: Send + 'static;
    /// Its answer.
    type Reply: Send + 'static;
    /// The shard's main task (e.g. the engine's accept loop). Spawned once per shard after construction.
    /// Should return when `ctx.stopping()` resolves (after draining its own work).
    fn run(self: Rc<Self>, ctx: ShardCtx<Self>) -> impl Future<Output = ()>;
    /// Handle a message another shard sent with `invoke_on`; runs on this shard, may await.
    fn handle(
        self: Rc<Self>,
        ctx: ShardCtx<Self>,
        from: ShardId,
        msg: Self::Msg,
    ) -> impl Future<Output = Self::Reply>;
}

/// A snapshot of one shard's mesh and stall counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Requests this shard sent to other shards.
    pub hops_sent: u64,
    /// Requests this shard received from other shards.
    pub hops_received: u64,
    /// `invoke_on` calls rejected because `ring_capacity` requests were already in flight to the target.
    pub ring_full: u64,
    /// Requests in flight from this shard, indexed by target shard (0 at this shard's own index).
    pub in_flight: Vec<usize>,
    /// Times a task held this shard longer than `stall_threshold`.
    pub stalls: u64,
    /// Longest stall seen, microseconds.
    pub stall_us_max: u64,
    /// Sum of all stalls, microseconds.
    pub stall_us_total: u64,
}

#[derive(Default)]
struct Counters {
    hops_sent: Cell<u64>,
    hops_received: Cell<u64>,
    ring_full: Cell<u64>,
    stalls: Cell<u64>,
    stall_us_max: Cell<u64>,
    stall_us_total: Cell<u64>,
}

fn bump(cell: &Cell<u64>) {
    cell.set(cell.get().wrapping_add(1));
}

/// The sending half towards one peer plus the slots of requests in flight to it.
pub(crate) struct PeerLink<S: Service> {
    out: Outbound<S::Msg, S::Reply>,
    pending: PendingTable<S::Reply>,
    /// Known (by this shard) to no longer read its rings.
    closed: bool,
}

/// Identity and fixed settings of one shard.
pub(crate) struct ShardSettings {
    pub(crate) id: ShardId,
    pub(crate) count: usize,
    pub(crate) driver: Driver,
    pub(crate) ring_capacity: usize,
    pub(crate) stall_threshold: Duration,
    pub(crate) stop_timeout: Duration,
}

/// Everything one shard owns; reached through `ShardCtx` (an `Rc`).
pub(crate) struct ShardLocal<S: Service> {
    pub(crate) settings: ShardSettings,
    pub(crate) shared: Arc<Shared>,
    service: RefCell<Option<Rc<S>>>,
    links: RefCell<Vec<Option<PeerLink<S>>>>,
    counters: Counters,
    stop_event: LocalEvent,
    /// This shard's mesh receive loop has ended.
    closed: Cell<bool>,
    handlers_in_flight: Cell<usize>,
}

impl<S: Service> HasEvent for ShardLocal<S> {
    fn event(&self) -> &LocalEvent {
        &self.stop_event
    }
}

/// Handle to the current shard: cheap `Rc` clone, `!Send`.
pub struct ShardCtx<S: Service> {
    pub(crate) local: Rc<ShardLocal<S>>,
}

impl<S: Service> Clone for ShardCtx<S> {
    fn clone(&self) -> Self {
        Self {
            local: Rc::clone(&self.local),
        }
    }
}

impl<S: Service> ShardCtx<S> {
    pub(crate) fn new(
        settings: ShardSettings,
        shared: Arc<Shared>,
        outbound: Vec<Option<Outbound<S::Msg, S::Reply>>>,
    ) -> Self {
        let capacity = settings.ring_capacity;
        let links = outbound
            .into_iter()
            .map(|out| {
                out.map(|out| PeerLink {
                    out,
                    pending: PendingTable::new(capacity),
                    closed: false,
                })
            })
            .collect();
        Self {
            local: Rc::new(ShardLocal {
                settings,
                shared,
                service: RefCell::new(None),
                links: RefCell::new(links),
                counters: Counters::default(),
                stop_event: LocalEvent::default(),
                closed: Cell::new(false),
                handlers_in_flight: Cell::new(0),
            }),
        }
    }

    /// This shard's index.
    pub fn id(&self) -> ShardId {
        self.local.settings.id
    }

    /// How many shards run.
    pub fn count(&self) -> usize {
        self.local.settings.count
    }

    /// The I/O driver every shard runs on.
    pub fn driver(&self) -> Driver {
        self.local.settings.driver
    }

    /// This shard's service instance.
    ///
    /// # Panics
    /// When called inside the factory, before it returned the instance (a programming error).
    pub fn service(&self) -> Rc<S> {
        match self.local.service.borrow().as_ref() {
            Some(service) => Rc::clone(service),
            None => panic!(
                "ShardCtx::service() called before the factory returned or after the shard ended"
            ),
        }
    }

    pub(crate) fn set_service(&self, service: Rc<S>) {
        let previous = self.local.service.borrow_mut().replace(service);
        debug_assert!(previous.is_none(), "service set twice");
    }

    pub(crate) fn take_service(&self) -> Option<Rc<S>> {
        self.local.service.borrow_mut().take()
    }

    /// Runs `handle(msg)` on `target` and returns its reply. `target == id()` calls `handle` locally (no hop).
    /// Never blocks on a full ring: fails at once with `RingFull` when `ring_capacity` requests are in flight
    /// to `target`; resolves `Stopped` if the target (or this shard) stops serving before replying.
    pub async fn invoke_on(&self, target: ShardId, msg: S::Msg) -> Result<S::Reply, MeshError> {
        if target.0 >= self.count() {
            return Err(MeshError::NoSuchShard {
                target,
                count: self.count(),
            });
        }
        if target == self.id() {
            return Ok(S::handle(self.service(), self.clone(), target, msg).await);
        }
        let slot = self.send_request(target.0, msg)?;
        PendingReply {
            local: &self.local,
            target: target.0,
            slot,
            finished: false,
        }
        .await
    }

    /// Sends `make(shard)` to every shard (this one included) concurrently; results in shard order.
    pub async fn invoke_on_all<F: Fn(ShardId) -> S::Msg>(
        &self,
        make: F,
    ) -> Vec<Result<S::Reply, MeshError>> {
        let calls = (0..self.count()).map(|i| self.invoke_on(ShardId(i), make(ShardId(i))));
        futures_util::future::join_all(calls).await
    }

    /// This shard's counters.
    pub fn stats(&self) -> MeshStats {
        let c = &self.local.counters;
        let links = self.local.links.borrow();
        MeshStats {
            hops_sent: c.hops_sent.get(),
            hops_received: c.hops_received.get(),
            ring_full: c.ring_full.get(),
            in_flight: links
                .iter()
                .map(|link| link.as_ref().map_or(0, |l| l.pending.in_flight()))
                .collect(),
            stalls: c.stalls.get(),
            stall_us_max: c.stall_us_max.get(),
            stall_us_total: c.stall_us_total.get(),
        }
    }

    /// Resolves once a stop was requested (from any thread, or a shard panicked).
    pub fn stopping(&self) -> impl Future<Output = ()> + 'static {
        EventWait::new(Rc::clone(&self.local))
    }

    /// Whether a stop was requested (as seen by this shard).
    pub fn is_stopping(&self) -> bool {
        self.local.stop_event.is_fired()
    }

    /// A handle that stops every shard (e.g. on a fatal error inside a service).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            shared: Arc::clone(&self.local.shared),
        }
    }

    fn send_request(&self, target: usize, msg: S::Msg) -> Result<u32, MeshError> {
        let local = &self.local;
        if local.closed.get() {
            return Err(MeshError::Stopped);
        }
        let mut links = local.links.borrow_mut();
        let Some(link) = links.get_mut(target).and_then(Option::as_mut) else {
            return Err(MeshError::Stopped);
        };
        if link.closed {
            return Err(MeshError::Stopped);
        }
        let Some(slot) = link.pending.acquire() else {
            bump(&local.counters.ring_full);
            return Err(MeshError::RingFull {
                target: ShardId(target),
            });
        };
        if link.out.requests.push(Request { slot, msg }).is_err() {
            // Unreachable while in-flight <= capacity; kept as a safe refusal rather than a silent drop.
            debug_assert!(false, "request ring fuller than the in-flight count");
            link.pending.release(slot);
            bump(&local.counters.ring_full);
            return Err(MeshError::RingFull {
                target: ShardId(target),
            });
        }
        drop(links);
        bump(&local.counters.hops_sent);
        local.shared.inbox(target).ring_after_push();
        Ok(slot)
    }
}

/// Waits for the reply in one correlation slot; dropping it early keeps the slot until the reply lands.
struct PendingReply<'a, S: Service> {
    local: &'a ShardLocal<S>,
    target: usize,
    slot: u32,
    finished: bool,
}

impl<S: Service> Future for PendingReply<'_, S> {
    type Output = Result<S::Reply, MeshError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut links = this.local.links.borrow_mut();
        let Some(link) = links.get_mut(this.target).and_then(Option::as_mut) else {
            this.finished = true;
            return Poll::Ready(Err(MeshError::Stopped));
        };
        let outcome = link.pending.poll_take(this.slot, cx.waker());
        this.finished = outcome.is_ready();
        outcome
    }
}

impl<S: Service> Drop for PendingReply<'_, S> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Ok(mut links) = self.local.links.try_borrow_mut()
            && let Some(link) = links.get_mut(self.target).and_then(Option::as_mut)
        {
            link.pending.abandon(self.slot);
        }
    }
}

/// Mesh-side operations used by the receive loop and the stall monitor.
impl<S: Service> ShardLocal<S> {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Stop seen by this shard's receive loop (a local read; the shared flag is read only on events).
    pub(crate) fn is_stop_seen(&self) -> bool {
        self.stop_event.is_fired()
    }

    pub(crate) fn fire_stop(&self) {
        self.stop_event.fire();
    }

    pub(crate) fn handlers_in_flight(&self) -> usize {
        self.handlers_in_flight.get()
    }

    pub(crate) fn note_request_received(&self) {
        bump(&self.counters.hops_received);
        self.handlers_in_flight
            .set(self.handlers_in_flight.get() + 1);
    }

    /// A handler finished: send its reply to `to` (unless this shard already closed its mesh).
    pub(crate) fn finish_handler(&self, to: usize, slot: u32, reply: S::Reply) {
        let left = self.handlers_in_flight.get().saturating_sub(1);
        self.handlers_in_flight.set(left);
        if !self.closed.get() {
            self.push_reply(to, slot, reply);
        }
        if left == 0 && self.stop_event.is_fired() {
            // Lets a draining receive loop notice it may exit.
            self.shared.inbox(self.settings.id.0).notify_event();
        }
    }

    fn push_reply(&self, to: usize, slot: u32, reply: S::Reply) {
        let mut links = self.links.borrow_mut();
        let Some(link) = links.get_mut(to).and_then(Option::as_mut) else {
            return;
        };
        if link.out.replies.push(Reply { slot, reply }).is_err() {
            // The caller keeps in-flight <= capacity, so this only happens if it died without draining.
            tracing::error!(shard = %self.settings.id, to, "reply ring full; reply dropped");
            return;
        }
        drop(links);
        self.shared.inbox(to).ring_after_push();
    }

    pub(crate) fn complete_reply(&self, from: usize, slot: u32, reply: S::Reply) {
        if let Some(link) = self
            .links
            .borrow_mut()
            .get_mut(from)
            .and_then(Option::as_mut)
        {
            link.pending.complete(slot, Ok(reply));
        }
    }

    /// `peer` stopped reading: its unanswered requests resolve `Stopped`, and no new ones are sent.
    pub(crate) fn close_peer(&self, peer: usize) {
        if let Some(link) = self
            .links
            .borrow_mut()
            .get_mut(peer)
            .and_then(Option::as_mut)
        {
            link.closed = true;
            link.pending.fail_all(MeshError::Stopped);
        }
    }

    pub(crate) fn is_peer_known_closed(&self, peer: usize) -> bool {
        self.links
            .borrow()
            .get(peer)
            .and_then(Option::as_ref)
            .is_none_or(|link| link.closed)
    }

    /// This shard stops reading its rings: every unanswered request of its own resolves `Stopped`.
    pub(crate) fn close_self(&self) {
        self.closed.set(true);
        for link in self.links.borrow_mut().iter_mut().flatten() {
            link.pending.fail_all(MeshError::Stopped);
        }
    }

    pub(crate) fn record_stall(&self, stall: Duration) {
        let micros = u64::try_from(stall.as_micros()).unwrap_or(u64::MAX);
        let c = &self.counters;
        bump(&c.stalls);
        c.stall_us_total
            .set(c.stall_us_total.get().saturating_add(micros));
        c.stall_us_max.set(c.stall_us_max.get().max(micros));
    }
}
