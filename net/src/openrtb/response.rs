//! OpenRTB 2.6 bid response objects (section 4). Knows the wire shape only.

use super::object::json_object;
use super::raw::RawJson;

json_object! {
    /// Top-level bid response (4.2.1). No bid: no `seatbid`, optionally `nbr`.
    pub struct BidResponse {
        /// Id of the bid request answered (required).
        id: String,
        /// Bids, grouped by seat.
        seatbid: Vec<SeatBid>,
        /// Bidder-generated response id.
        bidid: Option<String>,
        /// Bid currency (ISO-4217, default USD).
        cur: Option<String>,
        /// Cookie data for the bidder.
        customdata: Option<String>,
        /// Reason for not bidding (see [`nbr`](crate::openrtb::nbr)).
        nbr: Option<u32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required(id);
}

impl BidResponse {
    /// Currency with the OpenRTB default (USD) applied.
    pub fn currency(&self) -> &str {
        self.cur.as_deref().unwrap_or("USD")
    }
}

json_object! {
    /// Bids of one seat (4.2.2).
    pub struct SeatBid {
        /// Bids (required, at least one).
        bid: Vec<Bid>,
        /// Buyer seat id.
        seat: Option<String>,
        /// 1 = the bids must win or lose as a group.
        group: Option<u32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required(bid);
}

json_object! {
    /// One bid (4.2.3).
    pub struct Bid {
        /// Bidder-generated bid id (required).
        id: String,
        /// Id of the impression bid on (required).
        impid: String,
        /// Bid price, CPM in the response currency (required).
        price: f64,
        /// Win notice URL.
        nurl: Option<String>,
        /// Billing notice URL.
        burl: Option<String>,
        /// Loss notice URL.
        lurl: Option<String>,
        /// Ad markup.
        adm: Option<String>,
        /// Preloaded ad id.
        adid: Option<String>,
        /// Advertiser domains.
        adomain: Vec<String>,
        /// App bundle advertised.
        bundle: Option<String>,
        /// Sample image URL.
        iurl: Option<String>,
        /// Campaign id.
        cid: Option<String>,
        /// Creative id.
        crid: Option<String>,
        /// Tactic id.
        tactic: Option<String>,
        /// Category taxonomy.
        cattax: Option<u32>,
        /// Creative categories.
        cat: Vec<String>,
        /// Creative attributes.
        attr: Vec<u32>,
        /// API frameworks required.
        apis: Vec<u32>,
        /// API framework required (deprecated).
        api: Option<u32>,
        /// Video protocol.
        protocol: Option<u32>,
        /// Media rating.
        qagmediarating: Option<u32>,
        /// Creative language (ISO-639-1-alpha-2).
        language: Option<String>,
        /// Creative language (IETF BCP 47).
        langb: Option<String>,
        /// Deal id when the bid is for a deal.
        dealid: Option<String>,
        /// Creative width.
        w: Option<u32>,
        /// Creative height.
        h: Option<u32>,
        /// Relative width for flexible ads.
        wratio: Option<u32>,
        /// Relative height for flexible ads.
        hratio: Option<u32>,
        /// Seconds the bid stays valid.
        exp: Option<u32>,
        /// Creative duration, seconds.
        dur: Option<u32>,
        /// Markup type: 1 banner, 2 video, 3 audio, 4 native.
        mtype: Option<u32>,
        /// Slot in the pod.
        slotinpod: Option<i32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required(id, impid, price);
}
