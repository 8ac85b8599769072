//! perf/grafana/adcore.json must only name metrics adserver really exports: every `adcore_*` series
//! in a panel expression is looked up in a live `/metrics` scrape (of a server with one loopback
//! DSP, so the `adcore_rtb_*` families exist).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::dsp::{Mode, TestDsp};
use common::{Server, get};

fn dashboard_metric_names() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../perf/grafana/adcore.json");
    let dash: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut names = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            names.extend(metric_names(expr));
        }
    }
    names
}

/// `adcore_*` identifiers in a PromQL expression, with histogram suffixes removed.
fn metric_names(expr: &str) -> Vec<String> {
    expr.match_indices("adcore_")
        .map(|(i, _)| {
            let name: String = expr[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name.trim_end_matches("_bucket").to_owned()
        })
        .collect()
}

#[test]
fn every_dashboard_metric_is_exported() {
    let names = dashboard_metric_names();
    assert!(names.len() >= 10, "{names:?}");
    for family in [
        "adcore_rtb_latency_seconds",
        "adcore_pacing_target_micros",
        "adcore_degradation_level",
        "adcore_integrity_flagged_total",
    ] {
        assert!(names.contains(family), "no panel reads {family}");
    }
    let dsp = TestDsp::start(Mode::NoBid);
    let server = Server::start("legacy", &dsp.toml("dsp-a", 1));
    let scrape = server.request(&get("/metrics")).text();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !scrape.contains(&format!("# TYPE {n} ")))
        .collect();
    assert!(missing.is_empty(), "not exported by /metrics: {missing:?}");
}
