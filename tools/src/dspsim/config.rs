//! dsp-sim configuration: the TOML file format (documented on each field), validation with
//! `file:line` errors, and the `seed` population preset (the seed design's Part 3 tables).
//!
//! File format (every key except `id`, `bid_rate` and `price_median_cpm` has a default):
//! ```toml
//! [sim]
//! seed = 1              # RNG seed: same seed + same request sequence => same answers
//! host = "127.0.0.1"    # every listener binds here
//! control_port = 0      # stats/notices/fault control (0 = ephemeral)
//! notices_kept = 1000   # last N notices kept per DSP
//! stall_ms = 10000      # the `stall` fault: hold the request this long, then close
//! timeout_ms = 1000     # `timeout_rate` answers arrive this late
//! per_request = false   # true: each answer drawn from (seed, DSP, request id) alone, so runs
//!                       # that send the same request ids see the same answers in any order
//!
//! [[dsp]]
//! id = "dsp01"
//! port = 0              # 0 = ephemeral
//! region = "us-east"    # free text, reported in the listing ("global" for multi-region)
//! tier = 2              # 1 premium, 2 regional, 3 opportunistic (reported only)
//! latency = { dist = "lognormal", median_ms = 35.0, sigma = 0.6 }  # or dist = "gamma", shape, scale_ms
//! slow_share = 0.03     # share of answers from the slow tail instead
//! slow_ms = 150.0       # slow tail median (lognormal, sigma 0.3)
//! bid_rate = 0.5        # probability of bidding on each impression
//! price_median_cpm = 2.0
//! price_sigma = 0.5     # lognormal CPM; a valuation below imp.bidfloor is a no-bid
//! error_rate = 0.0      # share answered 500
//! timeout_rate = 0.0    # share answered after `timeout_ms`
//! fault = { mode = "none", share = 0.0 }  # reset | half_written | malformed | http_5xx | stall
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Whole configuration after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    #[serde(default)]
    pub sim: SimSection,
    pub dsp: Vec<DspSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimSection {
    pub seed: u64,
    pub host: IpAddr,
    pub control_port: u16,
    pub notices_kept: usize,
    pub stall_ms: u64,
    pub timeout_ms: u64,
    /// Draw each answer from an RNG seeded by (seed, DSP index, request id) instead of one RNG
    /// stream per DSP: answers no longer depend on arrival order, concurrency or cancellations.
    pub per_request: bool,
}

impl Default for SimSection {
    fn default() -> Self {
        Self {
            seed: 1,
            host: IpAddr::from([127, 0, 0, 1]),
            control_port: 0,
            notices_kept: 1000,
            stall_ms: 10_000,
            timeout_ms: 1_000,
            per_request: false,
        }
    }
}

/// Latency distribution of answers (the main body; the slow tail is separate).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    Lognormal { median_ms: f64, sigma: f64 },
    Gamma { shape: f64, scale_ms: f64 },
}

/// Injected misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    None,
    /// Close with a TCP RST instead of answering.
    Reset,
    /// Promise a body, send half of it, close.
    HalfWritten,
    /// 200 with a truncated JSON body.
    Malformed,
    /// 503.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// Hold the request `stall_ms`, then close without answering.
    Stall,
}

impl FaultMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Reset => "reset",
            Self::HalfWritten => "half_written",
            Self::Malformed => "malformed",
            Self::Http5xx => "http_5xx",
            Self::Stall => "stall",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub mode: FaultMode,
    /// Share of requests hit by the fault, in [0, 1].
    #[serde(default = "one")]
    pub share: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            mode: FaultMode::None,
            share: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspSpec {
    pub id: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default = "default_tier")]
    pub tier: u8,
    #[serde(default = "default_latency")]
    pub latency: Latency,
    #[serde(default)]
    pub slow_share: f64,
    #[serde(default = "default_slow_ms")]
    pub slow_ms: f64,
    pub bid_rate: f64,
    pub price_median_cpm: f64,
    #[serde(default = "default_price_sigma")]
    pub price_sigma: f64,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default)]
    pub timeout_rate: f64,
    #[serde(default)]
    pub fault: Fault,
}

fn default_region() -> String {
    "us-east".to_string()
}
fn default_tier() -> u8 {
    2
}
fn default_latency() -> Latency {
    Latency::Lognormal {
        median_ms: 35.0,
        sigma: 0.6,
    }
}
fn default_slow_ms() -> f64 {
    150.0
}
fn default_price_sigma() -> f64 {
    0.5
}

/// A configuration error with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Raw file shape: each `[[dsp]]` keeps its span so validation errors name its line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    sim: SimSection,
    dsp: Vec<toml::Spanned<DspSpec>>,
}

/// Read and validate a config file.
pub fn load(path: &Path) -> Result<SimConfig, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &file)
}

/// Parse and validate config text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<SimConfig, ConfigError> {
    let error = |offset: usize, message: String| ConfigError {
        file: file.to_string(),
        line: line_of(text, offset),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        error(offset, e.message().to_string())
    })?;
    let mut dsps = Vec::with_capacity(raw.dsp.len());
    for (index, spanned) in raw.dsp.iter().enumerate() {
        let spec = spanned.get_ref();
        let at = spanned.span().start;
        validate_dsp(spec)
            .map_err(|m| error(at, format!("dsp[{index}] (id {:?}): {m}", spec.id)))?;
        if dsps.iter().any(|d: &DspSpec| d.id == spec.id) {
            return Err(error(
                at,
                format!("dsp[{index}]: duplicate id {:?}", spec.id),
            ));
        }
        if spec.port != 0 && dsps.iter().any(|d: &DspSpec| d.port == spec.port) {
            return Err(error(
                at,
                format!(
                    "dsp[{index}] (id {:?}): port {} used twice",
                    spec.id, spec.port
                ),
            ));
        }
        dsps.push(spec.clone());
    }
    if dsps.is_empty() {
        return Err(error(0, "at least one [[dsp]] is needed".to_string()));
    }
    let config = SimConfig {
        sim: raw.sim,
        dsp: dsps,
    };
    validate_sim(&config.sim).map_err(|m| error(0, format!("[sim]: {m}")))?;
    Ok(config)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn validate_sim(sim: &SimSection) -> Result<(), String> {
    if sim.notices_kept == 0 || sim.notices_kept > 1_000_000 {
        return Err("notices_kept must be in 1..=1000000".into());
    }
    if sim.stall_ms > 600_000 || sim.timeout_ms > 600_000 {
        return Err("stall_ms and timeout_ms must be at most 600000".into());
    }
    Ok(())
}

/// Check one DSP's values; the message names the field.
pub fn validate_dsp(d: &DspSpec) -> Result<(), String> {
    if d.id.is_empty()
        || d.id.len() > 64
        || !d
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err("id must be 1-64 characters of [A-Za-z0-9._-]".into());
    }
    if !(1..=3).contains(&d.tier) {
        return Err(format!("tier must be 1, 2 or 3, got {}", d.tier));
    }
    for (name, value) in [
        ("slow_share", d.slow_share),
        ("bid_rate", d.bid_rate),
        ("error_rate", d.error_rate),
        ("timeout_rate", d.timeout_rate),
        ("fault.share", d.fault.share),
    ] {
        if !(0.0..=1.0).contains(&value) {
            return Err(format!("{name} must be in [0, 1], got {value}"));
        }
    }
    validate_latency(&d.latency)?;
    if !(d.slow_ms.is_finite() && d.slow_ms > 0.0 && d.slow_ms <= 600_000.0) {
        return Err(format!("slow_ms must be in (0, 600000], got {}", d.slow_ms));
    }
    if !(d.price_median_cpm.is_finite()
        && d.price_median_cpm > 0.0
        && d.price_median_cpm <= 10_000.0)
    {
        return Err(format!(
            "price_median_cpm must be in (0, 10000], got {}",
            d.price_median_cpm
        ));
    }
    if !(d.price_sigma.is_finite() && (0.0..=3.0).contains(&d.price_sigma)) {
        return Err(format!(
            "price_sigma must be in [0, 3], got {}",
            d.price_sigma
        ));
    }
    Ok(())
}

pub fn validate_latency(latency: &Latency) -> Result<(), String> {
    let ok = |v: f64, max: f64| v.is_finite() && v > 0.0 && v <= max;
    match *latency {
        Latency::Lognormal { median_ms, sigma } => {
            if !(ok(median_ms, 600_000.0) && sigma.is_finite() && (0.0..=3.0).contains(&sigma)) {
                return Err(format!(
                    "latency: lognormal needs median_ms in (0, 600000] and sigma in [0, 3], got {median_ms}, {sigma}"
                ));
            }
        }
        Latency::Gamma { shape, scale_ms } => {
            if !ok(shape, 1000.0) || !ok(scale_ms, 600_000.0) {
                return Err(format!(
                    "latency: gamma needs shape in (0, 1000] and scale_ms in (0, 600000], got {shape}, {scale_ms}"
                ));
            }
        }
    }
    Ok(())
}

/// Regions of the seed's geographic sharding table with the middle of their RTT ranges (ms):
/// US-East 15-30, EU-West 10-25, APAC 15-35.
pub const SEED_REGIONS: [(&str, f64); 3] = [("us-east", 22.5), ("eu-west", 17.5), ("apac", 25.0)];

/// The seed's population (Part 3): 50 DSPs, 12 premium (tier 1, multi-region "global"),
/// 25 regional (tier 2, split over the three regions), 13 opportunistic (tier 3).
/// Latency = regional RTT + DSP processing, lognormal: calibrated so that the whole population
/// answers ~70 % by 50 ms, ~85 % by 70 ms, ~90 % by 80 ms and ~95 % by 100 ms (the seed's
/// timeout table), with a slow tail and rare late answers. Deterministic in `seed`.
pub fn seed_population(seed: u64) -> SimConfig {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_d5b5);
    let mut dsp = Vec::with_capacity(50);
    let jitter = |rng: &mut StdRng, x: f64| x * rng.random_range(0.85..1.15);
    for i in 0..50 {
        let (tier, region, rtt) = match i {
            0..12 => (1, "global".to_string(), 20.0),
            12..37 => {
                let (name, rtt) = SEED_REGIONS[(i - 12) % 3];
                (2, name.to_string(), rtt)
            }
            _ => (
                3,
                SEED_REGIONS[(i - 37) % 3].0.to_string(),
                SEED_REGIONS[(i - 37) % 3].1,
            ),
        };
        // (processing median ms, sigma, slow share, bid rate, price median, error, timeout)
        let (processing, sigma, slow, bid_rate, price, error, late) = match tier {
            1 => (14.0, 0.55, 0.03, 0.75, 2.60, 0.005, 0.01),
            2 => (13.0, 0.60, 0.03, 0.50, 1.60, 0.01, 0.01),
            _ => (18.0, 0.65, 0.05, 0.30, 0.90, 0.02, 0.02),
        };
        dsp.push(DspSpec {
            id: format!("dsp{:02}", i + 1),
            port: 0,
            region,
            tier,
            latency: Latency::Lognormal {
                median_ms: jitter(&mut rng, rtt + processing),
                sigma: jitter(&mut rng, sigma),
            },
            slow_share: slow,
            slow_ms: jitter(&mut rng, 140.0),
            bid_rate: jitter(&mut rng, bid_rate).min(1.0),
            price_median_cpm: jitter(&mut rng, price),
            price_sigma: 0.5,
            error_rate: error,
            timeout_rate: late,
            fault: Fault::default(),
        });
    }
    SimConfig {
        sim: SimSection {
            seed,
            ..SimSection::default()
        },
        dsp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_population_is_valid_and_deterministic() {
        let config = parse(
            "[[dsp]]\nid = \"a\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(config.sim, SimSection::default());
        assert_eq!(config.dsp[0].fault.mode, FaultMode::None);
        let population = seed_population(7);
        assert_eq!(population.dsp.len(), 50);
        assert_eq!(population.dsp.iter().filter(|d| d.tier == 1).count(), 12);
        assert_eq!(population.dsp.iter().filter(|d| d.tier == 2).count(), 25);
        for d in &population.dsp {
            validate_dsp(d).unwrap();
        }
        assert_eq!(population, seed_population(7));
        assert_ne!(population, seed_population(8));
        let text = toml::to_string(&population).unwrap();
        assert_eq!(parse(&text, "round-trip").unwrap(), population);
    }

    #[test]
    fn errors_name_file_line_entry_and_field() {
        let text = "[sim]\nseed = 3\n\n[[dsp]]\nid = \"ok\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\n\n\
                    [[dsp]]\nid = \"bad\"\nbid_rate = 1.5\nprice_median_cpm = 1.0\n";
        let e = parse(text, "sim.toml").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("sim.toml", 9), "{e}");
        assert!(
            e.message.contains("dsp[1]") && e.message.contains("bid_rate"),
            "{e}"
        );
        let e = parse(
            "[[dsp]]\nid = \"a\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\nbogus = 1\n",
            "f",
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("bogus"), "{e}");
        let e = parse("[[dsp]]\nid = \"a\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\n[[dsp]]\nid = \"a\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\n", "f")
            .unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        let e = parse("[[dsp]]\nid = \"a\"\nbid_rate = 0.5\nprice_median_cpm = 1.0\nlatency = { dist = \"weibull\" }\n", "f")
            .unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(parse("[sim]\nseed = 1\n", "f").is_err());
    }
}
