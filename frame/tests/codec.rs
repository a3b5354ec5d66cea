//! Codec tests: exact bytes, round trips, every error kind, resync and oversize handling.

use sis_frame::codec::*;
use sis_frame::reply::ErrorCode;

/// Feed everything, collecting owned results: Ok(encoded canonical bytes) or Err(error).
fn decode_all(dec: &mut Decoder, mut input: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut out = Vec::new();
    let mut buf = [0u8; MAX_FRAME_LEN];
    while !input.is_empty() {
        let (used, ev) = dec.feed(input);
        assert!(used > 0, "decoder must make progress");
        match ev {
            Some(Event::Request(r)) => {
                let n = encode(&r, &mut buf).unwrap();
                out.push(Ok(buf[..n].to_vec()));
            }
            Some(Event::Rejected(r)) => out.push(Err(r.error)),
            None => {}
        }
        input = &input[used..];
    }
    out
}

fn frame(req: &Request<'_>) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME_LEN];
    let n = encode(req, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn raw(version: u8, cmd: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![MAGIC, version, cmd, flags];
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn one(bytes: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut dec = Decoder::new();
    let mut evs = decode_all(&mut dec, bytes);
    assert_eq!(evs.len(), 1, "expected exactly one event from {bytes:02x?}");
    evs.pop().unwrap()
}

const LOAD_V0: Request<'static> = Request {
    version: Version::V0,
    token: 0x0100_0000_0000_0042,
    seq: 0,
    command: Command::LlmLoad {
        wcet_cycles: Some(25_000),
    },
};

#[test]
fn v0_load_is_byte_exact() {
    let bytes = frame(&LOAD_V0);
    let mut want = vec![0x43, 0, 0x10, 0, 16, 0, 0, 0];
    want.extend_from_slice(&0x0100_0000_0000_0042u64.to_le_bytes());
    want.extend_from_slice(&25_000u64.to_le_bytes());
    assert_eq!(bytes, want);
}

#[test]
fn v0_infer_is_byte_exact() {
    let req = Request {
        version: Version::V0,
        token: 2,
        seq: 0,
        command: Command::LlmInferStart(InferParams {
            prompt: "why op b slow?",
            max_tokens: 4,
            sampling: Sampling::GREEDY,
            chat: false,
            stream: false,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
    };
    let bytes = frame(&req);
    let mut want = vec![0x43, 0, 0x11, 0, 24, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 4, 0];
    want.extend_from_slice(b"why op b slow?");
    assert_eq!(bytes, want);
}

#[test]
fn v1_infer_is_byte_exact() {
    let req = Request {
        version: Version::V1,
        token: 3,
        seq: 9,
        command: Command::LlmInferStart(InferParams {
            prompt: "hi",
            max_tokens: 0x0102,
            sampling: Sampling {
                temperature_milli: 700,
                top_p_milli: 900,
                seed: 0x1122_3344,
                ..Sampling::GREEDY
            },
            chat: true,
            stream: true,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
    };
    let bytes = frame(&req);
    let mut want = vec![0x43, 1, 0x11, FLAG_STREAM | FLAG_CHAT, 28, 0, 0, 0];
    want.extend_from_slice(&3u64.to_le_bytes());
    want.extend_from_slice(&9u32.to_le_bytes());
    want.extend_from_slice(&[0x02, 0x01]);
    want.extend_from_slice(&700u16.to_le_bytes());
    want.extend_from_slice(&900u16.to_le_bytes());
    want.extend_from_slice(&0x1122_3344u64.to_le_bytes());
    want.extend_from_slice(b"hi");
    assert_eq!(bytes, want);
}

#[test]
fn v1_stop_block_is_byte_exact_and_checked() {
    let req = Request {
        version: Version::V1,
        token: 3,
        seq: 9,
        command: Command::LlmInferStart(InferParams {
            prompt: "hi",
            max_tokens: 4,
            sampling: Sampling::GREEDY,
            chat: false,
            stream: true,
            stop: Stops::new(&["\n\n", "é"]).unwrap(),
            system: "",
            session: None,
        }),
    };
    let bytes = frame(&req);
    let mut want = vec![0x43, 1, 0x11, FLAG_STREAM | FLAG_STOP, 35, 0, 0, 0];
    want.extend_from_slice(&3u64.to_le_bytes());
    want.extend_from_slice(&9u32.to_le_bytes());
    want.extend_from_slice(&4u16.to_le_bytes());
    want.extend_from_slice(&0u16.to_le_bytes());
    want.extend_from_slice(&1000u16.to_le_bytes());
    want.extend_from_slice(&0u64.to_le_bytes());
    want.extend_from_slice(&[2, 2, b'\n', b'\n', 2, 0xc3, 0xa9]);
    want.extend_from_slice(b"hi");
    assert_eq!(bytes, want);
    let mut dec = Decoder::new();
    assert!(matches!(dec.feed(&bytes).1, Some(Event::Request(r)) if r == req));
    // Zero or five strings, an empty or a 65-byte one, bad UTF-8: BadStop; v0 cannot carry any.
    assert!(Stops::new(&["a"; 5]).is_none());
    assert!(Stops::new(&[""]).is_none());
    assert!(Stops::new(&[&"x".repeat(65)]).is_none());
    let with_block = |block: &[u8]| {
        let mut p = 5u64.to_le_bytes().to_vec();
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend_from_slice(&1000u16.to_le_bytes());
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(block);
        p.push(b'a');
        raw(1, 0x11, FLAG_STOP, &p)
    };
    for block in [
        &[0u8][..],
        &[5, 1, b'a', 1, b'a', 1, b'a', 1, b'a', 1, b'a'],
        &[1, 0],
        &[1, 2, 0xff, 0xfe],
    ] {
        assert_eq!(
            one(&with_block(block)),
            Err(FrameError::BadFrame(BadFrameReason::BadStop)),
            "{block:?}"
        );
    }
    assert!(one(&with_block(&[1, 2, b'\n', b'\n'])).is_ok());
    let mut v0 = req;
    v0.version = Version::V0;
    v0.seq = 0;
    let mut buf = [0u8; MAX_FRAME_LEN];
    assert_eq!(encode(&v0, &mut buf), Err(EncodeError::NeedsV1));
}

#[test]
fn v1_system_message_is_byte_exact_and_needs_chat() {
    let p = InferParams {
        prompt: "hi",
        max_tokens: 4,
        sampling: Sampling::GREEDY,
        chat: true,
        stream: false,
        stop: Stops::new(&["x"]).unwrap(),
        system: "Be brief.",
        session: None,
    };
    let req = Request {
        version: Version::V1,
        token: 3,
        seq: 9,
        command: Command::LlmInferStart(p),
    };
    let bytes = frame(&req);
    let mut want = vec![
        0x43,
        1,
        0x11,
        FLAG_CHAT | FLAG_STOP | FLAG_SYSTEM,
        42,
        0,
        0,
        0,
    ];
    want.extend_from_slice(&3u64.to_le_bytes());
    want.extend_from_slice(&9u32.to_le_bytes());
    want.extend_from_slice(&4u16.to_le_bytes());
    want.extend_from_slice(&0u16.to_le_bytes());
    want.extend_from_slice(&1000u16.to_le_bytes());
    want.extend_from_slice(&0u64.to_le_bytes());
    want.extend_from_slice(&[1, 1, b'x']);
    want.extend_from_slice(&9u16.to_le_bytes());
    want.extend_from_slice(b"Be brief.");
    want.extend_from_slice(b"hi");
    assert_eq!(bytes, want);
    let mut dec = Decoder::new();
    assert!(matches!(dec.feed(&bytes).1, Some(Event::Request(r)) if r == req));
    // Without chat, or longer than 256 bytes: refused by the encoder and the decoder.
    let mut buf = [0u8; MAX_FRAME_LEN];
    let mut no_chat = req;
    no_chat.command = Command::LlmInferStart(InferParams { chat: false, ..p });
    assert_eq!(encode(&no_chat, &mut buf), Err(EncodeError::BadSystem));
    let long = "s".repeat(MAX_SYSTEM + 1);
    let mut too_long = req;
    too_long.command = Command::LlmInferStart(InferParams { system: &long, ..p });
    assert_eq!(encode(&too_long, &mut buf), Err(EncodeError::BadSystem));
    let mut raw_no_chat = bytes.clone();
    raw_no_chat[3] = FLAG_STOP | FLAG_SYSTEM;
    assert_eq!(
        one(&raw_no_chat),
        Err(FrameError::BadFrame(BadFrameReason::BadSystem))
    );
}

#[test]
fn v1_sampling_block_is_byte_exact() {
    let req = Request {
        version: Version::V1,
        token: 3,
        seq: 9,
        command: Command::LlmInferStart(InferParams {
            prompt: "hi",
            max_tokens: 4,
            sampling: Sampling {
                temperature_milli: 800,
                top_p_milli: 950,
                seed: 42,
                top_k: 40,
                min_p_milli: 50,
                repeat_penalty_milli: 1300,
                repeat_last_n: 64,
            },
            chat: false,
            stream: false,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
    };
    let bytes = frame(&req);
    let mut want = vec![0x43, 1, 0x11, FLAG_SAMPLING, 40, 0, 0, 0];
    want.extend_from_slice(&3u64.to_le_bytes());
    want.extend_from_slice(&9u32.to_le_bytes());
    want.extend_from_slice(&4u16.to_le_bytes());
    want.extend_from_slice(&800u16.to_le_bytes());
    want.extend_from_slice(&950u16.to_le_bytes());
    want.extend_from_slice(&42u64.to_le_bytes());
    want.extend_from_slice(&40u32.to_le_bytes());
    want.extend_from_slice(&50u16.to_le_bytes());
    want.extend_from_slice(&1300u16.to_le_bytes());
    want.extend_from_slice(&64u32.to_le_bytes());
    want.extend_from_slice(b"hi");
    assert_eq!(bytes, want);
    let mut dec = Decoder::new();
    let (_, ev) = dec.feed(&bytes);
    assert!(matches!(ev, Some(Event::Request(r)) if r == req));
}

#[test]
fn every_command_round_trips_in_both_versions() {
    let cmds = [
        Command::LlmLoad { wcet_cycles: None },
        Command::LlmLoad {
            wcet_cycles: Some(u64::MAX),
        },
        Command::LlmInferStart(InferParams {
            prompt: "é日本 prompt",
            max_tokens: 1,
            sampling: Sampling::GREEDY,
            chat: false,
            stream: false,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
        Command::LlmInferPoll {
            infer_id: 7,
            max: None,
        },
        Command::LlmInferPoll {
            infer_id: u32::MAX,
            max: Some(5),
        },
        Command::LlmCancel { infer_id: 3 },
    ];
    for version in [Version::V0, Version::V1] {
        for command in cmds {
            let req = Request {
                version,
                token: 0xdead_beef,
                seq: if version == Version::V1 { 77 } else { 0 },
                command,
            };
            let bytes = frame(&req);
            let mut dec = Decoder::new();
            let (used, ev) = dec.feed(&bytes);
            assert_eq!(used, bytes.len());
            assert_eq!(ev, Some(Event::Request(req)));
        }
    }
}

#[test]
fn v0_limits_and_v1_only_features() {
    let long = "x".repeat(MAX_PROMPT_V0 + 1);
    let mut req = Request {
        version: Version::V0,
        token: 1,
        seq: 0,
        command: Command::LlmInferStart(InferParams {
            prompt: &long[..MAX_PROMPT_V0],
            max_tokens: 1,
            sampling: Sampling::GREEDY,
            chat: false,
            stream: false,
            stop: Stops::NONE,
            system: "",
            session: None,
        }),
    };
    assert_eq!(frame(&req).len(), HEADER_LEN + MAX_PAYLOAD_V0);
    assert_eq!(req.min_version(), Some(Version::V0));
    if let Command::LlmInferStart(p) = &mut req.command {
        p.prompt = &long;
    }
    let mut buf = [0u8; MAX_FRAME_LEN];
    assert_eq!(
        encode(&req, &mut buf),
        Err(EncodeError::TooLong {
            payload_len: MAX_PAYLOAD_V0 + 1,
            max: MAX_PAYLOAD_V0
        })
    );
    assert_eq!(req.min_version(), Some(Version::V1));
    let huge = "y".repeat(MAX_PROMPT_V1 + 1);
    if let Command::LlmInferStart(p) = &mut req.command {
        p.prompt = &huge;
    }
    assert_eq!(req.min_version(), None);
    if let Command::LlmInferStart(p) = &mut req.command {
        p.prompt = "ok";
        p.stream = true;
    }
    assert_eq!(encode(&req, &mut buf), Err(EncodeError::NeedsV1));
    assert_eq!(req.min_version(), Some(Version::V1));
    let seq_v0 = Request { seq: 5, ..LOAD_V0 };
    assert_eq!(encode(&seq_v0, &mut buf), Err(EncodeError::NeedsV1));
}

#[test]
fn encoder_refuses_invalid_fields_and_small_buffers_without_writing() {
    let mut p = InferParams {
        prompt: "a",
        max_tokens: 0,
        sampling: Sampling::GREEDY,
        chat: false,
        stream: false,
        stop: Stops::NONE,
        system: "",
        session: None,
    };
    let mk = |p: InferParams<'static>| Request {
        version: Version::V1,
        token: 1,
        seq: 0,
        command: Command::LlmInferStart(p),
    };
    let mut buf = [0xaau8; MAX_FRAME_LEN];
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::ZeroMaxTokens));
    p.max_tokens = 1;
    p.prompt = "";
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::EmptyPrompt));
    p.prompt = "a";
    p.sampling.temperature_milli = MAX_TEMPERATURE_MILLI + 1;
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::BadTemperature));
    p.sampling.temperature_milli = 0;
    p.sampling.top_p_milli = 1001;
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::BadTopP));
    p.sampling.top_p_milli = 1000;
    p.sampling.seed = u64::from(u32::MAX) + 1;
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::BadSeed));
    p.sampling.seed = 0;
    p.sampling.min_p_milli = 1001;
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::BadMinP));
    p.sampling.min_p_milli = 0;
    p.sampling.repeat_penalty_milli = 0;
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::BadRepeatPenalty));
    p.sampling.repeat_penalty_milli = 10_001;
    assert_eq!(encode(&mk(p), &mut buf), Err(EncodeError::BadRepeatPenalty));
    p.sampling.repeat_penalty_milli = 1000;
    let mut small = [0xaau8; 10];
    assert_eq!(
        encode(&mk(p), &mut small),
        Err(EncodeError::BufferTooSmall { needed: 35 })
    );
    assert!(small.iter().all(|&b| b == 0xaa) && buf.iter().all(|&b| b == 0xaa));
}

#[test]
fn bad_frames_are_rejected_with_the_right_reason() {
    use BadFrameReason::*;
    let tok = 5u64.to_le_bytes();
    let with = |extra: &[u8]| [&tok[..], extra].concat();
    let cases: Vec<(Vec<u8>, BadFrameReason)> = vec![
        (raw(0, 0x10, 0, &[]), MissingToken),
        (raw(0, 0x10, 0, &[1, 2, 3]), MissingToken),
        (raw(1, 0x10, 0, &tok), MissingToken), // v1 also needs seq
        (raw(0, 0x10, 0, &with(&[1, 2, 3])), BadLength),
        (raw(0, 0x10, 0, &with(&[0; 9])), BadLength),
        (raw(0, 0x10, 1, &with(&[])), BadFlags),
        (raw(1, 0x12, FLAG_STREAM, &with(&[0; 8])), BadFlags),
        (raw(1, 0x11, 0x40, &with(&[0; 4 + 14 + 1])), BadFlags),
        (
            raw(1, 0x11, FLAG_SESSION, &with(&[0; 4 + 14 + 8 + 1])),
            BadSession,
        ),
        (raw(0, 0x11, FLAG_STREAM, &with(&[1, 0, b'a'])), BadFlags),
        (raw(0, 0x11, 0, &with(&[1])), BadLength),
        (raw(0, 0x11, 0, &with(&[0, 0, b'a'])), ZeroMaxTokens),
        (raw(0, 0x11, 0, &with(&[1, 0])), EmptyPrompt),
        (raw(0, 0x11, 0, &with(&[1, 0, 0xff, 0xfe])), BadUtf8),
        (raw(0, 0x11, 0, &with(&[1, 0, 0xe6, 0x97])), BadUtf8),
        (raw(0, 0x12, 0, &with(&[1, 0, 0])), BadLength),
        (raw(0, 0x12, 0, &with(&[1, 0, 0, 0, 1])), BadLength),
        (raw(0, 0x12, 0, &with(&[1, 0, 0, 0, 1, 0, 0])), BadLength),
        (raw(0, 0x13, 0, &with(&[1, 0, 0, 0, 0, 0])), BadLength),
        (raw(0, 0x13, 0, &with(&[])), BadLength),
    ];
    for (bytes, reason) in cases {
        assert_eq!(
            one(&bytes),
            Err(FrameError::BadFrame(reason)),
            "{bytes:02x?}"
        );
    }
    // v1 sampling ranges.
    let v1_with = |temp: u16, top_p: u16, seed: u64, block: Option<(u32, u16, u16, u32)>| {
        let mut p = with(&7u32.to_le_bytes());
        p.extend_from_slice(&1u16.to_le_bytes());
        p.extend_from_slice(&temp.to_le_bytes());
        p.extend_from_slice(&top_p.to_le_bytes());
        p.extend_from_slice(&seed.to_le_bytes());
        if let Some((k, min_p, rp, n)) = block {
            p.extend_from_slice(&k.to_le_bytes());
            p.extend_from_slice(&min_p.to_le_bytes());
            p.extend_from_slice(&rp.to_le_bytes());
            p.extend_from_slice(&n.to_le_bytes());
        }
        p.push(b'a');
        raw(1, 0x11, if block.is_some() { FLAG_SAMPLING } else { 0 }, &p)
    };
    let v1_infer = |temp: u16, top_p: u16| v1_with(temp, top_p, 0, None);
    assert_eq!(
        one(&v1_infer(5001, 1000)),
        Err(FrameError::BadFrame(BadTemperature))
    );
    assert_eq!(one(&v1_infer(0, 1001)), Err(FrameError::BadFrame(BadTopP)));
    assert!(one(&v1_infer(5000, 0)).is_ok(), "top-p 0 keeps one token");
    assert!(one(&v1_infer(5000, 1)).is_ok());
    let seed = |s| one(&v1_with(0, 1000, s, None));
    assert!(seed(u64::from(u32::MAX)).is_ok());
    assert_eq!(
        seed(u64::from(u32::MAX) + 1),
        Err(FrameError::BadFrame(BadSeed))
    );
    let block = |b| one(&v1_with(800, 950, 1, Some(b)));
    assert!(block((40, 50, 1300, 64)).is_ok());
    assert_eq!(
        block((40, 1001, 1000, 64)),
        Err(FrameError::BadFrame(BadMinP))
    );
    assert_eq!(
        block((40, 50, 0, 64)),
        Err(FrameError::BadFrame(BadRepeatPenalty))
    );
    assert_eq!(
        block((40, 50, 10_001, 64)),
        Err(FrameError::BadFrame(BadRepeatPenalty))
    );
    // A block equal to the defaults is not the canonical encoding.
    assert_eq!(block((0, 0, 1000, 64)), Err(FrameError::BadFrame(BadFlags)));
    // The flag without the block: too short for it.
    let mut no_block = v1_infer(0, 1000);
    no_block[3] = FLAG_SAMPLING;
    assert_eq!(one(&no_block), Err(FrameError::BadFrame(BadLength)));
}

#[test]
fn unknown_commands_are_unsupported_and_stay_in_sync() {
    let mut stream = raw(0, 0x7f, 0, &[0x43, 0, 0x10, 0, 0, 0, 0, 0, 9]);
    stream.extend(frame(&LOAD_V0));
    let mut dec = Decoder::new();
    let evs = decode_all(&mut dec, &stream);
    assert_eq!(evs, vec![Err(FrameError::Unsupported), Ok(frame(&LOAD_V0))]);
    assert_eq!(dec.stats().unsupported, 1);
    assert_eq!(dec.stats().requests, 1);
    assert_eq!(FrameError::Unsupported.code(), ErrorCode::Unsupported);
}

#[test]
fn oversize_frame_is_skipped_exactly_without_buffering() {
    // Payload of 65 bytes in v0, containing what looks like a frame: it must be skipped.
    let mut body = frame(&LOAD_V0);
    body.resize(65, 0x43);
    let mut stream = raw(0, 0x11, 0, &body);
    stream.extend(frame(&LOAD_V0));
    let mut dec = Decoder::new();
    let evs = decode_all(&mut dec, &stream);
    assert_eq!(
        evs,
        vec![Err(FrameError::Oversize { len: 65 }), Ok(frame(&LOAD_V0))]
    );
    let s = dec.stats();
    assert_eq!((s.oversize, s.skipped_bytes, s.garbage_bytes), (1, 65, 0));
    assert_eq!(FrameError::Oversize { len: 65 }.code(), ErrorCode::Oversize);
}

#[test]
fn oversize_error_comes_before_the_body_arrives() {
    let mut dec = Decoder::new();
    let hdr = [MAGIC, 1, 0x11, 0, 0xff, 0x0f, 0, 0]; // len 4095 > v1 limit
    let (used, ev) = dec.feed(&hdr);
    assert_eq!(used, 8);
    assert!(matches!(
        ev,
        Some(Event::Rejected(Rejected {
            error: FrameError::Oversize { len: 4095 },
            ..
        }))
    ));
    assert!(dec.is_skipping());
    let (used, ev) = dec.feed(&[0u8; 4095]);
    assert_eq!((used, ev.is_none(), dec.is_skipping()), (4095, true, false));
}

#[test]
fn implausible_length_resyncs_right_after_the_header() {
    let mut stream = vec![MAGIC, 0, 0x10, 0];
    stream.extend_from_slice(&(MAX_SKIP_LEN + 1).to_le_bytes());
    stream.extend_from_slice(b"junk");
    stream.extend(frame(&LOAD_V0));
    let mut dec = Decoder::new();
    let evs = decode_all(&mut dec, &stream);
    assert_eq!(
        evs,
        vec![
            Err(FrameError::Oversize {
                len: MAX_SKIP_LEN + 1
            }),
            Ok(frame(&LOAD_V0))
        ]
    );
    let s = dec.stats();
    assert_eq!(
        (s.oversize_resyncs, s.garbage_bytes, s.skipped_bytes),
        (1, 4, 0)
    );
}

#[test]
fn resync_skips_garbage_and_unknown_versions() {
    // 'C' followed by an unknown version, a double 'C', and plain noise.
    let mut stream = b"noise C\x07 CC".to_vec();
    stream.extend(frame(&LOAD_V0)[1..].iter()); // completes the second 'C' of "CC"
    let mut dec = Decoder::new();
    let evs = decode_all(&mut dec, &stream);
    assert_eq!(evs, vec![Ok(frame(&LOAD_V0))]);
    // "noise " 6 + 'C' + 0x07 + ' ' + first 'C' of "CC" = 10 garbage bytes.
    assert_eq!(dec.stats().garbage_bytes, 10);
}

#[test]
fn zero_length_payload_is_a_bad_frame() {
    assert_eq!(
        one(&raw(0, 0x12, 0, &[])),
        Err(FrameError::BadFrame(BadFrameReason::MissingToken))
    );
}

#[test]
fn abandon_partial_drops_a_half_frame() {
    let f = frame(&LOAD_V0);
    let mut dec = Decoder::new();
    assert_eq!(dec.feed(&f[..11]), (11, None));
    assert_eq!(dec.pending_bytes(), 11);
    assert_eq!(dec.abandon_partial(), 11);
    assert_eq!(dec.pending_bytes(), 0);
    let evs = decode_all(&mut dec, &f);
    assert_eq!(evs, vec![Ok(f.clone())]);
    assert_eq!(dec.stats().abandoned_bytes, 11);
    assert_eq!(dec.stats().frame_bytes, f.len() as u64);
}

#[test]
fn requirements_follow_the_seed() {
    assert_eq!(LOAD_V0.command.requirement(), Requirement::Admin);
    for c in [
        Command::LlmInferPoll {
            infer_id: 1,
            max: None,
        },
        Command::LlmCancel { infer_id: 1 },
    ] {
        assert_eq!(c.requirement(), Requirement::SubmitOrAdmin);
    }
}
