//! OpenRTB rules a bidder's response must meet before its bids enter an auction: it answers this
//! request, every bid names an offered impression, prices are finite and positive, the currency
//! was allowed. Knows OpenRTB semantics; must not know auctions or DSP health.

use super::error::ResponseError;
use super::request::BidRequest;
use super::response::BidResponse;

/// Most bids accepted in one response (all seats together); beyond it the response is refused.
pub const RESPONSE_BID_COUNT_MAX: usize = 256;

/// Checks `resp` against the `req` it answers; returns the first broken rule, path-qualified
/// (`response.seatbid[0].bid[1].impid "9" matches no request.imp[].id`).
pub fn validate_bid_response(resp: &BidResponse, req: &BidRequest) -> Result<(), ResponseError> {
    if resp.id != req.id {
        return fail(format!(
            "response.id \"{}\" does not match request.id \"{}\"",
            resp.id.escape_debug(),
            req.id.escape_debug()
        ));
    }
    check_currency_allowed(resp, req)?;
    let bid_count: usize = resp.seatbid.iter().map(|seat| seat.bid.len()).sum();
    if bid_count > RESPONSE_BID_COUNT_MAX {
        return fail(format!(
            "response has {bid_count} bids, more than the limit of {RESPONSE_BID_COUNT_MAX}"
        ));
    }
    for (seat_index, seat) in resp.seatbid.iter().enumerate() {
        if seat.bid.is_empty() {
            return fail(format!(
                "response.seatbid[{seat_index}].bid must not be empty"
            ));
        }
        for (bid_index, bid) in seat.bid.iter().enumerate() {
            let at = || format!("response.seatbid[{seat_index}].bid[{bid_index}]");
            if bid.id.is_empty() {
                return fail(format!("{}.id must not be empty", at()));
            }
            if !req.imp.iter().any(|imp| imp.id == bid.impid) {
                return fail(format!(
                    "{}.impid \"{}\" matches no request.imp[].id",
                    at(),
                    bid.impid.escape_debug()
                ));
            }
            if !bid.price.is_finite() || bid.price <= 0.0 {
                return fail(format!("{}.price must be a positive number", at()));
            }
        }
    }
    Ok(())
}

fn check_currency_allowed(resp: &BidResponse, req: &BidRequest) -> Result<(), ResponseError> {
    let currency = resp.currency();
    let allowed = if req.cur.is_empty() {
        currency == "USD"
    } else {
        req.cur.iter().any(|allowed| allowed == currency)
    };
    if !allowed {
        return fail(format!(
            "response.cur \"{}\" is not allowed by request.cur",
            currency.escape_debug()
        ));
    }
    Ok(())
}

fn fail<T>(message: String) -> Result<T, ResponseError> {
    Err(ResponseError { message })
}
