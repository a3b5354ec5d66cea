//! The `datactl` command line and its logic, callable from tests with captured output.
//!
//! Exit codes (for scripts): see [`exit`].

use crate::client::{Client, ClientConfig, ClientError};
use crate::transport::{Endpoint, TransportError, DEFAULT_SOCKET};
use clap::{Parser, Subcommand, ValueEnum};
use sis_frame::codec::{
    encode, Command, InferParams, Request, Sampling, Stops, Version, MAX_FRAME_LEN, MAX_STOPS,
    MAX_STOP_LEN,
};
use sis_frame::reply::{parse_reply, EndReason, ErrorCode, Reply};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Exit codes.
pub mod exit {
    /// The guest answered `OK` (or, without waiting, the frame was sent).
    pub const OK: i32 = 0;
    /// The guest answered `ERR 0xNN` (or a stream ended with `cancel`/`fail`).
    pub const ERR_REPLY: i32 = 1;
    /// Bad command line (also clap's own usage errors).
    pub const USAGE: i32 = 2;
    /// Could not connect (missing socket, refused, closed by the peer).
    pub const CONNECTION: i32 = 3;
    /// No reply within the ACK timeout after all retries (or a stream went idle).
    pub const TIMEOUT: i32 = 4;
    /// The guest sent something that is not a valid reply line.
    pub const PROTOCOL: i32 = 5;
}

const EXIT_HELP: &str = "\
Exit codes: 0 OK reply (or sent without --wait-ack), 1 ERR reply, 2 usage error,
3 connection error, 4 no reply (timeout), 5 malformed reply.
Tokens: get one on the ctl> shell with `ctlembed admin|submit` (or ctladmin/ctlsubmit).";

/// Which frame version to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Proto {
    /// v0 when the request fits (seed-compatible), else v1.
    Auto,
    /// Always v0 (prompts up to 54 bytes, no sampling/chat/stream).
    #[value(name = "0")]
    V0,
    /// Always v1.
    #[value(name = "1")]
    V1,
}

/// `datactl` options.
#[derive(Parser, Debug)]
#[command(
    name = "datactl",
    version,
    about = "Send control-plane frames to SIS over the sis.datactl virtio-console port",
    after_help = EXIT_HELP
)]
pub struct Cli {
    /// UNIX socket of the datactl port.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Connect over TCP instead (QEMU started with DATACTL_TCP=1), e.g. 127.0.0.1:7777.
    #[arg(
        long,
        global = true,
        value_name = "HOST:PORT",
        conflicts_with = "socket"
    )]
    pub tcp: Option<String>,
    /// Token: 0x-prefixed hex or decimal u64.
    #[arg(long, global = true, env = "SIS_TOKEN", value_parser = parse_token, hide_env_values = true)]
    pub token: Option<u64>,
    /// Resend the frame this many times when no reply arrives within the ACK timeout
    /// (implies waiting for the reply).
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub retries: u32,
    /// ACK timeout per attempt, in milliseconds (default: 2000; 12000 for llm-infer and chat,
    /// which the LLM partition answers once it has admitted the job, after the step a running
    /// job is in, and the control guest answers ERR 0x06 itself after 10 s).
    #[arg(long = "timeout-ms", global = true, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub timeout_ms: Option<u64>,
    /// Wait for the reply and print it.
    #[arg(long, global = true)]
    pub wait_ack: bool,
    /// Frame version to send.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub proto: Proto,
    /// What to send.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// ACK timeout when `--timeout-ms` is not given.
pub const DEFAULT_ACK_TIMEOUT_MS: u64 = 2000;
/// The same for `llm-infer` and `chat`: longer than the control guest's own 10 s wait for the
/// LLM partition's admission, so its `ERR 0x06` arrives before the host gives up (a retry
/// would start a second inference).
pub const INFER_ACK_TIMEOUT_MS: u64 = 12_000;

impl Cli {
    /// The ACK timeout for this command.
    pub fn ack_timeout_ms(&self) -> u64 {
        self.timeout_ms.unwrap_or(match self.cmd {
            Cmd::LlmInfer { .. } | Cmd::Chat { .. } => INFER_ACK_TIMEOUT_MS,
            _ => DEFAULT_ACK_TIMEOUT_MS,
        })
    }
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Load the model (0x10, needs an ADMIN token).
    LlmLoad {
        /// Declared worst-case cycles per inference step.
        #[arg(long, value_name = "N")]
        wcet_cycles: Option<u64>,
    },
    /// Start an inference (0x11, needs SUBMIT or ADMIN).
    LlmInfer {
        /// Prompt text (v0: up to 54 bytes; v1: up to 2048).
        prompt: String,
        /// Generation options.
        #[command(flatten)]
        gen: GenOpts,
        /// Wrap the prompt in the model's chat template.
        #[arg(long)]
        chat: bool,
        /// System message of the chat template (with --chat; at most 256 bytes).
        #[arg(long, value_name = "TEXT", requires = "chat")]
        system: Option<String>,
        /// Print tokens as they are produced, until the inference ends.
        #[arg(long)]
        stream: bool,
    },
    /// Chat: each MESSAGE (or, with none, each line of stdin) is one turn of a conversation
    /// the LLM partition keeps with its KV cache, so a turn computes only what it adds.
    /// Replies are streamed to stdout, one line per turn; per-turn prefill counts on stderr.
    Chat {
        /// The user's messages, one per turn (none: read turns from stdin).
        messages: Vec<String>,
        /// Generation options (every turn).
        #[command(flatten)]
        gen: GenOpts,
        /// System message of the conversation (first turn of a new conversation).
        #[arg(long, value_name = "TEXT")]
        system: Option<String>,
        /// Continue this conversation (the `session=` of an earlier chat) instead of opening one.
        #[arg(long, value_name = "ID")]
        session: Option<u64>,
    },
    /// Fetch produced tokens of an inference (0x12).
    LlmPoll {
        /// Inference id printed by llm-infer (`OK id=N`).
        id: u32,
        /// At most this many tokens.
        #[arg(long, value_name = "N")]
        max: Option<u16>,
        /// Print the tokens as text instead of the raw reply line.
        #[arg(long)]
        text: bool,
    },
    /// Cancel an inference (0x13).
    LlmCancel {
        /// Inference id.
        id: u32,
    },
    /// Send raw bytes given in hex (for tests), e.g. --hex "43 00 10 00 08000000 ...".
    Raw {
        /// Hex bytes; spaces, ':' and a 0x prefix are allowed.
        #[arg(long, value_name = "BYTES")]
        hex: String,
    },
}

/// Generation options shared by `llm-infer` and `chat`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenOpts {
    /// Most tokens to generate.
    #[arg(long, default_value_t = 32, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_tokens: u16,
    /// Sampling temperature, 0 (greedy, default) to 5. With a temperature, top-k,
    /// top-p and min-p default to llama.cpp's 40, 0.95 and 0.05.
    #[arg(long, value_name = "T")]
    pub temp: Option<f32>,
    /// Keep the K most likely tokens (0 = off).
    #[arg(long, value_name = "K")]
    pub top_k: Option<u32>,
    /// Nucleus sampling threshold in [0, 1] (1 = off).
    #[arg(long, value_name = "P")]
    pub top_p: Option<f32>,
    /// Minimum probability relative to the most likely token, [0, 1] (0 = off).
    #[arg(long, value_name = "P")]
    pub min_p: Option<f32>,
    /// Repetition penalty in [0.001, 10] (1 = off, the default).
    #[arg(long, value_name = "R")]
    pub repeat_penalty: Option<f32>,
    /// Tokens the repetition penalty looks back over (default 64; 0 = off).
    #[arg(long, value_name = "N")]
    pub repeat_last_n: Option<u32>,
    /// Sampler seed, 0..=4294967295 (repeatable output with a temperature).
    #[arg(long, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=u64::from(u32::MAX)))]
    pub seed: Option<u64>,
    /// Stop when the text ends with TEXT (not printed); up to 4, each 1..=64 bytes.
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Streaming: give up when no line arrives for this long (ms).
    #[arg(long = "idle-timeout-ms", default_value_t = 120_000, value_name = "MS")]
    pub idle_timeout_ms: u64,
}

impl GenOpts {
    /// The inference parameters for `prompt` with these options.
    fn params<'a>(
        &'a self,
        prompt: &'a str,
        chat: bool,
        system: &'a str,
        stream: bool,
        session: Option<u64>,
    ) -> Result<InferParams<'a>, String> {
        let list: Vec<&str> = self.stop.iter().map(String::as_str).collect();
        Ok(InferParams {
            prompt,
            max_tokens: self.max_tokens,
            sampling: sampling(
                self.temp,
                self.top_k,
                self.top_p,
                self.min_p,
                self.repeat_penalty,
                self.repeat_last_n,
                self.seed,
            )?,
            chat,
            stream,
            stop: Stops::new(&list).ok_or(format!(
                "--stop: at most {MAX_STOPS} strings of 1..={MAX_STOP_LEN} bytes each"
            ))?,
            system,
            session,
        })
    }
}

/// Parse a token: `0x`-prefixed hex or decimal.
pub fn parse_token(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => t.replace('_', "").parse(),
    };
    r.map_err(|_| format!("{s:?} is not a u64 token (use 0x-prefixed hex or decimal)"))
}

/// Parse hex bytes, ignoring spaces, ':' and `0x` prefixes.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let mut digits = String::new();
    for word in s.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
        let w = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))
            .unwrap_or(word);
        digits.push_str(w);
    }
    if digits.is_empty() {
        return Err("--hex needs at least one byte".into());
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "--hex has an odd number of digits ({})",
            digits.len()
        ));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .map_err(|_| format!("--hex: {:?} is not a hex byte", &digits[i..i + 2]))
        })
        .collect()
}

/// `v` in thousandths, checked against `[lo, max]` (`lo` > 0: a value rounding to 0 is refused).
fn milli(v: f32, what: &str, lo: f32, max: f32) -> Result<u16, String> {
    let ok = v.is_finite() && v <= max && v >= lo;
    if !ok {
        return Err(format!("{what} must be in [{lo}, {max}], got {v}"));
    }
    let m = (v * 1000.0).round() as u16;
    if lo > 0.0 && m == 0 {
        return Err(format!(
            "{what} {v} rounds to 0 (the wire carries thousandths)"
        ));
    }
    Ok(m)
}

/// The sampling controls of `llm-infer`: greedy unless a temperature is given; with one,
/// llama.cpp's defaults for what is not given (the shell's and `llm-run`'s rule).
#[allow(clippy::too_many_arguments)]
fn sampling(
    temp: Option<f32>,
    top_k: Option<u32>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    repeat_last_n: Option<u32>,
    seed: Option<u64>,
) -> Result<Sampling, String> {
    let greedy = Sampling::GREEDY;
    let temperature_milli = temp
        .map(|t| milli(t, "--temp", 0.0, 5.0))
        .transpose()?
        .unwrap_or(0);
    // Defaults: llama.cpp's once sampling; the greedy frame's (off) otherwise, where they
    // change nothing and keep the request v0-compatible.
    let (dk, dp, dmin) = if temperature_milli > 0 {
        (40, 950, 50)
    } else {
        (greedy.top_k, greedy.top_p_milli, greedy.min_p_milli)
    };
    Ok(Sampling {
        temperature_milli,
        top_k: top_k.unwrap_or(dk),
        top_p_milli: top_p
            .map(|p| milli(p, "--top-p", 0.0, 1.0))
            .transpose()?
            .unwrap_or(dp),
        min_p_milli: min_p
            .map(|p| milli(p, "--min-p", 0.0, 1.0))
            .transpose()?
            .unwrap_or(dmin),
        repeat_penalty_milli: repeat_penalty
            .map(|r| milli(r, "--repeat-penalty", 0.001, 10.0))
            .transpose()?
            .unwrap_or(greedy.repeat_penalty_milli),
        repeat_last_n: repeat_last_n.unwrap_or(greedy.repeat_last_n),
        seed: seed.unwrap_or(0),
    })
}

/// A sequence number for v1 requests: non-zero, different per invocation, the same on
/// every retry of one request.
fn fresh_seq() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
    let mixed = nanos ^ std::process::id().wrapping_mul(0x9e37_79b9);
    mixed.max(1)
}

fn usage(err: &mut dyn Write, msg: &str) -> i32 {
    let _ = writeln!(err, "datactl: {msg}");
    exit::USAGE
}

/// Build the frame for a subcommand.
///
/// # Errors
/// A usage error (no token, a value out of range, a request no frame version can carry).
pub fn build_frame(cli: &Cli) -> Result<Vec<u8>, String> {
    if let Cmd::Raw { hex } = &cli.cmd {
        return parse_hex(hex);
    }
    let token = cli.token.ok_or(
        "no token: pass --token 0x... or set SIS_TOKEN (print one on the ctl> shell with `ctlembed admin` or `ctlembed submit`)",
    )?;
    let command = match &cli.cmd {
        Cmd::LlmLoad { wcet_cycles } => Command::LlmLoad {
            wcet_cycles: *wcet_cycles,
        },
        Cmd::LlmInfer {
            prompt,
            gen,
            chat,
            system,
            stream,
        } => Command::LlmInferStart(gen.params(
            prompt,
            *chat,
            system.as_deref().unwrap_or(""),
            *stream,
            None,
        )?),
        Cmd::Chat { .. } => return Err("chat sends one frame per turn (run_chat)".into()),
        Cmd::LlmPoll { id, max, .. } => Command::LlmInferPoll {
            infer_id: *id,
            max: *max,
        },
        Cmd::LlmCancel { id } => Command::LlmCancel { infer_id: *id },
        Cmd::Raw { .. } => unreachable!("handled above"),
    };
    let mut req = Request {
        version: Version::V0,
        token,
        seq: 0,
        command,
    };
    req.version = match cli.proto {
        Proto::V0 => Version::V0,
        Proto::V1 => Version::V1,
        // A request no version can carry fails in encode below with a clear message.
        Proto::Auto => req.min_version().unwrap_or(Version::V1),
    };
    if req.version == Version::V1 {
        req.seq = fresh_seq();
    }
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let n = encode(&req, &mut buf).map_err(|e| e.to_string())?;
    buf.truncate(n);
    Ok(buf)
}

fn client_error(err: &mut dyn Write, e: &ClientError) -> i32 {
    let _ = writeln!(err, "datactl: {e}");
    match e {
        ClientError::Connection(_) => exit::CONNECTION,
        ClientError::Timeout { .. } => exit::TIMEOUT,
        ClientError::Protocol(_) => exit::PROTOCOL,
    }
}

/// Print a reply line and map it to an exit code.
fn report(line: &[u8], poll_text: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let shown = String::from_utf8_lossy(line);
    match parse_reply(line) {
        Ok(Reply::Ok(_)) => {
            let _ = writeln!(out, "{shown}");
            exit::OK
        }
        Ok(Reply::Poll(p)) => {
            if poll_text {
                let mut text = Vec::new();
                for item in p.items {
                    match item.unescape().collect::<Result<Vec<u8>, _>>() {
                        Ok(b) => text.extend(b),
                        Err(e) => {
                            let _ = writeln!(err, "datactl: bad item escape {e:?}");
                            return exit::PROTOCOL;
                        }
                    }
                }
                let _ = out.write_all(&text);
                let _ = writeln!(out);
                let end = p
                    .end
                    .map(|r| format!(" end={}", r.as_str()))
                    .unwrap_or_default();
                let code = p
                    .code
                    .map(|c| {
                        let name =
                            ErrorCode::from_u8(c).map_or("unknown error code", ErrorCode::name);
                        format!(" code=0x{c:02x} ({name})")
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    err,
                    "datactl: id={} n={} done={}{end}{code}",
                    p.id,
                    p.n,
                    u8::from(p.done)
                );
            } else {
                let _ = writeln!(out, "{shown}");
            }
            exit::OK
        }
        Ok(Reply::Err { code, fields }) => {
            let _ = writeln!(out, "{shown}");
            let name = ErrorCode::from_u8(code).map_or("unknown error code", ErrorCode::name);
            let retry = fields
                .get_u64("retry_ms")
                .map(|ms| format!("; retry in {ms} ms"))
                .unwrap_or_default();
            let _ = writeln!(err, "datactl: guest refused: {name} (0x{code:02x}){retry}");
            exit::ERR_REPLY
        }
        Ok(other) => {
            let _ = writeln!(
                err,
                "datactl: unexpected line instead of a reply: {other:?}"
            );
            exit::PROTOCOL
        }
        Err(e) => {
            let _ = writeln!(err, "datactl: {e}: {shown:?}");
            exit::PROTOCOL
        }
    }
}

/// Follow a stream after `OK id=N` until `END id=N`: the exit code, and for a conversation
/// turn its prefill figures (prompt tokens, reused from the KV cache).
fn follow_stream(
    client: &mut Client,
    id: u32,
    idle: Duration,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> (i32, Option<(u32, u32)>) {
    let mut expected = 0u32;
    let mut gaps = 0u64;
    loop {
        let line = match client.read_line(Instant::now() + idle) {
            Ok(l) => l,
            Err(ClientError::Timeout { .. }) => {
                let _ = writeln!(out);
                let _ = writeln!(
                    err,
                    "datactl: stream {id}: nothing for {} ms after {expected} token(s); giving up",
                    idle.as_millis()
                );
                return (exit::TIMEOUT, None);
            }
            Err(e) => return (client_error(err, &e), None),
        };
        match parse_reply(&line) {
            Ok(Reply::Stream { id: sid, i, tok }) if sid == id => {
                if i != expected {
                    gaps += u64::from(i.abs_diff(expected));
                }
                expected = i.wrapping_add(1);
                match tok.unescape().collect::<Result<Vec<u8>, _>>() {
                    Ok(bytes) => {
                        let _ = out.write_all(&bytes);
                        let _ = out.flush();
                    }
                    Err(e) => {
                        let _ = writeln!(err, "datactl: bad token escape {e:?}");
                        return (exit::PROTOCOL, None);
                    }
                }
            }
            Ok(Reply::End {
                id: sid,
                n,
                reason,
                code,
                prefill,
            }) if sid == id => {
                let _ = writeln!(out);
                let code_txt = code
                    .map(|c| {
                        let name =
                            ErrorCode::from_u8(c).map_or("unknown error code", ErrorCode::name);
                        format!(" code=0x{c:02x} ({name})")
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    err,
                    "datactl: stream {id} ended: n={n} reason={}{code_txt}",
                    reason.as_str()
                );
                if gaps > 0 {
                    let _ = writeln!(err, "datactl: stream {id}: {gaps} token index gap(s)");
                }
                let code = match reason {
                    EndReason::Eos | EndReason::Max => exit::OK,
                    EndReason::Cancel | EndReason::Fail => exit::ERR_REPLY,
                };
                return (code, prefill);
            }
            Ok(_) => {} // another inference's stream, or a late reply
            Err(e) => {
                let _ = writeln!(err, "datactl: {e}: {:?}", String::from_utf8_lossy(&line));
                return (exit::PROTOCOL, None);
            }
        }
    }
}

/// Run `cli`, writing replies to `out` and diagnostics to `err`; returns the exit code.
pub fn run(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let frame = match &cli.cmd {
        Cmd::Chat { .. } => Vec::new(),
        _ => match build_frame(cli) {
            Ok(f) => f,
            Err(m) => return usage(err, &m),
        },
    };
    let endpoint = match &cli.tcp {
        Some(a) => Endpoint::Tcp(a.clone()),
        None => Endpoint::Unix(cli.socket.clone()),
    };
    let cfg = ClientConfig {
        endpoint: endpoint.clone(),
        ack_timeout: Duration::from_millis(cli.ack_timeout_ms()),
        retries: cli.retries,
    };
    let mut client = match Client::connect(cfg) {
        Ok(c) => c,
        Err(e) => return client_error(err, &e),
    };
    if matches!(cli.cmd, Cmd::Chat { .. }) {
        return run_chat(cli, &mut client, &mut std::io::stdin().lock(), out, err);
    }
    let stream = matches!(cli.cmd, Cmd::LlmInfer { stream: true, .. });
    if !(cli.wait_ack || cli.retries > 0 || stream) {
        return match client.send(&frame) {
            Ok(()) => {
                let _ = writeln!(err, "datactl: sent {} bytes to {endpoint}", frame.len());
                exit::OK
            }
            Err(e) => client_error(err, &e),
        };
    }
    let line = match client.request(&frame) {
        Ok(l) => l,
        Err(e) => {
            let skipped = client.stats().skipped_lines;
            if skipped > 0 {
                let _ = writeln!(
                    err,
                    "datactl: ignored {skipped} line(s) that were not replies"
                );
            }
            return client_error(err, &e);
        }
    };
    let s = client.stats();
    if s.resends > 0 || s.reconnects > 0 {
        let _ = writeln!(
            err,
            "datactl: reply after {} resend(s), {} reconnect(s)",
            s.resends, s.reconnects
        );
    }
    let poll_text = matches!(cli.cmd, Cmd::LlmPoll { text: true, .. });
    if !stream {
        return report(&line, poll_text, out, err);
    }
    // Stream: the reply must be `OK id=N`, then tokens follow.
    let id = match parse_reply(&line) {
        Ok(Reply::Ok(fields)) => fields.get_u64("id").and_then(|v| u32::try_from(v).ok()),
        _ => return report(&line, false, out, err),
    };
    let Some(id) = id else {
        let _ = writeln!(
            err,
            "datactl: stream accepted without an id: {:?}",
            String::from_utf8_lossy(&line)
        );
        return exit::PROTOCOL;
    };
    let _ = writeln!(err, "datactl: streaming inference {id}");
    let idle = match &cli.cmd {
        Cmd::LlmInfer { gen, .. } => Duration::from_millis(gen.idle_timeout_ms.max(1)),
        _ => unreachable!("stream is only set for llm-infer"),
    };
    follow_stream(&mut client, id, idle, out, err).0
}

/// A v1 frame for `params` (with a fresh sequence number).
fn v1_frame(token: u64, params: InferParams<'_>) -> Result<Vec<u8>, String> {
    let req = Request {
        version: Version::V1,
        token,
        seq: fresh_seq(),
        command: Command::LlmInferStart(params),
    };
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let n = encode(&req, &mut buf).map_err(|e| e.to_string())?;
    buf.truncate(n);
    Ok(buf)
}

/// `datactl chat`: one streamed chat turn per message in one conversation.
fn run_chat(
    cli: &Cli,
    client: &mut Client,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let Cmd::Chat {
        messages,
        gen,
        system,
        session,
    } = &cli.cmd
    else {
        unreachable!("run_chat runs chat");
    };
    let Some(token) = cli.token else {
        return usage(err, "no token: pass --token 0x... or set SIS_TOKEN");
    };
    let mut session = *session;
    let mut turn = 0u32;
    let mut args = messages.iter();
    loop {
        let message = if messages.is_empty() {
            let mut l = String::new();
            match input.read_line(&mut l) {
                Ok(0) | Err(_) => return exit::OK,
                Ok(_) => l.trim_end_matches(['\n', '\r']).to_string(),
            }
        } else {
            match args.next() {
                Some(m) => m.clone(),
                None => return exit::OK,
            }
        };
        if message.is_empty() {
            continue;
        }
        turn += 1;
        // A new conversation's system message goes with its first turn.
        let sys = if session.is_none() {
            system.as_deref().unwrap_or("")
        } else {
            ""
        };
        let frame = match gen
            .params(&message, true, sys, true, Some(session.unwrap_or(0)))
            .and_then(|p| v1_frame(token, p))
        {
            Ok(f) => f,
            Err(m) => return usage(err, &m),
        };
        let line = match client.request(&frame) {
            Ok(l) => l,
            Err(e) => return client_error(err, &e),
        };
        let (id, sid) = match parse_reply(&line) {
            Ok(Reply::Ok(f)) => (
                f.get_u64("id").and_then(|v| u32::try_from(v).ok()),
                f.get_u64("session"),
            ),
            _ => return report(&line, false, out, err),
        };
        let (Some(id), Some(sid)) = (id, sid.or(session)) else {
            let _ = writeln!(
                err,
                "datactl: chat turn accepted without id and session: {:?}",
                String::from_utf8_lossy(&line)
            );
            return exit::PROTOCOL;
        };
        session = Some(sid);
        let idle = Duration::from_millis(gen.idle_timeout_ms.max(1));
        let (code, prefill) = follow_stream(client, id, idle, out, err);
        if let Some((prompt, reused)) = prefill {
            let _ = writeln!(
                err,
                "datactl: turn {turn}: prompt {prompt} tokens, {reused} reused, {} computed (session={sid})",
                prompt.saturating_sub(reused)
            );
        }
        if code != exit::OK {
            return code;
        }
    }
}

/// Exit code for a connection-level failure (for callers outside [`run`]).
pub fn transport_exit_code(e: &TransportError) -> i32 {
    match e {
        TransportError::Timeout => exit::TIMEOUT,
        TransportError::LineTooLong => exit::PROTOCOL,
        _ => exit::CONNECTION,
    }
}
