//! Lossless round trips in detail: raw `ext` text kept byte for byte, absent vs explicit defaults,
//! escaped strings, responses built in code, and a property test over generated strings/numbers.

use net::openrtb::{
    Bid, BidResponse, RawJson, SeatBid, nbr, parse_bid_request, parse_bid_response,
    write_bid_request, write_bid_response,
};
use proptest::prelude::*;

fn written_request(body: &str) -> String {
    let request = parse_bid_request(body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e}"));
    let mut out = Vec::new();
    write_bid_request(&request, &mut out);
    String::from_utf8(out).expect("UTF-8 output")
}

#[test]
fn raw_text_is_kept_verbatim() {
    // Number spelling, key order, escapes and whitespace inside ext are kept exactly.
    let body = r#"{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}],"ext":{"b":1.10, "a":[1E2,"\u00e9"],"big":123456789012345678901234567890}}"#;
    let written = written_request(body);
    assert!(
        written.contains(
            r#""ext":{"b":1.10, "a":[1E2,"\u00e9"],"big":123456789012345678901234567890}"#
        ),
        "{written}"
    );
}

#[test]
fn absent_members_stay_absent_and_explicit_defaults_stay() {
    let body = r#"{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}]}"#;
    assert_eq!(written_request(body), body);
    // Members are written in declaration order; these inputs already follow it.
    let body = r#"{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1},"pmp":{"deals":[]},"bidfloor":0}],"site":null,"cur":[]}"#;
    assert_eq!(written_request(body), body);
}

#[test]
fn openrtb_25_members_land_in_ext() {
    let body = r#"{"id":"r","imp":[{"id":"1","banner":{"w":1,"h":1}}],"regs":{"ext":{"gdpr":1}},"user":{"ext":{"consent":"BOx"}}}"#;
    let request = parse_bid_request(body.as_bytes()).expect("parse");
    let regs_ext = request
        .regs
        .as_ref()
        .and_then(|regs| regs.ext.as_ref())
        .expect("regs.ext");
    assert_eq!(
        regs_ext.get("gdpr").map(|v| v.as_raw_str().to_owned()),
        Some("1".into())
    );
    let user = request.user.as_ref().expect("user");
    assert_eq!(user.consent, None);
    assert_eq!(
        user.ext
            .as_ref()
            .and_then(|ext| ext.get("consent"))
            .map(|v| v.as_raw_str().to_owned()),
        Some(r#""BOx""#.into())
    );
}

#[test]
fn escaped_strings_and_keys_round_trip() {
    let body = "{\"id\":\"r\\\"q\\n\\u00e9\\ud83d\\ude00\",\"\\u0069mp\":[{\"id\":\"1\",\"banner\":{\"w\":1,\"h\":1}}],\"odd\\tkey\":1}";
    let request = parse_bid_request(body.as_bytes()).expect("parse");
    assert_eq!(request.id, "r\"q\né😀");
    assert_eq!(request.imp.len(), 1, "an escaped known key is recognised");
    assert_eq!(&*request.extra[0].0, "odd\tkey");
    let written = written_request(body);
    assert_eq!(
        parse_bid_request(written.as_bytes()).expect("reparse"),
        request
    );
}

#[test]
fn responses_built_in_code_are_written_as_expected() {
    let response = BidResponse {
        id: "req-1".into(),
        cur: Some("EUR".into()),
        seatbid: vec![SeatBid {
            seat: Some("seat-9".into()),
            bid: vec![Bid {
                id: "b1".into(),
                impid: "1".into(),
                price: 1.25,
                adomain: vec!["ad.example".into()],
                adm: Some("<div class=\"ad\">\n</div>".into()),
                w: Some(300),
                h: Some(250),
                ext: Some(RawJson::parse(r#"{"dsp":"x"}"#).expect("raw")),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::new();
    write_bid_response(&response, &mut out);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#"{"id":"req-1","seatbid":[{"bid":[{"id":"b1","impid":"1","price":1.25,"adm":"<div class=\"ad\">\n</div>","adomain":["ad.example"],"w":300,"h":250,"ext":{"dsp":"x"}}],"seat":"seat-9"}],"cur":"EUR"}"#
    );
    let parsed = parse_bid_response(&out).expect("parse");
    assert_eq!(parsed.seatbid[0].bid[0].price, 1.25);
    assert_eq!(parsed.currency(), "EUR");

    let no_bid = BidResponse {
        id: "req-2".into(),
        nbr: Some(nbr::INVALID_REQUEST),
        ..Default::default()
    };
    out.clear();
    write_bid_response(&no_bid, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), r#"{"id":"req-2","nbr":2}"#);
}

#[test]
fn required_members_are_written_even_when_default() {
    let response = BidResponse {
        id: "r".into(),
        seatbid: vec![SeatBid {
            bid: vec![Bid::default()],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut out = Vec::new();
    write_bid_response(&response, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"id":"r","seatbid":[{"bid":[{"id":"","impid":"","price":0}]}]}"#
    );
}

#[test]
fn raw_json_rejects_invalid_or_too_deep_text() {
    assert!(RawJson::parse(r#"{"a":[1,2]}"#).is_ok());
    assert!(RawJson::parse(r#"{"a":tru}"#).is_err());
    assert!(RawJson::parse(&"[".repeat(100_000)).is_err());
}

#[test]
fn serde_json_can_read_the_same_types() {
    // The generic (non-sonic) path of RawJson: serde_json builds the value and it is re-written.
    let body = r#"{"id":"r","imp":[{"id":"1","bidfloor":0.5,"banner":{"w":1,"h":1}}],"ext":{"k":[1,"x"]}}"#;
    let request: net::openrtb::BidRequest = serde_json::from_str(body).expect("serde_json parse");
    assert_eq!(request.imp[0].bidfloor, 0.5);
    assert_eq!(
        request.ext.as_ref().map(RawJson::as_str),
        Some(r#"{"k":[1,"x"]}"#)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn generated_requests_round_trip(
        id in "\\PC{1,20}",
        tagid in any::<String>(),
        floor in 0.0f64..1.0e6,
        w in 1u32..5000,
        page in any::<String>(),
    ) {
        let mut request = parse_bid_request(br#"{"id":"x","imp":[{"id":"1","banner":{"w":1,"h":1}}],"site":{}}"#).unwrap();
        request.id = id.into();
        request.imp[0].tagid = Some(tagid.into());
        request.imp[0].bidfloor = floor;
        request.imp[0].banner.as_mut().unwrap().w = Some(w);
        request.site.as_mut().unwrap().page = Some(page.into());
        let mut out = Vec::new();
        write_bid_request(&request, &mut out);
        let again = parse_bid_request(&out).map_err(|e| TestCaseError::fail(e.message))?;
        // `present` differs (code-built vs parsed), so compare the members.
        prop_assert_eq!(&again.id, &request.id);
        prop_assert_eq!(&again.imp[0].tagid, &request.imp[0].tagid);
        prop_assert_eq!(again.imp[0].bidfloor, request.imp[0].bidfloor);
        prop_assert_eq!(again.imp[0].banner.as_ref().unwrap().w, Some(w));
        prop_assert_eq!(&again.site.as_ref().unwrap().page, &request.site.as_ref().unwrap().page);
    }
}
