//! A compact fingerprint of a model run, to compare targets (host vs guest).
//!
//! [`digest`] runs a prompt and a greedy continuation and hashes the bits of every
//! logit produced. Equal digests on two targets mean bit-identical computation.
//! [`sampled`] runs the session with every sampling control on and a seed: equal tokens
//! mean the sampler chain is bit-repeatable across targets too.

use crate::error::Result;
use crate::forward::{forward, KvCache, Logits};
use crate::model::Model;
use crate::parallel::Parallel;
use crate::sampler::{argmax, SamplerConfig};
use crate::session::{Session, SessionConfig};
use alloc::vec::Vec;

/// Greedy tokens and an FNV-1a hash of all logits' bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Greedy continuation.
    pub tokens: Vec<u32>,
    /// FNV-1a (64-bit) over the little-endian bits of every logit, in order.
    pub hash: u64,
}

fn fnv(mut h: u64, v: &[f32]) -> u64 {
    for x in v {
        for b in x.to_bits().to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Runs `prompt` (logits of every position) then `steps` greedy tokens.
pub fn digest(
    model: &Model<'_>,
    par: &dyn Parallel,
    prompt: &[u32],
    steps: usize,
) -> Result<Digest> {
    let v = model.config.vocab_size;
    let mut cache = KvCache::new(model, prompt.len() + steps)?;
    let all = forward(model, &mut cache, par, prompt, Logits::All)?;
    let mut h = fnv(0xcbf2_9ce4_8422_2325, &all);
    let mut logits = all[all.len() - v..].to_vec();
    let mut tokens = Vec::new();
    for _ in 0..steps {
        let t = argmax(&logits);
        tokens.push(t);
        logits = forward(model, &mut cache, par, &[t], Logits::Last)?;
        h = fnv(h, &logits);
    }
    Ok(Digest { tokens, hash: h })
}

/// The standard self-test prompts for the checked-in test models (see
/// `models/test/digests.txt`).
pub const PROMPT: &str = "Once upon a time, the little robot";

/// The sampling settings of [`sampled`]: every control on.
pub const SAMPLED: SamplerConfig = SamplerConfig {
    temperature: 0.9,
    top_k: 20,
    top_p: 0.9,
    min_p: 0.02,
    repeat_penalty: 1.2,
    repeat_last_n: 16,
    frequency_penalty: 0.1,
    presence_penalty: 0.2,
    seed: 1234,
};

/// Runs `prompt` then `steps` tokens sampled with [`SAMPLED`] (no stop tokens).
pub fn sampled(
    model: &Model<'_>,
    par: &dyn Parallel,
    prompt: &[u32],
    steps: usize,
) -> Result<Vec<u32>> {
    let mut s = Session::new(
        model,
        par,
        SessionConfig {
            context: prompt.len() + steps,
            max_new_tokens: steps,
            sampler: SAMPLED,
            stop_tokens: Vec::new(),
        },
    )?;
    s.feed(prompt)?;
    let mut out = Vec::new();
    while let Some(t) = s.next_token()? {
        out.push(t);
    }
    Ok(out)
}
