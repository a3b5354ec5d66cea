//! Property tests: loaders never panic on random or mutated files, and tokenizers
//! round-trip arbitrary UTF-8.

use proptest::prelude::*;
use sis_engine::blocks::Format;
use sis_engine::forward::{forward, KvCache, Logits};
use sis_engine::matrix::{Matrix, Storage};
use sis_engine::{gguf::Gguf, load_gguf, load_llama2c, Model, Serial, Tokenizer};
use std::path::PathBuf;
use std::sync::OnceLock;

fn read(rel: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn gguf_file() -> &'static [u8] {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| read("models/test/tiny-llama.gguf"))
}
fn gemma3_file() -> &'static [u8] {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| read("models/test/tiny-gemma3.gguf"))
}
fn l2c_f32() -> &'static [u8] {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| read("models/test/tiny-l2c-f32.bin"))
}
fn l2c_q8() -> &'static [u8] {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| read("models/test/tiny-l2c-q8.bin"))
}
fn l2c_tok() -> &'static [u8] {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| read("models/test/tiny-tokenizer.bin"))
}

/// A loaded model must also survive a forward step and a tokenizer round trip.
fn exercise(model: &Model<'_>, tok: &Tokenizer<'_>) {
    if let Ok(mut cache) = KvCache::new(model, model.config.max_seq_len.min(4)) {
        let _ = forward(model, &mut cache, &Serial, &[0, 1], Logits::All);
    }
    let ids = tok.encode_prompt("fuzz <|im_start|> 123 é\n\n  <start_of_turn>");
    let _ = tok.decode_all(&ids);
    if let Ok(ids) = tok.encode_chat(Some("sys"), "user <end_of_turn>") {
        let _ = tok.decode_all(&ids);
    }
}

const NEW_FORMATS: [Format; 6] = [
    Format::Q4_0,
    Format::Q5_0,
    Format::Q5_1,
    Format::Q4_K,
    Format::Q5_K,
    Format::Q6_K,
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, value: u64, width: u8 },
    Truncate { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u64),
                Just(u64::MAX),
                Just(1u64 << 32),
                Just(0x7fff_ffff),
                any::<u64>()
            ],
            prop_oneof![Just(1u8), Just(4u8), Just(8u8)]
        )
            .prop_map(|(at, value, width)| Mutation::Set { at, value, width }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
    ]
}

/// Applies mutations; positions are biased towards the header where they do the most
/// damage.
fn mutate(orig: &[u8], ms: &[Mutation], header: usize) -> Vec<u8> {
    let mut f = orig.to_vec();
    for (k, m) in ms.iter().enumerate() {
        if f.is_empty() {
            break;
        }
        let span = if k % 2 == 0 {
            header.min(f.len())
        } else {
            f.len()
        };
        match *m {
            Mutation::Flip { at, bit } => {
                let i = at % span;
                f[i] ^= 1 << bit;
            }
            Mutation::Set { at, value, width } => {
                let i = at % span;
                for (j, b) in value.to_le_bytes()[..width as usize].iter().enumerate() {
                    if let Some(x) = f.get_mut(i + j) {
                        *x = *b;
                    }
                }
            }
            Mutation::Truncate { len } => {
                let n = f.len();
                f.truncate(len % (n + 1));
            }
        }
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn gguf_random_bytes_never_panic(mut data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = load_gguf(&data);
        if data.len() >= 8 {
            data[..4].copy_from_slice(b"GGUF");
            data[4..8].copy_from_slice(&3u32.to_le_bytes());
        }
        let _ = load_gguf(&data);
    }

    #[test]
    fn gguf_mutated_never_panics(ms in proptest::collection::vec(mutation(), 1..4)) {
        let f = mutate(gguf_file(), &ms, 4096);
        if let Ok((model, tok)) = load_gguf(&f) {
            exercise(&model, &tok);
        }
    }

    #[test]
    fn gemma3_mutated_never_panics(ms in proptest::collection::vec(mutation(), 1..4)) {
        // The metadata (SentencePiece vocabulary included) fills the first ~25 KB.
        let f = mutate(gemma3_file(), &ms, 32768);
        if let Ok((model, tok)) = load_gguf(&f) {
            exercise(&model, &tok);
        }
    }

    /// Any bytes in any new block format: a matrix of the right size multiplies and
    /// dequantizes without panicking (the SIMD kernels included); a wrong size is an error.
    #[test]
    fn block_decoders_take_any_bytes(which in 0usize..6, blocks in 1usize..4, rows in 1usize..20,
                                     extra in 0usize..3, seed in any::<u64>(), n in 1usize..10) {
        let f = NEW_FORMATS[which];
        let cols = blocks * f.block_values();
        let len = rows * blocks * f.block_bytes();
        let mut x = seed | 1;
        let mut next = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
        let data: Vec<u8> = (0..len + extra).map(|_| next() as u8).collect();
        let m = Matrix::new(rows, cols, Storage::quantized(f, &data), "w");
        prop_assert_eq!(m.is_ok(), extra == 0);
        if let Ok(m) = m {
            let xs: Vec<f32> = (0..n * cols).map(|_| (next() % 2001) as f32 / 100.0 - 10.0).collect();
            let mut out = vec![0.0; n * rows];
            m.matmul(&Serial, &xs, n, &mut out);
            let mut row = vec![0.0; cols];
            m.dequantize_row(rows - 1, &mut row).unwrap();
            prop_assert!(m.dequantize_row(rows, &mut row).is_err());
        }
        prop_assert!(Matrix::new(rows, cols + 1, Storage::quantized(f, &data[..len]), "w").is_err());
    }

    #[test]
    fn llama2c_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512),
                                        tok in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = load_llama2c(&data, &tok);
        let _ = load_llama2c(l2c_f32(), &tok);
    }

    #[test]
    fn llama2c_mutated_never_panics(ms in proptest::collection::vec(mutation(), 1..4),
                                    which in 0usize..3) {
        let (ck, tk) = match which {
            0 => (mutate(l2c_f32(), &ms, 28), l2c_tok().to_vec()),
            1 => (mutate(l2c_q8(), &ms, 256), l2c_tok().to_vec()),
            _ => (l2c_f32().to_vec(), mutate(l2c_tok(), &ms, 64)),
        };
        if let Ok((model, tok)) = load_llama2c(&ck, &tk) {
            exercise(&model, &tok);
        }
    }

    #[test]
    fn bpe_round_trips_arbitrary_utf8(s in "\\PC*", t in any::<String>()) {
        let g = Gguf::parse(gguf_file()).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        for text in [&s, &t] {
            let ids = tok.encode(text);
            prop_assert_eq!(String::from_utf8(tok.decode_all(&ids)).unwrap(), text.as_str());
        }
    }

    #[test]
    fn sentencepiece_round_trips_arbitrary_utf8(s in "\\PC*", t in any::<String>()) {
        let g = Gguf::parse(gemma3_file()).unwrap();
        let tok = Tokenizer::from_gguf(&g).unwrap();
        for text in [&s, &t] {
            let ids = tok.encode(text);
            // U+2581 is SentencePiece's space: it decodes as one.
            prop_assert_eq!(
                String::from_utf8(tok.decode_all(&ids)).unwrap(),
                text.replace('\u{2581}', " ")
            );
        }
    }

    #[test]
    fn spm_round_trips_arbitrary_utf8(s in "\\PC*", t in any::<String>()) {
        let (_, tok) = load_llama2c(l2c_f32(), l2c_tok()).unwrap();
        for text in [&s, &t] {
            let ids = tok.encode_prompt(text);
            prop_assert_eq!(String::from_utf8(tok.decode_all(&ids)).unwrap(), text.as_str());
        }
    }
}

#[test]
fn truncated_gguf_gives_clear_errors() {
    let f = gguf_file();
    for len in [0, 3, 8, 24, 100, 1000, f.len() / 2, f.len() - 1] {
        let e = load_gguf(&f[..len]).expect_err("truncated file must fail");
        let msg = e.to_string();
        assert!(
            msg.contains("truncated")
                || msg.contains("outside the file")
                || msg.contains("past the end"),
            "len {len}: {msg}"
        );
    }
    let mut bad = f.to_vec();
    bad[0] = b'X';
    assert!(load_gguf(&bad).unwrap_err().to_string().contains("magic"));
}

#[test]
fn absurd_llama2c_header_rejected_without_allocating() {
    let mut f = l2c_f32().to_vec();
    f[0..4].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(load_llama2c(&f, l2c_tok())
        .unwrap_err()
        .to_string()
        .contains("dim"));
    let mut f = l2c_f32().to_vec();
    f[24..28].copy_from_slice(&(1i32 << 19).to_le_bytes()); // seq_len: legacy tables no longer fit
    assert!(load_llama2c(&f, l2c_tok()).is_err());
}

#[test]
#[ignore = "needs models/cache/gemma-3-270m-q4_k_m.gguf (scripts/fetch-model.sh gemma3)"]
fn gemma3_270m_round_trips_arbitrary_utf8() {
    let f = read("models/cache/gemma-3-270m-q4_k_m.gguf");
    let (_, tok) = load_gguf(&f).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    runner
        .run(&("\\PC*", any::<String>()), |(s, t)| {
            for text in [&s, &t] {
                let ids = tok.encode(text);
                prop_assert_eq!(
                    String::from_utf8(tok.decode_all(&ids)).unwrap(),
                    text.replace('\u{2581}', " ")
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
#[ignore = "needs models/cache/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-model.sh)"]
fn smollm2_bpe_round_trips_arbitrary_utf8() {
    let f = read("models/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
    let (_, tok) = load_gguf(&f).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 512,
        ..ProptestConfig::default()
    });
    runner
        .run(&("\\PC*", any::<String>()), |(s, t)| {
            for text in [&s, &t] {
                let ids = tok.encode(text);
                prop_assert_eq!(
                    String::from_utf8(tok.decode_all(&ids)).unwrap(),
                    text.as_str()
                );
            }
            Ok(())
        })
        .unwrap();
}
