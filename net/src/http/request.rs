//! The request as a handler sees it: borrowed views into the connection's read buffer.
//!
//! Owns `Method`, `Request` and header lookup. Knows nothing of sockets or of parsing state.

/// A byte range inside the buffer a request was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `part` occupies inside `buf`; `part` must be a sub-slice of `buf`.
    pub(crate) fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
        debug_assert!(start + part.len() <= buf.len(), "part is not inside buf");
        Span {
            start,
            end: start + part.len(),
        }
    }

    /// Bytes of the span (empty if the span lies outside `buf`).
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Number of bytes covered.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// True when the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where one header field's name and value lie in the request buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderSpan {
    /// Field name.
    pub name: Span,
    /// Field value (as httparse delimits it).
    pub value: Span,
}

/// Request method. Case-sensitive per RFC 9110; anything unknown is `Other`
/// (its text is in [`Request::method_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Connect,
    Trace,
    Other,
}

impl Method {
    /// Classify a method token.
    pub fn from_bytes(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }

    /// Methods whose requests carry a body by definition, so they need framing (else 411).
    pub fn requires_length(&self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

/// Header fields of one request, looked up case-insensitively.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    buf: &'a [u8],
    spans: &'a [HeaderSpan],
}

impl<'a> Headers<'a> {
    pub(crate) fn new(buf: &'a [u8], spans: &'a [HeaderSpan]) -> Self {
        Self { buf, spans }
    }

    /// Value of the first field called `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let buf = self.buf;
        self.spans
            .iter()
            .find(|span| span.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|span| span.value.get(buf))
    }

    /// All fields in arrival order as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let buf = self.buf;
        self.spans
            .iter()
            .map(move |span| (span.name.get(buf), span.value.get(buf)))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when the request had no header field.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// One complete request, borrowed from the connection's read buffer for the time of the handler.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Method (see [`Request::method_str`] for `Other`).
    pub method: Method,
    /// Path part of the target (origin-form; "/" for an absolute-form target without path,
    /// "*" for `OPTIONS *`). Not percent-decoded.
    pub path: &'a str,
    /// Query string without the '?', "" when absent. Not decoded.
    pub query: &'a str,
    /// Body, de-chunked; empty when the request had none.
    pub body: &'a [u8],
    /// Whether the connection stays open after this request (client side view; the server may
    /// still close, e.g. on shutdown).
    pub keep_alive: bool,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    pub(crate) method_str: &'a str,
    pub(crate) headers: Headers<'a>,
    /// The first Content-Type value, found by the parser (every POST asks for it).
    pub(crate) content_type: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// Value of header `name` (ASCII case-insensitive), first occurrence.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.get(name)
    }

    /// The Content-Type header value.
    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.content_type
    }

    /// All header fields.
    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    /// The method token as sent.
    pub fn method_str(&self) -> &'a str {
        self.method_str
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_ascii_case_and_returns_first() {
        let buf = b"Content-TypeabcX-Twox-twoB";
        let spans = [
            HeaderSpan {
                name: Span { start: 0, end: 12 },
                value: Span { start: 12, end: 15 },
            },
            HeaderSpan {
                name: Span { start: 15, end: 20 },
                value: Span { start: 20, end: 20 },
            },
            HeaderSpan {
                name: Span { start: 20, end: 25 },
                value: Span { start: 25, end: 26 },
            },
        ];
        let headers = Headers::new(buf, &spans);
        assert_eq!(headers.get("content-type"), Some(&b"abc"[..]));
        assert_eq!(headers.get("X-TWO"), Some(&b""[..]));
        assert_eq!(headers.get("missing"), None);
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn span_outside_buffer_is_empty_not_panic() {
        let span = Span { start: 5, end: 50 };
        assert_eq!(span.get(b"short"), b"");
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert_eq!(Method::from_bytes(b"GET"), Method::Get);
        assert_eq!(Method::from_bytes(b"get"), Method::Other);
        assert!(Method::Post.requires_length());
        assert!(!Method::Get.requires_length());
    }
}
