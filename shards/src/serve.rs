//! The per-shard background tasks: the mesh receive loop (requests in, replies out, stop and peer
//! liveness events) and the stall monitor. Must not know what services do with their messages.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::select;

use crate::ctx::{Service, ShardCtx, ShardLocal};
use crate::mesh::Inbound;

/// Most items taken from one ring before the loop moves on (fairness between peers and with other tasks).
const RING_BATCH_MAX: usize = 128;

type InboundRings<S> = Vec<Option<Inbound<<S as Service>::Msg, <S as Service>::Reply>>>;

enum Phase {
    Serving,
    /// Every shard's `run` returned: finish the handlers already running, until the deadline.
    Draining {
        deadline: Instant,
    },
}

/// Serves this shard's end of the mesh until every `run` returned and this shard's handlers finished
/// (or `stop_timeout` passed), then closes it: unanswered calls from and to this shard resolve `Stopped`.
pub(crate) async fn serve_mesh<S: Service>(ctx: ShardCtx<S>, mut inbound: InboundRings<S>) {
    let local = Rc::clone(&ctx.local);
    let inbox = local.shared.inbox(local.settings.id.0);
    let mut seen_events = None;
    let mut phase = Phase::Serving;
    loop {
        let mut work = drain_requests(&ctx, &mut inbound);
        work += drain_replies(&local, &mut inbound);
        let events = inbox.events();
        if seen_events != Some(events) {
            seen_events = Some(events);
            on_control_event(&local, &mut inbound);
        }
        phase = next_phase(&local, phase);
        if let Phase::Draining { deadline } = phase {
            if local.handlers_in_flight() == 0 && work == 0 {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(shard = %local.settings.id, handlers = local.handlers_in_flight(),
                    "stop_timeout passed with mesh handlers still running; abandoning them");
                break;
            }
        }
        if work > 0 {
            yield_now().await;
            continue;
        }
        let doorbell = wait_for_doorbell(&local, &inbound, seen_events);
        match phase {
            Phase::Serving => doorbell.await,
            Phase::Draining { deadline } => {
                let timer = monoio::time::sleep_until(deadline.into());
                let _ = select(Box::pin(doorbell), Box::pin(timer)).await;
            }
        }
    }
    local.close_self();
    local.shared.mark_closed(local.settings.id.0);
}

fn next_phase<S: Service>(local: &ShardLocal<S>, phase: Phase) -> Phase {
    match phase {
        Phase::Serving if local.is_stop_seen() && local.shared.all_runs_returned() => {
            Phase::Draining {
                deadline: Instant::now() + local.settings.stop_timeout,
            }
        }
        other => other,
    }
}

fn drain_requests<S: Service>(ctx: &ShardCtx<S>, inbound: &mut InboundRings<S>) -> usize {
    let mut taken = 0;
    for (from, rings) in inbound.iter_mut().enumerate() {
        let Some(rings) = rings else { continue };
        for _ in 0..RING_BATCH_MAX {
            let Ok(request) = rings.requests.pop() else {
                break;
            };
            taken += 1;
            spawn_handler(ctx, from, request.slot, request.msg);
        }
    }
    taken
}

fn spawn_handler<S: Service>(ctx: &ShardCtx<S>, from: usize, slot: u32, msg: S::Msg) {
    ctx.local.note_request_received();
    let ctx = ctx.clone();
    monoio::spawn(async move {
        let reply = S::handle(ctx.service(), ctx.clone(), crate::ShardId(from), msg).await;
        ctx.local.finish_handler(from, slot, reply);
    });
}

fn drain_replies<S: Service>(local: &ShardLocal<S>, inbound: &mut InboundRings<S>) -> usize {
    let mut taken = 0;
    for (from, rings) in inbound.iter_mut().enumerate() {
        let Some(rings) = rings else { continue };
        for _ in 0..RING_BATCH_MAX {
            let Ok(reply) = rings.replies.pop() else {
                break;
            };
            taken += 1;
            local.complete_reply(from, reply.slot, reply.reply);
        }
    }
    taken
}

/// Stop requested, or a peer closed its mesh: act on it.
fn on_control_event<S: Service>(local: &ShardLocal<S>, inbound: &mut InboundRings<S>) {
    if local.shared.is_stop_requested() {
        local.fire_stop();
    }
    for (peer, rings) in inbound.iter_mut().enumerate() {
        let Some(rings) = rings else { continue };
        if local.is_peer_known_closed(peer) || !local.shared.inbox(peer).is_closed() {
            continue;
        }
        // Replies pushed before the peer closed are still valid; the rest will never come.
        while let Ok(reply) = rings.replies.pop() {
            local.complete_reply(peer, reply.slot, reply.reply);
        }
        local.close_peer(peer);
    }
}

/// Sleeps until a peer pushes onto one of our rings or a control event arrives.
fn wait_for_doorbell<'a, S: Service>(
    local: &'a ShardLocal<S>,
    inbound: &'a InboundRings<S>,
    seen_events: Option<u64>,
) -> impl Future<Output = ()> + 'a {
    let inbox = local.shared.inbox(local.settings.id.0);
    poll_fn(move |cx| {
        inbox.prepare_sleep(cx.waker());
        let has_work =
            Some(inbox.events()) != seen_events || inbound.iter().flatten().any(Inbound::has_items);
        if has_work {
            inbox.cancel_sleep();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
}

/// Lets the other tasks of this shard run once.
pub(crate) fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}

/// Wakes every `stall_threshold / 2`; waking later than that by more than `stall_threshold` means a task
/// held the shard (or the OS did not run it): counted every time, logged at most once per
/// [`STALL_LOG_EVERY`] with the number and worst of the stalls since the last line, so an
/// overloaded host does not flood the journal. Ends when the shard's mesh closes.
pub(crate) async fn watch_stalls<S: Service>(local: Rc<ShardLocal<S>>) {
    let threshold = local.settings.stall_threshold;
    let period = threshold / 2;
    let mut log = StallLog::default();
    while !local.is_closed() {
        let started = Instant::now();
        monoio::time::sleep(period).await;
        let late = started.elapsed().saturating_sub(period);
        if late > threshold {
            local.record_stall(late);
            log.note(&local.settings.id, late);
        }
    }
}

/// Shortest time between two stall log lines of one shard.
const STALL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Stalls seen since the last log line.
#[derive(Default)]
struct StallLog {
    last: Option<Instant>,
    unlogged: u64,
    worst: Duration,
}

impl StallLog {
    fn note(&mut self, shard: &impl std::fmt::Display, late: Duration) {
        self.unlogged += 1;
        self.worst = self.worst.max(late);
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < STALL_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(%shard, stalls = self.unlogged, worst_us = self.worst.as_micros() as u64,
            "tasks held the shard longer than stall_threshold (counted in the stall metrics)");
        *self = StallLog {
            last: Some(now),
            unlogged: 0,
            worst: Duration::ZERO,
        };
    }
}
