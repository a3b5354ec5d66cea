//! The transformer forward pass with a binary16 KV cache.
//!
//! Tokens are processed in batches: each weight matrix is read once per batch (prompt
//! prefill) and the per-token arithmetic is exactly the same as for a batch of one, so
//! the logits do not depend on how the prompt was chunked.

use crate::error::{Error, Result};
use crate::half::{f16_to_f32, f32_to_f16, round_f16};
use crate::model::{Model, Vector};
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

/// Attention of one query head over positions `0..npos` of layer `l`, whose keys and
/// values sit at offset `kv_off` in each cache row. q, K, V and the probabilities go
/// through f16 as in llama.cpp; sums run in position order.
fn attend_head(
    cache: &KvCache,
    l: usize,
    npos: usize,
    kv_off: usize,
    q: &[f32],
    scale: f32,
    out: &mut [f32],
) {
    let hd = q.len();
    let qh: Vec<f32> = q.iter().map(|&v| round_f16(v)).collect();
    let mut scores = vec![0.0f32; npos];
    let mut max = f32::NEG_INFINITY;
    for (p, s) in scores.iter_mut().enumerate() {
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
    for (p, s) in scores.iter().enumerate() {
        let w = round_f16(s * inv);
        let vo = cache.at(l, p) + kv_off;
        for (o, &vv) in out.iter_mut().zip(&cache.values[vo..vo + hd]) {
            *o += w * f16_to_f32(vv);
        }
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
    let (dim, kv_dim, hd, hidden) = (c.dim, c.kv_dim(), c.head_dim(), c.hidden_dim);
    let group = c.n_heads / c.n_kv_heads;
    let pos0 = cache.len;

    let mut x = vec![0.0f32; n * dim];
    for (t, &tok) in tokens.iter().enumerate() {
        model
            .token_embd
            .dequantize_row(tok as usize, &mut x[t * dim..(t + 1) * dim])?;
    }
    let ropes: Vec<Vec<(f32, f32)>> = (0..n)
        .map(|t| rope_table(pos0 + t, hd, c.rope_theta))
        .collect();
    let mut xb = vec![0.0f32; n * dim];
    let mut q = vec![0.0f32; n * dim];
    let mut k = vec![0.0f32; n * kv_dim];
    let mut v = vec![0.0f32; n * kv_dim];
    let mut att = vec![0.0f32; n * dim];
    let mut tmp = vec![0.0f32; n * dim];
    let mut hb = vec![0.0f32; n * hidden];
    let mut hb2 = vec![0.0f32; n * hidden];
    let scale = 1.0 / libm::sqrtf(hd as f32);

    for (l, layer) in model.layers.iter().enumerate() {
        for t in 0..n {
            let r = t * dim..(t + 1) * dim;
            rmsnorm(&mut xb[r.clone()], &x[r], &layer.attn_norm, c.rms_eps);
        }
        let mut inp = None;
        layer.wq.matmul_with(par, &xb, n, &mut inp, &mut q);
        layer.wk.matmul_with(par, &xb, n, &mut inp, &mut k);
        layer.wv.matmul_with(par, &xb, n, &mut inp, &mut v);
        for t in 0..n {
            rope(&mut q[t * dim..(t + 1) * dim], hd, &ropes[t]);
            rope(&mut k[t * kv_dim..(t + 1) * kv_dim], hd, &ropes[t]);
            let at = cache.at(l, pos0 + t);
            for i in 0..kv_dim {
                cache.keys[at + i] = f32_to_f16(k[t * kv_dim + i]);
                cache.values[at + i] = f32_to_f16(v[t * kv_dim + i]);
            }
        }
        {
            let cache_ref: &KvCache = cache;
            let cells: Vec<AtomicU32> = (0..n * dim).map(|_| AtomicU32::new(0)).collect();
            let q_ref = &q;
            par.for_each(n * c.n_heads, &|i| {
                let (t, h) = (i / c.n_heads, i % c.n_heads);
                let mut out = vec![0.0f32; hd];
                attend_head(
                    cache_ref,
                    l,
                    pos0 + t + 1,
                    (h / group) * hd,
                    &q_ref[t * dim + h * hd..t * dim + (h + 1) * hd],
                    scale,
                    &mut out,
                );
                for (j, v) in out.iter().enumerate() {
                    cells[t * dim + h * hd + j].store(v.to_bits(), Ordering::Relaxed);
                }
            });
            for (a, cell) in att.iter_mut().zip(&cells) {
                *a = f32::from_bits(cell.load(Ordering::Relaxed));
            }
        }
        layer.wo.matmul(par, &att, n, &mut tmp);
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
        for (a, b) in hb.iter_mut().zip(&hb2) {
            *a = silu(*a) * b;
        }
        layer.w_down.matmul(par, &hb, n, &mut tmp);
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
