//! The fast path of OpenRTB parsing: a hand-written, strict, single-pass JSON reader that fills
//! our types directly (`JsonField::read_fast`, generated per object by `json_object!`).
//!
//! Why hand-written: on the server's no-bid path the serde route cost ~1.7 us per 289-byte
//! request while sonic-rs' own traversal of the bytes was ~0.45 us; the rest was serde visitor
//! dispatch, key matching through `KeySeed`, one allocation per string and `Option`/`Vec`
//! wrappers. sonic-rs has no public pull tokenizer to drive from our types, so this module reads
//! the bytes itself (see `EVALUATION.md`, "Fast reader").
//!
//! Contract (enforced by `net/tests/openrtb_fast_reader.rs`): when this reader accepts a document,
//! the serde path accepts it too and builds an equal value; whatever the serde path rejects, this
//! reader rejects. It may reject valid but unusual input (exponents, long numbers, `-0`, escaped
//! keys): the caller then runs the serde path, which also writes the error
//! message. [`Reject`] therefore carries no detail.
//!
//! Assumes valid UTF-8 (checked first by the caller). Nesting is not checked beforehand: the
//! reader counts the objects and arrays it is inside (modelled, skipped or kept raw alike) and
//! rejects on entering one deeper than [`NESTING_DEPTH_MAX`], the limit `depth::check_nesting`
//! puts on the serde path. That count bounds the recursion of [`FastReader::skip_value`], and
//! keeps the contract: a document this reader accepts is valid JSON, so its bracket depth, which
//! `check_nesting` measures, is the depth counted here.
//! Knows JSON syntax and the number/string conventions of sonic-rs, not OpenRTB.

use super::depth::NESTING_DEPTH_MAX;
use super::raw::RawJson;

/// The fast reader gave up; the serde path decides (and describes any error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reject;

/// Result of reading one value in place.
pub(crate) type Fast = Result<(), Reject>;

/// A cursor over one JSON document.
pub(crate) struct FastReader<'a> {
    text: &'a str,
    pos: usize,
    /// Objects and arrays open at `pos`; one more than [`NESTING_DEPTH_MAX`] is a `Reject`.
    depth: usize,
}

/// Where [`FastReader::string`] puts a string value: a `String` or a `CompactString`.
pub(crate) trait StringSink {
    /// Takes a copy of text that had no escapes.
    fn set_plain(&mut self, text: &str);
    /// Takes text decoded from escapes.
    fn set_decoded(&mut self, text: String);
}

impl StringSink for String {
    fn set_plain(&mut self, text: &str) {
        *self = String::from(text);
    }
    fn set_decoded(&mut self, text: String) {
        *self = text;
    }
}

impl StringSink for compact_str::CompactString {
    #[inline]
    fn set_plain(&mut self, text: &str) {
        *self = compact_str::CompactString::new(text);
    }
    fn set_decoded(&mut self, text: String) {
        *self = text.into();
    }
}

/// Bytes that end the plain run of a string: quote, backslash, control characters.
const STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Powers of ten exactly representable as `f64` (Clinger's fast path).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Most significant digits a float may have here: below 2^53, so with at most 22 fraction digits
/// `digits / 10^k` is one correctly rounded division, the value any correct parser gives.
const FLOAT_DIGITS_MAX: u32 = 15;

/// Most digits an integer may have here (fits `u64` without overflow checks).
const INTEGER_DIGITS_MAX: usize = 19;

impl<'a> FastReader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        FastReader {
            text,
            pos: 0,
            depth: 0,
        }
    }

    /// Only whitespace remains.
    pub(crate) fn finish(mut self) -> Fast {
        match self.peek() {
            Err(Reject) => Ok(()),
            Ok(_) => Err(Reject),
        }
    }

    /// Skips whitespace and returns the next byte, not consumed; `Reject` at the end.
    #[inline(always)]
    fn peek(&mut self) -> Result<u8, Reject> {
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(self.pos) {
            if !matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
                return Ok(byte);
            }
            self.pos += 1;
        }
        Err(Reject)
    }

    /// Skips whitespace and consumes `byte`.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Fast {
        if self.peek()? != byte {
            return Err(Reject);
        }
        self.pos += 1;
        Ok(())
    }

    /// Consumes `word` (`true`, `false`, `null`) at the current position.
    fn literal(&mut self, word: &[u8]) -> Fast {
        if !self.text.as_bytes()[self.pos..].starts_with(word) {
            return Err(Reject);
        }
        self.pos += word.len();
        Ok(())
    }

    /// True (and consumed) when the next value is `null`.
    #[inline]
    pub(crate) fn null(&mut self) -> Result<bool, Reject> {
        if self.peek()? != b'n' {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    // ---------- objects and arrays ----------

    /// Consumes `{`; true when a member follows, false after an empty `{}`.
    #[inline]
    pub(crate) fn object_start(&mut self) -> Result<bool, Reject> {
        self.eat(b'{')?;
        self.enter()?;
        self.close_if(b'}')
    }

    /// Consumes a member key and its colon. Keys with escapes are rejected (the serde path
    /// unescapes them).
    #[inline(always)]
    pub(crate) fn key(&mut self) -> Result<&'a str, Reject> {
        self.eat(b'"')?;
        let start = self.pos;
        let stop = self.plain_run(start);
        if self.text.as_bytes().get(stop) != Some(&b'"') {
            return Err(Reject);
        }
        self.pos = stop + 1;
        self.eat(b':')?;
        Ok(self.between_quotes(start, stop))
    }

    /// After a member: true at `,` (a key must follow), false at `}`.
    #[inline(always)]
    pub(crate) fn object_next(&mut self) -> Result<bool, Reject> {
        self.next_or_close(b'}')
    }

    /// Consumes `[`; true when an element follows, false after an empty `[]`.
    #[inline]
    pub(crate) fn array_start(&mut self) -> Result<bool, Reject> {
        self.eat(b'[')?;
        self.enter()?;
        self.close_if(b']')
    }

    /// After an element: true at `,` (an element must follow), false at `]`.
    #[inline]
    pub(crate) fn array_next(&mut self) -> Result<bool, Reject> {
        self.next_or_close(b']')
    }

    /// Counts the object or array just opened; `Reject` when that nests it deeper than
    /// [`NESTING_DEPTH_MAX`] (the serde path's pre-check then names the byte).
    #[inline(always)]
    fn enter(&mut self) -> Fast {
        self.depth += 1;
        if self.depth > NESTING_DEPTH_MAX {
            return too_deep();
        }
        Ok(())
    }

    /// Consumes `close` if it is next (the object or array just opened is empty).
    fn close_if(&mut self, close: u8) -> Result<bool, Reject> {
        if self.peek()? == close {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    fn next_or_close(&mut self, close: u8) -> Result<bool, Reject> {
        let byte = self.peek()?;
        self.pos += 1;
        match byte {
            b',' => Ok(true),
            _ if byte == close => {
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Reject),
        }
    }

    // ---------- strings ----------

    /// Offset of the first quote, backslash or control byte at or after `from` (or the length).
    /// Eight bytes at a time for the first sixteen (most keys and values are short), then
    /// `memchr2` for long runs; bytewise in the last few bytes of the document.
    #[inline]
    fn plain_run(&self, from: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut at = from;
        while let Some(chunk) = bytes.get(at..at + 8) {
            let stops = stop_bytes(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            if stops != 0 {
                return at + (stops.trailing_zeros() / 8) as usize;
            }
            at += 8;
            if at - from >= 16 {
                return long_run(bytes, at);
            }
        }
        let tail = &bytes[at..];
        at + tail
            .iter()
            .position(|&byte| STRING_STOP[byte as usize])
            .unwrap_or(tail.len())
    }

    /// The text from `start` (just after an opening quote) to `stop` (a closing quote), without
    /// `str` slicing's two char-boundary checks (two for every key and string value).
    #[inline(always)]
    fn between_quotes(&self, start: usize, stop: usize) -> &'a str {
        let bytes = &self.text.as_bytes()[start..stop];
        // SAFETY: `text` is UTF-8, and `start` and `stop` are each next to an ASCII quote (the
        // byte before `start`, the byte at `stop`), so both are char boundaries and the bytes
        // between them are UTF-8 too.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// Reads a string value into `out` (unescaped: a copy of the exact length, inline in a
    /// `CompactString` up to 24 bytes).
    pub(crate) fn string(&mut self, out: &mut impl StringSink) -> Fast {
        self.eat(b'"')?;
        let start = self.pos;
        let stop = self.plain_run(start);
        match self.text.as_bytes().get(stop) {
            Some(b'"') => {
                self.pos = stop + 1;
                out.set_plain(self.between_quotes(start, stop));
                Ok(())
            }
            Some(b'\\') => self.escaped_string(start, stop, out),
            _ => Err(Reject),
        }
    }

    /// The rest of a string whose first escape is at `stop`.
    #[cold]
    fn escaped_string(&mut self, start: usize, mut stop: usize, out: &mut impl StringSink) -> Fast {
        let mut decoded = String::with_capacity(stop - start + 16);
        decoded.push_str(&self.text[start..stop]);
        loop {
            let resume = self.unescape(stop, &mut decoded)?;
            stop = self.plain_run(resume);
            decoded.push_str(&self.text[resume..stop]);
            match self.text.as_bytes().get(stop) {
                Some(b'"') => {
                    self.pos = stop + 1;
                    out.set_decoded(decoded);
                    return Ok(());
                }
                Some(b'\\') => {}
                _ => return Err(Reject),
            }
        }
    }

    /// Decodes the escape whose backslash is at `at`; returns the offset after it.
    fn unescape(&self, at: usize, out: &mut String) -> Result<usize, Reject> {
        let bytes = self.text.as_bytes();
        let (decoded, length) = match bytes.get(at + 1).ok_or(Reject)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => unicode_escape(bytes, at)?,
            _ => return Err(Reject),
        };
        out.push(decoded);
        Ok(at + length)
    }

    /// Skips a string whose opening quote is consumed, validating escapes (`\u` any 4 hex digits).
    fn skip_string(&mut self) -> Fast {
        let bytes = self.text.as_bytes();
        let mut at = self.plain_run(self.pos);
        loop {
            match bytes.get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    at += match bytes.get(at + 1).ok_or(Reject)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' => hex4(bytes, at + 2).map(|_| 6)?,
                        _ => return Err(Reject),
                    };
                    at = self.plain_run(at);
                }
                _ => return Err(Reject),
            }
        }
    }

    // ---------- numbers ----------

    /// Reads an integer (no fraction, no exponent, at most 19 digits, not `-0`, which sonic-rs
    /// reads as a float): its sign and magnitude.
    fn integer(&mut self) -> Result<(bool, u64), Reject> {
        let bytes = self.text.as_bytes();
        let negative = self.peek()? == b'-';
        let start = self.pos + usize::from(negative);
        let (magnitude, end) = digits(bytes, start, INTEGER_DIGITS_MAX)?;
        if matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) || (negative && magnitude == 0) {
            return Err(Reject);
        }
        self.pos = end;
        Ok((negative, magnitude))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Reject> {
        match self.integer()? {
            (false, magnitude) => u32::try_from(magnitude).map_err(|_| Reject),
            (true, _) => Err(Reject),
        }
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Reject> {
        match self.integer()? {
            (false, magnitude) => Ok(magnitude),
            (true, _) => Err(Reject),
        }
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Reject> {
        let (negative, magnitude) = self.integer()?;
        let magnitude = i64::try_from(magnitude).map_err(|_| Reject)?;
        i32::try_from(if negative { -magnitude } else { magnitude }).map_err(|_| Reject)
    }

    /// Reads a number without exponent and with at most 15 significant digits and 22 fraction
    /// digits: exactly the value `str::parse::<f64>` and sonic-rs give. Negative zero is rejected
    /// (sonic-rs reads `-0.0` as `0.0`).
    pub(crate) fn f64(&mut self) -> Result<f64, Reject> {
        let bytes = self.text.as_bytes();
        let negative = self.peek()? == b'-';
        let start = self.pos + usize::from(negative);
        let (mut mantissa, mut end) = digits(bytes, start, INTEGER_DIGITS_MAX)?;
        let mut fraction_digits = 0;
        if bytes.get(end) == Some(&b'.') {
            let (with_fraction, fraction_end) = fraction(bytes, end + 1, mantissa)?;
            mantissa = with_fraction;
            fraction_digits = fraction_end - end - 1;
            end = fraction_end;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E' | b'.' | b'0'..=b'9'))
            || significant_digits(mantissa) > FLOAT_DIGITS_MAX
            || fraction_digits >= POW10.len()
            || (negative && mantissa == 0)
        {
            return Err(Reject);
        }
        self.pos = end;
        let magnitude = mantissa as f64 / POW10[fraction_digits];
        Ok(if negative { -magnitude } else { magnitude })
    }

    /// Skips any JSON number, validating its grammar.
    fn skip_number(&mut self) -> Fast {
        let bytes = self.text.as_bytes();
        let mut at = self.pos + usize::from(bytes[self.pos] == b'-');
        at = match bytes.get(at) {
            Some(b'0') => at + 1,
            Some(b'1'..=b'9') => digit_run_end(bytes, at),
            _ => return Err(Reject),
        };
        if bytes.get(at) == Some(&b'.') {
            at = nonempty_digit_run(bytes, at + 1)?;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) {
            at += 1;
            if matches!(bytes.get(at), Some(b'+' | b'-')) {
                at += 1;
            }
            at = nonempty_digit_run(bytes, at)?;
        }
        self.pos = at;
        Ok(())
    }

    // ---------- raw values ----------

    /// Reads any value, validated, as its exact text (no surrounding whitespace, as sonic-rs'
    /// lazy values).
    pub(crate) fn raw(&mut self) -> Result<RawJson, Reject> {
        self.peek()?;
        let start = self.pos;
        self.skip_value()?;
        Ok(RawJson::from_checked(&self.text[start..self.pos]))
    }

    /// Skips one value, validating it as strict JSON. Recurses once per nesting level, at most
    /// [`NESTING_DEPTH_MAX`] deep (`enter`).
    pub(crate) fn skip_value(&mut self) -> Fast {
        match self.peek()? {
            b'{' => self.skip_object(),
            b'[' => self.skip_array(),
            b'"' => {
                self.pos += 1;
                self.skip_string()
            }
            b'-' | b'0'..=b'9' => self.skip_number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(Reject),
        }
    }

    fn skip_object(&mut self) -> Fast {
        let mut more = self.object_start()?;
        while more {
            self.eat(b'"')?;
            self.skip_string()?;
            self.eat(b':')?;
            self.skip_value()?;
            more = self.object_next()?;
        }
        Ok(())
    }

    fn skip_array(&mut self) -> Fast {
        let mut more = self.array_start()?;
        while more {
            self.skip_value()?;
            more = self.array_next()?;
        }
        Ok(())
    }
}

/// The `Reject` of [`FastReader::enter`], in a cold function so the compiler treats the branch as
/// unlikely: with a plain `return Err(Reject)` there, every generated `read_fast` (which inlines
/// `enter`) compiled worse, and the no-bid parse took ~8,090 instructions instead of ~7,520
/// (callgrind; ~7,880 with the pre-scan).
#[cold]
fn too_deep() -> Fast {
    Err(Reject)
}

/// `plain_run` past its first sixteen bytes.
#[inline(never)]
fn long_run(bytes: &[u8], from: usize) -> usize {
    let found = memchr::memchr2(b'"', b'\\', &bytes[from..]).map_or(bytes.len(), |at| from + at);
    // Control bytes are rare; one vectorisable pass over the run finds the first.
    match bytes[from..found].iter().position(|&byte| byte < 0x20) {
        Some(at) => from + at,
        None => found,
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` (little endian) that is a quote, a backslash or below
/// 0x20. Borrows can flag bytes after a true stop, never before, so the lowest flag is exact.
#[inline]
fn stop_bytes(word: u64) -> u64 {
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    zero_bytes(word ^ (ONES * u64::from(b'"')))
        | zero_bytes(word ^ (ONES * u64::from(b'\\')))
        | below_space
}

/// The character of the `\u` escape at `at` (a surrogate pair takes two escapes) and the length
/// of its text. Lone surrogates are rejected, as sonic-rs rejects them.
fn unicode_escape(bytes: &[u8], at: usize) -> Result<(char, usize), Reject> {
    let code = hex4(bytes, at + 2)?;
    if !(0xD800..0xDC00).contains(&code) {
        return Ok((char::from_u32(code).ok_or(Reject)?, 6)); // lone low surrogates fail here
    }
    if bytes.get(at + 6..at + 8) != Some(b"\\u") {
        return Err(Reject);
    }
    let low = hex4(bytes, at + 8)?;
    if !(0xDC00..0xE000).contains(&low) {
        return Err(Reject);
    }
    let code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    Ok((char::from_u32(code).ok_or(Reject)?, 12))
}

/// The four hex digits at `at` as a number.
fn hex4(bytes: &[u8], at: usize) -> Result<u32, Reject> {
    let digits = bytes.get(at..at + 4).ok_or(Reject)?;
    digits.iter().try_fold(0u32, |code, &byte| {
        let nibble = (byte as char).to_digit(16).ok_or(Reject)?;
        Ok(code << 4 | nibble)
    })
}

/// The integer part of a number at `at`: `0` or a run not starting with `0`, at most `max`
/// (at most 19) digits. Returns its value and end.
#[inline]
fn digits(bytes: &[u8], at: usize, max: usize) -> Result<(u64, usize), Reject> {
    let mut value = 0u64;
    let mut end = at;
    while let Some(&byte) = bytes.get(end) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if end - at == max {
            return Err(Reject);
        }
        value = value * 10 + u64::from(digit);
        end += 1;
    }
    if end == at || (end - at > 1 && bytes[at] == b'0') {
        return Err(Reject);
    }
    Ok((value, end))
}

/// Appends the fraction digits at `at` (at least one) to `mantissa`; returns it and their end.
fn fraction(bytes: &[u8], at: usize, mantissa: u64) -> Result<(u64, usize), Reject> {
    let end = nonempty_digit_run(bytes, at)?;
    if end - at > INTEGER_DIGITS_MAX {
        return Err(Reject);
    }
    let scale = 10u64.checked_pow((end - at) as u32).ok_or(Reject)?;
    let shifted = mantissa.checked_mul(scale).ok_or(Reject)?;
    shifted
        .checked_add(accumulate(0, &bytes[at..end]))
        .map(|value| (value, end))
        .ok_or(Reject)
}

fn accumulate(start: u64, digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(start, |value, &digit| value * 10 + u64::from(digit - b'0'))
}

fn significant_digits(mantissa: u64) -> u32 {
    mantissa.checked_ilog10().map_or(0, |log| log + 1)
}

fn digit_run_end(bytes: &[u8], at: usize) -> usize {
    at + bytes[at..]
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count()
}

fn nonempty_digit_run(bytes: &[u8], at: usize) -> Result<usize, Reject> {
    match digit_run_end(bytes, at) {
        end if end > at => Ok(end),
        _ => Err(Reject),
    }
}
