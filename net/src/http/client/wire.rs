//! Sans-IO pieces of the client: request serialization, response head parsing (httparse) and
//! chunked body scanning/decoding. No sockets here; everything is unit-tested on byte slices.

use std::ops::Range;

use super::error::ClientError;

/// Most response header fields accepted (httparse scratch lives on the stack).
pub const RESPONSE_HEADERS_MAX: usize = 32;
/// Longest chunk-size line accepted (hex size plus extensions).
const CHUNK_LINE_BYTES_MAX: usize = 256;

/// One request to send. `Host` and `Content-Length` are added by the client; do not pass them.
#[derive(Debug, Clone, Copy)]
pub struct ClientRequest<'a> {
    /// `GET`, `POST` ... (token characters only).
    pub method: &'a str,
    /// Origin-form target, e.g. `/openrtb2/auction?x=1`.
    pub path: &'a str,
    /// Extra header fields, in order.
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

impl<'a> ClientRequest<'a> {
    /// A `POST` of `body` to `path` without extra headers.
    pub fn post(path: &'a str, body: &'a [u8]) -> Self {
        Self {
            method: "POST",
            path,
            headers: &[],
            body,
        }
    }

    /// A `GET` of `path`.
    pub fn get(path: &'a str) -> Self {
        Self {
            method: "GET",
            path,
            headers: &[],
            body: &[],
        }
    }

    /// The same request with these extra header fields.
    pub fn headers(self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        Self { headers, ..self }
    }

    /// Refuse what would corrupt the request framing.
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        if self.method.is_empty() || !self.method.bytes().all(is_token_byte) {
            return Err(ClientError::InvalidRequest("method is not a token"));
        }
        if !self.path.starts_with('/') || !self.path.bytes().all(|b| b > b' ' && b != 0x7f) {
            return Err(ClientError::InvalidRequest(
                "path must start with / and have no spaces",
            ));
        }
        for (name, value) in self.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(ClientError::InvalidRequest("header name is not a token"));
            }
            if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("host")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                return Err(ClientError::InvalidRequest(
                    "host, content-length and transfer-encoding are set by the client",
                ));
            }
            if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(ClientError::InvalidRequest(
                    "CR, LF or NUL in a header value",
                ));
            }
        }
        Ok(())
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Serialize `req` with `body` (possibly compressed: then `content_encoding` names it) into `out`.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    req: &ClientRequest<'_>,
    host: &str,
    body: &[u8],
    content_encoding: Option<&str>,
) {
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in req.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(encoding) = content_encoding {
        out.extend_from_slice(b"content-encoding: ");
        out.extend_from_slice(encoding.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || req.method != "GET" {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Response header fields: one buffer holding the raw header section, and the spans of each
/// name and value in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseHeaders {
    raw: Vec<u8>,
    spans: Vec<(Range<u32>, Range<u32>)>,
}

impl ResponseHeaders {
    /// The value of the first field named `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every (name, value), in received order. Names are ASCII tokens (httparse checked them).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.spans.iter().map(|(name, value)| {
            let name = &self.raw[name.start as usize..name.end as usize];
            let value = &self.raw[value.start as usize..value.end as usize];
            (std::str::from_utf8(name).unwrap_or(""), value)
        })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// A complete response. Any status (including 5xx) is a response, not an error: the caller
/// decides what a status means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: ResponseHeaders,
    /// The de-chunked body (no content decoding is applied).
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// Status in 200..=299.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    /// Bytes of the status line and header section, including the final CRLF.
    pub len: usize,
    pub status: u16,
    pub keep_alive: bool,
    pub framing: Framing,
    pub headers: ResponseHeaders,
}

/// Parse the response head at the start of `bytes`; `Ok(None)` when more bytes are needed.
/// `body_bytes_max` bounds a declared Content-Length.
pub(crate) fn parse_head(bytes: &[u8], body_bytes_max: usize) -> Result<Option<Head>, ClientError> {
    let mut scratch = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut scratch);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ClientError::TooLarge("too many response header fields"));
        }
        Err(_) => return Err(ClientError::Malformed("invalid status line or header")),
    };
    let status = parsed.code.unwrap_or(0);
    if !(200..600).contains(&status) {
        return Err(ClientError::Malformed("status outside 200..=599"));
    }
    let fields = Fields::from_headers(parsed.headers)?;
    let keep_alive = if parsed.version == Some(0) {
        fields.keep_alive
    } else {
        !fields.close
    };
    let framing = framing_of(status, &fields, body_bytes_max)?;
    let headers = copy_headers(bytes, parsed.headers);
    Ok(Some(Head {
        len,
        status,
        keep_alive: keep_alive && framing != Framing::UntilClose,
        framing,
        headers,
    }))
}

fn copy_headers(bytes: &[u8], headers: &[httparse::Header<'_>]) -> ResponseHeaders {
    let base = bytes.as_ptr() as usize;
    let offset = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base) as u32;
    let span = |s: &[u8]| offset(s)..offset(s) + s.len() as u32;
    let Some(first) = headers.first() else {
        return ResponseHeaders::default();
    };
    let last = headers.last().unwrap_or(first);
    let start = offset(first.name.as_bytes());
    let end = offset(last.value) + last.value.len() as u32;
    let shift = |r: Range<u32>| r.start - start..r.end - start;
    ResponseHeaders {
        raw: bytes[start as usize..end as usize].to_vec(),
        spans: headers
            .iter()
            .map(|h| (shift(span(h.name.as_bytes())), shift(span(h.value))))
            .collect(),
    }
}

#[derive(Default)]
struct Fields {
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

impl Fields {
    fn from_headers(headers: &[httparse::Header<'_>]) -> Result<Self, ClientError> {
        let mut fields = Self::default();
        for h in headers {
            if h.name.eq_ignore_ascii_case("content-length") {
                let len = parse_content_length(h.value)?;
                if fields.content_length.is_some_and(|prev| prev != len) {
                    return Err(ClientError::Malformed("conflicting Content-Length fields"));
                }
                fields.content_length = Some(len);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if !last_token_is(h.value, b"chunked") {
                    return Err(ClientError::Malformed(
                        "Transfer-Encoding other than chunked",
                    ));
                }
                fields.chunked = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                fields.close |= has_token(h.value, b"close");
                fields.keep_alive |= has_token(h.value, b"keep-alive");
            }
        }
        if fields.chunked && fields.content_length.is_some() {
            return Err(ClientError::Malformed("both Content-Length and chunked"));
        }
        Ok(fields)
    }
}

fn framing_of(status: u16, fields: &Fields, body_bytes_max: usize) -> Result<Framing, ClientError> {
    if status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    if fields.chunked {
        return Ok(Framing::Chunked);
    }
    match fields.content_length {
        Some(len) if len > body_bytes_max => {
            Err(ClientError::TooLarge("Content-Length above the body limit"))
        }
        Some(len) => Ok(Framing::Length(len)),
        None => Ok(Framing::UntilClose),
    }
}

fn parse_content_length(value: &[u8]) -> Result<usize, ClientError> {
    let text = value.trim_ascii();
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return Err(ClientError::Malformed("Content-Length is not a number"));
    }
    let mut n = 0usize;
    for &digit in text {
        n = n * 10 + usize::from(digit - b'0');
    }
    Ok(n)
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    tokens(value)
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(token))
}

/// Scan a chunked body at the start of `wire`. `Ok(Some(n))`: the body (with trailers) ends
/// after `n` bytes. `Ok(None)`: more bytes needed. Decoded data above `body_bytes_max` is refused.
pub(crate) fn scan_chunked(
    wire: &[u8],
    body_bytes_max: usize,
) -> Result<Option<usize>, ClientError> {
    let mut at = 0usize;
    let mut data_bytes = 0usize;
    loop {
        let (line_bytes, size) = match httparse::parse_chunk_size(&wire[at..]) {
            Ok(httparse::Status::Complete(found)) => found,
            Ok(httparse::Status::Partial) if wire.len() - at > CHUNK_LINE_BYTES_MAX => {
                return Err(ClientError::Malformed("chunk size line too long"));
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(ClientError::Malformed("invalid chunk size line")),
        };
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= body_bytes_max)
            .ok_or(ClientError::TooLarge("chunked body above the body limit"))?;
        at += line_bytes;
        if size == 0 {
            return scan_trailers(&wire[at..]).map(|end| end.map(|end| at + end));
        }
        data_bytes += size;
        if data_bytes > body_bytes_max {
            return Err(ClientError::TooLarge("chunked body above the body limit"));
        }
        if wire.len() < at + size + 2 {
            return Ok(None);
        }
        if &wire[at + size..at + size + 2] != b"\r\n" {
            return Err(ClientError::Malformed("chunk data not followed by CRLF"));
        }
        at += size + 2;
    }
}

/// Trailer lines up to the empty line; returns the bytes through that empty line.
fn scan_trailers(wire: &[u8]) -> Result<Option<usize>, ClientError> {
    let mut at = 0usize;
    loop {
        match memchr::memmem::find(&wire[at..], b"\r\n") {
            Some(0) => return Ok(Some(at + 2)),
            Some(end) => at += end + 2,
            None if wire.len() - at > CHUNK_LINE_BYTES_MAX => {
                return Err(ClientError::Malformed("trailer line too long"));
            }
            None => return Ok(None),
        }
    }
}

/// Append the data of the complete chunked body `wire` (validated by [`scan_chunked`]) to `out`.
pub(crate) fn decode_chunked(wire: &[u8], out: &mut Vec<u8>) {
    let mut at = 0usize;
    while let Ok(httparse::Status::Complete((line_bytes, size))) =
        httparse::parse_chunk_size(&wire[at..])
    {
        let size = size as usize;
        if size == 0 {
            return;
        }
        at += line_bytes;
        out.extend_from_slice(&wire[at..at + size]);
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, ClientError> {
        parse_head(text.as_bytes(), 1 << 20)
    }

    #[test]
    fn writes_request_with_host_length_and_encoding() {
        let mut out = Vec::new();
        let req = ClientRequest::post("/a?b=1", b"{}").headers(&[("x-openrtb-version", b"2.6")]);
        req.validate().unwrap();
        write_request(&mut out, &req, "dsp", b"{}", Some("gzip"));
        assert_eq!(
            out,
            b"POST /a?b=1 HTTP/1.1\r\nhost: dsp\r\nx-openrtb-version: 2.6\r\n\
              content-encoding: gzip\r\ncontent-length: 2\r\n\r\n{}"
        );
        out.clear();
        write_request(&mut out, &ClientRequest::get("/stats"), "h", b"", None);
        assert_eq!(out, b"GET /stats HTTP/1.1\r\nhost: h\r\n\r\n");
    }

    #[test]
    fn refuses_requests_that_would_break_framing() {
        let bad = [
            ClientRequest::post("nopath", b""),
            ClientRequest::post("/a b", b""),
            ClientRequest {
                method: "PO ST",
                ..ClientRequest::get("/")
            },
            ClientRequest::get("/").headers(&[("x", b"a\r\nInjected: 1")]),
            ClientRequest::get("/").headers(&[("content-length", b"3")]),
            ClientRequest::get("/").headers(&[("bad name", b"v")]),
        ];
        for req in bad {
            assert!(
                matches!(req.validate(), Err(ClientError::InvalidRequest(_))),
                "{req:?}"
            );
        }
    }

    #[test]
    fn parses_heads_and_keeps_headers() {
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\nbody",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.status, h.keep_alive, h.framing),
            (200, true, Framing::Length(12))
        );
        assert_eq!(h.len, 71);
        assert_eq!(
            h.headers.get("content-type"),
            Some(&b"application/json"[..])
        );
        assert_eq!(h.headers.len(), 2);
        assert!(head("HTTP/1.1 204 No Con").unwrap().is_none());
        let h = head("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(0), false));
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.framing), (503, Framing::Chunked));
    }

    #[test]
    fn rejects_bad_heads() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 999 What\r\n\r\n",
            "SMTP ready\r\n\r\n",
            "{\"id\":\"1\"}",
        ] {
            assert!(
                matches!(head(bad), Err(ClientError::Malformed(_))),
                "accepted {bad:?}"
            );
        }
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n"),
            Err(ClientError::TooLarge(_))
        ));
        let many: String = (0..40).map(|i| format!("x{i}: y\r\n")).collect();
        assert!(matches!(
            head(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
            Err(ClientError::TooLarge(_))
        ));
    }

    #[test]
    fn chunked_scan_and_decode() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        let end = scan_chunked(wire, 1024).unwrap().unwrap();
        assert_eq!(&wire[end..], b"NEXT");
        let mut out = Vec::new();
        decode_chunked(&wire[..end], &mut out);
        assert_eq!(out, b"hello world");
        for cut in 0..end {
            assert_eq!(
                scan_chunked(&wire[..cut], 1024).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        assert!(matches!(
            scan_chunked(b"zz\r\n", 1024),
            Err(ClientError::Malformed(_))
        ));
        assert!(matches!(
            scan_chunked(b"2\r\nabcd\r\n", 1024),
            Err(ClientError::Malformed(_))
        ));
        assert!(matches!(
            scan_chunked(b"800\r\n", 1024),
            Err(ClientError::TooLarge(_))
        ));
        assert!(matches!(
            scan_chunked(b"300\r\n", 1024).map(|_| scan_chunked(
                &[b"300\r\n".as_slice(), &[b'a'; 0x300], b"\r\n300\r\n"].concat(),
                1024
            )),
            Ok(Err(ClientError::TooLarge(_)))
        ));
    }
}
