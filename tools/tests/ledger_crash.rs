//! Issue #5's kill -9 test, end to end with real processes on loopback: `adserver` (small
//! budgets, WAL on) under `rtb-load --events`, SIGKILL mid-run, restart on the same WAL
//! directory, more load, orderly stop (SIGTERM); then `ledger verify`, `ledger spend` (no campaign
//! over budget + bound) and `ledger reconcile` (no committed spend lost) on the WAL directory.
//!
//! `adserver` belongs to another package, so it is built here with the invoking cargo (a no-op
//! when up to date). Bounded: every process has a deadline and is killed at the end.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tools::ledger::account::Accounts;
use tools::ledger::read;

/// Daily budget per campaign id: id 1 runs out before the kill, the others spend across it and
/// after the restart (lifetime: 10 days).
fn daily_micros(id: u64) -> u64 {
    match id {
        1 => 150_000,
        5 => 1_000_000,
        _ => 400_000,
    }
}

fn fixture_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/catalog.json")
}

/// `target/<profile>` of this test binary (`target/<profile>/deps/ledger_crash-*`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// Builds `adserver` with the cargo running this test, in the same profile and target dir.
fn adserver_bin() -> PathBuf {
    let dir = profile_dir();
    let profile = dir.file_name().unwrap().to_str().unwrap().to_string();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-q", "-p", "engine", "--bin", "adserver"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .env("CARGO_TARGET_DIR", dir.parent().unwrap());
    if profile == "release" {
        cmd.arg("--release");
    } else if profile != "debug" {
        cmd.args(["--profile", &profile]);
    }
    let status = cmd.status().expect("run cargo build for adserver");
    assert!(status.success(), "building adserver failed");
    let bin = dir.join("adserver");
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

/// The fixture catalog with every paid budget cut to [`daily_micros`].
fn small_budget_catalog(dir: &Path) -> PathBuf {
    let mut cat: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_catalog()).unwrap()).unwrap();
    for c in cat["campaigns"].as_array_mut().unwrap() {
        if c["kind"]["type"] != "house" {
            let daily = daily_micros(c["id"].as_u64().unwrap());
            c["budget_daily_micros"] = daily.into();
            c["budget_lifetime_micros"] = (daily * 10).into();
        }
    }
    let path = dir.join("catalog.json");
    std::fs::write(&path, serde_json::to_vec(&cat).unwrap()).unwrap();
    path
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Server {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Server {
    fn start(bin: &Path, dir: &Path, catalog: &Path, wal: &Path) -> Server {
        let addr = free_addr();
        let cfg = format!(
            "[server]\nlisten = \"{addr}\"\nshards = 2\ndriver = \"legacy\"\npin_cores = false\n\
             drain_timeout_ms = 3000\n[catalog]\npath = \"{}\"\n\
             [model]\nexplore_enabled = false\nthompson_enabled = false\n\
             [budget]\nchunk_ppm = 100000\nchunk_micros_min = 1\npacing = \"off\"\nwal_dir = \"{}\"\n",
            catalog.display(),
            wal.display()
        );
        let cfg_path = dir.join(format!("adserver-{}.toml", addr.port()));
        std::fs::write(&cfg_path, cfg).unwrap();
        let child = Command::new(bin)
            .arg("--config")
            .arg(&cfg_path)
            .arg("serve")
            .current_dir(dir)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn adserver");
        let mut s = Server {
            child: Some(child),
            addr,
        };
        s.wait_healthy();
        s
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if health(self.addr) {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("adserver exited during start: {st}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("adserver not healthy on {}", self.addr);
    }

    fn url(&self) -> String {
        format!("http://{}/openrtb2/auction", self.addr)
    }

    /// SIGKILL, no warning.
    fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// SIGTERM and a bounded wait for a clean exit.
    fn terminate(&mut self) {
        let mut c = self.child.take().unwrap();
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                assert!(st.success(), "adserver exit after SIGTERM: {st}");
                return;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("adserver did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn health(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if n >= 12 && &buf[9..12] == b"200")
}

/// Starts `rtb-load` against `url` logging served impressions to `events`.
fn load(url: &str, events: &Path, id_base: u64, duration: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rtb-load"))
        .args(["--target", url, "--rate", "300", "--duration", duration])
        .args([
            "--connections",
            "8",
            "--timeout",
            "500ms",
            "--user-count",
            "500",
        ])
        .args(["--pool", "2000", "--driver", "legacy"])
        .arg("--id-base")
        .arg(id_base.to_string())
        .arg("--events")
        .arg(events)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rtb-load")
}

/// Waits (bounded) for a load run to end; returns its output.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rtb-load did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn ledger(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn kill_9_mid_load_then_restart_loses_no_committed_spend_and_stays_within_budget() {
    let bin = adserver_bin();
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let catalog = small_budget_catalog(dir.path());
    let (ev1, ev2) = (dir.path().join("ev1.jsonl"), dir.path().join("ev2.jsonl"));

    // Run 1: load for 3 s, SIGKILL the server 1.5 s in (the load sees connection errors after).
    let mut s = Server::start(&bin, dir.path(), &catalog, &wal);
    let run1 = load(&s.url(), &ev1, 0, "3s");
    std::thread::sleep(Duration::from_millis(1_500));
    s.kill_9();
    let out1 = finish(run1);
    assert!(
        out1.status.success(),
        "{}",
        String::from_utf8_lossy(&out1.stderr)
    );
    assert!(lines(&ev1) > 0, "nothing served before the kill");
    let before = Accounts::from_files(&read::read_all(&wal).unwrap());
    let outstanding_at_kill: u64 = before.days().values().map(|f| f.outstanding()).sum();

    // Restart on the same WAL: recovery reclaims every lot outstanding at the kill.
    let mut s = Server::start(&bin, dir.path(), &catalog, &wal);
    let out2 = finish(load(&s.url(), &ev2, 1 << 40, "3s"));
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    s.terminate();

    let after = Accounts::from_files(&read::read_all(&wal).unwrap());
    let days = after.days();
    let reclaimed: u64 = days.values().map(|f| f.reclaimed).sum();
    assert!(
        outstanding_at_kill > 0 && reclaimed >= outstanding_at_kill,
        "lots outstanding at the kill ({outstanding_at_kill}) were not reclaimed ({reclaimed})"
    );
    assert!(
        days.values().all(|f| f.outstanding() == 0),
        "SIGTERM left chunks outstanding"
    );
    assert!(days.values().any(|f| f.spent > 0), "nothing charged");

    let w = wal.to_str().unwrap();
    let (ok, text) = ledger(&["verify", w]);
    assert!(ok, "ledger verify:\n{text}");
    let cat = catalog.to_str().unwrap();
    let (ok, text) = ledger(&["spend", w, "--catalog", cat, "--bound-ppm", "10000"]);
    eprintln!("ledger spend:\n{text}");
    assert!(ok, "ledger spend:\n{text}");
    assert!(!text.contains("OVER"), "{text}");

    let events = dir.path().join("events.jsonl");
    let mut all = std::fs::read(&ev1).unwrap();
    all.extend(std::fs::read(&ev2).unwrap());
    std::fs::write(&events, all).unwrap();
    let (ok, text) = ledger(&[
        "reconcile",
        w,
        "--events",
        events.to_str().unwrap(),
        "--catalog",
        cat,
    ]);
    eprintln!("ledger reconcile:\n{text}");
    assert!(ok, "ledger reconcile:\n{text}");
    assert!(text.contains("no committed spend lost"), "{text}");
    let matched_line = text
        .lines()
        .find(|l| l.starts_with("matched in the ledger"))
        .unwrap();
    assert!(
        !matched_line.contains(": 0 impressions") && !matched_line.contains("    0 impressions"),
        "no served impression matched the ledger:\n{text}"
    );
}
