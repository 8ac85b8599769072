//! `ledger verify`: every file's framing, checksums, sequence and records, without changing it.
//!
//! A torn tail (an incomplete last write: never acknowledged) is reported with its offset and is
//! not an error. Damage followed by a valid record (corrupt middle), a sequence gap, a record that
//! does not decode or a file that is not a WAL is an error naming the file, offset and seq.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::LedgerError;
use super::read::{LedgerFile, read_file, wal_paths};

/// The outcome of one file.
#[derive(Debug)]
pub struct FileCheck {
    pub file: String,
    pub result: Result<LedgerFile, LedgerError>,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub files: Vec<FileCheck>,
}

/// Checks every WAL file `path` names (each independently: one bad file does not hide others).
pub fn verify(path: &Path) -> Result<VerifyReport, LedgerError> {
    let files = wal_paths(path)?
        .into_iter()
        .map(|p| FileCheck {
            file: p.display().to_string(),
            result: read_file(&p),
        })
        .collect();
    Ok(VerifyReport { files })
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.files.iter().all(|f| f.result.is_ok())
    }

    pub fn torn_tails(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(&f.result, Ok(l) if l.torn_tail.is_some()))
            .count()
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for f in &self.files {
            match &f.result {
                Ok(l) => summary(&mut s, l),
                Err(e) => {
                    let _ = writeln!(s, "{}: ERROR: {e}", f.file);
                }
            }
        }
        let bad = self.files.iter().filter(|f| f.result.is_err()).count();
        let _ = writeln!(
            s,
            "{} files, {} damaged, {} with a torn tail",
            self.files.len(),
            bad,
            self.torn_tails()
        );
        s
    }
}

fn summary(s: &mut String, l: &LedgerFile) {
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &l.entries {
        *kinds.entry(e.record.kind()).or_default() += 1;
    }
    let seqs = match (l.entries.first(), l.entries.last()) {
        (Some(a), Some(b)) => format!("seq {}..={}", a.seq, b.seq),
        _ => "no records".to_string(),
    };
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = write!(
        s,
        "{}: ok, {} bytes, {} records ({seqs}) [{}]",
        l.path.display(),
        l.bytes,
        l.entries.len(),
        kinds.join(", ")
    );
    if let Some(snap) = &l.snapshot {
        let _ = write!(
            s,
            ", snapshot seq {} at offset {} ({} bytes, superseding {} records)",
            snap.seq,
            snap.offset,
            snap.payload.len(),
            l.superseded
        );
    }
    match l.torn_tail {
        Some((offset, bytes)) => {
            let _ = writeln!(
                s,
                ", torn tail of {bytes} bytes at offset {offset} (an unacknowledged write; \
                 recovery truncates it)"
            );
        }
        None => s.push('\n'),
    }
}
