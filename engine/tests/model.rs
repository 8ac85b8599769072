//! The CTR model on the real binary: hot reload (admin route and SIGHUP) with a good file, a
//! corrupt file and a file of another schema; clicks; tiers from the users file.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const DEMO_MODEL: &str = include_str!("../models/demo_ctr_v1.txt");

fn history(imps: u32, clicks: u32) -> String {
    (0..10)
        .map(|k| {
            if k == 1 {
                format!("{imps}:{clicks}")
            } else {
                "0:0".into()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn users_csv(dir: &Path) -> std::path::PathBuf {
    let mut s =
        String::from("user_id,country,devicetype,age_bucket,gender,interests,cohort,cat_history\n");
    s += &format!("heavy,USA,2,2,F,gaming,33,{}\n", history(500, 20));
    s += &format!("light,USA,2,3,M,,48,{}\n", history(3, 0));
    let p = dir.join("users.csv");
    std::fs::write(&p, s).unwrap();
    p
}

/// A bid request for `user` with a fresh id: the sub-ledger charges an (id, imp) key only once.
fn request(user: &str) -> Vec<u8> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!(
        "r{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    serde_json::json!({
        "id": id, "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}],
        "site": {"id": "s1", "cat": ["IAB9"]},
        "device": {"ua": "Mozilla/5.0", "ip": "192.0.2.7", "devicetype": 2, "os": "Windows",
                   "geo": {"country": "USA", "region": "CA"}},
        "user": {"id": user}, "tmax": 120
    })
    .to_string()
    .into_bytes()
}

/// Sum of a counter family over shards, with an optional label filter.
fn metric(s: &Server, name: &str, label: &str) -> u64 {
    let text = s.request(&get("/metrics")).text();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn versions(s: &Server) -> Vec<String> {
    let text = s.request(&get("/metrics")).text();
    text.lines()
        .filter(|l| l.starts_with("adcore_model_info{"))
        .map(|l| {
            l.split("version=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn reload(s: &Server, body: &str) -> Resp {
    s.request(&post("/admin/model/reload", "text/plain", body.as_bytes()))
}

#[test]
fn hot_reload_swaps_good_models_and_keeps_serving_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let configured = dir.path().join("model.txt");
    std::fs::write(&configured, DEMO_MODEL).unwrap();
    let users = users_csv(dir.path());
    let extra = format!(
        "[model]\npath = \"{}\"\nexplore_enabled = false\nthompson_enabled = false\n[profiles]\npath = \"{}\"\n",
        configured.display(),
        users.display()
    );
    let s = Server::start("legacy", &extra);
    let v1 = versions(&s);
    assert_eq!(v1.len(), 2, "{v1:?}");
    assert!(v1[0].starts_with("model-"), "{v1:?}");
    assert_eq!(v1[0], v1[1]);

    // A good new file: every shard swaps.
    let good = dir.path().join("next.txt");
    std::fs::write(&good, format!("{DEMO_MODEL}\n")).unwrap();
    let r = reload(&s, &good.display().to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let v2 = versions(&s);
    assert!(v2.iter().all(|v| v.starts_with("next-")), "{v2:?}");
    assert_eq!(metric(&s, "adcore_model_loads_total", ""), 1);

    // A corrupt file and a file of another schema are refused with the reason; v2 keeps serving.
    let corrupt = dir.path().join("corrupt.txt");
    std::fs::write(&corrupt, &DEMO_MODEL[..DEMO_MODEL.len() / 2]).unwrap();
    let r = reload(&s, &corrupt.display().to_string());
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("corrupt.txt"), "{}", r.text());
    assert!(
        r.text().contains("previous model still serving"),
        "{}",
        r.text()
    );
    let renamed = dir.path().join("renamed.txt");
    std::fs::write(&renamed, DEMO_MODEL.replacen("ctx_hour", "ctx_hour_utc", 1)).unwrap();
    let r = reload(&s, &renamed.display().to_string());
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("feature 16 is \"ctx_hour_utc\" in the model but \"ctx_hour\""),
        "{}",
        r.text()
    );
    assert_eq!(versions(&s), v2);
    assert_eq!(metric(&s, "adcore_model_load_failures_total", ""), 2);
    assert_eq!(s.auction(&request("heavy")).status, 200);

    // SIGHUP reloads the configured path.
    std::fs::write(&configured, format!("{DEMO_MODEL}\n\n")).unwrap();
    s.signal(libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = versions(&s);
        if v.iter().all(|x| x.starts_with("model-") && !v1.contains(x)) {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not swap: {v:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(s.request(&get("/health")).status, 200);
    assert_eq!(
        reload(&s, "").status,
        200,
        "empty body: the configured path"
    );
}

#[test]
fn tiers_follow_profiles_and_clicks_reach_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_csv(dir.path());
    let s = Server::start(
        "legacy",
        &format!("[profiles]\npath = \"{}\"\n", users.display()),
    );
    assert_eq!(metric(&s, "adcore_profiles", ""), 2);
    for user in ["heavy", "light", "stranger"] {
        assert_eq!(s.auction(&request(user)).status, 200);
    }
    assert_eq!(
        metric(&s, "adcore_scoring_tier_total", "tier=\"personal\""),
        1
    );
    assert_eq!(
        metric(&s, "adcore_scoring_tier_total", "tier=\"segment\""),
        1
    );
    assert_eq!(
        metric(&s, "adcore_scoring_tier_total", "tier=\"category_prior\""),
        1
    );
    assert_eq!(metric(&s, "adcore_impressions_profiled_total", ""), 2);

    let r = s.request(&get("/notice/click?user=heavy&campaign=1"));
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.request(&get("/notice/click?user=stranger&campaign=1"));
    assert_eq!(r.status, 204);
    assert_eq!(metric(&s, "adcore_clicks_total", ""), 2);
    assert_eq!(metric(&s, "adcore_clicks_unknown_user_total", ""), 1);
    let r = s.request(&get("/notice/click?user=heavy&campaign=424242"));
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "campaign 424242 is not in the catalog");
    let r = s.request(&get("/notice/click?campaign=1"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "missing query parameter user")
    );
}

#[test]
fn a_bad_users_file_stops_start_up_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.csv");
    std::fs::write(
        &users,
        "user_id,country,devicetype,age_bucket,gender,interests,cohort,cat_history\nu1,USA,2,1,X,,1,0:0\n",
    )
    .unwrap();
    let cfg = dir.path().join("a.toml");
    std::fs::write(
        &cfg,
        format!("[profiles]\npath = \"{}\"\n", users.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adserver"))
        .arg("--config")
        .arg(&cfg)
        .arg("--catalog")
        .arg(fixture("catalog.json"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("users.csv: line 2: gender: \"X\" is not M, F, O or empty"),
        "{err}"
    );
}
