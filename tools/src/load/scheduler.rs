//! The open-loop schedule and the threads that follow it. Request `k` is intended
//! at `start + t` where the rate profile's cumulative count reaches `k` (`k / rate` for a
//! constant rate); connection `c` of `C` owns requests `c, c + C, c + 2C, ...`
//! and sends each at its intended time, or at once when behind (so a slow server
//! shows as latency, not as a lower send rate). One monoio runtime per thread;
//! connections are split across threads; nothing is shared between threads but
//! the read-only request pool. Knows nothing of JSON or of output formats.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use monoio::time::{Instant as MonoInstant, sleep_until, timeout_at};

use super::client::{Connection, FailureKind, connect};
use super::config::{ConfigError, Driver};
use super::events::{EventSink, FLUSH_BYTES, events_of_response};
use super::profile::{Phase, RateProfile};
use super::request::RequestPool;
use super::stats::Stats;

/// Time the threads get to start their runtimes and pre-connect before request 0.
pub const START_DELAY: Duration = Duration::from_millis(200);
/// io_uring submission queue entries per runtime.
const URING_ENTRIES: u32 = 1024;

/// Why the load threads could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("cannot start load thread {thread}: {source}")]
    Thread {
        thread: usize,
        source: std::io::Error,
    },
    #[error("cannot build the monoio runtime on load thread {thread}: {source}")]
    Runtime {
        thread: usize,
        source: std::io::Error,
    },
    #[error("load thread {thread} panicked")]
    Panicked { thread: usize },
}

/// When each request is due. Offsets are relative to `start`.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub start: Instant,
    /// The rate curve from `start`, warm-up included (as its first phase when there is one).
    pub profile: RateProfile,
    pub connections: u64,
    /// Requests intended before this offset are warm-up (not measured).
    pub warmup: Duration,
    /// Profile phases before the first measured one (1 with a warm-up, else 0).
    pub warmup_phases: usize,
    /// No request intended at or after this offset is sent; nothing is sent after
    /// `start + end` either.
    pub end: Duration,
}

impl Schedule {
    /// A schedule that warms up at the profile's first rate for `warmup`, then follows `measured`.
    pub fn new(
        start: Instant,
        measured: &RateProfile,
        warmup: Duration,
        connections: u64,
    ) -> Result<Schedule, ConfigError> {
        let mut phases = Vec::with_capacity(measured.phases().len() + 1);
        if !warmup.is_zero() {
            phases.push(Phase {
                name: "warmup".into(),
                duration: warmup,
                from_rate: measured.first_rate().max(1.0),
                to_rate: measured.first_rate().max(1.0),
            });
        }
        let warmup_phases = phases.len();
        phases.extend(measured.phases().iter().cloned());
        let profile = RateProfile::new(phases)?;
        Ok(Schedule {
            start,
            end: profile.duration(),
            profile,
            connections,
            warmup,
            warmup_phases,
        })
    }

    /// Offset from `start` at which request `request_no` is intended (`None` past the end).
    pub fn offset(&self, request_no: u64) -> Option<Duration> {
        self.profile.offset(request_no)
    }

    /// Index among the measured phases of a request intended at `offset` (`None` in warm-up).
    pub fn measured_phase(&self, offset: Duration) -> Option<usize> {
        if offset < self.warmup {
            return None;
        }
        Some(self.profile.phase_at(offset) - self.warmup_phases)
    }

    /// Number of measured phases.
    pub fn measured_phases(&self) -> usize {
        self.profile.phases().len() - self.warmup_phases
    }

    /// Number of requests intended inside `[0, end)`.
    pub fn requests_in_window(&self) -> u64 {
        self.profile.total_count().ceil() as u64
    }

    /// Requests owned by connection `c` numbered `from` or later and intended before `end`.
    fn remaining_for(&self, from: u64) -> u64 {
        let total = self.requests_in_window();
        if from >= total {
            0
        } else {
            (total - 1 - from) / self.connections + 1
        }
    }
}

/// What every thread needs to run its connections.
#[derive(Clone)]
pub struct RunPlan {
    pub addr: SocketAddr,
    pub schedule: Schedule,
    pub timeout: Duration,
    pub threads: usize,
    pub pool: Arc<RequestPool>,
    pub driver: Driver,
    pub timer_spin: Duration,
    /// Where served impressions are logged (`--events`), if anywhere.
    pub events: Option<Arc<EventSink>>,
}

/// Runs the whole schedule on `plan.threads` threads and merges their statistics.
pub fn run_threads(plan: &RunPlan) -> Result<Stats, ScheduleError> {
    let mut handles = Vec::with_capacity(plan.threads);
    for thread in 0..plan.threads {
        let plan = plan.clone();
        let handle = std::thread::Builder::new()
            .name(format!("rtb-load-{thread}"))
            .spawn(move || run_thread(thread, &plan))
            .map_err(|source| ScheduleError::Thread { thread, source })?;
        handles.push(handle);
    }
    let mut total = Stats::new();
    let mut first_error = None;
    for (thread, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(stats)) => total.merge(&stats),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(_) => first_error = first_error.or(Some(ScheduleError::Panicked { thread })),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// Global connection indices owned by `thread`.
fn connections_of(thread: usize, plan: &RunPlan) -> impl Iterator<Item = u64> {
    (thread as u64..plan.schedule.connections).step_by(plan.threads)
}

fn run_thread(thread: usize, plan: &RunPlan) -> Result<Stats, ScheduleError> {
    let phases = plan.schedule.measured_phases();
    let stats = Rc::new(RefCell::new(Stats::with_phases(phases)));
    block_on(plan.driver, async {
        let tasks: Vec<_> = connections_of(thread, plan)
            .map(|index| {
                let driver = ConnectionDriver {
                    index,
                    plan: plan.clone(),
                    stats: stats.clone(),
                    events: RefCell::new(Vec::new()),
                };
                monoio::spawn(driver.run())
            })
            .collect();
        for task in tasks {
            task.await;
        }
    })
    .map_err(|source| ScheduleError::Runtime { thread, source })?;
    Ok(stats.replace(Stats::with_phases(phases)))
}

/// Runs `future` to completion on a fresh monoio runtime with the chosen driver (`Auto`:
/// io_uring where the kernel offers the operations monoio needs, else epoll).
fn block_on<F: Future>(driver: Driver, future: F) -> std::io::Result<F::Output> {
    use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};
    let uring = match driver {
        Driver::Auto => monoio::utils::detect_uring(),
        Driver::IoUring => true,
        Driver::Legacy => false,
    };
    Ok(if uring {
        shards::with_cooperative_ring(|setup| {
            RuntimeBuilder::<IoUringDriver>::new()
                .enable_timer()
                .with_entries(URING_ENTRIES)
                .uring_builder(setup)
                .build()
        })?
        .block_on(future)
    } else {
        RuntimeBuilder::<LegacyDriver>::new()
            .enable_timer()
            .build()?
            .block_on(future)
    })
}

/// One connection following its share of the schedule.
struct ConnectionDriver {
    index: u64,
    plan: RunPlan,
    stats: Rc<RefCell<Stats>>,
    /// Event lines not yet handed to the sink.
    events: RefCell<Vec<u8>>,
}

impl ConnectionDriver {
    async fn run(self) {
        let mut conn = Connection::new(self.plan.pool.request_bytes_max());
        conn.set_capture(self.plan.events.is_some());
        self.follow_schedule(&mut conn).await;
        if let Some(sink) = &self.plan.events {
            sink.write(&mut self.events.borrow_mut());
        }
    }

    /// Logs the impressions of a complete response (when `--events` is on).
    fn log_events(&self, conn: &Connection, status: u16) {
        let Some(sink) = &self.plan.events else {
            return;
        };
        if status != 200 {
            return;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut buf = self.events.borrow_mut();
        events_of_response(conn.body(), now_ms, &mut buf);
        if buf.len() >= FLUSH_BYTES {
            sink.write(&mut buf);
        }
    }

    async fn follow_schedule(&self, conn: &mut Connection) {
        let schedule = &self.plan.schedule;
        self.preconnect(conn).await;
        let end_at = schedule.start + schedule.end;
        let mut request_no = self.index;
        loop {
            let Some(offset) = schedule.offset(request_no).filter(|o| *o < schedule.end) else {
                return;
            };
            let intended = schedule.start + offset;
            let now = Instant::now();
            if now >= end_at {
                self.stats.borrow_mut().unsent += schedule.remaining_for(request_no);
                return;
            }
            if intended > now {
                wait_until(intended, self.plan.timer_spin).await;
            }
            self.attempt(conn, request_no, intended, schedule.measured_phase(offset))
                .await;
            request_no = match request_no.checked_add(schedule.connections) {
                Some(next) => next,
                None => return,
            };
        }
    }

    /// Opens the connection before request 0 is due, so the first requests do
    /// not pay for the handshake. A failure here is retried by the first request.
    async fn preconnect(&self, conn: &mut Connection) {
        let deadline = MonoInstant::from_std(self.plan.schedule.start);
        if let Ok(Ok(stream)) = timeout_at(deadline, connect(self.plan.addr)).await {
            conn.attach(stream);
        }
    }

    /// Sends one request (connecting first if needed) and records the outcome.
    async fn attempt(
        &self,
        conn: &mut Connection,
        request_no: u64,
        intended: Instant,
        phase: Option<usize>,
    ) {
        let deadline = MonoInstant::from_std(Instant::now() + self.plan.timeout);
        if !conn.is_open() {
            match timeout_at(deadline, connect(self.plan.addr)).await {
                Ok(Ok(stream)) => conn.attach(stream),
                _ => {
                    if let Some(phase) = phase {
                        let mut stats = self.stats.borrow_mut();
                        stats.errors.connect += 1;
                        stats.phases[phase].failed += 1;
                    }
                    return;
                }
            }
        }
        let Some(phase) = phase else {
            self.stats.borrow_mut().warmup_sent += 1;
            match timeout_at(deadline, conn.exchange(&self.plan.pool, request_no)).await {
                Ok(Ok(response)) => self.log_events(conn, response.status),
                Ok(Err(_)) => {}
                Err(_) => conn.close(),
            }
            return;
        };
        {
            let mut stats = self.stats.borrow_mut();
            stats.sent += 1;
            stats.phases[phase].sent += 1;
            if self.plan.pool.is_bot(request_no) {
                stats.bots_sent += 1;
            }
        }
        let sent_at = Instant::now();
        let outcome = timeout_at(deadline, conn.exchange(&self.plan.pool, request_no)).await;
        let done_at = Instant::now();
        if let Ok(Ok(response)) = &outcome {
            self.log_events(conn, response.status);
        }
        let mut stats = self.stats.borrow_mut();
        match outcome {
            Ok(Ok(response)) => {
                let latency_us = micros(done_at.saturating_duration_since(intended));
                stats.record_response(
                    response.status,
                    latency_us,
                    micros(done_at.saturating_duration_since(sent_at)),
                );
                let p = &mut stats.phases[phase];
                p.completed += 1;
                p.latency_us.saturating_record(latency_us.max(1));
            }
            Ok(Err(error)) => {
                stats.phases[phase].failed += 1;
                match error.kind() {
                    FailureKind::Write => stats.errors.write += 1,
                    FailureKind::Read => stats.errors.read += 1,
                    FailureKind::Parse => stats.errors.parse += 1,
                }
            }
            Err(_elapsed) => {
                stats.phases[phase].failed += 1;
                stats.timeouts += 1;
                conn.close();
            }
        }
    }
}

/// Sleeps on the (1 ms, rounded-up) timer until `spin` before `at`, then yields
/// to the runtime in a loop until `at`, so sends start on time to the microsecond.
async fn wait_until(at: Instant, spin: Duration) {
    let wake = at.checked_sub(spin).unwrap_or(at);
    if wake > Instant::now() {
        sleep_until(MonoInstant::from_std(wake)).await;
    }
    // Bounded: ends at `at`, at most `spin` (<= 100 ms) after the timer fired.
    while Instant::now() < at {
        YieldNow(false).await;
    }
}

/// Returns `Pending` once after re-scheduling itself, letting other tasks and
/// the I/O driver run.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(rate: f64, connections: u64, end_s: u64) -> Schedule {
        let profile = RateProfile::constant(rate, Duration::from_secs(end_s)).unwrap();
        Schedule::new(Instant::now(), &profile, Duration::ZERO, connections).unwrap()
    }

    #[test]
    fn wait_until_never_returns_early() {
        for spin in [Duration::ZERO, Duration::from_micros(1100)] {
            let at = Instant::now() + Duration::from_millis(5);
            block_on(Driver::Legacy, wait_until(at, spin)).unwrap();
            assert!(Instant::now() >= at);
        }
    }

    #[test]
    fn offsets_follow_rate() {
        let s = schedule(500.0, 4, 2);
        assert_eq!(s.offset(0), Some(Duration::ZERO));
        assert_eq!(s.offset(500), Some(Duration::from_secs(1)));
        assert_eq!(s.offset(1), Some(Duration::from_millis(2)));
        assert_eq!(s.offset(1000), None);
        assert_eq!(s.requests_in_window(), 1000);
    }

    #[test]
    fn warmup_runs_at_the_first_rate_and_is_not_a_measured_phase() {
        let measured = RateProfile::parse("100@1s,200@1s").unwrap();
        let s = Schedule::new(Instant::now(), &measured, Duration::from_secs(2), 1).unwrap();
        assert_eq!(s.measured_phases(), 2);
        assert_eq!(s.end, Duration::from_secs(4));
        assert_eq!(s.requests_in_window(), 200 + 100 + 200);
        assert_eq!(s.measured_phase(Duration::from_millis(1999)), None);
        assert_eq!(s.measured_phase(Duration::from_secs(2)), Some(0));
        assert_eq!(s.measured_phase(Duration::from_millis(3500)), Some(1));
    }

    #[test]
    fn remaining_counts_only_this_connections_slots() {
        let s = schedule(10.0, 4, 1); // requests 0..10; connection 1 owns 1, 5, 9
        assert_eq!(s.remaining_for(1), 3);
        assert_eq!(s.remaining_for(5), 2);
        assert_eq!(s.remaining_for(9), 1);
        assert_eq!(s.remaining_for(13), 0);
    }

    #[test]
    fn connections_are_split_across_threads() {
        let pool = Arc::new(
            RequestPool::fixed(
                &super::super::config::Target::parse("http://127.0.0.1:1/").unwrap(),
                b"{}",
            )
            .unwrap(),
        );
        let plan = RunPlan {
            addr: "127.0.0.1:1".parse().unwrap(),
            schedule: schedule(10.0, 5, 1),
            timeout: Duration::from_secs(1),
            threads: 2,
            pool,
            driver: Driver::Auto,
            timer_spin: Duration::ZERO,
            events: None,
        };
        assert_eq!(connections_of(0, &plan).collect::<Vec<_>>(), vec![0, 2, 4]);
        assert_eq!(connections_of(1, &plan).collect::<Vec<_>>(), vec![1, 3]);
    }
}
