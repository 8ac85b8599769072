//! Write-ahead log: checksummed, length-prefixed, sequence-numbered records on a [`Storage`].
//!
//! Owns record framing, group commit, recovery (torn-tail truncation, refusal of a corrupt
//! middle) and compaction (a snapshot record replaces every older record, crash-safely).
//! Knows nothing of budgets or of what a payload means: callers encode their own records.
//!
//! # File layout
//!
//! ```text
//! magic "ADCWAL01" (8 bytes)
//! record*:  len u32 | kind u8 | seq u64 | payload_crc u32 | header_crc u32 | payload[len]
//! ```
//!
//! Integers are little-endian. `payload_crc` is CRC-32C of the payload, `header_crc` CRC-32C
//! of the 17 header bytes before it (so a record boundary can be recognised without trusting a
//! length). `kind` is [`KIND_RECORD`] or [`KIND_SNAPSHOT`]. Sequence numbers are contiguous:
//! every record has the previous record's `seq + 1`; the first record of a fresh log has seq 1.
//!
//! # Durability
//!
//! [`Wal::append`] only encodes into an in-memory buffer and returns the record's sequence
//! number. [`Wal::commit`] writes everything appended since the last commit with one write and
//! one `fdatasync` (group commit). A failed write or fsync is fatal: the WAL is poisoned and
//! never retries (after a failed fsync the kernel may have dropped the dirty pages, so a retry
//! that succeeds proves nothing — "fsyncgate"). `commit` aborts the process; [`Wal::try_commit`]
//! returns [`WalError::Fatal`] for callers (and tests) that abort themselves.
//!
//! # Recovery ([`Wal::open`], [`scan`])
//!
//! Records are read in order. The log ends at the first place where no complete, checksummed
//! record starts. If no valid record header can be found anywhere after that place, the bytes
//! there are a torn tail (an interrupted, never-acknowledged write): they are truncated and
//! reported in [`Recovered::torn_tail_bytes`]. If a valid record does follow, the damage is in
//! the middle of committed data and opening fails with [`WalError::Corrupt`] naming the byte
//! offset and sequence number. A sequence gap between two valid records is also refused.
//!
//! # Compaction ([`Wal::compact`])
//!
//! The caller passes a snapshot of its state; the WAL writes a new file holding only that
//! snapshot record, fsyncs it, renames it over the log and fsyncs the directory
//! ([`Storage::replace`]). A crash at any point leaves either the old or the new log, both
//! complete, so recovery time stays bounded by the snapshot plus the records since.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// First bytes of every log file.
pub const MAGIC: &[u8; 8] = b"ADCWAL01";
/// Bytes of a record header.
pub const HEADER_BYTES: usize = 21;
/// `kind` of an ordinary record.
pub const KIND_RECORD: u8 = 1;
/// `kind` of a snapshot record written by [`Wal::compact`].
pub const KIND_SNAPSHOT: u8 = 2;
/// Default largest payload accepted, in bytes.
pub const DEFAULT_MAX_RECORD_BYTES: u32 = 64 << 20;

/// Where the log bytes live: a file ([`FileStorage`]) or memory ([`MemStorage`], simulation).
pub trait Storage {
    /// Appends `data` at the end (not yet durable).
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes every appended byte durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// Every byte currently stored, durable or not.
    fn read_all(&self) -> io::Result<Vec<u8>>;
    /// Cuts the log to `len` bytes (durable after the next [`Storage::sync`]).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Bytes currently stored.
    fn len(&self) -> u64;
    /// True when nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Atomically replaces the whole content with `data`, durably: after a crash at any point
    /// the storage holds either the old content or exactly `data`.
    fn replace(&mut self, data: &[u8]) -> io::Result<()>;
}

/// Why a log could not be opened, or why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL {op} failed: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("not a WAL: the first bytes are {found:?}, expected {MAGIC:?}")]
    NotAWal { found: Vec<u8> },
    #[error(
        "corrupt WAL record at byte offset {offset} (seq {seq}): {reason}; a valid record follows \
         at byte offset {next_valid_offset}, so this is not a torn tail: refusing to open"
    )]
    Corrupt {
        offset: u64,
        seq: u64,
        reason: String,
        next_valid_offset: u64,
    },
    #[error("WAL sequence gap at byte offset {offset}: expected seq {expected}, found {found}")]
    SeqGap {
        offset: u64,
        expected: u64,
        found: u64,
    },
    #[error(
        "fatal WAL {op} error, the process must abort and recover from the log (never retry an \
         fsync): {source}"
    )]
    Fatal {
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("WAL is poisoned by an earlier fatal error: the process must abort")]
    Poisoned,
}

/// Limits of a log.
#[derive(Debug, Clone, Copy)]
pub struct WalLimits {
    /// Largest payload [`Wal::append`] accepts (a larger one is a caller bug and panics) and
    /// recovery believes; a header claiming more is treated as damage.
    pub max_record_bytes: u32,
}

impl Default for WalLimits {
    fn default() -> Self {
        WalLimits {
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

/// What recovery found in a log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The latest snapshot (seq, payload), if the log was compacted; `records` follow it.
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// Records after the snapshot (or all records), in order: (seq, payload).
    pub records: Vec<(u64, Vec<u8>)>,
    /// Bytes of a torn tail that were (or, for [`scan`], would be) truncated.
    pub torn_tail_bytes: u64,
}

/// A full read of a log's bytes without changing them (see [`scan`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    pub recovered: Recovered,
    /// Length of the valid prefix (magic plus whole records).
    pub valid_len: u64,
    /// Sequence number the next record will get.
    pub next_seq: u64,
    /// Records before the snapshot that a snapshot supersedes (0 after a compaction).
    pub superseded_records: u64,
}

/// A header decoded from bytes whose header checksum matched.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: u32,
    kind: u8,
    seq: u64,
    payload_crc: u32,
}

fn encode_header(len: u32, kind: u8, seq: u64, payload_crc: u32) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[4] = kind;
    h[5..13].copy_from_slice(&seq.to_le_bytes());
    h[13..17].copy_from_slice(&payload_crc.to_le_bytes());
    let hcrc = crc32c::crc32c(&h[..17]);
    h[17..21].copy_from_slice(&hcrc.to_le_bytes());
    h
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Decodes a header at `b[..HEADER_BYTES]` if its checksum matches and it is plausible.
fn decode_header(b: &[u8], limits: WalLimits) -> Option<Header> {
    if b.len() < HEADER_BYTES {
        return None;
    }
    if crc32c::crc32c(&b[..17]) != u32_at(b, 17) {
        return None;
    }
    let h = Header {
        len: u32_at(b, 0),
        kind: b[4],
        seq: u64::from_le_bytes(b[5..13].try_into().expect("8 bytes")),
        payload_crc: u32_at(b, 13),
    };
    let kind_ok = h.kind == KIND_RECORD || h.kind == KIND_SNAPSHOT;
    (kind_ok && h.len <= limits.max_record_bytes).then_some(h)
}

/// Appends one framed record to `out`.
fn encode_record(out: &mut Vec<u8>, kind: u8, seq: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("payload length fits u32");
    out.extend_from_slice(&encode_header(len, kind, seq, crc32c::crc32c(payload)));
    out.extend_from_slice(payload);
}

/// Why the record at an offset is not a whole valid record.
fn record_at(bytes: &[u8], at: usize, limits: WalLimits) -> Result<(Header, usize), String> {
    let rest = &bytes[at..];
    if rest.len() < HEADER_BYTES {
        return Err(format!(
            "{} bytes left, shorter than a record header",
            rest.len()
        ));
    }
    let Some(h) = decode_header(rest, limits) else {
        return Err("header checksum mismatch or impossible header".into());
    };
    let end = HEADER_BYTES + h.len as usize;
    if rest.len() < end {
        return Err(format!("record of {} bytes runs past the end", h.len));
    }
    if crc32c::crc32c(&rest[HEADER_BYTES..end]) != h.payload_crc {
        return Err("payload checksum mismatch".into());
    }
    Ok((h, end))
}

/// First offset after `from` where a whole valid record starts, if any (damage search).
fn next_valid_record(bytes: &[u8], from: usize, limits: WalLimits) -> Option<usize> {
    (from..bytes.len().saturating_sub(HEADER_BYTES - 1))
        .find(|&at| record_at(bytes, at, limits).is_ok())
}

/// Reads a whole log image: validates magic, checksums and sequence numbers, and finds the
/// torn tail, without changing anything. An empty image is a fresh log.
pub fn scan(bytes: &[u8], limits: WalLimits) -> Result<Scan, WalError> {
    let mut out = Scan {
        next_seq: 1,
        ..Scan::default()
    };
    if bytes.len() < MAGIC.len() {
        // A crash while creating the file: a prefix of the magic is a torn creation.
        if !MAGIC.starts_with(bytes) {
            return Err(WalError::NotAWal {
                found: bytes.to_vec(),
            });
        }
        out.recovered.torn_tail_bytes = bytes.len() as u64;
        return Ok(out);
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(WalError::NotAWal {
            found: bytes[..MAGIC.len()].to_vec(),
        });
    }
    let mut at = MAGIC.len();
    let mut prev_seq: Option<u64> = None;
    while at < bytes.len() {
        let (h, rec_len) = match record_at(bytes, at, limits) {
            Ok(r) => r,
            Err(reason) => {
                if let Some(next) = next_valid_record(bytes, at + 1, limits) {
                    return Err(WalError::Corrupt {
                        offset: at as u64,
                        seq: prev_seq.map_or(1, |s| s + 1),
                        reason,
                        next_valid_offset: next as u64,
                    });
                }
                break;
            }
        };
        if let Some(p) = prev_seq
            && h.seq != p + 1
        {
            return Err(WalError::SeqGap {
                offset: at as u64,
                expected: p + 1,
                found: h.seq,
            });
        }
        let payload = bytes[at + HEADER_BYTES..at + rec_len].to_vec();
        if h.kind == KIND_SNAPSHOT {
            out.superseded_records += out.recovered.records.len() as u64;
            out.recovered.records.clear();
            out.recovered.snapshot = Some((h.seq, payload));
        } else {
            out.recovered.records.push((h.seq, payload));
        }
        prev_seq = Some(h.seq);
        at += rec_len;
    }
    out.valid_len = at as u64;
    out.recovered.torn_tail_bytes = (bytes.len() - at) as u64;
    out.next_seq = prev_seq.map_or(1, |s| s + 1);
    Ok(out)
}

/// Called when a write or fsync fails in [`Wal::commit`]/[`Wal::compact`]; must not return.
pub type FatalHandler = fn(&WalError) -> !;

/// The default [`FatalHandler`]: prints the error and aborts the process (no unwinding, no
/// destructors that might write more).
pub fn abort_process(err: &WalError) -> ! {
    eprintln!("adcore: {err}");
    std::process::abort()
}

/// A write-ahead log over a [`Storage`].
pub struct Wal<S: Storage> {
    storage: S,
    limits: WalLimits,
    next_seq: u64,
    /// Encoded records appended since the last commit (reused).
    pending: Vec<u8>,
    /// Highest seq made durable.
    durable_seq: u64,
    poisoned: bool,
    on_fatal: FatalHandler,
}

impl<S: Storage> std::fmt::Debug for Wal<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .field("pending_bytes", &self.pending.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl<S: Storage> Wal<S> {
    /// Opens (or creates) a log with default limits: recovers its records, truncates a torn
    /// tail durably, and refuses a corrupt middle.
    pub fn open(storage: S) -> Result<(Wal<S>, Recovered), WalError> {
        Self::open_with(storage, WalLimits::default())
    }

    /// [`Wal::open`] with explicit limits.
    pub fn open_with(mut storage: S, limits: WalLimits) -> Result<(Wal<S>, Recovered), WalError> {
        let io = |op| move |source| WalError::Io { op, source };
        let bytes = storage.read_all().map_err(io("read"))?;
        let scan = scan(&bytes, limits)?;
        if scan.valid_len < bytes.len() as u64 {
            storage.truncate(scan.valid_len).map_err(io("truncate"))?;
        }
        if scan.valid_len == 0 {
            storage.append(MAGIC).map_err(io("write magic"))?;
        }
        if scan.valid_len < bytes.len() as u64 || scan.valid_len == 0 {
            storage.sync().map_err(io("sync after recovery"))?;
        }
        let wal = Wal {
            storage,
            limits,
            next_seq: scan.next_seq,
            pending: Vec::with_capacity(4096),
            durable_seq: scan.next_seq - 1,
            poisoned: false,
            on_fatal: abort_process,
        };
        Ok((wal, scan.recovered))
    }

    /// Replaces the handler [`Wal::commit`] and [`Wal::compact`] call on a fatal error
    /// (tests install one that panics; production keeps [`abort_process`]).
    pub fn set_fatal_handler(&mut self, handler: FatalHandler) {
        self.on_fatal = handler;
    }

    /// Buffers one record; returns its sequence number. Not durable until [`Wal::commit`].
    /// Panics if the payload exceeds `max_record_bytes` (payloads are the caller's own records).
    pub fn append(&mut self, payload: &[u8]) -> u64 {
        assert!(
            payload.len() <= self.limits.max_record_bytes as usize,
            "WAL record of {} bytes exceeds max_record_bytes {}",
            payload.len(),
            self.limits.max_record_bytes
        );
        let seq = self.next_seq;
        encode_record(&mut self.pending, KIND_RECORD, seq, payload);
        self.next_seq += 1;
        seq
    }

    /// Group commit: one write and one fsync for everything appended since the last commit.
    /// Returns the highest durable seq. On failure calls the fatal handler (default: abort).
    pub fn commit(&mut self) -> u64 {
        match self.try_commit() {
            Ok(seq) => seq,
            Err(e) => (self.on_fatal)(&e),
        }
    }

    /// [`Wal::commit`] returning the fatal error instead of aborting. After an error the WAL is
    /// poisoned: every later call fails with [`WalError::Poisoned`] without touching storage,
    /// and the caller must abort.
    pub fn try_commit(&mut self) -> Result<u64, WalError> {
        self.write_pending()?;
        if !self.pending_unsynced() {
            return Ok(self.durable_seq);
        }
        if let Err(source) = self.storage.sync() {
            self.poisoned = true;
            return Err(WalError::Fatal {
                op: "fsync",
                source,
            });
        }
        self.durable_seq = self.next_seq - 1;
        Ok(self.durable_seq)
    }

    /// True when records were written to storage but not yet synced.
    fn pending_unsynced(&self) -> bool {
        self.durable_seq + 1 < self.next_seq
    }

    /// Writes the buffered records to storage without fsync (the first half of a commit;
    /// the simulation calls it alone to leave unsynced bytes for a torn-write crash).
    pub fn write_pending(&mut self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(source) = self.storage.append(&self.pending) {
            self.poisoned = true;
            return Err(WalError::Fatal {
                op: "write",
                source,
            });
        }
        self.pending.clear();
        Ok(())
    }

    /// Replaces the whole log with one snapshot record (the caller's state including every
    /// record appended so far, committed or not), crash-safely. Returns the snapshot's seq.
    /// On failure calls the fatal handler (default: abort).
    pub fn compact(&mut self, snapshot: &[u8]) -> u64 {
        match self.try_compact(snapshot) {
            Ok(seq) => seq,
            Err(e) => (self.on_fatal)(&e),
        }
    }

    /// [`Wal::compact`] returning the fatal error instead of aborting (poisons on error).
    pub fn try_compact(&mut self, snapshot: &[u8]) -> Result<u64, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        assert!(
            snapshot.len() <= self.limits.max_record_bytes as usize,
            "WAL snapshot of {} bytes exceeds max_record_bytes {}",
            snapshot.len(),
            self.limits.max_record_bytes
        );
        let seq = self.next_seq;
        let mut image = Vec::with_capacity(MAGIC.len() + HEADER_BYTES + snapshot.len());
        image.extend_from_slice(MAGIC);
        encode_record(&mut image, KIND_SNAPSHOT, seq, snapshot);
        if let Err(source) = self.storage.replace(&image) {
            self.poisoned = true;
            return Err(WalError::Fatal {
                op: "compaction",
                source,
            });
        }
        self.pending.clear();
        self.next_seq = seq + 1;
        self.durable_seq = seq;
        Ok(seq)
    }

    /// Sequence number the next [`Wal::append`] returns.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Highest sequence number known durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Bytes appended but not yet written to storage.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Bytes in storage (the log's size, for compaction policy).
    pub fn storage_len(&self) -> u64 {
        self.storage.len()
    }

    /// True after a fatal error.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Gives the storage back (the simulation crashes it and reopens).
    pub fn into_storage(self) -> S {
        self.storage
    }
}

/// A log file in a data directory: `O_APPEND` writes, `fdatasync` on sync, directory fsync on
/// creation and after a compaction rename.
#[derive(Debug)]
pub struct FileStorage {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
}

impl FileStorage {
    /// Opens `dir/name`, creating the directory and the file (then fsyncing the directory) if
    /// missing. A compaction temp file left by a crash is removed.
    pub fn open(dir: &Path, name: &str) -> io::Result<FileStorage> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let tmp = Self::tmp_path(&path);
        if tmp.exists() {
            std::fs::remove_file(&tmp)?;
        }
        let existed = path.exists();
        let file = open_append(&path)?;
        if !existed {
            file.sync_all()?;
            fsync_dir(dir)?;
        }
        let len = file.metadata()?.len();
        Ok(FileStorage {
            dir: dir.to_path_buf(),
            path,
            file,
            len,
        })
    }

    fn tmp_path(path: &Path) -> PathBuf {
        let mut s = path.as_os_str().to_owned();
        s.push(".compact.tmp");
        PathBuf::from(s)
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Storage for FileStorage {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = self.file.metadata()?.len();
        let mut buf = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
        self.file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn replace(&mut self, data: &[u8]) -> io::Result<()> {
        let tmp = Self::tmp_path(&self.path);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        fsync_dir(&self.dir)?;
        self.file = open_append(&self.path)?;
        self.len = data.len() as u64;
        Ok(())
    }
}

/// How a simulated crash treats bytes written but not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// Every unsynced byte is lost.
    DropUnsynced,
    /// The first `n` unsynced bytes survive (clamped), the rest is lost: a torn write.
    KeepPrefix(u64),
}

/// In-memory storage for the deterministic simulation: remembers which bytes were synced, and
/// [`MemStorage::crash`] loses (or tears) the rest deterministically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStorage {
    data: Vec<u8>,
    synced_len: usize,
    /// Counts of operations, for tests and the simulation.
    pub syncs: u64,
    pub replaces: u64,
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// A crash: bytes not synced are dropped, or a prefix of them kept per `tear`.
    pub fn crash(&mut self, tear: Tear) {
        let unsynced = (self.data.len() - self.synced_len) as u64;
        let keep = match tear {
            Tear::DropUnsynced => 0,
            Tear::KeepPrefix(n) => n.min(unsynced),
        };
        self.data.truncate(self.synced_len + keep as usize);
        self.synced_len = self.data.len();
    }

    /// Bytes written but not yet synced.
    pub fn unsynced_len(&self) -> u64 {
        (self.data.len() - self.synced_len) as u64
    }

    /// Every stored byte (tests corrupt copies of it).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// XORs one stored byte (fault injection: bit rot).
    pub fn corrupt(&mut self, offset: usize, xor: u8) {
        self.data[offset] ^= xor;
    }

    /// Storage holding exactly `bytes`, all synced.
    pub fn from_bytes(bytes: Vec<u8>) -> MemStorage {
        let synced_len = bytes.len();
        MemStorage {
            data: bytes,
            synced_len,
            ..MemStorage::default()
        }
    }
}

impl Storage for MemStorage {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.synced_len = self.data.len();
        self.syncs += 1;
        Ok(())
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        Ok(self.data.clone())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.data.truncate(len);
        self.synced_len = self.synced_len.min(len);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn replace(&mut self, data: &[u8]) -> io::Result<()> {
        self.data = data.to_vec();
        self.synced_len = self.data.len();
        self.replaces += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
