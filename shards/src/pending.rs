//! The sender-side correlation table: one slot per request in flight to one peer, bounded by the ring
//! capacity. Owns slot life-cycles (waiting, answered, abandoned by a dropped caller); shard-local, no atomics.

use std::task::{Poll, Waker};

use crate::error::MeshError;

const NO_SLOT: u32 = u32::MAX;

enum Slot<R> {
    Free {
        next: u32,
    },
    Waiting(Option<Waker>),
    Done(Result<R, MeshError>),
    /// The caller dropped its future; the slot stays taken until the reply arrives (keeps the bound exact).
    Orphaned,
}

/// Slots for the requests in flight to one peer. `in_flight() <= capacity` always.
pub(crate) struct PendingTable<R> {
    slots: Vec<Slot<R>>,
    free_head: u32,
    in_flight: usize,
}

impl<R> PendingTable<R> {
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(
            capacity > 0 && capacity < NO_SLOT as usize,
            "capacity out of range"
        );
        let slots = (0..capacity)
            .map(|i| Slot::Free {
                next: if i + 1 < capacity {
                    (i + 1) as u32
                } else {
                    NO_SLOT
                },
            })
            .collect();
        Self {
            slots,
            free_head: 0,
            in_flight: 0,
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Takes a free slot, or `None` when `capacity` requests are already in flight.
    pub(crate) fn acquire(&mut self) -> Option<u32> {
        let slot = self.free_head;
        let Slot::Free { next } = *self.slots.get(slot as usize)? else {
            debug_assert!(false, "free list points at a busy slot");
            return None;
        };
        self.free_head = next;
        self.slots[slot as usize] = Slot::Waiting(None);
        self.in_flight += 1;
        Some(slot)
    }

    /// Gives a slot back without a reply (the request could not be sent).
    pub(crate) fn release(&mut self, slot: u32) {
        if let Some(Slot::Waiting(_) | Slot::Orphaned | Slot::Done(_)) =
            self.slots.get(slot as usize)
        {
            self.free(slot);
        }
    }

    /// Records the outcome of a request; a reply for an abandoned or unknown slot is dropped.
    pub(crate) fn complete(&mut self, slot: u32, outcome: Result<R, MeshError>) {
        let Some(entry) = self.slots.get_mut(slot as usize) else {
            debug_assert!(false, "reply for slot {slot} out of range");
            return;
        };
        match entry {
            Slot::Waiting(waker) => {
                let waker = waker.take();
                *entry = Slot::Done(outcome);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            Slot::Orphaned => self.free(slot),
            Slot::Free { .. } | Slot::Done(_) => {
                debug_assert!(false, "reply for slot {slot} that is not waiting");
            }
        }
    }

    /// Completes every slot still waiting with `error` (the peer or this shard stopped).
    pub(crate) fn fail_all(&mut self, error: MeshError) {
        for slot in 0..self.slots.len() as u32 {
            if matches!(self.slots[slot as usize], Slot::Waiting(_) | Slot::Orphaned) {
                self.complete(slot, Err(error));
            }
        }
    }

    /// The caller polls its slot: the outcome once there, else its waker is kept.
    pub(crate) fn poll_take(&mut self, slot: u32, waker: &Waker) -> Poll<Result<R, MeshError>> {
        match self.slots.get_mut(slot as usize) {
            Some(Slot::Waiting(stored)) => {
                if !stored.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *stored = Some(waker.clone());
                }
                Poll::Pending
            }
            Some(Slot::Done(_)) => {
                let Slot::Done(outcome) =
                    std::mem::replace(&mut self.slots[slot as usize], Slot::Orphaned)
                else {
                    unreachable!("checked just above");
                };
                self.free(slot);
                Poll::Ready(outcome)
            }
            _ => {
                debug_assert!(false, "polled slot {slot} that is not taken");
                Poll::Ready(Err(MeshError::Stopped))
            }
        }
    }

    /// The caller dropped its future before the outcome: keep the slot until the reply lands.
    pub(crate) fn abandon(&mut self, slot: u32) {
        match self.slots.get(slot as usize) {
            Some(Slot::Waiting(_)) => self.slots[slot as usize] = Slot::Orphaned,
            Some(Slot::Done(_)) => self.free(slot),
            _ => {}
        }
    }

    fn free(&mut self, slot: u32) {
        self.slots[slot as usize] = Slot::Free {
            next: self.free_head,
        };
        self.free_head = slot;
        self.in_flight -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_stops_at_capacity_and_recovers_after_a_reply() {
        let mut table = PendingTable::<u32>::new(2);
        let waker = Waker::noop();
        let a = table.acquire().unwrap();
        let b = table.acquire().unwrap();
        assert_ne!(a, b);
        assert_eq!(table.acquire(), None);
        assert_eq!(table.in_flight(), 2);
        assert!(table.poll_take(a, waker).is_pending());
        table.complete(a, Ok(5));
        assert_eq!(
            table.in_flight(),
            2,
            "slot is held until the caller takes the reply"
        );
        assert_eq!(table.poll_take(a, waker), Poll::Ready(Ok(5)));
        assert_eq!(table.in_flight(), 1);
        assert!(table.acquire().is_some());
    }

    #[test]
    fn an_abandoned_slot_is_held_until_its_reply_arrives() {
        let mut table = PendingTable::<u32>::new(1);
        let slot = table.acquire().unwrap();
        table.abandon(slot);
        assert_eq!(table.acquire(), None);
        table.complete(slot, Ok(1));
        assert_eq!(table.in_flight(), 0);
        assert!(table.acquire().is_some());
    }

    #[test]
    fn fail_all_resolves_waiters_and_frees_orphans() {
        let mut table = PendingTable::<u32>::new(3);
        let waker = Waker::noop();
        let waiting = table.acquire().unwrap();
        let orphan = table.acquire().unwrap();
        table.abandon(orphan);
        table.fail_all(MeshError::Stopped);
        assert_eq!(table.in_flight(), 1);
        assert_eq!(
            table.poll_take(waiting, waker),
            Poll::Ready(Err(MeshError::Stopped))
        );
        assert_eq!(table.in_flight(), 0);
    }
}
