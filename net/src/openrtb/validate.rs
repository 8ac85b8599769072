//! OpenRTB rules a parsed bid request must meet before the engine spends time on it, with one
//! exact, path-qualified message per broken rule (the first found, in document order).
//! Knows OpenRTB semantics; must not know campaigns, floors policy or any engine state.

use super::error::RequestError;
use super::request::{Banner, BidRequest, Deal, Format, Geo, Imp, Pmp, Video};

/// Bounds applied by [`validate_bid_request`]. Every array the engine iterates per request and
/// every id it copies is bounded here; a request beyond a bound is rejected (HTTP 400, nbr 2),
/// never truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationLimits {
    /// Most impressions per request (default 64).
    pub imp_count_max: usize,
    /// Most `banner.format` entries per impression (default 32).
    pub format_count_max: usize,
    /// Most `pmp.deals` per impression (default 64).
    pub deal_count_max: usize,
    /// Most entries in `cur` (default 16).
    pub cur_count_max: usize,
    /// Most entries in `bcat` (default 512).
    pub bcat_count_max: usize,
    /// Most entries in `badv` (default 512).
    pub badv_count_max: usize,
    /// Smallest accepted `tmax`, milliseconds (default 10): below it no auction can finish.
    pub tmax_ms_min: u64,
    /// Largest accepted `tmax`, milliseconds (default 10 000).
    pub tmax_ms_max: u64,
    /// Longest accepted id (`id`, `imp[].id`, `deals[].id`, `tagid`), bytes (default 128).
    pub id_bytes_max: usize,
    /// Longest accepted free-text member (`site.page`, `site.ref`, `device.ua`), bytes (default 8192).
    pub string_bytes_max: usize,
}

impl Default for ValidationLimits {
    fn default() -> Self {
        ValidationLimits {
            imp_count_max: 64,
            format_count_max: 32,
            deal_count_max: 64,
            cur_count_max: 16,
            bcat_count_max: 512,
            badv_count_max: 512,
            tmax_ms_min: 10,
            tmax_ms_max: 10_000,
            id_bytes_max: 128,
            string_bytes_max: 8192,
        }
    }
}

/// Checks OpenRTB rules on a parsed request: non-empty ids, unique impression ids, at least one
/// media object per impression, sane sizes, floors and currencies, a single distribution channel
/// (site, app or dooh), `tmax` and array sizes within `limits`. Returns the first rule broken.
pub fn validate_bid_request(
    req: &BidRequest,
    limits: &ValidationLimits,
) -> Result<(), RequestError> {
    validate_request_top(req, limits)?;
    for (index, imp) in req.imp.iter().enumerate() {
        validate_imp(imp, index, limits)?;
        reject_duplicate_imp_id(req, index)?;
    }
    validate_context(req, limits)
}

fn fail<T>(message: String) -> Result<T, RequestError> {
    Err(RequestError::new(message))
}

fn validate_request_top(req: &BidRequest, limits: &ValidationLimits) -> Result<(), RequestError> {
    check_id(&req.id, || "request.id".into(), limits)?;
    if req.imp.is_empty() {
        return fail("request.imp must contain at least one impression".into());
    }
    check_count(req.imp.len(), limits.imp_count_max, || "request.imp".into())?;
    check_count(req.cur.len(), limits.cur_count_max, || "request.cur".into())?;
    check_count(req.bcat.len(), limits.bcat_count_max, || {
        "request.bcat".into()
    })?;
    check_count(req.badv.len(), limits.badv_count_max, || {
        "request.badv".into()
    })?;
    for (index, currency) in req.cur.iter().enumerate() {
        check_currency(currency, || format!("request.cur[{index}]"))?;
    }
    if let Some(tmax) = req.tmax {
        check_tmax(tmax, limits)?;
    }
    if let Some(test) = req.test
        && test > 1
    {
        return fail(format!("request.test must be 0 or 1, not {test}"));
    }
    if let Some(at) = req.at
        && !(at == 1 || at == 2 || at >= 500)
    {
        return fail(format!(
            "request.at must be 1 (first price), 2 (second price) or 500 and above, not {at}"
        ));
    }
    Ok(())
}

fn check_tmax(tmax: u64, limits: &ValidationLimits) -> Result<(), RequestError> {
    if tmax < limits.tmax_ms_min {
        return fail(format!(
            "request.tmax {tmax} is below the minimum of {} ms",
            limits.tmax_ms_min
        ));
    }
    if tmax > limits.tmax_ms_max {
        return fail(format!(
            "request.tmax {tmax} is above the maximum of {} ms",
            limits.tmax_ms_max
        ));
    }
    Ok(())
}

// Paths are closures: messages are formatted only when a rule is broken, so a valid request is
// validated without allocating.

fn check_id(
    id: &str,
    path: impl Fn() -> String,
    limits: &ValidationLimits,
) -> Result<(), RequestError> {
    if id.is_empty() {
        return fail(format!("{} must not be empty", path()));
    }
    check_length(id, limits.id_bytes_max, path)
}

fn check_length(
    text: &str,
    bytes_max: usize,
    path: impl Fn() -> String,
) -> Result<(), RequestError> {
    if text.len() > bytes_max {
        return fail(format!(
            "{} is {} bytes long, more than the limit of {bytes_max}",
            path(),
            text.len()
        ));
    }
    Ok(())
}

fn check_count(
    count: usize,
    count_max: usize,
    path: impl Fn() -> String,
) -> Result<(), RequestError> {
    if count > count_max {
        return fail(format!(
            "{} has {count} entries, more than the limit of {count_max}",
            path()
        ));
    }
    Ok(())
}

/// ISO-4217 shape: three ASCII upper-case letters.
fn check_currency(code: &str, path: impl Fn() -> String) -> Result<(), RequestError> {
    let bytes = code.as_bytes();
    if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
        return fail(format!(
            "{} must be a 3-letter ISO-4217 currency code, not \"{}\"",
            path(),
            code.escape_debug()
        ));
    }
    Ok(())
}

fn check_floor(floor: f64, path: impl Fn() -> String) -> Result<(), RequestError> {
    if !floor.is_finite() {
        return fail(format!("{} must be a finite number", path()));
    }
    if floor < 0.0 {
        return fail(format!("{} must not be negative", path()));
    }
    Ok(())
}

fn validate_imp(imp: &Imp, index: usize, limits: &ValidationLimits) -> Result<(), RequestError> {
    check_id(&imp.id, || format!("request.imp[{index}].id"), limits)?;
    if imp.banner.is_none() && imp.video.is_none() && imp.native.is_none() && imp.audio.is_none() {
        return fail(format!(
            "request.imp[{index}] must have at least one of banner, video, native, audio"
        ));
    }
    check_floor(imp.bidfloor, || format!("request.imp[{index}].bidfloor"))?;
    if let Some(currency) = &imp.bidfloorcur {
        check_currency(currency, || format!("request.imp[{index}].bidfloorcur"))?;
    }
    if let Some(tagid) = &imp.tagid {
        check_length(tagid, limits.id_bytes_max, || {
            format!("request.imp[{index}].tagid")
        })?;
    }
    if let Some(banner) = &imp.banner {
        let full_screen = imp.instl == Some(1);
        validate_banner(banner, index, full_screen, limits)?;
    }
    if let Some(video) = &imp.video {
        validate_video(video, index)?;
    }
    if let Some(pmp) = &imp.pmp {
        validate_pmp(pmp, index, limits)?;
    }
    Ok(())
}

/// Impression ids are compared pairwise: at most `imp_count_max` (64) impressions, no allocation.
fn reject_duplicate_imp_id(req: &BidRequest, index: usize) -> Result<(), RequestError> {
    let id = &req.imp[index].id;
    match req.imp[..index]
        .iter()
        .position(|earlier| earlier.id == *id)
    {
        Some(first) => fail(format!(
            "request.imp[{index}].id \"{}\" duplicates request.imp[{first}].id",
            id.escape_debug()
        )),
        None => Ok(()),
    }
}

fn check_positive_size(size: Option<u32>, path: impl Fn() -> String) -> Result<(), RequestError> {
    if size == Some(0) {
        return fail(format!("{} must be a positive number", path()));
    }
    Ok(())
}

/// `w`/`h` of 0 are accepted only on interstitials (`instl: 1`), where they mean "the full screen"
/// (the Prebid mobile sample sends that); everywhere else sizes must be positive.
fn validate_banner(
    banner: &Banner,
    imp: usize,
    full_screen: bool,
    limits: &ValidationLimits,
) -> Result<(), RequestError> {
    if !full_screen {
        check_positive_size(banner.w, || format!("request.imp[{imp}].banner.w"))?;
        check_positive_size(banner.h, || format!("request.imp[{imp}].banner.h"))?;
    }
    let format_given = banner.was_present("format") || !banner.format.is_empty();
    if format_given && banner.format.is_empty() {
        return fail(format!(
            "request.imp[{imp}].banner.format must not be empty"
        ));
    }
    check_count(banner.format.len(), limits.format_count_max, || {
        format!("request.imp[{imp}].banner.format")
    })?;
    for (index, format) in banner.format.iter().enumerate() {
        validate_format(format, || {
            format!("request.imp[{imp}].banner.format[{index}]")
        })?;
    }
    if banner.format.is_empty() && (banner.w.is_none() || banner.h.is_none()) {
        return fail(format!(
            "request.imp[{imp}].banner must have w and h, or a non-empty format"
        ));
    }
    Ok(())
}

fn validate_format(format: &Format, at: impl Fn() -> String) -> Result<(), RequestError> {
    check_positive_size(format.w, || format!("{}.w", at()))?;
    check_positive_size(format.h, || format!("{}.h", at()))?;
    check_positive_size(format.wratio, || format!("{}.wratio", at()))?;
    check_positive_size(format.hratio, || format!("{}.hratio", at()))?;
    let sized = format.w.is_some() && format.h.is_some();
    let flexible = format.wratio.is_some() && format.hratio.is_some();
    if !sized && !flexible {
        return fail(format!("{} must have w and h, or wratio and hratio", at()));
    }
    Ok(())
}

fn validate_video(video: &Video, imp: usize) -> Result<(), RequestError> {
    check_positive_size(video.w, || format!("request.imp[{imp}].video.w"))?;
    check_positive_size(video.h, || format!("request.imp[{imp}].video.h"))?;
    if let (Some(min), Some(max)) = (video.minduration, video.maxduration)
        && min > max
    {
        let at = format!("request.imp[{imp}].video");
        return fail(format!(
            "{at}.minduration {min} is greater than {at}.maxduration {max}"
        ));
    }
    Ok(())
}

fn validate_pmp(pmp: &Pmp, imp: usize, limits: &ValidationLimits) -> Result<(), RequestError> {
    check_count(pmp.deals.len(), limits.deal_count_max, || {
        format!("request.imp[{imp}].pmp.deals")
    })?;
    for (index, deal) in pmp.deals.iter().enumerate() {
        validate_deal(
            deal,
            || format!("request.imp[{imp}].pmp.deals[{index}]"),
            limits,
        )?;
    }
    Ok(())
}

fn validate_deal(
    deal: &Deal,
    at: impl Fn() -> String,
    limits: &ValidationLimits,
) -> Result<(), RequestError> {
    check_id(&deal.id, || format!("{}.id", at()), limits)?;
    check_floor(deal.bidfloor, || format!("{}.bidfloor", at()))?;
    if let Some(currency) = &deal.bidfloorcur {
        check_currency(currency, || format!("{}.bidfloorcur", at()))?;
    }
    Ok(())
}

fn validate_context(req: &BidRequest, limits: &ValidationLimits) -> Result<(), RequestError> {
    let channels = [req.site.is_some(), req.app.is_some(), req.dooh.is_some()];
    if channels.iter().filter(|present| **present).count() > 1 {
        return fail("request must contain at most one of site, app, dooh".into());
    }
    if let Some(site) = &req.site {
        if let Some(page) = &site.page {
            check_length(page, limits.string_bytes_max, || "request.site.page".into())?;
        }
        if let Some(referrer) = &site.r#ref {
            check_length(referrer, limits.string_bytes_max, || {
                "request.site.ref".into()
            })?;
        }
    }
    if let Some(device) = &req.device {
        if let Some(ua) = &device.ua {
            check_length(ua, limits.string_bytes_max, || "request.device.ua".into())?;
        }
        if let Some(geo) = &device.geo {
            validate_geo(geo, "request.device.geo")?;
        }
    }
    if let Some(geo) = req.user.as_ref().and_then(|user| user.geo.as_ref()) {
        validate_geo(geo, "request.user.geo")?;
    }
    Ok(())
}

fn validate_geo(geo: &Geo, at: &str) -> Result<(), RequestError> {
    check_range(geo.lat, 90.0, || format!("{at}.lat"))?;
    check_range(geo.lon, 180.0, || format!("{at}.lon"))
}

fn check_range(
    value: Option<f64>,
    bound: f64,
    path: impl Fn() -> String,
) -> Result<(), RequestError> {
    if let Some(value) = value
        && !(-bound..=bound).contains(&value)
    {
        return fail(format!("{} must be between -{bound} and {bound}", path()));
    }
    Ok(())
}
