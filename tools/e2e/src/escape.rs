//! Tracks the Ctrl-A escape sequences in bytes sent to the UART, so the harness always knows
//! which console has the input focus, whichever API sent the bytes.

use crate::source::Source;

/// The console escape byte (Ctrl-A).
pub const CTRL_A: u8 = 0x01;

/// Follows the hypervisor's input escape state machine: Ctrl-A then `0`/`1`/`2` switches focus,
/// Ctrl-A Ctrl-A sends a literal Ctrl-A, Ctrl-A then any other byte switches nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct EscapeTracker {
    after_escape: bool,
}

impl EscapeTracker {
    /// Feeds one byte sent to the UART; returns the newly focused console if it switches focus.
    pub fn feed(&mut self, b: u8) -> Option<Source> {
        if self.after_escape {
            self.after_escape = false;
            return Source::from_focus_key(b);
        }
        if b == CTRL_A {
            self.after_escape = true;
        }
        None
    }

    /// True if the last byte fed started an escape sequence.
    pub fn in_escape(&self) -> bool {
        self.after_escape
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> Vec<Source> {
        let mut t = EscapeTracker::default();
        bytes.iter().filter_map(|&b| t.feed(b)).collect()
    }

    #[test]
    fn focus_switches_are_seen() {
        assert_eq!(run(b"\x012ab\x010"), vec![Source::Llm, Source::Hv]);
        assert_eq!(run(b"1\x011"), vec![Source::Ctl]);
    }

    #[test]
    fn literal_ctrl_a_does_not_switch() {
        // Ctrl-A Ctrl-A is a literal; the following `2` is plain input.
        assert_eq!(run(b"\x01\x012"), Vec::<Source>::new());
        // Ctrl-A then an unknown key switches nothing and ends the escape.
        assert_eq!(run(b"\x01x2"), Vec::<Source>::new());
    }

    #[test]
    fn escape_state_spans_calls() {
        let mut t = EscapeTracker::default();
        assert_eq!(t.feed(CTRL_A), None);
        assert!(t.in_escape());
        assert_eq!(t.feed(b'2'), Some(Source::Llm));
        assert!(!t.in_escape());
    }
}
