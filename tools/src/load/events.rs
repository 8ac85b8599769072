//! The served-impression event log (`rtb-load --events FILE`): one JSON line per bid the client
//! received in a complete `200` BidResponse, i.e. per impression the exchange side was served.
//!
//! Line format (JSONL, one object per line, fields in this order):
//!
//! ```text
//! {"ts_ms":1764326400123,"request_id":"r-17","imp_id":"1","seat":"adcore","cid":"12",
//!  "crid":"340","price_cpm":2.5,"house":false}
//! ```
//!
//! `ts_ms` is the client's Unix time in milliseconds when the response was read; `request_id` is
//! the BidResponse `id` (the engine echoes the request id); `seat`, `cid` and `crid` are present
//! when the response carries them; `price_cpm` is the bid price (CPM, response currency);
//! `house` is true when `bid.ext.adcore.house` is true (house ads are not charged).
//!
//! Owns: the line format, its writer (shared by the load threads, bounded per-connection
//! buffers) and its reader (used by `tools/ledger reconcile`). Must not know: ledgers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A connection's buffered lines are written out once they pass this many bytes.
pub const FLUSH_BYTES: usize = 16 * 1024;
/// Longest line [`read_events`] accepts.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// One served impression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServedEvent {
    pub ts_ms: i64,
    pub request_id: String,
    pub imp_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crid: Option<String>,
    pub price_cpm: f64,
    #[serde(default)]
    pub house: bool,
}

impl ServedEvent {
    /// The price in integer CPM micros (the engine writes `micros / 1e6`; this inverts it).
    pub fn price_cpm_micros(&self) -> Option<u64> {
        let m = (self.price_cpm * 1_000_000.0).round();
        (0.0..1.8e19).contains(&m).then_some(m as u64)
    }
}

/// Appends the events of one BidResponse body to `out` (nothing for a body that does not parse:
/// the load report already counts bad responses).
pub fn events_of_response(body: &[u8], ts_ms: i64, out: &mut Vec<u8>) -> usize {
    let Ok(resp) = net::openrtb::parse_bid_response(body) else {
        return 0;
    };
    let mut n = 0;
    for sb in &resp.seatbid {
        for bid in &sb.bid {
            let house = bid
                .ext
                .as_ref()
                .is_some_and(|e| e.as_str().replace(' ', "").contains("\"house\":true"));
            let ev = ServedEvent {
                ts_ms,
                request_id: resp.id.clone(),
                imp_id: bid.impid.clone(),
                seat: sb.seat.clone(),
                cid: bid.cid.clone(),
                crid: bid.crid.clone(),
                price_cpm: bid.price,
                house,
            };
            if serde_json::to_writer(&mut *out, &ev).is_ok() {
                out.push(b'\n');
                n += 1;
            }
        }
    }
    n
}

/// The shared event file. Each connection buffers its lines and hands them over in blocks of
/// at least [`FLUSH_BYTES`] (and at its end), so the lock is taken rarely.
#[derive(Debug)]
pub struct EventSink {
    path: PathBuf,
    file: Mutex<Option<File>>,
    error: Mutex<Option<io::Error>>,
}

impl EventSink {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> io::Result<EventSink> {
        let file = File::create(path)?;
        Ok(EventSink {
            path: path.to_path_buf(),
            file: Mutex::new(Some(file)),
            error: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `buf` (whole lines) and clears it. The first write error is kept for
    /// [`EventSink::finish`]; later writes are dropped.
    pub fn write(&self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_mut()
            && let Err(e) = f.write_all(buf)
        {
            *guard = None;
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
        buf.clear();
    }

    /// Flushes to disk; returns the first write error, if any.
    pub fn finish(&self) -> io::Result<()> {
        if let Some(e) = self.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        match self.file.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(f) => f.sync_all(),
            None => Ok(()),
        }
    }
}

/// Why an event log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot read event log {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: io::Error,
    },
    #[error("{file}:{line}: not a served-impression event: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
}

/// Reads a whole event log. Empty lines are skipped; a bad line is an error naming file and line.
pub fn read_events(path: &Path) -> Result<Vec<ServedEvent>, EventsError> {
    let file = path.display().to_string();
    let io_err = |source| EventsError::Io {
        file: file.clone(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut out = Vec::new();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(io_err)?;
        let bad = |message: String| EventsError::Line {
            file: file.clone(),
            line: i + 1,
            message,
        };
        if line.len() > LINE_BYTES_MAX {
            return Err(bad(format!("longer than {LINE_BYTES_MAX} bytes")));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let ev: ServedEvent = serde_json::from_slice(&line).map_err(|e| bad(e.to_string()))?;
        if ev.price_cpm_micros().is_none() {
            return Err(bad(format!("price_cpm {} is not a price", ev.price_cpm)));
        }
        out.push(ev);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_to_lines_and_back() {
        let body = br#"{"id":"r1","seatbid":[{"seat":"adcore","bid":[
            {"id":"b1","impid":"1","price":2.5,"cid":"12","crid":"340"},
            {"id":"b2","impid":"2","price":0.001,"cid":"13","crid":"341","ext":{"adcore":{"house":true}}}]},
            {"seat":"dsp-3","bid":[{"id":"x","impid":"3","price":1.25}]}],"cur":"USD"}"#;
        let mut out = Vec::new();
        assert_eq!(events_of_response(body, 7, &mut out), 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        std::fs::write(&path, &out).unwrap();
        let evs = read_events(&path).unwrap();
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].request_id, "r1");
        assert_eq!(evs[0].price_cpm_micros(), Some(2_500_000));
        assert!(!evs[0].house && evs[1].house);
        assert_eq!(evs[2].seat.as_deref(), Some("dsp-3"));
        assert_eq!(evs[2].cid, None);
        assert_eq!(events_of_response(b"not json", 7, &mut out), 0);
    }

    #[test]
    fn bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.jsonl");
        std::fs::write(
            &path,
            "{\"ts_ms\":1,\"request_id\":\"a\",\"imp_id\":\"1\",\"price_cpm\":1.0}\n\n{oops\n",
        )
        .unwrap();
        let e = read_events(&path).unwrap_err().to_string();
        assert!(e.contains("ev.jsonl:3:"), "{e}");
        let e = read_events(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
