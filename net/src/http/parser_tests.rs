//! Unit tests of the sans-IO parser: framing rules, every error status, resumption.

use proptest::prelude::*;

use super::*;

fn limits() -> Limits {
    Limits::default()
}

fn complete(buf: &[u8]) -> RequestHead {
    match parse_request(buf, &limits()) {
        Ok(Parsed::Complete(head)) => head,
        other => panic!("expected a complete request, got {other:?}"),
    }
}

fn error_status(buf: &[u8], limits: &Limits) -> u16 {
    match parse_request(buf, limits) {
        Err(error) => error.status(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Feed `buf` to one parser in growing prefixes of `step` bytes, as a socket would.
fn parse_in_steps(buf: &[u8], step: usize) -> Result<Parsed, HttpError> {
    let mut parser = RequestParser::new();
    let mut end = 0;
    loop {
        end = (end + step).min(buf.len());
        let parsed = parser.parse(&buf[..end], &limits())?;
        if matches!(parsed, Parsed::Complete(_)) || end == buf.len() {
            return Ok(parsed);
        }
    }
}

fn decoded_body(buf: &[u8]) -> Vec<u8> {
    let mut parser = RequestParser::new();
    let mut owned = buf.to_vec();
    let Ok(Parsed::Complete(head)) = parser.parse(&owned, &limits()) else {
        panic!("not complete");
    };
    let request = parser.request(&head, &mut owned).expect("valid request");
    request.body.to_vec()
}

#[test]
fn simple_get_with_query() {
    let buf = b"GET /bid?x=1&y=2 HTTP/1.1\r\nHost: a\r\nX-Id: 7\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.method, Method::Get);
    assert_eq!(head.path.get(buf), b"/bid");
    assert_eq!(head.query.get(buf), b"x=1&y=2");
    assert_eq!(head.consumed_bytes, buf.len());
    assert!(head.keep_alive);
    assert_eq!(head.body, BodyFraming::None);
}

#[test]
fn request_view_exposes_headers_case_insensitively() {
    let mut buf = b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".to_vec();
    let mut parser = RequestParser::new();
    let Ok(Parsed::Complete(head)) = parser.parse(&buf, &limits()) else {
        panic!("not complete");
    };
    let request = parser.request(&head, &mut buf).expect("valid");
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.method_str(), "POST");
    assert_eq!(request.path, "/e");
    assert_eq!(request.query, "");
    assert_eq!(request.body, b"{}");
    assert_eq!(request.content_type(), Some(&b"application/json"[..]));
    assert_eq!(request.header("HOST"), Some(&b"a"[..]));
    assert_eq!(request.headers().len(), 3);
}

#[test]
fn content_type_is_the_first_field_of_that_name_in_any_case() {
    let mut buf = b"POST /e HTTP/1.1\r\nHost: a\r\nX-Content-Typ: no\r\ncONTENT-tYPE: text/a\r\nContent-Type: text/b\r\nContent-Length: 0\r\n\r\n".to_vec();
    let mut parser = RequestParser::new();
    let Ok(Parsed::Complete(head)) = parser.parse(&buf, &limits()) else {
        panic!("not complete");
    };
    let request = parser.request(&head, &mut buf).expect("valid");
    assert_eq!(request.content_type(), Some(&b"text/a"[..]));
    assert_eq!(request.content_type(), request.header("content-type"));
    let mut bare = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    let Ok(Parsed::Complete(head)) = parser.parse(&bare, &limits()) else {
        panic!("not complete");
    };
    assert_eq!(
        parser.request(&head, &mut bare).unwrap().content_type(),
        None
    );
}

#[test]
fn pipelined_requests_are_consumed_one_at_a_time() {
    let first = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
    let second = b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    let buf = [&first[..], &second[..]].concat();
    let mut parser = RequestParser::new();
    let Ok(Parsed::Complete(head)) = parser.parse(&buf, &limits()) else {
        panic!("first not complete");
    };
    assert_eq!(head.consumed_bytes, first.len());
    let rest = &buf[head.consumed_bytes..];
    let Ok(Parsed::Complete(head)) = parser.parse(rest, &limits()) else {
        panic!("second not complete");
    };
    assert_eq!(head.path.get(rest), b"/b");
    assert_eq!(head.consumed_bytes, second.len());
}

#[test]
fn byte_by_byte_equals_one_shot_for_fixed_and_chunked_bodies() {
    let fixed = b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let chunked =
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n"
            .to_vec();
    for buf in [fixed, chunked] {
        let one_shot = parse_request(&buf, &limits());
        assert!(matches!(one_shot, Ok(Parsed::Complete(_))));
        assert_eq!(parse_in_steps(&buf, 1), one_shot);
        assert_eq!(parse_in_steps(&buf, 7), one_shot);
        assert_eq!(decoded_body(&buf), b"hello");
    }
}

#[test]
fn incomplete_body_reports_head_and_bytes_needed() {
    let buf =
        b"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\nab";
    let head_len = buf.len() - 2;
    match parse_request(buf, &limits()) {
        Ok(Parsed::Incomplete(progress)) => {
            assert!(progress.head_complete);
            assert!(progress.expect_continue);
            assert_eq!(progress.buffer_bytes_min, head_len + 10);
        }
        other => panic!("expected incomplete, got {other:?}"),
    }
}

#[test]
fn expect_continue_is_ignored_without_a_body() {
    let buf = b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n";
    assert!(!complete(buf).expect_continue);
}

#[test]
fn keep_alive_rules_per_version() {
    assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(complete(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
    assert!(!complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(
        !complete(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n").keep_alive
    );
}

#[test]
fn absolute_form_and_asterisk_targets() {
    let buf = b"GET http://example.com:80/p?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    let head = complete(buf);
    assert_eq!(head.path.get(buf), b"/p");
    assert_eq!(head.query.get(buf), b"q=1");
    let mut bare = b"GET HTTP://example.com HTTP/1.1\r\nHost: e\r\n\r\n".to_vec();
    let mut parser = RequestParser::new();
    let Ok(Parsed::Complete(head)) = parser.parse(&bare, &limits()) else {
        panic!("not complete");
    };
    assert_eq!(parser.request(&head, &mut bare).map(|r| r.path), Ok("/"));
    assert_eq!(
        complete(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
            .path
            .len(),
        1
    );
    assert_eq!(
        error_status(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", &limits()),
        400
    );
    assert_eq!(
        error_status(b"GET ftp://x/ HTTP/1.1\r\nHost: a\r\n\r\n", &limits()),
        400
    );
}

#[test]
fn malformed_requests_are_400() {
    let cases: [&[u8]; 9] = [
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    for case in cases {
        assert_eq!(
            error_status(case, &limits()),
            400,
            "{}",
            String::from_utf8_lossy(case)
        );
    }
}

#[test]
fn bad_chunk_framing_is_400() {
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let bodies: [&[u8]; 3] = [
        b"3\r\nabcX\r\n0\r\n\r\n",
        b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
        b"-1\r\n",
    ];
    for body in bodies {
        let buf = [&head[..], body].concat();
        assert_eq!(
            error_status(&buf, &limits()),
            400,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let long_line = [&head[..], b"1;", &[b'e'; CHUNK_LINE_BYTES_MAX][..]].concat();
    assert_eq!(error_status(&long_line, &limits()), 400);
}

#[test]
fn post_and_put_without_length_are_411() {
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: a\r\n\r\n", &limits()),
        411
    );
    assert_eq!(
        error_status(b"PUT / HTTP/1.1\r\nHost: a\r\n\r\n", &limits()),
        411
    );
}

#[test]
fn declared_body_too_large_is_413_before_any_body_byte() {
    let limits = Limits {
        body_bytes_max: 100,
        ..Limits::default()
    };
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n";
    assert_eq!(error_status(buf, &limits), 413);
    let huge = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    assert_eq!(error_status(huge, &limits), 413);
}

#[test]
fn chunked_body_too_large_is_413_before_its_data_arrives() {
    let limits = Limits {
        body_bytes_max: 100,
        ..Limits::default()
    };
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let one_big_chunk = [&head[..], b"65\r\n"].concat();
    assert_eq!(error_status(&one_big_chunk, &limits), 413);
    let mut many_small = head.to_vec();
    for _ in 0..60 {
        many_small.extend_from_slice(b"2\r\nab\r\n");
    }
    assert_eq!(error_status(&many_small, &limits), 413);
    let huge_size = [&head[..], b"ffffffffffffffff\r\n"].concat();
    assert_eq!(error_status(&huge_size, &limits), 413);
}

#[test]
fn header_section_too_large_is_431() {
    let limits = Limits {
        header_bytes_max: 256,
        ..Limits::default()
    };
    let big_value = [
        &b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: "[..],
        &[b'v'; 300][..],
        &b"\r\n\r\n"[..],
    ]
    .concat();
    assert_eq!(error_status(&big_value, &limits), 431);
    let incomplete = &big_value[..260];
    assert_eq!(error_status(incomplete, &limits), 431);
}

#[test]
fn too_many_headers_is_431() {
    let limits = Limits {
        headers_count_max: 4,
        ..Limits::default()
    };
    let four = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert!(matches!(
        parse_request(four, &limits),
        Ok(Parsed::Complete(_))
    ));
    let five = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_eq!(error_status(five, &limits), 431);
}

#[test]
fn unsupported_transfer_coding_is_501() {
    let buf = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(error_status(buf, &limits()), 501);
}

#[test]
fn http2_preface_and_other_versions_are_505() {
    assert_eq!(
        error_status(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &limits()),
        505
    );
    assert_eq!(
        error_status(b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", &limits()),
        505
    );
    assert_eq!(error_status(b"GET / HTTP/3.0\r\n\r\n", &limits()), 505);
    assert_eq!(error_status(b"THIS IS NOT HTTP\r\n\r\n", &limits()), 400);
    assert_eq!(error_status(b"GET / FTP/1.1\r\n\r\n", &limits()), 400);
}

#[test]
fn decode_rejects_spans_outside_the_buffer() {
    let mut buf = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
    let outside = Span { start: 0, end: 100 };
    assert!(decode_chunked_in_place(&mut buf, outside).is_err());
    let whole = Span {
        start: 0,
        end: buf.len(),
    };
    assert_eq!(decode_chunked_in_place(&mut buf, whole), Ok(3));
    assert_eq!(&buf[..3], b"abc");
}

fn chunked_request(body: &[u8], chunk_sizes: &[usize]) -> Vec<u8> {
    let mut buf = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
        buf.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        buf.extend_from_slice(&rest[..size]);
        buf.extend_from_slice(b"\r\n");
        rest = &rest[size..];
    }
    buf.extend_from_slice(b"0\r\n\r\n");
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunked_bodies_survive_any_split(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        chunk_sizes in proptest::collection::vec(1usize..200, 1..8),
        step in 1usize..64,
    ) {
        let buf = chunked_request(&body, &chunk_sizes);
        let one_shot = parse_request(&buf, &limits());
        prop_assert!(matches!(one_shot, Ok(Parsed::Complete(_))));
        prop_assert_eq!(parse_in_steps(&buf, step), one_shot);
        prop_assert_eq!(decoded_body(&buf), body);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_overconsume(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(Parsed::Complete(head)) = parse_request(&bytes, &limits()) {
            prop_assert!(head.consumed_bytes <= bytes.len());
        }
    }
}

#[test]
fn request_targets_must_be_utf8() {
    let utf8 = b"GET /caf\xc3\xa9?q=\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut buf = utf8.to_vec();
    let head = complete(&buf);
    let parser = RequestParser::new();
    let request = parser.request(&head, &mut buf).unwrap();
    assert_eq!((request.path, request.query), ("/café", "q=é"));
    assert_eq!(
        error_status(b"GET /caf\xc3 HTTP/1.1\r\nHost: a\r\n\r\n", &limits()),
        400
    );
}
