//! Arbitrary bytes through the hand-written fast reader and the serde path alone: the fast
//! reader's contract (`net/src/openrtb/fast.rs`). When the fast reader accepts a document, the
//! serde path accepts it too and builds the same value (compared by `PartialEq` and by `Debug`
//! text, which tells `-0.0` from `0.0`); whatever the serde path rejects, the fast reader rejects.
//! The fast reader may reject more (it hands unusual input to the serde path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use net::openrtb::paths::{fast_request, fast_response, serde_request, serde_response};

fn check<T: PartialEq + std::fmt::Debug>(fast: Option<T>, serde: Option<T>, what: &str) {
    match (fast, serde) {
        (Some(fast), Some(serde)) => {
            assert_eq!(fast, serde, "{what}: the two paths built different values");
            assert_eq!(format!("{fast:?}"), format!("{serde:?}"), "{what}: Debug text differs");
        }
        (Some(_), None) => panic!("{what}: the fast reader accepted what the serde path rejects"),
        (None, _) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    check(fast_request(data), serde_request(data), "request");
    check(fast_response(data), serde_response(data), "response");
});
