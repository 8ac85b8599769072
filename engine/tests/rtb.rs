//! RTB end to end: the real `adserver` process calling DSPs on loopback (`common::dsp`), checked
//! through its responses, `/stats` and `/metrics` (server-side figures, no wall-clock asserts).

mod common;

use std::time::{Duration, Instant};

use common::Server;
use common::dsp::{Mode, TestDsp};

fn request(id: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","imp":[{{"id":"1","bidfloor":0.5,"banner":{{"w":300,"h":250}}}}],
            "user":{{"id":"user-{id}"}},"device":{{"geo":{{"country":"USA"}}}},"tmax":500}}"#
    )
    .into_bytes()
}

fn start(extra: &str, dsps: &[(&TestDsp, &str, u8)]) -> Server {
    let mut cfg = String::from(extra);
    for (d, id, tier) in dsps {
        cfg.push('\n');
        cfg.push_str(&d.toml(id, *tier));
    }
    Server::start("auto", &cfg)
}

fn stats(s: &Server) -> serde_json::Value {
    s.request(&common::get("/stats")).json()["rtb"].clone()
}

fn dsp_stat(st: &serde_json::Value, id: &str, field: &str) -> f64 {
    st["dsps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no dsp {id} in {st}"))[field]
        .as_f64()
        .unwrap()
}

/// Seat of the first bid of a 200 response.
fn seat(r: &common::Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["seatbid"][0]["seat"].as_str().unwrap().to_string()
}

/// Sum of a Prometheus counter over the lines containing every label in `labels`.
fn metric_sum(text: &str, name: &str, labels: &[&str]) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_stalled_dsp_never_delays_a_response_past_the_absolute_cutoff() {
    let stalled = TestDsp::start(Mode::Stall);
    let fast = TestDsp::start(Mode::Bid(20.0));
    let server = start("", &[(&stalled, "stalled", 1), (&fast, "fast", 1)]);
    for i in 0..4 {
        let r = server.auction(&request(&format!("s{i}")));
        assert_eq!(seat(&r), format!("seat-{}", fast.addr.port()));
    }
    // Nothing but stalls: the internal winner serves once the absolute cutoff passes.
    fast.set(Mode::Stall);
    for i in 4..6 {
        let r = server.auction(&request(&format!("s{i}")));
        assert_eq!(seat(&r), "adcore");
    }
    let st = stats(&server);
    assert_eq!(dsp_stat(&st, "stalled", "timeouts"), 6.0, "{st}");
    assert_eq!(dsp_stat(&st, "stalled", "responses"), 0.0, "{st}");
    assert_eq!(dsp_stat(&st, "fast", "wins"), 4.0, "{st}");
    assert_eq!(st["closed_operational"], 4, "{st}");
    // The last two closed when both DSPs hit their own 100 ms deadline (or, on a busy host, at the
    // absolute cutoff): either way every call was cancelled and counted.
    assert_eq!(
        st["closed_all_answered"].as_u64().unwrap() + st["closed_absolute"].as_u64().unwrap(),
        2,
        "{st}"
    );
    // Server-side: no collection outlived the 120 ms absolute cutoff by more than timer slack.
    let slowest = st["collect_max_ms"].as_u64().unwrap();
    assert!(
        (70..=170).contains(&slowest),
        "slowest collection {slowest} ms"
    );
}

#[test]
fn faulty_answers_never_poison_the_pool() {
    let flaky = TestDsp::start(Mode::Bid(20.0));
    let server = start("", &[(&flaky, "flaky", 1)]);
    let ours = format!("seat-{}", flaky.addr.port());
    assert_eq!(seat(&server.auction(&request("f0"))), ours);
    let faults = [
        Mode::Malformed,
        Mode::Reset,
        Mode::HalfWritten,
        Mode::ServerError,
    ];
    for (i, fault) in faults.iter().enumerate() {
        flaky.set(fault.clone());
        let r = server.auction(&request(&format!("f{i}a")));
        assert_eq!(seat(&r), "adcore", "after {fault:?}");
        flaky.set(Mode::Bid(20.0));
        let r = server.auction(&request(&format!("f{i}b")));
        assert_eq!(seat(&r), ours, "the request after {fault:?}");
    }
    let metrics = server.request(&common::get("/metrics")).text();
    let errors = |kind: &str| {
        metric_sum(
            &metrics,
            "adcore_rtb_errors_total",
            &["dsp=\"flaky\"", &format!("kind=\"{kind}\"")],
        )
    };
    assert_eq!(errors("malformed"), 1, "{metrics}");
    assert_eq!(errors("status"), 1);
    assert_eq!(errors("reset"), 2, "reset and half-written");
    assert_eq!(
        metric_sum(&metrics, "adcore_rtb_wins_total", &["dsp=\"flaky\""]),
        5
    );
    // The reset and the half-written answer broke their connections (closed, never reused); the
    // malformed body and the 500 were well-framed HTTP, so their connections stayed usable.
    let pool = |event: &str| {
        metric_sum(
            &metrics,
            "adcore_rtb_pool_events_total",
            &["dsp=\"flaky\"", &format!("event=\"{event}\"")],
        )
    };
    assert_eq!(pool("requests"), 9, "{metrics}");
    assert_eq!(pool("responses"), 7, "{metrics}");
    assert_eq!(pool("broken"), 2, "{metrics}");
}

#[test]
fn notices_carry_substituted_macros_and_loss_codes() {
    let high = TestDsp::start(Mode::Bid(20.0));
    let low = TestDsp::start(Mode::Bid(10.0));
    let broken = TestDsp::start(Mode::BidWithoutCrid(30.0));
    let server = start(
        "",
        &[(&high, "high", 1), (&low, "low", 1), (&broken, "broken", 1)],
    );
    let r = server.auction(&request("n-1"));
    assert_eq!(seat(&r), format!("seat-{}", high.addr.port()));
    let bid = &r.json()["seatbid"][0]["bid"][0];
    assert_eq!(bid["adm"], "<div data-price=\"20\">ad</div>");
    assert_eq!(bid["price"], 20.0);
    assert!(
        bid.get("nurl").is_none() && bid.get("lurl").is_none(),
        "{bid}"
    );
    let hp = high.addr.port();
    let mut got = high.wait_notices(2, Duration::from_secs(5));
    got.sort();
    assert_eq!(
        got,
        vec![
            "/bill?auction=n-1&price=20".to_string(),
            format!("/win?auction=n-1&bid=bid-{hp}&imp=1&seat=seat-{hp}&ad=ad-7&price=20&cur=USD"),
        ]
    );
    assert_eq!(
        low.wait_notices(1, Duration::from_secs(5)),
        vec!["/loss?auction=n-1&code=102&price=20&min=20".to_string()]
    );
    assert_eq!(
        broken.wait_notices(1, Duration::from_secs(5)),
        vec!["/loss?auction=n-1&code=8&price=20&min=20".to_string()]
    );
    let metrics = server.request(&common::get("/metrics")).text();
    assert_eq!(
        metric_sum(
            &metrics,
            "adcore_rtb_dropped_bids_total",
            &["dsp=\"broken\"", "code=\"8\""]
        ),
        1
    );
    let st = stats(&server);
    assert_eq!(st["notices_sent"], 4, "{st}");
}

#[test]
fn health_demotes_a_slow_dsp_and_promotes_it_after_recovery() {
    let slow = TestDsp::start(Mode::Stall);
    let steady = TestDsp::start(Mode::Bid(8.0));
    let cfg = "[rtb]\noperational_cutoff_ms = 60\nabsolute_cutoff_ms = 100\nglobal_timeout_ms = 80\n\
               health_fast_ms = 30\nhealth_interval_ms = 100\nhealth_bucket_ms = 300\nhealth_buckets = 2\n\
               health_min_requests = 5\nhealth_probe_every = 2\n";
    let server = Server::start(
        "auto",
        &format!(
            "{cfg}\n{}\n{}",
            slow.toml("slow", 1)
                .replace("timeout_ms = 100", "timeout_ms = 80"),
            steady
                .toml("steady", 1)
                .replace("timeout_ms = 100", "timeout_ms = 80")
        ),
    );
    let tier_after = |want: f64, label: &str| {
        let end = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        loop {
            server.auction(&request(&format!("{label}-{n}")));
            n += 1;
            let st = stats(&server);
            if dsp_stat(&st, "slow", "tier") == want {
                return st;
            }
            assert!(
                Instant::now() < end,
                "slow DSP never reached tier {want}: {st}"
            );
        }
    };
    let st = tier_after(4.0, "down");
    assert!(dsp_stat(&st, "slow", "score") < 30.0, "{st}");
    slow.set(Mode::Bid(20.0));
    let st = tier_after(1.0, "up");
    assert!(dsp_stat(&st, "slow", "score") > 85.0, "{st}");
    assert!(dsp_stat(&st, "slow", "wins") > 0.0);
}

#[test]
fn concurrent_auctions_share_the_pools() {
    let a = TestDsp::start(Mode::SlowBid(20.0, 5));
    let b = TestDsp::start(Mode::SlowBid(10.0, 5));
    let server = start("", &[(&a, "a", 1), (&b, "b", 1)]);
    let winner = format!("seat-{}", a.addr.port());
    std::thread::scope(|s| {
        for t in 0..8 {
            let (server, winner) = (&server, &winner);
            s.spawn(move || {
                for i in 0..5 {
                    let r = server.auction(&request(&format!("c{t}-{i}")));
                    assert_eq!(&seat(&r), winner);
                }
            });
        }
    });
    let st = stats(&server);
    assert_eq!(dsp_stat(&st, "a", "wins"), 40.0, "{st}");
    assert_eq!(
        dsp_stat(&st, "a", "timeouts") + dsp_stat(&st, "b", "timeouts"),
        0.0,
        "{st}"
    );
    assert_eq!(st["closed_all_answered"], 40, "{st}");
}

#[test]
fn failing_notices_are_retried_a_bounded_number_of_times_and_counted() {
    let dsp = TestDsp::start(Mode::Bid(20.0));
    dsp.set_notice_status(500);
    let server = start(
        "[rtb]\nnotice_attempts = 3\nnotice_retry_ms = 10\n",
        &[(&dsp, "d", 1)],
    );
    assert_eq!(
        seat(&server.auction(&request("nf"))),
        format!("seat-{}", dsp.addr.port())
    );
    // Win and billing notice, three attempts each, then given up.
    let got = dsp.wait_notices(6, Duration::from_secs(5));
    let end = Instant::now() + Duration::from_secs(5);
    let st = loop {
        let st = stats(&server);
        if st["notices_failed"] == 2 || Instant::now() > end {
            break st;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(st["notices_failed"], 2, "{st}");
    assert_eq!(st["notices_sent"], 0, "{st}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        dsp.notices().len(),
        6,
        "no attempt beyond the bound: {got:?}"
    );
    let metrics = server.request(&common::get("/metrics")).text();
    assert_eq!(
        metric_sum(&metrics, "adcore_rtb_notice_retries_total", &[]),
        4
    );
}
