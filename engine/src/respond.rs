//! Writes the HTTP answer of an auction: a BidResponse (200), a no-bid (204 with its reason in
//! headers), an invalid request (4xx with the exact message and `nbr` 2), or unavailable (503).
//!
//! Owns: the mapping from auction results to OpenRTB responses (adm, crid, adomain, nurl/burl,
//! house flag). Must not know: how winners were chosen.

use std::fmt::Write;

use net::http::{HeaderName, Response};
use net::openrtb::{Bid, BidRequest, BidResponse, RawJson, SeatBid};

use crate::auction::{AuctionResult, Win};
use crate::metrics::{NoBidReason, Outcome, ShardMetrics};
use crate::rtb::fanout::ExternalWin;
use crate::shard::Shared;

/// The headers set on every auction answer, checked once, at build time.
const OPENRTB_NBR: HeaderName = net::header_name!("x-openrtb-nbr");
const NOBID_REASON: HeaderName = net::header_name!("x-adcore-nobid-reason");
const INTEGRITY_RULE: HeaderName = net::header_name!("x-adcore-integrity-rule");
const CONTENT_TYPE: HeaderName = net::header_name!("content-type");
const OPENRTB_VERSION: HeaderName = net::header_name!("x-openrtb-version");

/// Answers an invalid request: `status` with `{"id":..,"nbr":2,"error":..}`.
pub fn invalid(resp: &mut Response, status: u16, request_id: &str, message: &str) {
    let body = serde_json::json!({ "id": request_id, "nbr": 2, "error": message });
    resp.status(status)
        .header("content-type", "application/json")
        .body(body.to_string().as_bytes());
}

/// 503: the owner shard is stopping.
pub fn unavailable(resp: &mut Response) {
    resp.status(503)
        .header("content-type", "text/plain")
        .header("retry-after", "1")
        .body(b"shutting down\n");
}

fn nobid(resp: &mut Response, reason: NoBidReason) {
    let mut code = itoa::Buffer::new();
    resp.status(204)
        .named_header(OPENRTB_NBR, code.format(reason.nbr()))
        .named_header(NOBID_REASON, reason.name());
}

/// 204 for a request the integrity check flagged: `invalid_traffic`, the rule, and the rule's
/// OpenRTB no-bid reason (4 non-human traffic, 5 datacenter IP).
pub fn invalid_traffic(resp: &mut Response, rule: crate::integrity::Rule) {
    let mut code = itoa::Buffer::new();
    resp.status(204)
        .named_header(OPENRTB_NBR, code.format(rule.nbr()))
        .named_header(NOBID_REASON, NoBidReason::InvalidTraffic.name())
        .named_header(INTEGRITY_RULE, rule.name());
}

/// Writes the auction's answer and says how the request ended. `external` are the slots won by
/// DSP bids (a house ad the internal side put on such a slot is left out).
pub fn auction(
    resp: &mut Response,
    shared: &Shared,
    req: &BidRequest,
    result: &AuctionResult,
    external: &[ExternalWin],
    m: &ShardMetrics,
) -> Outcome {
    let internal: Vec<&Win> = result
        .wins
        .iter()
        .filter(|w| !external.iter().any(|e| e.slot == w.slot))
        .collect();
    if internal.is_empty() && external.is_empty() {
        let reason = result.nobid.unwrap_or(NoBidReason::NoEligibleCampaign);
        m.nobid(reason);
        nobid(resp, reason);
        return Outcome::NoBid;
    }
    let mut seatbid = Vec::with_capacity(1 + external.len());
    if !internal.is_empty() {
        seatbid.push(SeatBid {
            bid: internal.iter().map(|w| bid_for(shared, req, w)).collect(),
            seat: Some(shared.config.auction.seat.clone()),
            ..Default::default()
        });
    }
    for e in external {
        let dsp = &shared.registry.dsps[e.dsp].id;
        seatbid.push(SeatBid {
            bid: vec![e.bid.clone()],
            seat: Some(e.seat.clone().unwrap_or_else(|| dsp.clone())),
            ..Default::default()
        });
    }
    let answer = BidResponse {
        id: req.id.to_string(),
        seatbid,
        cur: Some("USD".to_string()),
        ..Default::default()
    };
    let body = resp.body_mut();
    body.clear();
    net::openrtb::write_bid_response(&answer, body);
    resp.status(200)
        .named_header(CONTENT_TYPE, "application/json")
        .named_header(OPENRTB_VERSION, "2.6");
    if external.is_empty() && internal.iter().all(|w| w.house) {
        Outcome::House
    } else {
        Outcome::Filled
    }
}

/// A notice URL with the OpenRTB macros the caller substitutes.
fn notice_url(
    base: &str,
    kind: &str,
    req: &BidRequest,
    w: &Win,
    campaign_id: u32,
    creative_id: u32,
) -> String {
    let mut url = String::with_capacity(160);
    let _ = write!(
        url,
        "{base}/notice/{kind}?auction=${{AUCTION_ID}}&imp={}&cid={campaign_id}&crid={creative_id}&price=${{AUCTION_PRICE}}",
        req.imp[w.slot].id
    );
    url
}

/// `bid.ext` of a house ad: `{"adcore":{"house":true}}`.
fn house_ext() -> RawJson {
    RawJson::parse(r#"{"adcore":{"house":true}}"#).expect("literal JSON")
}

fn bid_for(shared: &Shared, req: &BidRequest, w: &Win) -> Bid {
    let catalog = &shared.catalog;
    let campaign = &catalog.campaigns[w.campaign];
    let creative = &catalog.creatives[w.creative];
    let base = &shared.config.auction.notice_base_url;
    let (cid, crid) = (campaign.spec.id, creative.id);
    Bid {
        id: format!("{}-{}", req.id, req.imp[w.slot].id),
        impid: req.imp[w.slot].id.to_string(),
        price: w.price_cpm_micros as f64 / 1_000_000.0,
        adid: Some(crid.to_string()),
        adm: Some(creative.adm.clone()),
        nurl: Some(notice_url(base, "win", req, w, cid, crid)),
        burl: Some(notice_url(base, "billing", req, w, cid, crid)),
        adomain: vec![campaign.advertiser_domain.clone()],
        cid: Some(cid.to_string()),
        crid: Some(crid.to_string()),
        cat: campaign.spec.iab_categories.clone(),
        w: (creative.w > 0).then_some(creative.w),
        h: (creative.h > 0).then_some(creative.h),
        ext: w.house.then(house_ext),
        ..Default::default()
    }
}
