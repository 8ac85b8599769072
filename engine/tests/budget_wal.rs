//! The budget's write-ahead logs in the real adserver: spend committed before a `kill -9`
//! survives the restart, chunks outstanding at the crash are counted as spent (never over
//! budget + bound), a corrupt middle refuses the start naming file and offset, and an orderly
//! stop (SIGTERM) returns every chunk so nothing is left outstanding.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use engine::budget::{Allocator, LedgerRecord, LocalCounters};
use engine::wal::{WalLimits, scan};

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
fn small_budget_catalog(dir: &Path, daily: u64) -> PathBuf {
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

/// `[budget]` with small chunks (so chunks move) and the WAL in `wal`.
fn budget_toml(wal: &Path) -> String {
    format!(
        "[budget]\nchunk_ppm = 100000\nchunk_micros_min = 1\npacing = \"off\"\nwal_dir = \"{}\"\n",
        wal.display()
    )
}

fn serve_some(s: &Server, prefix: &str, n: usize) {
    for i in 0..n {
        let r = s.auction(&banner_request(
            &format!("{prefix}{i}"),
            &format!("user-{}", i % 37),
        ));
        assert_eq!(r.status, 200, "request {i}");
        if i % 40 == 39 {
            // Let the budget tasks (poll_ms = 5) refill and commit between bursts.
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

/// (id, spent today, daily budget) per campaign, from /stats.
fn spend(s: &Server) -> Vec<(u64, u64, u64)> {
    let stats = s.request(&get("/stats")).json();
    stats["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_u64().unwrap(),
                c["spent_today_micros"].as_u64().unwrap(),
                c["budget_daily_micros"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn assert_within_bound(spend: &[(u64, u64, u64)]) {
    for &(id, spent, budget) in spend {
        assert!(
            spent <= budget + budget / 100,
            "campaign {id} spent {spent} of {budget} (+1 % bound)"
        );
    }
}

/// Records of a log file, in order.
fn records(path: &Path) -> Vec<LedgerRecord> {
    let bytes = std::fs::read(path).unwrap();
    let s = scan(&bytes, WalLimits::default()).unwrap();
    assert!(s.recovered.snapshot.is_none(), "not compacted in this test");
    s.recovered
        .records
        .iter()
        .map(|(_, p)| LedgerRecord::decode(p).unwrap())
        .collect()
}

/// The allocator rebuilt from its log, as the engine would (2 shards, the test's config).
fn replay_allocator(catalog: &Path, wal: &Path) -> Allocator<LocalCounters> {
    let cfg = engine::config::Config::from_toml("t", &budget_toml(wal)).unwrap();
    let cat = engine::catalog::Catalog::load(catalog).unwrap();
    let setup = engine::ledger::BudgetSetup::new(&cfg, &cat, 2).unwrap();
    let recs = records(&wal.join("allocator.wal"));
    Allocator::recover(
        LocalCounters::default(),
        setup.budgets.clone(),
        setup.calendar.clone(),
        setup.allocator,
        engine::ledger::now_ms(),
        recs.iter(),
    )
}

#[test]
fn committed_spend_survives_kill_9_and_outstanding_chunks_count_as_spent() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let catalog = small_budget_catalog(dir.path(), 60_000);
    let extra = budget_toml(&wal);
    let s = Server::start_with_catalog("legacy", &catalog, &extra);
    serve_some(&s, "a", 120);
    // Quiet for many budget rounds: every spend record is committed.
    std::thread::sleep(Duration::from_millis(300));
    let before = spend(&s);
    let stats = s.request(&get("/stats")).json();
    let wals = stats["budget"]["wal"].as_array().unwrap();
    assert_eq!(wals.len(), 3, "allocator + spend-0 + spend-1: {wals:?}");
    assert!(wals.iter().all(|w| w["durable_seq"].as_u64().unwrap() > 0));
    let m = s.request(&get("/metrics")).text();
    assert!(
        m.contains("adcore_wal_commits_total{shard=\"0\",wal=\"allocator\"}"),
        "{m}"
    );
    assert!(m.contains("adcore_wal_fsync_seconds_count{shard=\"1\",wal=\"spend-1\"}"));
    assert!(before.iter().any(|c| c.1 > 0), "nothing spent: {before:?}");
    drop(s); // SIGKILL

    // Lots were outstanding at the kill: held by shards, not yet returned.
    let held = replay_allocator(&catalog, &wal);
    assert!(
        !held.state().lots.is_empty(),
        "no chunk outstanding at the kill"
    );

    let s = Server::start_with_catalog("legacy", &catalog, &extra);
    let after = spend(&s);
    assert_eq!(after, before, "spend today after the restart");
    // The restart counted every outstanding lot as spent (Reclaim records).
    let a = replay_allocator(&catalog, &wal);
    let reclaimed: u64 = a.state().accts.values().map(|x| x.reclaimed).sum();
    assert!(reclaimed > 0, "outstanding chunks were not reclaimed");
    // Serve more: budgets stay within budget + bound across the restart.
    serve_some(&s, "b", 200);
    std::thread::sleep(Duration::from_millis(100));
    let end = spend(&s);
    assert_within_bound(&end);
    for (b, e) in before.iter().zip(&end) {
        assert!(e.1 >= b.1, "spend went down: {b:?} -> {e:?}");
    }
    // A replayed request after the restart is not charged twice (keys recovered).
    let c1_before = end.iter().find(|c| c.0 == 1).unwrap().1;
    let r = s.auction(&banner_request("a0", "user-0"));
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_millis(50));
    let c1_after = spend(&s).iter().find(|c| c.0 == 1).unwrap().1;
    assert_eq!(
        c1_before, c1_after,
        "a replayed impression was charged again"
    );
}

/// Runs adserver expecting it to fail at start; returns stderr.
fn start_fails(cfg: &Path, cwd: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adserver"))
        .arg("--config")
        .arg(cfg)
        .arg("serve")
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "adserver started on a corrupt log");
            assert_eq!(status.code(), Some(1), "an error exit, not a crash");
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("adserver kept running on a corrupt log");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_returns_every_chunk_and_a_corrupt_middle_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let catalog = small_budget_catalog(dir.path(), 60_000);
    let extra = budget_toml(&wal);
    let mut s = Server::start_with_catalog("legacy", &catalog, &extra);
    serve_some(&s, "t", 80);
    assert!(s.terminate().success());

    // Orderly stop: the log ends with Returns and nothing is outstanding.
    let recs = records(&wal.join("allocator.wal"));
    assert!(
        matches!(recs.last(), Some(LedgerRecord::Return { .. })),
        "last record {:?}",
        recs.last()
    );
    let a = replay_allocator(&catalog, &wal);
    if !a.state().lots.is_empty() {
        for r in &recs {
            eprintln!("REC {r:?}");
        }
    }
    assert!(
        a.state().lots.is_empty(),
        "outstanding: {:?}",
        a.state().lots
    );
    let returned: u64 = a.state().accts.values().map(|x| x.returned).sum();
    assert!(returned > 0);

    // Flip one byte inside an early record: valid records follow, so it is not a torn tail.
    let path = wal.join("allocator.wal");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = 8 + 21 + 1; // magic, first header, first payload byte
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:1\"\nshards = 2\ndriver = \"legacy\"\npin_cores = false\n\
             [catalog]\npath = \"{}\"\n{extra}",
            catalog.display()
        ),
    )
    .unwrap();
    let err = start_fails(&cfg, dir.path());
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("corrupt WAL record at byte offset 8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// With a tiny compaction threshold the logs are compacted while serving; a restart from the
/// snapshots (plus the records after them) shows the same spend.
#[test]
fn compacted_logs_recover_the_same_spend() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let catalog = small_budget_catalog(dir.path(), 600_000);
    let extra = format!("{}wal_compact_bytes = 1024\n", budget_toml(&wal));
    let mut s = Server::start_with_catalog("legacy", &catalog, &extra);
    serve_some(&s, "c", 300);
    std::thread::sleep(Duration::from_millis(200));
    let stats = s.request(&get("/stats")).json();
    let compactions: u64 = stats["budget"]["wal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["compactions"].as_u64().unwrap())
        .sum();
    assert!(compactions > 0, "no log was compacted: {stats}");
    let before = spend(&s);
    assert!(s.terminate().success());
    let bytes = std::fs::read(wal.join("spend-0.wal")).unwrap();
    let sc = scan(&bytes, WalLimits::default()).unwrap();
    assert!(
        sc.recovered.snapshot.is_some() || bytes.len() < 1024,
        "spend-0.wal grew to {} bytes uncompacted",
        bytes.len()
    );
    let s = Server::start_with_catalog("legacy", &catalog, &extra);
    assert_eq!(
        spend(&s),
        before,
        "spend today after a restart from snapshots"
    );
}
