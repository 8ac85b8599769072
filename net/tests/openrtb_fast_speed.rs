//! Parse cost of the fast reader against the serde path it short-cuts, on the perf no-bid body
//! and the shared corpus. Ignored by default (timing); run in release, ideally with
//! `RUSTFLAGS="-C target-cpu=native"` as the perf suite builds:
//! `cargo test -p net --release --test openrtb_fast_speed -- --ignored --nocapture`.
//! The server's allocator (mimalloc) is used, as string allocations are part of the cost. Trials
//! of the two paths are interleaved and the best of each is kept (the machine is shared).

use std::hint::black_box;
mod common;

use common::{corpus_files, manifest_path};
use std::time::Instant;

use net::openrtb::paths::{
    fast_request_into, fast_response_into, serde_request_into, serde_response_into,
};
use net::openrtb::{BidRequest, BidResponse};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRIALS: usize = 21;

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    corpus_files(kind)
        .into_iter()
        .map(|(_, body)| body)
        .collect()
}

/// Nanoseconds per parse of one pass of `rounds` over `bodies`.
fn time_pass<T>(
    bodies: &[Vec<u8>],
    rounds: usize,
    place: &mut T,
    parse: fn(&[u8], &mut T) -> bool,
) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        for body in bodies {
            assert!(parse(black_box(body), place));
            black_box(&*place);
        }
    }
    start.elapsed().as_nanos() as f64 / (rounds * bodies.len()) as f64
}

/// Best ns/parse of (fast, serde) over interleaved trials.
fn best_pair<T: Default>(
    bodies: &[Vec<u8>],
    rounds: usize,
    fast: fn(&[u8], &mut T) -> bool,
    serde: fn(&[u8], &mut T) -> bool,
) -> (f64, f64) {
    let mut place = T::default();
    time_pass(bodies, rounds / 10 + 1, &mut place, fast);
    time_pass(bodies, rounds / 10 + 1, &mut place, serde);
    let (mut best_fast, mut best_serde) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..TRIALS {
        best_fast = best_fast.min(time_pass(bodies, rounds, &mut place, fast));
        best_serde = best_serde.min(time_pass(bodies, rounds, &mut place, serde));
    }
    (best_fast, best_serde)
}

fn report(label: &str, bodies: &[Vec<u8>], (fast, serde): (f64, f64)) {
    let bytes = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    eprintln!(
        "{label:<28} {:>3} bodies, mean {bytes:>5} B: fast {fast:>8.0} ns/parse, serde {serde:>8.0} ns/parse, serde/fast {:.2}x",
        bodies.len(),
        serde / fast
    );
}

#[test]
#[ignore = "timing; run in release with --ignored --nocapture"]
fn fast_reader_against_serde_path() {
    let nobid =
        vec![std::fs::read(manifest_path("../perf/foundation/nobid-request.json")).expect("body")];
    let requests = corpus("requests");
    let responses = corpus("responses");
    report(
        "nobid-request.json",
        &nobid,
        best_pair::<BidRequest>(&nobid, 20_000, fast_request_into, serde_request_into),
    );
    report(
        "corpus requests",
        &requests,
        best_pair::<BidRequest>(&requests, 300, fast_request_into, serde_request_into),
    );
    report(
        "corpus responses",
        &responses,
        best_pair::<BidResponse>(&responses, 300, fast_response_into, serde_response_into),
    );
}

/// One path alone on the no-bid body, to run under `perf record` or `valgrind --tool=callgrind`
/// (instruction counts do not depend on the machine's load): `PROFILE_PATH=serde` for the serde
/// path, `PROFILE_LOOPS` parses (default 3 000 000).
#[test]
#[ignore = "profiling loop; run in release with --ignored"]
fn fast_reader_profile_loop() {
    let nobid =
        vec![std::fs::read(manifest_path("../perf/foundation/nobid-request.json")).expect("body")];
    let loops = std::env::var("PROFILE_LOOPS").map_or(3_000_000, |n| n.parse().expect("number"));
    let serde = std::env::var("PROFILE_PATH").is_ok_and(|path| path == "serde");
    let parse = if serde {
        serde_request_into
    } else {
        fast_request_into
    };
    let mut place = BidRequest::default();
    let ns = time_pass(&nobid, loops, &mut place, parse);
    eprintln!("serde path: {serde}, no-bid body: {ns:.0} ns/parse");
}
