//! The shard's budget sub-ledger (static split).
//!
//! Each campaign's daily and lifetime budgets are split evenly across shards at start; a shard
//! spends only its own share, so no shard can make a campaign overspend and no cross-core
//! coordination is needed. This is the foundation's placeholder for the allocator-backed
//! sub-ledger of the budget issue, which keeps this interface (`try_charge`).
//!
//! Invariant, asserted on every charge: for every campaign, spent today <= daily share and
//! spent in total <= lifetime share; summed over shards, spend <= budget.

use crate::catalog::Catalog;

#[derive(Debug, Clone, Default)]
struct Share {
    daily_share_micros: u64,
    lifetime_share_micros: u64,
    spent_today_micros: u64,
    spent_lifetime_micros: u64,
    impressions: u64,
}

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    DailyExhausted,
    LifetimeExhausted,
}

/// Spend figures of one campaign on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpendLine {
    pub daily_share_micros: u64,
    pub spent_today_micros: u64,
    pub spent_lifetime_micros: u64,
    pub impressions: u64,
}

#[derive(Debug, Clone)]
pub struct SubLedger {
    day: i64,
    shares: Vec<Share>,
}

/// Shard `shard`'s even share of `total` over `shards`; the remainder goes to the first shards.
pub fn even_share(total: u64, shard: usize, shards: usize) -> u64 {
    let n = shards as u64;
    total / n + u64::from((shard as u64) < total % n)
}

impl SubLedger {
    pub fn new(catalog: &Catalog, shard: usize, shards: usize, day: i64) -> SubLedger {
        assert!(shards > 0 && shard < shards, "shard {shard} of {shards}");
        let shares = catalog
            .campaigns
            .iter()
            .map(|c| Share {
                daily_share_micros: even_share(c.spec.budget_daily_micros, shard, shards),
                lifetime_share_micros: even_share(c.spec.budget_lifetime_micros, shard, shards),
                ..Share::default()
            })
            .collect();
        SubLedger { day, shares }
    }

    /// Charges `cost_micros` to campaign `idx` if its share allows; the day rolls the daily spend.
    pub fn try_charge(&mut self, idx: usize, cost_micros: u64, day: i64) -> Result<(), Refusal> {
        self.roll_day(day);
        let s = &mut self.shares[idx];
        if s.spent_today_micros.saturating_add(cost_micros) > s.daily_share_micros {
            return Err(Refusal::DailyExhausted);
        }
        if s.spent_lifetime_micros.saturating_add(cost_micros) > s.lifetime_share_micros {
            return Err(Refusal::LifetimeExhausted);
        }
        s.spent_today_micros += cost_micros;
        s.spent_lifetime_micros += cost_micros;
        s.impressions += 1;
        assert!(
            s.spent_today_micros <= s.daily_share_micros
                && s.spent_lifetime_micros <= s.lifetime_share_micros,
            "budget invariant broken for campaign index {idx}"
        );
        Ok(())
    }

    fn roll_day(&mut self, day: i64) {
        if day > self.day {
            self.day = day;
            for s in &mut self.shares {
                s.spent_today_micros = 0;
            }
        }
    }

    pub fn line(&self, idx: usize) -> SpendLine {
        let s = &self.shares[idx];
        SpendLine {
            daily_share_micros: s.daily_share_micros,
            spent_today_micros: s.spent_today_micros,
            spent_lifetime_micros: s.spent_lifetime_micros,
            impressions: s.impressions,
        }
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            "advertisers": [{"id": 1, "name": "A", "domain": "a.example"}],
            "campaigns": campaigns,
            "creatives": [{"id": 1, "format": "native", "adm": "n"}]
        });
        Catalog::from_slice("t", &serde_json::to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn shares_sum_to_the_budget() {
        for total in [0u64, 1, 7, 1_000_003] {
            for n in 1..6 {
                let sum: u64 = (0..n).map(|s| even_share(total, s, n)).sum();
                assert_eq!(sum, total);
            }
        }
    }

    #[test]
    fn refuses_past_the_share_and_resets_daily() {
        let cat = catalog(&[1000]);
        let mut l = SubLedger::new(&cat, 0, 2, 10);
        assert_eq!(l.try_charge(0, 400, 10), Ok(()));
        assert_eq!(l.try_charge(0, 200, 10), Err(Refusal::DailyExhausted));
        assert_eq!(l.try_charge(0, 100, 10), Ok(()));
        assert_eq!(l.try_charge(0, 500, 11), Ok(()));
        assert_eq!(l.try_charge(0, 500, 12), Err(Refusal::LifetimeExhausted));
        assert_eq!(l.line(0).spent_lifetime_micros, 1000);
    }

    proptest! {
        /// Any interleaving of charges over any number of shards never spends past a budget.
        #[test]
        fn spend_never_exceeds_budget(
            daily in proptest::collection::vec(0u64..50_000, 1..5),
            shards in 1usize..5,
            charges in proptest::collection::vec((0usize..5, 0usize..5, 0u64..5_000, 0i64..3), 0..400),
        ) {
            let cat = catalog(&daily);
            let mut ledgers: Vec<_> = (0..shards).map(|s| SubLedger::new(&cat, s, shards, 0)).collect();
            let mut spent = vec![std::collections::HashMap::<i64, u64>::new(); daily.len()];
            let mut day = 0;
            for (shard, camp, cost, advance) in charges {
                day += advance / 2;
                let (shard, camp) = (shard % shards, camp % daily.len());
                if ledgers[shard].try_charge(camp, cost, day).is_ok() {
                    *spent[camp].entry(day).or_default() += cost;
                }
            }
            for (camp, days) in spent.iter().enumerate() {
                let total: u64 = days.values().sum();
                prop_assert!(total <= daily[camp] * 2, "lifetime overspend on {}", camp);
                for (d, s) in days {
                    prop_assert!(*s <= daily[camp], "daily overspend on {} day {}", camp, d);
                }
            }
        }
    }
}
