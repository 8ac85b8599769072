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

/// Appends to `out` every eligible (campaign, creative) for the slot, at most `limit` of them;
/// one creative per campaign (the first that fits). Returns how many were cut by the limit.
pub fn select_candidates(
    catalog: &Catalog,
    ctx: &Context,
    slot: &Slot,
    limit: usize,
    out: &mut Vec<Candidate>,
) -> usize {
    out.clear();
    let mut cut = 0;
    for (ci, c) in catalog.campaigns.iter().enumerate() {
        if c.formats_mask & slot.formats_mask == 0 || !targeting_matches(c, ctx) {
            continue;
        }
        let fit = c
            .creatives
            .iter()
            .copied()
            .find(|&i| creative_fits(&catalog.creatives[i], slot));
        if let Some(creative) = fit {
            if out.len() < limit {
                out.push(Candidate {
                    campaign: ci,
                    creative,
                });
            } else {
                cut += 1;
            }
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Format};

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
            banner_sizes: vec![(w, h)],
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
            Box::new(|c| c.country = String::new()),
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
}
