//! The fast reader (`net/src/openrtb/fast.rs`) against the serde path it short-cuts:
//! - whenever the fast reader accepts a body, the serde path accepts it with an equal value
//!   (and the same written JSON);
//! - whenever the serde path rejects a body, the fast reader rejects it;
//! - the fast reader accepts every corpus file and the perf no-bid body (else no speed-up);
//! - the fast reader bounds nesting itself (no pre-scan runs before it): at the limit it reads
//!   the body, one level deeper it rejects, and the serde path's pre-scan writes the message.
//!
//! Bodies: the shared corpus (`shared/data/openrtb/{requests,responses}`), the perf no-bid body,
//! and deterministic mutations of each (truncations, byte replacements and insertions, number,
//! string and literal substitutions, duplicated and renamed keys, whitespace everywhere).

use std::fmt::Debug;

mod common;

use common::{corpus_files, manifest_path};
use net::openrtb::paths::{fast_request, fast_response, serde_request, serde_response};
use net::openrtb::{
    NESTING_DEPTH_MAX, parse_bid_request, parse_bid_response, write_bid_request, write_bid_response,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Request,
    Response,
}

/// Every corpus body with its kind, plus the perf no-bid request.
fn corpus() -> Vec<(String, Kind, Vec<u8>)> {
    let mut all = Vec::new();
    for (dir, kind) in [("requests", Kind::Request), ("responses", Kind::Response)] {
        let files = corpus_files(dir);
        all.extend(files.into_iter().map(|(name, body)| (name, kind, body)));
    }
    let nobid = std::fs::read(manifest_path("../perf/foundation/nobid-request.json"))
        .expect("perf/foundation/nobid-request.json");
    all.push(("nobid-request.json".into(), Kind::Request, nobid));
    all
}

/// What the two paths did with the bodies checked.
#[derive(Default, Debug)]
struct Tally {
    both_ok: usize,
    fell_back: usize,
    both_rejected: usize,
}

/// Checks the contract on one body; returns whether the fast reader accepted it.
fn check(kind: Kind, body: &[u8], tally: &mut Tally, label: &dyn Fn() -> String) -> bool {
    match kind {
        Kind::Request => compare(
            fast_request(body),
            serde_request(body),
            write_bid_request,
            body,
            tally,
            label,
        ),
        Kind::Response => compare(
            fast_response(body),
            serde_response(body),
            write_bid_response,
            body,
            tally,
            label,
        ),
    }
}

fn compare<T: PartialEq + Debug>(
    fast: Option<T>,
    serde: Option<T>,
    write: impl Fn(&T, &mut Vec<u8>),
    body: &[u8],
    tally: &mut Tally,
    label: &dyn Fn() -> String,
) -> bool {
    let text = || String::from_utf8_lossy(body).into_owned();
    match (&fast, &serde) {
        (Some(fast), Some(serde)) => {
            assert!(
                fast == serde,
                "{}: fast and serde values differ\nbody: {}\nfast:  {fast:?}\nserde: {serde:?}",
                label(),
                text()
            );
            // `Debug` shows what `PartialEq` on f64 hides (`-0.0` against `0.0`).
            assert_eq!(format!("{fast:?}"), format!("{serde:?}"), "{}", label());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            write(fast, &mut a);
            write(serde, &mut b);
            assert!(
                a == b,
                "{}: written JSON differs\nbody: {}",
                label(),
                text()
            );
            tally.both_ok += 1;
        }
        (Some(_), None) => panic!(
            "{}: the fast reader accepted what serde rejects\nbody: {}",
            label(),
            text()
        ),
        (None, Some(_)) => tally.fell_back += 1,
        (None, None) => tally.both_rejected += 1,
    }
    fast.is_some()
}

// ---------- a tiny lexer to find tokens to mutate ----------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Token {
    Str,
    Num,
    Word,
    Punct(u8),
}

/// Tokens of a valid JSON text as (kind, start, end).
fn tokens(body: &[u8]) -> Vec<(Token, usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < body.len() {
        let start = at;
        let kind = match body[at] {
            b' ' | b'\n' | b'\r' | b'\t' => {
                at += 1;
                continue;
            }
            b'"' => {
                at += 1;
                while body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                at += 1;
                Token::Str
            }
            b'-' | b'0'..=b'9' => {
                while at < body.len()
                    && matches!(body[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    at += 1;
                }
                Token::Num
            }
            b'a'..=b'z' => {
                while at < body.len() && body[at].is_ascii_lowercase() {
                    at += 1;
                }
                Token::Word
            }
            byte => {
                at += 1;
                Token::Punct(byte)
            }
        };
        out.push((kind, start, at));
    }
    out
}

/// For each member: (key start, key end, value end) in bytes.
fn members(tokens: &[(Token, usize, usize)]) -> Vec<(usize, usize, usize)> {
    let mut out = Vec::new();
    for index in 0..tokens.len().saturating_sub(2) {
        let (kind, start, end) = tokens[index];
        if kind != Token::Str || tokens[index + 1].0 != Token::Punct(b':') {
            continue;
        }
        let mut depth = 0usize;
        let mut value_end = tokens[index + 2].2;
        for &(kind, _, end) in &tokens[index + 2..] {
            match kind {
                Token::Punct(b'{' | b'[') => depth += 1,
                Token::Punct(b'}' | b']') => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                value_end = end;
                break;
            }
        }
        out.push((start, end, value_end));
    }
    out
}

fn splice(body: &[u8], start: usize, end: usize, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + with.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&body[end..]);
    out
}

const REPLACEMENT_BYTES: &[u8] = b"{}[],:\"\\0-a.e1 \t\x01nE+/";
const INSERTED_BYTES: &[u8] = b" \n,\"0-}]:.";
const NUMBERS: &[&str] = &[
    "01",
    "1.",
    "-",
    "+1",
    ".5",
    "1e2",
    "1E+2",
    "1e-2",
    "1.0",
    "5.0",
    "-0",
    "-0.0",
    "0.0",
    "00",
    "-01",
    "1.5",
    "0.1",
    "-7.25",
    "4294967295",
    "4294967296",
    "-1",
    "-2147483648",
    "-2147483649",
    "2147483647",
    "2147483648",
    "18446744073709551615",
    "18446744073709551616",
    "9999999999999999999",
    "99999999999999999999",
    "123456789012345",
    "1234567890123456",
    "0.123456789012345",
    "0.1234567890123456",
    "1.000000000000001",
    "5e-324",
    "1e400",
    "-1e400",
    "0.0000000000000000000001",
    "0.00000000000000000000001",
    "1-2",
    "1.2.3",
    "1e",
    "1e+",
    "\"1\"",
    "null",
    "true",
    "[]",
    "{}",
    "[1]",
    "nul",
    "tru",
];
const STRINGS: &[&str] = &[
    "\"\"",
    "\"a\\u0000b\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\ude00\"",
    "\"\\u00e9\\u20AC\"",
    "\"\\x\"",
    "\"a\nb\"",
    "\"a\tb\"",
    "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
    "\"\\u12G4\"",
    "\"\\u12\"",
    "\"caf\u{e9} \u{1F600}\"",
    "\"a\\\"",
    "null",
    "1",
    "\"\\",
    "\"\\u\"",
    "{\"a\":\"\\q\"}",
];
const KEY_EDITS: &[&str] = &["\"zz\"", "\"i\\u0064\"", "\"\"", "\"id \"", "\"ext\""];

/// Calls `visit` with each mutation of `body`; `stride` > 1 keeps every `stride`-th position.
fn for_each_mutation(body: &[u8], stride: usize, mut visit: impl FnMut(&str, &[u8])) {
    for cut in (0..body.len()).step_by(stride) {
        visit("truncated", &body[..cut]);
    }
    let tokens = tokens(body);
    let boundaries: Vec<usize> = tokens
        .iter()
        .filter(|(kind, ..)| !matches!(kind, Token::Str))
        .flat_map(|&(_, start, end)| [start, end - 1])
        .chain(
            tokens
                .iter()
                .filter(|t| t.0 == Token::Str)
                .flat_map(|&(_, s, e)| [s, e - 1]),
        )
        .collect();
    for &at in boundaries.iter().step_by(stride) {
        for &byte in REPLACEMENT_BYTES {
            visit("replaced byte", &splice(body, at, at + 1, &[byte]));
        }
        for &byte in INSERTED_BYTES {
            visit("inserted byte", &splice(body, at, at, &[byte]));
        }
    }
    for &(kind, start, end) in tokens.iter().step_by(stride.div_ceil(2)) {
        let table = match kind {
            Token::Num | Token::Word => NUMBERS,
            Token::Str => STRINGS,
            Token::Punct(_) => continue,
        };
        for with in table {
            visit(
                "substituted value",
                &splice(body, start, end, with.as_bytes()),
            );
        }
    }
    for &(key_start, key_end, value_end) in members(&tokens).iter().step_by(stride.div_ceil(2)) {
        let mut duplicated = body[..value_end].to_vec();
        duplicated.push(b',');
        duplicated.extend_from_slice(&body[key_start..value_end]);
        duplicated.extend_from_slice(&body[value_end..]);
        visit("duplicated member", &duplicated);
        for with in KEY_EDITS {
            visit(
                "renamed key",
                &splice(body, key_start, key_end, with.as_bytes()),
            );
        }
        // The member removed (with the comma before or after it).
        let removed = if body[..key_start].trim_ascii_end().ends_with(b",") {
            let comma = body[..key_start]
                .iter()
                .rposition(|&b| b == b',')
                .expect("comma");
            splice(body, comma, value_end, b"")
        } else if body[value_end..].trim_ascii_start().starts_with(b",") {
            let comma = value_end
                + body[value_end..]
                    .iter()
                    .position(|&b| b == b',')
                    .expect("comma");
            splice(body, key_start, comma + 1, b"")
        } else {
            splice(body, key_start, value_end, b"")
        };
        visit("removed member", &removed);
    }
}

/// Every token separated by varied whitespace, with leading and trailing whitespace.
fn spaced(body: &[u8]) -> Vec<u8> {
    let mut out = b" \r\n".to_vec();
    for (index, &(_, start, end)) in tokens(body).iter().enumerate() {
        out.extend_from_slice(&body[start..end]);
        out.extend_from_slice([&b" "[..], b"\n", b"\t", b"\r\n  "][index % 4]);
    }
    out
}

#[test]
fn fast_reader_takes_every_corpus_body() {
    let mut tally = Tally::default();
    let mut rejected = Vec::new();
    for (name, kind, body) in corpus() {
        for (variant, text) in [("as is", body.clone()), ("spaced", spaced(&body))] {
            if !check(kind, &text, &mut tally, &|| format!("{name} {variant}")) {
                rejected.push(format!("{name} {variant}"));
            }
        }
    }
    assert!(
        rejected.is_empty(),
        "the fast reader fell back on {rejected:?}"
    );
    assert_eq!(tally.fell_back + tally.both_rejected, 0, "{tally:?}");
}

#[test]
fn fast_reader_takes_corpus_bodies_with_unknown_members_everywhere() {
    fn add_unknown(value: &mut serde_json::Value, depth: usize) {
        match value {
            serde_json::Value::Object(map) => {
                map.values_mut().for_each(|v| add_unknown(v, depth + 1));
                map.insert(
                    format!("zz_{depth}"),
                    serde_json::json!({"n": [1, 2.5, "x\u{e9}\n", -3e-7, true, false], "d": {"k": null}}),
                );
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|v| add_unknown(v, depth + 1))
            }
            _ => {}
        }
    }
    let mut tally = Tally::default();
    for (name, kind, body) in corpus() {
        let mut value: serde_json::Value = serde_json::from_slice(&body).expect("corpus JSON");
        add_unknown(&mut value, 0);
        let injected = serde_json::to_vec_pretty(&value).expect("serialize");
        assert!(
            check(kind, &injected, &mut tally, &|| name.clone()),
            "{name}: fell back"
        );
    }
}

#[test]
fn mutations_keep_the_contract() {
    // Debug builds check a deterministic subset to stay well under half a minute.
    let stride = if cfg!(debug_assertions) { 5 } else { 1 };
    let mut tally = Tally::default();
    for (name, kind, body) in corpus() {
        for_each_mutation(&body, stride, |what, mutated| {
            check(kind, mutated, &mut tally, &|| format!("{name}: {what}"));
        });
    }
    eprintln!("mutations: {tally:?}");
    assert!(
        tally.both_ok > 1000 && tally.both_rejected > 1000,
        "{tally:?}"
    );
}

/// A minimal request with `member` inside the impression.
fn request_with(member: &str) -> String {
    format!(r#"{{"id":"r","imp":[{{"id":"1",{member}}}]}}"#)
}

#[test]
fn edge_cases_keep_the_contract() {
    let mut tally = Tally::default();
    let mut fast_ok = Vec::new();
    let members = [
        r#""bidfloor":1.5"#,
        r#""bidfloor":0.1"#,
        r#""bidfloor":3"#,
        r#""bidfloor":-0"#,
        r#""bidfloor":1e2"#,
        r#""bidfloor":null"#,
        r#""instl":1.0"#,
        r#""instl":-0"#,
        r#""instl":null"#,
        r#""tagid":"a\u0000b""#,
        r#""tagid":"\ud83d\ude00""#,
        r#""tagid":"\udbff\udfff\ud800\udc00""#,
        r#""tagid":"\ud83d\u0041""#,
        r#""tagid":"\ud83d""#,
        r#""tagid":"\ude00""#,
        r#""tagid":"\ud83d\ude0""#,
        r#""tagid":"\u00e9\u00E9""#,
        r#""tagid":"a\/b\"c""#,
        "\"tagid\":\"a\u{7f}b\"",
        "\"tagid\":\"a\u{1}b\"",
        r#""ext":{"a":[1,2.5e10,-0,"\uD83D\uDE00",true,false,null,{}]}"#,
        r#""ext":{"a":"\u00zz"}"#,
        r#""ext":"\x""#,
        r#""ext":01"#,
        r#""ext": 1 "#,
        r#""zz":  {"a" : [ 1 , 2 ] } "#,
        r#""video":{"startdelay":-2147483648}"#,
        r#""video":{"startdelay":-2147483649}"#,
        r#""video":{"startdelay":2147483648}"#,
        r#""banner":{"w":4294967295}"#,
        r#""banner":{"w":4294967296}"#,
        r#""banner":{"w":300,"w":250}"#,
        r#""banner":{"format":[{"w":1},]}"#,
        r#""banner":{"format":[{"w":1}],}"#,
        r#""banner":{"format":null}"#,
        r#""dt":1700000000000"#,
        r#""dt":1700000000000.5"#,
        r#""metric":[{"type":"viewability","value":0.85}]"#,
        // Unknown names that share a known name's length or prefix stay unknown.
        r#""displaymanagerver":"7""#,
        r#""displaymanagervxx":"7""#,
        r#""displaymanagerver":"7","displaymanagervxx":"8""#,
        r#""tagi":"a","tagidd":"b","tagid":"c""#,
    ];
    for member in members {
        let body = request_with(member);
        if check(Kind::Request, body.as_bytes(), &mut tally, &|| body.clone()) {
            fast_ok.push(member);
        }
    }
    for tmax in ["120", "18446744073709551615", "-1", "1.5"] {
        let body = format!(r#"{{"id":"r","imp":[{{"id":"1"}}],"tmax":{tmax}}}"#);
        check(Kind::Request, body.as_bytes(), &mut tally, &|| body.clone());
    }
    for body in [
        "",
        " ",
        "null",
        "[]",
        "{}",
        r#"{"id":"r"}"#,
        r#"{"id":"r","imp":[]} x"#,
    ] {
        check(Kind::Request, body.as_bytes(), &mut tally, &|| {
            body.to_owned()
        });
    }
    // The common shapes must stay on the fast path.
    for expected in [
        r#""bidfloor":1.5"#,
        r#""tagid":"\u00e9\u00E9""#,
        r#""tagid":"\ud83d\ude00""#,
        r#""zz":  {"a" : [ 1 , 2 ] } "#,
    ] {
        assert!(fast_ok.contains(&expected), "{expected} fell back");
    }
}

#[test]
fn floats_equal_the_serde_path_bit_for_bit() {
    // Deterministic pseudo-random decimals: 1 to 18 digits, the point anywhere, either sign.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut tally = Tally::default();
    for _ in 0..4000 {
        let digits = 1 + (next() % 18) as usize;
        let mut text: String = (0..digits)
            .map(|_| char::from(b'0' + (next() % 10) as u8))
            .collect();
        let point = (next() % (digits as u64 + 1)) as usize;
        if point < digits {
            text.insert(point, '.');
        }
        let text = text.trim_start_matches('0');
        let text = match text.chars().next() {
            None | Some('.') => format!("0{text}"),
            Some(_) => text.to_owned(),
        };
        let text = if text.ends_with('.') {
            format!("{text}0")
        } else {
            text
        };
        let sign = if next() % 2 == 0 { "-" } else { "" };
        let body = request_with(&format!(r#""bidfloor":{sign}{text},"dt":{text}"#));
        let fast = check(Kind::Request, body.as_bytes(), &mut tally, &|| body.clone());
        let significant = text.trim_start_matches(['0', '.']).replace('.', "").len();
        if significant <= 15 && !(sign == "-" && text.parse::<f64>() == Ok(0.0)) {
            assert!(fast, "{body} fell back");
        }
        if fast {
            let request = fast_request(body.as_bytes()).expect("fast");
            assert_eq!(
                request.imp[0].dt,
                Some(text.parse::<f64>().expect("number"))
            );
        }
    }
    assert!(tally.both_ok > 2000, "{tally:?}");
}

// ---------- nesting depth ----------

/// A place in a body where a deep value goes: the text before it (no brackets inside its
/// strings), the text after it, and which document it is.
struct Place {
    before: &'static str,
    after: &'static str,
    kind: Kind,
}

const DEEP_PLACES: &[Place] = &[
    // `ext` of a modelled object, under modelled objects and arrays (6 levels open).
    Place {
        before: r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":1,"ext":"#,
        after: "}]}}]}",
        kind: Kind::Request,
    },
    // An unknown member, kept raw in `extra`.
    Place {
        before: r#"{"id":"r","imp":[{"id":"1"}],"zz":"#,
        after: "}",
        kind: Kind::Request,
    },
    // `ext` of a bid in a response.
    Place {
        before: r#"{"id":"b","seatbid":[{"bid":[{"id":"1","impid":"1","price":1.5,"ext":"#,
        after: "}]}]}",
        kind: Kind::Response,
    },
];

/// `levels` nested arrays.
fn nested_arrays(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

/// `levels` nested objects around a number, spaced (raw values keep the spaces).
fn nested_objects(levels: usize) -> String {
    format!("{}1{}", r#"{ "a" : "#.repeat(levels), " }".repeat(levels))
}

impl Place {
    /// Objects and arrays open where the value starts.
    fn open(&self) -> usize {
        let count = |brackets: [char; 2]| self.before.matches(brackets).count();
        count(['{', '[']) - count(['}', ']'])
    }

    /// The body with a value that nests exactly to the limit, plus `beyond_limit` levels.
    fn body(&self, nested: fn(usize) -> String, beyond_limit: usize) -> String {
        let levels = NESTING_DEPTH_MAX - self.open() + beyond_limit;
        format!("{}{}{}", self.before, nested(levels), self.after)
    }

    /// The message for `body`, whose value here nests past the limit: it names the byte of the
    /// first bracket too deep.
    fn too_deep_message(&self, body: &str) -> String {
        let levels_in = NESTING_DEPTH_MAX - self.open() + 1;
        let value = &body[self.before.len()..];
        let (at, _) = value
            .match_indices(['{', '['])
            .nth(levels_in - 1)
            .expect("deep enough");
        let root = match self.kind {
            Kind::Request => "request",
            Kind::Response => "response",
        };
        let byte = self.before.len() + at;
        format!("{root} body has nesting deeper than {NESTING_DEPTH_MAX} levels at byte {byte}")
    }

    /// What parsing the body does: the written JSON, or the error message.
    fn parse(&self, body: &str) -> Result<String, String> {
        let mut out = Vec::new();
        match self.kind {
            Kind::Request => {
                let request = parse_bid_request(body.as_bytes()).map_err(|e| e.message)?;
                write_bid_request(&request, &mut out);
            }
            Kind::Response => {
                let response = parse_bid_response(body.as_bytes()).map_err(|e| e.message)?;
                write_bid_response(&response, &mut out);
            }
        }
        Ok(String::from_utf8(out).expect("UTF-8"))
    }

    /// Whether the fast reader alone (no nesting pre-scan) takes the body.
    fn fast_accepts(&self, body: &str) -> bool {
        match self.kind {
            Kind::Request => fast_request(body.as_bytes()).is_some(),
            Kind::Response => fast_response(body.as_bytes()).is_some(),
        }
    }
}

#[test]
fn nesting_at_the_limit_stays_on_the_fast_path() {
    let mut tally = Tally::default();
    for place in DEEP_PLACES {
        for nested in [nested_arrays, nested_objects] {
            let body = place.body(nested, 0);
            let label = || body.clone();
            assert!(
                check(place.kind, body.as_bytes(), &mut tally, &label),
                "{body}"
            );
            assert_eq!(
                place.parse(&body),
                Ok(body.clone()),
                "written back verbatim"
            );
        }
    }
}

#[test]
fn one_level_too_deep_is_refused_with_the_depth_message() {
    let mut tally = Tally::default();
    for place in DEEP_PLACES {
        for nested in [nested_arrays, nested_objects] {
            let body = place.body(nested, 1);
            assert!(!place.fast_accepts(&body), "fast reader took {body}");
            check(place.kind, body.as_bytes(), &mut tally, &|| body.clone());
            assert_eq!(place.parse(&body), Err(place.too_deep_message(&body)));
        }
    }
    assert_eq!(tally.both_rejected, DEEP_PLACES.len() * 2, "{tally:?}");
}

#[test]
fn too_deep_in_a_typed_member_is_a_depth_error_not_a_type_error() {
    let place = Place {
        before: r#"{"id":"r","imp":[{"id":"1","tagid":"#,
        after: "}]}",
        kind: Kind::Request,
    };
    let within = place.body(nested_arrays, 0);
    assert_eq!(
        place.parse(&within),
        Err("request.imp[0].tagid must be a string".to_owned())
    );
    let deep = place.body(nested_arrays, 1);
    assert_eq!(place.parse(&deep), Err(place.too_deep_message(&deep)));
}

#[test]
fn a_hundred_thousand_brackets_in_ext_are_refused_without_overflow() {
    let levels = 100_000;
    for place in DEEP_PLACES {
        let closed = format!("{}{}{}", place.before, nested_arrays(levels), place.after);
        let unclosed = format!("{}{}", place.before, "[".repeat(levels));
        for body in [closed, unclosed] {
            assert!(!place.fast_accepts(&body));
            assert_eq!(place.parse(&body), Err(place.too_deep_message(&body)));
        }
    }
}
