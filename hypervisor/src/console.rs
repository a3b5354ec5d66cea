//! The console multiplexer: three logical consoles (monitor, ctl, llm) on one physical UART.
//!
//! Output: every physical line starts with its source's tag (`[hv] `, `[ctl] `, `[llm] `); when
//! another source interrupts a partial line, the line is ended first, so each physical line has
//! exactly one source. Each source keeps a history of its recent output.
//!
//! Input: bytes go to the focused target. Ctrl-A then `0`/`1`/`2` focuses the monitor / ctl /
//! llm; Ctrl-A Ctrl-A sends a literal Ctrl-A; Ctrl-A followed by anything else is reported and
//! dropped (counted).

use sis_platform::partition::PARTITIONS;

/// Escape byte (Ctrl-A).
pub const ESCAPE: u8 = 0x01;
/// Ends a physical line that another source interrupts, before `\r\n`: the ANSI "reset
/// attributes" sequence, invisible on a terminal, tells tools that the source's line continues
/// on its next tagged line (the break is not the source's own newline).
pub const CONTINUED: &[u8] = b"\x1b[0m";
/// Bytes of output history kept per source.
pub const HISTORY_BYTES: usize = 2048;
/// Lines of history replayed when the focus switches.
pub const REPLAY_LINES: usize = 8;

/// A console source or input target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The hypervisor monitor (`hv> `).
    Monitor,
    /// A VM, by partition-table index.
    Vm(usize),
}

impl Target {
    /// The line tag of this source.
    pub fn tag(self) -> &'static str {
        match self {
            Target::Monitor => "[hv] ",
            Target::Vm(id) => PARTITIONS[id].tag,
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Target::Monitor => "monitor",
            Target::Vm(id) => PARTITIONS[id].name,
        }
    }

    fn index(self) -> usize {
        match self {
            Target::Monitor => 0,
            Target::Vm(id) => id + 1,
        }
    }

    /// The target selected by the digit after Ctrl-A.
    pub fn from_key(key: u8) -> Option<Target> {
        match key {
            b'0' => Some(Target::Monitor),
            b'1'..=b'9' => {
                let id = usize::from(key - b'1');
                (id < PARTITIONS.len()).then_some(Target::Vm(id))
            }
            _ => None,
        }
    }
}

const SOURCES: usize = PARTITIONS.len() + 1;

/// What the caller must do with one input byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Deliver the byte to this target.
    Deliver(Target, u8),
    /// The focus changed to this target: print the banner and replay its history.
    Switched(Target),
    /// Ctrl-A followed by an unknown key: tell the user the keys.
    BadEscape(u8),
    /// Nothing (first byte of an escape sequence).
    Nothing,
}

/// A fixed-size byte history.
struct History {
    buf: [u8; HISTORY_BYTES],
    len: usize,
    start: usize,
}

impl History {
    const fn new() -> Self {
        History {
            buf: [0; HISTORY_BYTES],
            len: 0,
            start: 0,
        }
    }

    fn push(&mut self, b: u8) {
        if self.len < HISTORY_BYTES {
            self.buf[(self.start + self.len) % HISTORY_BYTES] = b;
            self.len += 1;
        } else {
            self.buf[self.start] = b;
            self.start = (self.start + 1) % HISTORY_BYTES;
        }
    }

    fn get(&self, i: usize) -> u8 {
        self.buf[(self.start + i) % HISTORY_BYTES]
    }
}

/// The multiplexer state. All output goes through [`Console::output`] into a byte sink.
pub struct Console {
    focus: Target,
    escape: bool,
    /// Source of the current partial physical line, `None` at the start of a line.
    line_owner: Option<Target>,
    history: [History; SOURCES],
    /// Escape sequences with an unknown key.
    pub bad_escapes: u64,
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl Console {
    /// A console focused on the control guest.
    pub const fn new() -> Self {
        Console {
            focus: Target::Vm(0),
            escape: false,
            line_owner: None,
            history: [const { History::new() }; SOURCES],
            bad_escapes: 0,
        }
    }

    /// The focused input target.
    pub fn focus(&self) -> Target {
        self.focus
    }

    /// Moves the focus (monitor `switch`).
    pub fn set_focus(&mut self, t: Target) {
        self.focus = t;
    }

    /// Handles one input byte from the physical UART.
    pub fn input(&mut self, b: u8) -> Input {
        if self.escape {
            self.escape = false;
            if b == ESCAPE {
                return Input::Deliver(self.focus, ESCAPE);
            }
            return match Target::from_key(b) {
                Some(t) => {
                    self.focus = t;
                    Input::Switched(t)
                }
                None => {
                    self.bad_escapes += 1;
                    Input::BadEscape(b)
                }
            };
        }
        if b == ESCAPE {
            self.escape = true;
            return Input::Nothing;
        }
        Input::Deliver(self.focus, b)
    }

    /// Writes one byte of `src`'s output to `sink`, tagging lines, and records it.
    pub fn output(&mut self, src: Target, b: u8, sink: &mut impl FnMut(u8)) {
        self.history[src.index()].push(b);
        self.emit(src, b, sink);
    }

    fn emit(&mut self, src: Target, b: u8, sink: &mut impl FnMut(u8)) {
        match self.line_owner {
            Some(owner) if owner == src => {}
            Some(_) => {
                CONTINUED.iter().copied().for_each(&mut *sink);
                sink(b'\r');
                sink(b'\n');
                src.tag().bytes().for_each(&mut *sink);
            }
            None => src.tag().bytes().for_each(&mut *sink),
        }
        if b == b'\n' {
            sink(b'\r');
            sink(b'\n');
            self.line_owner = None;
        } else {
            sink(b);
            self.line_owner = Some(src);
        }
    }

    /// Writes `src`'s last [`REPLAY_LINES`] lines of history to `sink` (tagged, not recorded
    /// again), ending with whatever partial line (such as a prompt) it has.
    pub fn replay(&mut self, src: Target, sink: &mut impl FnMut(u8)) {
        let h = &self.history[src.index()];
        let mut newlines = 0;
        let mut from = h.len;
        while from > 0 {
            if h.get(from - 1) == b'\n' {
                newlines += 1;
                if newlines > REPLAY_LINES {
                    break;
                }
            }
            from -= 1;
        }
        // Copy out first: `emit` needs `self` mutably.
        let mut tmp = [0u8; HISTORY_BYTES];
        let n = h.len - from;
        for (i, slot) in tmp.iter_mut().enumerate().take(n) {
            *slot = h.get(from + i);
        }
        for &b in &tmp[..n] {
            if b != b'\r' {
                self.emit(src, b, sink);
            }
        }
    }

    /// Ends a partial physical line, if any (before a hypervisor message).
    pub fn end_line(&mut self, sink: &mut impl FnMut(u8)) {
        if self.line_owner.take().is_some() {
            CONTINUED.iter().copied().for_each(&mut *sink);
            sink(b'\r');
            sink(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::String;
    use std::vec::Vec;

    fn out(c: &mut Console, src: Target, s: &str, sink: &mut Vec<u8>) {
        for b in s.bytes() {
            c.output(src, b, &mut |x| sink.push(x));
        }
    }

    #[test]
    fn keys_switch_focus() {
        let mut c = Console::new();
        assert_eq!(c.focus(), Target::Vm(0));
        assert_eq!(c.input(b'x'), Input::Deliver(Target::Vm(0), b'x'));
        assert_eq!(c.input(ESCAPE), Input::Nothing);
        assert_eq!(c.input(b'2'), Input::Switched(Target::Vm(1)));
        assert_eq!(c.input(b'y'), Input::Deliver(Target::Vm(1), b'y'));
        assert_eq!(c.input(ESCAPE), Input::Nothing);
        assert_eq!(c.input(b'0'), Input::Switched(Target::Monitor));
        assert_eq!(c.focus(), Target::Monitor);
        assert_eq!(c.input(ESCAPE), Input::Nothing);
        assert_eq!(c.input(b'1'), Input::Switched(Target::Vm(0)));
    }

    #[test]
    fn double_escape_is_literal() {
        let mut c = Console::new();
        c.input(ESCAPE);
        assert_eq!(c.input(ESCAPE), Input::Deliver(Target::Vm(0), ESCAPE));
        // And the state is clean afterwards.
        assert_eq!(c.input(b'1'), Input::Deliver(Target::Vm(0), b'1'));
    }

    #[test]
    fn unknown_escape_is_counted_and_dropped() {
        let mut c = Console::new();
        c.input(ESCAPE);
        assert_eq!(c.input(b'9'), Input::BadEscape(b'9'));
        c.input(ESCAPE);
        assert_eq!(c.input(b'q'), Input::BadEscape(b'q'));
        assert_eq!(c.bad_escapes, 2);
        assert_eq!(c.focus(), Target::Vm(0));
    }

    #[test]
    fn lines_are_tagged_and_split_on_interleave() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        out(&mut c, Target::Vm(0), "ctl> ", &mut sink);
        out(&mut c, Target::Vm(1), "hello\n", &mut sink);
        out(&mut c, Target::Vm(0), "x\n", &mut sink);
        out(&mut c, Target::Monitor, "m\n", &mut sink);
        let s = String::from_utf8(sink).unwrap();
        assert_eq!(
            s,
            "[ctl] ctl> \x1b[0m\r\n[llm] hello\r\n[ctl] x\r\n[hv] m\r\n"
        );
    }

    #[test]
    fn replay_prints_recent_lines_and_prompt() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        for i in 0..20 {
            out(
                &mut c,
                Target::Vm(1),
                &std::format!("line {i}\n"),
                &mut sink,
            );
        }
        out(&mut c, Target::Vm(1), "llm> ", &mut sink);
        let mut r = Vec::new();
        c.end_line(&mut |x| sink.push(x));
        c.replay(Target::Vm(1), &mut |x| r.push(x));
        let s = String::from_utf8(r).unwrap();
        assert!(s.starts_with("[llm] line 12\r\n"), "{s}");
        assert!(s.ends_with("[llm] line 19\r\n[llm] llm> "), "{s}");
        assert_eq!(s.matches("\r\n").count(), REPLAY_LINES);
    }

    #[test]
    fn history_wraps() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        for _ in 0..HISTORY_BYTES {
            out(&mut c, Target::Vm(0), "ab\n", &mut sink);
        }
        let mut r = Vec::new();
        c.replay(Target::Vm(0), &mut |x| r.push(x));
        let s = String::from_utf8(r).unwrap();
        assert_eq!(s.matches("[ctl] ab\r\n").count(), REPLAY_LINES);
    }
}
