//! A shard's sub-ledger: the lots of budget the allocator granted to this shard, and the
//! check-and-deduct the auction runs on them.
//!
//! A pure state machine like the allocator: [`SubLedger::try_charge`] (hot path, no allocation
//! once warm, no message sent), [`SubLedger::poll`] (what to send the allocator: register,
//! refills at the low-water mark, returns at period end, heartbeats) and
//! [`SubLedger::on_reply`]. Refills are asynchronous: the auction never waits for one; a campaign
//! whose lot ran dry is refused and the auction moves to the next candidate.
//!
//! Invariant, asserted on every charge: `spent <= chunk + slack` of the current lot, where
//! `slack` is this shard's share of the inaccuracy bound, so summed over shards a campaign-day
//! spends at most `budget + bound`. Every debit carries an idempotency key (hash of request id
//! and imp id): a replayed key is refused (bounded two-generation set, `keys_max`: [`super::keyset`]).

use std::sync::Arc;

use super::allocator::{Refused, Reply, Request};
use super::calendar::{Calendar, Period};
use super::keyset::KeySet;
use super::record::{LedgerRecord, ShardNo};

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The shard's lot for this campaign and day cannot cover the cost (refill asked).
    Exhausted,
    /// This idempotency key was already charged.
    Duplicate,
    /// The shard holds no epoch (starting, or fenced): no lot to spend from.
    Unregistered,
    /// Spend records waiting for the WAL reached `journal_max`: nothing more is charged until
    /// they are written.
    JournalFull,
    /// Pacing throttled the campaign for this request.
    Paced,
}

/// Sub-ledger settings (from `[budget]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubLedgerConfig {
    pub shard: ShardNo,
    /// Ask for a refill when what is left of the lot falls below this share (ppm) of the last
    /// grant.
    pub low_water_ppm: u64,
    /// A refill or register unanswered this long may be sent again.
    pub refill_timeout_ms: i64,
    /// After a refusal, wait this long before asking again.
    pub refill_retry_ms: i64,
    pub heartbeat_ms: i64,
    /// Idempotency keys remembered (two generations of `keys_max / 2`).
    pub keys_max: usize,
    /// Spend records buffered for the WAL; at the bound charges are refused. Allocated up front
    /// (32 bytes a record).
    pub journal_max: usize,
}

/// Spend figures of one campaign on one shard (reports and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendLine {
    pub day: i64,
    pub spent_today_micros: u64,
    pub spent_lifetime_micros: u64,
    pub impressions: u64,
    /// Budget this shard holds for today (granted to it and not yet spent).
    pub held_micros: u64,
}

/// One campaign on this shard. The fields a charge reads and writes come first and fill one
/// cache line; `end_ms`, `day`, `limit` and `refill_from` are derived from the colder fields
/// (period, chunk, slack, low water, the canary) whenever those change, never per charge.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Line {
    /// End of the current period: a charge at or after it rolls the line first.
    end_ms: i64,
    /// `chunk + slack + canary_overdraft`: the bound `spent` must stay within.
    limit: u64,
    /// Spent from the current lot.
    spent: u64,
    /// The lot is at its low-water mark once `spent >= refill_from` (the same answer as
    /// `available() < low_water`; see [`refill_from`]).
    refill_from: u64,
    day: i64,
    impressions: u64,
    queued: bool,
    period: Option<Period>,
    chunk: u64,
    slack: u64,
    slack_asked: bool,
    last_grant: u64,
    /// Refill below this much left: `last_grant * low_water_ppm / 1e6`, at least 1 (computed
    /// per grant, not per charge).
    low_water: u64,
    in_flight_since: Option<i64>,
    retry_at_ms: i64,
    /// Spent today and in the campaign's lifetime before the current lot: the day's and the
    /// lifetime figures are these plus `spent` (one counter updated per charge, not three).
    day_base: u64,
    life_base: u64,
    /// Cost of the last charge the lot could not cover (0: none yet): the next refill asks for
    /// at least what is missing, and a lot left short of it once the allocator has nothing more
    /// is returned (see [`SubLedger::return_if_stranded`]).
    refused_cost: u64,
}

/// The least `spent` for which `lot.saturating_sub(spent) < low_water` (`u64::MAX` if none):
/// the low-water test as one compare.
fn refill_from(lot: u64, low_water: u64) -> u64 {
    match (lot.checked_sub(low_water), low_water) {
        (_, 0) => u64::MAX,
        (Some(d), _) => d + 1,
        (None, _) => 0,
    }
}

impl Line {
    fn new(period: Period, canary: u64) -> Line {
        let mut l = Line {
            end_ms: i64::MIN,
            limit: 0,
            spent: 0,
            refill_from: 0,
            day: i64::MIN,
            impressions: 0,
            queued: true,
            period: None,
            chunk: 0,
            slack: 0,
            slack_asked: false,
            last_grant: 0,
            low_water: 1,
            in_flight_since: None,
            retry_at_ms: 0,
            day_base: 0,
            life_base: 0,
            refused_cost: 0,
        };
        l.set_period(period);
        l.sync(canary);
        l
    }

    fn day(&self) -> i64 {
        self.day
    }

    fn set_period(&mut self, p: Period) {
        self.period = Some(p);
        self.end_ms = p.end_ms;
        self.day = p.day;
    }

    /// Recomputes the derived bounds after chunk, slack, low water or the canary changed.
    fn sync(&mut self, canary: u64) {
        let lot = self.chunk + self.slack;
        self.limit = lot + canary;
        self.refill_from = refill_from(lot, self.low_water);
    }

    fn available(&self) -> u64 {
        (self.chunk + self.slack).saturating_sub(self.spent)
    }

    /// Deducts `cost` if the lot covers it (`spent + cost <= limit`, no overflow): the new
    /// `spent`, or `None` with nothing changed.
    #[inline(always)]
    fn debit(&mut self, cost: u64) -> Option<u64> {
        let spent = self.spent.checked_add(cost).filter(|&s| s <= self.limit)?;
        self.spent = spent;
        self.impressions += 1;
        Some(spent)
    }

    /// The lot reached its low-water mark (at `spent`, the value [`Line::debit`] returned) and
    /// no refill is queued yet.
    #[inline(always)]
    fn refill_due(&self, spent: u64) -> bool {
        spent >= self.refill_from && !self.queued
    }

    fn spent_day(&self) -> u64 {
        self.day_base + self.spent
    }

    fn spent_life(&self) -> u64 {
        self.life_base + self.spent
    }

    fn drop_lot(&mut self, canary: u64) {
        self.day_base += self.spent;
        self.life_base += self.spent;
        self.chunk = 0;
        self.slack = 0;
        self.spent = 0;
        self.slack_asked = false;
        self.last_grant = 0;
        self.low_water = 1;
        self.in_flight_since = None;
        self.retry_at_ms = 0;
        self.sync(canary);
    }
}

/// A spend record as the charge stores it (32 bytes, no enum tag, no shard: the same for every
/// record); [`SubLedger::journal`] hands it on as [`LedgerRecord::Spend`].
#[derive(Debug, Clone, Copy, Default)]
struct SpendRec {
    key: u64,
    cost: u64,
    day: i64,
    campaign: u32,
    epoch: u32,
}

/// The spend records charges write and the WAL drains: `recs[..len]`, in a buffer allocated once
/// at `journal_max` records (`room` never exceeds it), so a charge writes at an index: no growth
/// check and no call on its path.
#[derive(Debug, Clone)]
struct Journal {
    recs: Box<[SpendRec]>,
    len: usize,
    /// `journal_max` while registered, 0 without an epoch: the one compare a charge makes for
    /// both refusals (see [`SubLedger::not_ready`]).
    room: usize,
    /// The epoch the records carry (0 without one, when `room` refuses every charge anyway).
    epoch: u32,
}

impl Journal {
    fn new(max: usize) -> Journal {
        Journal {
            recs: vec![SpendRec::default(); max].into_boxed_slice(),
            len: 0,
            room: 0,
            epoch: 0,
        }
    }

    /// No charge can be recorded: no epoch, or `journal_max` records waiting for the WAL.
    #[inline(always)]
    fn is_full(&self) -> bool {
        self.len >= self.room
    }

    /// Records a charge (after [`Journal::is_full`] said there is room).
    #[inline(always)]
    fn push(&mut self, campaign: usize, day: i64, cost: u64, key: u64) {
        let len = self.len;
        self.recs[len] = SpendRec {
            key,
            cost,
            day,
            campaign: campaign as u32,
            epoch: self.epoch,
        };
        self.len = len + 1;
    }

    /// Room for `max` records under `epoch`, none without one.
    fn set_epoch(&mut self, epoch: Option<u32>, max: usize) {
        self.epoch = epoch.unwrap_or_default();
        self.room = if epoch.is_some() { max } else { 0 };
    }

    /// Empties the journal, returning what it held.
    fn take(&mut self) -> &[SpendRec] {
        let len = std::mem::take(&mut self.len);
        &self.recs[..len]
    }
}

/// A charge once its key is settled and the journal has room, on disjoint fields (both charge
/// paths): deducts `cost` if the lot covers it, asserts the lot's bound, `remember`s the key and
/// records the spend. `None`: not covered, nothing changed; else whether a refill is due.
#[inline(always)]
fn debit_and_record(
    line: &mut Line,
    journal: &mut Journal,
    campaign: usize,
    cost: u64,
    key: u64,
    remember: impl FnOnce(),
) -> Option<bool> {
    let spent = line.debit(cost)?;
    assert!(
        spent <= line.limit,
        "spend past the lot of campaign {campaign}"
    );
    remember();
    journal.push(campaign, line.day, cost, key);
    Some(line.refill_due(spent))
}

/// One campaign's spend in a [`SpendImage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineImage {
    pub day: i64,
    pub spent_day: u64,
    pub spent_life: u64,
    pub impressions: u64,
}

/// A shard's recoverable spend state (a spend-WAL snapshot): see [`SubLedger::image`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpendImage {
    pub lines: Vec<LineImage>,
    pub keys: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct SubLedger {
    cfg: SubLedgerConfig,
    calendar: Arc<Calendar>,
    epoch: Option<u32>,
    register_sent_ms: Option<i64>,
    last_heartbeat_ms: i64,
    lines: Vec<Line>,
    keys: KeySet,
    wanted: Vec<u32>,
    returns: Vec<Request>,
    journal: Journal,
    /// Canary only (simulation): a deliberately wrong bound, 0 in the engine.
    canary_overdraft: u64,
    /// Per campaign: the allocator answered a refill at least once (grant or refusal).
    answered: Vec<bool>,
    /// Campaigns not answered yet; 0 = warm ([`SubLedger::is_warm`]).
    unanswered: usize,
}

impl SubLedger {
    pub fn new(cfg: SubLedgerConfig, calendar: Arc<Calendar>, now_ms: i64) -> SubLedger {
        let lines = (0..calendar.len())
            .map(|c| Line::new(calendar.period(c, now_ms), 0))
            .collect();
        SubLedger {
            cfg,
            calendar: calendar.clone(),
            epoch: None,
            register_sent_ms: None,
            last_heartbeat_ms: now_ms,
            lines,
            keys: KeySet::new(cfg.keys_max),
            wanted: (0..calendar.len() as u32).collect(),
            returns: Vec::new(),
            journal: Journal::new(cfg.journal_max),
            canary_overdraft: 0,
            answered: vec![false; calendar.len()],
            unanswered: calendar.len(),
        }
    }

    /// Canary build of the check: lets the lot be overdrawn by `micros` (a deliberately wrong
    /// bound). Only the simulation's canary test calls this, to prove its checker catches it.
    pub fn set_canary_overdraft(&mut self, micros: u64) {
        self.canary_overdraft = micros;
        for line in &mut self.lines {
            line.sync(micros);
        }
    }

    /// Rebuilds after a restart from this shard's committed spend records: the idempotency keys
    /// and the spend figures. Lots are not recovered: the allocator counted them as spent.
    pub fn recover<'a>(
        cfg: SubLedgerConfig,
        calendar: Arc<Calendar>,
        now_ms: i64,
        records: impl IntoIterator<Item = &'a LedgerRecord>,
    ) -> SubLedger {
        Self::recover_from(cfg, calendar, now_ms, &SpendImage::default(), records)
    }

    /// [`SubLedger::recover`] from a snapshot image (a compacted spend WAL) and the records that
    /// follow it.
    pub fn recover_from<'a>(
        cfg: SubLedgerConfig,
        calendar: Arc<Calendar>,
        now_ms: i64,
        image: &SpendImage,
        records: impl IntoIterator<Item = &'a LedgerRecord>,
    ) -> SubLedger {
        let mut l = SubLedger::new(cfg, calendar, now_ms);
        for (line, img) in l.lines.iter_mut().zip(&image.lines) {
            line.life_base = img.spent_life;
            line.impressions = img.impressions;
            if img.day == line.day() {
                line.day_base = img.spent_day;
            }
        }
        for &k in &image.keys {
            l.keys.insert(k);
        }
        for r in records {
            if let LedgerRecord::Spend {
                campaign,
                day,
                key,
                cost,
                ..
            } = *r
                && let Some(line) = l.lines.get_mut(campaign as usize)
            {
                l.keys.insert(key);
                line.life_base += cost;
                line.impressions += 1;
                if day == line.day() {
                    line.day_base += cost;
                }
            }
        }
        l
    }

    /// What a spend-WAL snapshot keeps: spend per campaign and the remembered idempotency keys.
    /// Spend records still in the journal are included: drain it to the WAL first.
    pub fn image(&self) -> SpendImage {
        SpendImage {
            lines: self
                .lines
                .iter()
                .map(|l| LineImage {
                    day: l.day(),
                    spent_day: l.spent_day(),
                    spent_life: l.spent_life(),
                    impressions: l.impressions,
                })
                .collect(),
            keys: self.keys.iter_oldest_first().collect(),
        }
    }

    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn line(&self, campaign: usize) -> SpendLine {
        let l = &self.lines[campaign];
        SpendLine {
            day: l.day(),
            spent_today_micros: l.spent_day(),
            spent_lifetime_micros: l.spent_life(),
            impressions: l.impressions,
            held_micros: l.available(),
        }
    }

    /// Chunk, slack and spent of the current lot (checks and tests).
    pub fn lot(&self, campaign: usize) -> (i64, u64, u64, u64) {
        let l = &self.lines[campaign];
        (l.day(), l.chunk, l.slack, l.spent)
    }

    /// Check-and-deduct: charges `cost` to `campaign` under idempotency key `key` if the shard's
    /// lot covers it. Inlined into the auction's call, for the usual charge only: the period
    /// still running and the key set answering from the key's home line
    /// ([`KeySet::vacancy`]). Anything else takes [`SubLedger::try_charge_general`], the same
    /// decision step by step, out of line.
    #[inline(always)]
    pub fn try_charge(
        &mut self,
        now_ms: i64,
        campaign: usize,
        cost: u64,
        key: u64,
    ) -> Result<(), Refusal> {
        // Disjoint fields (line, key set, journal) from here on, not `&mut self` methods: one
        // borrow of the line and one of the key's bucket for the whole charge.
        let line = &mut self.lines[campaign];
        if now_ms >= line.end_ms {
            return self.try_charge_general(now_ms, campaign, cost, key);
        }
        let Some(vacancy) = self.keys.vacancy(key) else {
            return self.try_charge_general(now_ms, campaign, cost, key);
        };
        if self.journal.is_full() {
            return Err(self.not_ready());
        }
        let settled = debit_and_record(line, &mut self.journal, campaign, cost, key, || {
            vacancy.fill(key)
        });
        self.after_debit(campaign, cost, settled)
    }

    /// [`SubLedger::try_charge`] in general: rolls the period if it ended, then the key set's
    /// full lookup (a probe past the home line, a rotation due, a replayed key).
    #[cold]
    #[inline(never)]
    fn try_charge_general(
        &mut self,
        now_ms: i64,
        campaign: usize,
        cost: u64,
        key: u64,
    ) -> Result<(), Refusal> {
        self.roll(now_ms, campaign);
        let Ok(slot) = self.keys.lookup(key) else {
            return Err(Refusal::Duplicate);
        };
        if self.journal.is_full() {
            return Err(self.not_ready());
        }
        let keys = &mut self.keys;
        let settled = debit_and_record(
            &mut self.lines[campaign],
            &mut self.journal,
            campaign,
            cost,
            key,
            || keys.insert_at(key, slot),
        );
        self.after_debit(campaign, cost, settled)
    }

    /// What follows [`debit_and_record`]: a refill asked for when the lot did not cover the
    /// charge (`None`: refused) or reached its low-water mark (`Some(true)`).
    #[inline(always)]
    fn after_debit(
        &mut self,
        campaign: usize,
        cost: u64,
        settled: Option<bool>,
    ) -> Result<(), Refusal> {
        match settled {
            None => self.refuse_uncovered(campaign, cost),
            Some(refill_due) => {
                if refill_due {
                    self.queue_refill(campaign);
                }
                Ok(())
            }
        }
    }

    /// The lot did not cover `cost`: remember it for the refill (asked for now) to cover.
    #[cold]
    #[inline(never)]
    fn refuse_uncovered(&mut self, campaign: usize, cost: u64) -> Result<(), Refusal> {
        self.lines[campaign].refused_cost = cost;
        self.want_refill(campaign);
        Err(Refusal::Exhausted)
    }

    /// Why a charge cannot be recorded (the journal's `room` reached): no epoch, or a full journal.
    #[cold]
    fn not_ready(&self) -> Refusal {
        if self.epoch.is_none() {
            Refusal::Unregistered
        } else {
            Refusal::JournalFull
        }
    }

    fn set_epoch(&mut self, epoch: Option<u32>) {
        self.epoch = epoch;
        self.journal.set_epoch(epoch, self.cfg.journal_max);
    }

    /// Whether `key` is remembered by the older key generation only (checks and the simulation).
    pub fn key_in_older_generation(&self, key: u64) -> bool {
        self.keys.in_older_generation_only(key)
    }

    /// Starts loading the idempotency-key line of `key` into the cache, so that a
    /// [`SubLedger::try_charge`] with this key later (after the auction's scoring) finds it there.
    /// A hint only: no effect on any answer.
    #[inline]
    pub fn prefetch(&self, key: u64) {
        self.keys.prefetch(key);
    }

    /// Spend records not yet handed to the WAL (drained by the caller).
    pub fn journal(&mut self) -> impl ExactSizeIterator<Item = LedgerRecord> + '_ {
        let shard = self.cfg.shard;
        self.journal
            .take()
            .iter()
            .map(move |r| LedgerRecord::Spend {
                shard,
                epoch: r.epoch,
                campaign: r.campaign,
                day: r.day,
                key: r.key,
                cost: r.cost,
            })
    }

    pub fn journal_len(&self) -> usize {
        self.journal.len
    }

    /// Whether a [`SubLedger::poll`] round has something to do now or soon: the shard is not
    /// registered or not warm, a refill is wanted, a return is queued or spend records wait for
    /// the log. When it is false only the heartbeat is due, once per `heartbeat_ms`.
    pub fn has_work(&self) -> bool {
        self.epoch.is_none()
            || self.unanswered > 0
            || !self.wanted.is_empty()
            || !self.returns.is_empty()
            || self.journal.len > 0
    }

    /// [`SubLedger::roll_slow`] when the line's period ended.
    #[inline]
    fn roll(&mut self, now_ms: i64, campaign: usize) {
        if now_ms >= self.lines[campaign].end_ms {
            self.roll_slow(now_ms, campaign);
        }
    }

    #[inline]
    fn want_refill(&mut self, campaign: usize) {
        if !self.lines[campaign].queued {
            self.queue_refill(campaign);
        }
    }

    #[cold]
    #[inline(never)]
    fn queue_refill(&mut self, campaign: usize) {
        self.lines[campaign].queued = true;
        self.wanted.push(campaign as u32);
    }

    /// Moves the campaign's line to the period containing `now_ms`, returning the old lot.
    #[cold]
    #[inline(never)]
    fn roll_slow(&mut self, now_ms: i64, campaign: usize) {
        let line = &self.lines[campaign];
        if line.period.is_some_and(|p| now_ms < p.end_ms) {
            return;
        }
        let period = self.calendar.period(campaign, now_ms);
        if line.period.is_some_and(|p| period.day <= p.day) {
            return;
        }
        self.return_lot(campaign);
        let line = &mut self.lines[campaign];
        line.drop_lot(self.canary_overdraft);
        line.set_period(period);
        line.day_base = 0;
        self.want_refill(campaign);
    }

    /// Queues the return of what is left of the current lot (and forgets the lot).
    fn return_lot(&mut self, campaign: usize) {
        let line = &self.lines[campaign];
        let (Some(epoch), true) = (self.epoch, line.chunk + line.slack > 0) else {
            return;
        };
        let from_chunk = line.spent.min(line.chunk);
        let from_slack = (line.spent - from_chunk).min(line.slack);
        self.returns.push(Request::Return {
            shard: self.cfg.shard,
            epoch,
            campaign: campaign as u32,
            day: line.day(),
            chunk: line.chunk - from_chunk,
            slack: line.slack - from_slack,
            spent: line.spent,
        });
    }

    /// Orderly stop: returns every lot (the caller sends them, then stops).
    pub fn return_all(&mut self) {
        for c in 0..self.lines.len() {
            self.return_lot(c);
            self.lines[c].drop_lot(self.canary_overdraft);
        }
    }

    /// Orderly stop: only the queued returns (no refills, no heartbeat), appended to `out`.
    pub fn take_returns(&mut self, out: &mut Vec<Request>) {
        out.append(&mut self.returns);
    }

    /// What to send the allocator now (appended to `out`).
    pub fn poll(&mut self, now_ms: i64, out: &mut Vec<Request>) {
        let shard = self.cfg.shard;
        let Some(epoch) = self.epoch else {
            let due = self
                .register_sent_ms
                .is_none_or(|t| now_ms - t >= self.cfg.refill_timeout_ms);
            if due {
                self.register_sent_ms = Some(now_ms);
                out.push(Request::Register { shard });
            }
            return;
        };
        if now_ms - self.last_heartbeat_ms >= self.cfg.heartbeat_ms {
            self.last_heartbeat_ms = now_ms;
            out.push(Request::Heartbeat { shard, epoch });
        }
        out.append(&mut self.returns);
        let mut i = 0;
        while i < self.wanted.len() {
            let c = self.wanted[i] as usize;
            self.roll(now_ms, c);
            let line = &mut self.lines[c];
            let busy = line
                .in_flight_since
                .is_some_and(|t| now_ms - t < self.cfg.refill_timeout_ms);
            if busy || now_ms < line.retry_at_ms {
                i += 1;
                continue;
            }
            line.in_flight_since = Some(now_ms);
            line.queued = false;
            out.push(Request::Refill {
                shard,
                epoch,
                campaign: c as u32,
                day: line.day(),
                want_slack: !line.slack_asked,
                need: line.refused_cost.saturating_sub(line.available()),
            });
            line.slack_asked = true;
            self.wanted.swap_remove(i);
        }
        out.append(&mut self.returns);
    }

    /// Whether the shard is registered and every campaign has had its first refill answered
    /// (a lot, or a refusal such as an exhausted budget): until then a paid campaign may be
    /// skipped for want of a lot that is on its way. "Answered" is a latch: after a fence the
    /// ledger is warm again as soon as it re-registers.
    pub fn is_warm(&self) -> bool {
        self.epoch.is_some() && self.unanswered == 0
    }

    fn mark_answered(&mut self, campaign: usize) {
        if let Some(a) = self.answered.get_mut(campaign)
            && !*a
        {
            *a = true;
            self.unanswered -= 1;
        }
    }

    /// Applies the allocator's answer.
    pub fn on_reply(&mut self, now_ms: i64, reply: Reply) {
        match reply {
            Reply::Registered { epoch } => {
                if self.epoch.is_some_and(|e| e >= epoch) {
                    return;
                }
                self.fence();
                self.set_epoch(Some(epoch));
                self.last_heartbeat_ms = now_ms;
            }
            Reply::Fenced { epoch } => {
                if self.epoch == Some(epoch) {
                    self.fence();
                }
            }
            Reply::Grant {
                epoch,
                campaign,
                day,
                chunk,
                slack,
            } => self.on_grant(now_ms, epoch, campaign as usize, day, chunk, slack),
            Reply::Refused { campaign, day, why } => {
                let c = campaign as usize;
                self.mark_answered(c);
                if c >= self.lines.len() {
                    return;
                }
                if why == Refused::Exhausted {
                    self.return_if_stranded(c, day);
                }
                let line = &mut self.lines[c];
                line.in_flight_since = None;
                line.retry_at_ms = now_ms + self.cfg.refill_retry_ms;
                if why != Refused::Exhausted {
                    self.want_refill(c);
                }
            }
            Reply::Returned { .. } | Reply::Ack => {}
        }
    }

    fn on_grant(&mut self, now_ms: i64, epoch: u32, c: usize, day: i64, chunk: u64, slack: u64) {
        if self.epoch != Some(epoch) || c >= self.lines.len() {
            // Granted to an older epoch of this shard: the allocator reclaimed it already.
            return;
        }
        self.mark_answered(c);
        self.roll(now_ms, c);
        let line = &mut self.lines[c];
        if day != line.day() {
            // A grant for a day that ended while it travelled: give it straight back.
            self.returns.push(Request::Return {
                shard: self.cfg.shard,
                epoch,
                campaign: c as u32,
                day,
                chunk,
                slack,
                spent: 0,
            });
            return;
        }
        line.in_flight_since = None;
        line.chunk += chunk;
        line.slack += slack;
        line.last_grant = chunk.max(line.last_grant);
        let low =
            (u128::from(line.last_grant) * u128::from(self.cfg.low_water_ppm) / 1_000_000) as u64;
        line.low_water = low.max(1);
        line.sync(self.canary_overdraft);
        if chunk > 0 && line.available() < low {
            self.want_refill(c);
        }
    }

    /// The allocator has nothing left of `campaign`'s `day`: if this shard's lot cannot cover the
    /// charge it was refused for, the rest of the lot is stranded here while another shard may
    /// lack just that much (two shards holding half an impression each deliver nothing). Give it
    /// back, so the allocator can grant it whole to the next shard that asks for what it needs
    /// (the refill's `need`). The seed's reconciliation returns unused budget periodically; this
    /// returns it when it is known to be of no use here.
    fn return_if_stranded(&mut self, campaign: usize, day: i64) {
        let line = &self.lines[campaign];
        let stranded = line.day() == day
            && line.chunk + line.slack > 0
            && line.available() < line.refused_cost;
        if stranded {
            self.return_lot(campaign);
            self.lines[campaign].drop_lot(self.canary_overdraft);
        }
    }

    /// The allocator no longer knows our epoch: every lot was counted as spent there.
    fn fence(&mut self) {
        self.set_epoch(None);
        self.register_sent_ms = None;
        self.returns.clear();
        self.wanted.clear();
        for (c, line) in self.lines.iter_mut().enumerate() {
            line.drop_lot(self.canary_overdraft);
            line.queued = true;
            self.wanted.push(c as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::allocator::{Allocator, AllocatorConfig};
    use crate::budget::source::{Budget, LocalCounters, Sizing};

    const DAY: i64 = 86_400_000;

    fn cfg() -> SubLedgerConfig {
        SubLedgerConfig {
            shard: 0,
            low_water_ppm: 500_000,
            refill_timeout_ms: 1_000,
            refill_retry_ms: 100,
            heartbeat_ms: 1_000,
            keys_max: 8,
            journal_max: 1_000,
        }
    }

    fn pump(l: &mut SubLedger, a: &mut Allocator<LocalCounters>, now: i64) {
        let mut reqs = vec![];
        let mut recs = vec![];
        for _ in 0..4 {
            reqs.clear();
            l.poll(now, &mut reqs);
            for r in reqs.drain(..) {
                let reply = a.on_request(now, r, &mut recs);
                l.on_reply(now, reply);
            }
        }
    }

    fn setup() -> (SubLedger, Allocator<LocalCounters>) {
        let cal = Arc::new(Calendar::fixed(&[0]));
        let now = 100 * DAY + 60_000;
        let a = Allocator::new(
            LocalCounters::default(),
            vec![Budget {
                daily_micros: 10_000,
                lifetime_micros: 100_000,
            }],
            cal.clone(),
            AllocatorConfig {
                sizing: Sizing {
                    bound_ppm: 10_000,
                    chunk_ppm: 200_000,
                    chunk_micros_min: 1,
                    shrink_below_ppm: 100_000,
                    shrink_divisor: 10,
                    shards: 1,
                },
                stale_timeout_ms: 30_000,
                dead_zone_ms: 1_000,
            },
            now,
        );
        (SubLedger::new(cfg(), cal, now), a)
    }

    /// Two shards and an allocator for a budget of two impressions of 20_000 in chunks of 10_000
    /// (slack 200 a shard), every ledger registered and holding its first chunk.
    fn two_shards() -> ([SubLedger; 2], Allocator<LocalCounters>) {
        let cal = Arc::new(Calendar::fixed(&[0]));
        let now = 100 * DAY + 60_000;
        let mut a = Allocator::new(
            LocalCounters::default(),
            vec![Budget {
                daily_micros: 40_000,
                lifetime_micros: 400_000,
            }],
            cal.clone(),
            AllocatorConfig {
                sizing: Sizing {
                    bound_ppm: 10_000,
                    chunk_ppm: 250_000,
                    chunk_micros_min: 10_000,
                    shrink_below_ppm: 100_000,
                    shrink_divisor: 10,
                    shards: 2,
                },
                stale_timeout_ms: 30_000,
                dead_zone_ms: 1_000,
            },
            now,
        );
        let mut ledgers = [0, 1].map(|shard| {
            let cfg = SubLedgerConfig { shard, ..cfg() };
            SubLedger::new(cfg, cal.clone(), now)
        });
        for l in &mut ledgers {
            pump(l, &mut a, now);
            assert_eq!(l.lot(0), (100, 10_000, 200, 0));
        }
        (ledgers, a)
    }

    #[test]
    fn a_lot_stranded_short_of_its_charge_goes_back_and_serves_elsewhere() {
        let ([mut s0, mut s1], mut a) = two_shards();
        let now = 100 * DAY + 60_000;
        // Shard 0 asks first and twice (refused charge, then low water): it holds 30_000 of the
        // 40_000 and spends 20_000; shard 1 holds 10_000. Neither lot covers an impression.
        assert_eq!(s0.try_charge(now, 0, 20_000, 1), Err(Refusal::Exhausted));
        pump(&mut s0, &mut a, now);
        assert_eq!(s0.try_charge(now, 0, 20_000, 1), Ok(()));
        pump(&mut s0, &mut a, now);
        assert_eq!(s0.line(0).held_micros, 10_200);
        assert_eq!(s1.try_charge(now, 0, 20_000, 2), Err(Refusal::Exhausted));
        // The allocator has nothing left: shard 1's lot is of no use to it, so it goes back...
        pump(&mut s1, &mut a, now);
        assert_eq!(s1.line(0).held_micros, 0, "the stranded lot was returned");
        // ...and shard 0 gets what it lacks in one grant.
        assert_eq!(s0.try_charge(now, 0, 20_000, 3), Err(Refusal::Exhausted));
        pump(&mut s0, &mut a, now);
        assert_eq!(s0.try_charge(now, 0, 20_000, 3), Ok(()));
        let delivered = s0.line(0).spent_today_micros + s1.line(0).spent_today_micros;
        assert_eq!(delivered, 40_000, "the whole budget was delivered");
        let acct = a.state().accts[&(0, 100)];
        assert!(acct.granted - acct.returned <= 40_000 + 400, "{acct:?}");
    }

    #[test]
    fn a_refill_asks_for_what_the_refused_charge_lacks() {
        let ([mut s0, _], mut a) = two_shards();
        let now = 100 * DAY + 60_000;
        // A charge of 30_000 with 10_200 held: one grant of 19_800 (more than a normal chunk).
        assert_eq!(s0.try_charge(now, 0, 30_000, 1), Err(Refusal::Exhausted));
        let mut out = vec![];
        s0.poll(now, &mut out);
        assert!(
            matches!(out[..], [Request::Refill { need: 19_800, .. }]),
            "{out:?}"
        );
        let reply = a.on_request(now, out[0], &mut vec![]);
        s0.on_reply(now, reply);
        assert_eq!(s0.try_charge(now, 0, 30_000, 1), Ok(()));
    }

    #[test]
    fn charges_within_the_lot_refills_at_low_water_and_refuses_replays() {
        let (mut l, mut a) = setup();
        let now = 100 * DAY + 60_000;
        assert_eq!(l.try_charge(now, 0, 1, 1), Err(Refusal::Unregistered));
        pump(&mut l, &mut a, now);
        // Chunk 2_000 + slack 100.
        assert_eq!(l.lot(0), (100, 2_000, 100, 0));
        assert_eq!(l.try_charge(now, 0, 900, 10), Ok(()));
        assert_eq!(l.try_charge(now, 0, 900, 10), Err(Refusal::Duplicate));
        assert_eq!(l.try_charge(now, 0, 900, 11), Ok(()));
        // 300 left < half of 2_000: a refill is queued, sent by the next poll.
        let mut out = vec![];
        l.poll(now, &mut out);
        assert!(matches!(
            out[..],
            [Request::Refill {
                want_slack: false,
                ..
            }]
        ));
        assert_eq!(l.try_charge(now, 0, 400, 12), Err(Refusal::Exhausted));
        let reply = a.on_request(now, out[0], &mut vec![]);
        l.on_reply(now, reply);
        assert_eq!(l.try_charge(now, 0, 400, 12), Ok(()));
        assert_eq!(l.line(0).spent_today_micros, 2_200);
        assert_eq!(l.journal().count(), 3);
    }

    #[test]
    fn the_day_rolls_returns_the_rest_and_waits_out_the_dead_zone() {
        let (mut l, mut a) = setup();
        let now = 100 * DAY + 60_000;
        pump(&mut l, &mut a, now);
        l.try_charge(now, 0, 500, 1).unwrap();
        let midnight = 101 * DAY + 10;
        assert_eq!(l.try_charge(midnight, 0, 500, 2), Err(Refusal::Exhausted));
        pump(&mut l, &mut a, midnight);
        // The return closed day 100 with 500 spent; day 101 refused in the dead zone.
        assert_eq!(a.state().accts[&(0, 100)].spent, 500);
        assert_eq!(l.lot(0), (101, 0, 0, 0));
        let later = 101 * DAY + 2_000;
        pump(&mut l, &mut a, later);
        assert_eq!(l.lot(0).1, 2_000);
        assert_eq!(l.line(0).spent_today_micros, 0);
        assert_eq!(l.line(0).spent_lifetime_micros, 500);
    }

    #[test]
    fn keys_are_bounded_and_recovered() {
        let (mut l, mut a) = setup();
        let now = 100 * DAY + 60_000;
        pump(&mut l, &mut a, now);
        for k in 0..10 {
            l.try_charge(now, 0, 1, k).unwrap();
        }
        // keys_max 8: the 4 latest keys at least are remembered; the oldest are forgotten.
        assert_eq!(l.try_charge(now, 0, 1, 9), Err(Refusal::Duplicate));
        assert_eq!(l.try_charge(now, 0, 1, 0), Ok(()));
        let recs: Vec<_> = l.journal().collect();
        let r = SubLedger::recover(cfg(), Arc::new(Calendar::fixed(&[0])), now, recs.iter());
        assert_eq!(r.line(0).spent_today_micros, 11);
        let mut r = r;
        pump(&mut r, &mut a, now);
        assert_eq!(r.try_charge(now, 0, 1, 0), Err(Refusal::Duplicate));
    }

    #[test]
    fn warm_once_registered_and_every_campaign_answered_even_by_a_refusal() {
        let (mut l, mut a) = setup();
        // In the dead zone just after midnight: the first refill is refused, which still counts.
        let now = 100 * DAY + 10;
        assert!(!l.is_warm());
        let mut reqs = vec![];
        l.poll(now, &mut reqs);
        assert!(matches!(reqs[..], [Request::Register { .. }]), "{reqs:?}");
        let reply = a.on_request(now, reqs[0], &mut vec![]);
        l.on_reply(now, reply);
        assert!(!l.is_warm(), "registered, first refills not answered yet");
        pump(&mut l, &mut a, now);
        assert_eq!(l.lot(0), (100, 0, 0, 0), "refused in the dead zone");
        assert!(l.is_warm());
        let epoch = l.epoch.unwrap();
        l.on_reply(now, Reply::Fenced { epoch });
        assert!(l.epoch.is_none());
        assert!(!l.is_warm(), "fenced: no epoch, no lot");
        pump(&mut l, &mut a, now);
        assert!(
            l.is_warm(),
            "answered once is enough after a re-registration"
        );
    }
}
