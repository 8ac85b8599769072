//! The engine's one configuration file (TOML), with a documented default for every setting.
//!
//! Every limit the engine enforces lives here. `adserver --print-config` prints the effective
//! configuration; `adserver.toml` at the repository root is the annotated default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Dsp(#[from] crate::rtb::RegistryError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub http: HttpConfig,
    pub openrtb: OpenRtbConfig,
    pub auction: AuctionConfig,
    pub catalog: CatalogConfig,
    pub model: ModelConfig,
    pub profiles: ProfilesConfig,
    pub budget: BudgetConfig,
    pub rtb: crate::rtb::RtbConfig,
    /// Fraud tier 1 (`engine/src/integrity.rs`).
    pub integrity: crate::integrity::IntegrityConfig,
    /// The degradation ladder (`engine/src/degradation.rs`).
    pub degradation: crate::degradation::DegradationConfig,
    /// External DSPs (`[[dsp]]` entries; format in `engine/src/rtb/registry.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dsp: Vec<crate::rtb::DspSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address every shard listens on (SO_REUSEPORT spreads connections over shards).
    pub listen: SocketAddr,
    /// Number of shards; 0 means one per available core.
    pub shards: usize,
    /// I/O driver: "auto" (io_uring, falling back to epoll), "uring" or "legacy".
    pub driver: String,
    /// Pin shard i to core i.
    pub pin_cores: bool,
    /// Capacity of each SPSC ring between two shards (requests in flight per pair).
    pub ring_capacity: usize,
    /// A task holding a shard longer than this is logged and counted as a stall.
    pub stall_threshold_ms: u64,
    /// io_uring submission queue entries per shard.
    pub uring_entries: u32,
    /// On SIGTERM/SIGINT: how long in-flight requests may take to finish before connections are dropped.
    pub drain_timeout_ms: u64,
    /// Each shard stamps its liveness this often; the systemd watchdog pings only while every
    /// shard's stamp is fresh (see `WatchdogSec` in systemd/adserver.service).
    pub heartbeat_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".parse().expect("literal address"),
            shards: 0,
            driver: "auto".into(),
            pin_cores: true,
            ring_capacity: 1024,
            stall_threshold_ms: 10,
            uring_entries: 1024,
            drain_timeout_ms: 5_000,
            heartbeat_ms: 250,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Request line plus headers, in bytes (431 above).
    pub header_bytes_max: usize,
    /// Number of request headers (431 above).
    pub headers_count_max: usize,
    /// Request body, in bytes (413 above).
    pub body_bytes_max: usize,
    /// A keep-alive connection idle this long is closed.
    pub idle_timeout_ms: u64,
    /// A started request must be fully received within this (408 after).
    pub request_timeout_ms: u64,
    /// Writing a response must finish within this, or the connection is dropped.
    pub write_timeout_ms: u64,
    /// Parsed but unanswered pipelined requests buffered per connection.
    pub pipeline_depth_max: usize,
    /// Per-connection read buffer, in bytes.
    pub read_buffer_bytes: usize,
    /// Open connections per shard; at the bound accepting pauses until one closes.
    pub connections_max: usize,
    /// After an error response, how long the client's input is drained before closing.
    pub linger_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_bytes_max: 8192,
            headers_count_max: 64,
            body_bytes_max: 65_536,
            idle_timeout_ms: 30_000,
            request_timeout_ms: 5_000,
            write_timeout_ms: 5_000,
            pipeline_depth_max: 32,
            read_buffer_bytes: 16_384,
            connections_max: 10_000,
            linger_ms: 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenRtbConfig {
    /// Impressions per request.
    pub imp_count_max: usize,
    /// Entries of `banner.format`.
    pub format_count_max: usize,
    /// Deals per impression.
    pub deal_count_max: usize,
    /// Smallest accepted `tmax`, in milliseconds.
    pub tmax_ms_min: u64,
    /// Largest accepted `tmax`, in milliseconds.
    pub tmax_ms_max: u64,
    /// `tmax` assumed when the request has none.
    pub tmax_ms_default: u64,
}

impl Default for OpenRtbConfig {
    fn default() -> Self {
        OpenRtbConfig {
            imp_count_max: 64,
            format_count_max: 32,
            deal_count_max: 64,
            tmax_ms_min: 10,
            tmax_ms_max: 10_000,
            tmax_ms_default: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuctionConfig {
    /// Global reserve: no paid ad serves below this eCPM, whatever the request's floor.
    pub reserve_cpm_micros: u64,
    /// Fill with a house ad (price 0, flagged) when nothing paid qualifies.
    pub house_fill: bool,
    /// Candidates kept per impression after selection (the rest are not scored).
    pub candidates_max: usize,
    /// Base URL put in `nurl`/`burl` (the public address of this ad server).
    pub notice_base_url: String,
    /// Seat id of the internal demand in responses.
    pub seat: String,
}

impl Default for AuctionConfig {
    fn default() -> Self {
        AuctionConfig {
            reserve_cpm_micros: 10_000,
            house_fill: true,
            candidates_max: 256,
            notice_base_url: "http://127.0.0.1:8080".into(),
            seat: "adcore".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// The catalog file (format in docs/catalog.md).
    pub path: PathBuf,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            path: PathBuf::from("demo-data/catalog.json"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// CTR model file (LightGBM text or XGBoost JSON); empty = the embedded demo model.
    /// `POST /admin/model/reload` and SIGHUP reload it.
    pub path: PathBuf,
    /// Score with the GBDT (tiers 1-3); false = the category prior for everyone.
    pub enabled: bool,
    /// Users with more impressions than this are tier 1 (personal features).
    pub tier2_imps_max: u64,
    /// Users with at least this many impressions (up to tier2_imps_max) are tier 2 (cohort);
    /// fewer (but some) are tier 3 (segment); none is tier 4 (category prior).
    pub tier3_imps_max: u64,
    /// Epsilon-greedy exploration for known users with few impressions.
    pub explore_enabled: bool,
    /// e0 of e(n) = e0 / (1 + ln(n + 1)).
    pub epsilon0: f64,
    /// Users with at least this many impressions are not explored.
    pub explore_imps_max: u64,
    /// Thompson sampling for CPC campaigns in bootstrap.
    pub thompson_enabled: bool,
    /// A campaign leaves bootstrap at this many impressions (estimated over all shards).
    pub thompson_imps_max: u64,
    /// Weight of the Beta prior, in pseudo-impressions, centred on the tier's pCTR.
    pub thompson_prior_imps: f64,
    /// Seed of the per-shard random generators (shard i uses seed + i).
    pub seed: u64,
    /// A reload (file read, checks) taking longer than this is abandoned; the old model stays.
    pub reload_timeout_ms: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            path: PathBuf::new(),
            enabled: true,
            tier2_imps_max: 100,
            tier3_imps_max: 10,
            explore_enabled: true,
            epsilon0: 0.10,
            explore_imps_max: 1000,
            thompson_enabled: true,
            thompson_imps_max: 1000,
            thompson_prior_imps: 50.0,
            seed: 42,
            reload_timeout_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfilesConfig {
    /// Users file (adgen's users.csv); missing = no profiles (everyone is tier 4).
    pub path: PathBuf,
    /// Users kept per shard; users past the bound are not loaded (counted, logged).
    pub users_max_per_shard: usize,
}

impl Default for ProfilesConfig {
    fn default() -> Self {
        ProfilesConfig {
            path: PathBuf::from("demo-data/users.csv"),
            users_max_per_shard: 1_000_000,
        }
    }
}

/// Most idempotency keys a shard may remember (`budget.keys_max`; its key set, 24 bytes a key,
/// is allocated when the shard starts).
pub const BUDGET_KEYS_MAX: usize = 1 << 24;
/// Most spend records a shard may buffer (`budget.journal_max`; 32 bytes a record, allocated when
/// the shard starts).
pub const BUDGET_JOURNAL_MAX: usize = 1 << 22;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Inaccuracy bound, parts per million of each budget: spend <= budget + bound (10000 = 1 %).
    pub bound_ppm: u64,
    /// Normal chunk granted to a shard, ppm of the daily budget.
    pub chunk_ppm: u64,
    /// Smallest chunk, micros (never more than what remains).
    pub chunk_micros_min: u64,
    /// Below this share of the daily budget remaining (ppm), chunks shrink to
    /// remaining / (shards * shrink_divisor).
    pub shrink_below_ppm: u64,
    pub shrink_divisor: u64,
    /// A shard asks for a refill when its lot falls below this share (ppm) of its last chunk.
    pub low_water_ppm: u64,
    /// How often each shard sends refills, returns and heartbeats to the allocator while it has
    /// spend or refills in hand; between rounds with nothing to do it waits longer (see
    /// `Config::budget_quiet_period`) unless a charge wakes it.
    pub poll_ms: u64,
    /// A refill unanswered this long may be asked again.
    pub refill_timeout_ms: u64,
    /// After a refused refill, wait this long before asking again.
    pub refill_retry_ms: u64,
    pub heartbeat_ms: u64,
    /// A shard silent this long loses its chunks (counted as spent) and must register again.
    pub stale_timeout_ms: u64,
    /// No chunk is granted within this many milliseconds of a campaign's local midnight.
    pub dead_zone_ms: u64,
    /// Idempotency keys remembered per shard (request id + imp id hashes).
    pub keys_max: usize,
    /// Spend records buffered per shard for the ledger; at the bound charges are refused.
    pub journal_max: usize,
    /// Pacing curve: "even", "profile" (shaped by pacing_profile) or "off".
    pub pacing: String,
    /// Relative traffic per local hour (24 values) for pacing = "profile".
    pub pacing_profile: Vec<f64>,
    /// How often the pacing controller updates throttles.
    pub pacing_update_ms: u64,
    /// Throttle change per update per unit of (actual - target) / budget.
    pub pacing_gain: f64,
    pub throttle_max: f64,
    /// Directory of the budget write-ahead logs (allocator.wal, spend-N.wal); "" keeps the budget
    /// in memory only (tests). A relative path is resolved against `$STATE_DIRECTORY` when systemd
    /// sets it, else against the working directory.
    pub wal_dir: String,
    /// A log larger than this many bytes is compacted into one snapshot record.
    pub wal_compact_bytes: u64,
}

impl BudgetConfig {
    /// The WAL directory to use (`None`: in memory only), resolved as `wal_dir` documents.
    pub fn wal_dir_resolved(&self) -> Option<PathBuf> {
        if self.wal_dir.is_empty() {
            return None;
        }
        let p = PathBuf::from(&self.wal_dir);
        if p.is_absolute() {
            return Some(p);
        }
        let state = std::env::var_os("STATE_DIRECTORY")
            .and_then(|s| {
                s.to_str()
                    .and_then(|s| s.split(':').next())
                    .map(PathBuf::from)
            })
            .filter(|s| !s.as_os_str().is_empty());
        Some(state.map_or(p.clone(), |s| s.join(&p)))
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            bound_ppm: 10_000,
            chunk_ppm: 50_000,
            chunk_micros_min: 10_000,
            shrink_below_ppm: 100_000,
            shrink_divisor: 10,
            low_water_ppm: 500_000,
            poll_ms: 5,
            refill_timeout_ms: 1_000,
            refill_retry_ms: 200,
            heartbeat_ms: 1_000,
            stale_timeout_ms: 30_000,
            dead_zone_ms: 100,
            keys_max: 262_144,
            journal_max: 65_536,
            pacing: "even".into(),
            pacing_profile: vec![1.0; 24],
            pacing_update_ms: 1_000,
            pacing_gain: 2.0,
            throttle_max: 0.99,
            wal_dir: "adcore-data/wal".into(),
            wal_compact_bytes: 64 << 20,
        }
    }
}

impl Config {
    /// Loads a config file; fields it omits take their defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&file, &text)
    }

    pub fn from_toml(file: &str, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.check(file)?;
        Ok(cfg)
    }

    /// The effective configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config is always serializable")
    }

    fn check(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |field: &'static str, message: &str| {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                field,
                message: message.to_string(),
            })
        };
        if self.driver_choice().is_err() {
            return bad("server.driver", "must be \"auto\", \"uring\" or \"legacy\"");
        }
        if self.server.ring_capacity == 0 {
            return bad("server.ring_capacity", "must be > 0");
        }
        if self.server.stall_threshold_ms == 0 {
            return bad("server.stall_threshold_ms", "must be > 0");
        }
        if self.http.body_bytes_max == 0 || self.http.header_bytes_max < 64 {
            return bad(
                "http",
                "body_bytes_max must be > 0 and header_bytes_max >= 64",
            );
        }
        if self.http.read_buffer_bytes < self.http.header_bytes_max {
            return bad("http.read_buffer_bytes", "must be >= header_bytes_max");
        }
        if self.openrtb.tmax_ms_min > self.openrtb.tmax_ms_max {
            return bad("openrtb.tmax_ms_min", "must be <= tmax_ms_max");
        }
        if self.auction.candidates_max == 0 {
            return bad("auction.candidates_max", "must be > 0");
        }
        let m = &self.model;
        if !(m.epsilon0.is_finite() && (0.0..=1.0).contains(&m.epsilon0)) {
            return bad("model.epsilon0", "must be in [0, 1]");
        }
        if m.tier3_imps_max == 0 || m.tier3_imps_max > m.tier2_imps_max {
            return bad("model.tier3_imps_max", "must be in 1..=tier2_imps_max");
        }
        if !(m.thompson_prior_imps.is_finite() && m.thompson_prior_imps > 0.0) {
            return bad("model.thompson_prior_imps", "must be > 0");
        }
        if m.reload_timeout_ms == 0 {
            return bad("model.reload_timeout_ms", "must be > 0");
        }
        if let Err((field, message)) = self.rtb.check() {
            return bad(field, &message);
        }
        if let Err((field, message)) = self.integrity.check() {
            return bad(field, &message);
        }
        if let Err((field, message)) = self.degradation.check() {
            return bad(field, &message);
        }
        self.dsp_registry(file)?;
        self.check_budget(file)?;
        Ok(())
    }

    /// The DSP registry from `[[dsp]]` and `rtb.dsp_file`; errors name the entry and field.
    pub fn dsp_registry(&self, file: &str) -> Result<crate::rtb::Registry, ConfigError> {
        Ok(crate::rtb::Registry::build(
            file,
            &self.dsp,
            &self.rtb.dsp_file,
            self.rtb.absolute_cutoff_ms,
        )?)
    }

    fn check_budget(&self, file: &str) -> Result<(), ConfigError> {
        let b = &self.budget;
        let bad = |field: &'static str, message: &str| {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                field,
                message: message.to_string(),
            })
        };
        if b.bound_ppm > 10_000 {
            return bad("budget.bound_ppm", "must be <= 10000 (1 % of the budget)");
        }
        if b.chunk_ppm == 0 || b.chunk_ppm > 1_000_000 {
            return bad("budget.chunk_ppm", "must be in 1..=1000000");
        }
        if b.shrink_divisor == 0 || b.low_water_ppm > 1_000_000 {
            return bad(
                "budget",
                "shrink_divisor must be > 0, low_water_ppm <= 1000000",
            );
        }
        if b.poll_ms == 0 || b.heartbeat_ms == 0 || b.stale_timeout_ms <= 2 * b.heartbeat_ms {
            return bad(
                "budget.stale_timeout_ms",
                "poll_ms and heartbeat_ms must be > 0, stale_timeout_ms > 2 * heartbeat_ms",
            );
        }
        if b.keys_max < 2 || b.keys_max > BUDGET_KEYS_MAX {
            return bad(
                "budget.keys_max",
                &format!("must be in 2..={BUDGET_KEYS_MAX} (allocated per shard at start)"),
            );
        }
        if b.journal_max == 0 || b.journal_max > BUDGET_JOURNAL_MAX {
            return bad(
                "budget.journal_max",
                &format!(
                    "must be in 1..={BUDGET_JOURNAL_MAX} (32 bytes a record, allocated per shard at start)"
                ),
            );
        }
        if b.wal_compact_bytes < 1024 {
            return bad("budget.wal_compact_bytes", "must be >= 1024");
        }
        if self.pacing_curve().is_none() {
            return bad(
                "budget.pacing",
                "must be \"even\", \"off\" or \"profile\" (with 24 non-negative pacing_profile values)",
            );
        }
        if !(0.0..=1.0).contains(&b.throttle_max) || b.pacing_gain < 0.0 {
            return bad(
                "budget.throttle_max",
                "must be in 0..=1 (and pacing_gain >= 0)",
            );
        }
        Ok(())
    }

    /// The pacing curve `[budget]` names (`None`: invalid name or profile).
    pub fn pacing_curve(&self) -> Option<crate::budget::pacing::Curve> {
        use crate::budget::pacing::Curve;
        match self.budget.pacing.as_str() {
            "off" => Some(Curve::Off),
            "even" => Some(Curve::Even),
            "profile" => {
                let p: [f64; 24] = self.budget.pacing_profile.as_slice().try_into().ok()?;
                if p.iter().any(|v| !v.is_finite() || *v < 0.0) {
                    return None;
                }
                Some(Curve::Profile(p))
            }
            _ => None,
        }
    }

    pub fn driver_choice(&self) -> Result<shards::DriverChoice, String> {
        self.server
            .driver
            .parse::<shards::DriverChoice>()
            .map_err(|e| e.to_string())
    }

    pub fn shards_config(&self) -> shards::Config {
        shards::Config {
            shards: self.server.shards,
            driver: self.driver_choice().unwrap_or(shards::DriverChoice::Auto),
            ring_capacity: self.server.ring_capacity,
            stall_threshold: Duration::from_millis(self.server.stall_threshold_ms),
            pin_cores: self.server.pin_cores,
            uring_entries: self.server.uring_entries,
            // `run` returns once HTTP has drained (bounded by drain_timeout_ms); allow a margin.
            stop_timeout: Duration::from_millis(self.server.drain_timeout_ms + 1_000),
        }
    }

    /// How long the budget task waits between rounds that find nothing to do (no spend, no
    /// refill wanted; a charge ends the wait at once): a quarter of the shorter of
    /// `budget.heartbeat_ms` and `budget.pacing_update_ms`, so heartbeats and pacing updates
    /// are at most that late, and never less than `budget.poll_ms`.
    pub fn budget_quiet_period(&self) -> std::time::Duration {
        let b = &self.budget;
        let quarter = b.heartbeat_ms.min(b.pacing_update_ms) / 4;
        std::time::Duration::from_millis(quarter.max(b.poll_ms))
    }

    pub fn http_limits(&self) -> net::http::Limits {
        let h = &self.http;
        net::http::Limits {
            header_bytes_max: h.header_bytes_max,
            headers_count_max: h.headers_count_max,
            body_bytes_max: h.body_bytes_max,
            idle_timeout_ms: h.idle_timeout_ms,
            request_timeout_ms: h.request_timeout_ms,
            write_timeout_ms: h.write_timeout_ms,
            pipeline_depth_max: h.pipeline_depth_max,
            read_buffer_bytes: h.read_buffer_bytes,
            connections_max: h.connections_max,
            linger_ms: h.linger_ms,
        }
    }

    pub fn validation_limits(&self) -> net::openrtb::ValidationLimits {
        let o = &self.openrtb;
        net::openrtb::ValidationLimits {
            imp_count_max: o.imp_count_max,
            format_count_max: o.format_count_max,
            deal_count_max: o.deal_count_max,
            tmax_ms_min: o.tmax_ms_min,
            tmax_ms_max: o.tmax_ms_max,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let cfg = Config::default();
        let again = Config::from_toml("x.toml", &cfg.to_toml()).unwrap();
        assert_eq!(cfg, again);
    }

    #[test]
    fn the_shipped_config_file_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../adserver.toml");
        let shipped = Config::load(&path).unwrap();
        assert_eq!(shipped, Config::default());
    }

    #[test]
    fn unknown_key_and_bad_value_are_named() {
        let e = Config::from_toml("a.toml", "[server]\nshardz = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("a.toml: ") && e.contains("unknown field `shardz`"),
            "{e}"
        );
        let e = Config::from_toml("a.toml", "[server]\ndriver = \"fast\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.toml: server.driver: must be \"auto\", \"uring\" or \"legacy\""
        );
        let e = Config::from_toml("a.toml", "[model]\nepsilon0 = 1.5\n").unwrap_err();
        assert_eq!(e.to_string(), "a.toml: model.epsilon0: must be in [0, 1]");
        let e = Config::from_toml("a.toml", "[model]\ntier3_imps_max = 500\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.toml: model.tier3_imps_max: must be in 1..=tier2_imps_max"
        );
    }

    #[test]
    fn budget_buffers_allocated_at_start_are_bounded() {
        let e = Config::from_toml("b.toml", "[budget]\njournal_max = 100000000000\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.toml: budget.journal_max: must be in 1..="),
            "{e}"
        );
        let e = Config::from_toml("b.toml", "[budget]\nkeys_max = 1\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.toml: budget.keys_max: must be in 2..="),
            "{e}"
        );
        let max =
            format!("[budget]\njournal_max = {BUDGET_JOURNAL_MAX}\nkeys_max = {BUDGET_KEYS_MAX}\n");
        assert!(Config::from_toml("b.toml", &max).is_ok());
    }

    #[test]
    fn budget_limits_are_checked() {
        let e = Config::from_toml("b.toml", "[budget]\nbound_ppm = 20000\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "b.toml: budget.bound_ppm: must be <= 10000 (1 % of the budget)"
        );
        let e = Config::from_toml(
            "b.toml",
            "[budget]\npacing = \"profile\"\npacing_profile = [1.0]\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("b.toml: budget.pacing: "), "{e}");
        let ok = Config::from_toml("b.toml", "[budget]\npacing = \"off\"\n").unwrap();
        assert_eq!(ok.pacing_curve(), Some(crate::budget::pacing::Curve::Off));
    }
}
