use super::*;
use crate::budget::allocator::{Reply, Request};
use crate::budget::source::Sizing;
use crate::wal::{MemStorage, Tear};

const DAY: i64 = 86_400_000;
const NOW: i64 = 100 * DAY + 10_000;

fn inputs(shards: u64) -> AllocatorInputs {
    AllocatorInputs {
        budgets: vec![
            Budget {
                daily_micros: 1_000_000,
                lifetime_micros: 5_000_000,
            };
            2
        ],
        calendar: Arc::new(Calendar::fixed(&[0, 3_600])),
        cfg: AllocatorConfig {
            sizing: Sizing {
                bound_ppm: 10_000,
                chunk_ppm: 100_000,
                chunk_micros_min: 1,
                shrink_below_ppm: 100_000,
                shrink_divisor: 10,
                shards,
            },
            stale_timeout_ms: 10_000,
            dead_zone_ms: 1_000,
        },
    }
}

/// Registers both shards and grants a few lots, returning one; records go to `out`.
fn drive(a: &mut Allocator<LocalCounters>, out: &mut Vec<LedgerRecord>) {
    for shard in 0..2 {
        let Reply::Registered { epoch } = a.on_request(NOW, Request::Register { shard }, out)
        else {
            panic!("not registered")
        };
        for campaign in 0..2 {
            let refill = Request::Refill {
                shard,
                epoch,
                campaign,
                day: 100,
                want_slack: true,
                need: 0,
            };
            assert!(matches!(
                a.on_request(NOW, refill, out),
                Reply::Grant { .. }
            ));
        }
    }
    let ret = Request::Return {
        shard: 1,
        epoch: 1,
        campaign: 0,
        day: 100,
        chunk: 40_000,
        slack: 5_000,
        spent: 60_000,
    };
    assert_eq!(
        a.on_request(NOW, ret, out),
        Reply::Returned { applied: true }
    );
}

fn fresh(shards: u64) -> Allocator<LocalCounters> {
    let i = inputs(shards);
    Allocator::new(LocalCounters::default(), i.budgets, i.calendar, i.cfg, NOW)
}

#[test]
fn allocator_snapshot_round_trips_and_garbage_is_an_error() {
    let mut a = fresh(2);
    let mut out = Vec::new();
    drive(&mut a, &mut out);
    let snap = encode_allocator_snapshot(a.state(), a.source());
    let (state, counters) = decode_allocator_snapshot(&snap).unwrap();
    assert_eq!(&state, a.state());
    assert_eq!(&counters, a.source());
    for cut in 0..snap.len() {
        assert!(
            decode_allocator_snapshot(&snap[..cut]).is_err(),
            "cut {cut}"
        );
    }
    let mut long = snap.clone();
    long.push(0);
    assert!(decode_allocator_snapshot(&long).is_err());
    // A count larger than the bytes left is refused before any allocation.
    assert!(decode_allocator_snapshot(&[SNAP_ALLOCATOR, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
}

#[test]
fn spend_snapshot_round_trips() {
    let img = SpendImage {
        lines: vec![
            LineImage {
                day: 100,
                spent_day: 5,
                spent_life: 70,
                impressions: 3,
            },
            LineImage {
                day: -3,
                ..LineImage::default()
            },
        ],
        keys: vec![1, u64::MAX, 77],
    };
    let b = encode_spend_snapshot(&img);
    assert_eq!(decode_spend_snapshot(&b).unwrap(), img);
    assert!(decode_spend_snapshot(&b[..b.len() - 1]).is_err());
    assert_eq!(
        decode_spend_snapshot(&[SNAP_ALLOCATOR]),
        Err(RecordError::UnknownTag(SNAP_ALLOCATOR))
    );
}

/// A log with the records of `drive`, committed.
fn driven_log() -> (Allocator<LocalCounters>, MemStorage) {
    let (mut wal, _) = Wal::open(MemStorage::new()).unwrap();
    let mut a = fresh(2);
    let mut out = Vec::new();
    drive(&mut a, &mut out);
    append_all(&mut wal, &out);
    wal.commit();
    (a, wal.into_storage())
}

#[test]
fn restart_recovery_reclaims_every_outstanding_lot_durably() {
    let (live, storage) = driven_log();
    assert!(!live.state().lots.is_empty());
    let (a, wal, report) = recover_allocator(storage, "a.wal", inputs(2), NOW, true).unwrap();
    assert_eq!(
        report.reclaimed_lots,
        live.state().lots.len() as u64,
        "{report:?}"
    );
    assert!(a.state().lots.is_empty());
    // The reclaims were committed: a crash right now loses nothing.
    let mut storage = wal.into_storage();
    storage.crash(Tear::DropUnsynced);
    let (b, _, report) = recover_allocator(storage, "a.wal", inputs(2), NOW, false).unwrap();
    assert_eq!(b.state(), a.state());
    assert_eq!(b.source(), a.source());
    assert_eq!(report.reclaimed_lots, 0);
    // Everything granted and not returned is counted as spent: under-delivery only.
    let acct = b.state().accts[&(0, 100)];
    assert_eq!(acct.granted, acct.returned + acct.spent + acct.reclaimed);
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let (live, storage) = driven_log();
    let (mut wal, _) = Wal::open(storage).unwrap();
    let mut a = fresh(2);
    // Replay so that a new grant continues the same history.
    let mut out = Vec::new();
    drive(&mut a, &mut out);
    assert_eq!(a.state(), live.state());
    let refill = Request::Refill {
        shard: 0,
        epoch: 1,
        campaign: 1,
        day: 100,
        want_slack: false,
        need: 0,
    };
    let mut more = Vec::new();
    a.on_request(NOW, refill, &mut more);
    append_all(&mut wal, &more);
    wal.write_pending().unwrap();
    let mut storage = wal.into_storage();
    storage.crash(Tear::KeepPrefix(5));
    let (b, _, report) = recover_allocator(storage, "a.wal", inputs(2), NOW, false).unwrap();
    assert_eq!(report.torn_tail_bytes, 5);
    assert_eq!(
        b.state(),
        live.state(),
        "nothing of the torn record survives"
    );
}

#[test]
fn a_corrupt_middle_names_file_and_offset_and_a_foreign_log_is_refused() {
    let (_, storage) = driven_log();
    let mut bytes = storage.bytes().to_vec();
    bytes[8 + 21 + 1] ^= 1;
    let err = recover_allocator(
        MemStorage::from_bytes(bytes),
        "/x/allocator.wal",
        inputs(2),
        NOW,
        true,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.starts_with("budget WAL /x/allocator.wal: corrupt WAL record at byte offset 8 (seq 1)"),
        "{err}"
    );
    // The log of a 2-shard engine started with 1 shard: refused, not a panic.
    let (_, storage) = driven_log();
    let err = recover_allocator(storage, "a.wal", inputs(1), NOW, true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("does not fit this configuration (1 shards"),
        "{err}"
    );
}

#[test]
fn compacted_allocator_log_recovers_the_same_state() {
    let (live, storage) = driven_log();
    let (mut wal, _) = Wal::open(storage).unwrap();
    wal.compact(&encode_allocator_snapshot(live.state(), live.source()));
    let (a, wal, report) =
        recover_allocator(wal.into_storage(), "a", inputs(2), NOW, false).unwrap();
    assert!(report.snapshot && report.records == 0, "{report:?}");
    assert_eq!(a.state(), live.state());
    assert_eq!(a.source(), live.source());
    // Records after the snapshot are replayed on top of it.
    let mut a = a;
    let mut wal = wal;
    let mut out = Vec::new();
    a.reclaim_all(&mut out);
    append_all(&mut wal, &out);
    wal.commit();
    let (b, _, report) = recover_allocator(wal.into_storage(), "a", inputs(2), NOW, false).unwrap();
    assert_eq!(report.records, out.len() as u64);
    assert_eq!(b.state(), a.state());
}

fn spend_cfg() -> SubLedgerConfig {
    SubLedgerConfig {
        shard: 0,
        low_water_ppm: 500_000,
        refill_timeout_ms: 1_000,
        refill_retry_ms: 200,
        heartbeat_ms: 1_000,
        keys_max: 64,
        journal_max: 1_000,
    }
}

#[test]
fn spend_log_recovers_spend_and_keys_through_a_compaction() {
    let i = inputs(1);
    let mut a = Allocator::new(
        LocalCounters::default(),
        i.budgets,
        i.calendar.clone(),
        i.cfg,
        NOW,
    );
    let mut l = SubLedger::new(spend_cfg(), i.calendar.clone(), NOW);
    let mut reqs = Vec::new();
    let mut recs = Vec::new();
    for _ in 0..3 {
        l.poll(NOW, &mut reqs);
        for r in reqs.drain(..) {
            let reply = a.on_request(NOW, r, &mut recs);
            l.on_reply(NOW, reply);
        }
    }
    let (mut wal, _) = Wal::open(MemStorage::new()).unwrap();
    for k in 0..10u64 {
        l.try_charge(NOW, (k % 2) as usize, 1_000, k).unwrap();
    }
    let journal: Vec<_> = l.journal().collect();
    append_all(&mut wal, &journal);
    wal.compact(&encode_spend_snapshot(&l.image()));
    for k in 10..14u64 {
        l.try_charge(NOW, 0, 500, k).unwrap();
    }
    let journal: Vec<_> = l.journal().collect();
    append_all(&mut wal, &journal);
    wal.commit();
    let (r, _, report) =
        recover_spend(wal.into_storage(), "s", spend_cfg(), i.calendar, NOW).unwrap();
    assert!(report.snapshot && report.records == 4, "{report:?}");
    for c in 0..2 {
        assert_eq!(r.line(c).spent_today_micros, l.line(c).spent_today_micros);
        assert_eq!(
            r.line(c).spent_lifetime_micros,
            l.line(c).spent_lifetime_micros
        );
        assert_eq!(r.line(c).impressions, l.line(c).impressions);
    }
    assert_eq!(r.line(0).spent_today_micros, 5 * 1_000 + 4 * 500);
    // Keys from before and after the snapshot are both remembered.
    assert_eq!(r.image().keys.len(), 14);
}

/// The engine's writer: group commit on its thread, stats, compaction past the threshold, and
/// the file recovers to the same state.
#[test]
fn wal_handle_commits_off_thread_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let (storage, path) = open_file(dir.path(), ALLOCATOR_WAL).unwrap();
    let (mut a, wal, _) = recover_allocator(storage, &path, inputs(2), NOW, true).unwrap();
    let h = WalHandle::spawn("allocator", wal, 1024).unwrap();
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        drive(&mut a, &mut out);
        let n = out.len() as u64;
        h.queue(out.drain(..));
        h.commit().await;
        let s = h.stats();
        assert_eq!((s.commits, s.records, s.durable_seq), (1, n, n));
        assert!(s.bytes > 0 && s.size_bytes == 8 + s.bytes);
        h.commit().await; // nothing queued: no write
        assert_eq!(h.stats().commits, 1);
        // Many small commits, two in flight at once: grouped, all durable.
        for round in 0..60 {
            let mut recs = Vec::new();
            a.tick(NOW + 1 + round, &mut recs);
            let hb = Request::Heartbeat { shard: 0, epoch: 1 };
            a.on_request(NOW, hb, &mut recs);
            let refill = Request::Refill {
                shard: 0,
                epoch: 1,
                campaign: 1,
                day: 100,
                want_slack: false,
                need: 0,
            };
            if let Reply::Grant { chunk, slack, .. } = a.on_request(NOW, refill, &mut recs) {
                let ret = Request::Return {
                    shard: 0,
                    epoch: 1,
                    campaign: 1,
                    day: 100,
                    chunk,
                    slack,
                    spent: 0,
                };
                a.on_request(NOW, ret, &mut recs);
            }
            h.queue(recs);
            let (x, y) = (h.commit(), h.commit());
            futures_util::future::join(x, y).await;
        }
        assert!(h.stats().size_bytes > 1024, "{:?}", h.stats());
        h.compact_if_due(|| encode_allocator_snapshot(a.state(), a.source()))
            .await;
        let s = h.stats();
        assert_eq!(s.compactions, 1, "{s:?}");
        assert!(s.size_bytes < 1024, "{s:?}");
    });
    drop(h);
    let (storage, path) = open_file(dir.path(), ALLOCATOR_WAL).unwrap();
    let (b, _, report) = recover_allocator(storage, &path, inputs(2), NOW, false).unwrap();
    assert!(report.snapshot, "{report:?}");
    assert_eq!(b.state(), a.state());
    assert_eq!(b.source(), a.source());
    // A second process may not open the same directory while the first holds the lock.
    let _lock = lock_dir(dir.path()).unwrap();
    let err = lock_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("LOCK") && err.contains("another"), "{err}");
}
