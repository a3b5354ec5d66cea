//! Makes a guest's output bytes safe for the host terminal (and the history replay).
//!
//! What passes unchanged: printable ASCII, `\t`, and complete, well-formed UTF-8 sequences of
//! code points from U+00A0 on. `\n` ends the line. Everything else is shown visibly:
//!
//! * C0 controls as caret notation (`ESC` → `^[`, BEL → `^G`, NUL → `^@`), DEL as `^?`;
//! * `\r` as `^M`, except a `\r` directly before `\n` (a CRLF line end), which is dropped: a
//!   guest printing CRLF gets clean lines, and a bare `\r` can never move the cursor back over
//!   the line's tag;
//! * C1 controls (U+0080..U+009F, which some terminals obey as 8-bit CSI, OSC...) and every byte
//!   of a malformed UTF-8 sequence (stray continuation bytes, overlong forms, surrogates, beyond
//!   U+10FFFF, a sequence cut short) as `\xNN` per byte;
//! * backspace (0x08) is passed on as [`Piece::Backspace`]: the line writer moves the cursor back
//!   only over what this source wrote on the physical line (never into its tag), else shows `^H`.
//!
//! So no guest byte reaches the terminal as a control sequence: no cursor movement, colours,
//! window title, or queries the terminal would answer by typing into the focused console.

/// One piece of sanitised output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Safe bytes to show.
    Text(&'a [u8]),
    /// End of line.
    Newline,
    /// A backspace, for the line writer to bound.
    Backspace,
}

/// Per-source sanitiser state (a held `\r`, a UTF-8 sequence in progress).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sanitizer {
    cr: bool,
    seq: [u8; 4],
    have: u8,
    need: u8,
    /// Bytes shown escaped (controls, malformed UTF-8).
    pub escaped: u64,
}

fn hex(b: u8) -> [u8; 4] {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    [b'\\', b'x', H[usize::from(b >> 4)], H[usize::from(b & 0xF)]]
}

impl Sanitizer {
    /// A fresh state.
    pub const fn new() -> Self {
        Sanitizer {
            cr: false,
            seq: [0; 4],
            have: 0,
            need: 0,
            escaped: 0,
        }
    }

    fn flush_seq(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        for i in 0..usize::from(self.have) {
            self.escaped += 1;
            out(Piece::Text(&hex(self.seq[i])));
        }
        self.have = 0;
        self.need = 0;
    }

    /// Feeds one byte; `out` receives what to show (nothing while a `\r` or a UTF-8 sequence
    /// is held).
    pub fn push(&mut self, b: u8, out: &mut impl FnMut(Piece<'_>)) {
        if self.cr {
            self.cr = false;
            if b != b'\n' {
                self.escaped += 1;
                out(Piece::Text(b"^M"));
            }
        }
        if self.need > 0 {
            if b & 0xC0 == 0x80 {
                self.seq[usize::from(self.have)] = b;
                self.have += 1;
                if self.have == self.need {
                    self.finish_seq(out);
                }
                return;
            }
            self.flush_seq(out);
        }
        match b {
            b'\n' => out(Piece::Newline),
            b'\r' => self.cr = true,
            b'\t' => out(Piece::Text(b"\t")),
            0x08 => out(Piece::Backspace),
            0x00..=0x1F => {
                self.escaped += 1;
                out(Piece::Text(&[b'^', b + 0x40]));
            }
            0x7F => {
                self.escaped += 1;
                out(Piece::Text(b"^?"));
            }
            0x20..=0x7E => out(Piece::Text(&[b])),
            0xC2..=0xDF => self.start_seq(b, 2),
            0xE0..=0xEF => self.start_seq(b, 3),
            0xF0..=0xF4 => self.start_seq(b, 4),
            _ => {
                self.escaped += 1;
                out(Piece::Text(&hex(b)));
            }
        }
    }

    fn start_seq(&mut self, b: u8, len: u8) {
        self.seq[0] = b;
        self.have = 1;
        self.need = len;
    }

    fn finish_seq(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        let n = usize::from(self.have);
        let s = &self.seq[..n];
        let cp = match n {
            2 => u32::from(s[0] & 0x1F) << 6 | u32::from(s[1] & 0x3F),
            3 => {
                u32::from(s[0] & 0x0F) << 12 | u32::from(s[1] & 0x3F) << 6 | u32::from(s[2] & 0x3F)
            }
            _ => {
                u32::from(s[0] & 0x07) << 18
                    | u32::from(s[1] & 0x3F) << 12
                    | u32::from(s[2] & 0x3F) << 6
                    | u32::from(s[3] & 0x3F)
            }
        };
        let min = [0, 0, 0x80, 0x800, 0x1_0000][n];
        let ok = cp >= min && cp >= 0xA0 && !(0xD800..=0xDFFF).contains(&cp) && cp <= 0x10_FFFF;
        if ok {
            let seq = self.seq;
            self.have = 0;
            self.need = 0;
            out(Piece::Text(&seq[..n]));
        } else {
            self.flush_seq(out);
        }
    }

    /// Shows whatever is held (a `\r`, an unfinished UTF-8 sequence) before a forced line break
    /// or when the source stops.
    pub fn finish(&mut self, out: &mut impl FnMut(Piece<'_>)) {
        if self.cr {
            self.cr = false;
            self.escaped += 1;
            out(Piece::Text(b"^M"));
        }
        if self.need > 0 {
            self.flush_seq(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Sanitises `input`; backspaces shown as `<BS>`, newlines as `\n`.
    fn run(input: &[u8]) -> Vec<u8> {
        let mut s = Sanitizer::new();
        let mut v = Vec::new();
        let mut out = |p: Piece<'_>| match p {
            Piece::Text(t) => v.extend_from_slice(t),
            Piece::Newline => v.push(b'\n'),
            Piece::Backspace => v.extend_from_slice(b"<BS>"),
        };
        for &b in input {
            s.push(b, &mut out);
        }
        s.finish(&mut out);
        v
    }

    fn text(input: &[u8]) -> std::string::String {
        std::string::String::from_utf8(run(input)).expect("sanitised output is UTF-8")
    }

    #[test]
    fn controls_are_shown_in_caret_notation() {
        assert_eq!(text(b"a\x1b[31mred\x1b[0m"), "a^[[31mred^[[0m");
        assert_eq!(text(b"\x1b]0;title\x07"), "^[]0;title^G");
        assert_eq!(text(b"\x1b[6n"), "^[[6n");
        assert_eq!(text(b"nul\x00del\x7f"), "nul^@del^?");
        assert_eq!(text(b"tab\there"), "tab\there");
    }

    #[test]
    fn crlf_is_a_newline_and_a_bare_cr_is_visible() {
        assert_eq!(text(b"one\r\ntwo\n"), "one\ntwo\n");
        assert_eq!(text(b"\r[llm] fake\n"), "^M[llm] fake\n");
        assert_eq!(text(b"a\r\rb"), "a^M^Mb");
        assert_eq!(text(b"end\r"), "end^M");
    }

    #[test]
    fn utf8_passes_c1_and_malformed_bytes_are_escaped() {
        assert_eq!(text("é€😀".as_bytes()), "é€😀");
        assert_eq!(
            text(b"\xc2\x9b31m"),
            "\\xC2\\x9B31m",
            "C1 CSI encoded in UTF-8"
        );
        assert_eq!(text(b"\x9b31m"), "\\x9B31m", "raw 8-bit CSI");
        assert_eq!(text(b"\xc0\xaf"), "\\xC0\\xAF", "overlong");
        assert_eq!(text(b"\xed\xa0\x80"), "\\xED\\xA0\\x80", "surrogate");
        assert_eq!(text(b"\xe2\x82x"), "\\xE2\\x82x", "cut short");
        assert_eq!(
            text(b"\xf4\x90\x80\x80"),
            "\\xF4\\x90\\x80\\x80",
            "beyond U+10FFFF"
        );
        assert_eq!(text(b"\xe2\x82"), "\\xE2\\x82", "unfinished at the end");
    }

    #[test]
    fn backspace_is_left_to_the_line_writer() {
        assert_eq!(text(b"ab\x08 \x08"), "ab<BS> <BS>");
    }

    proptest! {
        /// Whatever the bytes: the output holds no control byte but `\t`, `\n` and (as pieces)
        /// backspace, no C1 control, and is valid UTF-8.
        #[test]
        fn output_is_inert(input in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut s = Sanitizer::new();
            let mut text = Vec::new();
            let mut out = |p: Piece<'_>| {
                if let Piece::Text(t) = p {
                    text.extend_from_slice(t);
                }
            };
            for &b in &input {
                s.push(b, &mut out);
            }
            s.finish(&mut out);
            let str = std::str::from_utf8(&text);
            prop_assert!(str.is_ok(), "not UTF-8: {text:?}");
            for c in str.unwrap().chars() {
                prop_assert!(c == '\t' || !c.is_control(), "control {c:?} in {text:?}");
            }
        }
    }
}
