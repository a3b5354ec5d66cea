//! The transformer forward pass with a binary16 KV cache.
//!
//! Tokens are processed in batches: each weight matrix is read once per batch (prompt
//! prefill) and the per-token arithmetic is exactly the same as for a batch of one, so
//! the logits do not depend on how the prompt was chunked.

use crate::error::{Error, Result};
use crate::half::{f16_to_f32, f32_to_f16, round_f16};
use crate::model::{Arch, Model, Vector};
use crate::parallel::Parallel;
use crate::quant::sum8;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// Key/value cache for every layer, stored as binary16 (as llama.cpp does by default).
#[derive(Debug, Clone)]
pub struct KvCache {
    capacity: usize,
    kv_dim: usize,
    n_layers: usize,
    keys: Vec<u16>,
    values: Vec<u16>,
    len: usize,
}

impl KvCache {
    /// Allocates a cache for `capacity` positions of `model`.
    pub fn new(model: &Model<'_>, capacity: usize) -> Result<Self> {
        let c = &model.config;
        if capacity == 0 || capacity > c.max_seq_len {
            return Err(Error::InvalidArgument(format!(
                "context of {capacity} tokens (model allows 1..={})",
                c.max_seq_len
            )));
        }
        let n = c
            .n_layers
            .checked_mul(capacity)
            .and_then(|v| v.checked_mul(c.kv_dim()))
            .ok_or_else(|| Error::InvalidArgument("KV cache size overflows".into()))?;
        Ok(KvCache {
            capacity,
            kv_dim: c.kv_dim(),
            n_layers: c.n_layers,
            keys: vec![0; n],
            values: vec![0; n],
            len: 0,
        })
    }

    /// Positions filled so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether no position is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Maximum positions.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Forgets every position (the memory is reused).
    pub fn clear(&mut self) {
        self.len = 0;
    }
    /// Keeps the first `len` positions and forgets the rest (no-op if `len` is not
    /// shorter): the next token goes to position `len`, as if only those had been run.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
    /// Bytes held by the cache.
    pub fn byte_len(&self) -> usize {
        (self.keys.len() + self.values.len()) * 2
    }
    fn at(&self, layer: usize, pos: usize) -> usize {
        (layer * self.capacity + pos) * self.kv_dim
    }
}

/// Which positions of a batch need logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// None (an intermediate prompt chunk).
    None,
    /// The last token of the batch.
    Last,
    /// Every token of the batch.
    All,
}

fn rmsnorm(out: &mut [f32], x: &[f32], w: &Vector<'_>, eps: f32) {
    let mut acc = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for j in 0..8 {
            acc[j] += c[j] * c[j];
        }
    }
    let mut ss = sum8(acc);
    for &v in chunks.remainder() {
        ss += v * v;
    }
    let scale = 1.0 / libm::sqrtf(ss / x.len() as f32 + eps);
    for (i, o) in out.iter_mut().enumerate() {
        *o = (x[i] * scale) * w.get(i);
    }
}

/// Rotates adjacent pairs `(x[2i], x[2i+1])` of every head by `pos * theta^(-2i/hd)`.
fn rope(x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)]) {
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &(c, s)) in cos_sin.iter().enumerate() {
            let (a, b) = (head[2 * i], head[2 * i + 1]);
            head[2 * i] = a * c - b * s;
            head[2 * i + 1] = a * s + b * c;
        }
    }
}

/// Rotates the pairs `(x[i], x[i + hd/2])` of every head by `pos * theta^(-2i/hd)`
/// (GPT-NeoX style, ggml's `GGML_ROPE_TYPE_NEOX`).
fn rope_neox(x: &mut [f32], head_dim: usize, cos_sin: &[(f32, f32)]) {
    let half = head_dim / 2;
    for head in x.chunks_exact_mut(head_dim) {
        for (i, &(c, s)) in cos_sin.iter().enumerate() {
            let (a, b) = (head[i], head[i + half]);
            head[i] = a * c - b * s;
            head[i + half] = a * s + b * c;
        }
    }
}

fn rope_table(pos: usize, head_dim: usize, theta: f32) -> Vec<(f32, f32)> {
    (0..head_dim / 2)
        .map(|i| {
            let freq = libm::powf(theta, -((2 * i) as f32) / head_dim as f32);
            let angle = pos as f32 * freq;
            (libm::cosf(angle), libm::sinf(angle))
        })
        .collect()
}

fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// GELU with the tanh approximation as ggml computes it for GeGLU on the CPU: the input
/// rounded to f16, the result rounded to f16 (its lookup table), and the identity / zero
/// beyond +-10.
fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    let x = round_f16(x);
    round_f16(0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x))))
}

fn dot_f16(q: &[f32], k: &[u16]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut qc = q.chunks_exact(8);
    let mut kc = k.chunks_exact(8);
    for (a, b) in (&mut qc).zip(&mut kc) {
        for j in 0..8 {
            acc[j] += a[j] * f16_to_f32(b[j]);
        }
    }
    let mut tail = 0.0;
    for (a, b) in qc.remainder().iter().zip(kc.remainder()) {
        tail += a * f16_to_f32(*b);
    }
    sum8(acc) + tail
}

/// Attention of one query head over positions `first..npos` of layer `l`, whose keys and
/// values sit at offset `kv_off` in each cache row. q, K, V and the probabilities go
/// through f16 as in llama.cpp; sums run in position order.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    cache: &KvCache,
    l: usize,
    first: usize,
    npos: usize,
    kv_off: usize,
    q: &[f32],
    scale: f32,
    out: &mut [f32],
) {
    let hd = q.len();
    let qh: Vec<f32> = q.iter().map(|&v| round_f16(v)).collect();
    let mut scores = vec![0.0f32; npos - first];
    let mut max = f32::NEG_INFINITY;
    for (i, s) in scores.iter_mut().enumerate() {
        let p = first + i;
        let ko = cache.at(l, p) + kv_off;
        *s = dot_f16(&qh, &cache.keys[ko..ko + hd]) * scale;
        max = max.max(*s);
    }
    let mut sum = 0.0f32;
    for s in scores.iter_mut() {
        *s = libm::expf(*s - max);
        sum += *s;
    }
    let inv = 1.0 / sum;
    out.fill(0.0);
    for (i, s) in scores.iter().enumerate() {
        let w = round_f16(s * inv);
        let vo = cache.at(l, first + i) + kv_off;
        for (o, &vv) in out.iter_mut().zip(&cache.values[vo..vo + hd]) {
            *o += w * f16_to_f32(vv);
        }
    }
}

/// RMSNorm of each `dim`-wide row of `y` in place (`scratch` as wide as `y`).
fn post_norm(y: &mut [f32], scratch: &mut [f32], dim: usize, w: &Vector<'_>, eps: f32) {
    for (row, out) in y.chunks_exact_mut(dim).zip(scratch.chunks_exact_mut(dim)) {
        rmsnorm(out, row, w, eps);
        row.copy_from_slice(out);
    }
}

/// Runs `tokens` through the model at positions `cache.len()..`, appending to the cache.
///
/// Returns the requested logits, `vocab_size` values per token asked for.
pub fn forward(
    model: &Model<'_>,
    cache: &mut KvCache,
    par: &dyn Parallel,
    tokens: &[u32],
    want: Logits,
) -> Result<Vec<f32>> {
    let c = &model.config;
    let n = tokens.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    if cache.len + n > cache.capacity {
        return Err(Error::ContextFull {
            capacity: cache.capacity,
        });
    }
    if cache.n_layers != c.n_layers || cache.kv_dim != c.kv_dim() {
        return Err(Error::InvalidArgument(
            "KV cache belongs to another model".into(),
        ));
    }
    if let Some(&t) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
        return Err(Error::InvalidArgument(format!(
            "token {t} is outside the vocabulary ({})",
            c.vocab_size
        )));
    }
    let (dim, kv_dim, hd, hidden) = (c.dim, c.kv_dim(), c.head_dim, c.hidden_dim);
    let q_dim = c.q_dim();
    let group = c.n_heads / c.n_kv_heads;
    let pos0 = cache.len;
    let gemma = match &c.arch {
        Arch::Gemma3(g) => Some(g),
        Arch::Llama => None,
    };

    let mut x = vec![0.0f32; n * dim];
    for (t, &tok) in tokens.iter().enumerate() {
        model
            .token_embd
            .dequantize_row(tok as usize, &mut x[t * dim..(t + 1) * dim])?;
    }
    if gemma.is_some() {
        let s = libm::sqrtf(dim as f32);
        for v in x.iter_mut() {
            *v *= s;
        }
    }
    let ropes: Vec<Vec<(f32, f32)>> = (0..n)
        .map(|t| rope_table(pos0 + t, hd, c.rope_theta))
        .collect();
    let ropes_local: Vec<Vec<(f32, f32)>> = match gemma {
        Some(g) if g.local.iter().any(|&l| l) => (0..n)
            .map(|t| rope_table(pos0 + t, hd, g.rope_theta_local))
            .collect(),
        _ => Vec::new(),
    };
    let mut xb = vec![0.0f32; n * dim];
    let mut q = vec![0.0f32; n * q_dim];
    let mut k = vec![0.0f32; n * kv_dim];
    let mut v = vec![0.0f32; n * kv_dim];
    let mut att = vec![0.0f32; n * q_dim];
    let mut tmp = vec![0.0f32; n * dim];
    let mut hb = vec![0.0f32; n * hidden];
    let mut hb2 = vec![0.0f32; n * hidden];
    let mut normed = vec![0.0f32; hd];
    // Llama scales the scores; Gemma 3 scales the queries instead (before their f16
    // rounding, as llama.cpp does) and the scores by 1.
    let scale = match gemma {
        Some(_) => 1.0,
        None => 1.0 / libm::sqrtf(hd as f32),
    };

    for (l, layer) in model.layers.iter().enumerate() {
        let local = gemma.is_some_and(|g| g.local[l]);
        for t in 0..n {
            let r = t * dim..(t + 1) * dim;
            rmsnorm(&mut xb[r.clone()], &x[r], &layer.attn_norm, c.rms_eps);
        }
        let mut inp = None;
        layer.wq.matmul_with(par, &xb, n, &mut inp, &mut q);
        layer.wk.matmul_with(par, &xb, n, &mut inp, &mut k);
        layer.wv.matmul_with(par, &xb, n, &mut inp, &mut v);
        for t in 0..n {
            let qt = &mut q[t * q_dim..(t + 1) * q_dim];
            let kt = &mut k[t * kv_dim..(t + 1) * kv_dim];
            match (gemma, &layer.gemma) {
                (Some(g), Some(norms)) => {
                    for (x, w) in [(&mut *qt, &norms.q_norm), (&mut *kt, &norms.k_norm)] {
                        for head in x.chunks_exact_mut(hd) {
                            rmsnorm(&mut normed, head, w, c.rms_eps);
                            head.copy_from_slice(&normed);
                        }
                    }
                    let table = if local { &ropes_local[t] } else { &ropes[t] };
                    rope_neox(qt, hd, table);
                    rope_neox(kt, hd, table);
                    for v in qt.iter_mut() {
                        *v *= g.query_scale;
                    }
                }
                _ => {
                    rope(qt, hd, &ropes[t]);
                    rope(kt, hd, &ropes[t]);
                }
            }
            let at = cache.at(l, pos0 + t);
            for i in 0..kv_dim {
                cache.keys[at + i] = f32_to_f16(k[t * kv_dim + i]);
                cache.values[at + i] = f32_to_f16(v[t * kv_dim + i]);
            }
        }
        let window = match gemma {
            Some(g) if local => g.sliding_window,
            _ => 0,
        };
        {
            let cache_ref: &KvCache = cache;
            let cells: Vec<AtomicU32> = (0..n * q_dim).map(|_| AtomicU32::new(0)).collect();
            let q_ref = &q;
            par.for_each(n * c.n_heads, &|i| {
                let (t, h) = (i / c.n_heads, i % c.n_heads);
                let npos = pos0 + t + 1;
                // A local layer sees the last `window` positions, its own included.
                let first = if window > 0 {
                    npos.saturating_sub(window)
                } else {
                    0
                };
                let mut out = vec![0.0f32; hd];
                attend_head(
                    cache_ref,
                    l,
                    first,
                    npos,
                    (h / group) * hd,
                    &q_ref[t * q_dim + h * hd..t * q_dim + (h + 1) * hd],
                    scale,
                    &mut out,
                );
                for (j, v) in out.iter().enumerate() {
                    cells[t * q_dim + h * hd + j].store(v.to_bits(), Ordering::Relaxed);
                }
            });
            for (a, cell) in att.iter_mut().zip(&cells) {
                *a = f32::from_bits(cell.load(Ordering::Relaxed));
            }
        }
        layer.wo.matmul(par, &att, n, &mut tmp);
        if let Some(norms) = &layer.gemma {
            post_norm(&mut tmp, &mut xb, dim, &norms.post_attn, c.rms_eps);
        }
        for (a, b) in x.iter_mut().zip(&tmp) {
            *a += b;
        }
        for t in 0..n {
            let r = t * dim..(t + 1) * dim;
            rmsnorm(&mut xb[r.clone()], &x[r], &layer.ffn_norm, c.rms_eps);
        }
        let mut inp = None;
        layer.w_gate.matmul_with(par, &xb, n, &mut inp, &mut hb);
        layer.w_up.matmul_with(par, &xb, n, &mut inp, &mut hb2);
        if gemma.is_some() {
            for (a, b) in hb.iter_mut().zip(&hb2) {
                *a = gelu(*a) * b;
            }
        } else {
            for (a, b) in hb.iter_mut().zip(&hb2) {
                *a = silu(*a) * b;
            }
        }
        layer.w_down.matmul(par, &hb, n, &mut tmp);
        if let Some(norms) = &layer.gemma {
            post_norm(&mut tmp, &mut xb, dim, &norms.post_ffn, c.rms_eps);
        }
        for (a, b) in x.iter_mut().zip(&tmp) {
            *a += b;
        }
    }
    cache.len += n;

    let rows: Vec<usize> = match want {
        Logits::None => return Ok(Vec::new()),
        Logits::Last => vec![n - 1],
        Logits::All => (0..n).collect(),
    };
    let mut normed = vec![0.0f32; rows.len() * dim];
    for (i, &t) in rows.iter().enumerate() {
        rmsnorm(
            &mut normed[i * dim..(i + 1) * dim],
            &x[t * dim..(t + 1) * dim],
            &model.output_norm,
            c.rms_eps,
        );
    }
    let mut logits = vec![0.0f32; rows.len() * c.vocab_size];
    model.output.matmul(par, &normed, rows.len(), &mut logits);
    Ok(logits)
}
