//! Tests of the harness against a system whose console is the REAL console multiplexer (the
//! hypervisor library's `console::Console`: tags, whole lines, held partial lines, sanitising,
//! focus switches with banner, history replay and live marker) and monitor line editor and
//! parser, behind fake guests and a fake monitor (each a tiny shell) on a UNIX socket; for the
//! process tests, the same behind a fake QEMU (started paused, resumed over QMP). No QEMU is
//! needed.

use hypervisor::console::{Console as Mux, Input, Target, IDLE_NS};
use hypervisor::monitor::{self, Edit, LineEditor};
use serde_json::{json, Value};
use sis_e2e::{ConsoleOptions, Error, FocusSync, Options, Sis, Source, CTRL_A};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------------------------
// The system: the real multiplexer, fake guests and monitor.
// ---------------------------------------------------------------------------------------------

const HV: usize = 0;
const CTL: usize = 1;
const LLM: usize = 2;

/// Console `i` (0 = monitor, then the VMs in table order) as the multiplexer's target.
fn target(i: usize) -> Target {
    if i == HV {
        Target::Monitor
    } else {
        Target::Vm(i - 1)
    }
}

fn index(t: Target) -> usize {
    match t {
        Target::Monitor => HV,
        Target::Vm(id) => id + 1,
    }
}

/// The real multiplexer writing to the socket, with a clock: nanoseconds since the start, plus
/// the time the fake skipped ([`System::idle`]).
struct System {
    out: UnixStream,
    mux: Mux,
    start: Instant,
    skipped: u64,
}

impl System {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64 + self.skipped
    }

    /// Runs `f` with a sink collecting the multiplexer's output, then sends it.
    fn emit(&mut self, f: impl FnOnce(&mut Mux, u64, &mut dyn FnMut(u8))) {
        let mut wire = Vec::new();
        let now = self.now();
        f(&mut self.mux, now, &mut |b| wire.push(b));
        // The peer may have gone; the fake just stops talking then.
        let _ = self.out.write_all(&wire);
    }

    /// Console `src` prints `text`: a guest through the sanitiser and line assembly, the monitor
    /// as the hypervisor's own (trusted) output.
    fn say(&mut self, src: usize, text: &str) {
        self.emit(|mux, now, sink| {
            for b in text.bytes() {
                if src == HV {
                    mux.output(Target::Monitor, b, &mut |x| sink(x));
                } else {
                    mux.guest_output(target(src), b, now, &mut |x| sink(x));
                }
            }
        });
    }

    /// Writes the guest lines idle long enough (what the hypervisor's idle timer does).
    fn flush_idle(&mut self) {
        self.emit(|mux, now, sink| mux.flush_idle(now, &mut |x| sink(x)));
    }

    /// As if every console had been quiet for the idle time: held prompts come out.
    fn idle(&mut self) {
        self.skipped += IDLE_NS;
        self.flush_idle();
    }

    /// The monitor's prompt on a line of its own (as the hypervisor prints it).
    fn monitor_prompt(&mut self) {
        self.emit(|mux, _, sink| {
            mux.end_line(&mut |x| sink(x));
            mux.write_str(Target::Monitor, monitor::PROMPT, &mut |x| sink(x));
        });
    }
}

/// What the fake saw, for assertions.
#[derive(Default)]
struct Seen {
    /// Every input byte.
    input: Vec<u8>,
    /// Commands executed, with the console they were typed on.
    commands: Vec<(usize, String)>,
}

const NAMES: [&str; 3] = ["hv", "ctl", "llm"];

fn prompt(sys: &Mutex<System>, src: usize) {
    if src == HV {
        sys.lock().unwrap().monitor_prompt();
    } else {
        sys.lock().unwrap().say(src, &format!("{}> ", NAMES[src]));
    }
}

/// The fake shells' commands (the monitor's `switch` is the real parser's).
fn execute(sys: &Arc<Mutex<System>>, src: usize, line: &str) -> bool {
    if src == HV {
        if let Ok(Some(monitor::Command::Switch(t))) = monitor::parse(line) {
            let mut s = sys.lock().unwrap();
            s.mux.set_focus(t);
            s.say(HV, &format!("console input now goes to {}\n", t.name()));
            return true;
        }
    }
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    match cmd {
        "" => {}
        "echo" => sys.lock().unwrap().say(src, &format!("{rest}\n")),
        "lines" => {
            let n: usize = rest.parse().unwrap_or(0);
            let mut s = sys.lock().unwrap();
            for i in 1..=n {
                s.say(src, &format!("line {i}\n"));
            }
        }
        "slow" => {
            let (ms, text) = rest.split_once(' ').unwrap_or((rest, ""));
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
            sys.lock().unwrap().say(src, &format!("{text}\n"));
        }
        "partial" => {
            let mut s = sys.lock().unwrap();
            s.say(src, "part-");
            s.say(LLM, "interrupt\n");
            s.say(src, "rest\n");
        }
        "noise" => {
            // The LLM console talks by itself while this command prints.
            let n: usize = rest.parse().unwrap_or(0);
            let bg = Arc::clone(sys);
            let h = std::thread::spawn(move || {
                for i in 0..n {
                    bg.lock().unwrap().say(LLM, &format!("tick {i}\n"));
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            for i in 0..n {
                sys.lock().unwrap().say(src, &format!("work {i}\n"));
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = h.join();
        }
        "quit" => return false,
        "chatty" => sys.lock().unwrap().say(src, "toggled\n"),
        _ => sys
            .lock()
            .unwrap()
            .say(src, &format!("unknown command: {cmd}\n")),
    }
    true
}

/// Serves one console connection until the peer leaves or `quit`.
fn serve(stream: UnixStream, seen: Arc<Mutex<Seen>>) {
    let sys = Arc::new(Mutex::new(System {
        out: stream.try_clone().unwrap(),
        mux: Mux::new(),
        start: Instant::now(),
        skipped: 0,
    }));
    {
        let mut s = sys.lock().unwrap();
        let _ = s.out.write_all(b"fake firmware says hello\r\n");
        s.say(HV, "SIS fake hypervisor\n");
        s.say(CTL, "ctl ready\n");
        s.say(LLM, "llm ready\n");
        s.say(CTL, "ctl> ");
        s.say(LLM, "llm> ");
        // The guests' prompts come out once they have been idle, then the monitor's.
        s.idle();
        s.say(HV, "hv> ");
    }
    // The hypervisor's idle timer: held partial lines are written once idle long enough.
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let (sys, stop) = (Arc::clone(&sys), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
                let mut s = sys.lock().unwrap();
                if s.mux.deadline().is_some_and(|d| d <= s.now()) {
                    s.flush_idle();
                }
            }
        })
    };
    serve_input(&sys, stream, &seen);
    stop.store(true, Ordering::Relaxed);
    let _ = timer.join();
}

/// The input side: bytes through the real multiplexer's input decoding to the fake shells.
fn serve_input(sys: &Arc<Mutex<System>>, mut input: UnixStream, seen: &Mutex<Seen>) {
    // When set, the llm console interrupts every third echoed byte.
    let mut chatty = false;
    let mut echoed = 0u64;
    let mut lines: [Vec<u8>; 3] = Default::default();
    let mut editor = LineEditor::new();
    let mut buf = [0u8; 256];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        seen.lock().unwrap().input.extend_from_slice(&buf[..n]);
        for &b in &buf[..n] {
            let action = sys.lock().unwrap().mux.input(b);
            let (src, b) = match action {
                Input::Deliver(t, b) => (index(t), b),
                Input::Switched(t) => {
                    sys.lock()
                        .unwrap()
                        .emit(|mux, _, sink| mux.switch_to(t, &mut |x| sink(x)));
                    if t == Target::Monitor {
                        prompt(sys, HV);
                    }
                    continue;
                }
                Input::BadEscape(k) => {
                    let msg = format!("unknown console key Ctrl-A {:?}\n", k as char);
                    sys.lock().unwrap().say(HV, &msg);
                    continue;
                }
                Input::Nothing => continue,
            };
            // The monitor edits with the hypervisor's line editor; the fake guests echo.
            let submitted = if src == HV {
                match editor.feed(b) {
                    Edit::Echo(c) => {
                        sys.lock().unwrap().say(HV, &(c as char).to_string());
                        None
                    }
                    Edit::Submit => {
                        let mut line = [0u8; monitor::LINE_MAX];
                        let n = editor.take(&mut line);
                        Some(String::from_utf8_lossy(&line[..n]).into_owned())
                    }
                    _ => None,
                }
            } else {
                let mut s = sys.lock().unwrap();
                let now = s.now();
                s.mux.delivered(target(src), now);
                if b == b'\r' {
                    Some(String::from_utf8_lossy(&std::mem::take(&mut lines[src])).into_owned())
                } else {
                    lines[src].push(b);
                    s.say(src, &String::from_utf8_lossy(&[b]));
                    echoed += 1;
                    if chatty && src != LLM && echoed.is_multiple_of(3) {
                        s.say(LLM, &format!("chat {echoed}\n"));
                    }
                    None
                }
            };
            let Some(line) = submitted else { continue };
            sys.lock().unwrap().say(src, "\n");
            seen.lock().unwrap().commands.push((src, line.clone()));
            if line == "chatty" {
                chatty = !chatty;
            }
            if !execute(sys, src, &line) {
                let _ = input.shutdown(std::net::Shutdown::Both);
                return;
            }
            prompt(sys, src);
        }
    }
}

/// A fake system on a socket in its own temporary directory, serving one connection in a thread.
struct Fake {
    _dir: tempfile::TempDir,
    path: PathBuf,
    seen: Arc<Mutex<Seen>>,
    server: Option<JoinHandle<()>>,
}

impl Fake {
    fn start() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = Arc::clone(&seen);
        let server = std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                serve(stream, s);
            }
        });
        Fake {
            _dir: dir,
            path,
            seen,
            server: Some(server),
        }
    }

    fn connect(&self, opts: ConsoleOptions) -> sis_e2e::Console {
        sis_e2e::Console::connect(&self.path, opts, None).unwrap()
    }

    fn input(&self) -> Vec<u8> {
        self.seen.lock().unwrap().input.clone()
    }

    fn commands(&self) -> Vec<(usize, String)> {
        self.seen.lock().unwrap().commands.clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(h) = self.server.take() {
            // The server ends when the console side closes; by now the console has been dropped
            // in every test (declared after the fake).
            let _ = h.join();
        }
    }
}

/// A fast-typing console on a fresh fake, already past the boot prompts.
fn booted() -> (Fake, sis_e2e::Console) {
    let fake = Fake::start();
    let c = fake.connect(ConsoleOptions {
        type_delay: Duration::ZERO,
        ..ConsoleOptions::default()
    });
    for s in Source::TAGGED {
        c.wait_prompt(s, T).unwrap();
    }
    (fake, c)
}

// ---------------------------------------------------------------------------------------------
// Console tests.
// ---------------------------------------------------------------------------------------------

#[test]
fn boot_output_is_split_by_source() {
    let (_fake, c) = booted();
    assert_eq!(c.text(Source::Hv), "SIS fake hypervisor\nhv> ");
    // The llm prompt ended ctl's prompt line (written early, as the hypervisor writes the
    // focused console's partial line): the break stays in ctl's view, and prompts are still
    // found at line starts.
    assert_eq!(c.text(Source::Ctl), "ctl ready\nctl> \n");
    assert!(c.text(Source::Llm).starts_with("llm ready\nllm> "));
    c.expect(Source::Untagged, "fake firmware says hello\n", T)
        .unwrap();
    let st = c.stats();
    assert!(st.bytes_received > 0);
    assert_eq!(st.closed, None);
}

#[test]
fn run_returns_exactly_the_command_output() {
    let (fake, c) = booted();
    let out = c.run(Source::Ctl, "echo hello world", T).unwrap();
    assert_eq!(out, "hello world\n");
    let out = c.run(Source::Ctl, "lines 3", T).unwrap();
    assert_eq!(out, "line 1\nline 2\nline 3\n");
    let out = c.run(Source::Ctl, "", T).unwrap();
    assert_eq!(out, "");
    assert_eq!(
        fake.commands(),
        vec![
            (CTL, "echo hello world".to_string()),
            (CTL, "lines 3".to_string()),
            (CTL, String::new()),
        ]
    );
}

#[test]
fn run_switches_focus_and_tracks_it() {
    let (fake, c) = booted();
    assert_eq!(c.focused(), Some(Source::Ctl));
    assert_eq!(
        c.run(Source::Llm, "echo from llm", T).unwrap(),
        "from llm\n"
    );
    assert_eq!(c.focused(), Some(Source::Llm));
    assert_eq!(c.run(Source::Hv, "echo from hv", T).unwrap(), "from hv\n");
    assert_eq!(c.focused(), Some(Source::Hv));
    // Same focus again: no escape sequence is sent.
    assert_eq!(c.run(Source::Hv, "echo again", T).unwrap(), "again\n");
    assert_eq!(c.run(Source::Ctl, "echo back", T).unwrap(), "back\n");
    let input = fake.input();
    let escapes: Vec<u8> = input
        .windows(2)
        .filter(|w| w[0] == CTRL_A)
        .map(|w| w[1])
        .collect();
    assert_eq!(escapes, b"201");
    assert_eq!(
        fake.commands(),
        vec![
            (LLM, "echo from llm".to_string()),
            (HV, "echo from hv".to_string()),
            (HV, "echo again".to_string()),
            (CTL, "echo back".to_string()),
        ]
    );
}

#[test]
fn history_replay_after_a_switch_is_not_new_output() {
    let (_fake, c) = booted();
    c.run(Source::Ctl, "echo marker-one", T).unwrap();
    c.run(Source::Llm, "echo x", T).unwrap();
    // Switching back to ctl replays its history, which contains "marker-one" again.
    c.focus(Source::Ctl).unwrap();
    let e = c.expect(Source::Ctl, "marker-one", SHORT).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(c.stats().replay_bytes_dropped[Source::Ctl.index()] > 0);
    // The view reads as if no replay had happened: output, then the prompt, then new echo.
    assert_eq!(c.run(Source::Ctl, "echo two", T).unwrap(), "two\n");
    let text = c.text(Source::Ctl);
    assert_eq!(text.matches("marker-one").count(), 2, "{text}"); // echo + output, no replay
}

#[test]
fn without_focus_sync_the_replay_is_visible() {
    let fake = Fake::start();
    let c = fake.connect(ConsoleOptions {
        type_delay: Duration::ZERO,
        focus_sync: FocusSync::None,
        ..ConsoleOptions::default()
    });
    c.wait_prompt(Source::Ctl, T).unwrap();
    c.expect(Source::Ctl, "ctl ready", SHORT).unwrap_err();
    c.focus(Source::Ctl).unwrap(); // already focused: nothing sent, nothing replayed
    c.focus(Source::Llm).unwrap();
    c.focus(Source::Ctl).unwrap();
    // The replayed boot line shows up again after the cursor.
    c.expect(Source::Ctl, "ctl ready", T).unwrap();
}

#[test]
fn marker_focus_sync_waits_for_the_end_of_the_replay() {
    let fake = Fake::start();
    // The multiplexer ends its replay with a `--- <name> live ---` line.
    let c = fake.connect(ConsoleOptions {
        type_delay: Duration::ZERO,
        focus_sync: FocusSync::Marker {
            source: Source::Hv,
            pattern: r"--- llm live ---".into(),
            timeout: T,
        },
        ..ConsoleOptions::default()
    });
    c.wait_prompt(Source::Llm, T).unwrap();
    c.expect(Source::Hv, "hv> ", T).unwrap();
    let start = Instant::now();
    c.focus(Source::Llm).unwrap();
    // No quiet period is needed with a marker.
    assert!(start.elapsed() < Duration::from_millis(1000));
    assert!(c.stats().replay_bytes_dropped[Source::Llm.index()] > 0);
    c.expect(Source::Llm, "llm ready", SHORT).unwrap_err();
    assert_eq!(c.run(Source::Llm, "echo m", T).unwrap(), "m\n");
    // The banner is the monitor's output and stays visible there.
    c.expect(
        Source::Hv,
        "--- console: llm (Ctrl-A 0 monitor, 1 ctl, 2 llm) ---",
        T,
    )
    .unwrap();
}

#[test]
fn a_marker_that_never_comes_is_a_bounded_error() {
    let fake = Fake::start();
    let c = fake.connect(ConsoleOptions {
        focus_sync: FocusSync::Marker {
            source: Source::Hv,
            pattern: "no such banner".into(),
            timeout: SHORT,
        },
        ..ConsoleOptions::default()
    });
    let e = c.focus(Source::Llm).unwrap_err();
    assert!(e.to_string().contains("focus-switch marker"), "{e}");
}

#[test]
fn expect_only_sees_output_after_the_previous_match() {
    let fake = Fake::start();
    let c = fake.connect(ConsoleOptions::default());
    c.wait_prompt(Source::Ctl, T).unwrap();
    c.send_line(Source::Ctl, "lines 3").unwrap();
    let m = c.expect(Source::Ctl, "line 1\n", T).unwrap();
    // The boot prompt's line was ended by llm's output: the echo starts a new line.
    assert_eq!(m.before, "\nlines 3\n");
    let m = c.expect(Source::Ctl, "line 3", T).unwrap();
    assert_eq!(m.before, "line 2\n");
    let e = c.expect(Source::Ctl, "line 1", SHORT).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    // Cursors are per source: llm's boot line is still unread.
    c.expect(Source::Llm, "llm ready", SHORT).unwrap();
}

#[test]
fn mark_skips_what_has_arrived() {
    let (_fake, c) = booted();
    c.send_line(Source::Ctl, "echo old").unwrap();
    c.wait_prompt(Source::Ctl, T).unwrap();
    c.mark(Source::Ctl);
    assert_eq!(c.unread(Source::Ctl), "");
    c.expect(Source::Ctl, "old", SHORT).unwrap_err();
    c.send_line(Source::Ctl, "echo new").unwrap();
    c.expect(Source::Ctl, "new\n", T).unwrap();
}

#[test]
fn regex_expect_returns_groups() {
    let (_fake, c) = booted();
    c.send_line(Source::Ctl, "echo OK TOK id=7 n=3 done=1")
        .unwrap();
    let m = c
        .expect_regex(
            Source::Ctl,
            r"(?m)^OK TOK id=(\d+) n=(?P<n>\d+) done=(\d)$",
            T,
        )
        .unwrap();
    assert_eq!(m.group(1), Some("7"));
    assert_eq!(m.name("n"), Some("3"));
    assert_eq!(m.group(3), Some("1"));
    let e = c.expect_regex(Source::Ctl, "(", SHORT).unwrap_err();
    assert!(matches!(e, Error::BadPattern(_)), "{e}");
}

#[test]
fn timeout_error_names_the_wait_and_shows_the_tail() {
    let (_fake, c) = booted();
    c.run(Source::Ctl, "lines 100", T).unwrap();
    let start = Instant::now();
    let e = c.expect(Source::Ctl, "never printed", SHORT).unwrap_err();
    let waited = start.elapsed();
    assert!(waited >= SHORT && waited < SHORT * 4, "{waited:?}");
    let msg = format!("{e:?}");
    assert!(
        msg.contains("waiting for text \"never printed\" on ctl"),
        "{msg}"
    );
    assert!(msg.contains("  | line 100\n"), "{msg}");
    assert!(msg.contains("  | line 30\n"), "{msg}");
    assert!(
        !msg.contains("  | line 19\n"),
        "only the last 80 lines: {msg}"
    );
    assert!(msg.trim_end().ends_with("| ctl>"), "{msg}");
}

#[test]
fn late_output_is_caught_and_short_waits_fail() {
    let (_fake, c) = booted();
    c.send_line(Source::Ctl, "slow 400 finally").unwrap();
    // The echo contains the word too; only a line of its own is the output.
    let output = r"(?m)^finally\n";
    c.expect_regex(Source::Ctl, output, Duration::from_millis(50))
        .unwrap_err();
    let m = c.expect_regex(Source::Ctl, output, T).unwrap();
    assert_eq!(m.text, "finally\n");
}

#[test]
fn an_interrupted_partial_line_stays_in_its_own_view() {
    let (_fake, c) = booted();
    let out = c.run(Source::Ctl, "partial", T).unwrap();
    // The interruption ends the physical line (nothing marks it): the break is in the view, the
    // other console's text is not.
    assert_eq!(out, "part-\nrest\n");
    c.expect(Source::Llm, "interrupt\n", T).unwrap();
    assert!(!c.text(Source::Ctl).contains("interrupt"));
}

#[test]
fn run_tolerates_an_echo_split_by_another_console() {
    let (_fake, c) = booted();
    c.run(Source::Ctl, "chatty", T).unwrap();
    for cmd in ["echo split me please", "lines 2", "echo x"] {
        let out = c.run(Source::Ctl, cmd, T).unwrap();
        let want = match cmd {
            "lines 2" => "line 1\nline 2\n",
            "echo x" => "x\n",
            _ => "split me please\n",
        };
        assert_eq!(out, want, "{cmd}");
    }
    // The echo really was split on the wire, and `run` found it anyway.
    let raw = String::from_utf8_lossy(&c.raw_log()).into_owned();
    assert!(!raw.contains("echo split me please"), "{raw}");
    c.expect(Source::Llm, "chat ", T).unwrap();
}

#[test]
fn concurrent_sources_keep_their_order() {
    let (_fake, c) = booted();
    c.run(Source::Ctl, "noise 60", T).unwrap();
    let work: Vec<String> = c
        .text(Source::Ctl)
        .lines()
        .filter(|l| l.starts_with("work "))
        .map(str::to_owned)
        .collect();
    // The first tick continues llm's prompt line (`llm> tick 0`).
    let ticks: Vec<String> = c
        .text(Source::Llm)
        .lines()
        .map(|l| l.trim_start_matches("llm> "))
        .filter(|l| l.starts_with("tick "))
        .map(str::to_owned)
        .collect();
    let want = |p: &str| (0..60).map(|i| format!("{p} {i}")).collect::<Vec<_>>();
    assert_eq!(work, want("work"));
    assert_eq!(ticks, want("tick"));
}

#[test]
fn lines_with_control_characters_are_refused_unsent() {
    let (fake, c) = booted();
    let before = fake.input().len();
    for bad in ["a\rb", "a\nb", "x\u{1}2", "\u{1b}[A"] {
        let e = c.send_line(Source::Llm, bad).unwrap_err();
        assert!(matches!(e, Error::BadInput(_)), "{e}");
    }
    let e = c.focus(Source::Untagged).unwrap_err();
    assert!(matches!(e, Error::BadInput(_)), "{e}");
    assert!(c.wait_prompt(Source::Untagged, SHORT).is_err());
    assert_eq!(fake.input().len(), before, "nothing may be sent");
    assert_eq!(c.focused(), Some(Source::Ctl), "focus unchanged");
}

#[test]
fn send_raw_escapes_update_the_tracked_focus() {
    let (fake, c) = booted();
    c.send_raw(&[CTRL_A, b'2']).unwrap();
    assert_eq!(c.focused(), Some(Source::Llm));
    // Ctrl-A Ctrl-A is a literal for the focused console, not a switch.
    c.send_raw(&[CTRL_A, CTRL_A]).unwrap();
    assert_eq!(c.focused(), Some(Source::Llm));
    c.send_raw(b"\r").unwrap();
    c.expect(Source::Llm, "unknown command: ^A", T).unwrap();
    // A dangling Ctrl-A: focus() completes it with the key alone.
    c.send_raw(&[CTRL_A]).unwrap();
    c.focus(Source::Hv).unwrap();
    assert_eq!(c.focused(), Some(Source::Hv));
    assert_eq!(c.run(Source::Hv, "echo hv here", T).unwrap(), "hv here\n");
    let input = fake.input();
    assert!(input.ends_with(b"\x010echo hv here\r"), "{input:?}");
    assert_eq!(fake.commands().last().unwrap().0, HV);
}

#[test]
fn typing_is_chunked_with_a_delay() {
    let fake = Fake::start();
    let c = fake.connect(ConsoleOptions {
        type_chunk: 4,
        type_delay: Duration::from_millis(25),
        ..ConsoleOptions::default()
    });
    c.wait_prompt(Source::Ctl, T).unwrap();
    let start = Instant::now();
    c.send_line(Source::Ctl, "echo 0123456789").unwrap(); // 16 bytes with \r: 4 chunks
    assert!(
        start.elapsed() >= Duration::from_millis(75),
        "{:?}",
        start.elapsed()
    );
    c.expect_regex(Source::Ctl, r"(?m)^0123456789\n", T)
        .unwrap();
    c.wait_prompt(Source::Ctl, T).unwrap();
    assert_eq!(fake.commands(), vec![(CTL, "echo 0123456789".to_string())]);
}

#[test]
fn a_closed_console_fails_waits_at_once() {
    let (_fake, c) = booted();
    c.send_line(Source::Ctl, "quit").unwrap();
    let start = Instant::now();
    let e = c
        .expect(Source::Ctl, "never", Duration::from_secs(30))
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(e, Error::Closed { .. }), "{e}");
    assert!(e.to_string().contains("end of stream"), "{e}");
    assert!(c.is_closed());
    c.wait_closed(SHORT).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The fake as a QEMU process, started through a fake run script.
// ---------------------------------------------------------------------------------------------

/// Entry point of the fake QEMU process. Ignored in normal runs; the fake run script execs this
/// test binary with only this test selected and the socket paths in the environment.
#[test]
#[ignore = "entry point of the fake QEMU process started by the fake run script"]
fn fake_qemu_process() {
    let Some(console) = std::env::var_os("FAKE_CONSOLE_SOCKET") else {
        return;
    };
    let console = UnixListener::bind(console).unwrap();
    let qmp = std::env::var_os("FAKE_QMP_SOCKET")
        .filter(|p| !p.is_empty())
        .map(|p| UnixListener::bind(p).unwrap());
    let (stream, _) = console.accept().unwrap();
    if let Some(qmp) = qmp {
        // Like `-S`: nothing runs until `cont`.
        let (q, _) = qmp.accept().unwrap();
        let mut w = q.try_clone().unwrap();
        let mut r = BufReader::new(q);
        writeln!(w, "{}", json!({"QMP": {"version": {}, "capabilities": []}})).unwrap();
        let mut running = false;
        let mut line = String::new();
        while !running {
            line.clear();
            if r.read_line(&mut line).unwrap() == 0 {
                return;
            }
            let cmd: Value = serde_json::from_str(&line).unwrap();
            match cmd["execute"].as_str().unwrap() {
                "cont" => running = true,
                "qmp_capabilities" => {}
                other => panic!("fake QEMU got {other} before cont"),
            }
            writeln!(w, "{}", json!({"return": {}})).unwrap();
        }
        // Keep answering after the start.
        std::thread::spawn(move || loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            writeln!(w, "{}", json!({"return": {"status": "running"}})).unwrap();
        });
    }
    serve(stream, Arc::new(Mutex::new(Seen::default())));
}

/// Writes an executable script into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// A run script that records its arguments, parses the run.sh contract and execs the fake.
fn fake_run_script(dir: &Path) -> PathBuf {
    script(
        dir,
        "run.sh",
        r#"printf '%s\n' "$@" > "$FAKE_ARGS_FILE"
console=""; qmp=""
while [ $# -gt 0 ]; do
  case "$1" in
    --console-socket) console="$2"; shift 2 ;;
    -qmp) qmp="${2#unix:}"; qmp="${qmp%%,*}"; shift 2 ;;
    *) shift ;;
  esac
done
echo "fake qemu starting" >&2
FAKE_CONSOLE_SOCKET="$console" FAKE_QMP_SOCKET="$qmp" exec "$FAKE_EXE" fake_qemu_process \
  --exact --ignored --nocapture --test-threads=1
"#,
    )
}

fn fake_options(dir: &Path) -> Options {
    Options {
        run_script: Some(fake_run_script(dir)),
        boot_timeout: Duration::from_secs(20),
        kill_grace: Duration::from_millis(500),
        env: vec![
            (
                "FAKE_EXE".into(),
                std::env::current_exe().unwrap().display().to_string(),
            ),
            (
                "FAKE_ARGS_FILE".into(),
                dir.join("args").display().to_string(),
            ),
        ],
        console: ConsoleOptions {
            type_delay: Duration::ZERO,
            ..ConsoleOptions::default()
        },
        ..Options::default()
    }
}

fn process_gone(pid: u32) -> bool {
    // Signal 0 only checks existence.
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

#[test]
fn start_drives_a_paused_fake_qemu_and_drop_stops_it() {
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        model: Some("/models/tiny.gguf".into()),
        icount: Some(3),
        extra_qemu_args: vec!["-d".into(), "guest_errors".into()],
        ..fake_options(work.path())
    };
    let sis = Sis::start(opts).unwrap();
    let pid = sis.pid();
    let dir = sis.dir().to_owned();
    // The fake prints nothing before `cont`, so seeing the boot lines proves the resume worked.
    sis.expect(Source::Hv, "SIS fake hypervisor", T).unwrap();
    sis.wait_prompt(Source::Llm, T).unwrap();
    assert_eq!(
        sis.run(Source::Llm, "echo via sis", T).unwrap(),
        "via sis\n"
    );
    assert_eq!(sis.qmp("query-status", None).unwrap()["status"], "running");
    assert!(sis.exit_status().unwrap().is_none());
    assert!(sis.qemu_output().contains("fake qemu starting"));
    let args = std::fs::read_to_string(work.path().join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    let console = dir.join("console.sock").display().to_string();
    assert_eq!(
        &args[..3],
        ["--no-build", "--console-socket", console.as_str()]
    );
    for pair in [
        ["--model", "/models/tiny.gguf"],
        ["--icount", "3"],
        ["-d", "guest_errors"],
    ] {
        assert!(args.windows(2).any(|w| w == pair), "{pair:?} in {args:?}");
    }
    assert!(args.contains(&"-S"), "{args:?}");
    assert_eq!(sis.datactl_socket(), dir.join("datactl.sock"));
    let console_log = sis.console_log_path().to_owned();
    assert!(console_log.starts_with(&dir));
    drop(sis);
    let deadline = Instant::now() + T;
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "fake QEMU {pid} survived the drop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !dir.exists(),
        "the temporary directory is removed on success"
    );
}

#[test]
fn a_panicking_test_keeps_the_logs() {
    let work = tempfile::tempdir().unwrap();
    let opts = fake_options(work.path());
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        let sis = Sis::start(opts).unwrap();
        sis.wait_prompt(Source::Ctl, T).unwrap();
        tx.send((sis.dir().to_owned(), sis.pid())).unwrap();
        panic!("deliberate failure to exercise the log dump");
    })
    .join();
    assert!(r.is_err());
    let (dir, pid) = rx.recv().unwrap();
    let log = std::fs::read_to_string(dir.join("console.log")).unwrap();
    assert!(log.contains("[hv] SIS fake hypervisor\r\n"), "{log}");
    let qemu = std::fs::read_to_string(dir.join("qemu.log")).unwrap();
    assert!(qemu.contains("fake qemu starting"), "{qemu}");
    assert!(process_gone(pid));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_script_that_dies_is_reported_with_its_output() {
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        run_script: Some(script(
            work.path(),
            "run.sh",
            "echo 'qemu-system-aarch64: no such image' >&2\nexit 1\n",
        )),
        ..Options::default()
    };
    let e = Sis::start(opts).err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("exited"), "{msg}");
    assert!(msg.contains("no such image"), "{msg}");
}

#[test]
fn a_socket_that_never_appears_is_a_bounded_error() {
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("pid");
    let opts = Options {
        run_script: Some(script(
            work.path(),
            "run.sh",
            &format!("echo $$ > {}\nexec sleep 60\n", pid_file.display()),
        )),
        boot_timeout: Duration::from_millis(500),
        kill_grace: Duration::from_millis(200),
        ..Options::default()
    };
    let start = Instant::now();
    let e = Sis::start(opts).err().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(e.to_string().contains("was not ready in time"), "{e}");
    let pid: u32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(process_gone(pid), "the script's process must be killed");
}

#[test]
fn datactl_gets_the_instance_socket_and_a_time_limit() {
    let work = tempfile::tempdir().unwrap();
    // A stand-in for datactl: prints its arguments, fails on request, hangs on request.
    let fake_datactl = script(
        work.path(),
        "datactl",
        r#"printf '%s\n' "$@"
case "$3" in
  fail) echo "ERR 0x05" >&2; exit 5 ;;
  hang) sleep 30 ;;
esac
"#,
    );
    let sis = Sis::start(Options {
        datactl_binary: Some(fake_datactl),
        datactl_socket_flag: "--sock".into(),
        ..fake_options(work.path())
    })
    .unwrap();
    let out = sis
        .datactl(&["llm-infer", "why op b slow?", "--max-tokens", "4"], T)
        .unwrap();
    assert!(out.success());
    let socket = sis.datactl_socket().display().to_string();
    assert_eq!(
        out.stdout,
        format!("--sock\n{socket}\nllm-infer\nwhy op b slow?\n--max-tokens\n4\n")
    );
    let out = sis.datactl(&["fail"], T).unwrap();
    assert_eq!(out.code, Some(5));
    assert_eq!(out.stderr, "ERR 0x05\n");
    let start = Instant::now();
    let e = sis.datactl(&["hang"], SHORT).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(e, Error::CommandTimeout { .. }), "{e}");
}

#[test]
fn expect_absent_passes_quietly_and_fails_on_forbidden_output() {
    let (_fake, c) = booted();
    c.send_line(Source::Ctl, "slow 300 panic: oops").unwrap();
    // The echo is there at once; its text is what we forbid, so skip past it first.
    c.expect(Source::Ctl, "oops\n", T).unwrap();
    let start = Instant::now();
    c.expect_absent(Source::Ctl, "never", Duration::from_millis(100))
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(c.failed_waits(), 0);
    let e = c
        .expect_absent(Source::Ctl, "panic:", Duration::from_secs(10))
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "fails as soon as it appears"
    );
    assert!(matches!(e, Error::Unexpected { .. }), "{e}");
    assert!(e.to_string().contains("must not appear"), "{e}");
    assert_eq!(c.failed_waits(), 1);
    // The cursor did not move: the text is still there to be matched.
    c.expect(Source::Ctl, "panic: oops", T).unwrap();
    c.expect(Source::Ctl, "never", Duration::from_millis(10))
        .unwrap_err();
    assert_eq!(c.stats().failed_waits, 2);
}

#[test]
fn sis_and_console_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Sis>();
    shareable::<sis_e2e::Console>();
}

#[test]
fn a_failed_wait_keeps_the_logs_and_names_them() {
    let work = tempfile::tempdir().unwrap();
    // Like a test that returns Err instead of panicking.
    fn body(opts: Options) -> (PathBuf, sis_e2e::Result<()>) {
        let sis = Sis::start(opts).unwrap();
        let dir = sis.dir().to_owned();
        let r = sis
            .expect(Source::Llm, "never printed", Duration::from_millis(100))
            .map(drop);
        (dir, r)
    }
    let (dir, r) = body(fake_options(work.path()));
    let msg = r.unwrap_err().to_string();
    let log = dir.join("console.log");
    assert!(
        msg.contains(&format!("full console log: {}", log.display())),
        "{msg}"
    );
    assert!(log.is_file(), "log kept after a failed wait");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_monitor_switch_command_moves_the_tracked_focus() {
    let (fake, c) = booted();
    let out = c.run(Source::Hv, "switch llm", T).unwrap();
    assert_eq!(out, "console input now goes to llm\n");
    assert_eq!(c.focused(), Some(Source::Llm));
    // No Ctrl-A is needed (or sent) for llm now.
    assert_eq!(c.run(Source::Llm, "echo direct", T).unwrap(), "direct\n");
    let input = fake.input();
    assert_eq!(
        input.iter().filter(|&&b| b == CTRL_A).count(),
        1,
        "{input:?}"
    );
    assert_eq!(
        fake.commands().last().unwrap(),
        &(LLM, "echo direct".to_string())
    );
    // assume_focus only changes what the harness believes.
    c.assume_focus(Source::Ctl).unwrap();
    assert_eq!(c.focused(), Some(Source::Ctl));
    assert_eq!(fake.input().len(), input.len());
    assert!(c.assume_focus(Source::Untagged).is_err());
}
