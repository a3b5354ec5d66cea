//! System tests of host control over the virtio-console port `sis.datactl`: the seed's host
//! recipe on the test model (tokens printed by `ctlembed`, `datactl` load/infer `OK`, a refused
//! token, polled and streamed tokens equal to the LLM shell's, `llmjson`), tokens and audit
//! without a model, and a 2,000-frame reliability run (valid, wrong token, truncated, oversize, random, interleaved
//! with noise and split across writes, an LLM VM restart in the middle) where every frame gets
//! exactly one reply, in order, and the audit log counts match.
//!
//! Frames are built here byte by byte from the layout in docs/frames.md (v0), so the test also
//! checks the guest against the specification rather than against the shared codec.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use sis_e2e::text::{self, field};
use sis_e2e::{build_once, Options, Sis, Source};

const BOOT: Duration = Duration::from_secs(60);
const CMD: Duration = Duration::from_secs(20);
const DATACTL: Duration = Duration::from_secs(30);
/// Inference under emulation: generous, every wait is still bounded.
const INFER: Duration = Duration::from_secs(180);

fn boot() -> Sis {
    boot_with(None)
}

/// The committed test model (models/test, made by scripts/make-test-models.py).
fn test_model() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-llama.gguf")
}

fn boot_with(model: Option<std::path::PathBuf>) -> Sis {
    build_once().expect("build");
    let sis = Sis::start(Options {
        no_model: model.is_none(),
        model,
        ..Options::default()
    })
    .expect("start QEMU");
    // Printed during boot, before the prompt.
    sis.expect(Source::Ctl, "VCON: READY", BOOT)
        .expect("the console port is bound");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> prompt");
    sis
}

/// `datactl --retries 4 --wait-ack --token TOKEN ARGS...` (the seed's recipe options).
fn datactl_acked(sis: &Sis, token: &str, args: &[&str]) -> sis_e2e::CommandOutput {
    let mut all = vec!["--retries", "4", "--wait-ack", "--token", token];
    all.extend_from_slice(args);
    sis.datactl(&all, DATACTL).unwrap()
}

/// `EMBED TOKEN: 0x...` printed by `ctlembed <rights>`.
fn embed_token(sis: &Sis, rights: &str) -> u64 {
    let out = sis
        .run(Source::Ctl, &format!("ctlembed {rights}"), CMD)
        .unwrap();
    text::embedded_token(&out)
}

fn header(cmd: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0x43, 0x00, cmd, 0x00];
    f.extend_from_slice(&(len as u32).to_le_bytes());
    f
}

fn load_frame(token: u64, wcet: u64) -> Vec<u8> {
    let mut f = header(0x10, 16);
    f.extend_from_slice(&token.to_le_bytes());
    f.extend_from_slice(&wcet.to_le_bytes());
    f
}

fn infer_frame(token: u64, max_tokens: u16, prompt: &str) -> Vec<u8> {
    let mut f = header(0x11, 10 + prompt.len());
    f.extend_from_slice(&token.to_le_bytes());
    f.extend_from_slice(&max_tokens.to_le_bytes());
    f.extend_from_slice(prompt.as_bytes());
    f
}

fn cancel_frame(token: u64, id: u32) -> Vec<u8> {
    let mut f = header(0x13, 12);
    f.extend_from_slice(&token.to_le_bytes());
    f.extend_from_slice(&id.to_le_bytes());
    f
}

/// A small deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Bytes that never contain the frame magic, so they can only be noise.
    fn noise(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| match self.next() as u8 {
                0x43 => 0x42,
                b => b,
            })
            .collect()
    }
}

/// What a frame is, and which reply codes it may get (`None` = `OK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Valid token and layout: allowed and answered by the LLM partition (or `ERR 0x06`
    /// while it is stopped), unless the rate limiter is locking everyone out.
    Valid,
    /// Wrong token: refused, or rate limited.
    WrongToken,
    /// Valid header, payload shorter than the command's layout: `ERR 0x01` before any auth.
    Truncated,
    /// `len` above the v0 limit, the payload sent and skipped: `ERR 0x04`.
    Oversize,
    /// Unknown command byte: `ERR 0x02`.
    Unsupported,
    /// Valid header of a known command, random payload: malformed or a token that grants
    /// nothing.
    Random,
}

impl Kind {
    fn allows(self, reply: &str) -> bool {
        let code = reply.strip_prefix("ERR 0x").and_then(|r| r.get(..2));
        match (self, code) {
            (Kind::Valid, None) => reply.starts_with("OK"),
            // No model in this run: a load is refused by the LLM partition (0x03), a cancel
            // of an id it does not know gets 0x08, a full job table 0x09; 0x06 while it is
            // stopped; 0x07 during a lock-out.
            (Kind::Valid, Some(c)) => ["03", "06", "07", "08", "09"].contains(&c),
            (Kind::WrongToken, Some(c)) => ["05", "07"].contains(&c),
            (Kind::Truncated, Some(c)) => c == "01",
            (Kind::Oversize, Some(c)) => c == "04",
            (Kind::Unsupported, Some(c)) => c == "02",
            (Kind::Random, Some(c)) => ["01", "05", "07"].contains(&c),
            _ => false,
        }
    }

    /// Whether the guest audits this frame as allowed, given its reply.
    fn audited_allow(self, reply: &str) -> bool {
        self == Kind::Valid && !reply.starts_with("ERR 0x07")
    }
}

fn make_frame(rng: &mut Rng, admin: u64, submit: u64) -> (Kind, Vec<u8>) {
    match rng.below(6) {
        0 => {
            let f = match rng.below(3) {
                0 => load_frame(admin, 25_000),
                1 => infer_frame(submit, 4, "why op b slow?"),
                _ => cancel_frame(submit, rng.below(100) as u32),
            };
            (Kind::Valid, f)
        }
        1 => {
            let bad = rng.next() | 1;
            (Kind::WrongToken, infer_frame(bad, 4, "why op b slow?"))
        }
        2 => {
            // A cancel needs 12 payload bytes; send 4..11 of them.
            let n = 4 + rng.below(8) as usize;
            let mut f = header(0x13, n);
            f.extend(rng.noise(n));
            (Kind::Truncated, f)
        }
        3 => {
            let n = 65 + rng.below(200) as usize;
            let mut f = header(0x11, n);
            f.extend(rng.noise(n));
            (Kind::Oversize, f)
        }
        4 => {
            let mut f = header(0x20 + rng.below(0x40) as u8, 8);
            f.extend(rng.noise(8));
            (Kind::Unsupported, f)
        }
        _ => {
            let cmd = 0x10 + rng.below(4) as u8;
            let n = rng.below(65) as usize;
            let mut f = header(cmd, n);
            f.extend(rng.noise(n));
            (Kind::Random, f)
        }
    }
}

/// A connection to the host-control port reading reply lines.
struct Port {
    w: UnixStream,
    r: BufReader<UnixStream>,
}

impl Port {
    fn connect(sis: &Sis) -> Port {
        let w = UnixStream::connect(sis.datactl_socket()).expect("connect sis.datactl");
        w.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Port { w, r }
    }

    /// Reads reply lines (skipping stream lines) until `n` arrived; panics on a timeout.
    fn replies(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut line = String::new();
            match self.r.read_line(&mut line) {
                Ok(0) => panic!("port closed after {} of {n} replies", out.len()),
                Ok(_) => {
                    let l = line.trim_end_matches('\n').to_string();
                    if l.starts_with("OK") || l.starts_with("ERR ") {
                        out.push(l);
                    }
                }
                Err(e) => panic!("no reply {} of {n}: {e}", out.len() + 1),
            }
        }
        out
    }

    /// True if another line arrives within `wait` (there should be none).
    fn extra_line(&mut self, wait: Duration) -> Option<String> {
        self.w.set_read_timeout(Some(wait)).unwrap();
        let mut line = String::new();
        let r = self.r.read_line(&mut line);
        self.w
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        match r {
            Ok(n) if n > 0 => Some(line),
            _ => None,
        }
    }
}

#[test]
fn tokens_replies_and_audit_without_a_model() {
    let sis = boot();
    let admin = embed_token(&sis, "admin");
    let submit = embed_token(&sis, "submit");
    assert_eq!(admin >> 56, 1, "{admin:#x}");
    assert_eq!(submit >> 56, 2, "{submit:#x}");
    assert_eq!(admin & ((1 << 56) - 1), submit & ((1 << 56) - 1));
    // Both carry the low 56 bits of the control key.
    let key = sis.run(Source::Ctl, "ctlkey", CMD).unwrap();
    let key_hex = key
        .split("CTL KEY: 0x")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no key in:\n{key}"));
    let key = u64::from_str_radix(key_hex, 16).unwrap();
    assert_eq!(key & ((1 << 56) - 1), admin & ((1 << 56) - 1));

    let admin_hex = format!("{admin:#x}");
    let submit_hex = format!("{submit:#x}");
    let load = datactl_acked(&sis, &admin_hex, &["llm-load", "--wcet-cycles", "25000"]);
    // Allowed and forwarded; the LLM partition has no model file and says so.
    assert_eq!(load.stdout.trim(), "ERR 0x03", "load: {load:?}");
    let infer = datactl_acked(
        &sis,
        &submit_hex,
        &["llm-infer", "why op b slow?", "--max-tokens", "4"],
    );
    // Refused at admission, at once: no model (the seed's code).
    assert_eq!(infer.stdout.trim(), "ERR 0x03", "infer: {infer:?}");
    // A submit token may not load the model; a made-up token gets nothing.
    let wrong_right = sis
        .datactl(&["--wait-ack", "--token", &submit_hex, "llm-load"], DATACTL)
        .unwrap();
    assert_eq!(wrong_right.stdout.trim(), "ERR 0x05", "{wrong_right:?}");
    let refused = sis
        .datactl(
            &[
                "--retries",
                "2",
                "--wait-ack",
                "--token",
                "0x1",
                "llm-infer",
                "why op b slow?",
                "--max-tokens",
                "4",
            ],
            DATACTL,
        )
        .unwrap();
    assert_eq!(refused.stdout.trim(), "ERR 0x05", "{refused:?}");
    assert_eq!(refused.code, Some(1), "{refused:?}");

    // The audit log as JSON has the two allows (load with its WCET, infer with its prompt
    // length) and the two denies, from the control VM (vm 0), each exactly once.
    let json = sis.run(Source::Ctl, "llmjson", CMD).unwrap();
    let start = json.find('[').expect("a JSON array");
    let end = json.rfind(']').expect("a JSON array");
    let records: serde_json::Value =
        serde_json::from_str(&json[start..=end].replace(['\r', '\n'], "")).expect("valid JSON");
    let ctl: Vec<&serde_json::Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["vm"] == 0 && (r["op"] == 6 || r["op"] == 7))
        .collect();
    let summary: Vec<(u64, u64, u64, u64)> = ctl
        .iter()
        .map(|r| {
            (
                r["op"].as_u64().unwrap(),
                r["extra"].as_u64().unwrap() & 0xff,
                r["wcet_cycles"].as_u64().unwrap(),
                r["prompt_len"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (6, 0x10, 25_000, 0),
            (6, 0x11, 0, 14),
            (7, 0x10, 0, 0),
            (7, 0x11, 0, 14)
        ],
        "{json}"
    );
    let status = sis.run(Source::Ctl, "status", CMD).unwrap();
    assert_eq!(field(&status, "frames: rx="), 4, "{status}");
    assert_eq!(field(&status, " tx="), 4, "{status}");
    assert_eq!(field(&status, "ctl_allow="), 2, "{status}");
    assert_eq!(field(&status, "ctl_deny="), 2, "{status}");

    // A host that drops the connection half-way through a frame does not poison the next
    // connection: the partial frame is abandoned (no reply) when the port closes.
    let frame = cancel_frame(submit, 9);
    {
        let mut port = Port::connect(&sis);
        port.w.write_all(&frame[..10]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut port = Port::connect(&sis);
    port.w.write_all(&frame).unwrap();
    let r = port.replies(1).remove(0);
    // Cancel of an id nobody knows: answered by the LLM partition.
    assert_eq!(r, "ERR 0x08");
    assert_eq!(port.extra_line(Duration::from_millis(300)), None);
    let status = sis.run(Source::Ctl, "status", CMD).unwrap();
    assert_eq!(field(&status, "frames: rx="), 5, "{status}");
    assert_eq!(field(&status, "abandoned_bytes="), 10, "{status}");
}

#[test]
fn two_thousand_frames_get_one_reply_each_in_order_across_an_llm_restart() {
    let sis = boot();
    let admin = embed_token(&sis, "admin");
    let submit = embed_token(&sis, "submit");
    let mut rng = Rng(0x5151_2026_c0ff_ee01);
    let mut port = Port::connect(&sis);

    const FRAMES: usize = 2000;
    const BATCH: usize = 50;
    let mut kinds = Vec::with_capacity(FRAMES);
    let mut replies: Vec<String> = Vec::with_capacity(FRAMES);
    let mut restarted = false;
    let t0 = Instant::now();
    while kinds.len() < FRAMES {
        if !restarted && kinds.len() >= FRAMES / 2 {
            let out = sis.run(Source::Hv, "restart llm", CMD).unwrap();
            assert!(out.contains("vm llm restarted"), "{out}");
            restarted = true;
        }
        let mut wire = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..BATCH.min(FRAMES - kinds.len()) {
            if rng.below(3) == 0 {
                let n = 1 + rng.below(40) as usize;
                wire.extend(rng.noise(n));
            }
            let (k, f) = make_frame(&mut rng, admin, submit);
            batch.push(k);
            wire.extend(f);
        }
        // Split the batch across writes at random points (frames straddle writes).
        let mut at = 0;
        while at < wire.len() {
            let n = (1 + rng.below(700) as usize).min(wire.len() - at);
            port.w.write_all(&wire[at..at + n]).unwrap();
            at += n;
        }
        let got = port.replies(batch.len());
        for (i, (k, r)) in batch.iter().zip(&got).enumerate() {
            assert!(
                k.allows(r),
                "frame {} ({k:?}) got '{r}'",
                kinds.len() + i + 1
            );
        }
        kinds.extend(batch);
        replies.extend(got);
    }
    let elapsed = t0.elapsed();
    assert_eq!(port.extra_line(Duration::from_millis(500)), None);
    eprintln!(
        "{FRAMES} frames in {:.1} s ({:.0} frames/s)",
        elapsed.as_secs_f64(),
        FRAMES as f64 / elapsed.as_secs_f64()
    );

    // Each kind occurred, and the guest's counters agree with what the host saw.
    for k in [
        Kind::Valid,
        Kind::WrongToken,
        Kind::Truncated,
        Kind::Oversize,
        Kind::Unsupported,
        Kind::Random,
    ] {
        assert!(kinds.contains(&k), "no {k:?} frame was sent");
    }
    let allows = kinds
        .iter()
        .zip(&replies)
        .filter(|(k, r)| k.audited_allow(r))
        .count() as u64;
    let denies = FRAMES as u64 - allows;
    let status = sis.run(Source::Ctl, "status", CMD).unwrap();
    assert_eq!(field(&status, "frames: rx="), FRAMES as u64, "{status}");
    assert_eq!(field(&status, " tx="), FRAMES as u64, "{status}");
    assert_eq!(field(&status, "ctl_allow="), allows, "{status}");
    assert_eq!(field(&status, "ctl_deny="), denies, "{status}");
    assert_eq!(field(&status, "audit: allow="), allows, "{status}");
    assert_eq!(field(&status, " failed="), 0, "{status}");
    assert_eq!(field(&status, "backpressure: drops="), 0, "{status}");

    // Once any lock-out has passed, valid frames are allowed and forwarded again.
    let last_wait = replies
        .iter()
        .rev()
        .find_map(|r| r.strip_prefix("ERR 0x07 retry_ms="))
        .map_or(0, |ms| ms.trim().parse::<u64>().unwrap());
    std::thread::sleep(Duration::from_millis(last_wait.min(61_000) + 200));
    let deadline = Instant::now() + Duration::from_secs(70);
    loop {
        port.w.write_all(&load_frame(admin, 25_000)).unwrap();
        let r = port.replies(1).remove(0);
        if !r.starts_with("ERR 0x07") {
            assert!(Kind::Valid.allows(&r), "after the lock-out: '{r}'");
            break;
        }
        assert!(Instant::now() < deadline, "still locked out: {r}");
        let ms: u64 = r["ERR 0x07 retry_ms=".len()..].trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(ms + 100));
    }

    // While the LLM VM is stopped every valid frame gets an immediate ERR 0x06 (the doorbell
    // is refused, nothing is forwarded)...
    const PROBES: u64 = 20;
    let out = sis.run(Source::Hv, "stop llm", CMD).unwrap();
    assert!(out.contains("vm llm stopped"), "{out}");
    let before = sis.run(Source::Ctl, "status", CMD).unwrap();
    for k in 0..PROBES {
        let t = Instant::now();
        port.w.write_all(&load_frame(admin, 1000 + k)).unwrap();
        let r = port.replies(1).remove(0);
        assert_eq!(r, "ERR 0x06", "probe {k} while llm is stopped");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "not immediate: {:?}",
            t.elapsed()
        );
    }
    let stopped = sis.run(Source::Ctl, "status", CMD).unwrap();
    assert_eq!(
        field(&stopped, "unreachable=") - field(&before, "unreachable="),
        PROBES,
        "{stopped}"
    );
    // ...and after it is back, service resumes by itself: every frame goes over the ring and
    // is answered from the LLM partition's response.
    sis.mark(Source::Llm);
    let out = sis.run(Source::Hv, "start llm", CMD).unwrap();
    assert!(out.contains("vm llm started"), "{out}");
    sis.expect(Source::Llm, "shared ring attached", BOOT)
        .expect("llm re-attaches to the ring");
    let before = sis.run(Source::Ctl, "status", CMD).unwrap();
    for k in 0..PROBES {
        port.w.write_all(&load_frame(admin, 2000 + k)).unwrap();
        let r = port.replies(1).remove(0);
        assert!(
            Kind::Valid.allows(&r) && r != "ERR 0x07",
            "probe {k} after start: '{r}'"
        );
    }
    let after = sis.run(Source::Ctl, "status", CMD).unwrap();
    assert_eq!(
        field(&after, " sent=") - field(&before, " sent="),
        PROBES,
        "{after}"
    );
    assert_eq!(
        field(&after, "responses=") - field(&before, "responses="),
        PROBES,
        "{after}"
    );
    // Nothing refused while the VM was stopped was published, so nothing of it ran later.
    assert_eq!(field(&after, "unmatched="), 0, "{after}");
    assert_eq!(
        field(&after, "timeouts="),
        field(&before, "timeouts="),
        "{after}"
    );
}

/// Undoes the reply escaping of docs/frames.md §5.1 (`\\`, `\|`, `\n`, `\r`, `\t`, `\xHH`).
fn unescape_reply(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match b.get(i + 1) {
            Some(b'n') => (b'\n', 2),
            Some(b'r') => (b'\r', 2),
            Some(b't') => (b'\t', 2),
            Some(b'x') => {
                let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                (u8::from_str_radix(hex, 16).unwrap(), 4)
            }
            Some(&c) => (c, 2),
            None => panic!("dangling escape in {s:?}"),
        };
        out.push(byte);
        i += used;
    }
    out
}

/// Undoes the LLM shell's escaping of generated text (`\\`, `\n`, `\r`, `\t`, `\xHH`).
fn unescape_shell(s: &str) -> String {
    String::from_utf8_lossy(&unescape_reply(s)).into_owned()
}

/// A version-1 `LlmInferStart` frame (greedy) with the given flags.
fn infer_v1_frame(token: u64, seq: u32, flags: u8, max_tokens: u16, prompt: &str) -> Vec<u8> {
    let mut f = vec![0x43, 0x01, 0x11, flags];
    f.extend_from_slice(&((26 + prompt.len()) as u32).to_le_bytes());
    f.extend_from_slice(&token.to_le_bytes());
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&max_tokens.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes()); // temperature: greedy
    f.extend_from_slice(&1000u16.to_le_bytes()); // top-p off
    f.extend_from_slice(&0u64.to_le_bytes()); // seed
    f.extend_from_slice(prompt.as_bytes());
    f
}

fn poll_frame(token: u64, id: u32) -> Vec<u8> {
    let mut f = header(0x12, 12);
    f.extend_from_slice(&token.to_le_bytes());
    f.extend_from_slice(&id.to_le_bytes());
    f
}

/// Reads one line (any kind), panicking on a timeout.
fn read_line(port: &mut Port) -> String {
    let mut line = String::new();
    let n = port.r.read_line(&mut line).expect("a line from the guest");
    assert!(n > 0, "port closed");
    line.trim_end_matches('\n').to_string()
}

#[test]
fn seed_recipe_with_a_model_streams_the_llm_shells_tokens() {
    let sis = boot_with(Some(test_model()));
    let admin = embed_token(&sis, "admin");
    let submit = embed_token(&sis, "submit");
    let (admin_hex, submit_hex) = (format!("{admin:#x}"), format!("{submit:#x}"));
    const PROMPT: &str = "why op b slow?";

    // The seed's host recipe, now answered by the LLM partition.
    let load = datactl_acked(&sis, &admin_hex, &["llm-load", "--wcet-cycles", "25000"]);
    assert_eq!(load.stdout.trim(), "OK", "{load:?}");
    let infer = datactl_acked(
        &sis,
        &submit_hex,
        &["llm-infer", PROMPT, "--max-tokens", "4"],
    );
    let id: u32 = infer
        .stdout
        .trim()
        .strip_prefix("OK id=")
        .unwrap_or_else(|| panic!("infer: {infer:?}"))
        .parse()
        .unwrap();
    let refused = sis
        .datactl(
            &[
                "--wait-ack",
                "--token",
                "0x1",
                "llm-infer",
                PROMPT,
                "--max-tokens",
                "4",
            ],
            DATACTL,
        )
        .unwrap();
    assert_eq!(refused.stdout.trim(), "ERR 0x05", "{refused:?}");

    // The same prompt in the LLM shell: the reference text.
    let shell = sis
        .run(
            Source::Llm,
            &format!("llminfer \"{PROMPT}\" --max-tokens 4"),
            INFER,
        )
        .unwrap();
    let out = shell
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("[LLM] output: "))
        .unwrap_or_else(|| panic!("no output line in:\n{shell}"));
    let reference = unescape_shell(out);
    assert!(!reference.is_empty(), "{shell}");

    // Polled: items until done=1.
    let mut port = Port::connect(&sis);
    let deadline = Instant::now() + INFER;
    let mut polled = Vec::new();
    loop {
        port.w.write_all(&poll_frame(submit, id)).unwrap();
        let r = port.replies(1).remove(0);
        let items = r
            .split(" items=")
            .nth(1)
            .unwrap_or_else(|| panic!("poll: {r}"));
        if field(&r, " n=") > 0 {
            // Items are separated by unescaped '|'.
            let mut cur = String::new();
            let mut esc = false;
            for c in items.chars() {
                if c == '|' && !esc {
                    polled.extend(unescape_reply(&cur));
                    cur.clear();
                    continue;
                }
                esc = c == '\\' && !esc;
                cur.push(c);
            }
            polled.extend(unescape_reply(&cur));
        }
        if r.contains(" done=1 ") {
            break;
        }
        assert!(Instant::now() < deadline, "inference {id} never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        String::from_utf8_lossy(&polled),
        reference,
        "polled vs llminfer"
    );

    // Streamed (v1, FLAG_STREAM): STREAM lines as produced, then END.
    port.w
        .write_all(&infer_v1_frame(submit, 1, 0x01, 4, PROMPT))
        .unwrap();
    let ok = read_line(&mut port);
    let sid: u32 = ok
        .strip_prefix("OK id=")
        .unwrap_or_else(|| panic!("stream start: {ok}"))
        .parse()
        .unwrap();
    let mut streamed = Vec::new();
    let mut next_i = 0;
    let end = loop {
        let l = read_line(&mut port);
        if let Some(rest) = l.strip_prefix(&format!("STREAM id={sid} i=")) {
            let (i, tok) = rest.split_once(" tok=").unwrap();
            assert_eq!(i.parse::<u32>().unwrap(), next_i, "{l}");
            next_i += 1;
            streamed.extend(unescape_reply(tok));
        } else if l.starts_with(&format!("END id={sid} ")) {
            break l;
        } else {
            panic!("unexpected line while streaming: {l}");
        }
    };
    assert_eq!(end, format!("END id={sid} n=4 reason=max"));
    assert_eq!(
        String::from_utf8_lossy(&streamed),
        reference,
        "streamed vs llminfer"
    );

    // The audit log has the control plane's allow/deny and the LLM partition's own records.
    let json = sis.run(Source::Ctl, "llmjson", CMD).unwrap();
    let start = json.find('[').expect("a JSON array");
    let stop = json.rfind(']').expect("a JSON array");
    let records: serde_json::Value =
        serde_json::from_str(&json[start..=stop].replace(['\r', '\n'], "")).expect("valid JSON");
    let ops: Vec<(u64, u64, u64)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["vm"].as_u64().unwrap(),
                r["op"].as_u64().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    // ctl's allow and deny; the LLM's load, infer (polled host request and the shell's
    // reference run) and stream (the host's --stream request) records.
    for want in [(0, 6, 1), (0, 7, 2), (1, 1, 1), (1, 3, 1), (1, 4, 1)] {
        assert!(
            ops.contains(&want),
            "no (vm, op, status) {want:?} in {ops:?}"
        );
    }
}

/// The value after `label` (`ADMIN TOKEN: 0x...`) in a command's output.
fn printed_value(out: &str, label: &str) -> u64 {
    let hex = out
        .split(&format!("{label}: 0x"))
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label} in:\n{out}"));
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn rotation_revokes_old_tokens_and_bad_values_change_nothing() {
    let sis = boot();
    let load = |token: u64| -> String {
        let hex = format!("{token:#x}");
        let out = sis
            .datactl(&["--wait-ack", "--token", &hex, "llm-load"], DATACTL)
            .unwrap();
        out.stdout.trim().to_string()
    };
    // Legacy ADMIN token: rotating it revokes the old one at once.
    let old = printed_value(
        &sis.run(Source::Ctl, "ctladmin show", CMD).unwrap(),
        "ADMIN TOKEN",
    );
    assert_eq!(
        load(old),
        "ERR 0x03",
        "allowed, then refused by the LLM (no model)"
    );
    let new = printed_value(
        &sis.run(Source::Ctl, "ctladmin", CMD).unwrap(),
        "ADMIN TOKEN",
    );
    assert_ne!(old, new);
    assert_eq!(load(old), "ERR 0x05");
    assert_eq!(load(new), "ERR 0x03");
    // Embedded tokens die with the control key.
    let embedded = embed_token(&sis, "admin");
    assert_eq!(load(embedded), "ERR 0x03");
    let out = sis.run(Source::Ctl, "ctlkey rotate", CMD).unwrap();
    printed_value(&out, "CTL KEY");
    assert_eq!(load(embedded), "ERR 0x05");
    assert_eq!(load(embed_token(&sis, "admin")), "ERR 0x03");
    // Bad values are refused with the reason and change nothing.
    let submit = printed_value(
        &sis.run(Source::Ctl, "ctlsubmit show", CMD).unwrap(),
        "SUBMIT TOKEN",
    );
    let out = sis.run(Source::Ctl, "ctlsubmit 0", CMD).unwrap();
    assert!(
        out.contains("refused: a token secret must not be zero"),
        "{out}"
    );
    let out = sis
        .run(Source::Ctl, &format!("ctlsubmit {new:#x}"), CMD)
        .unwrap();
    assert!(
        out.contains("ADMIN and SUBMIT secrets must differ"),
        "{out}"
    );
    let out = sis.run(Source::Ctl, "ctlsubmit zz", CMD).unwrap();
    assert!(out.contains("bad value 'zz'"), "{out}");
    let out = sis.run(Source::Ctl, "ctlembed root", CMD).unwrap();
    assert!(out.contains("usage: ctlembed admin|submit|all"), "{out}");
    let now = printed_value(
        &sis.run(Source::Ctl, "ctlsubmit show", CMD).unwrap(),
        "SUBMIT TOKEN",
    );
    assert_eq!(now, submit);
    let status = sis.run(Source::Ctl, "status", CMD).unwrap();
    assert_eq!(field(&status, "rotations="), 2, "{status}");
}

#[test]
fn host_control_resumes_after_the_control_guest_restarts() {
    let sis = boot_with(Some(test_model()));
    let admin = format!("{:#x}", embed_token(&sis, "admin"));
    let load = |token: &str| datactl_acked(&sis, token, &["llm-load", "--wcet-cycles", "25000"]);
    assert_eq!(load(&admin).stdout.trim(), "OK");

    // A new control guest from the pristine image: the device is set up again, the port bound,
    // fresh secrets drawn, and the host connection keeps working without any host action.
    let out = sis.run(Source::Hv, "restart ctl", CMD).unwrap();
    assert!(out.contains("vm ctl restarted"), "{out}");
    sis.expect(Source::Ctl, "VCON: READY", BOOT)
        .expect("port bound again");
    sis.wait_prompt(Source::Ctl, BOOT).expect("ctl> again");
    let fresh = format!("{:#x}", embed_token(&sis, "admin"));
    assert_ne!(fresh, admin, "secrets are drawn again at boot");
    let old = load(&admin);
    assert_eq!(
        old.stdout.trim(),
        "ERR 0x05",
        "the old token is dead: {old:?}"
    );
    assert_eq!(load(&fresh).stdout.trim(), "OK");
    let submit = format!("{:#x}", embed_token(&sis, "submit"));
    let infer = datactl_acked(
        &sis,
        &submit,
        &["llm-infer", "why op b slow?", "--max-tokens", "4"],
    );
    assert!(infer.stdout.trim().starts_with("OK id="), "{infer:?}");
    // The ring came back too (new epoch, the LLM guest re-attached).
    let ping = sis.run(Source::Ctl, "ping 10", CMD).unwrap();
    assert!(ping.contains("ping: 10/10 replies"), "{ping}");
}
