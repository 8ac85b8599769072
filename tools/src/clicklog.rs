//! Impression/click logs drawn from a hidden ground-truth click function, for training and
//! evaluating the CTR model.
//!
//! Each impression shows a random paid campaign to a user drawn by activity (Zipf), in a random
//! context. Whether it is clicked is a Bernoulli draw from a logistic of interactions (user
//! affinity x ad category, age x category, hour x category, device x format, position, site
//! category match, advertiser quality, the user's hidden clickiness): the model never sees this
//! function, only its outcomes. The feature row of each impression is written by the engine's own
//! row builder (`engine::features::write_row`) from the engine's parse of `users.csv`, with the
//! tier the engine would use, so training and serving cannot diverge.
//!
//! Owns: the ground truth and the log format. Must not know: the model.

use std::fmt::Write as _;
use std::io::Write;

use engine::catalog::{Catalog, Format};
use engine::config::ModelConfig;
use engine::features::{
    AdRef, CATEGORIES, ContextCodes, ROW_LEN, SCHEMA_V1, category_index, write_row,
};
use engine::intake::{Context, Slot, iab_top_level};
use engine::profile::{Aggregates, Basis, UserProfile, UsersFile};
use engine::scoring::{Tier, tier_for};
use engine::select::Candidate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::adgen::SimUser;

/// Site/app categories the simulated inventory carries (IAB top-level numbers).
const SITE_CATS: [u8; 12] = [1, 2, 3, 5, 7, 8, 9, 12, 13, 17, 19, 20];

/// One logged impression.
#[derive(Debug, Clone)]
pub struct Impression {
    /// Index into the population (and `UsersFile::users`).
    pub user: usize,
    pub ctx: Context,
    pub slot: Slot,
    pub candidate: Candidate,
    pub click: bool,
    /// The ground-truth click probability (for diagnostics only).
    pub p_true: f64,
}

/// The world a log is drawn from: the catalog, the population and the engine's view of it.
pub struct World<'a> {
    pub catalog: &'a Catalog,
    pub users: &'a [SimUser],
    /// The engine's parse of the population's `users.csv` (same order as `users`).
    pub file: &'a UsersFile,
    pub today: i64,
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Hidden quality of an advertiser (log-odds shift), fixed by its id.
fn advertiser_quality(id: u32) -> f64 {
    let h = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    (h as f64 / (1u64 << 24) as f64 - 0.5) * 0.6
}

fn hour_effect(hour: u8, category: &str) -> f64 {
    match category {
        "entertainment" | "gaming" if hour >= 19 => 0.45,
        "finance" | "tech" if (9..=17).contains(&hour) => 0.3,
        "food" if (11..=13).contains(&hour) || (18..=20).contains(&hour) => 0.4,
        _ if hour < 6 => -0.3,
        _ => 0.0,
    }
}

fn device_format_effect(device_type: u8, format: Format, is_app: bool) -> f64 {
    match format {
        Format::Video if matches!(device_type, 3 | 5) => 0.5,
        Format::Video if device_type == 4 => -0.3,
        Format::Native if is_app => 0.3,
        _ => 0.0,
    }
}

/// The hidden ground-truth probability that `u` clicks this ad in this context.
pub fn p_click(world: &World<'_>, u: &SimUser, ctx: &Context, slot: &Slot, cand: Candidate) -> f64 {
    let c = &world.catalog.campaigns[cand.campaign];
    let cr = &world.catalog.creatives[cand.creative];
    let cat = category_index(&c.spec.category).unwrap_or(0);
    let base = logit_user(u, cat);
    let site_match = c
        .spec
        .iab_categories
        .first()
        .is_some_and(|iab| iab_top_level(iab) == ctx.site_cat && ctx.site_cat != 0);
    let weekend_travel = ctx.local_weekday >= 5 && CATEGORIES[cat] == "travel";
    let pos = match slot.pos {
        1 => 0.35,
        3 => -0.25,
        _ => 0.0,
    };
    sigmoid(
        base + hour_effect(ctx.local_hour, CATEGORIES[cat])
            + device_format_effect(ctx.device_type, cr.format, ctx.is_app)
            + pos
            + if site_match { 0.6 } else { 0.0 }
            + if weekend_travel { 0.4 } else { 0.0 }
            + advertiser_quality(c.spec.advertiser_id),
    )
}

fn logit_user(u: &SimUser, cat: usize) -> f64 {
    // Same hidden terms as the history in adgen (category prior, affinity, clickiness, age).
    let prior = crate::adgen::CATEGORY_PRIORS[cat].1;
    (prior / (1.0 - prior)).ln()
        + u.affinity[cat]
        + u.clickiness
        + crate::adgen::age_effect_public(u.age_bucket, cat)
}

/// Draws `rows` impressions (deterministic by `seed`).
pub fn impressions(world: &World<'_>, rows: usize, seed: u64) -> Vec<Impression> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc11c_0000_0001);
    let paid: Vec<usize> = (0..world.catalog.campaigns.len())
        .filter(|&i| !world.catalog.campaigns[i].is_house())
        .collect();
    assert!(!paid.is_empty(), "the catalog has no paid campaign");
    let cumulative: Vec<f64> = world
        .users
        .iter()
        .scan(0.0, |acc, u| {
            *acc += u.activity;
            Some(*acc)
        })
        .collect();
    let total = *cumulative.last().expect("a population");
    (0..rows)
        .map(|_| {
            let x = rng.random::<f64>() * total;
            let user = cumulative
                .partition_point(|&c| c < x)
                .min(world.users.len() - 1);
            let campaign = paid[rng.random_range(0..paid.len())];
            let creatives = &world.catalog.campaigns[campaign].creatives;
            let creative = creatives[rng.random_range(0..creatives.len())];
            let u = &world.users[user];
            let ctx = Context {
                country: u.country.into(),
                region: u.region.into(),
                device_type: u.device_type(),
                os_lower: u.os().to_ascii_lowercase().into(),
                is_app: rng.random_bool(0.5),
                local_hour: hour(&mut rng),
                local_weekday: rng.random_range(0..7),
                day: world.today,
                site_cat: SITE_CATS[rng.random_range(0..SITE_CATS.len())],
            };
            let slot = Slot {
                pos: [0, 1, 3][rng.random_range(0..3)],
                ..Slot::default()
            };
            let candidate = Candidate { campaign, creative };
            let p_true = p_click(world, u, &ctx, &slot, candidate);
            let click = rng.random_bool(p_true);
            Impression {
                user,
                ctx,
                slot,
                candidate,
                click,
                p_true,
            }
        })
        .collect()
}

/// Local hours weighted towards the day and evening.
fn hour(rng: &mut StdRng) -> u8 {
    const W: [f64; 24] = [
        1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.2, 3.5, 3.2, 3.0, 3.0, 3.2, 3.5,
        4.0, 4.5, 4.5, 4.0, 3.0, 2.0,
    ];
    let total: f64 = W.iter().sum();
    let mut x = rng.random::<f64>() * total;
    for (h, w) in W.iter().enumerate() {
        x -= w;
        if x <= 0.0 {
            return h as u8;
        }
    }
    23
}

/// The tier the engine would use for this user, and the basis of the row (tier 4 rows are
/// written on the segment basis: the engine does not score them with the model).
pub fn tier_and_basis(p: &UserProfile) -> (Tier, Basis) {
    let tier = tier_for(Some(p.imps), &ModelConfig::default(), true);
    (tier, tier.basis().unwrap_or(Basis::Segment))
}

/// The engine's feature row of an impression.
pub fn feature_row(world: &World<'_>, agg: &Aggregates, imp: &Impression, row: &mut [f64]) -> Tier {
    let profile = &world.file.users[imp.user].1;
    let (tier, basis) = tier_and_basis(profile);
    let user = agg.user_features(profile, basis);
    let c = &world.catalog.campaigns[imp.candidate.campaign];
    let ad = AdRef {
        campaign: c,
        creative: &world.catalog.creatives[imp.candidate.creative],
        category: category_index(&c.spec.category),
    };
    write_row(
        row,
        &user,
        ad,
        &ContextCodes::of(&imp.ctx),
        &imp.slot,
        imp.ctx.day,
    );
    tier
}

/// Writes the log as CSV: the schema v1 feature columns (empty = missing), then `tier`, `click`.
pub fn write_csv(
    world: &World<'_>,
    log: &[Impression],
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut line = String::with_capacity(512);
    line.push_str(&SCHEMA_V1.names.join(","));
    line.push_str(",tier,click\n");
    out.write_all(line.as_bytes())?;
    let mut row = [0.0; ROW_LEN];
    let agg = &world.file.aggregates;
    for imp in log {
        line.clear();
        let tier = feature_row(world, agg, imp, &mut row);
        for v in &row {
            if !v.is_nan() {
                let _ = write!(line, "{v}");
            }
            line.push(',');
        }
        let _ = writeln!(line, "{},{}", tier as u8 + 1, u8::from(imp.click));
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Area under the ROC curve of `scores` for `labels` (ties share their average rank).
pub fn auc(labels: &[bool], scores: &[f64]) -> f64 {
    assert_eq!(labels.len(), scores.len());
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += avg_rank * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&l| l).count() as f64;
    let neg = labels.len() as f64 - pos;
    (rank_sum_pos - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adgen::{AdgenOptions, catalog, population, users_csv_of};
    use engine::profile::parse_users;
    use engine::scoring::{
        CampaignStats, MlMetrics, ProfileSource, Scorer, ScoringInputs, ScoringRun,
    };

    #[test]
    fn auc_of_known_rankings() {
        assert_eq!(auc(&[false, true], &[0.1, 0.9]), 1.0);
        assert_eq!(auc(&[true, false], &[0.1, 0.9]), 0.0);
        assert_eq!(auc(&[true, false, true, false], &[0.5; 4]), 0.5);
        assert!((auc(&[false, true, false, true], &[0.1, 0.2, 0.3, 0.4]) - 0.75).abs() < 1e-12);
    }

    /// The committed demo model beats the category prior on a held-out log drawn here (another
    /// seed than the training log), scored through the engine's own scoring path.
    #[test]
    fn demo_model_beats_the_category_prior_on_held_out_auc() {
        let opts = AdgenOptions {
            seed: 2024,
            advertisers: 50,
            campaigns: 200,
            users: 20_000,
            today: engine::catalog::days_from_civil(2026, 11, 28),
        };
        let cat_json = serde_json::to_vec(&catalog(&opts)).unwrap();
        let cat = Catalog::from_slice("catalog.json", &cat_json).unwrap();
        let people = population(&opts);
        let file = parse_users("users.csv", &users_csv_of(&people)).unwrap();
        let world = World {
            catalog: &cat,
            users: &people,
            file: &file,
            today: opts.today,
        };
        let log = impressions(&world, 40_000, 99);
        let serving = engine::model_store::load(std::path::Path::new("")).unwrap();
        let cfg = ModelConfig {
            explore_enabled: false,
            thompson_enabled: false,
            ..ModelConfig::default()
        };
        let stats = CampaignStats::new(&cat);
        let metrics = MlMetrics::default();
        let mut scorer = Scorer::new(1);
        let mut pctrs = Vec::new();
        let mut engine_scores = Vec::with_capacity(log.len());
        for imp in &log {
            let inputs = ScoringInputs {
                model: Some(&serving.model),
                cfg: &cfg,
                profile: ProfileSource::Given(Some(&file.users[imp.user].1)),
                aggregates: &file.aggregates,
                campaigns: &stats,
                shards: 1,
            };
            let mut run = ScoringRun::new(inputs, &mut scorer, &metrics);
            run.predict(&cat, &imp.ctx, &imp.slot, &[imp.candidate], &mut pctrs);
            engine_scores.push(pctrs[0]);
        }
        let prior: Vec<f64> = log
            .iter()
            .map(|i| cat.campaigns[i.candidate.campaign].ctr_prior)
            .collect();
        let labels: Vec<bool> = log.iter().map(|i| i.click).collect();
        let (gbdt_auc, prior_auc) = (auc(&labels, &engine_scores), auc(&labels, &prior));
        eprintln!(
            "held-out AUC: engine (GBDT tiers 1-3, prior tier 4) {gbdt_auc:.4}, category prior {prior_auc:.4}"
        );
        assert!(gbdt_auc > prior_auc + 0.03, "{gbdt_auc} vs {prior_auc}");
        let personal = metrics.tiers[engine::scoring::Tier::Personal as usize].get();
        assert!(personal > 0 && personal < log.len() as u64);
    }

    #[test]
    fn log_rows_use_the_engine_tier_and_are_deterministic() {
        let opts = AdgenOptions {
            seed: 5,
            advertisers: 10,
            campaigns: 20,
            users: 500,
            today: engine::catalog::days_from_civil(2026, 11, 28),
        };
        let cat_json = serde_json::to_vec(&catalog(&opts)).unwrap();
        let cat = Catalog::from_slice("catalog.json", &cat_json).unwrap();
        let people = population(&opts);
        let file = parse_users("users.csv", &users_csv_of(&people)).unwrap();
        let world = World {
            catalog: &cat,
            users: &people,
            file: &file,
            today: opts.today,
        };
        let csv = |seed| {
            let mut out = Vec::new();
            write_csv(&world, &impressions(&world, 300, seed), &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let a = csv(1);
        assert_eq!(a, csv(1));
        assert_ne!(a, csv(2));
        let header: Vec<&str> = a.lines().next().unwrap().split(',').collect();
        assert_eq!(&header[..ROW_LEN], SCHEMA_V1.names);
        assert_eq!(&header[ROW_LEN..], ["tier", "click"]);
        assert_eq!(a.lines().count(), 301);
        assert!(
            a.lines()
                .skip(1)
                .all(|l| l.split(',').count() == ROW_LEN + 2)
        );
    }
}
