//! `--compare FILE`: this run against an earlier run's JSON summary, as ratios (now / before).
//! Knows only the two reports.

use std::fmt::Write as _;
use std::path::Path;

use super::report::LoadReport;

/// Why an earlier report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("cannot read earlier report {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("earlier report {path} is not an rtb-load JSON summary: {reason}")]
    Parse { path: String, reason: String },
}

/// Loads an earlier `--json` / `--report` summary.
pub fn load_report(path: &Path) -> Result<LoadReport, CompareError> {
    let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
        path: path.display().to_string(),
        source,
    })?;
    sonic_rs::from_str(&text).map_err(|e| CompareError::Parse {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// One compared figure.
struct Row {
    name: &'static str,
    before: f64,
    now: f64,
    /// Whether a larger value is better (rates) or worse (latencies, errors).
    higher_is_better: bool,
}

fn rows(before: &LoadReport, now: &LoadReport) -> Vec<Row> {
    let row = |name, b: f64, n: f64, higher_is_better| Row {
        name,
        before: b,
        now: n,
        higher_is_better,
    };
    let (b, n) = (&before.latency_us, &now.latency_us);
    vec![
        row(
            "rate achieved (req/s)",
            before.rate_achieved,
            now.rate_achieved,
            true,
        ),
        row("latency p50 (us)", b.p50 as f64, n.p50 as f64, false),
        row("latency p90 (us)", b.p90 as f64, n.p90 as f64, false),
        row("latency p99 (us)", b.p99 as f64, n.p99 as f64, false),
        row("latency p99.9 (us)", b.p99_9 as f64, n.p99_9 as f64, false),
        row(
            "latency p99.99 (us)",
            b.p99_99 as f64,
            n.p99_99 as f64,
            false,
        ),
        row("latency max (us)", b.max as f64, n.max as f64, false),
        row(
            "service p99 (us)",
            before.service_time_us.p99 as f64,
            now.service_time_us.p99 as f64,
            false,
        ),
        row("errors", before.errors as f64, now.errors as f64, false),
        row(
            "timeouts",
            before.timeouts as f64,
            now.timeouts as f64,
            false,
        ),
    ]
}

/// The comparison table. A ratio is now / before; the verdict says which way is better.
pub fn compare_table(before: &LoadReport, now: &LoadReport, before_name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Compared with {before_name} (ratio = now / before)");
    let _ = writeln!(
        out,
        "  {:<24} {:>14} {:>14} {:>9}  verdict",
        "figure", "before", "now", "ratio"
    );
    for r in rows(before, now) {
        let _ = writeln!(
            out,
            "  {:<24} {:>14.1} {:>14.1} {:>9}  {}",
            r.name,
            r.before,
            r.now,
            ratio_text(r.before, r.now),
            verdict(&r)
        );
    }
    out
}

fn ratio_text(before: f64, now: f64) -> String {
    if before == 0.0 {
        if now == 0.0 { "=".into() } else { "new".into() }
    } else {
        format!("{:.2}x", now / before)
    }
}

/// Differences within 5 % are called "same": run-to-run noise on a shared machine is larger.
fn verdict(r: &Row) -> &'static str {
    if r.before == r.now || (r.before != 0.0 && ((r.now / r.before) - 1.0).abs() < 0.05) {
        return "same";
    }
    if (r.now > r.before) == r.higher_is_better {
        "better"
    } else {
        "worse"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::report::{LoadReport, RunFacts};
    use crate::load::stats::Stats;

    fn report(rate: f64, latency_us: u64) -> LoadReport {
        let mut stats = Stats::new();
        for _ in 0..100 {
            stats.record_response(200, latency_us, latency_us);
        }
        let facts = RunFacts {
            target: "http://127.0.0.1:1/".into(),
            threads: 1,
            connections: 1,
            rate_target: rate,
            duration_s: 100.0 / rate,
            warmup_s: 0.0,
        };
        LoadReport::new(facts, &stats)
    }

    #[test]
    fn ratios_and_verdicts() {
        let before = report(100.0, 1000);
        let now = report(200.0, 500);
        let table = compare_table(&before, &now, "base.json");
        let rate = table.lines().find(|l| l.contains("rate achieved")).unwrap();
        assert!(rate.contains("2.00x") && rate.ends_with("better"), "{rate}");
        let p99 = table.lines().find(|l| l.contains("latency p99 ")).unwrap();
        assert!(p99.contains("0.50x") && p99.ends_with("better"), "{p99}");
        let errors = table.lines().find(|l| l.contains("errors")).unwrap();
        assert!(errors.ends_with("same"), "{errors}");
    }

    #[test]
    fn a_report_round_trips_through_its_json() {
        let r = report(100.0, 1000);
        let back: LoadReport = sonic_rs::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn unreadable_or_foreign_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(&path, "{\"not\": \"a report\"}").unwrap();
        let e = load_report(&path).unwrap_err().to_string();
        assert!(
            e.contains("x.json") && e.contains("not an rtb-load JSON summary"),
            "{e}"
        );
        let e = load_report(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.json"), "{e}");
    }
}
