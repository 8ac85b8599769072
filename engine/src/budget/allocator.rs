//! The allocator: one per host, holding every campaign's remaining budget (through its
//! [`BudgetSource`]) and the lots it granted to each shard.
//!
//! A pure state machine: [`Allocator::on_request`] and [`Allocator::tick`] take the time and an
//! input, decide, append ledger records to `out` and apply them. The caller writes the records to
//! the write-ahead log and commits them BEFORE delivering the reply, so a granted chunk is durable
//! before it can be spent. Recovery ([`Allocator::recover`]) replays the same records through the
//! same `apply`, so the recovered state is the state at the last commit. No I/O, no clock, no
//! randomness here: the engine drives it from shard 0's messages, the simulation from a seeded
//! scheduler.
//!
//! Accounting, asserted on every money move, per campaign and day:
//! `granted = returned + spent + reclaimed + outstanding`, and the source's net allocation
//! (`granted - returned`) equals `spent + reclaimed + outstanding`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::calendar::{Calendar, Period};
use super::record::{LedgerRecord, ShardNo};
use super::source::{Ask, Budget, BudgetSource, Sizing, Taken};

/// Messages a shard sends to the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The shard (re)started: reclaim what it held, give it a new epoch.
    Register { shard: ShardNo },
    /// Grant a chunk of `campaign`'s budget for local day `day`.
    Refill {
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        want_slack: bool,
        /// What the shard lacks for the charge it refused (0: a low-water refill): the chunk
        /// is at least this, within what remains.
        need: u64,
    },
    /// Give back unspent budget of a lot; `spent` is what the shard spent from it.
    Return {
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        chunk: u64,
        slack: u64,
        spent: u64,
    },
    /// Still alive (resets the stale-allocation timer).
    Heartbeat { shard: ShardNo, epoch: u32 },
}

impl Request {
    pub fn shard(&self) -> ShardNo {
        match *self {
            Request::Register { shard }
            | Request::Refill { shard, .. }
            | Request::Return { shard, .. }
            | Request::Heartbeat { shard, .. } => shard,
        }
    }
}

/// What a refill asks for besides a chunk: slack (the shard holds none for the day yet), and
/// the least chunk that lets it serve the charge it refused.
#[derive(Debug, Clone, Copy)]
struct Want {
    slack: bool,
    need: u64,
}

/// Why a refill got nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Within the dead zone around the campaign's local midnight.
    DeadZone,
    /// The request's day is not the campaign's current local day.
    WrongDay,
    /// Nothing left of the budget (daily or lifetime).
    Exhausted,
    /// The source is unreachable; retry later.
    Unavailable,
}

/// The allocator's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Registered {
        epoch: u32,
    },
    Grant {
        epoch: u32,
        campaign: u32,
        day: i64,
        chunk: u64,
        slack: u64,
    },
    Refused {
        campaign: u32,
        day: i64,
        why: Refused,
    },
    /// The return was applied (`false`: the lot was already reclaimed; nothing changed).
    Returned {
        applied: bool,
    },
    Ack,
    /// The request's `epoch` is stale: if the shard still runs under it, it must drop
    /// everything it holds and register again.
    Fenced {
        epoch: u32,
    },
}

/// Budget held by one shard for one campaign and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lot {
    pub epoch: u32,
    pub chunk: u64,
    pub slack: u64,
}

impl Lot {
    pub fn total(&self) -> u64 {
        self.chunk + self.slack
    }
}

/// Where the money of one campaign-day went, micros (chunk + slack together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acct {
    pub granted: u64,
    pub returned: u64,
    /// Reported spent by a shard that closed its lot.
    pub spent: u64,
    /// Counted as spent without a report (stale shard, crash, lost return).
    pub reclaimed: u64,
}

/// Allocator settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatorConfig {
    pub sizing: Sizing,
    /// A shard silent this long loses its lots (counted as spent) and is fenced.
    pub stale_timeout_ms: i64,
    /// No grant within this distance of a campaign's local midnight.
    pub dead_zone_ms: i64,
}

/// Durable state: exactly what the WAL's records rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocatorState {
    /// Current epoch per shard.
    pub epochs: Vec<u32>,
    /// (campaign, shard, day) -> lot.
    pub lots: BTreeMap<(u32, ShardNo, i64), Lot>,
    /// (campaign, day) -> accounting.
    pub accts: BTreeMap<(u32, i64), Acct>,
    /// Local day the allocator last saw per campaign.
    pub days: Vec<i64>,
}

impl AllocatorState {
    /// Outstanding (granted, not returned, spent or reclaimed) for a campaign-day.
    pub fn outstanding(&self, campaign: u32, day: i64) -> u64 {
        self.lots
            .range((campaign, 0, i64::MIN)..=(campaign, ShardNo::MAX, i64::MAX))
            .filter(|((_, _, d), _)| *d == day)
            .map(|(_, l)| l.total())
            .sum()
    }
}

pub struct Allocator<S: BudgetSource> {
    state: AllocatorState,
    source: S,
    budgets: Vec<Budget>,
    calendar: Arc<Calendar>,
    cfg: AllocatorConfig,
    /// Volatile: when each shard was last heard from.
    last_seen_ms: Vec<i64>,
    /// Volatile: each campaign's last computed local day (a time-zone conversion costs ~1 us; a
    /// period stays right until it ends).
    periods: Vec<Option<Period>>,
}

impl<S: BudgetSource> Allocator<S> {
    /// A fresh allocator (empty ledger). `budgets` and `calendar` are indexed by campaign.
    pub fn new(
        source: S,
        budgets: Vec<Budget>,
        calendar: Arc<Calendar>,
        cfg: AllocatorConfig,
        now_ms: i64,
    ) -> Self {
        assert_eq!(budgets.len(), calendar.len(), "one time zone per campaign");
        let shards = cfg.sizing.shards as usize;
        // Filled by PeriodRoll records, so recovery rebuilds the same value.
        let days = vec![i64::MIN; budgets.len()];
        let budgets_len = budgets.len();
        Allocator {
            state: AllocatorState {
                epochs: vec![0; shards],
                days,
                ..AllocatorState::default()
            },
            source,
            budgets,
            calendar,
            cfg,
            last_seen_ms: vec![now_ms; shards],
            periods: vec![None; budgets_len],
        }
    }

    /// Rebuilds the allocator from the records of its WAL (in order), replaying them into the
    /// source too. Lots stay outstanding: call [`Allocator::reclaim_all`] when every shard
    /// restarted with the process.
    pub fn recover<'a>(
        source: S,
        budgets: Vec<Budget>,
        calendar: Arc<Calendar>,
        cfg: AllocatorConfig,
        now_ms: i64,
        records: impl IntoIterator<Item = &'a LedgerRecord>,
    ) -> Self {
        let mut a = Self::new(source, budgets, calendar, cfg, now_ms);
        for r in records {
            a.source.replay(r);
            a.apply(r);
        }
        a
    }

    /// Rebuilds the allocator from a snapshot of its state and source (a compacted WAL), then
    /// replays the records that follow the snapshot. Panics if the snapshot does not fit the
    /// configuration (a caller checks shard and campaign counts first).
    #[allow(clippy::too_many_arguments)]
    pub fn restore<'a>(
        source: S,
        state: AllocatorState,
        budgets: Vec<Budget>,
        calendar: Arc<Calendar>,
        cfg: AllocatorConfig,
        now_ms: i64,
        records: impl IntoIterator<Item = &'a LedgerRecord>,
    ) -> Self {
        let mut a = Self::new(source, budgets, calendar, cfg, now_ms);
        assert_eq!(
            state.epochs.len(),
            a.state.epochs.len(),
            "snapshot shard count"
        );
        assert_eq!(
            state.days.len(),
            a.state.days.len(),
            "snapshot campaign count"
        );
        a.state = state;
        for r in records {
            a.source.replay(r);
            a.apply(r);
        }
        a
    }

    pub fn state(&self) -> &AllocatorState {
        &self.state
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    pub fn config(&self) -> &AllocatorConfig {
        &self.cfg
    }

    /// Handles one request from a shard; records for the WAL go to `out`.
    pub fn on_request(&mut self, now_ms: i64, req: Request, out: &mut Vec<LedgerRecord>) -> Reply {
        let shard = req.shard();
        let Some(&epoch_now) = self.state.epochs.get(usize::from(shard)) else {
            return Reply::Fenced { epoch: u32::MAX };
        };
        self.last_seen_ms[usize::from(shard)] = now_ms;
        match req {
            Request::Register { shard } => {
                // Fence first, then reclaim: any prefix of these records that survives a crash
                // is consistent (lots of older epochs are reclaimed by the next tick).
                self.emit(
                    LedgerRecord::Register {
                        shard,
                        epoch: epoch_now + 1,
                    },
                    out,
                );
                self.reclaim_shard(shard, |_| true, out);
                Reply::Registered {
                    epoch: epoch_now + 1,
                }
            }
            Request::Heartbeat { epoch, .. } if epoch == epoch_now => Reply::Ack,
            Request::Refill {
                epoch,
                campaign,
                day,
                want_slack,
                need,
                ..
            } if epoch == epoch_now => {
                let want = Want {
                    slack: want_slack,
                    need,
                };
                self.refill(now_ms, shard, epoch, campaign, day, want, out)
            }
            Request::Return {
                epoch,
                campaign,
                day,
                chunk,
                slack,
                spent,
                ..
            } if epoch == epoch_now => {
                let lot = self.state.lots.get(&(campaign, shard, day));
                if !lot.is_some_and(|l| l.chunk >= chunk && l.slack >= slack) {
                    return Reply::Returned { applied: false };
                }
                if self
                    .source
                    .give_back(campaign, day, Taken { chunk, slack })
                    .is_err()
                {
                    // The counter store is unreachable: keep the lot; it is reclaimed (counted
                    // as spent) later. Under-delivery, never over-delivery.
                    return Reply::Returned { applied: false };
                }
                self.emit(
                    LedgerRecord::Return {
                        shard,
                        epoch,
                        campaign,
                        day,
                        chunk,
                        slack,
                        spent,
                    },
                    out,
                );
                Reply::Returned { applied: true }
            }
            Request::Heartbeat { epoch, .. }
            | Request::Refill { epoch, .. }
            | Request::Return { epoch, .. } => Reply::Fenced { epoch },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn refill(
        &mut self,
        now_ms: i64,
        shard: ShardNo,
        epoch: u32,
        campaign: u32,
        day: i64,
        want: Want,
        out: &mut Vec<LedgerRecord>,
    ) -> Reply {
        let refused = |why| Reply::Refused { campaign, day, why };
        let c = campaign as usize;
        if c >= self.budgets.len() {
            return refused(Refused::Exhausted);
        }
        let period = self.period(c, now_ms);
        if period.day > self.state.days[c] {
            self.emit(
                LedgerRecord::PeriodRoll {
                    campaign,
                    day: period.day,
                },
                out,
            );
        }
        if day != period.day {
            return refused(Refused::WrongDay);
        }
        if period.in_dead_zone(now_ms, self.cfg.dead_zone_ms) {
            return refused(Refused::DeadZone);
        }
        if self
            .state
            .lots
            .get(&(campaign, shard, day))
            .is_some_and(|l| l.epoch < epoch)
        {
            self.reclaim_lot(campaign, shard, day, out);
        }
        let ask = Ask {
            campaign,
            day,
            budget: self.budgets[c],
            want_slack: want.slack,
            need: want.need,
        };
        let t = match self.source.take(&ask, &self.cfg.sizing) {
            Ok(t) => t,
            Err(_) => return refused(Refused::Unavailable),
        };
        if t.chunk == 0 && t.slack == 0 {
            return refused(Refused::Exhausted);
        }
        self.emit(
            LedgerRecord::Grant {
                shard,
                epoch,
                campaign,
                day,
                chunk: t.chunk,
                slack: t.slack,
            },
            out,
        );
        Reply::Grant {
            epoch,
            campaign,
            day,
            chunk: t.chunk,
            slack: t.slack,
        }
    }

    /// Periodic: reclaims the lots of shards silent for `stale_timeout_ms` (and fences them), and
    /// lots of days that ended more than `stale_timeout_ms` ago (their returns were lost).
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<LedgerRecord>) {
        let stale = self.cfg.stale_timeout_ms;
        for shard in 0..self.state.epochs.len() {
            let holds = self
                .state
                .lots
                .keys()
                .any(|&(_, s, _)| usize::from(s) == shard);
            if holds && now_ms - self.last_seen_ms[shard] > stale {
                let s = shard as ShardNo;
                let epoch = self.state.epochs[shard] + 1;
                self.emit(LedgerRecord::Register { shard: s, epoch }, out);
                self.reclaim_shard(s, |_| true, out);
            }
        }
        // Lots of fenced epochs (a crash tore the reclaims that followed a fence), and lots of
        // days that ended `stale_timeout_ms` ago (their returns were lost).
        for c in 0..self.budgets.len() {
            self.period(c, now_ms);
        }
        let periods = &self.periods;
        let ended: Vec<(u32, ShardNo, i64)> = self
            .state
            .lots
            .iter()
            .filter(|&(&(c, s, day), lot)| {
                let p = periods[c as usize].expect("refreshed above");
                lot.epoch < self.state.epochs[usize::from(s)]
                    || (day < p.day && now_ms - p.start_ms > stale)
            })
            .map(|(k, _)| *k)
            .collect();
        for (c, s, d) in ended {
            self.reclaim_lot(c, s, d, out);
        }
    }

    /// Campaign `c`'s local day at `now_ms` (cached until the period ends).
    fn period(&mut self, c: usize, now_ms: i64) -> Period {
        match self.periods[c] {
            Some(p) if p.start_ms <= now_ms && now_ms < p.end_ms => p,
            _ => {
                let p = self.calendar.period(c, now_ms);
                self.periods[c] = Some(p);
                p
            }
        }
    }

    /// Counts every outstanding lot as spent (the process restarted: every shard is new).
    pub fn reclaim_all(&mut self, out: &mut Vec<LedgerRecord>) {
        let keys: Vec<_> = self.state.lots.keys().copied().collect();
        for (c, s, d) in keys {
            self.reclaim_lot(c, s, d, out);
        }
    }

    fn reclaim_shard(
        &mut self,
        shard: ShardNo,
        pick: impl Fn(i64) -> bool,
        out: &mut Vec<LedgerRecord>,
    ) {
        let keys: Vec<_> = self
            .state
            .lots
            .keys()
            .copied()
            .filter(|&(_, s, d)| s == shard && pick(d))
            .collect();
        for (c, s, d) in keys {
            self.reclaim_lot(c, s, d, out);
        }
    }

    fn reclaim_lot(
        &mut self,
        campaign: u32,
        shard: ShardNo,
        day: i64,
        out: &mut Vec<LedgerRecord>,
    ) {
        let lot = self.state.lots[&(campaign, shard, day)];
        self.emit(
            LedgerRecord::Reclaim {
                shard,
                epoch: lot.epoch,
                campaign,
                day,
                chunk: lot.chunk,
                slack: lot.slack,
            },
            out,
        );
    }

    fn emit(&mut self, r: LedgerRecord, out: &mut Vec<LedgerRecord>) {
        self.apply(&r);
        out.push(r);
    }

    /// Applies one record to the state (live and on recovery: the same code).
    fn apply(&mut self, r: &LedgerRecord) {
        let st = &mut self.state;
        match *r {
            LedgerRecord::Register { shard, epoch } => {
                let e = &mut st.epochs[usize::from(shard)];
                assert!(epoch > *e, "epoch of shard {shard} must grow");
                *e = epoch;
            }
            LedgerRecord::PeriodRoll { campaign, day } => {
                let d = &mut st.days[campaign as usize];
                *d = (*d).max(day);
            }
            LedgerRecord::Grant {
                shard,
                epoch,
                campaign,
                day,
                chunk,
                slack,
            } => {
                let lot = st.lots.entry((campaign, shard, day)).or_default();
                lot.epoch = epoch;
                lot.chunk += chunk;
                lot.slack += slack;
                st.accts.entry((campaign, day)).or_default().granted += chunk + slack;
                self.check(campaign, day);
            }
            LedgerRecord::Return {
                shard,
                campaign,
                day,
                chunk,
                slack,
                spent,
                ..
            } => {
                let key = (campaign, shard, day);
                let lot = st.lots.get_mut(&key).expect("return of a known lot");
                assert!(
                    lot.chunk >= chunk && lot.slack >= slack,
                    "return exceeds its lot"
                );
                lot.chunk -= chunk;
                lot.slack -= slack;
                let acct = st.accts.entry((campaign, day)).or_default();
                acct.returned += chunk + slack;
                if lot.total() == spent {
                    acct.spent += spent;
                    st.lots.remove(&key);
                }
                self.check(campaign, day);
            }
            LedgerRecord::Reclaim {
                shard,
                campaign,
                day,
                chunk,
                slack,
                ..
            } => {
                let lot = st
                    .lots
                    .remove(&(campaign, shard, day))
                    .expect("reclaim of a known lot");
                assert_eq!(
                    (lot.chunk, lot.slack),
                    (chunk, slack),
                    "reclaim of the whole lot"
                );
                st.accts.entry((campaign, day)).or_default().reclaimed += chunk + slack;
                self.check(campaign, day);
            }
            LedgerRecord::Spend { .. } => {}
        }
    }

    /// The allocator's accounting identity for one campaign-day.
    fn check(&self, campaign: u32, day: i64) {
        let a = self
            .state
            .accts
            .get(&(campaign, day))
            .copied()
            .unwrap_or_default();
        let out = self.state.outstanding(campaign, day);
        assert_eq!(
            a.granted,
            a.returned + a.spent + a.reclaimed + out,
            "granted = returned + spent + reclaimed + outstanding (campaign {campaign} day {day})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::source::LocalCounters;

    const DAY: i64 = 86_400_000;

    fn alloc(shards: u64) -> Allocator<LocalCounters> {
        let cfg = AllocatorConfig {
            sizing: Sizing {
                bound_ppm: 10_000,
                chunk_ppm: 100_000,
                chunk_micros_min: 1,
                shrink_below_ppm: 100_000,
                shrink_divisor: 10,
                shards,
            },
            stale_timeout_ms: 10_000,
            dead_zone_ms: 1_000,
        };
        let budgets = vec![Budget {
            daily_micros: 1_000_000,
            lifetime_micros: 5_000_000,
        }];
        Allocator::new(
            LocalCounters::default(),
            budgets,
            Arc::new(Calendar::fixed(&[0])),
            cfg,
            100 * DAY + 1,
        )
    }

    fn refill(epoch: u32, day: i64) -> Request {
        Request::Refill {
            shard: 0,
            epoch,
            campaign: 0,
            day,
            want_slack: true,
            need: 0,
        }
    }

    #[test]
    fn grants_returns_reclaims_and_fences() {
        let mut a = alloc(2);
        let mut out = vec![];
        let now = 100 * DAY + 10_000;
        assert_eq!(
            a.on_request(now, Request::Register { shard: 0 }, &mut out),
            Reply::Registered { epoch: 1 }
        );
        assert_eq!(
            a.on_request(now, refill(1, 100), &mut out),
            Reply::Grant {
                epoch: 1,
                campaign: 0,
                day: 100,
                chunk: 100_000,
                slack: 5_000
            }
        );
        assert_eq!(
            a.on_request(now, refill(1, 99), &mut out),
            Reply::Refused {
                campaign: 0,
                day: 99,
                why: Refused::WrongDay
            }
        );
        assert!(matches!(
            a.on_request(101 * DAY - 10, refill(1, 100), &mut out),
            Reply::Refused {
                why: Refused::DeadZone,
                ..
            }
        ));
        // Return 40_000 unspent of the chunk, 5_000 of the slack; 60_000 spent closes the lot.
        let ret = Request::Return {
            shard: 0,
            epoch: 1,
            campaign: 0,
            day: 100,
            chunk: 40_000,
            slack: 5_000,
            spent: 60_000,
        };
        assert_eq!(
            a.on_request(now, ret, &mut out),
            Reply::Returned { applied: true }
        );
        assert_eq!(a.state().accts[&(0, 100)].spent, 60_000);
        assert_eq!(a.source().used(0, 100).day_chunk, 60_000);
        // A second grant, then silence: reclaimed as spent and fenced.
        a.on_request(now, refill(1, 100), &mut out);
        a.tick(now + 10_001, &mut out);
        assert_eq!(a.state().accts[&(0, 100)].reclaimed, 100_000 + 5_000);
        assert_eq!(
            a.on_request(now, refill(1, 100), &mut out),
            Reply::Fenced { epoch: 1 }
        );
        // Recovery from the records rebuilds the same state and counters.
        let b = Allocator::recover(
            LocalCounters::default(),
            a.budgets().to_vec(),
            Arc::new(Calendar::fixed(&[0])),
            *a.config(),
            now,
            out.iter(),
        );
        assert_eq!(b.state(), a.state());
        assert_eq!(b.source(), a.source());
    }

    #[test]
    fn lots_of_ended_days_are_reclaimed_after_the_timeout() {
        let mut a = alloc(1);
        let mut out = vec![];
        a.on_request(100 * DAY + 5_000, Request::Register { shard: 0 }, &mut out);
        a.on_request(100 * DAY + 5_000, refill(1, 100), &mut out);
        for t in [101 * DAY + 5_000, 101 * DAY + 9_000] {
            a.on_request(t, Request::Heartbeat { shard: 0, epoch: 1 }, &mut out);
            a.tick(t, &mut out);
        }
        assert_eq!(a.state().outstanding(0, 100), 110_000);
        a.on_request(
            101 * DAY + 10_500,
            Request::Heartbeat { shard: 0, epoch: 1 },
            &mut out,
        );
        a.tick(101 * DAY + 10_500, &mut out);
        assert_eq!(a.state().outstanding(0, 100), 0);
        assert_eq!(a.state().accts[&(0, 100)].reclaimed, 110_000);
    }
}
