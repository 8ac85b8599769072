//! End to end tests of the real `dsp-sim` binary on loopback: OpenRTB bids for the shared request
//! corpus, every fault mode switched at runtime over the control port, notices counted, CLI and
//! config errors naming file and line, orderly exit on SIGTERM. Every wait is bounded; the child is
//! killed when a test ends.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use net::openrtb::{BidResponse, parse_bid_request, parse_bid_response, validate_bid_response};

/// Three deterministic DSPs: fixed 2 ms latency, always bid, fixed prices, no errors.
const CONFIG: &str = r#"[sim]
seed = 3
stall_ms = 10000
notices_kept = 50

[[dsp]]
id = "alpha"
tier = 1
region = "global"
latency = { dist = "lognormal", median_ms = 2.0, sigma = 0.0 }
bid_rate = 1.0
price_median_cpm = 50.0
price_sigma = 0.0

[[dsp]]
id = "beta"
latency = { dist = "lognormal", median_ms = 2.0, sigma = 0.0 }
bid_rate = 1.0
price_median_cpm = 7.5
price_sigma = 0.0

[[dsp]]
id = "gamma"
tier = 3
region = "apac"
latency = { dist = "gamma", shape = 2.0, scale_ms = 1.0 }
bid_rate = 0.0
price_median_cpm = 1.0
"#;

struct Sim {
    child: Child,
    control: SocketAddr,
    dsps: Vec<(String, SocketAddr)>,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts `dsp-sim --config` and reads its `--ports-file` (bounded wait).
    fn start(config: &str) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("sim.toml");
        std::fs::write(&cfg, config).unwrap();
        let ports = dir.path().join("ports.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dsp-sim"))
            .arg("--config")
            .arg(&cfg)
            .arg("--ports-file")
            .arg(&ports)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawning dsp-sim");
        let end = Instant::now() + Duration::from_secs(20);
        while !ports.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("dsp-sim exited during start: {status}");
            }
            assert!(Instant::now() < end, "dsp-sim wrote no ports file");
            std::thread::sleep(Duration::from_millis(20));
        }
        let listing: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&ports).unwrap()).unwrap();
        let control = listing["control"].as_str().unwrap().parse().unwrap();
        let dsps = listing["dsps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap().to_string(),
                    d["addr"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        Sim {
            child,
            control,
            dsps,
            _dir: dir,
        }
    }

    fn addr(&self, id: &str) -> SocketAddr {
        self.dsps.iter().find(|(d, _)| d == id).unwrap().1
    }

    fn control(&self, method: &str, path: &str, body: &str) -> Reply {
        let mut s = connect(self.control);
        s.write_all(&http(method, path, body.as_bytes())).unwrap();
        read_reply(&mut s).expect("control reply")
    }

    fn set_fault(&self, id: &str, mode: &str) {
        let r = self.control(
            "POST",
            &format!("/dsp/{id}/fault"),
            &format!(r#"{{"mode":"{mode}","share":1.0}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["mode"], mode);
    }

    fn counters(&self, id: &str) -> serde_json::Value {
        let r = self.control("GET", &format!("/notices?dsp={id}"), "");
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    content_length: usize,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn http(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "{method} {path} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n\
         x-openrtb-version: 2.6\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Reads one response. `Ok` with a short body when the peer closed mid-body (the caller checks
/// `content_length`); `Err` on a reset, a timeout, or EOF before a complete head.
fn read_reply(s: &mut TcpStream) -> std::io::Result<Reply> {
    let mut buf = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = r.parse(&buf) {
            let content_length = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            let status = r.code.unwrap();
            if buf.len() >= head + content_length {
                let body = buf[head..head + content_length].to_vec();
                return Ok(Reply {
                    status,
                    content_length,
                    body,
                });
            }
            let mut chunk = [0u8; 8192];
            let n = s.read(&mut chunk)?;
            if n == 0 {
                let body = buf[head..].to_vec();
                return Ok(Reply {
                    status,
                    content_length,
                    body,
                });
            }
            buf.extend_from_slice(&chunk[..n]);
            continue;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("closed after {} bytes", buf.len()),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/openrtb/requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn simple_request() -> Vec<u8> {
    br#"{"id":"req-7","imp":[{"id":"imp-1","banner":{"w":300,"h":250},"bidfloor":0.5}],"tmax":100}"#
        .to_vec()
}

fn bid_on(sim: &Sim, id: &str, body: &[u8]) -> BidResponse {
    let mut s = connect(sim.addr(id));
    s.write_all(&http("POST", "/openrtb2/auction", body))
        .unwrap();
    let r = read_reply(&mut s).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    parse_bid_response(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[test]
fn corpus_requests_get_valid_bids_with_notice_urls_on_keep_alive_connections() {
    let sim = Sim::start(CONFIG);
    let mut alpha = connect(sim.addr("alpha"));
    let mut checked = 0;
    for (path, body) in corpus() {
        let Ok(request) = parse_bid_request(&body) else {
            continue; // not OpenRTB our parser accepts; dsp-sim answers 400 (checked below)
        };
        alpha
            .write_all(&http("POST", "/openrtb2/auction", &body))
            .unwrap();
        let r = read_reply(&mut alpha).unwrap();
        if !request.cur.is_empty() && !request.cur.iter().any(|c| c == "USD") {
            assert_eq!(r.status, 204, "{}: USD-only DSP bid", path.display());
            checked += 1;
            continue;
        }
        assert_eq!(r.status, 200, "{}: {}", path.display(), r.text());
        let response = parse_bid_response(&r.body).unwrap();
        validate_bid_response(&response, &request)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(response.id, request.id, "{}", path.display());
        let bids = &response.seatbid[0].bid;
        assert_eq!(bids.len(), request.imp.len(), "{}", path.display());
        assert_eq!(response.seatbid[0].seat.as_deref(), Some("alpha-seat"));
        for (bid, imp) in bids.iter().zip(&request.imp) {
            assert_eq!(bid.impid, imp.id);
            assert_eq!(bid.price, 50.0, "fixed price (sigma 0)");
            assert!(
                bid.crid
                    .as_deref()
                    .is_some_and(|c| c.starts_with("alpha-cr"))
            );
            assert!(bid.adm.as_deref().is_some_and(|a| a.contains("alpha")));
            let nurl = bid.nurl.as_deref().unwrap();
            let control = sim.control;
            assert!(
                nurl.starts_with(&format!("http://{control}/notice/win?dsp=alpha&")),
                "{nurl}"
            );
            assert!(nurl.contains("price=${AUCTION_PRICE}"), "{nurl}");
            assert!(
                bid.lurl
                    .as_deref()
                    .unwrap()
                    .contains("loss=${AUCTION_LOSS}")
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} corpus requests parsed");
    // A DSP that never bids answers 204; a body that is not OpenRTB gets 400, and the connection
    // stays usable after both.
    let mut gamma = connect(sim.addr("gamma"));
    gamma
        .write_all(&http("POST", "/openrtb2/auction", &simple_request()))
        .unwrap();
    assert_eq!(read_reply(&mut gamma).unwrap().status, 204);
    alpha
        .write_all(&http("POST", "/openrtb2/auction", b"{\"id\": 5"))
        .unwrap();
    assert_eq!(read_reply(&mut alpha).unwrap().status, 400);
    alpha.write_all(&http("GET", "/other", b"")).unwrap();
    assert_eq!(read_reply(&mut alpha).unwrap().status, 404);
    alpha
        .write_all(&http("POST", "/openrtb2/auction", &simple_request()))
        .unwrap();
    assert_eq!(read_reply(&mut alpha).unwrap().status, 200);
    let stats = sim.control("GET", "/stats", "").json();
    let alpha_stats = &stats["dsps"][0];
    assert_eq!(alpha_stats["id"], "alpha");
    assert_eq!(alpha_stats["counters"]["requests"], checked + 2);
    assert_eq!(alpha_stats["counters"]["bad_requests"], 1);
    assert_eq!(stats["dsps"][2]["counters"]["responses_no_bid"], 1);
}

#[test]
fn fault_modes_switch_at_runtime_and_behave_as_named() {
    let sim = Sim::start(CONFIG);
    let body = simple_request();
    let send = |s: &mut TcpStream| {
        s.write_all(&http("POST", "/openrtb2/auction", &body))
            .unwrap();
    };
    assert_eq!(bid_on(&sim, "beta", &body).seatbid[0].bid[0].price, 7.5);

    sim.set_fault("beta", "reset");
    let mut s = connect(sim.addr("beta"));
    send(&mut s);
    let e = read_reply(&mut s).expect_err("a reset, not a reply");
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");

    sim.set_fault("beta", "half_written");
    let mut s = connect(sim.addr("beta"));
    send(&mut s);
    let r = read_reply(&mut s).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.len() < r.content_length,
        "half-written: {} of {} bytes",
        r.body.len(),
        r.content_length
    );

    sim.set_fault("beta", "malformed");
    let mut s = connect(sim.addr("beta"));
    send(&mut s);
    let r = read_reply(&mut s).unwrap();
    assert_eq!((r.status, r.body.len()), (200, r.content_length));
    assert!(
        parse_bid_response(&r.body).is_err(),
        "malformed JSON parsed: {}",
        r.text()
    );
    // Well-framed HTTP: the same connection answers the next request.
    send(&mut s);
    assert_eq!(read_reply(&mut s).unwrap().status, 200);

    sim.set_fault("beta", "http_5xx");
    let mut s = connect(sim.addr("beta"));
    send(&mut s);
    let r = read_reply(&mut s).unwrap();
    assert_eq!(r.status, 503, "{}", r.text());

    sim.set_fault("beta", "stall");
    let mut stalled = connect(sim.addr("beta"));
    stalled
        .set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    send(&mut stalled);
    let e = read_reply(&mut stalled).expect_err("a stalled DSP answered");
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );

    // Back to normal: a new connection bids again while the stalled one is still held.
    sim.set_fault("beta", "none");
    let response = bid_on(&sim, "beta", &body);
    assert_eq!(response.seatbid[0].bid[0].price, 7.5);
    let counters = &sim.counters("beta")["counters"];
    assert_eq!(counters["faults"], 6, "{counters}");
    assert_eq!(counters["requests"], 8, "{counters}");
    assert_eq!(counters["responses_bid"], 2, "{counters}");

    // Bad control input: 4xx with a reason, the DSP unchanged.
    let r = sim.control("POST", "/dsp/beta/fault", r#"{"mode":"explode"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("fault body"), "{}", r.text());
    let r = sim.control("POST", "/dsp/beta/fault", r#"{"mode":"stall","share":2}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    let r = sim.control("POST", "/dsp/nobody/fault", r#"{"mode":"stall"}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    let r = sim.control(
        "POST",
        "/dsp/beta/latency",
        r#"{"latency":{"dist":"lognormal","median_ms":-1,"sigma":0}}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(bid_on(&sim, "beta", &body).seatbid[0].bid[0].price, 7.5);
}

#[test]
fn latency_changes_at_runtime() {
    let sim = Sim::start(CONFIG);
    let r = sim.control(
        "POST",
        "/dsp/beta/latency",
        r#"{"latency":{"dist":"lognormal","median_ms":2000,"sigma":0}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut s = connect(sim.addr("beta"));
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s.write_all(&http("POST", "/openrtb2/auction", &simple_request()))
        .unwrap();
    assert!(
        read_reply(&mut s).is_err(),
        "a 2 s DSP answered within 0.5 s"
    );
    let stats = sim.control("GET", "/stats", "").json();
    assert_eq!(stats["dsps"][1]["latency"]["median_ms"], 2000.0);
}

/// Fills the OpenRTB macros the way an exchange would.
fn substitute(url: &str, price: &str, loss: &str) -> String {
    url.replace("${AUCTION_ID}", "req-7")
        .replace("${AUCTION_BID_ID}", "b%201")
        .replace("${AUCTION_IMP_ID}", "imp-1")
        .replace("${AUCTION_SEAT_ID}", "alpha-seat")
        .replace("${AUCTION_AD_ID}", "alpha-cr1")
        .replace("${AUCTION_PRICE}", price)
        .replace("${AUCTION_CURRENCY}", "USD")
        .replace("${AUCTION_LOSS}", loss)
        .replace("${AUCTION_MIN_TO_WIN}", "3.25")
}

fn get_url(url: &str) -> Reply {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = connect(host.parse().unwrap());
    s.write_all(&http("GET", path, b"")).unwrap();
    read_reply(&mut s).unwrap()
}

#[test]
fn notices_are_counted_and_kept_with_their_macro_values() {
    let sim = Sim::start(CONFIG);
    let response = bid_on(&sim, "alpha", &simple_request());
    let bid = &response.seatbid[0].bid[0];
    for url in [bid.nurl.as_deref(), bid.burl.as_deref()] {
        let r = get_url(&substitute(url.unwrap(), "3.1", ""));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let lurl = bid.lurl.as_deref().unwrap();
    for _ in 0..2 {
        assert_eq!(get_url(&substitute(lurl, "3.25", "102")).status, 200);
    }
    let got = sim.counters("alpha");
    let counters = &got["counters"];
    assert_eq!(counters["notices_win"], 1, "{got}");
    assert_eq!(counters["notices_billing"], 1, "{got}");
    assert_eq!(counters["notices_loss"], 2, "{got}");
    let notices = got["notices"].as_array().unwrap();
    let param = |n: &serde_json::Value, name: &str| {
        n["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p[0] == name)
            .map(|p| p[1].as_str().unwrap().to_string())
    };
    assert_eq!(notices[0]["kind"], "win");
    assert_eq!(param(&notices[0], "price").as_deref(), Some("3.1"));
    assert_eq!(param(&notices[0], "auction").as_deref(), Some("req-7"));
    assert_eq!(param(&notices[0], "imp").as_deref(), Some("imp-1"));
    assert_eq!(param(&notices[0], "bid").as_deref(), Some("b 1"), "decoded");
    assert_eq!(param(&notices[0], "cur").as_deref(), Some("USD"));
    assert_eq!(notices[1]["kind"], "billing");
    assert_eq!(notices[3]["kind"], "loss");
    assert_eq!(param(&notices[3], "loss").as_deref(), Some("102"));
    assert_eq!(param(&notices[3], "min_to_win").as_deref(), Some("3.25"));
    // Other DSPs saw nothing; unknown DSPs and kinds are refused.
    assert_eq!(sim.counters("beta")["counters"]["notices_win"], 0);
    let control = sim.control;
    assert_eq!(
        get_url(&format!("http://{control}/notice/win?dsp=nobody")).status,
        404
    );
    assert_eq!(
        get_url(&format!("http://{control}/notice/click?dsp=alpha")).status,
        404
    );
    assert_eq!(sim.control("GET", "/notices", "").status, 400);
}

/// Runs dsp-sim with `args`; it must exit (bounded) and fail. Returns its stderr.
fn run_failing(args: &[&std::ffi::OsStr]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dsp-sim"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{args:?} succeeded");
    stderr
}

fn wait_bounded(child: &mut Child, within: Duration) -> ExitStatus {
    let end = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("dsp-sim still running after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_cli_and_config_input_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    // Line 9 opens the second [[dsp]], whose bid_rate is out of range.
    std::fs::write(
        &bad,
        "[sim]\nseed = 3\n\n[[dsp]]\nid = \"ok\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\n\n\
         [[dsp]]\nid = \"bad\"\nbid_rate = 1.5\nprice_median_cpm = 1.0\n",
    )
    .unwrap();
    let err = run_failing(&["--config".as_ref(), bad.as_os_str()]);
    let at = format!("{}:9:", bad.display());
    assert!(
        err.contains(&at) && err.contains("bid_rate"),
        "want {at}: {err}"
    );

    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[[dsp]]\nid = \"a\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\nlatncy = 3\n",
    )
    .unwrap();
    let err = run_failing(&["--config".as_ref(), typo.as_os_str()]);
    assert!(
        err.contains(&format!("{}:5:", typo.display())) && err.contains("latncy"),
        "{err}"
    );

    let missing = dir.path().join("missing.toml");
    let err = run_failing(&["--config".as_ref(), missing.as_os_str()]);
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let err = run_failing(&["--population".as_ref(), "moon".as_ref()]);
    assert!(err.contains("moon"), "{err}");
    let err = run_failing(&[]);
    assert!(err.contains("--config"), "{err}");
    let err = run_failing(&["--seed".as_ref(), "x".as_ref()]);
    assert!(err.contains("--seed"), "{err}");
}

/// The arguments of `systemd/dsp-sim.service`'s ExecStart, with `/run/adcore-dsp-sim/` moved
/// into `dir`.
fn unit_args(dir: &Path) -> Vec<String> {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/dsp-sim.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in dsp-sim.service");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("/opt/adcore/bin/dsp-sim"));
    words
        .map(|w| match w.strip_prefix("/run/adcore-dsp-sim/") {
            Some(name) => dir.join(name).display().to_string(),
            None => w.to_string(),
        })
        .collect()
}

/// Runs the systemd unit's command line: the seed population, listed as JSON in its ports file.
#[test]
fn the_units_command_line_lists_the_seed_population_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ports = dir.path().join("ports.json");
    let args = unit_args(dir.path());
    assert!(
        args.iter().any(|a| Path::new(a) == ports),
        "the unit writes {args:?}, not ports.json"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_dsp-sim"))
        .args(&args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !ports.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ports).unwrap()).unwrap();
    let dsps = listing["dsps"].as_array().unwrap();
    assert_eq!(dsps.len(), 50);
    let tier = |t: u64| dsps.iter().filter(|d| d["tier"] == t).count();
    assert_eq!((tier(1), tier(2), tier(3)), (12, 25, 13));
    // Every listed DSP accepts connections.
    for d in dsps {
        connect(d["addr"].as_str().unwrap().parse().unwrap());
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}
