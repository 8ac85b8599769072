//! Writes the HTTP answer of an auction: a BidResponse (200), a no-bid (204 with its reason in
//! headers), an invalid request (4xx with the exact message and `nbr` 2), or unavailable (503).
//!
//! Owns: the mapping from auction results to OpenRTB responses (adm, crid, adomain, nurl/burl,
//! house flag). Must not know: how winners were chosen.

use std::fmt::Write;

use net::http::{HeaderLines, HeaderName, Response};
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
    resp.status(204).header_lines(nobid_headers(reason));
}

/// A no-bid's headers, fixed per reason: its OpenRTB code (`NoBidReason::nbr`) and its name.
/// Written as one copy; a test holds them equal to the code and the name.
const fn nobid_headers(reason: NoBidReason) -> HeaderLines {
    const NO_ELIGIBLE: HeaderLines = net::header_lines!(
        "x-openrtb-nbr" => "0", "x-adcore-nobid-reason" => "no_eligible_campaign");
    const BELOW_FLOOR: HeaderLines =
        net::header_lines!("x-openrtb-nbr" => "0", "x-adcore-nobid-reason" => "below_floor");
    const BUDGET: HeaderLines =
        net::header_lines!("x-openrtb-nbr" => "0", "x-adcore-nobid-reason" => "budget_exhausted");
    const DEADLINE: HeaderLines = net::header_lines!(
        "x-openrtb-nbr" => "1", "x-adcore-nobid-reason" => "deadline_exceeded");
    const INVALID: HeaderLines =
        net::header_lines!("x-openrtb-nbr" => "4", "x-adcore-nobid-reason" => "invalid_traffic");
    match reason {
        NoBidReason::NoEligibleCampaign => NO_ELIGIBLE,
        NoBidReason::BelowFloor => BELOW_FLOOR,
        NoBidReason::BudgetExhausted => BUDGET,
        NoBidReason::DeadlineExceeded => DEADLINE,
        NoBidReason::InvalidTraffic => INVALID,
    }
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
    if result.wins.is_empty() && external.is_empty() {
        return nobid_outcome(resp, result, m);
    }
    let internal: Vec<&Win> = result
        .wins
        .iter()
        .filter(|w| !external.iter().any(|e| e.slot == w.slot))
        .collect();
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

/// Answers 204 with the auction's no-bid reason, and counts it.
fn nobid_outcome(resp: &mut Response, result: &AuctionResult, m: &ShardMetrics) -> Outcome {
    let reason = result.nobid.unwrap_or(NoBidReason::NoEligibleCampaign);
    m.nobid(reason);
    nobid(resp, reason);
    Outcome::NoBid
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The no-bid headers as each reason's code and name would be formatted on every response.
    fn formatted(reason: NoBidReason) -> Vec<u8> {
        let mut resp = Response::new();
        resp.named_header(OPENRTB_NBR, &reason.nbr().to_string())
            .named_header(NOBID_REASON, reason.name());
        resp.header_bytes().to_vec()
    }

    #[test]
    fn fixed_nobid_headers_carry_each_reasons_code_and_name() {
        for reason in NoBidReason::ALL {
            assert_eq!(
                nobid_headers(reason).as_str().as_bytes(),
                formatted(reason),
                "{reason:?}"
            );
        }
    }
}
