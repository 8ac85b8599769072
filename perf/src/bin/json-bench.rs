//! OpenRTB JSON cost on the shared corpus (`../shared/data/openrtb/requests/`), ours against
//! serde_json measured in the same process on the same bodies:
//! - parse + validate: `net::openrtb::parse_bid_request` (sonic-rs) vs `serde_json::from_slice`
//!   into the same types, both followed by the same validation;
//! - write: our hand-written writer for the parsed request vs `serde_json::to_vec` of the same
//!   document as a `serde_json::Value` (the types have no `Serialize`: the writer is ours).
//! Prints a table, or one JSON object with `--json` (read by perf/run.sh).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use net::openrtb::{
    BidRequest, ValidationLimits, parse_bid_request, validate_bid_request, write_bid_request,
};

/// Passes over the corpus per measurement; the best of `TRIALS` is kept (the machine is shared).
const ROUNDS: usize = 400;
const TRIALS: usize = 5;

fn corpus(dir: &PathBuf) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading corpus {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let limits = ValidationLimits::default();
    let mut bodies = Vec::new();
    for path in files {
        let body = std::fs::read(&path)?;
        // Only documents both sides accept are timed (the corpus is all valid today).
        let ok = parse_bid_request(&body)
            .ok()
            .is_some_and(|r| validate_bid_request(&r, &limits).is_ok());
        if ok {
            bodies.push(body);
        }
    }
    anyhow::ensure!(!bodies.is_empty(), "no valid requests in {}", dir.display());
    Ok(bodies)
}

/// Best mean nanoseconds per body over `TRIALS` trials of `ROUNDS` passes.
fn best_ns(n: usize, mut run: impl FnMut(usize)) -> f64 {
    (0..n).for_each(&mut run);
    (0..TRIALS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ROUNDS {
                (0..n).for_each(&mut run);
            }
            t.elapsed().as_nanos() as f64 / (ROUNDS * n) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> anyhow::Result<()> {
    let json_out = std::env::args().any(|a| a == "--json");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/openrtb/requests");
    let bodies = corpus(&dir)?;
    let limits = ValidationLimits::default();
    let ours_parse = best_ns(bodies.len(), |i| {
        let r = parse_bid_request(&bodies[i]).expect("parsed before");
        black_box(validate_bid_request(&r, &limits).is_ok());
    });
    let serde_parse = best_ns(bodies.len(), |i| {
        let r: BidRequest =
            serde_json::from_slice(&bodies[i]).expect("serde_json parses the corpus");
        black_box(validate_bid_request(&r, &limits).is_ok());
    });
    let parsed: Vec<BidRequest> = bodies
        .iter()
        .map(|b| parse_bid_request(b).unwrap())
        .collect();
    let values: Vec<serde_json::Value> = bodies
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    let mut out = Vec::with_capacity(16 * 1024);
    let ours_write = best_ns(parsed.len(), |i| {
        out.clear();
        write_bid_request(&parsed[i], &mut out);
        black_box(&out);
    });
    let serde_write = best_ns(values.len(), |i| {
        out.clear();
        serde_json::to_writer(&mut out, &values[i]).unwrap();
        black_box(&out);
    });
    let mean_bytes = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    if json_out {
        println!(
            "{{\"requests\":{},\"mean_bytes\":{mean_bytes},\"ours_parse_validate_ns\":{ours_parse:.0},\"serde_json_parse_validate_ns\":{serde_parse:.0},\"ours_write_ns\":{ours_write:.0},\"serde_json_write_ns\":{serde_write:.0}}}",
            bodies.len()
        );
    } else {
        println!("corpus: {} requests, mean {mean_bytes} bytes", bodies.len());
        println!(
            "parse + validate: ours {ours_parse:.0} ns, serde_json {serde_parse:.0} ns ({:.2}x)",
            serde_parse / ours_parse
        );
        println!(
            "write:            ours {ours_write:.0} ns, serde_json {serde_write:.0} ns ({:.2}x)",
            serde_write / ours_write
        );
    }
    Ok(())
}
