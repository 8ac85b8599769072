//! A small HTTP/1.1 keep-alive client on monoio, one request in flight per
//! connection: write a pre-built request, read the response head with
//! `httparse::parse_response`, then skip a Content-Length, chunked or
//! until-close body. Buffers are owned by the connection and reused, so a request
//! allocates nothing. Knows nothing of schedules, statistics or OpenRTB.

use std::io;
use std::net::SocketAddr;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::request::RequestPool;

/// Capacity of the read buffer, hence the largest response head accepted.
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Largest response body accepted (longer ones are a parse error, not a hang).
pub const BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Most response headers accepted.
pub const HEADERS_MAX: usize = 64;

/// Which step of an exchange failed (connect failures are reported by [`connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Write,
    Read,
    Parse,
}

/// Why an exchange failed; the connection must be dropped afterwards.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("write failed: {0}")]
    Write(io::Error),
    #[error("read failed: {0}")]
    Read(io::Error),
    #[error("server closed the connection before the response was complete")]
    Closed,
    #[error("bad response: {0}")]
    Parse(&'static str),
}

impl ExchangeError {
    pub fn kind(&self) -> FailureKind {
        match self {
            ExchangeError::Write(_) => FailureKind::Write,
            ExchangeError::Read(_) | ExchangeError::Closed => FailureKind::Read,
            ExchangeError::Parse(_) => FailureKind::Parse,
        }
    }
}

/// What the client keeps of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// False when the server asked to close (or the body ran until close).
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

struct Head {
    len: usize,
    response: Response,
    framing: Framing,
}

/// Opens a TCP connection with `TCP_NODELAY`.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_addr(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One client connection slot: the socket (when open) and its reused buffers.
pub struct Connection {
    stream: Option<TcpStream>,
    write_buf: Vec<u8>,
    read_buf: Vec<u8>,
    /// Start of unconsumed bytes in `read_buf` (which holds `..len()` valid bytes).
    read_pos: usize,
    write_bytes_hint: usize,
    /// Keep the response body in `body` (for `--events`); off, bodies are skipped unread.
    capture: bool,
    body: Vec<u8>,
}

impl Connection {
    /// An unconnected slot whose write buffer is sized for `write_bytes_hint`.
    pub fn new(write_bytes_hint: usize) -> Connection {
        Connection {
            stream: None,
            write_buf: Vec::with_capacity(write_bytes_hint),
            read_buf: Vec::with_capacity(HEAD_BYTES_MAX),
            read_pos: 0,
            write_bytes_hint,
            capture: false,
            body: Vec::new(),
        }
    }

    /// Keeps each response body (see [`Connection::body`]) instead of skipping it.
    pub fn set_capture(&mut self, capture: bool) {
        self.capture = capture;
    }

    /// The body of the last complete response when capturing (empty otherwise).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    pub fn attach(&mut self, stream: TcpStream) {
        self.stream = Some(stream);
    }

    /// Drops the socket (after an error, a timeout or `Connection: close`).
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// Sends request `request_no` from `pool` and reads its whole response.
    /// If this future is dropped mid-way (a timeout), call [`Connection::close`]:
    /// the buffers are restored lazily on the next exchange.
    pub async fn exchange(
        &mut self,
        pool: &RequestPool,
        request_no: u64,
    ) -> Result<Response, ExchangeError> {
        self.restore_buffers();
        let mut stream = self.stream.take().ok_or(ExchangeError::Closed)?;
        let result = self.exchange_on(&mut stream, pool, request_no).await;
        if matches!(result, Ok(r) if r.keep_alive) {
            self.stream = Some(stream);
        }
        result
    }

    fn restore_buffers(&mut self) {
        // A dropped in-flight read or write took its buffer along: replace it once.
        if self.write_buf.capacity() == 0 {
            self.write_buf = Vec::with_capacity(self.write_bytes_hint);
        }
        if self.read_buf.capacity() == 0 {
            self.read_buf = Vec::with_capacity(HEAD_BYTES_MAX);
        }
        self.read_buf.clear();
        self.read_pos = 0;
        self.body.clear();
    }

    async fn exchange_on(
        &mut self,
        stream: &mut TcpStream,
        pool: &RequestPool,
        request_no: u64,
    ) -> Result<Response, ExchangeError> {
        let mut request = std::mem::take(&mut self.write_buf);
        pool.write_request(request_no, &mut request);
        let (written, request) = stream.write_all(request).await;
        self.write_buf = request;
        written.map_err(ExchangeError::Write)?;
        let head = self.read_head(stream).await?;
        self.read_pos = head.len;
        let response = self.skip_body(stream, head.framing, head.response).await?;
        if self.read_pos != self.read_buf.len() {
            return Err(ExchangeError::Parse("unexpected bytes after the response"));
        }
        Ok(response)
    }

    async fn read_head(&mut self, stream: &mut TcpStream) -> Result<Head, ExchangeError> {
        loop {
            if self.fill(stream).await? == 0 {
                return Err(ExchangeError::Closed);
            }
            if let Some(head) = parse_head(&self.read_buf)? {
                return Ok(head);
            }
            if self.read_buf.len() == self.read_buf.capacity() {
                return Err(ExchangeError::Parse("response head larger than 64 KiB"));
            }
        }
    }

    /// Reads more bytes after the valid ones; moves unconsumed bytes to the
    /// front first. Returns 0 at end of stream.
    async fn fill(&mut self, stream: &mut TcpStream) -> Result<usize, ExchangeError> {
        if self.read_pos > 0 {
            self.read_buf.copy_within(self.read_pos.., 0);
            self.read_buf.truncate(self.read_buf.len() - self.read_pos);
            self.read_pos = 0;
        }
        let (len, cap) = (self.read_buf.len(), self.read_buf.capacity());
        if len == cap {
            return Err(ExchangeError::Parse(
                "response line longer than the read buffer",
            ));
        }
        let buf = std::mem::take(&mut self.read_buf);
        let (read, slice) = stream.read(buf.slice_mut(len..cap)).await;
        self.read_buf = slice.into_inner();
        read.map_err(ExchangeError::Read)
    }

    fn buffered(&self) -> usize {
        self.read_buf.len() - self.read_pos
    }

    async fn skip_body(
        &mut self,
        stream: &mut TcpStream,
        framing: Framing,
        response: Response,
    ) -> Result<Response, ExchangeError> {
        match framing {
            Framing::Length(len) => {
                self.skip_exact(stream, len).await?;
                Ok(response)
            }
            Framing::Chunked => {
                self.skip_chunked(stream).await?;
                Ok(response)
            }
            Framing::UntilClose => {
                self.skip_until_close(stream).await?;
                Ok(Response {
                    keep_alive: false,
                    ..response
                })
            }
        }
    }

    async fn skip_exact(
        &mut self,
        stream: &mut TcpStream,
        mut remaining: usize,
    ) -> Result<(), ExchangeError> {
        loop {
            let take = remaining.min(self.buffered());
            self.keep(take);
            self.read_pos += take;
            remaining -= take;
            if remaining == 0 {
                return Ok(());
            }
            self.read_buf.clear();
            self.read_pos = 0;
            if self.fill(stream).await? == 0 {
                return Err(ExchangeError::Closed);
            }
        }
    }

    /// Copies the next `n` unconsumed bytes into the captured body (when capturing).
    fn keep(&mut self, n: usize) {
        if self.capture {
            let from = self.read_pos;
            self.body.extend_from_slice(&self.read_buf[from..from + n]);
        }
    }

    async fn skip_until_close(&mut self, stream: &mut TcpStream) -> Result<(), ExchangeError> {
        let mut body_bytes = self.buffered();
        self.keep(body_bytes);
        loop {
            self.read_buf.clear();
            self.read_pos = 0;
            let n = self.fill(stream).await?;
            if n == 0 {
                return Ok(());
            }
            self.keep(n);
            body_bytes += n;
            if body_bytes > BODY_BYTES_MAX {
                return Err(ExchangeError::Parse("response body larger than 16 MiB"));
            }
        }
    }

    async fn skip_chunked(&mut self, stream: &mut TcpStream) -> Result<(), ExchangeError> {
        let mut body_bytes = 0usize;
        loop {
            let size = self.read_chunk_size(stream).await?;
            if size == 0 {
                return self.skip_trailers(stream).await;
            }
            body_bytes = body_bytes.saturating_add(size);
            if body_bytes > BODY_BYTES_MAX {
                return Err(ExchangeError::Parse("response body larger than 16 MiB"));
            }
            self.skip_exact(stream, size).await?;
            self.expect_crlf(stream).await?;
        }
    }

    async fn read_chunk_size(&mut self, stream: &mut TcpStream) -> Result<usize, ExchangeError> {
        loop {
            match httparse::parse_chunk_size(&self.read_buf[self.read_pos..]) {
                Ok(httparse::Status::Complete((used, size))) => {
                    self.read_pos += used;
                    return usize::try_from(size)
                        .map_err(|_| ExchangeError::Parse("chunk size too large"));
                }
                Ok(httparse::Status::Partial) => self.fill_or_closed(stream).await?,
                Err(_) => return Err(ExchangeError::Parse("bad chunk size line")),
            }
        }
    }

    async fn expect_crlf(&mut self, stream: &mut TcpStream) -> Result<(), ExchangeError> {
        while self.buffered() < 2 {
            self.fill_or_closed(stream).await?;
        }
        if &self.read_buf[self.read_pos..self.read_pos + 2] != b"\r\n" {
            return Err(ExchangeError::Parse("chunk data not followed by CRLF"));
        }
        self.read_pos += 2;
        Ok(())
    }

    /// Skips trailer lines up to and including the empty line ending the body.
    async fn skip_trailers(&mut self, stream: &mut TcpStream) -> Result<(), ExchangeError> {
        loop {
            let pending = &self.read_buf[self.read_pos..];
            match pending.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.read_pos += 2;
                    return Ok(());
                }
                Some(end) => self.read_pos += end + 2,
                None => self.fill_or_closed(stream).await?,
            }
        }
    }

    async fn fill_or_closed(&mut self, stream: &mut TcpStream) -> Result<(), ExchangeError> {
        match self.fill(stream).await? {
            0 => Err(ExchangeError::Closed),
            _ => Ok(()),
        }
    }
}

/// Parses a response head if complete (`Ok(None)` when more bytes are needed).
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, ExchangeError> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ExchangeError::Parse("more than 64 response headers"));
        }
        Err(_) => return Err(ExchangeError::Parse("malformed response head")),
    };
    let status = parsed.code.unwrap_or(0);
    if !(200..600).contains(&status) {
        return Err(ExchangeError::Parse("status outside 200..=599"));
    }
    let fields = HeaderFields::from_headers(parsed.headers)?;
    let http_1_0 = parsed.version == Some(0);
    let keep_alive = if http_1_0 {
        fields.keep_alive
    } else {
        !fields.close
    };
    let framing = framing_of(status, &fields)?;
    Ok(Some(Head {
        len,
        response: Response { status, keep_alive },
        framing,
    }))
}

#[derive(Default)]
struct HeaderFields {
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
}

impl HeaderFields {
    fn from_headers(headers: &[httparse::Header<'_>]) -> Result<HeaderFields, ExchangeError> {
        let mut fields = HeaderFields::default();
        for h in headers {
            if h.name.eq_ignore_ascii_case("content-length") {
                let len = parse_content_length(h.value)?;
                if fields.content_length.is_some_and(|prev| prev != len) {
                    return Err(ExchangeError::Parse("conflicting Content-Length headers"));
                }
                fields.content_length = Some(len);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                fields.chunked = last_token_is(h.value, b"chunked");
                if !fields.chunked {
                    return Err(ExchangeError::Parse("unsupported Transfer-Encoding"));
                }
            } else if h.name.eq_ignore_ascii_case("connection") {
                fields.close |= has_token(h.value, b"close");
                fields.keep_alive |= has_token(h.value, b"keep-alive");
            }
        }
        Ok(fields)
    }
}

fn framing_of(status: u16, fields: &HeaderFields) -> Result<Framing, ExchangeError> {
    if status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    if fields.chunked {
        return Ok(Framing::Chunked);
    }
    match fields.content_length {
        Some(len) if len > BODY_BYTES_MAX => {
            Err(ExchangeError::Parse("response body larger than 16 MiB"))
        }
        Some(len) => Ok(Framing::Length(len)),
        None => Ok(Framing::UntilClose),
    }
}

fn parse_content_length(value: &[u8]) -> Result<usize, ExchangeError> {
    let text = std::str::from_utf8(value)
        .map_err(|_| ExchangeError::Parse("Content-Length is not ASCII"))?
        .trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ExchangeError::Parse("Content-Length is not a number"));
    }
    text.parse()
        .map_err(|_| ExchangeError::Parse("Content-Length out of range"))
}

fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(|t| t.trim_ascii())
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    tokens(value)
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, ExchangeError> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_keep_alive_content_length() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            h.response,
            Response {
                status: 200,
                keep_alive: true
            }
        );
        assert_eq!(h.framing, Framing::Length(12));
        assert_eq!(h.len, 39);
    }

    #[test]
    fn partial_head_needs_more() {
        assert!(head("HTTP/1.1 204 No Con").unwrap().is_none());
    }

    #[test]
    fn no_content_and_close_and_http10() {
        let h = head("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(0));
        assert!(!h.response.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.response.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.response.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn rejects_bad_heads() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 999 What\r\n\r\n",
            "SMTP ready\r\n\r\n",
        ] {
            assert!(
                matches!(head(bad), Err(ExchangeError::Parse(_))),
                "accepted {bad:?}"
            );
        }
    }
}
