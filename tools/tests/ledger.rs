//! `ledger` against WAL files written by the engine's own `Wal` + `LedgerRecord` API: a clean
//! ledger, a torn tail, a corrupt middle, an over-budget campaign, a reconcile mismatch and bad
//! command-line input. Runs the real binary (exit codes and messages are the interface).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use engine::budget::record::LedgerRecord;
use engine::ledger::impression_key;
use engine::wal::{FileStorage, Wal};
use tools::ledger::account::Accounts;
use tools::ledger::read;

/// Local day (UTC campaigns) and a timestamp at its noon.
const DAY: i64 = 20_400;
const NOON_MS: i64 = DAY * 86_400_000 + 12 * 3_600_000;

fn catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/catalog.json")
}

fn ledger(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args)
        .output()
        .expect("run ledger")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn write_wal(dir: &Path, name: &str, records: &[LedgerRecord]) -> PathBuf {
    let (mut wal, _) = Wal::open(FileStorage::open(dir, name).unwrap()).unwrap();
    for r in records {
        wal.append(&r.encode());
    }
    wal.commit();
    dir.join(name)
}

fn grant(shard: u16, campaign: u32, chunk: u64, slack: u64) -> LedgerRecord {
    LedgerRecord::Grant {
        shard,
        epoch: 1,
        campaign,
        day: DAY,
        chunk,
        slack,
    }
}

fn spend(shard: u16, campaign: u32, request: &str, cost: u64) -> LedgerRecord {
    LedgerRecord::Spend {
        shard,
        epoch: 1,
        campaign,
        day: DAY,
        key: impression_key(request, "1"),
        cost,
    }
}

/// Allocator log: two shards granted campaign #0 (id 1); shard 1 returned its lot having spent
/// 3000. Shard 0 spent 2 x 2500, shard 1 3000.
fn clean_ledger(dir: &Path, extra_allocator: &[LedgerRecord]) {
    let mut alloc = vec![
        LedgerRecord::Register { shard: 0, epoch: 1 },
        LedgerRecord::Register { shard: 1, epoch: 1 },
        LedgerRecord::PeriodRoll {
            campaign: 0,
            day: DAY,
        },
        grant(0, 0, 50_000, 1_000),
        grant(1, 0, 50_000, 1_000),
        LedgerRecord::Return {
            shard: 1,
            epoch: 1,
            campaign: 0,
            day: DAY,
            chunk: 47_000,
            slack: 1_000,
            spent: 3_000,
        },
    ];
    alloc.extend_from_slice(extra_allocator);
    write_wal(dir, "allocator.wal", &alloc);
    write_wal(
        dir,
        "spend-0.wal",
        &[spend(0, 0, "r1", 2_500), spend(0, 0, "r2", 2_500)],
    );
    write_wal(dir, "spend-1.wal", &[spend(1, 0, "r3", 3_000)]);
}

fn event(request: &str, price: f64, seat: &str, cid: &str, house: bool) -> String {
    format!(
        "{{\"ts_ms\":{NOON_MS},\"request_id\":\"{request}\",\"imp_id\":\"1\",\"seat\":\"{seat}\",\
         \"cid\":\"{cid}\",\"crid\":\"10\",\"price_cpm\":{price},\"house\":{house}}}\n"
    )
}

fn events(dir: &Path, extra: &[String]) -> PathBuf {
    let mut s = event("r1", 2.5, "adcore", "1", false)
        + &event("r2", 2.5, "adcore", "1", false)
        + &event("r3", 3.0, "adcore", "1", false)
        + &event("x9", 9.0, "dsp-7", "1", false)
        + &event("h1", 0.0, "adcore", "90", true);
    for e in extra {
        s += e;
    }
    let path = dir.join("events.jsonl");
    std::fs::write(&path, s).unwrap();
    path
}

#[test]
fn verify_clean_ledger() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let o = ledger(&["verify", p(dir.path())]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("allocator.wal: ok"), "{t}");
    assert!(t.contains("6 records (seq 1..=6)"), "{t}");
    assert!(t.contains("3 files, 0 damaged, 0 with a torn tail"), "{t}");
    // A single file works too.
    let o = ledger(&["verify", p(&dir.path().join("spend-1.wal"))]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn torn_tail_is_reported_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let path = dir.path().join("spend-0.wal");
    let len = std::fs::metadata(&path).unwrap().len();
    // Half of a record: the header of a third record without its payload.
    let mut bytes = std::fs::read(&path).unwrap();
    let first_record = bytes[8..8 + 21].to_vec();
    bytes.extend_from_slice(&first_record[..15]);
    std::fs::write(&path, &bytes).unwrap();
    let o = ledger(&["verify", p(dir.path())]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains(&format!("torn tail of 15 bytes at offset {len}")),
        "{t}"
    );
    assert!(t.contains("1 with a torn tail"), "{t}");
    // The records before the tear still count.
    let files = read::read_all(dir.path()).unwrap();
    assert_eq!(Accounts::from_files(&files).spends.len(), 3);
}

#[test]
fn corrupt_middle_names_file_offset_and_seq() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let path = dir.path().join("spend-0.wal");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8 + 21] ^= 0x40; // first record's payload; the second record is intact
    std::fs::write(&path, &bytes).unwrap();
    let o = ledger(&["verify", p(dir.path())]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("spend-0.wal: ERROR") && t.contains("byte offset 8 (seq 1)"),
        "{t}"
    );
    assert!(
        t.contains("allocator.wal: ok"),
        "other files still checked: {t}"
    );
    // Every other command refuses the damaged ledger with the same location (bad input).
    let o = ledger(&["spend", p(dir.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("byte offset 8 (seq 1)"), "{}", text(&o));
}

#[test]
fn spend_report_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let o = ledger(&["spend", p(dir.path()), "--catalog", p(&catalog())]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    // Campaign id 1: granted 102000, returned 48000, spent 8000, outstanding 51000 (shard 0).
    let row = t
        .lines()
        .find(|l| l.starts_with("id 1 ") && !l.contains("lifetime"))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cols[3..11],
        &[
            "102000",
            "48000",
            "0",
            "8000",
            "51000",
            "3",
            "1000000000",
            "1010000000"
        ],
        "{t}"
    );
    assert!(row.ends_with("no"), "{row}");
    // Without a catalog: figures, no budget check.
    let o = ledger(&["spend", p(dir.path())]);
    assert!(o.status.success());
    assert!(text(&o).contains("budgets unknown"));
}

#[test]
fn over_budget_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Campaign #4 (id 5): daily budget 40000, bound 1 % = 400. Two grants consume 41400.
    clean_ledger(
        dir.path(),
        &[grant(0, 4, 40_000, 400), grant(1, 4, 1_000, 0)],
    );
    write_wal(
        dir.path(),
        "spend-2.wal",
        &[spend(0, 4, "big", 40_400), spend(1, 4, "more", 1_000)],
    );
    let o = ledger(&["spend", p(dir.path()), "--catalog", p(&catalog())]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("OVER"), "{t}");
    assert!(
        t.contains("campaign id 5 day") && t.contains("over budget: spent 41400"),
        "{t}"
    );
    // A wider bound (5 %) accepts it.
    let o = ledger(&[
        "spend",
        p(dir.path()),
        "--catalog",
        p(&catalog()),
        "--bound-ppm",
        "50000",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn double_charge_and_spend_beyond_lot_fail() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    // The same impression charged again on shard 1, and beyond what shard 1's lot kept.
    write_wal(dir.path(), "spend-9.wal", &[spend(1, 0, "r1", 2_500)]);
    let o = ledger(&["spend", p(dir.path())]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("double charge"), "{t}");
    assert!(t.contains("exceeds what the lot kept"), "{t}");
}

#[test]
fn export_csv_has_every_record() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let out = dir.path().join("ledger.csv");
    let o = ledger(&["export", p(dir.path()), "--csv", p(&out)]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 6 + 2 + 1, "{csv}");
    assert_eq!(lines[0], tools::ledger::export::HEADER);
    assert!(
        lines.iter().any(|l| l.starts_with("allocator.wal,6,")
            && l.contains(&format!(",return,1,1,0,{DAY},2025-11-08,"))
            && l.ends_with(",47000,1000,3000,,")),
        "{csv}"
    );
    let key = format!("{:016x}", impression_key("r3", "1"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("spend-1.wal,1,8,spend,1,1,0,") && l.ends_with(&key)),
        "{csv}"
    );
}

#[test]
fn reconcile_matches_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let ev = events(dir.path(), &[]);
    let o = ledger(&[
        "reconcile",
        p(dir.path()),
        "--events",
        p(&ev),
        "--catalog",
        p(&catalog()),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("matched in the ledger:    3 impressions, 8000 micros"),
        "{t}"
    );
    assert!(t.contains("not charged (other seat, house): 2"), "{t}");
    assert!(t.contains("no committed spend lost"), "{t}");
}

#[test]
fn reconcile_flags_lost_spend_unless_a_reclaim_covers_it() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    // r4 was served (2000 micros) but never recorded; shard 0's lot is still outstanding.
    let ev = events(dir.path(), &[event("r4", 2.0, "adcore", "1", false)]);
    let args = |d: &Path| {
        vec![
            "reconcile".to_string(),
            p(d).to_string(),
            "--events".into(),
            p(&ev).to_string(),
            "--catalog".into(),
            p(&catalog()).to_string(),
        ]
    };
    let o = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args(dir.path()))
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("lost committed spend: campaign id 1"), "{t}");
    assert!(t.contains("1 impressions worth 2000 micros"), "{t}");
    assert!(t.contains("still outstanding"), "{t}");

    // After a restart the allocator reclaimed shard 0's lot (51000, spent 5000 on record):
    // the unrecorded impression is covered.
    let dir2 = tempfile::tempdir().unwrap();
    clean_ledger(
        dir2.path(),
        &[
            LedgerRecord::Register { shard: 0, epoch: 2 },
            LedgerRecord::Reclaim {
                shard: 0,
                epoch: 1,
                campaign: 0,
                day: DAY,
                chunk: 50_000,
                slack: 1_000,
            },
        ],
    );
    let o = Command::new(env!("CARGO_BIN_EXE_ledger"))
        .args(args(dir2.path()))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("vs 46000 micros unrecorded consumed: covered"),
        "{t}"
    );
    // A ledger spend nobody received is fine (the response was lost).
    assert!(
        t.contains("ledger spends never served (response lost): 0"),
        "{t}"
    );
}

#[test]
fn reconcile_flags_a_cost_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    clean_ledger(dir.path(), &[]);
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, event("r1", 2.0, "adcore", "1", false)).unwrap();
    let o = ledger(&[
        "reconcile",
        p(dir.path()),
        "--events",
        p(&path),
        "--catalog",
        p(&catalog()),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("served as campaign id 1 for 2000 micros"), "{t}");
    assert!(
        t.contains("ledger spends never served (response lost): 2 impressions, 5500"),
        "{t}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let o = ledger(&["verify", p(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains(p(&missing)), "{}", text(&o));

    let empty = tempfile::tempdir().unwrap();
    let o = ledger(&["spend", p(empty.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no *.wal files"), "{}", text(&o));

    let not_wal = dir.path().join("notes.wal");
    std::fs::write(&not_wal, "hello, this is not a log\n").unwrap();
    let o = ledger(&["export", p(&not_wal), "--csv", "-"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("notes.wal: not a ledger WAL"),
        "{}",
        text(&o)
    );
    let o = ledger(&["verify", p(dir.path())]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A WAL whose payload is not a ledger record.
    let odd = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(FileStorage::open(odd.path(), "x.wal").unwrap()).unwrap();
    wal.append(&[99, 1, 2]);
    wal.commit();
    let o = ledger(&["verify", p(odd.path())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("byte offset 8 (seq 1) is not a ledger record: unknown record tag 99"),
        "{}",
        text(&o)
    );

    // A bad event log names file and line; a bad catalog names the file.
    let good = tempfile::tempdir().unwrap();
    clean_ledger(good.path(), &[]);
    let ev = dir.path().join("ev.jsonl");
    std::fs::write(
        &ev,
        event("r1", 2.5, "adcore", "1", false) + "{\"ts_ms\":\n",
    )
    .unwrap();
    let o = ledger(&[
        "reconcile",
        p(good.path()),
        "--events",
        p(&ev),
        "--catalog",
        p(&catalog()),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("ev.jsonl:2:"), "{}", text(&o));
    let o = ledger(&["spend", p(good.path()), "--catalog", p(&ev)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("ev.jsonl"), "{}", text(&o));
    // Missing required flag: clap's usage error.
    let o = ledger(&["reconcile", p(good.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--events"), "{}", text(&o));
}

#[test]
fn compacted_logs_count_their_snapshots() {
    use engine::budget::LocalCounters;
    use engine::budget::allocator::{AllocatorState, Lot};
    use engine::budget::durable::{encode_allocator_snapshot, encode_spend_snapshot};
    use engine::budget::subledger::{LineImage, SpendImage};
    let dir = tempfile::tempdir().unwrap();
    // Allocator at compaction: campaign #0 granted 80000 in all, 20000 returned, 10000 reported
    // spent by a closed lot, and shard 0 (epoch 1) still holding 50000.
    let mut st = AllocatorState {
        epochs: vec![1, 1],
        days: vec![DAY; 6],
        ..AllocatorState::default()
    };
    st.lots.insert(
        (0, 0, DAY),
        Lot {
            epoch: 1,
            chunk: 49_000,
            slack: 1_000,
        },
    );
    st.accts.insert(
        (0, DAY),
        engine::budget::allocator::Acct {
            granted: 80_000,
            returned: 20_000,
            spent: 10_000,
            reclaimed: 0,
        },
    );
    let (mut wal, _) = Wal::open(FileStorage::open(dir.path(), "allocator.wal").unwrap()).unwrap();
    wal.append(&LedgerRecord::Register { shard: 0, epoch: 1 }.encode());
    wal.commit();
    wal.compact(&encode_allocator_snapshot(&st, &LocalCounters::default()));
    // After it: the held lot is reclaimed (a restart).
    wal.append(
        &LedgerRecord::Reclaim {
            shard: 0,
            epoch: 1,
            campaign: 0,
            day: DAY,
            chunk: 49_000,
            slack: 1_000,
        }
        .encode(),
    );
    wal.commit();
    // Shard 0's spend log compacted: 12500 today, 30000 lifetime, key of r1 remembered.
    let img = SpendImage {
        lines: vec![LineImage {
            day: DAY,
            spent_day: 12_500,
            spent_life: 30_000,
            impressions: 9,
        }],
        keys: vec![impression_key("r1", "1")],
    };
    let (mut wal, _) = Wal::open(FileStorage::open(dir.path(), "spend-0.wal").unwrap()).unwrap();
    wal.compact(&encode_spend_snapshot(&img));
    wal.append(&spend(0, 0, "r2", 2_500).encode());
    wal.commit();

    let o = ledger(&["verify", p(dir.path())]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("snapshot seq"), "{}", text(&o));
    let o = ledger(&["spend", p(dir.path()), "--catalog", p(&catalog())]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let row = t
        .lines()
        .find(|l| l.starts_with("id 1 ") && l.contains("2025-11-08"))
        .unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    // granted 80000, returned 20000, reclaimed 50000, spent 12500 + 2500, nothing outstanding.
    assert_eq!(
        &cols[3..8],
        &["80000", "20000", "50000", "15000", "0"],
        "{t}"
    );
    assert!(t.contains("earlier"), "{t}");
    assert!(t.contains("compacted into a snapshot"), "{t}");
    // r1 is matched through the snapshot's keys; r2 through its record.
    let ev = dir.path().join("ev.jsonl");
    std::fs::write(
        &ev,
        event("r1", 2.5, "adcore", "1", false) + &event("r2", 2.5, "adcore", "1", false),
    )
    .unwrap();
    let o = ledger(&[
        "reconcile",
        p(dir.path()),
        "--events",
        p(&ev),
        "--catalog",
        p(&catalog()),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("matched in the ledger:    2 impressions"), "{t}");
}
