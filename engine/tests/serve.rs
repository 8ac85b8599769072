//! End-to-end: the real adserver binary on loopback, under both I/O drivers.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn banner_request(id: &str, user: &str, w: u32, h: u32, floor: f64) -> Vec<u8> {
    serde_json::json!({
        "id": id,
        "imp": [{"id": "1", "banner": {"w": w, "h": h}, "bidfloor": floor, "bidfloorcur": "USD"}],
        "site": {"id": "s1", "domain": "news.example", "page": "https://news.example/a"},
        "device": {"ua": "Mozilla/5.0", "ip": "192.0.2.7", "devicetype": 2, "os": "Windows",
                   "geo": {"country": "USA", "region": "CA"}},
        "user": {"id": user},
        "tmax": 120
    })
    .to_string()
    .into_bytes()
}

#[test]
fn valid_request_fills_with_a_complete_bid() {
    for driver in DRIVERS {
        let s = Server::start(driver, "");
        let r = s.auction(&banner_request("req-1", "user-1", 300, 250, 0.5));
        assert_eq!(r.status, 200, "{driver}: {}", r.text());
        let v = r.json();
        assert_eq!(v["id"], "req-1");
        let bid = &v["seatbid"][0]["bid"][0];
        assert_eq!(bid["impid"], "1");
        // Gaming CPC USA: 0.032 x $0.20 x 1000 = $6.40 eCPM beats the $2.50 CPM campaign.
        assert_eq!(bid["crid"], "201", "{v}");
        assert!((bid["price"].as_f64().unwrap() - 6.4).abs() < 1e-9, "{v}");
        assert_eq!(bid["adomain"][0], "globex.example");
        assert!(bid["adm"].as_str().unwrap().contains("<img"));
        assert!(bid["nurl"].as_str().unwrap().contains("${AUCTION_PRICE}"));
        assert!(bid["burl"].as_str().unwrap().contains("/notice/billing"));
        assert_eq!(r.header("x-openrtb-version"), Some("2.6"));
    }
}

#[test]
fn unmatched_size_is_a_nobid_with_reason_and_high_floor_gets_house() {
    let s = Server::start("legacy", "");
    let r = s.auction(&banner_request("r2", "u2", 1, 1, 0.0));
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("x-adcore-nobid-reason"),
        Some("no_eligible_campaign")
    );
    assert_eq!(r.header("x-openrtb-nbr"), Some("0"));
    assert!(r.body.is_empty());

    let r = s.auction(&banner_request("r3", "u3", 728, 90, 1000.0));
    assert_eq!(r.status, 200, "{}", r.text());
    let bid = &r.json()["seatbid"][0]["bid"][0];
    assert_eq!(bid["price"].as_f64(), Some(0.0));
    assert_eq!(bid["ext"]["adcore"]["house"], true, "{bid}");
}

#[test]
fn invalid_requests_get_400_with_the_exact_message_and_nbr_2() {
    let s = Server::start("uring", "");
    let cases: [(&[u8], &str); 3] = [
        (b"{\"id\":\"x\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":0}}]}",
         "request.imp[0].banner.h must be a positive number"),
        (b"{\"id\":\"x\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":250}},{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":250}}]}",
         "request.imp[1].id \"1\" duplicates request.imp[0].id"),
        (b"{\"id\":\"x\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":250}}],\"site\":{},\"app\":{}}",
         "request must contain at most one of site, app, dooh"),
    ];
    for (body, message) in cases {
        let r = s.auction(body);
        assert_eq!(r.status, 400, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error"], message, "{v}");
        assert_eq!(v["nbr"], 2);
    }
    let r = s.auction(b"{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["nbr"], 2);
    let r = s.auction(b"\xff\xfe{}");
    assert_eq!(r.status, 400);
    let r = s.request(&post("/openrtb2/auction", "text/plain", b"{}"));
    assert_eq!(r.status, 415);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
}

#[test]
fn every_shared_request_is_accepted() {
    let dir = shared_data("openrtb/requests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    for driver in DRIVERS {
        let s = Server::start(driver, "");
        for f in &files {
            let r = s.auction(&std::fs::read(f).unwrap());
            assert!(
                r.status == 200 || r.status == 204,
                "{driver} {}: {} {}",
                f.display(),
                r.status,
                r.text()
            );
            if r.status == 200 {
                net::openrtb::parse_bid_response(&r.body).expect("our response parses");
            }
        }
    }
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let s = Server::start("uring", "");
    let mut conn = connect(s.addr);
    let mut batch = Vec::new();
    for i in 0..3 {
        batch.extend(post_json(
            "/openrtb2/auction",
            &banner_request(&format!("p{i}"), &format!("user-{i}"), 300, 250, 0.0),
        ));
    }
    conn.write_all(&batch).unwrap();
    let mut buf = Vec::new();
    for i in 0..3 {
        let r = read_response(&mut conn, &mut buf).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["id"], format!("p{i}"));
    }
    // The same connection keeps serving.
    conn.write_all(&get("/health")).unwrap();
    assert_eq!(read_response(&mut conn, &mut buf).unwrap().status, 200);
}

#[test]
fn slow_client_gets_408_and_oversize_body_413() {
    let s = Server::start(
        "legacy",
        "[http]\nrequest_timeout_ms = 300\nbody_bytes_max = 1024\n",
    );
    let mut conn = connect(s.addr);
    conn.write_all(b"POST /openrtb2/auction HTTP/1.1\r\nHost: t\r\nContent-Le")
        .unwrap();
    let mut buf = Vec::new();
    let r = read_response(&mut conn, &mut buf).unwrap();
    assert_eq!(r.status, 408);

    let big = vec![b' '; 4096];
    let r = s.auction(&big);
    assert_eq!(r.status, 413);
}

#[test]
fn budget_is_never_overspent_and_metrics_are_per_shard() {
    let s = Server::start("uring", "");
    // "Tiny budget 320x50": $0.04 a day at a $20 CPM = 2 impressions of $0.02 in total,
    // split over 2 shards; the rest must go elsewhere.
    // Chunks reach each shard's sub-ledger asynchronously, and only once the allocator's WAL
    // has synced them (slow on a loaded host: 1 run in ~20 missed a 1 s bound), so a request may find no
    // budget yet (under-delivery is allowed); keep asking, in rounds bounded to ~15 s, until the
    // budget's worth has been delivered, and never a single impression more.
    let mut tiny = 0;
    let mut sent = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for round in 0.. {
        for i in 0..40 {
            let n = round * 40 + i;
            let r = s.auction(&banner_request(
                &format!("b{n}"),
                &format!("user-{i}"),
                320,
                50,
                0.0,
            ));
            assert_eq!(r.status, 200);
            sent += 1;
            if r.json()["seatbid"][0]["bid"][0]["crid"] == "501" {
                tiny += 1;
            }
            assert!(
                tiny <= 2,
                "overspent: {tiny} impressions after {sent} requests"
            );
        }
        if tiny == 2 || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        tiny, 2,
        "exactly the budget's worth of impressions ({sent} sent)"
    );
    let m = s.request(&get("/metrics"));
    assert_eq!(m.status, 200);
    let text = m.text();
    for shard in ["0", "1"] {
        assert!(text.contains(&format!(
            "adcore_requests_total{{shard=\"{shard}\",outcome=\"filled\"}}"
        )));
        assert!(text.contains(&format!(
            "adcore_driver_info{{shard=\"{shard}\",driver=\"uring\"}} 1"
        )));
    }
    let hops: u64 = text
        .lines()
        .filter(|l| l.starts_with("adcore_hops_out_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        hops > 0,
        "40 users over 2 shards must cross shards:\n{text}"
    );
    let stats = s.request(&get("/stats")).json();
    let spent = stats["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == 5)
        .unwrap()["spent_today_micros"]
        .as_u64()
        .unwrap();
    assert_eq!(spent, 40_000);
}

#[test]
fn sigterm_drains_an_in_flight_request_then_exits_0() {
    for driver in DRIVERS {
        let mut s = Server::start(driver, "");
        let body = banner_request("drain", "user-d", 300, 250, 0.0);
        let req = post_json("/openrtb2/auction", &body);
        let (head, tail) = req.split_at(req.len() - 10);
        let tail = tail.to_vec();
        let mut conn = connect(s.addr);
        conn.write_all(head).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let addr = s.addr;
        let finisher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            conn.write_all(&tail).unwrap();
            let mut buf = Vec::new();
            read_response(&mut conn, &mut buf).unwrap()
        });
        let status = s.terminate();
        let r = finisher.join().unwrap();
        assert_eq!(
            r.status, 200,
            "{driver}: in-flight request answered during drain"
        );
        assert!(status.success(), "{driver}: exit status {status}");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "no longer listening"
        );
    }
}

#[test]
fn a_bad_catalog_is_refused_at_start_naming_file_record_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("catalog.json")).unwrap()).unwrap();
    v["campaigns"][2]["advertiser_id"] = serde_json::json!(77);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adserver"))
        .args(["--listen", "127.0.0.1:1", "--catalog"])
        .arg(&bad)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}: campaigns[2] (id 3): advertiser_id: advertiser 77 does not exist",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn print_config_shows_overrides() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_adserver"))
        .args(["--shards", "3", "--driver", "legacy", "--print-config"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let cfg = engine::config::Config::from_toml("stdout", &text).unwrap();
    assert_eq!(cfg.server.shards, 3);
    assert_eq!(cfg.server.driver, "legacy");
    assert_eq!(cfg.http, engine::config::Config::default().http);
}
