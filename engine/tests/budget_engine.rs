//! Budget end to end: the real adserver (2 shards, allocator on shard 0) spends small budgets
//! through chunks and refills, never past budget + bound, and reports spend and pacing.

mod common;

use common::*;

fn banner_request(id: &str, user: &str) -> Vec<u8> {
    serde_json::json!({
        "id": id,
        "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}, {"id": "2", "banner": {"w": 300, "h": 250}}],
        "site": {"id": "s1", "domain": "news.example", "page": "https://news.example/a"},
        "device": {"ua": "Mozilla/5.0", "ip": "192.0.2.7", "devicetype": 2, "os": "Windows",
                   "geo": {"country": "USA", "region": "CA"}},
        "user": {"id": user},
        "tmax": 500
    })
    .to_string()
    .into_bytes()
}

/// The fixture catalog with every paid daily budget cut to `daily` micros.
fn small_budget_catalog(dir: &std::path::Path, daily: u64) -> std::path::PathBuf {
    let mut cat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("catalog.json")).unwrap()).unwrap();
    for c in cat["campaigns"].as_array_mut().unwrap() {
        if c["kind"]["type"] != "house" {
            c["budget_daily_micros"] = daily.into();
            c["budget_lifetime_micros"] = (daily * 10).into();
        }
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_vec(&cat).unwrap()).unwrap();
    path
}

#[test]
fn small_budgets_are_spent_through_refills_and_never_past_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let daily = 60_000u64;
    let catalog = small_budget_catalog(dir.path(), daily);
    // Small chunks (10 % of the budget, at least 1 micro) so shards refill many times.
    let extra = "[budget]\nchunk_ppm = 100000\nchunk_micros_min = 1\npacing = \"off\"\n";
    let s = Server::start_with_catalog("legacy", &catalog, extra);
    let mut paid = 0;
    for i in 0..300 {
        let r = s.auction(&banner_request(
            &format!("q{i}"),
            &format!("user-{}", i % 37),
        ));
        assert_eq!(r.status, 200, "request {i}");
        for bid in r.json()["seatbid"][0]["bid"].as_array().unwrap() {
            paid += u64::from(bid["ext"]["adcore"]["house"] != true);
        }
        if i % 50 == 49 {
            // Let the shards' budget tasks (poll_ms = 5) refill between bursts.
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
    }
    let stats = s.request(&get("/stats")).json();
    let mut total = 0;
    for c in stats["campaigns"].as_array().unwrap() {
        let spent = c["spent_today_micros"].as_u64().unwrap();
        let budget = c["budget_daily_micros"].as_u64().unwrap();
        assert!(
            spent <= budget + budget / 100,
            "campaign {} spent {spent} of {budget}",
            c["id"]
        );
        total += spent;
    }
    assert!(paid > 0 && total > 0, "nothing paid");
    // Campaign 1 matches every request: its budget is spent to within one impression
    // ($2.50 CPM = 2_500 micros) plus what the other shard still holds.
    let c1 = stats["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == 1)
        .unwrap();
    let spent1 = c1["spent_today_micros"].as_u64().unwrap();
    assert!(
        spent1 >= daily * 8 / 10,
        "campaign 1 under-delivered: {spent1}"
    );
    let m = s.request(&get("/metrics")).text();
    assert!(
        m.contains("adcore_pacing_throttle{campaign=\"1\"} 0"),
        "{m}"
    );
    assert!(
        m.contains("adcore_budget_held_micros{campaign=\"1\"}"),
        "{m}"
    );
}
