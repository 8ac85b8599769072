//! The bounded per-upstream connection pool: checkout (idle LIFO, else connect within the
//! limit), the round trip under a deadline, and return-or-close afterwards.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::conn::{Conn, ResponseLimits};
use super::error::ClientError;
use super::gzip::Gzip;
use super::stats::PoolStats;
use super::wire::{ClientRequest, ClientResponse, write_request};

/// Configuration of one pool (one upstream, one shard). Build with [`PoolConfig::new`] and
/// override fields as needed.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub addr: SocketAddr,
    /// Value of the `Host` header.
    pub host_header: String,
    /// Open connections at most (idle + busy + connecting). At the bound `send` fails at once.
    pub max_conns: usize,
    /// A TCP connect longer than this fails (also bounded by the request deadline).
    pub connect_timeout: Duration,
    /// Delay after the first failed connect; doubles per further failure up to `backoff_max`.
    /// The actual delay is drawn uniformly from [delay/2, delay] (jitter).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Idle connections older than this are closed rather than reused (keep it below the
    /// upstream's keep-alive timeout).
    pub idle_timeout: Duration,
    /// Largest response status line + header section.
    pub head_bytes_max: usize,
    /// Largest response body (after de-chunking).
    pub body_bytes_max: usize,
    /// gzip request bodies of at least `gzip_min_bytes` (adds `Content-Encoding: gzip`).
    pub gzip_requests: bool,
    pub gzip_min_bytes: usize,
}

impl PoolConfig {
    /// Defaults: 16 connections, 50 ms connect timeout, backoff 10 ms .. 5 s, idle 20 s,
    /// head 16 KiB, body 1 MiB, no gzip.
    pub fn new(addr: SocketAddr, host_header: impl Into<String>) -> Self {
        Self {
            addr,
            host_header: host_header.into(),
            max_conns: 16,
            connect_timeout: Duration::from_millis(50),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            head_bytes_max: 16 * 1024,
            body_bytes_max: 1024 * 1024,
            gzip_requests: false,
            gzip_min_bytes: 1024,
        }
    }
}

/// A bounded keep-alive pool to one upstream. Shard-local (`!Send`); cloning shares the pool.
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

struct Inner {
    config: PoolConfig,
    /// Idle connections, most recently used last.
    idle: RefCell<Vec<Conn>>,
    /// Idle + busy + connecting.
    open: Cell<usize>,
    backoff: RefCell<Backoff>,
    stats: PoolStats,
    gzip: RefCell<Option<(Gzip, Vec<u8>)>>,
}

impl Pool {
    pub fn new(mut config: PoolConfig) -> Self {
        config.max_conns = config.max_conns.max(1);
        config.backoff_max = config.backoff_max.max(config.backoff_min);
        let seed = seed_of(&config.addr);
        Self {
            inner: Rc::new(Inner {
                config,
                idle: RefCell::new(Vec::new()),
                open: Cell::new(0),
                backoff: RefCell::new(Backoff::new(seed)),
                stats: PoolStats::default(),
                gzip: RefCell::new(None),
            }),
        }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    pub fn stats(&self) -> &PoolStats {
        &self.inner.stats
    }

    /// Connections open now (idle + busy + connecting).
    pub fn open_conns(&self) -> usize {
        self.inner.open.get()
    }

    /// Idle connections ready for reuse.
    pub fn idle_conns(&self) -> usize {
        self.inner.idle.borrow().len()
    }

    /// Open up to `n` idle connections (bounded by `max_conns`), one after another; stops at the
    /// first failure (which starts the backoff). Returns how many were opened.
    pub async fn warm(&self, n: usize) -> usize {
        let mut opened = 0;
        while opened < n && self.inner.open.get() < self.inner.config.max_conns {
            let deadline = Instant::now() + self.inner.config.connect_timeout;
            match self.connect(deadline).await {
                Ok(slot) => {
                    slot.into_idle();
                    opened += 1;
                }
                Err(_) => break,
            }
        }
        opened
    }

    /// Send `req` and read the whole response, all before `deadline`. Any status is `Ok`.
    /// On `Err` (except pool-level refusals) the connection used is closed; dropping the
    /// returned future also closes it.
    pub async fn send(
        &self,
        req: &ClientRequest<'_>,
        deadline: Instant,
    ) -> Result<ClientResponse, ClientError> {
        let stats = &self.inner.stats;
        PoolStats::bump(&stats.requests);
        req.validate()?;
        let at = monoio::time::Instant::from_std(deadline);
        match monoio::time::timeout_at(at, self.send_now(req, deadline)).await {
            Ok(result) => result,
            Err(_elapsed) => {
                PoolStats::bump(&stats.timeouts);
                Err(ClientError::Timeout)
            }
        }
    }

    async fn send_now(
        &self,
        req: &ClientRequest<'_>,
        deadline: Instant,
    ) -> Result<ClientResponse, ClientError> {
        let mut slot = match self.checkout_idle() {
            Some(slot) => slot,
            None => self.connect(deadline).await?,
        };
        self.serialize(req, &mut slot.conn_mut().write_buf);
        let limits = ResponseLimits {
            head_bytes_max: self.inner.config.head_bytes_max,
            body_bytes_max: self.inner.config.body_bytes_max,
        };
        let stats = &self.inner.stats;
        match slot.conn_mut().round_trip(limits).await {
            Ok(exchanged) => {
                PoolStats::bump(&stats.responses);
                if exchanged.reusable {
                    slot.into_idle();
                } else {
                    PoolStats::bump(&stats.closed_by_peer);
                    slot.close();
                }
                Ok(exchanged.response)
            }
            Err(error) => {
                PoolStats::bump(&stats.broken);
                slot.close();
                Err(error)
            }
        }
    }

    /// The most recently used idle connection that is still usable.
    fn checkout_idle(&self) -> Option<Slot> {
        let stats = &self.inner.stats;
        loop {
            let conn = self.inner.idle.borrow_mut().pop()?;
            let slot = Slot::adopt(&self.inner, conn);
            if slot.conn().idle_since.elapsed() > self.inner.config.idle_timeout {
                PoolStats::bump(&stats.idle_expired);
                slot.close();
            } else if slot.conn().is_stale() {
                PoolStats::bump(&stats.stale);
                slot.close();
            } else {
                PoolStats::bump(&stats.reuses);
                return Some(slot);
            }
        }
    }

    /// Open a new connection if the limit and the backoff allow it.
    async fn connect(&self, deadline: Instant) -> Result<Slot, ClientError> {
        let inner = &self.inner;
        let stats = &inner.stats;
        if inner.open.get() >= inner.config.max_conns {
            PoolStats::bump(&stats.exhausted);
            return Err(ClientError::PoolExhausted);
        }
        let now = Instant::now();
        if inner.backoff.borrow().is_waiting(now) {
            PoolStats::bump(&stats.backoff_refusals);
            return Err(ClientError::BackingOff);
        }
        let mut slot = Slot::reserve(inner);
        let until = deadline.min(now + inner.config.connect_timeout);
        let connect = Conn::connect(inner.config.addr);
        let result =
            monoio::time::timeout_at(monoio::time::Instant::from_std(until), connect).await;
        let error = match result {
            Ok(Ok(conn)) => {
                inner.backoff.borrow_mut().succeeded();
                PoolStats::bump(&stats.connects);
                slot.conn = Some(conn);
                return Ok(slot);
            }
            Ok(Err(e)) => ClientError::Connect(e.kind()),
            Err(_elapsed) => ClientError::ConnectTimeout,
        };
        PoolStats::bump(&stats.connect_failures);
        let config = &inner.config;
        inner
            .backoff
            .borrow_mut()
            .failed(Instant::now(), config.backoff_min, config.backoff_max);
        Err(error)
    }

    /// Write the request bytes, gzip-compressing the body when configured.
    fn serialize(&self, req: &ClientRequest<'_>, out: &mut Vec<u8>) {
        let config = &self.inner.config;
        out.clear();
        if !(config.gzip_requests && req.body.len() >= config.gzip_min_bytes) {
            write_request(out, req, &config.host_header, req.body, None);
            return;
        }
        let mut gzip = self.inner.gzip.borrow_mut();
        let (compressor, body) = gzip.get_or_insert_with(|| (Gzip::new(), Vec::new()));
        compressor.compress(req.body, body);
        write_request(out, req, &config.host_header, body, Some("gzip"));
    }
}

/// One counted open connection (or connect in progress). Dropped without [`Slot::into_idle`]
/// or [`Slot::close`], it is an abandoned request: the connection is closed and counted.
struct Slot {
    inner: Rc<Inner>,
    conn: Option<Conn>,
    settled: bool,
    /// The connection went back to the idle list: still counted as open.
    returned: bool,
}

impl Slot {
    /// Count a new connection about to be opened.
    fn reserve(inner: &Rc<Inner>) -> Self {
        inner.open.set(inner.open.get() + 1);
        PoolStats::bump(&inner.stats.open);
        Self {
            inner: Rc::clone(inner),
            conn: None,
            settled: true, // a connect dropped midway is not an abandoned request
            returned: false,
        }
    }

    /// Take an idle connection (already counted) for one request.
    fn adopt(inner: &Rc<Inner>, conn: Conn) -> Self {
        Self {
            inner: Rc::clone(inner),
            conn: Some(conn),
            settled: false,
            returned: false,
        }
    }

    fn conn(&self) -> &Conn {
        self.conn.as_ref().expect("slot holds a connection")
    }

    fn conn_mut(&mut self) -> &mut Conn {
        self.settled = false;
        self.conn.as_mut().expect("slot holds a connection")
    }

    /// Keep the connection for the next request.
    fn into_idle(mut self) {
        if let Some(conn) = self.conn.take() {
            self.inner.idle.borrow_mut().push(conn);
            self.settled = true;
            self.returned = true;
        }
    }

    /// Close the connection without counting an abandonment.
    fn close(mut self) {
        self.settled = true;
        drop(self);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.returned {
            return;
        }
        if !self.settled {
            PoolStats::bump(&self.inner.stats.abandoned);
        }
        self.conn = None;
        let open = &self.inner.open;
        open.set(open.get().saturating_sub(1));
        PoolStats::drop_one(&self.inner.stats.open);
    }
}

/// Exponential backoff with jitter after failed connects; reset by a successful connect.
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
    rng: u64,
}

impl Backoff {
    fn new(seed: u64) -> Self {
        Self {
            failures: 0,
            retry_at: None,
            rng: seed | 1,
        }
    }

    fn is_waiting(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    fn failed(&mut self, now: Instant, min: Duration, max: Duration) {
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(30);
        let delay = min.saturating_mul(1 << doublings).min(max);
        // Equal jitter: uniform in [delay/2, delay].
        let half = delay / 2;
        let jitter = half.mul_f64(self.next_unit());
        self.retry_at = Some(now + half + jitter);
    }

    /// xorshift64*: uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    #[cfg(test)]
    fn delay_from(&self, now: Instant) -> Duration {
        self.retry_at.map(|at| at - now).unwrap_or_default()
    }
}

/// Jitter seed: differs per upstream and per process start, so shards do not retry in step.
fn seed_of(addr: &SocketAddr) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_max_and_resets() {
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(100));
        let mut backoff = Backoff::new(42);
        let now = Instant::now();
        assert!(!backoff.is_waiting(now));
        let mut bounds = Vec::new();
        for _ in 0..8 {
            backoff.failed(now, min, max);
            bounds.push(backoff.delay_from(now));
        }
        let expected_max = [10, 20, 40, 80, 100, 100, 100, 100];
        for (delay, full) in bounds.iter().zip(expected_max) {
            let full = Duration::from_millis(full);
            assert!(
                *delay >= full / 2 && *delay <= full,
                "{delay:?} vs {full:?}"
            );
        }
        assert!(backoff.is_waiting(now));
        assert!(!backoff.is_waiting(now + max));
        backoff.succeeded();
        assert!(!backoff.is_waiting(now));
        backoff.failed(now, min, max);
        assert!(backoff.delay_from(now) <= min);
    }
}
