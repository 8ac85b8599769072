//! The internal inventory: advertisers, campaigns, creatives, targeting, budgets and flight dates.
//!
//! The catalog is loaded once from a JSON file (format documented in `docs/catalog.md`), checked
//! record by record, and compiled into an immutable [`Catalog`] that every shard reads through an
//! `Arc`. Loading never panics: a bad file is refused with the file, the record and the field named.
//!
//! Money is integer micros of the catalog currency (USD). CPM prices are micros per thousand
//! impressions; CPC prices are micros per click.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

mod index;
pub use index::{EligibilityIndex, Probe};

/// Errors met while loading a catalog file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {path}: {message}")]
    Parse {
        file: String,
        path: String,
        message: String,
    },
    #[error("{file}: {record}: {field}: {message}")]
    Invalid {
        file: String,
        record: String,
        field: &'static str,
        message: String,
    },
}

/// The ad formats a creative can have and a campaign can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Banner,
    Video,
    Native,
}

impl Format {
    pub fn bit(self) -> u8 {
        match self {
            Format::Banner => 1,
            Format::Video => 2,
            Format::Native => 4,
        }
    }
}

/// How a campaign is sold. Guaranteed campaigns carry a priority (1 = most important).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum CampaignKind {
    /// A directly sold, non-guaranteed campaign competing on price.
    Direct,
    /// A guaranteed campaign; `priority` breaks eCPM ties and orders budget fallback.
    Guaranteed { priority: u8 },
    /// A house ad: fills at price 0 when nothing paid qualifies.
    House,
}

/// How a campaign pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase", deny_unknown_fields)]
pub enum Pricing {
    /// Pays per thousand impressions.
    Cpm { bid_cpm_micros: u64 },
    /// Pays per click; ranked by expected value (pCTR x CPC x 1000).
    Cpc { bid_cpc_micros: u64 },
}

impl Pricing {
    /// Whether the campaign pays per click (its eCPM depends on the pCTR).
    pub fn is_cpc(&self) -> bool {
        matches!(self, Pricing::Cpc { .. })
    }
}

/// Targeting rules. An empty list means "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Targeting {
    /// ISO-3166-1 alpha-3 country codes, as OpenRTB `geo.country`.
    pub countries: Vec<String>,
    /// Region codes (ISO-3166-2 subdivision, e.g. "CA"), as OpenRTB `geo.region`.
    pub regions: Vec<String>,
    /// OpenRTB device types (1 mobile/tablet, 2 PC, 3 CTV, 4 phone, 5 tablet, 6 connected, 7 STB).
    pub device_types: Vec<u8>,
    /// Operating systems, case-insensitive (e.g. "iOS", "Android", "Windows").
    pub os: Vec<String>,
    /// Inventory formats the campaign buys.
    pub formats: Vec<Format>,
    /// Day-parting: hours of the user's local day (0-23).
    pub hours: Vec<u8>,
    /// Day-parting: days of the week, 0 = Monday .. 6 = Sunday, in the user's local time.
    pub weekdays: Vec<u8>,
    /// Site or app (`site` | `app`); empty means both.
    pub inventory: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advertiser {
    pub id: u32,
    pub name: String,
    /// The advertiser's domain, sent as `adomain`.
    pub domain: String,
    /// IANA time zone of the advertiser's budgets (used by daily budgets).
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: u32,
    pub advertiser_id: u32,
    pub name: String,
    pub kind: CampaignKind,
    pub pricing: Pricing,
    /// Vertical used for the category CTR prior (a key of `category_ctr_priors`).
    pub category: String,
    /// IAB content categories sent as `cat` in the bid.
    #[serde(default)]
    pub iab_categories: Vec<String>,
    pub budget_daily_micros: u64,
    pub budget_lifetime_micros: u64,
    /// First day of the flight, `YYYY-MM-DD` (UTC), inclusive.
    pub start_date: String,
    /// Last day of the flight, `YYYY-MM-DD` (UTC), inclusive.
    pub end_date: String,
    /// The campaign's own reserve: it never serves below this eCPM.
    #[serde(default)]
    pub floor_cpm_micros: u64,
    #[serde(default)]
    pub targeting: Targeting,
    pub creative_ids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Creative {
    pub id: u32,
    pub format: Format,
    /// Width and height in pixels (banner, video player size); 0 for native.
    #[serde(default)]
    pub w: u32,
    #[serde(default)]
    pub h: u32,
    /// Video duration in seconds (video only).
    #[serde(default)]
    pub duration_s: u32,
    /// The markup returned as `adm` (HTML, VAST XML or native JSON).
    pub adm: String,
}

/// The file as written on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Format version of this file; must be 1.
    pub version: u32,
    pub currency: String,
    /// Category CTR priors (cold-start tier 4): vertical -> probability of a click.
    pub category_ctr_priors: BTreeMap<String, f64>,
    pub advertisers: Vec<Advertiser>,
    pub campaigns: Vec<Campaign>,
    pub creatives: Vec<Creative>,
}

/// A campaign compiled for fast eligibility checks.
#[derive(Debug, Clone)]
pub struct CampaignEntry {
    pub spec: Campaign,
    pub advertiser_domain: String,
    pub ctr_prior: f64,
    pub formats_mask: u8,
    pub device_types_mask: u8,
    pub hours_mask: u32,
    pub weekdays_mask: u8,
    /// Countries, regions and OS lower-cased for case-insensitive matching.
    pub countries: Vec<String>,
    pub regions: Vec<String>,
    pub os_lower: Vec<String>,
    pub site_ok: bool,
    pub app_ok: bool,
    pub start_day: i64,
    pub end_day: i64,
    /// Indexes into `Catalog::creatives`.
    pub creatives: Vec<usize>,
}

impl CampaignEntry {
    pub fn is_house(&self) -> bool {
        matches!(self.spec.kind, CampaignKind::House)
    }

    /// Lower is more important; house ads come last.
    pub fn priority(&self) -> u8 {
        match self.spec.kind {
            CampaignKind::Guaranteed { priority } => priority,
            CampaignKind::Direct => 12,
            CampaignKind::House => 16,
        }
    }
}

/// The immutable, compiled catalog every shard reads.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub currency: String,
    pub campaigns: Vec<CampaignEntry>,
    pub creatives: Vec<Creative>,
    pub advertisers: Vec<Advertiser>,
    /// Campaign sets per targeting value, for selection (built from the fields above).
    pub index: EligibilityIndex,
}

impl Catalog {
    /// Reads, parses and checks a catalog file.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| CatalogError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_slice(&file, &bytes)
    }

    /// Parses and checks catalog JSON; `file` names the source in errors.
    pub fn from_slice(file: &str, bytes: &[u8]) -> Result<Catalog, CatalogError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let parsed: CatalogFile =
            serde_path_to_error::deserialize(&mut de).map_err(|e| CatalogError::Parse {
                file: file.to_string(),
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        compile(file, parsed)
    }

    /// Campaign by id (linear; for tools and reports, not the hot path).
    pub fn campaign(&self, id: u32) -> Option<&CampaignEntry> {
        self.campaigns.iter().find(|c| c.spec.id == id)
    }
}

fn invalid(file: &str, record: String, field: &'static str, message: String) -> CatalogError {
    CatalogError::Invalid {
        file: file.to_string(),
        record,
        field,
        message,
    }
}

fn compile(file: &str, parsed: CatalogFile) -> Result<Catalog, CatalogError> {
    if parsed.version != 1 {
        return Err(invalid(
            file,
            "catalog".into(),
            "version",
            format!("unsupported version {}, expected 1", parsed.version),
        ));
    }
    if parsed.currency != "USD" {
        return Err(invalid(
            file,
            "catalog".into(),
            "currency",
            format!("unsupported currency {:?}, only USD", parsed.currency),
        ));
    }
    check_priors(file, &parsed.category_ctr_priors)?;
    let advertisers = check_advertisers(file, &parsed.advertisers)?;
    let creative_index = check_creatives(file, &parsed.creatives)?;
    let mut seen = HashSet::new();
    let mut campaigns = Vec::with_capacity(parsed.campaigns.len());
    for (i, c) in parsed.campaigns.iter().enumerate() {
        let record = format!("campaigns[{i}] (id {})", c.id);
        if !seen.insert(c.id) {
            return Err(invalid(file, record, "id", "duplicate campaign id".into()));
        }
        let domain = advertisers.get(&c.advertiser_id).ok_or_else(|| {
            invalid(
                file,
                record.clone(),
                "advertiser_id",
                format!("advertiser {} does not exist", c.advertiser_id),
            )
        })?;
        campaigns.push(compile_campaign(
            file,
            record,
            c,
            domain,
            &parsed.category_ctr_priors,
            &creative_index,
            &parsed.creatives,
        )?);
    }
    let index = EligibilityIndex::build(&campaigns, &parsed.creatives);
    Ok(Catalog {
        currency: parsed.currency,
        campaigns,
        creatives: parsed.creatives,
        advertisers: parsed.advertisers,
        index,
    })
}

fn check_priors(file: &str, priors: &BTreeMap<String, f64>) -> Result<(), CatalogError> {
    for (k, v) in priors {
        if !(v.is_finite() && *v > 0.0 && *v < 1.0) {
            return Err(invalid(
                file,
                format!("category_ctr_priors.{k}"),
                "value",
                format!("{v} is not a probability in (0, 1)"),
            ));
        }
    }
    Ok(())
}

fn check_advertisers<'a>(
    file: &str,
    list: &'a [Advertiser],
) -> Result<HashMap<u32, &'a str>, CatalogError> {
    let mut map = HashMap::new();
    for (i, a) in list.iter().enumerate() {
        let record = format!("advertisers[{i}] (id {})", a.id);
        if a.domain.is_empty() {
            return Err(invalid(file, record, "domain", "must not be empty".into()));
        }
        if map.insert(a.id, a.domain.as_str()).is_some() {
            return Err(invalid(
                file,
                record,
                "id",
                "duplicate advertiser id".into(),
            ));
        }
    }
    Ok(map)
}

fn check_creatives(file: &str, list: &[Creative]) -> Result<HashMap<u32, usize>, CatalogError> {
    let mut map = HashMap::new();
    for (i, c) in list.iter().enumerate() {
        let record = format!("creatives[{i}] (id {})", c.id);
        if c.adm.is_empty() {
            return Err(invalid(file, record, "adm", "must not be empty".into()));
        }
        if c.format != Format::Native && (c.w == 0 || c.h == 0) {
            return Err(invalid(
                file,
                record,
                "w",
                "banner and video creatives need w and h > 0".into(),
            ));
        }
        if map.insert(c.id, i).is_some() {
            return Err(invalid(file, record, "id", "duplicate creative id".into()));
        }
    }
    Ok(map)
}

fn compile_campaign(
    file: &str,
    record: String,
    c: &Campaign,
    advertiser_domain: &str,
    priors: &BTreeMap<String, f64>,
    creative_index: &HashMap<u32, usize>,
    creatives: &[Creative],
) -> Result<CampaignEntry, CatalogError> {
    let err = |field: &'static str, message: String| invalid(file, record.clone(), field, message);
    let ctr_prior = *priors.get(&c.category).ok_or_else(|| {
        err(
            "category",
            format!("{:?} has no entry in category_ctr_priors", c.category),
        )
    })?;
    check_pricing(c, &err)?;
    let start_day = parse_date(&c.start_date).ok_or_else(|| {
        err(
            "start_date",
            format!("{:?} is not a YYYY-MM-DD date", c.start_date),
        )
    })?;
    let end_day = parse_date(&c.end_date).ok_or_else(|| {
        err(
            "end_date",
            format!("{:?} is not a YYYY-MM-DD date", c.end_date),
        )
    })?;
    if end_day < start_day {
        return Err(err("end_date", "is before start_date".into()));
    }
    let creative_ids = resolve_creatives(c, creative_index, &err)?;
    let t = &c.targeting;
    Ok(CampaignEntry {
        spec: c.clone(),
        advertiser_domain: advertiser_domain.to_string(),
        ctr_prior,
        formats_mask: formats_mask(t, &creative_ids, creatives),
        device_types_mask: mask_u8(&t.device_types, 8, "targeting.device_types", &err)? as u8,
        hours_mask: mask_u8(&t.hours, 24, "targeting.hours", &err)?,
        weekdays_mask: mask_u8(&t.weekdays, 7, "targeting.weekdays", &err)? as u8,
        countries: t.countries.iter().map(|s| s.to_ascii_uppercase()).collect(),
        regions: t.regions.iter().map(|s| s.to_ascii_uppercase()).collect(),
        os_lower: t.os.iter().map(|s| s.to_ascii_lowercase()).collect(),
        site_ok: inventory_allows(t, "site", &err)?,
        app_ok: inventory_allows(t, "app", &err)?,
        start_day,
        end_day,
        creatives: creative_ids,
    })
}

fn check_pricing(
    c: &Campaign,
    err: &dyn Fn(&'static str, String) -> CatalogError,
) -> Result<(), CatalogError> {
    let is_house = matches!(c.kind, CampaignKind::House);
    let price = match c.pricing {
        Pricing::Cpm { bid_cpm_micros } => bid_cpm_micros,
        Pricing::Cpc { bid_cpc_micros } => bid_cpc_micros,
    };
    if !is_house && price == 0 {
        return Err(err("pricing", "a paid campaign needs a price > 0".into()));
    }
    if !is_house && c.budget_daily_micros == 0 {
        return Err(err(
            "budget_daily_micros",
            "a paid campaign needs a daily budget > 0".into(),
        ));
    }
    if c.budget_daily_micros > c.budget_lifetime_micros {
        return Err(err(
            "budget_daily_micros",
            "exceeds budget_lifetime_micros".into(),
        ));
    }
    if let CampaignKind::Guaranteed { priority } = c.kind
        && !(1..=15).contains(&priority)
    {
        return Err(err("kind.priority", format!("{priority} is not in 1..=15")));
    }
    Ok(())
}

fn resolve_creatives(
    c: &Campaign,
    index: &HashMap<u32, usize>,
    err: &dyn Fn(&'static str, String) -> CatalogError,
) -> Result<Vec<usize>, CatalogError> {
    if c.creative_ids.is_empty() {
        return Err(err(
            "creative_ids",
            "must list at least one creative".into(),
        ));
    }
    c.creative_ids
        .iter()
        .map(|id| {
            index
                .get(id)
                .copied()
                .ok_or_else(|| err("creative_ids", format!("creative {id} does not exist")))
        })
        .collect()
}

fn formats_mask(t: &Targeting, creatives: &[usize], all: &[Creative]) -> u8 {
    let owned: u8 = creatives.iter().fold(0, |m, &i| m | all[i].format.bit());
    let wanted: u8 = if t.formats.is_empty() {
        0xff
    } else {
        t.formats.iter().fold(0, |m, f| m | f.bit())
    };
    owned & wanted
}

fn mask_u8(
    values: &[u8],
    limit: u8,
    field: &'static str,
    err: &dyn Fn(&'static str, String) -> CatalogError,
) -> Result<u32, CatalogError> {
    if values.is_empty() {
        return Ok(u32::MAX);
    }
    let mut mask = 0u32;
    for &v in values {
        if v >= limit {
            return Err(err(field, format!("{v} is out of range 0..{limit}")));
        }
        mask |= 1 << v;
    }
    Ok(mask)
}

fn inventory_allows(
    t: &Targeting,
    kind: &str,
    err: &dyn Fn(&'static str, String) -> CatalogError,
) -> Result<bool, CatalogError> {
    for v in &t.inventory {
        if v != "site" && v != "app" {
            return Err(err(
                "targeting.inventory",
                format!("{v:?} is neither \"site\" nor \"app\""),
            ));
        }
    }
    Ok(t.inventory.is_empty() || t.inventory.iter().any(|v| v == kind))
}

/// Days since 1970-01-01 for a `YYYY-MM-DD` date, or None if malformed.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: proleptic Gregorian date to days since the Unix epoch.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`], for writing dates.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "version": 1, "currency": "USD",
            "category_ctr_priors": {"gaming": 0.032},
            "advertisers": [{"id": 1, "name": "A", "domain": "a.example"}],
            "campaigns": [{
                "id": 10, "advertiser_id": 1, "name": "c", "kind": {"type": "direct"},
                "pricing": {"model": "cpm", "bid_cpm_micros": 2_000_000u64}, "category": "gaming",
                "budget_daily_micros": 1_000_000u64, "budget_lifetime_micros": 9_000_000u64,
                "start_date": "2026-01-01", "end_date": "2026-12-31", "creative_ids": [100]
            }],
            "creatives": [{"id": 100, "format": "banner", "w": 300, "h": 250, "adm": "<div/>"}]
        })
    }

    fn load(v: &serde_json::Value) -> Result<Catalog, CatalogError> {
        Catalog::from_slice("cat.json", &serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn minimal_catalog_loads() {
        let c = load(&minimal()).unwrap();
        assert_eq!(c.campaigns.len(), 1);
        assert_eq!(c.campaigns[0].formats_mask, Format::Banner.bit());
        assert_eq!(c.campaigns[0].advertiser_domain, "a.example");
    }

    #[test]
    fn wrong_type_names_file_and_path() {
        let mut v = minimal();
        v["campaigns"][0]["budget_daily_micros"] = serde_json::json!("lots");
        let e = load(&v).unwrap_err().to_string();
        assert!(
            e.starts_with("cat.json: campaigns[0].budget_daily_micros: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn unknown_field_is_refused() {
        let mut v = minimal();
        v["campaigns"][0]["budget"] = serde_json::json!(5);
        let e = load(&v).unwrap_err().to_string();
        assert!(
            e.contains("campaigns[0]") && e.contains("unknown field `budget`"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_name_record_and_field() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "/campaigns/0/advertiser_id",
                serde_json::json!(7),
                "cat.json: campaigns[0] (id 10): advertiser_id: advertiser 7 does not exist",
            ),
            (
                "/campaigns/0/creative_ids",
                serde_json::json!([5]),
                "cat.json: campaigns[0] (id 10): creative_ids: creative 5 does not exist",
            ),
            (
                "/campaigns/0/end_date",
                serde_json::json!("2025-01-01"),
                "cat.json: campaigns[0] (id 10): end_date: is before start_date",
            ),
            (
                "/campaigns/0/start_date",
                serde_json::json!("2026-02-30"),
                "cat.json: campaigns[0] (id 10): start_date: \"2026-02-30\" is not a YYYY-MM-DD date",
            ),
            (
                "/campaigns/0/category",
                serde_json::json!("finance"),
                "cat.json: campaigns[0] (id 10): category: \"finance\" has no entry in category_ctr_priors",
            ),
            (
                "/campaigns/0/budget_daily_micros",
                serde_json::json!(10_000_000u64),
                "cat.json: campaigns[0] (id 10): budget_daily_micros: exceeds budget_lifetime_micros",
            ),
            (
                "/creatives/0/w",
                serde_json::json!(0),
                "cat.json: creatives[0] (id 100): w: banner and video creatives need w and h > 0",
            ),
        ];
        for (ptr, val, want) in cases {
            let mut v = minimal();
            *v.pointer_mut(ptr).unwrap() = val;
            assert_eq!(load(&v).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn dates_round_trip() {
        for s in ["1970-01-01", "2000-02-29", "2026-11-28", "2100-12-31"] {
            let d = parse_date(s).unwrap();
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(format!("{y:04}-{m:02}-{dd:02}"), s);
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2026-13-01"), None);
        assert_eq!(parse_date("2026-1-01"), None);
    }
}
