//! One client connection: the socket and its reused buffers, and one request/response
//! round trip on it. The pool decides whether the connection lives on afterwards.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

use super::error::ClientError;
use super::wire::{ClientResponse, Framing, Head, decode_chunked, parse_head, scan_chunked};

/// First size of a read buffer.
const READ_BUFFER_BYTES_MIN: usize = 4096;
/// Buffers grown above this by one large message are shrunk back afterwards.
const BUFFER_BYTES_KEEP: usize = 64 * 1024;
/// Chunk framing allowed on top of the body: a fixed allowance plus one eighth of the body.
const CHUNK_FRAMING_BYTES_MIN: usize = 1024;

/// Size bounds of a response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseLimits {
    pub head_bytes_max: usize,
    pub body_bytes_max: usize,
}

/// A complete response and whether the connection may carry another request.
pub(crate) struct Exchanged {
    pub response: ClientResponse,
    pub reusable: bool,
}

pub(crate) struct Conn {
    stream: TcpStream,
    read_buf: Vec<u8>,
    /// The serialized request; filled by the pool before [`Conn::round_trip`].
    pub write_buf: Vec<u8>,
    /// When the connection last finished a response (or was opened).
    pub idle_since: Instant,
}

impl Conn {
    /// Connect with `TCP_NODELAY` (no timeout here: the pool wraps this in one).
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_addr(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            read_buf: Vec::with_capacity(READ_BUFFER_BYTES_MIN),
            write_buf: Vec::with_capacity(READ_BUFFER_BYTES_MIN),
            idle_since: Instant::now(),
        })
    }

    /// Whether an idle connection is unusable: the peer closed or reset it, or sent bytes nobody
    /// asked for. One non-blocking `recv(MSG_PEEK)`; never consumes data.
    pub fn is_stale(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: `byte` is a valid 1-byte buffer for the duration of the call; the fd is owned
        // by `self.stream`, which is alive.
        let n = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                (&raw mut byte).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let kind = io::Error::last_os_error().kind();
            return !matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted);
        }
        true // 0: closed by the peer; > 0: unsolicited bytes.
    }

    /// Write `write_buf` and read one whole response. If this future is dropped midway the
    /// connection must be closed (a buffer may be held by the cancelled operation).
    pub async fn round_trip(&mut self, limits: ResponseLimits) -> Result<Exchanged, ClientError> {
        self.read_buf.clear();
        let request = mem::take(&mut self.write_buf);
        let (written, mut request) = self.stream.write_all(request).await;
        request.clear();
        request.shrink_to(BUFFER_BYTES_KEEP);
        self.write_buf = request;
        written.map_err(|e| ClientError::from_io(&e))?;
        let head = self.read_head(limits).await?;
        let exchanged = self.read_body(head, limits).await?;
        self.read_buf.clear();
        self.read_buf.shrink_to(BUFFER_BYTES_KEEP);
        self.idle_since = Instant::now();
        Ok(exchanged)
    }

    async fn read_head(&mut self, limits: ResponseLimits) -> Result<Head, ClientError> {
        loop {
            if let Some(head) = parse_head(&self.read_buf, limits.body_bytes_max)? {
                return Ok(head);
            }
            self.fill_or_reset(limits.head_bytes_max, "response head above the limit")
                .await?;
        }
    }

    async fn read_body(
        &mut self,
        head: Head,
        limits: ResponseLimits,
    ) -> Result<Exchanged, ClientError> {
        let start = head.len;
        let (end, body) = match head.framing {
            Framing::Length(len) => {
                let end = start + len;
                while self.read_buf.len() < end {
                    self.fill_or_reset(end, "body above Content-Length").await?;
                }
                (end, self.read_buf[start..end].to_vec())
            }
            Framing::Chunked => {
                let wire_max = start
                    + limits.body_bytes_max
                    + limits.body_bytes_max / 8
                    + CHUNK_FRAMING_BYTES_MIN;
                let end = loop {
                    if let Some(n) = scan_chunked(&self.read_buf[start..], limits.body_bytes_max)? {
                        break start + n;
                    }
                    self.fill_or_reset(wire_max, "chunked body framing above the limit")
                        .await?;
                };
                let mut body = Vec::with_capacity(end - start);
                decode_chunked(&self.read_buf[start..end], &mut body);
                (end, body)
            }
            Framing::UntilClose => {
                let max = start + limits.body_bytes_max + 1;
                while self.fill(max, "body above the limit").await? > 0 {}
                if self.read_buf.len() - start > limits.body_bytes_max {
                    return Err(ClientError::TooLarge("body above the limit"));
                }
                (self.read_buf.len(), self.read_buf[start..].to_vec())
            }
        };
        // Bytes after the response were never asked for: the stream cannot be trusted.
        let reusable = head.keep_alive && self.read_buf.len() == end;
        Ok(Exchanged {
            response: ClientResponse {
                status: head.status,
                headers: head.headers,
                body,
            },
            reusable,
        })
    }

    async fn fill_or_reset(
        &mut self,
        max: usize,
        too_large: &'static str,
    ) -> Result<(), ClientError> {
        match self.fill(max, too_large).await? {
            0 => Err(ClientError::Reset),
            _ => Ok(()),
        }
    }

    /// Read more bytes after the buffered ones, growing the buffer up to `max` bytes.
    /// Returns 0 at end of stream; `TooLarge` when `max` bytes are already buffered.
    async fn fill(&mut self, max: usize, too_large: &'static str) -> Result<usize, ClientError> {
        let len = self.read_buf.len();
        if len >= max {
            return Err(ClientError::TooLarge(too_large));
        }
        if self.read_buf.capacity() == len {
            let target = (len * 2).max(READ_BUFFER_BYTES_MIN).min(max);
            self.read_buf.reserve_exact(target - len);
        }
        let buf = mem::take(&mut self.read_buf);
        let capacity = buf.capacity();
        let (read, slice) = self.stream.read(buf.slice_mut(len..capacity)).await;
        self.read_buf = slice.into_inner();
        read.map_err(|e| ClientError::from_io(&e))
    }
}
