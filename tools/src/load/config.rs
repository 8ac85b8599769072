//! Run configuration for `rtb-load`: the validated knobs, the target URL and the
//! duration syntax. Owns input validation only; knows nothing of sockets or JSON.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Upper bound on `--connections` (each connection is one socket and one task).
pub const CONNECTIONS_MAX: usize = 10_000;
/// Upper bound on `--threads` (one monoio runtime per thread).
pub const THREADS_MAX: usize = 256;
/// Upper bound on `--pool` (pre-built request bodies held in memory).
pub const POOL_MAX: usize = 1_000_000;
/// Upper bound on `--rate` in requests per second.
pub const RATE_MAX: f64 = 10_000_000.0;
/// Upper bound on `--duration` plus `--warmup`.
pub const RUN_DURATION_MAX: Duration = Duration::from_secs(24 * 3600);
/// Upper bound on `--timeout`.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Upper bound on the size of a `--body-file`.
pub const BODY_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Upper bound on `--user-count` for a synthesized population.
pub const USER_COUNT_MAX: usize = 50_000_000;

/// Why a configuration value was rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("bad target URL {url:?}: {reason}")]
    Target { url: String, reason: String },
    #[error("bad duration {text:?}: expected a number with a unit (ms, s, m, h), e.g. 20s")]
    Duration { text: String },
    #[error("{name} = {value} is out of range: {reason}")]
    Range {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Where the requests go: resolved once at start so the hot path never resolves names.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The URL as given (for reports).
    pub url: String,
    /// Socket address the connections open.
    pub addr: SocketAddr,
    /// Value of the `Host` header (`host[:port]` as written in the URL).
    pub host_header: String,
    /// Request path including any query string, e.g. `/openrtb2/auction`.
    pub path: String,
}

impl Target {
    /// Parses `http://host[:port][/path]` and resolves the host. Only plain HTTP is supported.
    pub fn parse(url: &str) -> Result<Target, ConfigError> {
        let fail = |reason: &str| ConfigError::Target {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail("only printable ASCII without spaces is allowed"));
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| fail("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(fail("missing host"));
        }
        if authority.contains('@') {
            return Err(fail("user info in the URL is not supported"));
        }
        let with_port = if has_explicit_port(authority) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| fail(&format!("cannot resolve host: {e}")))?
            .next()
            .ok_or_else(|| fail("host resolves to no address"))?;
        Ok(Target {
            url: url.to_string(),
            addr,
            host_header: authority.to_string(),
            path: path.to_string(),
        })
    }
}

fn has_explicit_port(authority: &str) -> bool {
    match authority.rfind(':') {
        // `[::1]` has colons but no port; `[::1]:8080` ends with `]:port`.
        Some(i) => !authority[i..].contains(']'),
        None => false,
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `3m`, `1h` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let fail = || ConfigError::Duration {
        text: text.to_string(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| fail())?;
    let scale_s = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "us" => 0.000_001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(fail()),
    };
    let seconds = value * scale_s;
    if !seconds.is_finite() || seconds < 0.0 || seconds > RUN_DURATION_MAX.as_secs_f64() {
        return Err(fail());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Where the simulated users come from.
#[derive(Debug, Clone, PartialEq)]
pub enum UserSource {
    /// An adgen population CSV file.
    Csv(PathBuf),
    /// A synthesized Zipf population of this many users.
    Synthetic { user_count: usize },
}

/// What each request body looks like.
#[derive(Debug, Clone, PartialEq)]
pub enum BodySource {
    /// Generated OpenRTB 2.6 requests, a pool of `pool_size` cycled through.
    Generated {
        users: UserSource,
        pool_size: usize,
        mix: RequestMix,
    },
    /// This exact body for every request (for no-bid or peer baselines).
    Fixed(Vec<u8>),
}

/// Shape of generated requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestMix {
    /// Share of requests carrying `site` (the rest carry `app`), in [0, 1].
    pub site_share: f64,
    /// Share of impressions that are video (the rest banner), in [0, 1].
    pub video_share: f64,
    /// `tmax` in milliseconds written into every request.
    pub tmax_ms: u32,
    /// Share of requests sent by bot-like clients (datacenter IPs, headless or scripted user
    /// agents, a few device ids hammering), in [0, 1]; for fraud and integrity work.
    pub bot_share: f64,
}

impl Default for RequestMix {
    fn default() -> Self {
        RequestMix {
            site_share: 0.6,
            video_share: 0.2,
            tmax_ms: 120,
            bot_share: 0.0,
        }
    }
}

/// Which monoio I/O driver the load threads use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    /// io_uring when the kernel allows it, else epoll.
    #[default]
    Auto,
    /// io_uring only (fails to start where it is blocked).
    IoUring,
    /// epoll only.
    Legacy,
}

impl Driver {
    /// Parses `auto`, `uring` (or `io-uring`) and `legacy` (or `epoll`).
    pub fn parse(text: &str) -> Result<Driver, ConfigError> {
        match text {
            "auto" => Ok(Driver::Auto),
            "uring" | "io-uring" | "iouring" => Ok(Driver::IoUring),
            "legacy" | "epoll" => Ok(Driver::Legacy),
            _ => Err(ConfigError::Range {
                name: "driver",
                value: text.to_string(),
                reason: "must be auto, uring or legacy",
            }),
        }
    }
}

/// A complete, validated `rtb-load` run description.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    pub target: Target,
    /// Target request rate over all connections, requests per second.
    pub rate_per_s: f64,
    /// Measured window (after the warm-up).
    pub duration: Duration,
    /// Un-measured period before the measured window.
    pub warmup: Duration,
    /// Total keep-alive connections, split across threads.
    pub connections: usize,
    /// One monoio runtime per thread.
    pub threads: usize,
    /// Per-request (and per-connect) timeout.
    pub timeout: Duration,
    /// Seed for every random choice (population, request pool).
    pub seed: u64,
    pub body: BodySource,
    /// monoio I/O driver for every load thread.
    pub driver: Driver,
    /// The monoio timer has 1 ms ticks and rounds deadlines up, so a connection
    /// sleeps until `intended - timer_spin` and yields in a loop for the rest.
    /// Zero saves CPU but adds 0-2 ms of timer slop to the corrected latency.
    pub timer_spin: Duration,
    /// Rate over time (ramp, step, spike); `None` runs at `rate_per_s` for `duration`.
    /// When set, `rate_per_s` and `duration` must be its peak rate and total duration.
    pub phases: Option<super::profile::RateProfile>,
    /// Log every served impression to this file (JSONL, see [`super::events`]).
    pub events: Option<std::path::PathBuf>,
    /// Request ids are `id_base + request number` (generated bodies only).
    pub id_base: u64,
}

/// Default [`LoadConfig::timer_spin`]: off. Spinning keeps a core busy, which on a
/// small shared machine slows the server under test more than the slop it removes;
/// use about 1100us on a host with a core to spare for sub-millisecond accuracy.
pub const TIMER_SPIN_DEFAULT: Duration = Duration::ZERO;
/// Upper bound on [`LoadConfig::timer_spin`].
pub const TIMER_SPIN_MAX: Duration = Duration::from_millis(100);

impl LoadConfig {
    /// Checks every bound; call before [`crate::load::run`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            "rate",
            self.rate_per_s,
            self.rate_per_s.is_finite() && self.rate_per_s > 0.0 && self.rate_per_s <= RATE_MAX,
            "must be > 0 and <= 10,000,000 req/s",
        )?;
        check(
            "duration",
            format!("{:?}", self.duration),
            !self.duration.is_zero() && self.duration + self.warmup <= RUN_DURATION_MAX,
            "duration must be > 0 and duration + warmup <= 24h",
        )?;
        check(
            "connections",
            self.connections,
            (1..=CONNECTIONS_MAX).contains(&self.connections),
            "must be in 1..=10000",
        )?;
        check(
            "threads",
            self.threads,
            (1..=THREADS_MAX).contains(&self.threads) && self.threads <= self.connections,
            "must be in 1..=256 and <= connections",
        )?;
        check(
            "timeout",
            format!("{:?}", self.timeout),
            !self.timeout.is_zero() && self.timeout <= TIMEOUT_MAX,
            "must be > 0 and <= 600s",
        )?;
        check(
            "timer-spin",
            format!("{:?}", self.timer_spin),
            self.timer_spin <= TIMER_SPIN_MAX,
            "must be <= 100ms",
        )?;
        match &self.body {
            BodySource::Fixed(_) => Ok(()),
            BodySource::Generated {
                users,
                pool_size,
                mix,
            } => validate_generated(users, *pool_size, mix),
        }
    }
}

fn validate_generated(
    users: &UserSource,
    pool_size: usize,
    mix: &RequestMix,
) -> Result<(), ConfigError> {
    check(
        "pool",
        pool_size,
        (1..=POOL_MAX).contains(&pool_size),
        "must be in 1..=1000000",
    )?;
    check(
        "site-share",
        mix.site_share,
        (0.0..=1.0).contains(&mix.site_share),
        "must be in [0, 1]",
    )?;
    check(
        "video-share",
        mix.video_share,
        (0.0..=1.0).contains(&mix.video_share),
        "must be in [0, 1]",
    )?;
    check(
        "bot-share",
        mix.bot_share,
        (0.0..=1.0).contains(&mix.bot_share),
        "must be in [0, 1]",
    )?;
    check(
        "tmax",
        mix.tmax_ms,
        (1..=60_000).contains(&mix.tmax_ms),
        "must be in 1..=60000 ms",
    )?;
    if let UserSource::Synthetic { user_count } = users {
        check(
            "user-count",
            user_count,
            (1..=USER_COUNT_MAX).contains(user_count),
            "must be in 1..=50000000",
        )?;
    }
    Ok(())
}

fn check(
    name: &'static str,
    value: impl ToString,
    ok: bool,
    reason: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Range {
            name,
            value: value.to_string(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "s", "10x", "-1s", "1e400s", "25h", "1.2.3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn parses_target_with_port_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/openrtb2/auction").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path, "/openrtb2/auction");
    }

    #[test]
    fn target_defaults_to_port_80_and_root_path() {
        let t = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(t.addr.port(), 80);
        assert_eq!(t.path, "/");
        let t6 = Target::parse("http://[::1]:9000/x?y=1").unwrap();
        assert_eq!(t6.addr.port(), 9000);
        assert_eq!(t6.path, "/x?y=1");
    }

    #[test]
    fn rejects_https_and_empty_host() {
        assert!(Target::parse("https://127.0.0.1/").is_err());
        assert!(Target::parse("http:///x").is_err());
        assert!(Target::parse("127.0.0.1:80").is_err());
        assert!(Target::parse("http://127.0.0.1/a b").is_err());
        assert!(Target::parse("http://127.0.0.1/a\r\nX: y").is_err());
    }

    fn sample() -> LoadConfig {
        LoadConfig {
            target: Target::parse("http://127.0.0.1:1/").unwrap(),
            rate_per_s: 100.0,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            connections: 4,
            threads: 1,
            timeout: Duration::from_secs(1),
            seed: 1,
            driver: Driver::Auto,
            timer_spin: TIMER_SPIN_DEFAULT,
            phases: None,
            events: None,
            id_base: 0,
            body: BodySource::Generated {
                users: UserSource::Synthetic { user_count: 10 },
                pool_size: 10,
                mix: RequestMix::default(),
            },
        }
    }

    #[test]
    fn validate_accepts_sane_and_rejects_out_of_range() {
        assert!(sample().validate().is_ok());
        let mut c = sample();
        c.rate_per_s = 0.0;
        assert!(c.validate().is_err());
        let mut c = sample();
        c.threads = 5;
        assert!(c.validate().is_err(), "more threads than connections");
        let mut c = sample();
        c.body = BodySource::Generated {
            users: UserSource::Synthetic { user_count: 10 },
            pool_size: 10,
            mix: RequestMix {
                site_share: 1.5,
                ..RequestMix::default()
            },
        };
        assert!(c.validate().is_err());
    }
}
