//! The per-shard accept loop and the connection loop on top of the sans-IO parser.
//!
//! Owns sockets, timeouts (per-connection lazy timers, armed only when a read or write has to
//! wait: see `deadline`), keep-alive, pipelining (in-order answers, one write per batch), error
//! responses with lingering close, connection limits and graceful drain. Knows nothing of what
//! the handler does.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use monoio::BufResult;
use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use monoio::time::{Instant, sleep, sleep_until};

use super::deadline::LazyTimer;
use super::error::HttpError;
use super::limits::Limits;
use super::parser::{Parsed, Progress, RequestHead, RequestParser};
use super::request::{Method, Request};
use super::response::{Framing, Response, write_continue, write_error};
use super::shutdown::{Shutdown, ShutdownWait};
use super::stats::HttpStats;
use crate::clock::{self, Instant as ClockInstant};

/// Listen backlog used by [`bind_reuseport`].
pub const LISTEN_BACKLOG_DEFAULT: i32 = 1024;
/// Pause after a failed accept (e.g. EMFILE) so the loop cannot spin.
const ACCEPT_ERROR_BACKOFF_MS: u64 = 10;
/// Bytes of responses batched before writing even if more pipelined requests are buffered.
const WRITE_BATCH_BYTES_MAX: usize = 64 * 1024;
/// A write buffer grown beyond this by a huge response is shrunk back after the write.
const WRITE_BUFFER_BYTES_KEEP: usize = 4 * WRITE_BATCH_BYTES_MAX;
/// How long `serve` waits past the drain deadline for dropped connections to unwind.
const DRAIN_GRACE_MS: u64 = 100;

/// Sends what the socket takes of `bytes` now, without waiting: one non-blocking `send(2)`
/// beside the driver. A response is nearly always taken whole, and then no operation goes
/// through the driver: no submission, no completion to reap, no second poll of the connection
/// task (with io_uring, the no-bid path at 10,000 req/s made 30 % fewer `io_uring_enter` calls).
/// The caller writes the rest, or retries after an error, through the driver, which waits and
/// times out as usual.
fn send_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `bytes` is valid for reads of `bytes.len()` bytes for the whole call, and the
    // descriptor stays open while `stream` (borrowed here) lives. No driver operation writes to
    // this socket meanwhile: the connection writes only from `flush`, one write at a time.
    let sent = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// What the engine implements: turn one request into one response.
/// Called in request order per connection; the request borrows the connection's buffer.
pub trait Handler: 'static {
    fn handle<'a>(
        &'a self,
        req: &'a Request<'a>,
        resp: &'a mut Response,
    ) -> impl Future<Output = ()> + 'a;
}

/// Bind a listener with SO_REUSEPORT and SO_REUSEADDR (one per shard on the same port) and the
/// default backlog. Must run inside a monoio runtime.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    bind_reuseport_with_backlog(addr, LISTEN_BACKLOG_DEFAULT)
}

/// [`bind_reuseport`] with an explicit listen backlog.
pub fn bind_reuseport_with_backlog(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(backlog);
    TcpListener::bind_with_config(addr, &opts)
}

/// Serve HTTP/1.1 on `listener` until `shutdown` fires, then drain: stop accepting, close idle
/// connections, let busy ones answer their current request (with `Connection: close`), and
/// return once all are closed or at the drain deadline (busy connections are then dropped).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Rc<H>,
    limits: Limits,
    shutdown: Shutdown,
    stats: Rc<HttpStats>,
) {
    clock::calibrate();
    let server = Server {
        handler,
        limits: limits.sanitized(),
        shutdown,
        stats,
        tracker: Rc::new(ConnTracker::default()),
    };
    server.accept_until_shutdown(&listener).await;
    drop(listener);
    server.drain().await;
}

struct Server<H> {
    handler: Rc<H>,
    limits: Limits,
    shutdown: Shutdown,
    stats: Rc<HttpStats>,
    tracker: Rc<ConnTracker>,
}

impl<H: Handler> Server<H> {
    async fn accept_until_shutdown(&self, listener: &TcpListener) {
        while !self.shutdown.is_triggered() {
            if self.tracker.active.get() >= self.limits.connections_max {
                HttpStats::bump(&self.stats.connections_limit_reached);
                monoio::select! {
                    biased;
                    _ = self.shutdown.wait() => {}
                    _ = self.tracker.connection_closed() => {}
                }
                continue;
            }
            let accepted = monoio::select! {
                biased;
                _ = self.shutdown.wait() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _peer)) => self.spawn_connection(stream),
                Err(error) => {
                    HttpStats::bump(&self.stats.accept_errors);
                    tracing::warn!(%error, "accept failed");
                    sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                }
            }
        }
    }

    fn spawn_connection(&self, stream: TcpStream) {
        // Latency matters more than segment count; a failure only costs latency.
        let _ = stream.set_nodelay(true);
        HttpStats::bump(&self.stats.connections_accepted);
        let guard = ConnGuard::enter(&self.tracker, &self.stats);
        let connection = Connection::new(
            stream,
            Rc::clone(&self.handler),
            self.limits,
            self.shutdown.clone(),
            Rc::clone(&self.stats),
        );
        let shutdown = self.shutdown.clone();
        let stats = Rc::clone(&self.stats);
        monoio::spawn(async move {
            let _guard = guard;
            monoio::select! {
                biased;
                _ = connection.run() => {}
                _ = shutdown.drain_deadline_passed() => {
                    HttpStats::bump(&stats.connections_dropped_at_deadline);
                }
            }
        });
    }

    async fn drain(&self) {
        let deadline = self
            .shutdown
            .drain_deadline()
            .map(Instant::from_std)
            .unwrap_or_else(Instant::now)
            + Duration::from_millis(DRAIN_GRACE_MS);
        while self.tracker.active.get() > 0 {
            monoio::select! {
                biased;
                _ = self.tracker.connection_closed() => {}
                _ = sleep_until(deadline) => return,
            }
        }
    }
}

/// Open connections of one server; `serve` is its only waiter.
#[derive(Default)]
struct ConnTracker {
    active: Cell<usize>,
    closed_total: Cell<u64>,
    waker: Cell<Option<Waker>>,
}

impl ConnTracker {
    /// Completes after the next connection closes.
    async fn connection_closed(&self) {
        let seen = self.closed_total.get();
        poll_fn(|cx| {
            if self.closed_total.get() != seen {
                return Poll::Ready(());
            }
            self.waker.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

/// Counts one connection as open until dropped (also when dropped at the drain deadline).
struct ConnGuard {
    tracker: Rc<ConnTracker>,
    stats: Rc<HttpStats>,
}

impl ConnGuard {
    fn enter(tracker: &Rc<ConnTracker>, stats: &Rc<HttpStats>) -> Self {
        tracker.active.set(tracker.active.get() + 1);
        HttpStats::bump(&stats.connections_active);
        Self {
            tracker: Rc::clone(tracker),
            stats: Rc::clone(stats),
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let tracker = &self.tracker;
        tracker.active.set(tracker.active.get().saturating_sub(1));
        tracker.closed_total.set(tracker.closed_total.get() + 1);
        HttpStats::drop_one(&self.stats.connections_active);
        if let Some(waker) = tracker.waker.take() {
            waker.wake();
        }
    }
}

/// What to do after answering the buffered requests.
enum Next {
    ReadMore,
    /// Write what is buffered, then close.
    Close,
    /// Answer with an error, then close.
    Fail(HttpError),
    /// The socket is unusable: close without writing.
    Abort,
}

enum ReadOutcome {
    Data,
    Closed,
    IdleTimeout,
    RequestTimeout,
    Fail(HttpError),
}

/// One client connection. Buffers live as long as the connection and are reused per request.
struct Connection<H> {
    stream: TcpStream,
    handler: Rc<H>,
    limits: Limits,
    shutdown: Shutdown,
    stats: Rc<HttpStats>,
    parser: RequestParser,
    response: Response,
    /// Bytes `[start..len)` are received but not yet consumed by a request.
    read_buf: Vec<u8>,
    start: usize,
    /// Do not parse again until this many unconsumed bytes are buffered.
    parse_at_bytes: usize,
    write_buf: Vec<u8>,
    responses_unwritten: usize,
    timeouts: Timeouts,
    /// Completes once shutdown fires; kept for the connection's life (one waker slot).
    shutdown_wait: ShutdownWait,
    continue_sent: bool,
}

/// A connection's idle, request and write timeouts: one lazy timer each (see
/// [`deadline`](super::deadline)), armed only when a read or write has to wait.
struct Timeouts {
    idle: LazyTimer,
    request: LazyTimer,
    write: LazyTimer,
    /// When we first waited for more bytes of the current request (its `request_timeout_ms`
    /// runs from there); `None` between requests.
    request_started: Option<ClockInstant>,
}

impl Timeouts {
    fn new(limits: &Limits) -> Self {
        Self {
            idle: LazyTimer::new(limits.idle_timeout_ms),
            request: LazyTimer::new(limits.request_timeout_ms),
            write: LazyTimer::new(limits.write_timeout_ms),
            request_started: None,
        }
    }

    /// A read has to wait: bound it by the idle timeout (no request started) or by the current
    /// request's timeout, whose clock starts now if this is the first wait for it.
    fn arm_read(&mut self, idle: bool) {
        let now = clock::now();
        if idle {
            self.idle.arm_after(now);
        } else {
            self.request
                .arm_after(*self.request_started.get_or_insert(now));
        }
    }

    fn poll_read_expired(&mut self, idle: bool, cx: &mut Context<'_>) -> Poll<()> {
        if idle {
            self.idle.poll_expired(cx)
        } else {
            self.request.poll_expired(cx)
        }
    }

    /// A write has to wait: bound it by the write timeout from now.
    fn arm_write(&mut self) {
        self.write.arm_after(clock::now());
    }

    /// The current request is complete: the next one's clock starts when we first wait for it.
    fn request_done(&mut self) {
        self.request_started = None;
    }
}

impl<H: Handler> Connection<H> {
    fn new(
        stream: TcpStream,
        handler: Rc<H>,
        limits: Limits,
        shutdown: Shutdown,
        stats: Rc<HttpStats>,
    ) -> Self {
        Self {
            stream,
            handler,
            stats,
            parser: RequestParser::new(),
            response: Response::new(),
            read_buf: Vec::with_capacity(limits.read_buffer_bytes),
            start: 0,
            parse_at_bytes: 0,
            write_buf: Vec::with_capacity(limits.read_buffer_bytes),
            responses_unwritten: 0,
            timeouts: Timeouts::new(&limits),
            shutdown_wait: shutdown.wait(),
            shutdown,
            continue_sent: false,
            limits,
        }
    }

    async fn run(mut self) {
        loop {
            match self.answer_buffered().await {
                Next::ReadMore => {}
                Next::Close => {
                    self.flush().await;
                    return;
                }
                Next::Fail(error) => return self.fail(error).await,
                Next::Abort => return,
            }
            if !self.flush().await {
                return;
            }
            match self.read_more().await {
                ReadOutcome::Data => {}
                ReadOutcome::Closed => return,
                ReadOutcome::IdleTimeout => {
                    HttpStats::bump(&self.stats.idle_closes);
                    return;
                }
                ReadOutcome::RequestTimeout => return self.fail(HttpError::RequestTimeout).await,
                ReadOutcome::Fail(error) => return self.fail(error).await,
            }
        }
    }

    /// Answer every complete request in the buffer, in order, batching the responses.
    async fn answer_buffered(&mut self) -> Next {
        loop {
            let unconsumed = self.read_buf.len() - self.start;
            if unconsumed == 0 || unconsumed < self.parse_at_bytes {
                return Next::ReadMore;
            }
            let head = match self
                .parser
                .parse(&self.read_buf[self.start..], &self.limits)
            {
                Err(error) => return Next::Fail(error),
                Ok(Parsed::Incomplete(progress)) => {
                    self.await_body(progress);
                    return Next::ReadMore;
                }
                Ok(Parsed::Complete(head)) => head,
            };
            let close = match self.answer(&head).await {
                Ok(close) => close,
                Err(error) => return Next::Fail(error),
            };
            self.consume(head.consumed_bytes);
            if close {
                return Next::Close;
            }
            if self.batch_full() && !self.flush().await {
                return Next::Abort;
            }
        }
    }

    /// Remember how much to wait for, and send `100 Continue` once if the client asked.
    fn await_body(&mut self, progress: Progress) {
        self.parse_at_bytes = progress.buffer_bytes_min;
        if progress.head_complete && progress.expect_continue && !self.continue_sent {
            write_continue(&mut self.write_buf);
            self.continue_sent = true;
            self.stats.record_response(100);
        }
    }

    /// Run the handler on one complete request and serialize its response.
    /// Returns whether the connection closes after it.
    async fn answer(&mut self, head: &RequestHead) -> Result<bool, HttpError> {
        let request = self
            .parser
            .request(head, &mut self.read_buf[self.start..])?;
        self.response.reset();
        HttpStats::bump(&self.stats.requests);
        self.handler.handle(&request, &mut self.response).await;
        let close =
            !request.keep_alive || self.shutdown.is_triggered() || self.response.close_requested();
        let framing = Framing {
            head_only: request.method == Method::Head,
            close,
            keep_alive_header: request.version_minor == 0 && !close,
        };
        self.response.write_to(&mut self.write_buf, framing);
        self.stats.record_response(self.response.status_code());
        self.responses_unwritten += 1;
        Ok(close)
    }

    /// Drop a finished request from the read buffer; the next one (pipelined) starts now.
    fn consume(&mut self, consumed_bytes: usize) {
        self.start += consumed_bytes;
        self.parse_at_bytes = 0;
        self.continue_sent = false;
        if self.start >= self.read_buf.len() {
            self.read_buf.clear();
            self.start = 0;
        }
        // A pipelined request's clock starts when we first wait for more of it (`read_more`).
        self.timeouts.request_done();
    }

    fn batch_full(&self) -> bool {
        self.responses_unwritten >= self.limits.pipeline_depth_max
            || self.write_buf.len() >= WRITE_BATCH_BYTES_MAX
    }

    /// Write every buffered response: first with one non-blocking `send(2)` (see [`send_now`]),
    /// then what the socket did not take with the driver's `write_all`. False when the socket is
    /// unusable.
    async fn flush(&mut self) -> bool {
        if self.write_buf.is_empty() {
            return true;
        }
        // An error here is left to the driver's write, which reports it as usual.
        if let Ok(sent) = send_now(&self.stream, &self.write_buf) {
            self.write_buf.drain(..sent);
            if self.write_buf.is_empty() {
                self.written();
                return true;
            }
        }
        let buf = mem::take(&mut self.write_buf);
        match self.write_all_in_time(buf).await {
            Some((Ok(_), buf)) => {
                self.write_buf = buf;
                self.written();
                true
            }
            Some((Err(_), _)) => false,
            None => {
                HttpStats::bump(&self.stats.write_timeouts);
                false
            }
        }
    }

    /// Every buffered response is written: the buffer is emptied (and shrunk back if a huge
    /// response grew it).
    fn written(&mut self) {
        self.write_buf.clear();
        self.write_buf.shrink_to(WRITE_BUFFER_BYTES_KEEP);
        self.responses_unwritten = 0;
    }

    /// `write_all`, bounded by the write timeout once it has to wait; `None` when that expired.
    async fn write_all_in_time(&mut self, buf: Vec<u8>) -> Option<BufResult<usize, Vec<u8>>> {
        let Connection {
            stream, timeouts, ..
        } = self;
        let mut write = pin!(stream.write_all(buf));
        let mut waiting = false;
        poll_fn(|cx| {
            if let Poll::Ready(written) = write.as_mut().poll(cx) {
                return Poll::Ready(Some(written));
            }
            if !mem::replace(&mut waiting, true) {
                timeouts.arm_write();
            }
            timeouts.write.poll_expired(cx).map(|()| None)
        })
        .await
    }

    /// Read more bytes, bounded by the idle or the request deadline; while idle, shutdown closes.
    async fn read_more(&mut self) -> ReadOutcome {
        self.compact();
        if let Err(error) = self.reserve_for_read() {
            return ReadOutcome::Fail(error);
        }
        let idle = self.read_buf.is_empty();
        if idle && self.shutdown.is_triggered() {
            return ReadOutcome::Closed;
        }
        let Connection {
            stream,
            read_buf,
            timeouts,
            shutdown_wait,
            ..
        } = self;
        let (filled, capacity) = (read_buf.len(), read_buf.capacity());
        let mut read = pin!(stream.read(SliceMut::new(mem::take(read_buf), filled, capacity)));
        let mut waiting = false;
        poll_fn(|cx| {
            if let Poll::Ready((result, slice)) = read.as_mut().poll(cx) {
                *read_buf = slice.into_inner();
                return Poll::Ready(match result {
                    Ok(0) | Err(_) => ReadOutcome::Closed,
                    Ok(_) => ReadOutcome::Data,
                });
            }
            // The timeout is armed only once the read has to wait (a request that is already
            // in the socket costs no timer work).
            if !mem::replace(&mut waiting, true) {
                timeouts.arm_read(idle);
            }
            if timeouts.poll_read_expired(idle, cx).is_ready() {
                return Poll::Ready(if idle {
                    ReadOutcome::IdleTimeout
                } else {
                    ReadOutcome::RequestTimeout
                });
            }
            if idle && Pin::new(&mut *shutdown_wait).poll(cx).is_ready() {
                return Poll::Ready(ReadOutcome::Closed);
            }
            Poll::Pending
        })
        .await
    }

    /// Move unconsumed bytes to the front of the read buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.read_buf.copy_within(self.start.., 0);
            self.read_buf.truncate(self.read_buf.len() - self.start);
            self.start = 0;
        }
    }

    /// Make room for the next read: at least one byte, and the whole request when its size is
    /// known, never beyond `read_buffer_bytes_max`.
    fn reserve_for_read(&mut self) -> Result<(), HttpError> {
        let len = self.read_buf.len();
        let max = self.limits.read_buffer_bytes_max();
        if len >= max {
            return Err(HttpError::PayloadTooLarge(
                "request larger than the read buffer",
            ));
        }
        let wanted = self.parse_at_bytes.max(len + 1);
        let capacity = self.read_buf.capacity();
        if capacity < wanted {
            let target = wanted.max(capacity.saturating_mul(2)).min(max);
            self.read_buf.reserve_exact(target - len);
        }
        Ok(())
    }

    /// Answer a protocol error, then close politely: shut the write side and drain input for a
    /// bounded time so the client reads the error rather than a connection reset.
    async fn fail(mut self, error: HttpError) {
        self.stats.record_error(error.status());
        write_error(&mut self.write_buf, &error);
        if self.flush().await {
            self.linger().await;
        }
    }

    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        let deadline = Instant::now() + Duration::from_millis(self.limits.linger_ms);
        let mut drained_bytes = 0usize;
        let mut buf = mem::take(&mut self.write_buf);
        buf.reserve(4096);
        while drained_bytes <= self.limits.body_bytes_max {
            buf.clear();
            let read = self.stream.read(buf);
            buf = monoio::select! {
                biased;
                (result, returned) = read => match result {
                    Ok(n) if n > 0 => {
                        drained_bytes += n;
                        returned
                    }
                    _ => return,
                },
                _ = sleep_until(deadline) => return,
            };
        }
    }
}
