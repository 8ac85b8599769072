//! `adgen`: deterministic demo data from a seed.
//!
//! Writes `catalog.json` (the engine's catalog format: ~50 advertisers, ~200 campaigns with
//! realistic budgets, prices, targeting and flights, plus house ads) and `users.csv` (a user
//! population whose activity follows Zipf with alpha = 1.0, seed Part 5). The same seed and the same
//! `today` always give byte-identical files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use engine::catalog::{
    Advertiser, Campaign, CampaignKind, CatalogFile, Creative, Format, Pricing, Targeting,
    civil_from_days,
};
use engine::features::{CATEGORIES, N_CAT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal};

/// What to generate.
#[derive(Debug, Clone)]
pub struct AdgenOptions {
    pub seed: u64,
    pub advertisers: usize,
    pub campaigns: usize,
    pub users: usize,
    /// Days since the Unix epoch that flights are placed around.
    pub today: i64,
}

/// Category CTR priors (seed Part 4, cold-start tier 4: industry benchmarks by vertical).
pub const CATEGORY_PRIORS: [(&str, f64); 10] = [
    ("ecommerce", 0.018),
    ("gaming", 0.032),
    ("finance", 0.009),
    ("travel", 0.012),
    ("auto", 0.010),
    ("entertainment", 0.022),
    ("health", 0.011),
    ("education", 0.014),
    ("food", 0.016),
    ("tech", 0.013),
];

const IAB_BY_CATEGORY: [&str; 10] = [
    "IAB22", "IAB9-30", "IAB13", "IAB20", "IAB2", "IAB1", "IAB7", "IAB5", "IAB8", "IAB19",
];

/// (country, share, regions, lat, lon, utc offset minutes)
const COUNTRIES: [(&str, f64, &[&str], f64, f64); 10] = [
    (
        "USA",
        0.40,
        &["CA", "NY", "TX", "FL", "WA", "IL"],
        39.8,
        -98.6,
    ),
    ("GBR", 0.10, &["ENG", "SCT", "WLS"], 52.4, -1.5),
    ("DEU", 0.08, &["BE", "BY", "HH", "NW"], 51.2, 10.4),
    ("FRA", 0.07, &["IDF", "ARA", "PAC"], 46.6, 2.2),
    ("CAN", 0.06, &["ON", "QC", "BC"], 56.1, -106.3),
    ("BRA", 0.07, &["SP", "RJ", "MG"], -14.2, -51.9),
    ("IND", 0.08, &["MH", "DL", "KA"], 20.6, 79.0),
    ("JPN", 0.06, &["13", "27", "23"], 36.2, 138.3),
    ("AUS", 0.04, &["NSW", "VIC", "QLD"], -25.3, 133.8),
    ("ESP", 0.04, &["MD", "CT", "AN"], 40.5, -3.7),
];

/// (devicetype, share, os, make, model, ua)
const DEVICES: [(u8, f64, &str, &str, &str, &str); 6] = [
    (
        4,
        0.30,
        "iOS",
        "Apple",
        "iPhone15,2",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    (
        4,
        0.25,
        "Android",
        "Samsung",
        "SM-S918B",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML like Gecko) Chrome/124.0 Mobile Safari/537.36",
    ),
    (
        2,
        0.22,
        "Windows",
        "Microsoft",
        "PC",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML like Gecko) Chrome/124.0 Safari/537.36",
    ),
    (
        2,
        0.10,
        "macOS",
        "Apple",
        "Mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML like Gecko) Version/17.4 Safari/605.1.15",
    ),
    (
        5,
        0.08,
        "iPadOS",
        "Apple",
        "iPad13,18",
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    (3, 0.05, "tvOS", "Apple", "AppleTV11,1", "AppleTV11,1/17.4"),
];

/// IAB standard banner sizes, most common first.
const BANNER_SIZES: [(u32, u32); 7] = [
    (300, 250),
    (728, 90),
    (320, 50),
    (300, 600),
    (160, 600),
    (970, 250),
    (320, 100),
];

/// Video player sizes: 4:3 and 16:9.
const VIDEO_SIZES: [(u32, u32); 3] = [(640, 480), (640, 360), (1280, 720)];

const NAME_PARTS: [&str; 16] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Tyrell",
    "Cyberdyne",
    "Wonka",
    "Gringotts",
    "Oceanic",
    "Monarch",
    "Aperture",
];

fn pick_weighted<'a, T>(rng: &mut StdRng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for it in items {
        x -= weight(it);
        if x <= 0.0 {
            return it;
        }
    }
    &items[items.len() - 1]
}

fn date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Builds the catalog.
pub fn catalog(opts: &AdgenOptions) -> CatalogFile {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let advertisers = advertisers(&mut rng, opts.advertisers);
    let mut creatives = Vec::new();
    let mut campaigns = Vec::new();
    let houses = (opts.campaigns / 40).max(3);
    for i in 0..opts.campaigns {
        let id = 1000 + i as u32;
        let house = i >= opts.campaigns - houses;
        let adv = &advertisers[rng.random_range(0..advertisers.len())];
        let c = if house {
            house_campaign(&mut rng, id, adv, opts.today, &mut creatives)
        } else {
            paid_campaign(&mut rng, id, adv, opts.today, &mut creatives)
        };
        campaigns.push(c);
    }
    CatalogFile {
        version: 1,
        currency: "USD".into(),
        category_ctr_priors: CATEGORY_PRIORS
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect::<BTreeMap<_, _>>(),
        advertisers,
        campaigns,
        creatives,
    }
}

fn advertisers(rng: &mut StdRng, n: usize) -> Vec<Advertiser> {
    const ZONES: [&str; 5] = [
        "America/New_York",
        "America/Los_Angeles",
        "Europe/London",
        "Europe/Berlin",
        "Asia/Tokyo",
    ];
    (0..n)
        .map(|i| {
            let a = NAME_PARTS[i % NAME_PARTS.len()];
            let b = NAME_PARTS[(i / NAME_PARTS.len() + 3 * i + 1) % NAME_PARTS.len()];
            let name = format!("{a} {b} {}", i + 1);
            Advertiser {
                id: i as u32 + 1,
                domain: format!("{}-{}{}.example", a.to_lowercase(), b.to_lowercase(), i + 1),
                name,
                timezone: ZONES[rng.random_range(0..ZONES.len())].into(),
            }
        })
        .collect()
}

fn money(rng: &mut StdRng, median: f64, sigma: f64, lo: f64, hi: f64) -> u64 {
    let d = LogNormal::new(median.ln(), sigma).expect("valid lognormal");
    let v: f64 = d.sample(rng);
    // Round to cents, in micros.
    ((v.clamp(lo, hi) * 100.0).round() * 10_000.0) as u64
}

fn paid_campaign(
    rng: &mut StdRng,
    id: u32,
    adv: &Advertiser,
    today: i64,
    creatives: &mut Vec<Creative>,
) -> Campaign {
    let cat_index = rng.random_range(0..CATEGORY_PRIORS.len());
    let guaranteed = rng.random_bool(0.1);
    let pricing = if !guaranteed && rng.random_bool(0.6) {
        Pricing::Cpc {
            bid_cpc_micros: money(rng, 0.25, 0.7, 0.02, 3.0),
        }
    } else {
        Pricing::Cpm {
            bid_cpm_micros: money(rng, 2.5, 0.6, 0.3, 25.0),
        }
    };
    let daily = money(rng, 400.0, 1.0, 20.0, 20_000.0);
    let start = today - rng.random_range(0..60);
    let end = today + rng.random_range(7..120);
    let formats = pick_formats(rng);
    let creative_ids = make_creatives(rng, id, &formats, creatives);
    Campaign {
        id,
        advertiser_id: adv.id,
        name: format!(
            "{} {} #{id}",
            adv.name.split(' ').next().unwrap_or("Adv"),
            CATEGORY_PRIORS[cat_index].0
        ),
        kind: if guaranteed {
            CampaignKind::Guaranteed {
                priority: rng.random_range(4..=8),
            }
        } else {
            CampaignKind::Direct
        },
        pricing,
        category: CATEGORY_PRIORS[cat_index].0.into(),
        iab_categories: vec![IAB_BY_CATEGORY[cat_index].into()],
        budget_daily_micros: daily,
        budget_lifetime_micros: daily * (end - start + 1) as u64,
        start_date: date(start),
        end_date: date(end),
        floor_cpm_micros: if rng.random_bool(0.2) {
            money(rng, 0.5, 0.5, 0.1, 3.0)
        } else {
            0
        },
        targeting: targeting(rng, &formats),
        creative_ids,
    }
}

fn house_campaign(
    rng: &mut StdRng,
    id: u32,
    adv: &Advertiser,
    today: i64,
    creatives: &mut Vec<Creative>,
) -> Campaign {
    let formats = vec![Format::Banner, Format::Video, Format::Native];
    let creative_ids = make_creatives(rng, id, &formats, creatives);
    Campaign {
        id,
        advertiser_id: adv.id,
        name: format!("House promo #{id}"),
        kind: CampaignKind::House,
        pricing: Pricing::Cpm { bid_cpm_micros: 0 },
        category: "entertainment".into(),
        iab_categories: vec![],
        budget_daily_micros: 0,
        budget_lifetime_micros: 0,
        start_date: date(today - 365),
        end_date: date(today + 3650),
        floor_cpm_micros: 0,
        targeting: Targeting::default(),
        creative_ids,
    }
}

fn pick_formats(rng: &mut StdRng) -> Vec<Format> {
    let x: f64 = rng.random();
    if x < 0.65 {
        vec![Format::Banner]
    } else if x < 0.80 {
        vec![Format::Video]
    } else if x < 0.90 {
        vec![Format::Native]
    } else {
        vec![Format::Banner, Format::Native]
    }
}

fn make_creatives(
    rng: &mut StdRng,
    campaign: u32,
    formats: &[Format],
    out: &mut Vec<Creative>,
) -> Vec<u32> {
    let mut ids = Vec::new();
    for &f in formats {
        let n = match f {
            Format::Banner if formats.len() == 3 => BANNER_SIZES.len(),
            Format::Banner => rng.random_range(1..=4),
            Format::Video if formats.len() == 3 => VIDEO_SIZES.len(),
            _ => 1,
        };
        for k in 0..n {
            let id = 100_000 + out.len() as u32;
            out.push(creative(rng, id, campaign, f, k));
            ids.push(id);
        }
    }
    ids
}

fn creative(rng: &mut StdRng, id: u32, campaign: u32, format: Format, k: usize) -> Creative {
    match format {
        Format::Banner => {
            let (w, h) = if k < BANNER_SIZES.len() && rng.random_bool(0.5) {
                BANNER_SIZES[k]
            } else {
                *pick_weighted(
                    rng,
                    &BANNER_SIZES,
                    |&(w, _)| if w == 300 { 3.0 } else { 1.0 },
                )
            };
            Creative {
                id,
                format,
                w,
                h,
                duration_s: 0,
                adm: format!(
                    "<a href=\"https://ads.example/click?c={campaign}&cr={id}\"><img src=\"https://cdn.example/cr/{id}_{w}x{h}.png\" width=\"{w}\" height=\"{h}\"></a>"
                ),
            }
        }
        Format::Video => {
            let duration_s = if rng.random_bool(0.6) { 15 } else { 30 };
            let (w, h) = if rng.random_bool(0.5) {
                (1280, 720)
            } else {
                (640, 360)
            };
            Creative {
                id,
                format,
                w,
                h,
                duration_s,
                adm: format!(
                    "<VAST version=\"4.0\"><Ad id=\"{id}\"><InLine><AdSystem>adcore</AdSystem><AdTitle>c{campaign}</AdTitle><Creatives><Creative><Linear><Duration>00:00:{duration_s:02}</Duration><MediaFiles><MediaFile delivery=\"progressive\" type=\"video/mp4\" width=\"{w}\" height=\"{h}\">https://cdn.example/v/{id}.mp4</MediaFile></MediaFiles></Linear></Creative></Creatives></InLine></Ad></VAST>"
                ),
            }
        }
        Format::Native => Creative {
            id,
            format,
            w: 0,
            h: 0,
            duration_s: 0,
            adm: format!(
                "{{\"native\":{{\"ver\":\"1.2\",\"assets\":[{{\"id\":1,\"title\":{{\"text\":\"Offer {id}\"}}}}],\"link\":{{\"url\":\"https://ads.example/click?c={campaign}\"}}}}}}"
            ),
        },
    }
}

fn targeting(rng: &mut StdRng, formats: &[Format]) -> Targeting {
    let mut t = Targeting {
        formats: formats.to_vec(),
        ..Targeting::default()
    };
    if rng.random_bool(0.5) {
        let n = rng.random_range(1..=4);
        for _ in 0..n {
            let c = pick_weighted(rng, &COUNTRIES, |c| c.1).0.to_string();
            if !t.countries.contains(&c) {
                t.countries.push(c);
            }
        }
        if t.countries.len() == 1 && rng.random_bool(0.3) {
            let regions = COUNTRIES
                .iter()
                .find(|c| c.0 == t.countries[0])
                .map(|c| c.2)
                .unwrap_or(&[]);
            t.regions = regions.iter().take(2).map(|r| r.to_string()).collect();
        }
    }
    if rng.random_bool(0.3) {
        t.device_types = if rng.random_bool(0.5) {
            vec![4, 5, 1]
        } else {
            vec![2]
        };
    }
    if rng.random_bool(0.15) {
        t.os = if rng.random_bool(0.5) {
            vec!["iOS".into(), "iPadOS".into()]
        } else {
            vec!["Android".into()]
        };
    }
    if rng.random_bool(0.2) {
        let from = rng.random_range(5..10u8);
        t.hours = (from..24).collect();
    }
    if rng.random_bool(0.1) {
        t.weekdays = vec![0, 1, 2, 3, 4];
    }
    if rng.random_bool(0.15) {
        t.inventory = vec![if rng.random_bool(0.5) { "app" } else { "site" }.into()];
    }
    t
}

/// Quotes a CSV field when it holds a comma or a quote (RFC 4180).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Age buckets: 1 = 18-24, 2 = 25-34, 3 = 35-44, 4 = 45-54, 5 = 55-64, 6 = 65+ (shares).
const AGE_SHARES: [f64; 6] = [0.14, 0.24, 0.22, 0.18, 0.13, 0.09];

/// One simulated user: what `users.csv` shows, and the hidden traits the ground truth uses.
#[derive(Debug, Clone)]
pub struct SimUser {
    pub user_id: String,
    pub country: &'static str,
    pub region: &'static str,
    pub device: usize,
    pub ip: String,
    pub lat: f64,
    pub lon: f64,
    pub activity: f64,
    pub age_bucket: u8,
    /// "M", "F", "O" or "" (unknown).
    pub gender: &'static str,
    /// Reported interests (category indexes); noisy view of the hidden affinities.
    pub interests: Vec<usize>,
    pub cohort: u32,
    /// Historic (impressions, clicks) per category of `engine::features::CATEGORIES`.
    pub history: [(u32, u32); N_CAT],
    /// Hidden: log-odds shift per category and overall.
    pub affinity: [f64; N_CAT],
    pub clickiness: f64,
}

impl SimUser {
    pub fn device_type(&self) -> u8 {
        DEVICES[self.device].0
    }

    pub fn os(&self) -> &'static str {
        DEVICES[self.device].2
    }
}

/// Age effect on the log-odds of a click, per category (hidden ground truth).
fn age_effect(age_bucket: u8, cat: usize) -> f64 {
    let young = age_bucket <= 2;
    let old = age_bucket >= 5;
    match CATEGORY_PRIORS[cat].0 {
        "gaming" if young => 0.6,
        "gaming" if old => -0.7,
        "finance" if old => 0.5,
        "finance" if young => -0.3,
        "travel" if (3..=5).contains(&age_bucket) => 0.3,
        "health" if old => 0.5,
        "education" if young => 0.4,
        _ => 0.0,
    }
}

/// The hidden age x category effect (shared with the click log's ground truth).
pub fn age_effect_public(age_bucket: u8, cat: usize) -> f64 {
    age_effect(age_bucket, cat)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The hidden part of a user's click log-odds that does not depend on the context.
fn user_logit(u: &SimUser, cat: usize) -> f64 {
    logit(CATEGORY_PRIORS[cat].1) + u.affinity[cat] + u.clickiness + age_effect(u.age_bucket, cat)
}

fn sim_user(rng: &mut StdRng, rank: usize) -> SimUser {
    let country = pick_weighted(rng, &COUNTRIES, |c| c.1);
    let region = country.2[rng.random_range(0..country.2.len())];
    let device = pick_weighted_index(rng, DEVICES.len(), |i| DEVICES[i].1);
    let ip = format!(
        "{}.{}.{}.{}",
        rng.random_range(11..223u8),
        rng.random::<u8>(),
        rng.random::<u8>(),
        rng.random_range(1..255u8)
    );
    let lat = country.3 + rng.random_range(-3.0..3.0);
    let lon = country.4 + rng.random_range(-3.0..3.0);
    let user_id = format!("u{:016x}", rng.random::<u64>());
    let age_bucket = pick_weighted_index(rng, 6, |i| AGE_SHARES[i]) as u8 + 1;
    let gender = *pick_weighted(
        rng,
        &[("M", 0.46), ("F", 0.46), ("O", 0.02), ("", 0.06)],
        |g| g.1,
    );
    let mut affinity = [0.0; N_CAT];
    let normal = Normal::new(-0.2, 0.35).expect("valid normal");
    for a in affinity.iter_mut() {
        *a = normal.sample(rng);
    }
    let mut true_interests = Vec::new();
    while true_interests.len() < 2 {
        let k = pick_weighted_index(rng, N_CAT, |k| (1.0 + age_effect(age_bucket, k)).max(0.2));
        if !true_interests.contains(&k) {
            true_interests.push(k);
            affinity[k] = 1.1 + rng.random_range(0.0..0.4);
        }
    }
    let mut interests: Vec<usize> = true_interests
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.8))
        .collect();
    if rng.random_bool(0.25) {
        let k = rng.random_range(0..N_CAT);
        if !interests.contains(&k) {
            interests.push(k);
        }
    }
    let clickiness = Normal::new(0.0, 0.5).expect("valid normal").sample(rng);
    let primary = interests.first().map(|&k| k as u32 + 1).unwrap_or(0);
    let mut u = SimUser {
        user_id,
        country: country.0,
        region,
        device,
        ip,
        lat,
        lon,
        activity: 1.0 / rank as f64,
        age_bucket: if gender.0.is_empty() { 0 } else { age_bucket },
        gender: gender.0,
        interests,
        cohort: u32::from(age_bucket) * 16 + primary,
        history: [(0, 0); N_CAT],
        affinity,
        clickiness,
    };
    u.history = history(rng, &u, rank);
    u
}

/// Past impressions by activity rank (heavy users have hundreds, the tail a few, 8 % none),
/// each clicked with the user's hidden context-free probability.
fn history(rng: &mut StdRng, u: &SimUser, rank: usize) -> [(u32, u32); N_CAT] {
    let mut h = [(0u32, 0u32); N_CAT];
    if rng.random_bool(0.08) {
        return h;
    }
    let imps = (2000.0 * (rank as f64).powf(-0.6)).round() as u32 + rng.random_range(0..4);
    for _ in 0..imps {
        let k = rng.random_range(0..N_CAT);
        h[k].0 += 1;
        if rng.random_bool(sigmoid(user_logit(u, k))) {
            h[k].1 += 1;
        }
    }
    h
}

fn pick_weighted_index(rng: &mut StdRng, n: usize, weight: impl Fn(usize) -> f64) -> usize {
    let total: f64 = (0..n).map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for i in 0..n {
        x -= weight(i);
        if x <= 0.0 {
            return i;
        }
    }
    n - 1
}

/// The simulated population (activity of the user at rank r is 1/r: Zipf, alpha = 1.0).
pub fn population(opts: &AdgenOptions) -> Vec<SimUser> {
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x05ee_d0f0_5e75);
    (1..=opts.users)
        .map(|rank| sim_user(&mut rng, rank))
        .collect()
}

/// Writes the user population CSV: `user_id,country,region,devicetype,os,make,model,ip,ua,lat,lon,
/// activity,age_bucket,gender,interests,cohort,cat_history` (format read by `engine::profile`).
pub fn users_csv(opts: &AdgenOptions) -> String {
    users_csv_of(&population(opts))
}

/// The CSV of an already simulated population.
pub fn users_csv_of(users: &[SimUser]) -> String {
    let mut out = String::with_capacity(users.len() * 260);
    out.push_str("user_id,country,region,devicetype,os,make,model,ip,ua,lat,lon,activity,");
    out.push_str("age_bucket,gender,interests,cohort,cat_history\n");
    for u in users {
        let dev = &DEVICES[u.device];
        let interests: Vec<&str> = u.interests.iter().map(|&k| CATEGORIES[k]).collect();
        let history: Vec<String> = u.history.iter().map(|(i, c)| format!("{i}:{c}")).collect();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.4},{:.4},{:.9},{},{},{},{},{}",
            u.user_id,
            u.country,
            u.region,
            dev.0,
            dev.2,
            dev.3,
            csv_field(dev.4),
            u.ip,
            csv_field(dev.5),
            u.lat,
            u.lon,
            u.activity,
            u.age_bucket,
            u.gender,
            interests.join(";"),
            u.cohort,
            history.join(";")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> AdgenOptions {
        AdgenOptions {
            seed: 7,
            advertisers: 50,
            campaigns: 200,
            users: 1000,
            today: engine::catalog::days_from_civil(2026, 11, 28),
        }
    }

    #[test]
    fn catalog_is_valid_for_the_engine_and_deterministic() {
        let a = serde_json::to_vec(&catalog(&opts())).unwrap();
        let b = serde_json::to_vec(&catalog(&opts())).unwrap();
        assert_eq!(a, b);
        let cat = engine::catalog::Catalog::from_slice("gen", &a).unwrap();
        assert_eq!(cat.campaigns.len(), 200);
        assert!(cat.campaigns.iter().filter(|c| c.is_house()).count() >= 3);
        let advertisers: std::collections::HashSet<_> =
            cat.campaigns.iter().map(|c| c.spec.advertiser_id).collect();
        assert!(advertisers.len() > 30);
    }

    #[test]
    fn users_follow_zipf_and_have_all_columns() {
        let csv = users_csv(&opts());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1001);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.csv");
        std::fs::write(&path, &csv).unwrap();
        let pop = crate::load::population::Population::from_csv(&path).unwrap();
        assert_eq!(pop.len(), 1000);
        let act = |i: usize| {
            let fields = engine::profile::split_csv_line(lines[i]).unwrap();
            fields[11].parse::<f64>().unwrap()
        };
        assert!((act(1) / act(10) - 10.0).abs() < 1e-6);
        // The engine reads the profile columns of the same file.
        let parsed = engine::profile::parse_users("users.csv", &csv).unwrap();
        assert_eq!(parsed.users.len(), 1000);
        let heavy = parsed.users[0].1;
        assert!(heavy.imps > 100, "the most active user has a long history");
        let none = parsed.users.iter().filter(|(_, p)| p.imps == 0).count();
        assert!(none > 30 && none < 150, "about 8 % new users: {none}");
    }

    #[test]
    fn category_names_match_the_engine_schema() {
        let names: Vec<&str> = CATEGORY_PRIORS.iter().map(|c| c.0).collect();
        assert_eq!(names, CATEGORIES);
    }
}
