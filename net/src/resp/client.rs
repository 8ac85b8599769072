//! One RESP2 connection: queue commands, flush them in one write, read the replies in order.

use std::net::SocketAddr;
use std::time::Duration;

use monoio::buf::SliceMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use redis_protocol::resp2::decode::decode;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::BorrowedFrame;

use super::{Reply, RespConfig, RespError};

/// Bytes read per `read` call at most (the buffer grows to this, bounded by `max_reply_bytes`).
const READ_CHUNK_BYTES: usize = 16 * 1024;
/// Command arguments per command at most (a bounded scratch array, no allocation).
pub const MAX_ARGS: usize = 32;

/// One argument of a command: bytes, or an integer sent as its decimal text.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(b: &'a [u8]) -> Self {
        Arg::Bytes(b)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Bytes(s.as_bytes())
    }
}

impl From<i64> for Arg<'_> {
    fn from(i: i64) -> Self {
        Arg::Int(i)
    }
}

impl From<u64> for Arg<'_> {
    /// Panics above `i64::MAX` (callers bound their amounts far below).
    fn from(u: u64) -> Self {
        Arg::Int(i64::try_from(u).expect("argument fits i64"))
    }
}

/// A Lua script run with `EVALSHA`; its SHA1 is learned from `SCRIPT LOAD`.
#[derive(Debug, Clone)]
pub struct Script {
    source: String,
    sha: Option<String>,
    /// Times the script was (re)loaded: once at first use, again after every `NOSCRIPT`.
    pub loads: u64,
}

impl Script {
    pub fn new(source: impl Into<String>) -> Script {
        Script {
            source: source.into(),
            sha: None,
            loads: 0,
        }
    }

    /// The SHA1 the server reported, once loaded.
    pub fn sha(&self) -> Option<&str> {
        self.sha.as_deref()
    }
}

/// A connection to one Redis/Valkey server. After a connection-level error it is broken
/// (every call fails with [`RespError::Broken`]) until [`RespClient::reconnect`].
pub struct RespClient {
    addr: SocketAddr,
    cfg: RespConfig,
    stream: Option<TcpStream>,
    write_buf: Vec<u8>,
    read_buf: Vec<u8>,
    /// Start of undecoded bytes in `read_buf`.
    read_pos: usize,
    queued: usize,
}

impl std::fmt::Debug for RespClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RespClient")
            .field("addr", &self.addr)
            .field("connected", &self.stream.is_some())
            .field("queued", &self.queued)
            .finish()
    }
}

async fn open(addr: SocketAddr, cfg: &RespConfig) -> Result<TcpStream, RespError> {
    let ms = cfg.connect_timeout_ms;
    let stream = monoio::time::timeout(Duration::from_millis(ms), TcpStream::connect_addr(addr))
        .await
        .map_err(|_| RespError::ConnectTimeout { addr, ms })?
        .map_err(|source| RespError::Connect { addr, source })?;
    stream
        .set_nodelay(true)
        .map_err(|source| RespError::Io { addr, source })?;
    Ok(stream)
}

impl RespClient {
    /// Connects within `connect_timeout_ms`. Needs a monoio runtime with the timer enabled.
    pub async fn connect(addr: SocketAddr, cfg: RespConfig) -> Result<RespClient, RespError> {
        let stream = open(addr, &cfg).await?;
        Ok(RespClient {
            addr,
            cfg,
            stream: Some(stream),
            write_buf: Vec::with_capacity(4096),
            read_buf: Vec::with_capacity(READ_CHUNK_BYTES),
            read_pos: 0,
            queued: 0,
        })
    }

    /// Replaces the connection (after an error that broke it), dropping queued commands.
    pub async fn reconnect(&mut self) -> Result<(), RespError> {
        self.stream = None;
        self.reset_buffers();
        self.stream = Some(open(self.addr, &self.cfg).await?);
        Ok(())
    }

    fn reset_buffers(&mut self) {
        self.write_buf.clear();
        self.read_buf.clear();
        self.read_pos = 0;
        self.queued = 0;
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// False after a connection-level error, until [`RespClient::reconnect`].
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Commands queued and not yet flushed.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Encodes one command into the write buffer (sent by the next flush).
    pub fn queue(&mut self, args: &[Arg<'_>]) -> Result<(), RespError> {
        if self.queued >= self.cfg.max_pipeline {
            return Err(RespError::PipelineFull {
                limit: self.cfg.max_pipeline,
            });
        }
        assert!(
            !args.is_empty() && args.len() <= MAX_ARGS,
            "1..={MAX_ARGS} arguments"
        );
        const NULL: BorrowedFrame<'static> = BorrowedFrame::Null;
        let mut frames = [NULL; MAX_ARGS];
        for (f, a) in frames.iter_mut().zip(args) {
            *f = match *a {
                Arg::Bytes(b) => BorrowedFrame::BulkString(b),
                Arg::Int(i) => BorrowedFrame::Integer(i),
            };
        }
        let frame = BorrowedFrame::Array(&frames[..args.len()]);
        let start = self.write_buf.len();
        self.write_buf.resize(start + frame.encode_len(true), 0);
        let n = encode_borrowed(&mut self.write_buf[start..], &frame, true).map_err(|e| {
            RespError::Protocol {
                addr: self.addr,
                detail: e.to_string(),
            }
        })?;
        self.write_buf.truncate(start + n);
        self.queued += 1;
        Ok(())
    }

    /// Sends every queued command in one write and appends their replies, in order, to `out`.
    /// Error replies stay in `out` as [`Reply::Error`]; connection errors break the client.
    pub async fn flush_into(&mut self, out: &mut Vec<Reply>) -> Result<(), RespError> {
        if self.queued == 0 {
            return Ok(());
        }
        let Some(stream) = self.stream.take() else {
            self.reset_buffers();
            return Err(RespError::Broken { addr: self.addr });
        };
        let ms = self.cfg.io_timeout_ms;
        let exchange = Exchange {
            addr: self.addr,
            max_reply_bytes: self.cfg.max_reply_bytes,
            stream,
            write_buf: std::mem::take(&mut self.write_buf),
            read_buf: std::mem::take(&mut self.read_buf),
            read_pos: self.read_pos,
        };
        let want = self.queued;
        self.queued = 0;
        let result =
            monoio::time::timeout(Duration::from_millis(ms), exchange.run(want, out)).await;
        match result {
            Err(_) => {
                self.reset_buffers();
                Err(RespError::Timeout {
                    addr: self.addr,
                    ms,
                })
            }
            Ok(Err(e)) => {
                self.reset_buffers();
                Err(e)
            }
            Ok(Ok(ex)) => {
                self.stream = Some(ex.stream);
                self.write_buf = ex.write_buf;
                self.write_buf.clear();
                self.read_buf = ex.read_buf;
                self.read_pos = ex.read_pos;
                Ok(())
            }
        }
    }

    /// [`RespClient::flush_into`] into a new vector.
    pub async fn flush(&mut self) -> Result<Vec<Reply>, RespError> {
        let mut out = Vec::with_capacity(self.queued);
        self.flush_into(&mut out).await?;
        Ok(out)
    }

    /// Sends one command (after any queued ones) and returns its reply; an error reply is
    /// returned as [`RespError::Server`].
    pub async fn call(&mut self, args: &[Arg<'_>]) -> Result<Reply, RespError> {
        self.queue(args)?;
        let mut replies = self.flush().await?;
        match replies.pop() {
            Some(Reply::Error(message)) => Err(RespError::Server { message }),
            Some(reply) => Ok(reply),
            None => unreachable!("flush returns one reply per queued command"),
        }
    }

    /// Loads `script` with `SCRIPT LOAD` and remembers its SHA1.
    pub async fn load_script(&mut self, script: &mut Script) -> Result<(), RespError> {
        let reply = self
            .call(&[
                "SCRIPT".into(),
                "LOAD".into(),
                script.source.as_str().into(),
            ])
            .await?;
        match reply {
            Reply::BulkString(sha) => {
                script.sha = Some(String::from_utf8_lossy(&sha).into_owned());
                script.loads += 1;
                Ok(())
            }
            reply => Err(RespError::Unexpected {
                command: "SCRIPT LOAD",
                reply,
            }),
        }
    }

    /// Queues `EVALSHA` of an already loaded `script` (for pipelines; see
    /// [`RespClient::eval`] for the `NOSCRIPT` handling a single call gets).
    pub fn queue_evalsha(
        &mut self,
        script: &Script,
        keys: &[Arg<'_>],
        args: &[Arg<'_>],
    ) -> Result<(), RespError> {
        let sha = script
            .sha
            .as_deref()
            .expect("script loaded before queue_evalsha");
        let n = keys.len() + args.len() + 3;
        assert!(
            n <= MAX_ARGS,
            "EVALSHA with {n} arguments exceeds {MAX_ARGS}"
        );
        let mut all = [Arg::Int(0); MAX_ARGS];
        all[0] = "EVALSHA".into();
        all[1] = sha.into();
        all[2] = Arg::Int(keys.len() as i64);
        all[3..3 + keys.len()].copy_from_slice(keys);
        all[3 + keys.len()..n].copy_from_slice(args);
        self.queue(&all[..n])
    }

    /// Runs `script` with `EVALSHA`, loading it first if needed and again (once) when the
    /// server answers `NOSCRIPT` (restarted, or `SCRIPT FLUSH`).
    pub async fn eval(
        &mut self,
        script: &mut Script,
        keys: &[Arg<'_>],
        args: &[Arg<'_>],
    ) -> Result<Reply, RespError> {
        if script.sha.is_none() {
            self.load_script(script).await?;
        }
        self.queue_evalsha(script, keys, args)?;
        let mut replies = self.flush().await?;
        match replies.pop() {
            Some(Reply::Error(message)) if message.starts_with("NOSCRIPT") => {
                self.load_script(script).await?;
                self.queue_evalsha(script, keys, args)?;
                self.call_queued().await
            }
            Some(Reply::Error(message)) => Err(RespError::Server { message }),
            Some(reply) => Ok(reply),
            None => unreachable!("flush returns one reply per queued command"),
        }
    }

    async fn call_queued(&mut self) -> Result<Reply, RespError> {
        match self.flush().await?.pop() {
            Some(Reply::Error(message)) => Err(RespError::Server { message }),
            Some(reply) => Ok(reply),
            None => unreachable!("flush returns one reply per queued command"),
        }
    }
}

/// The state moved into one timed exchange (monoio's owned-buffer I/O takes the buffers; if the
/// timeout drops the exchange they are lost and the client resets them).
struct Exchange {
    addr: SocketAddr,
    max_reply_bytes: usize,
    stream: TcpStream,
    write_buf: Vec<u8>,
    read_buf: Vec<u8>,
    read_pos: usize,
}

impl Exchange {
    async fn run(mut self, want: usize, out: &mut Vec<Reply>) -> Result<Exchange, RespError> {
        let addr = self.addr;
        let (res, buf) = self.stream.write_all(self.write_buf).await;
        self.write_buf = buf;
        res.map_err(|source| RespError::Io { addr, source })?;
        let mut got = 0;
        while got < want {
            match self.decode_one()? {
                Some(reply) => {
                    out.push(reply);
                    got += 1;
                }
                None => self.read_more().await?,
            }
        }
        if self.read_pos == self.read_buf.len() {
            self.read_buf.clear();
            self.read_pos = 0;
        }
        Ok(self)
    }

    fn decode_one(&mut self) -> Result<Option<Reply>, RespError> {
        let pending = &self.read_buf[self.read_pos..];
        if pending.is_empty() {
            return Ok(None);
        }
        match decode(pending) {
            Ok(Some((frame, used))) => {
                self.read_pos += used;
                Ok(Some(frame))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(RespError::Protocol {
                addr: self.addr,
                detail: e.to_string(),
            }),
        }
    }

    async fn read_more(&mut self) -> Result<(), RespError> {
        let addr = self.addr;
        if self.read_pos > 0 {
            self.read_buf.drain(..self.read_pos);
            self.read_pos = 0;
        }
        let filled = self.read_buf.len();
        if filled >= self.max_reply_bytes {
            return Err(RespError::ReplyTooLarge {
                addr,
                limit: self.max_reply_bytes,
            });
        }
        let room = READ_CHUNK_BYTES.min(self.max_reply_bytes - filled);
        self.read_buf.reserve(room);
        let buf = std::mem::take(&mut self.read_buf);
        let (res, slice) = self
            .stream
            .read(SliceMut::new(buf, filled, filled + room))
            .await;
        self.read_buf = slice.into_inner();
        match res {
            Ok(0) => Err(RespError::Closed { addr }),
            Ok(_) => Ok(()),
            Err(source) => Err(RespError::Io { addr, source }),
        }
    }
}
