//! Argument tokenizer and number parsing for shell commands.
//!
//! Words are separated by spaces or tabs. A word that starts with `"` runs to the next `"` and
//! may contain spaces (the quotes are not part of the word); the closing quote must end the
//! word. Tokens borrow from the line: nothing is copied or allocated.

use core::fmt;

/// Most words one command line may have.
pub const MAX_ARGS: usize = 32;

/// Why a line could not be split into words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError {
    /// A `"` was opened and never closed.
    UnterminatedQuote,
    /// A closing `"` was directly followed by something other than a space.
    TextAfterQuote,
    /// More than [`MAX_ARGS`] words.
    TooMany,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::UnterminatedQuote => f.write_str("unterminated quote"),
            ArgError::TextAfterQuote => f.write_str("closing quote must be followed by a space"),
            ArgError::TooMany => write!(f, "too many arguments (max {MAX_ARGS})"),
        }
    }
}

/// The words of one command line.
#[derive(Debug)]
pub struct Args<'a> {
    words: [&'a str; MAX_ARGS],
    len: usize,
}

impl<'a> Args<'a> {
    /// The words as a slice.
    pub fn as_slice(&self) -> &[&'a str] {
        &self.words[..self.len]
    }
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits `line` into words.
pub fn split(line: &str) -> Result<Args<'_>, ArgError> {
    let mut args = Args {
        words: [""; MAX_ARGS],
        len: 0,
    };
    let mut rest = line.trim_start_matches(is_space);
    while !rest.is_empty() {
        let (word, tail) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').ok_or(ArgError::UnterminatedQuote)?;
            let tail = &quoted[end + 1..];
            if tail.chars().next().is_some_and(|c| !is_space(c)) {
                return Err(ArgError::TextAfterQuote);
            }
            (&quoted[..end], tail)
        } else {
            let end = rest.find(is_space).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        if args.len == MAX_ARGS {
            return Err(ArgError::TooMany);
        }
        args.words[args.len] = word;
        args.len += 1;
        rest = tail.trim_start_matches(is_space);
    }
    Ok(args)
}

/// Parses an unsigned number written as `0x`-prefixed hex or as decimal (`_` separators allowed).
pub fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (s, 10),
    };
    if digits.is_empty() || digits.starts_with('_') {
        return None;
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix)?;
        value = value.checked_mul(radix as u64)?.checked_add(d as u64)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_words() {
        let a = split("  peek\t0x40000000  ").unwrap();
        assert_eq!(a.as_slice(), ["peek", "0x40000000"]);
        assert!(split("   ").unwrap().as_slice().is_empty());
    }

    #[test]
    fn quoted_word_keeps_spaces() {
        let a = split(r#"llminfer "hello big world" --max-tokens 8"#).unwrap();
        assert_eq!(
            a.as_slice(),
            ["llminfer", "hello big world", "--max-tokens", "8"]
        );
        let a = split(r#"x """#).unwrap();
        assert_eq!(a.as_slice(), ["x", ""]);
    }

    #[test]
    fn reports_unterminated_quote() {
        assert_eq!(
            split(r#"llminfer "hello"#).unwrap_err(),
            ArgError::UnterminatedQuote
        );
    }

    #[test]
    fn reports_text_glued_to_closing_quote() {
        assert_eq!(split(r#"a "b"c"#).unwrap_err(), ArgError::TextAfterQuote);
    }

    #[test]
    fn quote_inside_a_bare_word_is_literal() {
        let a = split(r#"say a"b"#).unwrap();
        assert_eq!(a.as_slice(), ["say", "a\"b"]);
    }

    #[test]
    fn too_many_words() {
        let line = "a ".repeat(MAX_ARGS);
        assert_eq!(split(&line).unwrap().as_slice().len(), MAX_ARGS);
        let line = "a ".repeat(MAX_ARGS + 1);
        assert_eq!(split(&line).unwrap_err(), ArgError::TooMany);
    }

    #[test]
    fn parses_hex_and_decimal() {
        assert_eq!(parse_u64("0x4000_0000"), Some(0x4000_0000));
        assert_eq!(parse_u64("0XfF"), Some(255));
        assert_eq!(parse_u64("1234"), Some(1234));
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("0xffffffffffffffff"), Some(u64::MAX));
    }

    #[test]
    fn rejects_bad_numbers() {
        for bad in [
            "",
            "0x",
            "12a",
            "0xg1",
            "-1",
            "0x1_0000_0000_0000_0000",
            "18446744073709551616",
            "_1",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
    }
}
