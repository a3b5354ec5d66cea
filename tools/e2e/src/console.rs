//! A connection to the multiplexed UART: a reader thread that fills the shared log, per-source
//! `expect` with cursors, and input with focus tracking.

use crate::error::{Error, Result};
use crate::escape::{EscapeTracker, CTRL_A};
use crate::log::{LogState, Shared};
use crate::parse::ParseStats;
use crate::pattern::{split_tolerant_regex, Match, Pattern};
use crate::source::Source;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the harness gets past the banner and history replay the hypervisor prints when the input
/// focus changes. The replay repeats old output of the newly focused console under its own tag;
/// left alone it would look like fresh output and satisfy `expect` with stale text.
#[derive(Clone, Debug)]
pub enum FocusSync {
    /// Do nothing: replayed history stays in the view (tests must `mark` themselves).
    None,
    /// Wait until the hypervisor and the target console have been quiet for `quiet` (after at
    /// least one byte from either), at most `max`; then drop from the target's view everything
    /// it received since the switch.
    Settle {
        /// Silence that ends the replay.
        quiet: Duration,
        /// Upper bound on the wait.
        max: Duration,
    },
    /// Wait (at most `timeout`) for `pattern` on `source`, printed by the hypervisor after the
    /// replay; then drop from the target's view everything it received since the switch.
    Marker {
        /// Where the marker appears.
        source: Source,
        /// The marker (a regex).
        pattern: String,
        /// Upper bound on the wait.
        timeout: Duration,
    },
}

/// Tuning of a console connection.
#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    /// Input is written in chunks of at most this many bytes...
    pub type_chunk: usize,
    /// ...with this pause between chunks, so the UART receive path is not overrun.
    pub type_delay: Duration,
    /// How focus switches are synchronised.
    pub focus_sync: FocusSync,
    /// How many lines of a source a timeout error shows.
    pub tail_lines: usize,
    /// The console that has input focus when the connection starts.
    pub initial_focus: Source,
    /// Bound on a single blocked write to the socket.
    pub write_timeout: Duration,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            type_chunk: 8,
            type_delay: Duration::from_millis(3),
            focus_sync: FocusSync::Marker {
                source: Source::Hv,
                pattern: r"--- (monitor|ctl|llm) live ---".into(),
                timeout: Duration::from_secs(10),
            },
            tail_lines: 80,
            initial_focus: Source::Ctl,
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Counters of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleStats {
    /// Bytes received in total.
    pub bytes_received: u64,
    /// Physical-line counters.
    pub parse: ParseStats,
    /// Bytes removed from each view as focus-switch replays, by [`Source::index`].
    pub replay_bytes_dropped: [u64; 4],
    /// Why the connection ended, if it has.
    pub closed: Option<String>,
    /// The first error writing the on-disk log copy, if any.
    pub log_file_error: Option<String>,
    /// Waits that failed (see [`Console::failed_waits`]).
    pub failed_waits: u64,
}

/// The sending side, behind one lock so focus switches and lines never interleave.
struct Writer {
    stream: UnixStream,
    focus: Option<Source>,
    escape: EscapeTracker,
}

/// A live connection to the console socket.
pub struct Console {
    shared: Arc<Shared>,
    writer: Mutex<Writer>,
    reader: Option<JoinHandle<()>>,
    opts: ConsoleOptions,
    log_path: Option<PathBuf>,
    failed_waits: AtomicU64,
}

impl Console {
    /// Connects to the UNIX socket at `path`. `log_file`, if given, receives a copy of every byte.
    pub fn connect(path: &Path, opts: ConsoleOptions, log_file: Option<File>) -> Result<Console> {
        let stream = UnixStream::connect(path)
            .map_err(|e| Error::io(format!("connecting to console {}", path.display()), e))?;
        Console::from_stream(stream, opts, log_file)
    }

    /// Wraps an already connected stream and starts the reader thread.
    pub fn from_stream(
        stream: UnixStream,
        opts: ConsoleOptions,
        log_file: Option<File>,
    ) -> Result<Console> {
        if opts.type_chunk == 0 {
            return Err(Error::BadInput("type_chunk must be at least 1".into()));
        }
        if opts.initial_focus == Source::Untagged {
            return Err(Error::BadInput(
                "the untagged stream cannot have focus".into(),
            ));
        }
        stream
            .set_write_timeout(Some(opts.write_timeout))
            .map_err(|e| Error::io("setting console write timeout", e))?;
        let read_half = stream
            .try_clone()
            .map_err(|e| Error::io("cloning console socket", e))?;
        let shared = Arc::new(Shared::new(log_file));
        let reader_shared = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("sis-console-reader".into())
            .spawn(move || read_loop(read_half, &reader_shared))
            .map_err(|e| Error::io("spawning console reader thread", e))?;
        Ok(Console {
            shared,
            writer: Mutex::new(Writer {
                stream,
                focus: Some(opts.initial_focus),
                escape: EscapeTracker::default(),
            }),
            reader: Some(reader),
            opts,
            log_path: None,
            failed_waits: AtomicU64::new(0),
        })
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tail_of(&self, st: &LogState, src: Source) -> String {
        st.view(src).tail(self.opts.tail_lines)
    }

    /// Waits up to `timeout` for `pattern` in `src`'s output after its cursor (the end of the
    /// previous match, or the last [`mark`](Self::mark)); on success the cursor moves past the
    /// match. Partial lines (prompts) are matched as they arrive.
    pub fn expect(
        &self,
        src: Source,
        pattern: impl Into<Pattern>,
        timeout: Duration,
    ) -> Result<Match> {
        let pattern = pattern.into();
        let start = Instant::now();
        let deadline = start + timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(m) = st.take(src, &pattern) {
                return Ok(m);
            }
            if let Some(reason) = &st.closed {
                return Err(self.failed(Error::Closed {
                    source: src,
                    expected: pattern.to_string(),
                    reason: reason.clone(),
                    tail: self.tail_of(&st, src),
                    log: self.log_path.clone(),
                }));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.failed(Error::Timeout {
                    source: src,
                    expected: pattern.to_string(),
                    waited: now - start,
                    tail: self.tail_of(&st, src),
                    log: self.log_path.clone(),
                }));
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// [`expect`](Self::expect) with a regular expression.
    pub fn expect_regex(&self, src: Source, expr: &str, timeout: Duration) -> Result<Match> {
        self.expect(src, Pattern::regex(expr)?, timeout)
    }

    /// Waits for `src`'s prompt at the start of a line.
    pub fn wait_prompt(&self, src: Source, timeout: Duration) -> Result<Match> {
        self.expect(src, Pattern::prompt(src)?, timeout)
    }

    /// Moves `src`'s cursor to the end of what has arrived, so later matches only see new output.
    pub fn mark(&self, src: Source) {
        let mut st = self.shared.lock();
        let v = st.view_mut(src);
        v.cursor = v.text.len();
    }

    /// [`mark`](Self::mark) for every source.
    pub fn mark_all(&self) {
        for s in Source::ALL {
            self.mark(s);
        }
    }

    /// Everything `src` has printed so far (its whole view).
    pub fn text(&self, src: Source) -> String {
        String::from_utf8_lossy(&self.shared.lock().view(src).text).into_owned()
    }

    /// What `src` printed after its cursor (not yet consumed by `expect`).
    pub fn unread(&self, src: Source) -> String {
        let st = self.shared.lock();
        let v = st.view(src);
        String::from_utf8_lossy(&v.text[v.cursor..]).into_owned()
    }

    /// The last `n` lines of `src`.
    pub fn tail(&self, src: Source, n: usize) -> String {
        self.shared.lock().view(src).tail(n)
    }

    /// Every byte received, unchanged.
    pub fn raw_log(&self) -> Vec<u8> {
        self.shared.lock().raw.clone()
    }

    /// Names the on-disk copy of the stream in error messages.
    pub(crate) fn set_log_path(&mut self, path: PathBuf) {
        self.log_path = Some(path);
    }

    /// How many waits on this connection failed (timeouts, closed console, forbidden output).
    pub fn failed_waits(&self) -> u64 {
        self.failed_waits.load(Ordering::Relaxed)
    }

    fn failed(&self, e: Error) -> Error {
        self.failed_waits.fetch_add(1, Ordering::Relaxed);
        e
    }

    /// Checks that `pattern` does not appear in `src`'s output after its cursor during `window`
    /// (the cursor does not move). Fails with [`Error::Unexpected`] as soon as it appears. A closed
    /// console cannot print it any more, so the check then succeeds.
    pub fn expect_absent(
        &self,
        src: Source,
        pattern: impl Into<Pattern>,
        window: Duration,
    ) -> Result<()> {
        let pattern = pattern.into();
        let deadline = Instant::now() + window;
        let mut st = self.shared.lock();
        loop {
            let v = st.view(src);
            if let Some(f) = pattern.find_at(&v.text, v.cursor) {
                let matched = String::from_utf8_lossy(&v.text[f.start..f.end]).into_owned();
                return Err(self.failed(Error::Unexpected {
                    source: src,
                    pattern: pattern.to_string(),
                    matched,
                    tail: self.tail_of(&st, src),
                    log: self.log_path.clone(),
                }));
            }
            let now = Instant::now();
            if st.closed.is_some() || now >= deadline {
                return Ok(());
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Counters of the connection.
    pub fn stats(&self) -> ConsoleStats {
        let st = self.shared.lock();
        ConsoleStats {
            bytes_received: st.raw.len() as u64,
            parse: st.parse_stats(),
            replay_bytes_dropped: std::array::from_fn(|i| st.views[i].excised),
            closed: st.closed.clone(),
            log_file_error: st.file_error.clone(),
            failed_waits: self.failed_waits(),
        }
    }

    /// The console that has input focus, as tracked from everything sent. `None` only if the
    /// tracking was lost (never, unless bytes are sent around this type).
    pub fn focused(&self) -> Option<Source> {
        self.lock_writer().focus
    }

    /// Sends bytes unchanged (in chunks with the typing delay). Ctrl-A sequences in `bytes` update
    /// the tracked focus, but no replay synchronisation is done; use [`focus`](Self::focus) for
    /// that.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<()> {
        let mut w = self.lock_writer();
        self.write_locked(&mut w, bytes)
    }

    fn write_locked(&self, w: &mut Writer, bytes: &[u8]) -> Result<()> {
        for (i, chunk) in bytes.chunks(self.opts.type_chunk).enumerate() {
            if i > 0 && !self.opts.type_delay.is_zero() {
                std::thread::sleep(self.opts.type_delay);
            }
            w.stream
                .write_all(chunk)
                .map_err(|e| Error::io("writing to the console", e))?;
            for &b in chunk {
                if let Some(src) = w.escape.feed(b) {
                    w.focus = Some(src);
                }
            }
        }
        w.stream
            .flush()
            .map_err(|e| Error::io("flushing the console", e))
    }

    /// Gives `src` the input focus (Ctrl-A + digit) unless it already has it, then waits past the
    /// hypervisor's banner and history replay as configured by [`FocusSync`].
    pub fn focus(&self, src: Source) -> Result<()> {
        let key = src
            .focus_key()
            .ok_or_else(|| Error::BadInput(format!("{src} cannot be focused")))?;
        let mut w = self.lock_writer();
        if w.focus == Some(src) && !w.escape.in_escape() {
            return Ok(());
        }
        let (before_len, marker_from, switched_at) = {
            let st = self.shared.lock();
            let marker_from = match &self.opts.focus_sync {
                FocusSync::Marker { source, .. } => st.view(*source).text.len(),
                _ => 0,
            };
            (st.view(src).text.len(), marker_from, Instant::now())
        };
        // After a dangling Ctrl-A (from send_raw) the key alone completes the switch; another
        // Ctrl-A would be taken as a literal.
        let seq: &[u8] = if w.escape.in_escape() {
            &[key]
        } else {
            &[CTRL_A, key]
        };
        self.write_locked(&mut w, seq)?;
        self.sync_after_switch(src, before_len, marker_from, switched_at)
    }

    /// Waits past the banner and replay. `before_len` is the target's view length and
    /// `marker_from` the marker source's view length, both taken before the switch was sent.
    fn sync_after_switch(
        &self,
        src: Source,
        before_len: usize,
        marker_from: usize,
        since: Instant,
    ) -> Result<()> {
        match &self.opts.focus_sync {
            FocusSync::None => Ok(()),
            FocusSync::Settle { quiet, max } => {
                let deadline = since + *max;
                let mut st = self.shared.lock();
                loop {
                    let now = Instant::now();
                    let last = [src, Source::Hv]
                        .iter()
                        .filter_map(|s| st.view(*s).last_rx)
                        .filter(|t| *t >= since)
                        .max();
                    let settled = last.is_some_and(|t| now.duration_since(t) >= *quiet);
                    if settled || now >= deadline || st.closed.is_some() {
                        let end = st.view(src).text.len();
                        st.view_mut(src).excise(before_len, end);
                        return Ok(());
                    }
                    let wake = match last {
                        Some(t) => (t + *quiet).min(deadline),
                        None => deadline,
                    };
                    st = self
                        .shared
                        .changed
                        .wait_timeout(st, wake.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
            FocusSync::Marker {
                source,
                pattern,
                timeout,
            } => {
                let pattern = Pattern::regex(pattern)?;
                let start = Instant::now();
                let deadline = start + *timeout;
                let mut st = self.shared.lock();
                // Search from where the marker source stood before the switch, without moving
                // its cursor: the marker is harness business, not test output.
                let from = marker_from;
                loop {
                    if pattern.find_at(&st.view(*source).text, from).is_some() {
                        let end = st.view(src).text.len();
                        st.view_mut(src).excise(before_len, end);
                        return Ok(());
                    }
                    let now = Instant::now();
                    if st.closed.is_some() || now >= deadline {
                        return Err(self.failed(Error::Timeout {
                            source: *source,
                            expected: format!("focus-switch marker {pattern} (switching to {src})"),
                            waited: now - start,
                            tail: self.tail_of(&st, *source),
                            log: self.log_path.clone(),
                        }));
                    }
                    st = self
                        .shared
                        .changed
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Focuses `src` if needed and types `line` followed by `\r`. A line with control characters
    /// (including `\r`, `\n` and Ctrl-A) is refused and nothing is sent; use
    /// [`send_raw`](Self::send_raw) for those.
    pub fn send_line(&self, src: Source, line: &str) -> Result<()> {
        if let Some((i, c)) = line.char_indices().find(|(_, c)| c.is_control()) {
            return Err(Error::BadInput(format!(
                "line {line:?} has control character {:#04x} at byte {i}; use send_raw",
                u32::from(c)
            )));
        }
        self.focus(src)?;
        let mut w = self.lock_writer();
        if w.focus != Some(src) {
            return Err(Error::BadInput(format!(
                "focus moved to {:?} before the line for {src} was sent",
                w.focus
            )));
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\r');
        self.write_locked(&mut w, &bytes)?;
        if src == Source::Hv {
            if let Some(target) = monitor_switch_target(line) {
                // The monitor moves the input focus itself (without a history replay).
                w.focus = Some(target);
            }
        }
        Ok(())
    }

    /// Tells the harness that the focus is now `src` because of something it could not see
    /// (bytes written around this connection). Nothing is sent.
    pub fn assume_focus(&self, src: Source) -> Result<()> {
        if src.focus_key().is_none() {
            return Err(Error::BadInput(format!("{src} cannot be focused")));
        }
        self.lock_writer().focus = Some(src);
        Ok(())
    }

    /// Runs a shell command on `src`: focuses it, types `cmd`, waits for the echoed command and
    /// then for the next prompt, and returns the output between them. One deadline covers it all.
    /// Line breaks that interruptions by other consoles insert into the echo or the prompt are
    /// tolerated (they stay in the returned output if they fall inside it).
    pub fn run(&self, src: Source, cmd: &str, timeout: Duration) -> Result<String> {
        let prompt = Pattern::prompt(src)?;
        let deadline = Instant::now() + timeout;
        self.focus(src)?;
        self.mark(src);
        self.send_line(src, cmd)?;
        // The echo, then the newline of the submitted line (possibly after an inserted one).
        let echo = if cmd.is_empty() {
            Pattern::from("\n")
        } else {
            Pattern::regex(&format!("{}\n?\n", split_tolerant_regex(cmd)))?
        };
        self.expect(
            src,
            echo,
            deadline.saturating_duration_since(Instant::now()),
        )?;
        let m = self.expect(
            src,
            prompt,
            deadline.saturating_duration_since(Instant::now()),
        )?;
        Ok(m.before)
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Waits (bounded) until the connection ends, for example after QEMU was told to quit.
    pub fn wait_closed(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        while st.closed.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    source: Source::Untagged,
                    expected: "the console to close".into(),
                    waited: timeout,
                    tail: st.view(Source::Untagged).tail(self.opts.tail_lines),
                    log: self.log_path.clone(),
                });
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        // Unblocks the reader thread's read().
        let _ = self.lock_writer().stream.shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

/// The console a monitor `switch <vm|hv>` line moves the focus to, if it is one.
fn monitor_switch_target(line: &str) -> Option<Source> {
    let mut words = line.split_ascii_whitespace();
    if words.next() != Some("switch") {
        return None;
    }
    let target = match words.next()? {
        "hv" | "monitor" => Source::Hv,
        "ctl" => Source::Ctl,
        "llm" => Source::Llm,
        _ => return None,
    };
    words.next().is_none().then_some(target)
}

fn read_loop(mut stream: UnixStream, shared: &Shared) {
    let mut buf = [0u8; 4096];
    let reason = loop {
        match stream.read(&mut buf) {
            Ok(0) => break "end of stream".to_string(),
            Ok(n) => {
                shared.lock().ingest(&buf[..n], Instant::now());
                shared.changed.notify_all();
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break format!("read error: {e}"),
        }
    };
    shared.lock().closed = Some(reason);
    shared.changed.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_switch_lines_are_recognised() {
        assert_eq!(monitor_switch_target("switch llm"), Some(Source::Llm));
        assert_eq!(monitor_switch_target("  switch   ctl "), Some(Source::Ctl));
        assert_eq!(monitor_switch_target("switch monitor"), Some(Source::Hv));
        assert_eq!(monitor_switch_target("switch hv"), Some(Source::Hv));
        assert_eq!(monitor_switch_target("switch nosuch"), None);
        assert_eq!(monitor_switch_target("switch llm now"), None);
        assert_eq!(monitor_switch_target("switch"), None);
        assert_eq!(monitor_switch_target("vms"), None);
    }
}
