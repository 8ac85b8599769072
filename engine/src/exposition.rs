//! Renders merged shard snapshots: Prometheus text for `/metrics`, JSON for `/stats`.
//!
//! Every series carries a `shard` label; merging happens here, at scrape time, never while
//! recording.

use std::fmt::Write;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::budget::durable::WalStats;
use crate::catalog::Catalog;
use crate::degradation::level_name;
use crate::integrity::Rule;
use crate::metrics::{
    NoBidReason, Outcome, Percentiles, Stage, percentiles, write_prom_header, write_prom_histogram,
};
use crate::scoring::Tier;
use crate::shard::ShardSnapshot;

/// Prometheus text exposition (format 0.0.4).
pub fn prometheus(snaps: &[ShardSnapshot], catalog: &Catalog) -> String {
    let mut out = String::with_capacity(64 * 1024);
    write_requests(&mut out, snaps);
    write_stage_histograms(&mut out, snaps);
    write_counters(&mut out, snaps);
    write_mesh(&mut out, snaps);
    write_http(&mut out, snaps);
    write_spend(&mut out, snaps, catalog);
    write_wal(&mut out, snaps);
    write_ml(&mut out, snaps);
    write_integrity(&mut out, snaps);
    write_degradation(&mut out, snaps);
    let rtb: Vec<(usize, &crate::rtb::metrics::RtbSnapshot)> =
        snaps.iter().map(|s| (s.shard, &s.rtb)).collect();
    crate::rtb::metrics::write_prometheus(&mut out, &rtb);
    out
}

fn write_requests(out: &mut String, snaps: &[ShardSnapshot]) {
    write_prom_header(
        out,
        "adcore_requests_total",
        "counter",
        "Auction requests answered, by outcome.",
    );
    for s in snaps {
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "adcore_requests_total{{shard=\"{}\",outcome=\"{}\"}} {}",
                s.shard,
                o.name(),
                s.metrics.outcome(o)
            );
        }
    }
    write_prom_header(
        out,
        "adcore_nobid_total",
        "counter",
        "Auction requests answered 204, by no-bid reason.",
    );
    for s in snaps {
        for r in NoBidReason::ALL {
            let _ = writeln!(
                out,
                "adcore_nobid_total{{shard=\"{}\",reason=\"{}\"}} {}",
                s.shard,
                r.name(),
                s.metrics.nobid(r)
            );
        }
    }
}

fn write_stage_histograms(out: &mut String, snaps: &[ShardSnapshot]) {
    write_prom_header(
        out,
        "adcore_stage_duration_seconds",
        "histogram",
        "Time spent per pipeline stage of an auction request.",
    );
    for s in snaps {
        for st in Stage::ALL {
            let labels = format!("shard=\"{}\",stage=\"{}\"", s.shard, st.name());
            write_prom_histogram(
                out,
                "adcore_stage_duration_seconds",
                &labels,
                s.metrics.stage(st),
            );
        }
    }
}

fn write_counter_family(
    out: &mut String,
    snaps: &[ShardSnapshot],
    name: &str,
    help: &str,
    value: impl Fn(&ShardSnapshot) -> u64,
) {
    write_prom_header(out, name, "counter", help);
    for s in snaps {
        let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, value(s));
    }
}

fn write_counters(out: &mut String, snaps: &[ShardSnapshot]) {
    type Row = (&'static str, &'static str, fn(&ShardSnapshot) -> u64);
    let rows: [Row; 9] = [
        (
            "adcore_hops_out_total",
            "Requests handed to the owner shard.",
            |s| s.metrics.hops_out,
        ),
        (
            "adcore_hops_in_total",
            "Requests handled for another shard.",
            |s| s.metrics.hops_in,
        ),
        (
            "adcore_hop_fallback_local_total",
            "Requests served locally because the owner's ring was full.",
            |s| s.metrics.hop_fallback_local,
        ),
        (
            "adcore_revenue_micros_total",
            "Revenue from paid impressions, in micros of USD.",
            |s| s.metrics.revenue_micros,
        ),
        (
            "adcore_impressions_paid_total",
            "Paid impressions served.",
            |s| s.metrics.impressions_paid,
        ),
        ("adcore_impressions_house_total", "House ads served.", |s| {
            s.metrics.impressions_house
        }),
        (
            "adcore_candidates_below_floor_total",
            "Candidates dropped under the reserve.",
            |s| s.metrics.below_floor_candidates,
        ),
        (
            "adcore_budget_refusals_total",
            "Candidates skipped because their budget share was exhausted.",
            |s| s.metrics.budget_refusals,
        ),
        (
            "adcore_notices_total",
            "Win and billing notices received.",
            |s| s.metrics.win_notices + s.metrics.billing_notices,
        ),
    ];
    for (name, help, f) in rows {
        write_counter_family(out, snaps, name, help, f);
    }
}

fn write_mesh(out: &mut String, snaps: &[ShardSnapshot]) {
    write_counter_family(
        out,
        snaps,
        "adcore_ring_full_total",
        "Messages refused because the target ring was full.",
        |s| s.mesh.ring_full,
    );
    write_counter_family(
        out,
        snaps,
        "adcore_mesh_sent_total",
        "Messages sent to other shards.",
        |s| s.mesh.hops_sent,
    );
    write_counter_family(
        out,
        snaps,
        "adcore_mesh_received_total",
        "Messages received from other shards.",
        |s| s.mesh.hops_received,
    );
    write_counter_family(
        out,
        snaps,
        "adcore_stalls_total",
        "Times a task held the shard past the stall threshold.",
        |s| s.mesh.stalls,
    );
    write_prom_header(
        out,
        "adcore_stall_seconds_max",
        "gauge",
        "Longest stall seen.",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "adcore_stall_seconds_max{{shard=\"{}\"}} {}",
            s.shard,
            s.mesh.stall_us_max as f64 / 1e6
        );
    }
    write_prom_header(
        out,
        "adcore_driver_info",
        "gauge",
        "The I/O driver a shard runs (1 = in use).",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "adcore_driver_info{{shard=\"{}\",driver=\"{}\"}} 1",
            s.shard, s.driver
        );
    }
}

fn write_http(out: &mut String, snaps: &[ShardSnapshot]) {
    write_prom_header(
        out,
        "adcore_http_events_total",
        "counter",
        "HTTP server counters.",
    );
    for s in snaps {
        for (name, v) in &s.http {
            let _ = writeln!(
                out,
                "adcore_http_events_total{{shard=\"{}\",event=\"{name}\"}} {v}",
                s.shard
            );
        }
    }
}

fn pace_target(snaps: &[ShardSnapshot], i: usize) -> u64 {
    snaps
        .iter()
        .map(|s| s.pacing.get(i).map_or(0, |p| p.target_micros))
        .sum()
}

fn pace_throttle(snaps: &[ShardSnapshot], i: usize) -> f64 {
    let n = snaps.len().max(1) as f64;
    snaps
        .iter()
        .map(|s| s.pacing.get(i).map_or(0.0, |p| p.throttle))
        .sum::<f64>()
        / n
}

/// Pacing gauges per campaign, merged over shards (targets and spend summed, throttle averaged).
fn write_pacing(out: &mut String, snaps: &[ShardSnapshot], catalog: &Catalog) {
    let gauges: [(&str, &str); 4] = [
        (
            "adcore_pacing_target_micros",
            "Spend the pacing curve expects by now today, per campaign (all shards).",
        ),
        (
            "adcore_pacing_actual_micros",
            "Spend today per campaign (all shards), compared with the pacing target.",
        ),
        (
            "adcore_pacing_throttle",
            "Share of auctions the pacing controller skips the campaign in (mean over shards).",
        ),
        (
            "adcore_budget_held_micros",
            "Budget granted to shards and not yet spent, per campaign.",
        ),
    ];
    for (g, (name, help)) in gauges.iter().enumerate() {
        write_prom_header(out, name, "gauge", help);
        for (i, c) in catalog.campaigns.iter().enumerate() {
            if c.is_house() {
                continue;
            }
            let sum = |f: fn(&crate::ledger::SpendLine) -> u64| -> u64 {
                snaps.iter().map(|s| s.spend.get(i).map_or(0, f)).sum()
            };
            let v = match g {
                0 => pace_target(snaps, i) as f64,
                1 => sum(|l| l.spent_today_micros) as f64,
                2 => pace_throttle(snaps, i),
                _ => sum(|l| l.held_micros) as f64,
            };
            let _ = writeln!(out, "{name}{{campaign=\"{}\"}} {v}", c.spec.id);
        }
    }
}

/// The budget's write-ahead logs, one series per log (`wal="allocator"`, `wal="spend-0"`, ...).
fn write_wal(out: &mut String, snaps: &[ShardSnapshot]) {
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        fn(&WalStats) -> f64,
    );
    let rows: [Row; 4] = [
        (
            "adcore_wal_commits_total",
            "counter",
            "Group commits (one write + one fdatasync) per budget log.",
            |w| w.commits as f64,
        ),
        (
            "adcore_wal_bytes_total",
            "counter",
            "Bytes written per budget log (framing included).",
            |w| w.bytes as f64,
        ),
        (
            "adcore_wal_durable_seq",
            "gauge",
            "Highest durable record sequence number per budget log.",
            |w| w.durable_seq as f64,
        ),
        (
            "adcore_wal_compactions_total",
            "counter",
            "Compactions (snapshot replaces the log) per budget log.",
            |w| w.compactions as f64,
        ),
    ];
    for (name, kind, help, f) in rows {
        write_prom_header(out, name, kind, help);
        for s in snaps {
            for (wal, w) in &s.wal {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{}\",wal=\"{wal}\"}} {}",
                    s.shard,
                    f(w)
                );
            }
        }
    }
    let name = "adcore_wal_fsync_seconds";
    write_prom_header(
        out,
        name,
        "summary",
        "Time in write + fdatasync (or compaction) per budget log.",
    );
    for s in snaps {
        for (wal, w) in &s.wal {
            let labels = format!("shard=\"{}\",wal=\"{wal}\"", s.shard);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", w.fsync_ns as f64 / 1e9);
            let _ = writeln!(
                out,
                "{name}_count{{{labels}}} {}",
                w.commits + w.compactions
            );
        }
    }
}

fn write_spend(out: &mut String, snaps: &[ShardSnapshot], catalog: &Catalog) {
    write_pacing(out, snaps, catalog);
    write_prom_header(
        out,
        "adcore_campaign_spend_today_micros",
        "gauge",
        "Spend today per campaign and shard, in micros.",
    );
    for s in snaps {
        for (i, line) in s.spend.iter().enumerate() {
            if line.impressions > 0 {
                let _ = writeln!(
                    out,
                    "adcore_campaign_spend_today_micros{{shard=\"{}\",campaign=\"{}\"}} {}",
                    s.shard, catalog.campaigns[i].spec.id, line.spent_today_micros
                );
            }
        }
    }
}

/// Model path: tiers, exploration, Thompson draws, clicks, model version and loads, profiles.
fn write_ml(out: &mut String, snaps: &[ShardSnapshot]) {
    write_prom_header(
        out,
        "adcore_scoring_tier_total",
        "counter",
        "Auctions scored per cold-start tier (personal, cohort, segment, category_prior).",
    );
    for s in snaps {
        for t in Tier::ALL {
            let _ = writeln!(
                out,
                "adcore_scoring_tier_total{{shard=\"{}\",tier=\"{}\"}} {}",
                s.shard,
                t.name(),
                s.metrics.ml.tiers[t as usize]
            );
        }
    }
    type Row = (&'static str, &'static str, fn(&ShardSnapshot) -> u64);
    let rows: [Row; 8] = [
        (
            "adcore_explorations_total",
            "Epsilon-greedy explorations (random candidate ranked first).",
            |s| s.metrics.ml.explorations,
        ),
        (
            "adcore_thompson_draws_total",
            "Thompson draws for campaigns in bootstrap.",
            |s| s.metrics.ml.thompson_draws,
        ),
        (
            "adcore_model_errors_total",
            "Batches the model refused (scored by the prior instead).",
            |s| s.metrics.ml.model_errors,
        ),
        (
            "adcore_clicks_total",
            "Clicks received (/notice/click), counted on the user's owner shard.",
            |s| s.metrics.ml.clicks,
        ),
        (
            "adcore_clicks_unknown_user_total",
            "Clicks by users without a profile.",
            |s| s.metrics.ml.clicks_unknown_user,
        ),
        (
            "adcore_impressions_profiled_total",
            "Paid impressions counted in a user profile.",
            |s| s.metrics.ml.impressions_profiled,
        ),
        (
            "adcore_model_loads_total",
            "Model reloads swapped on every shard (counted by the shard that ran them).",
            |s| s.metrics.ml.model_loads,
        ),
        (
            "adcore_model_load_failures_total",
            "Model reloads refused (the previous model kept serving).",
            |s| s.metrics.ml.model_load_failures,
        ),
    ];
    for (name, help, f) in rows {
        write_counter_family(out, snaps, name, help, f);
    }
    write_prom_header(
        out,
        "adcore_model_info",
        "gauge",
        "The model a shard serves (1 = in use).",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "adcore_model_info{{shard=\"{}\",version=\"{}\"}} 1",
            s.shard, s.model_version
        );
    }
    write_prom_header(
        out,
        "adcore_profiles",
        "gauge",
        "User profiles held per shard.",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "adcore_profiles{{shard=\"{}\"}} {}",
            s.shard, s.profiles
        );
    }
    write_prom_header(
        out,
        "adcore_profiles_dropped",
        "gauge",
        "Users of the shard not loaded because the store was full.",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "adcore_profiles_dropped{{shard=\"{}\"}} {}",
            s.shard, s.profiles_dropped
        );
    }
}

fn write_integrity(out: &mut String, snaps: &[ShardSnapshot]) {
    write_prom_header(
        out,
        "adcore_integrity_flagged_total",
        "counter",
        "Auction requests flagged by the integrity check (fraud tier 1), by rule.",
    );
    for s in snaps {
        for r in Rule::ALL {
            let _ = writeln!(
                out,
                "adcore_integrity_flagged_total{{shard=\"{}\",rule=\"{}\"}} {}",
                s.shard,
                r.name(),
                s.metrics.integrity(r)
            );
        }
    }
}

fn write_degradation(out: &mut String, snaps: &[ShardSnapshot]) {
    write_prom_header(
        out,
        "adcore_degradation_level",
        "gauge",
        "Degradation level of the shard: 0 normal, 1 light, 2 moderate, 3 severe, 4 critical.",
    );
    for s in snaps {
        let _ = writeln!(
            out,
            "adcore_degradation_level{{shard=\"{}\"}} {}",
            s.shard, s.degradation.level
        );
    }
    write_counter_family(
        out,
        snaps,
        "adcore_degradation_transitions_total",
        "Degradation level changes made by the shard's controller.",
        |s| s.degradation.transitions,
    );
    write_prom_header(
        out,
        "adcore_degradation_requests_total",
        "counter",
        "Auction requests started on the shard, by the degradation level in force.",
    );
    for s in snaps {
        for (level, n) in s.degradation.served.iter().enumerate() {
            let _ = writeln!(
                out,
                "adcore_degradation_requests_total{{shard=\"{}\",level=\"{level}\"}} {n}",
                s.shard
            );
        }
    }
}

/// `/stats` `degradation`: the highest level over shards, and each shard's.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct DegradationStats {
    pub level: u8,
    pub name: String,
    /// Set with `[degradation] force_level`.
    pub forced: bool,
    pub shards: Vec<ShardDegradation>,
}

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct ShardDegradation {
    pub shard: usize,
    pub level: u8,
    pub name: String,
    pub transitions: u64,
}

fn degradation_stats(snaps: &[ShardSnapshot]) -> DegradationStats {
    let level = snaps.iter().map(|s| s.degradation.level).max().unwrap_or(0);
    DegradationStats {
        level,
        name: level_name(level).to_string(),
        forced: snaps.iter().any(|s| s.degradation.forced),
        shards: snaps
            .iter()
            .map(|s| ShardDegradation {
                shard: s.shard,
                level: s.degradation.level,
                name: level_name(s.degradation.level).to_string(),
                transitions: s.degradation.transitions,
            })
            .collect(),
    }
}

/// `/stats`: per shard and total figures, plus campaign spend.
#[derive(Serialize, Deserialize)]
pub struct Stats {
    pub shards: Vec<ShardStats>,
    pub total: ShardStats,
    pub campaigns: Vec<CampaignSpend>,
    /// External demand (all shards merged); empty when no DSP is configured.
    #[serde(default)]
    pub rtb: crate::rtb::metrics::RtbStats,
    /// Degradation ladder: max level over shards, plus per shard.
    #[serde(default)]
    pub degradation: DegradationStats,
    /// The budget's durability (`budget.wal`: one row per log; empty when in memory only).
    #[serde(default)]
    pub budget: BudgetStats,
}

#[derive(Serialize, Deserialize, Default)]
pub struct BudgetStats {
    pub wal: Vec<WalLine>,
}

/// One budget log in `/stats`.
#[derive(Serialize, Deserialize, Default, Debug, Clone)]
pub struct WalLine {
    pub shard: usize,
    /// "allocator" or "spend-N".
    pub name: String,
    pub durable_seq: u64,
    pub commits: u64,
    pub compactions: u64,
    pub records: u64,
    pub bytes: u64,
    pub size_bytes: u64,
    pub fsync_seconds_sum: f64,
    pub fsync_seconds_max: f64,
}

#[derive(Serialize, Deserialize, Default)]
pub struct ShardStats {
    pub shard: Option<usize>,
    pub driver: String,
    pub requests: u64,
    pub outcomes: Vec<(String, u64)>,
    pub nobid_reasons: Vec<(String, u64)>,
    pub latency_total: Percentiles,
    pub stages: Vec<(String, Percentiles)>,
    pub hops_out: u64,
    pub hops_in: u64,
    pub hop_fallback_local: u64,
    pub ring_full: u64,
    pub stalls: u64,
    pub revenue_micros: u64,
    pub impressions_paid: u64,
    pub impressions_house: u64,
    /// Model path (`scoring.rs`): auctions per tier, explorations, Thompson draws, clicks.
    #[serde(default)]
    pub model_version: String,
    #[serde(default)]
    pub tiers: Vec<(String, u64)>,
    #[serde(default)]
    pub explorations: u64,
    #[serde(default)]
    pub thompson_draws: u64,
    #[serde(default)]
    pub clicks: u64,
    #[serde(default)]
    pub profiles: u64,
    /// Requests flagged by the integrity check, per rule.
    #[serde(default)]
    pub integrity_flagged: Vec<(String, u64)>,
    /// Degradation level (max over the shards merged).
    #[serde(default)]
    pub degradation_level: u8,
}

#[derive(Serialize, Deserialize)]
pub struct CampaignSpend {
    pub id: u32,
    pub name: String,
    pub kind: String,
    pub budget_daily_micros: u64,
    pub spent_today_micros: u64,
    pub spent_lifetime_micros: u64,
    pub impressions: u64,
    #[serde(default)]
    pub budget_lifetime_micros: u64,
    /// Budget granted to shards and not yet spent.
    #[serde(default)]
    pub held_micros: u64,
    /// Pacing: where spend should be by now (summed over shards).
    #[serde(default)]
    pub pacing_target_micros: u64,
    /// Pacing throttle probability (mean over shards).
    #[serde(default)]
    pub throttle: f64,
}

fn shard_stats(shard: Option<usize>, driver: &str, snaps: &[&ShardSnapshot]) -> ShardStats {
    let mut stages: Vec<Histogram<u64>> = Stage::ALL
        .iter()
        .map(|&st| {
            let mut h = snaps
                .first()
                .map(|s| s.metrics.stage(st).clone())
                .unwrap_or_else(|| Histogram::new(2).expect("histogram"));
            h.reset();
            h
        })
        .collect();
    let mut st = ShardStats {
        shard,
        driver: driver.to_string(),
        ..ShardStats::default()
    };
    let sum = |f: &dyn Fn(&ShardSnapshot) -> u64| snaps.iter().map(|s| f(s)).sum::<u64>();
    for s in snaps {
        for (i, h) in stages.iter_mut().enumerate() {
            // Same bounds everywhere: adding cannot fail.
            let _ = h.add(&s.metrics.stages[i]);
        }
    }
    st.requests = sum(&|s| s.metrics.requests());
    st.outcomes = Outcome::ALL
        .iter()
        .map(|&o| (o.name().to_string(), sum(&|s| s.metrics.outcome(o))))
        .collect();
    st.nobid_reasons = NoBidReason::ALL
        .iter()
        .map(|&r| (r.name().to_string(), sum(&|s| s.metrics.nobid(r))))
        .collect();
    st.latency_total = percentiles(&stages[Stage::Total as usize]);
    st.stages = Stage::ALL
        .iter()
        .map(|&s| (s.name().to_string(), percentiles(&stages[s as usize])))
        .collect();
    st.hops_out = sum(&|s| s.metrics.hops_out);
    st.hops_in = sum(&|s| s.metrics.hops_in);
    st.hop_fallback_local = sum(&|s| s.metrics.hop_fallback_local);
    st.ring_full = sum(&|s| s.mesh.ring_full);
    st.stalls = sum(&|s| s.mesh.stalls);
    st.revenue_micros = sum(&|s| s.metrics.revenue_micros);
    st.impressions_paid = sum(&|s| s.metrics.impressions_paid);
    st.impressions_house = sum(&|s| s.metrics.impressions_house);
    st.model_version = snaps
        .first()
        .map(|s| s.model_version.clone())
        .unwrap_or_default();
    st.tiers = Tier::ALL
        .iter()
        .map(|&t| {
            (
                t.name().to_string(),
                sum(&|s| s.metrics.ml.tiers[t as usize]),
            )
        })
        .collect();
    st.explorations = sum(&|s| s.metrics.ml.explorations);
    st.thompson_draws = sum(&|s| s.metrics.ml.thompson_draws);
    st.clicks = sum(&|s| s.metrics.ml.clicks);
    st.profiles = sum(&|s| s.profiles as u64);
    st.integrity_flagged = Rule::ALL
        .iter()
        .map(|&r| (r.name().to_string(), sum(&|s| s.metrics.integrity(r))))
        .collect();
    st.degradation_level = snaps.iter().map(|s| s.degradation.level).max().unwrap_or(0);
    st
}

pub fn stats(snaps: &[ShardSnapshot], catalog: &Catalog) -> Stats {
    let shards = snaps
        .iter()
        .map(|s| shard_stats(Some(s.shard), &s.driver, &[s]))
        .collect();
    let all: Vec<&ShardSnapshot> = snaps.iter().collect();
    let driver = snaps.first().map(|s| s.driver.as_str()).unwrap_or("");
    let campaigns = catalog
        .campaigns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let line = |f: fn(&crate::ledger::SpendLine) -> u64| {
                snaps
                    .iter()
                    .map(|s| s.spend.get(i).map(f).unwrap_or(0))
                    .sum()
            };
            CampaignSpend {
                id: c.spec.id,
                name: c.spec.name.clone(),
                kind: format!("{:?}", c.spec.kind),
                budget_daily_micros: c.spec.budget_daily_micros,
                spent_today_micros: line(|l| l.spent_today_micros),
                spent_lifetime_micros: line(|l| l.spent_lifetime_micros),
                impressions: line(|l| l.impressions),
                budget_lifetime_micros: c.spec.budget_lifetime_micros,
                held_micros: line(|l| l.held_micros),
                pacing_target_micros: pace_target(snaps, i),
                throttle: pace_throttle(snaps, i),
            }
        })
        .collect();
    let rtb: Vec<&crate::rtb::metrics::RtbSnapshot> = snaps.iter().map(|s| &s.rtb).collect();
    let rtb = crate::rtb::metrics::stats(&rtb);
    let wal = snaps
        .iter()
        .flat_map(|s| {
            s.wal.iter().map(|(name, w)| WalLine {
                shard: s.shard,
                name: name.clone(),
                durable_seq: w.durable_seq,
                commits: w.commits,
                compactions: w.compactions,
                records: w.records,
                bytes: w.bytes,
                size_bytes: w.size_bytes,
                fsync_seconds_sum: w.fsync_ns as f64 / 1e9,
                fsync_seconds_max: w.fsync_ns_max as f64 / 1e9,
            })
        })
        .collect();
    Stats {
        budget: BudgetStats { wal },
        shards,
        total: shard_stats(None, driver, &all),
        campaigns,
        rtb,
        degradation: degradation_stats(snaps),
    }
}

pub fn stats_json(snaps: &[ShardSnapshot], catalog: &Catalog) -> String {
    serde_json::to_string(&stats(snaps, catalog))
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
