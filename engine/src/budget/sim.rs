//! Deterministic simulation of the budget: one allocator and N shard sub-ledgers, each with a
//! write-ahead log on simulated storage, under a seeded scheduler that reorders and delays
//! messages, crashes and restarts shards and the allocator at any step (tearing the last
//! unsynced log write), jumps the clock across local midnights and drives random spend with
//! replayed idempotency keys. After every step a checker asserts the money invariants:
//!
//! 1. served spend <= budget + bound, per campaign and day and over the lifetime (served = every
//!    charge that succeeded, even if its record was lost in a crash: the ad was shown);
//! 2. the allocator's accounts: `granted = returned + spent + reclaimed + outstanding`, and the
//!    source's net allocation equals `spent + reclaimed + outstanding`;
//! 3. no live shard holds more than the allocator granted it;
//! 4. no idempotency key is charged twice (within an incarnation, and in the durable ledger);
//! 5. recovery: state rebuilt from the log equals the state at the last commit (nothing of the
//!    torn tail survived) or the state before the crash (all of it survived).
//!
//! The logs are the engine's real [`Wal`] over [`MemStorage`] (torn tail = a random prefix of the
//! unsynced bytes survives), compacted now and then, and recovered by the engine's own
//! [`durable`] functions, so framing, checksums, torn-tail truncation, snapshots and replay are
//! all under the checker.
//!
//! The same [`Allocator`] and [`SubLedger`] code runs in the engine. A failing seed is reported
//! as `ADCORE_SIM_SEED=<seed>` and replays exactly (`run_seed`).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::allocator::{Allocator, AllocatorConfig, AllocatorState, Refused, Reply, Request};
use super::calendar::Calendar;
use super::durable;
use super::record::LedgerRecord;
use super::source::{Budget, BudgetSource, LocalCounters, Sizing};
use super::subledger::{SubLedger, SubLedgerConfig};
use crate::wal::{MemStorage, Tear, Wal};

const DAY_MS: i64 = 86_400_000;

/// splitmix64: the simulation's only source of randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// One simulated log: the engine's real [`Wal`] (framing, checksums, group commit, torn-tail
/// recovery, compaction) over [`MemStorage`], whose crash keeps the synced bytes plus a random
/// prefix of the written-but-unsynced ones (a torn write). Recovery goes through the engine's
/// real code too ([`durable::recover_allocator`], [`durable::recover_spend`]).
#[derive(Debug)]
pub struct SimLog {
    wal: Wal<MemStorage>,
    /// Records appended since the last sync, in order.
    unsynced: Vec<LedgerRecord>,
}

impl Default for SimLog {
    fn default() -> Self {
        SimLog {
            wal: Wal::open(MemStorage::new()).expect("a fresh log opens").0,
            unsynced: Vec::new(),
        }
    }
}

impl SimLog {
    pub fn append(&mut self, r: &LedgerRecord) {
        durable::append_all(&mut self.wal, std::slice::from_ref(r));
        self.unsynced.push(*r);
    }

    /// Group commit: one write and one sync.
    pub fn sync(&mut self) {
        self.wal.commit();
        self.unsynced.clear();
    }

    /// Compaction: `snapshot` (the state including every appended record) replaces the log.
    pub fn compact(&mut self, snapshot: &[u8]) {
        self.wal.compact(snapshot);
        self.unsynced.clear();
    }

    /// Crashes the storage after the unsynced records were written (not synced), keeping a random
    /// prefix of them, and recovers the log (torn tail truncated); returns how many unsynced
    /// records survived whole, and how many there were.
    pub fn crash(&mut self, rng: &mut Rng) -> (usize, usize) {
        self.wal
            .write_pending()
            .expect("memory storage does not fail");
        let durable_before = self.wal.durable_seq();
        let fresh = Wal::open(MemStorage::new()).expect("a fresh log opens").0;
        let mut storage = std::mem::replace(&mut self.wal, fresh).into_storage();
        let keep = rng.below(storage.unsynced_len() + 1);
        storage.crash(Tear::KeepPrefix(keep));
        let (wal, _) = Wal::open(storage).expect("a torn tail is recovered, never refused");
        let survived = (wal.next_seq() - 1 - durable_before) as usize;
        let pending = self.unsynced.len();
        assert!(
            survived <= pending,
            "more records survived than were written"
        );
        self.wal = wal;
        self.unsynced.clear();
        (survived, pending)
    }

    /// A copy of the stored bytes (recovery opens the copy).
    pub fn storage(&self) -> MemStorage {
        self.wal.storage().clone()
    }
}

/// What one run does.
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub steps: u64,
    /// Canary: lets every sub-ledger overdraw its lot by this much (a deliberately wrong bound);
    /// the checker must catch it.
    pub canary_overdraft_micros: u64,
}

/// A failed run: the seed replays it.
#[derive(Debug, Clone)]
pub struct SimFailure {
    pub seed: u64,
    pub step: u64,
    pub message: String,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ADCORE_SIM_SEED={} failed at step {}: {}",
            self.seed, self.step, self.message
        )
    }
}

/// Counters of one run (to show the faults were exercised).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimStats {
    pub steps: u64,
    pub charges_ok: u64,
    pub refused: u64,
    /// Refusals by the sub-ledger: exhausted, unregistered, journal full.
    pub refused_by: [u64; 3],
    pub duplicates_refused: u64,
    /// Of those, replays of a key held only by the older key generation.
    pub old_generation_replays: u64,
    pub shard_crashes: u64,
    pub allocator_crashes: u64,
    pub torn_records: u64,
    /// Logs replaced by a snapshot (allocator and spend logs).
    pub compactions: u64,
    pub midnights: u64,
    pub reclaims: u64,
    /// Lots given back because the allocator had nothing more and they could not cover the
    /// charge refused (see `SubLedger::return_if_stranded`).
    pub stranded_returns: u64,
    pub messages: u64,
    /// Campaign-days whose served spend reached 90 % of the daily budget.
    pub days_nearly_spent: u64,
    /// Largest served spend over a daily budget seen, ppm (above 1e6: inside the bound).
    pub fullest_day_ppm: u64,
}

impl SimStats {
    pub fn add(&mut self, o: &SimStats) {
        self.steps += o.steps;
        self.charges_ok += o.charges_ok;
        self.refused += o.refused;
        for i in 0..3 {
            self.refused_by[i] += o.refused_by[i];
        }
        self.duplicates_refused += o.duplicates_refused;
        self.old_generation_replays += o.old_generation_replays;
        self.shard_crashes += o.shard_crashes;
        self.allocator_crashes += o.allocator_crashes;
        self.torn_records += o.torn_records;
        self.midnights += o.midnights;
        self.reclaims += o.reclaims;
        self.stranded_returns += o.stranded_returns;
        self.compactions += o.compactions;
        self.messages += o.messages;
        self.days_nearly_spent += o.days_nearly_spent;
        self.fullest_day_ppm = self.fullest_day_ppm.max(o.fullest_day_ppm);
    }
}

enum Payload {
    ToAllocator(Request),
    ToShard(u16, Reply),
}

struct Message {
    deliver_at_ms: i64,
    payload: Payload,
}

struct Shard {
    ledger: Option<SubLedger>,
    log: SimLog,
    /// Spend of this shard's durable (synced) records, lifetime per campaign.
    synced_spent: Vec<u64>,
    /// Keys charged by the current incarnation.
    keys_live: HashSet<u64>,
    /// The last successful charges' keys (at most `replay_window`), replayed now and then.
    recent_keys: VecDeque<u64>,
}

struct World {
    rng: Rng,
    now_ms: i64,
    budgets: Vec<Budget>,
    calendar: Arc<Calendar>,
    alloc_cfg: AllocatorConfig,
    shard_cfg: SubLedgerConfig,
    canary: u64,
    /// Replays pick among this many latest keys: at most the `keys_max / 2` a sub-ledger is
    /// sure to remember, so every replay must be refused.
    replay_window: usize,
    alloc: Option<Allocator<LocalCounters>>,
    alloc_log: SimLog,
    /// Allocator state and counters at its last commit.
    alloc_synced: (AllocatorState, LocalCounters),
    shards: Vec<Shard>,
    net: Vec<Message>,
    served_day: BTreeMap<(u32, i64), u64>,
    served_life: Vec<u64>,
    durable_keys: HashSet<u64>,
    stats: SimStats,
    scratch: Vec<Request>,
    records: Vec<LedgerRecord>,
}

/// Runs one seed; `Err` names the seed, the step and the broken invariant.
pub fn run_seed(seed: u64, cfg: SimConfig) -> Result<SimStats, SimFailure> {
    let mut step = 0u64;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut w = World::new(seed, cfg);
        while step < cfg.steps {
            w.step();
            w.check()?;
            step += 1;
        }
        w.stats.steps = step;
        for (&(c, _), &served) in &w.served_day {
            let daily = w.budgets[c as usize].daily_micros.max(1);
            let ppm = served * 1_000_000 / daily;
            w.stats.fullest_day_ppm = w.stats.fullest_day_ppm.max(ppm);
            w.stats.days_nearly_spent += u64::from(ppm >= 900_000);
        }
        Ok(w.stats)
    }));
    let fail = |message: String| SimFailure {
        seed,
        step,
        message,
    };
    match outcome {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err(message)) => Err(fail(message)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(fail(format!("panicked: {msg}")))
        }
    }
}

impl World {
    fn new(seed: u64, cfg: SimConfig) -> World {
        let mut rng = Rng::new(seed);
        let shards = 1 + rng.below(4) as usize;
        let campaigns = 1 + rng.below(4) as usize;
        let offsets: Vec<i32> = (0..campaigns)
            .map(|_| (rng.below(24 * 4) as i32 - 48) * 900)
            .collect();
        let budgets = (0..campaigns)
            .map(|_| {
                let daily = 10_000 + rng.below(2_000_000);
                Budget {
                    daily_micros: daily,
                    lifetime_micros: daily * (2 + rng.below(60)),
                }
            })
            .collect();
        let sizing = Sizing {
            bound_ppm: [0, 1_000, 10_000][rng.below(3) as usize],
            chunk_ppm: 10_000 + rng.below(200_000),
            chunk_micros_min: 1 + rng.below(5_000),
            shrink_below_ppm: 100_000,
            shrink_divisor: 10,
            shards: shards as u64,
        };
        let alloc_cfg = AllocatorConfig {
            sizing,
            stale_timeout_ms: 2_000 + rng.below(20_000) as i64,
            dead_zone_ms: rng.below(3) as i64 * 1_000,
        };
        let shard_cfg = SubLedgerConfig {
            shard: 0,
            low_water_ppm: 100_000 + rng.below(800_000),
            refill_timeout_ms: 200 + rng.below(2_000) as i64,
            refill_retry_ms: 50 + rng.below(500) as i64,
            heartbeat_ms: 200 + rng.below(1_500) as i64,
            keys_max: 4_096,
            journal_max: 64 + rng.below(512) as usize,
        };
        // Small key sets in most seeds: the replay window then spans both generations, so a
        // replay often hits the older one (and its rotation), not just the current one.
        let keys_max = [8, 16, 64, 4_096][rng.below(4) as usize];
        let shard_cfg = SubLedgerConfig {
            keys_max,
            ..shard_cfg
        };
        let replay_window = (keys_max / 2).min(64);
        let now_ms = (20_000 + rng.below(1_000) as i64) * DAY_MS + rng.below(DAY_MS as u64) as i64;
        let calendar = Arc::new(Calendar::fixed(&offsets));
        let alloc = Allocator::new(
            LocalCounters::default(),
            budgets,
            calendar.clone(),
            alloc_cfg,
            now_ms,
        );
        let mut w = World {
            rng,
            now_ms,
            budgets: alloc.budgets().to_vec(),
            calendar,
            alloc_cfg,
            shard_cfg,
            canary: cfg.canary_overdraft_micros,
            replay_window,
            alloc_synced: (alloc.state().clone(), alloc.source().clone()),
            alloc: Some(alloc),
            alloc_log: SimLog::default(),
            shards: Vec::new(),
            net: Vec::new(),
            served_day: BTreeMap::new(),
            served_life: vec![0; campaigns],
            durable_keys: HashSet::new(),
            stats: SimStats::default(),
            scratch: Vec::new(),
            records: Vec::new(),
        };
        for s in 0..shards {
            let ledger = w.new_ledger(s as u16, MemStorage::new());
            w.shards.push(Shard {
                ledger: Some(ledger),
                log: SimLog::default(),
                synced_spent: vec![0; campaigns],
                keys_live: HashSet::new(),
                recent_keys: VecDeque::new(),
            });
        }
        w
    }

    /// A shard's sub-ledger recovered from (a copy of) its spend log, by the engine's code.
    fn new_ledger(&self, shard: u16, log: MemStorage) -> SubLedger {
        let cfg = SubLedgerConfig {
            shard,
            ..self.shard_cfg
        };
        let (mut l, _, _) = durable::recover_spend(
            log,
            "spend.wal (sim)",
            cfg,
            self.calendar.clone(),
            self.now_ms,
        )
        .expect("a shard's spend log recovers");
        l.set_canary_overdraft(self.canary);
        l
    }

    fn step(&mut self) {
        // Whatever is down comes back after ~20 steps.
        if self.alloc.is_none() && self.rng.chance(50) {
            self.alloc = Some(self.recover_allocator());
        }
        let s = self.rng.below(self.shards.len() as u64) as usize;
        if self.shards[s].ledger.is_none() && self.rng.chance(50) {
            self.restart_shard(s);
        }
        match self.rng.below(1000) {
            0..=399 => self.charge(),
            400..=549 => self.poll_shard(),
            550..=799 => self.deliver(),
            800..=909 => self.advance_clock(),
            910..=939 => self.tick_allocator(),
            940..=989 => self.flush_shard(),
            990..=996 => {
                let s = self.rng.below(self.shards.len() as u64) as usize;
                if self.shards[s].ledger.is_some() {
                    self.crash_shard(s);
                }
            }
            _ => {
                if self.alloc.is_some() {
                    self.crash_allocator();
                }
            }
        }
    }

    fn charge(&mut self) {
        let s = self.rng.below(self.shards.len() as u64) as usize;
        let c = self.rng.below(self.budgets.len() as u64) as usize;
        let daily = self.budgets[c].daily_micros;
        let cost = 1 + self.rng.below(daily / 20 + 1);
        let replay = self.rng.chance(100);
        let now = self.now_ms;
        let sh = &mut self.shards[s];
        let key = match (replay, sh.recent_keys.is_empty()) {
            (true, false) => sh.recent_keys[self.rng.below(sh.recent_keys.len() as u64) as usize],
            _ => self.rng.next_u64(),
        };
        let Some(ledger) = sh.ledger.as_mut() else {
            return;
        };
        let older = ledger.key_in_older_generation(key);
        match ledger.try_charge(now, c, cost, key) {
            Ok(()) => {
                assert!(
                    sh.keys_live.insert(key) && !self.durable_keys.contains(&key),
                    "key {key:#x} charged twice on shard {s}"
                );
                let day = ledger.lot(c).0;
                *self.served_day.entry((c as u32, day)).or_default() += cost;
                self.served_life[c] += cost;
                self.stats.charges_ok += 1;
                sh.recent_keys.push_back(key);
                if sh.recent_keys.len() > self.replay_window {
                    sh.recent_keys.pop_front();
                }
            }
            Err(super::Refusal::Duplicate) => {
                self.stats.duplicates_refused += 1;
                self.stats.old_generation_replays += u64::from(older);
            }
            Err(r) => {
                self.stats.refused += 1;
                let i = match r {
                    super::Refusal::Exhausted => 0,
                    super::Refusal::Unregistered => 1,
                    _ => 2,
                };
                self.stats.refused_by[i] += 1;
            }
        }
    }

    fn delay(&mut self) -> i64 {
        if self.rng.chance(50) {
            500 + self.rng.below(5_000) as i64
        } else {
            self.rng.below(50) as i64
        }
    }

    fn poll_shard(&mut self) {
        let s = self.rng.below(self.shards.len() as u64) as usize;
        let now = self.now_ms;
        let Some(ledger) = self.shards[s].ledger.as_mut() else {
            return;
        };
        let mut out = std::mem::take(&mut self.scratch);
        ledger.poll(now, &mut out);
        for r in out.drain(..) {
            let deliver_at_ms = now + self.delay();
            self.net.push(Message {
                deliver_at_ms,
                payload: Payload::ToAllocator(r),
            });
        }
        self.scratch = out;
    }

    /// Delivers a random message that is due (any order: reordering).
    fn deliver(&mut self) {
        let due: Vec<usize> = (0..self.net.len())
            .filter(|&i| self.net[i].deliver_at_ms <= self.now_ms)
            .collect();
        if due.is_empty() {
            return;
        }
        let i = due[self.rng.below(due.len() as u64) as usize];
        let msg = self.net.swap_remove(i);
        self.stats.messages += 1;
        let now = self.now_ms;
        match msg.payload {
            Payload::ToShard(s, reply) => {
                if std::env::var_os("ADCORE_SIM_TRACE").is_some() {
                    eprintln!("t={now} shard {s} <- {reply:?}");
                }
                if let Some(l) = self.shards[usize::from(s)].ledger.as_mut() {
                    let held = |l: &SubLedger| match reply {
                        Reply::Refused {
                            campaign,
                            why: Refused::Exhausted,
                            ..
                        } => l.line(campaign as usize).held_micros,
                        _ => 0,
                    };
                    let before = held(l);
                    l.on_reply(now, reply);
                    if before > 0 && held(l) == 0 {
                        self.stats.stranded_returns += 1;
                    }
                }
            }
            Payload::ToAllocator(req) => {
                let Some(alloc) = self.alloc.as_mut() else {
                    return;
                };
                self.records.clear();
                let reply = alloc.on_request(now, req, &mut self.records);
                if std::env::var_os("ADCORE_SIM_TRACE").is_some() {
                    eprintln!("t={now} {req:?} -> {reply:?} {:?}", self.records);
                }
                self.commit_allocator();
                if self.alloc.is_some() {
                    let deliver_at_ms = now + self.delay();
                    self.net.push(Message {
                        deliver_at_ms,
                        payload: Payload::ToShard(req.shard(), reply),
                    });
                }
            }
        }
    }

    /// Appends the allocator's new records and syncs: or crashes between the two.
    fn commit_allocator(&mut self) {
        for r in &self.records {
            self.alloc_log.append(r);
            if matches!(r, LedgerRecord::Reclaim { .. }) {
                self.stats.reclaims += 1;
            }
        }
        if !self.records.is_empty() && self.rng.chance(3) {
            self.crash_allocator();
            return;
        }
        if !self.records.is_empty() && self.rng.chance(5) {
            let a = self.alloc.as_ref().expect("allocator is up");
            let snap = durable::encode_allocator_snapshot(a.state(), a.source());
            self.alloc_log.compact(&snap);
            self.stats.compactions += 1;
        } else {
            self.alloc_log.sync();
        }
        if !self.records.is_empty() {
            let a = self.alloc.as_ref().expect("allocator is up");
            self.alloc_synced = (a.state().clone(), a.source().clone());
        }
    }

    fn tick_allocator(&mut self) {
        let now = self.now_ms;
        if let Some(a) = self.alloc.as_mut() {
            self.records.clear();
            a.tick(now, &mut self.records);
            if std::env::var_os("ADCORE_SIM_TRACE").is_some() && !self.records.is_empty() {
                eprintln!("t={now} tick {:?}", self.records);
            }
            self.commit_allocator();
        }
    }

    fn advance_clock(&mut self) {
        let before: Vec<i64> = (0..self.budgets.len())
            .map(|c| self.calendar.period(c, self.now_ms).day)
            .collect();
        if self.rng.chance(20) {
            // Jump to just before some campaign's local midnight.
            let c = self.rng.below(self.budgets.len() as u64) as usize;
            let end = self.calendar.period(c, self.now_ms).end_ms;
            self.now_ms = self.now_ms.max(end - self.rng.below(5_000) as i64);
        } else if self.rng.chance(2) {
            self.now_ms += self.rng.below(DAY_MS as u64) as i64;
        } else {
            self.now_ms += 1 + self.rng.below(2_000) as i64;
        }
        for (c, d) in before.into_iter().enumerate() {
            if self.calendar.period(c, self.now_ms).day != d {
                self.stats.midnights += 1;
            }
        }
    }

    /// Group commit of one shard's spend records (or a crash in the middle of it).
    fn flush_shard(&mut self) {
        let s = self.rng.below(self.shards.len() as u64) as usize;
        let crash = self.rng.chance(20);
        let compact = self.rng.chance(20);
        let sh = &mut self.shards[s];
        let Some(ledger) = sh.ledger.as_mut() else {
            return;
        };
        for r in ledger.journal() {
            sh.log.append(&r);
        }
        if crash {
            self.crash_shard(s);
            return;
        }
        for r in &sh.log.unsynced {
            if let LedgerRecord::Spend {
                campaign,
                key,
                cost,
                ..
            } = *r
            {
                assert!(
                    self.durable_keys.insert(key),
                    "key {key:#x} committed twice (shard {s})"
                );
                sh.synced_spent[campaign as usize] += cost;
            }
        }
        if compact {
            let snap = durable::encode_spend_snapshot(&ledger.image());
            sh.log.compact(&snap);
            self.stats.compactions += 1;
        } else {
            sh.log.sync();
        }
    }

    fn restart_shard(&mut self, s: usize) {
        {
            let ledger = self.new_ledger(s as u16, self.shards[s].log.storage());
            // Recovery: the rebuilt spend equals the durable spend (torn tail checked in crash).
            for (c, &spent) in self.shards[s].synced_spent.iter().enumerate() {
                assert_eq!(
                    ledger.line(c).spent_lifetime_micros,
                    spent,
                    "shard {s} recovered spend of campaign {c}"
                );
            }
            let sh = &mut self.shards[s];
            sh.ledger = Some(ledger);
            sh.keys_live.clear();
        }
    }

    fn crash_shard(&mut self, s: usize) {
        self.stats.shard_crashes += 1;
        let sh = &mut self.shards[s];
        let pending = sh.log.unsynced.clone();
        let (survived, _) = sh.log.crash(&mut self.rng);
        self.stats.torn_records += (pending.len() - survived) as u64;
        // What survived of the torn tail is durable now.
        for r in &pending[..survived] {
            if let LedgerRecord::Spend {
                campaign,
                key,
                cost,
                ..
            } = *r
            {
                assert!(
                    self.durable_keys.insert(key),
                    "key {key:#x} committed twice"
                );
                sh.synced_spent[campaign as usize] += cost;
            }
        }
        sh.ledger = None;
        self.net
            .retain(|m| !matches!(m.payload, Payload::ToShard(t, _) if usize::from(t) == s));
    }

    fn crash_allocator(&mut self) {
        self.stats.allocator_crashes += 1;
        let pending = self.alloc_log.unsynced.clone();
        let live = self
            .alloc
            .take()
            .map(|a| (a.state().clone(), a.source().clone()));
        let (survived, total) = self.alloc_log.crash(&mut self.rng);
        let _ = &pending;
        self.stats.torn_records += (total - survived) as u64;
        let recovered = self.recover_allocator();
        let state = (recovered.state().clone(), recovered.source().clone());
        if survived == 0 {
            assert!(
                state == self.alloc_synced,
                "allocator recovered a state other than its last commit: {}",
                diff(&state, &self.alloc_synced)
            );
        } else if survived == pending.len() {
            assert!(
                Some(&state) == live.as_ref(),
                "allocator recovered a state other than before the crash"
            );
        }
        // The allocator stays down until a restart event.
        self.alloc_synced = state;
        self.net
            .retain(|m| !matches!(m.payload, Payload::ToAllocator(_)));
    }

    /// The allocator recovered from (a copy of) its log by the engine's code. Only the allocator
    /// restarted (shards keep their lots), so nothing is reclaimed here: stale shards are.
    fn recover_allocator(&self) -> Allocator<LocalCounters> {
        let inputs = durable::AllocatorInputs {
            budgets: self.budgets.clone(),
            calendar: self.calendar.clone(),
            cfg: self.alloc_cfg,
        };
        let (a, _, _) = durable::recover_allocator(
            self.alloc_log.storage(),
            "allocator.wal (sim)",
            inputs,
            self.now_ms,
            false,
        )
        .expect("the allocator's log recovers");
        a
    }

    fn check(&self) -> Result<(), String> {
        let sizing = &self.alloc_cfg.sizing;
        for (&(c, day), &served) in &self.served_day {
            let b = self.budgets[c as usize];
            let cap = b.daily_micros + sizing.bound_of(b.daily_micros);
            if served > cap {
                return Err(format!(
                    "campaign {c} day {day}: served {served} > budget {} + bound {}",
                    b.daily_micros,
                    cap - b.daily_micros
                ));
            }
        }
        for (c, &served) in self.served_life.iter().enumerate() {
            let b = self.budgets[c];
            let cap = b.lifetime_micros + sizing.bound_of(b.lifetime_micros);
            if served > cap {
                return Err(format!(
                    "campaign {c}: lifetime served {served} > {} + bound",
                    b.lifetime_micros
                ));
            }
        }
        let Some(a) = &self.alloc else {
            return Ok(());
        };
        let st = a.state();
        for (&(c, day), acct) in &st.accts {
            let out = st.outstanding(c, day);
            let used = a.source().used(c, day);
            if acct.granted != acct.returned + acct.spent + acct.reclaimed + out
                || used.day_chunk + used.day_slack != acct.spent + acct.reclaimed + out
            {
                return Err(format!(
                    "campaign {c} day {day}: accounts {acct:?}, outstanding {out}, source {used:?}"
                ));
            }
        }
        for (s, sh) in self.shards.iter().enumerate() {
            let Some(l) = &sh.ledger else { continue };
            if l.epoch() != Some(st.epochs[s]) {
                continue;
            }
            for c in 0..self.budgets.len() {
                let (day, chunk, slack, _) = l.lot(c);
                if day != self.calendar.period(c, self.now_ms).day {
                    // The line rolls lazily; a lot of an ended day may be reclaimed already.
                    continue;
                }
                let lot = st
                    .lots
                    .get(&(c as u32, s as u16, day))
                    .copied()
                    .unwrap_or_default();
                if chunk > lot.chunk || slack > lot.slack {
                    return Err(format!(
                        "shard {s} holds {chunk}+{slack} of campaign {c} day {day}, allocator granted {lot:?}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The first field where two allocator states differ (failure messages).
fn diff(a: &(AllocatorState, LocalCounters), b: &(AllocatorState, LocalCounters)) -> String {
    let (x, y) = (&a.0, &b.0);
    if x.epochs != y.epochs {
        return format!("epochs {:?} vs {:?}", x.epochs, y.epochs);
    }
    if x.days != y.days {
        return format!("days {:?} vs {:?}", x.days, y.days);
    }
    if x.lots != y.lots {
        return format!("lots {:?} vs {:?}", x.lots, y.lots);
    }
    if x.accts != y.accts {
        let d: Vec<_> = x
            .accts
            .iter()
            .filter(|(k, v)| y.accts.get(k) != Some(v))
            .collect();
        return format!(
            "accts {d:?} vs {:?}",
            d.iter().map(|(k, _)| y.accts.get(k)).collect::<Vec<_>>()
        );
    }
    format!("source counters {:?} vs {:?}", a.1, b.1)
}

/// Runs seeds `first..first + seeds` with `steps` each; stops at the first failure.
pub fn run_many(
    first: u64,
    seeds: u64,
    steps: u64,
    canary_overdraft_micros: u64,
) -> Result<SimStats, SimFailure> {
    let mut total = SimStats::default();
    for seed in first..first + seeds {
        let s = run_seed(
            seed,
            SimConfig {
                steps,
                canary_overdraft_micros,
            },
        )?;
        total.add(&s);
    }
    Ok(total)
}
