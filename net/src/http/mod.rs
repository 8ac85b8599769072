//! HTTP/1.1 server on monoio: a sans-IO request parser plus a per-shard connection loop with
//! keep-alive, pipelining, limits and graceful shutdown.
//!
//! Owns HTTP framing, status codes for protocol errors, connection lifetimes and their counters.
//! Must not know about auctions, OpenRTB or any route: the engine plugs in through [`Handler`].

mod error;
mod limits;
mod parser;
mod request;
mod response;
mod server;
mod shutdown;
mod stats;

#[cfg(test)]
mod parser_tests;

pub use error::{HttpError, reason_phrase};
pub use limits::{CHUNKED_FRAMING_BYTES_MIN, HEADERS_COUNT_CAP, Limits};
pub use parser::{
    BodyFraming, CHUNK_LINE_BYTES_MAX, Parsed, Progress, RequestHead, RequestParser,
    TRAILERS_COUNT_MAX, decode_chunked_in_place, parse_request,
};
pub use request::{HeaderSpan, Headers, Method, Request, Span};
pub use response::Response;
pub use server::{
    Handler, LISTEN_BACKLOG_DEFAULT, bind_reuseport, bind_reuseport_with_backlog, serve,
};
pub use shutdown::{Shutdown, ShutdownWait};
pub use stats::HttpStats;
