//! Incremental UTF-8 decoding for streamed tokens.
//!
//! A token may end in the middle of a multi-byte character; [`Utf8Stream`] holds the
//! incomplete tail until the next token completes it, and replaces invalid sequences
//! with U+FFFD.

use alloc::string::String;
use alloc::vec::Vec;

/// Turns a stream of byte chunks into complete UTF-8 text.
#[derive(Debug, Default, Clone)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    /// A stream with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes` and returns every character now complete.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut start = 0;
        loop {
            match core::str::from_utf8(&self.pending[start..]) {
                Ok(s) => {
                    out.push_str(s);
                    start = self.pending.len();
                    break;
                }
                Err(e) => {
                    let good = start + e.valid_up_to();
                    // The prefix up to `good` was just validated.
                    out.push_str(core::str::from_utf8(&self.pending[start..good]).unwrap_or(""));
                    match e.error_len() {
                        Some(bad) => {
                            out.push('\u{fffd}');
                            start = good + bad;
                        }
                        None => {
                            start = good;
                            break;
                        }
                    }
                }
            }
        }
        self.pending.drain(..start);
        out
    }

    /// Ends the stream: an incomplete trailing character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let had = !self.pending.is_empty();
        self.pending.clear();
        if had {
            String::from("\u{fffd}")
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_are_held_back() {
        let mut s = Utf8Stream::new();
        let bytes = "é€😀".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out += &s.push(&[*b]);
        }
        assert_eq!(out, "é€😀");
        assert_eq!(s.push(&[0xf0, 0x9f]), "");
        assert_eq!(s.finish(), "\u{fffd}");
    }

    #[test]
    fn invalid_bytes_become_replacement() {
        let mut s = Utf8Stream::new();
        assert_eq!(s.push(&[b'a', 0xff, b'b']), "a\u{fffd}b");
    }
}
