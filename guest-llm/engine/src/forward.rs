//! The transformer forward pass with a binary16 KV cache.
//!
//! Tokens are processed in batches: each weight matrix is read once per batch (prompt
//! prefill) and the per-token arithmetic is exactly the same as for a batch of one, so
//! the logits do not depend on how the prompt was chunked.

use crate::error::{Error, Result};
use crate::half::{f16_to_f32, f32_to_f16, round_f16};
use crate::matrix::{Cells, Inputs, Matrix};
use crate::model::{Arch, Model, Vector};
use crate::parallel::Parallel;
use crate::quant::sum8;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

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
    for ((o, &v), wv) in out.iter_mut().zip(x).zip(w.values()) {
        *o = (v * scale) * wv;
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

/// The rotation table of position `pos` into `out` (`head_dim / 2` pairs).
fn rope_table(pos: usize, head_dim: usize, theta: f32, out: &mut [(f32, f32)]) {
    for (i, o) in out.iter_mut().enumerate() {
        let freq = libm::powf(theta, -((2 * i) as f32) / head_dim as f32);
        let angle = pos as f32 * freq;
        *o = (libm::cosf(angle), libm::sinf(angle));
    }
}

fn silu(x: f32) -> f32 {
    x / (1.0 + libm::expf(-x))
}

/// GELU with the tanh approximation of a binary16 input, rounded to f16: the entries of
/// ggml's GELU lookup table.
fn gelu_of_half(h: u16) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const COEF_A: f32 = 0.044_715;
    let x = f16_to_f32(h);
    round_f16(0.5 * x * (1.0 + libm::tanhf(SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x))))
}

/// GELU as ggml computes it for GeGLU on the CPU: the input rounded to f16 and looked up
/// in `table` ([`gelu_of_half`] of every f16), the identity / zero beyond +-10.
fn gelu(x: f32, table: &[f32]) -> f32 {
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    table[f32_to_f16(x) as usize]
}

/// Whether the attention uses the F16C twins of [`dot_f16`] and [`axpy_f16`] (same bits).
#[inline]
fn f16c() -> bool {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        crate::matrix::Kernels::current() != crate::matrix::Kernels::Portable
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        false
    }
}

/// `dst[i] = f32_to_f16(src[i])`.
fn to_halves(src: &[f32], dst: &mut [u16], simd: bool) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if simd {
        // SAFETY: `simd` comes from `f16c()`, true only when the CPU has AVX2 and F16C.
        return unsafe { crate::quant_avx2::f32_to_f16_slice(src, dst) };
    }
    let _ = simd;
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32_to_f16(s);
    }
}

/// `x[i] = round_f16(x[i])`.
fn round_halves(x: &mut [f32], simd: bool) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if simd {
        // SAFETY: `simd` comes from `f16c()`, true only when the CPU has AVX2 and F16C.
        return unsafe { crate::quant_avx2::round_f16_slice(x) };
    }
    let _ = simd;
    for v in x.iter_mut() {
        *v = round_f16(*v);
    }
}

/// The GeGLU product `a[i] = gelu(a[i]) * b[i]`.
fn geglu(a: &mut [f32], b: &[f32], table: &[f32], simd: bool) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if simd {
        // SAFETY: `simd` comes from `f16c()`, true only when the CPU has AVX2 and F16C.
        return unsafe { crate::quant_avx2::geglu(a, b, table, |x| gelu(x, table)) };
    }
    let _ = simd;
    for (a, b) in a.iter_mut().zip(b) {
        *a = gelu(*a, table) * b;
    }
}

/// `acc[j] += p * v[j]` for each `(p, v) = row(i)`, `i` in `0..len` in order, with `v`
/// binary16.
#[inline]
fn weighted_rows_f16<'v>(
    acc: &mut [f32],
    len: usize,
    row: impl Fn(usize) -> (f32, &'v [u16]),
    simd: bool,
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if simd {
        // SAFETY: `simd` comes from `f16c()`, true only when the CPU has AVX2 and F16C.
        return unsafe { crate::quant_avx2::weighted_rows_f16(acc, len, row) };
    }
    let _ = simd;
    for i in 0..len {
        let (p, v) = row(i);
        for (o, &vv) in acc.iter_mut().zip(v) {
            *o += p * f16_to_f32(vv);
        }
    }
}

fn dot_f16(q: &[f32], k: &[u16], simd: bool) -> f32 {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if simd {
        // SAFETY: `simd` comes from `f16c()`, true only when the CPU has AVX2 and F16C.
        return unsafe { crate::quant_avx2::dot_f16_keys(q, k) };
    }
    let _ = simd;
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

/// Output values accumulated at once by [`attend_head`] (a stack buffer).
const ATT_CHUNK: usize = 64;

/// Attention of one query head over positions `first..npos` of layer `l`, whose keys and
/// values sit at offset `kv_off` in each cache row; `q` is already rounded through f16.
/// The scores use cells `sbase..` of `scores`, the result goes to cells `obase..` of
/// `out`. K, V and the probabilities go through f16 as in llama.cpp; every sum runs in
/// position order.
#[allow(clippy::too_many_arguments)]
fn attend_head(
    cache: &KvCache,
    l: usize,
    (first, npos): (usize, usize),
    kv_off: usize,
    q: &[f32],
    scale: f32,
    (scores, sbase): (&Cells, usize),
    (out, obase): (&Cells, usize),
) {
    let hd = q.len();
    let len = npos - first;
    let simd = f16c();
    let mut max = f32::NEG_INFINITY;
    for i in 0..len {
        let ko = cache.at(l, first + i) + kv_off;
        let s = dot_f16(q, &cache.keys[ko..ko + hd], simd) * scale;
        scores.set(sbase + i, s);
        max = max.max(s);
    }
    let mut sum = 0.0f32;
    for i in 0..len {
        let e = libm::expf(scores.get(sbase + i) - max);
        scores.set(sbase + i, e);
        sum += e;
    }
    let inv = 1.0 / sum;
    for i in 0..len {
        scores.set(sbase + i, round_f16(scores.get(sbase + i) * inv));
    }
    let mut j0 = 0;
    while j0 < hd {
        let w = ATT_CHUNK.min(hd - j0);
        let mut acc = [0.0f32; ATT_CHUNK];
        let row = |i: usize| {
            let vo = cache.at(l, first + i) + kv_off + j0;
            (scores.get(sbase + i), &cache.values[vo..vo + w])
        };
        weighted_rows_f16(&mut acc[..w], len, row, simd);
        for (j, &a) in acc[..w].iter().enumerate() {
            out.set(obase + j0 + j, a);
        }
        j0 += w;
    }
}

/// RMSNorm of each `dim`-wide row of `y` in place (`scratch` as wide as `y`).
fn post_norm(y: &mut [f32], scratch: &mut [f32], dim: usize, w: &Vector<'_>, eps: f32) {
    for (row, out) in y.chunks_exact_mut(dim).zip(scratch.chunks_exact_mut(dim)) {
        rmsnorm(out, row, w, eps);
        row.copy_from_slice(out);
    }
}

/// Token groups per head in the parallel attention of a batch (each work item handles one
/// head for one group of consecutive tokens, with its own scores scratch).
const ATT_GROUPS: usize = 4;

/// The scratch memory of [`forward_in`]: activations, rotation tables, converted matrix
/// inputs, the cells of the parallel products and attention scores, and the logits.
/// Buffers grow to the largest batch seen and are then reused, so a warm workspace makes
/// the token loop allocation-free. Results never depend on what it held before.
#[derive(Default)]
pub struct Workspace {
    x: Vec<f32>,
    xb: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    hb: Vec<f32>,
    hb2: Vec<f32>,
    normed: Vec<f32>,
    ropes: Vec<(f32, f32)>,
    ropes_local: Vec<(f32, f32)>,
    inp: Inputs,
    cells: Cells,
    scores: Cells,
    logits: Vec<f32>,
    /// [`gelu_of_half`] of every f16 (Gemma), built on first use.
    gelu: Vec<f32>,
}

impl Workspace {
    /// The logits of the last [`forward_in`] call that asked for some.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }
}

/// `v` resized to `n` values (its capacity only grows).
fn sized<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    v.resize(n, T::default());
    v
}

/// Converts `xs` for `m` into `inp` (unless `reuse` says `inp` already holds `xs`
/// converted for a compatible matrix) and multiplies.
#[allow(clippy::too_many_arguments)]
fn mm(
    m: &Matrix<'_>,
    par: &dyn Parallel,
    xs: &[f32],
    n: usize,
    reuse: bool,
    inp: &mut Inputs,
    cells: &mut Cells,
    out: &mut [f32],
) {
    if !reuse || !m.accepts(inp) {
        m.prepare_into(xs, n, inp);
    }
    m.matmul_prepared(par, inp, cells, out);
}

/// Runs `tokens` through the model at positions `cache.len()..`, appending to the cache.
///
/// Returns the requested logits, `vocab_size` values per token asked for. Allocates its
/// scratch memory for this call; [`forward_in`] reuses a [`Workspace`].
pub fn forward(
    model: &Model<'_>,
    cache: &mut KvCache,
    par: &dyn Parallel,
    tokens: &[u32],
    want: Logits,
) -> Result<Vec<f32>> {
    let mut ws = Workspace::default();
    Ok(forward_in(model, cache, &mut ws, par, tokens, want)?.to_vec())
}

/// [`forward`] with the scratch memory of `ws`; returns the requested logits (also
/// available as [`Workspace::logits`]).
pub fn forward_in<'w>(
    model: &Model<'_>,
    cache: &mut KvCache,
    ws: &'w mut Workspace,
    par: &dyn Parallel,
    tokens: &[u32],
    want: Logits,
) -> Result<&'w [f32]> {
    let c = &model.config;
    let n = tokens.len();
    if n == 0 {
        return Ok(&[]);
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

    if gemma.is_some() && ws.gelu.is_empty() {
        ws.gelu = (0..=u16::MAX).map(gelu_of_half).collect();
    }
    let gelu_table = &ws.gelu;
    let x = sized(&mut ws.x, n * dim);
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
    let half = hd / 2;
    let ropes = sized(&mut ws.ropes, n * half);
    for (t, r) in ropes.chunks_exact_mut(half).enumerate() {
        rope_table(pos0 + t, hd, c.rope_theta, r);
    }
    let ropes_local = match gemma {
        Some(g) if g.local.iter().any(|&l| l) => {
            let r = sized(&mut ws.ropes_local, n * half);
            for (t, r) in r.chunks_exact_mut(half).enumerate() {
                rope_table(pos0 + t, hd, g.rope_theta_local, r);
            }
            &*r
        }
        _ => &[],
    };
    let ropes = &*ropes;
    let xb = sized(&mut ws.xb, n * dim);
    let q = sized(&mut ws.q, n * q_dim);
    let k = sized(&mut ws.k, n * kv_dim);
    let v = sized(&mut ws.v, n * kv_dim);
    let att = sized(&mut ws.att, n * q_dim);
    let tmp = sized(&mut ws.tmp, n * dim);
    let hb = sized(&mut ws.hb, n * hidden);
    let hb2 = sized(&mut ws.hb2, n * hidden);
    let normed = sized(&mut ws.normed, hd);
    let (inp, cells, scores) = (&mut ws.inp, &mut ws.cells, &mut ws.scores);
    let groups = n.min(ATT_GROUPS);
    let simd = f16c();
    scores.ensure(c.n_heads * groups * cache.capacity);
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
        mm(&layer.wq, par, xb, n, false, inp, cells, q);
        mm(&layer.wk, par, xb, n, true, inp, cells, k);
        mm(&layer.wv, par, xb, n, true, inp, cells, v);
        for t in 0..n {
            let qt = &mut q[t * q_dim..(t + 1) * q_dim];
            let kt = &mut k[t * kv_dim..(t + 1) * kv_dim];
            match (gemma, &layer.gemma) {
                (Some(g), Some(norms)) => {
                    for (x, w) in [(&mut *qt, &norms.q_norm), (&mut *kt, &norms.k_norm)] {
                        for head in x.chunks_exact_mut(hd) {
                            rmsnorm(normed, head, w, c.rms_eps);
                            head.copy_from_slice(normed);
                        }
                    }
                    let table = if local { ropes_local } else { ropes };
                    let table = &table[t * half..(t + 1) * half];
                    rope_neox(qt, hd, table);
                    rope_neox(kt, hd, table);
                    for v in qt.iter_mut() {
                        *v *= g.query_scale;
                    }
                }
                _ => {
                    rope(qt, hd, &ropes[t * half..(t + 1) * half]);
                    rope(kt, hd, &ropes[t * half..(t + 1) * half]);
                }
            }
            let at = cache.at(l, pos0 + t);
            let r = t * kv_dim..(t + 1) * kv_dim;
            to_halves(&k[r.clone()], &mut cache.keys[at..at + kv_dim], simd);
            to_halves(&v[r], &mut cache.values[at..at + kv_dim], simd);
        }
        let window = match gemma {
            Some(g) if local => g.sliding_window,
            _ => 0,
        };
        // The queries go through f16 before the dot products with the f16 keys.
        round_halves(q, simd);
        {
            let cache_ref: &KvCache = cache;
            cells.ensure(n * q_dim);
            let (out, scores_ref): (&Cells, &Cells) = (cells, scores);
            let q_ref = &*q;
            let cap = cache.capacity;
            par.for_each(c.n_heads * groups, &|i| {
                let (g, h) = (i / c.n_heads, i % c.n_heads);
                for t in g * n / groups..(g + 1) * n / groups {
                    let npos = pos0 + t + 1;
                    // A local layer sees the last `window` positions, its own included.
                    let first = if window > 0 {
                        npos.saturating_sub(window)
                    } else {
                        0
                    };
                    let at = t * q_dim + h * hd;
                    attend_head(
                        cache_ref,
                        l,
                        (first, npos),
                        (h / group) * hd,
                        &q_ref[at..at + hd],
                        scale,
                        (scores_ref, i * cap),
                        (out, at),
                    );
                }
            });
            out.read_into(att);
        }
        mm(&layer.wo, par, att, n, false, inp, cells, tmp);
        if let Some(norms) = &layer.gemma {
            post_norm(tmp, xb, dim, &norms.post_attn, c.rms_eps);
        }
        for (a, b) in x.iter_mut().zip(&*tmp) {
            *a += b;
        }
        for t in 0..n {
            let r = t * dim..(t + 1) * dim;
            rmsnorm(&mut xb[r.clone()], &x[r], &layer.ffn_norm, c.rms_eps);
        }
        mm(&layer.w_gate, par, xb, n, false, inp, cells, hb);
        mm(&layer.w_up, par, xb, n, true, inp, cells, hb2);
        if gemma.is_some() {
            geglu(hb, hb2, gelu_table, simd);
        } else {
            for (a, b) in hb.iter_mut().zip(&*hb2) {
                *a = silu(*a) * b;
            }
        }
        mm(&layer.w_down, par, hb, n, false, inp, cells, tmp);
        if let Some(norms) = &layer.gemma {
            post_norm(tmp, xb, dim, &norms.post_ffn, c.rms_eps);
        }
        for (a, b) in x.iter_mut().zip(&*tmp) {
            *a += b;
        }
    }
    cache.len += n;

    let (first, rows) = match want {
        Logits::None => return Ok(&[]),
        Logits::Last => (n - 1, 1),
        Logits::All => (0, n),
    };
    for i in 0..rows {
        let t = first + i;
        rmsnorm(
            &mut xb[i * dim..(i + 1) * dim],
            &x[t * dim..(t + 1) * dim],
            &model.output_norm,
            c.rms_eps,
        );
    }
    let logits = sized(&mut ws.logits, rows * c.vocab_size);
    mm(
        &model.output,
        par,
        &xb[..rows * dim],
        rows,
        false,
        inp,
        cells,
        logits,
    );
    Ok(logits)
}
