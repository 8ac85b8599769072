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

mod config;
mod ctx;
mod error;
mod event;
mod mesh;
mod pending;
mod serve;
mod start;

pub use config::{
    Config, Driver, DriverChoice, RING_CAPACITY_MAX, SHARDS_MAX, STALL_THRESHOLD_MIN, ShardId,
    resolve_driver, uring_available,
};
pub use ctx::{MeshStats, Service, ShardCtx};
pub use error::{MeshError, ParseDriverError, ShardPanic, StartError};
pub use start::{FactoryError, Sharded, StopHandle, start};
