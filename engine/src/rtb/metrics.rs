//! Per-shard, per-DSP RTB counters (plain integers behind one `RefCell`, no atomics), copied into
//! the shard snapshot on a scrape and rendered as `adcore_rtb_*` series with a `dsp` label.
//!
//! Owns: the counters and their Prometheus names. Must not know: how they are produced.

use std::cell::RefCell;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::timeouts::LatencyHist;
use crate::metrics::write_prom_header;

/// Why a DSP call failed (timeouts are counted apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not connect (or backing off after failed connects).
    Connect,
    /// Connection reset or closed mid-response.
    Reset,
    /// Unparseable HTTP or a response body that is not an OpenRTB BidResponse.
    Malformed,
    /// HTTP status other than 200/204.
    Status,
    /// Response larger than rtb.response_bytes_max.
    TooLarge,
    /// Every pooled connection busy.
    PoolExhausted,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Malformed,
        ErrorKind::Status,
        ErrorKind::TooLarge,
        ErrorKind::PoolExhausted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Status => "status",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::PoolExhausted => "pool_exhausted",
        }
    }
}

/// Loss codes counted for dropped bids (anything else lands in the last slot, "other").
pub const DROP_CODES: [u32; 6] = [3, 5, 7, 8, 9, 100];

/// One DSP's counters on one shard.
#[derive(Debug, Clone, Default)]
pub struct DspCounters {
    pub requests: u64,
    pub probes: u64,
    pub responses: u64,
    pub nobids: u64,
    pub bids: u64,
    pub wins: u64,
    pub losses: u64,
    pub timeouts: u64,
    pub qps_refused: u64,
    pub errors: [u64; 6],
    /// Indexed like [`DROP_CODES`], plus "other".
    pub dropped: [u64; 7],
    /// Sum of winning prices, CPM micros (revenue = sum / 1000 per impression).
    pub won_cpm_micros: u64,
    pub latency: LatencyHist,
}

impl DspCounters {
    pub fn error(&mut self, k: ErrorKind) {
        self.errors[k as usize] += 1;
    }

    pub fn drop_code(&mut self, code: u32) {
        let i = DROP_CODES
            .iter()
            .position(|&c| c == code)
            .unwrap_or(DROP_CODES.len());
        self.dropped[i] += 1;
    }

    pub fn merge(&mut self, o: &DspCounters) {
        self.requests += o.requests;
        self.probes += o.probes;
        self.responses += o.responses;
        self.nobids += o.nobids;
        self.bids += o.bids;
        self.wins += o.wins;
        self.losses += o.losses;
        self.timeouts += o.timeouts;
        self.qps_refused += o.qps_refused;
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        for (a, b) in self.dropped.iter_mut().zip(o.dropped) {
            *a += b;
        }
        self.won_cpm_micros += o.won_cpm_micros;
        self.latency.merge(&o.latency);
    }
}

/// Shard-wide RTB counters.
#[derive(Debug, Clone, Default)]
pub struct RtbTotals {
    /// Requests fanned out to at least one DSP.
    pub auctions: u64,
    /// Collection closed because every DSP had answered.
    pub closed_all_answered: u64,
    /// Closed after the operational cutoff with a bid in hand.
    pub closed_operational: u64,
    /// Closed at the absolute cutoff (pending requests cancelled).
    pub closed_absolute: u64,
    /// Slots won by an external bid.
    pub external_wins: u64,
    pub notices_queued: u64,
    /// Refused because the notice queue was full.
    pub notices_refused: u64,
    pub notices_sent: u64,
    /// Given up after every attempt.
    pub notices_failed: u64,
    pub notice_retries: u64,
    /// Longest collection, from receipt to close, ms (server-side timing for tests).
    pub collect_max_ms: u64,
}

/// One shard's RTB metrics.
#[derive(Default)]
pub struct RtbMetrics {
    pub dsps: RefCell<Vec<DspCounters>>,
    pub totals: RefCell<RtbTotals>,
}

/// A copy for a scrape.
#[derive(Debug, Clone, Default)]
pub struct RtbSnapshot {
    /// DSP ids, indexed like `dsps`.
    pub ids: Arc<[String]>,
    pub dsps: Vec<DspCounters>,
    pub totals: RtbTotals,
    /// Per DSP: (score, tier, adaptive timeout ms) as this shard last saw them.
    pub health: Vec<(f64, u8, u64)>,
    /// Per DSP: its pools' counters on this shard (all endpoints summed), `net` names.
    pub pools: Vec<Vec<(&'static str, u64)>>,
}

impl RtbMetrics {
    pub fn new(dsps: usize) -> RtbMetrics {
        RtbMetrics {
            dsps: RefCell::new(vec![DspCounters::default(); dsps]),
            totals: RefCell::new(RtbTotals::default()),
        }
    }

    pub fn dsp(&self, d: usize, f: impl FnOnce(&mut DspCounters)) {
        if let Some(c) = self.dsps.borrow_mut().get_mut(d) {
            f(c);
        }
    }

    pub fn total(&self, f: impl FnOnce(&mut RtbTotals)) {
        f(&mut self.totals.borrow_mut());
    }

    pub fn record_collect(&self, d: Duration) {
        let ms = d.as_millis() as u64;
        self.total(|t| t.collect_max_ms = t.collect_max_ms.max(ms));
    }
}

/// Latency bucket bounds exported, ms.
const LATENCY_LE_MS: [u64; 10] = [5, 10, 20, 30, 50, 70, 80, 100, 120, 250];

/// RTB figures for `/stats` (and the demo summary), all shards merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RtbStats {
    pub auctions: u64,
    pub external_wins: u64,
    pub closed_all_answered: u64,
    pub closed_operational: u64,
    pub closed_absolute: u64,
    pub collect_max_ms: u64,
    pub notices_sent: u64,
    pub notices_failed: u64,
    pub notices_refused: u64,
    pub dsps: Vec<DspStats>,
}

/// One DSP's figures, all shards merged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DspStats {
    pub id: String,
    /// As published on the first shard.
    pub tier: u8,
    pub score: f64,
    pub timeout_ms: u64,
    pub requests: u64,
    pub responses: u64,
    pub bids: u64,
    pub wins: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub dropped_bids: u64,
    pub qps_refused: u64,
    pub won_cpm_micros: u64,
    /// Answer latency percentiles over all calls since start (1 ms buckets, upper bounds).
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    #[serde(default)]
    pub latency_p99_ms: u64,
    /// Bids per request, wins per bid.
    pub bid_rate: f64,
    pub win_rate: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Merges the shards' RTB snapshots.
pub fn stats(shards: &[&RtbSnapshot]) -> RtbStats {
    let mut st = RtbStats::default();
    let Some(first) = shards.first() else {
        return st;
    };
    let mut merged = vec![DspCounters::default(); first.dsps.len()];
    for s in shards {
        let t = &s.totals;
        st.auctions += t.auctions;
        st.external_wins += t.external_wins;
        st.closed_all_answered += t.closed_all_answered;
        st.closed_operational += t.closed_operational;
        st.closed_absolute += t.closed_absolute;
        st.collect_max_ms = st.collect_max_ms.max(t.collect_max_ms);
        st.notices_sent += t.notices_sent;
        st.notices_failed += t.notices_failed;
        st.notices_refused += t.notices_refused;
        for (m, c) in merged.iter_mut().zip(&s.dsps) {
            m.merge(c);
        }
    }
    st.dsps = merged
        .iter()
        .enumerate()
        .map(|(d, c)| {
            let (score, tier, timeout_ms) = first.health.get(d).copied().unwrap_or((-1.0, 0, 0));
            DspStats {
                id: first.ids.get(d).cloned().unwrap_or_default(),
                tier,
                score,
                timeout_ms,
                requests: c.requests,
                responses: c.responses,
                bids: c.bids,
                wins: c.wins,
                timeouts: c.timeouts,
                errors: c.errors.iter().sum(),
                dropped_bids: c.dropped.iter().sum(),
                qps_refused: c.qps_refused,
                won_cpm_micros: c.won_cpm_micros,
                latency_p50_ms: c.latency.quantile_ms(0.5),
                latency_p95_ms: c.latency.quantile_ms(0.95),
                latency_p99_ms: c.latency.quantile_ms(0.99),
                bid_rate: ratio(c.bids, c.requests),
                win_rate: ratio(c.wins, c.bids),
            }
        })
        .collect();
    st
}

/// Writes the `adcore_rtb_*` families for every shard snapshot (`(shard, snapshot)`).
pub fn write_prometheus(out: &mut String, shards: &[(usize, &RtbSnapshot)]) {
    let Some((_, first)) = shards.first() else {
        return;
    };
    if first.ids.is_empty() {
        return;
    }
    let ids = first.ids.clone();
    let ids: &[String] = &ids;
    type Get = fn(&DspCounters) -> u64;
    let families: [(&str, &str, Get); 10] = [
        (
            "adcore_rtb_requests_total",
            "Bid requests sent to a DSP.",
            |c| c.requests,
        ),
        (
            "adcore_rtb_probes_total",
            "Bid requests sent as health probes.",
            |c| c.probes,
        ),
        (
            "adcore_rtb_responses_total",
            "DSP answers received in time (bids or no-bids).",
            |c| c.responses,
        ),
        (
            "adcore_rtb_nobids_total",
            "DSP answers without a bid.",
            |c| c.nobids,
        ),
        ("adcore_rtb_bids_total", "Valid bids received.", |c| c.bids),
        ("adcore_rtb_wins_total", "Impressions won by a DSP.", |c| {
            c.wins
        }),
        ("adcore_rtb_losses_total", "Valid bids that lost.", |c| {
            c.losses
        }),
        (
            "adcore_rtb_timeouts_total",
            "DSP requests cancelled at their deadline or the absolute cutoff.",
            |c| c.timeouts,
        ),
        (
            "adcore_rtb_qps_refused_total",
            "DSP calls skipped because the QPS token bucket was empty.",
            |c| c.qps_refused,
        ),
        (
            "adcore_rtb_won_cpm_micros_total",
            "Sum of winning CPM prices, micros of USD.",
            |c| c.won_cpm_micros,
        ),
    ];
    for (name, help, get) in families {
        write_prom_header(out, name, "counter", help);
        for (shard, s) in shards {
            for (d, c) in s.dsps.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{shard}\",dsp=\"{}\"}} {}",
                    ids[d],
                    get(c)
                );
            }
        }
    }
    write_prom_header(
        out,
        "adcore_rtb_errors_total",
        "counter",
        "Failed DSP calls, by kind.",
    );
    for (shard, s) in shards {
        for (d, c) in s.dsps.iter().enumerate() {
            for k in ErrorKind::ALL {
                let _ = writeln!(
                    out,
                    "adcore_rtb_errors_total{{shard=\"{shard}\",dsp=\"{}\",kind=\"{}\"}} {}",
                    ids[d],
                    k.name(),
                    c.errors[k as usize]
                );
            }
        }
    }
    write_prom_header(
        out,
        "adcore_rtb_dropped_bids_total",
        "counter",
        "Bids refused by validation, by OpenRTB loss reason code.",
    );
    for (shard, s) in shards {
        for (d, c) in s.dsps.iter().enumerate() {
            for (i, n) in c.dropped.iter().enumerate() {
                let code = DROP_CODES
                    .get(i)
                    .map_or("other".to_string(), |c| c.to_string());
                let _ = writeln!(
                    out,
                    "adcore_rtb_dropped_bids_total{{shard=\"{shard}\",dsp=\"{}\",code=\"{code}\"}} {n}",
                    ids[d]
                );
            }
        }
    }
    write_latency(out, ids, shards);
    write_pools(out, ids, shards);
    write_health(out, ids, shards);
    write_totals(out, shards);
}

fn write_latency(out: &mut String, ids: &[String], shards: &[(usize, &RtbSnapshot)]) {
    let name = "adcore_rtb_latency_seconds";
    write_prom_header(
        out,
        name,
        "histogram",
        "DSP answer latency (timeouts at their deadline).",
    );
    for (shard, s) in shards {
        for (d, c) in s.dsps.iter().enumerate() {
            let labels = format!("shard=\"{shard}\",dsp=\"{}\"", ids[d]);
            for le in LATENCY_LE_MS {
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{labels},le=\"{}\"}} {}",
                    le as f64 / 1000.0,
                    c.latency.count_within(le)
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
                c.latency.count()
            );
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", c.latency.count());
        }
    }
}

fn write_pools(out: &mut String, ids: &[String], shards: &[(usize, &RtbSnapshot)]) {
    let name = "adcore_rtb_pool_events_total";
    write_prom_header(
        out,
        name,
        "counter",
        "DSP connection pool counters (connects, reuses, broken, abandoned, exhausted ...); `open` is current.",
    );
    for (shard, s) in shards {
        for (d, events) in s.pools.iter().enumerate() {
            for (event, v) in events {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{shard}\",dsp=\"{}\",event=\"{event}\"}} {v}",
                    ids[d]
                );
            }
        }
    }
}

fn write_health(out: &mut String, ids: &[String], shards: &[(usize, &RtbSnapshot)]) {
    type Get = fn(&(f64, u8, u64)) -> f64;
    let gauges: [(&str, &str, Get); 3] = [
        (
            "adcore_rtb_health_score",
            "DSP health score 0-100 (-1 before the first merge).",
            |h| h.0,
        ),
        (
            "adcore_rtb_tier",
            "DSP tier: 1 premium, 2 regional, 3 opportunistic, 4 suspended.",
            |h| f64::from(h.1),
        ),
        (
            "adcore_rtb_timeout_ms",
            "Adaptive per-DSP timeout, ms.",
            |h| h.2 as f64,
        ),
    ];
    for (name, help, get) in gauges {
        write_prom_header(out, name, "gauge", help);
        for (shard, s) in shards {
            for (d, h) in s.health.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{shard}\",dsp=\"{}\"}} {}",
                    ids[d],
                    get(h)
                );
            }
        }
    }
}

fn write_totals(out: &mut String, shards: &[(usize, &RtbSnapshot)]) {
    type Get = fn(&RtbTotals) -> u64;
    let rows: [(&str, &str, Get); 10] = [
        (
            "adcore_rtb_auctions_total",
            "Requests fanned out to at least one DSP.",
            |t| t.auctions,
        ),
        (
            "adcore_rtb_closed_all_answered_total",
            "Collections closed with every DSP answered.",
            |t| t.closed_all_answered,
        ),
        (
            "adcore_rtb_closed_operational_total",
            "Collections closed after the operational cutoff.",
            |t| t.closed_operational,
        ),
        (
            "adcore_rtb_closed_absolute_total",
            "Collections closed at the absolute cutoff.",
            |t| t.closed_absolute,
        ),
        (
            "adcore_rtb_external_wins_total",
            "Impressions won by external bids.",
            |t| t.external_wins,
        ),
        (
            "adcore_rtb_notices_queued_total",
            "Win/billing/loss notices queued.",
            |t| t.notices_queued,
        ),
        (
            "adcore_rtb_notices_refused_total",
            "Notices refused: queue full.",
            |t| t.notices_refused,
        ),
        (
            "adcore_rtb_notices_sent_total",
            "Notices delivered (2xx).",
            |t| t.notices_sent,
        ),
        (
            "adcore_rtb_notices_failed_total",
            "Notices given up after every attempt.",
            |t| t.notices_failed,
        ),
        (
            "adcore_rtb_notice_retries_total",
            "Notice attempts after the first.",
            |t| t.notice_retries,
        ),
    ];
    for (name, help, get) in rows {
        write_prom_header(out, name, "counter", help);
        for (shard, s) in shards {
            let _ = writeln!(out, "{name}{{shard=\"{shard}\"}} {}", get(&s.totals));
        }
    }
    write_prom_header(
        out,
        "adcore_rtb_collect_max_ms",
        "gauge",
        "Longest RTB collection since start, from receipt to close, ms.",
    );
    for (shard, s) in shards {
        let _ = writeln!(
            out,
            "adcore_rtb_collect_max_ms{{shard=\"{shard}\"}} {}",
            s.totals.collect_max_ms
        );
    }
}
