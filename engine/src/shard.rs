//! One engine shard: the HTTP front (routes), the hop to the user's owner shard, and the owner's
//! side that runs the auction on its own sub-ledger.
//!
//! Owns: per-shard state (sub-ledger, scratch buffers, metrics, HTTP counters) and the message
//! types shards exchange. Every piece of state here belongs to exactly one shard; only the
//! immutable [`Shared`] snapshot (config, catalog) is shared, behind an `Arc`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::http::{Handler, HttpStats, Method, Request, Response, Shutdown};
use net::openrtb::BidRequest;
use shards::{MeshError, MeshStats, Service, ShardCtx, ShardId};

use crate::auction::{AuctionResult, Scratch, run_auction};
use crate::budget::durable::{WalHandle, WalStats};
use crate::budget::pacing::PaceLine;
use crate::budget::{Allocator, LedgerRecord, LocalCounters, allocator as alloc};
use crate::catalog::Catalog;
use crate::clock;
use crate::config::Config;
use crate::degradation::{Controller as Degradation, DegradationSnapshot};
use crate::intake::{self, AuctionJob};
use crate::integrity::Integrity;
use crate::learning::{self, Click, Learning};
use crate::ledger::{BudgetSetup, SpendLine, SubLedger};
use crate::metrics::{MetricsSnapshot, Outcome, ShardMetrics, Stage, bump};
use crate::model_store::ServingModel;
use crate::profile::UsersFile;
use crate::request_pool::RequestPool;
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
    /// The model every shard serves at start.
    pub model: Arc<ServingModel>,
    /// The users file, read once at start; each shard copies its own users, then it is dropped.
    pub users: std::sync::Mutex<Option<Arc<UsersFile>>>,
    /// Bumped by SIGHUP; shard 0 watches it and reloads the model.
    pub reload_requests: std::sync::atomic::AtomicU64,
    /// External DSPs (empty: RTB off).
    pub registry: Arc<Registry>,
    /// Liveness stamps for the systemd watchdog (one slot per shard, written by its shard only).
    pub heartbeats: Arc<Heartbeats>,
    /// Per shard: budget warm (first grants in), for `READY=1` and `/ready`.
    pub readiness: Arc<crate::supervise::Readiness>,
    /// The budget logs, recovered before the shards start; each shard takes its part.
    pub budget_boot: crate::ledger::DurableBoot,
}

/// Messages between shards.
pub enum Msg {
    /// Run the auction for a user this shard owns.
    Auction(Box<AuctionJob>),
    /// Send a copy of your metrics (for /metrics and /stats).
    Snapshot,
    /// Count a click of a user this shard owns.
    Click(Click),
    /// Serve this model from the next request on.
    SwapModel(Arc<ServingModel>),
    /// To the allocator (shard 0): refill, return, register, heartbeat.
    Budget(alloc::Request),
    /// Send your DSP health window totals (shard 0 merges them).
    RtbWindow,
    /// Use this DSP health table from now on.
    RtbHealth(Arc<HealthTable>),
}

pub enum Reply {
    Auction(AuctionResult),
    Snapshot(Box<ShardSnapshot>),
    Done,
    Budget(alloc::Reply),
    RtbWindow(Vec<DspTotals>),
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
    pub model_version: String,
    pub profiles: usize,
    pub profiles_dropped: u64,
    /// Pacing gauges, indexed like `spend`.
    pub pacing: Vec<PaceLine>,
    /// Spend records this shard produced for the ledger.
    pub spend_records: u64,
    /// This shard's budget logs (none when the budget is in memory only).
    pub wal: Vec<(String, WalStats)>,
    pub rtb: RtbSnapshot,
    pub degradation: DegradationSnapshot,
}

/// Where an orderly stop is: the budget task returns its chunks after the HTTP drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopStage {
    Serving,
    Drained,
    BudgetStopped,
}

pub struct EngineShard {
    shared: Arc<Shared>,
    ledger: RefCell<SubLedger>,
    /// The host's budget allocator: on shard 0 only.
    allocator: RefCell<Option<Allocator<LocalCounters>>>,
    /// When the allocator's stale check last ran (`ledger::now_ms`).
    allocator_ticked_ms: Cell<i64>,
    /// The allocator's log (shard 0) and this shard's spend log; `None`: in memory only.
    alloc_wal: Option<WalHandle>,
    spend_wal: Option<WalHandle>,
    stop_stage: Cell<StopStage>,
    scratch: RefCell<Scratch>,
    /// Parsed-request objects reused by the auction path.
    requests: RequestPool,
    metrics: ShardMetrics,
    http_stats: Rc<HttpStats>,
    listener: RefCell<Option<monoio::net::TcpListener>>,
    learning: Learning,
    rtb: ShardRtb,
    integrity: Integrity,
    degradation: Degradation,
}

impl EngineShard {
    /// Builds the shard's state and binds its listening socket (SO_REUSEPORT).
    pub fn new(shared: Arc<Shared>, ctx: &ShardCtx<EngineShard>) -> std::io::Result<EngineShard> {
        let listener = net::http::bind_reuseport(shared.config.server.listen)?;
        let users = shared.users.lock().ok().and_then(|u| u.clone());
        let learning = Learning::new(
            &shared.config,
            &shared.catalog,
            shared.model.clone(),
            users.as_deref(),
            ctx.id().0,
            ctx.count(),
        );
        let setup = BudgetSetup::new(&shared.config, &shared.catalog, ctx.count())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let now = crate::ledger::now_ms();
        let (allocator, alloc_wal, ledger, spend_wal) = match shared.budget_boot.take(ctx.id().0) {
            Some(d) => {
                let (a, aw) = d.allocator.unzip();
                let ledger = SubLedger::recovered(Arc::new(setup), ctx.id().0, d.spend.0);
                (a, aw, ledger, Some(d.spend.1))
            }
            None => {
                let a = (ctx.id().0 == 0).then(|| setup.new_allocator(now));
                (
                    a,
                    None,
                    SubLedger::connected(Arc::new(setup), ctx.id().0, now),
                    None,
                )
            }
        };
        let rtb = ShardRtb::new(
            shared.registry.clone(),
            &shared.config.rtb,
            shared.config.auction.reserve_cpm_micros,
            ctx.count(),
        );
        Ok(EngineShard {
            learning,
            rtb,
            integrity: Integrity::new(&shared.config.integrity),
            degradation: Degradation::new(&shared.config.degradation),
            shared,
            ledger: RefCell::new(ledger),
            allocator: RefCell::new(allocator),
            allocator_ticked_ms: Cell::new(i64::MIN / 2),
            alloc_wal,
            spend_wal,
            stop_stage: Cell::new(StopStage::Serving),
            scratch: RefCell::new(Scratch::default()),
            requests: RequestPool::default(),
            metrics: ShardMetrics::default(),
            http_stats: Rc::new(HttpStats::default()),
            listener: RefCell::new(Some(listener)),
        })
    }

    /// Runs the auction here, on this shard's ledger, as this shard's degradation level allows.
    fn auction_here(&self, job: &AuctionJob) -> AuctionResult {
        let cfg = &self.shared.config;
        let act = self.degradation.actions();
        let result =
            self.learning
                .with_scoring(cfg, job.user_key, &self.metrics, act.prior_only, |ml| {
                    let mut scratch = self.scratch.borrow_mut();
                    scratch.candidates_cap = act.candidates_max.unwrap_or(0);
                    run_auction(
                        job,
                        &self.shared.catalog,
                        &mut self.ledger.borrow_mut(),
                        &cfg.auction,
                        &mut scratch,
                        &self.metrics,
                        ml,
                    )
                });
        self.learning
            .record_wins(job.user_key, &result, &self.metrics);
        result
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
            model_version: self.learning.model_version(),
            profiles: self.learning.profiles_len(),
            profiles_dropped: self.learning.profiles_dropped(),
            pacing: (0..ledger.len()).map(|i| ledger.pace(i)).collect(),
            spend_records: ledger.spend_records(),
            wal: [&self.alloc_wal, &self.spend_wal]
                .into_iter()
                .flatten()
                .map(|w| (w.name().to_string(), w.stats()))
                .collect(),
            rtb: self.rtb.snapshot(),
            degradation: self.degradation.snapshot(),
        }
    }

    /// The allocator's side of a budget message (runs on shard 0). Its ledger records are
    /// committed to the allocator's log before the reply leaves (write-ahead: a grant is durable
    /// before it can be spent); requests arriving meanwhile are grouped into the next commit.
    async fn allocator_request(&self, req: alloc::Request) -> alloc::Reply {
        let mut records = Vec::new();
        let reply = {
            let mut guard = self.allocator.borrow_mut();
            let Some(a) = guard.as_mut() else {
                return alloc::Reply::Fenced { epoch: u32::MAX };
            };
            a.on_request(crate::ledger::now_ms(), req, &mut records)
        };
        self.commit_allocator(records).await;
        reply
    }

    /// Writes allocator records (if any) and waits until they are durable.
    async fn commit_allocator(&self, records: Vec<LedgerRecord>) {
        let Some(w) = &self.alloc_wal else { return };
        if records.is_empty() {
            return;
        }
        w.queue(records);
        w.commit().await;
        w.compact_if_due(|| {
            let guard = self.allocator.borrow();
            let a = guard
                .as_ref()
                .expect("the allocator lives on the shard with its log");
            crate::budget::durable::encode_allocator_snapshot(a.state(), a.source())
        })
        .await;
    }

    /// Moves this shard's spend records to its spend log and waits until they are durable.
    async fn commit_spend(&self) {
        self.ledger
            .borrow_mut()
            .drain_journal(self.spend_wal.as_ref());
        let Some(w) = &self.spend_wal else { return };
        w.commit().await;
        w.compact_if_due(|| {
            let mut l = self.ledger.borrow_mut();
            l.drain_journal(Some(w));
            l.snapshot()
        })
        .await;
    }

    /// One exchange with the allocator: what the sub-ledger wants sent, and the replies.
    async fn budget_round(&self, ctx: &ShardCtx<Self>, out: &mut Vec<alloc::Request>) {
        let now = crate::ledger::now_ms();
        {
            let mut l = self.ledger.borrow_mut();
            l.poll(now, out);
            l.update_pacing(now);
        }
        self.commit_spend().await;
        self.exchange(ctx, out).await;
        if self.ledger.borrow().is_warm() {
            self.shared.readiness.mark_warm(ctx.id().0);
        }
        if self.allocator_tick_due(now) {
            let mut records = Vec::new();
            if let Some(a) = self.allocator.borrow_mut().as_mut() {
                a.tick(now, &mut records);
            }
            self.commit_allocator(records).await;
        }
    }

    /// Whether the allocator's stale check runs this round: once per `budget.heartbeat_ms`, not
    /// every `poll_ms` round. It walks every lot of every campaign, and what it looks for (a
    /// shard silent for `stale_timeout_ms`, at least two heartbeats; a day ended that long ago)
    /// is not urgent to the millisecond: it fires at most a heartbeat late.
    fn allocator_tick_due(&self, now_ms: i64) -> bool {
        let every = self.shared.config.budget.heartbeat_ms as i64;
        let due = now_ms - self.allocator_ticked_ms.get() >= every;
        if due {
            self.allocator_ticked_ms.set(now_ms);
        }
        due
    }

    /// Sends `out` to the allocator and applies the replies.
    async fn exchange(&self, ctx: &ShardCtx<Self>, out: &mut Vec<alloc::Request>) {
        for req in out.drain(..) {
            let reply = ctx.invoke_on(ShardId(0), Msg::Budget(req)).await;
            if let Ok(Reply::Budget(r)) = reply {
                self.ledger
                    .borrow_mut()
                    .on_reply(crate::ledger::now_ms(), r);
            }
        }
    }

    /// Orderly stop, after the HTTP drain: commit the last spend records, return every unspent
    /// lot (twice: a grant still travelling during the first pass is returned by the second);
    /// the allocator commits the Returns before it answers.
    async fn stop_budget(&self, ctx: &ShardCtx<Self>) {
        let mut out = Vec::new();
        for _ in 0..2 {
            {
                let mut l = self.ledger.borrow_mut();
                l.return_all();
                l.take_returns(&mut out);
            }
            self.exchange(ctx, &mut out).await;
        }
        self.commit_spend().await;
    }

    /// The shard's budget task: every `poll_ms`, send refills/returns/heartbeats to the
    /// allocator (never on the auction's path), hand spend records on, update pacing; on shard 0
    /// also run the allocator's stale-allocation check. While a round leaves nothing to do (no
    /// spend, no refill wanted) the next one waits up to [`Config::budget_quiet_period`] instead,
    /// and the first charge wakes it: an idle or no-bid shard is not woken 200 times a second.
    /// Rounds go on while in-flight auctions drain; then this task (so no round of its own is
    /// still waiting for a grant) does the orderly stop.
    async fn budget_loop(self: Rc<Self>, ctx: ShardCtx<Self>) {
        let busy = Duration::from_millis(self.shared.config.budget.poll_ms);
        let quiet = self.shared.config.budget_quiet_period();
        let mut out = Vec::new();
        while self.stop_stage.get() == StopStage::Serving {
            self.budget_round(&ctx, &mut out).await;
            if self.ledger.borrow().has_work() {
                monoio::time::sleep(busy).await;
            } else {
                self.wait_for_budget_work(quiet).await;
            }
        }
        self.stop_budget(&ctx).await;
        self.stop_stage.set(StopStage::BudgetStopped);
    }

    /// Waits until a charge leaves the budget round work, the stop begins, or `period` passes.
    async fn wait_for_budget_work(&self, period: Duration) {
        let work = std::future::poll_fn(|cx| {
            if self.stop_stage.get() != StopStage::Serving {
                return std::task::Poll::Ready(());
            }
            self.ledger.borrow_mut().poll_work(cx)
        });
        monoio::select! {
            _ = monoio::time::sleep(period) => {}
            _ = work => {}
        }
        // A timer expiry leaves the waker behind: no charge should wake a round already running.
        self.ledger.borrow_mut().forget_round_waiter();
    }
}

/// The shard's degradation controller: closes one measurement interval per tick.
async fn degradation_loop(shard: Rc<EngineShard>, ctx: ShardCtx<EngineShard>) {
    let period = shard.degradation.interval();
    while !ctx.is_stopping() {
        monoio::time::sleep(period).await;
        shard
            .degradation
            .tick(shard.metrics.hop_fallback_local.get());
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
        // Register and take first chunks before serving, so the first requests find budget.
        let mut out = Vec::new();
        for _ in 0..2 {
            self.budget_round(&ctx, &mut out).await;
        }
        monoio::spawn(self.clone().budget_loop(ctx.clone()));
        if self.degradation.automatic() {
            monoio::spawn(degradation_loop(self.clone(), ctx.clone()));
        }
        let front = Rc::new(Front {
            ctx: ctx.clone(),
            shard: self.clone(),
        });
        if ctx.id().0 == 0 {
            monoio::spawn(watch_sighup(front.clone()));
        }
        let limits = self.shared.config.http_limits();
        net::http::serve(listener, front, limits, shutdown, self.http_stats.clone()).await;
        self.stop_stage.set(StopStage::Drained);
        self.ledger.borrow_mut().wake_round();
        while self.stop_stage.get() != StopStage::BudgetStopped {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn handle(self: Rc<Self>, ctx: ShardCtx<Self>, _from: ShardId, msg: Msg) -> Reply {
        match msg {
            Msg::Auction(job) => {
                bump(&self.metrics.hops_in, 1);
                Reply::Auction(self.auction_here(&job))
            }
            Msg::Snapshot => Reply::Snapshot(Box::new(self.snapshot(&ctx))),
            Msg::Click(c) => {
                self.learning.record_click(c, &self.metrics);
                Reply::Done
            }
            Msg::SwapModel(m) => {
                self.learning.swap_model(m);
                Reply::Done
            }
            Msg::Budget(req) => Reply::Budget(self.allocator_request(req).await),
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
            (Method::Get, "/ready") => self.ready(resp),
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
            (Method::Get, "/notice/click") => self.click(req, resp).await,
            (Method::Post, "/admin/model/reload") => self.reload(req.body, resp).await,
            (_, "/openrtb2/auction" | "/admin/model/reload") => method_not_allowed(resp, "POST"),
            (
                _,
                "/health" | "/ready" | "/metrics" | "/stats" | "/dashboard" | "/notice/win"
                | "/notice/billing" | "/notice/click",
            ) => method_not_allowed(resp, "GET"),
            _ => {
                resp.status(404)
                    .header("content-type", "text/plain")
                    .body(b"not found\n");
            }
        }
    }
}

fn plain(resp: &mut Response, status: u16, text: &str) {
    resp.status(status)
        .header("content-type", "text/plain")
        .body(text.as_bytes());
}

/// On shard 0: reloads the configured model whenever SIGHUP bumped `reload_requests`.
async fn watch_sighup(front: Rc<Front>) {
    use std::sync::atomic::Ordering;
    let shared = front.shard.shared.clone();
    let mut seen = shared.reload_requests.load(Ordering::Relaxed);
    while !front.ctx.is_stopping() {
        monoio::time::sleep(Duration::from_millis(200)).await;
        let now = shared.reload_requests.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            let (status, text) = front.reload_from(shared.config.model.path.clone()).await;
            tracing::info!(status, "SIGHUP model reload: {}", text.trim_end());
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
    if value == b"application/json" {
        return true; // what nearly every exchange sends
    }
    let essence = value.split(|&b| b == b';').next().unwrap_or(b"");
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/json")
}

impl Front {
    async fn auction(&self, req: &Request<'_>, resp: &mut Response) {
        let received = clock::now();
        let _in_flight = self.shard.degradation.enter();
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
        let mut bid_request = self.shard.requests.lend();
        let parsed = net::openrtb::parse_bid_request_reusing(req.body, &mut bid_request);
        let t_parsed = clock::now();
        m.record(Stage::Parse, t_parsed - received);
        if let Err(e) = parsed {
            m.outcome(Outcome::Invalid);
            respond::invalid(resp, 400, "", &e.to_string());
            return;
        }
        let limits = self.shard.shared.config.validation_limits();
        if let Err(e) = net::openrtb::validate_bid_request(&bid_request, &limits) {
            m.outcome(Outcome::Invalid);
            respond::invalid(resp, 400, &bid_request.id, &e.to_string());
            return;
        }
        let t_valid = clock::now();
        m.record(Stage::Validate, t_valid - t_parsed);
        if self.screened_out(&bid_request, resp, received, t_valid) {
            return;
        }
        let tmax_default = self.shard.shared.config.openrtb.tmax_ms_default;
        let now_s = intake::now_unix_s();
        let mut job = intake::job_from_request(&bid_request, received, now_s, tmax_default);
        let (collected, rtb_wait) = self.collect_external(&bid_request, &job).await;
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
        let t_respond = clock::now();
        let outcome = match &result {
            Some(r) => respond::auction(resp, &self.shard.shared, &bid_request, r, &external, m),
            None => {
                respond::unavailable(resp);
                Outcome::Error
            }
        };
        m.outcome(outcome);
        let done = clock::now();
        m.record(Stage::Respond, done - t_respond);
        m.record(Stage::Total, done - received);
        // The DSP wait has its own cutoffs; the ladder judges the shard's own work and queues.
        let own = (done - received).saturating_sub(rtb_wait);
        self.shard.degradation.finish(own);
    }

    /// Fraud tier 1: a flagged request is counted per rule and, when the action is "nobid",
    /// answered 204 `invalid_traffic` here (true), before any DSP call or hop.
    fn screened_out(
        &self,
        req: &BidRequest,
        resp: &mut Response,
        received: clock::Instant,
        start: clock::Instant,
    ) -> bool {
        let (integrity, m) = (&self.shard.integrity, &self.shard.metrics);
        if !integrity.enabled() {
            return false;
        }
        let flagged = integrity.check(req);
        let done = clock::now();
        m.record(Stage::Integrity, done - start);
        let Some(rule) = flagged else {
            return false;
        };
        m.integrity_flagged(rule);
        if !integrity.blocks() {
            return false;
        }
        m.nobid(crate::metrics::NoBidReason::InvalidTraffic);
        m.outcome(Outcome::NoBid);
        respond::invalid_traffic(resp, rule);
        m.record(Stage::Total, done - received);
        self.shard.degradation.finish(done - received);
        true
    }

    /// RTB fan-out on this shard (see `rtb` module docs for why here and not on the owner), as
    /// the shard's degradation level allows; also returns how long it took.
    async fn collect_external(
        &self,
        req: &BidRequest,
        job: &AuctionJob,
    ) -> (Option<Collected>, Duration) {
        let rtb = &self.shard.rtb;
        let act = self.shard.degradation.actions();
        if !rtb.enabled() || !act.rtb {
            return (None, Duration::ZERO);
        }
        rtb.set_tier_max(act.dsp_tier_max);
        let formats = job.slots.iter().fold(0u8, |m, s| m | s.formats_mask);
        let started = clock::now();
        let collected = rtb
            .collect(
                req,
                clock::to_std(job.received),
                job.tmax_ms,
                formats,
                &job.ctx.country,
                &job.ctx.region,
            )
            .await;
        let took = started.elapsed();
        self.shard.metrics.record(Stage::Rtb, took);
        (collected, took)
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
        let sent = clock::now();
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

    /// `GET /notice/click?user=..&campaign=..`: counted on the user's owner shard.
    async fn click(&self, req: &Request<'_>, resp: &mut Response) {
        let click = match self.shard.learning.parse_click(req.query) {
            Ok(c) => c,
            Err(e) => return plain(resp, 400, &e),
        };
        let owner = intake::owner_shard(click.user_key, self.ctx.count());
        if owner == self.ctx.id().0 {
            self.shard.learning.record_click(click, &self.shard.metrics);
            resp.status(204);
            return;
        }
        match self.ctx.invoke_on(ShardId(owner), Msg::Click(click)).await {
            Ok(_) => {
                resp.status(204);
            }
            Err(e) => plain(resp, 503, &format!("owner shard {owner} unavailable: {e}")),
        }
    }

    /// `POST /admin/model/reload` (body: optional model path): load and check off the shard
    /// threads, then swap on every shard. A bad file leaves the old model serving.
    async fn reload(&self, body: &[u8], resp: &mut Response) {
        let cfg = &self.shard.shared.config.model;
        let path = match learning::reload_path(body, &cfg.path) {
            Ok(p) => p,
            Err(e) => return plain(resp, 400, &e),
        };
        let (status, text) = self.reload_from(path).await;
        plain(resp, status, &text);
    }

    /// The reload procedure shared by the admin route and SIGHUP: (status, message).
    async fn reload_from(&self, path: std::path::PathBuf) -> (u16, String) {
        let l = &self.shard.learning;
        let m = &self.shard.metrics.ml;
        if l.reloading.replace(true) {
            return (409, "a reload is already running".into());
        }
        // Cleared however this future ends (completed or dropped with its connection).
        let _running = learning::ReloadGuard(&l.reloading);
        let timeout = Duration::from_millis(self.shard.shared.config.model.reload_timeout_ms);
        let model = match learning::load_off_shard(path, timeout).await {
            Ok(model) => model,
            Err(e) => {
                bump(&m.model_load_failures, 1);
                tracing::warn!(error = %e, "model refused; the previous model keeps serving");
                return (
                    422,
                    format!("model refused, previous model still serving: {e}"),
                );
            }
        };
        let replies = self
            .ctx
            .invoke_on_all(|_| Msg::SwapModel(model.clone()))
            .await;
        let failed: Vec<usize> = replies
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            bump(&m.model_load_failures, 1);
            return (
                503,
                format!("model {} not swapped on shards {failed:?}", model.version),
            );
        }
        bump(&m.model_loads, 1);
        tracing::info!(version = %model.version, source = %model.source, "model swapped on every shard");
        (
            200,
            format!("model {} serving on every shard\n", model.version),
        )
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

    /// Readiness for a load balancer: 200 once every shard's budget is warm (its first grants
    /// arrived), else 503 naming the shards still waiting, or 503 `draining` once a stop began.
    /// `/health` is liveness only.
    fn ready(&self, resp: &mut Response) {
        let readiness = &self.shard.shared.readiness;
        let pending = readiness.pending();
        let (status, body) = if readiness.is_draining() {
            (503, "{\"status\":\"draining\"}".to_string())
        } else if pending.is_empty() {
            (200, "{\"status\":\"ready\"}".to_string())
        } else {
            (
                503,
                format!(
                    "{{\"status\":\"warming\",\"reason\":\"waiting for the first budget grants\",\"shards\":{pending:?}}}"
                ),
            )
        };
        resp.status(status)
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
