//! Budgets: per-campaign daily and lifetime budgets in integer micros, enforced without overspend
//! past a configured bound.
//!
//! Shape (DESIGN.md "Money invariants", seed Part 7): one [`allocator::Allocator`] per host holds
//! each campaign's budget through a [`source::BudgetSource`] and grants chunks to shards; each
//! shard spends from its [`subledger::SubLedger`] with no cross-core traffic on the hot path,
//! asking for refills asynchronously. Both are pure state machines (time and inputs in, ledger
//! records and replies out), so the engine and the deterministic simulation ([`sim`]) run the
//! same code. [`record`] is the ledger's binary format, [`calendar`] the advertisers' local days,
//! [`pacing`] the throttle that spreads spend over the day.
//!
//! Must not know: HTTP, OpenRTB, shards' mesh or files (the engine wires those in).

pub mod allocator;
pub mod calendar;
pub mod durable;
pub mod keyset;
pub mod pacing;
pub mod record;
pub mod redis_source;
pub mod sim;
pub mod source;
pub mod subledger;

pub use allocator::{Allocator, AllocatorConfig};
pub use calendar::Calendar;
pub use record::LedgerRecord;
pub use source::{Budget, BudgetSource, LocalCounters, Sizing};
pub use subledger::{Refusal, SpendImage, SpendLine, SubLedger, SubLedgerConfig};
