//! Request validation pinned to exact messages, Prebid-Server style: a table of
//! (request body, expected error) cases run through `parse_bid_request` + `validate_bid_request`.

use net::openrtb::{
    NESTING_DEPTH_MAX, RequestError, ValidationLimits, nbr, parse_bid_request, parse_bid_response,
    validate_bid_request,
};

fn check(body: &[u8]) -> Result<(), RequestError> {
    let request = parse_bid_request(body)?;
    validate_bid_request(&request, &ValidationLimits::default())
}

/// (request body, expected message); every body differs from a valid request in one way.
const CASES: &[(&str, &str)] = &[
    // --- JSON and types ---
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]"#,
        "request body is not valid JSON: EOF while parsing at line 1 column 55",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]}x"#,
        "request body is not valid JSON: JSON has non-whitespace trailing characters after the value at line 1 column 57",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250},}]}"#,
        "request body is not valid JSON: JSON has a comma after the last value in an array or object at line 1 column 55",
    ),
    (
        "",
        "request body is not valid JSON: EOF while parsing at line 1 column 1",
    ),
    (r#"[1]"#, "request must be an object"),
    (
        r#"{"id":7,"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.id must be a string",
    ),
    (
        r#"{"id":"r","imp":{"id":"1"}}"#,
        "request.imp must be an array",
    ),
    (
        r#"{"id":"r","imp":["x"]}"#,
        "request.imp[0] must be an object",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","bidfloor":"0.5","banner":{"w":300,"h":250}}]}"#,
        "request.imp[0].bidfloor must be a number",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":"300","h":250}}]}"#,
        "request.imp[0].banner.w must be an integer from 0 to 4294967295",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":-300,"h":250}}]}"#,
        "request.imp[0].banner.w must be an integer from 0 to 4294967295",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300.5,"h":250}}]}"#,
        "request.imp[0].banner.w must be an integer from 0 to 4294967295",
    ),
    (
        r#"{"id":"r","tmax":-1,"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.tmax must be a non-negative integer",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"device":{"geo":{"utcoffset":"+1"}}}"#,
        "request.device.geo.utcoffset must be an integer from -2147483648 to 2147483647",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":300,"h":true}]}}]}"#,
        "request.imp[0].banner.format[0].h must be an integer from 0 to 4294967295",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"cur":"USD"}"#,
        "request.cur must be an array",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","bidfloor":1e400,"banner":{"w":300,"h":250}}]}"#,
        "request body is not valid JSON: Float number must be finite, not be Infinity or NaN at line 1 column 43",
    ),
    (
        r#"{"id":"r","id":"s","imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.id appears more than once",
    ),
    // --- required members ---
    (
        r#"{"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.id is required",
    ),
    (
        r#"{"id":"","imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.id must not be empty",
    ),
    (r#"{"id":"r"}"#, "request.imp is required"),
    (
        r#"{"id":"r","imp":[]}"#,
        "request.imp must contain at least one impression",
    ),
    (
        r#"{"id":"r","imp":[{"banner":{"w":300,"h":250}}]}"#,
        "request.imp[0].id is required",
    ),
    (
        r#"{"id":"r","imp":[{"id":"","banner":{"w":300,"h":250}}]}"#,
        "request.imp[0].id must not be empty",
    ),
    (
        r#"{"id":"r","imp":[{"id":"x","banner":{"w":300,"h":250}},{"id":"x","banner":{"w":300,"h":250}}]}"#,
        r#"request.imp[1].id "x" duplicates request.imp[0].id"#,
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","tagid":"t"}]}"#,
        "request.imp[0] must have at least one of banner, video, native, audio",
    ),
    // --- banner sizes ---
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"pos":1}}]}"#,
        "request.imp[0].banner must have w and h, or a non-empty format",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300}}]}"#,
        "request.imp[0].banner must have w and h, or a non-empty format",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":0}}]}"#,
        "request.imp[0].banner.h must be a positive number",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250,"format":[]}}]}"#,
        "request.imp[0].banner.format must not be empty",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":300,"h":250},{"w":0,"h":250}]}}]}"#,
        "request.imp[0].banner.format[1].w must be a positive number",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":300}]}}]}"#,
        "request.imp[0].banner.format[0] must have w and h, or wratio and hratio",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","video":{"mimes":["video/mp4"],"w":0,"h":480}}]}"#,
        "request.imp[0].video.w must be a positive number",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","video":{"mimes":["video/mp4"],"minduration":30,"maxduration":15}}]}"#,
        "request.imp[0].video.minduration 30 is greater than request.imp[0].video.maxduration 15",
    ),
    // --- floors and currencies ---
    (
        r#"{"id":"r","imp":[{"id":"1","bidfloor":-0.01,"banner":{"w":300,"h":250}}]}"#,
        "request.imp[0].bidfloor must not be negative",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","bidfloorcur":"usd","banner":{"w":300,"h":250}}]}"#,
        r#"request.imp[0].bidfloorcur must be a 3-letter ISO-4217 currency code, not "usd""#,
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","bidfloorcur":"EURO","banner":{"w":300,"h":250}}]}"#,
        r#"request.imp[0].bidfloorcur must be a 3-letter ISO-4217 currency code, not "EURO""#,
    ),
    (
        r#"{"id":"r","cur":["USD","€"],"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        r#"request.cur[1] must be a 3-letter ISO-4217 currency code, not "€""#,
    ),
    // --- deals ---
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250},"pmp":{"deals":[{"bidfloor":1}]}}]}"#,
        "request.imp[0].pmp.deals[0].id is required",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250},"pmp":{"deals":[{"id":"d1"},{"id":""}]}}]}"#,
        "request.imp[0].pmp.deals[1].id must not be empty",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250},"pmp":{"deals":[{"id":"d1","bidfloor":-2}]}}]}"#,
        "request.imp[0].pmp.deals[0].bidfloor must not be negative",
    ),
    // --- request level ---
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":{"page":"p"},"app":{"bundle":"b"}}"#,
        "request must contain at most one of site, app, dooh",
    ),
    (
        r#"{"id":"r","tmax":0,"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.tmax 0 is below the minimum of 10 ms",
    ),
    (
        r#"{"id":"r","tmax":10001,"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.tmax 10001 is above the maximum of 10000 ms",
    ),
    (
        r#"{"id":"r","at":3,"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.at must be 1 (first price), 2 (second price) or 500 and above, not 3",
    ),
    (
        r#"{"id":"r","test":2,"imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        "request.test must be 0 or 1, not 2",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"device":{"geo":{"lat":91.5,"lon":0}}}"#,
        "request.device.geo.lat must be between -90 and 90",
    ),
    (
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"user":{"geo":{"lon":-180.01}}}"#,
        "request.user.geo.lon must be between -180 and 180",
    ),
];

#[test]
fn every_case_fails_with_its_exact_message() {
    assert!(CASES.len() >= 30);
    let mut mismatches = Vec::new();
    for (body, expected) in CASES {
        match check(body.as_bytes()) {
            Ok(()) => mismatches.push(format!("accepted: {body}")),
            Err(error) => {
                assert_eq!(error.nbr(), nbr::INVALID_REQUEST);
                assert_eq!(error.to_string(), error.message);
                if error.message != *expected {
                    mismatches.push(format!(
                        "{body}\n  expected: {expected}\n  got:      {}",
                        error.message
                    ));
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn the_valid_base_request_and_its_25_variants_pass() {
    let accepted = [
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}]}"#,
        r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"wratio":16,"hratio":9,"wmin":320}]}}]}"#,
        r#"{"id":"r","imp":[{"id":"1","instl":1,"banner":{"w":0,"h":0}}]}"#,
        r#"{"id":"r","imp":[{"id":"1","native":{"request":"{}","ver":"1.2"}}]}"#,
        r#"{"id":"r","imp":[{"id":"1","audio":{"mimes":["audio/mp4"]}}]}"#,
        r#"{"id":"r","at":1,"tmax":10,"test":0,"cur":["EUR"],"imp":[{"id":"1","bidfloor":0,"bidfloorcur":"EUR","banner":{"w":1,"h":1}}]}"#,
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"regs":{"ext":{"gdpr":1}},"user":{"ext":{"consent":"CO"}},"zz":{"unknown":true}}"#,
        r#"{"id":"r","imp":[{"id":"1","banner":{"w":300,"h":250}}],"site":null,"app":{"bundle":"b"}}"#,
    ];
    for body in accepted {
        check(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

#[test]
fn invalid_utf8_names_the_byte() {
    let mut body = br#"{"id":"r","imp":[{"id":""#.to_vec();
    let offset = body.len();
    body.extend_from_slice(b"\xff\"}]}");
    let error = check(&body).unwrap_err();
    assert_eq!(
        error.message,
        format!("request body is not valid UTF-8 at byte {offset}")
    );
}

#[test]
fn deep_nesting_is_refused_with_the_byte_it_starts_at() {
    let depth = 1_000_000;
    let body = format!(
        r#"{{"id":"r","ext":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let error = check(body.as_bytes()).unwrap_err();
    assert_eq!(
        error.message,
        format!(
            "request body has nesting deeper than {NESTING_DEPTH_MAX} levels at byte {}",
            16 + NESTING_DEPTH_MAX - 1
        )
    );
}

#[test]
fn limits_are_enforced_at_their_bound() {
    let limits = ValidationLimits::default();
    let imps = |count: usize| {
        let list: Vec<String> = (0..count)
            .map(|i| format!(r#"{{"id":"{i}","banner":{{"w":1,"h":1}}}}"#))
            .collect();
        format!(r#"{{"id":"r","imp":[{}]}}"#, list.join(","))
    };
    check(imps(limits.imp_count_max).as_bytes()).expect("imp count at the limit is accepted");
    assert_eq!(
        check(imps(limits.imp_count_max + 1).as_bytes())
            .unwrap_err()
            .message,
        "request.imp has 65 entries, more than the limit of 64"
    );
    let formats = |count: usize| {
        let list = vec![r#"{"w":1,"h":1}"#; count].join(",");
        format!(r#"{{"id":"r","imp":[{{"id":"1","banner":{{"format":[{list}]}}}}]}}"#)
    };
    check(formats(limits.format_count_max).as_bytes()).expect("format count at the limit");
    assert_eq!(
        check(formats(limits.format_count_max + 1).as_bytes())
            .unwrap_err()
            .message,
        "request.imp[0].banner.format has 33 entries, more than the limit of 32"
    );
    let deals = |count: usize| {
        let list: Vec<String> = (0..count).map(|i| format!(r#"{{"id":"d{i}"}}"#)).collect();
        format!(
            r#"{{"id":"r","imp":[{{"id":"1","banner":{{"w":1,"h":1}},"pmp":{{"deals":[{}]}}}}]}}"#,
            list.join(",")
        )
    };
    check(deals(limits.deal_count_max).as_bytes()).expect("deal count at the limit");
    assert_eq!(
        check(deals(limits.deal_count_max + 1).as_bytes())
            .unwrap_err()
            .message,
        "request.imp[0].pmp.deals has 65 entries, more than the limit of 64"
    );
    for (member, count_max) in [
        ("cur", limits.cur_count_max),
        ("bcat", limits.bcat_count_max),
        ("badv", limits.badv_count_max),
    ] {
        let body = |count: usize| {
            let list = vec![r#""USD""#; count].join(",");
            format!(
                r#"{{"id":"r","{member}":[{list}],"imp":[{{"id":"1","banner":{{"w":1,"h":1}}}}]}}"#
            )
        };
        check(body(count_max).as_bytes()).unwrap_or_else(|e| panic!("{member} at the limit: {e}"));
        assert_eq!(
            check(body(count_max + 1).as_bytes()).unwrap_err().message,
            format!(
                "request.{member} has {} entries, more than the limit of {count_max}",
                count_max + 1
            )
        );
    }
    let long_id = "x".repeat(limits.id_bytes_max + 1);
    let body = format!(r#"{{"id":"{long_id}","imp":[{{"id":"1","banner":{{"w":1,"h":1}}}}]}}"#);
    assert_eq!(
        check(body.as_bytes()).unwrap_err().message,
        "request.id is 129 bytes long, more than the limit of 128"
    );
}

#[test]
fn non_finite_floors_built_in_code_are_refused() {
    let mut request =
        parse_bid_request(br#"{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}]}"#).unwrap();
    request.imp[0].bidfloor = f64::NAN;
    let error = validate_bid_request(&request, &ValidationLimits::default()).unwrap_err();
    assert_eq!(
        error.message,
        "request.imp[0].bidfloor must be a finite number"
    );
}

#[test]
fn response_errors_are_path_qualified() {
    let cases = [
        (
            r#"{"id":"r","seatbid":[{"bid":[{"id":"b","impid":"1","price":"1.5"}]}]}"#,
            "response.seatbid[0].bid[0].price must be a number",
        ),
        (
            r#"{"id":"r","seatbid":[{"bid":[{"id":"b","impid":"1"}]}]}"#,
            "response.seatbid[0].bid[0].price is required",
        ),
        (r#"{"seatbid":[]}"#, "response.id is required"),
        (
            r#"{"id":"r","seatbid":[{"seat":"s"}]}"#,
            "response.seatbid[0].bid is required",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            parse_bid_response(body.as_bytes()).unwrap_err().message,
            expected,
            "{body}"
        );
    }
}

#[test]
fn responses_are_checked_against_their_request() {
    use net::openrtb::validate_bid_response;
    let request = parse_bid_request(
        br#"{"id":"r","cur":["EUR"],"imp":[{"id":"1","banner":{"w":1,"h":1}},{"id":"2","banner":{"w":1,"h":1}}]}"#,
    )
    .unwrap();
    let cases = [
        (
            r#"{"id":"r","cur":"EUR","seatbid":[{"bid":[{"id":"b","impid":"2","price":1.5}]}]}"#,
            None,
        ),
        (
            r#"{"id":"r","nbr":2}"#,
            Some(r#"response.cur "USD" is not allowed by request.cur"#),
        ),
        (
            r#"{"id":"x","cur":"EUR"}"#,
            Some(r#"response.id "x" does not match request.id "r""#),
        ),
        (
            r#"{"id":"r","cur":"EUR","seatbid":[{"bid":[{"id":"b","impid":"1","price":1},{"id":"c","impid":"9","price":1}]}]}"#,
            Some(r#"response.seatbid[0].bid[1].impid "9" matches no request.imp[].id"#),
        ),
        (
            r#"{"id":"r","cur":"EUR","seatbid":[{"bid":[{"id":"b","impid":"1","price":0}]}]}"#,
            Some("response.seatbid[0].bid[0].price must be a positive number"),
        ),
        (
            r#"{"id":"r","cur":"EUR","seatbid":[{"bid":[]}]}"#,
            Some("response.seatbid[0].bid must not be empty"),
        ),
        (
            r#"{"id":"r","cur":"EUR","seatbid":[{"bid":[{"id":"","impid":"1","price":1}]}]}"#,
            Some("response.seatbid[0].bid[0].id must not be empty"),
        ),
    ];
    for (body, expected) in cases {
        let response =
            parse_bid_response(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
        let got = validate_bid_response(&response, &request)
            .err()
            .map(|e| e.message);
        assert_eq!(got.as_deref(), expected, "{body}");
    }
    let many: Vec<String> = (0..=net::openrtb::RESPONSE_BID_COUNT_MAX)
        .map(|i| format!(r#"{{"id":"b{i}","impid":"1","price":1}}"#))
        .collect();
    let body = format!(
        r#"{{"id":"r","cur":"EUR","seatbid":[{{"bid":[{}]}}]}}"#,
        many.join(",")
    );
    let response = parse_bid_response(body.as_bytes()).unwrap();
    assert_eq!(
        validate_bid_response(&response, &request)
            .unwrap_err()
            .message,
        "response has 257 bids, more than the limit of 256"
    );
}
