//! Errors of OpenRTB parsing and validation: one path-qualified message each, e.g.
//! `request.imp[0].bidfloor must be a number`.

use super::codes::nbr;

/// A bid request that cannot be served: bad encoding, bad JSON, wrong types or broken OpenRTB rules.
/// The message names the offending member and is safe to send back to the caller (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// Human-readable, path-qualified reason.
    pub message: String,
}

impl RequestError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        RequestError {
            message: message.into(),
        }
    }

    /// The OpenRTB No-Bid Reason for this error: always 2 (invalid request).
    pub fn nbr(&self) -> u32 {
        nbr::INVALID_REQUEST
    }
}

/// A bid response from a bidder that cannot be used; the message names the offending member
/// (`response.seatbid[0].bid[0].price must be a number`). Retrying the same DSP call will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ResponseError {
    /// Human-readable, path-qualified reason.
    pub message: String,
}
