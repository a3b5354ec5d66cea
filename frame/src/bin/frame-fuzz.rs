//! Randomised stress test of the frame decoder, for millions of cases:
//! `cargo run --release -p sis-frame --bin frame-fuzz -- --cases 5000000 [--seed N]`.
//!
//! Each case builds a byte stream of valid frames (random requests, both versions), garbage,
//! oversize headers and, in half of the cases, random mutations, then checks:
//! 1. feeding in random chunks gives the same events and counters as feeding all at once;
//! 2. every byte is accounted for (frames + garbage + skipped + pending = total);
//! 3. every accepted request is byte-for-byte the canonical encoding of itself (the decoder
//!    never accepts a frame that is not well formed);
//! 4. unmutated streams yield exactly the generated frames and oversize errors, in order.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_os = "none"))]
fn main() {
    std::process::exit(host::run());
}

#[cfg(not(target_os = "none"))]
mod host {
    extern crate std;
    use sis_frame::codec::{
        encode, Command, Decoder, Event, FrameError, InferParams, Request, Sampling, Stops,
        Version, MAGIC, MAX_FRAME_LEN, MAX_PAYLOAD_V0, MAX_PAYLOAD_V1, MAX_PROMPT_V0,
        MAX_PROMPT_V1, MAX_SKIP_LEN,
    };
    use std::string::String;
    use std::vec::Vec;
    use std::{eprintln, format, println};

    /// splitmix64: small, fast, good enough to drive a fuzzer; seeded for repeatability.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn chance(&mut self, pct: u64) -> bool {
            self.below(100) < pct
        }
    }

    /// An owned expected event.
    #[derive(Debug, PartialEq)]
    enum Expect {
        Frame(Vec<u8>),
        Oversize(u32),
    }

    fn random_prompt(rng: &mut Rng, max: usize) -> String {
        const WORDS: [&str; 8] = ["why", " op", " b", " slow", "?", " é", "C\u{1}", " 日本"];
        let mut s = String::new();
        let target = 1 + rng.below(max as u64) as usize;
        while s.len() < target {
            let w = WORDS[rng.below(WORDS.len() as u64) as usize];
            if s.len() + w.len() > max {
                break;
            }
            s.push_str(w);
        }
        if s.is_empty() {
            s.push('x');
        }
        s
    }

    fn random_frame(rng: &mut Rng, out: &mut [u8]) -> usize {
        let version = if rng.chance(50) {
            Version::V0
        } else {
            Version::V1
        };
        let max_prompt = match version {
            Version::V0 => MAX_PROMPT_V0,
            Version::V1 => {
                if rng.chance(10) {
                    MAX_PROMPT_V1
                } else {
                    80
                }
            }
        };
        let prompt = random_prompt(rng, max_prompt);
        let v1 = version == Version::V1;
        let command = match rng.below(4) {
            0 => Command::LlmLoad {
                wcet_cycles: rng.chance(50).then(|| rng.next()),
            },
            1 => {
                let chat = v1 && rng.chance(50);
                Command::LlmInferStart(InferParams {
                    prompt: &prompt,
                    max_tokens: 1 + rng.below(512) as u16,
                    sampling: if v1 {
                        Sampling {
                            temperature_milli: rng.below(5001) as u16,
                            top_p_milli: rng.below(1001) as u16,
                            seed: rng.next() & u64::from(u32::MAX),
                            top_k: if rng.chance(50) {
                                rng.below(100) as u32
                            } else {
                                0
                            },
                            min_p_milli: if rng.chance(50) {
                                rng.below(1001) as u16
                            } else {
                                0
                            },
                            repeat_penalty_milli: if rng.chance(50) {
                                1 + rng.below(10_000) as u16
                            } else {
                                1000
                            },
                            repeat_last_n: if rng.chance(50) {
                                rng.below(256) as u32
                            } else {
                                64
                            },
                        }
                    } else {
                        Sampling::GREEDY
                    },
                    chat,
                    stream: v1 && rng.chance(50),
                    stop: if v1 {
                        let stops = ["\n\n", "é|日", "User:", "</s>"];
                        Stops::new(&stops[..rng.below(5) as usize]).unwrap_or(Stops::NONE)
                    } else {
                        Stops::NONE
                    },
                    system: if chat && rng.chance(50) {
                        "You are terse. Réponds brièvement."
                    } else {
                        ""
                    },
                    session: (chat && rng.chance(50)).then(|| rng.next()),
                })
            }
            2 => Command::LlmInferPoll {
                infer_id: rng.next() as u32,
                max: rng.chance(50).then(|| rng.next() as u16),
            },
            _ => Command::LlmCancel {
                infer_id: rng.next() as u32,
            },
        };
        let req = Request {
            version,
            token: rng.next(),
            seq: if v1 { rng.next() as u32 } else { 0 },
            command,
        };
        encode(&req, out).expect("generated requests are valid")
    }

    /// Build one case's stream and, for unmutated streams, its expected events.
    fn build_case(rng: &mut Rng, stream: &mut Vec<u8>) -> Option<Vec<Expect>> {
        stream.clear();
        let mut expect = Vec::new();
        let mut buf = [0u8; MAX_FRAME_LEN];
        for _ in 0..1 + rng.below(6) {
            match rng.below(10) {
                0..=5 => {
                    let n = random_frame(rng, &mut buf);
                    stream.extend_from_slice(&buf[..n]);
                    expect.push(Expect::Frame(buf[..n].to_vec()));
                }
                6 | 7 => {
                    // Garbage without MAGIC, so the expected events stay exact.
                    for _ in 0..rng.below(40) {
                        let b = rng.next() as u8;
                        stream.push(if b == MAGIC { b'c' } else { b });
                    }
                }
                8 => {
                    // Oversize frame that is skipped exactly; its body may hold anything.
                    let version = rng.below(2) as u8;
                    let max = if version == 0 {
                        MAX_PAYLOAD_V0
                    } else {
                        MAX_PAYLOAD_V1
                    };
                    let len = max as u32 + 1 + rng.below(300) as u32;
                    stream.extend_from_slice(&[MAGIC, version, 0x11, 0]);
                    stream.extend_from_slice(&len.to_le_bytes());
                    for _ in 0..len {
                        stream.push(rng.next() as u8);
                    }
                    expect.push(Expect::Oversize(len));
                }
                _ => {
                    // Implausible length: reported, then the decoder resyncs at once.
                    let len = MAX_SKIP_LEN + 1 + (rng.next() as u32 % 1000);
                    stream.extend_from_slice(&[MAGIC, 0, 0x10, 0]);
                    stream.extend_from_slice(&len.to_le_bytes());
                    expect.push(Expect::Oversize(len));
                }
            }
        }
        if rng.chance(50) {
            for _ in 0..1 + rng.below(4) {
                if stream.is_empty() {
                    break;
                }
                let at = rng.below(stream.len() as u64) as usize;
                match rng.below(3) {
                    0 => stream[at] ^= 1 << rng.below(8),
                    1 => {
                        stream.remove(at);
                    }
                    _ => stream.insert(at, rng.next() as u8),
                }
            }
            return None;
        }
        Some(expect)
    }

    /// Run the decoder over `stream` in chunks; record owned events and check invariant 3.
    fn decode(stream: &[u8], rng: Option<&mut Rng>) -> Result<(Vec<Expect>, Decoder), String> {
        let mut dec = Decoder::new();
        let mut events = Vec::new();
        let mut pos = 0usize;
        let mut rng = rng;
        let mut buf = [0u8; MAX_FRAME_LEN];
        while pos < stream.len() {
            let chunk_end = match rng.as_deref_mut() {
                Some(r) => (pos + 1 + r.below(64) as usize).min(stream.len()),
                None => stream.len(),
            };
            let mut chunk = &stream[pos..chunk_end];
            while !chunk.is_empty() {
                let (used, ev) = dec.feed(chunk);
                let end = pos + used;
                match ev {
                    Some(Event::Request(req)) => {
                        let n = encode(&req, &mut buf).map_err(|e| format!("re-encode: {e}"))?;
                        if end < n || stream[end - n..end] != buf[..n] {
                            return Err(format!(
                                "accepted a frame that is not its canonical encoding: {req:?}"
                            ));
                        }
                        events.push(Expect::Frame(buf[..n].to_vec()));
                    }
                    Some(Event::Rejected(r)) => {
                        if let FrameError::Oversize { len } = r.error {
                            events.push(Expect::Oversize(len));
                        }
                    }
                    None => {}
                }
                pos = end;
                chunk = &chunk[used..];
            }
        }
        let s = dec.stats();
        let accounted =
            s.frame_bytes + s.garbage_bytes + s.skipped_bytes + dec.pending_bytes() as u64;
        // Bytes still owed to an oversize skip were not fed at all, so they are not counted.
        if accounted != stream.len() as u64 {
            return Err(format!(
                "byte accounting: {accounted} accounted, {} fed ({s:?})",
                stream.len()
            ));
        }
        Ok((events, dec))
    }

    fn check_case(rng: &mut Rng, stream: &mut Vec<u8>) -> Result<(), String> {
        let expect = build_case(rng, stream);
        let (whole, dec_whole) = decode(stream, None)?;
        let (chunked, dec_chunked) = decode(stream, Some(rng))?;
        if whole != chunked || dec_whole.stats() != dec_chunked.stats() {
            return Err("chunked feeding differs from feeding all at once".into());
        }
        if let Some(expect) = expect {
            if whole != expect {
                return Err(format!(
                    "clean stream: expected {} events, got {}",
                    expect.len(),
                    whole.len()
                ));
            }
        }
        Ok(())
    }

    fn arg(args: &[String], name: &str) -> Result<Option<u64>, String> {
        match args.iter().position(|a| a == name) {
            None => Ok(None),
            Some(i) => args
                .get(i + 1)
                .and_then(|v| v.replace('_', "").parse().ok())
                .map(Some)
                .ok_or_else(|| format!("{name} needs a number")),
        }
    }

    pub fn run() -> i32 {
        let args: Vec<String> = std::env::args().skip(1).collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            println!("usage: frame-fuzz [--cases N] [--seed S]");
            return 0;
        }
        if let Some(bad) = args
            .iter()
            .step_by(2)
            .find(|a| *a != "--cases" && *a != "--seed")
        {
            eprintln!(
                "frame-fuzz: unknown argument {bad:?} (usage: frame-fuzz [--cases N] [--seed S])"
            );
            return 2;
        }
        let (cases, seed) = match (arg(&args, "--cases"), arg(&args, "--seed")) {
            (Ok(c), Ok(s)) => (c.unwrap_or(100_000), s.unwrap_or(0x5eed)),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("frame-fuzz: {e}");
                return 2;
            }
        };
        let start = std::time::Instant::now();
        let mut stream = Vec::new();
        let mut bytes = 0u64;
        for case in 0..cases {
            let mut rng = Rng(seed ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d));
            if let Err(e) = check_case(&mut rng, &mut stream) {
                eprintln!("frame-fuzz: case {case} (seed {seed}) FAILED: {e}");
                eprintln!("stream: {stream:02x?}");
                return 1;
            }
            bytes += stream.len() as u64;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "frame-fuzz: {cases} cases, {bytes} bytes, all invariants held ({:.0} cases/s, {:.1} MB/s decoded x2)",
            cases as f64 / secs,
            bytes as f64 * 2.0 / secs / 1e6
        );
        0
    }
}
