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
use sis_engine::selftest::{digest, sampled, PROMPT};
use sis_engine::{load_gguf, load_llama2c, Serial};

static GGUF: &[u8] = include_bytes!("../../../../models/test/tiny-llama.gguf");
static GEMMA3: &[u8] = include_bytes!("../../../../models/test/tiny-gemma3.gguf");
static L2C_F32: &[u8] = include_bytes!("../../../../models/test/tiny-l2c-f32.bin");
static L2C_Q8: &[u8] = include_bytes!("../../../../models/test/tiny-l2c-q8.bin");
static L2C_TOK: &[u8] = include_bytes!("../../../../models/test/tiny-tokenizer.bin");

/// Prompt and generation speed of a real model (`label: ...` line) if it is in
/// models/cache: the chat prompt "What is the capital of France?" and 8 greedy tokens.
fn speed(label: &str, file: &str) {
    let Some(f) = map_file(file) else {
        write(&format!("{label}: {file} not found, skipped\n"));
        return;
    };
    let (m, t) = load_gguf(f).expect("real model");
    let prompt = t
        .encode_chat(None, "What is the capital of France?")
        .expect("chat turns");
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
        "{label}: prompt {} tok {:.2} tok/s, generation 8 tok {:.2} tok/s, text {:?}\n",
        prompt.len(),
        prompt.len() as f64 / (t1 - t0),
        8.0 / (t2 - t1),
        text
    ));
}

fn line(name: &str, d: &sis_engine::selftest::Digest) -> String {
    format!("{name} hash={:016x} tokens={:?}\n", d.hash, d.tokens)
}

/// NEON kernels against the portable ones on pseudo-random blocks: the 32-value
/// formats with one and eight inputs, row lengths with and without a partial group of
/// eight blocks, and the largest products; then the K formats.
fn kernels_match() -> bool {
    use sis_engine::blocks::Format;
    use sis_engine::quant as p;
    use sis_engine::quant_neon as n;
    let mut seed = 0x1234_5678u32;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for round in 0..24 {
        let cols = 32 * [7, 19, 16, 1, 20, 8, 13, 4][round % 8];
        let extreme = round % 4 == 3;
        let xs: alloc::vec::Vec<alloc::vec::Vec<f32>> = (0..8)
            .map(|_| {
                (0..cols)
                    .map(|i| match (extreme, i % 3) {
                        (true, 0) => -1.0,
                        (true, _) => 1.0,
                        _ => (rnd() % 4001) as f32 / 100.0 - 20.0,
                    })
                    .collect()
            })
            .collect();
        let a8: alloc::vec::Vec<Q8Acts> = xs.iter().map(|x| Q8Acts::quantize(x)).collect();
        let r8: [&Q8Acts; 8] = core::array::from_fn(|t| &a8[t]);
        for f in [
            Format::Q4_0,
            Format::Q4_1,
            Format::Q5_0,
            Format::Q5_1,
            Format::Q8_0,
        ] {
            let hdr = if matches!(f, Format::Q4_1 | Format::Q5_1) {
                4
            } else {
                2
            };
            let mut row: alloc::vec::Vec<u8> = (0..cols / 32 * f.block_bytes())
                .map(|_| rnd() as u8)
                .collect();
            for blk in row.chunks_exact_mut(f.block_bytes()) {
                // Finite binary16 scales: clear the top exponent bit of every scale field.
                for i in (1..hdr).step_by(2) {
                    blk[i] &= 0xbf;
                }
                if extreme {
                    blk[hdr..].fill(if f == Format::Q8_0 { 0x80 } else { 0xff });
                }
            }
            macro_rules! cmp {
                ($k:ident) => {
                    (p::$k(&row, r8), n::$k(&row, r8), n::$k(&row, [r8[5]])[0])
                };
            }
            let (a, b, c) = match f {
                Format::Q4_0 => cmp!(dot_q4_0_n),
                Format::Q4_1 => cmp!(dot_q4_1_n),
                Format::Q5_0 => cmp!(dot_q5_0_n),
                Format::Q5_1 => cmp!(dot_q5_1_n),
                _ => cmp!(dot_q8_0_n),
            };
            if a.map(f32::to_bits) != b.map(f32::to_bits) || a[5].to_bits() != c.to_bits() {
                write(&format!("neon kernel {f:?} differs (round {round})\n"));
                return false;
            }
        }
    }
    block_kernels_match(&mut rnd)
}

/// The NEON K-format kernels (Q4_K, Q5_K, Q6_K) against the portable ones, one and eight inputs.
fn block_kernels_match(rnd: &mut impl FnMut() -> u32) -> bool {
    use sis_engine::blocks::Format;
    use sis_engine::kernels::portable as p;
    use sis_engine::quant::Q8KActs;
    use sis_engine::quant_neon as n;
    let cols = 512;
    for round in 0..21 {
        // Every third round at the extremes: activations all +-127, every weight bit set,
        // largest scales (Q6_K: -128), so a lane overflow would show.
        let extreme = round % 3 == 2;
        let xs: alloc::vec::Vec<alloc::vec::Vec<f32>> = (0..8)
            .map(|_| {
                (0..cols)
                    .map(|i| match (extreme, i % 3) {
                        (true, 0) => 1.0,
                        (true, _) => -1.0,
                        _ => (rnd() % 4001) as f32 / 100.0 - 20.0,
                    })
                    .collect()
            })
            .collect();
        let ak: alloc::vec::Vec<Q8KActs> = xs.iter().map(|x| Q8KActs::quantize(x)).collect();
        let rk: [&Q8KActs; 8] = core::array::from_fn(|t| &ak[t]);
        for f in [Format::Q4_K, Format::Q5_K, Format::Q6_K] {
            let mut row: alloc::vec::Vec<u8> = (0..cols / f.block_values() * f.block_bytes())
                .map(|_| rnd() as u8)
                .collect();
            // Finite binary16 scales: clear the top exponent bit of every scale field.
            for blk in row.chunks_exact_mut(f.block_bytes()) {
                let at: &[usize] = match f {
                    Format::Q6_K => &[209],
                    _ => &[1, 3],
                };
                for &i in at {
                    blk[i] &= 0xbf;
                }
                if extreme {
                    if f == Format::Q6_K {
                        blk[..192].fill(0xff);
                        blk[192..208].fill(0x80);
                    } else {
                        blk[4..].fill(0xff);
                    }
                }
            }
            let (a, b, c) = match f {
                Format::Q4_K => (
                    p::dot_q4_k_n(&row, rk),
                    n::dot_q4_k_n(&row, rk),
                    n::dot_q4_k_n(&row, [rk[5]])[0],
                ),
                Format::Q5_K => (
                    p::dot_q5_k_n(&row, rk),
                    n::dot_q5_k_n(&row, rk),
                    n::dot_q5_k_n(&row, [rk[5]])[0],
                ),
                _ => (
                    p::dot_q6_k_n(&row, rk),
                    n::dot_q6_k_n(&row, rk),
                    n::dot_q6_k_n(&row, [rk[5]])[0],
                ),
            };
            if a.map(f32::to_bits) != b.map(f32::to_bits) || a[5].to_bits() != c.to_bits() {
                write(&format!(
                    "neon block kernel {f:?} differs (round {round})\n"
                ));
                return false;
            }
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
    for (name, f) in [("tiny-llama.gguf", GGUF), ("tiny-gemma3.gguf", GEMMA3)] {
        let (m, t) = load_gguf(f).expect("tiny gguf");
        write(&line(
            name,
            &digest(&m, &Serial, &t.encode_prompt(PROMPT), 40).unwrap(),
        ));
    }
    for (name, f) in [("tiny-l2c-f32.bin", L2C_F32), ("tiny-l2c-q8.bin", L2C_Q8)] {
        let (m, t) = load_llama2c(f, L2C_TOK).expect("tiny llama2.c");
        write(&line(
            name,
            &digest(&m, &Serial, &t.encode_prompt(PROMPT), 40).unwrap(),
        ));
    }
    for (name, f) in [("tiny-llama.gguf", GGUF), ("tiny-gemma3.gguf", GEMMA3)] {
        let (m, t) = load_gguf(f).expect("tiny gguf");
        let toks = sampled(&m, &Serial, &t.encode_prompt(PROMPT), 40).unwrap();
        write(&format!("{name} sampled={toks:?}\n"));
    }
    speed("smollm2", "models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    speed("gemma3", "models/cache/gemma-3-270m-q4_k_m.gguf");
    exit(0)
}
