//! Fuzz the sans-IO HTTP request parser (`net::http::RequestParser`) with arbitrary bytes.
//!
//! Checks: no panic; `consumed_bytes <= len`; an incomplete parse asks for more bytes than it
//! has but never more than the connection's maximum buffer; feeding a prefix and then the whole
//! input gives the same result as one shot (resumption is consistent); a complete request always
//! builds a handler view whose body has the announced length and respects `body_bytes_max`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::http::{BodyFraming, Limits, Parsed, RequestParser, parse_request};

fn limits() -> Limits {
    // Small limits so the fuzzer reaches every bound quickly.
    Limits {
        header_bytes_max: 1024,
        headers_count_max: 16,
        body_bytes_max: 2048,
        ..Limits::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = limits();
    let one_shot = parse_request(data, &limits);
    check_bounds(&one_shot, data.len(), &limits);
    check_resumption(data, &one_shot, &limits);
    if let Ok(Parsed::Complete(head)) = one_shot {
        check_request_view(data, &limits, head.body);
    }
});

fn check_bounds(parsed: &Result<Parsed, net::http::HttpError>, len: usize, limits: &Limits) {
    match parsed {
        Ok(Parsed::Complete(head)) => {
            assert!(head.consumed_bytes <= len, "consumed beyond the buffer");
            assert!(head.head_bytes <= head.consumed_bytes);
        }
        Ok(Parsed::Incomplete(progress)) => {
            assert!(
                progress.buffer_bytes_min > len,
                "incomplete must ask for more bytes"
            );
            assert!(
                progress.buffer_bytes_min <= limits.read_buffer_bytes_max(),
                "asks for more than the maximum buffer"
            );
        }
        Err(error) => assert!((400..=505).contains(&error.status())),
    }
}

/// Split at a position derived from the data: prefix first, then everything.
fn check_resumption(data: &[u8], one_shot: &Result<Parsed, net::http::HttpError>, limits: &Limits) {
    let Some(&seed) = data.first() else { return };
    let split = (usize::from(seed) * 7919) % (data.len() + 1);
    let mut parser = RequestParser::new();
    if let Ok(Parsed::Incomplete(_)) = parser.parse(&data[..split], limits) {
        assert_eq!(
            &parser.parse(data, limits),
            one_shot,
            "resumed parse differs (split {split})"
        );
    }
}

fn check_request_view(data: &[u8], limits: &Limits, framing: BodyFraming) {
    let mut owned = data.to_vec();
    let mut parser = RequestParser::new();
    let Ok(Parsed::Complete(head)) = parser.parse(&owned, limits) else {
        panic!("second parse of the same bytes differs");
    };
    assert_eq!(head.body, framing);
    let request = parser
        .request(&head, &mut owned)
        .expect("a complete request must build its view");
    assert!(request.body.len() <= limits.body_bytes_max);
    match framing {
        BodyFraming::None => assert!(request.body.is_empty()),
        BodyFraming::Fixed(span) => assert_eq!(request.body.len(), span.len()),
        BodyFraming::Chunked { decoded_bytes, .. } => assert_eq!(request.body.len(), decoded_bytes),
    }
    assert!(request.headers().len() <= limits.headers_count_max);
    let _ = request.header("content-type");
}
