//! The engine side of a shard's budget: the pure [`budget::SubLedger`](crate::budget::SubLedger)
//! plus pacing, the wall clock and the idempotency key of an impression.
//!
//! The auction calls [`SubLedger::try_charge`] (check-and-deduct on this shard's chunks, after the
//! pacing draw); the shard's budget task (`shard.rs`) calls [`SubLedger::poll`] /
//! [`SubLedger::on_reply`] to exchange refills, returns and heartbeats with the allocator on
//! shard 0, and [`SubLedger::update_pacing`]. [`SubLedger::standalone`] embeds its own allocator
//! and answers refills at once (tests and single-threaded tools).
//!
//! Owns: the shard's sub-ledger and pacer. Must not know: HTTP, the mesh.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::budget::allocator::{Allocator, AllocatorConfig, Reply, Request};
use crate::budget::calendar::{Calendar, UnknownZone};
use crate::budget::durable::{self, AllocatorInputs, DurableError, WalHandle};
use crate::budget::pacing::{PaceLine, Pacer, PacingConfig};
use crate::budget::source::{Budget, LocalCounters, Sizing};
use crate::budget::subledger::{self, SubLedgerConfig};
use crate::catalog::Catalog;
use crate::config::Config;

pub use crate::budget::subledger::{Refusal, SpendLine};

/// Everything immutable the budget needs, built once from config and catalog.
#[derive(Debug, Clone)]
pub struct BudgetSetup {
    pub calendar: Arc<Calendar>,
    pub budgets: Vec<Budget>,
    pub allocator: AllocatorConfig,
    pub subledger: SubLedgerConfig,
    pub pacing: PacingConfig,
    pub shards: usize,
}

impl BudgetSetup {
    pub fn new(config: &Config, catalog: &Catalog, shards: usize) -> Result<Self, UnknownZone> {
        let b = &config.budget;
        let zone = |adv: u32| {
            catalog
                .advertisers
                .iter()
                .find(|a| a.id == adv)
                .map_or("UTC", |a| a.timezone.as_str())
        };
        let calendar = Calendar::from_names(
            catalog
                .campaigns
                .iter()
                .map(|c| (c.spec.id, zone(c.spec.advertiser_id))),
        )?;
        let budgets = catalog
            .campaigns
            .iter()
            .map(|c| Budget {
                daily_micros: c.spec.budget_daily_micros,
                lifetime_micros: c.spec.budget_lifetime_micros,
            })
            .collect();
        let sizing = Sizing {
            bound_ppm: b.bound_ppm,
            chunk_ppm: b.chunk_ppm,
            chunk_micros_min: b.chunk_micros_min,
            shrink_below_ppm: b.shrink_below_ppm,
            shrink_divisor: b.shrink_divisor,
            shards: shards as u64,
        };
        Ok(BudgetSetup {
            calendar: Arc::new(calendar),
            budgets,
            allocator: AllocatorConfig {
                sizing,
                stale_timeout_ms: b.stale_timeout_ms as i64,
                dead_zone_ms: b.dead_zone_ms as i64,
            },
            subledger: SubLedgerConfig {
                shard: 0,
                low_water_ppm: b.low_water_ppm,
                refill_timeout_ms: b.refill_timeout_ms as i64,
                refill_retry_ms: b.refill_retry_ms as i64,
                heartbeat_ms: b.heartbeat_ms as i64,
                keys_max: b.keys_max,
                journal_max: b.journal_max,
            },
            pacing: PacingConfig {
                curve: config
                    .pacing_curve()
                    .unwrap_or(crate::budget::pacing::Curve::Even),
                update_ms: b.pacing_update_ms as i64,
                gain: b.pacing_gain,
                throttle_max: b.throttle_max,
            },
            shards,
        })
    }

    /// The host's allocator (embedded source), for shard 0.
    pub fn new_allocator(&self, now_ms: i64) -> Allocator<LocalCounters> {
        Allocator::new(
            LocalCounters::default(),
            self.budgets.clone(),
            self.calendar.clone(),
            self.allocator,
            now_ms,
        )
    }
}

/// What one shard takes from the recovered logs at start.
pub struct ShardDurable {
    /// Shard 0: the recovered allocator and its log.
    pub allocator: Option<(Allocator<LocalCounters>, WalHandle)>,
    /// The shard's sub-ledger rebuilt from its spend log, and the log.
    pub spend: (subledger::SubLedger, WalHandle),
}

/// The budget logs opened and replayed before the shards start (on the main thread, so a
/// corrupt log stops the start with an error naming the file). Each shard takes its part.
#[derive(Default)]
pub struct DurableBoot {
    slots: std::sync::Mutex<Vec<Option<ShardDurable>>>,
    /// Held for the life of the process: no second process writes the same logs.
    _lock: Option<std::fs::File>,
}

impl DurableBoot {
    /// Shard `shard`'s recovered state and logs (`None`: in memory only).
    pub fn take(&self, shard: usize) -> Option<ShardDurable> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.get_mut(shard).and_then(Option::take)
    }
}

impl BudgetSetup {
    fn allocator_inputs(&self) -> AllocatorInputs {
        AllocatorInputs {
            budgets: self.budgets.clone(),
            calendar: self.calendar.clone(),
            cfg: self.allocator,
        }
    }

    /// Opens and replays every budget log in `dir` (creating it): the allocator's (reclaiming
    /// every lot outstanding at the last stop or crash, durably) and one spend log per shard.
    /// Each log gets its writer thread.
    pub fn open_durable(
        &self,
        dir: &std::path::Path,
        compact_bytes: u64,
        now_ms: i64,
    ) -> Result<DurableBoot, DurableError> {
        let lock = durable::lock_dir(dir)?;
        let spawn_err = |path: &str| {
            let path = path.to_string();
            move |source| DurableError::Io { path, source }
        };
        let (storage, path) = durable::open_file(dir, durable::ALLOCATOR_WAL)?;
        let (alloc, wal, report) =
            durable::recover_allocator(storage, &path, self.allocator_inputs(), now_ms, true)?;
        log_recovery(&path, &report);
        let handle = WalHandle::spawn("allocator", wal, compact_bytes).map_err(spawn_err(&path))?;
        let mut allocator = Some((alloc, handle));
        let mut slots = Vec::with_capacity(self.shards);
        for shard in 0..self.shards {
            let (storage, path) = durable::open_file(dir, &durable::spend_wal_name(shard))?;
            let cfg = SubLedgerConfig {
                shard: shard as u16,
                ..self.subledger
            };
            let (core, wal, report) =
                durable::recover_spend(storage, &path, cfg, self.calendar.clone(), now_ms)?;
            log_recovery(&path, &report);
            let name = format!("spend-{shard}");
            let handle = WalHandle::spawn(&name, wal, compact_bytes).map_err(spawn_err(&path))?;
            slots.push(Some(ShardDurable {
                allocator: allocator.take(),
                spend: (core, handle),
            }));
        }
        Ok(DurableBoot {
            slots: std::sync::Mutex::new(slots),
            _lock: Some(lock),
        })
    }
}

fn log_recovery(path: &str, r: &durable::RecoveryReport) {
    if r.torn_tail_bytes > 0 {
        tracing::warn!(
            path,
            bytes = r.torn_tail_bytes,
            "budget WAL: torn tail (an unacknowledged write cut by a crash) truncated"
        );
    }
    tracing::info!(
        path,
        records = r.records,
        snapshot = r.snapshot,
        reclaimed_lots = r.reclaimed_lots,
        "budget WAL recovered"
    );
}

/// Unix time in milliseconds (the only clock read of the budget).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Unix time in milliseconds from the kernel's coarse clock (`CLOCK_REALTIME_COARSE`: the time
/// of the last tick, a few ms behind at most; ~6 ns to read against ~40 ns for [`now_ms`] on a
/// VM). The auction's budget clock, read once per request: the budget needs the local day and
/// timeouts of hundreds of ms, and a reading a tick behind is the same as a request that took a
/// tick longer (the allocator's dead zone around midnight covers both).
#[inline]
pub fn now_ms_coarse() -> i64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
            return ts.tv_sec * 1_000 + ts.tv_nsec / 1_000_000;
        }
    }
    now_ms()
}

/// Idempotency key of one impression: fixed-seed hash of request id and imp id.
pub fn impression_key(request_id: &str, imp_id: &str) -> u64 {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
    .hash_one(("imp", request_id, imp_id))
}

pub struct SubLedger {
    core: subledger::SubLedger,
    pacer: Pacer,
    setup: Arc<BudgetSetup>,
    /// Standalone mode: an embedded allocator answering at once.
    local: Option<Allocator<LocalCounters>>,
    out: Vec<Request>,
    records: Vec<crate::budget::LedgerRecord>,
    /// Spend records produced (handed to the ledger writer).
    spend_records: u64,
    /// The budget task, while it waits for work ([`SubLedger::poll_work`]); woken by the first
    /// charge that leaves the next round something to do.
    round_waiter: Option<Waker>,
}

impl SubLedger {
    /// Shard `shard`'s sub-ledger; its allocator runs elsewhere (shard 0), reached by messages.
    pub fn connected(setup: Arc<BudgetSetup>, shard: usize, now_ms: i64) -> SubLedger {
        let cfg = SubLedgerConfig {
            shard: shard as u16,
            ..setup.subledger
        };
        SubLedger {
            core: subledger::SubLedger::new(cfg, setup.calendar.clone(), now_ms),
            pacer: Pacer::new(setup.pacing.clone(), setup.budgets.len(), shard as u64 + 1),
            setup,
            local: None,
            out: Vec::new(),
            records: Vec::new(),
            spend_records: 0,
            round_waiter: None,
        }
    }

    /// Shard `shard`'s sub-ledger rebuilt from its spend log (see [`DurableBoot`]).
    pub fn recovered(setup: Arc<BudgetSetup>, shard: usize, core: subledger::SubLedger) -> Self {
        SubLedger {
            pacer: Pacer::new(setup.pacing.clone(), setup.budgets.len(), shard as u64 + 1),
            core,
            setup,
            local: None,
            out: Vec::new(),
            records: Vec::new(),
            spend_records: 0,
            round_waiter: None,
        }
    }

    /// Moves the spend records of the journal to the shard's spend log (or just counts them when
    /// the budget is in memory only).
    pub fn drain_journal(&mut self, wal: Option<&WalHandle>) {
        let n = match wal {
            Some(w) => {
                let before = w.queued();
                w.queue(self.core.journal());
                (w.queued() - before) as u64
            }
            None => self.core.journal().count() as u64,
        };
        self.spend_records += n;
    }

    /// Orderly stop: the returns queued by [`SubLedger::return_all`] (no refill, no heartbeat).
    pub fn take_returns(&mut self, out: &mut Vec<Request>) {
        self.core.take_returns(out);
    }

    /// The spend-log snapshot of this shard (drain the journal first).
    pub fn snapshot(&self) -> Vec<u8> {
        durable::encode_spend_snapshot(&self.core.image())
    }

    /// A one-shard sub-ledger with its own allocator (default `[budget]` settings, no pacing):
    /// refills are answered at once. For tests and tools.
    pub fn standalone(catalog: &Catalog) -> SubLedger {
        let mut config = Config::default();
        config.budget.pacing = "off".into();
        let setup = BudgetSetup::new(&config, catalog, 1).expect("catalog time zones are valid");
        let now = now_ms();
        let mut l = SubLedger::connected(Arc::new(setup), 0, now);
        l.local = Some(l.setup.new_allocator(now));
        l.pump(now);
        l
    }

    /// Check-and-deduct for one impression of `campaign` at `cost` micros. `now_ms` is the
    /// request's wall clock ([`now_ms`], read once per request, not per charge).
    #[inline(always)]
    pub fn try_charge(
        &mut self,
        now_ms: i64,
        campaign: usize,
        cost: u64,
        key: u64,
    ) -> Result<(), Refusal> {
        if !self.pacer.allow(campaign) {
            return Err(Refusal::Paced);
        }
        let r = self.core.try_charge(now_ms, campaign, cost, key);
        if r == Err(Refusal::Exhausted) && self.local.is_some() {
            return self.refill_and_retry(now_ms, campaign, cost, key);
        }
        if self.round_waiter.is_some() {
            self.wake_round_if_work();
        }
        r
    }

    /// Ready when a budget round has something to do ([`subledger::SubLedger::has_work`]: spend
    /// to log, a refill wanted, ...); else the task's waker is kept and the next charge that
    /// leaves work wakes it. The budget task waits on this (besides a timer) while quiet, so an
    /// idle shard is not woken every `poll_ms`.
    pub fn poll_work(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.core.has_work() {
            self.round_waiter = None;
            return Poll::Ready(());
        }
        match &mut self.round_waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The budget task stopped waiting ([`SubLedger::poll_work`]).
    pub fn forget_round_waiter(&mut self) {
        self.round_waiter = None;
    }

    /// Whether a budget round has work ([`subledger::SubLedger::has_work`]).
    pub fn has_work(&self) -> bool {
        self.core.has_work()
    }

    /// Wakes the waiting budget task, if any (it re-checks what it waits for).
    pub fn wake_round(&mut self) {
        if let Some(w) = self.round_waiter.take() {
            w.wake();
        }
    }

    /// Wakes the budget task once a charge left work for its round.
    #[cold]
    #[inline(never)]
    fn wake_round_if_work(&mut self) {
        if self.core.has_work() {
            self.wake_round();
        }
    }

    /// Standalone mode: the lot ran dry; the embedded allocator refills it at once.
    #[cold]
    #[inline(never)]
    fn refill_and_retry(
        &mut self,
        now_ms: i64,
        campaign: usize,
        cost: u64,
        key: u64,
    ) -> Result<(), Refusal> {
        self.pump(now_ms);
        self.core.try_charge(now_ms, campaign, cost, key)
    }

    /// Starts loading the cache line `key`'s idempotency check will read (see
    /// [`subledger::SubLedger::prefetch`]): the auction calls it when the slot starts, before the
    /// scoring work, and charges with the same key after it.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        self.core.prefetch(key);
    }

    /// Standalone mode: exchange messages with the embedded allocator until quiet.
    fn pump(&mut self, now: i64) {
        let Some(alloc) = self.local.as_mut() else {
            return;
        };
        for _ in 0..8 {
            self.out.clear();
            self.core.poll(now, &mut self.out);
            if self.out.is_empty() {
                break;
            }
            for &req in &self.out {
                self.records.clear();
                let reply = alloc.on_request(now, req, &mut self.records);
                self.core.on_reply(now, reply);
            }
        }
        self.spend_records += self.core.journal().count() as u64;
    }

    /// What to send the allocator now.
    pub fn poll(&mut self, now_ms: i64, out: &mut Vec<Request>) {
        self.core.poll(now_ms, out);
    }

    pub fn on_reply(&mut self, now_ms: i64, reply: Reply) {
        self.core.on_reply(now_ms, reply);
    }

    /// Orderly stop: queue returns of every lot (sent by the next `poll`).
    pub fn return_all(&mut self) {
        self.core.return_all();
    }

    /// Spend records ready for the ledger writer.
    pub fn journal(&mut self) -> impl ExactSizeIterator<Item = crate::budget::LedgerRecord> + '_ {
        self.core.journal()
    }

    pub fn count_spend_records(&mut self, n: u64) {
        self.spend_records += n;
    }

    /// [`subledger::SubLedger::is_warm`]; a standalone ledger (its allocator embedded, refills
    /// at once) always is.
    pub fn is_warm(&self) -> bool {
        self.local.is_some() || self.core.is_warm()
    }

    pub fn spend_records(&self) -> u64 {
        self.spend_records
    }

    /// Runs the pacing controller (every `pacing_update_ms`).
    pub fn update_pacing(&mut self, now_ms: i64) {
        let shards = self.setup.shards.max(1) as u64;
        let budgets = &self.setup.budgets;
        let core = &self.core;
        self.pacer.update(
            now_ms,
            &self.setup.calendar,
            |c| budgets[c].daily_micros / shards,
            |c| core.line(c).spent_today_micros,
        );
    }

    pub fn line(&self, campaign: usize) -> SpendLine {
        self.core.line(campaign)
    }

    pub fn pace(&self, campaign: usize) -> PaceLine {
        self.pacer.line(campaign)
    }

    pub fn len(&self) -> usize {
        self.core.len()
    }

    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(daily: &[u64]) -> Catalog {
        let campaigns: Vec<_> = daily
            .iter()
            .enumerate()
            .map(|(i, d)| {
                serde_json::json!({
                    "id": i, "advertiser_id": 1, "name": "c", "kind": {"type": "direct"},
                    "pricing": {"model": "cpm", "bid_cpm_micros": 1_000_000u64}, "category": "x",
                    "budget_daily_micros": d, "budget_lifetime_micros": d * 2,
                    "start_date": "2026-01-01", "end_date": "2026-12-31", "creative_ids": [1]
                })
            })
            .collect();
        let v = serde_json::json!({
            "version": 1, "currency": "USD", "category_ctr_priors": {"x": 0.01},
            "advertisers": [{"id": 1, "name": "A", "domain": "a.example", "timezone": "Asia/Tokyo"}],
            "campaigns": campaigns,
            "creatives": [{"id": 1, "format": "native", "adm": "n"}]
        });
        Catalog::from_slice("t", &serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn standalone_spends_the_budget_plus_at_most_the_bound() {
        let cat = catalog(&[1_000_000, 50_000]);
        let mut l = SubLedger::standalone(&cat);
        let mut spent = [0u64; 2];
        for k in 0..2_000u64 {
            let c = (k % 2) as usize;
            if l.try_charge(now_ms(), c, 3_000, k).is_ok() {
                spent[c] += 3_000;
            }
        }
        // Daily 1_000_000 + 1 % bound: 336 impressions of 3_000 fit (1_008_000).
        assert_eq!(spent[0], 1_008_000);
        // 50_000 + 500: 16 fit (48_000); a 17th would reach 51_000.
        assert_eq!(spent[1], 48_000);
        assert_eq!(l.try_charge(now_ms(), 0, 1, 0), Err(Refusal::Duplicate));
        assert_eq!(l.line(0).spent_today_micros, 1_008_000);
    }

    /// Counts its wakes.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn a_charge_wakes_the_quiet_budget_round_and_nothing_else_does() {
        let cat = catalog(&[1_000_000]);
        let mut config = Config::default();
        config.budget.pacing = "off".into();
        let setup = Arc::new(BudgetSetup::new(&config, &cat, 1).unwrap());
        let now = now_ms();
        let mut l = SubLedger::connected(setup.clone(), 0, now);
        let mut alloc = setup.new_allocator(now);
        let counter = Arc::new(CountingWaker(Default::default()));
        let waker = Waker::from(counter.clone());
        let wakes = || counter.0.load(std::sync::atomic::Ordering::Relaxed);
        let mut cx = Context::from_waker(&waker);
        assert!(
            l.poll_work(&mut cx).is_ready(),
            "unregistered: a round has work"
        );
        for _ in 0..4 {
            let mut out = Vec::new();
            l.poll(now, &mut out);
            for req in out {
                let reply = alloc.on_request(now, req, &mut Vec::new());
                l.on_reply(now, reply);
            }
        }
        assert!(l.is_warm());
        assert!(
            l.poll_work(&mut cx).is_pending(),
            "warm, nothing spent: quiet"
        );
        l.update_pacing(now);
        assert_eq!(wakes(), 0);
        l.try_charge(now, 0, 1_000, 1).unwrap();
        assert_eq!(
            wakes(),
            1,
            "the charge left a spend record: the round is woken"
        );
        assert!(l.poll_work(&mut cx).is_ready());
        l.drain_journal(None);
        assert!(
            l.poll_work(&mut cx).is_pending(),
            "spend handed on: quiet again"
        );
        l.forget_round_waiter();
        l.try_charge(now, 0, 1_000, 2).unwrap();
        assert_eq!(wakes(), 1, "no waiter: nobody to wake");
    }

    #[test]
    fn keys_differ_by_request_and_imp() {
        let a = impression_key("r1", "1");
        assert_eq!(a, impression_key("r1", "1"));
        assert_ne!(a, impression_key("r1", "2"));
        assert_ne!(impression_key("r1", "12"), impression_key("r11", "2"));
    }
}
