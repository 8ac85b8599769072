//! Protocol errors of the HTTP layer and the status each one is answered with.
//!
//! Owns the mapping error -> status code -> short text reason. Knows nothing of sockets.

/// Why a request cannot be served. Every variant maps to one status code; the connection is
/// always closed after the error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Malformed request line, header or chunk framing (downstream client fault, retry won't help).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request was not fully received within `request_timeout_ms`.
    #[error("request timeout: request not fully received in time")]
    RequestTimeout,
    /// A POST/PUT arrived without Content-Length and without chunked Transfer-Encoding.
    #[error("length required: POST/PUT needs Content-Length or chunked Transfer-Encoding")]
    LengthRequired,
    /// Declared or chunked body larger than `body_bytes_max`.
    #[error("payload too large: {0}")]
    PayloadTooLarge(&'static str),
    /// Header section larger than `header_bytes_max` or more than `headers_count_max` fields.
    #[error("request header fields too large: {0}")]
    HeaderFieldsTooLarge(&'static str),
    /// A Transfer-Encoding other than `chunked`.
    #[error("not implemented: {0}")]
    NotImplemented(&'static str),
    /// HTTP/2 preface or an HTTP version other than 1.0/1.1.
    #[error("HTTP version not supported: only HTTP/1.0 and HTTP/1.1")]
    VersionNotSupported,
}

impl HttpError {
    /// The status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::RequestTimeout => 408,
            Self::LengthRequired => 411,
            Self::PayloadTooLarge(_) => 413,
            Self::HeaderFieldsTooLarge(_) => 431,
            Self::NotImplemented(_) => 501,
            Self::VersionNotSupported => 505,
        }
    }
}

/// Standard reason phrase of a status code ("" when the code is not a common one: the
/// reason phrase is optional in HTTP/1.1).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_status_and_has_a_reason() {
        let cases = [
            (HttpError::BadRequest("x"), 400),
            (HttpError::RequestTimeout, 408),
            (HttpError::LengthRequired, 411),
            (HttpError::PayloadTooLarge("x"), 413),
            (HttpError::HeaderFieldsTooLarge("x"), 431),
            (HttpError::NotImplemented("x"), 501),
            (HttpError::VersionNotSupported, 505),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status);
            assert!(!reason_phrase(status).is_empty());
            assert!(!error.to_string().is_empty());
        }
    }
}
