//! Integration tests for `rtb-load` against tiny std-thread HTTP servers on 127.0.0.1.
//! They assert counts and behaviour, never latency values.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tools::load::config::TIMER_SPIN_DEFAULT;
use tools::load::{
    self, BodySource, Driver, LoadConfig, Population, RequestMix, RequestPool, Target, UserSource,
};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Odd request ids get 200 with a body, even ones 204.
    Alternate,
    /// 200 with a chunked body.
    Chunked,
    /// 204 with `Connection: close`, then close.
    CloseEach,
    /// Read requests, never answer.
    Stall,
    /// 200 with a BidResponse of two bids (one house ad): odd ids with Content-Length, even
    /// ids chunked (the body split across two chunks).
    Bids,
}

#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    answered_200: AtomicU64,
    answered_204: AtomicU64,
    bad_json: AtomicU64,
    ids: Mutex<Vec<String>>,
}

struct TestServer {
    addr: SocketAddr,
    seen: Arc<Seen>,
}

impl TestServer {
    fn start(mode: Mode) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let accept_seen = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1000) {
                let Ok(stream) = stream else { continue };
                let seen = accept_seen.clone();
                std::thread::spawn(move || serve(stream, mode, &seen));
            }
        });
        TestServer { addr, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/openrtb2/auction", self.addr)
    }
}

fn serve(stream: TcpStream, mode: Mode, seen: &Seen) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(body) = read_request(&mut reader) {
        seen.requests.fetch_add(1, Ordering::Relaxed);
        let id = request_id(&body, seen);
        let reply: Vec<u8> = match mode {
            Mode::Stall => continue,
            Mode::CloseEach => b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_vec(),
            Mode::Chunked => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                    .to_vec()
            }
            Mode::Alternate if id % 2 == 1 => {
                let body = format!("{{\"id\":\"{id}\",\"seatbid\":[]}}");
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                    .into_bytes()
            }
            Mode::Alternate => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            Mode::Bids => bid_response(id),
        };
        if reply.starts_with(b"HTTP/1.1 200") {
            seen.answered_200.fetch_add(1, Ordering::Relaxed);
        } else {
            seen.answered_204.fetch_add(1, Ordering::Relaxed);
        }
        if writer.write_all(&reply).is_err() || mode == Mode::CloseEach {
            return;
        }
    }
}

fn bid_response(id: u64) -> Vec<u8> {
    let body = format!(
        "{{\"id\":\"{id:020}\",\"seatbid\":[{{\"seat\":\"adcore\",\"bid\":[\
         {{\"id\":\"a\",\"impid\":\"1\",\"price\":1.5,\"cid\":\"7\",\"crid\":\"70\"}},\
         {{\"id\":\"b\",\"impid\":\"2\",\"price\":0.01,\"cid\":\"90\",\"ext\":{{\"adcore\":{{\"house\":true}}}}}}]}}]}}"
    );
    if id % 2 == 1 {
        return format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
    }
    let (a, b) = body.split_at(body.len() / 2);
    format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    )
    .into_bytes()
}

/// Reads one request; `None` at end of stream or on a malformed request.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut content_length = 0usize;
    let mut line = String::new();
    let mut first = true;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if first {
            assert!(
                line.starts_with("POST /openrtb2/auction HTTP/1.1"),
                "{line:?}"
            );
            first = false;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

fn request_id(body: &[u8], seen: &Seen) -> u64 {
    let parsed: Result<sonic_rs::Value, _> = sonic_rs::from_slice(body);
    let id = parsed
        .ok()
        .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_string)));
    match id {
        Some(id) => {
            let n = id.parse().unwrap_or(0);
            seen.ids.lock().unwrap().push(id);
            n
        }
        None => {
            seen.bad_json.fetch_add(1, Ordering::Relaxed);
            0
        }
    }
}

fn config(url: &str, rate: f64, duration_ms: u64, connections: usize) -> LoadConfig {
    LoadConfig {
        target: Target::parse(url).unwrap(),
        rate_per_s: rate,
        duration: Duration::from_millis(duration_ms),
        warmup: Duration::ZERO,
        connections,
        threads: 1,
        timeout: Duration::from_secs(2),
        seed: 42,
        driver: Driver::Auto,
        timer_spin: TIMER_SPIN_DEFAULT,
        phases: None,
        events: None,
        id_base: 0,
        body: BodySource::Generated {
            users: UserSource::Synthetic { user_count: 1000 },
            pool_size: 200,
            mix: RequestMix::default(),
        },
    }
}

fn failures(r: &load::LoadReport) -> u64 {
    r.errors_by_kind.write + r.errors_by_kind.read + r.errors_by_kind.parse + r.timeouts
}

#[test]
fn open_loop_run_counts_every_request_and_status() {
    let server = TestServer::start(Mode::Alternate);
    let mut cfg = config(&server.url(), 500.0, 2000, 4);
    cfg.threads = 2;
    let r = load::run(&cfg).unwrap().report;
    assert!(
        (600..=1100).contains(&r.sent),
        "sent {} for 500/s x 2s",
        r.sent
    );
    assert_eq!(
        r.completed,
        r.sent - failures(&r),
        "completed == sent - failures"
    );
    assert_eq!(failures(&r), 0, "loopback run had failures: {r:?}");
    assert_eq!(r.errors, 0);
    let seen = &server.seen;
    assert_eq!(seen.bad_json.load(Ordering::Relaxed), 0);
    assert_eq!(seen.requests.load(Ordering::Relaxed), r.sent);
    assert_eq!(
        r.status.get("200").copied().unwrap_or(0),
        seen.answered_200.load(Ordering::Relaxed)
    );
    assert_eq!(
        r.status.get("204").copied().unwrap_or(0),
        seen.answered_204.load(Ordering::Relaxed)
    );
    assert!(
        r.status.contains_key("200") && r.status.contains_key("204"),
        "{:?}",
        r.status
    );
    let ids = seen.ids.lock().unwrap();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "request ids must be unique");
    assert_eq!(r.latency_us.count, r.completed);
    assert_eq!(r.service_time_us.count, r.completed);
}

#[test]
fn warmup_requests_are_sent_but_not_measured() {
    let server = TestServer::start(Mode::Alternate);
    let mut cfg = config(&server.url(), 200.0, 1000, 2);
    cfg.warmup = Duration::from_millis(500);
    cfg.timer_spin = Duration::from_micros(1100);
    let r = load::run(&cfg).unwrap().report;
    assert!(r.warmup_sent >= 50, "warm-up sent {}", r.warmup_sent);
    assert!((120..=240).contains(&r.sent), "sent {}", r.sent);
    assert_eq!(
        server.seen.requests.load(Ordering::Relaxed),
        r.sent + r.warmup_sent
    );
    assert_eq!(r.latency_us.count, r.completed);
}

#[test]
fn chunked_and_connection_close_responses_complete() {
    for (mode, driver) in [
        (Mode::Chunked, Driver::Auto),
        (Mode::CloseEach, Driver::Legacy),
    ] {
        let server = TestServer::start(mode);
        let mut cfg = config(&server.url(), 100.0, 1000, 2);
        cfg.driver = driver;
        let r = load::run(&cfg).unwrap().report;
        assert!(r.sent >= 50, "sent {}", r.sent);
        assert_eq!(failures(&r), 0, "{r:?}");
        assert_eq!(r.completed, r.sent);
        assert_eq!(server.seen.requests.load(Ordering::Relaxed), r.sent);
    }
}

#[test]
fn stalled_server_yields_timeouts_not_a_hang() {
    for driver in [Driver::Auto, Driver::Legacy] {
        stalled_server_times_out_on(driver);
    }
}

fn stalled_server_times_out_on(driver: Driver) {
    let server = TestServer::start(Mode::Stall);
    let mut cfg = config(&server.url(), 20.0, 1000, 2);
    cfg.timeout = Duration::from_millis(300);
    cfg.driver = driver;
    let began = Instant::now();
    let r = load::run(&cfg).unwrap().report;
    // Bounded by design at start delay + duration + timeout; the margin is for a busy machine.
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "run did not stop"
    );
    assert_eq!(r.completed, 0);
    assert!(r.timeouts >= 2, "timeouts {}", r.timeouts);
    assert_eq!(
        r.sent,
        r.timeouts + r.errors_by_kind.write + r.errors_by_kind.read
    );
}

#[test]
fn refused_connections_are_connect_errors() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = config(
        &format!("http://127.0.0.1:{port}/openrtb2/auction"),
        50.0,
        500,
        2,
    );
    let r = load::run(&cfg).unwrap().report;
    assert_eq!(r.sent, 0);
    assert!(
        r.errors_by_kind.connect >= 10,
        "connect errors {}",
        r.errors_by_kind.connect
    );
    assert_eq!(r.errors, r.errors_by_kind.connect);
}

#[test]
fn generated_bodies_are_valid_openrtb() {
    let pop = Population::synthesize(500, 5).unwrap();
    let target = Target::parse("http://127.0.0.1:1/openrtb2/auction").unwrap();
    let pool = RequestPool::generated(&target, &pop, &RequestMix::default(), 300, 5).unwrap();
    let (mut sites, mut videos, mut floors) = (0, 0, 0);
    for i in 0..pool.len() {
        let v: sonic_rs::Value = sonic_rs::from_slice(pool.body(i)).unwrap();
        assert_eq!(v["id"].as_str().map(str::len), Some(20));
        assert_eq!(v["at"].as_u64(), Some(1));
        assert_eq!(v["tmax"].as_u64(), Some(120));
        assert_eq!(v["cur"][0].as_str(), Some("USD"));
        assert!(v["user"]["id"].as_str().is_some_and(|s| !s.is_empty()));
        let device = &v["device"];
        for key in ["ua", "ip", "os", "make", "model"] {
            assert!(device[key].as_str().is_some(), "device.{key}");
        }
        assert!(device["devicetype"].as_u64().is_some());
        assert!(device["geo"]["country"].as_str().is_some());
        assert!(device["geo"]["lat"].as_f64().is_some());
        match (v.get("site"), v.get("app")) {
            (Some(site), None) => {
                sites += 1;
                assert!(site["domain"].as_str().is_some() && site["page"].as_str().is_some());
                assert!(site["publisher"]["id"].as_str().is_some());
                assert!(site["cat"].as_array().is_some_and(|c| !c.is_empty()));
            }
            (None, Some(app)) => {
                assert!(app["bundle"].as_str().is_some());
                assert!(app["publisher"]["id"].as_str().is_some());
            }
            _ => panic!("exactly one of site/app expected"),
        }
        let imp = &v["imp"][0];
        match (imp.get("banner"), imp.get("video")) {
            (Some(b), None) => {
                let size = (b["w"].as_u64().unwrap(), b["h"].as_u64().unwrap());
                assert!(
                    load::request::BANNER_SIZES
                        .iter()
                        .any(|&(w, h)| (u64::from(w), u64::from(h)) == size)
                );
            }
            (None, Some(video)) => {
                videos += 1;
                assert_eq!(video["w"].as_u64(), Some(640));
                assert!(video["mimes"].as_array().is_some_and(|m| !m.is_empty()));
            }
            _ => panic!("exactly one of banner/video expected"),
        }
        if let Some(floor) = imp.get("bidfloor") {
            floors += 1;
            let f = floor.as_f64().unwrap();
            assert!((0.05..=2.0).contains(&f), "bidfloor {f}");
        }
    }
    // Defaults: 60 % site, 20 % video, 40 % floors; loose bounds over 300 draws.
    assert!((130..=230).contains(&sites), "sites {sites}");
    assert!((25..=100).contains(&videos), "videos {videos}");
    assert!((70..=170).contains(&floors), "floors {floors}");
}

const HEADER: &str = "user_id,country,region,devicetype,os,make,model,ip,ua,lat,lon,activity";

fn write_users(dir: &Path, weights: &[f64]) -> std::path::PathBuf {
    let mut text = format!("{HEADER}\n");
    for (i, w) in weights.iter().enumerate() {
        text.push_str(&format!(
            "user{i},USA,CA,4,iOS,Apple,iPhone,10.0.0.{i},\"Mozilla/5.0 (iPhone; CPU) (KHTML, like Gecko)\",37.7,-122.4,{w}\n"
        ));
    }
    let path = dir.join("users.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn population_sampling_follows_activity_weights() {
    let dir = tempfile::tempdir().unwrap();
    let weights = [1.0, 2.0, 3.0, 4.0, 10.0];
    let pop = Population::from_csv(&write_users(dir.path(), &weights)).unwrap();
    assert_eq!(pop.len(), 5);
    assert!(pop.users()[0].ua.contains("KHTML, like Gecko"));
    let draws = 20_000;
    let mut counts = [0u64; 5];
    let mut rng = SmallRng::seed_from_u64(11);
    for _ in 0..draws {
        counts[pop.sample_index(&mut rng)] += 1;
    }
    let total: f64 = weights.iter().sum();
    let chi2: f64 = weights
        .iter()
        .zip(counts)
        .map(|(w, c)| {
            let expected = draws as f64 * w / total;
            (c as f64 - expected).powi(2) / expected
        })
        .sum();
    // 4 degrees of freedom: 18.5 is the 99.9 % critical value; the bound is looser still.
    assert!(chi2 < 30.0, "chi-square {chi2} for counts {counts:?}");
}

#[test]
fn bad_users_csv_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(
        &path,
        format!("{HEADER}\nu1,USA,CA,4,iOS,Apple,iPhone,1.1.1.1,ua,37.7,-122.4,1\nu2,USA,CA,phone,iOS,Apple,iPhone,1.1.1.1,ua,37.7,-122.4,1\n"),
    )
    .unwrap();
    let mut cfg = config("http://127.0.0.1:1/", 10.0, 100, 1);
    cfg.body = BodySource::Generated {
        users: UserSource::Csv(path),
        pool_size: 10,
        mix: RequestMix::default(),
    };
    let err = load::run(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("bad.csv") && err.contains("line 3") && err.contains("devicetype"),
        "{err}"
    );
}

#[test]
fn binary_writes_json_report() {
    let server = TestServer::start(Mode::Alternate);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("out.json");
    let body_path = dir.path().join("req.json");
    std::fs::write(&body_path, br#"{"id":"7","imp":[{"id":"1"}]}"#).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtb-load"))
        .args([
            "--target",
            &server.url(),
            "--rate",
            "100",
            "--duration",
            "1s",
        ])
        .args(["--connections", "2", "--timeout", "2s"])
        .arg("--body-file")
        .arg(&body_path)
        .arg("--json")
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Latency Distribution (HdrHistogram - Recorded Latency)"),
        "{stdout}"
    );
    let report: sonic_rs::Value =
        sonic_rs::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let sent = report["sent"].as_u64().unwrap();
    assert!(sent >= 50, "sent {sent}");
    // The fixed body has id 7 (odd): every answer is a 200.
    assert_eq!(
        report["status"]["200"].as_u64(),
        report["completed"].as_u64()
    );
    assert!(report["latency_us"]["p99_9"].as_u64().is_some());
    assert!(report["service_time_us"]["mean"].as_f64().is_some());
    assert!(report["send_lag_us"]["p50"].as_u64().is_some());
    assert!(report["rate_achieved"].as_f64().is_some_and(|r| r > 0.0));
}

#[test]
fn binary_rejects_bad_arguments_with_a_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtb-load"))
        .args(["--target", "http://127.0.0.1:1/", "--duration", "ten"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad duration"));
}

/// Runs the binary against `server` with `extra` arguments; returns stdout.
fn run_binary(server: &TestServer, extra: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtb-load"))
        .args([
            "--target",
            &server.url(),
            "--connections",
            "4",
            "--timeout",
            "2s",
        ])
        .args(["--pool", "200", "--user-count", "100"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn phases_report_hgrm_and_compare() {
    let server = TestServer::start(Mode::Alternate);
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("base");
    let prefix_arg = prefix.to_str().unwrap();
    let stdout = run_binary(
        &server,
        &[
            "--phases",
            "100@500ms,100..300@500ms",
            "--bot-share",
            "0.2",
            "--report",
            prefix_arg,
        ],
    );
    assert!(stdout.contains("Phases:"), "{stdout}");
    let report: sonic_rs::Value =
        sonic_rs::from_slice(&std::fs::read(dir.path().join("base.json")).unwrap()).unwrap();
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    // 50 requests in the constant phase, 100 in the ramp (its mean rate is 200/s).
    let sent: Vec<u64> = phases.iter().map(|p| p["sent"].as_u64().unwrap()).collect();
    assert_eq!(sent, vec![50, 100], "{report}");
    assert_eq!(report["sent"].as_u64(), Some(150));
    let bots = report["bots_sent"].as_u64().unwrap();
    assert!((5..=70).contains(&bots), "bots {bots} of 150");
    let hgrm = std::fs::read_to_string(dir.path().join("base.hgrm")).unwrap();
    assert!(
        hgrm.contains("Value") && hgrm.contains("1/(1-Percentile)"),
        "{hgrm}"
    );
    assert!(hgrm.contains("Total count    ="), "{hgrm}");

    let json = dir.path().join("base.json");
    let stdout = run_binary(
        &server,
        &[
            "--scenario",
            "spike",
            "--rate",
            "100",
            "--duration",
            "1s",
            "--compare",
            json.to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("Compared with"), "{stdout}");
    assert!(stdout.contains("rate achieved (req/s)"), "{stdout}");
}

#[test]
fn compare_with_a_missing_file_fails_before_the_run() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rtb-load"))
        .args([
            "--target",
            "http://127.0.0.1:1/",
            "--compare",
            "/nonexistent/base.json",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/base.json"), "{stderr}");
}

#[test]
fn events_log_every_served_bid_with_content_length_and_chunked_bodies() {
    let server = TestServer::start(Mode::Bids);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("served.jsonl");
    let mut cfg = config(&server.url(), 100.0, 1000, 2);
    cfg.warmup = Duration::from_millis(300);
    cfg.events = Some(path.clone());
    cfg.id_base = 1_000_000;
    let r = load::run(&cfg).unwrap().report;
    assert_eq!(failures(&r), 0, "{r:?}");
    let events = tools::load::events::read_events(&path).unwrap();
    let answered = server.seen.answered_200.load(Ordering::Relaxed);
    assert!(answered >= 50, "answered {answered}");
    // Warm-up responses are served impressions too: every answered response, two bids each.
    assert_eq!(events.len() as u64, 2 * answered);
    let ids: HashSet<&str> = events.iter().map(|e| e.request_id.as_str()).collect();
    assert_eq!(ids.len() as u64, answered, "one request id per response");
    assert!(
        ids.iter().all(|id| id.parse::<u64>().unwrap() >= 1_000_000),
        "id base applied"
    );
    let paid: Vec<_> = events.iter().filter(|e| !e.house).collect();
    assert_eq!(paid.len() as u64, answered);
    assert!(paid.iter().all(|e| e.imp_id == "1"
        && e.seat.as_deref() == Some("adcore")
        && e.cid.as_deref() == Some("7")
        && e.crid.as_deref() == Some("70")
        && e.price_cpm_micros() == Some(1_500_000)));
}
