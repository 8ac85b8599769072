//! Scoring: predicted click-through rate and eCPM for each candidate, with the seed's cold-start
//! tiers (Part 4) and exploration.
//!
//! Tiers, by the impressions `n` the user's profile holds (history + live):
//! - tier 1, `n > 100` (`tier2_imps_max`): the GBDT on the user's own features;
//! - tier 2, `10 <= n <= 100`: the GBDT with the user features replaced by the user's cohort
//!   averages (demographics kept);
//! - tier 3, `1 <= n < 10`: the GBDT with the user features replaced by the coarse segment's
//!   averages (country x device type; no demographics);
//! - tier 4, `n = 0`, unknown user, no model or model disabled: the category CTR prior.
//!
//! Exploration: for known users with `n < explore_imps_max`, epsilon-greedy with
//! `e(n) = e0 / (1 + ln(n + 1))` moves a random eligible candidate to the top of the ranking.
//! CPC campaigns in bootstrap (estimated impressions < `thompson_imps_max`) get a Thompson draw:
//! pCTR ~ Beta(a0 + clicks, b0 + imps - clicks), with the prior centred on the tier's pCTR
//! (`a0 = pctr * w`, `b0 = (1 - pctr) * w`, `w = thompson_prior_imps`). Campaign counters are kept
//! per shard (the shard owning the user records the impression and its click); the global count
//! is estimated as `local x shards`, which holds because users spread evenly over shards.
//! Randomness comes from one seeded `SmallRng` per shard, so runs and tests are reproducible.
//!
//! Owns: pCTR and eCPM arithmetic, tiers, exploration, per-shard campaign counters. Must not
//! know: budgets or the auction's rules.

use std::cell::Cell;
use std::collections::HashMap;

use model_runtime::Model;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};

use crate::catalog::{CampaignEntry, Catalog, Pricing};
use crate::config::ModelConfig;
use crate::features::{AdRef, ContextCodes, ROW_LEN, UserFeatures, category_index, write_row};
use crate::intake::{Context, Slot};
use crate::metrics::bump;
use crate::profile::{Aggregates, Basis, ProfileStore, UserProfile};
use crate::select::Candidate;

/// Which source produced a pCTR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Tier 1: GBDT on the user's own features.
    Personal,
    /// Tier 2: GBDT on the user's cohort averages.
    Cohort,
    /// Tier 3: GBDT on the user's segment averages.
    Segment,
    /// Tier 4: the category CTR prior.
    CategoryPrior,
}

impl Tier {
    pub const ALL: [Tier; 4] = [
        Tier::Personal,
        Tier::Cohort,
        Tier::Segment,
        Tier::CategoryPrior,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Personal => "personal",
            Tier::Cohort => "cohort",
            Tier::Segment => "segment",
            Tier::CategoryPrior => "category_prior",
        }
    }

    /// The profile basis of a model tier (None for the category prior).
    pub fn basis(self) -> Option<Basis> {
        match self {
            Tier::Personal => Some(Basis::Personal),
            Tier::Cohort => Some(Basis::Cohort),
            Tier::Segment => Some(Basis::Segment),
            Tier::CategoryPrior => None,
        }
    }
}

/// The tier of a user with `imps` impressions (None = no profile), given the configuration.
pub fn tier_for(imps: Option<u64>, cfg: &ModelConfig, model_available: bool) -> Tier {
    match imps {
        _ if !model_available || !cfg.enabled => Tier::CategoryPrior,
        None | Some(0) => Tier::CategoryPrior,
        Some(n) if n > cfg.tier2_imps_max => Tier::Personal,
        Some(n) if n >= cfg.tier3_imps_max => Tier::Cohort,
        Some(_) => Tier::Segment,
    }
}

/// The seed's adaptive exploration rate: `e0 / (1 + ln(n + 1))`.
pub fn epsilon(epsilon0: f64, n: u64) -> f64 {
    epsilon0 / (1.0 + (n as f64 + 1.0).ln())
}

/// pCTR of a campaign's ad from the category prior (tier 4).
pub fn predict_ctr(campaign: &CampaignEntry) -> (f64, Tier) {
    (campaign.ctr_prior, Tier::CategoryPrior)
}

/// Expected value per thousand impressions, in micros: the bid for CPM, pCTR x CPC x 1000 for CPC.
pub fn ecpm_micros(pricing: &Pricing, pctr: f64) -> u64 {
    match *pricing {
        Pricing::Cpm { bid_cpm_micros } => bid_cpm_micros,
        Pricing::Cpc { bid_cpc_micros } => {
            debug_assert!((0.0..=1.0).contains(&pctr));
            let v = pctr * bid_cpc_micros as f64 * 1000.0;
            if v.is_finite() && v > 0.0 {
                v.min(u64::MAX as f64) as u64
            } else {
                0
            }
        }
    }
}

/// What one impression costs the campaign, in micros: eCPM / 1000, rounded up so the ledger never
/// records less than the price we announce.
pub fn cost_per_impression_micros(ecpm_micros: u64) -> u64 {
    ecpm_micros.div_ceil(1000)
}

/// Per-shard counters of the model path, exported in `/metrics`.
#[derive(Debug, Default)]
pub struct MlMetrics {
    /// Auctions that needed the user's tier (had a candidate), per tier (indexed like
    /// [`Tier::ALL`]).
    pub tiers: [Cell<u64>; 4],
    pub explorations: Cell<u64>,
    pub thompson_draws: Cell<u64>,
    /// Batches the model refused (shape); those candidates fell back to the prior.
    pub model_errors: Cell<u64>,
    pub clicks: Cell<u64>,
    pub clicks_unknown_user: Cell<u64>,
    pub impressions_profiled: Cell<u64>,
    pub model_loads: Cell<u64>,
    pub model_load_failures: Cell<u64>,
}

/// A copy of [`MlMetrics`] for a scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MlSnapshot {
    pub tiers: [u64; 4],
    pub explorations: u64,
    pub thompson_draws: u64,
    pub model_errors: u64,
    pub clicks: u64,
    pub clicks_unknown_user: u64,
    pub impressions_profiled: u64,
    pub model_loads: u64,
    pub model_load_failures: u64,
}

impl MlMetrics {
    pub fn snapshot(&self) -> MlSnapshot {
        MlSnapshot {
            tiers: std::array::from_fn(|i| self.tiers[i].get()),
            explorations: self.explorations.get(),
            thompson_draws: self.thompson_draws.get(),
            model_errors: self.model_errors.get(),
            clicks: self.clicks.get(),
            clicks_unknown_user: self.clicks_unknown_user.get(),
            impressions_profiled: self.impressions_profiled.get(),
            model_loads: self.model_loads.get(),
            model_load_failures: self.model_load_failures.get(),
        }
    }
}

/// Per-shard impressions and clicks of every campaign (indexed like `Catalog::campaigns`).
#[derive(Debug, Default)]
pub struct CampaignStats {
    pub imps: Vec<u64>,
    pub clicks: Vec<u64>,
    by_id: HashMap<u32, usize>,
    /// Category index of each campaign (precomputed for the row builder).
    pub category: Vec<Option<usize>>,
}

impl CampaignStats {
    pub fn new(catalog: &Catalog) -> CampaignStats {
        let n = catalog.campaigns.len();
        CampaignStats {
            imps: vec![0; n],
            clicks: vec![0; n],
            by_id: catalog
                .campaigns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.spec.id, i))
                .collect(),
            category: catalog
                .campaigns
                .iter()
                .map(|c| category_index(&c.spec.category))
                .collect(),
        }
    }

    /// Index of a campaign id.
    pub fn index_of(&self, id: u32) -> Option<usize> {
        self.by_id.get(&id).copied()
    }
}

/// Buffers and randomness one shard reuses for every request.
pub struct Scorer {
    rows: Vec<f64>,
    out: Vec<f64>,
    /// Index (into the candidate list) of each row in `rows`.
    row_of: Vec<usize>,
    model_scratch: model_runtime::Scratch,
    rng: SmallRng,
    /// The user side of this request's rows, resolved by the first model prediction of a
    /// [`ScoringRun`] (a request with no CPC candidate never needs it).
    user: UserFeatures,
}

impl Scorer {
    /// A scorer whose random draws are fixed by `seed` (the shard mixes in its id).
    pub fn new(seed: u64) -> Scorer {
        Scorer {
            rows: Vec::new(),
            out: Vec::new(),
            row_of: Vec::new(),
            model_scratch: model_runtime::Scratch::new(),
            rng: SmallRng::seed_from_u64(seed),
            user: UserFeatures::MISSING,
        }
    }
}

/// Everything scoring needs for one auction request; built once per request on the owner shard.
pub struct ScoringRun<'a> {
    model: Option<&'a Model>,
    cfg: &'a ModelConfig,
    /// The profile lookup still to do ([`ProfileSource::Lookup`]), until the run first needs the
    /// user's tier; `tier`, `user_imps` and `user_source` are the placeholders of an unknown
    /// user until then.
    lookup: Option<(&'a ProfileStore, u64, &'a Aggregates)>,
    /// How long the deferred lookup and tier choice took (the `profile` stage), once done.
    lookup_took: Option<std::time::Duration>,
    tier: Tier,
    /// The user's impressions, when the user has a profile.
    user_imps: Option<u64>,
    /// Where the user's features come from: the profile and the tier's basis (`None`: missing).
    user_source: Option<(&'a UserProfile, Basis, &'a Aggregates)>,
    /// `scorer.user` holds this request's features.
    user_resolved: bool,
    campaigns: Option<&'a CampaignStats>,
    shards: u64,
    scorer: &'a mut Scorer,
    metrics: &'a MlMetrics,
}

/// Where a [`ScoringRun`] finds the user's profile.
#[derive(Clone, Copy)]
pub enum ProfileSource<'a> {
    /// Already found, or known to be absent (tools, tests).
    Given(Option<&'a UserProfile>),
    /// The shard's store and the user's key: looked up when the run first needs the user's tier,
    /// so an auction without candidates (most no-bids) never touches the store.
    Lookup(&'a ProfileStore, u64),
}

/// What the shard lends a [`ScoringRun`].
pub struct ScoringInputs<'a> {
    pub model: Option<&'a Model>,
    pub cfg: &'a ModelConfig,
    pub profile: ProfileSource<'a>,
    pub aggregates: &'a Aggregates,
    pub campaigns: &'a CampaignStats,
    pub shards: usize,
}

impl<'a> ScoringRun<'a> {
    /// A run for one request. The user's tier is resolved once (counted per tier): at once for
    /// a given profile, on the first prediction or exploration for a [`ProfileSource::Lookup`].
    /// The user's features are assembled by the first model prediction that needs them.
    pub fn new(inp: ScoringInputs<'a>, scorer: &'a mut Scorer, metrics: &'a MlMetrics) -> Self {
        let campaigns = Some(inp.campaigns);
        let shards = inp.shards.max(1) as u64;
        let mut run = Self::unknown_user(inp.model, inp.cfg, campaigns, shards, scorer, metrics);
        match inp.profile {
            ProfileSource::Given(profile) => run.set_user(profile, inp.aggregates),
            ProfileSource::Lookup(store, key) => run.lookup = Some((store, key, inp.aggregates)),
        }
        run
    }

    /// A run whose user is not known (yet): category prior, no profile, nothing to look up.
    fn unknown_user(
        model: Option<&'a Model>,
        cfg: &'a ModelConfig,
        campaigns: Option<&'a CampaignStats>,
        shards: u64,
        scorer: &'a mut Scorer,
        metrics: &'a MlMetrics,
    ) -> Self {
        ScoringRun {
            model,
            cfg,
            lookup: None,
            lookup_took: None,
            tier: Tier::CategoryPrior,
            user_imps: None,
            user_source: None,
            user_resolved: false,
            campaigns,
            shards,
            scorer,
            metrics,
        }
    }

    /// Chooses the user's tier from the profile (or its absence) and counts it.
    fn set_user(&mut self, profile: Option<&'a UserProfile>, aggregates: &'a Aggregates) {
        self.user_imps = profile.map(|p| p.imps);
        self.tier = tier_for(self.user_imps, self.cfg, self.model.is_some());
        self.user_source = match (self.tier.basis(), profile) {
            (Some(b), Some(p)) => Some((p, b, aggregates)),
            _ => None,
        };
        bump(&self.metrics.tiers[self.tier as usize], 1);
    }

    /// Does the deferred profile lookup, if any is pending (timed as the `profile` stage).
    #[inline]
    fn resolve_tier(&mut self) {
        if let Some((store, key, aggregates)) = self.lookup.take() {
            let started = crate::clock::now();
            self.set_user(store.get(key), aggregates);
            self.lookup_took = Some(crate::clock::now() - started);
        }
    }

    /// How long the deferred profile lookup and tier choice took; `None` when the run never
    /// needed the user (or was given the profile).
    pub fn profile_lookup_took(&self) -> Option<std::time::Duration> {
        self.lookup_took
    }

    /// Category prior for everyone, no exploration (for tests and tools).
    pub fn category_prior(
        cfg: &'a ModelConfig,
        scorer: &'a mut Scorer,
        metrics: &'a MlMetrics,
    ) -> Self {
        Self::unknown_user(None, cfg, None, 1, scorer, metrics)
    }

    /// The user's tier (resolving it first if the lookup was deferred).
    pub fn tier(&mut self) -> Tier {
        self.resolve_tier();
        self.tier
    }

    /// pCTR of each paid candidate into `pctrs` (cleared first). Allocation-free once warm.
    ///
    /// The model scores only CPC candidates: a CPM bid's eCPM is its bid whatever the pCTR
    /// (`ecpm_micros`), so a GBDT row for it would change no ranking; CPM candidates keep the
    /// category prior as their reported pCTR. In the demo catalog half the campaigns are CPM, and
    /// the GBDT is most of a request's CPU (perf/REPORT.md), so this halves the largest stage.
    pub fn predict(
        &mut self,
        catalog: &Catalog,
        ctx: &Context,
        slot: &Slot,
        candidates: &[Candidate],
        pctrs: &mut Vec<f64>,
    ) {
        pctrs.clear();
        pctrs.extend(
            candidates
                .iter()
                .map(|c| catalog.campaigns[c.campaign].ctr_prior),
        );
        self.resolve_tier();
        if let (Some(model), Tier::Personal | Tier::Cohort | Tier::Segment) =
            (self.model, self.tier)
            && !candidates.is_empty()
        {
            self.predict_model(model, catalog, ctx, slot, candidates, pctrs);
        }
        if self.cfg.thompson_enabled {
            self.thompson(catalog, candidates, pctrs);
        }
    }

    fn predict_model(
        &mut self,
        model: &Model,
        catalog: &Catalog,
        ctx: &Context,
        slot: &Slot,
        candidates: &[Candidate],
        pctrs: &mut [f64],
    ) {
        let codes = ContextCodes::of(ctx);
        self.resolve_user();
        let s = &mut *self.scorer;
        s.row_of.clear();
        s.row_of.extend(
            candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| catalog.campaigns[c.campaign].spec.pricing.is_cpc())
                .map(|(i, _)| i),
        );
        if s.row_of.is_empty() {
            return;
        }
        s.rows.resize(s.row_of.len() * ROW_LEN, 0.0);
        s.out.resize(s.row_of.len(), 0.0);
        for (row, &i) in s.rows.chunks_exact_mut(ROW_LEN).zip(&s.row_of) {
            let cand = candidates[i];
            let ad = AdRef {
                campaign: &catalog.campaigns[cand.campaign],
                creative: &catalog.creatives[cand.creative],
                category: self
                    .campaigns
                    .and_then(|c| c.category.get(cand.campaign).copied().flatten()),
            };
            write_row(row, &s.user, ad, &codes, slot, ctx.day);
        }
        match model.predict_batch(&s.rows, ROW_LEN, &mut s.model_scratch, &mut s.out) {
            Ok(()) => {
                for (&i, &v) in s.row_of.iter().zip(s.out.iter()) {
                    if v.is_finite() {
                        pctrs[i] = v.clamp(0.0, 1.0);
                    }
                }
            }
            Err(_) => bump(&self.metrics.model_errors, 1),
        }
    }

    /// Assembles the user's features into the scorer, once per run.
    fn resolve_user(&mut self) {
        if self.user_resolved {
            return;
        }
        self.scorer.user = match self.user_source {
            Some((profile, basis, aggregates)) => aggregates.user_features(profile, basis),
            None => UserFeatures::MISSING,
        };
        self.user_resolved = true;
    }

    /// Replaces the pCTR of CPC campaigns in bootstrap by a draw from their Beta posterior (a CPM
    /// campaign's eCPM does not depend on its pCTR: no draw).
    fn thompson(&mut self, catalog: &Catalog, candidates: &[Candidate], pctrs: &mut [f64]) {
        let Some(stats) = self.campaigns else {
            return;
        };
        let w = self.cfg.thompson_prior_imps;
        for (cand, p) in candidates.iter().zip(pctrs.iter_mut()) {
            let imps = stats.imps[cand.campaign];
            let cpc = catalog.campaigns[cand.campaign].spec.pricing.is_cpc();
            if !cpc || imps.saturating_mul(self.shards) >= self.cfg.thompson_imps_max {
                continue;
            }
            let clicks = stats.clicks[cand.campaign].min(imps);
            let mean = p.clamp(1e-6, 1.0 - 1e-6);
            let a = mean * w + clicks as f64;
            let b = (1.0 - mean) * w + (imps - clicks) as f64;
            if let Ok(beta) = Beta::new(a, b) {
                *p = beta.sample(&mut self.scorer.rng).clamp(0.0, 1.0);
                bump(&self.metrics.thompson_draws, 1);
            }
        }
    }

    /// Epsilon-greedy: with probability e(n), moves a random entry of the ranking (best first)
    /// to the top. Only for known users with fewer than `explore_imps_max` impressions.
    pub fn explore<T>(&mut self, ranked: &mut [T]) -> bool {
        self.resolve_tier();
        let Some(n) = self.user_imps else {
            return false;
        };
        if !self.cfg.explore_enabled || n >= self.cfg.explore_imps_max || ranked.len() < 2 {
            return false;
        }
        let rng = &mut self.scorer.rng;
        if rng.random::<f64>() >= epsilon(self.cfg.epsilon0, n) {
            return false;
        }
        let pick = rng.random_range(0..ranked.len());
        ranked[..=pick].rotate_right(1);
        bump(&self.metrics.explorations, 1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_cpc_to_ecpm() {
        // Seed Part 6: $4.00 CPC at 15 % CTR is a $600 eCPM.
        let p = Pricing::Cpc {
            bid_cpc_micros: 4_000_000,
        };
        assert_eq!(ecpm_micros(&p, 0.15), 600_000_000);
        let m = Pricing::Cpm {
            bid_cpm_micros: 2_500_000,
        };
        assert_eq!(ecpm_micros(&m, 0.9), 2_500_000);
    }

    #[test]
    fn cost_rounds_up() {
        assert_eq!(cost_per_impression_micros(2_500_000), 2_500);
        assert_eq!(cost_per_impression_micros(1_001), 2);
        assert_eq!(cost_per_impression_micros(0), 0);
    }

    #[test]
    fn tiers_follow_the_seed_thresholds() {
        let cfg = ModelConfig::default();
        let t = |n| tier_for(n, &cfg, true);
        assert_eq!(t(None), Tier::CategoryPrior);
        assert_eq!(t(Some(0)), Tier::CategoryPrior);
        assert_eq!(t(Some(1)), Tier::Segment);
        assert_eq!(t(Some(9)), Tier::Segment);
        assert_eq!(t(Some(10)), Tier::Cohort);
        assert_eq!(t(Some(100)), Tier::Cohort);
        assert_eq!(t(Some(101)), Tier::Personal);
        assert_eq!(tier_for(Some(500), &cfg, false), Tier::CategoryPrior);
        let off = ModelConfig {
            enabled: false,
            ..ModelConfig::default()
        };
        assert_eq!(tier_for(Some(500), &off, true), Tier::CategoryPrior);
    }

    #[test]
    fn epsilon_decays_as_in_the_seed() {
        assert!((epsilon(0.10, 0) - 0.10).abs() < 1e-12);
        assert!((epsilon(0.10, 1000) - 0.10 / (1.0 + 1001f64.ln())).abs() < 1e-12);
        assert!(epsilon(0.10, 1000) < 0.02);
    }

    fn run_with<'a>(
        cfg: &'a ModelConfig,
        profile: Option<&'a UserProfile>,
        agg: &'a Aggregates,
        stats: &'a CampaignStats,
        scorer: &'a mut Scorer,
        m: &'a MlMetrics,
    ) -> ScoringRun<'a> {
        ScoringRun::new(
            ScoringInputs {
                model: None,
                cfg,
                profile: ProfileSource::Given(profile),
                aggregates: agg,
                campaigns: stats,
                shards: 1,
            },
            scorer,
            m,
        )
    }

    #[test]
    fn a_deferred_profile_lookup_waits_for_the_first_need_and_counts_one_tier() {
        let cfg = ModelConfig::default();
        let agg = Aggregates::default();
        let stats = CampaignStats::default();
        let m = MlMetrics::default();
        let users = crate::profile::UsersFile {
            users: vec![(
                42,
                UserProfile {
                    imps: 5,
                    ..UserProfile::default()
                },
            )],
            aggregates: Aggregates::default(),
        };
        let store = ProfileStore::for_shard(Some(&users), 0, 1, usize::MAX);
        let mut scorer = Scorer::new(1);
        let inputs = ScoringInputs {
            model: None,
            cfg: &cfg,
            profile: ProfileSource::Lookup(&store, 42),
            aggregates: &agg,
            campaigns: &stats,
            shards: 1,
        };
        let mut run = ScoringRun::new(inputs, &mut scorer, &m);
        let counted = |m: &MlMetrics| m.tiers.iter().map(Cell::get).sum::<u64>();
        assert_eq!(counted(&m), 0, "no candidate yet: no lookup, no tier");
        assert_eq!(run.profile_lookup_took(), None);
        // Exploration needs the user's impressions: the lookup happens now, and only once.
        run.explore(&mut [0, 1]);
        run.explore(&mut [0, 1]);
        assert!(run.profile_lookup_took().is_some());
        assert_eq!(run.user_imps, Some(5), "the stored profile was found");
        assert_eq!(counted(&m), 1);
    }

    #[test]
    fn exploration_rate_matches_epsilon_and_is_reproducible() {
        let cfg = ModelConfig::default();
        let agg = Aggregates::default();
        let stats = CampaignStats::default();
        let m = MlMetrics::default();
        let profile = UserProfile {
            imps: 5,
            ..UserProfile::default()
        };
        let count = |seed| {
            let mut scorer = Scorer::new(seed);
            let mut run = run_with(&cfg, Some(&profile), &agg, &stats, &mut scorer, &m);
            let mut picks = 0;
            for _ in 0..20_000 {
                let mut ranked = [0, 1, 2, 3];
                if run.explore(&mut ranked) {
                    picks += 1;
                    assert!(ranked.contains(&0));
                }
            }
            picks
        };
        let a = count(7);
        assert_eq!(a, count(7), "same seed, same draws");
        let expected = 20_000.0 * epsilon(0.10, 5);
        assert!(
            (a as f64 - expected).abs() < expected * 0.1,
            "{a} vs {expected}"
        );
        assert_eq!(m.explorations.get(), 2 * a as u64);
        // Unknown users and experienced users are not explored.
        let mut scorer = Scorer::new(1);
        let mut run = run_with(&cfg, None, &agg, &stats, &mut scorer, &m);
        assert!(!(0..1000).any(|_| run.explore(&mut [0, 1])));
        let old = UserProfile {
            imps: cfg.explore_imps_max,
            ..UserProfile::default()
        };
        let mut run = run_with(&cfg, Some(&old), &agg, &stats, &mut scorer, &m);
        assert!(!(0..1000).any(|_| run.explore(&mut [0, 1])));
    }

    #[test]
    fn thompson_draws_only_for_new_campaigns_and_tracks_the_posterior() {
        let campaigns: Vec<serde_json::Value> = [1, 2]
            .iter()
            .map(|id| {
                serde_json::json!({
                    "id": id, "advertiser_id": 1, "name": "c", "kind": {"type": "direct"},
                    "pricing": {"model": "cpc", "bid_cpc_micros": 100_000u64}, "category": "gaming",
                    "budget_daily_micros": 1u64, "budget_lifetime_micros": 1u64,
                    "start_date": "2026-01-01", "end_date": "2026-12-31", "creative_ids": [1]
                })
            })
            .collect();
        let catalog = crate::catalog::Catalog::from_slice(
            "t",
            &serde_json::to_vec(&serde_json::json!({
                "version": 1, "currency": "USD", "category_ctr_priors": {"gaming": 0.02},
                "advertisers": [{"id": 1, "name": "A", "domain": "a.example"}],
                "campaigns": campaigns,
                "creatives": [{"id": 1, "format": "banner", "w": 300, "h": 250, "adm": "b"}]
            }))
            .unwrap(),
        )
        .unwrap();
        let cfg = ModelConfig::default();
        let agg = Aggregates::default();
        let mut stats = CampaignStats::new(&catalog);
        // Campaign 0 is new; campaign 1 has left bootstrap with a 10 % click rate.
        stats.imps[1] = cfg.thompson_imps_max;
        stats.clicks[1] = cfg.thompson_imps_max / 10;
        let m = MlMetrics::default();
        let mut scorer = Scorer::new(3);
        let mut run = run_with(&cfg, None, &agg, &stats, &mut scorer, &m);
        let cands = [
            Candidate {
                campaign: 0,
                creative: 0,
            },
            Candidate {
                campaign: 1,
                creative: 0,
            },
        ];
        let mut pctrs = Vec::new();
        let mut sum = 0.0;
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..2000 {
            run.predict(
                &catalog,
                &Context::default(),
                &Slot::default(),
                &cands,
                &mut pctrs,
            );
            assert_eq!(pctrs[1], 0.02, "out of bootstrap: the tier's pCTR");
            sum += pctrs[0];
            distinct.insert(pctrs[0].to_bits());
        }
        assert_eq!(m.thompson_draws.get(), 2000);
        assert!(distinct.len() > 1900);
        // Prior mean 0.02 with no data: the draws average near it.
        assert!((sum / 2000.0 - 0.02).abs() < 0.004, "{}", sum / 2000.0);
        assert_eq!(m.tiers[Tier::CategoryPrior as usize].get(), 1);
    }
}
