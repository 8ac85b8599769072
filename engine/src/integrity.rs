//! Integrity check, fraud tier 1 (seed Part 8, "L1: Integrity Check Service"): rule-based,
//! sub-millisecond general invalid traffic (GIVT) filtering on the receiving shard, after
//! validation and before the RTB fan-out and the hop, so flagged traffic costs no DSP call.
//!
//! Rules: a user agent containing a denied substring (crawlers, headless browsers, HTTP
//! libraries; ASCII case-insensitive), a device IP inside a denied CIDR block (datacenter ranges,
//! known bad IPs), and, when `require_device` is set, a request without `device.ua`.
//!
//! Each shard holds its own [`Integrity`] (one Aho-Corasick automaton over the denied substrings,
//! CIDRs parsed, both once at start);
//! a check reads the request and allocates nothing. Deeper tiers (behavioural, ML, post-click)
//! are not here.
//!
//! Owns: the rules, their configuration and the OpenRTB no-bid code of each. Must not know:
//! HTTP, auctions, metrics storage.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aho_corasick::AhoCorasick;
use net::openrtb::{BidRequest, nbr};
use serde::{Deserialize, Serialize};

/// `[integrity]` in adserver.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrityConfig {
    /// Run the tier-1 integrity check on every auction request.
    pub enabled: bool,
    /// User-agent substrings (ASCII case-insensitive) that mark a request as invalid traffic.
    pub ua_deny: Vec<String>,
    /// Device IPs inside these CIDR blocks (IPv4 or IPv6, `a.b.c.d/n`) are invalid traffic.
    pub ip_deny: Vec<String>,
    /// Flag requests without a device user agent (off by default: DOOH and some server-side
    /// requests carry none).
    pub require_device: bool,
    /// "nobid": answer 204 with reason invalid_traffic; "count": only count, serve normally.
    pub action: String,
}

/// User agents of crawlers, headless browsers and HTTP libraries (GIVT), including every one
/// `rtb-load --bot-share` sends.
pub const DEFAULT_UA_DENY: [&str; 14] = [
    "bot/",
    "bot.html",
    "crawler",
    "spider",
    "headlesschrome",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget/",
    "go-http-client",
    "libwww-perl",
    "scrapy",
    "java/",
];

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            enabled: true,
            ua_deny: DEFAULT_UA_DENY.iter().map(|s| s.to_string()).collect(),
            ip_deny: Vec::new(),
            require_device: false,
            action: "nobid".into(),
        }
    }
}

/// Bounds on the rule lists (each rule is checked on every request).
const UA_DENY_MAX: usize = 256;
const IP_DENY_MAX: usize = 4096;

impl IntegrityConfig {
    /// Checks the section; `Err((field, message))`.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !matches!(self.action.as_str(), "nobid" | "count") {
            return Err(("integrity.action", "must be \"nobid\" or \"count\"".into()));
        }
        if self.ua_deny.len() > UA_DENY_MAX || self.ua_deny.iter().any(|s| s.is_empty()) {
            return Err((
                "integrity.ua_deny",
                format!("at most {UA_DENY_MAX} non-empty substrings"),
            ));
        }
        if self.ip_deny.len() > IP_DENY_MAX {
            return Err(("integrity.ip_deny", format!("at most {IP_DENY_MAX} blocks")));
        }
        ua_matcher(&self.ua_deny).map_err(|e| ("integrity.ua_deny", e))?;
        for block in &self.ip_deny {
            Cidr::parse(block).map_err(|m| ("integrity.ip_deny", format!("{block:?}: {m}")))?;
        }
        Ok(())
    }
}

/// Which rule flagged a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    UaDeny,
    IpDeny,
    MissingDevice,
}

impl Rule {
    pub const ALL: [Rule; 3] = [Rule::UaDeny, Rule::IpDeny, Rule::MissingDevice];

    pub fn name(self) -> &'static str {
        match self {
            Rule::UaDeny => "ua_deny",
            Rule::IpDeny => "ip_deny",
            Rule::MissingDevice => "missing_device",
        }
    }

    /// The OpenRTB 2.6 no-bid reason (list 5.24) sent with the 204.
    pub fn nbr(self) -> u32 {
        match self {
            Rule::UaDeny | Rule::MissingDevice => nbr::SUSPECTED_NON_HUMAN_TRAFFIC,
            Rule::IpDeny => nbr::CLOUD_DATACENTER_OR_PROXY_IP,
        }
    }
}

/// An IP block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    V4 { net: u32, mask: u32 },
    V6 { net: u128, mask: u128 },
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| "not an IP address".to_string())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let len: u32 = match len {
            Some(l) => l
                .trim()
                .parse()
                .ok()
                .filter(|&n| n <= bits)
                .ok_or_else(|| format!("prefix length must be 0..={bits}"))?,
            None => bits,
        };
        Ok(match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                Cidr::V4 {
                    net: u32::from(a) & mask,
                    mask,
                }
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                Cidr::V6 {
                    net: u128::from(a) & mask,
                    mask,
                }
            }
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4 { net, mask }, IpAddr::V4(a)) => u32::from(a) & mask == *net,
            (Cidr::V6 { net, mask }, IpAddr::V6(a)) => u128::from(a) & mask == *net,
            _ => false,
        }
    }
}

/// One shard's integrity checker.
#[derive(Debug, Clone)]
pub struct Integrity {
    enabled: bool,
    /// Every denied substring in one automaton (one pass over the user agent, no allocation);
    /// None when the list is empty.
    ua_deny: Option<AhoCorasick>,
    ip_deny: Vec<Cidr>,
    require_device: bool,
    /// false: count only.
    nobid: bool,
}

impl Integrity {
    /// Builds from a checked configuration (an unparseable block is skipped, never reached
    /// after `IntegrityConfig::check`).
    pub fn new(cfg: &IntegrityConfig) -> Integrity {
        Integrity {
            enabled: cfg.enabled,
            ua_deny: ua_matcher(&cfg.ua_deny).ok().flatten(),
            ip_deny: cfg
                .ip_deny
                .iter()
                .filter_map(|b| Cidr::parse(b).ok())
                .collect(),
            require_device: cfg.require_device,
            nobid: cfg.action == "nobid",
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether a flagged request is answered with a no-bid (else only counted).
    pub fn blocks(&self) -> bool {
        self.nobid
    }

    /// The first rule the request breaks, if any.
    pub fn check(&self, req: &BidRequest) -> Option<Rule> {
        if !self.enabled {
            return None;
        }
        let device = req.device.as_ref();
        let ua = device.and_then(|d| d.ua.as_deref()).unwrap_or("");
        if ua.is_empty() {
            if self.require_device {
                return Some(Rule::MissingDevice);
            }
        } else if self.ua_deny.as_ref().is_some_and(|m| m.is_match(ua)) {
            return Some(Rule::UaDeny);
        }
        if !self.ip_deny.is_empty()
            && let Some(d) = device
        {
            let v4 = d.ip.as_deref().and_then(|s| s.parse::<Ipv4Addr>().ok());
            let v6 = d.ipv6.as_deref().and_then(|s| s.parse::<Ipv6Addr>().ok());
            let hit = |ip: IpAddr| self.ip_deny.iter().any(|c| c.contains(ip));
            if v4.is_some_and(|a| hit(a.into())) || v6.is_some_and(|a| hit(a.into())) {
                return Some(Rule::IpDeny);
            }
        }
        None
    }
}

/// One ASCII case-insensitive automaton over the denied substrings (None for an empty list).
fn ua_matcher(patterns: &[String]) -> Result<Option<AhoCorasick>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(patterns)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(ua: Option<&str>, ip: Option<&str>) -> BidRequest {
        let mut device = serde_json::Map::new();
        if let Some(ua) = ua {
            device.insert("ua".into(), ua.into());
        }
        if let Some(ip) = ip {
            device.insert("ip".into(), ip.into());
        }
        let v = serde_json::json!({
            "id": "r1",
            "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
            "device": device,
        });
        net::openrtb::parse_bid_request(v.to_string().as_bytes()).unwrap()
    }

    const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";

    #[test]
    fn load_tool_bot_agents_are_flagged_and_browsers_pass() {
        let i = Integrity::new(&IntegrityConfig::default());
        for ua in [
            "python-requests/2.31.0",
            "curl/8.5.0",
            "Go-http-client/1.1",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (compatible; bingbot/2.0)",
        ] {
            assert_eq!(
                i.check(&request(Some(ua), None)),
                Some(Rule::UaDeny),
                "{ua}"
            );
        }
        assert_eq!(i.check(&request(Some(BROWSER), Some("3.80.1.11"))), None);
        assert_eq!(
            i.check(&request(None, None)),
            None,
            "device optional by default"
        );
    }

    #[test]
    fn ip_blocks_and_missing_device() {
        let cfg = IntegrityConfig {
            ip_deny: vec![
                "3.80.0.0/16".into(),
                "2001:db8::/32".into(),
                "9.9.9.9".into(),
            ],
            require_device: true,
            ..IntegrityConfig::default()
        };
        cfg.check().unwrap();
        let i = Integrity::new(&cfg);
        assert_eq!(
            i.check(&request(Some(BROWSER), Some("3.80.7.10"))),
            Some(Rule::IpDeny)
        );
        assert_eq!(i.check(&request(Some(BROWSER), Some("3.81.7.10"))), None);
        assert_eq!(
            i.check(&request(Some(BROWSER), Some("9.9.9.9"))),
            Some(Rule::IpDeny)
        );
        assert_eq!(i.check(&request(Some(BROWSER), Some("not-an-ip"))), None);
        assert_eq!(i.check(&request(None, None)), Some(Rule::MissingDevice));
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8:1::5".parse().unwrap())
        );
        assert!(
            !Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
    }

    #[test]
    fn disabled_flags_nothing_and_bad_config_is_named() {
        let off = Integrity::new(&IntegrityConfig {
            enabled: false,
            ..IntegrityConfig::default()
        });
        assert_eq!(off.check(&request(Some("curl/8.5.0"), None)), None);
        let bad = |cfg: IntegrityConfig| cfg.check().unwrap_err().0;
        let block = |b: &str| IntegrityConfig {
            ip_deny: vec![b.into()],
            ..IntegrityConfig::default()
        };
        assert_eq!(bad(block("10.0.0.0/33")), "integrity.ip_deny");
        assert_eq!(bad(block("10.0.0/8")), "integrity.ip_deny");
        assert_eq!(
            bad(IntegrityConfig {
                action: "drop".into(),
                ..IntegrityConfig::default()
            }),
            "integrity.action"
        );
        assert_eq!(
            bad(IntegrityConfig {
                ua_deny: vec![String::new()],
                ..IntegrityConfig::default()
            }),
            "integrity.ua_deny"
        );
    }

    #[test]
    fn rules_map_to_openrtb_no_bid_reasons() {
        assert_eq!(Rule::UaDeny.nbr(), 4);
        assert_eq!(Rule::IpDeny.nbr(), 5);
    }
}
