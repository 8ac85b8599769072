//! The unified first-price auction over internal candidates, run on the shard that owns the user.
//!
//! Per slot: select candidates, score them (pCTR -> eCPM), drop those under the reserve
//! (max of the request floor, the campaign floor and the global reserve), rank by eCPM (priority
//! then campaign id break ties), then walk the ranking and charge the first candidate whose budget
//! share allows it: if a budget is exhausted, the next bidder gets the slot. The winner pays its
//! own eCPM (first price). A campaign wins at most one slot per request. When nothing paid
//! qualifies, a house ad fills at price 0.
//!
//! Owns: ranking, reserves, budget fallback, house fill. Must not know: HTTP or OpenRTB encoding.

use std::time::Duration;

use crate::catalog::Catalog;
use crate::clock;
use crate::config::AuctionConfig;
use crate::intake::{AuctionJob, Slot};
use crate::ledger::{SubLedger, impression_key};
use crate::metrics::{NoBidReason, ShardMetrics, Stage, bump};
use crate::scoring::{ScoringRun, cost_per_impression_micros, ecpm_micros};
use crate::select::{Candidate, select_candidates};

/// A scored candidate.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    pub candidate: Candidate,
    pub pctr: f64,
    pub ecpm_micros: u64,
    pub priority: u8,
    pub campaign_id: u32,
}

/// One slot's winner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Win {
    /// Index into the job's slots.
    pub slot: usize,
    pub campaign: usize,
    pub creative: usize,
    /// The price paid (first price), CPM micros; 0 for house ads.
    pub price_cpm_micros: u64,
    pub pctr: f64,
    pub house: bool,
}

/// What the owner shard answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuctionResult {
    pub wins: Vec<Win>,
    /// Set when `wins` is empty.
    pub nobid: Option<NoBidReason>,
}

/// Buffers reused across requests on one shard.
#[derive(Debug, Default)]
pub struct Scratch {
    candidates: Vec<Candidate>,
    scored: Vec<Scored>,
    houses: Vec<Candidate>,
    won_campaigns: Vec<usize>,
    paid: Vec<Candidate>,
    pctrs: Vec<f64>,
    /// Candidates kept per slot for the next auctions when lower than `candidates_max`
    /// (0 = no extra cap); the shard's degradation level sets it.
    pub candidates_cap: usize,
}

/// Whether any slot had eligible candidates, and any above the floor (picks the no-bid reason).
#[derive(Debug, Default, Clone, Copy)]
struct SlotTally {
    eligible: bool,
    above_floor: bool,
}

/// Stage times summed over a request's slots. `mark` is the last clock read: each stage starts
/// where the previous one ended, so a slot costs four reads, not five.
struct StageClock {
    mark: clock::Instant,
    select: Duration,
    score: Duration,
    auction: Duration,
    budget: Duration,
}

/// Runs the auction for every slot of the job. The caller owns `ledger` and `scratch` (shard-local).
pub fn run_auction(
    job: &AuctionJob,
    catalog: &Catalog,
    ledger: &mut SubLedger,
    cfg: &AuctionConfig,
    scratch: &mut Scratch,
    m: &ShardMetrics,
    ml: &mut ScoringRun<'_>,
) -> AuctionResult {
    let mut result = AuctionResult::default();
    let mut clock = StageClock {
        mark: clock::now(),
        select: Duration::ZERO,
        score: Duration::ZERO,
        auction: Duration::ZERO,
        budget: Duration::ZERO,
    };
    if clock.mark - job.received >= Duration::from_millis(job.tmax_ms) {
        result.nobid = Some(NoBidReason::DeadlineExceeded);
        return result;
    }
    scratch.won_campaigns.clear();
    // The budget's wall clock: read once per request, not per charge.
    let now_ms = crate::ledger::now_ms_coarse();
    let mut tally = SlotTally::default();
    for (i, slot) in job.slots.iter().enumerate() {
        let t = auction_slot(
            job, i, slot, catalog, ledger, cfg, scratch, m, ml, &mut clock, now_ms,
        );
        tally.eligible |= t.eligible;
        tally.above_floor |= t.above_floor;
        if let Some(win) = t.win {
            result.wins.push(win);
        }
    }
    m.record(Stage::Select, clock.select);
    // Scoring, the auction and the budget ran only for slots with eligible candidates: a request
    // without any would add near-zero times that only pull those stages' percentiles down.
    if tally.eligible {
        m.record(Stage::Score, clock.score);
        m.record(Stage::Auction, clock.auction);
        m.record(Stage::Budget, clock.budget);
    }
    if result.wins.is_empty() {
        result.nobid = Some(match (tally.eligible, tally.above_floor) {
            (false, _) => NoBidReason::NoEligibleCampaign,
            (true, false) => NoBidReason::BelowFloor,
            (true, true) => NoBidReason::BudgetExhausted,
        });
    }
    result
}

struct SlotOutcome {
    win: Option<Win>,
    eligible: bool,
    above_floor: bool,
}

#[allow(clippy::too_many_arguments)]
fn auction_slot(
    job: &AuctionJob,
    slot_index: usize,
    slot: &Slot,
    catalog: &Catalog,
    ledger: &mut SubLedger,
    cfg: &AuctionConfig,
    scratch: &mut Scratch,
    m: &ShardMetrics,
    ml: &mut ScoringRun<'_>,
    clock: &mut StageClock,
    now_ms: i64,
) -> SlotOutcome {
    let t0 = clock.mark;
    // The slot's idempotency key, once; its key-set line loads while selection and scoring run.
    let key = impression_key(&job.request_id, &slot.imp_id);
    ledger.prefetch(key);
    let cut = select_candidates(
        catalog,
        &job.ctx,
        slot,
        match scratch.candidates_cap {
            0 => cfg.candidates_max,
            cap => cap.min(cfg.candidates_max),
        },
        &mut scratch.candidates,
    );
    bump(&m.candidates_cut, cut as u64);
    let t1 = clock::now();
    if scratch.candidates.is_empty() {
        // Nothing eligible, not even a house line: no scoring, auction or charge to run.
        clock.select += t1 - t0;
        clock.mark = t1;
        return SlotOutcome {
            win: None,
            eligible: false,
            above_floor: false,
        };
    }
    score_candidates(catalog, job, slot, scratch, ml);
    let t2 = clock::now();
    let eligible = !scratch.scored.is_empty();
    let below = apply_reserve_and_rank(catalog, slot, cfg, &mut scratch.scored);
    ml.explore(&mut scratch.scored);
    bump(&m.below_floor_candidates, below as u64);
    let above_floor = !scratch.scored.is_empty();
    let t3 = clock::now();
    let charge = Charge {
        slot_index,
        key,
        now_ms,
    };
    let mut win = charge_first_affordable(charge, catalog, ledger, scratch, m);
    if win.is_none() && cfg.house_fill {
        win = pick_house(job, slot_index, scratch);
        bump(&m.impressions_house, u64::from(win.is_some()));
    }
    let t4 = clock::now();
    clock.select += t1 - t0;
    clock.score += t2 - t1;
    clock.auction += t3 - t2;
    clock.budget += t4 - t3;
    clock.mark = t4;
    SlotOutcome {
        win,
        eligible,
        above_floor,
    }
}

/// Scores paid candidates into `scratch.scored` (pCTR from the scoring run: model tier or prior);
/// house candidates go to `scratch.houses`.
fn score_candidates(
    catalog: &Catalog,
    job: &AuctionJob,
    slot: &Slot,
    scratch: &mut Scratch,
    ml: &mut ScoringRun<'_>,
) {
    scratch.scored.clear();
    scratch.houses.clear();
    scratch.paid.clear();
    for &cand in &scratch.candidates {
        if catalog.campaigns[cand.campaign].is_house() {
            scratch.houses.push(cand);
        } else {
            scratch.paid.push(cand);
        }
    }
    ml.predict(catalog, &job.ctx, slot, &scratch.paid, &mut scratch.pctrs);
    for (&cand, &pctr) in scratch.paid.iter().zip(&scratch.pctrs) {
        let c = &catalog.campaigns[cand.campaign];
        scratch.scored.push(Scored {
            candidate: cand,
            pctr,
            ecpm_micros: ecpm_micros(&c.spec.pricing, pctr),
            priority: c.priority(),
            campaign_id: c.spec.id,
        });
    }
}

/// Drops candidates under their reserve and sorts the rest best first; returns how many were dropped.
pub fn apply_reserve_and_rank(
    catalog: &Catalog,
    slot: &Slot,
    cfg: &AuctionConfig,
    scored: &mut Vec<Scored>,
) -> usize {
    let before = scored.len();
    scored.retain(|s| {
        let c = &catalog.campaigns[s.candidate.campaign];
        let reserve = slot
            .floor_cpm_micros
            .max(c.spec.floor_cpm_micros)
            .max(cfg.reserve_cpm_micros);
        s.ecpm_micros > 0 && s.ecpm_micros >= reserve
    });
    scored.sort_unstable_by(|a, b| {
        b.ecpm_micros
            .cmp(&a.ecpm_micros)
            .then(a.priority.cmp(&b.priority))
            .then(a.campaign_id.cmp(&b.campaign_id))
    });
    before - scored.len()
}

/// What one slot's charges share: the slot, its idempotency key, the request's clock.
#[derive(Clone, Copy)]
struct Charge {
    slot_index: usize,
    key: u64,
    now_ms: i64,
}

fn charge_first_affordable(
    Charge {
        slot_index,
        key,
        now_ms,
    }: Charge,
    catalog: &Catalog,
    ledger: &mut SubLedger,
    scratch: &mut Scratch,
    m: &ShardMetrics,
) -> Option<Win> {
    for s in &scratch.scored {
        if scratch.won_campaigns.contains(&s.candidate.campaign) {
            continue;
        }
        let cost = cost_per_impression_micros(s.ecpm_micros);
        if ledger
            .try_charge(now_ms, s.candidate.campaign, cost, key)
            .is_err()
        {
            bump(&m.budget_refusals, 1);
            continue;
        }
        debug_assert!(!catalog.campaigns[s.candidate.campaign].is_house());
        scratch.won_campaigns.push(s.candidate.campaign);
        bump(&m.revenue_micros, cost);
        bump(&m.impressions_paid, 1);
        return Some(Win {
            slot: slot_index,
            campaign: s.candidate.campaign,
            creative: s.candidate.creative,
            price_cpm_micros: s.ecpm_micros,
            pctr: s.pctr,
            house: false,
        });
    }
    None
}

/// A house ad for the slot, rotated by the user so the same user sees variety across requests.
fn pick_house(job: &AuctionJob, slot_index: usize, scratch: &Scratch) -> Option<Win> {
    if scratch.houses.is_empty() {
        return None;
    }
    let pick = (job.user_key as usize).wrapping_add(slot_index) % scratch.houses.len();
    let cand = scratch.houses[pick];
    Some(Win {
        slot: slot_index,
        campaign: cand.campaign,
        creative: cand.creative,
        price_cpm_micros: 0,
        pctr: 0.0,
        house: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Format;
    use crate::intake::Context;

    fn campaign(id: u32, kind: &str, pricing: serde_json::Value, daily: u64) -> serde_json::Value {
        serde_json::json!({
            "id": id, "advertiser_id": 1, "name": format!("c{id}"), "kind": {"type": kind},
            "pricing": pricing, "category": "gaming",
            "budget_daily_micros": daily, "budget_lifetime_micros": daily * 10,
            "start_date": "2026-01-01", "end_date": "2026-12-31", "creative_ids": [1]
        })
    }

    fn cpm(m: u64) -> serde_json::Value {
        serde_json::json!({"model": "cpm", "bid_cpm_micros": m})
    }

    fn catalog(campaigns: Vec<serde_json::Value>) -> Catalog {
        let v = serde_json::json!({
            "version": 1, "currency": "USD", "category_ctr_priors": {"gaming": 0.02},
            "advertisers": [{"id": 1, "name": "A", "domain": "a.example"}],
            "campaigns": campaigns,
            "creatives": [{"id": 1, "format": "banner", "w": 300, "h": 250, "adm": "<b/>"}]
        });
        Catalog::from_slice("t", &serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn job(slots: usize, floor: u64) -> AuctionJob {
        AuctionJob {
            request_id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                compact_str::format_compact!(
                    "r{}",
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                )
            },
            slots: (0..slots)
                .map(|i| Slot {
                    imp_id: i.to_string().into(),
                    formats_mask: Format::Banner.bit(),
                    banner_sizes: smallvec::smallvec![(300, 250)],
                    floor_cpm_micros: floor,
                    ..Slot::default()
                })
                .collect(),
            ctx: Context {
                local_hour: 12,
                day: crate::catalog::days_from_civil(2026, 6, 1),
                ..Context::default()
            },
            user_key: 7,
            received: clock::now(),
            tmax_ms: 10_000,
        }
    }

    fn run(cat: &Catalog, ledger: &mut SubLedger, j: &AuctionJob) -> AuctionResult {
        let cfg = AuctionConfig::default();
        let model_cfg = crate::config::ModelConfig::default();
        let mut scorer = crate::scoring::Scorer::new(1);
        let ml_metrics = crate::scoring::MlMetrics::default();
        let mut ml = ScoringRun::category_prior(&model_cfg, &mut scorer, &ml_metrics);
        run_auction(
            j,
            cat,
            ledger,
            &cfg,
            &mut Scratch::default(),
            &ShardMetrics::default(),
            &mut ml,
        )
    }

    #[test]
    fn highest_ecpm_wins_and_pays_its_bid() {
        // Seed Part 6 example: CPC bids ranked by pCTR x CPC; here the CPM bid of $3 beats a CPC
        // bid worth 0.02 x $0.10 x 1000 = $2 eCPM.
        let cat = catalog(vec![
            campaign(
                1,
                "direct",
                serde_json::json!({"model": "cpc", "bid_cpc_micros": 100_000}),
                1_000_000,
            ),
            campaign(2, "direct", cpm(3_000_000), 1_000_000),
        ]);
        let mut l = SubLedger::standalone(&cat);
        let r = run(&cat, &mut l, &job(1, 0));
        assert_eq!(r.wins.len(), 1);
        assert_eq!(cat.campaigns[r.wins[0].campaign].spec.id, 2);
        assert_eq!(r.wins[0].price_cpm_micros, 3_000_000);
        assert_eq!(l.line(r.wins[0].campaign).spent_today_micros, 3_000);
    }

    #[test]
    fn floor_filters_and_reports_below_floor() {
        let cat = catalog(vec![campaign(1, "direct", cpm(1_000_000), 1_000_000)]);
        let mut l = SubLedger::standalone(&cat);
        let r = run(&cat, &mut l, &job(1, 1_500_000));
        assert!(r.wins.is_empty());
        assert_eq!(r.nobid, Some(NoBidReason::BelowFloor));
    }

    #[test]
    fn exhausted_budget_falls_to_next_bidder_then_house() {
        let cat = catalog(vec![
            campaign(1, "direct", cpm(5_000_000), 5_000), // one impression of budget
            campaign(2, "direct", cpm(2_000_000), 2_000),
            campaign(3, "house", cpm(0), 0),
        ]);
        let mut l = SubLedger::standalone(&cat);
        let ids = |r: &AuctionResult| -> Vec<(u32, bool)> {
            r.wins
                .iter()
                .map(|w| (cat.campaigns[w.campaign].spec.id, w.house))
                .collect()
        };
        assert_eq!(ids(&run(&cat, &mut l, &job(1, 0))), vec![(1, false)]);
        assert_eq!(ids(&run(&cat, &mut l, &job(1, 0))), vec![(2, false)]);
        let house = run(&cat, &mut l, &job(1, 0));
        assert_eq!(ids(&house), vec![(3, true)]);
        assert_eq!(house.wins[0].price_cpm_micros, 0);
    }

    #[test]
    fn budget_exhausted_without_house_is_reported() {
        let cat = catalog(vec![campaign(1, "direct", cpm(5_000_000), 5_000)]);
        let mut l = SubLedger::standalone(&cat);
        assert_eq!(run(&cat, &mut l, &job(1, 0)).wins.len(), 1);
        assert_eq!(
            run(&cat, &mut l, &job(1, 0)).nobid,
            Some(NoBidReason::BudgetExhausted)
        );
    }

    #[test]
    fn a_campaign_wins_one_slot_per_request() {
        let cat = catalog(vec![
            campaign(1, "direct", cpm(5_000_000), 1_000_000),
            campaign(2, "direct", cpm(2_000_000), 1_000_000),
        ]);
        let mut l = SubLedger::standalone(&cat);
        let r = run(&cat, &mut l, &job(3, 0));
        let ids: Vec<u32> = r
            .wins
            .iter()
            .map(|w| cat.campaigns[w.campaign].spec.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn a_degradation_cap_scores_fewer_candidates() {
        let cat = catalog(vec![
            campaign(1, "direct", cpm(1_000_000), 1_000_000),
            campaign(2, "direct", cpm(5_000_000), 1_000_000),
            campaign(3, "direct", cpm(2_000_000), 1_000_000),
        ]);
        let mut l = SubLedger::standalone(&cat);
        let cfg = AuctionConfig::default();
        let model_cfg = crate::config::ModelConfig::default();
        let mut scorer = crate::scoring::Scorer::new(1);
        let ml_metrics = crate::scoring::MlMetrics::default();
        let m = ShardMetrics::default();
        let mut scratch = Scratch {
            candidates_cap: 1,
            ..Scratch::default()
        };
        let mut ml = ScoringRun::category_prior(&model_cfg, &mut scorer, &ml_metrics);
        let r = run_auction(&job(1, 0), &cat, &mut l, &cfg, &mut scratch, &m, &mut ml);
        // Only the first eligible campaign was scored: the $5 one never ran.
        assert_eq!(cat.campaigns[r.wins[0].campaign].spec.id, 1);
        assert_eq!(m.candidates_cut.get(), 2);
        scratch.candidates_cap = 0;
        let r = run_auction(&job(1, 0), &cat, &mut l, &cfg, &mut scratch, &m, &mut ml);
        assert_eq!(cat.campaigns[r.wins[0].campaign].spec.id, 2);
    }

    #[test]
    fn expired_deadline_is_a_nobid() {
        let cat = catalog(vec![campaign(1, "direct", cpm(5_000_000), 1_000_000)]);
        let mut l = SubLedger::standalone(&cat);
        let mut j = job(1, 0);
        j.tmax_ms = 0;
        assert_eq!(
            run(&cat, &mut l, &j).nobid,
            Some(NoBidReason::DeadlineExceeded)
        );
    }
}
