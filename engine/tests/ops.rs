//! Operability on the real binary: the integrity check (fraud tier 1) turns bot traffic into a
//! counted `invalid_traffic` no-bid before any DSP call; a forced degradation level changes what
//! the server does (DSPs called, scoring tier) and shows in /metrics and /stats; every stage the
//! issue names has a histogram.

mod common;

use common::dsp::{Mode, TestDsp};
use common::{Server, get};

const BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15";

fn request(id: &str, user: &str, ua: &str, ip: &str) -> Vec<u8> {
    serde_json::json!({
        "id": id, "imp": [{"id": "1", "bidfloor": 0.5, "banner": {"w": 300, "h": 250}}],
        "site": {"id": "s1", "cat": ["IAB9"]},
        "device": {"ua": ua, "ip": ip, "devicetype": 2, "geo": {"country": "USA", "region": "CA"}},
        "user": {"id": user}, "tmax": 500
    })
    .to_string()
    .into_bytes()
}

/// Sum of a Prometheus series over the lines containing every label in `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A users file with one heavy user (tier 1, personal features).
fn users_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let hist: Vec<String> = (0..10)
        .map(|k| {
            if k == 1 {
                "500:20".into()
            } else {
                "0:0".into()
            }
        })
        .collect();
    let p = dir.join("users.csv");
    std::fs::write(
        &p,
        format!(
            "user_id,country,devicetype,age_bucket,gender,interests,cohort,cat_history\n\
             heavy,USA,2,2,F,gaming,33,{}\n",
            hist.join(";")
        ),
    )
    .unwrap();
    p
}

#[test]
fn bot_traffic_is_a_counted_invalid_traffic_nobid_before_rtb() {
    let dsp = TestDsp::start(Mode::Bid(3.0));
    let extra = format!(
        "[integrity]\nip_deny = [\"3.80.0.0/16\"]\n{}",
        dsp.toml("dsp-a", 1)
    );
    let server = Server::start("legacy", &extra);
    let bots = [
        ("python-requests/2.31.0", "192.0.2.1"),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "192.0.2.2",
        ),
        (BROWSER, "3.80.4.14"),
    ];
    for (i, (ua, ip)) in bots.iter().enumerate() {
        let r = server.auction(&request(&format!("b{i}"), &format!("bot-{i}"), ua, ip));
        assert_eq!(r.status, 204, "{ua} {ip}");
        assert_eq!(r.header("x-adcore-nobid-reason"), Some("invalid_traffic"));
        let (rule, nbr) = if ip.starts_with("3.80.") {
            ("ip_deny", "5")
        } else {
            ("ua_deny", "4")
        };
        assert_eq!(r.header("x-adcore-integrity-rule"), Some(rule));
        assert_eq!(r.header("x-openrtb-nbr"), Some(nbr));
    }
    assert_eq!(dsp.requests(), 0, "flagged traffic must not reach a DSP");
    let human = server.auction(&request("h1", "human", BROWSER, "192.0.2.9"));
    assert_eq!(human.status, 200, "{}", human.text());
    assert!(dsp.requests() >= 1, "a human request is fanned out");

    let text = server.request(&get("/metrics")).text();
    let flagged = |rule: &str| {
        metric_sum(
            &text,
            "adcore_integrity_flagged_total",
            &[&format!("rule=\"{rule}\"")],
        )
    };
    assert_eq!(flagged("ua_deny"), 2.0, "{text}");
    assert_eq!(flagged("ip_deny"), 1.0);
    assert_eq!(
        metric_sum(&text, "adcore_nobid_total", &["reason=\"invalid_traffic\""]),
        3.0
    );
    // Every stage of the issue has a histogram; the ones this traffic went through counted.
    for stage in [
        "parse",
        "integrity",
        "profile",
        "selection",
        "scoring",
        "rtb",
        "auction",
        "budget",
        "respond",
    ] {
        let n = metric_sum(
            &text,
            "adcore_stage_duration_seconds_count",
            &[&format!("stage=\"{stage}\"")],
        );
        let want = if stage == "integrity" || stage == "parse" {
            4.0
        } else {
            1.0
        };
        assert_eq!(n, want, "stage {stage}");
    }
    let stats = server.request(&get("/stats")).json();
    let total = &stats["total"];
    assert!(
        total["integrity_flagged"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(["ua_deny", 2])),
        "{total}"
    );
    let stages: Vec<&str> = total["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    for s in ["integrity", "profile", "rtb"] {
        assert!(stages.contains(&s), "{stages:?}");
    }
}

/// Runs three auctions of the heavy user; returns (DSP requests, /metrics text, /stats).
fn run_at_level(level: i32) -> (u64, String, serde_json::Value) {
    let dsp = TestDsp::start(Mode::Bid(3.0));
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[model]\nexplore_enabled = false\nthompson_enabled = false\n[profiles]\npath = \"{}\"\n\
         [degradation]\nforce_level = {level}\n{}",
        users_csv(dir.path()).display(),
        dsp.toml("dsp-a", 1)
    );
    let server = Server::start("legacy", &extra);
    for i in 0..3 {
        let r = server.auction(&request(&format!("r{i}"), "heavy", BROWSER, "192.0.2.9"));
        assert_eq!(r.status, 200, "level {level}: {}", r.text());
    }
    let text = server.request(&get("/metrics")).text();
    let stats = server.request(&get("/stats")).json();
    (dsp.requests(), text, stats)
}

#[test]
fn forced_degradation_levels_change_behaviour_and_are_exposed() {
    let (called, text, stats) = run_at_level(0);
    assert!(called >= 3, "level 0 calls the DSP ({called})");
    let tier = |t: &str, tier: &str| {
        metric_sum(
            t,
            "adcore_scoring_tier_total",
            &[&format!("tier=\"{tier}\"")],
        )
    };
    assert_eq!(
        tier(&text, "personal"),
        3.0,
        "level 0 scores with the model"
    );
    assert_eq!(stats["degradation"]["level"], 0);
    assert_eq!(stats["degradation"]["name"], "normal");

    let (called, text, stats) = run_at_level(4);
    assert_eq!(called, 0, "level 4: no RTB at all");
    assert_eq!(tier(&text, "personal"), 0.0);
    assert_eq!(
        tier(&text, "category_prior"),
        3.0,
        "level 4: category prior"
    );
    assert_eq!(
        metric_sum(&text, "adcore_degradation_level", &[]),
        8.0,
        "2 shards at 4"
    );
    assert_eq!(
        metric_sum(&text, "adcore_degradation_requests_total", &["level=\"4\""]),
        3.0
    );
    assert_eq!(
        metric_sum(
            &text,
            "adcore_stage_duration_seconds_count",
            &["stage=\"rtb\""]
        ),
        0.0
    );
    let d = &stats["degradation"];
    assert_eq!(d["level"], 4, "{d}");
    assert_eq!(d["name"], "critical");
    assert_eq!(d["forced"], true);
    assert_eq!(d["shards"].as_array().unwrap().len(), 2);
}
