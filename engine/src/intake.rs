//! Intake: turns a validated OpenRTB request into the owned, compact [`AuctionJob`] that travels
//! to the shard owning the user, and decides which shard that is.
//!
//! Owns: the owner-shard hash, the slot and context extraction (formats, sizes, floors, geo,
//! device, local time for day-parting). Must not know: how candidates are chosen or priced.

use std::hash::{BuildHasher, Hasher};

use compact_str::CompactString;
use net::openrtb::{BidRequest, Imp};
use smallvec::SmallVec;

use crate::catalog::Format;

/// One impression opportunity, reduced to what selection needs.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    pub imp_id: CompactString,
    /// Bit set of [`Format::bit`] the impression accepts.
    pub formats_mask: u8,
    /// Accepted banner sizes (from `banner.w/h` and `banner.format`); up to four inline.
    pub banner_sizes: SmallVec<[(u32, u32); 4]>,
    /// Video player size, if the impression takes video (0 = any).
    pub video_size: Option<(u32, u32)>,
    /// Video duration bounds in seconds (0 = unbounded).
    pub video_duration_s: (u32, u32),
    /// The request's floor for this slot, CPM micros (deal floors lower it only if lower).
    pub floor_cpm_micros: u64,
    /// OpenRTB ad position (`banner.pos` or `video.pos`), 0 if unknown.
    pub pos: u8,
}

/// Who and where the user is, and when, as selection sees it.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Upper-case ISO-3166-1 alpha-3, empty if unknown.
    pub country: CompactString,
    /// Upper-case region code, empty if unknown.
    pub region: CompactString,
    /// OpenRTB device type, 0 if unknown.
    pub device_type: u8,
    /// Lower-case OS name, empty if unknown.
    pub os_lower: CompactString,
    pub is_app: bool,
    /// Hour (0-23) and weekday (0 = Monday) in the user's local time (UTC if unknown).
    pub local_hour: u8,
    pub local_weekday: u8,
    /// Days since the Unix epoch (UTC), for flight dates.
    pub day: i64,
    /// Top-level IAB category of the site or app (`IAB9-30` -> 9), 0 if unknown.
    pub site_cat: u8,
}

/// The owned unit of work handed to the owner shard.
#[derive(Debug, Clone)]
pub struct AuctionJob {
    pub request_id: CompactString,
    /// Inline for the common single-impression request (no allocation per request).
    pub slots: SmallVec<[Slot; 1]>,
    pub ctx: Context,
    /// Stable hash of the user identity; `user_key % shards` is the owner.
    pub user_key: u64,
    /// When the request was received; the deadline is `received + tmax`.
    pub received: crate::clock::Instant,
    pub tmax_ms: u64,
}

/// A fixed-seed hasher so every shard (and every restart) maps a user to the same owner.
fn identity_hasher() -> ahash::AHasher {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
    .build_hasher()
}

/// Hash of the best identity the request carries: user.id, then device.ifa, then ip+ua, then the request id.
pub fn user_key(req: &BidRequest) -> u64 {
    let mut h = identity_hasher();
    let user_id = req.user.as_ref().and_then(|u| u.id.as_deref());
    let device = req.device.as_ref();
    if let Some(id) = user_id.filter(|s| !s.is_empty()) {
        h.write(b"u:");
        h.write(id.as_bytes());
    } else if let Some(ifa) = device
        .and_then(|d| d.ifa.as_deref())
        .filter(|s| !s.is_empty())
    {
        h.write(b"d:");
        h.write(ifa.as_bytes());
    } else if let Some(d) = device.filter(|d| d.ip.is_some() || d.ua.is_some()) {
        h.write(b"i:");
        h.write(d.ip.as_deref().unwrap_or("").as_bytes());
        h.write(d.ua.as_deref().unwrap_or("").as_bytes());
    } else {
        h.write(b"r:");
        h.write(req.id.as_bytes());
    }
    h.finish()
}

/// The shard that owns a user key.
pub fn owner_shard(user_key: u64, shards: usize) -> usize {
    debug_assert!(shards > 0);
    (user_key % shards as u64) as usize
}

/// Converts a floor in currency units (CPM) to integer micros, rounding up so we never undercut it.
pub fn floor_to_micros(floor: f64) -> u64 {
    if floor.is_finite() && floor > 0.0 {
        (floor * 1_000_000.0).ceil().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

fn slot_from_imp(imp: &Imp) -> Slot {
    let mut slot = Slot {
        imp_id: imp.id.clone(),
        floor_cpm_micros: floor_to_micros(imp.bidfloor),
        ..Slot::default()
    };
    if let Some(b) = &imp.banner {
        slot.formats_mask |= Format::Banner.bit();
        slot.pos = b.pos.and_then(|p| u8::try_from(p).ok()).unwrap_or(0);
        if let (Some(w), Some(h)) = (b.w, b.h) {
            slot.banner_sizes.push((w, h));
        }
        for f in &b.format {
            if let (Some(w), Some(h)) = (f.w, f.h) {
                slot.banner_sizes.push((w, h));
            }
        }
    }
    if let Some(v) = &imp.video {
        slot.formats_mask |= Format::Video.bit();
        slot.video_size = Some((v.w.unwrap_or(0), v.h.unwrap_or(0)));
        slot.video_duration_s = (v.minduration.unwrap_or(0), v.maxduration.unwrap_or(0));
        if slot.pos == 0 {
            slot.pos = v.pos.and_then(|p| u8::try_from(p).ok()).unwrap_or(0);
        }
    }
    if imp.native.is_some() {
        slot.formats_mask |= Format::Native.bit();
    }
    slot
}

fn context_from(req: &BidRequest, now_unix_s: i64) -> Context {
    let device = req.device.as_ref();
    let geo = device
        .and_then(|d| d.geo.as_ref())
        .or_else(|| req.user.as_ref().and_then(|u| u.geo.as_deref()));
    let utc_offset_min = geo
        .and_then(|g| g.utcoffset)
        .unwrap_or(0)
        .clamp(-1440, 1440) as i64;
    let local_s = now_unix_s + utc_offset_min * 60;
    let local_day = local_s.div_euclid(86_400);
    Context {
        country: upper_case(geo.and_then(|g| g.country.as_deref())),
        region: upper_case(geo.and_then(|g| g.region.as_deref())),
        device_type: device
            .and_then(|d| d.devicetype)
            .and_then(|t| u8::try_from(t).ok())
            .unwrap_or(0),
        os_lower: lower_case(device.and_then(|d| d.os.as_deref())),
        is_app: req.app.is_some(),
        local_hour: (local_s.rem_euclid(86_400) / 3600) as u8,
        // 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
        local_weekday: ((local_day + 3).rem_euclid(7)) as u8,
        day: now_unix_s.div_euclid(86_400),
        site_cat: site_category(req),
    }
}

/// Top-level IAB number of the first site/app category (`IAB9-30` -> 9), 0 if none parses.
fn site_category(req: &BidRequest) -> u8 {
    let cats = match (&req.site, &req.app) {
        (Some(s), _) => &s.cat,
        (None, Some(a)) => &a.cat,
        _ => return 0,
    };
    cats.first().map(|c| iab_top_level(c)).unwrap_or(0)
}

/// `IAB9-30` -> 9, `IAB22` -> 22; anything else -> 0.
pub fn iab_top_level(cat: &str) -> u8 {
    let digits = cat.strip_prefix("IAB").unwrap_or("");
    let end = digits.find('-').unwrap_or(digits.len());
    digits[..end].parse().unwrap_or(0)
}

/// The user key of a bare user id (as `user_key` computes it for `user.id`).
pub fn user_key_of_id(id: &str) -> u64 {
    let mut h = identity_hasher();
    h.write(b"u:");
    h.write(id.as_bytes());
    h.finish()
}

/// Seconds since the Unix epoch, now, from the coarse wall clock (a few ns instead of a full
/// clock read per request; at most one tick, a few ms, behind: nothing here needs finer than
/// seconds).
pub fn now_unix_s() -> i64 {
    crate::ledger::now_ms_coarse().div_euclid(1_000)
}

/// ASCII upper case of an optional code, empty if absent (inline up to 24 bytes: no allocation).
fn upper_case(code: Option<&str>) -> CompactString {
    let code = code.unwrap_or("");
    let mut out = CompactString::new(code);
    // Codes mostly come upper case already ("USA"): a scan is cheaper than a rewrite.
    if code.bytes().any(|b| b.is_ascii_lowercase()) {
        out.make_ascii_uppercase();
    }
    out
}

/// ASCII lower case of an optional name, empty if absent.
fn lower_case(name: Option<&str>) -> CompactString {
    let name = name.unwrap_or("");
    let mut out = CompactString::new(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        out.make_ascii_lowercase();
    }
    out
}

/// Builds the job for a validated request.
pub fn job_from_request(
    req: &BidRequest,
    received: crate::clock::Instant,
    now_unix_s: i64,
    tmax_ms_default: u64,
) -> AuctionJob {
    AuctionJob {
        request_id: req.id.clone(),
        slots: req.imp.iter().map(slot_from_imp).collect(),
        ctx: context_from(req, now_unix_s),
        user_key: user_key(req),
        received,
        tmax_ms: req.tmax.filter(|&t| t > 0).unwrap_or(tmax_ms_default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> BidRequest {
        net::openrtb::parse_bid_request(json.as_bytes()).unwrap()
    }

    #[test]
    fn owner_depends_on_user_id_only() {
        let a = parse(
            r#"{"id":"1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"id":"u-7"}}"#,
        );
        let b = parse(
            r#"{"id":"2","imp":[{"id":"9","banner":{"w":728,"h":90}}],"user":{"id":"u-7"},"device":{"ip":"1.2.3.4"}}"#,
        );
        assert_eq!(user_key(&a), user_key(&b));
        assert_eq!(user_key(&a), user_key_of_id("u-7"));
        let c = parse(
            r#"{"id":"1","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"id":"u-8"}}"#,
        );
        assert_ne!(user_key(&a), user_key(&c));
    }

    #[test]
    fn owners_spread_over_shards() {
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            let r = parse(&format!(
                r#"{{"id":"r","imp":[{{"id":"1","banner":{{"w":1,"h":1}}}}],"user":{{"id":"user-{i}"}}}}"#
            ));
            counts[owner_shard(user_key(&r), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn slot_and_context_extraction() {
        let r = parse(
            r#"{"id":"r","tmax":80,"app":{"bundle":"x"},
                "imp":[{"id":"a","bidfloor":1.25,"banner":{"w":300,"h":250,"format":[{"w":320,"h":50}]}},
                       {"id":"b","video":{"mimes":["video/mp4"],"w":640,"h":480,"maxduration":30}}],
                "device":{"devicetype":4,"os":"iOS","geo":{"country":"usa","region":"ca","utcoffset":-480}}}"#,
        );
        // 2026-11-28 12:00:00 UTC is a Saturday; -8h => 04:00 local, still Saturday.
        let now = crate::catalog::days_from_civil(2026, 11, 28) * 86_400 + 12 * 3600;
        let job = job_from_request(&r, crate::clock::now(), now, 120);
        assert_eq!(job.tmax_ms, 80);
        assert_eq!(job.slots[0].floor_cpm_micros, 1_250_000);
        assert_eq!(
            job.slots[0].banner_sizes.as_slice(),
            [(300, 250), (320, 50)]
        );
        assert_eq!(job.slots[1].formats_mask, Format::Video.bit());
        assert_eq!(job.slots[1].video_duration_s, (0, 30));
        assert_eq!(job.ctx.country, "USA");
        assert_eq!(job.ctx.region, "CA");
        assert_eq!(job.ctx.os_lower, "ios");
        assert!(job.ctx.is_app);
        assert_eq!(job.ctx.local_hour, 4);
        assert_eq!(job.ctx.local_weekday, 5);
        assert_eq!(job.ctx.site_cat, 0);
        assert_eq!(iab_top_level("IAB9-30"), 9);
        assert_eq!(iab_top_level("IAB22"), 22);
        assert_eq!(iab_top_level("x"), 0);
    }

    #[test]
    fn floors_round_up_to_micros() {
        assert_eq!(floor_to_micros(0.0000011), 2);
        assert_eq!(floor_to_micros(-1.0), 0);
        assert_eq!(floor_to_micros(f64::NAN), 0);
    }
}
