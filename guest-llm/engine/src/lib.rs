//! SIS inference engine: Llama and Gemma 3 transformers for `no_std` + `alloc`.
//!
//! - Loaders: GGUF v2/v3 ([`gguf`], [`Model::from_gguf`]) with F32, F16, Q8_0 and Q4_1
//!   tensors, and llama2.c checkpoints ([`llama2c`]); both borrow the weights from the
//!   file slice (zero copy) and treat the file as hostile.
//! - Forward pass ([`forward`]): RMSNorm, RoPE, grouped-query attention, SwiGLU, binary16
//!   KV cache; quantized weights are multiplied with 8-bit quantized activations.
//! - Tokenizers ([`tokenizer`]): GPT-2 byte-level BPE from GGUF and llama2.c's
//!   `tokenizer.bin`.
//! - Generation ([`Session`]): bounded prefill chunks, one token per call, llama.cpp's
//!   sampler chain (penalties, top-k, top-p, min-p, temperature, seeded draw:
//!   [`sampler`]), stop strings on the text ([`stop`]), conversations that reuse their
//!   KV cache prefix ([`Session::reuse_prefix`]).
//! - Determinism: the arithmetic has a fixed order and uses `libm`, so every target
//!   produces the same tokens; matrix rows are spread through [`Parallel`].
#![no_std]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod blocks;
pub mod chat;
pub mod error;
pub mod forward;
pub mod gguf;
pub mod half;
pub mod kernels;
pub mod le;
pub mod llama2c;
pub mod matrix;
pub mod model;
pub mod parallel;
pub mod quant;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod quant_avx2;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
pub mod quant_neon;
pub mod sampler;
pub mod selftest;
pub mod session;
pub mod stop;
pub mod tokenizer;

pub use error::{Error, Result};
pub use model::{Arch, Config, Model};
pub use parallel::{Parallel, Serial};
pub use sampler::SamplerConfig;
pub use session::{PrefixReuse, Session, SessionConfig, StopReason};
pub use stop::StopStrings;
pub use tokenizer::{Detokenizer, Tokenizer, Utf8Stream};

/// Token id.
pub type TokenId = u32;

/// Loads a model and its tokenizer from a GGUF file held in memory (borrowed, not copied).
pub fn load_gguf(file: &[u8]) -> Result<(Model<'_>, Tokenizer<'_>)> {
    let g = gguf::Gguf::parse(file)?;
    let model = Model::from_gguf(&g)?;
    let tok = Tokenizer::from_gguf(&g)?;
    if tok.vocab_size() != model.config.vocab_size {
        return Err(Error::Format(alloc::format!(
            "tokenizer has {} tokens, model {}",
            tok.vocab_size(),
            model.config.vocab_size
        )));
    }
    Ok((model, tok))
}

/// Loads a llama2.c checkpoint and its `tokenizer.bin` (both borrowed).
pub fn load_llama2c<'a>(
    checkpoint: &'a [u8],
    tokenizer: &'a [u8],
) -> Result<(Model<'a>, Tokenizer<'a>)> {
    let model = llama2c::load(checkpoint)?;
    let tok = Tokenizer::from_llama2c(tokenizer, model.config.vocab_size)?;
    Ok((model, tok))
}
