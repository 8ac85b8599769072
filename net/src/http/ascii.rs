//! Byte checks on the request and response path, eight bytes at a time.
//!
//! Owns exact, allocation-free replacements for byte-by-byte loops that run on every request:
//! ASCII case-insensitive comparison of header names, the CR/LF/NUL scan of response header
//! values and the ASCII check before borrowing a request's path as `str`. Each gives the same
//! answer as the obvious byte loop for every input (checked against it in the tests); words
//! are read with `u64::from_le_bytes`, and a tail shorter than a word is read as the last eight
//! bytes of the slice (overlapping the previous word) so there is no per-byte tail loop.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
const WORD: usize = 8;

/// The eight bytes of `bytes` at `at` (`at + 8 <= bytes.len()`).
#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; WORD];
    word.copy_from_slice(&bytes[at..at + WORD]);
    u64::from_le_bytes(word)
}

/// Whether `check` holds for the word at every offset covering a slice of `len >= 8` bytes:
/// every whole word, then the last eight bytes when a tail remains.
#[inline]
fn every_word(len: usize, mut check: impl FnMut(usize) -> bool) -> bool {
    let mut at = 0;
    while at + WORD <= len {
        if !check(at) {
            return false;
        }
        at += WORD;
    }
    at == len || check(len - WORD)
}

/// Whether any byte of `word` is zero (the classic `(x - 0x01..) & !x & 0x80..` test: exact for
/// this question, though the bytes it flags above a zero byte may be wrong).
#[inline]
fn any_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGH_BITS != 0
}

/// `word` with the ASCII capitals of each byte lowered (bytes >= 0x80 unchanged).
#[inline]
fn lowercase_word(word: u64) -> u64 {
    let ascii = !word & HIGH_BITS;
    let low7 = word & !HIGH_BITS;
    // High bit of each byte: low7 >= b'A', and low7 > b'Z' (no carries: low7 <= 0x7f).
    let from_a = low7 + 0x3f * ONES;
    let past_z = low7 + 0x25 * ONES;
    let capital = from_a & !past_z & ascii;
    word | (capital >> 2)
}

/// ASCII case-insensitive equality, like `<[u8]>::eq_ignore_ascii_case`.
#[inline]
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() < WORD {
        return a.eq_ignore_ascii_case(b);
    }
    every_word(a.len(), |at| {
        lowercase_word(word_at(a, at)) == lowercase_word(word_at(b, at))
    })
}

/// Whether `bytes` contains CR, LF or NUL (which would split or end a header line).
#[inline]
pub(crate) fn has_cr_lf_or_nul(bytes: &[u8]) -> bool {
    if bytes.len() < WORD {
        return bytes.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
    }
    !every_word(bytes.len(), |at| {
        let word = word_at(bytes, at);
        !(any_zero_byte(word)
            | any_zero_byte(word ^ (ONES * 0x0d))
            | any_zero_byte(word ^ (ONES * 0x0a)))
    })
}

/// Whether every byte of `bytes` is ASCII, like `<[u8]>::is_ascii`.
#[inline]
pub(crate) fn is_ascii(bytes: &[u8]) -> bool {
    if bytes.len() < WORD {
        return bytes.iter().all(u8::is_ascii);
    }
    every_word(bytes.len(), |at| word_at(bytes, at) & HIGH_BITS == 0)
}

/// `bytes` as `str` when it is ASCII (the usual request target), else through the full UTF-8
/// check; the result is the same as `std::str::from_utf8`.
#[inline]
pub(crate) fn to_str(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if is_ascii(bytes) {
        // SAFETY: every byte is ASCII, and ASCII is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes that exercise every branch: case pairs, the bytes around 'A'/'Z'/'a'/'z' and the
    /// ones `|0x20` would confuse, CR/LF/NUL, 0x01, and non-ASCII.
    const INTERESTING: &[u8] = b"aAzZ@[`{^~-_09\r\n\x00\x01\x0c\x2d\x7f\x80\xc1\xda\xff ";

    fn interesting_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![prop::sample::select(INTERESTING), any::<u8>()],
            0..max,
        )
    }

    #[test]
    fn lowercase_word_matches_bytewise_for_every_byte() {
        for b in 0u8..=255 {
            for position in 0..WORD {
                let mut bytes = [b'x'; WORD];
                bytes[position] = b;
                let expected = u64::from_le_bytes(bytes.map(|b| b.to_ascii_lowercase()));
                assert_eq!(
                    lowercase_word(u64::from_le_bytes(bytes)),
                    expected,
                    "{b:#04x}"
                );
            }
        }
    }

    #[test]
    fn every_byte_pair_compares_like_core() {
        for a in 0u8..=255 {
            for b in 0u8..=255 {
                let (x, y) = (
                    [b'k', b'-', a, b'Q', b'z', b'0', b'~', b'^', a],
                    [b'K', b'-', b, b'q', b'Z', b'0', b'~', b'^', b],
                );
                assert_eq!(
                    eq_ignore_case(&x, &y),
                    x.eq_ignore_ascii_case(&y),
                    "{a:#04x} {b:#04x}"
                );
            }
        }
    }

    #[test]
    fn header_names() {
        assert!(eq_ignore_case(b"Content-Type", b"content-type"));
        assert!(eq_ignore_case(b"TRANSFER-ENCODING", b"transfer-encoding"));
        assert!(!eq_ignore_case(b"content-typ~", b"content-typ^"));
        assert!(!eq_ignore_case(b"content-type", b"content-length"));
        assert!(has_cr_lf_or_nul(b"no_eligible_campaign\r"));
        assert!(!has_cr_lf_or_nul(b"no_eligible_campaign"));
        assert!(is_ascii(b"/openrtb2/auction"));
        assert!(!is_ascii("/caf\u{e9}/openrtb2".as_bytes()));
    }

    proptest! {
        #[test]
        fn same_answers_as_the_byte_loops(a in interesting_bytes(40), b in interesting_bytes(40)) {
            prop_assert_eq!(eq_ignore_case(&a, &b), a.eq_ignore_ascii_case(&b));
            let lowered: Vec<u8> = a.iter().map(|b| if b.is_ascii_lowercase() { b.to_ascii_uppercase() } else { *b }).collect();
            prop_assert!(eq_ignore_case(&a, &lowered));
            prop_assert_eq!(
                has_cr_lf_or_nul(&a),
                a.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
            );
            prop_assert_eq!(is_ascii(&a), a.is_ascii());
            prop_assert_eq!(to_str(&a).ok(), std::str::from_utf8(&a).ok());
        }
    }
}
