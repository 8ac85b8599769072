//! The versioned feature schema of the CTR model and the row builder that fills it.
//!
//! A row is `[user | ad | context | cross]` features (seed Part 4, "Feature Vector Construction"),
//! in the fixed order of [`SCHEMA_V1`]. The same builder writes rows for serving (engine) and for
//! the training log (`adgen --logs`), so training and serving cannot disagree on a feature.
//! Categorical features are small integer codes (LightGBM categorical); missing is `NaN`.
//!
//! Owns: feature names, order, codes, and the arithmetic of every feature. Must not know: where
//! profiles come from, tiers, exploration, prices or the auction.

use crate::catalog::{CampaignEntry, Creative, Format, Pricing};
use crate::intake::{Context, Slot};

/// Ad verticals with their own code (index + 1; 0 = any other). Same order as adgen's priors.
pub const CATEGORIES: [&str; 10] = [
    "ecommerce",
    "gaming",
    "finance",
    "travel",
    "auto",
    "entertainment",
    "health",
    "education",
    "food",
    "tech",
];
/// Number of coded ad categories.
pub const N_CAT: usize = CATEGORIES.len();

/// Countries with their own code (index + 1; 0 = other or unknown).
pub const COUNTRIES: [&str; 10] = [
    "USA", "GBR", "DEU", "FRA", "CAN", "BRA", "IND", "JPN", "AUS", "ESP",
];

/// Operating systems (lower case) with their own code (index + 1; 0 = other or unknown).
pub const OSES: [&str; 6] = ["ios", "android", "windows", "macos", "ipados", "tvos"];

/// A schema: a version and the ordered feature names a model must have been trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureSchema {
    pub version: u32,
    pub names: &'static [&'static str],
}

/// Schema v1. Column `i` of a row is `names[i]`.
pub const SCHEMA_V1: FeatureSchema = FeatureSchema {
    version: 1,
    names: &[
        // user
        "user_age_bucket",
        "user_gender",
        "user_interest_count",
        "user_imps_log",
        "user_ctr",
        // ad
        "ad_category",
        "ad_format",
        "ad_width",
        "ad_height",
        "ad_duration_s",
        "ad_pricing",
        "ad_bid_log",
        "ad_priority",
        "ad_campaign_age_days",
        "ad_ctr_prior",
        "ad_advertiser",
        // context
        "ctx_hour",
        "ctx_weekday",
        "ctx_device_type",
        "ctx_os",
        "ctx_country",
        "ctx_is_app",
        "ctx_site_category",
        "ctx_position",
        // cross
        "x_user_cat_affinity",
        "x_user_cat_ctr",
        "x_user_cat_imps_log",
    ],
};

/// Features LightGBM must treat as categorical (for the training script).
pub const CATEGORICAL_V1: [&str; 7] = [
    "user_gender",
    "ad_category",
    "ad_format",
    "ad_pricing",
    "ctx_device_type",
    "ctx_os",
    "ctx_country",
];

/// Why a model does not fit the schema.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("model has {model} features, schema v{version} has {schema}")]
    Count {
        version: u32,
        model: usize,
        schema: usize,
    },
    #[error("feature {position} is {model:?} in the model but {schema:?} in schema v{version}")]
    Name {
        version: u32,
        position: usize,
        model: String,
        schema: &'static str,
    },
}

impl FeatureSchema {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Checks that a model's feature names are exactly this schema's, in order.
    pub fn check(&self, model_names: &[String]) -> Result<(), SchemaError> {
        for (position, (m, s)) in model_names.iter().zip(self.names).enumerate() {
            if m != s {
                return Err(SchemaError::Name {
                    version: self.version,
                    position,
                    model: m.clone(),
                    schema: s,
                });
            }
        }
        if model_names.len() != self.len() {
            return Err(SchemaError::Count {
                version: self.version,
                model: model_names.len(),
                schema: self.len(),
            });
        }
        Ok(())
    }
}

/// Column indexes, so the builder cannot drift from the name list.
mod col {
    pub const USER_AGE: usize = 0;
    pub const USER_GENDER: usize = 1;
    pub const USER_INTERESTS: usize = 2;
    pub const USER_IMPS_LOG: usize = 3;
    pub const USER_CTR: usize = 4;
    pub const AD_CATEGORY: usize = 5;
    pub const AD_FORMAT: usize = 6;
    pub const AD_W: usize = 7;
    pub const AD_H: usize = 8;
    pub const AD_DURATION: usize = 9;
    pub const AD_PRICING: usize = 10;
    pub const AD_BID_LOG: usize = 11;
    pub const AD_PRIORITY: usize = 12;
    pub const AD_AGE_DAYS: usize = 13;
    pub const AD_PRIOR: usize = 14;
    pub const AD_ADVERTISER: usize = 15;
    pub const CTX_HOUR: usize = 16;
    pub const CTX_WEEKDAY: usize = 17;
    pub const CTX_DEVICE: usize = 18;
    pub const CTX_OS: usize = 19;
    pub const CTX_COUNTRY: usize = 20;
    pub const CTX_IS_APP: usize = 21;
    pub const CTX_SITE_CAT: usize = 22;
    pub const CTX_POSITION: usize = 23;
    pub const X_AFFINITY: usize = 24;
    pub const X_CAT_CTR: usize = 25;
    pub const X_CAT_IMPS_LOG: usize = 26;
    pub const COUNT: usize = 27;
}

/// Number of features in a v1 row.
pub const ROW_LEN: usize = col::COUNT;

/// The user side of a row, already resolved for the user's tier (personal, cohort or segment
/// values). Plain numbers on the stack: computing it allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserFeatures {
    /// Age bucket code (1..=6), NaN when not used by the tier.
    pub age_bucket: f64,
    /// 1 = male, 2 = female, 3 = other; NaN when unknown or not used.
    pub gender: f64,
    pub interest_count: f64,
    pub imps_log: f64,
    pub ctr: f64,
    /// Per ad category: interest (0/1 for a user, a share for a cohort or segment).
    pub cat_affinity: [f64; N_CAT],
    pub cat_ctr: [f64; N_CAT],
    pub cat_imps_log: [f64; N_CAT],
}

impl UserFeatures {
    /// Every user feature missing (NaN).
    pub const MISSING: UserFeatures = UserFeatures {
        age_bucket: f64::NAN,
        gender: f64::NAN,
        interest_count: f64::NAN,
        imps_log: f64::NAN,
        ctr: f64::NAN,
        cat_affinity: [f64::NAN; N_CAT],
        cat_ctr: [f64::NAN; N_CAT],
        cat_imps_log: [f64::NAN; N_CAT],
    };
}

/// Context codes computed once per request (string lookups out of the per-candidate loop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContextCodes {
    pub hour: f64,
    pub weekday: f64,
    pub device_type: f64,
    pub os: f64,
    pub country: f64,
    pub is_app: f64,
    pub site_cat: f64,
}

impl ContextCodes {
    pub fn of(ctx: &Context) -> ContextCodes {
        ContextCodes {
            hour: f64::from(ctx.local_hour),
            weekday: f64::from(ctx.local_weekday),
            device_type: f64::from(ctx.device_type),
            os: code_of(&OSES, &ctx.os_lower),
            country: code_of(&COUNTRIES, &ctx.country),
            is_app: if ctx.is_app { 1.0 } else { 0.0 },
            site_cat: f64::from(ctx.site_cat),
        }
    }
}

/// Code of `value` in `table` (index + 1), 0 if absent.
pub fn code_of(table: &[&str], value: &str) -> f64 {
    table
        .iter()
        .position(|t| *t == value)
        .map(|i| (i + 1) as f64)
        .unwrap_or(0.0)
}

/// Index of an ad category in [`CATEGORIES`], if it has one.
pub fn category_index(category: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| *c == category)
}

/// `ln(1 + x)`, the scale of every count feature.
pub fn log_count(x: f64) -> f64 {
    x.max(0.0).ln_1p()
}

/// Click rate shrunk towards `prior` with `weight` pseudo-impressions (stable for small counts).
pub fn smoothed_ctr(clicks: f64, imps: f64, prior: f64, weight: f64) -> f64 {
    (clicks + prior * weight) / (imps + weight)
}

/// The ad and the slot it would fill.
#[derive(Debug, Clone, Copy)]
pub struct AdRef<'a> {
    pub campaign: &'a CampaignEntry,
    pub creative: &'a Creative,
    /// Precomputed `category_index(campaign.spec.category)`.
    pub category: Option<usize>,
}

/// Writes one v1 row into `row` (exactly [`ROW_LEN`] values). Allocation-free.
pub fn write_row(
    row: &mut [f64],
    user: &UserFeatures,
    ad: AdRef<'_>,
    ctx: &ContextCodes,
    slot: &Slot,
    day: i64,
) {
    debug_assert_eq!(row.len(), ROW_LEN);
    row[col::USER_AGE] = user.age_bucket;
    row[col::USER_GENDER] = user.gender;
    row[col::USER_INTERESTS] = user.interest_count;
    row[col::USER_IMPS_LOG] = user.imps_log;
    row[col::USER_CTR] = user.ctr;
    write_ad(row, ad, day);
    row[col::CTX_HOUR] = ctx.hour;
    row[col::CTX_WEEKDAY] = ctx.weekday;
    row[col::CTX_DEVICE] = ctx.device_type;
    row[col::CTX_OS] = ctx.os;
    row[col::CTX_COUNTRY] = ctx.country;
    row[col::CTX_IS_APP] = ctx.is_app;
    row[col::CTX_SITE_CAT] = ctx.site_cat;
    row[col::CTX_POSITION] = f64::from(slot.pos);
    let (aff, ctr, imps) = match ad.category {
        Some(k) => (user.cat_affinity[k], user.cat_ctr[k], user.cat_imps_log[k]),
        None => (f64::NAN, f64::NAN, f64::NAN),
    };
    row[col::X_AFFINITY] = aff;
    row[col::X_CAT_CTR] = ctr;
    row[col::X_CAT_IMPS_LOG] = imps;
}

fn write_ad(row: &mut [f64], ad: AdRef<'_>, day: i64) {
    let c = ad.campaign;
    let cr = ad.creative;
    row[col::AD_CATEGORY] = ad.category.map(|k| (k + 1) as f64).unwrap_or(0.0);
    row[col::AD_FORMAT] = match cr.format {
        Format::Banner => 1.0,
        Format::Video => 2.0,
        Format::Native => 3.0,
    };
    row[col::AD_W] = f64::from(cr.w);
    row[col::AD_H] = f64::from(cr.h);
    row[col::AD_DURATION] = f64::from(cr.duration_s);
    let (pricing, bid) = match c.spec.pricing {
        Pricing::Cpm { bid_cpm_micros } => (1.0, bid_cpm_micros),
        Pricing::Cpc { bid_cpc_micros } => (2.0, bid_cpc_micros),
    };
    row[col::AD_PRICING] = pricing;
    row[col::AD_BID_LOG] = log_count(bid as f64);
    row[col::AD_PRIORITY] = f64::from(c.priority());
    row[col::AD_AGE_DAYS] = (day - c.start_day).max(0) as f64;
    row[col::AD_PRIOR] = c.ctr_prior;
    row[col::AD_ADVERTISER] = f64::from(c.spec.advertiser_id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_constants_match_the_names() {
        let n = SCHEMA_V1.names;
        assert_eq!(n.len(), ROW_LEN);
        assert_eq!(n[col::USER_CTR], "user_ctr");
        assert_eq!(n[col::AD_ADVERTISER], "ad_advertiser");
        assert_eq!(n[col::CTX_POSITION], "ctx_position");
        assert_eq!(n[col::X_CAT_IMPS_LOG], "x_user_cat_imps_log");
        for c in CATEGORICAL_V1 {
            assert!(n.contains(&c), "{c}");
        }
        let mut sorted = n.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), n.len(), "duplicate feature name");
    }

    #[test]
    fn schema_check_names_the_first_difference() {
        let mut names: Vec<String> = SCHEMA_V1.names.iter().map(|s| s.to_string()).collect();
        assert_eq!(SCHEMA_V1.check(&names), Ok(()));
        names[3] = "user_impressions".into();
        let e = SCHEMA_V1.check(&names).unwrap_err();
        assert_eq!(
            e.to_string(),
            "feature 3 is \"user_impressions\" in the model but \"user_imps_log\" in schema v1"
        );
        names[3] = "user_imps_log".into();
        names.pop();
        let e = SCHEMA_V1.check(&names).unwrap_err();
        assert_eq!(e.to_string(), "model has 26 features, schema v1 has 27");
    }

    #[test]
    fn row_builder_writes_every_group() {
        let catalog = crate::catalog::Catalog::from_slice(
            "t",
            &serde_json::to_vec(&serde_json::json!({
                "version": 1, "currency": "USD", "category_ctr_priors": {"gaming": 0.03},
                "advertisers": [{"id": 7, "name": "A", "domain": "a.example"}],
                "campaigns": [{
                    "id": 10, "advertiser_id": 7, "name": "c", "kind": {"type": "direct"},
                    "pricing": {"model": "cpc", "bid_cpc_micros": 200_000u64}, "category": "gaming",
                    "budget_daily_micros": 1u64, "budget_lifetime_micros": 1u64,
                    "start_date": "2026-01-01", "end_date": "2026-12-31", "creative_ids": [1]
                }],
                "creatives": [{"id": 1, "format": "banner", "w": 300, "h": 250, "adm": "b"}]
            }))
            .unwrap(),
        )
        .unwrap();
        let ctx = Context {
            country: "GBR".into(),
            os_lower: "android".into(),
            device_type: 4,
            is_app: true,
            local_hour: 21,
            local_weekday: 6,
            site_cat: 9,
            day: crate::catalog::days_from_civil(2026, 1, 11),
            ..Context::default()
        };
        let slot = Slot {
            pos: 1,
            ..Slot::default()
        };
        let mut user = UserFeatures::MISSING;
        user.ctr = 0.05;
        user.cat_affinity[1] = 1.0;
        user.cat_ctr[1] = 0.07;
        let ad = AdRef {
            campaign: &catalog.campaigns[0],
            creative: &catalog.creatives[0],
            category: category_index("gaming"),
        };
        let mut row = [0.0; ROW_LEN];
        write_row(&mut row, &user, ad, &ContextCodes::of(&ctx), &slot, ctx.day);
        let get = |name: &str| row[SCHEMA_V1.names.iter().position(|n| *n == name).unwrap()];
        assert!(get("user_age_bucket").is_nan());
        assert_eq!(get("user_ctr"), 0.05);
        assert_eq!(get("ad_category"), 2.0);
        assert_eq!(get("ad_pricing"), 2.0);
        assert_eq!(get("ad_width"), 300.0);
        assert_eq!(get("ad_campaign_age_days"), 10.0);
        assert_eq!(get("ad_ctr_prior"), 0.03);
        assert_eq!(get("ad_advertiser"), 7.0);
        assert_eq!(get("ctx_country"), 2.0);
        assert_eq!(get("ctx_os"), 2.0);
        assert_eq!(get("ctx_hour"), 21.0);
        assert_eq!(get("ctx_site_category"), 9.0);
        assert_eq!(get("ctx_position"), 1.0);
        assert_eq!(get("x_user_cat_affinity"), 1.0);
        assert_eq!(get("x_user_cat_ctr"), 0.07);
    }
}
