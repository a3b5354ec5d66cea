//! Conversations that keep their KV cache: `Session::reuse_prefix` computes only what a
//! new turn adds, and what follows is bit-identical to a cold run of the whole sequence.

use sis_engine::forward::{forward, KvCache, Logits};
use sis_engine::{
    load_gguf, Error, Model, PrefixReuse, SamplerConfig, Serial, Session, SessionConfig, StopReason,
};
use std::path::PathBuf;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel),
    )
    .unwrap()
}

const CONTEXT: usize = 200;

fn sampled() -> SamplerConfig {
    SamplerConfig {
        temperature: 0.9,
        top_k: 30,
        top_p: 0.9,
        min_p: 0.02,
        repeat_penalty: 1.2,
        repeat_last_n: 32,
        frequency_penalty: 0.1,
        presence_penalty: 0.1,
        seed: 77,
    }
}

fn session<'s, 'a>(model: &'s Model<'a>, max: usize) -> Session<'s, 'a> {
    Session::new(
        model,
        &Serial,
        SessionConfig {
            context: CONTEXT,
            max_new_tokens: max,
            sampler: sampled(),
            // No stop tokens: every reply has its full length (simpler bookkeeping).
            stop_tokens: Vec::new(),
        },
    )
    .unwrap()
}

fn drain(s: &mut Session<'_, '_>) -> Vec<u32> {
    std::iter::from_fn(|| s.next_token().unwrap()).collect()
}

/// A new session fed `seq`, generating `max` tokens.
fn cold(model: &Model<'_>, seq: &[u32], max: usize, s: SamplerConfig) -> Vec<u32> {
    let cfg = SessionConfig {
        context: CONTEXT,
        max_new_tokens: max,
        sampler: s,
        stop_tokens: Vec::new(),
    };
    let mut fresh = Session::new(model, &Serial, cfg).unwrap();
    fresh.feed(seq).unwrap();
    drain(&mut fresh)
}

fn three_turns(name: &str) {
    let file = read(&format!("models/test/{name}"));
    let (model, tok) = load_gguf(&file).unwrap();
    let mut warm = session(&model, 12);
    let turn_text = [
        "Once upon a time, the little robot",
        " Then it asked: why is the sky blue?",
        " And the robot said goodbye.",
    ];
    let mut seq: Vec<u32> = Vec::new();
    for (i, text) in turn_text.iter().enumerate() {
        // The new turn: everything so far (with the model's reply) plus the new text.
        seq.extend(if i == 0 {
            tok.encode_prompt(text)
        } else {
            tok.encode(text)
        });
        let in_cache = warm.cached_tokens().len();
        let reuse = warm.reuse_prefix(&seq, 12, sampled()).unwrap();
        assert_eq!(
            reuse,
            PrefixReuse {
                reused: in_cache,
                computed: seq.len() - in_cache
            },
            "{name} turn {i}: every cached token is a prefix of the new turn"
        );
        assert_eq!(reuse.reused > 0, i > 0);
        let reply = drain(&mut warm);
        assert_eq!(warm.stop_reason(), Some(StopReason::MaxTokens));
        assert_eq!(reply, cold(&model, &seq, 12, sampled()), "{name} turn {i}");
        // The reply's last token was sampled but not run yet: the cache holds the rest.
        assert_eq!(
            warm.cached_tokens(),
            [&seq[..], &reply[..reply.len() - 1]].concat()
        );
        seq.extend(&reply);
    }

    // The same sequence again recomputes only its last token (for its logits) and
    // samples the same reply as the first time.
    let last_seq = seq[..seq.len() - 12].to_vec();
    let reuse = warm.reuse_prefix(&last_seq, 12, sampled()).unwrap();
    assert_eq!(reuse.computed, 1);
    assert_eq!(drain(&mut warm), seq[seq.len() - 12..]);

    // A sequence that parts from the cache in the middle (an edited earlier turn) keeps
    // only the common prefix.
    let mut edited = seq[..10].to_vec();
    edited.extend(tok.encode(" a different story"));
    let reuse = warm
        .reuse_prefix(&edited, 5, SamplerConfig::GREEDY)
        .unwrap();
    assert_eq!(reuse.reused, 10);
    assert_eq!(
        drain(&mut warm),
        cold(&model, &edited, 5, SamplerConfig::GREEDY)
    );
}

#[test]
fn three_turn_conversation_equals_cold_runs_llama() {
    three_turns("tiny-llama.gguf");
}

#[test]
fn three_turn_conversation_equals_cold_runs_gemma3_sliding_window() {
    three_turns("tiny-gemma3.gguf");
}

/// The cache truncated to a prefix and continued gives the same logits, bit for bit, as
/// a cold run of the whole sequence (Gemma's sliding window included).
#[test]
fn truncated_cache_logits_are_bit_identical() {
    for name in ["tiny-llama.gguf", "tiny-gemma3.gguf"] {
        let file = read(&format!("models/test/{name}"));
        let (model, tok) = load_gguf(&file).unwrap();
        let a = tok.encode_prompt("Once upon a time, the little robot counted waves");
        let b = tok.encode(" and then slept.");
        let mut cache = KvCache::new(&model, 64).unwrap();
        forward(&model, &mut cache, &Serial, &a, Logits::None).unwrap();
        cache.truncate(6);
        assert_eq!(cache.len(), 6);
        let warm = forward(&model, &mut cache, &Serial, &b, Logits::All).unwrap();
        let mut cold_cache = KvCache::new(&model, 64).unwrap();
        let seq = [&a[..6], &b[..]].concat();
        let all = forward(&model, &mut cold_cache, &Serial, &seq, Logits::All).unwrap();
        let cold = &all[6 * model.config.vocab_size..];
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&warm), bits(cold), "{name}");
        cache.truncate(100);
        assert_eq!(cache.len(), 6 + b.len(), "truncate never grows the cache");
    }
}

#[test]
fn a_turn_beyond_the_context_is_refused_and_changes_nothing() {
    let file = read("models/test/tiny-llama.gguf");
    let (model, tok) = load_gguf(&file).unwrap();
    let mut s = session(&model, 4);
    let seq = tok.encode_prompt("Once upon a time");
    s.reuse_prefix(&seq, 4, sampled()).unwrap();
    let reply = drain(&mut s);
    let cached = s.cached_tokens().to_vec();

    let too_long = vec![5u32; CONTEXT + 1];
    assert_eq!(
        s.reuse_prefix(&too_long, 4, sampled()),
        Err(Error::ContextFull { capacity: CONTEXT })
    );
    for (bad, what) in [
        (s.reuse_prefix(&[], 4, sampled()), "empty"),
        (s.reuse_prefix(&[1, 99_999], 4, sampled()), "vocabulary"),
        (
            s.reuse_prefix(
                &seq,
                4,
                SamplerConfig {
                    top_p: 2.0,
                    ..sampled()
                },
            ),
            "top_p",
        ),
    ] {
        match bad {
            Err(Error::InvalidArgument(m)) => assert!(m.contains(what), "{m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(s.cached_tokens(), cached);
    assert_eq!(s.stop_reason(), Some(StopReason::MaxTokens));
    // Still usable: the next turn reuses the whole cache.
    let next = [&seq[..], &reply[..], &tok.encode(" again")[..]].concat();
    let reuse = s.reuse_prefix(&next, 4, sampled()).unwrap();
    assert_eq!(reuse.reused, cached.len());

    // A conversation that exactly fills the context is accepted; generation then ends
    // with ContextFull, never by dropping early tokens.
    let full: Vec<u32> = (0..CONTEXT as u32).map(|i| 5 + i % 200).collect();
    s.reuse_prefix(&full, 4, sampled()).unwrap();
    assert_eq!(drain(&mut s).len(), 1);
    assert_eq!(s.stop_reason(), Some(StopReason::ContextFull));
}
