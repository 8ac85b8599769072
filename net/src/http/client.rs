//! HTTP/1.1 keep-alive client on monoio for calling upstreams (DSPs) from a shard.
//!
//! Owns: request serialization (optionally gzip bodies), response framing (Content-Length,
//! chunked, until-close) with bounded head/body sizes, and a bounded per-upstream connection
//! [`Pool`] with warm-up, connect timeout, reconnect backoff with jitter and counters.
//! Must not know about auctions, OpenRTB or which upstream is which: callers pass bytes.
//!
//! One pool per upstream per shard: it is `!Send` (Rc/Cell inside) and never shared across
//! threads. A connection carries one request at a time. A connection is returned to the pool
//! only after a complete, well-framed keep-alive response; after any error, a deadline, or a
//! dropped `send` future, it is closed. At `max_conns` open connections `send` fails at once
//! with [`ClientError::PoolExhausted`]: nothing queues.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use net::http::client::{ClientRequest, Pool, PoolConfig};
//!
//! # async fn demo() {
//! let pool = Pool::new(PoolConfig::new("127.0.0.1:9001".parse().unwrap(), "dsp1"));
//! pool.warm(4).await;
//! let req = ClientRequest::post("/openrtb2/auction", br#"{"id":"1"}"#)
//!     .headers(&[("content-type", b"application/json"), ("x-openrtb-version", b"2.6")]);
//! match pool.send(&req, Instant::now() + Duration::from_millis(80)).await {
//!     Ok(resp) if resp.status == 200 => { /* parse resp.body */ }
//!     Ok(resp) => { /* 204 no bid, 5xx ... */ let _ = resp.status; }
//!     Err(error) => { let _retry = error.retry_may_help(); }
//! }
//! # }
//! ```

mod conn;
mod error;
mod gzip;
mod pool;
mod stats;
mod wire;

pub use error::ClientError;
pub use pool::{Pool, PoolConfig};
pub use stats::{PoolStats, PoolStatsSnapshot};
pub use wire::{ClientRequest, ClientResponse, ResponseHeaders};
