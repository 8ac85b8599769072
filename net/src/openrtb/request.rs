//! OpenRTB 2.6 bid request objects (2.5 requests parse into the same types; 2.5-only members
//! such as `regs.ext.gdpr` stay in `ext`). Field comments give the OpenRTB meaning briefly; see the
//! specification, section 3.2, for the full text. Knows the wire shape only.

use super::object::json_object;
use super::raw::RawJson;
use compact_str::CompactString;

json_object! {
    /// Top-level bid request (OpenRTB 3.2.1).
    pub struct BidRequest {
        /// Exchange-unique request id (required, non-empty).
        id: CompactString,
        /// Impressions offered (required, at least one).
        imp: Vec<Imp>,
        /// Website context (at most one of site, app, dooh).
        site: Option<Site>,
        /// App context.
        app: Option<Box<App>>,
        /// Digital-out-of-home context (2.6), kept raw.
        dooh: Option<RawJson>,
        /// The device the impression will be shown on.
        device: Option<Device>,
        /// The human user of the device.
        user: Option<User>,
        /// 1 = test mode, no billing.
        test: Option<u32>,
        /// Auction type: 1 first price, 2 second price plus, 500+ exchange specific. Default 2.
        at: Option<u32>,
        /// Time allowed for bids, including internet latency, in milliseconds.
        tmax: Option<u64>,
        /// Allowed buyer seats.
        wseat: Vec<CompactString>,
        /// Blocked buyer seats.
        bseat: Vec<CompactString>,
        /// 1 = all impressions of the context are offered.
        allimps: Option<u32>,
        /// Allowed bid currencies (ISO-4217).
        cur: Vec<CompactString>,
        /// Allowed creative languages (ISO-639-1-alpha-2).
        wlang: Vec<CompactString>,
        /// Allowed creative languages (IETF BCP 47).
        wlangb: Vec<CompactString>,
        /// Category taxonomy of `bcat`.
        cattax: Option<u32>,
        /// Blocked advertiser categories.
        bcat: Vec<CompactString>,
        /// Blocked advertiser domains.
        badv: Vec<CompactString>,
        /// Blocked app bundles.
        bapp: Vec<CompactString>,
        /// Inventory source and supply chain.
        source: Option<Box<Source>>,
        /// Regulations in force.
        regs: Option<Box<Regs>>,
        /// Exchange-specific extensions.
        ext: Option<RawJson>,
    }
    required(id, imp);
}

impl BidRequest {
    /// Auction type with the OpenRTB default (2, second price plus) applied.
    pub fn auction_type(&self) -> u32 {
        self.at.unwrap_or(2)
    }
}

json_object! {
    /// Inventory source (3.2.2).
    pub struct Source {
        /// 1 = the exchange makes the final sale decision.
        fd: Option<u32>,
        /// Transaction id shared by every participant.
        tid: Option<CompactString>,
        /// Payment chain string (TAG).
        pchain: Option<CompactString>,
        /// SupplyChain object (2.6), kept raw.
        schain: Option<RawJson>,
        /// Extensions (2.5 `ext.schain` lands here).
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Regulations (3.2.3).
    pub struct Regs {
        /// 1 = subject to COPPA.
        coppa: Option<u32>,
        /// 1 = subject to GDPR (2.6; 2.5 puts it in `ext.gdpr`).
        gdpr: Option<u32>,
        /// CCPA string.
        us_privacy: Option<CompactString>,
        /// Global Privacy Platform string.
        gpp: Option<CompactString>,
        /// GPP section ids in force.
        gpp_sid: Vec<u32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// One impression offered (3.2.4).
    pub struct Imp {
        /// Impression id, unique within the request (required, non-empty).
        id: CompactString,
        /// Metrics available to the buyer, kept raw.
        metric: Option<RawJson>,
        /// Banner or display slot.
        banner: Option<Banner>,
        /// Video slot.
        video: Option<Box<Video>>,
        /// Audio slot.
        audio: Option<Box<Audio>>,
        /// Native slot.
        native: Option<Box<Native>>,
        /// Private marketplace deals.
        pmp: Option<Pmp>,
        /// Ad mediation partner or SDK.
        displaymanager: Option<CompactString>,
        /// Its version.
        displaymanagerver: Option<CompactString>,
        /// 1 = interstitial or full screen.
        instl: Option<u32>,
        /// Placement id or tag.
        tagid: Option<CompactString>,
        /// Minimum bid in CPM of `bidfloorcur` (default 0).
        bidfloor: f64,
        /// Currency of `bidfloor` (ISO-4217, default USD).
        bidfloorcur: Option<CompactString>,
        /// Click browser type: 0 embedded, 1 native.
        clickbrowser: Option<u32>,
        /// 1 = secure HTTPS creatives required.
        secure: Option<u32>,
        /// Supported iframe busters.
        iframebuster: Vec<CompactString>,
        /// 1 = rewarded.
        rwdd: Option<u32>,
        /// Server-side ad insertion: 0 unknown, 1 all client, 2 assets stitched, 3 all server.
        ssai: Option<u32>,
        /// Seconds between auction and impression.
        exp: Option<u32>,
        /// DOOH impression multiplier, kept raw.
        qty: Option<RawJson>,
        /// Timestamp of the impression, milliseconds since the epoch.
        dt: Option<f64>,
        /// Refresh details, kept raw.
        refresh: Option<RawJson>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required(id);
}

impl Imp {
    /// Floor currency with the OpenRTB default (USD) applied.
    pub fn floor_currency(&self) -> &str {
        self.bidfloorcur.as_deref().unwrap_or("USD")
    }
}

json_object! {
    /// Banner or display slot (3.2.6).
    pub struct Banner {
        /// Allowed sizes; preferred over `w`/`h`.
        format: Vec<Format>,
        /// Exact width, device-independent pixels.
        w: Option<u32>,
        /// Exact height, device-independent pixels.
        h: Option<u32>,
        /// Maximum width (2.5, deprecated).
        wmax: Option<u32>,
        /// Maximum height (2.5, deprecated).
        hmax: Option<u32>,
        /// Minimum width (2.5, deprecated).
        wmin: Option<u32>,
        /// Minimum height (2.5, deprecated).
        hmin: Option<u32>,
        /// Blocked banner ad types.
        btype: Vec<u32>,
        /// Blocked creative attributes.
        battr: Vec<u32>,
        /// Ad position on screen.
        pos: Option<u32>,
        /// Allowed content MIME types.
        mimes: Vec<CompactString>,
        /// 1 = delivered in the top frame.
        topframe: Option<u32>,
        /// Directions the banner may expand.
        expdir: Vec<u32>,
        /// Supported API frameworks.
        api: Vec<u32>,
        /// Id of this banner when it is a video companion.
        id: Option<CompactString>,
        /// Companion render mode: 0 concurrent, 1 end card.
        vcm: Option<u32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// One allowed banner size (3.2.10).
    pub struct Format {
        /// Width in device-independent pixels.
        w: Option<u32>,
        /// Height in device-independent pixels.
        h: Option<u32>,
        /// Relative width for flexible ads.
        wratio: Option<u32>,
        /// Relative height for flexible ads.
        hratio: Option<u32>,
        /// Minimum width for flexible ads.
        wmin: Option<u32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Video slot (3.2.7).
    pub struct Video {
        /// Allowed MIME types.
        mimes: Vec<CompactString>,
        /// Minimum duration, seconds.
        minduration: Option<u32>,
        /// Maximum duration, seconds.
        maxduration: Option<u32>,
        /// Start delay: seconds, or 0 pre-roll, -1 mid-roll, -2 post-roll.
        startdelay: Option<i32>,
        /// Maximum ads in a dynamic pod.
        maxseq: Option<u32>,
        /// Total pod duration, seconds.
        poddur: Option<u32>,
        /// Supported video protocols.
        protocols: Vec<u32>,
        /// Supported protocol (2.5, deprecated).
        protocol: Option<u32>,
        /// Width, device-independent pixels.
        w: Option<u32>,
        /// Height, device-independent pixels.
        h: Option<u32>,
        /// Pod id.
        podid: Option<CompactString>,
        /// Pod sequence.
        podseq: Option<i32>,
        /// Exact durations required, seconds.
        rqddurs: Vec<u32>,
        /// Placement type (2.5, deprecated by `plcmt`).
        placement: Option<u32>,
        /// Placement type (2.6).
        plcmt: Option<u32>,
        /// 1 linear, 2 non-linear.
        linearity: Option<u32>,
        /// 1 = skippable.
        skip: Option<u32>,
        /// Minimum duration before skip applies, seconds.
        skipmin: Option<u32>,
        /// Seconds before skip is enabled.
        skipafter: Option<u32>,
        /// Sequence number (deprecated).
        sequence: Option<u32>,
        /// Slot in the pod.
        slotinpod: Option<i32>,
        /// Minimum CPM per second.
        mincpmpersec: Option<f64>,
        /// Blocked creative attributes.
        battr: Vec<u32>,
        /// Maximum extended duration.
        maxextended: Option<i32>,
        /// Minimum bit rate, Kbps.
        minbitrate: Option<u32>,
        /// Maximum bit rate, Kbps.
        maxbitrate: Option<u32>,
        /// 1 = letter-boxing allowed.
        boxingallowed: Option<u32>,
        /// Playback methods.
        playbackmethod: Vec<u32>,
        /// Event that ends playback.
        playbackend: Option<u32>,
        /// Supported delivery methods.
        delivery: Vec<u32>,
        /// Ad position on screen.
        pos: Option<u32>,
        /// Companion banners, kept raw.
        companionad: Option<RawJson>,
        /// Supported API frameworks.
        api: Vec<u32>,
        /// Supported companion types.
        companiontype: Vec<u32>,
        /// Pod deduplication settings.
        poddedupe: Vec<u32>,
        /// Duration floors, kept raw.
        durfloors: Option<RawJson>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Audio slot (3.2.8).
    pub struct Audio {
        /// Allowed MIME types.
        mimes: Vec<CompactString>,
        /// Minimum duration, seconds.
        minduration: Option<u32>,
        /// Maximum duration, seconds.
        maxduration: Option<u32>,
        /// Total pod duration, seconds.
        poddur: Option<u32>,
        /// Supported protocols.
        protocols: Vec<u32>,
        /// Start delay (see `Video::startdelay`).
        startdelay: Option<i32>,
        /// Exact durations required, seconds.
        rqddurs: Vec<u32>,
        /// Pod id.
        podid: Option<CompactString>,
        /// Pod sequence.
        podseq: Option<i32>,
        /// Sequence number (deprecated).
        sequence: Option<u32>,
        /// Slot in the pod.
        slotinpod: Option<i32>,
        /// Minimum CPM per second.
        mincpmpersec: Option<f64>,
        /// Blocked creative attributes.
        battr: Vec<u32>,
        /// Maximum extended duration.
        maxextended: Option<i32>,
        /// Minimum bit rate, Kbps.
        minbitrate: Option<u32>,
        /// Maximum bit rate, Kbps.
        maxbitrate: Option<u32>,
        /// Supported delivery methods.
        delivery: Vec<u32>,
        /// Companion banners, kept raw.
        companionad: Option<RawJson>,
        /// Supported API frameworks.
        api: Vec<u32>,
        /// Supported companion types.
        companiontype: Vec<u32>,
        /// Maximum ads in a dynamic pod.
        maxseq: Option<u32>,
        /// Feed type.
        feed: Option<u32>,
        /// 1 = stitched with content.
        stitched: Option<u32>,
        /// Volume normalization mode.
        nvol: Option<u32>,
        /// Duration floors, kept raw.
        durfloors: Option<RawJson>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Native slot (3.2.9).
    pub struct Native {
        /// The Native Ad Specification request, a JSON-encoded string (kept raw: some exchanges
        /// send an object).
        request: Option<RawJson>,
        /// Native specification version (kept raw: string by the specification, a number in some
        /// samples).
        ver: Option<RawJson>,
        /// Supported API frameworks.
        api: Vec<u32>,
        /// Blocked creative attributes.
        battr: Vec<u32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Private marketplace (3.2.11).
    pub struct Pmp {
        /// 1 = only the listed deals may bid.
        private_auction: Option<u32>,
        /// Deals offered.
        deals: Vec<Deal>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// One direct deal (3.2.12).
    pub struct Deal {
        /// Deal id (required, non-empty).
        id: CompactString,
        /// Deal floor, CPM (default 0).
        bidfloor: f64,
        /// Currency of `bidfloor` (default USD).
        bidfloorcur: Option<CompactString>,
        /// Auction type override.
        at: Option<u32>,
        /// Allowed buyer seats.
        wseat: Vec<CompactString>,
        /// Allowed advertiser domains.
        wadomain: Vec<CompactString>,
        /// 1 = guaranteed terms.
        guar: Option<u32>,
        /// Minimum CPM per second.
        mincpmpersec: Option<f64>,
        /// Duration floors, kept raw.
        durfloors: Option<RawJson>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required(id);
}

json_object! {
    /// Website context (3.2.13).
    pub struct Site {
        /// Exchange site id.
        id: Option<CompactString>,
        /// Site name.
        name: Option<CompactString>,
        /// Domain, e.g. `example.com`.
        domain: Option<CompactString>,
        /// Category taxonomy.
        cattax: Option<u32>,
        /// Site categories.
        cat: Vec<CompactString>,
        /// Section categories.
        sectioncat: Vec<CompactString>,
        /// Page categories.
        pagecat: Vec<CompactString>,
        /// Page URL.
        page: Option<CompactString>,
        /// Referrer URL.
        r#ref as "ref": Option<CompactString>,
        /// Search string that led here.
        search: Option<CompactString>,
        /// 1 = mobile-optimised.
        mobile: Option<u32>,
        /// 1 = has a privacy policy.
        privacypolicy: Option<u32>,
        /// Publisher.
        publisher: Option<Publisher>,
        /// Content, kept raw.
        content: Option<RawJson>,
        /// Comma-separated keywords.
        keywords: Option<CompactString>,
        /// Keywords as an array.
        kwarray: Vec<CompactString>,
        /// Inventory partner domain.
        inventorypartnerdomain: Option<CompactString>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// App context (3.2.14).
    pub struct App {
        /// Exchange app id.
        id: Option<CompactString>,
        /// App name.
        name: Option<CompactString>,
        /// Store bundle or package name.
        bundle: Option<CompactString>,
        /// Domain.
        domain: Option<CompactString>,
        /// Store URL.
        storeurl: Option<CompactString>,
        /// Category taxonomy.
        cattax: Option<u32>,
        /// App categories.
        cat: Vec<CompactString>,
        /// Section categories.
        sectioncat: Vec<CompactString>,
        /// Page categories.
        pagecat: Vec<CompactString>,
        /// App version.
        ver: Option<CompactString>,
        /// 1 = has a privacy policy.
        privacypolicy: Option<u32>,
        /// 1 = paid app.
        paid: Option<u32>,
        /// Publisher.
        publisher: Option<Publisher>,
        /// Content, kept raw.
        content: Option<RawJson>,
        /// Comma-separated keywords.
        keywords: Option<CompactString>,
        /// Keywords as an array.
        kwarray: Vec<CompactString>,
        /// Inventory partner domain.
        inventorypartnerdomain: Option<CompactString>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Publisher (3.2.15).
    pub struct Publisher {
        /// Exchange publisher id.
        id: Option<CompactString>,
        /// Publisher name.
        name: Option<CompactString>,
        /// Category taxonomy.
        cattax: Option<u32>,
        /// Publisher categories.
        cat: Vec<CompactString>,
        /// Domain.
        domain: Option<CompactString>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Device (3.2.18).
    pub struct Device {
        /// Location of the device.
        geo: Option<Geo>,
        /// 1 = do not track.
        dnt: Option<u32>,
        /// 1 = limit ad tracking.
        lmt: Option<u32>,
        /// User-Agent string.
        ua: Option<CompactString>,
        /// Structured user agent, kept raw.
        sua: Option<RawJson>,
        /// IPv4 address.
        ip: Option<CompactString>,
        /// IPv6 address.
        ipv6: Option<CompactString>,
        /// Device type (AdCOM list).
        devicetype: Option<u32>,
        /// Make.
        make: Option<CompactString>,
        /// Model.
        model: Option<CompactString>,
        /// Operating system.
        os: Option<CompactString>,
        /// OS version.
        osv: Option<CompactString>,
        /// Hardware version.
        hwv: Option<CompactString>,
        /// Physical screen height, pixels.
        h: Option<u32>,
        /// Physical screen width, pixels.
        w: Option<u32>,
        /// Pixels per inch.
        ppi: Option<u32>,
        /// Physical to device-independent pixel ratio.
        pxratio: Option<f64>,
        /// 1 = JavaScript supported.
        js: Option<u32>,
        /// 1 = geolocation API available to creatives.
        geofetch: Option<u32>,
        /// Flash version.
        flashver: Option<CompactString>,
        /// Browser language (ISO-639-1-alpha-2).
        language: Option<CompactString>,
        /// Browser language (IETF BCP 47).
        langb: Option<CompactString>,
        /// Carrier or ISP.
        carrier: Option<CompactString>,
        /// Mobile country and network code.
        mccmnc: Option<CompactString>,
        /// Connection type.
        connectiontype: Option<u32>,
        /// Advertising id.
        ifa: Option<CompactString>,
        /// Hardware id, SHA1.
        didsha1: Option<CompactString>,
        /// Hardware id, MD5.
        didmd5: Option<CompactString>,
        /// Platform id, SHA1.
        dpidsha1: Option<CompactString>,
        /// Platform id, MD5.
        dpidmd5: Option<CompactString>,
        /// MAC address, SHA1.
        macsha1: Option<CompactString>,
        /// MAC address, MD5.
        macmd5: Option<CompactString>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// Geographic location (3.2.19).
    pub struct Geo {
        /// Latitude, -90 to 90.
        lat: Option<f64>,
        /// Longitude, -180 to 180.
        lon: Option<f64>,
        /// Source: 1 GPS, 2 IP, 3 user provided.
        r#type as "type": Option<u32>,
        /// Accuracy, meters.
        accuracy: Option<u32>,
        /// Seconds since the fix.
        lastfix: Option<u32>,
        /// IP geolocation service.
        ipservice: Option<u32>,
        /// Country, ISO-3166-1 alpha-3.
        country: Option<CompactString>,
        /// Region, ISO-3166-2.
        region: Option<CompactString>,
        /// Region, FIPS 10-4.
        regionfips104: Option<CompactString>,
        /// Metro (Nielsen DMA).
        metro: Option<CompactString>,
        /// City (UN/LOCODE).
        city: Option<CompactString>,
        /// Postal code.
        zip: Option<CompactString>,
        /// Minutes from UTC.
        utcoffset: Option<i32>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}

json_object! {
    /// User (3.2.20).
    pub struct User {
        /// Exchange user id.
        id: Option<CompactString>,
        /// Buyer user id.
        buyeruid: Option<CompactString>,
        /// Year of birth.
        yob: Option<u32>,
        /// M, F or O.
        gender: Option<CompactString>,
        /// Comma-separated keywords.
        keywords: Option<CompactString>,
        /// Keywords as an array.
        kwarray: Vec<CompactString>,
        /// Bidder data stored in the exchange cookie.
        customdata: Option<CompactString>,
        /// Home location.
        geo: Option<Box<Geo>>,
        /// Data segments, kept raw.
        data: Option<RawJson>,
        /// TCF consent string (2.6; 2.5 puts it in `ext.consent`).
        consent: Option<CompactString>,
        /// Extended ids, kept raw.
        eids: Option<RawJson>,
        /// Extensions.
        ext: Option<RawJson>,
    }
    required();
}
