//! The HdrHistogram percentile distribution in the text format wrk2 prints under
//! "Detailed Percentile spectrum" (HdrHistogram's `outputPercentileDistribution`), which
//! HdrHistogram's plotter and most latency tooling read. Values are written in milliseconds.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Steps per halving of the distance to 100 %, as wrk2 uses.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Renders `h` (microseconds) as a `.hgrm` percentile distribution in milliseconds.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            write_row(
                &mut out,
                v.value_iterated_to(),
                v.quantile_iterated_to(),
                total,
            );
        }
    }
    write_footer(&mut out, h);
    out
}

fn write_row(out: &mut String, value_us: u64, quantile: f64, total: u64) {
    let ms = value_us as f64 / 1000.0;
    if quantile < 1.0 {
        let _ = writeln!(
            out,
            "{ms:>12.3} {quantile:>14.12} {total:>10} {:>14.2}",
            1.0 / (1.0 - quantile)
        );
    } else {
        let _ = writeln!(out, "{ms:>12.3} {quantile:>14.12} {total:>10}");
    }
}

fn write_footer(out: &mut String, h: &Histogram<u64>) {
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / 1000.0,
            h.stdev() / 1000.0,
            h.max() as f64 / 1000.0,
        )
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.3}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        h.distinct_values()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(f64, f64, u64)> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.contains("Value"))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn distribution_is_monotone_and_ends_at_the_total_count() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in 1..=10_000u64 {
            h.record(us * 10).unwrap();
        }
        let text = percentile_distribution(&h);
        let rows = rows(&text);
        assert!(rows.len() > 20, "{text}");
        assert!(
            rows.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2)
        );
        let last = rows.last().unwrap();
        assert_eq!(last.1, 1.0);
        assert_eq!(last.2, 10_000);
        // The median is about 50 ms (values 10 us .. 100 ms).
        let median = rows.iter().find(|r| r.1 >= 0.5).unwrap();
        assert!((median.0 - 50.0).abs() < 0.5, "median {}", median.0);
        assert!(text.contains("Total count    =        10000"), "{text}");
    }

    #[test]
    fn empty_histogram_writes_header_and_footer_only() {
        let h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        let text = percentile_distribution(&h);
        assert!(rows(&text).is_empty());
        assert!(text.contains("#[Max     ="));
    }
}
