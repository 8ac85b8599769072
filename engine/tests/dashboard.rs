//! `/dashboard` in a real headless Chromium (installed by scripts/install-deps.sh): while the server
//! takes auction traffic, the rendered page must show one panel per core with live numbers, and a
//! screenshot must show the panels drawn. `ADCORE_KEEP_SCREENSHOT=/path.png` keeps the screenshot.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    let server = Server::start("legacy", "");
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

fn attr_value<'a>(html: &'a str, attr: &str) -> Option<&'a str> {
    let start = html.find(&format!("{attr}=\""))? + attr.len() + 2;
    html[start..].split('"').next()
}

/// Text of every `<div class="num ..." data-k="{key}">TEXT</div>`.
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
