//! HTTP/1.1 server on monoio.
