//! Runs the engine on the checked-in test models on aarch64 (as a static Linux process
//! under qemu-aarch64) and prints digests, which must equal `models/test/digests.txt`
//! produced on the host: the guest computes the same bits as the host.
#![no_std]
#![no_main]

extern crate alloc;

mod sys;
use sys::{exit, map_file, now, write};

use alloc::format;
use alloc::string::String;
use sis_engine::quant::Q8Acts;
use sis_engine::selftest::{digest, PROMPT};
use sis_engine::{load_gguf, load_llama2c, Serial};

static GGUF: &[u8] = include_bytes!("../../../../models/test/tiny-llama.gguf");
static L2C_F32: &[u8] = include_bytes!("../../../../models/test/tiny-l2c-f32.bin");
static L2C_Q8: &[u8] = include_bytes!("../../../../models/test/tiny-l2c-q8.bin");
static L2C_TOK: &[u8] = include_bytes!("../../../../models/test/tiny-tokenizer.bin");

/// Prompt and generation speed on SmolLM2 if the model is in models/cache.
fn smollm2_speed() {
    let Some(f) = map_file("models/cache/SmolLM2-135M-Instruct.Q4_1.gguf") else {
        write("smollm2: models/cache/SmolLM2-135M-Instruct.Q4_1.gguf not found, skipped\n");
        return;
    };
    let (m, t) = load_gguf(f).expect("SmolLM2");
    let prompt = t.encode_prompt(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    );
    let mut cache = sis_engine::forward::KvCache::new(&m, 64).unwrap();
    let t0 = now();
    let mut logits = sis_engine::forward::forward(
        &m,
        &mut cache,
        &Serial,
        &prompt,
        sis_engine::forward::Logits::Last,
    )
    .unwrap();
    let t1 = now();
    let mut out = alloc::vec::Vec::new();
    for _ in 0..8 {
        let nx = sis_engine::sampler::argmax(&logits);
        out.push(nx);
        logits = sis_engine::forward::forward(
            &m,
            &mut cache,
            &Serial,
            &[nx],
            sis_engine::forward::Logits::Last,
        )
        .unwrap();
    }
    let t2 = now();
    let text = String::from_utf8_lossy(&t.decode_all(&out)).into_owned();
    write(&format!(
        "smollm2: prompt {} tok {:.2} tok/s, generation 8 tok {:.2} tok/s, text {:?}\n",
        prompt.len(),
        prompt.len() as f64 / (t1 - t0),
        8.0 / (t2 - t1),
        text
    ));
}

fn line(name: &str, d: &sis_engine::selftest::Digest) -> String {
    format!("{name} hash={:016x} tokens={:?}\n", d.hash, d.tokens)
}

/// NEON kernels against the portable ones on pseudo-random blocks.
fn kernels_match() -> bool {
    let mut seed = 0x1234_5678u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for _ in 0..50 {
        let x: alloc::vec::Vec<f32> = (0..224)
            .map(|_| (rnd() % 2001) as f32 / 100.0 - 10.0)
            .collect();
        let a = Q8Acts::quantize(&x);
        let q4: alloc::vec::Vec<u8> = (0..7 * 20).map(|_| rnd() as u8 & 0x7b).collect();
        let q8: alloc::vec::Vec<u8> = (0..7 * 34).map(|_| rnd() as u8 & 0xbf).collect();
        let p4 = sis_engine::quant::dot_q4_1_n::<1>(&q4, [&a])[0];
        let n4 = sis_engine::quant_neon::dot_q4_1_n::<1>(&q4, [&a])[0];
        let p8 = sis_engine::quant::dot_q8_0_n::<1>(&q8, [&a])[0];
        let n8 = sis_engine::quant_neon::dot_q8_0_n::<1>(&q8, [&a])[0];
        if p4.to_bits() != n4.to_bits() || p8.to_bits() != n8.to_bits() {
            return false;
        }
    }
    true
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    write(&format!(
        "neon-kernels {}\n",
        if kernels_match() { "match" } else { "MISMATCH" }
    ));
    let (m, t) = load_gguf(GGUF).expect("tiny gguf");
    write(&line(
        "tiny-llama.gguf",
        &digest(&m, &Serial, &t.encode_prompt(PROMPT), 40).unwrap(),
    ));
    for (name, f) in [("tiny-l2c-f32.bin", L2C_F32), ("tiny-l2c-q8.bin", L2C_Q8)] {
        let (m, t) = load_llama2c(f, L2C_TOK).expect("tiny llama2.c");
        write(&line(
            name,
            &digest(&m, &Serial, &t.encode_prompt(PROMPT), 40).unwrap(),
        ));
    }
    smollm2_speed();
    exit(0)
}
