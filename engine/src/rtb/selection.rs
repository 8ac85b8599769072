//! DSP selection for one request (seed Part 3, "DSP Selection Algorithm"): the request's region,
//! then per DSP by its current tier: premium (1) always, regional (2) only with an endpoint in the
//! request's region, opportunistic (3) only for premium inventory, suspended (score < 30) never;
//! every DSP only if it buys one of the request's formats and its per-shard QPS token bucket has a
//! token. A DSP its tier excludes still gets every Nth excluded request as a health probe.
//!
//! Premium inventory (our definition): any impression with a floor at or above
//! `rtb.premium_floor_cpm_micros`, or any impression offering a PMP deal.
//!
//! Owns: region mapping, the premium rule, token buckets, probe counters. Must not know: I/O.

use std::time::Instant;

use super::health::HealthTable;
use super::registry::{Registry, Tier};

/// Region of a request from its geo (country ISO-3166 alpha-3 or alpha-2, region code), or
/// `home` when unknown. Regions: "us-east", "us-west", "eu-west", "apac".
pub fn region_of<'a>(country: &str, region: &str, home: &'a str) -> &'a str {
    const US_WEST: [&str; 9] = ["CA", "WA", "OR", "NV", "AZ", "UT", "ID", "HI", "AK"];
    const AMERICAS: [&str; 16] = [
        "USA", "US", "CAN", "CA", "MEX", "MX", "BRA", "BR", "ARG", "AR", "COL", "CO", "CHL", "CL",
        "PER", "PE",
    ];
    const APAC: [&str; 30] = [
        "JPN", "JP", "CHN", "CN", "KOR", "KR", "IND", "IN", "SGP", "SG", "AUS", "AU", "NZL", "NZ",
        "IDN", "ID", "THA", "TH", "VNM", "VN", "PHL", "PH", "MYS", "MY", "TWN", "TW", "HKG", "HK",
        "PAK", "PK",
    ];
    let c = country.trim();
    if c.is_empty() {
        return home;
    }
    let c = c.to_ascii_uppercase();
    if (c == "USA" || c == "US") && US_WEST.contains(&region.trim().to_ascii_uppercase().as_str()) {
        // `'static` strings coerce to `'a`.
        return "us-west";
    }
    if AMERICAS.contains(&c.as_str()) {
        "us-east"
    } else if APAC.contains(&c.as_str()) {
        "apac"
    } else {
        // Europe, Middle East and Africa.
        "eu-west"
    }
}

/// Whether the request is premium inventory (tier-3 DSPs are called).
pub fn is_premium(req: &net::openrtb::BidRequest, floor_min_micros: u64) -> bool {
    req.imp.iter().any(|imp| {
        crate::intake::floor_to_micros(imp.bidfloor) >= floor_min_micros
            || imp.pmp.as_ref().is_some_and(|p| !p.deals.is_empty())
    })
}

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Starts full.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token if one is available.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One DSP call chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub dsp: usize,
    pub endpoint: usize,
    /// Sent as a health probe (the DSP's tier excluded it).
    pub probe: bool,
}

/// Why a DSP was not called (counted per DSP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Its QPS token bucket was empty.
    QpsCap,
}

/// One shard's selection state: a token bucket per DSP holding `qps_max / shards`, probe counters.
pub struct Selector {
    buckets: Vec<TokenBucket>,
    excluded_seen: Vec<u32>,
    probe_every: u32,
    /// Highest tier number called, probes included (set by the shard's degradation level; 4 =
    /// no cap beyond the tiers' own rules).
    pub tier_max: u8,
}

impl Selector {
    pub fn new(
        reg: &Registry,
        shards: usize,
        burst_s: f64,
        probe_every: u32,
        now: Instant,
    ) -> Selector {
        let shards = shards.max(1) as f64;
        Selector {
            buckets: reg
                .dsps
                .iter()
                .map(|d| {
                    let rate = f64::from(d.qps_max) / shards;
                    TokenBucket::new(rate, rate * burst_s, now)
                })
                .collect(),
            excluded_seen: vec![0; reg.len()],
            probe_every,
            tier_max: 4,
        }
    }

    /// Fills `out` with the DSPs to call; `skipped(dsp, why)` is told about each refused one.
    #[allow(clippy::too_many_arguments)]
    pub fn select(
        &mut self,
        reg: &Registry,
        health: &HealthTable,
        region: &str,
        premium: bool,
        formats_mask: u8,
        now: Instant,
        out: &mut Vec<Choice>,
        mut skipped: impl FnMut(usize, Skip),
    ) {
        out.clear();
        for (d, dsp) in reg.dsps.iter().enumerate() {
            if dsp.formats_mask & formats_mask == 0 {
                continue;
            }
            if health.dsps[d].tier.number() > self.tier_max {
                continue;
            }
            let local = dsp.endpoint_in(region);
            let eligible = match health.dsps[d].tier {
                Tier::Premium => true,
                Tier::Regional => local.is_some(),
                Tier::Opportunistic => premium,
                Tier::Suspended => false,
            };
            let probe = !eligible && self.probe_due(d);
            if !eligible && !probe {
                continue;
            }
            if !self.buckets[d].try_take(now) {
                skipped(d, Skip::QpsCap);
                continue;
            }
            out.push(Choice {
                dsp: d,
                // Multi-region DSPs outside the request's region: their first endpoint.
                endpoint: local.unwrap_or(0),
                probe,
            });
        }
    }

    fn probe_due(&mut self, d: usize) -> bool {
        if self.probe_every == 0 {
            return false;
        }
        self.excluded_seen[d] += 1;
        if self.excluded_seen[d] >= self.probe_every {
            self.excluded_seen[d] = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::RtbConfig;
    use super::super::registry::DspSpec;
    use super::*;

    fn spec(id: &str, tier: u8, regions: &[&str], qps: u32) -> DspSpec {
        DspSpec {
            id: id.into(),
            tier,
            enabled: true,
            qps_max: qps,
            timeout_ms: 100,
            formats: vec!["banner".into()],
            endpoints: regions
                .iter()
                .enumerate()
                .map(|(i, r)| (r.to_string(), format!("http://127.0.0.1:{}/", 9000 + i)))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn setup() -> (Registry, HealthTable) {
        let reg = Registry::build(
            "t",
            &[
                spec("p", 1, &["eu-west", "us-east"], 1000),
                spec("r-us", 2, &["us-east"], 1000),
                spec("r-eu", 2, &["eu-west"], 1000),
                spec("o", 3, &["us-east"], 1000),
            ],
            "",
            120,
        )
        .unwrap();
        let h = HealthTable::initial(&reg, &RtbConfig::default());
        (reg, h)
    }

    fn ids(reg: &Registry, out: &[Choice]) -> Vec<(String, usize)> {
        out.iter()
            .map(|c| (reg.dsps[c.dsp].id.clone(), c.endpoint))
            .collect()
    }

    #[test]
    fn tiers_regions_and_premium_inventory() {
        let (reg, h) = setup();
        let now = Instant::now();
        let mut sel = Selector::new(&reg, 1, 1.0, 0, now);
        let mut out = Vec::new();
        sel.select(&reg, &h, "us-east", false, 1, now, &mut out, |_, _| {});
        assert_eq!(ids(&reg, &out), vec![("p".into(), 1), ("r-us".into(), 0)]);
        sel.select(&reg, &h, "us-east", true, 1, now, &mut out, |_, _| {});
        assert_eq!(out.len(), 3);
        sel.select(&reg, &h, "apac", false, 1, now, &mut out, |_, _| {});
        // Premium DSP from outside its regions: first endpoint (eu-west sorts first).
        assert_eq!(ids(&reg, &out), vec![("p".into(), 0)]);
        // A format nobody buys: nobody.
        sel.select(&reg, &h, "us-east", true, 2, now, &mut out, |_, _| {});
        assert!(out.is_empty());
    }

    #[test]
    fn degradation_caps_the_tiers_called() {
        let (reg, h) = setup();
        let mut sel = Selector::new(&reg, 1, 1.0, 0, Instant::now());
        let mut out = Vec::new();
        let now = Instant::now();
        sel.select(&reg, &h, "us-east", true, 1, now, &mut out, |_, _| {});
        let all = out.len();
        sel.tier_max = 1;
        sel.select(&reg, &h, "us-east", true, 1, now, &mut out, |_, _| {});
        assert!(out.len() < all, "{all} -> {}", out.len());
        assert!(out.iter().all(|c| h.dsps[c.dsp].tier == Tier::Premium));
    }

    #[test]
    fn suspended_dsps_get_only_probes() {
        let (reg, mut h) = setup();
        h.dsps[1].tier = Tier::Suspended;
        let now = Instant::now();
        let mut sel = Selector::new(&reg, 1, 1.0, 5, now);
        let mut out = Vec::new();
        let mut probes = 0;
        for _ in 0..20 {
            sel.select(&reg, &h, "us-east", false, 1, now, &mut out, |_, _| {});
            probes += out.iter().filter(|c| c.dsp == 1 && c.probe).count();
            assert!(out.iter().all(|c| c.dsp != 1 || c.probe));
        }
        assert_eq!(probes, 4);
    }

    #[test]
    fn each_shard_holds_its_share_of_the_qps_cap() {
        let reg = Registry::build("t", &[spec("a", 1, &["us-east"], 100)], "", 120).unwrap();
        let h = HealthTable::initial(&reg, &RtbConfig::default());
        let t0 = Instant::now();
        // 4 shards: 25 QPS each, burst of 1 s = 25 tokens.
        let mut sel = Selector::new(&reg, 4, 1.0, 0, t0);
        let mut out = Vec::new();
        let (mut sent, mut refused) = (0, 0);
        for i in 0..100u64 {
            // 100 requests within 1 s: 25 burst + 25 refilled.
            let now = t0 + Duration::from_millis(i * 10);
            sel.select(&reg, &h, "us-east", false, 1, now, &mut out, |_, s| {
                assert_eq!(s, Skip::QpsCap);
                refused += 1;
            });
            sent += out.len();
        }
        assert!((48..=51).contains(&sent), "{sent}");
        assert_eq!(sent + refused, 100);
    }

    #[test]
    fn regions_from_geo() {
        assert_eq!(region_of("USA", "NY", "x"), "us-east");
        assert_eq!(region_of("usa", "ca", "x"), "us-west");
        assert_eq!(region_of("DEU", "", "x"), "eu-west");
        assert_eq!(region_of("JPN", "", "x"), "apac");
        assert_eq!(region_of("", "", "home"), "home");
    }

    #[test]
    fn premium_inventory_by_floor_or_deal() {
        let r = |j: &str| net::openrtb::parse_bid_request(j.as_bytes()).unwrap();
        let plain = r(r#"{"id":"1","imp":[{"id":"1","bidfloor":0.5,"banner":{"w":1,"h":1}}]}"#);
        assert!(!is_premium(&plain, 2_000_000));
        let high = r(r#"{"id":"1","imp":[{"id":"1","bidfloor":2.5,"banner":{"w":1,"h":1}}]}"#);
        assert!(is_premium(&high, 2_000_000));
        let deal = r(
            r#"{"id":"1","imp":[{"id":"1","banner":{"w":1,"h":1},"pmp":{"deals":[{"id":"d"}]}}]}"#,
        );
        assert!(is_premium(&deal, 2_000_000));
    }
}
