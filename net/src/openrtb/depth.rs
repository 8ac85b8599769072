//! Nesting-depth guard run before the serde path and `RawJson::parse`: sonic-rs skips raw values
//! (`RawJson`) recursively, so unbounded nesting would overflow the stack. The fast reader
//! (`fast.rs`) does not need it: it counts depth itself, to the same limit.
//! Knows JSON lexing only (strings, escapes, brackets).

/// Deepest array/object nesting accepted anywhere in a document. OpenRTB needs about 8; `ext`
/// objects get generous room.
pub const NESTING_DEPTH_MAX: usize = 64;

/// Fails with `nesting deeper than 64 levels at byte N` when brackets outside strings nest too deep.
/// Does not validate anything else (the parser does). Inside strings it jumps from quote or
/// backslash to the next with `memchr`, so the cost is mostly the bytes outside strings.
pub(crate) fn check_nesting(body: &[u8]) -> Result<(), String> {
    if opening_brackets(body) <= NESTING_DEPTH_MAX {
        return Ok(()); // cannot nest deeper than it has brackets, in strings or not
    }
    let mut depth = 0usize;
    let mut offset = 0usize;
    while offset < body.len() {
        match body[offset] {
            b'"' => offset = string_end(body, offset + 1),
            b'[' | b'{' => {
                depth += 1;
                if depth > NESTING_DEPTH_MAX {
                    return Err(format!(
                        "nesting deeper than {NESTING_DEPTH_MAX} levels at byte {offset}"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        offset += 1;
    }
    Ok(())
}

/// Count of `{` and `[` bytes anywhere in `body`: a bound on its nesting depth that a
/// vectorised count finds without lexing strings, so a typical request skips the exact scan.
/// Counted in blocks of 255 bytes with byte-wide sums (which the compiler vectorises; a
/// `memchr2` iterator costs a call per bracket), stopping once the bound is exceeded.
fn opening_brackets(body: &[u8]) -> usize {
    let mut count = 0;
    for block in body.chunks(255) {
        let in_block = block
            .iter()
            .fold(0u8, |n, &byte| n + u8::from(byte == b'{' || byte == b'['));
        count += usize::from(in_block);
        if count > NESTING_DEPTH_MAX {
            break;
        }
    }
    count
}

/// Offset of the quote closing the string whose content starts at `start` (or the body length
/// when the string is unterminated; the parser reports that).
fn string_end(body: &[u8], start: usize) -> usize {
    let mut offset = start;
    while let Some(found) = memchr::memchr2(b'"', b'\\', &body[offset..]) {
        let at = offset + found;
        if body[at] == b'"' {
            return at;
        }
        offset = at + 2; // skip the escaped byte
        if offset >= body.len() {
            break;
        }
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_at_the_limit_passes_and_one_more_fails() {
        let ok = format!(
            "{}{}",
            "[".repeat(NESTING_DEPTH_MAX),
            "]".repeat(NESTING_DEPTH_MAX)
        );
        assert_eq!(check_nesting(ok.as_bytes()), Ok(()));
        // Many brackets, most of them inside strings: the exact scan runs and passes.
        let quoted = format!("[{}]", r#""[{[{","#.repeat(40) + "0");
        assert!(opening_brackets(quoted.as_bytes()) > NESTING_DEPTH_MAX);
        assert_eq!(check_nesting(quoted.as_bytes()), Ok(()));
        let deep = "[".repeat(NESTING_DEPTH_MAX + 1);
        assert_eq!(
            check_nesting(deep.as_bytes()),
            Err(format!(
                "nesting deeper than 64 levels at byte {NESTING_DEPTH_MAX}"
            ))
        );
    }

    #[test]
    fn unterminated_strings_and_trailing_backslashes_end_the_scan() {
        for text in [r#"["abc"#, r#"["abc\"#, r#"["\"#, r#"""#, "\\", ""] {
            assert_eq!(check_nesting(text.as_bytes()), Ok(()), "{text}");
        }
        let escaped_quote_then_deep = format!(r#"["a\"{}"#, "[".repeat(100));
        assert_eq!(
            check_nesting(escaped_quote_then_deep.as_bytes()),
            Ok(()),
            "still inside the string"
        );
        let escaped_backslash_then_deep = format!(r#"["a\\"{}"#, "[".repeat(100));
        assert!(
            check_nesting(escaped_backslash_then_deep.as_bytes()).is_err(),
            "the string ended"
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(r#"{{"a":"{}\"[["}}"#, "[".repeat(500));
        assert_eq!(check_nesting(text.as_bytes()), Ok(()));
    }
}
