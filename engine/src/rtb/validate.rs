//! Bid validation: which bids of a DSP's response may enter the auction. Each dropped bid gets an
//! OpenRTB 2.6 loss reason code (list 5.25) so it can be counted per DSP and told to the DSP in
//! its loss notice.
//!
//! Rules, in order: the response answers this request (else every bid: 5 invalid auction id), its
//! currency is accepted (else 3 invalid bid response), at most `RESPONSE_BID_COUNT_MAX` bids (the
//! rest: 3); per bid: non-empty id and an offered impid (3), price finite and > 0 (9 missing bid
//! price), markup or nurl present (7 missing markup), crid present (8 missing creative id), price
//! at or above the impression's floor after our reserve (100 below auction floor).
//!
//! Owns: these rules. Must not know: I/O, health, the auction.

use net::openrtb::{Bid, BidResponse, RESPONSE_BID_COUNT_MAX, loss};

/// A bid that may compete.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidBid {
    /// Index of the impression in the request.
    pub slot: usize,
    pub price_cpm_micros: u64,
    pub seat: Option<String>,
    pub bid: Bid,
}

/// A bid refused, with its loss code.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedBid {
    pub code: u32,
    pub seat: Option<String>,
    pub bid: Bid,
    /// The impression, when the bid named an offered one.
    pub slot: Option<usize>,
}

/// What a request offered, as validation needs it.
pub struct Offer<'a> {
    pub request_id: &'a str,
    /// Impression ids, in request order.
    pub imp_ids: &'a [&'a str],
    /// Floor per impression after our reserve, CPM micros.
    pub floors_micros: &'a [u64],
    pub currencies: &'a [String],
}

/// Converts a CPM price to micros (nearest micro); 0 for anything not finite and positive.
pub fn price_to_micros(price: f64) -> u64 {
    if price.is_finite() && price > 0.0 {
        (price * 1_000_000.0).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Splits a response's bids into valid and dropped (consumes the response).
pub fn validate(
    resp: BidResponse,
    offer: &Offer<'_>,
    valid: &mut Vec<ValidBid>,
    dropped: &mut Vec<DroppedBid>,
) {
    let whole = if resp.id != offer.request_id {
        Some(loss::INVALID_AUCTION_ID)
    } else if !offer.currencies.iter().any(|c| c == resp.currency()) {
        Some(loss::INVALID_BID_RESPONSE)
    } else {
        None
    };
    let mut count = 0usize;
    for seat in resp.seatbid {
        let seat_id = seat.seat;
        for bid in seat.bid {
            count += 1;
            let slot = offer.imp_ids.iter().position(|id| *id == bid.impid);
            let code = whole
                .or((count > RESPONSE_BID_COUNT_MAX).then_some(loss::INVALID_BID_RESPONSE))
                .or_else(|| check_bid(&bid, slot, offer.floors_micros));
            match (code, slot) {
                (None, Some(slot)) => valid.push(ValidBid {
                    slot,
                    price_cpm_micros: price_to_micros(bid.price),
                    seat: seat_id.clone(),
                    bid,
                }),
                (code, slot) => dropped.push(DroppedBid {
                    code: code.unwrap_or(loss::INVALID_BID_RESPONSE),
                    seat: seat_id.clone(),
                    bid,
                    slot,
                }),
            }
        }
    }
}

fn check_bid(bid: &Bid, slot: Option<usize>, floors: &[u64]) -> Option<u32> {
    let present = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let Some(slot) = slot else {
        return Some(loss::INVALID_BID_RESPONSE);
    };
    if bid.id.is_empty() {
        return Some(loss::INVALID_BID_RESPONSE);
    }
    let price = price_to_micros(bid.price);
    if price == 0 {
        return Some(loss::MISSING_BID_PRICE);
    }
    if !present(&bid.adm) && !present(&bid.nurl) {
        return Some(loss::MISSING_MARKUP);
    }
    if !present(&bid.crid) {
        return Some(loss::MISSING_CREATIVE_ID);
    }
    if price < floors[slot] {
        return Some(loss::BID_BELOW_AUCTION_FLOOR);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(json: &str) -> BidResponse {
        net::openrtb::parse_bid_response(json.as_bytes()).unwrap()
    }

    fn run(json: &str) -> (Vec<ValidBid>, Vec<DroppedBid>) {
        let cur = vec!["USD".to_string()];
        let offer = Offer {
            request_id: "r1",
            imp_ids: &["a", "b"],
            floors_micros: &[1_000_000, 10_000],
            currencies: &cur,
        };
        let (mut v, mut d) = (Vec::new(), Vec::new());
        validate(resp(json), &offer, &mut v, &mut d);
        (v, d)
    }

    fn bid(id: &str, imp: &str, price: f64, extra: &str) -> String {
        format!(r#"{{"id":"{id}","impid":"{imp}","price":{price}{extra}}}"#)
    }

    #[test]
    fn each_rule_has_its_loss_code() {
        let ok = r#","adm":"<a/>","crid":"c1""#;
        let bids = [
            bid("1", "a", 1.5, ok),
            bid("2", "zz", 1.5, ok),
            bid("3", "a", 0.0, ok),
            bid("4", "a", 1.5, r#","crid":"c""#),
            bid("5", "a", 1.5, r#","nurl":"http://x/""#),
            bid("6", "a", 0.5, ok),
            bid("7", "b", 0.011, r#","nurl":"http://x/","crid":"c""#),
            bid("", "b", 1.0, ok),
        ];
        let (v, d) = run(&format!(
            r#"{{"id":"r1","cur":"USD","seatbid":[{{"seat":"s","bid":[{}]}}]}}"#,
            bids.join(",")
        ));
        let valid: Vec<(&str, usize, u64)> = v
            .iter()
            .map(|b| (b.bid.id.as_str(), b.slot, b.price_cpm_micros))
            .collect();
        assert_eq!(valid, vec![("1", 0, 1_500_000), ("7", 1, 11_000)]);
        let codes: Vec<(&str, u32)> = d.iter().map(|b| (b.bid.id.as_str(), b.code)).collect();
        assert_eq!(
            codes,
            vec![("2", 3), ("3", 9), ("4", 7), ("5", 8), ("6", 100), ("", 3)]
        );
        assert_eq!(d[0].seat.as_deref(), Some("s"));
    }

    #[test]
    fn wrong_request_id_or_currency_drops_every_bid() {
        let ok = bid("1", "a", 2.0, r#","adm":"x","crid":"c""#);
        let (v, d) = run(&format!(r#"{{"id":"other","seatbid":[{{"bid":[{ok}]}}]}}"#));
        assert!(v.is_empty());
        assert_eq!(d[0].code, loss::INVALID_AUCTION_ID);
        let (v, d) = run(&format!(
            r#"{{"id":"r1","cur":"EUR","seatbid":[{{"bid":[{ok}]}}]}}"#
        ));
        assert!(v.is_empty());
        assert_eq!(d[0].code, loss::INVALID_BID_RESPONSE);
    }

    #[test]
    fn prices_convert_to_micros() {
        assert_eq!(price_to_micros(1.2345675), 1_234_568);
        assert_eq!(price_to_micros(-1.0), 0);
        assert_eq!(price_to_micros(f64::INFINITY), 0);
    }
}
