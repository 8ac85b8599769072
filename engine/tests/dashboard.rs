//! `/dashboard` in a real headless Chromium (installed by scripts/install-deps.sh): while the server
//! takes auction traffic (fanned out to a loopback DSP, at a forced degradation level), the
//! rendered page must show one panel per core with live numbers, the DSP health table with the
//! DSP's live figures and the degradation badge, and a screenshot must show the panels drawn.
//! `ADCORE_KEEP_SCREENSHOT=/path.png` keeps the screenshot.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::dsp::{Mode, TestDsp};
use common::{Server, get, shared_data};

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 900;
/// The panel background colour in dashboard.html (`--panel: #182029`).
const PANEL_RGB: [u8; 3] = [0x18, 0x20, 0x29];

fn chromium() -> &'static str {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name).arg("--version").output().is_ok() {
            return name;
        }
    }
    panic!("chromium not found: run scripts/install-deps.sh");
}

/// Chromium flags for a root user in a container: no sandbox, no GPU, fixed window, and enough
/// virtual time for several one-second refreshes (network waits pause virtual time).
fn headless(dir: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--virtual-time-budget=4500",
    ])
    .arg(format!("--window-size={WIDTH},{HEIGHT}"))
    .arg(format!("--user-data-dir={}", dir.join("profile").display()));
    cmd
}

/// Sends auctions from the shared OpenRTB corpus until `stop` is set.
fn background_traffic(server: &Server, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    let addr = server.addr;
    let body = std::fs::read(shared_data("openrtb/requests/bsm_breq.banner.json")).unwrap();
    std::thread::spawn(move || {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) && sent < 20_000 {
            let raw = common::post_json("/openrtb2/auction", &body);
            if common::try_request(addr, &raw).is_ok() {
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    })
}

#[test]
fn dashboard_renders_live_panels_in_chromium() {
    let dsp = TestDsp::start(Mode::SlowBid(3.0, 3));
    let extra = format!(
        "[degradation]\nforce_level = 1\n{}",
        dsp.toml("dsp-live", 1)
    );
    let server = Server::start("legacy", &extra);
    let page = server.request(&get("/dashboard"));
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        !page.text().contains("http://") && !page.text().contains("https://"),
        "no CDN"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let traffic = background_traffic(&server, stop.clone());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{}/dashboard", server.addr);
    let dom = headless(dir.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let shot = dir.path().join("dashboard.png");
    let screenshot = headless(dir.path())
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(
        traffic.join().unwrap() > 0,
        "no background traffic got through"
    );

    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    check_dom(&html);
    check_dsp_and_degradation(&html, dsp.requests());
    assert!(
        screenshot.status.success(),
        "{}",
        String::from_utf8_lossy(&screenshot.stderr)
    );
    if let Some(keep) = std::env::var_os("ADCORE_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    check_screenshot(&shot);
}

/// One panel per shard with numbers in it, and at least two refreshes (so QPS has a value).
fn check_dom(html: &str) {
    let updates: u32 = attr_value(html, "data-updates")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(updates >= 2, "page refreshed {updates} times:\n{html}");
    for shard in 0..2 {
        assert!(
            html.contains(&format!("data-shard=\"{shard}\"")),
            "no panel for core {shard}"
        );
    }
    assert!(
        html.contains("id=\"h-shards\">2<"),
        "header shard count:\n{html}"
    );
    let live: Vec<&str> = cell_values(html, "p50");
    assert_eq!(live.len(), 2, "{html}");
    assert!(
        live.iter().all(|v| v.ends_with("µs") || v.ends_with("ms")),
        "{live:?}"
    );
    let qps = cell_values(html, "qps");
    assert!(qps.iter().all(|v| *v != "-"), "qps not computed: {qps:?}");
    assert!(
        !html.contains(">never<") && !html.contains(">unreachable<"),
        "{html}"
    );
}

/// The DSP row shows the DSP's live figures (tier, calls, latency, bid rate) and the header the
/// forced degradation level.
fn check_dsp_and_degradation(html: &str, dsp_requests: u64) {
    assert!(dsp_requests > 0, "the DSP was never called");
    assert!(
        html.contains("data-dsp=\"dsp-live\""),
        "no DSP row:\n{html}"
    );
    let one = |key: &str| -> &str {
        let v = cell_values(html, key);
        assert_eq!(v.len(), 1, "{key}: {v:?}");
        v[0]
    };
    assert_eq!(one("dsp-tier"), "1 premium");
    assert_ne!(one("dsp-requests"), "0");
    for key in ["dsp-p50", "dsp-p95", "dsp-p99"] {
        let v = one(key);
        let ms: u64 = v.trim_end_matches(" ms").parse().unwrap_or(0);
        assert!(ms >= 3, "{key} = {v}: the DSP answers after 3 ms");
    }
    // The DSP bids on every call; calls in flight at a refresh are not answered yet.
    let bid_rate: f64 = one("dsp-bid-rate").trim_end_matches('%').parse().unwrap();
    assert!(bid_rate > 50.0, "bid rate {bid_rate}%");
    assert!(
        html.contains("id=\"h-degradation\" class=\"warn\">1 light (forced)<"),
        "degradation badge:\n{html}"
    );
    let levels = cell_values(html, "level");
    assert_eq!(levels, vec!["1", "1"], "per-core level");
}

fn attr_value<'a>(html: &'a str, attr: &str) -> Option<&'a str> {
    let start = html.find(&format!("{attr}=\""))? + attr.len() + 2;
    html[start..].split('"').next()
}

/// Text of every element `... data-k="{key}">TEXT<` (core cells and DSP table cells).
fn cell_values<'a>(html: &'a str, key: &str) -> Vec<&'a str> {
    let marker = format!("data-k=\"{key}\">");
    html.match_indices(&marker)
        .filter_map(|(i, _)| html[i + marker.len()..].split('<').next())
        .collect()
}

/// The screenshot is the window's size, shows a fair area of panel background, and has the
/// colour variety of drawn text and charts (a blank or error page has a handful of colours).
fn check_screenshot(path: &Path) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let mut colours = std::collections::HashSet::new();
    let mut panel = 0usize;
    for px in pixels {
        if px[..3] == PANEL_RGB {
            panel += 1;
        }
        colours.insert([px[0], px[1], px[2]]);
    }
    let total = (WIDTH * HEIGHT) as usize;
    assert!(
        panel > total / 20,
        "panel background covers {panel} of {total} pixels"
    );
    assert!(
        colours.len() > 50,
        "only {} colours: the page did not render",
        colours.len()
    );
}
