//! The sockets of dsp-sim: one listener per DSP (raw connection loop on net's sans-IO request
//! parser, so faults can break the protocol on purpose) and the control/notice HTTP server on
//! `net::http::serve`. Everything runs on one monoio thread; state is `Rc<RefCell<..>>`.

use std::cell::RefCell;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use net::http::{Handler, HttpStats, Limits, Parsed, Request, RequestParser, Response, Shutdown};
use serde::Serialize;

use super::config::{Fault, FaultMode, Latency, SimConfig, validate_latency};
use super::model::{Action, Dsp, Env, Notice, respond};

/// Largest request body accepted by a DSP (after gzip).
const REQUEST_BYTES_MAX: usize = 1 << 20;
/// A DSP connection with no request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Shared state of the whole simulator.
pub struct Sim {
    pub dsps: Vec<RefCell<Dsp>>,
    pub addrs: Vec<SocketAddr>,
    pub control: SocketAddr,
    notice_base: String,
    notices_kept: usize,
    stall: Duration,
    late: Duration,
    per_request: bool,
    started: Instant,
}

/// Where everything listens, for `--ports-file` and the stdout listing.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub control: SocketAddr,
    pub dsps: Vec<ListedDsp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListedDsp {
    pub id: String,
    pub addr: SocketAddr,
    pub tier: u8,
    pub region: String,
}

impl Sim {
    pub fn listing(&self) -> Listing {
        Listing {
            control: self.control,
            dsps: self
                .dsps
                .iter()
                .zip(&self.addrs)
                .map(|(dsp, &addr)| {
                    let spec = &dsp.borrow().spec;
                    ListedDsp {
                        id: spec.id.clone(),
                        addr,
                        tier: spec.tier,
                        region: spec.region.clone(),
                    }
                })
                .collect(),
        }
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.dsps.iter().position(|d| d.borrow().spec.id == id)
    }
}

/// Bind every listener (inside a monoio runtime) and build the shared state.
pub fn bind(config: &SimConfig) -> std::io::Result<(Rc<Sim>, Vec<TcpListener>, TcpListener)> {
    let host = config.sim.host;
    let control = net::http::bind_reuseport(SocketAddr::new(host, config.sim.control_port))?;
    let control_addr = control.local_addr()?;
    let mut listeners = Vec::with_capacity(config.dsp.len());
    let mut addrs = Vec::with_capacity(config.dsp.len());
    for spec in &config.dsp {
        let listener = TcpListener::bind(SocketAddr::new(host, spec.port))?;
        addrs.push(listener.local_addr()?);
        listeners.push(listener);
    }
    let dsps = config
        .dsp
        .iter()
        .enumerate()
        .map(|(i, spec)| RefCell::new(Dsp::new(spec.clone(), config.sim.seed, i)))
        .collect();
    let sim = Rc::new(Sim {
        dsps,
        addrs,
        control: control_addr,
        notice_base: format!("http://{control_addr}"),
        notices_kept: config.sim.notices_kept,
        stall: Duration::from_millis(config.sim.stall_ms),
        late: Duration::from_millis(config.sim.timeout_ms),
        per_request: config.sim.per_request,
        started: Instant::now(),
    });
    Ok((sim, listeners, control))
}

/// Serve every DSP and the control port until `shutdown` fires.
pub async fn run(
    sim: Rc<Sim>,
    listeners: Vec<TcpListener>,
    control: TcpListener,
    shutdown: Shutdown,
) {
    for (index, listener) in listeners.into_iter().enumerate() {
        let sim = Rc::clone(&sim);
        let shutdown = shutdown.clone();
        monoio::spawn(async move { accept_loop(sim, index, listener, shutdown).await });
    }
    let handler = Rc::new(Control { sim });
    let stats = Rc::new(HttpStats::new());
    net::http::serve(control, handler, Limits::default(), shutdown, stats).await;
}

async fn accept_loop(sim: Rc<Sim>, index: usize, listener: TcpListener, shutdown: Shutdown) {
    loop {
        let accepted = monoio::select! {
            biased;
            _ = shutdown.wait() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let sim = Rc::clone(&sim);
                monoio::spawn(async move { serve_dsp(sim, index, stream).await });
            }
            Err(_) => monoio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// One exchange connection to one DSP: read a request, decide, wait, answer (or misbehave).
async fn serve_dsp(sim: Rc<Sim>, index: usize, mut stream: TcpStream) {
    let limits = Limits {
        body_bytes_max: REQUEST_BYTES_MAX,
        ..Limits::default()
    };
    let mut parser = RequestParser::new();
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    loop {
        let parsed = parser.parse(&buf, &limits);
        let (action, received) = match parsed {
            Err(error) => {
                let text = error.to_string();
                let action = respond(
                    Duration::ZERO,
                    error.status(),
                    "text/plain",
                    text.as_bytes(),
                    true,
                );
                (action, Instant::now())
            }
            Ok(Parsed::Incomplete(_)) => {
                if !read_more(&mut stream, &mut buf, limits.read_buffer_bytes_max()).await {
                    return;
                }
                continue;
            }
            Ok(Parsed::Complete(head)) => {
                let consumed = head.consumed_bytes;
                let action = match parser.request(&head, &mut buf) {
                    Ok(request) => answer(&sim, index, &request),
                    Err(error) => respond(
                        Duration::ZERO,
                        error.status(),
                        "text/plain",
                        b"bad request",
                        true,
                    ),
                };
                buf.drain(..consumed);
                (action, Instant::now())
            }
        };
        if !perform(&mut stream, action, received).await {
            return;
        }
    }
}

fn answer(sim: &Sim, index: usize, request: &Request<'_>) -> Action {
    if request.method_str() != "POST" || request.path != "/openrtb2/auction" {
        return respond(
            Duration::ZERO,
            404,
            "text/plain",
            b"POST /openrtb2/auction only",
            false,
        );
    }
    let env = Env {
        notice_base: &sim.notice_base,
        stall: sim.stall,
        late: sim.late,
        per_request: sim.per_request,
    };
    let mut dsp = sim.dsps[index].borrow_mut();
    if request.header("content-encoding") == Some(b"gzip") {
        let mut body = Vec::new();
        let decoder = flate2::read::GzDecoder::new(request.body);
        match decoder
            .take(REQUEST_BYTES_MAX as u64 + 1)
            .read_to_end(&mut body)
        {
            Ok(n) if n <= REQUEST_BYTES_MAX => return dsp.answer(&body, &env),
            _ => return respond(Duration::ZERO, 400, "text/plain", b"bad gzip body", false),
        }
    }
    dsp.answer(request.body, &env)
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, max: usize) -> bool {
    let len = buf.len();
    if len >= max {
        return false;
    }
    if buf.capacity() == len {
        buf.reserve((len.max(4096)).min(max - len));
    }
    let owned = std::mem::take(buf);
    let capacity = owned.capacity();
    let read = stream.read(owned.slice_mut(len..capacity));
    let result = monoio::select! {
        (result, slice) = read => {
            *buf = slice.into_inner();
            result
        }
        _ = monoio::time::sleep(IDLE_TIMEOUT) => return false,
    };
    matches!(result, Ok(n) if n > 0)
}

/// Carry out an action; returns whether the connection stays open.
async fn perform(stream: &mut TcpStream, action: Action, received: Instant) -> bool {
    let at = |delay: Duration| monoio::time::Instant::from_std(received + delay);
    match action {
        Action::Respond {
            delay,
            bytes,
            close,
        } => {
            monoio::time::sleep_until(at(delay)).await;
            let (written, _) = stream.write_all(bytes).await;
            written.is_ok() && !close
        }
        Action::HalfWritten { delay, bytes } => {
            monoio::time::sleep_until(at(delay)).await;
            let _ = stream.write_all(bytes).await;
            false
        }
        Action::Reset { delay } => {
            monoio::time::sleep_until(at(delay)).await;
            linger_zero(stream);
            false
        }
        Action::Stall { delay } => {
            monoio::time::sleep_until(at(delay)).await;
            false
        }
    }
}

/// Make the close send a TCP RST.
fn linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd owned by `stream`, properly sized `linger`; failure only means a FIN.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The control and notice endpoints.
struct Control {
    sim: Rc<Sim>,
}

impl Handler for Control {
    async fn handle<'a>(&'a self, req: &'a Request<'a>, resp: &'a mut Response) {
        let (status, body) = self.route(req);
        let content_type = if status < 300 {
            "application/json"
        } else {
            "text/plain"
        };
        resp.status(status)
            .header("content-type", content_type)
            .body(body.as_bytes());
    }
}

impl Control {
    fn route(&self, req: &Request<'_>) -> (u16, String) {
        let method = req.method_str();
        let segments: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("GET", ["stats"]) => (200, self.stats()),
            ("GET", ["notices"]) => self.notices(req.query),
            ("GET", ["notice", kind]) => self.notice(kind, req.query),
            ("POST", ["dsp", id, "fault"]) => self.set_fault(id, req.body),
            ("POST", ["dsp", id, "latency"]) => self.set_latency(id, req.body),
            _ => (404, "unknown route: GET /stats, GET /notices?dsp=ID, GET /notice/{win|billing|loss}?dsp=ID&..., POST /dsp/ID/fault, POST /dsp/ID/latency".into()),
        }
    }

    fn stats(&self) -> String {
        let dsps: Vec<_> = self
            .sim
            .dsps
            .iter()
            .zip(&self.sim.addrs)
            .map(|(dsp, addr)| {
                let dsp = dsp.borrow();
                serde_json::json!({
                    "id": dsp.spec.id,
                    "addr": addr.to_string(),
                    "tier": dsp.spec.tier,
                    "region": dsp.spec.region,
                    "fault": dsp.spec.fault,
                    "latency": dsp.spec.latency,
                    "slow_share": dsp.spec.slow_share,
                    "slow_ms": dsp.spec.slow_ms,
                    "counters": dsp.counters,
                })
            })
            .collect();
        serde_json::json!({ "control": self.sim.control.to_string(), "dsps": dsps }).to_string()
    }

    fn notices(&self, query: &str) -> (u16, String) {
        let params = query_params(query);
        let Some(id) = param(&params, "dsp") else {
            return (400, "missing ?dsp=ID".into());
        };
        let Some(index) = self.sim.index_of(id) else {
            return (404, format!("unknown dsp {id:?}"));
        };
        let dsp = self.sim.dsps[index].borrow();
        let notices: Vec<_> = dsp.notices.iter().collect();
        (
            200,
            serde_json::json!({ "dsp": id, "counters": dsp.counters, "notices": notices })
                .to_string(),
        )
    }

    fn notice(&self, kind: &str, query: &str) -> (u16, String) {
        if !matches!(kind, "win" | "billing" | "loss") {
            return (404, format!("unknown notice kind {kind:?}"));
        }
        let params = query_params(query);
        let Some(index) = param(&params, "dsp").and_then(|id| self.sim.index_of(id)) else {
            return (404, "notice without a known ?dsp=ID".into());
        };
        let notice = Notice {
            kind: kind.to_string(),
            params,
            at_ms: self.sim.started.elapsed().as_millis() as u64,
        };
        self.sim.dsps[index]
            .borrow_mut()
            .record_notice(notice, self.sim.notices_kept);
        (200, "{}".into())
    }

    fn set_fault(&self, id: &str, body: &[u8]) -> (u16, String) {
        let Some(index) = self.sim.index_of(id) else {
            return (404, format!("unknown dsp {id:?}"));
        };
        let fault: Fault = match serde_json::from_slice(body) {
            Ok(fault) => fault,
            Err(e) => {
                return (
                    400,
                    format!("fault body: {e} (expected {{\"mode\":\"stall\",\"share\":1.0}})"),
                );
            }
        };
        if !(0.0..=1.0).contains(&fault.share) {
            return (400, "share must be in [0, 1]".into());
        }
        self.sim.dsps[index].borrow_mut().spec.fault = fault;
        let mode = if fault.mode == FaultMode::None {
            "none"
        } else {
            fault.mode.name()
        };
        (
            200,
            serde_json::json!({ "dsp": id, "mode": mode, "share": fault.share }).to_string(),
        )
    }

    fn set_latency(&self, id: &str, body: &[u8]) -> (u16, String) {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Change {
            latency: Option<Latency>,
            slow_share: Option<f64>,
            slow_ms: Option<f64>,
            timeout_rate: Option<f64>,
        }
        let Some(index) = self.sim.index_of(id) else {
            return (404, format!("unknown dsp {id:?}"));
        };
        let change: Change = match serde_json::from_slice(body) {
            Ok(change) => change,
            Err(e) => return (400, format!("latency body: {e}")),
        };
        let mut dsp = self.sim.dsps[index].borrow_mut();
        let mut spec = dsp.spec.clone();
        if let Some(latency) = change.latency {
            spec.latency = latency;
        }
        spec.slow_share = change.slow_share.unwrap_or(spec.slow_share);
        spec.slow_ms = change.slow_ms.unwrap_or(spec.slow_ms);
        spec.timeout_rate = change.timeout_rate.unwrap_or(spec.timeout_rate);
        if let Err(message) =
            validate_latency(&spec.latency).and_then(|()| super::config::validate_dsp(&spec))
        {
            return (400, message);
        }
        dsp.spec = spec;
        (200, serde_json::json!({ "dsp": id, "latency": dsp.spec.latency, "slow_share": dsp.spec.slow_share, "slow_ms": dsp.spec.slow_ms, "timeout_rate": dsp.spec.timeout_rate }).to_string())
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Split a query string into percent-decoded (name, value) pairs ('+' is a space).
pub fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match hex_pair(bytes[i + 1], bytes[i + 2]) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(high)? * 16 + digit(low)?) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let params =
            query_params("dsp=d1&price=1.25&loss=102&x=%24%7BAUCTION_PRICE%7D&s=a+b&bad=%zz&e");
        assert_eq!(param(&params, "dsp"), Some("d1"));
        assert_eq!(param(&params, "x"), Some("${AUCTION_PRICE}"));
        assert_eq!(param(&params, "s"), Some("a b"));
        assert_eq!(param(&params, "bad"), Some("%zz"));
        assert_eq!(param(&params, "e"), Some(""));
    }
}
