//! Sans-IO HTTP/1.1 request parser: bytes in, a parsed request head or a protocol error out.
//!
//! Owns request framing: request line and headers (via `httparse`, never by hand), the body
//! length rules of RFC 9112 section 6 (Content-Length, chunked Transfer-Encoding, 411/413/501),
//! chunk validation (`httparse::parse_chunk_size`) and in-place de-chunking. It is resumable:
//! once the head is parsed it is not parsed again while the body arrives, and complete chunks
//! are not re-validated. It knows nothing of sockets, time or handlers, so it is unit-tested
//! and fuzzed directly (`net/fuzz/fuzz_targets/http_request.rs`).

use std::mem::MaybeUninit;

use super::error::HttpError;
use super::limits::{HEADERS_COUNT_CAP, Limits};
use super::request::{HeaderSpan, Headers, Method, Request, Span};

/// Longest chunk-size line (size plus extensions) accepted; longer => 400.
pub const CHUNK_LINE_BYTES_MAX: usize = 1024;
/// Trailer fields accepted after the last chunk (their content is ignored); more => 431.
pub const TRAILERS_COUNT_MAX: usize = 16;

/// How the body of a parsed request is framed, as spans of the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Content-Length body: exactly these bytes.
    Fixed(Span),
    /// Chunked body as on the wire (size lines, data, trailers) and its decoded length.
    /// [`decode_chunked_in_place`] turns it into contiguous data.
    Chunked { wire: Span, decoded_bytes: usize },
}

/// Everything known about a request once its head is parsed. Spans index the buffer given to
/// [`RequestParser::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Method,
    /// The method token.
    pub method_span: Span,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Path of the target; an empty span means "/" (absolute-form target without a path).
    pub path: Span,
    /// Query without the '?', empty when absent.
    pub query: Span,
    /// The client wants the connection kept open after this request.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` and a body is expected.
    pub expect_continue: bool,
    /// Length of the request line plus header section (including the blank line).
    pub head_bytes: usize,
    /// Body framing (spans filled in once the body is complete).
    pub body: BodyFraming,
    /// Value of the first Content-Type field, noted while the fields were checked.
    pub content_type: Option<Span>,
    /// Bytes of the buffer this request occupies, head and body; the next pipelined request
    /// starts right after. Only meaningful in [`Parsed::Complete`].
    pub consumed_bytes: usize,
}

/// What an incomplete parse knows so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The head is parsed and valid; only body bytes are missing.
    pub head_complete: bool,
    /// The head asked for `100 Continue` before the body is sent.
    pub expect_continue: bool,
    /// The buffer must hold at least this many bytes before parsing again can make progress.
    /// Always greater than the current length and never above `Limits::read_buffer_bytes_max`,
    /// so a buffer of that size always suffices (checked by the fuzz target).
    pub buffer_bytes_min: usize,
}

/// Result of feeding the parser a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete(Progress),
    /// A whole request (head and body) is in the buffer.
    Complete(RequestHead),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkCursor {
    /// Offset of the next chunk-size line (all chunks before it are validated).
    pos: usize,
    /// Data bytes of the validated chunks.
    decoded: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Body {
        head: RequestHead,
        chunk: ChunkCursor,
    },
}

/// Resumable parser for one connection. Feed it the same buffer (same prefix, possibly longer)
/// until it returns `Complete` or an error; then it is ready for the next request, which starts
/// at `consumed_bytes` of the old buffer. The header index it keeps is reused (one allocation per
/// connection).
#[derive(Debug)]
pub struct RequestParser {
    headers: Vec<HeaderSpan>,
    state: State,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

/// Parse one request from `buf` with a fresh parser (convenience for tests and fuzzing).
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
    RequestParser::new().parse(buf, limits)
}

impl RequestParser {
    /// A parser with room for [`HEADERS_COUNT_CAP`] header spans.
    pub fn new() -> Self {
        Self {
            headers: Vec::with_capacity(HEADERS_COUNT_CAP),
            state: State::Head,
        }
    }

    /// Forget any partially parsed request.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.headers.clear();
    }

    /// Header spans of the last parsed head.
    pub fn header_spans(&self) -> &[HeaderSpan] {
        &self.headers
    }

    /// Advance over `buf`, which starts at the first byte of the current request.
    /// After `Complete` or an error the parser starts over with the next call.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
        let result = self.advance(buf, limits);
        if !matches!(result, Ok(Parsed::Incomplete(_))) {
            self.state = State::Head;
        }
        result
    }

    /// Build the handler's view of a complete request: de-chunks the body in place (so `buf`
    /// must be the buffer given to the `parse` call that returned `head`) and borrows the rest.
    pub fn request<'a>(
        &'a self,
        head: &RequestHead,
        buf: &'a mut [u8],
    ) -> Result<Request<'a>, HttpError> {
        let body = match head.body {
            BodyFraming::None => Span::default(),
            BodyFraming::Fixed(span) => span,
            BodyFraming::Chunked { wire, .. } => {
                let decoded = decode_chunked_in_place(buf, wire)?;
                Span {
                    start: wire.start,
                    end: wire.start + decoded,
                }
            }
        };
        let buf: &'a [u8] = buf;
        Ok(Request {
            method: head.method,
            path: span_str(buf, head.path, "/")?,
            query: span_str(buf, head.query, "")?,
            body: body.get(buf),
            keep_alive: head.keep_alive,
            version_minor: head.version_minor,
            method_str: span_str(buf, head.method_span, "")?,
            headers: Headers::new(buf, &self.headers),
            content_type: head.content_type.map(|span| span.get(buf)),
        })
    }

    fn advance(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, HttpError> {
        let (mut head, cursor) = match self.state {
            State::Body { head, chunk } => (head, chunk),
            State::Head => match self.parse_head(buf, limits)? {
                Some(head) => {
                    let cursor = ChunkCursor {
                        pos: head.head_bytes,
                        decoded: 0,
                    };
                    (head, cursor)
                }
                None => return Ok(Parsed::Incomplete(head_progress(buf))),
            },
        };
        match head.body {
            BodyFraming::None => {
                head.consumed_bytes = head.head_bytes;
                Ok(Parsed::Complete(head))
            }
            BodyFraming::Fixed(span) if buf.len() >= span.end => {
                head.consumed_bytes = span.end;
                Ok(Parsed::Complete(head))
            }
            BodyFraming::Fixed(span) => {
                self.state = State::Body {
                    head,
                    chunk: cursor,
                };
                Ok(Parsed::Incomplete(body_progress(&head, span.end)))
            }
            BodyFraming::Chunked { .. } => self.advance_chunks(buf, limits, head, cursor),
        }
    }

    fn advance_chunks(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        mut head: RequestHead,
        mut cursor: ChunkCursor,
    ) -> Result<Parsed, HttpError> {
        let wire_end_max = head
            .head_bytes
            .saturating_add(limits.chunked_wire_bytes_max());
        loop {
            match next_chunk(buf, cursor, limits, wire_end_max)? {
                ChunkStep::Data { size, next_pos } => {
                    cursor = ChunkCursor {
                        pos: next_pos,
                        decoded: cursor.decoded + size,
                    };
                }
                ChunkStep::End { end } => {
                    head.body = BodyFraming::Chunked {
                        wire: Span {
                            start: head.head_bytes,
                            end,
                        },
                        decoded_bytes: cursor.decoded,
                    };
                    head.consumed_bytes = end;
                    return Ok(Parsed::Complete(head));
                }
                ChunkStep::NeedBytes { buffer_bytes_min } => {
                    self.state = State::Body {
                        head,
                        chunk: cursor,
                    };
                    return Ok(Parsed::Incomplete(body_progress(&head, buffer_bytes_min)));
                }
            }
        }
    }

    /// Parse and validate the request line and headers; `None` when the head is incomplete.
    fn parse_head(
        &mut self,
        buf: &[u8],
        limits: &Limits,
    ) -> Result<Option<RequestHead>, HttpError> {
        let count = limits.headers_count_max.clamp(1, HEADERS_COUNT_CAP);
        let mut storage =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_COUNT_CAP];
        let mut parsed = httparse::Request::new(&mut []);
        let status = parsed
            .parse_with_uninit_headers(buf, &mut storage[..count])
            .map_err(|error| head_error(error, buf))?;
        let head_bytes = match status {
            httparse::Status::Partial if buf.len() >= limits.header_bytes_max => {
                return Err(HttpError::HeaderFieldsTooLarge("header section too large"));
            }
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(n) if n > limits.header_bytes_max => {
                return Err(HttpError::HeaderFieldsTooLarge("header section too large"));
            }
            httparse::Status::Complete(n) => n,
        };
        let method_token = parsed.method.unwrap_or("");
        let target = parsed.path.unwrap_or("");
        let version_minor = parsed.version.unwrap_or(1);
        self.headers.clear();
        let mut fields = FieldSummary::default();
        for header in parsed.headers.iter() {
            let value = Span::within(buf, header.value);
            self.headers.push(HeaderSpan {
                name: Span::within(buf, header.name.as_bytes()),
                value,
            });
            fields.absorb(header.name, header.value, value, limits)?;
        }
        let method = Method::from_bytes(method_token.as_bytes());
        let (path, query) = split_target(buf, method, target.as_bytes())?;
        let body = fields.body_framing(method, version_minor, head_bytes)?;
        let has_body = !matches!(body, BodyFraming::None);
        fields.check_host(version_minor)?;
        Ok(Some(RequestHead {
            method,
            method_span: Span::within(buf, method_token.as_bytes()),
            version_minor,
            path,
            query,
            keep_alive: fields.keep_alive(version_minor),
            expect_continue: fields.expect_continue && has_body,
            head_bytes,
            body,
            content_type: fields.content_type,
            consumed_bytes: 0,
        }))
    }
}

fn head_progress(buf: &[u8]) -> Progress {
    Progress {
        head_complete: false,
        expect_continue: false,
        buffer_bytes_min: buf.len() + 1,
    }
}

fn body_progress(head: &RequestHead, buffer_bytes_min: usize) -> Progress {
    Progress {
        head_complete: true,
        expect_continue: head.expect_continue,
        buffer_bytes_min,
    }
}

fn head_error(error: httparse::Error, buf: &[u8]) -> HttpError {
    match error {
        httparse::Error::Version if names_an_http_version(buf) => HttpError::VersionNotSupported,
        httparse::Error::Version => HttpError::BadRequest("invalid HTTP version"),
        httparse::Error::TooManyHeaders => {
            HttpError::HeaderFieldsTooLarge("too many header fields")
        }
        httparse::Error::HeaderName => HttpError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Token => HttpError::BadRequest("invalid request line"),
        httparse::Error::Status => HttpError::BadRequest("invalid request line"),
    }
}

/// Whether the request line's last token starts with "HTTP/" (so a bad version is 505, while
/// something that is not HTTP at all is 400).
fn names_an_http_version(buf: &[u8]) -> bool {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    version.len() >= 5 && version[..5].eq_ignore_ascii_case(b"HTTP/")
}

fn span_str<'a>(buf: &'a [u8], span: Span, if_empty: &'static str) -> Result<&'a str, HttpError> {
    if span.is_empty() {
        return Ok(if_empty);
    }
    let bytes = span.get(buf);
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8. (`is_ascii` checks a word at a time; `from_utf8` costs
        // ~120 instructions on a short path, twice per request.)
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| HttpError::BadRequest("request target is not UTF-8"))
}

/// Split the request target into path and query spans (origin-form, absolute-form, `*`).
fn split_target(buf: &[u8], method: Method, target: &[u8]) -> Result<(Span, Span), HttpError> {
    let path_and_query = match target.first() {
        Some(b'/') => target,
        Some(b'*') if target.len() == 1 && method == Method::Options => target,
        _ => strip_scheme_and_authority(target)
            .ok_or(HttpError::BadRequest("invalid request target"))?,
    };
    let (path, query) = match path_and_query.iter().position(|&b| b == b'?') {
        Some(q) => (&path_and_query[..q], &path_and_query[q + 1..]),
        None => (path_and_query, &path_and_query[path_and_query.len()..]),
    };
    Ok((Span::within(buf, path), Span::within(buf, query)))
}

/// "http://host:port/p?q" -> "/p?q"; "http://host" -> "" (meaning "/").
fn strip_scheme_and_authority(target: &[u8]) -> Option<&[u8]> {
    let after_scheme = [&b"http://"[..], &b"https://"[..]]
        .iter()
        .find(|scheme| {
            target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme)
        })
        .map(|scheme| &target[scheme.len()..])?;
    match after_scheme.iter().position(|&b| b == b'/' || b == b'?') {
        Some(slash) => Some(&after_scheme[slash..]),
        None => Some(&after_scheme[after_scheme.len()..]),
    }
}

/// What the framing-relevant header fields said.
#[derive(Debug, Default)]
struct FieldSummary {
    content_length: Option<usize>,
    transfer_encoding: bool,
    chunked_last: bool,
    chunked_count: usize,
    unsupported_coding: bool,
    connection_close: bool,
    connection_keep_alive: bool,
    expect_continue: bool,
    host_count: usize,
    content_type: Option<Span>,
}

impl FieldSummary {
    /// Note one header field. The name's length picks the one candidate it can be, so most
    /// fields cost one comparison of lengths.
    fn absorb(
        &mut self,
        name: &str,
        value: &[u8],
        value_span: Span,
        limits: &Limits,
    ) -> Result<(), HttpError> {
        let name = name.as_bytes();
        match name.len() {
            12 if name.eq_ignore_ascii_case(b"content-type") => {
                self.content_type.get_or_insert(value_span);
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                self.absorb_content_length(value, limits)?;
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                self.absorb_transfer_encoding(value);
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in list_tokens(value) {
                    self.connection_close |= token.eq_ignore_ascii_case(b"close");
                    self.connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                self.expect_continue |= trim(value).eq_ignore_ascii_case(b"100-continue");
            }
            4 if name.eq_ignore_ascii_case(b"host") => self.host_count += 1,
            _ => {}
        }
        Ok(())
    }

    fn absorb_content_length(&mut self, value: &[u8], limits: &Limits) -> Result<(), HttpError> {
        let length = parse_content_length(value, limits)?;
        match self.content_length {
            Some(previous) if previous != length => {
                Err(HttpError::BadRequest("conflicting Content-Length headers"))
            }
            _ => {
                self.content_length = Some(length);
                Ok(())
            }
        }
    }

    fn absorb_transfer_encoding(&mut self, value: &[u8]) {
        self.transfer_encoding = true;
        for token in list_tokens(value) {
            let chunked = token.eq_ignore_ascii_case(b"chunked");
            self.chunked_count += usize::from(chunked);
            self.unsupported_coding |= !chunked;
            self.chunked_last = chunked;
        }
    }

    fn body_framing(
        &self,
        method: Method,
        version_minor: u8,
        head_bytes: usize,
    ) -> Result<BodyFraming, HttpError> {
        if self.transfer_encoding {
            return self.chunked_framing(version_minor, head_bytes);
        }
        match self.content_length {
            Some(0) => Ok(BodyFraming::None),
            Some(length) => Ok(BodyFraming::Fixed(Span {
                start: head_bytes,
                end: head_bytes + length,
            })),
            None if method.requires_length() => Err(HttpError::LengthRequired),
            None => Ok(BodyFraming::None),
        }
    }

    fn chunked_framing(
        &self,
        version_minor: u8,
        head_bytes: usize,
    ) -> Result<BodyFraming, HttpError> {
        if self.content_length.is_some() {
            return Err(HttpError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if version_minor == 0 {
            return Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if self.unsupported_coding {
            return Err(HttpError::NotImplemented(
                "only the chunked transfer coding is supported",
            ));
        }
        if self.chunked_count != 1 || !self.chunked_last {
            return Err(HttpError::BadRequest("invalid Transfer-Encoding"));
        }
        Ok(BodyFraming::Chunked {
            wire: Span {
                start: head_bytes,
                end: head_bytes,
            },
            decoded_bytes: 0,
        })
    }

    fn check_host(&self, version_minor: u8) -> Result<(), HttpError> {
        match (version_minor, self.host_count) {
            (_, 2..) => Err(HttpError::BadRequest("repeated Host header")),
            (1, 0) => Err(HttpError::BadRequest("missing Host header")),
            _ => Ok(()),
        }
    }

    fn keep_alive(&self, version_minor: u8) -> bool {
        match version_minor {
            0 => self.connection_keep_alive && !self.connection_close,
            _ => !self.connection_close,
        }
    }
}

/// Content-Length: 1*DIGIT. Too many digits or above the limit => 413 (decided before any body
/// byte is read).
fn parse_content_length(value: &[u8], limits: &Limits) -> Result<usize, HttpError> {
    let digits = trim(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadRequest("invalid Content-Length"));
    }
    let too_large = HttpError::PayloadTooLarge("declared Content-Length above the body limit");
    let mut length: usize = 0;
    for &digit in digits {
        length = length
            .checked_mul(10)
            .and_then(|l| l.checked_add(usize::from(digit - b'0')))
            .ok_or(too_large)?;
    }
    if length > limits.body_bytes_max {
        return Err(too_large);
    }
    Ok(length)
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// Non-empty, trimmed elements of a comma-separated header value.
fn list_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|token| !token.is_empty())
}

enum ChunkStep {
    Data { size: usize, next_pos: usize },
    End { end: usize },
    NeedBytes { buffer_bytes_min: usize },
}

/// Validate the chunk at `cursor.pos` without moving any byte.
fn next_chunk(
    buf: &[u8],
    cursor: ChunkCursor,
    limits: &Limits,
    wire_end_max: usize,
) -> Result<ChunkStep, HttpError> {
    let wire_too_large = HttpError::PayloadTooLarge("chunked body above the body limit");
    let rest = buf.get(cursor.pos..).unwrap_or(&[]);
    let (line_bytes, size) = match httparse::parse_chunk_size(rest) {
        Err(_) => return Err(HttpError::BadRequest("invalid chunk size line")),
        Ok(httparse::Status::Partial) if rest.len() >= CHUNK_LINE_BYTES_MAX => {
            return Err(HttpError::BadRequest("chunk size line too long"));
        }
        Ok(httparse::Status::Partial) => {
            return need_bytes(buf.len() + 1, wire_end_max, wire_too_large);
        }
        Ok(httparse::Status::Complete(found)) => found,
    };
    let data_start = cursor.pos + line_bytes;
    if size == 0 {
        return trailer_end(buf, data_start, limits, wire_end_max);
    }
    let body_room = limits.body_bytes_max.saturating_sub(cursor.decoded);
    let size = usize::try_from(size)
        .ok()
        .filter(|&size| size <= body_room)
        .ok_or(wire_too_large)?;
    let next_pos = data_start + size + 2;
    if buf.len() < next_pos {
        return need_bytes(next_pos, wire_end_max, wire_too_large);
    }
    if &buf[next_pos - 2..next_pos] != b"\r\n" {
        return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
    }
    Ok(ChunkStep::Data { size, next_pos })
}

fn need_bytes(
    buffer_bytes_min: usize,
    wire_end_max: usize,
    too_large: HttpError,
) -> Result<ChunkStep, HttpError> {
    if buffer_bytes_min > wire_end_max {
        return Err(too_large);
    }
    Ok(ChunkStep::NeedBytes { buffer_bytes_min })
}

/// After the last chunk: optional trailer fields (ignored) and the final CRLF.
fn trailer_end(
    buf: &[u8],
    start: usize,
    limits: &Limits,
    wire_end_max: usize,
) -> Result<ChunkStep, HttpError> {
    let rest = buf.get(start..).unwrap_or(&[]);
    let mut trailers = [httparse::EMPTY_HEADER; TRAILERS_COUNT_MAX];
    match httparse::parse_headers(rest, &mut trailers) {
        Ok(httparse::Status::Complete((bytes, _))) if start + bytes > wire_end_max => Err(
            HttpError::PayloadTooLarge("chunked body above the body limit"),
        ),
        Ok(httparse::Status::Complete((bytes, _))) => Ok(ChunkStep::End { end: start + bytes }),
        Ok(httparse::Status::Partial) if rest.len() >= limits.header_bytes_max => {
            Err(HttpError::HeaderFieldsTooLarge("trailer section too large"))
        }
        Ok(httparse::Status::Partial) => need_bytes(
            buf.len() + 1,
            wire_end_max,
            HttpError::PayloadTooLarge("chunked body above the body limit"),
        ),
        Err(httparse::Error::TooManyHeaders) => {
            Err(HttpError::HeaderFieldsTooLarge("too many trailer fields"))
        }
        Err(_) => Err(HttpError::BadRequest("invalid trailer section")),
    }
}

/// Turn the chunked body at `wire` into contiguous data starting at `wire.start`, in place.
/// Returns the decoded length. The wire bytes are destroyed. Malformed framing => 400.
pub fn decode_chunked_in_place(buf: &mut [u8], wire: Span) -> Result<usize, HttpError> {
    let malformed = HttpError::BadRequest("invalid chunked body");
    if wire.end > buf.len() || wire.start > wire.end {
        return Err(malformed);
    }
    let (mut read, mut write) = (wire.start, wire.start);
    loop {
        let (line_bytes, size) = match httparse::parse_chunk_size(&buf[read..wire.end]) {
            Ok(httparse::Status::Complete(found)) => found,
            _ => return Err(malformed),
        };
        if size == 0 {
            return Ok(write - wire.start);
        }
        let data_start = read + line_bytes;
        let data_end = usize::try_from(size)
            .ok()
            .and_then(|size| data_start.checked_add(size))
            .filter(|&end| end.saturating_add(2) <= wire.end)
            .ok_or(malformed)?;
        buf.copy_within(data_start..data_end, write);
        write += data_end - data_start;
        read = data_end + 2;
    }
}
