//! The shared console log: the raw byte stream, one text view per source, and a read cursor per
//! view. The reader thread appends; waiting callers are woken through a condition variable.

use crate::parse::{LineParser, ParseStats};
use crate::pattern::{Match, Pattern};
use crate::source::Source;
use std::fs::File;
use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// One source's text and where the next `expect` starts looking.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Text of this source (tags stripped, `\r` removed).
    pub text: Vec<u8>,
    /// Offset in `text` where the next search starts.
    pub cursor: usize,
    /// When bytes for this source last arrived.
    pub last_rx: Option<Instant>,
    /// Bytes removed from the view as a focus-switch history replay.
    pub excised: u64,
}

impl View {
    /// Removes `text[start..end]` (a duplicate history replay), keeping the cursor on the same
    /// logical byte.
    pub fn excise(&mut self, start: usize, end: usize) {
        let end = end.min(self.text.len());
        if start >= end {
            return;
        }
        self.text.drain(start..end);
        let removed = end - start;
        self.excised += removed as u64;
        if self.cursor >= end {
            self.cursor -= removed;
        } else if self.cursor > start {
            self.cursor = start;
        }
    }

    /// The last `n` lines of the view (a partial last line counts as a line).
    pub fn tail(&self, n: usize) -> String {
        if n == 0 {
            return String::new();
        }
        let text = &self.text;
        // A final newline ends the last line; it does not start another one.
        let search_end = if text.ends_with(b"\n") {
            text.len() - 1
        } else {
            text.len()
        };
        let mut start = 0;
        let mut count = 0;
        for i in (0..search_end).rev() {
            if text[i] == b'\n' {
                count += 1;
                if count == n {
                    start = i + 1;
                    break;
                }
            }
        }
        String::from_utf8_lossy(&text[start..]).into_owned()
    }
}

/// Everything the reader thread and the callers share.
#[derive(Debug)]
pub(crate) struct LogState {
    parser: LineParser,
    /// Every byte received, unchanged.
    pub raw: Vec<u8>,
    /// Per-source views, indexed by [`Source::index`].
    pub views: [View; 4],
    /// Set when the connection ended, with the reason.
    pub closed: Option<String>,
    /// Copy of the raw stream on disk, if requested.
    file: Option<File>,
    /// The first error writing `file` (the copy is abandoned after it).
    pub file_error: Option<String>,
}

impl LogState {
    pub fn new(file: Option<File>) -> LogState {
        LogState {
            parser: LineParser::new(),
            raw: Vec::new(),
            views: Default::default(),
            closed: None,
            file,
            file_error: None,
        }
    }

    /// Appends bytes from the wire.
    pub fn ingest(&mut self, bytes: &[u8], now: Instant) {
        self.raw.extend_from_slice(bytes);
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(bytes) {
                self.file_error = Some(e.to_string());
                self.file = None;
            }
        }
        let views = &mut self.views;
        self.parser.feed(bytes, |src, b| {
            let v = &mut views[src.index()];
            v.text.extend_from_slice(b);
            v.last_rx = Some(now);
        });
    }

    pub fn view(&self, src: Source) -> &View {
        &self.views[src.index()]
    }

    pub fn view_mut(&mut self, src: Source) -> &mut View {
        &mut self.views[src.index()]
    }

    pub fn parse_stats(&self) -> ParseStats {
        self.parser.stats()
    }

    /// Looks for `pattern` after the cursor of `src`; on success moves the cursor past the match.
    pub fn take(&mut self, src: Source, pattern: &Pattern) -> Option<Match> {
        let view = &mut self.views[src.index()];
        let found = pattern.find_at(&view.text, view.cursor)?;
        let end = found.end;
        let m = Match::new(src, &view.text, view.cursor, found);
        view.cursor = end;
        Some(m)
    }
}

/// The log plus the condition variable signalled on every change.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<LogState>,
    pub changed: Condvar,
}

impl Shared {
    pub fn new(file: Option<File>) -> Shared {
        Shared {
            state: Mutex::new(LogState::new(file)),
            changed: Condvar::new(),
        }
    }

    /// Locks the state. A panic while holding the lock cannot leave it half-updated in a way that
    /// matters to readers (appends only), so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(bytes: &[u8]) -> LogState {
        let mut s = LogState::new(None);
        s.ingest(bytes, Instant::now());
        s
    }

    #[test]
    fn take_moves_the_cursor_past_the_match() {
        let mut s = state_with(b"[ctl] one\n[ctl] two\n[ctl] one\n");
        let p = Pattern::from("one");
        let m1 = s.take(Source::Ctl, &p).expect("first");
        assert_eq!(m1.before, "");
        let m2 = s.take(Source::Ctl, &p).expect("second");
        assert_eq!(m2.before, "\ntwo\n");
        assert!(s.take(Source::Ctl, &p).is_none(), "only two matches");
    }

    #[test]
    fn cursors_are_independent_per_source() {
        let mut s = state_with(b"[ctl] x\n[llm] x\n");
        assert!(s.take(Source::Ctl, &Pattern::from("x")).is_some());
        assert!(s.take(Source::Ctl, &Pattern::from("x")).is_none());
        assert!(s.take(Source::Llm, &Pattern::from("x")).is_some());
    }

    #[test]
    fn excise_keeps_cursor_on_the_same_byte() {
        let mut v = View {
            text: b"0123456789".to_vec(),
            cursor: 8,
            ..View::default()
        };
        v.excise(2, 5);
        assert_eq!(v.text, b"0156789");
        assert_eq!(v.cursor, 5);
        assert_eq!(v.excised, 3);
        v.cursor = 3;
        v.excise(2, 6);
        assert_eq!(v.text, b"019");
        assert_eq!(
            v.cursor, 2,
            "cursor inside the removed range moves to its start"
        );
        v.excise(5, 9);
        assert_eq!(v.text, b"019", "out-of-range excise changes nothing");
    }

    #[test]
    fn tail_returns_last_lines() {
        let v = View {
            text: b"a\nb\nc\nd\n".to_vec(),
            ..View::default()
        };
        assert_eq!(v.tail(2), "c\nd\n");
        assert_eq!(v.tail(10), "a\nb\nc\nd\n");
        assert_eq!(v.tail(0), "");
        let p = View {
            text: b"a\nb\nctl> ".to_vec(),
            ..View::default()
        };
        assert_eq!(p.tail(2), "b\nctl> ");
        assert_eq!(View::default().tail(3), "");
    }

    #[test]
    fn raw_log_is_kept_unchanged() {
        let s = state_with(b"[hv] a\r\nzz\n");
        assert_eq!(s.raw, b"[hv] a\r\nzz\n");
        assert_eq!(s.view(Source::Hv).text, b"a\n");
        assert_eq!(s.view(Source::Untagged).text, b"zz\n");
    }
}
