//! End-to-end tests of `net::http::serve` over real loopback sockets, under both monoio drivers
//! (io_uring and legacy epoll). Clients are plain blocking `std::net::TcpStream`s with timeouts,
//! so every test stops even if the server misbehaves.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use net::http::{Handler, HttpStats, Limits, Request, Response, Shutdown, bind_reuseport, serve};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
const SLEEP_HANDLER_MS: u64 = 200;
const BIG_BODY_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy)]
enum Driver {
    IoUring,
    Legacy,
}

const DRIVERS: [Driver; 2] = [Driver::IoUring, Driver::Legacy];

/// Test handler: `/sleep` sleeps then answers, `/echo` echoes the body, `/nofill` is 204,
/// anything else describes the request.
struct TestHandler;

impl Handler for TestHandler {
    async fn handle<'a>(&'a self, req: &'a Request<'a>, resp: &'a mut Response) {
        match req.path {
            "/sleep" => {
                monoio::time::sleep(Duration::from_millis(SLEEP_HANDLER_MS)).await;
                resp.body(b"slept");
            }
            "/echo" => {
                resp.header("x-method", req.method_str()).body(req.body);
            }
            "/nofill" => {
                resp.status(204);
            }
            "/big" => {
                resp.body_mut().resize(BIG_BODY_BYTES, b'x');
            }
            _ => {
                let ua = req.header("user-agent").unwrap_or(b"-");
                let text = format!(
                    "{} {} {} {} {}",
                    req.method_str(),
                    req.path,
                    req.query,
                    req.body.len(),
                    String::from_utf8_lossy(ua)
                );
                resp.header("content-type", "text/plain")
                    .body(text.as_bytes());
            }
        }
    }
}

type StatsSnapshot = Vec<(&'static str, u64)>;

/// A server on its own thread and runtime. `stop(drain_ms)` triggers the shutdown from outside.
struct TestServer {
    addr: SocketAddr,
    stop_drain_ms: Arc<AtomicU64>,
    thread: Option<JoinHandle<StatsSnapshot>>,
}

const NOT_STOPPED: u64 = u64::MAX;

impl TestServer {
    fn start(driver: Driver, limits: Limits) -> Self {
        let (addr_tx, addr_rx) = mpsc::channel();
        let stop_drain_ms = Arc::new(AtomicU64::new(NOT_STOPPED));
        let stop = Arc::clone(&stop_drain_ms);
        let thread = thread::spawn(move || match driver {
            Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
                .expect("io_uring runtime (is io_uring allowed here?)")
                .block_on(run_server(limits, addr_tx, stop)),
            Driver::Legacy => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("legacy runtime")
                .block_on(run_server(limits, addr_tx, stop)),
        });
        let addr = addr_rx
            .recv_timeout(CLIENT_TIMEOUT)
            .expect("server did not report its address");
        Self {
            addr,
            stop_drain_ms,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    fn trigger_shutdown(&self, drain_ms: u64) {
        self.stop_drain_ms.store(drain_ms, Ordering::SeqCst);
    }

    /// Shut down (drain 1 s) and return the final counters.
    fn stop(mut self, drain_ms: u64) -> Stats {
        self.trigger_shutdown(drain_ms);
        let thread = self.thread.take().expect("running");
        Stats(thread.join().expect("server thread panicked"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop_drain_ms.store(0, Ordering::SeqCst);
            let _ = thread.join();
        }
    }
}

struct Stats(StatsSnapshot);

impl Stats {
    fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

async fn run_server(
    limits: Limits,
    addr_tx: mpsc::Sender<SocketAddr>,
    stop_drain_ms: Arc<AtomicU64>,
) -> StatsSnapshot {
    let listener = bind_reuseport("127.0.0.1:0".parse().expect("addr")).expect("bind");
    addr_tx
        .send(listener.local_addr().expect("local addr"))
        .expect("report addr");
    let shutdown = Shutdown::new();
    let stats = Rc::new(HttpStats::new());
    let watcher = shutdown.clone();
    monoio::spawn(async move {
        loop {
            let drain_ms = stop_drain_ms.load(Ordering::SeqCst);
            if drain_ms != NOT_STOPPED {
                watcher.trigger(Instant::now() + Duration::from_millis(drain_ms));
                return;
            }
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    serve(
        listener,
        Rc::new(TestHandler),
        limits,
        shutdown,
        Rc::clone(&stats),
    )
    .await;
    stats.iter().collect()
}

fn test_limits() -> Limits {
    Limits {
        idle_timeout_ms: 300,
        request_timeout_ms: 300,
        write_timeout_ms: 1_000,
        linger_ms: 200,
        ..Limits::default()
    }
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection") == Some("close")
    }
}

/// Blocking client that keeps unread bytes between responses (for pipelining).
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT).expect("connect");
        stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("timeout");
        stream
            .set_write_timeout(Some(CLIENT_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(error) if error.kind() == ErrorKind::ConnectionReset => 0,
            Err(error) => panic!("read failed: {error}"),
        }
    }

    /// Read one response; `head_request` means no body follows the headers.
    fn response_to(&mut self, head_request: bool) -> HttpResponse {
        loop {
            if let Some((response, used)) = parse_response(&self.buf, head_request) {
                self.buf.drain(..used);
                return response;
            }
            assert!(
                self.fill() > 0,
                "connection closed before a full response: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    fn response(&mut self) -> HttpResponse {
        self.response_to(false)
    }

    fn request(&mut self, bytes: &[u8]) -> HttpResponse {
        self.send(bytes);
        self.response()
    }

    /// The server closed: EOF (or reset) with no further bytes.
    fn expect_closed(&mut self) {
        assert!(self.buf.is_empty(), "unexpected bytes: {:?}", self.buf);
        assert_eq!(
            self.fill(),
            0,
            "expected the server to close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Nothing arrives within `wait`.
    fn expect_silence(&mut self, wait: Duration) {
        self.stream.set_read_timeout(Some(wait)).expect("timeout");
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected silence, got {other:?}"),
        }
        self.stream
            .set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("timeout");
    }
}

fn parse_response(buf: &[u8], head_request: bool) -> Option<(HttpResponse, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf).expect("valid response") {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().expect("numeric content-length"))
        .unwrap_or(0);
    let body_len = if head_request { 0 } else { length };
    if buf.len() < head_len + body_len {
        return None;
    }
    let response = HttpResponse {
        status: parsed.code.expect("status"),
        headers,
        body: buf[head_len..head_len + body_len].to_vec(),
    };
    Some((response, head_len + body_len))
}

fn for_each_driver(test: impl Fn(Driver)) {
    for driver in DRIVERS {
        eprintln!("driver: {driver:?}");
        test(driver);
    }
}

#[test]
fn simple_get_and_post() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        let get = client.request(b"GET /hello?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: ua/1\r\n\r\n");
        assert_eq!(get.status, 200);
        assert_eq!(get.body, b"GET /hello x=1 0 ua/1");
        assert_eq!(get.header("content-type"), Some("text/plain"));
        assert!(!get.closes());
        let post = client
            .request(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
        assert_eq!(post.status, 200);
        assert_eq!(post.body, b"hello world");
        assert_eq!(post.header("x-method"), Some("POST"));
        let nofill = client.request(b"GET /nofill HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(nofill.status, 204);
        assert_eq!(nofill.header("content-length"), None);
        client.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n");
        let head = client.response_to(true);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("12")); // "HEAD /x  0 -"
        let after_head = client.request(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(after_head.body, b"GET /after  0 -");
        let stats = server.stop(1_000);
        assert_eq!(stats.get("requests"), 5);
        assert_eq!(stats.get("responses_2xx"), 5);
    });
}

#[test]
fn keep_alive_reuses_one_connection() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        for i in 0..5 {
            let path = format!("GET /n{i} HTTP/1.1\r\nHost: t\r\n\r\n");
            let response = client.request(path.as_bytes());
            assert_eq!(response.body, format!("GET /n{i}  0 -").as_bytes());
        }
        let stats = server.stop(1_000);
        assert_eq!(stats.get("connections_accepted"), 1);
        assert_eq!(stats.get("requests"), 5);
        assert_eq!(stats.get("connections_active"), 0);
    });
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        client.send(
            b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n\
              POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\n\r\nsecond\
              GET /third?q HTTP/1.1\r\nHost: t\r\n\r\n",
        );
        assert_eq!(client.response().body, b"GET /first  0 -");
        assert_eq!(client.response().body, b"second");
        assert_eq!(client.response().body, b"GET /third q 0 -");
        client.expect_silence(Duration::from_millis(50));
    });
}

#[test]
fn pipeline_depth_bound_flushes_and_keeps_order() {
    for_each_driver(|driver| {
        let limits = Limits {
            pipeline_depth_max: 2,
            ..test_limits()
        };
        let server = TestServer::start(driver, limits);
        let mut client = server.connect();
        let batch: Vec<u8> = (0..7)
            .flat_map(|i| format!("GET /p{i} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes())
            .collect();
        client.send(&batch);
        for i in 0..7 {
            assert_eq!(client.response().body, format!("GET /p{i}  0 -").as_bytes());
        }
    });
}

#[test]
fn chunked_body_is_decoded() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        );
        thread::sleep(Duration::from_millis(20));
        client.send(b"1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: y\r\n\r\n");
        let response = client.response();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello world");
        let next = client.request(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(next.body, b"GET /next  0 -");
    });
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        );
        let interim = client.response();
        assert_eq!(interim.status, 100);
        client.send(b"body");
        let response = client.response();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"body");
    });
}

#[test]
fn large_body_within_limit_grows_the_buffer() {
    for_each_driver(|driver| {
        let limits = Limits {
            read_buffer_bytes: 1024,
            ..test_limits()
        };
        let server = TestServer::start(driver, limits);
        let mut client = server.connect();
        let body: Vec<u8> = (0..60_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        client.send(head.as_bytes());
        client.send(&body);
        let response = client.response();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, body);
    });
}

/// Send `request`, expect an error `status` with Connection: close, then the server closes.
fn assert_error(server: &TestServer, request: &[u8], status: u16) {
    let mut client = server.connect();
    client.send(request);
    let response = client.response();
    assert_eq!(
        response.status,
        status,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(response.closes(), "error responses close the connection");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(!response.body.is_empty(), "error responses carry a reason");
    client.expect_closed();
}

#[test]
fn protocol_errors_get_their_status_and_close() {
    for_each_driver(|driver| {
        let limits = Limits {
            header_bytes_max: 1024,
            headers_count_max: 8,
            body_bytes_max: 1000,
            ..test_limits()
        };
        let server = TestServer::start(driver, limits);
        assert_error(&server, b"THIS IS NOT HTTP\r\n\r\n", 400);
        assert_error(
            &server,
            b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
            400,
        );
        assert_error(&server, b"POST /echo HTTP/1.1\r\nHost: t\r\n\r\n", 411);
        assert_error(&server, b"PUT /echo HTTP/1.1\r\nHost: t\r\n\r\n", 411);
        assert_error(
            &server,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\npartial body",
            413,
        );
        assert_error(
            &server,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\nabc",
            413,
        );
        let big_header = format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "v".repeat(2000)
        );
        assert_error(&server, big_header.as_bytes(), 431);
        let many: String = (0..20).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_error(
            &server,
            format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
            431,
        );
        assert_error(
            &server,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        );
        assert_error(&server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
        assert_error(&server, b"GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505);
        let stats = server.stop(1_000);
        for (name, count) in [
            ("errors_400", 2),
            ("errors_411", 2),
            ("errors_413", 2),
            ("errors_431", 2),
            ("errors_501", 1),
            ("errors_505", 2),
        ] {
            assert_eq!(stats.get(name), count, "{name}");
        }
        assert_eq!(stats.get("requests"), 0);
    });
}

#[test]
fn error_after_good_requests_keeps_earlier_answers() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        client.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\nGARBAGE\r\n\r\n");
        assert_eq!(client.response().body, b"GET /ok  0 -");
        let error = client.response();
        assert_eq!(error.status, 400);
        client.expect_closed();
    });
}

#[test]
fn slow_client_gets_408_and_close() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        let sent_at = Instant::now();
        client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Le");
        let response = client.response();
        assert_eq!(response.status, 408);
        assert!(response.closes());
        assert!(
            sent_at.elapsed() >= Duration::from_millis(300),
            "408 only after the request timeout"
        );
        client.expect_closed();
        // Dribbling bytes does not extend the deadline.
        let mut dribbler = server.connect();
        dribbler.send(b"GET / HTTP/1.1\r\n");
        for _ in 0..3 {
            thread::sleep(Duration::from_millis(60));
            dribbler.send(b"X-A: b\r\n");
        }
        assert_eq!(dribbler.response().status, 408);
        let stats = server.stop(1_000);
        assert_eq!(stats.get("errors_408"), 2);
    });
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        assert_eq!(
            client.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").status,
            200
        );
        let idle_from = Instant::now();
        client.expect_closed();
        assert!(idle_from.elapsed() >= Duration::from_millis(250));
        let mut never_sent = server.connect();
        never_sent.expect_closed();
        let stats = server.stop(1_000);
        assert_eq!(stats.get("idle_closes"), 2);
        assert_eq!(stats.get("errors_408"), 0);
    });
}

#[test]
fn connection_close_and_http10_rules_are_honoured() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        let response = client.request(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        assert!(response.closes());
        client.expect_closed();
        let mut old = server.connect();
        assert!(old.request(b"GET / HTTP/1.0\r\n\r\n").closes());
        old.expect_closed();
        let mut old_keep = server.connect();
        let kept = old_keep.request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(kept.header("connection"), Some("keep-alive"));
        assert_eq!(
            old_keep
                .request(b"GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .status,
            200
        );
    });
}

#[test]
fn graceful_shutdown_finishes_in_flight_request_then_closes() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut idle = server.connect();
        assert_eq!(
            idle.request(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").status,
            200
        );
        let mut busy = server.connect();
        busy.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
        thread::sleep(Duration::from_millis(50));
        server.trigger_shutdown(2_000);
        idle.expect_closed();
        let response = busy.response();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"slept");
        assert!(response.closes());
        busy.expect_closed();
        let stopped_at = Instant::now();
        let stats = server.stop(2_000);
        assert!(
            stopped_at.elapsed() < Duration::from_millis(1_500),
            "serve returned once drained"
        );
        assert_eq!(stats.get("connections_dropped_at_deadline"), 0);
        assert_eq!(stats.get("connections_active"), 0);
    });
}

#[test]
fn drain_deadline_drops_busy_connections() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let addr = server.addr;
        let mut busy = server.connect();
        busy.send(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\n");
        thread::sleep(Duration::from_millis(30));
        let stats = server.stop(20);
        busy.expect_closed();
        assert_eq!(stats.get("connections_dropped_at_deadline"), 1);
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err(),
            "listener closed"
        );
    });
}

#[test]
fn connections_max_pauses_accepting_until_one_closes() {
    for_each_driver(|driver| {
        let limits = Limits {
            connections_max: 1,
            idle_timeout_ms: 5_000,
            ..test_limits()
        };
        let server = TestServer::start(driver, limits);
        let mut first = server.connect();
        assert_eq!(
            first.request(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n").status,
            200
        );
        let mut second = server.connect();
        second.send(b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n");
        second.expect_silence(Duration::from_millis(200));
        drop(first);
        assert_eq!(second.response().body, b"GET /2  0 -");
        let stats = server.stop(1_000);
        assert!(stats.get("connections_limit_reached") >= 1);
    });
}

#[test]
fn responses_larger_than_the_socket_takes_at_once_arrive_whole_to_a_late_reader() {
    for_each_driver(|driver| {
        let server = TestServer::start(driver, test_limits());
        let mut client = server.connect();
        let batch: Vec<u8> = (0..4)
            .flat_map(|_| b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n".to_vec())
            .collect();
        client.send(&batch);
        // Socket buffers fill before the client reads: the server's first send takes part of
        // the batch and the driver writes the rest once the client drains it.
        thread::sleep(Duration::from_millis(300));
        for _ in 0..4 {
            let response = client.response();
            assert_eq!(response.status, 200);
            assert_eq!(response.body.len(), BIG_BODY_BYTES);
            assert!(response.body.iter().all(|&b| b == b'x'));
        }
        let stats = server.stop(1_000);
        assert_eq!(stats.get("write_timeouts"), 0);
    });
}

#[test]
fn client_that_never_reads_hits_the_write_timeout() {
    for_each_driver(|driver| {
        let limits = Limits {
            write_timeout_ms: 200,
            ..test_limits()
        };
        let server = TestServer::start(driver, limits);
        let mut client = server.connect();
        let batch: Vec<u8> = (0..16)
            .flat_map(|_| b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n".to_vec())
            .collect();
        client.send(&batch);
        // Never read: socket buffers fill, the server's write stalls and times out.
        thread::sleep(Duration::from_millis(800));
        let stats = server.stop(3_000);
        assert_eq!(stats.get("write_timeouts"), 1);
        assert_eq!(stats.get("connections_dropped_at_deadline"), 0);
        drop(client);
    });
}
