//! The logits do not depend on how the work is done: batch size (prefill chunking),
//! number of workers, or SIMD kernels versus portable code. Bit-for-bit.

use sis_engine::forward::{forward, KvCache, Logits};
use sis_engine::parallel::StdThreads;
use sis_engine::{load_gguf, load_llama2c, Model, Parallel, Serial};
use std::path::PathBuf;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel),
    )
    .unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Logits of every position, running the prompt in chunks of `chunk`.
fn run(model: &Model<'_>, par: &dyn Parallel, toks: &[u32], chunk: usize) -> Vec<u32> {
    let mut cache = KvCache::new(model, toks.len()).unwrap();
    let mut out = Vec::new();
    for c in toks.chunks(chunk) {
        out.extend(forward(model, &mut cache, par, c, Logits::All).unwrap());
    }
    bits(&out)
}

/// A prompt long enough for the batched kernels (x86-64 multiplies 16 tokens per weight
/// block, other targets 8): two full blocks and a partial one.
const LONG: &str = "Once upon a time, the little robot counted 12345 waves on the shore, \
then it walked home along the quiet beach and told its friends about every single wave.";

fn check(model: &Model<'_>, toks: &[u32]) {
    let base = run(model, &Serial, toks, toks.len());
    for chunk in [1, 3, 8] {
        assert_eq!(run(model, &Serial, toks, chunk), base, "chunk {chunk}");
    }
    assert_eq!(run(model, &StdThreads::new(3), toks, 5), base, "3 threads");
    #[cfg(target_arch = "x86_64")]
    {
        use sis_engine::matrix::{set_kernels, Kernels};
        for k in [Kernels::Portable, Kernels::Avx2] {
            set_kernels(k);
            let other = run(model, &Serial, toks, 4);
            set_kernels(Kernels::Vnni);
            assert_eq!(other, base, "{k:?} kernels");
        }
    }
}

#[test]
fn gguf_logits_independent_of_batching_threads_and_simd() {
    let f = read("models/test/tiny-llama.gguf");
    let (model, tok) = load_gguf(&f).unwrap();
    let toks = tok.encode("Once upon a time, the little robot counted 12345 waves.");
    assert!(toks.len() > 10);
    check(&model, &toks);
    let long = tok.encode(LONG);
    assert!(long.len() > 2 * 16, "{} tokens", long.len());
    check(&model, &long);
}

#[test]
fn gemma3_logits_independent_of_batching_threads_and_simd() {
    // Every new block type, both RoPE bases and a 4-position sliding window.
    let f = read("models/test/tiny-gemma3.gguf");
    let (model, tok) = load_gguf(&f).unwrap();
    let toks = tok.encode_prompt("Once upon a time, the little robot counted 12345 waves.");
    assert!(toks.len() > 10);
    check(&model, &toks);
    let long = tok.encode_prompt(LONG);
    assert!(long.len() > 2 * 16, "{} tokens", long.len());
    check(&model, &long);
}

#[test]
fn llama2c_logits_independent_of_batching_threads_and_simd() {
    let t = read("models/test/tiny-tokenizer.bin");
    for ck in [
        "models/test/tiny-l2c-f32.bin",
        "models/test/tiny-l2c-q8.bin",
    ] {
        let f = read(ck);
        let (model, tok) = load_llama2c(&f, &t).unwrap();
        check(
            &model,
            &tok.encode_prompt("Once upon a time there was a robot"),
        );
    }
}

#[test]
#[ignore = "needs models/cache/gemma-3-270m-q4_k_m.gguf (scripts/fetch-model.sh gemma3); slow in debug"]
fn gemma3_270m_logits_independent_of_batching_threads_and_simd() {
    let f = read("models/cache/gemma-3-270m-q4_k_m.gguf");
    let (model, tok) = load_gguf(&f).unwrap();
    check(
        &model,
        &tok.encode_prompt("The capital of France is Paris, and the capital of Italy is"),
    );
    check(&model, &tok.encode_prompt(LONG));
}

#[test]
#[ignore = "needs models/cache/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh); slow in debug"]
fn smollm2_logits_independent_of_batching_threads_and_simd() {
    let f = read("models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (model, tok) = load_gguf(&f).unwrap();
    check(
        &model,
        &tok.encode_prompt("The capital of France is Paris, and the capital of Italy is"),
    );
    check(&model, &tok.encode_prompt(LONG));
}

/// `models/test/digests.txt` was produced on aarch64 (NEON kernels, run under
/// qemu-aarch64 by `selftest-aarch64/run.sh`); the host must compute the same bits.
#[test]
fn digests_equal_aarch64_golden() {
    use sis_engine::selftest::{digest, PROMPT};
    let golden = String::from_utf8(read("models/test/digests.txt")).unwrap();
    let t = read("models/test/tiny-tokenizer.bin");
    let mut lines = Vec::new();
    for name in ["tiny-llama.gguf", "tiny-gemma3.gguf"] {
        let g = read(&format!("models/test/{name}"));
        let (m, tok) = load_gguf(&g).unwrap();
        let d = digest(&m, &Serial, &tok.encode_prompt(PROMPT), 40).unwrap();
        lines.push(format!("{name} hash={:016x} tokens={:?}", d.hash, d.tokens));
    }
    for name in ["tiny-l2c-f32.bin", "tiny-l2c-q8.bin"] {
        let f = read(&format!("models/test/{name}"));
        let (m, tok) = load_llama2c(&f, &t).unwrap();
        let d = digest(&m, &Serial, &tok.encode_prompt(PROMPT), 40).unwrap();
        lines.push(format!("{name} hash={:016x} tokens={:?}", d.hash, d.tokens));
    }
    for name in ["tiny-llama.gguf", "tiny-gemma3.gguf"] {
        let g = read(&format!("models/test/{name}"));
        let (m, tok) = load_gguf(&g).unwrap();
        let s = sis_engine::selftest::sampled(&m, &Serial, &tok.encode_prompt(PROMPT), 40);
        lines.push(format!("{name} sampled={:?}", s.unwrap()));
    }
    assert_eq!(lines.join("\n"), golden.trim_end());
}
