//! HTTP/1.1 server on monoio: a sans-IO request parser plus a per-shard connection loop with
//! keep-alive, pipelining, limits and graceful shutdown.
//!
//! Owns HTTP framing, status codes for protocol errors, connection lifetimes and their counters.
//! Must not know about auctions, OpenRTB or any route: the engine plugs in through [`Handler`].
//!
//! Layers: [`RequestParser`] (sans-IO, fuzzed) -> the connection loop inside [`serve`]
//! (buffers reused for the connection's life, one write per batch of pipelined responses) ->
//! [`Handler`]. Every bound is in [`Limits`]; protocol errors become 400/408/411/413/431/501/505
//! text responses with `Connection: close`; counters are in [`HttpStats`].
//!
//! ```no_run
//! use std::rc::Rc;
//! use std::time::{Duration, Instant};
//! use net::http::{Handler, HttpStats, Limits, Request, Response, Shutdown, bind_reuseport, serve};
//!
//! struct Hello;
//! impl Handler for Hello {
//!     async fn handle<'a>(&'a self, req: &'a Request<'a>, resp: &'a mut Response) {
//!         resp.header("content-type", "text/plain").body(req.path.as_bytes());
//!     }
//! }
//!
//! # fn main() -> std::io::Result<()> {
//! let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build()?;
//! runtime.block_on(async {
//!     let listener = bind_reuseport("127.0.0.1:8080".parse().unwrap())?;
//!     let shutdown = Shutdown::new();
//!     let stopper = shutdown.clone(); // e.g. fired by the shard on SIGTERM:
//!     monoio::spawn(async move {
//!         monoio::time::sleep(Duration::from_secs(60)).await;
//!         stopper.trigger(Instant::now() + Duration::from_secs(5));
//!     });
//!     let stats = Rc::new(HttpStats::new());
//!     serve(listener, Rc::new(Hello), Limits::default(), shutdown, stats).await;
//!     Ok(())
//! })
//! # }
//! ```

pub mod client;
mod deadline;
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
pub use response::{HeaderLines, HeaderName, Response};
pub use server::{
    Handler, LISTEN_BACKLOG_DEFAULT, bind_reuseport, bind_reuseport_with_backlog, serve,
};
pub use shutdown::{Shutdown, ShutdownWait};
pub use stats::HttpStats;
