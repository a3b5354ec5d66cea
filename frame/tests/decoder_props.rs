//! Property tests of the decoder: round trips, resync, chunking, well-formedness.

use proptest::prelude::*;
use sis_frame::codec::*;

#[derive(Debug, Clone)]
struct OwnedReq {
    version: Version,
    token: u64,
    seq: u32,
    kind: u8,
    a: u64,
    b: Option<u16>,
    prompt: String,
    sampling: Sampling,
    chat: bool,
    stream: bool,
    /// How many of [`STOPS`] the request carries.
    stops: usize,
}

/// Stop strings the strategy picks from (multi-byte, a pipe, the longest allowed).
const STOPS: [&str; 4] = [
    "\n\n",
    "é|日",
    "User:",
    "0123456789012345678901234567890123456789012345678901234567890123",
];

impl OwnedReq {
    fn req(&self) -> Request<'_> {
        let command = match self.kind {
            0 => Command::LlmLoad {
                wcet_cycles: self.b.map(|_| self.a),
            },
            1 => Command::LlmInferStart(InferParams {
                prompt: &self.prompt,
                max_tokens: (self.a as u16).max(1),
                sampling: self.sampling,
                chat: self.chat,
                stream: self.stream,
                stop: Stops::new(&STOPS[..self.stops]).unwrap(),
                system: if self.chat && self.stops % 2 == 1 {
                    "Système: be brief."
                } else {
                    ""
                },
                session: (self.chat && self.stops >= 2).then_some(self.a >> 8),
            }),
            2 => Command::LlmInferPoll {
                infer_id: self.a as u32,
                max: self.b,
            },
            _ => Command::LlmCancel {
                infer_id: self.a as u32,
            },
        };
        Request {
            version: self.version,
            token: self.token,
            seq: self.seq,
            command,
        }
    }
    fn bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_FRAME_LEN];
        let n = encode(&self.req(), &mut buf).expect("strategy yields valid requests");
        buf.truncate(n);
        buf
    }
}

fn any_request() -> impl Strategy<Value = OwnedReq> {
    (
        any::<bool>(),
        any::<u64>(),
        any::<u32>(),
        0u8..4,
        any::<u64>(),
        any::<Option<u16>>(),
        "\\PC{1,40}",
        (
            0u16..=5000,
            0u16..=1000,
            0u64..=u64::from(u32::MAX),
            proptest::option::of((any::<u32>(), 0u16..=1000, 1u16..=10_000, any::<u32>())),
        ),
        (any::<bool>(), any::<bool>(), 0usize..=4),
    )
        .prop_map(
            |(v1, token, seq, kind, a, b, prompt, (t, p, s, block), (chat, stream, stops))| {
                let version = if v1 { Version::V1 } else { Version::V0 };
                let mut prompt: String = prompt;
                while prompt.len() > MAX_PROMPT_V0 {
                    prompt.pop();
                }
                if prompt.is_empty() {
                    prompt.push('p');
                }
                OwnedReq {
                    version,
                    token,
                    seq: if v1 { seq } else { 0 },
                    kind,
                    a,
                    b,
                    prompt,
                    sampling: if v1 {
                        Sampling {
                            temperature_milli: t,
                            top_p_milli: p,
                            seed: s,
                            top_k: block.map_or(0, |b| b.0),
                            min_p_milli: block.map_or(0, |b| b.1),
                            repeat_penalty_milli: block.map_or(1000, |b| b.2),
                            repeat_last_n: block.map_or(64, |b| b.3),
                        }
                    } else {
                        Sampling::GREEDY
                    },
                    chat: v1 && chat,
                    stream: v1 && stream,
                    stops: if v1 { stops } else { 0 },
                }
            },
        )
}

/// Owned summary of an event: canonical bytes of a request, or the error.
type Ev = Result<Vec<u8>, FrameError>;

/// Decode `input` split at `cuts`; also checks every accepted request is exactly the
/// canonical encoding of the bytes it came from.
fn decode_split(input: &[u8], cuts: &[usize]) -> (Vec<Ev>, DecoderStats) {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.push(0);
    bounds.push(input.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let mut pos = 0;
    for w in bounds.windows(2) {
        let mut chunk = &input[w[0]..w[1]];
        while !chunk.is_empty() {
            let (used, ev) = dec.feed(chunk);
            assert!(used > 0);
            pos += used;
            match ev {
                Some(Event::Request(r)) => {
                    let n = encode(&r, &mut buf).expect("accepted requests re-encode");
                    assert_eq!(
                        &input[pos - n..pos],
                        &buf[..n],
                        "non-canonical frame accepted"
                    );
                    out.push(Ok(buf[..n].to_vec()));
                }
                Some(Event::Rejected(r)) => out.push(Err(r.error)),
                None => {}
            }
            chunk = &chunk[used..];
        }
    }
    (out, dec.stats())
}

fn no_magic(bytes: Vec<u8>) -> Vec<u8> {
    bytes
        .into_iter()
        .map(|b| if b == MAGIC { 0 } else { b })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(r in any_request()) {
        let bytes = r.bytes();
        let mut dec = Decoder::new();
        let (used, ev) = dec.feed(&bytes);
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(ev, Some(Event::Request(r.req())));
    }

    #[test]
    fn frames_between_garbage_without_magic_decode_exactly(
        parts in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..30), any_request()), 1..6),
        tail in prop::collection::vec(any::<u8>(), 0..30),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        let mut garbage = 0;
        for (g, r) in &parts {
            let g = no_magic(g.clone());
            garbage += g.len();
            stream.extend(g);
            let f = r.bytes();
            stream.extend(&f);
            want.push(Ok(f));
        }
        let tail = no_magic(tail);
        garbage += tail.len();
        stream.extend(tail);
        let (got, stats) = decode_split(&stream, &[]);
        prop_assert_eq!(got, want);
        prop_assert_eq!(stats.garbage_bytes, garbage as u64);
    }

    #[test]
    fn resyncs_after_arbitrary_garbage_once_the_partial_is_abandoned(
        garbage in prop::collection::vec(any::<u8>(), 0..200),
        r in any_request(),
    ) {
        let mut dec = Decoder::new();
        let mut g = &garbage[..];
        while !g.is_empty() {
            let (used, _) = dec.feed(g);
            g = &g[used..];
        }
        dec.abandon_partial();
        // abandon_partial also ends an oversize skip.
        prop_assert!(!dec.is_skipping());
        prop_assert_eq!(dec.pending_bytes(), 0);
        let f = r.bytes();
        let (used, ev) = dec.feed(&f);
        prop_assert_eq!(used, f.len());
        prop_assert_eq!(ev, Some(Event::Request(r.req())));
    }

    #[test]
    fn chunked_feeding_equals_whole_feeding(
        stream in prop::collection::vec(
            prop_oneof![any::<u8>(), Just(MAGIC), Just(0u8), Just(1u8), Just(0x11u8)], 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let whole = decode_split(&stream, &[]);
        let chunked = decode_split(&stream, &cuts);
        prop_assert_eq!(&whole, &chunked);
        let byte_at_a_time: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(&whole, &decode_split(&stream, &byte_at_a_time));
    }

    #[test]
    fn mutated_frames_are_never_accepted_unless_canonical(
        reqs in prop::collection::vec(any_request(), 1..4),
        flips in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..5),
    ) {
        let mut stream: Vec<u8> = reqs.iter().flat_map(|r| r.bytes()).collect();
        for (at, b, op) in flips {
            let at = at % stream.len().max(1);
            match op {
                0 if !stream.is_empty() => stream[at] ^= b | 1,
                1 if !stream.is_empty() => { stream.remove(at); }
                _ => stream.insert(at, b),
            }
        }
        // decode_split asserts canonical encoding of every accepted request.
        let (_, stats) = decode_split(&stream, &[3, 17, 40]);
        prop_assert!(stats.frame_bytes + stats.garbage_bytes + stats.skipped_bytes <= stream.len() as u64);
    }

    #[test]
    fn oversize_frames_are_reported_and_skipped(
        v1 in any::<bool>(),
        extra in 1u32..3000,
        body in any::<u8>(),
        r in any_request(),
    ) {
        let max = if v1 { MAX_PAYLOAD_V1 } else { MAX_PAYLOAD_V0 } as u32;
        let len = max + extra;
        let mut stream = vec![MAGIC, u8::from(v1), 0x11, 0];
        stream.extend_from_slice(&len.to_le_bytes());
        stream.extend(std::iter::repeat_n(body, len as usize));
        let f = r.bytes();
        stream.extend(&f);
        let (got, stats) = decode_split(&stream, &[5, 100, 2000]);
        prop_assert_eq!(got, vec![Err(FrameError::Oversize { len }), Ok(f)]);
        prop_assert_eq!(stats.skipped_bytes, u64::from(len));
    }
}
