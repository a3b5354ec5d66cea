//! The text of a reply as the caller may see it: token bytes become whole UTF-8 characters
//! (`Utf8Stream`), and the request's stop strings (`StopStrings`) hold back text that may still
//! turn out to be the start of one and cut the text at the first one that completes. What
//! [`ReplyText::push`] returns never contains any part of a stop string that then completes,
//! so a stream (shell or host) never shows one. Pure, host tested.

use alloc::string::String;

use sis_engine::{StopStrings, Utf8Stream};

/// A reply's text filter.
#[derive(Debug, Default)]
pub struct ReplyText {
    utf8: Utf8Stream,
    stops: StopStrings,
}

impl ReplyText {
    /// A filter for `stops` (already validated by `StopStrings::new`).
    pub fn new(stops: StopStrings) -> Self {
        ReplyText {
            utf8: Utf8Stream::new(),
            stops,
        }
    }

    /// One token's bytes; returns the text that may be shown now (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        let text = self.utf8.push(bytes);
        self.stops.push(&text)
    }

    /// Whether the text has reached a stop string (generation should end; nothing more is
    /// released).
    pub fn stopped(&self) -> bool {
        self.stops.matched().is_some()
    }

    /// The reply ended: what is still held back (an incomplete character as U+FFFD, a tail
    /// that did not become a stop string); nothing after a stop string.
    pub fn finish(&mut self) -> String {
        let mut out = self.stops.push(&self.utf8.finish());
        if !self.stopped() {
            out.push_str(&self.stops.finish());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn filter(stops: &[&str]) -> ReplyText {
        ReplyText::new(StopStrings::new(stops).unwrap())
    }

    /// Feeds `tokens` (byte chunks); returns what was shown after each, the end, and whether
    /// it stopped.
    fn run(stops: &[&str], tokens: &[&[u8]]) -> (Vec<String>, String, bool) {
        let mut f = filter(stops);
        let mut shown = Vec::new();
        for t in tokens {
            shown.push(f.push(t));
            if f.stopped() {
                break;
            }
        }
        let end = f.finish();
        (shown, end, f.stopped())
    }

    #[test]
    fn a_stop_string_across_token_boundaries_is_never_shown() {
        // "User:" arrives as "Us" + "er" + ":".
        let (shown, end, stopped) = run(&["User:"], &[b"Hi. ", b"Us", b"er", b":", b" more"]);
        assert_eq!(shown, ["Hi. ", "", "", ""]);
        assert_eq!(end, "");
        assert!(stopped, "the tokens after the match are not even asked for");
    }

    #[test]
    fn a_false_start_is_released_when_it_cannot_match() {
        let (shown, end, stopped) = run(&["User:"], &[b"Us", b"e", b"d it"]);
        assert_eq!(shown, ["", "", "Used it"]);
        assert_eq!((end.as_str(), stopped), ("", false));
        // A tail still open at the end is released by finish.
        let (shown, end, stopped) = run(&["User:"], &[b"ok Use"]);
        assert_eq!(shown, ["ok "]);
        assert_eq!((end.as_str(), stopped), ("Use", false));
    }

    #[test]
    fn multi_byte_characters_split_across_tokens() {
        // "é" is c3 a9; the stop string "é!" spans three tokens.
        let (shown, end, stopped) = run(&["é!"], &[b"caf\xc3", b"\xa9", b"!", b"x"]);
        assert_eq!(shown, ["caf", "", ""]);
        assert_eq!((end.as_str(), stopped), ("", true));
        // Without a stop string the split character comes out whole.
        let (shown, end, _) = run(&[], &[b"caf\xc3", b"\xa9"]);
        assert_eq!(shown, ["caf", "é"]);
        assert_eq!(end, "");
        // An incomplete character at the end is U+FFFD.
        let (_, end, _) = run(&[], &[b"a\xc3"]);
        assert_eq!(end, "\u{fffd}");
    }

    #[test]
    fn the_longest_stop_string_ending_first_wins_and_the_stream_equals_the_cut_text() {
        let text = "one two\n\nthree";
        let stops = ["\n\n", "two\n\n", "three"];
        // Every split of the text into two-byte tokens: shown + end = text cut before "two".
        let bytes = text.as_bytes();
        let tokens: Vec<&[u8]> = bytes.chunks(2).collect();
        let (shown, end, stopped) = run(&stops, &tokens);
        assert!(stopped);
        assert_eq!(shown.concat() + &end, "one ");
    }
}
