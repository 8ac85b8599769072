use super::*;
use proptest::prelude::*;

fn open_mem(s: MemStorage) -> (Wal<MemStorage>, Recovered) {
    Wal::open(s).expect("open")
}

fn payloads(rec: &Recovered) -> Vec<Vec<u8>> {
    rec.records.iter().map(|(_, p)| p.clone()).collect()
}

#[test]
fn fresh_log_writes_magic_and_round_trips() {
    let (mut wal, rec) = open_mem(MemStorage::new());
    assert_eq!(rec, Recovered::default());
    assert_eq!(wal.storage().bytes(), MAGIC);
    assert_eq!(wal.append(b"one"), 1);
    assert_eq!(wal.append(b""), 2);
    assert_eq!(wal.append(&[7u8; 1000]), 3);
    assert_eq!(wal.commit(), 3);
    let (wal2, rec) = open_mem(wal.into_storage());
    assert_eq!(
        rec.records,
        vec![(1, b"one".to_vec()), (2, vec![]), (3, vec![7u8; 1000])]
    );
    assert_eq!(rec.torn_tail_bytes, 0);
    assert_eq!(wal2.next_seq(), 4);
}

#[test]
fn group_commit_is_one_fsync() {
    let (mut wal, _) = open_mem(MemStorage::new());
    let before = wal.storage().syncs;
    for i in 0..100u32 {
        wal.append(&i.to_le_bytes());
    }
    assert_eq!(wal.commit(), 100);
    assert_eq!(wal.storage().syncs, before + 1);
    // Nothing new: no fsync.
    assert_eq!(wal.commit(), 100);
    assert_eq!(wal.storage().syncs, before + 1);
}

#[test]
fn uncommitted_records_are_lost_in_a_crash() {
    let (mut wal, _) = open_mem(MemStorage::new());
    wal.append(b"a");
    wal.commit();
    wal.append(b"b");
    wal.write_pending().unwrap();
    let mut s = wal.into_storage();
    s.crash(Tear::DropUnsynced);
    let (_, rec) = open_mem(s);
    assert_eq!(payloads(&rec), vec![b"a".to_vec()]);
    assert_eq!(rec.torn_tail_bytes, 0);
}

#[test]
fn every_torn_prefix_recovers_the_committed_prefix() {
    let (mut wal, _) = open_mem(MemStorage::new());
    wal.append(b"committed-1");
    wal.append(b"committed-2");
    wal.commit();
    wal.append(b"pending-3");
    wal.append(b"pending-4-longer-payload");
    wal.write_pending().unwrap();
    let image = wal.into_storage();
    let unsynced = image.unsynced_len();
    let rec3_end = (HEADER_BYTES + 9) as u64;
    for keep in 0..=unsynced {
        let mut s = image.clone();
        s.crash(Tear::KeepPrefix(keep));
        let (mut wal, rec) = open_mem(s);
        let got = payloads(&rec);
        let expect_records = if keep == unsynced {
            4
        } else if keep >= rec3_end {
            3
        } else {
            2
        };
        assert_eq!(got.len(), expect_records, "keep {keep}");
        assert_eq!(
            &got[..2],
            &[b"committed-1".to_vec(), b"committed-2".to_vec()]
        );
        let whole = match expect_records {
            2 => 0,
            3 => rec3_end,
            _ => unsynced,
        };
        assert_eq!(rec.torn_tail_bytes, keep - whole, "keep {keep}");
        // The torn tail was truncated durably: appending continues the sequence.
        let seq = wal.append(b"next");
        assert_eq!(seq, expect_records as u64 + 1);
        wal.commit();
        let (_, rec) = open_mem(wal.into_storage());
        assert_eq!(rec.torn_tail_bytes, 0);
        assert_eq!(rec.records.last().unwrap(), &(seq, b"next".to_vec()));
    }
}

#[test]
fn corrupt_middle_refuses_to_open_naming_offset_and_seq() {
    let (mut wal, _) = open_mem(MemStorage::new());
    for p in [b"first".as_slice(), b"second", b"third"] {
        wal.append(p);
    }
    wal.commit();
    let mut s = wal.into_storage();
    let second_at = MAGIC.len() + HEADER_BYTES + 5;
    s.corrupt(second_at + HEADER_BYTES + 2, 0x40); // payload byte of record 2
    let err = Wal::open(s.clone()).unwrap_err();
    match &err {
        WalError::Corrupt {
            offset,
            seq,
            next_valid_offset,
            ..
        } => {
            assert_eq!(*offset, second_at as u64);
            assert_eq!(*seq, 2);
            assert_eq!(*next_valid_offset, (second_at + HEADER_BYTES + 6) as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("byte offset {second_at}")) && msg.contains("seq 2"),
        "{msg}"
    );
    // Nothing was truncated by the refused open.
    assert_eq!(Wal::open(s).unwrap_err().to_string(), msg);
}

#[test]
fn corrupt_length_field_in_the_middle_is_not_mistaken_for_a_torn_tail() {
    let (mut wal, _) = open_mem(MemStorage::new());
    for i in 0..5u8 {
        wal.append(&[i; 10]);
    }
    wal.commit();
    let mut s = wal.into_storage();
    s.corrupt(MAGIC.len() + 3, 0x7f); // high byte of record 1's length: claims ~2 GB
    match Wal::open(s).unwrap_err() {
        WalError::Corrupt { offset, seq, .. } => assert_eq!((offset, seq), (8, 1)),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn corrupt_last_record_is_a_torn_tail() {
    let (mut wal, _) = open_mem(MemStorage::new());
    wal.append(b"keep");
    wal.append(b"damaged");
    wal.commit();
    let mut s = wal.into_storage();
    let last = s.bytes().len() - 1;
    s.corrupt(last, 1);
    let (_, rec) = open_mem(s);
    assert_eq!(payloads(&rec), vec![b"keep".to_vec()]);
    assert_eq!(rec.torn_tail_bytes, (HEADER_BYTES + 7) as u64);
}

#[test]
fn sequence_gap_is_refused() {
    let mut image = MAGIC.to_vec();
    encode_record(&mut image, KIND_RECORD, 1, b"a");
    encode_record(&mut image, KIND_RECORD, 3, b"c");
    let err = Wal::open(MemStorage::from_bytes(image)).unwrap_err();
    match err {
        WalError::SeqGap {
            offset,
            expected,
            found,
        } => {
            assert_eq!(
                (offset, expected, found),
                ((MAGIC.len() + HEADER_BYTES + 1) as u64, 2, 3)
            )
        }
        other => panic!("expected SeqGap, got {other:?}"),
    }
}

#[test]
fn wrong_magic_is_refused_and_torn_magic_is_a_fresh_log() {
    let err = Wal::open(MemStorage::from_bytes(b"PK\x03\x04zipfile".to_vec())).unwrap_err();
    assert!(matches!(err, WalError::NotAWal { .. }), "{err}");
    let (wal, rec) = open_mem(MemStorage::from_bytes(MAGIC[..3].to_vec()));
    assert_eq!(rec.torn_tail_bytes, 3);
    assert_eq!(wal.storage().bytes(), MAGIC);
}

#[test]
fn compaction_keeps_snapshot_and_later_records() {
    let (mut wal, _) = open_mem(MemStorage::new());
    for i in 0..50u32 {
        wal.append(&i.to_le_bytes());
    }
    wal.commit();
    wal.append(b"folded into the snapshot");
    let snap_seq = wal.compact(b"state@51");
    assert_eq!(snap_seq, 52);
    assert_eq!(wal.storage().replaces, 1);
    assert_eq!(wal.storage_len(), (MAGIC.len() + HEADER_BYTES + 8) as u64);
    assert_eq!(wal.append(b"after"), 53);
    wal.commit();
    let mut s = wal.into_storage();
    s.crash(Tear::DropUnsynced);
    let (mut wal, rec) = open_mem(s);
    assert_eq!(rec.snapshot, Some((52, b"state@51".to_vec())));
    assert_eq!(rec.records, vec![(53, b"after".to_vec())]);
    assert_eq!(wal.append(b"x"), 54);
    let scan = scan(wal.storage().bytes(), WalLimits::default()).unwrap();
    assert_eq!((scan.superseded_records, scan.next_seq), (0, 54));
}

/// Storage whose sync always fails, counting attempts (fsyncgate tests).
#[derive(Default)]
struct FailingSync {
    inner: MemStorage,
    sync_attempts: u64,
}

impl Storage for FailingSync {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_attempts += 1;
        if self.sync_attempts == 1 {
            return self.inner.sync(); // let open() create the log
        }
        Err(io::Error::from_raw_os_error(libc::EIO))
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.inner.read_all()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn replace(&mut self, _: &[u8]) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ENOSPC))
    }
}

#[test]
fn fsync_failure_poisons_and_is_never_retried() {
    let (mut wal, _) = Wal::open(FailingSync::default()).unwrap();
    wal.append(b"money");
    let err = wal.try_commit().unwrap_err();
    assert!(matches!(err, WalError::Fatal { op: "fsync", .. }), "{err}");
    assert!(err.to_string().contains("must abort"), "{err}");
    assert!(wal.is_poisoned());
    let attempts = wal.storage().sync_attempts;
    wal.append(b"more");
    assert!(matches!(wal.try_commit(), Err(WalError::Poisoned)));
    assert!(matches!(wal.try_compact(b"s"), Err(WalError::Poisoned)));
    assert_eq!(
        wal.storage().sync_attempts,
        attempts,
        "a poisoned WAL must not fsync again"
    );
}

#[test]
fn failed_compaction_is_fatal() {
    let (mut wal, _) = Wal::open(FailingSync::default()).unwrap();
    assert!(matches!(
        wal.try_compact(b"s"),
        Err(WalError::Fatal {
            op: "compaction",
            ..
        })
    ));
    assert!(wal.is_poisoned());
}

fn panicking_handler(err: &WalError) -> ! {
    panic!("fatal handler called: {err}")
}

#[test]
#[should_panic(expected = "fatal handler called: fatal WAL fsync error")]
fn commit_calls_the_fatal_handler() {
    let (mut wal, _) = Wal::open(FailingSync::default()).unwrap();
    wal.set_fatal_handler(panicking_handler);
    wal.append(b"money");
    wal.commit();
}

const ABORT_CHILD_ENV: &str = "ADCORE_WAL_ABORT_CHILD";

/// Runs in a child process (see `fsync_failure_aborts_the_process`): default handler.
#[test]
fn abort_child() {
    if std::env::var_os(ABORT_CHILD_ENV).is_none() {
        return; // only meaningful as the child of the test below
    }
    let (mut wal, _) = Wal::open(FailingSync::default()).unwrap();
    wal.append(b"money");
    wal.commit();
    unreachable!("commit must abort on an fsync error");
}

#[test]
fn fsync_failure_aborts_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "wal::tests::abort_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}: {stderr}",
        out.status
    );
    assert!(stderr.contains("fatal WAL fsync error"), "{stderr}");
}

#[test]
fn file_storage_round_trip_torn_tail_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let (mut wal, rec) = Wal::open(FileStorage::open(&data, "budget.wal").unwrap()).unwrap();
        assert!(rec.records.is_empty());
        wal.append(b"r1");
        wal.append(b"r2");
        wal.commit();
    }
    // A torn write: half a record appended behind the WAL's back.
    let path = data.join("budget.wal");
    let mut torn = Vec::new();
    encode_record(&mut torn, KIND_RECORD, 3, b"never acknowledged");
    torn.truncate(30);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&torn)
        .unwrap();
    let (mut wal, rec) = Wal::open(FileStorage::open(&data, "budget.wal").unwrap()).unwrap();
    assert_eq!(rec.records, vec![(1, b"r1".to_vec()), (2, b"r2".to_vec())]);
    assert_eq!(rec.torn_tail_bytes, 30);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), wal.storage_len());
    wal.append(b"r3");
    wal.compact(b"snap");
    wal.append(b"r5");
    wal.commit();
    drop(wal);
    // A compaction temp file left by a crash is ignored and removed.
    std::fs::write(data.join("budget.wal.compact.tmp"), b"half-written").unwrap();
    let (_, rec) = Wal::open(FileStorage::open(&data, "budget.wal").unwrap()).unwrap();
    assert_eq!(rec.snapshot, Some((4, b"snap".to_vec())));
    assert_eq!(rec.records, vec![(5, b"r5".to_vec())]);
    assert!(!data.join("budget.wal.compact.tmp").exists());
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Commit,
    WritePending,
    Compact(Vec<u8>),
    Crash(Option<u64>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Op::Append),
        2 => Just(Op::Commit),
        2 => Just(Op::WritePending),
        1 => proptest::collection::vec(any::<u8>(), 0..32).prop_map(Op::Compact),
        1 => proptest::option::of(0u64..200).prop_map(Op::Crash),
    ]
}

/// Model of what a reader may see: `durable` is the committed history since the last snapshot
/// (guaranteed to survive), `written` additionally holds records written but unsynced.
#[derive(Default, Clone)]
struct Model {
    snapshot: Option<Vec<u8>>,
    durable: Vec<Vec<u8>>,
    written: Vec<Vec<u8>>,
    buffered: Vec<Vec<u8>>,
}

fn check_recovered(model: &Model, rec: &Recovered) {
    assert_eq!(rec.snapshot.as_ref().map(|s| &s.1), model.snapshot.as_ref());
    let got = payloads(rec);
    assert!(got.len() >= model.durable.len(), "lost committed records");
    assert!(
        got.len() <= model.written.len(),
        "recovered records never written"
    );
    assert_eq!(
        got[..],
        model.written[..got.len()],
        "recovered records differ from the log"
    );
    let seqs: Vec<u64> = rec.records.iter().map(|r| r.0).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "non-contiguous seqs {seqs:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_ops_and_crashes_recover_exactly_the_committed_prefix(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        let (mut wal, _) = open_mem(MemStorage::new());
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Append(p) => { wal.append(&p); m.buffered.push(p); }
                Op::WritePending => {
                    wal.write_pending().unwrap();
                    m.written.append(&mut m.buffered);
                }
                Op::Commit => {
                    wal.commit();
                    m.written.append(&mut m.buffered);
                    m.durable = m.written.clone();
                }
                Op::Compact(s) => {
                    wal.compact(&s);
                    m = Model { snapshot: Some(s), ..Model::default() };
                }
                Op::Crash(tear) => {
                    let mut s = wal.into_storage();
                    s.crash(tear.map_or(Tear::DropUnsynced, Tear::KeepPrefix));
                    let (w, rec) = open_mem(s);
                    check_recovered(&m, &rec);
                    let n = rec.records.len();
                    m.written.truncate(n);
                    m.durable = m.written.clone();
                    m.buffered.clear();
                    wal = w;
                }
            }
        }
        wal.commit();
        m.written.append(&mut m.buffered);
        m.durable = m.written.clone();
        let (_, rec) = open_mem(wal.into_storage());
        check_recovered(&m, &rec);
        prop_assert_eq!(rec.torn_tail_bytes, 0);
    }

    #[test]
    fn corrupted_bytes_never_panic_and_never_invent_records(
        records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 1..20),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), 1u8..=255), 1..4),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
    ) {
        let (mut wal, _) = open_mem(MemStorage::new());
        for r in &records { wal.append(r); }
        wal.commit();
        let mut bytes = wal.into_storage().bytes().to_vec();
        for (i, x) in flips { let at = i.index(bytes.len()); bytes[at] ^= x; }
        if let Some(c) = cut { let at = c.index(bytes.len() + 1); bytes.truncate(at); }
        match Wal::open(MemStorage::from_bytes(bytes)) {
            Ok((_, rec)) => {
                let got = payloads(&rec);
                prop_assert!(got.len() <= records.len());
                prop_assert_eq!(&got[..], &records[..got.len()]);
            }
            Err(WalError::Corrupt { .. } | WalError::SeqGap { .. } | WalError::NotAWal { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn scan_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut with_magic = MAGIC.to_vec();
        with_magic.extend_from_slice(&bytes);
        let _ = scan(&bytes, WalLimits::default());
        let _ = scan(&with_magic, WalLimits { max_record_bytes: 64 });
    }
}
