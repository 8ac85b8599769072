//! The public OpenRTB sample corpus (IAB, Prebid, TripleLift, BSM) in `shared/data/openrtb/`:
//! every request parses and validates, every response parses, and parse -> write -> parse loses
//! nothing (compared as generic JSON values, numbers numerically), unknown members included.

mod common;

use common::corpus_files;
use net::openrtb::{
    BidRequest, ValidationLimits, parse_bid_request, parse_bid_request_boxed,
    parse_bid_request_reusing, parse_bid_response, validate_bid_request, write_bid_request,
    write_bid_response,
};
use serde_json::Value;

/// Differences between two JSON values; numbers compare numerically, object key order is ignored.
fn json_differences(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                match a.get(key) {
                    Some(other) => json_differences(value, other, &format!("{path}.{key}"), out),
                    None => out.push(format!("lost {path}.{key}")),
                }
            }
            for key in a.keys().filter(|key| !e.contains_key(*key)) {
                out.push(format!("added {path}.{key}"));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (index, (x, y)) in e.iter().zip(a).enumerate() {
                json_differences(x, y, &format!("{path}[{index}]"), out);
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            if e.as_f64() != a.as_f64() {
                out.push(format!("changed {path}: {e} -> {a}"));
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("changed {path}: {expected} -> {actual}")),
    }
}

fn assert_same_json(original: &[u8], written: &[u8], name: &str) {
    let expected: Value = serde_json::from_slice(original).expect("corpus file is JSON");
    let actual: Value = serde_json::from_slice(written).unwrap_or_else(|e| {
        panic!(
            "{name}: written JSON invalid: {e}\n{}",
            String::from_utf8_lossy(written)
        )
    });
    let mut differences = Vec::new();
    json_differences(&expected, &actual, "", &mut differences);
    assert!(
        differences.is_empty(),
        "{name}: round trip differs: {differences:?}"
    );
}

/// A request reused from a pool (reset, buffers kept) parses every corpus document exactly as a
/// fresh one does, whatever the previous document held; forwards and backwards, so each document
/// follows both a smaller and a larger one.
#[test]
fn a_reused_request_parses_like_a_fresh_one() {
    let mut files = corpus_files("requests");
    // Unknown top-level members (kept in `extra`): none of the corpus documents has one.
    let mut with_extra: Value = serde_json::from_slice(&files[0].1).unwrap();
    with_extra["x-unknown"] = serde_json::json!({"a": [1, 2]});
    files.insert(
        1,
        (
            "with-extra".into(),
            serde_json::to_vec(&with_extra).unwrap(),
        ),
    );
    let mut reused = BidRequest::default();
    for (name, body) in files.iter().chain(files.iter().rev()) {
        let fresh = parse_bid_request(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        parse_bid_request_reusing(body, &mut reused).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(reused, fresh, "{name}");
    }
    let failing = parse_bid_request_reusing(b"{\"id\":1}", &mut reused);
    assert!(failing.is_err());
    let (name, body) = &files[0];
    parse_bid_request_reusing(body, &mut reused).unwrap();
    assert_eq!(
        reused,
        parse_bid_request(body).unwrap(),
        "{name} after a failed parse"
    );
}

#[test]
fn every_corpus_request_parses_and_validates() {
    let limits = ValidationLimits::default();
    for (name, body) in corpus_files("requests") {
        let request = parse_bid_request(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        validate_bid_request(&request, &limits).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!request.imp.is_empty(), "{name}");
        let boxed = parse_bid_request_boxed(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(*boxed, request, "{name}: the boxed parse differs");
    }
}

#[test]
fn every_corpus_response_parses() {
    for (name, body) in corpus_files("responses") {
        let response = parse_bid_response(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!response.id.is_empty(), "{name}");
    }
}

#[test]
fn corpus_requests_round_trip_losslessly() {
    let mut out = Vec::new();
    for (name, body) in corpus_files("requests") {
        let request = parse_bid_request(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.clear();
        write_bid_request(&request, &mut out);
        assert_same_json(&body, &out, &name);
        let again = parse_bid_request(&out).unwrap_or_else(|e| panic!("{name} reparse: {e}"));
        assert_eq!(again, request, "{name}: parse(write(x)) != x");
    }
}

#[test]
fn corpus_responses_round_trip_losslessly() {
    let mut out = Vec::new();
    for (name, body) in corpus_files("responses") {
        let response = parse_bid_response(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.clear();
        write_bid_response(&response, &mut out);
        assert_same_json(&body, &out, &name);
        let again = parse_bid_response(&out).unwrap_or_else(|e| panic!("{name} reparse: {e}"));
        assert_eq!(again, response, "{name}: parse(write(x)) != x");
    }
}

/// Adds unknown members at the top level, in every impression, banner, deal, device and bid.
fn add_unknown_members(value: &mut Value, depth: usize) {
    if let Value::Object(map) = value {
        for member in map.values_mut() {
            add_unknown_members(member, depth + 1);
        }
        map.insert(
            format!("zz_unknown_{depth}"),
            serde_json::json!({"n": [1, 2.5, "x"], "deep": {"k": null}}),
        );
    } else if let Value::Array(items) = value {
        for item in items {
            add_unknown_members(item, depth + 1);
        }
    }
}

#[test]
fn unknown_members_survive_everywhere_except_inside_raw_values() {
    let mut out = Vec::new();
    for (kind, is_request) in [("requests", true), ("responses", false)] {
        for (name, body) in corpus_files(kind) {
            let mut value: Value = serde_json::from_slice(&body).expect("corpus JSON");
            add_unknown_members(&mut value, 0);
            let injected = serde_json::to_vec(&value).expect("serialize");
            out.clear();
            if is_request {
                let request =
                    parse_bid_request(&injected).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(
                    request
                        .extra
                        .iter()
                        .any(|(key, _)| &**key == "zz_unknown_0"),
                    "{name}"
                );
                write_bid_request(&request, &mut out);
            } else {
                let response =
                    parse_bid_response(&injected).unwrap_or_else(|e| panic!("{name}: {e}"));
                write_bid_response(&response, &mut out);
            }
            assert_same_json(&injected, &out, &name);
        }
    }
}

#[test]
fn write_appends_to_a_reused_buffer() {
    let (_, body) = corpus_files("responses").remove(0);
    let response = parse_bid_response(&body).expect("parse");
    let mut out = b"prefix".to_vec();
    write_bid_response(&response, &mut out);
    assert!(out.starts_with(b"prefix{"));
    let capacity = out.capacity();
    out.clear();
    write_bid_response(&response, &mut out);
    assert_eq!(
        out.capacity(),
        capacity,
        "a cleared buffer is reused, not reallocated"
    );
    assert_same_json(&body, &out, "reused");
}
