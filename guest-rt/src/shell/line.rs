//! Line editor: turns a stream of terminal bytes into submitted lines, echoing as it goes.
//!
//! Printable ASCII and UTF-8 bytes are stored and echoed; backspace (0x08) and DEL (0x7f) erase
//! the last character (a whole UTF-8 sequence); Ctrl-U erases the line; CR or LF submits (a CR
//! directly followed by LF counts once). A line longer than the buffer is rejected at submit
//! time with a message, and nothing of it is returned. Output uses `\n` line ends; the console
//! driver turns them into CR LF.

use core::fmt::Write;

/// Backspace.
const BS: u8 = 0x08;
/// Delete, sent by most terminals for the backspace key.
const DEL: u8 = 0x7f;
/// Ctrl-U: kill the line.
const CTRL_U: u8 = 0x15;
/// Carriage return.
const CR: u8 = b'\r';
/// Line feed.
const LF: u8 = b'\n';

/// What one input byte did.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Nothing to act on (the byte was stored, erased something, or ignored).
    None,
    /// A complete line was submitted.
    Line(&'a str),
    /// A line was submitted but rejected (too long or not UTF-8); the message was printed.
    Rejected,
}

/// A line editor with a fixed buffer of `N` bytes.
pub struct LineEditor<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// Bytes dropped because the line was full (the line is rejected at submit).
    overflowed: usize,
    last_was_cr: bool,
    /// Lines rejected as too long since creation.
    rejected_long: u64,
}

impl<const N: usize> Default for LineEditor<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineEditor<N> {
    /// An empty editor.
    pub const fn new() -> Self {
        LineEditor {
            buf: [0; N],
            len: 0,
            overflowed: 0,
            last_was_cr: false,
            rejected_long: 0,
        }
    }

    /// The bytes typed so far on the current line.
    pub fn pending(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// How many lines were rejected for being longer than `N` bytes.
    pub fn rejected_long(&self) -> u64 {
        self.rejected_long
    }

    /// Feeds one byte; echo and messages go to `out`.
    pub fn feed(&mut self, byte: u8, out: &mut dyn Write) -> Event<'_> {
        let after_cr = core::mem::replace(&mut self.last_was_cr, byte == CR);
        match byte {
            LF if after_cr => Event::None,
            CR | LF => self.submit(out),
            BS | DEL => {
                self.erase_char(out);
                Event::None
            }
            CTRL_U => {
                while self.len > 0 {
                    self.erase_char(out);
                }
                self.overflowed = 0;
                Event::None
            }
            0x20..=0x7e | 0x80..=0xff => {
                if self.overflowed > 0 || self.len == N {
                    self.overflowed += 1;
                } else {
                    self.buf[self.len] = byte;
                    self.len += 1;
                    if byte < 0x80 {
                        let _ = out.write_char(byte as char);
                    } else if let Some(c) = self.last_complete_char() {
                        let _ = out.write_char(c);
                    }
                }
                Event::None
            }
            _ => Event::None,
        }
    }

    fn submit(&mut self, out: &mut dyn Write) -> Event<'_> {
        let _ = out.write_char('\n');
        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflowed) > 0 {
            self.rejected_long += 1;
            let _ = writeln!(out, "error: line too long (max {N} bytes), ignored");
            return Event::Rejected;
        }
        match core::str::from_utf8(&self.buf[..len]) {
            Ok(s) => Event::Line(s),
            Err(_) => {
                let _ = writeln!(out, "error: line is not valid UTF-8, ignored");
                Event::Rejected
            }
        }
    }

    /// Removes the last character (all bytes of a UTF-8 sequence) and erases one cell.
    fn erase_char(&mut self, out: &mut dyn Write) {
        if self.overflowed > 0 {
            // The visible line stopped at the buffer; dropped bytes were never echoed.
            self.overflowed -= 1;
            return;
        }
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        while self.len > 0 && (self.buf[self.len] & 0xc0) == 0x80 {
            self.len -= 1;
        }
        let _ = out.write_str("\x08 \x08");
    }

    /// The last character if the buffer ends in a complete UTF-8 sequence.
    fn last_complete_char(&self) -> Option<char> {
        let start = self.len.saturating_sub(4);
        (start..self.len).find_map(|i| {
            core::str::from_utf8(&self.buf[i..self.len])
                .ok()
                .and_then(|s| {
                    let mut it = s.chars();
                    let c = it.next()?;
                    it.next().is_none().then_some(c)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::String;

    fn feed_all<const N: usize>(ed: &mut LineEditor<N>, input: &[u8], out: &mut String) -> Vec {
        let mut lines = Vec::new();
        for &b in input {
            match ed.feed(b, out) {
                Event::Line(l) => lines.push(Some(String::from(l))),
                Event::Rejected => lines.push(None),
                Event::None => {}
            }
        }
        lines
    }
    type Vec = std::vec::Vec<Option<String>>;

    #[test]
    fn echoes_and_submits_on_cr() {
        let mut ed = LineEditor::<32>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"help\r", &mut out);
        assert_eq!(lines, [Some("help".into())]);
        assert_eq!(out, "help\n");
    }

    #[test]
    fn crlf_counts_once_but_lf_alone_submits() {
        let mut ed = LineEditor::<32>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"a\r\nb\n\n", &mut out);
        assert_eq!(lines, [Some("a".into()), Some("b".into()), Some("".into())]);
    }

    #[test]
    fn backspace_and_del_erase() {
        let mut ed = LineEditor::<32>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"hellp\x7fo\x08\x08lo\r", &mut out);
        assert_eq!(lines, [Some("hello".into())]);
        assert!(out.contains("\x08 \x08"));
        // Erasing an empty line does nothing and echoes nothing.
        let mut out = String::new();
        ed.feed(DEL, &mut out);
        assert_eq!(out, "");
    }

    #[test]
    fn backspace_removes_whole_utf8_char() {
        let mut ed = LineEditor::<32>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, "aé\x7fb\r".as_bytes(), &mut out);
        assert_eq!(lines, [Some("ab".into())]);
        assert!(out.starts_with("aé"));
    }

    #[test]
    fn ctrl_u_kills_line() {
        let mut ed = LineEditor::<32>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"garbage\x15ok\r", &mut out);
        assert_eq!(lines, [Some("ok".into())]);
    }

    #[test]
    fn control_bytes_are_ignored() {
        let mut ed = LineEditor::<32>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"a\x01\x1bb\r", &mut out);
        assert_eq!(lines, [Some("ab".into())]);
    }

    #[test]
    fn overlong_line_is_rejected_with_message_then_editor_recovers() {
        let mut ed = LineEditor::<4>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"abcdef\rok\r", &mut out);
        assert_eq!(lines, [None, Some("ok".into())]);
        assert!(out.contains("line too long (max 4 bytes)"));
        assert_eq!(ed.rejected_long(), 1);
        // Exactly N bytes is fine.
        let lines = feed_all(&mut ed, b"abcd\r", &mut out);
        assert_eq!(lines, [Some("abcd".into())]);
    }

    #[test]
    fn erasing_back_under_the_limit_accepts_the_line() {
        let mut ed = LineEditor::<4>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"abcdef\x7f\x7f\x7fx\r", &mut out);
        assert_eq!(lines, [Some("abcx".into())]);
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let mut ed = LineEditor::<8>::new();
        let mut out = String::new();
        let lines = feed_all(&mut ed, b"\xff\r", &mut out);
        assert_eq!(lines, [None]);
        assert!(out.contains("not valid UTF-8"));
    }
}
