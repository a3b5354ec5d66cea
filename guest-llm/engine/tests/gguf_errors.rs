//! Hand-built GGUF files: a minimal valid model loads and runs; each kind of defect
//! gives a clear error naming the problem.

use sis_engine::{load_gguf, Error};

/// Metadata value for the builder.
enum V {
    U32(u32),
    F32(f32),
    Str(&'static [u8]),
    Strs(Vec<&'static str>),
    Bool(bool),
}

struct T {
    name: &'static str,
    dims: Vec<u64>,
    ty: u32,
}

fn build(kv: &[(&str, V)], tensors: &[T], offset_bump: u64) -> Vec<u8> {
    let mut f = Vec::new();
    let s = |f: &mut Vec<u8>, b: &[u8]| {
        f.extend((b.len() as u64).to_le_bytes());
        f.extend(b);
    };
    f.extend(b"GGUF");
    f.extend(3u32.to_le_bytes());
    f.extend((tensors.len() as u64).to_le_bytes());
    f.extend((kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        s(&mut f, k.as_bytes());
        match v {
            V::U32(x) => {
                f.extend(4u32.to_le_bytes());
                f.extend(x.to_le_bytes());
            }
            V::F32(x) => {
                f.extend(6u32.to_le_bytes());
                f.extend(x.to_le_bytes());
            }
            V::Bool(b) => {
                f.extend(7u32.to_le_bytes());
                f.push(*b as u8);
            }
            V::Str(x) => {
                f.extend(8u32.to_le_bytes());
                s(&mut f, x);
            }
            V::Strs(xs) => {
                f.extend(9u32.to_le_bytes());
                f.extend(8u32.to_le_bytes());
                f.extend((xs.len() as u64).to_le_bytes());
                for x in xs {
                    s(&mut f, x.as_bytes());
                }
            }
        }
    }
    let mut off = 0u64;
    let mut sizes = Vec::new();
    for t in tensors {
        s(&mut f, t.name.as_bytes());
        f.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            f.extend(d.to_le_bytes());
        }
        f.extend(t.ty.to_le_bytes());
        f.extend((off + offset_bump).to_le_bytes());
        let n: u64 = t.dims.iter().product();
        let size = if t.ty == 0 { n * 4 } else { n }; // others: any bytes, type is rejected first
        sizes.push(size);
        off += size.div_ceil(32) * 32;
    }
    while f.len() % 32 != 0 {
        f.push(0);
    }
    for size in sizes {
        let start = f.len();
        // Weights: a small constant so the forward pass gives finite numbers.
        for _ in 0..size / 4 {
            f.extend(0.01f32.to_le_bytes());
        }
        f.resize(start + (size as usize).div_ceil(32) * 32, 0);
    }
    f
}

fn kv() -> Vec<(&'static str, V)> {
    vec![
        ("general.architecture", V::Str(b"llama")),
        ("llama.embedding_length", V::U32(32)),
        ("llama.feed_forward_length", V::U32(32)),
        ("llama.block_count", V::U32(1)),
        ("llama.attention.head_count", V::U32(2)),
        ("llama.attention.head_count_kv", V::U32(1)),
        ("llama.context_length", V::U32(16)),
        ("llama.rope.freq_base", V::F32(10000.0)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("tokenizer.ggml.model", V::Str(b"gpt2")),
        ("tokenizer.ggml.tokens", V::Strs(vec!["a", "b", "c", "d"])),
        ("tokenizer.ggml.add_bos_token", V::Bool(false)),
    ]
}

fn tensors() -> Vec<T> {
    let t = |name, dims: &[u64]| T {
        name,
        dims: dims.to_vec(),
        ty: 0,
    };
    vec![
        t("token_embd.weight", &[32, 4]),
        t("blk.0.attn_norm.weight", &[32]),
        t("blk.0.attn_q.weight", &[32, 32]),
        t("blk.0.attn_k.weight", &[32, 16]),
        t("blk.0.attn_v.weight", &[32, 16]),
        t("blk.0.attn_output.weight", &[32, 32]),
        t("blk.0.ffn_norm.weight", &[32]),
        t("blk.0.ffn_gate.weight", &[32, 32]),
        t("blk.0.ffn_up.weight", &[32, 32]),
        t("blk.0.ffn_down.weight", &[32, 32]),
        t("output_norm.weight", &[32]),
    ]
}

fn err(f: &[u8]) -> Error {
    load_gguf(f).expect_err("must be rejected")
}

#[test]
fn minimal_model_loads_and_runs() {
    let f = build(&kv(), &tensors(), 0);
    let (model, tok) = load_gguf(&f).unwrap();
    assert!(model.shared_classifier);
    assert_eq!(tok.encode("abcd"), [0, 1, 2, 3]);
    let mut cache = sis_engine::forward::KvCache::new(&model, 4).unwrap();
    let l = sis_engine::forward::forward(
        &model,
        &mut cache,
        &sis_engine::Serial,
        &[0, 3],
        sis_engine::forward::Logits::All,
    )
    .unwrap();
    assert_eq!(l.len(), 8);
    assert!(l.iter().all(|v| v.is_finite()));
}

#[test]
fn unsupported_tensor_type_is_named() {
    let mut ts = tensors();
    ts[2].ty = 11; // Q3_K, still missing
    let e = err(&build(&kv(), &ts, 0));
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
    let m = e.to_string();
    assert!(
        m.contains("blk.0.attn_q.weight") && m.contains("Q3_K"),
        "{m}"
    );
}

#[test]
fn tensor_outside_the_file_is_rejected() {
    let m = err(&build(&kv(), &tensors(), 1 << 20)).to_string();
    assert!(m.contains("outside the file"), "{m}");
    let m = err(&build(&kv(), &tensors(), 16)).to_string();
    assert!(m.contains("not aligned"), "{m}");
}

#[test]
fn wrong_shape_and_missing_tensor_are_rejected() {
    let mut ts = tensors();
    ts[3].dims = vec![32, 32]; // K must be kv_dim (16) x dim
    let m = err(&build(&kv(), &ts, 0)).to_string();
    assert!(
        m.contains("blk.0.attn_k.weight") && m.contains("shape"),
        "{m}"
    );
    let mut ts = tensors();
    ts.remove(9);
    let m = err(&build(&kv(), &ts, 0)).to_string();
    assert!(m.contains("missing tensor blk.0.ffn_down.weight"), "{m}");
}

#[test]
fn bad_metadata_is_rejected() {
    let mut k = kv();
    k[1] = ("llama.embedding_length", V::U32(u32::MAX));
    assert!(err(&build(&k, &tensors(), 0))
        .to_string()
        .contains("out of range"));
    let mut k = kv();
    k[5] = ("llama.attention.head_count_kv", V::U32(3)); // does not divide 2 heads
    assert!(err(&build(&k, &tensors(), 0))
        .to_string()
        .contains("n_kv_heads"));
    let mut k = kv();
    k[10] = ("tokenizer.ggml.tokens", V::Strs(vec!["a", "b"]));
    assert!(err(&build(&k, &tensors(), 0))
        .to_string()
        .contains("tokenizer has 2 tokens"));
    let mut k = kv();
    k[9] = ("tokenizer.ggml.model", V::Str(b"bert"));
    assert!(matches!(
        err(&build(&k, &tensors(), 0)),
        Error::Unsupported(_)
    ));
    // A SentencePiece vocabulary needs its scores.
    let mut k = kv();
    k[9] = ("tokenizer.ggml.model", V::Str(b"llama"));
    assert!(err(&build(&k, &tensors(), 0))
        .to_string()
        .contains("missing tokenizer.ggml.scores"));
    let mut k = kv();
    k[0] = ("general.architecture", V::Str(b"\xff\xfe"));
    assert!(err(&build(&k, &tensors(), 0))
        .to_string()
        .contains("not UTF-8"));
    let mut k = kv();
    k[0] = ("general.architecture", V::Str(b"gpt2"));
    assert!(matches!(
        err(&build(&k, &tensors(), 0)),
        Error::Unsupported(_)
    ));
}
