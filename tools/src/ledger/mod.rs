//! `tools/ledger`: reads the budget's write-ahead logs offline and audits them.
//!
//! Owns: reading a directory of WAL files ([`read`], with the engine's own `wal::scan` and
//! `LedgerRecord::decode`: no second parser), the money figures per lot and campaign-day
//! ([`account`]), and the four reports: [`verify`] (framing, checksums, sequence, torn tail vs
//! corrupt middle), [`spend`] (per campaign-day against the catalog's budgets + bound),
//! [`export`] (CSV) and [`reconcile`] (against `rtb-load --events`). Never writes a WAL.
//!
//! Must not know: how the engine lays out its WAL directory beyond "every `*.wal` file in it holds
//! `LedgerRecord`s" (allocator and per-shard spend logs are read alike).

pub mod account;
pub mod export;
pub mod read;
pub mod reconcile;
pub mod spend;
pub mod verify;

/// Why a ledger could not be read or checked. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir}: no *.wal files in this directory")]
    NoWalFiles { dir: String },
    #[error("{file}: not a ledger WAL: {message}")]
    NotAWal { file: String, message: String },
    #[error("{file}: corrupt record at byte offset {offset} (seq {seq}): {message}")]
    Corrupt {
        file: String,
        offset: u64,
        seq: u64,
        message: String,
    },
    #[error("{file}: record at byte offset {offset} (seq {seq}) is not a ledger record: {message}")]
    Record {
        file: String,
        offset: u64,
        seq: u64,
        message: String,
    },
    #[error("catalog: {0}")]
    Catalog(String),
}
