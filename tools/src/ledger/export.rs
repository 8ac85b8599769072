//! `ledger export --csv`: every record of every file as one CSV row.
//!
//! Columns: `file,seq,offset,kind,shard,epoch,campaign,day,date,chunk,slack,spent,cost,key`.
//! A field a record does not have is empty; `key` is the idempotency key in hex; snapshots are
//! one row of kind `snapshot` (their payload belongs to the engine and is not decoded).

use std::io::{self, Write};

use engine::budget::record::LedgerRecord;

use super::account::day_name;
use super::read::LedgerFile;

pub const HEADER: &str =
    "file,seq,offset,kind,shard,epoch,campaign,day,date,chunk,slack,spent,cost,key";

/// Writes the header and one row per record; returns the rows written.
pub fn write_csv(files: &[LedgerFile], out: &mut impl Write) -> io::Result<u64> {
    writeln!(out, "{HEADER}")?;
    let mut rows = 0;
    for f in files {
        let name = csv_field(&f.name());
        if let Some(s) = &f.snapshot {
            writeln!(out, "{name},{},{},snapshot,,,,,,,,,,", s.seq, s.offset)?;
            rows += 1;
        }
        for e in &f.entries {
            write!(out, "{name},{},{},{},", e.seq, e.offset, e.record.kind())?;
            writeln!(out, "{}", fields(&e.record))?;
            rows += 1;
        }
    }
    Ok(rows)
}

/// `shard,epoch,campaign,day,date,chunk,slack,spent,cost,key` of a record.
fn fields(r: &LedgerRecord) -> String {
    let o = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    let (shard, epoch, campaign, day) = match *r {
        LedgerRecord::Register { shard, epoch } => (Some(shard), Some(epoch), None, None),
        LedgerRecord::PeriodRoll { campaign, day } => (None, None, Some(campaign), Some(day)),
        LedgerRecord::Grant {
            shard,
            epoch,
            campaign,
            day,
            ..
        }
        | LedgerRecord::Return {
            shard,
            epoch,
            campaign,
            day,
            ..
        }
        | LedgerRecord::Reclaim {
            shard,
            epoch,
            campaign,
            day,
            ..
        }
        | LedgerRecord::Spend {
            shard,
            epoch,
            campaign,
            day,
            ..
        } => (Some(shard), Some(epoch), Some(campaign), Some(day)),
    };
    let (chunk, slack, spent, cost, key) = match *r {
        LedgerRecord::Grant { chunk, slack, .. } | LedgerRecord::Reclaim { chunk, slack, .. } => {
            (Some(chunk), Some(slack), None, None, None)
        }
        LedgerRecord::Return {
            chunk,
            slack,
            spent,
            ..
        } => (Some(chunk), Some(slack), Some(spent), None, None),
        LedgerRecord::Spend { key, cost, .. } => (None, None, None, Some(cost), Some(key)),
        _ => (None, None, None, None, None),
    };
    format!(
        "{},{},{},{},{},{},{},{},{},{}",
        o(shard.map(u64::from)),
        o(epoch.map(u64::from)),
        o(campaign.map(u64::from)),
        day.map_or(String::new(), |d| d.to_string()),
        day.map_or(String::new(), day_name),
        o(chunk),
        o(slack),
        o(spent),
        o(cost),
        key.map_or(String::new(), |k| format!("{k:016x}")),
    )
}

/// Quotes a field that needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
