//! A quick measurement, not a test of speed (ignored by default; the machine is shared):
//! mean time per corpus request to parse + validate with sonic-rs, to parse with serde_json into
//! the same types, and to write. Run:
//! `cargo test -p net --release --test openrtb_perf -- --ignored --nocapture`

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use net::openrtb::{
    BidRequest, ValidationLimits, parse_bid_request, validate_bid_request, write_bid_request,
};

const ROUNDS: usize = 2_000;

fn corpus_requests() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/openrtb/requests");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("read"))
        .collect()
}

fn mean_ns(bodies: &[Vec<u8>], mut run: impl FnMut(&[u8])) -> f64 {
    for body in bodies {
        run(body); // warm up
    }
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for body in bodies {
            run(body);
        }
    }
    started.elapsed().as_nanos() as f64 / (ROUNDS * bodies.len()) as f64
}

#[test]
#[ignore = "measurement; run explicitly in release mode"]
fn report_parse_and_validate_cost() {
    let bodies = corpus_requests();
    let limits = ValidationLimits::default();
    let mean_bytes = bodies.iter().map(Vec::len).sum::<usize>() / bodies.len();
    let sonic = mean_ns(&bodies, |body| {
        let request = parse_bid_request(body).expect("parse");
        validate_bid_request(&request, &limits).expect("valid");
        black_box(request);
    });
    let sonic_parse_only = mean_ns(&bodies, |body| {
        black_box(parse_bid_request(body).expect("parse"));
    });
    let serde_json = mean_ns(&bodies, |body| {
        let request: BidRequest = serde_json::from_slice(body).expect("serde_json parse");
        validate_bid_request(&request, &limits).expect("valid");
        black_box(request);
    });
    let parsed: Vec<BidRequest> = bodies
        .iter()
        .map(|b| parse_bid_request(b).expect("parse"))
        .collect();
    let mut out = Vec::with_capacity(8192);
    let mut index = 0;
    let write = mean_ns(&bodies, |_| {
        out.clear();
        write_bid_request(&parsed[index % parsed.len()], &mut out);
        index += 1;
        black_box(&out);
    });
    println!("corpus: {} requests, mean {mean_bytes} bytes", bodies.len());
    println!("sonic-rs parse + validate : {sonic:>8.0} ns/request");
    println!("sonic-rs parse only       : {sonic_parse_only:>8.0} ns/request");
    println!("serde_json parse + validate: {serde_json:>7.0} ns/request (same types)");
    println!("write_bid_request         : {write:>8.0} ns/request");
}

#[test]
#[ignore = "measurement"]
fn report_type_sizes() {
    use net::openrtb::*;
    println!(
        "size_of: BidRequest {} Imp {} Banner {} Video {} Audio {} Site {} Device {} User {} Bid {}",
        size_of::<BidRequest>(),
        size_of::<Imp>(),
        size_of::<Banner>(),
        size_of::<Video>(),
        size_of::<Audio>(),
        size_of::<Site>(),
        size_of::<Device>(),
        size_of::<User>(),
        size_of::<Bid>()
    );
}
