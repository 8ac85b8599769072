//! One engine shard: the HTTP front (routes), the hop to the user's owner shard, and the owner's
//! side that runs the auction on its own sub-ledger.
//!
//! Owns: per-shard state (sub-ledger, scratch buffers, metrics, HTTP counters) and the message
//! types shards exchange. Every piece of state here belongs to exactly one shard; only the
//! immutable [`Shared`] snapshot (config, catalog) is shared, behind an `Arc`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::http::{Handler, HttpStats, Method, Request, Response, Shutdown};
use net::openrtb::BidRequest;
use shards::{MeshError, MeshStats, Service, ShardCtx, ShardId};

use crate::auction::{AuctionResult, Scratch, run_auction};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::intake::{self, AuctionJob};
use crate::ledger::{SpendLine, SubLedger};
use crate::metrics::{MetricsSnapshot, Outcome, ShardMetrics, Stage, bump};
use crate::rtb::Registry;
use crate::rtb::fanout::{Collected, ExternalWin, ShardRtb};
use crate::rtb::health::{DspTotals, HealthTable};
use crate::rtb::metrics::RtbSnapshot;
use crate::supervise::{Heartbeats, heartbeat_loop};
use crate::{exposition, respond};

/// Immutable state every shard reads.
pub struct Shared {
    pub config: Config,
    pub catalog: Arc<Catalog>,
    /// External DSPs (empty: RTB off).
    pub registry: Arc<Registry>,
    /// Liveness stamps for the systemd watchdog (one slot per shard, written by its shard only).
    pub heartbeats: Arc<Heartbeats>,
}

/// Messages between shards.
pub enum Msg {
    /// Run the auction for a user this shard owns.
    Auction(Box<AuctionJob>),
    /// Send a copy of your metrics (for /metrics and /stats).
    Snapshot,
    /// Send your DSP health window totals (shard 0 merges them).
    RtbWindow,
    /// Use this DSP health table from now on.
    RtbHealth(Arc<HealthTable>),
}

pub enum Reply {
    Auction(AuctionResult),
    Snapshot(Box<ShardSnapshot>),
    RtbWindow(Vec<DspTotals>),
    Done,
}

/// Everything a scrape needs from one shard.
pub struct ShardSnapshot {
    pub shard: usize,
    pub driver: String,
    pub metrics: MetricsSnapshot,
    pub mesh: MeshStats,
    pub http: Vec<(&'static str, u64)>,
    /// Indexed like `Catalog::campaigns`.
    pub spend: Vec<SpendLine>,
    pub rtb: RtbSnapshot,
}

pub struct EngineShard {
    shared: Arc<Shared>,
    ledger: RefCell<SubLedger>,
    scratch: RefCell<Scratch>,
    metrics: ShardMetrics,
    http_stats: Rc<HttpStats>,
    listener: RefCell<Option<monoio::net::TcpListener>>,
    rtb: ShardRtb,
}

impl EngineShard {
    /// Builds the shard's state and binds its listening socket (SO_REUSEPORT).
    pub fn new(shared: Arc<Shared>, ctx: &ShardCtx<EngineShard>) -> std::io::Result<EngineShard> {
        let listener = net::http::bind_reuseport(shared.config.server.listen)?;
        let ledger = SubLedger::new(
            &shared.catalog,
            ctx.id().0,
            ctx.count(),
            intake::now_unix_s().div_euclid(86_400),
        );
        let rtb = ShardRtb::new(
            shared.registry.clone(),
            &shared.config.rtb,
            shared.config.auction.reserve_cpm_micros,
            ctx.count(),
        );
        Ok(EngineShard {
            rtb,
            shared,
            ledger: RefCell::new(ledger),
            scratch: RefCell::new(Scratch::default()),
            metrics: ShardMetrics::default(),
            http_stats: Rc::new(HttpStats::default()),
            listener: RefCell::new(Some(listener)),
        })
    }

    /// Runs the auction here, on this shard's ledger.
    fn auction_here(&self, job: &AuctionJob) -> AuctionResult {
        run_auction(
            job,
            &self.shared.catalog,
            &mut self.ledger.borrow_mut(),
            &self.shared.config.auction,
            &mut self.scratch.borrow_mut(),
            &self.metrics,
        )
    }

    fn snapshot(&self, ctx: &ShardCtx<EngineShard>) -> ShardSnapshot {
        let ledger = self.ledger.borrow();
        ShardSnapshot {
            shard: ctx.id().0,
            driver: ctx.driver().to_string(),
            metrics: self.metrics.snapshot(),
            mesh: ctx.stats(),
            http: self.http_stats.iter().collect(),
            spend: (0..ledger.len()).map(|i| ledger.line(i)).collect(),
            rtb: self.rtb.snapshot(),
        }
    }
}

/// Shard 0's health loop: every `rtb.health_interval_ms`, gather every shard's DSP window,
/// merge, score, and publish the new table to every shard.
async fn health_loop(shard: Rc<EngineShard>, ctx: ShardCtx<EngineShard>) {
    let period = Duration::from_millis(shard.shared.config.rtb.health_interval_ms);
    let reg = shard.shared.registry.clone();
    while !ctx.is_stopping() {
        monoio::time::sleep(period).await;
        let mut merged = vec![DspTotals::default(); reg.len()];
        for r in ctx.invoke_on_all(|_| Msg::RtbWindow).await {
            if let Ok(Reply::RtbWindow(w)) = r {
                for (m, t) in merged.iter_mut().zip(&w) {
                    m.merge(t);
                }
            }
        }
        let next = Arc::new(shard.rtb.health().next(&reg, shard.rtb.cfg(), &merged));
        let _ = ctx.invoke_on_all(|_| Msg::RtbHealth(next.clone())).await;
    }
}

impl Service for EngineShard {
    type Msg = Msg;
    type Reply = Reply;

    async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
        let Some(listener) = self.listener.borrow_mut().take() else {
            return;
        };
        let shutdown = Shutdown::new();
        let drain = Duration::from_millis(self.shared.config.server.drain_timeout_ms);
        let trigger = shutdown.clone();
        let stop_ctx = ctx.clone();
        monoio::spawn(async move {
            stop_ctx.stopping().await;
            trigger.trigger(Instant::now() + drain);
        });
        if self.rtb.enabled() {
            let me = self.clone();
            monoio::spawn(async move { me.rtb.start().await });
            if ctx.id().0 == 0 {
                monoio::spawn(health_loop(self.clone(), ctx.clone()));
            }
        }
        let heartbeat = Duration::from_millis(self.shared.config.server.heartbeat_ms);
        monoio::spawn(heartbeat_loop(
            ctx.id().0,
            self.shared.heartbeats.clone(),
            heartbeat,
        ));
        let front = Rc::new(Front {
            ctx: ctx.clone(),
            shard: self.clone(),
        });
        let limits = self.shared.config.http_limits();
        net::http::serve(listener, front, limits, shutdown, self.http_stats.clone()).await;
    }

    async fn handle(self: Rc<Self>, ctx: ShardCtx<Self>, _from: ShardId, msg: Msg) -> Reply {
        match msg {
            Msg::Auction(job) => {
                bump(&self.metrics.hops_in, 1);
                Reply::Auction(self.auction_here(&job))
            }
            Msg::Snapshot => Reply::Snapshot(Box::new(self.snapshot(&ctx))),
            Msg::RtbWindow => Reply::RtbWindow(self.rtb.window_totals()),
            Msg::RtbHealth(table) => {
                self.rtb.set_health(table);
                Reply::Done
            }
        }
    }
}

/// The HTTP handler of one shard.
struct Front {
    ctx: ShardCtx<EngineShard>,
    shard: Rc<EngineShard>,
}

impl Handler for Front {
    async fn handle<'a>(&'a self, req: &'a Request<'a>, resp: &'a mut Response) {
        match (req.method, req.path) {
            (Method::Post, "/openrtb2/auction") => self.auction(req, resp).await,
            (Method::Get, "/health") => self.health(resp),
            (Method::Get, "/metrics") => self.metrics(resp).await,
            (Method::Get, "/stats") => self.stats(resp).await,
            (Method::Get, "/dashboard") => dashboard(resp),
            (Method::Get, "/notice/win") => {
                bump(&self.shard.metrics.win_notices, 1);
                resp.status(204);
            }
            (Method::Get, "/notice/billing") => {
                bump(&self.shard.metrics.billing_notices, 1);
                resp.status(204);
            }
            (_, "/openrtb2/auction") => method_not_allowed(resp, "POST"),
            (
                _,
                "/health" | "/metrics" | "/stats" | "/dashboard" | "/notice/win"
                | "/notice/billing",
            ) => method_not_allowed(resp, "GET"),
            _ => {
                resp.status(404)
                    .header("content-type", "text/plain")
                    .body(b"not found\n");
            }
        }
    }
}

/// The live per-core dashboard: one static page (no external assets) that polls `/stats`.
const DASHBOARD_HTML: &str = include_str!("dashboard.html");

fn dashboard(resp: &mut Response) {
    resp.status(200)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(DASHBOARD_HTML.as_bytes());
}

fn method_not_allowed(resp: &mut Response, allow: &str) {
    resp.status(405)
        .header("allow", allow)
        .header("content-type", "text/plain")
        .body(b"method not allowed\n");
}

/// Whether a Content-Type header value names JSON (`application/json`, optional parameters).
pub fn is_json_content_type(value: &[u8]) -> bool {
    let essence = value.split(|&b| b == b';').next().unwrap_or(b"");
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
}

impl Front {
    async fn auction(&self, req: &Request<'_>, resp: &mut Response) {
        let received = Instant::now();
        let m = &self.shard.metrics;
        if let Some(ct) = req.content_type()
            && !is_json_content_type(ct)
        {
            m.outcome(Outcome::UnsupportedMedia);
            let msg = format!(
                "unsupported content type {:?}: send application/json",
                String::from_utf8_lossy(ct)
            );
            respond::invalid(resp, 415, "", &msg);
            return;
        }
        let parsed = net::openrtb::parse_bid_request(req.body);
        let t_parsed = Instant::now();
        m.record(Stage::Parse, t_parsed - received);
        let bid_request = match parsed {
            Ok(r) => r,
            Err(e) => {
                m.outcome(Outcome::Invalid);
                respond::invalid(resp, 400, "", &e.to_string());
                return;
            }
        };
        let limits = self.shard.shared.config.validation_limits();
        if let Err(e) = net::openrtb::validate_bid_request(&bid_request, &limits) {
            m.outcome(Outcome::Invalid);
            respond::invalid(resp, 400, &bid_request.id, &e.to_string());
            return;
        }
        let t_valid = Instant::now();
        m.record(Stage::Validate, t_valid - t_parsed);
        let tmax_default = self.shard.shared.config.openrtb.tmax_ms_default;
        let now_s = intake::now_unix_s();
        let mut job = intake::job_from_request(&bid_request, received, now_s, tmax_default);
        let collected = self.collect_external(&bid_request, &job).await;
        let bars = external_bars(collected.as_ref(), job.slots.len());
        raise_floors(&mut job, &bars);
        let result = self
            .auction_on_owner(job, || {
                let mut j = intake::job_from_request(&bid_request, received, now_s, tmax_default);
                raise_floors(&mut j, &bars);
                j
            })
            .await;
        let external = match (&collected, &result) {
            (Some(c), Some(r)) => self.settle_external(&bid_request, c, r),
            _ => Vec::new(),
        };
        let t_respond = Instant::now();
        let outcome = match &result {
            Some(r) => respond::auction(resp, &self.shard.shared, &bid_request, r, &external, m),
            None => {
                respond::unavailable(resp);
                Outcome::Error
            }
        };
        m.outcome(outcome);
        let done = Instant::now();
        m.record(Stage::Respond, done - t_respond);
        m.record(Stage::Total, done - received);
    }

    /// RTB fan-out on this shard (see `rtb` module docs for why here and not on the owner).
    async fn collect_external(&self, req: &BidRequest, job: &AuctionJob) -> Option<Collected> {
        let rtb = &self.shard.rtb;
        if !rtb.enabled() {
            return None;
        }
        let formats = job.slots.iter().fold(0u8, |m, s| m | s.formats_mask);
        rtb.collect(
            req,
            job.received,
            job.tmax_ms,
            formats,
            &job.ctx.country,
            &job.ctx.region,
        )
        .await
    }

    /// Which slots external bids won: those where no paid internal ad beat them.
    fn settle_external(
        &self,
        req: &BidRequest,
        collected: &Collected,
        result: &AuctionResult,
    ) -> Vec<ExternalWin> {
        let mut internal_paid = vec![None; req.imp.len()];
        for w in result.wins.iter().filter(|w| !w.house) {
            internal_paid[w.slot] = Some(w.price_cpm_micros);
        }
        self.shard.rtb.settle(req, collected, &internal_paid)
    }

    /// Runs the job on the shard owning the user: here, or one hop away. A full ring means the
    /// owner is overloaded: the request is served here instead (counted), rather than queued.
    async fn auction_on_owner(
        &self,
        job: AuctionJob,
        rebuild: impl FnOnce() -> AuctionJob,
    ) -> Option<AuctionResult> {
        let me = self.ctx.id().0;
        let owner = intake::owner_shard(job.user_key, self.ctx.count());
        if owner == me {
            return Some(self.shard.auction_here(&job));
        }
        let m = &self.shard.metrics;
        bump(&m.hops_out, 1);
        let sent = Instant::now();
        let reply = self
            .ctx
            .invoke_on(ShardId(owner), Msg::Auction(Box::new(job)))
            .await;
        m.record(Stage::Hop, sent.elapsed());
        match reply {
            Ok(Reply::Auction(r)) => Some(r),
            Ok(_) => None,
            Err(MeshError::RingFull { .. }) => {
                bump(&m.hop_fallback_local, 1);
                Some(self.shard.auction_here(&rebuild()))
            }
            Err(_) => None,
        }
    }

    fn health(&self, resp: &mut Response) {
        let body = format!(
            "{{\"status\":\"ok\",\"shard\":{},\"shards\":{},\"driver\":\"{}\"}}",
            self.ctx.id().0,
            self.ctx.count(),
            self.ctx.driver()
        );
        resp.status(200)
            .header("content-type", "application/json")
            .body(body.as_bytes());
    }

    async fn snapshots(&self) -> Vec<ShardSnapshot> {
        let replies = self.ctx.invoke_on_all(|_| Msg::Snapshot).await;
        replies
            .into_iter()
            .filter_map(|r| match r {
                Ok(Reply::Snapshot(s)) => Some(*s),
                _ => None,
            })
            .collect()
    }

    async fn metrics(&self, resp: &mut Response) {
        let snaps = self.snapshots().await;
        let text = exposition::prometheus(&snaps, &self.shard.shared.catalog);
        resp.status(200)
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(text.as_bytes());
    }

    async fn stats(&self, resp: &mut Response) {
        let snaps = self.snapshots().await;
        let json = exposition::stats_json(&snaps, &self.shard.shared.catalog);
        resp.status(200)
            .header("content-type", "application/json")
            .body(json.as_bytes());
    }
}

/// The best valid external price per slot (0 = none): the bar an internal ad must beat.
fn external_bars(collected: Option<&Collected>, slots: usize) -> Vec<u64> {
    let Some(c) = collected else {
        return Vec::new();
    };
    c.best_per_slot(slots)
        .into_iter()
        .map(|b| b.map_or(0, |i| c.bids[i].bid.price_cpm_micros))
        .collect()
}

/// Unified first-price auction, internal side: an internal ad wins a slot only by paying more
/// than the best external bid, so its floor becomes that bid + 1 micro; budget is then charged
/// only for internal wins (`auction.rs`).
fn raise_floors(job: &mut AuctionJob, bars: &[u64]) {
    for (slot, &bar) in job.slots.iter_mut().zip(bars) {
        if bar > 0 {
            slot.floor_cpm_micros = slot.floor_cpm_micros.max(bar.saturating_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type(b"application/json"));
        assert!(is_json_content_type(b"Application/JSON; charset=utf-8"));
        assert!(!is_json_content_type(b"text/plain"));
        assert!(!is_json_content_type(b"application/jsonx"));
    }
}
