//! Nesting-depth guard run before parsing: sonic-rs skips raw values (`RawJson`) recursively, so
//! unbounded nesting would overflow the stack. Knows JSON lexing only (strings, escapes, brackets).

/// Deepest array/object nesting accepted anywhere in a document. OpenRTB needs about 8; `ext`
/// objects get generous room.
pub const NESTING_DEPTH_MAX: usize = 64;

/// Fails with `nesting deeper than 64 levels at byte N` when brackets outside strings nest too deep.
/// Does not validate anything else (the parser does).
pub(crate) fn check_nesting(body: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &byte) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
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
    }
    Ok(())
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
        let deep = "[".repeat(NESTING_DEPTH_MAX + 1);
        assert_eq!(
            check_nesting(deep.as_bytes()),
            Err(format!(
                "nesting deeper than 64 levels at byte {NESTING_DEPTH_MAX}"
            ))
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(r#"{{"a":"{}\"[["}}"#, "[".repeat(500));
        assert_eq!(check_nesting(text.as_bytes()), Ok(()));
    }
}
