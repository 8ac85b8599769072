//! End-to-end tests of `net::http::client::Pool` over real loopback sockets, under both monoio
//! drivers. Upstreams are either `net::http::serve` (keep-alive, gzip) or a scripted blocking
//! std server that misbehaves on demand (reset, half-written, malformed, stall ...). Every
//! server thread uses socket timeouts and a stop flag, so every test stops by itself.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use net::http::client::{ClientError, ClientRequest, Pool, PoolConfig};

#[derive(Debug, Clone, Copy)]
enum Driver {
    IoUring,
    Legacy,
}

const DRIVERS: [Driver; 2] = [Driver::IoUring, Driver::Legacy];
const SERVER_IO_TIMEOUT: Duration = Duration::from_secs(3);
/// A stalled answer is written after this long (far past every client deadline) or never.
const STALL: Duration = Duration::from_millis(1500);

fn run<F, Fut>(driver: Driver, test: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    match driver {
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .expect("io_uring runtime (is io_uring allowed here?)")
            .block_on(test()),
        Driver::Legacy => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("legacy runtime")
            .block_on(test()),
    }
}

/// What the scripted server does with the next request it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    /// 200 with body "ok#<n>" (n = request number), keep-alive.
    Ok,
    /// 200 with `Connection: close`, then close.
    Close,
    /// Close with SO_LINGER 0 (TCP RST) without answering.
    Reset,
    /// Head promising 100 bytes, 10 written, then close.
    HalfWritten,
    /// Not HTTP at all, then close.
    Malformed,
    /// 503 with a body, keep-alive.
    Unavailable,
    /// Nothing for `STALL`, then an answer.
    Stall,
    /// 200 chunked "hello world", keep-alive.
    Chunked,
    /// 200 with a 64 KiB body.
    Big,
}

struct ScriptedServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    fn start(acts: &[Act]) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), acts)
    }

    fn start_on(addr: SocketAddr, acts: &[Act]) -> Self {
        let listener = TcpListener::bind(addr).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let script = Arc::new(Mutex::new(acts.iter().copied().collect::<VecDeque<_>>()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, a, st) = (
            Arc::clone(&script),
            Arc::clone(&accepted),
            Arc::clone(&stop),
        );
        let thread = thread::spawn(move || accept_loop(listener, s, a, st));
        Self {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    script: Arc<Mutex<VecDeque<Act>>>,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut connections = Vec::new();
    let served = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let (script, served, stop) =
                    (Arc::clone(&script), Arc::clone(&served), Arc::clone(&stop));
                connections.push(thread::spawn(move || {
                    serve_scripted(stream, script, served, stop)
                }));
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

fn serve_scripted(
    mut stream: TcpStream,
    script: Arc<Mutex<VecDeque<Act>>>,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    stream.set_write_timeout(Some(SERVER_IO_TIMEOUT)).unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
        match read_request(&mut stream, &mut buf) {
            ReadResult::Request => {}
            ReadResult::Pending => continue,
            ReadResult::Closed => return,
        }
        let n = served.fetch_add(1, Ordering::SeqCst);
        let act = script.lock().unwrap().pop_front().unwrap_or(Act::Ok);
        if !answer(&mut stream, act, n, &stop) {
            return;
        }
    }
}

enum ReadResult {
    Request,
    Pending,
    Closed,
}

/// Read one request (head + Content-Length body) into `buf`, consuming it.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> ReadResult {
    loop {
        if let Some(end) = request_end(buf) {
            buf.drain(..end);
            return ReadResult::Request;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return ReadResult::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return ReadResult::Pending;
            }
            Err(_) => return ReadResult::Closed,
        }
    }
}

fn request_end(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
    (buf.len() >= head_end + length).then_some(head_end + length)
}

/// Returns whether the connection stays open.
fn answer(stream: &mut TcpStream, act: Act, n: usize, stop: &AtomicBool) -> bool {
    let ok = |extra: &str, body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\n{extra}content-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let text = match act {
        Act::Ok => ok("", &format!("ok#{n}")),
        Act::Close => ok("connection: close\r\n", "bye"),
        Act::Reset => {
            let _ = socket2_linger_zero(stream);
            return false;
        }
        Act::HalfWritten => "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789".to_string(),
        Act::Malformed => "SURPRISE this is not http\r\n\r\n".to_string(),
        Act::Unavailable => "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy".to_string(),
        Act::Stall => {
            let until = Instant::now() + STALL;
            while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            ok("", "late")
        }
        Act::Chunked => {
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                .to_string()
        }
        Act::Big => ok("", &"x".repeat(64 * 1024)),
    };
    let keep = matches!(
        act,
        Act::Ok | Act::Unavailable | Act::Stall | Act::Chunked | Act::Big
    );
    stream.write_all(text.as_bytes()).is_ok() && keep
}

/// Make the next close send a TCP RST.
fn socket2_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd and a properly sized `linger` struct.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn pool_for(addr: SocketAddr) -> Pool {
    let mut config = PoolConfig::new(addr, "test");
    config.max_conns = 4;
    config.connect_timeout = Duration::from_millis(500);
    config.backoff_min = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    Pool::new(config)
}

fn deadline(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms)
}

const GENEROUS_MS: u64 = 2_000;

async fn get_ok(pool: &Pool) -> Vec<u8> {
    let resp = pool
        .send(&ClientRequest::post("/x", b"{}"), deadline(GENEROUS_MS))
        .await
        .expect("request works");
    assert_eq!(
        resp.status,
        200,
        "body {:?}",
        String::from_utf8_lossy(&resp.body)
    );
    resp.body
}

#[test]
fn keep_alive_reuses_one_connection() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[]);
        run(driver, || async {
            let pool = pool_for(server.addr);
            for i in 0..5 {
                assert_eq!(get_ok(&pool).await, format!("ok#{i}").as_bytes());
            }
            let s = pool.stats().snapshot();
            assert_eq!(
                (s.connects, s.reuses, s.responses, s.broken),
                (1, 4, 5, 0),
                "{s:?}"
            );
            assert_eq!((pool.open_conns(), pool.idle_conns()), (1, 1));
        });
        assert_eq!(server.accepted(), 1, "{driver:?}");
    }
}

#[test]
fn warm_opens_connections_that_are_then_reused() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[]);
        run(driver, || async {
            let pool = pool_for(server.addr);
            assert_eq!(pool.warm(10).await, 4, "bounded by max_conns");
            assert_eq!(pool.idle_conns(), 4);
            get_ok(&pool).await;
            let s = pool.stats().snapshot();
            assert_eq!((s.connects, s.reuses), (4, 1), "{s:?}");
        });
    }
}

#[test]
fn server_close_is_honoured_and_next_request_reconnects() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[Act::Close]);
        run(driver, || async {
            let pool = pool_for(server.addr);
            assert_eq!(get_ok(&pool).await, b"bye");
            assert_eq!(pool.open_conns(), 0, "closed connection is not kept");
            get_ok(&pool).await;
            let s = pool.stats().snapshot();
            assert_eq!((s.connects, s.closed_by_peer, s.broken), (2, 1, 0), "{s:?}");
        });
    }
}

#[test]
fn faults_fail_one_request_and_never_poison_the_pool() {
    let cases = [
        (Act::Reset, ClientError::Reset),
        (Act::HalfWritten, ClientError::Reset),
        (
            Act::Malformed,
            ClientError::Malformed("invalid status line or header"),
        ),
    ];
    for driver in DRIVERS {
        for (act, expected) in cases {
            let server = ScriptedServer::start(&[Act::Ok, act]);
            run(driver, || async {
                let pool = pool_for(server.addr);
                get_ok(&pool).await;
                let error = pool
                    .send(&ClientRequest::post("/x", b"{}"), deadline(GENEROUS_MS))
                    .await
                    .expect_err("fault is an error");
                assert_eq!(error, expected, "{driver:?} {act:?}");
                assert_eq!(pool.open_conns(), 0, "broken connection is closed");
                assert_eq!(get_ok(&pool).await, b"ok#2", "{driver:?} {act:?}");
                let s = pool.stats().snapshot();
                assert_eq!(
                    (s.broken, s.connects, s.responses),
                    (1, 2, 2),
                    "{act:?} {s:?}"
                );
            });
        }
    }
}

#[test]
fn server_error_status_is_a_response_and_keeps_the_connection() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[Act::Unavailable]);
        run(driver, || async {
            let pool = pool_for(server.addr);
            let resp = pool
                .send(&ClientRequest::post("/x", b"{}"), deadline(GENEROUS_MS))
                .await
                .expect("503 is a response");
            assert_eq!((resp.status, resp.body.as_slice()), (503, &b"busy"[..]));
            assert!(!resp.is_success());
            get_ok(&pool).await;
            let s = pool.stats().snapshot();
            assert_eq!((s.connects, s.reuses), (1, 1), "{s:?}");
        });
    }
}

#[test]
fn stall_past_deadline_closes_the_connection_and_next_send_works() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[Act::Stall]);
        run(driver, || async {
            let pool = pool_for(server.addr);
            let error = pool
                .send(&ClientRequest::post("/x", b"{}"), deadline(80))
                .await
                .expect_err("stalled");
            assert_eq!(error, ClientError::Timeout);
            assert!(!error.retry_may_help());
            assert_eq!(
                pool.open_conns(),
                0,
                "abandoned connection is closed, not returned"
            );
            // The late answer goes to a closed socket; a new connection serves the next request.
            assert_eq!(get_ok(&pool).await, b"ok#1");
            let s = pool.stats().snapshot();
            assert_eq!((s.timeouts, s.abandoned, s.connects), (1, 1, 2), "{s:?}");
        });
        assert_eq!(server.accepted(), 2);
    }
}

#[test]
fn dropped_send_future_counts_as_abandoned() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[Act::Stall]);
        run(driver, || async {
            let pool = pool_for(server.addr);
            pool.warm(1).await;
            let req = ClientRequest::post("/x", b"{}");
            monoio::select! {
                _ = pool.send(&req, deadline(GENEROUS_MS)) => {
                    panic!("stalled request answered");
                }
                _ = monoio::time::sleep(Duration::from_millis(50)) => {}
            }
            let s = pool.stats().snapshot();
            assert_eq!((s.abandoned, s.timeouts, s.open), (1, 0, 0), "{s:?}");
            get_ok(&pool).await;
        });
    }
}

#[test]
fn pool_limit_refuses_immediately() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[Act::Stall, Act::Stall]);
        run(driver, || async {
            let mut config = PoolConfig::new(server.addr, "test");
            config.max_conns = 2;
            let pool = Pool::new(config);
            let req = ClientRequest::post("/x", b"{}");
            let (a, b, c) = (pool.clone(), pool.clone(), pool.clone());
            let slow_a = monoio::spawn(async move {
                a.send(&ClientRequest::post("/x", b"{}"), deadline(300))
                    .await
            });
            let slow_b = monoio::spawn(async move {
                b.send(&ClientRequest::post("/x", b"{}"), deadline(300))
                    .await
            });
            monoio::time::sleep(Duration::from_millis(50)).await;
            let started = Instant::now();
            let error = c
                .send(&req, deadline(GENEROUS_MS))
                .await
                .expect_err("limit");
            assert_eq!(error, ClientError::PoolExhausted);
            assert!(started.elapsed() < Duration::from_millis(250), "not queued");
            assert_eq!(slow_a.await, Err(ClientError::Timeout));
            assert_eq!(slow_b.await, Err(ClientError::Timeout));
            let s = pool.stats().snapshot();
            assert_eq!((s.exhausted, s.timeouts, s.open), (1, 2, 0), "{s:?}");
        });
    }
}

#[test]
fn chunked_and_oversized_bodies() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[Act::Chunked, Act::Big]);
        run(driver, || async {
            let mut config = PoolConfig::new(server.addr, "test");
            config.body_bytes_max = 16 * 1024;
            let pool = Pool::new(config);
            assert_eq!(get_ok(&pool).await, b"hello world");
            let error = pool
                .send(&ClientRequest::post("/x", b"{}"), deadline(GENEROUS_MS))
                .await
                .expect_err("too large");
            assert!(matches!(error, ClientError::TooLarge(_)), "{error:?}");
            get_ok(&pool).await;
            let s = pool.stats().snapshot();
            assert_eq!((s.connects, s.reuses, s.broken), (2, 1, 1), "{s:?}");
        });
    }
}

#[test]
fn refused_connects_back_off_then_recover() {
    for driver in DRIVERS {
        // A port with nothing listening: bind, read the port, close.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        run(driver, || async {
            let pool = pool_for(addr);
            let req = ClientRequest::post("/x", b"{}");
            let first = pool
                .send(&req, deadline(GENEROUS_MS))
                .await
                .expect_err("refused");
            assert_eq!(
                first,
                ClientError::Connect(std::io::ErrorKind::ConnectionRefused)
            );
            assert!(first.retry_may_help());
            let second = pool
                .send(&req, deadline(GENEROUS_MS))
                .await
                .expect_err("backing off");
            assert_eq!(second, ClientError::BackingOff);
            assert_eq!(pool.warm(2).await, 0, "warm respects the backoff too");
            let s = pool.stats().snapshot();
            assert_eq!(
                (s.connect_failures, s.backoff_refusals, s.open),
                (1, 2, 0),
                "{s:?}"
            );
            // The upstream comes up; after the (at most 20 ms) first backoff, connects resume.
            let server = ScriptedServer::start_on(addr, &[]);
            monoio::time::sleep(Duration::from_millis(30)).await;
            get_ok(&pool).await;
            assert_eq!(pool.stats().snapshot().connects, 1);
            drop(server);
        });
    }
}

#[test]
fn idle_connection_closed_by_server_is_not_reused() {
    for driver in DRIVERS {
        let server = ScriptedServer::start(&[]);
        run(driver, move || async move {
            let pool = pool_for(server.addr);
            get_ok(&pool).await;
            drop(server); // closes every server connection and the listener
            monoio::time::sleep(Duration::from_millis(50)).await;
            let error = pool
                .send(&ClientRequest::post("/x", b"{}"), deadline(GENEROUS_MS))
                .await
                .expect_err("server gone");
            assert!(matches!(error, ClientError::Connect(_)), "{error:?}");
            let s = pool.stats().snapshot();
            assert_eq!((s.stale, s.reuses), (1, 0), "{s:?}");
        });
    }
}

/// Upstream on `net::http::serve`: echoes the request body, gunzipped when it came gzip'd,
/// with `x-encoding` telling which.
struct Gunzip;

impl net::http::Handler for Gunzip {
    async fn handle<'a>(
        &'a self,
        req: &'a net::http::Request<'a>,
        resp: &'a mut net::http::Response,
    ) {
        let gzipped = req.header("content-encoding") == Some(b"gzip");
        let mut body = Vec::new();
        if gzipped {
            let _ = flate2::read::GzDecoder::new(req.body).read_to_end(&mut body);
        } else {
            body.extend_from_slice(req.body);
        }
        let encoding: &[u8] = if gzipped { b"gzip" } else { b"identity" };
        resp.header("x-encoding", std::str::from_utf8(encoding).unwrap())
            .body(&body);
    }
}

#[test]
fn gzip_request_bodies_against_the_net_server() {
    for driver in DRIVERS {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let server_stop = Arc::clone(&stop);
        let server = thread::spawn(move || {
            run(Driver::Legacy, || async move {
                let listener = net::http::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let shutdown = net::http::Shutdown::new();
                let trigger = shutdown.clone();
                monoio::spawn(async move {
                    while !server_stop.load(Ordering::SeqCst) {
                        monoio::time::sleep(Duration::from_millis(5)).await;
                    }
                    trigger.trigger(Instant::now());
                });
                let stats = std::rc::Rc::new(net::http::HttpStats::new());
                let limits = net::http::Limits::default();
                net::http::serve(listener, std::rc::Rc::new(Gunzip), limits, shutdown, stats).await;
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("server address");
        run(driver, || async {
            let mut config = PoolConfig::new(addr, "test");
            config.gzip_requests = true;
            config.gzip_min_bytes = 100;
            let pool = Pool::new(config);
            let big = br#"{"id":"r1","imp":[{"id":"1","bidfloor":0.5}]}"#.repeat(50);
            let headers: &[(&str, &[u8])] = &[("content-type", b"application/json")];
            for (body, encoding) in [
                (&big[..], "gzip"),
                (&b"{}"[..], "identity"),
                (&big[..], "gzip"),
            ] {
                let req = ClientRequest::post("/openrtb2/auction", body).headers(headers);
                let resp = pool
                    .send(&req, deadline(GENEROUS_MS))
                    .await
                    .expect("answer");
                assert_eq!(resp.status, 200);
                assert_eq!(resp.headers.get("x-encoding"), Some(encoding.as_bytes()));
                assert_eq!(resp.body, body, "{driver:?}");
            }
            let s = pool.stats().snapshot();
            assert_eq!((s.connects, s.reuses), (1, 2), "{s:?}");
        });
        stop.store(true, Ordering::SeqCst);
        server.join().expect("server thread");
    }
}
