//! An in-process stand-in for the control guest, speaking the real codec over a UNIX or
//! TCP socket. Tests and `datactl-bench --mock` use it; it follows the reply semantics of
//! docs/frames.md (auth, load before infer, poll cursor, streaming) with canned output
//! tokens instead of a model, and can drop frames to exercise retries.

use crate::transport::Endpoint;
use sis_frame::auth::{Authenticator, RateLimitConfig, Secrets};
use sis_frame::codec::{Command, Decoder, Event, Request};
use sis_frame::reply::{
    write_end, write_err, write_ok, write_poll, write_refusal, write_stream_token, EndReason,
    ErrorCode, Field, PollInfo, ReplayCache,
};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Mock behaviour.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Secrets the mock accepts.
    pub secrets: Secrets,
    /// Rate limiting of failed attempts.
    pub limits: RateLimitConfig,
    /// Delimited frames to swallow without a reply before answering normally.
    pub drop_first: usize,
    /// Model name reported in poll replies.
    pub model: String,
    /// Indices (0-based, over delimited frames) of frames that are processed normally but
    /// whose reply lines are then lost: the command did run, so a retry shows whether the
    /// guest deduplicates by v1 `seq`.
    pub lose_replies_of: Vec<u64>,
    /// Tokens every inference produces (cut at `max_tokens`).
    pub output: Vec<String>,
    /// Default poll batch when the poll has no `max`.
    pub poll_batch: usize,
}

impl MockConfig {
    /// A mock with the given secrets and sensible defaults.
    pub fn new(secrets: Secrets) -> Self {
        MockConfig {
            secrets,
            limits: RateLimitConfig::DEFAULT,
            drop_first: 0,
            lose_replies_of: Vec::new(),
            model: "mock-model".into(),
            output: ["Op", " B", " waited", " on", " a", " lock", "|", "\n"]
                .map(String::from)
                .to_vec(),
            poll_batch: 16,
        }
    }
}

/// Counters of a mock server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MockStats {
    /// Connections accepted.
    pub connections: u64,
    /// Delimited frames (requests and rejected frames).
    pub frames: u64,
    /// Frames swallowed by `drop_first`.
    pub dropped: u64,
    /// Reply lines written (stream lines included).
    pub lines: u64,
}

struct Job {
    tokens: Vec<String>,
    delivered: usize,
    plen: u32,
}

/// The guest-side logic: turns decoder events into reply lines.
struct Guest {
    cfg: MockConfig,
    auth: Authenticator,
    start: Instant,
    loaded: bool,
    next_id: u32,
    jobs: HashMap<u32, Job>,
    to_drop: usize,
    frame_index: u64,
    replay: ReplayCache<16, 256>,
}

fn line(f: impl FnOnce(&mut [u8]) -> Result<usize, sis_frame::reply::FormatError>) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let n = f(&mut buf).expect("mock replies fit in 1 KiB");
    buf[..n].to_vec()
}

fn err_line(code: ErrorCode, fields: &[Field<'_>]) -> Vec<u8> {
    line(|b| write_err(b, code, fields))
}

impl Guest {
    fn new(cfg: MockConfig) -> io::Result<Self> {
        let auth = Authenticator::new(cfg.secrets, cfg.limits)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}")))?;
        Ok(Guest {
            to_drop: cfg.drop_first,
            frame_index: 0,
            replay: ReplayCache::new(),
            cfg,
            auth,
            start: Instant::now(),
            loaded: false,
            next_id: 1,
            jobs: HashMap::new(),
        })
    }

    fn handle(&mut self, ev: Event<'_>, stats: &mut MockStats) -> Vec<Vec<u8>> {
        stats.frames += 1;
        let index = self.frame_index;
        self.frame_index += 1;
        if self.to_drop > 0 {
            self.to_drop -= 1;
            stats.dropped += 1;
            return Vec::new();
        }
        let lines = match ev {
            Event::Rejected(r) => vec![err_line(r.error.code(), &[])],
            Event::Request(req) => self.request(&req),
        };
        if self.cfg.lose_replies_of.contains(&index) {
            stats.dropped += 1;
            return Vec::new();
        }
        lines
    }

    fn request(&mut self, req: &Request<'_>) -> Vec<Vec<u8>> {
        let now_ms = self.start.elapsed().as_millis() as u64;
        let decision = self
            .auth
            .check(req.token, req.command.requirement(), now_ms);
        let mut buf = [0u8; 64];
        if let Some(n) = write_refusal(&mut buf, &decision).expect("refusals fit") {
            return vec![buf[..n].to_vec()];
        }
        if let Some(cached) = self.replay.lookup(req.token, req.seq) {
            return vec![cached.to_vec()];
        }
        let lines = self.run(req);
        if let Some(first) = lines.first() {
            self.replay.store(req.token, req.seq, first);
        }
        lines
    }

    fn run(&mut self, req: &Request<'_>) -> Vec<Vec<u8>> {
        match req.command {
            Command::LlmLoad { .. } => {
                self.loaded = true;
                vec![line(|b| write_ok(b, &[]))]
            }
            Command::LlmInferStart(p) => {
                if !self.loaded {
                    return vec![err_line(ErrorCode::NoGraph, &[])];
                }
                let id = self.next_id;
                self.next_id += 1;
                let tokens: Vec<String> = self
                    .cfg
                    .output
                    .iter()
                    .take(usize::from(p.max_tokens))
                    .cloned()
                    .collect();
                let reason = if tokens.len() < self.cfg.output.len() {
                    EndReason::Max
                } else {
                    EndReason::Eos
                };
                let mut out = vec![line(|b| write_ok(b, &[Field::num("id", u64::from(id))]))];
                if p.stream {
                    for (i, t) in tokens.iter().enumerate() {
                        out.push(line(|b| write_stream_token(b, id, i as u32, t.as_bytes())));
                    }
                    out.push(line(|b| {
                        write_end(b, id, tokens.len() as u32, reason, None)
                    }));
                }
                let delivered = if p.stream { tokens.len() } else { 0 };
                self.jobs.insert(
                    id,
                    Job {
                        tokens,
                        delivered,
                        plen: p.prompt.len() as u32,
                    },
                );
                out
            }
            Command::LlmInferPoll { infer_id, max } => {
                let Some(job) = self.jobs.get_mut(&infer_id) else {
                    return vec![err_line(ErrorCode::NotFound, &[])];
                };
                let limit = max.map_or(self.cfg.poll_batch, usize::from);
                let end = (job.delivered + limit).min(job.tokens.len());
                let items = job.tokens[job.delivered..end].iter().map(|s| s.as_bytes());
                let info = PollInfo {
                    id: infer_id,
                    done: end == job.tokens.len(),
                    plen: job.plen,
                    model: self.cfg.model.as_bytes(),
                };
                let mut buf = [0u8; 1024];
                let w = write_poll(&mut buf, &info, items).expect("poll header fits");
                job.delivered += w.items;
                vec![buf[..w.len].to_vec()]
            }
            Command::LlmCancel { infer_id } => match self.jobs.remove(&infer_id) {
                Some(_) => vec![line(|b| write_ok(b, &[]))],
                None => vec![err_line(ErrorCode::NotFound, &[])],
            },
        }
    }
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A running mock; stopped and joined on drop.
pub struct MockServer {
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<MockStats>>,
    handle: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Serve on a new UNIX socket at `path`.
    pub fn unix(path: PathBuf, cfg: MockConfig) -> io::Result<MockServer> {
        let l = UnixListener::bind(&path)?;
        Self::spawn(Listener::Unix(l), Endpoint::Unix(path), cfg)
    }

    /// Serve on TCP 127.0.0.1 with a free port.
    pub fn tcp(cfg: MockConfig) -> io::Result<MockServer> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?;
        Self::spawn(Listener::Tcp(l), Endpoint::Tcp(addr.to_string()), cfg)
    }

    /// Where to connect.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Counters so far.
    pub fn stats(&self) -> MockStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn spawn(listener: Listener, endpoint: Endpoint, cfg: MockConfig) -> io::Result<MockServer> {
        let mut guest = Guest::new(cfg)?;
        match &listener {
            Listener::Unix(l) => l.set_nonblocking(true)?,
            Listener::Tcp(l) => l.set_nonblocking(true)?,
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(MockStats::default()));
        let (stop2, stats2) = (stop.clone(), stats.clone());
        let handle = std::thread::Builder::new()
            .name("datactl-mock".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let accepted: io::Result<Box<dyn Conn>> = match &listener {
                        Listener::Unix(l) => l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>),
                        Listener::Tcp(l) => l.accept().map(|(s, _)| {
                            let _ = s.set_nodelay(true);
                            Box::new(s) as Box<dyn Conn>
                        }),
                    };
                    match accepted {
                        Ok(conn) => {
                            stats2.lock().unwrap_or_else(|p| p.into_inner()).connections += 1;
                            serve(conn, &mut guest, &stop2, &stats2);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
            })?;
        Ok(MockServer {
            endpoint,
            stop,
            stats,
            handle: Some(handle),
        })
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        if let Endpoint::Unix(p) = &self.endpoint {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A stream the mock can serve.
trait Conn: Read + Write + Send {
    fn set_timeout(&self, t: Duration) -> io::Result<()>;
}

impl Conn for std::os::unix::net::UnixStream {
    fn set_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(t))
    }
}

impl Conn for std::net::TcpStream {
    fn set_timeout(&self, t: Duration) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(t))
    }
}

fn serve(mut conn: Box<dyn Conn>, guest: &mut Guest, stop: &AtomicBool, stats: &Mutex<MockStats>) {
    if conn.set_timeout(Duration::from_millis(20)).is_err() {
        return;
    }
    let mut dec = Decoder::new();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let n = match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        let mut input = &buf[..n];
        let mut out = Vec::new();
        let mut local = MockStats::default();
        while !input.is_empty() {
            let (used, ev) = dec.feed(input);
            if let Some(ev) = ev {
                for l in guest.handle(ev, &mut local) {
                    local.lines += 1;
                    out.extend_from_slice(&l);
                }
            }
            input = &input[used..];
        }
        {
            let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
            s.frames += local.frames;
            s.dropped += local.dropped;
            s.lines += local.lines;
        }
        if !out.is_empty() && conn.write_all(&out).is_err() {
            return;
        }
    }
}
