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
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length the model was trained for.
    pub max_seq_len: usize,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
}

impl Config {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.n_heads
    }
    /// Width of the key/value projections.
    pub fn kv_dim(&self) -> usize {
        self.head_dim() * self.n_kv_heads
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
        if self.n_heads == 0
            || self.n_heads > limits::HEADS
            || !self.dim.is_multiple_of(self.n_heads)
        {
            return bad("n_heads must divide dim");
        }
        if !self.head_dim().is_multiple_of(2) {
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
    /// Query projection (`dim x dim`).
    pub wq: Matrix<'a>,
    /// Key projection (`kv_dim x dim`).
    pub wk: Matrix<'a>,
    /// Value projection (`kv_dim x dim`).
    pub wv: Matrix<'a>,
    /// Attention output projection (`dim x dim`).
    pub wo: Matrix<'a>,
    /// RMSNorm weight before the FFN.
    pub ffn_norm: Vector<'a>,
    /// SwiGLU gate (`hidden x dim`).
    pub w_gate: Matrix<'a>,
    /// SwiGLU up (`hidden x dim`).
    pub w_up: Matrix<'a>,
    /// SwiGLU down (`dim x hidden`).
    pub w_down: Matrix<'a>,
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
        }
        n
    }

    /// Loads a llama-architecture model from a parsed GGUF file (weights are borrowed).
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self> {
        let arch = g
            .string("general.architecture")?
            .ok_or_else(|| format_err!("missing general.architecture"))?;
        if arch != "llama" {
            return Err(Error::Unsupported(format!(
                "architecture {arch:?} (only llama)"
            )));
        }
        let u = |k: &str, max: usize| -> Result<usize> { Ok(g.uint(k, max as u64)? as usize) };
        let dim = u("llama.embedding_length", limits::DIM)?;
        let n_heads = u("llama.attention.head_count", limits::HEADS)?;
        let n_kv_heads = match g.get("llama.attention.head_count_kv") {
            Some(_) => u("llama.attention.head_count_kv", limits::HEADS)?,
            None => n_heads,
        };
        let embd = g
            .tensor("token_embd.weight")
            .ok_or_else(|| format_err!("missing tensor token_embd.weight"))?;
        let vocab_size = match g.get("llama.vocab_size") {
            Some(_) => u("llama.vocab_size", limits::VOCAB)?,
            None => *embd.dims.get(1).unwrap_or(&0) as usize,
        };
        let config = Config {
            dim,
            hidden_dim: u("llama.feed_forward_length", limits::HIDDEN)?,
            n_layers: u("llama.block_count", limits::LAYERS)?,
            n_heads,
            n_kv_heads,
            vocab_size,
            max_seq_len: u("llama.context_length", limits::CONTEXT)?,
            rope_theta: g.float("llama.rope.freq_base")?.unwrap_or(10_000.0) as f32,
            rms_eps: g
                .float("llama.attention.layer_norm_rms_epsilon")?
                .unwrap_or(1e-5) as f32,
        };
        config.validate()?;
        if g.get("llama.rope.dimension_count").is_some() {
            let rd = g.uint("llama.rope.dimension_count", limits::DIM as u64)?;
            if rd as usize != config.head_dim() {
                return Err(Error::Unsupported(format!(
                    "partial rotary embedding ({rd} of {} dims)",
                    config.head_dim()
                )));
            }
        }
        match g.string("llama.rope.scaling.type")? {
            None | Some("none") => {}
            Some(t) => return Err(Error::Unsupported(format!("rope scaling {t:?}"))),
        }
        if g.get("llama.expert_count").is_some()
            && g.uint("llama.expert_count", u32::MAX as u64)? > 0
        {
            return Err(Error::Unsupported("mixture-of-experts models".into()));
        }
        let (d, h, kv, v) = (dim, config.hidden_dim, config.kv_dim(), vocab_size);
        let norm = |name: &str| -> Result<Vector<'a>> {
            let m = g.matrix(name, 1, d)?;
            match m.storage {
                Storage::F32(b) => Vector::new(b, d, name),
                _ => Err(Error::Unsupported(format!(
                    "{name}: norm weights must be F32"
                ))),
            }
        };
        let mut layers = Vec::new();
        for i in 0..config.n_layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: norm(&n("attn_norm"))?,
                wq: g.matrix(&n("attn_q"), d, d)?,
                wk: g.matrix(&n("attn_k"), kv, d)?,
                wv: g.matrix(&n("attn_v"), kv, d)?,
                wo: g.matrix(&n("attn_output"), d, d)?,
                ffn_norm: norm(&n("ffn_norm"))?,
                w_gate: g.matrix(&n("ffn_gate"), h, d)?,
                w_up: g.matrix(&n("ffn_up"), h, d)?,
                w_down: g.matrix(&n("ffn_down"), d, h)?,
            });
        }
        let token_embd = g.matrix("token_embd.weight", v, d)?;
        let (output, shared) = match g.tensor("output.weight") {
            Some(_) => (g.matrix("output.weight", v, d)?, false),
            None => (token_embd, true),
        };
        Ok(Model {
            output_norm: norm("output_norm.weight")?,
            config,
            token_embd,
            layers,
            output,
            shared_classifier: shared,
        })
    }
}
