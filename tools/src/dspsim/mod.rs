//! dsp-sim: one process simulating many OpenRTB 2.6 DSPs on loopback ports, for tests, the
//! demo and the timeout/revenue benchmark.
//!
//! Owns: the config format and the seed population ([`config`]), what a DSP answers
//! ([`model`]: latency, bid/no-bid, price, errors, late answers, faults) and the sockets
//! ([`server`]: one raw listener per DSP, plus a control port for stats, notices and runtime
//! fault/latency changes). Knows nothing of the engine: it only speaks HTTP and OpenRTB.
//!
//! Control port API (JSON):
//! - `GET /stats`: every DSP with its address, tier, region, fault, latency and counters.
//! - `GET /notices?dsp=ID`: that DSP's counters and its last `notices_kept` notices.
//! - `GET /notice/{win|billing|loss}?dsp=ID&...`: where the bids' nurl/burl/lurl point.
//! - `POST /dsp/ID/fault` `{"mode":"stall"|"reset"|"half_written"|"malformed"|"http_5xx"|"none","share":1.0}`
//! - `POST /dsp/ID/latency` `{"latency":{"dist":"lognormal","median_ms":20,"sigma":0.3},"slow_share":0.1,"slow_ms":200,"timeout_rate":0}` (any subset)
pub mod config;
pub mod model;
pub mod server;
