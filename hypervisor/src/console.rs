//! The console multiplexer: the monitor's console and one per VM of the partition table (today
//! monitor, ctl, llm) on one physical UART.
//!
//! Output: every physical line starts with its source's tag (`[hv] `, `[ctl] `, `[llm] `) and
//! holds one source's bytes only. A guest's bytes are made safe first ([`sanitize`]: controls
//! shown visibly) and assembled into lines per source, which are written whole (as Xen does for
//! guest consoles), so output of two guests never interleaves inside a line. A partial line (a
//! prompt, the echo of typing) is written after [`IDLE_NS`] without output from its source, at
//! once while its source has the focus and was just sent input ([`ECHO_NS`]), and in pieces of
//! [`LINE_MAX`] bytes if it grows that long (counted). The caller passes the time and arms a
//! timer for [`Console::deadline`]. If a partial line was written and another source then
//! writes, the partial physical line is ended and the source continues on a new tagged line.
//! Each source keeps a history of what it wrote (sanitised), replayed on a focus switch.
//!
//! Input: bytes go to the focused target. Ctrl-A then a console's key (from the partition
//! table: `0` the monitor, `1` ctl, `2` llm) focuses it, announced by [`Console::switch_to`]
//! with a banner, the target's history and a `--- <name> live ---` line; Ctrl-A Ctrl-A sends a
//! literal Ctrl-A; Ctrl-A followed by anything else is reported and dropped (counted).

pub mod sanitize;

use sanitize::{Piece, Sanitizer};
use sis_platform::partition::{PARTITIONS, SYSTEM};

/// Escape byte (Ctrl-A).
pub const ESCAPE: u8 = 0x01;
/// Bytes of a guest's line held before it is written in pieces.
pub const LINE_MAX: usize = 256;
/// A partial line is written after this long without output from its source.
pub const IDLE_NS: u64 = 100_000_000;
/// After an input byte goes to a guest, its output is written at once for this long (the echo
/// of typing, a prompt after a command, stay immediate).
pub const ECHO_NS: u64 = 50_000_000;
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
            Target::Monitor => SYSTEM.monitor_tag,
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

    /// The target selected by the key after Ctrl-A (the partition table's console keys).
    pub fn from_key(key: u8) -> Option<Target> {
        if key == SYSTEM.monitor_key {
            return Some(Target::Monitor);
        }
        SYSTEM.vm_by_key(key).map(Target::Vm)
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

/// A guest's line being assembled: sanitised bytes (and raw backspaces) not yet written.
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    /// Time of the last byte added.
    last_ns: u64,
}

impl Line {
    const fn new() -> Self {
        Line {
            buf: [0; LINE_MAX],
            len: 0,
            last_ns: 0,
        }
    }
}

/// Output counters of one source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    /// Complete lines written.
    pub lines: u64,
    /// Partial lines written (idle, focus, or before another source's output).
    pub partial_writes: u64,
    /// Lines longer than [`LINE_MAX`] written in pieces.
    pub long_splits: u64,
    /// Bytes shown escaped.
    pub escaped: u64,
    /// Backspaces shown as `^H` because they would have left this source's text.
    pub backspaces_refused: u64,
}

/// The multiplexer state. All output goes through it into a byte sink.
pub struct Console {
    focus: Target,
    escape: bool,
    /// Source of the current partial physical line, `None` at the start of a line.
    line_owner: Option<Target>,
    /// Columns the owner's text holds on the current physical line (a lower bound: printable
    /// ASCII and tabs count, other characters do not), so a backspace never reaches the tag.
    cols: usize,
    history: [History; SOURCES],
    lines: [Line; SOURCES],
    sanitizers: [Sanitizer; SOURCES],
    /// Until when each source's output is written at once (input just went to it).
    echo_until: [u64; SOURCES],
    stats: [SourceStats; SOURCES],
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
            cols: 0,
            history: [const { History::new() }; SOURCES],
            lines: [const { Line::new() }; SOURCES],
            sanitizers: [const { Sanitizer::new() }; SOURCES],
            echo_until: [0; SOURCES],
            stats: [SourceStats {
                lines: 0,
                partial_writes: 0,
                long_splits: 0,
                escaped: 0,
                backspaces_refused: 0,
            }; SOURCES],
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

    /// Output counters of `src`.
    pub fn stats(&self, src: Target) -> SourceStats {
        let mut s = self.stats[src.index()];
        s.escaped = self.sanitizers[src.index()].escaped;
        s
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

    /// An input byte went to `t` at `now_ns`: its output is written at once for [`ECHO_NS`].
    pub fn delivered(&mut self, t: Target, now_ns: u64) {
        self.echo_until[t.index()] = now_ns.saturating_add(ECHO_NS);
    }

    /// Writes one byte of the hypervisor's own output (trusted: not sanitised, not held).
    pub fn output(&mut self, src: Target, b: u8, sink: &mut impl FnMut(u8)) {
        self.write(src, &[b], true, sink);
    }

    /// Takes one byte a guest wrote at `now_ns`: sanitises it, adds it to the guest's line, and
    /// writes the line when it is complete (or too long, or the guest is being typed to).
    pub fn guest_output(&mut self, src: Target, b: u8, now_ns: u64, sink: &mut impl FnMut(u8)) {
        let i = src.index();
        let mut san = self.sanitizers[i];
        san.push(b, &mut |p| self.piece(src, p, sink));
        self.sanitizers[i] = san;
        self.lines[i].last_ns = now_ns;
        if self.lines[i].len > 0 && self.focus == src && now_ns < self.echo_until[i] {
            self.write_partial(src, sink);
        }
    }

    fn piece(&mut self, src: Target, p: Piece<'_>, sink: &mut impl FnMut(u8)) {
        let i = src.index();
        match p {
            Piece::Newline => {
                let n = self.lines[i].len;
                let buf = self.lines[i].buf;
                self.lines[i].len = 0;
                self.write(src, &buf[..n], true, sink);
                self.write(src, b"\n", true, sink);
                self.stats[i].lines += 1;
            }
            Piece::Backspace => self.add(src, &[0x08], sink),
            Piece::Text(t) => self.add(src, t, sink),
        }
    }

    fn add(&mut self, src: Target, t: &[u8], sink: &mut impl FnMut(u8)) {
        let i = src.index();
        if self.lines[i].len + t.len() > LINE_MAX {
            self.stats[i].long_splits += 1;
            self.write_partial(src, sink);
        }
        let l = &mut self.lines[i];
        l.buf[l.len..l.len + t.len()].copy_from_slice(t);
        l.len += t.len();
    }

    /// Writes `src`'s held partial line (it stays the physical line's owner).
    fn write_partial(&mut self, src: Target, sink: &mut impl FnMut(u8)) {
        let i = src.index();
        let n = self.lines[i].len;
        if n == 0 {
            return;
        }
        let buf = self.lines[i].buf;
        self.lines[i].len = 0;
        self.stats[i].partial_writes += 1;
        self.write(src, &buf[..n], true, sink);
    }

    /// Writes whatever guest partial lines have been idle for [`IDLE_NS`] at `now_ns`.
    pub fn flush_idle(&mut self, now_ns: u64, sink: &mut impl FnMut(u8)) {
        for id in 0..PARTITIONS.len() {
            let l = &self.lines[Target::Vm(id).index()];
            if l.len > 0 && now_ns.saturating_sub(l.last_ns) >= IDLE_NS {
                self.write_partial(Target::Vm(id), sink);
            }
        }
    }

    /// When the next idle partial line is due ([`Console::flush_idle`]), if any is held.
    pub fn deadline(&self) -> Option<u64> {
        self.lines
            .iter()
            .filter(|l| l.len > 0)
            .map(|l| l.last_ns.saturating_add(IDLE_NS))
            .min()
    }

    /// Writes what `src` holds, sanitiser state included (the source stops, or gets the focus).
    pub fn flush_source(&mut self, src: Target, sink: &mut impl FnMut(u8)) {
        let i = src.index();
        let mut san = self.sanitizers[i];
        san.finish(&mut |p| self.piece(src, p, sink));
        self.sanitizers[i] = san;
        self.write_partial(src, sink);
    }

    /// Puts `bytes` of `src` on the terminal: starts a tagged physical line when needed (ending
    /// another source's partial one first), turns `\n` into CR LF, and lets a backspace move the
    /// cursor only over this source's own columns. `record` keeps the bytes in the history.
    fn write(&mut self, src: Target, bytes: &[u8], record: bool, sink: &mut impl FnMut(u8)) {
        for &b in bytes {
            if record {
                self.history[src.index()].push(b);
            }
            if self.line_owner != Some(src) {
                if self.line_owner.is_some() {
                    sink(b'\r');
                    sink(b'\n');
                }
                src.tag().bytes().for_each(&mut *sink);
                self.line_owner = Some(src);
                self.cols = 0;
            }
            match b {
                b'\n' => {
                    sink(b'\r');
                    sink(b'\n');
                    self.line_owner = None;
                }
                0x08 if self.cols > 0 => {
                    sink(0x08);
                    self.cols -= 1;
                }
                0x08 => {
                    self.stats[src.index()].backspaces_refused += 1;
                    sink(b'^');
                    sink(b'H');
                    self.cols += 2;
                }
                b'\t' | 0x20..=0x7E => {
                    sink(b);
                    self.cols += 1;
                }
                _ => sink(b),
            }
        }
    }

    /// Writes `src`'s last [`REPLAY_LINES`] lines of history to `sink` (tagged, not recorded
    /// again), ending with whatever partial line (such as a prompt) it has, then anything it
    /// still holds.
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
        // Copy out first: `write` needs `self` mutably.
        let mut tmp = [0u8; HISTORY_BYTES];
        let n = h.len - from;
        for (i, slot) in tmp.iter_mut().enumerate().take(n) {
            *slot = h.get(from + i);
        }
        self.write(src, &tmp[..n], false, sink);
        self.flush_source(src, sink);
    }

    /// Ends a partial physical line, if any (before a hypervisor message).
    pub fn end_line(&mut self, sink: &mut impl FnMut(u8)) {
        if self.line_owner.take().is_some() {
            sink(b'\r');
            sink(b'\n');
        }
    }

    /// Writes `text` as the hypervisor's own output from `src` (trusted: not sanitised).
    pub fn write_str(&mut self, src: Target, text: &str, sink: &mut impl FnMut(u8)) {
        self.write(src, text.as_bytes(), true, sink);
    }

    /// Focuses `t` and announces it on the terminal: the banner `--- console: <name> (Ctrl-A 0
    /// monitor, 1 ctl, 2 llm) ---` on the monitor, then `t`'s recent history (for a VM), then
    /// `--- <name> live ---`, after which everything is new (test harnesses wait for that line).
    pub fn switch_to(&mut self, t: Target, sink: &mut impl FnMut(u8)) {
        self.focus = t;
        self.end_line(sink);
        let mut banner = Line::new();
        let _ = core::fmt::Write::write_fmt(
            &mut banner,
            format_args!(
                "--- console: {} (Ctrl-A {}) ---\n",
                t.name(),
                SYSTEM.console_keys("")
            ),
        );
        let n = banner.len;
        self.write(Target::Monitor, &banner.buf[..n], true, sink);
        if t != Target::Monitor {
            self.replay(t, sink);
        }
        self.end_line(sink);
        for part in ["--- ", t.name(), " live ---\n"] {
            self.write_str(Target::Monitor, part, sink);
        }
    }
}

impl core::fmt::Write for Line {
    /// Appends what fits (hypervisor messages are short).
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(LINE_MAX - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use proptest::prelude::*;
    use std::string::String;
    use std::vec::Vec;

    const CTL: Target = Target::Vm(0);
    const LLM: Target = Target::Vm(1);

    /// Guest output at time `t`.
    fn out(c: &mut Console, src: Target, s: &str, t: u64, sink: &mut Vec<u8>) {
        for b in s.bytes() {
            c.guest_output(src, b, t, &mut |x| sink.push(x));
        }
    }

    fn hv(c: &mut Console, s: &str, sink: &mut Vec<u8>) {
        for b in s.bytes() {
            c.output(Target::Monitor, b, &mut |x| sink.push(x));
        }
    }

    fn string(v: &[u8]) -> String {
        String::from_utf8(v.to_vec()).unwrap()
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
    fn concurrent_guest_lines_are_written_whole() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        // Byte by byte, alternating: the interleaving the old multiplexer showed at boot.
        let (a, b) = (b"ctl: booted on core 0\n", b"llm: booted on cores 1-3\n");
        for i in 0..a.len().max(b.len()) {
            if let Some(&x) = a.get(i) {
                c.guest_output(CTL, x, 0, &mut |y| sink.push(y));
            }
            if let Some(&x) = b.get(i) {
                c.guest_output(LLM, x, 0, &mut |y| sink.push(y));
            }
        }
        assert_eq!(
            string(&sink),
            "[ctl] ctl: booted on core 0\r\n[llm] llm: booted on cores 1-3\r\n"
        );
        assert_eq!(c.stats(CTL).lines, 1);
    }

    #[test]
    fn a_partial_line_waits_for_idle_then_is_written() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        out(&mut c, LLM, "llm> ", 1_000, &mut sink);
        assert!(sink.is_empty());
        assert_eq!(c.deadline(), Some(1_000 + IDLE_NS));
        c.flush_idle(1_000 + IDLE_NS - 1, &mut |x| sink.push(x));
        assert!(sink.is_empty());
        c.flush_idle(1_000 + IDLE_NS, &mut |x| sink.push(x));
        assert_eq!(string(&sink), "[llm] llm> ");
        assert_eq!(c.deadline(), None);
        // Another source's line ends the physical line; llm goes on under a new tag.
        out(&mut c, CTL, "x\n", 2 * IDLE_NS, &mut sink);
        out(&mut c, LLM, "help\n", 2 * IDLE_NS, &mut sink);
        assert_eq!(string(&sink), "[llm] llm> \r\n[ctl] x\r\n[llm] help\r\n");
        assert_eq!(c.stats(LLM).partial_writes, 1);
    }

    #[test]
    fn the_focused_guest_echoes_at_once_after_input() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        c.delivered(CTL, 10);
        out(&mut c, CTL, "h", 20, &mut sink);
        assert_eq!(string(&sink), "[ctl] h");
        // Not for an unfocused guest, nor after the echo window.
        c.delivered(LLM, 10);
        out(&mut c, LLM, "x", 20, &mut sink);
        out(&mut c, CTL, "i", 10 + ECHO_NS, &mut sink);
        assert_eq!(string(&sink), "[ctl] h");
    }

    #[test]
    fn guest_controls_are_escaped_and_cannot_reach_the_tag() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        out(&mut c, CTL, "\r[llm] fake \x1b[6n\r\n", 0, &mut sink);
        out(&mut c, CTL, "ab\x08\x08\x08\x08x\n", 0, &mut sink);
        assert_eq!(
            string(&sink),
            "[ctl] ^M[llm] fake ^[[6n\r\n[ctl] ab\x08\x08^H\x08x\r\n"
        );
        // The refused one is shown; the next may move back over that visible `^H` (this
        // source's own text), never further.
        assert_eq!(c.stats(CTL).backspaces_refused, 1);
        assert_eq!(c.stats(CTL).escaped, 2);
    }

    #[test]
    fn erasing_echoed_typing_works() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        c.delivered(CTL, 0);
        out(&mut c, CTL, "ctl> ab\x08 \x08", 1, &mut sink);
        assert_eq!(string(&sink), "[ctl] ctl> ab\x08 \x08");
    }

    #[test]
    fn long_lines_are_written_in_pieces() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        let long: String = core::iter::repeat_n('a', LINE_MAX * 2 + 10).collect();
        out(&mut c, CTL, &long, 0, &mut sink);
        assert_eq!(c.stats(CTL).long_splits, 2);
        out(&mut c, CTL, "\n", 0, &mut sink);
        // One physical line, since nobody else wrote in between.
        let s = string(&sink);
        assert_eq!(s.matches("[ctl] ").count(), 1);
        assert_eq!(s.len(), 6 + long.len() + 2);
    }

    #[test]
    fn lines_are_tagged_and_the_monitor_ends_partial_lines() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        hv(&mut c, "hv> ", &mut sink);
        out(&mut c, LLM, "hello\n", 0, &mut sink);
        hv(&mut c, "m\n", &mut sink);
        assert_eq!(string(&sink), "[hv] hv> \r\n[llm] hello\r\n[hv] m\r\n");
    }

    #[test]
    fn replay_prints_recent_lines_and_prompt() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        for i in 0..20 {
            out(&mut c, LLM, &std::format!("line {i}\n"), 0, &mut sink);
        }
        out(&mut c, LLM, "llm> \x1b", 0, &mut sink);
        let mut r = Vec::new();
        c.end_line(&mut |x| sink.push(x));
        c.replay(LLM, &mut |x| r.push(x));
        let s = string(&r);
        assert!(s.starts_with("[llm] line 12\r\n"), "{s}");
        // The held partial line comes last, sanitised.
        assert!(s.ends_with("[llm] line 19\r\n[llm] llm> ^["), "{s}");
        assert_eq!(s.matches("\r\n").count(), REPLAY_LINES);
    }

    #[test]
    fn replay_repeats_only_sanitised_text() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        out(&mut c, CTL, "\x1b]0;title\x07\r\n", 0, &mut sink);
        let mut r = Vec::new();
        c.replay(CTL, &mut |x| r.push(x));
        assert_eq!(string(&r), "[ctl] ^[]0;title^G\r\n");
    }

    #[test]
    fn history_wraps() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        for _ in 0..HISTORY_BYTES {
            out(&mut c, CTL, "ab\n", 0, &mut sink);
        }
        let mut r = Vec::new();
        c.replay(CTL, &mut |x| r.push(x));
        let s = string(&r);
        assert_eq!(s.matches("[ctl] ab\r\n").count(), REPLAY_LINES);
    }

    #[test]
    fn a_switch_is_announced_replayed_and_ends_with_the_live_marker() {
        let mut c = Console::new();
        let mut sink = Vec::new();
        out(&mut c, LLM, "llm ready\nllm> ", 0, &mut sink);
        hv(&mut c, "hv> ", &mut sink);
        let mut r = Vec::new();
        c.switch_to(LLM, &mut |x| r.push(x));
        assert_eq!(c.focus(), LLM);
        assert_eq!(
            string(&r),
            "\r\n[hv] --- console: llm (Ctrl-A 0 monitor, 1 ctl, 2 llm) ---\r\n\
             [llm] llm ready\r\n[llm] llm> \r\n[hv] --- llm live ---\r\n"
        );
        let mut r = Vec::new();
        c.switch_to(Target::Monitor, &mut |x| r.push(x));
        assert_eq!(
            string(&r),
            "[hv] --- console: monitor (Ctrl-A 0 monitor, 1 ctl, 2 llm) ---\r\n\
             [hv] --- monitor live ---\r\n"
        );
        assert_eq!(Target::from_key(b'2'), Some(LLM));
        assert_eq!(Target::from_key(b'0'), Some(Target::Monitor));
        assert_eq!(Target::from_key(b'3'), None);
    }

    /// One step of a random console session.
    #[derive(Clone, Debug)]
    enum Step {
        Guest(usize, Vec<u8>),
        Hv(Vec<u8>),
        Input(usize),
        Idle(u64),
        Switch(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0usize..2, proptest::collection::vec(any::<u8>(), 1..40)).prop_map(|(s, b)| Step::Guest(s, b)),
            3 => (0usize..2, proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), Just(b' ')], 1..10)).prop_map(|(s, b)| Step::Guest(s, b)),
            1 => proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'h'), Just(0x08u8)], 1..8).prop_map(Step::Hv),
            1 => (0usize..2).prop_map(Step::Input),
            1 => (0u64..3 * IDLE_NS).prop_map(Step::Idle),
            1 => (0usize..3).prop_map(Step::Switch),
        ]
    }

    proptest! {
        /// Random interleavings of two guests' random bytes with the monitor, input, idle
        /// flushes and focus switches: every physical line starts with exactly one tag, holds
        /// that source's bytes only (no other tag's bytes follow without a line break), and no
        /// guest byte reaches the terminal as a control character (only CR LF line ends, tabs
        /// and bounded backspaces).
        #[test]
        fn physical_lines_never_mix_sources_and_carry_no_controls(steps in proptest::collection::vec(step(), 1..60)) {
            let mut c = Console::new();
            let mut wire: Vec<u8> = Vec::new();
            // Per physical line: its tag and its columns, to check backspaces stay in it.
            let mut now = 0u64;
            for s in &steps {
                let mut sink = |x| wire.push(x);
                match s {
                    Step::Guest(id, bytes) => {
                        for &b in bytes {
                            c.guest_output(Target::Vm(*id), b, now, &mut sink);
                        }
                    }
                    Step::Hv(bytes) => {
                        for &b in bytes {
                            c.output(Target::Monitor, b, &mut sink);
                        }
                    }
                    Step::Input(id) => c.delivered(Target::Vm(*id), now),
                    Step::Idle(dt) => {
                        now += dt;
                        c.flush_idle(now, &mut sink);
                    }
                    Step::Switch(t) => {
                        let t = if *t == 0 { Target::Monitor } else { Target::Vm(t - 1) };
                        c.set_focus(t);
                        c.end_line(&mut sink);
                        c.replay(t, &mut sink);
                    }
                }
            }
            // Split at CR LF: every physical line.
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let end = rest.windows(2).position(|w| w == b"\r\n").map_or(rest.len(), |p| p + 2);
                let line = &rest[..end];
                rest = &rest[end..];
                let tag = ["[hv] ", "[ctl] ", "[llm] "].iter().find(|t| line.starts_with(t.as_bytes()));
                prop_assert!(tag.is_some(), "untagged physical line {:?}", String::from_utf8_lossy(line));
                let tag = tag.unwrap();
                let body = &line[tag.len()..];
                let body = body.strip_suffix(b"\r\n").unwrap_or(body);
                // No control byte other than tab and backspace; backspaces never outnumber the
                // printable columns before them (the cursor stays right of the tag).
                let mut cols = 0i64;
                for &b in body {
                    match b {
                        0x08 => { cols -= 1; prop_assert!(cols >= 0, "backspace into the tag: {:?}", String::from_utf8_lossy(line)); }
                        b'\t' | 0x20..=0x7E => cols += 1,
                        0x00..=0x1F | 0x7F => prop_assert!(false, "control {b:#x} in {:?}", String::from_utf8_lossy(line)),
                        _ => {}
                    }
                }
                if *tag != "[hv] " {
                    // Guest bytes are UTF-8 without C1 controls.
                    let text = std::str::from_utf8(body);
                    prop_assert!(text.is_ok(), "not UTF-8: {body:?}");
                    prop_assert!(text.unwrap().chars().all(|ch| ch == '\t' || ch == '\x08' || !ch.is_control()));
                }
            }
        }

        /// Each guest's text, read back from the wire by tag (breaks inserted by interruptions
        /// aside), is exactly its sanitised output, in order: nothing lost, nothing duplicated.
        #[test]
        fn each_source_reads_back_in_order(steps in proptest::collection::vec((0usize..2, proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'x'), Just(b'y')], 1..20), any::<bool>()), 1..40)) {
            let mut c = Console::new();
            let mut wire: Vec<u8> = Vec::new();
            let mut sent: [Vec<u8>; 2] = Default::default();
            let mut now = 0;
            for (id, bytes, idle) in &steps {
                for &b in bytes {
                    c.guest_output(Target::Vm(*id), b, now, &mut |x| wire.push(x));
                }
                sent[*id].extend_from_slice(bytes);
                if *idle {
                    now += IDLE_NS;
                    c.flush_idle(now, &mut |x| wire.push(x));
                }
            }
            c.flush_source(CTL, &mut |x| wire.push(x));
            c.flush_source(LLM, &mut |x| wire.push(x));
            let mut got: [Vec<u8>; 2] = Default::default();
            let text = String::from_utf8(wire).unwrap();
            for line in text.split_inclusive("\r\n") {
                let (id, body) = if let Some(b) = line.strip_prefix("[ctl] ") { (0, b) } else { (1, line.strip_prefix("[llm] ").unwrap()) };
                got[id].extend_from_slice(body.replace("\r\n", "\n").as_bytes());
            }
            for id in 0..2 {
                // Breaks the multiplexer inserted are extra newlines: compare without empty lines.
                let norm = |v: &[u8]| String::from_utf8_lossy(v).split('\n').filter(|l| !l.is_empty()).collect::<Vec<_>>().concat();
                prop_assert_eq!(norm(&got[id]), norm(&sent[id]));
            }
        }
    }
}
