//! Win, billing and loss notices: URLs with their macros already substituted, queued per shard
//! and sent by a few worker tasks of that shard, off the request's critical path.
//!
//! Bounds: at most `rtb.notice_queue_max` waiting (a new notice at the bound is refused and
//! counted: the ones queued first are as valuable and already waited), `rtb.notice_concurrency`
//! in flight, `rtb.notice_attempts` tries each with `rtb.notice_retry_ms` between them (only for
//! errors a retry can help, and 5xx), `rtb.notice_timeout_ms` per try, and one small connection
//! pool per notice host (at most `NOTICE_HOSTS_MAX` hosts; others fail, counted). Hosts must be IP
//! literals or `localhost`: resolving names on a shard would block it.
//!
//! Owns: the queue and the senders. Must not know: auctions (it gets finished URLs).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use local_sync::mpsc::unbounded;
use local_sync::semaphore::Semaphore;
use net::http::client::{ClientRequest, Pool, PoolConfig};

use super::RtbConfig;
use super::metrics::RtbMetrics;

/// Most distinct notice hosts a shard keeps pools for.
pub const NOTICE_HOSTS_MAX: usize = 256;

/// Kind of notice (for logs and counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Win,
    Billing,
    Loss,
}

/// One notice to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub dsp: usize,
    pub url: String,
}

/// The sending side, held by the shard.
pub struct NoticeQueue {
    tx: unbounded::Tx<Notice>,
    rx: RefCell<Option<unbounded::Rx<Notice>>>,
    waiting: Rc<Cell<usize>>,
    max: usize,
}

impl NoticeQueue {
    pub fn new(max: usize) -> NoticeQueue {
        let (tx, rx) = unbounded::channel();
        NoticeQueue {
            tx,
            rx: RefCell::new(Some(rx)),
            waiting: Rc::new(Cell::new(0)),
            max,
        }
    }

    /// Queues a notice; false (and counted by the caller) when the queue is full.
    pub fn push(&self, n: Notice, m: &RtbMetrics) -> bool {
        if self.waiting.get() >= self.max || self.tx.send(n).is_err() {
            m.total(|t| t.notices_refused += 1);
            return false;
        }
        self.waiting.set(self.waiting.get() + 1);
        m.total(|t| t.notices_queued += 1);
        true
    }

    pub fn waiting(&self) -> usize {
        self.waiting.get()
    }

    /// Starts the sender on the current shard (call once, inside its runtime): one task takes
    /// notices in order and spawns a delivery per notice, at most `notice_concurrency` at once.
    pub fn start(&self, cfg: &RtbConfig, metrics: Rc<RtbMetrics>) {
        let Some(mut rx) = self.rx.borrow_mut().take() else {
            return;
        };
        let sender = Rc::new(Sender {
            pools: RefCell::new(HashMap::new()),
            cfg: cfg.clone(),
            metrics,
        });
        let slots = Rc::new(Semaphore::new(cfg.notice_concurrency));
        let waiting = self.waiting.clone();
        monoio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                waiting.set(waiting.get().saturating_sub(1));
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return;
                };
                let s = sender.clone();
                monoio::spawn(async move {
                    let ok = s.deliver(&notice).await;
                    s.metrics.total(|t| {
                        if ok {
                            t.notices_sent += 1;
                        } else {
                            t.notices_failed += 1;
                        }
                    });
                    drop(permit);
                });
            }
        });
    }
}

struct Sender {
    pools: RefCell<HashMap<SocketAddr, Pool>>,
    cfg: RtbConfig,
    metrics: Rc<RtbMetrics>,
}

impl Sender {
    async fn deliver(&self, n: &Notice) -> bool {
        let Some((addr, host, target)) = split_url(&n.url) else {
            return false;
        };
        let Some(pool) = self.pool(addr, &host) else {
            return false;
        };
        let req = ClientRequest::get(&target);
        for attempt in 0..self.cfg.notice_attempts {
            if attempt > 0 {
                self.metrics.total(|t| t.notice_retries += 1);
                monoio::time::sleep(Duration::from_millis(self.cfg.notice_retry_ms)).await;
            }
            let deadline = Instant::now() + Duration::from_millis(self.cfg.notice_timeout_ms);
            match pool.send(&req, deadline).await {
                Ok(r) if (200..300).contains(&r.status) => return true,
                Ok(r) if r.status >= 500 => continue,
                Ok(_) => return false,
                Err(e) if e.retry_may_help() => continue,
                Err(_) => return false,
            }
        }
        false
    }

    fn pool(&self, addr: SocketAddr, host: &str) -> Option<Pool> {
        let mut pools = self.pools.borrow_mut();
        if let Some(p) = pools.get(&addr) {
            return Some(p.clone());
        }
        if pools.len() >= NOTICE_HOSTS_MAX {
            return None;
        }
        let mut cfg = PoolConfig::new(addr, host);
        cfg.max_conns = self.cfg.notice_concurrency;
        cfg.connect_timeout = Duration::from_millis(self.cfg.connect_timeout_ms);
        cfg.body_bytes_max = 64 * 1024;
        let p = Pool::new(cfg);
        pools.insert(addr, p.clone());
        Some(p)
    }
}

/// `http://ip[:port]/path?query` -> (address, Host header, target). Names other than `localhost`
/// are refused (no blocking resolution on a shard).
pub fn split_url(url: &str) -> Option<(SocketAddr, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    let target = if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{target}")
    };
    let addr = parse_authority(authority)?;
    Some((addr, authority.to_string(), target))
}

fn parse_authority(a: &str) -> Option<SocketAddr> {
    if let Ok(addr) = a.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (host, port) = match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, p.parse::<u16>().ok()?),
        _ => (a, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.eq_ignore_ascii_case("localhost") {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_urls_split_into_address_and_target() {
        let (a, h, t) = split_url("http://127.0.0.1:9100/win?p=1").unwrap();
        assert_eq!(
            (a.port(), h.as_str(), t.as_str()),
            (9100, "127.0.0.1:9100", "/win?p=1")
        );
        let (a, _, t) = split_url("http://localhost?x").unwrap();
        assert_eq!((a.port(), t.as_str()), (80, "/?x"));
        assert!(split_url("http://example.com/x").is_none());
        assert!(split_url("https://127.0.0.1/x").is_none());
        let (a, _, _) = split_url("http://[::1]:81/n").unwrap();
        assert_eq!(a.port(), 81);
    }

    #[test]
    fn a_full_queue_refuses_and_counts() {
        let q = NoticeQueue::new(2);
        let m = RtbMetrics::new(1);
        let n = Notice {
            kind: NoticeKind::Win,
            dsp: 0,
            url: "http://127.0.0.1:1/".into(),
        };
        assert!(q.push(n.clone(), &m));
        assert!(q.push(n.clone(), &m));
        assert!(!q.push(n, &m));
        let t = m.totals.borrow().clone();
        assert_eq!(
            (t.notices_queued, t.notices_refused, q.waiting()),
            (2, 1, 2)
        );
    }
}
