//! Candidate selection: which campaigns and creatives may serve a slot, given targeting,
//! day-parting, flight dates and creative fit.
//!
//! Owns: eligibility rules. Must not know: prices, budgets or scores. Writes into a caller-owned
//! buffer so the hot path does not allocate.

use crate::catalog::{CampaignEntry, Catalog, Creative, Format};
use crate::intake::{Context, Slot};

/// A campaign and the creative that would serve the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub campaign: usize,
    pub creative: usize,
}

/// Whether the campaign's targeting, day-parting and flight accept this context.
pub fn targeting_matches(c: &CampaignEntry, ctx: &Context) -> bool {
    ctx.day >= c.start_day
        && ctx.day <= c.end_day
        && if ctx.is_app { c.app_ok } else { c.site_ok }
        && c.hours_mask & (1 << ctx.local_hour) != 0
        && c.weekdays_mask & (1 << ctx.local_weekday) != 0
        && mask_allows(c.device_types_mask, ctx.device_type)
        && list_allows(&c.countries, &ctx.country)
        && list_allows(&c.regions, &ctx.region)
        && list_allows(&c.os_lower, &ctx.os_lower)
}

fn mask_allows(mask: u8, value: u8) -> bool {
    mask == u8::MAX || (value < 8 && mask & (1 << value) != 0)
}

/// An empty list allows anything; otherwise the value must be known and listed.
fn list_allows(list: &[String], value: &str) -> bool {
    list.is_empty() || (!value.is_empty() && list.iter().any(|v| v == value))
}

/// Whether a creative fits the slot's format and size.
pub fn creative_fits(cr: &Creative, slot: &Slot) -> bool {
    if slot.formats_mask & cr.format.bit() == 0 {
        return false;
    }
    match cr.format {
        Format::Banner => slot.banner_sizes.contains(&(cr.w, cr.h)),
        Format::Video => video_fits(cr, slot),
        Format::Native => true,
    }
}

fn video_fits(cr: &Creative, slot: &Slot) -> bool {
    let (min_s, max_s) = slot.video_duration_s;
    let duration_ok = cr.duration_s >= min_s && (max_s == 0 || cr.duration_s <= max_s);
    let size_ok = match slot.video_size {
        Some((0, _)) | Some((_, 0)) | None => true,
        // Players scale video: accept the same aspect ratio within 10 %.
        Some((w, h)) => {
            let want = w as f64 / h as f64;
            let have = cr.w as f64 / cr.h as f64;
            (want - have).abs() <= want * 0.1
        }
    };
    duration_ok && size_ok
}

/// Appends to `out` every eligible (campaign, creative) for the slot, at most `limit` of them, in
/// catalog order; one creative per campaign (the first that fits). Returns how many were cut by
/// the limit. Visits only the campaigns the catalog's eligibility index lets through, and checks
/// each of those against every rule (the index is a filter, not the decision).
pub fn select_candidates(
    catalog: &Catalog,
    ctx: &Context,
    slot: &Slot,
    limit: usize,
    out: &mut Vec<Candidate>,
) -> usize {
    let probe = catalog.index.probe(ctx, slot);
    let eligible = probe
        .campaigns()
        .filter_map(|ci| eligible(catalog, ci, ctx, slot));
    push_limited(eligible, limit, out)
}

/// Replaces `out` with the first `limit` candidates; returns how many more there were.
fn push_limited(
    candidates: impl Iterator<Item = Candidate>,
    limit: usize,
    out: &mut Vec<Candidate>,
) -> usize {
    out.clear();
    let mut cut = 0;
    for candidate in candidates {
        if out.len() < limit {
            out.push(candidate);
        } else {
            cut += 1;
        }
    }
    cut
}

/// Campaign `ci` with the first of its creatives that fits the slot, if its targeting accepts
/// the context.
fn eligible(catalog: &Catalog, ci: usize, ctx: &Context, slot: &Slot) -> Option<Candidate> {
    let c = &catalog.campaigns[ci];
    if c.formats_mask & slot.formats_mask == 0 || !targeting_matches(c, ctx) {
        return None;
    }
    let creative = c
        .creatives
        .iter()
        .copied()
        .find(|&i| creative_fits(&catalog.creatives[i], slot))?;
    Some(Candidate {
        campaign: ci,
        creative,
    })
}

/// [`select_candidates`] without the index: every campaign in catalog order (the reference
/// the index is tested against).
#[cfg(test)]
fn select_candidates_scan(
    catalog: &Catalog,
    ctx: &Context,
    slot: &Slot,
    limit: usize,
    out: &mut Vec<Candidate>,
) -> usize {
    let eligible = (0..catalog.campaigns.len()).filter_map(|ci| eligible(catalog, ci, ctx, slot));
    push_limited(eligible, limit, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Format};
    use compact_str::CompactString;

    fn catalog(targeting: serde_json::Value) -> Catalog {
        let v = serde_json::json!({
            "version": 1, "currency": "USD", "category_ctr_priors": {"gaming": 0.03},
            "advertisers": [{"id": 1, "name": "A", "domain": "a.example"}],
            "campaigns": [{
                "id": 10, "advertiser_id": 1, "name": "c", "kind": {"type": "direct"},
                "pricing": {"model": "cpm", "bid_cpm_micros": 1_000_000u64}, "category": "gaming",
                "budget_daily_micros": 1_000_000u64, "budget_lifetime_micros": 1_000_000u64,
                "start_date": "2026-01-01", "end_date": "2026-12-31", "creative_ids": [1, 2],
                "targeting": targeting
            }],
            "creatives": [
                {"id": 1, "format": "banner", "w": 300, "h": 250, "adm": "b"},
                {"id": 2, "format": "video", "w": 1280, "h": 720, "duration_s": 15, "adm": "v"}
            ]
        });
        Catalog::from_slice("t", &serde_json::to_vec(&v).unwrap()).unwrap()
    }

    fn ctx() -> Context {
        Context {
            country: "USA".into(),
            region: "CA".into(),
            device_type: 4,
            os_lower: "ios".into(),
            is_app: true,
            local_hour: 20,
            local_weekday: 2,
            day: crate::catalog::days_from_civil(2026, 6, 1),
            site_cat: 0,
        }
    }

    fn banner(w: u32, h: u32) -> Slot {
        Slot {
            imp_id: "1".into(),
            formats_mask: Format::Banner.bit(),
            banner_sizes: smallvec::smallvec![(w, h)],
            ..Slot::default()
        }
    }

    fn picks(cat: &Catalog, ctx: &Context, slot: &Slot) -> Vec<Candidate> {
        let mut out = Vec::new();
        select_candidates(cat, ctx, slot, 16, &mut out);
        out
    }

    #[test]
    fn size_and_format_must_fit() {
        let cat = catalog(serde_json::json!({}));
        assert_eq!(picks(&cat, &ctx(), &banner(300, 250)).len(), 1);
        assert!(picks(&cat, &ctx(), &banner(728, 90)).is_empty());
        let video = Slot {
            formats_mask: Format::Video.bit(),
            video_size: Some((640, 360)),
            video_duration_s: (5, 30),
            ..Slot::default()
        };
        assert_eq!(picks(&cat, &ctx(), &video)[0].creative, 1);
        let short = Slot {
            video_duration_s: (0, 10),
            ..video
        };
        assert!(picks(&cat, &ctx(), &short).is_empty());
    }

    #[test]
    fn targeting_rules_apply() {
        let cat = catalog(serde_json::json!({
            "countries": ["USA"], "regions": ["CA"], "device_types": [4, 5], "os": ["iOS"],
            "hours": [19, 20, 21], "weekdays": [0, 1, 2, 3, 4], "inventory": ["app"]
        }));
        let slot = banner(300, 250);
        assert_eq!(picks(&cat, &ctx(), &slot).len(), 1);
        type Change = Box<dyn Fn(&mut Context)>;
        let variants: Vec<Change> = vec![
            Box::new(|c| c.country = "GBR".into()),
            Box::new(|c| c.country = CompactString::default()),
            Box::new(|c| c.region = "NY".into()),
            Box::new(|c| c.device_type = 2),
            Box::new(|c| c.os_lower = "android".into()),
            Box::new(|c| c.local_hour = 3),
            Box::new(|c| c.local_weekday = 6),
            Box::new(|c| c.is_app = false),
            Box::new(|c| c.day = crate::catalog::days_from_civil(2027, 1, 1)),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut c = ctx();
            change(&mut c);
            assert!(
                picks(&cat, &c, &slot).is_empty(),
                "variant {i} should not match"
            );
        }
    }

    #[test]
    fn limit_cuts_and_counts() {
        let cat = catalog(serde_json::json!({}));
        let mut out = Vec::new();
        assert_eq!(
            select_candidates(&cat, &ctx(), &banner(300, 250), 0, &mut out),
            1
        );
        assert!(out.is_empty());
    }

    mod index_matches_scan {
        use super::*;
        use proptest::prelude::*;

        const COUNTRIES: [&str; 4] = ["USA", "GBR", "DEU", "FRA"];
        const REGIONS: [&str; 3] = ["CA", "NY", "TX"];
        const OS: [&str; 3] = ["ios", "android", "windows"];
        const SIZES: [(u32, u32); 4] = [(300, 250), (728, 90), (320, 50), (160, 600)];

        fn pick<'a>(pool: &[&'a str], mask: u8) -> Vec<&'a str> {
            (0..pool.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| pool[i])
                .collect()
        }

        /// A campaign's targeting from random masks over small pools (mask 0: no list).
        fn campaign(i: usize, masks: [u32; 8]) -> serde_json::Value {
            let [
                countries,
                regions,
                os,
                devices,
                hours,
                weekdays,
                inventory,
                creatives,
            ] = masks;
            let hours: Vec<u32> = (0..24)
                .filter(|h| hours & (1 << h) != 0 && h % 3 != 1)
                .collect();
            serde_json::json!({
                "id": i + 1, "advertiser_id": 1, "name": format!("c{i}"), "kind": {"type": "direct"},
                "pricing": {"model": "cpm", "bid_cpm_micros": 1_000_000u64}, "category": "gaming",
                "budget_daily_micros": 1_000_000u64, "budget_lifetime_micros": 1_000_000u64,
                "start_date": "2026-01-01", "end_date": if i % 7 == 3 { "2026-01-02" } else { "2026-12-31" },
                "creative_ids": (0..6).filter(|k| creatives & (1 << k) != 0).map(|k| k + 1).collect::<Vec<_>>(),
                "targeting": {
                    "countries": pick(&COUNTRIES, countries as u8), "regions": pick(&REGIONS, regions as u8),
                    "os": pick(&OS, os as u8),
                    "device_types": (1..8).filter(|d| devices & (1 << d) != 0).collect::<Vec<u32>>(),
                    "hours": if hours.len() > 20 { vec![] } else { hours },
                    "weekdays": (0..7).filter(|d| weekdays & (1 << d) != 0 && weekdays & 0x80 == 0).collect::<Vec<u32>>(),
                    "inventory": match inventory % 3 { 0 => vec![], 1 => vec!["site"], _ => vec!["app"] },
                }
            })
        }

        fn catalog_of(masks: &[[u32; 8]]) -> Option<Catalog> {
            let campaigns: Vec<_> = masks
                .iter()
                .enumerate()
                .filter(|(_, m)| m[7] & 0x3f != 0)
                .map(|(i, m)| campaign(i, *m))
                .collect();
            let mut creatives: Vec<_> = SIZES
                .iter()
                .enumerate()
                .map(|(k, (w, h))| serde_json::json!({"id": k + 1, "format": "banner", "w": w, "h": h, "adm": "b"}))
                .collect();
            creatives.push(serde_json::json!({"id": 5, "format": "video", "w": 1280, "h": 720, "duration_s": 15, "adm": "v"}));
            creatives.push(serde_json::json!({"id": 6, "format": "native", "adm": "n"}));
            let v = serde_json::json!({
                "version": 1, "currency": "USD", "category_ctr_priors": {"gaming": 0.03},
                "advertisers": [{"id": 1, "name": "A", "domain": "a.example"}],
                "campaigns": campaigns, "creatives": creatives,
            });
            Catalog::from_slice("t", &serde_json::to_vec(&v).unwrap()).ok()
        }

        fn value(pool: &[&str], k: u8) -> CompactString {
            match k as usize {
                k if k < pool.len() => pool[k].into(),
                k if k == pool.len() => CompactString::default(),
                _ => "ZZZ".into(),
            }
        }

        proptest! {
            #[test]
            fn same_candidates_and_cut(
                masks in proptest::collection::vec(any::<[u32; 8]>(), 0..150),
                request in any::<[u8; 10]>(),
                sizes in proptest::collection::vec((0u8..6, 0u8..6), 0..11),
                limit in 0usize..40,
            ) {
                let Some(cat) = catalog_of(&masks) else { return Ok(()) };
                let [country, region, os, device, hour, weekday, app, formats, day, _] = request;
                let ctx = Context {
                    country: value(&COUNTRIES, country % 6),
                    region: value(&REGIONS, region % 5),
                    os_lower: value(&OS, os % 5),
                    device_type: device % 10,
                    local_hour: hour % 24,
                    local_weekday: weekday % 7,
                    is_app: app % 2 == 1,
                    day: crate::catalog::days_from_civil(2026, 1, 1) + i64::from(day % 4),
                    ..ctx()
                };
                let size = |k: u8| SIZES.get(k as usize).copied().unwrap_or((1, 1));
                let slot = Slot {
                    imp_id: "1".into(),
                    formats_mask: formats % 8,
                    banner_sizes: sizes.iter().map(|&(a, _)| size(a)).collect(),
                    video_size: Some((640, 360)),
                    video_duration_s: (0, 30),
                    ..Slot::default()
                };
                let (mut fast, mut scan) = (Vec::new(), Vec::new());
                let cut = select_candidates(&cat, &ctx, &slot, limit, &mut fast);
                let cut_scan = select_candidates_scan(&cat, &ctx, &slot, limit, &mut scan);
                prop_assert_eq!(fast, scan);
                prop_assert_eq!(cut, cut_scan);
            }
        }
    }
}
