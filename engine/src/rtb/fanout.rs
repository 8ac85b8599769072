//! One shard's RTB side: its connection pools (one per DSP endpoint), selector, health window,
//! published health table, metrics and notice queue; the progressive collection of one request;
//! and settling the unified auction (which external bids won, notices, health counts).
//!
//! Collection (seed Part 3, Strategy 3 with the 120 ms forced failure): the selected DSPs are
//! called at once, each with its own deadline `min(now + T_dsp, absolute cutoff)`; answers are
//! taken as they arrive. Collection closes when every DSP has answered, or — once at least one
//! valid bid is in — at the operational cutoff; without a bid it keeps taking late answers until
//! the absolute cutoff. At close every pending call is dropped (the pool closes its connection)
//! and counted as a timeout for its DSP.
//!
//! Owns: per-shard RTB state and the collection loop. Must not know: budgets, the internal ranking.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use net::http::client::{ClientError, ClientRequest, ClientResponse, Pool, PoolConfig};
use net::openrtb::{Bid, BidRequest, loss};

use super::RtbConfig;
use super::health::{DspTotals, HealthTable, Window};
use super::macros::{MacroValues, substitute};
use super::metrics::{ErrorKind, RtbMetrics, RtbSnapshot};
use super::notices::{Notice, NoticeKind, NoticeQueue};
use super::outbound::{HEADERS, Template};
use super::recycle::Recycler;
use super::registry::Registry;
use super::selection::{Choice, Selector, Skip};
use super::timeouts::{Cutoffs, cutoffs, dsp_deadline, tmax_for};
use super::validate::{DroppedBid, Offer, ValidBid, validate};

/// A valid external bid and who sent it.
#[derive(Debug, Clone)]
pub struct ExternalBid {
    pub dsp: usize,
    pub bid: ValidBid,
}

/// What collection gathered for one request.
#[derive(Debug, Default)]
pub struct Collected {
    pub bids: Vec<ExternalBid>,
    pub dropped: Vec<(usize, DroppedBid)>,
    /// DSPs called.
    pub called: usize,
    /// Receipt to close.
    pub elapsed: Duration,
}

impl Collected {
    /// Index (into `bids`) of the best bid per slot: highest price, earliest arrival on ties.
    pub fn best_per_slot(&self, slots: usize) -> Vec<Option<usize>> {
        let mut best: Vec<Option<usize>> = vec![None; slots];
        for (i, b) in self.bids.iter().enumerate() {
            let Some(cur) = best.get_mut(b.bid.slot) else {
                continue;
            };
            match cur {
                Some(j) if self.bids[*j].bid.price_cpm_micros >= b.bid.price_cpm_micros => {}
                _ => *cur = Some(i),
            }
        }
        best
    }
}

/// An impression won by an external bid, ready to be written in the response.
#[derive(Debug, Clone)]
pub struct ExternalWin {
    pub slot: usize,
    pub dsp: usize,
    pub price_cpm_micros: u64,
    pub seat: Option<String>,
    /// The DSP's bid with macros substituted in `adm`; `nurl`/`burl` cleared when this server
    /// fires them (markup present), kept substituted when the markup must be fetched from `nurl`.
    pub bid: Bid,
}

/// One shard's RTB state.
pub struct ShardRtb {
    pub registry: Arc<Registry>,
    cfg: RtbConfig,
    reserve_cpm_micros: u64,
    home_region: String,
    pools: Vec<Vec<Pool>>,
    selector: RefCell<Selector>,
    window: RefCell<Window>,
    health: RefCell<Arc<HealthTable>>,
    pub metrics: Rc<RtbMetrics>,
    pub notices: NoticeQueue,
    ids: Arc<[String]>,
    /// Endpoint paths, shared with call futures without allocating (`Rc`, shard-local).
    paths: Vec<Vec<Rc<str>>>,
    /// Reused outbound bodies (one per call in flight), DSP choices and floors (one per request).
    bodies: Recycler<u8>,
    choices: Recycler<Choice>,
    floors: Recycler<u64>,
}

/// Outbound bodies grown past this many bytes are freed rather than kept.
const BODY_KEPT_BYTES_MAX: usize = 64 * 1024;
/// Choice and floor lists kept for this many requests in flight on one shard (more are
/// allocated and freed).
const LISTS_KEPT_MAX: usize = 256;

impl ShardRtb {
    pub fn new(
        registry: Arc<Registry>,
        cfg: &RtbConfig,
        reserve_cpm_micros: u64,
        shards: usize,
    ) -> ShardRtb {
        let now = Instant::now();
        let pools = registry
            .dsps
            .iter()
            .map(|d| {
                d.endpoints
                    .iter()
                    .map(|e| {
                        let mut pc = PoolConfig::new(e.addr, e.host.clone());
                        pc.max_conns = cfg.pool_conns_max;
                        pc.connect_timeout = Duration::from_millis(cfg.connect_timeout_ms);
                        pc.backoff_min = Duration::from_millis(cfg.backoff_min_ms);
                        pc.backoff_max = Duration::from_millis(cfg.backoff_max_ms);
                        pc.body_bytes_max = cfg.response_bytes_max;
                        Pool::new(pc)
                    })
                    .collect()
            })
            .collect();
        let endpoints: usize = registry.dsps.iter().map(|d| d.endpoints.len()).sum();
        ShardRtb {
            paths: registry
                .dsps
                .iter()
                .map(|d| {
                    d.endpoints
                        .iter()
                        .map(|e| Rc::from(e.path.as_str()))
                        .collect()
                })
                .collect(),
            bodies: Recycler::new(endpoints * cfg.pool_conns_max, BODY_KEPT_BYTES_MAX),
            choices: Recycler::new(LISTS_KEPT_MAX, registry.len().max(1)),
            floors: Recycler::new(LISTS_KEPT_MAX, 64),
            selector: RefCell::new(Selector::new(
                &registry,
                shards,
                cfg.qps_burst_s,
                cfg.health_probe_every,
                now,
            )),
            window: RefCell::new(Window::new(
                registry.len(),
                cfg.health_buckets,
                Duration::from_millis(cfg.health_bucket_ms),
                now,
            )),
            health: RefCell::new(Arc::new(HealthTable::initial(&registry, cfg))),
            metrics: Rc::new(RtbMetrics::new(registry.len())),
            notices: NoticeQueue::new(cfg.notice_queue_max),
            home_region: cfg.home_region.clone(),
            ids: registry.dsps.iter().map(|d| d.id.clone()).collect(),
            reserve_cpm_micros,
            cfg: cfg.clone(),
            pools,
            registry,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.registry.is_empty()
    }

    /// Warms the pools and starts the notice sender (inside the shard's runtime).
    pub async fn start(&self) {
        self.notices.start(&self.cfg, self.metrics.clone());
        for p in self.pools.iter().flatten() {
            p.warm(self.cfg.pool_warm).await;
        }
    }

    pub fn health(&self) -> Arc<HealthTable> {
        self.health.borrow().clone()
    }

    pub fn set_health(&self, t: Arc<HealthTable>) {
        *self.health.borrow_mut() = t;
    }

    /// This shard's window totals (for the merge on shard 0).
    pub fn window_totals(&self) -> Vec<DspTotals> {
        self.window.borrow().totals(Instant::now())
    }

    /// Highest DSP tier called from now on (the shard's degradation level sets it).
    pub fn set_tier_max(&self, tier_max: u8) {
        self.selector.borrow_mut().tier_max = tier_max;
    }

    pub fn cfg(&self) -> &RtbConfig {
        &self.cfg
    }

    pub fn snapshot(&self) -> RtbSnapshot {
        RtbSnapshot {
            ids: self.ids.clone(),
            dsps: self.metrics.dsps.borrow().clone(),
            totals: self.metrics.totals.borrow().clone(),
            health: self
                .health
                .borrow()
                .dsps
                .iter()
                .map(|h| (h.score, h.tier.number(), h.timeout_ms))
                .collect(),
            pools: self.pools.iter().map(|eps| pool_counters(eps)).collect(),
        }
    }

    /// Calls the selected DSPs for `req` and gathers their bids; `None` when no DSP was called.
    pub async fn collect(
        &self,
        req: &BidRequest,
        received: Instant,
        tmax_ms: u64,
        formats_mask: u8,
        country: &str,
        geo_region: &str,
    ) -> Option<Collected> {
        let c = &self.cfg;
        let cut = cutoffs(
            received,
            tmax_ms,
            c.operational_cutoff_ms,
            c.absolute_cutoff_ms,
            c.response_reserve_ms,
        )?;
        let region = super::selection::region_of(country, geo_region, &self.home_region);
        let premium = super::selection::is_premium(req, c.premium_floor_cpm_micros);
        let health = self.health();
        let now = Instant::now();
        let mut choices = self.choices.take(self.registry.len());
        self.selector.borrow_mut().select(
            &self.registry,
            &health,
            region,
            premium,
            formats_mask,
            now,
            &mut choices,
            |d, Skip::QpsCap| self.metrics.dsp(d, |m| m.qps_refused += 1),
        );
        if choices.is_empty() {
            return None;
        }
        let mut template = Template::new(req, self.reserve_cpm_micros);
        let mut floors = self.floors.take(req.imp.len());
        floors.extend((0..req.imp.len()).map(|i| template.floor_micros(i)));
        let calls = self.launch(&choices, &mut template, &health, &cut, now);
        self.metrics.total(|t| t.auctions += 1);
        let imp_ids: Vec<&str> = req.imp.iter().map(|i| i.id.as_str()).collect();
        let offer = Offer {
            request_id: &req.id,
            imp_ids: &imp_ids,
            floors_micros: &floors[..],
            currencies: &c.currencies,
        };
        let mut out = Collected {
            called: choices.len(),
            ..Collected::default()
        };
        self.gather(calls, &choices, &cut, now, &offer, &mut out)
            .await;
        out.elapsed = received.elapsed();
        self.metrics.record_collect(out.elapsed);
        Some(out)
    }

    /// Starts every call; each future resolves to (choice index, start, deadline, result).
    fn launch(
        &self,
        choices: &[Choice],
        template: &mut Template,
        health: &HealthTable,
        cut: &Cutoffs,
        now: Instant,
    ) -> FuturesUnordered<impl Future<Output = CallResult> + use<>> {
        let calls = FuturesUnordered::new();
        let mut window = self.window.borrow_mut();
        for (i, ch) in choices.iter().enumerate() {
            let dsp = &self.registry.dsps[ch.dsp];
            let deadline = dsp_deadline(now, health.dsps[ch.dsp].timeout_ms, cut);
            let mut body = self.bodies.take(1024);
            template.write_for(&dsp.id, tmax_for(now, deadline), &mut body);
            let pool = self.pools[ch.dsp][ch.endpoint].clone();
            let path = Rc::clone(&self.paths[ch.dsp][ch.endpoint]);
            self.metrics.dsp(ch.dsp, |m| {
                m.requests += 1;
                m.probes += u64::from(ch.probe);
            });
            window.at(ch.dsp, now).requests += 1;
            calls.push(async move {
                let req = ClientRequest::post(&path, &body).headers(&HEADERS);
                let result = pool.send(&req, deadline).await;
                CallResult {
                    index: i,
                    started: now,
                    deadline,
                    result,
                }
            });
        }
        calls
    }

    async fn gather(
        &self,
        mut calls: FuturesUnordered<impl Future<Output = CallResult>>,
        choices: &[Choice],
        cut: &Cutoffs,
        launched: Instant,
        offer: &Offer<'_>,
        out: &mut Collected,
    ) {
        let mut done = vec![false; choices.len()];
        let mut pending = choices.len();
        loop {
            if pending == 0 {
                self.metrics.total(|t| t.closed_all_answered += 1);
                break;
            }
            let has_bid = !out.bids.is_empty();
            let wake = if has_bid {
                cut.operational
            } else {
                cut.absolute
            };
            if Instant::now() >= wake {
                self.metrics.total(|t| {
                    if has_bid {
                        t.closed_operational += 1
                    } else {
                        t.closed_absolute += 1
                    }
                });
                // Answers already complete (woken in the same tick as the timer) still count.
                while let Some(Some(r)) = calls.next().now_or_never() {
                    done[r.index] = true;
                    self.on_answer(choices[r.index].dsp, r, offer, out);
                }
                break;
            }
            let at = monoio::time::Instant::from_std(wake);
            if let Ok(Some(r)) = monoio::time::timeout_at(at, calls.next()).await {
                done[r.index] = true;
                pending -= 1;
                self.on_answer(choices[r.index].dsp, r, offer, out);
            }
        }
        // Cancel what is left: dropping the futures closes their connections.
        drop(calls);
        let now = Instant::now();
        let mut window = self.window.borrow_mut();
        for (_, ch) in choices.iter().enumerate().filter(|(i, _)| !done[*i]) {
            self.metrics.dsp(ch.dsp, |m| {
                m.timeouts += 1;
                m.latency.record(now.saturating_duration_since(launched));
            });
            window.at(ch.dsp, now).timeouts += 1;
        }
    }

    fn on_answer(&self, dsp: usize, r: CallResult, offer: &Offer<'_>, out: &mut Collected) {
        let now = Instant::now();
        let latency = now.saturating_duration_since(r.started);
        let mut window = self.window.borrow_mut();
        let w = window.at(dsp, now);
        let outcome = match r.result {
            Ok(resp) => Answer::from_response(resp),
            Err(ClientError::Timeout) => Answer::Timeout,
            Err(e) => Answer::Failed(error_kind(&e)),
        };
        match outcome {
            Answer::Timeout => {
                let at = r.deadline.saturating_duration_since(r.started);
                w.timeouts += 1;
                self.metrics.dsp(dsp, |m| {
                    m.timeouts += 1;
                    m.latency.record(at);
                });
            }
            Answer::Failed(kind) => {
                w.errors += 1;
                self.metrics.dsp(dsp, |m| m.error(kind));
            }
            Answer::NoBid => {
                w.latency.record(latency);
                self.metrics.dsp(dsp, |m| {
                    m.responses += 1;
                    m.nobids += 1;
                    m.latency.record(latency);
                });
            }
            Answer::Bids(resp) => {
                w.latency.record(latency);
                let (first_valid, first_dropped) = (out.bids.len(), out.dropped.len());
                let mut valid = Vec::new();
                let mut dropped = Vec::new();
                validate(*resp, offer, &mut valid, &mut dropped);
                w.bids += valid.len() as u64;
                w.value_micros += valid.iter().map(|b| b.price_cpm_micros).sum::<u64>();
                out.bids
                    .extend(valid.into_iter().map(|bid| ExternalBid { dsp, bid }));
                out.dropped.extend(dropped.into_iter().map(|d| (dsp, d)));
                self.metrics.dsp(dsp, |m| {
                    m.responses += 1;
                    m.latency.record(latency);
                    m.bids += (out.bids.len() - first_valid) as u64;
                    if out.bids.len() == first_valid && out.dropped.len() == first_dropped {
                        m.nobids += 1;
                    }
                    for (_, d) in &out.dropped[first_dropped..] {
                        m.drop_code(d.code);
                    }
                });
            }
        }
    }

    /// Settles the unified auction once the internal result is known: `internal_paid[slot]` is
    /// the internal winner's price when a paid internal ad won the slot (it had to beat the best
    /// external bid). Returns the external wins; fires win/billing/loss notices; counts wins.
    pub fn settle(
        &self,
        req: &BidRequest,
        collected: &Collected,
        internal_paid: &[Option<u64>],
    ) -> Vec<ExternalWin> {
        let best = collected.best_per_slot(req.imp.len());
        let mut wins = Vec::new();
        let now = Instant::now();
        for (slot, b) in best.iter().enumerate() {
            let Some(i) = *b else { continue };
            if internal_paid[slot].is_some() {
                continue;
            }
            let e = &collected.bids[i];
            let second = collected
                .bids
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && o.bid.slot == slot)
                .map(|(_, o)| o.bid.price_cpm_micros)
                .max()
                .unwrap_or(0);
            wins.push(self.win(req, e, second, now));
        }
        let clearing = |slot: usize| {
            internal_paid[slot]
                .or_else(|| best[slot].map(|i| collected.bids[i].bid.price_cpm_micros))
        };
        for (i, e) in collected.bids.iter().enumerate() {
            if best[e.bid.slot] == Some(i) && internal_paid[e.bid.slot].is_none() {
                continue;
            }
            self.metrics.dsp(e.dsp, |m| m.losses += 1);
            let code = loss::LOST_TO_HIGHER_BID;
            self.loss_notice(
                req,
                e.dsp,
                &e.bid.bid,
                e.bid.seat.as_deref(),
                code,
                clearing(e.bid.slot),
            );
        }
        for (dsp, d) in &collected.dropped {
            let price = d.slot.and_then(clearing);
            self.loss_notice(req, *dsp, &d.bid, d.seat.as_deref(), d.code, price);
        }
        wins
    }

    fn win(&self, req: &BidRequest, e: &ExternalBid, second: u64, now: Instant) -> ExternalWin {
        let price = e.bid.price_cpm_micros;
        let values = macro_values(
            req,
            &e.bid.bid,
            e.bid.seat.as_deref(),
            Some(price),
            None,
            Some(second),
        );
        let src = &e.bid.bid;
        let nurl = src.nurl.as_deref().map(|u| substitute(u, &values));
        let burl = src.burl.as_deref().map(|u| substitute(u, &values));
        let mut bid = Bid {
            id: src.id.clone(),
            impid: src.impid.clone(),
            price: price as f64 / 1_000_000.0,
            adm: src.adm.as_deref().map(|a| substitute(a, &values)),
            adid: src.adid.clone(),
            adomain: src.adomain.clone(),
            bundle: src.bundle.clone(),
            iurl: src.iurl.clone(),
            cid: src.cid.clone(),
            crid: src.crid.clone(),
            cat: src.cat.clone(),
            attr: src.attr.clone(),
            dealid: src.dealid.clone(),
            w: src.w,
            h: src.h,
            mtype: src.mtype,
            ..Bid::default()
        };
        if bid.adm.is_some() {
            if let Some(url) = nurl {
                self.queue(NoticeKind::Win, e.dsp, url);
            }
            if let Some(url) = burl {
                self.queue(NoticeKind::Billing, e.dsp, url);
            }
        } else {
            // Markup comes from the win notice: the caller fetches it; billing on render.
            bid.nurl = nurl;
            bid.burl = burl;
        }
        self.metrics.dsp(e.dsp, |m| {
            m.wins += 1;
            m.won_cpm_micros += price;
        });
        self.metrics.total(|t| t.external_wins += 1);
        self.window.borrow_mut().at(e.dsp, now).wins += 1;
        ExternalWin {
            slot: e.bid.slot,
            dsp: e.dsp,
            price_cpm_micros: price,
            seat: e.bid.seat.clone(),
            bid,
        }
    }

    fn loss_notice(
        &self,
        req: &BidRequest,
        dsp: usize,
        bid: &Bid,
        seat: Option<&str>,
        code: u32,
        clearing: Option<u64>,
    ) {
        if !self.cfg.loss_notices {
            return;
        }
        let Some(lurl) = bid.lurl.as_deref() else {
            return;
        };
        let values = macro_values(req, bid, seat, clearing, Some(code), clearing);
        self.queue(NoticeKind::Loss, dsp, substitute(lurl, &values));
    }

    fn queue(&self, kind: NoticeKind, dsp: usize, url: String) {
        self.notices.push(Notice { kind, dsp, url }, &self.metrics);
    }
}

/// Counters of a DSP's pools summed over its endpoints.
fn pool_counters(pools: &[Pool]) -> Vec<(&'static str, u64)> {
    let mut sum: Vec<(&'static str, u64)> = Vec::new();
    for p in pools {
        for (i, (name, v)) in p.stats().iter().enumerate() {
            match sum.get_mut(i) {
                Some(slot) => slot.1 += v,
                None => sum.push((name, v)),
            }
        }
    }
    sum
}

fn macro_values<'a>(
    req: &'a BidRequest,
    bid: &'a Bid,
    seat: Option<&'a str>,
    price: Option<u64>,
    loss: Option<u32>,
    min_to_win: Option<u64>,
) -> MacroValues<'a> {
    MacroValues {
        auction_id: &req.id,
        bid_id: &bid.id,
        imp_id: &bid.impid,
        seat_id: seat.unwrap_or(""),
        ad_id: bid.adid.as_deref().unwrap_or(""),
        price_micros: price,
        currency: "USD",
        loss,
        min_to_win_micros: min_to_win,
    }
}

struct CallResult {
    index: usize,
    started: Instant,
    deadline: Instant,
    result: Result<ClientResponse, ClientError>,
}

enum Answer {
    Timeout,
    Failed(ErrorKind),
    NoBid,
    Bids(Box<net::openrtb::BidResponse>),
}

impl Answer {
    fn from_response(resp: ClientResponse) -> Answer {
        match resp.status {
            204 => Answer::NoBid,
            200 if resp.body.is_empty() => Answer::NoBid,
            200 => match net::openrtb::parse_bid_response(&resp.body) {
                Ok(r) => Answer::Bids(Box::new(r)),
                Err(_) => Answer::Failed(ErrorKind::Malformed),
            },
            _ => Answer::Failed(ErrorKind::Status),
        }
    }
}

fn error_kind(e: &ClientError) -> ErrorKind {
    match e {
        ClientError::Connect(_) | ClientError::ConnectTimeout | ClientError::BackingOff => {
            ErrorKind::Connect
        }
        ClientError::Reset | ClientError::Io(_) => ErrorKind::Reset,
        ClientError::PoolExhausted => ErrorKind::PoolExhausted,
        ClientError::TooLarge(_) => ErrorKind::TooLarge,
        ClientError::Malformed(_) | ClientError::InvalidRequest(_) | ClientError::Timeout => {
            ErrorKind::Malformed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(slot: usize, price: u64, id: &str) -> ValidBid {
        ValidBid {
            slot,
            price_cpm_micros: price,
            seat: None,
            bid: Bid {
                id: id.into(),
                ..Bid::default()
            },
        }
    }

    #[test]
    fn best_bid_per_slot_prefers_price_then_arrival() {
        let c = Collected {
            bids: vec![
                ExternalBid {
                    dsp: 0,
                    bid: vb(0, 100, "a"),
                },
                ExternalBid {
                    dsp: 1,
                    bid: vb(0, 300, "b"),
                },
                ExternalBid {
                    dsp: 2,
                    bid: vb(0, 300, "c"),
                },
                ExternalBid {
                    dsp: 2,
                    bid: vb(2, 50, "d"),
                },
            ],
            ..Collected::default()
        };
        assert_eq!(c.best_per_slot(3), vec![Some(1), None, Some(3)]);
    }
}
