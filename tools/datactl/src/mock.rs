//! The control guest's real host-control loop (`sis-hostctl`: decoder, auth, audit, LLM link,
//! reply FIFO, job table) served over a UNIX or TCP socket in this process, with a stand-in LLM
//! partition that answers every ring request at once (canned output tokens instead of a model).
//! Tests and `datactl-bench --mock` use it; it can lose reply lines to exercise retries.

use crate::transport::Endpoint;
use shared_ring::message::{Bytes, Done, DoneStatus, ErrorCode as RingError};
use shared_ring::{Request as RingRequest, Response};
use sis_frame::auth::{Authenticator, RateLimitConfig, Secrets};
use sis_frame::reply::{parse_reply, Reply};
use sis_hostctl::{AuditOut, HostControl, HostOut, LlmState, Now, RingPort, SendRefused};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Mock behaviour.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Secrets the guest accepts.
    pub secrets: Secrets,
    /// Rate limiting of failed attempts.
    pub limits: RateLimitConfig,
    /// The reply lines of the first this many delimited frames are lost (the frames did run).
    pub drop_first: usize,
    /// Indices (0-based, over delimited frames) of frames that are processed normally but
    /// whose reply lines are then lost: the command did run, so a retry shows whether the
    /// guest deduplicates by v1 `seq`.
    pub lose_replies_of: Vec<u64>,
    /// Tokens every inference produces (cut at `max_tokens`).
    pub output: Vec<String>,
}

impl MockConfig {
    /// A mock with the given secrets and sensible defaults.
    pub fn new(secrets: Secrets) -> Self {
        MockConfig {
            secrets,
            limits: RateLimitConfig::DEFAULT,
            drop_first: 0,
            lose_replies_of: Vec::new(),
            output: ["Op", " B", " waited", " on", " a", " lock", "|", "\n"]
                .map(String::from)
                .to_vec(),
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
    /// Reply lines lost on purpose (`drop_first`, `lose_replies_of`).
    pub dropped: u64,
    /// Lines written (stream lines included).
    pub lines: u64,
}

/// Microseconds since the first mock started (the loop's latency clock).
fn clock_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn now() -> Now {
    let us = clock_us();
    Now { ms: us / 1000, us }
}

/// The LLM partition, answering each request as soon as it is published: a load is
/// acknowledged, an inference before a load fails `NoModel`, an inference produces its tokens
/// and ends at once, so there is never a job to cancel.
struct FakeLlm {
    output: Vec<String>,
    loaded: bool,
    next_seq: u64,
    responses: VecDeque<Response>,
}

impl RingPort for FakeLlm {
    fn send(&mut self, req: &RingRequest) -> Result<u64, SendRefused> {
        self.next_seq += 1;
        let req_seq = self.next_seq;
        let r = &mut self.responses;
        match req {
            RingRequest::Load { .. } => {
                self.loaded = true;
                r.push_back(Response::Ack { req_seq });
            }
            RingRequest::Infer(_) if !self.loaded => r.push_back(Response::Error {
                req_seq,
                code: RingError::NoModel,
            }),
            RingRequest::Infer(i) => {
                r.push_back(Response::Ack { req_seq });
                let tokens = self.output.iter().take(usize::from(i.max_tokens));
                let mut n = 0;
                for t in tokens {
                    let text = Bytes::from_slice(t.as_bytes()).ok_or(SendRefused::Internal)?;
                    r.push_back(Response::Tokens {
                        id: i.id,
                        n: 1,
                        text,
                    });
                    n += 1;
                }
                r.push_back(Response::Done(Done {
                    id: i.id,
                    tokens: n,
                    prompt_len: 0,
                    elapsed_ns: 0,
                    cycles: 0,
                    status: DoneStatus(DoneStatus::OK),
                    error: None,
                    reused: 0,
                }));
            }
            RingRequest::Cancel { .. } => r.push_back(Response::Error {
                req_seq,
                code: RingError::UnknownId,
            }),
            _ => r.push_back(Response::Error {
                req_seq,
                code: RingError::BadRequest,
            }),
        }
        Ok(req_seq)
    }

    fn entropy(&mut self) -> Option<u64> {
        // The mock's ids need not be secret: the tests read them back.
        self.next_seq += 1;
        Some(0x5e55_0000 + self.next_seq)
    }
}

/// Audit records are counted by the loop itself; the mock keeps none.
struct NoAudit;

impl AuditOut for NoAudit {
    fn append(&mut self, _entry: &shared_ring::audit::AuditEntry) -> bool {
        true
    }
}

/// The host side of the loop: lines to write, minus the replies lost on purpose. Replies leave
/// in frame order, one per frame, so the n-th reply line answers the n-th frame.
struct Wire<'a> {
    out: Vec<u8>,
    replies: &'a mut u64,
    cfg: &'a MockConfig,
    stats: MockStats,
}

impl HostOut for Wire<'_> {
    fn send_line(&mut self, line: &[u8]) -> bool {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let extra = matches!(
            parse_reply(body),
            Ok(Reply::Stream { .. } | Reply::End { .. })
        );
        if !extra {
            let frame = *self.replies;
            *self.replies += 1;
            if frame < self.cfg.drop_first as u64 || self.cfg.lose_replies_of.contains(&frame) {
                self.stats.dropped += 1;
                return true;
            }
        }
        self.stats.lines += 1;
        self.out.extend_from_slice(line);
        true
    }
}

/// The control guest in this process: its loop, its LLM partition.
struct Guest {
    cfg: MockConfig,
    host: HostControl,
    llm: FakeLlm,
    /// Reply lines seen so far (= frames answered).
    replies: u64,
}

impl Guest {
    fn new(cfg: MockConfig) -> io::Result<Self> {
        let auth = Authenticator::new(cfg.secrets, cfg.limits)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:?}")))?;
        let mut host = HostControl::new(clock_us);
        host.set_auth(auth);
        Ok(Guest {
            llm: FakeLlm {
                output: cfg.output.clone(),
                loaded: false,
                next_seq: 0,
                responses: VecDeque::new(),
            },
            cfg,
            host,
            replies: 0,
        })
    }

    /// Runs `bytes` (possibly none: upkeep only) through the loop and the LLM partition's
    /// answers; returns the lines for the host and the counters of this pass.
    fn serve(&mut self, bytes: &[u8]) -> (Vec<u8>, MockStats) {
        let frames_before = self.host.control().stats().frames_rx;
        let mut wire = Wire {
            out: Vec::new(),
            replies: &mut self.replies,
            cfg: &self.cfg,
            stats: MockStats::default(),
        };
        if !bytes.is_empty() {
            self.host
                .on_bytes(bytes, now(), &mut wire, &mut NoAudit, &mut self.llm);
        }
        while let Some(r) = self.llm.responses.pop_front() {
            self.host.on_response(r, now(), &mut wire);
        }
        self.host
            .tick(now(), LlmState::Running { generation: 1 }, &mut wire);
        let mut stats = wire.stats;
        stats.frames = self.host.control().stats().frames_rx - frames_before;
        (wire.out, stats)
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
                            // A new host connection, as the guest's virtio-console reports it.
                            guest.host.host_changed();
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
                0
            }
            Err(_) => return,
        };
        // Upkeep (timeouts) runs on idle passes too, as the guest's timer tick does.
        let (out, local) = guest.serve(&buf[..n]);
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
