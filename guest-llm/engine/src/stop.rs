//! Stop strings: generation ends when the generated text reaches one of a few strings,
//! which is not emitted; matched on the detokenized text, so across token boundaries.
//!
//! [`StopStrings`] sits after the [`Detokenizer`](crate::Detokenizer) (whole UTF-8
//! characters in) and releases text for streaming. It holds back the longest tail of the
//! text that is the beginning of some stop string — only that tail, and only while it
//! can still complete — so what it releases never contains a stop string nor any part of
//! one that later completes. The text ends at the first point where it ends with a stop
//! string (the longest one if several end there); what comes after is dropped.

use crate::error::{Error, Result};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Most stop strings per request.
pub const MAX_STOP_STRINGS: usize = 4;
/// Longest stop string, in bytes of UTF-8.
pub const MAX_STOP_BYTES: usize = 64;

/// The stop strings of one request and the text held back from the stream.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    held: String,
    matched: Option<usize>,
}

impl StopStrings {
    /// At most [`MAX_STOP_STRINGS`] non-empty strings of at most [`MAX_STOP_BYTES`]
    /// bytes each (none at all is valid: then text passes straight through).
    pub fn new<S: AsRef<str>>(stops: &[S]) -> Result<Self> {
        if stops.len() > MAX_STOP_STRINGS {
            return Err(Error::InvalidArgument(format!(
                "{} stop strings (at most {MAX_STOP_STRINGS})",
                stops.len()
            )));
        }
        for (i, s) in stops.iter().enumerate() {
            let n = s.as_ref().len();
            if n == 0 {
                return Err(Error::InvalidArgument(format!("stop string {i} is empty")));
            }
            if n > MAX_STOP_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "stop string {i} is {n} bytes long (at most {MAX_STOP_BYTES})"
                )));
            }
        }
        Ok(StopStrings {
            stops: stops.iter().map(|s| String::from(s.as_ref())).collect(),
            held: String::new(),
            matched: None,
        })
    }

    /// The stop strings.
    pub fn strings(&self) -> &[String] {
        &self.stops
    }

    /// Which stop string ended the text, once one has.
    pub fn matched(&self) -> Option<usize> {
        self.matched
    }

    /// Text held back because it may be the beginning of a stop string.
    pub fn held(&self) -> &str {
        &self.held
    }

    /// Appends generated text; returns what can be released now. After a match, returns
    /// the text before the stop string and from then on nothing.
    pub fn push(&mut self, text: &str) -> String {
        if self.matched.is_some() {
            return String::new();
        }
        let old = self.held.len();
        self.held.push_str(text);
        let h = self.held.as_bytes();
        // The first end position at which the text ends with a stop string (a match
        // ending inside the old tail would have been found by an earlier push).
        for end in old + 1..=h.len() {
            let best = self
                .stops
                .iter()
                .enumerate()
                .filter(|(_, s)| h[..end].ends_with(s.as_bytes()))
                .max_by_key(|&(i, s)| (s.len(), core::cmp::Reverse(i)));
            if let Some((i, s)) = best {
                self.matched = Some(i);
                let mut out = core::mem::take(&mut self.held);
                out.truncate(end - s.len());
                return out;
            }
        }
        // Hold back from the first position whose tail is still the beginning of a
        // stop string. Such a tail starts like a stop string, so on a character boundary.
        let cut = (h.len().saturating_sub(MAX_STOP_BYTES)..h.len())
            .find(|&j| {
                self.held.is_char_boundary(j)
                    && self.stops.iter().any(|s| s.as_bytes().starts_with(&h[j..]))
            })
            .unwrap_or(h.len());
        let rest = self.held.split_off(cut);
        core::mem::replace(&mut self.held, rest)
    }

    /// The text has ended without reaching a stop string: releases what was held back.
    pub fn finish(&mut self) -> String {
        core::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn run(stops: &[&str], chunks: &[&str]) -> (String, Option<usize>) {
        let mut s = StopStrings::new(stops).unwrap();
        let mut out = String::new();
        for c in chunks {
            out += &s.push(c);
        }
        out += &s.finish();
        (out, s.matched())
    }

    #[test]
    fn matches_across_chunks_and_drops_the_rest() {
        assert_eq!(
            run(&["</s>"], &["Hello <", "/", "s> more"]),
            ("Hello ".into(), Some(0))
        );
        assert_eq!(run(&["\n\n"], &["a\n", "\nb"]), ("a".into(), Some(0)));
        assert_eq!(run(&["xyz"], &["ab", "xy"]), ("abxy".into(), None));
        assert_eq!(run(&[] as &[&str], &["ab", "xy"]), ("abxy".into(), None));
    }

    #[test]
    fn releases_as_soon_as_a_match_is_impossible() {
        let mut s = StopStrings::new(&["STOP", "ab"]).unwrap();
        assert_eq!(s.push("xxST"), "xx");
        assert_eq!(s.held(), "ST");
        assert_eq!(s.push("OX"), "STOX");
        assert_eq!(s.push("a"), "");
        assert_eq!(s.push("c"), "ac");
        assert_eq!(s.push("Sa"), "S");
        assert_eq!(s.push("b"), "");
        assert_eq!(s.matched(), Some(1));
        assert_eq!(s.push("more"), "");
        assert_eq!(s.finish(), "");
    }

    #[test]
    fn first_end_wins_then_longest() {
        // "c" completes before "abcd" could.
        assert_eq!(run(&["abcd", "c"], &["abc", "d"]), ("ab".into(), Some(1)));
        // Both end at the same point: the longer one is cut entirely.
        assert_eq!(run(&["bc", "abc"], &["xabc"]), ("x".into(), Some(1)));
    }

    #[test]
    fn multibyte_text_and_stops() {
        assert_eq!(
            run(&["日本"], &["emoji 😀 日", "本語"]),
            ("emoji 😀 ".into(), Some(0))
        );
        assert_eq!(run(&["é!"], &["café", "s"]), ("cafés".into(), None));
    }

    #[test]
    fn limits_are_enforced() {
        let long = "x".repeat(MAX_STOP_BYTES + 1);
        for (stops, want) in [
            (vec!["a", "b", "c", "d", "e"], "5 stop strings (at most 4)"),
            (vec!["a", ""], "stop string 1 is empty"),
            (
                vec![long.as_str()],
                "stop string 0 is 65 bytes long (at most 64)",
            ),
        ] {
            match StopStrings::new(&stops) {
                Err(Error::InvalidArgument(m)) => assert_eq!(m, want),
                other => panic!("{other:?}"),
            }
        }
        let max = "y".repeat(MAX_STOP_BYTES);
        assert!(StopStrings::new(&[max.as_str(), "a", "b", "c"]).is_ok());
    }
}
