//! Model configuration and borrowed weights, with the GGUF loader.

use crate::error::{format_err, Error, Result};
use crate::gguf::Gguf;
use crate::le::f32_at;
use crate::matrix::{Matrix, Storage};
use alloc::format;
use alloc::vec::Vec;

/// Largest accepted values for model dimensions (far above any model this engine targets;
/// they only keep a hostile header from requesting absurd allocations).
pub mod limits {
    /// Maximum model width.
    pub const DIM: usize = 1 << 14;
    /// Maximum FFN width.
    pub const HIDDEN: usize = 1 << 16;
    /// Maximum number of layers.
    pub const LAYERS: usize = 1 << 9;
    /// Maximum number of heads.
    pub const HEADS: usize = 1 << 10;
    /// Maximum vocabulary size.
    pub const VOCAB: usize = 1 << 21;
    /// Maximum context length.
    pub const CONTEXT: usize = 1 << 20;
}

/// Architecture hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Model width.
    pub dim: usize,
    /// FFN width.
    pub hidden_dim: usize,
    /// Number of transformer layers.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `n_heads`).
    pub n_kv_heads: usize,
    /// Width of one attention head (llama: `dim / n_heads`; Gemma 3: the GGUF `key_length`).
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length the model was trained for.
    pub max_seq_len: usize,
    /// RoPE base frequency (of the global layers, for Gemma 3).
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// The family and its own rules.
    pub arch: Arch,
}

/// The architecture family, which decides the forward pass's rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Arch {
    /// Llama: RoPE on adjacent pairs, SwiGLU, scores scaled by `1/sqrt(head_dim)`.
    Llama,
    /// Gemma 3: embeddings scaled by `sqrt(dim)`, RMSNorm of each query and key head,
    /// RoPE on pairs `(i, i + head_dim/2)` (GPT-NeoX style), queries scaled before
    /// attention, post-attention and post-FFN norms, GeGLU, interleaved local
    /// (sliding-window) and global layers.
    Gemma3(Gemma3),
}

/// Gemma 3's per-model constants, all from the GGUF metadata (with llama.cpp's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Gemma3 {
    /// Positions a local layer attends to (the query's own included); 0 = every layer global.
    pub sliding_window: usize,
    /// RoPE base of the local layers (`gemma3.rope.freq_base_swa`, default 10000).
    pub rope_theta_local: f32,
    /// Whether each layer is local (sliding window); the others are global.
    pub local: Vec<bool>,
    /// Factor applied to the queries before attention (`1/sqrt(head_dim)`, as llama.cpp).
    pub query_scale: f32,
}

impl Config {
    /// Width of the key/value projections.
    pub fn kv_dim(&self) -> usize {
        self.head_dim * self.n_kv_heads
    }
    /// Width of the query projection (and of the attention output).
    pub fn q_dim(&self) -> usize {
        self.head_dim * self.n_heads
    }

    /// Checks dimensions for consistency and sanity.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(format_err!("bad model dimensions: {m} ({self:?})"));
        if self.dim == 0 || self.dim > limits::DIM {
            return bad("dim");
        }
        if self.hidden_dim == 0 || self.hidden_dim > limits::HIDDEN {
            return bad("hidden_dim");
        }
        if self.n_layers == 0 || self.n_layers > limits::LAYERS {
            return bad("n_layers");
        }
        if self.n_heads == 0 || self.n_heads > limits::HEADS {
            return bad("n_heads");
        }
        if self.head_dim == 0 || self.head_dim > limits::DIM || self.q_dim() > limits::DIM {
            return bad("head dimension");
        }
        if self.arch == Arch::Llama && self.head_dim * self.n_heads != self.dim {
            return bad("n_heads must divide dim");
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad("head dimension must be even for RoPE");
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad("n_kv_heads must divide n_heads");
        }
        if self.vocab_size == 0 || self.vocab_size > limits::VOCAB {
            return bad("vocab_size");
        }
        if self.max_seq_len == 0 || self.max_seq_len > limits::CONTEXT {
            return bad("context length");
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad("rope theta");
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return bad("rms epsilon");
        }
        if let Arch::Gemma3(g) = &self.arch {
            if g.local.len() != self.n_layers {
                return bad("sliding-window pattern length");
            }
            if !(g.rope_theta_local.is_finite() && g.rope_theta_local > 0.0) {
                return bad("local rope theta");
            }
            if !(g.query_scale.is_finite() && g.query_scale > 0.0) {
                return bad("query scale");
            }
        }
        Ok(())
    }
}

/// A borrowed f32 vector (norm weights), read little-endian on use.
#[derive(Debug, Clone, Copy)]
pub struct Vector<'a> {
    bytes: &'a [u8],
}

impl<'a> Vector<'a> {
    /// Wraps `n` little-endian f32 values.
    pub fn new(bytes: &'a [u8], n: usize, name: &str) -> Result<Self> {
        if Some(bytes.len()) != n.checked_mul(4) {
            return Err(format_err!("{name}: expected {n} f32 values"));
        }
        Ok(Vector { bytes })
    }
    /// Element `i`.
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        f32_at(self.bytes, i)
    }
    /// The elements in order.
    #[inline]
    pub fn values(&self) -> impl Iterator<Item = f32> + 'a {
        self.bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }
    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// Bytes borrowed.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

/// One transformer block's weights.
#[derive(Debug, Clone)]
pub struct Layer<'a> {
    /// RMSNorm weight before attention.
    pub attn_norm: Vector<'a>,
    /// Query projection (`q_dim x dim`).
    pub wq: Matrix<'a>,
    /// Key projection (`kv_dim x dim`).
    pub wk: Matrix<'a>,
    /// Value projection (`kv_dim x dim`).
    pub wv: Matrix<'a>,
    /// Attention output projection (`dim x q_dim`).
    pub wo: Matrix<'a>,
    /// RMSNorm weight before the FFN.
    pub ffn_norm: Vector<'a>,
    /// FFN gate (`hidden x dim`).
    pub w_gate: Matrix<'a>,
    /// FFN up (`hidden x dim`).
    pub w_up: Matrix<'a>,
    /// FFN down (`dim x hidden`).
    pub w_down: Matrix<'a>,
    /// Gemma 3's extra norms (none for llama).
    pub gemma: Option<GemmaNorms<'a>>,
}

/// The norms a Gemma 3 block has beyond llama's.
#[derive(Debug, Clone, Copy)]
pub struct GemmaNorms<'a> {
    /// RMSNorm of each query head (`head_dim`).
    pub q_norm: Vector<'a>,
    /// RMSNorm of each key head (`head_dim`).
    pub k_norm: Vector<'a>,
    /// RMSNorm of the attention output before the residual add (`dim`).
    pub post_attn: Vector<'a>,
    /// RMSNorm of the FFN output before the residual add (`dim`).
    pub post_ffn: Vector<'a>,
}

/// A loaded model: configuration plus weights borrowed from the file.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    /// Hyper-parameters.
    pub config: Config,
    /// Token embedding (`vocab x dim`).
    pub token_embd: Matrix<'a>,
    /// Transformer blocks.
    pub layers: Vec<Layer<'a>>,
    /// Final RMSNorm weight.
    pub output_norm: Vector<'a>,
    /// Classifier (`vocab x dim`); the embedding itself when shared.
    pub output: Matrix<'a>,
    /// Whether the classifier is the token embedding.
    pub shared_classifier: bool,
}

impl<'a> Model<'a> {
    /// Bytes of weights the model borrows from the file (kept in their file format).
    pub fn weight_bytes(&self) -> usize {
        let mut n = self.token_embd.byte_len() + self.output_norm.byte_len();
        if !self.shared_classifier {
            n += self.output.byte_len();
        }
        for l in &self.layers {
            n += l.attn_norm.byte_len() + l.ffn_norm.byte_len();
            for m in [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down] {
                n += m.byte_len();
            }
            if let Some(g) = &l.gemma {
                for v in [&g.q_norm, &g.k_norm, &g.post_attn, &g.post_ffn] {
                    n += v.byte_len();
                }
            }
        }
        n
    }

    /// Loads a llama or Gemma 3 model from a parsed GGUF file (weights are borrowed).
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self> {
        let arch = g
            .string("general.architecture")?
            .ok_or_else(|| format_err!("missing general.architecture"))?;
        if arch != "llama" && arch != "gemma3" {
            return Err(Error::Unsupported(format!(
                "architecture {arch:?} (supported: llama, gemma3)"
            )));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let u =
            |k: &str, max: usize| -> Result<usize> { Ok(g.uint(&key(k), max as u64)? as usize) };
        let opt_u = |k: &str, max: usize| -> Result<Option<usize>> {
            match g.get(&key(k)) {
                Some(_) => u(k, max).map(Some),
                None => Ok(None),
            }
        };
        let dim = u("embedding_length", limits::DIM)?;
        let n_layers = u("block_count", limits::LAYERS)?;
        let n_heads = u("attention.head_count", limits::HEADS)?;
        if n_heads == 0 {
            return Err(format_err!("{} is 0", key("attention.head_count")));
        }
        let n_kv_heads = opt_u("attention.head_count_kv", limits::HEADS)?.unwrap_or(n_heads);
        let embd = g
            .tensor("token_embd.weight")
            .ok_or_else(|| format_err!("missing tensor token_embd.weight"))?;
        let vocab_size = match opt_u("vocab_size", limits::VOCAB)? {
            Some(v) => v,
            None => *embd.dims.get(1).unwrap_or(&0) as usize,
        };
        let head_dim = match opt_u("attention.key_length", limits::DIM)? {
            Some(k) => k,
            None => dim / n_heads,
        };
        if let Some(v) = opt_u("attention.value_length", limits::DIM)? {
            if v != head_dim {
                return Err(Error::Unsupported(format!(
                    "value heads of {v} dims with key heads of {head_dim}"
                )));
            }
        }
        let rope_theta = g.float(&key("rope.freq_base"))?.unwrap_or(10_000.0) as f32;
        let rms_key = key("attention.layer_norm_rms_epsilon");
        let family = if arch == "gemma3" {
            Arch::Gemma3(gemma3_constants(g, n_layers, dim, n_heads, head_dim)?)
        } else {
            Arch::Llama
        };
        let config = Config {
            dim,
            hidden_dim: u("feed_forward_length", limits::HIDDEN)?,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            vocab_size,
            max_seq_len: u("context_length", limits::CONTEXT)?,
            rope_theta,
            rms_eps: g
                .float(&rms_key)?
                .unwrap_or(if arch == "gemma3" { 1e-6 } else { 1e-5 }) as f32,
            arch: family,
        };
        config.validate()?;
        if let Some(rd) = opt_u("rope.dimension_count", limits::DIM)? {
            if rd != config.head_dim {
                return Err(Error::Unsupported(format!(
                    "partial rotary embedding ({rd} of {} dims)",
                    config.head_dim
                )));
            }
        }
        match g.string(&key("rope.scaling.type"))? {
            None | Some("none") => {}
            Some(t) => return Err(Error::Unsupported(format!("rope scaling {t:?}"))),
        }
        if opt_u("expert_count", u32::MAX as usize)?.unwrap_or(0) > 0 {
            return Err(Error::Unsupported("mixture-of-experts models".into()));
        }
        if g.float(&key("final_logit_softcapping"))?.unwrap_or(0.0) != 0.0 {
            return Err(Error::Unsupported("final logit soft-capping".into()));
        }
        let (d, h, kv, v, qd) = (
            dim,
            config.hidden_dim,
            config.kv_dim(),
            vocab_size,
            config.q_dim(),
        );
        let norm = |name: &str, n: usize| -> Result<Vector<'a>> {
            let m = g.matrix(name, 1, n)?;
            match m.storage {
                Storage::F32(b) => Vector::new(b, n, name),
                _ => Err(Error::Unsupported(format!(
                    "{name}: norm weights must be F32"
                ))),
            }
        };
        let gemma = matches!(config.arch, Arch::Gemma3(_));
        let mut layers = Vec::new();
        for i in 0..config.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: norm(&n("attn_norm"), d)?,
                wq: g.matrix(&n("attn_q"), qd, d)?,
                wk: g.matrix(&n("attn_k"), kv, d)?,
                wv: g.matrix(&n("attn_v"), kv, d)?,
                wo: g.matrix(&n("attn_output"), d, qd)?,
                ffn_norm: norm(&n("ffn_norm"), d)?,
                w_gate: g.matrix(&n("ffn_gate"), h, d)?,
                w_up: g.matrix(&n("ffn_up"), h, d)?,
                w_down: g.matrix(&n("ffn_down"), d, h)?,
                gemma: if gemma {
                    Some(GemmaNorms {
                        q_norm: norm(&n("attn_q_norm"), config.head_dim)?,
                        k_norm: norm(&n("attn_k_norm"), config.head_dim)?,
                        post_attn: norm(&n("post_attention_norm"), d)?,
                        post_ffn: norm(&n("post_ffw_norm"), d)?,
                    })
                } else {
                    None
                },
            });
        }
        let token_embd = g.matrix("token_embd.weight", v, d)?;
        let (output, shared) = match g.tensor("output.weight") {
            Some(_) => (g.matrix("output.weight", v, d)?, false),
            None => (token_embd, true),
        };
        Ok(Model {
            output_norm: norm("output_norm.weight", d)?,
            config,
            token_embd,
            layers,
            output,
            shared_classifier: shared,
        })
    }
}

/// Gemma 3's constants from the `gemma3.*` metadata. Where the file is silent, llama.cpp's
/// rules apply: every 6th layer global (`attention.sliding_window_pattern` overrides it,
/// as a period or as one bool per layer), local layers with RoPE base 10000
/// (`rope.freq_base_swa` overrides it), queries scaled by `1/sqrt(head_dim)` (by
/// `1/sqrt(dim / n_heads)` for the 62-layer 27B model).
fn gemma3_constants(
    g: &Gguf<'_>,
    n_layers: usize,
    dim: usize,
    n_heads: usize,
    head_dim: usize,
) -> Result<Gemma3> {
    let window = match g.get("gemma3.attention.sliding_window") {
        Some(_) => g.uint("gemma3.attention.sliding_window", limits::CONTEXT as u64)? as usize,
        None => 0,
    };
    let local: Vec<bool> = if window == 0 {
        alloc::vec![false; n_layers]
    } else {
        const PATTERN: &str = "gemma3.attention.sliding_window_pattern";
        match g.get(PATTERN) {
            Some(crate::gguf::Value::Array(a)) => {
                if a.len != n_layers {
                    return Err(format_err!(
                        "{PATTERN} has {} entries for {n_layers} layers",
                        a.len
                    ));
                }
                (0..a.len).map(|i| a.bool(i)).collect::<Result<Vec<_>>>()?
            }
            Some(_) => {
                let p = g.uint(PATTERN, limits::LAYERS as u64)? as usize;
                (0..n_layers).map(|il| p == 0 || il % p < p - 1).collect()
            }
            None => (0..n_layers).map(|il| il % 6 < 5).collect(),
        }
    };
    let per_head = if n_layers == 62 {
        dim / n_heads
    } else {
        head_dim
    };
    Ok(Gemma3 {
        sliding_window: window,
        rope_theta_local: g.float("gemma3.rope.freq_base_swa")?.unwrap_or(10_000.0) as f32,
        local,
        query_scale: 1.0 / libm::sqrtf(per_head as f32),
    })
}
