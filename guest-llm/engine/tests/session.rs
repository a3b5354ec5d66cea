//! The streaming session API: bounded prefill, one token per call, stop conditions,
//! seeded sampling, incremental detokenization.

use sis_engine::{
    load_gguf, Detokenizer, Error, Model, SamplerConfig, Serial, Session, SessionConfig,
    StopReason, Tokenizer, Utf8Stream,
};
use std::path::PathBuf;

fn file() -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-llama.gguf"),
    )
    .unwrap()
}

fn cfg(context: usize, max: usize, temp: f32, seed: u64, tok: &Tokenizer<'_>) -> SessionConfig {
    SessionConfig {
        context,
        max_new_tokens: max,
        sampler: SamplerConfig {
            temperature: temp,
            top_p: 0.9,
            seed,
            ..SamplerConfig::default()
        },
        stop_tokens: tok.stop.clone(),
    }
}

fn generate(
    model: &Model<'_>,
    c: SessionConfig,
    prompt: &[u32],
    chunk: usize,
) -> (Vec<u32>, StopReason) {
    let mut s = Session::new(model, &Serial, c).unwrap();
    s.feed(prompt).unwrap();
    while s.prefill(chunk).unwrap() > 0 {}
    let mut out = Vec::new();
    while let Some(t) = s.next_token().unwrap() {
        out.push(t);
    }
    (out, s.stop_reason().unwrap())
}

#[test]
fn greedy_session_is_chunking_independent_and_stops_at_max() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let prompt = tok.encode_prompt("Once upon a time, the little robot");
    let (a, why) = generate(&model, cfg(128, 20, 0.0, 0, &tok), &prompt, 64);
    assert_eq!(why, StopReason::MaxTokens);
    assert_eq!(a.len(), 20);
    let (b, _) = generate(&model, cfg(128, 20, 0.0, 0, &tok), &prompt, 3);
    assert_eq!(a, b);
    // Same as llama.cpp's greedy continuation in the reference file.
    let r: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/test/tiny-llama-ref.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let want: Vec<u32> = r["greedy"].as_array().unwrap()[..20]
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(a, want);
}

#[test]
fn context_full_stops_generation() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let prompt = tok.encode_prompt("Hello world");
    let (out, why) = generate(&model, cfg(prompt.len() + 3, 100, 0.0, 0, &tok), &prompt, 8);
    assert_eq!(why, StopReason::ContextFull);
    // The last sampled token needs no KV slot, so capacity - prompt + 1 tokens come out.
    assert_eq!(out.len(), 4);
}

#[test]
fn follow_up_turns_continue_the_conversation() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let mut s = Session::new(&model, &Serial, cfg(20, 3, 0.0, 0, &tok)).unwrap();
    s.feed(&[5, 6, 7]).unwrap();
    let a: Vec<u32> = std::iter::from_fn(|| s.next_token().unwrap()).collect();
    assert_eq!(a.len(), 3);
    // The last sampled token is not in the cache yet: it counts against the context.
    let room = 20 - s.position() - 1;
    assert!(matches!(
        s.feed(&vec![9; room + 1]),
        Err(Error::ContextFull { .. })
    ));
    s.feed(&vec![9; room]).unwrap();
    while s.prefill(4).unwrap() > 0 {}
    assert_eq!(s.position(), 20);
}

#[test]
fn seeded_sampling_repeats_and_seed_matters() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let prompt = tok.encode_prompt("The robot");
    let (a, _) = generate(&model, cfg(64, 30, 1.0, 7, &tok), &prompt, 64);
    let (b, _) = generate(&model, cfg(64, 30, 1.0, 7, &tok), &prompt, 2);
    let (c, _) = generate(&model, cfg(64, 30, 1.0, 8, &tok), &prompt, 64);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn bad_input_is_rejected_and_changes_nothing() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let mut s = Session::new(&model, &Serial, cfg(16, 4, 0.0, 0, &tok)).unwrap();
    assert!(matches!(
        s.feed(&[1, 99_999]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(s.feed(&[1; 17]), Err(Error::ContextFull { .. })));
    assert_eq!(s.pending(), 0);
    assert!(matches!(s.next_token(), Err(Error::InvalidArgument(_))));
    s.feed(&[1, 5, 6]).unwrap();
    assert!(s.next_token().unwrap().is_some());
    assert!(Session::new(&model, &Serial, cfg(0, 4, 0.0, 0, &tok)).is_err());
    assert!(Session::new(&model, &Serial, cfg(16, 4, -1.0, 0, &tok)).is_err());
}

#[test]
fn streamed_text_equals_whole_decode() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let prompt = tok.encode_prompt("emoji 😀 and 日本語");
    let (out, _) = generate(&model, cfg(128, 60, 1.0, 3, &tok), &prompt, 64);
    let mut stream = Utf8Stream::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    let mut prev = prompt.last().copied();
    for &t in &out {
        buf.clear();
        tok.decode(prev, t, &mut buf);
        prev = Some(t);
        text += &stream.push(&buf);
    }
    text += &stream.finish();
    assert_eq!(text, String::from_utf8_lossy(&tok.decode_all(&out)));
    let mut d = Detokenizer::new(&tok, prompt.last().copied());
    let mut text2: String = out.iter().map(|&t| d.push(t)).collect();
    text2 += &d.finish();
    assert_eq!(text2, text);
}

#[test]
fn next_token_runs_forward_predicts_each_forward_pass() {
    let f = file();
    let (model, tok) = load_gguf(&f).unwrap();
    let prompt = tok.encode_prompt("Once upon a time, the little robot");
    let mut s = Session::new(&model, &Serial, cfg(128, 6, 0.0, 0, &tok)).unwrap();
    assert!(!s.next_token_runs_forward(), "nothing fed yet");
    s.feed(&prompt).unwrap();
    assert!(!s.next_token_runs_forward(), "prompt pending");
    while s.prefill(4).unwrap() > 0 {}
    let mut passes = 0;
    loop {
        let predicted = s.next_token_runs_forward();
        let before = s.position();
        let t = s.next_token().unwrap();
        let ran = s.position() == before + 1;
        assert_eq!(predicted, ran, "after {passes} passes");
        passes += usize::from(ran);
        if t.is_none() {
            break;
        }
    }
    // Six tokens: the first comes from the prefill's logits, each later one needs a pass.
    assert_eq!(s.generated(), 6);
    assert_eq!(passes, 5);
    assert!(!s.next_token_runs_forward(), "stopped");
}
