//! `shards`: the thread-per-core, shared-nothing substrate.
//!
//! Owns: the shard threads (`shard-<i>`, one monoio runtime each, io_uring or the legacy epoll driver),
//! pinning them to cores, the full mesh of bounded lock-free SPSC rings between every ordered pair of
//! shards (`ShardCtx::invoke_on`, `invoke_on_all`, in Seastar's `sharded<T>` shape), the all-or-nothing
//! start-up, the orderly stop (`StopHandle`, `ShardCtx::stopping`), panic containment, and stall
//! detection (a task holding a shard longer than `stall_threshold`).
//!
//! Must not know: ads, auctions, HTTP, or anything a `Service` does with its messages.
//!
//! Bounds, decided: at most `ring_capacity` requests in flight per directed pair of shards — one more
//! fails at once with `MeshError::RingFull` (counted), never blocks and never drops; since replies never
//! outnumber requests in flight, the reply ring cannot overflow. After a stop, `run` and then the mesh
//! drain each get at most `stop_timeout`; calls left unanswered resolve `MeshError::Stopped`.
//!
//! Shard-local storage is the service itself: one `S` per shard, reached with `ShardCtx::service()`.
//!
//! ```
//! use std::rc::Rc;
//! use shards::{Config, Service, ShardCtx, ShardId};
//!
//! struct Counter { report: std::sync::mpsc::Sender<u64> }
//!
//! impl Service for Counter {
//!     type Msg = u64;
//!     type Reply = u64;
//!     async fn run(self: Rc<Self>, ctx: ShardCtx<Self>) {
//!         if ctx.id() == ShardId(0) {
//!             let doubled = ctx.invoke_on(ShardId(1), 21).await.unwrap_or(0);
//!             let _ = self.report.send(doubled);
//!         }
//!         ctx.stopping().await; // then drain this shard's own work and return
//!     }
//!     async fn handle(self: Rc<Self>, _ctx: ShardCtx<Self>, _from: ShardId, msg: u64) -> u64 {
//!         msg * 2
//!     }
//! }
//!
//! let (tx, rx) = std::sync::mpsc::channel();
//! let cfg = Config { shards: 2, pin_cores: false, ..Config::default() };
//! let sharded = shards::start(cfg, move |_ctx: &ShardCtx<Counter>| Ok(Counter { report: tx.clone() }))?;
//! assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(30))?, 42);
//! sharded.stop_handle().stop(); // e.g. from a signal thread
//! sharded.wait()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alloc;
mod config;
mod ctx;
mod error;
mod event;
mod mesh;
mod pending;
mod ring;
mod serve;
mod start;

pub use config::{
    Config, Driver, DriverChoice, RING_CAPACITY_MAX, SHARDS_MAX, STALL_THRESHOLD_MIN, ShardId,
    resolve_driver, uring_available,
};
pub use ctx::{MeshStats, Service, ShardCtx};
pub use error::{MeshError, ParseDriverError, ShardPanic, StartError};
pub use ring::with_cooperative_ring;
pub use start::{FactoryError, Sharded, StopHandle, start};
