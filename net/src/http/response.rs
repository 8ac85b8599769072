//! The response a handler fills in, and its serialization into the connection's write buffer.
//!
//! Owns response framing: status line, Content-Length (always set here, never by the handler),
//! Connection header and the text/plain error responses. Knows nothing of sockets.

use std::io::Write as _;

use super::error::{HttpError, reason_phrase};

/// Bytes of a response head besides the handler's header lines, at most: status line with the
/// longest reason, Content-Length line with 20 digits, Connection line, blank line.
const HEAD_FIXED_BYTES_MAX: usize = 64 + 40 + 32 + 2;

/// A reusable response: status, extra header lines and body. The connection keeps one per
/// connection and clears it between requests, so its buffers are allocated once.
#[derive(Debug)]
pub struct Response {
    status: u16,
    /// Serialized `name: value\r\n` lines.
    headers: Vec<u8>,
    body: Vec<u8>,
    close: bool,
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}

/// How the connection frames one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    /// The request was HEAD: send the headers of the body but not the body.
    pub head_only: bool,
    /// The connection closes after this response.
    pub close: bool,
    /// HTTP/1.0 keep-alive: say so explicitly.
    pub keep_alive_header: bool,
}

impl Response {
    /// An empty `200` response.
    pub fn new() -> Self {
        Self {
            status: 200,
            headers: Vec::with_capacity(256),
            body: Vec::with_capacity(1024),
            close: false,
        }
    }

    /// Set the status code. Codes outside 200..=999 are turned into 500 (interim 1xx responses
    /// are the server's business).
    pub fn status(&mut self, code: u16) -> &mut Self {
        self.status = if (200..=999).contains(&code) {
            code
        } else {
            tracing::warn!(code, "handler set an invalid status code; sending 500");
            500
        };
        self
    }

    /// Add a header line. Content-Length and Transfer-Encoding are ignored (the server frames the
    /// body); `Connection: close` closes the connection after this response. A name that is not a
    /// token or a value containing CR, LF or NUL is dropped (no header injection).
    pub fn header(&mut self, name: &str, value: &str) -> &mut Self {
        if !is_token(name) || breaks_the_line(value) {
            tracing::warn!(name, "handler set an invalid header; dropped");
            return self;
        }
        let value = value.trim_ascii();
        match server_owned_header(name.as_bytes()) {
            Some(ServerOwned::Connection) => {
                self.close |= value.eq_ignore_ascii_case("close");
            }
            Some(ServerOwned::Framing) => {}
            None => self.push_header_line([name.as_bytes(), b": "], value.as_bytes()),
        }
        self
    }

    /// Add a header line whose name was checked when it was built (see [`HeaderName`]): only the
    /// value is checked here (one containing CR, LF or NUL is dropped). For the headers a
    /// handler sets on every response.
    pub fn named_header(&mut self, name: HeaderName, value: &str) -> &mut Self {
        if breaks_the_line(value) {
            tracing::warn!(
                name = name.name(),
                "handler set an invalid header value; dropped"
            );
            return self;
        }
        let value = value.trim_ascii().as_bytes();
        self.push_header_line([name.line_start.as_bytes(), b""], value);
        self
    }

    /// Add header lines checked when they were built (see [`HeaderLines`]): one copy.
    pub fn header_lines(&mut self, lines: HeaderLines) -> &mut Self {
        self.headers.extend_from_slice(lines.as_str().as_bytes());
        self
    }

    /// Append `start` (the name and `": "`, in one or two pieces), `value` and CRLF to the
    /// header lines.
    fn push_header_line(&mut self, start: [&[u8]; 2], value: &[u8]) {
        let headers = &mut self.headers;
        headers.reserve(start[0].len() + start[1].len() + value.len() + 2);
        headers.extend_from_slice(start[0]);
        headers.extend_from_slice(start[1]);
        headers.extend_from_slice(value);
        headers.extend_from_slice(b"\r\n");
    }

    /// The body buffer, to write into directly (it keeps its capacity between requests).
    pub fn body_mut(&mut self) -> &mut Vec<u8> {
        &mut self.body
    }

    /// Replace the body with `bytes`.
    pub fn body(&mut self, bytes: &[u8]) -> &mut Self {
        self.body.clear();
        self.body.extend_from_slice(bytes);
        self
    }

    /// Close the connection after this response.
    pub fn close_connection(&mut self) -> &mut Self {
        self.close = true;
        self
    }

    /// Current status code.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The header lines set so far (`name: value\r\n` each), without the framing headers the
    /// server adds when it writes the response.
    pub fn header_bytes(&self) -> &[u8] {
        &self.headers
    }

    /// Current body.
    pub fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    /// Whether the handler asked to close the connection.
    pub fn close_requested(&self) -> bool {
        self.close
    }

    /// Back to an empty 200, keeping the buffers.
    pub(crate) fn reset(&mut self) {
        self.status = 200;
        self.headers.clear();
        self.body.clear();
        self.close = false;
    }

    /// Append the serialized response to `out`.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>, framing: Framing) {
        let has_body = status_allows_body(self.status);
        out.reserve(HEAD_FIXED_BYTES_MAX + self.headers.len() + self.body.len());
        write_status_line(out, self.status);
        if has_body {
            write_content_length(out, self.body.len());
        }
        out.extend_from_slice(&self.headers);
        write_connection(out, framing);
        out.extend_from_slice(b"\r\n");
        if has_body && !framing.head_only {
            out.extend_from_slice(&self.body);
        }
    }
}

/// Append the interim `100 Continue` response.
pub(crate) fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Append the text/plain response for a protocol error; it always closes the connection.
pub(crate) fn write_error(out: &mut Vec<u8>, error: &HttpError) {
    let mut reason = [0u8; 160];
    let reason_bytes = {
        let mut cursor = &mut reason[..];
        // A reason longer than the buffer is cut short: still a valid response.
        let _ = writeln!(cursor, "{error}");
        160 - cursor.len()
    };
    write_status_line(out, error.status());
    out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\n");
    write_content_length(out, reason_bytes);
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&reason[..reason_bytes]);
}

/// Header names the server owns: a handler setting them is ignored (framing stays correct),
/// except that `Connection: close` closes the connection.
enum ServerOwned {
    /// Content-Length, Transfer-Encoding.
    Framing,
    Connection,
}

fn server_owned_header(name: &[u8]) -> Option<ServerOwned> {
    match name.len() {
        14 if name.eq_ignore_ascii_case(b"content-length") => Some(ServerOwned::Framing),
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Some(ServerOwned::Framing),
        10 if name.eq_ignore_ascii_case(b"connection") => Some(ServerOwned::Connection),
        _ => None,
    }
}

/// The status line; the common ones are static.
fn write_status_line(out: &mut Vec<u8>, status: u16) {
    match status {
        200 => out.extend_from_slice(b"HTTP/1.1 200 OK\r\n"),
        204 => out.extend_from_slice(b"HTTP/1.1 204 No Content\r\n"),
        _ => write_any_status_line(out, status),
    }
}

fn write_any_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_content_length(out: &mut Vec<u8>, length: usize) {
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn write_connection(out: &mut Vec<u8>, framing: Framing) {
    if framing.close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if framing.keep_alive_header {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
}

/// 1xx, 204 and 304 responses carry neither a body nor Content-Length.
fn status_allows_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// RFC 9110 token: visible ASCII except delimiters. (Branch-free over the bytes: names are
/// short and almost always valid.)
/// A response header name checked once, when it is built, rather than on every response: a
/// token, and not one the server owns (Content-Length, Transfer-Encoding, Connection). Build it
/// with [`header_name!`](crate::header_name) in a `const`, so a bad name fails the build:
/// `const NBR: HeaderName = net::header_name!("x-openrtb-nbr");`. Used with
/// [`Response::named_header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderName {
    /// `name: `, the start of the header line.
    line_start: &'static str,
}

impl HeaderName {
    /// Takes `line_start` = the name followed by `": "` (what `header_name!` passes). Panics (at
    /// compile time in a `const`) when the name is not a token or is server-owned.
    #[doc(hidden)]
    pub const fn from_line_start(line_start: &'static str) -> Self {
        let bytes = line_start.as_bytes();
        let len = bytes.len();
        assert!(
            len > 2 && bytes[len - 2] == b':' && bytes[len - 1] == b' ',
            "a header line start is `name: `"
        );
        assert!(
            line_name_end(bytes, 0) == len - 2,
            "a header line start is `name: `"
        );
        let name = bytes.split_at(len - 2).0;
        assert!(
            !is_server_owned(name),
            "the server owns framing and connection headers"
        );
        HeaderName { line_start }
    }

    /// The header's name.
    pub fn name(self) -> &'static str {
        &self.line_start[..self.line_start.len() - 2]
    }
}

/// Complete header lines (`name: value\r\n`, one or more) checked once, when built: every name
/// a token and not one the server owns, every value free of CR, LF and NUL. Build it with
/// [`header_lines!`](crate::header_lines) in a `const`, so a bad line fails the build. Used with
/// [`Response::header_lines`] for answers whose headers are fixed (a no-bid's reason): one copy
/// instead of formatting and checking each header on every response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLines {
    block: &'static str,
}

impl HeaderLines {
    /// Takes the lines as `header_lines!` concatenates them. Panics (at compile time in a
    /// `const`) on a line that is not `name: value\r\n` with a token name the server does not
    /// own and a value without CR, LF or NUL.
    #[doc(hidden)]
    pub const fn from_block(block: &'static str) -> Self {
        let bytes = block.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let colon = line_name_end(bytes, at);
            let name = bytes.split_at(colon).0.split_at(at).1;
            assert!(
                !is_server_owned(name),
                "the server owns framing and connection headers"
            );
            assert!(
                colon + 1 < bytes.len() && bytes[colon + 1] == b' ',
                "a header line is `name: value`"
            );
            at = line_value_end(bytes, colon + 2) + 2;
        }
        HeaderLines { block }
    }

    /// The lines, CRLF-terminated.
    pub fn as_str(self) -> &'static str {
        self.block
    }
}

/// Where the name of the line starting at `at` ends (its colon); panics on a non-token byte.
const fn line_name_end(bytes: &[u8], mut at: usize) -> usize {
    let start = at;
    while at < bytes.len() && bytes[at] != b':' {
        assert!(TOKEN_BYTES[bytes[at] as usize], "a header name is a token");
        at += 1;
    }
    assert!(
        at > start && at < bytes.len(),
        "a header line is `name: value`"
    );
    at
}

/// Where the value starting at `at` ends (its CR, followed by LF); panics on a NUL or a bare CR
/// or LF.
const fn line_value_end(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && bytes[at] != b'\r' {
        assert!(
            bytes[at] != b'\n' && bytes[at] != 0,
            "a header value holds no LF or NUL"
        );
        at += 1;
    }
    assert!(
        at + 1 < bytes.len() && bytes[at + 1] == b'\n',
        "a header line ends with CRLF"
    );
    at
}

const fn is_server_owned(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length")
        || name.eq_ignore_ascii_case(b"transfer-encoding")
        || name.eq_ignore_ascii_case(b"connection")
}

/// Header lines checked at compile time:
/// `header_lines!("x-openrtb-nbr" => "0", "x-adcore-nobid-reason" => "below_floor")` (see
/// [`HeaderLines`]).
#[macro_export]
macro_rules! header_lines {
    ($($name:literal => $value:literal),+ $(,)?) => {
        $crate::http::HeaderLines::from_block(concat!($($name, ": ", $value, "\r\n"),+))
    };
}

/// A response header name checked at compile time: `header_name!("x-openrtb-nbr")` (see
/// [`HeaderName`]).
#[macro_export]
macro_rules! header_name {
    ($name:literal) => {
        $crate::http::HeaderName::from_line_start(concat!($name, ": "))
    };
}

/// Whether a header value holds CR, LF or NUL (it could inject a header line; it is dropped).
fn breaks_the_line(value: &str) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, value.as_bytes()).is_some()
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .fold(true, |token, b| token & TOKEN_BYTES[usize::from(b)])
}

/// RFC 9110 `tchar`: the bytes a header name may contain (a table: handlers set a few headers on
/// every response).
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        byte += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    const NBR: HeaderName = crate::header_name!("X-OpenRTB-NBR");

    #[test]
    fn named_header_writes_the_line_and_drops_a_bad_value() {
        let mut response = Response::new();
        response
            .named_header(NBR, " 8 ")
            .named_header(NBR, "1\r\nSet-Cookie: x");
        assert_eq!(NBR.name(), "X-OpenRTB-NBR");
        assert_eq!(response.headers, b"X-OpenRTB-NBR: 8\r\n");
    }

    #[test]
    fn header_names_are_checked_when_built() {
        for bad in ["bad name: ", ": ", "Content-Length: ", "CONNECTION: ", "x"] {
            let built = std::panic::catch_unwind(|| HeaderName::from_line_start(bad));
            assert!(built.is_err(), "{bad:?} must be refused");
        }
        assert_eq!(HeaderName::from_line_start("x-a: ").name(), "x-a");
    }

    const NOBID: HeaderLines = crate::header_lines!("x-openrtb-nbr" => "0", "x-why" => "no bid");

    #[test]
    fn header_lines_are_copied_as_built() {
        let mut response = Response::new();
        response.status(204).header_lines(NOBID);
        assert_eq!(response.headers, b"x-openrtb-nbr: 0\r\nx-why: no bid\r\n");
    }

    #[test]
    fn header_lines_are_checked_when_built() {
        for bad in [
            "x-a: 1",                // no CRLF
            "x-a: 1\r\nx-b 2\r\n",   // no colon
            ": 1\r\n",               // no name
            "x a: 1\r\n",            // name not a token
            "x-a:1\r\n",             // no space after the colon
            "x-a: 1\nx-b: 2\r\n",    // bare LF in a value
            "x-a: 1\r",              // CR without LF
            "Content-Length: 3\r\n", // server-owned
            "connection: close\r\n", // server-owned
        ] {
            let built = std::panic::catch_unwind(|| HeaderLines::from_block(bad));
            assert!(built.is_err(), "{bad:?} must be refused");
        }
        assert_eq!(HeaderLines::from_block("x-a: \r\n").as_str(), "x-a: \r\n");
    }

    const KEEP: Framing = Framing {
        head_only: false,
        close: false,
        keep_alive_header: false,
    };

    fn serialized(response: &Response, framing: Framing) -> String {
        let mut out = Vec::new();
        response.write_to(&mut out, framing);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn sets_content_length_and_keeps_handler_headers() {
        let mut response = Response::new();
        response
            .status(201)
            .header("Content-Type", "application/json")
            .body(b"{}");
        assert_eq!(
            serialized(&response, KEEP),
            "HTTP/1.1 201 Created\r\ncontent-length: 2\r\nContent-Type: application/json\r\n\r\n{}"
        );
    }

    #[test]
    fn ignores_framing_headers_and_rejects_injection() {
        let mut response = Response::new();
        response
            .header("Content-Length", "999")
            .header("Transfer-Encoding", "chunked")
            .header("X-Evil", "a\r\nSet-Cookie: x")
            .header("bad name", "v")
            .body(b"ok");
        assert_eq!(
            serialized(&response, KEEP),
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        );
        assert!(!response.close_requested());
        response.header("Connection", "close");
        assert!(response.close_requested());
    }

    #[test]
    fn no_body_for_204_and_head() {
        let mut response = Response::new();
        response.status(204).body(b"ignored");
        assert_eq!(
            serialized(&response, KEEP),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
        response.status(200);
        let head = Framing {
            head_only: true,
            close: true,
            ..KEEP
        };
        assert_eq!(
            serialized(&response, head),
            "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn invalid_status_becomes_500_and_reset_clears() {
        let mut response = Response::new();
        response
            .status(100)
            .header("X-A", "1")
            .body(b"x")
            .close_connection();
        assert_eq!(response.status_code(), 500);
        response.reset();
        assert_eq!(response.status_code(), 200);
        assert!(response.body_bytes().is_empty());
        assert!(!response.close_requested());
        assert_eq!(
            serialized(&response, KEEP),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn error_response_is_text_and_closes() {
        let mut out = Vec::new();
        write_error(&mut out, &HttpError::LengthRequired);
        let text = String::from_utf8(out).expect("ascii");
        assert!(text.starts_with("HTTP/1.1 411 Length Required\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.contains("content-type: text/plain"));
        let (head, body) = text.split_once("\r\n\r\n").expect("blank line");
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        assert!(body.starts_with("length required"));
    }

    #[test]
    fn static_status_lines_match_the_general_ones() {
        for status in 100..=999 {
            let (mut fast, mut general) = (Vec::new(), Vec::new());
            write_status_line(&mut fast, status);
            write_any_status_line(&mut general, status);
            assert_eq!(fast, general, "{status}");
        }
    }

    #[test]
    fn reserved_headers_match_case_insensitively() {
        let mut response = Response::new();
        response
            .header("CONTENT-LENGTH", "1")
            .header("transfer-Encoding", "chunked")
            .header("Content-Lengtz", "1")
            .header("connection", " Keep-Alive ");
        assert!(!response.close_requested());
        response.header("CONNECTION", "\tCLOSE ");
        assert!(response.close_requested());
        assert_eq!(
            serialized(&response, KEEP),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nContent-Lengtz: 1\r\n\r\n"
        );
    }

    #[test]
    fn header_names_are_exactly_rfc_9110_tokens() {
        for b in 0u8..=255 {
            let name = [b'x', b];
            let Ok(name) = std::str::from_utf8(&name) else {
                continue;
            };
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_token(name), tchar, "byte {b:#04x}");
        }
        assert!(!is_token(""));
        assert!(!is_token("x\u{e9}"));
    }
}
