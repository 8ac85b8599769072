//! OpenRTB 2.6 code lists used on the wire: No-Bid Reasons (5.24) and Loss Reasons (5.25).

/// No-Bid Reason codes (OpenRTB 2.6 list 5.24), for `BidResponse::nbr`.
pub mod nbr {
    /// Unknown error.
    pub const UNKNOWN: u32 = 0;
    /// Technical error.
    pub const TECHNICAL_ERROR: u32 = 1;
    /// Invalid request.
    pub const INVALID_REQUEST: u32 = 2;
    /// Known web crawler.
    pub const KNOWN_WEB_CRAWLER: u32 = 3;
    /// Suspected non-human traffic.
    pub const SUSPECTED_NON_HUMAN_TRAFFIC: u32 = 4;
    /// Cloud, data center or proxy IP.
    pub const CLOUD_DATACENTER_OR_PROXY_IP: u32 = 5;
    /// Unsupported device.
    pub const UNSUPPORTED_DEVICE: u32 = 6;
    /// Blocked publisher or site.
    pub const BLOCKED_PUBLISHER_OR_SITE: u32 = 7;
    /// Unmatched user.
    pub const UNMATCHED_USER: u32 = 8;
    /// Daily user cap met.
    pub const DAILY_USER_CAP_MET: u32 = 9;
    /// Daily domain cap met.
    pub const DAILY_DOMAIN_CAP_MET: u32 = 10;
    /// Ads.txt authorization unavailable.
    pub const ADS_TXT_AUTHORIZATION_UNAVAILABLE: u32 = 11;
    /// Ads.txt authorization violation.
    pub const ADS_TXT_AUTHORIZATION_VIOLATION: u32 = 12;
    /// Ads.cert authentication unavailable.
    pub const ADS_CERT_AUTHENTICATION_UNAVAILABLE: u32 = 13;
    /// Ads.cert authentication violation.
    pub const ADS_CERT_AUTHENTICATION_VIOLATION: u32 = 14;
    /// Insufficient auction time.
    pub const INSUFFICIENT_AUCTION_TIME: u32 = 15;
    /// Incomplete SupplyChain.
    pub const INCOMPLETE_SUPPLY_CHAIN: u32 = 16;
    /// Blocked SupplyChain node.
    pub const BLOCKED_SUPPLY_CHAIN_NODE: u32 = 17;
}

/// Loss Reason codes (OpenRTB 2.6 list 5.25), for the `${AUCTION_LOSS}` macro of loss notices.
pub mod loss {
    /// Bid won.
    pub const BID_WON: u32 = 0;
    /// Internal error.
    pub const INTERNAL_ERROR: u32 = 1;
    /// Impression opportunity expired.
    pub const IMPRESSION_OPPORTUNITY_EXPIRED: u32 = 2;
    /// Invalid bid response.
    pub const INVALID_BID_RESPONSE: u32 = 3;
    /// Invalid deal id.
    pub const INVALID_DEAL_ID: u32 = 4;
    /// Invalid auction id.
    pub const INVALID_AUCTION_ID: u32 = 5;
    /// Invalid (malformed) advertiser domain.
    pub const INVALID_ADVERTISER_DOMAIN: u32 = 6;
    /// Missing markup.
    pub const MISSING_MARKUP: u32 = 7;
    /// Missing creative id.
    pub const MISSING_CREATIVE_ID: u32 = 8;
    /// Missing bid price.
    pub const MISSING_BID_PRICE: u32 = 9;
    /// Missing minimum creative approval data.
    pub const MISSING_MINIMUM_CREATIVE_APPROVAL_DATA: u32 = 10;
    /// Bid was below the auction floor.
    pub const BID_BELOW_AUCTION_FLOOR: u32 = 100;
    /// Bid was below the deal floor.
    pub const BID_BELOW_DEAL_FLOOR: u32 = 101;
    /// Lost to a higher bid.
    pub const LOST_TO_HIGHER_BID: u32 = 102;
    /// Lost to a bid for a PMP deal.
    pub const LOST_TO_PMP_DEAL: u32 = 103;
    /// Buyer seat blocked.
    pub const BUYER_SEAT_BLOCKED: u32 = 104;
    /// Creative filtered, general reason.
    pub const CREATIVE_FILTERED_GENERAL: u32 = 200;
    /// Creative filtered, pending processing by the exchange.
    pub const CREATIVE_FILTERED_PENDING_PROCESSING: u32 = 201;
    /// Creative filtered, disapproved by the exchange.
    pub const CREATIVE_FILTERED_DISAPPROVED: u32 = 202;
    /// Creative filtered, size not allowed.
    pub const CREATIVE_FILTERED_SIZE_NOT_ALLOWED: u32 = 203;
    /// Creative filtered, incorrect creative format.
    pub const CREATIVE_FILTERED_INCORRECT_FORMAT: u32 = 204;
    /// Creative filtered, advertiser exclusions.
    pub const CREATIVE_FILTERED_ADVERTISER_EXCLUSIONS: u32 = 205;
    /// Creative filtered, app bundle exclusions.
    pub const CREATIVE_FILTERED_APP_BUNDLE_EXCLUSIONS: u32 = 206;
    /// Creative filtered, not secure.
    pub const CREATIVE_FILTERED_NOT_SECURE: u32 = 207;
    /// Creative filtered, language exclusions.
    pub const CREATIVE_FILTERED_LANGUAGE_EXCLUSIONS: u32 = 208;
    /// Creative filtered, category exclusions.
    pub const CREATIVE_FILTERED_CATEGORY_EXCLUSIONS: u32 = 209;
    /// Creative filtered, creative attribute exclusions.
    pub const CREATIVE_FILTERED_ATTRIBUTE_EXCLUSIONS: u32 = 210;
    /// Creative filtered, ad type exclusions.
    pub const CREATIVE_FILTERED_AD_TYPE_EXCLUSIONS: u32 = 211;
    /// Creative filtered, animation too long.
    pub const CREATIVE_FILTERED_ANIMATION_TOO_LONG: u32 = 212;
    /// Creative filtered, not allowed in PMP deal.
    pub const CREATIVE_FILTERED_NOT_ALLOWED_IN_DEAL: u32 = 213;
    /// Creative filtered, invalid SKAdNetwork.
    pub const CREATIVE_FILTERED_INVALID_SKADNETWORK: u32 = 214;
    /// Creative filtered, app bundle mismatch.
    pub const CREATIVE_FILTERED_APP_BUNDLE_MISMATCH: u32 = 215;
    /// First code of the exchange-specific range (values >= 1000).
    pub const EXCHANGE_SPECIFIC_MIN: u32 = 1000;
}
