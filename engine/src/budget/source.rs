//! The allocator's global source of budget, behind a small trait ([`BudgetSource`]).
//!
//! Embedded default: [`LocalCounters`], per-campaign counters that the allocator's write-ahead
//! log rebuilds on recovery; it is the only implementation the allocator uses today. For more
//! than one host, `redis_source.rs` keeps such counters in Redis/Valkey and grants by an atomic
//! script with the same shrink rule (it is not behind this trait yet, and its script does not
//! take a refill's `need`). Either way the source only counts allocations; the ledger is the
//! WAL.
//!
//! The bound: chunks never exceed the budget (daily and lifetime), and slack (each shard's share
//! of the inaccuracy bound) never exceeds the bound, so everything a shard can spend,
//! `chunks + slack`, is at most `budget + bound`.

use std::collections::BTreeMap;

use super::record::LedgerRecord;

/// A campaign's budgets, micros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    pub daily_micros: u64,
    pub lifetime_micros: u64,
}

/// How chunks are sized (from `[budget]` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    /// Inaccuracy bound, parts per million of the budget (10_000 = 1 %).
    pub bound_ppm: u64,
    /// Normal chunk, parts per million of the daily budget.
    pub chunk_ppm: u64,
    /// Smallest chunk worth a message, micros (never more than what remains).
    pub chunk_micros_min: u64,
    /// Below this share of the daily budget remaining (ppm), chunks shrink to
    /// `remaining / (shards * shrink_divisor)` (seed Part 7: 10 % and 10).
    pub shrink_below_ppm: u64,
    pub shrink_divisor: u64,
    pub shards: u64,
}

impl Sizing {
    pub fn bound_of(&self, budget: u64) -> u64 {
        mul_ppm(budget, self.bound_ppm)
    }
}

/// `v * ppm / 1e6` without overflow.
pub fn mul_ppm(v: u64, ppm: u64) -> u64 {
    (u128::from(v) * u128::from(ppm) / 1_000_000) as u64
}

/// Net allocations of one campaign (grants minus returns; reclaims stay counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Used {
    pub day_chunk: u64,
    pub day_slack: u64,
    pub life_chunk: u64,
    pub life_slack: u64,
}

/// What one grant hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Taken {
    pub chunk: u64,
    pub slack: u64,
}

/// The chunk rule, shared by every source: what a grant may hand out given what is used.
pub fn grant_amounts(budget: Budget, s: &Sizing, used: Used, ask: &Ask) -> Taken {
    let rem_day = budget.daily_micros.saturating_sub(used.day_chunk);
    let rem_life = budget.lifetime_micros.saturating_sub(used.life_chunk);
    let rem = rem_day.min(rem_life);
    let normal = mul_ppm(budget.daily_micros, s.chunk_ppm).max(s.chunk_micros_min);
    let sized = if u128::from(rem_day) * 1_000_000
        < u128::from(budget.daily_micros) * u128::from(s.shrink_below_ppm)
    {
        (rem_day / (s.shards.max(1) * s.shrink_divisor.max(1))).max(s.chunk_micros_min)
    } else {
        normal
    };
    let chunk = sized.max(ask.need).min(rem);
    let slack = if ask.want_slack {
        let bound_day = s.bound_of(budget.daily_micros);
        let bound_life = s.bound_of(budget.lifetime_micros);
        (bound_day / s.shards.max(1))
            .min(bound_day.saturating_sub(used.day_slack))
            .min(bound_life.saturating_sub(used.life_slack))
    } else {
        0
    };
    Taken { chunk, slack }
}

/// One grant request to the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub campaign: u32,
    pub day: i64,
    pub budget: Budget,
    /// The shard holds no slack for this day yet.
    pub want_slack: bool,
    /// The least chunk that lets the shard serve the charge it refused (0: a low-water refill);
    /// granted only within what remains, like any chunk.
    pub need: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The remote counter store cannot be reached; retrying later may help.
    #[error("budget source unavailable: {0}")]
    Unavailable(String),
}

/// Where the allocator takes budget from.
pub trait BudgetSource {
    /// Atomically takes what [`grant_amounts`] allows and counts it as allocated.
    fn take(&mut self, ask: &Ask, sizing: &Sizing) -> Result<Taken, SourceError>;
    /// Gives back unspent budget of `day` (also reduces the lifetime counters).
    fn give_back(&mut self, campaign: u32, day: i64, returned: Taken) -> Result<(), SourceError>;
    /// Recovery: applies a grant or return read back from the WAL. The embedded source rebuilds
    /// its counters from these; a remote source keeps its own and ignores them.
    fn replay(&mut self, record: &LedgerRecord);
    /// Current net allocations of `campaign` on `day` (for checks and reports).
    fn used(&self, campaign: u32, day: i64) -> Used;
}

/// Per (campaign, local day) allocation, as a list for a WAL snapshot.
pub type DayCounters = Vec<((u32, i64), Taken)>;
/// Per campaign lifetime allocation, as a list for a WAL snapshot.
pub type LifeCounters = Vec<(u32, Taken)>;

/// The embedded source: counters in memory, rebuilt from the WAL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalCounters {
    day: BTreeMap<(u32, i64), Taken>,
    life: BTreeMap<u32, Taken>,
}

impl LocalCounters {
    fn add(&mut self, campaign: u32, day: i64, t: Taken) {
        if t == Taken::default() {
            return;
        }
        let d = self.day.entry((campaign, day)).or_default();
        d.chunk += t.chunk;
        d.slack += t.slack;
        let l = self.life.entry(campaign).or_default();
        l.chunk += t.chunk;
        l.slack += t.slack;
    }

    fn sub(&mut self, campaign: u32, day: i64, t: Taken) {
        let d = self.day.entry((campaign, day)).or_default();
        let l = self.life.entry(campaign).or_default();
        assert!(
            d.chunk >= t.chunk && d.slack >= t.slack && l.chunk >= t.chunk && l.slack >= t.slack,
            "return of {t:?} exceeds allocation of campaign {campaign} day {day}"
        );
        d.chunk -= t.chunk;
        d.slack -= t.slack;
        l.chunk -= t.chunk;
        l.slack -= t.slack;
    }

    /// The counters as lists (for a WAL snapshot): per (campaign, day) and per campaign.
    pub fn parts(&self) -> (DayCounters, LifeCounters) {
        (
            self.day.iter().map(|(k, v)| (*k, *v)).collect(),
            self.life.iter().map(|(k, v)| (*k, *v)).collect(),
        )
    }

    /// Counters rebuilt from [`LocalCounters::parts`].
    pub fn from_parts(day: DayCounters, life: LifeCounters) -> LocalCounters {
        LocalCounters {
            day: day.into_iter().collect(),
            life: life.into_iter().collect(),
        }
    }

    /// Drops day counters older than `day` (lifetime counters stay).
    pub fn forget_before(&mut self, day: i64) {
        self.day.retain(|&(_, d), _| d >= day);
    }
}

impl BudgetSource for LocalCounters {
    fn take(&mut self, ask: &Ask, sizing: &Sizing) -> Result<Taken, SourceError> {
        let t = grant_amounts(ask.budget, sizing, self.used(ask.campaign, ask.day), ask);
        self.add(ask.campaign, ask.day, t);
        let u = self.used(ask.campaign, ask.day);
        let b = ask.budget;
        assert!(
            t.chunk == 0 || (u.day_chunk <= b.daily_micros && u.life_chunk <= b.lifetime_micros),
            "chunk {t:?} pushed campaign {} past its budget",
            ask.campaign
        );
        assert!(
            t.slack == 0
                || (u.day_slack <= sizing.bound_of(b.daily_micros)
                    && u.life_slack <= sizing.bound_of(b.lifetime_micros)),
            "slack {t:?} pushed campaign {} past its bound",
            ask.campaign
        );
        Ok(t)
    }

    fn give_back(&mut self, campaign: u32, day: i64, returned: Taken) -> Result<(), SourceError> {
        self.sub(campaign, day, returned);
        Ok(())
    }

    fn replay(&mut self, record: &LedgerRecord) {
        match *record {
            LedgerRecord::Grant {
                campaign,
                day,
                chunk,
                slack,
                ..
            } => self.add(campaign, day, Taken { chunk, slack }),
            LedgerRecord::Return {
                campaign,
                day,
                chunk,
                slack,
                ..
            } => self.sub(campaign, day, Taken { chunk, slack }),
            _ => {}
        }
    }

    fn used(&self, campaign: u32, day: i64) -> Used {
        let d = self.day.get(&(campaign, day)).copied().unwrap_or_default();
        let l = self.life.get(&campaign).copied().unwrap_or_default();
        Used {
            day_chunk: d.chunk,
            day_slack: d.slack,
            life_chunk: l.chunk,
            life_slack: l.slack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing(shards: u64) -> Sizing {
        Sizing {
            bound_ppm: 10_000,
            chunk_ppm: 50_000,
            chunk_micros_min: 1,
            shrink_below_ppm: 100_000,
            shrink_divisor: 10,
            shards,
        }
    }

    #[test]
    fn chunks_shrink_near_exhaustion_and_stop_at_the_budget() {
        let b = Budget {
            daily_micros: 1_000_000,
            lifetime_micros: 10_000_000,
        };
        let mut src = LocalCounters::default();
        let ask = Ask {
            campaign: 1,
            day: 5,
            budget: b,
            want_slack: true,
            need: 0,
        };
        let first = src.take(&ask, &sizing(4)).unwrap();
        assert_eq!(
            first,
            Taken {
                chunk: 50_000,
                slack: 2_500
            }
        );
        let mut sizes = vec![];
        loop {
            let t = src
                .take(
                    &Ask {
                        want_slack: false,
                        ..ask
                    },
                    &sizing(4),
                )
                .unwrap();
            if t.chunk == 0 {
                break;
            }
            sizes.push(t.chunk);
        }
        // Normal chunks while >= 10 % remains (1 + 18 of them); then remaining / 40 each time.
        assert_eq!(sizes[17], 50_000);
        assert_eq!(sizes[18], 50_000 / 40);
        assert!(sizes.windows(2).skip(18).all(|w| w[1] <= w[0]));
        assert_eq!(src.used(1, 5).day_chunk, 1_000_000);
        src.give_back(
            1,
            5,
            Taken {
                chunk: 10,
                slack: 2_500,
            },
        )
        .unwrap();
        assert_eq!(src.used(1, 5).day_chunk, 999_990);
        assert_eq!(src.used(1, 5).life_slack, 0);
    }

    #[test]
    fn lifetime_caps_every_day() {
        let b = Budget {
            daily_micros: 1_000,
            lifetime_micros: 1_500,
        };
        let s = Sizing {
            chunk_ppm: 1_000_000,
            ..sizing(1)
        };
        let mut src = LocalCounters::default();
        let a = |day| Ask {
            campaign: 0,
            day,
            budget: b,
            want_slack: false,
            need: 0,
        };
        assert_eq!(src.take(&a(1), &s).unwrap().chunk, 1_000);
        assert_eq!(src.take(&a(2), &s).unwrap().chunk, 500);
        assert_eq!(src.take(&a(3), &s).unwrap().chunk, 0);
    }
}
