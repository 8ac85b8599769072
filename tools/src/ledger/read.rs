//! Reading ledger WAL files with the engine's own framing ([`engine::wal::scan`]) and record
//! decoder ([`LedgerRecord::decode`]): no second parser. Nothing is changed on disk (a torn tail
//! is reported, not truncated).

use std::path::{Path, PathBuf};

use engine::budget::record::LedgerRecord;
use engine::wal::{self, HEADER_BYTES, WalError, WalLimits};

use super::LedgerError;

/// One decoded record and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// Byte offset of the record header in the file.
    pub offset: u64,
    pub record: LedgerRecord,
}

/// A snapshot record (written by compaction); its payload format belongs to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub seq: u64,
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// One WAL file, fully read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub snapshot: Option<SnapshotInfo>,
    /// Records after the snapshot (or all), in order.
    pub entries: Vec<Entry>,
    /// `(offset, bytes)` of an incomplete last write (never acknowledged: not an error).
    pub torn_tail: Option<(u64, u64)>,
    /// Records a snapshot superseded (still in the file before the snapshot).
    pub superseded: u64,
}

impl LedgerFile {
    /// The file name for reports (`allocator.wal`), the full path if it has none.
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

/// The WAL files `path` names: the file itself, or every `*.wal` file of a directory (sorted).
pub fn wal_paths(path: &Path) -> Result<Vec<PathBuf>, LedgerError> {
    let io = |source| LedgerError::Io {
        file: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        if p.extension().is_some_and(|e| e == "wal") && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(LedgerError::NoWalFiles {
            dir: path.display().to_string(),
        });
    }
    Ok(out)
}

/// Reads and checks one file: magic, checksums, contiguous sequence numbers, decodable records.
pub fn read_file(path: &Path) -> Result<LedgerFile, LedgerError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LedgerError::Io {
        file: file.clone(),
        source,
    })?;
    let scan = wal::scan(&bytes, WalLimits::default()).map_err(|e| from_wal(&file, e))?;
    // Records are contiguous and end at `valid_len`: walk back to find each offset.
    let rec = &scan.recovered;
    let mut at = scan.valid_len;
    let mut offsets = vec![0u64; rec.records.len()];
    for (i, (_, payload)) in rec.records.iter().enumerate().rev() {
        at -= (HEADER_BYTES + payload.len()) as u64;
        offsets[i] = at;
    }
    let snapshot = rec.snapshot.as_ref().map(|(seq, payload)| SnapshotInfo {
        seq: *seq,
        offset: at - (HEADER_BYTES + payload.len()) as u64,
        payload: payload.clone(),
    });
    let mut entries = Vec::with_capacity(rec.records.len());
    for ((seq, payload), offset) in rec.records.iter().zip(offsets) {
        let record = LedgerRecord::decode(payload).map_err(|e| LedgerError::Record {
            file: file.clone(),
            offset,
            seq: *seq,
            message: e.to_string(),
        })?;
        entries.push(Entry {
            seq: *seq,
            offset,
            record,
        });
    }
    let torn = rec.torn_tail_bytes;
    Ok(LedgerFile {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        snapshot,
        entries,
        torn_tail: (torn > 0).then_some((scan.valid_len, torn)),
        superseded: scan.superseded_records,
    })
}

/// Reads every WAL file `path` names; the first damaged one is the error.
pub fn read_all(path: &Path) -> Result<Vec<LedgerFile>, LedgerError> {
    wal_paths(path)?.iter().map(|p| read_file(p)).collect()
}

fn from_wal(file: &str, e: WalError) -> LedgerError {
    match e {
        WalError::Corrupt {
            offset,
            seq,
            reason,
            next_valid_offset,
        } => LedgerError::Corrupt {
            file: file.to_string(),
            offset,
            seq,
            message: format!(
                "{reason}; a valid record follows at byte offset {next_valid_offset}, so this is \
                 damage in committed data, not a torn tail"
            ),
        },
        WalError::SeqGap {
            offset,
            expected,
            found,
        } => LedgerError::Corrupt {
            file: file.to_string(),
            offset,
            seq: expected,
            message: format!("sequence gap: expected seq {expected}, found {found}"),
        },
        other => LedgerError::NotAWal {
            file: file.to_string(),
            message: other.to_string(),
        },
    }
}
