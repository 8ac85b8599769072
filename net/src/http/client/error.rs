//! Why a client request failed, and whether trying again can help.

use std::io;

/// Failure of [`super::Pool::send`]. After every variant except the pool-level ones
/// (`PoolExhausted`, `BackingOff`, `InvalidRequest`) the connection used was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The TCP connect failed (refused, unreachable, ...).
    #[error("connect failed: {0}")]
    Connect(io::ErrorKind),
    /// The TCP connect did not finish within `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Recent connects failed; no new connect is tried until the backoff delay has passed.
    #[error("upstream backing off after connect failures")]
    BackingOff,
    /// `max_conns` connections are open and busy; the request was not queued.
    #[error("connection pool exhausted")]
    PoolExhausted,
    /// The deadline passed before the response was complete; the connection was closed.
    #[error("deadline passed before the response was complete")]
    Timeout,
    /// The peer closed or reset the connection before the response was complete
    /// (includes half-written responses).
    #[error("connection closed or reset before the response was complete")]
    Reset,
    /// Another I/O error on an established connection.
    #[error("i/o error: {0}")]
    Io(io::ErrorKind),
    /// The response is not valid HTTP/1.1 (bad status line, framing, chunk sizes ...).
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The response head or body exceeds the configured limit.
    #[error("response too large: {0}")]
    TooLarge(&'static str),
    /// The request itself cannot be sent (CR/LF in a header, bad method ...).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
}

impl ClientError {
    /// Whether sending the same request again (later, or on a fresh connection) may succeed.
    /// False when the deadline is gone or the request/response itself is at fault.
    pub fn retry_may_help(&self) -> bool {
        match self {
            Self::Connect(_)
            | Self::ConnectTimeout
            | Self::BackingOff
            | Self::PoolExhausted
            | Self::Reset
            | Self::Io(_) => true,
            Self::Timeout | Self::Malformed(_) | Self::TooLarge(_) | Self::InvalidRequest(_) => {
                false
            }
        }
    }

    /// Short stable label for metrics (`error="..."`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::ConnectTimeout => "connect_timeout",
            Self::BackingOff => "backing_off",
            Self::PoolExhausted => "pool_exhausted",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Io(_) => "io",
            Self::Malformed(_) => "malformed",
            Self::TooLarge(_) => "too_large",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }

    /// Classify an I/O error on an established connection.
    pub(crate) fn from_io(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Self::Reset,
            kind => Self::Io(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_advice_and_labels() {
        assert!(ClientError::Reset.retry_may_help());
        assert!(ClientError::PoolExhausted.retry_may_help());
        assert!(!ClientError::Timeout.retry_may_help());
        assert!(!ClientError::Malformed("x").retry_may_help());
        assert_eq!(
            ClientError::from_io(&io::Error::from(io::ErrorKind::ConnectionReset)),
            ClientError::Reset
        );
        assert_eq!(
            ClientError::Connect(io::ErrorKind::ConnectionRefused).label(),
            "connect"
        );
    }
}
