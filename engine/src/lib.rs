//! `engine`: the ad server.
//!
//! Owns the request pipeline and every domain stage: intake (OpenRTB -> auction job, owner shard),
//! catalog, candidate selection, scoring, the first-price auction, the budget sub-ledger,
//! responses, metrics, configuration and the `adserver` binary (serve and demo).
//!
//! Builds on `shards` (threads, mesh), `net` (HTTP, OpenRTB) and `model-runtime` (GBDT);
//! nothing in those crates knows about this one.

pub mod auction;
pub mod budget;
pub mod catalog;
pub use net::clock;
pub mod config;
pub mod degradation;
pub mod demo;
pub mod exposition;
pub mod features;
pub mod intake;
pub mod integrity;
pub mod learning;
pub mod ledger;
pub mod metrics;
pub mod model_store;
pub mod profile;
pub mod request_pool;
pub mod respond;
pub mod rtb;
pub mod scoring;
pub mod select;
pub mod server;
pub mod shard;
pub mod supervise;
pub mod wal;
