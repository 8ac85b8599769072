//! The run summary: built from merged [`Stats`], printed as a wrk2-style table or
//! written as JSON. Knows nothing of sockets or schedules.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::profile::Phase;
use super::stats::{ErrorCounts, STATUS_CODES, Stats};

/// Percentiles shown in the table, as (quantile, label).
const TABLE_QUANTILES: [f64; 8] = [0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0];

/// A latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub p99_99: u64,
    pub p99_999: u64,
    pub max: u64,
    pub mean: f64,
    /// Number of recorded values.
    pub count: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        let q = |quantile| h.value_at_quantile(quantile);
        Percentiles {
            p50: q(0.5),
            p75: q(0.75),
            p90: q(0.9),
            p99: q(0.99),
            p99_9: q(0.999),
            p99_99: q(0.9999),
            p99_999: q(0.99999),
            max: h.max(),
            mean: if h.is_empty() { 0.0 } else { h.mean() },
            count: h.len(),
        }
    }
}

/// Failures by kind, as written in the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorsByKind {
    pub connect: u64,
    pub write: u64,
    pub read: u64,
    pub parse: u64,
}

impl From<ErrorCounts> for ErrorsByKind {
    fn from(e: ErrorCounts) -> Self {
        ErrorsByKind {
            connect: e.connect,
            write: e.write,
            read: e.read,
            parse: e.parse,
        }
    }
}

/// Everything a run measured; serializes to the `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub target: String,
    pub threads: usize,
    pub connections: usize,
    pub rate_target: f64,
    pub rate_achieved: f64,
    /// Measured wall time: from the end of the warm-up until the last connection finished.
    pub duration_s: f64,
    pub warmup_s: f64,
    pub sent: u64,
    pub completed: u64,
    /// Completed responses by exact status code, e.g. `{"200": 9, "204": 3}`.
    pub status: BTreeMap<String, u64>,
    /// Completed responses by class: `2xx`, `3xx`, `4xx`, `5xx`.
    pub status_classes: BTreeMap<String, u64>,
    /// Total failures of every kind (timeouts are counted apart).
    pub errors: u64,
    pub errors_by_kind: ErrorsByKind,
    pub timeouts: u64,
    /// Requests due inside the window that were never sent (run ended while behind).
    pub unsent: u64,
    pub warmup_sent: u64,
    /// From intended send time (coordinated omission corrected).
    pub latency_us: Percentiles,
    /// From actual send time (uncorrected).
    pub service_time_us: Percentiles,
    /// Send start minus intended time: timer slop when small, backlog when large.
    pub send_lag_us: Percentiles,
    /// Measured requests sent by bot clients (`--bot-share`).
    #[serde(default)]
    pub bots_sent: u64,
    /// One entry per phase of the rate profile (one for a constant run).
    #[serde(default)]
    pub phases: Vec<PhaseReport>,
}

/// What one phase of a ramp, step or spike run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    pub from_rate: f64,
    pub to_rate: f64,
    pub duration_s: f64,
    pub sent: u64,
    pub completed: u64,
    /// Errors of every kind plus timeouts.
    pub failed: u64,
    /// Completed per second of the phase's intended duration.
    pub rate_achieved: f64,
    pub latency_us: Percentiles,
}

/// Run facts the statistics do not carry.
#[derive(Debug, Clone)]
pub struct RunFacts {
    pub target: String,
    pub threads: usize,
    pub connections: usize,
    pub rate_target: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
}

impl LoadReport {
    pub fn new(facts: RunFacts, stats: &Stats) -> LoadReport {
        let status = (0..STATUS_CODES)
            .filter(|&code| stats.status[code] > 0)
            .map(|code| (code.to_string(), stats.status[code]))
            .collect();
        let status_classes = [2usize, 3, 4, 5]
            .iter()
            .map(|&c| (format!("{c}xx"), stats.status_in(c * 100, c * 100 + 100)))
            .collect();
        let rate_achieved = if facts.duration_s > 0.0 {
            stats.completed as f64 / facts.duration_s
        } else {
            0.0
        };
        LoadReport {
            target: facts.target,
            threads: facts.threads,
            connections: facts.connections,
            rate_target: facts.rate_target,
            rate_achieved,
            duration_s: facts.duration_s,
            warmup_s: facts.warmup_s,
            sent: stats.sent,
            completed: stats.completed,
            status,
            status_classes,
            errors: stats.errors.total(),
            errors_by_kind: stats.errors.into(),
            timeouts: stats.timeouts,
            unsent: stats.unsent,
            warmup_sent: stats.warmup_sent,
            latency_us: Percentiles::of(&stats.latency_us),
            service_time_us: Percentiles::of(&stats.service_us),
            send_lag_us: Percentiles::of(&stats.send_lag_us),
            bots_sent: stats.bots_sent,
            phases: Vec::new(),
        }
    }

    /// Adds the per-phase figures (`phases` as run, `stats.phases` as measured).
    pub fn with_phases(mut self, phases: &[Phase], stats: &Stats) -> LoadReport {
        self.phases = phases
            .iter()
            .zip(&stats.phases)
            .map(|(p, s)| PhaseReport {
                name: p.name.clone(),
                from_rate: p.from_rate,
                to_rate: p.to_rate,
                duration_s: p.duration.as_secs_f64(),
                sent: s.sent,
                completed: s.completed,
                failed: s.failed,
                rate_achieved: s.completed as f64 / p.duration.as_secs_f64(),
                latency_us: Percentiles::of(&s.latency_us),
            })
            .collect();
        self
    }

    /// Pretty JSON for `--json`.
    pub fn to_json(&self) -> String {
        // Serializing plain numbers, strings and maps with string keys cannot fail.
        sonic_rs::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The wrk2-style text table.
    pub fn to_table(&self, stats: &Stats) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Running {:.1}s test @ {} (warm-up {:.1}s)\n  {} threads and {} connections, target {} requests/sec",
            self.duration_s,
            self.target,
            self.warmup_s,
            self.threads,
            self.connections,
            self.rate_target
        );
        let _ = writeln!(
            out,
            "  Latency Distribution (HdrHistogram - Recorded Latency)"
        );
        write_quantiles(&mut out, &stats.latency_us);
        let _ = writeln!(
            out,
            "  Service Time Distribution (HdrHistogram - Uncorrected)"
        );
        write_quantiles(&mut out, &stats.service_us);
        let _ = writeln!(
            out,
            "  Latency mean {}, service time mean {}",
            human_us(self.latency_us.mean as u64),
            human_us(self.service_time_us.mean as u64)
        );
        let _ = writeln!(
            out,
            "  Send lag behind schedule: p50 {}, p99 {}, max {}",
            human_us(self.send_lag_us.p50),
            human_us(self.send_lag_us.p99),
            human_us(self.send_lag_us.max)
        );
        self.write_counts(&mut out);
        if self.bots_sent > 0 {
            let _ = writeln!(out, "  Bot clients sent {} of the requests", self.bots_sent);
        }
        self.write_phases(&mut out);
        out
    }

    /// One line per phase when the run had several (ramp, step, spike).
    fn write_phases(&self, out: &mut String) {
        if self.phases.len() < 2 {
            return;
        }
        let _ = writeln!(
            out,
            "  Phases: {:<12} {:>17} {:>9} {:>10} {:>7} {:>9} {:>9} {:>9}",
            "name", "rate (req/s)", "sent", "achieved", "failed", "p50", "p99", "p99.9"
        );
        for p in &self.phases {
            let _ = writeln!(
                out,
                "          {:<12} {:>17} {:>9} {:>10.1} {:>7} {:>9} {:>9} {:>9}",
                p.name,
                format!("{:.0}..{:.0}", p.from_rate, p.to_rate),
                p.sent,
                p.rate_achieved,
                p.failed,
                human_us(p.latency_us.p50),
                human_us(p.latency_us.p99),
                human_us(p.latency_us.p99_9)
            );
        }
    }

    fn write_counts(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "  {} requests sent, {} completed in {:.2}s ({} warm-up requests not counted)",
            self.sent, self.completed, self.duration_s, self.warmup_sent
        );
        let codes: Vec<String> = self
            .status
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let classes: Vec<String> = self
            .status_classes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            out,
            "  Status: {}  ({})",
            codes.join("  "),
            classes.join(", ")
        );
        let e = self.errors_by_kind;
        let _ = writeln!(
            out,
            "  Errors: connect {}, write {}, read {}, parse {}; timeouts {}; unsent {}",
            e.connect, e.write, e.read, e.parse, self.timeouts, self.unsent
        );
        let _ = writeln!(
            out,
            "Requests/sec: {:>10.2}  (target {})",
            self.rate_achieved, self.rate_target
        );
    }
}

fn write_quantiles(out: &mut String, h: &Histogram<u64>) {
    for q in TABLE_QUANTILES {
        let value = if h.is_empty() {
            0
        } else {
            h.value_at_quantile(q)
        };
        let _ = writeln!(out, " {:>7.3}%  {:>9}", q * 100.0, human_us(value));
    }
}

/// `850.00us`, `1.23ms`, `2.50s` like wrk2.
pub fn human_us(us: u64) -> String {
    let v = us as f64;
    if us < 1_000 {
        format!("{v:.2}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", v / 1e3)
    } else {
        format!("{:.2}s", v / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::JsonValueTrait;

    fn facts() -> RunFacts {
        RunFacts {
            target: "http://127.0.0.1:1/".into(),
            threads: 1,
            connections: 2,
            rate_target: 100.0,
            duration_s: 2.0,
            warmup_s: 0.0,
        }
    }

    #[test]
    fn report_counts_statuses_and_rate() {
        let mut s = Stats::new();
        s.sent = 5;
        for (status, lat) in [(200, 100), (200, 200), (204, 300), (503, 400)] {
            s.record_response(status, lat, lat / 2);
        }
        s.timeouts = 1;
        let r = LoadReport::new(facts(), &s);
        assert_eq!(r.status.get("200"), Some(&2));
        assert_eq!(r.status.get("204"), Some(&1));
        assert_eq!(r.status_classes.get("5xx"), Some(&1));
        assert_eq!(r.status_classes.get("2xx"), Some(&3));
        assert_eq!(r.rate_achieved, 2.0);
        assert_eq!(r.latency_us.count, 4);
        let json: sonic_rs::Value = sonic_rs::from_str(&r.to_json()).unwrap();
        for key in [
            "rate_target",
            "rate_achieved",
            "duration_s",
            "sent",
            "completed",
            "errors",
            "timeouts",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p90", "p99", "p99_9", "p99_99", "max", "mean"] {
            assert!(
                json["latency_us"].get(key).is_some(),
                "missing latency {key}"
            );
            assert!(
                json["service_time_us"].get(key).is_some(),
                "missing service {key}"
            );
        }
        let table = r.to_table(&s);
        assert!(table.contains("Latency Distribution (HdrHistogram - Recorded Latency)"));
        assert!(table.contains("99.999%"));
        assert!(table.contains("503: 1"));
    }

    #[test]
    fn empty_run_reports_zeros_without_panicking() {
        let s = Stats::new();
        let r = LoadReport::new(
            RunFacts {
                duration_s: 0.0,
                ..facts()
            },
            &s,
        );
        assert_eq!(r.rate_achieved, 0.0);
        assert_eq!(r.latency_us.max, 0);
        assert!(r.to_table(&s).contains("100.000%"));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_us(850), "850.00us");
        assert_eq!(human_us(1_230), "1.23ms");
        assert_eq!(human_us(2_500_000), "2.50s");
    }
}
