//! `net`: wire formats and I/O. Knows nothing of auctions.
pub mod clock;
pub mod http;
pub mod openrtb;
pub mod resp;
