//! A scriptable DSP on loopback for the RTB tests: answers POST bid requests per its current
//! [`Mode`] (bids, no bid, 10 s stall, reset, half-written response, malformed JSON, 500) and
//! records every notice GET it receives. Threads, blocking std sockets, bounded: a stall ends
//! after 10 s or when the DSP is dropped.
//!
//! It stands in for `tools/dsp-sim` where a test must switch one DSP's behaviour between two
//! requests and read back the exact notice URLs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// One bid at this CPM on the first impression.
    Bid(f64),
    /// Same, answered after this many ms.
    SlowBid(f64, u64),
    /// A bid without `crid` (dropped with loss code 8).
    BidWithoutCrid(f64),
    NoBid,
    /// Reads the request and answers nothing for 10 s.
    Stall,
    /// Closes the connection with RST right after reading the request.
    Reset,
    /// Writes half of a valid response and closes.
    HalfWritten,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 500.
    ServerError,
}

struct State {
    mode: Mutex<Mode>,
    notices: Mutex<Vec<String>>,
    requests: AtomicU64,
    /// Status answered to notices (204 unless set).
    notice_status: std::sync::atomic::AtomicU16,
    stop: AtomicBool,
    addr: SocketAddr,
}

pub struct TestDsp {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl TestDsp {
    pub fn start(mode: Mode) -> TestDsp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            mode: Mutex::new(mode),
            notices: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
            notice_status: std::sync::atomic::AtomicU16::new(204),
            stop: AtomicBool::new(false),
            addr,
        });
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        TestDsp { addr, state }
    }

    pub fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Answer notices with this status from now on (e.g. 500 to make them fail).
    pub fn set_notice_status(&self, status: u16) {
        self.state.notice_status.store(status, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::Relaxed)
    }

    pub fn notices(&self) -> Vec<String> {
        self.state.notices.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` notices arrived.
    pub fn wait_notices(&self, n: usize, within: Duration) -> Vec<String> {
        let end = Instant::now() + within;
        loop {
            let v = self.notices();
            if v.len() >= n || Instant::now() > end {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `[[dsp]]` TOML for this DSP.
    pub fn toml(&self, id: &str, tier: u8) -> String {
        format!(
            "[[dsp]]\nid = \"{id}\"\ntier = {tier}\nqps_max = 100000\ntimeout_ms = 100\n\
             formats = [\"banner\", \"video\", \"native\"]\n\
             endpoints = {{ us-east = \"http://{}/openrtb2/auction\" }}\n",
            self.addr
        )
    }
}

impl Drop for TestDsp {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn serve(mut s: TcpStream, st: &State) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let Some((method, path, body)) = read_request(&mut s, &mut buf) else {
            return;
        };
        if method == "GET" {
            st.notices.lock().unwrap().push(path);
            let status = st.notice_status.load(Ordering::Relaxed);
            let head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            continue;
        }
        st.requests.fetch_add(1, Ordering::Relaxed);
        let mode = st.mode.lock().unwrap().clone();
        if !answer(&mut s, st, &mode, &body) {
            return;
        }
    }
}

/// Writes the answer; false when the connection must end.
fn answer(s: &mut TcpStream, st: &State, mode: &Mode, body: &[u8]) -> bool {
    let req: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let ok = |s: &mut TcpStream, json: String| {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            json.len()
        );
        // One write: head and body in two small writes would meet Nagle's algorithm and the
        // engine's delayed ACK (~40 ms a response, most of a 100 ms DSP timeout on a busy host).
        s.write_all((head + &json).as_bytes()).is_ok()
    };
    match mode {
        Mode::Bid(p) => ok(s, bid_json(st, &req, *p, true)),
        Mode::BidWithoutCrid(p) => ok(s, bid_json(st, &req, *p, false)),
        Mode::SlowBid(p, ms) => {
            std::thread::sleep(Duration::from_millis(*ms));
            ok(s, bid_json(st, &req, *p, true))
        }
        Mode::NoBid => s
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .is_ok(),
        Mode::Stall => {
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && !st.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        }
        Mode::Reset => {
            // SO_LINGER 0: close sends RST.
            let _ = socket_linger_zero(s);
            false
        }
        Mode::HalfWritten => {
            let json = bid_json(st, &req, 5.0, true);
            let full = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                json.len()
            );
            let _ = s.write_all(&full.as_bytes()[..full.len() / 2]);
            let _ = s.shutdown(Shutdown::Both);
            false
        }
        Mode::Malformed => ok(s, "{\"id\": not json".into()),
        Mode::ServerError => s
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops")
            .is_ok(),
    }
}

fn socket_linger_zero(s: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn bid_json(st: &State, req: &serde_json::Value, price: f64, crid: bool) -> String {
    let a = st.addr;
    let imp = req["imp"][0]["id"].as_str().unwrap_or("");
    let mut bid = serde_json::json!({
        "id": format!("bid-{}", a.port()),
        "impid": imp,
        "price": price,
        "adid": "ad-7",
        "adm": "<div data-price=\"${AUCTION_PRICE}\">ad</div>",
        "adomain": ["dsp.example"],
        "nurl": format!("http://{a}/win?auction=${{AUCTION_ID}}&bid=${{AUCTION_BID_ID}}&imp=${{AUCTION_IMP_ID}}&seat=${{AUCTION_SEAT_ID}}&ad=${{AUCTION_AD_ID}}&price=${{AUCTION_PRICE}}&cur=${{AUCTION_CURRENCY}}"),
        "burl": format!("http://{a}/bill?auction=${{AUCTION_ID}}&price=${{AUCTION_PRICE}}"),
        "lurl": format!("http://{a}/loss?auction=${{AUCTION_ID}}&code=${{AUCTION_LOSS}}&price=${{AUCTION_PRICE}}&min=${{AUCTION_MIN_TO_WIN}}"),
    });
    if crid {
        bid["crid"] = "cr-1".into();
    }
    serde_json::json!({
        "id": req["id"],
        "cur": "USD",
        "seatbid": [{"seat": format!("seat-{}", a.port()), "bid": [bid]}]
    })
    .to_string()
}

/// Reads one request: (method, path, body). None at EOF or on garbage.
fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, String, Vec<u8>)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = r.parse(buf) {
            let len: usize = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head + len {
                let out = (
                    r.method?.to_string(),
                    r.path?.to_string(),
                    buf[head..head + len].to_vec(),
                );
                buf.drain(..head + len);
                return Some(out);
            }
        }
        let mut chunk = [0u8; 8192];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
