//! Control-plane benchmark: sends N frames (optionally pipelined) and measures frames per
//! second and ACK latency percentiles. Used by `datactl-bench`.

use crate::client::{is_reply_line, Client, ClientConfig, ClientError};
use crate::transport::Endpoint;
use sis_frame::codec::{encode, Command, Request, Version, MAX_FRAME_LEN};
use sis_frame::reply::{parse_reply, Reply};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Which frame to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FrameKind {
    /// A frame with an unknown command: answered `ERR 0x02` by the frame layer alone
    /// (no token needed, never touches auth or the LLM partition).
    Unsupported,
    /// `LlmInferPoll` of an id (needs a SUBMIT/ADMIN token): auth plus the poll path.
    Poll,
    /// `LlmCancel` of an id (needs a token).
    Cancel,
}

/// Benchmark settings.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Token for `poll`/`cancel`.
    pub token: Option<u64>,
    /// Frames measured.
    pub frames: usize,
    /// Frames sent before measuring (not counted).
    pub warmup: usize,
    /// Frames in flight at once (1 = strict request/reply).
    pub window: usize,
    /// Longest wait for any one reply.
    pub timeout: Duration,
    /// Frame kind.
    pub kind: FrameKind,
    /// Inference id used by `poll`/`cancel`.
    pub infer_id: u32,
}

/// Results of one run.
#[derive(Clone, Debug)]
pub struct BenchReport {
    /// Frames measured.
    pub frames: usize,
    /// `OK` replies.
    pub ok: usize,
    /// `ERR` replies.
    pub err: usize,
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Per-frame latency from write to reply, microseconds, sorted.
    pub latencies_us: Vec<u64>,
}

/// Nearest-rank percentile of sorted samples (`p` in 0..=100, `sis_stats::nearest_rank`); 0 for
/// no samples.
pub fn percentile(sorted: &[u64], p: u32) -> u64 {
    sis_stats::nearest_rank(sorted, p).unwrap_or(0)
}

impl BenchReport {
    /// Frames per second over the measured part.
    pub fn frames_per_sec(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// Latency percentile in microseconds.
    pub fn latency_us(&self, p: u32) -> u64 {
        percentile(&self.latencies_us, p)
    }
    /// One human-readable line.
    pub fn summary(&self, label: &str) -> String {
        format!(
            "{label}: frames={} ok={} err={} elapsed_ms={:.1} frames_per_s={:.0} ack_p50_us={} ack_p99_us={} ack_max_us={}",
            self.frames,
            self.ok,
            self.err,
            self.elapsed.as_secs_f64() * 1e3,
            self.frames_per_sec(),
            self.latency_us(50),
            self.latency_us(99),
            self.latencies_us.last().copied().unwrap_or(0)
        )
    }
    /// One JSON object.
    pub fn json(&self, label: &str) -> String {
        format!(
            "{{\"label\":\"{}\",\"frames\":{},\"ok\":{},\"err\":{},\"elapsed_ms\":{:.3},\"frames_per_s\":{:.1},\"ack_p50_us\":{},\"ack_p99_us\":{},\"ack_max_us\":{}}}",
            label.replace(['"', '\\'], "_"),
            self.frames,
            self.ok,
            self.err,
            self.elapsed.as_secs_f64() * 1e3,
            self.frames_per_sec(),
            self.latency_us(50),
            self.latency_us(99),
            self.latencies_us.last().copied().unwrap_or(0)
        )
    }
}

/// Encode the benchmark frame.
pub fn bench_frame(kind: FrameKind, token: Option<u64>, infer_id: u32) -> Result<Vec<u8>, String> {
    let command = match kind {
        FrameKind::Unsupported => {
            // Unknown command 0x7f with an 8-byte (token-sized) payload.
            let mut f = vec![0x43, 0, 0x7f, 0, 8, 0, 0, 0];
            f.extend_from_slice(&token.unwrap_or(0).to_le_bytes());
            return Ok(f);
        }
        FrameKind::Poll => Command::LlmInferPoll {
            infer_id,
            max: Some(1),
        },
        FrameKind::Cancel => Command::LlmCancel { infer_id },
    };
    let token = token.ok_or("--kind poll/cancel needs --token (or SIS_TOKEN)")?;
    let req = Request {
        version: Version::V0,
        token,
        seq: 0,
        command,
    };
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let n = encode(&req, &mut buf).map_err(|e| e.to_string())?;
    buf.truncate(n);
    Ok(buf)
}

/// Run the benchmark.
pub fn run_bench(cfg: &BenchConfig) -> Result<BenchReport, String> {
    let frame = bench_frame(cfg.kind, cfg.token, cfg.infer_id)?;
    let window = cfg.window.max(1);
    let mut client = Client::connect(ClientConfig {
        endpoint: cfg.endpoint.clone(),
        ack_timeout: cfg.timeout,
        retries: 0,
    })
    .map_err(|e| e.to_string())?;
    let total = cfg.warmup + cfg.frames;
    let mut in_flight: VecDeque<Instant> = VecDeque::with_capacity(window);
    let mut sent = 0usize;
    let mut done = 0usize;
    let mut report = BenchReport {
        frames: cfg.frames,
        ok: 0,
        err: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::with_capacity(cfg.frames),
    };
    let mut start = Instant::now();
    while done < total {
        while sent < total && in_flight.len() < window {
            if sent == cfg.warmup && done == cfg.warmup {
                start = Instant::now();
            }
            // Stamp before writing: on loopback the reply can arrive before write() returns.
            in_flight.push_back(Instant::now());
            client.send(&frame).map_err(|e| e.to_string())?;
            sent += 1;
        }
        let line = client
            .read_reply(Instant::now() + cfg.timeout)
            .map_err(|e| match e {
                ClientError::Timeout { .. } => format!(
                    "no reply within {} ms after {done} replies ({} frames in flight)",
                    cfg.timeout.as_millis(),
                    in_flight.len()
                ),
                other => other.to_string(),
            })?;
        debug_assert!(is_reply_line(&line));
        let t0 = in_flight
            .pop_front()
            .ok_or("reply without a frame in flight")?;
        let lat = t0.elapsed();
        if done >= cfg.warmup {
            report.latencies_us.push(lat.as_micros() as u64);
            match parse_reply(&line) {
                Ok(Reply::Err { .. }) => report.err += 1,
                Ok(_) => report.ok += 1,
                Err(e) => {
                    return Err(format!(
                        "malformed reply {:?}: {e}",
                        String::from_utf8_lossy(&line)
                    ))
                }
            }
        }
        done += 1;
        if done == cfg.warmup && cfg.frames > 0 {
            // Measurement starts once the warm-up replies are in.
            start = Instant::now();
        }
    }
    report.elapsed = start.elapsed();
    report.latencies_us.sort_unstable();
    Ok(report)
}
