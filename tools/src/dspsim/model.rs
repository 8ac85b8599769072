//! What one simulated DSP does with one bid request: draw the outcome (fault, error, late,
//! latency, bid or no bid, price) from its own seeded RNG and build the exact bytes to send.
//! No sockets here.

use std::collections::VecDeque;
use std::time::Duration;

use net::openrtb::{Bid, BidRequest, BidResponse, SeatBid, write_bid_response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, LogNormal};
use serde::Serialize;

use super::config::{DspSpec, FaultMode, Latency};

/// What to do on the connection, after `delay` counted from when the request was read.
#[derive(Debug)]
pub enum Action {
    /// Write `bytes`; close afterwards when `close`.
    Respond {
        delay: Duration,
        bytes: Vec<u8>,
        close: bool,
    },
    /// Close with a TCP RST.
    Reset { delay: Duration },
    /// Write `bytes` (a partial response), then close.
    HalfWritten { delay: Duration, bytes: Vec<u8> },
    /// Hold the connection for `delay`, then close without answering.
    Stall { delay: Duration },
}

/// Counters of one DSP.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DspCounters {
    pub requests: u64,
    pub bad_requests: u64,
    pub responses_bid: u64,
    pub responses_no_bid: u64,
    pub bids: u64,
    pub errors_5xx: u64,
    pub late: u64,
    pub faults: u64,
    pub notices_win: u64,
    pub notices_billing: u64,
    pub notices_loss: u64,
}

/// One received notice with every query parameter (percent-decoded).
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub kind: String,
    pub params: Vec<(String, String)>,
    /// Milliseconds since dsp-sim started.
    pub at_ms: u64,
}

/// One simulated DSP: its (runtime-changeable) spec, RNG, counters and recent notices.
pub struct Dsp {
    pub spec: DspSpec,
    rng: StdRng,
    pub counters: DspCounters,
    pub notices: VecDeque<Notice>,
    bid_seq: u64,
    seed: u64,
    index: usize,
}

/// Per-process settings each DSP needs to answer.
pub struct Env<'a> {
    /// `http://host:control_port`, where notices go.
    pub notice_base: &'a str,
    pub stall: Duration,
    pub late: Duration,
    /// Reseed the RNG from (seed, index, request id) before each answer.
    pub per_request: bool,
}

impl Dsp {
    pub fn new(spec: DspSpec, seed: u64, index: usize) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index as u64),
            spec,
            counters: DspCounters::default(),
            notices: VecDeque::new(),
            bid_seq: 0,
            seed,
            index,
        }
    }

    /// Decide the answer to one request body (already de-gzipped).
    pub fn answer(&mut self, body: &[u8], env: &Env<'_>) -> Action {
        self.counters.requests += 1;
        let request = match net::openrtb::parse_bid_request(body) {
            Ok(request) => request,
            Err(error) => {
                self.counters.bad_requests += 1;
                let text = error.to_string();
                return respond(Duration::ZERO, 400, "text/plain", text.as_bytes(), false);
            }
        };
        if env.per_request {
            self.rng = StdRng::seed_from_u64(request_seed(self.seed, self.index, &request.id));
        }
        if let Some(action) = self.fault(&request, env) {
            self.counters.faults += 1;
            return action;
        }
        if self.rng.random_bool(self.spec.error_rate) {
            self.counters.errors_5xx += 1;
            return respond(
                self.draw_latency(),
                500,
                "text/plain",
                b"simulated error",
                false,
            );
        }
        let delay = if self.rng.random_bool(self.spec.timeout_rate) {
            self.counters.late += 1;
            env.late
        } else {
            self.draw_latency()
        };
        match self.bid_response(&request, env) {
            Some(response) => {
                self.counters.responses_bid += 1;
                let mut json = Vec::with_capacity(1024);
                write_bid_response(&response, &mut json);
                respond(delay, 200, "application/json", &json, false)
            }
            None => {
                self.counters.responses_no_bid += 1;
                respond(delay, 204, "", b"", false)
            }
        }
    }

    fn fault(&mut self, request: &BidRequest, env: &Env<'_>) -> Option<Action> {
        let fault = self.spec.fault;
        if fault.mode == FaultMode::None || !self.rng.random_bool(fault.share) {
            return None;
        }
        let delay = self.draw_latency();
        Some(match fault.mode {
            FaultMode::None => return None,
            FaultMode::Reset => Action::Reset { delay },
            FaultMode::Stall => Action::Stall { delay: env.stall },
            FaultMode::Http5xx => respond(delay, 503, "text/plain", b"simulated overload", false),
            FaultMode::Malformed => {
                let body = format!(r#"{{"id":"{}","seatbid":[{{"bid":[{{"id":"#, request.id);
                respond(delay, 200, "application/json", body.as_bytes(), false)
            }
            FaultMode::HalfWritten => {
                let body = format!(r#"{{"id":"{}","seatbid":[]}}"#, request.id);
                let full = head(200, "application/json", body.len() + 64, false);
                let mut bytes = full.into_bytes();
                bytes.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
                Action::HalfWritten { delay, bytes }
            }
        })
    }

    /// Draw one answer latency: the main distribution, or the slow tail.
    pub fn draw_latency(&mut self) -> Duration {
        let ms = if self.rng.random_bool(self.spec.slow_share) {
            lognormal(&mut self.rng, self.spec.slow_ms, 0.3)
        } else {
            match self.spec.latency {
                Latency::Lognormal { median_ms, sigma } => {
                    lognormal(&mut self.rng, median_ms, sigma)
                }
                Latency::Gamma { shape, scale_ms } => Gamma::new(shape, scale_ms)
                    .map(|g| g.sample(&mut self.rng))
                    .unwrap_or(scale_ms * shape),
            }
        };
        Duration::from_secs_f64(ms.clamp(0.0, 600_000.0) / 1000.0)
    }

    fn bid_response(&mut self, request: &BidRequest, env: &Env<'_>) -> Option<BidResponse> {
        if !request.cur.is_empty() && !request.cur.iter().any(|c| c == "USD") {
            return None; // prices are USD CPMs: no bid where the exchange refuses USD
        }
        let mut bids = Vec::new();
        for imp in &request.imp {
            if !self.rng.random_bool(self.spec.bid_rate) {
                continue;
            }
            let value = lognormal(
                &mut self.rng,
                self.spec.price_median_cpm,
                self.spec.price_sigma,
            );
            let price = (value * 10_000.0).round() / 10_000.0;
            if price <= 0.0 || price < imp.bidfloor {
                continue; // valuation below the floor: no bid on this impression
            }
            self.bid_seq += 1;
            bids.push(self.bid(&imp.id, price, env));
        }
        if bids.is_empty() {
            return None;
        }
        self.counters.bids += bids.len() as u64;
        Some(BidResponse {
            id: request.id.to_string(),
            seatbid: vec![SeatBid {
                bid: bids,
                seat: Some(format!("{}-seat", self.spec.id)),
                ..SeatBid::default()
            }],
            bidid: Some(format!("{}-r{}", self.spec.id, self.bid_seq)),
            cur: Some("USD".to_string()),
            ..BidResponse::default()
        })
    }

    fn bid(&self, impid: &str, price: f64, env: &Env<'_>) -> Bid {
        let id = &self.spec.id;
        let creative = format!("{id}-cr{}", self.bid_seq % 5);
        let notice = |kind: &str, extra: &str| {
            format!(
                "{}/notice/{kind}?dsp={id}&auction=${{AUCTION_ID}}&bid=${{AUCTION_BID_ID}}\
                 &imp=${{AUCTION_IMP_ID}}&seat=${{AUCTION_SEAT_ID}}&ad=${{AUCTION_AD_ID}}\
                 &price=${{AUCTION_PRICE}}&cur=${{AUCTION_CURRENCY}}{extra}",
                env.notice_base
            )
        };
        Bid {
            id: format!("{id}-b{}", self.bid_seq),
            impid: impid.to_string(),
            price,
            nurl: Some(notice("win", "")),
            burl: Some(notice("billing", "")),
            lurl: Some(notice(
                "loss",
                "&loss=${AUCTION_LOSS}&min_to_win=${AUCTION_MIN_TO_WIN}",
            )),
            adm: Some(format!(
                "<div class=\"ad\" data-dsp=\"{id}\" data-crid=\"{creative}\">simulated ad</div>"
            )),
            adid: Some(creative.clone()),
            adomain: vec![format!("{id}.example")],
            crid: Some(creative),
            cid: Some(format!("{id}-campaign")),
            mtype: Some(1),
            ..Bid::default()
        }
    }

    /// Record a notice; keeps the last `kept`.
    pub fn record_notice(&mut self, notice: Notice, kept: usize) {
        match notice.kind.as_str() {
            "win" => self.counters.notices_win += 1,
            "billing" => self.counters.notices_billing += 1,
            _ => self.counters.notices_loss += 1,
        }
        if self.notices.len() >= kept {
            self.notices.pop_front();
        }
        self.notices.push_back(notice);
    }
}

/// FNV-1a over the request id, mixed with the simulator seed and the DSP's index: stable across
/// processes and Rust versions (unlike `DefaultHasher`).
fn request_seed(seed: u64, index: usize, request_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in request_id.bytes().chain((index as u64).to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    LogNormal::new(median.ln(), sigma)
        .map(|d| d.sample(rng))
        .unwrap_or(median)
}

fn head(status: u16, content_type: &str, length: usize, close: bool) -> String {
    let reason = net::http::reason_phrase(status);
    let mut text = format!("HTTP/1.1 {status} {reason}\r\nserver: dsp-sim\r\n");
    if !content_type.is_empty() {
        text.push_str(&format!("content-type: {content_type}\r\n"));
    }
    if close {
        text.push_str("connection: close\r\n");
    }
    if status != 204 {
        text.push_str(&format!("content-length: {length}\r\n"));
    }
    text.push_str("\r\n");
    text
}

/// A complete response.
pub fn respond(
    delay: Duration,
    status: u16,
    content_type: &str,
    body: &[u8],
    close: bool,
) -> Action {
    let mut bytes = head(status, content_type, body.len(), close).into_bytes();
    if status != 204 {
        bytes.extend_from_slice(body);
    }
    Action::Respond {
        delay,
        bytes,
        close,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::{Fault, seed_population};
    use super::*;

    const REQUEST: &[u8] =
        br#"{"id":"req-1","imp":[{"id":"1","banner":{"w":300,"h":250},"bidfloor":0.5}],"tmax":80}"#;

    fn env() -> Env<'static> {
        Env {
            notice_base: "http://127.0.0.1:9",
            stall: Duration::from_secs(10),
            late: Duration::from_secs(1),
            per_request: false,
        }
    }

    fn body_of(action: &Action) -> (&str, &[u8]) {
        let Action::Respond { bytes, .. } = action else {
            panic!("not a response: {action:?}")
        };
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        (
            std::str::from_utf8(&bytes[..split]).unwrap(),
            &bytes[split + 4..],
        )
    }

    #[test]
    fn bids_are_valid_openrtb_with_notice_macros() {
        let mut spec = seed_population(1).dsp[0].clone();
        spec.bid_rate = 1.0;
        spec.error_rate = 0.0;
        spec.timeout_rate = 0.0;
        spec.price_median_cpm = 3.0;
        let mut dsp = Dsp::new(spec, 1, 0);
        let action = dsp.answer(REQUEST, &env());
        let (head, body) = body_of(&action);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let response = net::openrtb::parse_bid_response(body).unwrap();
        let request = net::openrtb::parse_bid_request(REQUEST).unwrap();
        net::openrtb::validate_bid_response(&response, &request).unwrap();
        let bid = &response.seatbid[0].bid[0];
        assert_eq!((response.id.as_str(), bid.impid.as_str()), ("req-1", "1"));
        assert!(bid.price >= 0.5);
        assert!(bid.crid.is_some() && bid.adm.is_some() && !bid.adomain.is_empty());
        let lurl = bid.lurl.as_deref().unwrap();
        assert!(
            lurl.starts_with("http://127.0.0.1:9/notice/loss?dsp=dsp01&"),
            "{lurl}"
        );
        assert!(
            lurl.contains("${AUCTION_LOSS}") && lurl.contains("${AUCTION_PRICE}"),
            "{lurl}"
        );
        assert!(bid.nurl.as_deref().unwrap().contains("${AUCTION_PRICE}"));
    }

    #[test]
    fn faults_errors_and_bad_requests() {
        let mut spec = seed_population(1).dsp[0].clone();
        spec.fault = Fault {
            mode: FaultMode::Malformed,
            share: 1.0,
        };
        let mut dsp = Dsp::new(spec, 1, 0);
        let action = dsp.answer(REQUEST, &env());
        assert!(net::openrtb::parse_bid_response(body_of(&action).1).is_err());
        dsp.spec.fault.mode = FaultMode::Stall;
        assert!(
            matches!(dsp.answer(REQUEST, &env()), Action::Stall { delay } if delay == Duration::from_secs(10))
        );
        dsp.spec.fault.mode = FaultMode::Reset;
        assert!(matches!(dsp.answer(REQUEST, &env()), Action::Reset { .. }));
        dsp.spec.fault.mode = FaultMode::HalfWritten;
        assert!(matches!(
            dsp.answer(REQUEST, &env()),
            Action::HalfWritten { .. }
        ));
        dsp.spec.fault = Fault::default();
        dsp.spec.error_rate = 1.0;
        assert!(
            body_of(&dsp.answer(REQUEST, &env()))
                .0
                .starts_with("HTTP/1.1 500")
        );
        dsp.spec.error_rate = 0.0;
        dsp.spec.bid_rate = 1.0;
        let gbp = br#"{"id":"g","imp":[{"id":"1","banner":{"w":1,"h":1}}],"cur":["GBP"]}"#;
        assert!(
            body_of(&dsp.answer(gbp, &env()))
                .0
                .starts_with("HTTP/1.1 204"),
            "USD-only DSP bid on a GBP-only request"
        );
        assert!(
            body_of(&dsp.answer(b"{not json", &env()))
                .0
                .starts_with("HTTP/1.1 400")
        );
        assert_eq!(
            (
                dsp.counters.faults,
                dsp.counters.errors_5xx,
                dsp.counters.bad_requests
            ),
            (4, 1, 1)
        );
    }

    #[test]
    fn per_request_answers_depend_only_on_seed_dsp_and_request_id() {
        let spec = seed_population(5).dsp[3].clone();
        let per_request = Env {
            per_request: true,
            ..env()
        };
        let request = |id: &str| {
            format!(
                r#"{{"id":"{id}","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}},{{"id":"2","banner":{{"w":1,"h":1}}}}]}}"#
            )
        };
        let answer =
            |dsp: &mut Dsp, id: &str| match dsp.answer(request(id).as_bytes(), &per_request) {
                Action::Respond { delay, bytes, .. } => {
                    // Bid ids count bids per process; compare everything but them.
                    let text = String::from_utf8(bytes).unwrap();
                    let prices: Vec<&str> = text.split("\"price\":").skip(1).collect();
                    (
                        delay,
                        text.split("\r\n").next().unwrap().to_string(),
                        prices.len(),
                        prices
                            .iter()
                            .map(|p| p.split(',').next().unwrap().to_string())
                            .collect::<Vec<_>>(),
                    )
                }
                other => panic!("{other:?}"),
            };
        let ids: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
        let mut a = Dsp::new(spec.clone(), 5, 3);
        let forward: Vec<_> = ids.iter().map(|id| answer(&mut a, id)).collect();
        let mut b = Dsp::new(spec.clone(), 5, 3);
        let mut backward: Vec<_> = ids.iter().rev().map(|id| answer(&mut b, id)).collect();
        backward.reverse();
        assert_eq!(forward, backward, "order must not matter");
        assert!(forward.iter().any(|f| f.2 > 0) && forward.iter().any(|f| f.1.contains("204")));
        let mut other_seed = Dsp::new(spec, 6, 3);
        let moved: Vec<_> = ids.iter().map(|id| answer(&mut other_seed, id)).collect();
        assert_ne!(forward, moved, "the seed must matter");
    }

    /// The seed population answers like the seed's timeout table (Part 3): ~70 % by 50 ms,
    /// ~85 % by 70 ms, ~90 % by 80 ms, ~95 % by 100 ms (late answers count as not answered).
    #[test]
    fn seed_population_matches_the_timeout_table() {
        let population = seed_population(42);
        let mut within = [0u64; 4];
        let cutoffs = [50.0, 70.0, 80.0, 100.0];
        let mut total = 0u64;
        for (i, spec) in population.dsp.into_iter().enumerate() {
            let late = spec.timeout_rate;
            let mut dsp = Dsp::new(spec, 42, i);
            for _ in 0..4000 {
                total += 1;
                if dsp.rng.random_bool(late) {
                    continue;
                }
                let ms = dsp.draw_latency().as_secs_f64() * 1000.0;
                for (count, cutoff) in within.iter_mut().zip(cutoffs) {
                    *count += u64::from(ms <= cutoff);
                }
            }
        }
        let share: Vec<f64> = within.iter().map(|&w| w as f64 / total as f64).collect();
        let bands = [(0.62, 0.78), (0.80, 0.90), (0.86, 0.94), (0.91, 0.98)];
        for ((s, (lo, hi)), cutoff) in share.iter().zip(bands).zip(cutoffs) {
            assert!(
                (lo..=hi).contains(s),
                "{cutoff} ms: {s:.3} not in [{lo}, {hi}] ({share:?})"
            );
        }
    }
}
