//! OpenRTB 2.6 (and 2.5) on the wire: the request and response types, parsing with sonic-rs,
//! writing into a reused buffer, and validation of OpenRTB rules with path-qualified messages.
//!
//! Owns: the JSON shape of OpenRTB objects, lossless round trips (`ext` and unknown members are
//! kept as raw JSON text), the No-Bid and Loss Reason code lists.
//! Must not know: auctions, campaigns, pricing decisions, HTTP or any I/O.
//!
//! Why our own types rather than `iab-specs` or `openrtb26`: see `EVALUATION.md` beside this file.

mod codes;
mod depth;
mod error;
pub(crate) mod fast;
pub(crate) mod field;
pub(crate) mod object;
mod raw;
mod request;
mod response;
mod validate;
mod validate_response;

pub use codes::{loss, nbr};
pub use depth::NESTING_DEPTH_MAX;
pub use error::{RequestError, ResponseError};
pub use object::Present;
pub use raw::{RawJson, RawJsonError};
pub use request::{
    App, Audio, Banner, BidRequest, Deal, Device, Format, Geo, Imp, Native, Pmp, Publisher, Regs,
    Site, Source, User, Video,
};
pub use response::{Bid, BidResponse, SeatBid};
pub use validate::{ValidationLimits, validate_bid_request};
pub use validate_response::{RESPONSE_BID_COUNT_MAX, validate_bid_response};

use serde::de::DeserializeSeed;

use field::{InPlaceSeed, JsonField};
use raw::first_line;

/// Parses a bid request body. Fails, with a path-qualified message, on invalid UTF-8, nesting
/// deeper than [`NESTING_DEPTH_MAX`], invalid JSON, wrong member types, duplicate members and
/// missing `id`/`imp`/`imp[].id`/`deals[].id`. Does not check OpenRTB rules: call
/// [`validate_bid_request`] next.
pub fn parse_bid_request(body: &[u8]) -> Result<BidRequest, RequestError> {
    parse_document(body, "request").map_err(RequestError::new)
}

/// [`parse_bid_request`] into a heap allocation, built where it lies: a server that keeps the
/// request across awaits moves a pointer, not the ~2 KB request, from step to step.
pub fn parse_bid_request_boxed(body: &[u8]) -> Result<Box<BidRequest>, RequestError> {
    let mut request = Box::<BidRequest>::default();
    parse_document_into(body, "request", &mut *request).map_err(RequestError::new)?;
    Ok(request)
}

/// [`parse_bid_request_boxed`] into a request parsed before (kept in a pool): it is reset first,
/// keeping its buffers (the `imp` list's, the string lists'), so a steady stream of requests
/// parses without allocating. On error `request` holds an unspecified partial value.
pub fn parse_bid_request_reusing(
    body: &[u8],
    request: &mut BidRequest,
) -> Result<(), RequestError> {
    request.reset();
    parse_document_into(body, "request", request).map_err(RequestError::new)
}

/// Parses a bidder's bid response body; same checks as [`parse_bid_request`], messages start with
/// `response`.
pub fn parse_bid_response(body: &[u8]) -> Result<BidResponse, ResponseError> {
    parse_document(body, "response").map_err(|message| ResponseError { message })
}

/// Appends `req` as JSON to `out` (existing content is kept; clear it first to reuse the buffer).
pub fn write_bid_request(req: &BidRequest, out: &mut Vec<u8>) {
    req.write_json(out);
}

/// Appends `resp` as JSON to `out` (existing content is kept; clear it first to reuse the buffer).
pub fn write_bid_response(resp: &BidResponse, out: &mut Vec<u8>) {
    resp.write_json(out);
}

/// Reads a document into a fresh value (see [`parse_document_into`]).
fn parse_document<T>(body: &[u8], root: &str) -> Result<T, String>
where
    T: JsonField + for<'de> serde::Deserialize<'de>,
{
    let mut value = T::default();
    parse_document_into(body, root, &mut value)?;
    Ok(value)
}

/// [`parse_document`] into `place`, which holds `T::default()`. After the UTF-8 check, the fast
/// reader (`fast.rs`, which bounds nesting itself) runs first; if it gives up for any reason,
/// `place` is reset and the serde path decides: the nesting check, one sonic-rs pass without
/// path tracking, then, only on failure, a second pass with `serde_path_to_error` finds where it
/// failed.
fn parse_document_into<T>(body: &[u8], root: &str, place: &mut T) -> Result<(), String>
where
    T: JsonField + for<'de> serde::Deserialize<'de>,
{
    let text = utf8_text(body, root)?;
    if read_fast_into(text, place).is_ok() {
        return Ok(());
    }
    place.reset();
    check_depth(text, root)?;
    match read_serde_into(text, place) {
        Ok(()) => Ok(()),
        Err(()) => Err(describe_parse_error::<T>(text, root)),
    }
}

/// The body as text, once it is valid UTF-8. `simdutf8` validates with SIMD (the standard
/// library's check was ~2 instructions per byte, 3 % of a no-bid request's instructions); its
/// `compat` errors carry the same offset.
fn utf8_text<'a>(body: &'a [u8], root: &str) -> Result<&'a str, String> {
    simdutf8::compat::from_utf8(body)
        .map_err(|e| format!("{root} body is not valid UTF-8 at byte {}", e.valid_up_to()))
}

/// Fails unless `text` nests at most [`NESTING_DEPTH_MAX`] deep: sonic-rs recurses without a
/// limit, so the serde path needs this before it starts (the fast reader counts for itself).
fn check_depth(text: &str, root: &str) -> Result<(), String> {
    depth::check_nesting(text.as_bytes()).map_err(|reason| format!("{root} body has {reason}"))
}

/// The fast reader over the whole document, trailing whitespace included.
fn read_fast_into<T: JsonField>(text: &str, place: &mut T) -> fast::Fast {
    let mut reader = fast::FastReader::new(text);
    T::read_fast(&mut reader, place)?;
    reader.finish()
}

/// The serde path over the whole document, without error details; the caller has run
/// [`check_depth`].
fn read_serde_into<T: JsonField>(text: &str, place: &mut T) -> Result<(), ()> {
    let mut deserializer = sonic_rs::Deserializer::from_str(text);
    let parsed = InPlaceSeed(place).deserialize(&mut deserializer);
    parsed.and_then(|()| deserializer.end()).map_err(|_| ())
}

/// Each parse path alone, for the equivalence tests and benchmarks (not an API). Both run the
/// UTF-8 check first; each then runs as [`parse_document_into`] runs it: the fast reader without
/// a nesting check (it bounds nesting itself), the serde path after [`check_depth`]. `None` is
/// "rejected".
#[doc(hidden)]
pub mod paths {
    use super::{
        BidRequest, BidResponse, JsonField, check_depth, read_fast_into, read_serde_into, utf8_text,
    };

    fn run<T: JsonField>(body: &[u8], read: fn(&str, &mut T) -> Result<(), ()>) -> Option<T> {
        let text = utf8_text(body, "document").ok()?;
        let mut value = T::default();
        read(text, &mut value).ok()?;
        Some(value)
    }

    fn fast<T: JsonField>(text: &str, place: &mut T) -> Result<(), ()> {
        read_fast_into(text, place).map_err(|_| ())
    }

    fn serde<T: JsonField>(text: &str, place: &mut T) -> Result<(), ()> {
        check_depth(text, "document").map_err(|_| ())?;
        read_serde_into(text, place)
    }

    /// The fast reader alone.
    pub fn fast_request(body: &[u8]) -> Option<BidRequest> {
        run(body, fast)
    }

    /// The serde path alone.
    pub fn serde_request(body: &[u8]) -> Option<BidRequest> {
        run(body, serde)
    }

    /// The fast reader alone.
    pub fn fast_response(body: &[u8]) -> Option<BidResponse> {
        run(body, fast)
    }

    /// The serde path alone.
    pub fn serde_response(body: &[u8]) -> Option<BidResponse> {
        run(body, serde)
    }

    /// The fast reader into a reused value (reset to its default first), for benchmarks.
    pub fn fast_request_into(body: &[u8], place: &mut BidRequest) -> bool {
        into(body, place, fast)
    }

    /// The serde path into a reused value (reset to its default first), for benchmarks.
    pub fn serde_request_into(body: &[u8], place: &mut BidRequest) -> bool {
        into(body, place, serde)
    }

    /// The fast reader into a reused value (reset to its default first), for benchmarks.
    pub fn fast_response_into(body: &[u8], place: &mut BidResponse) -> bool {
        into(body, place, fast)
    }

    /// The serde path into a reused value (reset to its default first), for benchmarks.
    pub fn serde_response_into(body: &[u8], place: &mut BidResponse) -> bool {
        into(body, place, serde)
    }

    fn into<T: JsonField>(
        body: &[u8],
        place: &mut T,
        read: fn(&str, &mut T) -> Result<(), ()>,
    ) -> bool {
        *place = T::default();
        utf8_text(body, "document").is_ok_and(|text| read(text, place).is_ok())
    }
}

fn describe_parse_error<T>(text: &str, root: &str) -> String
where
    T: for<'de> serde::Deserialize<'de>,
{
    let mut deserializer = sonic_rs::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(error) => message_for(&format_path(root, error.path()), error.inner(), root),
        Ok(_) => match deserializer.end() {
            Err(error) => message_for(root, &error, root),
            Ok(()) => format!("{root} body could not be parsed"),
        },
    }
}

/// Syntax errors keep sonic-rs' description with line and column; type errors become
/// `<path> <phrase>`; phrases starting with `.` name a member of the object at `<path>`.
fn message_for(location: &str, error: &sonic_rs::Error, root: &str) -> String {
    let described = first_line(&error.to_string());
    if error.classify() != sonic_rs::error::Category::TypeUnmatched {
        return format!("{root} body is not valid JSON: {described}");
    }
    let phrase = match described.rfind(" at line ") {
        Some(position) => &described[..position],
        None => &described,
    };
    if phrase.starts_with('.') {
        format!("{location}{phrase}")
    } else {
        format!("{location} {phrase}")
    }
}

fn format_path(root: &str, path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut location = String::from(root);
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                location.push('[');
                location.push_str(itoa::Buffer::new().format(*index));
                location.push(']');
            }
            Segment::Map { key } => {
                location.push('.');
                location.push_str(key);
            }
            Segment::Enum { variant } => {
                location.push('.');
                location.push_str(variant);
            }
            Segment::Unknown => location.push_str(".?"),
        }
    }
    location
}
