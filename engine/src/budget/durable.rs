//! Durability of the budget: joins the pure state machines ([`Allocator`], [`SubLedger`]) to the
//! write-ahead log ([`crate::wal`]).
//!
//! Shared-nothing layout: the allocator (shard 0) writes its own log ([`ALLOCATOR_WAL`]:
//! Register, Grant, Return, Reclaim, PeriodRoll) and every shard writes its own spend log
//! ([`spend_wal_name`]: one Spend record per charged impression). No log is written by two shards,
//! so no log needs a lock or a cross-core queue; a spend record never has to reach shard 0.
//!
//! Owns: recovery of both kinds of log ([`recover_allocator`], [`recover_spend`]), their snapshot
//! encodings (compaction), and the engine's group-commit writer ([`WalHandle`]: a shard queues
//! records during a round and awaits one write + one fdatasync done by a dedicated writer thread,
//! so the shard's event loop never blocks on fsync). The only budget module that knows files and
//! threads. Must not know: HTTP, the mesh, config files.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::allocator::{Allocator, AllocatorConfig, AllocatorState, Lot};
use super::calendar::Calendar;
use super::record::{LedgerRecord, Reader, RecordError, put, zigzag};
use super::source::{Budget, LocalCounters, Taken};
use super::subledger::{LineImage, SpendImage, SubLedger, SubLedgerConfig};
use crate::wal::{FileStorage, Storage, Wal, WalError};

/// File name of the allocator's log in the WAL directory.
pub const ALLOCATOR_WAL: &str = "allocator.wal";

/// File name of shard `shard`'s spend log in the WAL directory.
pub fn spend_wal_name(shard: usize) -> String {
    format!("spend-{shard}.wal")
}

/// Why a budget log could not be recovered. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("budget WAL {path}: {source}")]
    Wal {
        path: String,
        #[source]
        source: WalError,
    },
    #[error("budget WAL {path}: record seq {seq}: {source}")]
    Record {
        path: String,
        seq: u64,
        #[source]
        source: RecordError,
    },
    #[error("budget WAL {path}: snapshot seq {seq}: {source}")]
    Snapshot {
        path: String,
        seq: u64,
        #[source]
        source: RecordError,
    },
    #[error("budget WAL {path}: record seq {seq}: {what}")]
    Mismatch {
        path: String,
        seq: u64,
        what: String,
    },
    #[error("budget WAL {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------------
// Snapshots (compaction payloads)

const SNAP_ALLOCATOR: u8 = 0xA1;
const SNAP_SPEND: u8 = 0xA2;

/// Encodes the allocator's durable state and counters as one snapshot payload.
pub fn encode_allocator_snapshot(state: &AllocatorState, counters: &LocalCounters) -> Vec<u8> {
    let mut o = vec![SNAP_ALLOCATOR];
    put(&mut o, state.epochs.len() as u64);
    for &e in &state.epochs {
        put(&mut o, u64::from(e));
    }
    put(&mut o, state.days.len() as u64);
    for &d in &state.days {
        put(&mut o, zigzag(d));
    }
    put(&mut o, state.lots.len() as u64);
    for (&(c, s, d), l) in &state.lots {
        for v in [u64::from(c), u64::from(s), zigzag(d), u64::from(l.epoch)] {
            put(&mut o, v);
        }
        put(&mut o, l.chunk);
        put(&mut o, l.slack);
    }
    put(&mut o, state.accts.len() as u64);
    for (&(c, d), a) in &state.accts {
        for v in [u64::from(c), zigzag(d), a.granted, a.returned, a.spent] {
            put(&mut o, v);
        }
        put(&mut o, a.reclaimed);
    }
    let (day, life) = counters.parts();
    put(&mut o, day.len() as u64);
    for ((c, d), t) in day {
        for v in [u64::from(c), zigzag(d), t.chunk, t.slack] {
            put(&mut o, v);
        }
    }
    put(&mut o, life.len() as u64);
    for (c, t) in life {
        for v in [u64::from(c), t.chunk, t.slack] {
            put(&mut o, v);
        }
    }
    o
}

/// A count read from a snapshot, bounded by the bytes left (each item takes at least one byte).
fn count(r: &mut Reader<'_>, field: &'static str) -> Result<usize, RecordError> {
    let n = r.u64(field)?;
    if n > r.buf.len() as u64 {
        return Err(RecordError::Field {
            kind: r.kind,
            field,
        });
    }
    Ok(n as usize)
}

/// Decodes [`encode_allocator_snapshot`]; never panics on bad bytes.
pub fn decode_allocator_snapshot(b: &[u8]) -> Result<(AllocatorState, LocalCounters), RecordError> {
    let (&tag, rest) = b.split_first().ok_or(RecordError::Empty)?;
    if tag != SNAP_ALLOCATOR {
        return Err(RecordError::UnknownTag(tag));
    }
    let mut r = Reader {
        buf: rest,
        kind: "allocator_snapshot",
    };
    let mut st = AllocatorState::default();
    for _ in 0..count(&mut r, "epochs")? {
        st.epochs.push(r.u32("epoch")?);
    }
    for _ in 0..count(&mut r, "days")? {
        st.days.push(r.day()?);
    }
    for _ in 0..count(&mut r, "lots")? {
        let key = (r.u32("campaign")?, r.shard()?, r.day()?);
        let lot = Lot {
            epoch: r.u32("epoch")?,
            chunk: r.u64("chunk")?,
            slack: r.u64("slack")?,
        };
        st.lots.insert(key, lot);
    }
    for _ in 0..count(&mut r, "accts")? {
        let key = (r.u32("campaign")?, r.day()?);
        let a = super::allocator::Acct {
            granted: r.u64("granted")?,
            returned: r.u64("returned")?,
            spent: r.u64("spent")?,
            reclaimed: r.u64("reclaimed")?,
        };
        st.accts.insert(key, a);
    }
    let mut day = Vec::new();
    for _ in 0..count(&mut r, "day_counters")? {
        let key = (r.u32("campaign")?, r.day()?);
        day.push((key, taken(&mut r)?));
    }
    let mut life = Vec::new();
    for _ in 0..count(&mut r, "life_counters")? {
        let c = r.u32("campaign")?;
        life.push((c, taken(&mut r)?));
    }
    r.end()?;
    Ok((st, LocalCounters::from_parts(day, life)))
}

fn taken(r: &mut Reader<'_>) -> Result<Taken, RecordError> {
    Ok(Taken {
        chunk: r.u64("chunk")?,
        slack: r.u64("slack")?,
    })
}

/// Encodes a shard's spend image as one snapshot payload.
pub fn encode_spend_snapshot(img: &SpendImage) -> Vec<u8> {
    let mut o = Vec::with_capacity(16 + img.lines.len() * 16 + img.keys.len() * 9);
    o.push(SNAP_SPEND);
    put(&mut o, img.lines.len() as u64);
    for l in &img.lines {
        for v in [zigzag(l.day), l.spent_day, l.spent_life, l.impressions] {
            put(&mut o, v);
        }
    }
    put(&mut o, img.keys.len() as u64);
    for &k in &img.keys {
        put(&mut o, k);
    }
    o
}

/// Decodes [`encode_spend_snapshot`]; never panics on bad bytes.
pub fn decode_spend_snapshot(b: &[u8]) -> Result<SpendImage, RecordError> {
    let (&tag, rest) = b.split_first().ok_or(RecordError::Empty)?;
    if tag != SNAP_SPEND {
        return Err(RecordError::UnknownTag(tag));
    }
    let mut r = Reader {
        buf: rest,
        kind: "spend_snapshot",
    };
    let mut img = SpendImage::default();
    for _ in 0..count(&mut r, "lines")? {
        img.lines.push(LineImage {
            day: r.day()?,
            spent_day: r.u64("spent_day")?,
            spent_life: r.u64("spent_life")?,
            impressions: r.u64("impressions")?,
        });
    }
    for _ in 0..count(&mut r, "keys")? {
        img.keys.push(r.u64("key")?);
    }
    r.end()?;
    Ok(img)
}

// ---------------------------------------------------------------------------------------------
// Recovery

/// What recovery found and did, for the log line and `/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records replayed (after the snapshot, if any).
    pub records: u64,
    /// A snapshot was loaded.
    pub snapshot: bool,
    /// Bytes of a torn tail that were truncated.
    pub torn_tail_bytes: u64,
    /// Outstanding lots counted as spent at start (allocator only).
    pub reclaimed_lots: u64,
}

/// Decodes the records of a recovered log.
fn decode_all(path: &str, recs: &[(u64, Vec<u8>)]) -> Result<Vec<LedgerRecord>, DurableError> {
    recs.iter()
        .map(|(seq, p)| {
            LedgerRecord::decode(p).map_err(|source| DurableError::Record {
                path: path.to_string(),
                seq: *seq,
                source,
            })
        })
        .collect()
}

/// The first record that does not fit `shards` shards and `campaigns` campaigns (the log was
/// written under another configuration; replaying it would index out of range).
fn check_fits(
    path: &str,
    recs: &[(u64, Vec<u8>)],
    decoded: &[LedgerRecord],
    shards: usize,
    campaigns: usize,
) -> Result<(), DurableError> {
    for ((seq, _), r) in recs.iter().zip(decoded) {
        let (shard, campaign) = match *r {
            LedgerRecord::Register { shard, .. } => (Some(shard), None),
            LedgerRecord::PeriodRoll { campaign, .. } => (None, Some(campaign)),
            LedgerRecord::Grant {
                shard, campaign, ..
            }
            | LedgerRecord::Return {
                shard, campaign, ..
            }
            | LedgerRecord::Reclaim {
                shard, campaign, ..
            }
            | LedgerRecord::Spend {
                shard, campaign, ..
            } => (Some(shard), Some(campaign)),
        };
        let bad_shard = shard.is_some_and(|s| usize::from(s) >= shards);
        let bad_campaign = campaign.is_some_and(|c| c as usize >= campaigns);
        if bad_shard || bad_campaign {
            return Err(DurableError::Mismatch {
                path: path.to_string(),
                seq: *seq,
                what: format!(
                    "{} record for shard {shard:?} campaign {campaign:?} does not fit this \
                     configuration ({shards} shards, {campaigns} campaigns): start with the \
                     shard count and catalog that wrote the log, or move the log away",
                    r.kind()
                ),
            });
        }
    }
    Ok(())
}

/// The allocator's static inputs.
#[derive(Clone)]
pub struct AllocatorInputs {
    pub budgets: Vec<Budget>,
    pub calendar: Arc<Calendar>,
    pub cfg: AllocatorConfig,
}

/// Opens and replays the allocator's log. With `reclaim_outstanding` (the whole process
/// restarted, so no shard still holds its lots) every outstanding lot is counted as spent with
/// Reclaim records, committed before this returns: a restart can only under-deliver.
pub fn recover_allocator<S: Storage>(
    storage: S,
    path: &str,
    inputs: AllocatorInputs,
    now_ms: i64,
    reclaim_outstanding: bool,
) -> Result<(Allocator<LocalCounters>, Wal<S>, RecoveryReport), DurableError> {
    let wal_err = |source| DurableError::Wal {
        path: path.to_string(),
        source,
    };
    let (mut wal, rec) = Wal::open(storage).map_err(wal_err)?;
    let shards = inputs.cfg.sizing.shards as usize;
    let campaigns = inputs.budgets.len();
    let decoded = decode_all(path, &rec.records)?;
    check_fits(path, &rec.records, &decoded, shards, campaigns)?;
    let mut report = RecoveryReport {
        records: decoded.len() as u64,
        snapshot: rec.snapshot.is_some(),
        torn_tail_bytes: rec.torn_tail_bytes,
        reclaimed_lots: 0,
    };
    let AllocatorInputs {
        budgets,
        calendar,
        cfg,
    } = inputs;
    let mut alloc = match &rec.snapshot {
        Some((seq, bytes)) => {
            let snap_err = |what: String| DurableError::Mismatch {
                path: path.to_string(),
                seq: *seq,
                what,
            };
            let (state, counters) =
                decode_allocator_snapshot(bytes).map_err(|source| DurableError::Snapshot {
                    path: path.to_string(),
                    seq: *seq,
                    source,
                })?;
            if state.epochs.len() != shards || state.days.len() != campaigns {
                return Err(snap_err(format!(
                    "snapshot of {} shards and {} campaigns does not fit this configuration \
                     ({shards} shards, {campaigns} campaigns)",
                    state.epochs.len(),
                    state.days.len()
                )));
            }
            Allocator::restore(
                counters,
                state,
                budgets,
                calendar,
                cfg,
                now_ms,
                decoded.iter(),
            )
        }
        None => Allocator::recover(
            LocalCounters::default(),
            budgets,
            calendar,
            cfg,
            now_ms,
            decoded.iter(),
        ),
    };
    if reclaim_outstanding {
        let mut out = Vec::new();
        alloc.reclaim_all(&mut out);
        report.reclaimed_lots = out.len() as u64;
        append_all(&mut wal, &out);
        wal.try_commit().map_err(wal_err)?;
    }
    Ok((alloc, wal, report))
}

/// Opens and replays one shard's spend log: spend per campaign (today and lifetime) and the
/// idempotency keys it remembers.
pub fn recover_spend<S: Storage>(
    storage: S,
    path: &str,
    cfg: SubLedgerConfig,
    calendar: Arc<Calendar>,
    now_ms: i64,
) -> Result<(SubLedger, Wal<S>, RecoveryReport), DurableError> {
    let (wal, rec) = Wal::open(storage).map_err(|source| DurableError::Wal {
        path: path.to_string(),
        source,
    })?;
    let decoded = decode_all(path, &rec.records)?;
    let image = match &rec.snapshot {
        Some((seq, bytes)) => {
            decode_spend_snapshot(bytes).map_err(|source| DurableError::Snapshot {
                path: path.to_string(),
                seq: *seq,
                source,
            })?
        }
        None => SpendImage::default(),
    };
    let ledger = SubLedger::recover_from(cfg, calendar, now_ms, &image, decoded.iter());
    let report = RecoveryReport {
        records: decoded.len() as u64,
        snapshot: rec.snapshot.is_some(),
        torn_tail_bytes: rec.torn_tail_bytes,
        reclaimed_lots: 0,
    };
    Ok((ledger, wal, report))
}

/// Appends every record to the WAL's pending buffer (not yet durable).
pub fn append_all<S: Storage>(wal: &mut Wal<S>, records: &[LedgerRecord]) {
    let mut buf = Vec::with_capacity(32);
    for r in records {
        buf.clear();
        r.encode_into(&mut buf);
        wal.append(&buf);
    }
}

/// Opens a file-backed log, mapping errors to the file's path.
pub fn open_file(dir: &Path, name: &str) -> Result<(FileStorage, String), DurableError> {
    let path = dir.join(name).display().to_string();
    let s = FileStorage::open(dir, name).map_err(|source| DurableError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((s, path))
}

/// Takes an exclusive lock on `dir/LOCK` for the life of the returned file: two processes must
/// never write the same logs.
pub fn lock_dir(dir: &Path) -> Result<std::fs::File, DurableError> {
    use std::os::fd::AsRawFd;
    let path: PathBuf = dir.join("LOCK");
    let io = |source| DurableError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io(std::io::Error::other(
            "locked by another process (another adserver uses this budget.wal_dir)",
        )));
    }
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// Group commit off the event loop

/// Counters of one log, as the shard that owns it sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Group commits (each one write + one fdatasync) and compactions done.
    pub commits: u64,
    pub compactions: u64,
    /// Record bytes written (framing included).
    pub bytes: u64,
    /// Records made durable.
    pub records: u64,
    /// Total and largest time in write + fdatasync, nanoseconds.
    pub fsync_ns: u64,
    pub fsync_ns_max: u64,
    /// Highest durable sequence number, and the log's size in bytes.
    pub durable_seq: u64,
    pub size_bytes: u64,
}

/// What the writer thread did with one job.
struct Done {
    durable_seq: u64,
    bytes: u64,
    fsync_ns: u64,
    size_bytes: u64,
    /// The job's record buffer, emptied, for reuse.
    spare: Vec<LedgerRecord>,
}

/// A one-shot result the writer thread fills and any number of local tasks await.
struct Completion {
    upto: u64,
    compaction: bool,
    state: Mutex<JobState>,
}

#[derive(Default)]
struct JobState {
    completed: bool,
    /// Taken by the first waiter that applies it.
    done: Option<Done>,
    wakers: Vec<Waker>,
}

impl Completion {
    fn complete(&self, done: Done) {
        let wakers = {
            let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
            g.completed = true;
            g.done = Some(done);
            std::mem::take(&mut g.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
}

/// Resolves once the writer thread completed the job.
struct Wait(Arc<Completion>);

impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        if g.completed {
            return Poll::Ready(());
        }
        g.wakers.push(cx.waker().clone());
        Poll::Pending
    }
}

struct Job {
    records: Vec<LedgerRecord>,
    snapshot: Option<Vec<u8>>,
    done: Arc<Completion>,
}

/// The shard's end of one log: records are queued during a round; [`WalHandle::commit`] hands
/// everything queued to the log's writer thread, which does one write + one fdatasync (the
/// aborting [`Wal::commit`]: a failed fsync ends the process), and resolves when it is durable.
/// Commits requested while one is in flight are grouped into the next.
pub struct WalHandle {
    name: String,
    tx: mpsc::SyncSender<Job>,
    queue: RefCell<Vec<LedgerRecord>>,
    spare: RefCell<Vec<LedgerRecord>>,
    queued_total: Cell<u64>,
    durable_total: Cell<u64>,
    in_flight: RefCell<Option<Arc<Completion>>>,
    stats: Cell<WalStats>,
    compact_bytes: u64,
}

impl std::fmt::Debug for WalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalHandle")
            .field("name", &self.name)
            .field("stats", &self.stats.get())
            .finish()
    }
}

impl WalHandle {
    /// Moves `wal` to a new writer thread named after the log. A log above `compact_bytes` is
    /// compacted by [`WalHandle::compact_if_due`].
    pub fn spawn(
        name: &str,
        mut wal: Wal<FileStorage>,
        compact_bytes: u64,
    ) -> std::io::Result<WalHandle> {
        let (tx, rx) = mpsc::sync_channel::<Job>(1);
        let stats = WalStats {
            durable_seq: wal.durable_seq(),
            size_bytes: wal.storage_len(),
            ..WalStats::default()
        };
        std::thread::Builder::new()
            .name(format!("wal-{name}"))
            .spawn(move || {
                let mut buf = Vec::with_capacity(64);
                while let Ok(mut job) = rx.recv() {
                    let before = wal.storage_len();
                    for r in &job.records {
                        buf.clear();
                        r.encode_into(&mut buf);
                        wal.append(&buf);
                    }
                    let pending = wal.pending_bytes() as u64;
                    let t = Instant::now();
                    let durable_seq = match &job.snapshot {
                        Some(s) => wal.compact(s),
                        None => wal.commit(),
                    };
                    let fsync_ns = t.elapsed().as_nanos() as u64;
                    let size_bytes = wal.storage_len();
                    let bytes = if job.snapshot.is_some() {
                        size_bytes
                    } else {
                        debug_assert_eq!(size_bytes, before + pending);
                        pending
                    };
                    job.records.clear();
                    job.done.complete(Done {
                        durable_seq,
                        bytes,
                        fsync_ns,
                        size_bytes,
                        spare: job.records,
                    });
                }
            })?;
        Ok(WalHandle {
            name: name.to_string(),
            tx,
            queue: RefCell::new(Vec::with_capacity(1024)),
            spare: RefCell::new(Vec::with_capacity(1024)),
            queued_total: Cell::new(0),
            durable_total: Cell::new(0),
            in_flight: RefCell::new(None),
            stats: Cell::new(stats),
            compact_bytes,
        })
    }

    /// The log's name in metrics ("allocator", "spend-0", ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> WalStats {
        self.stats.get()
    }

    /// Queues records (not durable until a [`WalHandle::commit`] that follows resolves).
    pub fn queue(&self, records: impl IntoIterator<Item = LedgerRecord>) {
        let mut q = self.queue.borrow_mut();
        let before = q.len();
        q.extend(records);
        let n = (q.len() - before) as u64;
        self.queued_total.set(self.queued_total.get() + n);
    }

    /// Records queued and not yet handed to the writer.
    pub fn queued(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Makes every record queued so far durable (group commit). Resolves at once if there is
    /// nothing to write.
    pub async fn commit(&self) {
        let target = self.queued_total.get();
        while self.durable_total.get() < target {
            let job = self.in_flight.borrow().clone();
            let job = match job {
                Some(j) => j,
                None => self.start(None),
            };
            Wait(job.clone()).await;
            self.finish(&job);
        }
    }

    /// Compacts the log if it grew past `compact_bytes`: waits for the commit in flight, then
    /// `snapshot` (called synchronously, so it sees exactly the state of every queued record;
    /// it may queue more records first) becomes the whole log.
    pub async fn compact_if_due(&self, snapshot: impl FnOnce() -> Vec<u8>) {
        if self.stats.get().size_bytes < self.compact_bytes {
            return;
        }
        loop {
            let job = self.in_flight.borrow().clone();
            let Some(job) = job else { break };
            Wait(job.clone()).await;
            self.finish(&job);
        }
        let job = self.start(Some(snapshot()));
        Wait(job.clone()).await;
        self.finish(&job);
    }

    fn start(&self, snapshot: Option<Vec<u8>>) -> Arc<Completion> {
        let spare = std::mem::take(&mut *self.spare.borrow_mut());
        let records = std::mem::replace(&mut *self.queue.borrow_mut(), spare);
        let done = Arc::new(Completion {
            upto: self.queued_total.get(),
            compaction: snapshot.is_some(),
            state: Mutex::new(JobState::default()),
        });
        let n = records.len() as u64;
        let job = Job {
            records,
            snapshot,
            done: done.clone(),
        };
        // One job in flight at a time and the channel holds one: `send` never waits. The writer
        // never exits while this handle lives (it aborts the process instead).
        if self.tx.send(job).is_err() {
            crate::wal::abort_process(&WalError::Poisoned);
        }
        let mut s = self.stats.get();
        s.records += n;
        self.stats.set(s);
        *self.in_flight.borrow_mut() = Some(done.clone());
        done
    }

    /// Applies a completed job once (whichever waiter gets here first).
    fn finish(&self, job: &Arc<Completion>) {
        let mine = self
            .in_flight
            .borrow()
            .as_ref()
            .is_some_and(|j| Arc::ptr_eq(j, job));
        if !mine {
            return;
        }
        let done = {
            let mut g = job.state.lock().unwrap_or_else(|e| e.into_inner());
            g.done.take()
        };
        let Some(done) = done else { return };
        *self.in_flight.borrow_mut() = None;
        *self.spare.borrow_mut() = done.spare;
        self.durable_total.set(job.upto);
        let mut s = self.stats.get();
        if job.compaction {
            s.compactions += 1;
        } else {
            s.commits += 1;
        }
        s.bytes += done.bytes;
        s.fsync_ns += done.fsync_ns;
        s.fsync_ns_max = s.fsync_ns_max.max(done.fsync_ns);
        s.durable_seq = done.durable_seq;
        s.size_bytes = done.size_bytes;
        self.stats.set(s);
    }
}

#[cfg(test)]
mod tests;
