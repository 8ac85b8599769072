//! Arbitrary bytes -> parse_bid_request -> validate -> write -> parse again: never panics, and a
//! parsed request survives write + parse unchanged (a second write is byte-identical). The same
//! bytes also go through parse_bid_response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::openrtb::{
    ValidationLimits, parse_bid_request, parse_bid_response, validate_bid_request,
    write_bid_request, write_bid_response,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = parse_bid_request(data) {
        let valid = validate_bid_request(&request, &ValidationLimits::default()).is_ok();
        let mut written = Vec::new();
        write_bid_request(&request, &mut written);
        let again = parse_bid_request(&written).expect("a written request parses");
        assert_eq!(again, request, "write + parse changed the request");
        assert_eq!(
            validate_bid_request(&again, &ValidationLimits::default()).is_ok(),
            valid,
            "validation changed after a round trip"
        );
        let mut rewritten = Vec::new();
        write_bid_request(&again, &mut rewritten);
        assert_eq!(written, rewritten, "second write differs");
    }
    if let Ok(response) = parse_bid_response(data) {
        let mut written = Vec::new();
        write_bid_response(&response, &mut written);
        let again = parse_bid_response(&written).expect("a written response parses");
        assert_eq!(again, response, "write + parse changed the response");
    }
});
